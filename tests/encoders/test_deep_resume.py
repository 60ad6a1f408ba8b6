"""Both deep encoders resume exactly after a killed run, and refuse what cannot be resumed.

A worker process (``deep_resume_worker.py``) fits with ``checkpoint_dir`` and
``checkpoint_every_n_steps=2`` and ends itself with ``os._exit`` at a step;
this process, a new one, then fits with ``resume=True`` from the checkpoints
it left. Weights, history and predictions must equal those of a fit that
was never interrupted, bit for bit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neuro.encoders.incontext import InContextEncoder
from neuro.encoders.transformer import TransformerEncoder
from neuro.errors import InputError, OutputExistsError
from neuro.train import Callback, CheckpointError, load_checkpoint
from tests.encoders.deep_resume_worker import (
    INCONTEXT,
    TRANSFORMER,
    fit,
    incontext_data,
    transformer_data,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def one_thread():
    """The worker computes on one thread; so does this process, for the same arithmetic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _without_times(history):
    return [{k: v for k, v in record.items() if k != "time_s"} for record in history]


class Steps(Callback):
    """Records the step a run starts from and the steps it trains."""

    def __init__(self) -> None:
        self.start, self.trained = None, []

    def on_fit_start(self, trainer):
        self.start = trainer.global_step

    def on_step_end(self, trainer, step, metrics):
        self.trained.append(step)


def _kill(model: str, checkpoint_dir: Path, step: int) -> None:
    """Run the worker until it dies after optimizer step ``step``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "tests.encoders.deep_resume_worker", model]
    killed = subprocess.run(
        [*cmd, str(checkpoint_dir), str(step)], cwd=ROOT, env=env, capture_output=True, timeout=300
    )
    assert killed.returncode == 9, killed.stderr.decode()[-2000:]


# 5 epochs of 4 steps; checkpoints every 2 steps and at each epoch end.
@pytest.mark.parametrize(
    ("model", "kill_at", "last_step"),
    [
        ("transformer", 7, 6),  # mid-epoch 2: from a step checkpoint
        ("incontext", 13, 12),  # first step of epoch 4: from the end of epoch 3
    ],
)
def test_killed_run_resumes_exactly(tmp_path, model, kill_at, last_step):
    run = tmp_path / "run"
    _kill(model, run, kill_at)
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["trainer"]["global_step"] == last_step
    steps = Steps()
    resumed, resumed_pred = fit(model, run, resume=True, callbacks=[steps])
    # the resumed run continued from the checkpoint; it did not start again
    assert steps.start == last_step and steps.trained == list(range(last_step + 1, 21))
    reference, reference_pred = fit(model)  # never interrupted, no checkpoints

    ref_state, res_state = reference.model_.state_dict(), resumed.model_.state_dict()
    assert ref_state.keys() == res_state.keys()
    for key in ref_state:
        assert torch.equal(ref_state[key], res_state[key]), f"{key} differs"
    assert len(resumed.history_) == 5
    assert _without_times(resumed.history_) == _without_times(reference.history_)
    assert np.array_equal(resumed_pred, reference_pred)
    # and the interrupted run's own records: one per epoch, the resumed ones appended
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 5


@pytest.mark.parametrize("model", ["transformer", "incontext"])
def test_resume_needs_a_checkpoint_to_resume(tmp_path, model):
    with pytest.raises(InputError, match=r"resume=True needs checkpoint_dir=") as info:
        fit(model, resume=True)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match=r"Nothing to resume: .*last\.pt does not exist") as info:
        fit(model, tmp_path / "never-written", resume=True)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "never-written").exists()  # the refusal wrote nothing


def _settings(model):
    if model == "transformer":
        x, y, rois = transformer_data()
        return TransformerEncoder, TRANSFORMER, (x, y), {"roi_labels": rois}
    return InContextEncoder, INCONTEXT, (incontext_data(),), {}


@pytest.mark.parametrize("model", ["transformer", "incontext"])
def test_a_used_checkpoint_dir_is_refused_without_resume(tmp_path, model):
    cls, settings, data, kwargs = _settings(model)
    settings = {**settings, "epochs": 1, "checkpoint_dir": tmp_path / "run"}
    cls(**settings).fit(*data, **kwargs)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*")}
    with pytest.raises(OutputExistsError, match="is not empty") as info:
        cls(**settings).fit(*data, **kwargs)
    assert "\n" not in str(info.value)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*")} == before
    # resuming with settings that change the data order is refused by the Trainer
    with pytest.raises(CheckpointError, match=r"batch_size: \d+ -> 4"):
        cls(**{**settings, "batch_size": 4}).fit(*data, resume=True, **kwargs)


def test_used_checkpoint_dir_refusal_names_the_estimators_fix(tmp_path):
    cls, settings, data, kwargs = _settings("transformer")
    settings = {**settings, "epochs": 1, "checkpoint_dir": tmp_path / "run"}
    cls(**settings).fit(*data, **kwargs)
    with pytest.raises(OutputExistsError) as info:
        cls(**settings).fit(*data, **kwargs)
    message = str(info.value)
    assert "checkpoint_dir" in message and "resume=True" in message
    assert "overwrite" not in message


def test_step_checkpoints_need_a_folder():
    x, y, rois = transformer_data()
    with pytest.raises(InputError, match="checkpoint_every_n_steps needs checkpoint_dir"):
        TransformerEncoder(**TRANSFORMER, checkpoint_every_n_steps=2).fit(x, y, roi_labels=rois)
    with pytest.raises(InputError, match="checkpoint_every_n_steps needs checkpoint_dir"):
        InContextEncoder(**INCONTEXT, checkpoint_every_n_steps=2).fit(incontext_data())
