"""fMRI voxel encoders, their features and metrics, and their comparison.

- :class:`VoxelRidgeCV` and :class:`BandedRidgeCV`: voxelwise ridge with a
  cross-validated penalty per voxel (and per feature space);
- :class:`ReadoutEncoder`: linear, factorized, Gaussian and semantic-modulated
  readouts of feature maps, trained with :class:`neuro.train.Trainer`;
- :class:`GaborFeatures`, :class:`BackboneFeatures`, :func:`pool_features`,
  :func:`cached_features`: image features;
- :func:`voxel_correlation`, :func:`voxel_r2`, :func:`noise_normalized`,
  :func:`roi_summary`: metrics;
- :func:`compare_encoders`: several encoders on one dataset, per voxel and ROI.
"""

from neuro.encoders.banded import BandedRidgeCV
from neuro.encoders.compare import EncoderComparison, compare_encoders
from neuro.encoders.features import (
    BackboneFeatures,
    GaborFeatures,
    cached_features,
    pool_features,
)
from neuro.encoders.metrics import noise_normalized, roi_summary, voxel_correlation, voxel_r2
from neuro.encoders.readouts import ReadoutEncoder
from neuro.encoders.ridge import VoxelRidgeCV

__all__ = [
    "BackboneFeatures",
    "BandedRidgeCV",
    "EncoderComparison",
    "GaborFeatures",
    "ReadoutEncoder",
    "VoxelRidgeCV",
    "cached_features",
    "compare_encoders",
    "noise_normalized",
    "pool_features",
    "roi_summary",
    "voxel_correlation",
    "voxel_r2",
]
