"""One object for a subject's fMRI responses and everything that goes with them.

:class:`FMRIDataset` ties single-trial responses to the stimuli they answer,
each voxel's ROI and position, the noise ceiling from repeats, and splits by
stimulus. Every encoder in :mod:`neuro.encoders` accepts one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from data_loaders.fmri._common import check_stimulus_ids, drop_bad_voxels
from data_loaders.fmri.repeats import (
    NoiseCeiling,
    average_repeats,
    noise_ceiling,
    split_by_stimulus,
)

__all__ = ["FMRIDataset", "values_to_nifti"]


def values_to_nifti(values, voxel_ijk, affine, volume_shape, fill: float = np.nan):
    """Place per-voxel values into a volume and return a NIfTI image.

    Parameters
    ----------
    values : array of shape (n_voxels,) or (k, n_voxels)
        One map, or ``k`` maps (a 4D image results).
    voxel_ijk : array of shape (n_voxels, 3), int
        Voxel indices in the volume.
    affine : array of shape (4, 4)
    volume_shape : tuple of 3 ints
    fill : float, default=NaN
        Value of voxels outside ``voxel_ijk``.

    Returns
    -------
    nibabel.Nifti1Image
    """
    import nibabel as nib

    vals = np.asarray(values, dtype=np.float32)
    ijk = np.asarray(voxel_ijk)
    if vals.shape[-1] != len(ijk):
        raise ValueError(
            f"values have {vals.shape[-1]} entries on their last axis but there are {len(ijk)} "
            "voxels; give one value per voxel."
        )
    if vals.ndim == 1:
        vol = np.full(tuple(volume_shape), fill, dtype=np.float32)
        vol[tuple(ijk.T)] = vals
    elif vals.ndim == 2:
        vol = np.full((*volume_shape, len(vals)), fill, dtype=np.float32)
        vol[tuple(ijk.T)] = vals.T
    else:
        raise ValueError(f"values must be 1D or 2D (k, n_voxels); got shape {vals.shape}.")
    return nib.Nifti1Image(vol, np.asarray(affine, dtype=np.float64))


class FMRIDataset:
    """Single-trial responses of one subject with stimuli, ROIs, noise ceiling and splits.

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
        World coordinates in mm.
    voxel_ijk, affine, volume_shape : optional
        Voxel indices in a reference volume, so results become NIfTI maps.
    session_ids : array of shape (n_trials,), optional
        Session of each trial (the noise ceiling z-scores within sessions).
    name : str, optional
        Subject name.
    drop_bad : bool, default=True
        Drop NaN/inf and constant voxels (with a warning that counts them).

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
        voxel_ijk=None,
        affine=None,
        volume_shape=None,
        session_ids=None,
        name: str | None = None,
        drop_bad: bool = True,
    ) -> None:
        b = np.asarray(betas)
        if b.ndim != 2:
            raise ValueError(f"betas must have shape (n_trials, n_voxels); got shape {b.shape}.")
        if b.shape[1] == 0:
            raise ValueError("betas has no voxels (shape (n_trials, 0)); check the mask or ROI.")
        if stimuli is not None and not hasattr(stimuli, "load"):
            from data_loaders.stimuli import open_images

            stimuli = open_images(stimuli)  # a folder, .h5/.hdf5/.npy file, or array
        self.stimuli = stimuli
        self.stimulus_ids = check_stimulus_ids(
            stimulus_ids, len(b), len(stimuli) if stimuli is not None else None
        )
        n_vox = b.shape[1]
        self.roi_labels = self._per_voxel(roi_labels, n_vox, "roi_labels", dtype=str)
        self.coords = self._per_voxel(coords, n_vox, "coords", dtype=np.float64)
        self.voxel_ijk = self._per_voxel(voxel_ijk, n_vox, "voxel_ijk", dtype=np.int64)
        self.affine = None if affine is None else np.asarray(affine, dtype=np.float64)
        self.volume_shape = None if volume_shape is None else tuple(int(v) for v in volume_shape)
        if session_ids is not None:
            session_ids = np.asarray(session_ids)
            if session_ids.shape != (len(b),):
                raise ValueError(
                    f"session_ids must have one entry per trial ({len(b)}); got shape {session_ids.shape}."
                )
        self.session_ids = session_ids
        self.name = name
        keep = drop_bad_voxels(b) if drop_bad else np.ones(n_vox, dtype=bool)
        self.betas = np.ascontiguousarray(b[:, keep], dtype=np.float32)
        for attr in ("roi_labels", "coords", "voxel_ijk"):
            value = getattr(self, attr)
            if value is not None:
                setattr(self, attr, value[keep])
        self._ceiling: NoiseCeiling | None = None

    @staticmethod
    def _per_voxel(value, n_vox: int, name: str, dtype) -> np.ndarray | None:
        if value is None:
            return None
        arr = np.asarray(value, dtype=dtype)
        if len(arr) != n_vox:
            raise ValueError(f"{name} must have one entry per voxel ({n_vox}); got {len(arr)}.")
        return arr

    # ---------------------------------------------------------------- basics
    @property
    def n_trials(self) -> int:
        return self.betas.shape[0]

    @property
    def n_voxels(self) -> int:
        return self.betas.shape[1]

    @property
    def rois(self) -> list[str]:
        """Names of the ROIs present (sorted; the unlabelled "" left out)."""
        if self.roi_labels is None:
            return []
        return sorted(r for r in set(self.roi_labels.tolist()) if r)

    def __repr__(self) -> str:
        return (
            f"FMRIDataset(name={self.name!r}, n_trials={self.n_trials}, n_voxels={self.n_voxels}, "
            f"n_stimuli_shown={len(np.unique(self.stimulus_ids))}, rois={self.rois})"
        )

    def _subset(self, trials=None, voxels=None) -> FMRIDataset:
        new = object.__new__(FMRIDataset)
        new.__dict__.update(self.__dict__)
        t = slice(None) if trials is None else trials
        v = slice(None) if voxels is None else voxels
        new.betas = np.ascontiguousarray(self.betas[t][:, v])
        new.stimulus_ids = self.stimulus_ids[t]
        new.session_ids = None if self.session_ids is None else self.session_ids[t]
        for attr in ("roi_labels", "coords", "voxel_ijk"):
            value = getattr(self, attr)
            if value is not None:
                setattr(new, attr, value[v])
        new._ceiling = None
        return new

    # ------------------------------------------------------------------ ROIs
    def select_rois(self, names: str | Sequence[str]) -> FMRIDataset:
        """A dataset restricted to the voxels of one or more ROIs."""
        if self.roi_labels is None:
            raise ValueError("This dataset has no ROI labels; give roi_labels when creating it.")
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in set(self.roi_labels.tolist())]
        if unknown:
            raise ValueError(f"ROI(s) {unknown} match no voxel; the ROIs present are {self.rois}.")
        return self._subset(voxels=np.isin(self.roi_labels, names))

    # --------------------------------------------------------------- repeats
    def noise_ceiling(self) -> NoiseCeiling:
        """The per-voxel noise ceiling from repeats (NSD's ncsnr; cached)."""
        if self._ceiling is None:
            self._ceiling = noise_ceiling(self.betas, self.stimulus_ids, self.session_ids)
        return self._ceiling

    def average_repeats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(responses (n_stimuli_shown, n_voxels), stimulus ids, trial counts)``."""
        return average_repeats(self.betas, self.stimulus_ids)

    def split(self, test_size: float = 0.2, seed: int | None = 0, test_stimuli=None):
        """Train and test datasets with no stimulus on both sides."""
        train, test = split_by_stimulus(self.stimulus_ids, test_size, seed, test_stimuli)
        return self._subset(trials=train), self._subset(trials=test)

    # --------------------------------------------------------------- stimuli
    def images(self, size: tuple[int, int] | None = None, unique: bool = True) -> np.ndarray:
        """Stimulus images ``(n, 3, h, w)``: of the distinct stimuli shown (sorted), or of every trial."""
        if self.stimuli is None:
            raise ValueError("This dataset has no stimuli; give stimuli when creating it.")
        ids = np.unique(self.stimulus_ids) if unique else self.stimulus_ids
        return self.stimuli.load(ids, size=size)

    # ----------------------------------------------------------------- maps
    def to_nifti(self, values, fill: float = np.nan):
        """Turn per-voxel values ``(n_voxels,)`` or ``(k, n_voxels)`` into a NIfTI image."""
        if self.voxel_ijk is None or self.affine is None or self.volume_shape is None:
            raise ValueError(
                "This dataset does not know where its voxels lie; give voxel_ijk, affine and "
                "volume_shape when creating it (the NIfTI and HDF5 readers do)."
            )
        return values_to_nifti(values, self.voxel_ijk, self.affine, self.volume_shape, fill)

    # ------------------------------------------------------------- builders
    @classmethod
    def from_simulation(cls, subject, stimuli=None) -> FMRIDataset:
        """A dataset from a :class:`data_loaders.simulate.fmri.SimulatedSubject`."""
        images = None if stimuli is None else getattr(stimuli, "images", stimuli)
        return cls(
            subject.betas,
            subject.stimulus_ids,
            stimuli=images,
            roi_labels=subject.roi_labels,
            coords=subject.coords,
            voxel_ijk=subject.voxel_ijk,
            affine=subject.affine,
            volume_shape=subject.volume_shape,
            session_ids=subject.session_ids,
            name=subject.name,
        )
