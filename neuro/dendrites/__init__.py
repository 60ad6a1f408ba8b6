"""Sparse distributed representations and active dendrites.

- :mod:`neuro.dendrites.theory`: the equations of Ahmad & Hawkins (2016) for
  how reliably a dendritic segment recognises a sparse pattern, exact (integer
  arithmetic) and in log space (vectorised, no underflow):
  :func:`false_match_probability`, :func:`union_false_match_probability`,
  :func:`noise_match_probability`, :func:`optimal_threshold` and friends;
- :mod:`neuro.dendrites.simulate`: Monte Carlo of random patterns and segments
  in torch, with confidence intervals: :func:`simulate_false_match`,
  :func:`simulate_noise_match`, :func:`simulate_union_false_match`;
- :mod:`neuro.dendrites.layers`: neurons with dendritic segments
  (:class:`DendriticNeuronLayer`) and the active-dendrites network of Iyer et
  al. (2022) (:class:`DendriticSegments`, :class:`ActiveDendritesLayer`,
  :class:`ActiveDendritesNetwork`), trained with :class:`neuro.train.Trainer`;
- :mod:`neuro.dendrites.paper`: the paper's five figures as numbers, theory
  and simulated points (:func:`paper_figures`, a :class:`PaperFigures`
  result), drawn by :mod:`neuro.dendrites.plots`.
"""

from neuro.dendrites.layers import (
    ActiveDendritesLayer,
    ActiveDendritesNetwork,
    DendriticNeuronLayer,
    DendriticSegments,
    kwinners,
)
from neuro.dendrites.paper import PaperFigures, paper_figures
from neuro.dendrites.simulate import (
    SimulationResult,
    clopper_pearson,
    simulate_false_match,
    simulate_noise_match,
    simulate_union_false_match,
)
from neuro.dendrites.theory import (
    false_match_probability,
    false_negative_probability,
    log_false_match_probability,
    log_noise_match_probability,
    log_overlap_set_size,
    log_union_false_match_probability,
    noise_match_probability,
    optimal_threshold,
    overlap_set_size,
    paper_sweeps,
    theory_summary,
    union_false_match_probability,
    union_synapse_count,
)

__all__ = [
    "ActiveDendritesLayer",
    "ActiveDendritesNetwork",
    "DendriticNeuronLayer",
    "DendriticSegments",
    "PaperFigures",
    "SimulationResult",
    "clopper_pearson",
    "false_match_probability",
    "false_negative_probability",
    "kwinners",
    "log_false_match_probability",
    "log_noise_match_probability",
    "log_overlap_set_size",
    "log_union_false_match_probability",
    "noise_match_probability",
    "optimal_threshold",
    "overlap_set_size",
    "paper_figures",
    "paper_sweeps",
    "simulate_false_match",
    "simulate_noise_match",
    "simulate_union_false_match",
    "theory_summary",
    "union_false_match_probability",
    "union_synapse_count",
]
