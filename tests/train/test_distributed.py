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


def test_process_group_is_destroyed_before_python_exits(tmp_path):
    """Left to interpreter finalization, gloo can abort a finished rank (pytorch#190489)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    _run([*cmd, "-m", "tests.train.exit_worker", str(tmp_path)], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rank0.txt", "rank1.txt"]
    assert {p.read_text() for p in tmp_path.iterdir()} == {"False"}


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


# ------------------------------------------------- several nodes need a launcher
_LAUNCHER_VARS = (
    "TORCHELASTIC_RUN_ID",
    "SLURM_NTASKS",
    "SLURM_JOB_NAME",
    "NODE_RANK",
    "LSB_JOBID",
    "LSB_DJOB_RANKFILE",
    "JSM_NAMESPACE_LOCAL_RANK",
    "JSM_NAMESPACE_SIZE",
)


@pytest.fixture
def no_launcher(monkeypatch):
    for var in _LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_several_nodes_without_a_launcher_fail_at_once(no_launcher, tmp_path):
    from neuro.errors import InputError
    from neuro.train import Trainer
    from tests.train.models import TinyRegressor, regression_data

    with pytest.raises(InputError, match=r"num_nodes=2 needs a launcher") as err:
        Runtime(device="cpu", num_nodes=2, devices=4)
    message = str(err.value)
    assert "\n" not in message
    assert "torchrun --nnodes 2 --nproc_per_node 4" in message
    assert "srun --nodes 2 --ntasks-per-node 4" in message
    # an interactive SLURM shell (salloc) starts no tasks on the other nodes either
    no_launcher.setenv("SLURM_NTASKS", "2")
    no_launcher.setenv("SLURM_JOB_NAME", "interactive")
    x, y, _ = regression_data(n=16)
    with pytest.raises(InputError, match="torchrun --nnodes 3"):
        Trainer(num_nodes=3, device="cpu", verbose=0, out_dir=tmp_path / "run").fit(
            TinyRegressor(), (x, y)
        )
    assert not (tmp_path / "run").exists()  # it failed before writing anything


@pytest.mark.parametrize(
    "env",
    [
        {"TORCHELASTIC_RUN_ID": "job"},
        {"SLURM_NTASKS": "8", "SLURM_JOB_NAME": "train"},
        {"NODE_RANK": "0"},
    ],
    ids=["torchrun", "srun", "lightning"],
)
def test_several_nodes_under_a_launcher_are_accepted(no_launcher, env):
    from neuro.train.distributed import check_launcher

    for var, value in env.items():
        no_launcher.setenv(var, value)
    check_launcher(num_nodes=2, devices=2)  # no error (launching would need the other node)


def test_command_line_says_how_to_launch_in_one_line(no_launcher, tmp_path, capsys):
    from neuro.cli import main

    status = main(["train-demo", "--num-nodes", "2", "--out", str(tmp_path / "out"), "-q"])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--num-nodes 2 needs a launcher" in err and "torchrun --nnodes 2" in err


# ------------------------------------------------------------ per-rank random states
def _torchrun(*args):
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "tests.train.ddp_worker",
        *args,
    ]


@pytest.fixture(scope="module")
def rng_runs(tmp_path_factory):
    """Two-process reference, stopped and resumed runs of ddp_worker.RankNoise."""
    out = tmp_path_factory.mktemp("ddp_rng")
    _run(_torchrun(str(out), "2", "rng"), out)
    return out


def test_each_rank_saves_and_restores_its_own_random_state(rng_runs):
    out = rng_runs
    stopped = load_checkpoint(out / "stopped.pt")
    per_rank = stopped["trainer"]["rng_per_rank"]
    assert stopped["trainer"]["global_step"] == 6 and stopped["trainer"]["batch_in_epoch"] == 2
    assert len(per_rank) == 2
    assert torch.equal(per_rank[0]["torch"], stopped["rng"]["torch"])
    # the ranks' streams differ (each drew a different amount) ...
    assert not torch.equal(per_rank[0]["torch"], per_rank[1]["torch"])
    assert per_rank[0]["numpy"]["pos"] != per_rank[1]["numpy"]["pos"]
    assert per_rank[0]["python"] != per_rank[1]["python"]
    # ... and each continues where it stopped: the resumed run ends as the reference
    for rank in (0, 1):
        ref = torch.load(out / "ref" / f"draws_rank{rank}.pt", weights_only=True)
        resumed = torch.load(out / "run" / f"draws_rank{rank}.pt", weights_only=True)
        for name in ref:
            assert torch.equal(ref[name], resumed[name]), f"rank {rank}: {name} generator differs"
    draws = [torch.load(out / "ref" / f"draws_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert not torch.equal(draws[0]["torch"], draws[1]["torch"])
    ref_w = torch.load(out / "ref" / "weights.pt", weights_only=True)
    run_w = torch.load(out / "run" / "weights.pt", weights_only=True)
    for k in ref_w:
        assert torch.equal(ref_w[k], run_w[k]), k


def test_resume_with_another_world_size_uses_rank_zeros_state(rng_runs, tmp_path, caplog):
    import logging
    import shutil

    from neuro.train import Callback, Trainer, get_rng_state
    from tests.train.models import RankNoise, regression_data

    run = tmp_path / "run"
    shutil.copytree(rng_runs / "stopped_run", run)
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["trainer"]["rng_per_rank"][0]
    seen = {}

    class Look(Callback):
        def on_fit_start(self, trainer):
            seen.update(get_rng_state())

    x, y, _ = regression_data(n=64)
    trainer = Trainer(
        max_epochs=3,
        batch_size=8,
        device="cpu",
        lr=2e-2,
        verbose=0,
        seed=3,
        out_dir=run,
        callbacks=[Look()],
    )
    with caplog.at_level(logging.WARNING):
        trainer.fit(RankNoise(dropout=0.3), (x, y), (x[:32], y[:32]), resume="last")
    assert "saved with 2 process(es) on 1" in caplog.text
    assert "rank 0's random state" in caplog.text
    assert torch.equal(seen["torch"], saved["torch"])
    assert seen["python"] == saved["python"]
    # step 6 was batch 2 of epoch 2; alone, a process has 8 batches per epoch
    assert trainer.global_step == 6 + (8 - 2) + 8
