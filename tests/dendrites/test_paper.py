"""The paper's figures: tables, simulated points that agree with the theory, the command and script."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuro.cli import main
from neuro.dendrites.paper import COLUMNS, FIGURES, PaperFigures, inside_interval, paper_figures
from neuro.dendrites.theory import false_match_probability, noise_match_probability
from neuro.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def theory_only():
    return paper_figures(trials=0)


def test_tables_hold_the_theory(theory_only):
    tables = theory_only.tables()
    assert list(tables) == list(FIGURES)
    for table in tables.values():
        assert list(table.columns) == list(COLUMNS) and table["simulated"].isna().all()
    err = tables["error_vs_n"]
    row = err[(err["series"] == "a=128") & (err["x"] == 1000)].iloc[0]
    assert row["theory"] == pytest.approx(float(false_match_probability(1000, 128, 24, 12)))
    noise = tables["noise"]
    row = noise[(noise["series"] == "theta=12") & (noise["x"] == 0.5)].iloc[0]
    assert row["theory"] == pytest.approx(float(noise_match_probability(2000, 128, 30, 12, 0.5)))
    threshold = tables["threshold"]
    median = threshold[threshold["series"] == "median log10 P_fm"]
    low = threshold[threshold["series"] == "10th percentile log10 P_fm"]
    assert list(median["x"]) == list(range(1, 21))
    assert (low["theory"].to_numpy(float) <= median["theory"].to_numpy(float)).all()
    # the median false-match rate of the authors' grid falls below 1e-7 from theta = 8 on
    assert median[median["theory"] < -7]["x"].min() == 8


def test_summary_table_and_figures(theory_only):
    summary = theory_only.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["simulated_points"] == 0 and summary["trials"] == 0
    assert summary["figures"]["union"]["points"] == len(theory_only.data["union"])
    assert "theory only" in theory_only.format_table()
    figures = theory_only.plot()
    assert list(figures) == list(FIGURES)
    assert len(figures["union"].axes) == 2 and len(figures["error_vs_n"].axes[0].lines) == 3


def test_simulated_points_agree_with_the_theory(tmp_path):
    result = paper_figures(trials=2000, device="cpu", seed=3)
    summary = result.summary()
    assert summary["simulated_points"] >= 10
    # 99.9% intervals: at most one miss in a few dozen points
    assert summary["theory_inside_ci"] >= summary["simulated_points"] - 1
    noise = result.data["noise"]
    simulated = noise[noise["simulated"].notna()]
    assert (simulated["trials"] == 2000).all()
    assert (simulated["ci_low"] <= simulated["simulated"]).all()
    inside = inside_interval(noise)
    assert inside.isna().sum() == len(noise) - len(simulated)

    out = result.save(tmp_path / "figs", figures=False)
    assert json.loads((out / "metrics.json").read_text())["simulated_points"] == len(
        [1 for t in result.data.values() for v in t["simulated"] if not np.isnan(v)]
    )
    header = (out / "noise.csv").read_text().splitlines()[0]
    assert header == ",".join(COLUMNS)
    assert isinstance(result, PaperFigures)


def test_bad_trials():
    with pytest.raises(InputError, match="trials must be an integer >= 0"):
        paper_figures(trials=-1)


def test_command_writes_csvs_figures_and_metrics(tmp_path, capsys):
    out = tmp_path / "paper"
    assert main(["dendrites-figures", "--trials", "0", "--out", str(out), "-q"]) == 0
    assert "5 figures" in capsys.readouterr().out
    for name in FIGURES:
        assert (out / f"{name}.csv").is_file() and (out / "figures" / f"{name}.png").is_file()
    assert (out / "summary.txt").read_text().startswith("figure")
    assert main(["dendrites-figures", "--trials", "-5", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "neuro dendrites-figures: error: --trials must be an integer >= 0; got -5."


def test_script_is_the_command(tmp_path):
    script = str(ROOT / "scripts" / "dendrites_figures.py")
    proc = subprocess.run(
        [sys.executable, script, "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: neuro dendrites-figures") and "--trials" in proc.stdout
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, script, "--trials", "0", "--no-figures", "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.glob("*.csv")) == sorted(f"{n}.csv" for n in FIGURES)
    proc = subprocess.run(
        [sys.executable, script, "--out", str(out)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "--overwrite" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
