"""``neuro simulate-fmri`` (neuro/simulate_command.py), run through ``neuro.cli.main``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from data_loaders.fmri import find_bids_runs, load_nifti_betas
from data_loaders.stimuli import ImageFolder
from neuro.cli import main

TINY = ["--stimuli", "8", "--repeats", "2", "--image-size", "16", "--voxels-per-roi", "2"]


def test_writes_a_study_the_readers_read_back(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["simulate-fmri", "--out", str(out), "--subjects", "1", *TINY, "--bids"]) == 0
    printed = capsys.readouterr().out
    assert "8 images" in printed and "sub-01" in printed

    assert len(ImageFolder(out / "stimuli")) == 8
    truth = np.load(out / "truth" / "sub-01.npz", allow_pickle=False)
    n_vox = len(truth["roi_labels"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_stimuli"] == 8
    assert summary["subjects"][0]["n_voxels"] == n_vox
    assert summary["subjects"][0]["n_trials"] == 16

    sub = out / "sub-01"
    names = pd.read_csv(sub / "sub-01_rois.tsv", sep="\t")
    betas = load_nifti_betas(
        sub / "sub-01_betas.nii.gz",
        sub / "sub-01_trials.tsv",
        mask_img=sub / "sub-01_mask.nii.gz",
        labels_img=sub / "sub-01_rois.nii.gz",
        label_names=dict(zip(names["index"], names["name"], strict=True)),
    )
    assert betas.betas.shape == (16, n_vox)
    # the same voxels, at the same MNI positions, with the same ROI labels
    planted = {
        tuple(np.round(c, 3)): r for c, r in zip(truth["coords"], truth["roi_labels"], strict=True)
    }
    read = {tuple(np.round(c, 3)): r for c, r in zip(betas.coords, betas.roi_labels, strict=True)}
    assert read == planted

    runs = find_bids_runs(out / "bids", "01", "sim")
    assert len(runs) == 1 and runs[0].t_r == 2.0 and len(runs[0].events) == 16


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--subjects", "0"], "--subjects must be an integer >= 1"),
        (["--stimuli", "0"], "--stimuli must be an integer >= 1"),
        (["--repeats", "0"], "--repeats must be an integer >= 1"),
        (["--image-size", "8"], "--image-size must be an integer >= 16"),
        (["--voxels-per-roi", "0"], "--voxels-per-roi must be an integer >= 1"),
        (["--snr", "-1"], "--snr must be > 0"),
    ],
)
def test_bad_options_are_one_line_naming_the_flag(tmp_path, capsys, args, message):
    out = tmp_path / "bad"
    assert main(["simulate-fmri", "--out", str(out), *TINY, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # a failed run leaves no empty output folder


def test_an_existing_study_is_kept_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "sim"
    args = ["simulate-fmri", "--out", str(out), "--subjects", "1", *TINY, "-q"]
    assert main(args) == 0
    before = (out / "sub-01" / "sub-01_betas.nii.gz").read_bytes()
    capsys.readouterr()
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--seed", "1"]) == 0
    assert (out / "sub-01" / "sub-01_betas.nii.gz").read_bytes() != before


def test_help_shows_each_default_once(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["simulate-fmri", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for default in ("(default: 2)", "(default: 120)", "(default: 64)", "(default: 1.0)"):
        assert text.count(default) == 1, default
