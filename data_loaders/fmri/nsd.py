"""The Natural Scenes Dataset (NSD) read as it is distributed.

NSD (Allen et al., Nature Neuroscience 2022) ships each subject's single-trial
betas as one HDF5 file per scan session holding only ``betas``, and keeps
everything else in other files. This module puts them back together:

``nsddata/experiments/nsd/nsd_expdesign.mat``
    The design (:func:`read_nsd_expdesign`): ``masterordering`` (1-based
    indices into the subject's 10,000 images, 750 per session), ``subjectim``
    (8 x 10000, 1-based ids into the 73k images), ``sharedix`` (the 1000
    images every subject saw, 1-based). Everything here is returned 0-based.
``nsddata_betas/ppdata/subjXX/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_sessionYY.hdf5``
    ``betas``: int16, percent signal change x 300, shape ``(750, Z, Y, X)``
    as h5py sees it (MATLAB wrote it column-major), chunked ``(750, 1, 1, 1)``.
    ``ncsnr.nii.gz`` (optional) sits beside them.
``nsddata/ppdata/subjXX/func1pt8mm/``
    ``brainmask.nii.gz`` and ``roi/<atlas>.nii.gz`` (labels -1 = not cortex,
    0 = unlabelled cortex, 1..N = the ROIs), all on the betas' grid in NIfTI
    ``(X, Y, Z)`` order, with the affine used for every voxel position.
``nsddata/freesurfer/subjXX/label/<atlas>.mgz.ctab``
    The ROI names (:func:`read_ctab`).
``nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5``
    ``imgBrick`` ``(73000, 425, 425, 3)`` uint8, opened lazily
    (:class:`~data_loaders.stimuli.HDF5Images`) and indexed by 0-based 73k id.

:class:`NSDSubject` reads them into an
:class:`~data_loaders.fmri.dataset.FMRIDataset`. With NSD's chunking, all
trials of one voxel are one chunk, so the betas are read along runs of
voxels (one ``(750, 1, 1, n)`` hyperslab per run of nearby selected voxels
in a (Z, Y) row), never as whole-brain volumes of 750 trials: reading the
~16,000 voxels of a 12-slice test file took 0.35 s this way against 7 s for
the whole slab. The output ``(n_trials, n_voxels)`` float32 matrix is the
only large allocation.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data_loaders._validation import check_file, check_int
from data_loaders.errors import (
    InputError,
    InputTypeError,
    MissingFileError,
    UnreadableFileError,
    one_line,
)
from data_loaders.fmri._common import FMRIDataWarning
from data_loaders.fmri.geometry import VoxelGeometry

__all__ = [
    "NSD_BETAS_VERSION",
    "NSD_SCALE",
    "NSDDesign",
    "NSDSubject",
    "nsd_paths",
    "nsd_trial_images",
    "read_ctab",
    "read_nsd_expdesign",
]

NSD_SCALE = 300.0  # int16 betas are percent signal change x 300
NSD_BETAS_VERSION = "betas_fithrf_GLMdenoise_RR"
NSD_SPACE = "func1pt8mm"
N_SUBJECTS = 8
_SESSION_FILE = re.compile(r"^betas_session(\d+)\.hdf5$")
_DESIGN_KEYS = ("masterordering", "subjectim", "sharedix")


# ------------------------------------------------------------------ paths
def nsd_paths(
    root, subject: int, betas_version: str = NSD_BETAS_VERSION, space: str = NSD_SPACE
) -> dict[str, Path]:
    """Where NSD keeps each file of one subject, under the root of the AWS bucket layout.

    Parameters
    ----------
    root : str or path
        The folder that holds ``nsddata/``, ``nsddata_betas/`` and
        ``nsddata_stimuli/`` (a copy of ``s3://natural-scenes-dataset``).
    subject : int
        1 to 8.
    betas_version : str, default="betas_fithrf_GLMdenoise_RR"
        NSD's beta version folder (``betas_fithrf``, ``betas_assumehrf`` are
        the others).
    space : str, default="func1pt8mm"

    Returns
    -------
    dict of str to Path
        ``expdesign``, ``betas_dir``, ``ppdata_dir`` (brainmask and ``roi/``),
        ``label_dir`` (the ``.ctab`` files), ``stimuli``, ``responses``.
        Nothing is checked to exist.

    Examples
    --------
    >>> str(nsd_paths("/data/nsd", 1)["betas_dir"])
    '/data/nsd/nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR'
    """
    subject = _check_subject(subject)
    root = Path(root).expanduser()
    subj = f"subj{subject:02d}"
    return {
        "expdesign": root / "nsddata" / "experiments" / "nsd" / "nsd_expdesign.mat",
        "betas_dir": root / "nsddata_betas" / "ppdata" / subj / space / betas_version,
        "ppdata_dir": root / "nsddata" / "ppdata" / subj / space,
        "label_dir": root / "nsddata" / "freesurfer" / subj / "label",
        "stimuli": root / "nsddata_stimuli" / "stimuli" / "nsd" / "nsd_stimuli.hdf5",
        "responses": root / "nsddata" / "ppdata" / subj / "behav" / "responses.tsv",
    }


def _check_subject(subject) -> int:
    if isinstance(subject, (bool, np.bool_)) or not isinstance(subject, (int, np.integer)):
        raise InputTypeError(
            f"subject must be an NSD subject number 1..{N_SUBJECTS}; got {subject!r} "
            f"({type(subject).__name__})."
        )
    if not 1 <= int(subject) <= N_SUBJECTS:
        raise InputError(
            f"subject must be an NSD subject number 1..{N_SUBJECTS} (subj01..subj08); got "
            f"{subject}."
        )
    return int(subject)


# ----------------------------------------------------------------- design
@dataclass(frozen=True)
class NSDDesign:
    """NSD's experimental design, 0-based (from :func:`read_nsd_expdesign`).

    Attributes
    ----------
    masterordering : ndarray of shape (n_design_trials,), int64
        For each trial of the experiment (30,000 = 40 sessions x 750), the
        0-based index into the subject's own image list.
    subjectim : ndarray of shape (8, n_subject_images), int64
        For each subject, the 0-based 73k id of each of its images.
    sharedix : ndarray of shape (n_shared,), int64
        0-based 73k ids of the images every subject saw (NSD's shared 1000).
    path : Path or None
        The file read.
    """

    masterordering: np.ndarray
    subjectim: np.ndarray
    sharedix: np.ndarray
    path: Path | None = None

    def trial_images(self, subject: int, session: int, n_trials: int = 750) -> np.ndarray:
        """0-based 73k id of each trial of one session (see :func:`nsd_trial_images`)."""
        return nsd_trial_images(self, subject, session, n_trials)


def _as_index(name: str, value, path: Path) -> np.ndarray:
    """A MATLAB 1-based index array as 0-based int64 (flattened)."""
    arr = np.asarray(value)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or arr.size == 0:
        raise UnreadableFileError(
            f"{str(path)!r}: {name!r} is not a numeric array (got dtype {arr.dtype}, shape "
            f"{arr.shape}); give NSD's nsd_expdesign.mat."
        )
    if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)) or arr.min() < 1:
        raise UnreadableFileError(
            f"{str(path)!r}: {name!r} must hold MATLAB 1-based integer indices (>= 1); it holds "
            f"values from {arr.min()} to {arr.max()}. Give NSD's nsd_expdesign.mat."
        )
    return arr.astype(np.int64) - 1


def _loadmat(path: Path) -> dict[str, Any]:
    """The variables of a .mat file (v5 through scipy, v7.3 through h5py)."""
    import zlib

    import scipy.io

    try:
        return scipy.io.loadmat(path, variable_names=_DESIGN_KEYS)
    except NotImplementedError:  # MATLAB v7.3 files are HDF5
        pass
    except (
        ValueError,
        TypeError,
        OSError,
        EOFError,
        IndexError,
        KeyError,
        zlib.error,
        scipy.io.matlab.MatReadError,
    ) as err:  # what scipy raises on truncated or foreign files
        raise UnreadableFileError(
            f"{str(path)!r} cannot be read as a MATLAB .mat file ({one_line(err)}); give NSD's "
            "nsddata/experiments/nsd/nsd_expdesign.mat (download it again if it is truncated)."
        ) from None
    import h5py

    try:
        with h5py.File(path, "r") as f:
            # MATLAB stores arrays column-major: h5py sees them transposed
            return {
                k: np.asarray(f[k]).T for k in _DESIGN_KEYS if isinstance(f.get(k), h5py.Dataset)
            }
    except OSError as err:
        raise UnreadableFileError(
            f"{str(path)!r} cannot be read as a MATLAB v7.3 .mat file ({one_line(err)}); download "
            "nsd_expdesign.mat again."
        ) from None


def read_nsd_expdesign(path) -> NSDDesign:
    """Read ``nsd_expdesign.mat`` into 0-based arrays.

    Parameters
    ----------
    path : str or path
        ``nsddata/experiments/nsd/nsd_expdesign.mat``.

    Returns
    -------
    NSDDesign

    Raises
    ------
    MissingFileError
        No file at ``path``.
    UnreadableFileError
        Not a .mat file, truncated, or without ``masterordering``,
        ``subjectim`` and ``sharedix`` as 1-based integer indices (the message
        lists the variables found).

    Examples
    --------
    >>> import tempfile, scipy.io
    >>> path = Path(tempfile.mkdtemp()) / "nsd_expdesign.mat"
    >>> scipy.io.savemat(path, {"masterordering": [[2, 1, 2, 1]],
    ...                         "subjectim": np.arange(1, 17).reshape(8, 2),
    ...                         "sharedix": [[1]]})
    >>> design = read_nsd_expdesign(path)
    >>> design.masterordering.tolist(), design.trial_images(subject=2, session=1, n_trials=2).tolist()
    ([1, 0, 1, 0], [3, 2])
    """
    path = check_file("expdesign", path)
    found = _loadmat(path)
    missing = [k for k in _DESIGN_KEYS if k not in found]
    if missing:
        present = sorted(k for k in found if not k.startswith("__"))
        if not present:
            import scipy.io

            try:
                present = [name for name, *_ in scipy.io.whosmat(path)]
            except Exception:
                present = []
        raise UnreadableFileError(
            f"{str(path)!r} has no {', '.join(repr(m) for m in missing)} (it holds "
            f"{present or 'no variables'}); give NSD's nsddata/experiments/nsd/nsd_expdesign.mat."
        )
    order = _as_index("masterordering", found["masterordering"], path).ravel()
    subjectim = _as_index("subjectim", found["subjectim"], path)
    if subjectim.ndim != 2:
        raise UnreadableFileError(
            f"{str(path)!r}: 'subjectim' must be (8, n_images); got shape {subjectim.shape}."
        )
    if order.max() >= subjectim.shape[1]:
        raise UnreadableFileError(
            f"{str(path)!r}: 'masterordering' points to image {order.max() + 1} but 'subjectim' "
            f"lists {subjectim.shape[1]} images per subject; the file is inconsistent."
        )
    shared = _as_index("sharedix", found["sharedix"], path).ravel()
    return NSDDesign(masterordering=order, subjectim=subjectim, sharedix=shared, path=path)


def nsd_trial_images(expdesign, subject: int, session: int, n_trials: int = 750) -> np.ndarray:
    """The 0-based 73k id of the image shown on each trial of one session.

    Trial ``t`` (0-based) of session ``s`` (1-based) showed
    ``subjectim[subject - 1, masterordering[(s - 1) * n_trials + t]]``
    (both 0-based here).

    Parameters
    ----------
    expdesign : NSDDesign or path
        From :func:`read_nsd_expdesign`, or the ``.mat`` file.
    subject : int
        1 to 8.
    session : int
        1-based session number.
    n_trials : int, default=750
        Trials per session (NSD: 750).

    Returns
    -------
    ndarray of shape (n_trials,), int64

    Raises
    ------
    InputError
        A subject outside 1..8 or the design, or a session beyond the design.
    """
    design = expdesign if isinstance(expdesign, NSDDesign) else read_nsd_expdesign(expdesign)
    subject = _check_subject(subject)
    session = check_int("session", session, minimum=1)
    n_trials = check_int("n_trials", n_trials, minimum=1)
    if subject > design.subjectim.shape[0]:
        raise InputError(
            f"subject {subject} is not in the design: 'subjectim' has "
            f"{design.subjectim.shape[0]} rows."
        )
    n_sessions = len(design.masterordering) // n_trials
    if session > n_sessions:
        raise InputError(
            f"session {session} is beyond the design: 'masterordering' covers {n_sessions} "
            f"sessions of {n_trials} trials."
        )
    start = (session - 1) * n_trials
    return design.subjectim[subject - 1, design.masterordering[start : start + n_trials]]


# ------------------------------------------------------------------- ctab
def read_ctab(path) -> dict[int, str]:
    """ROI names from a FreeSurfer colour table (NSD's ``<atlas>.mgz.ctab``).

    Each line is ``index name`` (optionally followed by colour values);
    blank lines, ``#`` comments and trailing tabs or spaces are ignored.

    Parameters
    ----------
    path : str or path

    Returns
    -------
    dict of int to str
        Label value to name, including NSD's ``0: "Unknown"``.

    Raises
    ------
    MissingFileError
        No file at ``path``.
    UnreadableFileError
        A binary file, a line whose first field is not an integer or that
        has no name, a label listed twice, or no entry at all.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "prf-visualrois.mgz.ctab"
    >>> _ = path.write_text("0 Unknown\\t\\n1\\tV1v\\t\\n\\n2 V1d\\t\\n")
    >>> read_ctab(path)
    {0: 'Unknown', 1: 'V1v', 2: 'V1d'}
    """
    path = check_file("ctab", path)
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        raise UnreadableFileError(
            f"{str(path)!r} is a binary file, not a colour table; give the text file "
            "<atlas>.mgz.ctab from nsddata/freesurfer/subjXX/label/."
        )
    names: dict[int, str] = {}
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        try:
            label = int(fields[0])
        except ValueError:
            raise UnreadableFileError(
                f"{str(path)!r} line {number}: {line.strip()!r} does not start with an integer "
                "label; a colour table has lines 'index name'."
            ) from None
        if len(fields) < 2:
            raise UnreadableFileError(
                f"{str(path)!r} line {number}: label {label} has no name; a colour table has "
                "lines 'index name'."
            )
        if label in names:
            raise UnreadableFileError(
                f"{str(path)!r} line {number}: label {label} is listed twice ({names[label]!r} "
                f"and {fields[1]!r})."
            )
        names[label] = fields[1]
    if not names:
        raise UnreadableFileError(
            f"{str(path)!r} holds no 'index name' line; give the colour table of the atlas."
        )
    return names


# ---------------------------------------------------------------- volumes
def _load_volume(path: Path, what: str):
    """(data, affine) of a 3-D NIfTI file, read whole (these are small)."""
    from data_loaders.fmri.nifti import _load_img

    img = _load_img(path, what)
    data = np.asarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise UnreadableFileError(
            f"{what}: {str(path)!r} has shape {data.shape}; a 3-D volume (X, Y, Z) was expected."
        )
    return data, np.asarray(img.affine, dtype=np.float64)


def _session_files(betas_dir: Path) -> dict[int, Path]:
    found = {}
    for p in betas_dir.iterdir():
        m = _SESSION_FILE.match(p.name)
        if m and p.is_file():
            found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def _group_rows(kji: np.ndarray, max_gap: int = 4) -> list[tuple]:
    """Voxels as runs along X within (Z, Y) rows, one HDF5 read each.

    Returns ``(k, j, i0, i1, offsets into the run, output columns)`` tuples.
    A run is split where more than ``max_gap`` unselected voxels lie between
    two selected ones: with one chunk per voxel, reading a gap costs its
    chunks, and a separate read costs about a few chunks' time.
    """
    order = np.lexsort((kji[:, 2], kji[:, 1], kji[:, 0]))
    k, j, i = (kji[order, a] for a in range(3))
    new_run = np.r_[True, (k[1:] != k[:-1]) | (j[1:] != j[:-1]) | (i[1:] - i[:-1] > max_gap + 1)]
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], len(order)]
    return [
        (int(k[a]), int(j[a]), int(i[a]), int(i[b - 1]) + 1, i[a:b] - i[a], order[a:b])
        for a, b in zip(starts, ends, strict=True)
    ]


# ---------------------------------------------------------------- subject
class NSDSubject:
    """One NSD subject read from the files as distributed, lazily and by voxel rows.

    Opening reads the design, masks, ROI tables and the shape of each betas
    file (small); the betas are read by :meth:`read_session`,
    :meth:`iter_sessions` or :meth:`to_dataset`.

    Parameters
    ----------
    root : str or path, optional
        The folder holding ``nsddata/``, ``nsddata_betas/`` and
        ``nsddata_stimuli/`` (the layout of the AWS bucket). May be omitted
        when every path below is given.
    subject : int, default=1
        1 to 8.
    sessions : int or sequence of int, optional
        1-based session numbers to read; default all ``betas_sessionYY.hdf5``
        files present.
    rois : str or sequence of str, optional
        Keep only the voxels of these ROIs, by name from the atlases'
        ``.ctab`` tables (e.g. ``["V1v", "V1d"]`` with
        ``roi_atlases=("prf-visualrois",)``).
    roi_atlases : str or sequence of str, default=("nsdgeneral",)
        Atlases (``roi/<atlas>.nii.gz``) that name each voxel's ROI. With
        several, a voxel takes the name from the first atlas in this order
        that labels it (label > 0; with ``rois``, the first whose label is
        one of ``rois``); "" when none does.
    voxels : str, default="auto"
        Which voxels to read when ``rois`` is None: ``"auto"`` (nsdgeneral > 0
        when ``roi/nsdgeneral.nii.gz`` exists, else the brain mask),
        ``"brainmask"``, or an atlas name (its label > 0).
    expdesign, betas_dir, ppdata_dir, label_dir : str or path, optional
        Explicit places of ``nsd_expdesign.mat``, the folder of
        ``betas_sessionYY.hdf5`` (and ``ncsnr.nii.gz``), the ``func1pt8mm``
        folder (``brainmask.nii.gz`` and ``roi/``), and the folder of the
        ``.ctab`` files; by default under ``root`` (see :func:`nsd_paths`).
    stimuli : "auto", str, path, ImageSet or None, default="auto"
        The images: ``"auto"`` opens ``nsd_stimuli.hdf5`` under ``root`` if
        it is there (lazily) and goes without otherwise; None goes without.
    betas_version : str, default="betas_fithrf_GLMdenoise_RR"

    Attributes
    ----------
    subject : int
    name : str
        ``"subjXX"``.
    sessions : list of int
    n_trials_per_session : int
    stimulus_ids : ndarray of shape (n_trials,), int64
        0-based 73k id of each trial of the sessions read, in order.
    session_ids : ndarray of shape (n_trials,), int64
        1-based session number of each trial.
    shared_stimuli : ndarray of shape (n_shared,), int64
        0-based 73k ids of NSD's shared images (``sharedix``).
    geometry : VoxelGeometry
        Voxel indices in NIfTI ``(X, Y, Z)`` order and the affine of the
        ROI / brain-mask NIfTI files.
    roi_labels : ndarray of shape (n_voxels,), str
    stimuli : ImageSet or None
    design : NSDDesign
    paths : dict of str to Path
        The files and folders used.

    Raises
    ------
    MissingFileError
        A file that is needed is absent (a requested session: the message
        lists the sessions found).
    UnreadableFileError
        A file is empty, truncated or of another kind.
    InputError
        A subject outside 1..8, an unknown ROI or atlas (the message lists
        those available), files on different grids.

    Examples
    --------
    >>> import tempfile
    >>> from data_loaders.simulate.nsd_layout import write_nsd_layout
    >>> truth = write_nsd_layout(tempfile.mkdtemp(), n_sessions=2, trials_per_session=30)
    >>> nsd = NSDSubject(truth.root, subject=1)
    >>> nsd.sessions, nsd.n_trials, nsd.n_voxels > 0
    ([1, 2], 60, True)
    >>> ds = nsd.to_dataset()
    >>> ds.name, ds.betas.shape == (60, nsd.n_voxels), ds.session_ids[[0, -1]].tolist()
    ('subj01', True, [1, 2])
    """

    def __init__(
        self,
        root=None,
        subject: int = 1,
        sessions: int | Sequence[int] | None = None,
        *,
        rois: str | Sequence[str] | None = None,
        roi_atlases: str | Sequence[str] = ("nsdgeneral",),
        voxels: str = "auto",
        expdesign=None,
        betas_dir=None,
        ppdata_dir=None,
        label_dir=None,
        stimuli: Any = "auto",
        betas_version: str = NSD_BETAS_VERSION,
    ) -> None:
        self.subject = _check_subject(subject)
        self.name = f"subj{self.subject:02d}"
        if root is not None and not isinstance(root, (str, os.PathLike)):
            raise InputTypeError(f"root must be a folder path or None; got {type(root).__name__}.")
        if root is not None:
            check_file("root", root, folder=True)
        default = nsd_paths(root, self.subject, betas_version) if root is not None else {}
        given = {
            "expdesign": expdesign,
            "betas_dir": betas_dir,
            "ppdata_dir": ppdata_dir,
            "label_dir": label_dir,
        }
        paths: dict[str, Path] = {}
        for key, value in given.items():
            if value is None and key not in default:
                raise InputError(
                    f"{key} is needed: give root (the folder holding nsddata/ and nsddata_betas/) "
                    f"or {key}=<path>."
                )
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise InputTypeError(f"{key} must be a path; got {type(value).__name__}.")
            paths[key] = Path(value).expanduser() if value is not None else default[key]
        self.paths = paths

        self.design = read_nsd_expdesign(self._need(paths["expdesign"], "expdesign"))
        self._find_sessions(sessions)
        self._find_voxels(rois, roi_atlases, voxels)
        self._open_stimuli(stimuli, default.get("stimuli"))

        ids = [
            nsd_trial_images(self.design, self.subject, s, self.n_trials_per_session)
            for s in self.sessions
        ]
        self.stimulus_ids = np.concatenate(ids)
        self.session_ids = np.repeat(
            np.asarray(self.sessions, dtype=np.int64), self.n_trials_per_session
        )
        self.shared_stimuli = self.design.sharedix.copy()

    # ------------------------------------------------------------ opening
    def _need(self, path: Path, key: str, folder: bool = False) -> Path:
        if not path.exists():
            how = f"{key}=<path>" if key != "root" else "root"
            raise MissingFileError(
                f"NSD {self.name}: no {'folder' if folder else 'file'} {str(path)!r} ({key}); "
                f"download it from the NSD bucket or give {how}."
            )
        return check_file(key, path, folder=folder)

    def _find_sessions(self, sessions) -> None:
        import h5py

        betas_dir = self._need(self.paths["betas_dir"], "betas_dir", folder=True)
        found = _session_files(betas_dir)
        if not found:
            raise MissingFileError(
                f"NSD {self.name}: no betas_sessionYY.hdf5 file in {str(betas_dir)!r}; download "
                "the sessions (nsddata_betas/ppdata/subjXX/func1pt8mm/<version>/)."
            )
        if sessions is None:
            chosen = list(found)
        else:
            seq = [sessions] if isinstance(sessions, (int, np.integer)) else sessions
            if isinstance(seq, (str, bytes)) or not hasattr(seq, "__iter__"):
                raise InputTypeError(
                    f"sessions must be a session number or a list of them; got {sessions!r}."
                )
            chosen = [check_int("sessions", s, minimum=1) for s in seq]
            if not chosen:
                raise InputError("sessions is empty; give at least one session number, or None.")
            if len(set(chosen)) != len(chosen):
                raise InputError(f"sessions lists a session twice: {chosen}.")
            absent = [s for s in chosen if s not in found]
            if absent:
                raise MissingFileError(
                    f"NSD {self.name}: session(s) {absent} have no betas_sessionYY.hdf5 in "
                    f"{str(betas_dir)!r}; sessions found: {_ranges(list(found))}."
                )
        self.sessions = chosen
        self._files = {s: found[s] for s in chosen}
        shapes = {}
        for s, p in self._files.items():
            check_file(f"session {s}", p)
            try:
                with h5py.File(p, "r") as f:
                    d = f.get("betas")
                    if not isinstance(d, h5py.Dataset):
                        raise UnreadableFileError(
                            f"{str(p)!r} has no 'betas' dataset (it holds {sorted(f.keys())}); "
                            "give NSD's betas_sessionYY.hdf5."
                        )
                    shapes[s] = tuple(d.shape)
            except OSError as err:
                raise UnreadableFileError(
                    f"{str(p)!r} cannot be read as HDF5 (truncated, corrupt or another kind of "
                    f"file: {one_line(err)}); download it again."
                ) from None
        first = shapes[chosen[0]]
        for s, shape in shapes.items():
            if len(shape) != 4:
                raise UnreadableFileError(
                    f"{str(self._files[s])!r}: betas have shape {shape}; NSD's are "
                    "(n_trials, Z, Y, X)."
                )
            if shape != first:
                raise InputError(
                    f"NSD {self.name}: session {s} has betas of shape {shape} but session "
                    f"{chosen[0]} has {first}; read sessions of one version and resolution."
                )
        self.n_trials_per_session = int(first[0])
        self._zyx = first[1:]

    def _find_voxels(self, rois, roi_atlases, voxels) -> None:
        pp = self.paths["ppdata_dir"]
        roi_dir = pp / "roi"
        atlases = [roi_atlases] if isinstance(roi_atlases, str) else list(roi_atlases)
        if not all(isinstance(a, str) for a in atlases):
            raise InputTypeError(f"roi_atlases must be atlas names (str); got {roi_atlases!r}.")
        if rois is not None:
            wanted = [rois] if isinstance(rois, str) else list(rois)
            if not wanted or not all(isinstance(r, str) for r in wanted):
                raise InputTypeError(f"rois must be ROI names (str); got {rois!r}.")
        else:
            wanted = None
        if not isinstance(voxels, str):
            raise InputTypeError(
                f"voxels must be 'auto', 'brainmask' or an atlas name; got {voxels!r}."
            )
        available = sorted(
            p.name[: -len(".nii.gz")]
            for p in (roi_dir.iterdir() if roi_dir.is_dir() else [])
            if p.name.endswith(".nii.gz") and not p.name.startswith(("lh.", "rh."))
        )
        brainmask_path = pp / "brainmask.nii.gz"
        if voxels == "auto":
            voxels = "nsdgeneral" if (roi_dir / "nsdgeneral.nii.gz").exists() else "brainmask"
        needed = list(dict.fromkeys(atlases + ([voxels] if voxels != "brainmask" else [])))
        for a in needed:
            if not (roi_dir / f"{a}.nii.gz").exists():
                raise MissingFileError(
                    f"NSD {self.name}: no ROI atlas {a!r} ({str(roi_dir / (a + '.nii.gz'))!r}); "
                    f"atlases found: {available}. Download it or choose another."
                )
        volumes: dict[str, np.ndarray] = {}
        ref_affine = ref_name = None
        sources = ([("brainmask", brainmask_path)] if brainmask_path.exists() else []) + [
            (a, roi_dir / f"{a}.nii.gz") for a in needed
        ]
        if voxels == "brainmask" and not brainmask_path.exists():
            raise MissingFileError(
                f"NSD {self.name}: no brain mask {str(brainmask_path)!r}; download it, or choose "
                "voxels by an atlas (voxels='nsdgeneral')."
            )
        shape_xyz = tuple(int(n) for n in self._zyx[::-1])
        for name, path in sources:
            data, affine = _load_volume(path, name)
            if data.shape != shape_xyz:
                raise InputError(
                    f"NSD {self.name}: {str(path)!r} has shape {data.shape} but the betas are on a "
                    f"{shape_xyz} (X, Y, Z) grid; use the files of the same space ({NSD_SPACE})."
                )
            if ref_affine is None:
                ref_affine, ref_name = affine, name
            elif not np.allclose(affine, ref_affine, atol=1e-3):
                raise InputError(
                    f"NSD {self.name}: {name} and {ref_name} have different affines; use the "
                    f"files of one space ({NSD_SPACE})."
                )
            volumes[name] = np.rint(data).astype(np.int64) if data.dtype.kind == "f" else data
        self.affine = ref_affine

        names: dict[str, dict[int, str]] = {}
        for a in atlases:
            # lh./rh. atlases share the whole-brain atlas's table (NSD ships only that one)
            base = a[3:] if a.startswith(("lh.", "rh.")) else a
            ctab = self.paths["label_dir"] / f"{base}.mgz.ctab"
            if ctab.exists():
                names[a] = read_ctab(ctab)
            else:
                labels = sorted(int(v) for v in np.unique(volumes[a]) if v > 0)
                names[a] = {v: f"{a}-{v}" for v in labels}
                warnings.warn(
                    f"No colour table {str(ctab)!r}; ROIs of {a!r} are named {a}-<label>.",
                    FMRIDataWarning,
                    stacklevel=3,
                )
        self.roi_names = names

        if wanted is not None:
            known = {n for a in atlases for v, n in names[a].items() if v > 0}
            unknown = [r for r in wanted if r not in known]
            if unknown:
                listing = "; ".join(
                    f"{a}: {[n for v, n in sorted(names[a].items()) if v > 0]}" for a in atlases
                )
                others = [a for a in available if a not in atlases]
                hint = f" Other atlases in roi/: {others} (add to roi_atlases)." if others else ""
                raise InputError(
                    f"ROI(s) {unknown} are in none of roi_atlases {atlases}; their ROIs are "
                    f"{listing}.{hint}"
                )
        # per-voxel names, first atlas wins
        label_volume = np.full(shape_xyz, "", dtype=object)
        for a in atlases[::-1]:
            vol = volumes[a]
            for v, n in names[a].items():
                if v <= 0 or (wanted is not None and n not in wanted):
                    continue
                label_volume[vol == v] = n
            if wanted is None:  # labels without a name in the table keep their number
                unnamed = (vol > 0) & ~np.isin(vol, list(names[a]))
                for v in np.unique(vol[unnamed]):
                    label_volume[vol == v] = f"{a}-{int(v)}"
        if wanted is not None:
            mask = label_volume != ""
            if not mask.any():
                raise InputError(f"ROI(s) {wanted} hold no voxel in this subject's atlases.")
        else:
            mask = volumes[voxels] > 0
            if not mask.any():
                raise InputError(
                    f"NSD {self.name}: {voxels} selects no voxel; choose voxels='brainmask' or "
                    "another atlas."
                )
        ijk = np.argwhere(mask)  # NIfTI (X, Y, Z) order, C-order over the volume
        self.geometry = VoxelGeometry(shape_xyz, self.affine, ijk)
        self.roi_labels = np.asarray(label_volume[mask], dtype=str)
        self._rows = _group_rows(ijk[:, ::-1])  # storage order (Z, Y, X)

    def _open_stimuli(self, stimuli, default_path) -> None:
        from data_loaders.stimuli import HDF5Images, open_images

        if isinstance(stimuli, str) and stimuli == "auto":
            if default_path is not None and default_path.exists():
                self.paths["stimuli"] = default_path
                self.stimuli = HDF5Images(default_path, "imgBrick")
            else:
                self.stimuli = None
        elif stimuli is None or hasattr(stimuli, "load"):
            self.stimuli = stimuli
        elif isinstance(stimuli, (str, os.PathLike)):
            p = Path(stimuli).expanduser()
            if p.suffix.lower() in (".h5", ".hdf5"):
                self.stimuli = HDF5Images(p, "imgBrick")
            else:
                self.stimuli = open_images(p)
            self.paths["stimuli"] = p
        else:
            self.stimuli = open_images(stimuli)

    # ------------------------------------------------------------- basics
    @property
    def n_trials(self) -> int:
        """Trials of the sessions read, all together."""
        return len(self.sessions) * self.n_trials_per_session

    @property
    def n_voxels(self) -> int:
        """Voxels read."""
        return self.geometry.n_voxels

    @property
    def voxel_ijk(self) -> np.ndarray:
        """Voxel indices ``(n_voxels, 3)`` in NIfTI ``(X, Y, Z)`` order."""
        return self.geometry.ijk

    @property
    def rois(self) -> list[str]:
        """Names of the ROIs among the voxels read (sorted; "" left out)."""
        return sorted({r for r in self.roi_labels.tolist() if r})

    def __repr__(self) -> str:
        return (
            f"NSDSubject({self.name}, sessions={_ranges(self.sessions)}, n_trials={self.n_trials}, "
            f"n_voxels={self.n_voxels}, rois={self.rois})"
        )

    # ------------------------------------------------------------ reading
    def read_session(self, session: int, out: np.ndarray | None = None) -> np.ndarray:
        """Betas of one session in percent signal change, ``(n_trials_per_session, n_voxels)``.

        Read by rows of voxels (one hyperslab of all trials per (Z, Y) row),
        so no whole volume of trials is ever held.

        Parameters
        ----------
        session : int
            One of :attr:`sessions`.
        out : ndarray of shape (n_trials_per_session, n_voxels), float32, optional
            Filled in place (e.g. a block of a larger matrix).

        Returns
        -------
        ndarray, float32

        Raises
        ------
        InputError
            A session not among those opened.
        UnreadableFileError
            The file is truncated or damaged.
        """
        import h5py

        session = check_int("session", session, minimum=1)
        if session not in self._files:
            raise InputError(
                f"session {session} was not opened; the sessions are {_ranges(self.sessions)}."
            )
        shape = (self.n_trials_per_session, self.n_voxels)
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        elif out.shape != shape:
            raise InputError(f"out must have shape {shape}; got {out.shape}.")
        path = self._files[session]
        try:
            with h5py.File(path, "r") as f:
                d = f["betas"]
                scale = float(d.attrs.get("scale", NSD_SCALE)) if d.dtype.kind in "iu" else 1.0
                for k, j, i0, i1, offsets, cols in self._rows:
                    row = d[:, k, j, i0:i1]
                    out[:, cols] = row[:, offsets]
                out /= scale
        except (OSError, KeyError) as err:
            raise UnreadableFileError(
                f"{str(path)!r} cannot be read (truncated or corrupt: {one_line(err)}); download "
                "it again."
            ) from None
        return out

    def iter_sessions(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(session, betas)`` one session at a time (see :meth:`read_session`)."""
        for s in self.sessions:
            yield s, self.read_session(s)

    def read_betas(self) -> np.ndarray:
        """All sessions' betas, ``(n_trials, n_voxels)`` float32 (percent signal change)."""
        betas = np.empty((self.n_trials, self.n_voxels), dtype=np.float32)
        n = self.n_trials_per_session
        for pos, s in enumerate(self.sessions):
            self.read_session(s, out=betas[pos * n : (pos + 1) * n])
        return betas

    def ncsnr(self) -> np.ndarray:
        """NSD's noise-ceiling SNR at the voxels read, from ``ncsnr.nii.gz`` beside the betas.

        Returns
        -------
        ndarray of shape (n_voxels,), float32
            The ceiling of an n-trial average is
            ``100 * ncsnr**2 / (ncsnr**2 + 1 / n)`` percent of variance.

        Raises
        ------
        MissingFileError
            ``ncsnr.nii.gz`` is not in the betas folder (it is optional).
        """
        path = self.paths["betas_dir"] / "ncsnr.nii.gz"
        if not path.exists():
            raise MissingFileError(
                f"NSD {self.name}: no {str(path)!r}; download ncsnr.nii.gz into the betas folder, "
                "or estimate the ceiling from repeats with FMRIDataset.noise_ceiling()."
            )
        data, _ = _load_volume(path, "ncsnr")
        if data.shape != self.geometry.volume_shape:
            raise InputError(
                f"{str(path)!r} has shape {data.shape} but the voxels lie on a "
                f"{self.geometry.volume_shape} grid; use the ncsnr of the same space."
            )
        i, j, k = self.voxel_ijk.T
        return np.asarray(data[i, j, k], dtype=np.float32)

    def to_dataset(self, drop_bad: bool = True):
        """Read every session into an :class:`~data_loaders.fmri.dataset.FMRIDataset`.

        The dataset holds the betas (float32, percent signal change), the
        0-based 73k stimulus ids, the 1-based session of each trial (so its
        noise ceiling and ``zscore()`` standardise within sessions, as NSD
        does), the ROI names, the geometry and the stimuli.

        Parameters
        ----------
        drop_bad : bool, default=True
            Drop voxels constant or non-finite over trials (with a warning).

        Returns
        -------
        FMRIDataset
        """
        from data_loaders.fmri.dataset import FMRIDataset

        return FMRIDataset(
            self.read_betas(),
            self.stimulus_ids,
            stimuli=self.stimuli,
            roi_labels=self.roi_labels,
            geometry=self.geometry,
            session_ids=self.session_ids,
            name=self.name,
            drop_bad=drop_bad,
        )


def _ranges(values: list[int]) -> str:
    """``[1, 2, 3, 5]`` as ``"1-3, 5"``."""
    values = sorted(values)
    parts, start = [], None
    for a, b in zip(values, [*values[1:], None], strict=False):
        start = a if start is None else start
        if b != a + 1:
            parts.append(f"{start}" if start == a else f"{start}-{a}")
            start = None
    return ", ".join(parts)
