"""Single-trial response maps from NIfTI images, masked voxel by voxel.

:func:`load_nifti_betas` reads one response estimate per trial (a 4D beta
image, or one 3D image per trial), masks it with nilearn, labels every voxel
with its ROI from an integer atlas, drops voxels that carry no signal (NaN or
constant across trials, with a warning that counts them), and returns a
:class:`NiftiBetas`: a ``(n_trials, n_voxels)`` float32 array with each
voxel's position, ROI and a way back to NIfTI (:meth:`NiftiBetas.to_nifti`).

The images must already share the mask's grid (shape and affine). Nothing is
resampled silently; the error says how to resample with nilearn.

Responses are voxelwise by default, as voxelwise encoders need; with
``average_rois=True`` each column is instead one region of the label image,
averaged over its voxels by nilearn's ``NiftiLabelsMasker`` (per-ROI encoders
and tables, with maps painted back over the regions).
"""

from __future__ import annotations

import os
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from data_loaders._validation import check_bool, check_file
from data_loaders.errors import InputError, InputTypeError, UnreadableFileError, one_line
from data_loaders.fmri._common import (
    FMRIDataWarning,
    check_session_ids,
    check_stimulus_ids,
    drop_bad_voxels,
    read_table,
)
from data_loaders.fmri.geometry import GeometryFields, VoxelGeometry, mask_from_image

__all__ = ["NiftiBetas", "load_nifti_betas"]

_AFFINE_ATOL = 1e-3  # mm; affines that differ by less are the same grid


def _nib():
    try:
        import nibabel as nib
    except ImportError as err:  # pragma: no cover - nibabel comes with nilearn
        raise ImportError(
            "Reading NIfTI needs nibabel and nilearn: pip install 'nilearn>=0.10' nibabel"
        ) from err
    return nib


def _load_img(img, what: str):
    """A nibabel image from a path or an image, its data read into memory.

    A path is read whole here (read-only; the file is never written), so a
    missing, empty, truncated or foreign file fails at once with one line
    naming ``what`` and the file, rather than deep inside nilearn later.
    """
    nib = _nib()
    if isinstance(img, (str, os.PathLike)):
        path = check_file(what, img)
        read_errors = (
            nib.filebasedimages.ImageFileError,
            nib.spatialimages.HeaderDataError,
            OSError,
            EOFError,
            ValueError,
            zlib.error,
        )
        try:
            loaded = nib.load(path)
            data = np.asanyarray(loaded.dataobj)
        except read_errors as err:
            raise UnreadableFileError(
                f"{what}: cannot read {str(path)!r} as a NIfTI image ({one_line(err)}); the "
                "file is truncated, corrupt or of another format. Copy it again from its source, "
                "or give a .nii / .nii.gz file."
            ) from None
        return type(loaded)(data, loaded.affine, loaded.header)
    if isinstance(img, nib.spatialimages.SpatialImage):
        return img
    raise InputTypeError(
        f"{what} must be a NIfTI file path or a nibabel image; got {type(img).__name__}."
    )


def _check_same_grid(img, ref, img_name: str, ref_name: str, kind: str) -> None:
    """Raise when ``img`` is not on ``ref``'s voxel grid, with the resampling fix.

    ``kind`` is ``"mask"`` when ``img`` is a mask or label image (resampled with
    nearest-neighbour interpolation) and ``"betas"`` when both hold responses.
    """
    shape, ref_shape = tuple(img.shape[:3]), tuple(ref.shape[:3])
    if shape == ref_shape and np.allclose(img.affine, ref.affine, atol=_AFFINE_ATOL):
        return
    if kind == "mask":
        fix = (
            f"resample the {img_name} onto the betas with nilearn.image.resample_to_img("
            f"{img_name}, {ref_name}, interpolation='nearest'), or the betas onto it with "
            f"nilearn.image.resample_to_img({ref_name}, {img_name}, interpolation='continuous')"
        )
    else:
        fix = (
            f"resample it with nilearn.image.resample_to_img({img_name}, {ref_name}, "
            "interpolation='continuous')"
        )
    raise InputError(
        f"{img_name} and {ref_name} are on different voxel grids: {img_name} has shape "
        f"{shape} and affine\n{np.array2string(np.asarray(img.affine), precision=3)}\n"
        f"while {ref_name} has shape {ref_shape} and affine\n"
        f"{np.array2string(np.asarray(ref.affine), precision=3)}\n"
        f"Nothing is resampled silently; {fix}."
    )


def _load_trial_images(images):
    """One 4D nibabel image from a 4D image/path or a list of 3D images/paths."""
    nib = _nib()
    if isinstance(images, (str, os.PathLike, nib.spatialimages.SpatialImage)):
        img = _load_img(images, "images")
        if img.ndim == 4:
            return img
        if img.ndim == 3:
            raise InputError(
                f"images must be a 4D image with one volume per trial; got a 3D image of shape "
                f"{img.shape}. Pass a list of 3D images (one per trial) or a 4D image."
            )
        raise InputError(f"images must be 4D (x, y, z, trial); got shape {img.shape}.")
    if isinstance(images, Sequence) and not isinstance(images, (str, bytes)):
        if len(images) == 0:
            raise InputError("images is an empty list; give one 3D image per trial.")
        imgs = [_load_img(im, f"images[{i}]") for i, im in enumerate(images)]
        first = imgs[0]
        for i, im in enumerate(imgs):
            if im.ndim != 3:
                raise InputError(
                    f"images[{i}] has shape {im.shape}; a list of images must hold one 3D "
                    "image per trial. Pass a 4D image on its own, or split it with "
                    "nilearn.image.iter_img."
                )
            if i:
                _check_same_grid(im, first, f"images[{i}]", "images[0]", "betas")
        data = np.stack([np.asarray(im.dataobj, dtype=np.float32) for im in imgs], axis=-1)
        return nib.Nifti1Image(data, first.affine)
    raise InputTypeError(
        "images must be a 4D NIfTI path/image or a list of 3D NIfTI paths/images; got "
        f"{type(images).__name__}."
    )


def _read_trial_table(stimulus_ids):
    """(ids array, DataFrame or None) from an array, a DataFrame or a TSV/CSV path."""
    source = None
    if isinstance(stimulus_ids, (str, os.PathLike)):
        source = stimulus_ids
        stimulus_ids = read_table("stimulus_ids", stimulus_ids)
    if hasattr(stimulus_ids, "columns"):  # a pandas DataFrame
        if "stimulus_id" not in stimulus_ids.columns:
            # a file without the column is not a trial table (another kind of file)
            error = InputError if source is None else UnreadableFileError
            where = "" if source is None else f" {str(source)!r}"
            raise error(
                f"stimulus_ids: the trial table{where} needs a 'stimulus_id' column; it has "
                f"columns {list(stimulus_ids.columns)}. Rename the column that holds the "
                "stimulus index, or pass the ids as an array."
            )
        table = stimulus_ids.reset_index(drop=True)
        return table["stimulus_id"].to_numpy(), table
    return np.asarray(stimulus_ids), None


def _session_column(session_ids, table, n_trials: int):
    """Each trial's session: given, named as a table column, or the table's ``session`` column."""
    if isinstance(session_ids, str):
        if table is None or session_ids not in table.columns:
            have = [] if table is None else list(table.columns)
            raise InputError(
                f"session_ids={session_ids!r} names a trial-table column, but the table has "
                f"columns {have}. Name one of them, or pass one session label per trial."
            )
        return check_session_ids(table[session_ids].to_numpy(), n_trials, f"column {session_ids!r}")
    if session_ids is None and table is not None and "session" in table.columns:
        return check_session_ids(table["session"].to_numpy(), n_trials, "the 'session' column")
    return check_session_ids(session_ids, n_trials)


def _label_name_map(label_names) -> dict[int, str]:
    if label_names is None:
        return {}
    if isinstance(label_names, Mapping):
        try:
            return {int(k): str(v) for k, v in label_names.items()}
        except (TypeError, ValueError):
            raise InputTypeError(
                "label_names must map integer labels to names ({1: 'V1', ...}); got keys "
                f"{list(label_names)[:5]}."
            ) from None
    if isinstance(label_names, Sequence) and not isinstance(label_names, str):
        return {i: str(v) for i, v in enumerate(label_names)}
    raise InputTypeError(
        "label_names must map each integer label to its name (a dict {1: 'V1', ...}, or a list "
        f"whose index is the label); got {type(label_names).__name__}."
    )


@dataclass
class NiftiBetas(GeometryFields):
    """Masked single-trial responses with each voxel's position and ROI.

    Attributes
    ----------
    betas : ndarray of shape (n_trials, n_voxels), float32
        One response estimate per trial and voxel (units of the input images;
        z-scored per voxel when ``standardize=True``).
    stimulus_ids : ndarray of shape (n_trials,), int64
        Which stimulus each trial showed.
    geometry : VoxelGeometry or RegionGeometry
        Where each column of ``betas`` lies: the input grid's shape and
        affine, and the voxel indices (``ijk``); with ``average_rois=True``
        the regions of the label image.
    roi_labels : ndarray of shape (n_voxels,), str
        Each voxel's ROI name; ``""`` for voxels in no labelled region.
    mask_img : nibabel.Nifti1Image
        The voxels kept (after masking, ROI selection and dropping bad voxels),
        as a binary uint8 image on the input grid.
    trials : pandas.DataFrame or None
        The trial table, when one was given as a DataFrame or TSV file.
    session_ids : ndarray of shape (n_trials,) or None
        Session of each trial: the ``session_ids`` given, or the trial
        table's ``session`` column; None when neither says (one session).
    coords, ijk, affine, volume_shape
        Read-only views of ``geometry``: voxel centres in mm
        ``(n_voxels, 3)``, voxel indices ``(n_voxels, 3)``, the ``(4, 4)``
        affine and the volume's shape.
    """

    betas: np.ndarray
    stimulus_ids: np.ndarray
    geometry: VoxelGeometry
    roi_labels: np.ndarray
    mask_img: Any
    trials: Any = None
    session_ids: Any = None
    _masker: Any = field(default=None, repr=False)

    @property
    def coords(self) -> np.ndarray:
        """Voxel centres in world coordinates (mm), ``(n_voxels, 3)``: ``affine @ [i, j, k, 1]``."""
        return self.geometry.coords

    @property
    def ijk(self) -> np.ndarray | None:
        """Voxel indices in the volume, ``(n_voxels, 3)`` int64 (``geometry.ijk``; None for regions)."""
        return getattr(self.geometry, "ijk", None)

    @property
    def n_trials(self) -> int:
        """Number of trials (rows of ``betas``)."""
        return int(self.betas.shape[0])

    @property
    def n_voxels(self) -> int:
        """Number of voxels (columns of ``betas``)."""
        return int(self.betas.shape[1])

    def to_nifti(self, values, fill: float = np.nan):
        """Place a per-voxel result back into the original volume.

        Goes through the fitted ``NiftiMasker``'s ``inverse_transform`` on
        :attr:`mask_img`, so a value lands exactly on the voxel it came from.

        Parameters
        ----------
        values : array of shape (n_voxels,) or (k, n_voxels)
            One map (a 3D image results) or ``k`` maps (a 4D image).
        fill : float, default=NaN
            Value of every voxel outside :attr:`mask_img`, which includes the
            voxels dropped as NaN/constant and those outside the chosen ROIs.
            NaN, as in :meth:`FMRIDataset.to_nifti` and
            :meth:`VoxelGeometry.to_nifti` (the package's one convention), keeps
            "no data" apart from a real 0; nilearn's plots leave NaN voxels
            undrawn. Pass ``fill=0.0`` for nilearn's masker convention.

        Returns
        -------
        nibabel.Nifti1Image
            Shape ``volume_shape`` or ``(*volume_shape, k)``, with
            :attr:`affine`.
        """
        vals = np.asarray(values, dtype=np.float32)
        if vals.ndim not in (1, 2) or vals.shape[-1] != self.n_voxels:
            raise InputError(
                f"values must have shape ({self.n_voxels},) or (k, {self.n_voxels}), one value "
                f"per kept voxel; got shape {vals.shape}."
            )
        img = self._masker.inverse_transform(vals)
        if fill == 0.0:  # the masker already fills with 0
            return img
        nib = _nib()
        data = np.asarray(img.get_fdata(), dtype=np.float32)
        outside = np.asarray(self.mask_img.dataobj) == 0
        data[outside] = fill
        return nib.Nifti1Image(data, img.affine)

    def to_dataset(self, stimuli=None, name: str | None = None, session_ids=None):
        """An :class:`~data_loaders.fmri.dataset.FMRIDataset` of these responses.

        Parameters
        ----------
        stimuli : ImageSet, array or path, optional
            The stimulus set that ``stimulus_ids`` index (see
            :func:`data_loaders.stimuli.open_images`).
        name : str, optional
        session_ids : array of shape (n_trials,), optional
            Session of each trial; by default :attr:`session_ids` (the trial
            table's ``session`` column), so the z-scoring and the noise
            ceiling work within sessions exactly as ``neuro fit-encoder``
            does on the same files.

        Returns
        -------
        FMRIDataset
            With this object's :attr:`geometry`, ROI labels and sessions.
        """
        from data_loaders.fmri.dataset import FMRIDataset

        return FMRIDataset(
            self.betas,
            self.stimulus_ids,
            stimuli=stimuli,
            roi_labels=list(self.roi_labels),
            geometry=self.geometry,
            session_ids=self.session_ids if session_ids is None else session_ids,
            name=name,
            drop_bad=False,
        )


def load_nifti_betas(
    images,
    stimulus_ids,
    *,
    mask_img=None,
    labels_img=None,
    label_names=None,
    rois=None,
    standardize: bool = False,
    session_ids=None,
    average_rois: bool = False,
) -> NiftiBetas:
    """Read single-trial response maps from NIfTI and mask them voxel by voxel.

    Parameters
    ----------
    images : str, path, nibabel image, or list of them
        A 4D image of shape ``(x, y, z, n_trials)`` (one volume per trial, e.g.
        the output of :func:`data_loaders.fmri.bids.estimate_single_trial_betas`),
        or a list of ``n_trials`` 3D images on one grid. Files are only read.
    stimulus_ids : array-like of int, pandas.DataFrame, str or path
        The trial table: which stimulus each trial showed, in trial order. An
        array of ``n_trials`` ints, or a DataFrame / TSV file (tab-separated,
        with a header) holding a ``stimulus_id`` column; other columns (run,
        onset, ...) are kept in :attr:`NiftiBetas.trials`; a ``session``
        column gives each trial's session.
    mask_img : str, path or nibabel image, optional
        Brain mask on the images' grid (non-zero = in). When None, the union of
        the labels in ``labels_img`` is used; when both are None, every voxel
        that is non-zero in some trial (a GLM writes 0 outside its mask).
    labels_img : str, path or nibabel image, optional
        Integer label image (atlas) on the images' grid; 0 = unlabelled. Each
        kept voxel gets the name of its label.
    label_names : dict {int: str} or list of str, optional
        Names of the labels (for a list, the index is the label). A label with
        no name is called by its number, e.g. ``"3"``.
    rois : str or list of str, optional
        Keep only voxels in these ROIs (names from ``label_names``). Needs
        ``labels_img``.
    standardize : bool, default=False
        Z-score each voxel across trials (mean 0, sample standard deviation 1).
        To z-score within sessions, as NSD does, leave it False: the dataset
        (:meth:`FMRIDataset.zscore`) and ``compare_encoders`` do it per session.
    session_ids : array of shape (n_trials,) or str, optional
        Session of each trial, or the name of the trial-table column that
        holds it. By default the table's ``session`` column when it has one.
    average_rois : bool, default=False
        One column per region of ``labels_img`` (inside the mask and the
        chosen ``rois``): the mean over its voxels, through nilearn's
        ``NiftiLabelsMasker``. ``geometry`` is then a
        :class:`~data_loaders.fmri.geometry.RegionGeometry` (``coords`` are
        region centroids) and :meth:`NiftiBetas.to_nifti` paints each
        region's value over its voxels. Voxels with NaN/inf values are left
        out of their region's mean (with a warning that counts them), and
        regions constant over trials are dropped. Needs ``labels_img``.

    Returns
    -------
    NiftiBetas
        ``betas`` (n_trials, n_voxels) float32, ``stimulus_ids``,
        ``geometry`` (with ``coords`` in mm and ``ijk``), ``roi_labels``,
        ``mask_img`` and ``to_nifti``.

    Raises
    ------
    MissingFileError
        An image or trial-table file does not exist.
    UnreadableFileError
        A file is empty, truncated or of another format (an image that is
        not NIfTI, a trial table that is not a text table with a
        ``stimulus_id`` column).
    InputError
        The images, mask and labels are on different grids (shapes or
        affines); a 3D image where a 4D one is needed; list entries that
        differ; a trial table whose length differs from the number of trials;
        an ROI that matches no voxel; every voxel bad.

    Warns
    -----
    FMRIDataWarning
        Voxels with NaN/inf values or constant across trials were dropped; the
        message counts them. :meth:`NiftiBetas.to_nifti` maps them back as
        ``fill``.

    Examples
    --------
    >>> import numpy as np, nibabel as nib
    >>> data = np.random.default_rng(0).normal(size=(4, 5, 6, 7)).astype("float32")
    >>> img = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    >>> out = load_nifti_betas(img, np.arange(7))
    >>> out.betas.shape, out.coords.shape
    ((7, 120), (120, 3))
    >>> out.to_nifti(out.betas.mean(0)).shape
    (4, 5, 6)
    """
    from nilearn.masking import apply_mask

    nib = _nib()
    standardize = check_bool("standardize", standardize)
    average_rois = check_bool("average_rois", average_rois)
    if average_rois and labels_img is None:
        raise InputError(
            "average_rois=True averages the voxels of each region of labels_img; pass the "
            "label image (atlas) as labels_img."
        )
    img = _load_trial_images(images)
    affine = np.asarray(img.affine, dtype=np.float64)
    shape3 = tuple(int(s) for s in img.shape[:3])
    n_trials = int(img.shape[3])

    raw_ids, table = _read_trial_table(stimulus_ids)
    ids = check_stimulus_ids(raw_ids, n_trials)
    sessions = _session_column(session_ids, table, n_trials)

    # --- the mask and the labels, on the images' grid ---
    labels = None
    if labels_img is not None:
        lab_img = _load_img(labels_img, "labels_img")
        _check_same_grid(lab_img, img, "labels_img", "images", "mask")
        lab = np.asarray(lab_img.dataobj)
        if lab.ndim != 3:
            raise InputError(f"labels_img must be 3D; got shape {lab.shape}.")
        lab = np.where(np.isfinite(lab), lab, 0)
        if not np.all(lab == np.round(lab)):
            raise InputError(
                "labels_img must hold integer labels (an atlas); it has non-integer values. "
                "If it was resampled, resample it with interpolation='nearest'."
            )
        labels = lab.astype(np.int64)
    if rois is not None and labels is None:
        raise InputError("rois was given but labels_img is None; pass the label image (atlas).")

    if mask_img is not None:
        m_img = _load_img(mask_img, "mask_img")
        _check_same_grid(m_img, img, "mask_img", "images", "mask")
        mask = mask_from_image(m_img)
    elif labels is not None:
        mask = labels > 0
    else:
        data = np.asarray(img.dataobj)
        mask = np.any(data != 0, axis=3)  # NaN != 0, so NaN voxels stay in (and are dropped)
    if not mask.any():
        raise InputError("The mask is empty (no non-zero voxel); check mask_img / labels_img.")

    # --- per-voxel ROI names at the masked voxels ---
    names = _label_name_map(label_names)
    ijk = np.argwhere(mask)  # C order, the order nilearn's maskers use
    if labels is not None:
        vox_lab = labels[mask]
        roi = np.array(
            ["" if v == 0 else names.get(int(v), str(int(v))) for v in vox_lab], dtype=str
        )
    else:
        roi = np.full(len(ijk), "", dtype=str)
    if rois is not None:
        wanted = [rois] if isinstance(rois, str) else list(rois)
        available = sorted(str(r) for r in set(roi) - {""})
        missing = [r for r in wanted if r not in available]
        if missing:
            raise InputError(
                f"rois: {missing} match no voxel in the mask. ROIs with voxels: {available}. "
                "Check the names against label_names (and that the ROI lies inside mask_img)."
            )
        keep_roi = np.isin(roi, wanted)
        mask = mask.copy()
        mask[tuple(ijk[~keep_roi].T)] = False
        ijk, roi = ijk[keep_roi], roi[keep_roi]

    if average_rois:
        return _region_betas(img, labels, mask, names, ids, table, sessions, standardize)

    # --- mask through nilearn, keeping NaN visible so bad voxels are counted ---
    mask_nii = nib.Nifti1Image(mask.astype(np.uint8), affine)
    betas = apply_mask(img, mask_nii, dtype="f", ensure_finite=False).astype(np.float32)
    keep = drop_bad_voxels(betas, what="voxels in the mask")
    if not keep.all():
        betas, ijk, roi = betas[:, keep], ijk[keep], roi[keep]
        mask = np.zeros(shape3, dtype=bool)
        mask[tuple(ijk.T)] = True
        mask_nii = nib.Nifti1Image(mask.astype(np.uint8), affine)
    betas = np.ascontiguousarray(betas)
    if standardize:  # bad voxels are gone, so every std is > 0 (and n_trials >= 2)
        betas = (betas - betas.mean(0)) / betas.std(0, ddof=1)

    from nilearn.maskers import NiftiMasker

    masker = NiftiMasker(mask_img=mask_nii, standardize=None).fit()
    return NiftiBetas(
        betas=betas.astype(np.float32),
        stimulus_ids=ids,
        geometry=VoxelGeometry(shape3, affine, ijk),
        roi_labels=roi,
        mask_img=mask_nii,
        trials=table,
        session_ids=sessions,
        _masker=masker,
    )


def _region_betas(img, labels, mask, names, ids, table, sessions, standardize) -> NiftiBetas:
    """Region-averaged betas: one column per label inside ``mask``, via NiftiLabelsMasker."""
    from nilearn.maskers import NiftiLabelsMasker

    from data_loaders.fmri.geometry import RegionGeometry

    nib = _nib()
    affine = np.asarray(img.affine, dtype=np.float64)
    regions = np.where(mask, labels, 0).astype(np.int32)
    data = np.asarray(img.dataobj)
    finite = np.isfinite(data).all(axis=3)
    nonfinite = (regions > 0) & ~finite
    if nonfinite.any():  # nilearn would average them as 0: leave them out, and say so
        warnings.warn(
            f"{int(nonfinite.sum())} voxel(s) with NaN/inf values were left out of their "
            "regions' means.",
            FMRIDataWarning,
            stacklevel=3,
        )
        regions[nonfinite] = 0
    if not finite.all():
        # a new array: nilearn zeroes non-finite values in place, in the caller's image
        img = nib.Nifti1Image(np.where(np.isfinite(data), data, 0).astype(np.float32), affine)
    region_ids = np.unique(regions[regions > 0])
    if region_ids.size == 0:
        raise InputError("No labelled voxel lies inside the mask; check mask_img and labels_img.")
    masker = NiftiLabelsMasker(nib.Nifti1Image(regions, affine), strategy="mean", standardize=None)
    betas = np.asarray(masker.fit_transform(img), dtype=np.float32)
    if betas.shape[1] != len(region_ids):  # pragma: no cover - nilearn keeps every label
        raise InputError(
            f"nilearn returned {betas.shape[1]} regions for {len(region_ids)} labels; check "
            "that labels_img holds integer labels."
        )
    keep = drop_bad_voxels(betas, what="regions")
    betas, region_ids = np.ascontiguousarray(betas[:, keep]), region_ids[keep]
    if standardize:
        betas = (betas - betas.mean(0)) / betas.std(0, ddof=1)
    geometry = RegionGeometry(regions, affine, region_ids)
    kept = np.isin(regions, region_ids)
    regions_kept = np.where(kept, regions, 0).astype(np.int32)
    masker = NiftiLabelsMasker(
        nib.Nifti1Image(regions_kept, affine), strategy="mean", standardize=None
    ).fit()
    return NiftiBetas(
        betas=betas.astype(np.float32),
        stimulus_ids=ids,
        geometry=geometry,
        roi_labels=np.array([names.get(int(r), str(int(r))) for r in region_ids], dtype=str),
        mask_img=nib.Nifti1Image(kept.astype(np.uint8), affine),
        trials=table,
        session_ids=sessions,
        _masker=masker,
    )
