"""Voxelwise ridge with a cross-validated alpha per voxel: neuro vs himalaya vs scikit-learn.

Each method runs in a fresh subprocess on the same synthetic data (regenerated
from the seed, float32, C-contiguous), after a small warm-up fit of its own, so
the times exclude imports and first-call set-up for every method alike; each
time is the best of ``--repeat`` fits. Peak memory is the subprocess's peak
resident set size (``ru_maxrss``), which counts torch's and BLAS's allocations
that ``tracemalloc`` misses (on CUDA also the peak of torch's allocator); the
"data only" row is the peak of a subprocess that only builds the data.

Methods
-------
neuro VoxelRidgeCV     5-fold (contiguous KFold) CV, per-voxel alpha, refit, on --device
himalaya RidgeCV       the same, with himalaya's "numpy" and "torch" backends on the
                       CPU, its "torch_cuda" backend on CUDA
sklearn RidgeCV (LOO)  scikit-learn's ``RidgeCV(alpha_per_target=True)`` with its
                       efficient leave-one-out (``cv=None``), CPU only: scikit-learn has
                       no K-fold CV with one alpha per target, so its alphas use a
                       different criterion; it runs on the first ``--sklearn-voxels``
                       voxels only and its ratio is extrapolated linearly in voxels
                       (marked ``~``).

"x himalaya" is the time over that of the faster himalaya backend, measured
fairly: the script runs itself without ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` (which hold numpy's OpenBLAS to an older kernel; see
``benchmarks/_common.py``). "alphas = himalaya" is the fraction of voxels whose
chosen alpha equals that of the faster himalaya backend (relative tolerance
1e-6). The BLAS column says which library ran each method's products; neuro
picks torch's or numpy's at run time (``NEURO_RIDGE_BLAS``, see
``neuro/encoders/ridge.py``).

``--quick`` is a small setting that finishes in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
from _common import FAIR_BLAS_VARS, Col, Report, fair_blas, fair_env, parser, resolve

CHUNK = 4096  # columns of Y generated at once (fixed, so every subset is the same data)


def make_data(n_samples: int, n_features: int, n_voxels: int, seed: int):
    """Features, and voxels = features @ sparse-ish weights + noise of growing size.

    Y is written column chunk by column chunk into one float32 C-contiguous
    array, so building it costs no more memory than Y itself.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features), dtype=np.float32)
    Y = np.empty((n_samples, n_voxels), dtype=np.float32)
    for i, start in enumerate(range(0, n_voxels, CHUNK)):
        stop = min(start + CHUNK, n_voxels)
        r = np.random.default_rng([seed, i])
        W = r.standard_normal((n_features, CHUNK), dtype=np.float32)[:, : stop - start]
        W *= np.float32(1.0 / np.sqrt(n_features))
        noise = r.standard_normal((n_samples, CHUNK), dtype=np.float32)[:, : stop - start]
        noise *= np.logspace(-0.5, 1.0, CHUNK, dtype=np.float32)[None, : stop - start]
        np.matmul(X, W, out=Y[:, start:stop])
        Y[:, start:stop] += noise
    return X, Y


def fit_method(method: str, X, Y, alphas, cv: int, voxel_batch_size, device: str):
    """Fit one method; return the chosen alpha per voxel."""
    if method == "neuro":
        from neuro.encoders.ridge import VoxelRidgeCV

        model = VoxelRidgeCV(alphas=alphas, cv=cv, device=device, voxel_batch_size=voxel_batch_size)
        return model.fit(X, Y).alpha_
    if method.startswith("himalaya-"):
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV

        backend = set_backend(method.split("-", 1)[1], on_error="raise")
        params = {"n_targets_batch": voxel_batch_size} if voxel_batch_size else None
        model = RidgeCV(alphas=alphas, cv=cv, fit_intercept=True, solver_params=params)
        return np.asarray(backend.to_numpy(model.fit(X, Y).best_alphas_))
    if method == "sklearn-loo":
        from sklearn.linear_model import RidgeCV

        return np.asarray(RidgeCV(alphas=alphas, alpha_per_target=True).fit(X, Y).alpha_)
    if method == "data":
        return None
    raise ValueError(f"unknown method {method!r}")


def _blas_used(method: str, device: str) -> str:
    """Which library ran the method's matrix products in this process."""
    import torch
    from _common import _numpy_blas, _torch_config

    if "cuda" in method or device.startswith("cuda"):
        return "cuBLAS (torch)"
    torch_blas = f"torch {_torch_config().get('blas_info', '?')}"
    pools = _numpy_blas()
    numpy_blas = "numpy " + (
        f"{pools[0].get('internal_api')} {pools[0].get('architecture', '')}".rstrip()
        if pools
        else "?"
    )
    if method == "neuro":
        from neuro.encoders import ridge

        forced = os.environ.get("NEURO_RIDGE_BLAS", "auto")
        chosen = (
            forced if forced in ("torch", "numpy") else ridge._cpu_blas_choice.get(torch.float32)
        )
        how = "forced" if forced in ("torch", "numpy") else "timed"
        if chosen is None:
            return f"{torch_blas} (small fit)"
        return f"{numpy_blas if chosen == 'numpy' else torch_blas} ({how})"
    if method in ("himalaya-numpy", "sklearn-loo"):
        return numpy_blas
    if method == "himalaya-torch":
        return torch_blas
    return "-"


def worker(args) -> None:
    """Run one method in this (fresh) process and write a JSON result."""
    import torch

    alphas = np.logspace(-2, 6, args.n_alphas)
    X, Y = make_data(args.n_samples, args.n_features, args.n_voxels, args.seed)
    device = args.device
    times, chosen = [], None
    if args.method != "data":  # warm-up on a small slice, not timed
        fit_method(args.method, X, np.ascontiguousarray(Y[:, :64]), alphas, args.cv, None, device)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            chosen = fit_method(args.method, X, Y, alphas, args.cv, args.voxel_batch_size, device)
            times.append(time.perf_counter() - t0)  # the results are on the host: synced
    if chosen is not None:
        np.save(args._out + ".npy", np.asarray(chosen, dtype=np.float64))
    res = {
        "seconds": min(times) if times else None,
        "times": times,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        "gpu_peak_mib": (
            torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
        ),
        "blas": _blas_used(args.method, device),
    }
    with open(args._out, "w") as f:
        json.dump(res, f)


def run_in_subprocess(method: str, args, n_voxels: int, voxel_batch_size, repeat: int, tmp: str):
    out = os.path.join(tmp, f"{method}-{n_voxels}.json")
    device = "cpu" if method in ("himalaya-numpy", "himalaya-torch", "sklearn-loo") else args.device
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", method, "--_out", out]
    cmd += ["--n-samples", str(args.n_samples), "--n-features", str(args.n_features)]
    cmd += ["--n-voxels", str(n_voxels), "--n-alphas", str(args.n_alphas), "--cv", str(args.cv)]
    cmd += ["--seed", str(args.seed), "--repeat", str(repeat), "--device", device]
    if voxel_batch_size:
        cmd += ["--voxel-batch-size", str(voxel_batch_size)]
    env = fair_env(args.keep_blas_env)
    if args.neuro_blas != "auto":
        env["NEURO_RIDGE_BLAS"] = args.neuro_blas
    print(f"  {method}: {n_voxels} voxels, best of {repeat} ...", flush=True)
    subprocess.run(cmd, check=True, env=env)
    with open(out) as f:
        res = json.load(f)
    res["alphas"] = np.load(out + ".npy") if os.path.exists(out + ".npy") else None
    return res


def main(argv=None) -> None:
    p = parser(__doc__.split("\n\n")[0], repeat=3, numpy_peer=True)
    p.add_argument("--n-samples", type=int, default=2000)
    p.add_argument("--n-features", type=int, default=512)
    p.add_argument("--n-voxels", type=int, default=20_000)
    p.add_argument("--n-alphas", type=int, default=17, help="np.logspace(-2, 6, n)")
    p.add_argument("--cv", type=int, default=5, help="contiguous KFold folds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--voxel-batch-size", type=int, default=None, help="for the main comparison (all methods)"
    )
    p.add_argument(
        "--sklearn-voxels", type=int, default=2000, help="voxels given to sklearn (0: skip it)"
    )
    p.add_argument(
        "--big-voxels", type=int, default=200_000, help="voxels of the big neuro fit (0: skip)"
    )
    p.add_argument("--big-batch", type=int, default=4096, help="voxel_batch_size, big fit")
    p.add_argument(
        "--big-repeat", type=int, default=None, help="best of N for the big fit (--repeat)"
    )
    p.add_argument(
        "--neuro-blas",
        choices=("auto", "torch", "numpy"),
        default="auto",
        help="NEURO_RIDGE_BLAS for neuro on the CPU (auto: time both once per process)",
    )
    p.add_argument("--_worker", help=argparse.SUPPRESS)
    p.add_argument("--_out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._worker:
        args.method = args._worker
        return worker(args)
    unset = fair_blas(args.keep_blas_env)
    device = resolve(args.device)
    args.device = str(device)
    if args.quick:
        args.n_samples, args.n_features, args.n_voxels = 500, 128, 2000
        args.sklearn_voxels = min(args.sklearn_voxels, 500)
        args.big_voxels, args.big_batch = min(args.big_voxels, 20_000), 2048
    on_cuda = device.type == "cuda"
    himalaya = ["himalaya-torch_cuda"] if on_cuda else ["himalaya-numpy", "himalaya-torch"]
    if on_cuda:
        args.sklearn_voxels = 0
    if args.big_repeat is None:
        args.big_repeat = args.repeat

    report = Report("ridge", args, device, unset)
    kept = args.keep_blas_env and any(k in os.environ for k in FAIR_BLAS_VARS)
    report.header(
        f"n_samples={args.n_samples} n_features={args.n_features} n_voxels={args.n_voxels} "
        f"alphas=logspace(-2, 6, {args.n_alphas}) cv={args.cv} (contiguous KFold) float32, "
        f"device {device}, CPU threads {os.cpu_count()}, best of {args.repeat}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        res = {}
        for method in ["data", "neuro", *himalaya]:
            res[method] = run_in_subprocess(
                method, args, args.n_voxels, args.voxel_batch_size, args.repeat, tmp
            )
        if args.sklearn_voxels:
            res["sklearn-loo"] = run_in_subprocess(
                "sklearn-loo",
                args,
                min(args.sklearn_voxels, args.n_voxels),
                None,
                args.repeat,
                tmp,
            )
        hbest = min(himalaya, key=lambda m: res[m]["seconds"])
        ref_alphas, ref_seconds = res[hbest]["alphas"], res[hbest]["seconds"]
        labels = {
            "data": "data only (X, Y)",
            "neuro": f"neuro VoxelRidgeCV ({device.type})",
            "himalaya-numpy": "himalaya RidgeCV numpy",
            "himalaya-torch": "himalaya RidgeCV torch",
            "himalaya-torch_cuda": "himalaya RidgeCV torch_cuda",
            "sklearn-loo": f"sklearn RidgeCV LOO ({min(args.sklearn_voxels, args.n_voxels)} vox)",
        }
        for method, r in res.items():
            row = {"method": labels[method], "peak_mib": r["peak_mib"]}
            if on_cuda:
                row["gpu_mib"] = r["gpu_peak_mib"]
            if method != "data":
                nv = len(r["alphas"])
                ratio = r["seconds"] / ref_seconds
                row["seconds"] = r["seconds"]
                row["ratio"] = (
                    ratio if nv == args.n_voxels else f"~{ratio * args.n_voxels / nv:.2f}"
                )
                row["alphas_same"] = float(
                    np.mean(np.isclose(r["alphas"], ref_alphas[:nv], rtol=1e-6))
                )
                row["blas"] = r["blas"]
                row["times"] = r["times"]
            rows.append(row)
        if args.big_voxels:
            big_data = run_in_subprocess("data", args, args.big_voxels, None, 1, tmp)
            big = run_in_subprocess(
                "neuro", args, args.big_voxels, args.big_batch, args.big_repeat, tmp
            )
            rows.append(
                {"method": f"data only ({args.big_voxels} vox)", "peak_mib": big_data["peak_mib"]}
            )
            rows.append(
                {
                    "method": f"neuro {args.big_voxels} vox, batch {args.big_batch}",
                    "seconds": big["seconds"],
                    "peak_mib": big["peak_mib"],
                    "gpu_mib": big["gpu_peak_mib"],
                    "blas": big["blas"],
                    "times": big["times"],
                }
            )
    columns = [
        Col("method", "method"),
        Col("seconds", "seconds", "{:.2f}"),
        Col("peak_mib", "peak MiB", "{:.0f}"),
        *([Col("gpu_mib", "GPU MiB", "{:.0f}")] if on_cuda else []),
        Col("ratio", f"x {hbest} ({'BLAS variables kept' if kept else 'fair'})", "{:.2f}"),
        Col("alphas_same", "alphas = himalaya", "{:.4f}"),
        Col("blas", "BLAS"),
    ]
    report.table(columns, rows)
    if args.big_voxels:
        y_mib = args.n_samples * args.big_voxels * 4 / 2**20
        report.note(f"(Y of the big fit alone is {y_mib:.0f} MiB as float32)")
    neuro_s = res["neuro"]["seconds"]
    report.add_summary(
        f"VoxelRidgeCV {args.n_samples}x{args.n_features}x{args.n_voxels}",
        f"{neuro_s:.2f} s",
        f"{labels[hbest]} {ref_seconds:.2f} s",
        neuro_s / ref_seconds,
    )
    report.finish()


if __name__ == "__main__":
    main()
