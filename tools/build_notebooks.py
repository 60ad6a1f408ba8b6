"""Execute the tutorials and write them as notebooks with their outputs and figures.

Each percent script in ``tutorials/`` is read with jupytext, run top to bottom in
a fresh kernel of this Python (at full size unless ``--small``), and written to
``notebooks/<name>.ipynb`` (git ignores that folder). The kernel's working
directory and temporary folder are a scratch directory that is deleted at the
end, so nothing a tutorial writes lands in the repository. A notebook that fails
is still written, with the traceback in the failing cell; the others still run,
and the exit status is 1.

    python tools/build_notebooks.py                      # all tutorials, full size
    python tools/build_notebooks.py tutorials/encoders.py --small
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNEL_NAME = "python3"
UMASK = os.umask(0o022)
os.umask(UMASK)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "tutorials",
        nargs="*",
        type=Path,
        help="percent scripts to run (default: every tutorials/*.py)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "notebooks",
        help="folder for the executed notebooks (default: notebooks/)",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=3600,
        help="seconds one cell may run before the notebook counts as failed (default: 3600)",
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="run with NEURO_TUTORIAL_SMALL=1, the test suite's quick settings",
    )
    return parser.parse_args(argv)


def write_atomically(notebook, path: Path) -> None:
    """Write `notebook` to `path` through a temporary file in the same folder."""
    import nbformat

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".ipynb.tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(notebook, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes it private; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def build_kernel(scratch: Path):
    """Make kernel `python3` this interpreter, ahead of any user-wide `python3` kernel."""
    from ipykernel.kernelspec import write_kernel_spec

    jupyter_dir = scratch / "jupyter"
    # The kernel's own log (a warning about local TCP at every start) would break
    # up the progress lines; errors still show, and cell output goes to the notebook.
    write_kernel_spec(
        jupyter_dir / "kernels" / KERNEL_NAME, extra_arguments=["--IPKernelApp.log_level=ERROR"]
    )
    previous = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(jupyter_dir), previous]))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = previous


def kernel_env(tmpdir: Path, small: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env["TMPDIR"] = str(tmpdir)
    if small:
        env["NEURO_TUTORIAL_SMALL"] = "1"
    else:
        env.pop("NEURO_TUTORIAL_SMALL", None)
    return env


def failure_reason(exc: BaseException) -> str:
    name = getattr(exc, "ename", None) or type(exc).__name__
    value = getattr(exc, "evalue", None)
    if value is None:
        value = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{name}: {value}" if value else name


def run_one(script: Path, out_dir: Path, scratch: Path, args: argparse.Namespace) -> str | None:
    """Execute one tutorial and write its notebook; return why it failed, or None."""
    import jupytext
    from nbclient import NotebookClient

    workdir = scratch / script.stem
    (workdir / "tmp").mkdir(parents=True)
    notebook = jupytext.read(script)
    client = NotebookClient(
        notebook,
        timeout=args.timeout,
        startup_timeout=180,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(workdir)}},
    )
    reason = None
    try:
        client.execute(env=kernel_env(workdir / "tmp", args.small))
    except Exception as exc:  # a failing notebook must not stop the others
        reason = failure_reason(exc)
    write_atomically(notebook, out_dir / f"{script.stem}.ipynb")
    return reason


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import ipykernel  # noqa: F401
        import jupytext  # noqa: F401
        import nbclient  # noqa: F401
    except ImportError as exc:
        print(f"{exc}; install the notebooks extra: pip install -e '.[notebooks]'", file=sys.stderr)
        return 2

    scripts = args.tutorials or sorted((ROOT / "tutorials").glob("*.py"))
    missing = [str(s) for s in scripts if not s.is_file()] or (
        [] if scripts else ["tutorials/*.py"]
    )
    if missing:
        print(f"no such tutorial: {', '.join(missing)}", file=sys.stderr)
        return 2
    out_dir = args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    size = "small (NEURO_TUTORIAL_SMALL=1)" if args.small else "full"
    print(f"Executing {len(scripts)} tutorial(s) at {size} size into {out_dir}", flush=True)

    failed = []
    with (
        tempfile.TemporaryDirectory(prefix="neuro-notebooks-", ignore_cleanup_errors=True) as tmp,
        build_kernel(Path(tmp)),
    ):
        scratch = Path(tmp)
        width = max(len(s.stem) for s in scripts)
        for i, script in enumerate(scripts, 1):
            print(f"[{i}/{len(scripts)}] {script.stem:<{width}} ", end="", flush=True)
            start = time.perf_counter()
            reason = run_one(script, out_dir, scratch, args)
            elapsed = time.perf_counter() - start
            status = "OK" if reason is None else f"FAILED ({reason})"
            print(f"{elapsed:7.1f} s  {status}", flush=True)
            if reason is not None:
                failed.append(script.stem)

    if failed:
        print(f"{len(failed)} of {len(scripts)} failed: {', '.join(failed)}", file=sys.stderr)
        print(f"the failing cell's traceback is in {out_dir}/<name>.ipynb", file=sys.stderr)
        return 1
    print(f"All {len(scripts)} notebooks written to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
