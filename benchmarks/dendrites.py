"""Speed of the dendrite theory and simulation on the paper's figure sweeps.

Theory: each sweep of :func:`neuro.dendrites.paper_sweeps` (every parameter
point of a figure; ``--quick``: ``--quick-points`` of each) is computed three
ways in the same run:

* ``neuro log-space``: the vectorised log-space path (``exact=False``);
* ``neuro exact``: neuro's integer path (``exact=True``), point by point;
* ``peer``: a plain transcription of the paper's equation in exact big-integer
  arithmetic (``math.comb`` and ``fractions.Fraction``), point by point,

with the largest relative difference of each from the peer. The theory runs in
numpy and Python on the CPU whatever ``--device``.

Simulation: Monte Carlo estimates at points of each sweep (where the
probability is large enough to estimate), neuro's batched torch sampler on
``--device``, and at the paper's reference setting against a per-trial NumPy
loop in the style of the authors' code (``rng.choice`` for each pattern), in
trials per second. Every time is the best of ``--repeat``; the NumPy peer runs
with numpy's OpenBLAS at its best (see ``benchmarks/_common.py``).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from _common import Col, Report, best_of, fair_blas, parser, resolve

from neuro.dendrites import (
    false_match_probability,
    noise_match_probability,
    paper_sweeps,
    simulate_false_match,
    simulate_noise_match,
    simulate_union_false_match,
    union_false_match_probability,
)


# ----------------------------------------------------------------------------- peer
def peer_false_match(n: int, a: int, s: int, theta: int) -> Fraction:
    """The paper's equation in exact arithmetic."""
    total = sum(math.comb(s, b) * math.comb(n - s, a - b) for b in range(theta, s + 1) if b <= a)
    return Fraction(total, math.comb(n, a))


def peer_noise_match(a: int, s: int, theta: int, v: int) -> Fraction:
    fn = sum(
        math.comb(s, b) * math.comb(a - s, v - b) for b in range(s - theta + 1, s + 1) if b <= v
    )
    return 1 - Fraction(fn, math.comb(a, v))


def peer_sweep(name: str, grid: dict) -> np.ndarray:
    keys = list(grid)
    arrays = np.broadcast_arrays(*(np.asarray(grid[k]) for k in keys))
    out = np.empty(arrays[0].size)
    for i, values in enumerate(zip(*(a.ravel() for a in arrays), strict=True)):
        p = dict(zip(keys, values, strict=True))
        n, a, s, theta = int(p["n"]), int(p["a"]), int(p["s"]), int(p["theta"])
        if name == "union":
            m = int(p["m"])
            s_m = math.floor(n * (1 - (1 - s / n) ** m) + 0.5)
            out[i] = float(peer_false_match(n, a, s_m, theta))
        elif name == "noise":
            v = math.floor(float(p["noise"]) * a + 0.5)
            out[i] = float(peer_noise_match(a, s, theta, v))
        else:
            out[i] = float(peer_false_match(n, a, s, theta))
    return out.reshape(arrays[0].shape)


def neuro_sweep(name: str, grid: dict, exact: bool) -> np.ndarray:
    if name == "union":
        return union_false_match_probability(**grid, exact=exact)
    if name == "noise":
        return noise_match_probability(**grid, exact=exact)
    return false_match_probability(**grid, exact=exact)


def subsample(grid: dict, points: int) -> dict:
    """``points`` points spread over the grid, as flat arrays."""
    keys = list(grid)
    arrays = np.broadcast_arrays(*(np.asarray(grid[k]) for k in keys))
    pick = np.unique(np.linspace(0, arrays[0].size - 1, min(points, arrays[0].size)).astype(int))
    return {k: a.ravel()[pick] for k, a in zip(keys, arrays, strict=True)}


def _rel_diff(x: np.ndarray, ref: np.ndarray) -> float:
    both = (ref > 0) & (ref >= 1e-300)
    zero_ok = np.all((x[ref == 0] == 0) | (x[ref == 0] < 1e-300))
    rel = np.abs(x[both] / ref[both] - 1)
    return float(rel.max()) if zero_ok else float("inf")


# ----------------------------------------------------------------------------- simulation
def peer_simulate_false_match(n, a, s, theta, trials, seed=0):
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(trials):
        segment = np.zeros(n, dtype=bool)
        segment[rng.choice(n, s, replace=False)] = True
        hits += segment[rng.choice(n, a, replace=False)].sum() >= theta
    return hits / trials


def _sim_points(name: str, grid: dict, count: int, trials: int) -> list[dict]:
    keys = list(grid)
    arrays = np.broadcast_arrays(*(np.asarray(grid[k]) for k in keys))
    p = neuro_sweep(name, grid, exact=False).ravel()
    ok = np.flatnonzero((p >= 30 / trials) & (p <= 1 - 30 / trials))
    if name == "noise":  # room outside the pattern for the moved cells
        ok = ok[np.floor(arrays[keys.index("noise")].ravel()[ok] * 128 + 0.5) <= 2000 - 128]
    picks = ok[np.linspace(0, ok.size - 1, min(count, ok.size)).astype(int)] if ok.size else []
    return [{k: arrays[j].ravel()[i].item() for j, k in enumerate(keys)} for i in picks]


def _simulate(name: str, point: dict, trials: int, device: str, seed: int):
    n, a, s, theta = (int(point[k]) for k in ("n", "a", "s", "theta"))
    opts = {"trials": trials, "device": device, "seed": seed}
    if name == "union":
        return simulate_union_false_match(n, a, s, theta, int(point["m"]), **opts)
    if name == "noise":
        return simulate_noise_match(n, a, s, theta, float(point["noise"]), **opts)
    return simulate_false_match(n, a, s, theta, **opts)


def main(argv=None) -> None:
    p = parser(__doc__.splitlines()[0], repeat=3, numpy_peer=True)
    p.add_argument("--trials", type=int, default=20_000, help="Monte Carlo trials per point")
    p.add_argument("--sim-points", type=int, default=4, help="simulated points per sweep")
    p.add_argument("--peer-trials", type=int, default=2_000, help="trials of the NumPy loop")
    p.add_argument("--quick-points", type=int, default=60, help="theory points per sweep, --quick")
    args = p.parse_args(argv)
    unset = fair_blas(args.keep_blas_env)
    device = resolve(args.device)
    if args.quick:
        args.trials, args.sim_points, args.peer_trials = 2000, 1, 200
    sweeps = paper_sweeps()
    if args.quick:
        sweeps = {k: subsample(g, args.quick_points) for k, g in sweeps.items()}

    import torch

    report = Report("dendrites", args, device, unset)
    report.header(
        f"theory on the CPU (numpy), simulation on {device} ({args.trials} trials per point, "
        f"torch threads {torch.get_num_threads()}); best of {args.repeat}"
        + (f"; --quick: {args.quick_points} theory points per sweep" if args.quick else "")
    )
    rows = []
    totals = {"neuro log-space": 0.0, "neuro exact": 0.0, "peer comb+Fraction": 0.0}
    total_points = 0
    for name, grid in sweeps.items():
        t_peer, _, ref = best_of(
            lambda name=name, grid=grid: peer_sweep(name, grid), args.repeat, warmup=0
        )
        t_fast, _, fast = best_of(
            lambda name=name, grid=grid: neuro_sweep(name, grid, False), args.repeat
        )
        t_exact, _, exact = best_of(
            lambda name=name, grid=grid: neuro_sweep(name, grid, True), args.repeat, warmup=0
        )
        points = ref.size
        total_points += points
        for method, t, values in (
            ("neuro log-space", t_fast, fast),
            ("neuro exact", t_exact, exact),
            ("peer comb+Fraction", t_peer, ref),
        ):
            totals[method] += t
            rows.append(
                {
                    "sweep": name,
                    "points": points,
                    "method": method,
                    "total_s": t,
                    "per_point_us": t / points * 1e6,
                    "max_rel_diff": "reference" if values is ref else _rel_diff(values, ref),
                }
            )
    for method, t in totals.items():
        rows.append(
            {
                "sweep": "all",
                "points": total_points,
                "method": method,
                "total_s": t,
                "per_point_us": t / total_points * 1e6,
            }
        )
    report.table(
        [
            Col("sweep", "sweep"),
            Col("points", "points", "{:d}"),
            Col("method", "method"),
            Col("total_s", "total s", "{:.4f}"),
            Col("per_point_us", "per point us", "{:.1f}"),
            Col("max_rel_diff", "max rel diff", "{:.1e}"),
        ],
        rows,
        title="Theory: figure sweeps (peer and exact point by point; no warm-up for them)",
    )
    ratio = totals["neuro log-space"] / totals["peer comb+Fraction"]
    report.note(f"log-space vs peer: {1 / ratio:.0f}x faster over all sweeps")
    report.add_summary(
        f"theory, {total_points} sweep points (log-space)",
        f"{totals['neuro log-space']:.4f} s",
        f"exact comb+Fraction {totals['peer comb+Fraction']:.3f} s",
        ratio,
    )

    rows = []
    sim_time, sim_trials = 0.0, 0
    for name, grid in sweeps.items():
        if name == "threshold":
            grid = {k: np.asarray(v)[..., 2] for k, v in grid.items()} if not args.quick else grid
        for i, point in enumerate(_sim_points(name, grid, args.sim_points, args.trials)):
            t, _, r = best_of(
                lambda name=name, point=point, i=i: _simulate(
                    name, point, args.trials, str(device), i
                ),
                args.repeat,
                device,
            )
            if name == "union":
                theory = union_false_match_probability(**point, variant="expected")
            else:
                theory = neuro_sweep(name, point, exact=False)
            sim_time += t
            sim_trials += args.trials
            label = ",".join(
                f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in point.items()
            )
            rows.append(
                {
                    "sweep": name,
                    "point": label,
                    "time_s": t,
                    "trials_per_s": args.trials / t,
                    "estimate": r.estimate,
                    "theory": float(theory),
                    "in_ci": "yes" if r.contains(float(theory)) else "NO",
                }
            )
    rows.append({"sweep": "all", "time_s": sim_time, "trials_per_s": sim_trials / sim_time})
    report.table(
        [
            Col("sweep", "sweep"),
            Col("point", "point"),
            Col("time_s", "time s", "{:.3f}"),
            Col("trials_per_s", "trials/s", "{:,.0f}"),
            Col("estimate", "estimate", "{:.4f}"),
            Col("theory", "theory", "{:.4f}"),
            Col("in_ci", "in 99.9% CI"),
        ],
        rows,
        title=f"Simulation on {device}: {args.trials} trials per point",
    )

    t_neuro, _, r = best_of(
        lambda: simulate_false_match(300, 128, 24, 12, trials=args.trials, device=str(device)),
        args.repeat,
        device,
    )
    t_peer, _, est = best_of(
        lambda: peer_simulate_false_match(300, 128, 24, 12, args.peer_trials), args.repeat
    )
    neuro_rate, peer_rate = args.trials / t_neuro, args.peer_trials / t_peer
    report.table(
        [
            Col("method", "method"),
            Col("trials", "trials", "{:d}"),
            Col("trials_per_s", "trials/s", "{:,.0f}"),
            Col("estimate", "estimate", "{:.4f}"),
        ],
        [
            {
                "method": f"neuro simulate_false_match ({device})",
                "trials": args.trials,
                "trials_per_s": neuro_rate,
                "estimate": r.estimate,
            },
            {
                "method": "peer NumPy per-trial loop",
                "trials": args.peer_trials,
                "trials_per_s": peer_rate,
                "estimate": est,
            },
        ],
        title="Paper's reference setting n=300, a=128, s=24, theta=12 (theory 0.29208)",
    )
    report.note(f"neuro / peer throughput: {neuro_rate / peer_rate:.0f}x")
    report.add_summary(
        "Monte Carlo n=300,a=128,s=24,theta=12",
        f"{neuro_rate:,.0f} trials/s",
        f"NumPy loop {peer_rate:,.0f} trials/s",
        peer_rate / neuro_rate,
    )
    report.finish()


if __name__ == "__main__":
    main()
