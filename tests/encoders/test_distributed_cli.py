"""``neuro fit-encoder`` under torchrun: two processes write what one process writes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from neuro.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _run(args, n_processes: int, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}  # torchrun's default
    if n_processes == 1:
        cmd = [sys.executable, "-m", "neuro", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd += [f"--nproc_per_node={n_processes}", "-m", "neuro", *args]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_fit_encoder_splits_voxels_across_two_processes(tmp_path):
    study = tmp_path / "study"
    sim = ["--stimuli", "60", "--repeats", "2", "--image-size", "32", "--voxels-per-roi", "8"]
    assert main(["simulate-fmri", "--out", str(study), "--subjects", "1", *sim, "-q"]) == 0
    sub = study / "sub-01"
    args = [
        "fit-encoder",
        "--betas", str(sub / "sub-01_betas.nii.gz"),
        "--trials", str(sub / "sub-01_trials.tsv"),
        "--labels", str(sub / "sub-01_rois.nii.gz"),
        "--label-names", str(sub / "sub-01_rois.tsv"),
        "--images", str(study / "stimuli"),
        "--image-size", "32", "--map-size", "8", "--device", "cpu", "-q",
    ]  # fmt: skip
    two = _run([*args, "--feature-cache", "two.h5", "--out", "two"], 2, tmp_path)
    assert "voxels split over 2 processes" in two.stdout
    _run([*args, "--model", "ridge", "--feature-cache", "one.h5", "--out", "one"], 1, tmp_path)
    voxels = pd.read_csv(tmp_path / "one" / "voxels.csv")
    assert len(voxels) > 64  # more than one slice of 64 voxels: both processes fitted some
    for name in ("voxels.csv", "roi_table.csv", "maps/r_ridge.nii.gz", "maps/best_model.nii.gz"):
        a, b = ((tmp_path / d / name).read_bytes() for d in ("one", "two"))
        assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest(), name
