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
# # Neuroformer: generative pretraining on spikes, checked against a circuit we built
#
# Neuroformer (Antoniades et al., ICLR 2024) treats a population's spikes as
# a language. Every spike is a token, *which neuron fired* plus *when in the
# window*, and a transformer learns to predict the next spike of the current
# 50 ms window from the spikes so far, the spikes of the window before and the
# stimulus on screen. Pretrained this way, the same network can
#
# * **generate** spike trains,
# * expose **connectivity**: which past neurons a predicted neuron attends to,
# * be **fine-tuned** to decode behaviour from few labels.
#
# Each claim is checked here on a simulated circuit whose answer we know (its
# connections, its hubs and the behaviour it drives), and each against a
# plain baseline: a Poisson GLM with coupling filters for generation and
# connectivity, pairwise correlations (the paper's connectivity baseline)
# and a ridge decoder on binned counts for behaviour. Where a baseline does
# better, this notebook says so.
#
# *Run time on a 2-core CPU: about 2 min at full size, about 25 s with the test
# suite's small settings (`NEURO_TUTORIAL_SMALL=1`).* The same pipeline, with
# every output written to disk, is `python scripts/neuroformer_simulated_circuit.py`.

# %%
# %matplotlib inline
import os

import matplotlib.pyplot as plt
import numpy as np

from data_loaders.simulate.spikes import simulate_spiking_circuit
from data_loaders.spikes import SpikeTrains, split_intervals
from neuro.spikes import (
    Neuroformer,
    PoissonGLM,
    RidgeDecoder,
    connectivity_auroc,
    correlation_connectivity,
    generation_statistics,
)

# The test suite sets NEURO_TUTORIAL_SMALL=1 to run the same code with smaller numbers.
SMALL = os.environ.get("NEURO_TUTORIAL_SMALL") == "1"
N_NEURONS, DURATION, D_MODEL, EPOCHS = (12, 40.0, 32, 3) if SMALL else (20, 120.0, 64, 8)
SEED = 0

# %% [markdown]
# ## A circuit with hubs
# `simulate_spiking_circuit` runs a Poisson-GLM network in 10 ms bins: each
# neuron has a baseline rate, a Gabor receptive field on a grating movie
# (20 frames per second), a refractory period, and couplings from other
# neurons delivered 1 to 3 bins after they fire. A few excitatory **hubs**
# project to 60% of the circuit; other pairs connect with probability 5%.
# `adjacency[i, j]` is the effect of neuron `j` on neuron `i`. A behaviour
# variable is read out from the smoothed population activity.

# %%
sim = simulate_spiking_circuit(n_neurons=N_NEURONS, n_hubs=3, duration=DURATION, seed=SEED)
rec = sim.recording
off = ~np.eye(sim.n_neurons, dtype=bool)
print(
    f"{sim.n_neurons} neurons, {len(sim.spikes)} spikes in {DURATION:g} s "
    f"({sim.spikes.firing_rates().mean():.1f} Hz on average)"
)
print(
    f"{int((sim.adjacency[off] != 0).sum())} connections; hubs {sim.hubs.tolist()}, "
    f"each driving {(sim.adjacency[:, sim.hubs] != 0).sum(0).tolist()} neurons"
)

fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), gridspec_kw={"width_ratios": [2.2, 1, 1]})
part = sim.spikes.window(10.0, 13.0)
is_hub = np.isin(part.neuron_ids, sim.hubs)
axes[0].scatter(part.times, part.neuron_ids, marker="|", c=np.where(is_hub, "red", "black"))
axes[0].set(xlabel="time (s)", ylabel="neuron", title="spikes (hubs in red)")
lim = np.abs(sim.adjacency).max()
axes[1].imshow(sim.adjacency, cmap="RdBu_r", vmin=-lim, vmax=lim)
axes[1].set(xlabel="source j", ylabel="target i", title="true adjacency")
axes[2].plot(rec.behavior_times, rec.behavior[:, 0], lw=0.8)
axes[2].set(xlim=(10, 13), xlabel="time (s)", title="behaviour (a population readout)")
fig.tight_layout()
plt.show()

# %% [markdown]
# The hubs are the red rows of the raster and the full columns of the
# adjacency: when a hub fires, many neurons fire 10-30 ms later.
#
# ## Spikes as tokens
# The recording is cut into 20 intervals dealt into training, validation and
# test sets (80/10/10, drawn without replacement, so nothing held out leaks
# into training; the paper's reference code sampled with replacement). A
# sample ends at an *anchor* `t`: its current window is `[t - 50 ms, t)` and
# its past window the 150 ms before that. Each window becomes a sequence
# `SOS, (neuron, dt), ..., EOS`, where `dt` is the spike's offset in 10 ms bins
# from the window start.

# %%
split = split_intervals(sim.spikes.t_start, sim.spikes.t_stop, n_intervals=20, seed=SEED)
print("test intervals (s):", [(round(a, 1), round(b, 1)) for a, b in split.test])

nf = Neuroformer(
    d_model=D_MODEL,
    n_heads=4,
    block_size=48,
    past_block_size=96,
    epochs=EPOCHS,
    lr=2e-3,
    device="cpu",
    random_state=SEED,
)
nf.fit(rec, intervals=split.train, val_intervals=split.val)

tok = nf.tokenizer_
anchor = tok.anchors(*split.train[0])[5]
sample = tok.encode(sim.spikes, [anchor])
real = sample["ids"][0] != tok.pad_id
print(f"current window ending at {anchor:.2f} s:")
print("  neuron ids:", sample["ids"][0][real].tolist(), f"(SOS = {tok.sos_id}, EOS = {tok.eos_id})")
print("  dt (bins): ", sample["dts"][0][real].tolist(), "(SOS and EOS carry their own dt codes)")

# %% [markdown]
# ## Pretraining: does it predict the next spike?
# The network (one causal self-attention block over the current window, one
# cross-attention block to the past window and one to the stimulus frames,
# one final block, then the neuron-id and dt heads) was trained above with
# early stopping on the validation intervals. The test is the held-out
# **next-neuron cross-entropy**: a model that knows only how often each
# neuron fires scores the entropy of the firing frequencies; anything lower
# is knowledge of the circuit or the stimulus. The GLM's cross-entropy of a
# spike's identity is comparable.

# %%
history = nf.history_
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot([h["epoch"] for h in history], [h["train_id_loss"] for h in history], "o-", label="train")
ax.plot([h["epoch"] for h in history], [h["val_id_loss"] for h in history], "o-", label="val")
ax.set(xlabel="epoch", ylabel="next-neuron loss (nats)", title="pretraining")
ax.legend()
plt.show()

glm = PoissonGLM(device="cpu").fit(rec, intervals=split.train)
ce = nf.cross_entropy(rec, split.test)
print(
    f"held-out next-neuron cross-entropy: Neuroformer {ce['id_cross_entropy']:.3f} nats, "
    f"GLM {glm.id_cross_entropy(rec, split.test):.3f}, "
    f"firing frequencies alone {ce['frequency_entropy']:.3f}"
)

# %% [markdown]
# ## Generation: true vs generated spikes
# `generate` samples each current window token by token (with a key/value
# cache) from the *true* past window and stimulus, so the comparison is
# window by window. The GLM generates the same way from its own history and
# the stimulus. We compare the firing rates across neurons and the pairwise
# correlations (50 ms bins) across pairs with the real test spikes.

# %%
windows = [(a + nf.past_window, b) for a, b in split.test]
generated = nf.generate(rec, split.test, seed=SEED)
parts = [glm.simulate(rec, a, b, seed=SEED) for a, b in windows]
glm_spikes = SpikeTrains.from_arrays(
    np.concatenate([p.neuron_ids for p in parts]),
    np.concatenate([p.times for p in parts]),
    n_neurons=sim.n_neurons,
    t_start=sim.spikes.t_start,
    t_stop=sim.spikes.t_stop,
)
stats = {
    "Neuroformer": generation_statistics(sim.spikes, generated, intervals=windows),
    "GLM": generation_statistics(sim.spikes, glm_spikes, intervals=windows),
}
for name, s in stats.items():
    print(
        f"{name:>11}: rates r {s['rate_r']:.2f} ({s['generated_rate_hz']:.1f} Hz vs real "
        f"{s['real_rate_hz']:.1f}), pairwise correlations r {s['correlation_r']:.2f}"
    )

a, b = windows[0]
shown = (a, min(b, a + 2.0))
trains = {"recorded": sim.spikes, "Neuroformer": generated, "Poisson GLM": glm_spikes}
fig, axes = plt.subplots(3, 1, figsize=(10, 5.5), sharex=True)
for ax, (name, spikes) in zip(axes, trains.items(), strict=True):
    w = spikes.window(*shown)
    ax.scatter(
        w.times,
        w.neuron_ids,
        marker="|",
        c=np.where(np.isin(w.neuron_ids, sim.hubs), "red", "black"),
    )
    ax.set(ylabel="neuron", title=f"{name} (test window)")
axes[-1].set(xlabel="time (s)", xlim=shown)
fig.tight_layout()
plt.show()

# %% [markdown]
# Both models get the rates roughly right, since rates follow the stimulus
# and each neuron's baseline. Pairwise correlations are harder: they need the
# couplings. On this circuit at this size the GLM, which has exactly the
# simulator's form, usually reproduces them better than the small
# Neuroformer; compare the two `correlation r` lines above.
#
# ## Connectivity from attention
# For every predicted spike of neuron `i`, `connectivity` sums the
# cross-attention its query puts on each past-window neuron `j`, over the
# test data, and divides by what uniform attention would give (so 1 is
# chance and frequent firers are not mistaken for hubs). The AUROC says how
# well each matrix ranks the true connections above the non-connections
# (0.5 is chance).

# %%
estimates = {
    "attention": nf.connectivity(rec, split.test),
    "correlation": correlation_connectivity(rec, intervals=split.train),
    "GLM coupling": glm.coupling_,
}
auroc = {
    name: connectivity_auroc(
        np.nan_to_num(m, nan=1.0 if name == "attention" else 0.0), sim.adjacency
    )
    for name, m in estimates.items()
}


def top_sources(matrix, k):
    """The k neurons with the strongest mean outgoing |estimate| (off the diagonal)."""
    m = np.abs(np.array(matrix, dtype=float))
    np.fill_diagonal(m, np.nan)
    return sorted(np.argsort(-np.nan_to_num(np.nanmean(m, axis=0), nan=-1))[:k].tolist())


fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
axes[0].imshow(sim.adjacency, cmap="RdBu_r", vmin=-lim, vmax=lim)
axes[0].set_title("true adjacency")
for ax, (name, m) in zip(axes[1:], estimates.items(), strict=True):
    shown_m = np.array(m, dtype=float)
    np.fill_diagonal(shown_m, np.nan)
    ax.imshow(shown_m, cmap="viridis" if name == "attention" else "RdBu_r")
    ax.set_title(f"{name}: AUROC {auroc[name]:.2f}")
for ax in axes:
    ax.set(xlabel="source j", ylabel="target i")
fig.tight_layout()
plt.show()
print("true hubs:", sim.hubs.tolist())
for name, m in estimates.items():
    print(f"{name:>13}: AUROC {auroc[name]:.2f}, strongest sources {top_sources(m, 3)}")

# %% [markdown]
# Correlations are symmetric and dominated by the shared stimulus drive, so
# they hardly see the directed couplings. At full size attention ranks the
# true connections clearly above chance and above correlations (our run:
# AUROC 0.70 against 0.45, with two of the three hubs among attention's three
# strongest sources; the test suite's small settings train too briefly to
# show it). The GLM's coupling filters, fitted by maximum likelihood in
# exactly the simulator's model class, recover the circuit best (0.95) and
# name all three hubs.
#
# But an AUROC can be earned in two ways: by knowing *which* neurons each
# source drives, or only by making some neurons strong sources of everyone
# (the bright columns of the attention matrix). Hubs make the second pay,
# since they hold most of the edges. Subtracting each source's mean over its
# targets keeps only the first kind:


# %%
for name, m in estimates.items():
    fill = 1.0 if name == "attention" else 0.0
    score = np.nan_to_num(m, nan=fill)
    within = connectivity_auroc(score, sim.adjacency, within_source=True)
    print(f"{name:>13}: AUROC {auroc[name]:.2f}, within sources {within:.2f} (chance 0.50)")

# %% [markdown]
# In our full-size run attention's AUROC within sources is 0.50, chance,
# while the GLM's stays at 0.81: all of attention's score comes from how
# strongly it weights each source overall. And that weighting is not the
# circuit's: the script's null run (`--coupling 0`, the same neurons and
# stimulus with no connection at all) trains an attention matrix with the
# same bright columns (r 0.91 with this one), which scores AUROC 0.75
# against this circuit's adjacency, more than the connected circuit's own
# attention. On this circuit, then, attention shows which neurons the model
# leans on (something about their rates and stimulus drive), not who drives
# whom; the GLM does recover the connections. The paper compared attention
# against correlations only; a GLM, and a null circuit, are the fairer
# controls.
#
# ## Few-shot behaviour decoding
# The paper's headline downstream use: fit a behaviour head on the
# pretrained features with few labels. `fit_behavior(max_samples=k)` draws
# `k` labelled windows from the training intervals and fits a ridge head on
# their pooled features; `n_windows=10` lets the head read the 10 windows
# up to each sample (0.5 s, as the behaviour integrates activity over about
# 0.25 s), and `unfreeze=k` would also fine-tune the last `k` final blocks.
# The ridge decoder reads the same 0.5 s as binned counts (10 bins of
# 50 ms) at the same labelled times (`times=nf.behavior_times_`). Both are
# scored on the test intervals.

# %%
fractions = [0.05, 1.0] if SMALL else [0.01, 0.05, 0.1, 1.0]
n_pool = sum(len(tok.anchors(a, b)) for a, b in split.train)
curve = {"Neuroformer head": [], "ridge decoder": []}
for fraction in fractions:
    k = max(round(fraction * n_pool), 4)
    nf.fit_behavior(rec, split.train, max_samples=k, n_windows=10)
    curve["Neuroformer head"].append(np.mean(nf.behavior_score(rec, split.test)))
    ridge = RidgeDecoder(device="cpu").fit(rec, times=nf.behavior_times_)
    curve["ridge decoder"].append(np.mean(ridge.correlation_score(rec, split.test)))
    print(
        f"{k:>5} labels ({100 * fraction:g}%): Neuroformer r {curve['Neuroformer head'][-1]:.2f}, "
        f"ridge r {curve['ridge decoder'][-1]:.2f}"
    )

fig, ax = plt.subplots(figsize=(5.5, 3.6))
for name, values in curve.items():
    ax.plot([100 * f for f in fractions], values, "o-", label=name)
ax.set(
    xscale="log",
    xlabel="training labels used (%)",
    ylabel="held-out r",
    title="few-shot behaviour decoding",
)
ax.legend()
plt.show()

# %% [markdown]
# With all the labels the two decoders tie (both about 0.9 at full size):
# the pretrained features, read over the same 0.5 s, carry the behaviour.
# With a few dozen labels both are noisy and one draw can go either way; the
# script averages draws, and at its default size the ridge decoder is well
# ahead below 100 % of the labels, and fine-tuning the last block changes
# little. That is what this simulator should give: its behaviour is by
# construction a *linear* readout of the smoothed spike counts, exactly the
# ridge decoder's model, while Neuroformer's features were trained for
# another job (predicting the next spike). The paper's few-shot claim is
# about real recordings and a far larger pretrained model; a small simulated
# circuit whose behaviour is linear in the counts cannot test it, and we do
# not pretend it does.
#
# ## What the paper did at scale
# * **Data**: recordings of neural populations with their visual stimulus
#   (each sample carries the 3 frames of 30 x 100 pixels before its window,
#   0.15 s at 20 Hz) and behaviour variables as further modalities, plus a
#   simulated circuit with hub neurons for the connectivity check, compared
#   there against a correlation matrix.
# * **Model**: width 256, 8 heads, about 6 blocks per stage; current block
#   100 tokens, past block up to 700; the stimulus through a Conv3d patch
#   embedding (3 x 5 x 5) and its own self-attention blocks (about 25M
#   parameters with the video encoder and contrastive heads, 15.5M for
#   spikes alone). Here: `neuro.spikes.PAPER_SIZE`, or the script's
#   `--paper-size` (for a GPU).
# * **Training**: AdamW, lr 1e-4, weight decay 1.0, batch 160, gradient
#   clipping at 1.0, with an optional contrastive loss (InfoNCE, temperature
#   0.5) aligning the neural features with the stimulus and behaviour
#   (`Neuroformer(contrastive_dim=...)`); few-shot fine-tuning of a behaviour
#   head is the headline downstream use.
# * **Where this implementation departs from the public code**: padding is
#   masked in attention (the reference attends to padded past slots); the
#   train/test split draws intervals without replacement (the reference
#   sampled with replacement, so test windows could leak into training); the
#   id and dt loss weights are what they claim to be (a truthiness bug fixes
#   them in the reference).
#
# The checks above are the ones a CPU can make: the model learns more than
# firing frequencies, generates plausible rates, and its attention ranks the
# planted connections above chance and above correlations, but by how strongly
# it weights each source, not by knowing who drives whom; the baselines that
# match the simulator's form (the GLM, the ridge decoder) stay ahead on this
# kind of data.
