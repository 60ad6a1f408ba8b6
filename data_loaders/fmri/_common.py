"""Checks shared by the fMRI readers: bad voxels, trial tables and the text files beside them."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from data_loaders._validation import check_file, check_int
from data_loaders.errors import InputError, InputTypeError, UnreadableFileError, one_line

__all__ = [
    "FMRIDataWarning",
    "check_session_ids",
    "check_stimulus_ids",
    "drop_bad_voxels",
    "find_bad_voxels",
    "read_json",
    "read_table",
]


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
    trial_batch_size = check_int("trial_batch_size", trial_batch_size, minimum=1)
    if len(getattr(data, "shape", ())) != 2:
        raise InputError(
            f"data must be an array of shape (n_trials, n_voxels); got "
            f"{getattr(data, 'shape', type(data).__name__)}."
        )
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
    InputError
        Every voxel is bad.
    """
    nonfinite, constant = find_bad_voxels(data)
    keep = ~(nonfinite | constant)
    n_bad = int((~keep).sum())
    if n_bad:
        if not keep.any():
            raise InputError(
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

    Returns
    -------
    ndarray of shape (n_trials,), int64

    Raises
    ------
    InputError
        Not one id per trial, ids that are not integers, negative or beyond
        the stimulus set.
    """
    try:
        ids = np.asarray(stimulus_ids)
    except (TypeError, ValueError) as err:
        raise InputTypeError(
            f"stimulus_ids must be an array of integers (one per trial); got "
            f"{type(stimulus_ids).__name__} that NumPy cannot convert ({err})."
        ) from None
    if ids.ndim != 1:
        raise InputError(
            f"stimulus_ids must be one-dimensional (one id per trial); got shape {ids.shape}."
        )
    if len(ids) != n_trials:
        raise InputError(
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
            raise InputError(
                f"stimulus_ids must be integers (indices into the stimulus set); got dtype {ids.dtype}."
            )
    ids = ids.astype(np.int64)
    if len(ids) and ids.min() < 0:
        raise InputError(f"stimulus_ids must be >= 0; the smallest is {ids.min()}.")
    if n_stimuli is not None and len(ids) and ids.max() >= n_stimuli:
        distinct = np.unique(ids)
        bad = int((distinct >= n_stimuli).sum())
        hint = ""
        if ids.min() >= 1 and ids.max() == n_stimuli:
            hint = (
                " The ids look 1-based (they run to exactly the number of images, and none is "
                "0); subtract 1 (as for NSD's MATLAB indices)."
            )
        raise InputError(
            f"{bad} distinct stimulus id(s) of {len(distinct)} are out of range: the largest is "
            f"{ids.max()} but the stimulus set holds {n_stimuli} images (valid ids "
            f"0..{n_stimuli - 1}; the ids found run from {ids.min()} to {ids.max()}).{hint}"
        )
    return ids


def check_session_ids(session_ids, n_trials: int, name: str = "session_ids") -> np.ndarray | None:
    """Validate the session of each trial; None stays None (all trials one session).

    Parameters
    ----------
    session_ids : array-like of shape (n_trials,), or None
        Any labels (ints such as NSD's 1-based session numbers, or BIDS labels
        such as ``"01"``); trials with equal labels share a session.
    n_trials : int
    name : str, default="session_ids"
        How the caller's parameter is named in messages.

    Returns
    -------
    ndarray of shape (n_trials,) or None
        Integer labels as int64 (whole floats included), others as str.

    Raises
    ------
    InputError
        Not one label per trial, or a missing label (NaN, None or empty).
    """
    if session_ids is None:
        return None
    try:
        s = np.asarray(session_ids)
    except (TypeError, ValueError) as err:
        raise InputTypeError(
            f"{name} must be an array of session labels (one per trial); NumPy cannot convert "
            f"{type(session_ids).__name__} ({one_line(err)})."
        ) from None
    if s.ndim != 1 or len(s) != n_trials:
        raise InputError(
            f"{name} must have one session label per trial ({n_trials}); got shape {s.shape}."
        )
    if np.issubdtype(s.dtype, np.integer) or np.issubdtype(s.dtype, np.bool_):
        return s.astype(np.int64)
    if np.issubdtype(s.dtype, np.floating):
        if not np.all(np.isfinite(s)):
            raise InputError(
                f"{name}: {int((~np.isfinite(s)).sum())} trial(s) have no session (NaN); give "
                "every trial a session label, e.g. fill the trial table's session column."
            )
        if np.all(s == np.round(s)):
            return s.astype(np.int64)
        return s.astype(str)
    missing = np.array([v is None or (isinstance(v, float) and v != v) or str(v) == "" for v in s])
    if missing.any():
        raise InputError(
            f"{name}: {int(missing.sum())} trial(s) have no session (empty or missing); give "
            "every trial a session label, e.g. fill the trial table's session column."
        )
    return s.astype(str)


def _looks_binary(path: Path) -> bool:
    with open(path, "rb") as fh:
        return b"\x00" in fh.read(8192)


def read_table(name: str, path: Any) -> Any:
    """Read a text table with a header row (``.csv`` comma-, anything else tab-separated).

    Parameters
    ----------
    name : str
        How the caller calls the file (``"stimulus_ids"``, ``"events[0]"``),
        used in messages.
    path : str or path-like

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    MissingFileError
        No such file.
    UnreadableFileError
        The file is empty, binary (another format), not parseable as a
        table, or truncated (its last row stops midway).
    """
    import pandas as pd

    p = check_file(name, path)
    kind = "comma-separated (.csv)" if p.name.lower().endswith(".csv") else "tab-separated"
    fix = f"give a {kind} text table with a header row"
    if _looks_binary(p):
        raise UnreadableFileError(f"{name}: {str(p)!r} is a binary file, not a text table; {fix}.")
    try:
        table = pd.read_csv(p, sep="," if kind.startswith("comma") else "\t")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UnreadableFileError(
            f"{name}: cannot read {str(p)!r} as a table ({one_line(err)}); {fix}."
        ) from None
    with open(p, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        ends_with_newline = fh.read(1) in (b"\n", b"\r")
    if not ends_with_newline and len(table) and table.iloc[-1].isna().any():
        raise UnreadableFileError(
            f"{name}: {str(p)!r} looks truncated: its last row (row {len(table)}) stops midway "
            "and has empty fields. Copy the file again from its source."
        )
    return table


def read_json(name: str, path: Any) -> dict:
    """Read a JSON file that holds one object (a BIDS sidecar).

    Parameters
    ----------
    name : str
        How the caller calls the file, used in messages.
    path : str or path-like

    Returns
    -------
    dict

    Raises
    ------
    MissingFileError
        No such file.
    UnreadableFileError
        The file is empty, truncated, not JSON, or holds something other
        than an object.
    """
    p = check_file(name, path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnreadableFileError(
            f"{name}: cannot read {str(p)!r} as JSON ({one_line(err)}); the file is truncated, "
            "corrupt or of another format. Fix it or copy it again from its source."
        ) from None
    if not isinstance(obj, dict):
        raise UnreadableFileError(
            f"{name}: {str(p)!r} holds a JSON {type(obj).__name__}, not an object; a sidecar is "
            'an object such as {"RepetitionTime": 2.0}.'
        )
    return obj
