"""NSD-style HDF5 single-trial betas, read lazily.

File format (one file per session), as the Natural Scenes Dataset stores betas:

``betas``
    int16 dataset, percent signal change x 300 (NSD's scale; the reader
    divides by the ``scale`` attribute of the dataset, 300 when absent for
    int16 and 1 for float data). Trials are always axis 0. Two layouts:

    * masked: shape ``(n_trials, n_voxels)``, with ``voxel_ijk``
      ``(n_voxels, 3)`` giving each voxel's indices in a reference volume
      whose ``affine`` (4x4) and ``volume_shape`` (3,) are stored as datasets;
    * volumetric: shape ``(n_trials, Z, Y, X)``. NSD wrote its files from
      MATLAB, so the spatial axes appear reversed relative to the NIfTI
      ``(X, Y, Z)`` order; the reader transposes them back, and voxels are the
      non-zero ones of ``mask`` (a ``(Z, Y, X)`` dataset), or all voxels.
``stimulus_ids`` (optional)
    ``(n_trials,)`` int, 0-based index of each trial's image. NSD's own
    files hold only ``betas`` (the trial-to-image table is in
    ``nsd_expdesign.mat``): give ``stimulus_ids=`` to :class:`NSDSession`, or
    read whole subjects with :class:`~data_loaders.fmri.nsd.NSDSubject`.
``roi`` (optional)
    ``(n_voxels,)`` int (``(Z, Y, X)`` for volumetric files), 0 = unlabelled,
    with a JSON attribute ``roi_names`` mapping label to name.

A file whose trial axis is last (``(n_voxels, n_trials)``) is refused with an
error that says so. Files are opened read-only; reading is by slices of
``voxel_batch_size`` voxels or ``trial_batch_size`` trials, so memory is
bounded by the batch, not the session. Volumetric files are read by rows of
voxels (one ``(trials, 1, 1, n)`` hyperslab per (Z, Y) row), the cheap
direction with NSD's ``(750, 1, 1, 1)`` chunks.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from data_loaders._io import check_overwrite
from data_loaders._validation import check_array, check_bool, check_file, check_int
from data_loaders.errors import (
    InputError,
    InputTypeError,
    MissingFileError,
    UnreadableFileError,
    one_line,
)
from data_loaders.fmri._common import FMRIDataWarning, check_stimulus_ids
from data_loaders.fmri.geometry import VoxelGeometry

__all__ = ["NSDSession", "write_nsd_session"]

NSD_SCALE = 300.0


def write_nsd_session(
    path,
    betas,
    stimulus_ids,
    *,
    geometry: VoxelGeometry | None = None,
    roi=None,
    roi_names: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write single-trial betas (percent signal change) as an NSD-style HDF5 session.

    Parameters
    ----------
    path : str or path
    betas : array of shape (n_trials, n_voxels)
        Percent signal change; stored as int16 x 300 (values beyond +-109%
        are clipped, with a warning counting them).
    stimulus_ids : array of shape (n_trials,)
    geometry : VoxelGeometry, optional
        Where the voxels lie; stored as ``voxel_ijk``, ``affine`` and
        ``volume_shape``.
    roi : array of shape (n_voxels,) of int, optional
        0 = unlabelled.
    roi_names : dict of int to str, optional
    overwrite : bool, default=False

    Returns
    -------
    Path

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    InputError
        Arrays of the wrong shape or length.
    """
    import h5py

    path = check_overwrite(path, check_bool("overwrite", overwrite))
    b = check_array("betas", betas, ndim=2, shape_hint="(n_trials, n_voxels)", dtype=np.float64)
    ids = check_stimulus_ids(stimulus_ids, len(b))
    if geometry is not None:
        if not isinstance(geometry, VoxelGeometry):
            raise InputTypeError(
                f"geometry must be a VoxelGeometry or None; got {type(geometry).__name__}."
            )
        if geometry.n_voxels != b.shape[1]:
            raise InputError(
                f"geometry has {geometry.n_voxels} voxels but betas has {b.shape[1]} columns; "
                "give the geometry of these voxels, in column order."
            )
    if roi is not None:
        roi = check_array("roi", roi, ndim=1, shape_hint="(n_voxels,)")
        if len(roi) != b.shape[1] or not np.all(roi == np.round(roi)):
            raise InputError(
                f"roi must hold one integer label per voxel ({b.shape[1]}); got {len(roi)} "
                f"values of dtype {roi.dtype}."
            )
    scaled = np.round(b * NSD_SCALE)
    limit = np.iinfo(np.int16).max
    clipped = int((np.abs(scaled) > limit).sum())
    if clipped:
        warnings.warn(
            f"{clipped} beta values beyond +-{limit / NSD_SCALE:.1f}% were clipped.",
            FMRIDataWarning,
            stacklevel=2,
        )
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with h5py.File(tmp, "w") as f:
            d = f.create_dataset(
                "betas",
                data=np.clip(scaled, -limit, limit).astype(np.int16),
                chunks=(min(len(b), 64), min(b.shape[1], 4096)),
            )
            d.attrs["scale"] = NSD_SCALE
            f.create_dataset("stimulus_ids", data=ids)
            if geometry is not None:
                f.create_dataset("voxel_ijk", data=geometry.ijk)
                f.create_dataset("affine", data=geometry.affine)
                f.create_dataset("volume_shape", data=np.asarray(geometry.volume_shape))
            if roi is not None:
                r = f.create_dataset("roi", data=np.asarray(roi, dtype=np.int32))
                r.attrs["roi_names"] = json.dumps({str(k): v for k, v in (roi_names or {}).items()})
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


class NSDSession:
    """Lazy reader of one NSD-style HDF5 session (see the module docstring for the format).

    Parameters
    ----------
    path : str or path
    rois : str or list of str, optional
        Keep only voxels of these ROIs.
    stimulus_ids : array of shape (n_trials,), optional
        0-based image of each trial, for files without a ``stimulus_ids``
        dataset (such as NSD's own ``betas_sessionYY.hdf5``; its ids come from
        :func:`~data_loaders.fmri.nsd.nsd_trial_images`); replaces the file's.

    Attributes
    ----------
    n_trials, n_voxels : int
    stimulus_ids : ndarray of shape (n_trials,), or None
        None for a betas-only file opened without ``stimulus_ids``.
    roi_labels : ndarray of shape (n_voxels,), str ("" = unlabelled)
    geometry : VoxelGeometry or None
        Where the voxels lie, when the file says (voxel indices, affine and
        volume shape); None otherwise.
    voxel_ijk : ndarray of shape (n_voxels, 3) or None
        In NIfTI ``(X, Y, Z)`` order, as stored (also without an affine).
    affine : ndarray of shape (4, 4) or None
    volume_shape : tuple of 3 int or None
    coords : ndarray of shape (n_voxels, 3) or None
        World coordinates in mm.

    Raises
    ------
    MissingFileError
        No file at ``path``.
    UnreadableFileError
        The file is empty, truncated, not HDF5, or lacks the ``betas``
        dataset.
    InputError
        Betas stored with trials last, a trial table of another length,
        an unknown ROI.
    """

    def __init__(self, path, rois: str | Sequence[str] | None = None, stimulus_ids=None) -> None:
        self._file = None
        if isinstance(path, (str, os.PathLike)) and not Path(path).expanduser().exists():
            raise MissingFileError(
                f"No NSD-style HDF5 file at {str(Path(path).expanduser())!r}; check the path."
            )
        self.path = check_file("path", path)
        try:
            self._open(rois, stimulus_ids)
        except (OSError, KeyError, RuntimeError) as err:  # h5py's errors on damaged files
            self.close()
            raise UnreadableFileError(
                f"{str(self.path)!r} cannot be read as HDF5 (truncated, corrupt or another kind "
                f"of file: {one_line(err)}). Copy the file again from its source."
            ) from None
        except Exception:
            self.close()
            raise

    def _open(self, rois, stimulus_ids) -> None:
        import h5py

        self._file = h5py.File(self.path, "r")  # read-only
        f = self._file
        if not isinstance(f.get("betas"), h5py.Dataset):
            raise UnreadableFileError(
                f"{str(self.path)!r} has no 'betas' dataset; it holds {sorted(f.keys())}. "
                "NSD-style files need 'betas'."
            )
        self._betas = f["betas"]
        shape = self._betas.shape
        if stimulus_ids is not None:
            ids = check_stimulus_ids(stimulus_ids, shape[0])
        elif isinstance(f.get("stimulus_ids"), h5py.Dataset):
            ids = np.asarray(f["stimulus_ids"])
        else:
            ids = None  # NSD's own files: the design file has the table
        if ids is not None and len(ids) != shape[0]:
            if len(ids) == shape[-1]:
                raise InputError(
                    f"{str(self.path)!r}: betas have shape {shape} with the trials on the last "
                    f"axis ({len(ids)} stimulus ids). Store betas as (n_trials, ...), e.g. "
                    "write betas.T."
                )
            raise InputError(
                f"{str(self.path)!r}: the trial table has {len(ids)} rows but betas have "
                f"{shape[0]} trials on axis 0."
            )
        self.stimulus_ids = None if ids is None else check_stimulus_ids(ids, shape[0])
        self.scale = float(
            self._betas.attrs.get("scale", NSD_SCALE if self._betas.dtype == np.int16 else 1.0)
        )
        self.affine = np.asarray(f["affine"], dtype=np.float64) if "affine" in f else None
        if len(shape) == 2:
            self._columns = np.arange(shape[1])
            self.voxel_ijk = (
                np.asarray(f["voxel_ijk"], dtype=np.int64) if "voxel_ijk" in f else None
            )
            roi = np.asarray(f["roi"]) if "roi" in f else None
            self.volume_shape = (
                tuple(int(v) for v in f["volume_shape"]) if "volume_shape" in f else None
            )
        elif len(shape) == 4:
            zyx = shape[1:]
            mask = np.asarray(f["mask"]) > 0 if "mask" in f else np.ones(zyx, dtype=bool)
            self._columns = np.flatnonzero(mask.ravel())
            kji = np.stack(np.unravel_index(self._columns, zyx), axis=1)
            self.voxel_ijk = kji[:, ::-1]  # (Z, Y, X) storage -> NIfTI (X, Y, Z)
            roi = np.asarray(f["roi"]).ravel()[self._columns] if "roi" in f else None
            self.volume_shape = tuple(int(v) for v in zyx[::-1])
        else:
            raise InputError(
                f"{str(self.path)!r}: betas must be (n_trials, n_voxels) or (n_trials, Z, Y, X); "
                f"got shape {shape}."
            )
        try:
            names = json.loads(f["roi"].attrs.get("roi_names", "{}")) if "roi" in f else {}
        except (TypeError, json.JSONDecodeError) as err:
            raise UnreadableFileError(
                f"{str(self.path)!r}: the 'roi_names' attribute of 'roi' is not JSON "
                f'({one_line(err)}); it must map labels to names, e.g. \'{{"1": "V1"}}\'.'
            ) from None
        if roi is None:
            self.roi_labels = np.full(len(self._columns), "", dtype=object).astype(str)
        else:
            self.roi_labels = np.array(
                [names.get(str(int(r)), str(int(r))) if r else "" for r in roi]
            )
        if rois is not None:
            wanted = [rois] if isinstance(rois, str) else list(rois)
            present = sorted(set(self.roi_labels.tolist()) - {""})
            unknown = [r for r in wanted if r not in present]
            if unknown:
                raise InputError(
                    f"ROI(s) {unknown} match no voxel in {self.path.name}; it has {present}."
                )
            keep = np.isin(self.roi_labels, wanted)
            self._columns = self._columns[keep]
            self.roi_labels = self.roi_labels[keep]
            if self.voxel_ijk is not None:
                self.voxel_ijk = self.voxel_ijk[keep]
        self.geometry = None
        if self.voxel_ijk is not None and self.affine is not None and self.volume_shape:
            try:
                self.geometry = VoxelGeometry(self.volume_shape, self.affine, self.voxel_ijk)
            except InputError as err:
                raise InputError(f"{str(self.path)!r}: {err}") from None

    # ---------------------------------------------------------------- basics
    @property
    def n_trials(self) -> int:
        """Number of trials in the session."""
        return int(self._betas.shape[0])

    @property
    def n_voxels(self) -> int:
        """Number of voxels read (after ROI selection)."""
        return len(self._columns)

    @property
    def coords(self) -> np.ndarray | None:
        """World coordinates of the voxels in mm, ``(n_voxels, 3)``; None without an affine."""
        if self.voxel_ijk is None or self.affine is None:
            return None
        return self.voxel_ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def close(self) -> None:
        """Close the file."""
        if getattr(self, "_file", None) is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> NSDSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"NSDSession({str(self.path)!r}, n_trials={self.n_trials}, n_voxels={self.n_voxels})"

    # ---------------------------------------------------------------- reading
    def _read_columns(self, trials: slice | list, columns: np.ndarray) -> np.ndarray:
        """Read ``betas[trials, columns]`` (flat voxel columns), bounded by the selection."""
        d = self._betas
        if d.ndim == 2:
            lo, hi = int(columns.min()), int(columns.max()) + 1
            if hi - lo > 2 * len(columns) and isinstance(trials, slice):
                # scattered voxels (e.g. one ROI): point selection keeps memory to the batch
                return np.asarray(d[trials, columns.tolist()], dtype=np.float32) / self.scale
            return np.asarray(d[trials, lo:hi][:, columns - lo], dtype=np.float32) / self.scale
        # volumetric: one hyperslab per (Z, Y) row of voxels, never whole volumes of trials
        ny, nx = d.shape[2], d.shape[3]
        rows = columns // nx  # flat (z, y) row of each column
        n_t = len(range(d.shape[0])[trials]) if isinstance(trials, slice) else len(trials)
        out = np.empty((n_t, len(columns)), dtype=np.float32)
        for row in np.unique(rows):
            sel = np.flatnonzero(rows == row)
            x = columns[sel] - row * nx
            x0, x1 = int(x.min()), int(x.max()) + 1
            out[:, sel] = d[trials, int(row // ny), int(row % ny), x0:x1][:, x - x0]
        return out / self.scale

    def read(self, trials=None, voxels=None) -> np.ndarray:
        """Betas in percent signal change, ``(n_trials_selected, n_voxels_selected)`` float32.

        ``trials`` and ``voxels`` are index arrays or slices (default: all).
        """
        cols = self._columns if voxels is None else self._columns[voxels]
        cols = np.atleast_1d(np.asarray(cols))
        if len(cols) == 0:
            raise InputError("voxels selects no voxel; give at least one voxel index.")
        if trials is None or isinstance(trials, slice):
            return self._read_columns(slice(None) if trials is None else trials, cols)
        idx = np.atleast_1d(np.asarray(trials, dtype=np.int64))
        if len(idx) == 0 or idx.min() < -self.n_trials or idx.max() >= self.n_trials:
            raise InputError(f"trials must be indices in [0, {self.n_trials}); got {trials!r}.")
        unique, inverse = np.unique(idx % self.n_trials, return_inverse=True)
        # h5py reads increasing indices only: read them sorted, then restore the order
        return self._read_columns(unique.tolist(), cols)[inverse]

    def iter_voxel_batches(
        self, voxel_batch_size: int = 10_000
    ) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(voxel slice, betas (n_trials, batch))``, reading one batch at a time."""
        voxel_batch_size = check_int("voxel_batch_size", voxel_batch_size, minimum=1)
        for start in range(0, self.n_voxels, voxel_batch_size):
            sel = slice(start, min(start + voxel_batch_size, self.n_voxels))
            yield sel, self._read_columns(slice(None), self._columns[sel])

    def iter_trial_batches(self, trial_batch_size: int = 256) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(trial slice, betas (batch, n_voxels))``, reading one batch at a time."""
        trial_batch_size = check_int("trial_batch_size", trial_batch_size, minimum=1)
        for start in range(0, self.n_trials, trial_batch_size):
            sel = slice(start, min(start + trial_batch_size, self.n_trials))
            yield sel, self._read_columns(sel, self._columns)

    def to_dataset(
        self,
        stimuli=None,
        name: str | None = None,
        voxel_batch_size: int = 10_000,
        stimulus_ids=None,
        session=None,
        drop_bad: bool = True,
    ):
        """Read the session (by voxel batches) into an :class:`~data_loaders.fmri.FMRIDataset`.

        Parameters
        ----------
        stimuli : ImageSet, array or path, optional
        name : str, optional
            Default: the file's stem.
        voxel_batch_size : int, default=10000
        stimulus_ids : array of shape (n_trials,), optional
            0-based image of each trial; needed for files without a
            ``stimulus_ids`` dataset (NSD's own), replaces the file's.
        session : int or str, optional
            The session label of every trial (e.g. 3 for
            ``betas_session03.hdf5``), so that datasets of several sessions
            joined with :meth:`FMRIDataset.concatenate` are z-scored and
            ceilinged per session. Default: none (the caller's concatenate
            numbers the sessions in order).
        drop_bad : bool, default=True
            As in :class:`FMRIDataset`: drop NaN/inf and constant voxels.

        Returns
        -------
        FMRIDataset

        Raises
        ------
        InputError
            No stimulus ids: neither in the file nor given.
        """
        from data_loaders.fmri.dataset import FMRIDataset

        ids = self.stimulus_ids if stimulus_ids is None else stimulus_ids
        if ids is None:
            raise InputError(
                f"{self.path.name} holds only betas (no 'stimulus_ids', as NSD's own files): give "
                "stimulus_ids= (from nsd_trial_images), or read the subject with NSDSubject."
            )
        ids = check_stimulus_ids(ids, self.n_trials)

        betas = np.empty((self.n_trials, self.n_voxels), dtype=np.float32)
        for sel, block in self.iter_voxel_batches(voxel_batch_size):
            betas[:, sel] = block
        return FMRIDataset(
            betas,
            ids,
            stimuli=stimuli,
            roi_labels=self.roi_labels,
            coords=self.coords,
            geometry=self.geometry,
            session_ids=None if session is None else np.full(self.n_trials, session),
            name=name or self.path.stem,
            drop_bad=drop_bad,
        )
