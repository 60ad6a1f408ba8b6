"""Encoders fit surface data as they fit voxels: columns are vertices, maps are GIfTI."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd

from data_loaders.fmri.surface import load_surface_betas, write_surface_betas
from neuro.encoders.compare import compare_encoders

N_VERTICES = 10242  # fsaverage5


def test_a_planted_surface_patch_is_found_and_mapped_back(tmp_path):
    rng = np.random.default_rng(0)
    n_stimuli, n_repeats, n_features = 60, 2, 12
    features = rng.normal(size=(n_stimuli, n_features)).astype(np.float32)
    ids = np.concatenate([rng.permutation(n_stimuli) for _ in range(n_repeats)])
    sessions = np.repeat([1, 2], n_stimuli)
    # a labelled patch of 40 vertices per hemisphere: the first 20 respond, the rest do not
    patch = {h: np.sort(rng.choice(N_VERTICES, 40, replace=False)) for h in ("left", "right")}
    labels, betas = {}, {}
    for h, verts in patch.items():
        lab = np.zeros(N_VERTICES, dtype=np.int32)
        lab[verts] = 1
        labels[h] = lab
        weights = np.zeros((n_features, N_VERTICES), dtype=np.float32)
        weights[:, verts[:20]] = rng.normal(size=(n_features, 20))
        b = features[ids] @ weights + 0.5 * rng.normal(size=(len(ids), N_VERTICES))
        betas[h] = (b + 3.0 * (sessions == 2)[:, None]).astype(np.float32)  # a session shift
    files = write_surface_betas(tmp_path / "sub-01", betas["left"], betas["right"])
    trials = pd.DataFrame({"stimulus_id": ids, "session": sessions})
    surf = load_surface_betas(
        files["left"][0],
        files["right"][0],
        trials,
        labels=labels,
        label_names={1: "patch"},
        mask="labelled",
    )
    ds = surf.to_dataset(name="sub-01")
    assert ds.n_voxels == 80 and ds.n_sessions == 2 and ds.geometry.kind == "surface"
    result = compare_encoders(ds, ["ridge"], features=features, device="cpu", n_boot=100)
    responsive = np.concatenate(
        [
            np.isin(ds.geometry.vertex[ds.geometry.hemi == h], patch[h][:20])
            for h in ("left", "right")
        ]
    )
    r = result.scores["ridge"]
    assert r[responsive].mean() > 0.8 and abs(r[~responsive].mean()) < 0.15
    voxels = result.voxel_table()
    assert voxels.columns[:2].tolist() == ["hemi", "vertex"]
    out = result.save(tmp_path / "fit")
    for h, short in (("left", "lh"), ("right", "rh")):
        img = nib.load(out / "maps" / f"r_ridge.{short}.func.gii")
        values = np.asarray(img.darrays[0].data)
        assert values.shape == (N_VERTICES,)
        cols = ds.geometry.hemi == h
        np.testing.assert_allclose(values[ds.geometry.vertex[cols]], r[cols], rtol=1e-6)
        assert np.isnan(np.delete(values, ds.geometry.vertex[cols])).all()
        best = np.asarray(nib.load(out / "maps" / f"best_model.{short}.func.gii").darrays[0].data)
        assert set(np.unique(best)) == {0.0, 1.0}
    assert (out / "figures" / "r_ridge.png").is_file()


def test_a_mesh_that_cannot_be_drawn_still_gets_its_maps(tmp_path):
    """Native or fsaverage6 meshes are not shipped with nilearn: figures are skipped, maps kept."""
    import pytest

    rng = np.random.default_rng(1)
    n_vertices, ids = 500, np.tile(np.arange(30), 2)
    features = rng.normal(size=(30, 5)).astype(np.float32)
    betas = features[ids] @ rng.normal(size=(5, n_vertices)) + rng.normal(size=(60, n_vertices))
    files = write_surface_betas(tmp_path / "native", betas.astype(np.float32))
    ds = load_surface_betas(files["left"][0], None, ids).to_dataset()
    result = compare_encoders(ds, ["ridge"], features=features, device="cpu", n_boot=50)
    with pytest.warns(UserWarning, match="No surface figure of ridge"):
        out = result.save(tmp_path / "fit")
    values = np.asarray(nib.load(out / "maps" / "r_ridge.lh.func.gii").darrays[0].data)
    np.testing.assert_allclose(values, result.scores["ridge"], rtol=1e-6)
    assert (out / "models" / "ridge.pt").is_file()


def test_fit_encoder_on_surface_files_equals_the_python_api(tmp_path):
    """``neuro fit-encoder --surface lh rh --surface-labels ...`` and the Python path agree."""
    import json

    from neuro.cli import main

    rng = np.random.default_rng(2)
    n_stimuli, n_vertices = 40, 642  # fsaverage3
    features = rng.normal(size=(n_stimuli, 6)).astype(np.float32)
    ids = np.concatenate([rng.permutation(n_stimuli) for _ in range(2)])
    sessions = np.repeat([1, 2], n_stimuli)
    hemis = {}
    for h in ("lh", "rh"):
        weights = rng.normal(size=(6, n_vertices))
        b = features[ids] @ weights + rng.normal(size=(len(ids), n_vertices)) + sessions[:, None]
        hemis[h] = b.astype(np.float32)
    files = write_surface_betas(tmp_path / "sub-01", hemis["lh"], hemis["rh"])
    pd.DataFrame({"stimulus_id": ids, "session": sessions}).to_csv(
        tmp_path / "trials.tsv", sep="\t", index=False
    )
    labels = []
    for h in ("lh", "rh"):
        lab = (np.arange(n_vertices) % 3).astype(np.int32)  # 0 = unknown, 1, 2
        ctab = np.array([[25, 5, 25, 0, 0], [200, 0, 0, 0, 0], [0, 0, 200, 0, 0]], dtype=np.int32)
        path = tmp_path / f"{h}.aparc.annot"
        nib.freesurfer.write_annot(path, lab, ctab, [b"unknown", b"dorsal", b"ventral"])
        labels.append(path)
    np.save(tmp_path / "features.npy", features)
    out = tmp_path / "cli"
    args = ["fit-encoder", "--surface", str(files["left"][0]), str(files["right"][0])]
    args += ["--surface-labels", *map(str, labels), "--trials", str(tmp_path / "trials.tsv")]
    args += ["--features", str(tmp_path / "features.npy"), "--model", "ridge", "--device", "cpu"]
    import pytest

    with pytest.warns(UserWarning, match="No surface figure"):  # fsaverage3: not drawn
        assert main([*args, "--out", str(out), "-q"]) == 0
    surf = load_surface_betas(
        files["left"][0],
        files["right"][0],
        tmp_path / "trials.tsv",
        labels={"left": labels[0], "right": labels[1]},
    )
    ds = surf.to_dataset()
    assert ds.n_sessions == 2 and set(ds.rois) == {"dorsal", "ventral"}
    api = compare_encoders(ds, ["ridge"], features=features, device="cpu")
    cli = json.loads((out / "metrics.json").read_text())
    expected = json.loads(json.dumps(api.summary()))
    for metrics in (cli, expected):
        metrics["encoders"]["ridge"].pop("fit_seconds")
    assert cli == expected
    assert (out / "maps" / "r_ridge.lh.func.gii").is_file()
    assert main([*args, "--mask", str(labels[0]), "--out", str(tmp_path / "x"), "-q"]) == 2
