"""Weighted stochastic block models for non-negative weight matrices (NTF pair factors).

Two entry points:

- :func:`fit_sbm` (the default of :mod:`neuro.connectome.communities`):
  exponential weights with or without degree correction, the variant and
  the number of blocks chosen by one criterion, a hierarchy of coarser
  levels, and a bootstrap stability score;
- :func:`fit_weighted_sbm`: the earlier model without degrees (Gaussian or
  exponential weights), chosen by exact ICL, described after it.

The degree-corrected model (:func:`fit_sbm`)
    ``W_ij ~ Exponential`` with mean ``theta_i theta_j omega_rs`` for the
    pairs ``i < j`` of blocks ``(r, s) = (z_i, z_j)``: graph-tool's
    "real-exponential" edge covariate with the degree correction on the
    weights themselves (every pair of an NTF factor is an edge, so degree
    correction of edge counts would be void). ``theta`` is normalised to
    geometric mean 1 within each block. Without degrees (``theta = 1``) it
    is the exponential model below. Why degrees: the pair factor of
    independent neurons is close to rank one, ``P_ij ~ s_i s_j``; a model
    without degrees cuts that continuum of strengths into blocks (4-5 per
    component on the simulator without shared drive) and splits real
    communities by strength.

    But a community in an NTF factor is *also* close to rank one (a group of
    neurons with large strengths: core 0.19, core-rest 0.036, rest-rest
    0.006 on the simulator, and 0.036^2 ~ 0.19 x 0.006), so free degrees
    alone would absorb it. What tells a community from a continuum is how
    the degrees are distributed: within a block the log degrees get a
    normal prior, ``log theta_i ~ Normal(0, tau_r^2)`` with ``tau_r``
    estimated per block. A continuum of strengths is one block with a wide
    ``tau``; a group of alike large strengths set apart from the rest is a
    block of its own.

Criterion (nats, larger is better; the same for both variants)
    ``C(z) = ICL_exp(W / theta theta^T, z) - sum_r D_r``, where ``ICL_exp``
    is the exact exponential ICL below (block-pair rates and block
    proportions integrated out) of the weights divided by the
    maximum-likelihood degrees (the Jacobian ``prod 1 / theta_i theta_j``
    is 1 with the normalisation), and ``D_r`` the cost of block ``r``'s
    degrees: a Laplace approximation of their integral under the prior,
    the Fisher information of one ``log theta_i`` being ``I = n - 1``,

        D_r = n_r / 2 log(v_r I) + SS_r / (2 v_r) + 1/2 log n_r,
        SS_r = sum_{i in r} (log theta_i)^2,  v_r = max(SS_r / n_r, 1 / I),

    (``v_r`` is the variance of the estimated log degrees, prior plus
    measurement; the last term is the BIC cost of ``tau_r``). Without
    degrees ``D_r = 0`` and ``C`` is the exact ICL, so the two variants
    and every ``K`` are compared on one scale; ``"auto"`` takes the larger.
    Exact ICL is not available with per-node degrees; this is the integrated
    likelihood with the degrees Laplace-approximated. The weights are
    offset by 0.1 times their mean first (``_FLOOR``): the exponential
    likelihood compares ratios, and without an offset the near-zero pairs
    of a factor (HALS clips to exact zeros) weigh as much as the large
    ones. On the simulator (5 recordings, noise 0.1-0.3) offsets 0.1 and 0.2
    recover all 12 planted communities, 0.05 11 and 0.001 7; the 16 null
    components are one block at all four. Gamma weights with a shape
    estimated from the residuals (less noise than the exponential's unit
    coefficient of variation) were tried and rejected: the small systematic
    departures of null NTF factors from rank one then count as blocks.

Fitting and search
    For each ``K``: node moves as below on ``W / theta theta^T`` with the
    degree costs, alternating with the degrees' maximum likelihood (a
    damped fixed point), from spectral starts (on the degree-normalised
    matrix, rows on the unit sphere), 1-D k-means of the log degrees, a
    split of the best ``K - 1`` labelling and random labellings. ``K``
    grows until the criterion has not improved for 2 consecutive ``K``, at
    most :func:`default_max_blocks` (``ceil(2 sqrt(n))``; no cap at 6).
    Then any merge of two blocks that improves the criterion is taken and
    the nodes moved again (the merge half of graph-tool's merge-split).
Node moves (all models)
    Each node in turn, in random order, moves to the block that most
    increases the criterion, until a sweep moves none; no move may empty a
    block. The criterion is a sum over block pairs and blocks of terms of
    block sums (weights, edges, pairs, log degrees), and moving node ``i``
    from ``a`` to ``b`` changes the pairs of rows ``a`` and ``b`` only: the
    change for every target is the gain of inserting ``i`` into ``b`` from
    the sums without ``i``, less that of putting it back, ``K x K`` terms.
    The nodes ahead are evaluated in chunks in one NumPy call, the chunk
    growing while none of them moves and cut at the first that does (so the
    moves are those of one node at a time); an accepted move updates the
    sums in ``O(n)``. On four 190-neuron NTF components this is 5 times
    faster than recomputing the criterion for each candidate move (17 s to
    3.3 s, 99 s to 19 s with 5 bootstrap refits; the same partitions).
Sparse graphs: the hurdle model (``model="hurdle"``, ``"hurdle-dc"``)
    A graph that is mostly exact zeros is not exponential weights on every
    pair (every zero is then an outlier, and blocks multiply); as graph-tool
    does, edges ``A_ij = [W_ij > 0]`` and the weights of the edges are
    modelled separately. Weights: ``W_ij | A_ij = 1 ~ Exponential`` with a
    mean per block pair, the exact exponential ICL above on the edges only
    (prior mean: the mean edge weight). Edges: the microcanonical SBM
    (Peixoto, Phys. Rev. E 95, 012317, 2017), every parameter integrated:
    the ``E`` edges fall into block pairs with counts ``e_rs`` uniform
    among the ``multiset(K(K+1)/2, E)`` possibilities, then

    - ``"hurdle"`` (no degrees): ``P(A | e, z) = prod_{r<=s} 1 / C(P_rs, e_rs)``,
      the simple graphs with these counts equally likely;
    - ``"hurdle-dc"``: ``P(A | k, e, z) = prod_{r<s} e_rs! prod_r e_rr!!
      prod_i k_i! / prod_r e_r!`` (``e_rr`` twice the edges within ``r``,
      ``e_r`` the sum of the degrees ``k_i`` in ``r``; the configuration
      model within block pairs, which also puts mass on multigraphs), the
      degrees of a block drawn as a histogram uniform among the ``q(e_r,
      n_r)`` partitions of ``e_r`` into at most ``n_r`` parts, then
      assigned to the nodes, ``P(k | e, z) = prod_r prod_k eta_rk! / (n_r!
      q(e_r, n_r))`` (graph-tool's default "distributed" degree prior;
      ``q`` tabulated exactly, the uniform ``1 / multiset(n_r, e_r)``
      beyond 2e7 table entries).

    The criterion is ``log P(A | z) + log p(W | A, z)`` plus the same
    label term, exact for both, so ``"auto"`` compares the two. It chooses
    them where more than half of the pairs are exact zeros (``_SPARSE``),
    and the dense variants elsewhere: those model the offset weights,
    under which an exact zero has no probability mass, so the two families
    are not on one scale and the data decide which applies. NTF factors
    stay with the dense models (HALS clips 24-30% of the pairs of a
    190-neuron factor to zero). Saying which node has which degree costs
    about ``n`` times the entropy of the degree distribution, so on the
    weighted LFR graphs of ``benchmarks/partition.py`` (degrees 8-45) the
    criterion prefers the hurdle without degrees, which gives the hubs
    blocks of their own (ARI 0.85-0.91 at mixing 0.1-0.3, Louvain
    0.93-1.00); ``model="hurdle-dc"`` recovers the communities there
    (ARI 0.90-1.00).
Hierarchy
    ``SBMFit.levels``: the chosen labelling, then each coarser level merging
    the two blocks whose merge costs the least criterion, down to one block:
    blocks of blocks, on the same criterion. graph-tool's nested model fits
    an SBM to the block graph instead; with the few blocks of an NTF
    component (2-10) a block-level SBM of ``K(K-1)/2`` pairs has too little
    data to choose anything but one group, so the greedy merge tree is the
    informative version.
Stability
    :func:`bootstrap_stability`: the mean ARI between the partition and
    refits on the weights times multiplicative residuals of the
    degree-corrected fit drawn with replacement (the data's noise added
    once more, about a split half's extra variance). Only the pair factor is
    needed. On the simulator: null components partitioned by the model
    without degrees score 0.5-0.8, planted communities 0.9-1.
Why our own code
    graph-tool (the paper's) is not on PyPI (conda or system packages, a
    C++/Boost build). graspologic has an SBM and a DC-SBM estimator
    (``graspologic.models``) for a given labelling of binary or count
    graphs, and finds labels by Gaussian mixtures on spectral embeddings:
    no exponential weights, no criterion comparing degree correction with
    none, and a heavy dependency set. leidenalg/igraph and scikit-network
    optimise modularity-type quality functions (Leiden, Louvain,
    propagation): fast and maintained, but modularity is exactly what fails
    on NTF factors (it does not split a core-periphery pattern, and it cuts
    noise into communities; the stability warning catches the latter) and
    they have no model selection; networkx's Louvain and greedy modularity
    are kept as that baseline. The model here is NumPy and SciPy, fits a
    30-neuron component in 0.1-0.5 s and a 190-neuron one in about 1 s,
    and can be read and tested top to bottom; graph-tool remains the
    reference for large sparse graphs.

The model without degrees (:func:`fit_weighted_sbm`)

    Nodes (neurons) ``i = 0 .. N-1`` fall into ``K`` blocks, ``z_i``. The
    weights of the unordered pairs ``i < j`` are independent given ``z``, and
    their distribution depends only on the two blocks ``(r, s) = (z_i, z_j)``:

    ``weights="gaussian"`` (default)
        ``W_ij ~ Normal(mu_rs, sigma_rs^2)``: a mean and a variance per block
        pair (heteroscedastic, so a strongly tied block may also be a
        variable one);
    ``weights="exponential"``
        ``W_ij ~ Exponential`` with mean ``mu_rs`` (one parameter per block
        pair, standard deviation equal to the mean).

    The block structure is not assumed assortative: a block may be weakly
    tied to itself and strongly to another, so a core-periphery pattern (a
    core of strongly tied neurons, weaker core-rest ties, near-zero ties
    among the rest) is two blocks, where modularity sees no communities.
    This is the weighted SBM of Aicher, Jacobs & Clauset (J. Complex Netw.
    2015), with the normal or exponential weight distribution. Unlike the
    degree-corrected model used by Dyballa et al. (graph-tool) it has no
    per-neuron degree parameter: in an NTF pair factor the strength of a
    neuron is part of the signal (the members of the active community have
    the large strengths), and free degrees would absorb the core-periphery
    contrast; but without degrees a continuum of strengths is cut into
    blocks too (see :func:`fit_sbm`, whose degree prior keeps the contrast).

Priors and the criterion (without degrees)
    Every parameter gets a conjugate prior set from the off-diagonal weights
    of ``W``, with mean ``m`` and variance ``v``: for ``"gaussian"``,
    ``mu_rs | sigma_rs^2 ~ Normal(m, sigma_rs^2)`` and
    ``1 / sigma_rs^2 ~ Gamma(shape=1, rate=v)`` (Normal-Gamma, about two
    pseudo-pairs that look like the graph as a whole); for ``"exponential"``,
    the rate ``1 / mu_rs ~ Gamma(shape=1, rate=m)``. Block proportions get a
    ``Dirichlet(1/2, ..., 1/2)`` prior. All of them integrate out in closed
    form, so each labelling ``z`` has an *exact* integrated complete-data
    likelihood (ICL; Côme & Latouche, Stat. Model. 2015),

        ICL(z) = sum_{r<=s} log p(W_rs)                  (block-pair marginals)
                 + log Gamma(K/2) - K log Gamma(1/2)
                 + sum_r log Gamma(n_r + 1/2) - log Gamma(N + K/2),

    where ``W_rs`` are the ``P_rs`` pair weights between blocks ``r`` and
    ``s`` (within a block: its unordered pairs), with sum ``S``, sum of
    squares ``Q`` and ``SS = Q - S^2 / P``:

    - gaussian: ``log p = -P/2 log(2 pi) - 1/2 log(1 + P) + log v
      - (1 + P/2) log b + log Gamma(1 + P/2)``, with
      ``b = v + SS/2 + P (S/P - m)^2 / (2 (1 + P))``;
    - exponential: ``log p = log m + log Gamma(1 + P) - (1 + P) log(m + S)``.

    No parameter is a point estimate, so no BIC penalty is added: the ICL
    itself trades fit against the number of blocks, and ``K`` is the value
    with the largest ICL. Both models are invariant to the scale of ``W``
    (NTF factors have an arbitrary scale): rescaling ``W`` shifts every ICL
    by the same constant. The prior makes the Gaussian model blind to
    structure among weights whose spread is far below the graph's (it does
    not split near-zero weights into blocks); the exponential model, whose
    within-block spread equals its mean, is more conservative for blocks of
    large weights (on the simulator it misses weak cores the Gaussian model
    finds) but resolves structure among small weights.

Fitting (without degrees)
    For each ``K`` in ``1 .. max_blocks``: greedy coordinate ascent on the
    labels (each node in turn, in random order, moves to the block that most
    increases the ICL, updated incrementally from per-block sums; no move may
    empty a block) until a sweep moves no node, from ``n_init`` starts: the
    spectral start (k-means on the leading ``K`` eigenvectors of ``W``), the
    best ``K - 1`` solution with its largest block split by that block's
    leading eigenvector, and random labellings. The best labelling over
    starts and ``K`` is returned. One sweep costs ``O(N (N + K^2))`` time and
    ``O(N K)`` memory besides ``W`` (see "Node moves" above).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> z = np.repeat([0, 1], [5, 9])
>>> mean = np.array([[1.0, 0.2], [0.2, 0.02]])[z][:, z]
>>> w = np.triu(mean * rng.uniform(0.7, 1.3, mean.shape), 1); w = w + w.T
>>> fit = fit_weighted_sbm(w, seed=0)
>>> fit.n_blocks, fit.labels.tolist()
(2, [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
>>> fit_weighted_sbm(w, weights="exponential").n_blocks
2
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import gammaln

from neuro._validation import check_array, check_choice, check_int
from neuro.errors import InputError

__all__ = [
    "SBM_MODELS",
    "WEIGHT_MODELS",
    "SBMFit",
    "adjusted_rand",
    "bootstrap_stability",
    "default_max_blocks",
    "fit_sbm",
    "fit_weighted_sbm",
    "sbm_criterion",
    "sbm_icl",
]


@dataclass
class SBMFit:
    """Result of :func:`fit_weighted_sbm`.

    Attributes
    ----------
    labels : ndarray of shape (n_nodes,), int
        Block of each node, blocks numbered by decreasing size.
    n_blocks : int
    icl : float
        Exact ICL of ``labels`` (natural log).
    block_means : ndarray of shape (n_blocks, n_blocks)
        Mean weight of the pairs between (within) blocks; NaN for a block
        pair without pairs (a block of one node with itself).
    icl_by_blocks : dict of int to float
        Best ICL reached for each number of blocks tried (of the chosen model).
    degree_corrected : bool
        Whether the chosen model has degrees (:func:`fit_sbm`; False for
        :func:`fit_weighted_sbm`).
    theta : ndarray of shape (n_nodes,) or None
        Degrees of the degree-corrected model (geometric mean 1 in each
        block); ones without degrees; None from :func:`fit_weighted_sbm`.
    levels : list of ndarray of shape (n_nodes,)
        The hierarchy (:func:`fit_sbm`): ``levels[0]`` is ``labels``, each
        next level merges the two blocks of the previous one whose merge
        costs the least criterion, down to one block.
    level_icl : list of float
        The criterion of each level.
    icl_by_model : dict of str to dict
        ``{variant: {K: criterion}}`` for the variants tried (``"plain"`` and
        ``"dc"``, or ``"hurdle"`` and ``"hurdle-dc"``, under ``"auto"``).
    stability : float or None
        :func:`bootstrap_stability` of ``labels`` (None when not computed).
    shape : float or None
        Gamma shape of the weights used by :func:`fit_sbm` (1: exponential).
    model : str or None
        The variant :func:`fit_sbm` chose: ``"plain"``, ``"dc"``,
        ``"hurdle"`` or ``"hurdle-dc"`` (None from :func:`fit_weighted_sbm`).
    """

    labels: np.ndarray
    n_blocks: int
    icl: float
    block_means: np.ndarray
    icl_by_blocks: dict = field(default_factory=dict)
    degree_corrected: bool = False
    theta: np.ndarray | None = None
    levels: list = field(default_factory=list)
    level_icl: list = field(default_factory=list)
    icl_by_model: dict = field(default_factory=dict)
    stability: float | None = None
    shape: float | None = None
    model: str | None = None


def _check_matrix(matrix) -> np.ndarray:
    w = check_array("matrix", matrix, ndim=2, shape_hint="(n_nodes, n_nodes)", dtype=np.float64)
    if w.shape[0] != w.shape[1]:
        raise InputError(f"matrix must be square (n_nodes, n_nodes); got shape {w.shape}.")
    if (w < 0).any():
        raise InputError("matrix must hold non-negative weights; it holds negative ones.")
    if not np.allclose(w, w.T):
        raise InputError(
            "matrix must be symmetric (an undirected weighted graph); use (W + W.T) / 2."
        )
    w = w.copy()
    np.fill_diagonal(w, 0.0)
    return w


WEIGHT_MODELS = ("gaussian", "exponential")


def _prior(w: np.ndarray, weights: str) -> dict:
    """Hyperparameters from the off-diagonal weights (see the module docstring)."""
    off = w[~np.eye(len(w), dtype=bool)]
    return {"weights": weights, "mean": float(off.mean()), "var": float(off.var())}


def _block_terms(s, q, p, prior) -> np.ndarray:
    """Log marginal likelihood of each block pair from unordered sums, squares and counts."""
    if prior["weights"] == "exponential":
        shape = prior.get("shape", 1.0)  # Gamma weights of this shape (1: exponential)
        beta = prior["mean"] / shape
        return np.log(beta) + gammaln(1.0 + shape * p) - (1.0 + shape * p) * np.log(beta + s)
    m0, b0 = prior["mean"], prior["var"]  # kappa0 = a0 = 1
    safe = np.where(p > 0, p, 1.0)
    ss = np.clip(q - s * s / safe, 0.0, None)
    kn, an = 1.0 + p, 1.0 + p / 2.0
    bn = b0 + 0.5 * ss + p * (s / safe - m0) ** 2 / (2.0 * kn)
    bn = np.where(p > 0, bn, b0)
    return (
        -0.5 * p * np.log(2 * np.pi) - 0.5 * np.log(kn) + np.log(b0) - an * np.log(bn) + gammaln(an)
    )


def _label_term(sizes: np.ndarray) -> np.ndarray:
    """Log Dirichlet(1/2)-multinomial probability of block sizes (last axis = blocks)."""
    k = sizes.shape[-1]
    n = sizes.sum(-1)
    return gammaln(k / 2.0) - k * gammaln(0.5) + gammaln(sizes + 0.5).sum(-1) - gammaln(n + k / 2.0)


def _unordered(s_ord: np.ndarray, q_ord: np.ndarray, sizes: np.ndarray):
    """Unordered pair sums, sums of squares and counts from ordered block sums (stackable)."""
    k = sizes.shape[-1]
    eye = np.eye(k, dtype=bool)
    s = np.where(eye, s_ord / 2.0, s_ord)
    q = np.where(eye, q_ord / 2.0, q_ord)
    outer = sizes[..., :, None] * sizes[..., None, :]
    p = np.where(eye, (outer - sizes[..., :, None]) / 2.0, outer)
    return s, q, p


def _icl(s_ord, q_ord, sizes, prior) -> np.ndarray:
    k = sizes.shape[-1]
    upper = np.triu(np.ones((k, k), dtype=bool))
    s, q, p = _unordered(s_ord, q_ord, sizes)
    return (_block_terms(s, q, p, prior) * upper).sum((-2, -1)) + _label_term(sizes)


def sbm_icl(matrix, labels, weights: str = "gaussian") -> float:
    """Exact ICL of a labelling under the weighted SBM (see the module docstring).

    Parameters
    ----------
    matrix : array of shape (n_nodes, n_nodes)
        Symmetric, non-negative weights (the diagonal is ignored).
    labels : array of shape (n_nodes,), int
        Block of each node; blocks are the distinct values.
    weights : {"gaussian", "exponential"}, default="gaussian"
        The weight distribution within a block pair.

    Examples
    --------
    >>> w = np.array([[0, 1, 0.1], [1, 0, 0.1], [0.1, 0.1, 0]])
    >>> sbm_icl(w, [0, 0, 1]) > sbm_icl(w, [0, 1, 1])
    True
    """
    w = _check_matrix(matrix)
    check_choice("weights", weights, WEIGHT_MODELS)
    labels = check_array("labels", labels, ndim=1, shape_hint="(n_nodes,)")
    _, z = np.unique(labels, return_inverse=True)
    if len(z) != len(w):
        raise InputError(f"labels must have one entry per node ({len(w)}); got {len(z)}.")
    prior = _prior(w, weights)
    if prior["mean"] <= 0 or prior["var"] <= 0:
        raise InputError(
            "matrix has no positive weight or all its weights are equal; the ICL is undefined."
        )
    onehot = np.eye(int(z.max()) + 1)[z]
    return float(_icl(onehot.T @ w @ onehot, onehot.T @ (w * w) @ onehot, onehot.sum(0), prior))


@dataclass
class _Spec:
    """A block model as the node moves see it (see :class:`_Moves`).

    The criterion of labels ``z`` is ``sum_{r<=s} pair(U)[r, s] + sum_r block(L, n)[r]
    + label(n) + const(K)``: ``U`` (K, K, c + 1) holds the unordered block-pair sums of
    the ``c`` matrices ``mats`` (each pair once, a block's own pairs once) and, last,
    the block-pair counts of node pairs; ``L`` (K, d) the block sums of the node values
    ``vals`` (n, d) and ``n`` the block sizes.
    """

    mats: list
    pair: object  # pair(U, diag) -> terms (..., K, K); diag: bool (K, K), True on r == s
    vals: np.ndarray | None = None
    block: object = None  # block(L, sizes) -> terms (..., K)
    const: object = None  # const(k) -> float


_CHUNK = 4  # nodes evaluated together after a move (the chunk then doubles, to 256)


class _Moves:
    """Block statistics of one labelling, updated in place by node moves.

    Moving node ``i`` out of its block ``a`` and into block ``b`` changes the block
    pairs of row and column ``a`` and ``b`` only, so the change of the criterion for
    every target ``b`` is the gain of inserting ``i`` into ``b`` (from the statistics
    without ``i``) minus the gain of putting it back into ``a``: ``K x K`` terms per
    node, evaluated for a chunk of nodes at once, and each accepted move updates the
    statistics in ``O(n c + K c)`` (the nodes' sums to each block included).
    """

    def __init__(self, spec: _Spec, z: np.ndarray, k: int):
        self.spec, self.k, self.z = spec, k, z.copy()
        onehot = np.eye(k)[self.z]
        self.mats = np.stack(spec.mats, -1)  # (n, n, c)
        self.x = np.einsum("ijc,jk->ikc", self.mats, onehot)  # (n, K, c): node i to block k
        self.u_ord = np.einsum("ik,ilc->klc", onehot, self.x)  # ordered block-pair sums
        self.sizes = onehot.sum(0)
        self.eye = np.eye(k)
        self.diag = np.eye(k, dtype=bool)
        self.upper = np.triu(np.ones((k, k), dtype=bool))
        self._u = None  # unordered sums and counts of the current labels (cached)
        if spec.vals is not None:
            self.l = onehot.T @ spec.vals

    def _full(self, u_ord, sizes):
        """Unordered sums and pair counts, stacked on the last axis (stackable)."""
        half = np.where(self.diag[..., None], 0.5, 1.0)
        outer = sizes[..., :, None] * sizes[..., None, :]
        pairs = np.where(self.diag, (outer - sizes[..., :, None]) / 2.0, outer)
        return np.concatenate([u_ord * half, pairs[..., None]], -1)

    def criterion(self) -> float:
        spec = self.spec
        terms = spec.pair(self._full(self.u_ord, self.sizes), self.diag)
        out = float((terms * self.upper).sum()) + float(_label_term(self.sizes))
        if spec.block is not None:
            out += float(spec.block(self.l, self.sizes).sum())
        if spec.const is not None:
            out += spec.const(self.k)
        return out

    def deltas(self, nodes: np.ndarray) -> np.ndarray:
        """Change of the criterion (C, K) for moving each of ``nodes`` to each block."""
        spec = self.spec
        a = self.z[nodes]
        rows = np.arange(len(nodes))
        ea = self.eye[a]  # (C, K)
        rest = self.sizes - ea  # sizes without the node
        x = np.empty((*rest.shape, self.x.shape[-1] + 1))  # (C, K, c + 1)
        x[..., :-1] = self.x[nodes]
        x[..., -1] = rest
        if self._u is None:
            self._u = self._full(self.u_ord, self.sizes)
        u_out = np.repeat(self._u[None], len(nodes), 0)  # row and column a lose the node
        u_out[rows, a] -= x
        u_out[rows, :, a] -= x
        u_out[rows, a, a] += x[rows, a]
        u_in = u_out + x[:, None]  # row b (each b) gains the node
        gain = (spec.pair(u_in, self.diag) - spec.pair(u_out, self.diag)).sum(-1)
        gain = gain + np.log(rest + 0.5)  # label term: Gamma(n + 1/2) of the target
        if spec.block is not None:
            v = spec.vals[nodes][:, None, :]  # (C, 1, d)
            l_out = self.l[None] - ea[..., None] * v
            gain = gain + spec.block(l_out + v, rest + 1.0) - spec.block(l_out, rest)
        delta = gain - gain[rows, a][:, None]
        delta[self.sizes[a] <= 1] = -np.inf  # no move may empty a block
        return delta

    def move(self, i: int, b: int) -> None:
        a = self.z[i]
        self._u = None
        xi = self.x[i].copy()
        for blk, sign in ((a, -1.0), (b, 1.0)):
            self.u_ord[blk] += sign * xi
            self.u_ord[:, blk] += sign * xi
        self.x[:, a] -= self.mats[:, i]
        self.x[:, b] += self.mats[:, i]
        self.sizes[a] -= 1.0
        self.sizes[b] += 1.0
        if self.spec.vals is not None:
            self.l[a] -= self.spec.vals[i]
            self.l[b] += self.spec.vals[i]
        self.z[i] = b

    def climb(self, rng, max_sweeps: int, tol: float = 1e-10):
        """Greedy node moves in random order until a sweep moves none; returns (z, criterion).

        Each node in turn moves to the block that most increases the criterion
        (the same moves as evaluating one node at a time): the nodes ahead are
        evaluated in chunks from the current statistics, a chunk growing while
        no node in it moves and shrinking after a move.
        """
        n = len(self.z)
        for _ in range(max_sweeps):
            order = rng.permutation(n)
            pos, size, moved = 0, _CHUNK, 0
            while pos < n:
                chunk = order[pos : pos + size]
                delta = self.deltas(chunk)
                best = delta.argmax(1)
                gain = delta[np.arange(len(chunk)), best]
                hits = np.flatnonzero(gain > tol)
                if not len(hits):
                    pos += len(chunk)
                    size = min(2 * size, 256)
                    continue
                first = hits[0]
                self.move(int(chunk[first]), int(best[first]))
                moved += 1
                pos += first + 1
                size = _CHUNK
            if not moved:
                break
        return self.z.copy(), self.criterion()


def _dense_spec(w, prior, logt=None) -> _Spec:
    """The weighted SBM of ``prior`` (Gaussian or Gamma/exponential), degree prior with ``logt``."""
    gaussian = prior["weights"] == "gaussian"
    mats = [w, w * w] if gaussian else [w]

    if gaussian:

        def pair(u, diag):
            return _block_terms(u[..., 0], u[..., 1], u[..., -1], prior)

    else:  # _block_terms of the Gamma(shape) weights, its constants once
        shape = prior.get("shape", 1.0)
        beta = prior["mean"] / shape
        log_beta = np.log(beta)

        def pair(u, diag):
            a = 1.0 + shape * u[..., -1]
            return log_beta + gammaln(a) - a * np.log(beta + u[..., 0])

    if logt is None:
        return _Spec(mats, pair)
    info = prior["info"]

    def block(lsum, sizes):
        return -_degree_cost_blocks(lsum[..., 0], lsum[..., 1], sizes, info)

    return _Spec(mats, pair, np.stack([logt, logt**2], 1), block)


def _climb(w, z, k, prior, rng, max_sweeps, logt=None):
    """Greedy node moves from labels ``z`` (all ``k`` blocks non-empty); returns (z, icl).

    With ``logt`` (log degrees on a common scale) the score also charges the
    degree prior of the degree-corrected model (:func:`_degree_cost`).
    """
    return _Moves(_dense_spec(w, prior, logt), z, k).climb(rng, max_sweeps)


def _kmeans(x, k, rng, n_iter=50):
    """Plain Lloyd k-means with k-means++ seeding; returns labels."""
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.min([((x - c) ** 2).sum(1) for c in centres], axis=0)
        total = d.sum()
        idx = rng.integers(len(x)) if total <= 0 else rng.choice(len(x), p=d / total)
        centres.append(x[idx])
    centres = np.array(centres)
    z = np.zeros(len(x), dtype=np.int64)
    for it in range(n_iter):
        z_new = ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        if it > 0 and np.array_equal(z_new, z):
            break
        z = z_new
        for c in range(k):
            if (z == c).any():
                centres[c] = x[z == c].mean(0)
    return z


def _fill_empty(z, k, rng):
    """Give every empty block one node taken from a block with more than one."""
    z = z.copy()
    for b in range(k):
        if not (z == b).any():
            counts = np.bincount(z, minlength=k)
            donors = np.flatnonzero(counts[z] > 1)
            z[rng.choice(donors)] = b
    return z


def _split_largest(w, z, k):
    """Split the largest block of a ``k - 1`` labelling by the sign of its leading eigenvector."""
    z = z.copy()
    big = np.flatnonzero(z == np.bincount(z).argmax())
    sub = w[np.ix_(big, big)]
    sub = sub - sub.mean()
    vec = np.linalg.eigh(sub)[1][:, -1]
    side = vec > np.median(vec)
    if side.all() or not side.any():
        side = np.arange(len(big)) < len(big) // 2
    z[big[side]] = k - 1
    return z


def fit_weighted_sbm(
    matrix,
    n_blocks: int | None = None,
    max_blocks: int = 6,
    n_init: int = 6,
    max_sweeps: int = 50,
    seed: int = 0,
    weights: str = "gaussian",
) -> SBMFit:
    """Fit the exponential-weight SBM to a symmetric non-negative matrix, by exact ICL.

    Parameters
    ----------
    matrix : array of shape (n_nodes, n_nodes)
        Symmetric, non-negative weights; the diagonal is ignored.
    n_blocks : int, optional
        Fix the number of blocks; default: the one with the largest ICL
        among ``1 .. max_blocks``.
    max_blocks : int, default=6
        Largest number of blocks tried (capped at ``n_nodes``).
    n_init : int, default=6
        Starts per number of blocks (spectral, split of the previous best,
        and random ones; at least the first two are used).
    max_sweeps : int, default=50
        Sweeps over all nodes per start, at most.
    seed : int, default=0
        Seeds the random starts and the order of node moves.
    weights : {"gaussian", "exponential"}, default="gaussian"
        The weight distribution within a block pair (module docstring).

    Returns
    -------
    SBMFit
    """
    w = _check_matrix(matrix)
    n = len(w)
    if n < 2:
        raise InputError(f"matrix must have at least 2 nodes; got {n}.")
    n_blocks = check_int("n_blocks", n_blocks, minimum=1, maximum=n, allow_none=True)
    max_blocks = check_int("max_blocks", max_blocks, minimum=1)
    n_init = check_int("n_init", n_init, minimum=1)
    max_sweeps = check_int("max_sweeps", max_sweeps, minimum=1)
    seed = check_int("seed", seed)
    check_choice("weights", weights, WEIGHT_MODELS)
    prior = _prior(w, weights)
    if prior["mean"] <= 0 or prior["var"] <= 0:  # no edges, or all equal: one block
        return SBMFit(np.zeros(n, dtype=np.int64), 1, 0.0, np.zeros((1, 1)), {1: 0.0})
    rng = np.random.default_rng(seed)
    ks = [n_blocks] if n_blocks is not None else list(range(1, min(max_blocks, n) + 1))
    evals, evecs = np.linalg.eigh(w)
    order = np.argsort(-np.abs(evals))
    best_by_k, results = {}, {}
    previous = None
    for k in range(1, max(ks) + 1):
        starts = []
        if k == 1:
            starts.append(np.zeros(n, dtype=np.int64))
        else:
            starts.append(_fill_empty(_kmeans(evecs[:, order[:k]], k, rng), k, rng))
            if previous is not None:
                starts.append(_split_largest(w, previous, k))
            while len(starts) < max(n_init, 2):
                starts.append(_fill_empty(rng.integers(k, size=n), k, rng))
        runs = [_climb(w, z0, k, prior, rng, max_sweeps) for z0 in starts]
        z, icl = max(runs, key=lambda r: r[1])
        previous = z
        if k in ks:
            best_by_k[k] = icl
            results[k] = z
    k_best = max(best_by_k, key=best_by_k.get)
    z = results[k_best]
    # renumber blocks by decreasing size (ties: smallest node first)
    blocks = sorted((np.flatnonzero(z == b) for b in np.unique(z)), key=lambda m: (-len(m), m[0]))
    labels = np.empty(n, dtype=np.int64)
    for b, members in enumerate(blocks):
        labels[members] = b
    onehot = np.eye(k_best)[labels]
    sizes = onehot.sum(0)
    s, _, p = _unordered(onehot.T @ w @ onehot, onehot.T @ w @ onehot, sizes)
    s = np.triu(s) + np.triu(s, 1).T
    p = np.triu(p) + np.triu(p, 1).T
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(p > 0, s / np.where(p > 0, p, 1), np.nan)
    return SBMFit(labels, k_best, float(best_by_k[k_best]), means, best_by_k)


# ----------------------------------------------------------------------------- degree correction
SBM_MODELS = ("auto", "dc", "plain", "hurdle", "hurdle-dc")
_FLOOR = 0.1  # weights are offset by this fraction of their mean (module docstring)
_SHAPE = 1.0  # Gamma shape of the weights: 1 is the exponential (module docstring)
_SPARSE = 0.5  # "auto" fits the hurdle variants when more pairs than this are exact zeros
_PATIENCE = 2  # K grows until the criterion has not improved for this many consecutive K


def adjusted_rand(a, b) -> float:
    """Adjusted Rand index of two labellings (1 when both are one block, as scikit-learn).

    Examples
    --------
    >>> adjusted_rand([0, 0, 1, 1], [1, 1, 0, 0]), adjusted_rand([0, 0, 0], [0, 0, 0])
    (1.0, 1.0)
    """
    _, a = np.unique(np.asarray(a), return_inverse=True)
    _, b = np.unique(np.asarray(b), return_inverse=True)
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1.0)

    def pairs(x):
        return float(np.sum(x * (x - 1) / 2.0))

    index, rows, cols, total = pairs(table), pairs(table.sum(1)), pairs(table.sum(0)), pairs(len(a))
    expected = rows * cols / total if total > 0 else 0.0
    best = (rows + cols) / 2.0
    if best == expected:
        return 1.0
    return float((index - expected) / (best - expected))


def _eprior(w: np.ndarray, shape: float) -> dict:
    """Prior of the Gamma(``shape``) weight model (``shape=1``: exponential)."""
    prior = _prior(w, "exponential")
    prior["shape"] = shape
    prior["info"] = shape * (len(w) - 1)
    return prior


def _floored(w: np.ndarray) -> np.ndarray:
    off = ~np.eye(len(w), dtype=bool)
    out = w + _FLOOR * w[off].mean()
    np.fill_diagonal(out, 0.0)
    return out


def _exp_icl(w, z, k, shape) -> float:
    """Exact exponential-weight ICL of labels ``z`` (all ``k`` blocks non-empty)."""
    onehot = np.eye(k)[z]
    s_ord = onehot.T @ w @ onehot
    return float(_icl(s_ord, s_ord, onehot.sum(0), _eprior(w, shape)))


def _fit_theta(w, z, k, theta=None, n_iter=200, tol=1e-7) -> np.ndarray:
    """Maximum-likelihood degrees of the exponential DC model for labels ``z``.

    Damped fixed point ``theta_i <- sqrt(theta_i * sum_j W_ij / (theta_j omega_rs) / (n - 1))``
    (the undamped update of a symmetric model oscillates), with ``omega`` at its
    maximum for the current ``theta`` and ``theta`` normalised to geometric
    mean 1 within each block (the scale of a block belongs to ``omega``).
    """
    n = len(w)
    onehot = np.eye(k)[z]
    sizes = onehot.sum(0)
    count = np.outer(sizes, sizes) - np.diag(sizes)
    theta = np.ones(n) if theta is None else theta.copy()
    safe = np.where(count > 0, count, 1.0)
    for _ in range(n_iter):
        scaled = onehot / theta[:, None]
        to_blocks = w @ scaled  # sum_{j in t} W_ij / theta_j
        omega = np.where(count > 0, (scaled.T @ to_blocks) / safe, 1.0)
        fixed = (to_blocks / omega[z]).sum(1) / (n - 1)
        log_new = 0.5 * (np.log(theta) + np.log(fixed))
        log_new -= (onehot.T @ log_new / sizes)[z]
        done = np.abs(log_new - np.log(theta)).max() < tol
        theta = np.exp(log_new)
        if done:
            break
    return theta


def _degree_cost(l1, l2, sizes, info):
    """Cost (nats) of the degrees of each block under their log-normal prior (stackable).

    ``l1``, ``l2``: per-block sums of ``log theta`` and of its square; ``info``:
    the Fisher information of one ``log theta_i``, ``shape * (n - 1)``; see the
    module docstring (degree prior).
    """
    return _degree_cost_blocks(l1, l2, sizes, info).sum(-1)


def _degree_cost_blocks(l1, l2, sizes, info):
    """The terms of :func:`_degree_cost`, one per block (last axis)."""
    safe = np.maximum(sizes, 1.0)
    ss = np.clip(l2 - l1 * l1 / safe, 0.0, None)
    var = np.maximum(ss / safe, 1.0 / info)
    return 0.5 * sizes * np.log(var * info) + ss / (2.0 * var) + 0.5 * np.log(safe)


def _common_log_theta(w, z, k, theta):
    """Log degrees on a scale shared by all blocks: ``theta_i sqrt(omega_rr)``."""
    omega = _block_means(w / np.outer(theta, theta), z)
    level = np.sqrt(np.where(np.isfinite(np.diag(omega)), np.diag(omega), np.nanmean(omega)))
    return np.log(theta * level[z])


def _dc_criterion(w, z, k, theta, shape):
    """Criterion of the DC model at labels ``z`` and ML degrees ``theta`` (per-block normalised)."""
    logt = np.log(theta)
    onehot = np.eye(k)[z]
    cost = _degree_cost(onehot.T @ logt, onehot.T @ logt**2, onehot.sum(0), shape * (len(w) - 1))
    return _exp_icl(w / np.outer(theta, theta), z, k, shape) - float(cost)


def _climb_dc(w, z, k, shape, rng, max_sweeps, theta=None, max_rounds=10):
    """Alternate degrees (ML) and node moves on ``W / (theta theta^T)``; returns (z, crit, theta)."""
    for _ in range(max_rounds):
        theta = _fit_theta(w, z, k, theta)
        logt = _common_log_theta(w, z, k, theta)
        common = np.exp(logt)
        wt = w / np.outer(common, common)
        z_new, _ = _climb(wt, z, k, _eprior(wt, shape), rng, max_sweeps, logt)
        if np.array_equal(z_new, z):
            break
        z = z_new
        theta = np.exp(logt)
    theta = _fit_theta(w, z, k, theta)
    return z, _dc_criterion(w, z, k, theta, shape), theta


def _hurdle_spec(w, dc) -> _Spec:
    """The hurdle model: edge presence (microcanonical, with or without degrees) and weights.

    See the module docstring ("Sparse graphs"). ``w`` holds the raw weights;
    its exact zeros are the non-edges.
    """
    adj = (w > 0).astype(np.float64)
    prior = {"weights": "exponential", "mean": float(w[w > 0].mean())}
    n_edges = adj.sum() / 2.0
    degrees = adj.sum(1)

    def pair(u, diag):
        s, e, p = u[..., 0], u[..., 1], u[..., 2]
        out = _block_terms(s, s, e, prior)  # exponential weights of the edges
        if dc:  # e_rs! between blocks, e_rr!! = 2^m m! within one
            return out + gammaln(e + 1.0) + np.where(diag, e * np.log(2.0), 0.0)
        return out - gammaln(p + 1.0) + gammaln(e + 1.0) + gammaln(p - e + 1.0)  # 1 / C(p, e)

    def const(k):
        cells = k * (k + 1) / 2.0  # uniform prior on the block-pair edge counts
        out = -(gammaln(cells + n_edges) - gammaln(n_edges + 1.0) - gammaln(cells))
        if dc:
            out += float(gammaln(degrees + 1.0).sum())
        return float(out)

    if not dc:
        return _Spec([w, adj], pair, const=const)
    classes, degree_class = np.unique(degrees, return_inverse=True)
    log_q = _log_partitions(int(2 * n_edges), len(w))
    if log_q is None:  # too large a table: the uniform prior on the degrees

        def block(deg_sum, sizes):  # 1 / e_r! and 1 / multiset(n_r, e_r)
            sizes = np.maximum(sizes, 1.0)
            return gammaln(sizes) - gammaln(sizes + deg_sum[..., 0])

        return _Spec([w, adj], pair, degrees[:, None], block, const)
    top = log_q.shape[1] - 1

    def block(sums, sizes):  # 1 / e_r!, and P(k | e_r, n_r): histogram, then degrees
        e_r = np.rint(sums[..., 0]).astype(np.int64)
        n_r = np.minimum(np.rint(sizes).astype(np.int64), top)
        hist = gammaln(sums[..., 1:] + 1.0).sum(-1)
        return hist - gammaln(sizes + 1.0) - log_q[e_r, n_r] - gammaln(e_r + 1.0)

    vals = np.concatenate([degrees[:, None], np.eye(len(classes))[degree_class]], 1)
    return _Spec([w, adj], pair, vals, block, const)


_MAX_PARTITION_TABLE = 20_000_000  # entries of the table of log q(m, n) (160 MB), at most


def _log_partitions(m_max: int, n_max: int):
    """``log q(m, n)``, the partitions of ``m`` into at most ``n`` parts, for ``m <= m_max``.

    Columns ``n = 0 .. min(n_max, m_max)`` (``q(m, n) = q(m, m)`` for ``n > m``);
    None where the table would exceed ``_MAX_PARTITION_TABLE`` entries. From
    ``q(m, n) = q(m, n - 1) + q(m - n, n)``, i.e. a sum over ``m - j n``.
    """
    cols = min(n_max, m_max) + 1
    if (m_max + 1) * cols > _MAX_PARTITION_TABLE:
        return None
    out = np.full((m_max + 1, cols), -np.inf)
    out[0] = 0.0
    for n in range(1, cols):
        rows = -(-(m_max + 1) // n)
        prev = np.full(rows * n, -np.inf)
        prev[: m_max + 1] = out[:, n - 1]
        out[:, n] = np.logaddexp.accumulate(prev.reshape(rows, n), axis=0).ravel()[: m_max + 1]
    return out


def _is_hurdle(variant: str) -> bool:
    return variant.startswith("hurdle")


def _criterion(w, z, variant, shape, theta=None):
    """Criterion of labels ``z`` (and the ML degrees of ``"dc"``, else None)."""
    k = int(z.max()) + 1
    if _is_hurdle(variant):
        return _Moves(_hurdle_spec(w, variant == "hurdle-dc"), z, k).criterion(), None
    if variant == "plain":
        return _exp_icl(w, z, k, shape), None
    theta = _fit_theta(w, z, k, theta)
    return _dc_criterion(w, z, k, theta, shape), theta


def _climb_variant(w, z, k, variant, shape, rng, max_sweeps, theta=None):
    """Node moves from ``z`` for one variant; returns (z, criterion, theta or None)."""
    if variant == "dc":
        return _climb_dc(w, z, k, shape, rng, max_sweeps, theta)
    if variant == "plain":
        z, crit = _climb(w, z, k, _eprior(w, shape), rng, max_sweeps)
        return z, crit, None
    z, crit = _Moves(_hurdle_spec(w, variant == "hurdle-dc"), z, k).climb(rng, max_sweeps)
    return z, crit, None


def _spectral_start(x, k, rng, normalise):
    evals, evecs = np.linalg.eigh(x)
    vec = evecs[:, np.argsort(-np.abs(evals))[:k]]
    if normalise:  # rows on the unit sphere: degree-free directions (SCORE-like)
        vec = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
    return _fill_empty(_kmeans(vec, k, rng), k, rng)


def _search(w, variant, ks, shape, n_init, max_sweeps, rng, patience):
    """Best labelling for each K in ``ks`` (stopping after ``patience`` K without a gain)."""
    n = len(w)
    dc = variant == "dc"
    theta1 = _fit_theta(w, np.zeros(n, dtype=np.int64), 1) if dc else np.ones(n)
    if _is_hurdle(variant):  # strength-normalised weights
        strength = np.maximum(w.sum(1), w[w > 0].min())
        theta1 = np.sqrt(strength)
    spectral_input = w / np.outer(theta1, theta1)
    best, previous, since = {}, None, 0
    for k in range(1, max(ks) + 1):
        if k == 1:
            starts = [np.zeros(n, dtype=np.int64)]
        else:
            starts = [_spectral_start(spectral_input, k, rng, variant != "plain")]
            if dc:  # groups of alike degrees
                starts.append(_fill_empty(_kmeans(np.log(theta1)[:, None], k, rng), k, rng))
            if previous is not None:
                starts.append(_split_largest(spectral_input, previous[0], k))
            while len(starts) < max(n_init, 2):
                starts.append(_fill_empty(rng.integers(k, size=n), k, rng))
        theta = theta1.copy() if dc else None
        runs = [_climb_variant(w, z0, k, variant, shape, rng, max_sweeps, theta) for z0 in starts]
        run = max(runs, key=lambda r: r[1])
        previous = run
        if k in ks:
            improved = not best or run[1] > max(v[1] for v in best.values())
            best[k] = run
            since = 0 if improved else since + 1
            if len(ks) > 1 and since >= patience:
                break
    return best


def _merge_best(w, z, variant, shape, theta):
    """The merge of two blocks with the best criterion; returns (labels, criterion)."""
    k = int(z.max()) + 1
    out = None
    for a in range(k):
        for b in range(a + 1, k):
            merged = np.where(z == b, a, z)
            merged = np.where(merged > b, merged - 1, merged)
            crit, _ = _criterion(w, merged, variant, shape, theta)
            if out is None or crit > out[1]:
                out = (merged, crit)
    return out


def _renumber(z):
    """Blocks numbered by decreasing size (ties: smallest node first)."""
    blocks = sorted((np.flatnonzero(z == b) for b in np.unique(z)), key=lambda m: (-len(m), m[0]))
    labels = np.empty(len(z), dtype=np.int64)
    for b, members in enumerate(blocks):
        labels[members] = b
    return labels


def _block_means(w, labels):
    k = int(labels.max()) + 1
    onehot = np.eye(k)[labels]
    sizes = onehot.sum(0)
    count = np.outer(sizes, sizes) - np.diag(sizes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (onehot.T @ w @ onehot) / np.where(count > 0, count, 1), np.nan)


def _is_sparse(w) -> bool:
    """More than ``_SPARSE`` of the pairs are exact zeros (non-edges)."""
    off = ~np.eye(len(w), dtype=bool)
    return float((w[off] == 0).mean()) > _SPARSE


def _variants(w, model):
    """The variants ``model`` compares on ``w`` (``"auto"``: the hurdle ones on sparse ``w``)."""
    if model == "auto":
        return ("hurdle", "hurdle-dc") if _is_sparse(w) else ("plain", "dc")
    return (model,)


def _data(w, variant):
    """The matrix a variant is fitted to: the raw weights (hurdle) or the offset ones."""
    return w if _is_hurdle(variant) else _floored(w)


def _select(w, model, shape, n_blocks, max_blocks, n_init, max_sweeps, rng):
    """Best (labels, criterion, variant, criterion by variant and K) over the variants."""
    n = len(w)
    ks = [n_blocks] if n_blocks is not None else list(range(1, min(max_blocks, n) + 1))
    found = {}
    for v in _variants(w, model):
        found[v] = _search(_data(w, v), v, ks, shape, n_init, max_sweeps, rng, _PATIENCE)
    variant, k = max(
        ((v, k) for v in found for k in found[v]), key=lambda vk: found[vk[0]][vk[1]][1]
    )
    z, crit, theta = found[variant][k]
    x = _data(w, variant)
    # merge refinement: accept any merge of two blocks that improves the criterion
    while n_blocks is None and int(z.max()) + 1 > 1:
        merged, merged_crit = _merge_best(x, z, variant, shape, theta)
        if merged_crit <= crit + 1e-9:
            break
        k = int(merged.max()) + 1
        z, crit, theta = _climb_variant(x, merged, k, variant, shape, rng, max_sweeps, theta)
    by_model = {v: {kk: float(r[1]) for kk, r in found[v].items()} for v in found}
    return _renumber(z), float(crit), variant, by_model


def _hierarchy(w, labels, variant, shape, crit):
    """Coarser levels by successive best merges of two blocks, down to one block."""
    levels, crits = [labels], [crit]
    z = labels
    while int(z.max()) + 1 > 1:
        _, theta = _criterion(w, z, variant, shape)
        z, c = _merge_best(w, z, variant, shape, theta)
        z = _renumber(z)
        levels.append(z)
        crits.append(float(c))
    return levels, crits


def _fitted_mean(w, labels, dc):
    k = int(labels.max()) + 1
    theta = _fit_theta(w, labels, k) if dc else np.ones(len(w))
    omega = _block_means(w / np.outer(theta, theta), labels)
    return np.outer(theta, theta) * np.nan_to_num(omega[labels][:, labels], nan=1.0)


def bootstrap_stability(matrix, labels, refit=None, n_bootstrap: int = 10, seed: int = 0) -> float:
    """Mean ARI between ``labels`` and refits on the weights times resampled residuals.

    Each replicate multiplies every observed pair weight by a multiplicative
    residual ``W_ij / mu_ij`` drawn with replacement from all pairs (and
    normalised to mean 1), where ``mu`` is the degree-corrected fit with
    ``labels`` (it also absorbs a continuum of strengths, so the residuals
    are noise, not unmodelled strength). The replicate has the data's own
    noise added once more, about the extra variance of a split half, rather
    than noise around the fitted blocks: a parametric bootstrap would
    confirm the blocks it was drawn from, including blocks cut out of a
    continuum of strengths. Each replicate is partitioned again by ``refit``.
    On a sparse matrix (more than half of the pairs exact zeros, where
    :func:`fit_sbm` fits the hurdle model) only the edges' weights are
    resampled, as residuals from their block pair's mean edge weight, and
    the edges are kept: the score is then the stability to the weights'
    noise (and the search's), not to the edges'.

    Parameters
    ----------
    matrix : array of shape (n_nodes, n_nodes)
        Symmetric, non-negative weights.
    labels : array of shape (n_nodes,), int
    refit : callable, optional
        ``refit(matrix, seed) -> labels``, the method that made ``labels``;
        default: :func:`fit_sbm` (``model="auto"``).
    n_bootstrap : int, default=10
        Replicates.
    seed : int, default=0

    Returns
    -------
    float
        Mean ARI, at most 1 (also 1 for a one-block labelling that every
        refit finds again).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = np.repeat([0, 1], [8, 10])
    >>> w = rng.exponential(np.where(z[:, None] == z, 1.0, 0.05)); w = np.triu(w, 1); w = w + w.T
    >>> labels = fit_sbm(w, n_bootstrap=0).labels
    >>> round(bootstrap_stability(w, labels, n_bootstrap=4), 2)
    1.0
    """
    w = _check_matrix(matrix)
    labels = check_array("labels", labels, ndim=1, shape_hint="(n_nodes,)")
    if len(labels) != len(w):
        raise InputError(f"labels must have one entry per node ({len(w)}); got {len(labels)}.")
    if refit is not None and not callable(refit):
        raise InputError(f"refit must be callable(matrix, seed) -> labels; got {refit!r}.")
    n_bootstrap = check_int("n_bootstrap", n_bootstrap, minimum=1)
    seed = check_int("seed", seed)
    if refit is None:

        def refit(m, s):
            return fit_sbm(m, n_bootstrap=0, seed=s).labels

    labels = _renumber(labels)
    off = ~np.eye(len(w), dtype=bool)
    if not (w[off] > 0).any():
        return 1.0
    i, j = np.triu_indices(len(w), 1)
    if _is_sparse(w):  # the edges' weights over their block-pair mean (the hurdle model's)
        i, j = i[w[i, j] > 0], j[w[i, j] > 0]
        onehot = np.eye(int(labels.max()) + 1)[labels]
        edge_means = (onehot.T @ w @ onehot) / (onehot.T @ (w > 0) @ onehot)
        resid = w[i, j] / edge_means[labels[i], labels[j]]
    else:
        wf = _floored(w)
        resid = wf[i, j] / _fitted_mean(wf, labels, True)[i, j]
    rng = np.random.default_rng(seed)
    scores = []
    for b in range(n_bootstrap):
        r = rng.choice(resid, size=len(resid))
        wb = np.zeros_like(w)
        wb[i, j] = wb[j, i] = w[i, j] * r / r.mean()
        scores.append(adjusted_rand(labels, refit(wb, seed + 1 + b)))
    return float(np.mean(scores))


def sbm_criterion(matrix, labels, model: str = "hurdle") -> float:
    """The criterion :func:`fit_sbm` maximises, for a given labelling.

    Parameters
    ----------
    matrix : array of shape (n_nodes, n_nodes)
        Symmetric, non-negative weights (the diagonal is ignored).
    labels : array of shape (n_nodes,), int
        Block of each node; blocks are the distinct values.
    model : {"plain", "dc", "hurdle", "hurdle-dc"}, default="hurdle"
        The variant (module docstring); ``"plain"`` and ``"dc"`` are of the
        offset weights, ``"dc"`` at the maximum-likelihood degrees.

    Returns
    -------
    float
        Nats, larger is better.

    Examples
    --------
    >>> w = np.zeros((6, 6)); w[:3, :3] = w[3:, 3:] = 1.0; np.fill_diagonal(w, 0.0)
    >>> sbm_criterion(w, [0, 0, 0, 1, 1, 1]) > sbm_criterion(w, [0, 0, 1, 1, 1, 1])
    True
    """
    w = _check_matrix(matrix)
    check_choice("model", model, SBM_MODELS[1:])
    labels = check_array("labels", labels, ndim=1, shape_hint="(n_nodes,)")
    _, z = np.unique(labels, return_inverse=True)
    if len(z) != len(w):
        raise InputError(f"labels must have one entry per node ({len(w)}); got {len(z)}.")
    if not (w[~np.eye(len(w), dtype=bool)] > 0).any():
        raise InputError("matrix has no positive weight; the criterion is undefined.")
    return float(_criterion(_data(w, model), z, model, _SHAPE)[0])


def default_max_blocks(n_nodes: int) -> int:
    """Default largest number of blocks: ``ceil(2 sqrt(n_nodes))`` (at most ``n_nodes``).

    Examples
    --------
    >>> default_max_blocks(30), default_max_blocks(190)
    (11, 28)
    """
    return int(min(n_nodes, np.ceil(2 * np.sqrt(n_nodes))))


def fit_sbm(
    matrix,
    model: str = "auto",
    n_blocks: int | None = None,
    max_blocks: int | None = None,
    n_init: int = 4,
    max_sweeps: int = 50,
    seed: int = 0,
    n_bootstrap: int = 10,
) -> SBMFit:
    """Fit the exponential-weight SBM with or without degree correction, chosen by the criterion.

    Parameters
    ----------
    matrix : array of shape (n_nodes, n_nodes)
        Symmetric, non-negative weights; the diagonal is ignored.
    model : {"auto", "dc", "plain", "hurdle", "hurdle-dc"}, default="auto"
        ``"dc"``: degree-corrected (pair means ``theta_i theta_j omega_rs``);
        ``"plain"``: without degrees (means ``omega_rs``); ``"hurdle"``,
        ``"hurdle-dc"``: edges (``W_ij > 0``) and their weights separately,
        without or with degree correction of the edges, for sparse graphs;
        ``"auto"``: the one with the better criterion among ``"plain"`` and
        ``"dc"``, or among the two hurdle ones where more than half of the
        pairs are exact zeros (module docstring). For the old Gaussian
        model chosen by exact ICL use :func:`fit_weighted_sbm`.
    n_blocks : int, optional
        Fix the number of blocks; default: chosen by the criterion.
    max_blocks : int, optional
        Largest number of blocks tried; default :func:`default_max_blocks`.
        The search also stops once the criterion has not improved for 2
        consecutive numbers of blocks.
    n_init : int, default=4
        Starts per number of blocks (spectral, split of the previous best,
        random; at least the first two).
    max_sweeps : int, default=50
        Sweeps over all nodes per round of node moves, at most.
    seed : int, default=0
    n_bootstrap : int, default=10
        Replicates of :func:`bootstrap_stability` for ``SBMFit.stability``
        (0: not computed, ``stability`` is None).

    Returns
    -------
    SBMFit
        With ``degree_corrected``, ``theta``, ``levels``, ``stability`` and
        ``icl_by_model`` set; ``icl`` is the criterion of the chosen fit.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> theta = rng.uniform(0.3, 3.0, 20)                  # strengths, no communities
    >>> w = rng.exponential(np.outer(theta, theta)); w = np.triu(w, 1); w = w + w.T
    >>> fit = fit_sbm(w, n_bootstrap=0)
    >>> fit.n_blocks, fit.degree_corrected
    (1, True)
    """
    w = _check_matrix(matrix)
    n = len(w)
    if n < 2:
        raise InputError(f"matrix must have at least 2 nodes; got {n}.")
    check_choice("model", model, SBM_MODELS)
    n_blocks = check_int("n_blocks", n_blocks, minimum=1, maximum=n, allow_none=True)
    max_blocks = check_int("max_blocks", max_blocks, minimum=1, allow_none=True)
    n_init = check_int("n_init", n_init, minimum=1)
    max_sweeps = check_int("max_sweeps", max_sweeps, minimum=1)
    seed = check_int("seed", seed)
    n_bootstrap = check_int("n_bootstrap", n_bootstrap, minimum=0)
    off = ~np.eye(n, dtype=bool)
    if not (w[off] > 0).any():  # no edges: one block
        zero = np.zeros(n, dtype=np.int64)
        variant = "dc" if model == "auto" else model
        return SBMFit(
            zero,
            1,
            0.0,
            np.zeros((1, 1)),
            {1: 0.0},
            variant in ("dc", "hurdle-dc"),
            np.ones(n),
            [zero],
            model=variant,
        )
    max_blocks = default_max_blocks(n) if max_blocks is None else max_blocks
    rng = np.random.default_rng(seed)
    shape = _SHAPE
    args = (n_blocks, max_blocks, n_init, max_sweeps)
    labels, crit, variant, by_model = _select(w, model, shape, *args, rng)
    k = int(labels.max()) + 1
    x = _data(w, variant)
    theta = _fit_theta(x, labels, k) if variant == "dc" else np.ones(n)
    levels, level_crit = _hierarchy(x, labels, variant, shape, crit)
    fit = SBMFit(
        labels,
        k,
        crit,
        _block_means(w, labels),
        dict(by_model[variant]),
        variant in ("dc", "hurdle-dc"),
        theta,
        levels,
        level_crit,
        by_model,
        shape=shape,
        model=variant,
    )
    if n_bootstrap:
        kw = {"max_blocks": max_blocks, "n_init": n_init, "max_sweeps": max_sweeps}

        def refit(m, s):
            return fit_sbm(m, variant, n_bootstrap=0, seed=s, **kw).labels

        fit.stability = bootstrap_stability(w, labels, refit, n_bootstrap, seed)
    return fit
