"""LIF neurons, surrogate gradients, encoders and the spiking MLP's three training methods."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuro.errors import InputError, InputTypeError
from neuro.snn.neurons import (
    LIF,
    METHODS,
    SURROGATES,
    DirectEncoder,
    PoissonEncoder,
    SpikingMLP,
    lif_sequence,
    presynaptic_traces,
    spike,
    surrogate_gradient,
    weighted_firing_rate,
)

# ----------------------------------------------------------------------------- surrogates


@pytest.mark.parametrize(
    ("name", "alpha", "peak"),
    [("sigmoid", 4.0, 1.0), ("arctan", 2.0, 1.0), ("triangle", 1.0, 1.0), ("sigmoid", 2.0, 0.5)],
)
def test_surrogate_is_a_unit_bump_of_the_stated_shape(name, alpha, peak):
    half = 30.0
    x = torch.linspace(-half, half, 60_001, dtype=torch.float64)
    g = surrogate_gradient(x, name, alpha)
    # the derivative of a step from 0 to 1: its integral over [-L, L] is the step's rise there
    rise = {
        "sigmoid": 1 - 2 / (1 + math.exp(alpha * half)),
        "arctan": 2 / math.pi * math.atan(math.pi * alpha * half / 2),
        "triangle": 1.0,
    }[name]
    assert torch.trapezoid(g, x).item() == pytest.approx(rise, abs=1e-5)
    assert rise > 0.99
    assert surrogate_gradient(torch.zeros((), dtype=torch.float64), name, alpha) == peak
    torch.testing.assert_close(g, g.flip(0))  # symmetric
    assert (g[1:30_001] - g[:30_000] >= 0).all()  # rises to the peak at 0
    if name == "triangle":
        assert surrogate_gradient(torch.tensor([1 / alpha, 2 / alpha]), name, alpha).eq(0).all()


@pytest.mark.parametrize("name", SURROGATES)
def test_spike_is_a_step_whose_gradient_is_the_surrogate(name):
    x = torch.tensor([-1.5, -0.2, 0.0, 0.3, 2.0], requires_grad=True)
    s = spike(x, name)
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    (s * torch.arange(1.0, 6.0)).sum().backward()
    expected = surrogate_gradient(x.detach(), name) * torch.arange(1.0, 6.0)
    torch.testing.assert_close(x.grad, expected)
    assert x.grad[1:4].gt(0).all()


def test_gradient_through_lif_is_the_surrogate_at_the_threshold_distance():
    current = torch.tensor([[0.4, 0.9, 1.3]], requires_grad=True)
    lif = LIF(tau=2.0, v_threshold=1.0, surrogate="arctan")
    lif(current.unsqueeze(0)).sum().backward()  # one step: V = I
    torch.testing.assert_close(current.grad, surrogate_gradient(current.detach() - 1.0, "arctan"))
    assert current.grad.ne(0).all()


# ----------------------------------------------------------------------------- LIF dynamics


def test_lif_soft_and_hard_reset_against_hand_computed_sequences():
    current = torch.full((8, 1), 0.9, dtype=torch.float64)  # tau = 2: V <- V / 2 + 0.9
    soft = lif_sequence(current, decay=0.5, reset="soft")
    # V: 0.9, 1.35 -> 0.35, 1.075 -> 0.075, 0.9375, 1.36875 -> 0.36875, 1.084375 -> ...
    assert soft.spikes.flatten().tolist() == [0, 1, 1, 0, 1, 1, 0, 1]
    np.testing.assert_allclose(
        soft.membrane.flatten().numpy(),
        [0.9, 1.35, 1.075, 0.9375, 1.36875, 1.084375, 0.9421875, 1.37109375],
    )
    hard = lif_sequence(current, decay=0.5, reset="hard", v_reset=0.0)
    assert hard.spikes.flatten().tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
    np.testing.assert_allclose(hard.membrane.flatten().numpy(), [0.9, 1.35] * 4)
    assert hard.v.item() == 0.0 and soft.v.item() == pytest.approx(0.37109375)


@pytest.mark.parametrize(("current", "tau"), [(0.6, 2.0), (0.3, 4.0), (0.55, 3.0), (2.0, 2.0)])
def test_first_threshold_crossing_of_a_constant_input(current, tau):
    lam = 1 - 1 / tau
    # V_n = I (1 - lam^n) / (1 - lam) reaches 1 first at n* (1-based)
    n_star = math.ceil(math.log(1 - (1 - lam) / current) / math.log(lam)) if current < 1 else 1
    spikes = LIF(tau=tau)(torch.full((30, 2, 1), current, dtype=torch.float64))
    first = int(spikes[:, 0, 0].nonzero()[0]) + 1
    assert first == n_star


def test_lif_decays_without_input_and_never_fires_below_threshold():
    lif = LIF(tau=4.0)
    v0 = torch.tensor([[0.8]])
    out = lif_sequence(torch.zeros(5, 1, 1), decay=lif.decay, v0=v0)
    np.testing.assert_allclose(out.membrane.flatten().numpy(), 0.8 * 0.75 ** np.arange(1, 6))
    assert out.spikes.sum() == 0


def test_dsr_neurons_keep_the_weighted_rate_identity():
    # V <- beta V + (1 - beta) I, fire at alpha Vth, subtract Vth:
    # Vth sum_t beta^(T-t) s_t = (1 - beta) sum_t beta^(T-t) I_t - V_T, exactly
    torch.manual_seed(0)
    lif = LIF(tau=1.0, dt=0.05, v_threshold=0.3, fire_fraction=0.3, decay_input=True)
    current = torch.rand(40, 7, 9, dtype=torch.float64) * 12 - 2
    s = lif(current)
    beta = lif.decay
    assert beta == pytest.approx(math.exp(-0.05))
    w = beta ** torch.arange(39, -1, -1, dtype=torch.float64)
    lhs = 0.3 * torch.einsum("t,tbf->bf", w, s)
    rhs = (1 - beta) * torch.einsum("t,tbf->bf", w, current) - lif.last.v
    torch.testing.assert_close(lhs, rhs)
    # the neurons fire at 0.3 * 0.3 = 0.09: a current just above rest stays silent
    assert lif(torch.full((40, 1, 1), 0.08, dtype=torch.float64)).sum() == 0


def test_traces_follow_the_presynaptic_rule():
    torch.manual_seed(0)
    lif = LIF(tau=3.0)
    s = lif(torch.rand(9, 7, 8) * 2)
    r = torch.zeros(7, 8)
    for t in range(9):
        r = r * (1 - 1 / 3) + s[t]
        torch.testing.assert_close(lif.last.trace[t], r)
    torch.testing.assert_close(presynaptic_traces(s, 2 / 3), lif.last.trace)
    assert not lif.last.trace.requires_grad


def test_time_major_and_batch_major_lif_agree():
    torch.manual_seed(0)
    x = torch.rand(7, 8, 9) * 2  # (T, batch, neurons)
    a = LIF(tau=2.0, reset="hard")(x)
    b = LIF(tau=2.0, reset="hard", time_major=False)(x.transpose(0, 1).contiguous())
    torch.testing.assert_close(a, b.transpose(0, 1))
    torch.testing.assert_close(
        weighted_firing_rate(a, 0.9), weighted_firing_rate(b, 0.9, time_major=False)
    )


def test_step_api_matches_the_sequence_and_reset_clears_the_buffers():
    torch.manual_seed(0)
    x = torch.rand(6, 7, 8) * 2
    lif = LIF(tau=2.0)
    full = lif(x)
    steps = torch.stack([lif.step(x_t) for x_t in x.unbind(0)])
    torch.testing.assert_close(steps, full)
    buffers = dict(lif.named_buffers())
    torch.testing.assert_close(buffers["v"], lif.last.v)
    torch.testing.assert_close(buffers["r"], lif.last.trace[-1])
    assert "v" not in lif.state_dict()  # state, not a learned value
    lif.reset()
    assert lif.v is None and lif.r is None
    torch.testing.assert_close(lif.step(x[0]), full[0])  # starts again from rest
    torch.testing.assert_close(lif(x), full)  # forward always starts from rest


# ----------------------------------------------------------------------------- encoders


@pytest.mark.parametrize("time_major", [True, False])
def test_direct_encoder_repeats_the_input_exactly(time_major):
    x = torch.rand(7, 9)
    s = DirectEncoder(8, time_major=time_major)(x)
    assert s.shape == ((8, 7, 9) if time_major else (7, 8, 9))
    steps = s.unbind(0 if time_major else 1)
    assert all(torch.equal(step, x) for step in steps)


def test_poisson_encoder_rates_match_the_intensities_and_the_seed_repeats():
    x = torch.linspace(0, 1, 9).repeat(7, 1)  # (7, 9)
    enc = PoissonEncoder(4000, seed=3)
    s = enc(x)
    assert s.shape == (4000, 7, 9) and set(s.unique().tolist()) <= {0.0, 1.0}
    # binomial sd <= 0.5 / sqrt(4000) = 0.008
    np.testing.assert_allclose(s.mean(0).numpy(), x.numpy(), atol=0.035)
    assert s[:, :, 0].sum() == 0 and s[:, :, -1].eq(1).all()
    assert not torch.equal(enc(x), s)  # the generator moves on ...
    enc.reset()
    assert torch.equal(enc(x), s)  # ... and a reset repeats the draw
    assert torch.equal(PoissonEncoder(4000, seed=3)(x), s)
    assert not torch.equal(PoissonEncoder(4000, seed=4)(x), s)
    g = torch.Generator().manual_seed(3)
    assert torch.equal(PoissonEncoder(4000, generator=g)(x), s)
    batch_major = PoissonEncoder(4000, seed=3, time_major=False)(x)
    assert torch.equal(batch_major.transpose(0, 1), s)


# ----------------------------------------------------------------------------- SpikingMLP


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return x[perm[:1400]], y[perm[:1400]], x[perm[1400:]], y[perm[1400:]]


@pytest.mark.parametrize("method", METHODS)
def test_spiking_mlp_learns_digits_with_each_method(method):
    xtr, ytr, xte, yte = _digits()
    torch.manual_seed(0)
    net = SpikingMLP((64, 32, 10), method=method)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    order = torch.Generator().manual_seed(1)
    for _ in range(4):
        idx = torch.randperm(len(xtr), generator=order)
        for i in range(0, len(xtr), 64):
            b = idx[i : i + 64]
            loss = net.training_step((xtr[b], ytr[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        metrics = net.validation_step((xte, yte))
    assert metrics["accuracy"] > 0.85, f"{method}: held-out accuracy {metrics['accuracy']:.3f}"
    assert metrics["loss"] < 0.8


def test_spiking_mlp_trains_through_the_shared_trainer():
    from neuro.train import Trainer

    xtr, ytr, xte, yte = _digits()
    torch.manual_seed(0)
    net = SpikingMLP((64, 32, 10), method="dsr", bias=True)
    trainer = Trainer(max_epochs=3, lr=1e-2, batch_size=64, verbose=0, device="cpu")
    history = trainer.fit(net, (xtr, ytr), (xte, yte))
    assert history[-1]["val_accuracy"] > 0.7


@pytest.mark.parametrize("method", METHODS)
def test_presynaptic_has_one_detached_time_average_per_layer(method):
    torch.manual_seed(0)
    net = SpikingMLP((9, 8, 7, 6), method=method, T=5)
    x = torch.rand(4, 9)
    net.loss(x, torch.tensor([0, 1, 2, 3])).backward()
    assert len(net.presynaptic) == len(net.linear_layers()) == 3
    assert [tuple(p.shape) for p in net.presynaptic] == [(4, 9), (4, 8), (4, 7)]
    assert not any(p.requires_grad for p in net.presynaptic)
    assert all(isinstance(m, torch.nn.Linear) for m in net.linear_layers())
    hidden = net.presynaptic[1]
    if method == "bptt":  # mean of 0/1 spikes over 5 steps
        torch.testing.assert_close(net.presynaptic[0], x)
        torch.testing.assert_close(hidden * 5, (hidden * 5).round())
    elif method == "dsr":  # weighted rate of spikes of amplitude Vth / dt = 6
        torch.testing.assert_close(net.presynaptic[0], x)
        assert hidden.min() >= 0 and hidden.max() <= net.spike_amplitude + 1e-5
    else:  # mean of the traces of a constant input: x (1 + 1.5 + 1.75 + ...)/5
        lam = net.decay
        factor = sum(sum(lam**k for k in range(t + 1)) for t in range(5)) / 5
        torch.testing.assert_close(net.presynaptic[0], x * factor)


@pytest.mark.parametrize("method", METHODS)
def test_mixed_precision_keeps_presynaptic_and_gradients_in_float32(method):
    torch.manual_seed(0)
    net = SpikingMLP((9, 8, 7), method=method, T=4, bias=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = net.loss(torch.rand(5, 9), torch.tensor([0, 1, 2, 3, 4]))
    loss.backward()
    assert all(p.dtype == torch.float32 for p in net.presynaptic)
    assert all(p.grad.dtype == torch.float32 and p.grad.isfinite().all() for p in net.parameters())


@pytest.mark.parametrize("method", METHODS)
def test_a_network_without_hidden_layers_is_a_readout_of_the_input(method):
    net = SpikingMLP((9, 7), method=method, T=3)
    x = torch.rand(4, 9)
    torch.testing.assert_close(net(x), net.layers[0](x))  # OTTT's traces act on gradients only


@pytest.mark.parametrize("method", METHODS)
def test_time_major_and_batch_major_networks_agree(method):
    torch.manual_seed(0)
    x = torch.rand(5, 4, 9)  # (T, batch, features)
    a = SpikingMLP((9, 8, 7), method=method, T=5)
    b = SpikingMLP((9, 8, 7), method=method, T=5, time_major=False)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x), b(x.transpose(0, 1)))
    for pa, pb in zip(a.presynaptic, b.presynaptic, strict=True):
        torch.testing.assert_close(pa, pb)


def test_static_input_is_the_direct_encoding_repeated():
    torch.manual_seed(0)
    for method in METHODS:
        net = SpikingMLP((9, 8, 7), method=method, T=4)
        x = torch.rand(3, 9)
        torch.testing.assert_close(net(x), net(x.expand(4, 3, 9)))


def test_poisson_network_is_reproducible_from_its_seed():
    x = torch.rand(3, 9)
    torch.manual_seed(0)
    a = SpikingMLP((9, 8, 7), method="bptt", encoder="poisson", seed=5, T=6)
    b = SpikingMLP((9, 8, 7), method="bptt", encoder="poisson", seed=5, T=6)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x), b(x))
    assert set((a.presynaptic[0] * 6).round().unique().tolist()) <= set(range(7))


def _manual_bptt(net, x, y):
    """BPTT written out: straight-through sigmoid spikes, soft reset without gradient."""
    w1, w2 = net.layers[0].weight, net.layers[1].weight
    v = torch.zeros(x.shape[0], w1.shape[0])
    outs = []
    for _ in range(net.T):
        v = 0.5 * v + x @ w1.T
        sg = torch.sigmoid(4 * (v - 1))
        s = (v >= 1).float() + sg - sg.detach()
        v = v - s.detach()
        outs.append(s @ w2.T)
    return F.cross_entropy(torch.stack(outs).mean(0), y)


def test_bptt_gradients_match_the_unrolled_network():
    torch.manual_seed(0)
    net = SpikingMLP((9, 8, 7), method="bptt", T=6)
    with torch.no_grad():
        net.layers[0].weight.mul_(4)  # enough drive to fire
    x, y = torch.rand(5, 9), torch.tensor([0, 1, 2, 3, 4])
    net.loss(x, y).backward()
    got = [m.weight.grad.clone() for m in net.layers]
    net.zero_grad()
    _manual_bptt(net, x, y).backward()
    for g, m in zip(got, net.layers, strict=True):
        torch.testing.assert_close(g, m.weight.grad)
    assert got[0].abs().sum() > 0


def test_dsr_gradients_are_those_of_the_rate_network():
    torch.manual_seed(0)
    net = SpikingMLP((9, 8, 7), method="dsr")
    x, y = torch.rand(5, 9), torch.tensor([0, 1, 2, 3, 4])
    logits = net(x)
    F.cross_entropy(logits, y).backward()
    w1, w2 = net.layers[0].weight.detach(), net.layers[1].weight.detach()
    rate = net.presynaptic[1]  # the spiking (weighted) rate: the forward value
    delta = torch.softmax(logits.detach(), 1) - F.one_hot(y, 7).float()
    delta = delta / 5
    torch.testing.assert_close(net.layers[1].weight.grad, delta.T @ rate)
    gain = (1 - net.decay) / 0.05
    u = gain * x @ w1.T
    active = ((u > 0) & (u < net.spike_amplitude)).float()
    torch.testing.assert_close(net.layers[0].weight.grad, ((delta @ w2) * active * gain).T @ x)
    assert 0 < active.mean() < 1


def test_ottt_with_one_step_is_bptt_and_uses_traces_over_several():
    torch.manual_seed(0)
    x, y = torch.rand(5, 9), torch.tensor([0, 1, 2, 3, 4])
    ottt = SpikingMLP((9, 8, 7), method="ottt", T=1)
    bptt = SpikingMLP((9, 8, 7), method="bptt", T=1)
    bptt.load_state_dict(ottt.state_dict())
    with torch.no_grad():
        ottt.layers[0].weight.mul_(4)
        bptt.layers[0].weight.mul_(4)
    ottt.loss(x, y).backward()
    bptt.loss(x, y).backward()
    for a, b in zip(ottt.layers, bptt.layers, strict=True):
        torch.testing.assert_close(a.weight.grad, b.weight.grad)
    # T steps: the readout's gradient is sum_t delta_t^T r_t with r the hidden traces
    net = SpikingMLP((9, 8, 7), method="ottt", T=4)
    with torch.no_grad():
        net.layers[0].weight.mul_(4)
    net.loss(x, y).backward()
    o = net.step_outputs.detach()
    delta = (torch.softmax(o, 2) - F.one_hot(y, 7).float()) / (4 * 5)
    hidden = net.neurons[0]._run(x @ net.layers[0].weight.detach().T * torch.ones(4, 1, 1), True)
    torch.testing.assert_close(
        net.layers[1].weight.grad, torch.einsum("tbo,tbi->oi", delta, hidden.trace)
    )
    torch.testing.assert_close(net.presynaptic[1], hidden.trace.mean(0))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: SpikingMLP((9, 8, 7), T=4)(torch.rand(9)), "must be 2-D"),
        (lambda: SpikingMLP((9, 8, 7), T=4)(torch.rand(4, 3, 2, 9)), "must be 2-D"),
        (lambda: SpikingMLP((9, 8, 7), T=4)(torch.rand(3, 8)), "takes 9"),
        (lambda: SpikingMLP((9, 8, 7), T=4)(torch.rand(3, 4, 9)), "time_major=False"),
        (
            lambda: SpikingMLP((9, 8, 7), T=4, time_major=False)(torch.rand(4, 3, 9)),
            "time_major=True",
        ),
        (lambda: SpikingMLP((9, 8, 7), method="stdp"), "method must be one of"),
        (lambda: SpikingMLP((9, 8, 7), method="dsr", reset="hard"), "reset='soft'"),
        (lambda: SpikingMLP((9,)), "at least the input and output"),
        (lambda: SpikingMLP((9, 0, 7)), "sizes must be an integer >= 1"),
        (lambda: SpikingMLP((9, 8, 7), T=0), "T must be"),
        (lambda: SpikingMLP((9, 8, 7), T=2).loss(torch.rand(3, 9), torch.zeros(4)), "3 class"),
        (lambda: LIF(surrogate="relu"), "surrogate must be one of"),
        (lambda: LIF(tau=0.5), "tau must be >= 1"),
        (lambda: LIF(reset="none"), "reset must be one of"),
        (lambda: LIF()(torch.rand(5)), "at least 2 dimensions"),
        (lambda: PoissonEncoder(5)(torch.tensor([[0.5, 1.5]])), r"must lie in \[0, 1\]"),
        (lambda: SpikingMLP((9, 8, 7))(np.zeros((3, 9))), "torch.as_tensor"),
        (lambda: LIF()(torch.ones(3, 4, dtype=torch.long)), "floating-point"),
    ],
)
def test_bad_input_gets_one_line(make, match):
    with pytest.raises(InputError, match=match) as err:
        make()
    assert "\n" not in str(err.value)


def test_wrong_types_are_type_errors():
    with pytest.raises(InputTypeError):
        SpikingMLP("9-8-7")
    with pytest.raises(InputTypeError):
        PoissonEncoder(5, generator=3)
