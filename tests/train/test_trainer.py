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
