"""Transformer brain encoder: learned ROI queries route image tokens to voxels; compare with ridge.

Simulates one subject whose category-selective voxels (FFA, PPA, LOC, VWFA)
respond to the appearance of their category's content wherever it lies in the
image (or reads NIfTI betas with precomputed feature maps), fits ridge, the
Gaussian readout and the attention-routing transformer encoder on the same
training stimuli through ``neuro.encoders.compare_encoders``, and writes into
--out the per-ROI table of held-out accuracy (metrics.json, summary.txt,
roi_table.csv, voxels.csv, brain maps, models), the routing maps of the
held-out images (routing.npz), a figure of each category query's attention
over the images (figures/routing_maps.png, with the planted object outlines on
simulated data) and, on simulated data, how much of that attention lands on
the planted objects against uniform attention (routing_overlap.csv). The
small default (300 images of 32 px, an 8 x 8 "oracle" feature map) runs in
about a minute on a CPU:

    python scripts/transformer_encoder.py --out runs/transformer_encoder [--epochs 60]
    python scripts/transformer_encoder.py --betas sub-01_betas.nii.gz --trials sub-01_trials.tsv \\
        --labels sub-01_rois.nii.gz --label-names sub-01_rois.tsv --features maps.npy --out runs/tf

``--features`` is an array ``(n_stimuli, C, H, W)`` indexed by stimulus id
(one layer of a frozen vision model, e.g. ViT tokens laid out as a grid);
``--images`` (optional) draws the routing maps over the images. ``--paper-size``
trains the paper's decoder width (for GPUs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

PROG = "transformer_encoder"
#: Category ROIs whose planted content is a bounded object (PPA's scenes fill the field).
ROUTED = {"FFA": "face", "LOC": "object", "VWFA": "text"}
#: The small decoder that trains in seconds on a CPU (the measured default).
SMALL = {"d_model": 32, "n_heads": 4, "ffn_dim": 64, "lr": 3e-3}
#: Simulation options and their defaults (refused with --betas).
SIM_DEFAULTS = {
    "stimuli": 300,
    "image_size": 32,
    "map_size": 8,
    "voxels_per_roi": 4,
    "snr": 2.0,
    "category_tuning": 0.7,
}
#: Options that only go with --betas.
NIFTI_OPTIONS = ("trials", "mask", "labels", "label_names", "rois", "features", "images")


def build_parser() -> argparse.ArgumentParser:
    """The script's options (data, simulation, model, and the ``neuro`` common options)."""
    from neuro.cli import add_common_arguments

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Fit ridge, the Gaussian readout and the attention-routing transformer "
        "encoder on a simulated subject (default) or NIfTI betas with precomputed feature maps; "
        "write the per-ROI table, routing maps and their overlap with the planted objects.",
    )
    data = parser.add_argument_group("your data (default: a simulated subject)")
    data.add_argument("--betas", type=Path, help="4D NIfTI of single-trial betas (x, y, z, trial)")
    data.add_argument(
        "--trials", type=Path, help="trial table (TSV with a stimulus_id column, optional session)"
    )
    data.add_argument("--mask", type=Path, help="brain mask NIfTI on the betas' grid")
    data.add_argument("--labels", type=Path, help="integer ROI label NIfTI (the queries' ROIs)")
    data.add_argument("--label-names", type=Path, help="TSV with columns index and name")
    data.add_argument("--rois", nargs="+", help="keep only voxels in these ROIs")
    data.add_argument(
        "--features",
        type=Path,
        help="feature maps (n_stimuli, C, H, W) in a .npy file, indexed by stimulus id",
    )
    data.add_argument(
        "--images", type=Path, help="stimulus images (folder, HDF5 or .npy) to draw maps over"
    )
    sim = parser.add_argument_group("simulation")
    sim.add_argument("--stimuli", type=int, help="distinct images (default 300)")
    sim.add_argument("--image-size", type=int, help="image side in pixels (default 32)")
    sim.add_argument("--map-size", type=int, help="feature map side, divides it (default 8)")
    sim.add_argument("--voxels-per-roi", type=int, help="voxels per ROI and hemisphere (default 4)")
    sim.add_argument("--snr", type=float, help="median single-trial SNR (default 2.0)")
    sim.add_argument(
        "--category-tuning",
        type=float,
        help="share of category voxels' signal from the appearance of their content, read "
        "where it lies, in [0, 1] (default 0.7)",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--epochs",
        type=int,
        help="training epochs, with early stopping (default: 60 for the transformer, the "
        "Gaussian readout's own 200; given, both use it)",
    )
    model.add_argument(
        "--paper-size",
        action="store_true",
        help="the paper's decoder (d_model 768, 16 heads, lr 5e-4, batch 16; for GPUs) instead "
        "of the small one (d_model 32)",
    )
    model.add_argument("--test-size", type=float, default=0.2, help="fraction of images held out")
    parser.add_argument(
        "--no-figures",
        dest="figures",
        action="store_false",
        help="write the tables, maps and models only (the brain figures take the longest)",
    )
    add_common_arguments(parser, PROG)
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse inconsistent or out-of-range options before anything is read or computed.

    Fills in the simulation defaults when no --betas is given.

    Raises
    ------
    InputError
        Options of the other data source, --betas without --trials or
        --features, a missing file, or a number out of range.
    """
    from neuro._validation import check_file, check_float, check_int
    from neuro.errors import InputError

    check_int("--epochs", args.epochs, minimum=1, allow_none=True)
    check_float("--test-size", args.test_size, minimum=0.0, maximum=0.5, strict_minimum=True)
    sim_given = [f"--{k.replace('_', '-')}" for k in SIM_DEFAULTS if getattr(args, k) is not None]
    if args.betas is None:
        given = [f"--{k.replace('_', '-')}" for k in NIFTI_OPTIONS if getattr(args, k)]
        if given:
            raise InputError(
                f"{', '.join(given)} go with --betas (your data); without --betas the script "
                "simulates a subject. Add --betas, or drop them."
            )
        for key, value in SIM_DEFAULTS.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
        check_int("--stimuli", args.stimuli, minimum=20)
        check_int("--image-size", args.image_size, minimum=16)
        check_int("--map-size", args.map_size, minimum=2)
        check_int("--voxels-per-roi", args.voxels_per_roi, minimum=1)
        check_float("--snr", args.snr, minimum=0.0, strict_minimum=True)
        check_float("--category-tuning", args.category_tuning, minimum=0.0, maximum=1.0)
        if args.image_size % args.map_size:
            raise InputError(
                f"--map-size {args.map_size} does not divide --image-size {args.image_size}; "
                "choose a divisor (e.g. --map-size 8 with --image-size 32)."
            )
        return
    if sim_given:
        raise InputError(
            f"{', '.join(sim_given)} set the simulation; with --betas the data are yours. "
            "Drop them."
        )
    if args.trials is None or args.features is None:
        raise InputError(
            "--betas needs --trials (a TSV with a stimulus_id column, one row per volume) and "
            "--features (a .npy of feature maps (n_stimuli, C, H, W) indexed by stimulus id)."
        )
    for flag in ("betas", "trials", "mask", "labels", "label_names"):
        if getattr(args, flag) is not None:
            check_file(f"--{flag.replace('_', '-')}", getattr(args, flag))
    check_file("--features", args.features, suffixes=(".npy",))
    if args.images is not None:
        check_file("--images", args.images, folder=Path(args.images).is_dir())


def simulate(args: argparse.Namespace):
    """A simulated subject: its dataset, oracle feature maps and planted object coverage.

    Returns
    -------
    dataset : FMRIDataset
    maps : ndarray (n_stimuli, 8, m, m)
        :meth:`~data_loaders.simulate.fmri.SimulatedStimuli.oracle_maps`.
    content : ndarray (n_stimuli, 4, size, size)
        Where each category's content lies (face, scene, object, text).
    images : ndarray (n_stimuli, size, size, 3)
    subject : SimulatedSubject
    """
    from data_loaders.fmri import FMRIDataset
    from data_loaders.simulate.fmri import simulate_fmri

    sim = simulate_fmri(
        n_subjects=1,
        n_stimuli=args.stimuli,
        image_size=args.image_size,
        voxels_per_roi=args.voxels_per_roi,
        snr=args.snr,
        seed=args.seed,
        category_tuning=args.category_tuning,
    )
    subject = sim.subjects[0]
    dataset = FMRIDataset.from_simulation(subject, sim.stimuli)
    maps = sim.stimuli.oracle_maps(args.map_size)
    return dataset, maps, sim.stimuli.content, sim.stimuli.images, subject


def load(args: argparse.Namespace):
    """The NIfTI dataset and the ``--features`` maps (and the images, when given).

    Returns
    -------
    dataset : FMRIDataset
    maps : ndarray (n_stimuli, C, H, W), float32
    """
    from data_loaders.fmri import load_nifti_betas
    from neuro.cli import errors_as_flags
    from neuro.encoders.command import read_label_names, read_npy
    from neuro.errors import InputError

    flags = {
        "images": "--betas",
        "stimulus_ids": "--trials",
        "mask_img": "--mask",
        "labels_img": "--labels",
        "label_names": "--label-names",
    }
    with errors_as_flags(flags):
        nifti = load_nifti_betas(
            str(args.betas),
            str(args.trials),
            mask_img=None if args.mask is None else str(args.mask),
            labels_img=None if args.labels is None else str(args.labels),
            label_names=read_label_names(args.label_names),
            rois=args.rois,
        )
    with errors_as_flags({"stimuli": "--images", "path": "--images"}):
        dataset = nifti.to_dataset(
            stimuli=None if args.images is None else str(args.images),
            name=args.betas.name.split(".")[0],
        )
    maps = read_npy("--features", args.features)
    if maps.ndim != 4:
        raise InputError(
            f"--features must hold feature maps of shape (n_stimuli, C, H, W) (the transformer's "
            f"tokens are the map's positions); got shape {maps.shape}. Save a spatial layer, or "
            "ViT tokens laid out as a grid."
        )
    if dataset.roi_labels is None:
        raise InputError(
            "The transformer has one query per ROI: give --labels (an integer ROI image) and "
            "--label-names so every voxel has its ROI."
        )
    return dataset, maps.astype(np.float32)


def held_out_stimuli(dataset, test_size: float, seed: int) -> np.ndarray:
    """The held-out stimulus ids of ``compare_encoders(dataset, test_size=, seed=)``, sorted."""
    _, test = dataset.split(test_size=test_size, seed=seed)
    return np.unique(test.stimulus_ids)


def block_coverage(content: np.ndarray, map_shape: tuple[int, int]) -> np.ndarray:
    """Per-pixel content ``(n, K, size, size)`` averaged onto the feature map grid ``(n, K, H, W)``.

    Each cell holds the fraction of its pixels that the content covers.
    """
    n, k, size, _ = content.shape
    h, w = map_shape
    return content.reshape(n, k, h, size // h, w, size // w).mean(axis=(3, 5))


def routing_overlap(routing: np.ndarray, query_names, coverage: np.ndarray):
    """How much of each category query's attention lands on its category, against chance.

    For every query of :data:`ROUTED` (``"FFA"`` or ``"FFA-left"``, ...), over
    the images that contain its category: the attention mass on the
    category, ``sum_xy a(x, y) c(x, y)`` with ``c`` the fraction of each map
    cell the category covers, and the same for uniform attention (``mean_xy
    c``, the chance baseline). ``ratio`` is their quotient: 1 is chance.

    Parameters
    ----------
    routing : ndarray (n_images, n_queries, H, W)
        :meth:`TransformerEncoder.routing_maps` of the images.
    query_names : list of str
    coverage : ndarray (n_images, 4, H, W)
        :func:`block_coverage` of the planted content (face, scene, object, text).

    Returns
    -------
    pandas.DataFrame
        One row per routed query: ``query``, ``category``, ``n_images``,
        ``attention_on_category``, ``chance``, ``ratio``.
    """
    import pandas as pd

    from data_loaders.simulate.fmri import CATEGORIES

    rows = []
    for q, name in enumerate(query_names):
        category = ROUTED.get(name.split("-")[0])
        if category is None:
            continue
        cov = coverage[:, CATEGORIES.index(category)]
        has = cov.sum(axis=(1, 2)) > 0
        mass = float((routing[has, q] * cov[has]).sum(axis=(1, 2)).mean()) if has.any() else np.nan
        chance = float(cov[has].mean()) if has.any() else np.nan
        rows.append(
            {
                "query": name,
                "category": category,
                "n_images": int(has.sum()),
                "attention_on_category": mass,
                "chance": chance,
                "ratio": mass / chance if has.any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def routing_figure(images, routing, query_names, coverage=None, ratios=None, n_columns=4):
    """Each routed query's attention over a few images, with the planted outlines when known.

    Parameters
    ----------
    images : ndarray (n_images, size, size, 3) or None
        Images in [0, 1]; None draws the attention alone.
    routing : ndarray (n_images, n_queries, H, W)
    query_names : list of str
    coverage : ndarray (n_images, 4, size, size), optional
        Per-pixel planted content; rows then show the images where the
        query's category covers most (outlined in cyan).
    ratios : dict {str: float}, optional
        Overlap against chance of each query (:func:`routing_overlap`),
        written in its row's first title.
    n_columns : int, default=4

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from data_loaders.simulate.fmri import CATEGORIES

    rows = [q for q, name in enumerate(query_names) if name.split("-")[0] in ROUTED]
    if not rows:  # real data with other ROI names: every query but "rest"
        rows = [q for q, name in enumerate(query_names) if not name.startswith("rest")][:8]
    fig, axes = plt.subplots(
        len(rows), n_columns, figsize=(2.1 * n_columns, 2.2 * len(rows)), squeeze=False
    )
    for ax_row, q in zip(axes, rows, strict=True):
        name = query_names[q]
        category = ROUTED.get(name.split("-")[0])
        pick = np.arange(len(routing))
        if coverage is not None and category is not None:
            cov = coverage[:, CATEGORIES.index(category)]
            pick = np.argsort(-cov.mean(axis=(1, 2)), kind="stable")
            pick = pick[cov[pick].sum(axis=(1, 2)) > 0]
        for j, ax in enumerate(ax_row):
            ax.axis("off")
            if j >= len(pick):
                continue
            i = pick[j]
            extent = (0, 1, 1, 0)
            if images is not None:
                ax.imshow(images[i], extent=extent)
            ax.imshow(
                routing[i, q],
                extent=extent,
                cmap="inferno",
                alpha=0.55 if images is not None else 1.0,
                interpolation="bilinear",
            )
            if coverage is not None and category is not None:
                cov_i = coverage[i, CATEGORIES.index(category)]
                centres = (np.arange(cov_i.shape[0]) + 0.5) / cov_i.shape[0]
                ax.contour(centres, centres, cov_i, levels=[0.5], colors="cyan", linewidths=1.0)
            title = name + (f" ({category})" if category else "")
            if j == 0 and ratios and name in ratios:
                title += f": {ratios[name]:.1f}x chance"
            ax.set_title(title, fontsize=9)
    fig.suptitle("Where each ROI query attends (held-out images)", fontsize=11)
    fig.tight_layout()
    return fig


def run(args: argparse.Namespace) -> int:
    """Simulate or load, compare the encoders, write the table, routing maps and overlap."""
    from neuro.encoders import TransformerEncoder, compare_encoders
    from neuro.encoders.transformer import PAPER_SIZE
    from neuro.io import atomic_open, prepare_output_dir
    from neuro.plotting import save_figure

    check_arguments(args)
    out = prepare_output_dir(args.out, overwrite=args.overwrite)  # refused before any work
    simulated = args.betas is None
    subject = None
    if simulated:
        dataset, maps, content, images, subject = simulate(args)
    else:
        dataset, maps = load(args)
        content = images = None
    size = (PAPER_SIZE | {"lr": 5e-4, "batch_size": 16}) if args.paper_size else SMALL
    transformer = TransformerEncoder(
        **size,
        epochs=60 if args.epochs is None else args.epochs,
        device=args.device,
        random_state=args.seed,
        verbose=max(args.verbose - 1, 0),
    )
    if args.verbose:
        print(f"{PROG}: {dataset}; feature maps {tuple(maps.shape[1:])} (C, H, W)")
    result = compare_encoders(
        dataset,
        ["ridge", "gaussian", ("transformer", transformer)],
        features=maps,
        test_size=args.test_size,
        seed=args.seed,
        device=args.device,
        readout_kwargs=None if args.epochs is None else {"epochs": args.epochs},
        verbose=args.verbose,
    )
    result.save(out, overwrite=True, figures=args.figures)  # the folder was checked above
    print(result.format_table())
    if subject is not None:
        category = np.isnan(subject.prf_sizes)
        ceiling = float(np.sqrt(subject.true_noise_ceiling(3)[category]).mean())
        cells = ", ".join(f"{n} {result.scores[n][category].mean():.2f}" for n in result.names)
        print(f"category voxels, mean held-out r: {cells} (true noise ceiling r {ceiling:.2f})")

    test = held_out_stimuli(dataset, args.test_size, args.seed)
    routing = transformer.routing_maps(maps[test])
    with atomic_open(out / "routing.npz", "wb") as fh:
        np.savez(
            fh,
            maps=routing,
            query_names=np.asarray(transformer.query_names_, dtype=str),
            stimulus_ids=test,
        )
    shown = coverage = None
    if simulated:
        shown = images[test]
        coverage = content[test]
    elif dataset.stimuli is not None:
        shown = dataset.stimuli.load(test, size=(128, 128), layout="NHWC")
    ratios = None
    if simulated:
        table = routing_overlap(
            routing, transformer.query_names_, block_coverage(coverage, routing.shape[2:])
        )
        with atomic_open(out / "routing_overlap.csv", "w") as fh:
            fh.write(table.to_csv(index=False))
        ratios = dict(zip(table["query"], table["ratio"], strict=True))
        for row in table.itertuples():
            print(
                f"{row.query:>5} query's attention on the {row.category}: "
                f"{row.attention_on_category:.2f} (uniform: {row.chance:.2f}) = {row.ratio:.1f}x "
                f"chance over {row.n_images} held-out images"
            )
    if args.figures:
        fig = routing_figure(shown, routing, transformer.query_names_, coverage, ratios)
        save_figure(fig, out / "figures" / "routing_maps.png")
    print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    """Run the script; an :class:`~neuro.errors.InputError` is one line and exit status 2.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    from neuro.cli import run_script

    return run_script(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
