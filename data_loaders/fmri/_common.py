"""Checks shared by the fMRI readers: bad voxels and trial tables."""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["FMRIDataWarning", "check_stimulus_ids", "drop_bad_voxels", "find_bad_voxels"]


class FMRIDataWarning(UserWarning):
    """Something in the data was dropped or changed; the message counts it."""


def find_bad_voxels(data: np.ndarray, trial_batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Voxels with any NaN/inf value, and voxels constant across trials.

    Parameters
    ----------
    data : array of shape (n_trials, n_voxels)
        May be an h5py dataset or memory map: it is read ``trial_batch_size``
        trials at a time.
    trial_batch_size : int, default=512

    Returns
    -------
    nonfinite, constant : bool arrays of shape (n_voxels,)
        ``constant`` is only set for voxels that are finite.
    """
    n_trials, n_voxels = data.shape
    nonfinite = np.zeros(n_voxels, dtype=bool)
    vmin = np.full(n_voxels, np.inf)
    vmax = np.full(n_voxels, -np.inf)
    for start in range(0, n_trials, trial_batch_size):
        chunk = np.asarray(data[start : start + trial_batch_size], dtype=np.float64)
        finite = np.isfinite(chunk)
        nonfinite |= ~finite.all(axis=0)
        chunk = np.where(finite, chunk, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            vmin = np.fmin(vmin, np.nanmin(chunk, axis=0))
            vmax = np.fmax(vmax, np.nanmax(chunk, axis=0))
    constant = ~nonfinite & (vmax - vmin <= 0)
    return nonfinite, constant


def drop_bad_voxels(data: np.ndarray, what: str = "voxels") -> np.ndarray:
    """Boolean mask of voxels to keep; warns with counts when any are dropped.

    NaN/inf and constant voxels carry no usable signal (and break z-scoring
    and correlations), so they are dropped, never silently.

    Raises
    ------
    ValueError
        Every voxel is bad.
    """
    nonfinite, constant = find_bad_voxels(data)
    keep = ~(nonfinite | constant)
    n_bad = int((~keep).sum())
    if n_bad:
        if not keep.any():
            raise ValueError(
                f"All {keep.size} {what} are NaN/inf or constant across trials; check that the "
                "images hold response estimates and that the mask covers the brain."
            )
        warnings.warn(
            f"Dropped {n_bad} of {keep.size} {what}: {int(nonfinite.sum())} with NaN or infinite "
            f"values, {int(constant.sum())} constant across trials.",
            FMRIDataWarning,
            stacklevel=2,
        )
    return keep


def check_stimulus_ids(stimulus_ids, n_trials: int, n_stimuli: int | None = None) -> np.ndarray:
    """Validate the trial-to-stimulus table and return it as an int64 array.

    Parameters
    ----------
    stimulus_ids : array-like of shape (n_trials,)
        Which stimulus each trial showed (0-based index into the stimulus set).
    n_trials : int
        Number of trials in the responses.
    n_stimuli : int, optional
        Size of the stimulus set; ids must lie in ``[0, n_stimuli)``.
    """
    ids = np.asarray(stimulus_ids)
    if ids.ndim != 1:
        raise ValueError(
            f"stimulus_ids must be one-dimensional (one id per trial); got shape {ids.shape}."
        )
    if len(ids) != n_trials:
        raise ValueError(
            f"The trial table has {len(ids)} rows but the responses have {n_trials} trials; "
            "give one stimulus id per trial, in trial order."
        )
    if not np.issubdtype(ids.dtype, np.integer):
        if (
            np.issubdtype(ids.dtype, np.floating)
            and np.all(np.isfinite(ids))
            and np.all(ids == np.round(ids))
        ):
            ids = ids.astype(np.int64)
        else:
            raise ValueError(
                f"stimulus_ids must be integers (indices into the stimulus set); got dtype {ids.dtype}."
            )
    ids = ids.astype(np.int64)
    if len(ids) and ids.min() < 0:
        raise ValueError(f"stimulus_ids must be >= 0; the smallest is {ids.min()}.")
    if n_stimuli is not None and len(ids) and ids.max() >= n_stimuli:
        bad = int((ids >= n_stimuli).sum())
        raise ValueError(
            f"{bad} stimulus id(s) are out of range: the largest is {ids.max()} but the stimulus "
            f"set holds {n_stimuli} images (valid ids 0..{n_stimuli - 1})."
        )
    return ids
