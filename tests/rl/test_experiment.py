"""The RL experiment engine: configurations, training, transfer, verdicts from the numbers, saving."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from neuro.errors import InputError, InputTypeError, OutputExistsError
from neuro.rl.experiment import (
    RLComparison,
    analyse_agent,
    config_name,
    make_configs,
    seed_env_kwargs,
    train_agents,
    transfer_agents,
)

TINY = {"size": 4}
FAST = {"batch_size": 16, "latent_dim": 3}


def _verdicts(comp):
    return {v["key"]: v for v in comp.verdicts()}


def _analysis(r=0.0, trained=0.5, untrained=0.5, shuffled=0.0):
    """A stand-in for analyse_agent's output with the numbers the verdicts read."""
    report = pd.DataFrame(
        {
            "module": ["encoder", "transition", "q"],
            "n_units": [3, 16, 16],
            "dimensionality": [2.0, 3.0, 2.0],
            "spatial_information": [0.1, 0.2, 0.1],
            "place_field_score": [0.5, trained, 0.4],
            "distance_correlation": [r, 0.1, 0.1],
            "p_value": [0.01, 0.5, 0.5],
        }
    )
    tuning = {"trained": trained, "untrained": untrained, "shuffled": shuffled}
    return {"report": report, "tuning": tuning, "path_lengths": None}


# ----------------------------------------------------------------------------- configurations
def test_make_configs_names_and_settings():
    configs = make_configs(["model-free", "entropy", "predictive"], [0.0, 0.25], lr=1e-3)
    assert list(configs) == ["model-free", "entropy", "predictive_gp0", "predictive_gp0.25"]
    assert configs["predictive_gp0.25"] == {
        "lr": 1e-3,
        "objective": "predictive",
        "gamma_p": 0.25,
        "encoder_size": "small",
    }
    sized = make_configs(["model-free"], encoder_sizes=["small", "large"])
    assert list(sized) == ["small_model-free", "large_model-free"]
    assert config_name({"objective": "predictive", "gamma_p": 0.5}) == "predictive_gp0.5"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"objectives": ["greedy"]}, InputError, "objectives must be one of"),
        ({"gamma_ps": [1.0]}, InputError, "gamma_p must be < 1"),
        ({"gamma_ps": [-0.1]}, InputError, "gamma_p must be >= 0"),
        ({"objectives": ["predictive", "predictive"]}, InputError, "each value once"),
        ({"encoder_sizes": ["tiny"]}, InputError, "encoder_sizes must be one of"),
        ({"episodes": 5}, InputError, "unknown setting(s) ['episodes']"),
    ],
)
def test_make_configs_refuses(kwargs, error, message):
    with pytest.raises(error) as err:
        make_configs(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_seed_sets_layout_of_grid_only():
    assert seed_env_kwargs("neuro/GridWorld-v0", None, 4) == {"layout_seed": 4}
    assert seed_env_kwargs("neuro/GridWorld-v0", {"layout_seed": 9}, 4) == {"layout_seed": 9}
    assert seed_env_kwargs("neuro/LinearTrack-v0", {"obs_mode": "grid"}, 4) == {"obs_mode": "grid"}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"configs": {}}, InputTypeError, "configs must be a non-empty dict"),
        ({"configs": {"a": {"episodes": 3}}}, InputError, "unknown setting(s) ['episodes']"),
        ({"seeds": [0, 0]}, InputError, "seeds must be distinct"),
        ({"seeds": [-1]}, InputError, "seeds must be an integer >= 0"),
        ({"episodes": 0}, InputError, "episodes must be an integer >= 1"),
        ({"resume": True}, InputError, "resume=True needs checkpoint_root"),
    ],
)
def test_train_agents_refuses(kwargs, error, message):
    args = {"configs": {"mf": {"objective": "model-free"}}, "env_kwargs": TINY, "episodes": 1}
    with pytest.raises(error) as err:
        train_agents(**{**args, **kwargs})
    assert message in str(err.value)


# ----------------------------------------------------------------------------- verdicts
def test_verdicts_from_fake_curves(rng):
    slow = 100 + rng.normal(0, 5, (5, 40))
    fast = 40 + rng.normal(0, 5, (5, 40))
    comp = RLComparison({"model-free": slow, "predictive_gp0": fast})
    v = _verdicts(comp)
    assert v["speed"]["verdict"] == "holds"
    assert v["speed"]["numbers"]["predictive_gp0"]["upper"] < 0
    # a claim whose runs were not made is "not run", never guessed
    for key in ("geometry", "transfer", "transfer_frozen", "transition_tuning"):
        assert v[key]["verdict"] == "not run", key
    # the reverse: predictive slower
    assert (
        _verdicts(RLComparison({"model-free": fast, "predictive_gp0": slow}))["speed"]["verdict"]
        == "does not hold"
    )


def test_identical_curves_do_not_hold(rng):
    same = 80 + rng.normal(0, 5, (4, 30))
    v = _verdicts(RLComparison({"model-free": same, "predictive_gp0": same.copy()}))
    assert v["speed"]["verdict"] == "does not hold"
    assert v["stability"]["verdict"] == "does not hold"
    assert v["speed"]["numbers"]["predictive_gp0"]["difference"] == 0


def test_missing_runs_are_not_run(rng):
    curves = rng.normal(50, 5, (3, 20))
    v = _verdicts(RLComparison({"predictive_gp0": curves}))  # no model-free run
    assert v["speed"]["verdict"] == v["stability"]["verdict"] == "not run"
    one_seed = _verdicts(RLComparison({"model-free": curves[:1], "predictive_gp0": curves[1:2]}))
    assert one_seed["speed"]["verdict"] == "not run" and "2 seeds" in one_seed["speed"]["note"]


def test_stability_verdict(rng):
    steady = 50 + rng.normal(0, 0.5, (6, 30))
    erratic = 50 + rng.normal(0, 1, (6, 1)) * 40 + rng.normal(0, 0.5, (6, 30))
    v = _verdicts(RLComparison({"model-free": erratic, "predictive_gp0": steady}))
    assert v["stability"]["verdict"] == "holds"
    assert (
        v["stability"]["numbers"]["predictive_gp0"]["sd"]
        < v["stability"]["numbers"]["model_free_sd"]
    )


def test_geometry_transfer_and_tuning_verdicts(rng):
    curves = {n: rng.normal(50, 5, (4, 10)) for n in ("predictive_gp0", "predictive_gp0.8")}
    aligned = {
        "predictive_gp0": [_analysis(r=0.1 + 0.01 * i, untrained=0.3) for i in range(4)],
        "predictive_gp0.8": [_analysis(r=0.6 + 0.01 * i, trained=0.8) for i in range(4)],
    }
    transfer = {
        "predictive_gp0": {"unfrozen": rng.normal(90, 3, (4, 10))},
        "predictive_gp0.8": {"unfrozen": rng.normal(30, 3, (4, 10))},
    }
    v = _verdicts(RLComparison(curves, analyses=aligned, transfer=transfer))
    assert v["geometry"]["verdict"] == "holds"
    assert v["geometry"]["numbers"]["difference"] == pytest.approx(0.5)
    assert v["transfer"]["verdict"] == "holds"
    assert v["transfer_frozen"]["verdict"] == "not run"
    assert v["transition_tuning"]["verdict"] == "holds"
    # null: nothing differs between horizons or from the untrained network
    noise = [0.01, -0.01, 0.02, -0.02]  # differences that average to 0
    flat = {
        "predictive_gp0": [_analysis(r=0.2, trained=0.5, untrained=0.5) for _ in noise],
        "predictive_gp0.8": [_analysis(r=0.2 + e, trained=0.5 + e, untrained=0.5) for e in noise],
    }
    same = {n: {"frozen": np.full((4, 10), 60.0)} for n in curves}
    v = _verdicts(RLComparison(curves, analyses=flat, transfer=same))
    assert v["geometry"]["verdict"] == "does not hold"
    assert v["geometry"]["numbers"]["lower"] < 0 < v["geometry"]["numbers"]["upper"]
    assert v["transfer_frozen"]["verdict"] == "does not hold"
    assert v["transition_tuning"]["verdict"] == "does not hold"


def test_verdicts_use_smallest_encoder(rng):
    fast, slow = rng.normal(30, 2, (3, 10)), rng.normal(90, 2, (3, 10))
    comp = RLComparison(
        {
            "small_model-free": slow,
            "small_predictive_gp0": fast,
            "large_model-free": fast,
            "large_predictive_gp0": slow,
        }
    )
    assert list(_verdicts(comp)["speed"]["numbers"]) == ["small_predictive_gp0"]
    assert _verdicts(comp)["speed"]["verdict"] == "holds"


def test_comparison_refuses_bad_curves():
    with pytest.raises(InputTypeError, match="curves must be a non-empty dict"):
        RLComparison({})
    with pytest.raises(InputError, match=r"must be \(n_seeds, n_episodes\)"):
        RLComparison({"model-free": np.zeros(5)})


# ----------------------------------------------------------------------------- saving
def test_save_writes_atomically_and_refuses(tmp_path, rng, monkeypatch):
    comp = RLComparison(
        {"model-free": rng.normal(80, 5, (2, 12)), "predictive_gp0": rng.normal(40, 5, (2, 12))},
        settings={"env": "neuro/GridWorld-v0"},
    )
    out = comp.save(tmp_path / "run")
    for name in ("metrics.json", "summary.txt", "curves.npz", "module_report.csv", "runs.csv"):
        assert (out / name).is_file(), name
    assert (out / "figures" / "learning_curves.png").stat().st_size > 2000
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["verdicts"][0]["key"] == "speed"
    npz = np.load(out / "curves.npz", allow_pickle=False)
    np.testing.assert_array_equal(npz["curves/model-free"], comp.curves["model-free"])
    with pytest.raises(OutputExistsError, match="overwrite"):
        comp.save(out)
    # a write that fails midway leaves the earlier complete file, and no partial one
    before = (out / "curves.npz").read_bytes()

    def broken(fh, **arrays):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        comp.save(out, overwrite=True, figures=False)
    assert (out / "curves.npz").read_bytes() == before
    assert sorted(os.listdir(out)) == sorted(
        ["metrics.json", "summary.txt", "curves.npz", "module_report.csv", "runs.csv",
         "verdicts.csv", "figures"]
    )  # fmt: skip


# ----------------------------------------------------------------------------- real agents
def test_train_analyse_transfer_tiny(tmp_path):
    configs = make_configs(["model-free", "predictive"], [0.0, 0.8], **FAST)
    comp = train_agents(configs, seeds=[0, 1], env_kwargs={"size": 5}, episodes=2, n_permutations=0)
    assert set(comp.curves) == set(configs)
    assert all(c.shape == (2, 2) for c in comp.curves.values())
    assert comp.agents[("predictive_gp0.8", 1)].env_kwargs["layout_seed"] == 1  # goal per seed
    a = comp.analyses["model-free"][0]
    assert a["report"]["module"].tolist() == ["encoder", "transition", "q"]
    assert a["activity"]["encoder"].shape == (25, 3) and a["cells"].shape == (25, 2)
    assert np.isfinite(a["path_lengths"]).all() and a["path_lengths"].max() == 8
    transfer_agents(comp, episodes=2)
    assert comp.transfer["model-free"]["frozen"].shape == (2, 2)
    v = _verdicts(comp)
    assert all(v[k]["verdict"] in ("holds", "does not hold") for k in v)
    figs = comp.plot()
    assert set(figs) == {"learning_curves", "transfer", "tuning_maps", "latent_geometry"}
    out = comp.save(tmp_path / "run", figures=False)
    from neuro.rl import PredictiveAgent

    loaded = PredictiveAgent.load(out / "models" / "predictive_gp0_seed1.pt")
    np.testing.assert_array_equal(loaded.eval_steps_, comp.curves["predictive_gp0"][1])


def test_untrained_network_is_the_initial_one():
    """With no update (the batch never fills), trained and untrained transition units agree."""
    from neuro.rl import PredictiveAgent

    agent = PredictiveAgent(
        env_kwargs=TINY, episodes=1, batch_size=200, replay_capacity=200, device="cpu"
    ).fit()
    assert agent.n_updates_ == 0
    out = analyse_agent(agent, n_permutations=0)
    assert out["tuning"]["trained"] == out["tuning"]["untrained"]


def test_transfer_refuses_non_grid_and_missing_agents(rng):
    comp = RLComparison({"model-free": rng.normal(50, 5, (2, 3))})
    with pytest.raises(InputError, match="keep_agents=True"):
        transfer_agents(comp)
    track = train_agents(
        {"mf": {"objective": "model-free", **FAST}},
        seeds=[0],
        env="neuro/LinearTrack-v0",
        episodes=1,
        analyse=False,
    )
    with pytest.raises(InputError, match="needs a grid task"):
        transfer_agents(track)


def test_resume_equals_uninterrupted(tmp_path):
    configs = {"pred": {"objective": "predictive", "gamma_p": 0.5, **FAST}}
    kw = {"seeds": [3], "env_kwargs": TINY, "analyse": False, "checkpoint_every": 1}
    whole = train_agents(configs, episodes=4, checkpoint_root=tmp_path / "a", **kw)
    train_agents(configs, episodes=2, checkpoint_root=tmp_path / "b", **kw)
    resumed = train_agents(configs, episodes=4, checkpoint_root=tmp_path / "b", resume=True, **kw)
    np.testing.assert_array_equal(resumed.curves["pred"], whole.curves["pred"])
    np.testing.assert_array_equal(resumed.losses["pred"], whole.losses["pred"])
    with pytest.raises(OutputExistsError, match="resume=True"):  # no silent overwrite
        train_agents(configs, episodes=4, checkpoint_root=tmp_path / "b", **kw)
