"""Timescales of trained recurrent networks, and their robustness.

Network-mediated timescales follow Khajehabdollahi et al. (ICLR 2024):
drive the network with random bits (``p ~ U(0, 1)`` per trial, as in
N-parity) for many steps, drop a burn-in, and for each neuron

1. compute its autocorrelation by FFT (zero-padded, each lag divided by the
   number of pairs it averages, ``T - lag``), averaged over trials and
   divided by its value at lag 0;
2. fit lags ``0 .. fit_lag`` with ``a exp(-t / tau)`` and with
   ``a (c exp(-t / tau1) + (1 - c) exp(-t / tau2))``, pick the model with the
   lower AIC (``2k + n log RSS``), and call the fitted tau (the slower one of
   a double fit, if it carries at least 5% of the amplitude) the neuron's
   network timescale ``tau_net``.

For an uncoupled linear leaky neuron driven by white noise the
autocorrelation is ``(1 - 1/tau)^lag``, so the fitted timescale is
``-1 / log(1 - 1/tau)`` (``tau - 1/2`` to within 2% for ``tau >= 3``): the
check in the tests.

Robustness: :func:`ablation_curve` removes random neurons (their outputs no
longer reach any neuron or head), :func:`perturbation_curve` adds noise to
the recurrent weights or the taus, each measuring accuracy; :func:`retention`
measures accuracy on each earlier N (forgetting).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import OptimizeWarning, curve_fit

from neuro._validation import check_array, check_choice, check_float, check_int
from neuro.errors import InputError, InputTypeError
from neuro.rnn.models import LeakyRNN, RecurrentNetwork, check_network
from neuro.rnn.tasks import TASKS, check_ns

__all__ = [
    "TimescaleResult",
    "ablation_curve",
    "autocorrelation",
    "fit_timescales",
    "network_timescales",
    "perturbation_curve",
    "retention",
    "simulate_activity",
]


def autocorrelation(activity, max_lag: int = 50, neuron_batch_size: int = 256) -> np.ndarray:
    """Autocorrelation of each neuron, averaged over trials and normalised by lag 0.

    Parameters
    ----------
    activity : array or tensor (trials, T, neurons)
    max_lag : int, default=50
    neuron_batch_size : int, default=256
        Neurons transformed at once (memory ``trials * 2T * neuron_batch_size``).

    Returns
    -------
    ndarray (neurons, max_lag + 1)
        ``ac[:, 0] == 1``; rows of neurons that never vary are NaN.
    """
    a = check_array(
        "activity", activity, ndim=3, shape_hint="(trials, T, neurons)", dtype=np.float64
    )
    _, t, n = a.shape
    max_lag = check_int("max_lag", max_lag, minimum=1)
    neuron_batch_size = check_int("neuron_batch_size", neuron_batch_size, minimum=1)
    if t <= max_lag:
        raise InputError(f"activity has {t} steps; max_lag={max_lag} needs more than that.")
    out = np.empty((n, max_lag + 1))
    nfft = 1 << int(np.ceil(np.log2(2 * t)))
    pairs = t - np.arange(max_lag + 1)
    for start in range(0, n, neuron_batch_size):
        x = a[:, :, start : start + neuron_batch_size]
        x = x - x.mean(axis=1, keepdims=True)
        f = np.fft.rfft(x, n=nfft, axis=1)
        ac = np.fft.irfft(f * np.conj(f), n=nfft, axis=1)[:, : max_lag + 1] / pairs[None, :, None]
        ac = ac.mean(0).T  # (neurons, lags)
        with np.errstate(invalid="ignore", divide="ignore"):
            ac = ac / ac[:, :1]
        ac[~np.isfinite(ac).all(1) | (np.abs(x).max(axis=(0, 1)) < 1e-12)] = np.nan
        out[start : start + neuron_batch_size] = ac
    return out


def _single(t, a, tau):
    return a * np.exp(-t / tau)


def _double(t, a, tau1, tau2, c):
    return a * (c * np.exp(-t / tau1) + (1 - c) * np.exp(-t / tau2))


def fit_timescales(
    ac: np.ndarray, fit_lag: int = 30, max_tau: float = 1000.0, min_weight: float = 0.05
) -> dict:
    """Fit single and double exponentials to autocorrelations and pick by AIC.

    Parameters
    ----------
    ac : array (neurons, lags)
        Normalised autocorrelations (as :func:`autocorrelation` returns).
    fit_lag : int, default=30
        Fit lags ``0 .. fit_lag`` (the paper's choice: longer lags are biased).
    max_tau : float, default=1000
        Upper bound on fitted timescales, in steps.
    min_weight : float, default=0.05
        A double fit that wins on AIC but puts less than this fraction of its
        amplitude on the slower component is fitting noise in the tail: the
        single fit is kept (the paper's code would report the slow tau; on a
        pure exponential with 2e5 samples that can be twice the truth).

    Returns
    -------
    dict of arrays (neurons,)
        ``tau`` (the selected model's slowest timescale; NaN where no fit),
        ``model`` (1 single, 2 double, 0 none), ``tau_single``.
    """
    ac = np.atleast_2d(
        check_array("ac", ac, ndim=(1, 2), shape_hint="(neurons, lags)", finite=False, dtype=float)
    )
    if ac.shape[1] < 3:
        raise InputError(f"ac needs at least 3 lags (0, 1, 2) to fit; got shape {ac.shape}.")
    fit_lag = min(check_int("fit_lag", fit_lag, minimum=2), ac.shape[1] - 1)
    max_tau = check_float("max_tau", max_tau, minimum=1.0)
    min_weight = check_float("min_weight", min_weight, minimum=0.0, maximum=1.0)
    lags = np.arange(fit_lag + 1, dtype=np.float64)
    n = len(ac)
    tau, model, tau1 = np.full(n, np.nan), np.zeros(n, dtype=np.int64), np.full(n, np.nan)
    k = len(lags)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        for i, row in enumerate(ac):
            y = row[: fit_lag + 1]
            if not np.isfinite(y).all():
                continue
            # a rough start: the lag where the autocorrelation crosses 1/e
            below = np.nonzero(y < np.exp(-1))[0]
            guess = float(below[0]) if len(below) else float(fit_lag)
            guess = min(max(guess, 0.5), max_tau / 2)
            aic1 = aic2 = np.inf
            try:
                p1, _ = curve_fit(
                    _single, lags, y, p0=(1.0, guess), bounds=((0, 1e-6), (1, max_tau)), maxfev=2000
                )
                rss = float(((_single(lags, *p1) - y) ** 2).sum())
                aic1 = 2 * 2 + k * np.log(max(rss, 1e-300))
                tau1[i] = p1[1]
            except (RuntimeError, ValueError):
                p1 = None
            try:
                p2, _ = curve_fit(
                    _double,
                    lags,
                    y,
                    p0=(1.0, max(guess / 4, 1e-3), guess * 2, 0.5),
                    bounds=((0, 1e-6, 1e-6, 0), (1, max_tau, max_tau, 1)),
                    maxfev=2000,
                )
                rss = float(((_double(lags, *p2) - y) ** 2).sum())
                aic2 = 2 * 4 + k * np.log(max(rss, 1e-300))
            except (RuntimeError, ValueError):
                p2 = None
            if p2 is not None and aic2 < aic1:
                slow = 1 if p2[1] >= p2[2] else 2
                weight = p2[3] if slow == 1 else 1 - p2[3]
                if weight >= min_weight or p1 is None:
                    tau[i], model[i] = p2[slow], 2
                    continue
            if p1 is not None:
                tau[i], model[i] = p1[1], 1
    return {"tau": tau, "model": model, "tau_single": tau1}


def _activity_chunks(network, n_steps, n_trials, burn_in, chunk, seed):
    """Yield the activity after ``burn_in`` in chunks of at most ``chunk`` steps (tensors).

    The one source of the random-input drive: :func:`simulate_activity` stacks
    the chunks, :func:`network_timescales` streams them, so both see the same
    activity for the same ``seed``.
    """
    network.eval()
    param = next(network.parameters())
    gen = torch.Generator().manual_seed(seed)
    p = torch.rand(n_trials, 1, 1, generator=gen)
    state, t, total = None, 0, burn_in + n_steps
    cuda = []
    if param.device.type == "cuda":
        cuda = [
            param.device.index if param.device.index is not None else torch.cuda.current_device()
        ]
    with torch.random.fork_rng(devices=cuda):  # the random initial state, seeded too
        torch.manual_seed(seed)
        while t < total:
            m = min(chunk, total - t)
            x = (torch.rand(n_trials, m, 1, generator=gen) < p).to(param.device, param.dtype)
            h, state = network.run(x, state)
            lo = max(t, burn_in)
            if t + m > lo:
                yield h[:, lo - t :]
            t += m


def _check_simulation(network, n_steps, n_trials, burn_in, chunk, seed):
    check_network(network)
    return (
        check_int("n_steps", n_steps, minimum=2),
        check_int("n_trials", n_trials, minimum=1),
        check_int("burn_in", burn_in, minimum=0),
        check_int("chunk", chunk, minimum=1),
        check_int("seed", seed, minimum=0),
    )


@torch.no_grad()
def simulate_activity(
    network: RecurrentNetwork,
    n_steps: int = 20_000,
    n_trials: int = 10,
    burn_in: int = 500,
    chunk: int = 2_000,
    seed: int = 0,
) -> np.ndarray:
    """Drive ``network`` with random bits and return its activity.

    Each trial draws ``p ~ U(0, 1)`` and bits ``Bernoulli(p)`` (N-parity's
    input statistics). The input is fed in chunks of ``chunk`` steps with the
    state carried over, so memory is bounded by the returned array. The same
    ``seed`` gives the same input and initial state (torch's global random
    stream is left as it was). :func:`network_timescales` streams the same
    activity without holding it.

    Returns
    -------
    ndarray (n_trials, n_steps, hidden) float32
        After the first ``burn_in`` steps (which are simulated, not returned).
    """
    n_steps, n_trials, burn_in, chunk, seed = _check_simulation(
        network, n_steps, n_trials, burn_in, chunk, seed
    )
    out = np.empty((n_trials, n_steps, network.hidden_size), dtype=np.float32)
    t = 0
    for h in _activity_chunks(network, n_steps, n_trials, burn_in, chunk, seed):
        out[:, t : t + h.shape[1]] = h.float().cpu().numpy()
        t += h.shape[1]
    return out


class _StreamedAutocorrelation:
    """:func:`autocorrelation`'s estimator accumulated chunk by chunk (exact, float64).

    Per trial, neuron and lag ``k`` it keeps the raw lagged products
    ``C_k = sum_t x_t x_{t+k}``, the total ``S`` and the first and last
    ``max_lag`` samples; at the end
    ``sum_t (x_t - mu)(x_{t+k} - mu) = C_k - mu (H_k + L_k) + (T - k) mu^2``
    with ``mu = S / T``, ``H_k`` the sum of all but the last ``k`` samples and
    ``L_k`` of all but the first ``k``. Memory: ``trials x (chunk + max_lag) x
    neurons``, whatever the length of the simulation.
    """

    def __init__(self, max_lag: int) -> None:
        self.max_lag = max_lag
        self.prev = None  # the last max_lag samples seen
        self.head = None  # the first max_lag samples
        self.c = None
        self.total = None
        self.t = 0

    def add(self, x: torch.Tensor) -> None:
        x = x.to(torch.float64)
        if self.c is None:
            self.c = x.new_zeros((x.shape[0], self.max_lag + 1, x.shape[2]))
            self.total = x.new_zeros((x.shape[0], x.shape[2]))
            self.prev = x[:, :0]
            self.head = x[:, :0]
        y = torch.cat([self.prev, x], dim=1)
        p, n = self.prev.shape[1], y.shape[1]
        for k in range(self.max_lag + 1):  # pairs whose later sample lies in this chunk
            start = max(p, k)
            if start < n:
                self.c[:, k] += (y[:, start - k : n - k] * y[:, start:n]).sum(1)
        self.total += x.sum(1)
        if self.head.shape[1] < self.max_lag:
            self.head = torch.cat([self.head, x[:, : self.max_lag - self.head.shape[1]]], dim=1)
        self.prev = y[:, -self.max_lag :]
        self.t += x.shape[1]

    def result(self) -> np.ndarray:
        t, lags = self.t, torch.arange(self.max_lag + 1)
        mu = self.total / t  # (trials, neurons)
        zero = self.total.new_zeros((self.total.shape[0], 1, self.total.shape[1]))
        first = torch.cat([zero, self.head.cumsum(1)], dim=1)[:, : self.max_lag + 1]
        last = torch.cat([zero, self.prev.flip(1).cumsum(1)], dim=1)[:, : self.max_lag + 1]
        s = self.total[:, None]
        centred = self.c - mu[:, None] * ((s - last) + (s - first))
        centred += (t - lags).to(mu)[None, :, None] * mu[:, None] ** 2
        ac = (centred / (t - lags).to(mu)[None, :, None]).mean(0).T.cpu().numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            silent = ac[:, 0] <= 1e-12 * (mu**2).mean(0).cpu().numpy() + 1e-30
            ac = ac / ac[:, :1]
        ac[silent | ~np.isfinite(ac).all(1)] = np.nan
        return ac


@dataclass
class TimescaleResult:
    """Timescales of one network.

    Attributes
    ----------
    tau_net : ndarray (hidden,)
        Network-mediated timescale of each neuron (steps; NaN for silent
        neurons or failed fits).
    model : ndarray (hidden,)
        1 single exponential, 2 double, 0 none.
    trained_taus : ndarray (hidden,) or None
        The leaky RNN's own taus (None for GRU/LSTM).
    ac : ndarray (hidden, max_lag + 1)
        Single-neuron autocorrelations.
    population_ac : ndarray (max_lag + 1,)
        Autocorrelation of the summed activity.
    population_tau : float
        Timescale fitted to ``population_ac``.
    """

    tau_net: np.ndarray
    model: np.ndarray
    trained_taus: np.ndarray | None
    ac: np.ndarray
    population_ac: np.ndarray
    population_tau: float

    def summary(self) -> dict:
        ok = np.isfinite(self.tau_net)
        out = {
            "tau_net_median": float(np.median(self.tau_net[ok])) if ok.any() else float("nan"),
            "tau_net_mean": float(np.mean(self.tau_net[ok])) if ok.any() else float("nan"),
            "fitted_neurons": int(ok.sum()),
            "population_tau": float(self.population_tau),
        }
        if self.trained_taus is not None:
            t = self.trained_taus
            out["trained_tau_mean"] = float(np.mean(t))
            out["trained_tau_median"] = float(np.median(t))
            out["trained_tau_p90"] = float(np.percentile(t, 90))
            out["trained_tau_max"] = float(np.max(t))
            # with the paper's clamp, a tau pushed below 1 stays at 1 (no gradient there)
            out["fraction_tau_at_1"] = float(np.mean(t <= 1.0 + 1e-6))
        return out


@torch.no_grad()
def network_timescales(
    network: RecurrentNetwork,
    n_steps: int = 100_000,
    n_trials: int = 10,
    burn_in: int = 1_000,
    max_lag: int = 50,
    fit_lag: int = 30,
    max_tau: float = 100.0,
    chunk: int = 2_000,
    seed: int = 0,
) -> TimescaleResult:
    """Single-neuron network timescales of ``network`` (the paper's protocol; module docstring).

    The defaults are the public code's: 10 trials of 1e5 steps after 1,000
    steps of burn-in (1e6 samples per neuron), lags 0-30 fitted, taus
    bounded by 100. The activity is streamed: the autocorrelations are
    accumulated chunk by chunk (the estimator of :func:`autocorrelation`,
    exactly), so memory is ``n_trials x chunk x hidden`` whatever
    ``n_steps``.

    Parameters
    ----------
    network : RecurrentNetwork
    n_steps, n_trials, burn_in, chunk, seed : int
        As for :func:`simulate_activity`.
    max_lag : int, default=50
        Lags of the autocorrelations, ``0 .. max_lag`` (``< n_steps``).
    fit_lag : int, default=30
        As for :func:`fit_timescales`.
    max_tau : float, default=100
        Upper bound of the fitted timescales (the public code's).

    Returns
    -------
    TimescaleResult
        Per-neuron ``tau_net (hidden,)`` and ``ac (hidden, max_lag + 1)``.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> net = LeakyRNN(hidden_size=8, tau_init=(2.0, 5.0))
    >>> res = network_timescales(net, n_steps=2_000, n_trials=2)
    >>> res.ac.shape, res.tau_net.shape
    ((8, 51), (8,))
    """
    max_lag = check_int("max_lag", max_lag, minimum=1)
    fit_lag = check_int("fit_lag", fit_lag, minimum=2)
    max_tau = check_float("max_tau", max_tau, minimum=1.0)
    n_steps, n_trials, burn_in, chunk, seed = _check_simulation(
        network, n_steps, n_trials, burn_in, chunk, seed
    )
    if n_steps <= max_lag:
        raise InputError(
            f"n_steps ({n_steps}) must exceed max_lag ({max_lag}): the autocorrelation at lag k "
            "averages pairs k steps apart."
        )
    neurons, population = _StreamedAutocorrelation(max_lag), _StreamedAutocorrelation(max_lag)
    for h in _activity_chunks(network, n_steps, n_trials, burn_in, chunk, seed):
        neurons.add(h)
        population.add(h.sum(-1, keepdim=True))
    ac = neurons.result()
    fits = fit_timescales(ac, fit_lag, max_tau=max_tau)
    pop_ac = population.result()[0]
    pop_tau = float(fit_timescales(pop_ac[None], fit_lag, max_tau=max_tau)["tau"][0])
    trained = network.taus.detach().cpu().numpy().copy() if isinstance(network, LeakyRNN) else None
    return TimescaleResult(fits["tau"], fits["model"], trained, ac, pop_ac, pop_tau)


# ------------------------------------------------------------------ robustness
def _check_task(network, task, n, head, n_sequences, seed) -> tuple[int, int, int]:
    """Validate the task, N, head, sequences and seed of a robustness curve before its loops."""
    check_ns(task, [n], name="n")
    head = check_int("head", head, minimum=0)
    if head >= network.n_heads:
        raise InputError(
            f"head={head} but the network has {network.n_heads} head(s), 0..{network.n_heads - 1}."
        )
    n_sequences = check_int("n_sequences", n_sequences, minimum=1)
    return head, n_sequences, check_int("seed", seed, minimum=0)


def _accuracy(network, task, n, head, n_sequences, seed) -> float:
    from neuro.rnn.curricula import evaluate

    return evaluate(network, task, n, head=head, n_sequences=n_sequences, seed=seed)


@torch.no_grad()
def _ablate(network: RecurrentNetwork, neurons: torch.Tensor) -> RecurrentNetwork:
    """A copy of ``network`` whose ``neurons`` reach no neuron and no head."""
    net = copy.deepcopy(network)
    for head in net.heads:
        head.weight[:, neurons] = 0
    if isinstance(net, LeakyRNN):
        net.w_rec.weight[:, neurons] = 0
    else:
        net.rnn.weight_hh_l0[:, neurons] = 0
    return net


def ablation_curve(
    network: RecurrentNetwork,
    task: str,
    n: int,
    head: int = 0,
    fractions: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.5),
    n_repeats: int = 3,
    n_sequences: int = 512,
    seed: int = 0,
    order: str = "random",
) -> dict[str, np.ndarray]:
    """Accuracy on N = ``n`` after removing a fraction of the neurons.

    A removed neuron's output is cut from every neuron and head (its column
    of the recurrent and readout weights set to zero).

    Parameters
    ----------
    order : {"random", "slowest", "fastest"}, default="random"
        Which neurons go: a random draw per repeat, or (leaky RNN only) those
        with the largest or smallest trained taus (the paper ablates its
        slowest and fastest neurons to ask whether memory lives in single
        slow neurons).

    Returns
    -------
    dict
        ``fractions (k,)``, ``accuracy (k, n_repeats)``.
    """
    check_network(network)
    head, n_sequences, seed = _check_task(network, task, n, head, n_sequences, seed)
    check_choice("order", order, ("random", "slowest", "fastest"))
    n_repeats = check_int("n_repeats", n_repeats, minimum=1)
    if order != "random" and not isinstance(network, LeakyRNN):
        raise InputTypeError(f"order={order!r} needs a LeakyRNN (GRU and LSTM have no taus).")
    rng = np.random.default_rng(seed)
    fr = check_array("fractions", fractions, ndim=1, dtype=float)
    if ((fr < 0) | (fr > 1)).any():
        raise InputError(f"fractions must lie in [0, 1]; got {list(fractions)}.")
    acc = np.empty((len(fr), n_repeats))
    h = network.hidden_size
    by_tau = None
    if order != "random":
        by_tau = torch.argsort(network.taus.detach().cpu(), descending=order == "slowest")
    for i, f in enumerate(fr):
        k = round(f * h)
        for r in range(n_repeats):
            idx = by_tau[:k] if by_tau is not None else torch.as_tensor(rng.choice(h, k, False))
            acc[i, r] = _accuracy(_ablate(network, idx), task, n, head, n_sequences, seed + r)
    return {"fractions": fr, "accuracy": acc}


def perturbation_curve(
    network: RecurrentNetwork,
    task: str,
    n: int,
    head: int = 0,
    sigmas: Sequence[float] = (0.0, 0.1, 0.2, 0.5, 1.0),
    target: str = "recurrent",
    n_repeats: int = 3,
    n_sequences: int = 512,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Accuracy on N = ``n`` after adding noise to the recurrent weights or the taus.

    ``target="recurrent"``: each recurrent weight gets Gaussian noise of sd
    ``sigma * sd(W_rec)`` (the diagonal stays zero for the leaky RNN), so
    ``||dW||_F`` is about ``sigma ||W_rec||_F``: the paper's normalised
    perturbation of strength ``sigma``.
    ``target="taus"`` (leaky RNN only): ``tau <- max(1, tau (1 + sigma z))``.

    Returns
    -------
    dict
        ``sigmas (k,)``, ``accuracy (k, n_repeats)``.
    """
    check_network(network)
    head, n_sequences, seed = _check_task(network, task, n, head, n_sequences, seed)
    check_choice("target", target, ("recurrent", "taus"))
    n_repeats = check_int("n_repeats", n_repeats, minimum=1)
    if target == "taus" and not isinstance(network, LeakyRNN):
        raise InputTypeError("target='taus' needs a LeakyRNN (GRU and LSTM have no taus).")
    gen = torch.Generator().manual_seed(seed)
    sg = check_array("sigmas", sigmas, ndim=1, dtype=float)
    if (sg < 0).any():
        raise InputError(f"sigmas are noise levels and must be >= 0; got {list(sigmas)}.")
    acc = np.empty((len(sg), n_repeats))
    for i, s in enumerate(sg):
        for r in range(n_repeats):
            net = copy.deepcopy(network)
            with torch.no_grad():
                if target == "taus":
                    z = torch.randn(net.hidden_size, generator=gen).to(net.tau_raw)
                    new = (net.taus * (1 + s * z)).clamp(min=1.0)
                    if net.tau_parametrization == "softplus":
                        net.tau_raw.copy_(torch.log(torch.expm1((new - 1).clamp_min(1e-6))))
                    else:
                        net.tau_raw.copy_(new)
                else:
                    w = net.w_rec.weight if isinstance(net, LeakyRNN) else net.rnn.weight_hh_l0
                    w.add_(s * w.std() * torch.randn(w.shape, generator=gen).to(w))
            acc[i, r] = _accuracy(net, task, n, head, n_sequences, seed + r)
    return {"sigmas": sg, "accuracy": acc}


def retention(
    network: RecurrentNetwork,
    task: str,
    ns: Sequence[int],
    head_of: Callable[[int], int] = lambda n: 0,
    n_sequences: int = 512,
    seed: int = 0,
) -> dict[int, float]:
    """Accuracy on each N in ``ns``, read from head ``head_of(N)`` (forgetting of earlier N).

    Parameters
    ----------
    network : RecurrentNetwork
    task : {"parity", "dms"}
    ns : sequence of int
        The N values to test (may be empty).
    head_of : callable, default: head 0 for every N
        The head that answers each N (``CurriculumConfig.head_of``).
    n_sequences, seed : int
        As for :func:`~neuro.rnn.curricula.evaluate`.

    Returns
    -------
    dict
        ``{N: accuracy}``.
    """
    check_network(network)
    check_choice("task", task, TASKS)
    if isinstance(ns, (int, np.integer)):
        ns = [ns]
    if isinstance(ns, (str, bytes)) or not isinstance(ns, Iterable):
        raise InputTypeError(f"ns must be a sequence of N values; got {ns!r}.")
    ns = list(ns)
    ns = check_ns(task, ns) if ns else []
    if not callable(head_of):
        raise InputTypeError(
            f"head_of must map N to a head index (e.g. config.head_of); got {head_of!r}."
        )
    return {int(n): _accuracy(network, task, n, head_of(n), n_sequences, seed) for n in ns}
