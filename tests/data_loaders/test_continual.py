"""Task streams: permuted and split digits, and the MNIST (IDX) and CIFAR-100 (binary) readers.

The reader tests write miniature files in the real formats, byte by byte from
the format's description (not with the reader's own code), and read them back
exactly; damaged and foreign files must fail with one line naming the file.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from data_loaders.continual import (
    Task,
    TaskStream,
    permuted_digits,
    permuted_mnist,
    read_cifar100_binary,
    read_idx,
    split_cifar100,
    split_digits,
)
from data_loaders.errors import (
    InputError,
    InputIndexError,
    InputTypeError,
    MissingFileError,
    UnreadableFileError,
)


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    return text


# ---- Task and TaskStream -----------------------------------------------------------------
def _task(name, n_features=3, labels=(0, 1), rng=None):
    rng = rng or np.random.default_rng(0)
    y_train = np.array([labels[k % len(labels)] for k in range(7)])
    y_test = np.array([labels[k % len(labels)] for k in range(5)])
    return Task(
        name,
        rng.random((7, n_features)),
        y_train,
        rng.random((5, n_features)),
        y_test,
    )


def test_task_holds_float32_inputs_and_int64_labels(rng):
    X = torch.tensor(rng.random((7, 9)), dtype=torch.float64)
    task = Task("t", X, [0, 2, 2, 0, 2, 0, 0], rng.random((5, 9)), np.array([2.0, 0, 0, 2, 2]))
    assert task.X_train.dtype == np.float32 and task.y_train.dtype == np.int64
    np.testing.assert_array_equal(task.X_train, X.numpy().astype(np.float32))
    assert task.classes == (0, 2) and task.source_classes == (0, 2)
    assert (task.n_features, task.n_train, task.n_test, task.n_classes) == (9, 7, 5, 2)
    assert task.permutation is None


def test_task_classes_may_list_labels_absent_from_the_data(rng):
    task = Task(
        "t", rng.random((4, 3)), [0, 1, 0, 1], rng.random((2, 3)), [1, 0], classes=[0, 1, 2]
    )
    assert task.classes == (0, 1, 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"y_train": [0, 1, 0, 1.5]}, InputError, "whole numbers"),
        ({"y_train": [0, 1, 0, -1]}, InputError, "labels >= 0"),
        ({"y_train": [0, 1, 0]}, InputError, "same number of samples"),
        ({"X_test": np.zeros((2, 4))}, InputError, "X_train has 3 features but X_test has 4"),
        ({"classes": [0]}, InputError, "class 1, which is not in classes"),
        ({"classes": [0, 1, 1]}, InputError, "more than once"),
        ({"source_classes": [5]}, InputError, "one source class per class"),
        ({"X_train": np.zeros(4)}, InputError, "must be 2D"),
        ({"name": ""}, InputTypeError, "non-empty string"),
    ],
)
def test_bad_tasks_are_refused_in_one_line(kwargs, error, match):
    args = {
        "name": "t",
        "X_train": np.zeros((4, 3)),
        "y_train": [0, 1, 0, 1],
        "X_test": np.zeros((2, 3)),
        "y_test": [1, 0],
    }
    args.update(kwargs)
    with pytest.raises(error, match=match) as err:
        Task(**args)
    _one_line(err)


def test_stream_sizes_indexing_and_slicing():
    stream = TaskStream(
        [_task("a"), _task("b", labels=(2, 3)), _task("c", labels=(4,))], name="toy"
    )
    assert len(stream) == 3 and stream.n_features == 3 and stream.n_classes == 5
    assert stream.names == ["a", "b", "c"] and stream[-1].name == "c"
    assert [task.name for task in stream] == ["a", "b", "c"]
    head = stream[:2]
    assert isinstance(head, TaskStream) and head.names == ["a", "b"] and head.n_classes == 4
    with pytest.raises(InputIndexError, match="task index 3 is out of range"):
        stream[3]
    with pytest.raises(InputTypeError, match="integer or a slice"):
        stream["a"]


def test_stream_with_a_task_of_another_input_size_names_that_task():
    tasks = [_task("perm-0", 8), _task("perm-1", 8), _task("perm-2", 9)]
    with pytest.raises(InputError) as err:
        TaskStream(tasks)
    text = _one_line(err)
    assert "task 2 ('perm-2') has 9 features but task 0 ('perm-0') has 8" in text
    assert "same input size" in text


@pytest.mark.parametrize(
    ("tasks", "kwargs", "error", "match"),
    [
        ([], {}, InputError, "tasks is empty"),
        ([_task("a"), {"X": 1}], {}, InputTypeError, r"tasks\[1\] is a dict, not a Task"),
        ([_task("a"), _task("a")], {}, InputError, "both named 'a'"),
        ([_task("a", 6)], {"input_shape": (4, 2)}, InputError, "holds 8 values"),
        ("abc", {}, InputTypeError, "sequence of Task"),
    ],
)
def test_bad_streams_are_refused_in_one_line(tasks, kwargs, error, match):
    with pytest.raises(error, match=match) as err:
        TaskStream(tasks, **kwargs)
    _one_line(err)


# ---- permuted digits ---------------------------------------------------------------------
DIGITS = load_digits()


def test_permuted_digits_pixels_labels_and_split():
    stream = permuted_digits(n_tasks=4, seed=3, test_fraction=0.25, permute_first=False)
    assert len(stream) == 4 and stream.input_shape == (8, 8) and stream.n_classes == 10
    first = stream[0]
    assert first.permutation is None
    assert first.n_train + first.n_test == len(DIGITS.target)
    assert first.n_test == int(np.ceil(0.25 * len(DIGITS.target)))
    X = first.X_train
    assert X.dtype == np.float32 and X.min() == 0.0 and X.max() == 1.0
    # every training image is one of the digits, scaled by 1/16
    scaled = (DIGITS.data / 16).astype(np.float32)
    known = {row.tobytes() for row in scaled}
    assert all(row.tobytes() in known for row in X)
    # stratified: each class keeps its share of the test set, to within one image
    counts = np.bincount(first.y_test, minlength=10)
    expected = 0.25 * np.bincount(DIGITS.target)
    assert np.all(np.abs(counts - expected) <= 1)
    for t in range(1, 4):
        task = stream[t]
        perm = task.permutation
        assert sorted(perm.tolist()) == list(range(64)) and not np.array_equal(perm, np.arange(64))
        np.testing.assert_array_equal(task.X_train, X[:, perm])
        np.testing.assert_array_equal(task.X_test, first.X_test[:, perm])
        np.testing.assert_array_equal(task.y_train, first.y_train)
    assert not np.array_equal(stream[1].permutation, stream[2].permutation)


def test_permuted_digits_permutes_task_0_by_default_as_the_reference():
    stream = permuted_digits(n_tasks=2)
    assert stream[0].permutation is not None
    assert not np.array_equal(stream[0].permutation, np.arange(64))


def test_permuted_digits_task_t_depends_only_on_seed_and_t():
    short, long = permuted_digits(n_tasks=3, seed=1), permuted_digits(n_tasks=6, seed=1)
    for a, b in zip(short, long[:3], strict=True):
        np.testing.assert_array_equal(a.permutation, b.permutation)
        np.testing.assert_array_equal(a.X_test, b.X_test)
    other = permuted_digits(n_tasks=3, seed=2)
    assert not np.array_equal(short[1].permutation, other[1].permutation)
    assert not np.array_equal(short[0].y_test, other[0].y_test)  # the split follows the seed


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_tasks": 0}, "n_tasks must be an integer >= 1"),
        ({"test_fraction": 1.0}, "test_fraction must be < 1.0"),
        ({"test_fraction": 0.001}, "fewer than the 10 classes"),
        ({"seed": -1}, "seed must be an integer >= 0"),
    ],
)
def test_permuted_digits_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match) as err:
        permuted_digits(**kwargs)
    _one_line(err)


# ---- split digits ------------------------------------------------------------------------
def test_split_digits_global_labels():
    stream = split_digits(n_tasks=5)
    assert [task.classes for task in stream] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert stream.n_classes == 10
    assert sum(task.n_train + task.n_test for task in stream) == len(DIGITS.target)
    for task in stream:
        assert set(np.unique(task.y_train)) == set(task.classes)
        assert set(np.unique(task.y_test)) == set(task.classes)


def test_split_digits_task_labels_renumber_each_task():
    glob = split_digits(n_tasks=3, seed=4)
    local = split_digits(n_tasks=3, seed=4, task_labels=True)
    assert local.n_classes == 4  # groups of 4, 3 and 3 classes: heads of 4 units at most
    for g, t in zip(glob, local, strict=True):
        assert t.classes == tuple(range(len(g.classes))) and t.source_classes == g.classes
        np.testing.assert_array_equal(np.asarray(t.source_classes)[t.y_train], g.y_train)
        np.testing.assert_array_equal(t.X_test, g.X_test)


def test_split_digits_shuffled_classes_cover_each_class_once():
    stream = split_digits(n_tasks=5, seed=7, shuffle_classes=True)
    classes = [c for task in stream for c in task.classes]
    assert sorted(classes) == list(range(10)) and classes != list(range(10))


def test_split_digits_more_tasks_than_classes():
    with pytest.raises(InputError, match="n_tasks must be an integer <= 10"):
        split_digits(n_tasks=11)


# ---- IDX files (MNIST) -------------------------------------------------------------------
def _idx_bytes(arr: np.ndarray, type_code: int, dtype: str) -> bytes:
    """An IDX file: 00 00, the type code, the number of dims, dims (big-endian), the data."""
    header = bytes([0, 0, type_code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(dtype).tobytes()


MNIST_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _write_mnist(folder: Path, rng, gz: bool, shape=(5, 4)) -> dict[str, np.ndarray]:
    """Miniature MNIST: 7 training and 3 test images of ``shape``, as distributed."""
    arrays = {
        "train_images": rng.integers(0, 256, (7, *shape)).astype(np.uint8),
        "train_labels": np.array([0, 1, 2, 3, 4, 5, 9], dtype=np.uint8),
        "test_images": rng.integers(0, 256, (3, *shape)).astype(np.uint8),
        "test_labels": np.array([9, 0, 4], dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, arr in arrays.items():
        data = _idx_bytes(arr, 0x08, ">u1")
        name = MNIST_STEMS[key] + (".gz" if gz else "")
        (folder / name).write_bytes(gzip.compress(data) if gz else data)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_reads_mnist_files_exactly(tmp_path, rng, gz):
    arrays = _write_mnist(tmp_path, rng, gz)
    suffix = ".gz" if gz else ""
    images = read_idx(tmp_path / (MNIST_STEMS["train_images"] + suffix))
    labels = read_idx(tmp_path / (MNIST_STEMS["train_labels"] + suffix))
    assert images.dtype == np.uint8 and images.shape == (7, 5, 4)
    np.testing.assert_array_equal(images, arrays["train_images"])
    np.testing.assert_array_equal(labels, arrays["train_labels"])


@pytest.mark.parametrize(
    ("code", "dtype"), [(0x09, ">i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")]
)
def test_read_idx_every_type_code(tmp_path, rng, code, dtype):
    arr = (rng.standard_normal((3, 2, 4)) * 100).astype(dtype)
    path = tmp_path / "data.idx"
    path.write_bytes(_idx_bytes(arr, code, dtype))
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype).newbyteorder("=") and out.shape == (3, 2, 4)
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("gz", [False, True])
def test_permuted_mnist_reads_the_files_back_exactly(tmp_path, rng, gz):
    arrays = _write_mnist(tmp_path, rng, gz)
    stream = permuted_mnist(tmp_path, n_tasks=3, seed=5, permute_first=False)
    assert len(stream) == 3 and stream.input_shape == (5, 4) and stream.n_features == 20
    assert stream.n_classes == 10 and stream[0].classes == (0, 1, 2, 3, 4, 5, 9)
    first = stream[0]
    expected = arrays["train_images"].reshape(7, 20).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(first.X_train, expected)
    np.testing.assert_array_equal(first.y_train, arrays["train_labels"])
    np.testing.assert_array_equal(first.y_test, arrays["test_labels"])
    for task in stream[1:]:
        np.testing.assert_array_equal(task.X_train, expected[:, task.permutation])
    # the same seed gives the same permutations
    same = permuted_mnist(tmp_path, n_tasks=3, seed=5, permute_first=False)
    np.testing.assert_array_equal(same[2].permutation, stream[2].permutation)


def test_permuted_mnist_finds_torchvision_raw_folder(tmp_path, rng):
    _write_mnist(tmp_path / "MNIST" / "raw", rng, gz=True)
    assert permuted_mnist(tmp_path, n_tasks=1)[0].n_train == 7


def _damage(folder: Path, key: str, data: bytes) -> None:
    (folder / MNIST_STEMS[key]).write_bytes(data)


@pytest.mark.parametrize(
    ("damage", "error", "match"),
    [
        ("missing", MissingFileError, "no 't10k-labels-idx1-ubyte'"),
        ("empty", UnreadableFileError, "is empty"),
        ("swapped", UnreadableFileError, "magic number 0x00000801, expected 0x00000803"),
        ("truncated", UnreadableFileError, r"is truncated: its header declares shape \(7, 5, 4\)"),
        ("extra", UnreadableFileError, "has extra bytes"),
        ("short_header", UnreadableFileError, "fewer than its 16-byte IDX header"),
        ("foreign", UnreadableFileError, "not an IDX file: it starts with bytes 89 50 4e 47"),
        ("bad_gzip", UnreadableFileError, "damaged gzip file"),
        ("count", UnreadableFileError, "7 images but 6 labels"),
    ],
)
def test_permuted_mnist_bad_files_fail_in_one_line(tmp_path, rng, damage, error, match):
    arrays = _write_mnist(tmp_path, rng, gz=False)
    images = _idx_bytes(arrays["train_images"], 0x08, ">u1")
    if damage == "missing":
        (tmp_path / MNIST_STEMS["test_labels"]).unlink()
    elif damage == "empty":
        _damage(tmp_path, "train_images", b"")
    elif damage == "swapped":
        _damage(tmp_path, "train_images", _idx_bytes(arrays["train_labels"], 0x08, ">u1"))
    elif damage == "truncated":
        _damage(tmp_path, "train_images", images[:-5])
    elif damage == "extra":
        _damage(tmp_path, "train_images", images + b"\x00\x00")
    elif damage == "short_header":
        _damage(tmp_path, "train_images", images[:10])
    elif damage == "foreign":
        _damage(tmp_path, "train_images", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    elif damage == "bad_gzip":
        (tmp_path / MNIST_STEMS["train_images"]).unlink()
        gz = gzip.compress(images)
        (tmp_path / (MNIST_STEMS["train_images"] + ".gz")).write_bytes(gz[: len(gz) // 2])
    elif damage == "count":
        _damage(tmp_path, "train_labels", _idx_bytes(arrays["train_labels"][:6], 0x08, ">u1"))
    with pytest.raises(error, match=match) as err:
        permuted_mnist(tmp_path, n_tasks=2)
    _one_line(err)


def test_permuted_mnist_missing_folder(tmp_path):
    with pytest.raises(MissingFileError, match="no such folder"):
        permuted_mnist(tmp_path / "nowhere")


# ---- CIFAR-100 (binary version) ----------------------------------------------------------
def _cifar_records(coarse, fine, pixels) -> bytes:
    """Records of 1 coarse-label byte, 1 fine-label byte, 3072 pixel bytes (R, G, B planes)."""
    rows = np.concatenate(
        [np.asarray(coarse, np.uint8)[:, None], np.asarray(fine, np.uint8)[:, None], pixels],
        axis=1,
    )
    return rows.astype(np.uint8).tobytes()


def _write_cifar(folder: Path, rng) -> dict[str, tuple]:
    """Miniature CIFAR-100 binary: 120 training records (every class), 30 test records."""
    folder.mkdir(parents=True, exist_ok=True)
    fine_train = np.concatenate([rng.permutation(100), rng.integers(0, 100, 20)])
    fine_test = np.concatenate([np.arange(3, 100, 10), rng.integers(0, 100, 20)])
    out = {}
    for split, fine in (("train", fine_train), ("test", fine_test)):
        coarse = fine // 5
        pixels = rng.integers(0, 256, (len(fine), 3072)).astype(np.uint8)
        (folder / f"{split}.bin").write_bytes(_cifar_records(coarse, fine, pixels))
        out[split] = (coarse, fine, pixels)
    return out


def test_read_cifar100_binary_exactly(tmp_path, rng):
    coarse, fine = np.array([19, 0, 7]), np.array([99, 0, 42])
    pixels = rng.integers(0, 256, (3, 3072)).astype(np.uint8)
    pixels[1, 1024] = 77  # record 1: first green pixel
    pixels[2, 3071] = 201  # record 2: last blue pixel
    path = tmp_path / "test.bin"
    path.write_bytes(_cifar_records(coarse, fine, pixels))
    images, c, f = read_cifar100_binary(path)
    assert images.shape == (3, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(c, coarse)
    np.testing.assert_array_equal(f, fine)
    np.testing.assert_array_equal(images.reshape(3, -1), pixels)
    assert images[1, 1, 0, 0] == 77 and images[2, 2, 31, 31] == 201


@pytest.mark.parametrize("where", ["cifar-100-binary", "parent"])
def test_split_cifar100_task_labels(tmp_path, rng, where):
    files = _write_cifar(tmp_path / "cifar-100-binary", rng)
    path = tmp_path / "cifar-100-binary" if where == "cifar-100-binary" else tmp_path
    stream = split_cifar100(path)
    assert len(stream) == 10 and stream.input_shape == (3, 32, 32) and stream.n_classes == 10
    _, fine, pixels = files["train"]
    for t, task in enumerate(stream):
        assert task.name == f"cifar100-{t}" and task.classes == tuple(range(10))
        assert task.source_classes == tuple(range(10 * t, 10 * t + 10))
        rows = (fine >= 10 * t) & (fine < 10 * t + 10)  # in file order
        np.testing.assert_array_equal(task.y_train, fine[rows] - 10 * t)
        expected = pixels[rows].astype(np.float32) / np.float32(255)
        np.testing.assert_array_equal(task.X_train, expected)
    _, fine_te, _ = files["test"]
    assert sum(task.n_test for task in stream) == len(fine_te)


def test_split_cifar100_global_labels_and_other_task_counts(tmp_path, rng):
    files = _write_cifar(tmp_path, rng)
    stream = split_cifar100(tmp_path, n_tasks=5, task_labels=False)
    assert len(stream) == 5 and stream.n_classes == 100
    assert stream[4].classes == tuple(range(80, 100))
    _, fine_te, _ = files["test"]
    np.testing.assert_array_equal(stream[1].y_test, fine_te[(fine_te >= 20) & (fine_te < 40)])


def _pickled_cifar(folder: Path) -> None:
    folder.mkdir(parents=True)
    for name in ("train", "test", "meta"):  # what cifar-100-python.tar.gz holds
        (folder / name).write_bytes(pickle.dumps({"data": [1, 2, 3]}, protocol=2))


@pytest.mark.parametrize("given", ["parent", "folder", "file", "renamed"])
def test_split_cifar100_refuses_the_pickled_version(tmp_path, given):
    _pickled_cifar(tmp_path / "cifar-100-python")
    path = {
        "parent": tmp_path,
        "folder": tmp_path / "cifar-100-python",
        "file": tmp_path / "cifar-100-python" / "train",
    }.get(given)
    if given == "renamed":  # a pickled file renamed train.bin
        binary = tmp_path / "cifar-100-binary"
        binary.mkdir()
        (binary / "train.bin").write_bytes((tmp_path / "cifar-100-python" / "train").read_bytes())
        path = binary
    with pytest.raises(UnreadableFileError, match="pickled") as err:
        split_cifar100(path)
    text = _one_line(err)
    assert "download the binary version" in text and "never reads" in text


@pytest.mark.parametrize(
    ("damage", "error", "match"),
    [
        ("truncated", UnreadableFileError, "not a whole number of 3074-byte records"),
        ("cifar10", UnreadableFileError, "CIFAR-10's 3073-byte records"),
        ("fine_label", UnreadableFileError, "record 2 has fine label 150, outside 0-99"),
        ("coarse_label", UnreadableFileError, "record 0 has coarse label 20, outside 0-19"),
        ("missing", MissingFileError, "no train.bin or test.bin"),
        ("archive", InputError, "is an archive; extract it first"),
        ("empty", UnreadableFileError, "is empty"),
    ],
)
def test_split_cifar100_bad_files_fail_in_one_line(tmp_path, rng, damage, error, match):
    folder = tmp_path / "cifar-100-binary"
    _write_cifar(folder, rng)
    path = folder
    train = folder / "train.bin"
    if damage == "truncated":
        train.write_bytes(train.read_bytes()[:-100])
    elif damage == "cifar10":
        train.write_bytes(bytes(3073 * 4))  # 4 records of CIFAR-10: 1 label byte + 3072 pixels
    elif damage == "fine_label":
        data = bytearray(train.read_bytes())
        data[2 * 3074 + 1] = 150
        train.write_bytes(bytes(data))
    elif damage == "coarse_label":
        data = bytearray(train.read_bytes())
        data[0] = 20
        train.write_bytes(bytes(data))
    elif damage == "missing":
        path = tmp_path / "elsewhere"
        path.mkdir()
    elif damage == "archive":
        path = tmp_path / "cifar-100-binary.tar.gz"
        path.write_bytes(gzip.compress(b"not really a tar"))
    elif damage == "empty":
        train.write_bytes(b"")
    with pytest.raises(error, match=match) as err:
        split_cifar100(path)
    _one_line(err)


def test_split_cifar100_class_group_without_samples(tmp_path, rng):
    folder = tmp_path / "cifar-100-binary"
    _write_cifar(folder, rng)
    pixels = rng.integers(0, 256, (2, 3072)).astype(np.uint8)
    (folder / "test.bin").write_bytes(_cifar_records([0, 0], [1, 2], pixels))
    with pytest.raises(InputError, match=r"task 1 \(classes \[10, .*\) has no test sample"):
        split_cifar100(folder)
