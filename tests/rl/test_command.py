"""``neuro rl``: trains per objective and seed, writes the comparison, resumes, refuses bad flags."""

import json

import numpy as np
import pandas as pd
import pytest

from neuro.cli import main

FAST = ["--grid-size", "4", "--episodes", "2", "--batch-size", "16", "--latent-dim", "3"]
FAST += ["--permutations", "0", "--device", "cpu", "-q"]


def _run(args, out, capsys):
    status = main(["rl", *args, "--out", str(out)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_writes_comparison_and_models(tmp_path, capsys):
    out = tmp_path / "run"
    status, stdout, _ = _run([*FAST, "--seeds", "0", "1", "--gamma-p", "0", "0.8"], out, capsys)
    assert status == 0
    assert "claims (95% intervals over seeds)" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["configs"]) == ["model-free", "predictive_gp0", "predictive_gp0.8"]
    assert metrics["seeds"] == [0, 1]
    assert {v["key"] for v in metrics["verdicts"]} >= {"speed", "geometry", "transition_tuning"}
    transfer = [v for v in metrics["verdicts"] if v["key"].startswith("transfer")]
    assert {v["verdict"] for v in transfer} == {"not run"}  # no --transfer
    npz = np.load(out / "curves.npz", allow_pickle=False)
    assert npz["curves/predictive_gp0.8"].shape == (2, 2)
    report = pd.read_csv(out / "module_report.csv")
    assert set(report["module"]) == {"encoder", "transition", "q"}
    for name in metrics["configs"]:
        for seed in (0, 1):
            assert (out / "models" / f"{name}_seed{seed}.pt").is_file()
            assert (
                out / "checkpoints" / f"{name}_seed{seed}" / "checkpoints" / "last.pt"
            ).is_file()
    assert (out / "figures" / "learning_curves.png").is_file()
    # an existing output is refused without --overwrite, before any training
    status, _, err = _run(FAST, out, capsys)
    assert status == 2 and "--overwrite" in err and err.count("\n") == 1
    status, _, _ = _run([*FAST, "--seeds", "0", "--overwrite", "--no-figures"], out, capsys)
    assert status == 0


def test_transfer_runs_both_modes(tmp_path, capsys):
    out = tmp_path / "run"
    args = [*FAST, "--grid-size", "5", "--seeds", "0", "1", "--transfer", "--no-figures"]
    status, _, _ = _run(
        [*args, "--objectives", "predictive", "--transfer-episodes", "1"], out, capsys
    )
    assert status == 0
    npz = np.load(out / "curves.npz", allow_pickle=False)
    assert npz["transfer_frozen/predictive_gp0.8"].shape == (2, 1)
    assert npz["transfer_unfrozen/predictive_gp0"].shape == (2, 1)


def test_resume_after_kill_equals_uninterrupted(tmp_path, capsys, monkeypatch):
    from neuro.rl.agent import PredictiveAgent

    args = [*FAST, "--episodes", "4", "--seeds", "0", "--gamma-p", "0.5", "--checkpoint-every", "1"]
    args += ["--no-figures"]
    whole = tmp_path / "whole"
    assert _run(args, whole, capsys)[0] == 0

    killed = tmp_path / "killed"
    calls = {"n": 0}
    evaluate = PredictiveAgent._evaluate

    def dies(self, *a, **k):  # killed during the second agent's third episode
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return evaluate(self, *a, **k)

    monkeypatch.setattr(PredictiveAgent, "_evaluate", dies)
    status, _, err = _run(args, killed, capsys)
    assert status == 130 and "interrupted" in err
    monkeypatch.setattr(PredictiveAgent, "_evaluate", evaluate)
    status, _, _ = _run([*args, "--resume"], killed, capsys)
    assert status == 0
    a = np.load(whole / "curves.npz", allow_pickle=False)
    b = np.load(killed / "curves.npz", allow_pickle=False)
    assert sorted(a.files) == sorted(b.files)
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    pd.testing.assert_frame_equal(
        pd.read_csv(whole / "module_report.csv"), pd.read_csv(killed / "module_report.csv")
    )
    # more episodes with --resume train only the rest
    status, _, _ = _run([*args[:-1], "--episodes", "5", "--resume", "--no-figures"], killed, capsys)
    assert status == 0
    assert np.load(killed / "curves.npz")["curves/model-free"].shape == (1, 5)


def test_resume_refuses_folder_without_checkpoints(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    status, _, err = _run([*FAST, "--resume"], out, capsys)
    assert status == 2 and "no checkpoints/last.pt" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--env", "neuro/Maze-v9"], "--env: unknown task 'neuro/Maze-v9'; known: neuro/GridWorld"),
        (["--gamma-p", "1.0"], "--gamma-p must be < 1.0; got 1.0."),
        (["--gamma-p", "-0.2"], "--gamma-p must be >= 0.0; got -0.2."),
        (["--gamma-p", "0.5", "--objectives", "model-free"], "add predictive to --objectives"),
        (["--gamma-p", "0.5", "0.5"], "--gamma-p names 0.5 more than once"),
        (["--weights", "1", "2", "3"], "--weights takes 4 numbers [pos, neg_neighbour"),
        (["--weights", "1", "1", "1", "-1"], "--weights must be 4 finite non-negative"),
        (
            ["--obs-mode", "texture", "--texture-size", "3"],
            "--texture-size must be an integer >= 4",
        ),
        (["--texture-size", "8"], "--texture-size applies to --obs-mode texture"),
        (["--grid-size", "1"], "--grid-size must be an integer >= 2; got 1."),
        (["--env", "neuro/LinearTrack-v0", "--grid-size", "5"], "--grid-size applies to the grid"),
        (["--objectives", "greedy"], "--objectives: unknown value 'greedy'; choose among"),
        (["--objectives", "entropy", "entropy"], "--objectives names entropy more than once"),
        (["--encoder-size", "huge"], "--encoder-size: unknown value 'huge'"),
        (["--seeds", "1", "1"], "--seeds names 1 more than once"),
        (["--seeds", "-1"], "--seeds must be an integer >= 0; got -1."),
        (["--episodes", "0"], "--episodes must be an integer >= 1; got 0."),
        (["--lr", "0"], "--lr must be > 0.0; got 0.0."),
        (["--batch-size", "0"], "--batch-size must be an integer >= 1; got 0."),
        (["--latent-dim", "0"], "--latent-dim must be an integer >= 1; got 0."),
        (["--max-steps", "0"], "--max-steps must be an integer >= 1; got 0."),
        (["--target-update", "0"], "--target-update must be an integer >= 1; got 0."),
        (["--transfer-episodes", "0"], "--transfer-episodes must be an integer >= 1"),
        (["--transfer", "--grid-size", "3"], "--transfer: no free cell is more than"),
        (["--transfer", "--env", "neuro/LinearTrack-v0"], "--transfer moves the goal of a grid"),
        (["--device", "tpu"], "--device must be 'auto', 'cpu'"),
    ],
)
def test_bad_flags_refused_before_training(flags, message, tmp_path, capsys, monkeypatch):
    from neuro.rl.agent import PredictiveAgent

    def no_training(self, *a, **k):
        raise AssertionError("an agent trained before the flags were checked")

    monkeypatch.setattr(PredictiveAgent, "fit", no_training)
    args = list(FAST)
    if "--device" in flags:  # the flag under test replaces FAST's
        args = [a for a in args if a not in ("--device", "cpu")]
    if "--env" in flags:  # FAST's --grid-size is for the grid tasks only
        i = args.index("--grid-size")
        args = args[:i] + args[i + 2 :]
    out = tmp_path / "bad"
    status, _, err = _run([*args, *flags], out, capsys)
    assert status == 2
    assert err.startswith("neuro rl: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert not out.exists()  # a refused run leaves no folder behind
