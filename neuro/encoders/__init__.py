"""fMRI voxel encoders, their features and metrics, and their comparison.

- :class:`VoxelRidgeCV` and :class:`BandedRidgeCV`: voxelwise ridge with a
  cross-validated penalty per voxel (and per feature space);
- :class:`ReadoutEncoder`: linear, factorized, Gaussian and semantic-modulated
  readouts of feature maps, trained with :class:`neuro.train.Trainer`;
- :class:`TransformerEncoder`: learned ROI (or voxel) queries that cross-attend
  to feature-map tokens (attention routing, with ``routing_maps``);
- :class:`InContextEncoder`: BraInCoRL's meta-learned transformer that writes a
  new subject's voxel encoders from a few (image, response) pairs;
- :class:`GaborFeatures`, :class:`BackboneFeatures`, :func:`pool_features`,
  :func:`cached_features`: image features; :func:`load_backbone`,
  :func:`list_layers`, :func:`clip_embeddings`: pretrained torchvision, timm and
  open_clip networks by name (the ``backbones`` extra);
- :func:`voxel_correlation`, :func:`voxel_r2`, :func:`mean_r2`,
  :func:`mean_correlation`, :func:`noise_normalized`, :func:`roi_summary`: metrics;
- :func:`compare_encoders`: several encoders on one dataset, per voxel and ROI
  (an :class:`EncoderComparison`, a :class:`neuro.results.Result`);
  :func:`compare_encoders_sliced` splits the voxels across processes
  (torchrun, SLURM);
- :func:`check_ground_truth`, :func:`receptive_field_recovery`: fits against a
  simulated subject's planted truth; :mod:`neuro.encoders.plots`: figures.

The estimators follow the package's contract (:class:`neuro.base.NeuroEstimator`):
``score`` is R² and ``correlation_score`` the mean Pearson r; seeds are
``random_state``; ``save(path)`` / ``Class.load(path)`` round-trip exactly;
the class attribute ``input_kind`` (``"vectors"`` or ``"maps"``) says what
``X`` they read.
"""

from neuro.encoders.backbones import clip_embeddings, list_layers, load_backbone
from neuro.encoders.banded import BandedRidgeCV
from neuro.encoders.compare import EncoderComparison, compare_encoders
from neuro.encoders.distributed import compare_encoders_sliced
from neuro.encoders.features import (
    BackboneFeatures,
    GaborFeatures,
    cached_features,
    pool_features,
)
from neuro.encoders.groundtruth import check_ground_truth, receptive_field_recovery
from neuro.encoders.incontext import InContextEncoder, subject_from_dataset
from neuro.encoders.metrics import (
    mean_correlation,
    mean_r2,
    noise_normalized,
    roi_summary,
    voxel_correlation,
    voxel_r2,
)
from neuro.encoders.readouts import ReadoutEncoder
from neuro.encoders.ridge import VoxelRidgeCV
from neuro.encoders.transformer import TransformerEncoder

__all__ = [
    "BackboneFeatures",
    "BandedRidgeCV",
    "EncoderComparison",
    "GaborFeatures",
    "InContextEncoder",
    "ReadoutEncoder",
    "TransformerEncoder",
    "VoxelRidgeCV",
    "cached_features",
    "check_ground_truth",
    "clip_embeddings",
    "compare_encoders",
    "compare_encoders_sliced",
    "list_layers",
    "load_backbone",
    "mean_correlation",
    "mean_r2",
    "noise_normalized",
    "pool_features",
    "receptive_field_recovery",
    "roi_summary",
    "subject_from_dataset",
    "voxel_correlation",
    "voxel_r2",
]
