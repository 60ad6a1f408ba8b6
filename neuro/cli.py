"""The ``neuro`` command.

Subcommands live in the modules that implement them. Each such module defines

* ``add_arguments(parser)``: its own options;
* ``run(args) -> int``: the work, given parsed arguments that already hold the
  common options ``--device``, ``--seed``, ``--out`` (a prepared folder, as a
  :class:`~pathlib.Path`), ``--overwrite`` and ``--verbose``;

and is listed in :data:`SUBCOMMANDS` (or added with :func:`register_subcommand`).
A module is imported only when its subcommand runs, so ``neuro --help`` is fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import re
import sys
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from neuro import __version__

__all__ = [
    "SUBCOMMANDS",
    "Subcommand",
    "add_common_arguments",
    "errors_as_flags",
    "main",
    "register_subcommand",
    "rename_arguments",
]


@dataclass(frozen=True)
class Subcommand:
    """A ``neuro`` subcommand: its name, one-line help, and implementing module."""

    name: str
    help: str
    module: str


#: Registered subcommands, in the order ``neuro --help`` lists them.
SUBCOMMANDS: list[Subcommand] = [
    Subcommand(
        "demo",
        "Simulate a subject, fit ridge and the readout encoders, print the per-ROI table of "
        "noise-normalised accuracy, write brain maps and figures, and check the planted truth.",
        "neuro.encoders.demo",
    ),
    Subcommand(
        "train-demo",
        "Train a linear voxel encoder on planted linear responses through the shared Trainer "
        "(precision, several devices, exact --resume) and report the recovery.",
        "neuro.train.demo",
    ),
    Subcommand(
        "simulate-fmri",
        "Simulate an fMRI experiment with planted receptive fields and write it to disk as "
        "NIfTI (and BIDS) with its stimuli and ground truth.",
        "neuro.simulate_command",
    ),
    Subcommand(
        "fit-encoder",
        "Fit and compare voxel encoders (ridge and readouts) on fMRI data (NIfTI, NSD-style "
        "HDF5, or a simulated subject) and write per-ROI tables, brain maps and figures.",
        "neuro.encoders.command",
    ),
    Subcommand(
        "dendrites",
        "Every number of the sparse-pattern theory of active dendrites for one segment (n, a, s, "
        "theta, m, noise), optionally checked by simulation.",
        "neuro.dendrites.command",
    ),
    Subcommand(
        "dendrites-figures",
        "The main figures of Ahmad & Hawkins (2016) from the theory, with Monte Carlo points "
        "and confidence intervals, as CSVs and PNGs.",
        "neuro.dendrites.figures_command",
    ),
    Subcommand(
        "connectome",
        "Dynamic functional connectome of calcium traces from several animals (or a simulation "
        "with planted communities): affinities, non-negative tensor factorisation, communities.",
        "neuro.connectome.command",
    ),
    Subcommand(
        "rnn",
        "Train RNNs with trainable neuron timescales on N-parity or N-DMS under the single- and "
        "multi-head curricula; compare the taus, network timescales, robustness and forgetting.",
        "neuro.rnn.command",
    ),
    Subcommand(
        "neuroformer",
        "Neuroformer on spikes (NWB, arrays, or a simulated circuit with known wiring): train "
        "(resumable), generate spikes, decode behaviour from a few labels.",
        "neuro.spikes.command",
    ),
    Subcommand(
        "snn",
        "Spiking networks learning a stream of tasks (permuted or split digits, permuted MNIST, "
        "split CIFAR-100) with HLOP, GPM, EWC or fine-tuning: accuracy matrices, ACC and BWT.",
        "neuro.snn.command",
    ),
    Subcommand(
        "rl",
        "Deep RL with predictive auxiliary objectives (Fang & Stachenfeld 2024): train agents per "
        "objective and seed, learning curves, transfer, module representations, claim verdicts.",
        "neuro.rl.command",
    ),
    Subcommand(
        "brain3d",
        "Decode 3D objects from fMRI (a simulated subject, or NIfTI betas with meshes): shape "
        "prior, fMRI -> latents, conditional flow; lesion each ROI and diagnose the impaired one.",
        "neuro.decoding.command",
    ),
]


def register_subcommand(name: str, help: str, module: str) -> None:
    """Add a subcommand implemented by ``module`` (see this module's docstring)."""
    if any(sc.name == name for sc in SUBCOMMANDS):
        raise ValueError(f"a neuro subcommand named {name!r} is already registered.")
    SUBCOMMANDS.append(Subcommand(name, help, module))


def add_common_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """Options every subcommand shares."""
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--device",
        default="auto",
        help="'auto' (cuda, then mps, then cpu), 'cpu', 'cuda', 'cuda:N' or 'mps' (default: auto)",
    )
    group.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    group.add_argument(
        "--out",
        type=Path,
        default=Path("runs") / name,
        metavar="DIR",
        help=f"output folder (default: runs/{name}); an existing non-empty folder is refused "
        "unless --overwrite is given",
    )
    group.add_argument(
        "--overwrite", action="store_true", help="write into --out even if it holds files"
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=1,
        help="more output; -vv also shows tracebacks on errors",
    )
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bars or logs")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default once: not where the help already says it, nor for flags."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default" in text.lower()
            or action.default is None
            or isinstance(action.default, bool)
            or action.default == argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        return super()._get_help_string(action)


def _build_parser(chosen: Subcommand | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuro",
        description="neuro: computational-neuroscience models in PyTorch. "
        "Run `neuro COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"neuro {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for sc in SUBCOMMANDS:
        sp = sub.add_parser(
            sc.name, help=sc.help, description=sc.help, formatter_class=_HelpFormatter
        )
        if chosen is not None and sc.name == chosen.name:
            module = importlib.import_module(sc.module)
            module.add_arguments(sp)
            add_common_arguments(sp, sc.name)
            sp.set_defaults(_run=module.run, _parser=sp)
    return parser


def rename_arguments(message: str, names: dict[str, str], flags: frozenset = frozenset()) -> str:
    """``message`` with library argument names written as command-line flags.

    Parameters
    ----------
    message : str
    names : dict
        Library name -> flag (``{"sampling_rate": "--sampling-rate"}``).
        ``name=value`` becomes ``flag value`` anywhere; a name holding ``_``
        becomes its flag anywhere; a one-word name only where it opens the
        message (``images: ...``, ``rank must ...``), since it may be prose
        elsewhere.
    flags : frozenset of str
        Names that are on/off flags: ``name=True`` becomes the flag alone and
        ``name=False`` "without the flag".
    """
    for name, flag in names.items():
        if name in flags:
            message = re.sub(rf"(?<![\w.-]){re.escape(name)}=True\b", flag, message)
            message = re.sub(rf"(?<![\w.-]){re.escape(name)}=False\b", f"without {flag}", message)
        message = re.sub(rf"(?<![\w.-]){re.escape(name)}=", f"{flag} ", message)
        if "_" in name:
            message = re.sub(rf"(?<![\w.-]){re.escape(name)}(?![\w(])", flag, message)
        else:
            message = re.sub(rf"^{re.escape(name)}(?=:| must\b| is\b| has\b)", flag, message)
    # "pass --overwrite (--overwrite on the command line)" says it once on the command line
    return re.sub(r"(--[\w-]+) \(\1 on the command line\)", r"\1", message)


@contextlib.contextmanager
def errors_as_flags(names: dict[str, str]) -> Iterator[None]:
    """Re-raise an :class:`~neuro.errors.InputError` from the block with ``names`` as flags.

    For a command that passes a flag to a library parameter of another name:
    ``with errors_as_flags({"images": "--betas"}): load_nifti_betas(args.betas, ...)``
    reports a damaged file as ``--betas: ...``, not as the reader's ``images: ...``.
    """
    from neuro.errors import InputError

    try:
        yield
    except InputError as err:
        raise type(err)(rename_arguments(str(err), names)) from None


def _in_flags(message: str, parser: argparse.ArgumentParser | None) -> str:
    """``message`` in the parser's flag names (see :func:`rename_arguments`)."""
    if parser is None:
        return message
    names, bools = {}, set()
    for action in parser._actions:
        flags = [o for o in action.option_strings if o.startswith("--")]
        if flags and action.dest.isidentifier() and action.dest not in ("help", "version"):
            names[action.dest] = flags[0]
            if action.nargs == 0 and isinstance(action.const, bool):
                bools.add(action.dest)
    return rename_arguments(message, names, frozenset(bools))


def _check_resume_folder(out: Path) -> None:
    """Refuse ``--resume`` into a non-empty folder that holds no checkpoint of a run."""
    from neuro.errors import OutputExistsError

    if out.is_dir() and any(out.iterdir()) and not any(out.glob("**/checkpoints/last.pt")):
        raise OutputExistsError(
            f"--resume: the folder {str(out)!r} holds files but no checkpoints/last.pt of an "
            "earlier run, so there is nothing to resume and its files would be overwritten. "
            "Give the --out of the run to resume, or run without --resume."
        )


def run_script(prog: str, parser: argparse.ArgumentParser, run, argv=None) -> int:
    """A script's ``main``: parse, ``run(args)``, an InputError as one line and exit status 2.

    For the scripts in ``scripts/`` whose parser has the common options
    (:func:`add_common_arguments`: ``--out``, ``--quiet``, ``--verbose``). A
    failed run removes the output folders it created (if still empty), so
    no empty folder is left behind.

    Parameters
    ----------
    prog : str
        The script's name, in front of the error line.
    parser : argparse.ArgumentParser
    run : callable
        ``run(args) -> int`` (0 on success).
    argv : list of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    from neuro.errors import InputError

    args = parser.parse_args(argv)
    args.verbose = 0 if args.quiet else args.verbose
    out = Path(args.out).expanduser()
    created = [p for p in (out, *out.parents) if not p.exists()]
    ok = False
    try:
        status = run(args)
        ok = status == 0
        return status
    except InputError as err:
        if args.verbose >= 2:
            traceback.print_exc()
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    finally:
        if not ok:
            for folder in created:
                with contextlib.suppress(OSError):
                    folder.rmdir()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``neuro`` command; returns the exit status.

    An :class:`~neuro.errors.InputError` (bad input, a missing or unreadable
    file, an existing output, a damaged checkpoint) is printed in one line
    that names the fix, with exit status 2; ``-vv`` adds its traceback. Any
    other exception is a bug in neuro and shows its traceback. A run that
    fails leaves no empty ``--out`` folder behind.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    names = {sc.name: sc for sc in SUBCOMMANDS}
    chosen = next((names[a] for a in argv if a in names), None)
    parser = _build_parser(chosen)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0

    verbose = 0 if args.quiet else args.verbose
    args.verbose = verbose
    logging.basicConfig(
        level=logging.INFO if verbose >= 1 else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )
    from neuro.errors import InputError
    from neuro.io import prepare_output_dir
    from neuro.train.distributed import is_rank_zero

    out = Path(args.out).expanduser()
    created = [p for p in (out, *out.parents) if not p.exists()]
    ok = False
    try:
        if getattr(args, "resume", None):
            _check_resume_folder(out)
        elif is_rank_zero():
            prepare_output_dir(out, overwrite=args.overwrite)
        status = int(args._run(args) or 0)
        ok = status == 0
        return status
    except InputError as err:
        if verbose >= 2:
            traceback.print_exc()
        message = _in_flags(str(err), getattr(args, "_parser", None))
        print(f"neuro {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"neuro {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if not ok:  # remove the folders this run created, where it left them empty
            for folder in created:
                with contextlib.suppress(OSError):
                    folder.rmdir()
