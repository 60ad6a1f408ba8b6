"""Per-voxel accuracy metrics."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["voxel_correlation"]


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
    is_numpy = not isinstance(y_true, torch.Tensor)
    yt = torch.as_tensor(np.asarray(y_true) if is_numpy else y_true)
    yp = torch.as_tensor(np.asarray(y_pred) if is_numpy else y_pred)
    if yt.shape != yp.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape (n_samples, n_voxels); got "
            f"{tuple(yt.shape)} and {tuple(yp.shape)}."
        )
    if yt.ndim == 1:
        yt, yp = yt[:, None], yp[:, None]
    dtype = torch.promote_types(torch.promote_types(yt.dtype, yp.dtype), torch.float32)
    yt = yt.to(dtype) - yt.to(dtype).mean(0)
    yp = yp.to(dtype) - yp.to(dtype).mean(0)
    r = (yt * yp).sum(0) / ((yt.square().sum(0) * yp.square().sum(0)).sqrt() + eps)
    return r.numpy() if is_numpy else r
