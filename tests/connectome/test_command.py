"""``neuro connectome``: simulates or reads traces, writes metrics, factors, graphs, figures."""

import argparse
import json

import pytest

from data_loaders.calcium import save_calcium_hdf5
from data_loaders.simulate.calcium import simulate_calcium
from neuro.cli import add_common_arguments
from neuro.connectome.command import add_arguments, run


def _parse(argv):
    parser = argparse.ArgumentParser(prog="neuro connectome")
    add_arguments(parser)
    add_common_arguments(parser, "connectome")
    return parser.parse_args(argv)


def test_simulated_run_with_rank_selection(tmp_path, capsys):
    out = tmp_path / "sim"
    args = _parse(
        [
            "--neurons",
            "24",
            "--frames",
            "1200",
            "--ranks",
            "3",
            "4",
            "--restarts",
            "2",
            "--out",
            str(out),
            "--device",
            "cpu",
            "-q",
        ]
    )
    args.verbose = 0
    assert run(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rank"] in (3, 4) and len(metrics["rank_table"]) == 2
    assert "recovery" in metrics
    for name in (
        "factors.npz",
        "factors.png",
        "networks.png",
        "rank_selection.png",
        "affinity_matrices.png",
        "component_0.graphml",
    ):
        assert (out / name).exists(), name
    assert "ARI" in capsys.readouterr().out


def test_reads_hdf5_traces(tmp_path):
    sim = simulate_calcium(
        n_animals=2,
        n_neurons=12,
        n_frames=400,
        n_communities=2,
        community_size=4,
        n_blocks=6,
        seed=2,
    )
    path = save_calcium_hdf5(tmp_path / "traces.h5", sim.data)
    out = tmp_path / "h5"
    args = _parse(
        [
            "--traces",
            str(path),
            "--rank",
            "2",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--no-figures",
            "--restarts",
            "1",
        ]
    )
    assert run(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["shape"] == [2, 12, 400] and "recovery" not in metrics


def test_bad_rank_is_a_user_error(tmp_path):
    sim = simulate_calcium(
        n_animals=1,
        n_neurons=6,
        n_frames=200,
        n_communities=1,
        community_size=3,
        n_blocks=2,
        seed=0,
    )
    path = save_calcium_hdf5(tmp_path / "t.h5", sim.data)
    args = _parse(["--traces", str(path), "--rank", "100", "--out", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="rank"):
        run(args)
