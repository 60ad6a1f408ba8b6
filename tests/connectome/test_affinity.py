"""Affinities: bounds, definition, batching, missing neurons and bad input."""

import numpy as np
import pytest
import torch

from neuro.connectome.affinity import affinity_tensor, derivative_affinity, pair_index


def test_bounds_symmetry_and_offset_invariance(rng):
    x = rng.standard_normal((7, 90)).cumsum(1)
    a = derivative_affinity(x, device="cpu")
    assert a.shape == (21, 89) and (a >= 0).all() and (a <= 1).all()
    b = derivative_affinity(x * 3.0 + 5.0, pairs=pair_index(7)[:, ::-1], device="cpu")
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_definition_on_a_hand_example():
    # neuron 0 rises by 2 over steps 0-1 then falls; neuron 1 rises by 1 over step 1 only
    x = np.array([[0.0, 1.0, 2.0, 1.5, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]])
    a = derivative_affinity(x, smooth=0.0, scale=2.0, device="cpu")[0]
    # d0 = [1, 1, -.5, -.5, -1]: median -.5, |d0 + .5| = [1.5, 1.5, 0, 0, .5] -> MAD .5
    sd0 = 1.4826 * 0.5
    # d1 = [0, 1, 0, 0, 0]: MAD 0, so its standard deviation is used
    sd1 = np.diff(x[1]).std(ddof=1)
    # step 1: runs [0, 1] and [1, 1] -> joint interval [1, 1]: both change by 1
    assert a[1] == pytest.approx(1 - np.exp(-(min(1 / sd0, 1 / sd1) ** 2) / 2.0), rel=1e-5)
    assert a[3] == 0.0  # neuron 1 is flat there


@pytest.mark.parametrize("method", ["derivative", "correlation"])
def test_batching_does_not_change_the_tensor(rng, method):
    x = rng.standard_normal((2, 9, 61))
    full = affinity_tensor(x, method=method, bin_size=8, device="cpu")
    small = affinity_tensor(x, method=method, bin_size=8, pair_batch_size=5, device="cpu")
    assert full.shape == (8, 2, 36)
    np.testing.assert_allclose(full, small, atol=1e-6)


def test_torch_input_and_missing_neurons(rng):
    x = rng.standard_normal((3, 8, 50))
    x[2, 5] = np.nan
    a = affinity_tensor(torch.as_tensor(x), bin_size=7, device="cpu")
    pairs = pair_index(8)
    with_5 = (pairs == 5).any(1)
    assert np.isnan(a[:, 2, with_5]).all() and np.isfinite(a[:, 2, ~with_5]).all()
    assert np.isfinite(a[:, :2]).all()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda r: r.standard_normal((8, 40)), "3 dimensions|shape \\(animals"),
        (
            lambda r: np.concatenate([r.standard_normal((1, 7, 40)), np.full((1, 7, 40), np.nan)]),
            "all neurons NaN",
        ),
        (
            lambda r: np.concatenate([r.standard_normal((2, 6, 40)), np.ones((2, 1, 40))], 1),
            "constant",
        ),
    ],
    ids=["wrong-ndim", "all-nan-animal", "constant-trace"],
)
def test_bad_traces(rng, make, message):
    with pytest.raises(ValueError, match=message):
        affinity_tensor(make(rng), device="cpu")


def test_bad_options(rng):
    x = rng.standard_normal((1, 4, 30))
    with pytest.raises(ValueError, match="method"):
        affinity_tensor(x, method="granger")
    with pytest.raises(ValueError, match="bin_size"):
        affinity_tensor(x, bin_size=0)


@pytest.mark.parametrize("method", ["derivative", "correlation"])
def test_auto_batches_are_bit_identical_to_one_batch(rng, monkeypatch, method):
    import neuro.connectome.affinity as affinity

    x = rng.standard_normal((2, 9, 61)).cumsum(-1)
    x[1, 3] = np.nan
    one = affinity_tensor(x, method=method, bin_size=8, pair_batch_size=36, device="cpu")
    monkeypatch.setattr(affinity, "PAIR_BATCH_ELEMENTS", 7 * 61 + 3)  # 7 pairs per batch
    assert affinity.auto_pair_batch_size(61) == 7
    auto = affinity_tensor(x, method=method, bin_size=8, device="cpu")
    odd = affinity_tensor(x, method=method, bin_size=8, pair_batch_size=5, device="cpu")
    np.testing.assert_array_equal(auto, one)
    np.testing.assert_array_equal(odd, one)


def test_auto_batch_bounds_the_work_for_a_long_recording(rng):
    from neuro.connectome.affinity import PAIR_BATCH_ELEMENTS, auto_pair_batch_size

    assert PAIR_BATCH_ELEMENTS == 2**23
    assert auto_pair_batch_size(54_000) == 155  # 30 min at 30 Hz: 155 * 53,999 steps <= 2**23
    assert auto_pair_batch_size(10**8) == 1
    with pytest.raises(ValueError, match="pair_batch_size must be an integer >= 1 or 'auto'"):
        affinity_tensor(rng.standard_normal((1, 4, 30)), pair_batch_size="big")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lean_batch_equals_the_plain_gather_formula(rng, dtype):
    from neuro.connectome.affinity import _derivative_batch, _prepare

    x = torch.as_tensor(rng.standard_normal((8, 97)).cumsum(-1), dtype=dtype)
    xs, sigma, start, end = _prepare(x, 1.0)
    assert start.dtype == torch.int32 and end.dtype == torch.int32
    p = torch.as_tensor(pair_index(8))
    i, j = p[:, 0], p[:, 1]
    # the definition, written plainly with int64 gathers of copied rows
    a = torch.maximum(start[i], start[j]).long()
    b = torch.minimum(end[i], end[j]).long() + 1
    di = (xs[i].gather(1, b) - xs[i].gather(1, a)).abs() / sigma[i, None]
    dj = (xs[j].gather(1, b) - xs[j].gather(1, a)).abs() / sigma[j, None]
    plain = 1.0 - torch.exp(-torch.minimum(di, dj).square() / 50.0)
    lean = _derivative_batch(xs, sigma, start, end, i, j, 50.0)
    assert torch.equal(lean, plain)
