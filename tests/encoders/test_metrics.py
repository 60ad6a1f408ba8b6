import numpy as np
import pytest
import torch

from neuro.encoders import voxel_correlation


def test_matches_numpy_corrcoef(rng):
    y = rng.standard_normal((40, 9))
    p = y + rng.standard_normal((40, 9))
    expected = [np.corrcoef(y[:, v], p[:, v])[0, 1] for v in range(9)]
    np.testing.assert_allclose(voxel_correlation(y, p), expected, rtol=1e-10)


def test_torch_in_torch_out(rng):
    y = torch.from_numpy(rng.standard_normal((8, 7)).astype("float32"))
    r = voxel_correlation(y, -y)
    assert isinstance(r, torch.Tensor)
    torch.testing.assert_close(r, -torch.ones(7), atol=1e-5, rtol=0)


def test_constant_voxel_gives_zero(rng):
    y = rng.standard_normal((8, 3))
    y[:, 1] = 5.0
    assert voxel_correlation(y, rng.standard_normal((8, 3)))[1] == 0.0


def test_shape_mismatch():
    with pytest.raises(ValueError, match=r"same shape .* got \(8, 7\) and \(8, 9\)"):
        voxel_correlation(np.zeros((8, 7)), np.zeros((8, 9)))
