"""``neuro rnn``: trains both curricula, writes metrics and figures, resumes."""

import argparse
import json

from neuro.cli import add_common_arguments
from neuro.rnn.command import add_arguments, run


def _parse(argv):
    parser = argparse.ArgumentParser(prog="neuro rnn")
    add_arguments(parser)
    add_common_arguments(parser, "rnn")
    return parser.parse_args(argv)


def test_command_writes_metrics_figures_and_resumes(tmp_path, capsys):
    out = tmp_path / "rnn"
    out.mkdir()
    small = [
        "--hidden",
        "16",
        "--n-max",
        "4",
        "--epochs",
        "3",
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
    ]
    args = _parse([*small, "--out", str(out), "--device", "cpu", "-q"])
    assert run(args) == 0
    printed = capsys.readouterr().out
    assert "single" in printed and "multi" in printed and "N reached" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    for kind in ("single", "multi"):
        entry = metrics["curricula"][kind]
        assert entry["epochs"] <= 3 and "timescales_by_N" in entry and "retention" in entry
        assert (out / kind / "checkpoints" / "last.pt").is_file()
    for name in ("curriculum", "taus", "robustness", "retention"):
        assert (out / f"{name}.png").stat().st_size > 1000
    # a longer budget continues both runs from their checkpoints
    args = _parse(
        [
            *small[:4],
            "--epochs",
            "4",
            *small[6:],
            "--out",
            str(out),
            "--device",
            "cpu",
            "--resume",
            "--overwrite",
            "-q",
        ]
    )
    assert run(args) == 0
    again = json.loads((out / "metrics.json").read_text())
    for kind in ("single", "multi"):
        history = [
            json.loads(line) for line in (out / kind / "metrics.jsonl").read_text().splitlines()
        ]
        assert len(history) == again["curricula"][kind]["epochs"] <= 4
