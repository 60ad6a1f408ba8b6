"""The Neuroformer estimator on the simulated circuit: fit, score, generate, connectivity."""

import numpy as np
import pytest
import torch

from data_loaders.simulate.spikes import simulate_spiking_circuit
from data_loaders.spikes import AlignedRecording, SpikeTrains, split_intervals
from neuro.errors import InputError
from neuro.spikes import (
    Neuroformer,
    PoissonGLM,
    RidgeDecoder,
    connectivity_auroc,
    correlation_connectivity,
    generation_statistics,
)

TINY = {
    "d_model": 16,
    "n_heads": 2,
    "block_size": 24,
    "past_block_size": 48,
    "epochs": 2,
    "batch_size": 32,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def circuit():
    sim = simulate_spiking_circuit(n_neurons=9, n_hubs=2, duration=20.0, seed=0)
    split = split_intervals(sim.spikes.t_start, sim.spikes.t_stop, n_intervals=10, seed=0)
    return sim, split


@pytest.fixture(scope="module")
def fitted(circuit):
    sim, split = circuit
    return Neuroformer(**TINY).fit(sim.recording, intervals=split.train, val_intervals=split.val)


def test_fit_records_sizes_history_and_truncation(circuit, fitted):
    sim, _ = circuit
    assert fitted.n_neurons_ == 9
    assert fitted.model_.config.frame_shape == (3, *sim.stimulus.shape[1:])
    assert len(fitted.history_) == 2 and "val_id_loss" in fitted.history_[-1]
    assert set(fitted.truncation_) == {"current", "past"}
    assert fitted.truncation_["current"]["samples"] > 100


def test_cross_entropy_report(circuit, fitted):
    sim, split = circuit
    ce = fitted.cross_entropy(sim.recording, split.test)
    n_test = sum(len(sim.spikes.window(a, b)) for a, b in split.test)
    assert 0 < ce["n_tokens"] <= n_test
    assert 0 < ce["frequency_entropy"] <= np.log(9) + 1e-9
    assert np.isfinite(ce["id_cross_entropy"]) and np.isfinite(ce["dt_cross_entropy"])
    assert fitted.score(sim.recording) == pytest.approx(
        -fitted.cross_entropy(sim.recording)["id_cross_entropy"]
    )


def test_generation_is_seeded_cached_and_inside_the_windows(circuit, fitted):
    sim, split = circuit
    a = fitted.generate(sim.recording, split.test, seed=3)
    b = fitted.generate(sim.recording, split.test, seed=3, use_cache=False)
    c = fitted.generate(sim.recording, split.test, seed=4)
    assert isinstance(a, SpikeTrains) and a.n_neurons == 9
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_array_equal(a.neuron_ids, b.neuron_ids)
    assert len(a) != len(c) or not np.array_equal(a.times, c.times)
    # every generated spike lies in a tiled current window of a test interval
    inside = np.zeros(len(a), dtype=bool)
    for lo, hi in split.test:
        inside |= (a.times >= lo + fitted.past_window - 1e-9) & (a.times < hi)
    assert inside.all()
    bins = np.round(a.times / 0.01)
    np.testing.assert_allclose(a.times, bins * 0.01, atol=1e-9)  # on the dt grid


def test_connectivity_shape_and_chance_level(circuit, fitted):
    sim, split = circuit
    norm = fitted.connectivity(sim.recording, split.test)
    raw = fitted.connectivity(sim.recording, split.test, normalize=False)
    assert norm.shape == raw.shape == (9, 9)
    assert np.nanmin(norm) >= 0 and np.nanmedian(norm) == pytest.approx(1.0, abs=0.5)
    # raw: mean attention mass per prediction over the neurons of the past window (<= 1)
    assert np.all(np.nansum(raw, axis=1) <= 1.0 + 1e-6)


def test_save_load_round_trip(circuit, fitted, tmp_path):
    sim, split = circuit
    path = fitted.save(tmp_path / "nf.pt")
    back = Neuroformer.load(path)
    for k, v in fitted.model_.state_dict().items():
        assert torch.equal(v, back.model_.state_dict()[k])
    assert back.cross_entropy(sim.recording, split.test) == fitted.cross_entropy(
        sim.recording, split.test
    )
    g1 = fitted.generate(sim.recording, split.test, seed=1)
    g2 = back.generate(sim.recording, split.test, seed=1)
    np.testing.assert_array_equal(g1.times, g2.times)


def test_spikes_only_recordings(circuit):
    sim, _ = circuit
    nf = Neuroformer(**{**TINY, "epochs": 1}).fit(sim.spikes)
    assert nf.model_.config.frame_shape is None
    assert nf.connectivity(sim.spikes).shape == (9, 9)


def test_bad_input_is_one_line(circuit, fitted):
    sim, _ = circuit
    other = simulate_spiking_circuit(n_neurons=7, n_hubs=1, duration=5.0, seed=1)
    with pytest.raises(InputError, match="has 7 neurons but the model was trained on 9"):
        fitted.cross_entropy(other.recording)
    with pytest.raises(InputError, match="trained with the stimulus"):
        fitted.generate(sim.spikes)
    with pytest.raises(InputError, match="not inside the recording"):
        fitted.connectivity(sim.recording, [(10.0, 99.0)])
    with pytest.raises(InputError, match="No interval is longer"):
        fitted.cross_entropy(sim.recording, [(1.0, 1.1)])
    with pytest.raises(InputError, match="intervals is empty"):
        fitted.cross_entropy(sim.recording, [])
    with pytest.raises(InputError, match="multiple of n_heads"):
        Neuroformer(**{**TINY, "d_model": 18, "n_heads": 4}).fit(sim.recording)
    with pytest.raises(TypeError, match="AlignedRecording .* or SpikeTrains"):
        fitted.cross_entropy(np.zeros((9, 100)))


@pytest.mark.slow
def test_recovers_the_circuit_better_than_correlations():
    """Held-out next-neuron cross-entropy below the firing-frequency entropy; attention
    connectivity ranks the planted edges above the correlation baseline (the GLM's AUROC,
    usually higher, is in the README)."""
    sim = simulate_spiking_circuit(n_neurons=20, n_hubs=3, duration=120.0, seed=0)
    split = split_intervals(sim.spikes.t_start, sim.spikes.t_stop, n_intervals=20, seed=0)
    nf = Neuroformer(
        d_model=64, n_heads=4, block_size=48, past_block_size=96, epochs=8, lr=2e-3, device="cpu"
    ).fit(sim.recording, intervals=split.train, val_intervals=split.val)
    ce = nf.cross_entropy(sim.recording, split.test)
    assert ce["id_cross_entropy"] < ce["frequency_entropy"] - 0.05
    attention = nf.connectivity(sim.recording, split.test)
    auroc = connectivity_auroc(np.nan_to_num(attention, nan=1.0), sim.adjacency)
    corr = connectivity_auroc(correlation_connectivity(sim.recording), sim.adjacency)
    assert auroc > 0.6 and auroc > corr + 0.05
    # how much of it is who-drives-whom rather than how strong each source is (README: about
    # chance for attention, while the GLM keeps most of its AUROC)
    within = connectivity_auroc(np.nan_to_num(attention, nan=1.0), sim.adjacency, True)
    print(f"attention AUROC {auroc:.2f} (within sources {within:.2f}), correlations {corr:.2f}")
    generated = nf.generate(sim.recording, split.test, seed=0)
    true = sum(len(sim.spikes.window(a, b)) for a, b in split.test)
    assert abs(len(generated) - true) < 0.2 * true
    # generated windows (after each interval's first past window) against the real ones
    windows = [(a + nf.past_window, b) for a, b in split.test]
    stats = generation_statistics(sim.spikes, generated, intervals=windows)
    glm = PoissonGLM(device="cpu").fit(sim.recording, intervals=split.train)
    parts = [glm.simulate(sim.recording, a, b, seed=0) for a, b in windows]
    glm_spikes = SpikeTrains.from_arrays(
        np.concatenate([p.neuron_ids for p in parts]),
        np.concatenate([p.times for p in parts]),
        n_neurons=20,
        t_start=0.0,
        t_stop=sim.spikes.t_stop,
    )
    glm_stats = generation_statistics(sim.spikes, glm_spikes, intervals=windows)
    print("neuroformer", stats, "glm", glm_stats)
    assert stats["rate_r"] > 0.8 and stats["correlation_r"] > 0.1  # independent trains: ~0

    # few-shot behaviour: the head on 0.5 s of frozen features (10 windows) against the ridge
    # decoder on the same labelled samples and the same 0.5 s of binned counts
    n_train = len(nf._anchors(nf.tokenizer_, sim.spikes, split.train))
    curve = {}
    for frac in (0.01, 0.05, 0.1, 1.0):
        nf.fit_behavior(
            sim.recording, split.train, max_samples=max(round(frac * n_train), 4), n_windows=10
        )
        ridge = RidgeDecoder(device="cpu").fit(sim.recording, times=nf.behavior_times_)
        curve[frac] = (
            float(nf.behavior_score(sim.recording, split.test)[0]),
            float(ridge.correlation_score(sim.recording, split.test)[0]),
        )
    print("behaviour r (neuroformer, ridge) by fraction of labels", curve)
    assert curve[1.0][0] > 0.8 and curve[1.0][0] > curve[0.01][0] + 0.3
    assert curve[1.0][1] > 0.8  # the baseline works: a low neuroformer r is the model's


def test_behavior_head_few_shot_and_saved(circuit, tmp_path):
    sim, split = circuit
    nf = Neuroformer(**{**TINY, "epochs": 1}).fit(sim.recording, intervals=split.train)
    with pytest.raises(InputError, match="Call fit_behavior first"):
        nf.predict_behavior(sim.recording)
    nf.fit_behavior(sim.recording, split.train, max_samples=40)
    assert nf.n_behavior_samples_ == 40 and nf.behavior_coef_.shape == (1, TINY["d_model"])
    times, pred = nf.predict_behavior(sim.recording, split.test)
    anchors, feats = nf.features(sim.recording, split.test)
    np.testing.assert_allclose(times, anchors - 0.025)
    np.testing.assert_allclose(pred, feats @ nf.behavior_coef_.T + nf.behavior_intercept_)
    assert np.isfinite(nf.behavior_score(sim.recording, split.test)).all()
    back = Neuroformer.load(nf.save(tmp_path / "nf.pt"))
    np.testing.assert_array_equal(back.predict_behavior(sim.recording, split.test)[1], pred)
    no_behavior = AlignedRecording(sim.spikes, sim.stimulus, sim.frame_times)
    with pytest.raises(InputError, match="has no behaviour"):
        nf.fit_behavior(no_behavior)


def test_behavior_head_reads_several_windows_and_fine_tunes_the_last_block(circuit, tmp_path):
    sim, split = circuit
    nf = Neuroformer(**{**TINY, "epochs": 1}).fit(sim.recording, intervals=split.train)
    pretrained = {k: v.clone() for k, v in nf.model_.state_dict().items()}
    nf.fit_behavior(sim.recording, split.train, max_samples=30, n_windows=3)
    assert nf.behavior_coef_.shape == (1, 3 * TINY["d_model"]) and nf.behavior_unfreeze_ == 0
    assert not hasattr(nf, "behavior_net_")
    times, frozen = nf.predict_behavior(sim.recording, split.test)
    # the head reads the features of each sample's window and the two before it
    anchors = times[:5] + nf.window / 2
    lagged = [nf._pooled(sim.recording, anchors=anchors - lag * nf.window)[1] for lag in range(3)]
    expected = np.concatenate(lagged, axis=1) @ nf.behavior_coef_.T + nf.behavior_intercept_
    np.testing.assert_allclose(frozen[:5], expected, rtol=1e-5, atol=1e-6)

    nf.fit_behavior(sim.recording, split.train, max_samples=30, n_windows=3, unfreeze=1, epochs=3)
    # the pretrained network (generation, connectivity) is untouched; only the last block and
    # the output norm of the behaviour network moved
    for k, v in nf.model_.state_dict().items():
        assert torch.equal(v, pretrained[k]), k
    moved = {
        k.split(".")[0]
        for k, v in nf.behavior_net_.state_dict().items()
        if not torch.equal(v, pretrained[k])
    }
    assert moved == {"final_blocks", "norm"}
    assert set(nf.behavior_weights_) == {
        k for k in pretrained if k.startswith(("final_blocks.0.", "norm."))
    }
    losses = [r["train_loss"] for r in nf.behavior_history_]
    assert len(losses) == 3 and losses[-1] < losses[0]
    tuned = nf.predict_behavior(sim.recording, split.test)[1]
    assert tuned.shape == frozen.shape and not np.allclose(tuned, frozen)
    assert len(nf.behavior_times_) == 30

    back = Neuroformer.load(nf.save(tmp_path / "tuned.pt"))
    np.testing.assert_array_equal(back.predict_behavior(sim.recording, split.test)[1], tuned)
    np.testing.assert_array_equal(
        back.generate(sim.recording, split.test, seed=1).times,
        nf.generate(sim.recording, split.test, seed=1).times,
    )
    with pytest.raises(InputError, match="unfreeze=2 but the network has 1 final block"):
        nf.fit_behavior(sim.recording, unfreeze=2)
    with pytest.raises(InputError, match="n_windows"):
        nf.fit_behavior(sim.recording, n_windows=0)


def test_behaviour_as_context(circuit, tmp_path):
    sim, split = circuit
    nf = Neuroformer(**{**TINY, "epochs": 1}, behavior_context=True).fit(
        sim.recording, intervals=split.train
    )
    assert nf.model_.config.n_behavior == 1 and nf.model_.behavior_cross is not None
    y = sim.behavior[:, 0]
    assert abs(nf.settings_.behavior_mean[0] - y.mean()) < 0.5 * y.std()  # training samples
    # the network reads the behaviour: other values give other features
    rng = np.random.default_rng(0)
    shuffled = AlignedRecording(
        sim.spikes, sim.stimulus, sim.frame_times, rng.permutation(sim.behavior), sim.behavior_times
    )
    _, feats = nf.features(sim.recording, split.test)
    assert not np.allclose(feats, nf.features(shuffled, split.test)[1])
    assert np.isfinite(nf.cross_entropy(sim.recording, split.test)["id_cross_entropy"])
    generated = nf.generate(sim.recording, split.test, seed=3)
    back = Neuroformer.load(nf.save(tmp_path / "context.pt"))
    np.testing.assert_array_equal(back.generate(sim.recording, split.test, seed=3).times,
                                  generated.times)  # fmt: skip
    no_behavior = AlignedRecording(sim.spikes, sim.stimulus, sim.frame_times)
    with pytest.raises(InputError, match="trained with behaviour as context"):
        nf.generate(no_behavior, split.test)
    with pytest.raises(InputError, match="behavior_context=True needs behaviour"):
        Neuroformer(**TINY, behavior_context=True).fit(no_behavior)


def test_killed_fit_resumes_exactly(circuit, tmp_path):
    from neuro.train import Callback

    sim, split = circuit

    class Crash(Callback):
        def on_step_end(self, trainer, step, metrics):
            if step == 5:
                raise RuntimeError("simulated crash")

    class Crashing(Neuroformer):
        def _trainer(self, *args, **settings):
            return super()._trainer(*args, callbacks=[Crash()], **settings)

    settings = {**TINY, "epochs": 3, "checkpoint_every_n_steps": 2}
    reference = Neuroformer(**TINY | {"epochs": 3}).fit(sim.recording, intervals=split.train)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Crashing(checkpoint_dir=tmp_path / "run", **settings).fit(
            sim.recording, intervals=split.train
        )
    resumed = Neuroformer(checkpoint_dir=tmp_path / "run", **settings).fit(
        sim.recording, intervals=split.train, resume=True
    )
    for k, v in reference.model_.state_dict().items():
        assert torch.equal(v, resumed.model_.state_dict()[k]), k
    strip = [{k: v for k, v in r.items() if k != "time_s"} for r in reference.history_]
    assert strip == [{k: v for k, v in r.items() if k != "time_s"} for r in resumed.history_]
