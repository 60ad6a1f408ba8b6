"""BraInCoRL in-context encoder: meta-train on several subjects, write a held-out subject's voxels.

Simulates several subjects whose category-selective voxels (FFA, PPA, LOC,
VWFA) share tuning families (or reads your subjects from --subject-data),
meta-trains ``neuro.encoders.InContextEncoder`` on all subjects but the
--held-out one, and then, on the held-out subject, compares the in-context
encoder (no gradient step: its transformer reads K of the subject's images
and responses and writes each voxel's linear encoder) with ``VoxelRidgeCV``
fitted on the same K images. Writes into --out:

* ``scaling_curve.csv`` (one row per model, K and repeat) and
  ``scaling_means.csv`` (one row per K, with the better model), and
  ``figures/scaling_curve.png`` (noise-normalised accuracy against K);
* ``support_attention.csv`` and ``figures/support_attention.png``: which
  support images one voxel's encoder leans on (--voxel, default the best
  predicted);
* ``model.pt``, the meta-trained encoder, which ``neuro fit-encoder --model
  incontext --incontext-model DIR/model.pt --semantic EMB.npy`` uses on another
  subject's data; ``metrics.json`` and ``summary.txt``.

The small default (5 simulated subjects, 300 images, a 24-number CLIP-like
embedding, the network at d_model 32) runs in about a minute on a CPU:

    python scripts/incontext_encoder.py --out runs/incontext_encoder [--epochs 80]
    python scripts/incontext_encoder.py --subject-data s1.npz s2.npz s3.npz --out runs/ic

Each --subject-data file is what ``numpy.savez(path, X=..., Y=...)`` writes:
``X`` (n_images, E), the images' embeddings (e.g. CLIP; the same model for
every subject), ``Y`` (n_images, n_voxels), that subject's responses
(repeat-averaged), and optionally ``ceiling`` (n_voxels,), the noise ceiling
of ``Y`` as a fraction of variance, and ``image_ids`` (n_images,), which
images they are (shared images of the held-out subject's test set are then
left out of meta-training). ``--paper-size`` trains the paper's network
(about 100M parameters; for GPUs).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

PROG = "incontext_encoder"
#: The network and meta-training settings that train in seconds on a CPU (the measured default).
SMALL = {
    "d_model": 32,
    "n_layers": 2,
    "n_heads": 4,
    "k_min": 4,
    "k_max": 100,
    "n_query": 40,
    "batch_size": 16,
    "lr": 3e-3,
}
#: The paper's meta-training (support sizes 30-500, 100 query images, AdamW 1e-4, decay 0.1).
PAPER = {"k_min": 30, "k_max": 500, "n_query": 100, "batch_size": 64, "lr": 1e-4}
#: Simulation options and their defaults (refused with --subject-data).
SIM_DEFAULTS = {
    "subjects": 5,
    "stimuli": 300,
    "image_size": 32,
    "voxels_per_roi": 8,
    "snr": 1.0,
    "category_tuning": 0.7,
    "families": 3,
    "embed_dim": 24,
}
DEFAULT_EPOCHS = 40


def build_parser() -> argparse.ArgumentParser:
    """The script's options (data, simulation, model, evaluation and the common options).

    Returns
    -------
    argparse.ArgumentParser
    """
    from neuro.cli import add_common_arguments

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Meta-train the BraInCoRL in-context encoder on several subjects (simulated "
        "by default) and compare it with ridge on a held-out subject as the support size K "
        "grows; write the scaling curve, support attention and the model.",
    )
    data = parser.add_argument_group("your data (default: simulated subjects)")
    data.add_argument(
        "--subject-data",
        type=Path,
        nargs="+",
        metavar="NPZ",
        help="one .npz per subject holding X (n_images, E) embeddings and Y (n_images, "
        "n_voxels) responses, optionally ceiling (n_voxels,) and image_ids (n_images,)",
    )
    data.add_argument(
        "--held-out",
        type=int,
        default=-1,
        help="index of the subject to hold out (0 = the first; -1 = the last)",
    )
    sim = parser.add_argument_group("simulation")
    sim.add_argument("--subjects", type=int, help="simulated subjects (default 5)")
    sim.add_argument("--stimuli", type=int, help="distinct images, seen by all (default 300)")
    sim.add_argument("--image-size", type=int, help="image side in pixels (default 32)")
    sim.add_argument("--voxels-per-roi", type=int, help="voxels per ROI and hemisphere (default 8)")
    sim.add_argument("--snr", type=float, help="median single-trial SNR (default 1.0)")
    sim.add_argument(
        "--category-tuning",
        type=float,
        help="share of category voxels' signal from the appearance of their content, in [0, 1] "
        "(default 0.7)",
    )
    sim.add_argument(
        "--families", type=int, help="tuning families shared across subjects (default 3)"
    )
    sim.add_argument(
        "--embed-dim", type=int, help="length of the simulated CLIP-like embedding (default 24)"
    )
    model = parser.add_argument_group("model and evaluation")
    model.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help="meta-training epochs (passes over the training voxels), with early stopping",
    )
    model.add_argument(
        "--paper-size",
        action="store_true",
        help="the paper's network (d_model 640, 20 layers; support sizes 30-500, lr 1e-4; for "
        "GPUs) instead of the small one (d_model 32, 2 layers)",
    )
    model.add_argument(
        "--ks",
        type=int,
        nargs="+",
        default=[10, 25, 50, 100, 200],
        metavar="K",
        help="support sizes of the scaling curve (those above the images available are skipped)",
    )
    model.add_argument("--repeats", type=int, default=2, help="random support draws per K")
    model.add_argument(
        "--test-size", type=float, default=0.2, help="fraction of the held-out subject's images"
    )
    model.add_argument(
        "--voxel",
        type=int,
        help="held-out voxel whose support attention is shown (default: the best predicted)",
    )
    model.add_argument(
        "--support-k", type=int, default=25, help="support size for the support attention"
    )
    model.add_argument("--top", type=int, default=6, help="support images to list and show")
    parser.add_argument(
        "--no-figures", dest="figures", action="store_false", help="write the tables only"
    )
    add_common_arguments(parser, PROG)
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse inconsistent or out-of-range options before anything is read or computed.

    Fills in the simulation defaults when no --subject-data is given.

    Raises
    ------
    InputError
        Simulation options with --subject-data, a single subject, a missing
        file, or a number out of range.
    """
    from neuro._validation import check_file, check_float, check_int
    from neuro.errors import InputError

    check_int("--epochs", args.epochs, minimum=1)
    check_int("--repeats", args.repeats, minimum=1)
    check_int("--support-k", args.support_k, minimum=2)
    check_int("--top", args.top, minimum=1)
    check_int("--voxel", args.voxel, minimum=0, allow_none=True)
    for k in args.ks:
        check_int("--ks", k, minimum=2)
    check_float("--test-size", args.test_size, minimum=0.0, maximum=0.5, strict_minimum=True)
    sim_given = [f"--{k.replace('_', '-')}" for k in SIM_DEFAULTS if getattr(args, k) is not None]
    if args.subject_data is None:
        for key, value in SIM_DEFAULTS.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
        check_int("--subjects", args.subjects, minimum=2)
        check_int("--stimuli", args.stimuli, minimum=40)
        check_int("--image-size", args.image_size, minimum=16)
        check_int("--voxels-per-roi", args.voxels_per_roi, minimum=1)
        check_float("--snr", args.snr, minimum=0.0, strict_minimum=True)
        check_float("--category-tuning", args.category_tuning, minimum=0.0, maximum=1.0)
        check_int("--families", args.families, minimum=1)
        check_int("--embed-dim", args.embed_dim, minimum=2)
        n_subjects = args.subjects
    else:
        if sim_given:
            raise InputError(
                f"{', '.join(sim_given)} set the simulation; with --subject-data the data are "
                "yours. Drop them."
            )
        if len(args.subject_data) < 2:
            raise InputError(
                "--subject-data needs at least 2 files: the encoder is meta-trained on the other "
                "subjects and tested on the --held-out one."
            )
        for path in args.subject_data:
            check_file("--subject-data", path, suffixes=(".npz",))
        n_subjects = len(args.subject_data)
    if not -n_subjects <= args.held_out < n_subjects:
        raise InputError(
            f"--held-out {args.held_out} is not a subject: there are {n_subjects} (give 0 to "
            f"{n_subjects - 1}, or -1 for the last)."
        )


def simulate(args: argparse.Namespace):
    """Simulated subjects' category voxels and a CLIP-like embedding of the images they saw.

    Only the category-selective voxels are kept: early visual voxels pool
    contrast energy in a receptive field, which a semantic embedding does
    not carry (no linear encoder on it can predict them).

    Returns
    -------
    subjects : list of dict
        Per subject: ``name``, ``X`` (n_images, E), ``Y`` (n_images,
        n_voxels) repeat-averaged responses, ``ceiling`` (the planted noise
        ceiling of a 3-trial average), ``image_ids``, ``roi``, ``family``.
    images : ndarray (n_images, size, size, 3)
    categories : list of str
        Each image's category.
    """
    from data_loaders.fmri.repeats import average_repeats
    from data_loaders.simulate.fmri import CATEGORIES, simulate_fmri

    sim = simulate_fmri(
        n_subjects=args.subjects,
        n_stimuli=args.stimuli,
        image_size=args.image_size,
        voxels_per_roi=args.voxels_per_roi,
        snr=args.snr,
        seed=args.seed,
        category_tuning=args.category_tuning,
        n_families=args.families,
    )
    embedding = sim.stimuli.semantic_embedding(dim=args.embed_dim, appearance=True, seed=args.seed)
    subjects = []
    for subject in sim.subjects:
        keep = subject.family >= 0  # the category voxels
        y, ids, counts = average_repeats(subject.betas, subject.stimulus_ids)
        subjects.append(
            {
                "name": subject.name,
                "X": embedding[ids],
                "Y": y[:, keep],
                "ceiling": subject.true_noise_ceiling(counts)[keep],
                "image_ids": ids,
                "roi": subject.roi_labels[keep],
                "family": subject.family[keep],
            }
        )
    categories = [CATEGORIES[c] for c in sim.stimuli.categories]
    return subjects, sim.stimuli.images, categories


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of one --subject-data file (no pickled objects)."""
    from data_loaders.errors import one_line
    from neuro.errors import UnreadableFileError

    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise UnreadableFileError(
            f"--subject-data: {str(path)!r} is not a readable .npz file ({one_line(err)}). Write "
            "it with numpy.savez(path, X=embeddings, Y=responses)."
        ) from None


def load(args: argparse.Namespace) -> list[dict]:
    """The --subject-data subjects, checked.

    Returns
    -------
    list of dict
        As :func:`simulate`'s subjects (``roi`` and ``family`` are None;
        ``ceiling`` and ``image_ids`` None where the file has none).

    Raises
    ------
    InputError
        A missing ``X`` or ``Y``, arrays of the wrong shape or with NaNs,
        rows that do not match, or embeddings whose length differs between
        subjects.
    """
    from neuro._validation import check_array
    from neuro.errors import InputError

    subjects = []
    for path in args.subject_data:
        arrays = _read_npz(path)
        missing = [key for key in ("X", "Y") if key not in arrays]
        if missing:
            raise InputError(
                f"--subject-data {str(path)!r} has no {' or '.join(missing)} (it holds "
                f"{sorted(arrays) or 'nothing'}); save it with numpy.savez(path, X=embeddings "
                "(n_images, E), Y=responses (n_images, n_voxels))."
            )
        tag = f"--subject-data {path.name}:"
        x = check_array(f"{tag} X", arrays["X"], ndim=2, shape_hint="(n_images, E)")
        y = check_array(f"{tag} Y", arrays["Y"], ndim=(1, 2), shape_hint="(n_images, n_voxels)")
        y = y[:, None] if y.ndim == 1 else y
        if len(x) != len(y):
            raise InputError(
                f"{tag} X has {len(x)} images but Y has {len(y)} rows; row i of Y must be the "
                "responses to image i of X."
            )
        if subjects and x.shape[1] != subjects[0]["X"].shape[1]:
            first = subjects[0]
            raise InputError(
                f"{tag} X has embeddings of length {x.shape[1]} but {first['name']} has "
                f"{first['X'].shape[1]}; embed every subject's images with the same model."
            )
        ceiling = None
        if "ceiling" in arrays:
            ceiling = check_array(f"{tag} ceiling", arrays["ceiling"], ndim=1, shape_hint="(V,)")
            if len(ceiling) != y.shape[1]:
                raise InputError(
                    f"{tag} ceiling has {len(ceiling)} values but Y has {y.shape[1]} voxels; "
                    "give one noise ceiling per voxel (or none)."
                )
        ids = None
        if "image_ids" in arrays:
            ids = np.asarray(arrays["image_ids"]).ravel()
            if len(ids) != len(x) or len(np.unique(ids)) != len(ids):
                raise InputError(
                    f"{tag} image_ids must name each of the {len(x)} images once; got "
                    f"{len(ids)} ids, {len(np.unique(ids))} distinct."
                )
        subjects.append(
            {
                "name": path.name,
                "X": x.astype(np.float32),
                "Y": y.astype(np.float32),
                "ceiling": ceiling,
                "image_ids": ids,
                "roi": None,
                "family": None,
            }
        )
    return subjects


def split_images(held: dict, others: list[dict], test_size: float, seed: int):
    """The held-out subject's test images, and the training subjects without them.

    Where every subject has ``image_ids``, training subjects lose the
    images in the held-out subject's test set (so no test image is seen in
    meta-training, even through another subject).

    Returns
    -------
    test : ndarray of int
        Row indices of the held-out subject's test images.
    training : list of (X, Y)
    """
    from neuro.errors import InputError

    n = len(held["X"])
    order = np.random.default_rng(seed).permutation(n)
    test = np.sort(order[: max(1, round(test_size * n))])
    shared = held["image_ids"] is not None and all(s["image_ids"] is not None for s in others)
    training = []
    for s in others:
        keep = np.ones(len(s["X"]), dtype=bool)
        if shared:
            keep = ~np.isin(s["image_ids"], held["image_ids"][test])
        if keep.sum() < 8:
            raise InputError(
                f"Subject {s['name']} keeps {int(keep.sum())} images once the held-out "
                "subject's test images are left out; meta-training needs at least 8 (hundreds "
                "in practice). Lower --test-size or give more images."
            )
        training.append((s["X"][keep], s["Y"][keep]))
    return test, training


def scaling_means(table):
    """One row per K: each model's mean over repeats, and which model is better.

    Parameters
    ----------
    table : pandas.DataFrame
        :meth:`~neuro.encoders.InContextEncoder.scaling_curve`'s table.

    Returns
    -------
    pandas.DataFrame
        Columns ``k``, ``incontext_r``, ``ridge_r`` (mean held-out r), with
        ``incontext_nnr`` and ``ridge_nnr`` where the table has ceilings,
        and ``better`` ("incontext" or "ridge", by mean r).
    """
    columns = ["mean_r"] + (["mean_nnr"] if "mean_nnr" in table else [])
    means = table.groupby(["k", "model"])[columns].mean().unstack("model")
    out = means.reset_index()
    out.columns = ["k"] + [
        f"{model}_{'r' if col == 'mean_r' else 'nnr'}" for col, model in means.columns
    ]
    out["better"] = np.where(out["incontext_r"] > out["ridge_r"], "incontext", "ridge")
    return out


def crossover(means) -> int | None:
    """The smallest K from which ridge is at least as good as the in-context encoder, or None."""
    better = means["better"].tolist()
    for i, k in enumerate(means["k"]):
        if all(b == "ridge" for b in better[i:]):
            return int(k)
    return None


def scaling_figure(table, name: str):
    """Accuracy against K for both models, with the spread over repeats."""
    import matplotlib.pyplot as plt

    column = "mean_nnr" if "mean_nnr" in table else "mean_r"
    label = (
        "explained / explainable variance (r² / ceiling)"
        if column == "mean_nnr"
        else "mean held-out r"
    )
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    styles = {"incontext": ("in-context (no gradient step)", "C3"), "ridge": ("ridge", "C0")}
    for model, (title, color) in styles.items():
        rows = table[table["model"] == model].groupby("k")[column]
        mean, spread = rows.mean(), rows.std().fillna(0.0)
        ax.errorbar(mean.index, mean, yerr=spread, marker="o", color=color, label=title, capsize=3)
    ax.set_xscale("log")
    ks = sorted(table["k"].unique())
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set(xlabel="support images K", ylabel=label, title=f"Held-out subject {name}")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def attention_figure(attention, responses, top, images=None, categories=None, title=""):
    """Support attention against response for one voxel, and its most attended images."""
    import matplotlib.pyplot as plt

    n_images = 0 if images is None else len(top)
    fig = plt.figure(figsize=(4 + 1.6 * n_images, 3.4))
    grid = fig.add_gridspec(2, 2 + n_images)
    ax = fig.add_subplot(grid[:, :2])
    ax.scatter(responses, attention, s=18, color="0.5")
    ax.scatter(responses[top], attention[top], s=30, color="C3", label="most attended")
    ax.set(xlabel="response (sd over the support set)", ylabel="attention", title=title)
    ax.legend(frameon=False, fontsize=8)
    for j, i in enumerate(top[:n_images]):
        axi = fig.add_subplot(grid[:, 2 + j])
        axi.imshow(np.clip(images[i], 0, 1))
        cat = "" if categories is None else f"{categories[i]}\n"
        axi.set_title(f"{cat}att {attention[i]:.3f}\nresp {responses[i]:+.2f}", fontsize=8)
        axi.axis("off")
    fig.tight_layout()
    return fig


def run(args: argparse.Namespace) -> int:
    """Simulate or load, meta-train, write the scaling curve, support attention and model."""
    from neuro.encoders.incontext import PAPER_SIZE, InContextEncoder
    from neuro.encoders.metrics import voxel_correlation
    from neuro.errors import InputError
    from neuro.io import atomic_open, atomic_write_json, atomic_write_text, prepare_output_dir
    from neuro.plotting import save_figure

    check_arguments(args)
    out = prepare_output_dir(args.out, overwrite=args.overwrite)  # refused before any work
    simulated = args.subject_data is None
    images = categories = None
    if simulated:
        subjects, images, categories = simulate(args)
    else:
        subjects = load(args)
    held_index = args.held_out % len(subjects)
    held = subjects[held_index]
    others = [s for i, s in enumerate(subjects) if i != held_index]
    n_voxels = held["Y"].shape[1]
    if args.voxel is not None and args.voxel >= n_voxels:
        raise InputError(
            f"--voxel {args.voxel} is not a voxel of {held['name']}: it has {n_voxels} (give 0 "
            f"to {n_voxels - 1})."
        )
    test, training = split_images(held, others, args.test_size, args.seed)

    size = (PAPER_SIZE | PAPER) if args.paper_size else SMALL
    encoder = InContextEncoder(
        **size,
        epochs=args.epochs,
        patience=args.epochs,  # every epoch runs; the best validation loss is kept
        device=args.device,
        random_state=args.seed,
        verbose=max(args.verbose - 1, 0),
    )
    n_train_voxels = sum(y.shape[1] for _, y in training)
    if args.verbose:
        what = "category voxels of simulated subjects" if simulated else "voxels"
        print(
            f"{PROG}: meta-training on {len(training)} subjects ({n_train_voxels} {what}), "
            f"embedding length {held['X'].shape[1]}; {held['name']} is held out "
            f"({held['Y'].shape[1]} voxels, {len(test)} test images)"
        )
    start = time.perf_counter()
    encoder.fit(training)
    seconds = time.perf_counter() - start
    encoder.save(out / "model.pt", overwrite=args.overwrite)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = encoder.scaling_curve(
            held["X"],
            held["Y"],
            ks=args.ks,
            test=test,
            ceiling_r2=held["ceiling"],
            n_repeats=args.repeats,
        )
    skipped = list(table.attrs.get("skipped_k", []))
    for w in caught:  # anything other than the skipped K is passed on
        if not str(w.message).startswith("scaling_curve skips K"):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    means = scaling_means(table)
    catch_up = crossover(means)
    with atomic_open(out / "scaling_curve.csv", "w") as fh:
        fh.write(table.to_csv(index=False))
    with atomic_open(out / "scaling_means.csv", "w") as fh:
        fh.write(means.to_csv(index=False, float_format="%.4f"))

    # support attention of one voxel: a support set of --support-k non-test images
    pool = np.setdiff1d(np.arange(len(held["X"])), test)
    rng = np.random.default_rng(args.seed)
    support = np.sort(rng.choice(pool, size=min(args.support_k, len(pool)), replace=False))
    sx, sy = held["X"][support], held["Y"][support]
    pred = encoder.predict(held["X"][test], support_X=sx, support_Y=sy)
    r = voxel_correlation(held["Y"][test], pred)
    voxel = int(np.nanargmax(r)) if args.voxel is None else args.voxel
    attention = encoder.support_attention(sx, sy)[voxel]
    responses = (sy[:, voxel] - sy[:, voxel].mean()) / (sy[:, voxel].std() + 1e-12)
    top = np.argsort(-attention)[: args.top]
    ids = held["image_ids"] if held["image_ids"] is not None else np.arange(len(held["X"]))
    import pandas as pd

    att_table = pd.DataFrame(
        {
            "rank": np.argsort(np.argsort(-attention)) + 1,
            "image_row": support,
            "image_id": ids[support],
            "attention": attention,
            "response_z": responses,
        }
    )
    if categories is not None:
        att_table["category"] = [categories[ids[i]] for i in support]
    att_table = att_table.sort_values("rank")
    with atomic_open(out / "support_attention.csv", "w") as fh:
        fh.write(att_table.to_csv(index=False, float_format="%.5f"))

    where = ""
    if held["roi"] is not None:
        where = f" ({held['roi'][voxel]}, tuning family {held['family'][voxel]})"
    if args.figures:
        save_figure(scaling_figure(table, held["name"]), out / "figures" / "scaling_curve.png")
        shown = None if images is None else images[ids[support]]
        cats = None if categories is None else [categories[ids[i]] for i in support]
        fig = attention_figure(
            attention, responses, top, shown, cats, f"voxel {voxel}{where}, K = {len(support)}"
        )
        save_figure(fig, out / "figures" / "support_attention.png")

    lines = [
        f"meta-trained on {len(training)} subjects ({n_train_voxels} voxels) for "
        f"{len(encoder.history_)} epochs in {seconds:.0f} s ({encoder.n_parameters_:,} parameters)",
        f"held-out subject {held['name']}: {n_voxels} voxels, {len(test)} test images",
        "",
        "   K   in-context r   ridge r"
        + ("   in-context nnr   ridge nnr" if "ridge_nnr" in means else "")
        + "   better",
    ]
    for row in means.itertuples():
        cells = f"{row.k:4d}   {row.incontext_r:12.3f}   {row.ridge_r:7.3f}"
        if "ridge_nnr" in means:
            cells += f"   {row.incontext_nnr:16.3f}   {row.ridge_nnr:9.3f}"
        lines.append(f"{cells}   {row.better}")
    wins = [int(k) for k in means.loc[means["better"] == "incontext", "k"]]
    lines.append("")
    lines.append(
        f"in-context wins at K = {', '.join(map(str, wins)) or 'none'}; "
        + (
            f"ridge catches up from K = {catch_up}"
            if catch_up is not None
            else "ridge does not catch up within the K tested"
        )
    )
    if skipped:
        lines.append(f"skipped K = {skipped} (more than the {len(pool)} non-test images)")
    top_text = ", ".join(
        f"image {ids[support[i]]}"
        + (f" ({categories[ids[support[i]]]})" if categories is not None else "")
        + f" {attention[i]:.3f} (response {responses[i]:+.1f} sd)"
        for i in top
    )
    lines.append(
        f"voxel {voxel}{where}, held-out r {r[voxel]:.2f} from K = {len(support)}: its encoder "
        f"leans most on {top_text}"
    )
    text = "\n".join(lines)
    print(text)
    atomic_write_text(out / "summary.txt", text + "\n")
    metrics = {
        "held_out": held["name"],
        "training_subjects": [s["name"] for s in others],
        "n_training_voxels": n_train_voxels,
        "n_held_out_voxels": n_voxels,
        "n_test_images": len(test),
        "embed_dim": int(held["X"].shape[1]),
        "n_parameters": encoder.n_parameters_,
        "epochs_trained": len(encoder.history_),
        "fit_seconds": seconds,
        "settings": {k: v for k, v in encoder.get_params().items() if k != "checkpoint_dir"},
        "scaling": means.to_dict(orient="records"),
        "skipped_k": skipped,
        "incontext_wins_at_k": wins,
        "ridge_catches_up_at_k": catch_up,
        "attention_voxel": voxel,
        "attention_support_k": len(support),
    }
    atomic_write_json(out / "metrics.json", metrics)
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
