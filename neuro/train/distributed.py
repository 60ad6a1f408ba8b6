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
the SLURM variables (LSF's ``jsrun`` works too, and so does Lightning's own
convention: the same command on every node with ``NODE_RANK``, ``MASTER_ADDR``
and ``MASTER_PORT`` set). Without torchrun or SLURM, ``devices > 1`` makes Fabric
start the other processes itself by running the same command again; that
cannot reach other machines, so ``num_nodes > 1`` without a launcher fails at
once (see :func:`check_launcher`) instead of waiting for nodes that never come.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import torch

from data_loaders.errors import InputError
from neuro._validation import check_choice, check_int
from neuro.train.device import resolve_device, resolve_precision

__all__ = [
    "STRATEGIES",
    "Runtime",
    "check_launcher",
    "global_rank",
    "is_rank_zero",
    "world_size",
]

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


def _multi_node_launcher() -> str | None:
    """The launcher that started this process on several nodes, or None.

    The same environments Lightning Fabric recognises: torchrun (torchelastic),
    SLURM's ``srun`` (not an interactive ``salloc`` shell, whose job is named
    ``bash`` or ``interactive``), LSF's ``jsrun``, and Lightning's manual
    convention (``NODE_RANK`` set on every node).
    """
    env = os.environ
    if "TORCHELASTIC_RUN_ID" in env:
        return "torchrun"
    if "SLURM_NTASKS" in env and env.get("SLURM_JOB_NAME") not in ("bash", "interactive"):
        return "srun"
    if {"LSB_JOBID", "LSB_DJOB_RANKFILE", "JSM_NAMESPACE_LOCAL_RANK", "JSM_NAMESPACE_SIZE"} <= set(
        env
    ):
        return "jsrun"
    if "NODE_RANK" in env:
        return "NODE_RANK"
    return None


def check_launcher(num_nodes: int, devices: int = 1) -> None:
    """Fail at once when ``num_nodes > 1`` but nothing started processes on the other nodes.

    Without a multi-node launcher, the processes of this node would wait
    forever for the other nodes to join.

    Parameters
    ----------
    num_nodes : int
        Machines the run asks for.
    devices : int, default=1
        Processes per node (used in the message's example command).

    Raises
    ------
    InputError
        ``num_nodes > 1`` and no torchrun, SLURM ``srun``, LSF ``jsrun`` or
        ``NODE_RANK`` environment is found; the one-line message says how to
        launch.
    """
    if num_nodes > 1 and _multi_node_launcher() is None:
        raise InputError(
            f"num_nodes={num_nodes} needs a launcher that starts the processes on every node, and "
            "none was found (no torchrun, SLURM srun or LSF jsrun environment): start the same "
            f"command on each node with `torchrun --nnodes {num_nodes} --nproc_per_node {devices} "
            "--node_rank <0..> --rdzv_endpoint <host:port> ...`, or under SLURM with "
            f"`srun --nodes {num_nodes} --ntasks-per-node {devices} ...`; or set num_nodes=1."
        )


def _distributed_initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


_EXIT_HOOK: list[bool] = []


def _destroy_process_group() -> None:
    """Tear the process group down while the interpreter is whole (an ``atexit`` hook)."""
    if _distributed_initialized():
        try:
            torch.distributed.destroy_process_group()
        except Exception as err:  # a peer gone first: nothing left to tear down cleanly
            _log.debug("destroy_process_group at exit failed: %s", err)


def _destroy_at_exit() -> None:
    """Destroy the process group this process started when Python exits.

    Left to interpreter finalization, gloo's worker threads can still hold
    tensors of finished collectives; freeing them then needs the GIL of an
    interpreter that is being torn down, and the process dies with SIGABRT
    ("terminate called without an active exception") after its work is done
    (pytorch/pytorch#190489). ``destroy_process_group`` from an ``atexit``
    hook runs while the interpreter is still alive. Registered once.
    """
    if not _EXIT_HOOK:
        atexit.register(_destroy_process_group)
        _EXIT_HOOK.append(True)


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
        Machines in the run. More than one needs a multi-node launcher
        (torchrun, ``srun``); without one, :class:`~neuro.errors.InputError`
        is raised at once (see :func:`check_launcher`).
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
        check_launcher(num_nodes, devices)
        self.precision = resolve_precision(precision, torch_device)
        if strategy == "auto":
            strategy = "ddp" if devices * num_nodes > 1 else "single_device"
        if strategy == "single_device" and devices * num_nodes > 1:
            raise InputError(
                f"strategy='single_device' runs one process, but devices={devices} and "
                f"num_nodes={num_nodes} ask for {devices * num_nodes}. Use strategy='ddp'."
            )
        if torch_device.type == "cpu":
            accelerator, fabric_devices = "cpu", devices
        elif torch_device.type == "mps":
            if devices * num_nodes > 1:
                raise InputError(
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
        # One process without loss scaling: Fabric's backward and optimizer step would run
        # plain loss.backward() and optimizer.step() after a few checks, which cost a
        # small model a noticeable share of each step. (Fabric callbacks, which some
        # packages register through entry points, keep Fabric's step.)
        self._direct = (
            self.strategy == "single_device"
            and self.precision != "16-mixed"
            and not getattr(self.fabric, "_callbacks", True)
        )

    def launch(self) -> Runtime:
        """Start the process group (and, outside torchrun/SLURM, the other processes).

        Calling it again does nothing.
        """
        if not self._launched:
            owned = not _distributed_initialized()
            self.fabric.launch()
            self._launched = True
            if owned and _distributed_initialized():
                _destroy_at_exit()
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

    def backward(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` as ``fabric.backward`` does (loss scaling in 16-mixed, DDP).

        With one process and no loss scaling, that is ``loss.backward()``,
        called directly (Fabric's wrapper only adds checks, which a small
        model pays for at every step).

        Parameters
        ----------
        loss : torch.Tensor
            A scalar that depends on the parameters.
        """
        if self._direct:
            loss.backward()
        else:
            self.fabric.backward(loss)

    def optimizer_step(self, optimizer: Any) -> None:
        """Take one step of an optimizer set up with ``fabric.setup``, as its ``step()`` does.

        With one process and no loss scaling, the wrapped optimizer's
        ``step()`` is called directly.

        Parameters
        ----------
        optimizer : Optimizer
            The optimizer ``fabric.setup`` returned (a plain one works too).
        """
        if self._direct:
            getattr(optimizer, "optimizer", optimizer).step()
        else:
            optimizer.step()

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

    def gather_object(self, obj: Any, dst: int = 0) -> list[Any] | None:
        """Collect a picklable object from every process on rank ``dst``.

        Every process must call it (it is a collective).

        Parameters
        ----------
        obj : picklable
            This process's contribution.
        dst : int, default=0
            The rank that receives the list.

        Returns
        -------
        list or None
            The objects in rank order on ``dst`` (``[obj]`` when alone); None
            on the other processes.
        """
        if self.world_size == 1:
            return [obj]
        gathered: list[Any] | None = [None] * self.world_size if self.global_rank == dst else None
        torch.distributed.gather_object(obj, gathered, dst=dst)
        return gathered

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
