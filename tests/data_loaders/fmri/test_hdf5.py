import hashlib

import h5py
import numpy as np
import pytest

from data_loaders.errors import UnreadableFileError
from data_loaders.fmri.geometry import VoxelGeometry
from data_loaders.fmri.hdf5 import NSDSession, write_nsd_session


@pytest.fixture
def session(tmp_path, rng):
    betas = np.round(rng.standard_normal((7, 9)) * 3, 2)
    ids = np.array([3, 1, 4, 1, 5, 2, 6])
    ijk = np.stack([np.arange(9), np.arange(9) % 4, np.zeros(9, int)], axis=1)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-10, 4, 6]
    roi = np.array([1, 1, 2, 2, 2, 0, 1, 2, 0])
    path = write_nsd_session(
        tmp_path / "s1.hdf5",
        betas,
        ids,
        geometry=VoxelGeometry((9, 4, 1), affine, ijk),
        roi=roi,
        roi_names={1: "V1", 2: "FFA"},
    )
    return path, betas, ids, ijk, affine


def test_round_trip_within_int16_quantisation(session):
    path, betas, ids, ijk, _ = session
    with h5py.File(path, "r") as f:
        assert f["betas"].dtype == np.int16
    with NSDSession(path) as s:
        assert (s.n_trials, s.n_voxels) == (7, 9)
        np.testing.assert_allclose(s.read(), betas, atol=0.5 / 300 + 1e-6)
        assert s.stimulus_ids.tolist() == ids.tolist()
        assert s.roi_labels.tolist() == ["V1", "V1", "FFA", "FFA", "FFA", "", "V1", "FFA", ""]
        np.testing.assert_allclose(s.coords, ijk * 2.0 + [-10, 4, 6])
        np.testing.assert_allclose(
            s.read(trials=[5, 0, 5], voxels=[2, 8]), s.read()[[5, 0, 5]][:, [2, 8]]
        )


def test_batches_cover_the_session(session):
    path, *_ = session
    with NSDSession(path) as s:
        full = s.read()
        by_voxels = np.concatenate([b for _, b in s.iter_voxel_batches(4)], axis=1)
        by_trials = np.concatenate([b for _, b in s.iter_trial_batches(3)], axis=0)
    np.testing.assert_array_equal(by_voxels, full)
    np.testing.assert_array_equal(by_trials, full)


def test_roi_selection_and_dataset(session):
    path, betas, *_ = session
    with NSDSession(path, rois="FFA") as s:
        assert s.n_voxels == 4
        np.testing.assert_allclose(s.read(), betas[:, [2, 3, 4, 7]], atol=0.002)
        ds = s.to_dataset(voxel_batch_size=3)
    assert ds.rois == ["FFA"] and ds.n_voxels == 4
    with pytest.raises(ValueError, match=r"ROI\(s\) \['MT'\] match no voxel.*\['FFA', 'V1'\]"):
        NSDSession(path, rois=["MT"])


def test_volumetric_layout_is_transposed_back(tmp_path, rng):
    xyz = rng.standard_normal((5, 4, 3, 2)).round(2)  # (trials, X, Y, Z)
    path = tmp_path / "vol.hdf5"
    with h5py.File(path, "w") as f:
        f["betas"] = np.round(xyz.transpose(0, 3, 2, 1) * 300).astype(np.int16)  # MATLAB order
        f["stimulus_ids"] = np.arange(5)
    with NSDSession(path) as s:
        assert s.volume_shape == (4, 3, 2) and s.n_voxels == 24
        data = s.read()
        for v in (0, 7, 23):
            i, j, k = s.voxel_ijk[v]
            np.testing.assert_allclose(data[:, v], xyz[:, i, j, k], atol=0.002)


def test_input_file_is_not_modified(session):
    path = session[0]
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    with NSDSession(path) as s:
        s.read()
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No NSD-style HDF5 file"):
        NSDSession(tmp_path / "nope.hdf5")


def test_truncated_file(session):
    path = session[0]
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(UnreadableFileError, match="cannot be read as HDF5"):
        NSDSession(path)


def test_missing_dataset(tmp_path):
    """A betas-only file (as NSD distributes them) opens; its ids must come from elsewhere."""
    path = tmp_path / "x.hdf5"
    with h5py.File(path, "w") as f:
        f["betas"] = np.zeros((3, 4), dtype=np.int16)
    with NSDSession(path) as s:
        assert s.stimulus_ids is None
        with pytest.raises(ValueError, match="holds only betas"):
            s.to_dataset()
    ids_only = tmp_path / "ids.hdf5"
    with h5py.File(ids_only, "w") as f:
        f["stimulus_ids"] = np.arange(3)
    with pytest.raises(
        UnreadableFileError, match=r"no 'betas' dataset; it holds \['stimulus_ids'\]"
    ):
        NSDSession(ids_only)


def test_transposed_file_is_named(tmp_path):
    path = tmp_path / "t.hdf5"
    with h5py.File(path, "w") as f:
        f["betas"] = np.zeros((9, 7), dtype=np.int16)
        f["stimulus_ids"] = np.arange(7)
    with pytest.raises(ValueError, match="trials on the last axis"):
        NSDSession(path)


def test_trial_table_length(tmp_path):
    path = tmp_path / "t.hdf5"
    with h5py.File(path, "w") as f:
        f["betas"] = np.zeros((9, 7), dtype=np.int16)
        f["stimulus_ids"] = np.arange(8)
    with pytest.raises(ValueError, match="trial table has 8 rows but betas have 9 trials"):
        NSDSession(path)


def test_writer_refuses_to_overwrite_and_clips(session, rng):
    path = session[0]
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_nsd_session(path, np.zeros((2, 3)), [0, 1])
    with pytest.warns(UserWarning, match="1 beta values beyond"):
        write_nsd_session(path, np.array([[0.0, 500.0]]), [0], overwrite=True)
    with h5py.File(path, "r") as f:
        assert f["betas"].attrs["scale"] == 300 and f["betas"][0, 1] == 32767
