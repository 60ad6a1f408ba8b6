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
FAST = dict(
    timescale_steps=200,
    timescale_trials=1,
    n_repeats=1,
    n_sequences=32,
    pca_steps=200,
    pca_trials=2,
    tau_ablation_neurons=2,
    normalized_strengths=(0.0, 1.0),
    stream_steps=50,
    stream_trials=2,
    retrain_epochs=1,
    device="cpu",
)
OFF = dict(pca_steps=0, tau_ablation_neurons=0, normalized_strengths=(), retrain_epochs=0)


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
    assert set(tables) == {
        "history",
        "timescales",
        "robustness",
        "retention",
        "dimensionality",
        "tau_ablation",
        "normalized_perturbation",
        "retraining",
    }
    assert set(tables["robustness"]["analysis"]) == {
        "ablation",
        "ablation_slowest_taus",
        "perturbation",
    }
    assert len(tables["history"]) == 4  # two epochs per curriculum
    figures = comp.plot()
    assert list(figures)[:4] == ["curriculum", "taus", "robustness", "retention"]
    assert set(figures) == set(tables) - {"history", "timescales"} | {"curriculum", "taus"}
    multi = summary["curricula"]["multi"]
    assert set(multi["dimensionality_by_N"]) == {"2", "3"}
    assert multi["tau_ablation"]["tau_slowest"] >= multi["tau_ablation"]["tau_fastest"]
    assert set(multi["normalized_perturbation_taus"]) == {"0", "1"}
    assert multi["normalized_perturbation_taus"]["0"] == pytest.approx(1.0)  # null: unperturbed
    assert len(multi["retraining_perturbed"]["3"]["accuracy_by_epoch"]) == 2
    assert set(multi["retraining_larger_n"]) == {"4"}
    assert len(tables["tau_ablation"]) == 2 * (1 + 4)  # baseline + 2 fastest + 2 slowest

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
        (dict(pca_steps=1), InputError, "pca_steps must be 0 .skip. or >= 2"),
        (dict(tau_ablation_neurons=-1), InputError, "tau_ablation_neurons"),
        (dict(normalized_strengths=(-0.1,)), InputError, "normalized_strengths must be >= 0"),
        (dict(stream_trials=0), InputError, "stream_trials"),
        (dict(retrain_epochs=-1), InputError, "retrain_epochs"),
        (dict(retrain_perturbation=-1.0), InputError, "retrain_perturbation must be >= 0"),
    ],
)
def test_bad_settings_fail_before_training(settings, error, match, tmp_path):
    with pytest.raises(error, match=match):
        compare_curricula(TINY, out_dir=tmp_path / "never", **{**FAST, **settings})
    assert not (tmp_path / "never").exists()


def test_further_analyses_switch_off():
    comp = compare_curricula(TINY, kinds=["multi"], **{**FAST, **OFF})
    assert set(comp.tables()) == {"history", "timescales", "robustness", "retention"}
    assert set(comp.plot()) == {"curriculum", "taus", "robustness", "retention"}
    assert "tau_ablation" not in comp.summary()["curricula"]["multi"]


def test_config_must_be_a_config():
    with pytest.raises(InputTypeError, match="config must be a CurriculumConfig"):
        compare_curricula({"hidden_size": 8}, **FAST)
