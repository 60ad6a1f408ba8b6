"""The ground-truth checks against a simulated subject (used by the demo and the tutorial)."""

import types

import numpy as np
import pytest

from data_loaders.fmri import FMRIDataset
from data_loaders.simulate.fmri import simulate_fmri
from neuro.encoders import compare_encoders, plots
from neuro.encoders.groundtruth import check_ground_truth, receptive_field_recovery
from neuro.errors import InputError


@pytest.fixture(scope="module")
def sim():
    return simulate_fmri(n_subjects=1, n_stimuli=60, image_size=32, voxels_per_roi=2, seed=2)


def _fake_gaussian(centers, sizes):
    return types.SimpleNamespace(receptive_field_centers_=centers, receptive_field_sizes_=sizes)


def test_receptive_field_recovery_measures_the_distance(sim):
    sub = sim.subjects[0]
    early = ~np.isnan(sub.prf_sizes)
    exact = _fake_gaussian(np.nan_to_num(sub.prf_centers), np.nan_to_num(sub.prf_sizes, nan=0.1))
    rf = receptive_field_recovery(exact, sub)
    assert rf["n_voxels"] == early.sum() > 0
    assert rf["median_center_error"] == 0 and rf["max_center_error"] == 0
    assert rf["size_r"] == pytest.approx(1.0)
    shifted = np.nan_to_num(sub.prf_centers) + np.array([0.3, -0.4])  # 0.5 map units away
    rf = receptive_field_recovery(_fake_gaussian(shifted, exact.receptive_field_sizes_), sub)
    np.testing.assert_allclose(rf["center_errors"], 0.5)
    assert rf["p90_center_error"] == pytest.approx(0.5)


def test_receptive_field_recovery_refuses_other_encoders(sim):
    sub = sim.subjects[0]
    with pytest.raises(InputError, match="receptive_field_centers_"):
        receptive_field_recovery(object(), sub)
    with pytest.raises(InputError, match="fitted on 3 voxels"):
        receptive_field_recovery(_fake_gaussian(np.zeros((3, 2)), np.ones(3)), sub)


def test_check_ground_truth_of_a_comparison(sim):
    sub = sim.subjects[0]
    dataset = FMRIDataset.from_simulation(sub, sim.stimuli)
    maps = sim.feature_maps[:, None, ::4, ::4]
    result = compare_encoders(dataset, ["ridge"], features=maps, device="cpu", n_boot=20)
    truth = check_ground_truth(result, sub)
    assert truth["ceiling_r"] > 0.3
    assert "gaussian" not in truth  # no Gaussian readout was fitted
    groups = {"early visual (V1-V4)", "category-selective"}
    assert set(truth["mean_r"]) == set(truth["best_encoder"]) == groups
    early = ~np.isnan(sub.prf_sizes)
    assert truth["mean_r"]["early visual (V1-V4)"]["ridge"] == pytest.approx(
        float(result.scores["ridge"][early].mean())
    )
    # the planted energy maps explain the early voxels better than the category ones
    assert (
        truth["mean_r"]["early visual (V1-V4)"]["ridge"]
        > truth["mean_r"]["category-selective"]["ridge"]
    )
    fig = plots.ground_truth(result, sub, truth)
    assert len(fig.axes) == 2
