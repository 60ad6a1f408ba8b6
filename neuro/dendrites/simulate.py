"""Monte Carlo of random sparse patterns and dendritic segments, with confidence intervals.

Each trial draws real patterns: sets of active cells sampled uniformly without
replacement (Floyd's algorithm for sparse sets, the ``k`` largest of ``n``
uniform keys for dense ones), and segments that sample cells the same way; a match is an overlap of at least ``theta``. Trials
run ``batch_size`` at a time on any torch device, so memory stays bounded
(about ``batch_size * n`` keys at once), and each estimate comes with an exact
(Clopper-Pearson) confidence interval. The simulations follow the authors'
protocol (Ahmad & Hawkins, 2016) and estimate the quantities of
:mod:`neuro.dendrites.theory`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import beta

from neuro._validation import check_array, check_float, check_int
from neuro.dendrites.theory import _check_noise_segment, _check_segment, _counts, _fraction
from neuro.errors import InputError
from neuro.train.device import resolve_device
from neuro.train.progress import progress

__all__ = [
    "SimulationResult",
    "clopper_pearson",
    "simulate_false_match",
    "simulate_noise_match",
    "simulate_union_false_match",
]

# Random keys (float32) drawn at once when batch_size is None.
_DEFAULT_BATCH_ELEMENTS = 1 << 24


@dataclass
class SimulationResult:
    """A Monte Carlo estimate of a probability.

    Attributes
    ----------
    estimate : float
        ``successes / trials``.
    ci_low, ci_high : float
        Clopper-Pearson interval at level ``confidence``.
    successes, trials : int
    confidence : float
    overlap_counts : ndarray of int64, shape (max_overlap + 1,)
        How many trials had each overlap 0, 1, ...; tails for other
        thresholds follow from it.
    """

    estimate: float
    ci_low: float
    ci_high: float
    successes: int
    trials: int
    confidence: float
    overlap_counts: np.ndarray = field(repr=False)

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the confidence interval."""
        return self.ci_low <= value <= self.ci_high

    def to_dict(self) -> dict:
        """Plain numbers, for JSON."""
        return {
            "estimate": self.estimate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "successes": self.successes,
            "trials": self.trials,
            "confidence": self.confidence,
        }


def clopper_pearson(successes, trials, confidence: float = 0.999):
    """Exact (Clopper-Pearson) binomial confidence interval.

    Parameters
    ----------
    successes, trials : int or array of int
    confidence : float in (0, 1), default=0.999

    Returns
    -------
    low, high : float or ndarray

    Examples
    --------
    >>> low, high = clopper_pearson(0, 1000, 0.95)
    >>> float(low), round(float(high), 5)
    (0.0, 0.00368)
    """
    confidence = _check_confidence(confidence)
    k = check_array("successes", successes, dtype=np.float64)
    t = check_array("trials", trials, dtype=np.float64)
    if (k < 0).any() or (k > t * (1 + 1e-12)).any():
        raise InputError(
            f"successes and trials must satisfy 0 <= successes <= trials; got "
            f"successes={successes!r}, trials={trials!r}."
        )
    alpha = 1.0 - confidence
    with np.errstate(invalid="ignore"):
        low = np.where(k > 0, beta.ppf(alpha / 2, k, t - k + 1), 0.0)
        high = np.where(k < t, beta.ppf(1 - alpha / 2, k + 1, t - k), 1.0)
    return (low[()], high[()]) if low.ndim == 0 else (low, high)


def _check_confidence(confidence) -> float:
    return check_float(
        "confidence",
        confidence,
        minimum=0.0,
        maximum=1.0,
        strict_minimum=True,
        strict_maximum=True,
    )


def _sample(b: int, n: int, k: int, gen: torch.Generator, device: torch.device):
    """``k`` distinct cells of ``n`` per row, uniformly: indices (b, k) and mask (b, n).

    Sparse draws use Floyd's algorithm (``k`` steps of one random integer per
    row); dense ones the ``k`` largest of ``n`` uniform keys. Both give every
    ``k``-subset the same probability.
    """
    if 4 * k > n:
        idx = torch.rand((b, n), generator=gen, device=device).topk(k, dim=1, sorted=False).indices
        mask = torch.zeros(b, n, dtype=torch.bool, device=device).scatter_(1, idx, True)
        return idx, mask
    mask = torch.zeros(b, n, dtype=torch.bool, device=device)
    idx = torch.empty(b, k, dtype=torch.int64, device=device)
    for i, j in enumerate(range(n - k, n)):
        t = torch.randint(0, j + 1, (b, 1), generator=gen, device=device)
        chosen = torch.where(mask.gather(1, t), j, t)  # Floyd: t taken already -> take j
        mask.scatter_(1, chosen, True)
        idx[:, i] = chosen[:, 0]
    return idx, mask


def _run(trial_overlaps, trials, batch_size, n, max_overlap, theta, options):
    """Run batches of ``trial_overlaps(batch) -> (batch,) overlaps`` and summarise."""
    device, _, confidence, verbose, desc = options
    trials = check_int("trials", trials, minimum=1)
    if batch_size is None:
        batch_size = max(1, _DEFAULT_BATCH_ELEMENTS // max(n, 1))
    batch_size = check_int("batch_size", batch_size, minimum=1)
    counts = torch.zeros(max_overlap + 1, dtype=torch.int64, device=device)
    done = 0
    with progress(total=trials, desc=desc, verbose=verbose, unit="trial") as bar:
        while done < trials:
            b = min(batch_size, trials - done)
            overlaps = trial_overlaps(b)
            counts += torch.bincount(overlaps, minlength=max_overlap + 1)
            done += b
            bar.update(b)
    counts = counts.cpu().numpy()
    successes = int(counts[theta:].sum())
    low, high = clopper_pearson(successes, trials, confidence)
    return SimulationResult(
        estimate=successes / trials,
        ci_low=float(low),
        ci_high=float(high),
        successes=successes,
        trials=trials,
        confidence=float(confidence),
        overlap_counts=counts,
    )


def _options(device, seed, confidence, verbose, desc):
    seed = check_int("seed", seed, minimum=0)
    confidence = _check_confidence(confidence)
    dev = resolve_device(device)
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    return dev, gen, confidence, verbose, desc


def _scalars(**values):
    for name, value in values.items():
        if np.ndim(value) != 0:
            raise InputError(f"{name} must be a single number for a simulation; got {value!r}.")


def simulate_false_match(
    n: int,
    a: int,
    s: int,
    theta: int,
    trials: int = 100_000,
    *,
    batch_size: int | None = None,
    device: str = "auto",
    seed: int = 0,
    confidence: float = 0.999,
    verbose: int = 0,
) -> SimulationResult:
    """Estimate the false-match probability by sampling patterns and segments.

    Each trial samples a segment (``s`` distinct cells of ``n``) and a random
    pattern (``a`` distinct active cells); it is a false match when at least
    ``theta`` of the segment's cells are active. The theory is
    :func:`~neuro.dendrites.theory.false_match_probability`.

    Parameters
    ----------
    n, a, s, theta : int
        As in the theory (``a <= n``, ``s <= n``, ``theta <= s``).
    trials : int, default=100_000
    batch_size : int, optional
        Trials simulated at once; memory grows as ``batch_size * n``. The
        default keeps about 16 million random keys (64 MB) per batch.
    device : str, default="auto"
    seed : int, default=0
    confidence : float, default=0.999
        Level of the Clopper-Pearson interval.
    verbose : int, default=0
        1 shows a progress bar.

    Returns
    -------
    SimulationResult

    Examples
    --------
    >>> r = simulate_false_match(300, 128, 24, 12, trials=20_000, device="cpu")
    >>> r.contains(0.29208)
    True
    """
    _scalars(n=n, a=a, s=s, theta=theta)
    n, a, s, theta = (int(v) for v in _check_segment(n, a, s, theta))
    dev, gen, *_ = opts = _options(device, seed, confidence, verbose, "false match")

    def overlaps(b):
        segment = _sample(b, n, s, gen, dev)[1]
        pattern = _sample(b, n, a, gen, dev)[0]
        return segment.gather(1, pattern).sum(1)

    return _run(overlaps, trials, batch_size, n, min(a, s), theta, opts)


def simulate_noise_match(
    n: int,
    a: int,
    s: int,
    theta: int,
    noise: float,
    trials: int = 100_000,
    *,
    batch_size: int | None = None,
    device: str = "auto",
    seed: int = 0,
    confidence: float = 0.999,
    verbose: int = 0,
) -> SimulationResult:
    """Estimate the probability that a segment still matches its pattern under noise.

    Each trial samples a stored pattern (``a`` of ``n`` cells) and a segment
    that subsamples ``s`` of its cells; noise then turns off ``v = round(noise *
    a)`` random cells of the pattern and turns on ``v`` random cells outside it.
    The segment still matches when at least ``theta`` of its cells are active in
    the noisy pattern. The theory is
    :func:`~neuro.dendrites.theory.noise_match_probability`;
    ``overlap_counts`` holds the overlaps of the segment with the noisy pattern.

    Parameters
    ----------
    n, a, s, theta : int
        Need ``s <= a`` and ``n - a >= v`` (room outside the pattern).
    noise : float in [0, 1]
    trials, batch_size, device, seed, confidence, verbose
        As in :func:`simulate_false_match`.

    Returns
    -------
    SimulationResult
        ``estimate`` is the match probability; the false-negative rate is
        ``1 - estimate``.

    Examples
    --------
    >>> r = simulate_noise_match(1000, 128, 30, 12, 0.5, trials=20_000, device="cpu")
    >>> r.contains(0.92830)
    True
    """
    _scalars(n=n, a=a, s=s, theta=theta, noise=noise)
    n, a, s, theta = (int(v) for v in _check_segment(n, a, s, theta))
    noise = float(_fraction("noise", noise))
    _check_noise_segment(np.asarray(a), np.asarray(s))
    v = math.floor(noise * a + 0.5)
    if n - a < v:
        raise InputError(
            f"noise={noise} moves v={v} cells to cells outside the pattern, but only "
            f"n - a = {n - a} cells lie outside it; use a larger n or less noise."
        )
    dev, gen, *_ = opts = _options(device, seed, confidence, verbose, "noise match")

    def overlaps(b):
        pattern, noisy = _sample(b, n, a, gen, dev)  # (b, a) cell indices, (b, n) mask
        segment = pattern.gather(1, _sample(b, a, s, gen, dev)[0])  # s of the pattern's cells
        if v:
            dropped = pattern.gather(1, _sample(b, a, v, gen, dev)[0])
            outside = torch.rand((b, n), generator=gen, device=dev).masked_fill_(noisy, -1.0)
            added = outside.topk(v, dim=1, sorted=False).indices
            noisy.scatter_(1, dropped, False).scatter_(1, added, True)
        return noisy.gather(1, segment).sum(1)

    return _run(overlaps, trials, batch_size, n, s, theta, opts)


def simulate_union_false_match(
    n: int,
    a: int,
    s: int,
    theta: int,
    m: int,
    trials: int = 100_000,
    *,
    batch_size: int | None = None,
    device: str = "auto",
    seed: int = 0,
    confidence: float = 0.999,
    verbose: int = 0,
) -> SimulationResult:
    """Estimate the false-match rate of a segment storing ``m`` patterns.

    Each trial builds a segment from ``m`` independent samples of ``s`` cells
    (the synapses formed for ``m`` stored patterns; their union has a random
    size near ``s_M``) and tests it against a random pattern of ``a`` cells;
    a false match is an overlap of at least ``theta``. The exact expectation is
    ``union_false_match_probability(..., variant="expected")``; the paper's
    ``variant="synapses"`` approximates it with the rounded mean union size.

    Parameters
    ----------
    n, a, s, theta : int
    m : int, >= 1
    trials, batch_size, device, seed, confidence, verbose
        As in :func:`simulate_false_match`.

    Returns
    -------
    SimulationResult

    Examples
    --------
    >>> r = simulate_union_false_match(1000, 200, 25, 15, 2, trials=20_000, device="cpu")
    >>> r.contains(0.05077)
    True
    """
    _scalars(n=n, a=a, s=s, theta=theta, m=m)
    n, a, s, theta = (int(v) for v in _check_segment(n, a, s, theta))
    m = int(_counts("m", m, minimum=1))
    dev, gen, *_ = opts = _options(device, seed, confidence, verbose, "union false match")
    max_overlap = min(a, m * s, n)

    def overlaps(b):
        segment = torch.zeros(b, n, dtype=torch.bool, device=dev)
        for _ in range(m):
            segment |= _sample(b, n, s, gen, dev)[1]
        pattern = _sample(b, n, a, gen, dev)[0]
        return segment.gather(1, pattern).sum(1)

    return _run(overlaps, trials, batch_size, n, max_overlap, theta, opts)
