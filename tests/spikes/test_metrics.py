"""generation_statistics: rates and pairwise correlations of generated vs real spikes."""

import numpy as np
import pytest

from data_loaders.simulate.spikes import simulate_spiking_circuit
from data_loaders.spikes import SpikeTrains
from neuro.errors import InputError
from neuro.spikes import generation_statistics


@pytest.fixture(scope="module")
def sim():
    return simulate_spiking_circuit(n_neurons=12, n_hubs=2, duration=60.0, seed=0)


def test_identical_trains_agree_perfectly(sim):
    stats = generation_statistics(sim.spikes, sim.spikes, intervals=[(0.0, 30.0), (40.0, 60.0)])
    assert stats["rate_r"] == pytest.approx(1.0)
    assert stats["correlation_r"] == pytest.approx(1.0)
    assert stats["real_rate_hz"] == stats["generated_rate_hz"]
    assert stats["n_pairs"] == 12 * 11 // 2


def test_independent_trains_at_the_same_rates_lose_the_correlations(sim):
    rng = np.random.default_rng(0)
    rates = sim.spikes.firing_rates()
    n_bins = 6000
    counts = (rng.random((12, n_bins)) < (rates[:, None] * 0.01)).astype(int)
    independent = SpikeTrains.from_counts(counts, 0.01)
    stats = generation_statistics(sim.spikes, independent)
    assert stats["rate_r"] > 0.9  # same rates
    assert abs(stats["correlation_r"]) < 0.5  # but none of the coupled structure
    coupled = generation_statistics(sim.spikes, sim.spikes.window(0.0, 60.0))
    assert coupled["correlation_r"] > stats["correlation_r"] + 0.4


def test_bad_input(sim):
    other = simulate_spiking_circuit(n_neurons=5, n_hubs=1, duration=5.0, seed=1)
    with pytest.raises(InputError, match="has 12 neurons but generated has 5"):
        generation_statistics(sim.spikes, other.spikes)
    silent = SpikeTrains.from_arrays([0], [0.5], n_neurons=12, t_stop=60.0)
    with pytest.raises(InputError, match="Fewer than two pairs"):
        generation_statistics(sim.spikes, silent)
    with pytest.raises(InputError, match="bin_size"):
        generation_statistics(sim.spikes, sim.spikes, bin_size=0.0)
