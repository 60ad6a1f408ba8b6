"""compare_curricula: a Result with plain-JSON summary, tables, figures and saved networks."""

import json

import pytest

from neuro.errors import InputError, InputTypeError
from neuro.rnn.curricula import CurriculumConfig
from neuro.rnn.experiment import CurriculumComparison, compare_curricula

TINY = CurriculumConfig(
    hidden_size=8,
    n_max=3,
    threshold=0.01,
    max_epochs=2,
    steps_per_epoch=2,
    batch_size=8,
    val_batches=1,
)
FAST = dict(timescale_steps=200, timescale_trials=1, n_repeats=1, n_sequences=32, device="cpu")


def test_comparison_is_a_result(tmp_path):
    comp = compare_curricula(TINY, **FAST)
    assert isinstance(comp, CurriculumComparison) and comp.n_common == 3
    summary = comp.summary()
    assert json.loads(json.dumps(summary)) == summary  # plain JSON, no default= needed
    assert summary["config"]["hidden_size"] == 8 and "kind" not in summary["config"]
    assert summary["settings"]["kinds"] == ["single", "multi"]
    assert set(summary["curricula"]["multi"]["ablation"]) == {"0", "0.1", "0.2", "0.3", "0.5"}
    assert "ablation at N=3" in comp.format_table()
    tables = comp.tables()
    assert set(tables) == {"history", "timescales", "robustness", "retention"}
    assert set(tables["robustness"]["analysis"]) == {
        "ablation",
        "ablation_slowest_taus",
        "perturbation",
    }
    assert len(tables["history"]) == 4  # two epochs per curriculum
    assert set(comp.plot()) == {"curriculum", "taus", "robustness", "retention"}

    out = comp.save(tmp_path / "cmp", figures=False)
    assert json.loads((out / "metrics.json").read_text()) == summary
    for name in ("summary.txt", "history.csv", "single/network.pt", "multi/snapshots/N3.pt"):
        assert (out / name).is_file(), name
    assert not (out / "figures").exists()


@pytest.mark.parametrize(
    ("settings", "error", "match"),
    [
        (dict(kinds=["double"]), InputError, "kinds must be one of"),
        (dict(kinds=["single", "single"]), InputError, "each curriculum once"),
        (dict(timescale_steps=50), InputError, "timescale_steps must be > 50"),
        (dict(ablation_fractions=(0.1, 2.0)), InputError, "ablation_fractions must lie"),
        (dict(perturbation_sigmas=(-1.0,)), InputError, "perturbation_sigmas must be >= 0"),
        (dict(n_repeats=0), InputError, "n_repeats"),
        (dict(resume="yes"), InputTypeError, "resume must be True or False"),
    ],
)
def test_bad_settings_fail_before_training(settings, error, match, tmp_path):
    with pytest.raises(error, match=match):
        compare_curricula(TINY, out_dir=tmp_path / "never", **{**FAST, **settings})
    assert not (tmp_path / "never").exists()


def test_config_must_be_a_config():
    with pytest.raises(InputTypeError, match="config must be a CurriculumConfig"):
        compare_curricula({"hidden_size": 8}, **FAST)
