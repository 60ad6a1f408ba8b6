"""What every benchmark script shares: options, fair BLAS, timing, the table, JSON.

Every script takes ``--device``, ``--quick`` (a small setting that finishes in
seconds), ``--repeat N`` (each timing is repeated and the best kept) and
``--json PATH`` (the tables, the settings and the environment as JSON), and
prints its tables with :meth:`Report.table`.

Fair BLAS
---------
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` hold numpy's OpenBLAS to an
older, slower kernel. A script that times a numpy-based peer calls
:func:`fair_blas` first: where either variable is set, it runs itself again
without them (``os.execve``), so the peer runs at its best; its subprocesses
inherit that environment (:func:`fair_env`). ``--keep-blas-env`` keeps them.
This only ever happens in the benchmark's own command, never in tests or CI.
The report prints which BLAS and kernel numpy and torch run (``threadpoolctl``
and ``torch.__config__``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

FAIR_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
HERE = os.path.dirname(os.path.abspath(__file__))
# set by fair_blas in the re-executed process: what was unset ("NAME=value;...")
_UNSET_MARK = "NEURO_BENCH_UNSET_BLAS"


# ----------------------------------------------------------------------------- options
def parser(description: str, *, repeat: int = 3, numpy_peer: bool = False):
    """An ``ArgumentParser`` with the shared options (see the module docstring)."""
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--quick", action="store_true", help="a small setting that runs in seconds")
    p.add_argument(
        "--repeat", type=int, default=repeat, help=f"best of N timings (default {repeat})"
    )
    p.add_argument("--json", metavar="PATH", help="also write tables, settings, environment")
    if numpy_peer:
        p.add_argument(
            "--keep-blas-env",
            action="store_true",
            help=f"do not unset {' and '.join(FAIR_BLAS_VARS)} for the numpy peers",
        )
    return p


def resolve(device: str):
    """The torch device for ``--device``; exits with one line when it is not here."""
    from neuro.train import resolve_device

    try:
        return resolve_device(device)
    except ValueError as err:
        sys.exit(f"{os.path.basename(sys.argv[0])}: {err}")


# ----------------------------------------------------------------------------- fair BLAS
def fair_env(keep: bool = False) -> dict[str, str]:
    """This process's environment without the variables that slow numpy's OpenBLAS."""
    env = dict(os.environ)
    if not keep:
        for name in FAIR_BLAS_VARS:
            env.pop(name, None)
    return env


def fair_blas(keep: bool = False) -> dict[str, str]:
    """Run this script again without :data:`FAIR_BLAS_VARS` if any is set (never returns then).

    Call it first in ``main``. Returns what was unset (name -> value), as told by
    the parent through the environment; empty if nothing was. Only a script run
    as ``python benchmarks/NAME.py`` re-executes itself; called from elsewhere
    (an imported ``main``), it leaves the process alone and says so.
    """
    present = {k: os.environ[k] for k in FAIR_BLAS_VARS if k in os.environ}
    main = sys.modules.get("__main__")
    is_script = os.path.dirname(os.path.abspath(getattr(main, "__file__", "") or "")) == HERE
    if present and not keep and not is_script:
        print(f"note: {', '.join(present)} left set (not run as a benchmark script)")
    elif present and not keep:
        env = fair_env()
        env[_UNSET_MARK] = ";".join(f"{k}={v}" for k, v in present.items())
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    told = os.environ.get(_UNSET_MARK, "")
    return dict(item.split("=", 1) for item in told.split(";") if "=" in item)


# ----------------------------------------------------------------------------- memory
def _status_mib(key: str) -> float | None:
    """A ``/proc/self/status`` memory field in MiB (None where there is none)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mib() -> float:
    """Resident set size now (MiB); the peak so far where the current one is unknown."""
    now = _status_mib("VmRSS")
    return now if now is not None else peak_mib()


def peak_mib() -> float:
    """Peak resident set size since the last :func:`reset_peak` (or the start), MiB."""
    hwm = _status_mib("VmHWM")
    if hwm is not None:
        return hwm
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS


def reset_peak() -> bool:
    """Reset the peak RSS to the current RSS (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- timing
def sync(device) -> None:
    """Wait for the device's queued work (CUDA), so that a timer reads real time."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


def best_of(fn: Callable[[], Any], repeat: int, device="cpu", warmup: int = 1):
    """``(best seconds, every time, last result)`` of ``fn()`` over ``repeat`` runs after ``warmup``."""
    result = None
    for _ in range(warmup):
        result = fn()
    sync(device)
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times), times, result


def time_training(loss_fn: Callable[[], Any], params, device, *, warmup: int, steps: int,
                  repeat: int) -> tuple[list[float], float]:  # fmt: skip
    """``(every time, last loss)`` of ``steps`` AdamW steps on ``loss_fn()``, best of ``repeat``.

    Each step is the loss, ``backward`` and an AdamW step (lr 1e-4, weight
    decay 0.01) on ``params``; ``warmup`` untimed steps come first.
    """
    import torch

    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)

    def step():
        loss = loss_fn()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(warmup):
        step()
    _, times, loss = best_of(lambda: [step() for _ in range(steps)][-1], repeat, device, 0)
    return times, float(loss.detach())


# ----------------------------------------------------------------------------- environment
def _torch_config() -> dict[str, Any]:
    import torch

    show = torch.__config__.show()
    info: dict[str, Any] = {"version": torch.__version__, "threads": torch.get_num_threads()}
    for line in show.splitlines():
        line = line.strip(" -")
        if "Math Kernel Library" in line or line.startswith("OpenBLAS"):
            info["blas_library"] = line
        for item in line.replace(":", ",").split(","):
            key, _, value = item.strip().partition("=")
            if key in ("BLAS_INFO", "LAPACK_INFO"):
                info[key.lower()] = value
        if line.startswith("CPU capability usage"):
            info["cpu_capability"] = line.split(":", 1)[1].strip()
    parallel = torch.__config__.parallel_info()
    for line in parallel.splitlines():
        if line.startswith("ATen parallel backend"):
            info["parallel_backend"] = line.split(":", 1)[1].strip()
    return info


def _numpy_blas() -> list[dict[str, Any]]:
    import numpy  # noqa: F401  (loads the BLAS that threadpoolctl reports)

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("internal_api", "version", "architecture", "corename", "num_threads", "filepath")
    pools = []
    for pool in threadpool_info():
        if pool.get("user_api") != "blas":
            continue
        info = {k: pool[k] for k in keys if pool.get(k) is not None}
        # whose copy: numpy's wheel, scipy's wheel, torch's, or the system's
        path = info.get("filepath", "")
        info["owner"] = next(
            (o for o in ("numpy", "scipy", "torch") if f"{o}.libs" in path or f"/{o}/" in path),
            "system",
        )
        pools.append(info)
    return pools


def environment(device=None, unset: dict[str, str] | None = None) -> dict[str, Any]:
    """Versions, CPU, threads and BLAS of numpy and torch, and the device in use."""
    import numpy as np
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "numpy_blas": _numpy_blas(),
        "torch": _torch_config(),
        "blas_vars": {k: os.environ.get(k) for k in FAIR_BLAS_VARS},
        "blas_vars_unset_by_benchmark": unset or {},
        "thread_vars": {
            k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ
        },
    }
    if device is not None:
        env["device"] = str(device)
        if torch.device(device).type == "cuda":
            props = torch.cuda.get_device_properties(device)
            env["cuda"] = {
                "name": props.name,
                "memory_gib": round(props.total_memory / 2**30, 1),
                "capability": f"{props.major}.{props.minor}",
                "torch_cuda": torch.version.cuda,
            }
    return env


def blas_lines(env: dict[str, Any]) -> list[str]:
    """One line each for numpy's and torch's BLAS (library, version, kernel, threads)."""
    lines = []
    pools = env["numpy_blas"] or [{"internal_api": "unknown (threadpoolctl missing)"}]
    for pool in pools:
        kernel = pool.get("architecture") or pool.get("corename") or "?"
        owner = pool.get("owner", "numpy")
        owner = f"numpy {env['numpy']}" if owner == "numpy" else f"{owner}'s copy"
        lines.append(
            f"{owner}: {pool.get('internal_api')} {pool.get('version', '')}, "
            f"kernel {kernel}, {pool.get('num_threads', '?')} threads"
        )
    unset = env["blas_vars_unset_by_benchmark"]
    state = ", ".join(f"{k}={v if v is not None else 'unset'}" for k, v in env["blas_vars"].items())
    note = f" (unset by this benchmark: {', '.join(unset)})" if unset else ""
    lines.append(f"  {state}{note}")
    t = env["torch"]
    library = t.get("blas_library", "")
    if "Math Kernel Library Version" in library:
        library = "MKL " + library.split("Version", 1)[1].split()[0].split("-")[0]
    lines.append(
        f"torch {t['version']}: BLAS {t.get('blas_info', '?')} ({library or '?'}), "
        f"{t['threads']} threads ({t.get('parallel_backend', '?')}), "
        f"CPU capability {t.get('cpu_capability', '?')}"
    )
    if "cuda" in env:
        c = env["cuda"]
        lines.append(
            f"device {env['device']}: {c['name']}, {c['memory_gib']} GiB, "
            f"compute capability {c['capability']}, CUDA {c['torch_cuda']}"
        )
    return lines


# ----------------------------------------------------------------------------- the table
@dataclass
class Col:
    """A table column: ``key`` in the row dicts, ``header``, and a format for numbers."""

    key: str
    header: str
    fmt: str | Callable[[Any], str] = "{:.3g}"


def _cell(value, fmt) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return fmt(value) if callable(fmt) else fmt.format(value)


def format_table(columns: Sequence[Col], rows: Sequence[dict]) -> list[str]:
    """The lines of a plain-text table: text left-aligned, numbers right-aligned."""
    cells = [[_cell(r.get(c.key), c.fmt) for c in columns] for r in rows]
    numeric = [
        all(isinstance(r.get(c.key), (int, float)) or r.get(c.key) is None for r in rows)
        for c in columns
    ]
    widths = [max([len(c.header), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]

    def line(values):
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return [line([c.header for c in columns]), line(["-" * w for w in widths])] + [
        line(row) for row in cells
    ]


def _plain(value):
    """``value`` as something ``json`` writes (numpy and torch scalars become numbers)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# ----------------------------------------------------------------------------- the report
@dataclass
class Report:
    """Collects what a benchmark prints, then writes it as JSON (``--json``).

    ``summary`` rows (``benchmark``, ``figure``, ``peer``, ``ratio``) are the
    headline figures that ``benchmarks/run_all.py`` and ``gpu_check.py`` gather.
    """

    name: str
    args: argparse.Namespace
    device: Any = None
    unset: dict[str, str] = field(default_factory=dict)
    tables: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)
    env: dict = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def header(self, settings: str) -> None:
        """Print the settings and the BLAS of both sides."""
        self.env = environment(self.device, self.unset)
        print(f"{self.name}: {settings}")
        for line in blas_lines(self.env):
            print(line)
        sys.stdout.flush()

    def table(self, columns: Sequence[Col], rows: Sequence[dict], title: str | None = None):
        """Print one table (and keep it for the JSON)."""
        if title:
            print(f"\n{title}")
        for line in format_table(columns, rows):
            print(line)
        sys.stdout.flush()
        self.tables.append(
            {
                "title": title,
                "columns": [{"key": c.key, "header": c.header} for c in columns],
                "rows": [dict(r) for r in rows],
            }
        )

    def note(self, text: str) -> None:
        print(text, flush=True)
        self.notes.append(text)

    def add_summary(self, benchmark: str, figure: str, peer: str, ratio: float | None) -> None:
        """A headline row: our figure, the peer's, and ours / peer's (time ratio: < 1 is faster)."""
        self.summary.append(
            {"benchmark": benchmark, "figure": figure, "peer": peer, "ratio": ratio}
        )

    def finish(self) -> None:
        """Write the JSON file if ``--json`` was given."""
        path = getattr(self.args, "json", None)
        if not path:
            return
        settings = {k: v for k, v in vars(self.args).items() if not k.startswith("_")}
        doc = {
            "benchmark": self.name,
            "settings": settings,
            "environment": self.env or environment(self.device, self.unset),
            "tables": self.tables,
            "notes": self.notes,
            "summary": self.summary,
            "wall_seconds": time.perf_counter() - self.started,
        }
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(_plain(doc), f, indent=1)
