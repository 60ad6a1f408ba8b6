"""Curricula for the memory tasks: single-head and multi-head, trained with the shared Trainer.

single-head
    One output head. The network trains on one N at a time and moves to
    N + 1 once it solves N; earlier N are no longer trained (and may be
    forgotten).
multi-head
    One output head per N. The network trains on every N from ``n_start``
    to the current one together (cross-entropy summed over the active
    heads); a head for N + 1 joins when all are solved. As in the public
    code's ``cumulative`` curriculum, the first stage can hold
    ``init_heads`` N values (its ``--init_heads``) and each advance add
    ``add_heads`` of them (its ``-dh``/``--add_heads``); both are 1 by
    default.
sliding
    The public code's sliding window (``--curriculum_type sliding``): the
    ``window`` N values ``N - window + 1 ... N`` train together, starting
    from ``n_start ... n_start + window - 1``; when all are solved the
    window moves on by ``stride`` (the code's ``--forget_heads``): the
    ``stride`` smallest N leave and the next ``stride`` join, so earlier N
    are no longer trained. ``window=1`` is the single-head curriculum with
    a head per N.

"Solved", after each epoch, is the paper's rule: accuracy on fresh
validation batches above ``threshold`` both averaged over the active heads
and on the largest N. Training uses the paper's optimiser (SGD, lr 0.05,
momentum 0.1, Nesterov, gradient-norm clip 2.0, batches of 256, 600 steps
per epoch) through :class:`neuro.train.Trainer`, so runs use any device and
precision, and a run killed midway resumes exactly from ``out_dir``
(``resume="last"``): the curriculum's state (current N, the epoch each N was
solved, the taus then) lives in buffers of the trained module and travels
in its checkpoints.

>>> cfg = CurriculumConfig(task="parity", kind="multi", hidden_size=16, n_max=3,
...                        steps_per_epoch=5, batch_size=16, max_epochs=2)
>>> result = train_curriculum(cfg, device="cpu")
>>> [r["N"] for r in result.history]
[2, 2]
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from neuro._validation import check_bool, check_choice, check_float, check_int
from neuro.errors import InputError, InputTypeError
from neuro.io import check_overwrite
from neuro.results import Result, jsonable
from neuro.rnn.models import (
    MODELS,
    NONLINEARITIES,
    ContinuousRNN,
    LeakyRNN,
    RecurrentNetwork,
    build_model,
    check_network,
    check_tau_init,
)
from neuro.rnn.tasks import TASKS, check_ns, make_batch
from neuro.train import (
    Callback,
    Trainer,
    get_logger,
    is_rank_zero,
    load_checkpoint,
    save_checkpoint,
)

__all__ = [
    "CURRICULA",
    "CurriculumConfig",
    "CurriculumResult",
    "evaluate",
    "load_network",
    "train_curriculum",
]

_log = get_logger(__name__)

#: Curriculum kinds.
CURRICULA = ("single", "multi", "sliding")


@dataclass
class CurriculumConfig:
    """Settings of one curriculum run (saved in its checkpoints).

    Parameters
    ----------
    task : {"parity", "dms"}, default="parity"
    kind : {"single", "multi", "sliding"}, default="multi"
        Single-head, multi-head or sliding-window curriculum (see the module
        docstring).
    n_start : int, default=2
        First N (the paper starts at 2).
    n_max : int, default=20
        Largest N; the run stops once it is solved. The multi-head model
        gets ``n_max - n_start + 1`` heads.
    threshold : float, default=0.98
        Accuracy, in (0, 1], above which N counts as solved.
    model : {"leaky", "mod", "continuous", "gru", "lstm"}, default="leaky"
        :class:`~neuro.rnn.models.LeakyRNN` (the paper's), :class:`~neuro.rnn.models.ModRNN`
        (the nonlinearity inside the leak, the code's ``RNN_Mod``),
        :class:`~neuro.rnn.models.ContinuousRNN` (``ModRNN`` with inputs
        duplicated, the code's ``RNN_Continuous``), GRU or LSTM. GRU and LSTM
        baselines learn slowly with SGD at ``lr=0.05``; ``lr=0.5`` trains a
        32-unit GRU to N=4 parity in 13 epochs of 50 batches.
    hidden_size : int, default=500
        The paper's size; 50-100 suffice for N up to about 6 on a CPU.
    tau_init : (float, float), default=(1.0, 2.0)
        Leaky RNN: initial taus uniform in this range (>= 1).
    train_tau : bool, default=True
        Leaky RNN: train the taus (False: fixed at their start).
    tau_parametrization : {"clamp", "softplus"}, default="clamp"
        See :class:`~neuro.rnn.models.LeakyRNN`.
    nonlinearity : {"leaky_relu", "relu", "tanh", "sigmoid"}, default="leaky_relu"
        Of the leaky networks (the code's ``--afunc``).
    duplicates : int or tuple of int, default=(1,)
        ``model="continuous"``: the duplication factors ``k`` (the code's
        ``-dup 2,3,4``). Each training step takes one batch per ``k``, in
        this order, with an optimiser step after each (so an epoch is
        ``steps_per_epoch * len(duplicates)`` steps), and validation pools
        ``val_batches`` batches per ``k``, as the code does. The trained
        network is left at the first ``k``.
    window : int, default=1
        ``kind="sliding"``: N values trained together (the code's
        ``--init_heads``, default 1).
    stride : int, default=1
        ``kind="sliding"``: N values the window moves by (the code's
        ``--forget_heads``, default 1); at most ``window``. The last move
        stops at ``n_max``.
    init_heads : int, default=1
        ``kind="multi"``: N values of the first stage, ``n_start ...
        n_start + init_heads - 1`` (the code's ``--init_heads`` for its
        cumulative curriculum); other kinds ignore it, so that one config
        can be compared across kinds.
    add_heads : int, default=1
        ``kind="multi"``: N values (heads) added when the largest is solved
        (the code's ``-dh``/``--add_heads``; other kinds ignore it); the last
        advance stops at ``n_max``. The N values passed over are trained with the rest but
        have no ``solved_epoch`` of their own.
    sliding_heads : {"positional", "per_n"}, default="positional"
        ``kind="sliding"``: "positional" is the public code's (``window``
        heads, head ``j`` answering the ``j``-th N of the current window, so
        a head is retrained for another N each time the window moves);
        "per_n" gives every N its own head (N's head is ``N - n_start``), so a
        head keeps its meaning as the window moves and retention of earlier N
        can be read from it.
    max_epochs : int, default=100
        Budget of epochs.
    steps_per_epoch : int, default=600
    batch_size : int, default=256
    val_batches : int, default=50
        Fresh batches of ``batch_size`` sequences to measure accuracy on
        after each epoch. The public code's 50 x 256 = 12,800 sequences put
        the standard error of an accuracy near the 0.98 threshold at
        sqrt(0.98 x 0.02 / 12,800) = 0.0012, well below the margins the
        decision turns on; the former default of 4 batches (1,024 sequences)
        gave 0.0044, so N could advance on a lucky validation.
    lr : float, default=0.05
    momentum : float, default=0.1
    grad_clip_norm : float, default=2.0
    seq_len : int or (int, int) or None, default=None
        Fixed sequence length or range; None draws each batch's length from
        ``N + 2 ... 4 N + 1`` with N the largest active N (the public code's).
    """

    task: str = "parity"
    kind: str = "multi"
    n_start: int = 2
    n_max: int = 20
    threshold: float = 0.98
    model: str = "leaky"
    hidden_size: int = 500
    tau_init: tuple[float, float] = (1.0, 2.0)
    train_tau: bool = True
    tau_parametrization: str = "clamp"
    max_epochs: int = 100
    steps_per_epoch: int = 600
    batch_size: int = 256
    val_batches: int = 50
    lr: float = 0.05
    momentum: float = 0.1
    grad_clip_norm: float = 2.0
    seq_len: Any = None
    nonlinearity: str = "leaky_relu"
    duplicates: Any = (1,)
    window: int = 1
    stride: int = 1
    init_heads: int = 1
    add_heads: int = 1
    sliding_heads: str = "positional"

    def __post_init__(self) -> None:
        check_choice("task", self.task, TASKS)
        check_choice("kind", self.kind, CURRICULA)
        check_choice("model", self.model, MODELS)
        check_choice("tau_parametrization", self.tau_parametrization, ("clamp", "softplus"))
        check_choice("nonlinearity", self.nonlinearity, NONLINEARITIES)
        check_choice("sliding_heads", self.sliding_heads, ("per_n", "positional"))
        self.window = check_int("window", self.window, minimum=1)
        self.stride = check_int("stride", self.stride, minimum=1)
        self.init_heads = check_int("init_heads", self.init_heads, minimum=1)
        self.add_heads = check_int("add_heads", self.add_heads, minimum=1)

        if self.stride > self.window:
            raise InputError(
                f"stride must be at most window (got stride {self.stride}, window {self.window}): "
                "the window cannot move past N it has not trained (the public code raises the "
                "window to the stride)."
            )
        self.duplicates = _check_duplicates(self.duplicates, self.model)
        (self.n_start,) = check_ns(self.task, [self.n_start], name="n_start")
        (self.n_max,) = check_ns(self.task, [self.n_max], name="n_max")
        if self.n_max < self.first_level:
            what = {
                "sliding": f"n_start + window - 1 ({self.first_level})",
                "multi": f"n_start + init_heads - 1 ({self.first_level})",
            }.get(self.kind, "")
            if self.first_level == self.n_start:  # one N to start with: say it plainly
                what = ""
            raise InputError(
                f"n_max ({self.n_max}) must be >= {what or f'n_start ({self.n_start})'}."
            )
        if isinstance(self.seq_len, list):
            self.seq_len = tuple(self.seq_len)
        check_ns(self.task, [self.n_start, self.n_max], self.seq_len)
        t = check_float("threshold", self.threshold)
        if not 0 < t <= 1:
            raise InputError(
                f"threshold must be an accuracy in (0, 1] (e.g. 0.98, the paper's); got {t!r}."
            )
        self.threshold = t
        self.train_tau = check_bool("train_tau", self.train_tau)
        for name in ("hidden_size", "max_epochs", "steps_per_epoch", "batch_size", "val_batches"):
            setattr(self, name, check_int(name, getattr(self, name), minimum=1))
        check_float("lr", self.lr, minimum=0.0, strict_minimum=True)
        check_float("momentum", self.momentum, minimum=0.0)
        check_float("grad_clip_norm", self.grad_clip_norm, minimum=0.0, strict_minimum=True)
        self.tau_init = check_tau_init(self.tau_init)

    @property
    def n_heads(self) -> int:
        """Output heads the curriculum needs: 1 (single-head), ``window`` (sliding, positional
        heads) or one per N."""
        if self.kind == "single":
            return 1
        if self.kind == "sliding" and self.sliding_heads == "positional":
            return self.window
        return self.n_max - self.n_start + 1

    @property
    def first_level(self) -> int:
        """The largest N trained in the first epoch: ``n_start + window - 1`` (sliding),
        ``n_start + init_heads - 1`` (multi), ``n_start`` (single)."""
        extra = {"sliding": self.window, "multi": self.init_heads}.get(self.kind, 1)
        return self.n_start + extra - 1

    def next_level(self, n: int) -> int:
        """The largest N trained once ``n`` is solved, at most ``n_max``: ``n + stride``
        (sliding), ``n + add_heads`` (multi) or ``n + 1`` (single)."""
        n = self._check_level(n)
        step = {"sliding": self.stride, "multi": self.add_heads}.get(self.kind, 1)
        return min(n + step, self.n_max)

    def _check_level(self, n: int) -> int:
        return check_int("n", n, minimum=self.n_start, maximum=self.n_max)

    def active_ns(self, n: int) -> list[int]:
        """The N values trained together when the curriculum stands at ``n`` (its largest N).

        >>> CurriculumConfig(kind="sliding", window=3, n_max=9).active_ns(6)
        [4, 5, 6]
        """
        n = self._check_level(n)
        if self.kind == "single":
            return [n]
        if self.kind == "sliding":
            return list(range(max(n - self.window + 1, self.n_start), n + 1))
        return list(range(self.n_start, n + 1))

    def head_of(self, n: int, level: int | None = None) -> int:
        """Index of the head that answers N = ``n`` (when the curriculum stands at ``level``).

        Only sliding positional heads depend on ``level`` (default: ``n``,
        where ``n`` is the window's last N, so its head is ``window - 1``).
        """
        n = self._check_level(n)
        if self.kind == "single":
            return 0
        if self.kind == "sliding" and self.sliding_heads == "positional":
            level = n if level is None else self._check_level(level)
            ns = self.active_ns(level)
            if n not in ns:
                raise InputError(f"N={n} is not in the window {ns} at level {level}.")
            return self.window - 1 - (level - n)
        return n - self.n_start

    def build_model(self) -> RecurrentNetwork:
        """A fresh network of ``model`` with ``hidden_size`` neurons and :attr:`n_heads` heads."""
        return build_model(
            self.model,
            hidden_size=self.hidden_size,
            n_heads=self.n_heads,
            tau_init=self.tau_init,
            train_tau=self.train_tau,
            tau_parametrization=self.tau_parametrization,
            nonlinearity=self.nonlinearity,
            duplicate=self.duplicates[0],
        )


def _check_duplicates(duplicates, model: str) -> tuple[int, ...]:
    """``duplicates`` as a non-empty tuple of ints >= 1; other than ``(1,)`` only for continuous."""
    if isinstance(duplicates, (int, np.integer)) and not isinstance(duplicates, bool):
        duplicates = (duplicates,)
    if isinstance(duplicates, (str, bytes)) or not isinstance(duplicates, (list, tuple)):
        raise InputError(
            f"duplicates must be an int or a sequence of ints >= 1 (e.g. (2, 3, 4)); got "
            f"{duplicates!r}."
        )
    out = tuple(check_int("duplicates", k, minimum=1) for k in duplicates)
    if not out:
        raise InputError("duplicates must hold at least one factor (e.g. (1,)); got ().")
    if model != "continuous" and out != (1,):
        raise InputError(
            f"duplicates={out} needs model='continuous' (the network that scales its taus by "
            f"the duplication); got model={model!r}."
        )
    return out


class _CurriculumModule(nn.Module):
    """The network, its loss, and the curriculum's state (as buffers, so checkpoints hold it)."""

    def __init__(self, network: RecurrentNetwork, config: CurriculumConfig) -> None:
        super().__init__()
        self.network = network
        self.config = config
        n_levels = config.n_max - config.n_start + 1
        self.register_buffer("level", torch.tensor(config.first_level))
        self.register_buffer("epoch_counter", torch.tensor(0))
        self.register_buffer("solved_epoch", torch.full((n_levels,), -1))
        taus = torch.full((n_levels, network.hidden_size), float("nan"))
        self.register_buffer("solved_taus", taus)
        self.refresh()

    def refresh(self) -> None:
        """Mirror the state buffers in Python ints, so each step reads them without a device sync."""
        self.level_now, self.epoch_now = int(self.level), int(self.epoch_counter)

    def active(self) -> tuple[list[int], list[int]]:
        ns = self.config.active_ns(self.level_now)
        return ns, [self.config.head_of(k, self.level_now) for k in ns]

    def _step(self, batch) -> dict[str, torch.Tensor]:
        x, y = batch[0][0], batch[1][0]  # each dataset item is a whole batch
        if len(batch) > 2:  # the duplication factor of this batch (continuous model)
            self.network.duplicate = int(batch[2][0])
        ns, heads = self.active()
        logits = self.network(x, heads)  # (B, k, 2)
        losses = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(0)  # (k,)
        acc = (logits.argmax(-1) == y).float().mean(0)
        out = {"loss": losses.sum(), "acc_mean": acc.mean().detach(), "acc_last": acc[-1].detach()}
        return out | {f"acc_N{n}": a for n, a in zip(ns, acc.detach(), strict=True)}

    def training_step(self, batch):
        return self._step(batch)

    def validation_step(self, batch):
        out = self._step(batch)
        out["N"] = self.level.float()
        return out


class _TaskBatches(Dataset):
    """``length`` batches of the curriculum's current task, each seeded by (seed, epoch, index).

    With a continuous model the batches cycle through ``config.duplicates``
    (``length`` batches per factor), and each carries its factor.
    """

    def __init__(self, module: _CurriculumModule, length: int, seed: int) -> None:
        self.module, self.seed = module, seed
        cfg = module.config
        self.duplicates = cfg.duplicates if _is_continuous(module.network, cfg) else ()
        self.length = length * max(1, len(self.duplicates))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        cfg = self.module.config
        ns, _ = self.module.active()
        epoch = self.module.epoch_now
        gen = torch.Generator().manual_seed(
            int(np.random.SeedSequence([self.seed, epoch + 1, i]).generate_state(1)[0])
        )
        x, y = make_batch(cfg.task, ns, cfg.batch_size, cfg.seq_len, generator=gen)
        if self.duplicates:
            return x, y, self.duplicates[i % len(self.duplicates)]
        return x, y


def _is_continuous(network, config) -> bool:
    return config.model == "continuous" and isinstance(network, ContinuousRNN)


class _Advance(Callback):
    """After each validation: record a solved N and move on (or stop at ``n_max``)."""

    def __init__(self, module: _CurriculumModule, snapshot_dir: Path | None, verbose: int):
        self.module, self.snapshot_dir, self.verbose = module, snapshot_dir, verbose
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def on_fit_start(self, trainer) -> None:
        self.module.refresh()  # after a resume restored the buffers
        # a resumed run that had already solved n_max stays finished
        if int(self.module.solved_epoch[-1]) >= 0:
            trainer.should_stop = True

    def on_validation_end(self, trainer, metrics) -> None:
        m, cfg = self.module, self.module.config
        if not (
            metrics["val_acc_mean"] > cfg.threshold and metrics["val_acc_last"] > cfg.threshold
        ):
            return
        n = m.level_now
        i = n - cfg.n_start
        m.solved_epoch[i] = m.epoch_now
        if isinstance(m.network, LeakyRNN):
            m.solved_taus[i] = m.network.taus.detach().to(m.solved_taus.device)
        state = {k: v.detach().cpu().clone() for k, v in m.network.state_dict().items()}
        self.snapshots[n] = state
        if self.snapshot_dir is not None and is_rank_zero():
            save_checkpoint(self.snapshot_dir / f"N{n}.pt", {"model": state, "N": n})
        done = n >= cfg.n_max
        if done:
            trainer.should_stop = True
        else:
            m.level.fill_(cfg.next_level(n))
            m.refresh()
        if self.verbose > 0:
            _log.info(
                "N=%d solved in epoch %d (accuracy %.3f)%s",
                n,
                m.epoch_now + 1,
                metrics["val_acc_last"],
                "; n_max reached" if done else f"; now training N={int(m.level)}",
            )

    def on_epoch_end(self, trainer, epoch, record) -> None:
        self.module.epoch_counter.add_(1)
        self.module.refresh()


@dataclass
class CurriculumResult(Result):
    """What a curriculum run produced (a :class:`~neuro.results.Result`).

    ``summary()`` gives the run's figures as JSON values, ``format_table()``
    the N solved and when, ``tables()`` the per-epoch ``history``, ``plot()``
    the ``curriculum`` figure, and ``save(folder)`` writes them with the
    network (``network.pt``) and its snapshots (``snapshots/N{n}.pt``).

    Attributes
    ----------
    config : CurriculumConfig
    network : RecurrentNetwork
        The trained network (on the CPU).
    history : list of dict
        One record per epoch: ``N`` (the N trained that epoch), ``val_acc_mean``,
        ``val_acc_last``, ``val_acc_N{n}`` per active N, ``train_loss``, ...
    solved_epoch : dict
        ``{N: epoch (1-based) in which N was solved}``.
    solved_taus : dict
        Leaky RNN: ``{N: taus (hidden,) when N was solved}``.
    snapshots : dict
        ``{N: state_dict of the network when N was solved}``.
    """

    config: CurriculumConfig
    network: RecurrentNetwork
    history: list[dict[str, Any]]
    solved_epoch: dict[int, int] = field(default_factory=dict)
    solved_taus: dict[int, np.ndarray] = field(default_factory=dict)
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    @property
    def n_reached(self) -> int:
        """The largest N solved (``n_start - 1`` if none was)."""
        return max(self.solved_epoch, default=self.config.n_start - 1)

    def n_over_epochs(self) -> np.ndarray:
        """The N trained in each epoch, ``(epochs,)``."""
        return np.array([int(r["N"]) for r in self.history])

    def network_at(self, n: int) -> RecurrentNetwork:
        """A copy of the network as it was when N = ``n`` was solved."""
        if n not in self.snapshots:
            raise InputError(f"N={n} was not solved in this run; solved: {sorted(self.snapshots)}.")
        net = copy.deepcopy(self.network)  # same class and sizes as the trained network
        net.load_state_dict(self.snapshots[n])
        return net.eval()

    def summary(self) -> dict[str, Any]:
        """The run's figures as plain JSON values.

        Returns
        -------
        dict
            ``task``, ``kind``, ``model``, ``epochs``, ``n_reached``,
            ``solved_epoch`` (``{"N": epoch}``), ``mean_tau_at_solve`` (leaky
            RNN) and ``config`` (every setting of the run).
        """
        out: dict[str, Any] = {
            "task": self.config.task,
            "kind": self.config.kind,
            "model": self.config.model,
            "epochs": len(self.history),
            "n_reached": self.n_reached,
            "solved_epoch": {str(k): v for k, v in sorted(self.solved_epoch.items())},
        }
        if self.solved_taus:
            out["mean_tau_at_solve"] = {
                str(k): float(np.mean(v)) for k, v in sorted(self.solved_taus.items())
            }
        out["config"] = dataclasses.asdict(self.config)
        return jsonable(out)

    def format_table(self) -> str:
        """The N solved, in which epoch, and (leaky RNN) the mean trained tau then."""
        cfg = self.config
        lines = [
            f"{cfg.kind}-head curriculum on {cfg.task}, {cfg.model} network of "
            f"{self.network.hidden_size} neurons: N={self.n_reached} reached in "
            f"{len(self.history)} epoch(s)",
            f"{'N':>4}{'solved in epoch':>17}{'mean tau':>10}",
        ]
        for n, epoch in sorted(self.solved_epoch.items()):
            tau = f"{float(np.mean(self.solved_taus[n])):>10.3f}" if n in self.solved_taus else ""
            lines.append(f"{n:>4}{epoch:>17}{tau}")
        return "\n".join(lines)

    def tables(self) -> dict[str, pd.DataFrame]:
        """``history``: one row per epoch (``history.csv``)."""
        return {"history": pd.DataFrame(self.history)} if self.history else {}

    def plot(self) -> dict[str, Any]:
        """``curriculum``: N and accuracy over the epochs."""
        from neuro.rnn import plots

        return {"curriculum": plots.plot_curriculum({self.config.kind: self})}

    def _save_extra(self, folder: Path, overwrite: bool) -> None:
        """Write ``network.pt`` and ``snapshots/N{n}.pt`` (checkpoints: ``"model"`` state_dicts).

        ``network.pt`` also holds the run's ``config``; :func:`load_network`
        reads it (and a snapshot, given the config) back into a network.
        """
        state = {k: v.detach().cpu() for k, v in self.network.state_dict().items()}
        path = check_overwrite(folder / "network.pt", overwrite, what="network file")
        save_checkpoint(path, {"model": state, "config": self.config})
        for n, snapshot in sorted(self.snapshots.items()):
            path = check_overwrite(folder / "snapshots" / f"N{n}.pt", overwrite, what="snapshot")
            save_checkpoint(path, {"model": snapshot, "N": n})


def load_network(
    path: str | os.PathLike, config: CurriculumConfig | None = None
) -> RecurrentNetwork:
    """The trained network in ``network.pt`` (or a snapshot ``N{n}.pt``) written by a result's ``save``.

    Parameters
    ----------
    path : str or path-like
        ``<folder>/network.pt`` (it holds its config) or ``<folder>/snapshots/N{n}.pt``.
    config : CurriculumConfig, optional
        The run's config; needed for a snapshot, which holds only the weights.

    Returns
    -------
    RecurrentNetwork
        Built by ``config.build_model()`` and loaded with the saved weights
        (checked to fit exactly), in eval mode on the CPU.

    Raises
    ------
    CheckpointError
        A missing, damaged or foreign file, or weights of another architecture.
    InputError
        A snapshot given without ``config``.
    """
    from neuro.train.checkpoint import check_model_state, config_from_dict, load_checkpoint

    ckpt = load_checkpoint(path)
    if config is None:
        if "config" not in ckpt:
            raise InputError(
                f"{str(path)!r} holds weights but no config (a snapshot); pass the run's "
                "config=CurriculumConfig(...), e.g. load_network(path, result.config)."
            )
        config = config_from_dict(CurriculumConfig, ckpt["config"])
    network = config.build_model()
    check_model_state(network, ckpt, source=str(path))
    network.load_state_dict(ckpt["model"])
    return network.eval()


def train_curriculum(
    config: CurriculumConfig | None = None,
    *,
    network: RecurrentNetwork | None = None,
    out_dir: str | Path | None = None,
    resume: str | Path | None = None,
    overwrite: bool = False,
    device: str = "auto",
    precision: str = "32",
    seed: int = 0,
    verbose: int = 0,
) -> CurriculumResult:
    """Train a network through a curriculum until ``n_max`` is solved or the epochs run out.

    Parameters
    ----------
    config : CurriculumConfig, optional
        Default: the paper's settings on N-parity, multi-head.
    network : RecurrentNetwork, optional
        Default ``config.build_model()``; it needs ``config.n_heads`` heads.
    out_dir : path, optional
        Where the Trainer writes ``config.json``, ``metrics.jsonl`` and
        checkpoints, and where ``snapshots/N{n}.pt`` keep the network as
        each N was solved. Needed to resume.
    resume : "last" or path, optional
        Continue a killed run in ``out_dir`` exactly.
    overwrite : bool, default=False
        Allow writing into a non-empty ``out_dir``.
    device, precision, seed, verbose
        As for :class:`neuro.train.Trainer`.

    Returns
    -------
    CurriculumResult
    """
    config = CurriculumConfig() if config is None else config
    if not isinstance(config, CurriculumConfig):
        raise InputTypeError(f"config must be a CurriculumConfig; got {type(config).__name__}.")
    if network is not None:
        check_network(network)
    if out_dir is not None and not isinstance(out_dir, (str, os.PathLike)):
        raise InputTypeError(f"out_dir must be a path or None; got {type(out_dir).__name__}.")
    if resume is not None and out_dir is None and str(resume) == "last":
        raise InputError('resume="last" needs out_dir, the folder of the run to continue.')
    overwrite = check_bool("overwrite", overwrite)
    seed = check_int("seed", seed, minimum=0)
    torch.manual_seed(seed)
    network = config.build_model() if network is None else network
    if network.n_heads < config.n_heads:
        raise InputError(
            f"The {config.kind}-head curriculum up to N={config.n_max} needs {config.n_heads} "
            f"heads; the network has {network.n_heads}."
        )
    module = _CurriculumModule(network, config)
    snap_dir = Path(out_dir) / "snapshots" if out_dir is not None else None
    advance = _Advance(module, snap_dir, verbose)
    trainer = Trainer(
        out_dir=out_dir,
        overwrite=overwrite,
        callbacks=[advance],
        optimizer=lambda params: torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0
        ),
        scheduler=False,
        max_epochs=config.max_epochs,
        batch_size=1,
        shuffle=False,
        grad_clip_norm=config.grad_clip_norm,
        seed=seed,
        device=device,
        precision=precision,
        verbose=verbose,
    )
    history = trainer.fit(
        module,
        _TaskBatches(module, config.steps_per_epoch, seed),
        _TaskBatches(module, config.val_batches, seed + 1_000_003),
        resume=resume,
        run_config=config,
    )
    module = module.cpu()
    if _is_continuous(network, config):
        network.duplicate = config.duplicates[0]
    solved = {
        config.n_start + i: int(e) + 1 for i, e in enumerate(module.solved_epoch.tolist()) if e >= 0
    }
    if snap_dir is not None:  # snapshots written before a resume (only of N this run solved)
        for n in solved:
            path = snap_dir / f"N{n}.pt"
            if n not in advance.snapshots and path.is_file():
                advance.snapshots[n] = load_checkpoint(path)["model"]
    taus = {}
    if isinstance(network, LeakyRNN):
        taus = {n: module.solved_taus[n - config.n_start].numpy().copy() for n in solved}
    result = CurriculumResult(
        config=config,
        network=network.cpu().eval(),
        history=[{**r, "N": round(r.get("val_N", 0))} for r in history],
        solved_epoch=solved,
        solved_taus=taus,
        snapshots=advance.snapshots,
    )
    if out_dir is not None:
        from neuro.io import atomic_write_json

        atomic_write_json(Path(out_dir) / "curriculum.json", result.summary())
    return result


@torch.no_grad()
def evaluate(
    network: RecurrentNetwork,
    task: str,
    n: int,
    head: int = 0,
    n_sequences: int = 1024,
    seq_len: Any = None,
    seed: int = 0,
    batch_size: int = 256,
) -> float:
    """Accuracy of ``network``'s ``head`` on N = ``n`` over fresh seeded sequences.

    The same ``seed`` gives the same sequences and initial states, so two
    networks (or one before and after a change) are compared on equal terms.

    Sequences are drawn as in training for that N (length ``n + 2 ... 4 n + 1``
    unless ``seq_len``), in batches of ``batch_size``.

    Parameters
    ----------
    network : RecurrentNetwork
    task : {"parity", "dms"}
    n : int
    head : int, default=0
        The head that answers N = ``n`` (``config.head_of(n)``).
    n_sequences : int, default=1024
    seq_len : int or (int, int), optional
    seed : int, default=0
    batch_size : int, default=256

    Returns
    -------
    float
        The fraction of sequences answered correctly.
    """
    check_network(network)
    check_ns(task, [n], seq_len, name="n")
    n_sequences = check_int("n_sequences", n_sequences, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    head = check_int("head", head, minimum=0)
    if head >= network.n_heads:
        raise InputError(
            f"head={head} but the network has {network.n_heads} head(s), 0..{network.n_heads - 1}."
        )
    network.eval()
    device = next(network.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    correct = total = 0
    cuda = []
    if device.type == "cuda":
        cuda = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=cuda):  # the random initial states, seeded too
        torch.manual_seed(seed)
        while total < n_sequences:
            b = min(batch_size, n_sequences - total)
            x, y = make_batch(task, [n], b, seq_len, generator=gen, device=device)
            pred = network(x, [head]).argmax(-1)
            correct += int((pred == y).sum())
            total += b
    return correct / total
