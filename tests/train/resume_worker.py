"""Train TinyRegressor with step checkpoints; optionally die abruptly at a step.

Run as a script by the resume test, so that the process is killed the way a
real run is (no cleanup, no exception handlers):

    python -m tests.train.resume_worker OUT [--kill-at STEP] [--resume]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from neuro.train import Callback, Trainer
from tests.train.models import TinyRegressor, regression_data

SETTINGS = {
    "max_epochs": 3,
    "batch_size": 16,
    "checkpoint_every_n_steps": 2,
    "device": "cpu",
    "verbose": 0,
    "lr": 1e-2,
    "seed": 5,
}


class DieAt(Callback):
    """Ends the process with no cleanup after optimizer step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, step, metrics):
        if step == self.step:
            os._exit(9)


def train(
    out: Path,
    kill_at: int | None = None,
    resume: bool = False,
    callbacks=(),
    init_seed: int = 1,
    **overrides,
):
    torch.manual_seed(init_seed)
    model = TinyRegressor()
    x, y, _ = regression_data(n=96)
    callbacks = [*callbacks, DieAt(kill_at)] if kill_at else list(callbacks)
    trainer = Trainer(out_dir=out, callbacks=callbacks, **{**SETTINGS, **overrides})
    history = trainer.fit(model, (x, y), (x[:32], y[:32]), resume="last" if resume else None)
    return model, history


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    # a resumed run starts from other weights: all state must come from the checkpoint
    model, _ = train(args.out, args.kill_at, args.resume, init_seed=99 if args.resume else 1)
    torch.save(model.state_dict(), args.out / "final_weights.pt")
