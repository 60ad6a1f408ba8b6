"""Communities of each NTF component's pair factor, as weighted networkx graphs.

A component's pair factor ``P[:, r]`` (one weight per neuron pair, in
``numpy.triu_indices`` order) is a weighted undirected graph on the neurons,
with every pair as an edge (no threshold). It is partitioned by one of:

``method="sbm"`` (default)
    A weighted stochastic block model. With ``sbm_model="auto"`` (default)
    it is the exponential-weight model with or without degree correction
    (pair means ``theta_i theta_j omega_rs`` or ``omega_rs``), the variant
    and the number of blocks chosen by one criterion, with a hierarchy of
    coarser levels (:func:`neuro.connectome.sbm.fit_sbm`; the model, the
    criterion and the comparison with graspologic, leidenalg and
    scikit-network are documented there). Degree correction is what the
    paper used (graph-tool's degree-corrected SBM): an NTF pair factor of
    independent neurons is close to rank one (``P_ij ~ s_i s_j``), and a
    model without degrees cuts that continuum of strengths into blocks
    that are not communities. On a sparse graph (more than half of the
    pairs exact zeros; NTF factors are not) ``"auto"`` fits the hurdle
    model instead: edges and their weights separately, the edges with or
    without degree correction (``sbm_model="hurdle"`` or ``"hurdle-dc"``
    force one). ``sbm_model="dc"`` forces degree correction;
    ``sbm_model="plain"`` is the earlier model without degrees chosen by
    exact ICL (:func:`neuro.connectome.sbm.fit_weighted_sbm`, Gaussian or
    exponential weights by ``sbm_weights``), which reads strength
    differences as blocks. A block model suits NTF pair factors: they are
    dense, with a core-periphery pattern (strong ties inside the active
    community, weaker ties from its members to every other neuron,
    near-zero ties among the others), which a block model describes as
    blocks while modularity does not split it (Louvain on the full graph
    finds no planted community on the simulator).
``method="louvain"`` or ``"greedy"``
    Weighted modularity maximisation with networkx
    (``louvain_communities``, ``greedy_modularity_communities``) at
    ``resolution``; kept as the usual baseline.

Stability
    Every partition carries a stability score: the mean adjusted Rand index
    between it and the partitions the same method finds on ``n_bootstrap``
    noisier copies of the graph (every weight times a multiplicative
    residual of the degree-corrected fit drawn with replacement; see
    :func:`neuro.connectome.sbm.bootstrap_stability`). A partition with more
    than one community and a stability below ``STABILITY_WARNING`` (0.8)
    raises a one-line ``UserWarning``. On null components the earlier
    model's blocks score 0.5-0.8 and planted communities 0.9-1.

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
import warnings
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from neuro._validation import check_array, check_choice, check_float, check_int
from neuro.connectome.sbm import bootstrap_stability, fit_sbm, fit_weighted_sbm
from neuro.errors import InputError, InputTypeError
from neuro.io import atomic_open, check_overwrite

__all__ = [
    "COMMUNITY_METHODS",
    "SBM_VARIANTS",
    "STABILITY_WARNING",
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
#: Block models accepted as ``sbm_model``.
SBM_VARIANTS = ("auto", "dc", "plain", "hurdle", "hurdle-dc")
#: A partition with more than one community and a stability below this warns.
STABILITY_WARNING = 0.8


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
    max_blocks: int | None = None,
    sbm_weights: str = "gaussian",
    sbm_model: str = "auto",
) -> tuple[np.ndarray, float]:
    """Weighted community partition of ``graph`` and its modularity.

    Parameters
    ----------
    graph : networkx.Graph
        Nodes ``0 .. n-1``; edge attribute ``weight`` (non-negative).
    method : {"sbm", "louvain", "greedy"}, default="sbm"
        Stochastic block model (``sbm_model``), or networkx modularity
        maximisation.
    resolution : float, default=1.0
        Modularity resolution (``"louvain"``, ``"greedy"`` and the reported
        modularity).
    seed : int, default=0
    max_blocks : int, optional
        Largest number of SBM blocks tried (``"sbm"`` only); default: grows
        with the number of nodes (``"auto"``, ``"dc"``:
        :func:`~neuro.connectome.sbm.default_max_blocks`; ``"plain"``: 6).
    sbm_weights : {"gaussian", "exponential"}, default="gaussian"
        Weight distribution of ``sbm_model="plain"``.
    sbm_model : {"auto", "dc", "plain", "hurdle", "hurdle-dc"}, default="auto"
        ``"auto"``: degree-corrected or not, chosen by the criterion
        (:func:`~neuro.connectome.sbm.fit_sbm`; on a sparse graph the
        hurdle model, its edges degree-corrected or not); ``"dc"``:
        degree-corrected; ``"hurdle"`` / ``"hurdle-dc"``: edges and weights
        separately, without / with degree correction of the edges;
        ``"plain"``: the earlier model without degrees, by exact ICL
        (:func:`~neuro.connectome.sbm.fit_weighted_sbm`).

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
    opts = _check_partition_args(method, resolution, seed, max_blocks, sbm_weights, sbm_model)
    labels, q, _ = _partition(graph, opts)
    return labels, q


def _check_partition_args(method, resolution, seed, max_blocks, sbm_weights, sbm_model):
    check_choice("method", method, COMMUNITY_METHODS)
    check_choice("sbm_weights", sbm_weights, ("gaussian", "exponential"))
    check_choice("sbm_model", sbm_model, SBM_VARIANTS)
    return {
        "method": method,
        "resolution": check_float("resolution", resolution, minimum=0.0, strict_minimum=True),
        "seed": check_int("seed", seed),
        "max_blocks": check_int("max_blocks", max_blocks, minimum=1, allow_none=True),
        "sbm_weights": sbm_weights,
        "sbm_model": sbm_model,
    }


def _labels_from(comms, n):
    comms = sorted((sorted(c) for c in comms), key=lambda c: (-len(c), c[0]))
    labels = np.empty(n, dtype=np.int64)
    for k, c in enumerate(comms):
        labels[c] = k
    return labels, comms


def _fit_labels(matrix, opts, seed):
    """Labels of ``matrix`` by the method in ``opts`` (and the SBM fit, else None)."""
    n = len(matrix)
    method, model = opts["method"], opts["sbm_model"]
    if method == "sbm" and model == "plain":
        fit = fit_weighted_sbm(
            matrix, max_blocks=opts["max_blocks"] or 6, seed=seed, weights=opts["sbm_weights"]
        )
        return fit.labels, fit
    if method == "sbm":
        fit = fit_sbm(matrix, model, max_blocks=opts["max_blocks"], seed=seed, n_bootstrap=0)
        return fit.labels, fit
    graph = nx.from_numpy_array(matrix)
    if graph.size(weight="weight") <= 0:
        return np.arange(n), None
    if method == "louvain":
        comms = nx.community.louvain_communities(
            graph, weight="weight", resolution=opts["resolution"], seed=seed
        )
    else:
        comms = nx.community.greedy_modularity_communities(
            graph, weight="weight", resolution=opts["resolution"]
        )
    return _labels_from(comms, n)[0], None


def _partition(graph, opts, n_bootstrap=0):
    """Labels, modularity and a dict of what else the method found (ICL, model, levels, ...)."""
    n = graph.number_of_nodes()
    info = {"icl": None, "sbm_model": None, "levels": None, "stability": None}
    if graph.number_of_edges() == 0 or graph.size(weight="weight") <= 0:
        return np.arange(n), 0.0, info
    matrix = nx.to_numpy_array(graph, nodelist=range(n), weight="weight")
    labels, fit = _fit_labels(matrix, opts, opts["seed"])
    if fit is not None:
        info["icl"] = float(fit.icl)
        if opts["sbm_model"] == "plain":
            info["sbm_model"] = f"plain-{opts['sbm_weights']}"
        else:
            info["sbm_model"] = {"plain": "plain-exponential"}.get(fit.model, fit.model)
            info["levels"] = np.stack(fit.levels)
    if n_bootstrap:

        def refit(m, s):
            return _fit_labels(m, opts, s)[0]

        info["stability"] = bootstrap_stability(matrix, labels, refit, n_bootstrap, opts["seed"])
    labels, comms = _labels_from([np.flatnonzero(labels == k) for k in np.unique(labels)], n)
    q = nx.community.modularity(graph, comms, weight="weight", resolution=opts["resolution"])
    return labels, float(q), info


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
        The SBM's criterion (``method="sbm"``; exact ICL for ``"plain"``), else None.
    sbm_model : str or None
        The block model chosen: ``"dc"`` (degree-corrected),
        ``"plain-exponential"`` (``sbm_model="auto"`` without degrees),
        ``"hurdle"`` / ``"hurdle-dc"`` (edges and weights, for sparse graphs), or
        ``"plain-gaussian"`` / ``"plain-exponential"`` from ``sbm_model="plain"``.
    stability : float or None
        Bootstrap stability of ``labels`` (mean ARI, see the module
        docstring); None when not computed.
    levels : ndarray of shape (n_levels, n_neurons), int, or None
        The SBM hierarchy: ``levels[0]`` is ``labels``, each next row merges
        two blocks of the row above, the last is one block (``sbm_model``
        other than ``"plain"``).
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
    sbm_model: str | None = None
    stability: float | None = None
    levels: np.ndarray | None = None

    def summary(self) -> dict:
        """JSON-ready description."""
        return {
            "component": self.component,
            "method": self.method,
            "sbm_model": self.sbm_model,
            "n_communities": int(self.labels.max() + 1),
            "n_communities_by_level": (
                None if self.levels is None else [int(z.max() + 1) for z in self.levels]
            ),
            "stability": self.stability,
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
    max_blocks: int | None = None,
    sbm_weights: str = "gaussian",
    sbm_model: str = "auto",
    n_bootstrap: int = 5,
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
    max_blocks : int, optional
        Largest number of SBM blocks tried per component (``"sbm"`` only);
        default: grows with ``n_neurons`` (see :func:`partition`).
    sbm_weights : {"gaussian", "exponential"}, default="gaussian"
        Weight distribution of ``sbm_model="plain"``.
    sbm_model : {"auto", "dc", "plain", "hurdle", "hurdle-dc"}, default="auto"
        The block model (``"sbm"`` only; see :func:`partition`).
    n_bootstrap : int, default=5
        Bootstrap replicates of each partition's stability (0: not computed).

    Returns
    -------
    list of ComponentCommunities, one per component

    Warns
    -----
    UserWarning
        A component with more than one community whose stability is below
        ``STABILITY_WARNING``.

    Examples
    --------
    >>> w = np.zeros(15); w[[0, 1, 5]] = 1.0             # pairs (0,1), (0,2), (1,2)
    >>> found = find_communities(w[:, None] + 0.01, 6, n_bootstrap=3)
    >>> np.flatnonzero(found[0].core).tolist(), found[0].labels.tolist()
    ([0, 1, 2], [0, 0, 0, 1, 1, 1])
    >>> found[0].stability
    1.0
    """
    n_neurons = check_int("n_neurons", n_neurons, minimum=2)
    p = check_array(
        "pair_factors", pair_factors, ndim=(1, 2), shape_hint="(n_pairs, rank)", dtype=np.float64
    )
    if p.ndim == 1:
        p = p[:, None]
    opts = _check_partition_args(method, resolution, seed, max_blocks, sbm_weights, sbm_model)
    n_bootstrap = check_int("n_bootstrap", n_bootstrap, minimum=0)
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
        lab, q, info = _partition(g, opts, n_bootstrap)
        k, stab = int(lab.max() + 1), info["stability"]
        if k > 1 and stab is not None and stab < STABILITY_WARNING:
            warnings.warn(
                f"component {r}: {k} communities with bootstrap stability {stab:.2f} "
                f"(< {STABILITY_WARNING}); they may be noise, not communities.",
                UserWarning,
                stacklevel=2,
            )
        out.append(community_result(r, p[:, r], labels, lab, q, method=method, graph=g, **info))
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
    sbm_model: str | None = None,
    stability: float | None = None,
    levels=None,
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
    sbm_model : str or None
    stability : float or None
    levels : array of shape (n_levels, n_neurons), int, optional

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
    if sbm_model is not None:
        g.graph["sbm_model"] = str(sbm_model)
    if stability is not None:
        g.graph["stability"] = float(stability)
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
        None if sbm_model is None else str(sbm_model),
        None if stability is None else float(stability),
        None if levels is None else np.asarray(levels, dtype=np.int64),
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
