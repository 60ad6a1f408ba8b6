"""What a fitted dynamic connectome found, as a :class:`neuro.results.Result`.

:meth:`DynamicConnectome.report() <neuro.connectome.ntf.DynamicConnectome.report>`
returns a :class:`ConnectomeReport`; ``report.save(folder)`` writes

* ``metrics.json``: :meth:`ConnectomeReport.summary` (parameters, rank, error,
  rank table, communities, and the recovery of planted truth when given);
* ``summary.txt``: :meth:`ConnectomeReport.format_table`;
* ``time_factors.csv``, ``animal_factors.csv``, ``pair_factors.csv``,
  ``communities.csv`` (and ``rank_selection.csv``, ``recovery.csv`` when
  there is a rank selection or a recovery);
* ``component_<r>.graphml``: each component's weighted graph, nodes carrying
  ``label``, ``community`` and ``core``;
* ``figures/factors.png``, ``figures/affinity_matrices.png``,
  ``figures/networks.png`` (and ``figures/rank_selection.png``).

The fitted model itself is kept with ``model.save(path)`` (one file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neuro.results import Result, jsonable

__all__ = ["ConnectomeReport"]


class ConnectomeReport(Result):
    """The factors, communities and (optionally) recovery of a fitted ``DynamicConnectome``.

    Parameters
    ----------
    model : DynamicConnectome
        A fitted model (the report reads its attributes; it copies nothing).
    recovery : dict, optional
        :func:`~neuro.connectome.groundtruth.evaluate_recovery` of the model.
    data : dict, optional
        A description of the input (source, shape, ...), kept under ``"data"``.

    Examples
    --------
    >>> from data_loaders.simulate.calcium import simulate_calcium
    >>> from neuro.connectome import DynamicConnectome
    >>> sim = simulate_calcium(n_animals=2, n_neurons=10, n_frames=300, n_communities=1,
    ...                        community_size=4, n_blocks=4, seed=0)
    >>> report = DynamicConnectome(rank=2, n_restarts=1, device="cpu").fit(sim.data).report()
    >>> sorted(report.tables())
    ['animal_factors', 'communities', 'pair_factors', 'time_factors']
    >>> report.summary()["tensor_shape"]
    [15, 2, 45]
    """

    def __init__(self, model, recovery: dict | None = None, data: dict | None = None) -> None:
        model._check_fitted()
        self.model = model
        self.recovery = recovery
        self.data = data

    def summary(self) -> dict[str, Any]:
        """Parameters, rank, error, rank table, communities (and recovery, data) as JSON values."""
        m = self.model
        out = {
            "params": m.get_params(deep=False),
            "rank": int(m.rank_),
            "reconstruction_error": float(m.reconstruction_error_),
            "n_missing_entries": int(m.n_missing_entries_),
            "tensor_shape": list(m.affinity_.shape),
            "weights": m.weights_.tolist(),
            "rank_table": None if m.rank_selection_ is None else m.rank_selection_.table,
            "communities": [c.summary() for c in m.communities_],
            "bins": {
                "frames": int(m.bin_frames_),
                "sampling_rate": float(m.sampling_rate_),
                **(m.bin_check_ or {}),
            },
        }
        if self.data is not None:
            out["data"] = dict(self.data)
        if self.recovery is not None:
            out["recovery"] = self.recovery
        return jsonable(out)

    def format_table(self) -> str:
        """Tensor, rank table, per-component communities and recovery, as text."""
        m = self.model
        lines = [
            f"affinity tensor {tuple(m.affinity_.shape)} (bins, animals, pairs), "
            f"{m.n_missing_entries_} missing entries",
            f"time bins of {m.bin_frames_ / m.sampling_rate_:.3g} s ({m.bin_frames_} frames at "
            f"{m.sampling_rate_:g} Hz)" + _events(m.bin_check_),
        ]
        if m.rank_selection_ is not None:
            lines.append(m.rank_selection_.format_table())
        lines.append(f"rank {m.rank_}, relative error {m.reconstruction_error_:.4f}")
        lines.append(
            "component  weight    blocks  core  core_density  background  peak_time  stability"
        )
        for r, c in enumerate(m.communities_):
            peak = m.bin_times_[int(np.argmax(m.time_factors_[:, r]))]
            stability = getattr(c, "stability", None)
            lines.append(
                f"{r:>9d}  {m.weights_[r]:8.3f}  {int(c.labels.max()) + 1:>6d}  "
                f"{int(c.core.sum()):>4d}  {c.core_density:12.4f}  {c.background_density:10.4f}  "
                f"{peak:9.1f}  " + ("        -" if stability is None else f"{stability:9.2f}")
            )
        if self.recovery is not None:
            for row in self.recovery["communities"]:
                lines.append(
                    f"  community {row['community']} -> component {row['component']}: time r="
                    f"{row['time_correlation']:.2f}, animal cos={row['animal_cosine']:.2f}, "
                    f"ARI={row['ari']:.2f}"
                )
            lines.append(
                f"  ARI of all communities: {self.recovery['ari_all']:.3f} "
                f"(noise {self.recovery['noise']})"
            )
        return "\n".join(lines)

    def tables(self) -> dict[str, Any]:
        """Factor, community, rank-selection and recovery tables (pandas DataFrames).

        Returns
        -------
        dict
            ``time_factors`` (``bin_time`` and one column ``component_<r>``
            per component), ``animal_factors`` (``animal``, ...),
            ``pair_factors`` (``neuron_i``, ``neuron_j``, ...), ``communities``
            (``neuron``, ``community_<r>``, ``core_<r>``), and
            ``rank_selection`` / ``recovery`` when present.
        """
        import pandas as pd

        m = self.model
        names = [f"component_{r}" for r in range(m.rank_)]
        labels = np.asarray(m.neuron_labels_)
        time = pd.DataFrame(m.time_factors_, columns=names)
        time.insert(0, "bin_time", m.bin_times_)
        animals = pd.DataFrame(m.animal_factors_, columns=names)
        animals.insert(0, "animal", list(m.animal_ids_))
        pairs = pd.DataFrame(m.pair_factors_, columns=names)
        pairs.insert(0, "neuron_j", labels[m.pairs_[:, 1]])
        pairs.insert(0, "neuron_i", labels[m.pairs_[:, 0]])
        comms = {"neuron": labels}
        for r, c in enumerate(m.communities_):
            comms[f"community_{r}"] = c.labels
            comms[f"core_{r}"] = c.core
        out = {
            "time_factors": time,
            "animal_factors": animals,
            "pair_factors": pairs,
            "communities": pd.DataFrame(comms),
        }
        if m.rank_selection_ is not None:
            out.update(m.rank_selection_.tables())
        if self.recovery is not None:
            out["recovery"] = pd.DataFrame(self.recovery["communities"])
        return out

    def plot(self) -> dict[str, Any]:
        """Figures of :mod:`neuro.connectome.plots`: factors, affinity matrices, networks, ranks."""
        from neuro.connectome import plots

        m = self.model
        figs = {
            "factors": plots.plot_factors(m),
            "affinity_matrices": plots.plot_affinity_matrices(m),
            "networks": plots.plot_networks(m),
        }
        if m.rank_selection_ is not None:
            figs.update(m.rank_selection_.plot())
        return figs

    def _save_extra(self, folder: Path, overwrite: bool) -> None:
        from neuro.connectome.communities import write_graphml

        for r, c in enumerate(self.model.communities_):
            write_graphml(c.graph, folder / f"component_{r}.graphml", overwrite=overwrite)


def _events(check: dict | None) -> str:
    """ ", 0.12 events per neuron per bin" (and whether too few), or nothing for an old model."""
    if not check:
        return ""
    short = " (too short: see the warning)" if check["too_short"] else ""
    return f", {check['events_per_bin']:.2g} events per neuron per bin{short}"
