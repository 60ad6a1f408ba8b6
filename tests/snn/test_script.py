"""``scripts/hlop_continual.py``: task stream -> methods -> ACC/BWT, matrices, subspace angles."""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "hlop_continual.py"
TINY = [
    "--tasks", "2", "--hidden", "32", "--epochs", "1", "--seeds", "0",
    "--methods", "finetune", "hlop", "--hebbian-iterations", "5", "--device", "cpu",
]  # fmt: skip
OUTPUTS = [
    "metrics.json",
    "summary.txt",
    "results.csv",
    "runs.csv",
    "accuracy_matrices.npz",
    *(f"figures/{n}.png" for n in ("accuracy_matrices", "acc_bwt", "subspace_angles")),
]


def _run(*args, cwd):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def _numbers(value, where=""):
    """Every number in a JSON value, with where it sits (None counts as a missing number)."""
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _numbers(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [x for i, v in enumerate(value) for x in _numbers(v, f"{where}[{i}]")]
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return [(where, value)]
    return []


@pytest.fixture(scope="module")
def script():
    """The script as a module (its functions, and ``main`` in this process)."""
    spec = importlib.util.spec_from_file_location("hlop_continual_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny run, once, as a separate process: (out folder, completed process)."""
    tmp = tmp_path_factory.mktemp("tiny")
    out = tmp / "run"
    return out, _run(*TINY, "-q", "--out", str(out), cwd=tmp)


def _write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes (the MNIST format), gzipped."""
    head = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    path.write_bytes(gzip.compress(head + array.astype(np.uint8).tobytes()))


def test_help(tmp_path):
    run = _run("--help", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: hlop_continual")
    for flag in (
        "--stream",
        "--data",
        "--tasks",
        "--seeds",
        "--methods",
        "--hidden",
        "--lateral",
        "--added",
        "--hebbian-lr",
        "--paper-size",
        "--out",
        "--overwrite",
    ):
        assert flag in run.stdout, flag


def test_tiny_run_writes_every_output_with_finite_numbers(tiny_run):
    out, run = tiny_run
    assert run.returncode == 0, run.stderr
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 100, name
    metrics = json.loads((out / "metrics.json").read_text())
    missing = [w for w, v in _numbers({k: v for k, v in metrics.items() if k != "settings"})
               if v is None or not math.isfinite(v)]  # fmt: skip
    assert not missing, f"not finite: {missing}"
    assert metrics["stream"]["n_tasks"] == 2 and metrics["network"]["sizes"] == [64, 32, 10]
    assert list(metrics["methods"]) == ["finetune", "hlop"]
    layers = metrics["subspace_angles"]["layers"]
    assert [row["n_inputs"] for row in layers] == [64, 32]
    for row in layers:
        assert 0 <= row["median_deg"] <= row["max_deg"] <= 90
    summary = (out / "summary.txt").read_text()
    assert run.stdout.startswith(summary)  # the printout is summary.txt, then where it wrote
    assert "ACC (%)" in summary and "verdicts:" in summary


def test_tiny_run_tables_agree_with_the_saved_matrices(tiny_run):
    out, run = tiny_run
    assert run.returncode == 0, run.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    results = pd.read_csv(out / "results.csv").set_index("method")
    runs = pd.read_csv(out / "runs.csv")
    assert runs[["method", "seed"]].values.tolist() == [["finetune", 0], ["hlop", 0]]
    with np.load(out / "accuracy_matrices.npz") as saved:
        assert saved["seeds"].tolist() == [0]
        assert saved["task_names"].tolist() == ["permuted-digits-0", "permuted-digits-1"]
        for method in ("finetune", "hlop"):
            R = saved[method]
            assert R.shape == (1, 2, 2) and ((R >= 0) & (R <= 1)).all()
            acc = R[0, -1].mean()  # the paper's ACC and BWT, from the saved matrix
            bwt = R[0, -1, 0] - R[0, 0, 0]
            assert results.loc[method, "acc_mean"] == pytest.approx(acc)
            assert results.loc[method, "bwt_mean"] == pytest.approx(bwt)
            assert results.loc[method, "acc_sd"] == 0.0  # one seed
            assert metrics["methods"][method]["acc"]["per_seed"] == [pytest.approx(acc)]
        k = [row["n_directions"] for row in metrics["subspace_angles"]["layers"]]
        assert [saved[f"hlop_angles_layer{i}"].shape for i in range(2)] == [(1, k[0]), (1, k[1])]


def test_an_existing_output_is_refused_before_any_work(tmp_path, script, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert script.main([*TINY, "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"hlop_continual: error: The output folder {str(out)!r} exists and is not "
        "empty. Choose another folder, or pass overwrite=True (--overwrite on the command line) "
        "to write over it."
    )
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stream", "pmnist"], "--stream pmnist reads your files; give their folder with --data"),
        (["--stream", "split-cifar100"], "give their folder with --data PATH"),
        (["--stream", "pmnist", "--data", "{missing}"], "--data: no such folder"),
        (["--stream", "split-cifar100", "--data", "{missing}"], "--data: no such folder"),
        (["--stream", "pmnist", "--data", "{empty}"], "no 'train-images-idx3-ubyte'"),
        (["--data", "{empty}"], "reads no file; drop --data"),
        (["--paper-size"], "use it with --stream pmnist"),
        (["--stream", "pmnist", "--data", "{empty}", "--paper-size", "--hidden", "8"], "--hidden"),
        (["--hidden", "8", "--lateral", "4", "4", "4"], "--lateral has 3 values"),
        (["--hebbian-lr", "0.1", "0.1", "0.1", "0.1"], "--hebbian-lr has 4 values"),
        (["--task-labels"], "--task-labels applies to the split streams"),
        (
            ["--hidden", "8", "--lateral", "4", "--added", "2"],
            "--added: layer 1 (8 inputs) would hold 10",
        ),
        (
            ["--tasks", "11", "--added", "6"],
            "layer 0 (64 inputs) would hold 68 lateral neurons at task 8 of 11",
        ),
        (["--seeds", "1", "1"], "--seeds lists a seed more than once"),
        (["--methods", "hlop", "hlop"], "--methods lists a method more than once"),
        (["--tasks", "0"], "--tasks"),
        (["--stream", "split-digits", "--tasks", "11"], "--tasks"),
        (["--lr", "0"], "--lr"),
    ],
)
def test_user_errors_are_one_line(tmp_path, script, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    fill = {"{missing}": str(tmp_path / "nope"), "{empty}": str(tmp_path / "empty")}
    argv = [fill.get(a, a) for a in argv]
    out = tmp_path / "never"
    assert script.main([*argv, "-q", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hlop_continual: error: ") and message in err, err
    assert "\n" not in err
    assert not out.exists()


def test_permuted_mnist_runs_from_idx_files(tmp_path, script, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "mnist"
    data.mkdir()
    for split, n in (("train", 40), ("t10k", 20)):
        _write_idx(data / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(data / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    out = tmp_path / "run"
    argv = ["--stream", "pmnist", "--data", str(data), *TINY[:-4], "--device", "cpu"]
    assert script.main([*argv, "--methods", "gpm", "-q", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stream"]["task_names"] == ["permuted-mnist-0", "permuted-mnist-1"]
    assert metrics["network"]["sizes"] == [784, 32, 10]
    assert metrics["stream"]["n_train"] == [40, 40] and "subspace_angles" not in metrics
    assert not (out / "figures" / "subspace_angles.png").exists()  # no HLOP run
    assert "pmnist" in capsys.readouterr().out


def test_split_digits_keeps_the_digit_unless_task_labels(script):
    args = script.build_parser().parse_args(["--stream", "split-digits", "--tasks", "5"])
    script.check_arguments(args)
    assert script.load_stream(args, 0).n_classes == 10
    assert "class-incremental" in script.stream_labels(args)
    args = script.build_parser().parse_args(["--stream", "split-digits", "--task-labels"])
    script.check_arguments(args)
    assert script.load_stream(args, 0).n_classes == 2
    assert "task labels" in script.stream_labels(args)


def test_paper_size_is_the_papers_pmnist_setting(script, tmp_path):
    args = script.build_parser().parse_args(
        ["--stream", "pmnist", "--data", str(tmp_path), "--paper-size"]
    )
    script.check_arguments(args)
    params = script.model_params(args, n_features=784, n_tasks=10)
    assert params["hidden"] == (800, 800) and params["epochs"] == 1
    assert (params["lr"], params["momentum"], params["batch_size"]) == (0.1, 0.0, 64)
    assert params["lateral"] == [80, 200, 100] and params["hebbian_iterations"] == 5
    final = np.add(params["lateral"], np.sum(params["added"], axis=0))
    assert final.tolist() == [470, 590, 490]  # the reference's count after ten tasks
    small = script.build_parser().parse_args([])
    script.check_arguments(small)
    assert small.seeds == [0, 1] and small.tasks == 5
    params = script.model_params(small, n_features=64, n_tasks=5)
    assert params["lateral"] == [20, 40, 40] and params["added"] == [8, 12, 12]
    assert script.model_params(small, n_features=784, n_tasks=5)["lateral"] is None
    one = script.build_parser().parse_args(["--lateral", "5", "--added", "2", "--hidden", "16"])
    script.check_arguments(one)  # one number for every layer
    assert (one.lateral, one.added) == ([5, 5], [2, 2])


def test_spread_chance_angles_and_comparisons(script):
    from neuro.snn import METHODS

    assert script.METHODS == METHODS
    s = script.spread([0.2, 0.4])
    assert s["mean"] == pytest.approx(0.3) and s["sd"] == pytest.approx(0.1414, abs=1e-4)
    assert script.spread([0.5])["sd"] == 0.0
    assert np.allclose(script.chance_angles(10, 10), 0.0, atol=1e-6)  # the whole space
    assert np.median(script.chance_angles(400, 4)) > 80  # few directions in many: near 90
    assert script.informative([0.0, 0.0, 5.0, 30.0], n=6).tolist() == [5.0, 30.0]  # 2k - n = 2
    assert script.informative([3.0, 1.0], n=10).tolist() == [1.0, 3.0]  # k < n / 2: all of them
    assert script.informative([0.0, 0.0], n=2).tolist() == [0.0]  # the whole space
    a, b = {"mean": -0.05, "sd": 0.02}, {"mean": -0.5, "sd": 0.03}
    assert "HLOP forgets less than finetune" in script.compare("HLOP", a, "finetune", b, "BWT")
    assert "agree within the spread" in script.compare("HLOP", a, "gpm", a, "BWT")
    wide = {"mean": -0.3, "sd": 0.3}
    assert "agree within the spread" in script.compare("HLOP", a, "ewc", wide, "BWT")
