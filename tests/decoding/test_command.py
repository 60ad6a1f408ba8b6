"""``neuro brain3d``: the simulated pipeline, users' own files, and one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuro.cli import main
from neuro.decoding import Brain3DDecoder

ROOT = Path(__file__).resolve().parents[2]
#: The smallest run that exercises every stage: 8^3 objects, a few epochs.
TINY = [
    "--grid-size", "8", "--image-size", "32", "--latent-dim", "8", "--channels", "4", "8", "8",
    "--hidden", "16", "--ae-epochs", "2", "--epochs", "2", "--flow-epochs", "2",
    "--flow-steps", "4", "--test-size", "0.5", "--n-images", "2", "4",
    "--diagnosis-trials", "5", "--examples", "3", "--device", "cpu", "-q",
]  # fmt: skip


def test_simulated_run_writes_every_output(tmp_path):
    out = tmp_path / "run"
    assert (
        main(["brain3d", "--n-shapes", "48", "--shape-bank", "20", *TINY, "--out", str(out)]) == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["comparison"]) == {"decoder", "nearest-neighbour", "mean-object"}
    assert {v["metric"] for v in metrics["beats_nearest_neighbour"]} == {"iou", "chamfer"}
    assert metrics["settings"]["data"] == "simulated" and metrics["settings"]["n_test"] == 24
    assert "lesion" in metrics and "diagnosis" in metrics
    for name in ("per_object", "comparison", "lesion_sweep", "diagnosis_accuracy"):
        assert (out / f"{name}.csv").is_file(), name
    assert (out / "figures" / "examples.png").stat().st_size > 0
    assert "decoder vs nearest-neighbour" in (out / "summary.txt").read_text()
    # the decoded grids on disk are the saved model's samples of the held-out stimuli
    decoded = np.load(out / "decoded.npz")
    model = Brain3DDecoder.load(out / "model.pt")
    assert decoded["decoded"].shape == (24, 8, 8, 8) and model.grid_size_ == 8
    for mesh in (out / "meshes").glob("*.obj"):
        assert mesh.read_text().startswith(("v ", "#"))
    # a second run into the same folder is refused without --overwrite, in one line
    assert main(["brain3d", "--n-shapes", "48", *TINY, "--out", str(out)]) == 2


def _write_user_files(folder: Path):
    """A subject's NIfTI betas, trial table, ROI atlas and names, one mesh per stimulus."""
    import trimesh

    from data_loaders.simulate.shapes import simulate_shape_fmri
    from neuro.decoding.mesh import occupancy_to_mesh

    sim = simulate_shape_fmri(n_shapes=40, grid_size=16, image_size=32, voxels_per_roi=12, seed=3)
    paths = sim.subjects[0].write_nifti(folder / "func")
    meshes = folder / "meshes"
    meshes.mkdir()
    for k, grid in enumerate(sim.shapes.occupancy):
        v, f = occupancy_to_mesh(grid)
        trimesh.Trimesh(v * 37.0 + 5.0, f).export(meshes / f"stim_{k:03d}.ply")  # mm, offset
    (meshes / "materials.mtl").write_text("newmtl none\n")  # a stray file is skipped
    names = np.asarray(sim.shapes.category_names)[sim.shapes.categories]
    (folder / "categories.txt").write_text("category\n" + "\n".join(names) + "\n")
    return paths, meshes, folder / "categories.txt"


def test_users_nifti_and_meshes(tmp_path):
    paths, meshes, cats = _write_user_files(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in paths.values()}
    out = tmp_path / "run"
    args = [
        "brain3d", "--betas", str(paths["betas"]), "--trials", str(paths["trials"]),
        "--labels", str(paths["rois"]), "--label-names", str(paths["roi_names"]),
        "--mask", str(paths["mask"]), "--targets", str(meshes), "--categories", str(cats),
        *TINY, "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["data"].endswith("betas.nii.gz")
    assert metrics["settings"]["n_train"] + metrics["settings"]["n_test"] == 40
    assert metrics["comparison"]["decoder"]["category_correct"]["mean"] >= 0.0
    assert {p: p.stat().st_mtime_ns for p in paths.values()} == before  # inputs untouched


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--grid-size", "12"], "--grid-size must be a multiple of 8"),
        (["--targets", "x"], "needs both --betas"),
        (["--betas", "x.nii.gz"], "needs both --betas"),
        (["--trials", "t.tsv"], "--trials go with --betas"),
        (["--noise-vars", "0", "-1"], "--noise-vars are variances"),
        (["--early-rois", "V1", "V9"], "V9"),
        (["--lesion-rois", "FFA"], "FFA"),
        (["--n-images", "0"], "--n-images"),
        (["--shape-bank", "-1"], "--shape-bank must be"),
    ],
)
def test_bad_flags_fail_in_one_line(tmp_path, capsys, extra, message):
    argv = ["brain3d", "--n-shapes", "24", "--shape-bank", "0", *TINY, *extra]
    argv += ["--out", str(tmp_path / "o")]
    assert main(argv) == 2
    text = capsys.readouterr().err
    assert message in text and "Traceback" not in text
    assert len(text.strip().splitlines()) == 1, text


def test_user_files_that_do_not_fit_fail_in_one_line(tmp_path, capsys):
    paths, meshes, _ = _write_user_files(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "stim_000.obj").write_text("this is not a mesh\n")
    argv = [
        "brain3d", "--betas", str(paths["betas"]), "--trials", str(paths["trials"]),
        "--labels", str(paths["rois"]), "--label-names", str(paths["roi_names"]),
        "--targets", str(bad), *TINY, "--out", str(tmp_path / "o"),
    ]  # fmt: skip
    assert main(argv) == 2
    text = capsys.readouterr().err
    assert "stim_000.obj" in text and "Traceback" not in text
    # too few targets for the stimulus ids
    few = tmp_path / "few"
    few.mkdir()
    for p in sorted(meshes.glob("*.ply"))[:5]:
        (few / p.name).write_bytes(p.read_bytes())
    argv[argv.index(str(bad))] = str(few)
    assert main(argv) == 2
    assert "targets has 5 objects" in capsys.readouterr().err
    # the simulated shape bank does not go with users' data
    assert main([*argv, "--shape-bank", "10"]) == 2
    assert "--shape-bank adds simulated objects" in capsys.readouterr().err


def test_script_help_is_the_commands():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "brain3d.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "--noise-vars" in out.stdout and "--targets" in out.stdout
