"""Recurrent networks that learn memory tasks, and where their long timescales come from.

Khajehabdollahi et al., "Emergent mechanisms for long timescales depend on
training curriculum and affect performance in memory tasks" (ICLR 2024):

* :mod:`~neuro.rnn.tasks`: N-parity and N-DMS streams (batched generators and
  gymnasium environments);
* :mod:`~neuro.rnn.models`: a leaky RNN with a trainable timescale per neuron,
  the public code's variants (the nonlinearity inside the leak; continuous
  time with duplicated inputs), GRU and LSTM baselines;
* :mod:`~neuro.rnn.curricula`: single-head, multi-head and sliding-window
  curricula on the shared Trainer;
* :mod:`~neuro.rnn.timescales`: autocorrelation timescales, ablation,
  perturbation and retention;
* :mod:`~neuro.rnn.analyses`: the public code's PCA dimensionality, ablation
  by tau, normalised perturbations and retraining;
* :mod:`~neuro.rnn.experiment`: the paper's comparison end to end.
"""

from neuro.rnn.analyses import (
    network_dimensionality,
    normalized_perturbation_curve,
    pca_dimensionality,
    retraining_curve,
    stream_accuracy,
    tau_ablation,
)
from neuro.rnn.curricula import (
    CURRICULA,
    CurriculumConfig,
    CurriculumResult,
    evaluate,
    load_network,
    train_curriculum,
)
from neuro.rnn.experiment import CurriculumComparison, compare_curricula
from neuro.rnn.models import (
    MODELS,
    NONLINEARITIES,
    ContinuousRNN,
    GRUNetwork,
    LeakyRNN,
    LSTMNetwork,
    ModRNN,
    build_model,
)
from neuro.rnn.tasks import TASKS, DMSEnv, ParityEnv, make_batch, reference_labels
from neuro.rnn.timescales import (
    TimescaleResult,
    ablation_curve,
    autocorrelation,
    fit_timescales,
    network_timescales,
    perturbation_curve,
    retention,
    simulate_activity,
)

__all__ = [
    "CURRICULA",
    "MODELS",
    "NONLINEARITIES",
    "TASKS",
    "ContinuousRNN",
    "CurriculumComparison",
    "CurriculumConfig",
    "CurriculumResult",
    "DMSEnv",
    "GRUNetwork",
    "LSTMNetwork",
    "LeakyRNN",
    "ModRNN",
    "ParityEnv",
    "TimescaleResult",
    "ablation_curve",
    "autocorrelation",
    "build_model",
    "compare_curricula",
    "evaluate",
    "fit_timescales",
    "load_network",
    "make_batch",
    "network_dimensionality",
    "network_timescales",
    "normalized_perturbation_curve",
    "pca_dimensionality",
    "perturbation_curve",
    "reference_labels",
    "retention",
    "retraining_curve",
    "simulate_activity",
    "stream_accuracy",
    "tau_ablation",
    "train_curriculum",
]
