"""Leaky integrate-and-fire neurons, spike encoders and spiking MLPs trained by BPTT, DSR or OTTT.

The pieces, top to bottom:

- :func:`spike` / :func:`surrogate_gradient`: the Heaviside step of a spiking
  neuron, whose backward pass uses a smooth surrogate (``"sigmoid"`` as in the
  HLOP paper, ``"arctan"`` or ``"triangle"``);
- :func:`lif_sequence` and its module :class:`LIF`: leaky integrate-and-fire
  neurons over a whole sequence (``(T, batch, ...)`` or ``(batch, T, ...)``),
  with soft or hard reset, the presynaptic trace ``r <- lambda r + s`` that
  learning rules read, and a stateful :meth:`LIF.step` for step-by-step runs;
- :class:`DirectEncoder` and :class:`PoissonEncoder`: analogue input repeated
  at every step, or Bernoulli spikes with the input as the per-step probability;
- :class:`SpikingMLP`: linear layers with LIF neurons between them, trained by
  backpropagation through time (``"bptt"``), differentiation on spike
  representation (``"dsr"``, the paper's default) or online training through
  time (``"ottt"``). It exposes :meth:`~SpikingMLP.linear_layers` and, after
  each forward pass, :attr:`~SpikingMLP.presynaptic`, the interface that the
  continual-learning strategies of :mod:`neuro.snn.hlop` act on.

>>> net = SpikingMLP(sizes=(9, 8, 7), method="bptt", T=4)
>>> x = torch.rand(5, 9)  # (batch, features), repeated at every step
>>> net(x).shape  # logits
torch.Size([5, 7])
>>> [tuple(p.shape) for p in net.presynaptic]  # one per linear layer, time-averaged
[(5, 9), (5, 8)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from neuro._validation import check_bool, check_choice, check_float, check_int
from neuro.errors import InputError, InputTypeError

__all__ = [
    "ENCODERS",
    "LIF",
    "METHODS",
    "RESETS",
    "SURROGATES",
    "DirectEncoder",
    "LIFSequence",
    "PoissonEncoder",
    "SpikingMLP",
    "lif_sequence",
    "presynaptic_traces",
    "spike",
    "surrogate_gradient",
    "weighted_firing_rate",
]

#: Surrogate gradients of the spike step (see :func:`surrogate_gradient`).
SURROGATES = ("sigmoid", "arctan", "triangle")
#: Reset rules after a spike: subtract the threshold, or set the potential to ``v_reset``.
RESETS = ("soft", "hard")
#: Training methods of :class:`SpikingMLP`.
METHODS = ("dsr", "bptt", "ottt")
#: Spike encoders of :class:`SpikingMLP`.
ENCODERS = ("direct", "poisson")

#: Default sharpness ``alpha`` of each surrogate.
_SURROGATE_ALPHA = {"sigmoid": 4.0, "arctan": 2.0, "triangle": 1.0}

# Per-method defaults of SpikingMLP, from the HLOP paper's public code (PMNIST settings).
_METHOD_DEFAULTS = {
    # DSR: V <- beta V + (1 - beta) I, beta = exp(-dt / tau), fire at V >= 0.3 Vth, T = 20
    "dsr": {"T": 20, "tau": 1.0, "dt": 0.05, "v_threshold": 0.3, "fire_fraction": 0.3},
    # BPTT / OTTT: V <- (1 - 1/tau) V + I, tau = 2, Vth = 1, sigmoid surrogate, T = 6
    "bptt": {"T": 6, "tau": 2.0, "dt": None, "v_threshold": 1.0, "fire_fraction": 1.0},
    "ottt": {"T": 6, "tau": 2.0, "dt": None, "v_threshold": 1.0, "fire_fraction": 1.0},
}


# --------------------------------------------------------------------------- surrogate spikes


def surrogate_gradient(x: torch.Tensor, surrogate: str = "sigmoid", alpha: float | None = None):
    """The surrogate derivative of the spike step at ``x = V - threshold``.

    Each is the derivative of a smooth step ``g`` that integrates to one:

    - ``"sigmoid"``: ``g = sigmoid(alpha x)``, ``g' = alpha s (1 - s)`` with
      ``s = sigmoid(alpha x)`` (peak ``alpha / 4``; the HLOP paper uses ``alpha = 4``);
    - ``"arctan"``: ``g = 1/2 + arctan(pi alpha x / 2) / pi``,
      ``g' = (alpha / 2) / (1 + (pi alpha x / 2)^2)`` (peak ``alpha / 2``);
    - ``"triangle"``: ``g' = alpha max(0, 1 - alpha |x|)`` (peak ``alpha``, zero
      for ``|x| >= 1 / alpha``).

    Parameters
    ----------
    x : Tensor
        Membrane potential minus the firing threshold, any shape.
    surrogate : {"sigmoid", "arctan", "triangle"}, default="sigmoid"
    alpha : float, optional
        Sharpness; default 4 (sigmoid), 2 (arctan) or 1 (triangle).

    Returns
    -------
    Tensor
        Same shape as ``x``.

    Examples
    --------
    >>> surrogate_gradient(torch.tensor([0.0, 1.0]), "triangle", alpha=1.0)
    tensor([1., 0.])
    """
    check_choice("surrogate", surrogate, SURROGATES)
    a = _SURROGATE_ALPHA[surrogate] if alpha is None else alpha
    if surrogate == "sigmoid":
        s = torch.sigmoid(a * x)
        return a * s * (1 - s)
    if surrogate == "arctan":
        return (a / 2) / (1 + (math.pi / 2 * a * x) ** 2)
    return a * (1 - a * x.abs()).clamp_min(0)


class _Spike(torch.autograd.Function):
    """Heaviside forward, surrogate derivative backward."""

    @staticmethod
    def forward(ctx, x, surrogate, alpha):
        ctx.save_for_backward(x)
        ctx.surrogate, ctx.alpha = surrogate, alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * surrogate_gradient(x, ctx.surrogate, ctx.alpha), None, None


def spike(x: torch.Tensor, surrogate: str = "sigmoid", alpha: float | None = None):
    """``1`` where ``x >= 0``, else ``0``, with the surrogate derivative in the backward pass.

    Parameters
    ----------
    x : Tensor
        Membrane potential minus the firing threshold.
    surrogate : {"sigmoid", "arctan", "triangle"}, default="sigmoid"
    alpha : float, optional
        Sharpness of the surrogate (see :func:`surrogate_gradient`).

    Returns
    -------
    Tensor
        Spikes (0 or 1) in ``x``'s dtype.

    Examples
    --------
    >>> v = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
    >>> spike(v).tolist()
    [0.0, 1.0, 1.0]
    >>> spike(v).sum().backward(); v.grad[1].item()  # sigmoid surrogate: alpha / 4
    1.0
    """
    check_choice("surrogate", surrogate, SURROGATES)
    a = _SURROGATE_ALPHA[surrogate] if alpha is None else check_float("alpha", alpha, minimum=0)
    return _Spike.apply(x, surrogate, a)


# --------------------------------------------------------------------------- LIF dynamics


class LIFSequence(NamedTuple):
    """What :func:`lif_sequence` returns; every sequence has the input's shape and layout."""

    spikes: torch.Tensor
    """Spikes (0 or 1), differentiable through the surrogate."""
    membrane: torch.Tensor
    """Membrane potential at each step before the reset (the value compared with the threshold)."""
    trace: torch.Tensor | None
    """Presynaptic trace ``r_t = decay r_{t-1} + s_t`` of the spikes (detached), or None."""
    v: torch.Tensor
    """Membrane potential after the last step's reset: the state to continue from."""
    r: torch.Tensor | None
    """Trace after the last step, or None."""


def _decay(tau: float, dt: float | None) -> float:
    """``exp(-dt / tau)`` when ``dt`` is given, else the discrete ``1 - 1 / tau``."""
    return math.exp(-dt / tau) if dt is not None else 1.0 - 1.0 / tau


def lif_sequence(
    current: torch.Tensor,
    *,
    decay: float = 0.5,
    v_threshold: float = 1.0,
    fire_fraction: float = 1.0,
    reset: str = "soft",
    v_reset: float = 0.0,
    decay_input: bool = False,
    surrogate: str = "sigmoid",
    alpha: float | None = None,
    detach_reset: bool = True,
    detach_state: bool = False,
    trace: bool = False,
    time_major: bool = True,
    v0: torch.Tensor | None = None,
    r0: torch.Tensor | None = None,
) -> LIFSequence:
    """Run leaky integrate-and-fire neurons over a sequence of input currents.

    At each step ``t``::

        V = decay * V + c * I_t          (c = 1 - decay if decay_input else 1)
        s_t = H(V - fire_fraction * v_threshold)        (surrogate derivative)
        V = V - v_threshold * s_t        (soft reset)   or   V = v_reset where s_t = 1 (hard)
        r_t = decay * r_{t-1} + s_t      (presynaptic trace, detached)

    Parameters
    ----------
    current : Tensor
        ``(T, batch, ...)`` if ``time_major`` else ``(batch, T, ...)``.
    decay : float, default=0.5
        The leak ``lambda`` per step, in ``[0, 1]`` (``1 - 1/tau`` or ``exp(-dt/tau)``).
    v_threshold : float, default=1.0
        Subtracted by a soft reset.
    fire_fraction : float, default=1.0
        A neuron fires at ``V >= fire_fraction * v_threshold`` (the ``alpha`` of DSR).
    reset : {"soft", "hard"}, default="soft"
    v_reset : float, default=0.0
        The potential after a hard reset (and the rest potential is 0 in both cases).
    decay_input : bool, default=False
        Scale the input by ``1 - decay`` (the DSR form ``V <- beta V + (1 - beta) I``).
    surrogate : {"sigmoid", "arctan", "triangle"}, default="sigmoid"
    alpha : float, optional
        Sharpness of the surrogate.
    detach_reset : bool, default=True
        No gradient through the reset term (as in the paper's BPTT and OTTT).
    detach_state : bool, default=False
        No gradient through the membrane from one step to the next (OTTT): each
        step's gradient is local in time.
    trace : bool, default=False
        Also return the trace of the spikes.
    time_major : bool, default=True
    v0, r0 : Tensor, optional
        Initial membrane potential and trace, ``(batch, ...)``; zero by default.

    Returns
    -------
    LIFSequence
        ``spikes``, ``membrane``, ``trace`` (or None) in the input's layout;
        the final state ``v`` and ``r``.

    Examples
    --------
    >>> out = lif_sequence(torch.full((5, 1), 0.6), decay=0.5)
    >>> out.spikes.flatten().tolist()  # V = 0.6, 0.9, 1.05 -> spike, 0.625, 0.9125
    [0.0, 0.0, 1.0, 0.0, 0.0]
    """
    time_axis = 0 if time_major else 1
    steps = current.unbind(time_axis)
    gain = (1.0 - decay) if decay_input else 1.0
    fire_at = fire_fraction * v_threshold
    v = torch.zeros_like(steps[0]) if v0 is None else v0
    r = None
    if trace:
        r = torch.zeros_like(steps[0]) if r0 is None else r0
    spikes, membrane, traces = [], [], []
    for i_t in steps:
        v = (v.detach() if detach_state else v) * decay + gain * i_t
        membrane.append(v)
        s = _Spike.apply(v - fire_at, surrogate, alpha)
        s_reset = s.detach() if detach_reset else s
        if reset == "soft":
            v = v - v_threshold * s_reset
        else:  # hard: v_reset where a spike fired
            v = torch.lerp(v, torch.full_like(v, v_reset), s_reset)
        spikes.append(s)
        if trace:
            r = decay * r + s.detach()
            traces.append(r)
    return LIFSequence(
        torch.stack(spikes, time_axis),
        torch.stack(membrane, time_axis),
        torch.stack(traces, time_axis) if trace else None,
        v,
        r,
    )


def presynaptic_traces(spikes: torch.Tensor, decay: float, time_major: bool = True):
    """The trace ``r_t = decay r_{t-1} + s_t`` (``r_0 = 0``) of a sequence, detached.

    Parameters
    ----------
    spikes : Tensor
        ``(T, batch, ...)`` if ``time_major`` else ``(batch, T, ...)``.
    decay : float
        ``lambda`` per step.
    time_major : bool, default=True

    Returns
    -------
    Tensor
        Same shape and layout as ``spikes``.

    Examples
    --------
    >>> presynaptic_traces(torch.tensor([[1.0], [0.0], [1.0]]), 0.5).flatten().tolist()
    [1.0, 0.5, 1.25]
    """
    axis = 0 if time_major else 1
    out, r = [], None
    with torch.no_grad():
        for s in spikes.unbind(axis):
            r = s.clone() if r is None else decay * r + s
            out.append(r)
    return torch.stack(out, axis)


def weighted_firing_rate(spikes: torch.Tensor, decay: float, time_major: bool = True):
    """DSR's weighted firing rate ``sum_t decay^(T-t) s_t / sum_t decay^(T-t)`` over time.

    With ``decay = 1`` it is the plain mean over time steps.

    Parameters
    ----------
    spikes : Tensor
        ``(T, batch, ...)`` if ``time_major`` else ``(batch, T, ...)``.
    decay : float
        ``beta = exp(-dt / tau)``.
    time_major : bool, default=True

    Returns
    -------
    Tensor
        ``(batch, ...)``; differentiable.

    Examples
    --------
    >>> weighted_firing_rate(torch.tensor([[1.0], [0.0]]), 0.5)  # weights 0.5, 1 (normalised)
    tensor([0.3333])
    """
    axis = 0 if time_major else 1
    n = spikes.shape[axis]
    w = decay ** torch.arange(n - 1, -1, -1, dtype=spikes.dtype, device=spikes.device)
    w = w / w.sum()
    shape = [1] * spikes.ndim
    shape[axis] = n
    return (spikes * w.view(shape)).sum(axis)


def _check_tensor(name: str, value, shape: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise InputTypeError(
            f"{name} must be a torch.Tensor of shape {shape}; got {type(value).__name__}. "
            f"Convert it with torch.as_tensor({name}, dtype=torch.float32)."
        )
    if not value.is_floating_point():
        raise InputTypeError(
            f"{name} must hold floating-point values; got dtype {value.dtype}. Convert it "
            f"with {name}.float()."
        )
    return value


class LIF(nn.Module):
    """Leaky integrate-and-fire neurons with surrogate gradients.

    ``V <- lambda V + c I``, a spike when ``V >= fire_fraction * v_threshold``,
    then a soft (``V -= v_threshold``) or hard (``V = v_reset``) reset, with
    ``lambda = 1 - 1/tau`` (``dt`` None, the discrete form of the paper's
    BPTT/OTTT networks) or ``exp(-dt/tau)`` (the DSR form), and ``c = 1 -
    lambda`` if ``decay_input`` else 1. See :func:`lif_sequence` for the update.

    :meth:`forward` runs a whole sequence from rest (the state does not carry
    over between calls). :meth:`step` advances one step from the state held in
    the buffers ``v`` (membrane) and ``r`` (trace ``r <- lambda r + s``), which
    :meth:`reset` clears.

    Parameters
    ----------
    tau : float, default=2.0
        Membrane time constant, in steps (``dt`` None, then ``tau >= 1``) or in
        the units of ``dt``.
    v_threshold : float, default=1.0
    reset : {"soft", "hard"}, default="soft"
    v_reset : float, default=0.0
        Potential after a hard reset.
    surrogate : {"sigmoid", "arctan", "triangle"}, default="sigmoid"
    alpha : float, optional
        Surrogate sharpness (4, 2 or 1 by default).
    dt : float, optional
        Time step; None for the discrete leak ``1 - 1/tau``.
    decay_input : bool, default=False
    fire_fraction : float, default=1.0
        Fire at ``fire_fraction * v_threshold`` (DSR's ``alpha``), reset by ``v_threshold``.
    detach_reset : bool, default=True
    detach_state : bool, default=False
        Cut the gradient through the membrane between steps (OTTT).
    time_major : bool, default=True
        Sequences are ``(T, batch, ...)``; False: ``(batch, T, ...)``.

    Attributes
    ----------
    decay : float
        ``lambda``.
    last : LIFSequence or None
        The full result of the last :meth:`forward` (membrane and traces included).

    Examples
    --------
    >>> lif = LIF(tau=2.0, time_major=False)
    >>> x = torch.full((1, 5, 1), 0.6)  # (batch, T, neurons)
    >>> lif(x).flatten().tolist()
    [0.0, 0.0, 1.0, 0.0, 0.0]
    >>> [lif.step(torch.full((1, 1), 0.6)).item() for _ in range(3)]
    [0.0, 0.0, 1.0]
    >>> lif.r  # the trace after three steps
    tensor([[1.]])
    """

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        reset: str = "soft",
        v_reset: float = 0.0,
        surrogate: str = "sigmoid",
        alpha: float | None = None,
        dt: float | None = None,
        decay_input: bool = False,
        fire_fraction: float = 1.0,
        detach_reset: bool = True,
        detach_state: bool = False,
        time_major: bool = True,
    ) -> None:
        super().__init__()
        self.dt = check_float("dt", dt, minimum=0.0, strict_minimum=True, allow_none=True)
        if self.dt is None:
            self.tau = check_float("tau", tau, minimum=1.0)
        else:
            self.tau = check_float("tau", tau, minimum=0.0, strict_minimum=True)
        self.v_threshold = check_float("v_threshold", v_threshold, minimum=0.0, strict_minimum=True)
        self.reset_mode = check_choice("reset", reset, RESETS)
        self.v_reset = check_float("v_reset", v_reset)
        self.surrogate = check_choice("surrogate", surrogate, SURROGATES)
        self.alpha = check_float(
            "alpha",
            _SURROGATE_ALPHA[surrogate] if alpha is None else alpha,
            minimum=0.0,
            strict_minimum=True,
        )
        self.decay_input = check_bool("decay_input", decay_input)
        self.fire_fraction = check_float(
            "fire_fraction", fire_fraction, minimum=0.0, strict_minimum=True
        )
        self.detach_reset = check_bool("detach_reset", detach_reset)
        self.detach_state = check_bool("detach_state", detach_state)
        self.time_major = check_bool("time_major", time_major)
        self.decay = _decay(self.tau, self.dt)
        self.register_buffer("v", None, persistent=False)
        self.register_buffer("r", None, persistent=False)
        self.last: LIFSequence | None = None

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau}, v_threshold={self.v_threshold}, reset={self.reset_mode!r}, "
            f"surrogate={self.surrogate!r}, decay={self.decay:.4g}, time_major={self.time_major}"
        )

    def _kwargs(self) -> dict:
        return {
            "decay": self.decay,
            "v_threshold": self.v_threshold,
            "fire_fraction": self.fire_fraction,
            "reset": self.reset_mode,
            "v_reset": self.v_reset,
            "decay_input": self.decay_input,
            "surrogate": self.surrogate,
            "alpha": self.alpha,
            "detach_reset": self.detach_reset,
            "detach_state": self.detach_state,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes for input currents ``x`` (``(T, batch, ...)`` or ``(batch, T, ...)``).

        The run starts from rest; its membrane potentials and traces are kept in
        :attr:`last`. Spikes have ``x``'s shape, layout and dtype.
        """
        layout = "(T, batch, ...)" if self.time_major else "(batch, T, ...)"
        x = _check_tensor("x", x, layout)
        if x.ndim < 2:
            raise InputError(
                f"x must have at least 2 dimensions {layout}; got shape {tuple(x.shape)}. For "
                "one step use LIF.step(current)."
            )
        self.last = self._run(x, trace=True, time_major=self.time_major)
        return self.last.spikes

    def _run(self, x: torch.Tensor, trace: bool, time_major: bool = True) -> LIFSequence:
        """:func:`lif_sequence` with this module's settings (no checks, nothing kept)."""
        return lif_sequence(x, trace=trace, time_major=time_major, **self._kwargs())

    def step(self, current: torch.Tensor) -> torch.Tensor:
        """Advance one step from the state in the buffers ``v`` and ``r``; return the spikes.

        ``current`` is ``(batch, ...)``; the state starts at rest on the first
        call after :meth:`reset` (or when the shape changes).
        """
        current = _check_tensor("current", current, "(batch, ...)")
        if self.v is None or self.v.shape != current.shape:
            self.v = torch.zeros_like(current)
            self.r = torch.zeros_like(current)
        out = lif_sequence(current.unsqueeze(0), trace=True, v0=self.v, r0=self.r, **self._kwargs())
        self.v, self.r = out.v, out.r
        return out.spikes[0]

    def reset(self) -> None:
        """Clear the step state (membrane and trace) held in the buffers."""
        self.v = None
        self.r = None


# --------------------------------------------------------------------------- encoders


def _check_intensities(x: torch.Tensor) -> torch.Tensor:
    x = _check_tensor("x", x, "(batch, ...)")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise InputError(
            f"x holds spike probabilities per step and must lie in [0, 1]; got values in "
            f"[{x.min().item():.3g}, {x.max().item():.3g}]. Scale the input first (e.g. "
            "x / x.max()) or use the direct encoder."
        )
    return x


class DirectEncoder(nn.Module):
    """The analogue input repeated at every step (the paper's encoding).

    Parameters
    ----------
    T : int
        Time steps.
    time_major : bool, default=True
        Return ``(T, batch, ...)``; False: ``(batch, T, ...)``.

    Examples
    --------
    >>> DirectEncoder(3)(torch.tensor([[0.2, 0.7]])).shape
    torch.Size([3, 1, 2])
    """

    def __init__(self, T: int, time_major: bool = True) -> None:
        super().__init__()
        self.T = check_int("T", T, minimum=1)
        self.time_major = check_bool("time_major", time_major)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (batch, ...)`` repeated ``T`` times (a view, no copy)."""
        x = _check_tensor("x", x, "(batch, ...)")
        axis = 0 if self.time_major else 1
        return x.unsqueeze(axis).expand(*x.shape[:axis], self.T, *x.shape[axis:])


class PoissonEncoder(nn.Module):
    """Rate coding: at each step a unit spikes with probability equal to its intensity.

    Parameters
    ----------
    T : int
        Time steps.
    seed : int, optional
        Seeds the encoder's own ``torch.Generator`` (made on the input's device at
        the first call; re-seeded by :meth:`reset`). None: torch's global generator.
    generator : torch.Generator, optional
        Use this generator instead (it must live on the input's device).
    time_major : bool, default=True

    Examples
    --------
    >>> enc = PoissonEncoder(1000, seed=0)
    >>> s = enc(torch.tensor([[0.1, 0.5, 0.9]]))
    >>> s.shape, (10 * s.mean(0)).round().int().tolist()  # rates in tenths
    (torch.Size([1000, 1, 3]), [[1, 5, 9]])
    """

    def __init__(
        self,
        T: int,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        time_major: bool = True,
    ) -> None:
        super().__init__()
        self.T = check_int("T", T, minimum=1)
        self.seed = check_int("seed", seed, minimum=0, allow_none=True)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise InputTypeError(
                f"generator must be a torch.Generator or None; got {type(generator).__name__}."
            )
        self.generator = generator
        self.time_major = check_bool("time_major", time_major)

    def reset(self) -> None:
        """Start the seeded generator again (the next call repeats the first one's spikes)."""
        if self.seed is not None:
            self.generator = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Bernoulli spikes ``(T, batch, ...)`` (or batch-major) from intensities in [0, 1]."""
        x = _check_intensities(x)
        if self.generator is None and self.seed is not None:
            self.generator = torch.Generator(device=x.device).manual_seed(self.seed)
        probs = x.unsqueeze(0).expand(self.T, *x.shape)
        s = torch.bernoulli(probs, generator=self.generator)
        return s if self.time_major else s.transpose(0, 1)


# --------------------------------------------------------------------------- training helpers


class _TraceLinear(torch.autograd.Function):
    """OTTT's linear map: the value ``W s + b``, the weight gradient ``delta^T r``.

    The forward pass sees the spikes ``s``; the weight gradient sees the
    presynaptic trace ``r`` (Xiao et al., 2022), and the gradient to the spikes
    is the usual ``W^T delta``.
    """

    @staticmethod
    def forward(ctx, s, r, weight, bias):
        ctx.save_for_backward(r, weight)
        ctx.has_bias = bias is not None
        return F.linear(s, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        r, weight = ctx.saved_tensors
        grad_s = grad @ weight.to(grad.dtype) if ctx.needs_input_grad[0] else None
        g2 = grad.reshape(-1, grad.shape[-1])
        grad_w = None
        if ctx.needs_input_grad[2]:
            grad_w = (g2.T @ r.reshape(-1, r.shape[-1]).to(g2.dtype)).to(weight.dtype)
        grad_b = g2.sum(0).to(weight.dtype) if ctx.has_bias and ctx.needs_input_grad[3] else None
        return grad_s, None, grad_w, grad_b


def _keep(activity: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """Presynaptic activity as stored for learning rules: detached, in the weights' dtype."""
    return activity.detach().to(layer.weight.dtype)


def _check_sizes(sizes) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise InputTypeError(
            f"sizes must be a sequence of layer widths such as (784, 800, 800, 10); got "
            f"{type(sizes).__name__}."
        )
    if len(sizes) < 2:
        raise InputError(
            f"sizes must name at least the input and output widths, e.g. (64, 32, 10); got "
            f"{tuple(sizes)}."
        )
    return tuple(check_int("sizes", n, minimum=1) for n in sizes)


class SpikingMLP(nn.Module):
    """A spiking multilayer perceptron: linear layers with LIF neurons between them.

    ``sizes = (n_in, h_1, ..., n_out)`` gives ``len(sizes) - 1`` linear layers;
    each hidden layer is followed by :class:`LIF` neurons. The output layer has
    no spiking neurons: the logits are its input current averaged over the
    time steps, i.e. the potential of a non-leaky, non-firing readout neuron
    divided by ``T`` (as in the paper's code; the DSR network averages with
    DSR's weights ``beta^(T-t)``, the others with equal weights).

    Training methods (``method``):

    ``"bptt"``
        Backpropagation through time with surrogate gradients: ``V <- (1 -
        1/tau) V + I``, ``tau = 2``, ``v_threshold = 1``, soft reset without
        gradient through the reset, sigmoid surrogate (``alpha = 4``), ``T = 6``.
    ``"dsr"`` (the paper's default)
        Differentiation on spike representation (Meng et al., CVPR 2022). The
        forward pass is spiking: ``V <- beta V + (1 - beta) I`` with ``beta =
        exp(-dt/tau)`` (``tau = 1``, ``dt = 0.05``), a spike of amplitude
        ``v_threshold / dt`` when ``V >= fire_fraction * v_threshold`` (0.3 and
        0.3), soft reset, ``T = 20``. The backward pass goes through the
        weighted firing rates ``a = sum_t beta^(T-t) s_t / sum_t beta^(T-t)``:
        layer ``l`` computes ``u_l = W_l a_(l-1) + b_l`` (the weighted average of
        its input current) and its output rate is, layer by layer,

        ``a_l = f(u_l) + (wfr(spikes_l) - f(u_l)).detach()``,
        ``f(u) = clamp((1 - beta) / dt * u, 0, v_threshold / dt)``,

        so its value is the spiking rate and its gradient that of ``f``. This is
        exact bookkeeping: soft-reset LIF neurons obey
        ``v_threshold * sum_t beta^(T-t) s_t = (1 - beta) sum_t beta^(T-t) I_t - V_T``,
        so the (amplitude-scaled) rate is ``f(u)`` up to the final potential
        ``V_T`` (Meng et al. use ``1/tau`` for ``(1 - beta)/dt``, its limit for
        small ``dt``). The threshold is fixed here (the paper also learns it).
    ``"ottt"``
        Online training through time (Xiao et al., NeurIPS 2022), with the
        BPTT neuron settings. The membrane is detached between steps, so no
        gradient flows back in time; each layer's weight gradient at step ``t``
        uses the presynaptic trace ``r_t = (1 - 1/tau) r_(t-1) + s_t`` in place
        of the spikes (``grad W = sum_t delta_t^T r_t``), for the input layer
        too. :meth:`loss` is the online loss ``mean_t CE(o_t, y)`` of the
        per-step outputs ``o_t``; its gradient is the sum of the gradients OTTT
        takes at each step (one backward pass after the ``T`` steps instead of
        one per step, with the same result for one update per batch).

    Parameters
    ----------
    sizes : sequence of int, default=(784, 800, 800, 10)
        Layer widths, input first (the paper's PMNIST network).
    bias : bool, default=False
        Biases in the linear layers (the paper has none).
    T : int, optional
        Time steps; 20 for DSR, 6 for BPTT and OTTT.
    method : {"dsr", "bptt", "ottt"}, default="dsr"
    tau : float, optional
        Membrane time constant; 1.0 (with ``dt = 0.05``) for DSR, 2.0 steps otherwise.
    v_threshold : float, optional
        0.3 for DSR, 1.0 otherwise.
    surrogate : {"sigmoid", "arctan", "triangle"}, default="sigmoid"
        For BPTT and OTTT (DSR needs none).
    alpha : float, optional
        Surrogate sharpness (4 for the sigmoid).
    reset : {"soft", "hard"}, default="soft"
        DSR requires the soft reset.
    encoder : {"direct", "poisson"}, default="direct"
        How a static input ``(batch, features)`` becomes ``T`` steps.
    seed : int, optional
        Seed of the Poisson encoder.
    time_major : bool, default=True
        Layout of sequence inputs: ``(T, batch, features)``; False:
        ``(batch, T, features)``.

    Attributes
    ----------
    layers : nn.ModuleList of nn.Linear
    neurons : nn.ModuleList of LIF
        One per hidden layer.
    presynaptic : list of Tensor
        After each forward pass, one detached ``(batch, in_features)`` tensor per
        linear layer, in its weight's dtype (also under autocast): the presynaptic
        activity it saw, averaged over time. For
        DSR the weighted firing rate (as above; the encoded input for the
        first layer, the amplitude-scaled spikes for the others); for BPTT the
        mean of the per-step input (encoded input or spikes); for OTTT the mean
        of the traces ``r_t`` that its weight gradients use.
    spike_amplitude : float
        Value of one spike passed on (``v_threshold / dt`` for DSR, else 1).

    Examples
    --------
    >>> torch.manual_seed(0) and None
    >>> net = SpikingMLP(sizes=(9, 8, 7), method="dsr", T=5)
    >>> x, y = torch.rand(4, 9), torch.tensor([0, 1, 2, 3])
    >>> loss = net.loss(x, y)
    >>> loss.backward()
    >>> [tuple(w.grad.shape) for w in (m.weight for m in net.linear_layers())]
    [(8, 9), (7, 8)]
    >>> x_seq = torch.rand(5, 4, 9)  # an already time-resolved input (T, batch, features)
    >>> net(x_seq).shape
    torch.Size([4, 7])
    """

    def __init__(
        self,
        sizes: Sequence[int] = (784, 800, 800, 10),
        bias: bool = False,
        T: int | None = None,
        method: str = "dsr",
        tau: float | None = None,
        v_threshold: float | None = None,
        surrogate: str = "sigmoid",
        alpha: float | None = None,
        reset: str = "soft",
        encoder: str = "direct",
        seed: int | None = None,
        time_major: bool = True,
    ) -> None:
        super().__init__()
        self.sizes = _check_sizes(sizes)
        self.method = check_choice("method", method, METHODS)
        defaults = _METHOD_DEFAULTS[method]
        self.T = check_int("T", defaults["T"] if T is None else T, minimum=1)
        check_choice("reset", reset, RESETS)
        if method == "dsr" and reset != "soft":
            raise InputError(
                "method='dsr' needs reset='soft' (its rate representation counts the "
                f"threshold subtracted at each spike); got reset={reset!r}."
            )
        self.encoder = check_choice("encoder", encoder, ENCODERS)
        self.time_major = check_bool("time_major", time_major)
        bias = check_bool("bias", bias)
        dt = defaults["dt"]
        lif = {
            "tau": defaults["tau"] if tau is None else tau,
            "v_threshold": defaults["v_threshold"] if v_threshold is None else v_threshold,
            "reset": reset,
            "surrogate": surrogate,
            "alpha": alpha,
            "dt": dt,
            "decay_input": dt is not None,
            "fire_fraction": defaults["fire_fraction"],
            "detach_reset": True,
            "detach_state": method == "ottt",
            "time_major": True,
        }
        self.layers = nn.ModuleList(
            nn.Linear(n_in, n_out, bias=bias)
            for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=True)
        )
        self.neurons = nn.ModuleList(LIF(**lif) for _ in self.sizes[1:-1])
        if encoder == "poisson":
            self.encode = PoissonEncoder(self.T, seed=seed)
        else:
            check_int("seed", seed, minimum=0, allow_none=True)
            self.encode = DirectEncoder(self.T)
        probe = LIF(**lif)
        self.decay = probe.decay
        self.v_threshold = probe.v_threshold
        self.dt = dt
        self.spike_amplitude = self.v_threshold / dt if method == "dsr" else 1.0
        self.presynaptic: list[torch.Tensor] = []
        self.step_outputs: torch.Tensor | None = None

    @property
    def n_features_in(self) -> int:
        """Width of the input layer, ``sizes[0]``."""
        return self.sizes[0]

    def linear_layers(self) -> list[nn.Linear]:
        """The linear layers, input to output (the shared interface of :mod:`neuro.snn.hlop`)."""
        return list(self.layers)

    # ----------------------------------------------------------------- input

    def _sequence(self, x) -> tuple[torch.Tensor, bool]:
        """``(T, batch, features)`` and whether it is one static input repeated."""
        layout = "(T, batch, features)" if self.time_major else "(batch, T, features)"
        n = self.sizes[0]
        x = _check_tensor("x", x, f"(batch, {n}) or {layout}")
        if x.ndim not in (2, 3):
            raise InputError(
                f"x must be 2-D (batch, {n}) or 3-D {layout}; got shape {tuple(x.shape)}. "
                "Flatten images first, e.g. x.flatten(1)."
            )
        if x.shape[-1] != n:
            raise InputError(
                f"x has {x.shape[-1]} features on its last axis but the network's input layer "
                f"takes {n} (sizes[0]); got shape {tuple(x.shape)}."
            )
        if x.ndim == 2:
            seq = self.encode(x)
            return seq, self.encoder == "direct"
        axis = 0 if self.time_major else 1
        if x.shape[axis] != self.T:
            other = (
                "time_major=False for (batch, T, features)"
                if self.time_major
                else ("time_major=True for (T, batch, features)")
            )
            raise InputError(
                f"x has {x.shape[axis]} steps on its time axis (axis {axis}, "
                f"time_major={self.time_major}) but the network runs T={self.T}; give "
                f"{layout} or set {other}."
            )
        return (x if self.time_major else x.transpose(0, 1)), False

    # ----------------------------------------------------------------- forward passes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, n_out)`` for ``x``: static ``(batch, features)`` or a sequence.

        A static input is encoded into ``T`` steps (``encoder``); a sequence is
        ``(T, batch, features)`` (or ``(batch, T, features)`` with
        ``time_major=False``). Fills :attr:`presynaptic` (and, for OTTT,
        :attr:`step_outputs`, the per-step logits ``(T, batch, n_out)``).
        """
        seq, constant = self._sequence(x)
        run = {"dsr": self._forward_dsr, "bptt": self._forward_bptt, "ottt": self._forward_ottt}
        return run[self.method](seq, constant)

    def _forward_bptt(self, seq: torch.Tensor, constant: bool) -> torch.Tensor:
        pre = []
        h = seq
        for layer, lif in zip(self.layers[:-1], self.neurons, strict=True):
            pre.append(_keep(h[0] if constant else h.mean(0), layer))
            current = layer(h[0]).expand(self.T, -1, -1) if constant else layer(h)
            h = lif._run(current, trace=False).spikes
            constant = False
        mean = h[0] if constant else h.mean(0)
        pre.append(_keep(mean, self.layers[-1]))
        self.presynaptic = pre
        self.step_outputs = None
        return self.layers[-1](mean)  # = the mean over steps of the readout current

    def _forward_dsr(self, seq: torch.Tensor, constant: bool) -> torch.Tensor:
        beta, amp = self.decay, self.spike_amplitude
        gain = (1.0 - beta) / self.dt
        pre = []
        h = seq
        rate = h[0] if constant else weighted_firing_rate(h, beta)
        for layer, lif in zip(self.layers[:-1], self.neurons, strict=True):
            pre.append(_keep(rate, layer))
            with torch.no_grad():
                current = layer(h[0]).expand(self.T, -1, -1) if constant else layer(h)
                h = lif._run(current, trace=False).spikes * amp
            f = (gain * layer(rate)).clamp(0.0, amp)
            rate = f + (weighted_firing_rate(h, beta) - f).detach()
            constant = False
        pre.append(_keep(rate, self.layers[-1]))
        self.presynaptic = pre
        self.step_outputs = None
        return self.layers[-1](rate)  # = the weighted average of the readout current

    def _forward_ottt(self, seq: torch.Tensor, constant: bool) -> torch.Tensor:
        pre = []
        h, r = seq, presynaptic_traces(seq, self.decay)
        for layer, lif in zip(self.layers[:-1], self.neurons, strict=True):
            pre.append(_keep(r.mean(0), layer))
            out = lif._run(_TraceLinear.apply(h, r, layer.weight, layer.bias), trace=True)
            h, r = out.spikes, out.trace
        pre.append(_keep(r.mean(0), self.layers[-1]))
        out = self.layers[-1]
        self.step_outputs = _TraceLinear.apply(h, r, out.weight, out.bias)
        self.presynaptic = pre
        return self.step_outputs.mean(0)

    # ----------------------------------------------------------------- training

    def _loss_and_logits(self, x, y) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(x)
        if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.shape[0] != logits.shape[0]:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise InputError(
                f"y must be a 1-D tensor of {logits.shape[0]} class labels (one per sample of "
                f"x); got {got}."
            )
        if self.method == "ottt":
            o = self.step_outputs
            return F.cross_entropy(o.flatten(0, 1), y.repeat(self.T)), logits
        return F.cross_entropy(logits, y), logits

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the logits; for OTTT the mean over steps of the per-step losses.

        Parameters
        ----------
        x : Tensor
            As for :meth:`forward`.
        y : Tensor
            Class labels ``(batch,)``.

        Returns
        -------
        Tensor
            A scalar.
        """
        return self._loss_and_logits(x, y)[0]

    def training_step(self, batch) -> torch.Tensor:
        """``loss(x, y)`` for a batch ``(x, y)``, for :class:`neuro.train.Trainer`."""
        x, y = batch
        return self.loss(x, y)

    def validation_step(self, batch) -> dict[str, torch.Tensor]:
        """Loss and accuracy of a batch ``(x, y)``."""
        x, y = batch
        loss, logits = self._loss_and_logits(x, y)
        return {"loss": loss, "accuracy": (logits.argmax(1) == y).float().mean()}
