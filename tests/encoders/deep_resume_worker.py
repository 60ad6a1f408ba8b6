"""Fit a deep encoder with step checkpoints and die abruptly at a step.

Run as a script by ``test_deep_resume.py``, so that the process ends the way
a killed run does (``os._exit``: no cleanup, no exception handlers, no
``finally``), leaving only the checkpoints it wrote in ``CHECKPOINT_DIR``:

    python -m tests.encoders.deep_resume_worker {transformer,incontext} CHECKPOINT_DIR STEP

The test imports :func:`fit` too, for the uninterrupted and the resumed runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

from neuro.encoders.incontext import InContextEncoder
from neuro.encoders.transformer import TransformerEncoder
from neuro.train import Callback

#: Five epochs of 4 optimizer steps each (54 training images / batches of 16 for the
#: transformer, 27 training voxels / batches of 8 for the in-context encoder).
TRANSFORMER = {
    "d_model": 16,
    "n_heads": 2,
    "ffn_dim": 32,
    "epochs": 5,
    "batch_size": 16,
    "lr": 3e-3,
    "patience": 20,
    "device": "cpu",
    "random_state": 3,
}
INCONTEXT = {
    "d_model": 16,
    "n_layers": 1,
    "n_heads": 2,
    "n_registers": 2,
    "k_min": 4,
    "k_max": 20,
    "n_query": 8,
    "epochs": 5,
    "batch_size": 8,
    "lr": 3e-3,
    "patience": 20,
    "device": "cpu",
    "random_state": 3,
}
ROIS = np.array(["V1", "V1", "FFA", "", "FFA", "PPA", "PPA"], dtype=object)


def transformer_data():
    """Maps ``(60, 3, 4, 5)``, responses of 7 voxels and their ROI labels (one unlabelled)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((60, 3, 4, 5)).astype(np.float32)
    y = x.reshape(60, -1) @ rng.standard_normal((60, 7)) + rng.standard_normal((60, 7))
    return x, y.astype(np.float32), ROIS


def incontext_data():
    """Two subjects' embeddings ``(40, 6)`` / ``(44, 6)`` and responses of 15 voxels each."""
    rng = np.random.default_rng(12)
    subjects = []
    for n in (40, 44):
        x = rng.standard_normal((n, 6)).astype(np.float32)
        y = x @ rng.standard_normal((6, 15)) + 0.5 * rng.standard_normal((n, 15))
        subjects.append((x, y.astype(np.float32)))
    return subjects


class DieAt(Callback):
    """Ends the process with no cleanup after optimizer step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, step, metrics):
        if step == self.step:
            os._exit(9)


def _with_callbacks(cls, callbacks):
    """A subclass of the encoder whose Trainer also runs ``callbacks``."""

    class WithCallbacks(cls):
        def _trainer(self, *args, **settings):
            return super()._trainer(*args, callbacks=list(callbacks), **settings)

    return WithCallbacks


def fit(
    model: str,
    checkpoint_dir=None,
    kill_at: int | None = None,
    resume: bool = False,
    callbacks=(),
):
    """Fit ``model`` ("transformer" or "incontext") on its data with the Trainer
    ``callbacks`` (and one that ends the process after step ``kill_at``); returns
    the estimator and its prediction on the training inputs."""
    cls, settings = (
        (TransformerEncoder, TRANSFORMER)
        if model == "transformer"
        else (InContextEncoder, INCONTEXT)
    )
    callbacks = [*callbacks, DieAt(kill_at)] if kill_at is not None else list(callbacks)
    if callbacks:
        cls = _with_callbacks(cls, callbacks)
    every = None if checkpoint_dir is None else 2
    est = cls(checkpoint_dir=checkpoint_dir, checkpoint_every_n_steps=every, **settings)
    if model == "transformer":
        x, y, rois = transformer_data()
        est.fit(x, y, roi_labels=rois, resume=resume)
        return est, est.predict(x)
    subjects = incontext_data()
    est.fit(subjects, resume=resume)
    x, y = subjects[1]
    return est, est.predict(x, support_X=x[:20], support_Y=y[:20])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=("transformer", "incontext"))
    parser.add_argument("checkpoint_dir", type=Path)
    parser.add_argument("kill_at", type=int)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the same arithmetic as the test process
    fit(args.model, args.checkpoint_dir, kill_at=args.kill_at)
    sys.exit(0)  # not reached when the run dies at kill_at
