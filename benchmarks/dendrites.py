"""Speed of the dendrite theory and simulation on the paper's figure sweeps.

Theory: each sweep of :func:`neuro.dendrites.paper_sweeps` (every parameter
point of a figure) is computed three ways in the same run:

* ``neuro log-space``: the vectorised log-space path (``exact=False``);
* ``neuro exact``: neuro's integer path (``exact=True``), point by point;
* ``peer``: a plain transcription of the paper's equation in exact big-integer
  arithmetic (``math.comb`` and ``fractions.Fraction``), point by point,

with the largest relative difference of each from the peer.

Simulation: Monte Carlo estimates at points of each sweep (where the
probability is large enough to estimate), neuro's batched torch sampler against
a per-trial NumPy loop in the style of the authors' code (``rng.choice`` for
each pattern), in trials per second. Run:

    python benchmarks/dendrites.py [--trials 20000] [--sim-points 4] [--device auto]
"""

from __future__ import annotations

import argparse
import math
import time
from fractions import Fraction

import numpy as np

from neuro.dendrites import (
    false_match_probability,
    noise_match_probability,
    paper_sweeps,
    simulate_false_match,
    simulate_noise_match,
    simulate_union_false_match,
    union_false_match_probability,
)
from neuro.train import resolve_device


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


def _timed(func, repeat: int = 1):
    best, result = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20_000, help="Monte Carlo trials per point")
    parser.add_argument("--sim-points", type=int, default=4, help="simulated points per sweep")
    parser.add_argument("--peer-trials", type=int, default=2_000, help="trials of the NumPy loop")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many for the fast path")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    sweeps = paper_sweeps()

    print(f"Theory: full figure sweeps (device-independent, numpy; best of {args.repeat})")
    header = f"{'sweep':<11}{'points':>7}  {'method':<26}{'total s':>10}{'per point':>12}{'max rel diff':>14}"
    print(header)
    print("-" * len(header))
    totals = {"neuro log-space": 0.0, "neuro exact": 0.0, "peer comb+Fraction": 0.0}
    total_points = 0
    for name, grid in sweeps.items():
        t_peer, ref = _timed(lambda name=name, grid=grid: peer_sweep(name, grid))
        t_fast, fast = _timed(
            lambda name=name, grid=grid: neuro_sweep(name, grid, False), args.repeat
        )
        t_exact, exact = _timed(lambda name=name, grid=grid: neuro_sweep(name, grid, True))
        points = ref.size
        total_points += points
        for method, t, values in (
            ("neuro log-space", t_fast, fast),
            ("neuro exact", t_exact, exact),
            ("peer comb+Fraction", t_peer, ref),
        ):
            totals[method] += t
            diff = "reference" if values is ref else f"{_rel_diff(values, ref):.1e}"
            print(
                f"{name:<11}{points:>7}  {method:<26}{t:>10.4f}{t / points * 1e6:>10.1f}us{diff:>14}"
            )
    for method, t in totals.items():
        print(
            f"{'all':<11}{total_points:>7}  {method:<26}{t:>10.4f}{t / total_points * 1e6:>10.1f}us"
        )
    speedup = totals["peer comb+Fraction"] / totals["neuro log-space"]
    print(f"log-space vs peer: {speedup:.0f}x faster over all sweeps")

    print()
    print(
        f"Simulation: {args.trials} trials per point on {device} (torch threads: "
        f"{__import__('torch').get_num_threads()})"
    )
    header = f"{'sweep':<11}{'point':<42}{'time s':>8}{'trials/s':>12}{'estimate':>10}{'theory':>10}  in 99.9% CI"
    print(header)
    print("-" * len(header))
    sim_time, sim_trials = 0.0, 0
    for name, grid in sweeps.items():
        if name == "threshold":
            grid = {k: np.asarray(v)[..., 2] for k, v in grid.items()}  # theta = 3
        for i, point in enumerate(_sim_points(name, grid, args.sim_points, args.trials)):
            t, r = _timed(
                lambda name=name, point=point, i=i: _simulate(
                    name, point, args.trials, str(device), i
                )
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
            print(
                f"{name:<11}{label:<42}{t:>8.3f}{args.trials / t:>12.0f}{r.estimate:>10.4f}"
                f"{float(theory):>10.4f}  {'yes' if r.contains(float(theory)) else 'NO'}"
            )
    print(f"{'all':<11}{'':<42}{sim_time:>8.3f}{sim_trials / sim_time:>12.0f}")
    t_peer, est = _timed(lambda: peer_simulate_false_match(300, 128, 24, 12, args.peer_trials))
    t_neuro, r = _timed(
        lambda: simulate_false_match(300, 128, 24, 12, trials=args.trials, device=str(device))
    )
    print(
        f"paper's reference setting n=300, a=128, s=24, theta=12 (theory 0.29208): "
        f"neuro {args.trials / t_neuro:.0f} trials/s (estimate {r.estimate:.4f}), "
        f"peer NumPy per-trial loop {args.peer_trials / t_peer:.0f} trials/s (estimate {est:.4f}); "
        f"{(args.trials / t_neuro) / (args.peer_trials / t_peer):.0f}x"
    )


if __name__ == "__main__":
    main()
