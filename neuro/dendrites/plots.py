"""Figures of the theory of sparse patterns and dendritic segments (Ahmad & Hawkins, 2016).

Each function draws one of the paper's figures from its table (as
:func:`neuro.dendrites.paper.paper_figures` computes it, with the columns
``series, x, theory, simulated, ci_low, ci_high, trials``) and returns a
matplotlib ``Figure``: theory as lines, simulated points (series ending in
``" (simulated)"``) as dots with their confidence intervals, in the colour of
their theory series.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from neuro.plotting import new_figure

__all__ = ["plot_error_vs_a", "plot_error_vs_n", "plot_noise", "plot_threshold", "plot_union"]

_SIMULATED = " (simulated)"
_SIZE = (5.0, 3.8)


def _series(table: pd.DataFrame, name: str) -> pd.DataFrame:
    return table[table["series"] == name]


def _theory_names(table: pd.DataFrame, prefix: str = "") -> list[str]:
    """Names of the theory series starting with ``prefix``, in the table's order."""
    names = dict.fromkeys(table["series"])
    return [s for s in names if s.startswith(prefix) and not s.endswith(_SIMULATED)]


def _label(series: str) -> str:
    """``"theta=8"`` as ``"θ = 8"``, ``"synapses n=1000"`` as ``"n = 1000"``."""
    last = series.split(" ")[-1]
    return last.replace("theta", "θ").replace("=", " = ")


def _points(ax: Axes, table: pd.DataFrame, series: str, color) -> None:
    """The simulated points of ``series`` with their intervals, if any."""
    rows = _series(table, series + _SIMULATED)
    rows = rows[rows["simulated"].notna()]
    if rows.empty:
        return
    y = rows["simulated"].to_numpy(float)
    err = np.stack([y - rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float) - y])
    ax.errorbar(rows["x"].to_numpy(float), y, yerr=err, fmt="o", ms=4, color=color, capsize=2)


def _curves(ax: Axes, table: pd.DataFrame, prefix: str = "", log: bool = True) -> dict[str, str]:
    """Each theory series starting with ``prefix`` as a line, with its simulated points."""
    colors = {}
    for name in _theory_names(table, prefix):
        rows = _series(table, name)
        draw = ax.semilogy if log else ax.plot
        line = draw(rows["x"].to_numpy(float), rows["theory"].to_numpy(float), label=_label(name))
        colors[name] = line[0].get_color()
        _points(ax, table, name, colors[name])
    return colors


def _false_matches(table: pd.DataFrame, xlabel: str, title: str) -> Figure:
    """One false-match figure: each theory series as a line, with its simulated points."""
    fig, axes = new_figure(size=_SIZE)
    ax = axes[0, 0]
    _curves(ax, table)
    ax.set(xlabel=xlabel, ylabel="false-match probability", title=title, ylim=(1e-16, 1))
    ax.legend()
    return fig


def plot_error_vs_n(table: pd.DataFrame) -> Figure:
    """False-match probability against the population size n, one line per a.

    Parameters
    ----------
    table : DataFrame
        The ``error_vs_n`` table of :func:`~neuro.dendrites.paper.paper_figures`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _false_matches(table, "cells in the population n", "False matches vs n (s = 24, θ = 12)")


def plot_error_vs_a(table: pd.DataFrame) -> Figure:
    """False-match probability against the active cells a, one line per n.

    Parameters
    ----------
    table : DataFrame
        The ``error_vs_a`` table of :func:`~neuro.dendrites.paper.paper_figures`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _false_matches(table, "active cells a", "False matches vs a (s = 24, θ = 12)")


def plot_union(table: pd.DataFrame) -> Figure:
    """False-match rate against stored patterns M: union of synapses (left), of inputs (right).

    Left: the paper's ``s_M`` form (solid), the exact expectation (dotted) and
    its simulated points; right: a union of ``M`` input patterns.

    Parameters
    ----------
    table : DataFrame
        The ``union`` table of :func:`~neuro.dendrites.paper.paper_figures`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = new_figure(ncols=2, size=_SIZE)
    left, right = axes[0]
    colors = _curves(left, table, "synapses ")
    for name, color in colors.items():
        expected = "expected " + name.removeprefix("synapses ")
        rows = _series(table, expected)
        x, y = rows["x"].to_numpy(float), rows["theory"].to_numpy(float)
        left.semilogy(x, y, ls=":", color=color)
        _points(left, table, expected, color)
    _curves(right, table, "inputs ")
    for ax in (left, right):
        ax.set(xlabel="patterns stored M", ylabel="false-match probability", ylim=(1e-12, 1.5))
        ax.legend(fontsize=8)
    left.set_title("Union of synapses: s_M (solid), exact (dotted)", fontsize=9)
    right.set_title("Union of M input patterns (a_M active cells)", fontsize=9)
    return fig


def plot_noise(table: pd.DataFrame) -> Figure:
    """Probability that a segment still matches its pattern against noise, one line per θ.

    Parameters
    ----------
    table : DataFrame
        The ``noise`` table of :func:`~neuro.dendrites.paper.paper_figures`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = new_figure(size=_SIZE)
    ax = axes[0, 0]
    _curves(ax, table, log=False)
    ax.set(
        xlabel="fraction of the pattern's cells replaced",
        ylabel="match probability",
        title="Noise robustness (n = 2000, a = 128, s = 30)",
    )
    ax.legend()
    return fig


def plot_threshold(table: pd.DataFrame) -> Figure:
    """False matches against θ over the authors' grid (left), optimal θ against noise (right).

    Parameters
    ----------
    table : DataFrame
        The ``threshold`` table of :func:`~neuro.dendrites.paper.paper_figures`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = new_figure(ncols=2, size=_SIZE)
    ax = axes[0, 0]
    median = _series(table, "median log10 P_fm")
    low = _series(table, "10th percentile log10 P_fm")["theory"].to_numpy(float)
    high = _series(table, "90th percentile log10 P_fm")["theory"].to_numpy(float)
    thetas = median["x"].to_numpy(float)
    ax.plot(thetas, median["theory"].to_numpy(float), "o-", label="median")
    ax.fill_between(thetas, low, high, alpha=0.25, label="10-90%")
    ax.axhline(-7, color="k", ls="--", lw=1)
    ax.set(
        xlabel="threshold θ",
        ylabel="log10 false-match probability",
        title="Authors' grid: n 1k-17k, 0.5-3% active, s 20-50",
        ylim=(-35, 0.5),
    )
    ax.title.set_fontsize(9)
    ax.legend()
    ax = axes[0, 1]
    for name in _theory_names(table, "optimal theta "):
        rows = _series(table, name)
        label = ", ".join(name.removeprefix("optimal theta ").split(" "))
        ax.step(rows["x"].to_numpy(float), rows["theory"].to_numpy(float), where="mid", label=label)
    ax.set(
        xlabel="noise (fraction of cells replaced)",
        ylabel="optimal θ",
        title="θ minimising P_fm + P_fn",
    )
    ax.legend(fontsize=7)
    return fig
