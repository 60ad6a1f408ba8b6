"""Neuroformer on a simulated spiking circuit: pretrain, generate, read connectivity, decode.

The checks of Antoniades et al. (ICLR 2024) on a circuit whose answer is
known. Simulates a stimulus-driven circuit with planted directed connections
and a few excitatory hubs (``data_loaders.simulate.spikes``), deals its
recording into train / validation / test intervals (``split_intervals``),
pretrains :class:`neuro.spikes.Neuroformer` on the training intervals (early
stopping on the validation ones) and fits the Poisson GLM with coupling
filters, the baseline behind the same interface, on the same intervals. On
the held-out test intervals it then measures:

* next-neuron cross-entropy, beside the entropy of the firing frequencies
  (what a model that knows only how often each neuron fires scores) and the
  GLM's;
* generation: each model's spikes sampled window by window from the true
  past, against the real spikes (firing rates and pairwise correlations);
* connectivity: the AUROC against the true adjacency of the attention
  matrix, of pairwise correlations and of the GLM's couplings, the same
  within each source (each neuron's targets against its non-targets, so
  that a score of how strong a source each neuron is, and nothing more,
  is at chance), and which neurons each names as the strongest sources
  (the hubs);
* few-shot behaviour decoding: Neuroformer's behaviour head (on frozen
  features, and with the last final block fine-tuned, ``--unfreeze``)
  against the ridge decoder on binned counts, trained on the same 1%, 5%,
  10% and 100% of the training labels and averaged over ``--draws`` draws.

It writes into --out: ``metrics.json``, ``summary.txt`` (the printed table),
``connectivity_auroc.csv``, ``generation.csv``, ``behavior_few_shot.csv``,
``connectivity.npz`` (the true adjacency and the three estimates),
``models/neuroformer.pt`` (the pretrained model with its behaviour head on
all training labels) and ``figures/raster.png``, ``connectivity.png``,
``behavior_few_shot.png`` and ``training.png``. Where the GLM or the ridge
decoder does better, the printout and the figure titles say so. With
``--coupling 0`` the circuit has no connection at all (the null run): the
AUROC and hub recovery are then undefined and reported as NaN with a note.

The small default (20 neurons for 120 s, d_model 64, 8 epochs) runs in
about two minutes on a 2-core CPU:

    python scripts/neuroformer_simulated_circuit.py --out runs/neuroformer
    python scripts/neuroformer_simulated_circuit.py --coupling 0 --out runs/neuroformer_null

``--paper-size`` trains the paper's width (d_model 256, 8 heads, 6 blocks per
stage, blocks of 100 and 700 tokens, lr 1e-4, weight decay 1.0, batch 160;
for GPUs).
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

PROG = "neuroformer_simulated_circuit"
#: The small network that trains in about a minute on a CPU (the measured default).
SMALL = {"d_model": 64, "n_heads": 4, "block_size": 48, "past_block_size": 96}
#: Training settings of the small network and of ``--paper-size`` (the paper's optimiser).
SMALL_TRAINING = {"lr": 2e-3, "batch_size": 64, "weight_decay": 0.1}
PAPER_TRAINING = {"lr": 1e-4, "batch_size": 160, "weight_decay": 1.0}
#: Fewest labelled samples a few-shot fit gets (a ridge fit needs a handful).
MIN_LABELS = 4
#: Seconds of the test window drawn in the raster figure.
RASTER_SECONDS = 2.0
#: What the connectivity results say when no connection was planted (--coupling 0).
NULL_NOTE = (
    "coupling 0: the circuit has no connection, so connectivity AUROC and hub recovery are "
    "undefined (NaN); any structure in the estimates is noise"
)


def build_parser() -> argparse.ArgumentParser:
    """The script's options (simulation, model, behaviour, and the ``neuro`` common options)."""
    from neuro.cli import add_common_arguments

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Simulate a spiking circuit with planted connections and hubs, pretrain "
        "Neuroformer on it, and compare it with a Poisson GLM, correlations and a ridge decoder "
        "on held-out generation, connectivity and few-shot behaviour decoding.",
    )
    sim = parser.add_argument_group("simulation")
    sim.add_argument("--neurons", type=int, default=20, help="neurons in the circuit")
    sim.add_argument("--hubs", type=int, default=3, help="excitatory hub neurons")
    sim.add_argument("--duration", type=float, default=120.0, help="seconds recorded")
    sim.add_argument(
        "--coupling",
        type=float,
        default=1.5,
        help="coupling strength (log-rate units); 0 is the null circuit with no connection",
    )
    sim.add_argument(
        "--intervals",
        type=int,
        default=20,
        help="equal intervals dealt 80/10/10 into train, validation and test",
    )
    model = parser.add_argument_group("model")
    model.add_argument("--d-model", type=int, help="width (default 64)")
    model.add_argument("--heads", type=int, help="attention heads (default 4)")
    model.add_argument("--block-size", type=int, help="tokens per current window (default 48)")
    model.add_argument("--past-block-size", type=int, help="tokens per past window (default 96)")
    model.add_argument("--epochs", type=int, default=8, help="pretraining epochs (early stopping)")
    model.add_argument("--lr", type=float, help="learning rate (default 2e-3; paper size 1e-4)")
    model.add_argument("--batch-size", type=int, help="samples per batch (default 64; paper 160)")
    model.add_argument(
        "--paper-size",
        action="store_true",
        help="the paper's network (d_model 256, 8 heads, 6 blocks per stage, blocks of 100 and "
        "700 tokens, lr 1e-4, weight decay 1.0, batch 160; for GPUs) instead of the small one",
    )
    behavior = parser.add_argument_group("few-shot behaviour decoding")
    behavior.add_argument(
        "--label-fractions",
        type=float,
        nargs="+",
        default=[0.01, 0.05, 0.1, 1.0],
        metavar="F",
        help="shares of the training labels each decoder is fitted on",
    )
    behavior.add_argument(
        "--draws", type=int, default=2, help="random draws of the labelled samples per share"
    )
    behavior.add_argument(
        "--windows",
        type=int,
        default=10,
        help="history of both decoders, in windows (10 x 50 ms: 0.5 s); Neuroformer's head reads "
        "the features of that many windows, the ridge decoder that many bins of counts",
    )
    behavior.add_argument(
        "--unfreeze",
        type=int,
        default=1,
        help="also fine-tune the last N final blocks with the head (0: frozen features only)",
    )
    behavior.add_argument(
        "--finetune-steps",
        type=int,
        default=20,
        help="optimiser steps of that fine-tuning, whatever the number of labels (as whole "
        "epochs, at least one)",
    )
    behavior.add_argument(
        "--finetune-lr", type=float, default=1e-3, help="learning rate of that fine-tuning"
    )
    add_common_arguments(parser, PROG)
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse out-of-range options before anything is computed; fill in the model defaults.

    Raises
    ------
    InputError
        A number out of range, intervals too short for a sample, a share of
        labels outside (0, 1], or size flags together with --paper-size.
    """
    from neuro._validation import check_float, check_int
    from neuro.errors import InputError
    from neuro.spikes.model import PAPER_SIZE

    check_int("--neurons", args.neurons, minimum=3)
    check_int("--hubs", args.hubs, minimum=0)
    if args.hubs >= args.neurons:
        raise InputError(
            f"--hubs {args.hubs} must be below --neurons {args.neurons}; give fewer hubs."
        )
    check_float("--duration", args.duration, minimum=0.0, strict_minimum=True)
    check_float("--coupling", args.coupling, minimum=0.0)
    check_int("--intervals", args.intervals, minimum=3)
    if args.duration / args.intervals < 1.0:
        raise InputError(
            f"--duration {args.duration:g} s in --intervals {args.intervals} makes intervals of "
            f"{args.duration / args.intervals:.3g} s; each needs at least 1 s. Give fewer "
            "--intervals or a longer --duration."
        )
    check_int("--epochs", args.epochs, minimum=1)
    check_int("--draws", args.draws, minimum=1)
    check_int("--finetune-steps", args.finetune_steps, minimum=1)
    check_int("--windows", args.windows, minimum=1)
    check_float("--finetune-lr", args.finetune_lr, minimum=0.0, strict_minimum=True)
    for f in args.label_fractions:
        check_float("--label-fractions", f, minimum=0.0, maximum=1.0, strict_minimum=True)
    args.label_fractions = sorted(set(args.label_fractions))
    sizes = {"d_model": "--d-model", "heads": "--heads", "block_size": "--block-size"}
    sizes["past_block_size"] = "--past-block-size"
    if args.paper_size:
        given = [flag for key, flag in sizes.items() if getattr(args, key) is not None]
        if given:
            raise InputError(
                f"{', '.join(given)} set the small network's size; --paper-size uses the "
                "paper's. Drop one or the other."
            )
        size = dict(PAPER_SIZE)
        training = PAPER_TRAINING
    else:
        size = dict(SMALL)
        for key, name in (("d_model", "d_model"), ("heads", "n_heads")):
            if getattr(args, key) is not None:
                size[name] = check_int(sizes[key], getattr(args, key), minimum=1)
        for key in ("block_size", "past_block_size"):
            if getattr(args, key) is not None:
                size[key] = check_int(sizes[key], getattr(args, key), minimum=3)
        if size["d_model"] % size["n_heads"]:
            raise InputError(
                f"--d-model {size['d_model']} must be a multiple of --heads {size['n_heads']}; "
                "change one of them."
            )
        training = SMALL_TRAINING
    args.model_size = size
    args.lr = training["lr"] if args.lr is None else args.lr
    args.batch_size = training["batch_size"] if args.batch_size is None else args.batch_size
    args.weight_decay = training["weight_decay"]
    check_float("--lr", args.lr, minimum=0.0, strict_minimum=True)
    check_int("--batch-size", args.batch_size, minimum=1)
    n_final = size.get("n_final_layers", 1)
    check_int("--unfreeze", args.unfreeze, minimum=0, maximum=n_final)


# ----------------------------------------------------------------------------- measures
def hub_recall(estimate: np.ndarray, hubs: np.ndarray) -> float:
    """Share of the true hubs among the ``len(hubs)`` neurons with the strongest outgoing estimate.

    A neuron's outgoing strength is the mean of ``|estimate[i, j]|`` over
    its targets ``i != j`` (column ``j``, the ``[target, source]``
    convention); NaN entries are left out.

    Parameters
    ----------
    estimate : ndarray (n_neurons, n_neurons)
    hubs : ndarray of int

    Returns
    -------
    float
        In ``[0, 1]``; NaN without hubs.
    """
    if len(hubs) == 0:
        return float("nan")
    score = np.abs(np.asarray(estimate, dtype=np.float64))
    np.fill_diagonal(score, np.nan)
    observed = np.isfinite(score)
    total = np.where(observed, score, 0.0).sum(axis=0)
    count = observed.sum(axis=0)
    strength = np.where(count > 0, total / np.maximum(count, 1), -np.inf)
    top = np.argsort(-strength, kind="stable")[: len(hubs)]
    return len(set(top.tolist()) & set(np.asarray(hubs).tolist())) / len(hubs)


def connectivity_table(estimates: dict, adjacency: np.ndarray, hubs: np.ndarray):
    """AUROC and hub recall of each connectivity estimate against the truth.

    Parameters
    ----------
    estimates : dict {str: ndarray (n_neurons, n_neurons)}
        ``[target, source]`` matrices; NaN entries (never observed) count
        as chance (1 for normalised attention, 0 otherwise) in the AUROC.
    adjacency : ndarray (n_neurons, n_neurons)
        The planted couplings.
    hubs : ndarray of int

    Returns
    -------
    pandas.DataFrame
        One row per estimate: ``estimate``, ``auroc``,
        ``auroc_within_source`` (``connectivity_auroc(..., within_source=True)``: does it
        tell a source's targets from its non-targets, beyond how strong a
        source it makes each neuron?), ``hub_recall``, ``n_edges``,
        ``note``; with no edge at all (a null circuit) the AUROCs and hub
        recall are NaN and ``note`` says why.
    """
    import pandas as pd

    from neuro.spikes import connectivity_auroc

    off = ~np.eye(len(adjacency), dtype=bool)
    n_edges = int((adjacency[off] != 0).sum())
    null = n_edges == 0
    rows = []
    for name, est in estimates.items():
        fill = 1.0 if name == "attention" else 0.0
        if null:
            auroc = within = np.nan
        else:
            score = np.nan_to_num(est, nan=fill)
            auroc = connectivity_auroc(score, adjacency)
            within = connectivity_auroc(score, adjacency, within_source=True)
        rows.append(
            {
                "estimate": name,
                "auroc": auroc,
                "auroc_within_source": within,
                "hub_recall": np.nan if null else hub_recall(est, hubs),
                "n_edges": n_edges,
                "note": NULL_NOTE if null else "",
            }
        )
    return pd.DataFrame(rows)


def concatenated(parts, n_neurons: int, t_start: float, t_stop: float):
    """One :class:`~data_loaders.spikes.SpikeTrains` of spike trains over disjoint intervals."""
    from data_loaders.spikes import SpikeTrains

    return SpikeTrains.from_arrays(
        np.concatenate([p.neuron_ids for p in parts]),
        np.concatenate([p.times for p in parts]),
        n_neurons=n_neurons,
        t_start=t_start,
        t_stop=t_stop,
    )


def label_pool(nf, intervals) -> np.ndarray:
    """The training samples (window ends, seconds) of ``nf`` in ``intervals``, in time order."""
    parts = []
    for a, b in intervals:
        if b - a >= nf.past_window + nf.window:
            parts.append(nf.tokenizer_.anchors(a, b, nf.stride))
    return np.concatenate(parts)


def few_shot(
    nf, recording, split, fractions, draws, windows, unfreeze, finetune, seed, device, verbose=0
):
    """Behaviour decoding on a share of the training labels: Neuroformer's head vs ridge.

    For each share ``f``, ``max(round(f * n), MIN_LABELS)`` of the ``n``
    training samples are drawn (``draws`` times, once at 100%). Both
    decoders are fitted on the same samples and read the same history:
    Neuroformer's head on the features of the ``windows`` windows up to each
    drawn sample (frozen, and with the last ``unfreeze`` final blocks
    fine-tuned for about ``finetune["steps"]`` optimiser steps at
    ``finetune["lr"]``, so that few labels get as many updates as many), the
    ridge decoder on ``windows`` bins of counts of the same width, at the
    same times (``RidgeDecoder.fit(times=nf.behavior_times_)``). Both are
    scored on the test intervals (Pearson r, averaged over behaviour
    variables).

    Parameters
    ----------
    nf : Neuroformer
        Pretrained; its behaviour head is refitted at every step.
    recording : AlignedRecording
    split : IntervalSplit
    fractions : list of float
    draws : int
    windows : int
        History of both decoders, in windows of ``nf.window`` seconds.
    unfreeze : int
        0: the frozen head only.
    finetune : dict
        ``{"steps": int, "lr": float}``.
    seed : int
    device : str
        Of the ridge decoder.
    verbose : int, default=0
        1 prints each draw's scores.

    Returns
    -------
    pandas.DataFrame
        One row per share, decoder and draw: ``fraction``, ``decoder``,
        ``draw``, ``n_labels``, ``r``.
    """
    import pandas as pd

    from neuro.spikes import RidgeDecoder

    n_pool = len(label_pool(nf, split.train))
    heads = [("neuroformer", 0)] + (
        [(f"neuroformer_unfreeze{unfreeze}", unfreeze)] if unfreeze else []
    )
    rows = []
    for fraction in fractions:
        k = min(max(round(fraction * n_pool), MIN_LABELS), n_pool)
        for draw in range(draws if k < n_pool else 1):
            nf.set_params(random_state=seed + 1000 * draw + k)  # which samples are labelled
            for name, n_blocks in heads:
                per_epoch = math.ceil(k / min(nf.batch_size, k))
                epochs = max(round(finetune["steps"] / per_epoch), 1)
                nf.fit_behavior(
                    recording,
                    split.train,
                    max_samples=k,
                    n_windows=windows,
                    unfreeze=n_blocks,
                    epochs=epochs,
                    lr=finetune["lr"],
                )
                r = float(np.mean(nf.behavior_score(recording, split.test)))
                rows.append([fraction, name, draw, nf.n_behavior_samples_, r])
            ridge = RidgeDecoder(n_lags=windows, bin_size=nf.window, device=device)
            ridge.fit(recording, times=nf.behavior_times_)
            r = float(np.mean(ridge.correlation_score(recording, split.test)))
            rows.append([fraction, "ridge", draw, ridge.n_samples_fit_, r])
            if verbose:
                shown = ", ".join(f"{row[1]} {row[4]:.2f}" for row in rows[-len(heads) - 1 :])
                print(f"  behaviour, {k} labels (draw {draw}): r {shown}", flush=True)
    nf.set_params(random_state=seed)
    return pd.DataFrame(rows, columns=["fraction", "decoder", "draw", "n_labels", "r"])


def behavior_curve(table):
    """Mean and sd over draws of each decoder's r at each share of labels."""
    grouped = table.groupby(["decoder", "fraction"], sort=False)
    out = grouped.agg(
        n_labels=("n_labels", "first"), r_mean=("r", "mean"), r_sd=("r", "std"), draws=("r", "size")
    )
    out["r_sd"] = out["r_sd"].fillna(0.0)
    return out.reset_index()


def better(name_a, a, name_b, b, higher=True) -> str:
    """Which of two scores is better, as ``"a"``, ``"b"`` or ``"tie"`` (within 0.01)."""
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or abs(a - b) < 0.01:
        return "tie"
    return name_a if (a > b) == higher else name_b


# ----------------------------------------------------------------------------- figures
def raster_figure(panels: dict, window: tuple[float, float], hubs):
    """True and generated rasters of the same test window, one panel each, hubs in red.

    Parameters
    ----------
    panels : dict {str: SpikeTrains}
        Title -> spikes (the true ones first).
    window : (float, float)
        Seconds shown.
    hubs : array of int

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 1.8 * len(panels)), sharex=True)
    axes = np.atleast_1d(axes)
    hub = set(np.asarray(hubs).tolist())
    for ax, (title, spikes) in zip(axes, panels.items(), strict=True):
        part = spikes.window(*window)
        colors = ["tab:red" if i in hub else "black" for i in part.neuron_ids.tolist()]
        ax.scatter(part.times, part.neuron_ids, marker="|", s=40, c=colors, linewidths=1.0)
        ax.set_ylim(-0.5, spikes.n_neurons - 0.5)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("neuron")
        ax.set_title(title, fontsize=10)
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(*window)
    fig.tight_layout()
    return fig


def connectivity_figure(adjacency, estimates: dict, table, title: str):
    """The true adjacency beside each estimate, titled with its AUROC.

    Parameters
    ----------
    adjacency : ndarray (n_neurons, n_neurons)
    estimates : dict {str: ndarray}
    table : pandas.DataFrame
        :func:`connectivity_table` of the estimates.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    auroc = dict(zip(table["estimate"], table["auroc"], strict=True))
    fig, axes = plt.subplots(1, 1 + len(estimates), figsize=(3.6 * (1 + len(estimates)), 3.8))
    lim = max(float(np.abs(adjacency).max()), 1e-9)
    im = axes[0].imshow(adjacency, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[0].set_title("true adjacency", fontsize=10)
    fig.colorbar(im, ax=axes[0], shrink=0.75)
    for ax, (name, est) in zip(axes[1:], estimates.items(), strict=True):
        shown = np.array(est, dtype=np.float64)
        np.fill_diagonal(shown, np.nan)
        if name == "attention":
            im = ax.imshow(shown, cmap="viridis")
            label = "attention (x chance)"
        else:
            m = max(float(np.nanmax(np.abs(shown))) if np.isfinite(shown).any() else 0.0, 1e-9)
            im = ax.imshow(shown, cmap="RdBu_r", vmin=-m, vmax=m)
            label = "correlation" if name == "correlation" else "GLM coupling"
        value = auroc[name]
        ax.set_title(
            f"{label}\nAUROC {value:.2f}" if np.isfinite(value) else f"{label}\nAUROC undefined",
            fontsize=10,
        )
        fig.colorbar(im, ax=ax, shrink=0.75)
    for ax in axes:
        ax.set_xlabel("source j")
        ax.set_ylabel("target i")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def behavior_figure(curve, title: str):
    """Held-out decoding r against the share of training labels, one line per decoder."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, part in curve.groupby("decoder", sort=False):
        ax.errorbar(
            100 * part["fraction"],
            part["r_mean"],
            yerr=part["r_sd"],
            marker="o",
            capsize=3,
            label=name,
        )
    ax.set_xscale("log")
    ax.set_xlabel("training labels used (%)")
    ax.set_ylabel("held-out Pearson r")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.legend(fontsize=9)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def training_figure(history):
    """The training (solid) and validation (dashed) losses against the epoch."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    first = history[0] if history else {}
    parts = [k.removeprefix("train_") for k in first if k.startswith("train_")]
    parts = [p for p in parts if p.endswith("loss")]
    for i, part in enumerate(parts):
        for prefix, style in (("train_", "-"), ("val_", "--")):
            key = prefix + part
            if all(key in h for h in history):
                values = [h[key] for h in history]
                ax.plot(epochs, values, style, marker="o", color=f"C{i}", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title("Neuroformer pretraining (solid: training, dashed: validation)", fontsize=10)
    if parts:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- report
def format_summary(m: dict) -> str:
    """The printed table and verdicts of :func:`run`'s metrics."""

    def f(v, spec=".2f"):
        return "-" if v is None or not np.isfinite(v) else format(v, spec)

    c, ce, gen, con = m["circuit"], m["cross_entropy"], m["generation"], m["connectivity"]
    lines = [
        f"circuit: {c['n_neurons']} neurons, hubs {', '.join(map(str, c['hubs'])) or 'none'}, "
        f"{c['n_edges']} edges "
        f"(coupling {c['coupling']:g}), {c['duration']:g} s; train {m['split']['train_s']:g} s, "
        f"val {m['split']['val_s']:g} s, test {m['split']['test_s']:g} s",
        f"{'held-out test intervals':<36}{'neuroformer':>12}{'glm':>8}{'correlation':>13}",
        f"{'next-neuron cross-entropy (nats)':<36}{f(ce['neuroformer']):>12}{f(ce['glm']):>8}"
        f"{'-':>13}   (firing frequencies alone: {f(ce['frequency_entropy'])})",
        f"{'generated rates, r':<36}{f(gen['neuroformer']['rate_r']):>12}"
        f"{f(gen['glm']['rate_r']):>8}{'-':>13}",
        f"{'generated pairwise correlations, r':<36}{f(gen['neuroformer']['correlation_r']):>12}"
        f"{f(gen['glm']['correlation_r']):>8}{'-':>13}",
        f"{'connectivity AUROC':<36}{f(con['auroc']['attention']):>12}"
        f"{f(con['auroc']['glm']):>8}{f(con['auroc']['correlation']):>13}",
        f"{'  within each source (targets only)':<36}"
        f"{f(con['auroc_within_source']['attention']):>12}"
        f"{f(con['auroc_within_source']['glm']):>8}"
        f"{f(con['auroc_within_source']['correlation']):>13}",
        f"{'hubs among the top sources':<36}{f(con['hub_recall']['attention']):>12}"
        f"{f(con['hub_recall']['glm']):>8}{f(con['hub_recall']['correlation']):>13}",
    ]
    if con["note"]:
        lines.append(
            f"note: {con['note']}; GLM couplings with |z| > 4: "
            f"{con['glm_pairs_z_above_4']} of {con['n_pairs']} pairs"
        )
    curve = m["behavior"]["curve"]
    fractions = sorted({row["fraction"] for row in curve})
    head = "".join(f"{100 * fr:>9.3g}%" for fr in fractions)
    lines.append(f"{'behaviour r, share of training labels':<36}{head}")
    for name in dict.fromkeys(row["decoder"] for row in curve):
        cells = {row["fraction"]: row for row in curve if row["decoder"] == name}
        lines.append(
            f"  {name:<34}"
            + "".join(
                f"{f(cells[fr]['r_mean']):>10}" if fr in cells else f"{'-':>10}" for fr in fractions
            )
        )
    lines.append("verdicts (held out):")
    lines += [f"  {v}" for v in m["verdicts"]]
    return "\n".join(lines)


def verdicts(m: dict) -> list[str]:
    """One plain sentence per comparison of Neuroformer with its baseline."""
    ce, gen, con = m["cross_entropy"], m["generation"], m["connectivity"]
    out = []
    w = better("Neuroformer", ce["neuroformer"], "the GLM", ce["glm"], higher=False)
    out.append(
        f"cross-entropy: {'a tie' if w == 'tie' else w + ' is better'} "
        f"({ce['neuroformer']:.3f} vs GLM {ce['glm']:.3f} nats; frequencies alone "
        f"{ce['frequency_entropy']:.3f})"
    )
    for key, what in (("rate_r", "generated rates"), ("correlation_r", "pairwise correlations")):
        a, b = gen["neuroformer"][key], gen["glm"][key]
        w = better("Neuroformer", a, "the GLM", b)
        out.append(f"{what}: {'a tie' if w == 'tie' else w + ' is better'} (r {a:.2f} vs {b:.2f})")
    if con["note"]:
        out.append("connectivity: nothing to recover (null circuit)")
    else:
        ranked = sorted(con["auroc"].items(), key=lambda kv: -kv[1])
        order = " > ".join(f"{k} {v:.2f}" for k, v in ranked)
        out.append(
            f"connectivity AUROC: {order}"
            + ("; the GLM beats Neuroformer's attention" if ranked[0][0] == "glm" else "")
        )
        within = con["auroc_within_source"]
        if within["attention"] < 0.6 <= con["auroc"]["attention"]:
            out.append(
                "attention's AUROC comes from how strongly it weights each source overall, not "
                "from which neurons a source drives (within sources: attention "
                f"{within['attention']:.2f}, GLM {within['glm']:.2f}; 0.5 is chance)"
            )
    curve = m["behavior"]["curve"]
    full = [row for row in curve if row["fraction"] == max(r["fraction"] for r in curve)]
    best_nf = max((r for r in full if r["decoder"] != "ridge"), key=lambda r: r["r_mean"])
    ridge = next(r for r in full if r["decoder"] == "ridge")
    w = better(best_nf["decoder"], best_nf["r_mean"], "the ridge decoder", ridge["r_mean"])
    out.append(
        f"behaviour at {100 * full[0]['fraction']:.3g}% of labels: "
        f"{'a tie' if w == 'tie' else w + ' is better'} "
        f"(r {best_nf['r_mean']:.2f} vs ridge {ridge['r_mean']:.2f})"
    )
    return out


# ----------------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> int:
    """Simulate, pretrain, generate, read connectivity, decode behaviour, write everything."""
    import time

    import pandas as pd

    from data_loaders.simulate.spikes import simulate_spiking_circuit
    from data_loaders.spikes import split_intervals
    from neuro.io import atomic_open, atomic_write_json, atomic_write_text, prepare_output_dir
    from neuro.plotting import save_figure
    from neuro.results import jsonable
    from neuro.spikes import (
        Neuroformer,
        PoissonGLM,
        correlation_connectivity,
        generation_statistics,
    )

    check_arguments(args)
    out = prepare_output_dir(args.out, overwrite=args.overwrite)  # refused before any work
    say = print if args.verbose else (lambda *a, **k: None)
    started = time.perf_counter()
    sim = simulate_spiking_circuit(
        n_neurons=args.neurons,
        n_hubs=args.hubs,
        duration=args.duration,
        seed=args.seed,
        coupling_strength=args.coupling,
    )
    rec = sim.recording
    split = split_intervals(
        sim.spikes.t_start, sim.spikes.t_stop, n_intervals=args.intervals, seed=args.seed
    )
    off = ~np.eye(sim.n_neurons, dtype=bool)
    n_edges = int((sim.adjacency[off] != 0).sum())
    # the simulator names hubs even when it connects nothing; without edges there are none
    hubs = sim.hubs if n_edges else np.zeros(0, dtype=np.int64)
    say(f"{PROG}: {sim.n_neurons} neurons, {len(sim.spikes)} spikes, {n_edges} edges", flush=True)

    nf = Neuroformer(
        **args.model_size,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        weight_decay=args.weight_decay,
        device=args.device,
        random_state=args.seed,
        verbose=max(args.verbose - 1, 0),
    ).fit(rec, intervals=split.train, val_intervals=split.val)
    fit_s = time.perf_counter() - started
    say(f"pretrained in {fit_s:.0f} s ({len(nf.history_)} epochs)", flush=True)
    glm = PoissonGLM(device=args.device).fit(rec, intervals=split.train)

    # next-neuron cross-entropy on the test intervals
    nf_ce = nf.cross_entropy(rec, split.test)
    cross_entropy = {
        "neuroformer": nf_ce["id_cross_entropy"],
        "neuroformer_dt": nf_ce["dt_cross_entropy"],
        "frequency_entropy": nf_ce["frequency_entropy"],
        "glm": glm.id_cross_entropy(rec, split.test),
        "n_tokens": nf_ce["n_tokens"],
    }

    # generation, each current window from the true past, after each interval's first past window
    windows = [(a + nf.past_window, b) for a, b in split.test]
    generated = {
        "neuroformer": nf.generate(rec, split.test, seed=args.seed),
        "glm": concatenated(
            [glm.simulate(rec, a, b, seed=args.seed) for a, b in windows],
            sim.n_neurons,
            sim.spikes.t_start,
            sim.spikes.t_stop,
        ),
    }
    generation = {
        name: generation_statistics(sim.spikes, spikes, intervals=windows)
        for name, spikes in generated.items()
    }
    generation_rows = pd.DataFrame([{"model": name, **stats} for name, stats in generation.items()])

    # connectivity against the planted adjacency
    estimates = {
        "attention": nf.connectivity(rec, split.test),
        "correlation": correlation_connectivity(rec, intervals=split.train),
        "glm": glm.coupling_,
    }
    con_table = connectivity_table(estimates, sim.adjacency, hubs)
    z = glm.coupling_z_
    connectivity = {
        "auroc": dict(zip(con_table["estimate"], con_table["auroc"], strict=True)),
        "auroc_within_source": dict(
            zip(con_table["estimate"], con_table["auroc_within_source"], strict=True)
        ),
        "hub_recall": dict(zip(con_table["estimate"], con_table["hub_recall"], strict=True)),
        "attention_nan_pairs": int(np.isnan(estimates["attention"][off]).sum()),
        "glm_pairs_z_above_4": None if z is None else int((np.abs(z[off]) > 4).sum()),
        "n_pairs": int(off.sum()),
        "note": NULL_NOTE if n_edges == 0 else "",
    }

    # few-shot behaviour
    say("few-shot behaviour decoding ...", flush=True)
    shots = few_shot(
        nf,
        rec,
        split,
        args.label_fractions,
        args.draws,
        args.windows,
        args.unfreeze,
        {"steps": args.finetune_steps, "lr": args.finetune_lr},
        args.seed,
        args.device,
        verbose=max(args.verbose - 1, 0),
    )
    curve = behavior_curve(shots)
    # the saved model's head: frozen, all training labels
    nf.fit_behavior(rec, split.train, n_windows=args.windows)

    metrics = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "overwrite", "quiet")},
        "circuit": {
            "n_neurons": sim.n_neurons,
            "hubs": hubs.tolist(),
            "n_edges": n_edges,
            "coupling": args.coupling,
            "duration": args.duration,
            "n_spikes": len(sim.spikes),
            "mean_rate_hz": float(sim.spikes.firing_rates().mean()),
        },
        "split": {
            name: float(sum(b - a for a, b in getattr(split, name)))
            for name in ("train", "val", "test")
        },
        "training": {
            "epochs_run": len(nf.history_),
            "history": nf.history_,
            "truncation": nf.truncation_,
            "seconds": fit_s,
        },
        "cross_entropy": cross_entropy,
        "generation": generation,
        "connectivity": connectivity,
        "behavior": {
            "curve": curve.to_dict(orient="records"),
            "draws": shots.to_dict(orient="records"),
        },
    }
    metrics["split"] = {f"{k}_s": v for k, v in metrics["split"].items()}
    metrics["verdicts"] = verdicts(metrics)
    metrics["seconds"] = time.perf_counter() - started
    metrics = jsonable(metrics)
    summary = format_summary(metrics)

    atomic_write_json(out / "metrics.json", metrics)
    atomic_write_text(out / "summary.txt", summary + "\n")
    atomic_write_text(out / "connectivity_auroc.csv", con_table.to_csv(index=False))
    atomic_write_text(out / "generation.csv", generation_rows.to_csv(index=False))
    atomic_write_text(out / "behavior_few_shot.csv", curve.to_csv(index=False))
    with atomic_open(out / "connectivity.npz", "wb") as fh:
        np.savez(fh, adjacency=sim.adjacency, hubs=hubs, **estimates)
    nf.save(out / "models" / "neuroformer.pt", overwrite=True)  # the folder was checked above

    a, b = windows[0]
    shown = (a, min(b, a + RASTER_SECONDS))
    gen_nf, gen_glm = generation["neuroformer"], generation["glm"]
    figures = {
        "raster": raster_figure(
            {
                "recorded (test window)": sim.spikes,
                f"Neuroformer, generated from the true past (pairwise r "
                f"{gen_nf['correlation_r']:.2f})": generated["neuroformer"],
                f"Poisson GLM, simulated (pairwise r {gen_glm['correlation_r']:.2f})": generated[
                    "glm"
                ],
            },
            shown,
            hubs,
        ),
        "connectivity": connectivity_figure(
            sim.adjacency,
            estimates,
            con_table,
            "No connection planted (coupling 0): nothing to recover"
            if n_edges == 0
            else next(v for v in metrics["verdicts"] if v.startswith("connectivity")),
        ),
        "behavior_few_shot": behavior_figure(curve, metrics["verdicts"][-1]),
        "training": training_figure(nf.history_),
    }
    import matplotlib.pyplot as plt

    for name, fig in figures.items():
        save_figure(fig, out / "figures" / f"{name}.png")
        plt.close(fig)
    print(summary)
    print(f"wrote {out} ({metrics['seconds']:.0f} s)")
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
