"""``scripts/neuroformer_simulated_circuit.py``: pretrain, generate, read connectivity, decode."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "neuroformer_simulated_circuit.py"
TINY = [
    "--neurons", "9", "--hubs", "2", "--duration", "20", "--intervals", "10",
    "--d-model", "16", "--heads", "2", "--block-size", "24", "--past-block-size", "48",
    "--epochs", "1", "--draws", "2", "--finetune-steps", "3", "--device", "cpu",
]  # fmt: skip
OUTPUTS = [
    "metrics.json",
    "summary.txt",
    "connectivity_auroc.csv",
    "generation.csv",
    "behavior_few_shot.csv",
    "connectivity.npz",
    "models/neuroformer.pt",
    *(f"figures/{n}.png" for n in ("raster", "connectivity", "behavior_few_shot", "training")),
]


def _run(*args, cwd):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def _numbers(value, where=""):
    """Every number in a JSON value, with where it sits (None counts as a missing number)."""
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _numbers(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [x for i, v in enumerate(value) for x in _numbers(v, f"{where}[{i}]")]
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return [(where, value)]
    return []


@pytest.fixture(scope="module")
def script():
    """The script as a module (its functions, and ``main`` in this process)."""
    spec = importlib.util.spec_from_file_location("neuroformer_circuit_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny run, once, as a separate process: (out folder, completed process)."""
    tmp = tmp_path_factory.mktemp("tiny")
    out = tmp / "run"
    return out, _run(*TINY, "-q", "--out", str(out), cwd=tmp)


def test_help(tmp_path):
    run = _run("--help", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: neuroformer_simulated_circuit")
    for flag in (
        "--neurons",
        "--hubs",
        "--duration",
        "--coupling",
        "--epochs",
        "--paper-size",
        "--label-fractions",
        "--unfreeze",
        "--device",
        "--out",
        "--overwrite",
    ):
        assert flag in run.stdout, flag


def test_tiny_run_writes_every_output_with_finite_numbers(tiny_run):
    out, run = tiny_run
    assert run.returncode == 0, run.stderr
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 100, name
    metrics = json.loads((out / "metrics.json").read_text())
    missing = [w for w, v in _numbers({k: v for k, v in metrics.items() if k != "settings"})
               if v is None or not math.isfinite(v)]  # fmt: skip
    assert not missing, f"not finite: {missing}"
    assert metrics["circuit"]["n_neurons"] == 9 and len(metrics["circuit"]["hubs"]) == 2
    assert metrics["split"] == {"train_s": 16.0, "val_s": 2.0, "test_s": 2.0}
    assert metrics["training"]["epochs_run"] == 1
    # the printout is summary.txt, then where it wrote
    summary = (out / "summary.txt").read_text()
    assert run.stdout.startswith(summary)
    assert "connectivity AUROC" in summary and "behaviour r" in summary


def test_tiny_run_tables_agree_with_the_saved_matrices(tiny_run, script):
    from neuro.spikes import connectivity_auroc

    out, run = tiny_run
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(out / "connectivity_auroc.csv")
    assert table["estimate"].tolist() == ["attention", "correlation", "glm"]
    with np.load(out / "connectivity.npz") as saved:
        adjacency = saved["adjacency"]
        assert saved["attention"].shape == adjacency.shape == (9, 9)
        for row in table.itertuples():
            est = np.nan_to_num(saved[row.estimate], nan=1.0 if row.estimate == "attention" else 0)
            assert row.auroc == pytest.approx(connectivity_auroc(est, adjacency))
            assert row.auroc_within_source == pytest.approx(
                connectivity_auroc(est, adjacency, within_source=True)
            )
        assert table["n_edges"].iloc[0] == int((adjacency != 0).sum())
        assert set(saved["hubs"].tolist()) <= set(range(9))
    assert ((table["hub_recall"] >= 0) & (table["hub_recall"] <= 1)).all()
    generation = pd.read_csv(out / "generation.csv")
    assert generation["model"].tolist() == ["neuroformer", "glm"]
    assert (generation["generated_rate_hz"] > 0).all() and (generation["n_pairs"] >= 2).all()
    curve = pd.read_csv(out / "behavior_few_shot.csv")
    assert set(curve["decoder"]) == {"neuroformer", "neuroformer_unfreeze1", "ridge"}
    assert sorted(set(curve["fraction"])) == [0.01, 0.05, 0.1, 1.0]
    full = curve[curve["fraction"] == 1.0]
    assert (full["draws"] == 1).all() and (curve[curve["fraction"] < 1]["draws"] == 2).all()
    # the same labelled moments for both decoders: one behaviour sample per window
    assert (curve.groupby("fraction")["n_labels"].nunique() == 1).all()
    assert curve["n_labels"].min() == 4  # 1% of ~300 windows is raised to MIN_LABELS


def test_tiny_run_saves_a_loadable_model_with_its_head(tiny_run):
    from neuro.spikes import Neuroformer

    out, run = tiny_run
    assert run.returncode == 0, run.stderr
    model = Neuroformer.load(out / "models" / "neuroformer.pt")
    assert model.n_neurons_ == 9 and model.behavior_coef_.shape == (1, 10 * 16)  # 10 windows
    assert model.n_behavior_samples_ > 250 and model.behavior_unfreeze_ == 0


def test_null_circuit_claims_no_structure(tmp_path, script, capsys):
    out = tmp_path / "null"
    assert script.main([*TINY, "--coupling", "0", "--unfreeze", "0", "-q", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "no connection" in printed and "nothing to recover" in printed
    assert "beats" not in printed
    metrics = json.loads((out / "metrics.json").read_text())
    con = metrics["connectivity"]
    assert metrics["circuit"]["n_edges"] == 0 and metrics["circuit"]["hubs"] == []
    assert "hubs none, 0 edges" in printed
    for key in ("auroc", "auroc_within_source", "hub_recall"):
        assert set(con[key].values()) == {None}, key
    assert "undefined" in con["note"]
    assert con["glm_pairs_z_above_4"] <= 2  # of 72 unconnected pairs
    table = pd.read_csv(out / "connectivity_auroc.csv")
    assert table["auroc"].isna().all() and table["note"].str.contains("no connection").all()
    curve = pd.read_csv(out / "behavior_few_shot.csv")
    assert set(curve["decoder"]) == {"neuroformer", "ridge"}  # --unfreeze 0
    assert (out / "figures" / "connectivity.png").stat().st_size > 1000


def test_an_existing_output_is_refused_before_any_work(tmp_path, script, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert script.main([*TINY, "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"neuroformer_simulated_circuit: error: The output folder {str(out)!r} exists and is not "
        "empty. Choose another folder, or pass overwrite=True (--overwrite on the command line) "
        "to write over it."
    )
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hubs", "5", "--neurons", "5"], "--hubs 5 must be below --neurons 5"),
        (["--duration", "10", "--intervals", "20"], "each needs at least 1 s"),
        (["--label-fractions", "0.1", "0"], "--label-fractions"),
        (["--label-fractions", "1.5"], "--label-fractions"),
        (["--paper-size", "--d-model", "32"], "--d-model set the small network's size"),
        (["--d-model", "30", "--heads", "4"], "--d-model 30 must be a multiple of --heads 4"),
        (["--unfreeze", "2"], "--unfreeze"),
        (["--coupling", "-1"], "--coupling"),
    ],
)
def test_user_errors_are_one_line(tmp_path, script, capsys, argv, message):
    out = tmp_path / "never"
    assert script.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neuroformer_simulated_circuit: error: ") and message in err, err
    assert "\n" not in err
    assert not out.exists()


def test_hub_recall_reads_the_strongest_sources(script):
    est = np.zeros((5, 5))
    est[:, 1] = 2.0  # neuron 1 drives everyone
    est[:, 3] = -1.5  # neuron 3 inhibits everyone: strength is |estimate|
    np.fill_diagonal(est, 9.0)  # self terms are not connectivity
    assert script.hub_recall(est, np.array([1, 3])) == 1.0
    assert script.hub_recall(est, np.array([1, 4])) == 0.5
    est[:, 3] = np.nan  # never observed: not a source
    assert script.hub_recall(est, np.array([3])) == 0.0
    assert math.isnan(script.hub_recall(est, np.array([], dtype=int)))


def test_connectivity_table_is_nan_with_a_note_for_a_null_circuit(script):
    rng = np.random.default_rng(0)
    adjacency = np.zeros((4, 4))
    adjacency[1, 0] = adjacency[2, 0] = 1.0
    perfect = {"attention": np.where(adjacency != 0, 3.0, 1.0), "glm": rng.normal(size=(4, 4))}
    table = script.connectivity_table(perfect, adjacency, np.array([0]))
    assert table.set_index("estimate").loc["attention", "auroc"] == 1.0
    assert table["hub_recall"].iloc[0] == 1.0 and (table["note"] == "").all()
    null = script.connectivity_table(perfect, np.zeros((4, 4)), np.array([0]))
    assert null["auroc"].isna().all() and null["hub_recall"].isna().all()
    assert null["auroc_within_source"].isna().all()
    assert (null["note"] == script.NULL_NOTE).all() and (null["n_edges"] == 0).all()


def test_better_names_the_winner_or_a_tie(script):
    assert script.better("a", 0.9, "b", 0.5) == "a"
    assert script.better("a", 0.9, "b", 0.5, higher=False) == "b"
    assert script.better("a", 0.5, "b", 0.505) == "tie"
    assert script.better("a", None, "b", 0.5) == "tie"


@pytest.mark.slow
def test_default_run_recovers_the_circuit(tmp_path, script, capsys):
    """The default settings (about 2 min on 2 cores): the figures the README quotes."""
    out = tmp_path / "default"
    assert script.main(["--device", "cpu", "-q", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    ce, auroc = metrics["cross_entropy"], metrics["connectivity"]["auroc"]
    assert ce["neuroformer"] < ce["frequency_entropy"] - 0.05
    assert auroc["attention"] > 0.6 and auroc["attention"] > auroc["correlation"] + 0.05
    assert auroc["glm"] > 0.85
    assert metrics["connectivity"]["auroc_within_source"]["glm"] > 0.7
    assert metrics["generation"]["neuroformer"]["rate_r"] > 0.8
    curve = pd.read_csv(out / "behavior_few_shot.csv").set_index(["decoder", "fraction"])
    assert curve.loc[("ridge", 1.0), "r_mean"] > 0.8
    assert curve.loc[("neuroformer", 1.0), "r_mean"] > curve.loc[("neuroformer", 0.01), "r_mean"]
