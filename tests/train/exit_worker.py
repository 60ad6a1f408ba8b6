"""A torchrun worker that records whether its process group is still up when Python exits.

Its own ``atexit`` hook is registered before the runtime launches, so it runs
after any hook the launch registers (``atexit`` runs hooks last-in, first-out).
"""

import atexit
import os
import sys
from pathlib import Path

import torch

from neuro.train import Runtime


def _record(folder: Path, rank: list[int]) -> None:
    alive = torch.distributed.is_initialized()
    (folder / f"rank{rank[0]}.txt").write_text(str(alive))


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rank = [-1]
    atexit.register(_record, out, rank)
    rt = Runtime(device="cpu", devices=int(os.environ["WORLD_SIZE"])).launch()
    rank[0] = rt.global_rank
    gathered = rt.gather_object({"rank": rt.global_rank, "x": torch.arange(3)}, dst=0)
    rt.broadcast("done" if rt.is_global_zero else None)
