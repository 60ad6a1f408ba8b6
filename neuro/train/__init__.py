"""Shared training utilities: device and precision, the Trainer, checkpoints,
distributed runs, progress and seeding.

Every gradient-trained model in neuro trains through :class:`Trainer`; models
with other learning rules use :class:`Runtime`, :func:`make_checkpoint` /
:func:`restore_checkpoint`, :func:`progress` and :func:`seed_everything`
directly.
"""

from neuro.train.checkpoint import (
    CheckpointError,
    check_model_state,
    config_from_dict,
    config_to_dict,
    load_checkpoint,
    make_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from neuro.train.device import PRECISIONS, autocast, resolve_device, resolve_precision
from neuro.train.distributed import Runtime, global_rank, is_rank_zero, world_size
from neuro.train.progress import get_logger, progress
from neuro.train.seed import get_rng_state, seed_everything, set_deterministic, set_rng_state
from neuro.train.trainer import Callback, Trainer, TrainerConfig, cosine_with_warmup

__all__ = [
    "PRECISIONS",
    "Callback",
    "CheckpointError",
    "Runtime",
    "Trainer",
    "TrainerConfig",
    "autocast",
    "check_model_state",
    "config_from_dict",
    "config_to_dict",
    "cosine_with_warmup",
    "get_logger",
    "get_rng_state",
    "global_rank",
    "is_rank_zero",
    "load_checkpoint",
    "make_checkpoint",
    "progress",
    "resolve_device",
    "resolve_precision",
    "restore_checkpoint",
    "save_checkpoint",
    "seed_everything",
    "set_deterministic",
    "set_rng_state",
    "world_size",
]
