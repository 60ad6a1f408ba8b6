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
# # Dynamic functional connectomes
#
# Which neurons interact, when, and in which animals? Following Dyballa et al.
# (ICLR 2024) we turn calcium traces of several animals into a tensor of
# pairwise affinities (time x animals x neuron pairs), factorise it by
# non-negative CP (HALS, in torch), and partition each component's pair factor
# into communities with a degree-corrected exponential-weight stochastic block
# model (the paper used graph-tool's). The method needs identified cells:
# neuron `i` is the same cell in every animal. Here the traces are simulated
# with planted communities that interact only during their stimulus epochs
# and only in some animals, so we can check what the method finds.
#
# *Run time on a 2-core CPU: about 1 min at full size (as `make notebooks` runs it),
# about 20 s with the test suite's small settings (`NEURO_TUTORIAL_SMALL=1`).*

# %%
# %matplotlib inline
import os

import matplotlib.pyplot as plt

from data_loaders.simulate.calcium import simulate_calcium
from neuro.connectome import DynamicConnectome, split_half_stability
from neuro.connectome.affinity import check_bins
from neuro.connectome.groundtruth import evaluate_recovery
from neuro.connectome.plots import plot_affinity_matrices, plot_factors, plot_rank_selection

# The test suite sets NEURO_TUTORIAL_SMALL=1 to run the same code with smaller numbers.
SMALL = os.environ.get("NEURO_TUTORIAL_SMALL") == "1"
N_NEURONS, N_FRAMES = (24, 1200) if SMALL else (40, 2400)

# %% [markdown]
# ## Simulated animals
# Four animals; three communities, each active in its own stimulus epoch and
# absent from one animal; noise sd 0.3 of a spike's calcium peak.

# %%
sim = simulate_calcium(n_animals=4, n_neurons=N_NEURONS, n_frames=N_FRAMES, noise=0.3, seed=0)
data = sim.data
print(data.shape, data.epoch_names)
print("planted animals per community:\n", sim.truth.animals.astype(int))

# %% [markdown]
# ## How long should a time bin be?
# A bin shows a community only if it holds events its members share. The
# default bin is 2 s (`bin_size` is in seconds); `check_bins` counts events
# per neuron per bin and says when bins are too short (`fit` warns then).

# %%
for seconds in (0.2, 2.0):
    frames = round(seconds * data.sampling_rate)
    print(check_bins(data, frames, device="cpu").message())

# %% [markdown]
# ## Fit, choosing the rank from error and stability

# %%
model = DynamicConnectome(rank=None, ranks=(2, 3, 4, 5), n_restarts=3, device="cpu").fit(data)
print(model.rank_selection_.format_table())
fig = plot_rank_selection(model.rank_selection_)
fig

# %% [markdown]
# ## When and in whom: time factors with the epochs shaded, animal loadings

# %%
plot_factors(model)

# %% [markdown]
# ## Who: each component's affinities sorted by community, and the recovery

# %%
rec = evaluate_recovery(model, sim.truth)
for row in rec["communities"]:
    print(row)
print("ARI of all communities:", round(rec["ari_all"], 3))
fig = plot_affinity_matrices(model)
plt.show()
fig

# %% [markdown]
# ## Do halves of the animals find the same connectome?
# `split_half_stability` refits on random halves of the animals and pairs
# their components. Shared communities give correlated pair factors; traces
# without shared drive (`event_rate=0`) do not, and their halves find no
# communities.

# %%
n_splits = 1 if SMALL else 3
planted = split_half_stability(data, model=model, n_splits=n_splits)
print(planted.format_table())
null = simulate_calcium(
    n_animals=4,
    n_neurons=N_NEURONS,
    n_frames=N_FRAMES,
    noise=0.3,
    event_rate=0.0,  # no shared events: independent spikes only
    baseline_rate=0.2,
    seed=0,
)
shuffled = split_half_stability(null.data, n_splits=n_splits, rank=model.rank_, device="cpu")
print(shuffled.format_table())

# %% [markdown]
# ## Keep the model and its report
# `model.save` writes the fitted model to one file (`DynamicConnectome.load`
# gives it back exactly); `model.report(...)` gathers what it found, and its
# `save(folder)` writes the factor and community tables, one GraphML graph per
# component, `metrics.json` and the figures.

# %%
import tempfile
from pathlib import Path

folder = Path(tempfile.mkdtemp())
loaded = DynamicConnectome.load(model.save(folder / "model.pt"))
assert loaded.score() == model.score()
report = loaded.report(truth=sim.truth)
print(report.format_table())
print(sorted(p.name for p in report.save(folder / "report", figures=False).iterdir()))
