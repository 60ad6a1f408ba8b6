"""``neuro fit-encoder`` and ``neuro demo`` end to end on small simulated data."""

import hashlib
import json

import numpy as np
import pytest

from neuro.cli import main

SIM = ["--stimuli", "80", "--repeats", "2", "--image-size", "32", "--voxels-per-roi", "3"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A simulated study written to disk as a real one: NIfTI, trial table, image folder."""
    out = tmp_path_factory.mktemp("study") / "sim"
    assert main(["simulate-fmri", "--out", str(out), "--subjects", "1", *SIM, "-q"]) == 0
    return out


def _nifti_args(study):
    sub = study / "sub-01"
    return [
        "--betas",
        str(sub / "sub-01_betas.nii.gz"),
        "--trials",
        str(sub / "sub-01_trials.tsv"),
        "--mask",
        str(sub / "sub-01_mask.nii.gz"),
        "--labels",
        str(sub / "sub-01_rois.nii.gz"),
        "--label-names",
        str(sub / "sub-01_rois.tsv"),
        "--images",
        str(study / "stimuli"),
    ]


def _hashes(folder):
    """SHA-256 of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_fit_encoder_on_nifti_files(study, tmp_path, capsys):
    before = _hashes(study)
    assert len(before) > 5  # betas, trials, mask, labels, label names, images
    out = tmp_path / "fit"
    args = ["fit-encoder", *_nifti_args(study), "--model", "ridge", "gaussian"]
    args += ["--epochs", "30", "--image-size", "32", "--map-size", "8", "--out", str(out)]
    assert main([*args, "-q", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "V1" in printed and "FFA" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["encoders"]) == {"ridge", "gaussian"}
    assert metrics["encoders"]["ridge"]["per_roi"]["V1"]["r"] > 0.2
    for rel in ("roi_table.csv", "maps/r_gaussian.nii.gz", "figures/roi_comparison.png"):
        assert (out / rel).is_file(), rel
    assert (out / "models" / "gaussian.pt").is_file() and (out / "models" / "ridge.pt").is_file()
    # the user's input files are untouched and a second run into the same folder is refused
    assert _hashes(study) == before
    assert main([*args, "-q", "--device", "cpu"]) == 2
    assert "exists and is not empty" in capsys.readouterr().err


def test_fit_encoder_selects_rois_and_uses_precomputed_features(study, tmp_path):
    from data_loaders.stimuli import ImageFolder
    from neuro.encoders.features import GaborFeatures

    images = ImageFolder(study / "stimuli")
    feats = GaborFeatures(map_size=8, device="cpu").transform(images.load(range(len(images))))
    np.save(tmp_path / "feats.npy", feats)
    out = tmp_path / "fit"
    args = ["fit-encoder", *_nifti_args(study), "--rois", "V1", "V2", "--model", "ridge"]
    args += ["--features", str(tmp_path / "feats.npy"), "--out", str(out), "-q"]
    assert main(args) == 0
    table = (out / "roi_table.csv").read_text()
    assert "V1" in table and "FFA" not in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--betas", "nowhere.nii.gz", "--trials", "t.tsv"], "--betas: no such file"),
        (["--betas", "x.nii.gz"], "--betas needs --trials"),
        (["--features", "missing.npy"], "--features: no such file: 'missing.npy'"),
        ([], "no data given: pass --betas"),
        (["--hdf5", "s.hdf5", "--trials", "t.tsv"], "--trials go with --betas"),
        (["--hdf5", "s.hdf5", "--mask", "m.nii", "--labels", "l.nii"], "--mask, --labels go with"),
        (["--hdf5", "gone.hdf5"], "--hdf5: no such file: 'gone.hdf5'"),
    ],
)
def test_fit_encoder_bad_input_is_one_clear_line(tmp_path, capsys, args, message):
    assert main(["fit-encoder", *args, "--out", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # a failed run leaves no empty folder


def test_fit_encoder_without_data_points_to_the_demo(tmp_path, capsys):
    assert main(["fit-encoder", "--out", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "--betas" in err and "--hdf5" in err and "neuro demo" in err


@pytest.mark.parametrize("flag", ["--betas", "--trials", "--labels", "--semantic", "--features"])
def test_fit_encoder_names_the_flag_of_a_missing_file(study, tmp_path, capsys, flag):
    args = _nifti_args(study)
    missing = str(tmp_path / "not-here.file")
    if flag in args:
        args[args.index(flag) + 1] = missing
    else:
        args += [flag, missing]
    assert main(["fit-encoder", *args, "--out", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"{flag}: no such file" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("flag", "content"),
    [("--betas", b"this is not a NIfTI image"), ("--semantic", b"not an array either")],
)
def test_fit_encoder_garbage_file_is_one_line(study, tmp_path, capsys, flag, content):
    garbage = tmp_path / ("x.nii.gz" if flag == "--betas" else "x.npy")
    garbage.write_bytes(content)
    args = _nifti_args(study)
    if flag in args:
        args[args.index(flag) + 1] = str(garbage)
    else:
        args += [flag, str(garbage)]
    assert main(["fit-encoder", *args, "--out", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "x." in err
    assert err.startswith(f"neuro fit-encoder: error: {flag}"), err  # the flag, not "images:"


def test_demo_compares_encoders_and_checks_the_truth(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), *SIM, "--epochs", "30", "-q", "--device", "cpu"]
    assert main([*args, "--model", "ridge", "gaussian", "semantic"]) == 0
    printed = capsys.readouterr().out
    assert "median error" in printed and "noise ceiling" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    truth = metrics["ground_truth"]
    assert truth["ceiling_r"] > 0.5
    # tiny data (80 images, 30 epochs): far from the tutorial's accuracy, but better than chance
    # (random centres in the map would be ~0.75 map units off)
    assert truth["gaussian"]["n_voxels"] > 0
    assert truth["gaussian"]["median_center_error"] < 0.6
    for rel in ("ground_truth.png", "roi_table.csv", "maps/best_model.nii.gz"):
        assert (out / rel).is_file(), rel


def test_fit_encoder_on_nsd_hdf5_with_a_feature_cache(tmp_path, capsys):
    from data_loaders.simulate.fmri import simulate_fmri

    sim = simulate_fmri(n_subjects=1, n_stimuli=60, image_size=32, voxels_per_roi=2, seed=4)
    h5 = sim.subjects[0].write_nsd_hdf5(tmp_path / "session.hdf5")
    np.save(tmp_path / "images.npy", sim.stimuli.images)
    cache = tmp_path / "features.h5"
    base = ["fit-encoder", "--hdf5", str(h5), "--images", str(tmp_path / "images.npy")]
    base += ["--model", "ridge", "--feature-cache", str(cache), "--map-size", "8", "-q"]
    base += ["--image-size", "32", "--rois", "V1", "V2", "V3"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    assert cache.is_file()
    stamp = cache.stat().st_mtime_ns
    assert main([*base, "--out", str(tmp_path / "b")]) == 0
    assert cache.stat().st_mtime_ns == stamp  # read back, not rewritten
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a["encoders"]["ridge"]["mean_r"] == b["encoders"]["ridge"]["mean_r"]
    assert set(a["encoders"]["ridge"]["per_roi"]) == {"V1", "V2", "V3", "all"}
