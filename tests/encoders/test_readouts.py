"""Readout families against a simulated subject with planted receptive fields and selectivity."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score

from data_loaders.fmri import FMRIDataset
from data_loaders.simulate.fmri import simulate_fmri
from neuro.encoders.groundtruth import receptive_field_recovery
from neuro.encoders.metrics import voxel_correlation
from neuro.encoders.readouts import (
    READOUTS,
    FactorizedReadout,
    GaussianReadout,
    LinearReadout,
    ReadoutEncoder,
    SemanticReadout,
    _affine,
    _warp,
)
from neuro.encoders.ridge import VoxelRidgeCV
from neuro.errors import CheckpointError, InputError, OutputExistsError

MAP_SIZE = 16


@pytest.fixture(scope="module")
def experiment():
    """One simulated subject, the contrast-energy maps its early voxels integrate, a split.

    The feature map given to every readout is the simulator's own contrast-energy
    map, block-averaged from 48 x 48 to 16 x 16 (one channel). The semantic vector
    given to the semantic readout stands in for a frozen semantic image model such
    as CLIP: each image's category coverage (the fraction of the image that faces,
    scenes, objects and text cover) through a fixed random linear map to 16
    numbers, plus a little noise (``SimulatedStimuli.semantic_embedding``). It
    describes the image, as a real embedding would; it is not any voxel's answer
    (each category voxel mixes all four coverages with its own weights).
    """
    sim = simulate_fmri(
        n_subjects=1, n_stimuli=240, image_size=48, voxels_per_roi=5, snr=2.0, seed=3
    )
    sub = sim.subjects[0]
    n, size, _ = sim.feature_maps.shape
    f = size // MAP_SIZE
    maps = sim.feature_maps.reshape(n, MAP_SIZE, f, MAP_SIZE, f).mean(axis=(2, 4))[:, None]
    semantic = sim.stimuli.semantic_embedding(dim=16, seed=0)
    train, test = FMRIDataset.from_simulation(sub, sim.stimuli).split(0.2, seed=0)
    y_train, ids_train, _ = train.average_repeats()  # 3 repeats per image
    y_test, ids_test, _ = test.average_repeats()
    return {
        "sub": sub,
        "early": ~np.isnan(sub.prf_sizes),  # V1-V4; the others are FFA, PPA, LOC, VWFA
        "train": (maps[ids_train], y_train, semantic[ids_train]),
        "test": (maps[ids_test], y_test, semantic[ids_test]),
    }


@pytest.fixture(scope="module")
def fitted(experiment):
    x, y, s = experiment["train"]
    out = {}
    for name in ("gaussian", "factorized", "semantic"):
        enc = ReadoutEncoder(name, device="cpu", random_state=0)
        out[name] = enc.fit(x, y, semantic=s)  # only the semantic readout reads s
    return out


def _test_r(experiment, enc):
    x, y, s = experiment["test"]
    return voxel_correlation(y, enc.predict(x, semantic=s))


def test_gaussian_recovers_planted_receptive_fields(experiment, fitted):
    enc, sub, early = fitted["gaussian"], experiment["sub"], experiment["early"]
    centers = enc.receptive_field_centers_
    assert centers.shape == (sub.n_voxels, 2) and np.all(np.abs(centers) <= 1)
    rf = receptive_field_recovery(enc, sub)
    assert rf["n_voxels"] == early.sum()
    # map units (the map is 2 wide, a 16 x 16 cell is 0.125): measured 0.016 median, 0.08 max
    assert rf["median_center_error"] < 0.05, rf
    assert rf["p90_center_error"] < 0.1, rf
    assert rf["size_r"] > 0.8, rf  # measured 0.98
    assert _test_r(experiment, enc)[early].mean() > 0.8  # measured 0.89


def test_semantic_readout_wins_on_category_selective_rois(experiment, fitted):
    early = experiment["early"]
    r = {name: _test_r(experiment, enc) for name, enc in fitted.items()}
    category = {name: v[~early].mean() for name, v in r.items()}
    # measured on held-out images: semantic 0.74, gaussian 0.41, factorized 0.40
    assert category["semantic"] > category["gaussian"] + 0.15, category
    assert category["semantic"] > category["factorized"] + 0.15, category
    # and it does not give up the early visual voxels (measured 0.80 against 0.81)
    assert r["semantic"][early].mean() > r["factorized"][early].mean() - 0.05


@pytest.mark.parametrize("form", ["flattened maps", "vectors"])
def test_linear_readout_agrees_with_closed_form_ridge(rng, form):
    x = rng.standard_normal((300, 2, 5, 6)).astype(np.float32)
    w = rng.standard_normal((60, 4)) / np.sqrt(60)
    y = x.reshape(300, -1) @ w + 0.3 * rng.standard_normal((300, 4))
    if form == "vectors":
        x = x.reshape(300, -1)
    enc = ReadoutEncoder("linear", grid=None, device="cpu", epochs=100).fit(x[:240], y[:240])
    ridge = VoxelRidgeCV(device="cpu").fit(x[:240].reshape(240, -1), y[:240])
    pred, pred_ridge = enc.predict(x[240:]), ridge.predict(x[240:].reshape(60, -1))
    assert voxel_correlation(pred_ridge, pred).min() > 0.95
    assert enc.score(x[240:], y[240:]) > ridge.score(x[240:].reshape(60, -1), y[240:]) - 0.05
    r_ridge = ridge.correlation_score(x[240:].reshape(60, -1), y[240:])
    assert enc.correlation_score(x[240:], y[240:]) > r_ridge - 0.05


def test_factorized_masks_find_the_pixel(rng):
    x = rng.standard_normal((240, 2, 5, 6)).astype(np.float32)
    y = 2 * x[:, 1, 3, 4:5] + 0.1 * rng.standard_normal((240, 1))
    enc = ReadoutEncoder("factorized", device="cpu", epochs=150).fit(x, y)
    mask = np.abs(enc.spatial_masks_[0])
    assert np.unravel_index(mask.argmax(), mask.shape) == (3, 4)  # row = y, column = x
    assert np.abs(enc.feature_weights_[0]).argmax() == 1


def test_modules_keep_shapes_and_semantic_starts_as_factorized():
    x = torch.randn(4, 3, 6, 7)
    for rotation in (False, True):
        sem = SemanticReadout((3, 6, 7), 9, semantic_dim=5, rotation=rotation)
        fac = FactorizedReadout((3, 6, 7), 9)
        fac.load_state_dict({k: v for k, v in sem.state_dict().items() if k in fac.state_dict()})
        torch.testing.assert_close(sem(x, torch.randn(4, 5)), fac(x), atol=1e-5, rtol=1e-4)
    g = GaussianReadout((3, 6, 7), 9)
    assert g(x).shape == (4, 9)
    torch.testing.assert_close(g.masks().sum(dim=(1, 2)), torch.ones(9))
    assert LinearReadout((3, 6, 7), 9, grid=2)(x).shape == (4, 9)
    assert LinearReadout((3, 6, 7), 9, grid=None)(x).shape == (4, 9)


def test_warp_moves_right_and_down_and_scales():
    mask = torch.zeros(1, 8, 10)
    mask[0, 3, 4] = 1.0
    # +0.4 in x is two columns of a 10-wide map; +0.5 in y two rows of an 8-high one
    moved = _warp(mask, _affine(torch.tensor([[0.4, 0.5]]), torch.zeros(1)))
    assert divmod(int(moved[0].argmax()), 10) == (5, 6)
    wide = _warp(mask, _affine(torch.zeros(1, 2), torch.tensor([np.log(2.0)], dtype=torch.float32)))
    assert (wide[0] > 0.1).sum() > 1  # scaled up: spread over more pixels


def test_gaussian_centres_follow_the_map_axes(rng):
    """x runs along columns, y along rows, as in grid_sample and the simulator."""
    x = rng.random((160, 1, 8, 12)).astype(np.float32)
    y = x[:, 0, 2, 9][:, None] + 0.01 * rng.standard_normal((160, 1))  # row 2, column 9
    enc = ReadoutEncoder("gaussian", device="cpu", epochs=40).fit(x, y)
    expected = [(9 + 0.5) / 12 * 2 - 1, (2 + 0.5) / 8 * 2 - 1]
    np.testing.assert_allclose(enc.receptive_field_centers_[0], expected, atol=1 / 8)


@pytest.mark.parametrize("readout", READOUTS)
@pytest.mark.parametrize("loss", ["mse", "mse+ccc"])
def test_every_readout_fits_and_predicts(rng, readout, loss):
    x = rng.standard_normal((40, 3, 5, 6)).astype(np.float32)
    y = rng.standard_normal((40, 7))
    enc = ReadoutEncoder(readout, loss=loss, device="cpu", epochs=2, rotation=True)
    enc.fit(torch.from_numpy(x), y)
    pred = enc.predict(torch.from_numpy(x[:9]))
    assert isinstance(pred, torch.Tensor) and pred.shape == (9, 7)
    assert enc.predict(x[:9]).shape == (9, 7) and np.isfinite(enc.score(x, y))
    assert np.isfinite(enc.correlation_score(x, y))
    assert [r["epoch"] for r in enc.history_] == [1, 2]


def test_save_load_roundtrip(experiment, fitted, tmp_path):
    x, _, s = experiment["test"]
    for name, enc in fitted.items():
        path = enc.save(tmp_path / f"{name}.pt")
        back = ReadoutEncoder.load(path)
        np.testing.assert_array_equal(back.predict(x, semantic=s), enc.predict(x, semantic=s))
        assert back.get_params() == enc.get_params()
        np.testing.assert_array_equal(back.feature_weights_, enc.feature_weights_)
        for k in ("x_mean_", "x_scale_", "y_mean_", "y_scale_", "s_mean_", "s_scale_"):
            if hasattr(enc, k):  # standardisation comes back as it was, dtype included
                np.testing.assert_array_equal(getattr(back, k), getattr(enc, k))
                assert getattr(back, k).dtype == getattr(enc, k).dtype
        assert back.settings_ == enc.settings_ and back.history_ == enc.history_
        with pytest.raises(OutputExistsError, match="overwrite=True"):
            enc.save(path)
        enc.save(path, overwrite=True)
    g = ReadoutEncoder.load(tmp_path / "gaussian.pt")
    np.testing.assert_array_equal(
        g.receptive_field_centers_, fitted["gaussian"].receptive_field_centers_
    )


def test_round_trip_is_exact_with_float64_standardisation(rng, tmp_path):
    x = rng.standard_normal((40, 2, 4, 5)).astype(np.float32)
    enc = ReadoutEncoder("factorized", device="cpu", epochs=2).fit(x, rng.standard_normal(40))
    enc.y_mean_ = enc.y_mean_.astype(np.float64) + 1e-9  # not representable in float32
    back = ReadoutEncoder.load(enc.save(tmp_path / "f.pt"))
    assert back.y_mean_.dtype == np.float64
    np.testing.assert_array_equal(back.predict(x), enc.predict(x))
    assert back.predict(x).shape == (40,)  # 1D Y at fit: 1D predictions


def test_other_files_are_refused(fitted, tmp_path):
    ridge = VoxelRidgeCV(alphas=[1.0], device="cpu").fit(np.eye(6), np.eye(6)[:, :2])
    path = ridge.save(tmp_path / "ridge.pt")
    with pytest.raises(CheckpointError, match=r"not a ReadoutEncoder; load it with VoxelRidgeCV"):
        ReadoutEncoder.load(path)
    old = tmp_path / "old.pt"  # the format ReadoutEncoder.save wrote before neuro.persist
    torch.save({"format": "neuro.ReadoutEncoder/1", "params": {}}, old)
    with pytest.raises(CheckpointError, match="not a model saved by neuro") as info:
        ReadoutEncoder.load(old)
    assert "ReadoutEncoder.save()" in str(info.value)
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        ReadoutEncoder.load(tmp_path / "cut.pt")


def test_works_with_clone_and_cross_val_score(rng):
    x = rng.standard_normal((90, 2, 4, 5)).astype(np.float32)
    y = x[:, 0, 1:3, 1:3].mean(axis=(1, 2))[:, None] + 0.1 * rng.standard_normal((90, 1))
    enc = ReadoutEncoder("linear", device="cpu", batch_size=16, epochs=60, lr=0.02)
    assert clone(enc).get_params() == enc.get_params()
    scores = cross_val_score(enc, x, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.5


@pytest.mark.parametrize(
    ("readout", "x_shape", "y_shape", "semantic_shape", "fill", "match"),
    [
        ("gaussian", (20, 12), (20, 3), None, None, r"needs X of shape \(n_images, C, H, W\)"),
        ("factorized", (20, 12), (20, 3), None, None, "Add a channel axis"),
        ("semantic", (20, 12), (20, 3), None, None, "needs X of shape"),
        ("factorized", (20, 4, 5), (20, 3), None, None, "got shape \\(20, 4, 5\\)"),
        ("linear", (20, 2, 4, 5, 1), (20, 3), None, None, "needs X of shape"),
        ("gaussian", (20, 2, 4, 5), (19, 3), None, None, "same number of samples"),
        ("gaussian", (20, 2, 4, 5), (20, 3), None, "x", "X .* NaN or infinite"),
        ("gaussian", (20, 2, 4, 5), (20, 3), None, "y", "Y .* NaN or infinite"),
        ("forest", (20, 2, 4, 5), (20, 3), None, None, "readout must be one of .*got 'forest'"),
        ("semantic", (20, 2, 4, 5), (20, 3), (19, 6), None, "one vector per image"),
        ("semantic", (20, 2, 4, 5), (20, 3), (20, 6), "s", "semantic .* NaN or infinite"),
        ("gaussian", (2, 2, 4, 5), (2, 3), None, None, "Too few images"),
        ("gaussian", (20, 2, 4, 5), (20, 3, 2), None, None, r"Y must be 1D or 2D"),
    ],
)
def test_fit_rejects_bad_input(readout, x_shape, y_shape, semantic_shape, fill, match):
    x, y = np.zeros(x_shape, np.float32), np.ones(y_shape, np.float32)
    s = None if semantic_shape is None else np.zeros(semantic_shape, np.float32)
    if fill == "x":
        x[0, 0] = np.nan
    if fill == "y":
        y[1, 1] = np.inf
    if fill == "s":
        s[2, 2] = np.nan
    with pytest.raises(InputError, match=match):
        ReadoutEncoder(readout, device="cpu").fit(x, y, semantic=s)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": 0}, InputError, "epochs must be an integer >= 1"),
        ({"lr": "fast"}, TypeError, "lr must be a number"),
        ({"grid": 1.5}, TypeError, "grid must be an integer or None"),
        ({"loss": "l1"}, InputError, "loss must be one of"),
        ({"val_fraction": 0.7}, InputError, r"val_fraction must lie in \(0, 0.5\)"),
        ({"random_state": -1}, InputError, "random_state must be an integer >= 0"),
        ({"rotation": "yes"}, TypeError, "rotation must be True or False"),
    ],
)
def test_bad_settings_are_input_errors(kwargs, error, match):
    x, y = np.zeros((20, 2, 4, 5), np.float32), np.ones((20, 3), np.float32)
    with pytest.raises(error, match=match) as info:
        ReadoutEncoder(device="cpu", **kwargs).fit(x, y)
    assert isinstance(info.value, InputError)


@pytest.fixture(scope="module")
def tiny_semantic():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 2, 4, 5)).astype(np.float32)
    y = rng.standard_normal((30, 3))
    s = rng.standard_normal((30, 6))
    return ReadoutEncoder("semantic", device="cpu", epochs=1).fit(x, y, semantic=s), x, s


@pytest.mark.parametrize(
    ("x_shape", "semantic_shape", "match"),
    [
        ((5, 3, 4, 5), (5, 6), r"shape \(3, 4, 5\) \(C, H, W\) but the encoder was fitted on"),
        ((5, 2, 5, 4), (5, 6), "fitted on \\(2, 4, 5\\)"),
        ((5, 40), (5, 6), "needs X of shape"),
        ((5, 2, 4, 5), None, "pass semantic="),
        ((5, 2, 4, 5), (4, 6), "one vector per image"),
        ((5, 2, 4, 5), (5, 7), "vectors of length 7 but the encoder was fitted with length 6"),
    ],
)
def test_predict_rejects_bad_input(tiny_semantic, x_shape, semantic_shape, match):
    enc = tiny_semantic[0]
    s = None if semantic_shape is None else np.zeros(semantic_shape, np.float32)
    with pytest.raises(InputError, match=match):
        enc.predict(np.zeros(x_shape, np.float32), semantic=s)


@pytest.mark.parametrize("method", ["predict", "score", "correlation_score", "save"])
def test_unfitted_encoder_refuses(method, tmp_path):
    x, y = np.zeros((5, 2, 4, 5), np.float32), np.zeros((5, 3))
    args = {"predict": (x,), "save": (tmp_path / "m.pt",)}.get(method, (x, y))
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(ReadoutEncoder(device="cpu"), method)(*args)
