"""How close decoded 3D objects are to the true ones: IoU, Chamfer, identification.

Objects are occupancy grids ``(G, G, G)`` (or batches ``(n, G, G, G)``) with
values in [0, 1]; a cell counts as occupied when its value is at least
``threshold``. Cell ``i`` of an axis of length ``G`` has its centre at
``-1 + (2 i + 1) / G`` in the cube [-1, 1]^3, and distances are in those cube
units (the cube's edge is 2, its diagonal ``2 * sqrt(3)``).

* :func:`iou` (intersection over union per object) and :func:`multiscale_iou`
  (IoU after max-pooling both grids by 2, 4, ...: the coarse scales measure the
  form, scale 1 the detail);
* :func:`surface_points` and :func:`chamfer_distance` (symmetric mean
  nearest-surface distance);
* :func:`two_way_identification` (is the decoded object closer to its own
  truth than to another object's?), :func:`category_accuracy`;
* :func:`mean_interval` (mean with a percentile-bootstrap interval over items)
  and :func:`shape_metrics` (all of them, one row per object).

Examples
--------
>>> import numpy as np
>>> g = np.zeros((8, 8, 8), dtype=np.float32)
>>> g[2:6, 2:6, 2:6] = 1.0
>>> float(iou(g, g)[0]), float(chamfer_distance(g, g)[0])
(1.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from neuro._validation import check_array, check_choice, check_float, check_int, check_same_length
from neuro.errors import InputError

__all__ = [
    "category_accuracy",
    "chamfer_distance",
    "iou",
    "mean_interval",
    "multiscale_iou",
    "shape_metrics",
    "surface_points",
    "two_way_identification",
]

#: The cube's diagonal: the Chamfer distance given to an empty object against a non-empty one.
EMPTY_CHAMFER = 2.0 * float(np.sqrt(3.0))

_GRID_HINT = "(n, G, G, G) or (G, G, G)"


def _grids(name: str, value: Any) -> np.ndarray:
    """``value`` as a batch ``(n, G0, G1, G2)`` of finite numbers."""
    arr = check_array(name, value, ndim=(3, 4), shape_hint=_GRID_HINT)
    return arr[None] if arr.ndim == 3 else arr


def _pair(pred: Any, true: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = _grids("pred", pred), _grids("true", true)
    if p.shape != t.shape:
        raise InputError(
            f"pred and true must have the same shape {_GRID_HINT}; got pred {p.shape} and true "
            f"{t.shape}. Decode onto the grid of the true objects (same n and G)."
        )
    return p, t


def _threshold(threshold: Any) -> float:
    return check_float("threshold", threshold, minimum=0.0, maximum=1.0, strict_minimum=True)


def _iou_of(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """IoU of boolean batches ``(n, ...)``; 1.0 where both are empty."""
    p, t = p.reshape(len(p), -1), t.reshape(len(t), -1)
    inter = np.count_nonzero(p & t, axis=1)
    union = np.count_nonzero(p | t, axis=1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def iou(pred: Any, true: Any, threshold: float = 0.5) -> np.ndarray:
    """Intersection over union of each decoded object with its true object.

    Parameters
    ----------
    pred, true : array-like of shape (n, G, G, G) or (G, G, G)
        Occupancy grids (probabilities in [0, 1]); NumPy arrays or torch tensors.
    threshold : float, default=0.5
        A cell is occupied where its value is ``>= threshold``.

    Returns
    -------
    ndarray of shape (n,), float64
        ``|pred & true| / |pred | true|`` per object; 1.0 where both are empty.

    Examples
    --------
    >>> a = np.zeros((1, 6, 6, 6)); a[0, :3] = 1
    >>> b = np.zeros((1, 6, 6, 6)); b[0, :2] = 1
    >>> iou(a, b).round(3)
    array([0.667])
    """
    p, t = _pair(pred, true)
    thr = _threshold(threshold)
    return _iou_of(p >= thr, t >= thr)


def _block_max(occ: np.ndarray, factor: int) -> np.ndarray:
    """Max-pool boolean grids ``(n, A, B, C)`` by ``factor`` (zero-padded to a multiple)."""
    if factor == 1:
        return occ
    n = len(occ)
    pad = [(0, 0)] + [(0, (-s) % factor) for s in occ.shape[1:]]
    occ = np.pad(occ, pad)
    a, b, c = (s // factor for s in occ.shape[1:])
    return occ.reshape(n, a, factor, b, factor, c, factor).any(axis=(2, 4, 6))


def multiscale_iou(
    pred: Any, true: Any, scales: Sequence[int] = (1, 2, 4), threshold: float = 0.5
) -> np.ndarray:
    """IoU after max-pooling both grids by each factor: form at coarse scales, detail at 1.

    Parameters
    ----------
    pred, true : array-like of shape (n, G, G, G) or (G, G, G)
    scales : sequence of int, default=(1, 2, 4)
        Block sizes: a coarse cell is occupied if any of its ``s^3`` cells is
        (grids are zero-padded to a multiple of ``s``).
    threshold : float, default=0.5

    Returns
    -------
    ndarray of shape (n, len(scales)), float64

    Examples
    --------
    >>> a = np.zeros((8, 8, 8)); a[4] = 1        # a one-cell-thick plate
    >>> b = np.zeros((8, 8, 8)); b[5] = 1        # the same plate moved by one cell
    >>> multiscale_iou(a, b, scales=(1, 2, 4))
    array([[0., 1., 1.]])
    """
    p, t = _pair(pred, true)
    thr = _threshold(threshold)
    if isinstance(scales, (int, np.integer)):
        scales = (scales,)
    scales = [check_int("scales", s, minimum=1) for s in scales]
    if not scales:
        raise InputError("scales is empty; give at least one block size, e.g. (1, 2, 4).")
    p, t = p >= thr, t >= thr
    return np.stack([_iou_of(_block_max(p, s), _block_max(t, s)) for s in scales], axis=1)


def _surface_index(occ: np.ndarray) -> np.ndarray:
    """Indices ``(m, 3)`` of occupied cells with an unoccupied 6-neighbour (border counts)."""
    padded = np.pad(occ, 1)
    inner = padded[1:-1, 1:-1, 1:-1]
    interior = inner.copy()
    for axis in range(3):
        for shift in (0, 2):
            sl = [slice(1, -1)] * 3
            sl[axis] = slice(shift, shift + occ.shape[axis])
            interior &= padded[tuple(sl)]
    return np.argwhere(inner & ~interior)


def _centres(index: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    size = np.asarray(shape, dtype=np.float64)
    return -1.0 + (2.0 * index + 1.0) / size


def surface_points(grid: Any, threshold: float = 0.5) -> np.ndarray:
    """Centres of the surface cells of one object, in cube coordinates.

    A surface cell is an occupied cell with at least one unoccupied
    6-neighbour; the grid is padded with empty cells, so occupied cells on the
    grid's border are surface cells too.

    Parameters
    ----------
    grid : array-like of shape (G, G, G)
    threshold : float, default=0.5

    Returns
    -------
    ndarray of shape (m, 3), float64
        Cell centres in [-1, 1]^3 (``m = 0`` for an empty grid).

    Examples
    --------
    >>> g = np.zeros((4, 4, 4)); g[1:3, 1:3, 1:3] = 1
    >>> surface_points(g).shape
    (8, 3)
    """
    arr = check_array("grid", grid, ndim=3, shape_hint="(G, G, G)")
    occ = arr >= _threshold(threshold)
    return _centres(_surface_index(occ), occ.shape)


def _mean_nearest(a: torch.Tensor, b: torch.Tensor, chunk: int) -> float:
    """Mean over ``a``'s rows of the distance to the nearest row of ``b`` (chunked)."""
    total = 0.0
    for start in range(0, len(a), chunk):
        d = torch.cdist(a[start : start + chunk], b, compute_mode="donot_use_mm_for_euclid_dist")
        total += float(d.min(dim=1).values.sum())
    return total / len(a)


def chamfer_distance(
    pred: Any,
    true: Any,
    threshold: float = 0.5,
    max_points: int | None = 2048,
    seed: int = 0,
) -> np.ndarray:
    """Symmetric Chamfer distance between the surfaces of decoded and true objects.

    ``(mean_a min_b |a - b| + mean_b min_a |a - b|) / 2`` over the surface
    points (:func:`surface_points`) ``a`` of ``pred`` and ``b`` of ``true``,
    in cube units (a cell is ``2 / G`` wide).

    Parameters
    ----------
    pred, true : array-like of shape (n, G, G, G) or (G, G, G)
    threshold : float, default=0.5
    max_points : int or None, default=2048
        At most this many surface points per object are used, drawn without
        replacement (reproducibly from ``seed`` and the object's index); None
        uses all of them. The pairwise distances are computed in chunks of
        rows, so memory stays near ``max_points * 4096`` floats.
    seed : int, default=0

    Returns
    -------
    ndarray of shape (n,), float64
        0 for identical objects and where both are empty. An empty object
        against a non-empty one gets the cube's diagonal ``2 * sqrt(3)``
        (about 3.46), the largest distance two points of the cube can have.

    Examples
    --------
    >>> a = np.zeros((8, 8, 8)); a[2] = 1           # a plate
    >>> b = np.zeros((8, 8, 8)); b[4] = 1           # moved by two cells (0.5 cube units)
    >>> chamfer_distance(a, b)
    array([0.5])
    """
    p, t = _pair(pred, true)
    thr = _threshold(threshold)
    max_points = check_int("max_points", max_points, minimum=1, allow_none=True)
    seed = check_int("seed", seed, minimum=0)
    out = np.empty(len(p), dtype=np.float64)
    chunk = 4096
    for i in range(len(p)):
        pts = []
        for which, grid in enumerate((p[i], t[i])):
            xyz = _centres(_surface_index(grid >= thr), grid.shape)
            if max_points is not None and len(xyz) > max_points:
                rng = np.random.default_rng([seed, i, which])
                xyz = xyz[np.sort(rng.choice(len(xyz), max_points, replace=False))]
            pts.append(torch.from_numpy(xyz))
        a, b = pts
        if len(a) == 0 and len(b) == 0:
            out[i] = 0.0
        elif len(a) == 0 or len(b) == 0:
            out[i] = EMPTY_CHAMFER
        else:
            out[i] = 0.5 * (_mean_nearest(a, b, chunk) + _mean_nearest(b, a, chunk))
    return out


def _similarity(p: np.ndarray, t: np.ndarray, metric: str, thr: float, chunk: int) -> np.ndarray:
    """``S[i, j] = sim(pred_i, true_j)`` for flattened batches, in row chunks."""
    n = len(p)
    p = p.reshape(n, -1)
    t = t.reshape(n, -1)
    if metric == "iou":
        pb = torch.from_numpy((p >= thr).astype(np.float32))
        tb = torch.from_numpy((t >= thr).astype(np.float32))
        p_count, t_count = pb.sum(1), tb.sum(1)
    else:
        pb = torch.from_numpy(p.astype(np.float64))
        tb = torch.from_numpy(t.astype(np.float64))
        pb = pb - pb.mean(1, keepdim=True)
        tb = tb - tb.mean(1, keepdim=True)
        pb = pb / pb.norm(dim=1, keepdim=True).clamp_min(1e-12)
        tb = tb / tb.norm(dim=1, keepdim=True).clamp_min(1e-12)
    sims = np.empty((n, n), dtype=np.float64)
    for start in range(0, n, chunk):
        rows = slice(start, start + chunk)
        inner = pb[rows] @ tb.T
        if metric == "iou":
            union = p_count[rows, None] + t_count[None, :] - inner
            block = torch.where(union > 0, inner / union.clamp_min(1.0), torch.ones_like(inner))
        else:
            block = inner
        sims[rows] = block.double().numpy()
    return sims


def two_way_identification(
    pred: Any, true: Any, metric: str = "iou", threshold: float = 0.5
) -> np.ndarray:
    """For each decoded object, how often it is closer to its own truth than to another's.

    Item ``i`` scores the fraction of the other objects ``j != i`` with
    ``sim(pred_i, true_i) > sim(pred_i, true_j)``; a tie counts one half, so a
    decoder that says nothing about the stimulus scores 0.5 on average.

    Parameters
    ----------
    pred, true : array-like of shape (n, G, G, G), n >= 2
    metric : {"iou", "correlation"}, default="iou"
        ``"iou"``: IoU of the thresholded grids; ``"correlation"``: Pearson r
        of the flattened grids (the probabilities themselves).
    threshold : float, default=0.5
        Used by ``"iou"``.

    Returns
    -------
    ndarray of shape (n,), float64
        Values in [0, 1]; chance is 0.5.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> objects = (rng.random((5, 6, 6, 6)) > 0.5).astype(np.float32)
    >>> two_way_identification(objects, objects)
    array([1., 1., 1., 1., 1.])
    """
    p, t = _pair(pred, true)
    if len(p) < 2:
        raise InputError(
            f"two_way_identification needs at least 2 objects (each is compared with the "
            f"others); got {len(p)}."
        )
    metric = check_choice("metric", metric, ("iou", "correlation"))
    thr = _threshold(threshold)
    n = len(p)
    chunk = max(1, min(n, 2**24 // max(1, n)))
    sims = _similarity(p, t, metric, thr, chunk)
    own = np.diag(sims)[:, None]
    wins = (own > sims).astype(np.float64) + 0.5 * (own == sims)
    np.fill_diagonal(wins, 0.0)
    return wins.sum(1) / (n - 1)


def category_accuracy(pred: Any, true: Any) -> float:
    """Fraction of objects whose decoded category equals the true one.

    Parameters
    ----------
    pred, true : array-like of shape (n,)
        Category labels (integers or strings).

    Returns
    -------
    float

    Examples
    --------
    >>> category_accuracy([0, 1, 2, 2], [0, 1, 1, 2])
    0.75
    """
    p, t = _labels("pred", pred), _labels("true", true)
    check_same_length(pred=p, true=t)
    return float(np.mean(p == t))


def _labels(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
    if arr.ndim != 1 or len(arr) == 0:
        raise InputError(
            f"{name} must be a non-empty 1D array of labels (n,); got shape {arr.shape}."
        )
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise InputError(f"{name} contains NaN or infinite labels; give integer categories.")
        if not np.array_equal(arr, np.round(arr)):
            raise InputError(f"{name} must hold integer category labels; got fractional values.")
        arr = arr.astype(np.int64)
    return arr


def mean_interval(
    values: Any, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of per-item values with a percentile-bootstrap confidence interval.

    Parameters
    ----------
    values : array-like of shape (n,)
        One value per item (image, object).
    confidence : float, default=0.95
    n_boot : int, default=2000
        Bootstrap resamples of the items.
    seed : int, default=0

    Returns
    -------
    mean, lo, hi : float

    Examples
    --------
    >>> m, lo, hi = mean_interval(np.arange(10.0))
    >>> m, lo < m < hi
    (4.5, True)
    """
    v = check_array("values", values, ndim=1, shape_hint="(n,)", dtype=np.float64)
    confidence = check_float(
        "confidence", confidence, minimum=0.0, maximum=1.0, strict_minimum=True, strict_maximum=True
    )
    n_boot = check_int("n_boot", n_boot, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    block = max(1, 2**22 // len(v))
    for start in range(0, n_boot, block):
        k = min(block, n_boot - start)
        means[start : start + k] = v[rng.integers(0, len(v), size=(k, len(v)))].mean(1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(v.mean()), float(lo), float(hi)


def shape_metrics(pred: Any, true: Any, pred_categories: Any = None, true_categories: Any = None):
    """Every per-object metric of decoded objects against the true ones, as a table.

    Parameters
    ----------
    pred, true : array-like of shape (n, G, G, G)
        Occupancy grids (threshold 0.5).
    pred_categories, true_categories : array-like of shape (n,), optional
        Decoded and true categories; give both or neither.

    Returns
    -------
    pandas.DataFrame
        One row per object: ``iou``, ``chamfer`` (cube units, lower is
        better), ``iou_x2``, ``iou_x4`` (IoU after 2x and 4x max-pooling),
        ``identification`` (two-way identification by IoU; NaN for a single
        object) and, when categories are given, ``category_correct`` (0 or 1).

    Examples
    --------
    >>> g = np.zeros((3, 8, 8, 8), dtype=np.float32)
    >>> for i in range(3): g[i, i:i + 4, 2:6, 2:6] = 1
    >>> shape_metrics(g, g, [0, 1, 1], [0, 1, 2]).round(2)
       iou  chamfer  iou_x2  iou_x4  identification  category_correct
    0  1.0      0.0     1.0     1.0             1.0               1.0
    1  1.0      0.0     1.0     1.0             1.0               1.0
    2  1.0      0.0     1.0     1.0             1.0               0.0
    """
    import pandas as pd

    p, t = _pair(pred, true)
    if (pred_categories is None) != (true_categories is None):
        raise InputError(
            "give both pred_categories and true_categories, or neither; got only "
            f"{'pred_categories' if true_categories is None else 'true_categories'}."
        )
    scales = multiscale_iou(p, t, scales=(1, 2, 4))
    table = {
        "iou": scales[:, 0],
        "chamfer": chamfer_distance(p, t),
        "iou_x2": scales[:, 1],
        "iou_x4": scales[:, 2],
        "identification": two_way_identification(p, t) if len(p) > 1 else np.full(1, np.nan),
    }
    if pred_categories is not None:
        pc, tc = (
            _labels("pred_categories", pred_categories),
            _labels("true_categories", true_categories),
        )
        check_same_length(pred=p, pred_categories=pc, true_categories=tc)
        table["category_correct"] = (pc == tc).astype(np.float64)
    return pd.DataFrame(table)
