"""The simulated spiking circuit: its planted connectivity is visible in the spikes, and only then.

Ground truth is checked with coincidence counts at the planted delay:

* against far lags of the cross-correlogram (strong excitatory pairs peak,
  inhibitory pairs dip, unconnected pairs stay flat);
* against the count expected if neurons were independent given their rates
  (``sum_t p_j(t) p_i(t + d)``), which in the null circuit (no coupling) is the
  exact expectation, so its z-scores are standard normal there.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from data_loaders.errors import InputError, InputTypeError, OutputExistsError
from data_loaders.simulate.spikes import (
    SimulatedCircuit,
    cross_correlogram,
    simulate_spiking_circuit,
)
from data_loaders.spikes import AlignedRecording, SpikeTrains, load_nwb, read_nwb_units

MAX_LAG = 15


@pytest.fixture(scope="module")
def sim() -> SimulatedCircuit:
    return simulate_spiking_circuit(seed=0)


@pytest.fixture(scope="module")
def null() -> SimulatedCircuit:
    return simulate_spiking_circuit(seed=0, coupling_strength=0.0)


def _strongest(sim, sign, k=10):
    """The ``k`` strongest connections of a sign: (pre, post, delay) arrays."""
    post, pre = np.nonzero(sign * sim.adjacency > 0)
    top = np.argsort(-sign * sim.adjacency[post, pre])[:k]
    post, pre = post[top], pre[top]
    return pre, post, sim.delays[post, pre]


def _excess(counts, pre, post, lag):
    """Coincidences at ``lag`` relative to the far lags (10..15 bins either way), minus 1."""
    ccg = cross_correlogram(counts, pre, post, max_lag=MAX_LAG)
    far = np.concatenate([ccg[:, :6], ccg[:, -6:]], axis=1).mean(axis=1)
    return ccg[np.arange(len(pre)), MAX_LAG + np.asarray(lag)] / np.maximum(far, 1.0) - 1.0


def _independent_z(sim, pre, post, lag):
    """z-score of coincidences at ``lag`` against independence given the rates."""
    counts = sim.counts.astype(np.float64)
    p = -np.expm1(-sim.rates.astype(np.float64) * sim.dt)
    n = counts.shape[1]
    z = []
    for j, i, d in zip(pre, post, np.broadcast_to(lag, np.shape(pre)), strict=True):
        observed = (counts[j, : n - d] * counts[i, d:]).sum()
        expected = (p[j, : n - d] * p[i, d:]).sum()
        z.append((observed - expected) / np.sqrt(expected))
    return np.array(z)


# ----------------------------------------------------------------------------- what comes back
def test_outputs_have_documented_shapes_and_types(sim):
    n, n_bins = 40, 6000
    assert isinstance(sim.spikes, SpikeTrains)
    assert (sim.spikes.n_neurons, sim.spikes.t_start, sim.spikes.t_stop) == (n, 0.0, 60.0)
    assert sim.counts.shape == (n, n_bins) and sim.counts.max() == 1  # one spike per bin at most
    assert sim.stimulus.shape == (1200, 15, 20) and sim.stimulus.dtype == np.float32
    np.testing.assert_allclose(sim.frame_times, np.arange(1200) / 20.0)
    assert np.abs(sim.stimulus).max() <= 1.0
    blank = np.all(sim.stimulus == 0, axis=(1, 2))
    assert 0 < blank.mean() < 0.6  # grey blocks and grating blocks
    assert sim.behavior.shape == (1200, 1)
    np.testing.assert_allclose(sim.behavior_times, np.arange(1200) * 0.05)
    assert sim.adjacency.shape == sim.delays.shape == (n, n)
    assert sim.rates.shape == (n, n_bins) and sim.receptive_fields.shape == (n, 15, 20)
    np.testing.assert_allclose(np.linalg.norm(sim.receptive_fields.reshape(n, -1), axis=1), 1.0)
    rec = sim.recording
    assert isinstance(rec, AlignedRecording) and rec.behavior_names == ("readout0",)
    # spikes sit at the start of their bins
    np.testing.assert_allclose(
        sim.spikes.times / 0.01, np.round(sim.spikes.times / 0.01), atol=1e-6
    )


def test_seeded_and_reproducible():
    a = simulate_spiking_circuit(n_neurons=9, n_hubs=1, duration=3.0, seed=5)
    b = simulate_spiking_circuit(n_neurons=9, n_hubs=1, duration=3.0, seed=5)
    c = simulate_spiking_circuit(n_neurons=9, n_hubs=1, duration=3.0, seed=6)
    np.testing.assert_array_equal(a.spikes.times, b.spikes.times)
    np.testing.assert_array_equal(a.spikes.neuron_ids, b.spikes.neuron_ids)
    np.testing.assert_array_equal(a.behavior, b.behavior)
    assert not np.array_equal(a.adjacency, c.adjacency)


def test_simulates_40_neurons_for_60_s_in_well_under_a_few_seconds():
    simulate_spiking_circuit(n_neurons=8, duration=1.0)  # imports, warm caches
    start = time.perf_counter()
    simulate_spiking_circuit(n_neurons=40, duration=60.0, dt=0.01, seed=1)
    assert time.perf_counter() - start < 3.0


# ----------------------------------------------------------------------------- the planted circuit
def test_adjacency_convention_hubs_dale_and_delays(sim):
    A, D = sim.adjacency, sim.delays
    connected = A != 0
    assert not connected.diagonal().any()
    out_degree = connected.sum(axis=0)  # column j: the targets of presynaptic j
    others = np.delete(out_degree, sim.hubs)
    assert len(sim.hubs) == 3 and out_degree[sim.hubs].min() > others.max()
    assert np.all(A[:, sim.hubs] >= 0)  # hubs are excitatory
    for j in range(40):  # Dale's law: one sign per presynaptic neuron
        w = A[connected[:, j], j]
        assert np.all(w > 0) if sim.excitatory[j] else np.all(w < 0)
    assert 0.6 < sim.excitatory.mean() < 1.0 and (A < 0).any()
    assert set(np.unique(D[connected])) <= {1, 2, 3} and np.all(D[~connected] == 0)
    magnitude = np.abs(A[connected])
    assert magnitude.min() >= 0.75 - 1e-12 and magnitude.max() <= 1.5


def test_strong_excitatory_couplings_peak_at_their_planted_delay(sim):
    pre, post, delay = _strongest(sim, +1)
    excess = _excess(sim.counts, pre, post, delay)
    assert excess.mean() > 1.0 and excess.min() > 0.2
    ccg = cross_correlogram(sim.counts, pre, post, max_lag=MAX_LAG)
    peak = np.argmax(ccg[:, MAX_LAG + 1 : MAX_LAG + 6], axis=1) + 1  # lags 1..5
    assert (peak == delay).mean() >= 0.8
    # the direction is right: post follows pre, not the other way round
    assert (excess > _excess(sim.counts, post, pre, delay)).all()
    # unconnected pairs (no edge either way) are flat at the same lags
    rng = np.random.default_rng(1)
    i, j = rng.integers(0, 40, (2, 600))
    keep = (i != j) & (sim.adjacency[i, j] == 0) & (sim.adjacency[j, i] == 0)
    i, j = i[keep][:150], j[keep][:150]
    unconnected = _excess(sim.counts, j, i, rng.integers(1, 4, len(i)))
    assert abs(np.median(unconnected)) < 0.25
    assert excess.mean() > np.quantile(unconnected, 0.9) + 0.5


def test_inhibitory_couplings_dip_at_their_planted_delay(sim):
    pre, post, delay = _strongest(sim, -1)
    excess = _excess(sim.counts, pre, post, delay)
    assert excess.mean() < -0.3 and (excess < 0).mean() >= 0.9


def test_couplings_exceed_independence_given_the_rates(sim):
    pre, post, delay = _strongest(sim, +1)
    z = _independent_z(sim, pre, post, delay)
    assert z.min() > 3.0 and z.mean() > 6.0


def test_null_circuit_has_no_connections_and_no_peaks(sim, null):
    assert not null.adjacency.any() and not null.delays.any()
    # the same stimulus and neurons: only the coupling differs
    np.testing.assert_array_equal(null.stimulus, sim.stimulus)
    np.testing.assert_array_equal(null.receptive_fields, sim.receptive_fields)
    pre, post, delay = _strongest(sim, +1)
    z_planted = _independent_z(null, pre, post, delay)
    assert np.abs(z_planted).max() < 4.0
    assert (
        np.abs(_excess(null.counts, pre, post, delay)).mean()
        < 0.5 * _excess(sim.counts, pre, post, delay).mean()
    )
    # every ordered pair at lag 2: z-scores look standard normal
    i, j = np.nonzero(~np.eye(40, dtype=bool))
    z = _independent_z(null, j, i, 2)
    assert abs(z.mean()) < 0.3 and 0.85 < z.std() < 1.15


def test_refractoriness():
    strong = simulate_spiking_circuit(n_neurons=12, n_hubs=1, duration=20.0, refractory=50.0)
    c = strong.counts
    assert c.sum() > 500 and (c[:, 1:] * c[:, :-1]).sum() == 0  # never two bins in a row
    none = simulate_spiking_circuit(
        n_neurons=12, n_hubs=1, duration=20.0, refractory=0.0, baseline_rate=20.0
    )
    c = none.counts
    assert (c[:, 1:] * c[:, :-1]).sum() > 20


def test_firing_rates_are_realistic_and_configurable(sim):
    rates = sim.spikes.firing_rates()
    assert 3.0 < rates.mean() < 15.0 and rates.min() > 0.5 and rates.max() < 40.0
    slow = simulate_spiking_circuit(n_neurons=20, duration=20.0, baseline_rate=1.0)
    fast = simulate_spiking_circuit(n_neurons=20, duration=20.0, baseline_rate=20.0)
    assert slow.spikes.firing_rates().mean() < 3.0 < 15.0 < fast.spikes.firing_rates().mean()
    # the intensity the spikes were drawn from matches them
    expected = -np.expm1(-sim.rates.astype(np.float64) * sim.dt).sum(axis=1)  # spikes
    observed = sim.counts.sum(axis=1)
    assert np.all(np.abs(observed - expected) < 4 * np.sqrt(expected))


def test_rates_are_baseline_times_stimulus_drive():
    quiet = simulate_spiking_circuit(
        n_neurons=9, duration=2.0, coupling_strength=0.0, refractory=0.0, stimulus_gain=0.0
    )
    np.testing.assert_allclose(
        quiet.rates, np.repeat(quiet.baseline_rates[:, None], 200, 1), rtol=1e-6
    )
    driven = simulate_spiking_circuit(
        n_neurons=9, duration=20.0, coupling_strength=0.0, refractory=0.0
    )
    frames = driven.stimulus.reshape(len(driven.stimulus), -1).astype(np.float64)
    response = frames @ driven.receptive_fields.reshape(9, -1).T  # (n_frames, n)
    log_gain = np.log(driven.rates[:, ::5].T / driven.baseline_rates)  # one bin per frame
    for i in range(9):
        assert np.corrcoef(response[:, i], log_gain[:, i])[0, 1] > 0.999


def _readout(sim, tau=0.25):
    counts = sim.counts.astype(np.float64)
    decay = np.exp(-sim.dt / tau)
    smooth = np.zeros_like(counts)
    trace = np.zeros(counts.shape[0])
    for t in range(counts.shape[1]):
        trace = decay * trace + (1 - decay) * counts[:, t]
        smooth[:, t] = trace
    z = (smooth - smooth.mean(1, keepdims=True)) / smooth.std(1, keepdims=True)
    step = round(0.05 / sim.dt)
    return (z.T @ sim.behavior_weights)[::step]


@pytest.mark.parametrize(("noise", "low", "high"), [(0.1, 0.98, 1.0), (1.0, 0.6, 0.8)])
def test_behaviour_is_a_noisy_readout_of_the_population(sim, noise, low, high):
    if noise != 0.1:
        sim = simulate_spiking_circuit(duration=30.0, behavior_noise=noise)
    r = np.corrcoef(_readout(sim)[:, 0], sim.behavior[:, 0])[0, 1]
    assert low < r < high
    two = simulate_spiking_circuit(n_neurons=10, duration=5.0, n_behavior=2, behavior_rate=10.0)
    assert two.behavior.shape == (50, 2) and two.behavior_weights.shape == (10, 2)


# ----------------------------------------------------------------------------- NWB
def test_nwb_round_trip_is_exact(sim, tmp_path):
    pytest.importorskip("pynwb")
    path = sim.write_nwb(tmp_path / "circuit.nwb")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["circuit.nwb"]  # no temporary left
    rec = load_nwb(
        path, stimulus="stimulus/presentation/movie", behavior="processing/behavior/readout"
    )
    np.testing.assert_array_equal(rec.spikes.times, sim.spikes.times)
    np.testing.assert_array_equal(rec.spikes.neuron_ids, sim.spikes.neuron_ids)
    assert (rec.spikes.n_neurons, rec.spikes.t_start, rec.spikes.t_stop) == (40, 0.0, 60.0)
    np.testing.assert_array_equal(rec.stimulus, sim.stimulus)
    np.testing.assert_array_equal(rec.frame_times, sim.frame_times)
    np.testing.assert_array_equal(rec.behavior, sim.behavior)
    np.testing.assert_array_equal(rec.behavior_times, sim.behavior_times)
    np.testing.assert_array_equal(rec.spikes.binned(sim.dt), sim.counts)
    units = read_nwb_units(path)
    np.testing.assert_array_equal(units.times, sim.spikes.times)

    with pytest.raises(OutputExistsError, match="circuit.nwb' exists; pass overwrite=True"):
        sim.write_nwb(path)
    other = simulate_spiking_circuit(n_neurons=5, n_hubs=1, duration=2.0, seed=3)
    other.write_nwb(path, overwrite=True)
    assert read_nwb_units(path).n_neurons == 5


# ----------------------------------------------------------------------------- helpers and errors
def test_cross_correlogram_counts_lagged_coincidences():
    c = np.array([[1, 0, 1, 0, 0, 1, 0], [0, 1, 0, 1, 1, 0, 1], [1, 1, 0, 0, 0, 0, 0]])
    ccg = cross_correlogram(c, [0, 0], [1, 0], max_lag=2)
    assert ccg[0].tolist() == [1, 2, 0, 3, 1]  # lags -2..2
    assert ccg[1].tolist() == [1, 0, 3, 0, 1]  # an autocorrelogram is symmetric
    assert cross_correlogram(c, 2, 0, max_lag=10).shape == (1, 21)
    with pytest.raises(InputError, match=r"neuron indices in 0..2"):
        cross_correlogram(c, [3], [0])
    with pytest.raises(InputError, match="pairs of equal length"):
        cross_correlogram(c, [0, 1], [0])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(n_neurons=5, n_hubs=5), InputError, "n_hubs must be < n_neurons = 5; got 5"),
        (dict(p_connect=1.5), InputError, "p_connect must be <= 1.0"),
        (dict(duration=0.01), InputError, "too short for dt=0.01 s"),
        (dict(duration=0.03, behavior_rate=1.0), InputError, "shorter than one behaviour sample"),
        (dict(frame_shape=(10,)), InputError, r"frame_shape must be \(H, W\)"),
        (dict(n_neurons=4.0), InputTypeError, "n_neurons must be an integer"),
        (dict(dt=0), InputError, "dt must be > 0"),
        (dict(coupling_strength=-1.0), InputError, "coupling_strength must be >= 0"),
    ],
)
def test_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        simulate_spiking_circuit(**kwargs)
    assert "\n" not in str(info.value)
