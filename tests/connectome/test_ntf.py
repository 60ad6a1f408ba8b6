"""NTF: planted factors, HALS vs MU, missing entries, rank selection, backends, bad rank."""

import numpy as np
import pytest
import tensorly as tl

from neuro.connectome.ntf import NTFResult, check_rank, factor_match_score, fit_ntf, select_rank


def _planted(rng, shape=(14, 5, 30), rank=3):
    f = [rng.random((n, rank)) ** 3 for n in shape]
    return np.einsum("tr,ar,pr->tap", *f), f


def test_recovers_planted_factors(rng):
    x, f = _planted(rng)
    res = fit_ntf(x, 3, n_iter_max=500)
    truth = NTFResult(np.ones(3), f, 0.0)
    assert res.error < 0.02
    assert factor_match_score(res, truth) > 0.9


def test_hals_beats_mu_in_equal_iterations(rng):
    x, _ = _planted(rng)
    x = x + 0.01 * rng.random(x.shape)
    for seed in range(3):
        hals = fit_ntf(x, 3, method="hals", n_iter_max=50, tol=0, random_state=seed)
        mu = fit_ntf(x, 3, method="mu", n_iter_max=50, tol=0, random_state=seed)
        assert hals.error <= mu.error + 1e-9


@pytest.mark.parametrize("method", ["hals", "mu"])
def test_missing_entries_are_masked(rng, method):
    x, _ = _planted(rng)
    x_missing = x.copy()
    x_missing[:, 1, :7] = np.nan
    res = fit_ntf(x_missing, 3, method=method, n_iter_max=300, missing="em")
    assert res.n_missing == 14 * 7
    # the held-out entries are predicted from the rest
    rel = np.linalg.norm(res.reconstruct()[:, 1, :7] - x[:, 1, :7]) / np.linalg.norm(x[:, 1, :7])
    assert rel < 0.2
    zero = fit_ntf(x_missing, 3, method=method, n_iter_max=300, missing="zero")
    assert zero.reconstruct()[:, 1, :7].mean() < res.reconstruct()[:, 1, :7].mean()


def test_backend_is_restored_and_pytorch_agrees(rng):
    x, _ = _planted(rng)
    before = tl.get_backend()
    a = fit_ntf(x, 2, n_iter_max=30, tol=0, backend="numpy")
    b = fit_ntf(x, 2, n_iter_max=30, tol=0, backend="pytorch")
    assert tl.get_backend() == before
    assert isinstance(b.factors[0], np.ndarray)
    assert abs(a.error - b.error) < 1e-3


def test_rank_selection_finds_planted_rank(rng):
    x, _ = _planted(rng, rank=3)
    sel = select_rank(x, ranks=(2, 3, 4), n_restarts=3, n_iter_max=300)
    assert sel.rank == 3
    assert [r["rank"] for r in sel.table] == [2, 3, 4]
    assert "selected" in sel.format_table()


@pytest.mark.parametrize("rank, error", [(31, ValueError), (0, ValueError), (2.5, TypeError)])
def test_bad_rank(rank, error):
    with pytest.raises(error, match="rank"):
        check_rank(rank, (40, 3, 30))
    if error is ValueError and rank > 0:
        with pytest.raises(ValueError, match="larger than the tensor allows"):
            fit_ntf(np.ones((40, 3, 30)), rank)
