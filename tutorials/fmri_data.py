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
# # fMRI data: loading, masking, noise ceilings, and a simulator that knows the answer
#
# Voxelwise encoders need single-trial responses, the stimuli they answer, an ROI
# for each voxel, and a noise ceiling. This tutorial makes a small experiment with
# `data_loaders.simulate.fmri` (voxels placed in the MNI152 brain, with planted
# receptive fields and a known ceiling), writes it to disk the way real studies
# store their data (NIfTI betas with a trial table, and NSD-style HDF5), reads it
# back with the real-data readers, and checks the noise ceiling estimated from
# repeats against the planted one. It then reads a miniature Natural Scenes
# Dataset subject laid out exactly as NSD distributes it, shows why sessions
# matter for the ceiling, and draws surface data on fsaverage5.
#
# *Run time on a 2-core CPU: about 40 s at full size (as `make notebooks` runs it),
# about 20 s with the test suite's small settings (`NEURO_TUTORIAL_SMALL=1`).*

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from nilearn import datasets, plotting

from data_loaders.fmri import load_nifti_betas
from data_loaders.simulate.fmri import CATEGORIES, ROIS, simulate_fmri

SMALL = os.environ.get("NEURO_TUTORIAL_SMALL") == "1"
N_STIMULI, VOXELS_PER_ROI = (48, 6) if SMALL else (240, 40)
workdir = Path(tempfile.mkdtemp())

# %% [markdown]
# ## A simulated experiment
# Two subjects see the same images three times each. Early visual voxels (V1-V4)
# have Gaussian receptive fields on a retinotopic map; FFA, PPA, LOC and VWFA
# respond to faces, scenes, objects and text wherever they appear.

# %%
sim = simulate_fmri(n_subjects=2, n_stimuli=N_STIMULI, n_repeats=3, voxels_per_roi=VOXELS_PER_ROI)
sub = sim.subjects[0]
print(f"{len(sim.stimuli)} images; subjects have {[s.n_voxels for s in sim.subjects]} voxels")

fig, axes = plt.subplots(2, 8, figsize=(14, 4))
for ax, i in zip(axes.flat, range(16), strict=True):
    ax.imshow(sim.stimuli.images[i])
    ax.set_title(CATEGORIES[sim.stimuli.categories[i]])
    ax.axis("off")
plt.show()

# %% [markdown]
# ## On disk as a real study, and back
# The subject writes itself as a 4D NIfTI of single-trial betas, a brain mask, an
# ROI label image with its names, and a trial table. `load_nifti_betas` masks the
# betas with nilearn, labels each voxel with its ROI, and returns a
# `(n_trials, n_voxels)` array that knows its voxels' positions (its `geometry`:
# the volume's shape and affine with each voxel's indices, which every later map
# uses); `to_dataset` ties it to the stimuli.

# %%
paths = sub.write_nifti(workdir / "nifti")
names = pd.read_csv(paths["roi_names"], sep="\t")
betas = load_nifti_betas(
    paths["betas"],
    paths["trials"],  # a TSV with a stimulus_id column
    mask_img=paths["mask"],
    labels_img=paths["rois"],
    label_names=dict(zip(names["index"], names["name"], strict=True)),
)
ds = betas.to_dataset(stimuli=sim.stimuli.images, name=sub.name)
print(ds)
print(ds.geometry)  # volume shape, affine and voxel indices travel together, for maps
print("V1 only:", ds.select_rois("V1"))

# %% [markdown]
# ## NSD-style HDF5, read lazily
# NSD stores each session's betas as int16 (percent signal change x 300) in one
# HDF5 file. `NSDSession` reads such files a batch of voxels (or trials) at a
# time, so a 200,000-voxel session never has to sit in memory whole.

# %%
from data_loaders.fmri import NSDSession

h5_path = sub.write_nsd_hdf5(workdir / "sub-01_session01.hdf5")
with NSDSession(h5_path, rois=["FFA", "PPA"]) as session:
    print(session)
    for voxels, block in session.iter_voxel_batches(voxel_batch_size=50):
        print(f"voxels {voxels.start}-{voxels.stop}: block {block.shape}, mean {block.mean():.3f}")
    category_ds = session.to_dataset(stimuli=sim.stimuli.images)
print(category_ds)

# %% [markdown]
# ## Where the voxels are, and what they were given
# ROIs sit at typical MNI positions in both hemispheres. Early voxels' planted
# receptive fields cover the opposite visual hemifield and grow from V1 to V4.

# %%
template = datasets.load_mni152_template(resolution=2)
roi_index = np.array([list(ROIS).index(r) + 1 for r in ds.roi_labels])
plotting.plot_roi(
    ds.to_nifti(roi_index, fill=0),
    bg_img=template,
    display_mode="z",
    cut_coords=[-16, -8, 0, 8],
    cmap="tab10",
    title="Simulated ROIs",
)
plt.show()

fig, axes = plt.subplots(1, 4, figsize=(14, 3.5), sharey=True)  # planted pRFs
for ax, roi in zip(axes, ["V1", "V2", "V3", "V4"], strict=True):
    m = sub.roi_labels == roi
    ax.scatter(
        *sub.prf_centers[m].T,
        s=3000 * sub.prf_sizes[m] ** 2,
        alpha=0.4,
        c=np.where(sub.hemisphere[m] == "left", "C0", "C1"),
    )
    ax.set(xlim=(-1, 1), ylim=(1, -1), title=f"{roi} pRFs (blue: left hemisphere)", xlabel="x")
axes[0].set_ylabel("y (image down)")
plt.show()

# %% [markdown]
# ## Noise ceiling from repeats, against the planted one
# NSD's recipe: z-score each voxel, take the variance across repeats of each image
# as noise, and turn the implied signal-to-noise ratio into the fraction of
# variance a perfect model could explain in 3-trial averages.

# %%
ceiling = ds.noise_ceiling()
# the file's voxel order differs from the simulator's: match voxels by position
position = {tuple(np.round(c, 3)): i for i, c in enumerate(sub.coords)}
order = np.array([position[tuple(np.round(c, 3))] for c in ds.coords])
estimated, planted = ceiling.r2(3), sub.true_noise_ceiling(3)[order]
print(
    f"estimated vs planted ceiling: r = {np.corrcoef(estimated, planted)[0, 1]:.3f}, "
    f"mean |difference| = {np.abs(estimated - planted).mean():.3f}"
)
plotting.plot_stat_map(
    ds.to_nifti(100 * estimated, fill=0),
    bg_img=template,
    display_mode="z",
    cut_coords=[-16, -8, 0, 8],
    cmap="hot",
    vmin=0,
    vmax=100,
    threshold=1,
    title="Noise ceiling (% variance, 3-trial average)",
)
plt.show()
plt.figure(figsize=(4, 4))
plt.scatter(planted, estimated, s=5)
plt.plot([0, 1], [0, 1], "k--", lw=1)
plt.xlabel("planted ceiling")
plt.ylabel("estimated from repeats")
plt.show()

# %% [markdown]
# ## NSD as it is distributed
# Real NSD sessions hold only `betas` (int16, `(750, Z, Y, X)`); which image each
# trial showed comes from `nsd_expdesign.mat` (1-based MATLAB indices) and the ROI
# names from `.ctab` files. `write_nsd_layout` writes a miniature subject with
# exactly those names, dtypes and axis orders (and returns what it planted);
# `NSDSubject` reads it as it would read the real download, with each session's
# baseline and gain shift planted, as in real data.

# %%
from data_loaders.fmri import NSDSubject
from data_loaders.simulate.nsd_layout import write_nsd_layout
from neuro.encoders import compare_encoders

truth = write_nsd_layout(workdir / "nsd", n_sessions=3, trials_per_session=60 if SMALL else 120)
nsd = NSDSubject(workdir / "nsd", subject=1, roi_atlases=["prf-visualrois", "nsdgeneral"])
nsd_ds = nsd.to_dataset()
print(nsd_ds)
result = compare_encoders(
    nsd_ds, ["ridge"], features=truth.features, test_stimuli=nsd.shared_stimuli, device="cpu"
)
print(result.format_table())

# sessions matter: the same repeats, with and without each trial's session
without = type(nsd_ds)(nsd_ds.betas, nsd_ds.stimulus_ids).noise_ceiling().r2(3)
with_sessions = nsd_ds.noise_ceiling().r2(3)
plt.figure(figsize=(4, 4))
plt.scatter(with_sessions, without, s=5)
plt.plot([0, 1], [0, 1], "k--", lw=1)
plt.xlabel("ceiling, z-scored within sessions")
plt.ylabel("ceiling, sessions ignored")
plt.title("Session shifts read as noise")
plt.show()

# %% [markdown]
# ## Surfaces
# Surface pipelines give one value per vertex (GIfTI `.func.gii`, FreeSurfer
# `.mgh`). The encoders do not care whether a column is a voxel or a vertex; the
# readers and writers do. Here a smooth map on fsaverage5 (which ships with
# nilearn) is written as per-hemisphere GIfTI, read back, and drawn.

# %%
from data_loaders.fmri import load_surface_betas, write_surface_betas
from data_loaders.fmri.surface import SurfaceGeometry

mesh = SurfaceGeometry.full({"left": 10242, "right": 10242}, mesh="fsaverage5")
rng = np.random.default_rng(0)
gradient = np.linspace(-1, 1, 10242, dtype=np.float32)
trials = rng.normal(size=(6, 10242)).astype(np.float32) * 0.1 + gradient
files = write_surface_betas(workdir / "surf" / "sub-01", trials, trials[:, ::-1].copy())
surf = load_surface_betas(files["left"][0], files["right"][0], np.arange(6), mesh="fsaverage5")
print(surf.betas.shape, surf.geometry)
surf.geometry.plot(surf.betas.mean(0), title="mean over trials")
plt.show()
