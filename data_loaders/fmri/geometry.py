"""Where a set of voxels lies: one small object instead of loose index arrays.

:class:`VoxelGeometry` holds the reference volume's shape, its affine (voxel
indices to world millimetres) and the indices of the voxels, in the order of
the columns of a ``(n_trials, n_voxels)`` response array. The readers, the
simulator and :class:`~data_loaders.fmri.dataset.FMRIDataset` pass it along
so that a per-voxel result can always go back into a brain volume
(:meth:`VoxelGeometry.to_nifti`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from data_loaders._validation import check_array
from data_loaders.errors import InputError, InputTypeError

__all__ = [
    "GeometryFields",
    "RegionGeometry",
    "VoxelGeometry",
    "mask_from_image",
    "save_nifti",
    "values_to_nifti",
]


def check_column_index(index: Any, n: int, what: str = "column") -> Any:
    """``index`` for the column axis of ``n`` columns: a slice, boolean mask or int positions.

    Raises
    ------
    InputError
        A boolean mask of another length.
    InputTypeError
        Positions that are not integers.
    """
    if isinstance(index, slice):
        return index
    idx = np.asarray(index)
    if idx.dtype == bool and idx.shape != (n,):
        raise InputError(
            f"index: a boolean mask needs one entry per {what} ({n}); got shape {idx.shape}."
        )
    if idx.dtype != bool and not np.issubdtype(idx.dtype, np.integer):
        raise InputTypeError(
            f"index must be a slice, a boolean mask or integer positions; got dtype {idx.dtype}."
        )
    return idx


def _frozen(arr: np.ndarray) -> np.ndarray:
    out = np.array(arr, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class VoxelGeometry:
    """The voxels of a response array and the volume they sit in.

    Parameters
    ----------
    volume_shape : tuple of 3 int
        Shape ``(X, Y, Z)`` of the reference volume.
    affine : array of shape (4, 4)
        Voxel indices to world coordinates (mm), as in NIfTI; finite, with a
        last row ``[0, 0, 0, 1]``.
    ijk : array of shape (n_voxels, 3), int
        Index of each voxel in the volume, one row per voxel, in the order of
        the voxel axis of the data. Every row lies inside the volume and no
        voxel appears twice.

    Attributes
    ----------
    volume_shape : tuple of 3 int
    affine : ndarray of shape (4, 4), float64, read-only
    ijk : ndarray of shape (n_voxels, 3), int64, read-only

    Raises
    ------
    InputError
        A shape that is not 3 positive ints, an affine that is not a finite
        4x4 matrix, indices that are not integers, lie outside the volume or
        repeat a voxel.

    Notes
    -----
    Two geometries are equal when their shapes, affines and indices are
    (array equality, not identity).

    Examples
    --------
    >>> import numpy as np
    >>> geo = VoxelGeometry((4, 5, 6), np.diag([2.0, 2.0, 2.0, 1.0]), [[0, 0, 0], [3, 4, 5]])
    >>> geo.n_voxels, geo.coords.tolist()
    (2, [[0.0, 0.0, 0.0], [6.0, 8.0, 10.0]])
    >>> img = geo.to_nifti([1.5, -2.0])
    >>> img.shape, float(img.get_fdata()[3, 4, 5])
    ((4, 5, 6), -2.0)
    >>> geo.subset([1]) == VoxelGeometry((4, 5, 6), np.diag([2.0, 2.0, 2.0, 1.0]), [[3, 4, 5]])
    True
    """

    volume_shape: tuple[int, int, int]
    affine: np.ndarray
    ijk: np.ndarray

    #: What a column is: a voxel of a volume (``"regions"`` and ``"surface"`` elsewhere).
    kind = "volume"

    def __post_init__(self) -> None:
        shape = self.volume_shape
        ok = isinstance(shape, (tuple, list, np.ndarray)) and len(shape) == 3
        if ok:
            try:
                ok = all(
                    not isinstance(s, (bool, np.bool_)) and int(s) == s and int(s) >= 1
                    for s in shape
                )
            except (TypeError, ValueError):
                ok = False
        if not ok:
            raise InputError(
                f"volume_shape must be 3 positive integers (X, Y, Z); got {shape!r}. Give the "
                "first three entries of the reference image's shape (img.shape[:3])."
            )
        shape = tuple(int(s) for s in shape)
        affine = check_array("affine", self.affine, ndim=2, shape_hint="(4, 4)", dtype=np.float64)
        if affine.shape != (4, 4):
            raise InputError(
                f"affine must be a 4x4 matrix (voxel indices to mm, as img.affine); got shape "
                f"{affine.shape}."
            )
        if not np.allclose(affine[3], [0.0, 0.0, 0.0, 1.0]):
            raise InputError(
                f"affine must have [0, 0, 0, 1] as its last row; got {affine[3].tolist()}. Give "
                "the image's 4x4 affine (img.affine)."
            )
        if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise InputError(
                "affine is singular (its 3x3 part has determinant 0), so voxels have no size; "
                "give the image's affine (img.affine)."
            )
        ijk = check_array("ijk", self.ijk, ndim=2, shape_hint="(n_voxels, 3)")
        if ijk.shape[1] != 3:
            raise InputError(
                f"ijk must have shape (n_voxels, 3), one (i, j, k) row per voxel; got shape "
                f"{ijk.shape}."
            )
        whole = np.issubdtype(ijk.dtype, np.integer) or (
            not np.issubdtype(ijk.dtype, np.bool_) and np.all(ijk == np.round(ijk))
        )
        if not whole:
            raise InputTypeError(
                f"ijk must hold integer voxel indices; got dtype {ijk.dtype} with non-integer "
                "values. Convert world coordinates to indices with the inverse affine first "
                "(nibabel.affines.apply_affine(np.linalg.inv(affine), xyz))."
            )
        ijk = ijk.astype(np.int64)
        outside = np.any((ijk < 0) | (ijk >= np.array(shape)), axis=1)
        if outside.any():
            first = ijk[outside][0].tolist()
            raise InputError(
                f"ijk: {int(outside.sum())} voxel(s) lie outside the volume of shape {shape} "
                f"(first: {first}); indices must satisfy 0 <= ijk < volume_shape. Check that "
                "ijk and volume_shape come from the same image."
            )
        flat = np.ravel_multi_index(tuple(ijk.T), shape)
        unique, counts = np.unique(flat, return_counts=True)
        if len(unique) != len(flat):
            dup = np.unravel_index(unique[counts > 1][0], shape)
            raise InputError(
                f"ijk: {int((counts > 1).sum())} voxel(s) appear more than once (first: "
                f"{[int(v) for v in dup]}); each column of the data must be a different voxel."
            )
        object.__setattr__(self, "volume_shape", shape)
        object.__setattr__(self, "affine", _frozen(affine))
        object.__setattr__(self, "ijk", _frozen(ijk))

    # ----------------------------------------------------------------- basics
    @property
    def n_voxels(self) -> int:
        """Number of voxels (rows of :attr:`ijk`)."""
        return int(self.ijk.shape[0])

    @property
    def coords(self) -> np.ndarray:
        """Voxel centres in world coordinates (mm), shape ``(n_voxels, 3)``: ``affine @ [i, j, k, 1]``."""
        return self.ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def __len__(self) -> int:
        return self.n_voxels

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VoxelGeometry):
            return NotImplemented
        return (
            self.volume_shape == other.volume_shape
            and np.array_equal(self.affine, other.affine)
            and np.array_equal(self.ijk, other.ijk)
        )

    def __hash__(self) -> int:
        return hash((self.volume_shape, self.affine.tobytes(), self.ijk.tobytes()))

    def __repr__(self) -> str:
        zooms = np.round(np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)), 3).tolist()
        return (
            f"VoxelGeometry(volume_shape={self.volume_shape}, n_voxels={self.n_voxels}, "
            f"voxel_size_mm={zooms})"
        )

    # ------------------------------------------------------------- derived
    def subset(self, index: Any) -> VoxelGeometry:
        """The geometry of some of the voxels, in the order ``index`` gives.

        Parameters
        ----------
        index : slice, boolean mask of shape (n_voxels,) or int array of shape (k,)
            Which voxels (as for the voxel axis of the data).

        Returns
        -------
        VoxelGeometry
            Same volume and affine, ``ijk[index]``.
        """
        index = check_column_index(index, self.n_voxels, "voxel")
        try:
            ijk = self.ijk[index]
        except IndexError as err:
            raise InputError(f"index does not fit {self.n_voxels} voxels: {err}.") from None
        return VoxelGeometry(self.volume_shape, self.affine, np.atleast_2d(ijk).reshape(-1, 3))

    def to_mask(self):
        """The voxels as a binary ``uint8`` NIfTI image (1 = one of the voxels).

        Returns
        -------
        nibabel.Nifti1Image
            Shape :attr:`volume_shape`, with :attr:`affine`.
        """
        import nibabel as nib

        mask = np.zeros(self.volume_shape, dtype=np.uint8)
        mask[tuple(self.ijk.T)] = 1
        return nib.Nifti1Image(mask, np.array(self.affine))

    def to_nifti(self, values: Any, fill: float = np.nan):
        """Place per-voxel values into the volume and return a NIfTI image.

        Parameters
        ----------
        values : array of shape (n_voxels,) or (k, n_voxels)
            One map (a 3D image results) or ``k`` maps (a 4D image).
        fill : float, default=NaN
            Value of the voxels that are not in :attr:`ijk`.

        Returns
        -------
        nibabel.Nifti1Image
            float32, shape ``volume_shape`` or ``(*volume_shape, k)``, with
            :attr:`affine`.
        """
        import nibabel as nib

        vals = check_array(
            "values", values, ndim=(1, 2), shape_hint="(n_voxels,) or (k, n_voxels)", finite=False
        ).astype(np.float32)
        if vals.shape[-1] != self.n_voxels:
            raise InputError(
                f"values have {vals.shape[-1]} entries on their last axis but there are "
                f"{self.n_voxels} voxels; give one value per voxel (shape ({self.n_voxels},) or "
                f"(k, {self.n_voxels}))."
            )
        if isinstance(fill, (bool, np.bool_)) or not isinstance(fill, (int, float, np.number)):
            raise InputTypeError(f"fill must be a number (or NaN); got {fill!r}.")
        index = tuple(self.ijk.T)
        if vals.ndim == 1:
            vol = np.full(self.volume_shape, fill, dtype=np.float32)
            vol[index] = vals
        else:
            vol = np.full((*self.volume_shape, len(vals)), fill, dtype=np.float32)
            vol[index] = vals.T
        return nib.Nifti1Image(vol, np.array(self.affine))

    def save_map(
        self, values: Any, stem: Any, *, fill: float = np.nan, overwrite: bool = False
    ) -> list:
        """Write per-voxel values as ``<stem>.nii.gz`` (see :func:`save_nifti`).

        Returns
        -------
        list of Path
            The one file written.
        """
        return [save_nifti(self.to_nifti(values, fill=fill), f"{stem}.nii.gz", overwrite)]

    # ------------------------------------------------------------- builders
    @classmethod
    def from_mask(cls, mask_img: Any) -> VoxelGeometry:
        """The non-zero voxels of a mask image, in C order (nilearn's masker order).

        Parameters
        ----------
        mask_img : str, path or nibabel image
            A 3D image (a 4D image with one volume is accepted); non-zero,
            finite values are in.

        Returns
        -------
        VoxelGeometry

        Raises
        ------
        MissingFileError, UnreadableFileError
            The file does not exist or cannot be read as NIfTI.
        InputError
            The image is not 3D, or it has no non-zero voxel.
        """
        from data_loaders.fmri.nifti import _load_img

        img = _load_img(mask_img, "mask_img")
        mask = mask_from_image(img)
        if not mask.any():
            raise InputError(
                "mask_img has no non-zero voxel; check that it is a brain or ROI mask."
            )
        return cls(tuple(int(s) for s in mask.shape), np.asarray(img.affine), np.argwhere(mask))


def mask_from_image(img: Any, name: str = "mask_img") -> np.ndarray:
    """The boolean 3D mask of a loaded image: its finite, non-zero voxels.

    A 4D image with a single volume counts as 3D; any other shape is refused
    with :class:`~data_loaders.errors.InputError` naming ``name``.
    """
    data = np.asarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"{name} must be 3D; got shape {data.shape}.")
    return np.isfinite(data) & (data != 0)


class GeometryFields:
    """Read-only views of an object's ``geometry`` (a :class:`VoxelGeometry`, another geometry, or None).

    Gives :class:`~data_loaders.fmri.dataset.FMRIDataset`, the NIfTI reader's
    result and the simulated subject the same ``voxel_ijk``, ``affine`` and
    ``volume_shape`` attributes, each None where the object has no geometry.
    """

    geometry: VoxelGeometry | None

    @property
    def voxel_ijk(self) -> np.ndarray | None:
        """Voxel indices ``(n_voxels, 3)`` int64 in the reference volume (``geometry.ijk``).

        None without a geometry, and for regions and surface vertices.
        """
        return getattr(self.geometry, "ijk", None)

    @property
    def affine(self) -> np.ndarray | None:
        """The reference volume's ``(4, 4)`` affine (``geometry.affine``; None on surfaces)."""
        return getattr(self.geometry, "affine", None)

    @property
    def volume_shape(self) -> tuple[int, int, int] | None:
        """The reference volume's shape (``geometry.volume_shape``; None on surfaces)."""
        return getattr(self.geometry, "volume_shape", None)


def values_to_nifti(values: Any, geometry: VoxelGeometry, fill: float = np.nan):
    """Place per-voxel values into ``geometry``'s volume and return a NIfTI image.

    Parameters
    ----------
    values : array of shape (n_voxels,) or (k, n_voxels)
        One map, or ``k`` maps (a 4D image results).
    geometry : VoxelGeometry
        Where the voxels lie.
    fill : float, default=NaN
        Value of voxels outside ``geometry``.

    Returns
    -------
    nibabel.Nifti1Image
    """
    if not isinstance(geometry, VoxelGeometry):
        hint = ""
        if isinstance(geometry, (np.ndarray, list, tuple, str, os.PathLike)):
            hint = (
                " Build one with VoxelGeometry(volume_shape, affine, ijk) (it replaces the "
                "voxel_ijk, affine, volume_shape arguments)."
            )
        raise InputTypeError(
            f"geometry must be a VoxelGeometry; got {type(geometry).__name__}.{hint}"
        )
    return geometry.to_nifti(values, fill=fill)


def save_nifti(img: Any, path: Any, overwrite: bool = False):
    """Write a NIfTI image as float32, gzipped with a fixed timestamp, atomically.

    The same values give the same bytes, so saved maps can be compared by
    checksum.

    Parameters
    ----------
    img : nibabel image
    path : str or path
        Ends in ``.nii.gz``.
    overwrite : bool, default=False
        Without it an existing file is refused
        (:class:`~data_loaders.errors.OutputExistsError`).

    Returns
    -------
    Path
    """
    import gzip

    import nibabel as nib

    from data_loaders._io import atomic_open, check_overwrite

    path = check_overwrite(path, overwrite)
    out = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine)
    with atomic_open(path, "wb") as fh:
        fh.write(gzip.compress(out.to_bytes(), mtime=0))
    return path


@dataclass(frozen=True, eq=False)
class RegionGeometry:
    """Columns that are regions of a label image (region-averaged responses).

    Parameters
    ----------
    labels : array of shape (X, Y, Z), int
        The label image's data on the betas' grid (0 = no region).
    affine : array of shape (4, 4)
    region_ids : array of shape (n_regions,), int
        The label value of each column, in column order; each must occur in
        ``labels``.

    Attributes
    ----------
    volume_shape : tuple of 3 int
    n_voxels : int
        The number of columns (regions); named as for voxels so that code
        written for columns works on both.
    coords : ndarray of shape (n_regions, 3)
        Each region's centroid in mm.

    Examples
    --------
    >>> labels = np.zeros((3, 3, 3), dtype=int); labels[0] = 1; labels[2] = 2
    >>> geo = RegionGeometry(labels, np.eye(4), [2, 1])
    >>> geo.n_voxels, geo.coords[:, 0].tolist()
    (2, [2.0, 0.0])
    >>> float(geo.to_nifti([5.0, 7.0]).get_fdata()[0, 1, 1])
    7.0
    """

    labels: np.ndarray
    affine: np.ndarray
    region_ids: np.ndarray

    kind = "regions"

    def __post_init__(self) -> None:
        labels = check_array("labels", self.labels, ndim=3, shape_hint="(X, Y, Z)")
        if not np.all(labels == np.round(labels)):
            raise InputError("labels must hold integer region labels (0 = no region).")
        labels = labels.astype(np.int64)
        VoxelGeometry(labels.shape, self.affine, np.zeros((1, 3), dtype=np.int64))  # checks affine
        ids = np.atleast_1d(check_array("region_ids", self.region_ids, ndim=1)).astype(np.int64)
        missing = np.setdiff1d(ids, np.unique(labels))
        if missing.size or (ids == 0).any():
            raise InputError(
                f"region_ids {sorted(set(missing.tolist()) | ({0} & set(ids.tolist())))} are not "
                "regions of labels (0 is the background); give label values present in it."
            )
        if len(np.unique(ids)) != len(ids):
            raise InputError("region_ids repeats a region; each column must be another region.")
        object.__setattr__(self, "labels", _frozen(labels))
        object.__setattr__(self, "affine", _frozen(np.asarray(self.affine, dtype=np.float64)))
        object.__setattr__(self, "region_ids", _frozen(ids))

    @property
    def volume_shape(self) -> tuple[int, int, int]:
        """Shape of the label image."""
        return tuple(int(s) for s in self.labels.shape)

    @property
    def n_voxels(self) -> int:
        """Number of columns (regions)."""
        return len(self.region_ids)

    def __len__(self) -> int:
        return self.n_voxels

    @property
    def coords(self) -> np.ndarray:
        """Centroid of each region in world coordinates (mm), ``(n_regions, 3)``."""
        out = np.empty((self.n_voxels, 3))
        for c, r in enumerate(self.region_ids):
            ijk = np.argwhere(self.labels == r).mean(axis=0)
            out[c] = self.affine[:3, :3] @ ijk + self.affine[:3, 3]
        return out

    def __repr__(self) -> str:
        return f"RegionGeometry(volume_shape={self.volume_shape}, n_regions={self.n_voxels})"

    def subset(self, index: Any) -> RegionGeometry:
        """The geometry of some of the regions (a slice, boolean mask or positions)."""
        index = check_column_index(index, self.n_voxels, "region")
        try:
            ids = np.atleast_1d(self.region_ids[index])
        except IndexError as err:
            raise InputError(f"index does not fit {self.n_voxels} regions: {err}.") from None
        return RegionGeometry(self.labels, self.affine, ids)

    def to_nifti(self, values: Any, fill: float = np.nan):
        """Paint each region's value over its voxels; other voxels get ``fill``.

        Parameters
        ----------
        values : array of shape (n_regions,) or (k, n_regions)
        fill : float, default=NaN

        Returns
        -------
        nibabel.Nifti1Image
            float32, shape ``volume_shape`` or ``(*volume_shape, k)``.
        """
        import nibabel as nib

        vals = check_array(
            "values", values, ndim=(1, 2), shape_hint="(n_regions,) or (k, n_regions)", finite=False
        ).astype(np.float32)
        if vals.shape[-1] != self.n_voxels:
            raise InputError(
                f"values have {vals.shape[-1]} entries on their last axis but there are "
                f"{self.n_voxels} regions; give one value per region."
            )
        order = np.argsort(self.region_ids)
        ids = self.region_ids[order]
        at = np.clip(np.searchsorted(ids, self.labels), 0, len(ids) - 1)
        inside = ids[at] == self.labels
        column = np.where(inside, order[at], -1)
        maps = np.atleast_2d(vals)
        vol = np.full((*self.volume_shape, len(maps)), fill, dtype=np.float32)
        vol[inside] = maps[:, column[inside]].T
        return nib.Nifti1Image(vol[..., 0] if vals.ndim == 1 else vol, np.array(self.affine))

    def save_map(
        self, values: Any, stem: Any, *, fill: float = np.nan, overwrite: bool = False
    ) -> list:
        """Write per-region values painted on their voxels as ``<stem>.nii.gz``."""
        return [save_nifti(self.to_nifti(values, fill=fill), f"{stem}.nii.gz", overwrite)]
