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
* the public code's further analyses (:mod:`neuro.rnn.analyses`): the PCA
  dimensionality of the activity at every N solved, and at the common N the
  fastest and slowest neurons silenced one at a time, normalised
  perturbations of the taus (increase only) and of the recurrent weights
  (both scored at every step of a long random stream), and retraining after
  a perturbation and on the next N. Each switches off with a zero setting.

It returns a :class:`CurriculumComparison`, a :class:`~neuro.results.Result`:
``summary()`` (JSON values), ``format_table()``, ``tables()``, ``plot()``
(the paper's panels, :mod:`neuro.rnn.plots`) and ``save(folder)``.
``neuro rnn``, ``scripts/rnn_timescales.py`` and the tutorial call it.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neuro._validation import check_array, check_bool, check_choice, check_float, check_int
from neuro.errors import InputError, InputTypeError
from neuro.results import Result, jsonable
from neuro.rnn.analyses import (
    network_dimensionality,
    normalized_perturbation_curve,
    retraining_curve,
    tau_ablation,
)
from neuro.rnn.curricula import CURRICULA, CurriculumConfig, CurriculumResult, train_curriculum
from neuro.rnn.models import LeakyRNN
from neuro.rnn.timescales import (
    ablation_curve,
    network_timescales,
    perturbation_curve,
    retention,
)
from neuro.train import resolve_device

__all__ = ["CurriculumComparison", "compare_curricula"]

#: The robustness curves: name in ``summary()``, attribute, and what the curve varies.
_CURVES = (
    ("ablation", "ablation", "fractions"),
    ("ablation_slowest_taus", "ablation_slowest", "fractions"),
    ("perturbation", "perturbation", "sigmas"),
)
#: Lags of the network-timescale autocorrelations (``network_timescales``' default).
_MAX_LAG = 50


@dataclass
class CurriculumComparison(Result):
    """Results of :func:`compare_curricula`, keyed by curriculum kind (a :class:`Result`).

    ``save(folder)`` writes ``metrics.json`` (:meth:`summary`), ``summary.txt``
    (:meth:`format_table`), ``history.csv``, ``timescales.csv``,
    ``robustness.csv``, ``retention.csv``, ``dimensionality.csv``,
    ``tau_ablation.csv``, ``normalized_perturbation.csv`` and
    ``retraining.csv`` (:meth:`tables`), ``figures/{curriculum,taus,
    robustness,retention,dimensionality,tau_ablation,normalized_perturbation,
    retraining}.png`` (:meth:`plot`) and, per curriculum, ``<kind>/network.pt``
    and ``<kind>/snapshots/N{n}.pt``. Analyses switched off leave their tables
    and figures out.

    Attributes
    ----------
    results : dict
        ``{kind: CurriculumResult}``.
    timescales : dict
        ``{kind: {N: TimescaleResult.summary()}}`` for each N solved.
    ablation, ablation_slowest, perturbation : dict
        ``{kind: {"fractions" or "sigmas": (k,), "accuracy": (k, n_repeats)}}``
        at N = :attr:`n_common` (``ablation_slowest``: leaky RNNs only).
    retention : dict
        ``{kind: {N: accuracy of the final network}}``.
    n_common : int or None
        The largest N that every curriculum solved (None: none was).
    example_ac : dict
        ``{kind: (hidden, lags)}`` autocorrelations at the largest N solved.
    dimensionality : dict
        ``{kind: {N: (trials,)}}`` PCA dimensionality of the activity under
        random input (components for 90% of the variance), each N solved
        (:func:`~neuro.rnn.analyses.network_dimensionality`).
    example_pca : dict
        ``{kind: (hidden,)}`` explained-variance ratios (mean over trials) at
        the largest N solved.
    tau_ablation : dict
        ``{kind: tau_ablation(...)}`` at N = :attr:`n_common` (leaky RNNs):
        the fastest and slowest neurons silenced one at a time, scored at
        every step of a random stream (:func:`~neuro.rnn.analyses.tau_ablation`).
    normalized_perturbation : dict
        ``{kind: {"taus": ..., "recurrent": ...}}``, each a
        :func:`~neuro.rnn.analyses.normalized_perturbation_curve` at
        :attr:`n_common` (taus only increased, as the public code does; the
        taus curve for leaky RNNs only).
    retraining : dict
        ``{kind: {"perturbed": ..., "larger_n": ...}}``, each a
        :func:`~neuro.rnn.analyses.retraining_curve`: after a normalised
        perturbation of the recurrent weights at :attr:`n_common`, and
        unperturbed on the next N (the paper's retraining on larger N).
    settings : dict
        The analysis settings (``timescale_steps``, ``n_repeats``, ``seed``, ...).
    """

    results: dict[str, CurriculumResult]
    timescales: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    ablation: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    ablation_slowest: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    perturbation: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    retention: dict[str, dict[int, float]] = field(default_factory=dict)
    n_common: int | None = None
    example_ac: dict[str, np.ndarray] = field(default_factory=dict)
    dimensionality: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    example_pca: dict[str, np.ndarray] = field(default_factory=dict)
    tau_ablation: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    normalized_perturbation: dict[str, dict[str, dict]] = field(default_factory=dict)
    retraining: dict[str, dict[str, dict]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The comparison as plain JSON values (NaN as None).

        Returns
        -------
        dict
            ``n_common``; ``config`` (the settings shared by the runs, without
            ``kind``) and ``settings`` (of the analyses); ``curricula``:
            ``{kind: run summary + timescales_by_N, ablation,
            ablation_slowest_taus, perturbation (mean accuracy at each point),
            retention}``.
        """
        out: dict[str, Any] = {"n_common": self.n_common, "curricula": {}}
        if self.results:
            config = dataclasses.asdict(next(iter(self.results.values())).config)
            config.pop("kind")
            out["config"] = config
        out["settings"] = dict(self.settings)
        for kind, res in self.results.items():
            entry = res.summary()
            entry.pop("config", None)
            entry["timescales_by_N"] = {str(n): v for n, v in self.timescales.get(kind, {}).items()}
            for name, attr, x in _CURVES:
                curves = getattr(self, attr)
                if kind in curves:  # mean accuracy at each point of the curve
                    c = curves[kind]
                    means = c["accuracy"].mean(1)
                    entry[name] = {f"{v:g}": float(m) for v, m in zip(c[x], means, strict=True)}
            if kind in self.retention:
                entry["retention"] = {str(n): a for n, a in self.retention[kind].items()}
            entry.update(self._analyses_summary(kind))
            out["curricula"][kind] = entry
        return jsonable(out)

    def _analyses_summary(self, kind: str) -> dict[str, Any]:
        """The further analyses of one curriculum, as means (for :meth:`summary`)."""
        out: dict[str, Any] = {}
        if self.dimensionality.get(kind):
            out["dimensionality_by_N"] = {
                str(n): float(np.mean(d)) for n, d in sorted(self.dimensionality[kind].items())
            }
        if kind in self.tau_ablation:
            a = self.tau_ablation[kind]
            out["tau_ablation"] = {
                "baseline": float(a["baseline"].mean()),
                "fastest": float(a["accuracy"][~a["slow"]].mean()),
                "slowest": float(a["accuracy"][a["slow"]].mean()),
                "tau_fastest": float(a["taus"][~a["slow"]].mean()),
                "tau_slowest": float(a["taus"][a["slow"]].mean()),
            }
        for target, c in self.normalized_perturbation.get(kind, {}).items():
            means = c["relative"].mean(1)
            out[f"normalized_perturbation_{target}"] = {
                f"{v:g}": float(m) for v, m in zip(c["strengths"], means, strict=True)
            }
        for name, c in self.retraining.get(kind, {}).items():
            out[f"retraining_{name}"] = {
                str(int(n)): {"baseline": float(b), "accuracy_by_epoch": acc.tolist()}
                for n, b, acc in zip(c["ns"], c["baseline"], c["accuracy"], strict=True)
            }
        return out

    def format_table(self) -> str:
        """A plain-text table of the headline figures, one row per curriculum."""
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
        if self.n_common is not None:
            lines.append(f"(ablation at N={self.n_common}, the largest N every curriculum solved)")
        return "\n".join(lines)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The numbers behind the figures, one table each (empty ones left out).

        Returns
        -------
        dict of DataFrame
            ``history`` (curriculum, one row per epoch), ``timescales``
            (curriculum, N, the timescale summary), ``robustness`` (curriculum,
            analysis, x, accuracy_mean, accuracy_sd, repeats) and
            ``retention`` (curriculum, N, accuracy).
        """
        history = [
            {"curriculum": kind, **record}
            for kind, res in self.results.items()
            for record in res.history
        ]
        timescales = [
            {"curriculum": kind, "N": n, **values}
            for kind, by_n in self.timescales.items()
            for n, values in sorted(by_n.items())
        ]
        robustness = []
        for name, attr, x in _CURVES:
            for kind, c in getattr(self, attr).items():
                for v, acc in zip(c[x], c["accuracy"], strict=True):
                    robustness.append(
                        {
                            "curriculum": kind,
                            "analysis": name,
                            "x": float(v),
                            "accuracy_mean": float(acc.mean()),
                            "accuracy_sd": float(acc.std()),
                            "repeats": len(acc),
                        }
                    )
        retained = [
            {"curriculum": kind, "N": n, "accuracy": a}
            for kind, by_n in self.retention.items()
            for n, a in sorted(by_n.items())
        ]
        rows = {
            "history": history,
            "timescales": timescales,
            "robustness": robustness,
            "retention": retained,
            **self._analyses_rows(),
        }
        return {name: pd.DataFrame(r) for name, r in rows.items() if r}

    def _analyses_rows(self) -> dict[str, list[dict[str, Any]]]:
        """Rows of ``dimensionality``, ``tau_ablation``, ``normalized_perturbation``, ``retraining``."""
        dims = [
            {"curriculum": kind, "N": n, "trial": t, "dimensionality": int(v)}
            for kind, by_n in self.dimensionality.items()
            for n, d in sorted(by_n.items())
            for t, v in enumerate(d)
        ]
        ablated = []
        for kind, a in self.tau_ablation.items():
            ablated.append(
                {
                    "curriculum": kind,
                    "group": "none",
                    "neuron": -1,
                    "tau": np.nan,
                    "accuracy_mean": float(a["baseline"].mean()),
                    "accuracy_sd": float(a["baseline"].std()),
                }
            )
            for i, tau, slow, acc in zip(
                a["neurons"], a["taus"], a["slow"], a["accuracy"], strict=True
            ):
                ablated.append(
                    {
                        "curriculum": kind,
                        "group": "slowest" if slow else "fastest",
                        "neuron": int(i),
                        "tau": float(tau),
                        "accuracy_mean": float(acc.mean()),
                        "accuracy_sd": float(acc.std()),
                    }
                )
        perturbed = [
            {
                "curriculum": kind,
                "target": target,
                "strength": float(v),
                "accuracy_mean": float(acc.mean()),
                "relative_mean": float(rel.mean()),
                "relative_sd": float(rel.std()),
            }
            for kind, by_target in self.normalized_perturbation.items()
            for target, c in by_target.items()
            for v, acc, rel in zip(c["strengths"], c["accuracy"], c["relative"], strict=True)
        ]
        retrained = [
            {
                "curriculum": kind,
                "analysis": name,
                "N": int(n),
                "epoch": e,
                "accuracy": float(a),
                "baseline": float(b),
            }
            for kind, by_name in self.retraining.items()
            for name, c in by_name.items()
            for n, b, acc in zip(c["ns"], c["baseline"], c["accuracy"], strict=True)
            for e, a in enumerate(acc)
        ]
        return {
            "dimensionality": dims,
            "tau_ablation": ablated,
            "normalized_perturbation": perturbed,
            "retraining": retrained,
        }

    def plot(self) -> dict[str, Any]:
        """The figures by name: ``curriculum``, ``taus``, ``robustness``, ``retention`` and,
        where those analyses ran, ``dimensionality``, ``tau_ablation``,
        ``normalized_perturbation`` and ``retraining``."""
        from neuro.rnn import plots

        extra = {}
        if any(self.dimensionality.values()):
            extra["dimensionality"] = plots.plot_dimensionality(
                self.dimensionality, self.example_pca
            )
        if self.tau_ablation:
            extra["tau_ablation"] = plots.plot_tau_ablation(self.tau_ablation, self.n_common)
        if self.normalized_perturbation:
            extra["normalized_perturbation"] = plots.plot_normalized_perturbation(
                self.normalized_perturbation, self.n_common
            )
        if self.retraining:
            extra["retraining"] = plots.plot_retraining(self.retraining)
        base = {
            "curriculum": plots.plot_curriculum(self.results),
            "taus": plots.plot_timescales(self.timescales, self.results),
            "robustness": plots.plot_robustness(
                self.ablation, self.perturbation, self.n_common, self.ablation_slowest
            ),
            "retention": plots.plot_retention(self.retention, self.example_ac),
        }
        return base | extra

    def _save_extra(self, folder: Path, overwrite: bool) -> None:
        """Each curriculum's ``<kind>/network.pt`` and ``<kind>/snapshots/N{n}.pt``."""
        for kind, res in self.results.items():
            res._save_extra(folder / kind, overwrite)


def compare_curricula(
    config: CurriculumConfig,
    kinds: Sequence[str] = ("single", "multi"),
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    timescale_steps: int = 100_000,
    timescale_trials: int = 10,
    ablation_fractions: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.5),
    perturbation_sigmas: Sequence[float] = (0.0, 0.25, 0.5, 1.0, 2.0),
    n_repeats: int = 3,
    n_sequences: int = 512,
    pca_steps: int = 10_000,
    pca_trials: int = 10,
    tau_ablation_neurons: int = 20,
    normalized_strengths: Sequence[float] = (0.0, 0.01, 0.1, 1.0, 10.0),
    stream_steps: int = 1_000,
    stream_trials: int = 10,
    retrain_epochs: int = 2,
    retrain_perturbation: float = 1.0,
    device: str = "auto",
    seed: int = 0,
    verbose: int = 0,
) -> CurriculumComparison:
    """Train one network per curriculum kind with ``config`` and compare them.

    Parameters
    ----------
    config : CurriculumConfig
        Shared settings; its ``kind`` is replaced by each of ``kinds``.
    kinds : sequence of {"single", "multi", "sliding"}
        The sliding window takes ``config.window`` and ``config.stride``.
    out_dir : path, optional
        Each run writes into ``out_dir/<kind>`` (checkpoints, snapshots).
    resume : bool, default=False
        Continue killed runs in ``out_dir`` from their last checkpoints.
    timescale_steps, timescale_trials : int
        Length and number of the random-input simulations per snapshot
        (default: the public code's 1e5 steps x 10 trials, after 1,000 steps
        of burn-in; see :func:`~neuro.rnn.timescales.network_timescales`).
    ablation_fractions, perturbation_sigmas : sequence of float
    n_repeats, n_sequences : int
        Random draws per point, and test sequences per accuracy.
    pca_steps, pca_trials : int
        Random-input simulation for the PCA dimensionality at each N solved
        (:func:`~neuro.rnn.analyses.network_dimensionality`; 0 steps: skip).
        The public code's is 100,500 steps x 10 trials; on the two 64-neuron
        networks of ``neuro rnn``'s small default, 10,000 steps gave the same
        dimensionality in every trial at a tenth of the cost (0.2 s against
        2 s per network on one CPU thread).
    tau_ablation_neurons : int, default=20
        The fastest and the slowest this many neurons silenced one at a time
        at ``n_common`` (leaky RNNs; :func:`~neuro.rnn.analyses.tau_ablation`;
        0: skip). The public code's 20.
    normalized_strengths : sequence of float
        Strengths of the normalised perturbations of the taus (increase only)
        and of the recurrent weights at ``n_common``
        (:func:`~neuro.rnn.analyses.normalized_perturbation_curve`; empty:
        skip). The public code's grids run from 1e-3 (taus) or 1e-2 (weights)
        to 10.
    stream_steps, stream_trials : int
        The scoring stream of the last two (the public code's 1,000 steps
        after 100 of warm-up, 10 trials).
    retrain_epochs : int, default=2
        Epochs of single-head retraining (of the config's ``steps_per_epoch``
        batches) after a normalised perturbation of the recurrent weights of
        strength ``retrain_perturbation`` at ``n_common``, and unperturbed on
        ``n_common + 1`` (:func:`~neuro.rnn.analyses.retraining_curve`; 0:
        skip). The paper retrains for 20 epochs of 600 batches.
    retrain_perturbation : float, default=1.0
    device, seed, verbose
        As for :func:`~neuro.rnn.curricula.train_curriculum`.

    Returns
    -------
    CurriculumComparison

    Raises
    ------
    InputError
        Any setting out of range, before anything is trained.
    """
    if not isinstance(config, CurriculumConfig):
        raise InputTypeError(f"config must be a CurriculumConfig; got {type(config).__name__}.")
    if isinstance(kinds, str):
        kinds = [kinds]
    kinds = [check_choice("kinds", k, CURRICULA) for k in kinds]
    if not kinds or len(set(kinds)) != len(kinds):
        raise InputError(f"kinds must name each curriculum once (e.g. single multi); got {kinds}.")
    configs = {k: replace(config, kind=k) for k in kinds}  # each checked before any training
    if out_dir is not None and not isinstance(out_dir, (str, os.PathLike)):
        raise InputTypeError(f"out_dir must be a path or None; got {type(out_dir).__name__}.")
    resume = check_bool("resume", resume)
    overwrite = check_bool("overwrite", overwrite)
    timescale_steps = check_int("timescale_steps", timescale_steps, minimum=2)
    if timescale_steps <= _MAX_LAG:
        raise InputError(
            f"timescale_steps must be > {_MAX_LAG} (the autocorrelations reach lag {_MAX_LAG}); "
            f"got {timescale_steps}."
        )
    timescale_trials = check_int("timescale_trials", timescale_trials, minimum=1)
    fractions = check_array("ablation_fractions", ablation_fractions, ndim=1, dtype=float)
    if ((fractions < 0) | (fractions > 1)).any():
        raise InputError(f"ablation_fractions must lie in [0, 1]; got {list(ablation_fractions)}.")
    sigmas = check_array("perturbation_sigmas", perturbation_sigmas, ndim=1, dtype=float)
    if (sigmas < 0).any():
        raise InputError(f"perturbation_sigmas must be >= 0; got {list(perturbation_sigmas)}.")
    n_repeats = check_int("n_repeats", n_repeats, minimum=1)
    n_sequences = check_int("n_sequences", n_sequences, minimum=1)
    pca_steps = check_int("pca_steps", pca_steps, minimum=0)
    if 0 < pca_steps < 2:
        raise InputError(f"pca_steps must be 0 (skip) or >= 2; got {pca_steps}.")
    pca_trials = check_int("pca_trials", pca_trials, minimum=1)
    tau_ablation_neurons = check_int("tau_ablation_neurons", tau_ablation_neurons, minimum=0)
    strengths = np.zeros(0)
    empty = isinstance(normalized_strengths, (list, tuple, np.ndarray)) and not len(
        normalized_strengths
    )
    if not empty:  # an empty sequence skips the analysis
        strengths = check_array("normalized_strengths", normalized_strengths, ndim=1, dtype=float)
    if (strengths < 0).any():
        raise InputError(f"normalized_strengths must be >= 0; got {list(normalized_strengths)}.")
    stream_steps = check_int("stream_steps", stream_steps, minimum=1)
    stream_trials = check_int("stream_trials", stream_trials, minimum=1)
    retrain_epochs = check_int("retrain_epochs", retrain_epochs, minimum=0)
    retrain_perturbation = check_float("retrain_perturbation", retrain_perturbation, minimum=0.0)
    seed = check_int("seed", seed, minimum=0)
    dev = resolve_device(device)  # the analyses run where training ran
    settings = {
        "kinds": kinds,
        "timescale_steps": timescale_steps,
        "timescale_trials": timescale_trials,
        "ablation_fractions": fractions.tolist(),
        "perturbation_sigmas": sigmas.tolist(),
        "n_repeats": n_repeats,
        "n_sequences": n_sequences,
        "pca_steps": pca_steps,
        "pca_trials": pca_trials,
        "tau_ablation_neurons": tau_ablation_neurons,
        "normalized_strengths": strengths.tolist(),
        "stream_steps": stream_steps,
        "stream_trials": stream_trials,
        "retrain_epochs": retrain_epochs,
        "retrain_perturbation": retrain_perturbation,
        "device": str(dev),
        "seed": seed,
    }
    results: dict[str, CurriculumResult] = {}
    for kind in kinds:
        run_dir = None if out_dir is None else Path(out_dir) / kind
        resume_from = (
            "last" if resume and run_dir and (run_dir / "checkpoints/last.pt").is_file() else None
        )
        results[kind] = train_curriculum(
            configs[kind],
            out_dir=run_dir,
            resume=resume_from,
            overwrite=overwrite,
            device=device,
            seed=seed,
            verbose=verbose,
        )
    comp = CurriculumComparison(results, settings=settings)
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
            if pca_steps:
                pca = network_dimensionality(
                    res.network_at(n).to(dev), pca_steps, pca_trials, seed=seed
                )
                comp.dimensionality.setdefault(kind, {})[n] = pca["dimensionality"]
                if n == max(res.snapshots):
                    comp.example_pca[kind] = pca["explained_variance_ratio"].mean(0)
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
                net, task, n, head, fractions, n_repeats, n_sequences, seed
            )
            if isinstance(net, LeakyRNN):
                comp.ablation_slowest[kind] = ablation_curve(
                    net, task, n, head, fractions, n_repeats, n_sequences, seed, "slowest"
                )
            comp.perturbation[kind] = perturbation_curve(
                net, task, n, head, sigmas, "recurrent", n_repeats, n_sequences, seed
            )
            _further_analyses(comp, kind, res, net, n, settings, dev)
    return comp


def _further_analyses(comp, kind, res, net, n, settings, dev) -> None:
    """The public code's ablation by tau, normalised perturbations and retraining at N = n."""
    cfg, head, s = res.config, res.config.head_of(n), settings
    stream = dict(n_steps=s["stream_steps"], n_trials=s["stream_trials"], seed=s["seed"])
    # the stream's 100 warm-up steps must cover the N read (N > 100 takes warmup = N)
    stream["warmup"] = max(100, n)
    leaky = isinstance(net, LeakyRNN)
    if leaky and s["tau_ablation_neurons"]:
        comp.tau_ablation[kind] = tau_ablation(
            net, cfg.task, n, head, s["tau_ablation_neurons"], **stream
        )
    if s["normalized_strengths"]:
        targets = ("taus", "recurrent") if leaky else ("recurrent",)
        comp.normalized_perturbation[kind] = {
            t: normalized_perturbation_curve(
                net, cfg.task, n, head, s["normalized_strengths"], t, **stream
            )
            for t in targets
        }
    if s["retrain_epochs"]:
        train = dict(
            epochs=s["retrain_epochs"],
            steps_per_epoch=cfg.steps_per_epoch,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            momentum=cfg.momentum,
            grad_clip_norm=cfg.grad_clip_norm,
            n_sequences=s["n_sequences"],
            device=str(dev),
            seed=s["seed"],
        )
        comp.retraining[kind] = {
            "perturbed": retraining_curve(
                net, cfg.task, [n], head, perturbation=s["retrain_perturbation"], **train
            ),
            "larger_n": retraining_curve(net, cfg.task, [n + 1], head, **train),
        }
