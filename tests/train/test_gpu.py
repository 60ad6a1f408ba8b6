"""GPU paths; skipped where CUDA is absent."""

import pytest
import torch

from neuro.train import Trainer, load_checkpoint
from tests.train.models import TinyRegressor, regression_data

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("precision", ["32", "bf16-mixed", "16-mixed"])
def test_trains_on_cuda(tmp_path, precision):
    x, y, _ = regression_data(n=64)
    model = TinyRegressor()
    trainer = Trainer(
        max_epochs=2, batch_size=16, device="cuda", precision=precision, verbose=0, out_dir=tmp_path
    )
    history = trainer.fit(model, (x, y), (x, y))
    assert trainer.runtime.device.type == "cuda"
    assert next(model.parameters()).is_cuda
    assert history[-1]["train_loss"] < history[0]["train_loss"] * 1.5
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
