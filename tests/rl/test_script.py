"""``scripts/rl_predictive.py``: presets, a tiny run, outputs, overwrite, resume, bad flags."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rl_predictive.py"
TINY = ["--grid-size", "5", "--episodes", "2", "--transfer-episodes", "1", "--batch-size", "16"]
TINY += ["--latent-dim", "3", "--permutations", "0", "--device", "cpu", "--no-figures", "-q"]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("rl_predictive_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_is_cheap(tmp_path):
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "--preset {small,paper}" in run.stdout and "--overwrite" in run.stdout
    assert not list(tmp_path.iterdir())  # --help writes nothing


def test_presets(script):
    args = script.resolve(script.build_parser().parse_args([]))
    assert args.episodes == 40 and args.seeds == [0, 1] and args.gamma_p == [0.0, 0.8]
    assert args.objectives == ["model-free", "predictive"] and args.transfer
    paper = script.resolve(script.build_parser().parse_args(["--preset", "paper", "--seeds", "7"]))
    assert paper.grid_size == 8 and paper.episodes == 350 and paper.lr == 1e-4
    assert paper.encoder_size == ["small", "default", "large"]
    assert paper.objectives == ["model-free", "entropy", "predictive"]
    assert paper.gamma_p == [0.0, 0.25, 0.5, 0.8] and paper.seeds == [7]  # flags win
    # without predictive, the preset's horizons are not applied (nor refused)
    mf = script.resolve(script.build_parser().parse_args(["--objectives", "model-free"]))
    assert mf.gamma_p is None


def test_tiny_run_writes_and_refuses_overwrite(script, tmp_path, capsys):
    out = tmp_path / "run"
    assert script.main([*TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "claims (95% intervals over seeds)" in printed
    assert "(2 episodes, 2 seeds, a 5 x 5 grid) is smaller than" in printed  # it says so
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["preset"] == "small"
    assert "too few seeds" in metrics["settings"]["note"]
    assert list(metrics["configs"]) == ["model-free", "predictive_gp0", "predictive_gp0.8"]
    npz = np.load(out / "curves.npz", allow_pickle=False)
    assert npz["curves/model-free"].shape == (2, 2)
    assert npz["transfer_frozen/predictive_gp0.8"].shape == (2, 1)
    assert {v["key"]: v["verdict"] for v in metrics["verdicts"]}["transfer"] != "not run"
    assert (out / "models" / "predictive_gp0.8_seed1.pt").is_file()
    # refused without --overwrite, before any training
    assert script.main([*TINY, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rl_predictive: error:") and "--overwrite" in err
    assert err.count("\n") == 1
    # resume of a finished run gives back the same curves
    before = {k: npz[k] for k in npz.files}
    assert script.main([*TINY, "--out", str(out), "--resume", "--no-transfer"]) == 0
    after = np.load(out / "curves.npz", allow_pickle=False)
    for key in after.files:
        if key.startswith(("curves/", "losses/")):
            np.testing.assert_array_equal(after[key], before[key])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--gamma-p", "1.5"], "--gamma-p must be < 1.0; got 1.5."),
        (["--weights", "0", "1"], "--weights takes 4 numbers"),
        (["--env", "GridWorld"], "--env: unknown task 'GridWorld'"),
        (
            ["--obs-mode", "texture", "--texture-size", "2"],
            "--texture-size must be an integer >= 4",
        ),
        (["--grid-size", "3"], "--transfer: no free cell is more than"),
    ],
)
def test_bad_flags(script, flags, message, tmp_path, capsys):
    out = tmp_path / "bad"
    assert script.main([*TINY, *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()
