"""Communities of each NTF component's pair factor, as weighted networkx graphs.

A component's pair factor ``P[:, r]`` (one weight per neuron pair, in
``numpy.triu_indices`` order) is a weighted undirected graph on the neurons,
with every pair as an edge (no threshold). It is partitioned by one of:

``method="sbm"`` (default)
    A weighted stochastic block model (Gaussian weights with a mean and a
    variance per block pair by default, or exponential weights), the number
    of blocks chosen by the exact integrated complete-data likelihood
    (:func:`neuro.connectome.sbm.fit_weighted_sbm`; the model, priors and
    fitting are documented there). The paper partitioned components with a
    weighted degree-corrected SBM (graph-tool, not on PyPI); the model here
    is the same family without the degree correction (the reason is given in
    :mod:`neuro.connectome.sbm`). A block model suits NTF pair factors: they
    are dense, with a core-periphery pattern (strong ties inside the active
    community, weaker ties from its members to every other neuron, near-zero
    ties among the others), which a block model describes as blocks while
    modularity does not split it (Louvain on the full graph finds no planted
    community on the simulator, ARI 0).
``method="louvain"`` or ``"greedy"``
    Weighted modularity maximisation with networkx
    (``louvain_communities``, ``greedy_modularity_communities``) at
    ``resolution``; kept as the usual baseline.

Whatever the method, each partition's weighted modularity
(``networkx.community.modularity``) is reported, and each component names
its *core*: the community (block) with the largest mean edge weight among its
members, i.e. the neurons that interact in that component. With one block
(the ICL finds no structure) the core is every neuron.

The dynamic connectome: at time bin ``t`` (and animal ``a``) the modelled
affinity between neurons ``i`` and ``j`` is
``sum_r w_r T[t, r] A[a, r] P[(i, j), r]``, i.e. the component graphs
weighted by their time (and animal) factors; each component graph carries its
time factor as the graph attribute ``time_factor``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from neuro._validation import check_array, check_choice, check_float, check_int
from neuro.connectome.sbm import fit_weighted_sbm
from neuro.errors import InputError, InputTypeError
from neuro.io import atomic_open, check_overwrite

__all__ = [
    "COMMUNITY_METHODS",
    "ComponentCommunities",
    "community_result",
    "component_graph",
    "find_communities",
    "pairs_to_matrix",
    "partition",
    "write_graphml",
]

#: Methods accepted by :func:`partition` and :func:`find_communities`.
COMMUNITY_METHODS = ("sbm", "louvain", "greedy")


def pairs_to_matrix(values, n_neurons: int) -> np.ndarray:
    """Symmetric ``(n_neurons, n_neurons)`` matrix from per-pair values (zero diagonal).

    Examples
    --------
    >>> pairs_to_matrix([1.0, 2.0, 3.0], 3)
    array([[0., 1., 2.],
           [1., 0., 3.],
           [2., 3., 0.]])
    """
    n_neurons = check_int("n_neurons", n_neurons, minimum=2)
    values = check_array("values", values, ndim=1, shape_hint="(n_pairs,)", dtype=np.float64)
    n_pairs = n_neurons * (n_neurons - 1) // 2
    if values.shape != (n_pairs,):
        raise InputError(
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
    n_neurons = check_int("n_neurons", n_neurons, minimum=2)
    w = check_array("pair_factor", pair_factor, ndim=1, shape_hint="(n_pairs,)", dtype=np.float64)
    if len(w) != n_neurons * (n_neurons - 1) // 2:
        raise InputError(
            f"pair_factor must have n_neurons * (n_neurons - 1) / 2 = "
            f"{n_neurons * (n_neurons - 1) // 2} entries for {n_neurons} neurons; got {len(w)}."
        )
    if labels is not None and len(labels) != n_neurons:
        raise InputError(f"labels must have one entry per neuron ({n_neurons}); got {len(labels)}.")
    min_weight = check_float("min_weight", min_weight)
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
    graph: nx.Graph,
    method: str = "sbm",
    resolution: float = 1.0,
    seed: int = 0,
    max_blocks: int = 6,
    sbm_weights: str = "gaussian",
) -> tuple[np.ndarray, float]:
    """Weighted community partition of ``graph`` and its modularity.

    Parameters
    ----------
    graph : networkx.Graph
        Nodes ``0 .. n-1``; edge attribute ``weight`` (non-negative).
    method : {"sbm", "louvain", "greedy"}, default="sbm"
        Exponential-weight stochastic block model chosen by exact ICL
        (:func:`~neuro.connectome.sbm.fit_weighted_sbm`), or networkx
        modularity maximisation.
    resolution : float, default=1.0
        Modularity resolution (``"louvain"``, ``"greedy"`` and the reported
        modularity).
    seed : int, default=0
    max_blocks : int, default=6
        Largest number of blocks the SBM may use (``"sbm"`` only).
    sbm_weights : {"gaussian", "exponential"}, default="gaussian"
        Weight distribution of the SBM (``"sbm"`` only).

    Returns
    -------
    labels : ndarray of shape (n_nodes,), int
        Community of each node (nodes ``0 .. n-1``), numbered by decreasing size.
    modularity : float
        Weighted modularity at ``resolution``; 0 for a graph without edges.

    Examples
    --------
    >>> g = nx.Graph([(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)])
    >>> labels, q = partition(g, method="louvain")
    >>> labels.tolist(), round(q, 3)
    ([0, 0, 0, 1, 1, 1], 0.357)
    """
    if not isinstance(graph, nx.Graph):
        raise InputTypeError(f"graph must be a networkx.Graph; got {type(graph).__name__}.")
    if sorted(graph.nodes) != list(range(graph.number_of_nodes())):
        raise InputError("graph must have the nodes 0 .. n-1 (as component_graph makes them).")
    method, resolution, seed, max_blocks = _check_partition_args(
        method, resolution, seed, max_blocks, sbm_weights
    )
    labels, q, _ = _partition(graph, method, resolution, seed, max_blocks, sbm_weights)
    return labels, q


def _check_partition_args(method, resolution, seed, max_blocks, sbm_weights):
    check_choice("method", method, COMMUNITY_METHODS)
    check_choice("sbm_weights", sbm_weights, ("gaussian", "exponential"))
    resolution = check_float("resolution", resolution, minimum=0.0, strict_minimum=True)
    seed = check_int("seed", seed)
    max_blocks = check_int("max_blocks", max_blocks, minimum=1)
    return method, resolution, seed, max_blocks


def _partition(graph, method, resolution, seed, max_blocks, sbm_weights):
    n = graph.number_of_nodes()
    if graph.number_of_edges() == 0 or graph.size(weight="weight") <= 0:
        return np.arange(n), 0.0, None
    icl = None
    if method == "sbm":
        matrix = nx.to_numpy_array(graph, nodelist=range(n), weight="weight")
        fit = fit_weighted_sbm(matrix, max_blocks=max_blocks, seed=seed, weights=sbm_weights)
        comms = [np.flatnonzero(fit.labels == k).tolist() for k in range(fit.n_blocks)]
        icl = fit.icl
    elif method == "louvain":
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
    return labels, float(q), icl


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
    method : str
        The partition method.
    icl : float or None
        Exact ICL of the SBM partition (``method="sbm"``), else None.
    """

    component: int
    labels: np.ndarray
    modularity: float
    core: np.ndarray
    core_density: float
    background_density: float
    graph: nx.Graph
    method: str = "sbm"
    icl: float | None = None

    def summary(self) -> dict:
        """JSON-ready description."""
        return {
            "component": self.component,
            "method": self.method,
            "n_communities": int(self.labels.max() + 1),
            "modularity": self.modularity,
            "icl": self.icl,
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
    method: str = "sbm",
    resolution: float = 1.0,
    seed: int = 0,
    max_blocks: int = 6,
    sbm_weights: str = "gaussian",
) -> list[ComponentCommunities]:
    """Partition every component's pair factor (all pairs kept as edges).

    Parameters
    ----------
    pair_factors : array of shape (n_pairs,) or (n_pairs, rank)
        Non-negative pair weights, ``numpy.triu_indices`` order.
    n_neurons : int
    labels : sequence of str, optional
    method : {"sbm", "louvain", "greedy"}, default="sbm"
        See the module docstring.
    resolution : float, default=1.0
        Modularity resolution (``"louvain"``, ``"greedy"``; reported modularity).
    seed : int, default=0
    max_blocks : int, default=6
        Largest number of SBM blocks tried per component (``"sbm"`` only).
    sbm_weights : {"gaussian", "exponential"}, default="gaussian"
        Weight distribution of the SBM (``"sbm"`` only; see :mod:`neuro.connectome.sbm`).

    Returns
    -------
    list of ComponentCommunities, one per component

    Examples
    --------
    >>> w = np.zeros(15); w[[0, 1, 5]] = 1.0             # pairs (0,1), (0,2), (1,2)
    >>> found = find_communities(w[:, None] + 0.01, 6)
    >>> np.flatnonzero(found[0].core).tolist(), found[0].labels.tolist()
    ([0, 1, 2], [0, 0, 0, 1, 1, 1])
    """
    n_neurons = check_int("n_neurons", n_neurons, minimum=2)
    p = check_array(
        "pair_factors", pair_factors, ndim=(1, 2), shape_hint="(n_pairs, rank)", dtype=np.float64
    )
    if p.ndim == 1:
        p = p[:, None]
    method, resolution, seed, max_blocks = _check_partition_args(
        method, resolution, seed, max_blocks, sbm_weights
    )
    if p.shape[0] != n_neurons * (n_neurons - 1) // 2:
        raise InputError(
            f"pair_factors must have shape (n_pairs, rank) with n_pairs = "
            f"{n_neurons * (n_neurons - 1) // 2} for {n_neurons} neurons; got {p.shape}."
        )
    if (p < 0).any():
        raise InputError("pair_factors must be non-negative; it holds negative weights.")
    if labels is not None and len(labels) != n_neurons:
        raise InputError(f"labels must have one entry per neuron ({n_neurons}); got {len(labels)}.")
    out = []
    for r in range(p.shape[1]):
        g = component_graph(p[:, r], n_neurons, labels)
        lab, q, icl = _partition(g, method, resolution, seed, max_blocks, sbm_weights)
        out.append(community_result(r, p[:, r], labels, lab, q, method=method, icl=icl, graph=g))
    return out


def community_result(
    component: int,
    pair_factor,
    neuron_labels,
    labels,
    modularity: float,
    core=None,
    core_density: float | None = None,
    background_density: float | None = None,
    method: str = "sbm",
    icl: float | None = None,
    graph: nx.Graph | None = None,
) -> ComponentCommunities:
    """The :class:`ComponentCommunities` of one component from its partition.

    :func:`find_communities` builds each component's result with it, and a
    loaded :class:`~neuro.connectome.ntf.DynamicConnectome` rebuilds its
    communities (graphs included) from the saved partition without searching
    again.

    Parameters
    ----------
    component : int
    pair_factor : array of shape (n_pairs,)
    neuron_labels : sequence of str or None
    labels : array of shape (n_neurons,), int
        Community of each neuron.
    modularity : float
    core : array of shape (n_neurons,), bool, optional
        Recomputed from ``labels`` when not given (with the densities).
    core_density, background_density : float, optional
    method : str, default="sbm"
    icl : float or None
    graph : networkx.Graph, optional
        The component graph; built from ``pair_factor`` when not given.

    Returns
    -------
    ComponentCommunities
    """
    p = np.asarray(pair_factor, dtype=np.float64)
    lab = np.asarray(labels, dtype=np.int64)
    n_neurons = len(lab)
    if core is None:
        core, core_density, background_density = _core(pairs_to_matrix(p, n_neurons), lab)
    core = np.asarray(core, dtype=bool)
    g = component_graph(p, n_neurons, neuron_labels) if graph is None else graph
    for n in g.nodes:
        g.nodes[n]["community"] = int(lab[n])
        g.nodes[n]["core"] = bool(core[n])
    g.graph["component"] = int(component)
    g.graph["method"] = method
    g.graph["modularity"] = float(modularity)
    if icl is not None:
        g.graph["icl"] = float(icl)
    return ComponentCommunities(
        int(component),
        lab,
        float(modularity),
        core,
        float(core_density),
        float(background_density),
        g,
        method,
        None if icl is None else float(icl),
    )


def write_graphml(graph: nx.Graph, path, overwrite: bool = False) -> Path:
    """Write ``graph`` as GraphML atomically (list-valued graph attributes as text).

    Parameters
    ----------
    graph : networkx.Graph
    path : str or path-like
    overwrite : bool, default=True
        Replace an existing file (False refuses it).

    Returns
    -------
    Path
    """
    if not isinstance(graph, nx.Graph):
        raise InputTypeError(f"graph must be a networkx.Graph; got {type(graph).__name__}.")
    path = check_overwrite(path, overwrite, what="GraphML file")
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
    return path
