"""Figures of curriculum runs: N over epochs, timescales against N, robustness, retention."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from neuro.plotting import new_figure

__all__ = ["plot_curriculum", "plot_retention", "plot_robustness", "plot_timescales"]

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
