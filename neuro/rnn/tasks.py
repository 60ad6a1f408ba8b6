"""N-parity and N-delayed-match-to-sample (N-DMS): memory tasks on binary streams.

Both tasks show a network one bit per time step and ask one question at the
final step, whose answer needs the last ``N`` bits (Khajehabdollahi et al.,
ICLR 2024):

N-parity
    Each sequence draws its own ``p ~ U(0, 1)`` and its bits i.i.d.
    ``Bernoulli(p)``; the label is ``(x[T-N] + ... + x[T-1]) mod 2``, the
    parity of the last ``N`` bits.
N-DMS
    Bits i.i.d. ``Bernoulli(0.5)``; the label is 1 when ``x[T-N] == x[T-1]``
    (the oldest of the last ``N`` bits matches the newest). This is the
    public code's indexing (``vec[-N] == vec[-1]``): the memory span is ``N``
    bits, the same as N-parity's, and ``N = 1`` would compare the last bit
    with itself, so N-DMS needs ``N >= 2``.

A batch has one sequence length ``T``, drawn uniformly from
``N_max + 2 ... 4 N_max + 1`` (``N_max`` the largest N asked for) unless
``seq_len`` fixes it. That is the public code's ``randint(N + 2, 4 N + 2)``,
whose upper end is excluded; every label of the batch (one per N asked for) is
read at its final step.

:func:`make_batch` is the vectorised generator the curricula train on;
:func:`reference_labels` is a direct, loop-per-sequence implementation that
the tests check it against. :class:`ParityEnv` and :class:`DMSEnv` serve the
same tasks one bit at a time through the gymnasium API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from neuro._validation import check_array, check_choice, check_int
from neuro.errors import InputError, InputTypeError

__all__ = ["ENV_IDS", "TASKS", "DMSEnv", "ParityEnv", "check_ns", "make_batch", "reference_labels"]

#: Task names.
TASKS = ("parity", "dms")


def _min_n(task: str) -> int:
    return 2 if task == "dms" else 1


def check_ns(
    task: str,
    ns: Sequence[int] | int,
    seq_len: int | tuple[int, int] | None = None,
    name: str = "N",
) -> list[int]:
    """Validate a task name, its N values and an optional sequence length.

    Parameters
    ----------
    task : str
    ns : int or sequence of int
    seq_len : int or (int, int), optional
    name : str, default="N"
        How messages name the N values (the caller's argument name).

    Returns
    -------
    list of int
        The N values, as given.

    Raises
    ------
    InputError
        Unknown task; an N below 1 (below 2 for N-DMS); a sequence shorter
        than the largest N.
    InputTypeError
        An N or a sequence length that is not an integer.
    """
    check_choice("task", task, TASKS)
    if isinstance(ns, (int, np.integer)):
        ns = [ns]
    elif isinstance(ns, (str, bytes)) or not isinstance(ns, (Sequence, np.ndarray)):
        raise InputTypeError(f"ns must be an int or a sequence of ints; got {ns!r}.")
    ns = list(ns)
    if not ns:
        raise InputError("ns is empty; give at least one N (e.g. ns=[2]).")
    low = _min_n(task)
    for n in ns:
        n = check_int(name, n)
        if n < low:
            why = (
                " (N-DMS with N=1 would compare the last bit with itself)" if task == "dms" else ""
            )
            raise InputError(f"{name} must be >= {low} for the {task} task{why}; got {name}={n}.")
    if seq_len is not None:
        if not isinstance(seq_len, (int, np.integer)) and (
            not isinstance(seq_len, (Sequence, np.ndarray)) or len(seq_len) != 2
        ):
            raise InputError(f"seq_len must be an int or a pair (low, high); got {seq_len!r}.")
        lo, hi = (seq_len, seq_len) if isinstance(seq_len, (int, np.integer)) else seq_len
        lo, hi = check_int("seq_len", lo, minimum=1), check_int("seq_len", hi, minimum=1)
        if hi < lo:
            raise InputError(f"seq_len range must be (low, high) with low <= high; got {seq_len}.")
        if lo < max(ns):
            raise InputError(
                f"seq_len={seq_len} is shorter than N={max(ns)}: the label needs the last N bits. "
                f"Use sequences of at least {max(ns)} steps (the default draws them from "
                f"N+2 ... 4N+1)."
            )
    return [int(n) for n in ns]


def _labels(x: torch.Tensor, task: str, ns: Sequence[int]) -> torch.Tensor:
    """Labels ``(batch, len(ns))`` of bit streams ``x (batch, T)``."""
    if task == "parity":
        csum = torch.cumsum(x.flip(1), dim=1)  # csum[:, k-1] = sum of the last k bits
        return torch.stack([csum[:, n - 1] for n in ns], 1).remainder(2).long()
    return torch.stack([(x[:, -n] == x[:, -1]) for n in ns], 1).long()


def make_batch(
    task: str,
    ns: Sequence[int] | int,
    batch_size: int,
    seq_len: int | tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of bit streams and their labels for every N in ``ns``.

    Parameters
    ----------
    task : {"parity", "dms"}
    ns : int or sequence of int
        The N values to label (one label column each).
    batch_size : int
    seq_len : int or (int, int), optional
        Fixed length, or an inclusive range to draw the batch's length from;
        default ``max(ns) + 2 ... 4 max(ns) + 1`` (the public code's range).
    generator : torch.Generator, optional
        CPU generator for reproducible batches (default: torch's global one).
    device : str or torch.device, default="cpu"
        Where the returned tensors live.

    Returns
    -------
    x : float tensor (batch, T, 1)
        The bits, as the network's input.
    y : long tensor (batch, len(ns))
        ``y[:, j]`` is the label for ``ns[j]``.

    Examples
    --------
    >>> x, y = make_batch("parity", [2, 3], batch_size=4, generator=torch.Generator().manual_seed(0))
    >>> x.shape[0], x.shape[2], y.shape
    (4, 1, torch.Size([4, 2]))
    """
    ns = check_ns(task, ns, seq_len)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InputTypeError(
            f"generator must be a torch.Generator or None; got {type(generator).__name__}."
        )
    n_max = max(ns)
    lo, hi = (
        (n_max + 2, 4 * n_max + 1)  # the public code's randint(N + 2, 4N + 2), end excluded
        if seq_len is None
        else ((seq_len, seq_len) if isinstance(seq_len, (int, np.integer)) else seq_len)
    )
    t = int(torch.randint(int(lo), int(hi) + 1, (1,), generator=generator))
    if task == "parity":
        p = torch.rand(batch_size, 1, generator=generator)
        x = (torch.rand(batch_size, t, generator=generator) < p).float()
    else:
        x = (torch.rand(batch_size, t, generator=generator) < 0.5).float()
    y = _labels(x, task, ns)
    return x[:, :, None].to(device), y.to(device)


def reference_labels(x: np.ndarray, task: str, n: int) -> np.ndarray:
    """The label of each sequence, computed one sequence at a time (for checks).

    Parameters
    ----------
    x : array (batch, T) of 0/1
    task : {"parity", "dms"}
    n : int

    Returns
    -------
    ndarray (batch,) of int
    """
    x = check_array("x", x, ndim=2, shape_hint="(batch, T)")
    if not np.isin(x, (0, 1)).all():
        raise InputError("x must hold bits (0 or 1); got other values.")
    check_ns(task, [n], x.shape[1])
    out = np.empty(len(x), dtype=np.int64)
    for i, seq in enumerate(x):
        bits = [int(b) for b in seq]
        if task == "parity":
            out[i] = sum(bits[len(bits) - n :]) % 2
        else:
            out[i] = int(bits[len(bits) - n] == bits[len(bits) - 1])
    return out


class _MemoryTaskEnv(gym.Env):
    """One bit per step; at the final step the action is the answer.

    Observation: the current bit (``Discrete(2)``). Action: the label
    (``Discrete(2)``); actions before the final step are ignored. Reward: 1
    for the correct answer at the final step, else 0. The episode ends after
    the final step (``terminated=True``); ``info["label"]`` holds the answer
    there, ``info["t"]`` the step and ``info["length"]`` the episode length.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    task = "parity"

    def __init__(self, n: int, seq_len: int | tuple[int, int] | None = None) -> None:
        super().__init__()
        (self.n,) = check_ns(self.task, [n], seq_len, name="n")
        self.seq_len = seq_len
        self.observation_space = gym.spaces.Discrete(2)
        self.action_space = gym.spaces.Discrete(2)
        self._bits: np.ndarray | None = None
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        lo, hi = (
            (self.n + 2, 4 * self.n + 1)
            if self.seq_len is None
            else (
                (self.seq_len, self.seq_len)
                if isinstance(self.seq_len, (int, np.integer))
                else self.seq_len
            )
        )
        length = int(rng.integers(lo, hi + 1))
        p = rng.random() if self.task == "parity" else 0.5
        self._bits = (rng.random(length) < p).astype(np.int64)
        self._t = 0
        return int(self._bits[0]), {"t": 0, "length": length}

    def step(self, action):
        if self._bits is None:
            raise RuntimeError("Call reset() before step().")
        if not self.action_space.contains(action):
            raise InputError(f"action must be 0 or 1 (the label); got {action!r}.")
        if self._t >= len(self._bits) - 1:
            label = int(reference_labels(self._bits[None], self.task, self.n)[0])
            reward = float(int(action) == label)
            info = {"t": self._t, "length": len(self._bits), "label": label}
            self._bits = None
            return 0, reward, True, False, info
        self._t += 1
        return (
            int(self._bits[self._t]),
            0.0,
            False,
            False,
            {"t": self._t, "length": len(self._bits)},
        )


class ParityEnv(_MemoryTaskEnv):
    """N-parity, one bit per step (gymnasium API; see :mod:`neuro.rnn.tasks`).

    Examples
    --------
    >>> env = ParityEnv(n=2)
    >>> obs, info = env.reset(seed=0)
    >>> done = False
    >>> while not done:
    ...     obs, reward, done, truncated, info = env.step(0)
    >>> info["label"] in (0, 1)
    True
    """

    task = "parity"


class DMSEnv(_MemoryTaskEnv):
    """N-DMS, one bit per step (gymnasium API; see :mod:`neuro.rnn.tasks`)."""

    task = "dms"


#: gymnasium ids of the environments: ``gymnasium.make("neuro/NParity-v0", n=3)``.
ENV_IDS = {"neuro/NParity-v0": ParityEnv, "neuro/NDMS-v0": DMSEnv}
for _id, _cls in ENV_IDS.items():
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=f"{__name__}:{_cls.__name__}")
