"""BIDS runs and single-trial GLMs: planted amplitudes come back, bad datasets are named."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import make_first_level_design_matrix

from data_loaders.fmri.bids import (
    BidsRun,
    SingleTrialBetas,
    estimate_single_trial_betas,
    find_bids_runs,
)
from data_loaders.fmri.nifti import NiftiBetas

SHAPE = (8, 9, 7)
N_VOLS = 80
T_R = 2.0
N_TRIALS = 8
N_RUNS = 2
AFFINE = np.array([[3.0, 0, 0, -12], [0, 3.0, 0, -15], [0, 0, 3.0, -9], [0, 0, 0, 1]])
BRAIN = (slice(1, 7), slice(1, 8), slice(1, 6))


def _write_dataset(root, seed=0):
    """A two-run BIDS dataset; BOLD = 100 + planted trial amplitudes * glover HRF + noise."""
    rng = np.random.default_rng(seed)
    brain = np.zeros(SHAPE, dtype=bool)
    brain[BRAIN] = True
    n_vox = int(brain.sum())
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "tiny", "BIDSVersion": "1.8.0"})
    )
    frame_times = np.arange(N_VOLS) * T_R
    planted = []
    for run in range(1, N_RUNS + 1):
        onsets = 6.0 + 18.0 * np.arange(N_TRIALS) + rng.uniform(0, 2, N_TRIALS)
        events = pd.DataFrame(
            {
                "onset": onsets,
                "duration": 1.0,
                "trial_type": "image",
                "stimulus_id": rng.integers(0, 6, N_TRIALS),
            }
        )
        names = [f"t{k}" for k in range(N_TRIALS)]
        regs = make_first_level_design_matrix(
            frame_times,
            events[["onset", "duration"]].assign(trial_type=names),
            hrf_model="glover",
            drift_model=None,
        )[names].to_numpy()
        amps = rng.normal(0, 1, (N_TRIALS, n_vox))
        bold = np.zeros((*SHAPE, N_VOLS), dtype=np.float32)
        bold[brain] = (100 + regs @ amps + rng.normal(0, 0.1, (N_VOLS, n_vox))).T
        stem = f"sub-01_task-x_run-{run}"
        nib.save(nib.Nifti1Image(bold, AFFINE), func / f"{stem}_bold.nii.gz")
        (func / f"{stem}_bold.json").write_text(json.dumps({"RepetitionTime": T_R}))
        events.to_csv(func / f"{stem}_events.tsv", sep="\t", index=False)
        planted.append(amps)
    return np.concatenate(planted), brain


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("bids")
    planted, brain = _write_dataset(root)
    return root, planted, brain


@pytest.fixture(scope="module")
def mask_img(dataset):
    return nib.Nifti1Image(dataset[2].astype(np.uint8), AFFINE)


@pytest.fixture(scope="module")
def lsa(dataset, mask_img):
    runs = find_bids_runs(dataset[0], "01", "x")
    return estimate_single_trial_betas(runs, method="lsa", mask_img=mask_img)


def _recovered(result, planted, brain):
    est = np.asarray(result.beta_img.dataobj)[brain].T  # (n_trials, n_vox)
    assert est.shape == planted.shape
    return np.corrcoef(est.ravel(), planted.ravel())[0, 1]


# --------------------------------------------------------------------------- find_bids_runs


def test_find_bids_runs(dataset):
    root = dataset[0]
    runs = find_bids_runs(root, "sub-01", "x")
    assert [r.entities["run"] for r in runs] == ["1", "2"]
    assert all(isinstance(r, BidsRun) and r.t_r == T_R for r in runs)
    assert runs[0].bold.name == "sub-01_task-x_run-1_bold.nii.gz"
    assert runs[1].events_path.name == "sub-01_task-x_run-2_events.tsv"
    assert list(runs[0].events.columns) == ["onset", "duration", "trial_type", "stimulus_id"]
    assert len(runs[0].events) == N_TRIALS


def test_find_bids_runs_prefers_derivatives(tmp_path, dataset):
    root = tmp_path / "ds"
    shutil.copytree(dataset[0], root)
    deriv = root / "derivatives" / "fmriprep" / "sub-01" / "func"
    deriv.mkdir(parents=True)
    for run in (1, 2):
        src = root / "sub-01" / "func" / f"sub-01_task-x_run-{run}_bold.nii.gz"
        for space in ("MNI", "T1w"):
            name = f"sub-01_task-x_run-{run}_space-{space}_desc-preproc_bold.nii.gz"
            shutil.copy(src, deriv / name)
    runs = find_bids_runs(root, "01", "x", space="MNI")
    assert [r.bold.parent for r in runs] == [deriv, deriv]
    assert [r.entities["space"] for r in runs] == ["MNI", "MNI"]
    assert runs[1].events_path.parent == root / "sub-01" / "func"
    assert runs[0].t_r == T_R  # from the raw sidecar
    with pytest.raises(ValueError, match=r"several spaces \['MNI', 'T1w'\].*space="):
        find_bids_runs(root, "01", "x")


def test_find_bids_runs_unknown_subject_and_task(dataset):
    with pytest.raises(FileNotFoundError, match=r"no folder sub-02.*\['sub-01'\]"):
        find_bids_runs(dataset[0], "02", "x")
    with pytest.raises(FileNotFoundError, match=r"task='rest'.*\['x'\]"):
        find_bids_runs(dataset[0], "01", "rest")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        find_bids_runs(dataset[0] / "nope", "01", "x")


def test_find_bids_runs_missing_events(tmp_path, dataset):
    root = tmp_path / "ds"
    shutil.copytree(dataset[0], root)
    (root / "sub-01" / "func" / "sub-01_task-x_run-2_events.tsv").unlink()
    with pytest.raises(FileNotFoundError, match=r"run-2_bold.nii.gz has no events.*run-2_events"):
        find_bids_runs(root, "01", "x")


def test_find_bids_runs_missing_tr(tmp_path, dataset):
    root = tmp_path / "ds"
    shutil.copytree(dataset[0], root)
    (root / "sub-01" / "func" / "sub-01_task-x_run-1_bold.json").write_text("{}")
    with pytest.raises(ValueError, match=r"No RepetitionTime for run sub-01_task-x_run-1"):
        find_bids_runs(root, "01", "x")
    # a top-level sidecar is inherited
    (root / "sub-01" / "func" / "sub-01_task-x_run-1_bold.json").unlink()
    (root / "task-x_bold.json").write_text(json.dumps({"RepetitionTime": 1.5}))
    assert find_bids_runs(root, "01", "x")[0].t_r == 1.5


# --------------------------------------------------------------------------- single-trial GLM


def test_lsa_recovers_planted_amplitudes(lsa, dataset):
    _, planted, brain = dataset
    assert isinstance(lsa, SingleTrialBetas) and lsa.method == "lsa"
    assert lsa.beta_img.shape == (*SHAPE, N_RUNS * N_TRIALS)
    assert _recovered(lsa, planted, brain) > 0.9
    assert np.all(np.asarray(lsa.beta_img.dataobj)[~brain] == 0)


def test_trial_table_and_handoff_to_load_nifti_betas(lsa, dataset):
    root, planted, brain = dataset
    runs = find_bids_runs(root, "01", "x")
    t = lsa.trials
    assert list(t.columns) == ["run", "trial", "onset", "duration", "trial_type", "stimulus_id"]
    assert t["run"].tolist() == [0] * N_TRIALS + [1] * N_TRIALS
    expected = np.concatenate([r.events["stimulus_id"].to_numpy() for r in runs])
    np.testing.assert_array_equal(t["stimulus_id"], expected)
    np.testing.assert_allclose(t["onset"][:N_TRIALS], runs[0].events["onset"])
    nb = lsa.to_nifti_betas()
    assert isinstance(nb, NiftiBetas)
    assert nb.betas.shape == (N_RUNS * N_TRIALS, int(brain.sum()))
    np.testing.assert_array_equal(nb.stimulus_ids, expected)
    assert np.corrcoef(nb.betas.ravel(), planted.ravel())[0, 1] > 0.9


def test_lss_recovers_planted_amplitudes(dataset, mask_img):
    root, planted, brain = dataset
    runs = find_bids_runs(root, "01", "x")
    events = [r.events for r in runs]
    lss = estimate_single_trial_betas(
        [r.bold for r in runs], events, T_R, method="lss", mask_img=mask_img, n_jobs=1
    )
    assert lss.method == "lss" and lss.beta_img.shape[3] == N_RUNS * N_TRIALS
    assert _recovered(lss, planted, brain) > 0.9


def test_unsorted_events_come_back_in_onset_order(dataset, mask_img, lsa):
    root, _, _ = dataset
    runs = find_bids_runs(root, "01", "x")
    shuffled = [r.events.iloc[::-1] for r in runs]
    out = estimate_single_trial_betas([r.bold for r in runs], shuffled, T_R, mask_img=mask_img)
    pd.testing.assert_frame_equal(out.trials, lsa.trials)
    np.testing.assert_allclose(np.asarray(out.beta_img.dataobj), np.asarray(lsa.beta_img.dataobj))


def test_default_mask_and_save(tmp_path, dataset):
    root, _, brain = dataset
    runs = find_bids_runs(root, "01", "x")[:1]
    out = estimate_single_trial_betas(runs, drift_model=None, noise_model="ols")
    mask = np.asarray(out.mask_img.dataobj).astype(bool)
    assert mask.any() and not (mask & ~brain).any()  # the epi mask stays in the brain
    saved = out.save(tmp_path / "out")
    assert sorted(p.name for p in saved.iterdir()) == ["betas.nii.gz", "mask.nii.gz", "trials.tsv"]
    back = nib.load(saved / "betas.nii.gz")
    np.testing.assert_array_equal(np.asarray(back.dataobj), np.asarray(out.beta_img.dataobj))
    pd.testing.assert_frame_equal(pd.read_csv(saved / "trials.tsv", sep="\t"), out.trials)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        out.save(tmp_path / "out")


# --------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def run1(dataset):
    return find_bids_runs(dataset[0], "01", "x")[0]


def test_bad_method(run1):
    with pytest.raises(ValueError, match=r"method must be 'lsa'.*got 'lsx'"):
        estimate_single_trial_betas(run1, method="lsx")


def test_counts_must_match(run1):
    with pytest.raises(ValueError, match=r"1 BOLD run\(s\), 2 events table\(s\)"):
        estimate_single_trial_betas(run1.bold, [run1.events, run1.events], T_R)


@pytest.mark.parametrize("column", ["onset", "stimulus_id"])
def test_missing_event_column(run1, column):
    with pytest.raises(ValueError, match=rf"lacks column\(s\) \['{column}'\]"):
        estimate_single_trial_betas(run1.bold, run1.events.drop(columns=column), T_R)


def test_onset_after_run_end(run1):
    events = run1.events.assign(onset=run1.events["onset"] * 1000)  # ms, not s
    with pytest.raises(ValueError, match=r"start at or after the end of the run.*units"):
        estimate_single_trial_betas(run1.bold, events, T_R)


def test_mask_on_other_grid(run1):
    mask = nib.Nifti1Image(np.ones((8, 9, 6), np.uint8), AFFINE)
    with pytest.raises(ValueError, match=r"different voxel grids[\s\S]*resample_to_img"):
        estimate_single_trial_betas(run1, mask_img=mask)


def test_3d_bold_and_missing_file(run1, tmp_path):
    img3 = nib.Nifti1Image(np.ones(SHAPE, np.float32), AFFINE)
    with pytest.raises(ValueError, match=r"bold_imgs\[0\] must be a 4D BOLD run"):
        estimate_single_trial_betas(img3, run1.events, T_R)
    with pytest.raises(FileNotFoundError, match="missing_bold.nii.gz"):
        estimate_single_trial_betas(tmp_path / "missing_bold.nii.gz", run1.events, T_R)
