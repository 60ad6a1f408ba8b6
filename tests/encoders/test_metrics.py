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


def test_r2_matches_sklearn(rng):
    from sklearn.metrics import r2_score

    from neuro.encoders.metrics import voxel_r2

    y = rng.standard_normal((40, 9))
    p = 0.5 * y + rng.standard_normal((40, 9))
    expected = r2_score(y, p, multioutput="raw_values")
    np.testing.assert_allclose(voxel_r2(y, p), expected, rtol=1e-10)


def test_r2_constant_voxel_is_zero(rng):
    from neuro.encoders.metrics import voxel_r2

    y = rng.standard_normal((8, 3))
    y[:, 2] = 1.0
    assert voxel_r2(y, rng.standard_normal((8, 3)))[2] == 0.0


def test_noise_normalized_is_fraction_of_ceiling():
    from neuro.encoders.metrics import noise_normalized

    out = noise_normalized(np.array([0.6, -0.3, 0.9]), np.array([0.36, 0.5, 0.01]))
    np.testing.assert_allclose(out[:2], [1.0, -0.18])
    assert np.isnan(out[2])  # ceiling below min_ceiling
    with pytest.raises(ValueError, match="same shape"):
        noise_normalized(np.zeros(3), np.zeros(4))


def test_roi_summary_means_and_interval(rng):
    from neuro.encoders.metrics import roi_summary

    labels = np.array(["V1"] * 50 + ["FFA"] * 70 + [""] * 9)
    a = np.concatenate([rng.normal(0.5, 0.1, 50), rng.normal(0.2, 0.1, 70), np.zeros(9)])
    a[3] = np.nan  # left out of its ROI's mean
    table = roi_summary({"a": a, "b": -a}, labels, n_boot=500, seed=0)
    assert table["roi"].tolist() == ["FFA", "V1", "all"] * 2
    row = table[(table.roi == "V1") & (table.model == "a")].iloc[0]
    assert row.n_voxels == 49
    np.testing.assert_allclose(row["mean"], np.nanmean(a[:50]))
    assert row.ci_low < row["mean"] < row.ci_high
    # the bootstrap interval is about +-2 standard errors
    se = np.nanstd(a[:50]) / np.sqrt(49)
    assert 2.5 * se < row.ci_high - row.ci_low < 5.5 * se
    with pytest.raises(ValueError, match="one value per voxel"):
        roi_summary(np.zeros(5), labels)
