"""``neuro dendrites``: every number of the theory for one dendritic segment.

Given a population of ``--n`` cells, patterns of ``--a`` active cells and a
segment with ``--s`` synapses and threshold ``--theta``, it prints the number
of patterns, the false-match probability, the false-match rate with ``--m``
stored patterns (union property), the match probability when a fraction
``--noise`` of the pattern's cells is replaced, and the optimal thresholds;
with ``--simulate TRIALS`` it also estimates the probabilities by Monte Carlo,
with confidence intervals. Everything goes into ``metrics.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro dendrites``."""
    parser.add_argument("--n", type=int, required=True, help="cells in the population")
    parser.add_argument("--a", type=int, required=True, help="active cells per pattern")
    parser.add_argument("--s", type=int, required=True, help="synapses on the segment")
    parser.add_argument("--theta", type=int, required=True, help="segment (NMDA) threshold")
    parser.add_argument("--m", type=int, default=1, help="patterns stored on the segment")
    parser.add_argument(
        "--noise",
        type=float,
        default=0.0,
        help="fraction of the stored pattern's active cells replaced by noise, in [0, 1]",
    )
    parser.add_argument(
        "--simulate",
        type=int,
        default=0,
        metavar="TRIALS",
        help="also estimate the probabilities from this many Monte Carlo trials each",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="simulated trials per batch (memory grows as batch size x n); default: automatic",
    )
    parser.add_argument(
        "--exact",
        choices=("auto", "yes", "no"),
        default="auto",
        help="exact integer arithmetic (yes), log-space sums (no), or the automatic choice",
    )


def _fmt(p: float, log10: float | None = None) -> str:
    if p == 0.0 and log10 is not None and math.isfinite(log10):
        return f"10^{log10:.2f}"
    return f"{p:.6g}"


def run(args: argparse.Namespace) -> int:
    """Entry point of ``neuro dendrites``."""
    from neuro._validation import check_int
    from neuro.dendrites.simulate import (
        simulate_false_match,
        simulate_noise_match,
        simulate_union_false_match,
    )
    from neuro.dendrites.theory import theory_summary, union_false_match_probability
    from neuro.io import atomic_write_json

    exact = {"auto": None, "yes": True, "no": False}[args.exact]
    check_int("--simulate", args.simulate, minimum=0)
    summary = theory_summary(
        args.n, args.a, args.s, args.theta, m=args.m, noise=args.noise, exact=exact
    )
    summary["union_false_match_probability_expected"] = float(
        union_false_match_probability(
            args.n, args.a, args.s, args.theta, args.m, variant="expected"
        )
    )
    rows = [
        ("patterns C(n, a)", f"10^{summary['log10_num_patterns']:.2f}"),
        (
            "false-match probability",
            _fmt(summary["false_match_probability"], summary["log10_false_match_probability"]),
        ),
        (f"union synapses s_M (m={args.m})", str(summary["union_synapses"])),
        (
            "union false-match probability (s_M)",
            _fmt(
                summary["union_false_match_probability"],
                summary["log10_union_false_match_probability"],
            ),
        ),
        (
            "union false-match (expected size)",
            _fmt(summary["union_false_match_probability_expected"]),
        ),
    ]
    if "noise_match_probability" in summary:
        rows += [
            ("cells moved by noise v", str(summary["noise_cells_moved"])),
            ("match probability under noise", _fmt(summary["noise_match_probability"])),
            ("false-negative probability", _fmt(summary["false_negative_probability"])),
            ("optimal threshold (min total error)", str(summary.get("optimal_threshold", "-"))),
            (
                "smallest theta with P_fm <= 1e-7",
                str(summary.get("min_threshold_false_match_1e-7", "-")),
            ),
        ]
    lines = [
        f"neuro dendrites: n={args.n}, a={args.a}, s={args.s}, theta={args.theta}, "
        f"m={args.m}, noise={args.noise}",
        *(f"  {label:<40s}{value}" for label, value in rows),
    ]
    if "noise_match_probability" not in summary:
        lines.append("  (noise quantities need s <= a: the segment samples the pattern's cells)")

    metrics: dict = {"theory": summary}
    if args.simulate:
        options = {
            "trials": args.simulate,
            "batch_size": args.batch_size,
            "device": args.device,
            "seed": args.seed,
            "verbose": args.verbose - 1 if args.verbose else 0,
        }
        sims = {
            "false_match_probability": simulate_false_match(
                args.n, args.a, args.s, args.theta, **options
            ),
            "union_false_match_probability_expected": simulate_union_false_match(
                args.n, args.a, args.s, args.theta, args.m, **options
            ),
        }
        if "noise_match_probability" in summary and args.n - args.a >= summary["noise_cells_moved"]:
            sims["noise_match_probability"] = simulate_noise_match(
                args.n, args.a, args.s, args.theta, args.noise, **options
            )
        metrics["simulation"] = {k: r.to_dict() for k, r in sims.items()}
        lines.append(f"  simulation ({args.simulate} trials each, 99.9% Clopper-Pearson CI):")
        for key, r in sims.items():
            inside = "inside" if r.contains(summary[key]) else "OUTSIDE"
            lines.append(
                f"    {key:<40s} {r.estimate:.6g}  [{r.ci_low:.4g}, {r.ci_high:.4g}]  "
                f"theory {inside}"
            )
    atomic_write_json(args.out / "metrics.json", metrics)
    lines.append(f"  written to {args.out / 'metrics.json'}")
    print("\n".join(lines))
    return 0
