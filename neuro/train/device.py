"""Choosing a device and a numerical precision.

``device="auto"`` picks CUDA, then Apple's MPS, then the CPU. ``precision``
is one of ``"32"`` (full float32), ``"bf16-mixed"`` (bfloat16 autocast; works on
CPU and GPU) or ``"16-mixed"`` (float16 autocast with loss scaling; CUDA only).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch

from data_loaders.errors import InputError, InputTypeError

__all__ = ["PRECISIONS", "autocast", "resolve_device", "resolve_precision"]

_log = logging.getLogger(__name__)

#: Accepted ``precision`` values and the Lightning Fabric name each maps to.
PRECISIONS = {
    "32": "32-true",
    "32-true": "32-true",
    "bf16-mixed": "bf16-mixed",
    "16-mixed": "16-mixed",
}


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn a device request into a :class:`torch.device` that exists here.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"} or torch.device, default="auto"
        ``"auto"`` (or None) picks ``cuda`` if available, then ``mps``, then ``cpu``.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        The name is not a device, or names one this machine does not have.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise InputTypeError(
            f"device must be a string such as 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'; "
            f"got {device!r} ({type(device).__name__})."
        )
    try:
        dev = torch.device(device.strip().lower() if isinstance(device, str) else device)
    except (RuntimeError, ValueError):
        raise InputError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; got {device!r}."
        ) from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                f"device={str(device)!r} was asked for but no CUDA GPU is available here "
                "(torch.cuda.is_available() is False). Use device='auto' or 'cpu', or install "
                "a CUDA build of torch (see the README)."
            )
        index = 0 if dev.index is None else dev.index
        if index >= torch.cuda.device_count():
            raise InputError(
                f"device={str(device)!r} names GPU {index}, but only "
                f"{torch.cuda.device_count()} GPU(s) are visible."
            )
        return torch.device("cuda", index)
    if dev.type == "mps":
        if not _mps_available():
            raise InputError(
                f"device={str(device)!r} was asked for but Apple's MPS backend is not "
                "available here. Use device='auto' or 'cpu'."
            )
        return torch.device("mps")
    raise InputError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; got {device!r}.")


def resolve_precision(precision: str | int, device: torch.device) -> str:
    """Validate ``precision`` and return the Lightning Fabric name for it.

    ``"16-mixed"`` needs CUDA; on another device it falls back to
    ``"bf16-mixed"`` with a warning, so one config runs on a laptop and a cluster.

    Raises
    ------
    ValueError
        ``precision`` is not one of :data:`PRECISIONS`.
    """
    key = str(precision)
    if key not in PRECISIONS:
        raise InputError(
            f"precision must be one of '32', 'bf16-mixed' or '16-mixed'; got {precision!r}."
        )
    name = PRECISIONS[key]
    if name == "16-mixed" and device.type != "cuda":
        _log.warning(
            "precision='16-mixed' needs a CUDA device; using 'bf16-mixed' on %s instead.",
            device.type,
        )
        name = "bf16-mixed"
    return name


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """Autocast context for ``precision`` on ``device``, for code outside the Trainer.

    ``"32"`` is a no-op; ``"bf16-mixed"`` and ``"16-mixed"`` run eligible ops
    in bfloat16 / float16.
    """
    name = resolve_precision(precision, device)
    if name == "32-true":
        yield
        return
    dtype = torch.bfloat16 if name == "bf16-mixed" else torch.float16
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield
