"""``neuro dendrites``: answers a query with every quantity and writes metrics.json."""

import argparse
import json

import pytest

from neuro.cli import add_common_arguments
from neuro.dendrites.command import add_arguments, run
from neuro.dendrites.theory import false_match_probability


def _parse(argv):
    parser = argparse.ArgumentParser(prog="neuro dendrites")
    add_arguments(parser)
    add_common_arguments(parser, "dendrites")
    return parser.parse_args(argv)


def test_query_prints_and_writes_every_quantity(tmp_path, capsys):
    out = tmp_path / "q"
    out.mkdir()
    query = ["--n", "2000", "--a", "32", "--s", "30", "--theta", "15", "--m", "3"]
    args = _parse([*query, "--noise", "0.5", "--out", str(out), "--device", "cpu"])
    assert run(args) == 0
    printed = capsys.readouterr().out
    assert "false-match probability" in printed and "3.26957e-21" in printed
    theory = json.loads((out / "metrics.json").read_text())["theory"]
    assert theory["false_match_probability"] == pytest.approx(3.2696e-21, rel=1e-4)
    for key in (
        "union_false_match_probability",
        "union_false_match_probability_expected",
        "noise_match_probability",
        "false_negative_probability",
        "optimal_threshold",
        "min_threshold_false_match_1e-7",
        "log10_num_patterns",
    ):
        assert key in theory, key


def test_query_with_simulation(tmp_path, capsys):
    out = tmp_path / "sim"
    query = ["--n", "300", "--a", "128", "--s", "24", "--theta", "12", "--m", "2", "--noise", "0.3"]
    args = _parse(
        [*query, "--simulate", "3000", "--out", str(out), "--device", "cpu", "--seed", "2"]
    )
    out.mkdir()
    assert run(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    sim = metrics["simulation"]
    assert set(sim) == {
        "false_match_probability",
        "noise_match_probability",
        "union_false_match_probability_expected",
    }
    fm = sim["false_match_probability"]
    assert fm["trials"] == 3000
    assert fm["ci_low"] <= false_match_probability(300, 128, 24, 12) <= fm["ci_high"]
    assert "theory inside" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--n", "10", "--a", "11", "--s", "3", "--theta", "2"], "a must be <= n"),
        (["--n", "10", "--a", "5", "--s", "3", "--theta", "4"], "theta must be <= s"),
        (["--n", "10", "--a", "5", "--s", "3", "--theta", "2", "--noise", "2"], "noise"),
        (["--n", "10", "--a", "-5", "--s", "3", "--theta", "2"], "a must be >= 0"),
        (["--n", "10", "--a", "5", "--s", "3", "--theta", "2", "--simulate", "-1"], "simulate"),
    ],
)
def test_bad_queries(argv, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        run(_parse([*argv, "--out", str(tmp_path)]))
