import logging

import pytest
import torch

from neuro.train import autocast, resolve_device, resolve_precision


def test_auto_picks_best_available():
    dev = resolve_device("auto")
    if torch.cuda.is_available():
        assert dev.type == "cuda"
    elif torch.backends.mps.is_available():
        assert dev.type == "mps"
    else:
        assert dev == torch.device("cpu")
    assert resolve_device(None) == dev


@pytest.mark.parametrize("name", ["cpu", "CPU", " cpu ", torch.device("cpu")])
def test_cpu_spellings(name):
    assert resolve_device(name) == torch.device("cpu")


@pytest.mark.parametrize("name", ["tpu", "gpu0", "", "cuda:x"])
def test_unknown_device_names_the_choices(name):
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"):
        resolve_device(name)


def test_device_of_wrong_type():
    with pytest.raises(TypeError, match="device must be a string"):
        resolve_device(3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu_says_so():
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        resolve_device("cuda")


@pytest.mark.parametrize(
    ("given", "expected"), [("32", "32-true"), (32, "32-true"), ("bf16-mixed", "bf16-mixed")]
)
def test_precision_names(given, expected):
    assert resolve_precision(given, torch.device("cpu")) == expected


@pytest.mark.parametrize("bad", ["64", "fp16", "bf16", "16"])
def test_unknown_precision(bad):
    with pytest.raises(
        ValueError, match="precision must be one of '32', 'bf16-mixed' or '16-mixed'"
    ):
        resolve_precision(bad, torch.device("cpu"))


def test_fp16_on_cpu_falls_back_to_bf16(caplog):
    with caplog.at_level(logging.WARNING):
        assert resolve_precision("16-mixed", torch.device("cpu")) == "bf16-mixed"
    assert "needs a CUDA device" in caplog.text


def test_bf16_autocast_on_cpu(rng):
    a = torch.from_numpy(rng.standard_normal((7, 8)).astype("float32"))
    b = torch.from_numpy(rng.standard_normal((8, 9)).astype("float32"))
    with autocast(torch.device("cpu"), "bf16-mixed"):
        out = a @ b
    assert out.dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "32"):
        assert (a @ b).dtype == torch.float32
    torch.testing.assert_close(out.float(), a @ b, atol=0.1, rtol=0.05)
