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
# # HLOP: a spiking network that learns task after task without forgetting the first
#
# A network trained on one task and then on another usually forgets the
# first: the gradient of the new task moves the weights in directions the
# old task relied on. HLOP (Xiao et al., ICLR 2024) keeps those directions
# still with a circuit a brain could have. Each layer gets a few **lateral
# neurons** that learn, by a Hebbian rule (Oja's subspace rule), the main
# directions of the activity arriving at that layer during a task. On later
# tasks, the weight updates are projected away from that subspace, so the
# layer's response to old inputs barely moves.
#
# This notebook shows the idea on a laptop CPU:
#
# 1. a spiking network **forgets** under plain fine-tuning;
# 2. the lateral neurons' Hebbian subspace comes close to the **exact PCA
#    subspace** of one layer's activity, given enough updates;
# 3. **HLOP against GPM, EWC and fine-tuning** on the same stream: the
#    accuracy matrices, ACC and BWT;
# 4. what it costs: plasticity falls as the protected subspace grows.
#
# The data are *permuted digits*: scikit-learn's 8 x 8 digits (shipped with
# it, no download), each task the same ten digits with the pixels shuffled by
# its own fixed permutation, the small cousin of the paper's permuted MNIST.
#
# *Run time on a 2-core CPU: about 70 s at full size (5 tasks, a 64-100-100-10
# network), about 25 s with the test suite's small settings
# (`NEURO_TUTORIAL_SMALL=1`: 3 tasks, a 64-48-48-10 network, 6 time steps).*
# The same comparison over several seeds, with every output written to disk,
# is `python scripts/hlop_continual.py`.

# %%
# %matplotlib inline
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from data_loaders.continual import permuted_digits
from neuro.snn import AccuracyMatrix, ContinualSNN, HebbianSubspace, principal_angles

# The test suite sets NEURO_TUTORIAL_SMALL=1 to run the same code with smaller numbers.
SMALL = os.environ.get("NEURO_TUTORIAL_SMALL") == "1"
if SMALL:  # fewer tasks, a smaller network, 6 time steps, a larger learning rate
    N_TASKS, HIDDEN, T, EPOCHS, LR, ITERATIONS = 3, (48, 48), 6, 3, 0.02, 20
    LATERAL, ADDED = [16, 16, 16], [8, 8, 8]
else:
    N_TASKS, HIDDEN, T, EPOCHS, LR, ITERATIONS = 5, (100, 100), 20, 5, 0.01, 50
    LATERAL, ADDED = [20, 40, 40], [8, 12, 12]
SEED = 0
# Settings measured on this stream (scripts/hlop_continual.py uses the same defaults).
SETTINGS = dict(
    hidden=HIDDEN,
    T=T,
    epochs=EPOCHS,
    lr=LR,
    momentum=0.9,
    lateral=LATERAL,
    added=ADDED,
    hebbian_lr=0.05,
    hebbian_iterations=ITERATIONS,
    ewc_lambda=100.0,
    device="cpu",
    random_state=SEED,
)

# %% [markdown]
# ## The stream
# Every task holds the same 1347 training and 450 test images; only the pixel
# order differs. To a person the permuted images are noise, but a network with
# a fully connected first layer learns each permutation as well as the
# original, so every task is equally hard and the only question is what
# happens to the earlier ones.

# %%
stream = permuted_digits(n_tasks=N_TASKS, seed=SEED)
print(stream)
fig, axes = plt.subplots(1, 4, figsize=(8, 2.2))
image = stream[0].X_train[0]
for ax, t in zip(axes, range(min(4, N_TASKS)), strict=False):
    ax.imshow(stream[t].X_train[0].reshape(8, 8), cmap="gray_r")
    ax.set(xticks=[], yticks=[], title=f"task {t}")
for ax in axes[N_TASKS:]:
    ax.axis("off")
fig.suptitle(f"the same training image (digit {stream[0].y_train[0]}) in each task", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 1. Fine-tuning forgets
# A spiking MLP (leaky integrate-and-fire neurons, trained by DSR, the
# paper's default: the backward pass goes through the firing rates over
# T = 20 steps) learns the tasks one after the other with plain SGD. After
# each task it is scored on every task's test set: row `i` of the **accuracy
# matrix** is the accuracy on each task after learning task `i`. The diagonal
# is what it just learned; what lies below the diagonal is what it kept.

# %%
started = time.perf_counter()
finetune = ContinualSNN(method="finetune", **SETTINGS).fit(stream)
R_finetune = AccuracyMatrix.from_matrix(finetune.accuracy_matrix_, finetune.task_names_)
print(R_finetune.format_table())
print(f"({time.perf_counter() - started:.0f} s)")
R_finetune.plot()["accuracy_matrix"]

# %% [markdown]
# Each task is learned (the diagonal), and each is mostly lost once the next
# one is learned: the columns fade below the diagonal. **BWT**, the mean
# change of each earlier task's accuracy from just after it was learned to
# the end, is strongly negative; 0 would be no forgetting.
#
# ## 2. Lateral neurons find the principal subspace by a Hebbian rule
# HLOP's lateral neurons read a layer's presynaptic activity `x`, respond
# `y = W x`, and learn by Oja's subspace rule
# `dW = y (x - W^T y)^T`: Hebbian growth, held in check by an anti-Hebbian
# term through the reconstruction `W^T y`. Its fixed points are the rows
# spanning the top principal subspace of `x`. Here we take one layer, the
# spike rates of the first hidden layer on task 0's images, and compare the
# subspace the lateral neurons learn with the exact one (the top eigenvectors
# of the activity's second-moment matrix) by their **principal angles**
# (0 degrees: the same direction; 90: orthogonal).

# %%
net = finetune.net_.eval()
x0 = torch.from_numpy(stream[0].X_train)
with torch.no_grad():
    net(x0)
activity = net.presynaptic[1].float()  # (1347, hidden[0]): layer 1's input, spike rates
k = LATERAL[1]
_, vecs = torch.linalg.eigh((activity.T @ activity).double())
exact = vecs[:, -k:].float().numpy()  # the top-k directions
random_median = np.median(
    principal_angles(np.random.default_rng(0).normal(size=(HIDDEN[0], k)), exact)
)

batches = list(
    torch.split(
        activity[torch.randperm(len(activity), generator=torch.Generator().manual_seed(0))], 64
    )
)
curves = {}
for n_iter in (5, ITERATIONS):
    lateral = HebbianSubspace(HIDDEN[0])
    lateral.add_neurons(k, generator=0)
    updates, medians = (
        [0],
        [float(np.median(principal_angles(lateral.basis("new").numpy(), exact)))],
    )
    for _epoch in range(EPOCHS):
        for batch in batches:
            lateral.learn(batch, lr=0.05, n_iter=n_iter)
            updates.append(updates[-1] + n_iter)
            medians.append(float(np.median(principal_angles(lateral.basis("new").numpy(), exact))))
    curves[n_iter] = (updates, medians)
    print(
        f"{n_iter:>2} Oja iterations a batch, {len(batches)} batches x {EPOCHS} epochs = "
        f"{updates[-1]} updates: median angle {medians[-1]:.1f} deg "
        f"(after one epoch: {medians[len(batches)]:.1f} deg)"
    )
print(f"a random {k}-dim subspace: median angle {random_median:.1f} deg")

fig, ax = plt.subplots(figsize=(6, 3.6))
for n_iter, (updates, medians) in curves.items():
    ax.plot(updates, medians, label=f"{n_iter} iterations a batch")
ax.axhline(random_median, color="grey", ls=":", label="random subspace")
ax.set(xscale="symlog", xlabel="Oja updates", ylabel="median principal angle (deg)", ylim=(0, 90))
ax.set_title(
    f"{k} lateral neurons on a {HIDDEN[0]}-neuron layer vs its exact PCA subspace", fontsize=10
)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# The angle falls with the **number of updates**, not with the number of
# batches: Oja's rule needs about `1 / (lr x eigenvalue)` updates per
# direction, and the weaker directions come last. The reference makes 5
# iterations on each of about 940 batches a task of permuted MNIST, some 4700
# updates; our digits make about 21 batches a task, so with the same 5
# iterations the lateral neurons stop far from the subspace. That is why this
# notebook (and the script's default) use more iterations per batch. Angles
# of a few degrees are enough: the projection only needs to remove most of
# the activity's energy from the old directions.
#
# ## 3. HLOP, GPM, EWC and fine-tuning on the same stream
# * **HLOP**: task 0 trains freely while each layer's lateral neurons learn;
#   each later task adds new lateral neurons, projects every weight gradient
#   on the complement of the old neurons' subspace (`grad_W <- grad_W - (grad_W
#   W_old^T) W_old`), and merges them after the task. Biases freeze from task 1.
# * **GPM** (gradient projection memory) does the same with the *exact*
#   subspace: an SVD of each layer's activity after each task, keeping 97 %
#   of its energy. HLOP is its Hebbian, neuron-made approximation.
# * **EWC** (elastic weight consolidation) pulls each weight back towards its
#   old value in proportion to its Fisher information.

# %%
models = {"finetune": finetune}
for method in ("ewc", "gpm", "hlop"):
    started = time.perf_counter()
    models[method] = ContinualSNN(method=method, **SETTINGS).fit(stream)
    print(f"{method:<9} fitted in {time.perf_counter() - started:.0f} s")
print(f"\n{'method':<10}{'ACC (%)':>9}{'BWT (%)':>9}")
for method, model in models.items():
    print(f"{method:<10}{100 * model.acc_:>9.1f}{100 * model.bwt_:>9.1f}")

# %%
fig, axes = plt.subplots(1, len(models), figsize=(3.2 * len(models), 3.2))
for ax, (method, model) in zip(axes, models.items(), strict=True):
    R = 100 * model.accuracy_matrix_
    im = ax.imshow(R, vmin=0, vmax=100, cmap="viridis")
    for i in range(N_TASKS):
        for j in range(N_TASKS):
            ax.text(j, i, f"{R[i, j]:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if R[i, j] < 60 else "black")  # fmt: skip
    ax.set(xlabel="task scored", ylabel="after learning task", xticks=range(N_TASKS),
           yticks=range(N_TASKS))  # fmt: skip
    ax.set_title(f"{method}: ACC {100 * model.acc_:.0f}%, BWT {100 * model.bwt_:+.0f}%", fontsize=9)
fig.colorbar(im, ax=list(axes), shrink=0.8, label="test accuracy (%)")
plt.show()

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
names = list(models)
axes[0].bar(names, [100 * m.acc_ for m in models.values()], color="C0")
axes[0].set(ylabel="ACC: mean final accuracy (%)", ylim=(0, 100))
axes[1].bar(names, [100 * m.bwt_ for m in models.values()], color="C3")
axes[1].axhline(0, color="grey", lw=0.8)
axes[1].set(ylabel="BWT (%)", title="0 = no forgetting")
fig.tight_layout()
plt.show()

# %% [markdown]
# The two projection methods keep their earlier tasks (BWT within a few
# percent of 0), fine-tuning and EWC do not. On this small stream EWC's
# quadratic pull only slows the forgetting: five permutations of the same
# pixels compete for the same weights, and no single point satisfies them
# all. HLOP does about as well as
# GPM without ever computing an SVD: its subspace is made by neurons, with a
# local rule, as the tasks go.
#
# How close did HLOP's lateral neurons come to GPM's exact subspace, in the
# trained network? `subspace_angles` compares each layer's lateral weights
# with the top principal subspace of that layer's activity over all tasks (as
# many directions), next to a random subspace of the same size:

# %%
hlop = models["hlop"]
rng = np.random.default_rng(0)


def largest(angles, n):
    """The min(k, n - k) largest of k angles: when 2k > n the others are 0 for any two subspaces."""
    a = np.sort(np.asarray(angles))
    return a[len(a) - max(1, min(len(a), n - len(a))) :]


for layer, angles in enumerate(hlop.subspace_angles(stream)):
    n, k = hlop.sizes_[layer], len(angles)
    chance = principal_angles(rng.normal(size=(n, k)), np.eye(n)[:, :k])
    used = largest(angles, n)
    print(
        f"layer {layer}: {k} of {n} directions; median of the {len(used)} largest angles "
        f"{np.median(used):.1f} deg (max {used.max():.1f}); a random subspace: "
        f"{np.median(largest(chance, n)):.1f} deg"
    )

# %% [markdown]
# When the protected subspace is a large share of a layer (here most of its
# 64 or 100 dimensions by the last task), any two subspaces of that size
# share most of their directions, so only the `min(k, n - k)` largest angles
# say anything; compare them with a random subspace's, not with 90 degrees.
# HLOP's are well below chance but not zero, and they differ by layer (at
# full size, seed 0: about 30 degrees for the input layer, 12 and 6 for the
# hidden ones). The directions it misses are weak ones, which Oja's rule
# learns last and which matter least for the projection (little of the old
# activity lies there); for the hidden layers the exact subspace is also
# computed on the *final* network, whose activity has moved a little since
# the lateral neurons learned it.
#
# ## 4. The price: plasticity falls as the protected subspace grows
# Every task adds directions that later tasks may not use. The diagonal of
# the accuracy matrix, the accuracy on each task just after learning it,
# shows what is left to learn with:

# %%
protected = [np.array(LATERAL) + t * np.array(ADDED) for t in range(N_TASKS)]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for method, model in models.items():
    axes[0].plot(range(N_TASKS), 100 * np.diag(model.accuracy_matrix_), marker="o", label=method)
axes[0].set(xlabel="task", ylabel="accuracy just after learning it (%)", xticks=range(N_TASKS))
axes[0].legend(fontsize=8)
sizes = hlop.sizes_[:-1]
for layer in range(len(sizes)):
    share = [100 * min(p[layer], sizes[layer]) / sizes[layer] for p in protected]
    axes[1].plot(range(N_TASKS), share, marker="o", label=f"layer {layer} ({sizes[layer]} inputs)")
axes[1].set(xlabel="task", ylabel="HLOP: inputs' dimensions protected (%)", xticks=range(N_TASKS))
axes[1].set_title("lateral neurons after each task", fontsize=9)
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Fine-tuning learns every task about equally well; the projection methods
# learn each new task less well than the one before, because each may only
# change the weights in what is left of the input space. The effect is
# large here: with the script's defaults (seeds 0 and 1) the fifth task
# reaches about 35 % just after HLOP learns it and 27 % with GPM, against
# 88 % with fine-tuning, and HLOP's final ACC (54 %) beats fine-tuning's
# (44 %) by much less than its BWT suggests. On 8 x 8 digits the input has
# only 64 dimensions, and after a few tasks most of them are protected, so
# this small stream shows the trade-off more sharply than permuted MNIST
# (784 inputs) does in the paper. The number of lateral neurons per task is
# the knob between stability and plasticity; the paper's PMNIST schedule
# adds fewer neurons as the tasks accumulate. (Task 0 is also learned less
# well than the next ones by every method: it is the only task learned from
# random weights.)
#
# ## What this notebook does not show
# * The paper's numbers: those need the full permuted MNIST stream and its
#   784-800-800-10 network, 1 epoch a task at lr 0.1 (`python
#   scripts/hlop_continual.py --stream pmnist --data MNIST_FOLDER --paper-size`,
#   on a GPU). Split CIFAR-100 with the paper's spiking CNN and one head per
#   task is not implemented; the script offers a flattened MLP instead.
# * The spread over seeds: this notebook runs one. The script runs several
#   and reports mean and sd; with 5 tasks of 450 test images, differences of
#   a few percent between HLOP and GPM are within that spread.
# * Spiking lateral neurons (`spiking_lateral=True`) and the BPTT and OTTT
#   training methods (`neuron_method="bptt"` or `"ottt"`) are available in
#   `ContinualSNN` but not compared here.
