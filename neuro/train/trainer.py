"""The training loop every gradient-trained model in neuro uses.

A model is any :class:`torch.nn.Module` with

* ``training_step(batch) -> loss`` or ``-> {"loss": loss, "other": value, ...}``
* optionally ``validation_step(batch) -> {"name": value, ...}`` (or a loss tensor)
* optionally ``configure_optimizers() -> optimizer`` or ``(optimizer, scheduler)``
  (a scheduler is stepped after every optimizer step; a ``ReduceLROnPlateau``
  once per epoch with a validation or training metric, see :class:`Trainer`)

and the :class:`Trainer` runs it on one CPU, one GPU, several GPUs or several
nodes (through Lightning Fabric, see :mod:`neuro.train.distributed`), with
mixed precision, gradient accumulation and clipping, early stopping,
callbacks, a progress bar, a metrics history and checkpoints that resume
exactly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    IterableDataset,
    Sampler,
    TensorDataset,
)

from data_loaders.errors import InputError, InputKeyError, InputTypeError
from neuro._validation import check_choice, check_float, check_int
from neuro.io import atomic_write_json, atomic_write_text, prepare_output_dir
from neuro.train.checkpoint import (
    CheckpointError,
    config_to_dict,
    load_checkpoint,
    make_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from neuro.train.device import PRECISIONS
from neuro.train.distributed import STRATEGIES, Runtime, global_rank
from neuro.train.progress import get_logger, progress
from neuro.train.seed import get_rng_state, seed_everything, set_rng_state

__all__ = ["Callback", "Trainer", "TrainerConfig", "cosine_with_warmup"]

_log = get_logger(__name__)

# Optimizer steps between reads of the training loss (each read waits for the device).
_SYNC_EVERY = 10


@dataclass
class TrainerConfig:
    """Settings of one training run; saved inside every checkpoint.

    Parameters
    ----------
    max_epochs : int, default=10
        Passes over the training data.
    max_steps : int or None, default=None
        Stop after this many optimizer steps, whatever the epoch. A run
        stopped inside an epoch (by ``max_steps`` or a callback) saves its exact
        position; resuming it with the same settings continues the epoch.
        (Raising ``max_steps`` or ``max_epochs`` on resume is allowed but changes
        the default cosine schedule, so it is no longer the same run.)
    batch_size : int, default=32
        Samples per process per forward pass. One optimizer step sees
        ``batch_size * world_size * grad_accum_steps`` samples.
    val_batch_size : int or None, default=None
        Batch size for validation; None uses ``batch_size``.
    lr : float, default=1e-3
        Peak learning rate of the default AdamW optimizer.
    weight_decay : float, default=0.01
        AdamW weight decay, applied to weight matrices (parameters with two
        or more dimensions), not to biases or norm scales.
    warmup_steps : int or None, default=None
        Linear warm-up steps of the default cosine schedule; None means 5%
        of the total steps.
    min_lr_ratio : float, default=0.0
        Learning rate at the end of the cosine, as a fraction of ``lr``.
    grad_accum_steps : int, default=1
        Micro-batches whose gradients are summed before one optimizer step.
    grad_clip_norm : float or None, default=None
        Clip the global gradient norm to this value before each step.
    early_stopping_metric : str or None, default=None
        Validation metric to watch, named as in the history (e.g.
        ``"val_loss"``); None disables early stopping.
    early_stopping_mode : {"min", "max"}, default="min"
        Whether lower or higher is better.
    early_stopping_patience : int, default=5
        Validations without improvement before stopping.
    early_stopping_min_delta : float, default=0.0
        Smallest change that counts as an improvement.
    restore_best : bool, default=True
        With early stopping on, end with the weights of the best validation.
    val_every_n_epochs : int, default=1
        Validate every this many epochs (and after the last).
    checkpoint_every_n_steps : int or None, default=None
        Also save ``last.pt`` every this many optimizer steps (a checkpoint is
        always written at the end of each epoch when ``out_dir`` is set).
    shuffle : bool, default=True
        Reshuffle training samples each epoch (seeded by ``seed + epoch``).
    drop_last : bool, default=False
        Drop the last incomplete training batch.
    num_workers : int, default=0
        DataLoader worker processes.
    seed : int, default=0
        Seed for initial generator states and the data order.
    deterministic : bool, default=False
        Use deterministic torch algorithms.
    device : str, default="auto"
        "auto", "cpu", "cuda", "cuda:N" or "mps".
    precision : {"32", "bf16-mixed", "16-mixed"}, default="32"
    devices : int, default=1
        Processes (devices) per node.
    num_nodes : int, default=1
        Machines in the run; more than one needs a launcher (torchrun,
        SLURM ``srun``) on every node, see :mod:`neuro.train.distributed`.
    strategy : str, default="auto"
        See :data:`neuro.train.distributed.STRATEGIES`.
    compile : bool, default=False
        Compile the model's ``training_step`` (the forward pass and the loss,
        where the work of most models is) with ``torch.compile``. Where
        compilation is not available or fails, training runs eagerly, with
        one warning; no process-wide compiler setting is changed. Validation
        runs eagerly.
    verbose : int, default=1
        0: silent; 1: progress bars and one log line per epoch.
    """

    max_epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 32
    val_batch_size: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int | None = None
    min_lr_ratio: float = 0.0
    grad_accum_steps: int = 1
    grad_clip_norm: float | None = None
    early_stopping_metric: str | None = None
    early_stopping_mode: str = "min"
    early_stopping_patience: int = 5
    early_stopping_min_delta: float = 0.0
    restore_best: bool = True
    val_every_n_epochs: int = 1
    checkpoint_every_n_steps: int | None = None
    shuffle: bool = True
    drop_last: bool = False
    num_workers: int = 0
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    precision: str = "32"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    compile: bool = False
    verbose: int = 1

    def __post_init__(self) -> None:
        self.max_epochs = check_int("max_epochs", self.max_epochs, minimum=1)
        self.max_steps = check_int("max_steps", self.max_steps, minimum=1, allow_none=True)
        self.batch_size = check_int("batch_size", self.batch_size, minimum=1)
        self.val_batch_size = check_int(
            "val_batch_size", self.val_batch_size, minimum=1, allow_none=True
        )
        check_float("lr", self.lr, minimum=0.0, strict_minimum=True)
        check_float("weight_decay", self.weight_decay, minimum=0.0)
        self.warmup_steps = check_int("warmup_steps", self.warmup_steps, minimum=0, allow_none=True)
        check_float("min_lr_ratio", self.min_lr_ratio, minimum=0.0, maximum=1.0)
        self.grad_accum_steps = check_int("grad_accum_steps", self.grad_accum_steps, minimum=1)
        check_float(
            "grad_clip_norm", self.grad_clip_norm, minimum=0.0, strict_minimum=True, allow_none=True
        )
        check_choice("early_stopping_mode", self.early_stopping_mode, ("min", "max"))
        self.early_stopping_patience = check_int(
            "early_stopping_patience", self.early_stopping_patience, minimum=1
        )
        check_float("early_stopping_min_delta", self.early_stopping_min_delta, minimum=0.0)
        self.val_every_n_epochs = check_int(
            "val_every_n_epochs", self.val_every_n_epochs, minimum=1
        )
        self.checkpoint_every_n_steps = check_int(
            "checkpoint_every_n_steps", self.checkpoint_every_n_steps, minimum=1, allow_none=True
        )
        self.num_workers = check_int("num_workers", self.num_workers, minimum=0)
        self.seed = check_int("seed", self.seed, minimum=0)
        check_choice("precision", str(self.precision), PRECISIONS)
        self.precision = str(self.precision)
        self.devices = check_int("devices", self.devices, minimum=1)
        self.num_nodes = check_int("num_nodes", self.num_nodes, minimum=1)
        check_choice("strategy", self.strategy, STRATEGIES)
        self.verbose = check_int("verbose", self.verbose, minimum=0)


class Callback:
    """Hooks into the :class:`Trainer`'s loop; override the ones you need.

    A callback may set ``trainer.should_stop = True`` to end training after
    the current step or epoch.
    """

    def on_fit_start(self, trainer: Trainer) -> None:
        """Called once, after set-up (and after a resume has been restored)."""

    def on_step_end(self, trainer: Trainer, step: int, metrics: Mapping[str, float]) -> None:
        """Called after each optimizer step; ``metrics`` hold that step's training values.

        Only callbacks that override this hook are called per step (and only
        they make the loop read the loss from the device every step).
        """

    def on_before_optimizer_step(self, trainer: Trainer) -> None:
        """Called after the backward pass of each step, before clipping and the optimizer step.

        The gradients are in the parameters' ``.grad`` (averaged over
        processes in a multi-process run), so a callback may change them
        there: e.g. project them away from a subspace (continual learning).
        """

    def on_validation_end(self, trainer: Trainer, metrics: Mapping[str, float]) -> None:
        """Called after each validation with its ``val_*`` metrics."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: Mapping[str, Any]) -> None:
        """Called at the end of each epoch with its history record."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """Called once when training ends."""


def cosine_with_warmup(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int = 0,
    min_lr_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 0 to the base LR, then a cosine decay to ``min_lr_ratio`` of it.

    Stepped once per optimizer step.
    """
    total_steps = max(int(total_steps), 1)
    warmup_steps = min(int(warmup_steps), total_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        span = max(total_steps - warmup_steps, 1)
        progress_ = min((step - warmup_steps) / span, 1.0)
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress_))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class _EpochSampler(Sampler[int]):
    """DistributedSampler semantics (seeded per-epoch permutation, padded and
    strided over ranks) plus a start offset, so a run resumed mid-epoch sees
    exactly the samples the interrupted one had not yet seen."""

    def __init__(
        self, n: int, num_replicas: int, rank: int, shuffle: bool, seed: int, pad: bool = True
    ) -> None:
        self.n, self.num_replicas, self.rank = n, num_replicas, rank
        self.shuffle, self.seed, self.pad = shuffle, seed, pad
        self.epoch, self.start = 0, 0
        # padded: every rank gets the same count (training needs equal steps);
        # unpadded: each sample once (validation metrics stay exact)
        self.per_rank = math.ceil(n / num_replicas) if pad else len(range(rank, n, num_replicas))

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def indices(self) -> torch.Tensor:
        """This rank's sample indices for the epoch, from the start offset on (int64)."""
        if self.shuffle:
            gen = torch.Generator()
            gen.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=gen)
        else:
            order = torch.arange(self.n)
        if not self.pad:
            return order[self.rank :: self.num_replicas][self.start :]
        total = self.per_rank * self.num_replicas
        if total > self.n:  # pad by repeating, as DistributedSampler does
            order = order.repeat(math.ceil(total / self.n))[:total]
        return order[self.rank : total : self.num_replicas][self.start :]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.per_rank - self.start


class _TensorBatches:
    """Batches of a TensorDataset, indexed straight from its tensors and moved to the device.

    What ``DataLoader(dataset, sampler=BatchSampler(sampler, ...))`` yields (a
    list of tensors per batch), without its per-batch sampler, fetcher and
    collation work.
    """

    def __init__(
        self,
        tensors: Sequence[torch.Tensor],
        sampler: _EpochSampler,
        batch_size: int,
        drop_last: bool,
        device: torch.device,
    ) -> None:
        self.tensors, self.sampler = list(tensors), sampler
        self.batch_size, self.drop_last, self.device = batch_size, drop_last, device

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.sampler.set_epoch(epoch, start=start_batch * self.batch_size)

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        if t.device == self.device:
            return t
        if self.device.type == "cuda":
            # as the DataLoader (pin_memory=True) and Fabric's transfer do
            return (t.pin_memory() if t.device.type == "cpu" else t).to(
                self.device, non_blocking=True
            )
        return t.to(self.device)

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        order = self.sampler.indices()
        n_batches = self._count(len(order))
        # the index chunks on each tensor's device (index_select wants them there)
        chunks = {t.device: order.to(t.device).split(self.batch_size) for t in self.tensors}
        for b in range(n_batches):
            yield [self._to_device(t.index_select(0, chunks[t.device][b])) for t in self.tensors]

    def _count(self, n: int) -> int:
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __len__(self) -> int:
        return self._count(len(self.sampler))


class _LoaderBatches:
    """Batches of any map-style dataset through a DataLoader, moved to the device."""

    def __init__(
        self,
        loader: DataLoader,
        sampler: _EpochSampler,
        batch_size: int,
        seed: int,
        to_device: Callable[[Any], Any],
    ) -> None:
        self.loader, self.sampler, self.batch_size = loader, sampler, batch_size
        self.seed, self.to_device = seed, to_device

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.sampler.set_epoch(epoch, start=start_batch * self.batch_size)
        self.loader.generator.manual_seed(self.seed + epoch)

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            yield self.to_device(batch)

    def __len__(self) -> int:
        return len(self.loader)


def _all_finite(t: torch.Tensor) -> bool:
    """Whether a floating-point tensor holds no NaN or infinity (one pass, no mask)."""
    if t.numel() == 0:
        return True
    lo, hi = torch.aminmax(t)  # NaN propagates to both; an infinity is the min or the max
    return bool(torch.isfinite(lo)) and bool(torch.isfinite(hi))


def _as_dataset(data: Any, name: str) -> tuple[Dataset, Callable | None]:
    """Accept a Dataset, a map-style DataLoader, or a tuple of equal-length arrays."""
    collate = None
    if isinstance(data, DataLoader):
        collate = data.collate_fn
        data = data.dataset
    if isinstance(data, IterableDataset):
        raise InputTypeError(
            f"{name} is an IterableDataset; the Trainer needs a map-style dataset (with __len__ "
            "and __getitem__) so it can shard, shuffle and resume it exactly. Wrap your samples "
            "in a torch.utils.data.Dataset."
        )
    if (
        isinstance(data, (tuple, list))
        and data
        and all(isinstance(a, (np.ndarray, torch.Tensor)) for a in data)
    ):
        tensors = []
        for a in data:
            t = torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a
            if t.dtype == torch.float64:
                t = t.float()  # models train in float32; numpy defaults to float64
            tensors.append(t)
        lengths = [len(t) for t in tensors]
        if len(set(lengths)) != 1:
            raise InputError(
                f"{name} arrays must have the same number of samples (first axis); got lengths {lengths}."
            )
        for i, t in enumerate(tensors):
            if t.is_floating_point() and not _all_finite(t):
                raise InputError(
                    f"{name}[{i}] contains NaN or infinite values; remove or impute them first."
                )
        data = TensorDataset(*tensors)
    if not isinstance(data, Dataset) and not (
        hasattr(data, "__len__") and hasattr(data, "__getitem__")
    ):
        raise InputTypeError(
            f"{name} must be a torch Dataset, a DataLoader, or a tuple of arrays with samples on "
            f"the first axis; got {type(data).__name__}."
        )
    if len(data) == 0:
        raise InputError(f"{name} is empty (0 samples).")
    return data, collate


def _batch_len(batch: Any) -> int:
    """Samples in a batch: the first axis of its first tensor (1 if it holds none)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    items = batch.values() if isinstance(batch, Mapping) else batch
    if isinstance(items, (list, tuple)) or isinstance(batch, Mapping):
        for item in items:
            n = _batch_len(item)
            if n:
                return n
    return 1


def _metrics_dict(out: Any, where: str) -> dict[str, torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return {"loss": out}
    if isinstance(out, Mapping):
        result = {}
        for k, v in out.items():
            if isinstance(v, torch.Tensor):
                if v.numel() != 1:
                    raise InputError(
                        f"{where} returned {k!r} with shape {tuple(v.shape)}; metrics must be "
                        "scalars (reduce them, e.g. with .mean())."
                    )
                result[str(k)] = v.reshape(())
            elif isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
                result[str(k)] = torch.tensor(float(v))
            else:
                raise InputTypeError(
                    f"{where} returned {k!r}={v!r}; metrics must be numbers or scalar tensors."
                )
        return result
    raise InputTypeError(
        f"{where} must return a loss tensor or a dict of scalar metrics; got {type(out).__name__}."
    )


class _CompiledStep:
    """A training step under ``torch.compile`` that turns eager, for good, if compiling fails.

    Compilation happens on the first call (and on recompiles), so a compiler
    error shows up there: it is logged once, the random state is put back as
    it was before the call, and the step runs eagerly from then on. Errors
    that are not the compiler's (the model's own) are raised again by the
    eager call.
    """

    def __init__(self, eager: Callable[[Any], Any], name: str) -> None:
        from torch._dynamo.exc import TorchDynamoException  # compiler errors, Inductor's too

        self.eager, self.name, self.errors = eager, name, TorchDynamoException
        self.compiled: Callable[[Any], Any] | None = torch.compile(eager)

    def __call__(self, batch: Any) -> Any:
        if self.compiled is None:
            return self.eager(batch)
        rng = get_rng_state()
        try:
            return self.compiled(batch)
        except self.errors as err:
            self.compiled = None
            detail = (str(err).strip().splitlines() or [""])[0]
            _log.warning(
                "compile=True but torch.compile failed on %s (%s: %s); training eagerly.",
                self.name,
                type(err).__name__,
                detail,
            )
            set_rng_state(rng)
            return self.eager(batch)


@dataclass
class _Run:
    """What one ``fit`` trains and with what: built once, used by every step."""

    model: nn.Module
    fmodel: nn.Module  # the model as Fabric wrapped it (DDP under several processes)
    optimizer: torch.optim.Optimizer
    foptimizer: Any
    scheduler: Any
    plateau: bool  # the scheduler is a ReduceLROnPlateau: stepped per epoch, not per step
    train: _TensorBatches | _LoaderBatches
    val: _TensorBatches | _LoaderBatches | None
    n_batches: int
    several: bool  # more than one process
    training_step: Callable[[Any], Any]
    validation_step: Callable[[Any], Any] | None
    autocast: contextlib.AbstractContextManager  # reused by every step
    name: str  # the model's class name, for messages
    undo: Callable[[], None]  # restores what set-up changed on the model
    step_hooks: list[Callback] = dataclasses.field(default_factory=list)


@dataclass
class _Position:
    """Where the loop is: the epoch under way and what its steps have summed so far."""

    epoch: int = 0
    batch: int = 0  # batches of ``epoch`` already trained on
    sums: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    count: int = 0  # optimizer steps in ``sums``
    best_state: dict[str, torch.Tensor] | None = None
    started: float = 0.0  # time.perf_counter() at the epoch's start


class Trainer:
    """Train a model whose ``training_step(batch)`` returns a loss.

    Parameters
    ----------
    config : TrainerConfig, optional
        Run settings; keyword arguments override its fields
        (``Trainer(max_epochs=3, lr=1e-2)``).
    out_dir : str or path, optional
        Folder for ``config.json``, ``metrics.jsonl`` and
        ``checkpoints/{last,best}.pt``. Without it nothing is written and runs
        cannot be resumed.
    overwrite : bool, default=False
        Allow writing into a non-empty ``out_dir``.
    callbacks : sequence of Callback, optional
    optimizer : callable, optional
        ``optimizer(params) -> torch.optim.Optimizer``; overrides both the
        model's ``configure_optimizers`` and the default AdamW.
    scheduler : callable, optional
        ``scheduler(optimizer, total_steps) -> LRScheduler`` stepped once per
        optimizer step; the default is :func:`cosine_with_warmup`. Pass
        ``scheduler=False`` for a constant learning rate. A
        :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` (from here or
        from ``configure_optimizers``) is stepped once per completed epoch
        instead, with the monitored metric: ``early_stopping_metric`` if set,
        else ``val_loss`` when there is validation data, else ``train_loss``.
        Validation metrics exist only in epochs that validate, so with
        ``val_every_n_epochs > 1`` it is stepped in those epochs only. Give it
        the ``mode`` of that metric (``"max"`` for an accuracy).
    **overrides
        Fields of :class:`TrainerConfig`.

    Attributes
    ----------
    history : list of dict
        One record per epoch: ``epoch``, ``step``, ``lr``, ``train_*`` and
        ``val_*`` metrics, ``time_s``. Also written to ``metrics.jsonl``.
    global_step : int
        Optimizer steps taken.
    stopped_early : bool
        Whether early stopping ended the run.
    best_value : float or None
        Best value of the early-stopping metric.
    runtime : Runtime
        Device, precision and process group used.

    Notes
    -----
    Checkpoints hold the random state of every process (``trainer.rng_per_rank``
    in the checkpoint, rank 0's also under ``rng``), and a resumed run gives
    each process its own back. Resuming with another number of processes
    cannot continue each process's stream: every process then starts from
    rank 0's state, with a warning (the data order after the checkpoint
    differs from the original run's as well).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> class Regressor(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.linear = nn.Linear(3, 1)
    ...     def training_step(self, batch):
    ...         x, y = batch
    ...         return nn.functional.mse_loss(self.linear(x), y)
    >>> x = torch.randn(64, 3); y = x.sum(1, keepdim=True)
    >>> history = Trainer(max_epochs=2, device="cpu", verbose=0).fit(Regressor(), (x, y))
    >>> [r["epoch"] for r in history]
    [1, 2]
    """

    def __init__(
        self,
        config: TrainerConfig | None = None,
        *,
        out_dir: str | Path | None = None,
        overwrite: bool = False,
        callbacks: Sequence[Callback] = (),
        optimizer: Callable[[Any], torch.optim.Optimizer] | None = None,
        scheduler: Callable[[torch.optim.Optimizer, int], Any] | bool | None = None,
        **overrides: Any,
    ) -> None:
        if config is None:
            config = TrainerConfig()
        if not isinstance(config, TrainerConfig):
            raise InputTypeError(f"config must be a TrainerConfig; got {type(config).__name__}.")
        known = {f.name for f in dataclasses.fields(TrainerConfig)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InputTypeError(
                f"Unknown Trainer setting(s) {', '.join(unknown)}; valid names are the fields of "
                f"TrainerConfig: {', '.join(sorted(known))}."
            )
        self.config = dataclasses.replace(config, **overrides)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.overwrite = overwrite
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise InputTypeError(
                    f"callbacks must be Callback instances; got {type(cb).__name__}."
                )
        self.callbacks = list(callbacks)
        self._optimizer_factory = optimizer
        self._scheduler_factory = scheduler
        self.history: list[dict[str, Any]] = []
        self.global_step = 0
        self.epoch = 0
        self.should_stop = False
        self.stopped_early = False
        self.best_value: float | None = None
        self.runtime: Runtime | None = None
        self.model: nn.Module | None = None
        self._run_config: Any = None
        self._bad_epochs = 0

    # ------------------------------------------------------------------- fit
    def fit(
        self,
        model: nn.Module,
        train_data: Any,
        val_data: Any = None,
        *,
        resume: str | Path | None = None,
        run_config: Any = None,
    ) -> list[dict[str, Any]]:
        """Train ``model`` in place and return the history.

        Parameters
        ----------
        model : nn.Module
            Has ``training_step(batch)``; ``validation_step(batch)`` if
            ``val_data`` is given.
        train_data, val_data : Dataset, DataLoader or tuple of arrays
            Map-style data. A tuple ``(X, Y, ...)`` of arrays with samples on
            the first axis becomes a TensorDataset (float64 arrays become
            float32). A DataLoader contributes its dataset and collate_fn;
            the Trainer sets batching and sampling from its config.
        resume : "last" or path, optional
            Continue from a checkpoint: ``"last"`` is ``out_dir/checkpoints/last.pt``.
            Model, optimizer, scheduler, loop position, generator states (each
            process its own) and history are restored, so the run ends as an
            uninterrupted one would.
        run_config : dataclass, optional
            The run's own config (model sizes, data settings), saved in
            checkpoints and ``config.json`` beside the Trainer's.

        Returns
        -------
        list of dict
            :attr:`history`.
        """
        cfg = self.config
        self._check_fit_arguments(model, val_data, run_config)
        train_set, train_collate = _as_dataset(train_data, "train_data")
        val_set, val_collate = (
            _as_dataset(val_data, "val_data") if val_data is not None else (None, None)
        )
        ckpt = load_checkpoint(self._resume_path(resume)) if resume is not None else None
        # before anything is written: a bad device or a multi-node run without launcher fails here
        rt = Runtime(cfg.device, cfg.precision, cfg.devices, cfg.num_nodes, cfg.strategy)
        if self.out_dir is not None and global_rank() == 0:
            # only rank 0 checks: the others would see the files rank 0 has begun to write
            prepare_output_dir(self.out_dir, overwrite=self.overwrite or resume is not None)
        self.runtime = rt
        rt.launch()
        seed_everything(cfg.seed, cfg.deterministic)
        self.model = model

        run = self._set_up(model, train_set, train_collate, val_set, val_collate)
        try:
            pos = self._restore(run, ckpt, resume)
            self._write_config()
            for cb in self.callbacks:
                cb.on_fit_start(self)
            # only callbacks that look at each step make the loop read values every step
            # (each read waits for the device)
            run.step_hooks = [
                cb for cb in self.callbacks if type(cb).on_step_end is not Callback.on_step_end
            ]
            while (
                pos.epoch < cfg.max_epochs
                and not self._max_steps_reached()
                and not self.should_stop
            ):
                self._train_epoch(run, pos)
                self._end_epoch(run, pos)
        finally:
            run.undo()

        if cfg.early_stopping_metric and cfg.restore_best and pos.best_state is not None:
            model.load_state_dict(pos.best_state)
        for cb in self.callbacks:
            cb.on_fit_end(self)
        rt.barrier()
        return self.history

    # ------------------------------------------------------------------ set-up
    def _check_fit_arguments(self, model: Any, val_data: Any, run_config: Any) -> None:
        cfg = self.config
        self._check_model(model, needs_validation=val_data is not None)
        if run_config is not None and not (
            dataclasses.is_dataclass(run_config) and not isinstance(run_config, type)
        ):
            raise InputTypeError(
                f"run_config must be a dataclass instance; got {type(run_config).__name__}."
            )
        self._run_config = run_config
        if cfg.early_stopping_metric is not None and val_data is None:
            raise InputError(
                f"early_stopping_metric={cfg.early_stopping_metric!r} watches a validation metric, "
                "but no val_data was given. Pass val_data, or set early_stopping_metric=None."
            )

    @staticmethod
    def _check_model(model: Any, needs_validation: bool) -> None:
        if not isinstance(model, nn.Module):
            raise InputTypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
        name = type(model).__name__
        if not callable(getattr(model, "training_step", None)):
            raise InputTypeError(
                f"model {name} has no training_step method. The Trainer needs "
                "model.training_step(batch) returning a loss tensor or a dict with a 'loss' entry; "
                "models trained by other rules can use neuro.train.Runtime and the checkpoint "
                "helpers without the Trainer."
            )
        if needs_validation and not callable(getattr(model, "validation_step", None)):
            raise InputTypeError(
                f"val_data was given but model {name} has no validation_step method; add "
                "validation_step(batch) returning a dict of metrics, or drop val_data."
            )
        if not any(p.requires_grad for p in model.parameters()):
            raise InputError(f"model {name} has no trainable parameters (requires_grad=True).")

    def _set_up(
        self,
        model: nn.Module,
        train_set: Dataset,
        train_collate: Callable | None,
        val_set: Dataset | None,
        val_collate: Callable | None,
    ) -> _Run:
        """Data, optimizer, scheduler and the Fabric-wrapped model of one fit."""
        cfg, rt = self.config, self.runtime
        train = self._batches(train_set, train_collate, cfg.batch_size, cfg.shuffle, cfg.drop_last)
        n_batches = len(train)
        if n_batches == 0:
            raise InputError(
                f"train_data has {len(train_set)} samples, fewer than one batch per process "
                f"(batch_size={cfg.batch_size}, drop_last=True, {rt.world_size} processes). "
                "Lower batch_size or set drop_last=False."
            )
        val = None
        if val_set is not None:
            val_batch_size = cfg.val_batch_size or cfg.batch_size
            val = self._batches(val_set, val_collate, val_batch_size, False, False, pad=False)
        steps_per_epoch = math.ceil(n_batches / cfg.grad_accum_steps)
        total_steps = cfg.max_epochs * steps_per_epoch
        if cfg.max_steps is not None:
            total_steps = min(total_steps, cfg.max_steps)

        optimizer, scheduler = self._build_optimizer(model)
        if scheduler is None:
            scheduler = self._make_scheduler(optimizer, total_steps)
        plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        if plateau and cfg.early_stopping_metric and scheduler.mode != cfg.early_stopping_mode:
            _log.warning(
                "The ReduceLROnPlateau scheduler has mode=%r but early_stopping_mode=%r: it is "
                "stepped with early_stopping_metric=%r, so it treats improvements as worsenings. "
                "Create it with mode=%r.",
                scheduler.mode,
                cfg.early_stopping_mode,
                cfg.early_stopping_metric,
                cfg.early_stopping_mode,
            )
        fmodel, foptimizer = rt.fabric.setup(model, optimizer)
        fmodel.mark_forward_method("training_step")
        if val is not None:
            fmodel.mark_forward_method("validation_step")
        name = type(model).__name__
        training_step, validation_step, undo = self._step_functions(model, fmodel, name)
        return _Run(
            model=model,
            fmodel=fmodel,
            optimizer=optimizer,
            foptimizer=foptimizer,
            scheduler=scheduler,
            plateau=plateau,
            train=train,
            val=val,
            n_batches=n_batches,
            several=rt.world_size > 1,
            training_step=training_step,
            validation_step=validation_step if val is not None else None,
            autocast=rt.autocast(),
            name=name,
            undo=undo,
        )

    def _step_functions(
        self, model: nn.Module, fmodel: nn.Module, name: str
    ) -> tuple[Callable, Callable | None, Callable[[], None]]:
        """The callables that run one training and one validation batch, and an undo.

        One process calls the model's methods directly; several call them
        through the DDP-wrapped model (so gradients are synchronised). With
        ``compile=True`` the training step is compiled (see :class:`_CompiledStep`).
        """
        several = self.runtime.world_size > 1
        if several:

            def training_step(batch: Any) -> Any:
                return fmodel.training_step(batch)

            def validation_step(batch: Any) -> Any:
                return fmodel.validation_step(batch)

        else:
            training_step = model.training_step
            validation_step = getattr(model, "validation_step", None)

        compiled = self._compile(model.training_step, f"{name}.training_step")
        if compiled is None:
            return training_step, validation_step, lambda: None
        if not several:
            return compiled, validation_step, lambda: None
        # DDP's forward looks the method up on the model: put the compiled step there
        # for this fit, and take it away afterwards
        missing = object()
        before = model.__dict__.get("training_step", missing)
        model.__dict__["training_step"] = compiled

        def undo() -> None:
            if before is missing:
                model.__dict__.pop("training_step", None)
            else:
                model.__dict__["training_step"] = before

        return training_step, validation_step, undo

    def _compile(self, step: Callable, name: str) -> _CompiledStep | None:
        """``step`` under torch.compile, or None (with one warning) where that is not available."""
        if not self.config.compile:
            return None
        try:
            import torch._dynamo

            if not torch._dynamo.is_dynamo_supported():
                raise RuntimeError("torch.compile is not supported on this platform / Python")
            return _CompiledStep(step, name)
        except Exception as err:  # compile is an optimisation: never fail the run for it
            _log.warning(
                "compile=True but torch.compile is unavailable (%s); training eagerly.", err
            )
            return None

    def _build_optimizer(self, model: nn.Module) -> tuple[torch.optim.Optimizer, Any]:
        cfg = self.config
        scheduler = None
        if self._optimizer_factory is not None:
            optimizer = self._optimizer_factory(model.parameters())
        elif callable(getattr(model, "configure_optimizers", None)):
            out = model.configure_optimizers()
            optimizer, scheduler = out if isinstance(out, tuple) else (out, None)
        else:
            decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
            no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
            groups = [{"params": decay, "weight_decay": cfg.weight_decay}]
            if no_decay:
                groups.append({"params": no_decay, "weight_decay": 0.0})
            optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise InputTypeError(
                f"the optimizer must be a torch.optim.Optimizer; got {type(optimizer).__name__}."
            )
        return optimizer, scheduler

    def _make_scheduler(self, optimizer: torch.optim.Optimizer, total_steps: int) -> Any:
        if self._scheduler_factory is False:
            return None
        if callable(self._scheduler_factory):
            return self._scheduler_factory(optimizer, total_steps)
        warmup = self.config.warmup_steps
        if warmup is None:
            warmup = int(0.05 * total_steps)
        return cosine_with_warmup(optimizer, total_steps, warmup, self.config.min_lr_ratio)

    def _batches(
        self,
        dataset: Dataset,
        collate: Callable | None,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        pad: bool = True,
    ) -> _TensorBatches | _LoaderBatches:
        rt = self.runtime
        sampler = _EpochSampler(
            len(dataset), rt.world_size, rt.global_rank, shuffle, self.config.seed, pad
        )
        if type(dataset) is TensorDataset and collate is None and self.config.num_workers == 0:
            # index whole batches at once, without the DataLoader's per-batch work
            # (not for subclasses: they may change __getitem__)
            return _TensorBatches(dataset.tensors, sampler, batch_size, drop_last, rt.device)
        # A private generator: creating the iterator must not draw from the
        # global RNG, or a resumed run would diverge from an uninterrupted one.
        gen = torch.Generator()
        gen.manual_seed(self.config.seed)
        batching: dict[str, Any] = {
            "batch_size": batch_size,
            "sampler": sampler,
            "drop_last": drop_last,
        }
        if isinstance(dataset, TensorDataset) and collate is None:
            # index whole batches at once instead of gathering and stacking samples
            batching = {"batch_size": None, "sampler": BatchSampler(sampler, batch_size, drop_last)}
        loader = DataLoader(
            dataset,
            **batching,
            num_workers=self.config.num_workers,
            collate_fn=collate,
            pin_memory=rt.device.type == "cuda",
            generator=gen,
        )
        return _LoaderBatches(loader, sampler, batch_size, self.config.seed, rt.to_device)

    # -------------------------------------------------------------- resuming
    def _resume_path(self, resume: str | Path) -> Path:
        if str(resume) == "last":
            if self.out_dir is None:
                raise InputError("resume='last' needs out_dir, where the checkpoints are written.")
            return self.out_dir / "checkpoints" / "last.pt"
        return Path(resume)

    def _restore(self, run: _Run, ckpt: Mapping[str, Any] | None, source: Any) -> _Position:
        """Reset the loop state, then load a checkpoint's into it (and into the model, optimizer...)."""
        cfg, rt = self.config, self.runtime
        self.history, self.global_step, self.best_value, self._bad_epochs = [], 0, None, 0
        self.should_stop = self.stopped_early = False
        if ckpt is None:
            return _Position()
        restore_checkpoint(
            ckpt, run.model, run.optimizer, run.scheduler, rng=True, source=f"checkpoint {source}"
        )
        _check_resume_config(ckpt, cfg, source)
        t = ckpt.get("trainer", {})
        pos = _Position(
            epoch=int(t.get("epoch", 0)),
            batch=int(t.get("batch_in_epoch", 0)),
            sums={k: v.to(rt.device) for k, v in t.get("epoch_sums", {}).items()},
            count=int(t.get("epoch_count", 0)),
        )
        self.global_step = int(t.get("global_step", 0))
        self.history = list(t.get("history", []))
        self.best_value = t.get("best_value")
        self._bad_epochs = int(t.get("bad_epochs", 0))
        # a run that early stopping ended stays ended
        self.should_stop = self.stopped_early = bool(t.get("stopped_early", False))
        saved_world = t.get("world_size", rt.world_size)
        per_rank = t.get("rng_per_rank")
        if saved_world != rt.world_size:
            _log.warning(
                "Resuming a run saved with %d process(es) on %d: the data order after the "
                "checkpoint differs from the original run's, and every process continues from "
                "rank 0's random state.",
                saved_world,
                rt.world_size,
            )
        elif per_rank is not None and len(per_rank) == rt.world_size:
            set_rng_state(per_rank[rt.global_rank])  # each process its own stream
        best_path = self.out_dir / "checkpoints" / "best.pt" if self.out_dir else None
        if cfg.restore_best and cfg.early_stopping_metric and best_path and best_path.is_file():
            pos.best_state = load_checkpoint(best_path)["model"]
        _log.info("Resumed from %s at epoch %d, step %d.", source, pos.epoch, self.global_step)
        return pos

    # ----------------------------------------------------------------- epochs
    def _max_steps_reached(self) -> bool:
        return self.config.max_steps is not None and self.global_step >= self.config.max_steps

    def _train_epoch(self, run: _Run, pos: _Position) -> None:
        """Train from ``pos.batch`` to the end of the epoch, or until a stop."""
        cfg = self.config
        self.epoch = pos.epoch
        pos.started = time.perf_counter()
        run.train.set_epoch(pos.epoch, start_batch=pos.batch)
        if pos.batch == 0:
            pos.sums, pos.count = {}, 0
        run.fmodel.train()
        bar = progress(
            total=run.n_batches,
            initial=pos.batch,
            desc=f"epoch {pos.epoch + 1}/{cfg.max_epochs}",
            verbose=cfg.verbose,
            leave=False,
            unit="batch",
        )
        accum, n_batches = cfg.grad_accum_steps, run.n_batches
        step_metrics: dict[str, torch.Tensor] = {}
        for batch in run.train:
            group_start = pos.batch - pos.batch % accum
            group_size = min(accum, n_batches - group_start)
            is_step = pos.batch - group_start == group_size - 1
            out = self._forward_backward(run, batch, group_size, sync=is_step)
            for k, v in out.items():
                v = v.detach().float()
                if group_size > 1:
                    v = v / group_size
                step_metrics[k] = step_metrics[k] + v if k in step_metrics else v
            pos.batch += 1
            bar.update(1)
            if not is_step:
                continue
            self._optimizer_step(run, step_metrics)
            self._after_step(run, pos, step_metrics, bar)
            step_metrics = {}
            if self._max_steps_reached() or self.should_stop:
                break
            if (
                cfg.checkpoint_every_n_steps
                and self.global_step % cfg.checkpoint_every_n_steps == 0
                and pos.batch < n_batches
            ):
                self._save("last.pt", run, pos.epoch, pos.batch, pos)
        bar.close()
        if pos.batch < n_batches:
            # Stopped inside the epoch (max_steps or a callback): last.pt keeps the true
            # position, so a resumed run finishes this epoch exactly as an uninterrupted one.
            self._save("last.pt", run, pos.epoch, pos.batch, pos)

    def _forward_backward(
        self, run: _Run, batch: Any, group_size: int, sync: bool
    ) -> dict[str, torch.Tensor]:
        """One micro-batch: the training step under autocast, then the backward pass."""
        # several processes: gradients are all-reduced on the last micro-batch of a step only
        no_sync = (
            self.runtime.fabric.no_backward_sync(run.fmodel, enabled=not sync)
            if run.several
            else contextlib.nullcontext()
        )
        with no_sync:
            with run.autocast:
                out = _metrics_dict(run.training_step(batch), f"{run.name}.training_step")
            loss = out.get("loss")
            if loss is None:
                raise InputKeyError(
                    f"{run.name}.training_step returned a dict without 'loss' "
                    f"(keys: {sorted(out)}); put the value to minimise under 'loss'."
                )
            if not loss.requires_grad:
                raise InputTypeError(
                    f"{run.name}.training_step returned a loss that does not "
                    "depend on any trainable parameter (no grad_fn): return the loss "
                    "tensor itself, not a float or a .detach()ed / .item() value."
                )
            self.runtime.backward(loss / group_size if group_size > 1 else loss)
        return out

    def _optimizer_step(self, run: _Run, step_metrics: dict[str, torch.Tensor]) -> None:
        """Clip (if asked), step the optimizer and the per-step scheduler."""
        cfg = self.config
        for cb in self.callbacks:
            cb.on_before_optimizer_step(self)
        if cfg.grad_clip_norm is not None:
            norm = self.runtime.fabric.clip_gradients(
                run.fmodel, run.foptimizer, max_norm=cfg.grad_clip_norm
            )
            step_metrics["grad_norm"] = norm.detach().float()
        self.runtime.optimizer_step(run.foptimizer)
        run.optimizer.zero_grad(set_to_none=True)
        if run.scheduler is not None and not run.plateau:
            run.scheduler.step()
        self.global_step += 1

    def _after_step(
        self, run: _Run, pos: _Position, step_metrics: dict[str, torch.Tensor], bar: Any
    ) -> None:
        """Add the step's metrics to the epoch's, report them, call the per-step callbacks."""
        rt = self.runtime
        for k, v in step_metrics.items():
            if k in pos.sums:
                pos.sums[k].add_(v)
            else:  # a copy: it is added to in place, and the model may keep the tensor it returned
                pos.sums[k] = v.clone()
        pos.count += 1
        # Reading a value waits for the device: do it only every few steps,
        # or every step when callbacks want the values.
        values = None
        if run.step_hooks or self.global_step % _SYNC_EVERY == 0 or pos.batch == run.n_batches:
            values = {k: float(v) for k, v in step_metrics.items()}
            total = float(pos.sums["loss"])
            if not (math.isfinite(values["loss"]) and math.isfinite(total)):
                bad = values["loss"] if not math.isfinite(values["loss"]) else total
                raise FloatingPointError(
                    f"The training loss became {bad} at or before step {self.global_step} "
                    f"(epoch {pos.epoch + 1}). Lower lr, set grad_clip_norm, or check the data "
                    "for NaN/inf values."
                )
            if not bar.disable:
                bar.set_postfix(loss=f"{values['loss']:.4g}")
        for cb in run.step_hooks:
            cb.on_step_end(self, self.global_step, values)
        if run.step_hooks and rt.world_size > 1:
            # a callback may stop one process only: all stop together, or DDP deadlocks
            flag = torch.tensor(float(self.should_stop), device=rt.device)
            self.should_stop = bool(rt.all_reduce(flag, op="sum") > 0)

    def _end_epoch(self, run: _Run, pos: _Position) -> None:
        """Epoch metrics, validation, early stopping, the plateau scheduler, history, checkpoint."""
        cfg = self.config
        # a partial epoch (stopped inside it) is reported, but does not count for early
        # stopping, best.pt or the plateau scheduler: the resumed run completes it
        partial = pos.batch < run.n_batches
        record: dict[str, Any] = {
            "epoch": pos.epoch + 1,
            "step": self.global_step,
            "lr": float(run.optimizer.param_groups[0]["lr"]),
            **self._train_means(pos),
        }
        last_epoch = (
            pos.epoch + 1 == cfg.max_epochs or self._max_steps_reached() or self.should_stop
        )
        if run.val is not None and ((pos.epoch + 1) % cfg.val_every_n_epochs == 0 or last_epoch):
            val_metrics = self._validate(run)
            record.update(val_metrics)
            for cb in self.callbacks:
                cb.on_validation_end(self, val_metrics)
            improved = False if partial else self._early_stopping_update(val_metrics)
            if improved and cfg.early_stopping_metric:
                if cfg.restore_best:
                    pos.best_state = {
                        k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()
                    }
                self._save("best.pt", run, pos.epoch + 1, 0, pos)
        if run.plateau and not partial:
            self._plateau_step(run, record)
        record["time_s"] = round(time.perf_counter() - pos.started, 4)
        self.history.append(record)
        if cfg.verbose > 0:
            _log.info("epoch %d: %s", pos.epoch + 1, _format_record(record))
        pos.epoch += 1
        pos.batch = 0
        self._write_outputs()
        for cb in self.callbacks:
            cb.on_epoch_end(self, pos.epoch, record)
        if not partial:  # after the callbacks, so the saved random state is current
            self._save("last.pt", run, pos.epoch, 0, pos)

    def _train_means(self, pos: _Position) -> dict[str, float]:
        """``train_*``: the epoch's per-step metrics averaged over steps and processes."""
        if not pos.sums:
            return {}
        keys = sorted(pos.sums)
        # (a metric returned as a Python number was summed on the CPU)
        device = self.runtime.device
        means = torch.stack([pos.sums[k].to(device) for k in keys]) / max(pos.count, 1)
        means = self.runtime.all_reduce(means)  # average over processes
        return {f"train_{k}": v for k, v in zip(keys, means.tolist(), strict=True)}

    def _plateau_step(self, run: _Run, record: Mapping[str, Any]) -> None:
        """Step a ReduceLROnPlateau scheduler with this epoch's value of its metric.

        The metric is ``early_stopping_metric`` if set, else ``val_loss`` when
        there is validation data, else ``train_loss``; a validation metric
        only exists in epochs that validate, and the others are skipped.
        """
        cfg = self.config
        name = cfg.early_stopping_metric or ("val_loss" if run.val is not None else "train_loss")
        if name.startswith("val_") and not any(k.startswith("val_") for k in record):
            return  # no validation this epoch (val_every_n_epochs > 1)
        if name not in record:
            metrics = sorted(k for k in record if k.startswith(("train_", "val_")))
            raise InputKeyError(
                f"The ReduceLROnPlateau scheduler watches {name!r}, which is not among this "
                f"epoch's metrics {metrics}; return 'loss' from validation_step, or set "
                "early_stopping_metric to the metric to watch."
            )
        run.scheduler.step(record[name])

    # ------------------------------------------------------------ validation
    def _validate(self, run: _Run) -> dict[str, float]:
        rt = self.runtime
        run.fmodel.eval()
        sums: dict[str, torch.Tensor] = {}
        count = 0
        where = f"{run.name}.validation_step"
        with torch.no_grad():
            # validation is usually short: its bar shows from verbose=2 on
            for batch in progress(
                run.val,
                desc="validation",
                verbose=self.config.verbose - 1,
                leave=False,
                unit="batch",
            ):
                with run.autocast:
                    out = _metrics_dict(run.validation_step(batch), where)
                n = _batch_len(batch)
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + v.detach().float() * n
                count += n
        run.fmodel.train()
        keys = sorted(sums)
        vec = torch.stack(
            [torch.as_tensor(sums[k], device=rt.device) for k in keys]
            + [torch.tensor(float(count), device=rt.device)]
        )
        vec = rt.all_reduce(vec, op="sum")
        return {f"val_{k}": float(vec[i] / vec[-1]) for i, k in enumerate(keys)}

    def _early_stopping_update(self, metrics: Mapping[str, float]) -> bool:
        cfg = self.config
        name = cfg.early_stopping_metric
        if name is None:
            return False
        if name not in metrics:
            raise InputKeyError(
                f"early_stopping_metric={name!r} is not among the validation metrics "
                f"{sorted(metrics)}; use one of those names."
            )
        value = metrics[name]
        if self.best_value is None:
            better = True
        elif cfg.early_stopping_mode == "min":
            better = value < self.best_value - cfg.early_stopping_min_delta
        else:
            better = value > self.best_value + cfg.early_stopping_min_delta
        if better:
            self.best_value, self._bad_epochs = value, 0
        else:
            self._bad_epochs += 1
            if self._bad_epochs >= cfg.early_stopping_patience:
                self.should_stop = self.stopped_early = True
                (_log.info if cfg.verbose > 0 else _log.debug)(
                    "Early stopping: %s has not improved on %.6g for %d validations.",
                    name,
                    self.best_value,
                    self._bad_epochs,
                )
        return better

    # ----------------------------------------------------------------- outputs
    def _write_config(self) -> None:
        if self.out_dir is None or not self.runtime.is_global_zero:
            return
        configs = {"trainer": config_to_dict(self.config)}
        if self._run_config is not None:
            configs["run"] = config_to_dict(self._run_config)
        atomic_write_json(self.out_dir / "config.json", configs)

    def _write_outputs(self) -> None:
        if self.out_dir is None or not self.runtime.is_global_zero:
            return
        lines = "".join(json.dumps(r) + "\n" for r in self.history)
        atomic_write_text(self.out_dir / "metrics.jsonl", lines)

    def _checkpoint_payload(
        self, run: _Run, epoch: int, batch: int, pos: _Position
    ) -> dict[str, Any] | None:
        """Everything a resume needs, to continue from batch ``batch`` of epoch ``epoch``.

        Every process must call it (it gathers each one's random state); it
        returns the payload on rank 0 and None elsewhere. A position inside
        an epoch (``batch > 0``) also holds the epoch's metric sums so far.
        """
        rt = self.runtime
        rng_per_rank = rt.gather_object(get_rng_state())
        if not rt.is_global_zero:
            return None
        configs = {"trainer": self.config}
        if self._run_config is not None:
            configs["run"] = self._run_config
        state = make_checkpoint(run.model, run.optimizer, run.scheduler, configs=configs, rng=False)
        state["rng"] = rng_per_rank[0]
        position: dict[str, Any] = {"epoch": epoch, "batch_in_epoch": batch}
        if batch > 0:
            position["epoch_sums"] = {k: v.cpu() for k, v in pos.sums.items()}
            position["epoch_count"] = pos.count
        state["trainer"] = {
            **position,
            "global_step": self.global_step,
            "history": self.history,
            "best_value": self.best_value,
            "bad_epochs": self._bad_epochs,
            "stopped_early": self.stopped_early,
            "world_size": rt.world_size,
            "rng_per_rank": rng_per_rank,
        }
        return state

    def _save(self, name: str, run: _Run, epoch: int, batch: int, pos: _Position) -> None:
        """Write ``checkpoints/<name>`` (on rank 0; every process must call it)."""
        if self.out_dir is None:
            return
        state = self._checkpoint_payload(run, epoch, batch, pos)
        if state is not None:
            save_checkpoint(self.out_dir / "checkpoints" / name, state)


#: Settings that fix the data order and loop position; a resume must keep them.
_RESUME_FIXED = ("batch_size", "grad_accum_steps", "shuffle", "drop_last", "seed")


def _check_resume_config(ckpt: Mapping[str, Any], cfg: TrainerConfig, source: Any) -> None:
    saved = ckpt.get("config", {}).get("trainer", {}).get("values", {})
    changed = [
        f"{k}: {saved[k]!r} -> {getattr(cfg, k)!r}"
        for k in _RESUME_FIXED
        if k in saved and saved[k] != getattr(cfg, k)
    ]
    if changed:
        raise CheckpointError(
            f"Cannot resume from {source}: these settings differ from the interrupted run's "
            f"({'; '.join(changed)}), so the data order would not continue where it stopped. "
            "Resume with the original settings, or start a new run in another folder."
        )


def _format_record(record: Mapping[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in record.items()
        if k != "epoch"
    )
