"""Reading a large NSD-style HDF5 session in voxel batches: time and peak memory.

Writes a session of ``--n-trials`` x ``--n-voxels`` int16 betas (750 x 200,000
by default, 300 MB on disk, 600 MB as float32) block by block, then, each in a
fresh process so that peak memory is its own, computes every voxel's mean and sd

* with :class:`data_loaders.fmri.NSDSession` in voxel batches, reduced in torch
  on ``--device``, and
* the naive way (the peer): ``f["betas"][:]`` read whole, then reduced in numpy
  (with numpy's OpenBLAS at its best: see ``benchmarks/_common.py``).

Each is run ``--repeat`` times (alternating, each in a fresh process) and the
best time is kept, with the largest peak resident set size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import Col, Report, fair_blas, fair_env, parser, resolve


def write(path: Path, n_trials: int, n_voxels: int) -> None:
    import h5py

    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        d = f.create_dataset("betas", (n_trials, n_voxels), dtype=np.int16, chunks=(64, 4096))
        d.attrs["scale"] = 300.0
        for start in range(0, n_trials, 50):
            stop = min(start + 50, n_trials)
            d[start:stop] = rng.integers(-900, 900, (stop - start, n_voxels), dtype=np.int16)
        f["stimulus_ids"] = np.arange(n_trials) % (n_trials // 3 or 1)


def measure(path: str, mode: str, batch: int, device: str) -> dict:
    import resource

    if mode == "batched":
        import torch

        from data_loaders.fmri import NSDSession

        dev = torch.device(device)
        torch.zeros(1, device=dev)  # device set-up outside the timing
        t0 = time.perf_counter()
        with NSDSession(path) as s:
            means, sds = np.empty(s.n_voxels), np.empty(s.n_voxels)
            for sel, block in s.iter_voxel_batches(batch):
                t = torch.from_numpy(block).to(dev)
                sd, mean = torch.std_mean(t, dim=0, correction=0)
                means[sel], sds[sel] = mean.cpu().numpy(), sd.cpu().numpy()
    else:
        import h5py

        t0 = time.perf_counter()
        with h5py.File(path, "r") as f:
            data = f["betas"][:].astype(np.float32) / 300.0
        means, sds = data.mean(0), data.std(0)
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "seconds": seconds,
        "peak_mib": peak_kib / 1024,
        "checksum": float(means.sum() + sds.sum()),
    }


def main(argv=None) -> None:
    p = parser(__doc__.split("\n\n")[0], repeat=3, numpy_peer=True)
    p.add_argument("--n-voxels", type=int, default=200_000)
    p.add_argument("--n-trials", type=int, default=750)
    p.add_argument("--voxel-batch-size", type=int, default=10_000)
    p.add_argument("--_measure", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._measure:
        res = measure(args._measure[0], args._measure[1], args.voxel_batch_size, args.device)
        print(json.dumps(res))
        return
    unset = fair_blas(args.keep_blas_env)
    device = resolve(args.device)
    if args.quick:
        args.n_voxels, args.n_trials, args.voxel_batch_size = 20_000, 150, 2000
    report = Report("fmri_hdf5", args, device, unset)
    report.header(
        f"{args.n_trials} trials x {args.n_voxels} voxels int16, voxel batches of "
        f"{args.voxel_batch_size}, reductions on {device}; best of {args.repeat}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "session.hdf5"
        t0 = time.perf_counter()
        write(path, args.n_trials, args.n_voxels)
        report.note(
            f"wrote {args.n_trials} trials x {args.n_voxels} voxels "
            f"({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s"
        )
        runs: dict[str, list[dict]] = {"batched": [], "whole": []}
        for _ in range(max(1, args.repeat)):
            for mode in runs:
                cmd = [sys.executable, __file__, "--_measure", str(path), mode]
                cmd += ["--voxel-batch-size", str(args.voxel_batch_size), "--device", str(device)]
                out = subprocess.run(
                    cmd,
                    capture_output=True,
                    text=True,
                    check=True,
                    env=fair_env(args.keep_blas_env),
                )
                runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = {m: min(r, key=lambda x: x["seconds"]) for m, r in runs.items()}
    peak = {m: max(x["peak_mib"] for x in r) for m, r in runs.items()}
    a, b = best["batched"]["checksum"], best["whole"]["checksum"]
    if abs(a - b) > 1e-2 * max(1.0, abs(b)):
        raise SystemExit(f"fmri_hdf5: the two readers disagree (checksums {a} and {b})")
    rows = [
        {
            "reader": f"NSDSession, voxel batches of {args.voxel_batch_size} ({device})",
            "seconds": best["batched"]["seconds"],
            "peak_mib": peak["batched"],
        },
        {
            "reader": "h5py whole read + numpy (peer)",
            "seconds": best["whole"]["seconds"],
            "peak_mib": peak["whole"],
        },
    ]
    report.table(
        [
            Col("reader", "reader"),
            Col("seconds", "time (s)", "{:.2f}"),
            Col("peak_mib", "peak RSS (MiB)", "{:.0f}"),
        ],
        rows,
    )
    report.add_summary(
        f"HDF5 {args.n_trials}x{args.n_voxels} mean+sd (peak {peak['batched']:.0f} MiB)",
        f"{best['batched']['seconds']:.2f} s",
        f"whole read {best['whole']['seconds']:.2f} s, {peak['whole']:.0f} MiB",
        best["batched"]["seconds"] / best["whole"]["seconds"],
    )
    report.finish()


if __name__ == "__main__":
    main()
