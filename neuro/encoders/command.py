"""``neuro fit-encoder``: fit and compare voxel encoders on a user's fMRI data.

Inputs (one of):

* NIfTI: ``--betas`` (4D single-trial betas), ``--trials`` (a TSV with a
  ``stimulus_id`` column, and optionally ``session``), ``--images`` (a folder
  of the stimulus images, read in sorted order, or an HDF5 / ``.npy`` brick),
  optionally ``--mask``, ``--labels`` (integer ROI atlas) with
  ``--label-names`` (a TSV of ``index`` and ``name``) and ``--rois``;
* NSD-style HDF5: ``--hdf5`` (see :class:`data_loaders.fmri.NSDSession`) with
  ``--images``;
* nothing: a small simulated subject (``neuro simulate-fmri`` writes the same
  thing to disk), to try the command out.

Features are a Gabor filter bank on the images (``--features gabor``) or a
precomputed array ``(n_stimuli, C, H, W)`` in a ``.npy`` file
(``--features FILE.npy``); ``--feature-cache FILE.h5`` keeps Gabor features
so a second run does not recompute them. ``--semantic FILE.npy`` gives the
semantic readout one vector per stimulus.

Writes into ``--out``: ``metrics.json``, ``roi_table.csv``, ``voxels.csv``,
NIfTI r-maps and the best-encoder map in ``maps/``, PNG figures in
``figures/`` and the fitted models in ``models/``
(:meth:`neuro.encoders.compare.EncoderComparison.save`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

__all__ = ["add_arguments", "load_dataset", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro fit-encoder``."""
    from neuro.encoders.compare import ENCODERS

    data = parser.add_argument_group(
        "data (NIfTI, NSD-style HDF5, or none for a simulated subject)"
    )
    data.add_argument("--betas", type=Path, help="4D NIfTI of single-trial betas (x, y, z, trial)")
    data.add_argument(
        "--trials", type=Path, help="trial table (TSV with a stimulus_id column, optional session)"
    )
    data.add_argument("--mask", type=Path, help="brain mask NIfTI on the betas' grid")
    data.add_argument("--labels", type=Path, help="integer ROI label NIfTI on the betas' grid")
    data.add_argument(
        "--label-names", type=Path, help="TSV with columns index and name for --labels"
    )
    data.add_argument("--rois", nargs="+", help="keep only voxels in these ROIs")
    data.add_argument("--hdf5", type=Path, help="NSD-style HDF5 session of betas")
    data.add_argument(
        "--images", type=Path, help="stimulus images: a folder, an HDF5 brick or a .npy array"
    )
    model = parser.add_argument_group("models")
    model.add_argument(
        "--model",
        nargs="+",
        action="extend",
        choices=ENCODERS,
        help="encoders to fit and compare (several allowed; default: ridge gaussian)",
    )
    model.add_argument(
        "--features",
        default="gabor",
        help="'gabor' (a Gabor filter bank on the images) or a .npy file of feature maps "
        "(n_stimuli, C, H, W) indexed by stimulus id (default: gabor)",
    )
    model.add_argument(
        "--feature-cache", type=Path, help="HDF5 file caching the Gabor features between runs"
    )
    model.add_argument("--map-size", type=int, default=16, help="Gabor feature map side (16)")
    model.add_argument(
        "--image-size", type=int, default=64, help="images are resized to this side (64)"
    )
    model.add_argument(
        "--semantic", type=Path, help=".npy of one semantic vector per stimulus (n_stimuli, D)"
    )
    model.add_argument(
        "--epochs", type=int, default=None, help="training epochs of the readouts (their default)"
    )
    model.add_argument(
        "--test-size", type=float, default=0.2, help="fraction of stimuli held out (0.2)"
    )
    model.add_argument(
        "--test-stimuli", type=Path, help="text file of held-out stimulus ids (one per line)"
    )


def _label_names(path: Path | None):
    if path is None:
        return None
    import pandas as pd

    table = pd.read_csv(path, sep="\t")
    if not {"index", "name"} <= set(table.columns):
        raise ValueError(
            f"{path} must be a TSV with columns 'index' and 'name'; it has {list(table.columns)}."
        )
    return {int(i): str(n) for i, n in zip(table["index"], table["name"], strict=True)}


def load_dataset(args: argparse.Namespace):
    """The :class:`~data_loaders.fmri.FMRIDataset` the options describe, and an optional truth.

    Returns ``(dataset, semantic)``: ``semantic`` is the simulated
    experiment's category-content embedding when no data were given, else
    the ``--semantic`` array or None.
    """
    from data_loaders.fmri import FMRIDataset, NSDSession, load_nifti_betas

    semantic = None if args.semantic is None else np.load(args.semantic, allow_pickle=False)
    if args.betas is not None and args.hdf5 is not None:
        raise ValueError("Give either --betas (NIfTI) or --hdf5, not both.")
    if args.betas is not None:
        if args.trials is None:
            raise ValueError(
                "--betas needs --trials: a TSV with a stimulus_id column, one row per volume."
            )
        nifti = load_nifti_betas(
            str(args.betas),
            str(args.trials),
            mask_img=None if args.mask is None else str(args.mask),
            labels_img=None if args.labels is None else str(args.labels),
            label_names=_label_names(args.label_names),
            rois=args.rois,
        )
        trials = getattr(nifti, "trials", None)
        sessions = None
        if trials is not None and "session" in getattr(trials, "columns", ()):
            sessions = trials["session"].to_numpy()
        dataset = FMRIDataset(
            nifti.betas,
            nifti.stimulus_ids,
            stimuli=None if args.images is None else str(args.images),
            roi_labels=list(nifti.roi_labels),
            coords=nifti.coords,
            voxel_ijk=nifti.ijk,
            affine=nifti.affine,
            volume_shape=nifti.volume_shape,
            session_ids=sessions,
            name=args.betas.name.split(".")[0],
        )
        return dataset, semantic
    if args.hdf5 is not None:
        with NSDSession(args.hdf5, rois=args.rois) as session:
            dataset = session.to_dataset(stimuli=None if args.images is None else str(args.images))
        return dataset, semantic

    from data_loaders.simulate.fmri import simulate_fmri

    sim = simulate_fmri(
        n_subjects=1,
        n_stimuli=300,
        image_size=args.image_size,
        voxels_per_roi=12,
        snr=1.0,
        seed=args.seed,
    )
    dataset = FMRIDataset.from_simulation(sim.subjects[0], sim.stimuli)
    if semantic is None:
        semantic = sim.stimuli.semantic_embedding(seed=args.seed)
    return dataset, semantic


def run(args: argparse.Namespace) -> int:
    """Entry point of ``neuro fit-encoder``."""
    from neuro.encoders.compare import compare_encoders

    models = args.model or ["ridge", "gaussian"]
    models = list(dict.fromkeys(models))
    dataset, semantic = load_dataset(args)
    if dataset.stimuli is None and args.features == "gabor":
        raise ValueError(
            "Gabor features need the stimulus images: give --images (a folder, HDF5 brick or "
            ".npy), or precomputed feature maps with --features FILE.npy."
        )
    size = (args.image_size, args.image_size)
    if args.features == "gabor":
        from neuro.encoders.features import GaborFeatures

        extractor = GaborFeatures(
            map_size=args.map_size, image_size=args.image_size, device=args.device
        )
        features = extractor
        if args.feature_cache is not None:
            from neuro.encoders.features import cached_features

            features = cached_features(
                extractor, dataset.stimuli, args.feature_cache, key=f"gabor_{args.image_size}px"
            )
    else:
        path = Path(args.features)
        if not path.exists():
            raise FileNotFoundError(
                f"--features {path}: no such file; give 'gabor' or a .npy of feature maps."
            )
        features = np.load(path, allow_pickle=False)
    readout_kwargs = {} if args.epochs is None else {"epochs": args.epochs}
    test_stimuli = None
    if args.test_stimuli is not None:
        test_stimuli = np.loadtxt(args.test_stimuli, dtype=np.int64, ndmin=1)
    print(f"neuro fit-encoder: {dataset}")
    result = compare_encoders(
        dataset,
        models,
        features=features,
        semantic=semantic,
        test_size=args.test_size,
        test_stimuli=test_stimuli,
        seed=args.seed,
        device=args.device,
        readout_kwargs=readout_kwargs,
        image_size=size,
        verbose=args.verbose,
    )
    result.save(args.out, overwrite=args.overwrite)
    print(result.summary())
    print(f"wrote {args.out}")
    return 0
