"""fMRI voxel encoders and their metrics."""

from neuro.encoders.metrics import voxel_correlation
from neuro.encoders.ridge import VoxelRidgeCV

__all__ = ["VoxelRidgeCV", "voxel_correlation"]
