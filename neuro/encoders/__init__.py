"""fMRI voxel encoders and their metrics."""

from neuro.encoders.metrics import voxel_correlation

__all__ = ["voxel_correlation"]
