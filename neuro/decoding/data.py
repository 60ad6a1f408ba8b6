"""From an fMRI dataset to the arrays a 3D decoder trains on.

:func:`decoding_arrays` turns an :class:`~data_loaders.fmri.dataset.FMRIDataset`
(single trials) into one row of responses per stimulus shown (z-scored per
voxel within sessions, then the repeats averaged), aligned with the 3D target
of that stimulus (and its category); :func:`check_rois` refuses ROI names the
responses lack, naming the ones they have.

Examples
--------
>>> import numpy as np
>>> from data_loaders.fmri.dataset import FMRIDataset
>>> rng = np.random.default_rng(0)
>>> ds = FMRIDataset(rng.standard_normal((12, 5)), np.repeat(np.arange(6), 2),
...                  roi_labels=["V1", "V1", "V2", "MTL", "MTL"])
>>> data = decoding_arrays(ds, np.zeros((6, 4, 4, 4)))
>>> data.X.shape, data.Y.shape, data.stimulus_ids.tolist()
((6, 5), (6, 4, 4, 4), [0, 1, 2, 3, 4, 5])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neuro._validation import check_array, check_bool
from neuro.errors import InputError, InputTypeError

__all__ = ["DecodingData", "check_rois", "decoding_arrays"]

_TARGET_HINT = "(n_stimuli, G, G, G)"


@dataclass
class DecodingData:
    """Responses and 3D targets, one row per stimulus shown.

    Attributes
    ----------
    X : ndarray of shape (n, n_voxels), float32
        Responses averaged over the repeats of each stimulus (z-scored per
        voxel within sessions first, unless asked otherwise).
    Y : ndarray of shape (n, G, G, G), float32
        The 3D target (occupancy) of each row's stimulus.
    roi_labels : ndarray of shape (n_voxels,), str
        ROI name of each column of ``X`` ("" for none).
    categories : ndarray of shape (n,), int64, or None
        Category of each row's stimulus, when given.
    stimulus_ids : ndarray of shape (n,), int64
        The stimulus id of each row, increasing.
    """

    X: np.ndarray
    Y: np.ndarray
    roi_labels: np.ndarray
    categories: np.ndarray | None
    stimulus_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.X)


def check_rois(roi_labels: Any, needed: Any, where: str) -> tuple[str, ...]:
    """Refuse ROI names that no column of the responses carries.

    Parameters
    ----------
    roi_labels : array-like of shape (n_voxels,), str
        ROI name of each voxel.
    needed : str or iterable of str
        The ROIs required.
    where : str
        The argument that asked for them (``"early_rois"``, ``"roi"``); the
        message tells the user to change it.

    Returns
    -------
    tuple of str
        ``needed``, as a tuple.

    Raises
    ------
    InputError
        A needed ROI is missing; the message names it, the ROIs present and the fix.

    Examples
    --------
    >>> check_rois(["V1", "V1", "MTL"], ["V1", "MTL"], "rois")
    ('V1', 'MTL')
    >>> check_rois(["V1", "V2"], ["V1", "MTL"], "semantic_rois")
    Traceback (most recent call last):
    ...
    data_loaders.errors.InputError: semantic_rois: ROI 'MTL' is not in roi_labels (the ROIs present are 'V1', 'V2'); pass semantic_rois= ROIs that exist, or give responses that include 'MTL'.
    """
    labels = _roi_labels(roi_labels)
    needed = (needed,) if isinstance(needed, str) else tuple(needed)
    if not all(isinstance(n, str) for n in needed):
        raise InputTypeError(f"{where} must name ROIs as strings; got {list(needed)!r}.")
    present = sorted(set(labels.tolist()) - {""})
    missing = [n for n in needed if n not in present]
    if missing:
        names = ", ".join(repr(m) for m in missing)
        plural = "s" if len(missing) > 1 else ""
        verb = "are" if len(missing) > 1 else "is"
        have = ", ".join(repr(p) for p in present) or "none"
        raise InputError(
            f"{where}: ROI{plural} {names} {verb} not in roi_labels (the ROIs present are "
            f"{have}); pass {where}= ROIs that exist, or give responses that include {names}."
        )
    return needed


def _roi_labels(roi_labels: Any) -> np.ndarray:
    if roi_labels is None:
        raise InputError(
            "roi_labels is None; the decoder needs the ROI name of each voxel: give roi_labels "
            "(one name per column of X), e.g. FMRIDataset(..., roi_labels=...)."
        )
    labels = np.asarray(roi_labels)
    if labels.ndim != 1 or labels.dtype.kind not in "US":
        raise InputError(
            f"roi_labels must be a 1D array of ROI names (n_voxels,), str; got shape "
            f"{labels.shape} of dtype {labels.dtype}."
        )
    return labels.astype(str)


def decoding_arrays(
    dataset: Any, targets: Any, categories: Any = None, zscore: bool = True
) -> DecodingData:
    """One row of responses per stimulus shown, aligned with its 3D target.

    Parameters
    ----------
    dataset : FMRIDataset
        Single-trial responses with ``roi_labels`` (see
        :class:`~data_loaders.fmri.dataset.FMRIDataset`).
    targets : array-like of shape (n_stimuli, G, G, G)
        The 3D object (occupancy) of every stimulus, indexed by stimulus id:
        ``targets[k]`` is what stimulus ``k`` showed (e.g. from
        :func:`data_loaders.shapes3d.load_shape_targets`).
    categories : array-like of shape (n_stimuli,), optional
        Integer category of every stimulus, indexed by stimulus id.
    zscore : bool, default=True
        Z-score each voxel within sessions before averaging the repeats
        (:meth:`FMRIDataset.zscore`).

    Returns
    -------
    DecodingData
        ``X (n, n_voxels)``, ``Y (n, G, G, G)``, ``roi_labels``,
        ``categories (n,)`` or None, ``stimulus_ids (n,)``, where ``n`` is the
        number of distinct stimuli shown.

    Raises
    ------
    InputError
        ``dataset`` has no ROI labels; ``targets`` is not 4D, not cubic,
        holds NaN, or has fewer objects than the stimulus ids need; the same
        for ``categories``.
    """
    if not all(hasattr(dataset, a) for a in ("betas", "stimulus_ids", "average_repeats")):
        raise InputTypeError(
            f"dataset must be an FMRIDataset (data_loaders.fmri.dataset); got "
            f"{type(dataset).__name__}. Build one with FMRIDataset(betas, stimulus_ids, "
            "roi_labels=...) or a reader of data_loaders.fmri."
        )
    if getattr(dataset, "roi_labels", None) is None:
        raise InputError(
            "dataset has no roi_labels; the decoder reads early visual and high-level ROIs "
            "separately, so give each voxel's ROI: FMRIDataset(..., roi_labels=[...])."
        )
    zscore = check_bool("zscore", zscore)
    Y = check_array("targets", targets, ndim=4, shape_hint=_TARGET_HINT, dtype=np.float32)
    if not Y.shape[1] == Y.shape[2] == Y.shape[3]:
        raise InputError(
            f"targets must be cubic grids {_TARGET_HINT}; got shape {Y.shape}. Resample the "
            "objects onto a G x G x G grid (data_loaders.shapes3d.load_shape_targets does)."
        )
    ds = dataset.zscore() if zscore else dataset
    X, ids, _ = ds.average_repeats()
    ids = np.asarray(ids, dtype=np.int64)
    need = int(ids.max()) + 1
    if len(Y) < need:
        raise InputError(
            f"targets has {len(Y)} objects but the dataset shows stimulus ids up to {need - 1}; "
            f"give one target per stimulus, indexed by stimulus id (shape ({need}, G, G, G) or "
            "more)."
        )
    cats = None
    if categories is not None:
        c = check_array("categories", categories, ndim=1, shape_hint="(n_stimuli,)")
        if not np.array_equal(c, np.round(c)):
            raise InputError("categories must hold integer category labels; got fractional values.")
        if len(c) < need:
            raise InputError(
                f"categories has {len(c)} entries but the dataset shows stimulus ids up to "
                f"{need - 1}; give one category per stimulus, indexed by stimulus id."
            )
        cats = c.astype(np.int64)[ids]
    return DecodingData(
        X=np.ascontiguousarray(X, dtype=np.float32),
        Y=np.ascontiguousarray(Y[ids]),
        roi_labels=np.asarray(ds.roi_labels).astype(str),
        categories=cats,
        stimulus_ids=ids,
    )
