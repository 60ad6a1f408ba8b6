"""The training loop every gradient-trained model in neuro uses.

A model is any :class:`torch.nn.Module` with

* ``training_step(batch) -> loss`` or ``-> {"loss": loss, "other": value, ...}``
* optionally ``validation_step(batch) -> {"name": value, ...}`` (or a loss tensor)
* optionally ``configure_optimizers() -> optimizer`` or ``(optimizer, scheduler)``

and the :class:`Trainer` runs it on one CPU, one GPU, several GPUs or several
nodes (through Lightning Fabric, see :mod:`neuro.train.distributed`), with
mixed precision, gradient accumulation and clipping, early stopping,
callbacks, a progress bar, a metrics history and checkpoints that resume
exactly.
"""

from __future__ import annotations

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
from neuro.train.seed import seed_everything

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
    strategy : str, default="auto"
        See :data:`neuro.train.distributed.STRATEGIES`.
    compile : bool, default=False
        Compile the model with ``torch.compile``; falls back to eager mode,
        with a warning, where compilation is not available.
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

    def _indices(self) -> list[int]:
        if self.shuffle:
            gen = torch.Generator()
            gen.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=gen).tolist()
        else:
            order = list(range(self.n))
        if not self.pad:
            return order[self.rank :: self.num_replicas]
        total = self.per_rank * self.num_replicas
        while len(order) < total:  # pad by repeating, as DistributedSampler does
            order += order[: total - len(order)]
        return order[self.rank : total : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices()[self.start :])

    def __len__(self) -> int:
        return self.per_rank - self.start


def _as_dataset(data: Any, name: str) -> tuple[Dataset, Callable | None]:
    """Accept a Dataset, a map-style DataLoader, or a tuple of equal-length arrays."""
    collate = None
    if isinstance(data, DataLoader):
        collate = data.collate_fn
        data = data.dataset
    if isinstance(data, IterableDataset):
        raise TypeError(
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
            raise ValueError(
                f"{name} arrays must have the same number of samples (first axis); got lengths {lengths}."
            )
        for i, t in enumerate(tensors):
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise ValueError(
                    f"{name}[{i}] contains NaN or infinite values; remove or impute them first."
                )
        data = TensorDataset(*tensors)
    if not isinstance(data, Dataset) and not (
        hasattr(data, "__len__") and hasattr(data, "__getitem__")
    ):
        raise TypeError(
            f"{name} must be a torch Dataset, a DataLoader, or a tuple of arrays with samples on "
            f"the first axis; got {type(data).__name__}."
        )
    if len(data) == 0:
        raise ValueError(f"{name} is empty (0 samples).")
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
                    raise ValueError(
                        f"{where} returned {k!r} with shape {tuple(v.shape)}; metrics must be "
                        "scalars (reduce them, e.g. with .mean())."
                    )
                result[str(k)] = v.reshape(())
            elif isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
                result[str(k)] = torch.tensor(float(v))
            else:
                raise TypeError(
                    f"{where} returned {k!r}={v!r}; metrics must be numbers or scalar tensors."
                )
        return result
    raise TypeError(
        f"{where} must return a loss tensor or a dict of scalar metrics; got {type(out).__name__}."
    )


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
        ``scheduler=False`` for a constant learning rate.
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
            raise TypeError(f"config must be a TrainerConfig; got {type(config).__name__}.")
        known = {f.name for f in dataclasses.fields(TrainerConfig)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(
                f"Unknown Trainer setting(s) {', '.join(unknown)}; valid names are the fields of "
                f"TrainerConfig: {', '.join(sorted(known))}."
            )
        self.config = dataclasses.replace(config, **overrides)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.overwrite = overwrite
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be Callback instances; got {type(cb).__name__}.")
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

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _check_model(model: Any, needs_validation: bool) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
        name = type(model).__name__
        if not callable(getattr(model, "training_step", None)):
            raise TypeError(
                f"model {name} has no training_step method. The Trainer needs "
                "model.training_step(batch) returning a loss tensor or a dict with a 'loss' entry; "
                "models trained by other rules can use neuro.train.Runtime and the checkpoint "
                "helpers without the Trainer."
            )
        if needs_validation and not callable(getattr(model, "validation_step", None)):
            raise TypeError(
                f"val_data was given but model {name} has no validation_step method; add "
                "validation_step(batch) returning a dict of metrics, or drop val_data."
            )
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError(f"model {name} has no trainable parameters (requires_grad=True).")

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
            raise TypeError(
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

    def _loader(
        self,
        dataset: Dataset,
        collate: Callable | None,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        pad: bool = True,
    ) -> tuple[DataLoader, _EpochSampler]:
        rt = self.runtime
        sampler = _EpochSampler(
            len(dataset), rt.world_size, rt.global_rank, shuffle, self.config.seed, pad
        )
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
        return loader, sampler

    def _maybe_compile(self, model: nn.Module) -> nn.Module:
        if not self.config.compile:
            return model
        try:
            import torch._dynamo

            if not torch._dynamo.is_dynamo_supported():
                raise RuntimeError("torch.compile is not supported on this platform / Python")
            # Fall back to eager execution for any graph the compiler cannot handle.
            torch._dynamo.config.suppress_errors = True
            return torch.compile(model)
        except Exception as err:  # compile is an optimisation: never fail the run for it
            _log.warning(
                "compile=True but torch.compile is unavailable (%s); training eagerly.", err
            )
            return model

    # -------------------------------------------------------------- resuming
    def _resume_path(self, resume: str | Path) -> Path:
        if str(resume) == "last":
            if self.out_dir is None:
                raise ValueError("resume='last' needs out_dir, where the checkpoints are written.")
            return self.out_dir / "checkpoints" / "last.pt"
        return Path(resume)

    def _write_outputs(self) -> None:
        if self.out_dir is None or not self.runtime.is_global_zero:
            return
        lines = "".join(json.dumps(r) + "\n" for r in self.history)
        atomic_write_text(self.out_dir / "metrics.jsonl", lines)

    def _save(
        self, name: str, model: nn.Module, optimizer: Any, scheduler: Any, position: dict
    ) -> None:
        if self.out_dir is None or not self.runtime.is_global_zero:
            return
        configs = {"trainer": self.config}
        if self._run_config is not None:
            configs["run"] = self._run_config
        state = make_checkpoint(model, optimizer, scheduler, configs=configs, rng=True)
        state["trainer"] = {
            **position,
            "global_step": self.global_step,
            "history": self.history,
            "best_value": self.best_value,
            "bad_epochs": self._bad_epochs,
            "stopped_early": self.stopped_early,
            "world_size": self.runtime.world_size,
        }
        save_checkpoint(self.out_dir / "checkpoints" / name, state)

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
            Model, optimizer, scheduler, loop position, generator states and
            history are restored, so the run ends as an uninterrupted one would.
        run_config : dataclass, optional
            The run's own config (model sizes, data settings), saved in
            checkpoints and ``config.json`` beside the Trainer's.

        Returns
        -------
        list of dict
            :attr:`history`.
        """
        cfg = self.config
        self._check_model(model, needs_validation=val_data is not None)
        if run_config is not None and not (
            dataclasses.is_dataclass(run_config) and not isinstance(run_config, type)
        ):
            raise TypeError(
                f"run_config must be a dataclass instance; got {type(run_config).__name__}."
            )
        self._run_config = run_config
        if cfg.early_stopping_metric is not None and val_data is None:
            raise ValueError(
                f"early_stopping_metric={cfg.early_stopping_metric!r} watches a validation metric, "
                "but no val_data was given. Pass val_data, or set early_stopping_metric=None."
            )
        train_set, train_collate = _as_dataset(train_data, "train_data")
        val_set, val_collate = (
            _as_dataset(val_data, "val_data") if val_data is not None else (None, None)
        )

        ckpt = None
        if resume is not None:
            ckpt = load_checkpoint(self._resume_path(resume))
        if self.out_dir is not None and global_rank() == 0:
            # only rank 0 checks: the others would see the files rank 0 has begun to write
            prepare_output_dir(self.out_dir, overwrite=self.overwrite or resume is not None)

        self.runtime = rt = Runtime(
            cfg.device, cfg.precision, cfg.devices, cfg.num_nodes, cfg.strategy
        )
        rt.launch()
        seed_everything(cfg.seed, cfg.deterministic)
        self.model = model

        train_loader, train_sampler = self._loader(
            train_set, train_collate, cfg.batch_size, cfg.shuffle, cfg.drop_last
        )
        n_batches = len(train_loader)
        if n_batches == 0:
            raise ValueError(
                f"train_data has {len(train_set)} samples, fewer than one batch per process "
                f"(batch_size={cfg.batch_size}, drop_last=True, {rt.world_size} processes). "
                "Lower batch_size or set drop_last=False."
            )
        val_loader = None
        if val_set is not None:
            val_loader, _ = self._loader(
                val_set, val_collate, cfg.val_batch_size or cfg.batch_size, False, False, pad=False
            )
        steps_per_epoch = math.ceil(n_batches / cfg.grad_accum_steps)
        total_steps = cfg.max_epochs * steps_per_epoch
        if cfg.max_steps is not None:
            total_steps = min(total_steps, cfg.max_steps)

        optimizer, scheduler = self._build_optimizer(model)
        if scheduler is None:
            scheduler = self._make_scheduler(optimizer, total_steps)
        fmodel, foptimizer = rt.fabric.setup(self._maybe_compile(model), optimizer)
        fmodel.mark_forward_method("training_step")
        if val_loader is not None:
            fmodel.mark_forward_method("validation_step")

        # loop position
        self.history, self.global_step, self.best_value, self._bad_epochs = [], 0, None, 0
        self.should_stop = self.stopped_early = False
        start_epoch, start_batch = 0, 0
        epoch_sums: dict[str, torch.Tensor] = {}
        epoch_count = 0
        best_state = None
        if ckpt is not None:
            restore_checkpoint(
                ckpt, model, optimizer, scheduler, rng=True, source=f"checkpoint {resume}"
            )
            _check_resume_config(ckpt, cfg, resume)
            t = ckpt.get("trainer", {})
            start_epoch, start_batch = int(t.get("epoch", 0)), int(t.get("batch_in_epoch", 0))
            self.global_step = int(t.get("global_step", 0))
            self.history = list(t.get("history", []))
            self.best_value = t.get("best_value")
            self._bad_epochs = int(t.get("bad_epochs", 0))
            # a run that early stopping ended stays ended
            self.should_stop = self.stopped_early = bool(t.get("stopped_early", False))
            epoch_sums = {k: v.to(rt.device) for k, v in t.get("epoch_sums", {}).items()}
            epoch_count = int(t.get("epoch_count", 0))
            if t.get("world_size", rt.world_size) != rt.world_size:
                _log.warning(
                    "Resuming a run saved with %d process(es) on %d: the data order after the "
                    "checkpoint differs from the original run's.",
                    t["world_size"],
                    rt.world_size,
                )
            best_path = self.out_dir / "checkpoints" / "best.pt" if self.out_dir else None
            if cfg.restore_best and cfg.early_stopping_metric and best_path and best_path.is_file():
                best_state = load_checkpoint(best_path)["model"]
            _log.info(
                "Resumed from %s at epoch %d, step %d.", resume, start_epoch, self.global_step
            )
        if self.out_dir is not None and rt.is_global_zero:
            configs = {"trainer": config_to_dict(cfg)}
            if run_config is not None:
                configs["run"] = config_to_dict(run_config)
            atomic_write_json(self.out_dir / "config.json", configs)

        for cb in self.callbacks:
            cb.on_fit_start(self)
        # only callbacks that look at each step make the loop read values every step
        # (each read waits for the device)
        step_hooks = [
            cb for cb in self.callbacks if type(cb).on_step_end is not Callback.on_step_end
        ]

        accum = cfg.grad_accum_steps
        done = cfg.max_steps is not None and self.global_step >= cfg.max_steps
        epoch = start_epoch
        while epoch < cfg.max_epochs and not done and not self.should_stop:
            self.epoch = epoch
            t0 = time.perf_counter()
            train_sampler.set_epoch(epoch, start=start_batch * cfg.batch_size)
            train_loader.generator.manual_seed(cfg.seed + epoch)
            if start_batch == 0:
                epoch_sums, epoch_count = {}, 0
            fmodel.train()
            bar = progress(
                total=n_batches,
                initial=start_batch,
                desc=f"epoch {epoch + 1}/{cfg.max_epochs}",
                verbose=cfg.verbose,
                leave=False,
                unit="batch",
            )
            batch_idx = start_batch
            step_metrics: dict[str, torch.Tensor] = {}
            for batch in train_loader:
                group_start = batch_idx - batch_idx % accum
                group_size = min(accum, n_batches - group_start)
                is_step = batch_idx - group_start == group_size - 1
                batch = rt.to_device(batch)
                with rt.fabric.no_backward_sync(fmodel, enabled=not is_step and rt.world_size > 1):
                    with rt.autocast():
                        out = _metrics_dict(
                            fmodel.training_step(batch), f"{type(model).__name__}.training_step"
                        )
                    if "loss" not in out:
                        raise KeyError(
                            f"{type(model).__name__}.training_step returned a dict without 'loss' "
                            f"(keys: {sorted(out)}); put the value to minimise under 'loss'."
                        )
                    if not out["loss"].requires_grad:
                        raise TypeError(
                            f"{type(model).__name__}.training_step returned a loss that does not "
                            "depend on any trainable parameter (no grad_fn): return the loss "
                            "tensor itself, not a float or a .detach()ed / .item() value."
                        )
                    rt.fabric.backward(out["loss"] / group_size)
                for k, v in out.items():
                    step_metrics[k] = step_metrics.get(k, 0.0) + v.detach().float() / group_size
                batch_idx += 1
                bar.update(1)
                if not is_step:
                    continue
                if cfg.grad_clip_norm is not None:
                    norm = rt.fabric.clip_gradients(fmodel, foptimizer, max_norm=cfg.grad_clip_norm)
                    step_metrics["grad_norm"] = norm.detach().float()
                foptimizer.step()
                foptimizer.zero_grad(set_to_none=True)
                if scheduler is not None:
                    scheduler.step()
                self.global_step += 1
                for k, v in step_metrics.items():
                    epoch_sums[k] = epoch_sums[k] + v if k in epoch_sums else v
                epoch_count += 1
                # Reading a value waits for the device: do it only every few steps,
                # or every step when callbacks want the values.
                values = None
                if step_hooks or self.global_step % _SYNC_EVERY == 0 or batch_idx == n_batches:
                    values = {k: float(v) for k, v in step_metrics.items()}
                    total = float(epoch_sums["loss"])
                    if not (math.isfinite(values["loss"]) and math.isfinite(total)):
                        raise FloatingPointError(
                            f"The training loss became {values['loss'] if not math.isfinite(values['loss']) else total} "
                            f"at or before step {self.global_step} (epoch {epoch + 1}). Lower lr, "
                            "set grad_clip_norm, or check the data for NaN/inf values."
                        )
                    bar.set_postfix(loss=f"{values['loss']:.4g}")
                step_metrics = {}
                for cb in step_hooks:
                    cb.on_step_end(self, self.global_step, values)
                if step_hooks and rt.world_size > 1:
                    # a callback may stop one process only: all stop together, or DDP deadlocks
                    flag = torch.tensor(float(self.should_stop), device=rt.device)
                    self.should_stop = bool(rt.all_reduce(flag, op="sum") > 0)
                if cfg.max_steps is not None and self.global_step >= cfg.max_steps:
                    done = True
                if done or self.should_stop:
                    break
                if (
                    cfg.checkpoint_every_n_steps
                    and self.global_step % cfg.checkpoint_every_n_steps == 0
                    and batch_idx < n_batches
                ):
                    self._save(
                        "last.pt",
                        model,
                        optimizer,
                        scheduler,
                        {
                            "epoch": epoch,
                            "batch_in_epoch": batch_idx,
                            "epoch_sums": {k: v.cpu() for k, v in epoch_sums.items()},
                            "epoch_count": epoch_count,
                        },
                    )
            bar.close()
            start_batch = 0
            # Stopped inside the epoch (max_steps or a callback): last.pt keeps the true
            # position, so a resumed run finishes this epoch exactly as an uninterrupted one.
            mid_epoch = batch_idx < n_batches
            if mid_epoch:
                self._save(
                    "last.pt",
                    model,
                    optimizer,
                    scheduler,
                    {
                        "epoch": epoch,
                        "batch_in_epoch": batch_idx,
                        "epoch_sums": {k: v.cpu() for k, v in epoch_sums.items()},
                        "epoch_count": epoch_count,
                    },
                )

            # ---- end of epoch: metrics, validation, early stopping, checkpoint
            train_means = {}
            if epoch_sums:
                keys = sorted(epoch_sums)
                means = torch.stack([epoch_sums[k] for k in keys]) / max(epoch_count, 1)
                means = rt.all_reduce(means)  # average over processes
                train_means = {f"train_{k}": v for k, v in zip(keys, means.tolist(), strict=True)}
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "step": self.global_step,
                "lr": float(optimizer.param_groups[0]["lr"]),
                **train_means,
            }
            last_epoch = epoch + 1 == cfg.max_epochs or done or self.should_stop
            if val_loader is not None and ((epoch + 1) % cfg.val_every_n_epochs == 0 or last_epoch):
                val_metrics = self._validate(fmodel, val_loader, type(model).__name__)
                record.update(val_metrics)
                for cb in self.callbacks:
                    cb.on_validation_end(self, val_metrics)
                # a partial epoch's validation is reported, not used to stop or pick best.pt
                improved = False if mid_epoch else self._early_stopping_update(val_metrics)
                if improved and cfg.early_stopping_metric:
                    if cfg.restore_best:
                        best_state = {
                            k: v.detach().cpu().clone() for k, v in model.state_dict().items()
                        }
                    self._save(
                        "best.pt",
                        model,
                        optimizer,
                        scheduler,
                        {"epoch": epoch + 1, "batch_in_epoch": 0},
                    )
            record["time_s"] = round(time.perf_counter() - t0, 4)
            self.history.append(record)
            if cfg.verbose > 0:
                _log.info("epoch %d: %s", epoch + 1, _format_record(record))
            epoch += 1
            self._write_outputs()
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, record)
            if not mid_epoch:  # after the callbacks, so the saved random state is current
                self._save(
                    "last.pt", model, optimizer, scheduler, {"epoch": epoch, "batch_in_epoch": 0}
                )

        if cfg.early_stopping_metric and cfg.restore_best and best_state is not None:
            model.load_state_dict(best_state)
        for cb in self.callbacks:
            cb.on_fit_end(self)
        rt.barrier()
        return self.history

    # ------------------------------------------------------------ validation
    def _validate(self, fmodel: nn.Module, loader: DataLoader, name: str) -> dict[str, float]:
        rt = self.runtime
        fmodel.eval()
        sums: dict[str, torch.Tensor] = {}
        count = 0
        with torch.no_grad():
            # validation is usually short: its bar shows from verbose=2 on
            for batch in progress(
                loader,
                desc="validation",
                verbose=self.config.verbose - 1,
                leave=False,
                unit="batch",
            ):
                with rt.autocast():
                    out = _metrics_dict(
                        fmodel.validation_step(rt.to_device(batch)), f"{name}.validation_step"
                    )
                n = _batch_len(batch)
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + v.detach().float() * n
                count += n
        fmodel.train()
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
            raise KeyError(
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
