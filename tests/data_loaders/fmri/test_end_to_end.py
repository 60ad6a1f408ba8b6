"""The simulator written to disk, read back by the real-data readers, gives its planted truth."""

import numpy as np
import pandas as pd
import pytest

from data_loaders.fmri import FMRIDataset, load_nifti_betas
from data_loaders.simulate.fmri import simulate_fmri


@pytest.fixture(scope="module")
def sim():
    return simulate_fmri(
        n_subjects=1, n_stimuli=40, n_repeats=3, image_size=24, voxels_per_roi=5, seed=4
    )


def test_nifti_files_read_back_as_the_simulated_subject(sim, tmp_path):
    sub = sim.subjects[0]
    paths = sub.write_nifti(tmp_path)
    names = pd.read_csv(paths["roi_names"], sep="\t")
    loaded = load_nifti_betas(
        paths["betas"],
        paths["trials"],
        mask_img=paths["mask"],
        labels_img=paths["rois"],
        label_names=dict(zip(names["index"], names["name"], strict=True)),
    )
    # match voxels by MNI position
    order = {tuple(np.round(c, 3)): i for i, c in enumerate(sub.coords)}
    idx = np.array([order[tuple(np.round(c, 3))] for c in loaded.coords])
    assert sorted(idx.tolist()) == list(range(sub.n_voxels))
    np.testing.assert_allclose(loaded.betas, sub.betas[:, idx], rtol=1e-6)
    assert np.array_equal(loaded.roi_labels, sub.roi_labels[idx])
    assert np.array_equal(loaded.stimulus_ids, sub.stimulus_ids)

    ds = loaded.to_dataset(stimuli=sim.stimuli.images, name=sub.name)
    assert isinstance(ds, FMRIDataset)
    est = ds.noise_ceiling().r2(3)
    np.testing.assert_allclose(
        est, FMRIDataset.from_simulation(sub).noise_ceiling().r2(3)[idx], rtol=1e-5
    )
    assert np.corrcoef(est, sub.true_noise_ceiling(3)[idx])[0, 1] > 0.8
    assert ds.select_rois("FFA").n_voxels == int((sub.roi_labels == "FFA").sum())


def test_bids_runs_give_back_the_single_trial_betas(tmp_path):
    from data_loaders.fmri import estimate_single_trial_betas, find_bids_runs

    small = simulate_fmri(
        n_subjects=1, n_stimuli=20, n_repeats=2, image_size=24, voxels_per_roi=2, seed=1
    )
    sub = small.subjects[0]
    paths = sub.write_bids(tmp_path / "bids", trials_per_run=20)
    runs = find_bids_runs(tmp_path / "bids", "sub-01", "sim")
    assert len(runs) == 2 and runs[0].t_r == 2.0
    # LSA fits the generative model exactly; LSS lumps a run's other trials into one
    # regressor, so with trials 6 s apart it recovers them less exactly.
    for method, r_min in (("lsa", 0.99), ("lss", 0.85)):
        est = estimate_single_trial_betas(
            runs, mask_img=paths["mask"], method=method
        ).to_nifti_betas()
        order = {tuple(np.round(c, 3)): i for i, c in enumerate(sub.coords)}
        idx = np.array([order[tuple(np.round(c, 3))] for c in est.coords])
        assert np.array_equal(est.stimulus_ids, sub.stimulus_ids)
        assert np.corrcoef(est.betas.ravel(), sub.betas[:, idx].ravel())[0, 1] > r_min, method


def test_nsd_hdf5_reads_back_as_the_simulated_subject(sim, tmp_path):
    from data_loaders.fmri import NSDSession

    sub = sim.subjects[0]
    path = sub.write_nsd_hdf5(tmp_path / "sub-01_session01.hdf5")
    with NSDSession(path) as session:
        ds = session.to_dataset(stimuli=sim.stimuli.images, voxel_batch_size=7)
    np.testing.assert_allclose(ds.betas, sub.betas, atol=0.5 / 300 + 1e-6)
    assert np.array_equal(ds.roi_labels, sub.roi_labels)
    np.testing.assert_allclose(ds.coords, sub.coords)
    est = ds.noise_ceiling().r2(3)
    assert np.corrcoef(est, sub.true_noise_ceiling(3))[0, 1] > 0.8
