"""Reading a large NSD-style HDF5 session in voxel batches: time and peak memory.

Writes a session of ``--n-trials`` x ``--n-voxels`` int16 betas (750 x 200,000
by default, 300 MB on disk, 600 MB as float32) block by block, then, each in a
fresh process so peak memory is its own, computes every voxel's mean and sd

* with :class:`data_loaders.fmri.NSDSession` in voxel batches, and
* the naive way (the peer): ``f["betas"][:]`` read whole, then reduced.

    python benchmarks/fmri_hdf5.py [--n-voxels 200000] [--n-trials 750] [--voxel-batch-size 10000]
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


def measure(path: str, mode: str, batch: int) -> dict:
    import resource

    t0 = time.perf_counter()
    if mode == "batched":
        from data_loaders.fmri import NSDSession

        with NSDSession(path) as s:
            means, sds = np.empty(s.n_voxels), np.empty(s.n_voxels)
            for sel, block in s.iter_voxel_batches(batch):
                means[sel], sds[sel] = block.mean(0), block.std(0)
    else:
        import h5py

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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-voxels", type=int, default=200_000)
    parser.add_argument("--n-trials", type=int, default=750)
    parser.add_argument("--voxel-batch-size", type=int, default=10_000)
    parser.add_argument("--_measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._measure:
        print(json.dumps(measure(args._measure[0], args._measure[1], args.voxel_batch_size)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "session.hdf5"
        t0 = time.perf_counter()
        write(path, args.n_trials, args.n_voxels)
        print(
            f"wrote {args.n_trials} trials x {args.n_voxels} voxels "
            f"({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s"
        )
        rows = {}
        for mode in ("batched", "whole"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--_measure",
                    str(path),
                    mode,
                    "--voxel-batch-size",
                    str(args.voxel_batch_size),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    assert abs(rows["batched"]["checksum"] - rows["whole"]["checksum"]) < 1e-2 * max(
        1, abs(rows["whole"]["checksum"])
    )
    print(f"{'reader':<40}{'time (s)':>10}{'peak RSS (MiB)':>16}")
    print(
        f"{'NSDSession, voxel batches of ' + str(args.voxel_batch_size):<40}"
        f"{rows['batched']['seconds']:>10.2f}{rows['batched']['peak_mib']:>16.0f}"
    )
    print(
        f"{'h5py whole read (peer)':<40}{rows['whole']['seconds']:>10.2f}{rows['whole']['peak_mib']:>16.0f}"
    )


if __name__ == "__main__":
    main()
