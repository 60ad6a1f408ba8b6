"""``neuro snn``: fits each method on one stream, writes the comparison and models, refuses bad flags."""

import json
import pickle
import re

import numpy as np
import pandas as pd
import pytest

from data_loaders.continual import permuted_digits, permuted_mnist
from neuro.cli import main
from neuro.snn.continual import ContinualSNN

FAST = ["--tasks", "2", "--hidden", "32", "--epochs", "1", "--lateral", "8", "8"]
FAST += ["--added", "4", "4", "--device", "cpu", "-q"]
METHODS = ["finetune", "ewc", "gpm", "hlop"]


def _idx(arr: np.ndarray) -> bytes:
    """``arr`` (uint8) as an IDX file: 00 00, type 08 (unsigned byte), ndim, dims, data."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    head = bytes([0, 0, 0x08, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return head + arr.tobytes()


def _write_small_mnist(folder, n_train=80, n_test=30, side=6):
    """Four IDX files named as MNIST's, ``side x side`` images whose bright pixel is the label."""
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, size=(n, side, side))
        images.reshape(n, -1)[np.arange(n), labels] = 255  # pixel `label` lights up
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(images))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(labels))
    return folder


def _check_written(out, methods, n_tasks):
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["methods"]) == methods
    npz = np.load(out / "accuracy_matrices.npz", allow_pickle=False)
    assert list(npz["task_names"]) == metrics["task_names"]
    csv = pd.read_csv(out / "results.csv")
    assert list(csv["method"]) == methods
    for method in methods:
        entry = metrics["methods"][method]
        R = np.asarray(entry["accuracy_matrix"], dtype=float)
        assert R.shape == (n_tasks, n_tasks) and np.isfinite(R).all()
        np.testing.assert_allclose(npz[method], R)
        # ACC and BWT as the paper defines them, from the matrix written beside them
        assert entry["acc"] == pytest.approx(R[-1].mean())
        assert entry["bwt"] == pytest.approx(np.mean(R[-1, :-1] - np.diag(R)[:-1]))
        row = csv[csv["method"] == method].iloc[0]
        assert row["acc"] == pytest.approx(entry["acc"]) and row["fit_seconds"] > 0
        model = ContinualSNN.load(out / "models" / f"{method}.pt")
        assert model.method == method
        np.testing.assert_allclose(model.accuracy_matrix_, R)
    assert (out / "figures" / "accuracy_matrices.png").stat().st_size > 2000
    return metrics


def test_permuted_digits_run_writes_everything(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["snn", *FAST, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    metrics = _check_written(out, METHODS, 2)
    assert metrics["stream"]["name"] == "permuted-digits" and metrics["stream"]["n_features"] == 64
    assert [t["n_test"] for t in metrics["stream"]["tasks"]] == [450, 450]
    settings = metrics["settings"]
    assert settings["hidden"] == [32] and settings["lateral"] == [8, 8] and settings["T"] == 20
    assert settings["hebbian_lr"] == [0.05, 0.05] and settings["ewc_lambda"] == 100.0
    summary = (out / "summary.txt").read_text()
    for method in METHODS:
        assert re.search(rf"^{method}\s+-?\d+\.\d\d\s+-?\d+\.\d\d", summary, re.M), method
    assert summary.strip() in printed
    # the saved network is the final one: on the stream it scores the ACC it was written with
    stream = permuted_digits(n_tasks=2, seed=0)
    hlop = ContinualSNN.load(out / "models" / "hlop.pt")
    assert hlop.score(stream) == pytest.approx(metrics["methods"]["hlop"]["acc"], abs=1e-6)
    assert hlop.lateral == [8, 8] and hlop.hebbian_iterations == 50


def test_permuted_mnist_from_idx_files(tmp_path):
    data = _write_small_mnist(tmp_path / "mnist")
    out = tmp_path / "pmnist"
    argv = ["snn", *FAST, "--stream", "pmnist", "--data", str(data), "--out", str(out)]
    assert main([*argv, "--methods", "gpm", "hlop", "--batch-size", "16", "--no-figures"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    stream = metrics["stream"]
    assert stream["name"] == "pmnist" and stream["source"] == str(data)
    assert stream["n_features"] == 36 and stream["input_shape"] == [6, 6]
    assert [t["n_train"] for t in stream["tasks"]] == [80, 80]
    assert metrics["task_names"] == ["permuted-mnist-0", "permuted-mnist-1"]
    assert list(metrics["methods"]) == ["gpm", "hlop"] and not (out / "figures").exists()
    model = ContinualSNN.load(out / "models" / "hlop.pt")
    assert model.sizes_ == (36, 32, 10)
    reread = permuted_mnist(data, n_tasks=2, seed=0)
    assert model.score(reread) == pytest.approx(metrics["methods"]["hlop"]["acc"], abs=1e-6)


def test_split_cifar100_from_binary_files(tmp_path):
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for name, n in (("train.bin", 200), ("test.bin", 100)):
        fine = np.arange(n) % 100
        records = rng.integers(0, 256, size=(n, 3074)).astype(np.uint8)
        records[:, 0], records[:, 1] = fine // 5, fine  # coarse label, fine label
        (folder / name).write_bytes(records.tobytes())
    out = tmp_path / "cifar"
    argv = ["snn", *FAST, "--stream", "split-cifar100", "--data", str(tmp_path), "--out", str(out)]
    assert main([*argv, "--methods", "finetune", "--no-figures"]) == 0
    stream = json.loads((out / "metrics.json").read_text())["stream"]
    assert stream["n_features"] == 3072 and stream["input_shape"] == [3, 32, 32]
    assert [t["n_test"] for t in stream["tasks"]] == [50, 50]
    assert ContinualSNN.load(out / "models" / "finetune.pt").sizes_ == (3072, 32, 50)


def test_an_existing_output_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    argv = ["snn", *FAST, "--methods", "finetune", "--no-figures", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neuro snn: error: ") and "--overwrite" in err
    assert len(err.splitlines()) == 1 and sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "models" / "finetune.pt").is_file() and (out / "keep.txt").read_text() == "x"
    written = (out / "models" / "finetune.pt").read_bytes()
    assert main([*argv, "--seed", "1"]) == 2  # a finished run is not written over either
    assert (out / "models" / "finetune.pt").read_bytes() == written


def _foreign_idx(tmp_path):
    folder = _write_small_mnist(tmp_path / "foreign")
    (folder / "train-images-idx3-ubyte").write_bytes(b"GIF89a" + bytes(100))
    return ["--stream", "pmnist", "--data", str(folder)]


def _pickled_cifar(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name in ("train", "test", "meta"):
        (folder / name).write_bytes(pickle.dumps({"data": [1, 2, 3]}, protocol=2))
    return ["--stream", "split-cifar100", "--data", str(folder)]


def _a_file(tmp_path):
    path = tmp_path / "digits.png"
    path.write_bytes(b"\x89PNG" + bytes(20))
    return ["--stream", "pmnist", "--data", str(path)]


def _missing_folder(tmp_path):
    return ["--stream", "pmnist", "--data", str(tmp_path / "nowhere")]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--stream", "pmnist"], "--stream pmnist reads its data from files: give --data"),
        (["--stream", "split-cifar100"], "give --data, the folder cifar-100-binary"),
        (_missing_folder, "--data: no such folder"),
        (_a_file, "--data must be a folder; "),
        (_foreign_idx, "is not an IDX file: it starts with bytes 47 49 46 38"),
        (_pickled_cifar, "the Python (pickled) version of CIFAR-100, which neuro never reads"),
        (["--data", "."], "--data is read only by --stream pmnist or split-cifar100"),
        (["--methods", "hlop", "sgd"], "--methods: unknown method 'sgd'; choose among hlop, "),
        (["--methods", "gpm", "hlop", "gpm"], "--methods names gpm more than once"),
        (["--lateral", "70", "8"], "--lateral: layer 0 reads 64 inputs but is given 70 lateral"),
        (["--lateral", "8", "40"], "--lateral: layer 1 reads 32 inputs but is given 40 lateral"),
        (["--added", "4", "30"], "--added: layer 1 (32 inputs) would hold 38 lateral neurons at "),
        (
            ["--tasks", "5", "--added", "20", "--added-shrink", "5"],
            "--added: layer 1 (32 inputs) would hold 48 lateral neurons at task 2 of 5",
        ),
        (["--added-every", "0"], "--added-every must be an integer >= 1; got 0."),
        (["--lateral", "8", "8", "8"], "--lateral gives 3 values for 2 linear layers"),
        (["--hebbian-lr", "0.1", "0"], "--hebbian-lr must be > 0.0; got 0.0."),
        (["--stream", "split-digits", "--tasks", "11"], "--tasks must be an integer <= 10"),
        (["--hidden", "32", "0"], "--hidden must be an integer >= 1; got 0."),
        (["--epochs", "0"], "--epochs must be an integer >= 1; got 0."),
        (["--gpm-threshold", "1.5"], "--gpm-threshold must be <= 1.0; got 1.5."),
        (["--momentum", "-0.1"], "--momentum must be >= 0.0; got -0.1."),
        (["--device", "tpu"], "--device must be 'auto', 'cpu', 'cuda'"),
    ],
)
def test_bad_flags_are_one_line_errors(flags, message, tmp_path, capsys):
    if callable(flags):
        flags = flags(tmp_path)
    out = tmp_path / "bad"
    assert main(["snn", *FAST, *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neuro snn: error: ") and message in err, err
    assert len(err.splitlines()) == 1
    assert not out.exists()  # refused before any training, and no empty folder left


def test_lateral_is_not_checked_without_hlop(tmp_path):
    out = tmp_path / "no-hlop"
    flags = ["--methods", "finetune", "--lateral", "500", "--no-figures", "--out", str(out)]
    assert main(["snn", *FAST, *flags]) == 0
    assert json.loads((out / "metrics.json").read_text())["settings"]["lateral"] == [500, 500]


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["snn", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith("usage: neuro snn")
    for flag in ("--stream", "--data", "--methods", "--lateral", "--added", "--ewc-lambda"):
        assert flag in text, flag
    assert "{permuted-digits,split-digits,pmnist,split-cifar100}" in text
    assert "epochs per task (default: 5)" in text and "(default: 20 for dsr" in text


def test_added_shrink_builds_the_papers_kind_of_schedule(tmp_path):
    out = tmp_path / "schedule"
    flags = ["--tasks", "4", "--hidden", "32", "--epochs", "1", "--lateral", "8", "--added", "6"]
    flags += ["--added-shrink", "2", "--added-every", "2", "--methods", "hlop", "--no-figures"]
    assert main(["snn", *flags, "--device", "cpu", "-q", "--out", str(out)]) == 0
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    assert settings["added"] == [[6, 6], [4, 4], [4, 4]]  # shrinks by 2 at task 2
    model = ContinualSNN.load(out / "models" / "hlop.pt")
    assert [sub.n_neurons for sub in model.strategy_.subspaces] == [8 + 14, 8 + 14]
