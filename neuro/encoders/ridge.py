"""Voxelwise ridge regression with a cross-validated alpha for every voxel.

The algorithm (:func:`solve_ridge_cv`)
--------------------------------------
For each fold, one SVD of the centred training features ``Xtr = U diag(s) V^T``
serves every alpha and every voxel, since the ridge weights are::

    W(alpha) = V diag(1 / (s^2 + alpha)) V^T Xtr^T Ytr      ("features" route)
             = V diag(s / (s^2 + alpha)) U^T Ytr             ("samples" route)

Write ``Z`` for the projected data (``V^T Xtr^T Ytr`` or ``U^T Ytr``, shape
``(k, n_voxels)``) and ``d_a`` for the alpha's spectral weights. The validation
predictions of every alpha are ``(Xval V) diag(d_a) Z``. With the QR factorisation
``Xval V = Q R`` (``R`` upper trapezoidal with ``r = min(n_val, k)`` rows), an
alpha's validation error is ``|Q^T Yval - R diag(d_a) Z|^2``, plus
``|Yval - Q Q^T Yval|^2``, the same for every alpha, when ``n_val > k``. The fold
keeps the *alpha stack* ``[R diag(d_1); ...; R diag(d_A)]`` cut into row blocks; a
block starting at row ``i`` needs only columns ``i:`` of ``R`` (the others are
zeros), which skips up to ``r / 2k`` of the work. A few large matrix products per
fold and voxel batch give every alpha's errors at once (most of the run time).
The "features" route, used whenever it costs fewer operations (``n_features`` not
much larger than ``n_samples``), gets ``Xtr^T Ytr`` for every fold from
``X^T Y`` minus the validation block, so the voxel data meet the features once
per batch rather than once per fold.

Each voxel's alpha is the one with the best mean validation score over folds
(negative mean squared error, as himalaya's ``RidgeCV`` uses by default; ties go
to the larger alpha through a ``1e-10 * log(alpha)`` nudge), followed by a refit
on all samples with each voxel's own alpha, in the same pass over the voxel batch.

Voxels are processed in batches of ``voxel_batch_size``: only one batch of ``Y``
is converted to the model's device and dtype at a time, so ``Y`` itself is never
copied as a whole.

On the CPU, the products run through torch's BLAS or, where numpy's multiplies at
least 1.25x as fast (timed once per process for large fits), through numpy's on
the same memory (no copies). The environment variable ``NEURO_RIDGE_BLAS``
(``auto``, the default; ``torch``; ``numpy``) overrides the choice. Other devices
use torch alone.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import MultiOutputMixin, RegressorMixin
from sklearn.model_selection import KFold, check_cv

from neuro._validation import (
    check_array,
    check_bool,
    check_choice,
    check_int,
    check_n_features,
    check_same_length,
)
from neuro.base import NeuroEstimator
from neuro.errors import InputError, InputTypeError
from neuro.train.device import resolve_device

__all__ = ["DEFAULT_ALPHAS", "RidgeCVResult", "VoxelRidgeCV", "solve_ridge_cv"]

DEFAULT_ALPHAS = tuple(np.logspace(-2, 6, 17).tolist())

# working memory aimed at by an automatic voxel batch (bytes)
_AUTO_BATCH_BYTES = 128 << 20


# ---------------------------------------------------------------------- input checks
def _check_finite(t: torch.Tensor, name: str) -> None:
    if t.is_floating_point() and not torch.isfinite(t).all():
        raise InputError(f"{name} contains NaN or infinite values; remove or impute them first.")


def make_folds(cv, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, validation) index pairs that ``cv`` means for ``n`` samples.

    Parameters
    ----------
    cv : int, scikit-learn splitter or iterable of (train, test) index arrays
        An int means that many contiguous folds without shuffling.
    n : int
        Number of samples.

    Returns
    -------
    list of (ndarray, ndarray)

    Raises
    ------
    InputError
        ``cv`` cannot give valid splits of ``n`` samples (too many folds, an
        empty side, indices out of range, not a splitter or list of pairs).
    """
    if isinstance(cv, Integral) and not isinstance(cv, bool):
        if cv > n:
            raise InputError(
                f"cv must be an integer in [2, n_samples={n}]; got {cv}: there are fewer "
                "samples than folds. Use fewer folds or more samples."
            )
        if cv < 2:
            raise InputError(f"cv must be an integer in [2, n_samples={n}]; got {cv}.")
        folds = list(KFold(n_splits=int(cv), shuffle=False).split(np.zeros(n)))
    else:
        try:
            if hasattr(cv, "split"):
                folds = list(check_cv(cv).split(np.zeros(n)))
            else:
                folds = [(np.asarray(tr).ravel(), np.asarray(te).ravel()) for tr, te in cv]
        except (TypeError, ValueError) as err:
            raise InputError(
                f"cv must be an int, a scikit-learn splitter or a list of (train, test) index "
                f"arrays that can split {n} samples; got {cv!r} ({err})."
            ) from None
    if not folds:
        raise InputError("cv gave no (train, test) splits.")
    for i, (tr, te) in enumerate(folds):
        if len(tr) == 0 or len(te) == 0:
            raise InputError(f"cv split {i} has an empty train or validation set; check cv.")
        for idx in (tr, te):
            if not np.issubdtype(idx.dtype, np.integer) or idx.min() < -n or idx.max() >= n:
                raise InputError(
                    f"cv split {i} holds indices that are not integers in [0, n_samples={n})."
                )
    return folds


# ---------------------------------------------------------------------- the solver
@dataclass
class _Fold:
    """What a fold keeps for every voxel batch (nothing here depends on Y)."""

    train: torch.Tensor  # (n_train,) indices
    val: torch.Tensor  # (n_val,) indices
    x_mean: torch.Tensor | None  # (p,) training mean of the globally centred X
    x_val_t: torch.Tensor | None  # (p, n_val) validation features ("features" route)
    proj: torch.Tensor  # (k, p) = V^T ("features") or (k, n_train) = U^T ("samples")
    u_sum: torch.Tensor | None  # (k,) = U^T 1 ("samples" route with an intercept)
    q_t: torch.Tensor  # (r, n_val) = Q^T, from Xval V = Q R, r = min(n_val, k)
    q_square: bool  # Q is square (n_val <= k): Q^T keeps every vector's norm
    # row blocks of the alpha stack of R: (i0, i1, (n_alphas * (i1 - i0), k - i0) matrix)
    blocks: list[tuple[int, int, torch.Tensor]]


class RidgeCVResult(NamedTuple):
    """What :func:`solve_ridge_cv` returns (tensors on the solver's device)."""

    cv_scores: torch.Tensor  # (n_alphas, n_voxels) float64, mean validation score
    best: torch.Tensor  # (n_voxels,) int64, index of each voxel's alpha
    coef: torch.Tensor  # (n_features, n_voxels)
    intercept: torch.Tensor  # (n_voxels,)


def _spectral_weights(s: torch.Tensor, alphas: torch.Tensor, route: str) -> torch.Tensor:
    """``d_a`` of shape (n_alphas, k): 1/(s^2+a) or s/(s^2+a)."""
    denom = s[None, :] ** 2 + alphas[:, None]
    return (1.0 / denom) if route == "features" else (s[None, :] / denom)


# Which library multiplies on the CPU. Both work on the same memory (``Tensor.numpy()``
# and ``torch.from_numpy`` are views), so the choice changes speed, not results beyond
# rounding. ``NEURO_RIDGE_BLAS`` = "torch" or "numpy" forces one; "auto" (the default)
# keeps torch for small fits and otherwise times both once per process and dtype.
_BLAS_ENV = "NEURO_RIDGE_BLAS"
# multiply-adds of a fit's alpha-stack products below which "auto" uses torch untimed
# (the one-time timing costs some 30-60 ms; this is a quarter to half a second of work)
_CALIBRATE_MIN_MACS = 4e10
_cpu_blas_choice: dict[torch.dtype, str] = {}
# the alpha stack of a fold is cut into about this many row blocks (of at least
# _BLOCK_MIN_ROWS rows) to skip the zeros of its triangular factor
_BLOCKS = 8
_BLOCK_MIN_ROWS = 32


def _calibrate_cpu_blas(dtype: torch.dtype) -> str:
    """Pick "numpy" if its BLAS multiplies at least 1.25x as fast as torch's here, else "torch".

    Times one product of the solver's usual shape (a tall alpha stack times a block
    of projected voxels, 2048 x 512 x 512) with each library, interleaved, best of 4.
    The margin pays for running torch's own (elementwise) ops on one thread
    alongside numpy's BLAS (see :func:`solve_ridge_cv`).
    """
    import time

    gen = torch.Generator().manual_seed(0)
    a = torch.rand(2048, 512, generator=gen, dtype=dtype)
    b = torch.rand(512, 512, generator=gen, dtype=dtype)
    out = torch.empty(2048, 512, dtype=dtype)
    a_np, b_np, out_np = a.numpy(), b.numpy(), out.numpy()
    best = {"torch": float("inf"), "numpy": float("inf")}
    for _ in range(4):
        for name in best:
            start = time.perf_counter()
            if name == "torch":
                torch.mm(a, b, out=out)
            else:
                np.matmul(a_np, b_np, out=out_np)
            best[name] = min(best[name], time.perf_counter() - start)
    return "numpy" if best["numpy"] < 0.8 * best["torch"] else "torch"


def _cpu_blas(device: torch.device, dtype: torch.dtype, macs: float) -> str:
    """The library for the solver's products: "torch", or "numpy" (CPU, float only).

    ``macs`` is the fit's multiply-add count in its alpha-stack products; "auto"
    calibrates (:func:`_calibrate_cpu_blas`) only for fits above
    ``_CALIBRATE_MIN_MACS`` and caches the answer per process and dtype.
    """
    import os

    choice = os.environ.get(_BLAS_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "torch", "numpy"):
        raise ValueError(f"{_BLAS_ENV} must be 'auto', 'torch' or 'numpy'; got {choice!r}.")
    if device.type != "cpu" or dtype not in (torch.float32, torch.float64):
        return "torch"
    if choice != "auto":
        return choice
    if macs < _CALIBRATE_MIN_MACS:
        return "torch"
    if dtype not in _cpu_blas_choice:
        _cpu_blas_choice[dtype] = _calibrate_cpu_blas(dtype)
    return _cpu_blas_choice[dtype]


def _mm(a: torch.Tensor, b: torch.Tensor, blas: str, out: torch.Tensor | None = None):
    """``a @ b`` (into ``out`` if given) by torch, or by numpy on the same CPU memory."""
    if blas == "numpy":
        res = np.matmul(a.numpy(), b.numpy(), out=None if out is None else out.numpy())
        return out if out is not None else torch.from_numpy(res)
    return a @ b if out is None else torch.mm(a, b, out=out)


class _TorchThreads:
    """Context manager: torch limited to ``n`` threads inside (None: as it is)."""

    def __init__(self, n: int | None) -> None:
        self.n, self.before = n, torch.get_num_threads()

    def __enter__(self) -> None:
        if self.n is not None and self.n != self.before:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        if torch.get_num_threads() != self.before:
            torch.set_num_threads(self.before)


def _svd(x: torch.Tensor, need_u: bool):
    """Thin SVD ``(U, s, Vt)`` of ``x``; without ``need_u``, ``U`` is None and a tall
    ``x`` is reduced to the R of its QR first (``x = QR`` has the s and V of ``R``),
    which skips forming U."""
    if not need_u and x.shape[0] >= 2 * x.shape[1]:
        r = torch.linalg.qr(x, mode="r")[1]
        _, s, vt = torch.linalg.svd(r, full_matrices=False)
        return None, s, vt
    if x.shape[0] < x.shape[1]:
        # LAPACK's SVD of a wide matrix is several times slower than of its transpose
        # (3.1 s against 0.4 s for 80 x 25,088 features from a CNN layer, on 2 cores)
        a, s, bt = torch.linalg.svd(x.T, full_matrices=False)
        return bt.T, s, a.T
    return torch.linalg.svd(x, full_matrices=False)


def _plan_fold(Xc, train, val, alphas, fit_intercept, route) -> _Fold:
    xtr = Xc[train]
    x_mean = xtr.mean(0) if fit_intercept else None
    if fit_intercept:
        xtr -= x_mean
    U, s, Vt = _svd(xtr, need_u=route == "samples")
    xval = Xc[val]
    if fit_intercept:
        xval = xval - x_mean
    m = xval @ Vt.T  # (n_val, k)
    d = _spectral_weights(s, alphas, route)
    # m = QR with R upper trapezoidal (r, k): rows i0: of R are zero left of column i0,
    # so a row block of the alpha stack only needs columns i0: (and rows i0: of Z)
    q, r = torch.linalg.qr(m)
    n_rows, k = r.shape
    step = max(_BLOCK_MIN_ROWS, -(-n_rows // _BLOCKS))
    blocks = [
        (i0, min(i0 + step, n_rows), (d[:, None, i0:] * r[None, i0 : i0 + step, i0:]))
        for i0 in range(0, n_rows, step)
    ]
    blocks = [(i0, i1, b.reshape(-1, k - i0)) for i0, i1, b in blocks]
    q_t, q_square = q.T.contiguous(), q.shape[0] == q.shape[1]
    if route == "features":
        return _Fold(train, val, x_mean, Xc[val].T.contiguous(), Vt, None, q_t, q_square, blocks)
    u_sum = U.sum(0) if fit_intercept else None
    return _Fold(train, val, x_mean, None, U.T.contiguous(), u_sum, q_t, q_square, blocks)


def solve_ridge_cv(
    X: torch.Tensor,
    Y,
    alphas,
    folds,
    *,
    fit_intercept: bool = True,
    voxel_batch_size: int | None = None,
) -> RidgeCVResult:
    """Cross-validated ridge with one alpha per voxel, then a refit on all samples.

    The function core of :class:`VoxelRidgeCV` (see the module docstring for
    the algorithm); inputs are trusted.

    Parameters
    ----------
    X : tensor of shape (n_samples, n_features)
        Finite features, already on the device and in the dtype of the computation.
    Y : tensor of shape (n_samples, n_voxels)
        Any device and dtype; one batch at a time is copied to ``X``'s device and
        dtype (and checked to be finite), so ``Y`` is never copied whole.
    alphas : array of shape (n_alphas,)
        Candidate regularisation strengths (> 0).
    folds : list of (train, val) index arrays
        Cross-validation splits.
    fit_intercept : bool, default=True
        Centre X and Y on each training fold and fit an intercept per voxel.
    voxel_batch_size : int or None, default=None
        Voxels solved at once. None picks a batch that keeps the working
        memory (besides ``X``, ``Y`` and the results) at most about 128 MiB.

    Returns
    -------
    RidgeCVResult
        ``cv_scores`` (n_alphas, n_voxels) float64 mean validation scores
        (negative MSE), ``best`` (n_voxels,) alpha indices, ``coef`` (n_features,
        n_voxels) and ``intercept`` (n_voxels,) of the refit.

    Notes
    -----
    On the CPU the products run through torch's or numpy's BLAS (see the module
    docstring and ``NEURO_RIDGE_BLAS``). With numpy's, torch's own operations
    run on one thread while the voxel batches are solved (``torch.set_num_threads``,
    restored on return): torch's OpenMP threads and the BLAS threads, which spin
    for a while after each product, would otherwise contend for the cores.
    """
    device, dtype = X.device, X.dtype
    n, p = X.shape
    v = Y.shape[1]
    a = torch.as_tensor(np.asarray(alphas, dtype=np.float64), device=device)
    n_alphas = len(a)
    a_work = a.to(dtype)
    nudge = 1e-10 * torch.log(a)  # ties go to the larger alpha, as in himalaya

    x_mean = X.mean(0) if fit_intercept else None
    Xc = X - x_mean if fit_intercept else X
    idx = [
        (torch.as_tensor(tr, device=device), torch.as_tensor(te, device=device)) for tr, te in folds
    ]
    val_all = np.sort(np.concatenate([np.asarray(te) % n for _, te in folds]))
    partition = len(val_all) == n and bool(np.all(val_all == np.arange(n)))

    # the "features" route needs every training set to be the complement of its
    # validation set (KFold, ShuffleSplit; not TimeSeriesSplit); among the possible
    # routes, take the one with fewer multiply-adds per voxel (k_f = min(n_train, p))
    complements = all(
        len(tr) + len(te) == n and np.union1d(np.asarray(tr) % n, np.asarray(te) % n).size == n
        for tr, te in folds
    )
    ks = [min(len(tr), p) for tr, _ in folds]
    cost_features = p * (n + (0 if partition else len(val_all))) + p * sum(ks) + p * min(n, p)
    cost_samples = sum(len(tr) * k for (tr, _), k in zip(folds, ks, strict=True)) + n * min(n, p)
    route = "features" if complements and cost_features <= cost_samples else "samples"

    plan = [_plan_fold(Xc, tr, te, a_work, fit_intercept, route) for tr, te in idx]
    U, s, Vt = _svd(Xc, need_u=route == "samples")
    d_full = _spectral_weights(s, a_work, route)  # (n_alphas, k)
    full_proj = Vt if route == "features" else U.T.contiguous()

    max_val = max(len(te) for _, te in folds)
    if voxel_batch_size is None:
        per_voxel = (2 * n + n_alphas * max_val + (len(folds) + 3) * p) * X.element_size()
        # a multiple of 64, so that each voxel sits at the same SIMD lane offset however the
        # voxels are sliced: a voxel-sliced fit then equals one process's bit for bit
        voxel_batch_size = max(64, (_AUTO_BATCH_BYTES // per_voxel) // 64 * 64)
    vb = int(min(voxel_batch_size, v))
    max_rows = max(i1 - i0 for f in plan for i0, i1, _ in f.blocks)
    buffer = torch.empty(n_alphas * max_rows * vb, device=device, dtype=dtype)
    stack_macs = sum(b.shape[0] * b.shape[1] for f in plan for _, _, b in f.blocks) * v
    blas = _cpu_blas(device, dtype, stack_macs)

    scores = torch.zeros(n_alphas, v, device=device, dtype=torch.float64)
    best = torch.empty(v, device=device, dtype=torch.int64)
    coef = torch.empty(p, v, device=device, dtype=dtype)
    intercept = torch.zeros(v, device=device, dtype=dtype)
    # with numpy's BLAS, torch's own ops run on one thread: its OpenMP threads would
    # otherwise fight the BLAS threads (which spin a while after each product)
    with _TorchThreads(1 if blas == "numpy" else None):
        for start in range(0, v, vb):
            cols = slice(start, min(start + vb, v))
            w = cols.stop - cols.start
            Yb = torch.empty(n, w, device=device, dtype=dtype)
            Yb.copy_(Y[:, cols])  # always a copy: Y is never modified
            _check_finite(Yb, "Y")
            if fit_intercept:
                y_mean = Yb.mean(0)
                Yb -= y_mean
                y_sum = Yb.sum(0)  # not exactly 0 in floating point
            y_val = [Yb[f.val] for f in plan]
            if route == "features":
                if partition:  # X^T Y is the sum of the validation blocks
                    c_val = [_mm(f.x_val_t, yv, blas) for f, yv in zip(plan, y_val, strict=True)]
                    C = torch.stack(c_val).sum(0) if len(c_val) > 1 else c_val[0].clone()
                else:
                    C = _mm(Xc.T, Yb, blas)
                    c_val = [_mm(f.x_val_t, yv, blas) for f, yv in zip(plan, y_val, strict=True)]
            score_b = scores[:, cols]
            for i, (f, yv) in enumerate(zip(plan, y_val, strict=True)):
                n_tr, n_val = len(f.train), len(f.val)
                if route == "features":  # X_tr^T Y_tr = X^T Y - X_val^T Y_val
                    c_tr = C - c_val[i]
                    if fit_intercept:
                        y_tr_mean = (y_sum - yv.sum(0)) / n_tr
                        c_tr.addr_(f.x_mean, y_tr_mean, alpha=-n_tr)
                    z = _mm(f.proj, c_tr, blas)
                else:
                    y_tr = Yb[f.train]
                    z = _mm(f.proj, y_tr, blas)
                    if fit_intercept:
                        y_tr_mean = y_tr.mean(0)
                        z.addr_(f.u_sum, y_tr_mean, alpha=-1)
                    del y_tr
                if fit_intercept:
                    yv -= y_tr_mean
                # |yv - m D_a z|^2 = |Q^T yv - R D_a z|^2 (+ |yv - Q Q^T yv|^2 if Q is thin)
                qy = _mm(f.q_t, yv, blas)
                sq = torch.zeros(n_alphas, w, device=device, dtype=torch.float64)
                if not f.q_square:
                    rest = yv - _mm(f.q_t.T, qy, blas)
                    sq += rest.square_().sum(0).to(torch.float64)
                for i0, i1, block in f.blocks:
                    pred = buffer[: n_alphas * (i1 - i0) * w].view(n_alphas * (i1 - i0), w)
                    _mm(block, z[i0:], blas, out=pred)  # most of the run time
                    pred = pred.view(n_alphas, i1 - i0, w)
                    pred -= qy[i0:i1]
                    sq += pred.square_().sum(1).to(torch.float64)
                score_b -= sq / n_val
            score_b /= len(plan)
            best_b = (score_b + nudge[:, None]).argmax(0)
            best[cols] = best_b

            # refit on all samples, each voxel with its own alpha
            z = _mm(full_proj, C if route == "features" else Yb, blas)
            z *= d_full[best_b].T
            coef_b = _mm(Vt.T, z, blas)
            coef[:, cols] = coef_b
            if fit_intercept:
                intercept[cols] = y_mean - x_mean @ coef_b
    return RidgeCVResult(scores, best, coef, intercept)


# ---------------------------------------------------------------------- estimator
# Below: the estimators. They validate their inputs through neuro._validation
# (InputError / InputTypeError) and leave the solver above to trust them.


#: NumPy dtypes handed to torch as they are (a view, no copy)
_TORCH_READY = tuple(
    np.dtype(d) for d in ("float32", "float64", "int8", "int16", "int32", "int64", "uint8")
)


def _data(name: str, value, shape_hint: str, outputs: bool = False) -> torch.Tensor:
    """``value`` as a tensor, checked; a view of a NumPy array or tensor where possible.

    2D, or with ``outputs=True`` (for ``Y``) 1D or 2D. Values
    are not checked for NaN here (see :func:`_check_finite_by_columns`), so a
    large ``Y`` is never copied or scanned whole at once.
    """
    ndim = (1, 2) if outputs else 2
    if isinstance(value, torch.Tensor):
        t = value.detach()
        if t.ndim not in ((1, 2) if outputs else (2,)):
            dims = "1D or 2D" if outputs else "2D"
            raise InputError(f"{name} must be {dims} {shape_hint}; got shape {tuple(t.shape)}.")
        if t.is_complex():
            raise InputError(f"{name}: Complex data not supported; give real values.")
        if len(t) == 0:
            raise InputError(f"{name} is empty (0 samples, shape {tuple(t.shape)}).")
    else:
        arr = check_array(name, value, ndim=ndim, shape_hint=shape_hint, finite=False)
        if arr.dtype.kind != "b" and arr.dtype not in _TORCH_READY:
            arr = arr.astype(np.float64)  # float16, wide unsigned ints: types torch lacks
        with warnings.catch_warnings():  # read-only arrays are fine: they are only read
            warnings.simplefilter("ignore", UserWarning)
            t = torch.from_numpy(arr)
    if t.dtype == torch.bool:
        raise InputTypeError(
            f"{name} must hold numbers; got dtype bool. Convert it first (e.g. to float)."
        )
    return t


def _check_finite_by_columns(name: str, t: torch.Tensor, block: int = 1 << 24) -> None:
    """Refuse NaN or infinite values, scanning about ``block`` values at a time."""
    if not t.is_floating_point():
        return
    step = max(1, block // max(len(t), 1))
    for start in range(0, t.shape[1], step):
        if not torch.isfinite(t[:, start : start + step]).all():
            raise InputError(
                f"{name} contains NaN or infinite values; remove or impute them first."
            )


def _check_alphas_list(alphas) -> np.ndarray:
    """``alphas`` as a float64 array of finite numbers > 0."""
    if isinstance(alphas, (str, bytes)):
        raise InputTypeError(f"alphas must be a list of numbers > 0; got {alphas!r}.")
    try:
        a = np.asarray(alphas, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InputTypeError(
            f"alphas must be a list of numbers > 0 (e.g. numpy.logspace(-2, 6, 17)); got "
            f"{alphas!r}."
        ) from None
    if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise InputError(
            f"alphas must be a non-empty list of finite numbers > 0; got {alphas!r}. For "
            "example numpy.logspace(-2, 6, 17)."
        )
    return a


class _VoxelLinearModel(MultiOutputMixin, RegressorMixin, NeuroEstimator):
    """What the voxelwise linear models share: input checks, ``predict`` and scores.

    Subclasses set ``coef_ (n_features, n_voxels)``, ``intercept_ (n_voxels,)``
    and ``n_features_in_`` in ``fit`` (through :meth:`_fit_inputs` and
    :meth:`_set_fit`), and get from here ``predict``, ``score`` (R²),
    ``correlation_score`` (mean Pearson r), and ``save`` / ``load`` (from
    :class:`~neuro.base.NeuroEstimator`). Their constructors take ``alphas``,
    ``cv``, ``device``, ``voxel_batch_size``, ``fit_intercept`` and ``dtype``.
    """

    #: What ``X`` is: vectors ``(n_samples, n_features)``. ``compare_encoders``
    #: reads it to give the model flattened feature maps (readouts say "maps").
    input_kind = "vectors"

    def _settings(self) -> tuple[np.ndarray, torch.device, torch.dtype]:
        """Checked ``alphas``, device and torch dtype."""
        dtype = check_choice("dtype", self.dtype, ("float32", "float64"))
        alphas = _check_alphas_list(self.alphas)
        check_int("voxel_batch_size", self.voxel_batch_size, minimum=1, allow_none=True)
        check_bool("fit_intercept", self.fit_intercept)
        return alphas, resolve_device(self.device), getattr(torch, dtype)

    def _features(self, X, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        Xt = _data("X", X, "(n_samples, n_features)").to(device=device, dtype=dtype)
        _check_finite_by_columns("X", Xt)
        return Xt

    def _fit_inputs(self, X, Y):
        """The checked inputs of ``fit``.

        Returns
        -------
        Xt : tensor (n_samples, n_features)
            On the model's device, in its dtype.
        Yt : tensor (n_samples, n_voxels)
            A view of ``Y`` (1D ``Y`` as one column), device and dtype unchanged.
        alphas : ndarray (n_alphas,)
        folds : list of (train, val) index arrays
        device, dtype
        """
        alphas, device, dtype = self._settings()
        Xt = self._features(X, device, dtype)
        Yt = _data("Y", Y, "(n_samples, n_voxels)", outputs=True)
        single_output = Yt.ndim == 1
        Yt = Yt[:, None] if single_output else Yt
        check_same_length(X=Xt, Y=Yt)
        _check_finite_by_columns("Y", Yt)
        folds = make_folds(self.cv, len(Xt))
        self.single_output_ = single_output
        return Xt, Yt, alphas, folds, device, dtype

    def _set_fit(self, coef: torch.Tensor, intercept: torch.Tensor) -> None:
        self.coef_ = coef.cpu().numpy()
        self.intercept_ = intercept.cpu().numpy()
        self.n_features_in_ = int(coef.shape[0])

    def _predict_tensor(self, X) -> tuple[torch.Tensor, torch.Tensor, torch.device, torch.dtype]:
        self._check_fitted()
        _, device, dtype = self._settings()
        Xt = self._features(X, device, dtype)
        check_n_features(self, Xt)
        return Xt, torch.as_tensor(self.coef_, device=device, dtype=dtype), device, dtype

    def _output(self, pred: torch.Tensor, X):
        """``pred`` on ``X``'s side: a tensor on its device, or a NumPy array."""
        if getattr(self, "single_output_", False):
            pred = pred[..., 0]
        if isinstance(X, torch.Tensor):
            return pred.to(X.device)
        return pred.cpu().numpy()

    def predict(self, X):
        """Predicted responses; numpy in, numpy out; torch in, torch out.

        Parameters
        ----------
        X : array or tensor of shape (n_samples, n_features)

        Returns
        -------
        array or tensor of shape (n_samples, n_voxels)
            ``(n_samples,)`` if ``Y`` was 1D at ``fit``.
        """
        Xt, coef, device, dtype = self._predict_tensor(X)
        pred = Xt @ coef + torch.as_tensor(self.intercept_, device=device, dtype=dtype)
        return self._output(pred, X)

    def score(self, X, y, sample_weight=None) -> float:
        """R² of the prediction, averaged uniformly over voxels (scikit-learn's ``score``).

        Parameters
        ----------
        X : array or tensor of shape (n_samples, n_features)
        y : array or tensor of shape (n_samples, n_voxels) or (n_samples,)
            The responses (``Y`` of ``fit``).
        sample_weight : array of shape (n_samples,), optional

        Returns
        -------
        float
            ``sklearn.metrics.r2_score(Y, predict(X), multioutput="uniform_average")``;
            see :meth:`correlation_score` for the mean Pearson r.
        """
        from neuro.encoders.metrics import mean_r2

        return mean_r2(y, self.predict(X), sample_weight=sample_weight)

    def correlation_score(self, X, y) -> float:
        """Mean over voxels of the Pearson r between ``predict(X)`` and ``y``.

        Parameters
        ----------
        X : array or tensor of shape (n_samples, n_features)
        y : array or tensor of shape (n_samples, n_voxels) or (n_samples,)

        Returns
        -------
        float
        """
        from neuro.encoders.metrics import mean_correlation

        return mean_correlation(y, self.predict(X))


class VoxelRidgeCV(_VoxelLinearModel):
    """Ridge regression from features to many voxels, one cross-validated alpha per voxel.

    Parameters
    ----------
    alphas : sequence of float, default=17 values log-spaced from 1e-2 to 1e6
        Candidate regularisation strengths (> 0).
    cv : int, splitter or iterable of (train, test), default=5
        An int means that many contiguous folds without shuffling (as
        scikit-learn's ``KFold`` and himalaya do); any scikit-learn splitter or
        list of index pairs is used as given.
    device : str, default="auto"
    voxel_batch_size : int or None, default=None
        Voxels solved at once: bounds the working memory, which is at most
        ``4 * voxel_batch_size * (2 * n_samples + n_alphas * n_val + (n_folds + 3) *
        n_features)`` bytes in float32 on top of ``X``, ``Y`` and the fitted
        ``coef_`` (the alpha stack's blocks usually need less). None picks a
        batch that keeps it near 128 MiB. ``Y`` is only
        ever copied one batch at a time.
    fit_intercept : bool, default=True
        Centre X and Y on each training fold and fit an intercept per voxel.
    dtype : {"float32", "float64"}, default="float32"

    Attributes
    ----------
    coef_ : ndarray of shape (n_features, n_voxels)
    intercept_ : ndarray of shape (n_voxels,)
    alpha_ : ndarray of shape (n_voxels,)
        The alpha chosen for each voxel.
    cv_scores_ : ndarray of shape (n_alphas, n_voxels)
        Mean validation score (negative MSE) of each alpha.
    single_output_ : bool
        ``Y`` was 1D at ``fit`` (one voxel): ``predict`` then returns 1D too.
    n_features_in_ : int

    Notes
    -----
    ``score`` is R² (averaged over voxels), as for every scikit-learn
    regressor; ``correlation_score`` is the mean Pearson r. ``save(path)``
    and ``VoxelRidgeCV.load(path)`` round-trip exactly (:mod:`neuro.persist`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((120, 7))
    >>> Y = X @ rng.standard_normal((7, 9)) + 0.1 * rng.standard_normal((120, 9))
    >>> model = VoxelRidgeCV(alphas=[0.1, 1.0, 10.0], device="cpu").fit(X, Y)
    >>> model.coef_.shape, model.alpha_.shape
    ((7, 9), (9,))
    >>> bool(model.score(X, Y) > 0.99), bool(model.correlation_score(X, Y) > 0.99)
    (True, True)
    """

    def __init__(
        self,
        alphas=DEFAULT_ALPHAS,
        cv=5,
        device: str = "auto",
        voxel_batch_size: int | None = None,
        fit_intercept: bool = True,
        dtype: str = "float32",
    ) -> None:
        self.alphas = alphas
        self.cv = cv
        self.device = device
        self.voxel_batch_size = voxel_batch_size
        self.fit_intercept = fit_intercept
        self.dtype = dtype

    def fit(self, X, Y):
        """Choose each voxel's alpha by cross-validation, then refit on all samples.

        Parameters
        ----------
        X : array or tensor of shape (n_samples, n_features)
        Y : array or tensor of shape (n_samples, n_voxels) or (n_samples,)
            Not copied as a whole: a float32 C-contiguous array costs no extra
            memory beyond one voxel batch.

        Returns
        -------
        self
        """
        Xt, Yt, alphas, folds, _, _ = self._fit_inputs(X, Y)
        res = solve_ridge_cv(
            Xt,
            Yt,
            alphas,
            folds,
            fit_intercept=self.fit_intercept,
            voxel_batch_size=self.voxel_batch_size,
        )
        self._set_fit(res.coef, res.intercept)
        self.alpha_ = alphas[res.best.cpu().numpy()]
        self.cv_scores_ = res.cv_scores.cpu().numpy().astype(self.dtype)
        return self
