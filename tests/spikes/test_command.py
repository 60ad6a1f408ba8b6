"""``neuro neuroformer``: train, generate and decode on a simulation, an .npz and an NWB file.

Also: a killed training run continues with ``--resume`` to the weights of an
uninterrupted one, an existing ``--out`` is refused without ``--overwrite``,
and bad input is one line that names the flag.
"""

import itertools
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from data_loaders.simulate.spikes import simulate_spiking_circuit
from neuro.cli import main
from neuro.spikes import Neuroformer
from neuro.spikes.command import read_spikes_npz

SIM = ["--neurons", "9", "--hubs", "2", "--duration", "20", "--n-intervals", "10"]
TINY = [
    "--d-model",
    "16",
    "--heads",
    "2",
    "--block-size",
    "24",
    "--past-block-size",
    "48",
    "--epochs",
    "1",
    "--batch-size",
    "32",
]
CPU = ["--device", "cpu", "-q"]
NWB_SERIES = [
    "--nwb-stimulus",
    "stimulus/presentation/movie",
    "--nwb-behavior",
    "processing/behavior/readout",
]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def circuit():
    """The circuit ``SIM`` describes (the command simulates it with --seed 0)."""
    return simulate_spiking_circuit(n_neurons=9, n_hubs=2, duration=20.0, seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The folder of a model trained on the simulated circuit."""
    out = tmp_path_factory.mktemp("neuroformer") / "train"
    assert main(["neuroformer", "train", *SIM, *TINY, *CPU, "--out", str(out)]) == 0
    return out


def _metrics(folder) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def _npz(path, circuit, **drop_or_replace):
    """The circuit as a user's .npz (plain numpy.savez), without the stimulus."""
    arrays = {
        "neuron_ids": circuit.spikes.neuron_ids,
        "spike_times": circuit.spikes.times,
        "t_stop": circuit.spikes.t_stop,
        "behavior": circuit.behavior,
        "behavior_times": circuit.behavior_times,
    }
    arrays.update(drop_or_replace)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


# ----------------------------------------------------------------------------- simulation
def test_train_on_a_simulation_writes_model_scores_and_connectivity(trained, circuit):
    metrics = _metrics(trained)
    assert metrics["data"]["source"] == "simulated" and metrics["data"]["n_neurons"] == 9
    assert metrics["data"]["simulation"]["n_neurons"] == 9
    assert metrics["split"]["train"]["intervals"] == 8 and metrics["training"]["epochs"] == 1
    test = metrics["test"]
    assert test["n_tokens"] > 0 and test["id_cross_entropy"] > 0 and test["frequency_entropy"] > 0
    assert set(metrics["truncation"]) == {"current", "past"}
    assert set(metrics["connectivity_auroc"]) == {"attention", "correlation"}
    assert all(0.0 <= v <= 1.0 for v in metrics["connectivity_auroc"].values())
    # the split covers the recording once, and the scores are on its test intervals
    split = json.loads((trained / "split.json").read_text())
    cover = sorted(tuple(iv) for k in ("train", "val", "test") for iv in split[k])
    assert cover[0][0] == 0.0 and cover[-1][1] == 20.0
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cover))
    # connectivity: the CSV and the .npy hold the same (target, source) matrix
    table = pd.read_csv(trained / "connectivity.csv")
    assert list(table.columns) == ["target", *map(str, range(9))]
    matrix = np.load(trained / "connectivity.npy", allow_pickle=False)
    assert matrix.shape == (9, 9)
    np.testing.assert_allclose(table.iloc[:, 1:].to_numpy(float), matrix)
    # the saved model reproduces it, and does not point at the run's checkpoints
    model = Neuroformer.load(trained / "model.pt")
    assert model.checkpoint_dir is None and model.d_model == 16
    test_intervals = [tuple(iv) for iv in split["test"]]
    np.testing.assert_allclose(model.connectivity(circuit.recording, test_intervals), matrix)
    assert (trained / "training" / "checkpoints" / "last.pt").is_file()
    assert (trained / "figures" / "connectivity.png").stat().st_size > 1000
    assert (trained / "summary.txt").read_text().startswith("neuro neuroformer train: 9 neurons")


def test_generate_writes_spikes_in_the_input_format(trained, tmp_path, capsys):
    out = tmp_path / "generated"
    # common options may come before the action too
    argv = ["neuroformer", "--out", str(out), "--seed", "3", *CPU, "generate"]
    assert main([*argv, "--model", str(trained / "model.pt")]) == 0
    assert "spikes:" in capsys.readouterr().out
    with np.load(out / "generated.npz", allow_pickle=False) as f:
        assert sorted(f.files) == ["n_neurons", "neuron_ids", "spike_times", "t_start", "t_stop"]
        times = f["spike_times"]
    generated = read_spikes_npz(out / "generated.npz").spikes
    assert generated.n_neurons == 9 and (generated.t_start, generated.t_stop) == (0.0, 20.0)
    np.testing.assert_array_equal(generated.times, times)
    # only over the test intervals of the model's split, as the metrics say
    split = json.loads((trained / "split.json").read_text())
    inside = np.zeros(len(times), dtype=bool)
    for a, b in split["test"]:
        inside |= (times >= a) & (times < b)
    assert inside.all() and len(times) > 0
    metrics = _metrics(out)
    assert metrics["generated_spikes"] == len(times) and metrics["intervals"] == split["test"]
    assert metrics["settings"]["seed"] == 3
    assert set(metrics["statistics"]) >= {"rate_r", "correlation_r", "n_pairs"}
    assert (out / "figures" / "raster.png").stat().st_size > 1000
    # the same seed generates the same spikes, with or without the key/value cache
    again = tmp_path / "again"
    argv = ["neuroformer", "generate", "--model", str(trained / "model.pt"), "--seed", "3"]
    assert main([*argv, "--no-cache", "--no-figures", *CPU, "--out", str(again)]) == 0
    np.testing.assert_array_equal(read_spikes_npz(again / "generated.npz").spikes.times, times)
    assert not (again / "figures").exists()


def test_decode_fits_the_head_beside_ridge_on_the_same_labels(trained, tmp_path):
    out = tmp_path / "decoded"
    argv = ["neuroformer", "decode", "--model", str(trained / "model.pt"), "--labels", "100"]
    argv += ["--unfreeze", "1", "--epochs", "2", "--save-model", *CPU, "--out", str(out)]
    assert main(argv) == 0
    metrics = _metrics(out)
    assert metrics["labels"]["n"] == 100 and len(metrics["labels"]["times"]) == 100
    assert metrics["settings"]["unfreeze"] == 1 and metrics["settings"]["windows"] == 10
    split = json.loads((trained / "split.json").read_text())
    for t in metrics["labels"]["times"]:  # labelled samples come from the training intervals
        assert any(a < t <= b for a, b in split["train"])
    assert metrics["behavior"] == ["readout0"]
    assert np.isfinite(metrics["neuroformer_r"]["readout0"])
    assert metrics["ridge_r"]["readout0"] > 0.3  # lagged counts decode the readout
    table = pd.read_csv(out / "behavior.csv")
    assert list(table.columns) == [
        "time",
        "readout0_true",
        "readout0_neuroformer",
        "readout0_ridge",
    ]
    assert len(table) == metrics["n_test_samples"] > 0
    r = np.corrcoef(table["readout0_true"], table["readout0_neuroformer"])[0, 1]
    assert r == pytest.approx(metrics["neuroformer_r"]["readout0"])
    # the saved model carries the fine-tuned head and decodes what the table holds
    model = Neuroformer.load(out / "model.pt")
    assert model.behavior_unfreeze_ == 1 and model.n_behavior_samples_ == 100
    assert model.behavior_n_windows_ == 10
    sim = simulate_spiking_circuit(n_neurons=9, n_hubs=2, duration=20.0, seed=0)
    times, pred = model.predict_behavior(sim.recording, [tuple(iv) for iv in split["test"]])
    np.testing.assert_allclose(times, table["time"])
    np.testing.assert_allclose(pred[:, 0], table["readout0_neuroformer"], rtol=1e-5, atol=1e-6)
    assert (out / "figures" / "behavior.png").stat().st_size > 1000


# ----------------------------------------------------------------------------- user files
def test_npz_arrays_train_generate_and_read_back(circuit, tmp_path):
    data = _npz(tmp_path / "session.npz", circuit)
    train = tmp_path / "train"
    assert main(["neuroformer", "train", "--spikes", str(data), "--n-intervals", "10", *TINY,
                 *CPU, "--out", str(train)]) == 0  # fmt: skip
    metrics = _metrics(train)
    assert metrics["data"]["source"] == "npz" and metrics["data"]["path"] == str(data)
    assert metrics["data"]["stimulus"] is None and metrics["model"]["stimulus_frames"] == 0
    assert "connectivity_auroc" not in metrics  # no ground truth in a user's file

    gen = tmp_path / "gen"
    model = str(train / "model.pt")
    argv = ["neuroformer", "generate", "--model", model, "--no-figures", *CPU]
    assert main([*argv, "--spikes", str(data), "--out", str(gen)]) == 0
    # generated.npz is itself --spikes input: generating from it reads its spikes as the real ones
    back = tmp_path / "back"
    assert main([*argv, "--spikes", str(gen / "generated.npz"), "--out", str(back)]) == 0
    assert _metrics(back)["real_spikes"] == _metrics(gen)["generated_spikes"]
    assert _metrics(back)["data"]["n_spikes"] == _metrics(gen)["generated_spikes"]

    dec = tmp_path / "dec"
    argv = ["neuroformer", "decode", "--model", model, "--spikes", str(data), "--labels", "0.2"]
    assert main([*argv, "--no-figures", *CPU, "--out", str(dec)]) == 0
    assert _metrics(dec)["labels"]["n"] == round(0.2 * _metrics(dec)["labels"]["of"])


def test_nwb_file_with_stimulus_and_behaviour(circuit, tmp_path):
    path = circuit.write_nwb(tmp_path / "session.nwb")
    train = tmp_path / "train"
    argv = ["neuroformer", "train", "--nwb", str(path), *NWB_SERIES, "--n-intervals", "10"]
    assert main([*argv, *TINY, *CPU, "--no-figures", "--out", str(train)]) == 0
    data = _metrics(train)["data"]
    assert data["source"] == "nwb" and data["stimulus"] == [400, 15, 20]
    assert data["behavior"] == ["readout"] and data["n_spikes"] == len(circuit.spikes)
    dec = tmp_path / "dec"
    argv = ["neuroformer", "decode", "--model", str(train / "model.pt"), "--nwb", str(path)]
    assert main([*argv, *NWB_SERIES, "--labels", "20", *CPU, "--out", str(dec)]) == 0
    assert "readout_neuroformer" in pd.read_csv(dec / "behavior.csv").columns


def test_behaviour_as_context_and_the_contrastive_loss(circuit, tmp_path):
    path = circuit.write_nwb(tmp_path / "session.nwb")
    train = tmp_path / "train"
    argv = ["neuroformer", "train", "--nwb", str(path), *NWB_SERIES, "--n-intervals", "10"]
    argv += ["--behavior-context", "--contrastive-dim", "8", *TINY, *CPU, "--no-figures"]
    assert main([*argv, "--out", str(train)]) == 0
    model = _metrics(train)["model"]
    assert model["behavior_context"] is True and model["contrastive_dim"] == 8
    history = Neuroformer.load(train / "model.pt").history_
    assert all(np.isfinite(r["train_contrastive_loss"]) for r in history)
    gen = tmp_path / "gen"
    argv = ["neuroformer", "generate", "--model", str(train / "model.pt"), "--nwb", str(path)]
    assert main([*argv, *NWB_SERIES, *CPU, "--no-figures", "--out", str(gen)]) == 0
    assert (gen / "generated.npz").is_file()


# ----------------------------------------------------------------------------- runs
def test_an_existing_output_is_refused_then_overwritten(tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    argv = ["neuroformer", "train", *SIM, *TINY, *CPU, "--no-figures", "--out", str(out)]
    assert main(argv) == 2
    assert "--overwrite" in _error_line(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert main([*argv, "--overwrite"]) == 0
    # again over its own earlier run: the old checkpoints are replaced, not resumed
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "keep.txt").read_text() == "x" and (out / "model.pt").is_file()
    assert _metrics(out)["training"]["epochs"] == 1


def test_a_killed_run_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch, capsys):
    from neuro.train import Callback

    class Kill(Callback):
        def on_step_end(self, trainer, step, metrics):
            if step == 13:  # mid-epoch 2 (10 steps per epoch), after the checkpoint of step 12
                raise KeyboardInterrupt

    trainer = Neuroformer._trainer
    monkeypatch.setattr(
        Neuroformer,
        "_trainer",
        lambda self, *a, **kw: trainer(self, *a, callbacks=[Kill()], **kw),
    )
    argv = ["neuroformer", "train", *SIM, *TINY, *CPU, "--no-figures", "--epochs", "2"]
    argv += ["--checkpoint-every", "4"]
    run = tmp_path / "run"
    assert main([*argv, "--out", str(run)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert (run / "split.json").is_file() and not (run / "model.pt").exists()
    monkeypatch.undo()

    assert main([*argv, "--out", str(run), "--resume"]) == 0
    fresh = tmp_path / "fresh"
    assert main([*argv, "--out", str(fresh)]) == 0
    resumed = Neuroformer.load(run / "model.pt").model_.state_dict()
    reference = Neuroformer.load(fresh / "model.pt").model_.state_dict()
    assert resumed.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(value, resumed[key]), key
    assert _metrics(run)["test"] == _metrics(fresh)["test"]
    assert json.loads((run / "split.json").read_text()) == json.loads(
        (fresh / "split.json").read_text()
    )
    # resuming with other data is refused
    longer = [a if a != "20" else "22" for a in argv]  # --duration 22
    assert main([*longer, "--out", str(run), "--resume"]) == 2
    assert "--resume: the data differ" in _error_line(capsys)


# ----------------------------------------------------------------------------- bad input
def _nwb_without_units(path):
    import datetime

    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    nwb = NWBFile(
        session_description="no units",
        identifier="no-units",
        session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    )
    nwb.add_acquisition(TimeSeries(name="speed", data=np.zeros(5), unit="m/s", rate=10.0))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def _bad_file(kind, tmp_path, circuit):
    """A file of ``kind`` and the data flag that takes it."""
    p = tmp_path / "data.npz"
    if kind == "missing":
        return ["--spikes", str(tmp_path / "absent.npz")]
    if kind == "not-npz":
        p.write_text("neuron,time\n0,0.1\n")
    elif kind == "wrong-suffix":
        p = tmp_path / "data.csv"
        p.write_text("neuron,time\n0,0.1\n")
    elif kind == "truncated":
        _npz(p, circuit)
        p.write_bytes(p.read_bytes()[:200])
    elif kind == "no-spike-times":
        _npz(p, circuit, spike_times=None)
    elif kind == "nan-times":
        times = circuit.spikes.times.copy()
        times[3] = np.nan
        _npz(p, circuit, spike_times=times)
    elif kind == "pickled":
        _npz(p, circuit, behavior=np.array([{"a": 1}, None], dtype=object))
    elif kind == "no-units":
        return ["--nwb", str(_nwb_without_units(tmp_path / "empty.nwb"))]
    elif kind == "nwb-not-hdf5":
        p = tmp_path / "data.nwb"
        p.write_bytes(b"\x00" * 4096)
        return ["--nwb", str(p)]
    elif kind == "nwb-series":
        path = circuit.write_nwb(tmp_path / "session.nwb")
        return ["--nwb", str(path), "--nwb-stimulus", "stimulus/presentation/film"]
    return ["--spikes", str(p)]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", r"^--spikes: no such file: '.*absent\.npz'"),
        ("not-npz", r"^--spikes '.*data\.npz' is not an \.npz archive"),
        ("wrong-suffix", r"^--spikes must be a \.npz file"),
        ("truncated", r"^--spikes '.*data\.npz' cannot be read as an \.npz archive"),
        ("no-spike-times", r"^--spikes .*data\.npz has no 'spike_times' array \(it holds: "),
        ("nan-times", r"^--spikes .*data\.npz: spike_times contains 1 NaN"),
        ("pickled", r"^--spikes .*data\.npz: the array 'behavior' holds Python objects"),
        ("no-units", r"^--nwb .*empty\.nwb: the NWB file has no units table"),
        ("nwb-not-hdf5", r"^--nwb '.*data\.nwb' cannot be read as an NWB file"),
        ("nwb-series", r"no TimeSeries at --nwb-stimulus 'stimulus/presentation/film'"),
    ],
)
def test_bad_data_is_one_line_naming_the_flag(kind, message, tmp_path, circuit, capsys):
    out = tmp_path / "out"
    argv = ["neuroformer", "train", *_bad_file(kind, tmp_path, circuit), *TINY, *CPU]
    assert main([*argv, "--out", str(out)]) == 2
    line = _error_line(capsys)
    assert line.startswith("neuro neuroformer: error: ")
    assert re.search(message, line.removeprefix("neuro neuroformer: error: ")), line
    assert not out.exists()  # a failed run leaves no folder behind


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", *SIM, "--heads", "3"], "--d-model must be even and a multiple of --heads 3"),
        (["train", *SIM, "--neurons", "2"], "--hubs"),
        (["train", "--nwb-stimulus", "movie"], "--nwb-stimulus reads from --nwb"),
        (["train", *SIM, "--resume"], "--resume: nothing to resume in"),
        (["decode", "--labels", "1"], "--labels 1 gives 1 labelled sample(s)"),
        (["decode", "--labels", "many"], "--labels must be a number; got 'many'"),
        (["decode", "--labels", "100000"], "--labels 100000 asks for 100000 samples"),
        (["train", "--duration", "1"], "--n-intervals 20: the training intervals are 0.05 s long"),
        (["decode", "--unfreeze", "5"], "--unfreeze 5: the model has 1 final block(s)"),
        (["generate", "--temperature", "0"], "--temperature must be > 0.0"),
    ],
)
def test_bad_options_are_one_line(argv, message, trained, tmp_path, capsys):
    argv = [*argv, *(TINY[:2] if argv[0] == "train" else ["--model", str(trained / "model.pt")])]
    out = tmp_path / "out"
    assert main(["neuroformer", *argv, *CPU, "--out", str(out)]) == 2
    assert message in _error_line(capsys)
    assert not out.exists()


def test_data_the_model_cannot_read_is_refused(trained, circuit, tmp_path, capsys):
    model = ["--model", str(trained / "model.pt"), *CPU, "--out", str(tmp_path / "out")]
    # the stimulus the model was trained with is missing
    data = _npz(tmp_path / "no_stimulus.npz", circuit)
    assert main(["neuroformer", "generate", *model, "--spikes", str(data)]) == 2
    assert "--model was trained with the stimulus but --spikes has none" in _error_line(capsys)
    # other neurons
    data = _npz(tmp_path / "wide.npz", circuit, n_neurons=12)
    assert main(["neuroformer", "decode", *model, "--spikes", str(data)]) == 2
    assert "--spikes holds 12 neurons but --model was trained on 9" in _error_line(capsys)
    # no behaviour to decode
    sim = circuit
    frames = {"stimulus": sim.stimulus, "frame_times": sim.frame_times}
    data = _npz(tmp_path / "quiet.npz", sim, behavior=None, behavior_times=None, **frames)
    assert main(["neuroformer", "decode", *model, "--spikes", str(data)]) == 2
    assert "--spikes has no behaviour to decode" in _error_line(capsys)
    assert not (tmp_path / "out").exists()
    # a missing model
    missing = ["--model", str(tmp_path / "none.pt"), "--out", str(tmp_path / "out")]
    assert main(["neuroformer", "generate", *missing, *CPU]) == 2
    assert _error_line(capsys).endswith(f"--model: no such file: '{tmp_path / 'none.pt'}'.")


# ----------------------------------------------------------------------------- help
@pytest.mark.parametrize("action", [None, "train", "generate", "decode"])
def test_help_of_the_command_and_each_action(action, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["neuroformer", *([action] if action else []), "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    for chunk in text.split(" -"):
        assert chunk.lower().count("default") <= 1, chunk
    assert "--device" in text and "--out DIR" in text
    if action is None:
        assert all(name in text for name in ("train", "generate", "decode"))
        return
    assert text.startswith(f"usage: neuro neuroformer {action}")
    assert "neuron_ids" in text and "spike_times" in text and "--nwb-behavior" in text
    expected = {
        "train": ["--resume", "--checkpoint-every", "--d-model", "(default: 10)"],
        "generate": ["--model MODEL.pt", "--temperature", "--no-cache"],
        "decode": ["--labels N|FRACTION", "--windows N", "--unfreeze K", "--save-model"],
    }
    for option in expected[action]:
        assert option in text, option
