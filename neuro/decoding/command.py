"""``neuro brain3d``: decode 3D objects from fMRI, then lesion each ROI and diagnose it.

On a simulated subject (default) or on your own data (``--betas`` with
``--trials``, ``--labels`` naming the ROIs, and ``--targets``: the 3D object of
each stimulus as meshes or voxel grids), it

1. averages the repeats of each stimulus (z-scored within sessions) and holds
   out ``--test-size`` of the stimuli (stratified by category);
2. trains a :class:`~neuro.decoding.brain3d.Brain3DDecoder` (shape prior,
   fMRI -> latents, conditional flow) on the rest;
3. decodes the held-out stimuli and compares the objects with the truth
   (IoU, Chamfer distance, two-way identification, category accuracy) against
   the nearest training object in the predicted latent and the mean training
   object, with 95% bootstrap intervals over objects;
4. adds noise of each ``--noise-vars`` variance to one ROI at a time and
   measures the degradation, then diagnoses which ROI is impaired from the
   decoded objects alone, with its accuracy against the number of images.

It writes into ``--out``: ``metrics.json``, ``summary.txt``, the CSV tables
(``per_object``, ``comparison``, ``lesion_*``, ``diagnosis_*``),
``figures/*.png`` (true / decoded / nearest objects, degradation, diagnosis),
``meshes/*.obj`` (true and decoded examples), ``decoded.npz`` and
``model.pt`` (``Brain3DDecoder.load``). Checkpoints go to ``--out/checkpoints``
and ``--resume`` continues a killed fit.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

__all__ = ["add_arguments", "load_data", "run"]

#: Decoder parameters, as this command's flags (for error messages).
FLAG_NAMES = {
    "shape_latent_dim": "--latent-dim",
    "ae_channels": "--channels",
    "early_rois": "--early-rois",
    "semantic_rois": "--semantic-rois",
    "hidden_dim": "--hidden",
    "ae_epochs": "--ae-epochs",
    "epochs": "--epochs",
    "flow_epochs": "--flow-epochs",
    "flow_steps": "--flow-steps",
    "batch_size": "--batch-size",
    "n_shapes": "--n-shapes",
    "grid_size": "--grid-size",
    "image_size": "--image-size",
    "voxels_per_roi": "--voxels-per-roi",
    "snr": "--snr",
    "n_repeats": "--repeats",
    "test_size": "--test-size",
    "bank_size": "--shape-bank",
    "noise_vars": "--noise-vars",
    "noise_var": "--diagnosis-noise",
    "scan_noise": "--scan-noise",
    "n_images": "--n-images",
    "n_trials": "--diagnosis-trials",
    "n_examples": "--examples",
    "lesion_rois": "--lesion-rois",
    "checkpoint_every_n_steps": "--checkpoint-every",
    "images": "--betas",
    "stimulus_ids": "--trials",
    "mask_img": "--mask",
    "labels_img": "--labels",
    "label_names": "--label-names",
    "targets": "--targets",
    "source": "--targets",
    "categories": "--categories",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro brain3d``."""
    sim = parser.add_argument_group("simulated subject (the default data)")
    sim.add_argument("--n-shapes", type=int, default=240, help="objects shown, one stimulus each")
    sim.add_argument(
        "--grid-size", type=int, default=16, help="occupancy grid side G, a multiple of 8"
    )
    sim.add_argument("--image-size", type=int, default=64, help="side of the rendered stimuli")
    sim.add_argument("--voxels-per-roi", type=int, default=40, help="voxels per ROI and hemisphere")
    sim.add_argument("--snr", type=float, default=1.0, help="median single-trial SNR")
    sim.add_argument("--repeats", type=int, default=2, help="trials per stimulus")
    sim.add_argument(
        "--shape-bank",
        type=int,
        default=None,
        metavar="N",
        help="extra simulated objects, with no responses, for the shape prior, as a pretrained 3D "
        "model would have seen (default: 1000)",
    )
    data = parser.add_argument_group("your own data (NIfTI betas and 3D targets)")
    data.add_argument("--betas", type=Path, help="4D NIfTI of single-trial betas (x, y, z, trial)")
    data.add_argument(
        "--trials", type=Path, help="trial table (TSV with a stimulus_id column, optional session)"
    )
    data.add_argument("--mask", type=Path, help="brain mask NIfTI on the betas' grid")
    data.add_argument("--labels", type=Path, help="integer ROI label NIfTI on the betas' grid")
    data.add_argument(
        "--label-names", type=Path, help="TSV with columns index and name for --labels"
    )
    data.add_argument(
        "--targets",
        type=Path,
        nargs="+",
        help="the 3D object of each stimulus, in stimulus-id order: a folder of meshes "
        "(.obj/.ply/.off/.stl) or .npy grids, a list of such files, or one .npy/.npz of "
        "shape (n_stimuli, G, G, G)",
    )
    data.add_argument(
        "--categories",
        type=Path,
        help="category of each stimulus in stimulus-id order: .npy of ints, or a text/CSV/TSV "
        "file with one label (int or name) per line",
    )
    model = parser.add_argument_group("decoder")
    model.add_argument("--latent-dim", type=int, default=32, help="shape latent size")
    model.add_argument(
        "--channels", type=int, nargs=3, default=[16, 32, 64], help="autoencoder channels"
    )
    model.add_argument("--hidden", type=int, default=128, help="width of the fMRI streams")
    model.add_argument(
        "--early-rois", nargs="+", default=["V1", "V2", "V3", "V4"], help="shape-stream ROIs"
    )
    model.add_argument("--semantic-rois", nargs="+", default=["MTL"], help="semantic-stream ROIs")
    model.add_argument(
        "--ae-epochs",
        type=int,
        default=40,
        help="epochs of the shape prior over the objects and the bank (with your own objects "
        "and no bank, give more: about 300 for 150 objects)",
    )
    model.add_argument("--epochs", type=int, default=150, help="epochs of fMRI -> latents")
    model.add_argument("--flow-epochs", type=int, default=150, help="epochs of the flow")
    model.add_argument("--flow-steps", type=int, default=32, help="Euler steps of sampling")
    model.add_argument("--batch-size", type=int, default=32, help="batch size of every stage")
    model.add_argument(
        "--checkpoint-every", type=int, default=None, metavar="N", help="steps between checkpoints"
    )
    model.add_argument("--resume", action="store_true", help="continue a fit killed in --out")
    ev = parser.add_argument_group("evaluation")
    ev.add_argument("--test-size", type=float, default=0.4, help="fraction of stimuli held out")
    ev.add_argument("--no-lesion", action="store_true", help="skip the lesions and the diagnosis")
    ev.add_argument(
        "--lesion-rois", nargs="+", default=None, help="ROIs to lesion (default: the decoder's)"
    )
    ev.add_argument(
        "--noise-vars",
        type=float,
        nargs="+",
        default=[0.0, 0.5, 1.0, 1.5],
        help="lesion noise variances, in units of each voxel's variance (the paper's)",
    )
    ev.add_argument(
        "--diagnosis-noise", type=float, default=1.0, help="noise variance of diagnosed lesions"
    )
    ev.add_argument(
        "--scan-noise",
        type=float,
        default=0.25,
        help="whole-brain noise variance of each simulated patient's new scan (0: the held-out "
        "responses themselves, as in the paper)",
    )
    ev.add_argument(
        "--n-images",
        type=int,
        nargs="+",
        default=[5, 10, 20, 40],
        help="images per diagnosis (each half of the held-out stimuli must hold the largest)",
    )
    ev.add_argument(
        "--diagnosis-trials", type=int, default=100, help="simulated patients per label and size"
    )
    ev.add_argument("--examples", type=int, default=6, help="objects drawn and exported as meshes")
    ev.add_argument("--no-figures", action="store_true", help="skip the figures")


def _read_categories(path: Path) -> np.ndarray:
    """Integer categories from a .npy array or a one-column text table (names are numbered)."""
    from neuro._validation import check_file
    from neuro.errors import InputError, UnreadableFileError

    check_file("--categories", path, suffixes=(".npy", ".txt", ".csv", ".tsv"))
    if path.suffix == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise UnreadableFileError(
                f"--categories {path} is not a readable .npy array ({err}); save it with "
                "numpy.save(path, labels)."
            ) from None
    else:
        text = path.read_text(errors="replace").split("\n")
        values = [line.split(",")[0].split("\t")[0].strip() for line in text if line.strip()]
        if values and not values[0].lstrip("-").isdigit() and len(set(values)) == len(values):
            raise InputError(f"--categories {path} must hold one label per stimulus, per line.")
        if values and values[0].lower() in ("category", "label", "categories"):
            values = values[1:]  # a header
    values = np.asarray(values)
    if values.ndim != 1 or len(values) == 0:
        raise InputError(
            f"--categories {path} must hold one label per stimulus; got shape {values.shape}."
        )
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        if not np.array_equal(values, np.round(values)):
            raise InputError(f"--categories {path} holds fractional values; give integer labels.")
        return values.astype(np.int64)
    if all(v.lstrip("-").isdigit() for v in values.astype(str)):
        return values.astype(np.int64)
    _, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.astype(np.int64)


def _check(args: argparse.Namespace) -> None:
    from neuro._validation import check_file, check_float, check_int
    from neuro.errors import InputError

    own = [f for f, d in (("--betas", "betas"), ("--targets", "targets")) if getattr(args, d)]
    if own and len(own) < 2:
        raise InputError(
            "your own data needs both --betas (with --trials and --labels) and --targets (the 3D "
            "object of each stimulus); give both, or neither for the simulated subject."
        )
    if args.betas is not None:
        if args.trials is None:
            raise InputError(
                "--betas needs --trials: a TSV with a stimulus_id column, one row per volume."
            )
        if args.labels is None:
            raise InputError(
                "--betas needs --labels: an integer ROI image naming the voxels of each ROI "
                "(with --label-names), since the decoder reads early visual and semantic ROIs "
                "separately."
            )
        if args.shape_bank is not None:
            raise InputError(
                "--shape-bank adds simulated objects to the simulated subject's shape prior; with "
                "your own data drop it (and give more --ae-epochs)."
            )
        for flag, dest in (
            ("--betas", "betas"),
            ("--trials", "trials"),
            ("--mask", "mask"),
            ("--labels", "labels"),
            ("--label-names", "label_names"),
        ):
            if getattr(args, dest) is not None:
                check_file(flag, getattr(args, dest))
    else:
        if args.shape_bank is None:
            args.shape_bank = 1000
        check_int("--shape-bank", args.shape_bank, minimum=0)
        given = [
            f
            for f, d in (
                ("--trials", "trials"),
                ("--mask", "mask"),
                ("--labels", "labels"),
                ("--label-names", "label_names"),
                ("--categories", "categories"),
            )
            if getattr(args, d) is not None
        ]
        if given:
            raise InputError(f"{', '.join(given)} go with --betas (your own data); drop them.")
    check_int("--grid-size", args.grid_size, minimum=8)
    if args.grid_size % 8:
        raise InputError(
            f"--grid-size must be a multiple of 8 (the shape prior halves it three times); got "
            f"{args.grid_size}. Try {max(8, 8 * round(args.grid_size / 8))}."
        )
    check_float(
        "--test-size",
        args.test_size,
        minimum=0.0,
        maximum=1.0,
        strict_minimum=True,
        strict_maximum=True,
    )
    for flag, value in (("--n-images", args.n_images),):
        for v in value:
            check_int(flag, v, minimum=1)
    check_int("--diagnosis-trials", args.diagnosis_trials, minimum=1)
    check_int("--examples", args.examples, minimum=1)
    if any(v < 0 for v in args.noise_vars):
        raise InputError(f"--noise-vars are variances and must be >= 0; got {args.noise_vars}.")
    check_float("--diagnosis-noise", args.diagnosis_noise, minimum=0.0, strict_minimum=True)
    check_float("--scan-noise", args.scan_noise, minimum=0.0)


def load_data(args: argparse.Namespace):
    """``(train, test, info, bank)``: the decoder's data the options describe.

    ``info`` records where the data came from; ``bank`` is the simulated shape
    bank or None.
    """
    from neuro.cli import errors_as_flags
    from neuro.decoding.data import decoding_arrays
    from neuro.decoding.experiment import simulated_decoding, split_decoding

    if args.betas is None:
        with errors_as_flags(FLAG_NAMES):
            sim = simulated_decoding(
                n_shapes=args.n_shapes,
                grid_size=args.grid_size,
                image_size=args.image_size,
                voxels_per_roi=args.voxels_per_roi,
                snr=args.snr,
                n_repeats=args.repeats,
                test_size=args.test_size,
                bank_size=args.shape_bank,
                seed=args.seed,
            )
        info = {
            "data": "simulated",
            "n_shapes": args.n_shapes,
            "grid_size": args.grid_size,
            "snr": args.snr,
            "repeats": args.repeats,
            "voxels_per_roi": args.voxels_per_roi,
        }
        return sim.train, sim.test, info, sim.shape_bank
    from data_loaders.fmri import load_nifti_betas
    from data_loaders.shapes3d import load_shape_targets
    from neuro.encoders.command import read_label_names

    with errors_as_flags(FLAG_NAMES):
        nifti = load_nifti_betas(
            str(args.betas),
            str(args.trials),
            mask_img=None if args.mask is None else str(args.mask),
            labels_img=str(args.labels),
            label_names=read_label_names(args.label_names),
        )
        dataset = nifti.to_dataset(name=args.betas.name.split(".")[0])
        source = [str(p) for p in args.targets]
        targets = load_shape_targets(source[0] if len(source) == 1 else source, args.grid_size)
        categories = None if args.categories is None else _read_categories(args.categories)
        data = decoding_arrays(dataset, targets, categories)
        train, test = split_decoding(data, test_size=args.test_size, seed=args.seed)
    info = {"data": str(args.betas), "targets": source, "grid_size": args.grid_size}
    return train, test, info, None


def run(args: argparse.Namespace) -> int:
    """Entry point of ``neuro brain3d``."""
    from neuro.cli import errors_as_flags
    from neuro.decoding.brain3d import Brain3DDecoder
    from neuro.decoding.experiment import evaluate_decoder

    _check(args)
    started = time.perf_counter()
    train, test, info, bank = load_data(args)
    out = Path(args.out)
    ckpt = out / "checkpoints"
    decoder = Brain3DDecoder(
        shape_latent_dim=args.latent_dim,
        ae_channels=tuple(args.channels),
        early_rois=tuple(args.early_rois),
        semantic_rois=tuple(args.semantic_rois),
        hidden_dim=args.hidden,
        ae_epochs=args.ae_epochs,
        epochs=args.epochs,
        flow_epochs=args.flow_epochs,
        flow_steps=args.flow_steps,
        batch_size=args.batch_size,
        device=args.device,
        checkpoint_dir=ckpt,
        checkpoint_every_n_steps=args.checkpoint_every,
        random_state=args.seed,
        verbose=0 if args.quiet else max(0, args.verbose - 1),
    )
    if not args.resume and ckpt.is_dir():  # --overwrite without --resume: a fresh fit
        import shutil

        from neuro.decoding.brain3d import STAGES

        for stage in STAGES:  # only the folders this command's decoder writes
            if (ckpt / stage).is_dir():
                shutil.rmtree(ckpt / stage)
    with errors_as_flags(FLAG_NAMES):
        decoder.fit(
            train.X,
            train.Y,
            train.roi_labels,
            categories=train.categories,
            shape_bank=bank,
            resume=bool(args.resume),
        )
    fit_seconds = time.perf_counter() - started
    with errors_as_flags(FLAG_NAMES):
        report = evaluate_decoder(
            decoder,
            train,
            test,
            lesion=not args.no_lesion,
            lesion_rois=args.lesion_rois,
            noise_vars=args.noise_vars,
            diagnosis_noise=args.diagnosis_noise,
            scan_noise=args.scan_noise,
            n_images=args.n_images,
            diagnosis_trials=args.diagnosis_trials,
            n_examples=args.examples,
            seed=args.seed,
            settings={
                **info,
                "command": "neuro brain3d",
                "fit_seconds": fit_seconds,
                "n_parameters": getattr(decoder, "n_parameters_", None),
            },
        )
    report.settings["seconds"] = time.perf_counter() - started
    report.save(out, overwrite=True, figures=not args.no_figures)
    decoder.save(out / "model.pt", overwrite=True)
    print(report.format_table())
    print(f"  written to {out}")
    return 0
