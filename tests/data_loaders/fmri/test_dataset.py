import warnings

import numpy as np
import pytest

from data_loaders.errors import InputError
from data_loaders.fmri._common import FMRIDataWarning
from data_loaders.fmri.dataset import FMRIDataset
from data_loaders.simulate.fmri import simulate_fmri


@pytest.fixture(scope="module")
def sim():
    return simulate_fmri(
        n_subjects=1, n_stimuli=60, n_repeats=2, image_size=24, voxels_per_roi=4, seed=2
    )


@pytest.fixture
def ds(sim):
    return FMRIDataset.from_simulation(sim.subjects[0])


def test_from_simulation(ds, sim):
    sub = sim.subjects[0]
    assert (ds.n_trials, ds.n_voxels) == sub.betas.shape
    assert ds.rois == sorted({"V1", "V2", "V3", "V4", "FFA", "PPA", "LOC", "VWFA"})
    assert "FMRIDataset(name='sub-01'" in repr(ds)


def test_select_rois(ds):
    v1 = ds.select_rois("V1")
    assert set(v1.roi_labels) == {"V1"} and v1.n_trials == ds.n_trials
    both = ds.select_rois(["V1", "FFA"])
    assert both.n_voxels == v1.n_voxels + ds.select_rois("FFA").n_voxels
    with pytest.raises(ValueError, match=r"ROI\(s\) \['MT'\] match no voxel; the ROIs present are"):
        ds.select_rois("MT")


def test_split_and_ceiling(ds, sim):
    train, test = ds.split(test_size=0.25, seed=0)
    assert not set(train.stimulus_ids) & set(test.stimulus_ids)
    assert train.n_trials + test.n_trials == ds.n_trials
    nc = ds.noise_ceiling()
    assert nc.ncsnr.shape == (ds.n_voxels,)
    assert np.corrcoef(nc.r2(2), sim.subjects[0].true_noise_ceiling(2))[0, 1] > 0.7
    mean, _, counts = ds.average_repeats()
    assert mean.shape == (60, ds.n_voxels) and set(counts) == {2}


def test_to_nifti_places_values(ds):
    values = np.arange(ds.n_voxels, dtype=np.float32)
    img = ds.to_nifti(values)
    data = img.get_fdata()
    assert np.array_equal(data[tuple(ds.voxel_ijk.T)], values)
    assert np.isnan(data).sum() == data.size - ds.n_voxels
    assert ds.to_nifti(np.stack([values, -values])).shape == (*ds.volume_shape, 2)
    with pytest.raises(ValueError, match="one value per voxel"):
        ds.to_nifti(values[:-1])


def test_bad_voxels_are_dropped_with_a_count(rng):
    betas = rng.standard_normal((8, 7))
    betas[2, 1] = np.nan
    betas[:, 4] = 3.0
    with pytest.warns(
        FMRIDataWarning, match="Dropped 2 of 7 voxels: 1 with NaN or infinite values, 1 constant"
    ):
        ds = FMRIDataset(betas, np.arange(8) % 4, roi_labels=list("abcdefg"))
    assert ds.n_voxels == 5 and "".join(ds.roi_labels) == "acdfg"


def test_clean_data_gives_no_warning(rng):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FMRIDataset(rng.standard_normal((8, 7)), np.arange(8) % 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stimulus_ids": np.arange(7)}, "trial table has 7 rows but the responses have 8 trials"),
        ({"betas": np.zeros(8)}, r"betas must be 2D \(n_trials, n_voxels\)"),
        ({"roi_labels": ["a"] * 6}, r"roi_labels must have one entry per voxel \(7\); got 6"),
        ({"stimulus_ids": np.arange(8) + 0.5}, "must be integers"),
        (
            {"stimuli": np.zeros((3, 9, 9, 3))},
            "out of range: the largest is 7 but the stimulus set holds 3",
        ),
    ],
)
def test_bad_input(rng, kwargs, message):
    args = {"betas": rng.standard_normal((8, 7)), "stimulus_ids": np.arange(8), **kwargs}
    with pytest.raises(ValueError, match=message):
        FMRIDataset(**args)


def test_all_bad_voxels(rng):
    with pytest.raises(ValueError, match="All 7 voxels are NaN/inf or constant"):
        FMRIDataset(np.ones((8, 7)), np.arange(8))


def test_missing_information_is_named(rng):
    ds = FMRIDataset(rng.standard_normal((8, 7)), np.arange(8))
    with pytest.raises(
        InputError, match=r"give geometry=VoxelGeometry\(volume_shape, affine, ijk\)"
    ):
        ds.to_nifti(np.zeros(7))
    with pytest.raises(ValueError, match="no ROI labels"):
        ds.select_rois("V1")
    with pytest.raises(ValueError, match="no stimuli"):
        ds.images()


def test_stimuli_from_a_folder(tmp_path, rng):
    from PIL import Image

    for i in range(4):
        Image.fromarray((rng.random((9, 7, 3)) * 255).astype("uint8")).save(tmp_path / f"s{i}.png")
    ds = FMRIDataset(rng.standard_normal((8, 5)), np.arange(8) % 4, stimuli=tmp_path)
    assert ds.images(size=(6, 6)).shape == (4, 3, 6, 6)


def test_out_of_range_ids_count_distinct_ids_and_spot_one_based_ones(rng):
    ids = np.repeat(np.arange(1, 5), 3)  # 1-based ids of 4 images, each shown 3 times
    with pytest.raises(InputError, match="1 distinct stimulus id.* of 4 .*look 1-based"):
        FMRIDataset(rng.standard_normal((12, 7)), ids, stimuli=np.zeros((4, 9, 9, 3)))
    ids = np.repeat(np.arange(0, 6), 2)  # 0-based, but two ids too many
    with pytest.raises(InputError, match=r"2 distinct .* of 6 .*run from 0 to 5\)\.$"):
        FMRIDataset(rng.standard_normal((12, 7)), ids, stimuli=np.zeros((4, 9, 9, 3)))
