"""Per-voxel accuracy metrics and per-ROI summaries.

- :func:`voxel_correlation`: Pearson r per voxel;
- :func:`voxel_r2`: coefficient of determination per voxel;
- :func:`mean_r2`, :func:`mean_correlation`: one number over voxels (the
  encoders' ``score`` and ``correlation_score``);
- :func:`noise_normalized`: a score as a fraction of the noise ceiling;
- :func:`roi_summary`: per-ROI means with bootstrap confidence intervals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from neuro.errors import InputError

__all__ = [
    "mean_correlation",
    "mean_r2",
    "noise_normalized",
    "roi_summary",
    "voxel_correlation",
    "voxel_r2",
]


def _pair(y_true, y_pred):
    """Both inputs as float tensors of shape (n_samples, n_voxels), and whether they were numpy."""
    is_numpy = not isinstance(y_true, torch.Tensor)
    yt = torch.as_tensor(np.asarray(y_true) if is_numpy else y_true)
    yp = torch.as_tensor(np.asarray(y_pred) if is_numpy else y_pred)
    if yt.shape != yp.shape:
        raise InputError(
            f"y_true and y_pred must have the same shape (n_samples, n_voxels); got "
            f"{tuple(yt.shape)} and {tuple(yp.shape)}."
        )
    if yt.ndim == 1:
        yt, yp = yt[:, None], yp[:, None]
    dtype = torch.promote_types(torch.promote_types(yt.dtype, yp.dtype), torch.float32)
    return yt.to(dtype), yp.to(dtype), is_numpy


def voxel_correlation(y_true, y_pred, eps: float = 1e-12):
    """Pearson r between data and prediction for each voxel (column).

    Parameters
    ----------
    y_true, y_pred : array or tensor of shape (n_samples, n_voxels)
        Both numpy or both torch; the result has the same type.
    eps : float, default=1e-12
        Guards the division; a constant column gets r = 0.

    Returns
    -------
    ndarray or tensor of shape (n_voxels,)

    Examples
    --------
    >>> import numpy as np
    >>> y = np.arange(12.0).reshape(4, 3)
    >>> voxel_correlation(y, 2 * y + 1).round(6).tolist()
    [1.0, 1.0, 1.0]
    """
    yt, yp, is_numpy = _pair(y_true, y_pred)
    yt = yt - yt.mean(0)
    yp = yp - yp.mean(0)
    r = (yt * yp).sum(0) / ((yt.square().sum(0) * yp.square().sum(0)).sqrt() + eps)
    return r.numpy() if is_numpy else r


def voxel_r2(y_true, y_pred):
    """Coefficient of determination ``1 - SS_res / SS_tot`` for each voxel.

    Unlike the squared correlation it penalises a wrong scale or offset and
    can be negative (a prediction worse than the voxel's mean).

    Parameters
    ----------
    y_true, y_pred : array or tensor of shape (n_samples, n_voxels)

    Returns
    -------
    ndarray or tensor of shape (n_voxels,)
        A constant voxel gets 0.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 4.0]])
    >>> voxel_r2(y, y).tolist()
    [1.0, 1.0]
    >>> float(voxel_r2(y, np.zeros_like(y))[0])
    -1.5
    """
    yt, yp, is_numpy = _pair(y_true, y_pred)
    ss_res = (yt - yp).square().sum(0)
    ss_tot = (yt - yt.mean(0)).square().sum(0)
    ok = ss_tot > 0
    r2 = torch.where(ok, 1 - ss_res / torch.where(ok, ss_tot, 1.0), torch.zeros_like(ss_tot))
    return r2.numpy() if is_numpy else r2


def _score_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` and ``y_pred`` (NumPy or torch) as float64 arrays of one shape, checked."""
    from neuro._validation import check_array

    yt = check_array("Y", y_true, ndim=(1, 2), shape_hint="(n_samples, n_voxels)")
    yp = check_array("prediction", y_pred, ndim=(1, 2), finite=False)
    if yt.ndim == 1 and yp.ndim == 2 and yp.shape[1] == 1:
        yp = yp[:, 0]
    if yt.shape != yp.shape:
        raise InputError(
            f"Y has shape {yt.shape} but the model predicts {yp.shape} for X; give one row of "
            "Y per row of X, one column per voxel the model was fitted on."
        )
    return yt.astype(np.float64, copy=False), yp.astype(np.float64, copy=False)


def mean_r2(y_true, y_pred, sample_weight=None) -> float:
    """R² averaged uniformly over voxels: scikit-learn's regressor score.

    Parameters
    ----------
    y_true, y_pred : array or tensor of shape (n_samples, n_voxels) or (n_samples,)
        NumPy arrays or torch tensors (any device).
    sample_weight : array of shape (n_samples,), optional

    Returns
    -------
    float
        ``sklearn.metrics.r2_score(y_true, y_pred, multioutput="uniform_average")``.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 4.0]])
    >>> mean_r2(y, y)
    1.0
    """
    from sklearn.metrics import r2_score

    yt, yp = _score_pair(y_true, y_pred)
    if sample_weight is not None:
        from neuro._validation import check_array, check_same_length

        sample_weight = check_array("sample_weight", sample_weight, ndim=1)
        check_same_length(Y=yt, sample_weight=sample_weight)
    return float(r2_score(yt, yp, sample_weight=sample_weight, multioutput="uniform_average"))


def mean_correlation(y_true, y_pred) -> float:
    """Pearson r between data and prediction, averaged over voxels.

    Parameters
    ----------
    y_true, y_pred : array or tensor of shape (n_samples, n_voxels) or (n_samples,)

    Returns
    -------
    float
        The mean of :func:`voxel_correlation`.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.arange(12.0).reshape(4, 3)
    >>> round(mean_correlation(y, -y), 6)
    -1.0
    """
    yt, yp = _score_pair(y_true, y_pred)
    return float(np.mean(voxel_correlation(yt, yp)))


def noise_normalized(r, ceiling_r2, min_ceiling: float = 0.05):
    """Fraction of the explainable variance a model explains, per voxel.

    ``sign(r) * r**2 / ceiling_r2``: the model's squared correlation as a
    fraction of the noise ceiling (the variance a perfect model could explain
    in the same test data, e.g. :meth:`data_loaders.fmri.NoiseCeiling.r2` for
    the number of trials averaged). Voxels whose ceiling is below
    ``min_ceiling`` get NaN: dividing by a ceiling near zero gives numbers
    that mean nothing.

    Parameters
    ----------
    r : array of shape (n_voxels,)
        Pearson r between prediction and held-out data.
    ceiling_r2 : array of shape (n_voxels,)
        Noise ceiling as a fraction of variance in ``[0, 1]``.
    min_ceiling : float, default=0.05

    Returns
    -------
    ndarray of shape (n_voxels,)

    Examples
    --------
    >>> noise_normalized([0.5, -0.5, 0.3], [0.5, 0.5, 0.01]).tolist()
    [0.5, -0.5, nan]
    """
    r = np.asarray(r, dtype=np.float64)
    c = np.asarray(ceiling_r2, dtype=np.float64)
    if r.shape != c.shape:
        raise InputError(
            f"r and ceiling_r2 must have the same shape (n_voxels,); got {r.shape} and {c.shape}."
        )
    out = np.full(r.shape, np.nan)
    ok = c >= min_ceiling
    out[ok] = np.sign(r[ok]) * r[ok] ** 2 / c[ok]
    return out


def roi_summary(
    values: Mapping[str, Any] | Any,
    roi_labels,
    ci: float = 0.95,
    n_boot: int = 2000,
    seed: int | None = 0,
    min_voxels: int = 1,
):
    """Mean of per-voxel values in each ROI with a bootstrap confidence interval.

    Parameters
    ----------
    values : array of shape (n_voxels,) or dict {name: array (n_voxels,)}
        Per-voxel scores (e.g. r of one or several encoders). NaNs (voxels
        without a usable noise ceiling, say) are left out of their ROI's mean.
    roi_labels : array of shape (n_voxels,), str
        ROI of each voxel; ``""`` means none. An extra row ``"all"`` covers
        every voxel.
    ci : float, default=0.95
        Coverage of the percentile bootstrap interval over voxels.
    n_boot : int, default=2000
        Bootstrap resamples.
    seed : int or None, default=0
    min_voxels : int, default=1
        ROIs with fewer finite values get NaN statistics.

    Returns
    -------
    pandas.DataFrame
        One row per (ROI, name) with columns ``roi``, ``model`` (the dict key,
        or ``"value"``), ``n_voxels``, ``mean``, ``ci_low``, ``ci_high`` and
        ``median``.

    Examples
    --------
    >>> import numpy as np
    >>> table = roi_summary({"ridge": np.array([0.1, 0.3, 0.5, 0.7])}, ["V1", "V1", "FFA", "FFA"])
    >>> table["roi"].tolist(), table["n_voxels"].tolist(), table["mean"].round(3).tolist()
    (['FFA', 'V1', 'all'], [2, 2, 4], [0.6, 0.2, 0.4])
    """
    import pandas as pd

    if not 0 < ci < 1:
        raise InputError(f"ci must lie in (0, 1); got {ci!r}.")
    labels = np.asarray(roi_labels).astype(str)
    named = dict(values) if isinstance(values, Mapping) else {"value": values}
    rng = np.random.default_rng(seed)
    rois = sorted(r for r in set(labels.tolist()) if r)
    rows = []
    for name, vals in named.items():
        v = np.asarray(vals, dtype=np.float64)
        if v.shape != labels.shape:
            raise InputError(
                f"values[{name!r}] has shape {v.shape} but roi_labels has {labels.shape}; "
                "give one value per voxel."
            )
        for roi in [*rois, "all"]:
            x = v if roi == "all" else v[labels == roi]
            x = x[np.isfinite(x)]
            row = {"roi": roi, "model": name, "n_voxels": len(x)}
            if len(x) < max(min_voxels, 1):
                row.update(mean=np.nan, ci_low=np.nan, ci_high=np.nan, median=np.nan)
            else:
                boot = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(1)
                lo, hi = np.quantile(boot, [(1 - ci) / 2, (1 + ci) / 2])
                row.update(mean=x.mean(), ci_low=lo, ci_high=hi, median=np.median(x))
            rows.append(row)
    return pd.DataFrame(
        rows, columns=["roi", "model", "n_voxels", "mean", "ci_low", "ci_high", "median"]
    )
