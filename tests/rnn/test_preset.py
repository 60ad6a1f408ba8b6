"""``neuro rnn --preset paper``: the paper's settings, explicit flags win, recorded in metrics.json;
and the variants' flags."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import neuro.cli as cli
from neuro.cli import main
from neuro.rnn.command import PRESETS, config_from_args


def _parse(*flags):
    parser = cli._build_parser(next(sc for sc in cli.SUBCOMMANDS if sc.name == "rnn"))
    return parser.parse_args(["rnn", *flags])


def test_paper_preset_sets_the_papers_settings():
    args = _parse("--preset", "paper")
    cfg = config_from_args(args)
    assert (cfg.hidden_size, cfg.batch_size, cfg.steps_per_epoch) == (500, 256, 600)
    assert (cfg.n_start, cfg.n_max, cfg.max_epochs, cfg.val_batches) == (2, 100, 1000, 50)
    # the paper's optimiser: SGD lr 0.05, Nesterov momentum 0.1, clipping at 2.0
    assert (cfg.lr, cfg.momentum, cfg.grad_clip_norm, cfg.threshold) == (0.05, 0.1, 2.0, 0.98)
    assert (args.pca_steps, args.retrain_epochs, args.tau_ablation_neurons) == (100_500, 20, 20)
    assert args.preset_overrides == []
    # without the preset, the CPU-sized defaults
    small = config_from_args(_parse())
    assert (small.hidden_size, small.batch_size, small.steps_per_epoch) == (64, 128, 50)


def test_explicit_flags_override_the_preset_even_at_the_default_value():
    args = _parse("--preset", "paper", "--hidden", "64", "--n-max", "30")
    cfg = config_from_args(args)
    assert cfg.hidden_size == 64 and cfg.n_max == 30 and cfg.batch_size == 256
    assert sorted(args.preset_overrides) == ["hidden", "n_max"]
    assert set(PRESETS["paper"]) >= {"hidden", "batch_size", "steps", "n_max", "epochs"}


def test_preset_is_recorded_in_metrics_json(tmp_path):
    out = tmp_path / "paper"
    small = ["--hidden", "8", "--n-max", "3", "--steps", "2", "--batch-size", "16"]
    small += ["--epochs", "1", "--val-batches", "1", "--timescale-steps", "100"]
    small += ["--timescale-trials", "1", "--pca-steps", "0", "--tau-ablation-neurons", "0"]
    small += ["--normalized-strengths", "--retrain-epochs", "0", "--stream-steps", "20"]
    small += ["--stream-trials", "1", "--repeats", "1", "--curricula", "sliding"]
    small += ["--window", "2", "--model", "mod", "--nonlinearity", "tanh"]
    flags = ["--preset", "paper", *small, "--no-figures", "--device", "cpu", "-q"]
    assert main(["rnn", *flags, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["preset"] == "paper"
    assert "--hidden" in metrics["settings"]["preset_overrides"]
    assert "--pca-steps" in metrics["settings"]["preset_overrides"]
    cfg = metrics["config"]
    assert cfg["hidden_size"] == 8 and cfg["model"] == "mod" and cfg["nonlinearity"] == "tanh"
    assert cfg["window"] == 2 and list(metrics["curricula"]) == ["sliding"]
    assert metrics["settings"]["stream_trials"] == 1  # given, so not the preset's 10


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--preset", "huge"], "invalid choice: 'huge'"),
        (["--window", "0"], "--window must be an integer >= 1; got 0."),
        (["--add-heads", "0"], "--add-heads must be an integer >= 1; got 0."),
        (
            ["--init-heads", "30", "--n-max", "20"],
            "--n-max (20) must be >= --n-start + --init-heads",
        ),
        (["--curricula", "sliding", "--window", "1", "--stride", "2"], "--stride must be at most"),
        (["--duplicates", "3"], "--duplicates (3,) needs --model 'continuous'"),
        (["--model", "continuous", "--duplicates", "0"], "--duplicates must be an integer >= 1"),
    ],
)
def test_bad_variant_flags_are_one_line_errors(flags, message, tmp_path, capsys):
    out = tmp_path / "bad"
    with pytest.raises(SystemExit) if "huge" in flags else _nothing():
        code = main(["rnn", *flags, "--out", str(out), "-q"])
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert not out.exists()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_benchmark_projects_the_paper_epoch(tmp_path):
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "bench.json"
    flags = ["--paper-epoch", "--quick", "--device", "cpu", "--repeat", "1", "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, "rnn.py", *flags],
        cwd=root / "benchmarks",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    rows = report["tables"][0]["rows"]
    assert [r["N"] for r in rows] == [2, 12] and all(r["step_s"] > 0 for r in rows)
    names = [s["benchmark"] for s in report["summary"]]
    assert "projected epoch at N=100" in names
    assert "projected run to N=100 at one epoch per N" in names
