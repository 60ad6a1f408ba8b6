"""A subcommand for the CLI tests: fails the way it is told to (see tests/test_cli.py)."""

from __future__ import annotations

import argparse

from neuro.cli import errors_as_flags
from neuro.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fail", choices=["input", "alias", "bug", "none"], default="none")
    parser.add_argument("--sampling-rate", type=float, default=1.0, help="frames per second")


def run(args: argparse.Namespace) -> int:
    if args.fail == "input":
        raise InputError(
            f"sampling_rate must be > 0; got {args.sampling_rate}. Also sampling_rate=0."
        )
    if args.fail == "alias":  # a reader's error, reported under the flag that fed it
        with errors_as_flags({"images": "--betas"}):
            raise InputError("images: cannot read 'x.nii.gz'; the images of the stimuli are fine.")
    if args.fail == "bug":
        raise KeyError("a programming error")
    (args.out / "done.txt").write_text("ok")
    return 0
