"""Sessions flow from the files to the fit, and the Python API and the CLI agree on them.

Real studies shift each voxel's baseline and gain from session to session.
The trial table's ``session`` column must reach the dataset on every path
(NIfTI, BIDS, arrays), the responses must be z-scored within sessions before
repeats are averaged, and the noise ceiling must be computed the same way,
so that ``neuro fit-encoder`` and the README's Python example give the same
numbers on the same files.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from data_loaders.fmri import FMRIDataset, load_nifti_betas
from data_loaders.simulate.fmri import simulate_fmri
from neuro.cli import main
from neuro.encoders.compare import compare_encoders
from neuro.errors import InputError


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    """A three-session subject with strong per-session baseline and gain shifts, on disk."""
    sim = simulate_fmri(
        n_subjects=1, n_stimuli=60, n_repeats=3, image_size=32, voxels_per_roi=3, n_sessions=3
    )
    sub = sim.subjects[0]
    rng = np.random.default_rng(1)
    n_sessions = 3
    offset = rng.normal(0, 1.5, (n_sessions, sub.betas.shape[1]))
    gain = rng.uniform(0.5, 2.0, (n_sessions, sub.betas.shape[1]))
    betas = sub.betas * gain[sub.session_ids] + offset[sub.session_ids]
    sub = dataclasses.replace(sub, betas=betas.astype(np.float32))
    folder = tmp_path_factory.mktemp("sessions")
    paths = sub.write_nifti(folder)
    images = folder / "images.npy"
    np.save(images, sim.stimuli.images)
    features = folder / "features.npy"
    np.save(features, sim.feature_maps[:, None, ::4, ::4].astype(np.float32))
    return sub, paths, images, features


def _readme_python(paths, images, features, **kwargs):
    """The README's Python example on the same files."""
    names = pd.read_csv(paths["roi_names"], sep="\t")
    betas = load_nifti_betas(
        str(paths["betas"]),
        str(paths["trials"]),
        mask_img=str(paths["mask"]),
        labels_img=str(paths["rois"]),
        label_names=dict(zip(names["index"], names["name"], strict=True)),
    )
    ds = betas.to_dataset(stimuli=str(images))
    return ds, compare_encoders(ds, ["ridge"], features=np.load(features), device="cpu", **kwargs)


def test_sessions_reach_the_dataset_from_the_trial_table(shifted):
    sub, paths, images, _ = shifted
    betas = load_nifti_betas(str(paths["betas"]), str(paths["trials"]), mask_img=str(paths["mask"]))
    np.testing.assert_array_equal(betas.session_ids, sub.session_ids)
    ds = betas.to_dataset(stimuli=str(images))
    np.testing.assert_array_equal(ds.session_ids, sub.session_ids)
    assert ds.n_sessions == 3 and "n_sessions=3" in repr(ds)
    # an explicit column name, and an explicit array, win over the default column
    table = pd.read_csv(paths["trials"], sep="\t").rename(columns={"session": "ses"})
    named = load_nifti_betas(
        str(paths["betas"]), table, mask_img=str(paths["mask"]), session_ids="ses"
    )
    np.testing.assert_array_equal(named.session_ids, sub.session_ids)
    none = load_nifti_betas(str(paths["betas"]), table, mask_img=str(paths["mask"]))
    assert none.session_ids is None
    with pytest.raises(InputError, match="names a trial-table column.*'ses'"):
        load_nifti_betas(str(paths["betas"]), table, mask_img=str(paths["mask"]), session_ids="run")


def test_the_ceiling_uses_the_sessions_on_the_python_path(shifted):
    """The bug: to_dataset dropped the session column, so the ceiling was biased low."""
    sub, paths, images, features = shifted
    ds, _ = _readme_python(paths, images, features)
    right = ds.noise_ceiling().r2(3)
    ignored = FMRIDataset(ds.betas, ds.stimulus_ids, roi_labels=ds.roi_labels).noise_ceiling()
    order = {tuple(np.round(c, 3)): i for i, c in enumerate(sub.coords)}
    truth = sub.true_noise_ceiling(3)[[order[tuple(np.round(c, 3))] for c in ds.coords]]
    # with the sessions the ceiling is close to the planted one; without them far below it
    assert np.abs(right - truth).mean() < 0.08
    assert (truth - ignored.r2(3)).mean() > 0.15


def test_python_api_and_cli_agree_to_the_last_digit(shifted, tmp_path):
    _, paths, images, features = shifted
    out = tmp_path / "cli"
    args = [
        "fit-encoder",
        "--betas", str(paths["betas"]),
        "--trials", str(paths["trials"]),
        "--mask", str(paths["mask"]),
        "--labels", str(paths["rois"]),
        "--label-names", str(paths["roi_names"]),
        "--images", str(images),
        "--features", str(features),
        "--model", "ridge",
        "--out", str(out),
        "--device", "cpu",
        "-q",
    ]  # fmt: skip
    assert main(args) == 0
    cli = json.loads((out / "metrics.json").read_text())
    _, result = _readme_python(paths, images, features)
    api = json.loads(json.dumps(result.summary()))
    for metrics in (cli, api):  # wall-clock time is the one figure that may differ
        for encoder in metrics["encoders"].values():
            encoder.pop("fit_seconds")
    assert cli["encoders"] == api["encoders"]
    cli_voxels = pd.read_csv(out / "voxels.csv")
    api_voxels = result.voxel_table()
    for column in ("r_ridge", "ceiling_r2"):
        np.testing.assert_array_equal(cli_voxels[column].to_numpy(), api_voxels[column].to_numpy())


def test_zscoring_within_sessions_helps_and_can_be_turned_off(shifted):
    _, paths, images, features = shifted
    _, within = _readme_python(paths, images, features)
    _, raw = _readme_python(paths, images, features, zscore=False)
    r_within = float(np.mean(within.scores["ridge"]))
    r_raw = float(np.mean(raw.scores["ridge"]))
    assert r_within > r_raw + 0.01, (r_within, r_raw)


def test_dataset_zscore_is_per_session():
    rng = np.random.default_rng(0)
    sessions = np.repeat(["01", "02"], 20)
    betas = rng.normal(size=(40, 5)) + np.where(sessions == "02", 10.0, 0.0)[:, None]
    ds = FMRIDataset(betas, np.tile(np.arange(20), 2), session_ids=sessions)
    z = ds.zscore()
    for s in ("01", "02"):
        rows = z.session_ids == s
        np.testing.assert_allclose(z.betas[rows].mean(0), 0, atol=1e-6)
        np.testing.assert_allclose(z.betas[rows].std(0), 1, atol=1e-5)
    np.testing.assert_array_equal(ds.betas, betas.astype(np.float32))  # the original is untouched


@pytest.mark.parametrize(
    ("sessions", "match"),
    [
        (np.array([1.0, np.nan, 2.0, 2.0]), "1 trial\\(s\\) have no session \\(NaN\\)"),
        (np.array(["a", "", "b", "b"], dtype=object), "have no session \\(empty"),
        (np.array([1, 1, 2]), "one session label per trial \\(4\\)"),
    ],
)
def test_bad_session_labels_are_refused_in_one_line(sessions, match):
    with pytest.raises(InputError, match=match):
        FMRIDataset(
            np.random.default_rng(0).normal(size=(4, 3)), [0, 1, 0, 1], session_ids=sessions
        )


def test_bids_sessions_become_the_trial_table_session_column(tmp_path):
    """Runs in ses-XX folders carry their session to the betas and the dataset."""
    from data_loaders.fmri import estimate_single_trial_betas, find_bids_runs

    small = simulate_fmri(
        n_subjects=1, n_stimuli=20, n_repeats=2, image_size=24, voxels_per_roi=2, seed=1
    )
    paths = small.subjects[0].write_bids(tmp_path / "bids", trials_per_run=20)
    sub = paths["root"] / "sub-01"
    for run, ses in ((1, "01"), (2, "02")):  # the layout of a two-session study
        func = sub / f"ses-{ses}" / "func"
        func.mkdir(parents=True)
        for kind in ("bold.nii.gz", "events.tsv"):
            (sub / "func" / f"sub-01_task-sim_run-{run}_{kind}").rename(
                func / f"sub-01_ses-{ses}_task-sim_run-{run}_{kind}"
            )
    (sub / "func").rmdir()
    runs = find_bids_runs(paths["root"], "01", "sim")
    assert [r.entities["ses"] for r in runs] == ["01", "02"]
    single = estimate_single_trial_betas(runs, mask_img=paths["mask"])
    assert single.trials["session"].tolist() == ["01"] * 20 + ["02"] * 20
    ds = single.to_nifti_betas().to_dataset()
    assert ds.n_sessions == 2
    np.testing.assert_array_equal(ds.session_ids, np.repeat(["01", "02"], 20))
    # the labels survive a round trip through the saved trial table (read back as ints)
    saved = single.save(tmp_path / "betas")
    again = load_nifti_betas(saved / "betas.nii.gz", saved / "trials.tsv")
    np.testing.assert_array_equal(again.session_ids, np.repeat([1, 2], 20))
    with pytest.raises(InputError, match="one session label per run \\(2\\)"):
        estimate_single_trial_betas(runs, mask_img=paths["mask"], sessions=["01"])


def test_hdf5_session_files_join_as_sessions_in_the_api_and_the_cli(tmp_path):
    """One NSD-style file per session: each becomes its own session, the same on both paths."""
    from data_loaders.fmri import NSDSession, write_nsd_session

    sim = simulate_fmri(
        n_subjects=1, n_stimuli=40, n_repeats=2, image_size=32, voxels_per_roi=3, n_sessions=2
    )
    sub = sim.subjects[0]
    shift = np.where(sub.session_ids == 1, 2.0, 0.0)[:, None]  # session 2 sits 2% higher
    files = []
    for s in (0, 1):
        rows = sub.session_ids == s
        files.append(tmp_path / f"betas_session{s + 1:02d}.hdf5")
        write_nsd_session(
            files[-1], sub.betas[rows] + shift[rows], sub.stimulus_ids[rows], geometry=sub.geometry
        )
    np.save(tmp_path / "images.npy", sim.stimuli.images)
    np.save(tmp_path / "features.npy", sim.feature_maps[:, None, ::4, ::4].astype(np.float32))
    parts = []
    for number, path in enumerate(files, start=1):
        with NSDSession(path) as session:
            parts.append(session.to_dataset(session=number, drop_bad=False))
    ds = FMRIDataset.concatenate(parts)
    assert ds.n_sessions == 2 and ds.n_trials == sub.betas.shape[0]
    np.testing.assert_array_equal(ds.session_ids, np.repeat([1, 2], [len(p.betas) for p in parts]))
    api = compare_encoders(ds, ["ridge"], features=np.load(tmp_path / "features.npy"), device="cpu")
    out = tmp_path / "cli"
    args = ["fit-encoder", "--hdf5", *map(str, files), "--features", str(tmp_path / "features.npy")]
    assert main([*args, "--model", "ridge", "--out", str(out), "--device", "cpu", "-q"]) == 0
    cli = json.loads((out / "metrics.json").read_text())
    expected = json.loads(json.dumps(api.summary()))
    for metrics in (cli, expected):
        metrics["encoders"]["ridge"].pop("fit_seconds")
    assert cli == expected
    # the two parts must hold the same voxels, and a session label cannot repeat
    with pytest.raises(InputError, match="does not hold the voxels"):
        FMRIDataset.concatenate([parts[0], parts[1]._subset(voxels=slice(1, None))])
    with pytest.raises(InputError, match="reuses session label"):
        FMRIDataset.concatenate([parts[0], parts[0]])
