"""Multi-process runs through Lightning Fabric.

:class:`Runtime` holds one run's device, precision and processes. The
:class:`~neuro.train.Trainer` trains on top of it; models whose learning rule
is not backprop (Hebbian updates, RL rollouts, tensor factorizations) use it
directly for the same device choice, autocast, collectives and rank-0 rules.

Launching
---------
One process (the default) needs nothing. For several GPUs on one machine::

    torchrun --standalone --nproc_per_node=4 -m neuro train-demo --devices 4

For several machines, start the same command on each node with torchrun's
rendezvous flags (``--nnodes``, ``--node_rank``, ``--rdzv_endpoint``) and pass
``--num-nodes``; under SLURM, ``srun`` starts one task per GPU and Fabric reads
the SLURM variables. Without torchrun or SLURM, ``devices > 1`` makes Fabric
start the other processes itself by running the same command again.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import torch

from neuro._validation import check_choice, check_int
from neuro.train.device import resolve_device, resolve_precision

__all__ = ["STRATEGIES", "Runtime", "global_rank", "is_rank_zero", "world_size"]

_log = logging.getLogger(__name__)

#: Accepted ``strategy`` values.
# (ddp_spawn is left out: it needs a function handed to launch(), which the
# Trainer's loop is not; torchrun / SLURM / Fabric's own launcher cover the cases.)
STRATEGIES = ("auto", "ddp", "ddp_find_unused_parameters_true", "single_device")

# Environment variables that carry the process rank under torchrun, Fabric's own
# launcher, SLURM and LSF, in the order Lightning reads them.
_RANK_VARS = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def global_rank() -> int:
    """This process's rank among all processes of the run (0 when alone)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    for var in _RANK_VARS:
        if var in os.environ:
            try:
                return int(os.environ[var])
            except ValueError:
                continue
    return 0


def world_size() -> int:
    """Number of processes in the run (1 when alone)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_rank_zero() -> bool:
    """True on the process that logs and writes files."""
    return global_rank() == 0


class Runtime:
    """Device, precision and process group for one run (a thin layer over Fabric).

    Parameters
    ----------
    device : str or torch.device, default="auto"
        ``"auto"`` picks cuda, then mps, then cpu. ``"cuda:N"`` pins one GPU.
    precision : {"32", "bf16-mixed", "16-mixed"}, default="32"
        Numerical precision; see :func:`neuro.train.device.resolve_precision`.
    devices : int, default=1
        Processes (one per device) on this node.
    num_nodes : int, default=1
        Machines in the run.
    strategy : str, default="auto"
        One of :data:`STRATEGIES`; ``"auto"`` means DDP when more than one
        process is used.

    Examples
    --------
    >>> rt = Runtime(device="cpu").launch()
    >>> rt.world_size, rt.is_global_zero
    (1, True)
    """

    def __init__(
        self,
        device: str | torch.device = "auto",
        precision: str = "32",
        devices: int = 1,
        num_nodes: int = 1,
        strategy: str = "auto",
    ) -> None:
        from lightning_fabric import Fabric

        torch_device = resolve_device(device)
        devices = check_int("devices", devices, minimum=1)
        num_nodes = check_int("num_nodes", num_nodes, minimum=1)
        check_choice("strategy", strategy, STRATEGIES)
        self.precision = resolve_precision(precision, torch_device)
        if strategy == "auto":
            strategy = "ddp" if devices * num_nodes > 1 else "single_device"
        if strategy == "single_device" and devices * num_nodes > 1:
            raise ValueError(
                f"strategy='single_device' runs one process, but devices={devices} and "
                f"num_nodes={num_nodes} ask for {devices * num_nodes}. Use strategy='ddp'."
            )
        if torch_device.type == "cpu":
            accelerator, fabric_devices = "cpu", devices
        elif torch_device.type == "mps":
            if devices * num_nodes > 1:
                raise ValueError(
                    f"device='mps' runs one process on Apple's GPU; devices={devices} and "
                    f"num_nodes={num_nodes} ask for more. Use devices=1."
                )
            accelerator, fabric_devices = "mps", 1
        else:
            accelerator = "cuda"
            # "cuda:N" with one process pins that GPU; several processes take 0..devices-1
            fabric_devices = [torch_device.index] if devices == 1 else devices
        fabric_strategy: Any = strategy
        if strategy == "single_device":
            from lightning_fabric.strategies import SingleDeviceStrategy

            fabric_strategy = SingleDeviceStrategy(device=torch_device)
        self.strategy = strategy
        self.fabric = Fabric(
            accelerator=accelerator,
            devices=fabric_devices,
            num_nodes=num_nodes,
            strategy=fabric_strategy,
            precision=self.precision,
        )
        self._launched = False

    def launch(self) -> Runtime:
        """Start the process group (and, outside torchrun/SLURM, the other processes).

        Calling it again does nothing.
        """
        if not self._launched:
            self.fabric.launch()
            self._launched = True
        return self

    @property
    def device(self) -> torch.device:
        """The device this process computes on."""
        return self.fabric.device

    @property
    def global_rank(self) -> int:
        return self.fabric.global_rank

    @property
    def local_rank(self) -> int:
        return self.fabric.local_rank

    @property
    def world_size(self) -> int:
        return self.fabric.world_size

    @property
    def is_global_zero(self) -> bool:
        return self.fabric.is_global_zero

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast for this run's precision (a no-op in float32)."""
        return self.fabric.autocast()

    def barrier(self) -> None:
        """Wait until every process reaches this point."""
        if self.world_size > 1:
            self.fabric.barrier()

    def all_reduce(self, value: Any, op: str = "mean") -> Any:
        """Sum or average a tensor (or a collection of tensors) across processes."""
        check_choice("op", op, ("mean", "sum"))
        if self.world_size == 1:
            return value
        return self.fabric.all_reduce(value, reduce_op=op)

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        """Send a picklable object from rank ``src`` to every process."""
        if self.world_size == 1:
            return obj
        return self.fabric.broadcast(obj, src=src)

    def to_device(self, obj: Any) -> Any:
        """Move a tensor, module or collection of tensors to :attr:`device`."""
        return self.fabric.to_device(obj)

    @contextlib.contextmanager
    def rank_zero_first(self) -> Iterator[None]:
        """Run the block on rank 0 first (e.g. a download or cache), then on the others."""
        if self.world_size == 1:
            yield
            return
        with self.fabric.rank_zero_first():
            yield

    def __repr__(self) -> str:
        return (
            f"Runtime(device={str(self.device)!r}, precision={self.precision!r}, "
            f"strategy={self.strategy!r}, world_size={self.world_size})"
        )
