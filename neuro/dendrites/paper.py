"""The main figures of Ahmad & Hawkins (2016), as numbers: theory curves and simulated points.

:func:`paper_figures` computes the five figures of the paper on sparse
patterns and dendritic segments and returns a :class:`PaperFigures` result:

``error_vs_n``
    False-match probability against the population size ``n``, for
    ``a`` = 64, 128, 256 active cells (``s = 24``, ``theta = 12``).
``error_vs_a``
    The same against the number of active cells ``a``, for ``n`` = 1000,
    2000, 4000.
``union``
    False-match rate of a segment storing ``M`` patterns (union property):
    the paper's ``s_M`` form, its exact expectation, and the union-of-inputs
    variant.
``noise``
    Probability that a segment still recognises its pattern when a fraction
    of the pattern's cells is replaced, for ``theta`` = 8, 12, 16, 20.
``threshold``
    The median (and 10th and 90th percentiles of the) false-match rate over
    the authors' grid for each threshold, and the optimal threshold against
    noise.

Theory comes from :mod:`neuro.dendrites.theory`; where a probability is large
enough to be estimated with ``trials`` trials, a Monte Carlo point with its
99.9% Clopper-Pearson interval comes from :mod:`neuro.dendrites.simulate`.
Each figure's numbers form one table with the columns :data:`COLUMNS` (one
row per point of a series; the simulation columns are empty for theory-only
points); :meth:`PaperFigures.plot` draws them (:mod:`neuro.dendrites.plots`),
and :meth:`PaperFigures.save` writes ``<figure>.csv``, ``figures/<figure>.png``,
``metrics.json`` and ``summary.txt``. ``neuro dendrites-figures`` and
``scripts/dendrites_figures.py`` run it.

>>> result = paper_figures(trials=0)  # theory only: under a second
>>> sorted(result.tables())
['error_vs_a', 'error_vs_n', 'noise', 'threshold', 'union']
>>> result.summary()["simulated_points"]
0
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from neuro._validation import check_int
from neuro.dendrites.simulate import (
    simulate_false_match,
    simulate_noise_match,
    simulate_union_false_match,
)
from neuro.dendrites.theory import (
    false_match_probability,
    log_false_match_probability,
    noise_match_probability,
    optimal_threshold,
    paper_sweeps,
    union_false_match_probability,
)
from neuro.results import Result

__all__ = ["COLUMNS", "FIGURES", "PaperFigures", "paper_figures"]

#: Columns of every figure's table.
COLUMNS = ("series", "x", "theory", "simulated", "ci_low", "ci_high", "trials")
#: The figures, in the paper's order.
FIGURES = ("error_vs_n", "error_vs_a", "union", "noise", "threshold")
#: Suffix of the series that hold simulated points.
SIMULATED = " (simulated)"


class _Simulator:
    """Runs the Monte Carlo points of every figure with shared settings and distinct seeds."""

    def __init__(self, trials: int, device: str, seed: int, verbose: int) -> None:
        self.trials, self.device, self.seed, self.verbose = trials, device, seed, verbose
        self.points = 0

    def worth_it(self, p: float) -> bool:
        # at least about 30 expected events, and not a certainty
        return self.trials > 0 and 30 / self.trials <= p <= 1 - 30 / self.trials

    def point(self, series: str, x: Any, theory: float, func: Callable, *args: int | float) -> dict:
        """A row of a simulated series; simulated only where :meth:`worth_it`."""
        row = {"series": series + SIMULATED, "x": x, "theory": theory}
        if self.worth_it(theory):
            self.points += 1
            r = func(
                *args,
                trials=self.trials,
                device=self.device,
                seed=self.seed + self.points,
                verbose=self.verbose,
            )
            row |= {
                "simulated": r.estimate,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "trials": r.trials,
            }
        return row


def _error_vs_n(sim: _Simulator) -> list[dict]:
    grid = paper_sweeps()["error_vs_n"]
    p = false_match_probability(**grid)
    rows = []
    for i, a in enumerate(grid["a"][:, 0]):
        rows += [
            {"series": f"a={a}", "x": int(n), "theory": float(pp)}
            for n, pp in zip(grid["n"][i], p[i], strict=True)
        ]
        for n in (300, 400, 500, 700, 1000, 1500):
            if n >= a:
                pp = float(false_match_probability(n, a, 24, 12))
                rows.append(sim.point(f"a={a}", n, pp, simulate_false_match, n, int(a), 24, 12))
    return rows


def _error_vs_a(sim: _Simulator) -> list[dict]:
    grid = paper_sweeps()["error_vs_a"]
    p = false_match_probability(**grid)
    rows = []
    for i, n in enumerate(grid["n"][:, 0]):
        rows += [
            {"series": f"n={n}", "x": int(a), "theory": float(pp)}
            for a, pp in zip(grid["a"][0], p[i], strict=True)
        ]
        if n <= 2000:
            for a in (100, 200, 300, 400, 600):
                pp = float(false_match_probability(n, a, 24, 12))
                rows.append(sim.point(f"n={n}", a, pp, simulate_false_match, int(n), a, 24, 12))
    return rows


def _union(sim: _Simulator) -> list[dict]:
    grid = paper_sweeps()["union"]
    m = grid["m"][0]
    rows = []
    for variant in ("synapses", "inputs"):
        p = union_false_match_probability(**grid, variant=variant)
        for i, n in enumerate(grid["n"][:, 0]):
            rows += [
                {"series": f"{variant} n={n}", "x": int(x), "theory": float(y)}
                for x, y in zip(m, p[i], strict=True)
            ]
            if variant != "synapses":
                continue
            expected = union_false_match_probability(n, 200, 25, 15, m[:12], variant="expected")
            rows += [
                {"series": f"expected n={n}", "x": int(x), "theory": float(y)}
                for x, y in zip(m[:12], expected, strict=True)
            ]
            for mm in (2, 3, 4, 6) if n == 1000 else ():
                pp = float(union_false_match_probability(n, 200, 25, 15, mm, variant="expected"))
                rows.append(
                    sim.point(
                        f"expected n={n}",
                        mm,
                        pp,
                        simulate_union_false_match,
                        int(n),
                        200,
                        25,
                        15,
                        mm,
                    )
                )
    return rows


def _noise(sim: _Simulator) -> list[dict]:
    grid = paper_sweeps()["noise"]
    noise = grid["noise"][0]
    p = noise_match_probability(**grid)
    rows = []
    for i, theta in enumerate(grid["theta"][:, 0]):
        rows += [
            {"series": f"theta={theta}", "x": float(x), "theory": float(y)}
            for x, y in zip(noise, p[i], strict=True)
        ]
        for nz in (0.25, 0.5, 0.625, 0.75):
            pp = float(noise_match_probability(2000, 128, 30, theta, nz))
            rows.append(
                sim.point(
                    f"theta={theta}", nz, pp, simulate_noise_match, 2000, 128, 30, int(theta), nz
                )
            )
    return rows


#: The configurations whose optimal threshold the ``threshold`` figure follows.
OPTIMAL_THRESHOLD_SETTINGS = (
    (2000, 40, 24),
    (2000, 128, 30),
    (16000, 512, 30),
    (100_000, 2000, 50),
)


def _threshold(sim: _Simulator) -> list[dict]:
    grid = paper_sweeps()["threshold"]
    width = grid["theta"].shape[-1]
    log10 = log_false_match_probability(**grid).reshape(-1, width) / math.log(10)
    log10 = np.maximum(log10, -1000.0)  # impossible matches (a < theta) count as 1e-1000
    thetas = grid["theta"].reshape(-1, width)[0]
    rows = []
    for name, values in (
        ("median", np.median(log10, axis=0)),
        ("10th percentile", np.percentile(log10, 10, axis=0)),
        ("90th percentile", np.percentile(log10, 90, axis=0)),
    ):
        rows += [
            {"series": f"{name} log10 P_fm", "x": int(t), "theory": float(v)}
            for t, v in zip(thetas, values, strict=True)
        ]
    noise = np.linspace(0.0, 0.9, 37)
    for n, a, s in OPTIMAL_THRESHOLD_SETTINGS:
        best = optimal_threshold(n, a, s, noise)
        rows += [
            {"series": f"optimal theta n={n} a={a} s={s}", "x": float(x), "theory": int(b)}
            for x, b in zip(noise, best, strict=True)
        ]
    return rows


_MAKERS: dict[str, Callable[[_Simulator], list[dict]]] = {
    "error_vs_n": _error_vs_n,
    "error_vs_a": _error_vs_a,
    "union": _union,
    "noise": _noise,
    "threshold": _threshold,
}


def _frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a table with :data:`COLUMNS`: numbers as numbers, trials as nullable ints.

    ``x`` and ``theory`` become int64 or float64 columns where all their values
    are of one kind; the ``threshold`` table mixes whole thresholds with noise
    fractions, and there they keep the values as given (object columns).
    """
    frame = pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)
    frame["series"] = frame["series"].astype(str)
    for col in ("simulated", "ci_low", "ci_high"):
        frame[col] = frame[col].astype(np.float64)
    frame["trials"] = frame["trials"].astype("Int64")
    for col in ("x", "theory"):
        kinds = {isinstance(v, (int, np.integer)) for v in frame[col]}
        if kinds == {True}:
            frame[col] = frame[col].astype(np.int64)
        elif kinds == {False}:
            frame[col] = frame[col].astype(np.float64)
    return frame


def inside_interval(table: pd.DataFrame) -> pd.Series:
    """Whether each simulated point's interval holds the theory (NA for theory-only rows).

    Parameters
    ----------
    table : DataFrame with the columns :data:`COLUMNS`

    Returns
    -------
    Series of nullable bool, one per row
    """
    out = pd.Series(pd.NA, index=table.index, dtype="boolean")
    sim = table[table["simulated"].notna()]
    theory = sim["theory"].astype(np.float64)
    out[sim.index] = (sim["ci_low"] <= theory) & (theory <= sim["ci_high"])
    return out


@dataclass
class PaperFigures(Result):
    """The five figures of :func:`paper_figures`: their tables, and how the simulations agree.

    Attributes
    ----------
    data : dict of str to DataFrame
        One table per figure (see :data:`FIGURES`), with the columns :data:`COLUMNS`.
    trials : int
        Monte Carlo trials per simulated point (0: theory only).
    seed : int
        Seed of the first simulated point; each next point uses the next seed.
    seconds : float
        Time taken to compute everything.
    """

    data: dict[str, pd.DataFrame]
    trials: int
    seed: int = 0
    seconds: float = field(default=float("nan"), compare=False)

    def _counts(self) -> dict[str, dict[str, int]]:
        out = {}
        for name, table in self.data.items():
            inside = inside_interval(table).dropna()
            out[name] = {
                "points": len(table),
                "simulated_points": len(inside),
                "theory_inside_ci": int(inside.sum()),
            }
        return out

    def summary(self) -> dict[str, Any]:
        """Trials, seed, and per figure its points, simulated points and agreements.

        Returns
        -------
        dict
            ``trials``, ``seed``, ``confidence`` (of the intervals),
            ``simulated_points`` and ``theory_inside_ci`` (over all figures),
            ``seconds`` and ``figures`` (``{name: {points, simulated_points,
            theory_inside_ci}}``).
        """
        counts = self._counts()
        seconds = self.seconds if math.isfinite(self.seconds) else None
        return {
            "trials": int(self.trials),
            "seed": int(self.seed),
            "confidence": 0.999,
            "simulated_points": sum(c["simulated_points"] for c in counts.values()),
            "theory_inside_ci": sum(c["theory_inside_ci"] for c in counts.values()),
            "seconds": None if seconds is None else round(seconds, 2),
            "figures": counts,
        }

    def format_table(self) -> str:
        """One line per figure: points, simulated points, and how many intervals hold the theory."""
        counts = self._counts()
        lines = [f"{'figure':<12}{'points':>8}{'simulated':>11}{'theory in 99.9% CI':>20}"]
        for name, c in counts.items():
            agree = (
                f"{c['theory_inside_ci']}/{c['simulated_points']}" if c["simulated_points"] else "-"
            )
            lines.append(f"{name:<12}{c['points']:>8}{c['simulated_points']:>11}{agree:>20}")
        if self.trials:
            lines.append(f"({self.trials} trials per simulated point, seeds from {self.seed + 1})")
        else:
            lines.append("(theory only: no simulated points)")
        return "\n".join(lines)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The table of each figure (written to ``<figure>.csv``)."""
        return dict(self.data)

    def plot(self) -> dict[str, Any]:
        """The figures by name (written to ``figures/<figure>.png``)."""
        from neuro.dendrites import plots

        drawers = {
            "error_vs_n": plots.plot_error_vs_n,
            "error_vs_a": plots.plot_error_vs_a,
            "union": plots.plot_union,
            "noise": plots.plot_noise,
            "threshold": plots.plot_threshold,
        }
        return {name: drawers[name](table) for name, table in self.data.items()}


def paper_figures(
    trials: int = 10_000, *, device: str = "auto", seed: int = 0, verbose: int = 0
) -> PaperFigures:
    """Compute the numbers behind the paper's five figures (module docstring).

    Parameters
    ----------
    trials : int, default=10_000
        Monte Carlo trials per simulated point; 0 computes the theory only.
        A point is simulated where its probability ``p`` allows about 30
        events either way (``30 / trials <= p <= 1 - 30 / trials``): 23
        points at the default, about 15 s on a 2-core CPU.
    device : str, default="auto"
        Where the simulations run.
    seed : int, default=0
        The k-th simulated point uses seed ``seed + k``.
    verbose : int, default=0
        1 shows a progress bar per simulated point.

    Returns
    -------
    PaperFigures
    """
    trials = check_int("trials", trials, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    start = time.perf_counter()
    sim = _Simulator(trials, device, seed, verbose)
    data = {name: _frame(make(sim)) for name, make in _MAKERS.items()}
    return PaperFigures(data, trials, seed, time.perf_counter() - start)
