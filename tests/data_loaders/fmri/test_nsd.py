import hashlib

import h5py
import numpy as np
import pytest
import scipy.io

from data_loaders.errors import InputError, MissingFileError, UnreadableFileError
from data_loaders.fmri.hdf5 import NSDSession
from data_loaders.fmri.nsd import (
    NSDSubject,
    nsd_paths,
    nsd_trial_images,
    read_ctab,
    read_nsd_expdesign,
)
from data_loaders.simulate.nsd_layout import image_features, write_nsd_layout


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("nsd")
    return write_nsd_layout(root, n_sessions=3, trials_per_session=60, seed=3)


@pytest.fixture(scope="module")
def dataset(layout):
    return NSDSubject(layout.root, 1).to_dataset()


def _stored(layout, ijk):
    """What the int16 files hold at these voxels, as (n_trials, n_voxels)."""
    i, j, k = ijk.T
    return np.round(layout.betas[i, j, k].T * 300) / 300


# ------------------------------------------------------------------ layout
def test_layout_has_the_real_names_dtypes_and_axis_orders(layout):
    root = layout.root
    p = nsd_paths(root, 1)
    assert p["expdesign"] == root / "nsddata/experiments/nsd/nsd_expdesign.mat"
    mat = scipy.io.loadmat(p["expdesign"])
    assert mat["masterordering"].shape == (1, 40 * 60) and mat["masterordering"].min() == 1
    assert mat["subjectim"].shape == (8, 120) and mat["subjectim"].min() >= 1
    assert mat["sharedix"].shape == (1, 30) and mat["stimpattern"].shape == (40, 12, 75)
    f1 = p["betas_dir"] / "betas_session01.hdf5"
    assert f1 == root / (
        "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.hdf5"
    )
    with h5py.File(f1, "r") as f:
        assert list(f) == ["betas"]
        d = f["betas"]
        assert (d.shape, d.dtype, d.chunks) == ((60, 9, 12, 10), np.int16, (60, 1, 1, 1))
        # f["betas"][t, k, j, i] == nifti[i, j, k, t] * 300
        assert d[5, 4, 2, 7] == np.round(layout.betas[7, 2, 4, 5] * 300)
        assert d[:, 0, 0, 0].tolist() == [0] * 60  # outside the brain
    with h5py.File(p["stimuli"], "r") as f:
        assert f["imgBrick"].shape == (300, 32, 32, 3) and f["imgBrick"].dtype == np.uint8
    for atlas in ("nsdgeneral", "prf-visualrois", "floc-faces"):
        assert (p["ppdata_dir"] / "roi" / f"{atlas}.nii.gz").is_file()
        assert read_ctab(p["label_dir"] / f"{atlas}.mgz.ctab")[0] == "Unknown"
    assert set(np.unique(layout.rois["nsdgeneral"])) == {-1, 0, 1}
    table = p["responses"].read_text().splitlines()
    assert table[0].split("\t")[4:] == ["73KID", "10KID"] and len(table) == 181
    assert int(table[1].split("\t")[4]) == layout.stimulus_ids[0] + 1
    np.testing.assert_allclose(layout.affine[:3, 3], -0.9 * np.array([9, 11, 8]))


def test_layout_refuses_to_overwrite(layout):
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_nsd_layout(layout.root, n_sessions=3, trials_per_session=60, seed=3)


# ------------------------------------------------------------------ design
def test_expdesign_is_read_zero_based(layout):
    design = read_nsd_expdesign(layout.paths["expdesign"])
    mat = scipy.io.loadmat(layout.paths["expdesign"])
    np.testing.assert_array_equal(design.masterordering, mat["masterordering"].ravel() - 1)
    np.testing.assert_array_equal(design.subjectim, mat["subjectim"] - 1)
    np.testing.assert_array_equal(design.sharedix, layout.shared_ids)
    ids = nsd_trial_images(design, subject=1, session=2, n_trials=60)
    np.testing.assert_array_equal(ids, layout.stimulus_ids[60:120])
    # the formula of the NSD manual, written out on the 1-based arrays
    t = 17
    expected = mat["subjectim"][0, int(mat["masterordering"][0, 60 + t]) - 1] - 1
    assert ids[t] == expected
    with pytest.raises(InputError, match="beyond the design.*40 sessions"):
        nsd_trial_images(design, 1, 41, n_trials=60)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"this is not a mat file at all" * 10, "cannot be read as a MATLAB .mat file"),
        (None, r"no 'subjectim'.*holds \['masterordering', 'sharedix'\]"),
    ],
)
def test_expdesign_errors(tmp_path, content, match):
    path = tmp_path / "nsd_expdesign.mat"
    if content is None:
        scipy.io.savemat(path, {"masterordering": [[1, 2]], "sharedix": [[1]]})
    else:
        path.write_bytes(content)
    with pytest.raises(UnreadableFileError, match=match):
        read_nsd_expdesign(path)


def test_expdesign_refuses_zero_based_indices(tmp_path):
    path = tmp_path / "nsd_expdesign.mat"
    scipy.io.savemat(
        path, {"masterordering": [[0, 1]], "subjectim": np.ones((8, 2)), "sharedix": [[1]]}
    )
    with pytest.raises(UnreadableFileError, match="1-based integer indices"):
        read_nsd_expdesign(path)


def test_ctab_is_parsed_tolerantly(tmp_path):
    path = tmp_path / "floc-faces.mgz.ctab"
    path.write_text("# FreeSurfer table\n0\tUnknown\t\t\n\n1  OFA  255 0 0 0\n2\tFFA-1\t\n   \n")
    assert read_ctab(path) == {0: "Unknown", 1: "OFA", 2: "FFA-1"}
    path.write_text("0 Unknown\nV1 1\n")
    with pytest.raises(UnreadableFileError, match="line 2.*does not start with an integer"):
        read_ctab(path)


# ----------------------------------------------------------------- reading
def test_betas_land_on_the_right_voxels(layout, dataset):
    ds = dataset
    assert ds.name == "subj01" and ds.betas.dtype == np.float32
    assert ds.n_voxels == int(layout.signal_mask.sum())  # nsdgeneral by default
    np.testing.assert_array_equal(ds.voxel_ijk, np.argwhere(layout.signal_mask))
    np.testing.assert_allclose(ds.betas, _stored(layout, ds.voxel_ijk), atol=1e-5)
    # a reader that forgot the (Z, Y, X) -> (X, Y, Z) transposition would read these instead
    i, j, k = ds.voxel_ijk.T
    ok = (k < 10) & (j < 12) & (i < 9)
    swapped = np.round(layout.betas[k[ok], j[ok], i[ok]].T * 300) / 300
    assert np.abs(ds.betas[:, ok] - swapped).max() > 1.0
    np.testing.assert_allclose(ds.affine, layout.affine)
    assert ds.volume_shape == (10, 12, 9)


def test_trials_are_matched_to_the_design(layout, dataset):
    ds = dataset
    np.testing.assert_array_equal(ds.stimulus_ids, layout.stimulus_ids)
    assert ds.session_ids.tolist() == [1] * 60 + [2] * 60 + [3] * 60
    _ids, counts = np.unique(ds.stimulus_ids, return_counts=True)
    assert counts.max() >= 2  # repeats come from the design
    # responses.tsv's 1-based 73KID column agrees
    rows = [ln.split("\t") for ln in layout.paths["responses"].read_text().splitlines()[1:]]
    np.testing.assert_array_equal(ds.stimulus_ids, [int(r[4]) - 1 for r in rows])
    # ids come from the design: the planted signal lines up with them, and not with a shuffle
    sig = layout.signal_mask[tuple(ds.voxel_ijk.T)]
    pred = layout.features[ds.stimulus_ids] @ layout.weights[(slice(None), *ds.voxel_ijk.T)]
    r_true = np.mean([np.corrcoef(pred[:, v], ds.betas[:, v])[0, 1] for v in np.flatnonzero(sig)])
    shuffled = np.random.default_rng(0).permutation(len(pred))
    r_null = np.mean(
        [np.corrcoef(pred[shuffled, v], ds.betas[:, v])[0, 1] for v in np.flatnonzero(sig)]
    )
    assert r_true > 0.4 and abs(r_null) < 0.1


def test_images_are_read_lazily_from_imgbrick(layout, dataset):
    stim = dataset.stimuli
    assert type(stim).__name__ == "HDF5Images" and len(stim) == 300
    for sid in (0, int(dataset.stimulus_ids[7]), 299):
        np.testing.assert_allclose(stim[sid], layout.images[sid] / 255.0, atol=1e-6)
    np.testing.assert_allclose(image_features(layout.images), layout.features)


def test_roi_names_from_the_ctab_first_atlas_wins(layout):
    nsd = NSDSubject(
        layout.root, 1, sessions=[2], roi_atlases=("prf-visualrois", "floc-faces", "nsdgeneral")
    )
    prf, faces = layout.rois["prf-visualrois"], layout.rois["floc-faces"]
    i, j, k = nsd.voxel_ijk.T
    for v in range(nsd.n_voxels):
        if prf[i[v], j[v], k[v]] > 0:
            expected = layout.roi_names["prf-visualrois"][int(prf[i[v], j[v], k[v]])]
        elif faces[i[v], j[v], k[v]] > 0:
            expected = layout.roi_names["floc-faces"][int(faces[i[v], j[v], k[v]])]
        else:
            expected = "nsdgeneral"
        assert nsd.roi_labels[v] == expected
    assert "FFA-1" in nsd.rois and "V1v" in nsd.rois
    betas = nsd.read_session(2)
    np.testing.assert_allclose(betas, _stored(layout, nsd.voxel_ijk)[60:120], atol=1e-5)


def test_roi_selection_by_name(layout):
    nsd = NSDSubject(layout.root, 1, sessions=1, rois=["V1v", "FFA-1"],
                     roi_atlases=["prf-visualrois", "floc-faces"])  # fmt: skip
    prf, faces = layout.rois["prf-visualrois"], layout.rois["floc-faces"]
    expected = (prf == 1) | (faces == 2)
    np.testing.assert_array_equal(nsd.voxel_ijk, np.argwhere(expected))
    assert set(nsd.roi_labels) == {"V1v", "FFA-1"}
    ds = nsd.to_dataset()
    np.testing.assert_allclose(ds.betas, _stored(layout, nsd.voxel_ijk)[:60], atol=1e-5)


def test_brainmask_voxels_and_ncsnr(layout):
    nsd = NSDSubject(layout.root, 1, sessions=[1, 3], voxels="brainmask", stimuli=None)
    assert nsd.stimuli is None and nsd.n_voxels == int(layout.brainmask.sum())
    np.testing.assert_array_equal(nsd.stimulus_ids[60:], layout.stimulus_ids[120:])
    assert set(nsd.roi_labels) == {"", "nsdgeneral"}
    i, j, k = nsd.voxel_ijk.T
    np.testing.assert_allclose(nsd.ncsnr(), layout.ncsnr[i, j, k])
    assert (nsd.ncsnr()[nsd.roi_labels == ""] == 0).all()


def test_explicit_paths_without_root(layout, tmp_path):
    p = nsd_paths(layout.root, 1)
    nsd = NSDSubject(
        subject=1,
        expdesign=p["expdesign"],
        betas_dir=p["betas_dir"],
        ppdata_dir=p["ppdata_dir"],
        label_dir=p["label_dir"],
        stimuli=p["stimuli"],
        sessions=[1],
    )
    assert nsd.stimuli is not None and nsd.n_trials == 60
    with pytest.raises(InputError, match="expdesign is needed: give root"):
        NSDSubject(subject=1, betas_dir=p["betas_dir"])


def test_shared_images_as_test_set(layout, dataset):
    np.testing.assert_array_equal(NSDSubject(layout.root, 1).shared_stimuli, layout.shared_ids)
    assert np.isin(dataset.stimulus_ids, layout.shared_ids).sum() > 0


def test_inputs_are_not_modified(layout):
    files = [layout.paths["expdesign"], *layout.paths["sessions"], layout.paths["stimuli"]]
    before = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    NSDSubject(layout.root, 1).to_dataset().images(size=(8, 8))
    assert [hashlib.sha256(f.read_bytes()).hexdigest() for f in files] == before


# ------------------------------------------------------------------ errors
def test_subject_out_of_range(layout):
    with pytest.raises(InputError, match=r"subject must be an NSD subject number 1\.\.8.*got 9"):
        NSDSubject(layout.root, 9)
    with pytest.raises(TypeError, match="subject must be"):
        NSDSubject(layout.root, "1")


def test_missing_session_lists_those_found(layout):
    with pytest.raises(MissingFileError, match=r"session\(s\) \[4, 7\].*sessions found: 1-3"):
        NSDSubject(layout.root, 1, sessions=[1, 4, 7])


def test_missing_expdesign(tmp_path):
    write_nsd_layout(tmp_path, n_sessions=1, trials_per_session=12, seed=1)
    (tmp_path / "nsddata/experiments/nsd/nsd_expdesign.mat").unlink()
    with pytest.raises(MissingFileError, match="nsd_expdesign.mat.*expdesign=<path>"):
        NSDSubject(tmp_path, 1)


def test_foreign_file_as_expdesign(layout):
    p = nsd_paths(layout.root, 1)
    with pytest.raises(UnreadableFileError, match="cannot be read as a MATLAB .mat file"):
        NSDSubject(layout.root, 1, expdesign=p["label_dir"] / "nsdgeneral.mgz.ctab")


def test_truncated_session_file(tmp_path):
    truth = write_nsd_layout(tmp_path, n_sessions=2, trials_per_session=12, seed=1)
    path = truth.paths["sessions"][1]
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(UnreadableFileError, match="betas_session02.hdf5.*download it again"):
        NSDSubject(tmp_path, 1).to_dataset()


def test_unknown_roi_lists_the_available(layout):
    with pytest.raises(InputError, match=r"\['MT'\].*prf-visualrois: \['V1v', 'V1d'.*'hV4'\]"):
        NSDSubject(layout.root, 1, rois=["V1v", "MT"], roi_atlases="prf-visualrois")
    with pytest.raises(InputError, match=r"Other atlases in roi/: \['floc-faces', 'nsdgeneral'\]"):
        NSDSubject(layout.root, 1, rois="FFA-1", roi_atlases="prf-visualrois")
    with pytest.raises(MissingFileError, match=r"no ROI atlas 'floc-words'.*atlases found"):
        NSDSubject(layout.root, 1, roi_atlases="floc-words")


# -------------------------------------------------- NSDSession, betas only
def test_nsd_session_opens_betas_only_files(layout):
    path = layout.paths["sessions"][0]
    with NSDSession(path) as s:
        assert s.stimulus_ids is None and s.volume_shape == (10, 12, 9)
        data = s.read()
        for v in (0, 377, s.n_voxels - 1):
            i, j, k = s.voxel_ijk[v]
            np.testing.assert_allclose(
                data[:, v], np.round(layout.betas[i, j, k, :60] * 300) / 300, atol=1e-5
            )
        np.testing.assert_array_equal(
            s.read(trials=[9, 2, 9], voxels=[377]), data[[9, 2, 9]][:, [377]]
        )
        with pytest.raises(InputError, match="holds only betas.*give stimulus_ids=.*NSDSubject"):
            s.to_dataset()
        with pytest.warns(UserWarning, match="constant across trials"):  # 0 outside the brain
            ds = s.to_dataset(stimulus_ids=layout.stimulus_ids[:60], voxel_batch_size=100)
    assert ds.stimulus_ids.tolist() == layout.stimulus_ids[:60].tolist()
    with NSDSession(path, stimulus_ids=layout.stimulus_ids[:60]) as s:
        assert s.stimulus_ids.tolist() == layout.stimulus_ids[:60].tolist()
    with pytest.raises(InputError, match="59 rows but the responses have 60 trials"):
        NSDSession(path, stimulus_ids=layout.stimulus_ids[:59])


def test_nsd_session_without_betas(tmp_path):
    path = tmp_path / "x.hdf5"
    with h5py.File(path, "w") as f:
        f["stimulus_ids"] = np.arange(3)
    with pytest.raises(
        UnreadableFileError, match=r"no 'betas' dataset; it holds \['stimulus_ids'\]"
    ):
        NSDSession(path)


# -------------------------------------------------------------- end to end
def test_ridge_recovers_the_planted_signal_on_shared_images(tmp_path):
    from neuro.encoders.compare import compare_encoders

    truth = write_nsd_layout(
        tmp_path, n_sessions=3, trials_per_session=120, n_images=240, n_subject_images=200,
        n_shared=40, signal_sd=1.5, seed=5,
    )  # fmt: skip
    ds = NSDSubject(tmp_path, 1, voxels="brainmask").to_dataset()  # compare z-scores by session
    result = compare_encoders(
        ds, ["ridge"], features=truth.features, test_stimuli=truth.shared_ids, n_boot=200,
        device="cpu",
    )  # fmt: skip
    r = result.scores["ridge"]
    signal = ds.roi_labels == "nsdgeneral"
    print(f"mean r: signal {r[signal].mean():.3f}, others {r[~signal].mean():.3f}")
    assert r[signal].mean() > 0.6
    assert abs(r[~signal].mean()) < 0.15
    assert result.n_test == len(np.intersect1d(truth.shared_ids, ds.stimulus_ids))
