"""Spiking networks that learn task after task: Hebbian orthogonal projection (HLOP).

After Xiao et al., "Hebbian Learning based Orthogonal Projection for Continual
Learning of Spiking Neural Networks" (ICLR 2024). Work in progress (issue 16):

* :mod:`neuro.snn.neurons`: leaky integrate-and-fire neurons with surrogate
  gradients, spike encoders, and spiking MLPs trained by BPTT, DSR or OTTT;
* :mod:`neuro.snn.hlop`: lateral neurons that learn the principal subspace of
  past presynaptic activity by Oja's rule, and the strategies that project
  weight updates away from it (HLOP), beside fine-tuning, EWC and GPM;
* :mod:`neuro.snn.continual`: :class:`ContinualSNN`, a spiking network trained
  task after task with one of those strategies on :class:`neuro.train.Trainer`;
* :mod:`neuro.snn.metrics`: accuracy matrices, ACC, BWT and principal angles.
"""

from neuro.snn.continual import METHODS, ContinualSNN
from neuro.snn.hlop import EWC, GPM, HLOP, ContinualStrategy, FineTune, HebbianSubspace
from neuro.snn.metrics import AccuracyMatrix, acc, bwt, principal_angles
from neuro.snn.neurons import LIF, DirectEncoder, PoissonEncoder, SpikingMLP

__all__ = [
    "EWC",
    "GPM",
    "HLOP",
    "LIF",
    "METHODS",
    "AccuracyMatrix",
    "ContinualSNN",
    "ContinualStrategy",
    "DirectEncoder",
    "FineTune",
    "HebbianSubspace",
    "PoissonEncoder",
    "SpikingMLP",
    "acc",
    "bwt",
    "principal_angles",
]
