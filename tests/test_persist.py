"""One save/load layer for every model: exact round trips, refusals, damaged and foreign files."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from sklearn.base import RegressorMixin
from sklearn.exceptions import NotFittedError

from neuro.base import NeuroEstimator
from neuro.errors import CheckpointError, InputError, OutputExistsError
from neuro.persist import VERSION, decode_state, encode_state, load_model, save_model
from neuro.train.checkpoint import qualified_name


class Means(RegressorMixin, NeuroEstimator):
    """Predicts the training mean of each column; holds fitted state of several kinds."""

    def __init__(self, shift=0.0, cv=5):
        self.shift = shift
        self.cv = cv

    def fit(self, X, Y):
        Y = np.asarray(Y)
        self.mean_ = Y.mean(0) + self.shift
        self.counts_ = np.arange(3, dtype=np.int16)
        self.labels_ = np.array(["V1", "FFA"])
        self.history_ = [{"loss": 1.5, "epoch": 0}, {"loss": 0.5, "epoch": 1}]
        self.shape_ = (7, 8)
        self.scalar_ = np.float32(2.5)
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X):
        self._check_fitted()
        return np.tile(self.mean_, (len(X), 1))


class Other(Means):
    pass


@pytest.fixture
def fitted(rng):
    X, Y = rng.standard_normal((9, 7)), rng.standard_normal((9, 8))
    return Means(shift=0.25).fit(X, Y), X


def test_round_trip_is_exact(fitted, tmp_path):
    model, X = fitted
    path = model.save(tmp_path / "m.pt")
    loaded = Means.load(path)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.mean_.dtype == model.mean_.dtype and loaded.counts_.dtype == np.int16
    assert loaded.labels_.tolist() == ["V1", "FFA"]
    assert loaded.history_ == model.history_ and loaded.shape_ == (7, 8)
    assert isinstance(loaded.scalar_, np.float32) and loaded.scalar_ == model.scalar_


def test_unsavable_params_come_back_as_defaults(fitted, tmp_path):
    from sklearn.model_selection import KFold

    model, X = fitted
    model.set_params(cv=KFold(3))
    loaded = Means.load(model.save(tmp_path / "m.pt"))
    assert loaded.cv == 5 and loaded.shift == 0.25
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(NotFittedError):
        Means().save(tmp_path / "m.pt")
    with pytest.raises(NotFittedError):
        Means().predict(np.zeros((2, 3)))


def test_existing_file_is_refused_unless_overwrite(fitted, tmp_path):
    model, _ = fitted
    path = model.save(tmp_path / "m.pt")
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        model.save(path)
    assert path.read_bytes() == before
    model.save(path, overwrite=True)
    with pytest.raises(InputError, match="is a folder"):
        model.save(tmp_path)


def test_other_class_is_refused_with_the_class_to_use(fitted, tmp_path):
    model, _ = fitted
    path = model.save(tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"holds a Means .*Means\.load\(\)"):
        Other.load(path)


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "new.pt"
    torch.save(
        {"format": "neuro-model", "version": VERSION + 1, "class": qualified_name(Means)}, path
    )
    with pytest.raises(CheckpointError, match="newer neuro"):
        Means.load(path)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "does not exist"),
        ("empty", "empty"),
        ("truncated", "truncated or corrupt"),
        ("text", "truncated or corrupt, or of another format"),
        ("npz", "zip archive but not a saved Means"),
        ("checkpoint", "not a model saved by neuro"),
        ("pickle", "cannot be loaded safely"),
    ],
)
def test_damaged_or_foreign_files_are_one_clear_error(fitted, tmp_path, kind, message):
    model, _ = fitted
    good = model.save(tmp_path / "good.pt")
    path = tmp_path / f"{kind}.pt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "text":
        path.write_text("id,value\n1,2\n")
    elif kind == "npz":  # the format ridge models used before this one
        np.savez(path.with_suffix(".npz"), coef_=np.ones(3))
        path = path.with_suffix(".npz")
        with zipfile.ZipFile(path, "a") as z:
            z.writestr("data.pkl", b"")  # a zip, but not torch's layout
    elif kind == "checkpoint":
        torch.save({"format": "neuro-checkpoint", "version": 1, "model": {}}, path)
    elif kind == "pickle":
        torch.save({"format": "neuro-model", "obj": Means()}, path)
    with pytest.raises(CheckpointError, match=message) as info:
        Means.load(path)
    assert isinstance(info.value, InputError)
    assert "\n" not in str(info.value)


def test_state_encoding_round_trips_nested_values():
    state = {
        "a": np.arange(6, dtype=np.float64).reshape(2, 3),
        "b": [np.ones(2, dtype=np.uint8), (1, "x", None)],
        "c": {"t": torch.arange(3), 0: np.bool_(True)},
    }
    back = decode_state(encode_state(state))
    np.testing.assert_array_equal(back["a"], state["a"])
    assert back["b"][0].dtype == np.uint8 and back["b"][1] == (1, "x", None)
    assert torch.equal(back["c"]["t"], state["c"]["t"]) and back["c"][0] is np.True_


def test_arrays_of_other_byte_orders_round_trip():
    big = np.arange(4, dtype=">f8")
    back = decode_state(encode_state({"a": big}))["a"]
    np.testing.assert_array_equal(back, big)
    assert back.dtype.isnative


def test_objects_that_need_pickle_are_refused(tmp_path):
    with pytest.raises(TypeError, match=r"state\['f'\] holds a function"):
        save_model(tmp_path / "x.pt", Means, {}, {"f": lambda: 0})
    assert not (tmp_path / "x.pt").exists()
    params, _ = load_model(save_model(tmp_path / "y.pt", Means, {"cv": object()}, {}), Means)
    assert params == {}
