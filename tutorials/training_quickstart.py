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
# # Training a model with `neuro.train`
#
# Every gradient-trained model in `neuro` trains through one `Trainer`. This
# tutorial shows what a model needs (a `training_step`), what the Trainer gives
# back (a history of metrics, checkpoints, early stopping), and how a run that
# stops midway picks up exactly where it left off.
#
# The data are simulated voxels with **planted** linear receptive fields, so we
# can check the trained model against the truth.
#
# *Run time on a 2-core CPU: about 15 s at full size (as `make notebooks` runs it),
# about 10 s with the test suite's small settings (`NEURO_TUTORIAL_SMALL=1`).*

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from data_loaders.simulate import simulate_linear_encoding
from neuro.encoders import voxel_correlation
from neuro.train import Callback, Trainer, TrainerConfig

# The test suite sets NEURO_TUTORIAL_SMALL=1 to run the same code with smaller numbers.
SMALL = os.environ.get("NEURO_TUTORIAL_SMALL") == "1"
N_SAMPLES, N_VOXELS, EPOCHS = (400, 20, 6) if SMALL else (3000, 200, 40)

# %% [markdown]
# ## Data with a known answer
# Each voxel responds to 32 correlated stimulus features through planted weights,
# plus noise. Voxels differ in signal-to-noise ratio, so each has its own noise
# ceiling: the best correlation any model can reach on new stimuli.

# %%
rng = np.random.default_rng(0)
snr = 10 ** rng.uniform(-1, 0.5, N_VOXELS)
sim = simulate_linear_encoding(
    n_samples=N_SAMPLES, n_features=32, n_voxels=N_VOXELS, snr=snr, seed=0
)
n_train, n_val = int(0.7 * N_SAMPLES), int(0.15 * N_SAMPLES)
X = (sim.X - sim.X[:n_train].mean(0)) / sim.X[:n_train].std(0)
Y = (sim.Y - sim.Y[:n_train].mean(0)) / sim.Y[:n_train].std(0)
train = (X[:n_train], Y[:n_train])
val = (X[n_train : n_train + n_val], Y[n_train : n_train + n_val])
test = (X[n_train + n_val :], Y[n_train + n_val :])
print(f"{n_train} training, {n_val} validation, {len(test[0])} test stimuli; {N_VOXELS} voxels")


# %% [markdown]
# ## A model is a module with a `training_step`
# `training_step(batch)` returns the loss (or a dict with a `"loss"` entry and any
# other metrics); `validation_step(batch)` returns metrics, which the history
# stores with a `val_` prefix.


# %%
class VoxelEncoder(nn.Module):
    def __init__(self, n_features, n_voxels):
        super().__init__()
        self.readout = nn.Linear(n_features, n_voxels)

    def forward(self, x):
        return self.readout(x)

    def training_step(self, batch):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch):
        x, y = batch
        pred = self(x)
        return {"loss": nn.functional.mse_loss(pred, y), "r": voxel_correlation(y, pred).mean()}


# %% [markdown]
# ## Train, with early stopping on validation accuracy
# Settings live in a `TrainerConfig` (saved in every checkpoint). A callback
# watches each epoch. With `out_dir`, the Trainer writes `config.json`,
# `metrics.jsonl` and `checkpoints/last.pt` / `best.pt`.


# %%
class PrintEvery(Callback):
    def on_epoch_end(self, trainer, epoch, record):
        if epoch % 5 == 0 or epoch == 1:
            print(
                f"epoch {epoch:3d}  train loss {record['train_loss']:.3f}  val r {record['val_r']:.3f}"
            )


out_dir = Path(tempfile.mkdtemp()) / "run"
config = TrainerConfig(
    max_epochs=EPOCHS,
    batch_size=64,
    val_batch_size=n_val,
    lr=5e-3,
    weight_decay=0.0,
    early_stopping_metric="val_r",
    early_stopping_mode="max",
    early_stopping_patience=8,
    device="auto",
    verbose=0,
)
torch.manual_seed(0)
model = VoxelEncoder(32, N_VOXELS)
history = Trainer(config, out_dir=out_dir, callbacks=[PrintEvery()]).fit(model, train, val)
print(sorted(p.name for p in out_dir.iterdir()))

# %% [markdown]
# ## Resuming is exact
# Suppose a run is stopped halfway (here a callback stops it; in real life a
# time limit or a crash). Starting it again with `resume="last"` restores the
# model, optimizer, learning-rate schedule, data order and random state from its
# last checkpoint, so it ends with the same weights as a run that never stopped.


# %%
class StopAfter(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, record):
        if epoch == self.epoch:
            trainer.should_stop = True


no_early = {"early_stopping_metric": None}
torch.manual_seed(0)
full = VoxelEncoder(32, N_VOXELS)
Trainer(config, **no_early).fit(full, train, val)

half_dir = Path(tempfile.mkdtemp()) / "run"
torch.manual_seed(0)
stopped = VoxelEncoder(32, N_VOXELS)
Trainer(config, out_dir=half_dir, callbacks=[StopAfter(EPOCHS // 2)], **no_early).fit(
    stopped, train, val
)
resumed = VoxelEncoder(32, N_VOXELS)  # fresh weights: everything comes from the checkpoint
Trainer(config, out_dir=half_dir, **no_early).fit(resumed, train, val, resume="last")
same = all(
    torch.equal(a, b)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True)
)
print("resumed run ends with the same weights as the uninterrupted one:", same)
assert same

# %% [markdown]
# ## How close is each voxel to its ceiling, and are the planted weights found?

# %%
model.eval()
with torch.no_grad():
    device = next(model.parameters()).device
    pred = model(torch.from_numpy(test[0]).to(device)).cpu().numpy()
r = voxel_correlation(test[1], pred)
ceiling = voxel_correlation(sim.Y[n_train + n_val :], sim.Y_clean[n_train + n_val :])
learned = model.readout.weight.detach().cpu().numpy().T

fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
epochs = [h["epoch"] for h in history]
axes[0].plot(epochs, [h["train_loss"] for h in history], label="train loss")
axes[0].plot(epochs, [h["val_loss"] for h in history], label="validation loss")
axes[0].set(xlabel="epoch", ylabel="MSE (standardised units)", title="Learning curves")
axes[0].legend()
axes[1].scatter(ceiling, r, s=10)
axes[1].plot([0, 1], [0, 1], "k--", lw=1)
axes[1].set(xlabel="noise ceiling (planted)", ylabel="test r", title="Accuracy per voxel")
axes[2].hist(voxel_correlation(sim.weights, learned), bins=20)
axes[2].set(xlabel="r(planted, learned weights)", ylabel="voxels", title="Receptive-field recovery")
plt.show()
print(f"mean test r {r.mean():.3f} against a mean ceiling of {ceiling.mean():.3f}")
