"""Voxelwise ridge with a cross-validated alpha per voxel: neuro vs himalaya vs scikit-learn.

Each method runs in a fresh subprocess on the same synthetic data (regenerated
from the seed, float32, C-contiguous), after a small warm-up fit of its own, so
the times exclude imports and first-call set-up for every method alike. Peak
memory is the subprocess's peak resident set size (``ru_maxrss``), which counts
torch's and BLAS's allocations that ``tracemalloc`` misses; the "data only" row
is the peak of a subprocess that only builds the data, for reference.

Methods
-------
neuro VoxelRidgeCV     5-fold (contiguous KFold) CV, per-voxel alpha, refit
himalaya RidgeCV       the same, with himalaya's "numpy" and "torch" (CPU) backends
sklearn RidgeCV (LOO)  scikit-learn's ``RidgeCV(alpha_per_target=True)`` with its
                       efficient leave-one-out (``cv=None``): scikit-learn has no
                       K-fold CV with one alpha per target, so its alphas use a
                       different criterion; it runs on the first ``--sklearn-voxels``
                       voxels only and its ratio is extrapolated linearly in voxels
                       (marked ``~``).

"alphas = himalaya" is the fraction of voxels whose chosen alpha equals that of
the fastest himalaya backend (relative tolerance 1e-6).

Run ``python benchmarks/ridge.py --help`` for the settings; ``--quick`` is a
small setting that finishes in seconds.
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


def fit_method(method: str, X, Y, alphas, cv: int, voxel_batch_size):
    """Fit one method; return the chosen alpha per voxel."""
    if method == "neuro":
        from neuro.encoders.ridge import VoxelRidgeCV

        model = VoxelRidgeCV(alphas=alphas, cv=cv, device="cpu", voxel_batch_size=voxel_batch_size)
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


def worker(args) -> None:
    """Run one method in this (fresh) process and write a JSON result."""
    alphas = np.logspace(-2, 6, args.n_alphas)
    X, Y = make_data(args.n_samples, args.n_features, args.n_voxels, args.seed)
    if args.method != "data":  # warm-up on a small slice, not timed
        fit_method(args.method, X, np.ascontiguousarray(Y[:, :64]), alphas, args.cv, None)
    t0 = time.perf_counter()
    chosen = fit_method(args.method, X, Y, alphas, args.cv, args.voxel_batch_size)
    seconds = time.perf_counter() - t0
    if chosen is not None:
        np.save(args.out + ".npy", np.asarray(chosen, dtype=np.float64))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    with open(args.out, "w") as f:
        json.dump({"seconds": seconds, "peak_mib": peak_mib}, f)


def run_in_subprocess(method: str, args, n_voxels: int, voxel_batch_size, tmp: str):
    out = os.path.join(tmp, f"{method}-{n_voxels}.json")
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", method, "--_out", out]
    cmd += ["--n-samples", str(args.n_samples), "--n-features", str(args.n_features)]
    cmd += ["--n-voxels", str(n_voxels), "--n-alphas", str(args.n_alphas), "--cv", str(args.cv)]
    cmd += ["--seed", str(args.seed)]
    if voxel_batch_size:
        cmd += ["--voxel-batch-size", str(voxel_batch_size)]
    subprocess.run(cmd, check=True)
    with open(out) as f:
        res = json.load(f)
    res["alphas"] = np.load(out + ".npy") if os.path.exists(out + ".npy") else None
    return res


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--n-features", type=int, default=512)
    parser.add_argument("--n-voxels", type=int, default=20_000)
    parser.add_argument("--n-alphas", type=int, default=17, help="np.logspace(-2, 6, n)")
    parser.add_argument("--cv", type=int, default=5, help="contiguous KFold folds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--voxel-batch-size", type=int, default=None, help="for the main comparison (all methods)"
    )
    parser.add_argument(
        "--sklearn-voxels", type=int, default=2000, help="voxels given to sklearn (0: skip it)"
    )
    parser.add_argument(
        "--big-voxels", type=int, default=200_000, help="voxels of the big neuro fit (0: skip)"
    )
    parser.add_argument("--big-batch", type=int, default=4096, help="voxel_batch_size, big fit")
    parser.add_argument("--quick", action="store_true", help="a small setting (seconds)")
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._worker:
        args.method, args.out = args._worker, args._out
        return worker(args)
    if args.quick:
        args.n_samples, args.n_features, args.n_voxels = 500, 128, 2000
        args.sklearn_voxels, args.big_voxels, args.big_batch = 500, 20_000, 2048

    print(
        f"n_samples={args.n_samples} n_features={args.n_features} n_voxels={args.n_voxels} "
        f"alphas=logspace(-2, 6, {args.n_alphas}) cv={args.cv} (contiguous KFold) float32, "
        f"CPU threads: {os.cpu_count()}",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        res = {}
        for method in ["data", "neuro", "himalaya-numpy", "himalaya-torch"]:
            res[method] = run_in_subprocess(method, args, args.n_voxels, args.voxel_batch_size, tmp)
        if args.sklearn_voxels:
            res["sklearn-loo"] = run_in_subprocess(
                "sklearn-loo", args, min(args.sklearn_voxels, args.n_voxels), None, tmp
            )
        hbest = min(("himalaya-numpy", "himalaya-torch"), key=lambda m: res[m]["seconds"])
        ref_alphas, ref_seconds = res[hbest]["alphas"], res[hbest]["seconds"]
        labels = {
            "data": "data only (X, Y)",
            "neuro": "neuro VoxelRidgeCV",
            "himalaya-numpy": "himalaya RidgeCV numpy",
            "himalaya-torch": "himalaya RidgeCV torch",
            "sklearn-loo": f"sklearn RidgeCV LOO ({min(args.sklearn_voxels, args.n_voxels)} vox)",
        }
        for method, r in res.items():
            if method == "data":
                rows.append((labels[method], "-", f"{r['peak_mib']:.0f}", "-", "-"))
                continue
            nv = len(r["alphas"])
            ratio = r["seconds"] / ref_seconds
            ratio_s = (
                f"{ratio:.2f}" if nv == args.n_voxels else f"~{ratio * args.n_voxels / nv:.2f}"
            )
            same = np.mean(np.isclose(r["alphas"], ref_alphas[:nv], rtol=1e-6))
            rows.append(
                (
                    labels[method],
                    f"{r['seconds']:.2f}",
                    f"{r['peak_mib']:.0f}",
                    ratio_s,
                    f"{same:.4f}",
                )
            )
        if args.big_voxels:
            big_data = run_in_subprocess("data", args, args.big_voxels, None, tmp)
            big = run_in_subprocess("neuro", args, args.big_voxels, args.big_batch, tmp)
            rows.append(
                (f"data only ({args.big_voxels} vox)", "-", f"{big_data['peak_mib']:.0f}", "-", "-")
            )
            rows.append(
                (
                    f"neuro {args.big_voxels} vox, batch {args.big_batch}",
                    f"{big['seconds']:.2f}",
                    f"{big['peak_mib']:.0f}",
                    "-",
                    "-",
                )
            )
    header = ("method", "seconds", "peak MiB", f"x {hbest}", "alphas = himalaya")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if args.big_voxels:
        y_mib = args.n_samples * args.big_voxels * 4 / 2**20
        print(f"(Y of the big fit alone is {y_mib:.0f} MiB as float32)")


if __name__ == "__main__":
    main()
