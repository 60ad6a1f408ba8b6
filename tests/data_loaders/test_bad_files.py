"""Every fMRI and stimulus reader, fed a missing, empty, truncated and foreign file.

A missing file raises ``MissingFileError``; an empty, truncated or foreign one
``UnreadableFileError``. Both are ``InputError``s, which the ``neuro`` command
prints as one line, so each message must be one line that names the file.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from data_loaders.errors import InputError, MissingFileError, UnreadableFileError
from data_loaders.fmri import (
    NSDSession,
    VoxelGeometry,
    estimate_single_trial_betas,
    find_bids_runs,
    load_nifti_betas,
    write_nsd_session,
)
from data_loaders.stimuli import HDF5Images, ImageFolder, ImageReadError, open_images

SHAPE = (5, 4, 3)
N_TRIALS = 4
N_VOLS = 24
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


# ---- what good files of each kind look like ---------------------------------------


def _nifti_bytes(data) -> bytes:
    return gzip.compress(nib.Nifti1Image(data, AFFINE).to_bytes())


def _betas() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(*SHAPE, N_TRIALS)).astype(np.float32)


def _betas_img():
    return nib.Nifti1Image(_betas(), AFFINE)


def _mask() -> np.ndarray:
    mask = np.zeros(SHAPE, np.uint8)
    mask[1:4, 1:3, :] = 1
    return mask


def _bold_img():
    rng = np.random.default_rng(1)
    return nib.Nifti1Image(100 + rng.normal(size=(*SHAPE, N_VOLS)).astype(np.float32), AFFINE)


def _events() -> pd.DataFrame:
    return pd.DataFrame({"onset": [4.0, 16.0, 28.0], "duration": 1.0, "stimulus_id": [0, 1, 2]})


def _h5_bytes(tmp_path: Path) -> bytes:
    """An NSD-style session: also a valid HDF5 file of another kind for other readers."""
    path = write_nsd_session(
        tmp_path / "_good.hdf5",
        np.random.default_rng(2).normal(size=(N_TRIALS, 6)),
        np.arange(N_TRIALS),
        geometry=VoxelGeometry(SHAPE, AFFINE, np.argwhere(_mask())[:6]),
    )
    data = path.read_bytes()
    path.unlink()
    return data


def _brick_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "_brick.h5"
    with h5py.File(path, "w") as f:
        f["imgBrick"] = np.random.default_rng(3).integers(0, 256, (3, 40, 30, 3), dtype=np.uint8)
    data = path.read_bytes()
    path.unlink()
    return data


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    pixels = np.random.default_rng(4).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _npy_bytes() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(5).integers(0, 256, (3, 20, 10, 3), dtype=np.uint8))
    return buf.getvalue()


def _write_bids(root: Path, sidecar: bytes | None = None, events: bytes | None = None) -> Path:
    """A one-run BIDS dataset; ``sidecar`` / ``events`` replace the good files' bytes."""
    func = root / "sub-01" / "func"
    func.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.8.0"}')
    stem = func / "sub-01_task-x_run-1"
    Path(f"{stem}_bold.nii.gz").write_bytes(gzip.compress(_bold_img().to_bytes()))
    Path(f"{stem}_bold.json").write_bytes(
        json.dumps({"RepetitionTime": 2.0}).encode() if sidecar is None else sidecar
    )
    Path(f"{stem}_events.tsv").write_bytes(
        _events().to_csv(sep="\t", index=False).encode() if events is None else events
    )
    return root


# ---- the readers --------------------------------------------------------------------


@dataclass
class Reader:
    """A reader, where its file goes, and what a good and a foreign file hold."""

    suffix: str
    good: Callable[[Path], bytes]
    foreign: Callable[[Path], bytes]
    read: Callable[[Path, Path], object]  # (tmp_path, path of the file) -> result
    truncate: Callable[[bytes], bytes] = lambda data: data[: len(data) // 2]
    missing_is_optional: bool = False  # a missing file is allowed (e.g. a JSON sidecar)
    shown_as: str | None = None  # the file name the message gives, when the reader copies it


def _cut_last_row(data: bytes) -> bytes:
    """The file stops midway through its last row, after a separator."""
    sep = b"\t" if b"\t" in data else b","
    return data[: data.rindex(sep) + 1]


def _folder_read(tmp_path: Path, path: Path):
    """An image folder whose only image is ``path`` (missing: the folder itself)."""
    if not path.exists():
        return ImageFolder(path.parent / "no_such_folder")
    return ImageFolder(path.parent).load([0])


def _bids_sidecar(tmp_path: Path, path: Path):
    root = _write_bids(tmp_path / "bids", sidecar=path.read_bytes() if path.exists() else b"{}")
    return find_bids_runs(root, "01", "x")


def _bids_events(tmp_path: Path, path: Path):
    root = _write_bids(tmp_path / "bids")
    events = root / "sub-01" / "func" / "sub-01_task-x_run-1_events.tsv"
    if path.exists():
        events.write_bytes(path.read_bytes())
    else:
        events.unlink()
    return find_bids_runs(root, "01", "x")


READERS = {
    "nifti-betas": Reader(
        ".nii.gz",
        lambda t: _nifti_bytes(_betas()),
        _h5_bytes,
        lambda t, p: load_nifti_betas(p, np.arange(N_TRIALS)),
    ),
    "nifti-mask": Reader(
        ".nii.gz",
        lambda t: _nifti_bytes(_mask()),
        lambda t: _png_bytes(),
        lambda t, p: load_nifti_betas(_betas_img(), np.arange(N_TRIALS), mask_img=p),
    ),
    "nifti-labels": Reader(
        ".nii.gz",
        lambda t: _nifti_bytes(_mask().astype(np.int16) * 2),
        lambda t: b"index\tname\n1\tV1\n",
        lambda t, p: load_nifti_betas(_betas_img(), np.arange(N_TRIALS), labels_img=p),
    ),
    "geometry-mask": Reader(
        ".nii",
        lambda t: nib.Nifti1Image(_mask(), AFFINE).to_bytes(),
        _h5_bytes,
        lambda t, p: VoxelGeometry.from_mask(p),
    ),
    "trial-table-tsv": Reader(
        ".tsv",
        lambda t: b"trial\tstimulus_id\n0\t3\n1\t1\n2\t0\n3\t12\n",
        lambda t: _nifti_bytes(_mask()),
        lambda t, p: load_nifti_betas(_betas_img(), p),
        truncate=_cut_last_row,
    ),
    "trial-table-csv": Reader(
        ".csv",
        lambda t: b"trial,stimulus_id\n0,3\n1,1\n2,0\n3,12\n",
        lambda t: b'{"trial": [0, 1, 2, 3]}\n',  # JSON: text, but no trial table
        lambda t, p: load_nifti_betas(_betas_img(), p),
        truncate=_cut_last_row,
    ),
    "glm-bold": Reader(
        ".nii.gz",
        lambda t: gzip.compress(_bold_img().to_bytes()),
        lambda t: _png_bytes(),
        lambda t, p: estimate_single_trial_betas(
            p, _events(), t_r=2.0, mask_img=nib.Nifti1Image(_mask(), AFFINE)
        ),
    ),
    "glm-events": Reader(
        ".tsv",
        lambda t: _events().to_csv(sep="\t", index=False).encode(),
        lambda t: _npy_bytes(),
        lambda t, p: estimate_single_trial_betas(
            _bold_img(), p, t_r=2.0, mask_img=nib.Nifti1Image(_mask(), AFFINE)
        ),
        truncate=_cut_last_row,
    ),
    "bids-events": Reader(
        ".tsv",
        lambda t: _events().to_csv(sep="\t", index=False).encode(),
        lambda t: _h5_bytes(t),
        _bids_events,
        truncate=_cut_last_row,
        shown_as="sub-01_task-x_run-1_events.tsv",
    ),
    "bids-sidecar": Reader(
        ".json",
        lambda t: json.dumps({"RepetitionTime": 2.0, "TaskName": "x"}).encode(),
        lambda t: _png_bytes(),
        _bids_sidecar,
        missing_is_optional=True,
        shown_as="sub-01_task-x_run-1_bold.json",
    ),
    "nsd-hdf5": Reader(
        ".hdf5", _h5_bytes, lambda t: _nifti_bytes(_betas()), lambda t, p: NSDSession(p)
    ),
    "nsd-hdf5-of-another-kind": Reader(
        ".hdf5", _h5_bytes, _brick_bytes, lambda t, p: NSDSession(p)
    ),
    "image-file": Reader(
        ".png", lambda t: _png_bytes(), lambda t: b"stimulus_id\n0\n", _folder_read
    ),
    "hdf5-brick": Reader(
        ".h5", _brick_bytes, lambda t: _png_bytes(), lambda t, p: HDF5Images(p).load([0])
    ),
    "npy-images": Reader(
        ".npy",
        lambda t: _npy_bytes(),
        lambda t: _png_bytes(),
        lambda t, p: open_images(p).load([0]),
    ),
}


@pytest.fixture(params=sorted(READERS))
def reader(request):
    return request.param, READERS[request.param]


def _check_message(err: BaseException, name: str) -> str:
    message = str(err)
    assert "\n" not in message, f"not one line: {message!r}"
    assert name in message, f"{name!r} not named in {message!r}"
    return message


def test_a_good_file_reads(tmp_path, reader):
    """The baseline: the same reader accepts the good file (so the failures below are the file's)."""
    _, r = reader
    path = tmp_path / f"data{r.suffix}"
    path.write_bytes(r.good(tmp_path))
    result = r.read(tmp_path, path)
    assert result is not None
    if isinstance(result, NSDSession):
        result.close()


@pytest.mark.parametrize("kind", ["empty", "truncated", "foreign"])
def test_unreadable_file(tmp_path, reader, kind):
    name, r = reader
    good = r.good(tmp_path)
    content = {"empty": b"", "truncated": r.truncate(good), "foreign": r.foreign(tmp_path)}[kind]
    assert content != good
    path = tmp_path / f"data{r.suffix}"
    path.write_bytes(content)
    with pytest.raises(UnreadableFileError) as err:
        r.read(tmp_path, path)
    message = _check_message(err.value, r.shown_as or path.name)
    assert isinstance(err.value, InputError)
    if kind == "empty":
        assert "empty" in message
    if name in ("image-file", "hdf5-brick", "npy-images"):
        assert isinstance(err.value, ImageReadError) and isinstance(err.value, OSError)


def test_missing_file(tmp_path, reader):
    name, r = reader
    path = tmp_path / f"missing{r.suffix}"
    if r.missing_is_optional:
        # a run without a sidecar has no RepetitionTime: a plain input error that says where
        # it looked
        with pytest.raises(InputError, match="No RepetitionTime"):
            root = _write_bids(tmp_path / "bids")
            (root / "sub-01" / "func" / "sub-01_task-x_run-1_bold.json").unlink()
            find_bids_runs(root, "01", "x")
        return
    with pytest.raises(MissingFileError) as err:
        r.read(tmp_path, path)
    assert isinstance(err.value, FileNotFoundError)
    if name == "bids-events":
        assert "has no events file" in str(err.value)
    else:
        _check_message(err.value, "no_such_folder" if name == "image-file" else path.name)


def test_sidecar_without_a_number(tmp_path):
    root = _write_bids(tmp_path / "bids", sidecar=b'{"RepetitionTime": "two"}')
    with pytest.raises(UnreadableFileError, match=r"RepetitionTime must be a number.*'two'"):
        find_bids_runs(root, "01", "x")
    root = _write_bids(tmp_path / "bids2", sidecar=b"[2.0]")
    with pytest.raises(UnreadableFileError, match="holds a JSON list, not an object"):
        find_bids_runs(root, "01", "x")


def test_a_folder_where_a_file_belongs(tmp_path):
    with pytest.raises(InputError, match="must be a file"):
        load_nifti_betas(tmp_path, np.arange(N_TRIALS))
    with pytest.raises(InputError, match="must be a file"):
        NSDSession(tmp_path)


# ---- grids and bad voxels ---------------------------------------------------------


def test_mismatched_grids_are_input_errors(tmp_path):
    shifted = AFFINE.copy()
    shifted[1, 3] = 4.0
    cases = [
        lambda: load_nifti_betas(
            _betas_img(), np.arange(N_TRIALS), mask_img=nib.Nifti1Image(_mask(), shifted)
        ),
        lambda: load_nifti_betas(
            _betas_img(), np.arange(N_TRIALS), labels_img=nib.Nifti1Image(_mask()[:4], AFFINE)
        ),
        lambda: load_nifti_betas(
            [nib.Nifti1Image(_betas()[..., 0], AFFINE), nib.Nifti1Image(_betas()[..., 1], shifted)],
            np.arange(2),
        ),
        lambda: estimate_single_trial_betas(
            [_bold_img(), nib.Nifti1Image(np.asarray(_bold_img().dataobj), shifted)],
            [_events(), _events()],
            t_r=2.0,
        ),
    ]
    for case in cases:
        with pytest.raises(InputError, match="different voxel grids"):
            case()


def test_nan_and_constant_voxels_are_dropped_as_documented(recwarn):
    betas = _betas()
    betas[0, 0, 0, 1] = np.nan
    betas[1, 1, 1, :] = 7.0
    out = load_nifti_betas(nib.Nifti1Image(betas, AFFINE), np.arange(N_TRIALS))
    assert out.n_voxels == int(np.prod(SHAPE)) - 2
    assert any("1 with NaN or infinite values, 1 constant" in str(w.message) for w in recwarn)
    kept = {tuple(v) for v in out.ijk}
    assert (0, 0, 0) not in kept and (1, 1, 1) not in kept
    with pytest.raises(InputError, match="All 60 voxels in the mask are NaN/inf or constant"):
        load_nifti_betas(nib.Nifti1Image(np.ones((*SHAPE, N_TRIALS), np.float32), AFFINE), [0] * 4)
