import numpy as np
import pytest

from data_loaders.fmri.repeats import average_repeats, noise_ceiling, split_by_stimulus, zscore


def _repeated(rng, n_stimuli=400, n_repeats=3, snr=(0.25, 1.0, 4.0)):
    snr = np.asarray(snr)
    signal = rng.standard_normal((n_stimuli, len(snr))) * np.sqrt(snr)
    ids = rng.permutation(np.repeat(np.arange(n_stimuli), n_repeats))
    betas = signal[ids] + rng.standard_normal((len(ids), len(snr)))
    return betas * 3.0 + 7.0, ids, snr  # units and offsets must not matter


def test_ceiling_recovers_the_planted_snr(rng):
    betas, ids, snr = _repeated(rng)
    nc = noise_ceiling(betas, ids)
    np.testing.assert_allclose(nc.ncsnr, np.sqrt(snr), rtol=0.12)
    np.testing.assert_allclose(nc.r2(1), snr / (snr + 1), atol=0.04)
    np.testing.assert_allclose(nc.r2(3), snr / (snr + 1 / 3), atol=0.04)
    np.testing.assert_allclose(nc.r(3), np.sqrt(nc.r2(3)))
    assert nc.n_stimuli_repeated == 400


def test_unequal_repeat_counts_average_inverse_n(rng):
    betas, ids, _ = _repeated(rng)
    nc = noise_ceiling(betas, ids)
    mixed = nc.r2(np.array([1, 2, 3]))
    s2 = nc.ncsnr**2
    np.testing.assert_allclose(mixed, s2 / (s2 + (1 + 1 / 2 + 1 / 3) / 3))


def test_average_repeats(rng):
    betas = rng.standard_normal((7, 9))
    ids = np.array([2, 0, 2, 1, 0, 2, 5])
    mean, unique, counts = average_repeats(betas, ids)
    assert unique.tolist() == [0, 1, 2, 5] and counts.tolist() == [2, 1, 3, 1]
    np.testing.assert_allclose(mean[2], betas[[0, 2, 5]].mean(0), rtol=1e-6)


def test_zscore_per_session(rng):
    b = rng.standard_normal((8, 7)) * 5 + 2
    z = zscore(b, session_ids=[0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_allclose(z[:4].mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(z[4:].std(0), 1, atol=1e-5)


def test_split_keeps_repeats_together(rng):
    ids = rng.permutation(np.repeat(np.arange(20), 3))
    train, test = split_by_stimulus(ids, test_size=0.25, seed=1)
    assert not set(ids[train]) & set(ids[test])
    assert len(set(ids[test])) == 5 and len(train) + len(test) == 60
    _, test2 = split_by_stimulus(ids, test_stimuli=[3, 4])
    assert set(ids[test2]) == {3, 4}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: noise_ceiling(np.zeros((3, 2)), [0, 1, 2]),
            "No stimulus was shown more than once",
        ),
        (lambda: noise_ceiling(np.zeros((3, 2)), [0, 1]), "trial table has 2 rows"),
        (lambda: noise_ceiling(np.zeros(3), [0, 1, 1]), r"2D \(n_trials, n_voxels\)"),
        (lambda: split_by_stimulus([0, 1, 1], test_size=1.5), r"test_size must be in \(0, 1\)"),
        (lambda: split_by_stimulus([0, 0, 0], test_size=0.2), "leaves one side empty"),
        (lambda: average_repeats(np.zeros((3, 2)), [0, -1, 1]), "must be >= 0"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
