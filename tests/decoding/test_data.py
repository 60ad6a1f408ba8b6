"""decoding_arrays aligns averaged responses with targets; check_rois names the fix."""

from __future__ import annotations

import numpy as np
import pytest

from data_loaders.fmri.dataset import FMRIDataset
from neuro.decoding.data import DecodingData, check_rois, decoding_arrays
from neuro.errors import InputError, InputTypeError

ROIS = ["V1"] * 3 + ["V2"] * 2 + ["MTL"] * 2


def _dataset(rng, n_stimuli=9, n_repeats=2, shuffle=True, sessions=False, **kw):
    ids = np.repeat(np.arange(n_stimuli), n_repeats)
    if shuffle:
        ids = rng.permutation(ids)
    betas = rng.standard_normal((len(ids), len(ROIS))) + ids[:, None]  # signal = the id
    session_ids = np.arange(len(ids)) % 2 if sessions else None
    return FMRIDataset(betas, ids, roi_labels=ROIS, session_ids=session_ids, **kw)


def test_rows_align_with_targets_and_categories(rng):
    ds = _dataset(rng)
    targets = np.arange(9, dtype=np.float32)[:, None, None, None] * np.ones((9, 4, 4, 4))
    categories = np.array([0, 1, 2] * 3)
    data = decoding_arrays(ds, targets, categories, zscore=False)
    assert isinstance(data, DecodingData) and len(data) == 9
    assert data.X.shape == (9, 7) and data.X.dtype == np.float32
    assert data.Y.shape == (9, 4, 4, 4) and data.Y.dtype == np.float32
    assert np.array_equal(data.stimulus_ids, np.arange(9))
    assert np.array_equal(data.Y[:, 0, 0, 0], data.stimulus_ids)  # each row its own target
    assert np.array_equal(data.categories, categories[data.stimulus_ids])
    assert list(data.roi_labels) == ROIS
    # averaging: the mean over repeats of each stimulus
    for k in (0, 4, 8):
        np.testing.assert_allclose(data.X[k], ds.betas[ds.stimulus_ids == k].mean(0), rtol=1e-5)


def test_subset_of_stimuli_indexes_targets_by_id(rng):
    ds = _dataset(rng, n_stimuli=12)
    test = ds._subset(trials=np.isin(ds.stimulus_ids, [3, 7, 10]))
    targets = np.arange(12, dtype=np.float32)[:, None, None, None] * np.ones((12, 5, 5, 5))
    data = decoding_arrays(test, targets)
    assert data.stimulus_ids.tolist() == [3, 7, 10]
    assert data.Y[:, 2, 2, 2].tolist() == [3.0, 7.0, 10.0]
    assert data.categories is None


def test_zscore_within_sessions(rng):
    ds = _dataset(rng, n_stimuli=20, n_repeats=2, sessions=True)
    ds.betas[ds.session_ids == 1] += 50.0  # a session offset, removed by the z-scoring
    data = decoding_arrays(ds, np.zeros((20, 4, 4, 4)))
    raw = decoding_arrays(ds, np.zeros((20, 4, 4, 4)), zscore=False)
    assert np.abs(data.X.mean(0)).max() < 1e-5  # mean 0 per voxel
    assert raw.X.mean() > 20
    expected = ds.zscore().average_repeats()[0]
    np.testing.assert_allclose(data.X, expected, rtol=1e-6)


def test_bad_inputs(rng):
    ds = _dataset(rng)
    good = np.zeros((9, 4, 4, 4))
    with pytest.raises(InputError, match=r"targets must be 4D \(n_stimuli, G, G, G\)"):
        decoding_arrays(ds, np.zeros((9, 64)))
    with pytest.raises(InputError, match=r"targets must be cubic grids \(n_stimuli, G, G, G\)"):
        decoding_arrays(ds, np.zeros((9, 4, 4, 5)))
    with pytest.raises(InputError, match=r"targets has 5 objects .* ids up to 8.*\(9, G, G, G\)"):
        decoding_arrays(ds, np.zeros((5, 4, 4, 4)))
    nan = good.copy()
    nan[2, 1, 1, 1] = np.nan
    with pytest.raises(InputError, match="targets contains 1 NaN"):
        decoding_arrays(ds, nan)
    with pytest.raises(InputError, match="categories has 3 entries"):
        decoding_arrays(ds, good, categories=[0, 1, 2])
    no_rois = FMRIDataset(ds.betas, ds.stimulus_ids)
    with pytest.raises(InputError, match=r"dataset has no roi_labels.*roi_labels=\[\.\.\.\]"):
        decoding_arrays(no_rois, good)
    with pytest.raises(InputTypeError, match="dataset must be an FMRIDataset"):
        decoding_arrays(np.zeros((9, 7)), good)


def test_check_rois():
    labels = np.array(ROIS)
    assert check_rois(labels, ["V1", "MTL"], "rois") == ("V1", "MTL")
    assert check_rois(labels, "V2", "roi") == ("V2",)
    with pytest.raises(
        InputError,
        match=r"early_rois: ROIs 'V3', 'V4' are not in roi_labels \(the ROIs present are 'MTL', "
        r"'V1', 'V2'\); pass early_rois= ROIs that exist",
    ):
        check_rois(labels, ["V1", "V3", "V4"], "early_rois")
    with pytest.raises(InputError, match="roi_labels is None"):
        check_rois(None, ["V1"], "rois")
    with pytest.raises(InputError, match=r"roi_labels must be a 1D array of ROI names"):
        check_rois(np.zeros(4), ["V1"], "rois")
