"""Train TinyRegressor with a given number of processes; rank 0 saves the weights.

python -m torch.distributed.run --standalone --nproc_per_node 2 -m tests.train.ddp_worker OUT 2
python -m tests.train.ddp_worker OUT 1

With a third argument ``rng`` (two processes), each process draws a different
amount of random numbers per step; the worker trains a reference run, a run
stopped mid-epoch and its resumption, and saves every process's next draws
after the reference and after the resumption.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from neuro.train import Callback, Trainer
from tests.train.models import RankNoise, TinyRegressor, regression_data

GLOBAL_BATCH = 16


def main(out: Path, processes: int) -> None:
    torch.manual_seed(0)
    model = TinyRegressor(dropout=0.0)
    x, y, _ = regression_data(n=64)
    trainer = Trainer(
        max_epochs=3,
        batch_size=GLOBAL_BATCH // processes,
        devices=processes,
        device="cpu",
        lr=2e-2,
        verbose=0,
        seed=3,
        out_dir=out / "trainer",  # written by rank 0 only
    )
    history = trainer.fit(model, (x, y), (x[:32], y[:32]))
    if trainer.runtime.is_global_zero:
        out.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), out / "weights.pt")
        (out / "history.json").write_text(json.dumps(history))
        (out / "world.json").write_text(json.dumps({"world_size": trainer.runtime.world_size}))


# ----------------------------------------------------- every rank's random state
class StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, step, metrics):
        if step == self.step:
            trainer.should_stop = True


def next_draws() -> dict[str, torch.Tensor]:
    """The next values of each generator (the state a run leaves behind)."""
    return {
        "python": torch.tensor([random.random() for _ in range(3)]),
        "numpy": torch.from_numpy(np.random.rand(3)),  # noqa: NPY002
        "torch": torch.rand(3),
    }


def rng_run(out: Path, init_seed: int, resume: bool = False, callbacks=()) -> Trainer:
    torch.manual_seed(init_seed)
    model = RankNoise(dropout=0.3)
    x, y, _ = regression_data(n=64)
    trainer = Trainer(
        max_epochs=3,
        batch_size=8,  # per process: 4 steps per epoch with two processes
        device="cpu",
        devices=2,
        lr=2e-2,
        verbose=0,
        seed=3,
        checkpoint_every_n_steps=2,
        callbacks=list(callbacks),
        out_dir=out,
    )
    trainer.fit(model, (x, y), (x[:32], y[:32]), resume="last" if resume else None)
    rank = trainer.runtime.global_rank
    torch.save(next_draws(), out / f"draws_rank{rank}.pt")
    if rank == 0:
        torch.save(model.state_dict(), out / "weights.pt")
    trainer.runtime.barrier()
    return trainer


def rng_main(out: Path) -> None:
    rng_run(out / "ref", init_seed=0)
    trainer = rng_run(out / "run", init_seed=0, callbacks=[StopAt(6)])  # mid-epoch 2
    if trainer.runtime.is_global_zero:
        shutil.copy(out / "run" / "checkpoints" / "last.pt", out / "stopped.pt")
        shutil.copytree(out / "run", out / "stopped_run")
    trainer.runtime.barrier()
    rng_run(out / "run", init_seed=99, resume=True)  # other initial weights: all from last.pt


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[3] == "rng":
        rng_main(Path(sys.argv[1]))
    else:
        main(Path(sys.argv[1]), int(sys.argv[2]))
