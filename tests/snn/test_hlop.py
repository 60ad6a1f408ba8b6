"""Hebbian subspaces, HLOP and the continual-learning baselines (neuro.snn.hlop)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuro.errors import InputError, InputTypeError
from neuro.snn.hlop import (
    EWC,
    GPM,
    HLOP,
    ContinualStrategy,
    FineTune,
    HebbianSubspace,
    gpm_extend_basis,
    oja_subspace_update,
    pmnist_added_schedule,
    principal_angles,
    spike_quantise,
)


class TinyMLP(nn.Module):
    """A non-spiking MLP that fills ``presynaptic`` as the spiking networks do."""

    def __init__(self, sizes=(12, 9, 7, 3), activation=torch.relu, seed=0, bias=True):
        super().__init__()
        torch.manual_seed(seed)
        self.layers = nn.ModuleList(
            nn.Linear(a, b, bias=bias) for a, b in itertools.pairwise(sizes)
        )
        self.activation = activation
        self.presynaptic: list[torch.Tensor] = []

    def linear_layers(self):
        return list(self.layers)

    def forward(self, x):
        pre = []
        for i, layer in enumerate(self.layers):
            pre.append(x.detach())
            x = layer(x)
            if i < len(self.layers) - 1 and self.activation is not None:
                x = self.activation(x)
        self.presynaptic = pre
        return x


def low_rank(n_samples, n_features, rank, gen, noise=0.01, scales=None):
    """Samples of a Gaussian with a ``rank``-dim dominant subspace, and that subspace."""
    basis = torch.linalg.qr(torch.randn(n_features, rank, generator=gen)).Q
    scales = torch.linspace(3.0, 1.5, rank) if scales is None else scales
    z = torch.randn(n_samples, rank, generator=gen) * scales
    return z @ basis.T + noise * torch.randn(n_samples, n_features, generator=gen), basis


def batches(x, size=32, y=None):
    return [
        x[i : i + size] if y is None else (x[i : i + size], y[i : i + size])
        for i in range(0, len(x), size)
    ]


# ---------------------------------------------------------------- functions


def test_spike_quantise_grid_and_saturation():
    y = torch.tensor([0.011, -0.029, 0.5, -25.0, 25.0])
    q = spike_quantise(y, scale=20.0, steps=1000)  # grid 0.02
    assert torch.allclose(q, torch.tensor([0.02, -0.02, 0.5, -20.0, 20.0]))
    fine = torch.linspace(-5, 5, 101)
    assert (spike_quantise(fine, 20.0, 1000) - fine).abs().max() <= 0.01 + 1e-6


def test_principal_angles_known_and_input_types():
    e = torch.eye(4, dtype=torch.float64)
    rot = torch.stack(
        [e[:, 0], torch.cos(torch.tensor(0.3)) * e[:, 1] + torch.sin(torch.tensor(0.3)) * e[:, 2]],
        dim=1,
    )
    angles = principal_angles(e[:, :2], rot)
    assert torch.allclose(angles, torch.rad2deg(torch.tensor([0.0, 0.3], dtype=torch.float64)))
    # any spanning set, either order; numpy in, numpy out
    got = principal_angles(
        (e[:, :2] @ torch.tensor([[2.0, 1.0], [0.0, 3.0]], dtype=torch.float64)).numpy(),
        e[:, :3].numpy(),
    )
    assert isinstance(got, np.ndarray) and np.allclose(got, 0.0, atol=1e-6)
    # a tiny angle is still resolved (sine formula)
    tiny = 1e-7
    b = e[:, :1] * np.cos(tiny) + e[:, 1:2] * np.sin(tiny)
    assert principal_angles(e[:, :1], b).item() == pytest.approx(np.rad2deg(tiny), rel=1e-3)


def test_gpm_extend_basis_matches_svd_and_threshold(rng):
    n = 11
    u_true = np.linalg.qr(rng.standard_normal((n, n)))[0]
    s = np.array([5.0, 3.0, 2.0, 1.0, 0.5] + [0.0] * (n - 5))
    r = torch.as_tensor(u_true @ np.diag(s) @ rng.standard_normal((n, 60)) / np.sqrt(60))
    energy = np.linalg.svd(r.numpy(), compute_uv=False) ** 2
    frac = np.cumsum(energy) / energy.sum()
    for threshold in (0.5, 0.9, 0.99):
        basis = gpm_extend_basis(r @ r.T, None, threshold)
        k = int(np.searchsorted(frac, threshold) + 1)
        assert basis.shape == (n, k)
        u_svd = np.linalg.svd(r.numpy())[0][:, :k]
        assert principal_angles(basis, torch.as_tensor(u_svd)).max() < 1e-4
        assert torch.allclose(basis.T @ basis, torch.eye(k, dtype=basis.dtype), atol=1e-10)
    # the same task again adds nothing; a task in a new direction adds exactly it
    basis = gpm_extend_basis(r @ r.T, None, 0.99)
    assert gpm_extend_basis(r @ r.T, basis, 0.99).shape == basis.shape
    new_dir = torch.as_tensor(u_true[:, 7:8])
    extended = gpm_extend_basis(new_dir @ new_dir.T * 4.0, basis, 0.99)
    assert extended.shape[1] == basis.shape[1] + 1
    assert principal_angles(extended[:, -1:], new_dir).item() < 1e-4
    assert torch.allclose(extended[:, : basis.shape[1]], basis)


def test_oja_update_leaves_fixed_rows_and_learns_residual():
    gen = torch.Generator().manual_seed(1)
    x, basis = low_rank(512, 10, 2, gen, scales=torch.tensor([3.0, 2.0]))
    fixed = basis[:, :1].T.clone().float()  # the top direction is already known
    weight = torch.cat([fixed, torch.linalg.qr(torch.randn(10, 1, generator=gen)).Q.T])
    velocity = torch.zeros(1, 10)
    for _ in range(200):
        oja_subspace_update(weight, velocity, x, n_fixed=1, lr=0.02)
    assert torch.equal(weight[:1], fixed)
    assert principal_angles(weight[1:].T, basis[:, 1:]).item() < 2.0


# ---------------------------------------------------------------- HebbianSubspace


@pytest.mark.parametrize("spiking", [False, True])
def test_lateral_weights_converge_to_top_principal_subspace(spiking):
    gen = torch.Generator().manual_seed(0)
    n, k = 40, 5
    x, _ = low_rank(4096, n, k, gen, noise=0.1)
    pca = torch.linalg.svd(x, full_matrices=False).Vh[:k].T  # top right singular vectors
    lateral = HebbianSubspace(n, spiking=spiking)
    lateral.add_neurons(k, generator=0)
    start = lateral.principal_angles(pca).max()
    for i in range(300):
        lateral.learn(x[(i * 64) % 4096 :][:64], lr=0.01)
    angles = lateral.principal_angles(pca)
    assert start > 30.0  # a random start is far from the answer
    assert angles.max() < 10.0
    assert lateral.orthonormality_error() < 0.05


def test_spiking_lateral_neurons_approximate_rate_version():
    gen = torch.Generator().manual_seed(3)
    x, _ = low_rank(2048, 16, 3, gen, noise=0.05)
    subs = []
    for spiking in (False, True):
        lateral = HebbianSubspace(16, spiking=spiking)
        lateral.add_neurons(3, generator=5)  # same start
        for i in range(150):
            lateral.learn(x[(i * 64) % 2048 :][:64], lr=0.01)
        subs.append(lateral)
    assert principal_angles(subs[0].basis("all"), subs[1].basis("all")).max() < 3.0
    subs[0].merge(), subs[1].merge()
    rate, spk = subs[0].project(x), subs[1].project(x)
    # the spiking projection differs by at most the rounding of y (grid 0.02, 3 neurons)
    assert (rate - spk).norm(dim=1).max() < 0.02 * np.sqrt(3)
    assert not torch.equal(rate, spk)


def test_add_merge_bookkeeping_and_projection():
    gen = torch.Generator().manual_seed(2)
    lateral = HebbianSubspace(9)
    assert (lateral.n_old, lateral.n_new, lateral.n_neurons) == (0, 0, 0)
    x = torch.randn(5, 9, generator=gen)
    assert torch.equal(lateral.project(x), x)  # nothing old: nothing removed
    lateral.add_neurons(3, generator=gen)
    assert (lateral.n_old, lateral.n_new) == (0, 3)
    assert lateral.orthonormality_error() < 1e-5  # new rows orthonormal to each other
    assert lateral.velocity.shape == (3, 9)
    lateral.learn(x, lr=0.01)
    lateral.merge()
    assert (lateral.n_old, lateral.n_new) == (3, 0) and lateral.velocity.shape == (0, 9)
    old = lateral.old_weight.clone()
    lateral.add_neurons(2, generator=gen)
    assert (lateral.n_old, lateral.n_new, lateral.n_neurons) == (3, 2, 5)
    lateral.learn(torch.randn(64, 9, generator=gen), lr=0.05, n_iter=3)
    assert torch.equal(lateral.old_weight, old)  # old rows never learn
    w = lateral.old_weight
    assert torch.allclose(lateral.project(x), x - (x @ w.T) @ w)
    assert torch.allclose(lateral.project(x), x @ lateral.projector.T, atol=1e-6)
    assert lateral.basis("new").shape == (9, 2) and lateral.basis("all").shape == (9, 5)


def test_hebbian_subspace_errors():
    lateral = HebbianSubspace(6)
    with pytest.raises(InputError, match="at most n_features=6"):
        lateral.add_neurons(7)
    lateral.add_neurons(4)
    with pytest.raises(InputError, match="Add at most 2"):
        lateral.add_neurons(3)
    with pytest.raises(InputError, match=r"\(batch, 6\); got \(4, 5\)"):
        lateral.learn(torch.zeros(4, 5), lr=0.01)
    with pytest.raises(InputError, match=r"got \(6,\)"):
        lateral.learn(torch.zeros(6), lr=0.01)
    bad = torch.zeros(4, 6)
    bad[1, 2] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        lateral.learn(bad, lr=0.01)
    with pytest.raises(InputTypeError, match="torch.Tensor"):
        lateral.project(np.zeros((4, 6)))
    with pytest.raises(InputError, match="lr must be > 0"):
        lateral.learn(torch.zeros(4, 6), lr=0.0)
    lateral.merge()
    with pytest.raises(InputError, match="call add_neurons"):
        lateral.learn(torch.ones(4, 6), lr=0.01)
    with pytest.raises(InputError, match="n_features must be an integer >= 1"):
        HebbianSubspace(0)
    with pytest.raises(InputError, match="A has 5 rows but B has 6"):
        principal_angles(torch.eye(5)[:, :2], torch.eye(6)[:, :2])
    with pytest.raises(InputError, match="2-D"):
        principal_angles(torch.ones(5), torch.eye(5))


# ---------------------------------------------------------------- strategies


def _old_task_setup(strategy, seed=0):
    """Task 0 on low-rank inputs (no weight training), then task 1 begun."""
    gen = torch.Generator().manual_seed(seed)
    model = TinyMLP(activation=None, seed=seed, bias=False)  # every layer sees rank-3 activity
    x_old, _ = low_rank(1024, 12, 3, gen, noise=0.01)
    strategy.before_task(model, 0)
    for _ in range(8):
        for xb in batches(x_old, 64):
            model(xb)
            strategy.observe(model)
    strategy.after_task(model, 0, batches(x_old, 128))
    strategy.before_task(model, 1)
    return model, x_old, gen


def _relative_response_change(model, strategy, x_old, gen):
    """Per layer: change of the layer's output on old inputs, projected over unprojected."""
    x_new = torch.randn(64, 12, generator=gen) * 2.0
    y_new = torch.randint(0, 3, (64,), generator=gen)
    model.zero_grad()
    F.cross_entropy(model(x_new), y_new).backward()
    raw = [layer.weight.grad.clone() for layer in model.linear_layers()]
    strategy.after_backward(model)
    model(x_old)
    ratios, kept = [], []
    for layer, g_raw, act in zip(model.linear_layers(), raw, model.presynaptic, strict=True):
        g = layer.weight.grad
        ratios.append(float((act @ g.T).norm() / (act @ g_raw.T).norm()))
        kept.append(float(g.norm() / g_raw.norm()))
    return ratios, kept


@pytest.mark.parametrize(
    "strategy, bound",
    [
        (lambda: HLOP(lateral=[4, 4, 4], added=2, lr=[0.01, 0.05, 0.3]), 0.05),
        (lambda: GPM(threshold=0.999), 0.02),
    ],
    ids=["hlop", "gpm"],
)
def test_projected_update_keeps_old_responses(strategy, bound):
    strategy = strategy()
    model, x_old, gen = _old_task_setup(strategy)
    ratios, kept = _relative_response_change(model, strategy, x_old, gen)
    assert max(ratios) < bound, ratios
    # not by shrinking the update to nothing: most of the new task's gradient remains
    assert min(kept) > 0.3, kept


def test_hebbian_basis_close_to_gpm_basis():
    hlop, gpm = HLOP(lateral=[3, 3, 3], added=1, lr=[0.01, 0.05, 0.3]), GPM(threshold=0.99)
    for strategy in (hlop, gpm):
        _old_task_setup(strategy)
    for hebb, exact in zip(hlop.subspace_bases(), gpm.subspace_bases(), strict=True):
        assert exact.shape[1] == 3  # low-rank inputs: 3 directions carry the energy
        assert principal_angles(hebb, exact).max() < 1.0


def test_hlop_schedule_and_freezing():
    model = TinyMLP()
    hlop = HLOP(lateral=[3, 2, 1], added=[[1, 1, 1], [2, 0, 1]], lr=0.01)
    hlop.before_task(model, 0)
    assert [s.n_new for s in hlop.subspaces] == [3, 2, 1]
    assert all(p.requires_grad for p in model.parameters())
    model(torch.randn(8, 12))
    hlop.observe(model)
    hlop.after_task(model, 0, [])
    assert [(s.n_old, s.n_new) for s in hlop.subspaces] == [(3, 0), (2, 0), (1, 0)]
    model(torch.randn(8, 12)).sum().backward()
    hlop.before_task(model, 1)
    assert [s.n_new for s in hlop.subspaces] == [1, 1, 1]
    # biases stop learning from task 1 on, and lose any stale gradient (optimizer momentum)
    assert [p.requires_grad for p in model.parameters()] == [True, False] * 3
    assert [p.grad is None for p in model.parameters()] == [False, True] * 3
    hlop.after_task(model, 1, [])
    hlop.before_task(model, 2)
    assert [s.n_neurons for s in hlop.subspaces] == [6, 3, 3]
    with pytest.raises(InputError, match="tasks 1..2 only"):
        hlop.before_task(model, 3)
    # the paper's PMNIST schedule ends at [470, 590, 490]
    totals = np.array([80, 200, 100]) + np.sum(pmnist_added_schedule(10), axis=0)
    assert totals.tolist() == [470, 590, 490]


def test_hlop_observe_learns_only_new_rows_and_projects_with_old():
    model = TinyMLP(activation=None)
    hlop = HLOP(lateral=2, added=2, lr=0.01)
    hlop.before_task(model, 0)
    gen = torch.Generator().manual_seed(0)
    x, _ = low_rank(256, 12, 2, gen)
    for xb in batches(x, 64):
        model(xb)
        hlop.observe(model)
    hlop.after_task(model, 0, [])
    old = [s.old_weight.clone() for s in hlop.subspaces]
    hlop.before_task(model, 1)
    new = [s.new_weight.clone() for s in hlop.subspaces]
    model(torch.randn(32, 12, generator=gen))
    hlop.observe(model)
    for s, o, n in zip(hlop.subspaces, old, new, strict=True):
        assert torch.equal(s.old_weight, o) and not torch.equal(s.new_weight, n)
    F.cross_entropy(model(x[:16]), torch.zeros(16, dtype=torch.long)).backward()
    raw = [layer.weight.grad.clone() for layer in model.linear_layers()]
    hlop.after_backward(model)
    for layer, g, s in zip(model.linear_layers(), raw, hlop.subspaces, strict=True):
        # projected gradient: nothing left along the (nearly orthonormal) old rows
        assert torch.allclose(layer.weight.grad, g - (g @ s.old_weight.T) @ s.old_weight)
        left = (layer.weight.grad @ s.old_weight.T).norm() / (g @ s.old_weight.T).norm()
        assert left < 0.05


def test_ewc_penalty_zero_at_anchor_and_grows_away():
    model = TinyMLP()
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(96, 12, generator=gen)
    y = torch.randint(0, 3, (96,), generator=gen)

    def loss_fn(m, batch):
        return F.cross_entropy(m(batch[0]), batch[1])

    ewc = EWC(loss_fn, lambda_=10.0)
    assert ewc.penalty(model).item() == 0.0  # before any task
    ewc.after_task(model, 0, batches(x, 32, y))
    assert ewc.penalty(model).item() == 0.0  # at the anchor
    assert all((f >= 0).all() for f in ewc.fisher.values())
    assert sum(float(f.sum()) for f in ewc.fisher.values()) > 0
    direction = [torch.randn(p.shape, generator=gen) for p in model.parameters()]
    values = []
    for step in (0.01, 0.02):
        with torch.no_grad():
            for p, d, a in zip(model.parameters(), direction, ewc.anchor.values(), strict=True):
                p.copy_(a + step * d)
        values.append(ewc.penalty(model).item())
    assert values[0] > 0 and values[1] == pytest.approx(4 * values[0], rel=1e-4)  # quadratic
    # the penalty's gradient pulls back toward the anchor
    ewc.penalty(model).backward()
    pull = sum(
        float((p.grad * d).sum()) for p, d in zip(model.parameters(), direction, strict=True)
    )
    assert pull > 0
    # a second task adds its Fisher to the first's
    first = {n: f.clone() for n, f in ewc.fisher.items()}
    ewc.after_task(model, 1, batches(x, 32, y))
    assert all((ewc.fisher[n] >= first[n]).all() for n in first)
    assert ewc.penalty(model).item() == 0.0  # re-anchored


def test_finetune_and_base_change_nothing():
    model = TinyMLP()
    model(torch.randn(8, 12)).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    params = [p.detach().clone() for p in model.parameters()]
    for strategy in (FineTune(), ContinualStrategy()):
        strategy.before_task(model, 1)
        assert strategy.penalty(model).item() == 0.0
        strategy.after_backward(model)
        strategy.observe(model)
        strategy.after_task(model, 1, [torch.randn(4, 12)])
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads, strict=True))
    assert all(torch.equal(p.detach(), q) for p, q in zip(model.parameters(), params, strict=True))
    assert all(p.requires_grad for p in model.parameters())


def _run_stream(strategy, tasks, model, epochs=3):
    """Train task after task; accuracy matrix acc[i, j] on task j after task i."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    acc = np.zeros((len(tasks), len(tasks)))
    for t, (x, y) in enumerate(tasks):
        strategy.before_task(model, t)
        for _ in range(epochs):
            for xb, yb in batches(x, 32, y):
                opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb) + strategy.penalty(model)
                loss.backward()
                strategy.after_backward(model)
                opt.step()
                strategy.observe(model)
        strategy.after_task(model, t, batches(x, 64, y))
        with torch.no_grad():
            for j, (xj, yj) in enumerate(tasks[: t + 1]):
                acc[t, j] = float((model(xj).argmax(1) == yj).float().mean())
    return acc


@pytest.mark.parametrize("seed", [0, 3])
def test_projection_forgets_less_than_finetuning(seed):
    gen = torch.Generator().manual_seed(seed)
    tasks = []
    for _ in range(3):  # each task lives in its own random 4-dim input subspace
        x, basis = low_rank(384, 24, 4, gen, noise=0.02)
        w = torch.randn(4, 3, generator=gen)
        tasks.append((x, ((x @ basis) @ w).argmax(1)))

    def bwt(acc):
        return float(np.mean([acc[-1, j] - acc[j, j] for j in range(len(acc) - 1)]))

    results = {}
    for name, strategy in {
        "finetune": FineTune(),
        "hlop": HLOP(lateral=[5, 8, 6], added=[5, 6, 4], lr=[0.01, 0.05, 0.1]),
        "gpm": GPM(threshold=0.99),
    }.items():
        acc = _run_stream(strategy, tasks, TinyMLP(sizes=(24, 32, 16, 3), seed=1), epochs=6)
        results[name] = (bwt(acc), acc[-1].mean(), np.diag(acc).min())
    assert results["finetune"][0] < -0.1, results
    assert results["hlop"][0] > -0.05 and results["gpm"][0] > -0.05, results
    assert results["hlop"][1] > results["finetune"][1] + 0.05, results  # ACC
    assert results["hlop"][2] > 0.8, results  # the projected tasks still learn


@pytest.mark.parametrize("method", ["dsr", "bptt", "ottt"])
def test_strategies_on_spiking_mlp(method):
    from neuro.snn.neurons import SpikingMLP

    gen = torch.Generator().manual_seed(0)
    x_old, _ = low_rank(512, 12, 3, gen, noise=0.01)
    x_old = x_old.clamp(0.0, 1.0)  # rates for the direct encoder
    for strategy in (HLOP(lateral=[5, 8], added=2, lr=[0.01, 0.01]), GPM(threshold=0.99)):
        torch.manual_seed(0)
        net = SpikingMLP(sizes=(12, 16, 3), method=method, T=4)
        strategy.before_task(net, 0)
        for _ in range(5):
            for xb in batches(x_old, 64):
                net(xb)
                strategy.observe(net)
        strategy.after_task(net, 0, batches(x_old, 128))
        strategy.before_task(net, 1)
        net.zero_grad()
        x_new, y_new = torch.rand(64, 12, generator=gen), torch.randint(0, 3, (64,), generator=gen)
        F.cross_entropy(net(x_new), y_new).backward()
        raw = net.linear_layers()[0].weight.grad.clone()
        strategy.after_backward(net)
        g = net.linear_layers()[0].weight.grad
        for layer, basis in zip(net.linear_layers(), strategy.subspace_bases(), strict=True):
            assert (layer.weight.grad @ basis).norm() < 0.05 * layer.weight.grad.norm()
        # the input layer's response to old inputs barely moves
        assert (x_old @ g.T).norm() < 0.1 * (x_old @ raw.T).norm()


# ---------------------------------------------------------------- errors


def test_strategy_errors():
    with pytest.raises(InputTypeError, match="linear_layers"):
        HLOP().before_task(nn.Linear(3, 2), 0)
    model = TinyMLP()
    with pytest.raises(InputError, match="one count per linear layer \\(3\\); got 2"):
        HLOP(lateral=[2, 2], added=1).before_task(model, 0)
    with pytest.raises(InputError, match="layer 0: 10 \\+ 5 lateral neurons"):
        hlop = HLOP(lateral=[10, 2, 2], added=[5, 1, 1], lr=0.01)
        hlop.before_task(model, 0)
        hlop.after_task(model, 0, [])
        hlop.before_task(model, 1)
    with pytest.raises(InputError, match="start the stream at task 0"):
        HLOP(lateral=2, added=1).before_task(model, 1)
    hlop = HLOP(lateral=2, added=1, lr=0.01)
    hlop.before_task(model, 0)
    with pytest.raises(InputError, match="run a forward pass first"):
        hlop.observe(model)
    model.presynaptic = [torch.zeros(4, 12), torch.zeros(4, 8), torch.zeros(4, 7)]
    with pytest.raises(InputError, match=r"presynaptic\[1\] must have shape \(batch, 9\)"):
        hlop.observe(model)
    with pytest.raises(InputError, match="lateral must be an integer >= 1"):
        HLOP(lateral=0)
    with pytest.raises(InputError, match=r"threshold\[0\] must be > 0.0"):
        GPM(threshold=0.0)
    with pytest.raises(InputError, match="threshold\\[0\\] must be <= 1.0"):
        GPM(threshold=[1.5, 0.9])
    with pytest.raises(InputError, match="holds no batches"):
        GPM().after_task(TinyMLP(), 0, [])
    with pytest.raises(InputTypeError, match="loss_fn must be callable"):
        EWC(loss_fn=None)
    with pytest.raises(InputError, match="EWC needs the task's data"):
        EWC(lambda m, b: m(b).sum()).after_task(TinyMLP(), 0, [])
    with pytest.raises(InputTypeError, match="each activity batch"):
        GPM().after_task(TinyMLP(), 0, [[np.zeros((2, 12))]])


def test_check_capacity_runs_the_whole_schedule_up_front():
    hlop = HLOP(lateral=[4, 2], added=pmnist_added_schedule(5, [3, 1], shrink=1, every=2))
    assert hlop.check_capacity([16, 8], 5) == [4 + 3 + 2 + 2 + 1, 2 + 1 + 0 + 0 + 0]
    assert hlop.check_capacity([16, 8], 1) == [4, 2]
    with pytest.raises(InputError, match=r"lateral: layer 1 reads 8 inputs but is given 9"):
        HLOP(lateral=[4, 9], added=1).check_capacity([16, 8], 2)
    with pytest.raises(
        InputError, match=r"added: layer 0 \(16 inputs\) would hold 19 .* task 3 of 4"
    ):
        HLOP(lateral=[4, 2], added=[5, 1]).check_capacity([16, 8], 4)
    with pytest.raises(InputError, match="added gives neurons for tasks 1..2 only; task 3"):
        HLOP(lateral=2, added=[[1, 1], [1, 1]]).check_capacity([16, 8], 4)
