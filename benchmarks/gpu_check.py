"""The GPU check: the GPU tests, then every benchmark on CUDA, and one summary table.

``make gpu-check`` runs ``python benchmarks/gpu_check.py``:

1. ``pytest -m gpu`` (the tests marked ``gpu``: ``tests/train/test_gpu.py`` and
   ``tests/dendrites/test_simulate.py::test_cuda_matches_theory``), with the
   environment as it is;
2. every benchmark with ``--device cuda`` at the sizes in :data:`GPU_ARGS`,
   chosen to finish in well under 8 minutes in all on one H200 (each has a
   time limit, :data:`GPU_TIMEOUTS`); the numpy-based peers run on the CPU as
   they must, himalaya on its ``torch_cuda`` backend;
3. one summary table: module, benchmark, figure, peer, ratio.

Without CUDA it stops at once with one line saying so. ``--device cpu --quick``
runs the same pipeline on the CPU at the small sizes, to test the check itself.
The exit status is 0 only if the tests passed and every benchmark ran.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

from run_all import BENCHMARKS, print_summary, run_benchmarks, summary_rows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# sizes on CUDA (the defaults unless said here); the CPU-side peers set the pace
GPU_ARGS = {
    "ridge": ["--sklearn-voxels", "0"],  # full size, himalaya torch_cuda; big fit 200k voxels
    "dendrites": ["--trials", "200000"],
    "connectome": [],
    "rnn": [],  # hidden 100 and 500, with torch.compile
    "trainer": [],
    "fmri_hdf5": [],
    "nsd_scale": ["--sessions", "4", "--n-images", "1000"],  # writing the subject is CPU work
    "encoders_deep": [],  # paper sizes at full width, 10,000 voxels
    "neuroformer": [],  # paper size at the paper's batch 160; generation of 16 samples
    "snn": [],  # PMNIST size, batch 64, DSR T=20; SVD of a 60,000-sample task on the GPU
    "rl": [],  # env steps on the CPU; updates at batch 64 and a 20-episode fit on the GPU
    "brain3d": [],  # grids 16, 32 and the GPU size at 64 (18M-param autoencoder); full epochs
}
GPU_TIMEOUTS = {
    "ridge": 150,
    "dendrites": 60,
    "connectome": 60,
    "rnn": 150,
    "trainer": 45,
    "fmri_hdf5": 45,
    "nsd_scale": 240,
    "encoders_deep": 180,
    "neuroformer": 150,
    "snn": 120,
    "rl": 150,
    "brain3d": 150,
}
TEST_TIMEOUT = 120


def no_cuda_message() -> str | None:
    """Why CUDA cannot be used here, in one line (None if it can)."""
    try:
        import torch
    except ImportError:
        return "gpu-check: torch is not installed; run `make setup` first."
    if torch.cuda.is_available():
        return None
    why = (
        f"torch {torch.__version__} is built without CUDA"
        if torch.version.cuda is None
        else f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU"
    )
    return (
        f"gpu-check: no CUDA GPU here ({why}); run it on a machine with an NVIDIA GPU, or "
        "test the pipeline on the CPU with `python benchmarks/gpu_check.py --device cpu --quick`."
    )


def run_gpu_tests(timeout: float) -> dict:
    """``pytest -m gpu``; returns status and pytest's closing line."""
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"]
    print(f"=== tests: {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"timeout after {timeout:.0f} s", "line": "", "seconds": timeout}
    print(proc.stdout[-4000:], end="", flush=True)
    if proc.returncode not in (0, 5):
        print(proc.stderr[-2000:], end="", file=sys.stderr)
    lines = [ln.strip("= ") for ln in proc.stdout.splitlines() if re.search(r"\d+ \w+ in ", ln)]
    line = lines[-1] if lines else f"pytest exited with {proc.returncode}"
    status = "ok" if proc.returncode == 0 else f"failed (rc {proc.returncode})"
    return {"status": status, "line": line, "seconds": time.perf_counter() - start}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cuda:N; cpu to test")
    p.add_argument("--quick", action="store_true", help="the benchmarks' small settings")
    p.add_argument("--skip-tests", action="store_true", help="benchmarks only")
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = p.parse_args(argv)
    if args.device != "cpu":
        message = no_cuda_message()
        if message:
            print(message, file=sys.stderr)
            return 2
    start = time.perf_counter()
    tests = None if args.skip_tests else run_gpu_tests(TEST_TIMEOUT)
    results = run_benchmarks(
        args.only,
        args.device,
        quick=args.quick,
        extra=None if args.quick else GPU_ARGS,
        timeouts=GPU_TIMEOUTS if not args.quick else None,
    )
    rows = summary_rows(results)
    if tests is not None:
        rows.insert(
            0,
            {
                "module": "tests",
                "benchmark": "pytest -m gpu",
                "figure": tests["line"],
                "peer": tests["status"],
            },
        )
    total = time.perf_counter() - start
    size = "quick" if args.quick else "GPU-check"
    print_summary(rows, f"GPU check on {args.device} ({size} sizes), {total:.0f} s in all")
    for res in results:
        print(f"  {res['name']:<11} {res['status']:<20} {res['seconds']:6.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            doc = {"tests": tests, "results": results, "summary": rows, "seconds": total}
            json.dump(doc, f, indent=1)
    ok = (tests is None or tests["status"] == "ok") and all(r["status"] == "ok" for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
