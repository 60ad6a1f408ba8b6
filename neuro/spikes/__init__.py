"""Neuroformer on spike data (Antoniades et al., ICLR 2024).

* :mod:`~neuro.spikes.tokenizer`: spikes to (neuron id, dt) tokens for the
  current and past windows, with the paper's SOS, EOS and PAD specials,
  truncation that is counted and reported, and an exact round trip back to
  spikes.
* :mod:`~neuro.spikes.model`: the network (causal self-attention over the
  current window, cross-attention to the past window, stimulus and
  behaviour, id and dt heads, key/value-cached generation).
* :mod:`~neuro.spikes.neuroformer`: :class:`Neuroformer`, the estimator
  (pretraining on the shared Trainer, held-out cross-entropy, generation,
  connectivity from attention).
* :mod:`~neuro.spikes.metrics`: how generated spike trains match real
  ones (firing rates, pairwise correlations).
* :mod:`~neuro.spikes.glm`: the baselines, a Poisson GLM with coupling
  filters (connectivity, generation) and a ridge behaviour decoder.
"""

from neuro.spikes.glm import (
    PoissonGLM,
    RidgeDecoder,
    connectivity_auroc,
    correlation_connectivity,
)
from neuro.spikes.metrics import generation_statistics
from neuro.spikes.model import PAPER_SIZE, NeuroformerConfig, NeuroformerModule
from neuro.spikes.neuroformer import Neuroformer
from neuro.spikes.tokenizer import (
    BinnedSpikes,
    SpikeTokenizer,
    TruncationWarning,
    truncation_report,
)

__all__ = [
    "PAPER_SIZE",
    "BinnedSpikes",
    "Neuroformer",
    "NeuroformerConfig",
    "NeuroformerModule",
    "PoissonGLM",
    "RidgeDecoder",
    "SpikeTokenizer",
    "TruncationWarning",
    "connectivity_auroc",
    "correlation_connectivity",
    "generation_statistics",
    "truncation_report",
]
