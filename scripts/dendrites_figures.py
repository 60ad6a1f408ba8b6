"""Reproduce the main figures of Ahmad & Hawkins (2016) on sparse patterns and dendrites.

Writes into --out, as PNG figures with a CSV of the numbers behind each:

1. ``error_vs_n``: false-match probability against the population size n,
   for a = 64, 128, 256 active cells (s = 24, theta = 12);
2. ``error_vs_a``: the same against the number of active cells a, for
   n = 1000, 2000, 4000;
3. ``union``: false-match rate of a segment storing M patterns (union
   property) in the paper's s_M form, its exact expectation and the
   union-of-inputs variant;
4. ``noise``: probability that a segment still recognises its pattern when a
   fraction of the pattern's cells is replaced, for theta = 8, 12, 16, 20;
5. ``threshold``: the median false-match rate over the authors' grid for each
   threshold (below 1e-7 from theta = 8 on) and the optimal threshold against
   noise.

Theory curves come from :mod:`neuro.dendrites.theory`; points with 99.9%
confidence intervals from Monte Carlo (:mod:`neuro.dendrites.simulate`),
where the probability is large enough to be estimated with --trials trials.

    python scripts/dendrites_figures.py --out runs/dendrite_figures [--trials 10000]
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
import time
from pathlib import Path

import numpy as np

from neuro.dendrites import (
    false_match_probability,
    log_false_match_probability,
    noise_match_probability,
    optimal_threshold,
    paper_sweeps,
    simulate_false_match,
    simulate_noise_match,
    simulate_union_false_match,
    union_false_match_probability,
)
from neuro.io import atomic_write_text, prepare_output_dir
from neuro.plotting import new_figure, save_figure

COLUMNS = ["series", "x", "theory", "simulated", "ci_low", "ci_high", "trials"]


def _write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in COLUMNS})
    atomic_write_text(path, buf.getvalue())


class Simulator:
    """Runs the Monte Carlo points of every figure with shared settings."""

    def __init__(self, trials: int, device: str, seed: int) -> None:
        self.trials, self.device, self.seed = trials, device, seed
        self.points = 0

    def worth_it(self, p: float) -> bool:
        # at least about 30 expected events, and not a certainty
        return self.trials > 0 and 30 / self.trials <= p <= 1 - 30 / self.trials

    def __call__(self, func, *args) -> dict:
        self.points += 1
        r = func(*args, trials=self.trials, device=self.device, seed=self.seed + self.points)
        return {
            "simulated": r.estimate,
            "ci_low": r.ci_low,
            "ci_high": r.ci_high,
            "trials": r.trials,
        }


def _errorbars(ax, xs, rows, color):
    sims = [(x, r) for x, r in zip(xs, rows, strict=True) if "simulated" in r]
    if not sims:
        return
    x = np.array([x for x, _ in sims], dtype=float)
    y = np.array([r["simulated"] for _, r in sims])
    err = np.array([[r["simulated"] - r["ci_low"], r["ci_high"] - r["simulated"]] for _, r in sims])
    ax.errorbar(x, y, yerr=err.T, fmt="o", ms=4, color=color, capsize=2)


def figure_error_vs_n(out: Path, sim: Simulator) -> None:
    grid = paper_sweeps()["error_vs_n"]
    p = false_match_probability(**grid)
    fig, axes = new_figure(size=(5.0, 3.8))
    ax = axes[0, 0]
    rows = []
    sim_n = [300, 400, 500, 700, 1000, 1500]
    for i, a in enumerate(grid["a"][:, 0]):
        n = grid["n"][i]
        line = ax.semilogy(n, p[i], label=f"a = {a}")[0]
        for nn, pp in zip(n, p[i], strict=True):
            rows.append({"series": f"a={a}", "x": int(nn), "theory": pp})
        pts = []
        for nn in sim_n:
            if nn >= a:
                pp = float(false_match_probability(nn, a, 24, 12))
                row = {"series": f"a={a} (simulated)", "x": nn, "theory": pp}
                if sim.worth_it(pp):
                    row |= sim(simulate_false_match, nn, int(a), 24, 12)
                    pts.append((nn, row))
                rows.append(row)
        _errorbars(ax, [x for x, _ in pts], [r for _, r in pts], line.get_color())
    ax.set(
        xlabel="cells in the population n",
        ylabel="false-match probability",
        title="False matches vs n (s = 24, θ = 12)",
        ylim=(1e-16, 1),
    )
    ax.legend()
    save_figure(fig, out / "error_vs_n.png")
    _write_csv(out / "error_vs_n.csv", rows)


def figure_error_vs_a(out: Path, sim: Simulator) -> None:
    grid = paper_sweeps()["error_vs_a"]
    p = false_match_probability(**grid)
    fig, axes = new_figure(size=(5.0, 3.8))
    ax = axes[0, 0]
    rows = []
    for i, n in enumerate(grid["n"][:, 0]):
        a = grid["a"][0]
        line = ax.semilogy(a, p[i], label=f"n = {n}")[0]
        rows += [
            {"series": f"n={n}", "x": int(x), "theory": y} for x, y in zip(a, p[i], strict=True)
        ]
        pts = []
        if n <= 2000:
            for aa in (100, 200, 300, 400, 600):
                pp = float(false_match_probability(n, aa, 24, 12))
                row = {"series": f"n={n} (simulated)", "x": aa, "theory": pp}
                if sim.worth_it(pp):
                    row |= sim(simulate_false_match, int(n), aa, 24, 12)
                    pts.append((aa, row))
                rows.append(row)
        _errorbars(ax, [x for x, _ in pts], [r for _, r in pts], line.get_color())
    ax.set(
        xlabel="active cells a",
        ylabel="false-match probability",
        title="False matches vs a (s = 24, θ = 12)",
        ylim=(1e-16, 1),
    )
    ax.legend()
    save_figure(fig, out / "error_vs_a.png")
    _write_csv(out / "error_vs_a.csv", rows)


def figure_union(out: Path, sim: Simulator) -> None:
    grid = paper_sweeps()["union"]
    m = grid["m"][0]
    fig, axes = new_figure(ncols=2, size=(5.0, 3.8))
    rows = []
    for variant, ax in zip(("synapses", "inputs"), axes[0], strict=True):
        p = union_false_match_probability(**grid, variant=variant)
        for i, n in enumerate(grid["n"][:, 0]):
            line = ax.semilogy(m, p[i], label=f"n = {n}")[0]
            rows += [
                {"series": f"{variant} n={n}", "x": int(x), "theory": y}
                for x, y in zip(m, p[i], strict=True)
            ]
            if variant == "synapses":
                expected = union_false_match_probability(n, 200, 25, 15, m[:12], variant="expected")
                ax.semilogy(m[:12], expected, ls=":", color=line.get_color())
                rows += [
                    {"series": f"expected n={n}", "x": int(x), "theory": y}
                    for x, y in zip(m[:12], expected, strict=True)
                ]
                pts = []
                for mm in (2, 3, 4, 6) if n == 1000 else ():
                    pp = float(
                        union_false_match_probability(n, 200, 25, 15, mm, variant="expected")
                    )
                    row = {"series": f"expected n={n} (simulated)", "x": mm, "theory": pp}
                    if sim.worth_it(pp):
                        row |= sim(simulate_union_false_match, int(n), 200, 25, 15, mm)
                        pts.append((mm, row))
                    rows.append(row)
                _errorbars(ax, [x for x, _ in pts], [r for _, r in pts], line.get_color())
        ax.set(xlabel="patterns stored M", ylabel="false-match probability", ylim=(1e-12, 1.5))
        ax.legend(fontsize=8)
    axes[0, 0].set_title("Union of synapses: s_M (solid), exact (dotted)", fontsize=9)
    axes[0, 1].set_title("Union of M input patterns (a_M active cells)", fontsize=9)
    save_figure(fig, out / "union.png")
    _write_csv(out / "union.csv", rows)


def figure_noise(out: Path, sim: Simulator) -> None:
    grid = paper_sweeps()["noise"]
    noise = grid["noise"][0]
    p = noise_match_probability(**grid)
    fig, axes = new_figure(size=(5.0, 3.8))
    ax = axes[0, 0]
    rows = []
    for i, theta in enumerate(grid["theta"][:, 0]):
        line = ax.plot(noise, p[i], label=f"θ = {theta}")[0]
        rows += [
            {"series": f"theta={theta}", "x": x, "theory": y}
            for x, y in zip(noise, p[i], strict=True)
        ]
        pts = []
        for nz in (0.25, 0.5, 0.625, 0.75):
            pp = float(noise_match_probability(2000, 128, 30, theta, nz))
            row = {"series": f"theta={theta} (simulated)", "x": nz, "theory": pp}
            if sim.worth_it(pp):
                row |= sim(simulate_noise_match, 2000, 128, 30, int(theta), nz)
                pts.append((nz, row))
            rows.append(row)
        _errorbars(ax, [x for x, _ in pts], [r for _, r in pts], line.get_color())
    ax.set(
        xlabel="fraction of the pattern's cells replaced",
        ylabel="match probability",
        title="Noise robustness (n = 2000, a = 128, s = 30)",
    )
    ax.legend()
    save_figure(fig, out / "noise.png")
    _write_csv(out / "noise.csv", rows)


def figure_threshold(out: Path) -> None:
    grid = paper_sweeps()["threshold"]
    width = grid["theta"].shape[-1]
    log10 = log_false_match_probability(**grid).reshape(-1, width) / math.log(10)
    log10 = np.maximum(log10, -1000.0)  # impossible matches (a < theta) count as 1e-1000
    thetas = grid["theta"].reshape(-1, width)[0]
    median = np.median(log10, axis=0)
    q10, q90 = np.percentile(log10, [10, 90], axis=0)
    fig, axes = new_figure(ncols=2, size=(5.0, 3.8))
    ax = axes[0, 0]
    ax.plot(thetas, median, "o-", label="median")
    ax.fill_between(thetas, q10, q90, alpha=0.25, label="10-90%")
    ax.axhline(-7, color="k", ls="--", lw=1)
    ax.set(
        xlabel="threshold θ",
        ylabel="log10 false-match probability",
        title="Authors' grid: n 1k-17k, 0.5-3% active, s 20-50",
        ylim=(-35, 0.5),
    )
    ax.title.set_fontsize(9)
    ax.legend()
    rows = [
        {"series": "median log10 P_fm", "x": int(t), "theory": v}
        for t, v in zip(thetas, median, strict=True)
    ]
    noise = np.linspace(0.0, 0.9, 37)
    ax = axes[0, 1]
    for n, a, s in ((2000, 40, 24), (2000, 128, 30), (16000, 512, 30), (100_000, 2000, 50)):
        best = optimal_threshold(n, a, s, noise)
        ax.step(noise, best, where="mid", label=f"n={n}, a={a}, s={s}")
        rows += [
            {"series": f"optimal theta n={n} a={a} s={s}", "x": x, "theory": int(b)}
            for x, b in zip(noise, best, strict=True)
        ]
    ax.set(
        xlabel="noise (fraction of cells replaced)",
        ylabel="optimal θ",
        title="θ minimising P_fm + P_fn",
    )
    ax.legend(fontsize=7)
    save_figure(fig, out / "threshold.png")
    _write_csv(out / "threshold.csv", rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs") / "dendrite_figures",
        help="output folder (refused if it holds files, unless --overwrite)",
    )
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    parser.add_argument(
        "--trials",
        type=int,
        default=10_000,
        help="Monte Carlo trials per simulated point (0: theory only)",
    )
    parser.add_argument("--device", default="auto", help="device of the simulations")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.trials < 0:
        parser.error(f"--trials must be >= 0; got {args.trials}")
    try:
        out = prepare_output_dir(args.out, overwrite=args.overwrite)
    except (FileExistsError, NotADirectoryError) as err:
        parser.error(str(err))
    sim = Simulator(args.trials, args.device, args.seed)
    start = time.perf_counter()
    for make in (figure_error_vs_n, figure_error_vs_a, figure_union, figure_noise):
        make(out, sim)
    figure_threshold(out)
    print(
        f"dendrites_figures: 5 figures with CSVs in {out} ({sim.points} simulated points x "
        f"{args.trials} trials, {time.perf_counter() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
