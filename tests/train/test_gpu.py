"""GPU paths; skipped where CUDA is absent."""

import pytest
import torch
from torch import nn

from neuro.train import Trainer, load_checkpoint
from tests.train.models import TinyRegressor, regression_data

pytestmark = pytest.mark.gpu


def _train(device, precision, out_dir=None):
    """20 epochs on a planted linear map; the loss falls to ~3% of its start on the CPU."""
    x, y, _ = regression_data(n=256)
    torch.manual_seed(0)
    model = TinyRegressor(dropout=0.0)  # no dropout: CPU and GPU draw different masks
    with torch.no_grad():
        initial = float(nn.functional.mse_loss(model(x), y))
    trainer = Trainer(
        max_epochs=20,
        batch_size=32,
        lr=5e-2,
        device=device,
        precision=precision,
        verbose=0,
        out_dir=out_dir,
    )
    history = trainer.fit(model, (x, y), (x, y))
    return model, trainer, history, initial


@pytest.mark.parametrize("precision", ["32", "bf16-mixed", "16-mixed"])
def test_trains_on_cuda(tmp_path, precision):
    model, trainer, history, initial = _train("cuda", precision, tmp_path)
    assert trainer.runtime.device.type == "cuda"
    assert next(model.parameters()).is_cuda
    # it learns: the validation loss ends far below the untrained model's ...
    assert history[-1]["val_loss"] < 0.1 * initial
    assert history[-1]["train_loss"] < 0.2 * history[0]["train_loss"]
    # ... and where a CPU run of the same seed ends (16-mixed runs as bf16-mixed on the CPU)
    _, _, cpu_history, cpu_initial = _train("cpu", precision)
    assert initial == pytest.approx(cpu_initial, rel=1e-4)
    tolerance = 0.05 if precision == "32" else 0.15
    assert history[-1]["val_loss"] == pytest.approx(cpu_history[-1]["val_loss"], rel=tolerance)
    ck = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert not ck["model"]["net.0.weight"].is_cuda  # checkpoints load onto the CPU by default


def test_resume_on_cuda_matches(tmp_path):
    from tests.train.resume_worker import train
    from tests.train.test_resume import Crash

    ref, _ = train(tmp_path / "ref", device="cuda", deterministic=True)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tmp_path / "run", callbacks=[Crash(9)], device="cuda", deterministic=True)
    resumed, _ = train(tmp_path / "run", resume=True, device="cuda", deterministic=True)
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v)
