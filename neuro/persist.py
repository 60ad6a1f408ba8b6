"""Saving and loading fitted models: one file format for every model in neuro.

A saved model is one ``torch.save`` archive holding only tensors and plain
Python values, written atomically (temporary file, then rename) and read back
with ``weights_only=True`` after its checksums are verified, so loading never
runs code from the file::

    format, version     "neuro-model", 1 (a newer version is refused with a clear message)
    class               "neuro.encoders.ridge.VoxelRidgeCV": load with that class
    neuro_version       the version of neuro that wrote it
    params              the estimator's constructor arguments (get_params(deep=False))
    params_not_saved    names of arguments that cannot be stored (a scikit-learn
                        splitter given as cv, say); they come back as their defaults
    state               the fitted state (attributes ending in ``_``, or what the
                        estimator's ``_fitted_state`` returns)

NumPy arrays are stored as tensors with a marker and come back as NumPy arrays
of the same dtype, so a loaded model predicts exactly what the saved one did.
Estimators get :meth:`~neuro.base.NeuroEstimator.save` and ``load`` from
:class:`~neuro.base.NeuroEstimator`; the functions here are the layer beneath.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuro.io import atomic_open, check_overwrite
from neuro.train.checkpoint import CheckpointError, qualified_name, read_torch_file

__all__ = ["FORMAT", "VERSION", "decode_state", "encode_state", "load_model", "save_model"]

FORMAT = "neuro-model"
VERSION = 1
# markers of values that torch.save cannot hold as they are
_ARRAY = "__ndarray__"
_ARRAY_LIST = "__ndarray_list__"
_TUPLE = "__tuple__"
_SCALAR = "__npscalar__"


def encode_state(value: Any, where: str = "state") -> Any:
    """``value`` as tensors and plain values that load with ``weights_only=True``.

    NumPy arrays and scalars are marked so that :func:`decode_state` gives them
    back as NumPy values of the same dtype; dataclasses become dicts of their
    fields. Anything else raises ``TypeError`` naming ``where`` it was found:
    an estimator holding such a value overrides ``_fitted_state``.
    """
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, np.ndarray):
        arr = value.copy(order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
        if not arr.dtype.isnative:  # torch holds native byte order only
            arr = arr.astype(arr.dtype.newbyteorder("="))
        try:
            return {_ARRAY: torch.from_numpy(arr)}
        except TypeError:  # dtypes torch does not hold (strings, ...)
            if arr.dtype.kind in "USb?iuf":
                return {_ARRAY_LIST: arr.tolist(), "dtype": arr.dtype.str, "shape": list(arr.shape)}
            raise TypeError(
                f"{where} is an array of dtype {arr.dtype}, which cannot be saved."
            ) from None
    if isinstance(value, np.generic):
        return {_SCALAR: encode_state(np.asarray(value), where)}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: encode_state(getattr(value, f.name), f"{where}.{f.name}")
            for f in dataclasses.fields(value)
        }
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where} has a key {k!r}; only str and int keys can be saved.")
            out[k] = encode_state(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, tuple):
        return {_TUPLE: [encode_state(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode_state(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(
        f"{where} holds a {type(value).__name__}, which a saved model cannot hold (it loads "
        "with weights_only=True). Store arrays, tensors, numbers, strings, lists or dicts."
    )


def decode_state(value: Any) -> Any:
    """Invert :func:`encode_state`."""
    if isinstance(value, dict):
        if _ARRAY in value:
            return value[_ARRAY].numpy()
        if _ARRAY_LIST in value:
            return np.asarray(value[_ARRAY_LIST], dtype=np.dtype(value["dtype"])).reshape(
                value["shape"]
            )
        if _SCALAR in value:
            return decode_state(value[_SCALAR])[()]
        if _TUPLE in value:
            return tuple(decode_state(v) for v in value[_TUPLE])
        return {k: decode_state(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_state(v) for v in value]
    return value


def save_model(
    path: str | os.PathLike,
    cls: type | object,
    params: dict[str, Any],
    state: dict[str, Any],
    *,
    overwrite: bool = False,
) -> Path:
    """Write a model's class, constructor arguments and fitted state to ``path``.

    Parameters
    ----------
    path : str or path-like
        The file to write (any name; ``.pt`` is customary). Parents are created.
    cls : type or instance
        The model's class (its qualified name is stored and checked on load).
    params : dict
        Constructor arguments. Those that cannot be stored are left out and
        listed in the file as ``params_not_saved``.
    state : dict
        The fitted state, encoded with :func:`encode_state`.
    overwrite : bool, default=False
        Replace an existing file; otherwise it is refused.

    Returns
    -------
    Path
    """
    from neuro import __version__

    path = check_overwrite(path, overwrite, what="model file")
    stored, skipped = {}, []
    for key, value in params.items():
        try:
            stored[key] = encode_state(value, f"params[{key!r}]")
        except TypeError:
            skipped.append(key)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "class": qualified_name(cls),
        "neuro_version": __version__,
        "params": stored,
        "params_not_saved": skipped,
        "state": encode_state(state, "state"),
    }
    with atomic_open(path, "wb") as fh:
        torch.save(payload, fh)
    return path


def load_model(path: str | os.PathLike, cls: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a file written by :func:`save_model` for a model of class ``cls``.

    Returns
    -------
    params : dict
        The stored constructor arguments.
    state : dict
        The decoded fitted state.

    Raises
    ------
    CheckpointError
        Missing, empty, truncated, corrupt or foreign file; a model of another
        class; a file written by a newer neuro. One line, naming the fix.
    """
    name = cls.__name__
    payload = read_torch_file(
        path, what=f"saved {name}", fix=f"Save the model again with {name}.save()."
    )
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        detail = f" (its format is {found!r})" if found else ""
        raise CheckpointError(
            f"{str(path)!r} is not a model saved by neuro{detail}. Load files written by "
            f"{name}.save(); a training checkpoint loads with neuro.train.load_checkpoint."
        )
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{str(path)!r} was saved by a newer neuro ({payload.get('neuro_version')}, model "
            f"format {payload['version']}; this one reads up to {VERSION}). Upgrade neuro to load it."
        )
    if payload.get("class") != qualified_name(cls):
        stored = str(payload.get("class"))
        raise CheckpointError(
            f"{str(path)!r} holds a {stored.rsplit('.', 1)[-1]} ({stored}), not a {name}; load "
            f"it with {stored.rsplit('.', 1)[-1]}.load()."
        )
    return decode_state(payload["params"]), decode_state(payload["state"])
