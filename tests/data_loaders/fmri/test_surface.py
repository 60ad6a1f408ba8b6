"""Surface betas: GIfTI / MGH in and out, vertex labels, SurfaceGeometry maps and plots, bad input."""

from __future__ import annotations

import gzip
import re

import matplotlib
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from data_loaders.errors import (
    InputError,
    InputTypeError,
    MissingFileError,
    OutputExistsError,
    UnreadableFileError,
)
from data_loaders.fmri._common import FMRIDataWarning
from data_loaders.fmri.surface import (
    SurfaceBetas,
    SurfaceGeometry,
    load_surface_betas,
    read_surface_labels,
    write_surface_betas,
)

matplotlib.use("Agg")

N_VERT = 10242  # fsaverage5
N_TRIALS = 7
NAMES = ["unknown", "V1", "V2", "FFA"]  # annot order; "unknown" is the medial wall
BAD = {"left": [3, 10], "right": [5]}  # constant (medial wall written as 0)


@pytest.fixture(scope="module")
def planted():
    """Betas per hemisphere (n_trials, n_vertices), labels, ids and sessions."""
    rng = np.random.default_rng(1)
    betas = {h: rng.normal(size=(N_TRIALS, N_VERT)).astype(np.float32) for h in ("left", "right")}
    for h, verts in BAD.items():
        betas[h][:, verts] = 0.0
    codes = {h: rng.integers(0, len(NAMES), size=N_VERT) for h in ("left", "right")}
    codes["left"][:50] = -1  # vertices in no region
    ids = np.array([0, 3, 1, 3, 2, 0, 4])
    sessions = np.array([1, 1, 1, 2, 2, 2, 2])
    return betas, codes, ids, sessions


def _names(codes):
    return np.array(["" if c <= 0 else NAMES[c] for c in codes])


@pytest.fixture(scope="module")
def files(tmp_path_factory, planted):
    betas, codes, ids, sessions = planted
    d = tmp_path_factory.mktemp("surf")
    out = {
        "gifti": write_surface_betas(d / "sub-01_task-img", betas["left"], betas["right"]),
        "gifti_ts": write_surface_betas(
            d / "ts", betas["left"], betas["right"], intent="NIFTI_INTENT_TIME_SERIES"
        ),
        "gifti_2d": write_surface_betas(d / "two_d", betas["left"], betas["right"], layout="2d"),
        "mgh": write_surface_betas(d / "betas", betas["left"], betas["right"], fmt="mgh"),
        "mgz": write_surface_betas(d / "betas", betas["left"], betas["right"], fmt="mgz"),
        "per_trial": write_surface_betas(
            d / "trial", betas["left"], betas["right"], layout="per_trial"
        ),
        "per_trial_mgh": write_surface_betas(
            d / "trial", betas["left"], betas["right"], fmt="mgh", layout="per_trial"
        ),
    }
    ctab = np.array([[25, 5, 25, 0], [200, 0, 0, 0], [0, 200, 0, 0], [0, 0, 200, 0]])
    for h, short in (("left", "lh"), ("right", "rh")):
        path = d / f"{short}.aparc.annot"
        nib.freesurfer.write_annot(path, codes[h], ctab, NAMES, fill_ctab=True)
        out[f"annot_{h}"] = path
        table = nib.gifti.GiftiLabelTable()
        for key, name in enumerate(["???", *NAMES[1:]]):
            lab = nib.gifti.GiftiLabel(key=key, red=0.5, green=0.5, blue=0.5, alpha=1.0)
            lab.label = name
            table.labels.append(lab)
        darray = nib.gifti.GiftiDataArray(
            np.clip(codes[h], 0, None).astype(np.int32),
            intent="NIFTI_INTENT_LABEL",
            datatype="NIFTI_TYPE_INT32",
        )
        gii = nib.gifti.GiftiImage(darrays=[darray], labeltable=table)
        out[f"labelgii_{h}"] = d / f"{short}.rois.label.gii"
        nib.save(gii, out[f"labelgii_{h}"])
        mgz = nib.MGHImage(np.clip(codes[h], 0, None).astype(np.int32)[:, None, None], np.eye(4))
        out[f"mgz_{h}"] = d / f"{short}.rois.mgz"
        nib.save(mgz, out[f"mgz_{h}"])
    (d / "rois.ctab").write_text(
        "# index name r g b a\n0 Unknown 0 0 0 0\n1 V1 200 0 0 0\n2 V2 0 200 0 0\n3 FFA 0 0 200 0\n"
    )
    out["ctab"] = d / "rois.ctab"
    pd.DataFrame(
        {"onset": np.arange(N_TRIALS) * 4.0, "stimulus_id": ids, "session": sessions}
    ).to_csv(d / "trials.tsv", sep="\t", index=False)
    out["tsv"] = d / "trials.tsv"
    out["dir"] = d
    return out


def _check_values(out, betas, keep=None):
    """Every column holds the planted betas of its (hemisphere, vertex)."""
    geo = out.geometry
    for h in ("left", "right"):
        sel = geo.hemi == h
        np.testing.assert_array_equal(out.betas[:, sel], betas[h][:, geo.vertex[sel]])
    if keep is not None:
        for h in ("left", "right"):
            np.testing.assert_array_equal(np.sort(geo.vertex[geo.hemi == h]), keep[h])


def _kept(*_):
    return {h: np.setdiff1d(np.arange(N_VERT), BAD[h]) for h in ("left", "right")}


@pytest.mark.parametrize(
    "key", ["gifti", "gifti_ts", "gifti_2d", "mgh", "mgz", "per_trial", "per_trial_mgh"]
)
def test_every_layout_reads_back_the_planted_values(files, planted, key):
    betas, _, ids, _ = planted
    left, right = files[key]["left"], files[key]["right"]
    if len(left) == 1:
        left, right = left[0], right[0]
    with pytest.warns(
        FMRIDataWarning, match=r"Dropped 3 of 20484 vertices: 0 with NaN .* 3 constant"
    ):
        out = load_surface_betas(left, right, ids, mesh="fsaverage5")
    assert isinstance(out, SurfaceBetas)
    assert out.betas.shape == (N_TRIALS, 2 * N_VERT - 3) and out.betas.dtype == np.float32
    assert out.n_trials == N_TRIALS and out.n_voxels == out.geometry.n_voxels
    np.testing.assert_array_equal(out.stimulus_ids, ids)
    _check_values(out, betas, _kept())
    # columns: left first, vertices in increasing order
    assert (out.geometry.hemi[: N_VERT - 2] == "left").all()
    assert np.all(np.diff(out.geometry.vertex[: N_VERT - 2]) > 0)
    assert out.geometry.mesh == "fsaverage5" and out.session_ids is None and out.trials is None
    assert (out.roi_labels == "").all()


@pytest.mark.parametrize("kind", ["annot", "labelgii", "mgz_dict", "mgz_ctab", "label_files"])
def test_labels_in_every_format_name_the_right_vertices(files, planted, kind, tmp_path):
    codes = planted[1]
    label_names = None
    if kind == "label_files":  # one FreeSurfer .label per region, as FreeSurfer writes them
        labels = {}
        for h, short in (("left", "lh"), ("right", "rh")):
            labels[h] = []
            for c in (1, 2, 3):
                verts = np.flatnonzero(codes[h] == c)
                path = tmp_path / f"{short}.{NAMES[c]}.label"
                rows = "".join(f"{v} 0.0 0.0 0.0 0.0\n" for v in verts)
                path.write_text(f"#!ascii label, from subject fsaverage5\n{len(verts)}\n{rows}")
                labels[h].append(path)
    else:
        prefix = {"mgz_dict": "mgz", "mgz_ctab": "mgz"}.get(kind, kind)
        labels = (files[f"{prefix}_left"], files[f"{prefix}_right"])
        label_names = {
            "mgz_dict": {1: "V1", 2: "V2", 3: "FFA"},
            "mgz_ctab": files["ctab"],
        }.get(kind)
    with pytest.warns(FMRIDataWarning):
        out = load_surface_betas(
            files["gifti"]["left"][0],
            files["gifti"]["right"][0],
            files["tsv"],
            labels=labels,
            label_names=label_names,
        )
    geo = out.geometry
    for h in ("left", "right"):
        sel = geo.hemi == h
        np.testing.assert_array_equal(out.roi_labels[sel], _names(codes[h])[geo.vertex[sel]])
    np.testing.assert_array_equal(out.session_ids, planted[3])
    assert list(out.trials.columns) == ["onset", "stimulus_id", "session"]


def test_rois_and_mask_keep_the_chosen_vertices(files, planted):
    betas, codes, ids, _ = planted
    labels = {"left": files["annot_left"], "right": files["annot_right"]}
    out = load_surface_betas(
        files["mgh"]["left"][0], files["mgh"]["right"][0], ids, labels=labels, rois=["V1", "FFA"]
    )
    assert set(out.roi_labels) <= {"V1", "FFA"}
    expected = sum(int(np.isin(codes[h], [1, 3]).sum()) for h in ("left", "right"))
    dropped = sum(int(np.isin(codes[h][BAD[h]], [1, 3]).sum()) for h in ("left", "right"))
    assert out.n_voxels == expected - dropped
    _check_values(out, betas)

    with pytest.warns(FMRIDataWarning):
        labelled = load_surface_betas(
            files["mgh"]["left"][0], files["mgh"]["right"][0], ids, labels=labels, mask="labelled"
        )
    assert "" not in set(labelled.roi_labels)
    mask = {"left": np.zeros(N_VERT, bool), "right": np.zeros(N_VERT, bool)}
    mask["left"][[1, 2, 3]] = True  # vertex 3 is constant: dropped
    mask["right"][[7]] = True
    with pytest.warns(FMRIDataWarning, match="Dropped 1 of 4 vertices"):
        small = load_surface_betas(
            files["mgh"]["left"][0], files["mgh"]["right"][0], ids, mask=mask
        )
    assert small.geometry.hemi.tolist() == ["left", "left", "right"]
    assert small.geometry.vertex.tolist() == [1, 2, 7]


def test_one_hemisphere_and_a_single_2d_gifti(planted, tmp_path):
    betas, _, ids, _ = planted
    data = betas["left"][:, 100:700]  # (n_trials, 600) with nothing bad
    darray = nib.gifti.GiftiDataArray(np.ascontiguousarray(data.T))  # (n_vertices, n_trials)
    path = tmp_path / "sub-01_hemi-L_bold.func.gii"
    nib.save(nib.gifti.GiftiImage(darrays=[darray]), path)
    out = load_surface_betas(path, trials=ids)
    assert out.geometry.hemispheres == ("left",) and out.geometry.n_vertices["left"] == 600
    np.testing.assert_array_equal(out.betas, data)


def test_save_map_then_reread_gives_the_values_and_nan_elsewhere(files, planted, tmp_path):
    ids = planted[2]
    with pytest.warns(FMRIDataWarning):
        out = load_surface_betas(files["gifti"]["left"][0], files["gifti"]["right"][0], ids)
    values = np.arange(out.n_voxels, dtype=np.float32) / 7.0
    paths = out.save_map(values, tmp_path / "maps" / "r_ridge")
    assert [p.name for p in paths] == ["r_ridge.lh.func.gii", "r_ridge.rh.func.gii"]
    geo = out.geometry
    for h, p in zip(("left", "right"), paths, strict=True):
        img = nib.load(p)
        assert (
            img.meta["AnatomicalStructurePrimary"]
            == {"left": "CortexLeft", "right": "CortexRight"}[h]
        )
        full = img.darrays[0].data
        assert full.shape == (N_VERT,) and full.dtype == np.float32
        sel = geo.hemi == h
        np.testing.assert_array_equal(full[geo.vertex[sel]], values[sel])
        assert np.isnan(full[BAD[h]]).all() and np.isfinite(full).sum() == sel.sum()
    with pytest.raises(
        OutputExistsError, match=r"r_ridge\.lh\.func\.gii' exists; pass overwrite=True"
    ):
        out.save_map(values, tmp_path / "maps" / "r_ridge")
    assert out.save_map(values * 2, tmp_path / "maps" / "r_ridge", overwrite=True) == paths
    np.testing.assert_array_equal(
        nib.load(paths[0]).darrays[0].data[geo.vertex[geo.hemi == "left"]],
        2 * values[geo.hemi == "left"],
    )

    two = np.stack([values, -values])
    mgh_paths = out.save_map(two, tmp_path / "maps" / "r", fmt="mgz", fill=0.0)
    assert [p.name for p in mgh_paths] == ["r.lh.mgz", "r.rh.mgz"]
    data = np.asarray(nib.load(mgh_paths[1]).dataobj)
    assert data.shape == (N_VERT, 1, 1, 2)
    sel = geo.hemi == "right"
    np.testing.assert_array_equal(data[geo.vertex[sel], 0, 0, 1], -values[sel])
    assert data[BAD["right"], 0, 0, :].tolist() == [[0.0, 0.0]]


def test_to_images_shapes():
    geo = SurfaceGeometry({"lh": 6, "rh": 5}, ["rh", "lh", "lh"], [4, 0, 5])
    imgs = geo.to_images(np.ones((3, 3)), fmt="mgh")
    assert imgs["left"].shape == (6, 1, 1, 3) and imgs["right"].shape == (5, 1, 1, 3)
    gii = geo.to_images([1.0, 2.0, 3.0])
    assert len(gii["left"].darrays) == 1
    assert gii["left"].darrays[0].data.tolist()[0] == 2.0 and gii["right"].darrays[0].data[4] == 1.0
    with pytest.raises(InputError, match="values have 2 entries .* 3 columns"):
        geo.to_images([1.0, 2.0])


def test_plot_draws_both_hemispheres_on_the_bundled_fsaverage5():
    from matplotlib.figure import Figure

    geo = SurfaceGeometry.full({"left": N_VERT, "right": N_VERT}, mesh="fsaverage5").subset(
        np.arange(0, 2 * N_VERT, 3)
    )
    values = np.sin(np.arange(geo.n_voxels) / 50.0)
    fig = geo.plot(values, title="r (ridge)")
    assert isinstance(fig, Figure)
    assert len([ax for ax in fig.axes if ax.name == "3d"]) == 2
    assert fig._suptitle.get_text() == "r (ridge)"


def test_plot_refuses_a_mesh_of_another_size(tmp_path):
    geo = SurfaceGeometry.full({"left": 642, "right": 642}, mesh="fsaverage3")
    with pytest.raises(InputError, match=r"'fsaverage3' does not ship with nilearn .* mesh files"):
        geo.plot(np.zeros(geo.n_voxels))
    with pytest.raises(
        InputError,
        match=r"mesh\['left'\] has 10242 vertices but the data's left hemisphere has 642 \(fsaverage3",
    ):
        geo.plot(np.zeros(geo.n_voxels), mesh="fsaverage5")
    coords = np.random.default_rng(0).normal(size=(5, 3))
    faces = np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    surf = tmp_path / "lh.tiny.surf.gii"
    nib.save(
        nib.gifti.GiftiImage(
            darrays=[
                nib.gifti.GiftiDataArray(coords.astype(np.float32), intent="NIFTI_INTENT_POINTSET"),
                nib.gifti.GiftiDataArray(faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE"),
            ]
        ),
        surf,
    )
    with pytest.raises(InputError, match=r"mesh\['left'\] has 5 vertices .* has 642"):
        geo.plot(np.zeros(geo.n_voxels), mesh={"left": surf, "right": surf})
    with pytest.raises(InputError, match="plot draws one map"):
        geo.plot(np.zeros((2, geo.n_voxels)), mesh="fsaverage5")


@pytest.mark.filterwarnings("ignore:(Unknown extension code|No volume information):UserWarning")
def test_mesh_files_give_vertex_coordinates(planted, tmp_path):
    rng = np.random.default_rng(3)
    coords = rng.normal(size=(12, 3)).astype(np.float32)
    faces = np.array([[0, 1, 2], [2, 3, 4]], dtype=np.int32)
    surf = tmp_path / "lh.white"
    nib.freesurfer.write_geometry(surf, coords, faces)
    data = rng.normal(size=(3, 12)).astype(np.float32)
    paths = write_surface_betas(tmp_path / "tiny", data)
    out = load_surface_betas(paths["left"][0], trials=[0, 1, 2], mesh={"left": surf})
    np.testing.assert_allclose(out.geometry.coords, coords, atol=1e-6)
    with pytest.raises(
        InputError, match=r"mesh\['left'\] has 12 vertices but the left responses have 10242"
    ):
        load_surface_betas(
            write_surface_betas(tmp_path / "big", np.ones((2, N_VERT)) * [[1], [2]])["left"][0],
            trials=[0, 1],
            mesh={"left": surf},
        )


# ------------------------------------------------------------------ geometry
def test_geometry_validates_and_is_read_only():
    geo = SurfaceGeometry({"right": 4, "left": 5}, np.array(["right", "lh", "left"]), [3, 0, 4])
    assert geo.hemispheres == ("left", "right") and geo.kind == "surface"
    assert geo.hemi.tolist() == ["right", "left", "left"] and geo.vertex.dtype == np.int64
    assert geo.coords is None and len(geo) == 3
    with pytest.raises(ValueError, match="read-only"):
        geo.vertex[0] = 1
    with pytest.raises(AttributeError, match="read-only"):
        geo.mesh = "fsaverage"
    assert geo == SurfaceGeometry({"left": 5, "right": 4}, ["rh", "left", "left"], [3, 0, 4])
    assert geo != geo.subset([0, 1]) and geo.subset(
        np.array([True, False, True])
    ).vertex.tolist() == [3, 4]
    assert hash(geo) == hash(geo.subset(slice(None)))
    xyz = {"left": np.arange(15.0).reshape(5, 3), "right": -np.arange(12.0).reshape(4, 3)}
    with_xyz = SurfaceGeometry({"left": 5, "right": 4}, ["right", "left"], [3, 1], coords=xyz)
    np.testing.assert_array_equal(with_xyz.coords, [[-9.0, -10.0, -11.0], [3.0, 4.0, 5.0]])
    np.testing.assert_array_equal(with_xyz.subset([1]).coords, [[3.0, 4.0, 5.0]])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"hemi": ["left"], "vertex": [5]},
            InputError,
            r"1 left-hemisphere column\(s\) lie outside its mesh of 5",
        ),
        (
            {"hemi": ["left", "lh"], "vertex": [2, 2]},
            InputError,
            r"appear in more than one column \(first: left vertex 2\)",
        ),
        ({"hemi": ["middle"], "vertex": [0]}, InputError, "hemi must name a hemisphere"),
        (
            {"hemi": ["right"], "vertex": [0]},
            InputError,
            r"names the right hemisphere but n_vertices has only \['left'\]",
        ),
        ({"hemi": ["left", "left"], "vertex": [0]}, InputError, "hemi has 2 and vertex has 1"),
        ({"hemi": ["left"], "vertex": [0.5]}, InputTypeError, "integer vertex indices"),
        (
            {"hemi": ["left"], "vertex": [0], "mesh": "fsaverage5"},
            InputError,
            r"'fsaverage5' has 10242 .* left hemisphere has 5",
        ),
        (
            {"hemi": ["left"], "vertex": [0], "coords": {"left": np.zeros((4, 3))}},
            InputError,
            r"coords\['left'\] must have shape \(5, 3\)",
        ),
    ],
)
def test_geometry_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        SurfaceGeometry({"left": 5}, **kwargs)


# ------------------------------------------------------------------ bad input
def test_missing_empty_truncated_and_foreign_files(files, planted, tmp_path):
    ids = planted[2]
    good = files["gifti"]["right"][0]
    with pytest.raises(MissingFileError, match=r"left: no such file: .*nothere\.lh\.func\.gii"):
        load_surface_betas(tmp_path / "nothere.lh.func.gii", good, ids)
    empty = tmp_path / "empty.lh.func.gii"
    empty.write_bytes(b"")
    with pytest.raises(UnreadableFileError, match=r"empty\.lh\.func\.gii' is empty \(0 bytes\)"):
        load_surface_betas(empty, good, ids)
    blob = files["gifti"]["left"][0].read_bytes()
    cut = tmp_path / "cut.lh.func.gii"
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(
        UnreadableFileError, match=r"left: cannot read .*cut\.lh\.func\.gii' as GIfTI .* truncated"
    ):
        load_surface_betas(cut, good, ids)
    mgz = files["mgz"]["left"][0].read_bytes()
    cut_mgz = tmp_path / "cut.lh.mgz"
    cut_mgz.write_bytes(mgz[: len(mgz) // 3])
    with pytest.raises(UnreadableFileError, match=r"cannot read .*cut\.lh\.mgz' as FreeSurfer MGH"):
        load_surface_betas(cut_mgz, None, ids)
    foreign = tmp_path / "nifti.lh.mgh"
    foreign.write_bytes(
        gzip.decompress(
            gzip.compress(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)).to_bytes())
        )
    )
    with pytest.raises(UnreadableFileError, match=r"nifti\.lh\.mgh' as FreeSurfer MGH"):
        load_surface_betas(foreign, None, ids)
    with pytest.raises(InputError, match=r"left must be a \.func\.gii, \.gii, \.mgh or \.mgz file"):
        load_surface_betas(files["tsv"], None, ids)
    with pytest.raises(
        UnreadableFileError, match=r"is a label GIfTI \(ROIs\), not responses; pass it as labels="
    ):
        load_surface_betas(files["labelgii_left"], good, ids)


def test_inconsistent_files_are_refused_with_the_fix(files, planted, tmp_path):
    betas, _, ids, _ = planted
    lh, rh = files["gifti"]["left"][0], files["gifti"]["right"][0]
    with pytest.raises(InputError, match="hemispheres look swapped: pass the lh"):
        load_surface_betas(rh, lh, ids)
    # swapped metadata alone (no hemisphere in the names) is caught too
    meta_only = write_surface_betas(tmp_path / "plain", betas["right"])["left"][0]
    img = nib.load(meta_only)
    img.meta["AnatomicalStructurePrimary"] = "CortexRight"
    nib.save(img, tmp_path / "plain.func.gii")
    with pytest.raises(InputError, match="file says right .* swapped"):
        load_surface_betas(tmp_path / "plain.func.gii", None, ids)
    # per-trial files on different meshes
    trial_files = list(files["per_trial"]["left"])
    other = write_surface_betas(tmp_path / "small", np.ones((1, 642)), layout="per_trial")["left"][
        0
    ]
    trial_files[4] = other
    with pytest.raises(
        InputError,
        match=r"left\[4\] has 642 vertices but left\[0\] has 10242; every trial must be sampled on the same mesh",
    ):
        load_surface_betas(trial_files, None, ids)
    # a GIfTI whose data arrays differ in length
    darrays = [nib.gifti.GiftiDataArray(np.zeros(n, np.float32)) for n in (10, 10, 9)]
    ragged = tmp_path / "ragged.func.gii"
    nib.save(nib.gifti.GiftiImage(darrays=darrays), ragged)
    with pytest.raises(
        InputError, match="data array 2 of .* has 9 vertices but data array 0 has 10"
    ):
        load_surface_betas(ragged, None, [0, 1, 2])
    with pytest.raises(InputError, match="left has 7 trials but right has 6"):
        load_surface_betas(lh, files["per_trial"]["right"][:6], ids)
    with pytest.raises(
        InputError,
        match=r"'fsaverage6' has 40962 vertices per hemisphere but the left hemisphere has 10242 \(fsaverage5 has 10242\)",
    ):
        load_surface_betas(lh, rh, ids, mesh="fsaverage6")
    with pytest.raises(
        InputError, match="The trial table has 6 rows but the responses have 7 trials"
    ):
        load_surface_betas(lh, rh, ids[:6])
    with pytest.raises(InputError, match="trials is required"):
        load_surface_betas(lh, rh)


def test_bad_labels_are_refused(files, planted, tmp_path):
    ids = planted[2]
    lh, rh = files["gifti"]["left"][0], files["gifti"]["right"][0]
    both = {"left": files["annot_left"], "right": files["annot_right"]}
    with pytest.raises(
        InputError,
        match=r"labels\['left'\] \(rh\.aparc\.annot\) is given as the left hemisphere but its file says right",
    ):
        load_surface_betas(lh, rh, ids, labels={"left": both["right"], "right": both["left"]})
    small = tmp_path / "lh.small.annot"
    nib.freesurfer.write_annot(
        small, np.zeros(642, int), np.zeros((1, 4), int), ["V1"], fill_ctab=True
    )
    with pytest.raises(
        InputError,
        match=r"labels 642 vertices \(fsaverage3 has 642\) but the data have 10242 \(fsaverage5 has 10242\)",
    ):
        load_surface_betas(lh, rh, ids, labels={"left": small, "right": both["right"]})
    with pytest.raises(
        InputError,
        match=r"rois: \['MT'\] match no vertex. ROIs with vertices: \['FFA', 'V1', 'V2'\]",
    ):
        load_surface_betas(lh, rh, ids, labels=both, rois="MT")
    with pytest.raises(InputError, match="label_names only names integer .mgh / .mgz labels"):
        load_surface_betas(lh, rh, ids, labels=both, label_names={1: "V1"})
    with pytest.raises(InputError, match="rois was given but labels is None"):
        load_surface_betas(lh, rh, ids, rois="V1")
    cut = tmp_path / "lh.cut.annot"
    cut.write_bytes(files["annot_left"].read_bytes()[:1000])
    with pytest.raises(
        UnreadableFileError, match=r"cannot read .*lh\.cut\.annot' as a FreeSurfer \.annot"
    ):
        load_surface_betas(lh, rh, ids, labels={"left": cut, "right": both["right"]})
    bad_ctab = tmp_path / "bad.ctab"
    bad_ctab.write_text("index,name\n1,V1\n")
    with pytest.raises(UnreadableFileError, match="line 1 of .* is not 'index name r g b a'"):
        load_surface_betas(
            lh, rh, ids, labels=(files["mgz_left"], files["mgz_right"]), label_names=bad_ctab
        )


def test_read_surface_labels_from_arrays():
    assert read_surface_labels(np.array(["V1", "???", "FFA"]), 3).tolist() == ["V1", "", "FFA"]
    assert read_surface_labels([2, 0, 7], 3, label_names=["x", "A", "B"]).tolist() == ["B", "", "7"]
    with pytest.raises(InputError, match=re.escape("labels 2 vertices but the data have 3")):
        read_surface_labels([1, 2], 3)


def test_to_dataset_carries_the_surface_geometry(files, planted):
    """Wired by the maintainer: FMRIDataset accepts a SurfaceGeometry."""
    sessions = planted[3]
    with pytest.warns(FMRIDataWarning):
        out = load_surface_betas(
            files["gifti"]["left"][0],
            files["gifti"]["right"][0],
            files["tsv"],
            labels={"left": files["annot_left"], "right": files["annot_right"]},
        )
    ds = out.to_dataset(name="sub-01")
    assert ds.geometry is out.geometry and ds.n_voxels == out.n_voxels
    np.testing.assert_array_equal(ds.session_ids, sessions)
    assert ds.rois == ["FFA", "V1", "V2"]
