"""Dynamic functional connectome: simulate (or load) calcium traces, fit NTF, write figures.

Simulates several animals whose planted communities of neurons interact in
planted stimulus epochs (or reads ``--traces``), computes the derivative
affinity tensor, factorises it by non-negative CP with tensorly (HALS), picks
the rank from reconstruction error and stability across restarts, partitions
each component into communities (weighted SBM, number of blocks by exact
ICL; ``--communities louvain`` for modularity), and writes into --out the factors,
one GraphML graph per component, metrics.json (with the recovery of the
planted truth on simulated data) and the figures. The same as
``neuro connectome``; the small default runs in about a minute on a CPU:

    python scripts/dynamic_connectome.py --out runs/dynamic_connectome [--traces FILE.h5]
"""

from __future__ import annotations

import argparse
import sys

from neuro.cli import add_common_arguments
from neuro.connectome.command import add_arguments, run
from neuro.io import prepare_output_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_arguments(parser)
    add_common_arguments(parser, "dynamic_connectome")
    args = parser.parse_args(argv)
    args.verbose = 0 if args.quiet else args.verbose
    prepare_output_dir(args.out, overwrite=args.overwrite)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
