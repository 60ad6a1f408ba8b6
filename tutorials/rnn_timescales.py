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
# # Where do long memories come from? Neuron timescales vs. network dynamics
#
# A recurrent network can remember the last `N` inputs in two ways: each neuron
# can integrate slowly (a long single-neuron timescale `tau`), or the network's
# connections can hold information that no single neuron holds. Khajehabdollahi
# et al. (ICLR 2024) trained leaky RNNs whose neurons each learn their own `tau`
# on N-parity, raising `N` step by step, and found that the curriculum decides
# which mechanism appears. This tutorial builds the tasks, the network and both
# curricula from `neuro.rnn`, and measures timescales, robustness and
# forgetting, at a size that trains in minutes on a laptop.
#
# *Run time on a 2-core CPU: about 6 min at full size (as `make notebooks` runs it),
# about 20 s with the test suite's small settings (`NEURO_TUTORIAL_SMALL=1`).*

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import torch

from neuro.rnn import (
    CurriculumConfig,
    LeakyRNN,
    ParityEnv,
    ablation_curve,
    evaluate,
    make_batch,
    network_timescales,
    reference_labels,
    retention,
    train_curriculum,
)

# The test suite sets NEURO_TUTORIAL_SMALL=1 to run the same code with smaller numbers.
SMALL = os.environ.get("NEURO_TUTORIAL_SMALL") == "1"
EPOCHS = 6 if SMALL else 40
STEPS = 20 if SMALL else 100
SIM_STEPS = 1_000 if SMALL else 10_000

# %% [markdown]
# ## The tasks
# N-parity shows one bit per step and asks, at the last step, whether the last
# `N` bits hold an odd number of ones. Each sequence draws its own bias
# `p ~ U(0, 1)`, and a batch's length is drawn from `N + 2 ... 4N + 1` (the public code's `randint(N + 2, 4N + 2)`, whose end is excluded).
# `make_batch` is the vectorised generator; `reference_labels` computes the same
# labels one sequence at a time, and they agree.

# %%
gen = torch.Generator().manual_seed(0)
x, y = make_batch("parity", [2, 3, 4], batch_size=5, generator=gen)
print("bits (first sequence):", x[0, :, 0].int().tolist())
print("labels for N = 2, 3, 4:", y[0].tolist())
bits = x[:, :, 0].int().numpy()
assert all(
    (reference_labels(bits, "parity", n) == y[:, j].numpy()).all() for j, n in enumerate([2, 3, 4])
)

# %% [markdown]
# The same task as a gymnasium environment, for agents that act step by step:
# the observation is the current bit, and the action at the final step is the
# answer.

# %%
env = ParityEnv(n=3)
obs, info = env.reset(seed=1)
seen, done = [obs], False
while not done:
    obs, reward, done, _, step_info = env.step(sum(seen[-3:]) % 2)  # answer from memory
    seen.append(obs)
print(f"episode of {info['length']} bits, reward {reward} (label {step_info['label']})")

# %% [markdown]
# ## The network
# `LeakyRNN` updates `h <- LeakyReLU((1 - 1/tau) h + (W_rec h + W_in x) / tau)`
# with one trainable `tau >= 1` per neuron and no self-connections, so a
# neuron's own memory lives in its `tau` alone. An uncoupled neuron driven by
# random bits has the autocorrelation `(1 - 1/tau)^lag`, whose timescale is
# `-1 / log(1 - 1/tau)` (about `tau - 1/2`): the timescale analysis recovers it,
# the check everything else rests on.

# %%
check = LeakyRNN(hidden_size=3, tau_init=(1.0, 1.0))
with torch.no_grad():  # no coupling, positive drive: the LeakyReLU never bends
    check.w_rec.weight.zero_()
    check.w_rec.bias.zero_()
    check.w_in.weight.fill_(1.0)
    check.w_in.bias.zero_()
    check.tau_raw.copy_(torch.tensor([2.0, 5.0, 10.0]))
ts = network_timescales(check, n_steps=SIM_STEPS * 2, n_trials=10)
print("set taus      :", check.taus.tolist())
print(
    "exact timescale:",
    np.round(-1 / np.log(1 - 1 / check.taus.detach().double().numpy()), 2).tolist(),
)
print("fitted         :", np.round(ts.tau_net, 2).tolist())

# %% [markdown]
# ## Two curricula, one budget
# *Single-head*: one readout; train on `N`, move to `N + 1` once accuracy
# passes 98%. *Multi-head*: one readout per `N`, all trained together; a new
# head joins when all pass. Both train with the paper's SGD settings through
# `neuro.train.Trainer` (give `out_dir=` to checkpoint, `resume="last"` to
# continue a killed run).

# %%
base = dict(
    task="parity",
    hidden_size=64,
    n_max=30,
    max_epochs=EPOCHS,
    steps_per_epoch=STEPS,
    batch_size=128,
)
runs = {
    kind: train_curriculum(CurriculumConfig(kind=kind, **base), device="cpu", seed=0)
    for kind in ("single", "multi")
}
for kind, res in runs.items():
    print(
        f"{kind}-head: reached N={res.n_reached} in {len(res.history)} epochs; "
        f"solved at epochs {res.solved_epoch}"
    )

fig, ax = plt.subplots(figsize=(5, 3))
for kind, res in runs.items():
    ax.step(np.arange(1, len(res.history) + 1), res.n_over_epochs(), where="post", label=kind)
ax.set(xlabel="epoch", ylabel="current N", title="curriculum progress")
ax.legend()
plt.show()

# %% [markdown]
# ## Which timescales did each network build?
# For every `N` a network solved we take its snapshot from that moment, read
# its trained `tau`s, and measure each neuron's network-mediated timescale:
# drive it with random bits, take the autocorrelation of its activity and fit
# exponentials (single vs. double, chosen by AIC), as in the paper.

# %%
rows = {}
for kind, res in runs.items():
    rows[kind] = {}
    for n in sorted(res.snapshots):
        t = network_timescales(res.network_at(n), n_steps=SIM_STEPS, n_trials=5)
        rows[kind][n] = t.summary()

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
for kind, by_n in rows.items():
    ns = sorted(by_n)
    axes[0].plot(ns, [by_n[n]["trained_tau_mean"] for n in ns], "o-", label=kind)
    axes[1].plot(ns, [by_n[n]["tau_net_median"] for n in ns], "o-", label=kind)
axes[0].set(xlabel="N", ylabel="mean trained tau", title="single-neuron taus")
axes[1].set(xlabel="N", ylabel="median network timescale", title="network timescales")
axes[0].legend()
plt.show()

# %% [markdown]
# ## Robustness and forgetting
# At the largest `N` both solved, we cut random neurons out of each network and
# measure accuracy; then we ask each final network for every `N` it solved on
# the way. The single-head network answers all of them with its one head,
# trained last on its largest `N`.

# %%
common = max(set(runs["single"].snapshots) & set(runs["multi"].snapshots), default=None)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
for kind, res in runs.items():
    cfg = res.config
    if common is not None:
        curve = ablation_curve(
            res.network_at(common),
            "parity",
            common,
            cfg.head_of(common),
            fractions=(0.0, 0.1, 0.2, 0.3, 0.5),
            n_repeats=2,
        )
        axes[0].plot(curve["fractions"], curve["accuracy"].mean(1), "o-", label=kind)
    acc = retention(res.network, "parity", sorted(res.solved_epoch), cfg.head_of)
    axes[1].plot(list(acc), list(acc.values()), "o-", label=kind)
    if res.solved_epoch:
        final = max(res.solved_epoch)
        print(
            f"{kind}: final accuracy on N={final}: "
            f"{evaluate(res.network, 'parity', final, cfg.head_of(final)):.3f}"
        )
axes[0].set(
    xlabel="fraction of neurons removed", ylabel="accuracy", title=f"ablation at N={common}"
)
axes[1].set(xlabel="N", ylabel="final accuracy", title="retention of earlier N", ylim=(0.4, 1.02))
for ax in axes:
    ax.axhline(0.5, color="grey", ls=":")
    ax.legend()
plt.show()

# %% [markdown]
# ## What to expect, and what to try
# With these settings (64 neurons, 40 epochs of 100 batches, a minute or two)
# the multi-head curriculum climbs further (N = 8 against 6 with seed 0), its
# taus drift toward 1 while its network timescales grow, and it still answers
# every earlier `N`; the single-head network, trained last on its largest `N`,
# is near chance on the earlier ones. `neuro rnn --epochs 250 --steps 100`
# (about 20 minutes on 2 cores) carries both further (N = 26 against 10): the
# single-head network keeps and lengthens a tail of slow neurons and falls to
# near chance when its slowest tenth is removed, while the multi-head network
# keeps 88% accuracy
# (`figures/robustness.png`); the README lists its figures. The paper's networks have
# 500 neurons: run `neuro rnn --hidden 500 --steps 600 --batch-size 256
# --epochs 500` on a GPU, or `python scripts/rnn_timescales.py --help` for
# every option.
