"""The torch NTF solver: tensorly's iterates, float32, missing entries, memory, rank selection."""

import numpy as np
import pytest
import torch

from neuro.connectome import hals
from neuro.connectome.hals import TensorWorkspace, cp_nonneg
from neuro.connectome.ntf import NTFResult, factor_match_score, fit_ntf, select_rank
from neuro.errors import InputError


def _planted(seed=0, shape=(14, 5, 30), rank=3, noise=0.0):
    rng = np.random.default_rng(seed)
    f = [rng.random((n, rank)) ** 3 for n in shape]
    x = np.einsum("tr,ar,pr->tap", *f)
    return x + noise * rng.random(x.shape), f


@pytest.mark.parametrize("seed", [0, 3])
def test_float64_follows_tensorly_iterate_for_iterate(seed):
    # same start (tensorly's random draws), same sweeps: the same fit, also when a
    # component vanishes in one mode for a while (seed 3 of this tensor)
    rng = np.random.default_rng(0)
    f = [rng.random((9, 2)), rng.random((4, 2)), rng.random((15, 2))]
    x = np.einsum("tr,ar,pr->tap", *f)
    for n_iter in (1, 2, 20):
        ours = fit_ntf(x, 2, n_iter_max=n_iter, tol=0, random_state=seed, dtype="float64")
        ref = fit_ntf(x, 2, n_iter_max=n_iter, tol=0, random_state=seed, backend="numpy")
        assert ours.error == pytest.approx(ref.error, rel=1e-9, abs=1e-12)
        for a, b in zip(ours.factors, ref.factors, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-8)


def test_float32_gives_the_float64_fit():
    x, f = _planted(noise=0.02)
    x32 = fit_ntf(x.astype(np.float32), 3, n_iter_max=300, tol=0)
    x64 = fit_ntf(x, 3, n_iter_max=300, tol=0, dtype="float64")
    assert x32.backend == "torch" and abs(x32.error - x64.error) < 1e-5
    assert factor_match_score(x32, x64) > 0.9999
    assert factor_match_score(x32, NTFResult(np.ones(3), f, 0.0)) > 0.95


def test_the_callers_array_is_not_modified_and_one_copy_is_held():
    x, _ = _planted()
    x = x.astype(np.float32)
    x[:, 1, :4] = np.nan
    before = x.copy()
    ws = TensorWorkspace(x)
    cp_nonneg(ws, 3, n_iter_max=30)
    np.testing.assert_array_equal(x, before)  # NaN where they were, no imputed values
    # the working copy (float32, like the input) plus 8 bytes per missing entry
    assert ws.nbytes == x.nbytes + 8 * ws.n_missing and ws.n_missing == 14 * 4
    assert ws.x.dtype == torch.float32 and ws.x.shape == (14 * 5, 30)


def test_missing_entries_are_imputed_and_left_out_of_the_error():
    x, _ = _planted(seed=1)
    held = x.copy()
    held[:, 2, :6] = np.nan
    em = fit_ntf(held, 3, n_iter_max=600)
    assert em.n_missing == 14 * 6
    gap = em.reconstruct()[:, 2, :6]
    assert np.linalg.norm(gap - x[:, 2, :6]) / np.linalg.norm(x[:, 2, :6]) < 0.1
    # "zero" fills zeros and fits them, but the error still covers observed entries only
    zero = fit_ntf(held, 3, n_iter_max=600, missing="zero")
    observed = ~np.isnan(held)
    direct = np.linalg.norm((zero.reconstruct() - x)[observed]) / np.linalg.norm(x[observed])
    assert zero.error == pytest.approx(direct, rel=1e-4)
    assert zero.error > em.error


def test_hals_beats_mu_and_both_stop_at_tol():
    x, _ = _planted(noise=0.01)
    ws = TensorWorkspace(x, dtype=torch.float64)
    _, err_hals, _ = cp_nonneg(ws, 3, n_iter_max=60, tol=0)
    _, err_mu, _ = cp_nonneg(ws, 3, method="mu", n_iter_max=60, tol=0)
    assert err_hals < err_mu
    _, _, n_iter = cp_nonneg(ws, 3, n_iter_max=5000, tol=1e-6)
    assert 10 <= n_iter < 5000 and n_iter % 10 == 0  # checked every em_block iterations


def test_svd_start_and_bad_input():
    x, _ = _planted(seed=2)
    state = torch.get_rng_state()
    assert fit_ntf(x, 3, init="svd", n_iter_max=200).error < 0.05
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is untouched
    two, _ = _planted(seed=2, shape=(14, 2, 30))  # fewer animals than components
    assert fit_ntf(two, 3, init="svd", n_iter_max=200).factors[1].shape == (2, 3)
    with pytest.raises(InputError, match="non-negative"):
        TensorWorkspace(-x)
    with pytest.raises(InputError, match="infinite"):
        TensorWorkspace(np.full((2, 2, 2), np.inf))
    with pytest.raises(InputError, match="no positive observed entry"):
        TensorWorkspace(np.full((2, 2, 2), np.nan))
    with pytest.raises(InputError, match="dtype must be one of"):
        fit_ntf(x, 2, dtype="float16")
    with pytest.raises(InputError, match="random_state must be an integer >= 0; got -1"):
        fit_ntf(x, 2, random_state=-1)  # numpy's RandomState would refuse it mid-fit


def test_rank_selection_shares_one_copy_and_stops_at_the_first_failing_rank(monkeypatch):
    x, _ = _planted(seed=1, shape=(12, 3, 20), rank=2)
    made = []
    real = hals.TensorWorkspace

    def counting(*args, **kwargs):
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hals, "TensorWorkspace", counting)
    sel = select_rank(x, ranks=(1, 2, 3, 4, 5), n_restarts=3, n_iter_max=300)
    assert len(made) == 1  # 3 restarts x the ranks fitted, one copy of the tensor
    assert sel.rank == 2
    # rank 3 gains nothing over the planted rank 2: ranks 4 and 5 are not fitted
    assert [row["rank"] for row in sel.table] == [1, 2, 3]
    full = select_rank(x, ranks=(1, 2, 3, 4, 5), n_restarts=3, n_iter_max=300, early_stop=False)
    assert [row["rank"] for row in full.table] == [1, 2, 3, 4, 5] and full.rank == 2
    assert full.table[:3] == sel.table
    with pytest.raises(InputError, match="unknown argument"):
        select_rank(x, ranks=(1, 2), n_restarts=2, colour="red")


@pytest.mark.gpu
def test_cuda_gives_the_cpu_fit():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x, _ = _planted(noise=0.01)
    cpu = fit_ntf(x, 3, n_iter_max=200, dtype="float64")
    gpu = fit_ntf(x, 3, n_iter_max=200, dtype="float64", device="cuda")
    assert gpu.error == pytest.approx(cpu.error, rel=1e-6)
    assert factor_match_score(cpu, gpu) > 0.9999


def _weak_components(null: bool, seed: int = 0):
    """A strong background component plus two weak, sparse ones (absent from the null) + noise."""
    rng = np.random.default_rng(seed)
    t, a, p = 40, 4, 300
    x = np.einsum("t,a,p->tap", 1 + 0.1 * rng.random(t), 1 + 0.1 * rng.random(a), rng.random(p))
    if not null:
        for c in range(2):
            time = np.zeros(t)
            time[10 * c + 5 : 10 * c + 15] = 1.0
            pairs = np.zeros(p)
            pairs[rng.choice(p, 8, replace=False)] = 1.0
            x += 0.3 * np.einsum("t,a,p->tap", time, np.ones(a), pairs)
    return x + 0.15 * rng.random(x.shape)


def test_min_gain_null_finds_weak_components_a_fixed_gain_misses():
    x, null = _weak_components(False), _weak_components(True, seed=1)
    fixed = select_rank(x, ranks=(1, 2, 3, 4), n_restarts=2, n_iter_max=400)
    assert fixed.rank == 1  # each weak component lowers the error by less than 0.01
    assert fixed.table[0]["error"] - fixed.table[1]["error"] < 0.01
    sel = select_rank(
        x, ranks=(1, 2, 3, 4), n_restarts=2, n_iter_max=400, min_gain="null", null_tensor=null
    )
    assert sel.rank == 3 and all("null_error" in row for row in sel.table)
    # data without the weak components: the null's gains are as large, rank 1
    plain = _weak_components(True, seed=2)
    assert select_rank(plain, (1, 2, 3), 2, min_gain="null", null_tensor=null).rank == 1
    with pytest.raises(InputError, match="min_gain='null' needs null_tensor"):
        select_rank(x, ranks=(1, 2), n_restarts=2, min_gain="null")
    with pytest.raises(InputError, match="null_tensor must have the tensor's shape"):
        select_rank(x, ranks=(1, 2), n_restarts=2, min_gain="null", null_tensor=null[:5])
    with pytest.raises(InputError, match="min_gain must be one of"):
        select_rank(x, ranks=(1, 2), n_restarts=2, min_gain="nul")
