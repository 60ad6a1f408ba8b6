"""The deep encoders' bad-input list (issue 14), each refused in one clear line.

Cases already in ``test_transformer.py`` / ``test_incontext.py`` are not
repeated here (a direct transformer fit without ROI labels, 2-D features
without ``map_shape`` at fit, NaN in the transformer's training maps, a
support set of another embedding length in ``encode`` and ``scaling_curve``,
every K above the images available).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data_loaders.fmri import FMRIDataset
from neuro.encoders.compare import compare_encoders
from neuro.encoders.incontext import InContextEncoder
from neuro.encoders.transformer import TransformerEncoder
from neuro.errors import InputError, InputTypeError

N, E = 40, 7
TF_SMALL = {"d_model": 8, "n_heads": 2, "ffn_dim": 16, "epochs": 1, "device": "cpu"}
IC_SMALL = {"d_model": 8, "n_layers": 1, "n_heads": 2, "epochs": 1, "device": "cpu"}
#: readout_kwargs for a named "transformer" in compare_encoders (its defaults train 100 epochs).
TINY = {"d_model": 8, "n_heads": 2, "ffn_dim": 16, "epochs": 1}
LABELS = ["A", "A", "B", "B", "", "C"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    maps = rng.standard_normal((N, 3, 4, 5)).astype(np.float32)
    y = (maps.reshape(N, -1) @ rng.standard_normal((60, 6))).astype(np.float32)
    emb = rng.standard_normal((N, E)).astype(np.float32)
    return maps, y, emb


@pytest.fixture(scope="module")
def transformer(data):
    maps, y, _ = data
    return TransformerEncoder(roi_labels=LABELS, **TF_SMALL).fit(maps, y)


@pytest.fixture(scope="module")
def incontext(data):
    _, y, emb = data
    return InContextEncoder(**IC_SMALL).fit(emb, y)


def _one_line(error, pattern, call):
    with pytest.raises(error, match=pattern) as info:
        call()
    assert "\n" not in str(info.value), str(info.value)


def _with(array, index, value):
    out = array.copy()
    out[index] = value
    return out


# ------------------------------------------------------ ROI labels in a comparison
def _dataset(y, roi_labels=None):
    """Two noisy repeats per stimulus of the 6 voxels."""
    rng = np.random.default_rng(1)
    ids = np.tile(np.arange(N), 2)
    betas = y[ids] + 0.5 * rng.standard_normal((2 * N, y.shape[1]))
    return FMRIDataset(betas.astype(np.float32), ids, roi_labels=roi_labels)


def test_compare_refuses_the_roi_transformer_on_a_dataset_without_rois(data):
    maps, y, _ = data
    ds = _dataset(y)
    assert ds.roi_labels is None
    _one_line(
        InputError,
        r"'transformer' routes by ROI, but the dataset has no ROI labels.*query_mode='voxel'",
        lambda: compare_encoders(ds, ["ridge", "transformer"], features=maps, device="cpu"),
    )
    # the fix the message names works: one query per voxel needs no labels
    enc = TransformerEncoder(query_mode="voxel", **TF_SMALL)
    result = compare_encoders(ds, [("transformer", enc)], features=maps, device="cpu", n_boot=10)
    assert enc.query_names_ == [f"voxel-{i}" for i in range(6)]
    assert set(result.table["roi"]) == {"all-voxels", "all"}


def test_compare_refuses_the_roi_transformer_when_no_voxel_has_a_label(data):
    maps, y, _ = data
    ds = _dataset(y, roi_labels=[""] * 6)
    _one_line(
        InputError,
        r"'transformer' routes by ROI, but the dataset has no ROI labels",
        lambda: compare_encoders(
            ds, ["transformer"], features=maps, device="cpu", n_boot=10, readout_kwargs=TINY
        ),
    )


def test_compare_refuses_flat_features_for_the_transformer(data):
    maps, y, _ = data
    ds = _dataset(y, roi_labels=LABELS)
    _one_line(
        InputError,
        r"needs feature maps X of shape \(n_images, C, H, W\).*got shape \(\d+, 60\)",
        lambda: compare_encoders(
            ds, ["transformer"], features=maps.reshape(N, -1), device="cpu", n_boot=10
        ),
    )


# ------------------------------------------------- the transformer's spatial layout
@pytest.mark.parametrize(
    ("shape", "hint"),
    [
        ((N, 3, 20), r"got shape \(40, 3, 20\)"),  # tokens without their grid
        ((N, 1, 3, 4, 5), r"got shape \(40, 1, 3, 4, 5\)"),
        ((N * 60,), r"X\.reshape\(1, -1\) for a single sample"),
    ],
    ids=["3d-tokens", "5d", "1d"],
)
def test_transformer_fit_needs_the_spatial_layout(data, shape, hint):
    maps, y, _ = data
    enc = TransformerEncoder(roi_labels=LABELS, **TF_SMALL)
    _one_line(InputError, rf"needs feature maps .*{hint}", lambda: enc.fit(maps.reshape(shape), y))


@pytest.mark.parametrize(
    ("make", "hint"),
    [
        (lambda m: m.reshape(len(m), -1), r"got shape \(40, 60\).*map_shape=\(C, H, W\)"),
        (lambda m: m.reshape(len(m), 3, 20), r"got shape \(40, 3, 20\)"),
        (lambda m: m[0], r"got shape \(3, 4, 5\)"),  # one map without its batch axis
    ],
    ids=["flat", "3d-tokens", "single-map"],
)
def test_transformer_predict_needs_the_spatial_layout(data, transformer, make, hint):
    maps, _, _ = data
    _one_line(InputError, rf"needs feature maps .*{hint}", lambda: transformer.predict(make(maps)))
    _one_line(
        InputError, rf"needs feature maps .*{hint}", lambda: transformer.routing_maps(make(maps))
    )


def test_transformer_refuses_maps_of_another_feature_space(data, transformer):
    maps, _, _ = data
    other = np.concatenate([maps, maps[:, :1]], axis=1)  # another backbone: 4 channels
    _one_line(
        InputError,
        r"maps of shape \(4, 4, 5\).*fitted on \(3, 4, 5\)",
        lambda: transformer.predict(other),
    )
    _one_line(InputError, r"fitted on \(3, 4, 5\)", lambda: transformer.predict(maps[:, :, :, :4]))


# ---------------------------------------------------------------- hemispheres
@pytest.mark.parametrize(
    ("where", "hemispheres", "error", "pattern"),
    [
        (
            "fit",
            ["left"] * 5,
            InputError,
            r"hemispheres must have one label per voxel.*got shape \(5,\)",
        ),
        (
            "param",
            ["left"] * 7,
            InputError,
            r"one label per voxel, shape \(n_voxels=6,\); got shape \(7,\)",
        ),
        ("fit", [["left"] * 6], InputError, r"got shape \(1, 6\)"),
        ("fit", "left", InputTypeError, "single string 'left'"),
        ("fit", ["left", None, "right", "left", "", "right"], InputError, "without a hemisphere"),
    ],
    ids=["short", "long-parameter", "2d", "string", "missing"],
)
def test_transformer_refuses_bad_hemispheres(data, where, hemispheres, error, pattern):
    maps, y, _ = data
    if where == "param":
        enc = TransformerEncoder(roi_labels=LABELS, hemispheres=hemispheres, **TF_SMALL)
        call = lambda: enc.fit(maps, y)  # noqa: E731
    else:
        enc = TransformerEncoder(roi_labels=LABELS, **TF_SMALL)
        call = lambda: enc.fit(maps, y, hemispheres=hemispheres)  # noqa: E731
    _one_line(error, pattern, call)
    assert not hasattr(enc, "model_")


# ------------------------------------------------------------------------ NaN
def test_transformer_refuses_nan_and_inf(data, transformer):
    maps, y, _ = data
    bad = _with(maps, (3, 1, 2, 2), np.nan)
    _one_line(InputError, "X contains 1 NaN or infinite", lambda: transformer.predict(bad))
    _one_line(InputError, "X contains 1 NaN or infinite", lambda: transformer.routing_maps(bad))
    inf = _with(maps, (0, 0, 0, 0), np.inf)
    enc = TransformerEncoder(roi_labels=LABELS, **TF_SMALL)
    _one_line(InputError, "X contains 1 NaN or infinite", lambda: enc.fit(inf, y))
    torch_bad = torch.from_numpy(bad)
    _one_line(InputError, "NaN", lambda: transformer.predict(torch_bad))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda enc, emb, y, bad: enc.predict(bad, support_X=emb[:20], support_Y=y[:20]), "X"),
        (
            lambda enc, emb, y, bad: enc.predict(emb, support_X=bad[:20], support_Y=y[:20]),
            "support_X",
        ),
        (lambda enc, emb, y, bad: enc.encode(bad[:20], y[:20]), "support_X"),
        (lambda enc, emb, y, bad: enc.support_attention(bad[:20], y[:20]), "support_X"),
        (lambda enc, emb, y, bad: enc.scaling_curve(bad, y, ks=(10,)), "X"),
    ],
    ids=["predict-X", "predict-support", "encode", "attention", "scaling-curve"],
)
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_incontext_refuses_nan_and_inf(data, incontext, call, name, value):
    _, y, emb = data
    bad = _with(emb, (2, 3), value)
    _one_line(
        InputError, rf"^{name} contains 1 NaN or infinite", lambda: call(incontext, emb, y, bad)
    )


# ------------------------------------- a held-out subject in another feature space
@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda enc, emb, y: enc.predict(emb[:, :5], support_X=emb[:20], support_Y=y[:20]), "X"),
        (
            lambda enc, emb, y: enc.predict(emb, support_X=emb[:20, :5], support_Y=y[:20]),
            "support_X",
        ),
        (
            lambda enc, emb, y: enc.predict(emb[:, :5], support_X=emb[:20, :5], support_Y=y[:20]),
            "X",
        ),
        (lambda enc, emb, y: enc.support_attention(emb[:20, :5], y[:20]), "support_X"),
        (lambda enc, emb, y: enc.text_selectivity(emb[:2], emb[:20, :5], y[:20]), "support_X"),
        (
            lambda enc, emb, y: enc.correlation_score(
                emb[:, :5], y, support_X=emb[:20], support_Y=y[:20]
            ),
            "X",
        ),
    ],
    ids=["query", "support", "both", "attention", "text", "score"],
)
def test_incontext_refuses_another_embedding(data, incontext, call, name):
    _, y, emb = data
    _one_line(
        InputError,
        rf"^{name} has embeddings of length 5 but the encoder was meta-trained on length 7; "
        "embed this subject's images with the same model",
        lambda: call(incontext, emb, y),
    )


def test_incontext_refuses_feature_maps(data, incontext):
    """It reads one embedding vector per image, not a spatial map."""
    maps, y, emb = data
    _one_line(
        InputError,
        r"X must be 2D \(n_images, E\); got shape \(40, 3, 20\)",
        lambda: InContextEncoder(**IC_SMALL).fit(maps.reshape(N, 3, 20), y),
    )
    _one_line(
        InputError,
        r"X must be 2D \(n_images, E\); got shape \(40, 3, 4, 5\)",
        lambda: incontext.predict(maps, support_X=emb[:20], support_Y=y[:20]),
    )


# ----------------------------------------------------- K against the images available
def test_scaling_curve_k_against_the_images(data, incontext):
    _, y, emb = data
    # 40 images, 8 for testing: K = 32 uses every other image; K = 33 does not fit
    table = incontext.scaling_curve(emb, y, ks=(32,), ridge_alphas=[1.0])
    assert sorted(table["k"].unique()) == [32] and table.attrs["skipped_k"] == []
    _one_line(
        InputError,
        r"Every K in ks=\[33\] is larger than the 32 images available",
        lambda: incontext.scaling_curve(emb, y, ks=(33,)),
    )
    # test indices that leave no image for support
    _one_line(
        InputError,
        r"larger than the 0 images available",
        lambda: incontext.scaling_curve(emb, y, ks=(2,), test=np.arange(N)),
    )
    _one_line(
        InputError,
        "ks must be an integer >= 2; got 1",
        lambda: incontext.scaling_curve(emb, y, ks=(1,)),
    )


def test_scaling_curve_refuses_no_k(data, incontext):
    _, y, emb = data
    _one_line(InputError, r"ks is empty", lambda: incontext.scaling_curve(emb, y, ks=()))


def test_scaling_curve_refuses_a_bare_k(data, incontext):
    _, y, emb = data
    _one_line(
        InputTypeError, r"ks must be a sequence", lambda: incontext.scaling_curve(emb, y, ks=10)
    )
