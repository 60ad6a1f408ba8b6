"""Dynamic functional connectome: simulate (or load) calcium traces, fit NTF, write figures.

Simulates several animals whose planted communities of neurons interact in
planted stimulus epochs (or reads ``--traces``), computes the derivative
affinity tensor in time bins of ``--bin-size`` seconds (warning when a bin
holds too few events), factorises it by non-negative CP (the package's torch
HALS), picks the rank from reconstruction error and stability across
restarts, partitions each component into communities (degree-corrected
exponential-weight SBM with bootstrap stability; ``--communities louvain``
for modularity), optionally refits on halves of the animals
(``--split-half N``) or fits each animal alone (``--per-animal``), and
writes into --out the
report (factor tables, one GraphML graph per component, metrics.json with the
recovery of the planted truth on simulated data, figures) and the fitted
model (model.pt). It is ``neuro connectome`` (same options, same messages);
the small default runs in about a minute on a CPU:

    python scripts/dynamic_connectome.py --out runs/dynamic_connectome [--traces FILE.h5]
"""

from __future__ import annotations

import sys

from neuro.cli import main

if __name__ == "__main__":
    sys.exit(main(["connectome", *sys.argv[1:]]))
