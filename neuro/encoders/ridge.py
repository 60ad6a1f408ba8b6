"""Voxelwise ridge regression with a cross-validated alpha for every voxel.

The algorithm (:func:`solve_ridge_cv`)
--------------------------------------
For each fold, one SVD of the centred training features ``Xtr = U diag(s) V^T``
serves every alpha and every voxel, since the ridge weights are::

    W(alpha) = V diag(1 / (s^2 + alpha)) V^T Xtr^T Ytr      ("features" route)
             = V diag(s / (s^2 + alpha)) U^T Ytr             ("samples" route)

Write ``Z`` for the projected data (``V^T Xtr^T Ytr`` or ``U^T Ytr``, shape
``(k, n_voxels)``) and ``d_a`` for the alpha's spectral weights. The validation
predictions of every alpha are ``(Xval V) diag(d_a) Z``; the fold keeps the
*alpha stack* ``[(Xval V) diag(d_1); ...; (Xval V) diag(d_A)]`` of shape
``(n_alphas * n_val, k)``, so that one large matrix product per voxel batch gives
all alphas' predictions at once (this product is most of the run time). The
"features" route, used whenever it costs fewer operations (``n_features`` not
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
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import KFold, check_cv

from neuro.train.device import resolve_device

__all__ = ["DEFAULT_ALPHAS", "RidgeCVResult", "VoxelRidgeCV", "solve_ridge_cv"]

DEFAULT_ALPHAS = tuple(np.logspace(-2, 6, 17).tolist())

_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
# working memory aimed at by an automatic voxel batch (bytes)
_AUTO_BATCH_BYTES = 128 << 20


# ---------------------------------------------------------------------- input checks
def _as_2d(a, name: str) -> torch.Tensor:
    """A 2D tensor view of ``a`` with its own dtype and device (no copy for numpy/torch)."""
    if isinstance(a, torch.Tensor):
        t = a.detach()
    else:
        arr = np.asarray(a)
        with warnings.catch_warnings():  # read-only arrays are fine: they are only read
            warnings.simplefilter("ignore", UserWarning)
            t = torch.from_numpy(arr) if arr.dtype != object else None
        if t is None:
            raise TypeError(f"{name} must hold numbers; got an array of dtype object.")
    if t.ndim == 1 and name == "Y":
        t = t[:, None]
    if t.ndim != 2:
        what = "features" if name == "X" else "voxels"
        raise ValueError(f"{name} must be 2D (n_samples, n_{what}); got shape {tuple(t.shape)}.")
    if not t.is_floating_point() and t.dtype not in _INT_DTYPES:
        raise TypeError(f"{name} must hold numbers; got dtype {t.dtype}.")
    return t


def _check_finite(t: torch.Tensor, name: str) -> None:
    if t.is_floating_point() and not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values; remove or impute them first.")


def _as_tensor(a, name: str, device, dtype) -> torch.Tensor:
    """``a`` as a finite 2D tensor on ``device`` with ``dtype``."""
    t = _as_2d(a, name).to(device=device, dtype=dtype)
    _check_finite(t, name)
    return t


def _check_alphas(alphas) -> np.ndarray:
    a = np.asarray(alphas, dtype=np.float64).ravel()
    if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"alphas must be a non-empty list of finite numbers > 0; got {alphas!r}.")
    return a


def _check_batch_size(vb) -> None:
    if vb is not None and (isinstance(vb, bool) or not isinstance(vb, Integral) or vb < 1):
        raise ValueError(f"voxel_batch_size must be a positive integer or None; got {vb!r}.")


def _check_dtype(dtype) -> torch.dtype:
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}.")
    return getattr(torch, dtype)


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
    """
    if isinstance(cv, Integral) and not isinstance(cv, bool):
        if cv > n:
            raise ValueError(
                f"cv must be an integer in [2, n_samples={n}]; got {cv}: there are fewer "
                "samples than folds. Use fewer folds or more samples."
            )
        if cv < 2:
            raise ValueError(f"cv must be an integer in [2, n_samples={n}]; got {cv}.")
        folds = list(KFold(n_splits=int(cv), shuffle=False).split(np.zeros(n)))
    elif hasattr(cv, "split"):
        folds = list(check_cv(cv).split(np.zeros(n)))
    else:
        folds = [(np.asarray(tr).ravel(), np.asarray(te).ravel()) for tr, te in cv]
    if not folds:
        raise ValueError("cv gave no (train, test) splits.")
    for i, (tr, te) in enumerate(folds):
        if len(tr) == 0 or len(te) == 0:
            raise ValueError(f"cv split {i} has an empty train or validation set; check cv.")
        for idx in (tr, te):
            if not np.issubdtype(idx.dtype, np.integer) or idx.min() < -n or idx.max() >= n:
                raise ValueError(
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
    stack: torch.Tensor  # (n_alphas * n_val, k) alpha stack


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


def _plan_fold(Xc, train, val, alphas, fit_intercept, route) -> _Fold:
    xtr = Xc[train]
    x_mean = xtr.mean(0) if fit_intercept else None
    if fit_intercept:
        xtr -= x_mean
    U, s, Vt = torch.linalg.svd(xtr, full_matrices=False)
    xval = Xc[val]
    if fit_intercept:
        xval = xval - x_mean
    m = xval @ Vt.T  # (n_val, k)
    d = _spectral_weights(s, alphas, route)
    stack = (d[:, None, :] * m[None, :, :]).reshape(-1, m.shape[1])
    if route == "features":
        return _Fold(train, val, x_mean, Xc[val].T.contiguous(), Vt, None, stack)
    u_sum = U.sum(0) if fit_intercept else None
    return _Fold(train, val, x_mean, None, U.T.contiguous(), u_sum, stack)


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
        memory (besides ``X``, ``Y`` and the results) near 128 MiB.

    Returns
    -------
    RidgeCVResult
        ``cv_scores`` (n_alphas, n_voxels) float64 mean validation scores
        (negative MSE), ``best`` (n_voxels,) alpha indices, ``coef`` (n_features,
        n_voxels) and ``intercept`` (n_voxels,) of the refit.
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
    U, s, Vt = torch.linalg.svd(Xc, full_matrices=False)
    d_full = _spectral_weights(s, a_work, route)  # (n_alphas, k)
    full_proj = Vt if route == "features" else U.T.contiguous()

    max_val = max(len(te) for _, te in folds)
    if voxel_batch_size is None:
        per_voxel = (2 * n + n_alphas * max_val + (len(folds) + 3) * p) * X.element_size()
        voxel_batch_size = max(64, _AUTO_BATCH_BYTES // per_voxel)
    vb = int(min(voxel_batch_size, v))
    buffer = torch.empty(n_alphas * max_val * vb, device=device, dtype=dtype)

    scores = torch.zeros(n_alphas, v, device=device, dtype=torch.float64)
    best = torch.empty(v, device=device, dtype=torch.int64)
    coef = torch.empty(p, v, device=device, dtype=dtype)
    intercept = torch.zeros(v, device=device, dtype=dtype)
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
                c_val = [f.x_val_t @ yv for f, yv in zip(plan, y_val, strict=True)]
                C = torch.stack(c_val).sum(0) if len(c_val) > 1 else c_val[0].clone()
            else:
                C = Xc.T @ Yb
                c_val = [f.x_val_t @ yv for f, yv in zip(plan, y_val, strict=True)]
        score_b = scores[:, cols]
        for i, (f, yv) in enumerate(zip(plan, y_val, strict=True)):
            n_tr, n_val = len(f.train), len(f.val)
            if route == "features":  # X_tr^T Y_tr = X^T Y - X_val^T Y_val
                c_tr = C - c_val[i]
                if fit_intercept:
                    y_tr_mean = (y_sum - yv.sum(0)) / n_tr
                    c_tr.addr_(f.x_mean, y_tr_mean, alpha=-n_tr)
                z = f.proj @ c_tr
            else:
                y_tr = Yb[f.train]
                z = f.proj @ y_tr
                if fit_intercept:
                    y_tr_mean = y_tr.mean(0)
                    z.addr_(f.u_sum, y_tr_mean, alpha=-1)
                del y_tr
            if fit_intercept:
                yv -= y_tr_mean
            pred = buffer[: n_alphas * n_val * w].view(n_alphas * n_val, w)
            torch.mm(f.stack, z, out=pred)
            pred = pred.view(n_alphas, n_val, w)
            pred -= yv
            pred.square_()
            score_b -= pred.sum(1).to(torch.float64) / n_val
        score_b /= len(plan)
        best_b = (score_b + nudge[:, None]).argmax(0)
        best[cols] = best_b

        # refit on all samples, each voxel with its own alpha
        z = full_proj @ (C if route == "features" else Yb)
        z *= d_full[best_b].T
        coef_b = Vt.T @ z
        coef[:, cols] = coef_b
        if fit_intercept:
            intercept[cols] = y_mean - x_mean @ coef_b
    return RidgeCVResult(scores, best, coef, intercept)


# ---------------------------------------------------------------------- estimator
class VoxelRidgeCV(RegressorMixin, BaseEstimator):
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
        Voxels solved at once: bounds the working memory, which is about
        ``4 * voxel_batch_size * (2 * n_samples + n_alphas * n_val + (n_folds + 3) *
        n_features)`` bytes in float32 on top of ``X``, ``Y`` and the fitted
        ``coef_``. None picks a batch that keeps it near 128 MiB. ``Y`` is only
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

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((120, 7))
    >>> Y = X @ rng.standard_normal((7, 9)) + 0.1 * rng.standard_normal((120, 9))
    >>> model = VoxelRidgeCV(alphas=[0.1, 1.0, 10.0], device="cpu").fit(X, Y)
    >>> model.coef_.shape, model.alpha_.shape
    ((7, 9), (9,))
    >>> bool(model.score(X, Y) > 0.99)
    True
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

    def _setup(self):
        dtype = _check_dtype(self.dtype)
        alphas = _check_alphas(self.alphas)
        _check_batch_size(self.voxel_batch_size)
        return alphas, resolve_device(self.device), dtype

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
        alphas, device, dtype = self._setup()
        Xt = _as_tensor(X, "X", device, dtype)
        Yt = _as_2d(Y, "Y")
        if len(Xt) != len(Yt):
            raise ValueError(
                f"X and Y must have the same number of samples; got {len(Xt)} and {len(Yt)}."
            )
        folds = make_folds(self.cv, len(Xt))
        res = solve_ridge_cv(
            Xt,
            Yt,
            alphas,
            folds,
            fit_intercept=self.fit_intercept,
            voxel_batch_size=self.voxel_batch_size,
        )
        self.coef_ = res.coef.cpu().numpy()
        self.intercept_ = res.intercept.cpu().numpy()
        self.alpha_ = alphas[res.best.cpu().numpy()]
        self.cv_scores_ = res.cv_scores.cpu().numpy().astype(self.dtype)
        self.n_features_in_ = Xt.shape[1]
        return self

    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise RuntimeError("This VoxelRidgeCV is not fitted yet; call fit(X, Y) first.")

    def predict(self, X):
        """Predicted responses ``(n_samples, n_voxels)``; numpy in, numpy out; torch in, torch out."""
        self._check_fitted()
        _, device, dtype = self._setup()
        Xt = _as_tensor(X, "X", device, dtype)
        if Xt.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {Xt.shape[1]} features but the model was fitted with {self.n_features_in_}."
            )
        coef = torch.as_tensor(self.coef_, device=device, dtype=dtype)
        pred = Xt @ coef + torch.as_tensor(self.intercept_, device=device, dtype=dtype)
        if isinstance(X, torch.Tensor):
            return pred.to(X.device)
        return pred.cpu().numpy()

    def save(self, path, overwrite: bool = False):
        """Write the fitted model to one ``.npz`` file (settings and arrays, no pickle).

        A scikit-learn splitter given as ``cv`` is not saved (the loaded model
        predicts; refitting it uses the default ``cv``). Writing is atomic and
        an existing file is refused unless ``overwrite``.
        """
        from neuro.encoders._persist import save_fitted

        self._check_fitted()
        return save_fitted(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path) -> VoxelRidgeCV:
        """A fitted model from a file written by :meth:`save`."""
        from neuro.encoders._persist import load_fitted

        return load_fitted(cls, path)

    def score(self, X, Y, sample_weight=None) -> float:
        """Mean over voxels of the Pearson r between prediction and data."""
        return _mean_r(self.predict(X), Y, sample_weight)


def _mean_r(pred, Y, sample_weight=None) -> float:
    """Mean over voxels of the Pearson r between ``pred`` and ``Y``."""
    from neuro.encoders.metrics import voxel_correlation

    if sample_weight is not None:
        raise ValueError("sample_weight is not supported.")
    Yn = Y.detach().cpu().numpy() if isinstance(Y, torch.Tensor) else np.asarray(Y)
    pn = pred.detach().cpu().numpy() if isinstance(pred, torch.Tensor) else pred
    if Yn.ndim == 1:
        Yn = Yn[:, None]
    return float(np.mean(voxel_correlation(Yn.astype(np.float64), pn.astype(np.float64))))
