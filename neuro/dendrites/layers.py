"""Neurons with active dendrites, as torch modules.

- :class:`DendriticNeuronLayer`: neurons whose dendritic segments each hold a
  set of binary synapses with an NMDA-like threshold; a neuron fires when any
  segment sees at least ``threshold`` active inputs (Ahmad & Hawkins, 2016;
  Hawkins & Ahmad, 2016). Patterns are stored one per segment with
  :meth:`~DendriticNeuronLayer.learn`: pattern recognition and sequence
  memory, with the error rates of :mod:`neuro.dendrites.theory`.
- :class:`DendriticSegments`, :class:`ActiveDendritesLayer`,
  :class:`ActiveDendritesNetwork`: the active-dendrites network of Iyer et al.
  (2022, "Avoiding catastrophe"), in which the best-matching segment of each
  unit, driven by a context vector, gates the unit's feed-forward output;
  trained with :class:`neuro.train.Trainer`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from neuro._validation import check_array, check_choice, check_int
from neuro.errors import InputError, InputTypeError

__all__ = [
    "ActiveDendritesLayer",
    "ActiveDendritesNetwork",
    "DendriticNeuronLayer",
    "DendriticSegments",
    "kwinners",
]


def _check_batch(name: str, value, width: int, shape: str) -> torch.Tensor:
    """``value`` if it is a 2-D tensor with ``width`` columns, else an :class:`InputError`."""
    if not isinstance(value, torch.Tensor):
        raise InputTypeError(
            f"{name} must be a torch.Tensor of shape {shape}; got {type(value).__name__}. "
            f"Convert it with torch.as_tensor({name}, dtype=torch.float32)."
        )
    if value.ndim != 2 or value.shape[1] != width:
        raise InputError(
            f"{name} must have shape {shape} = (batch, {width}); got {tuple(value.shape)}."
        )
    return value


class DendriticNeuronLayer(nn.Module):
    """A layer of neurons, each with binary dendritic segments and an NMDA threshold.

    Each neuron has up to ``n_segments`` segments; a segment holds ``synapses``
    connections to input cells and is active when at least ``threshold`` of them
    are active. A neuron fires when any of its stored segments is active.
    :meth:`learn` stores a pattern on a neuron's next free segment by sampling
    ``synapses`` of the pattern's active cells, as in Ahmad & Hawkins (2016).

    Parameters
    ----------
    n_inputs : int
        Input cells (the paper's ``n``).
    n_neurons : int
    n_segments : int
        Segments per neuron (the most patterns a neuron can store).
    synapses : int
        Synapses per segment (``s``).
    threshold : int
        Active synapses that make a segment fire (``theta``), ``1 <= threshold <= synapses``.
    seed : int, default=0
        Seed of the generator that picks the synapses in :meth:`learn`.

    Attributes
    ----------
    synapse_index : buffer of int64, shape (n_neurons, n_segments, synapses)
        Input cell of each synapse.
    segment_used : buffer of bool, shape (n_neurons, n_segments)
        Which segments store a pattern.

    Examples
    --------
    >>> import torch
    >>> layer = DendriticNeuronLayer(n_inputs=50, n_neurons=3, n_segments=2, synapses=6,
    ...                              threshold=4)
    >>> pattern = torch.zeros(50); pattern[:10] = 1
    >>> layer.learn(pattern, neuron=1)
    (1, 0)
    >>> layer(pattern[None]).tolist()
    [[0.0, 1.0, 0.0]]
    """

    def __init__(
        self,
        n_inputs: int,
        n_neurons: int,
        n_segments: int,
        synapses: int,
        threshold: int,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.n_inputs = check_int("n_inputs", n_inputs, minimum=1)
        self.n_neurons = check_int("n_neurons", n_neurons, minimum=1)
        self.n_segments = check_int("n_segments", n_segments, minimum=1)
        self.synapses = check_int("synapses", synapses, minimum=1)
        self.threshold = check_int("threshold", threshold, minimum=1)
        if synapses > n_inputs:
            raise InputError(
                f"synapses must be <= n_inputs (one synapse per input cell); got "
                f"synapses={synapses} > n_inputs={n_inputs}."
            )
        if threshold > synapses:
            raise InputError(
                f"threshold must be <= synapses; got threshold={threshold} > synapses={synapses}."
            )
        self.register_buffer(
            "synapse_index", torch.zeros(n_neurons, n_segments, synapses, dtype=torch.int64)
        )
        self.register_buffer("segment_used", torch.zeros(n_neurons, n_segments, dtype=torch.bool))
        self._generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))

    def extra_repr(self) -> str:
        return (
            f"n_inputs={self.n_inputs}, n_neurons={self.n_neurons}, n_segments={self.n_segments}, "
            f"synapses={self.synapses}, threshold={self.threshold}"
        )

    def _as_input(self, x, name: str = "x") -> torch.Tensor:
        """``x`` as a tensor of shape (batch, n_inputs) on the layer's device."""
        if not isinstance(x, torch.Tensor):
            x = check_array(name, x, ndim=2, shape_hint="(batch, n_inputs)", finite=False)
            x = torch.as_tensor(x)
        if x.ndim != 2 or x.shape[-1] != self.n_inputs:
            raise InputError(
                f"{name} must have shape (batch, n_inputs) with n_inputs={self.n_inputs} cells on "
                f"its last axis; got shape {tuple(x.shape)}. A single pattern p goes in as p[None]."
            )
        return x.to(self.synapse_index.device)

    def segment_overlaps(self, x) -> torch.Tensor:
        """Active synapses of every segment.

        Parameters
        ----------
        x : tensor or array of shape (batch, n_inputs)
            Binary activity (nonzero = active).

        Returns
        -------
        tensor of int64, shape (batch, n_neurons, n_segments)
            Unused segments count 0.
        """
        x = self._as_input(x) != 0
        overlap = x[:, self.synapse_index.reshape(-1)].reshape(
            x.shape[0], self.n_neurons, self.n_segments, self.synapses
        )
        return overlap.sum(-1) * self.segment_used

    def segment_activity(self, x) -> torch.Tensor:
        """Whether each stored segment reaches its threshold: bool (batch, n_neurons, n_segments)."""
        return (self.segment_overlaps(x) >= self.threshold) & self.segment_used

    def forward(self, x) -> torch.Tensor:
        """Firing of each neuron: float 0/1 of shape (batch, n_neurons) for x (batch, n_inputs)."""
        return self.segment_activity(x).any(-1).float()

    @torch.no_grad()
    def learn(self, pattern, neuron: int) -> tuple[int, int]:
        """Store ``pattern`` on the next free segment of ``neuron``.

        The segment connects to ``synapses`` of the pattern's active cells,
        chosen at random.

        Parameters
        ----------
        pattern : tensor or array of shape (n_inputs,)
            Binary activity; needs at least ``synapses`` active cells.
        neuron : int

        Returns
        -------
        (neuron, segment) : tuple of int

        Raises
        ------
        InputError
            The neuron has no free segment, or the pattern too few active cells.
        """
        neuron = check_int("neuron", neuron, minimum=0, maximum=self.n_neurons - 1)
        if not isinstance(pattern, torch.Tensor):
            pattern = torch.as_tensor(check_array("pattern", pattern, ndim=(1, 2), finite=False))
        if pattern.numel() != self.n_inputs or pattern.ndim not in (1, 2):
            raise InputError(
                f"pattern must have shape (n_inputs,) with n_inputs={self.n_inputs}; got shape "
                f"{tuple(pattern.shape)}."
            )
        active = torch.nonzero(pattern.reshape(-1).cpu() != 0).reshape(-1)
        if active.numel() < self.synapses:
            raise InputError(
                f"the pattern has {active.numel()} active cells, but a segment samples "
                f"synapses={self.synapses} of them; store patterns with more active cells."
            )
        free = torch.nonzero(~self.segment_used[neuron].cpu()).reshape(-1)
        if free.numel() == 0:
            raise InputError(
                f"neuron {neuron} has no free segment (n_segments={self.n_segments}); make the "
                "layer with more segments."
            )
        segment = int(free[0])
        chosen = active[torch.randperm(active.numel(), generator=self._generator)[: self.synapses]]
        self.synapse_index[neuron, segment] = chosen.to(self.synapse_index.device)
        self.segment_used[neuron, segment] = True
        return neuron, segment


class DendriticSegments(nn.Module):
    """Real-valued dendritic segments driven by a context vector (Iyer et al., 2022).

    Parameters
    ----------
    n_units : int
    n_segments : int
        Segments per unit.
    dim_context : int

    Attributes
    ----------
    weights : parameter, shape (n_units, n_segments, dim_context)

    Examples
    --------
    >>> import torch
    >>> seg = DendriticSegments(n_units=7, n_segments=3, dim_context=9)
    >>> tuple(seg(torch.randn(5, 9)).shape)
    (5, 7, 3)
    """

    def __init__(self, n_units: int, n_segments: int, dim_context: int) -> None:
        super().__init__()
        self.n_units = check_int("n_units", n_units, minimum=1)
        self.n_segments = check_int("n_segments", n_segments, minimum=1)
        self.dim_context = check_int("dim_context", dim_context, minimum=1)
        bound = 1.0 / math.sqrt(dim_context)
        self.weights = nn.Parameter(
            torch.empty(n_units, n_segments, dim_context).uniform_(-bound, bound)
        )

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """Segment activations (batch, n_units, n_segments) for context (batch, dim_context)."""
        _check_batch("context", context, self.dim_context, "(batch, dim_context)")
        return torch.einsum("bc,usc->bus", context, self.weights)


def kwinners(x: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest values of each row (last axis) and zero the rest.

    Gradients flow through the winners only. Ties at the k-th value keep all tied.

    Examples
    --------
    >>> import torch
    >>> kwinners(torch.tensor([[0.25, 1.5, 0.5, 0.75]]), 2).tolist()
    [[0.0, 1.5, 0.0, 0.75]]
    """
    k = check_int("k", k, minimum=1)
    if not isinstance(x, torch.Tensor):
        raise InputTypeError(f"x must be a torch.Tensor; got {type(x).__name__}.")
    if k >= x.shape[-1]:
        return x
    kth = x.topk(k, dim=-1).values[..., -1:]
    return x * (x >= kth)


class ActiveDendritesLayer(nn.Module):
    """A linear layer whose units are gated by their dendritic segments.

    ``y = (W x + b) * sigmoid(d)``, where ``d`` is, for each unit, the response
    of its selected segment to the context: the largest (``selection="max"``) or
    the one largest in magnitude, sign kept (``"absmax"``). A context that
    matches a unit's segment opens its gate; others close it, so different
    contexts (tasks) use different sub-networks (Iyer et al., 2022).

    Parameters
    ----------
    dim_in, dim_out : int
    dim_context : int
    n_segments : int
    k_winners : int, optional
        Keep only the ``k_winners`` largest outputs per sample (k-WTA).
    selection : {"max", "absmax"}, default="max"

    Shapes
    ------
    x : (batch, dim_in); context : (batch, dim_context) -> (batch, dim_out)

    Examples
    --------
    >>> import torch
    >>> layer = ActiveDendritesLayer(dim_in=7, dim_out=8, dim_context=9, n_segments=3)
    >>> tuple(layer(torch.randn(5, 7), torch.randn(5, 9)).shape)
    (5, 8)
    """

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        dim_context: int,
        n_segments: int,
        k_winners: int | None = None,
        selection: str = "max",
    ) -> None:
        super().__init__()
        dim_in = check_int("dim_in", dim_in, minimum=1)
        dim_out = check_int("dim_out", dim_out, minimum=1)
        dim_context = check_int("dim_context", dim_context, minimum=1)
        self.linear = nn.Linear(dim_in, dim_out)
        self.segments = DendriticSegments(dim_out, n_segments, dim_context)
        self.k_winners = check_int("k_winners", k_winners, minimum=1, allow_none=True)
        self.selection = check_choice("selection", selection, ("max", "absmax"))

    def gate(self, context: torch.Tensor) -> torch.Tensor:
        """The gate ``sigmoid(d)`` of each unit: (batch, dim_out)."""
        d = self.segments(context)
        if self.selection == "max":
            chosen = d.max(-1).values
        else:
            chosen = d.gather(-1, d.abs().argmax(-1, keepdim=True)).squeeze(-1)
        return torch.sigmoid(chosen)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Gated outputs (batch, dim_out) of x (batch, dim_in) and context (batch, dim_context)."""
        _check_batch("x", x, self.linear.in_features, "(batch, dim_in)")
        _check_batch("context", context, self.segments.dim_context, "(batch, dim_context)")
        if len(context) != len(x):
            raise InputError(
                f"x and context must have the same batch size; got {len(x)} and {len(context)}."
            )
        out = self.linear(x) * self.gate(context)
        return kwinners(out, self.k_winners) if self.k_winners else out


class ActiveDendritesNetwork(nn.Module):
    """A context-gated network: active-dendrite hidden layers and a linear readout.

    Each hidden layer is an :class:`ActiveDendritesLayer` followed by k-WTA (when
    ``k_winners`` is set) or a ReLU. It has the ``training_step`` and
    ``validation_step`` that :class:`neuro.train.Trainer` calls, on batches
    ``(x, context, y)``.

    Parameters
    ----------
    dim_in, dim_context, dim_out : int
    hidden : sequence of int, default=(64,)
    n_segments : int, default=4
    k_winners : int or sequence of int, optional
        Winners per hidden layer (one number for all).
    loss : {"mse", "cross_entropy"}, default="mse"
        With ``"cross_entropy"``, ``y`` holds class indices and the output is logits.

    Shapes
    ------
    x : (batch, dim_in); context : (batch, dim_context) -> (batch, dim_out)

    Examples
    --------
    >>> import torch
    >>> from neuro.train import Trainer
    >>> x, c, y = torch.randn(64, 7), torch.randn(64, 9), torch.randn(64, 2)
    >>> net = ActiveDendritesNetwork(7, 9, 2, hidden=(16,), n_segments=3)
    >>> history = Trainer(max_epochs=2, device="cpu", verbose=0).fit(net, (x, c, y))
    >>> len(history)
    2
    """

    def __init__(
        self,
        dim_in: int,
        dim_context: int,
        dim_out: int,
        hidden: Sequence[int] = (64,),
        n_segments: int = 4,
        k_winners: int | Sequence[int] | None = None,
        loss: str = "mse",
    ) -> None:
        super().__init__()
        if isinstance(hidden, (int, np.integer)) or not isinstance(hidden, Sequence):
            raise InputTypeError(
                f"hidden must be a sequence of layer widths, e.g. (64,) for one layer; got "
                f"{hidden!r}."
            )
        hidden = [check_int("hidden", h, minimum=1) for h in hidden]
        if k_winners is None or isinstance(k_winners, (int, np.integer)):
            k_winners = [k_winners] * len(hidden)
        if isinstance(k_winners, str) or not isinstance(k_winners, Sequence):
            raise InputTypeError(
                f"k_winners must be an int, None or one value per hidden layer; got {k_winners!r}."
            )
        if len(k_winners) != len(hidden):
            raise InputError(
                f"k_winners needs one value per hidden layer ({len(hidden)}); got {k_winners!r}."
            )
        self.loss = check_choice("loss", loss, ("mse", "cross_entropy"))
        sizes = [check_int("dim_in", dim_in, minimum=1), *hidden]
        self.hidden = nn.ModuleList(
            ActiveDendritesLayer(sizes[i], sizes[i + 1], dim_context, n_segments, k)
            for i, k in enumerate(k_winners)
        )
        self.readout = nn.Linear(sizes[-1], check_int("dim_out", dim_out, minimum=1))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Outputs (batch, dim_out) of x (batch, dim_in) and context (batch, dim_context)."""
        h = x
        for layer in self.hidden:
            h = layer(h, context)
            if layer.k_winners is None:
                h = torch.relu(h)
        return self.readout(h)

    def _loss(self, batch):
        x, context, y = batch
        out = self(x, context)
        if self.loss == "mse":
            return nn.functional.mse_loss(out, y.reshape(out.shape)), out, y
        return nn.functional.cross_entropy(out, y.long()), out, y

    def training_step(self, batch) -> torch.Tensor:
        return self._loss(batch)[0]

    def validation_step(self, batch) -> dict[str, torch.Tensor]:
        loss, out, y = self._loss(batch)
        metrics = {"loss": loss}
        if self.loss == "cross_entropy":
            metrics["accuracy"] = (out.argmax(-1) == y.long()).float().mean()
        return metrics
