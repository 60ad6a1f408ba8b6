"""Simulated ROI lesions: how decoding degrades, and naming the damaged region.

A lesion of an ROI is simulated as in Brain3D: Gaussian noise of a chosen
variance added to that ROI's responses (``noise_var`` times each voxel's
variance over the images), or the ROI's responses set to zero. Three analyses
stand on it, each working with any decoder that has ``predict(X, seed=None) ->
(n, G, G, G)`` (and, for category accuracy, ``predict_category(X)``), such as
:class:`~neuro.decoding.brain3d.Brain3DDecoder`:

* :func:`lesion_sweep`: every metric of :func:`~neuro.decoding.metrics.shape_metrics`
  per ROI and noise level, with intervals over images and the degradation
  against the healthy decoding (a :class:`LesionSweep`);
* :func:`diagnosis_signatures`: per-image signature vectors of the decoded
  objects (IoU at three scales, Chamfer, identification, category) under each
  lesion label;
* :class:`ImpairmentDiagnoser` (a classifier of mean signatures) and
  :func:`diagnosis_curve`: the accuracy of naming the lesioned ROI (healthy,
  V1, V2, V3, V4, MTL) from ``n`` decoded objects, for several ``n``, trained
  on one half of the images and tested on the other (a :class:`DiagnosisResult`,
  the paper's table).

Examples
--------
>>> import numpy as np
>>> X = np.arange(12.0).reshape(4, 3)
>>> lesion_responses(X, ["V1", "V1", "MTL"], "MTL", mode="zero")[:, 2]
array([0., 0., 0., 0.])
>>> np.array_equal(lesion_responses(X, ["V1", "V1", "MTL"], "V1", noise_var=0.0), X)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin

from neuro._validation import (
    check_array,
    check_choice,
    check_float,
    check_int,
    check_n_features,
    check_same_length,
)
from neuro.base import NeuroEstimator
from neuro.decoding.data import _roi_labels
from neuro.decoding.metrics import (
    chamfer_distance,
    mean_interval,
    multiscale_iou,
    shape_metrics,
    two_way_identification,
)
from neuro.errors import InputError, InputTypeError
from neuro.results import Result

__all__ = [
    "LESION_LABELS",
    "REFERENCES",
    "SIGNATURE_FEATURES",
    "DiagnosisResult",
    "ImpairmentDiagnoser",
    "LesionSweep",
    "diagnosis_curve",
    "diagnosis_signatures",
    "lesion_responses",
    "lesion_sweep",
]

#: What the diagnosis names: no lesion, or the lesioned ROI.
LESION_LABELS = ("healthy", "V1", "V2", "V3", "V4", "MTL")

#: The features of a signature vector (:func:`diagnosis_signatures`), in order;
#: ``category_correct`` only when the decoder predicts categories and they are given.
SIGNATURE_FEATURES = ("iou", "iou_x2", "iou_x4", "chamfer", "identification", "category_correct")

#: Metrics for which lower is better (degradation = lesioned - healthy); higher is better otherwise.
_LOWER_IS_BETTER = ("chamfer",)

_X_HINT = "(n_samples, n_voxels)"
_Y_HINT = "(n_samples, G, G, G)"


def _present(labels: np.ndarray) -> list[str]:
    return sorted(set(labels.tolist()) - {""})


def _check_roi(name: str, roi: Any, labels: np.ndarray, allow_healthy: bool = False) -> str:
    present = _present(labels)
    if not isinstance(roi, str) or (
        roi not in present and not (allow_healthy and roi == "healthy")
    ):
        have = ", ".join(repr(p) for p in present) or "none"
        raise InputError(
            f"{name}={roi!r} is not an ROI of roi_labels; the ROIs present are {have}. Pass one "
            "of those names."
        )
    return roi


def _check_X_rois(X: Any, roi_labels: Any, min_rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
    arr = check_array("X", X, ndim=2, shape_hint=_X_HINT, min_rows=min_rows)
    labels = _roi_labels(roi_labels)
    if len(labels) != arr.shape[1]:
        raise InputError(
            f"roi_labels has {len(labels)} names but X has {arr.shape[1]} columns (voxels); give "
            "one ROI name per column of X."
        )
    return arr, labels


def _lesion(
    X: np.ndarray, labels: np.ndarray, roi: str, noise_var: float, mode: str, rng
) -> np.ndarray:
    """The lesion of checked inputs (see :func:`lesion_responses`)."""
    out = np.array(X, dtype=X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64)
    cols = np.flatnonzero(labels == roi)
    if mode == "zero":
        out[:, cols] = 0.0
    elif noise_var > 0:
        block = X[:, cols].astype(np.float64)
        sd = block.std(axis=0)
        out[:, cols] = block + rng.standard_normal(block.shape) * (np.sqrt(noise_var) * sd)
    return out


def lesion_responses(
    X: Any,
    roi_labels: Any,
    roi: str,
    noise_var: float = 1.0,
    mode: str = "noise",
    seed: int = 0,
) -> np.ndarray:
    """A copy of the responses with one ROI lesioned (noise added, or zeroed).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_voxels)
        Responses, one row per image (not modified).
    roi_labels : array-like of shape (n_voxels,), str
        ROI name of each column.
    roi : str
        The ROI to lesion; one of the names in ``roi_labels``.
    noise_var : float, default=1.0
        Variance of the added Gaussian noise, in units of each voxel's
        variance over the rows of ``X`` (noise sd = ``sqrt(noise_var)`` x the
        voxel's sd). 0 returns an exact copy.
    mode : {"noise", "zero"}, default="noise"
        ``"zero"`` sets the ROI's columns to 0 (``noise_var`` is ignored).
    seed : int, default=0
        Seed of the noise; the same seed gives the same noise pattern, scaled
        by ``sqrt(noise_var)``.

    Returns
    -------
    ndarray of shape (n_samples, n_voxels)
        Same dtype as ``X`` (float64 for integer input).

    Raises
    ------
    InputError
        ``roi`` is not in ``roi_labels`` (the message lists those present),
        ``noise_var < 0``, an unknown ``mode``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 4))
    >>> out = lesion_responses(X, ["V1", "V1", "V2", "V2"], "V2", noise_var=1.0)
    >>> np.array_equal(out[:, :2], X[:, :2]), round(float((out - X)[:, 2:].std()), 1)
    (True, 1.0)
    """
    arr, labels = _check_X_rois(X, roi_labels)
    roi = _check_roi("roi", roi, labels)
    noise_var = check_float("noise_var", noise_var, minimum=0.0)
    mode = check_choice("mode", mode, ("noise", "zero"))
    seed = check_int("seed", seed, minimum=0)
    return _lesion(arr, labels, roi, noise_var, mode, np.random.default_rng(seed))


def _check_decoder(decoder: Any) -> None:
    if not callable(getattr(decoder, "predict", None)):
        raise InputTypeError(
            f"decoder must have predict(X, seed=None) -> (n, G, G, G) (e.g. a fitted "
            f"Brain3DDecoder); got {type(decoder).__name__}."
        )


def _check_targets(Y: Any, n: int) -> np.ndarray:
    Y = check_array("Y", Y, ndim=4, shape_hint=_Y_HINT, dtype=np.float32)
    if len(Y) != n:
        raise InputError(
            f"X and Y must have the same number of samples (first axis); X has {n} and Y has "
            f"{len(Y)}. Give the true object of each row of X."
        )
    return Y


def _check_categories(categories: Any, n: int) -> np.ndarray | None:
    if categories is None:
        return None
    c = check_array("categories", categories, ndim=1, shape_hint="(n_samples,)")
    if len(c) != n:
        raise InputError(
            f"categories has {len(c)} entries for {n} rows of X; give one category per row."
        )
    return c.astype(np.int64)


def _predict(decoder: Any, X: np.ndarray, seed: int, want_category: bool):
    pred = decoder.predict(X, seed=seed)
    pred = np.asarray(pred.detach().cpu() if hasattr(pred, "detach") else pred, dtype=np.float32)
    cats = None
    if want_category:
        cats = np.asarray(decoder.predict_category(X))
    return pred, cats


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


class LesionSweep(Result):
    """Decoding metrics under lesions of each ROI at each noise level.

    Attributes
    ----------
    table : pandas.DataFrame
        Long table, one row per (roi, mode, noise_var, metric): ``roi``
        (``"healthy"`` for the intact responses), ``mode`` (``"none"``,
        ``"noise"`` or ``"zero"``), ``noise_var`` (NaN for ``"zero"``),
        ``metric``, ``mean`` with the 95% bootstrap interval ``lo``, ``hi``
        over images, and ``degradation``: how much worse than healthy (healthy
        minus lesioned for metrics where higher is better, lesioned minus
        healthy for ``chamfer``; > 0 means worse).
    rois : list of str
    noise_vars : list of float
    n_images : int
    """

    def __init__(self, table, rois: Sequence[str], noise_vars: Sequence[float], n_images: int):
        self.table = table
        self.rois = list(rois)
        self.noise_vars = list(noise_vars)
        self.n_images = int(n_images)

    @property
    def metrics(self) -> list[str]:
        """The metrics in the table, in order."""
        return list(dict.fromkeys(self.table["metric"]))

    def degradation(self, metric: str = "iou", mode: str = "noise"):
        """Degradation of ``metric`` as a DataFrame: rows ROIs, columns noise variances.

        With ``mode="zero"`` a single column ``"zero"``.
        """
        metric = check_choice("metric", metric, self.metrics)
        mode = check_choice("mode", mode, ("noise", "zero"))
        rows = self.table[(self.table["metric"] == metric) & (self.table["mode"] == mode)]
        if mode == "zero":
            return rows.set_index("roi")[["degradation"]].rename(columns={"degradation": "zero"})
        out = rows.pivot(index="roi", columns="noise_var", values="degradation")
        return out.reindex(self.rois)

    def summary(self) -> dict[str, Any]:
        """Healthy means and the degradation per ROI, metric and noise level."""
        healthy = self.table[self.table["roi"] == "healthy"]
        degradation: dict[str, Any] = {}
        for roi in self.rois:
            rows = self.table[self.table["roi"] == roi]
            degradation[roi] = {
                metric: {
                    ("zero" if mode == "zero" else f"{nv:g}"): float(d)
                    for mode, nv, d in zip(
                        grp["mode"], grp["noise_var"], grp["degradation"], strict=True
                    )
                }
                for metric, grp in rows.groupby("metric", sort=False)
            }
        return {
            "n_images": self.n_images,
            "rois": self.rois,
            "noise_vars": self.noise_vars,
            "healthy": dict(zip(healthy["metric"], healthy["mean"].astype(float), strict=True)),
            "degradation": degradation,
        }

    def format_table(self) -> str:
        """Mean of each metric per ROI (rows) and noise variance (columns)."""
        healthy = self.table[self.table["roi"] == "healthy"].set_index("metric")["mean"]
        lines = [f"lesion sweep over {self.n_images} images (mean per image)"]
        heads = [f"var {v:g}" for v in self.noise_vars] + ["zero"]
        for metric in self.metrics:
            lines.append("")
            lines.append(f"{metric} (healthy {healthy[metric]:.3f})")
            lines.append(f"{'roi':<8}" + "".join(f"{h:>10}" for h in heads))
            for roi in self.rois:
                rows = self.table[(self.table["roi"] == roi) & (self.table["metric"] == metric)]
                noise = rows[rows["mode"] == "noise"].set_index("noise_var")["mean"]
                zero = rows[rows["mode"] == "zero"]["mean"]
                vals = [noise.get(v, np.nan) for v in self.noise_vars] + list(zero)
                lines.append(f"{roi:<8}" + "".join(f"{v:>10.3f}" for v in vals))
        return "\n".join(lines)

    def tables(self) -> dict[str, Any]:
        """``lesion_sweep``: the long table."""
        return {"lesion_sweep": self.table}

    def plot(self) -> dict[str, Any]:
        """``lesion_sweep``: each metric against the noise variance, one line per ROI."""
        from neuro.plotting import new_figure

        metrics = self.metrics
        ncols = min(3, len(metrics))
        nrows = -(-len(metrics) // ncols)
        fig, axes = new_figure(ncols=ncols, nrows=nrows, size=(3.4, 3.0))
        for ax in axes.ravel()[len(metrics) :]:
            ax.set_visible(False)
        for ax, metric in zip(axes.ravel(), metrics, strict=False):
            rows = self.table[self.table["metric"] == metric]
            healthy = rows[rows["roi"] == "healthy"]["mean"].iloc[0]
            ax.axhline(healthy, color="k", ls="--", lw=1, label="healthy")
            for roi in self.rois:
                r = rows[(rows["roi"] == roi) & (rows["mode"] == "noise")].sort_values("noise_var")
                (line,) = ax.plot(r["noise_var"], r["mean"], marker="o", ms=3, label=roi)
                ax.fill_between(
                    r["noise_var"], r["lo"], r["hi"], color=line.get_color(), alpha=0.15
                )
            ax.set_xlabel("lesion noise variance")
            ax.set_title(metric + (" (lower is better)" if metric in _LOWER_IS_BETTER else ""))
        axes[0, 0].legend(fontsize=7)
        return {"lesion_sweep": fig}


def _rois_to_lesion(labels: np.ndarray, rois: Any) -> list[str]:
    present = _present(labels)
    if rois is None:
        ordered = [r for r in LESION_LABELS if r in present]
        return ordered + [r for r in present if r not in ordered]
    rois = [rois] if isinstance(rois, str) else list(rois)
    if not rois:
        raise InputError("rois is empty; give at least one ROI name, or None for all of them.")
    return [_check_roi("rois", r, labels) for r in rois]


def lesion_sweep(
    decoder: Any,
    X: Any,
    Y: Any,
    roi_labels: Any,
    rois: Sequence[str] | None = None,
    noise_vars: Sequence[float] = (0.0, 0.5, 1.0, 1.5),
    categories: Any = None,
    seed: int = 0,
) -> LesionSweep:
    """Decode lesioned responses and measure how much each metric degrades.

    For every ROI, each noise variance (the same noise pattern, scaled) and
    the ROI zeroed, the decoder's predictions are scored against ``Y`` with
    :func:`~neuro.decoding.metrics.shape_metrics` and compared with the
    healthy (unlesioned) predictions. Every call to ``decoder.predict`` uses
    the same ``seed``, so a noise variance of 0 reproduces the healthy
    decoding exactly.

    Parameters
    ----------
    decoder : object
        Has ``predict(X, seed=None) -> (n, G, G, G)``; with ``categories``
        given and a ``predict_category(X)`` method, category accuracy is
        measured too.
    X : array-like of shape (n_samples, n_voxels)
        Held-out responses (n_samples >= 2).
    Y : array-like of shape (n_samples, G, G, G)
        True objects.
    roi_labels : array-like of shape (n_voxels,), str
    rois : sequence of str, optional
        ROIs to lesion (default: every ROI in ``roi_labels``, V1-V4 and MTL first).
    noise_vars : sequence of float, default=(0.0, 0.5, 1.0, 1.5)
        Noise variances (the paper's), in units of each voxel's variance.
    categories : array-like of shape (n_samples,), optional
    seed : int, default=0

    Returns
    -------
    LesionSweep

    Examples
    --------
    >>> class Echo:                     # "decodes" the mean of the V1 voxels as an object
    ...     def predict(self, X, seed=None):
    ...         v = X[:, :2].mean(1) > 0
    ...         return np.broadcast_to(v[:, None, None, None], (len(X), 4, 4, 4)).astype(float)
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((10, 3))
    >>> sweep = lesion_sweep(Echo(), X, Echo().predict(X), ["V1", "V1", "V2"], noise_vars=(0, 1))
    >>> sweep.degradation("iou").round(2)
    noise_var  0.0  1.0
    roi
    V1         0.0  0.5
    V2         0.0  0.0
    """
    _check_decoder(decoder)
    arr, labels = _check_X_rois(X, roi_labels, min_rows=2)
    Y = _check_targets(Y, len(arr))
    cats = _check_categories(categories, len(arr))
    rois = _rois_to_lesion(labels, rois)
    if isinstance(noise_vars, (int, float)):
        noise_vars = (noise_vars,)
    noise_vars = sorted({check_float("noise_vars", v, minimum=0.0) for v in noise_vars})
    if not noise_vars:
        raise InputError("noise_vars is empty; give at least one variance, e.g. (0.5, 1.0).")
    seed = check_int("seed", seed, minimum=0)
    want_cat = cats is not None and callable(getattr(decoder, "predict_category", None))
    import pandas as pd

    def score(x_in):
        pred, pcat = _predict(decoder, x_in, seed, want_cat)
        return shape_metrics(pred, Y, pcat, cats if want_cat else None)

    conditions = [("healthy", "none", 0.0, score(arr))]
    for k, roi in enumerate(rois):
        for nv in noise_vars:
            lesioned = _lesion(arr, labels, roi, nv, "noise", _rng(seed, k))
            conditions.append((roi, "noise", nv, score(lesioned)))
        zeroed = _lesion(arr, labels, roi, 0.0, "zero", None)
        conditions.append((roi, "zero", np.nan, score(zeroed)))
    records = []
    for roi, mode, nv, frame in conditions:
        for metric in frame.columns:
            mean, lo, hi = mean_interval(frame[metric].to_numpy(), seed=seed)
            records.append(
                {
                    "roi": roi,
                    "mode": mode,
                    "noise_var": nv,
                    "metric": metric,
                    "mean": mean,
                    "lo": lo,
                    "hi": hi,
                }
            )
    table = pd.DataFrame(records)
    healthy = table[table["roi"] == "healthy"].set_index("metric")["mean"]
    base = table["metric"].map(healthy)
    sign = np.where(table["metric"].isin(_LOWER_IS_BETTER), 1.0, -1.0)
    table["degradation"] = sign * (table["mean"] - base) + 0.0  # no -0.0
    return LesionSweep(table, rois, noise_vars, len(arr))


def _signatures(pred, Y, pcat, cats) -> np.ndarray:
    """Per-image signature features ``(n, n_features)`` (see :data:`SIGNATURE_FEATURES`)."""
    cols = [multiscale_iou(pred, Y, scales=(1, 2, 4)), chamfer_distance(pred, Y)[:, None]]
    cols.append(two_way_identification(pred, Y)[:, None])
    if pcat is not None:
        cols.append((np.asarray(pcat) == cats).astype(np.float64)[:, None])
    return np.concatenate(cols, axis=1)


def _check_labels(labels: Any, roi_labels: np.ndarray) -> tuple[str, ...]:
    if labels is None:
        present = _present(roi_labels)
        labels = ("healthy", *(r for r in LESION_LABELS[1:] if r in present))
        if len(labels) < 2:
            raise InputError(
                "roi_labels holds none of the ROIs V1, V2, V3, V4, MTL; pass labels= naming "
                "'healthy' and the ROIs to tell apart."
            )
        return labels
    labels = (labels,) if isinstance(labels, str) else tuple(labels)
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise InputError(
            f"labels must name at least 2 distinct lesion labels ('healthy' or ROIs); got {labels}."
        )
    return tuple(_check_roi("labels", lab, roi_labels, allow_healthy=True) for lab in labels)


#: ``reference`` values of :func:`diagnosis_signatures`.
REFERENCES = ("healthy", "truth")
_EPS = 1e-6


def _latents(decoder: Any, grids: np.ndarray) -> np.ndarray | None:
    encode = getattr(decoder, "encode_objects", None)
    if not callable(encode):
        return None
    z = encode(grids)
    return np.asarray(z.detach().cpu() if hasattr(z, "detach") else z, dtype=np.float64)


def diagnosis_signatures(
    decoder: Any,
    X: Any,
    Y: Any,
    roi_labels: Any,
    categories: Any = None,
    labels: Sequence[str] = LESION_LABELS,
    noise_var: float = 1.0,
    n_draws: int = 3,
    seed: int = 0,
    *,
    reference: str = "healthy",
    scan_noise: float = 0.25,
) -> np.ndarray:
    """Per-image signatures of the decoded objects of simulated patients, one per lesion label.

    A simulated patient is a new scan of the held-out images: every voxel gets
    fresh Gaussian noise of variance ``scan_noise`` (in units of its variance
    over the images), and for an ROI label that ROI also gets the lesion noise
    of variance ``noise_var``; ``"healthy"`` patients get the scan noise alone.
    Each of ``n_draws`` draws is a new patient (new noise), decoded with
    decoder seed ``seed + draw``.

    The signature of an image compares the patient's decoded object with a
    reference: with ``reference="healthy"`` (default), the decoder's object for
    the same image from the intact responses and the same seed, as a
    clinician would compare a scan with the norm for each image; with
    ``"truth"``, the true object. Features (:data:`SIGNATURE_FEATURES`):
    IoU at scales 1, 2 and 4, Chamfer distance, two-way identification and
    category correct (with a category-predicting decoder and ``categories``)
    against the truth, minus the reference's values when the reference is
    ``"healthy"``; then, when the decoder has ``encode_objects`` (as
    :class:`~neuro.decoding.brain3d.Brain3DDecoder`: its shape encoder, our
    analogue of the pretrained feature networks the paper scores rendered
    views with), the squared difference of each shape-latent dimension
    between the patient's object and the reference. Lesions of different
    ROIs move the decoded objects along different latent directions, which
    the per-dimension profile captures and the overall metrics do not.

    Parameters
    ----------
    decoder : object
        Has ``predict(X, seed=None)``; ``predict_category(X)`` is used when
        ``categories`` is given, ``encode_objects(Y)`` when present.
    X : array-like of shape (n_images, n_voxels)
    Y : array-like of shape (n_images, G, G, G)
    roi_labels : array-like of shape (n_voxels,), str
    categories : array-like of shape (n_images,), optional
    labels : sequence of str, default=LESION_LABELS
        ``"healthy"`` and ROI names present in ``roi_labels``.
    noise_var : float, default=1.0
    n_draws : int, default=3
    seed : int, default=0
    reference : {"healthy", "truth"}, default="healthy"
    scan_noise : float, default=0.25
        Whole-brain noise variance of every patient's scan (0: patients are
        the held-out responses themselves, and a healthy patient with the
        healthy reference has an all-zero signature).

    Returns
    -------
    ndarray of shape (n_labels, n_draws, n_images, n_features), float64
        The metric features first (:data:`SIGNATURE_FEATURES`, without
        ``category_correct`` when categories are not used), then one squared
        latent difference per shape-latent dimension when the decoder has
        ``encode_objects``.
    """
    _check_decoder(decoder)
    arr, roi = _check_X_rois(X, roi_labels, min_rows=2)
    Y = _check_targets(Y, len(arr))
    cats = _check_categories(categories, len(arr))
    labels = _check_labels(labels, roi)
    noise_var = check_float("noise_var", noise_var, minimum=0.0)
    scan_noise = check_float("scan_noise", scan_noise, minimum=0.0)
    n_draws = check_int("n_draws", n_draws, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    reference = check_choice("reference", reference, REFERENCES)
    want_cat = cats is not None and callable(getattr(decoder, "predict_category", None))
    sd = arr.std(axis=0)
    true_z = _latents(decoder, Y) if reference == "truth" else None
    refs = []
    for d in range(n_draws):  # the reference of each draw: intact responses, same seed
        pred, pcat = _predict(decoder, arr, seed + d, want_cat)
        refs.append((_signatures(pred, Y, pcat, cats), _latents(decoder, pred)))
    out = []
    for k, label in enumerate(labels):
        per_draw = []
        for d in range(n_draws):
            x_in = arr
            if scan_noise > 0:
                noise = _rng(seed, 2, k, d).standard_normal(arr.shape)
                x_in = arr + np.sqrt(scan_noise) * sd * noise
            if label != "healthy":
                x_in = _lesion(x_in, roi, label, noise_var, "noise", _rng(seed, k, d))
            pred, pcat = _predict(decoder, x_in, seed + d, want_cat)
            feats = _signatures(pred, Y, pcat, cats)
            ref_feats, ref_z = refs[d]
            if reference == "healthy":
                feats = feats - ref_feats
            z = _latents(decoder, pred)
            if z is not None:
                feats = np.concatenate([feats, (z - (ref_z if true_z is None else true_z)) ** 2], 1)
            per_draw.append(feats)
        out.append(np.stack(per_draw))
    return np.stack(out)


def _diagnosis_features(examples: np.ndarray, n_metrics: int) -> np.ndarray:
    """Mean signatures as classifier inputs: squared latent differences on a log scale."""
    if examples.shape[-1] == n_metrics:
        return examples
    return np.concatenate(
        [examples[..., :n_metrics], np.log(examples[..., n_metrics:] + _EPS)], axis=-1
    )


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class ImpairmentDiagnoser(ClassifierMixin, NeuroEstimator):
    """Names the lesioned ROI from a (mean) signature vector of decoded objects.

    A standardising scaler followed by a linear classifier. The fitted state
    is plain arrays (scaler means and scales, coefficients, intercepts,
    classes), so :meth:`save` / :meth:`load` round-trip exactly without pickle.

    Parameters
    ----------
    classifier : {"lda", "logistic"}, default="lda"
        Linear discriminant analysis with Ledoit-Wolf shrinkage, or
        multinomial logistic regression.
    random_state : int, default=0
        Seed of the logistic solver.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    mean_, scale_ : ndarray of shape (n_features,)
        The scaler (a constant feature gets scale 1).
    coef_ : ndarray of shape (n_classes, n_features) or (1, n_features) for two classes
    intercept_ : ndarray of shape (n_classes,) or (1,)
    n_features_in_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> S = np.concatenate([rng.normal(0, 1, (30, 4)), rng.normal(3, 1, (30, 4))])
    >>> y = np.array(["healthy"] * 30 + ["V1"] * 30)
    >>> model = ImpairmentDiagnoser().fit(S, y)
    >>> model.predict([[0, 0, 0, 0], [3, 3, 3, 3]]).tolist(), model.score(S, y) > 0.95
    (['healthy', 'V1'], True)
    """

    def __init__(self, classifier: str = "lda", random_state: int | None = 0):
        self.classifier = classifier
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> ImpairmentDiagnoser:
        """Fit on signature vectors and their lesion labels.

        Parameters
        ----------
        X : array-like of shape (n_examples, n_features)
            Signatures (e.g. mean signatures of several decoded objects).
        y : array-like of shape (n_examples,)
            Lesion label of each example (strings such as ``"V1"``, or integers).

        Returns
        -------
        self
        """
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import column_or_1d

        classifier = check_choice("classifier", self.classifier, ("lda", "logistic"))
        S = check_array(
            "X", X, ndim=2, shape_hint="(n_examples, n_features)", min_rows=2, dtype=np.float64
        )
        if y is None:
            raise InputTypeError(
                "y is None. Expected array-like (array or non-string sequence), got None."
            )
        y = column_or_1d(np.asarray(y), warn=True)
        check_same_length(X=S, y=y)
        try:
            check_classification_targets(y)
        except ValueError as err:
            raise InputError(f"y must hold class labels (strings or integers); {err}") from None
        classes = np.unique(y)
        if len(classes) < 2:
            raise InputError(
                f"y must hold at least 2 classes to tell apart; got 1 class ({classes[0]!r})."
            )
        mean, scale = S.mean(0), S.std(0)
        scale[scale == 0] = 1.0
        Z = (S - mean) / scale
        if classifier == "lda":
            from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

            model = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
        else:
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression(max_iter=2000, random_state=self.random_state)
        model.fit(Z, y)
        self.classes_ = model.classes_
        self.mean_, self.scale_ = mean, scale
        self.coef_ = np.asarray(model.coef_, dtype=np.float64)
        self.intercept_ = np.asarray(model.intercept_, dtype=np.float64).reshape(-1)
        self.n_features_in_ = S.shape[1]
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Linear scores: ``(n,)`` for two classes (positive: ``classes_[1]``), else ``(n, k)``."""
        self._check_fitted()
        S = check_array("X", X, ndim=2, shape_hint="(n_examples, n_features)", dtype=np.float64)
        check_n_features(self, S)
        scores = ((S - self.mean_) / self.scale_) @ self.coef_.T + self.intercept_
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, columns in the order of ``classes_``."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            scores = np.stack([np.zeros_like(scores), scores], axis=1)
        return _softmax(scores)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of each signature ``X (n, n_features)``: ``(n,)``."""
        self._check_fitted()
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class DiagnosisResult(Result):
    """Accuracy of naming the lesioned ROI from ``n`` decoded objects.

    Attributes
    ----------
    accuracy : pandas.DataFrame
        Rows: lesion labels; columns: numbers of images. Each entry is the
        fraction of held-out examples of that label named correctly (the
        paper's table).
    overall : pandas.Series
        Accuracy over all labels, per number of images.
    chance : float
        ``1 / n_labels``.
    noise_var : float
    n_trials : int
        Examples per label and number of images, in each half.
    """

    def __init__(self, accuracy, overall, chance: float, noise_var: float, n_trials: int):
        self.accuracy = accuracy
        self.overall = overall
        self.chance = float(chance)
        self.noise_var = float(noise_var)
        self.n_trials = int(n_trials)

    def summary(self) -> dict[str, Any]:
        """Overall and per-label accuracy for each number of images, and chance."""
        return {
            "chance": self.chance,
            "noise_var": self.noise_var,
            "n_trials": self.n_trials,
            "n_images": [int(c) for c in self.accuracy.columns],
            "overall": {str(k): float(v) for k, v in self.overall.items()},
            "per_label": {
                lab: {str(k): float(v) for k, v in row.items()}
                for lab, row in self.accuracy.iterrows()
            },
        }

    def format_table(self) -> str:
        """The accuracy table: labels by number of images, then overall and chance."""
        cols = list(self.accuracy.columns)
        lines = [
            f"diagnosis accuracy (lesion noise variance {self.noise_var:g}; chance "
            f"{self.chance:.3f})",
            f"{'n images':<10}" + "".join(f"{c:>8}" for c in cols),
        ]
        for lab, row in self.accuracy.iterrows():
            lines.append(f"{lab:<10}" + "".join(f"{v:>8.2f}" for v in row))
        lines.append(f"{'overall':<10}" + "".join(f"{self.overall[c]:>8.2f}" for c in cols))
        return "\n".join(lines)

    def tables(self) -> dict[str, Any]:
        """``diagnosis_accuracy``: one row per label plus ``overall``, one column per n."""
        frame = self.accuracy.copy()
        frame.loc["overall"] = self.overall
        frame.columns = [f"n_{c}" for c in frame.columns]
        return {"diagnosis_accuracy": frame.rename_axis("label").reset_index()}

    def plot(self) -> dict[str, Any]:
        """``diagnosis_curve``: accuracy against the number of images, per label."""
        from neuro.plotting import new_figure

        fig, axes = new_figure(size=(4.5, 3.4))
        ax = axes[0, 0]
        n = [int(c) for c in self.accuracy.columns]
        for lab, row in self.accuracy.iterrows():
            ax.plot(n, row.to_numpy(), marker="o", ms=3, lw=1, label=lab)
        ax.plot(n, self.overall.to_numpy(), color="k", lw=2, marker="s", label="overall")
        ax.axhline(self.chance, color="gray", ls="--", lw=1, label="chance")
        ax.set_xscale("log")
        ax.set_xticks(n, [str(v) for v in n])
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("decoded objects used")
        ax.set_ylabel("diagnosis accuracy")
        ax.legend(fontsize=7)
        return {"diagnosis_curve": fig}


def _examples(sig: np.ndarray, images: np.ndarray, n: int, n_trials: int, rng) -> np.ndarray:
    """Mean signatures of random subsets: ``(n_labels, n_trials, n_features)``.

    ``sig`` is ``(n_labels, n_draws, n_images, n_features)``; each example uses
    one random draw and ``n`` distinct random images among ``images``.
    """
    n_labels, n_draws = sig.shape[:2]
    draws = rng.integers(0, n_draws, size=(n_labels, n_trials))
    pick = rng.random((n_labels, n_trials, len(images))).argsort(axis=-1)[..., :n]
    chosen = sig[np.arange(n_labels)[:, None, None], draws[..., None], images[pick]]
    return chosen.mean(axis=2)


def diagnosis_curve(
    decoder: Any,
    X: Any,
    Y: Any,
    roi_labels: Any,
    categories: Any = None,
    n_images: Sequence[int] = (5, 10, 20, 40),
    noise_var: float = 1.0,
    n_trials: int = 100,
    seed: int = 0,
    *,
    labels: Sequence[str] | None = None,
    n_draws: int = 3,
    classifier: str = "lda",
    reference: str = "healthy",
    scan_noise: float = 0.25,
) -> DiagnosisResult:
    """Accuracy of naming the lesioned ROI from ``n`` decoded objects, for each ``n``.

    The signatures (:func:`diagnosis_signatures`) are computed once. The
    images are split at random into two halves; for each ``n`` in
    ``n_images``, ``n_trials`` examples per label are drawn in each half (one
    example: the mean signature of ``n`` random images of one random draw).
    An :class:`ImpairmentDiagnoser` is fitted on the first half's examples and
    scored on the second's, so no image is used both to train and to test.
    When ``n`` nears the size of a half, the examples of a label differ only
    by their draw (``n_draws`` of them): keep the halves at least twice
    ``max(n_images)``, or raise ``n_draws``, for a stable estimate there.

    Parameters
    ----------
    decoder : object
        Has ``predict(X, seed=None)`` (and ``predict_category`` for the
        category feature).
    X : array-like of shape (n_samples, n_voxels)
        Held-out responses; each half needs at least ``max(n_images)`` rows.
    Y : array-like of shape (n_samples, G, G, G)
    roi_labels : array-like of shape (n_voxels,), str
    categories : array-like of shape (n_samples,), optional
    n_images : sequence of int, default=(5, 10, 20, 40)
    noise_var : float, default=1.0
        Lesion noise variance.
    n_trials : int, default=100
        Examples per label and ``n``, in each half.
    seed : int, default=0
    labels : sequence of str, optional
        The lesion labels (default: ``"healthy"`` and those of V1, V2, V3,
        V4, MTL present in ``roi_labels``); chance is ``1 / len(labels)``.
    n_draws : int, default=3
        Lesion noise patterns (and decoder seeds) per label.
    classifier : {"lda", "logistic"}, default="lda"
    reference : {"healthy", "truth"}, default="healthy"
    scan_noise : float, default=0.25
        As for :func:`diagnosis_signatures`.

    Returns
    -------
    DiagnosisResult

    Raises
    ------
    InputError
        A half of the images holds fewer than ``max(n_images)`` rows (the
        message names the fix), or a label that is not an ROI.
    """
    _check_decoder(decoder)
    arr, roi = _check_X_rois(X, roi_labels, min_rows=2)
    labels = _check_labels(labels, roi)
    if isinstance(n_images, (int, np.integer)):
        n_images = (n_images,)
    n_images = sorted({check_int("n_images", n, minimum=1) for n in n_images})
    if not n_images:
        raise InputError("n_images is empty; give at least one number of images, e.g. (5, 10).")
    n_trials = check_int("n_trials", n_trials, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    classifier = check_choice("classifier", classifier, ("lda", "logistic"))
    noise_var = check_float("noise_var", noise_var, minimum=0.0)
    half = len(arr) // 2
    if half < n_images[-1]:
        raise InputError(
            f"diagnosis_curve splits the {len(arr)} images into train and test halves of "
            f"{half}, fewer than max(n_images)={n_images[-1]}; give n_images of at most {half}, "
            f"or at least {2 * n_images[-1]} held-out stimuli."
        )
    sig = diagnosis_signatures(
        decoder,
        arr,
        Y,
        roi,
        categories,
        labels,
        noise_var,
        n_draws=n_draws,
        seed=seed,
        reference=reference,
        scan_noise=scan_noise,
    )
    n_metrics = 5 + int(
        categories is not None and callable(getattr(decoder, "predict_category", None))
    )
    import pandas as pd

    rng = np.random.default_rng([seed, 1])
    order = rng.permutation(len(arr))
    train_images, test_images = order[:half], order[half:]
    y = np.repeat(np.array(labels), n_trials)
    acc = np.empty((len(labels), len(n_images)))
    overall = np.empty(len(n_images))
    for j, n in enumerate(n_images):
        train = _examples(sig, train_images, n, n_trials, rng).reshape(len(y), -1)
        test = _examples(sig, test_images, n, n_trials, rng).reshape(len(y), -1)
        train, test = (_diagnosis_features(e, n_metrics) for e in (train, test))
        model = ImpairmentDiagnoser(classifier=classifier, random_state=seed).fit(train, y)
        correct = (model.predict(test) == y).reshape(len(labels), n_trials)
        acc[:, j] = correct.mean(1)
        overall[j] = correct.mean()
    accuracy = pd.DataFrame(acc, index=pd.Index(labels, name="label"), columns=n_images)
    return DiagnosisResult(
        accuracy, pd.Series(overall, index=n_images), 1.0 / len(labels), noise_var, n_trials
    )
