"""The BraInCoRL in-context encoder: invariances, ground truth against ridge, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from neuro.encoders.incontext import (
    PAPER_SIZE,
    InContextEncoder,
    InContextNet,
    unit_embeddings,
)
from neuro.encoders.metrics import voxel_correlation
from neuro.errors import InputError, InputTypeError, OutputExistsError

E = 16


def _simulate(n_subjects=4, n_images=160, n_voxels=120, n_families=3, snr=1.0, seed=0):
    """Subjects whose voxels share tuning families; embeddings are random directions.

    Voxel weights = a family prototype (shared by all subjects) times a gain,
    plus a small individual part; noise variance = signal variance / snr.
    """
    rng = np.random.default_rng(seed)
    prototypes = rng.standard_normal((n_families, E))
    subjects = []
    for _ in range(n_subjects):
        x = rng.standard_normal((n_images, E))
        family = rng.integers(n_families, size=n_voxels)
        w = prototypes[family] * rng.uniform(0.5, 2.0, (n_voxels, 1))
        w = w + 0.3 * rng.standard_normal((n_voxels, E))
        clean = unit_embeddings(x) @ w.T + rng.standard_normal(n_voxels)
        y = clean + rng.standard_normal(clean.shape) * clean.std(0) / np.sqrt(snr)
        subjects.append((x.astype(np.float32), y.astype(np.float32)))
    return subjects


@pytest.fixture(scope="module")
def trained():
    """Meta-trained on subjects 0-2; subject 3 is held out (about 10-25 s on one core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        subjects = _simulate()
        enc = InContextEncoder(
            d_model=32,
            n_layers=2,
            n_heads=4,
            k_min=4,
            k_max=40,
            n_query=40,
            epochs=25,
            patience=25,
            lr=3e-3,
            batch_size=48,
            device="cpu",
        ).fit(subjects[:3])
    finally:
        torch.set_num_threads(threads)
    return enc, subjects[3]


# --------------------------------------------------------------- ground truth
def test_beats_ridge_at_small_k_on_a_held_out_subject(trained):
    enc, (x, y) = trained
    with pytest.warns(UserWarning, match=r"skips K=\[1000\]"):
        table = enc.scaling_curve(x, y, ks=(10, 25, 1000), n_repeats=2)
    assert table.attrs["skipped_k"] == [1000]
    means = table.groupby(["model", "k"]).mean_r.mean()
    for k in (10, 25):
        assert means["incontext", k] > means["ridge", k] + 0.1, means
    assert means["incontext", 25] > 0.5  # the ceiling is sqrt(snr / (1 + snr)) = 0.71
    assert set(table.columns) >= {"model", "k", "repeat", "mean_r", "median_r"}


def test_shuffled_support_responses_give_no_prediction(trained):
    enc, (x, y) = trained
    rng = np.random.default_rng(1)
    sup, test = np.arange(25), np.arange(60, 160)
    real = voxel_correlation(y[test], enc.predict(x[test], support_X=x[sup], support_Y=y[sup]))
    shuffled = y[sup][rng.permutation(25)]
    null = voxel_correlation(y[test], enc.predict(x[test], support_X=x[sup], support_Y=shuffled))
    assert real.mean() > 0.5 and (real > 0.4).mean() > 0.9
    # Shuffled responses carry no information on the voxel, but the meta-learned prior
    # still writes an encoder from one of the shared tuning families, which is right for
    # about 1 voxel in 3 (3 families): the null sits near real / 3, far below real.
    assert null.mean() < 0.5 * real.mean()
    assert (null > 0.4).mean() < 0.5


def test_noise_normalised_column(trained):
    enc, (x, y) = trained
    table = enc.scaling_curve(x, y, ks=(25,), ceiling_r2=np.full(y.shape[1], 0.5))
    assert np.isfinite(table["mean_nnr"]).all()


# ----------------------------------------------------------------- invariances
def test_encoders_do_not_depend_on_support_order(trained):
    enc, (x, y) = trained
    order = np.random.default_rng(2).permutation(30)
    w1, b1 = enc.encode(x[:30], y[:30])
    w2, b2 = enc.encode(x[:30][order], y[:30][order])
    np.testing.assert_allclose(w1, w2, atol=1e-5)
    np.testing.assert_allclose(b1, b2, atol=1e-5)
    a1 = enc.support_attention(x[:30], y[:30])
    a2 = enc.support_attention(x[:30][order], y[:30][order])
    np.testing.assert_allclose(a1[:, order], a2, atol=1e-5)


def test_prediction_is_w_dot_x_plus_b(trained):
    enc, (x, y) = trained
    w, b = enc.encode(x[:20], y[:20])
    assert w.shape == (y.shape[1], E) and b.shape == (y.shape[1],)
    pred = enc.predict(x[20:], support_X=x[:20], support_Y=y[:20])
    np.testing.assert_allclose(pred, unit_embeddings(x[20:]) @ w.T + b, rtol=1e-5, atol=1e-5)
    one = enc.predict(torch.from_numpy(x[20:]), support_X=x[:20], support_Y=y[:20, 3])
    assert isinstance(one, torch.Tensor) and one.shape == (140,)
    np.testing.assert_allclose(one.numpy(), pred[:, 3], atol=1e-5)


def test_encoders_follow_the_response_units(trained):
    enc, (x, y) = trained
    w, b = enc.encode(x[:20], y[:20])
    w2, b2 = enc.encode(x[:20], 3 * y[:20] + 2)
    np.testing.assert_allclose(w2, 3 * w, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(b2, 3 * b + 2, rtol=1e-4, atol=1e-4)


def test_voxel_batches_give_the_same_encoders(trained):
    enc, (x, y) = trained
    w, b = enc.encode(x[:20], y[:20])
    small = InContextEncoder(**{**enc.get_params(), "voxel_batch_size": 7})
    small._restore_fitted_state(enc._fitted_state())
    w2, b2 = small.encode(x[:20], y[:20])
    np.testing.assert_allclose(w, w2, atol=1e-5)
    np.testing.assert_allclose(b, b2, atol=1e-5)


def test_support_attention(trained):
    enc, (x, y) = trained
    att = enc.support_attention(x[:30], y[:30])
    assert att.shape == (y.shape[1], 30)
    assert (att >= 0).all() and (att.sum(1) <= 1 + 1e-5).all() and (att.sum(1) > 0).all()


def test_save_load_predicts_identically(trained, tmp_path):
    enc, (x, y) = trained
    path = enc.save(tmp_path / "incontext.pt")
    loaded = InContextEncoder.load(path)
    kw = {"support_X": x[:20], "support_Y": y[:20]}
    assert np.array_equal(loaded.predict(x, **kw), enc.predict(x, **kw))
    assert loaded.history_ == enc.history_ and loaded.n_parameters_ == enc.n_parameters_
    with pytest.raises(OutputExistsError):
        enc.save(path)


# -------------------------------------------------------------------- text
def test_text_selectivity(trained):
    enc, (x, y) = trained
    texts = np.random.default_rng(3).standard_normal((5, E))
    sel = enc.text_selectivity(texts, x[:20], y[:20])
    w, _ = enc.encode(x[:20], y[:20])
    np.testing.assert_allclose(sel, unit_embeddings(texts) @ w.T, atol=1e-5)
    assert enc.text_selectivity(texts[0], x[:20], y[:20]).shape == (1, y.shape[1])
    with pytest.raises(InputError, match="needs text_embeddings"):
        enc.text_selectivity(None, x[:20], y[:20])
    with pytest.raises(InputError, match="text_embeddings have length 12 .* have 16"):
        enc.text_selectivity(texts[:, :12], x[:20], y[:20])


# ------------------------------------------------------------------- errors
def test_bad_input_is_refused_in_one_line(trained):
    enc, (x, y) = trained
    with pytest.raises(InputError, match="support_X has embeddings of length 10 .* length 16"):
        enc.encode(x[:20, :10], y[:20])
    with pytest.raises(InputError, match="X has embeddings of length 20 .* same model"):
        enc.scaling_curve(np.hstack([x, x[:, :4]]), y, ks=(10,))
    with pytest.raises(InputError, match="larger than the 128 images available"):
        enc.scaling_curve(x, y, ks=(200, 500))
    bad = y[:20].copy()
    bad[3, 5] = np.nan
    with pytest.raises(InputError, match="support_Y"):
        enc.encode(x[:20], bad)
    with pytest.raises(InputError, match="same number of samples"):
        enc.encode(x[:20], y[:19])
    with pytest.raises(InputError, match="at least 2 support images"):
        enc.encode(x[:1], y[:1])
    with pytest.raises(InputError, match="ceiling_r2 has 3 values"):
        enc.scaling_curve(x, y, ks=(10,), ceiling_r2=[0.5, 0.5, 0.5])
    with pytest.raises(InputError) as info:
        enc.encode(x[:20, :10], y[:20])
    assert "\n" not in str(info.value)


def test_fit_refuses_bad_training_data():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 6)), rng.standard_normal((40, 5))
    small = {"d_model": 8, "n_layers": 1, "n_heads": 2, "epochs": 1, "device": "cpu"}
    with pytest.raises(InputError, match="Subject 1 has embeddings of length 4 .* subject 0 has 6"):
        InContextEncoder(**small).fit([(x, y), (x[:, :4], y)])
    with pytest.raises(InputError, match="same number of samples"):
        InContextEncoder(**small).fit(x, y[:30])
    with pytest.raises(InputError, match="only 5 images"):
        InContextEncoder(**small).fit(x[:5], y[:5])
    nan = x.copy()
    nan[0, 0] = np.nan
    with pytest.raises(InputError, match="X"):
        InContextEncoder(**small).fit(nan, y)
    with pytest.raises(InputError, match="n_heads must divide d_model"):
        InContextEncoder(**{**small, "n_heads": 3}).fit(x, y)
    with pytest.raises(InputTypeError, match=r"list of \(X, Y\) pairs"):
        InContextEncoder(**small).fit(x)
    with pytest.raises(NotFittedError):
        InContextEncoder().encode(x, y)


def test_fit_accepts_lists_and_scales_k_to_the_images():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((n, 6)) for n in (40, 60)]
    ys = [rng.standard_normal((n, 5)) for n in (40, 60)]
    kw = {"d_model": 8, "n_layers": 1, "n_heads": 2, "epochs": 2, "device": "cpu"}
    enc = InContextEncoder(**kw).fit(xs, ys)
    # n_query <= 40 // 4, k_max <= 40 - n_query
    assert (enc.settings_.n_query, enc.settings_.k_max, enc.settings_.k_min) == (10, 30, 10)
    assert len(enc.history_) == 2 and enc.n_features_in_ == 6
    again = InContextEncoder(**kw).fit(list(zip(xs, ys, strict=True)))
    w1, _ = enc.encode(xs[0][:10], ys[0][:10])
    w2, _ = again.encode(xs[0][:10], ys[0][:10])
    np.testing.assert_array_equal(w1, w2)  # same seed, same data: the same run


# ----------------------------------------------------------------- network
def test_paper_size_has_about_100m_parameters():
    with torch.device("meta"):
        net = InContextNet(embed_dim=512, **PAPER_SIZE)
    n = sum(p.numel() for p in net.parameters())
    assert 90e6 < n < 115e6, n


def test_readout_attention_matches_sdpa_weights():
    torch.manual_seed(0)
    net = InContextNet(embed_dim=8, d_model=16, n_layers=1, n_heads=2).eval()
    sx, sy = torch.randn(3, 6, 8), torch.randn(3, 6)
    att = net.support_attention(sx, sy)
    # the attention output of token 0 equals the weights applied to the values
    block, h = net.blocks[0], net._tokens(sx, sy)
    q, k, v = block._heads(block.norm1(h))
    weights = ((q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5).softmax(-1)
    sdpa = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(weights @ v, sdpa, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(att, weights[:, :, 0, 4:].mean(1), atol=1e-6, rtol=1e-6)


def test_subject_from_dataset_averages_zscored_repeats_and_indexes_embeddings():
    from data_loaders.fmri import FMRIDataset
    from neuro.encoders.incontext import subject_from_dataset

    rng = np.random.default_rng(3)
    ids = np.concatenate([rng.permutation([5, 2, 9, 7]), rng.permutation([5, 2, 9, 7])])
    betas = rng.standard_normal((8, 6)) + 10.0
    sessions = np.repeat([0, 1], 4)
    ds = FMRIDataset(betas, ids, session_ids=sessions)
    emb = rng.standard_normal((11, 3))
    X, Y = subject_from_dataset(ds, emb)
    np.testing.assert_array_equal(X, emb[[2, 5, 7, 9]].astype(np.float32))
    z = ds.zscore().betas
    expected = np.stack([z[ids == i].mean(0) for i in (2, 5, 7, 9)])
    np.testing.assert_allclose(Y, expected, rtol=1e-5, atol=1e-6)
    _, raw = subject_from_dataset(ds, emb, zscore=False, voxels=[0, 4])
    np.testing.assert_allclose(
        raw, np.stack([betas[ids == i][:, [0, 4]].mean(0) for i in (2, 5, 7, 9)]), rtol=1e-5
    )
    with pytest.raises(InputError, match="shows stimulus id 9"):
        subject_from_dataset(ds, emb[:9])
