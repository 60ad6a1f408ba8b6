import json
import logging

import numpy as np
import pytest
import torch
from torch import nn

from neuro.io import OutputExistsError
from neuro.train import Callback, CheckpointError, Trainer, TrainerConfig, load_checkpoint
from tests.train.models import TinyRegressor, regression_data

FAST = {"device": "cpu", "verbose": 0}


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_fit_start(self, trainer):
        self.events.append("start")

    def on_step_end(self, trainer, step, metrics):
        self.events.append(("step", step, sorted(metrics)))

    def on_validation_end(self, trainer, metrics):
        self.events.append(("val", sorted(metrics)))

    def on_epoch_end(self, trainer, epoch, record):
        self.events.append(("epoch", epoch))

    def on_fit_end(self, trainer):
        self.events.append("end")


def test_learns_a_planted_linear_map():
    x, y, w = regression_data(n=256)
    model = TinyRegressor(dropout=0.0)
    torch.manual_seed(0)
    linear = nn.Linear(7, 3)

    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = linear

        def training_step(self, batch):
            return nn.functional.mse_loss(self.lin(batch[0]), batch[1])

    history = Trainer(max_epochs=30, lr=5e-2, batch_size=32, **FAST).fit(Linear(), (x, y))
    assert history[-1]["train_loss"] < 0.05 < history[0]["train_loss"]
    torch.testing.assert_close(linear.weight.detach().T, w, atol=0.05, rtol=0.05)
    del model


def test_history_callbacks_and_files(tmp_path):
    x, y, _ = regression_data()
    rec = Recorder()
    trainer = Trainer(
        max_epochs=3, batch_size=32, out_dir=tmp_path / "run", callbacks=[rec], **FAST
    )
    history = trainer.fit(TinyRegressor(), (x[:64], y[:64]), (x[64:], y[64:]))
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert [r["step"] for r in history] == [2, 4, 6]
    assert {"train_loss", "train_mae", "val_loss", "lr", "time_s"} <= set(history[-1])
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == history
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["trainer"]["class"] == "neuro.train.trainer.TrainerConfig"
    assert config["trainer"]["values"]["max_epochs"] == 3
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    assert rec.events[0] == "start" and rec.events[-1] == "end"
    assert ("step", 1, ["loss", "mae"]) in rec.events
    assert rec.events.count(("val", ["val_loss"])) == 3
    assert [e for e in rec.events if e[0] == "epoch"] == [("epoch", 1), ("epoch", 2), ("epoch", 3)]


def test_a_callback_changes_gradients_before_the_optimizer_step():
    """on_before_optimizer_step sees the step's gradients and may edit them (projection)."""
    x, y, _ = regression_data(n=64)
    torch.manual_seed(0)
    linear = nn.Linear(7, 3)
    frozen = linear.weight.detach()[:, :2].clone()

    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = linear

        def training_step(self, batch):
            return nn.functional.mse_loss(self.lin(batch[0]), batch[1])

    class ZeroFirstInputs(Callback):
        calls = 0

        def on_before_optimizer_step(self, trainer):
            grad = linear.weight.grad
            assert grad is not None and grad.abs().sum() > 0
            grad[:, :2] = 0.0  # updates only in the span of inputs 3..7
            ZeroFirstInputs.calls += 1

    Trainer(max_epochs=2, batch_size=16, lr=1e-2, weight_decay=0.0, callbacks=[ZeroFirstInputs()],
            **FAST).fit(Linear(), (x, y))  # fmt: skip
    assert ZeroFirstInputs.calls == 8
    torch.testing.assert_close(linear.weight.detach()[:, :2], frozen)


def test_numpy_float64_input_is_accepted(rng):
    x = rng.standard_normal((40, 7))
    y = rng.standard_normal((40, 3))
    history = Trainer(max_epochs=1, batch_size=8, **FAST).fit(TinyRegressor(), (x, y))
    assert np.isfinite(history[0]["train_loss"])


def test_gradient_accumulation_matches_a_larger_batch():
    x, y, _ = regression_data(n=64)
    results = []
    for batch, accum in ((16, 1), (8, 2)):
        torch.manual_seed(0)
        model = TinyRegressor(dropout=0.0)
        Trainer(max_epochs=2, batch_size=batch, grad_accum_steps=accum, **FAST).fit(model, (x, y))
        results.append(model.state_dict())
    for k in results[0]:
        torch.testing.assert_close(results[0][k], results[1][k], rtol=1e-5, atol=1e-6)


def test_gradient_clipping_bounds_each_update():
    x, y, _ = regression_data(n=32)
    y = y * 100  # large gradients
    model = TinyRegressor(dropout=0.0)
    norms = []

    class Watch(Callback):
        def on_fit_start(self, trainer):
            self.prev = [p.detach().clone() for p in model.parameters()]

        def on_step_end(self, trainer, step, metrics):
            now = [p.detach().clone() for p in model.parameters()]
            norms.append(
                float(
                    torch.sqrt(
                        sum(((a - b) ** 2).sum() for a, b in zip(now, self.prev, strict=True))
                    )
                )
            )
            assert metrics["grad_norm"] > 0.5  # the norm before clipping was large
            self.prev = now

    Trainer(
        max_epochs=2,
        batch_size=8,
        grad_clip_norm=0.5,
        callbacks=[Watch()],
        weight_decay=0.0,
        optimizer=lambda params: torch.optim.SGD(params, lr=1.0),
        scheduler=False,
        **FAST,
    ).fit(model, (x, y))
    assert max(norms) <= 0.5 + 1e-5


def test_early_stopping_stops_and_restores_best():
    x, y, _ = regression_data(n=64)

    class Worsening(TinyRegressor):
        epoch = 0

        def validation_step(self, batch):
            return {"score": torch.tensor(float(-abs(Worsening.epoch - 2)))}  # best at epoch 2

    snapshots = []

    class Count(Callback):
        def on_epoch_end(self, trainer, epoch, record):
            Worsening.epoch = epoch
            snapshots.append({k: v.clone() for k, v in trainer.model.state_dict().items()})

    model = Worsening()
    trainer = Trainer(
        max_epochs=20,
        batch_size=16,
        early_stopping_metric="val_score",
        early_stopping_mode="max",
        early_stopping_patience=3,
        callbacks=[Count()],
        **FAST,
    )
    history = trainer.fit(model, (x, y), (x, y))
    assert trainer.stopped_early and len(history) == 6
    assert trainer.best_value == 0.0
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[2][k])  # weights from the best epoch (the third)


def test_max_steps_ends_mid_epoch():
    x, y, _ = regression_data(n=64)
    trainer = Trainer(max_epochs=5, max_steps=3, batch_size=16, **FAST)
    history = trainer.fit(TinyRegressor(), (x, y))
    assert trainer.global_step == 3 and history[-1]["step"] == 3


def test_bf16_mixed_runs_under_autocast_on_cpu():
    x, y, _ = regression_data(n=32)
    seen = []

    class Probe(TinyRegressor):
        def training_step(self, batch):
            seen.append((torch.is_autocast_enabled("cpu"), self(batch[0]).dtype))
            return super().training_step(batch)

    history = Trainer(max_epochs=1, batch_size=16, precision="bf16-mixed", **FAST).fit(
        Probe(), (x, y)
    )
    assert seen[0] == (True, torch.bfloat16)
    assert np.isfinite(history[0]["train_loss"])


def test_compile_falls_back_where_unavailable(monkeypatch, caplog):
    import torch._dynamo

    monkeypatch.setattr(torch._dynamo, "is_dynamo_supported", lambda: False)
    x, y, _ = regression_data(n=32)
    with caplog.at_level(logging.WARNING):
        history = Trainer(max_epochs=1, batch_size=16, compile=True, **FAST).fit(
            TinyRegressor(), (x, y)
        )
    assert "training eagerly" in caplog.text
    assert np.isfinite(history[0]["train_loss"])


@pytest.fixture
def dynamo_backend(monkeypatch):
    """Make torch.compile use a given backend (compiling with inductor on a CPU takes long)."""
    import torch._dynamo

    real_compile = torch.compile
    compiled = []

    def use(backend):
        def fake_compile(fn, **kwargs):
            compiled.append(fn)
            return real_compile(fn, backend=backend)

        monkeypatch.setattr(torch, "compile", fake_compile)
        return compiled

    torch._dynamo.reset()
    yield use
    torch._dynamo.reset()


def _weights_after(compile_, dropout=0.0, callbacks=()):
    x, y, _ = regression_data(n=48)
    torch.manual_seed(0)
    model = TinyRegressor(dropout=dropout)
    trainer = Trainer(
        max_epochs=2, batch_size=16, compile=compile_, seed=2, callbacks=list(callbacks), **FAST
    )
    history = trainer.fit(model, (x, y))
    return model, history


def test_compile_compiles_the_training_step(dynamo_backend):
    import torch._dynamo

    graphs = []

    def record(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    compiled = dynamo_backend(record)
    suppress = torch._dynamo.config.suppress_errors
    model, history = _weights_after(True)
    # the model's training_step was compiled (not its forward), loss included
    assert len(compiled) == 1 and compiled[0].__func__ is TinyRegressor.training_step
    assert graphs, "torch.compile never traced the training step"
    ops = {str(node.target) for gm in graphs for node in gm.graph.nodes}
    assert any("mse_loss" in op for op in ops), ops
    assert torch._dynamo.config.suppress_errors == suppress  # no process-wide setting changed
    assert "training_step" not in model.__dict__  # nothing left on the model
    eager, eager_history = _weights_after(False)
    for k, v in eager.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v)
    assert [r["train_loss"] for r in history] == pytest.approx(
        [r["train_loss"] for r in eager_history], rel=1e-5
    )


def test_compile_failure_falls_back_to_eager_once(dynamo_backend, caplog):
    def broken(gm, example_inputs):
        raise RuntimeError("this compiler is broken")

    dynamo_backend(broken)
    with caplog.at_level(logging.WARNING):
        model, history = _weights_after(True, dropout=0.3)
    warnings = [r for r in caplog.records if "torch.compile failed" in r.getMessage()]
    assert len(warnings) == 1, caplog.text
    assert "TinyRegressor.training_step" in warnings[0].getMessage()
    assert "training eagerly" in warnings[0].getMessage()
    # the failed attempt left no trace: with dropout, even the random stream is the eager run's
    eager, eager_history = _weights_after(False, dropout=0.3)
    for k, v in eager.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    drop_time = [{k: v for k, v in r.items() if k != "time_s"} for r in history]
    assert drop_time == [{k: v for k, v in r.items() if k != "time_s"} for r in eager_history]


def test_compile_does_not_hide_errors_of_the_model(dynamo_backend, caplog):
    dynamo_backend("eager")

    class Broken(TinyRegressor):
        def training_step(self, batch):
            if batch[1].shape[1] == 3:
                raise ValueError("a bug in the model")
            return super().training_step(batch)

    x, y, _ = regression_data(n=16)
    with pytest.raises(ValueError, match="a bug in the model"):
        Trainer(max_epochs=1, batch_size=8, compile=True, **FAST).fit(Broken(), (x, y))


@pytest.mark.slow
def test_compile_trains_the_same_model():
    x, y, _ = regression_data(n=32)
    out = []
    for compile_ in (False, True):
        torch.manual_seed(0)
        model = TinyRegressor(dropout=0.0)
        Trainer(max_epochs=2, batch_size=16, compile=compile_, **FAST).fit(model, (x, y))
        out.append(model.state_dict())
    for k in out[0]:
        torch.testing.assert_close(out[0][k], out[1][k], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------- plateau schedulers
class RecordingPlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """Remembers the values it was stepped with."""

    def __init__(self, optimizer, **kwargs):
        self.seen = []
        super().__init__(optimizer, **kwargs)

    def step(self, metrics):
        self.seen.append(float(metrics))
        super().step(metrics)


@pytest.mark.parametrize(
    ("settings", "with_val", "metric"),
    [
        ({}, True, "val_loss"),
        ({}, False, "train_loss"),
        (
            {
                "early_stopping_metric": "val_mae",
                "early_stopping_patience": 50,
                "val_every_n_epochs": 2,
            },
            True,
            "val_mae",
        ),
    ],
    ids=["val_loss", "train_loss", "early-stopping-metric-every-2nd-epoch"],
)
def test_plateau_scheduler_steps_per_epoch_with_the_monitored_metric(settings, with_val, metric):
    class WithMae(TinyRegressor):
        def validation_step(self, batch):
            x, y = batch
            pred = self(x)
            return {"loss": nn.functional.mse_loss(pred, y), "mae": (pred - y).abs().mean()}

    x, y, _ = regression_data(n=64)
    made = []

    def plateau(optimizer, total_steps):
        made.append(RecordingPlateau(optimizer, factor=0.5, patience=0, threshold=0.5))
        return made[-1]

    trainer = Trainer(max_epochs=6, batch_size=16, lr=1e-2, scheduler=plateau, **settings, **FAST)
    history = trainer.fit(WithMae(), (x, y), (x, y) if with_val else None)
    watched = [r[metric] for r in history if metric in r]
    assert made[0].seen == watched
    assert len(watched) == (3 if settings else 6)
    # constant within an epoch, and lowered after epochs that did not improve by half
    lrs = [r["lr"] for r in history]
    assert lrs[0] == 1e-2 and min(lrs) < 1e-2


def test_plateau_scheduler_without_the_metric_is_named():
    class NoLoss(TinyRegressor):
        def validation_step(self, batch):
            return {"mae": self(batch[0]).abs().mean()}

    x, y, _ = regression_data(n=32)
    trainer = Trainer(
        max_epochs=2,
        batch_size=16,
        scheduler=lambda opt, n: torch.optim.lr_scheduler.ReduceLROnPlateau(opt),
        **FAST,
    )
    with pytest.raises(KeyError, match=r"watches 'val_loss'.*return 'loss' from validation_step"):
        trainer.fit(NoLoss(), (x, y), (x, y))


def test_plateau_mode_other_than_early_stopping_warns(caplog):
    x, y, _ = regression_data(n=32)
    trainer = Trainer(
        max_epochs=1,
        batch_size=16,
        early_stopping_metric="val_loss",
        early_stopping_mode="max",
        scheduler=lambda opt, n: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min"),
        **FAST,
    )
    with caplog.at_level(logging.WARNING):
        trainer.fit(TinyRegressor(), (x, y), (x, y))
    assert "Create it with mode='max'" in caplog.text


# ----------------------------------------------------------------- bad input
class NoStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)


def test_model_without_training_step():
    with pytest.raises(TypeError, match=r"model NoStep has no training_step method"):
        Trainer(**FAST).fit(NoStep(), (torch.randn(4, 2),))


def test_validation_data_without_validation_step():
    class OnlyTrain(NoStep):
        def training_step(self, batch):
            return self.lin(batch[0]).mean()

    with pytest.raises(TypeError, match="has no validation_step"):
        Trainer(**FAST).fit(OnlyTrain(), (torch.randn(4, 2),), (torch.randn(4, 2),))


def test_not_a_module():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        Trainer(**FAST).fit(object(), (torch.randn(4, 2),))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"precision": "fp8"}, ValueError, "precision must be one of"),
        ({"device": "tpu"}, ValueError, "device must be 'auto'"),
        ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1; got 0"),
        ({"lr": -1.0}, ValueError, "lr must be > 0.0"),
        ({"strategy": "fsdp9"}, ValueError, "strategy must be one of"),
        ({"early_stopping_mode": "best"}, ValueError, "early_stopping_mode must be one of"),
        ({"max_epoch": 3}, TypeError, "Unknown Trainer setting.*max_epoch"),
    ],
)
def test_bad_settings(kwargs, error, message):
    x, y, _ = regression_data(n=8)
    with pytest.raises(error, match=message):
        Trainer(**{**FAST, **kwargs}).fit(TinyRegressor(), (x, y))


def test_mismatched_array_lengths():
    with pytest.raises(ValueError, match=r"same number of samples.*\[9, 8\]"):
        Trainer(**FAST).fit(TinyRegressor(), (torch.randn(9, 7), torch.randn(8, 3)))


def test_nan_in_data():
    x, y, _ = regression_data(n=8)
    x[3, 2] = float("nan")
    with pytest.raises(ValueError, match=r"train_data\[0\] contains NaN"):
        Trainer(**FAST).fit(TinyRegressor(), (x, y))


def test_unknown_early_stopping_metric():
    x, y, _ = regression_data(n=16)
    with pytest.raises(KeyError, match=r"early_stopping_metric='val_acc' is not among .*val_loss"):
        Trainer(max_epochs=2, early_stopping_metric="val_acc", **FAST).fit(
            TinyRegressor(), (x, y), (x, y)
        )


def test_early_stopping_without_validation_data():
    x, y, _ = regression_data(n=16)
    with pytest.raises(ValueError, match="no val_data was given"):
        Trainer(early_stopping_metric="val_loss", **FAST).fit(TinyRegressor(), (x, y))


def test_divergence_is_reported():
    x, y, _ = regression_data(n=16)

    class Bad(TinyRegressor):
        def training_step(self, batch):
            return super().training_step(batch)["loss"] * float("nan")

    with pytest.raises(FloatingPointError, match="loss became nan at or before step 1"):
        Trainer(**FAST).fit(Bad(), (x, y))


def test_existing_output_folder_is_refused(tmp_path):
    (tmp_path / "keep.txt").write_text("user data")
    x, y, _ = regression_data(n=16)
    with pytest.raises(OutputExistsError, match="exists and is not empty"):
        Trainer(out_dir=tmp_path, **FAST).fit(TinyRegressor(), (x, y))
    Trainer(max_epochs=1, out_dir=tmp_path, overwrite=True, **FAST).fit(TinyRegressor(), (x, y))
    assert (tmp_path / "keep.txt").read_text() == "user data"


def test_resume_into_a_different_model(tmp_path):
    x, y, _ = regression_data(n=16)
    Trainer(max_epochs=1, out_dir=tmp_path, **FAST).fit(TinyRegressor(), (x, y))
    with pytest.raises(CheckpointError, match="does not match this model"):
        Trainer(max_epochs=2, out_dir=tmp_path, **FAST).fit(
            TinyRegressor(n_hidden=5), (x, y), resume="last"
        )


def test_resume_from_a_corrupt_checkpoint(tmp_path):
    x, y, _ = regression_data(n=16)
    Trainer(max_epochs=1, out_dir=tmp_path, **FAST).fit(TinyRegressor(), (x, y))
    last = tmp_path / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        Trainer(max_epochs=2, out_dir=tmp_path, **FAST).fit(TinyRegressor(), (x, y), resume="last")


def test_config_is_validated_on_creation():
    with pytest.raises(ValueError, match="grad_accum_steps"):
        TrainerConfig(grad_accum_steps=0)


def test_checkpoint_holds_everything_needed(tmp_path):
    x, y, _ = regression_data(n=16)
    Trainer(max_epochs=1, out_dir=tmp_path, **FAST).fit(TinyRegressor(), (x, y))
    ck = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert {"model", "optimizer", "scheduler", "rng", "config", "trainer", "model_class"} <= set(ck)
    assert ck["trainer"]["epoch"] == 1 and ck["trainer"]["global_step"] == 1


def test_resuming_an_early_stopped_run_does_not_train_on(tmp_path):
    x, y, _ = regression_data(n=32)

    class Flat(TinyRegressor):
        def validation_step(self, batch):
            return {"score": torch.tensor(1.0)}

    settings = {"early_stopping_metric": "val_score", "early_stopping_patience": 2, **FAST}
    first = Trainer(max_epochs=10, batch_size=16, out_dir=tmp_path, **settings)
    history = first.fit(Flat(), (x, y), (x, y))
    assert first.stopped_early and len(history) == 3
    again = Trainer(max_epochs=10, batch_size=16, out_dir=tmp_path, **settings)
    assert again.fit(Flat(), (x, y), (x, y), resume="last") == history
    assert again.stopped_early


def test_validation_metrics_are_means_over_samples():
    x, y, _ = regression_data(n=33)  # batches of 16, 16 and 1
    model = TinyRegressor(dropout=0.0)
    history = Trainer(max_epochs=1, batch_size=16, lr=1e-9, **FAST).fit(model, (x, y), (x, y))
    with torch.no_grad():
        true = float(nn.functional.mse_loss(model(x), y))
    assert history[0]["val_loss"] == pytest.approx(true, rel=1e-5)


def test_loss_without_gradient_is_named():
    x, y, _ = regression_data(n=16)

    class Detached(TinyRegressor):
        def training_step(self, batch):
            return super().training_step(batch)["loss"].detach()

    with pytest.raises(TypeError, match=r"Detached.training_step returned a loss that does not"):
        Trainer(**FAST).fit(Detached(), (x, y))


def test_numpy_integer_settings_are_accepted():
    x, y, _ = regression_data(n=16)
    history = Trainer(max_epochs=np.int64(1), batch_size=np.int64(8), **FAST).fit(
        TinyRegressor(), (x, y)
    )
    assert history[0]["step"] == 2


# ------------------------------------------------------------------- batches
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("drop_last", [True, False])
@pytest.mark.parametrize(("world", "rank", "start"), [(1, 0, 0), (1, 0, 2), (3, 1, 0), (3, 2, 1)])
def test_tensor_batches_are_the_dataloaders(shuffle, drop_last, world, rank, start):
    """The Trainer indexes TensorDatasets itself; the batches are what a DataLoader gives."""
    from torch.utils.data import BatchSampler, DataLoader, TensorDataset

    from neuro.train.trainer import _EpochSampler, _TensorBatches

    tensors = (torch.arange(43.0).reshape(43, 1) * 2, torch.arange(43))
    sampler = _EpochSampler(43, world, rank, shuffle, seed=4)
    fast = _TensorBatches(tensors, sampler, 5, drop_last, torch.device("cpu"))
    loader = DataLoader(
        TensorDataset(*tensors), batch_size=None, sampler=BatchSampler(sampler, 5, drop_last)
    )
    for epoch in (0, 1):
        fast.set_epoch(epoch, start_batch=start)
        ours, theirs = list(fast), list(loader)
        assert len(ours) == len(theirs) == len(fast) and ours
        for a, b in zip(ours, theirs, strict=True):
            assert type(a) is type(b) is list
            assert all(torch.equal(x, y) and x.dtype == y.dtype for x, y in zip(a, b, strict=True))
