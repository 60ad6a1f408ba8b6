"""Two CPU processes (DDP over gloo) train the same weights as one process with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from neuro.train import Runtime, global_rank, is_rank_zero, load_checkpoint, world_size

ROOT = Path(__file__).resolve().parents[2]


def _run(args, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_two_process_ddp_equals_single_process(tmp_path):
    _run([sys.executable, "-m", "tests.train.ddp_worker", str(tmp_path / "one"), "1"], tmp_path)
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "tests.train.ddp_worker",
            str(tmp_path / "two"),
            "2",
        ],
        tmp_path,
    )
    assert json.loads((tmp_path / "two" / "world.json").read_text()) == {"world_size": 2}
    ck = load_checkpoint(tmp_path / "two" / "trainer" / "checkpoints" / "last.pt")
    assert ck["trainer"]["world_size"] == 2 and ck["trainer"]["global_step"] == 12
    one = torch.load(tmp_path / "one" / "weights.pt", weights_only=True)
    two = torch.load(tmp_path / "two" / "weights.pt", weights_only=True)
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-5, atol=1e-6)
    h1 = json.loads((tmp_path / "one" / "history.json").read_text())
    h2 = json.loads((tmp_path / "two" / "history.json").read_text())
    assert [r["step"] for r in h1] == [r["step"] for r in h2] == [4, 8, 12]
    for a, b in zip(h1, h2, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)


def test_single_process_runtime():
    rt = Runtime(device="cpu").launch()
    assert (rt.world_size, rt.global_rank, rt.is_global_zero) == (1, 0, True)
    t = torch.ones(3)
    assert rt.all_reduce(t) is t and rt.broadcast(5) == 5
    assert "world_size=1" in repr(rt)


def test_rank_helpers_read_the_launcher_environment(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert (global_rank(), world_size(), is_rank_zero()) == (3, 4, False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"devices": 0}, "devices must be an integer >= 1"),
        ({"strategy": "single_device", "devices": 2}, "Use strategy='ddp'"),
        ({"strategy": "horovod"}, "strategy must be one of"),
    ],
)
def test_bad_runtime_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Runtime(device="cpu", **kwargs)
