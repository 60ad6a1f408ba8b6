"""Voxelwise ridge regression with a cross-validated alpha for every voxel.

For each fold, one SVD of the (centred) training features ``X = U S V^T`` serves
every alpha and every voxel: the ridge solution is
``W(alpha) = V diag(s / (s^2 + alpha)) U^T Y``, so validation predictions for
all alphas cost one small matrix product each. Voxels are processed in batches
of ``voxel_batch_size`` so memory stays bounded, on any torch device.

Each voxel's alpha is the one with the best mean validation score over folds
(negative mean squared error, as himalaya's ``RidgeCV`` uses by default; ties
go to the larger alpha), followed by a refit on all samples.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import KFold, check_cv

from neuro.train.device import resolve_device

__all__ = ["VoxelRidgeCV"]

DEFAULT_ALPHAS = tuple(np.logspace(-2, 6, 17).tolist())


def _as_tensor(a, name: str, device, dtype) -> torch.Tensor:
    t = a.detach() if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))
    if t.ndim == 1 and name == "Y":
        t = t[:, None]
    if t.ndim != 2:
        raise ValueError(
            f"{name} must be 2D (n_samples, n_{'features' if name == 'X' else 'voxels'}); got shape {tuple(t.shape)}."
        )
    if not t.is_floating_point() and t.dtype not in (
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.uint8,
    ):
        raise TypeError(f"{name} must hold numbers; got dtype {t.dtype}.")
    t = t.to(device=device, dtype=dtype)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values; remove or impute them first.")
    return t


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
        Voxels solved at once; None means all. Bounds memory.
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

    # ------------------------------------------------------------------ utils
    def _setup(self):
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64'; got {self.dtype!r}.")
        alphas = np.asarray(self.alphas, dtype=np.float64).ravel()
        if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
            raise ValueError(
                f"alphas must be a non-empty list of finite numbers > 0; got {self.alphas!r}."
            )
        vb = self.voxel_batch_size
        if vb is not None and (isinstance(vb, bool) or not isinstance(vb, Integral) or vb < 1):
            raise ValueError(f"voxel_batch_size must be a positive integer or None; got {vb!r}.")
        return alphas, resolve_device(self.device), getattr(torch, self.dtype)

    def _folds(self, n: int):
        if isinstance(self.cv, Integral) and not isinstance(self.cv, bool):
            if self.cv < 2 or self.cv > n:
                raise ValueError(f"cv must be an integer in [2, n_samples={n}]; got {self.cv}.")
            return list(KFold(n_splits=int(self.cv), shuffle=False).split(np.zeros(n)))
        if hasattr(self.cv, "split"):
            return list(check_cv(self.cv).split(np.zeros(n)))
        folds = [(np.asarray(tr), np.asarray(te)) for tr, te in self.cv]
        if not folds:
            raise ValueError("cv gave no (train, test) splits.")
        return folds

    # -------------------------------------------------------------------- fit
    def fit(self, X, Y):
        """Choose each voxel's alpha by cross-validation, then refit on all samples.

        Parameters
        ----------
        X : array or tensor of shape (n_samples, n_features)
        Y : array or tensor of shape (n_samples, n_voxels)

        Returns
        -------
        self
        """
        alphas, device, dtype = self._setup()
        Xt = _as_tensor(X, "X", device, dtype)
        Yt = _as_tensor(Y, "Y", device, dtype)
        if len(Xt) != len(Yt):
            raise ValueError(
                f"X and Y must have the same number of samples; got {len(Xt)} and {len(Yt)}."
            )
        n, v = Yt.shape
        vb = self.voxel_batch_size or v
        a = torch.as_tensor(alphas, device=device, dtype=dtype)
        scores = torch.zeros(len(alphas), v, device=device, dtype=dtype)
        folds = self._folds(n)
        for train, test in folds:
            tr = torch.as_tensor(train, device=device)
            te = torch.as_tensor(test, device=device)
            Xtr, Xte = Xt[tr], Xt[te]
            xm = Xtr.mean(0) if self.fit_intercept else torch.zeros_like(Xtr[0])
            U, s, Vt = torch.linalg.svd(Xtr - xm, full_matrices=False)
            XteV = (Xte - xm) @ Vt.T  # (n_te, k)
            d = s[None, :] / (s[None, :] ** 2 + a[:, None])  # (n_alphas, k)
            for start in range(0, v, vb):
                cols = slice(start, min(start + vb, v))
                Ytr, Yte = Yt[tr, cols], Yt[te, cols]
                ym = Ytr.mean(0) if self.fit_intercept else torch.zeros_like(Ytr[0])
                UtY = U.T @ (Ytr - ym)  # (k, vb)
                target = Yte - ym
                for i in range(len(alphas)):
                    pred = XteV @ (d[i, :, None] * UtY)
                    scores[i, cols] -= ((target - pred) ** 2).mean(0)
        scores /= len(folds)
        # ties go to the larger alpha, as in himalaya
        nudged = scores + 1e-10 * torch.log(a)[:, None]
        best = nudged.argmax(0)

        xm = Xt.mean(0) if self.fit_intercept else torch.zeros_like(Xt[0])
        ym = Yt.mean(0) if self.fit_intercept else torch.zeros_like(Yt[0])
        U, s, Vt = torch.linalg.svd(Xt - xm, full_matrices=False)
        coef = torch.empty(Xt.shape[1], v, device=device, dtype=dtype)
        for i in torch.unique(best).tolist():  # refit only alphas some voxel chose
            vox = torch.nonzero(best == i).squeeze(1)
            d = s / (s**2 + a[i])
            for start in range(0, len(vox), vb):
                sel = vox[start : start + vb]
                coef[:, sel] = Vt.T @ (d[:, None] * (U.T @ (Yt[:, sel] - ym[sel])))
        intercept = ym - xm @ coef
        self.coef_ = coef.cpu().numpy()
        self.intercept_ = intercept.cpu().numpy()
        self.alpha_ = alphas[best.cpu().numpy()]
        self.cv_scores_ = scores.cpu().numpy()
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

    def score(self, X, Y, sample_weight=None) -> float:
        """Mean over voxels of the Pearson r between prediction and data."""
        from neuro.encoders.metrics import voxel_correlation

        if sample_weight is not None:
            raise ValueError("sample_weight is not supported.")
        pred = self.predict(X)
        Yn = Y.detach().cpu().numpy() if isinstance(Y, torch.Tensor) else np.asarray(Y)
        pn = pred.detach().cpu().numpy() if isinstance(pred, torch.Tensor) else pred
        if Yn.ndim == 1:
            Yn = Yn[:, None]
        return float(np.mean(voxel_correlation(Yn.astype(np.float64), pn.astype(np.float64))))
