"""Weighted SBM: exact ICL bookkeeping, planted blocks, core-periphery, choice of K."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from neuro.connectome.communities import component_graph, partition
from neuro.connectome.sbm import (
    WEIGHT_MODELS,
    adjusted_rand,
    bootstrap_stability,
    default_max_blocks,
    fit_sbm,
    fit_weighted_sbm,
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
