"""Reproduce the main figures of Ahmad & Hawkins (2016) on sparse patterns and dendrites.

The same as ``neuro dendrites-figures`` (same options, same errors): writes
into --out the five figures (false matches against n and against a, the union
property, noise robustness, the threshold) as PNGs under figures/, a CSV of
the numbers behind each, metrics.json and summary.txt. Theory curves come
from neuro.dendrites.theory; points with 99.9% confidence intervals from
Monte Carlo, where the probability is large enough to be estimated with
--trials trials. The default runs in about 20 s on a CPU:

    python scripts/dendrites_figures.py --out runs/dendrites-figures [--trials 10000]
"""

from __future__ import annotations

import sys

from neuro.cli import main

if __name__ == "__main__":
    sys.exit(main(["dendrites-figures", *sys.argv[1:]]))
