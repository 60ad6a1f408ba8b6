"""Dendritic neurons store and recognise patterns at the theory's rates; active dendrites
gate a network by context and beat an ungated model on conflicting tasks."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from neuro.dendrites import (
    ActiveDendritesLayer,
    ActiveDendritesNetwork,
    DendriticNeuronLayer,
    DendriticSegments,
    clopper_pearson,
    false_match_probability,
    kwinners,
    noise_match_probability,
)
from neuro.errors import InputError, InputTypeError
from neuro.train import Trainer


def _patterns(rng, count, n, a):
    x = np.zeros((count, n), dtype=np.float32)
    for i in range(count):
        x[i, rng.choice(n, a, replace=False)] = 1
    return x


def _noisy(rng, pattern, v):
    on, off = np.flatnonzero(pattern), np.flatnonzero(pattern == 0)
    out = pattern.copy()
    out[rng.choice(on, v, replace=False)] = 0
    out[rng.choice(off, v, replace=False)] = 1
    return out


def test_layer_recognises_noisy_patterns_at_the_theoretical_rate(rng):
    n, a, s, theta, noise = 200, 40, 20, 10, 0.5
    n_patterns, repeats = 60, 40
    layer = DendriticNeuronLayer(n, n_patterns, n_segments=1, synapses=s, threshold=theta, seed=1)
    stored = _patterns(rng, n_patterns, n, a)
    for i, p in enumerate(stored):
        assert layer.learn(p, neuron=i) == (i, 0)
    v = round(noise * a)
    tests = np.stack([_noisy(rng, stored[i], v) for i in range(n_patterns) for _ in range(repeats)])
    target = np.repeat(np.arange(n_patterns), repeats)
    fired = layer(torch.from_numpy(tests)).numpy().astype(bool)  # (trials, neurons)
    hits = fired[np.arange(len(target)), target]
    low, high = clopper_pearson(hits.sum(), hits.size, 0.999)
    assert low <= noise_match_probability(n, a, s, theta, noise) <= high
    # every other neuron sees a pattern unrelated to its segment: a false match
    others = ~np.eye(n_patterns, dtype=bool)[target]
    low, high = clopper_pearson(fired[others].sum(), others.sum(), 0.999)
    assert low <= false_match_probability(n, a, s, theta) <= high


def test_layer_stores_several_patterns_per_neuron_and_a_sequence(rng):
    # sequence memory: each cell of the next pattern learns a segment on the current one
    n, a, s, theta = 300, 30, 15, 10
    seq = _patterns(rng, 4, n, a)
    layer = DendriticNeuronLayer(n, n, n_segments=3, synapses=s, threshold=theta, seed=0)
    for current, nxt in itertools.pairwise(seq):
        for cell in np.flatnonzero(nxt):
            layer.learn(current, neuron=int(cell))
    predicted = layer(torch.from_numpy(seq[:-1])).numpy()
    np.testing.assert_array_equal(predicted, seq[1:])
    assert layer(torch.from_numpy(seq[-1:])).sum() == 0  # nothing follows the last element


def test_layer_state_round_trip_and_shapes(rng):
    layer = DendriticNeuronLayer(17, 5, n_segments=3, synapses=4, threshold=3, seed=2)
    p = _patterns(rng, 2, 17, 6)
    layer.learn(p[0], neuron=4)
    layer.learn(p[1], neuron=4)
    copy = DendriticNeuronLayer(17, 5, n_segments=3, synapses=4, threshold=3)
    copy.load_state_dict(layer.state_dict())
    x = torch.from_numpy(p)
    assert layer.segment_overlaps(x).shape == (2, 5, 3)
    torch.testing.assert_close(copy(x), layer(x))
    assert layer(x)[:, 4].tolist() == [1.0, 1.0]
    assert copy(p).shape == (2, 5)  # numpy input accepted


def test_layer_bad_input(rng):
    with pytest.raises(InputError, match="threshold must be <= synapses"):
        DendriticNeuronLayer(10, 2, 1, synapses=3, threshold=4)
    with pytest.raises(InputError, match="synapses must be <= n_inputs"):
        DendriticNeuronLayer(10, 2, 1, synapses=11, threshold=4)
    layer = DendriticNeuronLayer(10, 2, 1, synapses=3, threshold=2)
    with pytest.raises(InputError, match="active cells"):
        layer.learn(np.eye(10)[0], neuron=0)
    layer.learn(np.ones(10), neuron=0)
    with pytest.raises(InputError, match="no free segment"):
        layer.learn(np.ones(10), neuron=0)
    with pytest.raises(InputError, match="neuron must be an integer <= 1"):
        layer.learn(np.ones(10), neuron=2)
    with pytest.raises(InputError, match="n_inputs=10"):
        layer(torch.ones(2, 9))
    with pytest.raises(InputError, match=r"x must be 2D \(batch, n_inputs\)"):
        layer(np.ones(10))
    with pytest.raises(InputError, match=r"p\[None\]"):
        layer(torch.ones(10))
    with pytest.raises(InputError, match="pattern must have shape"):
        layer.learn(np.ones(12), neuron=1)


def test_active_dendrites_shapes_and_gating():
    torch.manual_seed(0)
    seg = DendriticSegments(n_units=7, n_segments=3, dim_context=9)
    assert seg(torch.randn(5, 9)).shape == (5, 7, 3)
    for selection in ("max", "absmax"):
        layer = ActiveDendritesLayer(6, 7, 9, n_segments=3, k_winners=2, selection=selection)
        out = layer(torch.randn(5, 6), torch.randn(5, 9))
        assert out.shape == (5, 7)
        assert ((out != 0).sum(1) <= 2).all()
        gate = layer.gate(torch.randn(5, 9))
        assert ((gate > 0) & (gate < 1)).all()
    assert kwinners(torch.tensor([[3.0, 1.0, 2.0]]), 1).tolist() == [[3.0, 0.0, 0.0]]


class _Ungated(nn.Module):
    """A linear model of the input and the context, without gating."""

    def __init__(self, dim_in, dim_context):
        super().__init__()
        self.linear = nn.Linear(dim_in + dim_context, 1)

    def training_step(self, batch):
        x, c, y = batch
        return nn.functional.mse_loss(self.linear(torch.cat([x, c], 1)), y)

    def validation_step(self, batch):
        return {"loss": self.training_step(batch)}


def test_active_dendrites_solve_conflicting_tasks(rng):
    # two tasks with opposite targets y = +/- w.x, told apart only by a context vector
    n, dim_in, dim_context = 700, 7, 9
    x = rng.standard_normal((n, dim_in)).astype(np.float32)
    task = rng.integers(0, 2, n)
    prototypes = rng.standard_normal((2, dim_context))
    context = (prototypes[task] + 0.1 * rng.standard_normal((n, dim_context))).astype(np.float32)
    y = (np.where(task == 0, 1.0, -1.0) * (x @ rng.standard_normal(dim_in)))[:, None]
    y = y.astype(np.float32)
    train, val = slice(0, 600), slice(600, None)
    data = [(x[i], context[i], y[i]) for i in (train, val)]
    settings = {"max_epochs": 12, "batch_size": 50, "lr": 1e-2, "device": "cpu", "verbose": 0}

    torch.manual_seed(0)
    net = ActiveDendritesNetwork(dim_in, dim_context, 1, hidden=(32,), n_segments=2)
    gated = Trainer(**settings).fit(net, *data)[-1]["val_loss"]
    torch.manual_seed(0)
    plain = Trainer(**settings).fit(_Ungated(dim_in, dim_context), *data)[-1]["val_loss"]
    variance = float(y[val].var())
    assert plain > 0.8 * variance  # the ungated model cannot do better than the mean
    assert gated < 0.1 * variance
    assert gated < 0.1 * plain


def test_active_dendrites_classification_step():
    torch.manual_seed(0)
    net = ActiveDendritesNetwork(
        5, 4, 3, hidden=(8, 6), n_segments=2, k_winners=[4, 3], loss="cross_entropy"
    )
    batch = (torch.randn(10, 5), torch.randn(10, 4), torch.randint(0, 3, (10,)))
    metrics = net.validation_step(batch)
    assert set(metrics) == {"loss", "accuracy"}
    net.training_step(batch).backward()
    with pytest.raises(InputError, match="one value per hidden layer"):
        ActiveDendritesNetwork(5, 4, 3, hidden=(8, 6), k_winners=[4])
    with pytest.raises(InputTypeError, match="hidden must be a sequence"):
        ActiveDendritesNetwork(5, 4, 3, hidden=8)
    with pytest.raises(InputError, match="context must have shape"):
        net(torch.randn(10, 5), torch.randn(10, 3))
    with pytest.raises(InputError, match="same batch size"):
        net(torch.randn(10, 5), torch.randn(9, 4))
    with pytest.raises(InputError, match="dim_out must be an integer >= 1"):
        ActiveDendritesLayer(6, 0, 9, n_segments=3)
