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
# # Voxelwise encoders: which model explains which voxels?
#
# An encoding model predicts each voxel's response to an image from features
# of that image. This tutorial fits the package's encoders on one subject and
# compares them voxel by voxel and ROI by ROI:
#
# * **ridge** (`VoxelRidgeCV`): a linear map from all features, with a
#   cross-validated penalty for every voxel;
# * **readouts** (`ReadoutEncoder`): a *linear* map from pooled features; a
#   *factorized* one (where in the image x which features); a *Gaussian* one
#   (a receptive-field centre and size per voxel); and the *semantic* readout,
#   whose receptive field and feature weights move with the image's semantic
#   content.
#
# We use a simulated subject because it knows the answer: early visual voxels
# have planted receptive fields, and FFA, PPA, LOC and VWFA respond to faces,
# scenes, objects and text wherever they appear. To use your own data, build an
# `FMRIDataset` from your files (the last section shows how) and run the same
# cells.
#
# *Run time on a 2-core CPU: about 3 min at full size (as `make notebooks` runs it),
# about 40 s with the test suite's small settings (`NEURO_TUTORIAL_SMALL=1`).*

# %%
# %matplotlib inline
import os

import matplotlib.pyplot as plt
import numpy as np
from nilearn import plotting

from data_loaders.fmri import FMRIDataset
from data_loaders.simulate.fmri import simulate_fmri
from neuro.encoders import (
    GaborFeatures,
    VoxelRidgeCV,
    compare_encoders,
    plots,
)
from neuro.encoders.groundtruth import check_ground_truth, receptive_field_recovery

# The test suite sets NEURO_TUTORIAL_SMALL=1 to run the same code with smaller numbers.
SMALL = os.environ.get("NEURO_TUTORIAL_SMALL") == "1"
N_STIMULI, VOXELS_PER_ROI, EPOCHS = (120, 4, 20) if SMALL else (300, 12, None)
READOUT = {} if EPOCHS is None else {"epochs": EPOCHS}

# %% [markdown]
# ## A subject and its stimuli
# Each image is shown three times; the noise ceiling (how much of a voxel's
# response a perfect model could explain) is estimated from those repeats.

# %%
sim = simulate_fmri(n_subjects=1, n_stimuli=N_STIMULI, voxels_per_roi=VOXELS_PER_ROI, seed=0)
subject = sim.subjects[0]
dataset = FMRIDataset.from_simulation(subject, sim.stimuli)
print(dataset)
ceiling = dataset.noise_ceiling().r2(3)
print(f"median noise ceiling of a 3-trial average: R² = {np.median(ceiling):.2f}")

# %% [markdown]
# ## Features: a Gabor filter bank
# A V1-like model needs no trained weights: oriented filters at several
# spatial frequencies, their energy pooled onto a 16 x 16 map. Any torch
# network can replace it (`BackboneFeatures(model, layers=[...])` reads named
# layers with forward hooks), and `cached_features` keeps features in an HDF5
# file so the next fit does not recompute them.

# %%
gabor = GaborFeatures(map_size=16, device="cpu")
maps = gabor.transform(sim.stimuli.images)  # (n_images, channels, 16, 16)
print("feature maps:", maps.shape)

fig, axes = plt.subplots(1, 5, figsize=(13, 2.8))
axes[0].imshow(sim.stimuli.images[0])
axes[0].set_title("image")
for ax, c in zip(axes[1:], np.linspace(0, maps.shape[1] - 1, 4).astype(int), strict=True):
    ax.imshow(maps[0, c], cmap="magma")
    ax.set_title(f"channel {c}")
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Ridge with a penalty per voxel
# `VoxelRidgeCV` decomposes the training features once per fold and reuses
# that decomposition for every penalty and every voxel, so thousands of voxels
# fit in seconds. Here we fit it by hand on the repeat-averaged responses; the
# comparison below does the same for every encoder.

# %%
train, test = dataset.split(test_size=0.2, seed=0)
y_train, ids_train, _ = train.average_repeats()
y_test, ids_test, _ = test.average_repeats()
x_train = maps[ids_train].reshape(len(ids_train), -1)
x_test = maps[ids_test].reshape(len(ids_test), -1)

ridge = VoxelRidgeCV(alphas=np.logspace(-2, 6, 17), cv=5, device="cpu").fit(x_train, y_train)
# score is R² (as for every scikit-learn regressor); correlation_score the mean Pearson r
print(f"held-out R²: {ridge.score(x_test, y_test):.3f}")
print(f"held-out mean r: {ridge.correlation_score(x_test, y_test):.3f}")
fig, ax = plt.subplots(figsize=(5, 3))
ax.hist(np.log10(ridge.alpha_), bins=17)
ax.set(xlabel="log10(alpha) chosen", ylabel="voxels", title="One penalty per voxel")
plt.show()

# %% [markdown]
# ## Compare ridge and the four readouts
# `compare_encoders` fits each encoder on the same training stimuli and scores
# it on the same held-out stimuli. The semantic readout also reads a semantic
# vector per image; with real data this is a frozen model's embedding (CLIP,
# a language model on captions). The simulator offers a stand-in: the category
# content of each image through a fixed random projection.

# %%
semantic = sim.stimuli.semantic_embedding(dim=16, seed=0)
result = compare_encoders(
    dataset,
    ["ridge", "linear", "factorized", "gaussian", "semantic"],
    features=maps,
    semantic=semantic,
    device="cpu",
    readout_kwargs=READOUT,  # e.g. {"epochs": 100}; the readouts' seed is random_state
    seed=0,
)
print(result.format_table())  # result.summary() has the same numbers as a dict

# %% [markdown]
# Each cell is the mean held-out r with its 95% bootstrap interval over voxels,
# then the mean fraction of the noise ceiling explained (the bar chart shows
# the latter). In the full-size run (300 images), the Gaussian readout is best
# in V1-V4, whose voxels pool contrast energy in one place; the semantic
# readout gains most in FFA and LOC (about 0.7 of the ceiling against 0.25-0.5
# for the others), whose voxels respond to a category wherever it lies. In PPA
# and VWFA the Gabor features already carry much of the category (scenes fill
# the field, text has its own texture), so all encoders come close.

# %%
fig = result.plot()["roi_comparison"]  # plot() gives every figure save() writes
fig

# %% [markdown]
# ## Did the Gaussian readout find the planted receptive fields?

# %%
rf = receptive_field_recovery(result.encoders["gaussian"], subject)
print(
    f"median centre error: {rf['median_center_error']:.3f} map units (the image is 2 wide); "
    f"sizes vs planted r = {rf['size_r']:.2f}"
)
truth = check_ground_truth(result, subject)  # what `neuro demo` checks and writes
print("best encoder:", truth["best_encoder"])
fig = plots.ground_truth(result, subject, truth)
fig

# %% [markdown]
# ## Brain maps
# Every per-voxel result goes back into the brain through the data layer:
# `result.r_maps()` gives one NIfTI image of held-out r per encoder and
# `result.best_model_map()` the best encoder in each voxel.
# `result.save("my_results")` writes them with the tables, figures and models.

# %%
display = plotting.plot_glass_brain(
    dataset.to_nifti(result.scores["semantic"], fill=0.0),
    title="semantic readout: held-out r",
    colorbar=True,
    vmax=1,
)
plt.show()
best = result.best_model()
for roi in dataset.rois:
    names, counts = np.unique(best[dataset.roi_labels == roi], return_counts=True)
    print(
        f"{roi:5s} best encoder: {names[np.argmax(counts)]} ({counts.max()}/{counts.sum()} voxels)"
    )

# %% [markdown]
# ## Your own data
# The same comparison runs on NIfTI betas with a trial table and an images
# folder, or on an NSD-style HDF5 file:
#
# ```python
# from data_loaders.fmri import load_nifti_betas
# betas = load_nifti_betas("sub-01_betas.nii.gz", "sub-01_trials.tsv",
#                          labels_img="sub-01_rois.nii.gz", label_names={1: "V1", 2: "V2"})
# dataset = betas.to_dataset(stimuli="stimuli/")
# result = compare_encoders(dataset, ["ridge", "gaussian"])
# ```
#
# or from the shell: `neuro fit-encoder --betas ... --trials ... --images ...
# --model ridge gaussian --out results/`.
