"""``neuro connectome``: dynamic functional connectome of calcium traces.

Reads traces (``--traces FILE.h5|.npz|.npy|.nwb``; see :mod:`data_loaders.calcium`)
or, without them, simulates animals with planted communities
(:mod:`data_loaders.simulate.calcium`); fits :class:`~neuro.connectome.DynamicConnectome`
with ``--rank R`` or a rank chosen among ``--ranks``; writes into ``--out`` the
model's report (:class:`~neuro.connectome.report.ConnectomeReport`):
``metrics.json`` (rank table, errors, communities, the input, and on
simulated data the recovery of the planted truth), ``summary.txt``, the
factor and community tables (``time_factors.csv``, ``animal_factors.csv``,
``pair_factors.csv``, ``communities.csv``, ``rank_selection.csv``), one
GraphML graph per component, the figures (``figures/factors.png``,
``affinity_matrices.png``, ``networks.png``, ``rank_selection.png``), and the
fitted model (``model.pt``; ``DynamicConnectome.load`` reads it).

The method needs identified cells: neuron ``i`` is the same cell in every
animal (or registered sessions of one animal stacked on the animal axis:
:func:`data_loaders.calcium.stack_sessions`). ``--split-half N`` refits on N
random halves of the animals and writes how well the halves agree
(:func:`~neuro.connectome.stability.split_half_stability`, in
``split_half/``); ``--per-animal`` fits each animal alone instead, for cells
that cannot be matched across animals (one report per animal in
``animal-<id>/``).
"""

from __future__ import annotations

import argparse
import re

__all__ = ["add_arguments", "run"]

TRACE_SUFFIXES = (".h5", ".hdf5", ".npz", ".npy", ".nwb")
#: the simulation's planted communities (simulate_calcium's defaults), so --neurons >= 24
SIM_COMMUNITIES, SIM_COMMUNITY_SIZE = 3, 8
#: simulate_calcium's argument names and the flags that set them
_SIMULATOR_FLAGS = {
    "n_animals": "--animals",
    "n_neurons": "--neurons",
    "n_frames": "--frames",
    "noise": "--noise",
}


def _gain(text: str):
    """``--min-gain``: a number, or "null"."""
    if text == "null":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number or 'null'; got {text!r}") from None


def _simulate(args: argparse.Namespace):
    """``simulate_calcium`` with the flags' values; its messages name the flags."""
    from data_loaders.simulate.calcium import simulate_calcium
    from neuro._validation import check_int
    from neuro.errors import InputError

    check_int("--neurons", args.neurons, minimum=SIM_COMMUNITIES * SIM_COMMUNITY_SIZE)
    try:
        return simulate_calcium(
            n_animals=args.animals,
            n_neurons=args.neurons,
            n_frames=args.frames,
            n_communities=SIM_COMMUNITIES,
            community_size=SIM_COMMUNITY_SIZE,
            noise=args.noise,
            seed=args.seed,
        )
    except InputError as err:
        message = str(err)
        for name, flag in _SIMULATOR_FLAGS.items():
            message = re.sub(rf"(?<![\w-]){name}(?!\w)", flag, message)
        raise InputError(message) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro connectome``."""
    parser.add_argument(
        "--traces", default=None, help="traces file (.h5/.hdf5/.npz/.npy/.nwb); default: simulate"
    )
    parser.add_argument("--sampling-rate", type=float, default=None, help="Hz, for .npy traces")
    parser.add_argument(
        "--rank",
        type=int,
        default=None,
        help="number of NTF components; default: chosen among --ranks",
    )
    parser.add_argument(
        "--ranks", type=int, nargs="+", default=[2, 3, 4, 5], help="candidates when no --rank"
    )
    parser.add_argument(
        "--min-gain",
        type=_gain,
        default=0.01,
        help="least error decrease for a step up in rank, or 'null': several times the same "
        "step's decrease on time-shifted traces (for large networks)",
    )
    parser.add_argument(
        "--affinity",
        choices=("derivative", "correlation"),
        default="derivative",
        help="pairwise affinity of the traces",
    )
    parser.add_argument(
        "--bin-size",
        type=float,
        default=2.0,
        help="seconds per time bin (a warning suggests a longer one when bins hold too few events)",
    )
    parser.add_argument(
        "--method", choices=("hals", "mu"), default="hals", help="NTF solver (tensorly)"
    )
    parser.add_argument(
        "--backend",
        choices=("torch", "numpy", "pytorch"),
        default="torch",
        help="NTF solver: the package's torch HALS (float32, on --device), or tensorly's on "
        "its numpy or pytorch backend",
    )
    parser.add_argument(
        "--n-iter", type=int, default=1000, help="most NTF iterations (stops once converged)"
    )
    parser.add_argument("--restarts", type=int, default=3, help="random restarts per rank")
    parser.add_argument(
        "--communities",
        choices=("sbm", "louvain", "greedy"),
        default="sbm",
        help="partition of each component: an exponential-weight SBM (with or without degree "
        "correction, chosen by its criterion), or modularity",
    )
    parser.add_argument(
        "--sbm-model",
        choices=("auto", "dc", "plain"),
        default="auto",
        help="--communities sbm: degree-corrected or not chosen per component (auto), always "
        "degree-corrected (dc), or the earlier Gaussian model without degrees (plain)",
    )
    parser.add_argument(
        "--stability-bootstraps",
        type=int,
        default=5,
        metavar="N",
        help="refits on noisier copies for each partition's stability score (0: none)",
    )
    parser.add_argument(
        "--split-half",
        type=int,
        default=0,
        metavar="N",
        help="also refit on N random halves of the animals and report their agreement (0: no)",
    )
    parser.add_argument(
        "--per-animal",
        action="store_true",
        help="fit each animal alone (cells not matched across animals): one report per animal",
    )
    parser.add_argument("--noise", type=float, default=0.3, help="simulated noise sd")
    parser.add_argument("--animals", type=int, default=4, help="simulated animals")
    parser.add_argument(
        "--neurons", type=int, default=40, help="simulated neurons (3 communities of 8 among them)"
    )
    parser.add_argument("--frames", type=int, default=2400, help="simulated frames")
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``neuro connectome``."""
    from data_loaders.calcium import load_calcium
    from neuro._validation import check_file, check_int
    from neuro.connectome.ntf import DynamicConnectome

    # flags whose names differ from the library's arguments are checked here, by flag
    check_int("--n-iter", args.n_iter, minimum=1)
    check_int("--restarts", args.restarts, minimum=1)
    check_int("--stability-bootstraps", args.stability_bootstraps, minimum=0)
    check_int("--split-half", args.split_half, minimum=0)
    truth = None
    if args.traces:
        path = check_file("--traces", args.traces, suffixes=TRACE_SUFFIXES)
        data = load_calcium(path, sampling_rate=args.sampling_rate)
    else:
        sim = _simulate(args)
        data, truth = sim.data, sim.truth
    params = dict(
        rank=args.rank,
        ranks=tuple(args.ranks),
        min_gain=args.min_gain,
        affinity=args.affinity,
        bin_size=args.bin_size,
        method=args.method,
        backend=args.backend,
        n_iter_max=args.n_iter,
        n_restarts=args.restarts,
        community_method=args.communities,
        sbm_model=args.sbm_model,
        n_bootstrap=args.stability_bootstraps,
        device=args.device,
        random_state=args.seed,
        verbose=max(0, args.verbose - 1),
    )
    if args.per_animal:
        return _per_animal(data, params, args)
    model = DynamicConnectome(**params).fit(data)
    described = {
        "source": str(args.traces) if args.traces else "simulated",
        "shape": list(data.shape),
        "missing_neurons": int(data.missing.sum()),
        "sampling_rate": data.sampling_rate,
    }
    report = model.report(truth=truth, data=described)
    report.save(args.out, overwrite=True, figures=not args.no_figures)
    model.save(args.out / "model.pt", overwrite=True)
    print(f"neuro connectome: traces {data.shape}")
    print(report.format_table())
    if args.split_half:
        from neuro.connectome.stability import split_half_stability

        halves = split_half_stability(data, n_splits=args.split_half, model=model)
        halves.save(args.out / "split_half", overwrite=True, figures=not args.no_figures)
        print(halves.format_table())
    print(f"  written to {args.out}")
    return 0


def _per_animal(data, params: dict, args: argparse.Namespace) -> int:
    """``--per-animal``: one model and report per animal, in ``animal-<id>/``."""
    from neuro.connectome.stability import fit_per_animal

    print(f"neuro connectome: traces {data.shape}, each animal fitted alone")
    for model in fit_per_animal(data, **params):
        name = model.animal_ids_[0]
        folder = args.out / f"animal-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"
        model.report(data={"animal": name, "neurons": len(model.neuron_labels_)}).save(
            folder, overwrite=True, figures=not args.no_figures
        )
        model.save(folder / "model.pt", overwrite=True)
        print(f"{name}: {len(model.neuron_labels_)} neurons, rank {model.rank_}, relative error "
              f"{model.reconstruction_error_:.4f}, communities "
              f"{[int(c.labels.max()) + 1 for c in model.communities_]}")  # fmt: skip
    print(f"  written to {args.out}")
    return 0
