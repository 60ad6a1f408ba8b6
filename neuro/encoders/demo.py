"""``neuro demo``: the package's main job on built-in data.

Simulates one subject viewing a few hundred images
(:func:`data_loaders.simulate.fmri.simulate_fmri`: early visual voxels with
planted Gaussian receptive fields on local contrast, category-selective voxels
that respond to faces, scenes, objects or text), computes Gabor features of the
images, fits ridge and the readout families on the same training stimuli
(:func:`neuro.encoders.compare.compare_encoders`), prints the per-ROI table of
held-out accuracy as a fraction of the noise ceiling, and checks the fit
against what was planted (:func:`neuro.encoders.groundtruth.check_ground_truth`):
the noise ceiling estimated from repeats against the true one, and the
Gaussian readout's receptive-field centres against the planted centres.
Writes everything :meth:`EncoderComparison.save` writes (``metrics.json``
gains ``ground_truth`` and ``seconds``), plus ``ground_truth.png``, into
``--out``.

This is the one home of the simulated run: ``neuro fit-encoder`` fits your
data (``neuro simulate-fmri`` writes a simulated study to disk for it).

Run it with ``make demo`` or ``neuro demo --out runs/demo``.
"""

from __future__ import annotations

import argparse
import time

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro demo``."""
    from neuro.encoders.compare import ENCODERS

    parser.add_argument("--stimuli", type=int, default=300, help="distinct images")
    parser.add_argument("--repeats", type=int, default=3, help="trials per image")
    parser.add_argument(
        "--voxels-per-roi", type=int, default=12, help="voxels per ROI and hemisphere"
    )
    parser.add_argument("--snr", type=float, default=1.0, help="median single-trial SNR")
    parser.add_argument("--image-size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--map-size", type=int, default=16, help="feature map side")
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
    from neuro._validation import check_float, check_int

    for name, low in (("stimuli", 30), ("repeats", 2), ("voxels_per_roi", 1), ("map_size", 4)):
        check_int("--" + name.replace("_", "-"), getattr(args, name), minimum=low)
    check_float("--snr", args.snr, minimum=0.0, strict_minimum=True)
    if args.epochs is not None:
        check_int("--epochs", args.epochs, minimum=1)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``neuro demo``."""
    from data_loaders.fmri import FMRIDataset
    from data_loaders.simulate.fmri import simulate_fmri
    from neuro.encoders import plots
    from neuro.encoders.compare import ENCODERS, compare_encoders
    from neuro.encoders.features import GaborFeatures
    from neuro.encoders.groundtruth import check_ground_truth
    from neuro.io import atomic_write_json, prepare_output_dir
    from neuro.plotting import save_figure
    from neuro.results import jsonable

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
    truth = check_ground_truth(result, subject)
    metrics = result.summary()
    metrics["ground_truth"] = truth
    metrics["seconds"] = time.perf_counter() - t0
    atomic_write_json(out / "metrics.json", jsonable(metrics))
    save_figure(plots.ground_truth(result, subject, truth), out / "ground_truth.png")

    print(result.format_table())
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
