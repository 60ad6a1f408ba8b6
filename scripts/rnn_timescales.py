"""RNN timescales: train single- and multi-head curricula on N-parity (or N-DMS) and compare them.

Trains a leaky RNN with one trainable timescale per neuron under each
curriculum with the same budget, then writes into --out the N reached over
epochs, the trained taus and the network-mediated (autocorrelation)
timescales at every N solved, accuracy after ablating neurons and after
perturbing recurrent weights, and retention of earlier N, as metrics.json and
figures (Khajehabdollahi et al., ICLR 2024). The same as ``neuro rnn``; the
small default (64 neurons, 15 epochs of 50 batches) runs in about a minute on
a CPU, and --resume continues a killed run:

    python scripts/rnn_timescales.py --out runs/rnn_timescales [--task dms] [--epochs 60]
"""

from __future__ import annotations

import argparse
import sys

from neuro.cli import add_common_arguments
from neuro.io import prepare_output_dir
from neuro.rnn.command import add_arguments, run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_arguments(parser)
    add_common_arguments(parser, "rnn_timescales")
    args = parser.parse_args(argv)
    args.verbose = 0 if args.quiet else args.verbose
    prepare_output_dir(args.out, overwrite=args.overwrite or args.resume)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
