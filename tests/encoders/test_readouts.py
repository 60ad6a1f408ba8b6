"""Readout families against a simulated subject with planted receptive fields and selectivity."""

import numpy as np
import pytest
import torch

from data_loaders.fmri import FMRIDataset
from data_loaders.simulate.fmri import simulate_fmri
from neuro.encoders.features import GaborFeatures
from neuro.encoders.metrics import voxel_correlation
from neuro.encoders.readouts import (
    FactorizedReadout,
    GaussianReadout,
    ReadoutEncoder,
    SemanticReadout,
)


@pytest.fixture(scope="module")
def experiment():
    """A subject, Gabor feature maps of its images, and a train/test split of the averages."""
    sim = simulate_fmri(n_subjects=1, n_stimuli=240, image_size=48, voxels_per_roi=5, seed=3)
    sub = sim.subjects[0]
    train, test = FMRIDataset.from_simulation(sub, sim.stimuli).split(0.2, seed=0)
    y_train, ids_train, _ = train.average_repeats()
    y_test, ids_test, _ = test.average_repeats()
    maps = GaborFeatures(map_size=16, device="cpu").transform(sim.stimuli.images)
    # A stand-in for a frozen semantic model (e.g. CLIP): each image's category content
    # through a fixed random projection. It describes the images, not the voxels.
    semantic = sim.stimuli.semantic_embedding(dim=16, seed=0)
    return {
        "sub": sub,
        "early": ~np.isnan(sub.prf_sizes),
        "train": (maps[ids_train], y_train, semantic[ids_train]),
        "test": (maps[ids_test], y_test, semantic[ids_test]),
    }


@pytest.fixture(scope="module")
def fitted(experiment):
    x, y, s = experiment["train"]
    out = {}
    for name in ("factorized", "gaussian", "semantic"):
        enc = ReadoutEncoder(name, device="cpu", seed=0)
        out[name] = enc.fit(x, y, semantic=s) if name == "semantic" else enc.fit(x, y)
    return out


def _test_r(experiment, enc):
    x, y, s = experiment["test"]
    pred = enc.predict(x, semantic=s) if enc.readout == "semantic" else enc.predict(x)
    return voxel_correlation(y, pred)


def test_gaussian_recovers_planted_receptive_fields(experiment, fitted):
    enc, sub, early = fitted["gaussian"], experiment["sub"], experiment["early"]
    centers = enc.receptive_field_centers_
    assert centers.shape == (sub.n_voxels, 2) and np.all(np.abs(centers) <= 1)
    err = np.linalg.norm(centers[early] - sub.prf_centers[early], axis=1)
    assert np.median(err) < 0.1, np.median(err)  # the image is 2 map units wide
    size_r = np.corrcoef(enc.receptive_field_sizes_[early], sub.prf_sizes[early])[0, 1]
    assert size_r > 0.5
    assert _test_r(experiment, enc)[early].mean() > 0.6


def test_semantic_readout_wins_on_category_selective_rois(experiment, fitted):
    early = experiment["early"]
    r = {name: _test_r(experiment, enc) for name, enc in fitted.items()}
    category = {name: v[~early].mean() for name, v in r.items()}
    assert category["semantic"] > category["gaussian"] + 0.05, category
    assert category["semantic"] > category["factorized"] + 0.05, category
    # and it does not give up the early visual voxels
    assert r["semantic"][early].mean() > r["factorized"][early].mean() - 0.05


def test_linear_readout_recovers_a_planted_linear_map(rng):
    x = rng.standard_normal((300, 3, 4, 4)).astype(np.float32)
    w = rng.standard_normal((3, 5))
    y = x.mean(axis=(2, 3)) @ w + 0.05 * rng.standard_normal((300, 5))
    enc = ReadoutEncoder("linear", grid=1, device="cpu", epochs=100).fit(x[:240], y[:240])
    assert enc.score(x[240:], y[240:]) > 0.95


def test_factorized_masks_find_the_pixel(rng):
    x = rng.standard_normal((240, 2, 5, 6)).astype(np.float32)
    y = 2 * x[:, 1, 3, 4:5] + 0.1 * rng.standard_normal((240, 1))
    enc = ReadoutEncoder("factorized", device="cpu", epochs=150).fit(x, y)
    mask = np.abs(enc.spatial_masks_[0])
    assert np.unravel_index(mask.argmax(), mask.shape) == (3, 4)  # row = y, column = x
    assert np.abs(enc.feature_weights_[0]).argmax() == 1


def test_modules_keep_shapes_and_start_as_identity(rng):
    x = torch.randn(4, 3, 6, 7)
    sem = SemanticReadout((3, 6, 7), 9, semantic_dim=5)
    fac = FactorizedReadout((3, 6, 7), 9)
    fac.load_state_dict({k: v for k, v in sem.state_dict().items() if k in fac.state_dict()})
    torch.testing.assert_close(sem(x, torch.randn(4, 5)), fac(x), atol=1e-5, rtol=1e-4)
    g = GaussianReadout((3, 6, 7), 9)
    assert g(x).shape == (4, 9)
    torch.testing.assert_close(g.masks().sum(dim=(1, 2)), torch.ones(9))


def test_save_load_roundtrip(experiment, fitted, tmp_path):
    enc = fitted["semantic"]
    x, _, s = experiment["test"]
    path = enc.save(tmp_path / "semantic.pt")
    back = ReadoutEncoder.load(path)
    np.testing.assert_allclose(back.predict(x, semantic=s), enc.predict(x, semantic=s), rtol=1e-5)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        enc.save(path)
    enc.save(path, overwrite=True)
    g = ReadoutEncoder.load(fitted["gaussian"].save(tmp_path / "g.pt"))
    np.testing.assert_array_equal(
        g.receptive_field_centers_, fitted["gaussian"].receptive_field_centers_
    )


def test_works_with_cross_val_score(rng):
    from sklearn.model_selection import cross_val_score

    x = rng.standard_normal((90, 2, 4, 4)).astype(np.float32)
    y = x[:, 0, 1:3, 1:3].mean(axis=(1, 2))[:, None] + 0.1 * rng.standard_normal((90, 1))
    scores = cross_val_score(
        ReadoutEncoder("linear", device="cpu", batch_size=16, epochs=60), x, y, cv=3
    )
    assert scores.shape == (3,) and scores.mean() > 0.5


@pytest.mark.parametrize(
    ("readout", "x_shape", "y_shape", "fill", "match"),
    [
        ("gaussian", (20, 12), (20, 3), None, r"needs feature maps of shape \(n_images, C, H, W\)"),
        ("factorized", (20, 2, 4), (20, 3), None, "needs feature maps"),
        ("gaussian", (20, 2, 4, 4), (19, 3), None, "same number of images"),
        ("gaussian", (20, 2, 4, 4), (20, 3), "x", "NaN or infinite"),
        ("gaussian", (20, 2, 4, 4), (20, 3), "y", "NaN or infinite"),
        ("forest", (20, 2, 4, 4), (20, 3), None, "Unknown readout 'forest'"),
    ],
)
def test_bad_input(readout, x_shape, y_shape, fill, match):
    x, y = np.zeros(x_shape, np.float32), np.ones(y_shape, np.float32)
    if fill == "x":
        x[0, 0] = np.nan
    if fill == "y":
        y[1, 1] = np.inf
    with pytest.raises(ValueError, match=match):
        ReadoutEncoder(readout, device="cpu").fit(x, y)


def test_predict_errors(rng):
    x = rng.standard_normal((30, 2, 4, 4)).astype(np.float32)
    y = rng.standard_normal((30, 3))
    with pytest.raises(RuntimeError, match="not fitted yet"):
        ReadoutEncoder(device="cpu").predict(x)
    enc = ReadoutEncoder("semantic", device="cpu", epochs=2).fit(x, y, semantic=x[:, :, 0, 0])
    with pytest.raises(ValueError, match=r"shape \(4, 4, 4\) but the encoder was fitted on"):
        enc.predict(rng.standard_normal((5, 4, 4, 4)))
    with pytest.raises(ValueError, match="pass semantic= too"):
        enc.predict(x)
    with pytest.raises(ValueError, match=r"one vector per image"):
        enc.predict(x, semantic=np.zeros((29, 2)))
