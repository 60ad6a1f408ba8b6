"""load_nifti_betas: planted values at the right voxels, ROIs, round trips, bad input."""

from __future__ import annotations

import hashlib
import re

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from data_loaders.fmri._common import FMRIDataWarning
from data_loaders.fmri.nifti import NiftiBetas, load_nifti_betas

SHAPE = (6, 7, 8)
N_TRIALS = 9
AFFINE = np.array(
    [[2.0, 0, 0, -30.0], [0, 2.0, 0, -42.0], [0, 0, 2.0, 12.0], [0, 0, 0, 1]], dtype=np.float64
)
NAMES = {1: "V1", 2: "V2", 3: "FFA"}


@pytest.fixture
def data(rng):
    """Planted betas, a mask, labels and ids, all on one 2 mm grid."""
    betas = rng.normal(size=(*SHAPE, N_TRIALS)).astype(np.float32)
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[1:5, 1:6, 1:7] = 1
    labels = np.zeros(SHAPE, dtype=np.int16)
    labels[1:3, 1:6, 1:7] = 1
    labels[3:5, 1:3, 1:7] = 2
    labels[3:5, 3:6, 1:4] = 3
    labels[0, 0, 0] = 3  # outside the mask
    ids = rng.integers(0, 5, size=N_TRIALS)
    return betas, mask, labels, ids


@pytest.fixture
def files(tmp_path, data):
    betas, mask, labels, ids = data
    paths = {
        "betas": tmp_path / "betas.nii.gz",
        "mask": tmp_path / "mask.nii.gz",
        "labels": tmp_path / "labels.nii.gz",
        "tsv": tmp_path / "trials.tsv",
    }
    nib.save(nib.Nifti1Image(betas, AFFINE), paths["betas"])
    nib.save(nib.Nifti1Image(mask, AFFINE), paths["mask"])
    nib.save(nib.Nifti1Image(labels, AFFINE), paths["labels"])
    pd.DataFrame({"run": 1, "onset": np.arange(N_TRIALS) * 4.0, "stimulus_id": ids}).to_csv(
        paths["tsv"], sep="\t", index=False
    )
    for i in range(N_TRIALS):
        paths[f"trial{i}"] = tmp_path / f"trial{i}.nii"
        nib.save(nib.Nifti1Image(betas[..., i], AFFINE), paths[f"trial{i}"])
    return paths


def _fingerprint(paths):
    return {
        k: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for k, p in paths.items()
    }


def test_planted_values_coords_and_labels(files, data):
    betas, mask, labels, ids = data
    before = _fingerprint(files)
    out = load_nifti_betas(
        files["betas"],
        ids,
        mask_img=files["mask"],
        labels_img=files["labels"],
        label_names=NAMES,
    )
    assert isinstance(out, NiftiBetas)
    n_vox = int(mask.sum())
    assert out.betas.shape == (N_TRIALS, n_vox) and out.betas.dtype == np.float32
    assert out.coords.shape == out.ijk.shape == (n_vox, 3)
    np.testing.assert_array_equal(out.ijk, np.argwhere(mask))
    np.testing.assert_allclose(out.betas, betas[tuple(out.ijk.T)].T)
    homog = np.c_[out.ijk, np.ones(n_vox)]
    np.testing.assert_allclose(out.coords, (AFFINE @ homog.T).T[:, :3])
    assert out.coords[0].tolist() == [-28.0, -40.0, 14.0]  # voxel (1, 1, 1)
    expected = [NAMES.get(int(v), "") for v in labels[tuple(out.ijk.T)]]
    assert out.roi_labels.tolist() == expected
    np.testing.assert_array_equal(out.stimulus_ids, ids)
    assert out.volume_shape == SHAPE
    np.testing.assert_allclose(out.affine, AFFINE)
    assert _fingerprint(files) == before  # inputs are only read


def test_list_of_3d_equals_4d(files, data):
    _, _, _, ids = data
    four = load_nifti_betas(files["betas"], ids, mask_img=files["mask"])
    three = load_nifti_betas(
        [files[f"trial{i}"] for i in range(N_TRIALS)], ids, mask_img=files["mask"]
    )
    np.testing.assert_array_equal(four.betas, three.betas)
    np.testing.assert_array_equal(four.ijk, three.ijk)


def test_in_memory_images_and_label_list(data):
    betas, _, labels, ids = data
    out = load_nifti_betas(
        nib.Nifti1Image(betas, AFFINE),
        ids,
        labels_img=nib.Nifti1Image(labels, AFFINE),
        label_names=["Background", "V1", "V2"],  # index = label; 3 has no name
        rois=["V2", "3"],
    )
    # mask = union of labels; ROIs V2 and the unnamed label 3 (called "3")
    assert set(out.roi_labels) == {"V2", "3"}
    assert out.n_voxels == int(np.isin(labels, [2, 3]).sum())


def test_trial_table_as_dataframe_and_tsv(files, data):
    _, _, _, ids = data
    from_tsv = load_nifti_betas(files["betas"], files["tsv"], mask_img=files["mask"])
    np.testing.assert_array_equal(from_tsv.stimulus_ids, ids)
    assert list(from_tsv.trials.columns) == ["run", "onset", "stimulus_id"]
    df = pd.read_csv(files["tsv"], sep="\t")
    from_df = load_nifti_betas(files["betas"], df, mask_img=files["mask"])
    np.testing.assert_array_equal(from_df.stimulus_ids, ids)


def test_rois_select_voxels(files, data):
    _, _, labels, ids = data
    out = load_nifti_betas(
        files["betas"],
        ids,
        mask_img=files["mask"],
        labels_img=files["labels"],
        label_names=NAMES,
        rois="FFA",
    )
    assert set(out.roi_labels) == {"FFA"}
    assert out.n_voxels == int(labels[1:5, 1:6, 1:7].__eq__(3).sum())  # (0,0,0) is outside
    img = out.to_nifti(np.ones(out.n_voxels))
    assert np.nansum(np.asarray(img.dataobj)) == out.n_voxels


@pytest.mark.parametrize("k", [None, 3])
def test_to_nifti_round_trip(files, data, rng, k):
    betas, mask, _, ids = data
    out = load_nifti_betas(files["betas"], ids, mask_img=files["mask"])
    vals = rng.normal(size=(out.n_voxels,) if k is None else (k, out.n_voxels))
    img = out.to_nifti(vals)
    np.testing.assert_allclose(img.affine, AFFINE)
    vol = np.asarray(img.get_fdata())
    assert vol.shape == (SHAPE if k is None else (*SHAPE, k))
    placed = vol[tuple(out.ijk.T)]
    np.testing.assert_allclose(placed.T if k else placed, vals, rtol=1e-6)
    assert np.all(np.isnan(vol[mask == 0]))  # NaN outside, as FMRIDataset.to_nifti
    # the betas themselves go back where they came from
    back = np.asarray(out.to_nifti(out.betas).get_fdata())
    assert np.all(np.asarray(out.to_nifti(vals, fill=0.0).get_fdata())[mask == 0] == 0)
    np.testing.assert_allclose(back[mask == 1], betas[mask == 1], rtol=1e-6)


def test_standardize(files, data):
    _, _, _, ids = data
    out = load_nifti_betas(files["betas"], ids, mask_img=files["mask"], standardize=True)
    np.testing.assert_allclose(out.betas.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.betas.std(0, ddof=1), 1, atol=1e-5)


def test_bad_voxels_dropped_with_count_and_to_nifti_consistent(tmp_path, data):
    betas, mask, _, ids = data
    betas = betas.copy()
    betas[2, 2, 2, 4] = np.nan  # one NaN trial
    betas[3, 3, 3, :] = 5.0  # constant
    betas[4, 4, 4, :] = 0.0  # constant zero (in the mask)
    path = tmp_path / "bad.nii.gz"
    nib.save(nib.Nifti1Image(betas, AFFINE), path)
    with pytest.warns(FMRIDataWarning, match=r"Dropped 3 of 120 .*1 with NaN.*2 constant"):
        out = load_nifti_betas(path, ids, mask_img=nib.Nifti1Image(mask, AFFINE))
    assert out.n_voxels == int(mask.sum()) - 3
    assert not np.isnan(out.betas).any()
    bad = [(2, 2, 2), (3, 3, 3), (4, 4, 4)]
    kept = {tuple(v) for v in out.ijk}
    assert not kept & set(bad)
    assert np.asarray(out.mask_img.dataobj).sum() == out.n_voxels
    vol = np.asarray(out.to_nifti(np.ones(out.n_voxels), fill=np.nan).get_fdata())
    for v in bad:
        assert np.isnan(vol[v])
    assert np.isnan(vol[0, 0, 0]) and vol[1, 1, 1] == 1
    assert np.asarray(out.to_nifti(np.ones(out.n_voxels), fill=0.0).get_fdata())[bad[0]] == 0


def test_no_mask_uses_nonzero_voxels(data):
    betas, mask, _, ids = data
    out = load_nifti_betas(nib.Nifti1Image(betas * mask[..., None], AFFINE), ids)
    assert out.n_voxels == int(mask.sum())


# ---------------------------------------------------------------- bad input


def test_mask_on_other_grid_is_refused(files, data):
    _, mask, _, ids = data
    shifted = AFFINE.copy()
    shifted[0, 3] += 2.0
    with pytest.raises(ValueError, match=r"different voxel grids[\s\S]*resample_to_img") as err:
        load_nifti_betas(files["betas"], ids, mask_img=nib.Nifti1Image(mask, shifted))
    assert "-28." in str(err.value) and "-30." in str(err.value)  # both affines shown
    with pytest.raises(ValueError, match=re.escape("(6, 7, 9)")):
        load_nifti_betas(
            files["betas"], ids, mask_img=nib.Nifti1Image(np.ones((6, 7, 9), np.uint8), AFFINE)
        )


def test_labels_on_other_grid_is_refused(files, data):
    _, _, labels, ids = data
    with pytest.raises(ValueError, match=r"labels_img and images[\s\S]*interpolation='nearest'"):
        load_nifti_betas(
            files["betas"], ids, labels_img=nib.Nifti1Image(labels, AFFINE * [[1], [1], [2], [1]])
        )


def test_unknown_roi_lists_available(files, data):
    _, _, _, ids = data
    with pytest.raises(ValueError, match=r"\['MT'\] match no voxel.*\['FFA', 'V1', 'V2'\]"):
        load_nifti_betas(
            files["betas"],
            ids,
            mask_img=files["mask"],
            labels_img=files["labels"],
            label_names=NAMES,
            rois=["V1", "MT"],
        )


def test_rois_without_labels(files, data):
    with pytest.raises(ValueError, match="labels_img is None"):
        load_nifti_betas(files["betas"], data[3], rois="V1")


@pytest.mark.parametrize("n", [N_TRIALS - 1, N_TRIALS + 2])
def test_trial_table_length_mismatch(files, n):
    with pytest.raises(ValueError, match=rf"{n} rows but the responses have {N_TRIALS} trials"):
        load_nifti_betas(files["betas"], np.zeros(n, dtype=int))


def test_trial_table_without_stimulus_column(files):
    with pytest.raises(ValueError, match="'stimulus_id' column"):
        load_nifti_betas(files["betas"], pd.DataFrame({"stim": np.arange(N_TRIALS)}))


@pytest.mark.parametrize("which", ["images", "mask_img", "labels_img", "stimulus_ids", "list"])
def test_missing_file_is_named(files, data, tmp_path, which):
    missing = tmp_path / "nope.nii.gz"
    kwargs = {"images": files["betas"], "stimulus_ids": data[3]}
    if which == "list":
        kwargs["images"] = [files["trial0"]] * (N_TRIALS - 1) + [missing]
    else:
        kwargs[which] = missing
    with pytest.raises(FileNotFoundError, match="nope.nii.gz"):
        load_nifti_betas(**kwargs)


def test_3d_image_where_4d_needed(files, data):
    with pytest.raises(ValueError, match=r"got a 3D image.*list of 3D images"):
        load_nifti_betas(files["trial0"], data[3])


def test_list_entries_must_match(files, data, tmp_path):
    betas = data[0]
    other = tmp_path / "other.nii.gz"
    nib.save(nib.Nifti1Image(betas[:, :, :7, 0], AFFINE), other)
    entries = [files[f"trial{i}"] for i in range(N_TRIALS - 1)]
    with pytest.raises(ValueError, match=r"images\[8\] and images\[0\] are on different"):
        load_nifti_betas([*entries, other], data[3])
    with pytest.raises(ValueError, match=r"images\[8\] has shape .*one 3D image per trial"):
        load_nifti_betas([*entries, files["betas"]], data[3])


def test_all_voxels_bad(data):
    betas = np.ones((*SHAPE, N_TRIALS), np.float32)
    with pytest.raises(ValueError, match="All 336 voxels"):
        load_nifti_betas(nib.Nifti1Image(betas, AFFINE), data[3])


def test_to_nifti_wrong_length(files, data):
    out = load_nifti_betas(files["betas"], data[3], mask_img=files["mask"])
    with pytest.raises(ValueError, match=rf"\({out.n_voxels},\)"):
        out.to_nifti(np.zeros(out.n_voxels + 1))
