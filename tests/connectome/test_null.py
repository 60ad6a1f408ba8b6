"""Null data: no shared drive, no communities; strength differences are not communities."""

import warnings

import numpy as np
import pytest

from data_loaders.simulate.calcium import simulate_calcium
from neuro.connectome import DynamicConnectome, find_communities
from neuro.connectome.communities import component_graph, partition
from neuro.connectome.sbm import adjusted_rand, fit_sbm, fit_weighted_sbm


def _symmetric(w):
    w = np.triu(w, 1)
    return w + w.T


@pytest.fixture(scope="module")
def null_fit():
    """Independent Poisson spikes plus noise in 4 animals: the shared drive is off."""
    sim = simulate_calcium(
        n_animals=4,
        n_neurons=30,
        n_frames=1600,
        community_size=7,
        noise=0.3,
        event_rate=0.0,
        baseline_rate=0.2,
        seed=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = DynamicConnectome(rank=4, n_restarts=2, device="cpu").fit(sim.data)
    return model, caught


def test_independent_traces_give_one_community_per_component(null_fit):
    model, caught = null_fit
    assert [int(c.labels.max()) + 1 for c in model.communities_] == [1, 1, 1, 1]
    assert not [w for w in caught if "stability" in str(w.message)]
    for c in model.communities_:
        summary = c.summary()
        assert summary["n_communities"] == 1 and summary["stability"] == 1.0
        assert summary["sbm_model"] in ("dc", "plain-exponential")
    report = model.report().summary()
    assert all(row["stability"] is not None for row in report["communities"])


def test_the_model_without_degrees_splits_null_components_and_warns(null_fit):
    """The earlier default (Gaussian SBM by exact ICL) cuts strengths into blocks: it warns."""
    model, _ = null_fit
    with pytest.warns(UserWarning, match="bootstrap stability"):
        plain = find_communities(model.pair_factors_, 30, sbm_model="plain", n_bootstrap=5)
    assert all(c.labels.max() + 1 >= 3 for c in plain)
    assert all(c.stability < 0.8 for c in plain)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_one_plus_exponential_noise_is_one_block(seed):
    """``W_ij = theta_i theta_j e_ij`` with exponential ``e``: strengths, no blocks."""
    rng = np.random.default_rng(seed)
    theta = rng.lognormal(0.0, 0.5, 40)
    w = _symmetric(rng.exponential(np.outer(theta, theta)))
    fit = fit_sbm(w, n_bootstrap=0, seed=seed)
    assert fit.n_blocks == 1 and fit.degree_corrected
    i, j = np.triu_indices(40, 1)
    labels, _ = partition(component_graph(w[i, j], 40))
    assert labels.max() == 0
    assert fit_weighted_sbm(w).n_blocks >= 3  # the model without degrees: blocks of strength


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_strength_within_communities_does_not_split_them(seed):
    rng = np.random.default_rng(seed)
    z = np.repeat([0, 1], [14, 19])
    theta = rng.lognormal(0.0, 0.5, len(z))
    mean = np.outer(theta, theta) * np.array([[1.0, 0.15], [0.15, 0.8]])[z][:, z]
    w = _symmetric(rng.exponential(mean))
    fit = fit_sbm(w, n_bootstrap=3, seed=seed)
    assert fit.n_blocks == 2 and fit.degree_corrected
    assert adjusted_rand(z, fit.labels) == 1.0
    assert fit.stability >= 0.8
    plain = fit_weighted_sbm(w)
    assert plain.n_blocks > 2 and adjusted_rand(z, plain.labels) < 0.9  # split by strength
