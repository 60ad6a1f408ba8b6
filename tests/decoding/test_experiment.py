"""The Brain3D pipeline: splits, and the issue's checks at the command's default (slow)."""

import numpy as np
import pytest

from neuro.decoding import Brain3DDecoder, DecodingData, evaluate_decoder, simulated_decoding
from neuro.decoding.experiment import split_decoding
from neuro.errors import InputError, InputTypeError


def _data(n=30, categories=True):
    rng = np.random.default_rng(0)
    cats = np.arange(n) % 3 if categories else None
    return DecodingData(
        rng.standard_normal((n, 6)).astype(np.float32),
        rng.random((n, 8, 8, 8)).astype(np.float32),
        np.array(["V1"] * 3 + ["MTL"] * 3),
        cats,
        np.arange(n) * 2,
    )


def test_split_is_stratified_disjoint_and_reproducible():
    data = _data()
    train, test = split_decoding(data, test_size=0.3, seed=4)
    assert len(train) + len(test) == 30 and not set(train.stimulus_ids) & set(test.stimulus_ids)
    assert np.bincount(test.categories).tolist() == [3, 3, 3]
    again = split_decoding(data, test_size=0.3, seed=4)[1]
    assert np.array_equal(again.stimulus_ids, test.stimulus_ids)
    assert np.array_equal(test.Y, data.Y[test.stimulus_ids // 2])  # rows travel together
    _, uncategorised = split_decoding(_data(categories=False), test_size=0.5)
    assert len(uncategorised) == 15 and uncategorised.categories is None


def test_split_errors():
    with pytest.raises(InputTypeError, match="DecodingData"):
        split_decoding({"X": 1})
    with pytest.raises(InputError, match="test_size"):
        split_decoding(_data(), test_size=1.0)
    with pytest.raises(InputError, match="each side needs at least 2"):
        split_decoding(_data(n=3, categories=False), test_size=0.2)


def test_evaluate_refuses_an_unfitted_decoder():
    from sklearn.exceptions import NotFittedError

    data = _data()
    with pytest.raises(NotFittedError):
        evaluate_decoder(Brain3DDecoder(), data, data)


@pytest.mark.slow
def test_the_issues_checks_at_the_commands_default():
    """Decoder beats the nearest neighbour on IoU and Chamfer; lesions degrade; diagnosis works.

    The settings of ``neuro brain3d`` (about 70 s of CPU): 240 objects on a 16^3 grid, 40 %
    held out, a shape bank of 1000, 40 epochs of the shape prior.
    """
    sim = simulated_decoding(n_shapes=240, grid_size=16, test_size=0.4, bank_size=1000, seed=0)
    decoder = Brain3DDecoder(ae_epochs=40, epochs=150, flow_epochs=150, device="cpu")
    train = sim.train
    decoder.fit(train.X, train.Y, train.roi_labels, categories=train.categories,
                shape_bank=sim.shape_bank)  # fmt: skip
    report = evaluate_decoder(decoder, train, sim.test, n_images=(5, 40), diagnosis_trials=100)
    assert {v["metric"]: v["verdict"] for v in report.verdicts()} == {
        "iou": "holds",
        "chamfer": "holds",
    }
    iou = report.lesion.degradation("iou")  # rows ROIs, columns noise variance
    assert (iou.to_numpy()[:, -1] > 0).all() and (np.diff(iou.to_numpy(), axis=1) > -0.005).all()
    overall = report.diagnosis.overall.to_numpy()
    assert overall[-1] > 2 * report.diagnosis.chance and overall[-1] > overall[0]
