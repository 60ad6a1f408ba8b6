"""``neuro fit-encoder``: fit and compare voxel encoders on a user's fMRI data.

Inputs (one of):

* NIfTI: ``--betas`` (4D single-trial betas), ``--trials`` (a TSV with a
  ``stimulus_id`` column, and optionally ``session``), ``--images`` (a folder
  of the stimulus images, read in sorted order, or an HDF5 / ``.npy`` brick),
  optionally ``--mask``, ``--labels`` (integer ROI atlas) with
  ``--label-names`` (a TSV of ``index`` and ``name``) and ``--rois``;
* NSD as distributed: ``--nsd ROOT --subject N [--sessions ...]``;
* NSD-style HDF5: ``--hdf5`` (see :class:`data_loaders.fmri.NSDSession`), one
  file per session, with ``--images``;
* surfaces: ``--surface LEFT [RIGHT]`` (GIfTI / MGH) with ``--trials`` and
  optionally ``--surface-labels LEFT [RIGHT]``.

Without data options the command stops with a one-line message: the
simulated run is ``neuro demo`` (and ``neuro simulate-fmri`` writes a
simulated study to disk in the layout above). Every path is checked before
anything is read, and a problem with one is reported under its flag
(``--betas: no such file: ...``).

Features are a Gabor filter bank on the images (``--features gabor``) or a
precomputed array ``(n_stimuli, C, H, W)`` in a ``.npy`` file
(``--features FILE.npy``); ``--feature-cache FILE.h5`` keeps Gabor features
so a second run does not recompute them. ``--semantic FILE.npy`` gives the
semantic readout one vector per stimulus; ``--semantic open_clip:MODEL`` embeds
the images shown with CLIP instead.

Writes into ``--out``: ``metrics.json``, ``summary.txt``, ``roi_table.csv``,
``voxels.csv``, NIfTI r-maps and the best-encoder map in ``maps/``, PNG
figures in ``figures/`` and the fitted models in ``models/<encoder>.pt``
(:meth:`neuro.encoders.compare.EncoderComparison.save`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

__all__ = ["add_arguments", "check_inputs", "load_dataset", "run"]

#: The NIfTI reader's parameter names, as the flags that feed them.
_NIFTI_FLAGS = {
    "images": "--betas",
    "stimulus_ids": "--trials",
    "mask_img": "--mask",
    "labels_img": "--labels",
    "label_names": "--label-names",
}
#: The image readers' names, as the flag that feeds them.
_IMAGE_FLAGS = {"open_images": "--images", "HDF5Images": "--images", "ImageFolder": "--images"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro fit-encoder``."""
    from neuro.encoders.compare import ENCODERS

    data = parser.add_argument_group(
        "data (NIfTI or NSD-style HDF5; `neuro demo` runs on a simulated subject)"
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
    data.add_argument(
        "--average-rois",
        action="store_true",
        help="fit one column per ROI of --labels: the mean of its voxels (nilearn's "
        "NiftiLabelsMasker), instead of one per voxel",
    )
    data.add_argument(
        "--hdf5",
        type=Path,
        nargs="+",
        help="NSD-style HDF5 files of betas with stimulus ids, one per session (each its own "
        "session, in the order given)",
    )
    data.add_argument(
        "--surface",
        type=Path,
        nargs="+",
        metavar="HEMI",
        help="surface betas, left hemisphere then right: GIfTI .func.gii (one data array per "
        "trial) or FreeSurfer .mgh/.mgz; needs --trials",
    )
    data.add_argument(
        "--surface-labels",
        type=Path,
        nargs="+",
        metavar="HEMI",
        help="vertex ROI labels for --surface, left then right: .annot, .label.gii, or an integer "
        ".mgz with --label-names",
    )
    data.add_argument(
        "--nsd",
        type=Path,
        metavar="ROOT",
        help="the Natural Scenes Dataset as distributed: the folder holding nsddata/, "
        "nsddata_betas/ and nsddata_stimuli/",
    )
    data.add_argument("--subject", type=int, help="NSD subject, 1-8 (with --nsd; default 1)")
    data.add_argument(
        "--sessions", type=int, nargs="+", help="NSD sessions to read (default: all on disk)"
    )
    data.add_argument(
        "--roi-atlases",
        nargs="+",
        default=None,
        help="NSD ROI atlases naming each voxel, first wins (default: nsdgeneral), e.g. "
        "prf-visualrois floc-faces",
    )
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
        help="'gabor' (a Gabor filter bank on the images), a pretrained network by name "
        "('torchvision:resnet50', 'timm:vit_small_patch14_dinov2.lvd142m', "
        "'open_clip:ViT-B-32/openai'; needs the backbones extra), or a .npy file of feature "
        "maps (n_stimuli, C, H, W) indexed by stimulus id (default: gabor)",
    )
    model.add_argument(
        "--layer",
        help="the network layer to read with a named --features network (by default the last "
        "of its usual layers; `neuro.encoders.list_layers(NAME)` lists them)",
    )
    model.add_argument(
        "--weights",
        type=Path,
        help="a local weights file (.pt/.pth/.safetensors) for a named --features network, "
        "instead of the library's cache",
    )
    model.add_argument(
        "--feature-cache",
        type=Path,
        help="HDF5 file caching the Gabor or network features between runs",
    )
    model.add_argument("--map-size", type=int, help="Gabor feature map side (default 16)")
    model.add_argument(
        "--image-size",
        type=int,
        help="images are resized to this side for Gabor features (default 64; a named network "
        "uses its own preprocessing)",
    )
    model.add_argument(
        "--semantic",
        help="the semantic readout's vectors: a .npy of one per stimulus (n_stimuli, D), or an "
        "open_clip model whose image embeddings to use (e.g. open_clip:ViT-B-32/openai; needs "
        "the backbones extra)",
    )
    model.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="training epochs of the readouts and deep encoders (their default)",
    )
    model.add_argument(
        "--incontext-model",
        type=Path,
        help="a meta-trained in-context encoder (InContextEncoder.save) to use for --model "
        "incontext instead of meta-training on this subject; it reads --semantic vectors of "
        "the embedding it was trained on",
    )
    model.add_argument(
        "--test-size",
        type=float,
        default=None,
        help="fraction of stimuli held out (default 0.2; with --nsd the default test set is "
        "NSD's shared images that were shown)",
    )
    model.add_argument(
        "--no-zscore",
        dest="zscore",
        action="store_false",
        help="fit the responses as given (default: z-score each voxel within each session "
        "before averaging repeats, as NSD does)",
    )
    model.add_argument(
        "--test-stimuli", type=Path, help="text file of held-out stimulus ids (one per line)"
    )


#: Options naming an input file (``--images`` may also be a folder).
_PATH_OPTIONS = (
    "betas",
    "trials",
    "mask",
    "labels",
    "label_names",
    "hdf5",
    "weights",
    "surface",
    "surface_labels",
    "incontext_model",
)


def _is_network(value: str | None) -> bool:
    """Whether an option names a network (``LIBRARY:MODEL``) rather than a file."""
    library = (value or "").partition(":")[0].strip().lower().replace("-", "_")
    return ":" in (value or "") and library in ("torchvision", "timm", "open_clip", "openclip")


def _refuse(args: argparse.Namespace, flags, why: str) -> None:
    """Refuse the NIfTI-only ``flags`` given with another data source, saying ``why``."""
    from neuro.errors import InputError

    given = [f for f in flags if getattr(args, f[2:].replace("-", "_"))]
    if given:
        raise InputError(f"{', '.join(given)} go with --betas (NIfTI); {why}. Drop them.")


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def check_inputs(args: argparse.Namespace) -> None:
    """Refuse missing data options and missing or empty input files, before reading any.

    Raises
    ------
    InputError
        No data options (the simulated run is ``neuro demo``), ``--betas``
        with ``--hdf5`` or without ``--trials``, or a path that does not exist
        or is empty, named by its flag.
    """
    from neuro._validation import check_file, check_float, check_int
    from neuro.errors import InputError

    named_network = _is_network(args.features)
    if named_network and (args.image_size is not None or args.map_size is not None):
        raise InputError(
            "--image-size and --map-size set the Gabor features; a named network in --features "
            "resizes the images with its own preprocessing. Drop them, or use --features gabor."
        )
    if args.image_size is None and not named_network:
        args.image_size = 64
    if args.map_size is None and not named_network:
        args.map_size = 16
    if args.image_size is not None:
        check_int("--image-size", args.image_size, minimum=16)
    if args.map_size is not None:
        check_int("--map-size", args.map_size, minimum=1)
    if args.test_size is not None and args.test_stimuli is not None:
        raise InputError(
            "--test-size and --test-stimuli both choose the held-out stimuli; give one of them."
        )
    if args.feature_cache is not None and args.features.endswith(".npy"):
        raise InputError(
            "--feature-cache keeps computed features (Gabor or a named network); features given "
            "as a .npy file are read as they are. Drop --feature-cache."
        )
    if args.epochs is not None:
        check_int("--epochs", args.epochs, minimum=1)
    if args.incontext_model is not None and "incontext" not in (args.model or []):
        raise InputError(
            "--incontext-model is the encoder for --model incontext; add incontext to --model."
        )
    sources = [
        f
        for f, d in (
            ("--betas", "betas"),
            ("--hdf5", "hdf5"),
            ("--nsd", "nsd"),
            ("--surface", "surface"),
        )
        if getattr(args, d) is not None
    ]
    if len(sources) > 1:
        raise InputError(f"Give one data source ({' or '.join(sources)}), not several.")
    if args.nsd is not None:
        _refuse(
            args,
            ("--trials", "--mask", "--labels", "--label-names", "--average-rois"),
            "--nsd reads NSD's own design, brain mask and ROI atlases (choose them with "
            "--roi-atlases and --rois)",
        )
        if not Path(args.nsd).expanduser().is_dir():
            check_file("--nsd", args.nsd, folder=True)
    elif args.sessions is not None or args.roi_atlases is not None or args.subject is not None:
        raise InputError(
            "--subject, --sessions and --roi-atlases go with --nsd; drop them, or give --nsd."
        )
    if args.test_size is not None:
        check_float(
            "--test-size",
            args.test_size,
            minimum=0.0,
            maximum=1.0,
            strict_minimum=True,
            strict_maximum=True,
        )
    if not _is_network(args.features) and (args.layer is not None or args.weights is not None):
        raise InputError(
            "--layer and --weights go with a named network in --features (e.g. --features "
            "torchvision:resnet50 --layer layer3); drop them, or name a network."
        )
    if args.hdf5 is not None:  # every option given is used or refused
        _refuse(
            args,
            ("--trials", "--mask", "--labels", "--label-names", "--average-rois"),
            "an --hdf5 session holds its own stimulus ids, voxel positions and ROI labels",
        )
    if args.surface is not None:
        _refuse(
            args,
            ("--mask", "--labels", "--average-rois"),
            "surface ROIs come from --surface-labels",
        )
        if len(args.surface) > 2 or (
            args.surface_labels and len(args.surface_labels) != len(args.surface)
        ):
            raise InputError(
                "--surface takes one file per hemisphere (left, then right), and "
                "--surface-labels one per --surface file, in the same order."
            )
        if args.trials is None:
            raise InputError(
                "--surface needs --trials: a TSV with a stimulus_id column, one row per trial."
            )
    elif args.surface_labels is not None:
        raise InputError("--surface-labels go with --surface; drop them, or give --surface.")
    if args.average_rois and args.labels is None:
        raise InputError(
            "--average-rois averages the voxels of each ROI of --labels; give --labels "
            "(an integer ROI image) with it."
        )
    if args.betas is not None and args.trials is None:
        raise InputError(
            "--betas needs --trials: a TSV with a stimulus_id column, one row per volume."
        )
    for dest in _PATH_OPTIONS:
        value = getattr(args, dest)
        for path in value if isinstance(value, list) else [value]:
            if path is not None:
                check_file(_flag(dest), path)
    if args.images is not None:
        check_file("--images", args.images, folder=Path(args.images).is_dir())
    if args.features != "gabor" and not _is_network(args.features):
        check_file("--features", args.features, suffixes=(".npy",))
    if args.semantic is not None and not _is_network(args.semantic):
        check_file("--semantic", args.semantic, suffixes=(".npy",))
    if args.test_stimuli is not None:
        check_file("--test-stimuli", args.test_stimuli)
    if not sources:
        raise InputError(
            "no data given: pass --betas FILE.nii.gz with --trials FILE.tsv (NIfTI), --surface "
            "LH RH with --trials (GIfTI/MGH), --nsd ROOT (the Natural Scenes Dataset as "
            "distributed), or --hdf5 FILE (NSD-style), with --images. To try the encoders on a simulated subject, run `neuro demo` (or write "
            "one to disk with `neuro simulate-fmri`)."
        )


def _read(flag: str, path, reader, what: str):
    """``reader(path)``, with a file it cannot read reported in one line under ``flag``."""
    from neuro.errors import InputError, UnreadableFileError

    try:
        return reader(path)
    except InputError:
        raise
    except (OSError, ValueError, EOFError, UnicodeDecodeError) as err:
        raise UnreadableFileError(
            f"{flag}: {str(path)!r} is not {what} ({type(err).__name__}: {err}). Check the file."
        ) from None


def read_npy(flag: str, path) -> np.ndarray:
    """The array in the .npy file an option names (no pickle); one line if unreadable."""
    return _read(flag, path, lambda p: np.load(p, allow_pickle=False), "a readable .npy array")


def read_label_names(path: Path | None):
    """``{index: name}`` from the ``--label-names`` TSV (columns index, name); None without one."""
    if path is None:
        return None
    import pandas as pd

    from neuro.errors import InputError

    table = _read("--label-names", path, lambda p: pd.read_csv(p, sep="\t"), "a readable TSV")
    if not {"index", "name"} <= set(table.columns):
        raise InputError(
            f"--label-names {path} must be a TSV with columns 'index' and 'name'; it has "
            f"{list(table.columns)}."
        )
    return {int(i): str(n) for i, n in zip(table["index"], table["name"], strict=True)}


def load_dataset(args: argparse.Namespace):
    """The :class:`~data_loaders.fmri.FMRIDataset` the options describe.

    Returns ``(dataset, semantic)``: ``semantic`` is the ``--semantic`` array
    or None. The options are checked first (:func:`check_inputs`).
    """
    from data_loaders.fmri import FMRIDataset, NSDSession, load_nifti_betas
    from neuro.cli import errors_as_flags
    from neuro.errors import InputError

    check_inputs(args)
    semantic = None
    if args.semantic is not None and not _is_network(args.semantic):
        semantic = read_npy("--semantic", args.semantic)
    if args.betas is not None:
        with errors_as_flags(_NIFTI_FLAGS):
            nifti = load_nifti_betas(
                str(args.betas),
                str(args.trials),
                mask_img=None if args.mask is None else str(args.mask),
                labels_img=None if args.labels is None else str(args.labels),
                label_names=read_label_names(args.label_names),
                rois=args.rois,
                average_rois=args.average_rois,
            )
        # the sessions come from the trial table's session column, as on the Python path
        with errors_as_flags(_IMAGE_FLAGS):
            dataset = nifti.to_dataset(
                stimuli=None if args.images is None else str(args.images),
                name=args.betas.name.split(".")[0],
            )
        return dataset, semantic
    if args.surface is not None:
        from data_loaders.fmri import load_surface_betas

        hemis = ("left", "right")[: len(args.surface)]
        labels = None
        if args.surface_labels:
            labels = {h: str(p) for h, p in zip(hemis, args.surface_labels, strict=True)}
        flags = {"left": "--surface", "right": "--surface", "trials": "--trials"}
        flags.update({"labels": "--surface-labels", "label_names": "--label-names"})
        with errors_as_flags(flags):
            surf = load_surface_betas(
                str(args.surface[0]),
                None if len(args.surface) == 1 else str(args.surface[1]),
                str(args.trials),
                labels=labels,
                label_names=read_label_names(args.label_names),
                rois=args.rois,
            )
        with errors_as_flags(_IMAGE_FLAGS):
            dataset = surf.to_dataset(
                stimuli=None if args.images is None else str(args.images),
                name=args.surface[0].name.split(".")[0],
            )
        return dataset, semantic
    if args.nsd is not None:
        from data_loaders.fmri import NSDSubject

        with errors_as_flags(_IMAGE_FLAGS):
            subject = NSDSubject(
                args.nsd,
                subject=1 if args.subject is None else args.subject,
                sessions=args.sessions,
                rois=args.rois,
                roi_atlases=tuple(args.roi_atlases or ("nsdgeneral",)),
                stimuli="auto" if args.images is None else str(args.images),
            )
        dataset = subject.to_dataset()
        shown = np.intersect1d(subject.shared_stimuli, dataset.stimulus_ids)
        # NSD's shared images are its test set (as in the NSD papers and challenges)
        args._nsd_test_stimuli = shown if len(shown) >= 5 else None
        return dataset, semantic
    parts = []
    for number, path in enumerate(args.hdf5, start=1):
        with NSDSession(path, rois=args.rois) as session, errors_as_flags(_IMAGE_FLAGS):
            if session.stimulus_ids is None:
                raise InputError(
                    f"--hdf5 {path.name} holds only betas, as NSD's own betas_sessionYY.hdf5 "
                    "files do; which image each trial showed is in NSD's design file. Use --nsd "
                    "NSD_ROOT --subject N --sessions YY instead."
                )
            parts.append(
                session.to_dataset(
                    stimuli=None if args.images is None else str(args.images),
                    session=number,
                    drop_bad=len(args.hdf5) == 1,
                )
            )
    if len(parts) == 1:
        return parts[0], semantic
    with errors_as_flags({"datasets": "--hdf5"}):
        dataset = FMRIDataset.concatenate(parts)
    return dataset, semantic


def _clip_semantic(args: argparse.Namespace, dataset) -> np.ndarray:
    """CLIP image embeddings of the stimuli shown, in rows indexed by stimulus id."""
    from neuro.errors import InputError

    if dataset.stimuli is None:
        raise InputError(
            f"--semantic {args.semantic} embeds the stimulus images; give --images, or a .npy "
            "of semantic vectors."
        )
    from data_loaders.stimuli import ImageSubset
    from neuro.encoders.backbones import clip_embeddings

    ids = np.unique(dataset.stimulus_ids)
    try:
        vectors = clip_embeddings(
            ImageSubset(dataset.stimuli, ids), args.semantic, device=args.device
        )
    except (ImportError, InputError) as err:  # no backbones extra, no weights, a bad name
        kind = type(err) if isinstance(err, InputError) else InputError
        raise kind(f"--semantic {args.semantic}: {err}") from None
    rows = np.zeros((int(ids[-1]) + 1, vectors.shape[1]), dtype=np.float32)
    rows[ids] = vectors  # only the rows of the stimuli shown are ever read
    return rows


def run(args: argparse.Namespace) -> int:
    """Entry point of ``neuro fit-encoder``.

    Under ``torchrun`` or SLURM with several processes, the voxels are split
    across them (:func:`neuro.encoders.distributed.compare_encoders_sliced`;
    ridge only, which is the default model there) and rank 0 writes ``--out``.
    """
    from neuro.cli import errors_as_flags
    from neuro.encoders.compare import compare_encoders, shown_stimuli_only
    from neuro.errors import InputError
    from neuro.train.distributed import is_rank_zero, world_size

    models = args.model or ["ridge", "gaussian"]
    models = list(dict.fromkeys(models))
    if args.incontext_model is not None:  # a meta-trained encoder replaces the named one
        from neuro.encoders.incontext import InContextEncoder

        with errors_as_flags({"path": "--incontext-model"}):
            trained = InContextEncoder.load(args.incontext_model)
        trained.set_params(device=args.device, verbose=max(args.verbose - 1, 0))
        models = [("incontext", trained) if m == "incontext" else m for m in models]
    dataset, semantic = load_dataset(args)
    if args.semantic is not None and _is_network(args.semantic):
        semantic = _clip_semantic(args, dataset)
    named_network = _is_network(args.features)
    if dataset.stimuli is None and (args.features == "gabor" or named_network):
        what = "Network" if named_network else "Gabor"
        raise InputError(
            f"{what} features need the stimulus images: give --images (a folder, HDF5 brick or "
            ".npy), or precomputed feature maps with --features FILE.npy."
        )
    size = (args.image_size, args.image_size)
    extractor = key = None
    if named_network:
        from neuro.encoders.backbones import list_layers, load_backbone

        with errors_as_flags({"name": "--features", "layers": "--layer", "weights": "--weights"}):
            try:
                layer = args.layer or list_layers(args.features)[-1]
                every = list_layers(args.features, all=True)  # built without weights
            except ImportError as err:  # the backbones extra is not installed
                raise InputError(f"--features {args.features}: {err}") from None
            if layer not in every:  # before any weights are read or downloaded
                import difflib

                close = difflib.get_close_matches(layer, every, n=3)
                raise InputError(
                    f"--layer {layer!r} is not a layer of {args.features}; close names: {close}. "
                    f"Its usual layers: {list_layers(args.features)}."
                )
            extractor = load_backbone(
                args.features,
                weights="default" if args.weights is None else str(args.weights),
                layers=[layer],
                device=args.device,
            )
        size = None  # the network's own preprocessing resizes the images
        key = "net_" + "".join(c if c.isalnum() else "_" for c in f"{args.features}_{layer}")
    elif args.features == "gabor":
        from neuro.encoders.features import GaborFeatures

        extractor = GaborFeatures(
            map_size=args.map_size, image_size=args.image_size, device=args.device
        )
        key = f"gabor_{args.image_size}px_map{args.map_size}"
    readout_kwargs = {} if args.epochs is None else {"epochs": args.epochs}
    test_stimuli = None
    if args.test_stimuli is not None:
        test_stimuli = _read(
            "--test-stimuli",
            args.test_stimuli,
            lambda p: np.loadtxt(p, dtype=np.int64, ndmin=1),
            "a text file of integer stimulus ids, one per line",
        )
    elif args.test_size is None:  # NSD's shared images, when --nsd gave them
        test_stimuli = getattr(args, "_nsd_test_stimuli", None)
    features = extractor
    if extractor is None:
        features = read_npy("--features", args.features)
    else:  # features (and their cache) only for the images shown: NSD shows 10k of its 73k
        with errors_as_flags({"semantic": "--semantic"}):
            dataset, test_stimuli, semantic = shown_stimuli_only(dataset, test_stimuli, semantic)
        if args.feature_cache is not None and world_size() == 1:
            from neuro.encoders.features import cached_features

            features = cached_features(
                extractor, dataset.stimuli, args.feature_cache, key=key, overwrite=args.overwrite
            )
            if isinstance(features, dict):  # a network's layers by name
                features = next(iter(features.values()))
    common = dict(
        semantic=semantic,
        test_size=0.2 if args.test_size is None else args.test_size,
        test_stimuli=test_stimuli,
        seed=args.seed,
        device=args.device,
        readout_kwargs=readout_kwargs,
        image_size=size,
        verbose=args.verbose,
        zscore=args.zscore,
    )
    if world_size() > 1:  # under torchrun / SLURM: each process fits a slice of the voxels
        from neuro.encoders.distributed import compare_encoders_sliced

        if args.model is None:
            models = ["ridge"]  # the readouts train all voxels together; ridge splits exactly
        if is_rank_zero():
            print(f"neuro fit-encoder: {dataset}, voxels split over {world_size()} processes")
        result = compare_encoders_sliced(
            dataset,
            models,
            features=features,
            feature_cache=None if extractor is None else args.feature_cache,
            feature_key=key,
            out=args.out,
            overwrite=True,  # the folder was checked by rank 0 before any process started
            cache_overwrite=args.overwrite,
            **common,
        )
        if result is None:  # not rank 0: rank 0 wrote the results
            return 0
    else:
        print(f"neuro fit-encoder: {dataset}")
        result = compare_encoders(dataset, models, features=features, **common)
        result.save(args.out, overwrite=args.overwrite)
    print(result.format_table())
    print(f"wrote {args.out}")
    return 0
