"""Weighted SBM: exact ICL bookkeeping, planted blocks, core-periphery, choice of K."""

import functools
import itertools
import math

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from neuro.connectome.communities import component_graph, partition
from neuro.connectome.sbm import (
    WEIGHT_MODELS,
    _dense_spec,
    _eprior,
    _floored,
    _hurdle_spec,
    _Moves,
    _prior,
    adjusted_rand,
    bootstrap_stability,
    default_max_blocks,
    fit_sbm,
    fit_weighted_sbm,
    sbm_criterion,
    sbm_icl,
)


def _planted(rng, sizes, means, noise="exponential"):
    """Symmetric weights with block means ``means[z_i, z_j]``; returns (w, z)."""
    z = np.repeat(np.arange(len(sizes)), sizes)
    mu = np.asarray(means)[z][:, z]
    if noise == "exponential":
        w = rng.exponential(mu)
    else:
        w = np.abs(mu * (1 + 0.3 * rng.standard_normal(mu.shape)))
    w = np.triu(w, 1)
    return w + w.T, z


@pytest.mark.parametrize("weights", WEIGHT_MODELS)
def test_climb_keeps_exact_icl(rng, weights):
    """The incremental ICL of the greedy moves equals the ICL recomputed from the labels."""
    w, _ = _planted(rng, [7, 8, 9], [[1, 0.2, 0.1], [0.2, 0.5, 0.1], [0.1, 0.1, 0.05]])
    fit = fit_weighted_sbm(w, n_blocks=3, weights=weights, seed=1)
    assert fit.icl == pytest.approx(sbm_icl(w, fit.labels, weights=weights), rel=1e-10)
    # the ICL depends on the weights' scale only through a constant
    shift = sbm_icl(3.7 * w, fit.labels, weights) - sbm_icl(w, fit.labels, weights)
    other = rng.integers(3, size=len(w))
    shift_other = sbm_icl(3.7 * w, other, weights) - sbm_icl(w, other, weights)
    assert shift == pytest.approx(shift_other, rel=1e-9)


@pytest.mark.parametrize("weights", WEIGHT_MODELS)
@pytest.mark.parametrize(
    "means",
    [
        [[1.0, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.6]],  # assortative
        [[1.0, 0.4, 0.1], [0.4, 0.3, 0.05], [0.1, 0.05, 0.02]],  # nested core-periphery
        [[0.05, 0.9, 0.1], [0.9, 0.05, 0.1], [0.1, 0.1, 0.5]],  # bipartite + block
    ],
    ids=["assortative", "core-periphery", "disassortative"],
)
def test_planted_blocks_and_their_number(rng, weights, means):
    w, z = _planted(rng, [7, 8, 9], means, noise="gaussian")
    fit = fit_weighted_sbm(w, weights=weights, seed=0)
    assert fit.n_blocks == 3, fit.icl_by_blocks
    assert adjusted_rand_score(z, fit.labels) == 1.0
    assert max(fit.icl_by_blocks, key=fit.icl_by_blocks.get) == 3
    np.testing.assert_allclose(np.diag(fit.block_means)[[0, 1, 2]].max(), max(np.diag(means)), 0.3)


def test_no_structure_is_one_block(rng):
    w, _ = _planted(rng, [24], [[1.0]])
    assert fit_weighted_sbm(w, weights="exponential").n_blocks == 1
    empty = fit_weighted_sbm(np.zeros((5, 5)))
    assert empty.n_blocks == 1 and empty.labels.tolist() == [0] * 5


def test_core_periphery_where_modularity_fails(rng):
    """An NTF-like component: core 0.9, core-rest 0.15, rest-rest 0.02; Louvain mixes them."""
    w, z = _planted(rng, [8, 25], [[0.9, 0.15], [0.15, 0.02]], noise="gaussian")
    i, j = np.triu_indices(len(w), 1)
    g = component_graph(w[i, j], len(w))
    sbm, _ = partition(g, method="sbm")
    louvain, _ = partition(g, method="louvain")
    assert adjusted_rand_score(z, sbm) == 1.0
    assert adjusted_rand_score(z, louvain) < 0.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"matrix": np.ones((3, 4))}, "square"),
        ({"matrix": -np.ones((3, 3))}, "non-negative"),
        ({"matrix": np.triu(np.ones((3, 3)))}, "symmetric"),
        ({"matrix": np.ones((3, 3)), "n_blocks": 4}, "n_blocks"),
        ({"matrix": np.ones((3, 3)), "weights": "poisson"}, "weights must be one of"),
    ],
)
def test_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_weighted_sbm(**kwargs)


# ----------------------------------------------------------------------------- fit_sbm
def test_more_blocks_than_the_old_cap(rng):
    """Nine planted blocks: the default search grows with n (no cap at 6)."""
    z = np.repeat(np.arange(9), 6)
    w = np.triu(rng.exponential(np.where(z[:, None] == z, 1.0, 0.05)), 1)
    fit = fit_sbm(w + w.T, n_bootstrap=0)
    assert default_max_blocks(54) > 9
    assert fit.n_blocks == 9 and adjusted_rand_score(z, fit.labels) == 1.0


def test_hierarchy_merges_blocks_of_blocks(rng):
    """Four blocks in two groups: the level with two blocks is the groups."""
    z = np.repeat(np.arange(4), [7, 8, 9, 10])
    group = z // 2
    mean = np.where(z[:, None] == z, 1.0, np.where(group[:, None] == group, 0.15, 0.01))
    w = np.triu(mean * rng.uniform(0.7, 1.3, mean.shape), 1)
    fit = fit_sbm(w + w.T, n_bootstrap=0)
    assert adjusted_rand_score(z, fit.labels) == 1.0
    assert [int(level.max()) + 1 for level in fit.levels] == [4, 3, 2, 1]
    assert adjusted_rand_score(group, fit.levels[2]) == 1.0
    assert fit.level_icl[0] == fit.icl == max(fit.level_icl)
    assert set(fit.icl_by_model) == {"dc", "plain"}


def test_criterion_of_the_plain_variant_is_the_exact_exponential_icl(rng):
    """Without degrees the criterion is the exact ICL (of the offset weights)."""
    w, _ = _planted(rng, [7, 8, 9], [[1, 0.2, 0.1], [0.2, 0.5, 0.1], [0.1, 0.1, 0.05]])
    fit = fit_sbm(w, model="plain", n_blocks=3, n_bootstrap=0)
    assert not fit.degree_corrected and fit.n_blocks == 3
    offset = w + 0.1 * w[~np.eye(len(w), dtype=bool)].mean() * (1 - np.eye(len(w)))
    assert fit.icl == pytest.approx(sbm_icl(offset, fit.labels, "exponential"), rel=1e-9)


def test_adjusted_rand_matches_scikit_learn(rng):
    for _ in range(5):
        a, b = rng.integers(4, size=23), rng.integers(3, size=23)
        assert adjusted_rand(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
    assert adjusted_rand([0, 0, 0], [1, 1, 1]) == 1.0


def test_bootstrap_stability_is_high_for_blocks_low_for_cut_strengths(rng):
    w, z = _planted(rng, [9, 11], [[1.0, 0.05], [0.05, 0.8]])
    assert bootstrap_stability(w, z, n_bootstrap=4) == 1.0
    theta = rng.lognormal(0.0, 0.5, 30)
    w = np.triu(rng.exponential(np.outer(theta, theta)), 1)
    w = w + w.T
    cut = (theta > np.median(theta)).astype(int)  # blocks cut out of a continuum

    def by_strength(m, seed):
        s = m.sum(1)
        return (s > np.median(s)).astype(int)

    assert bootstrap_stability(w, cut, by_strength, n_bootstrap=6) < 0.6


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"matrix": np.ones((3, 4))}, "square"),
        ({"matrix": np.ones((3, 3)), "model": "nested"}, "model must be one of"),
        ({"matrix": np.ones((3, 3)), "max_blocks": 0}, "max_blocks"),
        ({"matrix": np.ones((3, 3)), "n_bootstrap": -1}, "n_bootstrap"),
    ],
)
def test_fit_sbm_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_sbm(**kwargs)


# ----------------------------------------------------------------------------- fast moves, hurdle
def _reference_graphs():
    """The graphs whose criteria the per-candidate code reached (see the test below)."""
    rng = np.random.default_rng(7)
    z = np.repeat(np.arange(4), [10, 14, 18, 22])
    theta = rng.lognormal(0, 0.4, len(z))
    mean = np.where(z[:, None] == z, 1.0, 0.3) * np.outer(theta, theta)
    w = np.triu(rng.exponential(mean), 1)
    yield "dc-blocks", w + w.T
    theta = rng.lognormal(0, 0.5, 60)
    w = np.triu(rng.exponential(np.outer(theta, theta)), 1)
    yield "null", w + w.T
    z = np.repeat(np.arange(3), [8, 20, 32])
    mean = np.array([[1.0, 0.3, 0.1], [0.3, 0.2, 0.05], [0.1, 0.05, 0.03]])[z][:, z]
    w = np.triu(rng.exponential(mean), 1)
    yield "core-periphery", w + w.T


# criteria fit_sbm reached (seed 0) when every candidate move recomputed the K x K criterion
_BEFORE = {
    "dc-blocks": {"auto": -398.9479845069003, "plain": -432.05348767793066, "dc": -398.9479845069},
    "null": {"auto": -1453.9657550534428, "plain": -1484.5899134966676, "dc": -1453.96575505344},
    "core-periphery": {"auto": 2588.8294814664455, "plain": 2588.82948146644, "dc": 2584.270062798},
}


def test_incremental_moves_reach_the_criteria_of_the_per_candidate_moves():
    for name, w in _reference_graphs():
        for model, before in _BEFORE[name].items():
            fit = fit_sbm(w, model=model, n_bootstrap=0, seed=0)
            assert fit.icl >= before - 1e-6 * abs(before), (name, model)
            # (the degrees of "dc" are refitted from scratch: equal to their tolerance)
            assert fit.icl == pytest.approx(sbm_criterion(w, fit.labels, fit.model), rel=1e-7)


def _specs(rng, n):
    """Every model the node moves serve, on one random sparse weighted graph."""
    w = np.triu(rng.exponential(1.0, (n, n)) * (rng.random((n, n)) < 0.3), 1)
    w = w + w.T
    wf = _floored(w)
    logt = rng.normal(0.0, 0.3, n)
    return {
        "gaussian": _dense_spec(w, _prior(w, "gaussian")),
        "exponential": _dense_spec(wf, _eprior(wf, 1.0)),
        "dc": _dense_spec(wf, _eprior(wf, 1.0), logt),
        "hurdle": _hurdle_spec(w, False),
        "hurdle-dc": _hurdle_spec(w, True),
    }


@pytest.mark.parametrize("model", ["gaussian", "exponential", "dc", "hurdle", "hurdle-dc"])
def test_incremental_statistics_match_a_recomputation_after_random_moves(rng, model):
    n, k = 17, 4
    spec = _specs(rng, n)[model]
    z = np.arange(n) % k
    moves = _Moves(spec, z, k)
    for _ in range(25):
        i = int(rng.integers(n))
        if moves.sizes[moves.z[i]] <= 1:
            continue
        delta = moves.deltas(np.array([i]))[0]
        # the change for each target block is the difference of two criteria from scratch
        base = _Moves(spec, moves.z, k).criterion()
        for b in range(k):
            moved = moves.z.copy()
            moved[i] = b
            assert delta[b] == pytest.approx(_Moves(spec, moved, k).criterion() - base, abs=1e-8)
        moves.move(i, int(rng.integers(k)))
        fresh = _Moves(spec, moves.z, k)
        np.testing.assert_allclose(moves.u_ord, fresh.u_ord, atol=1e-10)
        np.testing.assert_allclose(moves.x, fresh.x, atol=1e-10)
        np.testing.assert_array_equal(moves.sizes, fresh.sizes)
        if spec.vals is not None:
            np.testing.assert_allclose(moves.l, fresh.l, atol=1e-10)
        assert moves.criterion() == pytest.approx(fresh.criterion(), rel=1e-12)
    # a chunk of nodes at once gives the deltas of one node at a time
    nodes = np.flatnonzero(moves.sizes[moves.z] > 1)
    together = moves.deltas(nodes)
    for row, i in enumerate(nodes):
        np.testing.assert_allclose(together[row], moves.deltas(np.array([i]))[0], atol=1e-10)


def _direct_hurdle(w, z, dc):
    """The hurdle criterion from its definition, block pair by block pair (module docstring)."""
    n = len(w)
    blocks = sorted(set(z))
    k = len(blocks)
    sizes = [sum(1 for v in z if v == r) for r in blocks]
    edges = [(i, j) for i in range(n) for j in range(i + 1, n) if w[i, j] > 0]
    m = np.mean([w[i, j] for i, j in edges])  # prior mean of the edge weights
    total = len(edges)
    cells = k * (k + 1) // 2
    out = -math.log(math.comb(cells + total - 1, total))  # counts e_rs: uniform
    out += math.lgamma(k / 2) - k * math.lgamma(0.5) - math.lgamma(n + k / 2)  # labels
    out += sum(math.lgamma(s + 0.5) for s in sizes)
    for r in blocks:
        for s in blocks:
            if s < r:
                continue
            pair = [(i, j) for i, j in edges if {z[i], z[j]} == {r, s}]
            e, wsum = len(pair), sum(w[i, j] for i, j in pair)
            out += math.log(m) + math.lgamma(1 + e) - (1 + e) * math.log(m + wsum)  # weights
            if dc:
                out += math.lgamma(e + 1) + (e * math.log(2) if r == s else 0.0)
            else:
                p = sizes[r] * sizes[s] if r != s else sizes[r] * (sizes[r] - 1) // 2
                out -= math.log(math.comb(p, e))
    if dc:
        degree = (w > 0).sum(1)
        out += sum(math.lgamma(d + 1) for d in degree)
        for r in blocks:
            members = [degree[i] for i in range(n) if z[i] == r]
            e_r = int(sum(members))
            out -= math.lgamma(e_r + 1)
            # degrees: a histogram (1 / q(e_r, n_r)), then which node has which degree
            hist = [members.count(d) for d in set(members)]
            out += sum(math.lgamma(h + 1) for h in hist) - math.lgamma(sizes[r] + 1)
            out -= math.log(_partitions(e_r, sizes[r]))
    return out


@functools.cache
def _partitions(m, n):
    """Partitions of ``m`` into parts of at most ``n`` (as many as into at most ``n`` parts)."""
    if m == 0:
        return 1
    return sum(_partitions(m - top, top) for top in range(1, min(m, n) + 1))


@pytest.mark.parametrize("dc", [False, True], ids=["hurdle", "hurdle-dc"])
def test_hurdle_criterion_against_a_direct_computation(rng, dc):
    n = 7
    w = np.triu(rng.exponential(1.0, (n, n)) * (rng.random((n, n)) < 0.5), 1)
    w[0, 1] = 0.7  # at least one edge
    w = w + w.T
    for z in ([0, 0, 0, 1, 1, 1, 1], [0, 1, 2, 0, 1, 2, 2], [0] * n):
        got = sbm_criterion(w, z, "hurdle-dc" if dc else "hurdle")
        assert got == pytest.approx(_direct_hurdle(w, z, dc), rel=1e-12)


def test_hurdle_edge_probabilities_sum_to_one():
    """Over every graph with 3 edges on 6 nodes: the edge part is a distribution."""
    z = np.array([0, 0, 0, 1, 1, 1])
    i, j = np.triu_indices(6, 1)
    label = -2 * math.lgamma(0.5) - math.lgamma(7.0) + 2 * math.lgamma(3.5)  # K = 2
    total = {"hurdle": 0.0, "hurdle-dc": 0.0}
    for chosen in itertools.combinations(range(len(i)), 3):
        w = np.zeros((6, 6))
        w[i[list(chosen)], j[list(chosen)]] = 1.0
        w = w + w.T
        a = w[np.ix_(z == 0, z == 0)].sum() / 2, w[np.ix_(z == 1, z == 1)].sum() / 2
        counts = [a[0], a[1], 3 - a[0] - a[1]]  # unit weights: their term is known
        weights = sum(math.lgamma(1 + e) - (1 + e) * math.log(1 + e) for e in counts)
        for model in total:
            total[model] += math.exp(sbm_criterion(w, z, model) - label - weights)
    assert total["hurdle"] == pytest.approx(1.0, rel=1e-12)  # every e_rs <= P_rs here
    # the rest of the mass is on multigraphs with self-loops (summed over them too: 1)
    assert 0.1 < total["hurdle-dc"] < 1.0


def test_planted_sparse_blocks_are_recovered_by_the_hurdle_model(rng):
    z = np.repeat(np.arange(4), [25, 30, 30, 35])
    prob = np.where(z[:, None] == z, 0.3, 0.03)
    w = rng.exponential(np.where(z[:, None] == z, 1.0, 0.5)) * (rng.random(prob.shape) < prob)
    w = np.triu(w, 1)
    fit = fit_sbm(w + w.T, n_bootstrap=0)
    assert fit.model in ("hurdle", "hurdle-dc") and set(fit.icl_by_model) == {"hurdle", "hurdle-dc"}
    assert adjusted_rand_score(z, fit.labels) > 0.95


def test_sparse_null_graph_is_one_block(rng):
    """Erdős–Rényi edges with exponential weights: no blocks, with or without degrees."""
    n = 100
    w = np.triu(rng.exponential(1.0, (n, n)) * (rng.random((n, n)) < 0.1), 1)
    w = w + w.T
    assert fit_sbm(w, n_bootstrap=0).n_blocks == 1
    assert fit_sbm(w, model="hurdle-dc", n_bootstrap=0).n_blocks == 1


def test_dense_factors_with_some_zeros_keep_the_dense_models(rng):
    """An NTF-like factor with 30% exact zeros (HALS clipping) is not sparse."""
    w, z = _planted(rng, [10, 20], [[1.0, 0.2], [0.2, 0.1]])
    off = np.triu(rng.random(w.shape) < 0.3, 1)
    w[off | off.T] = 0.0
    fit = fit_sbm(w, n_bootstrap=0)
    assert fit.model in ("plain", "dc") and set(fit.icl_by_model) == {"plain", "dc"}
    assert adjusted_rand_score(z, fit.labels) == 1.0
