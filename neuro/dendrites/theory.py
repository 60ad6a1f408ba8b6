"""The theory of sparse patterns recognised by dendritic segments (Ahmad & Hawkins, 2016).

Symbols follow the paper: ``n`` cells in the population, ``a`` active cells in
a pattern (the paper's *w*), ``s`` synapses on a dendritic segment, ``theta``
its firing (NMDA) threshold, ``m`` patterns stored on one segment (the paper's
*M*), ``b`` an overlap and ``v`` cells of a pattern moved by noise.

Every quantity here is a tail of a hypergeometric distribution:

* false match: the overlap of a random ``a``-of-``n`` pattern with a segment's
  ``s`` cells, ``X ~ Hypergeometric(n, s, a)``, reaches ``theta``;
* match under noise: of the segment's ``s`` cells (all in the stored pattern),
  fewer than ``s - theta + 1`` are among the ``v`` moved ones,
  ``Y ~ Hypergeometric(a, s, v)``.

Two ways to sum a tail, chosen by ``exact``:

* exact (``exact=True``): Python integers (``math.comb``) and a correctly
  rounded division, one parameter point at a time. The reference.
* log-space (``exact=False``): every term's logarithm from Loader's
  saddle-point expansion of the binomial (no cancellation of large
  log-factorials), summed with a log-sum-exp over a ``b`` axis, vectorised over
  all parameter points in chunks of bounded memory. Relative error about
  ``1e-13`` against the exact sum, for ``n`` up to well beyond 100,000 and
  probabilities far below float64's range when the ``log_*`` functions are
  used.

``exact=None`` (the default) picks the exact path when there are at most
:data:`EXACT_MAX_POINTS` points, each with ``n <= EXACT_MAX_N``, and the
log-space path otherwise.

Probabilities below float64's smallest number (about ``5e-324``) come back as
``0.0`` from the plain functions; the ``log_*`` functions return the natural
logarithm instead and never underflow.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import gammaln

from neuro._validation import check_choice, check_float
from neuro.errors import InputError, InputTypeError

__all__ = [
    "EXACT_MAX_N",
    "EXACT_MAX_POINTS",
    "false_match_probability",
    "false_negative_probability",
    "log_false_match_probability",
    "log_noise_match_probability",
    "log_overlap_set_size",
    "log_union_false_match_probability",
    "noise_match_probability",
    "optimal_threshold",
    "overlap_set_size",
    "paper_sweeps",
    "theory_summary",
    "union_false_match_probability",
    "union_synapse_count",
]

#: ``exact=None`` uses integer arithmetic when every point has ``n`` at most this ...
EXACT_MAX_N = 20_000
#: ... and there are at most this many points.
EXACT_MAX_POINTS = 64

# Elements of the (points, b) work array handled at once by the log-space path.
_CHUNK_ELEMENTS = 1 << 20
_LOG_2PI = math.log(2.0 * math.pi)
_UNION_VARIANTS = ("synapses", "expected", "inputs")


# ----------------------------------------------------------------------------- validation
def _as_numbers(name: str, value: Any) -> np.ndarray:
    try:
        return np.asarray(value)
    except (TypeError, ValueError):  # ragged lists
        raise InputTypeError(
            f"{name} must be a number or an array of numbers; got {value!r}."
        ) from None


# The parameters are counts broadcast against each other (arrays of any shape), so they
# are checked here, vectorised, rather than one scalar at a time by neuro._validation.
def _counts(name: str, value: Any, minimum: int = 0) -> np.ndarray:
    """``value`` as an int64 array of whole numbers >= ``minimum``."""
    arr = _as_numbers(name, value)
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise InputTypeError(
            f"{name} must be a whole number or an array of whole numbers; got {value!r} "
            f"(dtype {arr.dtype})."
        )
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise InputError(
                f"{name} must hold whole numbers (it counts cells or patterns); got "
                f"{arr[bad].flat[0]!r}. Round it first, e.g. {name}=round({name})."
            )
    arr = arr.astype(np.int64)
    if (arr < minimum).any():
        what = "negative" if minimum == 0 else f"below {minimum}"
        raise InputError(
            f"{name} must be >= {minimum}; got {arr[arr < minimum].flat[0]} ({what} counts "
            "have no meaning here)."
        )
    return arr


def _fraction(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array of fractions in [0, 1]."""
    arr = _as_numbers(name, value)
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise InputTypeError(f"{name} must be a number or an array of numbers; got {value!r}.")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr) | (arr < 0) | (arr > 1)
    if bad.any():
        raise InputError(
            f"{name} is a fraction of the pattern's active cells and must lie in [0, 1]; "
            f"got {arr[bad].flat[0]!r}."
        )
    return arr


def _require(ok: np.ndarray, message: Callable[[np.ndarray], str]) -> None:
    """Raise ``InputError(message(index))`` at the first point where ``ok`` is False."""
    if not ok.all():
        index = np.argwhere(~ok)[0] if ok.ndim else np.zeros(0, dtype=int)
        raise InputError(message(tuple(int(i) for i in index)))


def _at(arr: np.ndarray, index: tuple) -> int | float:
    return arr[index].item()


def _where(index: tuple) -> str:
    return f" (at index {index})" if index else ""


def _broadcast(**arrays: np.ndarray) -> list[np.ndarray]:
    try:
        return list(np.broadcast_arrays(*arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k}{tuple(np.shape(v))}" for k, v in arrays.items())
        raise InputError(
            f"the parameters must broadcast to one shape (numpy rules); got shapes {shapes}."
        ) from None


def _check_segment(n, a, s, theta=None):
    """Validate and broadcast the segment parameters; return int64 arrays."""
    n = _counts("n", n, minimum=1)
    a = _counts("a", a)
    s = _counts("s", s)
    arrays = {"n": n, "a": a, "s": s}
    if theta is not None:
        arrays["theta"] = _counts("theta", theta)
    out = _broadcast(**arrays)
    n, a, s = out[:3]
    _require(
        a <= n,
        lambda i: (
            f"a must be <= n (a pattern has at most n active cells); got "
            f"a={_at(a, i)} > n={_at(n, i)}{_where(i)}."
        ),
    )
    _require(
        s <= n,
        lambda i: (
            f"s must be <= n (a segment has at most one synapse per cell); got "
            f"s={_at(s, i)} > n={_at(n, i)}{_where(i)}."
        ),
    )
    if theta is not None:
        theta = out[3]
        _require(
            theta <= s,
            lambda i: (
                f"theta must be <= s (a segment cannot need more active synapses than "
                f"it has); got theta={_at(theta, i)} > s={_at(s, i)}{_where(i)}."
            ),
        )
    return out


def _check_noise_segment(a, s, n=None):
    _require(
        s <= a,
        lambda i: (
            f"s must be <= a under noise: the segment samples s of the stored "
            f"pattern's a active cells; got s={_at(s, i)} > a={_at(a, i)}{_where(i)}."
        ),
    )


def _use_exact(exact: bool | None, n: np.ndarray) -> bool:
    if exact is None:
        return n.size <= EXACT_MAX_POINTS and (n.size == 0 or int(n.max()) <= EXACT_MAX_N)
    if not isinstance(exact, (bool, np.bool_)):
        raise InputTypeError(f"exact must be True, False or None (automatic); got {exact!r}.")
    return bool(exact)


def _finish(values: np.ndarray, shape: tuple) -> Any:
    values = values.reshape(shape)
    return values[()] if values.ndim == 0 else values


# ----------------------------------------------------------------------------- log space
def _stirlerr_table() -> np.ndarray:
    # log(k!) - log(sqrt(2 pi k) (k/e)^k) for k = 0..15; k = 0 is never used.
    table = np.zeros(16)
    for k in range(1, 16):
        log_fact = math.fsum(math.log(i) for i in range(2, k + 1))
        table[k] = log_fact - (k + 0.5) * math.log(k) + k - 0.5 * _LOG_2PI
    return table


_STIRLERR = _stirlerr_table()


def _stirlerr(x: np.ndarray) -> np.ndarray:
    """Error of Stirling's formula for log(x!), x whole and >= 0 (Loader, 2000)."""
    small = x <= 15
    out = _STIRLERR[np.where(small, x, 0).astype(np.int64)]
    xx = np.where(small, 16.0, x)
    x2 = xx * xx
    s0, s1, s2, s3, s4 = 1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188
    series = np.where(
        xx > 500,
        (s0 - s1 / x2) / xx,
        np.where(
            xx > 80,
            (s0 - (s1 - s2 / x2) / x2) / xx,
            np.where(
                xx > 35,
                (s0 - (s1 - (s2 - s3 / x2) / x2) / x2) / xx,
                (s0 - (s1 - (s2 - (s3 - s4 / x2) / x2) / x2) / x2) / xx,
            ),
        ),
    )
    return np.where(small, out, series)


def _bd0(x: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``x log(x / mu) + mu - x`` without cancellation (Loader, 2000); ``mu > 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = np.where(x > 0, x * np.log(x / mu), 0.0) + mu - x
        near = np.abs(x - mu) < 0.1 * (x + mu)
        v = np.where(near, (x - mu) / (x + mu), 0.0)
        total = (x - mu) * v
        ej = 2.0 * x * v
        v2 = v * v
        for j in range(1, 13):  # |v| < 0.1: each term is 100 times smaller than the last
            ej = ej * v2
            total = total + ej / (2 * j + 1)
    return np.where(near, total, direct)


def _log_dbinom(x: np.ndarray, size: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """log of C(size, x) p^x q^(size-x) for whole 0 <= x <= size and 0 < p < 1 (Loader)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        at_zero = np.where(p < 0.1, -_bd0(size, size * q) - size * p, size * np.log(q))
        at_full = np.where(q < 0.1, -_bd0(size, size * p) - size * q, size * np.log(p))
        xs = np.clip(x, 1, np.maximum(size - 1, 1))
        inner = (
            _stirlerr(size)
            - _stirlerr(xs)
            - _stirlerr(size - xs)
            - _bd0(xs, size * p)
            - _bd0(size - xs, size * q)
            - 0.5 * (_LOG_2PI + np.log(xs) + np.log1p(-xs / np.maximum(size, 1)))
        )
    return np.where(size == 0, 0.0, np.where(x == 0, at_zero, np.where(x == size, at_full, inner)))


def _log_hyper_pmf(k, N, K, D) -> np.ndarray:
    """log C(K, k) C(N - K, D - k) / C(N, D), elementwise; -inf outside the support."""
    k, N, K, D = (np.asarray(t, dtype=np.float64) for t in np.broadcast_arrays(k, N, K, D))
    kmin = np.maximum(0.0, D - (N - K))
    kmax = np.minimum(K, D)
    inside = (k >= kmin) & (k <= kmax)
    single = kmin == kmax  # one point of support (D in {0, N} or K in {0, N})
    safe = ~single & (N > 0)
    Ns = np.where(safe, N, 2.0)
    Ds = np.where(safe, D, 1.0)
    p = Ds / Ns
    q = (Ns - Ds) / Ns
    Ks = np.where(safe, K, 1.0)
    ks = np.clip(k, 0, Ks)
    rest = np.clip(Ds - ks, 0, Ns - Ks)
    value = _log_dbinom(ks, Ks, p, q) + _log_dbinom(rest, Ns - Ks, p, q) - _log_dbinom(Ds, Ns, p, q)
    value = np.where(single, 0.0, value)
    return np.where(inside, np.minimum(value, 0.0), -np.inf)


def _logsumexp_rows(x: np.ndarray) -> np.ndarray:
    top = x.max(axis=1)
    finite = np.isfinite(top)
    shift = np.where(finite, top, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(finite, shift + np.log(np.exp(x - shift[:, None]).sum(axis=1)), -np.inf)


def _log_tail_logspace(lo, hi, N, K, D) -> np.ndarray:
    """log sum_{k=lo..hi} of the hypergeometric pmf, for 1-d int64 arrays of points."""
    kmin = np.maximum(0, D - (N - K))
    kmax = np.minimum(K, D)
    lo = np.maximum(lo, kmin)
    hi = np.minimum(hi, kmax)
    width = np.maximum(hi - lo + 1, 0)
    out = np.full(lo.shape, -np.inf)
    order = np.argsort(width, kind="stable")
    start = int(np.searchsorted(width[order], 1))  # skip empty sums
    while start < order.size:
        w = int(width[order[start]])
        # the widest point in this chunk sets its width; widths are sorted
        count = max(1, _CHUNK_ELEMENTS // max(w, 1))
        idx = order[start : start + count]
        w = int(width[idx[-1]])
        count = max(1, _CHUNK_ELEMENTS // w)
        idx = order[start : start + count]
        steps = np.arange(w)
        lo_i, N_i, K_i, D_i = (t[idx, None].astype(np.float64) for t in (lo, N, K, D))
        # first term from Loader's expansion, the rest by the ratio of neighbouring terms:
        # t(k+1) / t(k) = (K - k)(D - k) / ((k + 1)(N - K - D + k + 1))
        k = lo_i + steps[None, :-1]
        live = steps[None, :-1] < width[idx, None] - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = ((K_i - k) * (D_i - k)) / ((k + 1) * (N_i - K_i - D_i + k + 1))
            log_ratio = np.log(np.where(live, ratio, 1.0))
        first = _log_hyper_pmf(lo_i[:, 0], N_i[:, 0], K_i[:, 0], D_i[:, 0])
        terms = np.empty((idx.size, w))
        terms[:, 0] = 0.0
        np.cumsum(log_ratio, axis=1, out=terms[:, 1:])
        terms += first[:, None]
        terms = np.where(steps[None, :] < width[idx, None], terms, -np.inf)
        out[idx] = np.minimum(_logsumexp_rows(terms), 0.0)
        start += idx.size
    return out


# ----------------------------------------------------------------------------- exact
def _log_ratio(num: int, den: int) -> float:
    """log(num / den) for positive Python integers of any size, to float precision."""
    if num == 0:
        return -math.inf
    shift = num.bit_length() - den.bit_length()
    ratio = (num / (den << shift)) if shift >= 0 else ((num << -shift) / den)
    return math.log(ratio) + shift * math.log(2.0)


def _exact_tail(lo: int, hi: int, N: int, K: int, D: int) -> tuple[int, int]:
    """Numerator and denominator of sum_{k=lo..hi} C(K, k) C(N - K, D - k) / C(N, D)."""
    lo = max(lo, 0, D - (N - K))
    hi = min(hi, K, D)
    num = sum(math.comb(K, k) * math.comb(N - K, D - k) for k in range(lo, hi + 1))
    return num, math.comb(N, D)


def _tail(lo, hi, N, K, D, *, exact: bool, log: bool) -> np.ndarray:
    """The hypergeometric sum over ``lo..hi`` for broadcast int64 arrays, flattened."""
    lo, hi, N, K, D = (np.ravel(t) for t in np.broadcast_arrays(lo, hi, N, K, D))
    if not exact:
        out = _log_tail_logspace(lo, hi, N, K, D)
        return out if log else np.exp(out)
    out = np.empty(lo.size)
    for i in range(lo.size):
        num, den = _exact_tail(int(lo[i]), int(hi[i]), int(N[i]), int(K[i]), int(D[i]))
        out[i] = _log_ratio(num, den) if log else num / den
    return out


# ----------------------------------------------------------------------------- public API
def overlap_set_size(n, a, s, b):
    """Number of ``a``-of-``n`` patterns sharing exactly ``b`` cells with a segment's ``s``.

    ``|Omega(n, a, s, b)| = C(s, b) * C(n - s, a - b)``, with ``C(k, j) = 0`` when
    ``j < 0`` or ``j > k``. Computed with exact integers.

    Parameters
    ----------
    n, a, s, b : int or array of int
        Cells, active cells per pattern, synapses, overlap; broadcast together.

    Returns
    -------
    int or ndarray of object (Python ints)
        Exact counts; use :func:`log_overlap_set_size` for a float logarithm.

    Examples
    --------
    >>> overlap_set_size(10, 3, 4, 2)  # C(4, 2) * C(6, 1)
    36
    >>> overlap_set_size(10, 3, 4, [0, 1, 2, 3, 4]).tolist()
    [20, 60, 36, 4, 0]
    """
    n, a, s = _check_segment(n, a, s)
    b = _counts("b", b)
    n, a, s, b = _broadcast(n=n, a=a, s=s, b=b)
    flat = [
        math.comb(int(si), int(bi)) * math.comb(int(ni - si), int(ai - bi)) if bi <= ai else 0
        for ni, ai, si, bi in zip(n.ravel(), a.ravel(), s.ravel(), b.ravel(), strict=True)
    ]
    if n.ndim == 0:
        return flat[0]
    out = np.empty(n.size, dtype=object)
    out[:] = flat
    return out.reshape(n.shape)


def log_overlap_set_size(n, a, s, b):
    """Natural log of :func:`overlap_set_size` as float64 (``-inf`` where it is 0).

    Examples
    --------
    >>> float(np.exp(log_overlap_set_size(10, 3, 4, 2)).round(6))
    36.0
    """
    n, a, s = _check_segment(n, a, s)
    b = _counts("b", b)
    n, a, s, b = (t.astype(np.float64) for t in _broadcast(n=n, a=a, s=s, b=b))
    ok = (b <= s) & (a - b >= 0) & (a - b <= n - s)
    with np.errstate(invalid="ignore"):
        value = (
            gammaln(s + 1)
            - gammaln(b + 1)
            - gammaln(s - b + 1)
            + gammaln(n - s + 1)
            - gammaln(a - b + 1)
            - gammaln(n - s - a + b + 1)
        )
    value = np.where(ok, value, -np.inf)
    return value[()] if value.ndim == 0 else value


def log_false_match_probability(n, a, s, theta, *, exact: bool | None = None):
    """Natural log of :func:`false_match_probability`; never underflows.

    Examples
    --------
    >>> round(float(log_false_match_probability(100_000, 2_000, 50, 40)), 3)
    -134.006
    """
    n, a, s, theta = _check_segment(n, a, s, theta)
    out = _tail(theta, s, n, s, a, exact=_use_exact(exact, n), log=True)
    return _finish(out, n.shape)


def false_match_probability(n, a, s, theta, *, exact: bool | None = None):
    """Probability that a random pattern falsely matches a dendritic segment.

    A segment has ``s`` synapses on cells of a population of ``n`` and fires
    when at least ``theta`` of them are active. A random pattern of ``a`` active
    cells (all ``C(n, a)`` equally likely) makes it fire with probability

    ``P_fm = sum_{b=theta..s} C(s, b) C(n - s, a - b) / C(n, a)``

    (equation of Ahmad & Hawkins, 2016).

    Parameters
    ----------
    n, a, s, theta : int or array of int
        Cells, active cells per pattern, synapses on the segment, threshold;
        broadcast together. Need ``a <= n``, ``s <= n``, ``theta <= s``.
    exact : bool or None, default=None
        True: exact integer arithmetic; False: vectorised log-space sums;
        None: exact for at most :data:`EXACT_MAX_POINTS` points with
        ``n <= EXACT_MAX_N``, log-space otherwise. The two agree to about
        ``1e-13`` relative.

    Returns
    -------
    float or ndarray of float64
        Broadcast shape of the inputs. Values below about ``5e-324`` are 0;
        use :func:`log_false_match_probability` for those.

    Raises
    ------
    InputError
        Negative or fractional counts, ``a > n``, ``s > n`` or ``theta > s``.

    Examples
    --------
    >>> f"{false_match_probability(2000, 32, 30, 15):.4e}"
    '3.2696e-21'
    >>> false_match_probability(2000, 32, [2, 4], [1, 2]).round(6).tolist()
    [0.031752, 0.001459]
    """
    n, a, s, theta = _check_segment(n, a, s, theta)
    out = _tail(theta, s, n, s, a, exact=_use_exact(exact, n), log=False)
    return _finish(out, n.shape)


def false_negative_probability(a, s, theta, v, *, exact: bool | None = None):
    """Probability that a stored pattern, with ``v`` of its cells moved, fails to match.

    The segment's ``s`` synapses sit on cells of the stored pattern of ``a``
    cells. Noise replaces ``v`` of those ``a`` cells by others (the pattern keeps
    ``a`` active cells). The segment fails when more than ``s - theta`` of its
    cells were moved:

    ``P_fn = sum_{b=s-theta+1..s} C(s, b) C(a - s, v - b) / C(a, v)``.

    The population size drops out.

    Parameters
    ----------
    a, s, theta, v : int or array of int
        Need ``s <= a``, ``theta <= s`` and ``v <= a``.
    exact : bool or None, default=None
        As in :func:`false_match_probability`.

    Returns
    -------
    float or ndarray of float64

    Examples
    --------
    >>> false_negative_probability(128, 30, [8, 12, 16], 64).round(4).tolist()
    [0.0007, 0.0717, 0.5825]
    """
    a = _counts("a", a, minimum=1)
    s = _counts("s", s)
    theta = _counts("theta", theta)
    v = _counts("v", v)
    a, s, theta, v = _broadcast(a=a, s=s, theta=theta, v=v)
    _check_noise_segment(a, s)
    _require(
        theta <= s,
        lambda i: f"theta must be <= s; got theta={_at(theta, i)} > s={_at(s, i)}{_where(i)}.",
    )
    _require(
        v <= a,
        lambda i: (
            f"v must be <= a (noise moves at most all of the pattern's cells); got "
            f"v={_at(v, i)} > a={_at(a, i)}{_where(i)}."
        ),
    )
    out = _tail(s - theta + 1, s, a, s, v, exact=_use_exact(exact, a), log=False)
    return _finish(out, a.shape)


def _noise_args(n, a, s, theta, noise):
    n, a, s, theta = _check_segment(n, a, s, theta)
    noise = _fraction("noise", noise)
    n, a, s, theta, noise = _broadcast(n=n, a=a, s=s, theta=theta, noise=noise)
    _check_noise_segment(a, s)
    return n, a, s, theta, noise


def _noise_match(n, a, s, theta, noise, interpolate, exact, log):
    n, a, s, theta, noise = _noise_args(n, a, s, theta, noise)
    use_exact = _use_exact(exact, n)
    v_real = noise * a
    if not interpolate:
        v = np.floor(v_real + 0.5).astype(np.int64)
        return _finish(_tail(0, s - theta, a, s, v, exact=use_exact, log=log), n.shape)
    lo_v = np.floor(v_real).astype(np.int64)
    hi_v = np.minimum(lo_v + 1, a)
    frac = (v_real - lo_v).ravel()
    p_lo = _tail(0, s - theta, a, s, lo_v, exact=use_exact, log=False)
    p_hi = _tail(0, s - theta, a, s, hi_v, exact=use_exact, log=False)
    value = (1 - frac) * p_lo + frac * p_hi
    if log:
        with np.errstate(divide="ignore"):
            value = np.log(value)
    return _finish(value, n.shape)


def noise_match_probability(n, a, s, theta, noise, *, interpolate=False, exact=None):
    """Probability that a segment still matches its stored pattern under noise.

    The segment's ``s`` synapses sample the stored pattern's ``a`` active cells;
    noise replaces ``v = noise * a`` of the pattern's cells by cells outside it.
    The segment still fires when at least ``theta`` of its cells stay active:
    ``1 - P_fn(a, s, theta, v)`` (see :func:`false_negative_probability`),
    computed directly as the lower tail, without the cancellation of ``1 - P_fn``.

    Parameters
    ----------
    n, a, s, theta : int or array of int
        As in :func:`false_match_probability`, plus ``s <= a``. ``n`` drops out
        of the result; it is checked (``a <= n``) and kept for symmetry.
    noise : float or array of float in [0, 1]
        Fraction of the pattern's ``a`` active cells that are replaced.
    interpolate : bool, default=False
        ``noise * a`` need not be whole. False: round it to the nearest whole
        number (halves round up). True: interpolate linearly between the values
        at ``floor(noise * a)`` and ``floor(noise * a) + 1``, a smooth curve in
        ``noise``.
    exact : bool or None, default=None
        As in :func:`false_match_probability`.

    Returns
    -------
    float or ndarray of float64

    Examples
    --------
    >>> noise_match_probability(2000, 128, 30, [8, 12, 16], 0.5).round(4).tolist()
    [0.9993, 0.9283, 0.4175]
    >>> float(noise_match_probability(2000, 10, 5, 5, 0.25))  # v = round(2.5) = 3
    0.08333333333333333
    """
    return _noise_match(n, a, s, theta, noise, interpolate, exact, log=False)


def log_noise_match_probability(n, a, s, theta, noise, *, interpolate=False, exact=None):
    """Natural log of :func:`noise_match_probability`; never underflows.

    Examples
    --------
    >>> round(float(log_noise_match_probability(2000, 128, 30, 30, 0.75)), 2)
    -61.0
    """
    return _noise_match(n, a, s, theta, noise, interpolate, exact, log=True)


def union_synapse_count(n, s, m):
    """Expected distinct cells covered by ``m`` random ``s``-synapse samples, rounded.

    ``s_M = round(n * (1 - (1 - s / n) ** m))`` (halves round up).

    Examples
    --------
    >>> union_synapse_count(1000, 25, [1, 2, 3]).tolist()
    [25, 49, 73]
    """
    n = _counts("n", n, minimum=1)
    s = _counts("s", s)
    m = _counts("m", m, minimum=1)
    n, s, m = _broadcast(n=n, s=s, m=m)
    _require(s <= n, lambda i: f"s must be <= n; got s={_at(s, i)} > n={_at(n, i)}{_where(i)}.")
    value = np.floor(n * -np.expm1(m * np.log1p(-s / n)) + 0.5).astype(np.int64)
    return value[()] if value.ndim == 0 else value


def _union_size_distribution(n: int, s: int, m: int) -> np.ndarray:
    """Distribution of |union of m independent uniform s-subsets of n cells|."""
    size = min(n, m * s)
    dist = np.zeros(size + 1)
    dist[0] = 1.0
    u = np.arange(size + 1)[:, None]
    k = np.arange(s + 1)[None, :]  # overlap of the new sample with the union so far
    trans = np.exp(_log_hyper_pmf(k, n, u, s))  # (u, k)
    for _ in range(m):
        new = np.zeros_like(dist)
        target = u + s - k
        ok = (target <= size) & (trans > 0)
        np.add.at(new, target[ok], (dist[:, None] * trans)[ok])
        dist = new
    return dist


def _union(n, a, s, theta, m, variant, exact, log):
    check_choice("variant", variant, _UNION_VARIANTS)
    n, a, s, theta = _check_segment(n, a, s, theta)
    m = _counts("m", m, minimum=1)
    n, a, s, theta, m = _broadcast(n=n, a=a, s=s, theta=theta, m=m)
    if variant == "synapses":
        s_m = union_synapse_count(n, s, m)
        return _finish(_tail(theta, s_m, n, s_m, a, exact=_use_exact(exact, n), log=log), n.shape)
    if exact:
        raise InputError(
            f"exact=True is available for variant='synapses' only; variant={variant!r} is "
            "computed in log space. Pass exact=None or False."
        )
    if variant == "expected":
        out = np.empty(n.size)
        for i, (ni, ai, si, ti, mi) in enumerate(
            zip(n.ravel(), a.ravel(), s.ravel(), theta.ravel(), m.ravel(), strict=True)
        ):
            dist = _union_size_distribution(int(ni), int(si), int(mi))
            sizes = np.arange(dist.size)
            log_fm = _log_tail_logspace(
                np.full(sizes.shape, ti),
                sizes,
                np.full(sizes.shape, ni),
                sizes,
                np.full(sizes.shape, ai),
            )
            with np.errstate(divide="ignore"):
                terms = np.log(dist) + log_fm
            out[i] = _logsumexp_rows(terms[None, :])[0]
    else:  # "inputs": a union of m patterns, a_M active cells, gamma-function binomials
        nf, sf, tf = n.astype(float), s.astype(float), theta.astype(float)
        a_m = nf * -np.expm1(m * np.log1p(-a / nf))
        width = int(s.max()) + 1 if s.size else 1
        b = np.arange(width).reshape((1,) * n.ndim + (width,))
        nf, sf, tf, a_m = (t[..., None] for t in (nf, sf, tf, a_m))
        ok = (b >= tf) & (b <= sf) & (b <= a_m) & (a_m - b <= nf - sf)
        with np.errstate(invalid="ignore"):
            terms = (
                gammaln(sf + 1)
                - gammaln(b + 1)
                - gammaln(sf - b + 1)
                + gammaln(nf - sf + 1)
                - gammaln(a_m - b + 1)
                - gammaln(nf - sf - a_m + b + 1)
                - gammaln(nf + 1)
                + gammaln(a_m + 1)
                + gammaln(nf - a_m + 1)
            )
        terms = np.where(ok, terms, -np.inf).reshape(-1, width)
        out = np.minimum(_logsumexp_rows(terms), 0.0)
    return _finish(out if log else np.exp(out), n.shape)


def union_false_match_probability(n, a, s, theta, m, *, variant="synapses", exact=None):
    """False-match rate of a segment that stores ``m`` patterns (the union property).

    Parameters
    ----------
    n, a, s, theta : int or array of int
        As in :func:`false_match_probability`.
    m : int or array of int, >= 1
        Patterns stored on the segment, ``s`` synapses each.
    variant : {"synapses", "expected", "inputs"}, default="synapses"
        * ``"synapses"`` (the paper's equation): the segment covers about
          ``s_M = round(n (1 - (1 - s/n)^m))`` distinct cells
          (:func:`union_synapse_count`), and the rate is
          ``false_match_probability(n, a, s_M, theta)``. Exact arithmetic applies.
        * ``"expected"``: the exact expectation of the same model: the union's
          size is random (``m`` independent uniform ``s``-subsets); its
          distribution is computed by a Markov chain over the size and the rate
          averaged over it. This is what a simulation of the model estimates;
          ``"synapses"`` approximates it by plugging in the rounded mean size.
          One point at a time.
        * ``"inputs"`` (the variant of the authors' plotted union figure): the
          *input* is a union of ``m`` random patterns with
          ``a_M = n (1 - (1 - a/n)^m)`` active cells, matched against one
          ``s``-synapse segment, with ``C`` extended to non-whole ``a_M`` by the
          gamma function (terms with a negative argument are left out).
    exact : bool or None, default=None
        As in :func:`false_match_probability`; only ``variant="synapses"`` has
        an exact path.

    Returns
    -------
    float or ndarray of float64

    Examples
    --------
    >>> union_false_match_probability(1000, 200, 25, 15, [1, 2, 3]).round(5).tolist()
    [1e-05, 0.04739, 0.50165]
    """
    return _union(n, a, s, theta, m, variant, exact, log=False)


def log_union_false_match_probability(n, a, s, theta, m, *, variant="synapses", exact=None):
    """Natural log of :func:`union_false_match_probability`; never underflows.

    Examples
    --------
    >>> round(float(log_union_false_match_probability(100_000, 100, 20, 16, 5)), 2)
    -70.11
    """
    return _union(n, a, s, theta, m, variant, exact, log=True)


def optimal_threshold(n, a, s, noise, *, max_false_match=None):
    """The NMDA threshold that best trades false matches against noise robustness.

    Lower thresholds tolerate more noise but let more random patterns through;
    higher ones do the reverse. Two definitions, both over ``theta = 1..s``:

    * ``max_false_match=None`` (default): the ``theta`` minimising the total
      error ``P_fm(n, a, s, theta) + P_fn(a, s, theta, round(noise * a))``,
      the probability of a false match plus that of missing the stored pattern
      under noise (an equal-cost Bayes error). Totals are compared in log space;
      where they are equal in floating point, the smaller of the two parts (the
      one the rounding hid) decides, then the smaller ``theta``.
    * ``max_false_match=eps``: the smallest ``theta`` whose false-match rate is
      at most ``eps``, which (``P_fn`` grows with ``theta``) is the most
      noise-robust threshold meeting that budget; -1 where none meets it. The
      paper's discussion uses this reading with ``eps = 1e-7``.

    Parameters
    ----------
    n, a, s : int or array of int
        As in :func:`false_match_probability`, with ``1 <= s <= a``.
    noise : float or array of float in [0, 1]
        Fraction of the stored pattern's active cells replaced by noise (not
        used with ``max_false_match``, but validated and broadcast).
    max_false_match : float in (0, 1], optional

    Returns
    -------
    int or ndarray of int64

    Examples
    --------
    >>> int(optimal_threshold(100_000, 100, 20, 0.05))  # P_fm negligible, v = 5: theta = s - v
    15
    >>> int(optimal_threshold(1000, 50, 20, 0.2, max_false_match=1e-7))
    10
    """
    n, a, s = _check_segment(n, a, s)
    noise = _fraction("noise", noise)
    n, a, s, noise = _broadcast(n=n, a=a, s=s, noise=noise)
    _require(s >= 1, lambda i: f"s must be >= 1 to have a threshold; got s=0{_where(i)}.")
    _check_noise_segment(a, s)
    check_float(
        "max_false_match",
        max_false_match,
        minimum=0.0,
        strict_minimum=True,
        maximum=1.0,
        allow_none=True,
    )
    width = int(s.max()) if s.size else 1
    thetas = np.arange(1, width + 1)
    shape = (*n.shape, width)
    grid = [np.broadcast_to(t[..., None], shape).ravel() for t in (n, a, s)]
    nn, aa, ss = grid
    tt = np.broadcast_to(thetas, shape).ravel()
    valid = (tt <= ss).reshape(-1, width)
    tt = np.minimum(tt, ss)
    if max_false_match is not None:
        log_fm = _log_tail_logspace(tt, ss, nn, ss, aa).reshape(-1, width)
        ok = valid & (log_fm <= math.log(float(max_false_match)) + 1e-12)
        best = np.where(ok.any(axis=1), ok.argmax(axis=1) + 1, -1)
        return _finish(best.astype(np.int64), n.shape)
    v = np.broadcast_to(np.floor(noise * a + 0.5).astype(np.int64)[..., None], shape).ravel()
    log_fm = _log_tail_logspace(tt, ss, nn, ss, aa).reshape(-1, width)
    log_fn = _log_tail_logspace(ss - tt + 1, ss, aa, ss, v).reshape(-1, width)
    # rank by the total error in log space (no underflow); where totals are equal in
    # floating point, by the smaller of the two parts (what the rounding hid), then by theta
    log_total = np.where(valid, np.logaddexp(log_fm, log_fn), np.inf)
    minor = np.minimum(log_fm, log_fn)
    rank = np.broadcast_to(thetas, log_total.shape)
    best = np.lexsort((rank, minor, log_total), axis=-1)[:, 0] + 1
    return _finish(best.astype(np.int64), n.shape)


def theory_summary(n, a, s, theta, *, m=1, noise=0.0, exact=None) -> dict[str, float | int]:
    """All of the theory's numbers for one segment setting, as a flat dict.

    Parameters
    ----------
    n, a, s, theta : int
    m : int, default=1
        Patterns stored on the segment (union property).
    noise : float, default=0.0
        Fraction of the stored pattern's cells replaced; noise quantities are
        left out when ``s > a``.
    exact : bool or None, default=None

    Returns
    -------
    dict
        ``log10_num_patterns``, ``false_match_probability`` and its ``log10_``,
        ``union_synapses``, ``union_false_match_probability`` and its ``log10_``,
        ``noise_cells_moved``, ``noise_match_probability``,
        ``false_negative_probability``, ``optimal_threshold``,
        ``min_threshold_false_match_1e-7``.

    Examples
    --------
    >>> d = theory_summary(2000, 32, 30, 15, m=3, noise=0.5)
    >>> round(d["log10_false_match_probability"], 4)
    -20.4855
    """
    for name, value in (("n", n), ("a", a), ("s", s), ("theta", theta), ("m", m), ("noise", noise)):
        if np.ndim(value) != 0:
            raise InputError(f"{name} must be a single number here; got {value!r}.")
    ln10 = math.log(10.0)
    log_fm = float(log_false_match_probability(n, a, s, theta, exact=exact))
    log_u = float(log_union_false_match_probability(n, a, s, theta, m, exact=exact))
    out: dict[str, float | int] = {
        "n": int(n),
        "a": int(a),
        "s": int(s),
        "theta": int(theta),
        "m": int(m),
        "noise": float(_fraction("noise", noise)),
        "log10_num_patterns": float(
            (gammaln(int(n) + 1) - gammaln(int(a) + 1) - gammaln(int(n) - int(a) + 1)) / ln10
        ),
        "false_match_probability": math.exp(log_fm),
        "log10_false_match_probability": log_fm / ln10,
        "union_synapses": int(union_synapse_count(n, s, m)),
        "union_false_match_probability": math.exp(log_u),
        "log10_union_false_match_probability": log_u / ln10,
    }
    if s <= a:
        match = float(noise_match_probability(n, a, s, theta, noise, exact=exact))
        out["noise_cells_moved"] = math.floor(float(noise) * int(a) + 0.5)
        out["noise_match_probability"] = match
        out["false_negative_probability"] = float(
            false_negative_probability(a, s, theta, out["noise_cells_moved"], exact=exact)
        )
        if s >= 1:
            out["optimal_threshold"] = int(optimal_threshold(n, a, s, noise))
            out["min_threshold_false_match_1e-7"] = int(
                optimal_threshold(n, a, s, noise, max_false_match=1e-7)
            )
    return out


def paper_sweeps() -> dict[str, dict[str, np.ndarray]]:
    """Parameter grids of the paper's main figures, as broadcast-ready arrays.

    Returns
    -------
    dict
        ``"error_vs_n"``: ``s=24, theta=12``, ``a`` in {64, 128, 256}, ``n`` from
        ``a`` to 3000 (false match vs population size);
        ``"error_vs_a"``: ``s=24, theta=12``, ``n`` in {1000, 2000, 4000}, ``a``
        from 12 to 1000;
        ``"union"``: ``n`` in {1000, 2000, 4000, 8000}, ``a=200, s=25,
        theta=15``, ``m`` from 1 to 30;
        ``"noise"``: ``n=2000, a=128, s=30``, ``theta`` in {8, 12, 16, 20}, noise
        from 0 to 1 in steps of 1/128;
        ``"threshold"``: the authors' grid ``n`` in {1000, 5000, ..., 17000},
        sparsity 0.5% to 3% (``a = round(sparsity * n)``), ``s`` in {20, ..., 50},
        ``theta`` 1 to 20.

    Examples
    --------
    >>> sorted(paper_sweeps())
    ['error_vs_a', 'error_vs_n', 'noise', 'threshold', 'union']
    """
    a = np.array([64, 128, 256])[:, None]
    n = np.arange(300, 3001, 25)[None, :]
    n = np.maximum(n, a)
    sweeps = {"error_vs_n": {"n": n, "a": a, "s": 24, "theta": 12}}
    sweeps["error_vs_a"] = {
        "n": np.array([1000, 2000, 4000])[:, None],
        "a": np.arange(12, 1001, 4)[None, :],
        "s": 24,
        "theta": 12,
    }
    sweeps["union"] = {
        "n": np.array([1000, 2000, 4000, 8000])[:, None],
        "a": 200,
        "s": 25,
        "theta": 15,
        "m": np.arange(1, 31)[None, :],
    }
    sweeps["noise"] = {
        "n": 2000,
        "a": 128,
        "s": 30,
        "theta": np.array([8, 12, 16, 20])[:, None],
        "noise": (np.arange(129) / 128)[None, :],
    }
    nn = np.arange(1000, 17001, 4000)
    sparsity = np.arange(1, 7) * 0.005
    ss = np.arange(20, 51, 5)
    thetas = np.arange(1, 21)
    nn, sp, ss, tt = np.meshgrid(nn, sparsity, ss, thetas, indexing="ij")
    sweeps["threshold"] = {
        "n": nn,
        "a": np.floor(sp * nn + 0.5).astype(np.int64),
        "s": ss,
        "theta": tt,
    }
    return sweeps
