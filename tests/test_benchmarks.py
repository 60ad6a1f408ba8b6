"""The benchmark scripts run (tiny ``--quick`` settings on the CPU) and report alike."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def run_script(name: str, *args: str, env: dict | None = None, timeout: float = 600):
    cmd = [sys.executable, str(BENCH / f"{name}.py"), *args]
    return subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env or dict(os.environ)
    )


def run_quick(name: str, tmp_path, *extra: str, env: dict | None = None) -> dict:
    out = tmp_path / f"{name}.json"
    proc = run_script(
        name, "--quick", "--device", "cpu", "--repeat", "1", "--json", str(out), *extra, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["benchmark"] == name
    assert report["settings"]["quick"] is True and report["settings"]["repeat"] == 1
    assert report["tables"] and all(t["rows"] for t in report["tables"])
    assert report["summary"] and all(
        set(row) == {"benchmark", "figure", "peer", "ratio"} for row in report["summary"]
    )
    env_info = report["environment"]
    assert env_info["device"] == "cpu" and env_info["torch"]["version"] == torch.__version__
    # the header names both sides' BLAS
    assert "torch " in proc.stdout and "BLAS" in proc.stdout
    return report


def test_table_printer_aligns_numbers_right_and_text_left():
    sys.path.insert(0, str(BENCH))
    try:
        from _common import Col, format_table
    finally:
        sys.path.remove(str(BENCH))
    lines = format_table(
        [Col("name", "method"), Col("s", "seconds", "{:.2f}")],
        [{"name": "a", "s": 1.0}, {"name": "long name", "s": 12.345}, {"name": "none"}],
    )
    assert lines[0].split() == ["method", "seconds"]
    assert lines[2] == "a             1.00"
    assert lines[3] == "long name    12.35"
    assert lines[4] == "none             -"


@pytest.mark.parametrize(
    ("name", "extra"),
    [("rnn", ()), ("trainer", ()), ("dendrites", ("--quick-points", "8"))],
)
def test_quick_runs(name, extra, tmp_path):
    run_quick(name, tmp_path, *extra)


def test_numpy_peers_run_with_the_blas_variables_unset(tmp_path):
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell", OPENBLAS_L2_SIZE="262144")
    report = run_quick("dendrites", tmp_path, "--quick-points", "4", env=env)
    info = report["environment"]
    assert info["blas_vars"] == {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None}
    assert info["blas_vars_unset_by_benchmark"] == {
        "OPENBLAS_CORETYPE": "Haswell",
        "OPENBLAS_L2_SIZE": "262144",
    }
    kept = run_quick("dendrites", tmp_path, "--quick-points", "4", "--keep-blas-env", env=env)
    assert kept["environment"]["blas_vars"]["OPENBLAS_CORETYPE"] == "Haswell"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_gpu_check_without_cuda_says_so_in_one_line():
    proc = run_script("gpu_check", timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA GPU here" in lines[0] and "--device cpu" in lines[0]


@pytest.mark.slow
def test_ridge_quick(tmp_path):
    report = run_quick("ridge", tmp_path, "--big-voxels", "0", "--sklearn-voxels", "200")
    rows = {r["method"]: r for r in report["tables"][0]["rows"]}
    neuro = rows["neuro VoxelRidgeCV (cpu)"]
    assert neuro["alphas_same"] > 0.99 and neuro["seconds"] > 0
    assert {"himalaya RidgeCV numpy", "himalaya RidgeCV torch"} <= set(rows)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["connectome", "fmri_hdf5"])
def test_quick_runs_slow(name, tmp_path):
    run_quick(name, tmp_path)


@pytest.mark.slow
def test_nsd_scale_quick(tmp_path):
    report = run_quick("nsd_scale", tmp_path)
    pipeline, reads, fits = report["tables"]
    stages = {r["stage"]: r for r in pipeline["rows"]}
    assert list(stages) == ["read", "features", "features, cached", "fit", "maps", "total"]
    for row in pipeline["rows"]:
        assert row["seconds"] > 0 and row["peak_mib"] > 0 and row["full_seconds"] > 0
    # the projection to 40 x 750 trials scales the read by 30000 / (2 x 120) trials
    assert stages["read"]["full_seconds"] == pytest.approx(stages["read"]["seconds"] * 125)
    assert stages["maps"]["full_seconds"] == pytest.approx(stages["maps"]["seconds"])
    total = stages["total"]
    assert total["peak_mib"] == max(r["peak_mib"] for r in pipeline["rows"][:-1])
    assert "240 trials x" in pipeline["title"]
    readers = [r["reader"] for r in reads["rows"]]
    assert readers[0].startswith("NSDSubject") and "peer" in readers[1]
    methods = [r["method"] for r in fits["rows"]]
    assert methods[0].startswith("neuro VoxelRidgeCV")
    if len(methods) > 1:  # himalaya installed (the dev extra)
        assert methods[1].startswith("himalaya") and 0 <= fits["rows"][0]["alphas_same"] <= 1
    assert any(row["benchmark"].startswith("NSD read") for row in report["summary"])


@pytest.mark.slow
def test_gpu_check_pipeline_on_the_cpu(tmp_path):
    out = tmp_path / "check.json"
    proc = run_script("gpu_check", "--device", "cpu", "--quick", "--json", str(out), timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["tests"]["status"] == "ok"
    assert [r["name"] for r in doc["results"]] == [
        "ridge",
        "dendrites",
        "connectome",
        "rnn",
        "trainer",
        "fmri_hdf5",
        "nsd_scale",
        "encoders_deep",
        "neuroformer",
        "snn",
        "rl",
        "brain3d",
    ]
    modules = {row["module"] for row in doc["summary"]}
    assert modules == {
        "tests",
        "ridge",
        "dendrites",
        "connectome",
        "rnn",
        "trainer",
        "fmri_hdf5",
        "nsd_scale",
        "encoders_deep",
        "neuroformer",
        "snn",
        "rl",
        "brain3d",
    }
    assert "module" in proc.stdout and "ratio" in proc.stdout


@pytest.mark.slow
def test_encoders_deep_quick(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # no thread contention
    report = run_quick("encoders_deep", tmp_path, env=env)
    train, encode, attention = report["tables"]
    rows = train["rows"]
    assert [(r["model"], r["size"]) for r in rows] == [
        ("TransformerEncoder", "default"),
        ("InContextEncoder", "default"),
        ("TransformerEncoder", "paper, width x0.125"),
        ("InContextEncoder", "paper, width x0.125"),
    ]
    for row in rows:
        assert row["images_per_s"] > 0 and row["mem_mib"] >= 0
        assert 0 < row["params"] <= row["full_params"]
    assert rows[0]["params"] == rows[0]["full_params"] and rows[3]["full_params"] > 90_000_000
    methods = [r["method"] for r in encode["rows"]]
    assert methods[0].startswith("InContextEncoder.encode")
    assert methods[-1].startswith("VoxelRidgeCV")
    assert encode["rows"][-1]["ratio"] == 1.0
    for row in attention["rows"]:
        assert row["max_abs_diff"] < 1e-4 and row["sdpa_fb_ms"] > 0 and row["plain_fb_ms"] > 0
    assert any(s["benchmark"].startswith("SDPA") for s in report["summary"])


@pytest.mark.slow
def test_neuroformer_quick(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # no thread contention
    report = run_quick("neuroformer", tmp_path, env=env)
    train, attention, generation = report["tables"]
    rows = train["rows"]
    assert [(r["size"], r["attention"]) for r in rows] == [
        ("small", "SDPA"),
        ("small", "plain"),
        ("paper", "SDPA"),
        ("paper", "plain"),
    ]
    for row in rows:
        assert row["tokens_per_s"] > 0 and row["step_ms"] > 0 and row["mem_mib"] >= 0
        # a batch holds at least SOS, one spike and EOS per sample, and at most its blocks
        assert 3 * row["batch"] <= row["tokens_per_step"] <= 100 * row["batch"]
    small, paper = rows[0]["params"], rows[2]["params"]
    assert small < 1_000_000 and 20_000_000 < paper < 30_000_000  # the paper's ~24M
    assert rows[1]["params"] == small and rows[3]["params"] == paper
    assert [r["size"] for r in attention["rows"]] == ["small", "paper"]
    for row in attention["rows"]:
        assert row["logits_diff"] < 1e-4 and row["loss_diff"] < 1e-4
        assert row["ratio"] == pytest.approx(row["sdpa_ms"] / row["plain_ms"])
    assert [r["tokens"] for r in generation["rows"]] == [8, 24]
    for row in generation["rows"]:
        assert row["same"] == "yes"
        assert row["cached_tps"] > 0 and row["uncached_tps"] > 0 and row["speedup"] > 0
    assert "non-PAD current tokens" in " ".join(report["notes"])
    assert [s["benchmark"].split(",")[0] for s in report["summary"]] == [
        "training",
        "training",
        "generation",
    ]


@pytest.mark.slow
def test_snn_quick(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # no thread contention
    report = run_quick("snn", tmp_path, env=env)
    steps, subspace = report["tables"]
    rows = steps["rows"]
    assert [(r["size"], r["kind"]) for r in rows] == [
        (size, kind) for size in ("small", "paper") for kind in ("plain", "hlop", "gpm", "mlp")
    ]
    assert [r["net"] for r in rows[::4]] == ["64-100-100-10", "784-800-800-10"]
    for row in rows:
        assert row["batch"] == 64
        assert math.isfinite(row["step_ms"]) and row["step_ms"] > 0
        assert row["samples_per_s"] == pytest.approx(64e3 / row["step_ms"])
        if row["kind"] == "mlp":
            assert row["T"] is None and row["time_steps_per_s"] is None
        else:  # time steps/s = batch * T / step time, DSR's T = 20
            assert row["T"] == 20
            assert row["time_steps_per_s"] == pytest.approx(row["samples_per_s"] * 20)
    paper_hlop = rows[5]
    assert paper_hlop["subspace"] == "80/200/100 old + 70/70/70 new"
    layers = subspace["rows"]
    assert [(r["size"], r["n"]) for r in layers] == [
        ("small", 64),
        ("small", 100),
        ("small", 100),
        ("paper", 784),
        ("paper", 800),
        ("paper", 800),
    ]
    assert [r["samples"] for r in layers] == [1347] * 3 + [6000] * 3  # --quick: 6,000 a task
    for row in layers:
        for key in ("learn_ms", "hlop_task_s", "gram_s", "extend_s", "gpm_task_s", "svd_s"):
            assert math.isfinite(row[key]) and row[key] > 0, key
        assert row["batches"] == math.ceil(row["samples"] / 64)
        assert row["hlop_task_s"] == pytest.approx(row["learn_ms"] / 1e3 * row["batches"])
        assert row["hlop_vs_svd"] == pytest.approx(row["hlop_task_s"] / row["svd_s"])
        assert row["added"] >= 0
    assert "batch x T / step time" in " ".join(report["notes"])
    summary = report["summary"]
    assert len(summary) == 6
    for row in summary:
        assert math.isfinite(row["ratio"]) and row["ratio"] > 0
    assert summary[0]["benchmark"].startswith("SNN step with HLOP, small size")
    assert summary[5]["benchmark"].startswith("subspace learning per task, paper size")


def test_rl_quick(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # no thread contention
    report = run_quick("rl", tmp_path, env=env)
    envs, updates, fit = report["tables"]
    rows = envs["rows"]
    assert [r["how"] for r in rows] == [
        "GridWorld (unwrapped)",
        "make (gymnasium wrappers)",
        "make_vector, N=8",
        "Python loop, N=8 (peer)",
        "make_vector, N=64",
        "Python loop, N=64 (peer)",
    ]
    for row in rows:
        assert math.isfinite(row["env_steps_per_s"]) and row["env_steps_per_s"] > 0
        assert row["env_steps_per_s"] == pytest.approx(row["env_steps"] / row["seconds"])
    # --quick: 2,000 env-steps per timing; a vector step is N env-steps
    assert [r["env_steps"] for r in rows] == [2000, 2000, 2000, 2000, 1984, 1984]
    for vec, loop in ((rows[2], rows[3]), (rows[4], rows[5])):
        assert vec["env_steps_per_s"] == pytest.approx(vec["N"] * vec["vector_steps_per_s"])
        assert vec["vs_loop"] == pytest.approx(vec["seconds"] / loop["seconds"])
        assert loop["vs_loop"] == 1.0
    rows = updates["rows"]
    labels = ["model-free", "predictive, gamma_p 0", "predictive, gamma_p 0.8", "plain double DQN"]
    assert [(r["encoder"], r["update"]) for r in rows] == [
        (size, label) for size in ("small", "default", "large") for label in labels
    ]
    params = [r["encoder_params"] for r in rows[::4]]
    assert params[0] < params[1] < params[2]  # the three encoder sizes
    for row in rows:
        assert row["batch"] == 64 and len(row["times"]) == 1
        assert math.isfinite(row["update_ms"]) and row["update_ms"] > 0
        assert row["updates_per_s"] == pytest.approx(1e3 / row["update_ms"])
    for plain in rows[3::4]:
        assert plain["vs_plain"] == 1.0
    (row,) = fit["rows"]
    assert row["episodes"] == 2 and 2 <= row["train_steps"] <= 2 * 150
    # one update per training step once the buffer holds a batch of 64
    assert row["updates"] == max(0, row["train_steps"] - 63)
    assert 2 <= row["eval_steps"] <= 2 * 150 and row["seconds"] > 0
    assert row["train_steps_per_s"] == pytest.approx(row["train_steps"] / row["seconds"])
    summary = report["summary"]
    assert [s["benchmark"].split(" (")[0] for s in summary[:2]] == [
        "vector env, N=8",
        "vector env, N=64",
    ]
    assert len(summary) == 2 + 3 * 2 + 1 and summary[-1]["benchmark"].startswith("fit")
    for s in summary:
        assert math.isfinite(s["ratio"]) and s["ratio"] > 0


@pytest.mark.slow
def test_brain3d_quick(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # no thread contention
    report = run_quick("brain3d", tmp_path, env=env)
    training, sampling, meshes = report["tables"]
    rows = training["rows"]
    settings = ["CPU default, grid 16", "CPU default, grid 32", "GPU size, grid 64"]
    stages = ["0 shape prior", "1 fMRI -> latents", "2 flow"]
    assert [(r["setting"], r["stage"]) for r in rows] == [(s, k) for s in settings for k in stages]
    for row in rows[:6]:  # --quick: 1 epoch of stage 0, 2 of stages 1 and 2
        assert row["measured"] == ("1 epoch" if row["stage"] == stages[0] else "2 epochs")
        assert row["trainer_s"] > 0 and row["plain_s"] > 0
        assert row["ratio"] == pytest.approx(row["trainer_s"] / row["plain_s"])
        assert row["steps_per_epoch"] == math.ceil(row["rows_train"] / 32)
    assert rows[0]["rows_train"] == 168 and rows[1]["rows_train"] < 168  # stage 1 validates
    # the GPU size: counted, not timed on the CPU with --quick
    gpu = rows[6:]
    assert all(r["measured"] == "skipped (--quick)" and "trainer_s" not in r for r in gpu)
    assert gpu[0]["params"] > 10 * rows[3]["params"] and gpu[2]["params"] > rows[5]["params"]
    assert rows[0]["params"] < rows[3]["params"] and rows[1]["params"] == rows[4]["params"]
    assert [(r["setting"], r["flow_steps"], r["objects"]) for r in sampling["rows"]] == [
        (settings[0], 32, 8),
        (settings[1], 32, 8),
    ]
    for row in sampling["rows"]:
        assert row["sample_ms"] > 0 and row["direct_ms"] > 0
        assert row["ratio"] == pytest.approx(row["sample_ms"] / row["direct_ms"])
    assert [(r["grid"], r["format"]) for r in meshes["rows"]] == [
        (16, "ply"),
        (16, "obj"),
        (32, "ply"),
        (32, "obj"),
    ]
    for row in meshes["rows"]:
        assert row["objects"] == 4 and row["faces"] > 0
        assert abs(row["faces"] - row["trimesh_faces"]) <= 0.01 * row["faces"]  # same surface
        assert row["ours_ms"] > 0 and row["trimesh_ms"] > 0
    assert "fsync" in " ".join(report["notes"])
    summary = report["summary"]
    assert [s["benchmark"].split(",")[0] for s in summary] == ["training"] * 2 + [
        "sampling per object"
    ] * 2 + ["mesh export per object"] * 2
    for row in summary:
        assert math.isfinite(row["ratio"]) and row["ratio"] > 0


@pytest.mark.slow
def test_partition_quick(tmp_path):
    """The LFR benchmark of the community methods (issue 19): every method scored per mu."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    figure = tmp_path / "lfr.png"
    report = run_quick("partition", tmp_path, "--figure", str(figure), env=env)
    rows = report["tables"][0]["rows"]
    assert {r["method"] for r in rows} >= {"sbm", "louvain"}
    assert all(-1.0 <= r["ari"] <= 1.0 for r in rows if r.get("ari") is not None)
    assert figure.stat().st_size > 0
