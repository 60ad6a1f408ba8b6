"""``scripts/dynamic_connectome.py`` is ``neuro connectome``: same options, same errors."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "dynamic_connectome.py"


def _run(*args, cwd):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_help_is_the_commands(tmp_path):
    run = _run("--help", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: neuro connectome")
    assert "--traces" in run.stdout and "--sampling-rate" in run.stdout


def test_tiny_run_and_a_user_error(tmp_path):
    out = tmp_path / "run"
    args = ["--neurons", "24", "--frames", "400", "--animals", "2", "--rank", "2"]
    run = _run(
        *args, "--restarts", "1", "--no-figures", "--device", "cpu", "--out", str(out), cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert json.loads((out / "metrics.json").read_text())["rank"] == 2
    assert (out / "model.pt").exists() and "ARI of all communities" in run.stdout
    bad = _run("--traces", str(tmp_path / "absent.h5"), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        f"neuro connectome: error: --traces: no such file: {str(tmp_path / 'absent.h5')!r}."
    )
