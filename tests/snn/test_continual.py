"""ContinualSNN: a spiking MLP trained task after task with HLOP, GPM, EWC or fine-tuning."""

import numpy as np
import pytest
import torch

from data_loaders.continual import permuted_digits
from neuro.errors import InputError, InputTypeError
from neuro.snn.continual import ContinualSNN
from neuro.snn.metrics import acc, bwt

SMALL = {"hidden": (48,), "epochs": 4, "lr": 0.01, "momentum": 0.9, "device": "cpu"}
#: Oja settings for scikit-learn's digits (about 21 batches a task, not PMNIST's 940)
DIGITS_HEBBIAN = {"hebbian_lr": 0.05, "hebbian_iterations": 50}


@pytest.fixture(scope="module")
def stream():
    return permuted_digits(n_tasks=3, seed=0)


@pytest.fixture(scope="module")
def fitted(stream):
    return {
        method: ContinualSNN(method=method, **SMALL, **DIGITS_HEBBIAN).fit(stream)
        for method in ("finetune", "gpm", "hlop")
    }


def test_accuracy_matrix_acc_and_bwt(fitted):
    for method, model in fitted.items():
        R = model.accuracy_matrix_
        assert R.shape == (3, 3) and np.isfinite(R).all() and ((R >= 0) & (R <= 1)).all()
        assert model.acc_ == pytest.approx(acc(R)) and model.bwt_ == pytest.approx(bwt(R))
        assert R[0, 0] > 0.5, method  # learns the first task (chance: 0.1)
        assert len(model.history_) == 3 and model.task_names_[0] == "permuted-digits-0"


def test_projection_protects_old_tasks(fitted):
    """GPM's exact and HLOP's Hebbian projections forget far less than fine-tuning."""
    tune, gpm, hlop = fitted["finetune"], fitted["gpm"], fitted["hlop"]
    print({m: (round(f.acc_, 3), round(f.bwt_, 3)) for m, f in fitted.items()})
    assert tune.bwt_ < -0.2
    assert gpm.bwt_ > tune.bwt_ + 0.15
    assert hlop.bwt_ > tune.bwt_ + 0.15 and hlop.acc_ > tune.acc_


@pytest.mark.slow
def test_hlop_on_five_permuted_digits_tasks_and_two_seeds():
    """The issue's check: HLOP's BWT near zero and far above fine-tuning's, its ACC above
    fine-tuning and EWC and close to GPM (README table)."""
    settings = {**SMALL, "hidden": (100, 100), "epochs": 5, **DIGITS_HEBBIAN}
    table = {}
    for seed in (0, 1):
        stream = permuted_digits(n_tasks=5, seed=seed)
        for method in ("finetune", "ewc", "gpm", "hlop"):
            extra = {"lateral": [20, 40, 40], "added": [8, 12, 12]} if method == "hlop" else {}
            model = ContinualSNN(
                method=method, ewc_lambda=100.0, random_state=seed, **settings, **extra
            ).fit(stream)
            table[(method, seed)] = (model.acc_, model.bwt_)
    print({k: (round(a, 3), round(b, 3)) for k, (a, b) in table.items()})
    for seed in (0, 1):
        (acc_h, bwt_h), (acc_f, bwt_f) = table[("hlop", seed)], table[("finetune", seed)]
        acc_e, acc_g = table[("ewc", seed)][0], table[("gpm", seed)][0]
        assert bwt_h > -0.12 and bwt_h > bwt_f + 0.25
        assert acc_h > acc_f and acc_h > acc_e and acc_h > acc_g - 0.1


def test_hlop_lateral_neurons_follow_the_schedule(fitted, stream):
    model = fitted["hlop"]
    subs = model.strategy_.subspaces
    # defaults for a 64-48-10 network: about 10 % of each layer's inputs, then 9 % per task
    assert [s.n_neurons for s in subs] == [6 + 2 * 5, 4 + 2 * 4]
    assert all(s.n_old == s.n_neurons for s in subs)  # merged after the last task
    angles = model.subspace_angles(stream)
    assert [len(a) for a in angles] == [16, 12] and all(np.isfinite(a).all() for a in angles)


def test_save_load_round_trip(fitted, stream, tmp_path):
    for method in ("gpm", "hlop"):
        model = fitted[method]
        back = ContinualSNN.load(model.save(tmp_path / f"{method}.pt"))
        x = stream[1].X_test
        np.testing.assert_array_equal(back.predict(x), model.predict(x))
        np.testing.assert_array_equal(back.accuracy_matrix_, model.accuracy_matrix_)
        assert back.score(stream) == pytest.approx(model.score(stream))
    hlop = ContinualSNN.load(tmp_path / "hlop.pt").strategy_.subspaces
    for a, b in zip(hlop, fitted["hlop"].strategy_.subspaces, strict=True):
        assert torch.equal(a.weight, b.weight) and a.n_old == b.n_old


def test_bad_input_is_one_line(fitted, stream):
    with pytest.raises(InputTypeError, match="Give a TaskStream"):
        ContinualSNN(**SMALL).fit(np.zeros((10, 64)))
    with pytest.raises(InputError, match="method"):
        ContinualSNN(method="replay", **SMALL).fit(stream)
    with pytest.raises(InputError, match=r"X must be \(n_samples, 64\)"):
        fitted["gpm"].predict(np.zeros((3, 10)))
    with pytest.raises(InputError, match="fit method='hlop'"):
        fitted["gpm"].subspace_angles(stream)
    # more lateral neurons by the last task than a layer has inputs: refused before training
    too_many = ContinualSNN(**{**SMALL, "lateral": [10, 8], "added": [30, 1]})
    with pytest.raises(InputError, match=r"added: layer 0 \(64 inputs\) would hold"):
        too_many.check(stream)
    with pytest.raises(InputError, match=r"added: layer 0 \(64 inputs\) would hold"):
        too_many.fit(stream)
    assert not hasattr(too_many, "net_")
    assert ContinualSNN(**{**SMALL, "method": "gpm", "lateral": [10, 8], "added": [30, 1]}).check(
        stream
    )
