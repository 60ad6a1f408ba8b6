"""The paper's further analyses: PCA dimensionality, stream accuracy, ablation and perturbation
by tau, retraining; checked on planted structure and on a hand-built network whose memory of
the previous bit lives in one slow neuron."""

import numpy as np
import pytest
import torch

from neuro.errors import InputError, InputTypeError
from neuro.rnn.analyses import (
    _perturb,
    network_dimensionality,
    normalized_perturbation_curve,
    pca_dimensionality,
    retraining_curve,
    stream_accuracy,
    tau_ablation,
)
from neuro.rnn.models import GRUNetwork, LeakyRNN
from neuro.rnn.timescales import simulate_activity

DUMMY, U1, U2, MEMORY, DUMMY2 = range(5)


def _xor_network():
    """2-parity (x_t XOR x_{t-1}) with the previous bit held by one slow neuron (tau 1.1).

    ``m_t = m_{t-1} / 11 + 10 x_t / 11`` lies in [0.909, 1) after a 1 and in [0, 0.1) after a
    0; the tau-1 units ``u1 = relu(x_t - m_{t-1})`` and ``u2 = relu(m_{t-1} - x_t)`` sum to
    ``|x_t - x_{t-1}|`` within 0.1, and the head reads their sum against 0.5. Two tau-1
    neurons do nothing (the fastest, by index, is DUMMY).
    """
    net = LeakyRNN(hidden_size=5, tau_init=(1.0, 1.0))
    with torch.no_grad():
        for p in (net.w_rec.weight, net.w_rec.bias, net.w_in.weight, net.w_in.bias):
            p.zero_()
        net.w_in.weight[[U1, U2, MEMORY], 0] = torch.tensor([1.0, -1.0, 1.0])
        net.w_rec.weight[U1, MEMORY], net.w_rec.weight[U2, MEMORY] = -1.0, 1.0
        net.tau_raw[MEMORY] = 1.1
        head = net.heads[0]
        head.weight.zero_()
        head.weight[1, [U1, U2]] = 1.0
        head.bias.copy_(torch.tensor([0.5, 0.0]))
    return net


# ------------------------------------------------------------------ PCA
def test_planted_dimensions_are_counted(rng):
    latent = rng.standard_normal((2, 3_000, 3))
    x = latent @ rng.standard_normal((3, 30)) + 0.01 * rng.standard_normal((2, 3_000, 30))
    res = pca_dimensionality(x)
    assert res["dimensionality"].tolist() == [3, 3]
    np.testing.assert_allclose(res["explained_variance_ratio"].sum(1), 1.0)
    assert res["explained_variance_ratio"][:, :3].sum(1).min() > 0.99
    # the public code reports the 0-based index of the crossing component
    assert pca_dimensionality(x, paper_indexing=True)["dimensionality"].tolist() == [2, 2]
    # null: independent neurons of equal variance need about 90% of the components
    null = pca_dimensionality(rng.standard_normal((5_000, 30)))["dimensionality"][0]
    assert 25 <= null <= 28
    silent = pca_dimensionality(np.ones((100, 4)))
    assert silent["dimensionality"][0] == 0 and np.isnan(silent["explained_variance_ratio"]).all()


def test_network_dimensionality_streams_the_same_pca():
    torch.manual_seed(0)
    net = LeakyRNN(hidden_size=12, tau_init=(1.0, 4.0))
    kw = dict(n_steps=3_000, n_trials=2, burn_in=100, chunk=700, seed=3)
    streamed = network_dimensionality(net, **kw)
    direct = pca_dimensionality(simulate_activity(net, **kw))
    np.testing.assert_allclose(
        streamed["explained_variance_ratio"], direct["explained_variance_ratio"], atol=1e-5
    )
    assert streamed["dimensionality"].tolist() == direct["dimensionality"].tolist()


def test_identical_linear_neurons_span_one_dimension():
    net = LeakyRNN(hidden_size=6, tau_init=(3.0, 3.0))  # uncoupled, positive input: linear
    with torch.no_grad():
        net.w_rec.weight.zero_()
        net.w_rec.bias.zero_()
        net.w_in.weight.copy_(torch.linspace(0.5, 2.0, 6)[:, None])
        net.w_in.bias.zero_()
    res = network_dimensionality(net, n_steps=2_000, n_trials=2)
    assert res["dimensionality"].tolist() == [1, 1]
    assert res["explained_variance_ratio"][:, 0].min() > 0.999


# ------------------------------------------------------------------ stream accuracy, ablation
def test_stream_accuracy_reads_every_step():
    net = _xor_network()
    assert stream_accuracy(net, "parity", 2, n_trials=3).tolist() == [1.0, 1.0, 1.0]
    # N-DMS with N=2 asks x_t == x_{t-1}: exactly the opposite answer
    assert stream_accuracy(net, "dms", 2, n_trials=3).max() == 0.0
    assert abs(stream_accuracy(net, "parity", 3, n_trials=3).mean() - 0.5) < 0.05  # null
    torch.manual_seed(0)
    other = LeakyRNN(hidden_size=4)
    a, b = (stream_accuracy(other, "parity", 3, n_steps=300, seed=5) for _ in range(2))
    assert np.array_equal(a, b)  # same seed, same streams and initial states


def test_ablating_the_slow_memory_neuron_loses_the_task():
    res = tau_ablation(_xor_network(), "parity", 2, n_neurons=1, n_trials=4)
    assert res["neurons"].tolist() == [DUMMY, MEMORY]
    assert res["slow"].tolist() == [False, True]
    np.testing.assert_allclose(res["taus"], [1.0, 1.1])
    assert res["baseline"].min() == 1.0
    assert res["accuracy"][0].min() == 1.0  # the fast neuron carried nothing
    assert abs(res["accuracy"][1].mean() - 0.5) < 0.05  # the memory is gone
    np.testing.assert_allclose(res["relative"], (res["accuracy"] - 0.5) / 0.5)
    # with 5 neurons and 20 asked for, each group takes half of them (2)
    assert len(tau_ablation(_xor_network(), "parity", 2, n_steps=50, n_trials=1)["neurons"]) == 4


# ------------------------------------------------------------------ normalised perturbations
def test_increase_only_tau_perturbation_never_lowers_a_tau():
    torch.manual_seed(0)
    net = LeakyRNN(hidden_size=50, tau_init=(1.0, 5.0))
    gen = torch.Generator().manual_seed(0)
    tau = net.taus.detach()
    for s in (0.01, 0.3, 3.0):
        new = _perturb(net, s, "taus", True, gen).taus.detach()
        assert (new >= tau).all() and (new > tau).any()
        np.testing.assert_allclose(float((new - tau).norm()), s * float(tau.norm()), rtol=1e-5)
    both = _perturb(net, 0.3, "taus", False, gen).taus.detach()
    assert (both < tau).any() and (both >= 1).all()  # the symmetric variant lowers some
    w = net.recurrent_weight().detach()
    pert = _perturb(net, 0.5, "recurrent", True, gen).recurrent_weight().detach()
    np.testing.assert_allclose(float((pert - w).norm()), 0.5 * float(w.norm()), rtol=1e-5)
    assert torch.equal(_perturb(net, 0.0, "taus", True, gen).taus, net.taus)


def test_normalized_perturbation_curve():
    res = normalized_perturbation_curve(
        _xor_network(), "parity", 2, strengths=(0.0, 0.001, 10.0), n_trials=3
    )
    assert res["accuracy"].shape == (3, 3)
    np.testing.assert_array_equal(res["accuracy"][0], res["baseline"])  # null
    assert res["relative"][1].min() == 1.0  # a tiny push keeps the margins
    assert res["relative"][2].mean() < 0.9  # slowing the memory neuron 10-fold breaks them
    rec = normalized_perturbation_curve(
        GRUNetwork(hidden_size=4),
        "parity",
        2,
        strengths=(0.0, 1.0),
        target="recurrent",
        n_steps=50,
        n_trials=2,
    )
    assert rec["accuracy"].shape == (2, 2)


# ------------------------------------------------------------------ retraining
def test_retraining_repairs_a_perturbed_network():
    torch.manual_seed(0)
    kw = dict(epochs=4, steps_per_epoch=40, batch_size=64, n_sequences=512, device="cpu")
    res = retraining_curve(_xor_network(), "parity", [2], perturbation=2.0, seed=1, **kw)
    acc = res["accuracy"][0]
    assert res["baseline"][0] == 1.0 and acc[0] < 0.8  # the perturbation broke it
    assert acc[-1] > acc[0] + 0.1  # training repairs much of it
    null = retraining_curve(
        _xor_network(),
        "parity",
        [2],
        epochs=1,
        steps_per_epoch=2,
        batch_size=8,
        n_sequences=64,
        device="cpu",
    )
    assert null["accuracy"][0, 0] == null["baseline"][0] == 1.0


def test_retraining_keeps_the_network_given():
    net = _xor_network()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    retraining_curve(
        net,
        "parity",
        [2, 3],
        epochs=1,
        steps_per_epoch=2,
        batch_size=8,
        n_sequences=16,
        device="cpu",
    )
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: pca_dimensionality(np.ones(5)), InputError, "activity"),
        (lambda: pca_dimensionality(np.ones((9, 2)), threshold=1.0), InputError, "threshold"),
        (
            lambda: pca_dimensionality(np.ones((9, 2)), paper_indexing=1),
            InputTypeError,
            "paper_indexing must be True or False",
        ),
        (lambda: pca_dimensionality(np.ones((1, 2))), InputError, "at least 2 time steps"),
        (lambda: network_dimensionality("net"), InputTypeError, "network must be"),
        (
            lambda: stream_accuracy(_xor_network(), "parity", 5, warmup=3),
            InputError,
            r"warmup \(3\) must be >= n \(5\)",
        ),
        (lambda: stream_accuracy(_xor_network(), "parity", 2, head=1), InputError, "head=1"),
        (lambda: stream_accuracy(_xor_network(), "parity", 2, p=1.5), InputError, "p must be"),
        (lambda: stream_accuracy(_xor_network(), "sum", 2), InputError, "task must be one of"),
        (
            lambda: tau_ablation(GRUNetwork(hidden_size=4), "parity", 2),
            InputTypeError,
            "tau_ablation needs a LeakyRNN",
        ),
        (lambda: tau_ablation(_xor_network(), "parity", 2, n_neurons=0), InputError, "n_neurons"),
        (
            lambda: tau_ablation(LeakyRNN(hidden_size=1), "parity", 2),
            InputError,
            "at least 2 neurons",
        ),
        (
            lambda: normalized_perturbation_curve(_xor_network(), "parity", 2, strengths=(-1.0,)),
            InputError,
            "strengths must be >= 0",
        ),
        (
            lambda: normalized_perturbation_curve(_xor_network(), "parity", 2, target="bias"),
            InputError,
            "target must be one of",
        ),
        (
            lambda: normalized_perturbation_curve(GRUNetwork(hidden_size=4), "parity", 2),
            InputTypeError,
            "target='taus' needs a LeakyRNN",
        ),
        (lambda: retraining_curve(_xor_network(), "parity", []), InputError, "ns must be"),
        (lambda: retraining_curve(_xor_network(), "parity", [2], epochs=0), InputError, "epochs"),
        (
            lambda: retraining_curve(_xor_network(), "parity", [2], perturbation=-1.0),
            InputError,
            "perturbation must be >= 0",
        ),
    ],
)
def test_bad_input_names_the_parameter(call, error, match):
    with pytest.raises(error, match=match):
        call()
