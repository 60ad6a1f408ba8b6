import numpy as np
import pytest

from data_loaders.fmri.repeats import noise_ceiling
from data_loaders.simulate.fmri import (
    CATEGORIES,
    ROIS,
    contrast_energy,
    make_stimuli,
    simulate_fmri,
)


@pytest.fixture(scope="module")
def sim():
    return simulate_fmri(
        n_subjects=2, n_stimuli=160, n_repeats=3, image_size=32, voxels_per_roi=8, seed=3
    )


def test_stimuli_have_categories_and_content():
    stim = make_stimuli(n_stimuli=12, size=24, seed=1)
    assert stim.images.shape == (12, 24, 24, 3) and stim.images.dtype == np.float32
    assert stim.images.min() >= 0 and stim.images.max() <= 1
    assert sorted(np.bincount(stim.categories).tolist()) == [3, 3, 3, 3]
    for i, cat in enumerate(stim.categories):
        cover = stim.content[i].mean(axis=(1, 2))
        assert cover[cat] > 0.03  # its own category is in the picture...
        assert np.all(np.delete(cover, cat) == 0)  # ...and no other


def test_shapes_and_planted_truth(sim):
    n_stim = len(sim.stimuli)
    for sub in sim.subjects:
        n_trials, n_vox = sub.betas.shape
        assert n_trials == 3 * n_stim and np.bincount(sub.stimulus_ids).tolist() == [3] * n_stim
        assert sub.clean.shape == (n_stim, n_vox) and sub.voxel_ijk.shape == (n_vox, 3)
        assert set(sub.roi_labels) == set(ROIS)
        early = np.isin(sub.roi_labels, ["V1", "V2", "V3", "V4"])
        assert np.all(np.isfinite(sub.prf_centers[early])) and np.all(
            np.isnan(sub.prf_sizes[~early])
        )
        assert np.all(sub.selectivity[early] == 0)
        # each category ROI prefers its own category
        for roi in ("FFA", "PPA", "LOC", "VWFA"):
            pref = CATEGORIES.index(ROIS[roi][2])
            assert np.all(sub.selectivity[sub.roi_labels == roi].argmax(axis=1) == pref)
        np.testing.assert_allclose(
            sub.coords, sub.voxel_ijk @ sub.affine[:3, :3].T + sub.affine[:3, 3]
        )


def test_subjects_differ(sim):
    a, b = sim.subjects
    assert a.n_voxels != b.n_voxels or not np.array_equal(a.voxel_ijk, b.voxel_ijk)


def test_voxels_lie_in_the_brain_near_their_roi(sim):
    from nilearn.datasets import load_mni152_brain_mask

    mask = load_mni152_brain_mask(resolution=2).get_fdata() > 0
    sub = sim.subjects[0]
    assert mask[tuple(sub.voxel_ijk.T)].all()
    assert len({tuple(v) for v in sub.voxel_ijk}) == sub.n_voxels  # no voxel in two ROIs
    for roi, (centre, _, _) in ROIS.items():
        left = sub.coords[(sub.roi_labels == roi) & (sub.hemisphere == "left")]
        assert np.linalg.norm(left.mean(axis=0) - np.array(centre)) < 15
        assert np.all(left[:, 0] < 5)


def test_early_voxels_follow_their_receptive_fields(sim):
    """Recomputing each early voxel from its planted pRF reproduces its noise-free response."""
    sub = sim.subjects[0]
    energy = contrast_energy(sim.stimuli.images)
    size = energy.shape[1]
    grid = (np.arange(size) + 0.5) / size * 2 - 1
    for v in np.flatnonzero(~np.isnan(sub.prf_sizes))[:10]:
        (cx, cy), s = sub.prf_centers[v], sub.prf_sizes[v]
        g = np.exp(-((grid[None, :] - cx) ** 2 + (grid[:, None] - cy) ** 2) / (2 * s**2))
        pred = (energy * g).sum(axis=(1, 2))
        assert np.corrcoef(pred, sub.clean[:, v])[0, 1] > 0.9999


def test_category_voxels_respond_wherever_the_category_is(sim):
    sub = sim.subjects[0]
    coverage = sim.stimuli.content.mean(axis=(2, 3))
    for v in np.flatnonzero(np.isnan(sub.prf_sizes))[:10]:
        pred = coverage @ sub.selectivity[v]  # depends on how much, not where
        assert np.corrcoef(pred, sub.clean[:, v])[0, 1] > 0.9999


def test_noise_ceiling_from_repeats_matches_the_planted_one(sim):
    for sub in sim.subjects:
        est = noise_ceiling(sub.betas, sub.stimulus_ids).r2(3)
        true = sub.true_noise_ceiling(3)
        assert np.corrcoef(est, true)[0, 1] > 0.85
        assert np.abs(est - true).mean() < 0.06


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_subjects": 0}, "n_subjects must be an integer >= 1"),
        ({"snr": -1.0}, "snr must be > 0"),
        ({"snr": float("nan")}, "snr must be a finite number"),
        ({"n_repeats": 1.5}, "n_repeats must be an integer"),
        ({"image_size": 8}, "size must be an integer >= 16"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_fmri(**{"n_stimuli": 8, "voxels_per_roi": 2, **kwargs})


def test_write_nifti_round_trip(sim, tmp_path):
    import nibabel as nib

    sub = sim.subjects[0]
    paths = sub.write_nifti(tmp_path)
    img = nib.load(paths["betas"])
    mask = nib.load(paths["mask"]).get_fdata() > 0
    assert img.shape[3] == len(sub.stimulus_ids) and mask.sum() == sub.n_voxels
    ijk = np.argwhere(mask)
    world = ijk @ img.affine[:3, :3].T + img.affine[:3, 3]
    order = np.lexsort(sub.coords.T[::-1])
    np.testing.assert_allclose(world, sub.coords[order])  # same positions in MNI space
    np.testing.assert_allclose(img.get_fdata()[mask], sub.betas.T[order], rtol=1e-6)
    trials = np.loadtxt(paths["trials"], skiprows=1, dtype=int)
    assert np.array_equal(trials[:, 1], sub.stimulus_ids)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        sub.write_nifti(tmp_path)


def test_semantic_embedding_encodes_category_content(sim):
    emb = sim.stimuli.semantic_embedding(dim=9, noise=0.0, seed=2)
    assert emb.shape == (len(sim.stimuli), 9) and emb.dtype == np.float32
    coverage = sim.stimuli.content.mean(axis=(2, 3))
    # noise-free, the embedding is a linear map of the category coverage
    coef, *_ = np.linalg.lstsq(coverage, emb, rcond=None)
    np.testing.assert_allclose(coverage @ coef, emb, atol=1e-4)
    np.testing.assert_array_equal(emb, sim.stimuli.semantic_embedding(dim=9, noise=0.0, seed=2))
    with pytest.raises(ValueError, match="dim must be an integer >= 1"):
        sim.stimuli.semantic_embedding(dim=0)
