"""Communities: planted blocks in a weighted graph, GraphML output."""

import networkx as nx
import numpy as np
import pytest

from neuro.connectome.communities import find_communities, pairs_to_matrix, partition, write_graphml


@pytest.mark.parametrize("method", ["sbm", "louvain", "greedy"])
def test_planted_blocks_are_found(rng, method):
    labels = np.repeat([0, 1, 2], [5, 7, 9])
    n = len(labels)
    i, j = np.triu_indices(n, 1)
    w = np.where(labels[i] == labels[j], 1.0, 0.05) * rng.uniform(0.8, 1.2, len(i))
    from neuro.connectome.communities import component_graph

    found, q = partition(component_graph(w, n), method=method)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(labels, found) == 1.0 and q > 0.5


@pytest.mark.parametrize("method", ["sbm", "louvain"])
def test_every_component_is_partitioned(rng, method):
    """Several components at once, labels and attributes per component; bad input refused."""
    n = 9
    i, j = np.triu_indices(n, 1)
    p = 0.02 * rng.random((len(i), 3))
    for r, members in enumerate([[0, 1, 2, 3], [4, 5, 6], [2, 6, 7, 8]]):
        inside = np.isin(i, members) & np.isin(j, members)
        p[inside, r] = 1.0 + 0.1 * rng.random(inside.sum())
    comps = find_communities(p, n, method=method)
    assert len(comps) == 3
    if method == "sbm":
        for c, members in zip(comps, [[0, 1, 2, 3], [4, 5, 6], [2, 6, 7, 8]], strict=True):
            assert np.flatnonzero(c.core).tolist() == members
            assert c.icl is not None and c.graph.graph["icl"] == c.icl
            assert c.summary()["method"] == "sbm"
    with pytest.raises(ValueError, match="n_pairs"):
        find_communities(p[:-1], n)
    with pytest.raises(ValueError, match="non-negative"):
        find_communities(-p, n)
    with pytest.raises(ValueError, match="method must be one of"):
        find_communities(p, n, method="leiden")


def test_core_and_graph_attributes(rng, tmp_path):
    n = 9
    m = 0.02 * rng.random((n, n))
    m[:4, :4] = 1.0
    i, j = np.triu_indices(n, 1)
    comps = find_communities(m[i, j][:, None], n, labels=[f"c{k}" for k in range(n)])
    c = comps[0]
    assert np.flatnonzero(c.core).tolist() == [0, 1, 2, 3]
    assert c.core_density > 10 * c.background_density
    assert c.summary()["core"] == ["c0", "c1", "c2", "c3"]
    c.graph.graph["time_factor"] = np.arange(3.0)
    write_graphml(c.graph, tmp_path / "g.graphml")
    g = nx.read_graphml(tmp_path / "g.graphml")
    assert g.number_of_nodes() == n and g.graph["time_factor"] == "0,1,2"


def test_pairs_to_matrix_checks_length():
    with pytest.raises(ValueError, match="n_pairs"):
        pairs_to_matrix(np.ones(4), 4)


@pytest.mark.parametrize("sbm_model", ["auto", "dc", "plain"])
def test_sbm_variants_report_model_levels_and_stability(rng, sbm_model):
    n = 21
    labels = np.repeat([0, 1, 2], [5, 7, 9])
    i, j = np.triu_indices(n, 1)
    w = np.where(labels[i] == labels[j], 1.0, 0.05) * rng.uniform(0.8, 1.2, len(i))
    (c,) = find_communities(w[:, None], n, sbm_model=sbm_model, n_bootstrap=3)
    summary = c.summary()
    assert summary["n_communities"] == 3 and summary["stability"] == 1.0
    assert c.graph.graph["stability"] == 1.0
    if sbm_model == "plain":
        assert summary["sbm_model"] == "plain-gaussian" and c.levels is None
    else:
        assert summary["sbm_model"] in ("dc", "plain-exponential")
        assert summary["n_communities_by_level"] == [3, 2, 1]
        assert c.levels.shape == (3, n)


def test_unstable_partition_warns(rng):
    """Louvain cuts a graph of independent weights into communities that do not replicate."""
    n = 24
    w = rng.exponential(1.0, n * (n - 1) // 2)
    with pytest.warns(UserWarning, match=r"component 0: \d communities with bootstrap stability"):
        (c,) = find_communities(w[:, None], n, method="louvain", n_bootstrap=4)
    assert c.stability < 0.8
    (c,) = find_communities(w[:, None], n)  # the default finds one block, no warning
    assert c.labels.max() == 0 and c.stability == 1.0


def test_partition_checks_sbm_model():
    with pytest.raises(ValueError, match="sbm_model must be one of"):
        find_communities(np.ones((3, 1)), 3, sbm_model="nested")


def test_sparse_graph_is_partitioned_by_the_hurdle_model(rng):
    """Mostly zeros: the SBM fits edges and weights separately and says so."""
    from sklearn.metrics import adjusted_rand_score

    z = np.repeat([0, 1, 2], [20, 25, 30])
    n = len(z)
    i, j = np.triu_indices(n, 1)
    edge = rng.random(len(i)) < np.where(z[i] == z[j], 0.35, 0.03)
    w = np.where(edge, rng.exponential(1.0, len(i)), 0.0)
    comps = find_communities(w, n, n_bootstrap=2)
    assert comps[0].sbm_model in ("hurdle", "hurdle-dc")
    assert adjusted_rand_score(z, comps[0].labels) > 0.9  # a node or two may stray
    assert comps[0].levels.shape == (3, n) and comps[0].stability > 0.8
