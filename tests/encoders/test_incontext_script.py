"""``scripts/incontext_encoder.py``: simulate or load subjects, meta-train, write the scaling curve."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuro.encoders.incontext import InContextEncoder, unit_embeddings

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "incontext_encoder.py"
FAST = ["--epochs", "2", "--repeats", "1", "--device", "cpu", "-q"]


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
    spec = importlib.util.spec_from_file_location("incontext_encoder_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_subjects(folder: Path, n_images=(70, 80, 90), n_voxels=(9, 7, 8), embed_dim=6):
    """Subjects as a user would save them: np.savez(path, X=..., Y=..., [ceiling, image_ids])."""
    rng = np.random.default_rng(0)
    prototypes = rng.standard_normal((2, embed_dim))
    paths = []
    for s, (n, v) in enumerate(zip(n_images, n_voxels, strict=True)):
        x = rng.standard_normal((n, embed_dim)).astype(np.float32)
        w = prototypes[rng.integers(2, size=v)] + 0.2 * rng.standard_normal((v, embed_dim))
        y = unit_embeddings(x) @ w.T + 0.3 * rng.standard_normal((n, v))
        path = folder / f"sub-{s + 1}.npz"
        if s == len(n_images) - 1:  # the last one carries the optional arrays
            np.savez(path, X=x, Y=y, ceiling=np.full(v, 0.8), image_ids=np.arange(n) + 1000)
        else:
            np.savez(path, X=x, Y=y)
        paths.append(path)
    return paths


def test_help(tmp_path):
    run = _run("--help", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: incontext_encoder")
    for flag in ("--subject-data", "--held-out", "--ks", "--epochs", "--paper-size", "--overwrite"):
        assert flag in run.stdout


def test_tiny_simulated_run_writes_everything(tmp_path):
    out = tmp_path / "run"
    tiny = ["--subjects", "3", "--stimuli", "60", "--voxels-per-roi", "2", "--ks", "10", "20"]
    run = _run(*tiny, *FAST, "--out", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "in-context wins at K =" in run.stdout and "leans most on image" in run.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["held_out"] == "sub-03"
    assert metrics["training_subjects"] == ["sub-01", "sub-02"]
    assert metrics["n_test_images"] == 12 and metrics["epochs_trained"] == 2
    assert metrics["embed_dim"] == 24
    means = pd.read_csv(out / "scaling_means.csv")
    assert means["k"].tolist() == [10, 20]
    assert set(means.columns) >= {"incontext_r", "ridge_r", "incontext_nnr", "ridge_nnr"}
    assert set(means["better"]) <= {"incontext", "ridge"}
    assert [row["k"] for row in metrics["scaling"]] == [10, 20]
    curve = pd.read_csv(out / "scaling_curve.csv")
    assert len(curve) == 4 and set(curve["model"]) == {"incontext", "ridge"}
    attention = pd.read_csv(out / "support_attention.csv")
    assert len(attention) == 25 and attention["rank"].tolist() == list(range(1, 26))
    assert attention["attention"].is_monotonic_decreasing
    assert set(attention["category"]) <= {"face", "scene", "object", "text"}
    assert (out / "summary.txt").read_text().startswith("meta-trained on 2 subjects")
    for name in ("scaling_curve.png", "support_attention.png"):
        assert (out / "figures" / name).stat().st_size > 1000
    model = InContextEncoder.load(out / "model.pt")  # what fit-encoder --incontext-model reads
    assert model.n_features_in_ == 24 and len(model.history_) == 2


def test_subject_data_files(tmp_path, script, capsys):
    paths = _write_subjects(tmp_path)
    out = tmp_path / "out"
    argv = ["--subject-data", *map(str, paths), "--ks", "10", "30", "500", *FAST]
    assert script.main([*argv, "--no-figures", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped K = [500]" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["held_out"] == "sub-3.npz" and metrics["n_held_out_voxels"] == 8
    assert metrics["n_training_voxels"] == 16 and metrics["embed_dim"] == 6
    assert metrics["skipped_k"] == [500] and metrics["n_test_images"] == 18
    means = pd.read_csv(out / "scaling_means.csv")
    assert means["k"].tolist() == [10, 30] and "ridge_nnr" in means  # the file's ceiling
    attention = pd.read_csv(out / "support_attention.csv")
    assert attention["image_id"].min() >= 1000  # the file's image ids
    assert "category" not in attention and not (out / "figures").exists()

    # hold out the first subject (no ceiling in its file: no noise-normalised columns)
    out0 = tmp_path / "out0"
    assert script.main([*argv, "--held-out", "0", "--voxel", "3", "--out", str(out0)]) == 0
    metrics = json.loads((out0 / "metrics.json").read_text())
    assert metrics["held_out"] == "sub-1.npz" and metrics["attention_voxel"] == 3
    assert "ridge_nnr" not in pd.read_csv(out0 / "scaling_means.csv")
    model = InContextEncoder.load(out0 / "model.pt")
    with np.load(paths[0]) as held:
        pred = model.predict(held["X"], support_X=held["X"][:20], support_Y=held["Y"][:20])
    assert pred.shape == (70, 9) and np.isfinite(pred).all()


def _bad_files(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    rng = np.random.default_rng(1)
    good = folder / "good.npz"
    np.savez(good, X=rng.standard_normal((40, 6)), Y=rng.standard_normal((40, 3)))
    no_y = folder / "no_y.npz"
    np.savez(no_y, X=rng.standard_normal((40, 6)))
    other_e = folder / "other_e.npz"
    np.savez(other_e, X=rng.standard_normal((40, 5)), Y=rng.standard_normal((40, 3)))
    rows = folder / "rows.npz"
    np.savez(rows, X=rng.standard_normal((40, 6)), Y=rng.standard_normal((39, 3)))
    ceiling = folder / "ceiling.npz"
    np.savez(ceiling, X=rng.standard_normal((40, 6)), Y=rng.standard_normal((40, 3)), ceiling=[1])
    garbage = folder / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    return {
        "good": good,
        "no_y": no_y,
        "other_e": other_e,
        "rows": rows,
        "ceiling": ceiling,
        "garbage": garbage,
    }


@pytest.mark.parametrize(
    ("files", "extra", "message"),
    [
        (["good", "no_y"], [], r"--subject-data '\S+no_y.npz' has no Y \(it holds \['X'\]\)"),
        (
            ["good", "other_e"],
            [],
            "--subject-data other_e.npz: X has embeddings of length 5 but good.npz has 6; embed "
            "every subject's images with the same model.$",
        ),
        (["good", "rows"], [], "rows.npz: X has 40 images but Y has 39 rows"),
        (["good", "ceiling"], [], "ceiling.npz: ceiling has 1 values but Y has 3 voxels"),
        (["good", "garbage"], [], r"'\S+garbage.npz' is not a readable .npz file \(not a NumPy"),
        (["good"], [], "--subject-data needs at least 2 files"),
        (["good", "good"], ["--held-out", "2"], "--held-out 2 is not a subject: there are 2"),
        (["good", "good"], ["--stimuli", "50"], "--stimuli set the simulation"),
        (["good", "good"], ["--voxel", "3"], "--voxel 3 is not a voxel of good.npz: it has 3"),
        (["good", "good"], ["--ks", "1"], "--ks must be an integer >= 2; got 1."),
    ],
)
def test_bad_input_is_one_line(tmp_path, script, capsys, files, extra, message):
    paths = _bad_files(tmp_path / "data")
    out = tmp_path / "out"
    argv = ["--subject-data", *(str(paths[f]) for f in files), *extra, *FAST]
    assert script.main([*argv, "--no-figures", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("incontext_encoder: error: ") and "\n" not in err
    assert re.search(message, err), err
    assert not out.exists()  # a failed run leaves no empty folder behind


def test_an_existing_output_is_refused_before_any_work(tmp_path, script, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert script.main(["--stimuli", "40", *FAST, "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"incontext_encoder: error: The output folder {str(out)!r} exists and is not empty. "
        "Choose another folder, or pass overwrite=True (--overwrite on the command line) to "
        "write over it."
    )
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
