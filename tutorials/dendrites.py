# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Active dendrites and sparse patterns
#
# A pyramidal neuron's dendritic segment fires an NMDA spike when about 8 to 20
# of its synapses are active together. Ahmad & Hawkins (2016) asked how reliably
# such a segment, sampling `s` cells of a population of `n`, recognises a sparse
# pattern of `a` active cells with a threshold `theta`, and how much noise and
# how many stored patterns it tolerates. This tutorial computes their numbers
# exactly (`neuro.dendrites.theory`), checks them by simulation, builds neurons
# from such segments, and trains the active-dendrites network of Iyer et al.
# (2022) with the shared `Trainer`.
#
# *Run time on a 2-core CPU: about 30 s at full size (as `make notebooks` runs it),
# about 10 s with the test suite's small settings (`NEURO_TUTORIAL_SMALL=1`).*

# %%
import itertools
import os

import matplotlib.pyplot as plt
import numpy as np
import torch

from neuro.dendrites import (
    ActiveDendritesNetwork,
    DendriticNeuronLayer,
    false_match_probability,
    log_false_match_probability,
    noise_match_probability,
    optimal_threshold,
    simulate_false_match,
    simulate_noise_match,
    union_false_match_probability,
)
from neuro.train import Trainer

# The test suite sets NEURO_TUTORIAL_SMALL=1 to run the same code with smaller numbers.
SMALL = os.environ.get("NEURO_TUTORIAL_SMALL") == "1"
TRIALS = 5_000 if SMALL else 100_000
EPOCHS = 10 if SMALL else 40

# %% [markdown]
# ## How often does a random pattern fool a segment?
# A segment with `s = 30` synapses and threshold 15, in a population of 2000
# cells with 32 active: the false-match probability is the fraction of the
# `C(2000, 32)` possible patterns that overlap the segment in 15 cells or more.
# The exact value (integer arithmetic) is far below what naive floats resolve,
# and the log-space path agrees with it to about 1e-13 while scaling to whole
# sweeps and to probabilities beyond float64's range.

# %%
print(f"P_fm(n=2000, a=32, s=30, theta=15) = {false_match_probability(2000, 32, 30, 15):.5g}")
exact = false_match_probability(16000, 512, 30, 15, exact=True)
fast = false_match_probability(16000, 512, 30, 15, exact=False)
print(f"exact {exact:.15g}, log-space {fast:.15g}, relative difference {abs(fast / exact - 1):.1e}")
log_p = log_false_match_probability(100_000, 1000, 300, 300)
print(f"a probability below float64: log10 P = {log_p / np.log(10):.1f}")

# %% [markdown]
# ## Check by simulation
# Draw random patterns and segments and count the matches; the theory should lie
# inside the 99.9% confidence interval. The simulation runs in torch, in
# batches, on any device.

# %%
for n, a, s, theta in [(300, 128, 24, 12), (500, 256, 24, 12), (2000, 32, 4, 2)]:
    r = simulate_false_match(n, a, s, theta, trials=TRIALS, device="auto", seed=0)
    p = false_match_probability(n, a, s, theta)
    print(
        f"n={n:5d} a={a:3d} s={s:2d} theta={theta:2d}: theory {p:.5f}, simulated "
        f"{r.estimate:.5f} [{r.ci_low:.5f}, {r.ci_high:.5f}], inside: {r.contains(p)}"
    )

# %% [markdown]
# ## Noise: the price of a high threshold
# If noise replaces a fraction of the stored pattern's cells, the segment may
# miss it. A low threshold is robust to noise but lets more random patterns
# through; the optimal threshold balances the two errors.

# %%
noise = np.linspace(0, 1, 65)
thetas = np.array([8, 12, 16, 20])[:, None]
match = noise_match_probability(2000, 128, 30, thetas, noise[None, :])
r = simulate_noise_match(2000, 128, 30, 12, 0.5, trials=TRIALS, seed=1)
print(f"theta=12, 50% noise: theory {match[1, 32]:.4f}, simulated {r.estimate:.4f}")
print(
    "optimal theta at 10%, 30%, 50% noise:",
    [int(optimal_threshold(2000, 128, 30, x)) for x in (0.1, 0.3, 0.5)],
)

# %% [markdown]
# ## The union property: many patterns on one segment
# A segment that stores M patterns (s synapses each) covers more cells and so
# matches more random patterns. How many patterns fit before false matches climb?

# %%
m = np.arange(1, 31)
union = union_false_match_probability(np.array([1000, 4000, 16000])[:, None], 200, 25, 15, m)
print("M with P_fm < 1e-3 at n=16000:", int(m[union[2] < 1e-3].max()))

# %% [markdown]
# ## Neurons made of segments
# A `DendriticNeuronLayer` stores a pattern on a segment by sampling `s` of its
# active cells. Here each neuron stores one pattern and sees noisy versions of
# it; it recognises them at the rate the theory predicts. The same layer is a
# sequence memory: cells of each element learn segments on the previous one, so
# an element predicts its successor.

# %%
rng = np.random.default_rng(0)
n, a, s, theta, frac = 500, 40, 20, 10, 0.5
n_patterns = 20 if SMALL else 100
layer = DendriticNeuronLayer(n, n_patterns, n_segments=1, synapses=s, threshold=theta)
stored = np.zeros((n_patterns, n), dtype=np.float32)
for i in range(n_patterns):
    stored[i, rng.choice(n, a, replace=False)] = 1
    layer.learn(stored[i], neuron=i)
noisy = stored.copy()
v = round(frac * a)
for row in noisy:
    on, off = np.flatnonzero(row), np.flatnonzero(row == 0)
    row[rng.choice(on, v, replace=False)] = 0
    row[rng.choice(off, v, replace=False)] = 1
fired = layer(torch.from_numpy(noisy)).numpy()
print(
    f"recognised {np.diag(fired).mean():.2f} of noisy patterns "
    f"(theory {noise_match_probability(n, a, s, theta, frac):.2f}); "
    f"false alarms {fired[~np.eye(n_patterns, dtype=bool)].mean():.4f} "
    f"(theory {false_match_probability(n, a, s, theta):.4f})"
)

sequence = np.zeros((4, n), dtype=np.float32)
for row in sequence:
    row[rng.choice(n, a, replace=False)] = 1
memory = DendriticNeuronLayer(n, n, n_segments=4, synapses=s, threshold=theta)
for current, following in itertools.pairwise(sequence):
    for cell in np.flatnonzero(following):
        memory.learn(current, neuron=int(cell))
predicted = memory(torch.from_numpy(sequence[:-1])).numpy()
print("each element predicts the next:", bool((predicted == sequence[1:]).all()))

# %% [markdown]
# ## Active dendrites gate a network by context
# Two tasks ask for opposite outputs, `y = w.x` and `y = -w.x`, told apart only by
# a context vector. An ungated model can only average them; in the active-dendrites
# network each hidden unit's segments read the context and gate the unit, so
# each task gets its own sub-network.

# %%
n_samples, dim_in, dim_context = 800, 7, 9
x = rng.standard_normal((n_samples, dim_in)).astype(np.float32)
task = rng.integers(0, 2, n_samples)
context = (
    rng.standard_normal((2, dim_context))[task]
    + 0.1 * rng.standard_normal((n_samples, dim_context))
).astype(np.float32)
y = (np.where(task == 0, 1.0, -1.0) * (x @ rng.standard_normal(dim_in)))[:, None].astype(np.float32)
train, val = (x[:600], context[:600], y[:600]), (x[600:], context[600:], y[600:])
torch.manual_seed(0)
net = ActiveDendritesNetwork(dim_in, dim_context, 1, hidden=(32,), n_segments=2)
history = Trainer(max_epochs=EPOCHS, batch_size=50, lr=1e-2, device="auto", verbose=0).fit(
    net, train, val
)
print(f"validation MSE {history[-1]['val_loss']:.3f} (variance of y {y[600:].var():.3f})")

# %% [markdown]
# ## The picture

# %%
fig, axes = plt.subplots(1, 4, figsize=(17, 3.8), layout="constrained")
n_grid = np.arange(300, 3001, 25)
for a_ in (64, 128, 256):
    axes[0].semilogy(n_grid, false_match_probability(n_grid, a_, 24, 12), label=f"a = {a_}")
axes[0].set(
    xlabel="n",
    ylabel="false-match probability",
    title="False matches (s=24, θ=12)",
    ylim=(1e-16, 1),
)
axes[0].legend()
for t, row in zip(thetas[:, 0], match, strict=True):
    axes[1].plot(noise, row, label=f"θ = {t}")
axes[1].set(
    xlabel="fraction of cells replaced",
    ylabel="match probability",
    title="Noise (n=2000, a=128, s=30)",
)
axes[1].legend()
for n_, row in zip((1000, 4000, 16000), union, strict=True):
    axes[2].semilogy(m, row, label=f"n = {n_}")
axes[2].set(
    xlabel="patterns stored M",
    ylabel="false-match probability",
    title="Union (a=200, s=25, θ=15)",
    ylim=(1e-12, 1.5),
)
axes[2].legend()
axes[3].plot([h["epoch"] for h in history], [h["val_loss"] for h in history])
axes[3].axhline(float(y[600:].var()), color="k", ls="--", label="ungated best (variance)")
axes[3].set(
    xlabel="epoch",
    ylabel="validation MSE",
    title="Active dendrites, two conflicting tasks",
    yscale="log",
)
axes[3].legend()
plt.show()
