"""A miniature Natural Scenes Dataset subject, written exactly as NSD distributes its files.

:func:`write_nsd_layout` writes the folders, names, dtypes, 1-based MATLAB
indices and axis orders of the real dataset (see
:mod:`data_loaders.fmri.nsd`), on a small grid with few trials and small
images, from a planted linear model whose truth it returns:

- each image's features are the mean grey level of the cells of a
  ``feature_grid`` x ``feature_grid`` grid over the image (as stored, uint8),
  z-scored over the image set, so they can be recomputed from ``imgBrick``;
- each ``nsdgeneral`` voxel responds ``features @ weights[:, voxel]``; other
  brain voxels carry noise only; voxels outside the brain mask are 0, as in
  NSD's files;
- a trial's beta is ``offset[session, voxel] + scale[session] * (signal +
  noise)`` in percent signal change, stored as ``round(beta * 300)`` int16.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data_loaders._io import atomic_open, atomic_write_text, check_overwrite
from data_loaders._validation import check_bool, check_float, check_int
from data_loaders.errors import InputError, InputTypeError

__all__ = ["FLOC_FACES", "PRF_VISUALROIS", "NSDLayout", "image_features", "write_nsd_layout"]

PRF_VISUALROIS = ("V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4")
FLOC_FACES = ("OFA", "FFA-1", "FFA-2", "mTL-faces", "aTL-faces")
_N_DESIGN_SESSIONS = 40  # masterordering always covers 40 sessions
_VOXEL_MM = 1.8


@dataclass
class NSDLayout:
    """What :func:`write_nsd_layout` wrote and the truth it planted.

    Attributes
    ----------
    root : Path
        The folder holding ``nsddata/``, ``nsddata_betas/``, ``nsddata_stimuli/``.
    subject : int
    paths : dict of str to Path
        ``expdesign``, ``betas_dir``, ``sessions`` (list), ``ncsnr``,
        ``brainmask``, ``roi_dir``, ``label_dir``, ``stimuli``, ``responses``.
    affine : ndarray of shape (4, 4)
        1.8 mm, RAS+, origin at the centre of the grid.
    betas : ndarray of shape (X, Y, Z, n_trials), float32
        The planted betas in percent signal change, NIfTI order, all sessions
        in order (the files hold ``round(betas * 300)`` as int16).
    stimulus_ids : ndarray of shape (n_trials,), int64
        0-based 73k id shown on each trial.
    session_ids : ndarray of shape (n_trials,), int64
        1-based session of each trial.
    features : ndarray of shape (n_images, n_features), float32
        The planted features of every image, indexed by 0-based 73k id.
    weights : ndarray of shape (n_features, X, Y, Z), float32
        Each voxel's planted weights (0 off the signal voxels).
    signal_mask : ndarray of shape (X, Y, Z), bool
        Voxels that respond to the images (nsdgeneral).
    brainmask : ndarray of shape (X, Y, Z), bool
    ncsnr : ndarray of shape (X, Y, Z), float32
        Planted signal sd over the subject's images / noise sd (as written).
    session_offsets : ndarray of shape (n_sessions, X, Y, Z), float32
    session_scales : ndarray of shape (n_sessions,), float32
    shared_ids : ndarray of shape (n_shared,), int64
        0-based 73k ids of the shared images.
    subject_images : ndarray of shape (8, n_subject_images), int64
        0-based 73k ids of each subject's images.
    rois : dict of str to ndarray of shape (X, Y, Z), int
        Each atlas's labels (-1 outside the brain, 0 unlabelled, 1..N).
    roi_names : dict of str to dict of int to str
    images : ndarray of shape (n_images, H, W, 3), uint8
        ``imgBrick``.
    """

    root: Path
    subject: int
    paths: dict
    affine: np.ndarray
    betas: np.ndarray
    stimulus_ids: np.ndarray
    session_ids: np.ndarray
    features: np.ndarray
    weights: np.ndarray
    signal_mask: np.ndarray
    brainmask: np.ndarray
    ncsnr: np.ndarray
    session_offsets: np.ndarray
    session_scales: np.ndarray
    shared_ids: np.ndarray
    subject_images: np.ndarray
    rois: dict = field(default_factory=dict)
    roi_names: dict = field(default_factory=dict)
    images: np.ndarray | None = None


def _nifti_gz(data: np.ndarray, affine: np.ndarray) -> bytes:
    import nibabel as nib

    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    return gzip.compress(img.to_bytes(), compresslevel=1)


def _write_hdf5_betas(path: Path, betas_tzyx: np.ndarray) -> None:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            # NSD's chunking: all trials of one voxel per chunk
            f.create_dataset("betas", data=betas_tzyx, chunks=(betas_tzyx.shape[0], 1, 1, 1))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_images(path: Path, images: np.ndarray) -> None:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("imgBrick", data=images, chunks=(1, *images.shape[1:]))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _ctab(names: dict[int, str]) -> str:
    # NSD's tables: "index name" lines starting with "0 Unknown", with trailing tabs
    return "".join(f"{k}\t{v}\t\n" for k, v in sorted(names.items()))


def _make_images(rng, n: int, size: int, grid: int) -> np.ndarray:
    """Blocky colour images (a random coarse pattern, upsampled) plus fine texture, uint8."""
    coarse = rng.uniform(0.1, 0.9, (n, grid * 2, grid * 2, 3))
    rep = -(-size // (grid * 2))
    img = np.repeat(np.repeat(coarse, rep, axis=1), rep, axis=2)[:, :size, :size]
    img = img + rng.normal(0.0, 0.04, img.shape)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def image_features(images: np.ndarray, grid: int = 4) -> np.ndarray:
    """Mean grey level of each cell of a ``grid`` x ``grid`` partition, z-scored over images.

    Parameters
    ----------
    images : array of shape (n, H, W, 3), uint8
    grid : int, default=4

    Returns
    -------
    ndarray of shape (n, grid * grid), float32
    """
    grey = np.asarray(images, dtype=np.float64).mean(axis=3) / 255.0
    _n, h, w = grey.shape
    rows = np.array_split(np.arange(h), grid)
    cols = np.array_split(np.arange(w), grid)
    feats = np.stack([grey[:, r][:, :, c].mean(axis=(1, 2)) for r in rows for c in cols], axis=1)
    feats = (feats - feats.mean(0)) / np.maximum(feats.std(0), 1e-12)
    return feats.astype(np.float32)


def _atlases(brain: np.ndarray) -> tuple[dict, dict]:
    """nsdgeneral, prf-visualrois and floc-faces label volumes (-1 / 0 / 1..N)."""
    X, Y, Z = brain.shape
    i, j, k = np.meshgrid(np.arange(X), np.arange(Y), np.arange(Z), indexing="ij")
    posterior = brain & (j < Y // 2)
    gen = np.where(brain, 0, -1)
    gen[posterior] = 1
    prf = np.where(brain, 0, -1)
    prf_label = (i + 3 * k) % (len(PRF_VISUALROIS) + 1)  # 0 = unlabelled
    prf[posterior] = prf_label[posterior]
    faces = np.where(brain, 0, -1)
    band = brain & ((j == Y // 2 - 1) | (j == Y // 2))  # overlaps nsdgeneral's edge
    faces[band] = 1 + i[band] % len(FLOC_FACES)
    rois = {"nsdgeneral": gen, "prf-visualrois": prf, "floc-faces": faces}
    names = {
        "nsdgeneral": {0: "Unknown", 1: "nsdgeneral"},
        "prf-visualrois": {0: "Unknown", **{n + 1: v for n, v in enumerate(PRF_VISUALROIS)}},
        "floc-faces": {0: "Unknown", **{n + 1: v for n, v in enumerate(FLOC_FACES)}},
    }
    return {k: v.astype(np.int16) for k, v in rois.items()}, names


def write_nsd_layout(
    root,
    subject: int = 1,
    n_sessions: int = 3,
    trials_per_session: int = 60,
    volume_shape: tuple[int, int, int] = (10, 12, 9),
    n_images: int = 300,
    n_subject_images: int = 120,
    n_shared: int = 30,
    image_size: int = 32,
    feature_grid: int = 4,
    signal_sd: float = 1.0,
    noise_sd: float = 1.0,
    seed: int | None = 0,
    overwrite: bool = False,
) -> NSDLayout:
    """Write a miniature NSD subject under ``root`` with the real file layout.

    Files written (``XX`` = subject, ``YY`` = session, both zero-padded)::

        nsddata/experiments/nsd/nsd_expdesign.mat     masterordering (1, 40 * trials), subjectim
                                                      (8, n_subject_images), sharedix (1, n_shared),
                                                      stimpattern (40, 12, 75); 1-based, double
        nsddata/ppdata/subjXX/func1pt8mm/brainmask.nii.gz
        nsddata/ppdata/subjXX/func1pt8mm/roi/{nsdgeneral,prf-visualrois,floc-faces}.nii.gz
        nsddata/ppdata/subjXX/behav/responses.tsv     SUBJECT SESSION RUN TRIAL 73KID 10KID
        nsddata/freesurfer/subjXX/label/<atlas>.mgz.ctab
        nsddata_betas/ppdata/subjXX/func1pt8mm/betas_fithrf_GLMdenoise_RR/
            betas_sessionYY.hdf5                      only 'betas', int16 x 300,
                                                      (trials, Z, Y, X), chunks (trials, 1, 1, 1)
            ncsnr.nii.gz
        nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5  imgBrick (n_images, size, size, 3) uint8

    Parameters
    ----------
    root : str or path
        Folder to write into (created if needed).
    subject : int, default=1
        Which of NSD's 8 subjects gets betas (all 8 get an image list).
    n_sessions : int, default=3
        Sessions written (1..40).
    trials_per_session : int, default=60
        NSD has 750.
    volume_shape : tuple of 3 int, default=(10, 12, 9)
        The grid ``(X, Y, Z)``; unequal sizes make a transposed read fail.
    n_images : int, default=300
        Size of the "73k" image space.
    n_subject_images : int, default=120
        Images per subject (NSD: 10,000), the shared ones included.
    n_shared : int, default=30
        Images every subject sees (NSD: 1000).
    image_size : int, default=32
        Image height and width (NSD: 425).
    feature_grid : int, default=4
        Features are the mean grey level of a ``feature_grid`` squared grid.
    signal_sd : float, default=1.0
        Typical sd (percent signal change) of a signal voxel's response over
        images; each voxel's is drawn in ``[0.3, 1.5] * signal_sd``.
    noise_sd : float, default=1.0
        Trial noise sd (percent signal change).
    seed : int or None, default=0
    overwrite : bool, default=False
        Replace existing files (only those this function writes).

    Returns
    -------
    NSDLayout
        The paths and the planted truth.

    Raises
    ------
    OutputExistsError
        A file to write exists and ``overwrite`` is False (nothing is written).
    InputError
        Sizes that do not fit together (e.g. more subject images than images).

    Examples
    --------
    >>> import tempfile, h5py
    >>> truth = write_nsd_layout(tempfile.mkdtemp(), n_sessions=2, trials_per_session=30)
    >>> with h5py.File(truth.paths["sessions"][0], "r") as f:
    ...     list(f), f["betas"].shape, f["betas"].dtype.name
    (['betas'], (30, 9, 12, 10), 'int16')
    """
    subject = check_int("subject", subject, minimum=1, maximum=8)
    n_sessions = check_int("n_sessions", n_sessions, minimum=1, maximum=_N_DESIGN_SESSIONS)
    tps = check_int("trials_per_session", trials_per_session, minimum=1)
    if not isinstance(volume_shape, (tuple, list)) or len(volume_shape) != 3:
        raise InputTypeError(f"volume_shape must be 3 integers (X, Y, Z); got {volume_shape!r}.")
    shape = tuple(check_int("volume_shape", int(s), minimum=3) for s in volume_shape)
    n_images = check_int("n_images", n_images, minimum=2)
    n_subject_images = check_int("n_subject_images", n_subject_images, minimum=1)
    n_shared = check_int("n_shared", n_shared, minimum=1)
    image_size = check_int("image_size", image_size, minimum=4)
    grid = check_int("feature_grid", feature_grid, minimum=1, maximum=image_size)
    signal_sd = check_float("signal_sd", signal_sd, minimum=0.0)
    noise_sd = check_float("noise_sd", noise_sd, minimum=0.0, strict_minimum=True)
    overwrite = check_bool("overwrite", overwrite)
    if n_shared > n_subject_images:
        raise InputError(
            f"n_shared ({n_shared}) must not exceed n_subject_images ({n_subject_images})."
        )
    if n_subject_images > n_images:
        raise InputError(
            f"n_subject_images ({n_subject_images}) must not exceed n_images ({n_images})."
        )
    rng = np.random.default_rng(check_int("seed", seed, allow_none=True))
    root = Path(root).expanduser()
    subj = f"subj{subject:02d}"
    func = root / "nsddata" / "ppdata" / subj / "func1pt8mm"
    betas_dir = (
        root / "nsddata_betas" / "ppdata" / subj / "func1pt8mm" / "betas_fithrf_GLMdenoise_RR"
    )
    label_dir = root / "nsddata" / "freesurfer" / subj / "label"
    paths = {
        "expdesign": root / "nsddata" / "experiments" / "nsd" / "nsd_expdesign.mat",
        "betas_dir": betas_dir,
        "sessions": [betas_dir / f"betas_session{s:02d}.hdf5" for s in range(1, n_sessions + 1)],
        "ncsnr": betas_dir / "ncsnr.nii.gz",
        "brainmask": func / "brainmask.nii.gz",
        "roi_dir": func / "roi",
        "label_dir": label_dir,
        "stimuli": root / "nsddata_stimuli" / "stimuli" / "nsd" / "nsd_stimuli.hdf5",
        "responses": root / "nsddata" / "ppdata" / subj / "behav" / "responses.tsv",
    }
    atlas_names = ("nsdgeneral", "prf-visualrois", "floc-faces")
    targets = [paths[k] for k in ("expdesign", "ncsnr", "brainmask", "stimuli", "responses")]
    targets += paths["sessions"]
    targets += [func / "roi" / f"{a}.nii.gz" for a in atlas_names]
    targets += [label_dir / f"{a}.mgz.ctab" for a in atlas_names]
    for t in targets:  # refuse before writing anything
        check_overwrite(t, overwrite)

    # ---- design (0-based here; written 1-based)
    shared = np.sort(rng.choice(n_images, n_shared, replace=False))
    others = np.setdiff1d(np.arange(n_images), shared)
    subject_images = np.stack(
        [
            np.concatenate([shared, rng.choice(others, n_subject_images - n_shared, replace=False)])
            for _ in range(8)
        ]
    )
    n_design = _N_DESIGN_SESSIONS * tps
    reps = -(-n_design // n_subject_images)
    order = np.concatenate([rng.permutation(n_subject_images) for _ in range(reps)])[:n_design]
    stimpattern = np.zeros((_N_DESIGN_SESSIONS, 12, 75), dtype=np.float64)
    stimpattern.reshape(_N_DESIGN_SESSIONS, -1)[:, : min(tps, 900)] = 1.0
    n_trials = n_sessions * tps
    trial_images = subject_images[subject - 1, order[:n_trials]]
    session_ids = np.repeat(np.arange(1, n_sessions + 1), tps)

    # ---- grid, masks, atlases
    affine = np.diag([_VOXEL_MM, _VOXEL_MM, _VOXEL_MM, 1.0])
    affine[:3, 3] = -_VOXEL_MM * (np.asarray(shape) - 1) / 2.0
    centre = (np.asarray(shape) - 1) / 2.0
    grid_ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    brain = (((grid_ijk - centre) / (np.asarray(shape) * 0.48)) ** 2).sum(-1) <= 1.0
    rois, roi_names = _atlases(brain)
    signal_mask = rois["nsdgeneral"] == 1

    # ---- images and planted model
    images = _make_images(rng, n_images, image_size, grid)
    feats = image_features(images, grid)
    n_feat = feats.shape[1]
    n_sig = int(signal_mask.sum())
    w = rng.standard_normal((n_feat, n_sig))
    own = feats[subject_images[subject - 1]]
    w /= np.maximum((own @ w).std(0), 1e-12)  # unit sd over the subject's images
    w *= rng.uniform(0.3, 1.5, n_sig) * signal_sd
    weights = np.zeros((n_feat, *shape), dtype=np.float32)
    weights[:, signal_mask] = w
    signal = np.zeros((n_trials, *shape))
    signal[:, signal_mask] = feats[trial_images] @ w
    noise = noise_sd * rng.standard_normal((n_trials, *shape))
    offsets = np.zeros((n_sessions, *shape))
    offsets[:, brain] = rng.normal(0.0, 0.5, (n_sessions, int(brain.sum())))
    scales = rng.uniform(0.8, 1.25, n_sessions)
    betas = offsets[session_ids - 1] + scales[session_ids - 1, None, None, None] * (signal + noise)
    betas[:, ~brain] = 0.0  # NSD writes 0 outside the brain mask
    betas = betas.astype(np.float32)
    ncsnr = np.zeros(shape, dtype=np.float32)
    ncsnr[signal_mask] = (own @ w).std(0) / noise_sd

    # ---- write
    import scipy.io

    with atomic_open(paths["expdesign"], "wb") as fh:
        scipy.io.savemat(
            fh,
            {
                "masterordering": (order + 1).astype(np.float64)[None, :],
                "subjectim": (subject_images + 1).astype(np.float64),
                "sharedix": (shared + 1).astype(np.float64)[None, :],
                "stimpattern": stimpattern,
            },
        )
    limit = np.iinfo(np.int16).max
    stored = np.clip(np.round(betas * 300.0), -limit, limit).astype(np.int16)
    for s, path in enumerate(paths["sessions"]):
        block = stored[s * tps : (s + 1) * tps]  # (trials, X, Y, Z)
        _write_hdf5_betas(path, np.ascontiguousarray(block.transpose(0, 3, 2, 1)))
    with atomic_open(paths["ncsnr"], "wb") as fh:
        fh.write(_nifti_gz(ncsnr, affine))
    with atomic_open(paths["brainmask"], "wb") as fh:
        fh.write(_nifti_gz(brain.astype(np.int16), affine))
    for a in atlas_names:
        with atomic_open(func / "roi" / f"{a}.nii.gz", "wb") as fh:
            fh.write(_nifti_gz(rois[a], affine))
        atomic_write_text(label_dir / f"{a}.mgz.ctab", _ctab(roi_names[a]))
    _write_images(paths["stimuli"], images)
    runs = np.arange(tps) * 12 // tps + 1
    lines = ["SUBJECT\tSESSION\tRUN\tTRIAL\t73KID\t10KID"]
    for t in range(n_trials):
        within = t % tps
        run = runs[within]
        trial = within - int(np.flatnonzero(runs == run)[0]) + 1
        lines.append(
            f"{subject}\t{session_ids[t]}\t{run}\t{trial}\t{trial_images[t] + 1}\t{order[t] + 1}"
        )
    atomic_write_text(paths["responses"], "\n".join(lines) + "\n")

    return NSDLayout(
        root=root,
        subject=subject,
        paths=paths,
        affine=affine,
        betas=np.ascontiguousarray(betas.transpose(1, 2, 3, 0)),
        stimulus_ids=trial_images.astype(np.int64),
        session_ids=session_ids.astype(np.int64),
        features=feats,
        weights=weights,
        signal_mask=signal_mask,
        brainmask=brain,
        ncsnr=ncsnr,
        session_offsets=offsets.astype(np.float32),
        session_scales=scales.astype(np.float32),
        shared_ids=shared.astype(np.int64),
        subject_images=subject_images.astype(np.int64),
        rois={k: v.astype(np.int64) for k, v in rois.items()},
        roi_names=roi_names,
        images=images,
    )
