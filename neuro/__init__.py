"""neuro: computational-neuroscience models in PyTorch.

Voxelwise fMRI encoders, spiking and recurrent circuits, dynamic connectomes and
more, all trained on the shared utilities in :mod:`neuro.train`.
"""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
