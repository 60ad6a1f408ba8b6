"""The paper's comparison of curricula, end to end: train, measure timescales, ablate, perturb.

:func:`compare_curricula` trains one network per curriculum on the same task
and budget, then for each network

* the trained taus and the network-mediated timescales (median over
  neurons) at every N it solved, from the snapshot taken when it solved it;
* accuracy after removing random neurons, after removing the neurons with
  the slowest trained taus, and after perturbing the recurrent weights, at
  the largest N that every curriculum solved (so the networks face the same
  task);
* retention: the final network's accuracy on every N it solved along the
  way (the single-head network's one head must still answer earlier N).

It returns a :class:`CurriculumComparison` whose ``summary()`` is
JSON-ready and whose ``figures()`` draws the paper's panels. ``neuro rnn``,
``scripts/rnn_timescales.py`` and the tutorial call it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from neuro.rnn.curricula import CurriculumConfig, CurriculumResult, train_curriculum
from neuro.rnn.models import LeakyRNN
from neuro.rnn.timescales import (
    ablation_curve,
    network_timescales,
    perturbation_curve,
    retention,
)
from neuro.train import resolve_device

__all__ = ["CurriculumComparison", "compare_curricula"]


@dataclass
class CurriculumComparison:
    """Results of :func:`compare_curricula`, keyed by curriculum kind."""

    results: dict[str, CurriculumResult]
    timescales: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    ablation: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    ablation_slowest: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    perturbation: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    retention: dict[str, dict[int, float]] = field(default_factory=dict)
    n_common: int | None = None
    example_ac: dict[str, np.ndarray] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_common": self.n_common, "curricula": {}}
        for kind, res in self.results.items():
            entry = res.summary()
            entry["timescales_by_N"] = {str(n): v for n, v in self.timescales.get(kind, {}).items()}
            for name, curves, x in (
                ("ablation", self.ablation, "fractions"),
                ("ablation_slowest_taus", self.ablation_slowest, "fractions"),
                ("perturbation", self.perturbation, "sigmas"),
            ):
                if kind in curves:  # mean accuracy at each point of the curve
                    c = curves[kind]
                    means = c["accuracy"].mean(1)
                    entry[name] = {f"{v:g}": float(m) for v, m in zip(c[x], means, strict=True)}
            if kind in self.retention:
                entry["retention"] = {str(n): a for n, a in self.retention[kind].items()}
            out["curricula"][kind] = entry
        return out

    def format_table(self) -> str:
        """A plain-text table of the headline figures."""
        lines = [
            f"{'curriculum':<11}{'N reached':>10}{'epochs':>8}{'tau(start)':>11}"
            f"{'tau(end)':>10}{'tau_net(start)':>15}{'tau_net(end)':>13}"
            f"{'abl. 30%':>10}{'retention':>10}"
        ]
        for kind, res in self.results.items():
            ts = self.timescales.get(kind, {})
            ns = sorted(ts)

            def get(n, key, ts=ts):
                return ts[n].get(key, float("nan")) if n in ts else float("nan")

            first, last = (ns[0], ns[-1]) if ns else (None, None)
            abl = float("nan")
            if kind in self.ablation:
                a = self.ablation[kind]
                k = int(np.argmin(np.abs(a["fractions"] - 0.3)))
                abl = float(a["accuracy"][k].mean())
            ret = self.retention.get(kind, {})
            ret_mean = float(np.mean(list(ret.values()))) if ret else float("nan")
            lines.append(
                f"{kind:<11}{res.n_reached:>10}{len(res.history):>8}"
                f"{get(first, 'trained_tau_mean'):>11.3f}{get(last, 'trained_tau_mean'):>10.3f}"
                f"{get(first, 'tau_net_median'):>15.2f}{get(last, 'tau_net_median'):>13.2f}"
                f"{abl:>10.3f}{ret_mean:>10.3f}"
            )
        return "\n".join(lines)

    def figures(self) -> dict[str, Any]:
        """The figures by file stem: ``taus``, ``curriculum``, ``robustness``, ``retention``."""
        from neuro.rnn import plots

        return {
            "curriculum": plots.plot_curriculum(self.results),
            "taus": plots.plot_timescales(self.timescales, self.results),
            "robustness": plots.plot_robustness(
                self.ablation, self.perturbation, self.n_common, self.ablation_slowest
            ),
            "retention": plots.plot_retention(self.retention, self.example_ac),
        }


def compare_curricula(
    config: CurriculumConfig,
    kinds: Sequence[str] = ("single", "multi"),
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    timescale_steps: int = 5_000,
    timescale_trials: int = 10,
    ablation_fractions: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.5),
    perturbation_sigmas: Sequence[float] = (0.0, 0.25, 0.5, 1.0, 2.0),
    n_repeats: int = 3,
    n_sequences: int = 512,
    device: str = "auto",
    seed: int = 0,
    verbose: int = 0,
) -> CurriculumComparison:
    """Train one network per curriculum kind with ``config`` and compare them.

    Parameters
    ----------
    config : CurriculumConfig
        Shared settings; its ``kind`` is replaced by each of ``kinds``.
    kinds : sequence of {"single", "multi"}
    out_dir : path, optional
        Each run writes into ``out_dir/<kind>`` (checkpoints, snapshots).
    resume : bool, default=False
        Continue killed runs in ``out_dir`` from their last checkpoints.
    timescale_steps, timescale_trials : int
        Length and number of the random-input simulations per snapshot.
    ablation_fractions, perturbation_sigmas : sequence of float
    n_repeats, n_sequences : int
        Random draws per point, and test sequences per accuracy.
    device, seed, verbose
        As for :func:`~neuro.rnn.curricula.train_curriculum`.
    """
    results: dict[str, CurriculumResult] = {}
    for kind in kinds:
        run_dir = None if out_dir is None else Path(out_dir) / kind
        resume_from = (
            "last" if resume and run_dir and (run_dir / "checkpoints/last.pt").is_file() else None
        )
        results[kind] = train_curriculum(
            replace(config, kind=kind),
            out_dir=run_dir,
            resume=resume_from,
            overwrite=overwrite,
            device=device,
            seed=seed,
            verbose=verbose,
        )
    comp = CurriculumComparison(results)
    dev = resolve_device(device)  # the analyses run where training ran
    for kind, res in results.items():
        cfg = res.config
        comp.timescales[kind] = {}
        for n in sorted(res.snapshots):
            ts = network_timescales(
                res.network_at(n).to(dev),
                n_steps=timescale_steps,
                n_trials=timescale_trials,
                seed=seed,
            )
            comp.timescales[kind][n] = ts.summary()
            if n == max(res.snapshots):
                comp.example_ac[kind] = ts.ac
        comp.retention[kind] = retention(
            copy.deepcopy(res.network).to(dev),
            cfg.task,
            sorted(res.solved_epoch),
            cfg.head_of,
            n_sequences,
            seed,
        )
    solved = [set(r.solved_epoch) for r in results.values()]
    common = set.intersection(*solved) if solved else set()
    if common:
        n = comp.n_common = max(common)
        for kind, res in results.items():
            net, head, task = res.network_at(n).to(dev), res.config.head_of(n), res.config.task
            comp.ablation[kind] = ablation_curve(
                net, task, n, head, ablation_fractions, n_repeats, n_sequences, seed
            )
            if isinstance(net, LeakyRNN):
                comp.ablation_slowest[kind] = ablation_curve(
                    net, task, n, head, ablation_fractions, n_repeats, n_sequences, seed, "slowest"
                )
            comp.perturbation[kind] = perturbation_curve(
                net, task, n, head, perturbation_sigmas, "recurrent", n_repeats, n_sequences, seed
            )
    return comp
