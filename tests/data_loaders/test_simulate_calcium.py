"""The calcium simulator plants what it says and returns it."""

import numpy as np
import pytest

from data_loaders.simulate.calcium import simulate_calcium


def test_planted_truth_is_consistent():
    sim = simulate_calcium(
        n_animals=3,
        n_neurons=17,
        n_frames=700,
        n_communities=2,
        community_size=5,
        n_blocks=6,
        seed=4,
    )
    t = sim.truth
    assert sim.data.shape == (3, 17, 700)
    assert [(t.community == k).sum() for k in range(2)] == [5, 5]
    assert t.animals.tolist() == [[False, True, True], [True, False, True]]
    assert t.membership.shape == (6, 17) and t.pair_indicator().shape == (2, 136)
    for k in range(2):
        assert (sim.data.epoch_mask(f"stim{k}") == t.active[k]).all()
        members = t.community == k
        on, off = t.active[k], ~t.active[k]
        a = np.flatnonzero(t.animals[k])[0]
        # members spike more when their community is active, in animals that have it
        assert t.spikes[a][members][:, on].mean() > 3 * t.spikes[a][members][:, off].mean()


def test_seed_noise_and_missing():
    a = simulate_calcium(n_neurons=20, n_frames=300, community_size=4, seed=1)
    b = simulate_calcium(n_neurons=20, n_frames=300, community_size=4, seed=1)
    np.testing.assert_array_equal(a.data.traces, b.data.traces)
    quiet = simulate_calcium(n_neurons=20, n_frames=300, community_size=4, noise=0.0, seed=1)
    assert (quiet.data.traces >= 0).all()
    m = simulate_calcium(n_neurons=20, n_frames=300, community_size=4, missing_fraction=0.2)
    assert m.truth.missing.sum() == 16 and (m.data.missing == m.truth.missing).all()


def test_bad_settings():
    with pytest.raises(ValueError, match="exceeds n_neurons"):
        simulate_calcium(n_neurons=10, community_size=5, n_communities=3)
    with pytest.raises(ValueError, match="n_blocks"):
        simulate_calcium(n_blocks=2)
