"""``neuro connectome``: simulates or reads traces, writes the report, the model and figures."""

import json

import numpy as np
import pytest

from data_loaders.calcium import save_calcium_hdf5
from data_loaders.simulate.calcium import simulate_calcium
from neuro.cli import main
from neuro.connectome import DynamicConnectome


def _small_traces(tmp_path, name="traces.h5", **kw):
    settings = dict(
        n_animals=2, n_neurons=12, n_frames=400, n_communities=2, community_size=4, n_blocks=6
    )
    settings.update(kw)
    sim = simulate_calcium(seed=2, **settings)
    return save_calcium_hdf5(tmp_path / name, sim.data), sim


def test_simulated_run_with_rank_selection(tmp_path, capsys):
    out = tmp_path / "sim"
    argv = ["connectome", "--neurons", "24", "--frames", "1200", "--ranks", "3", "4"]
    argv += ["--restarts", "2", "--out", str(out), "--device", "cpu", "-q"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rank"] in (3, 4) and len(metrics["rank_table"]) == 2
    assert metrics["recovery"]["ari_all"] > 0.5
    assert metrics["data"]["source"] == "simulated" and metrics["data"]["shape"] == [4, 24, 1200]
    expected = [
        "model.pt",
        "summary.txt",
        "time_factors.csv",
        "pair_factors.csv",
        "communities.csv",
        "rank_selection.csv",
        "recovery.csv",
        "component_0.graphml",
        "figures/factors.png",
        "figures/networks.png",
        "figures/rank_selection.png",
        "figures/affinity_matrices.png",
    ]
    for name in expected:
        assert (out / name).exists(), name
    model = DynamicConnectome.load(out / "model.pt")
    assert model.rank_ == metrics["rank"] and model.random_state == 0
    assert "ARI" in capsys.readouterr().out


def test_reads_hdf5_traces(tmp_path):
    path, sim = _small_traces(tmp_path)
    out = tmp_path / "h5"
    argv = ["connectome", "--traces", str(path), "--rank", "2", "--out", str(out)]
    assert main([*argv, "--device", "cpu", "--no-figures", "--restarts", "1", "-q"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["shape"] == [2, 12, 400] and "recovery" not in metrics
    assert not (out / "figures").exists()
    direct = DynamicConnectome(rank=2, n_restarts=1, n_iter_max=1000, device="cpu", bin_size=2.0)
    direct.set_params(n_restarts=1).fit(sim.data)
    np.testing.assert_array_equal(
        DynamicConnectome.load(out / "model.pt").pair_factors_, direct.pair_factors_
    )


def test_split_half_and_per_animal(tmp_path, capsys):
    path, sim = _small_traces(tmp_path, n_animals=3, missing_fraction=0.1)
    base = ["connectome", "--traces", str(path), "--rank", "2", "--restarts", "1"]
    base += ["--device", "cpu", "--no-figures", "--stability-bootstraps", "0", "-q"]
    assert main([*base, "--split-half", "2", "--out", str(tmp_path / "halves")]) == 0
    halves = json.loads((tmp_path / "halves" / "split_half" / "metrics.json").read_text())
    assert halves["rank"] == 2 and len(halves["splits"]) == 2
    assert "split" in capsys.readouterr().out
    assert main([*base, "--per-animal", "--out", str(tmp_path / "alone")]) == 0
    for a, recorded in enumerate(~sim.truth.missing):
        model = DynamicConnectome.load(tmp_path / "alone" / f"animal-animal{a}" / "model.pt")
        assert model.animal_ids_ == [f"animal{a}"]
        assert len(model.neuron_labels_) == int(recorded.sum())


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def test_user_errors_are_one_line_in_the_callers_words(tmp_path, capsys):
    path, _ = _small_traces(tmp_path)
    base = ["connectome", "--device", "cpu", "-q"]

    assert main([*base, "--traces", str(path), "--rank", "100", "--out", str(tmp_path / "o")]) == 2
    line = _error_line(capsys)
    assert line.startswith("neuro connectome: error: --rank 100 is larger than the tensor")
    assert not (tmp_path / "o").exists()  # a failed run leaves no empty --out

    assert main([*base, "--traces", str(tmp_path / "absent.h5"), "--out", str(tmp_path / "o")]) == 2
    assert "--traces: no such file" in _error_line(capsys)

    garbage = tmp_path / "x.h5"
    garbage.write_bytes(b"this is not HDF5 at all" * 10)
    assert main([*base, "--traces", str(garbage), "--out", str(tmp_path / "o")]) == 2
    line = _error_line(capsys)
    assert "x.h5" in line and "cannot be read as an HDF5 file" in line

    npy = tmp_path / "t.npy"
    np.save(npy, simulate_calcium(n_neurons=10, n_frames=200, community_size=3).data.traces)
    assert main([*base, "--traces", str(npy), "--out", str(tmp_path / "o")]) == 2
    line = _error_line(capsys)
    assert "--sampling-rate" in line and "sampling_rate" not in line

    argv = [*base, "--traces", str(npy), "--sampling-rate", "-1", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "--sampling-rate must be > 0" in _error_line(capsys)

    assert main([*base, "--bin-size", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--bin-size must be > 0.0; got 0.0" in _error_line(capsys)

    assert main([*base, "--restarts", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--restarts must be an integer >= 1; got 0" in _error_line(capsys)

    assert main([*base, "--neurons", "10", "--out", str(tmp_path / "o")]) == 2
    assert "--neurons must be an integer >= 24; got 10" in _error_line(capsys)

    assert main([*base, "--frames", "10", "--out", str(tmp_path / "o")]) == 2
    line = _error_line(capsys)
    assert "--frames must be >= 2 * n_blocks = 16; got 10" in line and "n_frames" not in line


def test_bad_flag_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["connectome", "--affinity", "granger"])
    assert exit_.value.code == 2
    assert "invalid choice: 'granger'" in capsys.readouterr().err


def test_help_shows_each_default_once(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["connectome", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.count("(default: 1000)") == 1 and "(default: 3)" in text
    assert "default: simulate" in text and "(default: None)" not in text
    assert "(default: derivative)" in text and "(default: hals)" in text
    for option in text.split(" --")[1:]:  # each option's help names its default at most once
        assert option.count("default") <= 1, option
