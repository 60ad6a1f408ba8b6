"""Hebbian orthogonal projection (HLOP) and the continual-learning baselines beside it.

After Xiao et al., "Hebbian Learning based Orthogonal Projection for Continual
Learning of Spiking Neural Networks" (ICLR 2024).

Each linear layer of a network gets a set of *lateral neurons* with weights
``W`` (``m x n``) that read the layer's presynaptic activity ``x`` (``y = W x``)
and learn, by Oja's subspace rule, the principal subspace of the activity of
past tasks (:class:`HebbianSubspace`). While a later task trains, the layer's
weight gradient is projected on the complement of that subspace through the
same lateral circuit, ``grad_W <- grad_W - (grad_W W_old^T) W_old``, so the
update barely changes the layer's response to old inputs.

Every method is a :class:`ContinualStrategy` with the same hooks, called by a
training loop in this order::

    strategy.before_task(model, t)
    for batch in task_batches:
        loss = loss_fn(model(x), y) + strategy.penalty(model)
        loss.backward()
        strategy.after_backward(model)      # edits .grad in place
        optimizer.step()
        strategy.observe(model)             # learns from model.presynaptic
    strategy.after_task(model, t, activity_batches)

The strategies act on any :class:`torch.nn.Module` with a ``linear_layers()``
method (its :class:`~torch.nn.Linear` layers, input to output) and a
``presynaptic`` list filled by each forward pass (one detached
``(batch, in_features)`` tensor per linear layer: the activity that layer saw,
averaged over time steps). The spiking networks of :mod:`neuro.snn.neurons`
have both; so may a plain MLP.

* :class:`FineTune`: plain sequential training (the forgetting baseline).
* :class:`EWC`: elastic weight consolidation with a diagonal Fisher.
* :class:`GPM`: gradient projection memory (Saha et al., 2021), the exact
  SVD-based subspace the Hebbian one approximates.
* :class:`HLOP`: the paper's method and schedule.

Projection is applied to the time-averaged presynaptic activity, not per time
step: since a linear layer's weight gradient is a sum over steps of
``delta_t^T x_t`` and the projection acts on the weight gradient's input side,
projecting the gradient once equals projecting every step's input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import torch
from torch import nn

from neuro._validation import check_bool, check_float, check_int
from neuro.errors import InputError, InputTypeError

__all__ = [
    "EWC",
    "GPM",
    "HLOP",
    "ContinualStrategy",
    "FineTune",
    "HebbianSubspace",
    "gpm_extend_basis",
    "oja_subspace_update",
    "pmnist_added_schedule",
    "principal_angles",
    "spike_quantise",
]


# --------------------------------------------------------------------------------------
# Functions: the algorithms, each easy to test on its own
# --------------------------------------------------------------------------------------


def spike_quantise(y: torch.Tensor, scale: float, steps: int) -> torch.Tensor:
    """Lateral activity ``y`` as it is read from spike counts over ``steps`` time steps.

    Each lateral neuron is a pair of integrate-and-fire neurons (one for
    positive, one for negative drive) fed the constant current ``|y| / scale``
    for ``steps`` steps, with threshold 1, soft reset and the membrane starting
    at half the threshold. The pair fires ``round(steps * |y| / scale)`` spikes
    (at most ``steps``, one per step), and the activity read back is
    ``sign(y) * scale * count / steps``: ``y`` clipped to ``[-scale, scale]`` and
    rounded to a grid of ``scale / steps``. The closed form is what the
    simulation would give, so no step loop is run.

    Parameters
    ----------
    y : Tensor
        Lateral activity, any shape.
    scale : float
        Activity that makes a neuron fire at every step (the saturating rate).
    steps : int
        Time steps the lateral neurons run for.

    Returns
    -------
    Tensor
        Same shape as ``y``.

    Examples
    --------
    >>> spike_quantise(torch.tensor([0.26, -3.0, 50.0]), scale=20.0, steps=100)
    tensor([ 0.2000, -3.0000, 20.0000])
    """
    counts = torch.round(y.clamp(-scale, scale) * (steps / scale))
    return counts * (scale / steps)


def oja_subspace_update(
    weight: torch.Tensor,
    velocity: torch.Tensor,
    x: torch.Tensor,
    *,
    n_fixed: int,
    lr: float,
    n_iter: int = 5,
    momentum: float = 0.9,
    clamp: float = 10.0,
    spike: tuple[float, int] | None = None,
) -> None:
    """Oja's subspace rule on the rows of ``weight`` after ``n_fixed``, in place.

    For each of ``n_iter`` iterations on the batch ``x``: ``y = W x`` over all
    rows, reconstruction ``x_hat = W^T y``, and for the learning rows
    ``dW = y (x - x_hat)^T / batch`` (a Hebbian term ``y x^T`` and an
    anti-Hebbian one through the reconstruction), clipped to
    ``[-clamp, clamp]``, averaged into ``velocity`` (``v <- momentum v +
    (1 - momentum) dW``) and applied as ``W <- W + lr v``. The first ``n_fixed``
    rows take part in ``y`` and ``x_hat`` but do not change, so the learning rows
    converge to the principal subspace of what the fixed rows leave unexplained.

    Parameters
    ----------
    weight : Tensor, shape (m, n)
        Lateral weights; rows ``n_fixed:`` are updated in place.
    velocity : Tensor, shape (m - n_fixed, n)
        Momentum of the learning rows, updated in place.
    x : Tensor, shape (batch, n)
        Presynaptic activity.
    n_fixed : int
        Rows that do not learn.
    lr : float
    n_iter : int, default=5
    momentum : float, default=0.9
    clamp : float, default=10.0
    spike : (scale, steps), optional
        Read ``y`` through :func:`spike_quantise` (spiking lateral neurons).
    """
    inv_batch = 1.0 / x.shape[0]
    for _ in range(n_iter):
        y = x @ weight.T
        if spike is not None:
            y = spike_quantise(y, *spike)
        residual = x - y @ weight
        delta = (y[:, n_fixed:].T @ residual).mul_(inv_batch).clamp_(-clamp, clamp)
        velocity.mul_(momentum).add_(delta, alpha=1.0 - momentum)
        weight[n_fixed:].add_(velocity, alpha=lr)


def gpm_extend_basis(
    gram: torch.Tensor, basis: torch.Tensor | None, threshold: float
) -> torch.Tensor:
    """Extend an orthonormal basis by the directions that capture ``threshold`` of the energy.

    The exact step of gradient projection memory (Saha et al., 2021). With
    ``R`` the ``(n, samples)`` representation matrix of a finished task and
    ``gram = R R^T``, the energy already explained by ``basis`` ``U`` is
    ``||R||^2 - ||(I - U U^T) R||^2``; the residual's left singular vectors are
    the eigenvectors of ``(I - U U^T) gram (I - U U^T)`` and its squared
    singular values their eigenvalues. The fewest of them that bring the
    explained energy to ``threshold * ||R||^2`` are appended (none if the
    basis already explains that much). Working from ``gram`` gives the same
    vectors as the SVD of ``R`` without keeping the samples.

    Parameters
    ----------
    gram : Tensor, shape (n, n)
        ``R R^T``, summed over the task's samples.
    basis : Tensor, shape (n, k), or None
        Orthonormal columns kept from earlier tasks.
    threshold : float
        Fraction of the task's energy the extended basis must explain, in (0, 1].

    Returns
    -------
    Tensor, shape (n, k + r)
        The extended basis (float64, on ``gram``'s device).

    Examples
    --------
    >>> R = torch.zeros(5, 40, dtype=torch.float64); R[0] = 3.0; R[1] = 1.0
    >>> gpm_extend_basis(R @ R.T, None, threshold=0.85).shape
    torch.Size([5, 1])
    """
    gram = gram.to(torch.float64)
    n = gram.shape[0]
    if basis is None:
        basis = gram.new_zeros(n, 0)
    basis = basis.to(gram)
    total = torch.trace(gram).item()
    if total <= 0.0 or basis.shape[1] >= n:
        return basis
    residual = gram - basis @ (basis.T @ gram)
    residual = residual - (residual @ basis) @ basis.T  # P gram P
    explained = total - torch.trace(residual).item()
    if explained / total >= threshold:
        return basis
    eigvals, eigvecs = torch.linalg.eigh((residual + residual.T) / 2)
    eigvals, eigvecs = eigvals.flip(0).clamp_min(0.0), eigvecs.flip(1)
    reached = (explained + torch.cumsum(eigvals, 0)) / total >= threshold
    r = int(torch.nonzero(reached)[0]) + 1 if bool(reached.any()) else n
    r = min(r, n - basis.shape[1])
    new = eigvecs[:, :r]
    new = new - basis @ (basis.T @ new)  # remove what rounding left in the old span
    new = torch.linalg.qr(new).Q
    return torch.cat([basis, new], dim=1)


def principal_angles(a: Any, b: Any) -> Any:
    """Principal angles, in degrees, between the column spaces of ``a`` and ``b``.

    :func:`neuro.snn.metrics.principal_angles` with this module's input checks,
    returning a tensor unless both inputs are NumPy arrays. Any spanning set
    will do (for lateral weights ``W`` of shape ``(m, n)``, pass ``W.T``).

    Parameters
    ----------
    a : Tensor or ndarray, shape (n, p)
    b : Tensor or ndarray, shape (n, q)

    Returns
    -------
    Tensor or ndarray, shape (min(p, q),)
        Angles in degrees, smallest first, float64; a NumPy array when both
        inputs are NumPy arrays, else a tensor on the CPU.

    Raises
    ------
    InputError
        Not 2-D, a different number of rows, or NaN values.

    Examples
    --------
    >>> e = torch.eye(3)
    >>> principal_angles(e[:, :2], e[:, 1:]).round().tolist()
    [0.0, 90.0]
    """
    from neuro.snn.metrics import principal_angles as angles_of

    numpy_out = isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
    for name, value in (("a", a), ("b", b)):
        _as_basis(name, value)  # this module's checks (2-D, finite) and messages
    degrees = angles_of(a, b)
    return degrees if numpy_out else torch.from_numpy(np.ascontiguousarray(degrees))


def _as_basis(name: str, value: Any) -> torch.Tensor:
    """``value`` as a float64 CPU tensor with orthonormal columns spanning it."""
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu", torch.float64)
    elif isinstance(value, np.ndarray):
        t = torch.from_numpy(np.asarray(value, dtype=np.float64))
    else:
        raise InputTypeError(
            f"{name} must be a torch.Tensor or NumPy array of shape (n, k); got "
            f"{type(value).__name__}."
        )
    if t.ndim != 2 or t.shape[1] == 0:
        raise InputError(
            f"{name} must be 2-D (n, k) with k >= 1 basis columns; got shape {tuple(t.shape)}."
        )
    if not bool(torch.isfinite(t).all()):
        raise InputError(f"{name} contains NaN or infinite values; give a finite basis.")
    u, s, _ = torch.linalg.svd(t, full_matrices=False)
    rank = int((s > s[0] * max(t.shape) * torch.finfo(t.dtype).eps).sum()) if s[0] > 0 else 0
    if rank == 0:
        raise InputError(f"{name} is all zeros; it spans no subspace.")
    return u[:, :rank]


# --------------------------------------------------------------------------------------
# Lateral neurons
# --------------------------------------------------------------------------------------


class HebbianSubspace(nn.Module):
    """Lateral neurons that learn the principal subspace of presynaptic activity (Oja).

    ``W`` (``m x n``) holds ``m`` lateral neurons reading ``n`` presynaptic
    features: ``y = W x`` and the reconstruction ``x_hat = W^T y``. Rows come in
    two groups. *Old* rows hold the subspace of finished tasks and never change;
    *new* rows, appended by :meth:`add_neurons`, learn by :meth:`learn` (Oja's
    subspace rule, :func:`oja_subspace_update`) and become old at
    :meth:`merge`. :meth:`project` removes the old subspace from activity
    through the lateral circuit, ``x - W_old^T (W_old x)``.

    Parameters
    ----------
    n_features : int
        Presynaptic features ``n``.
    spiking : bool, default=False
        Lateral neurons spike: ``y`` is read from spike counts over
        ``spike_steps`` steps (:func:`spike_quantise`), in learning and in
        projection, as in the paper's spiking variant.
    spike_scale : float, default=20.0
        Activity at which a lateral neuron fires at every step.
    spike_steps : int, default=1000
        Time steps of the lateral neurons (resolution ``spike_scale / spike_steps``).
    device : str or torch.device, optional
    dtype : torch.dtype, default=torch.float32

    Attributes
    ----------
    weight : buffer, shape (n_neurons, n_features)
        All rows, old first.
    velocity : buffer, shape (n_new, n_features)
        Momentum of the new rows.
    n_old, n_new, n_neurons : int

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(256, 3, generator=g) @ torch.randn(3, 9, generator=g)
    >>> lateral = HebbianSubspace(9)
    >>> lateral.add_neurons(3, generator=g)
    >>> for _ in range(200):
    ...     lateral.learn(x, lr=0.01)
    >>> lateral.merge()
    >>> bool(lateral.project(x).norm() < 1e-2 * x.norm())
    True
    """

    def __init__(
        self,
        n_features: int,
        *,
        spiking: bool = False,
        spike_scale: float = 20.0,
        spike_steps: int = 1000,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.n_features = check_int("n_features", n_features, minimum=1)
        self.spiking = check_bool("spiking", spiking)
        self.spike_scale = check_float("spike_scale", spike_scale, minimum=0.0, strict_minimum=True)
        self.spike_steps = check_int("spike_steps", spike_steps, minimum=1)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise InputTypeError(
                f"dtype must be a floating torch.dtype such as torch.float32; got {dtype!r}."
            )
        self.n_old = 0
        self.register_buffer("weight", torch.zeros(0, n_features, device=device, dtype=dtype))
        self.register_buffer("velocity", torch.zeros(0, n_features, device=device, dtype=dtype))

    @property
    def n_neurons(self) -> int:
        """All lateral neurons, old and new."""
        return self.weight.shape[0]

    @property
    def n_new(self) -> int:
        """Lateral neurons still learning (added since the last :meth:`merge`)."""
        return self.n_neurons - self.n_old

    @property
    def old_weight(self) -> torch.Tensor:
        """Rows of finished tasks, shape ``(n_old, n_features)`` (a view)."""
        return self.weight[: self.n_old]

    @property
    def new_weight(self) -> torch.Tensor:
        """Rows still learning, shape ``(n_new, n_features)`` (a view)."""
        return self.weight[self.n_old :]

    def add_neurons(self, k: int, generator: torch.Generator | int | None = None) -> None:
        """Append ``k`` lateral neurons whose rows are orthonormal to each other.

        The new rows are a random orthonormal set (QR of a Gaussian matrix);
        they are not made orthogonal to the old rows: Oja's rule removes the old
        subspace from them as they learn.

        Parameters
        ----------
        k : int
            Neurons to add, ``>= 1``; the total may not exceed ``n_features``.
        generator : torch.Generator or int, optional
            Random source (a CPU generator) or a seed; the global one if None.

        Raises
        ------
        InputError
            ``k`` would make more lateral neurons than presynaptic features.
        """
        k = check_int("k", k, minimum=1)
        if self.n_neurons + k > self.n_features:
            raise InputError(
                f"cannot add {k} lateral neurons to {self.n_neurons}: at most n_features="
                f"{self.n_features} lateral neurons can have orthonormal rows. Add at most "
                f"{self.n_features - self.n_neurons}."
            )
        if isinstance(generator, Integral) and not isinstance(generator, bool):
            generator = torch.Generator().manual_seed(int(generator))
        elif generator is not None and not isinstance(generator, torch.Generator):
            raise InputTypeError(
                f"generator must be a torch.Generator, an integer seed or None; got "
                f"{type(generator).__name__}."
            )
        gauss = torch.randn(self.n_features, k, generator=generator, dtype=torch.float64)
        rows = torch.linalg.qr(gauss).Q.T.to(self.weight)
        self.weight = torch.cat([self.weight, rows])
        self.velocity = torch.cat([self.velocity, torch.zeros_like(rows)])

    def learn(
        self,
        x: torch.Tensor,
        lr: float,
        n_iter: int = 5,
        momentum: float = 0.9,
        clamp: float = 10.0,
    ) -> None:
        """Update the new rows by Oja's subspace rule on the batch ``x``.

        See :func:`oja_subspace_update` for the rule; the old rows take part in
        the reconstruction but do not change.

        Parameters
        ----------
        x : Tensor, shape (batch, n_features)
            Presynaptic activity (rates or traces), on this module's device.
        lr : float
            Learning rate (the paper: about 1e-3 for the input layer, 1e-2 elsewhere).
        n_iter : int, default=5
            Iterations on this batch.
        momentum : float, default=0.9
            Weight of the running average of updates.
        clamp : float, default=10.0
            Each update is clipped to ``[-clamp, clamp]``.

        Raises
        ------
        InputError
            Wrong shape, NaN values, or no new neurons to learn.
        """
        x = self._check_x(x)
        lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
        n_iter = check_int("n_iter", n_iter, minimum=1)
        momentum = check_float("momentum", momentum, minimum=0.0, maximum=1.0, strict_maximum=True)
        clamp = check_float("clamp", clamp, minimum=0.0, strict_minimum=True)
        if self.n_new == 0:
            raise InputError(
                "no lateral neurons are learning; call add_neurons(k) before learn (merge() "
                "turned the earlier ones into the fixed subspace)."
            )
        self._learn(x, lr, n_iter, momentum, clamp)

    def _learn(self, x: torch.Tensor, lr: float, n_iter: int, momentum: float, clamp: float):
        spike = (self.spike_scale, self.spike_steps) if self.spiking else None
        oja_subspace_update(
            self.weight,
            self.velocity,
            x.to(self.weight.dtype),
            n_fixed=self.n_old,
            lr=lr,
            n_iter=n_iter,
            momentum=momentum,
            clamp=clamp,
            spike=spike,
        )

    def merge(self) -> None:
        """Make the new rows old: they stop learning and join the projected subspace."""
        self.n_old = self.n_neurons
        self.velocity = self.velocity[:0]

    @property
    def projector(self) -> torch.Tensor:
        """``I - W_old^T W_old``, shape ``(n_features, n_features)`` (rate version)."""
        eye = torch.eye(self.n_features, device=self.weight.device, dtype=self.weight.dtype)
        return eye - self.old_weight.T @ self.old_weight

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Remove the old subspace from ``x`` through the lateral circuit.

        Parameters
        ----------
        x : Tensor, shape (batch, n_features)

        Returns
        -------
        Tensor, shape (batch, n_features)
            ``x - W_old^T y`` with ``y = W_old x`` (spike-quantised if ``spiking``).
        """
        x = self._check_x(x)
        return self._project(x)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        w = self.old_weight
        y = x @ w.T
        if self.spiking:
            y = spike_quantise(y, self.spike_scale, self.spike_steps)
        return x - y @ w

    def basis(self, rows: str = "old") -> torch.Tensor:
        """The lateral weights as basis columns, shape ``(n_features, k)``.

        Parameters
        ----------
        rows : {"old", "new", "all"}, default="old"

        Returns
        -------
        Tensor
            ``W^T`` of the chosen rows (a copy); not exactly orthonormal.
        """
        chosen = {"old": self.old_weight, "new": self.new_weight, "all": self.weight}
        if rows not in chosen:
            raise InputError(f"rows must be 'old', 'new' or 'all'; got {rows!r}.")
        return chosen[rows].T.clone()

    def principal_angles(self, u: Any, rows: str = "all") -> Any:
        """Principal angles (degrees) between the chosen rows' span and the columns of ``u``.

        Parameters
        ----------
        u : Tensor or ndarray, shape (n_features, k)
            A reference basis, e.g. the top-k principal components or GPM's basis.
        rows : {"all", "old", "new"}, default="all"

        Returns
        -------
        Tensor, shape (min(rows, k),)
            See :func:`principal_angles`.
        """
        return principal_angles(self.basis(rows), u)

    def orthonormality_error(self) -> float:
        """``||W W^T - I||_F`` over all rows (0 for exactly orthonormal rows)."""
        gram = self.weight @ self.weight.T
        eye = torch.eye(self.n_neurons, device=gram.device, dtype=gram.dtype)
        return float(torch.linalg.matrix_norm(gram - eye))

    def _check_x(self, x: Any) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise InputTypeError(
                f"x must be a torch.Tensor of shape (batch, {self.n_features}); got "
                f"{type(x).__name__}. Convert it with torch.as_tensor(x, dtype=torch.float32)."
            )
        if x.ndim != 2 or x.shape[1] != self.n_features or x.shape[0] == 0:
            raise InputError(
                f"x must have shape (batch, n_features) = (batch, {self.n_features}); got "
                f"{tuple(x.shape)}. Average spikes or traces over time steps first."
            )
        if not bool(torch.isfinite(x).all()):
            raise InputError(
                "x contains NaN or infinite values; check the network's activity (a diverging "
                "learning rate is the usual cause)."
            )
        return x

    def extra_repr(self) -> str:
        return (
            f"n_features={self.n_features}, n_old={self.n_old}, n_new={self.n_new}, "
            f"spiking={self.spiking}"
        )


# --------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------


def _linear_layers(model: Any) -> list[nn.Linear]:
    """``model.linear_layers()``, checked."""
    get = getattr(model, "linear_layers", None)
    if not callable(get) or not hasattr(model, "presynaptic"):
        raise InputTypeError(
            f"model ({type(model).__name__}) must have a linear_layers() method and a "
            "presynaptic list filled by forward (see neuro.snn.neurons.SpikingMLP)."
        )
    layers = list(get())
    if not layers or not all(isinstance(layer, nn.Linear) for layer in layers):
        raise InputTypeError("model.linear_layers() must return a non-empty list of nn.Linear.")
    return layers


def _presynaptic(model: Any, layers: Sequence[nn.Linear]) -> list[torch.Tensor]:
    """``model.presynaptic``, checked against the layers' input sizes."""
    acts = list(getattr(model, "presynaptic", None) or [])
    if len(acts) != len(layers):
        raise InputError(
            f"model.presynaptic holds {len(acts)} tensors for {len(layers)} linear layers; run "
            "a forward pass first (every forward must fill one (batch, in_features) tensor "
            "per layer)."
        )
    for i, (act, layer) in enumerate(zip(acts, layers, strict=True)):
        if act.ndim != 2 or act.shape[1] != layer.in_features:
            raise InputError(
                f"model.presynaptic[{i}] must have shape (batch, {layer.in_features}) (layer "
                f"{i}'s in_features); got {tuple(act.shape)}. Average over time steps first."
            )
    return acts


def _batch_inputs(batch: Any) -> torch.Tensor:
    """The model input of a batch: the batch itself, or the first item of a tuple/list."""
    x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    if not isinstance(x, torch.Tensor):
        raise InputTypeError(
            f"each activity batch must be an input tensor or a tuple (inputs, targets, ...); "
            f"got {type(batch).__name__}."
        )
    return x


def _collect(model: nn.Module, activity: Iterable[Any], layers: Sequence[nn.Linear]):
    """Run ``model`` on each batch of ``activity`` and yield its presynaptic tensors."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in activity:
                x = _batch_inputs(batch).to(layers[0].weight.device)
                model(x)
                yield _presynaptic(model, layers)
    finally:
        model.train(was_training)


def _project_gradients(layers: Sequence[nn.Linear], bases: Sequence[torch.Tensor | None]):
    """``grad_W <- grad_W - (grad_W U) U^T`` for each layer with a basis ``U``."""
    for layer, u in zip(layers, bases, strict=True):
        g = layer.weight.grad
        if g is None or u is None or u.shape[1] == 0:
            continue
        g.sub_((g @ u) @ u.T)


def _freeze_vectors(model: nn.Module) -> None:
    """Freeze biases, thresholds and norm scales (every 1-D parameter) and norm statistics.

    As the reference code does from task 1 on: parameters of at most one
    dimension stop learning (``requires_grad=False``, so optimizers skip them),
    and batch-norm layers keep their running statistics (momentum 0).
    """
    for p in model.parameters():
        if p.ndim <= 1:
            p.requires_grad_(False)
            p.grad = None  # a zero gradient would still let optimizer momentum move it
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.0


def _per_layer(name: str, value: Any, n_layers: int, kind: str) -> list[Any]:
    """A scalar broadcast to every layer, or a sequence with one entry per layer."""
    values = list(value) if isinstance(value, Sequence) else [value] * n_layers
    if len(values) != n_layers:
        raise InputError(
            f"{name} must give one {kind} per linear layer ({n_layers}); got {len(values)} "
            f"({value!r})."
        )
    return values


class ContinualStrategy:
    """Base class: the hooks a training loop calls around each task; all do nothing here.

    See the module docstring for the order of the calls. A strategy keeps its
    own state (subspaces, Fisher information) across tasks; use one strategy
    object per model.
    """

    #: Short name for tables.
    name = "base"

    def before_task(self, model: nn.Module, task_index: int) -> None:
        """Called before training on task ``task_index`` (0, 1, 2, ...)."""

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """A term to add to the training loss (0 unless overridden)."""
        param = next(model.parameters(), None)
        return torch.zeros((), device=None if param is None else param.device)

    def after_backward(self, model: nn.Module) -> None:
        """Called after ``loss.backward()`` and before the optimizer step; may edit ``.grad``."""

    def observe(self, model: nn.Module) -> None:
        """Called after each training forward pass; may learn from ``model.presynaptic``."""

    def after_task(self, model: nn.Module, task_index: int, activity: Iterable[Any]) -> None:
        """Called after training on task ``task_index``.

        Parameters
        ----------
        model : nn.Module
        task_index : int
        activity : iterable of batches
            The finished task's batches: input tensors, or tuples whose first
            item is the input (as the training loop iterates them).
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FineTune(ContinualStrategy):
    """Sequential fine-tuning: train each task as if it were the only one.

    The lower bound of continual learning: nothing protects old tasks.

    Examples
    --------
    >>> FineTune().name
    'finetune'
    """

    name = "finetune"


class EWC(ContinualStrategy):
    """Elastic weight consolidation (Kirkpatrick et al., 2017), diagonal Fisher.

    After each task, the diagonal Fisher information of every trainable
    parameter is estimated from the task's batches, as the mean over batches
    of the squared gradient of the batch loss (its scale shrinks with the
    batch size, which ``lambda_`` absorbs; inputs may be time- or batch-major
    since no sample count is needed), and added to the Fisher of earlier tasks
    (times ``decay``); the parameters are stored as the anchor. The loss gets
    ``lambda_ / 2 * sum F (theta - theta_anchor)^2``.

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(model, batch) -> scalar Tensor``: the task loss on one batch
        (mean over the batch), as the training loop computes it.
    lambda_ : float, default=100.0
        Strength of the penalty.
    decay : float, default=1.0
        Weight of the earlier tasks' Fisher when a task is added (1: plain sum,
        < 1: the "online EWC" running average).

    Attributes
    ----------
    fisher : dict of str to Tensor
        Accumulated diagonal Fisher, by parameter name.
    anchor : dict of str to Tensor
        Parameters at the end of the last task.

    Examples
    --------
    >>> model = nn.Linear(3, 2)
    >>> def loss_fn(m, batch):
    ...     return m(batch[0]).pow(2).mean()
    >>> ewc = EWC(loss_fn, lambda_=1.0)
    >>> ewc.after_task(model, 0, [(torch.ones(4, 3),)])
    >>> ewc.penalty(model).detach().item()
    0.0
    """

    name = "ewc"

    def __init__(
        self,
        loss_fn: Callable[[nn.Module, Any], torch.Tensor],
        lambda_: float = 100.0,
        decay: float = 1.0,
    ) -> None:
        if not callable(loss_fn):
            raise InputTypeError(
                f"loss_fn must be callable as loss_fn(model, batch) -> Tensor; got "
                f"{type(loss_fn).__name__}."
            )
        self.loss_fn = loss_fn
        self.lambda_ = check_float("lambda_", lambda_, minimum=0.0)
        self.decay = check_float("decay", decay, minimum=0.0, maximum=1.0)
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """``lambda_ / 2 * sum F (theta - theta_anchor)^2`` (0 before the first task ends)."""
        total = super().penalty(model)
        for name, p in model.named_parameters():
            f = self.fisher.get(name)
            if f is not None:
                total = total + (f * (p - self.anchor[name]).pow(2)).sum()
        return total * (self.lambda_ / 2)

    def after_task(self, model: nn.Module, task_index: int, activity: Iterable[Any]) -> None:
        """Add this task's Fisher to the total and anchor the parameters here."""
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        new = {n: torch.zeros_like(p) for n, p in named}
        n_batches = 0
        for batch in activity:
            loss = self.loss_fn(model, batch)
            grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
            for (n, _), g in zip(named, grads, strict=True):
                if g is not None:
                    new[n].add_(g.detach().pow(2))
            n_batches += 1
        if n_batches == 0:
            raise InputError(
                f"activity for task {task_index} holds no batches; EWC needs the task's data "
                "to estimate the Fisher information."
            )
        for n, f in new.items():
            f.div_(n_batches)
            old = self.fisher.get(n)
            self.fisher[n] = f if old is None else old * self.decay + f
        self.anchor = {n: p.detach().clone() for n, p in named}

    def __repr__(self) -> str:
        return f"EWC(lambda_={self.lambda_}, decay={self.decay})"


class GPM(ContinualStrategy):
    """Gradient projection memory (Saha et al., 2021): the exact subspace of past activity.

    After each task, the presynaptic activity of every linear layer on the
    task's batches forms a representation matrix; the singular vectors that
    explain ``threshold`` of its energy not already explained by the layer's
    basis are added to the basis (:func:`gpm_extend_basis`). Later tasks'
    weight gradients are projected on the basis' orthogonal complement,
    ``grad_W <- grad_W - (grad_W U) U^T``.

    Parameters
    ----------
    threshold : float or sequence of float, default=0.97
        Energy fraction per layer, in (0, 1].
    threshold_increment : float, default=0.0
        Added to every layer's threshold at each later task (capped at 1), as
        Saha et al. do on CIFAR-100.
    freeze_bias_from_task : int or None, default=1
        From this task on, 1-D parameters (biases, thresholds, norm scales)
        stop learning, since the projection does not protect them; None never.

    Attributes
    ----------
    bases : list of Tensor or None
        Per layer, the ``(in_features, k)`` orthonormal basis (float32, on the
        layer's device), None before the first task ends.

    Examples
    --------
    >>> GPM(threshold=[0.95, 0.99]).name
    'gpm'
    """

    name = "gpm"

    def __init__(
        self,
        threshold: float | Sequence[float] = 0.97,
        threshold_increment: float = 0.0,
        freeze_bias_from_task: int | None = 1,
    ) -> None:
        thresholds = list(threshold) if isinstance(threshold, Sequence) else [threshold]
        for i, th in enumerate(thresholds):
            check_float(f"threshold[{i}]", th, minimum=0.0, maximum=1.0, strict_minimum=True)
        self.threshold = threshold
        self.threshold_increment = check_float(
            "threshold_increment", threshold_increment, minimum=0.0
        )
        self.freeze_bias_from_task = check_int(
            "freeze_bias_from_task", freeze_bias_from_task, minimum=0, allow_none=True
        )
        self.bases: list[torch.Tensor | None] = []
        self._grams: list[torch.Tensor] = []

    def before_task(self, model: nn.Module, task_index: int) -> None:
        task_index = check_int("task_index", task_index, minimum=0)
        layers = _linear_layers(model)
        _per_layer("threshold", self.threshold, len(layers), "threshold")
        if task_index == 0 or not self.bases:
            self.bases = [None] * len(layers)
        elif len(self.bases) != len(layers):
            raise InputError(
                f"model has {len(layers)} linear layers but GPM holds bases for "
                f"{len(self.bases)}; use one strategy object per model."
            )
        if self.freeze_bias_from_task is not None and task_index >= self.freeze_bias_from_task:
            _freeze_vectors(model)

    def after_backward(self, model: nn.Module) -> None:
        if any(u is not None for u in self.bases):
            _project_gradients(_linear_layers(model), self.bases)

    def after_task(self, model: nn.Module, task_index: int, activity: Iterable[Any]) -> None:
        """Add the directions of this task's presynaptic activity to each layer's basis."""
        layers = _linear_layers(model)
        if len(self.bases) != len(layers):
            self.bases = [None] * len(layers)
        grams = [
            torch.zeros(lay.in_features, lay.in_features, device=lay.weight.device)
            for lay in layers
        ]
        seen = 0
        for acts in _collect(model, activity, layers):
            for gram, act in zip(grams, acts, strict=True):
                a = act.to(gram.dtype)
                gram.addmm_(a.T, a)
            seen += 1
        if seen == 0:
            raise InputError(
                f"activity for task {task_index} holds no batches; GPM needs the task's inputs "
                "to find the subspace to protect."
            )
        thresholds = _per_layer("threshold", self.threshold, len(layers), "threshold")
        for i, (gram, layer) in enumerate(zip(grams, layers, strict=True)):
            th = min(1.0, thresholds[i] + self.threshold_increment * task_index)
            old = self.bases[i]
            basis = gpm_extend_basis(gram.cpu(), None if old is None else old.cpu(), th)
            self.bases[i] = basis.to(layer.weight.device, layer.weight.dtype)

    def subspace_bases(self) -> list[torch.Tensor | None]:
        """Per layer, the protected basis ``(in_features, k)`` (copies), None if empty."""
        return [None if u is None else u.clone() for u in self.bases]

    def __repr__(self) -> str:
        return f"GPM(threshold={self.threshold!r})"


def pmnist_added_schedule(
    n_tasks: int = 10,
    added: Sequence[int] = (70, 70, 70),
    shrink: int = 20,
    every: int = 3,
) -> list[list[int]]:
    """The paper's PMNIST schedule of added lateral neurons, one entry per task from task 1.

    The increment starts at ``added`` and shrinks by ``shrink`` (per layer) at
    tasks ``every``, ``2 every``, ... before neurons are added: from
    ``[80, 200, 100]`` at task 0, ten tasks end at ``[470, 590, 490]``.

    Parameters
    ----------
    n_tasks : int, default=10
    added : sequence of int, default=(70, 70, 70)
    shrink : int, default=20
    every : int, default=3

    Returns
    -------
    list of list of int
        ``schedule[t - 1]`` is added at task ``t``; pass it as ``HLOP(added=...)``.

    Examples
    --------
    >>> [s[0] for s in pmnist_added_schedule()]
    [70, 70, 50, 50, 50, 30, 30, 30, 10]
    """
    n_tasks = check_int("n_tasks", n_tasks, minimum=1)
    shrink = check_int("shrink", shrink, minimum=0)
    every = check_int("every", every, minimum=1)
    current = [check_int(f"added[{i}]", a, minimum=0) for i, a in enumerate(added)]
    schedule = []
    for t in range(1, n_tasks):
        if t % every == 0:
            current = [max(0, a - shrink) for a in current]
        schedule.append(list(current))
    return schedule


class HLOP(ContinualStrategy):
    """Hebbian learning based orthogonal projection (Xiao et al., ICLR 2024).

    One :class:`HebbianSubspace` per linear layer, on its presynaptic activity.
    The paper's schedule:

    * task 0 trains without projection; ``lateral[i]`` lateral neurons learn
      from each training batch's presynaptic activity (:meth:`observe`);
    * each later task adds ``added`` neurons per layer; only they learn, while
      every weight gradient is projected on the complement of the old
      subspace, ``grad_W <- grad_W - (grad_W W_old^T) W_old``;
    * after each task the new neurons are merged into the old subspace;
    * from task ``freeze_bias_from_task`` on, 1-D parameters (biases,
      thresholds, norm scales) stop learning and batch-norm statistics stay.

    With ``spiking=True`` the lateral neurons read ``y`` from spike counts while
    they learn (and in :meth:`HebbianSubspace.project`); the gradient
    projection uses ``W_old`` directly, which equals projecting the
    time-averaged activity through the rate circuit (rounding the lateral
    response to a weight gradient, whose entries are tiny, would erase it).

    Parameters
    ----------
    lateral : int or sequence of int, default=(80, 200, 100)
        Lateral neurons per layer at task 0 (the paper's PMNIST network).
    added : int, sequence of int, or sequence of sequences, default=(70, 70, 70)
        Neurons added per layer at each later task; or one per-layer list per
        later task (``added[t - 1]`` at task ``t``), e.g.
        :func:`pmnist_added_schedule`.
    lr : float or sequence of float, default=(1e-3, 1e-2, 1e-2)
        Oja learning rate per layer.
    n_iter : int, default=5
        Oja iterations per training batch.
    momentum : float, default=0.9
    clamp : float, default=10.0
    spiking : bool, default=False
        Spiking lateral neurons (:func:`spike_quantise`).
    spike_scale : float, default=20.0
    spike_steps : int, default=1000
    freeze_bias_from_task : int or None, default=1
    random_state : int, default=0
        Seed of the new rows' random orthonormal initialisation.

    Attributes
    ----------
    subspaces : list of HebbianSubspace
        One per linear layer, created at task 0.

    Examples
    --------
    >>> HLOP(lateral=[4, 4], added=2, lr=0.01).name
    'hlop'
    """

    name = "hlop"

    def __init__(
        self,
        lateral: int | Sequence[int] = (80, 200, 100),
        added: int | Sequence[int] | Sequence[Sequence[int]] = (70, 70, 70),
        lr: float | Sequence[float] = (1e-3, 1e-2, 1e-2),
        n_iter: int = 5,
        momentum: float = 0.9,
        clamp: float = 10.0,
        spiking: bool = False,
        spike_scale: float = 20.0,
        spike_steps: int = 1000,
        freeze_bias_from_task: int | None = 1,
        random_state: int = 0,
    ) -> None:
        self.lateral = lateral
        self.added = added
        self.lr = lr
        self.n_iter = check_int("n_iter", n_iter, minimum=1)
        self.momentum = check_float(
            "momentum", momentum, minimum=0.0, maximum=1.0, strict_maximum=True
        )
        self.clamp = check_float("clamp", clamp, minimum=0.0, strict_minimum=True)
        self.spiking = check_bool("spiking", spiking)
        self.spike_scale = check_float("spike_scale", spike_scale, minimum=0.0, strict_minimum=True)
        self.spike_steps = check_int("spike_steps", spike_steps, minimum=1)
        self.freeze_bias_from_task = check_int(
            "freeze_bias_from_task", freeze_bias_from_task, minimum=0, allow_none=True
        )
        self.random_state = check_int("random_state", random_state)
        _check_counts("lateral", lateral, minimum=1)
        if isinstance(added, Sequence) and added and isinstance(added[0], Sequence):
            for t, entry in enumerate(added):
                _check_counts(f"added[{t}]", entry, minimum=0)
        else:
            _check_counts("added", added, minimum=0)
        for i, rate in enumerate(lr if isinstance(lr, Sequence) else [lr]):
            check_float(f"lr[{i}]", rate, minimum=0.0, strict_minimum=True)
        self.subspaces: list[HebbianSubspace] = []
        self._lr: list[float] = []
        self._generator = torch.Generator()

    def _added_at(self, task_index: int, n_layers: int) -> list[int]:
        added = self.added
        if isinstance(added, Sequence) and added and isinstance(added[0], Sequence):
            if task_index - 1 >= len(added):
                raise InputError(
                    f"added gives neurons for tasks 1..{len(added)} only; task {task_index} "
                    "needs an entry too (extend the schedule, e.g. pmnist_added_schedule("
                    f"n_tasks={task_index + 1}))."
                )
            added = added[task_index - 1]
        return _per_layer("added", added, n_layers, "count")

    def check_capacity(self, inputs: Sequence[int], n_tasks: int) -> list[int]:
        """Check the whole schedule of lateral neurons against the layers before training.

        A layer's lateral neurons span a subspace of its presynaptic
        features, so they can never outnumber them; :meth:`before_task`
        refuses that too, but only when the task that overflows arrives.
        This check runs the schedule to the last task up front.

        Parameters
        ----------
        inputs : sequence of int
            Presynaptic features of each linear layer, in order.
        n_tasks : int
            Tasks of the stream.

        Returns
        -------
        list of int
            Lateral neurons per layer after the last task.

        Raises
        ------
        InputError
            Naming the layer, its count by the last task, its inputs and the
            largest constant ``added`` that would fit.

        Examples
        --------
        >>> HLOP(lateral=[20, 40], added=[8, 12]).check_capacity([64, 100], 5)
        [52, 88]
        """
        inputs = [check_int(f"inputs[{i}]", n, minimum=1) for i, n in enumerate(inputs)]
        n_tasks = check_int("n_tasks", n_tasks, minimum=1)
        totals = list(_per_layer("lateral", self.lateral, len(inputs), "count"))
        for i, (k, n) in enumerate(zip(totals, inputs, strict=True)):
            if k > n:
                raise InputError(
                    f"lateral: layer {i} reads {n} inputs but is given {k} lateral neurons; "
                    f"they span a subspace of the layer's inputs, so give at most {n}."
                )
        for t in range(1, n_tasks):
            totals = [a + b for a, b in zip(totals, self._added_at(t, len(inputs)), strict=True)]
            for i, (k, n) in enumerate(zip(totals, inputs, strict=True)):
                if k > n:
                    first = _per_layer("lateral", self.lateral, len(inputs), "count")[i]
                    room = (n - first) // (n_tasks - 1)
                    raise InputError(
                        f"added: layer {i} ({n} inputs) would hold {k} lateral neurons at task "
                        f"{t} of {n_tasks}, more than its inputs; add at most {room} per task "
                        "for it, start with fewer lateral neurons, or learn fewer tasks."
                    )
        return totals

    def before_task(self, model: nn.Module, task_index: int) -> None:
        """Create the lateral neurons (task 0) or add new ones (later tasks)."""
        task_index = check_int("task_index", task_index, minimum=0)
        layers = _linear_layers(model)
        if task_index == 0:
            counts = _per_layer("lateral", self.lateral, len(layers), "count")
            self._lr = _per_layer("lr", self.lr, len(layers), "learning rate")
            self._generator.manual_seed(self.random_state)
            self.subspaces = [
                HebbianSubspace(
                    layer.in_features,
                    spiking=self.spiking,
                    spike_scale=self.spike_scale,
                    spike_steps=self.spike_steps,
                    device=layer.weight.device,
                    dtype=layer.weight.dtype,
                )
                for layer in layers
            ]
        else:
            if len(self.subspaces) != len(layers):
                raise InputError(
                    f"before_task({task_index}) came before before_task(0) on this model (HLOP "
                    f"holds {len(self.subspaces)} subspaces for {len(layers)} layers); start "
                    "the stream at task 0."
                )
            counts = self._added_at(task_index, len(layers))
        for i, (sub, k) in enumerate(zip(self.subspaces, counts, strict=True)):
            if k == 0:
                continue
            if sub.n_neurons + k > sub.n_features:
                raise InputError(
                    f"layer {i}: {sub.n_neurons} + {k} lateral neurons at task {task_index} "
                    f"would exceed its {sub.n_features} presynaptic features; give fewer "
                    "lateral/added neurons for this layer."
                )
            sub.add_neurons(k, generator=self._generator)
        if self.freeze_bias_from_task is not None and task_index >= self.freeze_bias_from_task:
            _freeze_vectors(model)

    def observe(self, model: nn.Module) -> None:
        """One Oja step per layer on the presynaptic activity of the last forward pass."""
        layers = _linear_layers(model)
        acts = _presynaptic(model, layers)
        for sub, act, lr in zip(self.subspaces, acts, self._lr, strict=True):
            if sub.n_new:
                sub._learn(act.detach(), lr, self.n_iter, self.momentum, self.clamp)

    def after_backward(self, model: nn.Module) -> None:
        """Project each weight gradient on the complement of its layer's old subspace."""
        layers = _linear_layers(model)
        for layer, sub in zip(layers, self.subspaces, strict=True):
            g = layer.weight.grad
            if g is None or sub.n_old == 0:
                continue
            w = sub.old_weight.to(g.dtype)
            g.sub_((g @ w.T) @ w)

    def after_task(self, model: nn.Module, task_index: int, activity: Iterable[Any]) -> None:
        """Merge: the neurons that learned during this task join the protected subspace."""
        for sub in self.subspaces:
            sub.merge()

    def subspace_bases(self, rows: str = "old") -> list[torch.Tensor]:
        """Per layer, the lateral weights as basis columns ``(in_features, k)`` (copies)."""
        return [sub.basis(rows) for sub in self.subspaces]

    def __repr__(self) -> str:
        return f"HLOP(lateral={self.lateral!r}, added={self.added!r}, spiking={self.spiking})"


def _check_counts(name: str, value: Any, minimum: int) -> None:
    for i, v in enumerate(value if isinstance(value, Sequence) else [value]):
        check_int(f"{name}[{i}]" if isinstance(value, Sequence) else name, v, minimum=minimum)
