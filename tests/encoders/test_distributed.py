"""compare_encoders_sliced: two CPU processes (gloo, torchrun) give one process's comparison.

The two-process runs are this module's ``__main__`` (one torchrun launch does
every scenario; its files are read by the tests)::

    python -m torch.distributed.run --standalone --nproc_per_node 2 \\
        -m tests.encoders.test_distributed DATA.npz OUT
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from neuro.encoders.features import GaborFeatures

ROOT = Path(__file__).resolve().parents[2]
N_VOXELS = 147  # odd: the two slices are 64 and 83 voxels
COUNT_DIR = "NEURO_TEST_FEATURE_CALLS"


class CountingGabor(GaborFeatures):
    """A small Gabor bank that records which process ran it (in ``$NEURO_TEST_FEATURE_CALLS``)."""

    def transform(self, images):
        folder = os.environ.get(COUNT_DIR)
        if folder:
            rank = os.environ.get("RANK", "0")
            with open(Path(folder) / f"rank{rank}", "a") as fh:
                fh.write("x")
        return super().transform(images)


def tiny_gabor(cls=GaborFeatures):
    return cls(n_orientations=2, frequencies=(0.25,), map_size=4, device="cpu")


def ridge_pair():
    from neuro.encoders.ridge import VoxelRidgeCV

    return [("ridge", VoxelRidgeCV(device="cpu")), ("ridge10", VoxelRidgeCV(alphas=[10.0]))]


# ----------------------------------------------------------------- the data
def write_data(path: Path) -> None:
    """A simulated subject (147 voxels, 2 sessions) with images and feature maps, as .npz."""
    from data_loaders.simulate.fmri import simulate_fmri

    sim = simulate_fmri(
        n_subjects=1, n_stimuli=100, image_size=32, voxels_per_roi=9, n_sessions=2, seed=1
    )
    sub = sim.subjects[0]
    e = sim.feature_maps
    np.savez(
        path,
        betas=sub.betas[:, :N_VOXELS],
        stimulus_ids=sub.stimulus_ids,
        session_ids=sub.session_ids,
        roi_labels=sub.roi_labels[:N_VOXELS],
        volume_shape=np.asarray(sub.geometry.volume_shape),
        affine=sub.geometry.affine,
        ijk=sub.geometry.ijk[:N_VOXELS],
        images=sim.stimuli.images,
        maps=e.reshape(len(e), 1, 8, 4, 8, 4).mean(axis=(3, 5)),
    )


def read_data(path: Path):
    """``(dataset, maps)`` from :func:`write_data`'s file."""
    from data_loaders.fmri import FMRIDataset
    from data_loaders.fmri.geometry import VoxelGeometry

    d = np.load(path)
    geometry = VoxelGeometry(tuple(d["volume_shape"].tolist()), d["affine"], d["ijk"])
    ds = FMRIDataset(
        d["betas"],
        d["stimulus_ids"],
        stimuli=d["images"],
        roi_labels=d["roi_labels"],
        geometry=geometry,
        session_ids=d["session_ids"],
        name="sub-01",
    )
    return ds, d["maps"]


def arrays(result) -> dict[str, np.ndarray]:
    out = {"ceiling": result.ceiling_r2, "roi_labels": result.roi_labels}
    for name in result.names:
        out[f"r_{name}"] = result.scores[name]
        out[f"r2_{name}"] = result.r2[name]
        out[f"normalized_{name}"] = result.normalized[name]
    return out


# ------------------------------------------------------- the two-process side
def worker(data: Path, out: Path) -> None:
    """Every scenario, in order; each rank writes what it saw as JSON, rank 0 the arrays."""
    from neuro.encoders.distributed import compare_encoders_sliced
    from neuro.errors import InputError
    from neuro.train import Runtime
    from tests.encoders.test_distributed import CountingGabor  # the class the test knows

    ds, maps = read_data(data)
    rank = int(os.environ["RANK"])
    seen: dict[str, object] = {}

    def record(name, result):
        seen[name] = {"none": result is None}
        if result is not None:
            np.savez(out / f"{name}.npz", **arrays(result))
            result.table.to_csv(out / f"{name}_table.csv", index=False)

    # A: array features, the runtime built from torchrun's variables, rank 0 writes out/a
    res = compare_encoders_sliced(
        ds, ridge_pair(), features=maps, device="cpu", out=out / "a", figures=False, n_boot=200
    )
    record("a", res)
    rt = Runtime(device="cpu", devices=2).launch()
    seen["world_size"] = rt.world_size
    # B: an extractor through the feature cache (rank 0 computes, rank 1 reads)
    os.environ[COUNT_DIR] = str(out / "calls")
    res = compare_encoders_sliced(
        ds,
        ["ridge"],
        features=tiny_gabor(CountingGabor),
        feature_cache=out / "features.h5",
        feature_key="gabor",
        runtime=rt,
        n_boot=50,
    )
    del os.environ[COUNT_DIR]
    record("b", res)
    # C: an extractor without a cache (rank 0 computes, the others receive)
    res = compare_encoders_sliced(
        ds, ["ridge"], features=tiny_gabor(), runtime=rt, seed=3, test_size=0.25, n_boot=50
    )
    record("c", res)
    # D: a readout is refused; E: accepted when asked, without its model
    try:
        compare_encoders_sliced(ds, ["ridge", "linear"], features=maps, runtime=rt)
    except InputError as err:
        seen["d"] = str(err)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = compare_encoders_sliced(
            ds,
            ["ridge", "linear"],
            features=maps,
            runtime=rt,
            allow_coupled=True,
            readout_kwargs={"epochs": 2},
            n_boot=20,
        )
    seen["e"] = {
        "none": res is None,
        "warnings": [str(w.message) for w in caught if "per voxel slice" in str(w.message)],
    }
    if res is not None:
        seen["e"].update(names=res.names, models=sorted(res.encoders), n=len(res.roi_labels))
    # F: rank 0 refuses a non-empty output folder; every rank stops
    try:
        compare_encoders_sliced(ds, ["ridge"], features=maps, runtime=rt, out=out / "a")
    except InputError as err:
        seen["f"] = [type(err).__name__, str(err)]
    (out / f"rank{rank}.json").write_text(json.dumps(seen))


# ---------------------------------------------------------------- the tests
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("sliced_data") / "data.npz"
    write_data(path)
    return path


def run_two(data: Path, out: Path) -> Path:
    """Run :func:`worker` in two processes (torchrun, gloo); returns the folder it wrote."""
    (out / "calls").mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", COUNT_DIR):
        env.pop(var, None)
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    args += ["-m", "tests.encoders.test_distributed", str(data), str(out)]
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="module")
def one_thread():
    """The references run on one thread, as each torchrun process does (OMP_NUM_THREADS=1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def dataset(data):
    return read_data(data)


def _same(saved: Path, result) -> None:
    got = np.load(saved)
    want = arrays(result)
    assert sorted(got.files) == sorted(want)
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_two_processes_give_one_process_comparison(data, dataset, tmp_path, one_thread):
    # one test for the whole torchrun launch, so that pytest-xdist starts it once
    two = run_two(data, tmp_path)
    check_array_features(two, *dataset)
    check_features_computed_once_through_the_cache(two, dataset[0])
    check_features_without_a_cache_are_sent_by_rank_zero(two, dataset[0])
    check_readouts_are_refused_in_one_line_unless_asked(two)
    check_a_refusal_on_rank_zero_stops_every_process(two)


def check_array_features(two: Path, ds, maps) -> None:
    from neuro.encoders.compare import compare_encoders
    from neuro.encoders.ridge import VoxelRidgeCV

    ref = compare_encoders(ds, ridge_pair(), features=maps, device="cpu", n_boot=200)
    _same(two / "a.npz", ref)
    assert (two / "a_table.csv").read_text() == ref.table.to_csv(index=False)
    # the output folder: one process's files, with the whole-brain models
    folder = two / "a"
    assert (folder / "roi_table.csv").read_text() == ref.table.to_csv(index=False)
    assert json.loads((folder / "metrics.json").read_text())["n_voxels"] == N_VOXELS
    for name in ("ridge", "ridge10"):
        model = VoxelRidgeCV.load(folder / "models" / f"{name}.pt")
        fitted = ref.encoders[name]
        for attr in ("coef_", "intercept_", "alpha_", "cv_scores_"):
            np.testing.assert_array_equal(getattr(model, attr), getattr(fitted, attr), attr)
        assert model.coef_.shape == (16 * 4, N_VOXELS)
    # rank 0 alone returned the result (the others None)
    ranks = [json.loads((two / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world_size"] == ranks[1]["world_size"] == 2
    assert [r["a"]["none"] for r in ranks] == [False, True]


def check_features_computed_once_through_the_cache(two: Path, ds) -> None:
    from neuro.encoders.compare import compare_encoders
    from neuro.encoders.features import cached_features

    assert (two / "calls" / "rank0").read_text() == "x"  # rank 0 computed them, once
    assert not (two / "calls" / "rank1").exists()  # rank 1 read the cache
    features = cached_features(tiny_gabor(CountingGabor), ds.stimuli, two / "features.h5", "gabor")
    assert features.shape == (100, 2, 4, 4)
    _same(
        two / "b.npz", compare_encoders(ds, ["ridge"], features=features, device="cpu", n_boot=50)
    )


def check_features_without_a_cache_are_sent_by_rank_zero(two: Path, ds) -> None:
    from neuro.encoders.compare import compare_encoders

    ref = compare_encoders(
        ds, ["ridge"], features=tiny_gabor(), device="cpu", seed=3, test_size=0.25, n_boot=50
    )
    _same(two / "c.npz", ref)


def check_readouts_are_refused_in_one_line_unless_asked(two: Path) -> None:
    ranks = [json.loads((two / f"rank{r}.json").read_text()) for r in (0, 1)]
    for seen in ranks:
        assert "\n" not in seen["d"]
        assert "['linear'] train all their voxels together" in seen["d"]
        assert "allow_coupled=True" in seen["d"]
    e0, e1 = ranks[0]["e"], ranks[1]["e"]
    assert e1 == {"none": True, "warnings": []}
    assert e0["none"] is False and e0["n"] == N_VOXELS
    assert e0["names"] == ["ridge", "linear"] and e0["models"] == ["ridge"]
    assert len(e0["warnings"]) == 1 and "['linear']" in e0["warnings"][0]


def check_a_refusal_on_rank_zero_stops_every_process(two: Path) -> None:
    ranks = [json.loads((two / f"rank{r}.json").read_text()) for r in (0, 1)]
    kind0, msg0 = ranks[0]["f"]
    kind1, msg1 = ranks[1]["f"]
    assert kind0 == "OutputExistsError" and "exists and is not empty" in msg0
    assert kind1 == "InputError" and msg1.startswith("process 0 failed: The output folder")


# ------------------------------------------------------ one process, no launcher
def test_one_process_is_compare_encoders(dataset, tmp_path, one_thread):
    from neuro.encoders.compare import compare_encoders
    from neuro.encoders.distributed import compare_encoders_sliced

    ds, maps = dataset
    kwargs = {"readout_kwargs": {"epochs": 2}, "n_boot": 50, "device": "cpu"}
    ref = compare_encoders(ds, ["ridge", "linear"], features=maps, **kwargs)
    got = compare_encoders_sliced(
        ds,
        ["ridge", "linear"],
        features=maps,
        **kwargs,
        out=tmp_path / "out",
        figures=False,
    )
    for key, value in arrays(ref).items():
        np.testing.assert_array_equal(arrays(got)[key], value, err_msg=key)
    assert (tmp_path / "out" / "models" / "linear.pt").exists()  # alone, readouts are fine
    from neuro.errors import OutputExistsError

    with pytest.raises(OutputExistsError, match="exists and is not empty"):
        compare_encoders_sliced(ds, ["ridge"], features=maps, device="cpu", out=tmp_path / "out")


@pytest.mark.parametrize(
    ("n", "parts", "align", "bounds"),
    [
        (147, 2, 64, [(0, 64), (64, 147)]),
        (128, 2, 64, [(0, 64), (64, 128)]),
        (300, 3, 64, [(0, 128), (128, 192), (192, 300)]),
        (50, 2, 64, [(0, 50), (50, 50)]),
        (10, 3, 1, [(0, 4), (4, 7), (7, 10)]),
        (200, 4, 32, [(0, 64), (64, 128), (128, 160), (160, 200)]),
    ],
)
def test_voxel_slices(n, parts, align, bounds):
    from neuro.encoders.distributed import voxel_slices

    got = voxel_slices(n, parts, align)
    assert [(s.start, s.stop) for s in got] == bounds
    assert np.array_equal(np.concatenate([np.arange(n)[s] for s in got]), np.arange(n))


def test_arguments_are_checked():
    from neuro.encoders.distributed import compare_encoders_sliced, voxel_slices
    from neuro.errors import InputError, InputTypeError

    with pytest.raises(InputError, match="n_parts must be an integer >= 1"):
        voxel_slices(10, 0)
    # checked before the dataset is looked at
    with pytest.raises(InputError, match="voxel_align must be an integer >= 1"):
        compare_encoders_sliced(None, voxel_align=0)
    with pytest.raises(InputTypeError, match="allow_coupled"):
        compare_encoders_sliced(None, allow_coupled="yes")


@pytest.mark.parametrize(
    ("env", "layout"),
    [
        ({}, (1, 1)),
        ({"LOCAL_WORLD_SIZE": "4", "WORLD_SIZE": "8"}, (4, 2)),
        ({"SLURM_NTASKS": "6", "SLURM_NNODES": "3", "SLURM_JOB_NAME": "fit"}, (2, 3)),
        ({"SLURM_NTASKS": "6", "SLURM_NNODES": "3", "SLURM_JOB_NAME": "interactive"}, (1, 1)),
    ],
)
def test_launcher_layout(monkeypatch, env, layout):
    from neuro.encoders.distributed import launcher_layout

    for var in ("LOCAL_WORLD_SIZE", "WORLD_SIZE", "SLURM_NTASKS", "SLURM_NNODES", "SLURM_JOB_NAME"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert launcher_layout() == layout


if __name__ == "__main__":
    worker(Path(sys.argv[1]), Path(sys.argv[2]))
