"""Checks for public arguments, arrays and files, with messages that name the fix.

One policy for the whole package (``neuro._validation`` re-exports these):

* a wrong type raises :class:`~data_loaders.errors.InputTypeError` (a ``TypeError``);
* a wrong value, shape or file raises :class:`~data_loaders.errors.InputError`
  (a ``ValueError``), or :class:`~data_loaders.errors.MissingFileError` (a
  ``FileNotFoundError``) for a path that does not exist;
* every message names the argument, what was expected, what was given and,
  where there is one, the fix: ``"rank must be an integer >= 1; got 0."``

Public functions check their arguments here, at the boundary; internal code
trusts them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from data_loaders.errors import InputError, InputTypeError, MissingFileError, UnreadableFileError

__all__ = [
    "check_array",
    "check_bool",
    "check_choice",
    "check_file",
    "check_float",
    "check_int",
    "check_n_features",
    "check_same_length",
]


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise :class:`InputError`."""
    choices = list(choices)
    try:
        ok = value in choices
    except TypeError:  # unhashable or incomparable values are simply not a choice
        ok = False
    if not ok:
        listed = ", ".join(repr(c) for c in choices)
        raise InputError(f"{name} must be one of {listed}; got {value!r}.")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (numpy bools included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputTypeError(
            f"{name} must be True or False; got {value!r} ({type(value).__name__})."
        )
    return bool(value)


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    allow_none: bool = False,
) -> Any:
    """Return ``value`` as ``int`` if it is an integer in ``[minimum, maximum]``."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        what = "an integer or None" if allow_none else "an integer"
        raise InputTypeError(f"{name} must be {what}; got {value!r} ({type(value).__name__}).")
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}; got {value}.")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be an integer <= {maximum}; got {value}.")
    return int(value)


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
    strict_maximum: bool = False,
    allow_none: bool = False,
) -> Any:
    """Return ``value`` as ``float`` if it is a finite real number inside the bounds."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        what = "a number or None" if allow_none else "a number"
        raise InputTypeError(f"{name} must be {what}; got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not np.isfinite(value):
        raise InputError(f"{name} must be a finite number; got {value}.")
    if minimum is not None and (value <= minimum if strict_minimum else value < minimum):
        op = ">" if strict_minimum else ">="
        raise InputError(f"{name} must be {op} {minimum}; got {value}.")
    if maximum is not None and (value >= maximum if strict_maximum else value > maximum):
        op = "<" if strict_maximum else "<="
        raise InputError(f"{name} must be {op} {maximum}; got {value}.")
    return value


def check_array(
    name: str,
    value: Any,
    *,
    ndim: int | tuple[int, ...] | None = None,
    shape_hint: str | None = None,
    finite: bool = True,
    min_rows: int = 0,
    dtype: Any = None,
) -> np.ndarray:
    """``value`` (array-like or torch tensor) as a numeric NumPy array, checked.

    Parameters
    ----------
    name : str
        The argument's name, used in messages.
    value : array-like or torch.Tensor
        Tensors are detached and moved to the CPU.
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.
    shape_hint : str, optional
        The expected shape in words, e.g. ``"(n_samples, n_voxels)"``.
    finite : bool, default=True
        Refuse NaN and infinite values.
    min_rows : int, default=0
        Least length of the first axis.
    dtype : numpy dtype, optional
        Convert to this dtype (a copy only if needed).

    Returns
    -------
    ndarray
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
    if value is None:
        raise InputTypeError(
            f"{name} is None. Expected array-like (array or non-string sequence), got None."
        )
    if hasattr(value, "toarray") and hasattr(value, "nnz"):  # a scipy.sparse matrix or array
        raise InputTypeError(
            f"{name} is a sparse matrix; sparse input is not supported. Convert it with "
            f"{name}.toarray() (it must fit in memory)."
        )
    if isinstance(value, (str, bytes, os.PathLike)):
        raise InputTypeError(
            f"{name} must be an array of numbers; got {type(value).__name__} {value!r}. Load the "
            "file first (numpy.load, or the readers in data_loaders)."
        )
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise InputTypeError(
            f"{name} must be an array of numbers; got {type(value).__name__} that NumPy cannot "
            f"convert ({err}). Ragged lists are not arrays: give equal-length rows."
        ) from None
    if arr.dtype == object:  # numbers held as Python objects convert; anything else is refused
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise InputTypeError(
                f"{name} must hold numbers; it holds other objects ({err}): each entry (argument) "
                "must be a string or a number that converts to float."
            ) from None
    if not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise InputTypeError(f"{name} must hold numbers; got an array of dtype {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise InputError(
            f"{name}: Complex data not supported; give real values (e.g. {name}.real)."
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            hint = f" {shape_hint}" if shape_hint else ""
            dims = " or ".join(f"{d}D" for d in allowed)
            fix = ""
            if arr.ndim == 1 and 2 in allowed:
                fix = (
                    f" Reshape your data: {name}.reshape(-1, 1) for a single feature, "
                    f"{name}.reshape(1, -1) for a single sample."
                )
            raise InputError(f"{name} must be {dims}{hint}; got shape {arr.shape}.{fix}")
    if arr.ndim >= 1 and arr.shape[0] == 0:
        raise InputError(f"{name} is empty (0 samples, shape {arr.shape}); give at least one.")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise InputError(
            f"{name} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    if min_rows and (arr.ndim == 0 or arr.shape[0] < min_rows):
        n = arr.shape[0] if arr.ndim else 0
        raise InputError(
            f"{name} needs at least {min_rows} samples (rows); got n_samples={n} (shape "
            f"{arr.shape})."
        )
    if finite and np.issubdtype(arr.dtype, np.inexact) and not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputError(
            f"{name} contains {bad} NaN or infinite value(s); remove or impute them first."
        )
    return arr


def check_same_length(**arrays: Any) -> int:
    """The common first-axis length of the named arrays; raise if they differ."""
    lengths = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise InputError(
            f"{' and '.join(lengths)} must have the same number of samples (first axis); "
            f"{listed}. Give one row per sample in each."
        )
    return next(iter(lengths.values()), 0)


def check_file(
    name: str, path: Any, *, suffixes: Iterable[str] | None = None, folder: bool = False
) -> Path:
    """``path`` as a :class:`~pathlib.Path` to an existing, non-empty file (or a folder).

    Parameters
    ----------
    name : str
        How the caller named it (``"betas"``, or ``"--betas"`` from the command line).
    path : str or path-like
    suffixes : iterable of str, optional
        Accepted endings (``".nii"``, ``".nii.gz"``); others are refused with the list.
    folder : bool, default=False
        Expect a folder instead of a file.

    Raises
    ------
    InputTypeError
        ``path`` is not a string or path.
    MissingFileError
        Nothing exists at ``path``.
    InputError
        A folder where a file is expected (or the reverse), or a refused suffix.
    UnreadableFileError
        The file is empty.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(
            f"{name} must be a path (str or pathlib.Path); got {type(path).__name__}."
        )
    p = Path(path).expanduser()
    kind = "folder" if folder else "file"
    if not p.exists():
        raise MissingFileError(f"{name}: no such {kind}: {str(p)!r}.")
    if folder != p.is_dir():
        other = "a folder" if p.is_dir() else "a file"
        raise InputError(f"{name} must be a {kind}; {str(p)!r} is {other}.")
    if not folder:
        if suffixes is not None:
            suffixes = list(suffixes)
            if not any(p.name.lower().endswith(s.lower()) for s in suffixes):
                raise InputError(f"{name} must be a {' or '.join(suffixes)} file; got {str(p)!r}.")
        if p.stat().st_size == 0:
            raise UnreadableFileError(
                f"{name}: {str(p)!r} is empty (0 bytes); give the complete file (was it fully "
                "copied or downloaded?)."
            )
    return p


def check_n_features(estimator: Any, X: np.ndarray) -> None:
    """Refuse ``X`` whose column count differs from the one ``estimator`` was fitted with."""
    expected = getattr(estimator, "n_features_in_", None)
    got = X.shape[1] if X.ndim > 1 else 1
    if expected is not None and got != expected:
        raise InputError(
            f"X has {got} features, but {type(estimator).__name__} is expecting {expected} "
            "features as input. Give features computed the same way as for fit."
        )
