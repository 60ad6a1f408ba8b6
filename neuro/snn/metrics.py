"""Scores of continual learning: the accuracy matrix, ACC, BWT, and angles between subspaces.

The accuracy matrix
    ``R[i, j]`` is the test accuracy on task ``j`` after learning tasks
    ``0 .. i``, as a fraction in [0, 1] (not percent: a matrix with values
    above 1 is refused with that hint). Entries above the diagonal (tasks not
    learned yet) may be NaN; those on and below it must be numbers.
ACC and BWT (as in the HLOP paper, after Lopez-Paz and Ranzato's GEM)
    With ``T`` tasks, ``ACC = mean_j R[T-1, j]`` is the mean final accuracy,
    and ``BWT = mean_{j < T-1} (R[T-1, j] - R[j, j])`` the mean change in a
    task's accuracy from just after learning it to the end: 0 means no
    forgetting, negative values forgetting. With one task nothing can be
    forgotten and BWT is 0.
Principal angles
    :func:`principal_angles` compares two subspaces of the same space, given
    by bases whose *columns* span them, e.g. the top principal directions of
    a layer's presynaptic activity (exact, as GPM keeps them) and the lateral
    weights that HLOP's Hebbian rule learned. HLOP's lateral weights ``W``
    have shape ``(m, n)`` with the subspace in their *rows*: pass ``W.T``.

Examples
--------
>>> import numpy as np
>>> R = np.array([[0.9, np.nan], [0.8, 0.95]])
>>> round(acc(R), 3), round(bwt(R), 3)
(0.875, -0.1)
>>> plane = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])   # the xy-plane in R^3
>>> tilted = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # the plane z = y
>>> principal_angles(plane, tilted).round(6)
array([ 0., 45.])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from neuro._validation import check_array, check_float, check_int
from neuro.errors import InputError, InputIndexError, InputTypeError
from neuro.results import Result

__all__ = ["AccuracyMatrix", "acc", "bwt", "check_accuracy_matrix", "principal_angles"]


def check_accuracy_matrix(R: Any, name: str = "R") -> np.ndarray:
    """``R`` as a float64 ``(n_tasks, n_tasks)`` accuracy matrix, checked.

    Parameters
    ----------
    R : array-like or torch.Tensor, shape (n_tasks, n_tasks)
        ``R[i, j]``: accuracy on task ``j`` after learning task ``i``, in [0, 1];
        NaN allowed above the diagonal only.
    name : str, default="R"
        The argument's name in messages.

    Returns
    -------
    ndarray of float64

    Raises
    ------
    InputError
        Not square, a NaN on or below the diagonal, or a value outside [0, 1].
    """
    R = check_array(
        name, R, ndim=2, shape_hint="(n_tasks, n_tasks)", finite=False, dtype=np.float64
    )
    if R.shape[0] != R.shape[1]:
        raise InputError(
            f"{name} must be square (n_tasks, n_tasks), one row per task learned and one column "
            f"per task scored; got shape {R.shape}."
        )
    lower = np.tril(R)
    if not np.isfinite(lower).all():
        i, j = np.argwhere(~np.isfinite(lower))[0]
        raise InputError(
            f"{name}[{i}, {j}] is {R[i, j]}; every entry on and below the diagonal (a task "
            "already learned) needs a measured accuracy."
        )
    values = R[np.isfinite(R)]
    if values.min() < 0 or values.max() > 1:
        hint = " (percentages? divide by 100)" if values.max() <= 100 and values.min() >= 0 else ""
        raise InputError(
            f"{name} must hold accuracies as fractions in [0, 1]; got values from "
            f"{values.min():g} to {values.max():g}{hint}."
        )
    return R


def acc(R: Any) -> float:
    """ACC: the mean accuracy over all tasks after learning the last one.

    Parameters
    ----------
    R : array-like, shape (n_tasks, n_tasks)
        The accuracy matrix (fractions; see :func:`check_accuracy_matrix`).

    Returns
    -------
    float
        ``mean_j R[T-1, j]``, in [0, 1].

    Examples
    --------
    >>> acc([[0.5, 0.0], [0.25, 0.75]])
    0.5
    """
    R = check_accuracy_matrix(R)
    return float(R[-1].mean())


def bwt(R: Any) -> float:
    """BWT: backward transfer, the mean change of each earlier task's accuracy by the end.

    Parameters
    ----------
    R : array-like, shape (n_tasks, n_tasks)
        The accuracy matrix (fractions; see :func:`check_accuracy_matrix`).

    Returns
    -------
    float
        ``mean_{j < T-1} (R[T-1, j] - R[j, j])``, in [-1, 1]: 0 without
        forgetting, negative with it; 0.0 for a single task.

    Examples
    --------
    >>> round(bwt([[0.9, 0.1, 0.1], [0.7, 0.8, 0.1], [0.6, 0.8, 0.9]]), 6)
    -0.15
    """
    R = check_accuracy_matrix(R)
    if len(R) == 1:
        return 0.0
    return float(np.mean(R[-1, :-1] - np.diag(R)[:-1]))


def _orthonormal_basis(name: str, A: np.ndarray, rtol: float | None) -> np.ndarray:
    """Orthonormal columns spanning the column space of ``A`` (its numerical rank)."""
    eps = np.finfo(A.dtype if A.dtype.kind == "f" else np.float64).eps
    U, s, _ = np.linalg.svd(A.astype(np.float64), full_matrices=False)
    tol = (max(A.shape) * eps if rtol is None else rtol) * (s[0] if len(s) else 0.0)
    rank = int(np.count_nonzero(s > tol))
    if rank == 0:
        raise InputError(
            f"{name} spans nothing (rank 0: its columns are zero, or below the tolerance); give "
            "a basis with at least one nonzero column."
        )
    return U[:, :rank]


def principal_angles(A: Any, B: Any, rtol: float | None = None) -> np.ndarray:
    """Principal angles, in degrees, between the column spaces of ``A`` and ``B``.

    Both bases are orthonormalised by an SVD that keeps their numerical rank,
    so they need not be orthonormal, or even of full rank. Small angles are
    computed from sines and large ones from cosines, which keeps both
    accurate (as :func:`scipy.linalg.subspace_angles` does).

    Parameters
    ----------
    A : array-like or torch.Tensor, shape (n, k) or (n,)
        Columns spanning the first subspace of R^n (a vector is one column).
        For HLOP's lateral weights ``W`` ``(m, n)``, pass ``W.T``.
    B : array-like or torch.Tensor, shape (n, l) or (n,)
        Columns spanning the second subspace, in the same space.
    rtol : float, optional
        Singular values below ``rtol`` times the largest do not count toward a
        basis's rank. Default: ``max(n, k)`` times the machine epsilon of its
        dtype.

    Returns
    -------
    ndarray of float64, shape (min(rank A, rank B),)
        The angles in [0, 90], smallest first. All zero when one subspace
        lies inside the other; the largest angle is the usual distance between
        two subspaces of equal dimension.

    Raises
    ------
    InputError
        The bases live in spaces of different dimensions, or one has rank 0.

    Examples
    --------
    >>> import numpy as np
    >>> x_axis = np.array([1.0, 0.0, 0.0])
    >>> diagonal_plane = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]  # spanned by (1, 1, 0), (0, 0, 1)
    >>> principal_angles(x_axis, diagonal_plane).round(6)
    array([45.])
    """
    A = check_array("A", A, ndim=(1, 2), shape_hint="(n, k): basis vectors as columns")
    B = check_array("B", B, ndim=(1, 2), shape_hint="(n, l): basis vectors as columns")
    A, B = (M.reshape(-1, 1) if M.ndim == 1 else M for M in (A, B))
    if A.shape[0] != B.shape[0]:
        raise InputError(
            f"A and B must span subspaces of the same space, one basis vector per column; A has "
            f"{A.shape[0]} rows but B has {B.shape[0]}. For lateral weights (m, n), pass W.T."
        )
    if rtol is not None:
        rtol = check_float("rtol", rtol, minimum=0.0, maximum=1.0, strict_maximum=True)
    Qa, Qb = _orthonormal_basis("A", A, rtol), _orthonormal_basis("B", B, rtol)
    if Qa.shape[1] < Qb.shape[1]:  # project the smaller basis onto the other's complement
        Qa, Qb = Qb, Qa
    cosines = np.linalg.svd(Qa.T @ Qb, compute_uv=False)  # descending: smallest angle first
    residual = Qb - Qa @ (Qa.T @ Qb)
    sines = np.linalg.svd(residual, compute_uv=False)[::-1]  # ascending, paired with cosines
    cosines, sines = np.clip(cosines, 0.0, 1.0), np.clip(sines, 0.0, 1.0)
    angles = np.where(cosines**2 >= 0.5, np.arcsin(sines), np.arccos(cosines))
    return np.degrees(angles)


class AccuracyMatrix(Result):
    """The accuracy matrix of one run over a task stream, filled as the run goes.

    Parameters
    ----------
    n_tasks : int
        Number of tasks in the stream.
    task_names : sequence of str, optional
        One name per task (default ``"task 0"``, ``"task 1"``, ...).

    Attributes
    ----------
    matrix : ndarray of float64, shape (n_tasks, n_tasks)
        ``matrix[i, j]``: accuracy on task ``j`` after learning task ``i`` (a
        fraction), NaN where not recorded.
    n_learned : int
        Rows complete so far: tasks learned and scored on every task up to them.

    Examples
    --------
    >>> R = AccuracyMatrix(3)
    >>> R.record(0, [0.9])              # after task 0, scored on task 0
    >>> R.record(1, [0.85, 0.92, 0.11]) # scores on tasks not yet learned are kept too
    >>> R.n_learned, round(R.acc(), 3), round(R.bwt(), 3)
    (2, 0.885, -0.05)
    >>> print(R.format_table())
    accuracy (%) after learning each task (rows) on each task (columns)
    after       task 0  task 1  task 2
    task 0        90.0       -       -
    task 1        85.0    92.0    11.0
    ACC 88.50 %   BWT -5.00 %   (after 2 of 3 tasks)
    """

    def __init__(self, n_tasks: int, task_names: Sequence[str] | None = None) -> None:
        n_tasks = check_int("n_tasks", n_tasks, minimum=1)
        if task_names is None:
            task_names = [f"task {t}" for t in range(n_tasks)]
        elif isinstance(task_names, (str, bytes)) or not isinstance(task_names, Sequence):
            raise InputTypeError(
                f"task_names must be a sequence of strings; got {type(task_names).__name__}."
            )
        task_names = [str(n) for n in task_names]
        if len(task_names) != n_tasks:
            raise InputError(
                f"task_names has {len(task_names)} entries for {n_tasks} tasks; give one each."
            )
        self.n_tasks = n_tasks
        self.task_names = task_names
        self.matrix = np.full((n_tasks, n_tasks), np.nan)

    @classmethod
    def from_matrix(cls, R: Any, task_names: Sequence[str] | None = None) -> AccuracyMatrix:
        """An :class:`AccuracyMatrix` holding a complete matrix ``R`` (fractions)."""
        R = check_accuracy_matrix(R)
        out = cls(len(R), task_names)
        out.matrix = R.copy()
        return out

    def record(self, after: int, accuracies: Any) -> None:
        """Record the accuracies measured after learning task ``after``.

        Parameters
        ----------
        after : int
            The task just learned (row of the matrix).
        accuracies : array-like of float
            Accuracy (fraction) on tasks ``0, 1, ...``: at least the ``after + 1``
            tasks learned so far, at most all ``n_tasks``.
        """
        after = check_int("after", after, minimum=0)
        if after >= self.n_tasks:
            raise InputIndexError(
                f"after={after} is out of range for a stream of {self.n_tasks} tasks."
            )
        values = check_array("accuracies", accuracies, ndim=1, dtype=np.float64)
        if not after + 1 <= len(values) <= self.n_tasks:
            raise InputError(
                f"accuracies has {len(values)} entries after learning task {after}; give the "
                f"accuracy on tasks 0..{after} at least (and on at most {self.n_tasks} tasks)."
            )
        if values.min() < 0 or values.max() > 1:
            raise InputError(
                f"accuracies must be fractions in [0, 1]; got values from {values.min():g} to "
                f"{values.max():g}."
            )
        self.matrix[after, : len(values)] = values

    @property
    def n_learned(self) -> int:
        """Number of leading rows complete on and below the diagonal."""
        complete = [np.isfinite(self.matrix[i, : i + 1]).all() for i in range(self.n_tasks)]
        return int(np.argmin(complete)) if not all(complete) else self.n_tasks

    def _learned(self) -> np.ndarray:
        k = self.n_learned
        if k == 0:
            raise InputError(
                "no task has been recorded yet; call record(0, accuracies) after learning task 0."
            )
        return self.matrix[:k, :k]

    def acc(self) -> float:
        """ACC over the tasks learned so far (see :func:`acc`)."""
        return acc(self._learned())

    def bwt(self) -> float:
        """BWT over the tasks learned so far (see :func:`bwt`)."""
        return bwt(self._learned())

    def summary(self) -> dict[str, Any]:
        """ACC, BWT (fractions), the matrix (NaN as None) and the task names."""
        learned = self.n_learned
        return {
            "acc": self.acc() if learned else float("nan"),
            "bwt": self.bwt() if learned else float("nan"),
            "n_tasks": self.n_tasks,
            "n_learned": learned,
            "task_names": list(self.task_names),
            "accuracy_matrix": self.matrix.tolist(),
        }

    def format_table(self) -> str:
        """The matrix in percent, rows the task just learned, then ACC and BWT."""
        width = max(7, *(len(n) for n in self.task_names)) + 1
        lines = [
            "accuracy (%) after learning each task (rows) on each task (columns)",
            "after".ljust(width) + "".join(n.rjust(width) for n in self.task_names),
        ]
        for i in range(self.n_learned):
            cells = (
                f"{100 * v:.1f}".rjust(width) if np.isfinite(v) else "-".rjust(width)
                for v in self.matrix[i]
            )
            lines.append(self.task_names[i].ljust(width) + "".join(cells))
        if self.n_learned:
            lines.append(
                f"ACC {100 * self.acc():.2f} %   BWT {100 * self.bwt():.2f} %   "
                f"(after {self.n_learned} of {self.n_tasks} tasks)"
            )
        return "\n".join(lines)

    def tables(self) -> dict[str, Any]:
        """``accuracy_matrix``: one row per task learned, one column per task scored."""
        import pandas as pd

        frame = pd.DataFrame(self.matrix, columns=self.task_names)
        frame.insert(0, "after", self.task_names)
        return {"accuracy_matrix": frame}

    def plot(self) -> dict[str, Any]:
        """``accuracy_matrix``: the matrix as a heat map, in percent."""
        from neuro.plotting import new_figure

        side = max(2.6, 0.45 * self.n_tasks)
        fig, axes = new_figure(size=(side + 1.2, side + 0.5))
        ax = axes[0, 0]
        image = ax.imshow(100 * self.matrix, vmin=0, vmax=100, cmap="viridis")
        ticks = np.arange(self.n_tasks)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_yticks(ticks, [str(t) for t in ticks])
        ax.set_xlabel("task scored")
        ax.set_ylabel("after learning task")
        fig.colorbar(image, ax=ax, label="accuracy (%)")
        return {"accuracy_matrix": fig}
