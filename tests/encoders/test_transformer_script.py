"""``scripts/transformer_encoder.py``: simulate or load, compare, write the table and routing maps."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_loaders.simulate.fmri import simulate_fmri

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "transformer_encoder.py"
TINY = ["--stimuli", "60", "--voxels-per-roi", "2", "--epochs", "3", "--device", "cpu"]


def _run(*args, cwd):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def script():
    """The script as a module (its functions, and ``main`` in this process)."""
    spec = importlib.util.spec_from_file_location("transformer_encoder_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help(tmp_path):
    run = _run("--help", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: transformer_encoder")
    for flag in ("--betas", "--features", "--stimuli", "--epochs", "--paper-size", "--overwrite"):
        assert flag in run.stdout


def test_tiny_simulated_run_writes_everything(tmp_path):
    out = tmp_path / "run"
    run = _run(*TINY, "-q", "--out", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "transformer" in run.stdout and "x chance" in run.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["encoders"]) == {"ridge", "gaussian", "transformer"}
    table = pd.read_csv(out / "roi_table.csv")
    assert set(table["model"]) == {"ridge", "gaussian", "transformer"}
    assert {"FFA", "LOC", "PPA", "VWFA", "V1"} <= set(table["roi"])
    overlap = pd.read_csv(out / "routing_overlap.csv")
    assert overlap["query"].tolist() == ["FFA", "LOC", "VWFA"]
    assert overlap["category"].tolist() == ["face", "object", "text"]
    ratio = overlap["attention_on_category"] / overlap["chance"]
    np.testing.assert_allclose(overlap["ratio"], ratio, rtol=1e-6)
    with np.load(out / "routing.npz", allow_pickle=False) as saved:
        maps, names, ids = saved["maps"], saved["query_names"].tolist(), saved["stimulus_ids"]
    assert len(ids) == 12 and maps.shape == (12, len(names), 8, 8)  # 20% of 60 held out
    np.testing.assert_allclose(maps.sum(axis=(2, 3)), 1.0, rtol=1e-5)
    assert names[:2] == ["FFA", "LOC"] and names[-1] == "VWFA"
    for name in ("routing_maps.png", "roi_comparison.png"):
        assert (out / "figures" / name).stat().st_size > 1000
    assert (out / "models" / "transformer.pt").exists()


def test_an_existing_output_is_refused_before_any_work(tmp_path, script, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert script.main([*TINY, "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"transformer_encoder: error: The output folder {str(out)!r} exists and is not empty. "
        "Choose another folder, or pass overwrite=True (--overwrite on the command line) to "
        "write over it."
    )
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_nifti_betas_with_precomputed_features(tmp_path, script, capsys):
    sim = simulate_fmri(n_subjects=1, n_stimuli=50, image_size=32, voxels_per_roi=2, seed=3)
    paths = sim.subjects[0].write_nifti(tmp_path / "data")
    features = tmp_path / "maps.npy"
    np.save(features, sim.stimuli.oracle_maps(8))
    out = tmp_path / "out"
    args = ["--betas", str(paths["betas"]), "--trials", str(paths["trials"])]
    args += ["--labels", str(paths["rois"]), "--label-names", str(paths["roi_names"])]
    args += ["--features", str(features), "--epochs", "2", "--device", "cpu", "-q"]
    assert script.main([*args, "--no-figures", "--out", str(out)]) == 0
    table = pd.read_csv(out / "roi_table.csv")
    assert "transformer" in set(table["model"]) and "FFA" in set(table["roi"])
    assert not (out / "figures").exists()
    with np.load(out / "routing.npz", allow_pickle=False) as saved:
        assert saved["maps"].shape[1:] == (len(saved["query_names"]), 8, 8)
    assert not (out / "routing_overlap.csv").exists()  # nothing planted to score against
    assert "wrote" in capsys.readouterr().out

    # a feature vector per image has no positions for the queries to attend to
    flat = tmp_path / "flat.npy"
    np.save(flat, sim.stimuli.oracle_maps(8).reshape(50, -1))
    bad = [a if a != str(features) else str(flat) for a in args]
    assert script.main([*bad, "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("transformer_encoder: error: --features must hold feature maps")
    assert "\n" not in err
    assert not (tmp_path / "o2").exists()  # a failed run leaves no empty folder behind


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--trials", "t.tsv"], "--trials go with --betas (your data)"),
        (["--betas", "b.nii.gz", "--stimuli", "40"], "--stimuli set the simulation"),
        (["--betas", "b.nii.gz", "--trials", "t.tsv"], "--betas needs --trials"),
        (["--stimuli", "5"], "--stimuli"),
        (["--image-size", "32", "--map-size", "5"], "--map-size 5 does not divide"),
        (["--category-tuning", "1.5"], "--category-tuning"),
    ],
)
def test_user_errors_are_one_line(tmp_path, script, capsys, argv, message):
    out = tmp_path / "never"
    assert script.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("transformer_encoder: error: ") and message in err, err
    assert "\n" not in err
    assert not out.exists()


def test_overlap_is_one_for_uniform_attention_and_higher_on_the_object(script):
    coverage = np.zeros((2, 4, 4, 4))
    coverage[:, 0, :2, :2] = 1.0  # a face in the top-left quarter of both images
    uniform = np.full((2, 2, 4, 4), 1 / 16)
    table = script.routing_overlap(uniform, ["FFA", "rest"], coverage)
    assert table["query"].tolist() == ["FFA"]
    assert table["chance"].iloc[0] == pytest.approx(0.25)
    assert table["ratio"].iloc[0] == pytest.approx(1.0)
    on_face = np.zeros((2, 1, 4, 4))
    on_face[:, 0, :2, :2] = 0.25
    assert script.routing_overlap(on_face, ["FFA-left"], coverage)["ratio"].iloc[0] == 4.0


def test_routing_figure_rows_are_the_routed_queries(script):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    routing = rng.dirichlet(np.ones(16), size=(5, 3)).reshape(5, 3, 4, 4)
    coverage = np.zeros((5, 4, 8, 8))
    coverage[:3, 0, :4, :4] = 1.0  # faces in three of the five images
    images = rng.random((5, 8, 8, 3))
    names = ["FFA-left", "V1-left", "VWFA-left"]
    fig = script.routing_figure(images, routing, names, coverage, {"FFA-left": 2.5}, n_columns=4)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "FFA-left (face): 2.5x chance"
    assert titles[1:3] == ["FFA-left (face)"] * 2 and titles[3] == ""  # three images hold a face
    assert titles[4:] == [""] * 4  # no text planted: the VWFA row stays empty
    plt.close(fig)
    fig = script.routing_figure(None, routing, ["A", "B", "rest"])  # real data, no images
    assert len(fig.axes) == 2 * 4 and fig.axes[0].get_title() == "A"
    plt.close(fig)
