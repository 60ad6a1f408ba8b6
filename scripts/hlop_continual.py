"""HLOP on a stream of tasks: a spiking network learns task after task, beside its baselines.

The comparison of Xiao et al. (ICLR 2024) on a stream of your choice. For
each seed, a task stream is built (``data_loaders.continual``) and a spiking
MLP (:class:`neuro.snn.ContinualSNN`) learns its tasks in order with each
method: Hebbian orthogonal projection (``hlop``), the exact SVD-based
gradient projection it approximates (``gpm``), elastic weight consolidation
(``ewc``) and plain fine-tuning (``finetune``). After every task the network
is scored on every task's test set, which fills the accuracy matrix; ACC is
the mean final accuracy and BWT the mean change of each earlier task's
accuracy from just after it was learned to the end (0: no forgetting).
For HLOP the script also measures how close its lateral neurons came to the
exact principal subspace of the activity, layer by layer (principal angles,
beside those of a random subspace of the same size).

Streams (``--stream``):

* ``permuted-digits`` (the default): scikit-learn's 8 x 8 digits, one pixel
  permutation per task, ten classes on one shared head; no download;
* ``split-digits``: the ten digits dealt into ``--tasks`` groups;
* ``pmnist``: permuted MNIST from the four MNIST files in ``--data``;
* ``split-cifar100``: CIFAR-100 (binary version) from ``--data``, in
  ``--tasks`` groups of classes. ContinualSNN offers a spiking MLP on the
  flattened 3072 pixels with one output layer shared by all tasks; the paper
  uses a spiking CNN with one head per task, which is not implemented here,
  so these numbers are not the paper's.

On split digits each task keeps the digit as its label (class-incremental on
one shared output layer: every method forgets) unless ``--task-labels``
numbers each task's classes ``0 .. k-1``; split CIFAR-100 always numbers
them so, as ``neuro snn`` does. The options are those of ``neuro snn``
(which fits one seed and saves the models); this script adds seeds, the
spread over them, HLOP's subspace angles and ``--paper-size``.

It writes into --out: ``metrics.json``, ``summary.txt`` (the printed table),
``results.csv`` (ACC and BWT per method: mean, sd, min and max over seeds),
``runs.csv`` (one row per method and seed), ``accuracy_matrices.npz``
(``<method>``: the matrices, seeds x tasks x tasks; ``hlop_angles_layer<l>``:
the principal angles in degrees, seeds x directions; ``seeds``,
``task_names``) and ``figures/accuracy_matrices.png``, ``acc_bwt.png`` and
``subspace_angles.png`` (with HLOP).

The small default (5 permuted-digits tasks, a 64-100-100-10 network, 5 epochs
a task, 4 methods, seeds 0 and 1) runs in about a minute on one CPU thread:

    python scripts/hlop_continual.py --out runs/hlop
    python scripts/hlop_continual.py --methods finetune hlop --seeds 0 1 2 --out runs/hlop3

``--paper-size`` trains the paper's PMNIST setting (784-800-800-10, DSR with
T = 20, 1 epoch a task, SGD lr 0.1 without momentum, batch 64, lateral
neurons [80, 200, 100] then the reference's schedule of added ones, Oja
learning rates 1e-3 / 1e-2 with 5 iterations a batch); it needs
``--stream pmnist --data MNIST_FOLDER`` and a GPU:

    python scripts/hlop_continual.py --stream pmnist --data ~/data/mnist --paper-size \\
        --out runs/hlop_pmnist
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

PROG = "hlop_continual"
#: ContinualSNN's methods (``neuro.snn.METHODS``; written out so that --help needs no torch).
METHODS = ("hlop", "gpm", "ewc", "finetune")
STREAMS = ("permuted-digits", "split-digits", "pmnist", "split-cifar100")
#: Streams read from the user's files (``--data``).
FILE_STREAMS = ("pmnist", "split-cifar100")
#: Tasks of each stream when --tasks is not given.
DEFAULT_TASKS = {"permuted-digits": 5, "split-digits": 5, "pmnist": 10, "split-cifar100": 10}
#: The small network and its training, measured on permuted digits (about 21 batches a task).
SMALL = {
    "hidden": [100, 100],
    "epochs": 5,
    "lr": 0.01,
    "momentum": 0.9,
    "batch_size": 64,
    "hebbian_lr": [0.05],
    "hebbian_iterations": 50,
}
#: HLOP's lateral neurons for the small network on 64 inputs (task 0, then added per task).
SMALL_LATERAL = {"lateral": [20, 40, 40], "added": [8, 12, 12]}
#: The paper's PMNIST setting (784-800-800-10); lateral neurons then the reference's schedule.
PAPER = {
    "hidden": [800, 800],
    "epochs": 1,
    "lr": 0.1,
    "momentum": 0.0,
    "batch_size": 64,
    "hebbian_lr": [1e-3, 1e-2, 1e-2],
    "hebbian_iterations": 5,
}
PAPER_LATERAL = [80, 200, 100]
PAPER_ADDED = [70, 70, 70]
#: The flags --paper-size sets (refused together with it).
SIZE_FLAGS = {
    "hidden": "--hidden",
    "epochs": "--epochs",
    "lr": "--lr",
    "momentum": "--momentum",
    "batch_size": "--batch-size",
    "lateral": "--lateral",
    "added": "--added",
    "hebbian_lr": "--hebbian-lr",
    "hebbian_iterations": "--hebbian-iterations",
}
CIFAR_NOTE = (
    "split CIFAR-100 here is a spiking MLP on the flattened 3072 pixels with one output layer "
    "shared by all tasks; the paper uses a spiking CNN with one head per task (not implemented), "
    "so these numbers are not comparable with the paper's"
)
#: Names of ContinualSNN's and the loaders' arguments, as this script's flags.
FLAG_NAMES = {
    "n_tasks": "--tasks",
    "path": "--data",
    "hidden": "--hidden",
    "lateral": "--lateral",
    "added": "--added",
    "hebbian_lr": "--hebbian-lr",
    "hebbian_iterations": "--hebbian-iterations",
    "gpm_threshold": "--gpm-threshold",
    "ewc_lambda": "--ewc-lambda",
    "batch_size": "--batch-size",
    "neuron_method": "--neuron-method",
}


def build_parser() -> argparse.ArgumentParser:
    """The script's options (stream, methods, network, HLOP, and the ``neuro`` common options)."""
    from neuro.cli import add_common_arguments

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train a spiking network task after task with HLOP, GPM, EWC and plain "
        "fine-tuning, over several seeds, and compare their accuracy matrices, ACC and BWT; "
        "measure how close HLOP's lateral neurons come to the exact principal subspace.",
    )
    data = parser.add_argument_group("task stream")
    data.add_argument(
        "--stream",
        choices=STREAMS,
        default="permuted-digits",
        help="the tasks (the digits ship with scikit-learn; pmnist and split-cifar100 read --data)",
    )
    data.add_argument(
        "--data",
        metavar="PATH",
        help="pmnist: the folder with the four MNIST IDX files; split-cifar100: the folder "
        "cifar-100-binary (train.bin, test.bin)",
    )
    data.add_argument(
        "--tasks", type=int, help="tasks in the stream (default 5 for the digits, 10 otherwise)"
    )
    data.add_argument(
        "--task-labels",
        action="store_true",
        help="split-digits: number each task's classes 0..k-1 on the shared output layer "
        "instead of keeping the digit (class-incremental); split-cifar100 always does",
    )
    data.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="S",
        help="one run of every method per seed (the stream's split and permutations and the "
        "network's initialisation); default: --seed and --seed + 1",
    )
    runs = parser.add_argument_group("methods")
    runs.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=["finetune", "ewc", "gpm", "hlop"],
        metavar="M",
        help=f"continual-learning methods to compare, from {', '.join(METHODS)}",
    )
    runs.add_argument("--gpm-threshold", type=float, default=0.97, help="GPM's energy share")
    runs.add_argument("--ewc-lambda", type=float, default=100.0, help="EWC's penalty strength")
    net = parser.add_argument_group("network and training")
    net.add_argument(
        "--hidden", type=int, nargs="+", metavar="N", help="hidden layer widths (default 100 100)"
    )
    net.add_argument(
        "--neuron-method",
        choices=("dsr", "bptt", "ottt"),
        default="dsr",
        help="how the spiking network is trained",
    )
    net.add_argument(
        "--time-steps", type=int, metavar="T", help="time steps (default 20 for DSR, 6 otherwise)"
    )
    net.add_argument("--epochs", type=int, help="epochs per task (default 5; paper size 1)")
    net.add_argument("--lr", type=float, help="SGD learning rate (default 0.01; paper size 0.1)")
    net.add_argument("--momentum", type=float, help="SGD momentum (default 0.9; paper size 0)")
    net.add_argument("--batch-size", type=int, help="samples per batch (default 64)")
    hlop = parser.add_argument_group("HLOP's lateral neurons")
    hlop.add_argument(
        "--lateral",
        type=int,
        nargs="+",
        metavar="K",
        help="lateral neurons at task 0, one number for all linear layers or one per layer "
        "(default 20 40 40 for the 64-100-100-10 network; otherwise about 10%% of each layer's "
        "inputs)",
    )
    hlop.add_argument(
        "--added",
        type=int,
        nargs="+",
        metavar="K",
        help="lateral neurons added at each later task, one number or one per layer (default "
        "8 12 12 for the 64-100-100-10 network; otherwise about 9%% of each layer's inputs)",
    )
    hlop.add_argument(
        "--hebbian-lr",
        type=float,
        nargs="+",
        metavar="LR",
        help="Oja learning rate, one for all layers or one per layer (default 0.05; paper size "
        "1e-3 1e-2 1e-2)",
    )
    hlop.add_argument(
        "--hebbian-iterations",
        type=int,
        help="Oja updates per training batch (default 50: the digits make about 21 batches a "
        "task; paper size 5, as the reference's ~940 batches a task)",
    )
    hlop.add_argument(
        "--spiking-lateral", action="store_true", help="spiking lateral neurons (spike counts)"
    )
    parser.add_argument(
        "--paper-size",
        action="store_true",
        help="the paper's PMNIST setting (784-800-800-10, 1 epoch, lr 0.1, batch 64, lateral "
        "neurons 80 200 100 then the reference's schedule; with --stream pmnist, for GPUs)",
    )
    add_common_arguments(parser, PROG)
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse bad options before anything is computed; fill in the defaults.

    Sets ``args.seeds``, ``args.tasks`` and the network and
    HLOP settings (from :data:`SMALL` or, with ``--paper-size``,
    :data:`PAPER`).

    Raises
    ------
    InputError
        A number out of range, a method or seed given twice, ``--data``
        missing for a file-based stream (or given for a digits one),
        ``--task-labels`` with a permuted stream, ``--paper-size`` without
        ``--stream pmnist`` or with size flags, or lateral neuron counts that
        do not match the layers (more lateral neurons by the last task than a
        layer has inputs is refused in :func:`run`, once the stream is read,
        before anything trains).
    """
    from neuro._validation import check_float, check_int
    from neuro.errors import InputError

    if args.stream in FILE_STREAMS and args.data is None:
        raise InputError(
            f"--stream {args.stream} reads your files; give their folder with --data PATH "
            "(or use --stream permuted-digits, which needs no download)."
        )
    if args.stream not in FILE_STREAMS and args.data is not None:
        raise InputError(
            f"--stream {args.stream} uses scikit-learn's digits and reads no file; drop --data "
            "or choose --stream pmnist or split-cifar100."
        )
    if args.task_labels and not args.stream.startswith("split"):
        raise InputError(
            f"--task-labels applies to the split streams; every task of --stream {args.stream} "
            "holds the same classes. Drop --task-labels."
        )
    args.tasks = DEFAULT_TASKS[args.stream] if args.tasks is None else args.tasks
    check_int("--tasks", args.tasks, minimum=1)
    args.seeds = [args.seed, args.seed + 1] if args.seeds is None else list(args.seeds)
    if len(set(args.seeds)) != len(args.seeds):
        raise InputError(f"--seeds lists a seed more than once: {args.seeds}; give each once.")
    for s in args.seeds:
        check_int("--seeds", s, minimum=0)
    if len(set(args.methods)) != len(args.methods):
        raise InputError(
            f"--methods lists a method more than once: {args.methods}; give each once."
        )
    check_float("--gpm-threshold", args.gpm_threshold, minimum=0.0, maximum=1.0)
    check_float("--ewc-lambda", args.ewc_lambda, minimum=0.0)
    if args.time_steps is not None:
        check_int("--time-steps", args.time_steps, minimum=1)

    if args.paper_size:
        if args.stream != "pmnist":
            raise InputError(
                f"--paper-size is the paper's permuted-MNIST network (784 inputs); use it with "
                f"--stream pmnist --data MNIST_FOLDER, not --stream {args.stream}."
            )
        given = [flag for key, flag in SIZE_FLAGS.items() if getattr(args, key) is not None]
        if given:
            raise InputError(
                f"{', '.join(given)} set the small network's settings; --paper-size uses the "
                "paper's. Drop one or the other."
            )
        for key, value in PAPER.items():
            setattr(args, key, value)
        args.lateral = list(PAPER_LATERAL)
        args.added = "paper"  # the reference's schedule, built for --tasks in model_params
        return
    for key, value in SMALL.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for h in args.hidden:
        check_int("--hidden", h, minimum=1)
    check_int("--epochs", args.epochs, minimum=1)
    check_int("--batch-size", args.batch_size, minimum=1)
    check_int("--hebbian-iterations", args.hebbian_iterations, minimum=1)
    check_float("--lr", args.lr, minimum=0.0, strict_minimum=True)
    check_float("--momentum", args.momentum, minimum=0.0, maximum=1.0)
    n_layers = len(args.hidden) + 1
    for lr in args.hebbian_lr:
        check_float("--hebbian-lr", lr, minimum=0.0, strict_minimum=True)
    if len(args.hebbian_lr) not in (1, n_layers):
        raise InputError(
            f"--hebbian-lr has {len(args.hebbian_lr)} values for {n_layers} linear layers; give "
            f"one for all or one per layer."
        )
    if len(args.hebbian_lr) == 1:
        args.hebbian_lr = args.hebbian_lr * n_layers
    for key, flag, minimum in (("lateral", "--lateral", 1), ("added", "--added", 0)):
        value = getattr(args, key)
        if value is None:
            continue
        for v in value:
            check_int(flag, v, minimum=minimum)
        if len(value) not in (1, n_layers):
            raise InputError(
                f"{flag} has {len(value)} values, but the network has {n_layers} linear layers "
                f"(--hidden {' '.join(map(str, args.hidden))} and the output); give one for all "
                "or one per layer."
            )
        setattr(args, key, list(value) * n_layers if len(value) == 1 else list(value))


def model_params(args: argparse.Namespace, n_features: int, n_tasks: int) -> dict:
    """ContinualSNN's settings (less ``method`` and ``random_state``) for these options.

    Parameters
    ----------
    args : argparse.Namespace
        After :func:`check_arguments`.
    n_features : int
        Inputs of the stream.
    n_tasks : int
        Tasks of the stream (for the paper's schedule of added lateral neurons).

    Returns
    -------
    dict
    """
    from neuro.snn.hlop import pmnist_added_schedule

    lateral, added = args.lateral, args.added
    if added == "paper":
        added = pmnist_added_schedule(n_tasks, PAPER_ADDED) if n_tasks > 1 else PAPER_ADDED
    small_net = list(args.hidden) == SMALL["hidden"] and n_features == 64
    if lateral is None and small_net:
        lateral = SMALL_LATERAL["lateral"]
    if added is None and small_net:
        added = SMALL_LATERAL["added"]
    return {
        "hidden": tuple(args.hidden),
        "neuron_method": args.neuron_method,
        "T": args.time_steps,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "momentum": args.momentum,
        "lateral": None if lateral is None else list(lateral),
        "added": added,
        "hebbian_lr": list(args.hebbian_lr),
        "hebbian_iterations": args.hebbian_iterations,
        "spiking_lateral": bool(args.spiking_lateral),
        "gpm_threshold": args.gpm_threshold,
        "ewc_lambda": args.ewc_lambda,
        "device": args.device,
    }


def stream_labels(args: argparse.Namespace) -> str:
    """How the stream's labels sit on the shared output layer, in words (for metrics.json)."""
    if not args.stream.startswith("split"):
        return "the same classes in every task"
    if args.task_labels or args.stream == "split-cifar100":
        return "each task's classes numbered 0..k-1 (task labels, one shared head)"
    return "the dataset's classes (class-incremental, one shared head)"


def load_stream(args: argparse.Namespace, seed: int):
    """The task stream of ``--stream`` for one seed (``--data`` read for the file-based ones)."""
    from data_loaders import continual
    from neuro.cli import errors_as_flags

    task_labels = args.task_labels or args.stream == "split-cifar100"
    with errors_as_flags(FLAG_NAMES):
        if args.stream == "permuted-digits":
            return continual.permuted_digits(n_tasks=args.tasks, seed=seed)
        if args.stream == "split-digits":
            return continual.split_digits(n_tasks=args.tasks, seed=seed, task_labels=task_labels)
        if args.stream == "pmnist":
            return continual.permuted_mnist(args.data, n_tasks=args.tasks, seed=seed)
        return continual.split_cifar100(args.data, n_tasks=args.tasks, task_labels=task_labels)


# ----------------------------------------------------------------------------- measures
def spread(values) -> dict:
    """Mean, sample sd (0 for one value), min, max and number of ``values``."""
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
        "min": float(v.min()),
        "max": float(v.max()),
        "n": len(v),
    }


def chance_angles(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Principal angles (degrees) between a random ``k``-dim subspace of R^n and a fixed one.

    The reference for :meth:`ContinualSNN.subspace_angles`: when ``k`` is a
    large share of ``n``, even a random subspace lies at small angles to the
    exact one, so an angle means something only below this.

    Parameters
    ----------
    n, k : int
        Dimension of the space and of both subspaces (``1 <= k <= n``).
    seed : int, default=0

    Returns
    -------
    ndarray of shape (k,)
        Ascending.
    """
    from neuro.snn import principal_angles

    rng = np.random.default_rng(seed)
    return np.asarray(principal_angles(rng.standard_normal((n, k)), np.eye(n)[:, :k]))


def informative(angles, n: int) -> np.ndarray:
    """The principal angles that can tell two ``k``-dim subspaces of R^n apart.

    When ``2 k > n`` any two ``k``-dim subspaces share at least ``2 k - n``
    dimensions, so that many angles are 0 whatever the subspaces; the other
    ``min(k, n - k)`` (at least one) are the largest.

    Parameters
    ----------
    angles : array-like of float
        All ``k`` principal angles.
    n : int
        Dimension of the space.

    Returns
    -------
    ndarray
        The largest ``max(1, min(k, n - k))`` angles, ascending.
    """
    a = np.sort(np.asarray(angles, dtype=np.float64))
    return a[len(a) - max(1, min(len(a), n - len(a))) :]


def angle_summary(angles: list, sizes) -> list[dict]:
    """Per layer: HLOP's principal angles to the exact subspace, and a random subspace's.

    Parameters
    ----------
    angles : list of array-like
        :meth:`ContinualSNN.subspace_angles` (degrees), one per linear layer.
    sizes : sequence of int
        Each layer's inputs.

    Returns
    -------
    list of dict
        ``layer``, ``n_inputs``, ``n_directions``, ``n_informative`` (see
        :func:`informative`), ``mean_deg`` and ``median_deg`` of those
        informative angles, ``max_deg``, and ``chance_median_deg``: the same
        median for a random subspace of that size.
    """
    rows = []
    for layer, a in enumerate(angles):
        n, k = int(sizes[layer]), len(a)
        used = informative(a, n)
        rows.append(
            {
                "layer": layer,
                "n_inputs": n,
                "n_directions": k,
                "n_informative": len(used),
                "mean_deg": float(used.mean()),
                "median_deg": float(np.median(used)),
                "max_deg": float(used.max()),
                "chance_median_deg": float(np.median(informative(chance_angles(n, k), n))),
            }
        )
    return rows


def results_table(runs):
    """ACC and BWT per method: mean, sd, min and max over seeds, and mean seconds.

    Parameters
    ----------
    runs : pandas.DataFrame
        One row per method and seed: ``method``, ``seed``, ``acc``, ``bwt``, ``seconds``.

    Returns
    -------
    pandas.DataFrame
        One row per method, in the order first met.
    """
    import pandas as pd

    rows = []
    for method, part in runs.groupby("method", sort=False):
        acc, bwt = spread(part["acc"]), spread(part["bwt"])
        row = {"method": method, "n_seeds": acc["n"]}
        row.update({f"acc_{k}": v for k, v in acc.items() if k != "n"})
        row.update({f"bwt_{k}": v for k, v in bwt.items() if k != "n"})
        row["seconds_mean"] = float(part["seconds"].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def compare(name_a: str, a: dict, name_b: str, b: dict, what: str) -> str:
    """One sentence comparing two methods' mean ACC or BWT, with the spread over seeds.

    A difference smaller than 0.01 or than the two sds together is called
    within the spread.
    """
    diff = a["mean"] - b["mean"]
    sign = "+" if what == "BWT" else ""
    values = f"{a['mean']:{sign}.3f} ± {a['sd']:.3f} vs {b['mean']:{sign}.3f} ± {b['sd']:.3f}"
    if abs(diff) < max(0.01, a["sd"] + b["sd"]):
        return f"{what}: {name_a} and {name_b} agree within the spread over seeds ({values})"
    if what == "BWT":
        word = "forgets less than" if diff > 0 else "forgets more than"
    else:
        word = "ends more accurate than" if diff > 0 else "ends less accurate than"
    return f"{what}: {name_a} {word} {name_b} ({values})"


def verdicts(m: dict) -> list[str]:
    """Plain sentences: HLOP against each baseline (BWT, ACC), and its subspace."""
    methods = m["methods"]
    out = []
    if "hlop" in methods:
        for other in ("finetune", "ewc", "gpm"):
            if other in methods:
                for key, what in (("bwt", "BWT"), ("acc", "ACC")):
                    out.append(
                        compare("HLOP", methods["hlop"][key], other, methods[other][key], what)
                    )
    elif len(methods) >= 2:
        names = list(methods)
        out.append(
            compare(names[-1], methods[names[-1]]["bwt"], names[0], methods[names[0]]["bwt"], "BWT")
        )
    angles = m.get("subspace_angles")
    if angles:
        for row in angles["layers"]:
            closer = row["median_deg"] < row["chance_median_deg"]
            out.append(
                f"HLOP layer {row['layer']}: {row['n_directions']} of {row['n_inputs']} "
                f"directions, median of the {row['n_informative']} largest angles to the exact "
                f"subspace {row['median_deg']:.1f} deg "
                f"({'below' if closer else 'not below'} a random subspace's "
                f"{row['chance_median_deg']:.1f} deg)"
            )
    return out


# ----------------------------------------------------------------------------- figures
def accuracy_matrices_figure(matrices: dict, methods: dict, task_names):
    """One heat map per method: the accuracy matrix (%) averaged over seeds.

    Parameters
    ----------
    matrices : dict {str: ndarray (n_seeds, n_tasks, n_tasks)}
    methods : dict {str: dict}
        ``metrics["methods"]``: the titles' ACC and BWT.
    task_names : list of str

    Returns
    -------
    matplotlib.figure.Figure
    """
    from neuro.plotting import new_figure

    n = len(task_names)
    side = max(2.6, 0.4 * n)
    fig, axes = new_figure(ncols=len(matrices), size=(side + 0.6, side + 0.6))
    image = None
    for ax, (method, stack) in zip(axes[0], matrices.items(), strict=True):
        mean = 100 * np.asarray(stack).mean(axis=0)
        image = ax.imshow(mean, vmin=0, vmax=100, cmap="viridis")
        if n <= 10:
            for i in range(n):
                for j in range(n):
                    color = "white" if mean[i, j] < 60 else "black"
                    ax.text(
                        j, i, f"{mean[i, j]:.0f}", ha="center", va="center", fontsize=7, color=color
                    )
        ticks = np.arange(n)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_yticks(ticks, [str(t) for t in ticks])
        ax.set_xlabel("task scored")
        ax.set_ylabel("after learning task")
        s = methods[method]
        ax.set_title(
            f"{method}\nACC {100 * s['acc']['mean']:.1f}%  BWT {100 * s['bwt']['mean']:+.1f}%",
            fontsize=9,
        )
    fig.colorbar(image, ax=list(axes[0]), label="test accuracy (%)", shrink=0.8)
    return fig


def acc_bwt_figure(runs, table):
    """ACC and BWT per method: bars at the mean over seeds, sd as error bars, seeds as dots.

    Parameters
    ----------
    runs : pandas.DataFrame
        One row per method and seed.
    table : pandas.DataFrame
        :func:`results_table` of ``runs``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from neuro.plotting import new_figure

    fig, axes = new_figure(ncols=2, size=(max(3.2, 0.9 * len(table) + 1.4), 3.4))
    x = np.arange(len(table))
    for ax, key, label in zip(
        axes[0],
        ("acc", "bwt"),
        ("ACC: mean final accuracy (%)", "BWT: forgetting (%)"),
        strict=True,
    ):
        ax.bar(
            x,
            100 * table[f"{key}_mean"],
            yerr=100 * table[f"{key}_sd"],
            capsize=3,
            color="C0",
            alpha=0.7,
        )
        for i, method in enumerate(table["method"]):
            values = 100 * runs.loc[runs["method"] == method, key].to_numpy()
            ax.scatter(np.full(len(values), i), values, color="black", s=10, zorder=3)
        ax.set_xticks(x, table["method"].tolist())
        ax.set_ylabel(label)
        ax.axhline(0.0, color="grey", lw=0.8)
    axes[0, 0].set_ylim(0, 100)
    axes[0, 1].set_title("0 = no forgetting", fontsize=9)
    return fig


def angles_figure(angles: dict, summary: list[dict]):
    """HLOP's principal angles to the exact subspace, sorted, one line per layer (seed mean).

    Parameters
    ----------
    angles : dict {int: ndarray (n_seeds, k)}
        Per layer, each seed's angles (degrees, ascending).
    summary : list of dict
        :func:`angle_summary` rows (for the random-subspace reference).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from neuro.plotting import new_figure

    fig, axes = new_figure(size=(5.2, 3.6))
    ax = axes[0, 0]
    for layer, stack in angles.items():
        mean = np.asarray(stack).mean(axis=0)
        ax.plot(np.arange(1, len(mean) + 1), mean, color=f"C{layer}", label=f"layer {layer} (HLOP)")
        row = summary[layer]
        ref = chance_angles(row["n_inputs"], row["n_directions"])
        ax.plot(np.arange(1, len(ref) + 1), ref, color=f"C{layer}", ls=":", lw=1)
    ax.set_xlabel("principal direction (sorted)")
    ax.set_ylabel("angle to the exact subspace (deg)")
    ax.set_ylim(0, 90)
    ax.set_title(
        "HLOP's lateral neurons vs PCA (dotted: a random subspace;\n"
        "when 2k > n the first 2k - n angles are 0 for any two subspaces)",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    return fig


def network_settings(params: dict, sizes, resolved: dict) -> dict:
    """The network's settings for metrics.json, with the values the model filled in.

    Parameters
    ----------
    params : dict
        :func:`model_params`.
    sizes : sequence of int
        Layer sizes, inputs to outputs.
    resolved : dict
        ``T`` and, after an HLOP run, ``lateral`` and ``added`` as the model used them.

    Returns
    -------
    dict
        ``lateral`` and ``added`` are left out without an HLOP run.
    """
    out = {"sizes": list(sizes), **{k: v for k, v in params.items() if k != "device"}}
    out.update(resolved)
    if "lateral" not in resolved:
        del out["lateral"], out["added"]
    return out


# ----------------------------------------------------------------------------- report
def format_summary(m: dict) -> str:
    """The printed table: stream, ACC and BWT per method over seeds, HLOP's angles, verdicts."""
    s = m["stream"]
    lines = [
        f"stream {s['name']}: {s['n_tasks']} tasks, {s['n_features']} inputs, {s['n_classes']} "
        f"outputs; network {'-'.join(map(str, m['network']['sizes']))}, "
        f"{m['network']['neuron_method']}; seeds {', '.join(map(str, m['seeds']))}",
    ]
    if s.get("note"):
        lines.append(f"note: {s['note']}")
    lines.append(f"{'method':<10}{'ACC (%)':>18}{'BWT (%)':>18}{'s/run':>8}")
    for name, r in m["methods"].items():
        a, b = r["acc"], r["bwt"]
        lines.append(
            f"{name:<10}{100 * a['mean']:>10.1f} ± {100 * a['sd']:<5.1f}"
            f"{100 * b['mean']:>10.1f} ± {100 * b['sd']:<5.1f}{r['seconds']['mean']:>8.1f}"
        )
    lines.append("(mean ± sd over seeds; BWT 0 is no forgetting)")
    angles = m.get("subspace_angles")
    if angles:
        lines.append(
            "HLOP's lateral neurons vs the exact principal subspace (degrees; median and max of "
            "the largest min(k, n - k) angles, the others being 0 for any two subspaces):"
        )
        lines.append(f"  {'layer':<7}{'directions':>12}{'median':>8}{'max':>7}{'random':>8}")
        for row in angles["layers"]:
            lines.append(
                f"  {row['layer']:<7}{str(row['n_directions']) + '/' + str(row['n_inputs']):>12}"
                f"{row['median_deg']:>8.1f}{row['max_deg']:>7.1f}{row['chance_median_deg']:>8.1f}"
            )
    lines.append("verdicts:")
    lines += [f"  {v}" for v in m["verdicts"]]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> int:
    """Build the stream per seed, train every method, measure, write everything."""
    import time

    import pandas as pd

    from neuro.cli import errors_as_flags
    from neuro.io import atomic_open, atomic_write_json, atomic_write_text, prepare_output_dir
    from neuro.plotting import save_figure
    from neuro.results import jsonable
    from neuro.snn import ContinualSNN

    check_arguments(args)
    first = load_stream(args, args.seeds[0])
    if "hlop" in args.methods:  # HLOP's whole schedule of lateral neurons against the layers
        params = model_params(args, int(first.n_features), len(first))
        with errors_as_flags(FLAG_NAMES):
            ContinualSNN(method="hlop", **params).check(first)
    out = prepare_output_dir(args.out, overwrite=args.overwrite)  # refused before any work
    say = print if args.verbose else (lambda *a, **k: None)
    started = time.perf_counter()
    rows, matrices, angle_stacks, angle_rows = [], {m: [] for m in args.methods}, {}, {}
    stream = params = None
    resolved = {}  # settings the model fills in: T, and HLOP's lateral neurons
    for seed in args.seeds:
        stream = first if seed == args.seeds[0] else load_stream(args, seed)
        params = model_params(args, int(stream.n_features), len(stream))
        for method in args.methods:
            t0 = time.perf_counter()
            model = ContinualSNN(
                method=method, random_state=seed, verbose=max(args.verbose - 1, 0), **params
            )
            with errors_as_flags(FLAG_NAMES):
                model.fit(stream)
            seconds = time.perf_counter() - t0
            matrices[method].append(model.accuracy_matrix_)
            rows.append(
                {
                    "method": method,
                    "seed": seed,
                    "acc": model.acc_,
                    "bwt": model.bwt_,
                    "seconds": seconds,
                }
            )
            say(
                f"seed {seed} {method:<9} ACC {100 * model.acc_:5.1f}%  BWT "
                f"{100 * model.bwt_:+5.1f}%  ({seconds:.0f} s)",
                flush=True,
            )
            resolved["T"] = int(model.net_.T)
            if method == "hlop":
                resolved["lateral"] = list(model.strategy_.lateral)
                resolved["added"] = model.strategy_.added
                angles = model.subspace_angles(stream)
                for layer, a in enumerate(angles):
                    angle_stacks.setdefault(layer, []).append(np.sort(np.asarray(a)))
                angle_rows[seed] = angle_summary(angles, model.sizes_[:-1])
    runs = pd.DataFrame(rows)
    table = results_table(runs)
    sizes = (int(stream.n_features), *params["hidden"], int(stream.n_classes))

    methods = {}
    for method in args.methods:
        part = runs[runs["method"] == method]
        methods[method] = {
            "acc": {**spread(part["acc"]), "per_seed": part["acc"].tolist()},
            "bwt": {**spread(part["bwt"]), "per_seed": part["bwt"].tolist()},
            "seconds": spread(part["seconds"]),
            "accuracy_matrix_mean": np.mean(matrices[method], axis=0),
        }
    metrics = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "overwrite", "quiet")},
        "seeds": list(args.seeds),
        "stream": {
            "name": args.stream,
            "n_tasks": len(stream),
            "n_features": int(stream.n_features),
            "n_classes": int(stream.n_classes),
            "labels": stream_labels(args),
            "task_names": list(stream.names),
            "n_train": [int(t.n_train) for t in stream],
            "n_test": [int(t.n_test) for t in stream],
            "note": CIFAR_NOTE if args.stream == "split-cifar100" else "",
        },
        "network": network_settings(params, sizes, resolved),
        "methods": methods,
    }
    if angle_rows:
        per_layer = []
        for layer in range(len(sizes) - 1):
            cells = [angle_rows[s][layer] for s in angle_rows]
            row = dict(cells[0])
            for key in ("mean_deg", "median_deg", "max_deg"):
                row[key] = float(np.mean([c[key] for c in cells]))
            per_layer.append(row)
        metrics["subspace_angles"] = {
            "layers": per_layer,
            "per_seed": {str(s): r for s, r in angle_rows.items()},
            "note": "principal angles between HLOP's lateral weights and the top principal "
            "subspace of the final network's activity on every task's training inputs (as many "
            "directions); mean, median and max over the largest min(k, n - k) angles (when 2k > n "
            "the other 2k - n are 0 for any two k-dim subspaces); chance_median_deg is the same "
            "median for a random subspace of the same size",
        }
    metrics["verdicts"] = verdicts(metrics)
    metrics["seconds"] = time.perf_counter() - started
    metrics = jsonable(metrics)
    summary = format_summary(metrics)

    atomic_write_json(out / "metrics.json", metrics)
    atomic_write_text(out / "summary.txt", summary + "\n")
    atomic_write_text(out / "results.csv", table.to_csv(index=False))
    atomic_write_text(out / "runs.csv", runs.to_csv(index=False))
    arrays = {m: np.stack(v) for m, v in matrices.items()}
    arrays.update({f"hlop_angles_layer{k}": np.stack(v) for k, v in angle_stacks.items()})
    with atomic_open(out / "accuracy_matrices.npz", "wb") as fh:
        np.savez(
            fh, seeds=np.asarray(args.seeds), task_names=np.asarray(list(stream.names)), **arrays
        )
    figures = {
        "accuracy_matrices": accuracy_matrices_figure(
            {m: arrays[m] for m in args.methods}, metrics["methods"], stream.names
        ),
        "acc_bwt": acc_bwt_figure(runs, table),
    }
    if angle_stacks:
        figures["subspace_angles"] = angles_figure(
            angle_stacks, metrics["subspace_angles"]["layers"]
        )
    for name, fig in figures.items():
        save_figure(fig, out / "figures" / f"{name}.png")
    print(summary)
    print(f"wrote {out} ({metrics['seconds']:.0f} s)")
    return 0


def main(argv=None) -> int:
    """Run the script; an :class:`~neuro.errors.InputError` is one line and exit status 2.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    from neuro.cli import run_script

    return run_script(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
