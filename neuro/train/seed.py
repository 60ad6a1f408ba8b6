"""Seeding, determinism, and the random state that checkpoints carry."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from data_loaders.errors import InputError

__all__ = ["get_rng_state", "seed_everything", "set_deterministic", "set_rng_state"]


def seed_everything(seed: int, deterministic: bool = False) -> int:
    """Seed Python's, NumPy's and torch's (all devices) random generators.

    Parameters
    ----------
    seed : int
        A non-negative integer below 2**32.
    deterministic : bool, default=False
        Also switch torch to deterministic algorithms (see
        :func:`set_deterministic`): slower, but repeatable on GPU too.

    Returns
    -------
    int
        The seed.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise InputError(f"seed must be an integer in [0, 2**32); got {seed!r}.")
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses started later
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        set_deterministic(True)
    return seed


def set_deterministic(enabled: bool = True) -> None:
    """Make torch pick deterministic algorithms (or stop requiring them).

    On CUDA this also disables cuDNN autotuning and sets the cuBLAS workspace
    variable that deterministic matrix products need. Ops with no
    deterministic implementation warn rather than fail.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled and torch.backends.cudnn.benchmark


def get_rng_state() -> dict[str, Any]:
    """The state of every global random generator, in a form safe to save.

    The result holds only tensors, ints, floats, strings and tuples, so it
    survives ``torch.load(..., weights_only=True)``.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generators from :func:`get_rng_state`'s output."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npst = state["numpy"]
    np.random.set_state(
        (
            npst["kind"],
            npst["keys"].numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
