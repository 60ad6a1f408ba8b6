"""Banded ridge: several feature spaces, one regularisation per space per voxel.

The features are split into groups ``X = [X_1, ..., X_m]`` (feature spaces,
e.g. motion energy and word embeddings), and each voxel gets its own penalty on
each space::

    min_b  ||Y - sum_i X_i b_i||^2 + sum_i (alpha / gamma_i) ||b_i||^2

with feature-space weights ``gamma`` on the simplex. As in himalaya's
``BandedRidgeCV`` (solver ``"random_search"``), candidate ``gamma`` vectors are
drawn from a Dirichlet distribution (the first one uniform); for each, the
columns of ``X_i`` are scaled by ``sqrt(gamma_i)``, which turns the problem into
ordinary ridge with penalty ``alpha``, and the cross-validated alpha sweep of
:func:`neuro.encoders.ridge.solve_ridge_cv` is run. Each voxel keeps the
(gamma, alpha) with the best mean validation score, and the weights refit on all
samples with it, mapped back to the original feature units
(``b_i = sqrt(gamma_i) * w_i``).
"""

from __future__ import annotations

import itertools
from numbers import Integral

import numpy as np
import torch

from neuro.encoders.ridge import DEFAULT_ALPHAS, _VoxelLinearModel, solve_ridge_cv
from neuro.errors import InputError, InputTypeError

__all__ = ["BandedRidgeCV", "check_groups", "sample_gammas"]


def check_groups(groups, n_features: int) -> list[np.ndarray]:
    """Turn a ``groups`` specification into one column-index array per feature space.

    Parameters
    ----------
    groups : None, sequence of int, or sequence of (index array or slice)
        None: one group holding every column. A sequence of ints: the sizes of
        consecutive blocks of columns, in order, summing to ``n_features``
        (``[3, 4]`` means columns 0-2 and 3-6). Otherwise one entry per group:
        an array or list of column indices, or a slice.
    n_features : int
        Number of columns of X.

    Returns
    -------
    list of ndarray of int
        The column indices of each group.

    Raises
    ------
    InputError
        A group is empty, holds indices out of range or repeated, two groups
        share a column, or some column is in no group (every column must belong
        to exactly one group: drop unused columns from X instead).
    """
    if groups is None:
        return [np.arange(n_features)]
    if isinstance(groups, (str, bytes)) or not hasattr(groups, "__len__") or len(groups) == 0:
        raise InputError(
            "groups must be None, a list of group sizes, or a list of column-index arrays or "
            f"slices; got {groups!r}."
        )
    items = list(groups)
    is_size = [isinstance(g, Integral) and not isinstance(g, bool) for g in items]
    if all(is_size):
        sizes = [int(g) for g in items]
        if any(s < 1 for s in sizes) or sum(sizes) != n_features:
            raise InputError(
                f"groups given as sizes must be positive and sum to n_features={n_features}; "
                f"got {sizes} (sum {sum(sizes)})."
            )
        edges = np.cumsum([0, *sizes])
        return [np.arange(a, b) for a, b in itertools.pairwise(edges)]
    if any(is_size):
        raise InputError(
            "groups mixes sizes (ints) and column indices; give either a list of sizes or a "
            "list of index arrays/slices."
        )
    out = []
    for i, g in enumerate(items):
        idx = np.arange(n_features)[g] if isinstance(g, slice) else np.asarray(g).ravel()
        if idx.size == 0:
            raise InputError(f"group {i} is empty; every group needs at least one column.")
        if not np.issubdtype(idx.dtype, np.integer):
            raise InputError(f"group {i} must hold integer column indices; got dtype {idx.dtype}.")
        if idx.min() < 0 or idx.max() >= n_features:
            raise InputError(
                f"group {i} holds column indices outside [0, n_features={n_features}): "
                f"{idx[(idx < 0) | (idx >= n_features)][:5].tolist()}."
            )
        out.append(idx.astype(np.int64))
    counts = np.bincount(np.concatenate(out), minlength=n_features)
    if np.any(counts > 1):
        raise InputError(
            f"groups overlap: columns {np.flatnonzero(counts > 1)[:10].tolist()} are in more "
            "than one group (or repeated); each column must belong to exactly one group."
        )
    if np.any(counts == 0):
        raise InputError(
            f"columns {np.flatnonzero(counts == 0)[:10].tolist()} are in no group; every column "
            "of X must belong to a group (drop unused columns from X)."
        )
    return out


def sample_gammas(n_candidates: int, n_groups: int, concentration=(0.1, 1.0), random_state=0):
    """Candidate feature-space weights: the uniform one, then Dirichlet draws.

    Parameters
    ----------
    n_candidates : int
    n_groups : int
    concentration : float or sequence of float, default=(0.1, 1.0)
        Dirichlet concentration; a sequence is cycled through candidate by
        candidate (small values favour a few dominant spaces, 1 is uniform on
        the simplex).
    random_state : int, None or numpy Generator, default=0

    Returns
    -------
    ndarray of shape (n_candidates, n_groups)
        Rows on the simplex; row 0 is ``1 / n_groups`` everywhere.
    """
    rng = np.random.default_rng(random_state)
    conc = np.atleast_1d(np.asarray(concentration, dtype=np.float64))
    gammas = np.full((n_candidates, n_groups), 1.0 / n_groups)
    for j in range(1, n_candidates):
        gammas[j] = rng.dirichlet(np.full(n_groups, conc[(j - 1) % len(conc)]))
    return gammas


class BandedRidgeCV(_VoxelLinearModel):
    """Ridge with one cross-validated penalty per feature space and per voxel.

    Parameters
    ----------
    groups : None, sequence of int, or sequence of (index array or slice), default=None
        The feature spaces, as columns of X. A list of ints gives the sizes of
        consecutive blocks in order (``[3, 4]``: columns 0-2, then 3-6); a list
        of index arrays or slices gives each space's columns. Every column must
        be in exactly one group (overlaps, gaps, empty groups and out-of-range
        indices are refused at ``fit``). None means one space (plain ridge).
    alphas : sequence of float, default=17 values log-spaced from 1e-2 to 1e6
        Candidate overall regularisation strengths (> 0).
    n_iter : int or array of shape (n_candidates, n_groups), default=20
        Number of candidate feature-space weights ``gamma`` (the first uniform,
        the others Dirichlet draws), or the candidates themselves, used as
        given (rows of non-negative numbers, normally summing to 1).
    concentration : float or sequence of float, default=(0.1, 1.0)
        Dirichlet concentration of the draws, cycled through (see
        :func:`sample_gammas`); unused if ``n_iter`` is an array.
    cv : int, splitter or iterable of (train, test), default=5
        An int means that many contiguous folds without shuffling.
    device : str, default="auto"
    voxel_batch_size : int or None, default=None
        Voxels solved at once (bounds memory, see :class:`VoxelRidgeCV`).
    fit_intercept : bool, default=True
        Centre X and Y on each training fold and fit an intercept per voxel.
    dtype : {"float32", "float64"}, default="float32"
    random_state : int, None or numpy Generator, default=0
        Seed of the Dirichlet draws.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features, n_voxels)
        Weights in the original (unscaled) feature units.
    intercept_ : ndarray of shape (n_voxels,)
    candidates_ : ndarray of shape (n_candidates, n_groups)
        The feature-space weights tried.
    gammas_ : ndarray of shape (n_groups, n_voxels)
        Each voxel's chosen feature-space weights (a row of ``candidates_``).
    alpha_ : ndarray of shape (n_voxels,)
        Each voxel's chosen overall alpha (himalaya's ``best_alphas_`` when the
        candidates sum to 1).
    group_alphas_ : ndarray of shape (n_groups, n_voxels)
        The effective penalty on each space, ``alpha_ / gammas_``: the fitted
        weights minimise ``||Y - sum_i X_i b_i||^2 + sum_i group_alphas_[i] *
        ||b_i||^2`` for each voxel (``inf`` where a gamma is 0: that space is
        unused).
    deltas_ : ndarray of shape (n_groups, n_voxels)
        ``log(gammas_ / alpha_) = -log(group_alphas_)``, as himalaya stores.
    cv_scores_ : ndarray of shape (n_candidates, n_voxels)
        Mean validation score (negative MSE) of each candidate, at its best alpha.
    groups_ : list of ndarray
        Column indices of each feature space.
    single_output_ : bool
        ``Y`` was 1D at ``fit``: ``predict`` then returns 1D too.
    n_features_in_ : int

    Notes
    -----
    ``score`` is R² (averaged over voxels), as for every scikit-learn
    regressor; ``correlation_score`` is the mean Pearson r. ``save(path)``
    and ``BandedRidgeCV.load(path)`` round-trip exactly (:mod:`neuro.persist`);
    ``groups`` given as slices and a ``random_state`` Generator are not
    stored (the fitted ``groups_`` are), so a loaded model predicts the same
    and a refit uses their defaults.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((150, 7))
    >>> W = rng.standard_normal((7, 9))
    >>> W[4:] = 0  # the second feature space (columns 4-6) is irrelevant
    >>> Y = X @ W + 0.5 * rng.standard_normal((150, 9))
    >>> model = BandedRidgeCV(groups=[4, 3], n_iter=10, device="cpu").fit(X, Y)
    >>> model.coef_.shape, model.group_alphas_.shape
    ((7, 9), (2, 9))
    >>> bool(np.median(model.group_alphas_[1] / model.group_alphas_[0]) > 10)
    True
    >>> model.predict(X, split=True).shape  # one prediction per feature space
    (2, 150, 9)
    """

    def __init__(
        self,
        groups=None,
        alphas=DEFAULT_ALPHAS,
        n_iter=20,
        concentration=(0.1, 1.0),
        cv=5,
        device: str = "auto",
        voxel_batch_size: int | None = None,
        fit_intercept: bool = True,
        dtype: str = "float32",
        random_state=0,
    ) -> None:
        self.groups = groups
        self.alphas = alphas
        self.n_iter = n_iter
        self.concentration = concentration
        self.cv = cv
        self.device = device
        self.voxel_batch_size = voxel_batch_size
        self.fit_intercept = fit_intercept
        self.dtype = dtype
        self.random_state = random_state

    def _candidates(self, n_groups: int) -> np.ndarray:
        n_iter = self.n_iter
        if isinstance(n_iter, Integral) and not isinstance(n_iter, bool):
            if n_iter < 1:
                raise InputError(f"n_iter must be a positive integer or an array; got {n_iter}.")
            try:
                conc = np.atleast_1d(np.asarray(self.concentration, dtype=np.float64))
            except (TypeError, ValueError):
                conc = np.array([np.nan])
            if conc.size == 0 or not np.all(np.isfinite(conc)) or np.any(conc <= 0):
                raise InputError(
                    f"concentration must be a number > 0 or a list of them; got "
                    f"{self.concentration!r}."
                )
            return sample_gammas(int(n_iter), n_groups, conc, self.random_state)
        try:
            gammas = np.asarray(n_iter, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputTypeError(
                f"n_iter must be a positive integer or an array of candidates (n_candidates, "
                f"n_groups={n_groups}); got {n_iter!r}."
            ) from None
        if gammas.ndim != 2 or gammas.shape[1] != n_groups or len(gammas) == 0:
            raise InputError(
                f"n_iter given as candidates must have shape (n_candidates, n_groups={n_groups}); "
                f"got shape {gammas.shape}."
            )
        if not np.all(np.isfinite(gammas)) or np.any(gammas < 0) or np.any(gammas.sum(1) <= 0):
            raise InputError(
                "n_iter candidates must be finite, non-negative, with a positive sum per row."
            )
        return gammas

    def fit(self, X, Y):
        """Search each voxel's feature-space weights and alpha, then refit on all samples.

        Parameters
        ----------
        X : array or tensor of shape (n_samples, n_features)
        Y : array or tensor of shape (n_samples, n_voxels) or (n_samples,)

        Returns
        -------
        self
        """
        Xt, Yt, alphas, folds, device, dtype = self._fit_inputs(X, Y)
        p, v = Xt.shape[1], Yt.shape[1]
        groups = check_groups(self.groups, p)
        gammas = self._candidates(len(groups))
        group_of = np.empty(p, dtype=np.int64)
        for i, idx in enumerate(groups):
            group_of[idx] = i
        log_a = torch.as_tensor(np.log(alphas), device=device)
        eps = torch.finfo(dtype).eps

        cv_scores = torch.empty(len(gammas), v, device=device, dtype=torch.float64)
        best_score = torch.full((v,), -torch.inf, device=device, dtype=torch.float64)
        best_cand = torch.zeros(v, device=device, dtype=torch.int64)
        best_alpha = torch.zeros(v, device=device, dtype=torch.int64)
        coef = torch.zeros(p, v, device=device, dtype=dtype)
        intercept = torch.zeros(v, device=device, dtype=dtype)
        done: dict[tuple, int] = {}
        for j, gamma in enumerate(gammas):
            key = tuple(gamma.tolist())
            if key in done:  # a repeated candidate cannot beat itself
                cv_scores[j] = cv_scores[done[key]]
                continue
            done[key] = j
            scale = torch.as_tensor(np.sqrt(gamma)[group_of], device=device, dtype=dtype)
            res = solve_ridge_cv(
                Xt * scale,
                Yt,
                alphas,
                folds,
                fit_intercept=self.fit_intercept,
                voxel_batch_size=self.voxel_batch_size,
            )
            score = res.cv_scores.gather(0, res.best[None]).squeeze(0)
            cv_scores[j] = score
            # ties within rounding stay with the earlier candidate, as in himalaya (which
            # uses an absolute machine epsilon; here it is relative to the score)
            nudged = score + 1e-10 * log_a[res.best]
            margin = torch.where(best_score.isfinite(), eps * best_score.abs(), 0.0)
            better = nudged > best_score + margin
            best_score = torch.where(better, nudged, best_score)
            best_cand[better] = j
            best_alpha[better] = res.best[better]
            coef[:, better] = res.coef[:, better] * scale[:, None]
            intercept[better] = res.intercept[better]

        cand = best_cand.cpu().numpy()
        self.candidates_ = gammas
        self.gammas_ = gammas[cand].T.copy()
        self.alpha_ = alphas[best_alpha.cpu().numpy()]
        with np.errstate(divide="ignore"):
            self.group_alphas_ = self.alpha_[None, :] / self.gammas_
            self.deltas_ = np.log(self.gammas_) - np.log(self.alpha_)[None, :]
        self.cv_scores_ = cv_scores.cpu().numpy().astype(self.dtype)
        self._set_fit(coef, intercept)
        self.groups_ = groups
        return self

    def predict(self, X, split: bool = False):
        """Predicted responses; numpy in, numpy out; torch in, torch out.

        Parameters
        ----------
        X : array or tensor of shape (n_samples, n_features)
        split : bool, default=False
            If True, return each feature space's contribution ``X_i @ coef_i``,
            of shape (n_groups, n_samples, n_voxels), for variance partitioning:
            their sum over groups plus ``intercept_`` is ``predict(X)``.

        Returns
        -------
        array or tensor of shape (n_samples, n_voxels), or (n_groups, n_samples, n_voxels)
            Without the voxel axis if ``Y`` was 1D at ``fit``.
        """
        if not split:
            return super().predict(X)
        Xt, coef, _, _ = self._predict_tensor(X)
        pred = torch.stack([Xt[:, idx] @ coef[idx] for idx in self.groups_])
        return self._output(pred, X)
