"""Train TinyRegressor with a given number of processes; rank 0 saves the weights.

python -m torch.distributed.run --standalone --nproc_per_node 2 -m tests.train.ddp_worker OUT 2
python -m tests.train.ddp_worker OUT 1
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from neuro.train import Trainer
from tests.train.models import TinyRegressor, regression_data

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


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
