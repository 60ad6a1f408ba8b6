"""The paper's further analyses of trained networks, as its public code computes them.

Khajehabdollahi et al. (ICLR 2024) and their public code
(LevinaLab/rnn_timescale_public) go beyond timescales with four analyses;
each function here follows that code by default and says where it departs:

* :func:`pca_dimensionality` / :func:`network_dimensionality`: how many
  principal components carry 90% of the variance of the activity under random
  input (``analysis/network_dynamics``);
* :func:`stream_accuracy`: the code's accuracy for ablations and
  perturbations, read at *every* step of one long random stream (1,000 steps
  after 100 of warm-up, bits ``Bernoulli(0.5)``), not once per sequence;
* :func:`tau_ablation`: the 20 fastest and the 20 slowest neurons (by trained
  tau) silenced one at a time (``analysis/ablations``);
* :func:`normalized_perturbation_curve`: perturbations of the taus (increase
  only) or of the recurrent weights whose norm is a set fraction of the
  parameters' norm (``analysis/perturbation_retraining``);
* :func:`retraining_curve`: a (perturbed) network trained again as a
  single-head network on one N or on larger N (the paper's Figure 8).

The package's :func:`~neuro.rnn.timescales.ablation_curve` (fractions of
neurons, accuracy on task sequences) stays beside these.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from neuro._validation import check_array, check_bool, check_choice, check_float, check_int
from neuro.errors import InputError, InputTypeError
from neuro.rnn.models import GRUNetwork, LeakyRNN, LSTMNetwork, RecurrentNetwork, check_network
from neuro.rnn.tasks import check_ns
from neuro.rnn.timescales import _activity_chunks, _check_simulation

__all__ = [
    "network_dimensionality",
    "normalized_perturbation_curve",
    "pca_dimensionality",
    "retraining_curve",
    "stream_accuracy",
    "tau_ablation",
]


# ------------------------------------------------------------------ PCA dimensionality
def _dimensions(cov: np.ndarray, threshold: float, paper_indexing: bool) -> tuple:
    """Explained-variance ratios ``(trials, neurons)`` and dimensionality ``(trials,)``."""
    ev = np.linalg.eigvalsh(cov)[:, ::-1].clip(min=0.0)  # descending, per trial
    total = ev.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(total > 0, ev / total, np.nan)
    # the number of components whose cumulative share first exceeds the threshold
    first = (np.cumsum(np.nan_to_num(ratio), 1) > threshold).argmax(1)
    dims = first if paper_indexing else first + 1
    dims = np.where(total[:, 0] > 0, dims, 0)
    return ratio, dims.astype(np.int64)


def _check_pca(threshold, paper_indexing) -> tuple[float, bool]:
    threshold = check_float("threshold", threshold, minimum=0.0, maximum=1.0, strict_maximum=True)
    return threshold, check_bool("paper_indexing", paper_indexing)


def pca_dimensionality(
    activity, threshold: float = 0.9, paper_indexing: bool = False
) -> dict[str, np.ndarray]:
    """Dimensionality of activity: the principal components needed for ``threshold`` of its variance.

    PCA is done per trial (the activity centred over time), as the public
    code's ``comp_pca`` does with scikit-learn's ``PCA``.

    Parameters
    ----------
    activity : array (trials, T, neurons) or (T, neurons)
    threshold : float, default=0.9
        Share of the variance, in ``[0, 1)`` (the code's ``max_explained_variance``).
    paper_indexing : bool, default=False
        The public code reports ``np.where(cumsum > threshold)[0][0]``, the
        0-based *index* of the component that crosses the threshold, i.e. one
        less than the number of components (activity on a line has
        "dimensionality 0"). False counts components; True reproduces the
        code's numbers.

    Returns
    -------
    dict
        ``explained_variance_ratio (trials, neurons)`` (descending; NaN for
        activity that never varies) and ``dimensionality (trials,)`` (0 for
        such activity).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> latent = rng.standard_normal((2_000, 3))  # three planted dimensions
    >>> x = latent @ rng.standard_normal((3, 20)) + 0.01 * rng.standard_normal((2_000, 20))
    >>> int(pca_dimensionality(x)["dimensionality"][0])
    3
    """
    a = check_array(
        "activity", activity, ndim=(2, 3), shape_hint="(trials, T, neurons)", dtype=np.float64
    )
    threshold, paper_indexing = _check_pca(threshold, paper_indexing)
    a = a[None] if a.ndim == 2 else a
    if a.shape[1] < 2:
        raise InputError(f"activity needs at least 2 time steps per trial; got {a.shape[1]}.")
    c = a - a.mean(1, keepdims=True)
    cov = np.einsum("kti,ktj->kij", c, c) / (a.shape[1] - 1)
    ratio, dims = _dimensions(cov, threshold, paper_indexing)
    return {"explained_variance_ratio": ratio, "dimensionality": dims}


@torch.no_grad()
def network_dimensionality(
    network: RecurrentNetwork,
    n_steps: int = 100_500,
    n_trials: int = 10,
    burn_in: int = 500,
    threshold: float = 0.9,
    paper_indexing: bool = False,
    chunk: int = 2_000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """:func:`pca_dimensionality` of ``network``'s activity under random input, streamed.

    The drive is :func:`~neuro.rnn.timescales.simulate_activity`'s (per trial
    ``p ~ U(0, 1)``, bits ``Bernoulli(p)``, as the public code's
    ``make_binary_data``); the defaults are the code's (``T = 1e5 + 500``
    steps kept after 500 of burn-in, 10 trials). Only each trial's sums and
    lagged-zero products are kept (float64), so memory is
    ``trials x neurons^2`` whatever ``n_steps``.

    Parameters
    ----------
    network : RecurrentNetwork
    n_steps, n_trials, burn_in, chunk, seed : int
        As for :func:`~neuro.rnn.timescales.simulate_activity`.
    threshold, paper_indexing
        As for :func:`pca_dimensionality`.

    Returns
    -------
    dict
        As :func:`pca_dimensionality`.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> net = LeakyRNN(hidden_size=8)
    >>> res = network_dimensionality(net, n_steps=500, n_trials=2)
    >>> res["explained_variance_ratio"].shape, res["dimensionality"].shape
    ((2, 8), (2,))
    """
    threshold, paper_indexing = _check_pca(threshold, paper_indexing)
    n_steps, n_trials, burn_in, chunk, seed = _check_simulation(
        network, n_steps, n_trials, burn_in, chunk, seed
    )
    s1 = s2 = None
    for h in _activity_chunks(network, n_steps, n_trials, burn_in, chunk, seed):
        h = h.to(torch.float64)
        if s1 is None:
            s1 = h.new_zeros((n_trials, h.shape[2]))
            s2 = h.new_zeros((n_trials, h.shape[2], h.shape[2]))
        s1 += h.sum(1)
        s2 += h.transpose(1, 2) @ h
    mean = s1 / n_steps
    cov = (s2 - n_steps * mean[:, :, None] * mean[:, None, :]) / (n_steps - 1)
    ratio, dims = _dimensions(cov.cpu().numpy(), threshold, paper_indexing)
    return {"explained_variance_ratio": ratio, "dimensionality": dims}


# ------------------------------------------------------------------ accuracy on a stream
@contextmanager
def _seeded(device: torch.device, seed: int):
    """Torch's global stream seeded inside (random initial states), restored after."""
    cuda = []
    if device.type == "cuda":
        cuda = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


def _check_stream(network, task, n, head, n_steps, warmup, n_trials, p, seed):
    check_network(network)
    (n,) = check_ns(task, [n], name="n")
    head = check_int("head", head, minimum=0)
    if head >= network.n_heads:
        raise InputError(
            f"head={head} but the network has {network.n_heads} head(s), 0..{network.n_heads - 1}."
        )
    n_steps = check_int("n_steps", n_steps, minimum=1)
    warmup = check_int("warmup", warmup, minimum=0)
    if warmup < n:
        raise InputError(
            f"warmup ({warmup}) must be >= n ({n}): the first label read needs the {n} bits "
            "before it (the public code uses 100)."
        )
    n_trials = check_int("n_trials", n_trials, minimum=1)
    p = check_float("p", p, minimum=0.0, maximum=1.0)
    return n, head, n_steps, warmup, n_trials, p, check_int("seed", seed, minimum=0)


def _stream(task, n, n_trials, n_steps, warmup, p, seed, device):
    """Bits ``(trials, warmup + n_steps, 1)`` and the label at every step after the warm-up."""
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(n_trials, warmup + n_steps, generator=gen) < p).float()
    if task == "parity":  # the sum of the last n bits, ending at each step
        c = torch.nn.functional.pad(x.cumsum(1), (1, 0))
        y = (c[:, warmup + 1 :] - c[:, warmup + 1 - n : warmup + 1 - n + n_steps]).remainder(2)
    else:  # the newest bit against the one n - 1 steps back
        y = x[:, warmup:] == x[:, warmup - n + 1 : warmup - n + 1 + n_steps]
    return x[:, :, None].to(device), y.long().to(device)


def _score(network, head, x, y, warmup, seed) -> np.ndarray:
    """Accuracy per trial of ``head`` read at every step after ``warmup``."""
    device = x.device
    with _seeded(device, seed):
        h = network.hidden_states(x.to(next(network.parameters()).dtype))
    logits = network.heads[head](h[:, warmup:])
    pred = (logits[..., 1] > logits[..., 0]).long()  # the code's outputs[:, 0] < outputs[:, 1]
    return (pred == y).double().mean(1).cpu().numpy()


@torch.no_grad()
def stream_accuracy(
    network: RecurrentNetwork,
    task: str,
    n: int,
    head: int = 0,
    n_steps: int = 1_000,
    warmup: int = 100,
    n_trials: int = 10,
    p: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """Accuracy of ``head`` on N = ``n`` read at every step of a long random stream.

    The public code's ``calculate_accuracy_``: one stream of ``warmup +
    n_steps`` bits ``Bernoulli(p)`` per trial, the head read at every step
    after the warm-up and compared with that step's label (the parity of the
    last ``n`` bits, or for N-DMS whether the newest bit equals the one
    ``n - 1`` steps back). A network trained on sequences of ``n + 2 ...
    4n + 1`` steps must hold its answer over a stream of 1,100, so this is
    stricter than :func:`~neuro.rnn.curricula.evaluate`. The code uses
    ``p = 0.5`` for both tasks (training on N-parity draws ``p ~ U(0, 1)``
    per sequence). The trials run as one batch; the same ``seed`` gives the
    same streams and initial states.

    Returns
    -------
    ndarray (n_trials,)
        Accuracy of each trial.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> acc = stream_accuracy(LeakyRNN(hidden_size=8), "parity", 2, n_steps=200, n_trials=3)
    >>> acc.shape, bool(((acc >= 0) & (acc <= 1)).all())
    ((3,), True)
    """
    n, head, n_steps, warmup, n_trials, p, seed = _check_stream(
        network, task, n, head, n_steps, warmup, n_trials, p, seed
    )
    network.eval()
    device = next(network.parameters()).device
    x, y = _stream(task, n, n_trials, n_steps, warmup, p, seed, device)
    return _score(network, head, x, y, warmup, seed)


# ------------------------------------------------------------------ ablation by tau
def _check_leaky(network, what: str) -> LeakyRNN:
    check_network(network)
    if not isinstance(network, LeakyRNN):
        raise InputTypeError(
            f"{what} needs a LeakyRNN (its neurons have taus); got {type(network).__name__}."
        )
    return network


@torch.no_grad()
def _silence(network: LeakyRNN, neuron: int) -> LeakyRNN:
    """A copy of ``network`` with ``neuron`` cut out, as the public code's ``'ablation'``.

    Its recurrent row and column, its input weight and its readout column are
    zeroed (only the outgoing weights change the output; the others are
    zeroed too, as in the code, so the silenced neuron's own activity is only
    its bias).
    """
    net = copy.deepcopy(network)
    net.w_rec.weight[neuron, :] = 0
    net.w_rec.weight[:, neuron] = 0
    net.w_in.weight[neuron, :] = 0
    for h in net.heads:
        h.weight[:, neuron] = 0
    return net


@torch.no_grad()
def tau_ablation(
    network: LeakyRNN,
    task: str,
    n: int,
    head: int = 0,
    n_neurons: int = 20,
    n_steps: int = 1_000,
    warmup: int = 100,
    n_trials: int = 10,
    p: float = 0.5,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Accuracy after silencing each of the fastest and the slowest neurons, one at a time.

    The public code's ``compute_ablate_tau.py``: the ``n_neurons`` neurons
    with the smallest trained taus and the ``n_neurons`` with the largest
    (``argsort(taus)[:20] + argsort(taus)[-20:]``) are each removed alone
    (:func:`_silence`) and scored by :func:`stream_accuracy` (1,000 steps
    after 100 of warm-up, 10 trials). Unlike the code, which draws new
    streams for every neuron, every ablation here (and the baseline) sees the
    same seeded streams, so the differences are paired. With fewer than
    ``2 n_neurons`` neurons, each group takes half of them.

    Returns
    -------
    dict
        ``neurons (2k,)`` (fastest first, then slowest, each in ascending
        tau), ``taus (2k,)``, ``slow (2k,)`` bool, ``accuracy (2k, n_trials)``,
        ``baseline (n_trials,)`` (no ablation) and ``relative (2k, n_trials)
        = (accuracy - 0.5) / (max(baseline) - 0.5)`` (the code's figure).

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> res = tau_ablation(LeakyRNN(hidden_size=6), "parity", 2, n_neurons=2, n_steps=50,
    ...                    n_trials=2)
    >>> res["accuracy"].shape, res["slow"].tolist()
    ((4, 2), [False, False, True, True])
    """
    _check_leaky(network, "tau_ablation")
    n, head, n_steps, warmup, n_trials, p, seed = _check_stream(
        network, task, n, head, n_steps, warmup, n_trials, p, seed
    )
    n_neurons = check_int("n_neurons", n_neurons, minimum=1)
    k = min(n_neurons, network.hidden_size // 2)
    if k < 1:
        raise InputError("tau_ablation needs a network of at least 2 neurons (a fast and a slow).")
    network.eval()
    taus = network.taus.detach().cpu().numpy()
    order = np.argsort(taus, kind="stable")
    neurons = np.concatenate([order[:k], order[-k:]])
    device = next(network.parameters()).device
    x, y = _stream(task, n, n_trials, n_steps, warmup, p, seed, device)
    baseline = _score(network, head, x, y, warmup, seed)
    acc = np.stack([_score(_silence(network, int(i)), head, x, y, warmup, seed) for i in neurons])
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = (acc - 0.5) / (baseline.max() - 0.5)
    return {
        "neurons": neurons,
        "taus": taus[neurons],
        "slow": np.arange(2 * k) >= k,
        "accuracy": acc,
        "baseline": baseline,
        "relative": relative,
    }


# ------------------------------------------------------------------ normalised perturbations
def _set_taus(network: LeakyRNN, taus: torch.Tensor) -> None:
    with torch.no_grad():
        if network.tau_parametrization == "softplus":
            network.tau_raw.copy_(torch.log(torch.expm1((taus - 1).clamp_min(1e-6))))
        else:
            network.tau_raw.copy_(taus.clamp(min=1.0))


@torch.no_grad()
def _perturb(network, strength, target, increase_only, gen):
    """A copy of ``network`` perturbed by a random direction of norm ``strength x ||param||``."""
    net = copy.deepcopy(network)
    if strength == 0:
        return net
    if target == "taus":
        tau = net.taus.detach()
        d = torch.randn(tau.shape, generator=gen).to(tau)
        d = d.abs() if increase_only else d
        _set_taus(net, tau + strength * tau.norm() / d.norm() * d)
    else:
        w = net.w_rec.weight if isinstance(net, LeakyRNN) else net.rnn.weight_hh_l0
        mask = net.off_diagonal if isinstance(net, LeakyRNN) else torch.ones_like(w)
        d = torch.randn(w.shape, generator=gen).to(w) * mask
        w.add_(strength * (w * mask).norm() / d.norm() * d)
    return net


@torch.no_grad()
def normalized_perturbation_curve(
    network: RecurrentNetwork,
    task: str,
    n: int,
    head: int = 0,
    strengths: Sequence[float] = (0.0, 0.001, 0.01, 0.1, 1.0, 10.0),
    target: str = "taus",
    increase_only: bool = True,
    n_steps: int = 1_000,
    warmup: int = 100,
    n_trials: int = 10,
    p: float = 0.5,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Accuracy after perturbations whose norm is a fraction of the parameters' norm.

    The public code's ``'normalized tau abs'`` and ``'normalized rnn'``
    (after Eq. 5 of Lenc & Vedaldi's normalised perturbations): a random
    direction ``d`` is scaled to ``strength x ||theta||`` and added,
    ``theta <- theta + strength ||theta|| d / ||d||``, a new draw per trial,
    and each perturbed network is scored by :func:`stream_accuracy`.

    ``target="taus"`` (leaky RNN): ``d = |z|``, ``z ~ N(0, I)``, so every tau
    only grows (``increase_only=True``, the code's ``abs``); False draws
    ``d = z`` (the code's ``'normalized tau'``) and clamps the taus at 1.
    The effective taus (>= 1) are perturbed; the code adds to its stored
    taus, which differ only where training pushed a tau below the clamp.
    ``target="recurrent"``: ``d ~ N(0, I)`` on the recurrent weights. The
    leaky RNN has no self-connections, so its diagonal stays zero and
    ``||theta||`` is that of the off-diagonal weights (the code perturbs the
    diagonal too). The code's grids are ``[0] + geomspace(1e-3, 10, 13)``
    for taus and ``[0] + geomspace(1e-2, 10, 10)`` for weights.

    Returns
    -------
    dict
        ``strengths (k,)``, ``accuracy (k, n_trials)``, ``baseline
        (n_trials,)`` (the unperturbed network on the same streams) and
        ``relative (k, n_trials) = (accuracy - 0.5) / (mean(baseline) - 0.5)``
        (the code's figure).

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> res = normalized_perturbation_curve(LeakyRNN(hidden_size=8), "parity", 2,
    ...                                     strengths=(0.0, 1.0), n_steps=50, n_trials=2)
    >>> res["accuracy"].shape
    (2, 2)
    """
    check_network(network)
    check_choice("target", target, ("taus", "recurrent"))
    if target == "taus":
        _check_leaky(network, "target='taus'")
    increase_only = check_bool("increase_only", increase_only)
    n, head, n_steps, warmup, n_trials, p, seed = _check_stream(
        network, task, n, head, n_steps, warmup, n_trials, p, seed
    )
    sg = check_array("strengths", strengths, ndim=1, dtype=float)
    if (sg < 0).any():
        raise InputError(f"strengths must be >= 0 (0: no perturbation); got {list(strengths)}.")
    network.eval()
    device = next(network.parameters()).device
    x, y = _stream(task, n, n_trials, n_steps, warmup, p, seed, device)
    baseline = _score(network, head, x, y, warmup, seed)
    gen = torch.Generator().manual_seed(seed)
    acc = np.empty((len(sg), n_trials))
    for i, s in enumerate(sg):
        for r in range(n_trials):  # a new perturbation per trial, on trial r's stream
            net = _perturb(network, float(s), target, increase_only, gen)
            acc[i, r] = _score(net, head, x[r : r + 1], y[r : r + 1], warmup, seed + r)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = (acc - 0.5) / (baseline.mean() - 0.5)
    return {"strengths": sg, "accuracy": acc, "baseline": baseline, "relative": relative}


# ------------------------------------------------------------------ retraining
def _model_name(network) -> str:
    if isinstance(network, LeakyRNN):
        return "leaky"
    if isinstance(network, GRUNetwork):
        return "gru"
    if isinstance(network, LSTMNetwork):
        return "lstm"
    raise InputTypeError(
        f"retraining needs a LeakyRNN, GRUNetwork or LSTMNetwork; got {type(network).__name__}."
    )


def retraining_curve(
    network: RecurrentNetwork,
    task: str,
    ns: Sequence[int],
    head: int = 0,
    *,
    perturbation: float = 0.0,
    target: str = "recurrent",
    epochs: int = 20,
    steps_per_epoch: int = 600,
    batch_size: int = 256,
    lr: float = 0.05,
    momentum: float = 0.1,
    grad_clip_norm: float = 2.0,
    n_sequences: int = 1024,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Train a copy of ``network`` again, as a single-head network, on each N in ``ns``.

    The paper's retraining (Figure 8; the public repository holds the plot
    and its results, ``retrain_as_singlehead``, not the training script):
    networks of each curriculum, trained up to some N, are trained again with
    one head on each larger N for 20 epochs, and the final accuracies are
    compared relative to the first N, ``(acc - 0.5) / (acc[0] - 0.5)``.
    Here each copy keeps the head that answered ``head`` as its only head,
    may first be perturbed (``perturbation > 0``: the normalised perturbation
    of :func:`normalized_perturbation_curve` on ``target``), and is trained
    on N alone with the curricula's optimiser (SGD with Nesterov momentum,
    gradient-norm clipping; every parameter, taus included where they are
    trainable) for exactly ``epochs`` epochs of ``steps_per_epoch`` batches.
    ``ns=[n]`` with ``perturbation > 0`` asks how well training repairs a
    perturbation; ``ns`` above the N trained, how well the network adapts.

    Returns
    -------
    dict
        ``ns (k,)``; ``accuracy (k, epochs + 1)``: column 0 before retraining
        (after the perturbation, on ``n_sequences`` seeded test sequences,
        :func:`~neuro.rnn.curricula.evaluate`), then after each epoch (the
        curriculum's validation on ``ceil(n_sequences / batch_size)`` fresh
        batches); ``baseline (k,)``: the unperturbed network before
        retraining, on the test sequences.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> res = retraining_curve(LeakyRNN(hidden_size=8), "parity", [2], epochs=1,
    ...                        steps_per_epoch=2, batch_size=8, n_sequences=16, device="cpu")
    >>> res["accuracy"].shape
    (1, 2)
    """
    from neuro.rnn.curricula import CurriculumConfig, evaluate, train_curriculum

    check_network(network)
    model = _model_name(network)
    if isinstance(ns, (int, np.integer)):
        ns = [ns]
    if isinstance(ns, (str, bytes)) or not isinstance(ns, (Sequence, np.ndarray)) or not len(ns):
        raise InputError(f"ns must be a non-empty list of N values (e.g. [5, 6]); got {ns!r}.")
    ns = check_ns(task, list(ns), name="ns")
    head = check_int("head", head, minimum=0)
    if head >= network.n_heads:
        raise InputError(
            f"head={head} but the network has {network.n_heads} head(s), 0..{network.n_heads - 1}."
        )
    perturbation = check_float("perturbation", perturbation, minimum=0.0)
    check_choice("target", target, ("taus", "recurrent"))
    if target == "taus" and perturbation > 0:
        _check_leaky(network, "target='taus'")
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    n_sequences = check_int("n_sequences", n_sequences, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    gen = torch.Generator().manual_seed(seed)
    acc = np.empty((len(ns), epochs + 1))
    baseline = np.empty(len(ns))

    for i, n in enumerate(ns):
        config = CurriculumConfig(
            task=task,
            kind="single",
            n_start=n,
            n_max=n,
            threshold=1.0,  # never "solved": train all the epochs
            model=model,
            hidden_size=network.hidden_size,
            max_epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            batch_size=batch_size,
            val_batches=-(-n_sequences // batch_size),
            lr=lr,
            momentum=momentum,
            grad_clip_norm=grad_clip_norm,
        )
        net = copy.deepcopy(network).cpu()
        net.heads = nn.ModuleList([net.heads[head]])
        baseline[i] = evaluate(net, task, n, 0, n_sequences, seed=seed)
        net = _perturb(net, perturbation, target, True, gen)
        acc[i, 0] = evaluate(net, task, n, 0, n_sequences, seed=seed)
        history = train_curriculum(config, network=net, device=device, seed=seed).history
        acc[i, 1:] = [r["val_acc_last"] for r in history]
    return {"ns": np.array(ns), "accuracy": acc, "baseline": baseline}
