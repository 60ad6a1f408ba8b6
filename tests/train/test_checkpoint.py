import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from neuro.train import (
    CheckpointError,
    check_model_state,
    config_from_dict,
    config_to_dict,
    load_checkpoint,
    make_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from tests.train.models import TinyRegressor


@dataclass
class RunConfig:
    width: int = 9
    name: str = "run"
    path: Path = Path("data")
    scales: tuple = (1.0, 2.0)


def _state(model):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.training_step((torch.randn(5, 7), torch.randn(5, 3)))["loss"].backward()
    opt.step()
    return opt, make_checkpoint(model, opt, configs={"run": RunConfig()}, step=3, note="x")


def test_round_trip_restores_model_optimizer_config_extra(tmp_path):
    model = TinyRegressor()
    opt, state = _state(model)
    path = save_checkpoint(tmp_path / "ck.pt", state)
    loaded = load_checkpoint(path)
    assert loaded["format"] == "neuro-checkpoint"
    other = TinyRegressor()
    other_opt = torch.optim.AdamW(other.parameters(), lr=1e-2)
    extra = restore_checkpoint(loaded, other, other_opt)
    assert extra == {"step": 3, "note": "x"}
    for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert other_opt.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    cfg = config_from_dict(RunConfig, loaded["config"]["run"])
    assert cfg == RunConfig(path="data")  # paths are stored as strings


def test_no_temp_files_left_and_old_file_kept_when_saving_fails(tmp_path, monkeypatch):
    model = TinyRegressor()
    path = save_checkpoint(tmp_path / "ck.pt", make_checkpoint(model))
    before = path.read_bytes()

    def broken_save(obj, fh):
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, make_checkpoint(model))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ck.pt"]


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "ck.pt", make_checkpoint(TinyRegressor()))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"not a checkpoint at all" * 10, "truncated or corrupt")],
)
def test_garbage_files(tmp_path, content, message):
    path = tmp_path / "ck.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


class Payload:
    """Pickling this would run code from the file on load."""

    def __reduce__(self):
        return (os.system, ("echo owned",))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "neuro-checkpoint", "model": Payload()}, path)
    with pytest.raises(CheckpointError, match="cannot be loaded safely"):
        load_checkpoint(path)
    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump({"a": 1}, fh)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.pkl")


def test_plain_state_dict_is_not_a_neuro_checkpoint(tmp_path):
    torch.save(TinyRegressor().state_dict(), tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="not a neuro checkpoint"):
        load_checkpoint(tmp_path / "sd.pt")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_checkpoint_of_another_model(tmp_path):
    path = save_checkpoint(tmp_path / "ck.pt", make_checkpoint(TinyRegressor()))
    with pytest.raises(CheckpointError, match="was written by a tests.train.models.TinyRegressor"):
        check_model_state(nn.Linear(7, 3), load_checkpoint(path))


def test_checkpoint_of_another_size(tmp_path):
    path = save_checkpoint(tmp_path / "ck.pt", make_checkpoint(TinyRegressor(n_hidden=9)))
    model = TinyRegressor(n_hidden=8)
    with pytest.raises(
        CheckpointError,
        match=r"different shapes: net.0.weight: checkpoint \(9, 7\) vs model \(8, 7\)",
    ):
        restore_checkpoint(load_checkpoint(path), model)


def test_unsafe_values_are_refused_at_save(tmp_path):
    with pytest.raises(TypeError, match=r"state\['extra'\]\['fn'\] holds a function"):
        save_checkpoint(tmp_path / "ck.pt", {"model": {}, "extra": {"fn": lambda: 0}})


def test_numpy_values_are_stored_as_tensors(tmp_path):
    path = save_checkpoint(
        tmp_path / "ck.pt", {"model": {}, "extra": {"a": np.arange(3), "b": np.float32(2)}}
    )
    extra = load_checkpoint(path)["extra"]
    assert torch.equal(extra["a"], torch.arange(3)) and extra["b"] == 2.0


def test_config_class_mismatch():
    @dataclass
    class Other:
        width: int = 1

    with pytest.raises(CheckpointError, match="config is a"):
        config_from_dict(Other, config_to_dict(RunConfig()))


def test_flipped_bytes_are_caught(tmp_path):
    path = save_checkpoint(tmp_path / "ck.pt", make_checkpoint(TinyRegressor()))
    data = bytearray(path.read_bytes())
    start = data.find(b"data/0") + 200  # inside the first stored tensor
    data[start : start + 8] = bytes(8)
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fails the archive's checksum"):
        load_checkpoint(path)


def test_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "ck.pt", make_checkpoint(TinyRegressor()))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
