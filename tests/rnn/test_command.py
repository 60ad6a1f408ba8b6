"""``neuro rnn``: trains both curricula, writes the comparison, continues a killed run, refuses bad flags."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from neuro.cli import main

ROOT = Path(__file__).resolve().parents[2]
SMALL = [
    "--hidden",
    "16",
    "--n-max",
    "4",
    "--steps",
    "8",
    "--batch-size",
    "32",
    "--threshold",
    "0.6",
    "--timescale-steps",
    "600",
    "--timescale-trials",
    "2",
    "--repeats",
    "1",
    "--pca-steps",
    "300",
    "--pca-trials",
    "2",
    "--tau-ablation-neurons",
    "2",
    "--normalized-strengths",
    "0",
    "1",
    "--stream-steps",
    "50",
    "--stream-trials",
    "2",
    "--retrain-epochs",
    "1",
    "--device",
    "cpu",
    "-q",
]


def _history(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_command_writes_the_comparison_and_a_resumed_run_continues(tmp_path, capsys):
    out = tmp_path / "rnn"
    assert main(["rnn", *SMALL, "--epochs", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "single" in printed and "multi" in printed and "N reached" in printed
    assert (out / "summary.txt").read_text().startswith("curriculum")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["hidden_size"] == 16 and metrics["settings"]["n_repeats"] == 1
    for kind in ("single", "multi"):
        entry = metrics["curricula"][kind]
        assert entry["epochs"] == 3 and "timescales_by_N" in entry and "retention" in entry
        for name in ("checkpoints/last.pt", "network.pt", "metrics.jsonl"):
            assert (out / kind / name).is_file(), name
        solved = sorted(int(n) for n in entry["solved_epoch"])
        assert sorted(p.name for p in (out / kind / "snapshots").iterdir()) == sorted(
            f"N{n}.pt" for n in solved
        )
    analyses = ("dimensionality", "tau_ablation", "normalized_perturbation", "retraining")
    if metrics["n_common"] is None:  # only the dimensionality runs without a common N
        analyses = ("dimensionality",)
    for name in ("history", "timescales", "robustness", "retention", *analyses):
        assert (out / f"{name}.csv").read_text().startswith("curriculum,"), name
    for name in ("curriculum", "taus", "robustness", "retention", *analyses):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    before = {kind: _history(out / kind) for kind in ("single", "multi")}

    # one more epoch, resumed from the checkpoints: the three epochs done are kept, not redone
    assert main(["rnn", *SMALL, "--epochs", "4", "--out", str(out), "--resume"]) == 0
    resumed = json.loads((out / "metrics.json").read_text())
    for kind in ("single", "multi"):
        history = _history(out / kind)
        assert history[:3] == before[kind]  # same records, timings included: not re-trained
        assert [r["epoch"] for r in history] == list(range(1, len(history) + 1))
        assert len(history) == resumed["curricula"][kind]["epochs"] <= 4

    # and it ends where an uninterrupted run of four epochs ends
    fresh = tmp_path / "fresh"
    assert main(["rnn", *SMALL, "--epochs", "4", "--out", str(fresh)]) == 0
    uninterrupted = json.loads((fresh / "metrics.json").read_text())
    assert resumed["curricula"] == uninterrupted["curricula"]
    assert resumed["n_common"] == uninterrupted["n_common"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--hidden", "0"], "--hidden must be an integer >= 1; got 0."),
        (["--epochs", "0"], "--epochs must be an integer >= 1; got 0."),
        (["--val-batches", "0"], "--val-batches must be an integer >= 1; got 0."),
        (["--repeats", "0"], "--repeats must be an integer >= 1; got 0."),
        (["--n-start", "5", "--n-max", "3"], "--n-max (3) must be >= --n-start (5)."),
        (["--n-start", "0"], "--n-start must be >= 1 for the parity task; got --n-start 0."),
        (["--threshold", "1.5"], "--threshold must be an accuracy in (0, 1]"),
        (["--tau-init", "0.5", "2"], "--tau-init must be a range (low, high)"),
        (["--timescale-steps", "40"], "--timescale-steps must be > 50"),
        (["--device", "tpu"], "device must be"),
        (["--pca-steps", "-1"], "--pca-steps must be an integer >= 0; got -1."),
        (["--stream-trials", "0"], "--stream-trials must be an integer >= 1; got 0."),
        (["--retrain-epochs", "-2"], "--retrain-epochs must be an integer >= 0; got -2."),
        (["--retrain-perturbation", "-1"], "--retrain-perturbation must be >= 0.0; got -1.0."),
        (["--normalized-strengths", "-1"], "--normalized-strengths must be >= 0; got [-1.0]."),
    ],
)
def test_bad_flags_are_one_line_errors(flags, message, tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["rnn", *flags, "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neuro rnn: error: ") and message in err, err
    assert len(err.splitlines()) == 1
    assert not out.exists()  # a failed run leaves no empty folder


def test_an_existing_output_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main(["rnn", "--out", str(out), "-q"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "x"


def test_help_shows_each_default_once(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["rnn", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 64)" in text and "(default: parity)" in text
    assert not re.search(r"\(default: [^)]*\) \(default:", text)  # never said twice
    assert "(paper: 256) (default: 128)" in text


def test_script_is_the_command():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "rnn_timescales.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: neuro rnn") and "--resume" in proc.stdout
