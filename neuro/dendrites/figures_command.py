"""``neuro dendrites-figures``: the main figures of Ahmad & Hawkins (2016), with their numbers.

Computes the five figures of :mod:`neuro.dendrites.paper` (false matches
against n and against a, the union property, noise robustness, the
threshold) from the theory, with Monte Carlo points and 99.9% confidence
intervals from ``--trials`` trials each where a probability is large enough
to be estimated (0: theory only), and writes into ``--out``
``<figure>.csv`` (the numbers), ``figures/<figure>.png``, ``metrics.json``
(how many simulated points there were and how many intervals hold the
theory) and ``summary.txt``. The default runs in about 20 s on a 2-core CPU.
``scripts/dendrites_figures.py`` runs the same command.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro dendrites-figures``."""
    parser.add_argument(
        "--trials",
        type=int,
        default=10_000,
        help="Monte Carlo trials per simulated point (0: theory only)",
    )
    parser.add_argument("--no-figures", action="store_true", help="write the CSVs only")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``neuro dendrites-figures``."""
    from neuro.dendrites.paper import paper_figures

    result = paper_figures(
        args.trials, device=args.device, seed=args.seed, verbose=max(0, args.verbose - 1)
    )
    out = result.save(args.out, overwrite=True, figures=not args.no_figures)
    summary = result.summary()
    print(
        f"neuro dendrites-figures: {len(result.data)} figures with CSVs in {out} "
        f"({summary['simulated_points']} simulated points x {args.trials} trials, "
        f"{summary['seconds']:.1f} s)"
    )
    print(result.format_table())
    return 0
