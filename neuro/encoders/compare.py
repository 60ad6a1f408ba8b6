"""Fit several voxel encoders on one dataset and compare them per voxel and per ROI.

:func:`compare_encoders` is the package's main job in one call: it splits a
:class:`data_loaders.fmri.FMRIDataset` by stimulus (repeats of a stimulus
never straddle the split), averages the repeats of each stimulus, computes
image features once, fits every encoder on the same training stimuli, and
scores each on the same held-out stimuli:

* per voxel: Pearson r, R² and r² as a fraction of the noise ceiling of the
  held-out averages (NSD's ncsnr, estimated from all repeats);
* per ROI: the mean of each with a bootstrap confidence interval over voxels;
* maps: one NIfTI r-map per encoder and the best encoder per voxel.

Encoders are named (``"ridge"``, ``"linear"``, ``"factorized"``,
``"gaussian"``, ``"semantic"``) or given as ``(name, estimator)`` pairs. What
an estimator reads is its class attribute ``input_kind``: ``"vectors"``
(:class:`~neuro.encoders.VoxelRidgeCV`, :class:`~neuro.encoders.BandedRidgeCV`,
and any estimator without the attribute) gets the flattened feature maps,
``"maps"`` (:class:`~neuro.encoders.ReadoutEncoder`,
:class:`~neuro.encoders.TransformerEncoder`) the maps themselves; an
estimator whose ``reads_semantic`` is true (the semantic readout) also gets
one semantic vector per stimulus when ``semantic`` is given; one whose
``reads_rois`` is true (the transformer) gets ``roi_labels=`` (and
``hemispheres=`` on surfaces) at ``fit``; one whose ``in_context`` is true
(:class:`~neuro.encoders.InContextEncoder`) is meta-trained on the training
stimuli unless already fitted, then predicts the test stimuli from the
training stimuli as each voxel's support set, reading the semantic vectors
when given.

The result, :class:`EncoderComparison`, is a :class:`neuro.results.Result`:
``summary()`` (a JSON-able dict), ``format_table()``, ``tables()``,
``plot()`` and ``save(folder)``.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuro._validation import check_bool
from neuro.encoders.metrics import noise_normalized, roi_summary, voxel_correlation, voxel_r2
from neuro.errors import InputError
from neuro.results import Result

__all__ = [
    "ENCODERS",
    "EncoderComparison",
    "compare_encoders",
    "compute_features",
    "make_encoder",
    "shown_stimuli_only",
]

logger = logging.getLogger(__name__)

#: Encoders known by name: ridge on flattened maps, the readout families, the
#: attention-routing transformer and the in-context (BraInCoRL) encoder.
ENCODERS = ("ridge", "linear", "factorized", "gaussian", "semantic", "transformer", "incontext")

_MIN_CEILING = 0.05


def make_encoder(
    name: str, device: str = "auto", random_state: int = 0, verbose: int = 0, **kwargs
):
    """An unfitted encoder for one of :data:`ENCODERS`.

    Parameters
    ----------
    name : str
        ``"ridge"`` gives :class:`~neuro.encoders.VoxelRidgeCV`,
        ``"transformer"`` :class:`~neuro.encoders.TransformerEncoder`,
        ``"incontext"`` :class:`~neuro.encoders.InContextEncoder`; the others
        give :class:`~neuro.encoders.ReadoutEncoder` with that readout.
    device : str, default="auto"
    random_state : int, default=0
        Seed of the readouts' initialisation and data order (ridge has none).
    verbose : int, default=0
    **kwargs
        Passed to the estimator (e.g. ``epochs=`` for a readout, ``alphas=``
        for ridge).

    Returns
    -------
    VoxelRidgeCV, ReadoutEncoder, TransformerEncoder or InContextEncoder
    """
    if name == "ridge":
        from neuro.encoders.ridge import VoxelRidgeCV

        return VoxelRidgeCV(device=device, **kwargs)
    if name in ("transformer", "incontext"):
        from neuro.encoders.incontext import InContextEncoder
        from neuro.encoders.transformer import TransformerEncoder

        cls = TransformerEncoder if name == "transformer" else InContextEncoder
        return cls(device=device, random_state=random_state, verbose=verbose, **kwargs)
    if name in ENCODERS:
        from neuro.encoders.readouts import ReadoutEncoder

        return ReadoutEncoder(
            readout=name, device=device, random_state=random_state, verbose=verbose, **kwargs
        )
    raise InputError(f"Unknown encoder {name!r}; choose from {list(ENCODERS)}.")


def shown_stimuli_only(dataset, test_stimuli=None, semantic=None):
    """The dataset over only the stimuli it shows, with test ids and semantic rows to match.

    For features computed (and cached) from a stimulus set much larger than
    what the subject saw (NSD: 10,000 of 73,000 images); see
    :meth:`~data_loaders.fmri.FMRIDataset.compact_stimuli`. Does nothing when
    every stimulus of the set was shown, or the dataset has no stimuli.

    Parameters
    ----------
    dataset : FMRIDataset
    test_stimuli : array of int, optional
        Held-out ids in the original numbering; ids never shown are dropped.
    semantic : array of shape (n_stimuli, D), optional
        One row per original stimulus id.

    Returns
    -------
    dataset, test_stimuli, semantic
        Renumbered ``0 .. n_shown - 1`` in increasing original id (the
        inputs themselves when nothing changes).
    """
    if dataset.stimuli is None or len(dataset.stimuli) <= len(np.unique(dataset.stimulus_ids)):
        return dataset, test_stimuli, semantic
    dataset, original = dataset.compact_stimuli()
    if test_stimuli is not None:
        test = np.asarray(test_stimuli, dtype=np.int64)
        test_stimuli = np.searchsorted(original, test[np.isin(test, original)])
    if semantic is not None:
        sem = np.asarray(semantic)
        if sem.ndim != 2 or len(sem) <= original[-1]:
            raise InputError(
                f"semantic must have shape (n_stimuli, D) with one row per stimulus id; got "
                f"{sem.shape} while the data show stimulus id {original[-1]}."
            )
        semantic = sem[original]
    return dataset, test_stimuli, semantic


def compute_features(
    dataset,
    extractor=None,
    stimulus_ids=None,
    image_size: tuple[int, int] | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Feature maps of a dataset's stimuli, computed in batches of images.

    Parameters
    ----------
    dataset : FMRIDataset
        Its ``stimuli`` are read ``batch_size`` images at a time.
    extractor : object with ``transform(images)``, optional
        Maps ``(n, 3, h, w)`` images to ``(n, C, H, W)`` feature maps (e.g.
        :class:`~neuro.encoders.GaborFeatures`, or one layer of
        :class:`~neuro.encoders.BackboneFeatures` wrapped in a function). None
        means ``GaborFeatures()``.
    stimulus_ids : array of int, optional
        Which stimuli; default the distinct stimuli shown, sorted.
    image_size : (h, w), optional
        Resize images to this size before the extractor sees them.
    batch_size : int, default=256

    Returns
    -------
    ndarray of shape (len(stimulus_ids), C, H, W), float32
    """
    if dataset.stimuli is None:
        raise InputError(
            "The dataset has no stimulus images, so features cannot be computed; give "
            "stimuli= when creating it, or pass precomputed features=."
        )
    if extractor is None:
        from neuro.encoders.features import GaborFeatures

        extractor = GaborFeatures()
    ids = np.unique(dataset.stimulus_ids) if stimulus_ids is None else np.asarray(stimulus_ids)
    transform = extractor.transform if hasattr(extractor, "transform") else extractor
    parts = []
    for start in range(0, len(ids), batch_size):
        images = dataset.stimuli.load(ids[start : start + batch_size], size=image_size)
        out = transform(images)
        if isinstance(out, Mapping):
            if len(out) != 1:
                raise InputError(
                    f"The extractor returned {len(out)} layers ({list(out)}); give an extractor "
                    "of one layer, or compute features per layer and pass features=."
                )
            out = next(iter(out.values()))
        parts.append(np.asarray(out, dtype=np.float32))
    return np.concatenate(parts)


@dataclass
class EncoderComparison(Result):
    """Held-out accuracy of several encoders fitted on the same data (a :class:`~neuro.results.Result`).

    Attributes
    ----------
    scores : dict {str: ndarray (n_voxels,)}
        Pearson r of each encoder on the held-out stimulus averages.
    r2 : dict {str: ndarray (n_voxels,)}
        Coefficient of determination on the same data.
    normalized : dict {str: ndarray (n_voxels,)}
        ``sign(r) r² / ceiling``: the fraction of the explainable variance
        explained (NaN where the ceiling is below 0.05).
    ceiling_r2 : ndarray (n_voxels,)
        Noise ceiling (fraction of variance) of the held-out averages.
    roi_labels : ndarray (n_voxels,), str
    table : pandas.DataFrame
        Per ROI and encoder: voxel count, mean r with its 95% bootstrap
        interval, median r, mean noise-normalised score with its interval.
    fit_seconds : dict {str: float}
    encoders : dict {str: fitted estimator}
    n_train, n_test : int
        Stimuli (averaged over their repeats) used to fit and to score.
    dataset : FMRIDataset
        The dataset compared on (for maps).

    Notes
    -----
    ``summary()`` is a JSON-able dict (``metrics.json``), ``format_table()``
    the per-ROI table as text (``summary.txt``; ``print(result)`` shows it),
    ``tables()`` the ROI and voxel tables, ``plot()`` the figures, and
    ``save(folder)`` writes them all with the NIfTI maps and the models.
    """

    scores: dict[str, np.ndarray]
    r2: dict[str, np.ndarray]
    normalized: dict[str, np.ndarray]
    ceiling_r2: np.ndarray
    roi_labels: np.ndarray
    table: Any
    fit_seconds: dict[str, float]
    encoders: dict[str, Any] = field(repr=False)
    n_train: int = 0
    n_test: int = 0
    dataset: Any = field(default=None, repr=False)

    @property
    def names(self) -> list[str]:
        """Encoder names in the order they were fitted."""
        return list(self.scores)

    @property
    def has_maps(self) -> bool:
        """Whether the dataset knows where its columns lie (voxels, regions or surface
        vertices), so that brain maps can be written and drawn."""
        return getattr(self.dataset, "geometry", None) is not None

    def best_model(self) -> np.ndarray:
        """Name of the encoder with the highest held-out r in each voxel, ``(n_voxels,)``."""
        stacked = np.stack([self.scores[n] for n in self.names])
        return np.asarray(self.names)[np.argmax(stacked, axis=0)]

    def voxel_table(self):
        """One row per voxel: ROI, ceiling, each encoder's r and normalised score, best encoder.

        Where the dataset knows where its columns lie, the first columns say
        where: a voxel's indices ``i, j, k`` in the volume, a region's
        ``region_id`` (its label value), or a vertex's ``hemi`` and
        ``vertex``; then the world position ``x, y, z`` (mm; a region's
        centroid) when known, so the rows join with other tools' tables.
        """
        import pandas as pd

        cols: dict[str, Any] = {}
        geometry = getattr(self.dataset, "geometry", None)
        if geometry is not None:
            if getattr(geometry, "ijk", None) is not None:
                for axis, name in enumerate("ijk"):
                    cols[name] = geometry.ijk[:, axis]
            if geometry.kind == "regions":
                cols["region_id"] = geometry.region_ids
            if geometry.kind == "surface":
                cols["hemi"] = geometry.hemi
                cols["vertex"] = geometry.vertex
            coords = geometry.coords
            if coords is not None:
                for axis, name in enumerate("xyz"):
                    cols[name] = coords[:, axis]
        cols.update({"roi": self.roi_labels, "ceiling_r2": self.ceiling_r2})
        for n in self.names:
            cols[f"r_{n}"] = self.scores[n]
            cols[f"normalized_{n}"] = self.normalized[n]
        cols["best_model"] = self.best_model()
        return pd.DataFrame(cols)

    def tables(self) -> dict[str, Any]:
        """``roi_table`` (per ROI and encoder) and ``voxels`` (per voxel), as DataFrames."""
        return {"roi_table": self.table, "voxels": self.voxel_table()}

    def format_table(self) -> str:
        """The per-ROI table as text: mean r [95% CI] and noise-normalised score per encoder."""
        t = self.table
        lines = []
        width = max(8, *(len(str(r)) + 1 for r in t["roi"]))  # long names (nsdgeneral) fit
        header = f"{'ROI':<{width}}{'voxels':>7}  " + "  ".join(f"{n:>24}" for n in self.names)
        lines.append(header)
        for roi in dict.fromkeys(t["roi"]):
            rows = t[t["roi"] == roi].set_index("model")
            cells = []
            for n in self.names:
                row = rows.loc[n]
                cells.append(
                    f"{row['r_mean']:5.2f} [{row['r_ci_low']:5.2f},{row['r_ci_high']:5.2f}] "
                    f"{row['normalized_mean']:5.2f}"
                )
            n_vox = int(rows.iloc[0]["n_voxels"])
            lines.append(f"{roi:<{width}}{n_vox:>7}  " + "  ".join(f"{c:>24}" for c in cells))
        lines.append("cells: mean r [95% bootstrap CI] and mean fraction of the noise ceiling")
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        """Headline numbers as a JSON-able dict: per encoder, its fit time, mean r, mean R²,
        mean noise-normalised score and per-ROI numbers (None where undefined)."""
        t = self.table
        out: dict[str, Any] = {
            "n_train_stimuli": self.n_train,
            "n_test_stimuli": self.n_test,
            "n_voxels": len(self.roi_labels),
            "encoders": {},
        }
        for n in self.names:
            rows = t[t["model"] == n].set_index("roi")
            out["encoders"][n] = {
                "fit_seconds": float(self.fit_seconds[n]),
                "mean_r": _finite(np.nanmean(self.scores[n])),
                "mean_r2": _finite(np.nanmean(self.r2[n])),
                "mean_normalized": _finite(np.nanmean(self.normalized[n]))
                if np.isfinite(self.normalized[n]).any()
                else None,
                "per_roi": {
                    roi: {
                        "n_voxels": int(r["n_voxels"]),
                        "r": _finite(r["r_mean"]),
                        "r_ci": [_finite(r["r_ci_low"]), _finite(r["r_ci_high"])],
                        "normalized": _finite(r["normalized_mean"]),
                    }
                    for roi, r in rows.iterrows()
                },
            }
        return out

    def plot(self) -> dict[str, Any]:
        """Figures by name: ``roi_comparison`` and, with brain maps, one ``r_<encoder>`` each."""
        from neuro.encoders import plots

        figures = {"roi_comparison": plots.roi_comparison(self)}
        if self.has_maps:
            geometry = self.dataset.geometry
            for n in self.names:
                title = f"{n}: held-out r"
                if geometry.kind == "surface":
                    try:
                        figures[f"r_{n}"] = geometry.plot(self.scores[n], title=title)
                    except InputError as err:  # a mesh nilearn does not ship: maps still saved
                        warnings.warn(
                            f"No surface figure of {n}: {err} The maps are written as files.",
                            stacklevel=2,
                        )
                        break
                else:
                    figures[f"r_{n}"] = plots.glass_brain(
                        self.dataset.to_nifti(self.scores[n]), title
                    )
        return figures

    def r_maps(self) -> dict:
        """One NIfTI image of held-out r per encoder (NaN outside the dataset's voxels).

        For surface data, one dict of images per hemisphere per encoder
        (``geometry.to_images``).
        """
        geometry = getattr(self.dataset, "geometry", None)
        if geometry is not None and geometry.kind == "surface":
            return {n: geometry.to_images(self.scores[n]) for n in self.names}
        return {n: self.dataset.to_nifti(self.scores[n]) for n in self.names}

    def _best_index(self) -> np.ndarray:
        return np.asarray([self.names.index(b) + 1 for b in self.best_model()], dtype=np.float32)

    def best_model_map(self):
        """NIfTI image of the best encoder per voxel: ``1 + index`` into :attr:`names`, 0 outside."""
        return self.dataset.to_nifti(self._best_index(), fill=0.0)

    def _save_extra(self, folder: Path, overwrite: bool) -> None:
        """Brain maps in ``maps/`` (when the voxels have positions) and models in ``models/``.

        ``maps/r_<encoder>.nii.gz``, ``maps/best_model.nii.gz`` with
        ``maps/best_model_labels.tsv`` (surface data: one
        ``.lh.func.gii`` / ``.rh.func.gii`` file per hemisphere instead);
        ``models/<encoder>.pt`` for each fitted model that has ``save``
        (load it with its class's ``load``).
        """
        from neuro.io import atomic_write_text

        if self.has_maps:
            geometry = self.dataset.geometry
            maps = folder / "maps"
            maps.mkdir(parents=True, exist_ok=True)
            # the folder was checked by save(); files in it are replaced
            for n in self.names:
                geometry.save_map(self.scores[n], maps / f"r_{n}", overwrite=True)
            geometry.save_map(self._best_index(), maps / "best_model", fill=0.0, overwrite=True)
            labels = "index\tencoder\n" + "".join(
                f"{i + 1}\t{n}\n" for i, n in enumerate(self.names)
            )
            atomic_write_text(folder / "maps" / "best_model_labels.tsv", labels)
        for n, est in self.encoders.items():
            if hasattr(est, "save"):
                est.save(folder / "models" / f"{n}.pt", overwrite=overwrite)


def _finite(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _averages(dataset):
    responses, ids, counts = dataset.average_repeats()
    return responses.astype(np.float32), ids, counts


def _encoder_list(encoders, device, random_state, verbose, readout_kwargs):
    if isinstance(encoders, str):
        encoders = [encoders]
    items = list(encoders.items()) if isinstance(encoders, Mapping) else list(encoders)
    if not items:
        raise InputError(f"encoders is empty; give one or more of {list(ENCODERS)}.")
    out: dict[str, Any] = {}
    for item in items:
        if isinstance(item, str):
            kwargs = {} if item == "ridge" else dict(readout_kwargs or {})
            name, est = (
                item,
                make_encoder(
                    item, device=device, random_state=random_state, verbose=verbose, **kwargs
                ),
            )
        else:
            name, est = item
        if name in out:
            raise InputError(f"Encoder name {name!r} appears twice; give each a distinct name.")
        out[name] = est
    return out


def compare_encoders(
    dataset,
    encoders: Sequence[str | tuple[str, Any]] | Mapping[str, Any] = ("ridge", "gaussian"),
    features=None,
    semantic=None,
    test_size: float = 0.2,
    test_stimuli=None,
    seed: int = 0,
    device: str = "auto",
    readout_kwargs: Mapping[str, Any] | None = None,
    image_size: tuple[int, int] | None = None,
    n_boot: int = 2000,
    verbose: int = 0,
    zscore: bool = True,
) -> EncoderComparison:
    """Fit several encoders on the same training stimuli and score them on the same test stimuli.

    Parameters
    ----------
    dataset : FMRIDataset
        Single-trial responses with stimulus ids, ROI labels and, for maps,
        voxel positions. Repeats of a stimulus are averaged before fitting.
    encoders : list of names or (name, estimator) pairs, or dict, default=("ridge", "gaussian")
        Names from :data:`ENCODERS`, or any estimator with ``fit(X, Y)`` and
        ``predict(X)``. Estimators whose ``input_kind`` is ``"maps"`` (the
        readouts) get the maps; the others (``"vectors"``, or no such
        attribute) the flattened maps.
    features : array (n_stimuli, C, H, W), extractor, or None
        Feature maps of every stimulus, indexed by stimulus id (as
        ``dataset.stimulus_ids`` counts them); or an object with
        ``transform(images)`` run on the stimuli shown; None means a Gabor
        filter bank (:class:`~neuro.encoders.GaborFeatures`) on the images.
    semantic : array (n_stimuli, D), optional
        A semantic vector per stimulus (e.g. a frozen CLIP or language-model
        embedding), indexed by stimulus id, for the ``"semantic"`` readout.
        Without it that readout uses the pooled feature maps.
    test_size : float, default=0.2
        Fraction of distinct stimuli held out (ignored if ``test_stimuli``).
    test_stimuli : array of int, optional
        The held-out stimulus ids (e.g. NSD's shared 1000).
    seed : int, default=0
        Seed of the split, the bootstrap and the named readouts (their
        ``random_state``).
    device : str, default="auto"
    readout_kwargs : dict, optional
        Extra settings for the named readouts (``epochs``, ``lr``, ...).
    image_size : (h, w), optional
        Image size the feature extractor sees.
    n_boot : int, default=2000
        Bootstrap resamples for the per-ROI confidence intervals.
    verbose : int, default=0
        1 shows a progress bar over the encoders; 2 also the readouts' own
        training bars and epoch logs.
    zscore : bool, default=True
        Z-score each voxel within each session before averaging repeats
        (:meth:`FMRIDataset.zscore`, NSD's practice), so the responses fitted
        are those the noise ceiling describes and session shifts do not enter
        the fit. False fits the responses as given.

    Returns
    -------
    EncoderComparison

    Examples
    --------
    >>> from data_loaders.fmri import FMRIDataset
    >>> from data_loaders.simulate.fmri import simulate_fmri
    >>> sim = simulate_fmri(n_subjects=1, n_stimuli=60, image_size=32, voxels_per_roi=3, seed=0)
    >>> ds = FMRIDataset.from_simulation(sim.subjects[0], sim.stimuli)
    >>> maps = sim.feature_maps[:, None, ::4, ::4]  # the planted contrast energy, 8 x 8
    >>> result = compare_encoders(ds, ["ridge"], features=maps, device="cpu")
    >>> result.table.columns[:4].tolist()
    ['roi', 'model', 'n_voxels', 'r_mean']
    >>> sorted(result.table["roi"].unique())[:3]
    ['FFA', 'LOC', 'PPA']
    """
    if dataset.roi_labels is None:
        roi_labels = np.full(dataset.n_voxels, "all-voxels")
    else:
        roi_labels = np.where(dataset.roi_labels == "", "unlabelled", dataset.roi_labels)
    est_by_name = _encoder_list(encoders, device, seed, max(verbose - 1, 0), readout_kwargs)
    if check_bool("zscore", zscore):
        dataset = dataset.zscore()
    train, test = dataset.split(test_size=test_size, seed=seed, test_stimuli=test_stimuli)
    y_train, ids_train, _ = _averages(train)
    y_test, ids_test, counts_test = _averages(test)
    if len(ids_train) < 5:
        raise InputError(
            f"Only {len(ids_train)} distinct training stimuli; at least 5 are needed to fit and "
            "cross-validate. Use more stimuli or a smaller test_size."
        )

    if features is None or hasattr(features, "transform") or callable(features):
        ids = np.concatenate([ids_train, ids_test])
        maps = compute_features(dataset, features, stimulus_ids=ids, image_size=image_size)
        x_train, x_test = maps[: len(ids_train)], maps[len(ids_train) :]
    else:
        maps = np.asarray(features, dtype=np.float32)
        if maps.ndim not in (2, 4):
            raise InputError(
                f"features must have shape (n_stimuli, C, H, W) (or (n_stimuli, D) for ridge); "
                f"got {maps.shape}."
            )
        top = int(max(ids_train.max(), ids_test.max()))
        if len(maps) <= top:
            raise InputError(
                f"features has {len(maps)} rows but the dataset shows stimulus id {top}; give one "
                "row per stimulus, indexed by stimulus id."
            )
        x_train, x_test = maps[ids_train], maps[ids_test]
    sem_train = sem_test = None
    if semantic is not None:
        sem = np.asarray(semantic, dtype=np.float32)
        if sem.ndim != 2 or len(sem) <= int(max(ids_train.max(), ids_test.max())):
            raise InputError(
                f"semantic must have shape (n_stimuli, D) with one row per stimulus id; got "
                f"{sem.shape}."
            )
        sem_train, sem_test = sem[ids_train], sem[ids_test]

    _, trial_counts = np.unique(dataset.stimulus_ids, return_counts=True)
    if (trial_counts >= 2).any():
        ceiling = dataset.noise_ceiling().r2(counts_test)
    else:
        warnings.warn(
            "No stimulus was shown more than once, so there is no noise ceiling; the "
            "noise-normalised scores are NaN (r and R² are still reported).",
            stacklevel=2,
        )
        ceiling = np.full(dataset.n_voxels, np.nan)
    from neuro.train.progress import progress

    scores, r2s, normed, seconds = {}, {}, {}, {}
    bar = progress(est_by_name.items(), desc="encoders", verbose=verbose, unit="model")
    for name, est in bar:
        bar.set_postfix_str(f"fitting {name}")
        reads_maps = getattr(est, "input_kind", "vectors") == "maps"
        xtr = x_train if reads_maps else x_train.reshape(len(x_train), -1)
        xte = x_test if reads_maps else x_test.reshape(len(x_test), -1)
        t0 = time.perf_counter()
        if getattr(est, "in_context", False):
            pred = _in_context_predict(name, est, xtr, xte, y_train, sem_train, sem_test, seed)
        elif getattr(est, "reads_semantic", False) and sem_train is not None:
            est.fit(xtr, y_train, semantic=sem_train)
            pred = est.predict(xte, semantic=sem_test)
        elif getattr(est, "reads_rois", False):
            est.fit(xtr, y_train, **_roi_arguments(name, est, dataset))
            pred = est.predict(xte)
        else:
            est.fit(xtr, y_train)
            pred = est.predict(xte)
        seconds[name] = time.perf_counter() - t0
        pred = np.asarray(pred, dtype=np.float64)
        scores[name] = voxel_correlation(y_test.astype(np.float64), pred)
        r2s[name] = voxel_r2(y_test.astype(np.float64), pred)
        normed[name] = noise_normalized(scores[name], ceiling, min_ceiling=_MIN_CEILING)
        logger.info("%s: mean r %.3f (%.1f s)", name, float(np.mean(scores[name])), seconds[name])

    table = _roi_table(scores, normed, roi_labels, n_boot=n_boot, seed=seed)
    return EncoderComparison(
        scores=scores,
        r2=r2s,
        normalized=normed,
        ceiling_r2=ceiling,
        roi_labels=roi_labels,
        table=table,
        fit_seconds=seconds,
        encoders=est_by_name,
        n_train=len(ids_train),
        n_test=len(ids_test),
        dataset=dataset,
    )


def _roi_arguments(name: str, est, dataset) -> dict[str, Any]:
    """``roi_labels`` (and ``hemispheres`` on surfaces) for an estimator that routes by ROI."""
    unlabelled = dataset.roi_labels is None or not (np.asarray(dataset.roi_labels) != "").any()
    if unlabelled and getattr(est, "query_mode", "roi") == "roi":
        raise InputError(
            f"Encoder {name!r} routes by ROI, but the dataset has no ROI labels; give the "
            "voxels' ROIs (--labels/--rois, FMRIDataset(roi_labels=...)) or use "
            "TransformerEncoder(query_mode='voxel')."
        )
    hemi = getattr(dataset.geometry, "hemi", None)  # surfaces know each vertex's hemisphere
    labels = dataset.roi_labels
    if labels is None:
        labels = np.full(dataset.n_voxels, "")
    return {"roi_labels": labels, "hemispheres": None if hemi is None else np.asarray(hemi)}


def _in_context_predict(name, est, xtr, xte, y_train, sem_train, sem_test, seed):
    """Predictions of an in-context encoder whose support set is the training stimuli.

    The encoder reads the semantic vectors when given, else the flattened
    feature maps. Unless it is already fitted (meta-trained, e.g. on other
    subjects), it is first meta-trained on this subject's training stimuli.
    The support set is at most the largest support size it was trained on
    (``settings_.k_max``), drawn at random when there are more training
    stimuli.
    """
    if sem_train is not None:
        xtr, xte = sem_train, sem_test
    if not hasattr(est, "model_"):
        est.fit(xtr, y_train)
    elif xtr.shape[1] != est.n_features_in_:
        raise InputError(
            f"Encoder {name!r} was meta-trained on embeddings of length {est.n_features_in_} "
            f"but the comparison gives it {xtr.shape[1]}; give the same embedding (semantic=) "
            "as in its training."
        )
    k = min(len(xtr), est.settings_.k_max)
    pick = np.sort(np.random.default_rng(seed).permutation(len(xtr))[:k])
    if k < len(xtr):
        logger.info("%s: support set of %d of the %d training stimuli", name, k, len(xtr))
    return est.predict(xte, support_X=xtr[pick], support_Y=y_train[pick])


def _roi_table(scores, normed, roi_labels, n_boot: int, seed: int):
    r_tab = roi_summary(scores, roi_labels, n_boot=n_boot, seed=seed)
    n_tab = roi_summary(normed, roi_labels, n_boot=n_boot, seed=seed)
    table = r_tab.rename(
        columns={
            "mean": "r_mean",
            "ci_low": "r_ci_low",
            "ci_high": "r_ci_high",
            "median": "r_median",
        }
    )
    table["normalized_mean"] = n_tab["mean"].to_numpy()
    table["normalized_ci_low"] = n_tab["ci_low"].to_numpy()
    table["normalized_ci_high"] = n_tab["ci_high"].to_numpy()
    table["n_voxels_with_ceiling"] = n_tab["n_voxels"].to_numpy()
    return table
