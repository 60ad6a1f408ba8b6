"""Non-negative tensor factorisation (NTF) of the affinity tensor.

The tensor ``X`` of shape ``(time bins, animals, pairs)`` (see
:func:`neuro.connectome.affinity.affinity_tensor`) is approximated by a
non-negative CP model of rank ``R``,

    X[t, a, p] ~ sum_r  w_r * T[t, r] * A[a, r] * P[p, r],

where, for component ``r``, ``P[:, r]`` says which neuron pairs interact,
``T[:, r]`` when, and ``A[:, r]`` in which animals. Factor columns are scaled
to unit Euclidean norm, the scale kept in ``w``, and components are sorted by
``w``.

Solvers: HALS (the default) or multiplicative updates (``method="mu"``).
``backend="torch"`` (the default) is the package's own solver
(:mod:`neuro.connectome.hals`): float32 by default, on any torch device
(``device="auto"`` takes a GPU when there is one), the tensor held once (with
float32, half the size of a float64 copy) and two products with it per
iteration. ``"numpy"`` and ``"pytorch"`` run tensorly's
``non_negative_parafac_hals`` / ``non_negative_parafac`` on that tensorly
backend instead (the reference the torch solver is checked against; the
backend is set only inside ``tensorly.backend_context``, so the caller's
backend is never changed).

Missing entries (pairs with a neuron not recorded in an animal, NaN in the
tensor) are not data: with ``missing="em"`` (default) they are imputed by the
model itself, i.e. the fit minimises the error on the observed entries only:
the fit alternates blocks of ``em_block`` iterations with refilling the
missing entries by the current reconstruction (expectation-maximisation;
tensorly's multiplicative update takes the mask directly).
``missing="zero"`` treats them as zero affinity instead (biases the animal
factor of animals with missing neurons downward). The number of missing
entries is reported.

Rank selection (:func:`select_rank`): for each candidate rank, ``n_restarts``
fits from random starts; the *error* is the relative reconstruction error on
observed entries, ``||X - X_hat|| / ||X||``, of the best restart, and the
*stability* the mean factor match score (:func:`factor_match_score`) of the
other restarts with the best one. The selected rank is the largest rank
reached by increasing the rank while each step is stable
(``stability >= stability_threshold``) and lowers the error by at least
``min_gain``. Ranks above the first one that fails are not fitted
(``early_stop=True``, the default): they cannot be selected. All the fits of
one selection share one copy of the tensor on the device.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorly as tl
import torch
from scipy.optimize import linear_sum_assignment
from tensorly.decomposition import non_negative_parafac, non_negative_parafac_hals

from neuro._validation import (
    check_array,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_n_features,
)
from neuro.base import NeuroEstimator
from neuro.errors import InputError
from neuro.results import Result
from neuro.train.device import resolve_device
from neuro.train.progress import progress

__all__ = [
    "DynamicConnectome",
    "NTFResult",
    "RankSelection",
    "check_rank",
    "check_ranks",
    "factor_match_score",
    "fit_ntf",
    "select_rank",
]

METHODS = ("hals", "mu")
BACKENDS = ("torch", "numpy", "pytorch")
DTYPES = ("float32", "float64")
#: ``min_gain="null"``: a step up in rank must gain this many times the null's gain. Measured
#: (simulator, 2 s bins, one fit per rank, trace-shift null): planted components 3.6-8.9,
#: the step past the planted rank 1.8-3.2, data without shared drive 0.9-1.1.
NULL_GAIN_RATIO = 3.0
# fit_ntf's settings other than tensor, rank and device, with their defaults
_FIT_DEFAULTS = dict(
    method="hals",
    n_iter_max=200,
    tol=1e-8,
    init="random",
    random_state=0,
    backend="torch",
    missing="em",
    em_block=10,
    dtype="float32",
)


@dataclass
class NTFResult:
    """One non-negative CP fit.

    Attributes
    ----------
    weights : ndarray of shape (rank,)
        Component scales, in decreasing order.
    factors : list of 3 ndarrays
        ``[time (n_bins, rank), animals (n_animals, rank), pairs (n_pairs, rank)]``,
        non-negative, columns of unit norm.
    error : float
        Relative reconstruction error on the observed entries.
    n_missing : int
        Missing (NaN) entries of the tensor.
    method, backend : str
    """

    weights: np.ndarray
    factors: list
    error: float
    n_missing: int = 0
    method: str = "hals"
    backend: str = "torch"

    @property
    def rank(self) -> int:
        """Number of components."""
        return len(self.weights)

    def reconstruct(self) -> np.ndarray:
        """The model tensor ``(n_bins, n_animals, n_pairs)``."""
        t, a, p = self.factors
        return np.einsum("r,tr,ar,pr->tap", self.weights, t, a, p)


def check_rank(rank, shape) -> int:
    """Validate a CP rank against the tensor ``shape = (n_bins, n_animals, n_pairs)``.

    Each component needs its own time course and pair pattern, so the rank may
    not exceed ``min(n_bins, n_pairs)``.

    Raises
    ------
    InputTypeError
        ``rank`` is not an integer.
    InputError
        ``rank < 1`` or ``rank > min(n_bins, n_pairs)``.

    Examples
    --------
    >>> check_rank(3, (10, 2, 45))
    3
    """
    rank = check_int("rank", rank, minimum=1)
    limit = int(min(shape[0], shape[2]))
    if rank > limit:
        raise InputError(
            f"rank={rank} is larger than the tensor allows: with {shape[0]} time bins and "
            f"{shape[2]} neuron pairs at most min(n_bins, n_pairs) = {limit} components can be "
            "told apart. Use a smaller rank, or more time bins (a smaller bin_size)."
        )
    return int(rank)


def _normalise(weights, factors):
    norms = [np.linalg.norm(f, axis=0) for f in factors]
    w = np.asarray(weights, dtype=np.float64) * np.prod(norms, axis=0)
    factors = [f / np.where(n > 0, n, 1.0) for f, n in zip(factors, norms, strict=True)]
    order = np.argsort(-w, kind="stable")
    # C order, as a saved model loads them: products (connectome_at) then match bit for bit
    return w[order], [np.ascontiguousarray(f[:, order]) for f in factors]


def _error(x, weights, factors) -> float:
    """Relative error ``||X - X_hat|| / ||X||`` over the observed (non-NaN) entries of ``x``.

    Computed over blocks of time bins, so memory stays bounded whatever the
    tensor's size.
    """
    t, a, p = factors
    ap = (a[:, None, :] * p[None, :, :]) * np.asarray(weights)  # (animals, pairs, r)
    step = max(1, 2**22 // max(1, a.shape[0] * p.shape[0]))
    num = den = 0.0
    for t0 in range(0, x.shape[0], step):
        block = np.asarray(x[t0 : t0 + step], dtype=np.float64)
        observed = ~np.isnan(block)
        model = np.einsum("tr,apr->tap", t[t0 : t0 + step], ap)
        num += float(np.square(np.where(observed, block - model, 0.0)).sum())
        den += float(np.square(np.where(observed, block, 0.0)).sum())
    return float(np.sqrt(num) / max(np.sqrt(den), 1e-300))


@contextlib.contextmanager
def _backend(name: str):
    with tl.backend_context(name, local_threadsafe=True):
        yield


def fit_ntf(
    tensor,
    rank: int,
    method: str = "hals",
    n_iter_max: int = 200,
    tol: float = 1e-8,
    init: str = "random",
    random_state: int | None = 0,
    backend: str = "torch",
    device: str = "cpu",
    missing: str = "em",
    em_block: int = 10,
    dtype: str = "float32",
) -> NTFResult:
    """Fit a non-negative CP model to a ``(time, animals, pairs)`` tensor.

    Parameters
    ----------
    tensor : array of shape (n_bins, n_animals, n_pairs)
        Non-negative; NaN marks missing entries. Never modified.
    rank : int
        Number of components, ``1 <= rank <= min(n_bins, n_pairs)``.
    method : {"hals", "mu"}, default="hals"
        Hierarchical alternating least squares or multiplicative updates.
    n_iter_max : int, default=200
        Iterations (sweeps over the three factors).
    tol : float, default=1e-8
        Stop when the relative error changes by less than this (torch
        backend: over ``em_block`` iterations; tensorly: between iterations;
        0 = never stop early). With ``dtype="float32"`` values below 1e-6
        act as 1e-6 (the error is not known more precisely).
    init : {"random", "svd"}, default="random"
    random_state : int or None, default=0
    backend : {"torch", "numpy", "pytorch"}, default="torch"
        ``"torch"``: the package's solver (:mod:`neuro.connectome.hals`);
        ``"numpy"``/``"pytorch"``: tensorly's, on that tensorly backend.
    device : str, default="cpu"
        Torch device of the ``"torch"`` and ``"pytorch"`` backends ("auto"
        allowed: a GPU when there is one).
    missing : {"em", "zero"}, default="em"
        How NaN entries are handled (see the module docstring).
    em_block : int, default=10
        Iterations between refills of missing entries (``missing="em"``) and,
        for the torch backend, between convergence checks.
    dtype : {"float32", "float64"}, default="float32"
        Working precision of the ``"torch"`` backend (tensorly's backends
        work in float64).

    Returns
    -------
    NTFResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> f = [rng.random((9, 2)), rng.random((4, 2)), rng.random((15, 2))]
    >>> x = np.einsum("tr,ar,pr->tap", *f)
    >>> res = fit_ntf(x, rank=2, n_iter_max=300)
    >>> res.factors[0].shape, res.error < 0.01
    ((9, 2), True)
    """
    args = _check_fit_args(
        tensor, rank, method, n_iter_max, tol, init, random_state, backend, missing, em_block, dtype
    )
    solver = {k: args[k] for k in _SOLVER_ARGS}
    if args["backend"] == "torch":
        ws = _workspace(args["x"], device, dtype, missing)
        return _fit_torch(ws, args["rank"], **solver)
    return _fit_tensorly(
        args["x"], args["rank"], backend=backend, device=device, missing=missing, **solver
    )


def _check_fit_args(
    tensor, rank, method, n_iter_max, tol, init, random_state, backend, missing, em_block, dtype
) -> dict:
    check_choice("backend", backend, BACKENDS)
    x = check_array(
        "tensor",
        tensor,
        ndim=3,
        shape_hint="(n_bins, n_animals, n_pairs)",
        finite=False,
        dtype=None if backend == "torch" else np.float64,  # no float64 copy for torch
    )
    rank = check_rank(rank, x.shape)
    check_choice("method", method, METHODS)
    check_choice("missing", missing, ("em", "zero"))
    check_choice("init", init, ("random", "svd"))
    check_choice("dtype", dtype, DTYPES)
    return dict(
        x=x,
        rank=rank,
        method=method,
        n_iter_max=check_int("n_iter_max", n_iter_max, minimum=1),
        tol=check_float("tol", tol, minimum=0.0),
        init=init,
        random_state=check_int("random_state", random_state, minimum=0, allow_none=True),
        backend=backend,
        em_block=check_int("em_block", em_block, minimum=1),
        missing=missing,
        dtype=dtype,
    )


_SOLVER_ARGS = ("method", "n_iter_max", "tol", "init", "random_state", "em_block")


def _workspace(x, device, dtype, missing):
    from neuro.connectome.hals import TensorWorkspace

    torch_dtype = torch.float32 if dtype == "float32" else torch.float64
    return TensorWorkspace(x, device=resolve_device(device), dtype=torch_dtype, missing=missing)


def _fit_torch(ws, rank, method, n_iter_max, tol, init, random_state, em_block) -> NTFResult:
    from neuro.connectome.hals import cp_nonneg

    factors, err, _ = cp_nonneg(
        ws,
        rank,
        method=method,
        n_iter_max=n_iter_max,
        tol=tol,
        init=init,
        random_state=random_state,
        em_block=em_block,
    )
    weights, factors = _normalise(np.ones(rank), factors)
    return NTFResult(weights, factors, float(err), ws.n_missing, method, "torch")


def _fit_tensorly(
    x, rank, method, n_iter_max, tol, init, random_state, backend, em_block, device, missing
) -> NTFResult:
    if np.isinf(x).any():
        raise InputError("tensor holds infinite values; only NaN may mark missing entries.")
    observed = np.isfinite(x)
    if (x[observed] < 0).any():
        raise InputError("tensor must be non-negative (affinities are >= 0); it holds negatives.")
    if not observed.any() or not np.any(x[observed] > 0):
        raise InputError(
            "tensor has no positive observed entry to factorise (all zero or NaN); check the "
            "traces it was computed from."
        )
    n_missing = int((~observed).sum())
    use_mask = n_missing > 0 and missing == "em"
    filled = np.where(observed, x, float(x[observed].mean()) if use_mask else 0.0)

    dev = str(resolve_device(device)) if backend == "pytorch" else None
    with _backend(backend):
        kw = {"device": dev} if backend == "pytorch" else {}
        t = tl.tensor(filled, **kw)
        common = dict(tol=tol, random_state=random_state)
        if method == "mu":
            mask = tl.tensor(observed.astype(np.float64), **kw)
            cp = non_negative_parafac(
                t,
                rank,
                n_iter_max=n_iter_max,
                init=init,
                mask=mask if use_mask else None,
                **common,
            )
        elif not use_mask:
            cp = non_negative_parafac_hals(t, rank, n_iter_max=n_iter_max, init=init, **common)
        else:
            cp, done, current = None, 0, init
            while done < n_iter_max:
                block = min(em_block, n_iter_max - done)
                cp = non_negative_parafac_hals(t, rank, n_iter_max=block, init=current, **common)
                done += block
                model = tl.to_numpy(tl.cp_to_tensor(cp))
                t = tl.tensor(np.where(observed, x, model), **kw)
                current = cp
        weights = tl.to_numpy(cp.weights)
        factors = [tl.to_numpy(f) for f in cp.factors]
    weights, factors = _normalise(weights, factors)
    err = _error(x, weights, factors)
    return NTFResult(weights, factors, err, n_missing, method, backend)


def factor_match_score(a: NTFResult, b: NTFResult) -> float:
    """Mean congruence of two CP fits' components after the best pairing.

    The congruence of components ``r`` and ``s`` is the product over the three
    modes of the cosines between their factor columns; components are paired
    by the Hungarian algorithm. 1 = the same decomposition (up to order and
    scale), 0 = nothing shared.

    Examples
    --------
    >>> f = [np.eye(3), np.ones((2, 3)), np.eye(3)]
    >>> r = NTFResult(np.ones(3), f, 0.0)
    >>> s = NTFResult(np.ones(3), [m[:, ::-1] for m in f], 0.0)
    >>> factor_match_score(r, s)
    1.0
    """
    if a.rank != b.rank:
        raise InputError(
            f"a and b must have the same rank to be matched; got ranks {a.rank} and {b.rank}."
        )
    cong = np.ones((a.rank, b.rank))
    for fa, fb in zip(a.factors, b.factors, strict=True):
        na = fa / np.maximum(np.linalg.norm(fa, axis=0), 1e-300)
        nb = fb / np.maximum(np.linalg.norm(fb, axis=0), 1e-300)
        cong *= na.T @ nb
    rows, cols = linear_sum_assignment(-cong)
    return round(float(cong[rows, cols].mean()), 12)


@dataclass
class RankSelection(Result):
    """Result of :func:`select_rank` (a :class:`neuro.results.Result`).

    Attributes
    ----------
    table : list of dict
        Per rank: ``rank``, ``error`` (best restart), ``error_mean``,
        ``error_sd``, ``stability``, ``n_restarts``.
    rank : int
        The selected rank.
    fits : dict of int to NTFResult
        The best fit at each rank.
    """

    table: list
    rank: int
    fits: dict = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """``{"rank": selected rank, "table": the rows of :attr:`table`}`` (JSON-able)."""
        return {"rank": int(self.rank), "table": [dict(row) for row in self.table]}

    def format_table(self) -> str:
        """The table as aligned text, the selected rank marked."""
        null = bool(self.table) and "null_error" in self.table[0]
        lines = [
            "rank  error    error_mean  error_sd  stability" + ("  null_error" if null else "")
        ]
        for row in self.table:
            mark = "  <- selected" if row["rank"] == self.rank else ""
            extra = f"     {row['null_error']:.4f}" if null else ""
            lines.append(
                f"{row['rank']:>4d}  {row['error']:.4f}   {row['error_mean']:.4f}      "
                f"{row['error_sd']:.4f}    {row['stability']:.3f}{extra}{mark}"
            )
        return "\n".join(lines)

    def tables(self) -> dict[str, Any]:
        """``{"rank_selection": DataFrame}``, one row per rank, ``selected`` marking the choice."""
        import pandas as pd

        frame = pd.DataFrame(self.table)
        frame["selected"] = frame["rank"] == self.rank
        return {"rank_selection": frame}

    def plot(self) -> dict[str, Any]:
        """``{"rank_selection": Figure}``: error and stability against rank."""
        from neuro.connectome.plots import plot_rank_selection

        return {"rank_selection": plot_rank_selection(self)}


def check_ranks(ranks) -> list[int]:
    """Candidate ranks as a sorted list of distinct integers >= 1.

    Examples
    --------
    >>> check_ranks((4, 2, 2, 3))
    [2, 3, 4]
    """
    if isinstance(ranks, (str, bytes)) or not hasattr(ranks, "__iter__"):
        raise InputError(
            f"ranks must be a sequence of integers >= 1, e.g. (2, 3, 4); got {ranks!r}."
        )
    out = sorted({check_int(f"ranks[{i}]", r, minimum=1) for i, r in enumerate(ranks)})
    if not out:
        raise InputError("ranks must hold at least one rank, e.g. (2, 3, 4); got none.")
    return out


def select_rank(
    tensor,
    ranks=(2, 3, 4, 5),
    n_restarts: int = 4,
    stability_threshold: float = 0.9,
    min_gain: float | str = 0.01,
    random_state: int = 0,
    verbose: int = 0,
    early_stop: bool = True,
    null_tensor=None,
    **fit_kwargs,
) -> RankSelection:
    """Choose the NTF rank from reconstruction error and stability across restarts.

    Parameters
    ----------
    tensor : array of shape (n_bins, n_animals, n_pairs)
    ranks : sequence of int, default=(2, 3, 4, 5)
    n_restarts : int, default=4
        Random starts per rank (>= 2 to measure stability).
    stability_threshold : float, default=0.9
        Least mean factor match score for a rank to count as stable.
    min_gain : float or "null", default=0.01
        Least decrease of the relative error for a step up in rank to be
        worth it. A fixed gain does not scale with the network: with 190
        neurons and 3 communities of 20, each community's component lowers
        the error by only 0.004-0.007, and 0.01 stops at rank 2. ``"null"``
        asks instead that the step lower the error :data:`NULL_GAIN_RATIO`
        (3) times more than the same step lowers it on ``null_tensor``
        (fitted at the same ranks, ``min(2, n_restarts)`` restarts).
    random_state : int, default=0
    verbose : int, default=0
    early_stop : bool, default=True
        Stop at the first rank that is unstable or gains too little: the
        ranks above it cannot be selected, so they are not fitted (and not in
        the table). False fits every candidate.
    null_tensor : array of shape (n_bins, n_animals, n_pairs), optional
        For ``min_gain="null"``: the same tensor computed from data without
        the structure looked for (:class:`DynamicConnectome` computes it from
        the traces with each neuron's trace circularly shifted in time by its
        own random offset, which keeps every neuron's events and destroys
        their co-activation).
    **fit_kwargs
        Passed to :func:`fit_ntf` (``method``, ``n_iter_max``, ``backend``,
        ``device``, ...). With the torch backend all fits share one copy of
        the tensor on the device.

    Returns
    -------
    RankSelection

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> f = [rng.random((12, 2)) ** 4, rng.random((3, 2)), rng.random((20, 2)) ** 4]
    >>> sel = select_rank(np.einsum("tr,ar,pr->tap", *f), ranks=(1, 2, 3), n_restarts=3)
    >>> sel.rank
    2
    """
    ranks = check_ranks(ranks)
    n_restarts = check_int("n_restarts", n_restarts, minimum=2)
    stability_threshold = check_float("stability_threshold", stability_threshold)
    use_null = isinstance(min_gain, str)
    if use_null:
        check_choice("min_gain", min_gain, ("null",))
    else:
        min_gain = check_float("min_gain", min_gain)
    random_state = check_int("random_state", random_state, minimum=0)
    shape = np.shape(tensor)
    if len(shape) != 3:
        raise InputError(
            f"tensor must be 3D (n_bins, n_animals, n_pairs); got shape {tuple(shape)}."
        )
    for r in ranks:
        check_rank(r, shape)
    early_stop = check_bool("early_stop", early_stop)
    args = _check_fit_args(
        tensor,
        ranks[0],
        **{**_FIT_DEFAULTS, **{k: v for k, v in fit_kwargs.items() if k in _FIT_DEFAULTS}},
    )
    unknown = sorted(set(fit_kwargs) - set(_FIT_DEFAULTS) - {"device"})
    if unknown:
        raise InputError(
            f"select_rank got unknown argument(s) {unknown}; fit_ntf takes {sorted(_FIT_DEFAULTS)}"
            " and device."
        )
    if use_null:
        if null_tensor is None:
            raise InputError(
                "min_gain='null' needs null_tensor (the tensor of data without the structure: "
                "DynamicConnectome(min_gain='null') makes it from time-shifted traces)."
            )
        if np.shape(null_tensor) != tuple(shape):
            raise InputError(
                f"null_tensor must have the tensor's shape {tuple(shape)}; got "
                f"{tuple(np.shape(null_tensor))}."
            )
    ws = null_ws = None
    if args["backend"] == "torch":  # one copy of the tensor for every fit
        ws = _workspace(args["x"], fit_kwargs.get("device", "cpu"), args["dtype"], args["missing"])
        if use_null:
            device = fit_kwargs.get("device", "cpu")
            null_ws = _workspace(null_tensor, device, args["dtype"], args["missing"])

    def fit_at(r, seed, null=False):
        if ws is not None:
            solver = {n: args[n] for n in _SOLVER_ARGS if n != "random_state"}
            return _fit_torch(null_ws if null else ws, r, random_state=seed, **solver)
        return fit_ntf(null_tensor if null else args["x"], r, random_state=seed, **fit_kwargs)

    table, fits = [], {}
    chosen = ranks[0]
    bar = progress(total=len(ranks) * n_restarts, desc="rank selection", verbose=verbose)
    for r in ranks:
        runs = []
        for k in range(n_restarts):
            runs.append(fit_at(r, random_state + 1000 * r + k))
            bar.update(1)
        errors = np.array([f.error for f in runs])
        best = runs[int(np.argmin(errors))]
        others = [f for f in runs if f is not best]
        stability = float(np.mean([factor_match_score(best, f) for f in others]))
        fits[r] = best
        row = {
            "rank": r,
            "error": float(errors.min()),
            "error_mean": float(errors.mean()),
            "error_sd": float(errors.std()),
            "stability": stability,
            "n_restarts": n_restarts,
        }
        needed = min_gain
        if use_null:
            seeds = range(min(2, n_restarts))
            row["null_error"] = min(
                fit_at(r, random_state + 1000 * r + k, True).error for k in seeds
            )
            if table:
                null_gain = table[-1]["null_error"] - row["null_error"]
                needed = max(NULL_GAIN_RATIO * null_gain, 1e-6)
        if table:
            ok = stability >= stability_threshold and table[-1]["error"] - row["error"] >= needed
            if ok and chosen == table[-1]["rank"]:
                chosen = r
            elif early_stop:
                table.append(row)
                break
        table.append(row)
    bar.close()
    return RankSelection(table, chosen, fits)


# ----------------------------------------------------------------------------- estimator
AFFINITY_NAMES = ("derivative", "correlation")
COMMUNITY_NAMES = ("sbm", "louvain", "greedy")
_TRACES_SHAPE = "(n_animals, n_neurons, n_frames), or (n_neurons, n_frames) for one animal"


def _as_traces(traces) -> np.ndarray:
    """``traces`` as a float64 ``(animals, neurons, frames)`` array, checked for the connectome.

    A 2-D array is one animal's ``(n_neurons, n_frames)``: scikit-learn's
    ``(n_samples, n_features)`` with neurons as samples and frames as features.
    """
    from neuro.connectome.affinity import check_traces

    x = getattr(traces, "traces", traces)
    x = check_array("traces", x, ndim=(2, 3), shape_hint=_TRACES_SHAPE, finite=False)
    if x.ndim == 2:
        if x.shape[0] < 2:
            raise InputError(
                f"traces of one animal (n_neurons, n_frames) need at least 2 neurons; got "
                f"{x.shape[0]} sample(s) (neurons), shape {x.shape}."
            )
        if x.shape[1] < 3:
            raise InputError(
                f"traces of one animal (n_neurons, n_frames) need at least 3 frames; got "
                f"{x.shape[1]} feature(s) (frames), shape {x.shape}."
            )
        x = x[None]
    return check_traces(x)


class DynamicConnectome(NeuroEstimator):
    """Dynamic functional connectome of multi-animal calcium traces.

    ``fit`` builds the affinity tensor (:func:`~neuro.connectome.affinity.affinity_tensor`),
    factorises it by NTF (:func:`fit_ntf`, or :func:`select_rank` when
    ``rank=None``), and partitions each component's pair factor into
    communities (:func:`~neuro.connectome.communities.find_communities`).
    :meth:`report` gathers what the fit found as a
    :class:`~neuro.connectome.report.ConnectomeReport` (a
    :class:`neuro.results.Result`: ``summary()``, ``format_table()``,
    ``tables()``, ``plot()``, ``save(folder)`` with the factor tables, one
    GraphML graph per component, ``metrics.json`` and the figures);
    :meth:`save` / :meth:`load` keep the fitted model itself in one file.

    Parameters
    ----------
    rank : int or None, default=None
        Number of components; None selects it among ``ranks``.
    ranks : sequence of int, default=(2, 3, 4, 5)
        Candidates when ``rank=None``.
    min_gain : float or "null", default=0.01
        ``rank=None``: least decrease of the relative error for a step up in
        rank (:func:`select_rank`). ``"null"`` compares each step's gain with
        the gain on the tensor of the same traces with each neuron's trace
        circularly shifted in time by its own random offset (a second
        affinity tensor and a second set of fits): a fixed 0.01 stops too
        early on large networks, where each community explains little of
        the tensor.
    affinity : {"derivative", "correlation"}, default="derivative"
    bin_size : float, default=2.0
        Length of a time bin of the tensor, in seconds (as ``bin_size``
        everywhere in the package); it becomes ``round(bin_size *
        sampling_rate)`` frames (``bin_frames_``). The affinity shows a
        community only where a bin holds events its members share: ``fit``
        warns when the median neuron has fewer than 0.1 events per bin and
        suggests a length (:func:`~neuro.connectome.affinity.check_bins`;
        ``bin_check_``).
    sampling_rate : float or None, default=None
        Frames per second. A :class:`~data_loaders.calcium.CalciumData`
        carries its own; arrays need it (a frame count as ``bin_size`` with
        ``sampling_rate=1`` works too).
    smooth : float, default=1.0
        Gaussian smoothing sd (frames) of the derivative affinity.
    scale : float, default=50.0
        Saturation constant ``c`` of the derivative affinity.
    method : {"hals", "mu"}, default="hals"
    backend : {"torch", "numpy", "pytorch"}, default="torch"
        The NTF solver (see :func:`fit_ntf`): the package's torch solver in
        float32 on ``device``, or tensorly's on its numpy or pytorch backend.
    n_iter_max : int, default=1000
        Most NTF iterations per fit; the torch solver stops earlier once the
        error has settled (``tol``). The error settles long before the pair
        factors do: at 300 iterations borderline neurons of a planted
        community could still land on either side of its SBM partition.
    tol : float, default=1e-8
    n_restarts : int, default=4
        Random restarts: the best (lowest error) fit is kept, and with
        ``rank=None`` the restarts also measure stability.
    missing : {"em", "zero"}, default="em"
    community_method : {"sbm", "louvain", "greedy"}, default="sbm"
        How each component's pair factor is partitioned: a weighted
        stochastic block model (``sbm_model``), or networkx modularity
        maximisation (see :mod:`neuro.connectome.communities`).
    resolution : float, default=1.0
        Modularity resolution (``"louvain"``, ``"greedy"``; reported modularity).
    max_blocks : int or None, default=None
        Largest number of SBM blocks tried per component; None grows with the
        number of neurons (:func:`~neuro.connectome.sbm.default_max_blocks`).
    sbm_model : {"auto", "dc", "plain"}, default="auto"
        ``"auto"``: exponential-weight SBM with or without degree correction,
        chosen with the number of blocks by one criterion
        (:func:`~neuro.connectome.sbm.fit_sbm`); ``"dc"``: degree-corrected;
        ``"plain"``: the earlier Gaussian model without degrees, by exact
        ICL (:func:`~neuro.connectome.sbm.fit_weighted_sbm`), which splits
        neurons by strength (activity) even on data without communities.
    n_bootstrap : int, default=5
        Bootstrap replicates of each component's partition stability
        (``communities_[r].stability``, in the report); 0 skips it. A
        partition with more than one community and a stability below 0.8
        warns.
    pair_batch_size : int or "auto", default="auto"
        Neuron pairs processed at once when computing affinities; ``"auto"``
        bounds the work memory whatever the recording's length
        (:func:`~neuro.connectome.affinity.auto_pair_batch_size`).
    device : str, default="auto"
        Torch device for affinities and the NTF (torch and pytorch backends).
    random_state : int, default=0
        Seed of the NTF restarts (restart ``k`` uses ``random_state + k``) and
        of the community search.
    verbose : int, default=0

    Attributes
    ----------
    affinity_ : ndarray of shape (n_bins, n_animals, n_pairs)
    pairs_ : ndarray of shape (n_pairs, 2)
    neuron_labels_ : list of str
    animal_ids_ : list of str
    weights_ : ndarray of shape (rank_,)
    time_factors_ : ndarray of shape (n_bins, rank_)
    animal_factors_ : ndarray of shape (n_animals, rank_)
    pair_factors_ : ndarray of shape (n_pairs, rank_)
    communities_ : list of ComponentCommunities
        One per component.
    rank_ : int
    rank_selection_ : RankSelection or None
        The rank selection (a :class:`neuro.results.Result`) when ``rank=None``.
    reconstruction_error_ : float
    n_missing_entries_ : int
    bin_times_ : ndarray of shape (n_bins,)
        Centre of each bin, seconds.
    bin_frames_ : int
        Frames per bin (``bin_size`` seconds at ``sampling_rate_``).
    sampling_rate_ : float
        Frames per second used.
    bin_check_ : dict
        The events-per-bin check (fields of
        :class:`~neuro.connectome.affinity.BinCheck`: ``events_per_bin``,
        ``suggested_bin_size`` in frames, ``too_short``, ...).
    epochs_ : list of Epoch
    n_features_in_ : int
        Frames per trace (the last axis; scikit-learn's features of a 2-D
        ``(n_neurons, n_frames)`` input).

    Notes
    -----
    ``fit`` takes a :class:`~data_loaders.calcium.CalciumData`, an array of
    shape ``(n_animals, n_neurons, n_frames)`` (NaN rows for neurons missing in
    an animal), or a 2-D array ``(n_neurons, n_frames)`` of one animal.

    Neuron ``i`` must be the same cell in every animal (identified neurons,
    as the paper's C. elegans data). For sessions of one animal with cells
    registered across them, stack the sessions on the animal axis
    (:func:`data_loaders.calcium.stack_sessions`); for animals whose cells
    cannot be matched, fit each alone
    (:func:`~neuro.connectome.stability.fit_per_animal`).

    Examples
    --------
    >>> from data_loaders.simulate.calcium import simulate_calcium
    >>> sim = simulate_calcium(n_animals=3, n_neurons=16, n_frames=600, n_communities=2,
    ...                        community_size=5, n_blocks=6, seed=0)
    >>> model = DynamicConnectome(rank=3, n_restarts=2, device="cpu").fit(sim.data)
    >>> model.time_factors_.shape, model.animal_factors_.shape, model.pair_factors_.shape
    ((30, 3), (3, 3), (120, 3))
    >>> len(model.communities_), model.report().summary()["rank"]
    (3, 3)
    """

    def __init__(
        self,
        rank: int | None = None,
        ranks=(2, 3, 4, 5),
        min_gain: float | str = 0.01,
        affinity: str = "derivative",
        bin_size: float = 2.0,
        sampling_rate: float | None = None,
        smooth: float = 1.0,
        scale: float = 50.0,
        method: str = "hals",
        backend: str = "torch",
        n_iter_max: int = 1000,
        tol: float = 1e-8,
        n_restarts: int = 4,
        missing: str = "em",
        community_method: str = "sbm",
        resolution: float = 1.0,
        max_blocks: int | None = None,
        sbm_model: str = "auto",
        n_bootstrap: int = 5,
        pair_batch_size: int | str = "auto",
        device: str = "auto",
        random_state: int = 0,
        verbose: int = 0,
    ) -> None:
        self.rank = rank
        self.ranks = ranks
        self.min_gain = min_gain
        self.affinity = affinity
        self.bin_size = bin_size
        self.sampling_rate = sampling_rate
        self.smooth = smooth
        self.scale = scale
        self.method = method
        self.backend = backend
        self.n_iter_max = n_iter_max
        self.tol = tol
        self.n_restarts = n_restarts
        self.missing = missing
        self.community_method = community_method
        self.resolution = resolution
        self.max_blocks = max_blocks
        self.sbm_model = sbm_model
        self.n_bootstrap = n_bootstrap
        self.pair_batch_size = pair_batch_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        check_int("rank", self.rank, minimum=1, allow_none=True)
        if self.rank is None:
            check_ranks(self.ranks)
        if isinstance(self.min_gain, str):
            check_choice("min_gain", self.min_gain, ("null",))
        else:
            check_float("min_gain", self.min_gain)
        check_choice("affinity", self.affinity, AFFINITY_NAMES)
        check_float("bin_size", self.bin_size, minimum=0.0, strict_minimum=True)
        check_float(
            "sampling_rate", self.sampling_rate, minimum=0.0, strict_minimum=True, allow_none=True
        )
        check_float("smooth", self.smooth, minimum=0.0)
        check_float("scale", self.scale, minimum=0.0, strict_minimum=True)
        check_choice("method", self.method, METHODS)
        check_choice("backend", self.backend, BACKENDS)
        check_int("n_iter_max", self.n_iter_max, minimum=1)
        check_float("tol", self.tol, minimum=0.0)
        check_int("n_restarts", self.n_restarts, minimum=1)
        check_choice("missing", self.missing, ("em", "zero"))
        check_choice("community_method", self.community_method, COMMUNITY_NAMES)
        check_float("resolution", self.resolution, minimum=0.0, strict_minimum=True)
        check_int("max_blocks", self.max_blocks, minimum=1, allow_none=True)
        check_choice("sbm_model", self.sbm_model, ("auto", "dc", "plain"))
        check_int("n_bootstrap", self.n_bootstrap, minimum=0)
        if self.pair_batch_size != "auto":
            check_int("pair_batch_size", self.pair_batch_size, minimum=1)
        check_int("random_state", self.random_state, minimum=0)
        check_int("verbose", self.verbose, minimum=0)
        resolve_device(self.device)

    def _rate(self, traces) -> float:
        """Frames per second: the ``sampling_rate`` parameter, or the data's own."""
        own = getattr(traces, "sampling_rate", None)
        rate = self.sampling_rate if self.sampling_rate is not None else own
        if rate is None:
            raise InputError(
                "traces are an array without a sampling rate, and bin_size is in seconds: pass "
                "sampling_rate=<frames per second> (or give a CalciumData, which carries it)."
            )
        if own is not None and self.sampling_rate is not None and own != self.sampling_rate:
            raise InputError(
                f"sampling_rate={self.sampling_rate} Hz disagrees with the traces' own "
                f"{own} Hz; leave sampling_rate=None to use the data's."
            )
        return float(rate)

    def _frames(self, rate: float, n_frames: int) -> int:
        """``bin_size`` seconds in frames, checked against the recording."""
        frames = round(float(self.bin_size) * rate)
        if frames < 1:
            raise InputError(
                f"bin_size={self.bin_size} s is shorter than one frame at {rate:g} Hz; use "
                f"bin_size >= {1 / rate:.3g} s."
            )
        if frames > n_frames - 1:
            raise InputError(
                f"bin_size={self.bin_size} s is {frames} frames, longer than the recording "
                f"({n_frames} frames at {rate:g} Hz = {n_frames / rate:.3g} s); use a shorter "
                "bin_size."
            )
        return frames

    def _tensor(self, x: np.ndarray, frames: int) -> np.ndarray:
        from neuro.connectome.affinity import affinity_tensor

        return affinity_tensor(
            x,
            method=self.affinity,
            bin_size=frames,
            smooth=self.smooth,
            scale=self.scale,
            pair_batch_size=self.pair_batch_size,
            device=self.device,
            verbose=self.verbose,
        )

    def _fit_kwargs(self) -> dict:
        dev = "cpu" if self.backend == "numpy" else self.device
        return dict(
            method=self.method,
            n_iter_max=self.n_iter_max,
            tol=self.tol,
            backend=self.backend,
            device=dev,
            missing=self.missing,
        )

    def fit(self, traces, y=None) -> DynamicConnectome:
        """Compute affinities, factorise them and find communities.

        Parameters
        ----------
        traces : CalciumData, array or tensor of shape (n_animals, n_neurons, n_frames)
            NaN rows mark neurons missing in an animal; a 2-D array
            ``(n_neurons, n_frames)`` is one animal.
        y : ignored

        Returns
        -------
        self
        """
        from neuro.connectome.affinity import check_bins
        from neuro.connectome.communities import find_communities

        self._check_params()
        x = _as_traces(traces)
        n_animals, n_neurons, n_frames = x.shape
        rate = self._rate(traces)
        frames = self._frames(rate, n_frames)
        bins = check_bins(
            x, frames, smooth=self.smooth, scale=self.scale, sampling_rate=rate, device=self.device
        )
        bins.warn(stacklevel=2)
        affinity = self._tensor(x, frames)
        labels = getattr(traces, "neuron_labels", None) or [f"n{i}" for i in range(n_neurons)]
        animals = getattr(traces, "animal_ids", None) or [f"animal{a}" for a in range(n_animals)]
        centres = (np.arange(affinity.shape[0]) + 0.5) * frames
        if self.rank is None:
            null = None
            if self.min_gain == "null":  # the same traces, each neuron shifted on its own
                rng = np.random.default_rng(self.random_state)
                shifted = np.empty_like(x)
                for a in range(n_animals):
                    shift = rng.integers(0, n_frames, size=n_neurons)
                    idx = (np.arange(n_frames)[None, :] - shift[:, None]) % n_frames
                    shifted[a] = np.take_along_axis(x[a], idx, axis=1)
                null = self._tensor(shifted, frames)
                del shifted
            sel = select_rank(
                affinity,
                ranks=self.ranks,
                n_restarts=max(2, self.n_restarts),
                min_gain=self.min_gain,
                random_state=self.random_state,
                verbose=self.verbose,
                null_tensor=null,
                **self._fit_kwargs(),
            )
            selection, rank = sel, sel.rank
            best = sel.fits[sel.rank]
        else:
            rank = check_rank(self.rank, affinity.shape)
            selection = None
            runs = [
                fit_ntf(affinity, rank, random_state=self.random_state + k, **self._fit_kwargs())
                for k in range(self.n_restarts)
            ]
            best = min(runs, key=lambda r: r.error)
        self.affinity_ = affinity
        self.pairs_ = np.stack(np.triu_indices(n_neurons, k=1), axis=1)
        self.neuron_labels_ = [str(v) for v in labels]
        self.animal_ids_ = [str(v) for v in animals]
        self.bin_times_ = centres / rate
        self.bin_frames_ = frames
        self.sampling_rate_ = rate
        self.bin_check_ = {k: v for k, v in dataclasses.asdict(bins).items()}
        self.epochs_ = list(getattr(traces, "epochs", ()) or ())
        self.rank_selection_, self.rank_ = selection, int(rank)
        self.ntf_ = best
        self.weights_ = best.weights
        self.time_factors_, self.animal_factors_, self.pair_factors_ = best.factors
        self.reconstruction_error_ = best.error
        self.n_missing_entries_ = best.n_missing
        self.n_features_in_ = int(n_frames)
        self.communities_ = find_communities(
            self.pair_factors_,
            n_neurons,
            labels=self.neuron_labels_,
            method=self.community_method,
            resolution=self.resolution,
            seed=self.random_state,
            max_blocks=self.max_blocks,
            sbm_model=self.sbm_model,
            n_bootstrap=self.n_bootstrap,
        )
        self._annotate_graphs()
        return self

    def _annotate_graphs(self) -> None:
        for r, c in enumerate(self.communities_):
            c.graph.graph["weight"] = float(self.weights_[r])
            c.graph.graph["time_factor"] = self.time_factors_[:, r]
            c.graph.graph["animal_factor"] = self.animal_factors_[:, r]

    def score(self, traces=None, y=None) -> float:
        """Fraction of the affinity tensor explained, ``1 - relative error``.

        Parameters
        ----------
        traces : CalciumData or array, optional
            Traces of the same shape as in ``fit``; the fitted model is
            compared with their affinity tensor. Without, with the training
            tensor.
        y : ignored

        Returns
        -------
        float
        """
        self._check_fitted()
        if traces is None:
            x = self.affinity_
        else:
            raw = getattr(traces, "traces", traces)
            arr = check_array("traces", raw, ndim=(2, 3), shape_hint=_TRACES_SHAPE, finite=False)
            if arr.ndim == 2:
                check_n_features(self, arr)
            x = self._tensor(_as_traces(traces), self.bin_frames_)
            if x.shape != self.affinity_.shape:
                fitted = (self.animal_factors_.shape[0], len(self.neuron_labels_))
                raise InputError(
                    f"traces must have the shape the model was fitted on: {fitted[0]} animal(s), "
                    f"{fitted[1]} neurons, {self.n_features_in_} frames; got shape "
                    f"{np.shape(arr)}."
                )
        factors = [self.time_factors_, self.animal_factors_, self.pair_factors_]
        return 1.0 - _error(x, self.weights_, factors)

    def connectome_at(self, time_bin: int, animal: int | None = None) -> np.ndarray:
        """The modelled affinity matrix at one time bin.

        Sums the components' pair factors weighted by their time factor at
        ``time_bin`` (and animal factor of ``animal``, or the mean over animals).

        Parameters
        ----------
        time_bin : int
            ``0 <= time_bin < n_bins``.
        animal : int, optional
            ``0 <= animal < n_animals``; None averages the animal factors.

        Returns
        -------
        ndarray of shape (n_neurons, n_neurons)
        """
        from neuro.connectome.communities import pairs_to_matrix

        self._check_fitted()
        n_bins, n_animals = self.time_factors_.shape[0], self.animal_factors_.shape[0]
        time_bin = check_int("time_bin", time_bin, minimum=0, maximum=n_bins - 1)
        animal = check_int("animal", animal, minimum=0, maximum=n_animals - 1, allow_none=True)
        a = self.animal_factors_.mean(0) if animal is None else self.animal_factors_[animal]
        w = self.weights_ * self.time_factors_[time_bin] * a
        return pairs_to_matrix(self.pair_factors_ @ w, len(self.neuron_labels_))

    def report(self, truth=None, data: dict | None = None):
        """What the fit found, as a :class:`~neuro.connectome.report.ConnectomeReport`.

        Parameters
        ----------
        truth : CalciumGroundTruth, optional
            The simulator's planted truth: the report then includes
            :func:`~neuro.connectome.groundtruth.evaluate_recovery`.
        data : dict, optional
            A description of the input (source, shape, ...) stored under
            ``"data"`` in the summary.

        Returns
        -------
        ConnectomeReport
        """
        from neuro.connectome.groundtruth import evaluate_recovery
        from neuro.connectome.report import ConnectomeReport

        self._check_fitted()
        recovery = None if truth is None else evaluate_recovery(self, truth)
        return ConnectomeReport(self, recovery=recovery, data=data)

    # ------------------------------------------------------------------ persistence
    def _fitted_state(self) -> dict[str, Any]:
        state = super()._fitted_state()
        state.pop("ntf_", None)  # rebuilt from the factors
        state["epochs_"] = [(e.name, float(e.start), float(e.stop)) for e in self.epochs_]
        state["communities_"] = [
            {
                "labels": c.labels,
                "modularity": float(c.modularity),
                "core": c.core,
                "core_density": float(c.core_density),
                "background_density": float(c.background_density),
                "method": c.method,
                "icl": None if c.icl is None else float(c.icl),
                "sbm_model": c.sbm_model,
                "stability": None if c.stability is None else float(c.stability),
                "levels": c.levels,
            }
            for c in self.communities_
        ]
        sel = self.rank_selection_
        state["rank_selection_"] = None
        if sel is not None:
            state["rank_selection_"] = {
                "table": [dict(row) for row in sel.table],
                "rank": int(sel.rank),
                "fits": {int(r): _ntf_state(f) for r, f in sel.fits.items()},
            }
        return state

    def _restore_fitted_state(self, state: dict[str, Any]) -> None:
        from data_loaders.calcium import Epoch
        from neuro.connectome.communities import community_result

        state = dict(state)
        communities = state.pop("communities_")
        selection = state.pop("rank_selection_")
        epochs = state.pop("epochs_")
        super()._restore_fitted_state(state)
        if not hasattr(self, "bin_frames_"):  # saved when bin_size was a number of frames
            self.bin_frames_ = int(self.bin_size)
            step = np.diff(self.bin_times_[:2])
            self.sampling_rate_ = float(self.bin_frames_ / step[0]) if step.size else 1.0
            self.bin_size = self.bin_frames_ / self.sampling_rate_
            self.bin_check_ = None
        self.epochs_ = [Epoch(str(n), float(a), float(b)) for n, a, b in epochs]
        self.ntf_ = NTFResult(
            self.weights_,
            [self.time_factors_, self.animal_factors_, self.pair_factors_],
            self.reconstruction_error_,
            self.n_missing_entries_,
            self.method,
            self.backend,
        )
        self.rank_selection_ = None
        if selection is not None:
            fits = {int(r): NTFResult(**f) for r, f in selection["fits"].items()}
            self.rank_selection_ = RankSelection(selection["table"], selection["rank"], fits)
        self.communities_ = [
            community_result(r, self.pair_factors_[:, r], self.neuron_labels_, **communities[r])
            for r in range(len(communities))
        ]
        self._annotate_graphs()


def _ntf_state(fit: NTFResult) -> dict[str, Any]:
    return {
        "weights": fit.weights,
        "factors": list(fit.factors),
        "error": float(fit.error),
        "n_missing": int(fit.n_missing),
        "method": fit.method,
        "backend": fit.backend,
    }
