import numpy as np
import pytest

from data_loaders.simulate import simulate_linear_encoding
from neuro.encoders import voxel_correlation


def test_shapes_dtypes_and_ground_truth():
    sim = simulate_linear_encoding(n_samples=50, n_features=7, n_voxels=9, snr=2.0, seed=1)
    assert sim.X.shape == (50, 7) and sim.Y.shape == (50, 9) and sim.weights.shape == (7, 9)
    assert sim.X.dtype == np.float32
    np.testing.assert_allclose(sim.Y_clean, sim.X @ sim.weights, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sim.noise_ceiling, np.sqrt(2 / 3))


def test_noise_ceiling_matches_the_data():
    snr = np.array([0.25, 1.0, 4.0])
    sim = simulate_linear_encoding(n_samples=20000, n_features=8, n_voxels=3, snr=snr, seed=2)
    empirical = voxel_correlation(sim.Y, sim.Y_clean)
    np.testing.assert_allclose(empirical, sim.noise_ceiling, atol=0.01)


def test_feature_correlation_is_planted():
    sim = simulate_linear_encoding(
        n_samples=20000, n_features=7, n_voxels=2, feature_correlation=0.6, seed=3
    )
    c = np.corrcoef(sim.X.T)
    assert c[0, 1] == pytest.approx(0.6, abs=0.02) and c[0, 2] == pytest.approx(0.36, abs=0.02)


def test_seeded():
    a = simulate_linear_encoding(n_samples=20, n_features=7, n_voxels=9, seed=4)
    b = simulate_linear_encoding(n_samples=20, n_features=7, n_voxels=9, seed=4)
    np.testing.assert_array_equal(a.Y, b.Y)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_voxels": 0}, "n_voxels must be an integer >= 1"),
        ({"n_samples": 1}, "n_samples must be an integer >= 2"),
        ({"n_features": 2.5}, "n_features must be an integer"),
        ({"snr": 0.0}, "snr must be finite and > 0"),
        ({"snr": np.ones(4)}, r"shape \(9,\)"),
        ({"feature_correlation": 1.0}, r"feature_correlation must be in \[0, 1\)"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_linear_encoding(**{"n_samples": 20, "n_features": 7, "n_voxels": 9, **kwargs})
