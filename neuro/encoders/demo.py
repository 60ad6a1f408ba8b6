"""``neuro demo``: the package's main job on built-in data.

Simulates one subject viewing a few hundred images
(:func:`data_loaders.simulate.fmri.simulate_fmri`: early visual voxels with
planted Gaussian receptive fields on local contrast, category-selective voxels
that respond to faces, scenes, objects or text), computes Gabor features of the
images, fits ridge and the readout families on the same training stimuli
(:func:`neuro.encoders.compare.compare_encoders`), prints the per-ROI table of
held-out accuracy as a fraction of the noise ceiling, and checks the fit
against what was planted: the noise ceiling estimated from repeats against the
true one, and the Gaussian readout's receptive-field centres against the
planted centres. Writes everything :meth:`EncoderComparison.save` writes, plus
``ground_truth.png``, into ``--out``.

Run it with ``make demo`` or ``neuro demo --out runs/demo``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro demo``."""
    from neuro.encoders.compare import ENCODERS

    parser.add_argument("--stimuli", type=int, default=300, help="distinct images (300)")
    parser.add_argument("--repeats", type=int, default=3, help="trials per image (3)")
    parser.add_argument(
        "--voxels-per-roi", type=int, default=12, help="voxels per ROI and hemisphere (12)"
    )
    parser.add_argument("--snr", type=float, default=1.0, help="median single-trial SNR (1.0)")
    parser.add_argument("--image-size", type=int, default=64, help="image side in pixels (64)")
    parser.add_argument("--map-size", type=int, default=16, help="feature map side (16)")
    parser.add_argument(
        "--model",
        nargs="+",
        action="extend",
        choices=ENCODERS,
        help="encoders to compare (default: all five)",
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="readout training epochs (their default)"
    )


def _check(args: argparse.Namespace) -> None:
    for name, low in (("stimuli", 30), ("repeats", 2), ("voxels_per_roi", 1), ("map_size", 4)):
        if getattr(args, name) < low:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} must be at least {low}; got {getattr(args, name)}.")
    if not np.isfinite(args.snr) or args.snr <= 0:
        raise ValueError(f"--snr must be finite and > 0; got {args.snr}.")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``neuro demo``."""
    from data_loaders.fmri import FMRIDataset
    from data_loaders.simulate.fmri import simulate_fmri
    from neuro.encoders.compare import ENCODERS, compare_encoders
    from neuro.encoders.features import GaborFeatures
    from neuro.io import atomic_write_json, prepare_output_dir
    from neuro.plotting import save_figure

    _check(args)
    out = prepare_output_dir(args.out, overwrite=args.overwrite)
    models = list(dict.fromkeys(args.model or ENCODERS))
    t0 = time.perf_counter()
    sim = simulate_fmri(
        n_subjects=1,
        n_stimuli=args.stimuli,
        n_repeats=args.repeats,
        image_size=args.image_size,
        voxels_per_roi=args.voxels_per_roi,
        snr=args.snr,
        seed=args.seed,
    )
    subject = sim.subjects[0]
    dataset = FMRIDataset.from_simulation(subject, sim.stimuli)
    print(
        f"neuro demo: {len(sim.stimuli)} simulated images x {args.repeats} repeats, "
        f"{dataset.n_voxels} voxels in {len(dataset.rois)} ROIs"
    )
    features = GaborFeatures(map_size=args.map_size, device=args.device).transform(
        sim.stimuli.images
    )
    semantic = sim.stimuli.semantic_embedding(seed=args.seed)
    readout_kwargs = {} if args.epochs is None else {"epochs": args.epochs}
    result = compare_encoders(
        dataset,
        models,
        features=features,
        semantic=semantic,
        seed=args.seed,
        device=args.device,
        readout_kwargs=readout_kwargs,
        verbose=args.verbose,
    )
    result.save(out, overwrite=True)
    truth = _ground_truth(result, subject, args.repeats)
    metrics = result.metrics()
    metrics["ground_truth"] = truth
    metrics["seconds"] = time.perf_counter() - t0
    atomic_write_json(out / "metrics.json", metrics)
    save_figure(_truth_figure(result, subject, truth), out / "ground_truth.png")

    print(result.summary())
    print(
        f"noise ceiling: estimated from repeats vs planted, r = {truth['ceiling_r']:.3f} "
        f"(mean {truth['ceiling_estimated_mean']:.3f} vs {truth['ceiling_planted_mean']:.3f})"
    )
    if "gaussian" in truth:
        g = truth["gaussian"]
        print(
            f"gaussian readout: receptive-field centres of {g['n_voxels']} early visual voxels "
            f"recovered with median error {g['median_center_error']:.3f} (map units, image "
            f"width = 2); sizes vs planted r = {g['size_r']:.2f}"
        )
    for group, best in truth["best_encoder"].items():
        print(f"best encoder in {group} voxels: {best}")
    print(f"wrote {out} in {metrics['seconds']:.0f} s")
    return 0


def _ground_truth(result, subject, n_repeats: int) -> dict:
    """Compare what the fit found with what the simulator planted."""
    planted = subject.true_noise_ceiling(1)
    estimated = result.dataset.noise_ceiling().r2(1)
    truth: dict = {
        "ceiling_r": float(np.corrcoef(planted, estimated)[0, 1]),
        "ceiling_planted_mean": float(planted.mean()),
        "ceiling_estimated_mean": float(estimated.mean()),
    }
    early = ~np.isnan(subject.prf_sizes)
    if "gaussian" in result.encoders:
        est = result.encoders["gaussian"]
        centers = np.asarray(est.receptive_field_centers_)[early]
        sizes = np.asarray(est.receptive_field_sizes_)[early]
        err = np.linalg.norm(centers - subject.prf_centers[early], axis=1)
        truth["gaussian"] = {
            "n_voxels": int(early.sum()),
            "median_center_error": float(np.median(err)),
            "size_r": float(np.corrcoef(sizes, subject.prf_sizes[early])[0, 1]),
        }
    truth["best_encoder"] = {}
    for group, mask in (("early visual (V1-V4)", early), ("category-selective", ~early)):
        means = {n: float(np.mean(result.scores[n][mask])) for n in result.names}
        truth["best_encoder"][group] = max(means, key=means.get)
        truth.setdefault("mean_r", {})[group] = means
    return truth


def _truth_figure(result, subject, truth):
    from neuro.plotting import new_figure

    early = ~np.isnan(subject.prf_sizes)
    ncols = 3 if "gaussian" in truth else 2
    fig, axes = new_figure(ncols=ncols, size=(3.8, 3.6))
    ax = axes[0, 0]
    planted = subject.true_noise_ceiling(1)
    ax.scatter(planted, result.dataset.noise_ceiling().r2(1), s=8)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="planted ceiling (R², 1 trial)", ylabel="estimated from repeats")
    ax.set_title(f"Noise ceiling (r = {truth['ceiling_r']:.2f})")
    ax = axes[0, 1]
    groups = list(truth["mean_r"])
    x = np.arange(len(groups))
    width = 0.8 / len(result.names)
    for i, n in enumerate(result.names):
        vals = [truth["mean_r"][g][n] for g in groups]
        ax.bar(x + (i - (len(result.names) - 1) / 2) * width, vals, width, label=n)
    ax.set_xticks(x, ["early", "category"])
    ax.set(ylabel="held-out r (mean)")
    ax.set_title("Which encoder explains which voxels")
    ax.legend(fontsize=7)
    if "gaussian" in truth:
        ax = axes[0, 2]
        est = np.asarray(result.encoders["gaussian"].receptive_field_centers_)[early]
        true = subject.prf_centers[early]
        for t, e in zip(true, est, strict=True):
            ax.plot([t[0], e[0]], [t[1], e[1]], color="0.6", lw=0.6)
        ax.scatter(true[:, 0], true[:, 1], s=10, label="planted")
        ax.scatter(est[:, 0], est[:, 1], s=10, label="gaussian readout")
        ax.set(xlim=(-1, 1), ylim=(1, -1), xlabel="x (map units)", ylabel="y (map units)")
        ax.set_aspect("equal")
        ax.set_title(f"RF centres (median error {truth['gaussian']['median_center_error']:.3f})")
        ax.legend(fontsize=7)
    return fig
