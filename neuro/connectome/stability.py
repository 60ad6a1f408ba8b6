"""Is a connectome a property of the animals or of one fit? Split-half refits, per-animal fits.

The connectome of :class:`~neuro.connectome.ntf.DynamicConnectome` assumes
that neuron ``i`` is the same identified cell in every animal of the animal
axis (as in C. elegans, or sessions of one mouse with cells registered across
sessions: :func:`data_loaders.calcium.stack_sessions`). Two tools follow:

:func:`split_half_stability`
    Splits the animals into two halves at random (``n_splits`` times), fits
    the model on each half with the same parameters and rank, pairs the two
    halves' components by the congruence of their pair factors (Hungarian
    algorithm, as :func:`~neuro.connectome.ntf.factor_match_score`) and scores
    each pair: pair-factor congruence (cosine), pair-factor correlation
    (Pearson: the cosine of non-negative factors is high even for unrelated
    ones), time-factor congruence, and the adjusted Rand index (ARI) of the two
    halves' community labels. Each matched pair is then attributed to the
    component of a *reference* fit on all animals that it resembles most, so
    that the result gives a stability score for every component (and
    partition) of that fit. Communities that the animals share give high
    congruence and ARI; partitions of noise (e.g. ``sbm_model="plain"`` on
    traces without shared drive) differ between the halves (ARI near 0), and
    a partition that one half finds and the other does not gives ARI 0. When
    both halves find a single community (no structure) the ARI is undefined
    (NaN) and counted as ``n_no_structure``: "no communities" is then what
    the halves agree on. The pair-factor correlation separates shared
    structure from noise even then (about 0.9 against 0.1 on the simulator).
    Cost: ``2 * n_splits + 1`` fits (the reference fit is reused when a
    fitted model is given).
:func:`fit_per_animal`
    One model per animal on that animal's own recorded neurons, for cells that
    cannot be matched across animals. Each model's animal factor is then
    trivial (one animal), and components of different animals are not paired.

Rank: the halves are fitted at one rank, so that their components can be
paired. It is ``rank`` when given; with ``rank=None`` it is the rank that the
reference fit on all animals selects (among ``ranks``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from neuro._validation import check_int
from neuro.errors import InputError, InputTypeError
from neuro.results import Result, jsonable
from neuro.train.progress import progress

__all__ = ["SplitHalfStability", "fit_per_animal", "split_half_stability"]

# columns of SplitHalfStability.table, in order
_COLUMNS = (
    "split",
    "component",
    "component_a",
    "component_b",
    "congruence",
    "pair_correlation",
    "time_congruence",
    "ari",
    "n_communities_a",
    "n_communities_b",
    "reference_congruence",
    "n_neurons",
)


@dataclass
class SplitHalfStability(Result):
    """Result of :func:`split_half_stability` (a :class:`neuro.results.Result`).

    Attributes
    ----------
    table : list of dict
        One row per split and component of the reference fit: ``split``,
        ``component`` (of the reference), ``component_a`` / ``component_b``
        (the matched components of the two halves' fits), ``congruence``
        (cosine of their pair factors), ``pair_correlation`` (Pearson r of the
        pair factors), ``time_congruence`` (cosine of the time factors;
        meaningful when the animals share one clock and protocol), ``ari``
        (adjusted Rand index of the halves' community labels; NaN when both
        find one community), ``n_communities_a`` / ``n_communities_b``,
        ``reference_congruence`` (geometric mean of the pair's cosines with the
        reference component) and ``n_neurons`` (neurons recorded in both halves,
        on which everything is computed).
    splits : list of tuple of (list of str, list of str)
        The animal ids of half ``a`` and half ``b`` of each split.
    rank : int
        The rank of every fit.
    rank_source : str
        ``"rank"`` (given) or ``"selected"`` (chosen by the reference fit).
    n_possible_splits : int
        Distinct splits of the animals (when ``n_splits`` is larger, all are used).
    reference_communities : list of int
        Communities of each component in the reference fit.
    params : dict
        The parameters of the fits (``rank`` as used for the halves).
    reference : DynamicConnectome
        The fit on all animals.
    """

    table: list
    splits: list
    rank: int
    rank_source: str
    n_possible_splits: int
    reference_communities: list
    params: dict
    reference: Any = field(default=None, repr=False)

    def components(self) -> list[dict[str, Any]]:
        """Per reference component: means over splits of the table's scores.

        Returns
        -------
        list of dict
            ``component``, ``n_communities`` (reference), ``congruence``,
            ``pair_correlation``, ``time_congruence``, ``ari`` (mean over the
            splits where it is defined; NaN if none), ``ari_sd``,
            ``n_no_structure`` (splits where both halves found one community)
            and ``n_splits``.
        """
        out = []
        for r in range(self.rank):
            rows = [row for row in self.table if row["component"] == r]
            ari = np.array([row["ari"] for row in rows], dtype=float)
            defined = ari[np.isfinite(ari)]
            out.append(
                {
                    "component": r,
                    "n_communities": int(self.reference_communities[r]),
                    "congruence": _mean(rows, "congruence"),
                    "pair_correlation": _mean(rows, "pair_correlation"),
                    "time_congruence": _mean(rows, "time_congruence"),
                    "ari": float(defined.mean()) if defined.size else float("nan"),
                    "ari_sd": float(defined.std()) if defined.size else float("nan"),
                    "n_no_structure": int((~np.isfinite(ari)).sum()),
                    "n_splits": len(rows),
                }
            )
        return out

    def summary(self) -> dict[str, Any]:
        """Rank, splits, per-component means and overall means, as JSON values.

        ``mean_congruence`` and ``mean_pair_correlation`` average every row;
        ``mean_ari`` the rows where the ARI is defined (None if none is).
        """
        ari = np.array([row["ari"] for row in self.table], dtype=float)
        defined = ari[np.isfinite(ari)]
        return jsonable(
            {
                "rank": int(self.rank),
                "rank_source": self.rank_source,
                "n_splits": len(self.splits),
                "n_possible_splits": int(self.n_possible_splits),
                "splits": [[list(a), list(b)] for a, b in self.splits],
                "mean_congruence": _mean(self.table, "congruence"),
                "mean_pair_correlation": _mean(self.table, "pair_correlation"),
                "mean_ari": float(defined.mean()) if defined.size else float("nan"),
                "n_no_structure": int((~np.isfinite(ari)).sum()),
                "components": self.components(),
                "params": self.params,
            }
        )

    def format_table(self) -> str:
        """Per-component means over splits, as aligned text."""
        lines = [
            f"split-half stability: {len(self.splits)} of {self.n_possible_splits} possible "
            f"split(s) of the animals, rank {self.rank} ({self.rank_source})",
            "component  blocks  congruence  pair_r  time_cos    ARI  (sd)   no_structure",
        ]
        for c in self.components():
            ari = (
                "     -        "
                if not np.isfinite(c["ari"])
                else f"{c['ari']:6.2f} ({c['ari_sd']:.2f})"
            )
            lines.append(
                f"{c['component']:>9d}  {c['n_communities']:>6d}  {c['congruence']:10.3f}  "
                f"{c['pair_correlation']:6.3f}  {c['time_congruence']:8.3f}  {ari}  "
                f"{c['n_no_structure']:>4d}/{c['n_splits']}"
            )
        lines.append(
            "ARI - : both halves found one community in every split (no structure to compare)."
        )
        return "\n".join(lines)

    def tables(self) -> dict[str, Any]:
        """``{"split_half": one row per split and component, "split_half_components": means}``."""
        import pandas as pd

        return {
            "split_half": pd.DataFrame(self.table, columns=list(_COLUMNS)),
            "split_half_components": pd.DataFrame(self.components()),
        }

    def plot(self) -> dict[str, Any]:
        """``{"split_half": Figure}``: congruence, pair r and ARI per component, one dot a split."""
        from neuro.plotting import new_figure

        fig, axes = new_figure(3, 1, size=(3.2, 3.0))
        for ax, key, title in zip(
            axes[0],
            ("congruence", "pair_correlation", "ari"),
            ("pair-factor congruence", "pair-factor correlation", "ARI of communities"),
            strict=True,
        ):
            for r in range(self.rank):
                vals = np.array([row[key] for row in self.table if row["component"] == r], float)
                vals = vals[np.isfinite(vals)]
                ax.scatter(np.full(len(vals), r), vals, color="C0", s=12, alpha=0.6)
                if len(vals):
                    ax.plot([r - 0.3, r + 0.3], [vals.mean()] * 2, color="k", lw=2)
            ax.set_xticks(range(self.rank))
            ax.set_xlabel("component")
            ax.set_title(title, fontsize=9)
            if key == "congruence":
                ax.set_ylim(0.0, 1.05)
            else:
                ax.axhline(0.0, color="0.6", lw=0.8)
        return {"split_half": fig}


def _mean(rows, key) -> float:
    vals = np.array([row[key] for row in rows], dtype=float)
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if vals.size else float("nan")


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Column-by-column cosines ``(a.shape[1], b.shape[1])``."""
    na = a / np.maximum(np.linalg.norm(a, axis=0), 1e-300)
    nb = b / np.maximum(np.linalg.norm(b, axis=0), 1e-300)
    return na.T @ nb


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _model_params(model, params: dict) -> tuple[dict, Any]:
    """The fit parameters (``model``'s, updated by ``params``) and the fitted reference, if any."""
    from neuro.connectome.ntf import DynamicConnectome

    if model is not None and not isinstance(model, DynamicConnectome):
        raise InputTypeError(
            f"model must be a DynamicConnectome (fitted or not); got {type(model).__name__}."
        )
    base = (model if model is not None else DynamicConnectome()).get_params(deep=False)
    unknown = sorted(set(params) - set(base))
    if unknown:
        raise InputError(
            f"unknown DynamicConnectome parameter(s) {unknown}; see DynamicConnectome for them."
        )
    changed = {k for k, v in params.items() if base[k] != v}
    base.update(params)
    fitted = model is not None and hasattr(model, "rank_") and not changed
    return base, model if fitted else None


def _subset(traces, x: np.ndarray, animals, neurons=None):
    """The animals (and neurons) ``animals`` of ``traces``, keeping labels, clock and epochs."""
    from data_loaders.calcium import CalciumData

    sub = x[animals] if neurons is None else x[np.ix_(animals, neurons)]
    labels = _labels(traces, x.shape[1])
    ids = _ids(traces, x.shape[0])
    labels = labels if neurons is None else [labels[i] for i in neurons]
    rate = getattr(traces, "sampling_rate", None)
    if rate is not None:
        epochs = getattr(traces, "epochs", ())
        return CalciumData(sub, rate, labels, [ids[a] for a in animals], epochs)
    return _Recording(sub, tuple(labels), tuple(ids[a] for a in animals))


@dataclass
class _Recording:
    """Traces with labels but no clock (arrays given without a sampling rate)."""

    traces: np.ndarray
    neuron_labels: tuple
    animal_ids: tuple
    sampling_rate: None = None
    epochs: tuple = ()


def _labels(traces, n: int) -> list[str]:
    labels = getattr(traces, "neuron_labels", None)
    return [str(v) for v in labels] if labels else [f"n{i}" for i in range(n)]


def _ids(traces, n: int) -> list[str]:
    ids = getattr(traces, "animal_ids", None)
    return [str(v) for v in ids] if ids else [f"animal{a}" for a in range(n)]


def _canonical(half_a, n: int) -> tuple:
    """A split as the sorted animals of half ``a``: the smaller half, or the one with animal 0."""
    a = tuple(sorted(half_a))
    if n % 2 == 0 and 0 not in a:
        a = tuple(sorted(set(range(n)) - set(a)))
    return a


def _draw_splits(n: int, n_splits: int, random_state: int) -> tuple[list, int]:
    k = n // 2
    total = math.comb(n, k) // (2 if n % 2 == 0 else 1)
    if total <= n_splits:
        return [c for c in itertools.combinations(range(n), k) if c == _canonical(c, n)], total
    rng = np.random.default_rng(random_state)
    seen: dict = {}
    while len(seen) < n_splits:
        seen.setdefault(_canonical(rng.permutation(n)[:k], n), None)
    return list(seen), total


def split_half_stability(
    traces,
    n_splits: int = 5,
    random_state: int = 0,
    model=None,
    verbose: int = 0,
    **params,
) -> SplitHalfStability:
    """Refit on random halves of the animals and score how well the halves agree.

    Parameters
    ----------
    traces : CalciumData or array of shape (n_animals, n_neurons, n_frames)
        At least 2 animals (or sessions). Neuron ``i`` must be the same cell in
        every animal (identified or registered cells).
    n_splits : int, default=5
        Random splits of the animals into two halves (of ``n // 2`` and
        ``n - n // 2`` animals); when there are no more distinct splits than
        this, every distinct split is used once (2 animals: one split, one
        animal per half; 4 animals: 3 splits).
    random_state : int, default=0
        Seed of the splits.
    model : DynamicConnectome, optional
        Take the parameters from this model (``get_params``); ``**params``
        override them. A model already fitted on ``traces`` (and not
        overridden) is the reference, without refitting.
    verbose : int, default=0
        Progress bar over the splits.
    **params
        Parameters of :class:`~neuro.connectome.ntf.DynamicConnectome`
        (``rank``, ``bin_size``, ``n_restarts``, ...). With ``rank=None`` the
        reference fit on all animals selects the rank, and the halves use it.

    Returns
    -------
    SplitHalfStability

    Raises
    ------
    InputError
        Fewer than 2 animals; fewer than 2 neurons recorded in both halves of
        a split; unknown parameters.
    InputTypeError
        ``model`` is not a DynamicConnectome.

    Notes
    -----
    Everything is computed on the neurons recorded in at least one animal of
    each half (and their pairs). A component is attributed to the reference
    component with the largest product of cosines of its two halves' pair
    factors with it (Hungarian algorithm).

    Examples
    --------
    >>> from data_loaders.simulate.calcium import simulate_calcium
    >>> sim = simulate_calcium(n_animals=4, n_neurons=16, n_frames=800, n_communities=2,
    ...                        community_size=6, n_blocks=6, seed=0)
    >>> res = split_half_stability(sim.data, n_splits=2, rank=3, n_restarts=1, n_bootstrap=0,
    ...                            device="cpu")
    >>> len(res.splits), res.rank, res.summary()["mean_congruence"] > 0.8
    (2, 3, True)
    """
    from neuro.connectome.ntf import DynamicConnectome, _as_traces

    n_splits = check_int("n_splits", n_splits, minimum=1)
    random_state = check_int("random_state", random_state)
    verbose = check_int("verbose", verbose, minimum=0)
    params, reference = _model_params(model, params)
    x = _as_traces(traces)
    n_animals, n_neurons, n_frames = x.shape
    if n_animals < 2:
        raise InputError(
            f"split_half_stability needs at least 2 animals (or sessions) to split in halves; "
            f"got {n_animals}. Several sessions of one animal can be stacked on the animal axis "
            "with data_loaders.calcium.stack_sessions."
        )
    if reference is not None and (
        reference.animal_factors_.shape[0] != n_animals
        or len(reference.neuron_labels_) != n_neurons
        or reference.n_features_in_ != n_frames
    ):
        reference = None  # fitted on other traces: refit on these
    if reference is None:
        reference = DynamicConnectome(**params).fit(traces)
    rank_source = "rank" if params.get("rank") is not None else "selected"
    half_params = dict(params, rank=int(reference.rank_))
    splits, total = _draw_splits(n_animals, n_splits, random_state)
    ids = _ids(traces, n_animals)
    recorded = np.isfinite(x).any(axis=2)  # (animals, neurons)
    table, named = [], []
    bar = progress(total=len(splits), desc="split-half refits", verbose=verbose)
    for s, half_a in enumerate(splits):
        half_b = [a for a in range(n_animals) if a not in half_a]
        half_a = list(half_a)
        keep = recorded[half_a].any(axis=0) & recorded[half_b].any(axis=0)
        if keep.sum() < 2:
            raise InputError(
                f"split {s}: only {int(keep.sum())} neuron(s) recorded in both halves "
                f"({[ids[a] for a in half_a]} vs {[ids[a] for a in half_b]}); the animals share "
                "too few identified neurons to compare fits."
            )
        fits = [
            DynamicConnectome(**half_params).fit(_subset(traces, x, h)) for h in (half_a, half_b)
        ]
        table.extend(_score_split(s, fits, reference, keep))
        named.append(([ids[a] for a in half_a], [ids[a] for a in half_b]))
        bar.update(1)
    bar.close()
    return SplitHalfStability(
        table=table,
        splits=named,
        rank=int(reference.rank_),
        rank_source=rank_source,
        n_possible_splits=total,
        reference_communities=[int(c.labels.max()) + 1 for c in reference.communities_],
        params=jsonable(half_params),
        reference=reference,
    )


def _score_split(split: int, fits, reference, keep: np.ndarray) -> list[dict]:
    """Rows of the table for one split: halves paired, then attributed to reference components."""
    from neuro.connectome.sbm import adjusted_rand

    a, b = fits
    n = len(keep)
    i, j = np.triu_indices(n, k=1)
    pairs = keep[i] & keep[j]
    pa, pb, pr = (m.pair_factors_[pairs] for m in (a, b, reference))
    cong = _cosine(pa, pb)
    rows_a, cols_b = linear_sum_assignment(-cong)
    # attribute each matched pair (k) to a reference component (r)
    score = _cosine(pr, pa)[:, rows_a] * _cosine(pr, pb)[:, cols_b]
    ref, matched = linear_sum_assignment(-score)
    time = _cosine(a.time_factors_, b.time_factors_)
    out = []
    for r, k in zip(ref, matched, strict=True):
        ca, cb = int(rows_a[k]), int(cols_b[k])
        la, lb = a.communities_[ca].labels[keep], b.communities_[cb].labels[keep]
        ka, kb = len(np.unique(la)), len(np.unique(lb))
        out.append(
            {
                "split": split,
                "component": int(r),
                "component_a": ca,
                "component_b": cb,
                "congruence": float(cong[ca, cb]),
                "pair_correlation": _correlation(pa[:, ca], pb[:, cb]),
                "time_congruence": float(time[ca, cb]),
                "ari": float("nan") if ka == kb == 1 else float(adjusted_rand(la, lb)),
                "n_communities_a": ka,
                "n_communities_b": kb,
                "reference_congruence": float(np.sqrt(max(score[r, k], 0.0))),
                "n_neurons": int(keep.sum()),
            }
        )
    return sorted(out, key=lambda row: row["component"])


def fit_per_animal(traces, model=None, **params) -> list:
    """Fit one :class:`~neuro.connectome.ntf.DynamicConnectome` per animal, on its own neurons.

    For recordings whose cells cannot be matched across animals (no
    identified neurons, no registration): each animal's neurons that were
    recorded (its non-NaN rows) are fitted alone. Each model's
    ``neuron_labels_`` name the cells it kept, and its ``animal_ids_`` the
    animal. The animal factor of such a model is trivial (one animal, a single
    loading of 1), and components of different animals are not paired: compare
    them by their time factors (a shared protocol) or by what their cells are,
    not by neuron index.

    Parameters
    ----------
    traces : CalciumData or array of shape (n_animals, n_neurons, n_frames)
        NaN rows for neurons not recorded in an animal (dropped for it); a 2-D
        array ``(n_neurons, n_frames)`` is one animal. Array rows are labelled
        ``"n0", "n1", ...`` by their index.
    model : DynamicConnectome, optional
        Take the parameters from this model (``get_params``); ``**params``
        override them.
    **params
        Parameters of :class:`~neuro.connectome.ntf.DynamicConnectome`.

    Returns
    -------
    list of DynamicConnectome
        One fitted model per animal, in the order of the animal axis.

    Raises
    ------
    InputError
        An animal with fewer than 2 recorded neurons; unknown parameters.

    Examples
    --------
    >>> from data_loaders.simulate.calcium import simulate_calcium
    >>> sim = simulate_calcium(n_animals=2, n_neurons=12, n_frames=400, n_communities=1,
    ...                        community_size=4, n_blocks=4, missing_fraction=0.2, seed=0)
    >>> models = fit_per_animal(sim.data, rank=2, n_restarts=1, n_bootstrap=0, device="cpu")
    >>> [len(m.neuron_labels_) for m in models], [m.animal_ids_ for m in models]
    ([9, 10], [['animal0'], ['animal1']])
    """
    from neuro.connectome.ntf import DynamicConnectome, _as_traces

    params, _ = _model_params(model, params)
    x = _as_traces(traces)
    ids = _ids(traces, x.shape[0])
    recorded = np.isfinite(x).any(axis=2)
    out = []
    for a in range(x.shape[0]):
        kept = np.flatnonzero(recorded[a])
        if len(kept) < 2:
            raise InputError(
                f"animal {ids[a]!r} has {len(kept)} recorded neuron(s); a connectome needs at "
                "least 2. Drop that animal from traces."
            )
        out.append(DynamicConnectome(**params).fit(_subset(traces, x, [a], kept)))
    return out
