"""A run interrupted midway and resumed ends exactly where an uninterrupted run does."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from neuro.train import (
    Callback,
    Runtime,
    load_checkpoint,
    make_checkpoint,
    progress,
    restore_checkpoint,
    save_checkpoint,
    seed_everything,
)
from tests.train.resume_worker import train

ROOT = Path(__file__).resolve().parents[2]


class Crash(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, step, metrics):
        if step == self.step:
            raise RuntimeError("simulated crash")


def _without_times(history):
    return [{k: v for k, v in r.items() if k != "time_s"} for r in history]


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


# 6 batches per epoch, 3 epochs; checkpoints every 2 steps (every step pair with
# accumulation 2) and at each epoch end.
@pytest.mark.parametrize(
    ("crash_at", "overrides"),
    [
        (9, {}),  # mid-epoch 2, last checkpoint at step 8
        (7, {}),  # first step of epoch 2, last checkpoint at the end of epoch 1
        (4, {"grad_accum_steps": 2}),  # 3 steps per epoch: mid-epoch 2
        (13, {"precision": "bf16-mixed"}),
        (9, {"val_every_n_epochs": 2, "grad_clip_norm": 0.5}),
        (9, {"early_stopping_metric": "val_loss", "early_stopping_patience": 1, "max_epochs": 5}),
    ],
)
def test_resume_equals_uninterrupted(tmp_path, crash_at, overrides):
    ref_model, ref_history = train(tmp_path / "ref", **overrides)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tmp_path / "run", callbacks=[Crash(crash_at)], **overrides)
    # Different initial weights: everything must come from the checkpoint.
    resumed, history = train(tmp_path / "run", resume=True, init_seed=99, **overrides)
    _assert_same_weights(ref_model.state_dict(), resumed.state_dict())
    assert _without_times(history) == _without_times(ref_history)


def halving_plateau(optimizer, total_steps):
    """Halves the LR after every epoch whose val_loss is not 20% below the best so far."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=0.5, patience=0, threshold=0.2
    )


@pytest.mark.parametrize(
    ("crash_at", "overrides"),
    [
        (9, {}),  # mid-epoch 2
        (13, {"checkpoint_every_n_steps": None}),  # from the end of epoch 2
        (9, {"early_stopping_metric": "val_loss", "early_stopping_patience": 3}),
    ],
)
def test_plateau_scheduler_resumes_exactly(tmp_path, crash_at, overrides):
    settings = {"scheduler": halving_plateau, "max_epochs": 5, **overrides}
    ref_model, ref_history = train(tmp_path / "ref", **settings)
    lrs = [r["lr"] for r in ref_history]
    assert lrs[0] == 1e-2 and lrs[-1] < 1e-2  # the plateau lowered the learning rate
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tmp_path / "run", callbacks=[Crash(crash_at)], **settings)
    saved = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["scheduler"]
    assert {"best", "num_bad_epochs", "_last_lr"} <= set(saved)
    resumed, history = train(tmp_path / "run", resume=True, init_seed=99, **settings)
    _assert_same_weights(ref_model.state_dict(), resumed.state_dict())
    assert _without_times(history) == _without_times(ref_history)


def test_killed_process_resumes_exactly(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "tests.train.resume_worker", str(out)]
    killed = subprocess.run(
        [*cmd, "--kill-at", "11"], cwd=ROOT, env=env, capture_output=True, timeout=300
    )
    assert killed.returncode == 9, killed.stderr.decode()
    assert load_checkpoint(out / "checkpoints" / "last.pt")["trainer"]["global_step"] == 10
    done = subprocess.run([*cmd, "--resume"], cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    ref_model, _ = train(tmp_path / "ref")
    _assert_same_weights(
        ref_model.state_dict(), torch.load(out / "final_weights.pt", weights_only=True)
    )


# ----------------------------------------------------- a loop without backprop
def oja_run(out: Path, steps: int, crash_at: int | None = None, resume: bool = False):
    """Oja's Hebbian rule, using the Trainer's helpers (runtime, checkpoints, progress) but not its loop."""
    rt = Runtime(device="cpu").launch()
    seed_everything(0)
    neuron = torch.nn.Linear(9, 1, bias=False)
    start = 0
    path = out / "oja.pt"
    if resume:
        extra = restore_checkpoint(load_checkpoint(path), neuron)
        start = extra["step"]
    mixing = torch.tensor([3.0] + [0.5] * 8)  # the first input dimension has most variance
    for step in progress(range(start, steps), verbose=0):
        x = rt.to_device(torch.randn(16, 9) * mixing)
        with torch.no_grad():
            y = neuron(x)
            w = neuron.weight
            w += 0.02 * (y.T @ x - (y**2).sum() * w) / len(x)
        if (step + 1) % 5 == 0 and rt.is_global_zero:
            save_checkpoint(path, make_checkpoint(neuron, step=step + 1))
        if crash_at == step + 1:
            return None
    return neuron.weight.detach().clone()


def test_non_backprop_loop_resumes_exactly(tmp_path):
    reference = oja_run(tmp_path / "a", steps=100)
    assert oja_run(tmp_path / "b", steps=100, crash_at=23) is None
    resumed = oja_run(tmp_path / "b", steps=100, resume=True)
    assert torch.equal(reference, resumed)
    # and Oja's rule found the top principal axis (the first input dimension)
    assert abs(float(reference[0, 0])) > 0.9


class DrawOnEpochEnd(Callback):
    """Uses the global generator at each epoch end (e.g. to pick an example to plot)."""

    def on_epoch_end(self, trainer, epoch, record):
        torch.randn(3)


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, step, metrics):
        if step == self.step:
            trainer.should_stop = True


@pytest.mark.parametrize(
    "first_run",
    [
        {"callbacks": [DrawOnEpochEnd(), Crash(9)]},  # random state saved after the callbacks
        {"callbacks": [StopAt(9)]},  # a callback stops mid-epoch: resume finishes the epoch
    ],
    ids=["callback-draws-random", "stopped-mid-epoch"],
)
def test_resume_exact_with_callbacks(tmp_path, first_run):
    extra = [DrawOnEpochEnd()] if isinstance(first_run["callbacks"][0], DrawOnEpochEnd) else []
    ref_model, ref_history = train(tmp_path / "ref", callbacks=extra)
    try:
        _, first_history = train(tmp_path / "run", **first_run)
        assert first_history[-1]["step"] == 9  # the stopped run reports where it stopped
    except RuntimeError:
        pass
    resumed, history = train(tmp_path / "run", resume=True, init_seed=99, callbacks=extra)
    _assert_same_weights(ref_model.state_dict(), resumed.state_dict())
    assert _without_times(history) == _without_times(ref_history)


def test_resume_with_other_data_order_settings_is_refused(tmp_path):
    from neuro.train import CheckpointError

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tmp_path / "run", callbacks=[Crash(5)])
    with pytest.raises(CheckpointError, match=r"batch_size: 16 -> 8"):
        train(tmp_path / "run", resume=True, batch_size=8)
