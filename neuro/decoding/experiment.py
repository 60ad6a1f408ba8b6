"""The Brain3D pipeline: data -> two-stage decoder -> held-out objects -> lesions -> diagnosis.

One engine for ``neuro brain3d``, ``scripts/brain3d.py`` and the tutorial:

1. :func:`simulated_decoding` simulates a subject viewing renders of
   procedural 3D objects (:func:`data_loaders.simulate.shapes.simulate_shape_fmri`)
   and splits the stimuli into training and held-out sets; with their own
   data users build the same :class:`~neuro.decoding.data.DecodingData` with
   :func:`~neuro.decoding.data.decoding_arrays` and :func:`split_decoding`;
2. a :class:`~neuro.decoding.brain3d.Brain3DDecoder` is fitted on the training
   stimuli;
3. :func:`evaluate_decoder` decodes the held-out stimuli and compares the
   objects with the truth against two baselines measured in the same run: the
   nearest training object in the predicted shape latent (the baseline the
   issue names) and the mean training object (what a decoder that learned
   nothing from the responses would give); then, on the same held-out
   stimuli, the lesion sweep (noise of growing variance in one ROI) and the
   diagnosis of the impaired ROI from the decoded objects
   (:mod:`neuro.decoding.lesion`).

The result, :class:`Brain3DReport`, follows the package's result contract:
``summary()``, ``format_table()``, ``tables()``, ``plot()`` and
``save(folder)``, which also writes example meshes (``meshes/*.obj``, true and
decoded) and the decoded grids (``decoded.npz``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuro._validation import check_array, check_float, check_int
from neuro.decoding.data import DecodingData
from neuro.errors import InputError, InputTypeError
from neuro.results import Result

__all__ = [
    "BASELINES",
    "Brain3DReport",
    "SimulatedDecoding",
    "evaluate_decoder",
    "simulated_decoding",
    "split_decoding",
]

#: The rows of the comparison table: the decoder and the two baselines.
BASELINES = ("decoder", "nearest-neighbour", "mean-object")
#: Metrics of the comparison, and whether higher is better.
_METRICS = {"iou": True, "chamfer": False, "identification": True, "category_correct": True}


@dataclass
class SimulatedDecoding:
    """A simulated Brain3D experiment, split by stimulus.

    Attributes
    ----------
    train, test : DecodingData
        Training and held-out stimuli (no stimulus in both).
    simulation : SimulatedShapeFMRI
        Everything the simulator planted (shapes, renders, subjects).
    shape_bank : ndarray of shape (n_bank, G, G, G) or None
        Extra objects with no responses, for the decoder's shape prior.
    """

    train: DecodingData
    test: DecodingData
    simulation: Any
    shape_bank: np.ndarray | None


def split_decoding(
    data: DecodingData, test_size: float = 0.3, seed: int = 0
) -> tuple[DecodingData, DecodingData]:
    """Split the stimuli of ``data`` into training and held-out sets (stratified by category).

    Parameters
    ----------
    data : DecodingData
        One row per stimulus.
    test_size : float in (0, 1), default=0.3
    seed : int, default=0

    Returns
    -------
    train, test : DecodingData

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> d = DecodingData(rng.standard_normal((10, 4)).astype("float32"),
    ...                  np.zeros((10, 8, 8, 8), "float32"), np.array(["V1"] * 4),
    ...                  np.repeat([0, 1], 5), np.arange(10))
    >>> train, test = split_decoding(d, test_size=0.4)
    >>> len(train), len(test), sorted(test.categories.tolist())
    (6, 4, [0, 0, 1, 1])
    """
    if not isinstance(data, DecodingData):
        raise InputTypeError(
            f"data must be a DecodingData (from decoding_arrays); got {type(data).__name__}."
        )
    test_size = check_float(
        "test_size", test_size, minimum=0.0, maximum=1.0, strict_minimum=True, strict_maximum=True
    )
    seed = check_int("seed", seed, minimum=0)
    n = len(data)
    rng = np.random.default_rng(seed)
    groups = np.zeros(n, dtype=np.int64) if data.categories is None else data.categories
    test = []
    for g in np.unique(groups):
        rows = rng.permutation(np.flatnonzero(groups == g))
        test.extend(rows[: round(test_size * len(rows))].tolist())
    test = np.sort(np.asarray(test, dtype=np.int64))
    train = np.setdiff1d(np.arange(n), test)
    if len(test) < 2 or len(train) < 2:
        raise InputError(
            f"test_size={test_size} leaves {len(train)} training and {len(test)} held-out "
            f"stimuli of {n}; each side needs at least 2. Give a test_size nearer 0.3 or more "
            "stimuli."
        )

    def take(rows):
        cats = None if data.categories is None else data.categories[rows]
        return DecodingData(
            data.X[rows], data.Y[rows], data.roi_labels, cats, data.stimulus_ids[rows]
        )

    return take(train), take(test)


def simulated_decoding(
    n_shapes: int = 240,
    grid_size: int = 32,
    image_size: int = 64,
    voxels_per_roi: int = 40,
    snr: float = 1.0,
    n_repeats: int = 2,
    test_size: float = 0.3,
    bank_size: int = 0,
    seed: int = 0,
) -> SimulatedDecoding:
    """Simulate a subject viewing renders of 3D objects, as decoder-ready training and test sets.

    Parameters
    ----------
    n_shapes : int, default=240
        Objects shown (each its own stimulus), balanced over
        :data:`~data_loaders.simulate.shapes.SHAPE_CATEGORIES`.
    grid_size, image_size : int, default=32, 64
        Side of the occupancy grids and of the rendered stimuli.
    voxels_per_roi, snr, n_repeats : int, float, int
        As for :func:`~data_loaders.simulate.shapes.simulate_shape_fmri`.
    test_size : float, default=0.3
        Fraction of the objects held out (stratified by category).
    bank_size : int, default=0
        Extra objects (another seed, no responses) for the shape prior.
    seed : int, default=0

    Returns
    -------
    SimulatedDecoding
    """
    from data_loaders.fmri import FMRIDataset
    from data_loaders.simulate.shapes import make_shapes, simulate_shape_fmri
    from neuro.decoding.data import decoding_arrays

    bank_size = check_int("bank_size", bank_size, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    sim = simulate_shape_fmri(
        n_shapes=n_shapes,
        n_subjects=1,
        n_repeats=n_repeats,
        voxels_per_roi=voxels_per_roi,
        snr=snr,
        grid_size=grid_size,
        image_size=image_size,
        seed=seed,
    )
    shapes = sim.shapes
    ds = FMRIDataset.from_simulation(sim.subjects[0], shapes)
    data = decoding_arrays(ds, shapes.occupancy, shapes.categories)
    train, test = split_decoding(data, test_size=test_size, seed=seed)
    bank = None
    if bank_size:
        bank = make_shapes(bank_size, grid_size, image_size=16, seed=seed + 1).occupancy
    return SimulatedDecoding(train, test, sim, bank)


def _category_names(categories, names):
    if names is None:
        return None
    return [str(n) for n in names]


class Brain3DReport(Result):
    """Held-out decoding against baselines, lesion sweep and impairment diagnosis.

    Parameters
    ----------
    per_object : pandas.DataFrame
        One row per held-out object and method (``BASELINES``): ``method``,
        ``stimulus_id``, ``iou``, ``chamfer``, ``iou_x2``, ``iou_x4``,
        ``identification`` and ``category_correct`` (when categories exist).
    comparison : pandas.DataFrame
        Per method and metric: mean and 95% bootstrap interval over objects,
        and for the baselines the paired difference decoder - baseline with
        its interval.
    lesion : LesionSweep or None
    diagnosis : DiagnosisResult or None
    examples : dict of ndarray
        ``true``, ``decoded``, ``nearest`` (k, G, G, G) and ``stimulus_ids`` (k,).
    decoded : ndarray (n, G, G, G)
        Every held-out decoded object.
    settings : dict
    """

    def __init__(self, per_object, comparison, lesion, diagnosis, examples, decoded, settings):
        self.per_object = per_object
        self.comparison = comparison
        self.lesion = lesion
        self.diagnosis = diagnosis
        self.examples = examples
        self.decoded = decoded
        self.settings = dict(settings)

    def _row(self, method: str, metric: str):
        rows = self.comparison[
            (self.comparison["method"] == method) & (self.comparison["metric"] == metric)
        ]
        return None if rows.empty else rows.iloc[0]

    def verdicts(self) -> list[dict[str, Any]]:
        """The issue's check: the decoder beats the nearest-neighbour baseline on IoU and Chamfer.

        Each entry: ``metric``, ``difference`` (decoder - nearest-neighbour,
        oriented so that > 0 favours the decoder), ``lo``, ``hi`` (95%
        bootstrap over held-out objects) and ``verdict`` ("holds" when the
        whole interval favours the decoder, else "does not hold").
        """
        out = []
        for metric in ("iou", "chamfer"):
            row = self._row("nearest-neighbour", metric)
            if row is None:
                continue
            sign = 1.0 if _METRICS[metric] else -1.0
            d, lo, hi = (sign * row["difference"], sign * row["diff_lo"], sign * row["diff_hi"])
            lo, hi = min(lo, hi), max(lo, hi)
            out.append(
                {
                    "metric": metric,
                    "difference": float(d),
                    "lo": float(lo),
                    "hi": float(hi),
                    "verdict": "holds" if lo > 0 else "does not hold",
                }
            )
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"settings": self.settings, "comparison": {}}
        for _, row in self.comparison.iterrows():
            entry = {"mean": row["mean"], "lo": row["lo"], "hi": row["hi"]}
            if np.isfinite(row.get("difference", np.nan)):
                entry["decoder_minus_this"] = {
                    "mean": row["difference"],
                    "lo": row["diff_lo"],
                    "hi": row["diff_hi"],
                }
            out["comparison"].setdefault(row["method"], {})[row["metric"]] = entry
        out["beats_nearest_neighbour"] = self.verdicts()
        if self.lesion is not None:
            out["lesion"] = self.lesion.summary()
        if self.diagnosis is not None:
            out["diagnosis"] = self.diagnosis.summary()
        return out

    def format_table(self) -> str:
        n = int((self.per_object["method"] == "decoder").sum())
        lines = [f"held-out objects: {n} (mean [95% bootstrap interval over objects])", ""]
        metrics = [m for m in _METRICS if m in set(self.comparison["metric"])]
        lines.append(f"{'method':<20}" + "".join(f"{m:>24}" for m in metrics))
        for method in BASELINES:
            cells = []
            for m in metrics:
                row = self._row(method, m)
                cells.append(
                    "" if row is None else f"{row['mean']:.3f} [{row['lo']:.3f}, {row['hi']:.3f}]"
                )
            lines.append(f"{method:<20}" + "".join(f"{c:>24}" for c in cells))
        lines += ["", "decoder vs nearest-neighbour (paired over objects):"]
        for v in self.verdicts():
            better = "higher" if _METRICS[v["metric"]] else "lower"
            lines.append(
                f"  {v['metric']:<8} {v['verdict']:<14} advantage {v['difference']:+.3f} "
                f"[{v['lo']:+.3f}, {v['hi']:+.3f}] ({better} is better)"
            )
        if self.lesion is not None:
            lines += ["", "lesions:", self.lesion.format_table()]
        if self.diagnosis is not None:
            lines += ["", "diagnosis of the impaired ROI:", self.diagnosis.format_table()]
        return "\n".join(lines) + "\n"

    def tables(self) -> dict[str, Any]:
        out = {"per_object": self.per_object, "comparison": self.comparison}
        for part in (self.lesion, self.diagnosis):  # their names say what they are
            if part is not None:
                out.update(part.tables())
        return out

    def plot(self) -> dict[str, Any]:
        figs = {"examples": self._plot_examples()}
        for part in (self.lesion, self.diagnosis):
            if part is not None:
                figs.update(part.plot())
        return figs

    def _plot_examples(self):
        """True, decoded and nearest-neighbour objects side by side, as the simulated camera sees them."""
        from data_loaders.simulate.shapes import render_occupancy
        from neuro.plotting import new_figure

        rows = [("true", "true"), ("decoded", "decoded"), ("nearest", "nearest neighbour")]
        k = len(self.examples["true"])
        fig, axes = new_figure(ncols=k, nrows=len(rows), size=(1.6, 1.7))
        axes = np.asarray(axes).reshape(len(rows), k)
        for r, (key, title) in enumerate(rows):
            _, images = render_occupancy(self.examples[key], image_size=64)
            for c in range(k):
                ax = axes[r, c]
                ax.imshow(images[c])
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 0:
                    ax.set_ylabel(title)
                if r == 0:
                    ax.set_title(f"stimulus {int(self.examples['stimulus_ids'][c])}", fontsize=8)
        fig.suptitle("held-out objects: true, decoded, nearest training object")
        return fig

    def _save_extra(self, folder: Path, overwrite: bool) -> None:
        from neuro.decoding.mesh import export_meshes
        from neuro.io import atomic_open

        ids = [int(i) for i in self.examples["stimulus_ids"]]
        for key in ("true", "decoded"):
            grids = self.examples[key]
            keep = [i for i in range(len(grids)) if (grids[i] >= 0.5).any()]
            if keep:
                export_meshes(
                    grids[keep],
                    folder / "meshes",
                    names=[f"{key}_stimulus{ids[i]}" for i in keep],
                    overwrite=True,
                )
        with atomic_open(folder / "decoded.npz", "wb") as fh:
            np.savez_compressed(
                fh,
                decoded=self.decoded.astype(np.float16),
                stimulus_ids=self.per_object.loc[
                    self.per_object["method"] == "decoder", "stimulus_id"
                ].to_numpy(),
            )


def _comparison(per_object, seed: int):
    import pandas as pd

    from neuro.decoding.metrics import mean_interval

    rows = []
    ours = per_object[per_object["method"] == "decoder"].reset_index(drop=True)
    for method in BASELINES:
        part = per_object[per_object["method"] == method].reset_index(drop=True)
        for metric in _METRICS:
            if metric not in part or part[metric].isna().all():
                continue
            mean, lo, hi = mean_interval(part[metric].to_numpy(), seed=seed)
            row = {"method": method, "metric": metric, "mean": mean, "lo": lo, "hi": hi}
            row.update(difference=np.nan, diff_lo=np.nan, diff_hi=np.nan)
            if method != "decoder":
                diff = ours[metric].to_numpy() - part[metric].to_numpy()
                d, dlo, dhi = mean_interval(diff, seed=seed)
                row.update(difference=d, diff_lo=dlo, diff_hi=dhi)
            rows.append(row)
    return pd.DataFrame(rows)


def evaluate_decoder(
    decoder,
    train: DecodingData,
    test: DecodingData,
    *,
    lesion: bool = True,
    lesion_rois: Sequence[str] | None = None,
    noise_vars: Sequence[float] = (0.0, 0.5, 1.0, 1.5),
    diagnosis_noise: float = 1.0,
    scan_noise: float = 0.25,
    n_images: Sequence[int] = (5, 10, 20, 40),
    diagnosis_trials: int = 100,
    n_examples: int = 6,
    seed: int = 0,
    settings: dict | None = None,
) -> Brain3DReport:
    """Decode the held-out stimuli, compare with the baselines, run lesions and the diagnosis.

    Parameters
    ----------
    decoder : Brain3DDecoder
        Fitted on ``train``.
    train, test : DecodingData
        The decoder's training stimuli (for the mean-object baseline) and the
        held-out ones (everything measured here).
    lesion : bool, default=True
        Run :func:`~neuro.decoding.lesion.lesion_sweep` and
        :func:`~neuro.decoding.lesion.diagnosis_curve` on ``test``.
    lesion_rois : sequence of str, optional
        ROIs lesioned (default: the decoder's early and semantic ROIs).
    noise_vars : sequence of float
        Noise variances of the sweep (in units of each voxel's variance).
    diagnosis_noise : float, default=1.0
        Noise variance of the lesions the diagnosis tells apart.
    scan_noise : float, default=0.25
        Whole-brain noise variance of every simulated patient's scan
        (:func:`~neuro.decoding.lesion.diagnosis_signatures`); 0 makes each
        patient the held-out responses themselves, as in the paper.
    n_images : sequence of int
        Images per diagnosis; the held-out set is split in two halves (the
        diagnoser's training and test images), each of which must hold at
        least ``max(n_images)``.
    diagnosis_trials : int, default=100
        Simulated patients per label and number of images.
    n_examples : int, default=6
        Held-out objects drawn in the figure and exported as meshes.
    seed : int, default=0
        Seeds the decoder's sampling, the bootstrap and the lesions.
    settings : dict, optional
        Recorded in the report.

    Returns
    -------
    Brain3DReport
    """
    import pandas as pd

    from neuro.decoding.metrics import shape_metrics

    for name, d in (("train", train), ("test", test)):
        if not isinstance(d, DecodingData):
            raise InputTypeError(f"{name} must be a DecodingData; got {type(d).__name__}.")
    decoder._check_fitted()
    seed = check_int("seed", seed, minimum=0)
    n_examples = check_int("n_examples", n_examples, minimum=1)
    noise = check_array("noise_vars", noise_vars, ndim=1, dtype=np.float64)
    if (noise < 0).any():
        raise InputError(f"noise_vars are variances and must be >= 0; got {list(noise_vars)}.")
    has_cats = test.categories is not None and getattr(decoder, "classes_", None) is not None

    decoded = decoder.predict(test.X, seed=seed)
    nearest = decoder.nearest_neighbour(test.X)
    mean_object = np.broadcast_to(train.Y.mean(0, keepdims=True) >= 0.5, test.Y.shape).astype(
        np.float32
    )
    pred_cats = decoder.predict_category(test.X) if has_cats else None
    majority = None
    if has_cats:
        values, counts = np.unique(train.categories, return_counts=True)
        majority = np.full(len(test), values[np.argmax(counts)])
    frames = []
    for method, grids, cats in (
        ("decoder", decoded, pred_cats),
        ("nearest-neighbour", nearest, pred_cats),
        ("mean-object", mean_object, majority),
    ):
        table = shape_metrics(
            grids,
            test.Y,
            pred_categories=cats if has_cats else None,
            true_categories=test.categories if has_cats else None,
        )
        table.insert(0, "stimulus_id", test.stimulus_ids)
        table.insert(0, "method", method)
        frames.append(table)
    per_object = pd.concat(frames, ignore_index=True)
    comparison = _comparison(per_object, seed)

    sweep = diagnosis = None
    if lesion:
        from neuro.decoding.lesion import diagnosis_curve, lesion_sweep

        rois = list(lesion_rois) if lesion_rois is not None else None
        if rois is None:
            rois = [*decoder.rois_["early"], *decoder.rois_["semantic"]]
        cats = test.categories if has_cats else None
        sweep = lesion_sweep(
            decoder,
            test.X,
            test.Y,
            test.roi_labels,
            rois=rois,
            noise_vars=noise,
            categories=cats,
            seed=seed,
        )
        labels = ("healthy", *rois)
        diagnosis = diagnosis_curve(
            decoder,
            test.X,
            test.Y,
            test.roi_labels,
            categories=cats,
            labels=labels,
            n_images=tuple(n_images),
            noise_var=diagnosis_noise,
            scan_noise=scan_noise,
            n_trials=diagnosis_trials,
            seed=seed,
        )
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(test), size=min(n_examples, len(test)), replace=False))
    examples = {
        "true": test.Y[pick],
        "decoded": decoded[pick],
        "nearest": nearest[pick],
        "stimulus_ids": test.stimulus_ids[pick],
    }
    info = {"n_train": len(train), "n_test": len(test), "seed": seed, **(settings or {})}
    return Brain3DReport(per_object, comparison, sweep, diagnosis, examples, decoded, info)
