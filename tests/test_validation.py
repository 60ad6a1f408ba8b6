"""The one validation policy: wrong type -> InputTypeError, wrong value -> InputError, named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuro import _validation as v
from neuro.errors import (
    InputError,
    InputTypeError,
    MissingFileError,
    OutputExistsError,
    UnreadableFileError,
)
from neuro.io import check_overwrite, prepare_output_dir


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: v.check_int("rank", 1.5), InputTypeError, r"rank must be an integer; got 1\.5"),
        (lambda: v.check_int("rank", True), InputTypeError, "rank must be an integer"),
        (lambda: v.check_int("rank", 0, minimum=1), InputError, "rank must be an integer >= 1"),
        (lambda: v.check_int("k", 9, maximum=8), InputError, "k must be an integer <= 8; got 9"),
        (lambda: v.check_float("lr", "0.1"), InputTypeError, "lr must be a number"),
        (lambda: v.check_float("lr", float("nan")), InputError, "lr must be a finite number"),
        (
            lambda: v.check_float("p", 1.0, maximum=1, strict_maximum=True),
            InputError,
            "p must be < 1",
        ),
        (
            lambda: v.check_float("a", 0, minimum=0, strict_minimum=True),
            InputError,
            "a must be > 0",
        ),
        (
            lambda: v.check_choice("kind", "x", ["a", "b"]),
            InputError,
            "kind must be one of 'a', 'b'",
        ),
        (lambda: v.check_choice("kind", [1], ["a"]), InputError, "kind must be one of"),
        (lambda: v.check_bool("flag", 1), InputTypeError, "flag must be True or False"),
    ],
)
def test_scalar_checks_name_the_argument(call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    # the policy's types are the built-in ones callers already catch
    assert isinstance(info.value, TypeError if error is InputTypeError else ValueError)


def test_scalar_checks_pass_values_through():
    assert v.check_int("n", np.int64(3), minimum=1) == 3
    assert v.check_int("n", None, allow_none=True) is None
    assert v.check_float("x", np.float32(0.5), minimum=0, maximum=1) == 0.5
    assert v.check_choice("kind", "a", ("a", "b")) == "a"


def test_check_array_converts_and_checks():
    out = v.check_array("X", torch.ones(3, 2, dtype=torch.bfloat16), ndim=2)
    assert isinstance(out, np.ndarray) and out.shape == (3, 2)
    assert v.check_array("X", [[1, 2]], ndim=2, dtype=np.float32).dtype == np.float32
    with pytest.raises(InputError, match=r"X must be 2D \(n, p\); got shape \(3,\)\. Reshape"):
        v.check_array("X", np.ones(3), ndim=2, shape_hint="(n, p)")
    with pytest.raises(InputError, match="2 NaN or infinite"):
        v.check_array("Y", np.array([1.0, np.nan, np.inf]))
    assert np.isnan(v.check_array("Y", np.array([np.nan]), finite=False)).all()
    with pytest.raises(InputTypeError, match="Ragged|other objects"):
        v.check_array("X", [[1, 2], [3]])
    with pytest.raises(InputTypeError, match="Load the file first"):
        v.check_array("X", "betas.npy")
    with pytest.raises(InputTypeError, match="is None"):
        v.check_array("Y", None)
    with pytest.raises(InputError, match="n_samples=1"):
        v.check_array("X", np.ones((1, 2)), min_rows=2)
    with pytest.raises(InputError, match="empty"):
        v.check_array("X", np.ones((0, 2)))
    with pytest.raises(InputError, match="Complex data"):
        v.check_array("X", np.ones(2) * 1j)


def test_check_same_length_and_n_features():
    assert v.check_same_length(X=np.ones(3), Y=np.ones(3), Z=None) == 3
    with pytest.raises(InputError, match="X has 3, Y has 4"):
        v.check_same_length(X=np.ones(3), Y=np.ones(4))

    class Fitted:
        n_features_in_ = 4

    with pytest.raises(InputError, match="X has 3 features, but Fitted is expecting 4"):
        v.check_n_features(Fitted(), np.ones((2, 3)))


def test_check_file(tmp_path):
    f = tmp_path / "betas.nii.gz"
    with pytest.raises(MissingFileError, match=r"--betas: no such file"):
        v.check_file("--betas", f)
    f.write_bytes(b"")
    with pytest.raises(UnreadableFileError, match="empty"):
        v.check_file("--betas", f)
    f.write_bytes(b"x")
    assert v.check_file("--betas", str(f), suffixes=[".nii", ".nii.gz"]) == f
    with pytest.raises(InputError, match=r"must be a \.h5 file"):
        v.check_file("--traces", f, suffixes=[".h5"])
    with pytest.raises(InputError, match="is a folder"):
        v.check_file("--betas", tmp_path)
    assert v.check_file("--images", tmp_path, folder=True) == tmp_path
    with pytest.raises(InputTypeError, match="must be a path"):
        v.check_file("--betas", 3)


def test_overwrite_check_and_output_folders(tmp_path):
    target = tmp_path / "m.pt"
    assert check_overwrite(target, overwrite=False) == target
    target.write_text("x")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        check_overwrite(target, overwrite=False)
    assert check_overwrite(target, overwrite=True) == target
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_overwrite(target / "inside.pt", overwrite=True)
    with pytest.raises(InputError, match="is a file"):
        prepare_output_dir(target)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a").write_text("keep")
    with pytest.raises(OutputExistsError, match="not empty"):
        prepare_output_dir(tmp_path / "out")
    assert prepare_output_dir(tmp_path / "out", overwrite=True).is_dir()
