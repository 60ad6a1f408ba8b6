"""VoxelGeometry: validation, equality, subsets, NIfTI maps, and how the readers carry it."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from data_loaders.errors import InputError, InputTypeError
from data_loaders.fmri import FMRIDataset, NSDSession, VoxelGeometry, values_to_nifti
from data_loaders.fmri.hdf5 import write_nsd_session
from data_loaders.fmri.nifti import load_nifti_betas

SHAPE = (5, 6, 4)
AFFINE = np.array(
    [[2.0, 0, 0, -4.0], [0, 2.0, 0, -6.0], [0, 0, 3.0, 9.0], [0, 0, 0, 1]], dtype=np.float64
)


@pytest.fixture
def ijk():
    return np.array([[0, 0, 0], [4, 5, 3], [2, 1, 0], [1, 3, 2]])


def test_fields_are_normalised_and_read_only(ijk):
    geo = VoxelGeometry(np.array(SHAPE), AFFINE.tolist(), ijk.astype(np.float32))
    assert geo.volume_shape == SHAPE and all(type(s) is int for s in geo.volume_shape)
    assert geo.ijk.dtype == np.int64 and geo.affine.dtype == np.float64
    assert geo.n_voxels == len(geo) == 4
    np.testing.assert_allclose(geo.coords, ijk * [2.0, 2.0, 3.0] + [-4.0, -6.0, 9.0])
    with pytest.raises(ValueError, match="read-only"):
        geo.ijk[0, 0] = 3
    with pytest.raises(AttributeError):
        geo.ijk = ijk  # frozen
    ijk[0, 0] = 4  # the caller's array is copied, not shared
    assert geo.ijk[0, 0] == 0


def test_equality_compares_arrays(ijk):
    a = VoxelGeometry(SHAPE, AFFINE, ijk)
    b = VoxelGeometry(list(SHAPE), AFFINE.copy(), ijk.copy())
    assert a == b and hash(a) == hash(b)
    assert a != VoxelGeometry(SHAPE, AFFINE, ijk[::-1])
    shifted = AFFINE.copy()
    shifted[0, 3] += 1
    assert a != VoxelGeometry(SHAPE, shifted, ijk)
    assert a != VoxelGeometry((6, 6, 4), AFFINE, ijk)
    assert a != "not a geometry"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"volume_shape": (5, 6)}, InputError, "volume_shape must be 3 positive integers"),
        ({"volume_shape": (5, 0, 4)}, InputError, "volume_shape must be 3 positive integers"),
        ({"volume_shape": (5, 6.5, 4)}, InputError, "volume_shape must be 3 positive integers"),
        ({"affine": np.eye(3)}, InputError, r"affine must be a 4x4 matrix"),
        ({"affine": np.full((4, 4), np.nan)}, InputError, "affine contains 16 NaN"),
        ({"affine": np.zeros((4, 4))}, InputError, r"last row"),
        ({"affine": np.diag([1.0, 0.0, 1.0, 1.0])}, InputError, "singular"),
        ({"ijk": np.zeros((3, 2), int)}, InputError, r"ijk must have shape \(n_voxels, 3\)"),
        ({"ijk": [[0.5, 0, 0]]}, InputTypeError, "integer voxel indices"),
        ({"ijk": [[5, 0, 0]]}, InputError, r"1 voxel\(s\) lie outside the volume.*\[5, 0, 0\]"),
        ({"ijk": [[0, -1, 0]]}, InputError, "outside the volume"),
        ({"ijk": [[1, 2, 3], [0, 0, 0], [1, 2, 3]]}, InputError, r"more than once.*\[1, 2, 3\]"),
    ],
)
def test_bad_geometry_is_refused(ijk, kwargs, error, message):
    args = {"volume_shape": SHAPE, "affine": AFFINE, "ijk": ijk, **kwargs}
    with pytest.raises(error, match=message):
        VoxelGeometry(**args)


def test_to_nifti_places_each_value_at_its_voxel(ijk):
    geo = VoxelGeometry(SHAPE, AFFINE, ijk)
    values = np.array([1.0, 2.0, 3.0, 4.0])
    img = geo.to_nifti(values)
    data = np.asarray(img.dataobj)
    assert img.shape == SHAPE and data.dtype == np.float32
    np.testing.assert_array_equal(img.affine, AFFINE)
    np.testing.assert_array_equal(data[tuple(ijk.T)], values)
    assert np.isnan(data).sum() == data.size - 4
    four = geo.to_nifti(np.stack([values, -values]), fill=0.0)
    assert four.shape == (*SHAPE, 2) and np.asarray(four.dataobj)[4, 5, 3, 1] == -2.0
    assert np.count_nonzero(np.asarray(four.dataobj)) == 8
    assert values_to_nifti(values, geo, fill=-1.0).get_fdata()[3, 3, 3] == -1.0
    with pytest.raises(InputError, match="one value per voxel"):
        geo.to_nifti(values[:3])
    with pytest.raises(InputError, match="1D or 2D"):
        geo.to_nifti(np.zeros((1, 1, 4)))
    with pytest.raises(InputTypeError, match="geometry must be a VoxelGeometry.*VoxelGeometry"):
        values_to_nifti(values, ijk)


def test_subset_and_mask(ijk):
    geo = VoxelGeometry(SHAPE, AFFINE, ijk)
    part = geo.subset([3, 1])
    np.testing.assert_array_equal(part.ijk, ijk[[3, 1]])
    assert part.volume_shape == SHAPE and np.array_equal(part.affine, AFFINE)
    assert geo.subset(np.array([True, False, True, False])) == geo.subset([0, 2])
    assert geo.subset(slice(None)) == geo
    with pytest.raises(InputError, match=r"one entry per voxel \(4\)"):
        geo.subset(np.array([True, False]))
    with pytest.raises(InputError, match="does not fit 4 voxels"):
        geo.subset([7])
    mask = np.asarray(geo.to_mask().dataobj)
    assert mask.dtype == np.uint8 and mask.sum() == 4 and mask[tuple(ijk.T)].all()


def test_from_mask_round_trip(tmp_path, ijk):
    geo = VoxelGeometry(SHAPE, AFFINE, ijk)
    nib.save(geo.to_mask(), tmp_path / "mask.nii.gz")
    back = VoxelGeometry.from_mask(tmp_path / "mask.nii.gz")
    order = np.lexsort(ijk.T[::-1])  # from_mask gives C order, as nilearn's maskers
    assert back == geo.subset(order)
    with pytest.raises(InputError, match="no non-zero voxel"):
        VoxelGeometry.from_mask(nib.Nifti1Image(np.zeros(SHAPE, np.uint8), AFFINE))
    with pytest.raises(InputError, match="must be 3D"):
        VoxelGeometry.from_mask(nib.Nifti1Image(np.ones((*SHAPE, 2), np.uint8), AFFINE))


def test_readers_and_dataset_carry_one_geometry(tmp_path, rng):
    betas = rng.standard_normal((*SHAPE, 6)).astype(np.float32)
    mask = np.zeros(SHAPE, np.uint8)
    mask[1:4, 2:5, 1:3] = 1
    out = load_nifti_betas(
        nib.Nifti1Image(betas, AFFINE), np.arange(6), mask_img=nib.Nifti1Image(mask, AFFINE)
    )
    assert out.geometry == VoxelGeometry.from_mask(nib.Nifti1Image(mask, AFFINE))
    np.testing.assert_array_equal(out.ijk, out.geometry.ijk)
    assert out.volume_shape == SHAPE and np.array_equal(out.affine, AFFINE)

    ds = out.to_dataset(name="s", session_ids=np.repeat([0, 1], 3))
    assert ds.geometry == out.geometry and ds.session_ids.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(ds.coords, out.geometry.coords)
    # the dataset's map and the reader's map agree voxel for voxel, NaN outside in both
    values = np.arange(ds.n_voxels, dtype=np.float32)
    np.testing.assert_array_equal(ds.to_nifti(values).get_fdata(), out.to_nifti(values).get_fdata())
    np.testing.assert_array_equal(
        ds.to_nifti(values, fill=0.0).get_fdata(), out.to_nifti(values, fill=0.0).get_fdata()
    )
    train, _ = ds.split(test_size=0.5, seed=0)
    assert train.geometry == ds.geometry  # splitting trials keeps every voxel

    path = write_nsd_session(tmp_path / "s.hdf5", out.betas, out.stimulus_ids, geometry=ds.geometry)
    with NSDSession(path) as session:
        assert session.geometry == ds.geometry
        from_h5 = session.to_dataset()
    assert from_h5.geometry == ds.geometry


def test_dataset_geometry_follows_dropped_and_selected_voxels(ijk, rng):
    betas = rng.standard_normal((8, 4))
    betas[:, 1] = 2.0  # constant: dropped
    geo = VoxelGeometry(SHAPE, AFFINE, ijk)
    with pytest.warns(UserWarning, match="Dropped 1 of 4 voxels"):
        ds = FMRIDataset(betas, np.arange(8) % 4, roi_labels=["a", "b", "a", "c"], geometry=geo)
    assert ds.geometry == geo.subset([0, 2, 3])
    np.testing.assert_array_equal(ds.voxel_ijk, ijk[[0, 2, 3]])
    np.testing.assert_allclose(ds.coords, geo.coords[[0, 2, 3]])
    assert ds.select_rois("a").geometry == geo.subset([0, 2])
    with pytest.raises(InputError, match="geometry has 4 voxels but betas has 3 columns"):
        FMRIDataset(betas[:, :3], np.arange(8), geometry=geo)
    with pytest.raises(InputTypeError, match="geometry must be a VoxelGeometry"):
        FMRIDataset(betas, np.arange(8), geometry=ijk)
