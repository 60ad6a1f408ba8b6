"""``neuro dendrites``: answers a query with every quantity and writes metrics.json."""

import json

import pytest

from neuro.cli import main
from neuro.dendrites.theory import false_match_probability


def test_query_prints_and_writes_every_quantity(tmp_path, capsys):
    out = tmp_path / "q"
    query = ["--n", "2000", "--a", "32", "--s", "30", "--theta", "15", "--m", "3"]
    assert main(["dendrites", *query, "--noise", "0.5", "--out", str(out), "--device", "cpu"]) == 0
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
    argv = [*query, "--simulate", "3000", "--out", str(out), "--device", "cpu", "--seed", "2"]
    assert main(["dendrites", *argv, "-q"]) == 0
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
        (["--n", "10", "--a", "11", "--s", "3", "--theta", "2"], "--a must be <= n"),
        (["--n", "10", "--a", "5", "--s", "3", "--theta", "4"], "--theta must be <= s"),
        (["--n", "10", "--a", "5", "--s", "3", "--theta", "2", "--noise", "2"], "--noise is a"),
        (["--n", "10", "--a", "-5", "--s", "3", "--theta", "2"], "--a must be >= 0"),
        (
            ["--n", "10", "--a", "5", "--s", "3", "--theta", "2", "--simulate", "-1"],
            "--simulate must be an integer >= 0; got -1.",
        ),
        (
            [
                "--n",
                "10",
                "--a",
                "5",
                "--s",
                "3",
                "--theta",
                "2",
                "--simulate",
                "9",
                "--batch-size",
                "0",
            ],
            "--batch-size must be an integer >= 1",
        ),
    ],
)
def test_bad_queries_are_one_line_errors(argv, message, tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["dendrites", *argv, "--out", str(out), "--device", "cpu", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neuro dendrites: error: ") and message in err, err
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_help_shows_each_default_once(capsys):
    with pytest.raises(SystemExit):
        main(["dendrites", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: automatic" in text and "(default: auto)" in text
    assert "automatic (default" not in text  # said once, in the help's own words
