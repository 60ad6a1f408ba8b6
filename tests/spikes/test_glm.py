"""The baselines of Neuroformer's checks, on the simulated circuit whose answer is known.

The fitted models are shared by the module (two GLM fits and one decoder fit
on a 40-neuron, 60 s circuit, coupled and null); the numbers each check
measured are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data_loaders.simulate.spikes import simulate_spiking_circuit
from data_loaders.spikes import AlignedRecording, SpikeTrains, split_intervals
from neuro.errors import InputError, InputTypeError, NotFittedError
from neuro.spikes.glm import (
    PoissonGLM,
    RidgeDecoder,
    _design,
    connectivity_auroc,
    correlation_connectivity,
    raised_cosine_bases,
)

N_NEURONS, DURATION = 40, 60.0


def _split(rec):
    return split_intervals(
        rec.spikes.t_start, rec.spikes.t_stop, n_intervals=20, fractions=(0.8, 0.0, 0.2), seed=0
    )


@pytest.fixture(scope="module")
def coupled():
    sim = simulate_spiking_circuit(n_neurons=N_NEURONS, duration=DURATION, seed=0)
    rec, split = sim.recording, _split(sim.recording)
    glm = PoissonGLM(device="cpu").fit(rec, bin_size=0.01, intervals=split.train)
    return sim, rec, split, glm


@pytest.fixture(scope="module")
def null():
    sim = simulate_spiking_circuit(
        n_neurons=N_NEURONS, duration=DURATION, seed=0, coupling_strength=0.0
    )
    rec, split = sim.recording, _split(sim.recording)
    glm = PoissonGLM(device="cpu").fit(rec, bin_size=0.01, intervals=split.train)
    return sim, rec, split, glm


@pytest.fixture(scope="module")
def small():
    """A tiny circuit for the fast checks of the interface."""
    sim = simulate_spiking_circuit(n_neurons=7, n_hubs=1, duration=8.0, seed=3)
    return sim, sim.recording


# ----------------------------------------------------------------------------- pieces
@pytest.mark.parametrize(("history", "n_bases"), [(5, 3), (6, 4), (4, 1), (3, 3)])
def test_bases_are_a_partition_of_unity(history, n_bases):
    bases = raised_cosine_bases(history, n_bases)
    assert bases.shape == (n_bases, history)
    np.testing.assert_allclose(bases.sum(axis=0), 1.0)
    if n_bases == history:
        np.testing.assert_array_equal(bases, np.eye(history))


def test_design_is_causal_and_matches_the_plain_sum(rng):
    n, T, L, nb = 3, 23, 4, 2
    bases = rng.random((nb, L))
    y = rng.poisson(0.7, (n, T)).astype(float)
    z = rng.standard_normal((T, 5))
    got = _design(y, bases, z, torch.float64, torch.device("cpu")).numpy()
    want = np.zeros((T, n * nb))
    for t in range(T):
        for j in range(n):
            for b in range(nb):
                lags = [lag for lag in range(1, L + 1) if t - lag >= 0]
                want[t, j * nb + b] = sum(bases[b, lag - 1] * y[j, t - lag] for lag in lags)
    np.testing.assert_allclose(got[:, : n * nb], want)
    np.testing.assert_allclose(got[:, n * nb :], z)


def test_auroc_counts_ties_as_half():
    adjacency = np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]])
    assert connectivity_auroc(np.ones((3, 3)), adjacency) == 0.5
    assert connectivity_auroc(-adjacency * 3.0, adjacency) == 1.0
    with pytest.raises(InputError, match="both edges and non-edges"):
        connectivity_auroc(np.ones((3, 3)), np.zeros((3, 3)))
    with pytest.raises(InputError, match="same shape"):
        connectivity_auroc(np.ones((3, 3)), np.zeros((4, 4)))


# ----------------------------------------------------------------------------- ground truth
def test_within_source_auroc_ignores_how_strong_each_source_is():
    adjacency = np.zeros((6, 6))
    adjacency[[1, 2, 3], 0] = 1.0  # neuron 0 drives 1, 2, 3
    adjacency[4, 5] = -1.0  # neuron 5 inhibits 4
    per_source = np.tile(np.array([5.0, 1, 1, 1, 1, 2]), (6, 1))  # strong sources, no targets
    assert connectivity_auroc(per_source, adjacency) > 0.8
    assert connectivity_auroc(per_source, adjacency, within_source=True) == 0.5
    exact = np.abs(adjacency) + 0.1 * per_source
    assert connectivity_auroc(exact, adjacency, within_source=True) == 1.0


def test_glm_couplings_rank_true_edges_above_non_edges(coupled):
    sim, rec, split, glm = coupled
    auroc = connectivity_auroc(glm.coupling_, sim.adjacency)
    auroc_z = connectivity_auroc(glm.coupling_z_, sim.adjacency)
    auroc_corr = connectivity_auroc(correlation_connectivity(rec, 0.01, split.train), sim.adjacency)
    print(
        f"\nAUROC vs true adjacency: GLM |coupling| {auroc:.3f}, GLM |z| {auroc_z:.3f}, "
        f"Pearson correlation {auroc_corr:.3f}"
    )
    assert auroc > 0.85
    assert auroc_z > 0.85
    # significant couplings sit on true edges, with the true sign (Dale's law, hubs excite)
    off, edges = ~np.eye(N_NEURONS, dtype=bool), sim.adjacency != 0
    z = np.abs(glm.coupling_z_)
    print(
        f"|z| > 2: {np.mean(z[edges] > 2):.2f} of edges, {np.mean(z[off & ~edges] > 2):.3f} "
        "of non-edges"
    )
    assert np.mean(z[edges] > 2) > 0.3
    assert np.mean(z[off & ~edges] > 2) < 0.02
    strong = edges & (z > 2)
    assert np.mean(np.sign(glm.coupling_[strong]) == np.sign(sim.adjacency[strong])) > 0.95
    # the self filters recover the refractoriness (true: -4 then -2 log-rate)
    own = glm.coupling_filters_[np.arange(N_NEURONS), np.arange(N_NEURONS)]
    assert np.median(own[:, 0]) < -2.5
    assert np.all(np.diag(glm.coupling_) == 0)


def test_glm_finds_no_strong_coupling_in_a_null_circuit(coupled, null):
    off = ~np.eye(N_NEURONS, dtype=bool)
    z_null = np.abs(null[3].coupling_z_[off])
    z_coupled = np.abs(coupled[3].coupling_z_[off])
    c_null, c_coupled = np.abs(null[3].coupling_[off]), np.abs(coupled[3].coupling_[off])
    print(
        f"\nmax |z|: null {z_null.max():.2f}, coupled {z_coupled.max():.2f}; max |coupling|: "
        f"null {c_null.max():.2f}, coupled {c_coupled.max():.2f}"
    )
    # 1560 pairs of a standard normal rarely pass 4; the penalty only shrinks them
    assert z_null.max() < 3.5
    assert np.mean(z_null > 2) < 0.01
    assert np.mean(z_coupled > 2) > 5 * max(np.mean(z_null > 2), 1 / z_null.size)
    assert c_null.max() < 0.75 * c_coupled.max()


def test_glm_predicts_held_out_spikes_better_than_firing_rates(coupled):
    _, rec, split, glm = coupled
    bps = glm.bits_per_spike(rec, split.test)
    ce = glm.id_cross_entropy(rec, split.test)
    print(
        f"\nheld out: {bps:.3f} bits/spike, id cross-entropy {ce:.3f} nats vs firing-frequency "
        f"entropy {glm.id_entropy_:.3f}; score {glm.score(rec, split.test):.3f} nats/bin"
    )
    assert bps > 0.3
    assert ce < glm.id_entropy_ - 0.2
    # the score is the mean log-likelihood per bin
    n_bins = glm.predict_rates(rec, split.test).shape[1]
    assert glm.score(rec, split.test) == pytest.approx(
        glm.log_likelihood(rec, split.test).sum() / n_bins
    )


def test_glm_stimulus_filters_recover_the_receptive_fields(coupled):
    sim, _, _, glm = coupled
    comps = glm.stimulus_components_
    q = comps / np.linalg.norm(comps, axis=1, keepdims=True)  # orthonormal rows
    rf = sim.receptive_fields.reshape(N_NEURONS, -1)
    visible = rf @ q.T @ q  # the part of each receptive field the frames can reveal
    est = glm.stimulus_filters_.reshape(N_NEURONS, -1)
    r = [np.corrcoef(a, b)[0, 1] for a, b in zip(est, visible, strict=True)]
    print(f"\nstimulus filter vs receptive field: median r {np.median(r):.3f}")
    assert np.median(r) > 0.8


def test_glm_generates_held_out_firing_rates(coupled):
    _, rec, split, glm = coupled
    true = np.zeros(N_NEURONS)
    generated = np.zeros(N_NEURONS)
    for k, (a, b) in enumerate(split.test):
        true += np.bincount(rec.spikes.window(a, b).neuron_ids, minlength=N_NEURONS)
        for seed in (k, 100 + k):
            spikes = glm.simulate(rec, a, b, seed=seed)
            assert spikes.t_start == a and spikes.t_stop == pytest.approx(b)
            generated += np.bincount(spikes.neuron_ids, minlength=N_NEURONS) / 2
    r = np.corrcoef(true, generated)[0, 1]
    print(
        f"\ngenerated vs held-out firing rates: r {r:.3f}, total {generated.sum():.0f} vs "
        f"{true.sum():.0f} spikes"
    )
    assert r > 0.9
    assert generated.sum() == pytest.approx(true.sum(), rel=0.25)


def test_ridge_decoder_decodes_held_out_behaviour(coupled):
    _, rec, split, _ = coupled
    decoder = RidgeDecoder(device="cpu").fit(rec, split.train)
    r = decoder.correlation_score(rec, split.test)
    r2 = decoder.score(rec, split.test)
    few = RidgeDecoder(device="cpu").fit(rec, split.train[:2])  # 10% of the labels
    r_few = few.correlation_score(rec, split.test)
    print(
        f"\nridge decoder, held out: r {r[0]:.3f} (R² {r2:.3f}); trained on 10% of the labels "
        f"({few.n_samples_fit_} samples): r {r_few[0]:.3f}"
    )
    assert r.shape == (1,) and r[0] > 0.85
    assert r2 > 0.7
    assert r_few[0] > 0.3
    pred = decoder.predict(rec, rec.behavior_times[:5])
    assert pred.shape == (5, 1)


def test_ridge_decoder_fits_at_given_times(coupled):
    _, rec, split, _ = coupled
    inside = np.concatenate(
        [
            rec.behavior_times[(rec.behavior_times >= a) & (rec.behavior_times < b)]
            for a, b in split.train[:2]
        ]
    )
    by_interval = RidgeDecoder(device="cpu").fit(rec, split.train[:2])
    by_times = RidgeDecoder(device="cpu").fit(rec, times=inside)
    assert by_times.n_samples_fit_ == by_interval.n_samples_fit_ == len(inside)
    np.testing.assert_allclose(by_times.coef_, by_interval.coef_)
    # between samples the behaviour is interpolated, so the fit differs but still decodes
    shifted = RidgeDecoder(device="cpu").fit(rec, times=inside[:-1] + 0.5 * np.diff(inside))
    assert not np.allclose(shifted.coef_, by_interval.coef_)
    assert shifted.correlation_score(rec, split.test)[0] > 0.3
    with pytest.raises(InputError, match="intervals or times, not both"):
        RidgeDecoder(device="cpu").fit(rec, split.train, times=inside)
    with pytest.raises(InputError, match="inside the recording"):
        RidgeDecoder(device="cpu").fit(rec, times=[-1.0, 2.0])
    with pytest.raises(InputError, match="at least 2"):
        RidgeDecoder(device="cpu").fit(rec, times=[2.0])


# ----------------------------------------------------------------------------- interface
def test_inputs_spiketrains_pairs_and_recordings_agree(small):
    sim, rec = small
    kwargs = {"device": "cpu", "n_stimulus_components": 0, "standard_errors": False}
    a = PoissonGLM(**kwargs).fit(rec)
    b = PoissonGLM(**kwargs).fit(sim.spikes)
    c = PoissonGLM(**kwargs).fit((sim.spikes.neuron_ids, sim.spikes.times))
    assert a.stimulus_filters_ is None and a.coupling_z_ is None
    np.testing.assert_allclose(a.coupling_, b.coupling_)
    # the pair form ends the recording at the last spike: nearly the same bins
    assert np.corrcoef(a.coupling_.ravel(), c.coupling_.ravel())[0, 1] > 0.99
    spikes = a.simulate(None, 0.0, 1.0, seed=0)
    assert isinstance(spikes, SpikeTrains) and spikes.n_neurons == 7


def test_simulate_is_seeded_and_uses_the_recorded_history(small):
    _, rec = small
    glm = PoissonGLM(device="cpu", standard_errors=False).fit(rec)
    a = glm.simulate(rec, 2.0, 4.0, seed=5)
    b = glm.simulate(rec, 2.0, 4.0, seed=5)
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_array_equal(a.neuron_ids, b.neuron_ids)
    assert np.all((a.times >= 2.0) & (a.times < 4.0))
    assert np.bincount(a.binned(0.01).ravel()).size <= 2  # max_count=1


def test_save_load_round_trip(small, tmp_path):
    _, rec = small
    glm = PoissonGLM(device="cpu").fit(rec, bin_size=0.02, intervals=[(0.0, 6.0)])
    path = glm.save(tmp_path / "glm.pt")
    loaded = PoissonGLM.load(path)
    assert loaded.bin_size_ == 0.02 and loaded.get_params() == glm.get_params()
    np.testing.assert_array_equal(
        loaded.predict_rates(rec, [(6.0, 8.0)]), glm.predict_rates(rec, [(6.0, 8.0)])
    )
    np.testing.assert_array_equal(loaded.coupling_z_, glm.coupling_z_)
    assert loaded.simulate(rec, 6.0, 8.0, seed=1).times.tolist() == (
        glm.simulate(rec, 6.0, 8.0, seed=1).times.tolist()
    )
    decoder = RidgeDecoder(n_lags=4, device="cpu").fit(rec, [(0.0, 6.0)])
    loaded_decoder = RidgeDecoder.load(decoder.save(tmp_path / "decoder.pt"))
    times = rec.behavior_times[-20:]
    np.testing.assert_array_equal(loaded_decoder.predict(rec, times), decoder.predict(rec, times))


@pytest.mark.gpu
def test_glm_on_cuda_matches_cpu(small):
    _, rec = small
    cpu = PoissonGLM(device="cpu").fit(rec)
    gpu = PoissonGLM(device="cuda").fit(rec)
    np.testing.assert_allclose(gpu.coupling_, cpu.coupling_, atol=0.05)


# ----------------------------------------------------------------------------- bad input
def test_bad_input_is_refused_in_one_line(small):
    sim, rec = small
    glm = PoissonGLM(device="cpu", standard_errors=False)
    with pytest.raises(NotFittedError):
        glm.simulate(rec, 0.0, 1.0)
    with pytest.raises(InputError, match="bin_size must be > 0"):
        glm.fit(rec, bin_size=0.0)
    with pytest.raises(InputError, match="longer than the recording"):
        glm.fit(rec, bin_size=20.0)
    with pytest.raises(InputError, match=r"outside the recording \[0, 8\)"):
        glm.fit(rec, intervals=[(0.0, 4.0), (6.0, 9.0)])
    with pytest.raises(InputError, match="is empty; give start < stop"):
        glm.fit(rec, intervals=[(3.0, 3.0)])
    with pytest.raises(InputError, match="shape \\(n_intervals, 2\\)"):
        glm.fit(rec, intervals=[(0.0, 1.0, 2.0)])
    with pytest.raises(InputError, match="n_bases must be <= history_bins=2"):
        PoissonGLM(history_bins=2, n_bases=3).fit(rec)
    with pytest.raises(InputTypeError, match="AlignedRecording, a SpikeTrains or a pair"):
        glm.fit(np.zeros((7, 100)))
    glm.fit(rec)
    other = simulate_spiking_circuit(n_neurons=8, n_hubs=1, duration=8.0, seed=3).recording
    with pytest.raises(InputError, match="8 neurons but the model was fitted on 7"):
        glm.score(other)
    with pytest.raises(InputError, match="must be an AlignedRecording with the stimulus"):
        glm.score(sim.spikes)
    with pytest.raises(InputError, match="give the recording whose stimulus drives it"):
        glm.simulate(None, 0.0, 1.0)
    with pytest.raises(InputError, match="hold no whole bin"):
        glm.simulate(rec, 1.0, 1.001)

    decoder = RidgeDecoder(device="cpu")
    no_behaviour = AlignedRecording(rec.spikes, rec.stimulus, rec.frame_times)
    with pytest.raises(InputError, match="has no behavior to decode"):
        decoder.fit(no_behaviour)
    with pytest.raises(InputTypeError, match="must be an AlignedRecording"):
        decoder.fit(sim.spikes)
    with pytest.raises(InputError, match="holds? 1 behaviour sample"):
        decoder.fit(rec, [(0.0, 0.05)])
    with pytest.raises(InputError, match="bin_size must be > 0"):
        RidgeDecoder(bin_size=-1.0).fit(rec)
    with pytest.raises(NotFittedError):
        decoder.predict(rec, [1.0])
    decoder.fit(rec)
    with pytest.raises(InputError, match=r"times: 1 outside the recording"):
        decoder.predict(rec, [1.0, 9.0])
