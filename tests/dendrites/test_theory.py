"""The theory: the paper's numbers, exact vs log-space agreement, range, shapes, bad input."""

import math
import time
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from neuro.dendrites import (
    false_match_probability,
    false_negative_probability,
    log_false_match_probability,
    log_noise_match_probability,
    log_overlap_set_size,
    log_union_false_match_probability,
    noise_match_probability,
    optimal_threshold,
    overlap_set_size,
    paper_sweeps,
    theory_summary,
    union_false_match_probability,
    union_synapse_count,
)
from neuro.errors import InputError, InputTypeError


def _close_to_printed(value: float, printed: str) -> bool:
    """``value`` rounds to ``printed`` (within half a unit of its last digit)."""
    ref = Decimal(printed)
    half_unit = Decimal(5).scaleb(ref.as_tuple().exponent - 1)
    return abs(Decimal(repr(float(value))) - ref) <= half_unit


# (n, a, s, theta, printed value) from the reference file
FALSE_MATCH = [
    (2000, 32, 2, 1, "0.031752"),
    (2000, 32, 4, 2, "1.4591e-3"),
    (2000, 32, 30, 15, "3.2696e-21"),
    (4000, 32, 30, 15, "1.0331e-25"),
    (16000, 512, 2, 1, "0.062978"),
    (16000, 512, 30, 15, "3.0777e-15"),
    (16000, 4000, 30, 15, "0.0027252"),
    (300, 64, 24, 12, "1.0946e-3"),
    (500, 64, 24, 12, "5.6957e-6"),
    (700, 64, 24, 12, "1.4125e-7"),
    (300, 128, 24, 12, "0.29208"),
    (500, 256, 24, 12, "0.62937"),
]


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "logspace"])
@pytest.mark.parametrize("n, a, s, theta, printed", FALSE_MATCH)
def test_false_match_reproduces_the_paper(n, a, s, theta, printed, exact):
    assert _close_to_printed(false_match_probability(n, a, s, theta, exact=exact), printed)


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "logspace"])
@pytest.mark.parametrize("theta, printed", [(8, "7.354e-4"), (12, "0.07170"), (16, "0.5825")])
def test_false_negative_reproduces_the_paper(theta, printed, exact):
    assert _close_to_printed(false_negative_probability(128, 30, theta, 64, exact=exact), printed)
    # the same number through the noise fraction: 50% of 128 cells is v = 64
    match = noise_match_probability(2000, 128, 30, theta, 0.5, exact=exact)
    assert _close_to_printed(1 - match, printed)


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "logspace"])
@pytest.mark.parametrize("m, printed", [(1, "1.0014e-5"), (2, "0.04739"), (3, "0.5017")])
def test_union_reproduces_the_paper(m, printed, exact):
    value = union_false_match_probability(1000, 200, 25, 15, m, exact=exact)
    assert _close_to_printed(value, printed)


def test_threshold_8_reaches_1e_minus_7_on_the_authors_grid():
    grid = paper_sweeps()["threshold"]
    log10 = log_false_match_probability(**grid) / math.log(10)
    median = np.median(log10.reshape(-1, grid["theta"].shape[-1]), axis=0)
    thetas = grid["theta"].reshape(-1, grid["theta"].shape[-1])[0]
    first = int(thetas[np.argmax(median <= -7)])
    assert first == 8
    assert np.all(median[thetas >= 8] <= -7)
    assert np.all(np.diff(median) < 0)


def test_simulated_value_of_the_paper_agrees():
    # the authors simulated 0.292048 for the computed 0.29208 (1e8 samples)
    assert false_match_probability(300, 128, 24, 12) == pytest.approx(0.292048, abs=2e-4)


def _exact_fraction(n, a, s, theta):
    num = sum(math.comb(s, b) * math.comb(n - s, a - b) for b in range(theta, s + 1) if a >= b)
    return Fraction(num, math.comb(n, a))


@pytest.mark.parametrize("n_max", [50, 2000, 20000])
def test_exact_and_logspace_agree(n_max, rng):
    n = rng.integers(1, n_max, 40)
    a = rng.integers(0, n + 1)
    s = rng.integers(0, np.minimum(n, 60) + 1)
    theta = rng.integers(0, s + 1)
    exact = log_false_match_probability(n, a, s, theta, exact=True)
    logspace = log_false_match_probability(n, a, s, theta, exact=False)
    np.testing.assert_array_equal(np.isfinite(exact), np.isfinite(logspace))
    finite = np.isfinite(exact)
    np.testing.assert_allclose(logspace[finite], exact[finite], rtol=0, atol=1e-12)
    # and the exact path is the integer sum, correctly rounded
    for i in range(5):
        args = (int(n[i]), int(a[i]), int(s[i]), int(theta[i]))
        assert false_match_probability(*args, exact=True) == float(_exact_fraction(*args))


def test_logspace_reaches_1e_minus_300_and_beyond():
    # a probability near 1e-300, at the bottom of float64, from both paths
    exact = false_match_probability(100_000, 1000, 300, 188, exact=True)
    logspace = false_match_probability(100_000, 1000, 300, 188, exact=False)
    assert 1e-301 < exact < 1e-299
    assert logspace == pytest.approx(exact, rel=1e-12)
    # far below float64: the log functions stay finite and exact
    log_exact = log_false_match_probability(100_000, 1000, 300, 300, exact=True)
    log_fast = log_false_match_probability(100_000, 1000, 300, 300, exact=False)
    assert log_fast == pytest.approx(log_exact, rel=1e-13)
    assert log_fast / math.log(10) < -600
    assert false_match_probability(100_000, 1000, 300, 300, exact=False) == 0.0


def test_large_populations_do_not_overflow():
    n = np.array([10_000, 50_000, 100_000])
    p = false_match_probability(n, n // 50, 40, 5, exact=False)
    assert np.all(np.isfinite(p)) and np.all((p > 0) & (p < 1))
    np.testing.assert_allclose(
        p, false_match_probability(n, n // 50, 40, 5, exact=True), rtol=1e-12
    )


def test_a_smaller_than_s_masks_impossible_overlaps():
    # with a < s an overlap above a is impossible: C(k, j) = 0 for j > k
    assert false_match_probability(100, 5, 30, 6) == 0.0
    assert log_false_match_probability(100, 5, 30, 6) == -np.inf
    assert false_match_probability(100, 5, 30, 5, exact=False) == pytest.approx(
        float(_exact_fraction(100, 5, 30, 5)), rel=1e-13
    )


def test_overlap_sets_partition_all_patterns():
    n, a, s = 40, 9, 7
    sizes = overlap_set_size(n, a, s, np.arange(s + 1))
    assert sum(sizes) == math.comb(n, a)
    np.testing.assert_allclose(
        np.exp(log_overlap_set_size(n, a, s, np.arange(s + 1))), sizes.astype(float), rtol=1e-12
    )
    assert overlap_set_size(10, 3, 4, 4) == 0


def test_broadcasting_shapes_and_scalars():
    n = np.array([500, 1000, 2000])[:, None]
    theta = np.array([5, 6, 7, 8])[None, :]
    assert false_match_probability(n, 32, 12, theta).shape == (3, 4)
    assert noise_match_probability(n, 32, 12, theta, np.array([0.1, 0.2, 0.3, 0.4])).shape == (3, 4)
    assert union_false_match_probability(n, 32, 12, theta, 2).shape == (3, 4)
    value = false_match_probability(500, 32, 12, 6)
    assert isinstance(value, float | np.floating) and np.ndim(value) == 0
    assert isinstance(optimal_threshold(500, 32, 12, 0.2), int | np.integer)
    # a parameter given as whole-valued floats is accepted
    assert false_match_probability(500.0, 32.0, 12, 6) == value


def test_a_whole_sweep_is_fast():
    sweeps = paper_sweeps()
    start = time.perf_counter()
    points = 0
    for name, grid in sweeps.items():
        if name == "union":
            out = union_false_match_probability(**grid)
        elif name == "noise":
            out = noise_match_probability(**grid)
        else:
            out = false_match_probability(**grid)
        points += out.size
    assert points > 5000
    assert time.perf_counter() - start < 1.0


def test_noise_limits_and_complement():
    assert noise_match_probability(1000, 50, 20, 10, 0.0) == 1.0
    assert noise_match_probability(1000, 50, 20, 1, 1.0) == 0.0
    theta = np.arange(1, 21)
    match = noise_match_probability(1000, 50, 20, theta, 0.3)
    fn = false_negative_probability(50, 20, theta, 15)
    np.testing.assert_allclose(match + fn, 1.0, rtol=1e-13)
    assert np.all(np.diff(match) <= 0)  # a higher threshold is less robust
    assert np.exp(log_noise_match_probability(1000, 50, 20, theta, 0.3)) == pytest.approx(match)


def test_fractional_noise_cells_round_or_interpolate():
    # noise * a = 2.5 cells: rounded to 3 by default, interpolated on request
    n, a, s, theta = 100, 10, 5, 4
    at = {v: 1 - false_negative_probability(a, s, theta, v) for v in (2, 3)}
    assert noise_match_probability(n, a, s, theta, 0.25) == pytest.approx(at[3], rel=1e-14)
    assert noise_match_probability(n, a, s, theta, 0.24) == pytest.approx(at[2], rel=1e-14)
    mid = noise_match_probability(n, a, s, theta, 0.25, interpolate=True)
    assert mid == pytest.approx(0.5 * (at[2] + at[3]), rel=1e-14)
    whole = noise_match_probability(n, a, s, theta, 0.3, interpolate=True)
    assert whole == pytest.approx(at[3], rel=1e-14)


def test_union_variants():
    assert union_synapse_count(1000, 25, 1) == 25
    np.testing.assert_array_equal(union_synapse_count(1000, 25, [2, 3]), [49, 73])
    one = false_match_probability(1000, 200, 25, 15)
    for variant in ("synapses", "expected", "inputs"):
        value = union_false_match_probability(1000, 200, 25, 15, 1, variant=variant)
        assert value == pytest.approx(one, rel=1e-10), variant
    m = np.arange(1, 8)
    for variant in ("synapses", "expected", "inputs"):
        assert np.all(
            np.diff(union_false_match_probability(1000, 200, 25, 15, m, variant=variant)) > 0
        )
    log_u = log_union_false_match_probability(1000, 200, 25, 15, 2, variant="expected")
    assert math.exp(log_u) == pytest.approx(0.0507733632, rel=1e-8)
    with pytest.raises(InputError, match="variant"):
        union_false_match_probability(1000, 200, 25, 15, 2, variant="bogus")
    with pytest.raises(InputError, match="exact=True"):
        union_false_match_probability(1000, 200, 25, 15, 2, variant="inputs", exact=True)


def _brute_optimal(n, a, s, noise):
    v = math.floor(noise * a + 0.5)
    totals = [
        false_match_probability(n, a, s, t, exact=True)
        + false_negative_probability(a, s, t, v, exact=True)
        for t in range(1, s + 1)
    ]
    return 1 + int(np.argmin(totals))


@pytest.mark.parametrize(
    "n, a, s, noise",
    [(300, 40, 20, 0.3), (1000, 64, 24, 0.5), (2000, 32, 30, 0.2), (500, 128, 12, 0.7)],
)
def test_optimal_threshold_minimises_the_total_error(n, a, s, noise):
    assert optimal_threshold(n, a, s, noise) == _brute_optimal(n, a, s, noise)


def test_optimal_threshold_on_cases_with_a_known_answer():
    # no noise: no false negatives at any theta <= s, so the strictest threshold wins
    assert optimal_threshold(1000, 50, 20, 0.0) == 20
    # all cells moved: every theta misses the pattern, so again the strictest wins
    assert optimal_threshold(1000, 50, 20, 1.0) == 20
    # false matches negligible (n huge) and v = 5 moved cells: the segment keeps at least
    # s - v = 15 active synapses, and theta = 16 would miss some patterns
    assert optimal_threshold(100_000, 100, 20, 0.05) == 15
    # vectorised over noise: more noise, lower threshold
    theta = optimal_threshold(2000, 64, 24, np.linspace(0.05, 0.6, 8))
    assert np.all(np.diff(theta) <= 0) and theta[0] > theta[-1]
    # budget form: the smallest theta meeting the false-match budget, -1 if none does
    budget = optimal_threshold(1000, 50, 20, 0.2, max_false_match=1e-7)
    assert false_match_probability(1000, 50, 20, budget) <= 1e-7
    assert false_match_probability(1000, 50, 20, budget - 1) > 1e-7
    assert optimal_threshold(40, 20, 4, 0.2, max_false_match=1e-12) == -1


def test_theory_summary_holds_every_number():
    d = theory_summary(2000, 32, 30, 15, m=3, noise=0.5)
    assert d["false_match_probability"] == pytest.approx(3.2696e-21, rel=1e-4)
    assert d["noise_cells_moved"] == 16
    assert d["noise_match_probability"] + d["false_negative_probability"] == pytest.approx(1.0)
    assert d["union_synapses"] == 89  # round(2000 (1 - 0.985^3)) = round(88.66)
    assert "optimal_threshold" in d
    assert "noise_match_probability" not in theory_summary(2000, 10, 30, 15)


BAD = [
    (false_match_probability, (10, 11, 3, 2), "a must be <= n"),
    (false_match_probability, (10, 5, 11, 2), "s must be <= n"),
    (false_match_probability, (10, 5, 3, 4), "theta must be <= s"),
    (false_match_probability, (10, -1, 3, 2), "a must be >= 0"),
    (false_match_probability, (-10, 5, 3, 2), "n must be >= 1"),
    (false_match_probability, (10, 5, -3, 2), "s must be >= 0"),
    (false_match_probability, (10, 5, 3, -2), "theta must be >= 0"),
    (false_match_probability, (10, 5.5, 3, 2), "a must hold whole numbers"),
    (false_match_probability, (np.array([10, 20]), np.array([5, 25]), 3, 2), r"index \(1,\)"),
    (noise_match_probability, (100, 10, 5, 3, 1.5), r"noise .* \[0, 1\]"),
    (noise_match_probability, (100, 10, 5, 3, -0.1), r"noise .* \[0, 1\]"),
    (noise_match_probability, (100, 10, 5, 3, np.nan), r"noise .* \[0, 1\]"),
    (noise_match_probability, (100, 10, 20, 3, 0.1), "s must be <= a"),
    (noise_match_probability, (100, 110, 20, 3, 0.1), "a must be <= n"),
    (false_negative_probability, (10, 5, 3, 11), "v must be <= a"),
    (false_negative_probability, (10, 5, 6, 1), "theta must be <= s"),
    (union_false_match_probability, (100, 10, 5, 3, 0), "m must be >= 1"),
    (union_false_match_probability, (100, 10, 5, 6, 2), "theta must be <= s"),
    (optimal_threshold, (100, 10, 5, 2.0), r"noise .* \[0, 1\]"),
    (optimal_threshold, (100, 10, 50, 0.2), "s must be <= a"),
    (optimal_threshold, (5, 10, 3, 0.2), "a must be <= n"),
]


@pytest.mark.parametrize("func, args, message", BAD, ids=[f"{b[0].__name__}-{b[2]}" for b in BAD])
def test_bad_input_is_refused_clearly(func, args, message):
    with pytest.raises(InputError, match=message):
        func(*args)


def test_bad_types_and_shapes():
    with pytest.raises(InputTypeError, match="whole number"):
        false_match_probability("10", 5, 3, 2)
    with pytest.raises(InputTypeError, match="number or an array"):
        false_match_probability([10, [20, 30]], 5, 3, 2)
    with pytest.raises(InputError, match="broadcast"):
        false_match_probability(np.arange(10, 13), np.arange(1, 3), 3, 2)
    with pytest.raises(InputTypeError, match="exact"):
        false_match_probability(10, 5, 3, 2, exact="yes")
    with pytest.raises(InputError, match="max_false_match"):
        optimal_threshold(100, 10, 5, 0.1, max_false_match=0)
