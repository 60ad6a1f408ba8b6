"""Figures of curriculum runs: N over epochs, timescales against N, robustness, retention,
and the further analyses (dimensionality, ablation by tau, normalised perturbation, retraining)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from neuro.plotting import new_figure

__all__ = [
    "plot_curriculum",
    "plot_dimensionality",
    "plot_normalized_perturbation",
    "plot_retention",
    "plot_retraining",
    "plot_robustness",
    "plot_tau_ablation",
    "plot_timescales",
]

_COLORS = {"single": "tab:orange", "multi": "tab:blue"}


def plot_curriculum(results: Mapping) -> object:
    """N trained in each epoch, and the validation accuracy on the largest N, per curriculum."""
    fig, axes = new_figure(2, 1)
    for kind, res in results.items():
        epochs = np.arange(1, len(res.history) + 1)
        c = _COLORS.get(kind)
        axes[0, 0].step(epochs, res.n_over_epochs(), where="post", color=c, label=f"{kind}-head")
        acc = [r.get("val_acc_last", np.nan) for r in res.history]
        axes[0, 1].plot(epochs, acc, color=c, label=f"{kind}-head")
        axes[0, 1].axhline(res.config.threshold, color="grey", lw=0.8, ls="--")
    axes[0, 0].set(xlabel="epoch", ylabel="N (current)", title="curriculum progress")
    axes[0, 1].set(xlabel="epoch", ylabel="accuracy on largest N", ylim=(0.4, 1.02))
    axes[0, 0].legend()
    return fig


def plot_timescales(timescales: Mapping, results: Mapping) -> object:
    """Trained taus and network-mediated timescales against N, per curriculum."""
    fig, axes = new_figure(3, 1)
    for kind, by_n in timescales.items():
        ns = sorted(by_n)
        c = _COLORS.get(kind)
        if ns and "trained_tau_mean" in by_n[ns[0]]:
            axes[0, 0].plot(
                ns, [by_n[n]["trained_tau_mean"] for n in ns], "o-", color=c, label=kind
            )
            axes[0, 0].plot(ns, [by_n[n]["trained_tau_p90"] for n in ns], "^:", color=c)
        axes[0, 1].plot(ns, [by_n[n]["tau_net_median"] for n in ns], "o-", color=c, label=kind)
        axes[0, 1].plot(ns, [by_n[n]["population_tau"] for n in ns], "x:", color=c)
    for kind, res in results.items():
        if res.solved_taus:
            n = max(res.solved_taus)
            axes[0, 2].hist(
                res.solved_taus[n],
                bins=30,
                alpha=0.6,
                color=_COLORS.get(kind),
                label=f"{kind}, N={n}",
            )
    axes[0, 0].set(
        xlabel="N", ylabel="trained tau (steps)", title="single-neuron taus (o mean, ^ 90th pct)"
    )
    axes[0, 1].set(
        xlabel="N",
        ylabel="timescale (steps)",
        title="network timescales (o median neuron, x population)",
    )
    axes[0, 2].set(xlabel="trained tau (steps)", ylabel="neurons", title="taus at the last N")
    for ax in axes[0]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig


def plot_robustness(
    ablation: Mapping,
    perturbation: Mapping,
    n: int | None,
    ablation_slowest: Mapping | None = None,
) -> object:
    """Accuracy against the fraction of neurons removed and the recurrent-weight noise.

    Random removals are solid lines; removals of the slowest-tau neurons first
    (``ablation_slowest``) are dashed.
    """
    fig, axes = new_figure(2, 1)
    for kind, a in ablation.items():
        m, s = a["accuracy"].mean(1), a["accuracy"].std(1)
        axes[0, 0].errorbar(a["fractions"], m, s, marker="o", color=_COLORS.get(kind), label=kind)
    for kind, a in (ablation_slowest or {}).items():
        axes[0, 0].plot(
            a["fractions"],
            a["accuracy"].mean(1),
            "s--",
            color=_COLORS.get(kind),
            label=f"{kind}, slowest taus first",
        )
    for kind, p in perturbation.items():
        m, s = p["accuracy"].mean(1), p["accuracy"].std(1)
        axes[0, 1].errorbar(p["sigmas"], m, s, marker="o", color=_COLORS.get(kind), label=kind)
    title = f" (N={n})" if n is not None else ""
    axes[0, 0].set(
        xlabel="fraction of neurons removed", ylabel="accuracy", title="ablation" + title
    )
    axes[0, 1].set(xlabel="noise sd / weight sd", ylabel="accuracy", title="perturbation" + title)
    for ax in axes[0]:
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig


def plot_retention(retention: Mapping, example_ac: Mapping | None = None) -> object:
    """Final accuracy on every N solved along the way; an example of neurons' autocorrelations."""
    fig, axes = new_figure(2, 1)
    for kind, acc in retention.items():
        ns = sorted(acc)
        axes[0, 0].plot(ns, [acc[n] for n in ns], "o-", color=_COLORS.get(kind), label=kind)
    axes[0, 0].set(
        xlabel="N", ylabel="final accuracy", ylim=(0.4, 1.02), title="retention of earlier N"
    )
    axes[0, 0].axhline(0.5, color="grey", lw=0.8, ls=":")
    for kind, ac in (example_ac or {}).items():
        ok = np.isfinite(ac).all(1)
        if ok.any():
            med = np.median(ac[ok], axis=0)
            axes[0, 1].plot(np.arange(len(med)), med, color=_COLORS.get(kind), label=kind)
    axes[0, 1].set(xlabel="lag (steps)", ylabel="autocorrelation", title="median neuron, largest N")
    for ax in axes[0]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig


def plot_dimensionality(dimensionality: Mapping, example_pca: Mapping | None = None) -> object:
    """PCA dimensionality of the activity against N; cumulative explained variance at the last N."""
    fig, axes = new_figure(2, 1)
    for kind, by_n in dimensionality.items():
        ns = sorted(by_n)
        m = [float(np.mean(by_n[n])) for n in ns]
        s = [float(np.std(by_n[n])) for n in ns]
        axes[0, 0].errorbar(ns, m, s, marker="o", color=_COLORS.get(kind), label=kind)
    for kind, ratio in (example_pca or {}).items():
        if np.isfinite(ratio).all():
            k = np.arange(1, len(ratio) + 1)
            axes[0, 1].plot(k, np.cumsum(ratio), ".-", color=_COLORS.get(kind), label=kind)
    axes[0, 1].axhline(0.9, color="grey", lw=0.8, ls="--")
    axes[0, 0].set(xlabel="N", ylabel="components for 90% variance", title="dimensionality")
    axes[0, 1].set(
        xlabel="principal components",
        ylabel="cumulative explained variance",
        title="largest N solved",
        xscale="log",
    )
    for ax in axes[0]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig


def plot_tau_ablation(tau_ablation: Mapping, n: int | None) -> object:
    """Accuracy after silencing each fastest / slowest neuron: bars per group, and against tau."""
    fig, axes = new_figure(2, 1)
    kinds = list(tau_ablation)
    width = 0.8 / max(len(kinds), 1)
    for j, kind in enumerate(kinds):
        a, c = tau_ablation[kind], _COLORS.get(kind)
        per_neuron = a["accuracy"].mean(1)
        groups = [per_neuron[~a["slow"]], per_neuron[a["slow"]]]
        x = np.arange(2) + (j - (len(kinds) - 1) / 2) * width
        axes[0, 0].bar(
            x,
            [g.mean() for g in groups],
            width,
            yerr=[g.std() for g in groups],
            facecolor="white",
            edgecolor=c,
            linewidth=2,
            label=kind,
        )
        axes[0, 0].axhline(a["baseline"].mean(), color=c, lw=0.8, ls="--")
        axes[0, 1].plot(a["taus"], per_neuron, "o", color=c, alpha=0.7, label=kind)
    axes[0, 0].set_xticks([0, 1], ["fastest", "slowest"])
    title = f" (N={n})" if n is not None else ""
    axes[0, 0].set(ylabel="accuracy (every step of a stream)", title="one neuron silenced" + title)
    axes[0, 1].set(xlabel="trained tau of the silenced neuron", ylabel="accuracy", xscale="log")
    for ax in axes[0]:
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig


def plot_normalized_perturbation(curves: Mapping, n: int | None) -> object:
    """Relative accuracy against the normalised perturbation of the taus and the weights."""
    fig, axes = new_figure(2, 1)
    for kind, by_target in curves.items():
        for ax, target in zip(axes[0], ("taus", "recurrent"), strict=True):
            if target not in by_target:
                continue
            c = by_target[target]
            x = np.where(c["strengths"] > 0, c["strengths"], np.nan)  # 0 has no log position
            m, s = c["relative"].mean(1), c["relative"].std(1)
            ax.plot(x, m, "o-", color=_COLORS.get(kind), label=kind)
            ax.fill_between(x, m - s, m + s, color=_COLORS.get(kind), alpha=0.2)
    title = f" (N={n})" if n is not None else ""
    axes[0, 0].set(xlabel="perturbation of tau (increase only)", title="taus" + title)
    axes[0, 1].set(xlabel="perturbation of W_rec", title="recurrent weights" + title)
    for ax in axes[0]:
        ax.set(xscale="log", ylabel="relative accuracy", ylim=(-0.1, 1.1))
        ax.axhline(0.0, color="grey", lw=0.8, ls=":")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig


def plot_retraining(retraining: Mapping) -> object:
    """Accuracy over retraining epochs: after a perturbation, and on a larger N."""
    fig, axes = new_figure(2, 1)
    for kind, by_name in retraining.items():
        for ax, name in zip(axes[0], ("perturbed", "larger_n"), strict=True):
            if name not in by_name:
                continue
            c = by_name[name]
            for n, b, acc in zip(c["ns"], c["baseline"], c["accuracy"], strict=True):
                ax.plot(
                    np.arange(len(acc)), acc, "o-", color=_COLORS.get(kind), label=f"{kind}, N={n}"
                )
                if name == "perturbed":
                    ax.axhline(b, color=_COLORS.get(kind), lw=0.8, ls="--")
    axes[0, 0].set(title="retraining after perturbation (--: before it)")
    axes[0, 1].set(title="retraining on the next N")
    for ax in axes[0]:
        ax.set(xlabel="epochs of retraining", ylabel="accuracy", ylim=(0.4, 1.02))
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig
