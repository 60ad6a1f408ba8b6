"""The public code's variants: RNN_Mod (nonlinearity inside the leak), the continuous-time RNN
with duplicated inputs, and the sliding-window curriculum."""

import numpy as np
import pytest
import torch

from neuro.errors import InputError
from neuro.rnn.curricula import CurriculumConfig, train_curriculum
from neuro.rnn.models import ContinuousRNN, LeakyRNN, ModRNN, build_model
from neuro.rnn.timescales import autocorrelation, simulate_activity

TINY = dict(hidden_size=12, steps_per_epoch=3, batch_size=16, val_batches=1)


def _uncoupled(cls, tau, nonlinearity, **kwargs):
    """A network whose neurons see only their own input: no recurrent weights."""
    net = cls(hidden_size=6, tau_init=(tau, tau), nonlinearity=nonlinearity, **kwargs)
    with torch.no_grad():
        net.w_rec.weight.zero_()
        net.w_in.weight.uniform_(0.5, 1.5)
        net.w_in.bias.fill_(0.1)  # a drive that varies with the bit through any f
        net.w_rec.bias.zero_()
    return net


# ------------------------------------------------------------------ RNN_Mod
@pytest.mark.parametrize("nonlinearity", ["leaky_relu", "relu", "tanh", "sigmoid"])
def test_mod_is_the_codes_update(nonlinearity):
    torch.manual_seed(0)
    net = ModRNN(hidden_size=5, nonlinearity=nonlinearity)
    x = torch.rand(3, 4, 1).round()
    h0 = torch.rand(3, 5)
    f = {
        "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01),
        "relu": torch.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
    }[nonlinearity]
    w = net.w_rec.weight * (1 - torch.eye(5))
    tau = net.taus
    h, expected = h0, []
    for xt in x.unbind(1):  # (1 - 1/tau) h + f(W h + W_in x + b) / tau, written out
        h = (1 - 1 / tau) * h + f(h @ w.T + net.w_rec.bias + net.w_in(xt)) / tau
        expected.append(h)
    got = net.hidden_states(x, h0)
    torch.testing.assert_close(got, torch.stack(expected, 1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("nonlinearity", ["tanh", "sigmoid", "relu"])
def test_mod_uncoupled_neuron_has_the_ar1_autocorrelation_whatever_the_nonlinearity(
    nonlinearity,
):
    tau = 4.0
    net = _uncoupled(ModRNN, tau, nonlinearity)
    ac = autocorrelation(simulate_activity(net, n_steps=20_000, n_trials=4, seed=1), max_lag=8)
    theory = (1 - 1 / tau) ** np.arange(9)
    np.testing.assert_allclose(ac.mean(0), theory, atol=0.03)
    # the null: with f on the whole update (RNN_Stack), a saturating f breaks the AR(1) law
    stack = _uncoupled(LeakyRNN, tau, "sigmoid")
    ac_stack = autocorrelation(simulate_activity(stack, 20_000, 4, seed=1), max_lag=8)
    assert np.abs(ac_stack.mean(0) - theory).max() > 0.3


def test_nonlinearity_is_checked_and_build_model_knows_the_variants():
    with pytest.raises(InputError, match="nonlinearity must be one of 'leaky_relu', 'relu'"):
        ModRNN(hidden_size=4, nonlinearity="softsign")
    assert type(build_model("mod", hidden_size=4)) is ModRNN
    net = build_model("continuous", hidden_size=4, duplicate=3)
    assert type(net) is ContinuousRNN and net.duplicate == 3
    assert not hasattr(build_model("leaky", hidden_size=4, duplicate=3), "duplicate")


# ------------------------------------------------------------------ continuous time
def _twins(k, **kwargs):
    torch.manual_seed(0)
    mod = ModRNN(hidden_size=7, n_heads=2, **kwargs)
    cont = ContinuousRNN(hidden_size=7, n_heads=2, duplicate=k, **kwargs)
    cont.load_state_dict(mod.state_dict())
    return mod, cont


def test_continuous_with_one_substep_is_the_mod_network():
    mod, cont = _twins(1, nonlinearity="tanh")
    x = torch.rand(4, 9, 1).round()
    torch.manual_seed(5)
    a = mod(x)
    torch.manual_seed(5)
    b = cont(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    a.sum().backward()
    b.sum().backward()
    for (name, p), q in zip(mod.named_parameters(), cont.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=0, msg=name)


def test_continuous_feeds_k_copies_with_taus_times_k():
    k = 3
    mod, cont = _twins(k)
    with torch.no_grad():  # the reference: the Mod network with taus x k on duplicated bits
        mod.tau_raw.mul_(k)
    x = torch.rand(2, 5, 1).round()
    h0 = torch.rand(2, 7)
    fine = mod.hidden_states(x.repeat_interleave(k, 1), h0)
    torch.testing.assert_close(cont.fine_states(x, h0), fine, rtol=1e-6, atol=1e-7)
    # on the input grid: the state after each input's k substeps
    torch.testing.assert_close(cont.hidden_states(x, h0), fine[:, k - 1 :: k])
    assert cont.fine_states(x, h0).shape == (2, 15, 7)


def test_continuous_clamps_after_scaling_as_the_code_does():
    # tau 0.5 (below 1, the clamp's dead zone) times k = 2 gives exactly 1, not max(0.5, 1) x 2
    mod, cont = _twins(2, tau_init=(1.0, 1.0))
    with torch.no_grad():
        cont.tau_raw.fill_(0.5)
    x = torch.rand(2, 3, 1).round()
    h0 = torch.rand(2, 7)
    torch.testing.assert_close(
        cont.fine_states(x, h0), mod.hidden_states(x.repeat_interleave(2, 1), h0)
    )


@pytest.mark.parametrize("k", [1, 3, 10])
def test_continuous_decay_follows_the_finer_grid_and_tends_to_exp(k):
    tau = 5.0
    net = ContinuousRNN(hidden_size=3, tau_init=(tau, tau), nonlinearity="relu", duplicate=k)
    with torch.no_grad():  # no drive at all: relu(-1) = 0, so h only leaks
        net.w_rec.weight.zero_()
        net.w_in.weight.zero_()
        net.w_rec.bias.fill_(-1.0)
        net.w_in.bias.zero_()
    h0 = torch.ones(1, 3)
    h = net.hidden_states(torch.zeros(1, 6, 1), h0)[0, :, 0].detach().numpy()
    t = np.arange(1, 7)
    np.testing.assert_allclose(h, (1 - 1 / (k * tau)) ** (k * t), rtol=1e-5)
    # continuous time: within 2% of exp(-t / tau) by k = 10, not at k = 1
    gap = np.abs(h / np.exp(-t / tau) - 1).max()
    assert (gap < 0.02) if k == 10 else (gap > 0.05 if k == 1 else True)


def test_duplicate_is_checked():
    with pytest.raises(InputError, match="duplicate must be an integer >= 1; got 0"):
        ContinuousRNN(hidden_size=4, duplicate=0)


def test_curriculum_trains_each_duplicate_in_turn():
    seen = []

    class Recording(ContinuousRNN):
        def _run(self, x, state=None, fine=False):
            if torch.is_grad_enabled():
                seen.append(self.duplicate)
            return super()._run(x, state, fine)

    cfg = CurriculumConfig(model="continuous", duplicates=(2, 3), n_max=3, max_epochs=1, **TINY)
    net = Recording(hidden_size=12, n_heads=cfg.n_heads, duplicate=2)
    res = train_curriculum(cfg, network=net, device="cpu")
    assert seen == [2, 3] * 3  # one batch (and one optimiser step) per k, in order
    assert res.history[0]["step"] == 6 and res.network.duplicate == 2
    assert cfg.build_model().duplicate == 2


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        (dict(duplicates=(2,)), "duplicates=\\(2,\\) needs model='continuous'"),
        (dict(model="continuous", duplicates=(0, 2)), "duplicates must be an integer >= 1; got 0"),
        (dict(model="continuous", duplicates=()), "duplicates must hold at least one"),
        (dict(model="continuous", duplicates="2"), "duplicates must be an int or a sequence"),
        (dict(nonlinearity="gelu"), "nonlinearity must be one of"),
        (dict(kind="sliding", window=2, stride=3), "stride must be at most window"),
        (dict(kind="sliding", window=0), "window must be an integer >= 1; got 0"),
        (dict(kind="sliding", window=4, n_max=4), "n_max \\(4\\) must be >= n_start \\+ window"),
        (dict(kind="sliding", sliding_heads="shared"), "sliding_heads must be one of"),
        (dict(kind="multi", add_heads=0), "add_heads must be an integer >= 1; got 0"),
        (dict(kind="multi", init_heads=0), "init_heads must be an integer >= 1; got 0"),
    ],
)
def test_bad_variant_settings(settings, match):
    with pytest.raises(InputError, match=match):
        CurriculumConfig(**settings)


# ------------------------------------------------------------------ sliding window
def _code_windows(n_start, window, stride, steps):
    """The public code's window: Ns = Ns[f:] + [Ns[-1] + 1 + i for i in range(f)]."""
    ns, out = list(range(n_start, n_start + window)), []
    for _ in range(steps):
        out.append(ns)
        ns = ns[stride:] + [ns[-1] + 1 + i for i in range(stride)]
    return out


@pytest.mark.parametrize(("window", "stride"), [(3, 1), (3, 2), (2, 2)])
def test_sliding_window_advances_as_the_code_does(window, stride):
    cfg = CurriculumConfig(kind="sliding", window=window, stride=stride, n_max=40, **TINY)
    levels = [cfg.first_level]
    while levels[-1] < 12:
        levels.append(cfg.next_level(levels[-1]))
    assert [cfg.active_ns(n) for n in levels] == _code_windows(2, window, stride, len(levels))


def _code_cumulative(n_start, init_heads, add_heads, steps):
    """The public code's cumulative curriculum: Ns = Ns + [Ns[-1] + 1 + i for i in range(dh)]."""
    ns, out = list(range(n_start, n_start + init_heads)), []
    for _ in range(steps):
        out.append(ns)
        ns = ns + [ns[-1] + 1 + i for i in range(add_heads)]
    return out


@pytest.mark.parametrize(("init_heads", "add_heads"), [(1, 1), (3, 1), (1, 2), (2, 3)])
def test_multi_head_init_and_add_heads_advance_as_the_codes_cumulative(init_heads, add_heads):
    cfg = CurriculumConfig(kind="multi", init_heads=init_heads, add_heads=add_heads, n_max=40)
    levels = [cfg.first_level]
    while levels[-1] < 14:
        levels.append(cfg.next_level(levels[-1]))
    assert [cfg.active_ns(n) for n in levels] == _code_cumulative(
        2, init_heads, add_heads, len(levels)
    )
    capped = CurriculumConfig(kind="multi", add_heads=3, n_max=6)
    assert [capped.next_level(n) for n in (2, 5)] == [5, 6]  # the last advance stops at n_max
    # other kinds ignore them: one config is compared across kinds
    assert CurriculumConfig(kind="single", init_heads=3, add_heads=2).next_level(2) == 3
    with pytest.raises(InputError, match=r"n_max \(3\) must be >= n_start \+ init_heads"):
        CurriculumConfig(kind="multi", init_heads=3, n_max=3)


def test_multi_head_with_two_heads_added_trains_them_together():
    cfg = CurriculumConfig(kind="multi", add_heads=2, n_max=6, threshold=0.01, max_epochs=9, **TINY)
    res = train_curriculum(cfg, device="cpu")
    assert res.n_over_epochs().tolist() == [2, 4, 6] and res.solved_epoch == {2: 1, 4: 2, 6: 3}
    last = sorted(k for k in res.history[-1] if k.startswith("val_acc_N"))
    assert last == [f"val_acc_N{n}" for n in range(2, 7)]


def test_sliding_trains_exactly_the_window_heads_and_moves_on():
    cfg = CurriculumConfig(
        kind="sliding",
        window=3,
        n_max=6,
        threshold=1.0,
        max_epochs=1,
        sliding_heads="per_n",
        **TINY,
    )
    torch.manual_seed(0)
    net = cfg.build_model()
    before = [h.weight.detach().clone() for h in net.heads]
    res = train_curriculum(cfg, network=net, device="cpu")
    changed = [not torch.equal(b, h.weight) for b, h in zip(before, net.heads, strict=True)]
    assert changed == [True, True, True, False, False]  # heads of N = 2, 3, 4 only
    assert res.n_over_epochs().tolist() == [4]

    easy = CurriculumConfig(kind="sliding", window=3, n_max=6, threshold=0.01, max_epochs=9, **TINY)
    res = train_curriculum(easy, device="cpu")
    assert res.n_over_epochs().tolist() == [4, 5, 6] and res.solved_epoch == {4: 1, 5: 2, 6: 3}
    last = sorted(k for k in res.history[-1] if k.startswith("val_acc_N"))
    assert last == ["val_acc_N4", "val_acc_N5", "val_acc_N6"]  # N = 2, 3 left the window


def test_sliding_stride_stops_at_n_max_and_positional_heads_are_the_codes():
    cfg = CurriculumConfig(kind="sliding", window=2, stride=2, n_max=6, threshold=0.01, **TINY)
    res = train_curriculum(cfg, device="cpu")
    assert res.n_over_epochs().tolist() == [3, 5, 6]  # [2,3] -> [4,5] -> [5,6], capped at 6

    pos = CurriculumConfig(kind="sliding", window=2, n_max=5, **TINY)  # the code's heads: default
    assert pos.n_heads == 2 and pos.build_model().n_heads == 2
    assert [pos.head_of(n, 4) for n in (3, 4)] == [0, 1]  # the j-th N of the window, head j
    assert [pos.head_of(n, 5) for n in (4, 5)] == [0, 1]  # N = 4 moved from head 1 to head 0
    with pytest.raises(InputError, match="N=2 is not in the window \\[4, 5\\]"):
        pos.head_of(2, 5)


@pytest.mark.parametrize(
    "kind", [dict(kind="sliding", window=2), dict(kind="multi", init_heads=2, add_heads=2)]
)
def test_sliding_and_cumulative_heads_resume_exactly(tmp_path, kind):
    base = dict(**kind, n_max=7, threshold=0.6, **TINY)
    full = train_curriculum(
        CurriculumConfig(max_epochs=4, **base), out_dir=tmp_path / "a", device="cpu", seed=3
    )
    train_curriculum(
        CurriculumConfig(max_epochs=2, **base), out_dir=tmp_path / "b", device="cpu", seed=3
    )
    resumed = train_curriculum(
        CurriculumConfig(max_epochs=4, **base),
        out_dir=tmp_path / "b",
        resume="last",
        device="cpu",
        seed=3,
    )
    assert resumed.n_over_epochs().tolist() == full.n_over_epochs().tolist()
    assert resumed.solved_epoch == full.solved_epoch
    for (k, a), b in zip(
        full.network.state_dict().items(), resumed.network.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


def test_compare_curricula_checks_the_sliding_window_before_training(tmp_path):
    from neuro.rnn.experiment import compare_curricula

    cfg = CurriculumConfig(n_max=3, window=1, max_epochs=1, **TINY)
    cfg.window = 3  # n_start + window - 1 = 4 > n_max: refused for "sliding", after "single"
    with pytest.raises(InputError, match="n_max \\(3\\) must be >= n_start \\+ window - 1"):
        compare_curricula(cfg, kinds=["single", "sliding"], out_dir=tmp_path, device="cpu")
    assert not (tmp_path / "single").exists()  # nothing was trained
