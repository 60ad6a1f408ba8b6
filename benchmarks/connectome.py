"""Time and memory of the dynamic connectome's stages, beside tensortools and tensorly.

Two parts, in one run:

1. **Stages at a small size** (100 neurons x 3,000 frames x 5 animals, simulated;
   ``--neurons``, ``--frames``, ``--animals``): the derivative and correlation
   affinities (torch on ``--device``), the NTF by the package's torch HALS
   (float32 on ``--device``), by tensortools' ``ncp_hals`` (the named peer,
   numpy float64; skipped with a note where tensortools is not installed:
   ``pip install -e .[bench]``) and by tensorly's HALS (numpy, the solver this
   package used before), each for the same number of iterations from its own
   random start, and the communities (SBM and Louvain, no bootstrap).
2. **The realistic size** (on by default; ``--no-realistic`` or ``--quick``
   skip it): 5 animals x 190 neurons x 30 min at 30 Hz (54,000 frames;
   17,955 pairs), time bins of 2 s (900 bins): a tensor of 80.8 M entries.
   * Affinity: one animal's first pair batches are timed at the full length
     and projected to every pair and animal, with the work memory of one
     batch (``pair_batch_size="auto"``) beside the old fixed 2,048 pairs.
   * NTF: a tensor of that shape (rank-5 structure plus noise) is built and
     a few iterations of each solver are timed, each in a fresh process
     whose peak memory above the tensor it was given is read from the
     kernel (``VmHWM``, reset before the fit). Rank selection (ranks 2-5, 4
     restarts) is projected from the time per iteration: 300 iterations per
     fit for tensorly (the old default) and 1,000 at most for the torch
     solver (its default, which stops earlier once converged).

Every time is the best of ``--repeat`` (part 1); part 2 times each solver
once over ``--realistic-iters`` iterations after one warm-up iteration.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import time

import numpy as np
from _common import (
    Col,
    Report,
    best_of,
    fair_blas,
    parser,
    peak_mib,
    reset_peak,
    resolve,
    rss_mib,
    sync,
)

from data_loaders.simulate.calcium import simulate_calcium
from neuro.connectome import affinity_tensor, find_communities, fit_ntf
from neuro.connectome.affinity import auto_pair_batch_size

REAL = dict(animals=5, neurons=190, minutes=30, rate=30.0, bin_seconds=2.0)
RANKS, RESTARTS = (2, 3, 4, 5), 4


def _have_tensortools() -> bool:
    try:
        import tensortools  # noqa: F401
    except ImportError:
        return False
    return True


def _tensortools_fit(x: np.ndarray, rank: int, n_iter: int, seed: int = 0):
    import tensortools as tt

    res = tt.ncp_hals(x, rank, max_iter=n_iter, min_iter=n_iter, tol=0, random_state=seed,
                      verbose=False)  # fmt: skip
    factors = res.factors.factors
    model = np.einsum("tr,ar,pr->tap", *factors)
    return float(np.linalg.norm(x - model) / np.linalg.norm(x))


def _synthetic(shape, rank: int, dtype, seed: int = 0) -> np.ndarray:
    """A non-negative (bins, animals, pairs) tensor: rank-``rank`` structure plus noise, by blocks."""
    rng = np.random.default_rng(seed)
    t, a, p = shape
    f = [rng.random((n, rank)) ** 2 for n in shape]
    out = np.empty(shape, dtype=dtype)
    ap = f[1][:, None, :] * f[2][None, :, :]
    step = max(1, 2**22 // (a * p))
    for t0 in range(0, t, step):
        block = np.einsum("tr,apr->tap", f[0][t0 : t0 + step], ap)
        block += 0.3 * block.mean() * rng.random(block.shape)
        out[t0 : t0 + step] = block
    return out


def _solver_child(solver: str, shape, rank: int, n_iter: int, device: str, threads: int):
    """In a fresh process: seconds per iteration and peak bytes above the input tensor."""
    import torch

    torch.set_num_threads(threads)
    dtype = np.float32 if solver == "torch" else np.float64
    x = _synthetic(shape, 5, dtype)
    base = rss_mib()
    exact = reset_peak()
    if solver == "torch":
        from neuro.connectome.hals import TensorWorkspace, cp_nonneg

        dev = torch.device(device)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        start = time.perf_counter()
        ws = TensorWorkspace(x, device=dev)
        setup = time.perf_counter() - start
        cp_nonneg(ws, rank, n_iter_max=1, tol=0)  # warm-up
        sync(dev)
        start = time.perf_counter()
        _, err, _ = cp_nonneg(ws, rank, n_iter_max=n_iter, tol=0)
        sync(dev)
        sec = (time.perf_counter() - start) / n_iter
        gpu = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None
    elif solver == "tensortools":
        _tensortools_fit(x[:2], rank, 1)  # numba compiles its kernel here
        start = time.perf_counter()
        err = _tensortools_fit(x, rank, n_iter)
        sec, setup, gpu = (time.perf_counter() - start) / n_iter, 0.0, None
    else:  # tensorly, numpy backend: the solver this package used before
        start = time.perf_counter()
        err = fit_ntf(x, rank, n_iter_max=n_iter, tol=0, backend="numpy").error
        sec, setup, gpu = (time.perf_counter() - start) / n_iter, 0.0, None
    return {
        "sec_per_iter": sec,
        "setup": setup,
        "error": err,
        "peak_above_input": max(0.0, peak_mib() - base) * 2**20 if exact else None,
        "input_bytes": x.nbytes,
        "gpu_peak": gpu,
    }


def _in_child(*args):
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_solver_child, args)


# ----------------------------------------------------------------------------- parts
def _small(args, device, report) -> None:
    sim = simulate_calcium(
        n_animals=args.animals,
        n_neurons=args.neurons,
        n_frames=args.frames,
        community_size=min(10, args.neurons // 3),
        seed=0,
    )
    rows = []
    t, _, x = best_of(
        lambda: affinity_tensor(sim.data, bin_size=args.bin_size, device=device),
        args.repeat,
        device,
    )
    rows.append({"stage": "affinity (derivative)", "device": str(device), "seconds": t})
    t, _, _ = best_of(
        lambda: affinity_tensor(
            sim.data, method="correlation", bin_size=args.bin_size, device=device
        ),
        args.repeat,
        device,
    )
    rows.append({"stage": "affinity (correlation)", "device": str(device), "seconds": t})
    n = args.n_iter
    t_ours, _, ours = best_of(
        lambda: fit_ntf(x, args.rank, n_iter_max=n, tol=0, device=str(device)),
        args.repeat,
        device,
    )
    rows.append(
        {
            "stage": "NTF torch HALS float32 (ours)",
            "device": str(device),
            "seconds": t_ours,
            "note": f"err {ours.error:.4f}",
        }
    )
    t_peer = None
    if _have_tensortools():
        x64 = x.astype(np.float64)
        _tensortools_fit(x64[:2], args.rank, 1)
        t_peer, _, err = best_of(
            lambda: _tensortools_fit(x64, args.rank, n), args.repeat, "cpu", warmup=0
        )
        rows.append(
            {
                "stage": "NTF tensortools ncp_hals float64 (peer)",
                "device": "cpu",
                "seconds": t_peer,
                "note": f"err {err:.4f} (its time includes one reconstruction for the error)",
            }
        )
    else:
        report.note("tensortools is not installed: pip install -e .[bench] (peer skipped)")
    t_tl, _, tl_fit = best_of(
        lambda: fit_ntf(x, args.rank, n_iter_max=n, tol=0, backend="numpy"), args.repeat
    )
    rows.append(
        {
            "stage": "NTF tensorly HALS numpy (before)",
            "device": "cpu",
            "seconds": t_tl,
            "note": f"err {tl_fit.error:.4f}",
        }
    )
    for method in ("sbm", "louvain"):
        t, _, _ = best_of(
            lambda method=method: find_communities(
                ours.factors[2], args.neurons, method=method, n_bootstrap=0
            ),
            args.repeat,
        )
        rows.append(
            {"stage": f"communities ({method}, no bootstrap)", "device": "cpu", "seconds": t}
        )
    report.table(
        [
            Col("stage", "stage"),
            Col("device", "device"),
            Col("seconds", "seconds", "{:.3f}"),
            Col("note", "note"),
        ],
        rows,
        title=f"stages: traces {sim.data.shape}, tensor {tuple(x.shape)}, rank {args.rank}, "
        f"{n} NTF iterations",
    )
    peer, name = (t_peer, "tensortools ncp_hals") if t_peer else (t_tl, "tensorly numpy")
    report.add_summary(
        f"NTF HALS rank {args.rank}, {n} it, tensor {tuple(x.shape)}",
        f"torch {t_ours:.3f} s",
        f"{name} {peer:.3f} s",
        t_ours / peer,
    )


def _realistic(args, device, report) -> None:
    import torch

    frames = int(REAL["minutes"] * 60 * REAL["rate"])
    n_pairs = REAL["neurons"] * (REAL["neurons"] - 1) // 2
    bin_frames = int(REAL["bin_seconds"] * REAL["rate"])
    n_bins = -(-(frames - 1) // bin_frames)
    shape = (n_bins, REAL["animals"], n_pairs)
    report.note(
        f"\nrealistic size: {REAL['animals']} animals x {REAL['neurons']} neurons x "
        f"{REAL['minutes']} min at {REAL['rate']:g} Hz ({frames} frames, {n_pairs} pairs); "
        f"{REAL['bin_seconds']:g} s bins -> tensor {shape}, {math.prod(shape) / 1e6:.1f} M entries"
    )
    # affinity: one animal's first batches at the full length, projected
    sim = simulate_calcium(
        n_animals=1, n_neurons=REAL["neurons"], n_frames=frames, community_size=20,
        sampling_rate=REAL["rate"], seed=0,
    )  # fmt: skip
    batch = auto_pair_batch_size(frames)
    n_time = 2 * batch
    # the same traces, only the first neurons: 2 batches' worth of pairs
    k = math.ceil((1 + math.sqrt(1 + 8 * n_time)) / 2)
    part = sim.data.traces[:, :k]
    start = time.perf_counter()
    affinity_tensor(part, bin_size=bin_frames, device=device)
    sync(device)
    t_part = time.perf_counter() - start
    per_pair = t_part / (k * (k - 1) // 2)
    t_aff = per_pair * n_pairs * REAL["animals"]
    rows = [
        {
            "stage": "affinity (derivative), all pairs and animals",
            "ours": f"{t_aff / 60:.1f} min (projected from {k * (k - 1) // 2} pairs)",
            "before": f"batch of 2,048 pairs: {28 * 2048 * frames / 1e9:.1f} GB work memory",
            "note": f"auto batch {batch} pairs: {28 * batch * frames / 1e9:.2f} GB",
        }
    ]
    # the NTF solvers, each in its own process
    threads = torch.get_num_threads()
    n = args.realistic_iters
    results = {"torch": _in_child("torch", shape, 4, n, str(device), threads)}
    if _have_tensortools():
        results["tensortools"] = _in_child("tensortools", shape, 4, n, "cpu", threads)
    results["tensorly"] = _in_child("tensorly", shape, 4, max(2, n // 2), "cpu", threads)
    tensor32 = math.prod(shape) * 4
    fits = {"torch": 1000, "tensortools": 300, "tensorly": 300}
    for name, res in results.items():
        peak = res["peak_above_input"]
        mem = "-" if peak is None else f"{peak / 1e9:.2f} GB ({peak / tensor32:.2f}x)"
        if res["gpu_peak"]:
            mem += f"; GPU {res['gpu_peak'] / 1e9:.2f} GB ({res['gpu_peak'] / tensor32:.2f}x)"
        total = res["sec_per_iter"] * fits[name] * len(RANKS) * RESTARTS
        rows.append(
            {
                "stage": f"NTF {name} ({'float32, ' + str(device) if name == 'torch' else 'float64, cpu'})",
                "ours": f"{res['sec_per_iter']:.3f} s/iteration",
                "before": f"rank selection {total / 3600:.2f} h ({fits[name]} it x 16 fits)",
                "note": f"memory above its input: {mem}",
            }
        )
    report.table(
        [Col("stage", "stage"), Col("ours", "time"), Col("before", "projection / before"),
         Col("note", "memory")],
        rows,
        title="realistic size (memory: peak resident bytes above the input tensor, and its ratio "
        "to the float32 tensor)",
    )  # fmt: skip
    if "tensortools" in results:
        ratio = results["torch"]["sec_per_iter"] / results["tensortools"]["sec_per_iter"]
        report.add_summary(
            f"NTF HALS iteration at the realistic size {shape}",
            f"torch {results['torch']['sec_per_iter']:.3f} s",
            f"tensortools {results['tensortools']['sec_per_iter']:.3f} s",
            ratio,
        )


def main(argv=None) -> None:
    p = parser(__doc__.split("\n\n")[0], repeat=3, numpy_peer=True)
    p.add_argument("--neurons", type=int, default=100)
    p.add_argument("--frames", type=int, default=3000)
    p.add_argument("--animals", type=int, default=5)
    p.add_argument("--rank", type=int, default=4)
    p.add_argument("--bin-size", type=int, default=20, help="frames per bin (part 1)")
    p.add_argument("--n-iter", type=int, default=100)
    p.add_argument("--no-realistic", dest="realistic", action="store_false", help="skip part 2")
    p.add_argument(
        "--realistic-iters", type=int, default=6, help="timed NTF iterations at the realistic size"
    )
    args = p.parse_args(argv)
    unset = fair_blas(args.keep_blas_env)
    device = resolve(args.device)
    if args.quick:
        args.neurons, args.frames, args.animals, args.n_iter = 30, 600, 2, 20
        args.realistic = False
    report = Report("connectome", args, device, unset)
    report.header(
        f"rank {args.rank}, device {device}, best of {args.repeat}; torch threads "
        f"{os.environ.get('OMP_NUM_THREADS', 'default')}"
    )
    _small(args, device, report)
    if args.realistic:
        _realistic(args, device, report)
    report.finish()


if __name__ == "__main__":
    main()
