"""Analyses of neuro.rl: known answers, null cases and one-line errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from neuro.errors import InputError, InputTypeError
from neuro.rl.analysis import (
    CurveComparison,
    LearningCurves,
    compare_curves,
    compare_rsms,
    dimensionality,
    distance_correlation,
    episodes_to_criterion,
    grid_path_lengths,
    learning_curves,
    module_report,
    n_components,
    place_field_score,
    rsm,
    spatial_information,
    tuning_maps,
)

SHAPE = (7, 8)  # a 7x8 grid with a wall border: 5x6 = 30 free cells
CELLS = [(r, c) for r in range(1, 6) for c in range(1, 7)]


def place_activity(rng, n_units=9, sigma=0.8, noise=0.0):
    """Gaussian bumps at random free cells: (n_cells, n_units) activity."""
    pos = np.array(CELLS, dtype=float)
    centres = pos[rng.choice(len(pos), n_units, replace=False)]
    d2 = ((pos[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * sigma**2)) + noise * rng.standard_normal(d2.shape)


def shuffle_cells(rng, activity):
    """Each unit's values permuted independently across cells (spatial arrangement destroyed)."""
    return np.stack([rng.permutation(col) for col in activity.T], axis=1)


def classical_mds(d, k):
    n = len(d)
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (d**2) @ j
    w, v = np.linalg.eigh(b)
    top = np.argsort(w)[::-1][:k]
    return v[:, top] * np.sqrt(np.maximum(w[top], 0))


# ----------------------------------------------------------------- learning curves


def coverage(rng, n_seeds, method, n_episodes=300):
    steps = rng.normal(60.0, 15.0, size=(n_seeds, n_episodes))
    res = learning_curves(steps, method=method, n_boot=500)
    return np.mean((res.lower <= 60.0) & (res.upper >= 60.0))


def test_t_band_covers_true_mean_at_nominal_rate(rng):
    assert 0.91 <= coverage(rng, 6, "t") <= 0.98


def test_bootstrap_band_covers_with_many_seeds_and_undercovers_with_few(rng):
    assert 0.89 <= coverage(rng, 30, "bootstrap") <= 0.98
    # the documented reason for the t default: 5 seeds are too few for the percentile bootstrap
    assert coverage(rng, 5, "bootstrap") < coverage(rng, 5, "t")


@pytest.mark.parametrize("method", ["t", "bootstrap"])
def test_constant_curve_has_zero_width_band(method):
    res = learning_curves(np.full((4, 9), 37.0), method=method)
    np.testing.assert_array_equal(res.mean, 37.0)
    np.testing.assert_array_equal(res.lower, 37.0)
    np.testing.assert_array_equal(res.upper, 37.0)


def test_band_is_t_interval_by_hand():
    steps = np.array([[10.0, 20.0], [14.0, 20.0], [12.0, 26.0]])
    res = learning_curves(steps, confidence=0.9)
    from scipy import stats

    half = stats.t.ppf(0.95, 2) * steps.std(axis=0, ddof=1) / np.sqrt(3)
    np.testing.assert_allclose(res.lower, steps.mean(0) - half)
    np.testing.assert_allclose(res.upper, steps.mean(0) + half)


def test_missing_episodes_and_smoothing():
    steps = np.array([[1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, np.nan], [5.0, 6.0, np.nan, np.nan]])
    res = learning_curves(steps)
    np.testing.assert_allclose(res.mean, [3.0, 4.0, 4.0, 4.0])
    np.testing.assert_array_equal(res.n_seeds, [3, 3, 2, 1])
    assert np.isnan(res.lower[3]) and np.isnan(res.upper[3])  # one seed: no band
    smooth = learning_curves(steps[:2], window=2)
    # trailing means: seed 0 -> 1, 1.5, 2.5, 3.5; seed 1 -> 3, 3.5, 4.5, 5 (NaN ignored)
    np.testing.assert_allclose(smooth.mean, [2.0, 2.5, 3.5, 4.25])


@pytest.mark.parametrize("method", ["t", "bootstrap"])
def test_episode_missing_in_every_seed_is_nan_without_warning(method):
    steps = np.array([[5.0, np.nan, 3.0], [7.0, np.nan, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = learning_curves(steps, method=method)
    assert np.isnan(res.mean[1]) and np.isnan(res.lower[1]) and res.n_seeds[1] == 0
    assert res.mean[0] == 6.0


def test_learning_curves_accepts_tensor_and_saves(tmp_path):
    res = learning_curves(torch.tensor([[150.0, 60.0, 20.0], [140.0, 80.0, 30.0]]))
    assert isinstance(res, LearningCurves)
    np.testing.assert_allclose(res.mean, [145.0, 70.0, 25.0])
    assert "episode" in res.format_table()
    out = res.save(tmp_path / "curves")
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["last_mean"] == 25.0 and summary["method"] == "t"
    assert len(pd.read_csv(out / "curve.csv")) == 3
    assert (out / "figures" / "learning_curve.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"steps": np.ones(5)}, InputError, r"steps must be 2D \(n_seeds, n_episodes\)"),
        ({"steps": np.ones((1, 5))}, InputError, "steps has 1 seed.*needs at least 2"),
        ({"steps": [[1.0, np.nan], [np.nan, np.nan]]}, InputError, r"seed\(s\) \[1\] with no"),
        ({"steps": [[1.0, np.inf], [1.0, 2.0]]}, InputError, "steps contains infinite"),
        ({"confidence": 1.0}, InputError, "confidence must be < 1.0"),
        ({"method": "percentile"}, InputError, "method must be one of 't', 'bootstrap'"),
        ({"window": 0}, InputError, "window must be an integer >= 1"),
        ({"steps": "steps.npy"}, InputTypeError, "steps must be an array of numbers"),
    ],
)
def test_learning_curves_errors(kwargs, error, match):
    args = {"steps": np.ones((3, 5))} | kwargs
    with pytest.raises(error, match=match) as info:
        learning_curves(**args)
    assert "\n" not in str(info.value)


def test_episodes_to_criterion_known_answer_and_never():
    steps = np.array(
        [
            [100, 50, 10, 10, 10, 10],  # window 2 reaches mean <= 20 at episodes 2-3 -> 4
            [100, 100, 100, 100, 100, 100],  # never
            [30, 12, np.nan, 10, 10, 10],  # the windows holding NaN does not count -> 5
        ],
        dtype=float,
    )
    out = episodes_to_criterion(steps, threshold=20, window=2)
    np.testing.assert_array_equal(out, [4.0, np.nan, 5.0])
    np.testing.assert_array_equal(episodes_to_criterion(steps[:1], 100, window=1), [1.0])


def test_episodes_to_criterion_errors():
    with pytest.raises(InputError, match=r"window=7 is longer than the 6 episodes"):
        episodes_to_criterion(np.ones((2, 6)), threshold=3, window=7)
    with pytest.raises(InputTypeError, match="threshold must be a number"):
        episodes_to_criterion(np.ones((2, 6)), threshold="low")


@pytest.mark.parametrize("method", ["t", "bootstrap"])
def test_compare_curves_holds_only_when_clearly_lower(rng, method):
    decay = 100 * np.exp(-np.arange(60) / 15)
    fast = decay * 0.5 + 20 + 5 * rng.standard_normal((6, 60))
    slow = decay + 20 + 5 * rng.standard_normal((8, 60))
    res = compare_curves(fast, slow, method=method, names=("predictive", "model-free"))
    assert isinstance(res, CurveComparison)
    assert res.verdict == "holds" and res.upper < 0 and res.p_value < 0.001
    assert "'predictive needs fewer steps than model-free' holds" in res.format_table()
    assert compare_curves(slow, fast, method=method).verdict == "does not hold"
    same = compare_curves(fast, fast, method=method)
    assert same.verdict == "does not hold" and same.difference == 0.0


def test_compare_curves_null_rarely_holds():
    rng = np.random.default_rng(3)
    holds = [
        compare_curves(rng.normal(50, 10, size=(5, 30)), rng.normal(50, 10, size=(5, 30))).holds
        for _ in range(300)
    ]
    assert np.mean(holds) < 0.06  # one-sided at 2.5% nominal


def test_compare_curves_errors():
    with pytest.raises(InputError, match="a has 5 episodes and b has 4"):
        compare_curves(np.ones((3, 5)), np.ones((3, 4)))
    with pytest.raises(InputError, match="b has 1 seed"):
        compare_curves(np.ones((3, 5)), np.ones((1, 5)))
    with pytest.raises(InputTypeError, match="names must be a pair of strings"):
        compare_curves(np.ones((3, 5)), np.ones((3, 5)), names="ab")


# ----------------------------------------------------------------- spatial tuning


def test_tuning_maps_places_values_and_walls(rng):
    act = rng.standard_normal((len(CELLS), 3))
    maps = tuning_maps(torch.from_numpy(act), CELLS, SHAPE)
    assert maps.shape == (3, 7, 8)
    r, c = CELLS[7]
    np.testing.assert_array_equal(maps[:, r, c], act[7])
    assert np.isnan(maps[:, 0, :]).all() and np.isnan(maps[:, :, 7]).all()
    assert np.isfinite(maps).sum() == 3 * len(CELLS)


@pytest.mark.parametrize(
    ("activity", "cells", "shape", "error", "match"),
    [
        (np.ones((29, 3)), CELLS, SHAPE, InputError, "activity has 29 rows but cells has 30"),
        (np.ones((30, 3)), CELLS, (5, 8), InputError, r"cells must lie inside the grid of shape"),
        (np.ones((2, 3)), [(1, 1), (1, 1)], SHAPE, InputError, r"1 repeated cell"),
        (np.ones((2, 3)), [1, 2], SHAPE, InputError, r"cells must be 2D"),
        (np.ones((2, 3)), [(1, 1, 0), (2, 2, 0)], SHAPE, InputError, r"\(row, col\) pairs"),
        (np.ones((2, 3)), [(1.5, 1), (2, 2)], SHAPE, InputError, "integer"),
        (np.ones((2, 3)), [(1, 1), (2, 2)], (7,), InputTypeError, "shape must be a pair"),
        (np.ones(2), [(1, 1), (2, 2)], SHAPE, InputError, r"activity must be 2D"),
        ([[1, np.nan]], [(1, 1)], SHAPE, InputError, "activity contains 1 NaN"),
    ],
)
def test_tuning_maps_errors(activity, cells, shape, error, match):
    with pytest.raises(error, match=match) as info:
        tuning_maps(activity, cells, shape)
    assert "\n" not in str(info.value)


def test_spatial_information_known_values():
    n = len(CELLS)
    single = np.zeros((n, 1))
    single[4] = 2.0
    flat = np.full((n, 1), 3.0)
    np.testing.assert_allclose(spatial_information(single), [np.log2(n)])
    np.testing.assert_allclose(spatial_information(flat), [0.0])
    # half the cells active: 1 bit
    half = np.zeros((n, 1))
    half[: n // 2] = 1.0
    np.testing.assert_allclose(spatial_information(half), [1.0])
    # occupancy: the active cell visited 3x as often as the other (2 cells): p = (3/4, 1/4)
    two = np.array([[1.0], [0.0]])
    expected = 0.75 * (1 / 0.75) * np.log2(1 / 0.75)
    np.testing.assert_allclose(spatial_information(two, occupancy=[3, 1]), [expected])


def test_spatial_information_maps_equal_activity(rng):
    act = place_activity(rng)
    maps = tuning_maps(act, CELLS, SHAPE)
    np.testing.assert_allclose(spatial_information(maps), spatial_information(act))


def test_place_fields_score_high_and_shuffles_low(rng):
    act = place_activity(rng, n_units=9)
    maps = tuning_maps(act, CELLS, SHAPE)
    info = spatial_information(act)
    assert info.min() > 1.0  # sharp bumps: most activity in a few of 30 cells
    assert place_field_score(maps).min() > 0.6
    # null 1: no spatial tuning at all (flat + small noise) -> little information
    flat = 1.0 + 0.01 * rng.standard_normal(act.shape)
    assert spatial_information(flat, negative="relu").max() < 0.01
    # null 2: the same values shuffled across cells -> no coherent field
    shuffled = shuffle_cells(rng, act)
    assert np.abs(np.mean(place_field_score(tuning_maps(shuffled, CELLS, SHAPE)))) < 0.25
    # Skaggs information ignores the arrangement (documented): unchanged by the shuffle
    np.testing.assert_allclose(spatial_information(shuffled), info)


def test_negative_activations():
    act = np.array([[-1.0], [1.0], [-1.0], [-1.0]])
    np.testing.assert_allclose(spatial_information(act), [2.0])  # shift: min -> 0
    np.testing.assert_allclose(spatial_information(act, negative="relu"), [2.0])
    with pytest.raises(InputError, match=r"negative values \(min -1\) and negative='error'"):
        spatial_information(act, negative="error")
    with pytest.raises(InputError, match="negative must be one of"):
        spatial_information(act, negative="abs")


def test_spatial_information_errors():
    with pytest.raises(InputError, match="occupancy has 3 entries but activity has 4 cells"):
        spatial_information(np.ones((4, 2)), occupancy=[1, 1, 1])
    with pytest.raises(InputError, match="occupancy must be non-negative"):
        spatial_information(np.ones((4, 2)), occupancy=[1, -1, 1, 1])
    with pytest.raises(InputError, match=r"activity \(n_cells, n_units\) contains NaN"):
        spatial_information([[1.0, np.nan], [1.0, 2.0]])


def test_place_field_score_constant_map_is_nan():
    maps = np.full((1, 4, 5), 2.0)
    assert np.isnan(place_field_score(maps)[0])
    with pytest.raises(InputError, match=r"maps must be 3D \(n_units, H, W\)"):
        place_field_score(np.ones((4, 5)))


# ----------------------------------------------------------------- geometry


def test_rsm_identical_and_unrelated(rng):
    act = rng.standard_normal((30, 8))
    m = rsm(act)
    assert m.shape == (30, 30)
    np.testing.assert_allclose(np.diag(m), 1.0)
    np.testing.assert_allclose(m, m.T)
    np.testing.assert_allclose(m, np.corrcoef(act), atol=1e-12)
    assert compare_rsms(m, rsm(act.copy())) == pytest.approx(1.0)
    assert compare_rsms(rsm(act, "cosine"), rsm(2 * act, "cosine"), "pearson") == pytest.approx(1)
    other = rsm(rng.standard_normal((30, 8)))
    assert abs(compare_rsms(m, other)) < 0.15


def test_rsm_constant_rows_are_nan_and_left_out():
    act = np.array([[1.0, 2.0, 3.0], [0.3, 0.3, 0.3], [3.0, 1.0, 2.0], [1.0, 3.0, 2.5]])
    m = rsm(act)
    assert np.isnan(m[1]).all() and np.isnan(m[:, 1]).all() and np.isfinite(m[0, [0, 2, 3]]).all()
    assert np.isnan(rsm(np.vstack([act, np.zeros(3)]), "cosine")[4]).all()
    assert compare_rsms(m, m) == pytest.approx(1.0)  # NaN pairs are dropped


def test_rsm_errors():
    with pytest.raises(InputError, match="activity has 1 unit; correlation between cells"):
        rsm(np.ones((5, 1)))
    with pytest.raises(InputError, match="metric must be one of"):
        rsm(np.ones((5, 2)), metric="euclid")
    with pytest.raises(InputError, match=r"a has shape \(4, 4\) and b \(5, 5\)"):
        compare_rsms(np.eye(4), np.eye(5))
    with pytest.raises(InputError, match=r"b must be square \(n_cells, n_cells\)"):
        compare_rsms(np.eye(4), np.ones((4, 5)))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_participation_ratio_of_k_equal_dimensions(rng, k):
    latent = rng.standard_normal((4000, k))
    mixing = np.linalg.qr(rng.standard_normal((7, 7)))[0][:k]  # k orthonormal directions in 7-D
    act = latent @ mixing
    assert dimensionality(act) == pytest.approx(k, rel=0.05)
    assert n_components(act, 0.9) == k


def test_participation_ratio_of_a_known_spectrum(rng):
    spectrum = np.array([5.0, 3.0, 1.0, 0.5, 0.0, 0.0, 0.0])
    n = 40
    z = rng.standard_normal((n, 7))
    z -= z.mean(0)
    scores = np.linalg.qr(z)[0]  # (n, 7) orthonormal, zero-mean columns
    rot = np.linalg.qr(rng.standard_normal((7, 7)))[0]
    act = scores * np.sqrt(spectrum * (n - 1)) @ rot.T  # covariance eigenvalues == spectrum
    expected = spectrum.sum() ** 2 / np.sum(spectrum**2)
    assert dimensionality(torch.from_numpy(act)) == pytest.approx(expected, rel=1e-9)
    assert n_components(act, 0.8) == 2  # (5 + 3) / 9.5 = 0.84
    assert dimensionality(np.zeros((5, 3))) == 0.0 and n_components(np.zeros((5, 3))) == 0


def test_dimensionality_errors():
    with pytest.raises(InputError, match="activity needs at least 2 samples"):
        dimensionality(np.ones((1, 3)))
    with pytest.raises(InputError, match=r"variance must be <= 1.0"):
        n_components(np.ones((4, 3)), variance=1.5)


def test_grid_path_lengths_goes_around_walls():
    # a U: (0,0) to (0,2) must go down, across and up: 4 steps
    cells = [(0, 0), (1, 0), (1, 1), (1, 2), (0, 2)]
    d = grid_path_lengths(cells)
    assert d[0, 4] == 4 and d[0, 1] == 1 and d[2, 4] == 2
    np.testing.assert_array_equal(d, d.T)
    assert np.isinf(grid_path_lengths([(0, 0), (2, 2)])[0, 1])


def test_distance_correlation_exact_embedding():
    track = [(0, c) for c in range(12)]
    latents = np.arange(12.0)[:, None] * np.array([[0.6, 0.8]])  # a line in 2-D
    res = distance_correlation(latents, grid_path_lengths(track), n_permutations=499)
    assert res.r == pytest.approx(1.0) and res.p_value < 0.05
    assert res.n_pairs == 66 and res.null.shape == (499,)
    # on the grid: classical MDS of the BFS distances embeds them nearly exactly
    d = grid_path_lengths(CELLS)
    mds = classical_mds(d, 6)
    res = distance_correlation(mds, d, n_permutations=199)
    assert res.r > 0.95 and res.p_value == pytest.approx(1 / 200)
    pearson = distance_correlation(mds, d, method="pearson", n_permutations=0)
    assert pearson.r > 0.95 and np.isnan(pearson.p_value)


def test_distance_correlation_null_random_latents():
    d = grid_path_lengths(CELLS)
    rs, ps = [], []
    for seed in range(10):
        x = np.random.default_rng(seed).standard_normal((len(CELLS), 4))
        res = distance_correlation(x, d, n_permutations=199, random_state=seed)
        rs.append(res.r)
        ps.append(res.p_value)
    assert abs(np.mean(rs)) < 0.05 and max(np.abs(rs)) < 0.2
    assert np.median(ps) > 0.2 and np.mean(np.array(ps) < 0.05) <= 0.2


def test_distance_correlation_errors():
    d = grid_path_lengths(CELLS)
    with pytest.raises(InputError, match="latents has 29 rows but cells has 30"):
        distance_correlation(np.ones((29, 3)), d)
    with pytest.raises(InputError, match="path_lengths contains 2 NaN or infinite"):
        distance_correlation(np.ones((2, 3)), grid_path_lengths([(0, 0), (2, 2)]))
    asym = d.copy()
    asym[0, 1] += 1
    with pytest.raises(InputError, match="path_lengths must be symmetric"):
        distance_correlation(np.ones((30, 3)), asym)
    with pytest.raises(InputError, match="distances need at least 3 cells"):
        distance_correlation(np.ones((2, 3)), np.ones((2, 2)) - np.eye(2))
    with pytest.raises(InputError, match="n_permutations must be an integer >= 0"):
        distance_correlation(np.ones((30, 3)), d, n_permutations=-1)


# ----------------------------------------------------------------- report


def test_module_report_ranks_place_module_above_noise(rng):
    place = place_activity(rng, n_units=6)
    noise = rng.standard_normal((len(CELLS), 6))
    rotation = np.linalg.qr(rng.standard_normal((4, 4)))[0][:2]
    coords = np.array(CELLS, dtype=float) @ rotation  # the grid's plane, rotated into 4-D
    table = module_report(
        {"hippocampus": place, "striatum": noise, "cortex": coords}, CELLS, SHAPE, n_permutations=99
    )
    assert list(table.columns) == [
        "module",
        "n_units",
        "dimensionality",
        "spatial_information",
        "place_field_score",
        "distance_correlation",
        "p_value",
    ]
    rows = table.set_index("module")
    assert rows.loc["hippocampus", "place_field_score"] > 0.7
    assert abs(rows.loc["striatum", "place_field_score"]) < 0.3
    assert (
        rows.loc["hippocampus", "spatial_information"] > rows.loc["striatum", "spatial_information"]
    )
    assert rows.loc["cortex", "distance_correlation"] > 0.9
    assert rows.loc["cortex", "p_value"] == pytest.approx(0.01)
    assert rows.loc["cortex", "dimensionality"] < 2.0 + 1e-9  # a plane in 4-D
    assert abs(rows.loc["striatum", "distance_correlation"]) < 0.2


def test_module_report_errors():
    with pytest.raises(InputTypeError, match="modules must be a non-empty dict"):
        module_report({}, CELLS, SHAPE)
    with pytest.raises(InputError, match=r"modules\['enc'\] has 3 rows but cells has 30"):
        module_report({"enc": np.ones((3, 2))}, CELLS, SHAPE)
    with pytest.raises(InputError, match="cells are not all connected"):
        module_report({"enc": np.ones((2, 2))}, [(0, 0), (2, 2)], (3, 3))
