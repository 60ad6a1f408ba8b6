"""Figures of a fitted :class:`~neuro.connectome.ntf.DynamicConnectome` (matplotlib, headless)."""

from __future__ import annotations

import networkx as nx
import numpy as np

from neuro._validation import check_int
from neuro.connectome.communities import pairs_to_matrix
from neuro.errors import InputTypeError
from neuro.plotting import new_figure

__all__ = ["plot_affinity_matrices", "plot_factors", "plot_networks", "plot_rank_selection"]


def _fitted(model):
    """``model`` if it is a fitted DynamicConnectome (NotFittedError if not fitted)."""
    from neuro.connectome.ntf import DynamicConnectome

    if not isinstance(model, DynamicConnectome):
        raise InputTypeError(
            f"model must be a fitted DynamicConnectome; got {type(model).__name__}."
        )
    model._check_fitted()
    return model


def _shade_epochs(ax, epochs, colors=None) -> None:
    names = list(dict.fromkeys(e.name for e in epochs))
    cmap = {n: f"C{k % 10}" for k, n in enumerate(names)} if colors is None else colors
    seen = set()
    for e in epochs:
        label = e.name if e.name not in seen else None
        seen.add(e.name)
        ax.axvspan(e.start, e.stop, color=cmap[e.name], alpha=0.12, lw=0, label=label)


def plot_factors(model):
    """Time factors (epochs shaded) and animal loadings, one row per component.

    Parameters
    ----------
    model : DynamicConnectome
        Fitted.

    Returns
    -------
    matplotlib.figure.Figure
        ``rank_`` rows of two panels: the time factor over ``bin_times_`` and
        the animal loadings.
    """
    r = _fitted(model).rank_
    fig, axes = new_figure(2, r, size=(4.5, 1.8))
    for k in range(r):
        ax = axes[k, 0]
        _shade_epochs(ax, model.epochs_)
        ax.plot(model.bin_times_, model.time_factors_[:, k], color="k", lw=1)
        ax.set_ylabel(f"comp {k}")
        if k == 0 and model.epochs_:
            ax.legend(fontsize=6, ncol=4, loc="upper right")
        axes[k, 1].bar(np.arange(model.animal_factors_.shape[0]), model.animal_factors_[:, k])
    axes[0, 0].set_title("time factors")
    axes[0, 1].set_title("animal loadings")
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 1].set_xlabel("animal")
    return fig


def plot_affinity_matrices(model):
    """Each component's pair factor as a neuron x neuron matrix, sorted by community.

    Parameters
    ----------
    model : DynamicConnectome
        Fitted.

    Returns
    -------
    matplotlib.figure.Figure
        One ``(n_neurons, n_neurons)`` image per component, core neurons first.
    """
    r, n = _fitted(model).rank_, len(model.neuron_labels_)
    fig, axes = new_figure(r, 1, size=(3.0, 3.0))
    for k in range(r):
        c = model.communities_[k]
        order = np.lexsort((c.labels, ~c.core))
        m = pairs_to_matrix(model.pair_factors_[:, k], n)[np.ix_(order, order)]
        axes[0, k].imshow(m, cmap="magma", interpolation="nearest")
        axes[0, k].set_title(f"comp {k} ({int(c.labels.max()) + 1} blocks)", fontsize=9)
        axes[0, k].set_xticks([])
        axes[0, k].set_yticks([])
    return fig


def plot_networks(model, max_edges: int = 300):
    """Network drawing per component: core neurons coloured, strongest edges drawn.

    Parameters
    ----------
    model : DynamicConnectome
        Fitted.
    max_edges : int, default=300
        Strongest edges drawn per component.

    Returns
    -------
    matplotlib.figure.Figure
    """
    r = _fitted(model).rank_
    max_edges = check_int("max_edges", max_edges, minimum=1)
    fig, axes = new_figure(r, 1, size=(3.0, 3.0))
    for k in range(r):
        c, ax = model.communities_[k], axes[0, k]
        g = c.graph
        edges = sorted(g.edges(data="weight"), key=lambda e: -e[2])[:max_edges]
        h = nx.Graph()
        h.add_nodes_from(g.nodes)
        h.add_weighted_edges_from(edges)
        pos = nx.circular_layout(h)
        w = np.array([e[2] for e in edges]) if edges else np.zeros(0)
        nx.draw_networkx_edges(h, pos, ax=ax, width=(2 * w / w.max()) if len(w) else 1.0, alpha=0.4)
        colors = ["C3" if c.core[v] else "0.7" for v in h.nodes]
        nx.draw_networkx_nodes(h, pos, ax=ax, node_size=25, node_color=colors)
        ax.set_title(f"comp {k}: {int(c.core.sum())} core neurons", fontsize=9)
        ax.set_axis_off()
    return fig


def plot_rank_selection(selection):
    """Reconstruction error and stability against rank, the selected rank marked.

    Parameters
    ----------
    selection : RankSelection
        From :func:`~neuro.connectome.ntf.select_rank` (or ``model.rank_selection_``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from neuro.connectome.ntf import RankSelection

    if not isinstance(selection, RankSelection):
        raise InputTypeError(
            f"selection must be a RankSelection (select_rank's result, or a model's "
            f"rank_selection_ when fitted with rank=None); got {type(selection).__name__}."
        )
    fig, axes = new_figure(1, 1, size=(4.5, 3.2))
    ax = axes[0, 0]
    ranks = [row["rank"] for row in selection.table]
    ax.errorbar(
        ranks,
        [row["error_mean"] for row in selection.table],
        yerr=[row["error_sd"] for row in selection.table],
        marker="o",
        color="C0",
        label="error (mean of restarts)",
    )
    ax.set_xlabel("rank")
    ax.set_ylabel("relative error", color="C0")
    ax2 = ax.twinx()
    ax2.plot(ranks, [row["stability"] for row in selection.table], "s--", color="C1")
    ax2.set_ylabel("stability (factor match)", color="C1")
    ax2.set_ylim(0, 1.05)
    ax.axvline(selection.rank, color="0.5", ls=":")
    ax.set_xticks(ranks)
    return fig
