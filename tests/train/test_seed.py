import random

import numpy as np
import pytest
import torch

from neuro.train import (
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)


def _draw():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_seed_everything_repeats():
    seed_everything(3)
    first = _draw()
    seed_everything(3)
    assert _draw() == first
    seed_everything(4)
    assert _draw() != first


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "0", True])
def test_bad_seed(bad):
    with pytest.raises(ValueError, match="seed must be an integer"):
        seed_everything(bad)


def test_rng_state_survives_a_weights_only_checkpoint(tmp_path):
    seed_everything(11)
    np.random.randn()  # leave a cached Gaussian in NumPy's state
    state = get_rng_state()
    expected = _draw()
    save_checkpoint(tmp_path / "rng.pt", {"model": {}, "rng": state})
    _draw()
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert _draw() == expected


def test_deterministic_mode_toggles():
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
