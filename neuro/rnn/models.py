"""Recurrent networks for the memory tasks: a leaky RNN with a trainable timescale per neuron,
and GRU / LSTM baselines behind the same interface.

Every model here maps bit streams ``x (batch, T, input_size)`` to hidden
activity ``(batch, T, hidden_size)`` and reads any subset of its two-class
output heads from the last step:

>>> model = LeakyRNN(hidden_size=16, n_heads=3)
>>> x = torch.rand(4, 9, 1).round()
>>> model(x, heads=[0, 2]).shape  # (batch, heads, classes)
torch.Size([4, 2, 2])
>>> model.hidden_states(x).shape
torch.Size([4, 9, 16])
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from neuro._validation import check_bool, check_choice, check_float, check_int
from neuro.errors import InputError, InputTypeError

__all__ = [
    "MODELS",
    "NONLINEARITIES",
    "ContinuousRNN",
    "GRUNetwork",
    "LSTMNetwork",
    "LeakyRNN",
    "ModRNN",
    "RecurrentNetwork",
    "build_model",
    "check_network",
    "check_tau_init",
]

#: Model names accepted by :func:`build_model`.
MODELS = ("leaky", "mod", "continuous", "gru", "lstm")

#: Nonlinearities of the leaky networks (the public code's ``--afunc`` choices).
NONLINEARITIES = ("leaky_relu", "relu", "tanh", "sigmoid")


def check_tau_init(tau_init) -> tuple[float, float]:
    """``tau_init`` (a number or a pair) as ``(low, high)`` with ``1 <= low <= high``.

    Parameters
    ----------
    tau_init : float or (float, float)

    Returns
    -------
    (float, float)

    Raises
    ------
    InputError
        Not a number or a pair; an end below 1; ``high < low``.
    """
    if isinstance(tau_init, Real) and not isinstance(tau_init, bool):
        pair = (tau_init, tau_init)
    elif isinstance(tau_init, (str, bytes)) or not isinstance(tau_init, Iterable):
        pair = ()
    else:
        pair = tuple(tau_init)
    if len(pair) != 2:
        raise InputError(f"tau_init must be a number or a pair (low, high); got {tau_init!r}.")
    lo, hi = (check_float("tau_init", v.item() if hasattr(v, "item") else v) for v in pair)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 1 or hi < lo:
        raise InputError(
            f"tau_init must be a range (low, high) with 1 <= low <= high (a timescale below "
            f"one step is not a leaky neuron); got {tau_init!r}."
        )
    return lo, hi


def check_network(network, name: str = "network") -> RecurrentNetwork:
    """``network`` if it is a :class:`RecurrentNetwork`, else an :class:`InputTypeError`."""
    if not isinstance(network, RecurrentNetwork):
        raise InputTypeError(
            f"{name} must be a neuro.rnn network (LeakyRNN, GRUNetwork, LSTMNetwork or a "
            f"RecurrentNetwork subclass); got {type(network).__name__}."
        )
    return network


class RecurrentNetwork(nn.Module):
    """Base class: a recurrent core plus ``n_heads`` linear two-class heads.

    Subclasses implement ``_run(x, state) -> (activity, state)`` (the input
    shape is checked by :meth:`run` first). The heads read the hidden state at
    the last step.
    """

    def __init__(self, input_size: int, hidden_size: int, n_heads: int, n_classes: int = 2):
        super().__init__()
        self.input_size = check_int("input_size", input_size, minimum=1)
        self.hidden_size = check_int("hidden_size", hidden_size, minimum=1)
        check_int("n_heads", n_heads, minimum=1)
        self.heads = nn.ModuleList(nn.Linear(hidden_size, n_classes) for _ in range(n_heads))

    @property
    def n_heads(self) -> int:
        return len(self.heads)

    def run(self, x: torch.Tensor, state=None) -> tuple[torch.Tensor, object]:
        """Hidden activity ``(batch, T, hidden_size)`` and the state to continue from.

        ``state`` is what a previous call returned (None: the initial state),
        so long inputs can be fed in chunks.
        """
        return self._run(self._check_input(x), state)

    def _check_input(self, x) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise InputTypeError(
                f"x must be a torch.Tensor of shape (batch, T, {self.input_size}); got "
                f"{type(x).__name__}."
            )
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise InputError(
                f"x must have shape (batch, T, {self.input_size}); got {tuple(x.shape)}. Bit "
                "streams from neuro.rnn.tasks.make_batch have this shape."
            )
        return x

    def _run(self, x: torch.Tensor, state) -> tuple[torch.Tensor, object]:
        raise NotImplementedError(
            f"{type(self).__name__} must implement _run(x, state) -> (activity, state)."
        )

    def hidden_states(self, x: torch.Tensor, state=None) -> torch.Tensor:
        """Hidden activity ``(batch, T, hidden_size)`` for input ``x (batch, T, input_size)``."""
        return self.run(x, state)[0]

    def final_state(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden state at the last step, ``(batch, hidden_size)``."""
        return self.hidden_states(x)[:, -1]

    def read(self, h: torch.Tensor, heads: Sequence[int] | None = None) -> torch.Tensor:
        """Logits ``(batch, len(heads), n_classes)`` of hidden states ``h (batch, hidden)``."""
        idx = range(self.n_heads) if heads is None else [check_int("heads", i) for i in heads]
        if any(i < 0 or i >= self.n_heads for i in idx):
            raise InputError(f"heads must lie in 0..{self.n_heads - 1}; got {list(idx)}.")
        return torch.stack([self.heads[i](h) for i in idx], 1)

    def forward(self, x: torch.Tensor, heads: Sequence[int] | None = None) -> torch.Tensor:
        """Logits ``(batch, len(heads), n_classes)`` at the last step (all heads by default)."""
        return self.read(self.final_state(x), heads)


class LeakyRNN(RecurrentNetwork):
    """Leaky rate network with one trainable timescale ``tau_i >= 1`` per neuron.

    ``h_t = LeakyReLU((1 - 1/tau) * h_{t-1} + (W_rec h_{t-1} + W_in x_t + b) / tau)``

    with ``W_rec``'s diagonal held at zero (no self-connections: a neuron's
    own memory lives in its ``tau`` only), as in Khajehabdollahi et al.
    (ICLR 2024). The initial state is ``0.1 U(0, 1)`` per neuron and sample.

    Parameters
    ----------
    input_size : int, default=1
    hidden_size : int, default=500
        The paper's size; 50-100 neurons suffice for N up to about 6 on a CPU.
    n_heads : int, default=1
        Two-class output heads (the multi-head curriculum uses one per N).
    tau_init : (float, float), default=(1.0, 2.0)
        Taus start uniform in this range (the paper's ``1 + U(0, 1)``); both
        ends must be >= 1.
    train_tau : bool, default=True
        False freezes the taus at their initial values.
    tau_parametrization : {"clamp", "softplus"}, default="clamp"
        How ``tau >= 1`` is kept: "clamp" stores ``tau`` and uses
        ``max(tau, 1)`` (the paper's choice; no gradient while below 1);
        "softplus" stores ``r`` with ``tau = 1 + softplus(r)`` (smooth, never
        stuck).
    negative_slope : float, default=0.01
        Of the LeakyReLU.
    nonlinearity : {"leaky_relu", "relu", "tanh", "sigmoid"}, default="leaky_relu"
        The function ``f`` applied to the whole update (the paper's model,
        the public code's ``RNN_Stack``, uses LeakyReLU only; the others are
        offered for comparison with :class:`ModRNN`, where ``f`` sits inside
        the leak).
    fused : bool, default=True
        Compute each step as one matrix product with the merged matrix
        ``A = diag(1 - 1/tau) + diag(1/tau) W_rec`` and the input drive
        precomputed for all steps (same numbers as the literal update; 1.2-1.5x
        faster for training on a CPU, see ``benchmarks/rnn.py``). False runs
        the update as written above. ``torch.compile(model)`` adds another
        1.3-1.6x for runs of one fixed length; the curricula draw a new length
        per batch, and each new length would recompile the unrolled loop, so
        they run the fused path eagerly.

    Attributes
    ----------
    taus : Tensor (hidden_size,)
        The effective timescales (>= 1), in steps.

    Shapes: ``hidden_states(x)`` takes ``(batch, T, input_size)`` and returns
    ``(batch, T, hidden_size)``.
    """

    def __init__(
        self,
        input_size: int = 1,
        hidden_size: int = 500,
        n_heads: int = 1,
        tau_init: tuple[float, float] = (1.0, 2.0),
        train_tau: bool = True,
        tau_parametrization: str = "clamp",
        negative_slope: float = 0.01,
        fused: bool = True,
        nonlinearity: str = "leaky_relu",
    ) -> None:
        super().__init__(input_size, hidden_size, n_heads)
        lo, hi = check_tau_init(tau_init)
        check_choice("tau_parametrization", tau_parametrization, ("clamp", "softplus"))
        self.tau_parametrization = tau_parametrization
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
        self.negative_slope = check_float("negative_slope", negative_slope, minimum=0.0)
        self.fused = check_bool("fused", fused)
        train_tau = check_bool("train_tau", train_tau)
        self.w_in = nn.Linear(input_size, hidden_size)
        self.w_rec = nn.Linear(hidden_size, hidden_size)
        self.register_buffer("off_diagonal", 1.0 - torch.eye(hidden_size), persistent=False)
        with torch.no_grad():
            self.w_rec.weight.mul_(self.off_diagonal)
        tau0 = lo + (hi - lo) * torch.rand(hidden_size)
        if tau_parametrization == "softplus":
            # tau = 1 + softplus(r)  <=>  r = log(expm1(tau - 1)); keep tau - 1 off zero
            raw = torch.log(torch.expm1((tau0 - 1).clamp_min(1e-4)))
        else:
            raw = tau0
        self.tau_raw = nn.Parameter(raw, requires_grad=train_tau)

    @property
    def taus(self) -> torch.Tensor:
        if self.tau_parametrization == "softplus":
            return 1 + F.softplus(self.tau_raw)
        return self.tau_raw.clamp(min=1.0)

    def activation(self, z: torch.Tensor) -> torch.Tensor:
        """The neurons' nonlinearity ``f`` (:attr:`nonlinearity`) applied to ``z``."""
        if self.nonlinearity == "leaky_relu":
            return F.leaky_relu(z, self.negative_slope)
        return {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[
            self.nonlinearity
        ](z)

    def recurrent_weight(self) -> torch.Tensor:
        """``W_rec`` with its diagonal at zero, ``(hidden, hidden)``."""
        return self.w_rec.weight * self.off_diagonal

    def initial_state(self, batch: int, device=None) -> torch.Tensor:
        """``0.1 U(0, 1)``, ``(batch, hidden)``."""
        dtype = self.w_rec.weight.dtype
        return 0.1 * torch.rand(batch, self.hidden_size, device=device, dtype=dtype)

    def _run(self, x: torch.Tensor, state: torch.Tensor | None = None):
        h = self.initial_state(x.shape[0], x.device) if state is None else state
        tau = self.taus
        inv = 1.0 / tau
        w = self.recurrent_weight()
        drive = self.w_in(x) + self.w_rec.bias  # (batch, T, hidden)
        out = []
        if self.fused:
            a_t = (
                (1 - inv)[:, None] * torch.eye(self.hidden_size, device=w.device, dtype=w.dtype)
                + inv[:, None] * w
            ).T
            drive = drive * inv
            for d in drive.unbind(1):  # one split, not T slices with T-sized backward buffers
                h = self.activation(torch.addmm(d, h, a_t))
                out.append(h)
        else:
            for d in drive.unbind(1):
                h = self.activation((1 - inv) * h + (h @ w.T + d) * inv)
                out.append(h)
        return torch.stack(out, 1), h


class ModRNN(LeakyRNN):
    """Leaky network with the nonlinearity inside the leak: the public code's ``RNN_Mod``.

    ``h_t = (1 - 1/tau) * h_{t-1} + f(W_rec h_{t-1} + W_in x_t + b) / tau``

    Where :class:`LeakyRNN` (the paper's main model, ``RNN_Stack``) applies
    ``f`` to the whole update, here only the input to each neuron passes
    through ``f`` and the leak stays linear, so each neuron is a linear
    low-pass filter of its drive: an uncoupled neuron under independent
    input has the autocorrelation ``(1 - 1/tau)^lag`` whatever ``f`` is
    (ReLU, tanh and sigmoid, the public code's ``--afunc`` choices, with
    LeakyReLU its default). Everything else (``tau >= 1`` per neuron,
    zero recurrent diagonal, initial state ``0.1 U(0, 1)``, one head per N)
    is as in :class:`LeakyRNN`, whose parameters it takes; ``fused`` is
    ignored (with ``f`` inside the leak there is no single matrix to merge).

    >>> net = ModRNN(hidden_size=8, nonlinearity="tanh")
    >>> net.hidden_states(torch.rand(2, 5, 1).round()).shape
    torch.Size([2, 5, 8])
    """

    def __init__(
        self,
        input_size: int = 1,
        hidden_size: int = 500,
        n_heads: int = 1,
        tau_init: tuple[float, float] = (1.0, 2.0),
        train_tau: bool = True,
        tau_parametrization: str = "clamp",
        negative_slope: float = 0.01,
        fused: bool = False,
        nonlinearity: str = "leaky_relu",
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            n_heads,
            tau_init=tau_init,
            train_tau=train_tau,
            tau_parametrization=tau_parametrization,
            negative_slope=negative_slope,
            fused=False,
            nonlinearity=nonlinearity,
        )

    def _step_taus(self) -> torch.Tensor:
        """The taus of one simulation step."""
        return self.taus

    def _substeps(self) -> int:
        return 1

    def _run(self, x: torch.Tensor, state: torch.Tensor | None = None, fine: bool = False):
        h = self.initial_state(x.shape[0], x.device) if state is None else state
        inv = 1.0 / self._step_taus()
        leak = 1 - inv
        w_t = self.recurrent_weight().T
        drive = self.w_in(x) + self.w_rec.bias  # (batch, T, hidden)
        k = self._substeps()
        out = []
        for d in drive.unbind(1):  # one split, no T-sized backward buffers
            for _ in range(k):  # the same input held for k substeps
                h = leak * h + self.activation(torch.addmm(d, h, w_t)) * inv
                if fine:
                    out.append(h)
            if not fine:
                out.append(h)
        return torch.stack(out, 1), h


class ContinuousRNN(ModRNN):
    """:class:`ModRNN` in finer time: each input held for ``duplicate`` steps of ``tau * duplicate``.

    The public code's ``RNN_Continuous`` (its "duplicated inputs"
    experiment): every input bit is repeated ``k = duplicate`` times and
    every neuron's timescale is multiplied by ``k`` (then clamped at 1, as
    the code does, ``max(tau * k, 1)``), so a network with timescale ``tau``
    in input steps is simulated with a time step ``1/k`` of an input step; the
    label is still that of the original bits. ``k = 1`` is exactly
    :class:`ModRNN`. The trained taus (:attr:`taus`) stay in input steps.

    ``hidden_states(x)`` returns the state at the end of each input step,
    ``(batch, T, hidden)``, so every analysis sees the network on the
    input's time grid (timescales in input steps); :meth:`fine_states` gives
    all ``k T`` substeps. The heads read the last substep, as the code does.

    Where ours differs from the public code: its fixed-tau branch
    (``train_tau=False``) reads an undefined variable and cannot run; here
    ``train_tau=False`` freezes the taus and simulates the same update.
    The code's ``init_tau`` (rescale the initial taus to a given mean) is
    ``tau_init=(2 m / 3, 4 m / 3)`` here in expectation, for ``m >= 1.5``.

    Parameters
    ----------
    duplicate : int, default=1
        ``k``, substeps per input step (the code's ``k_data``); an
        attribute that training on several ``k`` changes per batch.
    **kwargs
        As for :class:`ModRNN`.

    >>> net = ContinuousRNN(hidden_size=8, duplicate=3)
    >>> x = torch.rand(2, 5, 1).round()
    >>> net.hidden_states(x).shape, net.fine_states(x).shape
    (torch.Size([2, 5, 8]), torch.Size([2, 15, 8]))
    """

    def __init__(self, *args, duplicate: int = 1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.duplicate = check_int("duplicate", duplicate, minimum=1)

    def _substeps(self) -> int:
        return check_int("duplicate", self.duplicate, minimum=1)

    def _step_taus(self) -> torch.Tensor:
        """``max(tau * k, 1)`` on the raw taus, as the code clamps after scaling."""
        if self.tau_parametrization == "softplus":
            return self.taus * self._substeps()
        return (self.tau_raw * self._substeps()).clamp(min=1.0)

    def fine_states(self, x: torch.Tensor, state=None) -> torch.Tensor:
        """Activity at every substep, ``(batch, duplicate * T, hidden)``."""
        return self._run(self._check_input(x), state, fine=True)[0]


class _GatedNetwork(RecurrentNetwork):
    cell: type[nn.Module] = nn.GRU

    def __init__(self, input_size: int = 1, hidden_size: int = 500, n_heads: int = 1) -> None:
        super().__init__(input_size, hidden_size, n_heads)
        self.rnn = self.cell(input_size, hidden_size, batch_first=True)

    def _run(self, x: torch.Tensor, state=None):
        return self.rnn(x, state)


class GRUNetwork(_GatedNetwork):
    """A one-layer ``torch.nn.GRU`` with the same heads and interface as :class:`LeakyRNN`.

    Shapes: ``hidden_states(x)`` takes ``(batch, T, input_size)`` and returns
    ``(batch, T, hidden_size)``.
    """

    cell = nn.GRU


class LSTMNetwork(_GatedNetwork):
    """A one-layer ``torch.nn.LSTM`` with the same heads and interface as :class:`LeakyRNN`.

    Its hidden states are the LSTM's outputs ``h_t`` (not the cell states).
    """

    cell = nn.LSTM


def build_model(kind: str = "leaky", **kwargs) -> RecurrentNetwork:
    """A model by name: ``"leaky"`` (:class:`LeakyRNN`), ``"mod"`` (:class:`ModRNN`),
    ``"continuous"`` (:class:`ContinuousRNN`), ``"gru"`` or ``"lstm"``.

    Settings a model does not have are dropped (GRU and LSTM take only the
    sizes; ``duplicate`` only reaches :class:`ContinuousRNN`).

    >>> type(build_model("mod", hidden_size=4, nonlinearity="relu")).__name__
    'ModRNN'
    """
    check_choice("model", kind, MODELS)
    cls = {
        "leaky": LeakyRNN,
        "mod": ModRNN,
        "continuous": ContinuousRNN,
        "gru": GRUNetwork,
        "lstm": LSTMNetwork,
    }[kind]
    if kind in ("gru", "lstm"):
        kwargs = {k: v for k, v in kwargs.items() if k in ("input_size", "hidden_size", "n_heads")}
    elif kind != "continuous":
        kwargs.pop("duplicate", None)
    return cls(**kwargs)
