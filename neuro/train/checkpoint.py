"""Checkpoints that resume exactly and load safely.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python
values (so it loads with ``weights_only=True``: nothing in it is unpickled as
code). It is written to a temporary file and renamed into place, so a run
killed while saving keeps its previous checkpoint intact.

Contents (all keys optional except ``format``, ``version`` and ``model``)::

    format, version       "neuro-checkpoint", 1
    model_class           "package.module.ClassName" of the model
    model                 the model's state_dict
    optimizer, scheduler  their state_dicts
    rng                   Python / NumPy / torch generator states (seed.get_rng_state)
    config                {"class": "pkg.mod.Name", "values": {...}} for each config dataclass
    trainer               loop position (epoch, step, batch in epoch), history, early-stopping state
    extra                 anything else a caller stores (plain values and tensors)
"""

from __future__ import annotations

import dataclasses
import enum
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from data_loaders.errors import InputError, InputTypeError
from neuro.errors import CheckpointError
from neuro.io import atomic_open

__all__ = [
    "CheckpointError",
    "check_model_state",
    "config_from_dict",
    "config_to_dict",
    "load_checkpoint",
    "make_checkpoint",
    "qualified_name",
    "read_torch_file",
    "restore_checkpoint",
    "save_checkpoint",
    "to_safe",
]

FORMAT = "neuro-checkpoint"
VERSION = 1


def qualified_name(obj: Any) -> str:
    """``"module.ClassName"`` of an object or class."""
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def to_safe(obj: Any, where: str = "value") -> Any:
    """Convert ``obj`` to tensors and plain Python values that load with ``weights_only``.

    Paths become strings, enums their values, NumPy arrays tensors, NumPy
    scalars Python numbers, dataclasses dicts. Anything else raises
    ``TypeError`` naming where it was found.
    """
    if obj is None or isinstance(obj, (bool, int, float, str, bytes, torch.Tensor)):
        return obj
    if isinstance(obj, torch.device | torch.dtype):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, enum.Enum):
        return to_safe(obj.value, where)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return config_to_dict(obj)
    if isinstance(obj, Mapping):
        return {
            str(k) if not isinstance(k, int) else k: to_safe(v, f"{where}[{k!r}]")
            for k, v in obj.items()
        }
    if isinstance(obj, tuple):
        return tuple(to_safe(v, f"{where}[{i}]") for i, v in enumerate(obj))
    if isinstance(obj, (list, set, frozenset)):
        return [to_safe(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise InputTypeError(
        f"{where} holds a {type(obj).__name__}, which cannot be stored in a checkpoint that "
        "loads with weights_only=True. Store tensors, numbers, strings, lists or dicts instead."
    )


def config_to_dict(config: Any) -> dict[str, Any]:
    """``{"class": qualified name, "values": fields}`` for a config dataclass."""
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        raise InputTypeError(f"config must be a dataclass instance; got {type(config).__name__}.")
    values = {
        f.name: to_safe(getattr(config, f.name), f"config.{f.name}")
        for f in dataclasses.fields(config)
    }
    return {"class": qualified_name(config), "values": values}


def config_from_dict(cls: type, stored: Mapping[str, Any], strict: bool = True) -> Any:
    """Rebuild a config dataclass of type ``cls`` from :func:`config_to_dict`'s output.

    With ``strict=True`` a stored class name other than ``cls``'s raises
    :class:`CheckpointError`. Stored fields the class no longer has are
    dropped; fields the checkpoint lacks keep their defaults.
    """
    if strict and stored.get("class") != qualified_name(cls):
        raise CheckpointError(
            f"The checkpoint's config is a {stored.get('class')!r}, not a {qualified_name(cls)!r}."
        )
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in stored.get("values", {}).items() if k in names}
    return cls(**values)


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically and return the path.

    ``state`` must hold a ``"model"`` state_dict; ``format`` and ``version``
    are added. Values are passed through :func:`to_safe` first, so a
    checkpoint never needs pickle to load. Call it on one process only (the
    Trainer does so on rank 0).
    """
    if "model" not in state:
        raise InputError("state must contain a 'model' entry (the model's state_dict).")
    payload = {"format": FORMAT, "version": VERSION}
    payload.update(to_safe(dict(state), "state"))
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        torch.save(payload, fh)
    return path


def read_torch_file(
    path: str | os.PathLike,
    map_location: Any = "cpu",
    *,
    what: str = "checkpoint",
    fix: str = "Resume from an earlier checkpoint or start again.",
) -> Any:
    """Read a file written by ``torch.save`` with ``weights_only=True``, checking it first.

    The one safe reader behind :func:`load_checkpoint` and every model's
    ``load``: the archive's checksums are verified (``torch.load`` does not),
    and nothing in the file is unpickled as code.

    Parameters
    ----------
    path : str or path-like
    map_location : optional
        Passed to ``torch.load``.
    what : str, default="checkpoint"
        What the file should be, for messages ("saved model", ...).
    fix : str
        The sentence that tells the user what to do about a damaged file.

    Raises
    ------
    CheckpointError
        The file is missing, empty, truncated, corrupt, of another format, or
        holds pickled code. The message names the file and what to do.
    """
    path = Path(path)
    if not path.is_file():
        hint = " (it is a folder)" if path.is_dir() else ""
        raise CheckpointError(
            f"No {what} at {str(path)!r}: the file does not exist{hint}. Check the path."
        )
    if path.stat().st_size == 0:
        raise CheckpointError(f"The {what} {str(path)!r} is empty (0 bytes). {fix}")
    if not zipfile.is_zipfile(path):
        # torch.save writes zip archives; anything else is cut short or not ours
        raise CheckpointError(
            f"The {what} {str(path)!r} is truncated or corrupt, or of another format (it is not a "
            f"complete archive written by torch.save). {fix}"
        )
    names: list[str] = []
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()  # torch.load does not check the CRCs
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        damaged = f"({err})"
    if damaged is not None:
        raise CheckpointError(
            f"The {what} {str(path)!r} is corrupt: its entry {damaged} fails the archive's "
            f"checksum. {fix}"
        )
    if not any(n.endswith("/data.pkl") for n in names):
        raise CheckpointError(
            f"{str(path)!r} is a zip archive but not a {what} (it was not written by torch.save; "
            f"an .npz or another program's file?). {fix}"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        detail = next(
            (
                ln.strip()
                for ln in str(err).splitlines()
                if "Unsupported" in ln or "global" in ln.lower()
            ),
            "objects other than tensors and plain values",
        )
        raise CheckpointError(
            f"{str(path)!r} holds objects that cannot be loaded safely ({detail}). neuro loads "
            f"files with weights_only=True and never unpickles code; this is not a neuro {what}."
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as err:
        first = str(err).splitlines()[0] if str(err) else "no detail"
        raise CheckpointError(
            f"The {what} {str(path)!r} is truncated or corrupt and cannot be read "
            f"({type(err).__name__}: {first}). {fix}"
        ) from None


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``.

    Raises
    ------
    CheckpointError
        The file is missing, empty, truncated, corrupt, holds pickled code, or
        is not a neuro checkpoint. The message names the file and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"No checkpoint at {str(path)!r}: the file does not exist. Check the path, or "
            "start without resume to train from scratch."
        )
    state = read_torch_file(path, map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is a torch file but not a neuro checkpoint (no format={FORMAT!r} "
            "entry). Use neuro.train.save_checkpoint, or load plain state_dicts with torch.load."
        )
    if state.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{str(path)!r} was written by a newer neuro (checkpoint version {state['version']}, "
            f"this one reads up to {VERSION}). Upgrade neuro to load it."
        )
    return state


def check_model_state(
    model: nn.Module, checkpoint: Mapping[str, Any], source: str = "checkpoint"
) -> None:
    """Raise :class:`CheckpointError` unless ``checkpoint["model"]`` fits ``model`` exactly.

    Compares the model class, parameter and buffer names, and shapes, and
    reports the first differences.
    """
    stored_cls = checkpoint.get("model_class")
    if stored_cls is not None and stored_cls != qualified_name(model):
        raise CheckpointError(
            f"The {source} was written by a {stored_cls}, but the model given is a "
            f"{qualified_name(model)}. Load it into the same kind of model."
        )
    stored = checkpoint["model"]
    current = model.state_dict()
    missing = [k for k in current if k not in stored]
    unexpected = [k for k in stored if k not in current]
    shapes = [
        f"{k}: checkpoint {tuple(stored[k].shape)} vs model {tuple(v.shape)}"
        for k, v in current.items()
        if k in stored and isinstance(v, torch.Tensor) and tuple(stored[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing from the checkpoint: {', '.join(missing[:5])}")
        if unexpected:
            parts.append(f"not in the model: {', '.join(unexpected[:5])}")
        if shapes:
            parts.append(f"different shapes: {'; '.join(shapes[:5])}")
        raise CheckpointError(
            f"The {source} does not match this model ({'; '.join(parts)}). It was written for a "
            "model of another architecture or size; build the model with the settings it was "
            "trained with."
        )


def make_checkpoint(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    configs: Mapping[str, Any] | None = None,
    rng: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """Gather everything needed to resume into one dict for :func:`save_checkpoint`.

    For loops other than the Trainer's (Hebbian updates, RL rollouts): save
    ``make_checkpoint(model, configs={"run": cfg}, rng=True, step=step)`` and
    resume with :func:`restore_checkpoint`.

    Parameters
    ----------
    model : nn.Module
    optimizer, scheduler : optional
        Saved through their ``state_dict()``.
    configs : mapping of str to dataclass, optional
        Config dataclasses of the run, saved as plain dicts.
    rng : bool, default=True
        Save the Python, NumPy and torch generator states.
    **extra
        Further plain values or tensors, stored under ``"extra"``.
    """
    from neuro.train.seed import get_rng_state

    state: dict[str, Any] = {
        "model_class": qualified_name(model),
        "model": {
            k: v.detach().cpu() if isinstance(v, torch.Tensor) else v
            for k, v in model.state_dict().items()
        },
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    if configs:
        state["config"] = {name: config_to_dict(cfg) for name, cfg in configs.items()}
    if rng:
        state["rng"] = get_rng_state()
    if extra:
        state["extra"] = dict(extra)
    return state


def restore_checkpoint(
    checkpoint: Mapping[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    rng: bool = True,
    source: str = "checkpoint",
) -> Mapping[str, Any]:
    """Load a checkpoint dict (from :func:`load_checkpoint`) into live objects.

    The model is checked with :func:`check_model_state` first, so a checkpoint
    of another model raises :class:`CheckpointError` before anything changes.
    Returns the checkpoint's ``"extra"`` entry (empty if none).
    """
    from neuro.train.seed import set_rng_state

    check_model_state(model, checkpoint, source)
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is not None and name not in checkpoint:
            raise CheckpointError(f"The {source} holds no {name} state to restore.")
    model.load_state_dict(checkpoint["model"])
    if optimizer is not None:
        try:
            optimizer.load_state_dict(checkpoint["optimizer"])
        except (ValueError, KeyError) as err:
            raise CheckpointError(
                f"The {source}'s optimizer state does not fit this optimizer ({err}). Resume with "
                "the optimizer the run was started with."
            ) from None
    if scheduler is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
    if rng and "rng" in checkpoint:
        set_rng_state(checkpoint["rng"])
    return checkpoint.get("extra", {})
