"""Monte Carlo of patterns and segments: the theory sits inside the 99.9% intervals."""

import numpy as np
import pytest
import torch

from neuro.dendrites import (
    clopper_pearson,
    false_match_probability,
    noise_match_probability,
    simulate_false_match,
    simulate_noise_match,
    simulate_union_false_match,
    union_false_match_probability,
)
from neuro.errors import InputError

TRIALS = 12_000

# a sweep over n, a, s, theta where the probability is not tiny
FALSE_MATCH_SWEEP = [
    (300, 128, 24, 12),
    (500, 256, 24, 12),
    (300, 64, 24, 8),
    (200, 40, 20, 6),
    (900, 90, 9, 3),
    (2000, 32, 2, 1),
    (70, 7, 8, 1),
    (1000, 300, 30, 10),
]


@pytest.mark.parametrize("n, a, s, theta", FALSE_MATCH_SWEEP)
def test_false_match_theory_inside_the_interval(n, a, s, theta):
    result = simulate_false_match(n, a, s, theta, trials=TRIALS, device="cpu", seed=n + theta)
    p = false_match_probability(n, a, s, theta)
    assert result.contains(p), (result, p)
    assert result.overlap_counts.sum() == TRIALS


NOISE_SWEEP = [
    (1000, 128, 30, 12, 0.5),
    (500, 128, 30, 16, 0.5),
    (300, 40, 20, 10, 0.3),
    (400, 64, 24, 12, 0.65),
    (250, 9, 8, 7, 0.2),
    (200, 50, 20, 20, 0.05),
]


@pytest.mark.parametrize("n, a, s, theta, noise", NOISE_SWEEP)
def test_noise_match_theory_inside_the_interval(n, a, s, theta, noise):
    result = simulate_noise_match(n, a, s, theta, noise, trials=TRIALS, device="cpu", seed=7)
    p = noise_match_probability(n, a, s, theta, noise)
    assert result.contains(p), (result, p)


@pytest.mark.parametrize("n, a, s, theta, m", [(1000, 200, 25, 15, 2), (600, 60, 12, 4, 3)])
def test_union_theory_inside_the_interval(n, a, s, theta, m):
    result = simulate_union_false_match(n, a, s, theta, m, trials=TRIALS, device="cpu", seed=3)
    expected = union_false_match_probability(n, a, s, theta, m, variant="expected")
    assert result.contains(expected), (result, expected)
    # the paper's s_M form approximates the same quantity, to within ten percent here
    approx = union_false_match_probability(n, a, s, theta, m)
    assert approx == pytest.approx(result.estimate, rel=0.1)


def test_overlap_histogram_gives_every_threshold():
    n, a, s = 300, 128, 24
    result = simulate_false_match(n, a, s, 12, trials=TRIALS, device="cpu")
    tails = result.overlap_counts[::-1].cumsum()[::-1] / TRIALS
    low, high = clopper_pearson(tails * TRIALS, TRIALS, 0.999)
    theory = false_match_probability(n, a, s, np.arange(s + 1))
    assert np.all((low <= theory) & (theory <= high))


def test_batches_bound_memory_and_seed_repeats():
    small = simulate_false_match(100, 10, 12, 2, trials=1001, batch_size=7, device="cpu", seed=1)
    again = simulate_false_match(100, 10, 12, 2, trials=1001, batch_size=7, device="cpu", seed=1)
    assert small.trials == 1001 and small.overlap_counts.sum() == 1001
    assert small.successes == again.successes
    auto = simulate_false_match(100, 10, 12, 2, trials=1001, device="auto")
    assert auto.trials == 1001


def test_clopper_pearson_edges():
    low, high = clopper_pearson(0, 100)
    assert low == 0.0 and 0 < high < 0.1
    low, high = clopper_pearson(100, 100)
    assert high == 1.0 and 0.9 < low < 1
    lows, highs = clopper_pearson(np.array([5, 50]), 100, 0.95)
    assert np.all(lows < np.array([0.05, 0.5])) and np.all(highs > np.array([0.05, 0.5]))


@pytest.mark.parametrize(
    "func, args, message",
    [
        (simulate_false_match, (10, 11, 3, 2), "a must be <= n"),
        (simulate_false_match, (10, 5, 3, 4), "theta must be <= s"),
        (simulate_noise_match, (10, 5, 3, 2, 1.5), "noise"),
        (simulate_noise_match, (10, 8, 3, 2, 0.5), "outside the pattern"),
        (simulate_union_false_match, (10, 5, 3, 2, 0), "m must be >= 1"),
        (simulate_false_match, (np.array([10, 20]), 5, 3, 2), "single number"),
    ],
)
def test_bad_input(func, args, message):
    with pytest.raises(InputError, match=message):
        func(*args, trials=10, device="cpu")


def test_bad_trials():
    with pytest.raises(InputError, match="trials"):
        simulate_false_match(10, 5, 3, 2, trials=0, device="cpu")
    with pytest.raises(InputError, match="confidence must be < 1.0"):
        simulate_false_match(10, 5, 3, 2, trials=10, device="cpu", confidence=1.0)
    with pytest.raises(InputError, match="0 <= successes <= trials"):
        clopper_pearson(11, 10)


@pytest.mark.gpu
def test_cuda_matches_theory():
    result = simulate_false_match(300, 128, 24, 12, trials=200_000, device="cuda")
    assert result.contains(false_match_probability(300, 128, 24, 12))
    assert torch.cuda.is_available()
