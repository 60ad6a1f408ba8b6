"""compare_encoders on a simulated subject whose answer is known."""

import json

import numpy as np
import pytest

from data_loaders.fmri import FMRIDataset
from data_loaders.simulate.fmri import simulate_fmri
from neuro.encoders.compare import compare_encoders, make_encoder
from neuro.encoders.ridge import VoxelRidgeCV


@pytest.fixture(scope="module")
def sim():
    return simulate_fmri(n_subjects=1, n_stimuli=150, image_size=32, voxels_per_roi=4, seed=1)


@pytest.fixture(scope="module")
def dataset(sim):
    return FMRIDataset.from_simulation(sim.subjects[0], sim.stimuli)


@pytest.fixture(scope="module")
def maps(sim):
    """The planted contrast-energy map, pooled to 8 x 8, as one feature channel."""
    e = sim.feature_maps
    return e.reshape(len(e), 1, 8, 4, 8, 4).mean(axis=(3, 5))


@pytest.fixture(scope="module")
def result(dataset, maps):
    encoders = [("ridge", VoxelRidgeCV(device="cpu")), ("ridge_strong", VoxelRidgeCV(alphas=[1e6]))]
    return compare_encoders(dataset, encoders, features=maps, device="cpu", n_boot=200)


def test_scores_have_one_value_per_voxel(result, dataset):
    assert result.names == ["ridge", "ridge_strong"]
    for name in result.names:
        assert result.scores[name].shape == (dataset.n_voxels,)
        assert result.normalized[name].shape == (dataset.n_voxels,)
    assert result.n_train + result.n_test == 150
    assert 25 <= result.n_test <= 35


def test_ridge_on_planted_energy_explains_early_visual_voxels(result, dataset):
    early = np.isin(dataset.roi_labels, ["V1", "V2", "V3", "V4"])
    r = result.scores["ridge"]
    assert r[early].mean() > 0.6
    assert r[early].mean() > r[~early].mean() + 0.2
    # a model cannot beat the noise ceiling by much on average
    assert np.nanmean(result.normalized["ridge"][early]) < 1.3


def test_table_matches_voxel_scores(result, dataset):
    t = result.table
    row = t[(t.roi == "V1") & (t.model == "ridge")].iloc[0]
    v1 = dataset.roi_labels == "V1"
    assert row.n_voxels == v1.sum()
    np.testing.assert_allclose(row.r_mean, result.scores["ridge"][v1].mean())
    assert row.r_ci_low <= row.r_mean <= row.r_ci_high
    assert set(t.roi) == {*dataset.rois, "all"}


def test_best_model_and_maps(result, dataset):
    best = result.best_model()
    better = result.scores["ridge"] >= result.scores["ridge_strong"]
    assert ((best == "ridge") == better).all()
    img = result.best_model_map()
    values = np.asarray(img.dataobj)[tuple(dataset.voxel_ijk.T)]
    np.testing.assert_array_equal(values, np.where(better, 1, 2))
    rmap = result.r_maps()["ridge"]
    np.testing.assert_allclose(
        np.asarray(rmap.dataobj)[tuple(dataset.voxel_ijk.T)], result.scores["ridge"], rtol=1e-6
    )


def test_save_writes_everything_and_refuses_overwrite(result, tmp_path):
    from neuro.io import OutputExistsError

    out = tmp_path / "cmp"
    result.save(out)
    for rel in [
        "metrics.json",
        "roi_table.csv",
        "voxels.csv",
        "maps/r_ridge.nii.gz",
        "maps/best_model.nii.gz",
        "maps/best_model_labels.tsv",
        "figures/roi_comparison.png",
        "figures/r_ridge.png",
        "models/ridge.npz",
    ]:
        assert (out / rel).is_file(), rel
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["encoders"]["ridge"]["per_roi"]["V1"]["n_voxels"] > 0
    saved = np.load(out / "models" / "ridge.npz", allow_pickle=False)
    np.testing.assert_array_equal(saved["coef_"], result.encoders["ridge"].coef_)
    with pytest.raises(OutputExistsError):
        result.save(out)
    result.save(out, overwrite=True)


def test_summary_lists_every_roi(result, dataset):
    text = result.summary()
    for roi in dataset.rois:
        assert roi in text


def test_gabor_features_by_default(dataset):
    result = compare_encoders(dataset, ["ridge"], device="cpu", image_size=(32, 32), n_boot=50)
    early = np.isin(dataset.roi_labels, ["V1", "V2", "V3", "V4"])
    assert result.scores["ridge"][early].mean() > 0.3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"encoders": []}, "encoders is empty"),
        ({"encoders": ["ridge", "ridge"]}, "appears twice"),
        ({"encoders": ["svm"]}, "Unknown encoder 'svm'"),
        ({"features": np.zeros((10, 1, 4, 4))}, "features has 10 rows"),
        ({"features": np.zeros((150, 4, 4))}, r"shape \(n_stimuli, C, H, W\)"),
        ({"semantic": np.zeros((150,))}, "semantic must have shape"),
    ],
)
def test_bad_input(dataset, maps, kwargs, match):
    args = {"encoders": ["ridge"], "features": maps, "device": "cpu"} | kwargs
    with pytest.raises(ValueError, match=match):
        compare_encoders(dataset, **args)


def test_make_encoder_names():
    assert isinstance(make_encoder("ridge", device="cpu"), VoxelRidgeCV)
    with pytest.raises(ValueError, match="choose from"):
        make_encoder("forest")


def test_without_repeats_scores_but_no_ceiling(rng):
    x = rng.standard_normal((100, 2, 4, 4)).astype("float32")
    betas = x.reshape(100, -1) @ rng.standard_normal((32, 9)) + rng.standard_normal((100, 9))
    ds = FMRIDataset(betas, np.arange(100), roi_labels=["A"] * 4 + ["B"] * 5)
    with pytest.warns(UserWarning, match="no noise ceiling"):
        result = compare_encoders(ds, ["ridge"], features=x, device="cpu", n_boot=50)
    assert result.scores["ridge"].mean() > 0.8
    assert np.isnan(result.normalized["ridge"]).all()
    assert "A" in result.summary()
    assert result.metrics()["encoders"]["ridge"]["mean_normalized"] is None
