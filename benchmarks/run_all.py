"""Run every benchmark, each in its own process, and print one summary table.

``make bench`` runs this at the benchmarks' real sizes (which takes a while on
a CPU); ``--quick`` runs each one's small setting. Each benchmark prints its
own tables as it goes; the summary at the end has one row per headline figure
(module, benchmark, figure, peer, ratio = our time / the peer's, < 1 is
faster). ``--json PATH`` writes every benchmark's JSON (tables, settings,
environment) into one file. The benchmarks with a numpy peer unset
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` for themselves (see
``benchmarks/_common.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from _common import Col, format_table

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = (
    "ridge",
    "dendrites",
    "connectome",
    "rnn",
    "trainer",
    "fmri_hdf5",
    "nsd_scale",
    "encoders_deep",
    "neuroformer",
    "snn",
    "rl",
    "brain3d",
)


def run_benchmarks(
    names,
    device: str,
    *,
    quick: bool = False,
    repeat: int | None = None,
    extra: dict[str, list[str]] | None = None,
    timeouts: dict[str, float] | None = None,
    keep_blas_env: bool = False,
) -> list[dict]:
    """Run each benchmark script; return one result per script.

    A result holds ``name``, ``status`` ("ok", "failed (rc N)" or "timeout after
    N s"), ``seconds`` and, when the script wrote it, its JSON (``report``).
    """
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            out = os.path.join(tmp, f"{name}.json")
            cmd = [sys.executable, os.path.join(HERE, f"{name}.py"), "--device", device]
            cmd += ["--json", out]
            if quick:
                cmd.append("--quick")
            if repeat is not None:
                cmd += ["--repeat", str(repeat)]
            if keep_blas_env and name in (
                "ridge",
                "dendrites",
                "connectome",
                "fmri_hdf5",
                "nsd_scale",
                "encoders_deep",
            ):
                cmd.append("--keep-blas-env")
            cmd += (extra or {}).get(name, [])
            limit = (timeouts or {}).get(name)
            print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
            start = time.perf_counter()
            try:
                rc = subprocess.run(cmd, timeout=limit).returncode
                status = "ok" if rc == 0 else f"failed (rc {rc})"
            except subprocess.TimeoutExpired:
                status = f"timeout after {limit:.0f} s"
            seconds = time.perf_counter() - start
            report = None
            if status == "ok" and os.path.exists(out):
                with open(out) as f:
                    report = json.load(f)
            results.append({"name": name, "status": status, "seconds": seconds, "report": report})
    return results


def summary_rows(results: list[dict]) -> list[dict]:
    """One row per headline figure (or per failed benchmark)."""
    rows = []
    for res in results:
        if res["report"] is None:
            rows.append({"module": res["name"], "benchmark": res["status"]})
            continue
        for row in res["report"]["summary"]:
            rows.append({"module": res["name"], **row})
    return rows


SUMMARY_COLUMNS = [
    Col("module", "module"),
    Col("benchmark", "benchmark"),
    Col("figure", "figure"),
    Col("peer", "peer"),
    Col("ratio", "ratio (time, <1 faster)", "{:.2f}"),
]


def print_summary(rows: list[dict], title: str) -> None:
    print(f"\n{title}")
    for line in format_table(SUMMARY_COLUMNS, rows):
        print(line)
    sys.stdout.flush()


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="each benchmark's small setting")
    p.add_argument("--repeat", type=int, default=None, help="best of N (default: each one's)")
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    p.add_argument("--json", metavar="PATH", help="write every benchmark's JSON into one file")
    p.add_argument("--keep-blas-env", action="store_true", help="do not unset the BLAS variables")
    args = p.parse_args(argv)
    start = time.perf_counter()
    results = run_benchmarks(
        args.only,
        args.device,
        quick=args.quick,
        repeat=args.repeat,
        keep_blas_env=args.keep_blas_env,
    )
    rows = summary_rows(results)
    total = time.perf_counter() - start
    print_summary(rows, f"Summary ({args.device}, {'quick' if args.quick else 'full'} sizes)")
    print(f"{len(results)} benchmarks in {total:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "summary": rows, "seconds": total}, f, indent=1)
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
