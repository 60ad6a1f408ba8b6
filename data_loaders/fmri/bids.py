"""Single-trial betas from a BIDS dataset, estimated with nilearn's first-level GLM.

Two steps, each usable alone:

1. :func:`find_bids_runs` finds a subject's BOLD runs for a task (fMRIPrep-style
   derivatives when present, raw data otherwise), each with its events table
   and repetition time.
2. :func:`estimate_single_trial_betas` fits nilearn's
   :class:`~nilearn.glm.first_level.FirstLevelModel` with one regressor per
   trial (LSA) or one model per trial (LSS) and returns a 4D beta image with
   its trial table, ready for :func:`data_loaders.fmri.nifti.load_nifti_betas`
   (:meth:`SingleTrialBetas.to_nifti_betas` does that call).
"""

from __future__ import annotations

import gzip
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_loaders._validation import check_choice, check_file, check_float, check_int
from data_loaders.errors import InputError, InputTypeError, MissingFileError, UnreadableFileError
from data_loaders.fmri._common import read_json, read_table
from data_loaders.fmri.nifti import _check_same_grid, _load_img, load_nifti_betas

__all__ = ["BidsRun", "SingleTrialBetas", "estimate_single_trial_betas", "find_bids_runs"]

_REQUIRED_EVENT_COLUMNS = ("onset", "duration")


# --------------------------------------------------------------------------- finding runs


@dataclass
class BidsRun:
    """One BOLD run with its events and repetition time.

    Attributes
    ----------
    bold : pathlib.Path
        The BOLD NIfTI file (4D).
    events : pandas.DataFrame
        The run's ``_events.tsv`` (``onset`` and ``duration`` in seconds, ...).
    t_r : float
        Repetition time in seconds, from the JSON sidecar's ``RepetitionTime``.
    events_path : pathlib.Path
    entities : dict
        BIDS entities of the BOLD file name (``sub``, ``ses``, ``task``, ``run``, ...).
    """

    bold: Path
    events: pd.DataFrame
    t_r: float
    events_path: Path
    entities: dict = field(default_factory=dict)


def _bold_files(root: Path, subject: str, task: str, session: str | None) -> list[str]:
    from nilearn.interfaces.bids import get_bids_files

    filters = [("task", task)]
    if session is not None:
        filters.append(("ses", session))
    return get_bids_files(
        root,
        file_tag="bold",
        file_type="nii*",
        sub_label=subject,
        modality_folder="func",
        filters=filters,
    )


def _derivative_roots(bids_dir: Path) -> list[Path]:
    deriv = bids_dir / "derivatives"
    if not deriv.is_dir():
        return []
    return [deriv, *sorted(p for p in deriv.iterdir() if p.is_dir())]


def _find_sidecar(name: str, folders: Sequence[Path], suffix: str) -> Path | None:
    for folder in folders:
        p = folder / name.replace("_bold.nii.gz", suffix).replace("_bold.nii", suffix)
        if p.is_file():
            return p
    return None


def _raw_stem(entities: dict) -> str:
    """File-name stem of the raw file with these entities (no space/desc/res)."""
    order = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo")
    return "_".join(f"{k}-{entities[k]}" for k in order if entities.get(k) is not None)


def find_bids_runs(
    bids_dir, subject: str, task: str, *, space: str | None = None, session: str | None = None
) -> list[BidsRun]:
    """Find a subject's BOLD runs for a task, with their events and TR.

    Preprocessed runs in ``bids_dir/derivatives`` (or any folder directly in it,
    e.g. ``derivatives/fmriprep``) are preferred; ``desc`` must be absent or
    ``preproc``. When there are none, the raw runs in ``bids_dir`` are used.
    Files are found with :func:`nilearn.interfaces.bids.get_bids_files` and
    parsed with :func:`nilearn.interfaces.bids.parse_bids_filename`.

    Parameters
    ----------
    bids_dir : str or path
        Root of the BIDS dataset (the folder with ``dataset_description.json``).
    subject : str
        Subject label without ``sub-`` (``"01"``).
    task : str
        Task label without ``task-``.
    space : str, optional
        Template space of preprocessed runs (``"MNI152NLin2009cAsym"``). Needed
        when the derivatives hold several spaces; given, only derivatives are
        searched.
    session : str, optional
        Session label without ``ses-``; all sessions when None.

    Returns
    -------
    list of BidsRun
        Sorted by session and run. Events come from the ``_events.tsv`` with the
        same ``sub``/``ses``/``task``/``run`` (raw dataset first, then beside the
        BOLD file); the TR from the BOLD's JSON sidecar, else the raw one, else
        the top-level ``task-<task>_bold.json``.

    Raises
    ------
    MissingFileError
        No such folder, subject or task (the message lists those that exist), or
        a run without an events file.
    UnreadableFileError
        An events table or JSON sidecar that is empty, truncated or of another
        format.
    InputError
        Several spaces and no ``space`` given; no ``RepetitionTime`` for a run.
    """
    from nilearn.interfaces.bids import get_bids_files, parse_bids_filename

    root = check_file("bids_dir", bids_dir, folder=True)
    for arg, value in (
        ("subject", subject),
        ("task", task),
        ("space", space),
        ("session", session),
    ):
        if value is not None and not isinstance(value, (str, int)):
            raise InputTypeError(f"{arg} must be a label (str); got {type(value).__name__}.")
    subject = str(subject).removeprefix("sub-")
    task = str(task).removeprefix("task-")
    if not (root / f"sub-{subject}").is_dir():
        subs = sorted(p.name for p in root.glob("sub-*") if p.is_dir())
        raise MissingFileError(
            f"subject={subject!r}: no folder sub-{subject} in {str(root)!r}. Subjects there: "
            f"{subs or 'none'} (give the label without 'sub-')."
        )

    files: list[str] = []
    for deriv in _derivative_roots(root):
        found = [
            f
            for f in _bold_files(deriv, subject, task, session)
            if parse_bids_filename(f)["entities"].get("desc") in (None, "preproc")
        ]
        if space is not None:
            found = [f for f in found if parse_bids_filename(f)["entities"].get("space") == space]
        if found:
            files = found
            break
    if not files and space is None:
        files = _bold_files(root, subject, task, session)
    if not files:
        tasks = sorted(
            {
                str(parse_bids_filename(f)["entities"].get("task"))
                for r in [root, *_derivative_roots(root)]
                for f in get_bids_files(r, "bold", "nii*", subject, "func")
            }
        )
        where = f" in space {space!r}" if space is not None else ""
        ses = f", session {session!r}" if session is not None else ""
        raise MissingFileError(
            f"task={task!r}: no BOLD runs{where} for sub-{subject}{ses} in {str(root)!r}. "
            f"Tasks with BOLD runs for this subject: {tasks or 'none'}."
        )
    refs = [parse_bids_filename(f) for f in files]
    spaces = sorted({str(r["entities"].get("space")) for r in refs})
    if len(spaces) > 1:
        raise InputError(
            f"sub-{subject} task-{task} has preprocessed runs in several spaces {spaces}; "
            "choose one with space=..."
        )

    runs = []
    for ref in refs:
        ent = ref["entities"]
        bold = Path(ref["file_path"])
        stem = _raw_stem(ent)
        filters = [(k, ent[k]) for k in ("task", "ses", "run", "acq") if ent.get(k) is not None]
        events_path = None
        # the raw dataset first, then the dataset the BOLD file lives in
        for r in (root, bold.parents[3] if ent.get("ses") else bold.parents[2]):
            cands = [
                f
                for f in get_bids_files(r, "events", "tsv", subject, "func", filters=filters)
                if _raw_stem(parse_bids_filename(f)["entities"]) == stem
            ]
            if cands:
                events_path = Path(cands[0])
                break
        if events_path is None:
            raise MissingFileError(
                f"The run {bold.name} has no events file: expected {stem}_events.tsv in "
                f"{str(root / f'sub-{subject}')!r} (func folder). Every run needs its events."
            )
        events = read_table(f"events of {bold.name}", events_path)

        raw_func = (
            root / f"sub-{subject}" / (f"ses-{ent['ses']}" if ent.get("ses") else "") / "func"
        )
        sidecar = _find_sidecar(bold.name, [bold.parent], ".json")
        if sidecar is None and (raw_func / f"{stem}_bold.json").is_file():
            sidecar = raw_func / f"{stem}_bold.json"
        if sidecar is None and (root / f"task-{task}_bold.json").is_file():
            sidecar = root / f"task-{task}_bold.json"
        t_r = None
        if sidecar is not None:
            t_r = read_json(f"sidecar of {bold.name}", sidecar).get("RepetitionTime")
        if t_r is not None and (
            isinstance(t_r, bool) or not isinstance(t_r, (int, float)) or not t_r > 0
        ):
            raise UnreadableFileError(
                f"{str(sidecar)!r}: RepetitionTime must be a number of seconds > 0; got {t_r!r}. "
                "Fix the sidecar, or pass t_r yourself to estimate_single_trial_betas."
            )
        if t_r is None:
            looked = sidecar.name if sidecar is not None else f"{bold.name} (.json sidecar)"
            raise InputError(
                f"No RepetitionTime for run {bold.name}: looked in {looked}. Add "
                '"RepetitionTime" (seconds) to the BOLD JSON sidecar, or pass t_r yourself '
                "to estimate_single_trial_betas."
            )
        runs.append(BidsRun(bold, events, float(t_r), events_path, dict(ent)))

    def key(run):
        e = run.entities
        r = e.get("run")
        return (str(e.get("ses") or ""), int(r) if r and str(r).isdigit() else 0, str(r))

    return sorted(runs, key=key)


# --------------------------------------------------------------------------- single-trial GLM


@dataclass
class SingleTrialBetas:
    """One beta map per trial, with its trial table.

    Attributes
    ----------
    beta_img : nibabel.Nifti1Image
        4D image of shape ``(x, y, z, n_trials)``, float32: each trial's
        effect size (percent signal change with ``signal_scaling=0``); 0
        outside ``mask_img``.
    trials : pandas.DataFrame
        One row per volume of ``beta_img``: ``run`` (0-based index of the run
        in the input), ``trial`` (index within the run, onset order),
        ``onset``, ``duration`` (s), ``trial_type`` when given, and
        ``stimulus_id``.
    mask_img : nibabel.Nifti1Image
        The voxels the GLM was fitted in.
    method : str
        ``"lsa"`` or ``"lss"``.
    """

    beta_img: Any
    trials: pd.DataFrame
    mask_img: Any
    method: str

    def to_nifti_betas(self, **kwargs):
        """:func:`~data_loaders.fmri.nifti.load_nifti_betas` on these betas.

        ``mask_img`` defaults to the GLM's mask; other keywords (``labels_img``,
        ``label_names``, ``rois``, ``standardize``) are passed on.
        """
        kwargs.setdefault("mask_img", self.mask_img)
        return load_nifti_betas(self.beta_img, self.trials, **kwargs)

    def save(self, path, overwrite: bool = False) -> Path:
        """Write ``betas.nii.gz``, ``mask.nii.gz`` and ``trials.tsv`` into a folder.

        Each file is written atomically; an existing non-empty folder is
        refused unless ``overwrite=True``. Returns the folder.
        """
        from data_loaders._io import atomic_open, atomic_write_text, prepare_output_dir

        out = prepare_output_dir(path, overwrite=overwrite)
        for name, img in (("betas.nii.gz", self.beta_img), ("mask.nii.gz", self.mask_img)):
            with atomic_open(out / name, "wb") as fh:
                fh.write(gzip.compress(img.to_bytes()))
        atomic_write_text(out / "trials.tsv", self.trials.to_csv(sep="\t", index=False))
        return out


def _as_list(x) -> list:
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _check_events(ev, i: int, n_scans: int, t_r: float, stimulus_column: str) -> pd.DataFrame:
    source = None
    if isinstance(ev, (str, os.PathLike)):
        source = ev
        ev = read_table(f"events[{i}]", ev)
    if not isinstance(ev, pd.DataFrame):
        raise InputTypeError(
            f"events[{i}] must be a pandas DataFrame or a TSV path; got {type(ev).__name__}."
        )
    missing = [c for c in (*_REQUIRED_EVENT_COLUMNS, stimulus_column) if c not in ev.columns]
    if missing:
        # a file without them is not an events table (another kind of file)
        error = InputError if source is None else UnreadableFileError
        raise error(
            f"events[{i}] lacks column(s) {missing}; it has {list(ev.columns)}. Each run's "
            f"events need 'onset' and 'duration' (s) and the stimulus id column "
            f"stimulus_column={stimulus_column!r}."
        )
    if len(ev) == 0:
        raise InputError(f"events[{i}] has no trials.")
    onset = ev["onset"].to_numpy(dtype=float)
    duration = ev["duration"].to_numpy(dtype=float)
    if not (np.isfinite(onset).all() and np.isfinite(duration).all()):
        raise InputError(f"events[{i}] has NaN/inf onsets or durations; fix or drop those rows.")
    run_length = n_scans * t_r
    late = onset >= run_length
    if late.any():
        raise InputError(
            f"events[{i}]: {int(late.sum())} trial(s) start at or after the end of the run "
            f"({n_scans} volumes x t_r={t_r} s = {run_length} s), e.g. onset "
            f"{onset[late][0]} s; check the onsets' units (seconds) and t_r."
        )
    ids = ev[stimulus_column].to_numpy()
    if not np.issubdtype(ids.dtype, np.number) or not np.all(ids == np.round(ids)):
        raise InputError(
            f"events[{i}][{stimulus_column!r}] must hold integer stimulus ids; got dtype "
            f"{ids.dtype}."
        )
    return ev.sort_values("onset", kind="stable").reset_index(drop=True)


def _design(frame_times, onsets, durations, names, hrf_model, drift_model, high_pass):
    from nilearn.glm.first_level import make_first_level_design_matrix

    events = pd.DataFrame({"onset": onsets, "duration": durations, "trial_type": names})
    return make_first_level_design_matrix(
        frame_times,
        events,
        hrf_model=hrf_model,
        drift_model=drift_model,
        high_pass=high_pass,
    )


def _fit_effects(img, design, columns, glm_kwargs):
    """Fit one FirstLevelModel and return the effect-size volume of each column."""
    from nilearn.glm.first_level import FirstLevelModel

    model = FirstLevelModel(**glm_kwargs)
    with warnings.catch_warnings():
        # nilearn's masker notes on every fit that it uses the given mask rather than
        # computing one, which is what we ask of it
        warnings.filterwarnings("ignore", message=r".*Generation of a mask has been requested")
        model.fit(img, design_matrices=[design])
    out = []
    for col in columns:
        con = (design.columns == col).astype(float)
        eff = model.compute_contrast(con, output_type="effect_size")
        out.append(np.asarray(eff.get_fdata(), dtype=np.float32))
    return out


def estimate_single_trial_betas(
    bold_imgs,
    events=None,
    t_r=None,
    *,
    method: str = "lsa",
    mask_img=None,
    hrf_model: str = "glover",
    drift_model: str | None = "cosine",
    high_pass: float = 0.01,
    stimulus_column: str = "stimulus_id",
    smoothing_fwhm: float | None = None,
    noise_model: str = "ar1",
    signal_scaling: int | bool = 0,
    slice_time_ref: float = 0.0,
    n_jobs: int = 1,
    sessions=None,
) -> SingleTrialBetas:
    """Estimate one beta map per trial with nilearn's first-level GLM.

    Each run gets its own design matrix
    (:func:`nilearn.glm.first_level.make_first_level_design_matrix`, the
    chosen HRF, drifts and a constant) and its own
    :class:`~nilearn.glm.first_level.FirstLevelModel`; betas are
    ``compute_contrast(..., output_type="effect_size")`` of the trial's column.

    - ``"lsa"`` (least squares all): one regressor per trial, all trials of a
      run in one model. One GLM per run. Best when trials are well separated.
    - ``"lss"`` (least squares separate, Mumford et al. 2012): for each trial,
      a model with that trial as one regressor and all the run's other trials
      as a second. ``n_trials`` GLMs in all, so about ``n_trials / n_runs``
      times the cost of LSA; the mask and the loaded BOLD data are shared by
      all of them, and ``n_jobs`` fits trials in parallel. More stable than
      LSA for closely spaced trials.

    Parameters
    ----------
    bold_imgs : path, nibabel image, BidsRun, or list of them
        4D BOLD runs on one grid. A list of :class:`BidsRun` (from
        :func:`find_bids_runs`) brings its own events and TR.
    events : DataFrame or TSV path, or list of them (one per run)
        Columns ``onset`` and ``duration`` (s), ``stimulus_column`` (int), and
        optionally ``trial_type``. Other columns are ignored.
    t_r : float or list of float
        Repetition time(s) in seconds.
    method : {"lsa", "lss"}, default="lsa"
    mask_img : path or nibabel image, optional
        Voxels to fit, on the BOLD grid. When None, one mask for all runs is
        computed with :func:`nilearn.masking.compute_multi_epi_mask`.
    hrf_model, drift_model, high_pass, noise_model, signal_scaling, smoothing_fwhm
        Passed to nilearn (see ``FirstLevelModel``). ``high_pass`` is in Hz,
        ``smoothing_fwhm`` in mm. With ``signal_scaling=0`` (nilearn's default)
        each voxel is scaled to percent of its mean, so betas are in percent
        signal change; ``False`` keeps the BOLD units.
    stimulus_column : str, default="stimulus_id"
        Events column holding each trial's stimulus id.
    slice_time_ref : float, default=0.0
        Fraction of the TR at which each volume was sampled (0.5 for
        slice-time-corrected fMRIPrep output); frame ``n`` is at
        ``(n + slice_time_ref) * t_r`` s.
    n_jobs : int, default=1
        Parallel fits for LSS (joblib).
    sessions : list, optional
        The session of each run (e.g. ``["01", "01", "02"]``), written to the
        trial table's ``session`` column so the z-scoring and the noise
        ceiling work within sessions. By default the BIDS ``ses`` entity of
        :class:`BidsRun` inputs (no column when the runs have none).

    Returns
    -------
    SingleTrialBetas
        ``beta_img`` with one volume per trial (onset order within each run,
        runs in the order given), ``trials`` (with ``session`` when known),
        ``mask_img``.

    Raises
    ------
    MissingFileError, UnreadableFileError
        A BOLD, mask or events file is missing, empty, truncated or of
        another format.
    InputError
        Unknown method; runs, events and TRs of different counts; missing event
        columns; trials after the end of a run; BOLD runs or mask on different
        grids; a 3D BOLD image.
    """
    import nibabel as nib
    from nilearn.masking import compute_multi_epi_mask

    if method not in ("lsa", "lss"):
        raise InputError(
            f"method must be 'lsa' (one model, one regressor per trial) or 'lss' (one model "
            f"per trial); got {method!r}."
        )
    runs = _as_list(bold_imgs)
    if runs and all(isinstance(r, BidsRun) for r in runs):
        events = [r.events for r in runs] if events is None else events
        t_r = [r.t_r for r in runs] if t_r is None else t_r
        ses = [r.entities.get("ses") for r in runs]
        if sessions is None and all(x is not None for x in ses):
            sessions = [str(x) for x in ses]
        runs = [r.bold for r in runs]
    if sessions is not None:
        sessions = _as_list(sessions)
        if len(sessions) != len(runs) or any(x is None or str(x) == "" for x in sessions):
            raise InputError(
                f"sessions must give one session label per run ({len(runs)}); got {sessions!r}."
            )
    drift_model = check_choice("drift_model", drift_model, ("cosine", "polynomial", None))
    high_pass = check_float("high_pass", high_pass, minimum=0.0)
    smoothing_fwhm = check_float("smoothing_fwhm", smoothing_fwhm, minimum=0.0, allow_none=True)
    slice_time_ref = check_float("slice_time_ref", slice_time_ref, minimum=0.0, maximum=1.0)
    n_jobs = check_int("n_jobs", n_jobs)
    if n_jobs == 0:
        raise InputError("n_jobs must be a positive number of jobs, or -1 for all cores; got 0.")
    if not isinstance(stimulus_column, str):
        raise InputTypeError(
            f"stimulus_column must be a column name (str); got {type(stimulus_column).__name__}."
        )
    if events is None or t_r is None:
        raise InputError(
            "events and t_r are needed (one events table and TR per run), unless bold_imgs are "
            "BidsRun records from find_bids_runs."
        )
    events = _as_list(events)
    t_rs = [check_float("t_r", x, minimum=0.0, strict_minimum=True) for x in _as_list(t_r)]
    if len(t_rs) == 1:
        t_rs *= len(runs)
    if not (len(runs) == len(events) == len(t_rs)):
        raise InputError(
            f"Got {len(runs)} BOLD run(s), {len(events)} events table(s) and {len(t_rs)} TR(s); "
            "give one events table (and one t_r, or a single t_r for all) per run."
        )

    imgs = []
    for i, r in enumerate(runs):
        img = _load_img(r, f"bold_imgs[{i}]")
        if img.ndim != 4:
            raise InputError(
                f"bold_imgs[{i}] must be a 4D BOLD run (x, y, z, time); got shape {img.shape}."
            )
        if i:
            _check_same_grid(img, imgs[0], f"bold_imgs[{i}]", "bold_imgs[0]", "betas")
        # load once; every GLM of this run reuses the in-memory data
        imgs.append(nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine))

    if mask_img is None:
        mask_nii = compute_multi_epi_mask(imgs)
    else:
        m = _load_img(mask_img, "mask_img")
        _check_same_grid(m, imgs[0], "mask_img", "bold_imgs[0]", "mask")
        mdata = np.asarray(m.dataobj)
        mask_nii = nib.Nifti1Image((np.isfinite(mdata) & (mdata != 0)).astype(np.uint8), m.affine)
    if not np.asarray(mask_nii.dataobj).any():
        raise InputError("The mask is empty; check mask_img (or pass one).")

    glm_kwargs = dict(
        mask_img=mask_nii,
        smoothing_fwhm=smoothing_fwhm,
        noise_model=noise_model,
        signal_scaling=signal_scaling,
        minimize_memory=True,
    )
    tables, jobs = [], []
    for i, (img, ev, tr) in enumerate(zip(imgs, events, t_rs, strict=True)):
        n_scans = img.shape[3]
        ev = _check_events(ev, i, n_scans, tr, stimulus_column)
        frame_times = (np.arange(n_scans) + slice_time_ref) * tr
        n = len(ev)
        onsets, durs = ev["onset"].to_numpy(float), ev["duration"].to_numpy(float)
        names = [f"trial{k:04d}" for k in range(n)]
        design_args = (hrf_model, drift_model, high_pass)
        if method == "lsa":
            design = _design(frame_times, onsets, durs, names, *design_args)
            jobs.append((img, design, names, glm_kwargs))
        else:
            for k in range(n):
                labels = ["other"] * n
                labels[k] = "target"
                design = _design(frame_times, onsets, durs, labels, *design_args)
                jobs.append((img, design, ["target"], glm_kwargs))
        table = pd.DataFrame({"run": i, "trial": np.arange(n), "onset": onsets, "duration": durs})
        if sessions is not None:
            table["session"] = str(sessions[i])
        if "trial_type" in ev.columns:
            table["trial_type"] = ev["trial_type"].to_numpy()
        table["stimulus_id"] = ev[stimulus_column].to_numpy().astype(np.int64)
        tables.append(table)

    if method == "lss" and n_jobs != 1:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs)(delayed(_fit_effects)(*job) for job in jobs)
    else:
        results = [_fit_effects(*job) for job in jobs]
    volumes = [v for res in results for v in res]
    beta = np.stack(volumes, axis=-1).astype(np.float32)
    return SingleTrialBetas(
        beta_img=nib.Nifti1Image(beta, imgs[0].affine),
        trials=pd.concat(tables, ignore_index=True),
        mask_img=mask_nii,
        method=method,
    )
