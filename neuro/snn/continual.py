"""A spiking network that learns a stream of tasks, with HLOP or a baseline strategy.

:class:`ContinualSNN` trains a :class:`~neuro.snn.neurons.SpikingMLP` on each
task of a :class:`data_loaders.continual.TaskStream` in turn, through
:class:`neuro.train.Trainer` (SGD, constant learning rate, as the paper), with
one of the strategies of :mod:`neuro.snn.hlop` hooked into the loop:

* ``strategy.before_task`` before each task (HLOP adds lateral neurons; from
  task 1 on, biases and thresholds freeze);
* ``strategy.observe`` after each training forward pass (HLOP's lateral
  neurons learn from the presynaptic activity by Oja's rule) and
  ``strategy.penalty`` added to the loss (EWC);
* ``strategy.after_backward`` in the Trainer's ``on_before_optimizer_step``
  callback (HLOP and GPM project the weight gradients away from the
  protected subspace);
* ``strategy.after_task`` after each task (HLOP merges the new lateral
  neurons; GPM extends its SVD basis; EWC stores its Fisher information).

After every task the network is scored on the test set of every task, which
fills the accuracy matrix ``R[i, j]`` (accuracy on task ``j`` after learning
task ``i``); ACC and BWT follow the paper's definitions
(:mod:`neuro.snn.metrics`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from neuro._validation import check_choice, check_float, check_int
from neuro.base import NeuroEstimator
from neuro.errors import InputError, InputTypeError
from neuro.snn.hlop import EWC, GPM, HLOP, FineTune
from neuro.snn.metrics import acc as acc_score
from neuro.snn.metrics import bwt as bwt_score
from neuro.snn.metrics import principal_angles
from neuro.snn.neurons import SpikingMLP
from neuro.train import Callback

__all__ = ["METHODS", "ContinualSNN"]

#: The strategies :class:`ContinualSNN` offers.
METHODS = ("hlop", "gpm", "ewc", "finetune")


class _Objective(nn.Module):
    """The network's loss plus the strategy's penalty; the strategy observes each forward."""

    def __init__(self, net: SpikingMLP, strategy) -> None:
        super().__init__()
        self.net = net
        self.strategy = strategy

    def training_step(self, batch):
        x, y = batch
        loss = self.net.loss(x, y)
        self.strategy.observe(self.net)
        penalty = self.strategy.penalty(self.net)
        return {"loss": loss + penalty, "task_loss": loss.detach()}


class _ProjectGradients(Callback):
    """Calls the strategy's ``after_backward`` before each optimizer step."""

    def __init__(self, net: SpikingMLP, strategy) -> None:
        self.net = net
        self.strategy = strategy

    def on_before_optimizer_step(self, trainer) -> None:
        self.strategy.after_backward(self.net)


def _ewc_loss(model, batch):
    x, y = batch
    return model.loss(x, y)


class ContinualSNN(NeuroEstimator):
    """A spiking MLP trained task after task with HLOP, GPM, EWC or plain fine-tuning.

    Parameters
    ----------
    method : {"hlop", "gpm", "ewc", "finetune"}, default="hlop"
        The continual-learning strategy (:mod:`neuro.snn.hlop`).
    hidden : sequence of int, default=(800, 800)
        Hidden layer widths (the paper's PMNIST network is 784-800-800-10).
    neuron_method : {"dsr", "bptt", "ottt"}, default="dsr"
        How the spiking network is trained (:class:`~neuro.snn.neurons.SpikingMLP`).
    T : int, optional
        Time steps (default: the method's, 20 for DSR and 6 otherwise).
    epochs : int, default=1
        Epochs per task (the paper: 1 for PMNIST).
    batch_size : int, default=64
    lr : float, default=0.1
        SGD learning rate, constant (the paper's PMNIST setting).
    momentum : float, default=0.0
        SGD momentum.
    lateral, added : optional
        HLOP's lateral neurons per layer at task 0 and added per later task
        (default: the paper's PMNIST [80, 200, 100] and [70, 70, 70] for
        three layers; else about 10 % and 9 % of each layer's inputs).
    hebbian_lr : float or sequence, optional
        Oja learning rate per layer (default: 1e-3 for the input layer, 1e-2
        for the others, as the reference).
    hebbian_iterations : int, default=5
        Oja updates per training batch (the reference's 5). Oja's rule
        converges in about ``1 / (lr * eigenvalue)`` updates per direction:
        on PMNIST the reference makes about 940 batches a task, while a small
        dataset (scikit-learn's digits: about 21 batches of 64) needs more
        updates per batch for the lateral neurons to find the subspace.
    spiking_lateral : bool, default=False
        Spiking lateral neurons (HLOP).
    gpm_threshold : float, default=0.97
        GPM's share of the activity energy to protect.
    ewc_lambda : float, default=1000.0
        EWC's penalty strength.
    device : str, default="auto"
    random_state : int, default=0
    verbose : int, default=0

    Attributes
    ----------
    net_ : SpikingMLP
    strategy_ : ContinualStrategy
    accuracy_matrix_ : ndarray of shape (n_tasks, n_tasks)
        ``[i, j]``: test accuracy (fraction) on task ``j`` after learning task ``i``.
    acc_, bwt_ : float
        Mean final accuracy, and the mean change of each earlier task's
        accuracy from just after it was learned to the end (0: no forgetting).
    task_names_ : list of str
    history_ : list of list of dict
        The Trainer's history of each task.

    Examples
    --------
    >>> from data_loaders.continual import permuted_digits
    >>> stream = permuted_digits(n_tasks=2, seed=0)
    >>> model = ContinualSNN(hidden=(32,), lateral=[8, 4], added=[6, 3], device="cpu")
    >>> model.fit(stream).accuracy_matrix_.shape
    (2, 2)
    """

    def __init__(
        self,
        method: str = "hlop",
        hidden=(800, 800),
        neuron_method: str = "dsr",
        T: int | None = None,
        epochs: int = 1,
        batch_size: int = 64,
        lr: float = 0.1,
        momentum: float = 0.0,
        lateral=None,
        added=None,
        hebbian_lr=None,
        hebbian_iterations: int = 5,
        spiking_lateral: bool = False,
        gpm_threshold: float = 0.97,
        ewc_lambda: float = 1000.0,
        device: str = "auto",
        random_state: int = 0,
        verbose: int = 0,
    ) -> None:
        self.method = method
        self.hidden = hidden
        self.neuron_method = neuron_method
        self.T = T
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.lateral = lateral
        self.added = added
        self.hebbian_lr = hebbian_lr
        self.hebbian_iterations = hebbian_iterations
        self.spiking_lateral = spiking_lateral
        self.gpm_threshold = gpm_threshold
        self.ewc_lambda = ewc_lambda
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ parts
    def _sizes(self, stream) -> tuple[int, ...]:
        hidden = [self.hidden] if isinstance(self.hidden, (int, np.integer)) else self.hidden
        hidden = [check_int(f"hidden[{i}]", h, minimum=1) for i, h in enumerate(hidden)]
        return (int(stream.n_features), *hidden, int(stream.n_classes))

    def _strategy(self, sizes):
        method = check_choice("method", self.method, METHODS)
        if method == "finetune":
            return FineTune()
        if method == "ewc":
            return EWC(_ewc_loss, lambda_=check_float("ewc_lambda", self.ewc_lambda, minimum=0.0))
        if method == "gpm":
            return GPM(threshold=self.gpm_threshold)
        inputs = sizes[:-1]  # each linear layer's presynaptic size
        paper = tuple(sizes) == (784, 800, 800, 10)
        lateral = self.lateral
        if lateral is None:
            lateral = [80, 200, 100] if paper else [max(1, n // 10) for n in inputs]
        added = self.added
        if added is None:
            added = [70, 70, 70] if paper else [max(1, (n * 9) // 100) for n in inputs]
        lr = self.hebbian_lr
        if lr is None:
            lr = [1e-3] + [1e-2] * (len(inputs) - 1)
        return HLOP(
            lateral=lateral,
            added=added,
            lr=lr,
            n_iter=check_int("hebbian_iterations", self.hebbian_iterations, minimum=1),
            spiking=bool(self.spiking_lateral),
            random_state=self.random_state,
        )

    def _device(self):
        from neuro.train.device import resolve_device

        return resolve_device(self.device)

    @staticmethod
    def _check_stream(stream):
        for attr in ("n_features", "n_classes", "__len__", "__getitem__"):
            if not hasattr(stream, attr):
                raise InputTypeError(
                    "Give a TaskStream (data_loaders.continual: permuted_digits, split_digits, "
                    f"permuted_mnist, split_cifar100); got {type(stream).__name__}."
                )
        if len(stream) < 1:
            raise InputError("The task stream is empty; give at least one task.")
        return stream

    def _tensors(self, task, split: str, device):
        x = np.asarray(getattr(task, f"X_{split}"), dtype=np.float32)
        y = np.asarray(getattr(task, f"y_{split}"), dtype=np.int64)
        if x.ndim != 2:
            raise InputError(
                f"task {task.name!r}: X_{split} must be (n_samples, n_features); got shape "
                f"{x.shape}. Flatten images first."
            )
        return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

    def _check_settings(self, stream):
        for name in ("epochs", "batch_size"):
            check_int(name, getattr(self, name), minimum=1)
        check_float("lr", self.lr, minimum=0.0, strict_minimum=True)
        check_float("momentum", self.momentum, minimum=0.0, maximum=1.0)
        check_choice("neuron_method", self.neuron_method, ("dsr", "bptt", "ottt"))
        check_int("T", self.T, minimum=1, allow_none=True)
        sizes = self._sizes(stream)
        strategy = self._strategy(sizes)
        if isinstance(strategy, HLOP):
            strategy.check_capacity(sizes[:-1], len(stream))
        return sizes, strategy

    def check(self, stream) -> ContinualSNN:
        """Refuse settings that :meth:`fit` would refuse on ``stream``, without training.

        Checks the stream's type, every setting, and, for HLOP, the whole
        schedule of lateral neurons against each layer's inputs up to the
        last task (:meth:`HLOP.check_capacity <neuro.snn.hlop.HLOP.check_capacity>`),
        so that a comparison of several methods fails before the first one
        trains rather than midway. :meth:`fit` runs the same checks first.

        Parameters
        ----------
        stream : TaskStream

        Returns
        -------
        self

        Raises
        ------
        InputError
            Naming the setting and the fix.

        Examples
        --------
        >>> from data_loaders.continual import permuted_digits
        >>> ContinualSNN(hidden=(32,), lateral=[8, 40]).check(permuted_digits(n_tasks=2))
        Traceback (most recent call last):
        ...
        data_loaders.errors.InputError: lateral: layer 1 reads 32 inputs but is given 40 lateral ...
        """
        self._check_settings(self._check_stream(stream))
        return self

    # -------------------------------------------------------------------- fit
    def fit(self, X, y=None):
        """Learn every task of the stream in order, scoring all tasks after each.

        Parameters
        ----------
        X : TaskStream
            From :mod:`data_loaders.continual`.
        y : None
            Unused (each task holds its labels).

        Returns
        -------
        self
        """
        from neuro.train import Trainer
        from neuro.train.seed import seed_everything

        stream = self._check_stream(X)
        sizes, strategy = self._check_settings(stream)
        lr = float(self.lr)
        momentum = float(self.momentum)
        device = self._device()
        seed_everything(self.random_state)
        net = SpikingMLP(sizes, method=self.neuron_method, T=self.T).to(device)
        n = len(stream)
        R = np.full((n, n), np.nan)
        self.history_ = []
        self.net_, self.strategy_ = net, strategy
        for i in range(n):
            task = stream[i]
            x, labels = self._tensors(task, "train", device)
            net.train()
            strategy.before_task(net, i)
            trainer = Trainer(
                max_epochs=self.epochs,
                batch_size=min(self.batch_size, len(x)),
                optimizer=lambda params: torch.optim.SGD(
                    [p for p in params if p.requires_grad], lr=lr, momentum=momentum
                ),
                scheduler=False,
                callbacks=[_ProjectGradients(net, strategy)],
                device=self.device,
                seed=self.random_state + i,
                verbose=self.verbose,
            )
            self.history_.append(trainer.fit(_Objective(net, strategy), (x, labels)))
            net.to(device)
            batches = [
                (x[s : s + self.batch_size], labels[s : s + self.batch_size])
                for s in range(0, len(x), self.batch_size)
            ]
            strategy.after_task(net, i, batches)
            R[i] = [self._accuracy(stream[j], device) for j in range(n)]
        net.cpu().eval()
        self.accuracy_matrix_ = R
        self.acc_ = float(acc_score(R))
        self.bwt_ = float(bwt_score(R))
        self.task_names_ = [str(stream[j].name) for j in range(n)]
        self.sizes_ = sizes
        return self

    # -------------------------------------------------------------- inference
    def _logits(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        net = self.net_.eval()
        out = []
        with torch.no_grad():
            for s in range(0, len(x), batch_size):
                out.append(net(x[s : s + batch_size]).float())
        return torch.cat(out) if out else torch.zeros(0, self.sizes_[-1])

    def _accuracy(self, task, device) -> float:
        x, labels = self._tensors(task, "test", device)
        was = self.net_.training
        try:
            pred = self._logits(x).argmax(1)
        finally:
            self.net_.train(was)
        return float((pred == labels).float().mean())

    def predict(self, X) -> np.ndarray:
        """Class labels of inputs ``(n_samples, n_features)`` (values in [0, 1])."""
        self._check_fitted()
        x = torch.as_tensor(np.asarray(X, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != self.sizes_[0]:
            raise InputError(
                f"X must be (n_samples, {self.sizes_[0]}); got shape {tuple(x.shape)}."
            )
        return self._logits(x).argmax(1).numpy()

    def score(self, X, y=None) -> float:
        """Mean test accuracy over the tasks of a stream (ACC on that stream)."""
        self._check_fitted()
        stream = self._check_stream(X)
        return float(np.mean([self._accuracy(stream[j], "cpu") for j in range(len(stream))]))

    def subspace_angles(self, stream) -> list[np.ndarray]:
        """Principal angles (degrees) between HLOP's subspace and the exact one, per layer.

        The exact subspace is GPM's: the SVD basis of the presynaptic
        activity of every task of ``stream`` (run through the final
        network) keeping the same number of directions as HLOP's lateral
        neurons in that layer. Only for ``method="hlop"``.
        """
        from neuro.snn.hlop import _collect, _linear_layers

        self._check_fitted()
        if self.method != "hlop":
            raise InputError("subspace_angles compares HLOP's lateral neurons; fit method='hlop'.")
        stream = self._check_stream(stream)
        layers = _linear_layers(self.net_)
        grams = [torch.zeros(layer.in_features, layer.in_features) for layer in layers]
        for j in range(len(stream)):
            x, _ = self._tensors(stream[j], "train", "cpu")
            batches = [x[s : s + 256] for s in range(0, len(x), 256)]
            for acts in _collect(self.net_, batches, layers):
                for gram, a in zip(grams, acts, strict=True):
                    gram.addmm_(a.T.float(), a.float())
        out = []
        for gram, basis in zip(grams, self.strategy_.subspace_bases("old"), strict=True):
            k = basis.shape[1]
            _, vecs = torch.linalg.eigh(gram.double())
            exact = vecs[:, -k:].float()  # top-k eigenvectors of the activity's Gram matrix
            out.append(np.asarray(principal_angles(basis.numpy(), exact.numpy())))
        return out

    # ------------------------------------------------------------- save/load
    def _fitted_state(self) -> dict[str, Any]:
        state = {
            "weights": {k: v.detach().cpu() for k, v in self.net_.state_dict().items()},
            "accuracy_matrix_": self.accuracy_matrix_,
            "acc_": self.acc_,
            "bwt_": self.bwt_,
            "task_names_": list(self.task_names_),
            "sizes_": list(self.sizes_),
            "history_": self.history_,
        }
        s = self.strategy_
        if isinstance(s, HLOP):
            state["hlop"] = [
                {"weight": sub.weight.cpu(), "velocity": sub.velocity.cpu(), "n_old": sub.n_old}
                for sub in s.subspaces
            ]
        elif isinstance(s, GPM):
            state["gpm"] = [torch.zeros(0) if u is None else u.cpu() for u in s.subspace_bases()]
        elif isinstance(s, EWC):
            state["ewc"] = {"fisher": dict(s.fisher), "anchor": dict(s.anchor)}
        return state

    def _restore_fitted_state(self, state: dict[str, Any]) -> None:
        from neuro.snn.hlop import HebbianSubspace

        state = dict(state)
        self.sizes_ = tuple(int(v) for v in state.pop("sizes_"))
        net = SpikingMLP(self.sizes_, method=self.neuron_method, T=self.T)
        net.load_state_dict(state.pop("weights"))
        self.net_ = net.eval()
        self.strategy_ = self._strategy(self.sizes_)
        hlop, gpm, ewc = state.pop("hlop", None), state.pop("gpm", None), state.pop("ewc", None)
        if hlop is not None:
            subs = []
            for entry in hlop:
                sub = HebbianSubspace(entry["weight"].shape[1], spiking=bool(self.spiking_lateral))
                sub.weight = entry["weight"]
                sub.velocity = entry["velocity"]
                sub.n_old = int(entry["n_old"])
                subs.append(sub)
            self.strategy_.subspaces = subs
        if gpm is not None:
            self.strategy_.bases = [None if u.numel() == 0 else u for u in gpm]
        if ewc is not None:
            self.strategy_.fisher, self.strategy_.anchor = ewc["fisher"], ewc["anchor"]
        for key, value in state.items():
            setattr(self, key, value)
