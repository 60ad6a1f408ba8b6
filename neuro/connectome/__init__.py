"""Dynamic functional connectomes from multi-animal calcium imaging (Dyballa et al., 2024).

- :mod:`neuro.connectome.affinity`: the derivative-based pairwise affinity per
  time point (and a correlation baseline), batched over pairs in torch, into a
  ``(time bins, animals, pairs)`` tensor: :func:`affinity_tensor`;
- :mod:`neuro.connectome.ntf`: non-negative CP of that tensor (HALS or
  multiplicative updates; the package's torch solver, :mod:`neuro.connectome.hals`,
  float32 on any device, or tensorly's), rank selection from error and
  stability (:func:`select_rank`), and the estimator :class:`DynamicConnectome`;
- :mod:`neuro.connectome.communities`: each component as a weighted networkx
  graph, partitioned by a weighted stochastic block model chosen by exact ICL
  (:mod:`neuro.connectome.sbm`; networkx Louvain as an option):
  :func:`find_communities`;
- :mod:`neuro.connectome.report`: :class:`ConnectomeReport`, what a fitted
  model found as a :class:`neuro.results.Result` (``model.report()``);
- :mod:`neuro.connectome.groundtruth`: :func:`evaluate_recovery`, the
  recovery of a simulation's planted communities, epochs and animals;
- :mod:`neuro.connectome.stability`: :func:`split_half_stability` (refits on
  halves of the animals) and :func:`fit_per_animal` (cells not matched
  across animals);
- :mod:`neuro.connectome.plots`: factors with epochs, sorted affinity
  matrices, network drawings, rank-selection figure.

A fitted :class:`DynamicConnectome` is kept with ``model.save(path)`` and
``DynamicConnectome.load(path)`` (one file, exact round trip); its report
with ``model.report().save(folder)`` (tables, GraphML, metrics, figures).
"""

from neuro.connectome.affinity import (
    affinity_tensor,
    check_traces,
    correlation_affinity,
    derivative_affinity,
    pair_index,
)
from neuro.connectome.communities import (
    ComponentCommunities,
    community_result,
    component_graph,
    find_communities,
    pairs_to_matrix,
    partition,
    write_graphml,
)
from neuro.connectome.groundtruth import evaluate_recovery
from neuro.connectome.ntf import (
    DynamicConnectome,
    NTFResult,
    RankSelection,
    check_rank,
    check_ranks,
    factor_match_score,
    fit_ntf,
    select_rank,
)
from neuro.connectome.report import ConnectomeReport
from neuro.connectome.sbm import (
    SBMFit,
    adjusted_rand,
    bootstrap_stability,
    fit_sbm,
    fit_weighted_sbm,
    sbm_icl,
)
from neuro.connectome.stability import SplitHalfStability, fit_per_animal, split_half_stability

__all__ = [
    "ComponentCommunities",
    "ConnectomeReport",
    "DynamicConnectome",
    "NTFResult",
    "RankSelection",
    "SBMFit",
    "SplitHalfStability",
    "adjusted_rand",
    "affinity_tensor",
    "bootstrap_stability",
    "check_rank",
    "check_ranks",
    "check_traces",
    "community_result",
    "component_graph",
    "correlation_affinity",
    "derivative_affinity",
    "evaluate_recovery",
    "factor_match_score",
    "find_communities",
    "fit_ntf",
    "fit_per_animal",
    "fit_sbm",
    "fit_weighted_sbm",
    "pair_index",
    "pairs_to_matrix",
    "partition",
    "sbm_icl",
    "select_rank",
    "split_half_stability",
    "write_graphml",
]
