"""``neuro snn``: spiking networks learning a stream of tasks, with HLOP and its baselines.

Builds one task stream (``--stream``: permuted or split digits from
scikit-learn, no download; permuted MNIST from the four IDX files in
``--data``; split CIFAR-100 from the binary version in ``--data``), fits one
:class:`~neuro.snn.continual.ContinualSNN` per ``--methods`` entry on it with
the same network and training settings, and writes into ``--out`` what
:meth:`ContinualComparison.save` writes:

* ``metrics.json``: ACC, BWT, the accuracy matrix and the fit time of each
  method, the settings, and the stream (name, source, tasks and their sizes);
* ``summary.txt``: the printed table (ACC and BWT per method, then each
  accuracy matrix in percent);
* ``results.csv``: one row per method (ACC, BWT, seconds);
* ``accuracy_matrices.npz``: one ``(n_tasks, n_tasks)`` array per method
  (``R[i, j]``: accuracy on task ``j`` after learning task ``i``) and
  ``task_names``, readable with ``numpy.load`` (no pickle);
* ``figures/accuracy_matrices.png``: the matrices as heat maps, side by side;
* ``models/<method>.pt``: each fitted network (``ContinualSNN.load`` reads it).

The defaults are settings that work on scikit-learn's digits (about 21 batches
a task): two hidden layers of 100, 5 epochs a task, SGD with learning rate 0.01
and momentum 0.9, 20 lateral neurons for the input layer and 40 for each
hidden layer at task 0 with 8 and 12 added per later task, Oja learning rate
0.05 with 50 updates a batch, EWC lambda 100. Every bad flag is refused before
the first network trains, in one line naming the flag.
"""

from __future__ import annotations

import argparse
import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from neuro.results import Result

__all__ = [
    "STREAMS",
    "ContinualComparison",
    "add_arguments",
    "check_methods",
    "load_stream",
    "model_settings",
    "run",
]

log = logging.getLogger(__name__)

#: The streams ``--stream`` offers, and the most tasks each can hold.
STREAMS = {"permuted-digits": 1000, "split-digits": 10, "pmnist": 1000, "split-cifar100": 100}
#: Streams read from the user's files (``--data``).
FILE_STREAMS = ("pmnist", "split-cifar100")
#: Lateral neurons of HLOP at task 0 and added per later task: input layer, then each hidden one.
DEFAULT_LATERAL, DEFAULT_ADDED = (20, 40), (8, 12)
#: ContinualSNN parameters whose flags are named otherwise (messages are rewritten to the flag).
_PARAMETER_FLAGS = {"T": "--time-steps", "random_state": "--seed", "hidden": "--hidden"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro snn``."""
    from neuro.snn.continual import METHODS

    parser.add_argument(
        "--stream",
        choices=tuple(STREAMS),
        default="permuted-digits",
        help="task stream: permuted or split scikit-learn digits (no download), permuted MNIST "
        "or split CIFAR-100 (both from --data)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="PATH",
        help="for --stream pmnist, the folder with the four MNIST IDX files (gzipped or not); "
        "for split-cifar100, the folder cifar-100-binary (train.bin, test.bin)",
    )
    parser.add_argument("--tasks", type=int, default=5, metavar="N", help="tasks in the stream")
    parser.add_argument(
        "--task-labels",
        action="store_true",
        help="split-digits: renumber each task's classes 0..k-1 (one small head shared by the "
        "tasks) instead of keeping the digit as label; split-cifar100 always renumbers",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["finetune", "ewc", "gpm", "hlop"],
        metavar="METHOD",
        help="strategies to compare, each fitted on the same stream: "
        f"{', '.join(reversed(METHODS))}",
    )
    parser.add_argument(
        "--hidden", type=int, nargs="+", default=[100, 100], metavar="N", help="hidden layer widths"
    )
    parser.add_argument(
        "--neuron-method",
        choices=("dsr", "bptt", "ottt"),
        default="dsr",
        help="how the spiking network is trained",
    )
    parser.add_argument(
        "--time-steps",
        type=int,
        default=None,
        metavar="T",
        help="time steps of the network (default: 20 for dsr, 6 for bptt and ottt)",
    )
    parser.add_argument("--epochs", type=int, default=5, help="epochs per task")
    parser.add_argument("--batch-size", type=int, default=64, help="samples per batch")
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (constant)")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    parser.add_argument(
        "--lateral",
        type=int,
        nargs="+",
        default=None,
        metavar="K",
        help="HLOP: lateral neurons per linear layer at task 0, one number for all layers or "
        "one per layer (default: 20 for the input layer, 40 for each hidden layer)",
    )
    parser.add_argument(
        "--added",
        type=int,
        nargs="+",
        default=None,
        metavar="K",
        help="HLOP: lateral neurons added per later task, one number or one per layer "
        "(default: 8 for the input layer, 12 for each hidden layer)",
    )
    parser.add_argument(
        "--added-shrink",
        type=int,
        default=0,
        metavar="K",
        help="HLOP: the added count shrinks by K per layer every --added-every tasks (the "
        "paper's PMNIST schedule: --added 70 --added-shrink 20 --added-every 3); default 0, "
        "a constant count",
    )
    parser.add_argument(
        "--added-every",
        type=int,
        default=3,
        metavar="N",
        help="HLOP: tasks between shrinks of the added count (with --added-shrink)",
    )
    parser.add_argument(
        "--hebbian-lr",
        type=float,
        nargs="+",
        default=[0.05],
        metavar="LR",
        help="HLOP: Oja learning rate, one for all layers or one per layer",
    )
    parser.add_argument(
        "--hebbian-iterations", type=int, default=50, help="HLOP: Oja updates per batch"
    )
    parser.add_argument(
        "--spiking-lateral", action="store_true", help="HLOP: spiking lateral neurons"
    )
    parser.add_argument(
        "--gpm-threshold",
        type=float,
        default=0.97,
        help="GPM: share of each layer's activity energy to protect, in (0, 1]",
    )
    parser.add_argument("--ewc-lambda", type=float, default=100.0, help="EWC: penalty strength")
    parser.add_argument("--no-figures", action="store_true", help="skip the figure")


# ----------------------------------------------------------------------------- checks
def check_methods(methods: list[str]) -> list[str]:
    """The ``--methods`` entries, checked: known, and each named once.

    Parameters
    ----------
    methods : list of str

    Returns
    -------
    list of str
        In the order given.

    Raises
    ------
    InputError
        An unknown method, or one named twice.
    """
    from neuro.errors import InputError
    from neuro.snn.continual import METHODS

    for m in methods:
        if m not in METHODS:
            raise InputError(f"--methods: unknown method {m!r}; choose among {', '.join(METHODS)}.")
    twice = sorted({m for m in methods if methods.count(m) > 1})
    if twice:
        raise InputError(f"--methods names {', '.join(twice)} more than once; name each once.")
    return list(methods)


def _stream_error(err: Exception, stream: str) -> Exception:
    """A reader's error with its argument names as flags, and ``--data`` named."""
    from neuro.cli import rename_arguments

    message = re.sub(r"^path\b", "--data", str(err))
    message = rename_arguments(message, {"n_tasks": "--tasks", "seed": "--seed"})
    if stream in FILE_STREAMS and not message.startswith(("--data", "--tasks", "--seed")):
        message = f"--data: {message}"
    return type(err)(message)


def load_stream(args: argparse.Namespace):
    """The :class:`~data_loaders.continual.TaskStream` that ``--stream`` and ``--data`` name.

    Parameters
    ----------
    args : argparse.Namespace
        With ``stream``, ``data``, ``tasks``, ``task_labels`` and ``seed``.

    Returns
    -------
    TaskStream

    Raises
    ------
    InputError
        ``--data`` missing for a stream read from files, given for one that is
        not, or naming a missing, foreign or damaged file; ``--tasks`` out of
        range. The message names the flag.
    """
    from data_loaders import continual
    from neuro._validation import check_int
    from neuro.errors import InputError

    if args.stream in FILE_STREAMS and args.data is None:
        what = (
            "the folder with the four MNIST IDX files (train-images-idx3-ubyte, "
            "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, gzipped "
            "or not)"
            if args.stream == "pmnist"
            else "the folder cifar-100-binary of CIFAR-100's binary version (train.bin, test.bin)"
        )
        raise InputError(f"--stream {args.stream} reads its data from files: give --data, {what}.")
    if args.stream not in FILE_STREAMS and args.data is not None:
        raise InputError(
            f"--data is read only by --stream pmnist or split-cifar100; --stream {args.stream} "
            "is built from scikit-learn's digits. Drop --data or choose one of those streams."
        )
    check_int("--tasks", args.tasks, minimum=1, maximum=STREAMS[args.stream])
    try:
        if args.stream == "permuted-digits":
            return continual.permuted_digits(n_tasks=args.tasks, seed=args.seed)
        if args.stream == "split-digits":
            return continual.split_digits(
                n_tasks=args.tasks, seed=args.seed, task_labels=args.task_labels
            )
        if args.stream == "pmnist":
            return continual.permuted_mnist(args.data, n_tasks=args.tasks, seed=args.seed)
        return continual.split_cifar100(args.data, n_tasks=args.tasks)
    except InputError as err:
        raise _stream_error(err, args.stream) from None


def _per_layer(flag: str, values: list, n_layers: int) -> list:
    """One value per linear layer: a single value broadcast, or exactly ``n_layers``."""
    from neuro.errors import InputError

    if len(values) == 1:
        return list(values) * n_layers
    if len(values) != n_layers:
        raise InputError(
            f"{flag} gives {len(values)} values for {n_layers} linear layers (inputs, then each "
            f"of the {n_layers - 1} --hidden layers); give one value, or one per layer."
        )
    return list(values)


def model_settings(args: argparse.Namespace, stream, methods: list[str]) -> dict[str, Any]:
    """The :class:`~neuro.snn.continual.ContinualSNN` settings the flags describe, checked.

    Everything is checked here, by flag, so that a bad value is refused
    before the first network trains (not midway through the comparison).

    Parameters
    ----------
    args : argparse.Namespace
    stream : TaskStream
        Gives the input size and the number of tasks.
    methods : list of str
        HLOP's flags are checked only when ``"hlop"`` is among them.

    Returns
    -------
    dict
        Keyword arguments of ``ContinualSNN`` (all but ``method``, ``device``,
        ``random_state`` and ``verbose``); ``lateral`` and ``added`` resolved
        to one count per linear layer.
    """
    from neuro._validation import check_float, check_int
    from neuro.cli import errors_as_flags
    from neuro.snn.continual import ContinualSNN
    from neuro.snn.hlop import pmnist_added_schedule

    hidden = [check_int("--hidden", h, minimum=1) for h in args.hidden]
    inputs = [int(stream.n_features), *hidden]  # what each linear layer reads
    n_layers = len(inputs)
    lateral = args.lateral or [DEFAULT_LATERAL[0]] + [DEFAULT_LATERAL[1]] * len(hidden)
    added = args.added or [DEFAULT_ADDED[0]] + [DEFAULT_ADDED[1]] * len(hidden)
    lateral = [
        check_int("--lateral", k, minimum=1) for k in _per_layer("--lateral", lateral, n_layers)
    ]
    added = [check_int("--added", k, minimum=0) for k in _per_layer("--added", added, n_layers)]
    shrink = check_int("--added-shrink", args.added_shrink, minimum=0)
    every = check_int("--added-every", args.added_every, minimum=1)
    if shrink and len(stream) > 1:
        added = pmnist_added_schedule(len(stream), added, shrink=shrink, every=every)
    hebbian_lr = [
        check_float("--hebbian-lr", r, minimum=0.0, strict_minimum=True)
        for r in _per_layer("--hebbian-lr", args.hebbian_lr, n_layers)
    ]
    settings = {
        "hidden": hidden,
        "neuron_method": args.neuron_method,
        "T": check_int("--time-steps", args.time_steps, minimum=1, allow_none=True),
        "epochs": check_int("--epochs", args.epochs, minimum=1),
        "batch_size": check_int("--batch-size", args.batch_size, minimum=1),
        "lr": check_float("--lr", args.lr, minimum=0.0, strict_minimum=True),
        "momentum": check_float("--momentum", args.momentum, minimum=0.0, maximum=1.0),
        "lateral": lateral,
        "added": added,
        "hebbian_lr": hebbian_lr,
        "hebbian_iterations": check_int("--hebbian-iterations", args.hebbian_iterations, minimum=1),
        "spiking_lateral": bool(args.spiking_lateral),
        "gpm_threshold": check_float(
            "--gpm-threshold", args.gpm_threshold, minimum=0.0, maximum=1.0, strict_minimum=True
        ),
        "ewc_lambda": check_float("--ewc-lambda", args.ewc_lambda, minimum=0.0),
    }
    if "hlop" in methods:  # the whole schedule of lateral neurons, before any network trains
        with errors_as_flags({"lateral": "--lateral", "added": "--added", "tasks": "--tasks"}):
            ContinualSNN(method="hlop", **settings).check(stream)
    return settings


def _describe_stream(stream, args: argparse.Namespace) -> dict[str, Any]:
    tasks = [stream[t] for t in range(len(stream))]
    return {
        "name": args.stream,
        "source": str(args.data) if args.data is not None else "scikit-learn digits",
        "n_tasks": len(stream),
        "n_features": int(stream.n_features),
        "n_classes": int(stream.n_classes),
        "input_shape": list(getattr(stream, "input_shape", None) or []),
        "seed": args.seed,
        "tasks": [
            {
                "name": str(task.name),
                "classes": [int(c) for c in task.classes],
                "n_train": int(task.n_train),
                "n_test": int(task.n_test),
            }
            for task in tasks
        ],
    }


# ----------------------------------------------------------------------------- the result
class ContinualComparison(Result):
    """Several continual-learning strategies fitted on one task stream: ACC, BWT, matrices.

    Parameters
    ----------
    models : dict of str -> ContinualSNN
        Fitted models, one per method, in the order to report them.
    seconds : dict of str -> float
        Each model's fit time.
    stream : dict
        The stream's description (name, source, tasks) for ``metrics.json``.
    settings : dict
        The settings shared by the models, for ``metrics.json``.

    Examples
    --------
    >>> from data_loaders.continual import permuted_digits
    >>> from neuro.snn.continual import ContinualSNN
    >>> stream = permuted_digits(n_tasks=2, seed=0)
    >>> fit = ContinualSNN(method="finetune", hidden=(16,), device="cpu").fit(stream)
    >>> comp = ContinualComparison({"finetune": fit}, {"finetune": 1.0}, {"name": "demo"}, {})
    >>> comp.summary()["methods"]["finetune"]["accuracy_matrix"] == fit.accuracy_matrix_.tolist()
    True
    """

    def __init__(
        self,
        models: dict[str, Any],
        seconds: dict[str, float],
        stream: dict[str, Any],
        settings: dict[str, Any],
    ) -> None:
        from neuro.snn.metrics import AccuracyMatrix

        self.models = dict(models)
        self.seconds = {m: float(seconds[m]) for m in self.models}
        self.stream = dict(stream)
        self.settings = dict(settings)
        self.matrices = {
            m: AccuracyMatrix.from_matrix(model.accuracy_matrix_)  # tables say "task t"
            for m, model in self.models.items()
        }
        first = next(iter(self.models.values()))
        self.task_names = list(first.task_names_)

    def summary(self) -> dict[str, Any]:
        """ACC, BWT (fractions), matrix and fit time per method; the stream and settings."""
        return {
            "stream": self.stream,
            "settings": self.settings,
            "task_names": self.task_names,
            "methods": {
                m: {
                    "acc": matrix.acc(),
                    "bwt": matrix.bwt(),
                    "accuracy_matrix": matrix.matrix.tolist(),
                    "fit_seconds": self.seconds[m],
                }
                for m, matrix in self.matrices.items()
            },
        }

    def format_table(self) -> str:
        """ACC and BWT per method, in percent, then each method's accuracy matrix."""
        name = self.stream.get("name", "stream")
        lines = [
            f"{name}: {len(self.task_names)} tasks; ACC: mean final accuracy, BWT: mean change "
            "of each earlier task's accuracy by the end (0: no forgetting)",
            f"{'method':<10}{'ACC (%)':>9}{'BWT (%)':>9}{'time (s)':>10}",
        ]
        for m, matrix in self.matrices.items():
            lines.append(
                f"{m:<10}{100 * matrix.acc():>9.2f}{100 * matrix.bwt():>9.2f}"
                f"{self.seconds[m]:>10.1f}"
            )
        for m, matrix in self.matrices.items():
            lines += ["", f"{m}: {matrix.format_table()}"]
        return "\n".join(lines)

    def tables(self) -> dict[str, Any]:
        """``results``: one row per method with ACC, BWT (fractions) and fit seconds."""
        import pandas as pd

        rows = [
            {"method": m, "acc": mat.acc(), "bwt": mat.bwt(), "fit_seconds": self.seconds[m]}
            for m, mat in self.matrices.items()
        ]
        return {"results": pd.DataFrame(rows, columns=["method", "acc", "bwt", "fit_seconds"])}

    def plot(self) -> dict[str, Any]:
        """``accuracy_matrices``: each method's matrix as a heat map (percent), side by side."""
        from neuro.plotting import new_figure

        n = len(self.task_names)
        side = max(2.4, 0.4 * n)
        fig, axes = new_figure(ncols=len(self.matrices), size=(side + 0.4, side + 0.6))
        ticks = np.arange(n)
        image = None
        for ax, (m, matrix) in zip(axes[0], self.matrices.items(), strict=True):
            image = ax.imshow(100 * matrix.matrix, vmin=0, vmax=100, cmap="viridis")
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.set_yticks(ticks, [str(t) for t in ticks])
            ax.set_xlabel("task scored")
            ax.set_title(f"{m}\nACC {100 * matrix.acc():.1f} %  BWT {100 * matrix.bwt():.1f} %")
        axes[0, 0].set_ylabel("after learning task")
        fig.colorbar(image, ax=list(axes[0]), label="accuracy (%)")
        return {"accuracy_matrices": fig}

    def _save_extra(self, folder: Path, overwrite: bool) -> None:
        """``accuracy_matrices.npz`` and ``models/<method>.pt``."""
        from neuro.io import atomic_open

        arrays = {m: matrix.matrix for m, matrix in self.matrices.items()}
        with atomic_open(folder / "accuracy_matrices.npz", "wb") as fh:
            np.savez(fh, task_names=np.array(self.task_names, dtype=str), **arrays)
        for m, model in self.models.items():
            model.save(folder / "models" / f"{m}.pt", overwrite=overwrite)


# ----------------------------------------------------------------------------- the command
def run(args: argparse.Namespace) -> int:
    """Entry point of ``neuro snn``."""
    from neuro.cli import errors_as_flags
    from neuro.snn.continual import ContinualSNN
    from neuro.train.device import resolve_device

    methods = check_methods(args.methods)
    stream = load_stream(args)
    settings = model_settings(args, stream, methods)
    with errors_as_flags({"device": "--device"}):
        device = str(resolve_device(args.device))
    models, seconds = {}, {}
    for method in methods:
        start = time.perf_counter()
        with errors_as_flags(_PARAMETER_FLAGS):
            model = ContinualSNN(
                method=method,
                **settings,
                device=args.device,
                random_state=args.seed,
                verbose=max(0, args.verbose - 1),
            ).fit(stream)
        models[method], seconds[method] = model, time.perf_counter() - start
        log.info(
            "%s: ACC %.2f %%, BWT %.2f %% (%.1f s)",
            method,
            100 * model.acc_,
            100 * model.bwt_,
            seconds[method],
        )
    shared = {**settings, "T": int(next(iter(models.values())).net_.T), "device": device}
    shared["seed"] = args.seed
    comparison = ContinualComparison(models, seconds, _describe_stream(stream, args), shared)
    comparison.save(args.out, overwrite=True, figures=not args.no_figures)
    sizes = "-".join(str(s) for s in next(iter(models.values())).sizes_)
    print(
        f"neuro snn: {args.stream}, {len(stream)} tasks, spiking MLP {sizes} "
        f"({settings['neuron_method']}, T={shared['T']}), epochs per task: {settings['epochs']}"
    )
    print(comparison.format_table())
    print(f"  written to {args.out}")
    return 0
