"""Leaky RNN with trainable taus, GRU/LSTM baselines: equations, shapes, fused path, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuro.errors import InputError, InputTypeError
from neuro.rnn.models import GRUNetwork, LeakyRNN, LSTMNetwork, build_model


def _literal_step(net, h, x_t):
    """The paper's update, written out."""
    tau = net.taus
    w = net.w_rec.weight.clone()
    w.fill_diagonal_(0)
    rec = h @ w.T + net.w_rec.bias
    return F.leaky_relu((1 - 1 / tau) * h + (rec + net.w_in(x_t)) / tau, 0.01)


@pytest.mark.parametrize("fused", [True, False])
def test_leaky_rnn_follows_the_equation(fused):
    torch.manual_seed(0)
    net = LeakyRNN(hidden_size=9, n_heads=2, fused=fused)
    with torch.no_grad():
        net.w_rec.weight.add_(torch.eye(9))  # a diagonal must not act
    x = torch.rand(7, 8, 1).round()
    h0 = net.initial_state(7)
    out = net.hidden_states(x, h0)
    h = h0
    for t in range(8):
        h = _literal_step(net, h, x[:, t])
        torch.testing.assert_close(out[:, t], h, atol=1e-5, rtol=1e-5)
    logits = net.read(out[:, -1], [1])
    torch.testing.assert_close(logits[:, 0], net.heads[1](h), atol=1e-5, rtol=1e-5)


def test_taus_start_in_range_stay_above_one_and_get_gradients():
    torch.manual_seed(0)
    for param in ("clamp", "softplus"):
        net = LeakyRNN(hidden_size=50, tau_init=(1.0, 2.0), tau_parametrization=param)
        assert net.taus.min() >= 1.0 and net.taus.max() <= 2.0 + 1e-4
        loss = net(torch.rand(4, 6, 1).round()).sum()
        loss.backward()
        assert net.tau_raw.grad is not None and net.tau_raw.grad.abs().sum() > 0
        with torch.no_grad():
            net.tau_raw.fill_(-5.0)
        assert torch.all(net.taus >= 1.0)
    frozen = LeakyRNN(hidden_size=5, train_tau=False)
    assert not frozen.tau_raw.requires_grad


def test_fused_and_plain_agree_in_values_and_gradients():
    torch.manual_seed(1)
    a = LeakyRNN(hidden_size=11, n_heads=3, fused=True)
    b = LeakyRNN(hidden_size=11, n_heads=3, fused=False)
    b.load_state_dict(a.state_dict())
    x = torch.rand(5, 13, 1).round()
    h0 = a.initial_state(5)
    ya, yb = a.hidden_states(x, h0), b.hidden_states(x, h0)
    torch.testing.assert_close(ya, yb, atol=1e-5, rtol=1e-5)
    ya.square().sum().backward()
    yb.square().sum().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        if pa.grad is not None:
            torch.testing.assert_close(pa.grad, pb.grad, atol=1e-4, rtol=1e-4, msg=name)


@pytest.mark.parametrize("kind", ["leaky", "gru", "lstm"])
def test_same_interface_and_chunked_runs(kind):
    torch.manual_seed(0)
    net = build_model(kind, hidden_size=7, n_heads=3)
    x = torch.rand(4, 10, 1).round()
    assert net(x).shape == (4, 3, 2) and net(x, heads=[2]).shape == (4, 1, 2)
    full, _ = net.run(x)
    first, s1 = net.run(x[:, :6])
    if kind == "leaky":  # its initial state is random: carry the same one
        full, _ = net.run(x, first[:, 0].new_zeros(4, 7) + 0.05)
        first, s1 = net.run(x[:, :6], first[:, 0].new_zeros(4, 7) + 0.05)
    second, _ = net.run(x[:, 6:], s1)
    torch.testing.assert_close(torch.cat([first, second], 1), full, atol=1e-5, rtol=1e-5)
    assert isinstance(net, {"leaky": LeakyRNN, "gru": GRUNetwork, "lstm": LSTMNetwork}[kind])


@pytest.mark.parametrize("tau_init", [(0.5, 2.0), (2.0, 1.5), (0.0, 0.0)])
def test_taus_below_one_are_refused(tau_init):
    with pytest.raises(InputError, match="tau_init"):
        LeakyRNN(hidden_size=4, tau_init=tau_init)


def test_bad_input_shape():
    net = LeakyRNN(hidden_size=4)
    with pytest.raises(InputError, match=r"\(batch, T, 1\)"):
        net(torch.rand(3, 5))
    with pytest.raises(InputTypeError, match="x must be a torch.Tensor"):
        net(np.zeros((3, 5, 1)))
    with pytest.raises(InputTypeError, match="fused must be True or False"):
        LeakyRNN(hidden_size=4, fused="yes")
    with pytest.raises(InputError, match="model must be one of"):
        build_model("rnn")
