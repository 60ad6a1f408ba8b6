"""One object for a subject's fMRI responses and everything that goes with them.

:class:`FMRIDataset` ties single-trial responses to the stimuli they answer,
each voxel's ROI and position, the noise ceiling from repeats, and splits by
stimulus. Every encoder in :mod:`neuro.encoders` accepts one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from data_loaders._validation import check_array, check_bool
from data_loaders.errors import InputError, InputTypeError
from data_loaders.fmri._common import check_session_ids, check_stimulus_ids, drop_bad_voxels
from data_loaders.fmri.geometry import GeometryFields, VoxelGeometry, values_to_nifti
from data_loaders.fmri.repeats import (
    NoiseCeiling,
    average_repeats,
    noise_ceiling,
    split_by_stimulus,
)

__all__ = ["FMRIDataset", "values_to_nifti"]

_PER_VOXEL = ("roi_labels", "coords")


class FMRIDataset(GeometryFields):
    """Single-trial responses of one subject with stimuli, ROIs, noise ceiling and splits.

    Every dataset is built here (the NIfTI and HDF5 readers and the simulator
    call this constructor through their ``to_dataset`` / :meth:`from_simulation`),
    so its fields are checked in one place.

    Parameters
    ----------
    betas : array of shape (n_trials, n_voxels)
        Single-trial responses (e.g. percent signal change). Voxels with
        NaN/inf values or constant over trials are dropped with a warning.
    stimulus_ids : array of shape (n_trials,)
        Which stimulus each trial showed: an index into ``stimuli``.
    stimuli : ImageSet, array or path, optional
        The stimulus images (see :mod:`data_loaders.stimuli`): an image set,
        an array ``(n_stimuli, H, W, 3)``, an image folder, or an HDF5 /
        ``.npy`` file.
    roi_labels : array of shape (n_voxels,), optional
        ROI name of each voxel ("" for none).
    coords : array of shape (n_voxels, 3), optional
        World coordinates in mm; by default those of ``geometry``.
    geometry : VoxelGeometry, RegionGeometry or SurfaceGeometry, optional
        Where the columns lie: voxels of a reference volume (shape, affine,
        voxel indices), regions of a label image, or vertices of a surface
        mesh, so results become brain maps (:meth:`to_nifti`, or
        ``geometry.save_map`` for any kind).
    session_ids : array of shape (n_trials,), optional
        Session of each trial (ints or labels such as ``"01"``). The noise
        ceiling and :meth:`zscore` standardise each voxel within sessions,
        as NSD does, so session-to-session shifts do not count as noise.
        None means one session. The readers fill it from the trial table's
        ``session`` column (NIfTI, surfaces), the BIDS session of each run,
        or NSD's design.
    name : str, optional
        Subject name.
    drop_bad : bool, default=True
        Drop NaN/inf and constant voxels (with a warning that counts them).

    Attributes
    ----------
    betas : ndarray of shape (n_trials, n_voxels), float32
    stimulus_ids : ndarray of shape (n_trials,), int64
    stimuli : ImageSet or None
    roi_labels : ndarray of shape (n_voxels,), str, or None
    coords : ndarray of shape (n_voxels, 3), or None
    geometry : VoxelGeometry or None
    session_ids : ndarray of shape (n_trials,), int64 or str, or None
    name : str or None
    voxel_ijk, affine, volume_shape
        Read-only views of ``geometry`` (None without one).

    Raises
    ------
    InputError
        Arrays of the wrong shape or length, ids out of range, a geometry
        whose voxel count differs from ``betas``, every voxel bad.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ids = np.repeat(np.arange(30), 2)
    >>> ds = FMRIDataset(rng.standard_normal((60, 9)), ids, roi_labels=["V1"] * 4 + ["V2"] * 5)
    >>> ds.n_trials, ds.n_voxels, ds.rois
    (60, 9, ['V1', 'V2'])
    >>> train, test = ds.split(test_size=0.2, seed=0)
    >>> len(set(train.stimulus_ids) & set(test.stimulus_ids))
    0
    """

    def __init__(
        self,
        betas,
        stimulus_ids,
        stimuli: Any = None,
        roi_labels: Sequence[str] | None = None,
        coords=None,
        geometry: VoxelGeometry | None = None,
        session_ids=None,
        name: str | None = None,
        drop_bad: bool = True,
    ) -> None:
        if len(np.shape(betas)) == 2 and np.shape(betas)[1] == 0:
            raise InputError("betas has no voxels (shape (n_trials, 0)); check the mask or ROI.")
        b = check_array("betas", betas, ndim=2, shape_hint="(n_trials, n_voxels)", finite=False)
        drop_bad = check_bool("drop_bad", drop_bad)
        if name is not None and not isinstance(name, str):
            raise InputTypeError(f"name must be a string or None; got {type(name).__name__}.")
        if geometry is not None and not all(
            hasattr(geometry, a) for a in ("kind", "n_voxels", "subset", "save_map")
        ):
            raise InputTypeError(
                f"geometry must be a VoxelGeometry (or a RegionGeometry / SurfaceGeometry) or "
                f"None; got {type(geometry).__name__}. Build one with "
                "VoxelGeometry(volume_shape, affine, ijk)."
            )
        n_vox = b.shape[1]
        if geometry is not None and geometry.n_voxels != n_vox:
            raise InputError(
                f"geometry has {geometry.n_voxels} voxels but betas has {n_vox} columns; give "
                "the geometry of these voxels, in column order."
            )
        if stimuli is not None and not hasattr(stimuli, "load"):
            from data_loaders.stimuli import open_images

            stimuli = open_images(stimuli)  # a folder, .h5/.hdf5/.npy file, or array
        self.stimuli = stimuli
        self.stimulus_ids = check_stimulus_ids(
            stimulus_ids, len(b), len(stimuli) if stimuli is not None else None
        )
        self.roi_labels = self._per_voxel(roi_labels, n_vox, "roi_labels")
        if coords is None and geometry is not None:
            coords = geometry.coords
        self.coords = self._per_voxel(coords, n_vox, "coords")
        self.session_ids = check_session_ids(session_ids, len(b))
        self.name = name
        keep = drop_bad_voxels(b) if drop_bad else np.ones(n_vox, dtype=bool)
        self.betas = np.ascontiguousarray(b[:, keep], dtype=np.float32)
        self.geometry = geometry if geometry is None or keep.all() else geometry.subset(keep)
        for attr in _PER_VOXEL:
            value = getattr(self, attr)
            if value is not None:
                setattr(self, attr, value[keep])
        self._ceiling: NoiseCeiling | None = None

    @staticmethod
    def _per_voxel(value, n_vox: int, name: str) -> np.ndarray | None:
        if value is None:
            return None
        if name == "roi_labels":
            arr = np.asarray(value, dtype=str)
            if arr.ndim != 1:
                raise InputError(
                    f"roi_labels must be one ROI name per voxel, shape ({n_vox},); got shape "
                    f"{arr.shape}."
                )
        else:
            arr = check_array(name, value, ndim=2, shape_hint="(n_voxels, 3)", dtype=np.float64)
            if arr.shape[1] != 3:
                raise InputError(f"coords must have shape (n_voxels, 3); got shape {arr.shape}.")
        if len(arr) != n_vox:
            raise InputError(f"{name} must have one entry per voxel ({n_vox}); got {len(arr)}.")
        return arr

    # ---------------------------------------------------------------- basics
    @property
    def n_trials(self) -> int:
        """Number of trials (rows of :attr:`betas`)."""
        return self.betas.shape[0]

    @property
    def n_voxels(self) -> int:
        """Number of voxels (columns of :attr:`betas`)."""
        return self.betas.shape[1]

    @property
    def rois(self) -> list[str]:
        """Names of the ROIs present (sorted; the unlabelled "" left out)."""
        if self.roi_labels is None:
            return []
        return sorted(r for r in set(self.roi_labels.tolist()) if r)

    @property
    def n_sessions(self) -> int:
        """Number of distinct sessions (1 without ``session_ids``)."""
        return 1 if self.session_ids is None else len(np.unique(self.session_ids))

    def __repr__(self) -> str:
        return (
            f"FMRIDataset(name={self.name!r}, n_trials={self.n_trials}, n_voxels={self.n_voxels}, "
            f"n_stimuli_shown={len(np.unique(self.stimulus_ids))}, n_sessions={self.n_sessions}, "
            f"rois={self.rois})"
        )

    def _subset(self, trials=None, voxels=None) -> FMRIDataset:
        new = object.__new__(FMRIDataset)
        new.__dict__.update(self.__dict__)
        t = slice(None) if trials is None else trials
        v = slice(None) if voxels is None else voxels
        new.betas = np.ascontiguousarray(self.betas[t][:, v])
        new.stimulus_ids = self.stimulus_ids[t]
        new.session_ids = None if self.session_ids is None else self.session_ids[t]
        for attr in _PER_VOXEL:
            value = getattr(self, attr)
            if value is not None:
                setattr(new, attr, value[v])
        if self.geometry is not None and voxels is not None:
            new.geometry = self.geometry.subset(v)
        new._ceiling = None
        return new

    # ------------------------------------------------------------------ ROIs
    def select_rois(self, names: str | Sequence[str]) -> FMRIDataset:
        """A dataset restricted to the voxels of one or more ROIs.

        Parameters
        ----------
        names : str or sequence of str
            ROI names, as in :attr:`rois`.

        Returns
        -------
        FMRIDataset
            Same trials; only the voxels of those ROIs (in their order here).
        """
        if self.roi_labels is None:
            raise InputError("This dataset has no ROI labels; give roi_labels when creating it.")
        names = [names] if isinstance(names, str) else list(names)
        if not names or not all(isinstance(n, str) for n in names):
            raise InputTypeError(f"names must be an ROI name or a list of them; got {names!r}.")
        unknown = [n for n in names if n not in set(self.roi_labels.tolist())]
        if unknown:
            raise InputError(f"ROI(s) {unknown} match no voxel; the ROIs present are {self.rois}.")
        return self._subset(voxels=np.isin(self.roi_labels, names))

    # --------------------------------------------------------------- repeats
    def noise_ceiling(self) -> NoiseCeiling:
        """The per-voxel noise ceiling from repeats (NSD's ncsnr; cached).

        Returns
        -------
        NoiseCeiling
            ``ncsnr`` of shape (n_voxels,).
        """
        if self._ceiling is None:
            self._ceiling = noise_ceiling(self.betas, self.stimulus_ids, self.session_ids)
        return self._ceiling

    def zscore(self) -> FMRIDataset:
        """A copy with each voxel z-scored over trials within each session (NSD's practice).

        Removes each session's baseline and gain per voxel, which otherwise
        read as noise across repeats shown in different sessions. It uses
        every trial of a session (no stimulus labels), so it is applied before
        a train/test split. :func:`~neuro.encoders.compare.compare_encoders`
        does it by default (``zscore=True``).

        Returns
        -------
        FMRIDataset
            Same trials, voxels and fields; ``betas`` float32 with mean 0 and
            standard deviation 1 per voxel and session (0 where a voxel is
            constant within a session).
        """
        from data_loaders.fmri.repeats import zscore

        new = object.__new__(FMRIDataset)
        new.__dict__.update(self.__dict__)  # shares every field but the betas (no extra copy)
        new.betas = zscore(self.betas, self.session_ids)
        new._ceiling = None
        return new

    def average_repeats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(responses (n_stimuli_shown, n_voxels), stimulus ids, trial counts)``."""
        return average_repeats(self.betas, self.stimulus_ids)

    def split(self, test_size: float = 0.2, seed: int | None = 0, test_stimuli=None):
        """Train and test datasets with no stimulus on both sides.

        Parameters
        ----------
        test_size, seed, test_stimuli
            As in :func:`~data_loaders.fmri.repeats.split_by_stimulus`.

        Returns
        -------
        train, test : FMRIDataset
        """
        train, test = split_by_stimulus(self.stimulus_ids, test_size, seed, test_stimuli)
        return self._subset(trials=train), self._subset(trials=test)

    # --------------------------------------------------------------- stimuli
    def images(self, size: tuple[int, int] | None = None, unique: bool = True) -> np.ndarray:
        """Stimulus images ``(n, 3, h, w)``: of the distinct stimuli shown (sorted), or of every trial."""
        if self.stimuli is None:
            raise InputError("This dataset has no stimuli; give stimuli when creating it.")
        unique = check_bool("unique", unique)
        ids = np.unique(self.stimulus_ids) if unique else self.stimulus_ids
        return self.stimuli.load(ids, size=size)

    def compact_stimuli(self) -> tuple[FMRIDataset, np.ndarray]:
        """A copy whose stimuli are only those shown, renumbered ``0 .. n_shown - 1``.

        For a large stimulus set of which the subject saw a part (NSD: 10,000
        of 73,000 images), so that features and their cache cover only the
        images shown (:class:`~data_loaders.stimuli.ImageSubset`, read lazily).

        Returns
        -------
        dataset : FMRIDataset
            ``stimulus_ids`` index the shown stimuli in increasing original id.
        original_ids : ndarray of shape (n_shown,), int64
            ``original_ids[new_id]`` is the id in the original set: use it to
            map per-stimulus arrays (``semantic[original_ids]``) and
            ``np.searchsorted(original_ids, test_ids)`` for held-out ids.
        """
        original = np.unique(self.stimulus_ids)
        new = self._subset()
        new.stimulus_ids = np.searchsorted(original, self.stimulus_ids).astype(np.int64)
        if self.stimuli is not None:
            from data_loaders.stimuli import ImageSubset

            new.stimuli = ImageSubset(self.stimuli, original)
        return new, original

    # ----------------------------------------------------------------- maps
    def to_nifti(self, values, fill: float = np.nan):
        """Turn per-voxel values into a NIfTI image (see :meth:`VoxelGeometry.to_nifti`).

        Parameters
        ----------
        values : array of shape (n_voxels,) or (k, n_voxels)
        fill : float, default=NaN
            Value of the voxels that are not in this dataset.

        Returns
        -------
        nibabel.Nifti1Image
            Shape ``volume_shape`` or ``(*volume_shape, k)``.
        """
        if self.geometry is None:
            raise InputError(
                "This dataset does not know where its voxels lie; give "
                "geometry=VoxelGeometry(volume_shape, affine, ijk) when creating it (the NIfTI "
                "and HDF5 readers and the simulator do)."
            )
        if not hasattr(self.geometry, "to_nifti"):
            raise InputError(
                f"This dataset's columns are {self.geometry.kind} vertices, not voxels; write "
                "surface maps with dataset.geometry.save_map(values, stem) or draw them with "
                "dataset.geometry.plot(values)."
            )
        return self.geometry.to_nifti(values, fill=fill)

    # ------------------------------------------------------------- builders
    @classmethod
    def concatenate(
        cls, datasets: Sequence[FMRIDataset], name: str | None = None, drop_bad: bool = True
    ) -> FMRIDataset:
        """Join the trials of several datasets of the same voxels (e.g. one per session file).

        Parameters
        ----------
        datasets : sequence of FMRIDataset
            The same voxels in the same order (equal geometry when they have
            one, else equal ROI labels and voxel counts) and the same stimulus
            set (the first one's ``stimuli`` are kept).
        name : str, optional
            Default: the first dataset's name.
        drop_bad : bool, default=True
            Drop voxels that are NaN/inf or constant over all the trials joined
            (read each part with ``drop_bad=False`` so that a voxel constant in
            one session only is kept).

        Returns
        -------
        FMRIDataset
            Trials in the order given. Each dataset without ``session_ids``
            becomes its own session, numbered 1, 2, ... by position; datasets
            with them keep their labels.

        Raises
        ------
        InputError
            No dataset, voxels that differ, or session labels that repeat
            across datasets.
        """
        parts = list(datasets)
        if not parts or not all(isinstance(d, FMRIDataset) for d in parts):
            raise InputTypeError("datasets must be a non-empty list of FMRIDataset.")
        first = parts[0]
        for i, d in enumerate(parts[1:], start=1):
            same = d.n_voxels == first.n_voxels and (
                d.geometry == first.geometry
                if d.geometry is not None and first.geometry is not None
                else np.array_equal(
                    np.asarray(d.roi_labels if d.roi_labels is not None else []),
                    np.asarray(first.roi_labels if first.roi_labels is not None else []),
                )
            )
            if not same:
                raise InputError(
                    f"datasets[{i}] ({d.n_voxels} voxels) does not hold the voxels of datasets[0] "
                    f"({first.n_voxels} voxels) in the same order; read every session with the "
                    "same mask and ROIs."
                )
        labels = [
            np.full(d.n_trials, i + 1) if d.session_ids is None else d.session_ids
            for i, d in enumerate(parts)
        ]
        if any(d.session_ids is not None for d in parts):
            if not all(np.issubdtype(np.asarray(lab).dtype, np.integer) for lab in labels):
                labels = [np.asarray(lab).astype(str) for lab in labels]  # mixed kinds: as text
            seen: set = set()
            for i, lab in enumerate(labels):
                mine = set(np.unique(lab).tolist())
                if mine & seen:
                    raise InputError(
                        f"datasets[{i}] reuses session label(s) {sorted(mine & seen)} of an "
                        "earlier dataset; give each session its own label."
                    )
                seen |= mine
        return cls(
            np.concatenate([d.betas for d in parts]),
            np.concatenate([d.stimulus_ids for d in parts]),
            stimuli=first.stimuli,
            roi_labels=first.roi_labels,
            coords=first.coords if first.geometry is None else None,
            geometry=first.geometry,
            session_ids=np.concatenate(labels),
            name=first.name if name is None else name,
            drop_bad=drop_bad,
        )

    @classmethod
    def from_simulation(cls, subject, stimuli=None) -> FMRIDataset:
        """A dataset from a :class:`data_loaders.simulate.fmri.SimulatedSubject`.

        Parameters
        ----------
        subject : SimulatedSubject
        stimuli : SimulatedStimuli or array, optional
            The images the subject saw.

        Returns
        -------
        FMRIDataset
        """
        images = None if stimuli is None else getattr(stimuli, "images", stimuli)
        return cls(
            subject.betas,
            subject.stimulus_ids,
            stimuli=images,
            roi_labels=subject.roi_labels,
            geometry=subject.geometry,
            session_ids=subject.session_ids,
            name=subject.name,
        )
