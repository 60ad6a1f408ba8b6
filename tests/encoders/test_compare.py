"""compare_encoders on a simulated subject whose answer is known."""

import json

import numpy as np
import pandas as pd
import pytest

from data_loaders.fmri import FMRIDataset
from data_loaders.simulate.fmri import simulate_fmri
from neuro.encoders.compare import compare_encoders, make_encoder
from neuro.encoders.ridge import VoxelRidgeCV
from neuro.errors import InputError


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
        "summary.txt",
        "models/ridge.pt",
        "models/ridge_strong.pt",
    ]:
        assert (out / rel).is_file(), rel
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(result.summary(), allow_nan=False))
    assert metrics["encoders"]["ridge"]["per_roi"]["V1"]["n_voxels"] > 0
    assert (out / "summary.txt").read_text().rstrip("\n") == result.format_table()
    voxels = pd.read_csv(out / "voxels.csv")
    assert list(voxels.columns[:6]) == ["i", "j", "k", "x", "y", "z"]
    np.testing.assert_array_equal(voxels[["i", "j", "k"]].to_numpy(), result.dataset.voxel_ijk)
    world = (
        result.dataset.affine @ np.c_[voxels[["i", "j", "k"]].to_numpy(), np.ones(len(voxels))].T
    )
    np.testing.assert_allclose(voxels[["x", "y", "z"]].to_numpy(), world[:3].T, atol=1e-4)
    saved = VoxelRidgeCV.load(out / "models" / "ridge.pt")
    np.testing.assert_array_equal(saved.coef_, result.encoders["ridge"].coef_)
    with pytest.raises(OutputExistsError):
        result.save(out)
    result.save(out, overwrite=True)


def test_result_api(result, dataset):
    """summary() is a JSON-able dict, format_table() the text, tables() and plot() named."""
    from matplotlib.figure import Figure

    from neuro.results import Result

    assert isinstance(result, Result)
    text = result.format_table()
    assert str(result) == text
    for roi in dataset.rois:
        assert roi in text
    summary = result.summary()
    json.dumps(summary, allow_nan=False)
    ridge = summary["encoders"]["ridge"]
    assert ridge["mean_r"] == pytest.approx(float(np.mean(result.scores["ridge"])))
    assert ridge["mean_r2"] == pytest.approx(float(np.mean(result.r2["ridge"])))
    assert set(ridge["per_roi"]) == {*dataset.rois, "all"}
    tables = result.tables()
    assert set(tables) == {"roi_table", "voxels"}
    assert len(tables["voxels"]) == dataset.n_voxels
    figures = result.plot()
    assert set(figures) == {"roi_comparison", "r_ridge", "r_ridge_strong"}
    assert all(isinstance(f, Figure) for f in figures.values())


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
    from neuro.encoders.readouts import ReadoutEncoder

    assert isinstance(make_encoder("ridge", device="cpu"), VoxelRidgeCV)
    readout = make_encoder("gaussian", device="cpu", random_state=3, epochs=5)
    assert isinstance(readout, ReadoutEncoder)
    assert (readout.readout, readout.random_state, readout.epochs) == ("gaussian", 3, 5)
    with pytest.raises(InputError, match="choose from"):
        make_encoder("forest")


class _MeanMap:
    """A user's estimator that reads maps (input_kind = "maps"): predicts from the mean map."""

    input_kind = "maps"

    def fit(self, X, Y):
        assert X.ndim == 4  # it got the maps, not flattened vectors
        self.ridge_ = VoxelRidgeCV(device="cpu").fit(X.mean(axis=(2, 3)), Y)
        return self

    def predict(self, X):
        assert X.ndim == 4
        return self.ridge_.predict(X.mean(axis=(2, 3)))


class _Flat:
    """The same without ``input_kind``: it gets flattened maps (vectors)."""

    def fit(self, X, Y):
        assert X.ndim == 2
        self.ridge_ = VoxelRidgeCV(device="cpu").fit(X, Y)
        return self

    def predict(self, X):
        assert X.ndim == 2
        return self.ridge_.predict(X)


def test_input_kind_decides_what_an_estimator_reads(dataset, maps):
    encoders = [("maps", _MeanMap()), ("vectors", _Flat())]
    result = compare_encoders(dataset, encoders, features=maps, device="cpu", n_boot=20)
    assert result.names == ["maps", "vectors"]
    assert VoxelRidgeCV.input_kind == "vectors"


def test_without_repeats_scores_but_no_ceiling(rng):
    x = rng.standard_normal((100, 2, 4, 4)).astype("float32")
    betas = x.reshape(100, -1) @ rng.standard_normal((32, 9)) + rng.standard_normal((100, 9))
    ds = FMRIDataset(betas, np.arange(100), roi_labels=["A"] * 4 + ["B"] * 5)
    with pytest.warns(UserWarning, match="no noise ceiling"):
        result = compare_encoders(ds, ["ridge"], features=x, device="cpu", n_boot=50)
    assert result.scores["ridge"].mean() > 0.8
    assert np.isnan(result.normalized["ridge"]).all()
    assert "A" in result.format_table()
    assert result.summary()["encoders"]["ridge"]["mean_normalized"] is None
    assert result.plot().keys() == {"roi_comparison"}  # no voxel positions: no brain maps
