"""Communities of each NTF component's pair factor, as weighted networkx graphs.

A component's pair factor ``P[:, r]`` (one weight per neuron pair, in
``numpy.triu_indices`` order) is a weighted undirected graph on the neurons.
It is partitioned by modularity maximisation with networkx: Louvain
(``method="louvain"``, the default; ``networkx.community.louvain_communities``)
or greedy agglomeration (``"greedy"``). The partition quality is its weighted
modularity (``networkx.community.modularity``, same ``resolution``).

The paper used a weighted degree-corrected stochastic block model
(graph-tool, not on PyPI); it is not provided here. Modularity methods differ
from it in one way that matters for NTF components: neurons that take no part
in a component have near-zero edges, and modularity places them in arbitrary
small groups. Each component therefore also names its *core*: the community
with the largest mean edge weight among its members (its densest block),
i.e. the neurons that interact in that component.

The dynamic connectome: at time bin ``t`` (and animal ``a``) the modelled
affinity between neurons ``i`` and ``j`` is
``sum_r w_r T[t, r] A[a, r] P[(i, j), r]``, i.e. the component graphs
weighted by their time (and animal) factors; each component graph carries its
time factor as the graph attribute ``time_factor``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import networkx as nx
import numpy as np

from neuro.io import atomic_open

__all__ = [
    "COMMUNITY_METHODS",
    "ComponentCommunities",
    "component_graph",
    "find_communities",
    "pairs_to_matrix",
    "partition",
    "write_graphml",
]

#: Methods accepted by :func:`partition`.
COMMUNITY_METHODS = ("louvain", "greedy")


def pairs_to_matrix(values, n_neurons: int) -> np.ndarray:
    """Symmetric ``(n_neurons, n_neurons)`` matrix from per-pair values (zero diagonal).

    Examples
    --------
    >>> pairs_to_matrix([1.0, 2.0, 3.0], 3)
    array([[0., 1., 2.],
           [1., 0., 3.],
           [2., 3., 0.]])
    """
    values = np.asarray(values, dtype=np.float64)
    n_pairs = n_neurons * (n_neurons - 1) // 2
    if values.shape != (n_pairs,):
        raise ValueError(
            f"values must have shape (n_pairs,) = ({n_pairs},) for {n_neurons} neurons; "
            f"got {values.shape}."
        )
    m = np.zeros((n_neurons, n_neurons))
    i, j = np.triu_indices(n_neurons, k=1)
    m[i, j] = m[j, i] = values
    return m


def component_graph(pair_factor, n_neurons: int, labels=None, min_weight: float = 0.0) -> nx.Graph:
    """A weighted graph of one component: nodes are neurons, edges their pair weights.

    Parameters
    ----------
    pair_factor : array of shape (n_pairs,)
    n_neurons : int
    labels : sequence of str, optional
        Stored as the node attribute ``label``.
    min_weight : float, default=0.0
        Edges with weight <= this are left out.

    Examples
    --------
    >>> g = component_graph([0.5, 0.0, 0.2], 3, labels=["AWB", "AIY", "ASH"])
    >>> sorted(g.edges(data="weight"))
    [(0, 1, 0.5), (1, 2, 0.2)]
    """
    w = np.asarray(pair_factor, dtype=np.float64)
    g = nx.Graph()
    for n in range(n_neurons):
        g.add_node(n, label=str(labels[n]) if labels is not None else f"n{n}")
    i, j = np.triu_indices(n_neurons, k=1)
    keep = w > min_weight
    g.add_weighted_edges_from(
        zip(i[keep].tolist(), j[keep].tolist(), w[keep].tolist(), strict=True)
    )
    return g


def partition(
    graph: nx.Graph, method: str = "louvain", resolution: float = 1.0, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Weighted community partition of ``graph`` and its modularity.

    Returns
    -------
    labels : ndarray of shape (n_nodes,), int
        Community of each node (nodes ``0 .. n-1``), numbered by decreasing size.
    modularity : float
        Weighted modularity at ``resolution``; 0 for a graph without edges.

    Examples
    --------
    >>> g = nx.Graph([(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)])
    >>> labels, q = partition(g)
    >>> labels.tolist(), round(q, 3)
    ([0, 0, 0, 1, 1, 1], 0.357)
    """
    if method not in COMMUNITY_METHODS:
        raise ValueError(f"method must be one of {COMMUNITY_METHODS}; got {method!r}.")
    n = graph.number_of_nodes()
    if graph.number_of_edges() == 0 or graph.size(weight="weight") <= 0:
        return np.arange(n), 0.0
    if method == "louvain":
        comms = nx.community.louvain_communities(
            graph, weight="weight", resolution=resolution, seed=seed
        )
    else:
        comms = nx.community.greedy_modularity_communities(
            graph, weight="weight", resolution=resolution
        )
    comms = sorted((sorted(c) for c in comms), key=lambda c: (-len(c), c[0]))
    labels = np.empty(n, dtype=np.int64)
    for k, c in enumerate(comms):
        labels[c] = k
    q = nx.community.modularity(graph, comms, weight="weight", resolution=resolution)
    return labels, float(q)


@dataclass
class ComponentCommunities:
    """The communities of one NTF component.

    Attributes
    ----------
    component : int
    labels : ndarray of shape (n_neurons,), int
        Community of each neuron.
    modularity : float
        Partition quality (weighted modularity).
    core : ndarray of shape (n_neurons,), bool
        Members of the densest community (largest mean internal edge weight).
    core_density : float
        That mean internal edge weight; ``background_density`` is the mean
        weight of all other edges.
    background_density : float
    graph : networkx.Graph
        Node attributes ``label``, ``community``, ``core``.
    """

    component: int
    labels: np.ndarray
    modularity: float
    core: np.ndarray
    core_density: float
    background_density: float
    graph: nx.Graph

    def summary(self) -> dict:
        """JSON-ready description."""
        return {
            "component": self.component,
            "n_communities": int(self.labels.max() + 1),
            "modularity": self.modularity,
            "core": [self.graph.nodes[n]["label"] for n in np.flatnonzero(self.core)],
            "core_density": self.core_density,
            "background_density": self.background_density,
        }


def _core(matrix: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float, float]:
    best, best_density = None, -np.inf
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        if len(members) < 2:
            continue
        block = matrix[np.ix_(members, members)]
        density = block.sum() / (len(members) * (len(members) - 1))
        if density > best_density:
            best, best_density = members, density
    core = np.zeros(len(labels), dtype=bool)
    if best is None:
        return core, 0.0, float(matrix.sum() / max(matrix.size - len(matrix), 1))
    core[best] = True
    inside = np.outer(core, core)
    np.fill_diagonal(inside, True)
    off = ~inside
    np.fill_diagonal(off, False)
    background = float(matrix[off].mean()) if off.any() else 0.0
    return core, float(best_density), background


def find_communities(
    pair_factors,
    n_neurons: int,
    labels=None,
    method: str = "louvain",
    resolution: float = 1.0,
    seed: int = 0,
    edge_threshold: float = 0.35,
) -> list[ComponentCommunities]:
    """Partition every component's pair factor.

    Parameters
    ----------
    pair_factors : array of shape (n_pairs, rank)
    n_neurons : int
    labels : sequence of str, optional
    method : {"louvain", "greedy"}, default="louvain"
    resolution : float, default=1.0
    seed : int, default=0
    edge_threshold : float, default=0.35
        Edges weaker than this fraction of the component's strongest edge are
        left out of the graph before partitioning (0 keeps every edge). NTF
        pair factors are dense: members of an active community also gain some
        weight with every other neuron (a core-periphery pattern that
        modularity does not split); dropping weak edges leaves the blocks.

    Returns
    -------
    list of ComponentCommunities, one per component

    Examples
    --------
    >>> w = np.zeros(15); w[[0, 1, 5]] = 1.0             # pairs (0,1), (0,2), (1,2)
    >>> found = find_communities(w[:, None] + 0.01, 6)
    >>> np.flatnonzero(found[0].core).tolist()
    [0, 1, 2]
    """
    p = np.asarray(pair_factors, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    out = []
    for r in range(p.shape[1]):
        if not 0 <= edge_threshold < 1:
            raise ValueError(f"edge_threshold must be in [0, 1); got {edge_threshold}.")
        g = component_graph(p[:, r], n_neurons, labels, min_weight=edge_threshold * p[:, r].max())
        lab, q = partition(g, method=method, resolution=resolution, seed=seed)
        core, dens, bg = _core(pairs_to_matrix(p[:, r], n_neurons), lab)
        for n in g.nodes:
            g.nodes[n]["community"] = int(lab[n])
            g.nodes[n]["core"] = bool(core[n])
        g.graph["component"] = r
        g.graph["modularity"] = q
        out.append(ComponentCommunities(r, lab, q, core, dens, bg, g))
    return out


def write_graphml(graph: nx.Graph, path) -> None:
    """Write ``graph`` as GraphML atomically (list-valued graph attributes as text)."""
    g = graph.copy()
    for k, v in list(g.graph.items()):
        if isinstance(v, (list, tuple, np.ndarray)):
            g.graph[k] = ",".join(f"{float(x):.6g}" for x in np.ravel(v))
        elif isinstance(v, np.generic):
            g.graph[k] = v.item()
    buf = io.BytesIO()
    nx.write_graphml(g, buf)
    with atomic_open(path, "wb") as fh:
        fh.write(buf.getvalue())
