"""Timescales: exact ground truth for uncoupled neurons, AR(1) autocorrelation, robustness."""

import numpy as np
import pytest
import torch

from neuro.errors import InputError, InputTypeError
from neuro.rnn.curricula import evaluate
from neuro.rnn.models import GRUNetwork, LeakyRNN
from neuro.rnn.timescales import (
    _ablate,
    ablation_curve,
    autocorrelation,
    fit_timescales,
    network_timescales,
    perturbation_curve,
    retention,
    simulate_activity,
)


def _uncoupled(taus):
    """Neurons with no recurrence and positive input: LeakyReLU never bends, so they are linear."""
    net = LeakyRNN(hidden_size=len(taus), tau_init=(1.0, 1.0))
    with torch.no_grad():
        net.w_rec.weight.zero_()
        net.w_rec.bias.zero_()
        net.w_in.weight.fill_(1.0)
        net.w_in.bias.zero_()
        net.tau_raw.copy_(torch.tensor(taus))
    return net


def test_uncoupled_linear_neurons_recover_their_taus():
    taus = np.array([2.0, 4.0, 8.0, 15.0])
    res = network_timescales(_uncoupled(taus), n_steps=20_000, n_trials=10, seed=1)
    # white input through h_t = (1 - 1/tau) h_{t-1} + x_t / tau: AC(lag) = (1 - 1/tau)^lag
    exact = -1 / np.log(1 - 1 / taus)
    fits = fit_timescales(res.ac, fit_lag=30)
    np.testing.assert_allclose(fits["tau_single"], exact, rtol=0.04)
    # AIC sometimes prefers a double fit to the noise in the tail; the slow tau stays close
    np.testing.assert_allclose(res.tau_net, exact, rtol=0.08)
    np.testing.assert_allclose(fits["tau_single"], taus - 0.5, rtol=0.06)  # ~tau when slow
    np.testing.assert_allclose(res.trained_taus, taus)
    lags = np.arange(6)
    np.testing.assert_allclose(res.ac[:, :6], (1 - 1 / taus[:, None]) ** lags, atol=0.03)


def test_autocorrelation_of_ar1_and_silent_neurons(rng):
    phi = np.array([0.3, 0.8, 0.95])
    x = np.zeros((4, 30_000, 4))
    e = rng.standard_normal((4, 30_000, 3))
    for t in range(1, 30_000):
        x[:, t, :3] = phi * x[:, t - 1, :3] + e[:, t]
    ac = autocorrelation(x, max_lag=10)
    assert ac.shape == (4, 11)
    np.testing.assert_allclose(ac[:3], phi[:, None] ** np.arange(11), atol=0.03)
    assert np.isnan(ac[3]).all()  # a neuron that never varies
    assert np.isnan(fit_timescales(ac)["tau"][3])


def test_double_exponential_is_chosen_and_the_slow_tau_reported(rng):
    lags = np.arange(31)
    ac = 0.5 * np.exp(-lags / 1.0) + 0.5 * np.exp(-lags / 12.0)
    single = np.exp(-lags / 6.0)
    noise = 0.003 * rng.standard_normal((2, 31))
    noise[:, 0] = 0
    fit = fit_timescales(np.stack([ac, single]) + noise, fit_lag=30)
    assert fit["model"].tolist() == [2, 1]
    np.testing.assert_allclose(fit["tau"], [12.0, 6.0], rtol=0.02)


def _trained_parity2():
    from neuro.rnn.curricula import CurriculumConfig, train_curriculum

    cfg = CurriculumConfig(
        kind="single", hidden_size=32, n_max=2, steps_per_epoch=40, batch_size=64, max_epochs=10
    )
    res = train_curriculum(cfg, device="cpu", seed=0)
    assert res.n_reached == 2
    return res.network


def test_ablation_and_perturbation_degrade_a_trained_network():
    net = _trained_parity2()
    base = [evaluate(net, "parity", 2, n_sequences=512, seed=r) for r in (0, 1)]
    abl = ablation_curve(net, "parity", 2, fractions=(0.0, 1.0), n_repeats=2, n_sequences=512)
    assert abl["accuracy"].shape == (2, 2)
    np.testing.assert_allclose(abl["accuracy"][0], base)  # removing nobody changes nothing
    assert abl["accuracy"][1].max() < 0.75  # removing everybody leaves only the bias
    slow = ablation_curve(net, "parity", 2, fractions=(0.0, 1.0), n_repeats=2, order="slowest")
    np.testing.assert_allclose(slow["accuracy"], abl["accuracy"])  # nobody / everybody: same
    # the slowest fifth goes first: the same accuracy as ablating exactly those neurons
    fifth = ablation_curve(net, "parity", 2, fractions=(0.2,), n_repeats=1, order="slowest")
    top = torch.argsort(net.taus.detach(), descending=True)[: round(0.2 * net.hidden_size)]
    assert fifth["accuracy"][0, 0] == evaluate(_ablate(net, top), "parity", 2, n_sequences=512)
    per = perturbation_curve(net, "parity", 2, sigmas=(0.0, 5.0), n_repeats=2, n_sequences=512)
    np.testing.assert_allclose(per["accuracy"][0], base)
    assert per["accuracy"][1].mean() < min(base) - 0.1
    taus = perturbation_curve(net, "parity", 2, sigmas=(0.0, 3.0), target="taus", n_repeats=2)
    np.testing.assert_allclose(taus["accuracy"][0], base)
    assert taus["accuracy"][1].mean() < min(base)


def test_simulation_is_seeded_and_leaves_the_global_stream_alone():
    net = LeakyRNN(hidden_size=6)
    torch.manual_seed(0)
    a = simulate_activity(net, n_steps=50, n_trials=2, burn_in=0, chunk=7, seed=3)
    after = torch.rand(1)
    torch.manual_seed(0)
    b = simulate_activity(net, n_steps=50, n_trials=2, burn_in=0, chunk=7, seed=3)
    np.testing.assert_array_equal(a, b)
    assert torch.equal(after, torch.rand(1))
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(1))  # as if the simulation never drew


def test_float64_networks_run():
    net = LeakyRNN(hidden_size=5).double()
    res = network_timescales(net, n_steps=200, n_trials=2, burn_in=10, max_lag=20, fit_lag=10)
    assert res.ac.shape == (5, 21)


def test_bad_robustness_input():
    with pytest.raises(InputTypeError, match="needs a LeakyRNN"):
        perturbation_curve(GRUNetwork(hidden_size=4), "parity", 2, target="taus")
    with pytest.raises(InputTypeError, match="needs a LeakyRNN"):
        ablation_curve(GRUNetwork(hidden_size=4), "parity", 2, order="slowest")
    with pytest.raises(InputError, match=r"fractions must lie in \[0, 1\]"):
        ablation_curve(LeakyRNN(hidden_size=4), "parity", 2, fractions=(1.5,))
    with pytest.raises(InputError, match="sigmas are noise levels"):
        perturbation_curve(LeakyRNN(hidden_size=4), "parity", 2, sigmas=(-0.5,))
    with pytest.raises(InputError, match="head=1 but the network has 1"):
        ablation_curve(LeakyRNN(hidden_size=4), "parity", 2, head=1)
    with pytest.raises(InputError, match="shape"):
        autocorrelation(np.zeros((10, 3)))
    with pytest.raises(InputError, match="NaN"):
        autocorrelation(np.full((2, 10, 3), np.nan))
    with pytest.raises(InputError, match="n_repeats"):
        ablation_curve(LeakyRNN(hidden_size=4), "parity", 2, n_repeats=0)
    with pytest.raises(InputError, match="chunk"):
        simulate_activity(LeakyRNN(hidden_size=4), n_steps=10, chunk=0)
    with pytest.raises(InputError, match=r"\(batch, T, 1\)"):
        LeakyRNN(hidden_size=4).hidden_states(torch.zeros(3, 5))
    with pytest.raises(InputError, match="must exceed max_lag"):
        network_timescales(LeakyRNN(hidden_size=4), n_steps=20, max_lag=50)
    with pytest.raises(InputTypeError, match="network must be"):
        retention("net", "parity", [2])
    assert retention(LeakyRNN(hidden_size=4), "parity", []) == {}


@pytest.mark.parametrize("chunk", [7, 50, 2000])
def test_streamed_timescales_equal_the_stored_activity_estimate(chunk):
    """network_timescales streams; its autocorrelations equal autocorrelation() of the stored run."""
    torch.manual_seed(0)
    net = LeakyRNN(hidden_size=6, tau_init=(1.0, 6.0))
    with torch.no_grad():
        net.w_rec.weight.mul_(0.3)
    kwargs = {"n_steps": 300, "n_trials": 3, "burn_in": 11, "seed": 4}
    res = network_timescales(net, max_lag=20, fit_lag=10, chunk=chunk, **kwargs)
    act = simulate_activity(net, chunk=chunk, **kwargs)
    np.testing.assert_allclose(res.ac, autocorrelation(act, max_lag=20), atol=1e-9)
    pop = autocorrelation(act.sum(-1, keepdims=True), max_lag=20)[0]
    np.testing.assert_allclose(res.population_ac, pop, atol=1e-5)  # float32 sums, other order


def test_streamed_timescales_mark_silent_neurons_and_bound_tau():
    net = _uncoupled([3.0, 5.0])
    with torch.no_grad():
        net.w_in.weight[1] = 0.0  # the second neuron never moves from 0
    res = network_timescales(net, n_steps=2_000, n_trials=2, max_tau=2.0)
    assert np.isnan(res.ac[1]).all() and np.isnan(res.tau_net[1])
    assert res.tau_net[0] <= 2.0 + 1e-9  # the public code's bound, here set below the truth
    with pytest.raises(InputError, match="max_tau"):
        network_timescales(net, n_steps=200, max_tau=0.5)


def test_default_timescale_protocol_is_the_public_codes():
    import inspect

    sig = inspect.signature(network_timescales).parameters
    assert sig["n_steps"].default == 100_000 and sig["n_trials"].default == 10
    assert sig["burn_in"].default == 1_000 and sig["max_tau"].default == 100.0
    assert sig["fit_lag"].default == 30
