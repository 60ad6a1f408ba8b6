"""RNN timescales: train single- and multi-head curricula on N-parity (or N-DMS) and compare them.

The same as ``neuro rnn`` (same options, same errors). Trains a leaky RNN
with one trainable timescale per neuron under each curriculum with the same
budget, then writes into --out the N reached over epochs, the trained taus
and the network-mediated (autocorrelation) timescales at every N solved,
accuracy after ablating neurons and after perturbing recurrent weights, and
retention of earlier N, as metrics.json, CSVs and figures (Khajehabdollahi et
al., ICLR 2024). The small default (64 neurons, 15 epochs of 50 batches)
runs in about a minute on a CPU, and --resume continues a killed run:

    python scripts/rnn_timescales.py --out runs/rnn [--task dms] [--epochs 60]

The public code's variants: --model mod (the nonlinearity inside the leak)
or --model continuous --duplicates 2 3 (inputs duplicated, taus scaled),
with --nonlinearity {leaky_relu,relu,tanh,sigmoid}; --curricula single
multi sliding --window 3 (the sliding window). On a GPU, --preset paper runs
the paper's sizes (500 neurons, batches of 256, 600 per epoch, N up to 100;
projected from one CPU thread at 20 min per epoch at N = 100):

    python scripts/rnn_timescales.py --preset paper --device cuda --out runs/rnn_paper
"""

from __future__ import annotations

import sys

from neuro.cli import main

if __name__ == "__main__":
    sys.exit(main(["rnn", *sys.argv[1:]]))
