"""The accuracy matrix, ACC, BWT and principal angles, on hand-computed cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch

from neuro.errors import InputError, InputIndexError
from neuro.snn.metrics import AccuracyMatrix, acc, bwt, check_accuracy_matrix, principal_angles

NAN = np.nan

# accuracy on task j (columns) after learning task i (rows); NaN: not measured yet
R3 = np.array(
    [
        [0.90, NAN, NAN],
        [0.70, 0.80, NAN],
        [0.60, 0.75, 0.95],
    ]
)


# ---- ACC and BWT -------------------------------------------------------------------------
def test_acc_and_bwt_by_hand():
    assert acc(R3) == pytest.approx((0.60 + 0.75 + 0.95) / 3)
    # task 0: 0.60 - 0.90 = -0.30; task 1: 0.75 - 0.80 = -0.05; the last task does not count
    assert bwt(R3) == pytest.approx((-0.30 - 0.05) / 2)


def test_bwt_is_zero_without_forgetting_and_minus_one_with_total_forgetting():
    keep = np.array([[1.0, 0.1], [1.0, 0.9]])
    assert bwt(keep) == pytest.approx(0.0)
    forget = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert bwt(forget) == pytest.approx(-1.0)
    assert acc(forget) == pytest.approx(1 / 3)


def test_positive_backward_transfer_is_positive():
    assert bwt([[0.5, 0.2], [0.7, 0.9]]) == pytest.approx(0.2)


def test_one_task():
    assert acc([[0.8]]) == pytest.approx(0.8)
    assert bwt([[0.8]]) == 0.0


def test_upper_triangle_is_ignored():
    filled = np.where(np.isnan(R3), 0.123, R3)
    assert acc(filled) == pytest.approx(acc(R3))
    assert bwt(filled) == pytest.approx(bwt(R3))


def test_torch_input():
    R = torch.tensor([[0.5, 0.0], [0.25, 0.75]])
    assert acc(R) == pytest.approx(0.5)
    assert bwt(R) == pytest.approx(-0.25)


@pytest.mark.parametrize(
    ("R", "match"),
    [
        (np.full((2, 3), 0.5), "must be square"),
        ([[90.0, NAN], [80.0, 95.0]], "divide by 100"),
        ([[0.9, NAN], [-0.1, 0.5]], r"fractions in \[0, 1\]"),
        ([[0.9, NAN], [NAN, 0.5]], r"R\[1, 0\] is nan"),
        ([0.5, 0.5], "must be 2D"),
    ],
)
def test_bad_matrices_are_refused_in_one_line(R, match):
    with pytest.raises(InputError, match=match) as err:
        check_accuracy_matrix(R)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match=match):
        bwt(R)


# ---- principal angles --------------------------------------------------------------------
XY_PLANE = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])


def _tilted_plane(theta_deg: float) -> np.ndarray:
    """The plane through the x-axis tilted by ``theta`` from the xy-plane."""
    t = np.radians(theta_deg)
    return np.array([[1.0, 0.0], [0.0, np.cos(t)], [0.0, np.sin(t)]])


@pytest.mark.parametrize("theta", [1e-6, 0.01, 10.0, 30.0, 45.0, 60.0, 89.99, 90.0])
def test_planes_in_r3_at_a_known_angle(theta):
    angles = principal_angles(XY_PLANE, _tilted_plane(theta))
    # the planes share the x-axis (angle 0) and meet at the dihedral angle theta
    np.testing.assert_allclose(angles, [0.0, theta], rtol=1e-9, atol=1e-9)


def test_bases_need_not_be_orthonormal(rng):
    mix = rng.standard_normal((2, 2)) + 3 * np.eye(2)  # invertible: the same column space
    angles = principal_angles(3.0 * XY_PLANE @ mix, _tilted_plane(30.0) @ mix)
    np.testing.assert_allclose(angles, [0.0, 30.0], atol=1e-9)


def test_a_line_and_a_plane():
    line = np.array([1.0, 1.0, 1.0])  # angle to the xy-plane: arctan(1 / sqrt 2)
    angles = principal_angles(line, XY_PLANE)
    np.testing.assert_allclose(angles, [np.degrees(np.arctan(1 / np.sqrt(2)))], atol=1e-10)
    np.testing.assert_allclose(principal_angles(XY_PLANE, line), angles, atol=1e-12)


def test_rank_deficient_bases_count_their_rank(rng):
    v = rng.standard_normal(9)
    A = np.stack([v, -2 * v, np.zeros(9)], axis=1)  # rank 1 in three columns
    B = rng.standard_normal((9, 4))
    angles = principal_angles(A, B)
    assert angles.shape == (1,)
    np.testing.assert_allclose(angles, principal_angles(v, B), atol=1e-10)


def test_rtol_decides_what_counts_toward_the_rank():
    basis = np.array([[1.0, 0.0], [0.0, 1e-9], [0.0, 0.0]])
    assert principal_angles(basis, XY_PLANE).shape == (2,)
    assert principal_angles(basis, XY_PLANE, rtol=1e-6).shape == (1,)


def test_same_subspace_and_orthogonal_subspaces(rng):
    Q, _ = np.linalg.qr(rng.standard_normal((9, 9)))
    np.testing.assert_allclose(
        principal_angles(Q[:, :3], Q[:, :3] @ rng.random((3, 3))), 0, atol=1e-6
    )
    np.testing.assert_allclose(principal_angles(Q[:, :3], Q[:, 3:7]), 90.0, atol=1e-9)
    # a subspace inside a larger one: every angle 0
    np.testing.assert_allclose(principal_angles(Q[:, :2], Q[:, :5]), 0.0, atol=1e-6)


@pytest.mark.parametrize(("k", "m"), [(3, 4), (4, 3), (7, 7), (1, 8)])
def test_matches_scipy(rng, k, m):
    A, B = rng.standard_normal((9, k)), rng.standard_normal((9, m))
    expected = np.sort(np.degrees(scipy.linalg.subspace_angles(A, B)))
    np.testing.assert_allclose(principal_angles(A, B), expected, atol=1e-8)


def test_lateral_weights_rows_as_columns_and_torch_float32(rng):
    W = torch.tensor(rng.standard_normal((3, 8)), dtype=torch.float32)  # (m, n) lateral weights
    angles = principal_angles(W.T, W.T @ torch.tensor(rng.random((3, 3)), dtype=torch.float32))
    assert angles.dtype == np.float64 and angles.shape == (3,)
    assert angles.max() < 0.05  # float32 rounding only


@pytest.mark.parametrize(
    ("A", "B", "match"),
    [
        (np.ones((7, 2)), np.ones((8, 2)), "A has 7 rows but B has 8.*W.T"),
        (np.zeros((7, 2)), np.ones((7, 2)), "A spans nothing"),
        (np.ones((7, 2)), np.zeros((7, 3)), "B spans nothing"),
        (np.ones((2, 3, 4)), np.ones((2, 3)), "A must be 1D or 2D"),
    ],
)
def test_bad_bases_are_refused_in_one_line(A, B, match):
    with pytest.raises(InputError, match=match) as err:
        principal_angles(A, B)
    assert "\n" not in str(err.value)


# ---- AccuracyMatrix ----------------------------------------------------------------------
def test_accuracy_matrix_fills_as_the_run_goes():
    R = AccuracyMatrix(3, task_names=["a", "b", "c"])
    assert R.n_learned == 0
    with pytest.raises(InputError, match="no task has been recorded"):
        R.acc()
    R.record(0, [0.90])
    assert R.n_learned == 1 and R.acc() == pytest.approx(0.90) and R.bwt() == 0.0
    R.record(1, [0.70, 0.80, 0.33])  # the score on a task not yet learned is kept too
    assert R.n_learned == 2
    assert R.acc() == pytest.approx(0.75) and R.bwt() == pytest.approx(-0.20)
    assert R.matrix[1, 2] == pytest.approx(0.33)
    R.record(2, [0.60, 0.75, 0.95])
    assert R.n_learned == 3
    assert R.acc() == pytest.approx(acc(R3)) and R.bwt() == pytest.approx(bwt(R3))


def test_from_matrix_summary_table_and_save(tmp_path):
    R = AccuracyMatrix.from_matrix(R3, task_names=["perm-0", "perm-1", "perm-2"])
    summary = R.summary()
    assert summary["acc"] == pytest.approx(acc(R3)) and summary["bwt"] == pytest.approx(bwt(R3))
    assert summary["n_learned"] == 3 and summary["task_names"] == ["perm-0", "perm-1", "perm-2"]
    table = R.format_table()
    assert "perm-2" in table and "95.0" in table and "ACC 76.67 %" in table
    assert "BWT -17.50 %" in table
    out = R.save(tmp_path / "run")
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["accuracy_matrix"][0] == [0.9, None, None]  # NaN written as null
    csv = (out / "accuracy_matrix.csv").read_text().splitlines()
    assert csv[0] == "after,perm-0,perm-1,perm-2" and csv[3].startswith("perm-2,0.6,0.75,0.95")
    assert (out / "figures" / "accuracy_matrix.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("after", "values", "error", "match"),
    [
        (3, [0.5] * 3, InputIndexError, "out of range"),
        (2, [0.5, 0.5], InputError, "accuracy on tasks 0..2 at least"),
        (0, [0.5] * 4, InputError, "at most 3 tasks"),
        (0, [95.0], InputError, r"fractions in \[0, 1\]"),
    ],
)
def test_bad_records_are_refused(after, values, error, match):
    R = AccuracyMatrix(3)
    with pytest.raises(error, match=match):
        R.record(after, values)


def test_task_names_must_match_the_number_of_tasks():
    with pytest.raises(InputError, match="2 entries for 3 tasks"):
        AccuracyMatrix(3, task_names=["a", "b"])
