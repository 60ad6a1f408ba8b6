"""Events per time bin and the bin-length check: definition, evidence on planted epochs, null."""

import re
import warnings

import numpy as np
import pytest
import torch

from data_loaders.simulate.calcium import simulate_calcium
from neuro.connectome import fit_ntf
from neuro.connectome.affinity import (
    MIN_EVENTS,
    SUGGESTED_EVENTS,
    BinCheck,
    affinity_tensor,
    bin_events,
    check_bins,
    derivative_affinity,
    pair_index,
)
from neuro.errors import InputError


def _noise_scale(x):
    """sigma_i of the definition for smooth=0: 1.4826 * MAD of the steps (lower median)."""
    d = np.diff(x)
    lower = np.sort(d)[(len(d) - 1) // 2]
    dev = np.sort(np.abs(d - lower))[(len(d) - 1) // 2]
    return 1.4826 * dev


def test_events_are_rises_of_sqrt_scale_noise_scales_counted_at_their_onset(rng):
    n = 200
    x = 0.1 * rng.standard_normal((3, n))
    sigma = np.array([_noise_scale(r) for r in x])
    big, small = 2.0 * np.sqrt(50.0) * sigma, 0.4 * np.sqrt(50.0) * sigma
    x[0, 31:] += big[0]  # step 30 -> bin 1 of 20-step bins
    x[0, 95:] += big[0]  # step 94 -> bin 4
    x[0, 150:] -= big[0]  # a fall is no event
    x[1, 70:] += small[1]  # too small
    x[2, 188:] += big[2]  # step 187 -> bin 9 (the last bin has 19 steps)
    ev = bin_events(x[None], bin_size=20, smooth=0.0, device="cpu")[0]
    assert ev.shape == (3, 10)  # ceil(199 / 20), as affinity_tensor
    expected = np.zeros((3, 10))
    expected[0, [1, 4]] = 1
    expected[2, 9] = 1
    np.testing.assert_array_equal(ev, expected)


@pytest.mark.parametrize("factor, is_event", [(1.5, True), (0.5, False)])
def test_a_joint_rise_is_an_event_when_its_affinity_reaches_one_minus_one_over_e(
    rng, factor, is_event
):
    # two neurons rising together by `factor` * sqrt(scale) sigma
    x = 0.1 * rng.standard_normal((2, 120))
    sigma = np.array([_noise_scale(r) for r in x])
    x[:, 61:] += factor * np.sqrt(50.0) * sigma[:, None]
    events = bin_events(x[None], bin_size=119, smooth=0.0, device="cpu")[0, :, 0]
    aff = derivative_affinity(x, smooth=0.0, device="cpu")[0, 60]
    assert (aff >= 1 - np.exp(-1)) == is_event
    np.testing.assert_array_equal(events, [float(is_event)] * 2)


def _run_starts(x):
    """First step of the constant-sign run holding each step, one neuron, plain Python."""
    s = np.sign(np.diff(x))
    out = np.zeros(len(s), dtype=int)
    for t in range(1, len(s)):
        out[t] = out[t - 1] if s[t] == s[t - 1] else t
    return out


@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_affinity_above_one_minus_one_over_e_on_a_joint_rise_implies_events(rng, smooth):
    # Over a joint interval inside two rising runs, each trace rises at most its run's total
    # rise, so A_ij(t) >= 1 - 1/e there means both runs are events (exact, per step).
    x = rng.standard_normal((1, 6, 400)).cumsum(-1)
    steps = bin_events(x, bin_size=1, smooth=smooth, scale=2.0, device="cpu")[0]
    aff = affinity_tensor(x, bin_size=1, smooth=smooth, scale=2.0, device="cpu")[:, 0]
    xs = x[0]
    if smooth:
        from neuro.connectome.affinity import _prepare

        xs = _prepare(torch.as_tensor(xs, dtype=torch.float32), smooth)[0].numpy()
    starts = np.stack([_run_starts(r) for r in xs])
    up = np.diff(xs) > 0
    checked = 0
    for p, (i, j) in enumerate(pair_index(6)):
        both = up[i] & up[j] & (aff[:, p] >= 1 - np.exp(-1))
        for t in np.flatnonzero(both):
            assert steps[i, starts[i, t]] == 1 and steps[j, starts[j, t]] == 1
            checked += 1
    assert checked > 50
    assert 0 < steps.sum() < up.sum()  # not every rise is an event


def test_missing_neurons_and_bins_as_in_the_affinity_tensor(rng):
    x = rng.standard_normal((2, 7, 83)).cumsum(-1)
    x[1, 4] = np.nan
    ev = bin_events(x, bin_size=9, device="cpu")
    aff = affinity_tensor(x, bin_size=9, device="cpu")
    assert ev.shape == (2, 7, aff.shape[0])
    assert np.isnan(ev[1, 4]).all() and np.isfinite(np.delete(ev[1], 4, 0)).all()
    assert np.isfinite(ev[0]).all() and (ev[0] >= 0).all()


def test_check_bins_figures_and_message(rng):
    sim = simulate_calcium(
        n_animals=2,
        n_neurons=9,
        n_frames=1200,
        n_communities=1,
        community_size=4,
        n_blocks=4,
        sampling_rate=20.0,
        seed=0,
    )
    events = bin_events(sim.data, bin_size=10, device="cpu")
    rate = np.median(events.sum(-1) / 1199)
    short = check_bins(sim.data, bin_size=10, device="cpu")
    assert isinstance(short, BinCheck) and short.min_events == MIN_EVENTS
    assert short.event_rate == pytest.approx(rate)
    assert short.events_per_bin == pytest.approx(10 * rate) and short.too_short
    assert short.suggested_bin_size == int(np.ceil(SUGGESTED_EVENTS / rate))
    assert short.sampling_rate == 20.0  # taken from the CalciumData
    secs = f"{short.suggested_bin_size} frames ({short.suggested_bin_size / 20:.3g} s"
    assert "Use bin_size >= " + secs in short.message()
    frames = check_bins(sim.data.traces, bin_size=10, device="cpu").message()
    assert f"Use bin_size >= {short.suggested_bin_size} frames (" in frames
    assert re.search(r"\d s\b", frames) is None
    long = check_bins(sim.data, bin_size=short.suggested_bin_size, device="cpu")
    assert not long.too_short and long.events_per_bin >= MIN_EVENTS
    # co-active pairs: both neurons of a pair start an event in the same bin
    ev = bin_events(sim.data, bin_size=40, device="cpu") > 0
    k = ev.sum(1)
    expected = np.mean(k * (k - 1) / (9 * 8))
    assert check_bins(sim.data, 40, device="cpu").coactive_pairs_per_bin == pytest.approx(expected)


def test_warn_only_when_too_short(rng):
    sim = simulate_calcium(
        n_animals=2,
        n_neurons=8,
        n_frames=900,
        n_communities=1,
        community_size=4,
        n_blocks=3,
        seed=1,
    )
    with pytest.warns(UserWarning, match="Use bin_size >= "):
        short = check_bins(sim.data, bin_size=2, device="cpu").warn()
    assert short.too_short
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_bins(sim.data, bin_size=short.suggested_bin_size, device="cpu").warn()


def test_a_bin_longer_than_the_events_allow_says_record_longer(rng):
    # 300 frames of one rare neuron pair: the median neuron needs more than the recording
    x = 0.1 * rng.standard_normal((1, 3, 300))
    x[0, :, 150:] += 3.0
    check = check_bins(x, bin_size=20, min_events=5.0, device="cpu")
    assert check.too_short and check.suggested_bin_size > 299
    assert "record longer" in check.message()


def test_no_events_message(rng):
    x = rng.standard_normal((1, 4, 200))  # white noise, unsmoothed: no rise of sqrt(50) sigma
    check = check_bins(x, bin_size=50, smooth=0.0, device="cpu")
    assert check.suggested_bin_size is None and check.too_short
    assert "No events found" in check.message()


def _epoch_recovery(sim, bin_size):
    """Best |r| of each planted community's epochs with a time factor; cross-animal agreement."""
    truth = sim.truth
    k = truth.n_communities
    tensor = affinity_tensor(sim.data, bin_size=bin_size, device="cpu")
    n_bins = tensor.shape[0]
    steps = truth.active[:, :-1].astype(float)
    steps = np.pad(steps, ((0, 0), (0, n_bins * bin_size - steps.shape[1])))
    active = steps.reshape(k, n_bins, bin_size).mean(-1)
    time = fit_ntf(tensor, rank=k, n_iter_max=50, random_state=0).factors[0]
    r = [max(np.corrcoef(time[:, q], active[c])[0, 1] for q in range(k)) for c in range(k)]
    agree = []
    for c, pairs in enumerate(truth.pair_indicator()):
        series = tensor[:, truth.animals[c]][:, :, pairs].mean(-1)  # (bins, animals with c)
        cc = np.corrcoef(series.T)
        agree.append(cc[np.triu_indices(len(cc), 1)].mean())
    return np.array(r), np.array(agree)


def _three_minutes(**kw):
    """3 animals at 30 Hz for 3 min, two communities of 5 in 30 s epochs."""
    settings = dict(n_animals=3, n_neurons=14, n_frames=5400, n_communities=2, community_size=5)
    settings.update(n_blocks=6, sampling_rate=30.0, noise=0.3, **kw)
    return simulate_calcium(**settings)


@pytest.mark.parametrize("seed", [0, 1])
def test_short_bins_lose_the_epochs_and_check_bins_says_so(seed):
    # 30 Hz, 3 min, epochs of 30 s: 0.2 s bins hold ~0.02 events per neuron
    sim = _three_minutes(seed=seed)
    short = check_bins(sim.data, bin_size=6, device="cpu")
    assert short.too_short and short.events_per_bin < 0.05
    r, agree = _epoch_recovery(sim, 6)
    assert r.max() < 0.55 and agree.max() < 0.2  # each animal's own event timing
    good = check_bins(sim.data, bin_size=short.suggested_bin_size, device="cpu")
    assert not good.too_short and 150 < good.bin_size < 900  # shorter than an epoch
    r, agree = _epoch_recovery(sim, good.bin_size)
    assert r.min() > 0.7 and r.mean() > 0.8 and agree.mean() > 0.5  # shared epochs


def test_null_independent_neurons_at_a_long_bin_do_not_warn():
    # no shared events (event_rate=0): the check is about events per bin, not structure
    sim = _three_minutes(event_rate=0.0, baseline_rate=0.2, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check = check_bins(sim.data, bin_size=300, device="cpu").warn()
    assert not check.too_short and check.events_per_bin > 1
    assert check_bins(sim.data, bin_size=6, device="cpu").too_short


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"bin_size": 0}, "bin_size must be an integer >= 1; got 0"),
        ({"bin_size": 60}, "bin_size = 60 steps is longer than the recording"),
        ({"bin_size": 5, "min_events": 0.0}, "min_events"),
    ],
    ids=["bin-below-1", "bin-above-recording", "min-events-0"],
)
def test_bad_options(rng, kwargs, message):
    x = rng.standard_normal((2, 5, 50))
    with pytest.raises(InputError, match=message):
        check_bins(x, device="cpu", **kwargs)
    if "min_events" not in kwargs:
        with pytest.raises(InputError, match=message):
            bin_events(x, device="cpu", **kwargs)
        with pytest.raises(InputError, match=message):
            affinity_tensor(x, device="cpu", **kwargs)


def test_nan_gaps_are_refused(rng):
    x = rng.standard_normal((2, 5, 50))
    x[1, 2, 10:14] = np.nan
    for f in (bin_events, check_bins):
        with pytest.raises(InputError, match="NaN/inf at some frames but not all"):
            f(x, bin_size=5, device="cpu")
