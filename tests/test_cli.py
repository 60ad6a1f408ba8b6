import json
import subprocess
import sys

import pytest

from neuro import __version__
from neuro.cli import main, register_subcommand

TINY = [
    "--n-samples",
    "200",
    "--n-features",
    "7",
    "--n-voxels",
    "9",
    "--epochs",
    "3",
    "--batch-size",
    "16",
    "--lr",
    "0.05",
    "-q",
    "--device",
    "cpu",
]


def test_help_lists_subcommands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "COMMAND" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"neuro {__version__}"


def test_subcommand_help_has_common_options(capsys):
    with pytest.raises(SystemExit):
        main(["train-demo", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--device",
        "--seed",
        "--out",
        "--overwrite",
        "--resume",
        "--precision",
        "--devices",
    ):
        assert option in out


def test_console_script_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "neuro", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "demo" in proc.stdout


def test_demo_writes_outputs_and_recovers_the_planted_fields(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["train-demo", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "weight recovery" in printed
    for name in (
        "config.json",
        "metrics.json",
        "metrics.jsonl",
        "voxels.csv",
        "demo.png",
        "checkpoints/last.pt",
    ):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3
    assert 0 < metrics["test_r_mean"] <= metrics["noise_ceiling_mean"] + 0.1
    assert len((out / "voxels.csv").read_text().splitlines()) == 1 + 9


def test_demo_quality_with_default_sizes(tmp_path):
    out = tmp_path / "demo"
    assert main(["train-demo", "--out", str(out), "-q", "--device", "cpu", "--epochs", "15"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_r_over_ceiling"] > 0.9
    assert metrics["weight_recovery_r_mean"] > 0.8


def test_existing_output_is_refused_then_overwritten(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["train-demo", "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert "exists and is not empty" in err and "--overwrite" in err and "Traceback" not in err
    assert "--overwrite True" not in err and "overwrite=True" not in err
    assert main(["train-demo", "--out", str(out), "--overwrite", *TINY]) == 0
    assert (out / "mine.txt").read_text() == "keep"


def test_resume_continues_a_run(tmp_path):
    out = tmp_path / "demo"
    assert main(["train-demo", "--out", str(out), *TINY]) == 0
    args = [a if a != "3" else "5" for a in TINY]  # more epochs
    assert main(["train-demo", "--out", str(out), "--resume", *args]) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "tpu"], "device must be 'auto'"),
        (["--n-samples", "5"], "--n-samples must be at least 20"),
        (["--snr", "-1"], "snr must be finite and > 0"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, capsys, args, message):
    assert main(["train-demo", "--out", str(tmp_path / "o"), *TINY, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_resume_without_checkpoint(tmp_path, capsys):
    assert main(["train-demo", "--out", str(tmp_path / "none"), "--resume", *TINY]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_resume_refuses_a_folder_without_a_checkpoint(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    assert main(["train-demo", "--out", str(out), "--resume", *TINY]) == 2
    assert "no checkpoints/last.pt" in capsys.readouterr().err
    assert (out / "metrics.json").read_text() == "{}"


def test_register_rejects_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        register_subcommand("train-demo", "again", "neuro.train.demo")


def test_simulate_fmri_writes_a_readable_study(tmp_path, capsys):
    import numpy as np

    from data_loaders.stimuli import ImageFolder

    out = tmp_path / "sim"
    args = ["--stimuli", "12", "--repeats", "2", "--image-size", "24", "--voxels-per-roi", "2"]
    assert main(["simulate-fmri", "--out", str(out), "--subjects", "1", *args, "-q"]) == 0
    assert "sub-01" in capsys.readouterr().out
    assert len(ImageFolder(out / "stimuli")) == 12
    truth = np.load(out / "truth" / "sub-01.npz", allow_pickle=False)
    assert truth["clean"].shape[0] == 12 and set(truth["roi_labels"]) >= {"V1", "FFA"}
    for name in ("betas.nii.gz", "mask.nii.gz", "rois.nii.gz", "trials.tsv"):
        assert (out / "sub-01" / f"sub-01_{name}").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["subjects"][0]["n_trials"] == 24


def test_dendrites_subcommand_answers_a_query(tmp_path, capsys):
    out = tmp_path / "q"
    args = ["dendrites", "--n", "2000", "--a", "32", "--s", "30", "--theta", "15", "-q"]
    assert main([*args, "--out", str(out)]) == 0
    assert "3.26957e-21" in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())
    assert main([*args, "--out", str(tmp_path / "bad"), "--theta", "31"]) == 2
    assert "theta" in capsys.readouterr().err


@pytest.fixture
def probe(monkeypatch):
    from neuro import cli

    monkeypatch.setattr(cli, "SUBCOMMANDS", [*cli.SUBCOMMANDS])
    register_subcommand("probe", "fails as told", "tests.cli_probe")
    return "probe"


def test_input_errors_are_one_line_in_the_flags_language(probe, tmp_path, capsys):
    out = tmp_path / "new" / "run"
    assert main([probe, "--fail", "input", "--sampling-rate", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "neuro probe: error: --sampling-rate must be > 0; got 0.0. Also --sampling-rate 0."
    )
    assert not out.exists() and not out.parent.exists()  # no empty folder left behind


def test_library_names_become_the_commands_flags(probe, tmp_path, capsys):
    assert main([probe, "--fail", "alias", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("--betas: cannot read 'x.nii.gz'; the images of the stimuli are fine.")


def test_bugs_show_their_traceback(probe, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyError, match="a programming error"):
        main([probe, "--fail", "bug", "--out", str(out)])
    assert not out.exists()


def test_a_failed_run_keeps_a_folder_that_existed(probe, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    assert main([probe, "--fail", "input", "--out", str(out)]) == 2
    assert out.is_dir()
    assert main([probe, "--out", str(out)]) == 0
    assert (out / "done.txt").read_text() == "ok"


def test_every_subcommand_shows_each_default_once(capsys):
    from neuro.cli import SUBCOMMANDS

    for sc in SUBCOMMANDS:
        with pytest.raises(SystemExit):
            main([sc.name, "--help"])
        text = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
        for chunk in text.split(" -"):
            assert chunk.lower().count("default") <= 1, f"neuro {sc.name} --help: -{chunk}"


def test_errors_and_the_cli_import_neither_torch_nor_sklearn():
    """``--help`` of a command or script is instant: the error classes pull in no heavy import."""
    code = (
        "import sys, neuro.cli, neuro.errors\n"
        "from neuro.errors import CheckpointError, InputError\n"
        "heavy = [m for m in ('torch', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from neuro.errors import NotFittedError\n"
        "import sklearn.exceptions\n"
        "assert NotFittedError is sklearn.exceptions.NotFittedError\n"
        "from neuro.train.checkpoint import CheckpointError as C\n"
        "assert C is CheckpointError and issubclass(C, InputError)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
