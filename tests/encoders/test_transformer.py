"""The attention-routing transformer encoder: architecture, estimator contract, ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from torch.utils._python_dispatch import TorchDispatchMode

from data_loaders.simulate.fmri import simulate_fmri
from neuro.encoders.metrics import voxel_correlation
from neuro.encoders.transformer import (
    PAPER_SIZE,
    REST,
    TransformerBrainModule,
    TransformerEncoder,
    sine_positions,
)
from neuro.errors import InputError, InputTypeError, OutputExistsError

SMALL = {"d_model": 16, "n_heads": 2, "ffn_dim": 32, "device": "cpu"}
LABELS = np.array(["B", "A", "", "B", "A", "C"], dtype=object)  # "" = unlabelled -> rest


@pytest.fixture(scope="module")
def toy():
    """Random maps (n, 3, 4, 5) and six voxels that read them in different ways."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((90, 3, 4, 5)).astype(np.float32)
    y = np.stack(
        [
            x[:, 0].max((1, 2)),
            x[:, 1].mean((1, 2)),
            x[:, 2, 0, 0],
            x[:, 0].mean((1, 2)),
            x[:, 1].max((1, 2)),
            x[:, 2].min((1, 2)),
        ],
        axis=1,
    )
    y = y + 0.1 * rng.standard_normal(y.shape)
    return x, y.astype(np.float32)


@pytest.fixture(scope="module")
def fitted(toy):
    x, y = toy
    return TransformerEncoder(roi_labels=LABELS, epochs=30, lr=1e-2, **SMALL).fit(x, y)


# ------------------------------------------------------------- the module
def test_sine_positions_distinct_and_bounded():
    p = sine_positions(4, 5, 16)
    assert p.shape == (20, 16)
    assert torch.all(p.abs() <= 1)
    assert len(torch.unique(p.round(decimals=5), dim=0)) == 20  # every position differs
    with pytest.raises(InputError, match="multiple of 4"):
        sine_positions(2, 2, 6)


def _module(per_voxel=False, n_layers=1):
    torch.manual_seed(0)
    vq = np.arange(6) if per_voxel else np.array([1, 0, 3, 1, 0, 2])
    return TransformerBrainModule(
        (3, 4, 5),
        vq,
        n_queries=6 if per_voxel else 4,
        d_model=16,
        n_heads=2,
        ffn_dim=32,
        n_layers=n_layers,
        per_voxel=per_voxel,
    )


def test_queries_do_not_attend_to_each_other():
    m = _module(n_layers=2).eval()
    x = torch.randn(7, 3, 4, 5)
    with torch.no_grad():
        before, _ = m.query_outputs(x)
        m.query_embed[2] += torch.randn(16)  # change one query only
        after, _ = m.query_outputs(x)
    others = [0, 1, 3]
    assert torch.equal(before[:, others], after[:, others])
    assert not torch.allclose(before[:, 2], after[:, 2])


def test_explicit_weights_match_scaled_dot_product_attention():
    m = _module(n_layers=2).eval()
    x = torch.randn(5, 3, 4, 5)
    with torch.no_grad():
        fast, none = m.query_outputs(x)
        slow, weights = m.query_outputs(x, return_weights=True)
    assert none is None
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    assert weights.shape == (5, 2, 4, 20)
    torch.testing.assert_close(weights.sum(-1), torch.ones(5, 2, 4))


def test_voxel_mode_with_tied_queries_equals_roi_mode():
    roi, vox = _module().eval(), _module(per_voxel=True).eval()
    vox.load_state_dict(
        {
            **roi.state_dict(),
            "query_embed": roi.query_embed.detach()[
                roi.voxel_query
            ],  # voxel v gets its ROI's query
        }
    )
    x = torch.randn(8, 3, 4, 5)
    with torch.no_grad():
        torch.testing.assert_close(vox(x), roi(x), rtol=1e-5, atol=1e-5)
        # and the ROI readout is each voxel's own query output dotted with its weights
        out, _ = roi.query_outputs(x)
        by_hand = (out[:, roi.voxel_query] * roi.readout_weight).sum(-1) + roi.readout_bias
        torch.testing.assert_close(roi(x), by_hand, rtol=1e-5, atol=1e-5)


class _Shapes(TorchDispatchMode):
    """Records the shape of every tensor an operation returns."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.shapes.append(tuple(t.shape))
        return out


@pytest.mark.parametrize("per_voxel", [False, True])
def test_no_queries_by_voxels_intermediate(per_voxel):
    n_voxels, batch = 211, 3  # a prime no other size shares
    vq = np.arange(n_voxels) if per_voxel else np.arange(n_voxels) % 7
    n_queries = n_voxels if per_voxel else 7
    m = TransformerBrainModule(
        (3, 4, 4), vq, n_queries, d_model=8, n_heads=2, ffn_dim=16, per_voxel=per_voxel
    )
    x = torch.randn(batch, 3, 4, 4)
    with torch.no_grad(), _Shapes() as rec:
        pred = m(x)
    assert pred.shape == (batch, n_voxels)
    biggest = max(int(np.prod(s)) for s in rec.shapes)
    # the largest tensor is the (batch, queries, d) outputs or the attention, never Q x V
    assert biggest < batch * n_queries * n_voxels
    assert biggest <= max(batch * n_queries * 16, batch * 2 * n_queries * 16, n_voxels * 8)
    for s in rec.shapes:
        assert s.count(n_voxels) <= 1, f"a queries x voxels tensor {s} was formed"


# ------------------------------------------------------------- estimator
def test_shapes_names_and_routing_maps(toy, fitted):
    x, y = toy
    assert fitted.query_names_ == ["A", "B", "C", REST]
    assert fitted.voxel_query_.tolist() == [1, 0, 3, 1, 0, 2]
    assert fitted.predict(x[:7]).shape == (7, 6)
    assert fitted.predict(x[:7]).dtype == np.float32
    maps = fitted.routing_maps(x[:7], batch_size=3)
    assert maps.shape == (7, 4, 4, 5)
    np.testing.assert_allclose(maps.sum((2, 3)), 1.0, rtol=1e-5)
    t = fitted.predict(torch.from_numpy(x[:4]))
    assert isinstance(t, torch.Tensor) and t.shape == (4, 6)
    assert fitted.n_features_in_ == 60
    assert np.isfinite(fitted.score(x, y)) and fitted.correlation_score(x, y) > 0.3


def test_single_output_and_flattened_maps(toy):
    x, y = toy
    enc = TransformerEncoder(query_mode="voxel", map_shape=(3, -1, 5), epochs=3, **SMALL)
    enc.fit(x.reshape(len(x), -1), y[:, 0])
    assert enc.settings_.in_shape == (3, 4, 5)
    flat = enc.predict(x.reshape(len(x), -1))
    assert flat.shape == (90,)
    np.testing.assert_array_equal(flat, enc.predict(x))  # 4-D maps read the same
    with pytest.raises(InputError, match="features"):
        enc.predict(x.reshape(len(x), -1)[:, :30])
    with pytest.raises(InputError, match="map_shape"):
        TransformerEncoder(query_mode="voxel", map_shape=(7, -1, 1), **SMALL).fit(
            x.reshape(len(x), -1), y
        )


def test_seeded_fits_are_identical(toy):
    x, y = toy
    a = TransformerEncoder(roi_labels=LABELS, epochs=3, random_state=4, **SMALL).fit(x, y)
    b = TransformerEncoder(roi_labels=LABELS, epochs=3, random_state=4, **SMALL).fit(x, y)
    c = TransformerEncoder(roi_labels=LABELS, epochs=3, random_state=5, **SMALL).fit(x, y)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    assert not np.allclose(a.predict(x), c.predict(x))


def test_fit_labels_override_the_parameter(toy):
    x, y = toy
    enc = TransformerEncoder(roi_labels=["Z"] * 6, epochs=2, **SMALL)
    enc.fit(x, y, roi_labels=["a", "a", "b", "b", "c", "c"])
    assert enc.query_names_ == ["a", "b", "c"]  # no unlabelled voxel: no rest query


def test_save_load_round_trip(tmp_path, toy, fitted):
    x, _ = toy
    path = fitted.save(tmp_path / "tf.pt")
    loaded = TransformerEncoder.load(path)
    np.testing.assert_array_equal(loaded.predict(x), fitted.predict(x))
    np.testing.assert_array_equal(loaded.routing_maps(x[:5]), fitted.routing_maps(x[:5]))
    assert loaded.query_names_ == fitted.query_names_
    assert loaded.get_params()["d_model"] == 16
    with pytest.raises(OutputExistsError):
        fitted.save(path)


def test_bad_input_is_refused_in_one_line(toy, fitted):
    x, y = toy
    enc = TransformerEncoder(roi_labels=LABELS, epochs=1, **SMALL)
    cases = [
        (lambda: enc.fit(x.reshape(90, -1), y), InputError, "needs feature maps.*VoxelRidgeCV"),
        (lambda: enc.fit(np.where(x > 2.5, np.nan, x), y), InputError, "NaN"),
        (lambda: enc.fit(x, y[:80]), InputError, "same number of samples"),
        (lambda: enc.fit(x, y, roi_labels=LABELS[:5]), InputError, "one label per voxel"),
        (lambda: enc.fit(x, y, roi_labels="FFA"), InputTypeError, "one label per voxel"),
        (lambda: enc.fit(x[:2], y[:2]), InputError, "n_samples=2"),
        (
            lambda: TransformerEncoder(**SMALL).fit(x, y),
            InputError,
            r"needs the ROI of each voxel.*query_mode='voxel'",
        ),
        (
            lambda: TransformerEncoder(query_mode="grid", **SMALL).fit(x, y),
            InputError,
            "query_mode",
        ),
        (
            lambda: TransformerEncoder(d_model=18, n_heads=2, device="cpu").fit(x, y),
            InputError,
            "multiple of 4",
        ),
        (lambda: fitted.predict(x[:, :2]), InputError, r"fitted on \(3, 4, 5\)"),
        (lambda: fitted.routing_maps(x[:, :, :3]), InputError, "fitted on"),
        (lambda: TransformerEncoder(**SMALL).predict(x), NotFittedError, "not fitted"),
    ]
    for call, error, pattern in cases:
        with pytest.raises(error, match=pattern) as info:
            call()
        assert "\n" not in str(info.value)


def test_paper_size_builds():
    assert PAPER_SIZE == {"d_model": 768, "n_heads": 16, "ffn_dim": 1024, "n_layers": 1}
    m = TransformerBrainModule((768, 31, 31), np.arange(100) % 50, 50, **PAPER_SIZE)
    n_params = sum(p.numel() for p in m.parameters())
    assert 4_000_000 < n_params < 6_000_000  # one decoder layer of width 768 and 100 readouts


# ------------------------------------------------------------ ground truth
@pytest.fixture(scope="module")
def simulated():
    """One simulated subject; features = the planted category content and contrast energy.

    Five 8 x 8 channels per image: where faces, scenes, objects and text lie
    (``stimuli.content``) and the contrast-energy map early voxels integrate,
    block-averaged from 32 x 32 — a stand-in for a backbone whose feature map
    encodes what is where. Category voxels respond to their category wherever
    it appears, so a query has to find it in each image.
    """
    sim = simulate_fmri(
        n_subjects=1, n_stimuli=160, image_size=32, voxels_per_roi=3, snr=2.0, seed=0
    )
    sub = sim.subjects[0]
    n = len(sim.stimuli)
    both = np.concatenate([sim.stimuli.content, sim.feature_maps[:, None]], axis=1)
    maps = both.reshape(n, 5, 8, 4, 8, 4).mean(axis=(3, 5)).astype(np.float32)
    y = np.stack([sub.betas[sub.stimulus_ids == i].mean(0) for i in range(n)])
    order = np.random.default_rng(0).permutation(n)
    return {
        "maps": maps,
        "content": sim.stimuli.content,
        "y": y,
        "sub": sub,
        "test": order[:40],
        "train": order[40:],
    }


def test_learns_category_rois_and_not_shuffled_responses(simulated):
    maps, y, sub = simulated["maps"], simulated["y"], simulated["sub"]
    tr, te = simulated["train"], simulated["test"]
    kw = {"epochs": 40, "lr": 3e-3, "d_model": 32, "n_heads": 4, "ffn_dim": 64, "device": "cpu"}
    enc = TransformerEncoder(roi_labels=sub.roi_labels, **kw).fit(maps[tr], y[tr])
    r = voxel_correlation(y[te], enc.predict(maps[te]))
    category = np.isnan(sub.prf_sizes)  # FFA, PPA, LOC, VWFA
    assert r[category].mean() > 0.6
    assert r[~category].mean() > 0.2

    # the FFA query reads from the faces: its attention mass on face pixels beats their area
    face = simulated["content"][:, 0].reshape(-1, 8, 4, 8, 4).mean(axis=(2, 4))  # (n, 8, 8)
    has_face = [i for i in te if face[i].sum() > 0.5]
    routing = enc.routing_maps(maps[has_face])[:, enc.query_names_.index("FFA")]
    on_face = (routing * (face[has_face] > 0.25)).sum((1, 2))
    chance = (face[has_face] > 0.25).mean((1, 2))  # uniform attention's mass on the faces
    assert on_face.mean() > 1.5 * chance.mean()

    shuffled = y[np.random.default_rng(1).permutation(len(y))]
    null = TransformerEncoder(roi_labels=sub.roi_labels, **kw).fit(maps[tr], shuffled[tr])
    r_null = voxel_correlation(shuffled[te], null.predict(maps[te]))
    assert abs(r_null.mean()) < 0.1
