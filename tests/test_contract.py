"""The contract of the README's developer section, held to every estimator and result.

(``InContextEncoder`` is not in scikit-learn's checks: its ``fit`` meta-learns
across voxels and subjects, and its ``predict`` needs a support set.)

A new estimator joins by adding one entry to ``ESTIMATORS`` (a small, fast
configuration on the CPU) and, only where a scikit-learn check cannot apply to
it, a documented entry in ``EXPECTED_FAILURES``.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import types
from pathlib import Path

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuro.errors import OutputExistsError

README = Path(__file__).resolve().parents[1] / "README.md"


def _developer_examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## For developers: the contract", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _run_examples() -> dict:
    """The README's developer examples, run in order (paths moved to a temporary folder)."""
    tmp = tempfile.mkdtemp(prefix="neuro-readme-")
    module = types.ModuleType("neuro_readme_example")  # importable, so pickling works
    sys.modules[module.__name__] = module
    namespace = module.__dict__
    try:
        for block in _developer_examples():
            exec(compile(block.replace("/tmp/", f"{tmp}/"), str(README), "exec"), namespace)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return namespace


_README = _run_examples()


@pytest.fixture
def readme_namespace():
    return _README


def test_readme_examples_run(readme_namespace):
    assert len(_developer_examples()) >= 2
    assert "TinyRidge" in readme_namespace and "FitReport" in readme_namespace


def test_readme_result_writes_its_files(readme_namespace, tmp_path):
    report = readme_namespace["FitReport"](0.5)
    out = report.save(tmp_path / "report")
    assert json.loads((out / "metrics.json").read_text()) == {"r2": 0.5}
    assert (out / "summary.txt").read_text().startswith("R²")
    with pytest.raises(OutputExistsError):
        report.save(tmp_path / "report")


def _estimators():
    from neuro.connectome import DynamicConnectome
    from neuro.decoding.lesion import ImpairmentDiagnoser
    from neuro.encoders import BandedRidgeCV, ReadoutEncoder, TransformerEncoder, VoxelRidgeCV

    return [
        _README["TinyRidge"](alpha=0.5),
        VoxelRidgeCV(alphas=[0.1, 1.0, 10.0], cv=3, device="cpu"),
        BandedRidgeCV(n_iter=3, alphas=[0.1, 1.0, 10.0], cv=3, device="cpu"),
        ReadoutEncoder("linear", device="cpu", epochs=5, lr=0.1, patience=2),
        TransformerEncoder(
            query_mode="voxel",
            map_shape=(1, 1, -1),
            d_model=8,
            n_heads=2,
            ffn_dim=16,
            epochs=40,
            lr=0.01,
            patience=5,
            device="cpu",
        ),
        DynamicConnectome(
            rank=1,
            bin_size=2,
            sampling_rate=1.0,
            n_restarts=1,
            n_iter_max=20,
            max_blocks=2,
            device="cpu",
        ),
        ImpairmentDiagnoser(classifier="lda"),
    ]


_FLOAT32_PREDICTIONS = (
    "predicts in float32 (VoxelRidgeCV and BandedRidgeCV by default, dtype='float64' gives "
    "float64; ReadoutEncoder always, as it trains in float32) to halve the memory of "
    "predictions for 10^5 voxels; this check requires float64 multi-output predictions"
)

#: Checks that cannot apply to an estimator, with the reason (kept minimal).
EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "VoxelRidgeCV": {"check_regressor_multioutput": _FLOAT32_PREDICTIONS},
    "BandedRidgeCV": {"check_regressor_multioutput": _FLOAT32_PREDICTIONS},
    "ReadoutEncoder": {"check_regressor_multioutput": _FLOAT32_PREDICTIONS},
    "TransformerEncoder": {
        "check_regressor_multioutput": _FLOAT32_PREDICTIONS,
        "check_regressors_train": "each 2-D feature of the check becomes a one-channel token; an "
        "attention model of feature maps trained for 40 CPU epochs keeps its training R² below "
        "the check's 0.5 on this small linear problem",
    },
    "DynamicConnectome": {
        **dict.fromkeys(
            [
                "check_estimators_overwrite_params",
                "check_estimators_fit_returns_self",
                "check_readonly_memmap_input",
                "check_fit_idempotent",
                "check_fit_check_is_fitted",
                "check_n_features_in",
            ],
            "a 2-D X is one animal's (n_neurons, n_frames) traces; this check's data has 2 "
            "columns, i.e. 2 frames (one derivative step): too short for a connectome, so fit "
            "refuses it with an InputError (it needs >= 3 frames)",
        ),
        "check_estimators_dtypes": "its integer data (values 0-2 over 5 frames) holds a "
        "constant trace, which has no derivative; fit refuses it with an InputError naming "
        "the neuron (mark it missing with NaN)",
    },
}


def _expected_failures(estimator) -> dict[str, str]:
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks([*(_estimators())], expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)
