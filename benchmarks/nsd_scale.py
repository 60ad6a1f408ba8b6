"""Fitting an NSD subject as distributed, at scale: time and peak memory per stage.

Writes a simulated subject in the Natural Scenes Dataset's real file layout
(``data_loaders.simulate.nsd_layout``): ``--sessions`` x 750 trials of
``betas_sessionXX.hdf5`` (only ``betas``, int16 x 300, ``(750, Z, Y, X)``,
chunked ``(750, 1, 1, 1)`` as NSD's), the ``nsd_expdesign.mat``, the brain
mask and ROI NIfTIs, and an ``nsd_stimuli.hdf5`` ``imgBrick`` of
``--image-size`` pixels. The grid (``--volume-shape``, default 40 x 48 x 34)
is smaller than NSD's 1.8 mm grid (81 x 104 x 83) but holds ~15,000
``nsdgeneral`` voxels, as a real subject's does. Session 1, the design, the
masks and the planted model come from ``write_nsd_layout``; the other sessions
are written here one at a time from the same planted model (a whole session
in memory is 750 x 65,280 int16, 93 MiB), and the images are written again at
``--image-size`` (the 32-pixel images of the simulator, enlarged by pixel
repetition, so their content is unchanged).

Then, in one fresh process, the pipeline a user runs, stage by stage:

1. read: ``NSDSubject(root, sessions=...).to_dataset()``;
2. features: :class:`~neuro.encoders.GaborFeatures` on the distinct images
   shown, resized to ``--feature-size``, through
   :func:`~neuro.encoders.cached_features` (computed, then read back from the
   cache);
3. fit: ``compare_encoders(ds, ["ridge"], features=..., test_stimuli=shared)``
   (z-scoring within sessions, averaging repeats, ridge with a cross-validated
   alpha per voxel, held-out scores, noise ceiling, ROI table);
4. maps: ``EncoderComparison.save(folder)`` (NIfTI maps, tables, figures,
   the fitted model).

Each stage's peak resident set size is measured on its own (Linux: the peak
is reset between stages through ``/proc/self/clear_refs``, and includes what
the earlier stages still hold). The named peers, each in fresh processes:

* read: the naive reader a user would write, ``h5py`` reading each session's
  whole ``(750, Z, Y, X)`` array and then masking it with ``nsdgeneral``;
* fit: himalaya's ``RidgeCV`` (torch backend) against ``VoxelRidgeCV`` on the
  same training averages, with the same alphas and folds.

The projection to a full subject (40 sessions, 30,000 trials, 10,000 images)
scales each stage by the factor it grows by: read by trials, features by
distinct images, the ridge fit by training samples (linear while samples
outnumber features, ``--map-size`` 8 gives 1,536), the maps not at all; peak
memory above the imports' baseline by trials (betas held, their z-scored copy
and the features all grow with trials and images, which grow alike; the fixed
working memory is scaled too, so the memory projection is an upper estimate).

At the default size the run takes about 20 minutes on 2 CPU cores, most of it
the Gabor features of 2,500 images at 224 px (``--sessions 4`` or
``--feature-size 112`` shorten it); ``--quick`` takes about 30 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import Col, Report, fair_blas, fair_env, parser, peak_mib, reset_peak, resolve, rss_mib

SUBJECT = 1
NSD_SESSIONS = 40
NSD_IMAGES = 10_000
NSD_TRIALS = 750
NSD_GRID = (81, 104, 83)  # func1pt8mm, (X, Y, Z)
SMALL_IMAGE = 32  # size the simulator draws its images at


# ----------------------------------------------------------------------------- memory
class Stage:
    """Times a block and measures its peak RSS, appending a row to ``rows``."""

    def __init__(self, name: str, rows: list[dict]) -> None:
        self.name, self.rows = name, rows

    def __enter__(self) -> Stage:
        self.own_peak = reset_peak()
        self.before = rss_mib()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        seconds = time.perf_counter() - self.t0
        self.rows.append(
            {
                "stage": self.name,
                "seconds": seconds,
                "peak_mib": peak_mib(),
                "before_mib": self.before,
                "after_mib": rss_mib(),
                "own_peak": self.own_peak,
            }
        )


# ----------------------------------------------------------------------------- the data
def _write_betas(path: Path, stored_xyz: np.ndarray) -> None:
    """One ``betas_sessionXX.hdf5`` as NSD ships it, from ``(trials, X, Y, Z)`` int16."""
    import h5py

    tzyx = np.ascontiguousarray(stored_xyz.transpose(0, 3, 2, 1))
    tmp = path.with_name(f".{path.name}.tmp")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("betas", data=tzyx, chunks=(tzyx.shape[0], 1, 1, 1))
    os.replace(tmp, path)


def _write_images(path: Path, small: np.ndarray, size: int) -> None:
    """``imgBrick`` ``(n, size, size, 3)`` uint8: ``small`` enlarged by pixel repetition."""
    import h5py

    rep = -(-size // small.shape[1])
    tmp = path.with_name(f".{path.name}.tmp")
    with h5py.File(tmp, "w") as f:
        d = f.create_dataset(
            "imgBrick", (len(small), size, size, 3), dtype=np.uint8, chunks=(1, size, size, 3)
        )
        for start in range(0, len(small), 64):
            block = small[start : start + 64].repeat(rep, axis=1).repeat(rep, axis=2)
            d[start : start + len(block)] = block[:, :size, :size]
    os.replace(tmp, path)


def write_subject(root: Path, args) -> dict:
    """Write the subject (see the module docstring); return what was written."""
    from data_loaders.fmri.nsd import read_nsd_expdesign
    from data_loaders.simulate.nsd_layout import write_nsd_layout

    n_trials = args.trials_per_session
    truth = write_nsd_layout(
        root,
        subject=SUBJECT,
        n_sessions=1,
        trials_per_session=n_trials,
        volume_shape=tuple(args.volume_shape),
        n_images=args.n_images + args.n_images // 5,  # the "73k": other subjects' images too
        n_subject_images=args.n_images,
        n_shared=args.n_shared,
        image_size=SMALL_IMAGE,
        seed=0,
    )
    design = read_nsd_expdesign(truth.paths["expdesign"])
    own = truth.subject_images[SUBJECT - 1]
    brain, signal = truth.brainmask, truth.signal_mask
    weights = truth.weights[:, signal].astype(np.float32)  # (n_features, n_signal)
    rng = np.random.default_rng(1)
    limit = np.iinfo(np.int16).max
    betas_dir = truth.paths["betas_dir"]
    for session in range(2, args.sessions + 1):
        order = design.masterordering[(session - 1) * n_trials : session * n_trials]
        ids = own[order]
        beta = np.zeros((n_trials, *brain.shape), dtype=np.float32)
        scale = np.float32(rng.uniform(0.8, 1.25))
        beta[:, brain] = rng.normal(0.0, 0.5, int(brain.sum())).astype(np.float32)  # offsets
        beta[:, brain] += scale * rng.standard_normal((n_trials, int(brain.sum())), np.float32)
        beta[:, signal] += scale * (truth.features[ids] @ weights)
        stored = np.clip(np.rint(beta * 300.0), -limit, limit).astype(np.int16)
        del beta
        _write_betas(betas_dir / f"betas_session{session:02d}.hdf5", stored)
    _write_images(truth.paths["stimuli"], truth.images, args.image_size)
    files = sorted(betas_dir.glob("betas_session*.hdf5"))
    return {
        "betas_mib": sum(p.stat().st_size for p in files) / 2**20,
        "images_mib": truth.paths["stimuli"].stat().st_size / 2**20,
        "n_grid": int(np.prod(brain.shape)),
        "n_brain": int(brain.sum()),
        "n_nsdgeneral": int(signal.sum()),
    }


# ----------------------------------------------------------------------------- workers
def work_pipeline(spec: dict, device: str) -> dict:
    """Read, features, fit and maps in this (fresh) process, each stage measured."""
    import torch

    from data_loaders.fmri.nsd import NSDSubject
    from neuro.encoders.compare import compare_encoders
    from neuro.encoders.features import GaborFeatures, cached_features

    torch.zeros(1, device=device)  # device set-up outside the timing
    baseline = rss_mib()
    rows: list[dict] = []
    sessions = list(range(1, spec["sessions"] + 1))
    with Stage("read", rows):
        nsd = NSDSubject(spec["root"], subject=SUBJECT, sessions=sessions)
        ds = nsd.to_dataset()
    shown, ids = ds.compact_stimuli()  # stimuli: only the images shown, renumbered
    test = np.searchsorted(ids, np.intersect1d(nsd.shared_stimuli, ids))
    bank = GaborFeatures(
        map_size=spec["map_size"],
        image_size=spec["feature_size"],
        device=device,
        batch_size=spec["gabor_batch"],
    )
    images = shown.stimuli
    with Stage("features", rows):
        maps = cached_features(bank, images, spec["cache"])
    with Stage("features, cached", rows):
        again = cached_features(bank, images, spec["cache"])
    if not np.array_equal(maps, again):
        raise SystemExit("nsd_scale: the feature cache gave other features than computed")
    del again
    with Stage("fit", rows):
        result = compare_encoders(shown, ["ridge"], features=maps, test_stimuli=test, device=device)
    out = Path(spec["out"])
    with Stage("maps", rows):
        result.save(out)
    saved = [p for p in out.rglob("*") if p.is_file()]
    # the training averages, for the ridge peers (not timed)
    train, _ = result.dataset.split(test_stimuli=test)
    y_train, train_ids, _ = train.average_repeats()
    np.save(spec["x"], maps[train_ids].reshape(len(train_ids), -1))
    np.save(spec["y"], np.ascontiguousarray(y_train, dtype=np.float32))
    scores = result.scores["ridge"]
    return {
        "stages": rows,
        "baseline_mib": baseline,
        "n_trials": int(ds.n_trials),
        "n_voxels": int(ds.n_voxels),
        "n_images": len(ids),
        "n_features": int(np.prod(maps.shape[1:])),
        "n_train": int(result.n_train),
        "n_test": int(result.n_test),
        "mean_r": float(np.nanmean(scores)),
        "ridge_seconds": float(result.fit_seconds["ridge"]),
        "saved_files": len(saved),
        "saved_mib": sum(p.stat().st_size for p in saved) / 2**20,
    }


def work_read(spec: dict, mode: str) -> dict:
    """Read every session's nsdgeneral betas with NSDSubject or the naive way."""
    rows: list[dict] = []
    if mode == "read_nsd":
        from data_loaders.fmri.nsd import NSDSubject

        sessions = list(range(1, spec["sessions"] + 1))
        with Stage(mode, rows):
            betas = NSDSubject(spec["root"], subject=SUBJECT, sessions=sessions).to_dataset().betas
    else:
        import h5py
        import nibabel as nib

        from data_loaders.fmri.nsd import nsd_paths

        paths = nsd_paths(spec["root"], SUBJECT)
        with Stage(mode, rows):
            roi = nib.load(paths["ppdata_dir"] / "roi" / "nsdgeneral.nii.gz").get_fdata()
            mask = np.ascontiguousarray((roi > 0).transpose(2, 1, 0))  # to the files' (Z, Y, X)
            n_vox = int(mask.sum())
            files = [
                paths["betas_dir"] / f"betas_session{s:02d}.hdf5"
                for s in range(1, spec["sessions"] + 1)
            ]
            betas = None
            for pos, path in enumerate(files):
                with h5py.File(path, "r") as f:
                    whole = f["betas"][:]  # (750, Z, Y, X) int16, every chunk of the file
                n = whole.shape[0]
                if betas is None:
                    betas = np.empty((n * len(files), n_vox), dtype=np.float32)
                betas[pos * n : (pos + 1) * n] = whole[:, mask] / np.float32(300.0)
                del whole
    assert betas is not None
    return {
        **rows[0],
        "shape": list(betas.shape),
        # order-free checks: the readers order voxels differently
        "checksum": [
            float(betas.sum(dtype=np.float64)),
            float(np.square(betas, dtype=np.float64).sum()),
        ],
    }


def work_ridge(spec: dict, mode: str, device: str) -> dict:
    """Fit VoxelRidgeCV or himalaya's RidgeCV on the saved training averages."""
    import torch

    from neuro.encoders.ridge import DEFAULT_ALPHAS

    X, Y = np.load(spec["x"]), np.load(spec["y"])
    alphas = np.asarray(DEFAULT_ALPHAS)
    torch.zeros(1, device=device)
    rows: list[dict] = []
    if mode == "ridge_neuro":
        from neuro.encoders.ridge import VoxelRidgeCV

        with Stage(mode, rows):
            chosen = VoxelRidgeCV(alphas=alphas, cv=5, device=device).fit(X, Y).alpha_
    else:
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV

        backend = set_backend(
            "torch_cuda" if str(device).startswith("cuda") else "torch", on_error="raise"
        )
        with Stage(mode, rows):
            model = RidgeCV(alphas=alphas, cv=5, fit_intercept=True).fit(X, Y)
            chosen = backend.to_numpy(model.best_alphas_)
    np.save(spec[mode], np.asarray(chosen, dtype=np.float64))
    return {**rows[0], "shape": [*X.shape, Y.shape[1]]}


def run_worker(mode: str, spec_path: Path, device, keep_blas_env: bool) -> dict:
    """Run one worker in a fresh process; return its JSON."""
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", mode, str(spec_path)]
    cmd += ["--device", str(device)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=fair_env(keep_blas_env))
    if proc.returncode != 0:
        raise SystemExit(f"nsd_scale: the {mode} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- main
STAGE_TEXT = {
    "read": "NSDSubject(...).to_dataset()",
    "features": "GaborFeatures via cached_features (computed)",
    "features, cached": "the same, read from the cache",
    "fit": "compare_encoders(ds, ['ridge'], test_stimuli=shared)",
    "maps": "EncoderComparison.save(folder)",
}


def main(argv=None) -> None:
    p = parser(__doc__.split("\n\n")[0], repeat=1, numpy_peer=True)
    p.add_argument("--sessions", type=int, default=10, help="sessions written (default 10)")
    p.add_argument("--trials-per-session", type=int, default=NSD_TRIALS)
    p.add_argument(
        "--volume-shape",
        type=int,
        nargs=3,
        default=[40, 48, 34],
        metavar=("X", "Y", "Z"),
        help="the grid; nsdgeneral is about a quarter of it (default 40 48 34: ~15,000 voxels)",
    )
    p.add_argument(
        "--n-images",
        type=int,
        default=2500,
        help="the subject's images (default 2500: each shown 3 times over 10 sessions, as NSD's "
        "10,000 over 40)",
    )
    p.add_argument("--n-shared", type=int, default=250, help="held-out shared images (10%%)")
    p.add_argument("--image-size", type=int, default=425, help="imgBrick side (NSD: 425)")
    p.add_argument("--feature-size", type=int, default=224, help="images resized to this")
    p.add_argument("--map-size", type=int, default=8, help="Gabor map side (24 x 8 x 8 = 1536)")
    p.add_argument("--gabor-batch", type=int, default=16, help="images filtered at once")
    p.add_argument("--_worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._worker:
        mode, spec_path = args._worker
        spec = json.loads(Path(spec_path).read_text())
        if mode == "pipeline":
            res = work_pipeline(spec, args.device)
        elif mode.startswith("read_"):
            res = work_read(spec, mode)
        else:
            res = work_ridge(spec, mode, args.device)
        print(json.dumps(res))
        return
    unset = fair_blas(args.keep_blas_env)
    device = resolve(args.device)
    if args.quick:
        args.sessions, args.trials_per_session, args.volume_shape = 2, 120, [14, 16, 12]
        args.n_images, args.n_shared, args.image_size, args.feature_size = 80, 16, 64, 48
        args.map_size, args.gabor_batch = 4, 16
    n_trials = args.sessions * args.trials_per_session
    report = Report("nsd_scale", args, device, unset)
    report.header(
        f"subject of {args.sessions} sessions x {args.trials_per_session} trials, grid "
        f"{'x'.join(map(str, args.volume_shape))}, {args.n_images} images of "
        f"{args.image_size} px (features at {args.feature_size} px, {args.map_size}x"
        f"{args.map_size} Gabor maps) on {device}"
    )
    have_himalaya = importlib.util.find_spec("himalaya") is not None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "nsd"
        t0 = time.perf_counter()
        written = write_subject(root, args)
        report.note(
            f"wrote the subject in {time.perf_counter() - t0:.1f} s: betas "
            f"{written['betas_mib']:.0f} MiB in {args.sessions} files, images "
            f"{written['images_mib']:.0f} MiB; grid {written['n_grid']} voxels, brain "
            f"{written['n_brain']}, nsdgeneral {written['n_nsdgeneral']}"
        )
        spec = {
            "root": str(root),
            "sessions": args.sessions,
            "map_size": args.map_size,
            "feature_size": args.feature_size,
            "gabor_batch": args.gabor_batch,
            "cache": str(Path(tmp) / "features.h5"),
            "out": str(Path(tmp) / "comparison"),
            "x": str(Path(tmp) / "x_train.npy"),
            "y": str(Path(tmp) / "y_train.npy"),
            "ridge_neuro": str(Path(tmp) / "alphas_neuro.npy"),
            "ridge_himalaya": str(Path(tmp) / "alphas_himalaya.npy"),
        }
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        keep = args.keep_blas_env
        pipe = run_worker("pipeline", spec_path, device, keep)
        reads: dict[str, list[dict]] = {"read_nsd": [], "read_naive": []}
        for _ in range(max(1, args.repeat)):
            for mode in reads:
                reads[mode].append(run_worker(mode, spec_path, device, keep))
        fits: dict[str, list[dict]] = {"ridge_neuro": []}
        if have_himalaya:
            fits["ridge_himalaya"] = []
        for _ in range(max(1, args.repeat)):
            for mode in fits:
                fits[mode].append(run_worker(mode, spec_path, device, keep))
        same = None
        if have_himalaya:
            a, b = np.load(spec["ridge_neuro"]), np.load(spec["ridge_himalaya"])
            same = float(np.mean(np.isclose(a, b, rtol=1e-6)))

    # ---- the pipeline, with its projection to a full subject
    trial_factor = NSD_SESSIONS * NSD_TRIALS / n_trials
    image_factor = NSD_IMAGES / pipe["n_images"]
    n_full_train = NSD_IMAGES * (1 - args.n_shared / args.n_images)
    fit_factor = n_full_train / pipe["n_train"]
    factors = {
        "read": (trial_factor, "trials"),
        "features": (image_factor, "images"),
        "features, cached": (image_factor, "images"),
        "fit": (fit_factor, "train samples"),
        "maps": (1.0, "constant"),
    }
    base = pipe["baseline_mib"]
    rows = []
    for r in pipe["stages"]:
        factor, by = factors[r["stage"]]
        rows.append(
            {
                "stage": r["stage"],
                "what": STAGE_TEXT[r["stage"]],
                "seconds": r["seconds"],
                "peak_mib": r["peak_mib"],
                "after_mib": r["after_mib"],
                "scaling": f"x{factor:.1f} ({by})",
                "full_seconds": r["seconds"] * factor,
                "full_peak_mib": base + (r["peak_mib"] - base) * trial_factor,
            }
        )
    timed = [r for r in rows if r["stage"] != "features, cached"]
    rows.append(
        {
            "stage": "total",
            "what": "read + features + fit + maps",
            "seconds": sum(r["seconds"] for r in timed),
            "peak_mib": max(r["peak_mib"] for r in timed),
            "full_seconds": sum(r["full_seconds"] for r in timed),
            "full_peak_mib": max(r["full_peak_mib"] for r in timed),
        }
    )
    own_peak = all(r["own_peak"] for r in pipe["stages"])
    report.table(
        [
            Col("stage", "stage"),
            Col("what", "what"),
            Col("seconds", "time (s)", "{:.1f}"),
            Col("peak_mib", "peak RSS (MiB)", "{:.0f}"),
            Col("after_mib", "held after (MiB)", "{:.0f}"),
            Col("scaling", "to 40 sessions"),
            Col("full_seconds", "40 sessions (s)", "{:.0f}"),
            Col("full_peak_mib", "40 sessions peak (MiB)", "{:.0f}"),
        ],
        rows,
        title=(
            f"Pipeline in one fresh process: {pipe['n_trials']} trials x {pipe['n_voxels']} "
            f"voxels, {pipe['n_images']} images -> {pipe['n_features']} features, "
            f"{pipe['n_train']} train / {pipe['n_test']} test stimuli"
        ),
    )
    report.note(
        ("peak RSS per stage (reset between stages; " if own_peak else "peak RSS so far (")
        + f"it includes what earlier stages hold); imports and device: {base:.0f} MiB. "
        f"Projection: time x the stage's factor; memory above {base:.0f} MiB x "
        f"{trial_factor:.1f} (trials and images both grow {trial_factor:.1f}x; an upper "
        "estimate, as fixed working memory is scaled too)."
    )
    report.note(
        f"held-out mean r over nsdgeneral {pipe['mean_r']:.3f} (ridge alone "
        f"{pipe['ridge_seconds']:.1f} s of the fit); saved {pipe['saved_files']} files, "
        f"{pipe['saved_mib']:.0f} MiB"
    )

    # ---- the read against the naive reader
    best = {m: min(v, key=lambda x: x["seconds"]) for m, v in reads.items()}
    peak = {m: max(x["peak_mib"] for x in v) for m, v in reads.items()}
    a, b = best["read_nsd"], best["read_naive"]
    if a["shape"] != b["shape"] or not np.allclose(a["checksum"], b["checksum"], rtol=1e-5):
        raise SystemExit(
            f"nsd_scale: the readers disagree (shapes {a['shape']} and {b['shape']}, checksums "
            f"{a['checksum']} and {b['checksum']})"
        )
    grid_factor = int(np.prod(NSD_GRID)) / written["n_grid"]
    read_rows = [
        {
            "reader": "NSDSubject.to_dataset (voxel rows)",
            "seconds": a["seconds"],
            "peak_mib": peak["read_nsd"],
            "full_seconds": a["seconds"] * trial_factor,
        },
        {
            "reader": "h5py whole (750, Z, Y, X) + mask (peer)",
            "seconds": b["seconds"],
            "peak_mib": peak["read_naive"],
            "full_seconds": b["seconds"] * trial_factor,
            "nsd_grid_seconds": b["seconds"] * trial_factor * grid_factor,
        },
    ]
    report.table(
        [
            Col("reader", "reader"),
            Col("seconds", "time (s)", "{:.2f}"),
            Col("peak_mib", "peak RSS (MiB)", "{:.0f}"),
            Col("full_seconds", "40 sessions (s)", "{:.0f}"),
            Col("nsd_grid_seconds", "40 sessions, NSD grid (s)", "{:.0f}"),
        ],
        read_rows,
        title=f"Read {n_trials} trials x {pipe['n_voxels']} nsdgeneral voxels "
        f"(fresh processes, best of {max(1, args.repeat)})",
    )
    report.note(
        f"the naive reader reads every chunk of the grid: on NSD's {'x'.join(map(str, NSD_GRID))} "
        f"grid it reads {grid_factor:.1f}x more than here; NSDSubject reads the nsdgeneral rows only"
    )
    report.add_summary(
        f"NSD read {n_trials} trials x {pipe['n_voxels']} voxels (peak {peak['read_nsd']:.0f} MiB)",
        f"{a['seconds']:.2f} s",
        f"h5py whole read {b['seconds']:.2f} s, {peak['read_naive']:.0f} MiB",
        a["seconds"] / b["seconds"],
    )

    # ---- the ridge fit against himalaya
    fbest = {m: min(v, key=lambda x: x["seconds"]) for m, v in fits.items()}
    fpeak = {m: max(x["peak_mib"] for x in v) for m, v in fits.items()}
    names = {
        "ridge_neuro": f"neuro VoxelRidgeCV ({device})",
        "ridge_himalaya": "himalaya RidgeCV (torch backend, peer)",
    }
    fit_rows = [
        {
            "method": names[m],
            "seconds": fbest[m]["seconds"],
            "peak_mib": fpeak[m],
            "full_seconds": fbest[m]["seconds"] * fit_factor,
            "alphas_same": same if m == "ridge_neuro" else None,
        }
        for m in fits
    ]
    n, p_, v = fbest["ridge_neuro"]["shape"]
    report.table(
        [
            Col("method", "method"),
            Col("seconds", "time (s)", "{:.2f}"),
            Col("peak_mib", "peak RSS (MiB)", "{:.0f}"),
            Col("full_seconds", "40 sessions (s)", "{:.0f}"),
            Col("alphas_same", "alphas = himalaya", "{:.4f}"),
        ],
        fit_rows,
        title=f"Ridge fit, {n} training averages x {p_} features -> {v} voxels, 17 alphas, 5 folds "
        f"(fresh processes, best of {max(1, args.repeat)})",
    )
    if have_himalaya:
        h = fbest["ridge_himalaya"]
        report.add_summary(
            f"NSD ridge fit {n}x{p_} -> {v} voxels",
            f"{fbest['ridge_neuro']['seconds']:.2f} s",
            f"himalaya {h['seconds']:.2f} s",
            fbest["ridge_neuro"]["seconds"] / h["seconds"],
        )
    else:
        report.note("himalaya is not installed (pip install -e '.[dev]'): no fit peer")
    total = rows[-1]
    report.add_summary(
        f"NSD pipeline, {args.sessions} sessions (peak {total['peak_mib']:.0f} MiB)",
        f"{total['seconds']:.0f} s; 40 sessions ~{total['full_seconds']:.0f} s, "
        f"~{total['full_peak_mib'] / 1024:.1f} GiB",
        "-",
        None,
    )
    report.finish()


if __name__ == "__main__":
    main()
