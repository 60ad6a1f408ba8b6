"""Region-averaged responses: one column per ROI through nilearn's NiftiLabelsMasker."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from data_loaders.fmri import FMRIDataWarning, RegionGeometry, load_nifti_betas
from data_loaders.simulate.fmri import simulate_fmri
from neuro.cli import main
from neuro.errors import InputError


def _atlas():
    rng = np.random.default_rng(0)
    labels = np.zeros((6, 5, 4), dtype=np.int16)
    labels[:2] = 4
    labels[3, :3] = 1
    labels[5, 4, 3] = 7  # a one-voxel region
    data = rng.normal(size=(6, 5, 4, 12)).astype(np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-6.0, -4.0, -2.0]
    return data, labels, affine


def test_each_column_is_the_mean_of_its_region():
    data, labels, affine = _atlas()
    out = load_nifti_betas(
        nib.Nifti1Image(data, affine),
        np.arange(12),
        labels_img=nib.Nifti1Image(labels, affine),
        label_names={1: "V1", 4: "FFA", 7: "dot"},
        average_rois=True,
    )
    assert isinstance(out.geometry, RegionGeometry) and out.ijk is None
    # nilearn orders regions by label value
    assert out.roi_labels.tolist() == ["V1", "FFA", "dot"]
    np.testing.assert_array_equal(out.geometry.region_ids, [1, 4, 7])
    for column, label in enumerate((1, 4, 7)):
        np.testing.assert_allclose(
            out.betas[:, column], data[labels == label].mean(0), rtol=1e-5, atol=1e-6
        )
        centroid = np.argwhere(labels == label).mean(0) * 2.0 + affine[:3, 3]
        np.testing.assert_allclose(out.coords[column], centroid)
    painted = out.to_nifti(np.array([1.0, 2.0, 3.0])).get_fdata()
    assert (painted[labels == 4] == 2.0).all() and (painted[labels == 7] == 3.0).all()
    assert np.isnan(painted[labels == 0]).all()
    assert (out.to_nifti(np.ones(3), fill=0.0).get_fdata()[labels == 0] == 0).all()
    ds = out.to_dataset()
    assert ds.n_voxels == 3 and ds.rois == ["FFA", "V1", "dot"]
    np.testing.assert_array_equal(ds.to_nifti(np.array([1.0, 2.0, 3.0])).get_fdata(), painted)


def test_mask_and_roi_choice_restrict_the_regions_and_nan_voxels_are_left_out():
    data, labels, affine = _atlas()
    data[5, 4, 3, 0] = np.nan  # the one-voxel region has no finite voxel left
    data[3, 1, 2, 5] = np.inf  # one voxel of V1
    mask = np.ones(labels.shape, dtype=np.uint8)
    mask[0] = 0  # half of FFA lies outside the mask
    with pytest.warns(FMRIDataWarning, match="2 voxel\\(s\\) with NaN/inf"):
        out = load_nifti_betas(
            nib.Nifti1Image(data, affine),
            np.arange(12),
            mask_img=nib.Nifti1Image(mask, affine),
            labels_img=nib.Nifti1Image(labels, affine),
            average_rois=True,
        )
    assert np.isinf(data[3, 1, 2, 5]) and np.isnan(data[5, 4, 3, 0])  # the input is untouched
    assert out.roi_labels.tolist() == ["1", "4"]
    v1 = (labels == 1) & np.isfinite(data).all(axis=3)
    np.testing.assert_allclose(out.betas[:, 0], data[v1].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        out.betas[:, 1], data[1][labels[1] == 4].mean(0), rtol=1e-5, atol=1e-6
    )
    only = load_nifti_betas(
        nib.Nifti1Image(data, affine),
        np.arange(12),
        labels_img=nib.Nifti1Image(labels, affine),
        label_names={1: "V1", 4: "FFA"},
        rois=["FFA"],
        average_rois=True,
    )
    assert only.roi_labels.tolist() == ["FFA"]
    with pytest.raises(InputError, match="average_rois=True .* pass the label image"):
        load_nifti_betas(nib.Nifti1Image(data, affine), np.arange(12), average_rois=True)


def test_region_geometry_checks():
    _, labels, affine = _atlas()
    with pytest.raises(InputError, match=r"region_ids \[3\] are not regions"):
        RegionGeometry(labels, affine, [1, 3])
    with pytest.raises(InputError, match="repeats a region"):
        RegionGeometry(labels, affine, [1, 1])
    geo = RegionGeometry(labels, affine, [1, 4, 7])
    np.testing.assert_array_equal(geo.subset([2, 0]).region_ids, [7, 1])


def test_fit_encoder_on_region_averages(tmp_path):
    """Per-ROI encoders from the CLI: one row per region, maps painted over the regions."""
    sim = simulate_fmri(n_subjects=1, n_stimuli=60, n_repeats=2, image_size=32, voxels_per_roi=3)
    paths = sim.subjects[0].write_nifti(tmp_path / "sub")
    np.save(tmp_path / "images.npy", sim.stimuli.images)
    np.save(tmp_path / "features.npy", sim.feature_maps[:, None, ::4, ::4].astype(np.float32))
    out = tmp_path / "fit"
    args = [
        "fit-encoder",
        "--betas", str(paths["betas"]),
        "--trials", str(paths["trials"]),
        "--labels", str(paths["rois"]),
        "--label-names", str(paths["roi_names"]),
        "--average-rois",
        "--images", str(tmp_path / "images.npy"),
        "--features", str(tmp_path / "features.npy"),
        "--model", "ridge",
        "--out", str(out),
        "--device", "cpu",
        "-q",
    ]  # fmt: skip
    assert main(args) == 0
    voxels = pd.read_csv(out / "voxels.csv")
    names = pd.read_csv(paths["roi_names"], sep="\t")
    assert sorted(voxels["roi"]) == sorted(names["name"])  # one row per ROI
    assert {"region_id", "x", "y", "z"} <= set(voxels.columns) and "i" not in voxels.columns
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_voxels"] == len(names)
    assert metrics["encoders"]["ridge"]["per_roi"]["V1"]["r"] > 0.3  # V1 tracks the contrast
    r_map = nib.load(out / "maps" / "r_ridge.nii.gz").get_fdata()
    atlas = nib.load(paths["rois"]).get_fdata()
    v1 = int(names.loc[names["name"] == "V1", "index"].iloc[0])
    row = voxels.loc[voxels["roi"] == "V1", "r_ridge"].iloc[0]
    np.testing.assert_allclose(r_map[atlas == v1], row, rtol=1e-6)
    assert np.isnan(r_map[atlas == 0]).all()
    bad = [a for a in args if a not in ("--labels", str(paths["rois"]))]
    assert main([*bad[:-3], "--out", str(tmp_path / "no"), "-q"]) == 2
