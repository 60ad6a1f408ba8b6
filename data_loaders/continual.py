"""Streams of tasks for continual learning, and readers for the files they come from.

A :class:`TaskStream` is a sequence of :class:`Task` objects, each with its own
train and test samples ``X (n, n_features)`` (float32), integer labels ``y``, a
name and its class set, all of one input size. A learner sees the tasks one
after the other and is scored on every task seen so far (see
:mod:`neuro.snn.metrics` for the accuracy matrix, ACC and BWT).

Streams
    * :func:`permuted_digits`: scikit-learn's 8 x 8 digits (shipped with it, no
      download), one fixed pixel permutation per task, the same classes in
      every task (domain-incremental, one shared head), as permuted MNIST.
    * :func:`split_digits`: the ten digit classes dealt into disjoint groups,
      one group per task (class-incremental with global labels, or one head
      per task with ``task_labels=True``).
    * :func:`permuted_mnist`: the same stream from the MNIST files as
      distributed (IDX format, gzipped or not), for those who have them.
    * :func:`split_cifar100`: CIFAR-100 in 10 tasks of 10 classes (the binary
      version as distributed; the pickled Python version is refused, since
      ``neuro`` never unpickles a file).

Permutations
    As in the public code of HLOP (and of GPM, on which it builds), every task
    of a permuted stream is permuted, task 0 included; ``permute_first=False``
    keeps task 0 in the original pixel order, as some papers do. Task ``t``'s
    permutation depends only on ``seed`` and ``t``, so the first 5 tasks of a
    10-task stream are the 5 tasks of a 5-task stream.
Memory
    Tasks of a permuted stream share one copy of the pixels, kept as bytes:
    ``task.X_train`` builds the task's float32 matrix each time it is read, so
    read it once per task (``X = task.X_train``), not once per sample.

Examples
--------
>>> stream = permuted_digits(n_tasks=3, seed=0)
>>> len(stream), stream.n_features, stream.n_classes, stream.input_shape
(3, 64, 10, (8, 8))
>>> task = stream[0]
>>> task.name, task.X_train.shape, task.X_test.shape, task.classes
('permuted-digits-0', (1347, 64), (450, 64), (0, 1, 2, 3, 4, 5, 6, 7, 8, 9))
>>> float(task.X_train.min()), float(task.X_train.max())
(0.0, 1.0)
>>> split = split_digits(n_tasks=5, task_labels=True)
>>> split[1].classes, split[1].source_classes
((0, 1), (2, 3))
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_loaders._validation import (
    check_array,
    check_bool,
    check_file,
    check_float,
    check_int,
    check_same_length,
)
from data_loaders.errors import (
    InputError,
    InputIndexError,
    InputTypeError,
    MissingFileError,
    UnreadableFileError,
    one_line,
)

__all__ = [
    "Task",
    "TaskStream",
    "permuted_digits",
    "permuted_mnist",
    "read_cifar100_binary",
    "read_idx",
    "split_cifar100",
    "split_digits",
]


# ----------------------------------------------------------------------------- tasks
def _labels(name: str, value: Any) -> np.ndarray:
    """A 1-D int64 array of non-negative whole numbers (class labels)."""
    arr = check_array(name, value, ndim=1, shape_hint="(n_samples,)")
    if arr.dtype.kind == "b":
        raise InputTypeError(f"{name} must hold integer class labels; got booleans.")
    if arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)):
        bad = arr[arr != np.round(arr)][0]
        raise InputError(
            f"{name} must hold whole numbers (class labels); got e.g. {bad}. Give the integer "
            "class of each sample (e.g. with sklearn.preprocessing.LabelEncoder)."
        )
    arr = arr.astype(np.int64)
    if arr.min() < 0:
        raise InputError(
            f"{name} must hold class labels >= 0; got {arr.min()}. Number the classes 0, 1, ..."
        )
    return arr


def _class_tuple(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InputTypeError(
            f"{name} must be a sequence of integer class labels; got {type(value).__name__}."
        )
    labels = _labels(name, list(value))
    if len(np.unique(labels)) != len(labels):
        raise InputError(f"{name} lists a class more than once: {labels.tolist()}.")
    return tuple(int(c) for c in labels)


class Task:
    """One task of a stream: train and test samples, their labels, and the task's classes.

    Parameters
    ----------
    name : str
        The task's name (unique within a stream), e.g. ``"permuted-digits-3"``.
    X_train : array-like or torch.Tensor, shape (n_train, n_features)
        Training inputs; stored as float32.
    y_train : array-like of int, shape (n_train,)
        Training labels (whole numbers >= 0); stored as int64.
    X_test : array-like or torch.Tensor, shape (n_test, n_features)
    y_test : array-like of int, shape (n_test,)
    classes : sequence of int, optional
        The labels this task may hold, as they appear in ``y``. Default: every
        label found in ``y_train`` or ``y_test``, sorted.
    source_classes : sequence of int, optional
        The dataset's own class of each entry of ``classes`` (where labels were
        renumbered per task: ``y == k`` means source class
        ``source_classes[k]``). Default: the same as ``classes``.

    Attributes
    ----------
    X_train, X_test : ndarray of float32, shape (n, n_features)
        Built on each access for the tasks of a permuted stream (see the module
        notes): read them once per task.
    y_train, y_test : ndarray of int64, shape (n,)
    classes, source_classes : tuple of int
    n_features, n_train, n_test, n_classes : int
        ``n_classes`` is ``len(classes)``.
    permutation : ndarray of int64 or None
        The pixel order of a permuted task (column ``k`` of ``X`` is source
        pixel ``permutation[k]``), None otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> task = Task("toy", np.zeros((4, 3)), [0, 1, 1, 0], np.ones((2, 3)), [1, 0])
    >>> task.n_features, task.n_train, task.n_test, task.classes, task.X_train.dtype
    (3, 4, 2, (0, 1), dtype('float32'))
    """

    def __init__(
        self,
        name: str,
        X_train: Any,
        y_train: Any,
        X_test: Any,
        y_test: Any,
        classes: Sequence[int] | None = None,
        source_classes: Sequence[int] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise InputTypeError(f"name must be a non-empty string; got {name!r}.")
        xs = {}
        for split, X, y in (("train", X_train, y_train), ("test", X_test, y_test)):
            xs[split] = check_array(
                f"X_{split}", X, ndim=2, shape_hint="(n_samples, n_features)", dtype=np.float32
            )
            xs[f"y_{split}"] = _labels(f"y_{split}", y)
            check_same_length(**{f"X_{split}": xs[split], f"y_{split}": xs[f"y_{split}"]})
        if xs["train"].shape[1] != xs["test"].shape[1]:
            raise InputError(
                f"task {name!r}: X_train has {xs['train'].shape[1]} features but X_test has "
                f"{xs['test'].shape[1]}; give both with the same columns."
            )
        found = np.union1d(xs["y_train"], xs["y_test"])
        if classes is None:
            classes = tuple(int(c) for c in found)
        else:
            classes = _class_tuple("classes", classes)
            stray = np.setdiff1d(found, classes)
            if len(stray):
                raise InputError(
                    f"task {name!r}: the labels hold class {int(stray[0])}, which is not in "
                    f"classes {classes}; list every class of the task in classes."
                )
        if source_classes is not None:
            source_classes = _class_tuple("source_classes", source_classes)
            if len(source_classes) != len(classes):
                raise InputError(
                    f"task {name!r}: source_classes has {len(source_classes)} entries but "
                    f"classes has {len(classes)}; give one source class per class."
                )
        self._init(
            name, xs["train"], xs["y_train"], xs["test"], xs["y_test"], classes, source_classes
        )

    def _init(
        self,
        name,
        x_train,
        y_train,
        x_test,
        y_test,
        classes,
        source_classes=None,
        permutation=None,
        divisor=None,
    ):
        # Internal constructor: the readers build their tasks here without copying the
        # shared pixels. ``x_*`` are the stored arrays (possibly bytes shared between tasks);
        # ``permutation`` reorders their columns and ``divisor`` scales them, on each access.
        self.name = name
        self._x_train, self._x_test = x_train, x_test
        self.y_train, self.y_test = y_train, y_test
        self.classes = tuple(classes)
        self.source_classes = self.classes if source_classes is None else tuple(source_classes)
        self.permutation = permutation
        self._divisor = divisor

    @classmethod
    def _view(cls, name, x_train, y_train, x_test, y_test, classes, **parts) -> Task:
        """A task over stored arrays, without validation or copies (the readers' constructor)."""
        task = cls.__new__(cls)
        task._init(name, x_train, y_train, x_test, y_test, classes, **parts)
        return task

    def _materialise(self, x: np.ndarray) -> np.ndarray:
        if self.permutation is not None:
            x = x[:, self.permutation]
        if self._divisor is None:
            return x
        out = x.astype(np.float32)
        np.divide(out, np.float32(self._divisor), out=out)
        return out

    @property
    def X_train(self) -> np.ndarray:
        """Training inputs, float32 ``(n_train, n_features)``."""
        return self._materialise(self._x_train)

    @property
    def X_test(self) -> np.ndarray:
        """Test inputs, float32 ``(n_test, n_features)``."""
        return self._materialise(self._x_test)

    @property
    def n_features(self) -> int:
        """Number of input columns."""
        return int(self._x_train.shape[1])

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return len(self.y_test)

    @property
    def n_classes(self) -> int:
        """Number of classes of this task."""
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"Task({self.name!r}, n_train={self.n_train}, n_test={self.n_test}, "
            f"n_features={self.n_features}, classes={self.classes})"
        )


class TaskStream(Sequence):
    """A sequence of tasks with one input size, learned one after the other.

    Parameters
    ----------
    tasks : sequence of Task
        At least one; every task must have the same number of features and a
        name of its own.
    name : str, default="stream"
    input_shape : tuple of int, optional
        The shape one sample has before flattening (``(8, 8)`` for digits,
        ``(3, 32, 32)`` for CIFAR: ``X.reshape(-1, *input_shape)``); its
        product must be ``n_features``.

    Attributes
    ----------
    n_features : int
    n_classes : int
        Output units a shared head needs: 1 + the largest label of any task
        (with per-task labels, the size of each task's head).
    names : list of str

    Examples
    --------
    >>> import numpy as np
    >>> a = Task("a", np.zeros((4, 3)), [0, 1, 0, 1], np.zeros((2, 3)), [0, 1])
    >>> b = Task("b", np.zeros((4, 3)), [2, 3, 2, 3], np.zeros((2, 3)), [3, 2])
    >>> stream = TaskStream([a, b], name="toy")
    >>> len(stream), stream.n_features, stream.n_classes, stream.names
    (2, 3, 4, ['a', 'b'])
    >>> TaskStream([a, Task("c", np.zeros((4, 5)), [0, 1, 0, 1], np.zeros((2, 5)), [0, 1])])
    Traceback (most recent call last):
    ...
    data_loaders.errors.InputError: task 1 ('c') has 5 features but task 0 ('a') has 3; ...
    """

    def __init__(
        self, tasks: Sequence[Task], name: str = "stream", input_shape: Sequence[int] | None = None
    ) -> None:
        if isinstance(tasks, (str, bytes, Task)) or not isinstance(tasks, Iterable):
            raise InputTypeError(
                f"tasks must be a sequence of Task objects; got {type(tasks).__name__}."
            )
        tasks = list(tasks)
        if not tasks:
            raise InputError("tasks is empty; a stream needs at least one Task.")
        for i, task in enumerate(tasks):
            if not isinstance(task, Task):
                raise InputTypeError(
                    f"tasks[{i}] is a {type(task).__name__}, not a Task; build each task with "
                    "data_loaders.continual.Task(name, X_train, y_train, X_test, y_test)."
                )
        first = tasks[0]
        for i, task in enumerate(tasks[1:], start=1):
            if task.n_features != first.n_features:
                raise InputError(
                    f"task {i} ({task.name!r}) has {task.n_features} features but task 0 "
                    f"({first.name!r}) has {first.n_features}; every task of a stream needs the "
                    "same input size (resize, pad or crop its inputs)."
                )
        seen: dict[str, int] = {}
        for i, task in enumerate(tasks):
            if task.name in seen:
                raise InputError(
                    f"tasks {seen[task.name]} and {i} are both named {task.name!r}; give each "
                    "task a name of its own."
                )
            seen[task.name] = i
        if not isinstance(name, str):
            raise InputTypeError(f"name must be a string; got {type(name).__name__}.")
        if input_shape is not None:
            if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Iterable):
                raise InputTypeError(
                    f"input_shape must be a tuple of integers; got {type(input_shape).__name__}."
                )
            input_shape = tuple(check_int("input_shape", d, minimum=1) for d in input_shape)
            if math.prod(input_shape) != first.n_features:
                raise InputError(
                    f"input_shape {input_shape} holds {math.prod(input_shape)} values but the "
                    f"tasks have {first.n_features} features; give the shape of one sample."
                )
        self.tasks = tasks
        self.name = name
        self.input_shape = input_shape

    @property
    def n_features(self) -> int:
        """Number of input columns, the same in every task."""
        return self.tasks[0].n_features

    @property
    def n_classes(self) -> int:
        """1 + the largest label of any task: the size of a shared output layer."""
        return 1 + max(max(task.classes) for task in self.tasks)

    @property
    def names(self) -> list[str]:
        """The tasks' names, in order."""
        return [task.name for task in self.tasks]

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, index):
        """``stream[t]`` is task ``t``; ``stream[a:b]`` a stream of those tasks."""
        if isinstance(index, slice):
            return TaskStream(self.tasks[index], name=self.name, input_shape=self.input_shape)
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise InputTypeError(
                f"a task stream is indexed by an integer or a slice; got {type(index).__name__}."
            )
        if not -len(self.tasks) <= index < len(self.tasks):
            raise InputIndexError(
                f"task index {index} is out of range for a stream of {len(self.tasks)} tasks."
            )
        return self.tasks[index]

    def __repr__(self) -> str:
        return (
            f"TaskStream({self.name!r}, {len(self)} tasks, n_features={self.n_features}, "
            f"n_classes={self.n_classes})"
        )


# ----------------------------------------------------------------------------- helpers
def _stratified_split(y: np.ndarray, test_fraction: float, seed: int):
    """Indices (train, test) of a seeded split that keeps each class's share."""
    from sklearn.model_selection import train_test_split

    n, n_classes = len(y), len(np.unique(y))
    n_test = math.ceil(test_fraction * n)
    if n_test < n_classes or n - n_test < n_classes:
        raise InputError(
            f"test_fraction={test_fraction:g} leaves {n_test} test and {n - n_test} training "
            f"samples of {n}, fewer than the {n_classes} classes; give a value that leaves at "
            "least one sample of each class on both sides (e.g. 0.25)."
        )
    train, test = train_test_split(
        np.arange(n), test_size=n_test, stratify=y, random_state=seed, shuffle=True
    )
    return np.sort(train), np.sort(test)


def _permutations(n_tasks: int, n_features: int, seed: int, permute_first: bool) -> list:
    """One column permutation per task; task t's depends only on (seed, t)."""
    children = np.random.SeedSequence(seed).spawn(n_tasks)
    perms = [np.random.default_rng(c).permutation(n_features) for c in children]
    if not permute_first:
        perms[0] = None
    return perms


def _load_digits_bytes():
    """scikit-learn's digits as bytes 0..16 (n, 64) and labels, without copying twice."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.astype(np.uint8), digits.target.astype(np.int64)


def _check_common(n_tasks, maximum, seed, test_fraction=None):
    n_tasks = check_int("n_tasks", n_tasks, minimum=1, maximum=maximum)
    seed = check_int("seed", seed, minimum=0)
    if test_fraction is not None:
        test_fraction = check_float(
            "test_fraction",
            test_fraction,
            minimum=0.0,
            maximum=1.0,
            strict_minimum=True,
            strict_maximum=True,
        )
    return n_tasks, seed, test_fraction


def _split_tasks(prefix, x_tr, y_tr, x_te, y_te, order, n_tasks, task_labels, divisor):
    """One task per group of classes (``order`` cut into ``n_tasks`` nearly equal groups).

    Labels stay global, or are renumbered 0..k-1 per task with ``task_labels``.
    """
    tasks = []
    size = int(max(y_tr.max(), y_te.max(), order.max())) + 1
    for t, group in enumerate(np.array_split(order, n_tasks)):
        lookup = np.full(size, -1, dtype=np.int64)
        lookup[group] = np.arange(len(group)) if task_labels else group
        rows_tr, rows_te = np.isin(y_tr, group), np.isin(y_te, group)
        for split, rows in (("training", rows_tr), ("test", rows_te)):
            if not rows.any():
                raise InputError(
                    f"task {t} (classes {group.tolist()}) has no {split} sample; every class "
                    "group needs samples on both sides (use fewer tasks, or the full dataset)."
                )
        classes = tuple(range(len(group))) if task_labels else tuple(int(c) for c in group)
        tasks.append(
            Task._view(
                f"{prefix}-{t}",
                x_tr[rows_tr],
                lookup[y_tr[rows_tr]],
                x_te[rows_te],
                lookup[y_te[rows_te]],
                classes,
                source_classes=tuple(int(c) for c in group),
                divisor=divisor,
            )
        )
    return tasks


# ----------------------------------------------------------------------------- digits streams
def permuted_digits(
    n_tasks: int = 10, seed: int = 0, test_fraction: float = 0.25, permute_first: bool = True
) -> TaskStream:
    """Permuted digits: scikit-learn's 8 x 8 digits, one fixed pixel permutation per task.

    The small stand-in for permuted MNIST that runs on a laptop CPU: 1797
    images of the ten digits (shipped with scikit-learn, no download), pixels
    scaled from 0..16 to [0, 1], one stratified train/test split shared by
    every task, and each task's pixels reordered by its own permutation. Every
    task holds the same ten classes (one shared output layer).

    Parameters
    ----------
    n_tasks : int, default=10
        Number of tasks (1 to 1000).
    seed : int, default=0
        Seeds the split and the permutations; task ``t``'s permutation depends
        only on ``seed`` and ``t``.
    test_fraction : float, default=0.25
        Share of the images held out for testing (stratified by class).
    permute_first : bool, default=True
        Permute task 0 too, as the public code of HLOP and GPM does; False keeps
        task 0 in the original pixel order.

    Returns
    -------
    TaskStream
        Tasks ``"permuted-digits-<t>"`` with 64 features, ``input_shape`` ``(8, 8)``.

    Examples
    --------
    >>> stream = permuted_digits(n_tasks=2, permute_first=False)
    >>> stream[0].permutation is None, stream[1].permutation.shape
    (True, (64,))
    """
    n_tasks, seed, test_fraction = _check_common(n_tasks, 1000, seed, test_fraction)
    permute_first = check_bool("permute_first", permute_first)
    x, y = _load_digits_bytes()
    train, test = _stratified_split(y, test_fraction, seed)
    x_tr, x_te, y_tr, y_te = x[train], x[test], y[train], y[test]
    classes = tuple(range(10))
    tasks = [
        Task._view(
            f"permuted-digits-{t}", x_tr, y_tr, x_te, y_te, classes, permutation=perm, divisor=16
        )
        for t, perm in enumerate(_permutations(n_tasks, x.shape[1], seed, permute_first))
    ]
    return TaskStream(tasks, name="permuted-digits", input_shape=(8, 8))


def split_digits(
    n_tasks: int = 5,
    seed: int = 0,
    test_fraction: float = 0.25,
    task_labels: bool = False,
    shuffle_classes: bool = False,
) -> TaskStream:
    """Split digits: the ten digit classes dealt into disjoint groups, one per task.

    Parameters
    ----------
    n_tasks : int, default=5
        Number of tasks (1 to 10); the classes are split into ``n_tasks``
        groups of (nearly) equal size, in order (5 tasks: {0, 1}, {2, 3}, ...).
    seed : int, default=0
        Seeds the train/test split (and the class order with ``shuffle_classes``).
    test_fraction : float, default=0.25
        Share of the images held out for testing (stratified by class).
    task_labels : bool, default=False
        False keeps the digit as the label (one shared head of 10 units, the
        class-incremental setting); True renumbers each task's classes
        ``0 .. k-1`` (one head per task), the digit kept in
        ``task.source_classes``.
    shuffle_classes : bool, default=False
        Deal the classes in a seeded random order instead of 0..9.

    Returns
    -------
    TaskStream
        Tasks ``"split-digits-<t>"`` with 64 features in [0, 1], ``input_shape`` ``(8, 8)``.

    Examples
    --------
    >>> stream = split_digits(n_tasks=3)
    >>> [task.classes for task in stream]
    [(0, 1, 2, 3), (4, 5, 6), (7, 8, 9)]
    """
    n_tasks, seed, test_fraction = _check_common(n_tasks, 10, seed, test_fraction)
    task_labels = check_bool("task_labels", task_labels)
    shuffle_classes = check_bool("shuffle_classes", shuffle_classes)
    x, y = _load_digits_bytes()
    train, test = _stratified_split(y, test_fraction, seed)
    order = np.random.default_rng(seed).permutation(10) if shuffle_classes else np.arange(10)
    tasks = _split_tasks(
        "split-digits",
        x[train],
        y[train],
        x[test],
        y[test],
        order,
        n_tasks,
        task_labels,
        divisor=16,
    )
    return TaskStream(tasks, name="split-digits", input_shape=(8, 8))


# ----------------------------------------------------------------------------- IDX (MNIST)
# type code of an IDX file (its third byte) -> the big-endian dtype of its data
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path, what: str) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip magic number."""
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise UnreadableFileError(
            f"{str(path)!r} is a damaged gzip file ({one_line(err)}); download {what} again."
        ) from None


def _parse_idx(raw: bytes, path: Path) -> tuple[int, np.ndarray]:
    """(magic number, array) of the IDX bytes ``raw`` read from ``path``."""
    head = raw[:4]
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_TYPES:
        shown = " ".join(f"{b:02x}" for b in head) or "nothing"
        raise UnreadableFileError(
            f"{str(path)!r} is not an IDX file: it starts with bytes {shown}, where an IDX file "
            "starts with 00 00, a type code (08-0e) and its number of dimensions; give the "
            "MNIST file as distributed."
        )
    magic, ndim = int.from_bytes(head, "big"), head[3]
    if ndim == 0:
        raise UnreadableFileError(
            f"{str(path)!r}: its IDX header declares 0 dimensions; not a data file of MNIST."
        )
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise UnreadableFileError(
            f"{str(path)!r} is truncated: {len(raw)} bytes, fewer than its {offset}-byte IDX "
            "header; download it again."
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[head[2]])
    n_values = math.prod(dims)
    expected, held = n_values * dtype.itemsize, len(raw) - offset
    if held != expected:
        problem = "is truncated" if held < expected else "has extra bytes"
        raise UnreadableFileError(
            f"{str(path)!r} {problem}: its header declares shape {dims} ({expected} bytes of "
            f"data) but {held} bytes follow it; download it again."
        )
    arr = np.frombuffer(raw, dtype, count=n_values, offset=offset).reshape(dims)
    return magic, arr.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (the format of MNIST, Fashion-MNIST, EMNIST), gzipped or not.

    Parameters
    ----------
    path : str or path-like
        E.g. ``train-images-idx3-ubyte`` or ``train-images-idx3-ubyte.gz``
        (gzip is recognised by its first bytes, whatever the name).

    Returns
    -------
    ndarray
        With the shape the header declares and its dtype in native byte order
        (``uint8`` for MNIST: images ``(n, 28, 28)``, labels ``(n,)``).

    Raises
    ------
    MissingFileError
        There is no such file.
    UnreadableFileError
        Empty, damaged gzip, not IDX (wrong magic number), or truncated.
    """
    p = check_file("path", path)
    return _parse_idx(_read_bytes(p, "it"), p)[1]


# the four files of MNIST: (what, stem, magic number, number of dimensions)
_MNIST_FILES = {
    ("train", "images"): ("train-images-idx3-ubyte", 0x00000803),
    ("train", "labels"): ("train-labels-idx1-ubyte", 0x00000801),
    ("test", "images"): ("t10k-images-idx3-ubyte", 0x00000803),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", 0x00000801),
}


def _find_mnist_file(folder: Path, stem: str) -> Path:
    # names as distributed, gzipped or not; some mirrors write "train-images.idx3-ubyte"
    dotted = stem.replace("-idx", ".idx")
    for where in (folder, folder / "MNIST" / "raw", folder / "raw"):
        for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
            if (where / name).is_file():
                return where / name
    raise MissingFileError(
        f"path: no {stem!r} (or {stem + '.gz'!r}) in {str(folder)!r}; put the four MNIST files "
        "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        "t10k-labels-idx1-ubyte.gz) in that folder."
    )


def _read_mnist(folder: Path) -> dict[tuple[str, str], np.ndarray]:
    arrays = {}
    for key, (stem, want) in _MNIST_FILES.items():
        p = check_file("path", _find_mnist_file(folder, stem))
        magic, arr = _parse_idx(_read_bytes(p, "it"), p)
        if magic != want:
            kind = "images (3 dimensions)" if key[1] == "images" else "labels (1 dimension)"
            raise UnreadableFileError(
                f"{str(p)!r} has IDX magic number 0x{magic:08x}, expected 0x{want:08x} for "
                f"MNIST {kind} of bytes; give the MNIST file of that name (were files swapped?)."
            )
        arrays[key] = arr
    for split in ("train", "test"):
        n_images, n_labels = len(arrays[split, "images"]), len(arrays[split, "labels"])
        if n_images != n_labels:
            raise UnreadableFileError(
                f"the MNIST {split} files disagree: {n_images} images but {n_labels} labels in "
                f"{str(folder)!r}; give the images and labels of the same set."
            )
    if arrays["train", "images"].shape[1:] != arrays["test", "images"].shape[1:]:
        raise UnreadableFileError(
            f"the MNIST images of {str(folder)!r} differ in size: train "
            f"{arrays['train', 'images'].shape[1:]}, test {arrays['test', 'images'].shape[1:]}."
        )
    return arrays


def permuted_mnist(
    path: str | os.PathLike, n_tasks: int = 10, seed: int = 0, permute_first: bool = True
) -> TaskStream:
    """Permuted MNIST from the four MNIST files as distributed (IDX format).

    The benchmark of HLOP's fully connected network (784-800-800-10): every
    task uses all 60000 training and 10000 test images, with the pixels
    reordered by the task's permutation and scaled to [0, 1] (the public code
    standardises them with MNIST's mean and std instead; rate encoders need
    [0, 1]). The tasks share one copy of the pixels, kept as bytes (see the
    module notes on memory). Fashion-MNIST files, in the same format and with
    the same names, work as well.

    Parameters
    ----------
    path : str or path-like
        The folder with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each gzipped
        (``.gz``) or not (torchvision's ``MNIST/raw`` below it is looked in too).
    n_tasks : int, default=10
        Number of tasks (1 to 1000).
    seed : int, default=0
        Task ``t``'s permutation depends only on ``seed`` and ``t``.
    permute_first : bool, default=True
        Permute task 0 too, as the public code of HLOP does.

    Returns
    -------
    TaskStream
        Tasks ``"permuted-mnist-<t>"``, ``input_shape`` ``(28, 28)``.

    Raises
    ------
    MissingFileError
        The folder or one of the four files is missing.
    UnreadableFileError
        A file is empty, damaged, not IDX, of the wrong kind (magic number) or
        truncated, or the images and labels disagree in number.
    """
    folder = check_file("path", path, folder=True)
    n_tasks, seed, _ = _check_common(n_tasks, 1000, seed)
    permute_first = check_bool("permute_first", permute_first)
    arrays = _read_mnist(folder)
    shape = arrays["train", "images"].shape[1:]
    x_tr = arrays["train", "images"].reshape(len(arrays["train", "images"]), -1)
    x_te = arrays["test", "images"].reshape(len(arrays["test", "images"]), -1)
    y_tr = arrays["train", "labels"].astype(np.int64)
    y_te = arrays["test", "labels"].astype(np.int64)
    classes = tuple(int(c) for c in np.union1d(y_tr, y_te))
    tasks = [
        Task._view(
            f"permuted-mnist-{t}", x_tr, y_tr, x_te, y_te, classes, permutation=perm, divisor=255
        )
        for t, perm in enumerate(_permutations(n_tasks, x_tr.shape[1], seed, permute_first))
    ]
    return TaskStream(tasks, name="permuted-mnist", input_shape=shape)


# ----------------------------------------------------------------------------- CIFAR-100
_CIFAR_RECORD = 2 + 3 * 32 * 32  # coarse label, fine label, 1024 red, 1024 green, 1024 blue
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
_PICKLED = (
    "the Python (pickled) version of CIFAR-100, which neuro never reads (unpickling a file "
    f"can run code); download the binary version (cifar-100-binary.tar.gz, {_CIFAR_URL}), "
    "extract it and give its folder"
)


def _looks_pickled(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def read_cifar100_binary(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read one file of CIFAR-100's binary version (``train.bin`` or ``test.bin``).

    Each record is 3074 bytes: the coarse label (0-19), the fine label (0-99)
    and 3072 pixel bytes (the 32 x 32 red channel row by row, then green,
    then blue).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    images : ndarray of uint8, shape (n, 3, 32, 32)
    coarse : ndarray of int64, shape (n,)
    fine : ndarray of int64, shape (n,)

    Raises
    ------
    MissingFileError
        There is no such file.
    UnreadableFileError
        Empty; pickled (the Python version, refused); not a whole number of
        records (truncated, or CIFAR-10's 3073-byte records); labels out of range.
    """
    p = check_file("path", path)
    if _looks_pickled(p):
        raise UnreadableFileError(f"{str(p)!r} is {_PICKLED}.")
    size = p.stat().st_size
    if size % _CIFAR_RECORD:
        hint = (
            " (it divides into CIFAR-10's 3073-byte records: give CIFAR-100)"
            if size % (_CIFAR_RECORD - 1) == 0
            else ""
        )
        raise UnreadableFileError(
            f"{str(p)!r} is truncated or not CIFAR-100 binary: {size} bytes is not a whole "
            f"number of {_CIFAR_RECORD}-byte records{hint}; download cifar-100-binary.tar.gz "
            "again."
        )
    records = np.fromfile(p, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    coarse, fine = records[:, 0].astype(np.int64), records[:, 1].astype(np.int64)
    for what, labels, top in (("coarse", coarse, 20), ("fine", fine, 100)):
        bad = np.flatnonzero(labels >= top)
        if len(bad):
            raise UnreadableFileError(
                f"{str(p)!r} is not CIFAR-100 binary: record {int(bad[0])} has {what} label "
                f"{int(labels[bad[0]])}, outside 0-{top - 1}."
            )
    images = np.ascontiguousarray(records[:, 2:]).reshape(-1, 3, 32, 32)
    return images, coarse, fine


def _cifar_folder(path: Path) -> Path:
    """The folder holding ``train.bin`` and ``test.bin``; refuses the pickled version."""
    if path.is_file():
        name = path.name.lower()
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            raise InputError(
                f"path {str(path)!r} is an archive; extract it first (tar xzf {path.name}) and "
                "give the folder cifar-100-binary it holds."
            )
        if _looks_pickled(path):
            raise UnreadableFileError(f"{str(path)!r} is {_PICKLED}.")
        raise InputError(
            f"path must be the folder cifar-100-binary (with train.bin and test.bin); "
            f"{str(path)!r} is a file."
        )
    for where in (path, path / "cifar-100-binary"):
        if (where / "train.bin").is_file() or (where / "test.bin").is_file():
            return where
    for where in (path, path / "cifar-100-python"):
        if (where / "train").is_file() and (where / "meta").is_file():
            raise UnreadableFileError(f"{str(where)!r} holds {_PICKLED}.")
    raise MissingFileError(
        f"path: no train.bin or test.bin in {str(path)!r} or its cifar-100-binary folder; "
        f"download the binary version of CIFAR-100 (cifar-100-binary.tar.gz, {_CIFAR_URL}) and "
        "extract it there."
    )


def split_cifar100(
    path: str | os.PathLike, n_tasks: int = 10, task_labels: bool = True
) -> TaskStream:
    """Split CIFAR-100: the 100 fine classes in ``n_tasks`` groups, one group per task.

    As in the public code of HLOP: task ``t`` holds fine classes
    ``10 t .. 10 t + 9`` (for 10 tasks), renumbered 0-9 (one output head per
    task), with every training and test image of those classes. Pixels are
    scaled to [0, 1] (the public code standardises them per channel).

    Parameters
    ----------
    path : str or path-like
        The folder ``cifar-100-binary`` (with ``train.bin`` and ``test.bin``) or
        the folder it sits in.
    n_tasks : int, default=10
        Number of tasks (1 to 100); the classes are split in order into groups
        of (nearly) equal size.
    task_labels : bool, default=True
        Renumber each task's classes ``0 .. k-1`` (the fine label kept in
        ``task.source_classes``); False keeps the fine label (one shared head).

    Returns
    -------
    TaskStream
        Tasks ``"cifar100-<t>"`` with 3072 features, ``input_shape`` ``(3, 32, 32)``.

    Raises
    ------
    MissingFileError
        No ``train.bin`` / ``test.bin`` there.
    UnreadableFileError
        The Python (pickled) version was given, or a file is truncated or foreign.
    """
    is_file = isinstance(path, (str, os.PathLike)) and Path(path).expanduser().is_file()
    folder = _cifar_folder(check_file("path", path, folder=not is_file))
    n_tasks = check_int("n_tasks", n_tasks, minimum=1, maximum=100)
    task_labels = check_bool("task_labels", task_labels)
    x_tr, _, y_tr = read_cifar100_binary(folder / "train.bin")
    x_te, _, y_te = read_cifar100_binary(folder / "test.bin")
    tasks = _split_tasks(
        "cifar100",
        x_tr.reshape(len(x_tr), -1),
        y_tr,
        x_te.reshape(len(x_te), -1),
        y_te,
        np.arange(100),
        n_tasks,
        task_labels,
        divisor=255,
    )
    return TaskStream(tasks, name="split-cifar100", input_shape=(3, 32, 32))
