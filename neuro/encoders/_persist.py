"""Saving fitted closed-form encoders as plain ``.npz`` files (no pickle)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FORMAT = "neuro.fitted-estimator/1"


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    json.dumps(value)  # raises TypeError for anything else JSON cannot hold
    return value


def save_fitted(estimator, path, overwrite: bool = False) -> Path:
    """Write an estimator's settings and fitted arrays to ``path`` (``.npz``), atomically.

    Settings JSON cannot hold (a scikit-learn splitter given as ``cv``, say)
    are left out and come back as their defaults. Fitted attributes (names
    ending in ``_``) that are arrays, numbers or lists of arrays are stored.
    """
    from neuro.io import atomic_open

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    params, skipped = {}, []
    for key, value in estimator.get_params(deep=False).items():
        try:
            params[key] = _jsonable(value)
        except TypeError:
            skipped.append(key)
    arrays: dict[str, np.ndarray] = {}
    lists: dict[str, int] = {}
    for key, value in vars(estimator).items():
        if not key.endswith("_") or key.startswith("_"):
            continue
        if isinstance(value, list) and all(isinstance(v, np.ndarray) for v in value):
            lists[key] = len(value)
            for i, v in enumerate(value):
                arrays[f"{key}__{i}"] = v
        elif isinstance(value, (np.ndarray, int, float, np.number)):
            arrays[key] = np.asarray(value)
    meta = {
        "format": FORMAT,
        "class": type(estimator).__name__,
        "params": params,
        "params_not_saved": skipped,
        "lists": lists,
    }
    with atomic_open(path, "wb") as fh:
        np.savez(fh, __meta__=np.asarray(json.dumps(meta)), **arrays)
    return path


def load_fitted(cls, path):
    """An estimator of class ``cls`` from a file written by :func:`save_fitted`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected one written by save()).")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"]))
            stored = {k: data[k] for k in data.files if k != "__meta__"}
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path} is not a file written by {cls.__name__}.save() ({exc}).") from exc
    if meta.get("format") != FORMAT or meta.get("class") != cls.__name__:
        raise ValueError(
            f"{path} holds a {meta.get('class')!r}, not a {cls.__name__}; load it with that class."
        )
    est = cls(**meta["params"])
    for key, count in meta["lists"].items():
        setattr(est, key, [stored.pop(f"{key}__{i}") for i in range(count)])
    for key, value in stored.items():
        setattr(est, key, value.item() if value.ndim == 0 else value)
    return est
