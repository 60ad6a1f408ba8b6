"""Brain3DDecoder: ground truth on synthetic shapes, null data, seeds, save/load, resume, errors.

The data are built here (no simulator): three categories (ellipsoid, box,
cylinder) with random sizes on a 16^3 grid; early visual "voxels" are a
random linear map of the size parameters and the category, MTL voxels of the
category only, plus noise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from neuro.decoding.brain3d import STAGES, Brain3DDecoder
from neuro.errors import InputError, InputTypeError, OutputExistsError

GRID = 16
N_TRAIN, N_TEST = 120, 30
ROI_SIZES = {"V1": 7, "V2": 8, "V3": 9, "V4": 10, "MTL": 11}

#: small enough for a CPU test, large enough to learn the shapes
SMALL = dict(
    shape_latent_dim=16,
    ae_channels=(8, 16, 32),
    hidden_dim=64,
    dropout=0.1,
    ae_epochs=60,
    ae_lr=5e-3,
    epochs=120,
    patience=20,
    flow_epochs=100,
    flow_hidden=96,
    flow_steps=12,
    device="cpu",
)
#: a few steps of each stage (resume and error tests)
TINY = dict(
    shape_latent_dim=4,
    ae_channels=(2, 4, 4),
    hidden_dim=8,
    ae_epochs=2,
    epochs=3,
    flow_epochs=2,
    flow_hidden=8,
    flow_steps=3,
    batch_size=16,
    device="cpu",
)


def make_shapes(n: int, seed: int = 0):
    """``(occupancy (n, G, G, G), categories (n,), params (n, 3))`` of random solids."""
    rng = np.random.default_rng(seed)
    c = (2 * np.arange(GRID) + 1) / GRID - 1
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    cats = rng.permutation(np.arange(n) % 3)
    params = rng.uniform(0, 1, (n, 3))
    a, b, h = ((0.35 + 0.5 * params[:, i])[:, None, None, None] for i in range(3))
    ellipsoid = (x / a) ** 2 + (y / b) ** 2 + (z / h) ** 2 <= 1
    box = (np.abs(x) <= a) & (np.abs(y) <= b) & (np.abs(z) <= h)
    cylinder = ((x / a) ** 2 + (y / a) ** 2 <= 1) & (np.abs(z) <= h)
    k = cats[:, None, None, None]
    occ = np.where(k == 0, ellipsoid, np.where(k == 1, box, cylinder))
    return occ.astype(np.float32), cats, params


def make_voxels(params, cats, noise: float = 0.25, seed: int = 1):
    """``(X (n, n_voxels), roi_labels)``: early ROIs see size and category, MTL the category."""
    rng = np.random.default_rng(seed)
    onehot = np.eye(3)[cats]
    early_sizes = [ROI_SIZES[r] for r in ("V1", "V2", "V3", "V4")]
    feats = np.concatenate([params - 0.5, 0.5 * onehot], 1)
    early = feats @ rng.standard_normal((6, sum(early_sizes)))
    mtl = onehot @ rng.standard_normal((3, ROI_SIZES["MTL"]))
    X = np.concatenate([early, mtl], 1)
    X = X + noise * rng.standard_normal(X.shape)
    labels = np.repeat(list(ROI_SIZES), list(ROI_SIZES.values()))
    return X.astype(np.float32), labels


def iou(pred, true):
    a = pred.reshape(len(pred), -1) >= 0.5
    b = true.reshape(len(true), -1) >= 0.5
    return (a & b).sum(1) / np.maximum((a | b).sum(1), 1)


@pytest.fixture(scope="module")
def data():
    occ, cats, params = make_shapes(N_TRAIN + N_TEST)
    X, labels = make_voxels(params, cats)
    tr, te = slice(0, N_TRAIN), slice(N_TRAIN, None)
    return {
        "X": X[tr],
        "Y": occ[tr],
        "cats": cats[tr],
        "X_test": X[te],
        "Y_test": occ[te],
        "cats_test": cats[te],
        "labels": labels,
    }


@pytest.fixture(scope="module")
def fitted(data):
    return Brain3DDecoder(**SMALL).fit(
        data["X"], data["Y"], data["labels"], categories=data["cats"]
    )


# ---------------------------------------------------------------- ground truth
def test_decodes_held_out_objects(fitted, data):
    X, Y = data["X_test"], data["Y_test"]
    decoded = iou(fitted.predict(X, seed=0), Y).mean()
    baseline = iou(fitted.nearest_neighbour(X), Y).mean()
    shuffled = iou(fitted.predict(X[np.random.default_rng(0).permutation(len(X))], seed=0), Y)
    mean_shape = iou(np.repeat(data["Y"].mean(0, keepdims=True), len(Y), 0), Y).mean()
    # measured: decoded 0.75, nearest neighbour 0.77, shuffled X 0.50, mean shape 0.58 (this
    # dense 3-parameter family favours the nearest neighbour; on simulate_shape_fmri's
    # objects the decoder beats it, 0.57 vs 0.52 at grid 32)
    assert decoded > shuffled.mean() + 0.15
    assert decoded > mean_shape + 0.08
    assert decoded > baseline - 0.05  # on a par with the nearest training object at least
    assert fitted.score(X, Y, seed=0) == pytest.approx(decoded)


def test_category_and_latents(fitted, data):
    pred = fitted.predict_category(data["X_test"])
    assert pred.dtype == np.int64
    assert (pred == data["cats_test"]).mean() > 0.8  # chance 1/3
    lat = fitted.predict_latents(data["X_test"])
    assert lat["shape"].shape == (N_TEST, 16) and lat["semantic"].shape == (N_TEST, 3)
    assert (lat["semantic"].argmax(1) == data["cats_test"]).mean() > 0.8
    assert fitted.grid_size_ == GRID and fitted.n_features_in_ == sum(ROI_SIZES.values())
    assert fitted.rois_ == {"early": ["V1", "V2", "V3", "V4"], "semantic": ["MTL"]}


def test_null_responses_decode_nothing(data):
    """Pure-noise X: category at chance, objects no better than the mean shape."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal(data["X"].shape).astype(np.float32)
    settings = {**SMALL, "ae_epochs": 30, "epochs": 60, "flow_epochs": 50}
    dec = Brain3DDecoder(**settings).fit(X, data["Y"], data["labels"], categories=data["cats"])
    Y, cats, _ = make_shapes(240, seed=9)  # many held-out objects: a tight chance level
    X_test = rng.standard_normal((len(Y), X.shape[1])).astype(np.float32)
    acc = (dec.predict_category(X_test) == cats).mean()
    assert acc < 0.43  # chance 1/3 (sd 0.03); measured 0.30-0.39 (IoU 0.53 vs 0.56)
    mean_shape = iou(np.repeat(data["Y"].mean(0, keepdims=True), len(Y), 0), Y).mean()
    assert iou(dec.predict(X_test, seed=0), Y).mean() < mean_shape + 0.01


# ------------------------------------------------------------- reproducibility
def test_sampling_is_reproducible(fitted, data):
    X = data["X_test"][:5]
    a, b = fitted.predict(X, seed=3), fitted.predict(X, seed=3)
    assert a.dtype == np.float32 and a.shape == (5, GRID, GRID, GRID)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, fitted.predict(X, seed=4))
    assert np.array_equal(fitted.predict(X), fitted.predict(X, seed=fitted.random_state))
    samples = fitted.sample(X, n_samples=3, seed=3)
    assert samples.shape == (5, 3, GRID, GRID, GRID)
    assert np.array_equal(samples, fitted.sample(X, n_samples=3, seed=3))
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    assert np.array_equal(fitted.nearest_neighbour(X), fitted.nearest_neighbour(X))


def test_save_load_gives_identical_samples(fitted, data, tmp_path):
    X = data["X_test"][:6]
    path = fitted.save(tmp_path / "brain3d.pt")
    loaded = Brain3DDecoder.load(path)
    assert np.array_equal(loaded.predict(X, seed=7), fitted.predict(X, seed=7))
    assert np.array_equal(loaded.sample(X, 2, seed=1), fitted.sample(X, 2, seed=1))
    assert np.array_equal(loaded.predict_category(X), fitted.predict_category(X))
    assert np.array_equal(loaded.nearest_neighbour(X), fitted.nearest_neighbour(X))
    assert loaded.n_parameters_ == fitted.n_parameters_
    with pytest.raises(OutputExistsError):
        fitted.save(path)


def test_parameter_counts(fitted):
    sizes = {**ROI_SIZES, "grid_size": GRID}
    counts = Brain3DDecoder(**SMALL).parameter_counts(sizes, semantic_dim=3)
    assert {k: counts[k] for k in fitted.n_parameters_} == fitted.n_parameters_
    gpu = Brain3DDecoder(shape_latent_dim=128, ae_channels=(32, 64, 128), hidden_dim=512)
    big = gpu.parameter_counts({"grid_size": 64}, semantic_dim=16)
    cpu = Brain3DDecoder().parameter_counts({"grid_size": 32}, semantic_dim=16)
    assert big["total"] > 10 * cpu["total"] > 10 * counts["total"]


# ---------------------------------------------------------------------- resume
def _counting(steps: dict):
    """A decoder class that counts the optimizer steps each stage takes in its fit."""
    from neuro.train import Callback

    class Count(Callback):
        def on_step_end(self, trainer, step, metrics):
            steps[trainer.out_dir.name] = steps.get(trainer.out_dir.name, 0) + 1

    class Counting(Brain3DDecoder):
        def _trainer(self, *args, **settings):
            return super()._trainer(*args, callbacks=[Count()], **settings)

    return Counting


def _crashing(stage: str, at_step: int):
    from neuro.train import Callback

    class Crash(Callback):
        def on_step_end(self, trainer, step, metrics):
            if trainer.out_dir is not None and trainer.out_dir.name == stage and step == at_step:
                raise RuntimeError("simulated crash")

    class Crashing(Brain3DDecoder):
        def _trainer(self, *args, **settings):
            return super()._trainer(*args, callbacks=[Crash()], **settings)

    return Crashing


@pytest.fixture(scope="module")
def small(data):
    n = 48
    return data["X"][:n], data["Y"][:n], data["labels"], data["cats"][:n]


@pytest.fixture(scope="module")
def reference(small):
    X, Y, labels, cats = small
    return Brain3DDecoder(**TINY).fit(X, Y, labels, categories=cats)


@pytest.mark.parametrize("stage", STAGES)
def test_killed_fit_resumes_exactly(small, reference, stage, tmp_path):
    X, Y, labels, cats = small
    folder = tmp_path / "run"
    settings = {**TINY, "checkpoint_dir": folder, "checkpoint_every_n_steps": 2}
    with pytest.raises(RuntimeError, match="simulated crash"):
        _crashing(stage, at_step=3)(**settings).fit(X, Y, labels, categories=cats)
    assert not (folder / stage / "final.pt").exists()
    steps = {}
    resumed = _counting(steps)(**settings).fit(X, Y, labels, categories=cats, resume=True)
    # finished stages are loaded, the killed one continues from its last checkpoint (step 2)
    total = {
        s: reference.history_[k][-1]["step"]
        for s, k in zip(STAGES, reference.history_, strict=True)
    }
    done = STAGES[: STAGES.index(stage)]
    assert all(s not in steps for s in done)
    assert steps[stage] == total[stage] - 2
    assert np.array_equal(resumed.predict(X, seed=5), reference.predict(X, seed=5))
    for name in ("autoencoder_", "regressor_", "flow_"):
        ref, got = getattr(reference, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(v, got[k]) for k, v in ref.items()), name

    def strip(h):
        return {s: [{k: v for k, v in r.items() if k != "time_s"} for r in h[s]] for s in h}

    assert strip(resumed.history_) == strip(reference.history_)
    with pytest.raises(OutputExistsError, match="resume=True"):
        Brain3DDecoder(**settings).fit(X, Y, labels, categories=cats)


def test_resume_needs_a_run(small, tmp_path):
    X, Y, labels, cats = small
    with pytest.raises(InputError, match="needs checkpoint_dir"):
        Brain3DDecoder(**TINY).fit(X, Y, labels, categories=cats, resume=True)
    with pytest.raises(InputError, match="Nothing to resume"):
        Brain3DDecoder(**TINY, checkpoint_dir=tmp_path / "empty").fit(
            X, Y, labels, categories=cats, resume=True
        )


# ------------------------------------------------------------------ bad input
def test_semantics_without_categories(small):
    X, Y, labels, cats = small
    emb = np.random.default_rng(0).standard_normal((3, 5))[cats]
    dec = Brain3DDecoder(**TINY).fit(X, Y, labels, semantics=emb)
    assert dec.predict_latents(X[:2])["semantic"].shape == (2, 5)
    with pytest.raises(InputError, match="refit with fit\\(..., categories=...\\)"):
        dec.predict_category(X[:2])


def test_not_fitted(small):
    with pytest.raises(NotFittedError):
        Brain3DDecoder(**TINY).predict(small[0])


def _bad_fit_inputs(small):
    X, Y, labels, cats = small
    nan = X.copy()
    nan[0, 0] = np.nan
    return {
        "X 1D": (dict(X=X[:, 0]), InputError, "X must be 2D"),
        "X NaN": (dict(X=nan), InputError, "NaN"),
        "Y not cubic": (dict(Y=Y[:, :, :, :8]), InputError, "cubic with G a multiple of 8"),
        "Y grid 12": (dict(Y=Y[:, :12, :12, :12]), InputError, "load_shape_targets"),
        "Y 3D": (dict(Y=Y[:, 0]), InputError, "occupancy grids \\(n, G, G, G\\)"),
        "Y out of range": (dict(Y=2 * Y), InputError, "in \\[0, 1\\]"),
        "lengths differ": (dict(Y=Y[:-1]), InputError, "same number of samples"),
        "roi_labels length": (dict(roi_labels=labels[:-1]), InputError, "one label per voxel"),
        "no roi_labels": (dict(roi_labels=None), InputError, "roi_labels must name"),
        "no semantic target": (dict(categories=None), InputError, "categories=.*or semantics="),
        "categories length": (dict(categories=cats[:-1]), InputError, "categories has 47"),
        "bank grid": (dict(shape_bank=Y[:3, :8, :8, :8]), InputError, "shape_bank has grids"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "X 1D",
        "X NaN",
        "Y not cubic",
        "Y grid 12",
        "Y 3D",
        "Y out of range",
        "lengths differ",
        "roi_labels length",
        "no roi_labels",
        "no semantic target",
        "categories length",
        "bank grid",
    ],
)
def test_bad_fit_input(small, case):
    X, Y, labels, cats = small
    args = dict(X=X, Y=Y, roi_labels=labels, categories=cats)
    change, error, match = _bad_fit_inputs(small)[case]
    args.update(change)
    with pytest.raises(error, match=match):
        Brain3DDecoder(**TINY).fit(**args)


@pytest.mark.parametrize(
    "setting, match",
    [
        (
            dict(early_rois=("V1", "V5")),
            "early_rois names ROI\\(s\\) \\['V5'\\].*present: \\['MTL'",
        ),
        (dict(semantic_rois="IT"), "semantic_rois names ROI\\(s\\) \\['IT'\\]"),
        (dict(ae_channels=(4, 8)), "ae_channels must be three positive ints"),
        (dict(flow_condition="true"), "flow_condition"),
        (dict(temperature=0.0), "temperature"),
    ],
)
def test_bad_settings(small, setting, match):
    X, Y, labels, cats = small
    with pytest.raises(InputError, match=match):
        Brain3DDecoder(**{**TINY, **setting}).fit(X, Y, labels, categories=cats)


def test_rois_wrong_type(small):
    X, Y, labels, cats = small
    with pytest.raises(InputTypeError, match="early_rois must be a non-empty sequence"):
        Brain3DDecoder(**{**TINY, "early_rois": 3}).fit(X, Y, labels, categories=cats)


def test_predict_wrong_voxel_count(reference, small):
    X = small[0]
    with pytest.raises(InputError, match="X has 44 features, but Brain3DDecoder is expecting 45"):
        reference.predict(X[:, :-1])
    with pytest.raises(InputError, match="X must be 2D"):
        reference.nearest_neighbour(X[0])
    with pytest.raises(InputError, match="grids of size 8 but the model decodes 16"):
        reference.score(X[:3], small[1][:3, :8, :8, :8])
