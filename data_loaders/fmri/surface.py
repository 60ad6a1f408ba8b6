"""Single-trial responses on the cortical surface: GIfTI and FreeSurfer MGH in and out.

Surface pipelines (fMRIPrep, HCP, NSD's fsaverage betas) sample each trial's
response onto the vertices of a mesh, one file per hemisphere:

- GIfTI ``.func.gii`` with one data array per trial (or one 2D array of shape
  ``(n_vertices, n_trials)``, as some tools write);
- FreeSurfer ``.mgh`` / ``.mgz`` of shape ``(n_vertices, 1, 1, n_trials)``;
- or one such file per trial.

Vertex ROI labels come as FreeSurfer ``.annot``, ``.label`` (one region a
file), label GIfTI ``.label.gii``, or an integer ``.mgh`` / ``.mgz`` with the
names in a dict or a FreeSurfer colour table (``.ctab``).

:func:`load_surface_betas` reads them into a :class:`SurfaceBetas`: a
``(n_trials, n_columns)`` float32 array whose columns are vertices (left
hemisphere first), each column's ROI, and a :class:`SurfaceGeometry` that
says which vertex of which hemisphere each column is. The geometry is the
surface counterpart of :class:`~data_loaders.fmri.geometry.VoxelGeometry`: a
per-column result goes back to GIfTI / MGH files
(:meth:`SurfaceGeometry.save_map`) or is drawn on the mesh with nilearn
(:meth:`SurfaceGeometry.plot`). :func:`write_surface_betas` writes responses
the way the pipelines do.

Nothing here downloads anything: the fsaverage5 mesh used for plots ships
with nilearn; other meshes are given as files (FreeSurfer ``lh.inflated``,
GIfTI ``.surf.gii``).
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any
from xml.parsers.expat import ExpatError

import numpy as np

from data_loaders._io import atomic_open, check_overwrite
from data_loaders._validation import check_array, check_choice, check_file
from data_loaders.errors import InputError, InputTypeError, UnreadableFileError, one_line
from data_loaders.fmri._common import (
    check_session_ids,
    check_stimulus_ids,
    drop_bad_voxels,
    read_table,
)
from data_loaders.fmri.geometry import check_column_index

__all__ = [
    "FSAVERAGE_N_VERTICES",
    "SurfaceBetas",
    "SurfaceGeometry",
    "load_surface_betas",
    "read_surface_labels",
    "write_surface_betas",
]

HEMIS = ("left", "right")
_SHORT = {"left": "lh", "right": "rh"}
_STRUCTURE = {"left": "CortexLeft", "right": "CortexRight"}
_ALIASES = {
    "left": "left",
    "lh": "left",
    "l": "left",
    "cortexleft": "left",
    "cortex_left": "left",
    "right": "right",
    "rh": "right",
    "r": "right",
    "cortexright": "right",
    "cortex_right": "right",
}

#: Vertices per hemisphere of FreeSurfer's fsaverage meshes (icosahedron orders 3 to 7).
FSAVERAGE_N_VERTICES = MappingProxyType(
    {
        "fsaverage": 163842,
        "fsaverage7": 163842,
        "fsaverage6": 40962,
        "fsaverage5": 10242,
        "fsaverage4": 2562,
        "fsaverage3": 642,
    }
)

# label names that mean "no region" (FreeSurfer's aparc calls the medial wall "unknown")
_UNLABELLED = {
    "",
    "unknown",
    "???",
    "medial_wall",
    "medial.wall",
    "medialwall",
    "background+freesurfer_defined_medial_wall",
}

_FUNC_SUFFIXES = (".gii", ".mgh", ".mgz")
_LABEL_SUFFIXES = (".annot", ".label.gii", ".gii", ".label", ".mgh", ".mgz")


def _nib():
    try:
        import nibabel as nib
    except ImportError as err:  # pragma: no cover - nibabel comes with nilearn
        raise ImportError("Reading surface data needs nibabel: pip install 'nibabel>=5.0'") from err
    return nib


def _read_errors() -> tuple[type[BaseException], ...]:
    nib = _nib()
    return (
        nib.filebasedimages.ImageFileError,
        nib.spatialimages.HeaderDataError,
        ExpatError,
        OSError,
        EOFError,
        ValueError,
        KeyError,
        IndexError,
        zlib.error,
        nib.freesurfer.mghformat.MGHError,
    )


def _hemi_name(value: Any, what: str) -> str:
    key = str(value).strip().lower() if isinstance(value, (str, np.str_)) else None
    if key not in _ALIASES:
        raise InputError(
            f"{what} must name a hemisphere ('left' or 'right'; 'lh'/'rh' also work); got "
            f"{value!r}."
        )
    return _ALIASES[key]


def _frozen(arr: np.ndarray) -> np.ndarray:
    out = np.array(arr, copy=True)
    out.setflags(write=False)
    return out


def _mesh_count_hint(n: int) -> str:
    names = [k for k, v in FSAVERAGE_N_VERTICES.items() if v == n and k != "fsaverage7"]
    return f" ({names[0]} has {n})" if names else ""


# ====================================================================== geometry
class SurfaceGeometry:
    """Which vertex of which hemisphere each column of a response array is.

    The surface counterpart of
    :class:`~data_loaders.fmri.geometry.VoxelGeometry`: it shares ``n_voxels``
    (the number of columns), ``subset`` and ``coords``, and adds the way
    back to GIfTI / MGH files and to a drawing on the mesh.

    Parameters
    ----------
    n_vertices : dict {hemisphere: int}
        Vertices of each hemisphere's mesh, e.g. ``{"left": 10242, "right":
        10242}`` for fsaverage5. Keys ``"left"`` / ``"right"`` (``"lh"`` /
        ``"rh"`` are read as those); one hemisphere alone is allowed.
    hemi : array of shape (n_columns,), str
        Hemisphere of each column (``"left"`` / ``"right"``, or ``"lh"`` /
        ``"rh"``).
    vertex : array of shape (n_columns,), int
        Vertex index of each column in its hemisphere's mesh (0-based).
    mesh : str, optional
        Name of the mesh (``"fsaverage5"``, ``"fsnative"``, ...). An fsaverage
        name is checked against ``n_vertices`` and lets :meth:`plot` find the
        mesh (fsaverage5 ships with nilearn).
    coords : dict {hemisphere: array of shape (n_vertices, 3)}, optional
        Every vertex's position in mm (e.g. the white or pial surface), for
        each hemisphere in ``n_vertices``; :attr:`coords` then gives each
        column's position.

    Attributes
    ----------
    kind : str
        ``"surface"`` (``VoxelGeometry`` says ``"volume"``).
    n_vertices : mapping {hemisphere: int}, read-only
    hemispheres : tuple of str
        The hemispheres of the mesh, left first.
    hemi : ndarray of shape (n_columns,), str, read-only
    vertex : ndarray of shape (n_columns,), int64, read-only
    mesh : str or None

    Raises
    ------
    InputError
        An unknown hemisphere, a column whose vertex lies outside its mesh or
        repeats another column's, ``hemi`` and ``vertex`` of different
        lengths, an fsaverage name whose vertex count differs, coordinates of
        the wrong shape.

    Examples
    --------
    >>> geo = SurfaceGeometry({"left": 5, "right": 4}, ["left", "right", "left"], [4, 0, 1])
    >>> geo.n_voxels, geo.kind
    (3, 'surface')
    >>> maps = geo.to_arrays([1.0, 2.0, 3.0])
    >>> maps["left"].tolist(), maps["right"].tolist()
    ([nan, 3.0, nan, nan, 1.0], [2.0, nan, nan, nan])
    >>> geo.subset([0, 2]).vertex.tolist()
    [4, 1]
    """

    kind = "surface"

    def __init__(
        self,
        n_vertices: Mapping[str, int],
        hemi: Any,
        vertex: Any,
        mesh: str | None = None,
        coords: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(n_vertices, Mapping) or not n_vertices:
            raise InputTypeError(
                "n_vertices must be a dict of vertex counts per hemisphere, e.g. "
                f"{{'left': 10242, 'right': 10242}}; got {n_vertices!r}."
            )
        counts: dict[str, int] = {}
        for key, value in n_vertices.items():
            h = _hemi_name(key, "n_vertices keys")
            ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))
            if not ok or int(value) < 1:
                raise InputError(
                    f"n_vertices[{h!r}] must be a positive integer (the mesh's vertex count); "
                    f"got {value!r}."
                )
            if h in counts:
                raise InputError(f"n_vertices names the {h} hemisphere twice; give it once.")
            counts[h] = int(value)
        counts = {h: counts[h] for h in HEMIS if h in counts}

        if mesh is not None and not isinstance(mesh, str):
            raise InputTypeError(
                f"mesh must be a mesh name such as 'fsaverage5' or None; got {type(mesh).__name__}."
            )
        if mesh is not None and mesh.lower() in FSAVERAGE_N_VERTICES:
            expected = FSAVERAGE_N_VERTICES[mesh.lower()]
            wrong = {h: n for h, n in counts.items() if n != expected}
            if wrong:
                h, n = next(iter(wrong.items()))
                raise InputError(
                    f"mesh {mesh!r} has {expected} vertices per hemisphere but the {h} "
                    f"hemisphere has {n}{_mesh_count_hint(n)}; name the mesh the data were "
                    "sampled on."
                )

        hemis = np.asarray(hemi)
        if hemis.ndim != 1:
            raise InputError(f"hemi must be one hemisphere per column; got shape {hemis.shape}.")
        verts = check_array("vertex", vertex, ndim=1, shape_hint="(n_columns,)")
        if len(hemis) != len(verts):
            raise InputError(
                f"hemi and vertex must have one entry per column each; hemi has {len(hemis)} "
                f"and vertex has {len(verts)}."
            )
        if not np.issubdtype(verts.dtype, np.integer) and (
            np.issubdtype(verts.dtype, np.bool_) or not np.all(verts == np.round(verts))
        ):
            raise InputTypeError(
                f"vertex must hold integer vertex indices; got dtype {verts.dtype}."
            )
        verts = verts.astype(np.int64)
        names = np.empty(len(hemis), dtype="<U5")
        for value in np.unique(hemis):
            h = _hemi_name(value, "hemi")
            if h not in counts:
                raise InputError(
                    f"hemi names the {h} hemisphere but n_vertices has only "
                    f"{list(counts)}; add its vertex count to n_vertices."
                )
            names[hemis == value] = h
        offsets, start = {}, 0
        for h in counts:
            offsets[h] = start
            start += counts[h]
        flat = np.empty(len(verts), dtype=np.int64)
        for h, n in counts.items():
            sel = names == h
            bad = sel & ((verts < 0) | (verts >= n))
            if bad.any():
                raise InputError(
                    f"vertex: {int(bad.sum())} {h}-hemisphere column(s) lie outside its mesh of "
                    f"{n} vertices (first: {int(verts[bad][0])}); indices must satisfy "
                    "0 <= vertex < n_vertices. Check that the data and n_vertices come from "
                    "the same mesh."
                )
            flat[sel] = verts[sel] + offsets[h]
        unique, counts_per = np.unique(flat, return_counts=True)
        if len(unique) != len(flat):
            dup = int(unique[counts_per > 1][0])
            h = next(h for h in reversed(list(counts)) if dup >= offsets[h])
            raise InputError(
                f"vertex: {int((counts_per > 1).sum())} vertex(es) appear in more than one "
                f"column (first: {h} vertex {dup - offsets[h]}); each column must be a "
                "different vertex."
            )

        vertex_coords = None
        if coords is not None:
            if not isinstance(coords, Mapping):
                raise InputTypeError(
                    "coords must be a dict {hemisphere: array (n_vertices, 3)} of vertex "
                    f"positions in mm; got {type(coords).__name__}."
                )
            given = {_hemi_name(k, "coords keys"): v for k, v in coords.items()}
            vertex_coords = {}
            for h, n in counts.items():
                if h not in given:
                    raise InputError(
                        f"coords has no {h} hemisphere; give vertex positions for each "
                        f"hemisphere in n_vertices ({list(counts)})."
                    )
                xyz = check_array(
                    f"coords[{h!r}]", given[h], ndim=2, shape_hint="(n_vertices, 3)",
                    dtype=np.float64,
                )  # fmt: skip
                if xyz.shape != (n, 3):
                    raise InputError(
                        f"coords[{h!r}] must have shape ({n}, 3), one position per vertex of the "
                        f"{h} mesh; got {xyz.shape}. Give the surface the data were sampled on."
                    )
                vertex_coords[h] = _frozen(xyz)

        init = object.__setattr__  # the instance is read-only once built (see __setattr__)
        init(self, "_n_vertices", MappingProxyType(counts))
        init(self, "_hemi", _frozen(names))
        init(self, "_vertex", _frozen(verts))
        init(self, "_mesh", mesh)
        init(
            self,
            "_vertex_coords",
            None if vertex_coords is None else MappingProxyType(vertex_coords),
        )

    # ----------------------------------------------------------------- basics
    @classmethod
    def full(
        cls,
        n_vertices: Mapping[str, int],
        mesh: str | None = None,
        coords: Mapping[str, Any] | None = None,
    ) -> SurfaceGeometry:
        """Every vertex of the mesh as a column, left hemisphere first.

        Parameters
        ----------
        n_vertices : dict {hemisphere: int}
        mesh : str, optional
        coords : dict {hemisphere: array (n_vertices, 3)}, optional

        Returns
        -------
        SurfaceGeometry

        Examples
        --------
        >>> SurfaceGeometry.full({"left": 10242, "right": 10242}, mesh="fsaverage5").n_voxels
        20484
        """
        if not isinstance(n_vertices, Mapping):
            raise InputTypeError(
                f"n_vertices must be a dict of vertex counts per hemisphere; got {n_vertices!r}."
            )
        hemi, vertex = [], []
        for key, n in n_vertices.items():
            count = int(n) if isinstance(n, (int, np.integer)) and n > 0 else 0
            hemi.append(np.full(count, str(key)))
            vertex.append(np.arange(count))
        return cls(n_vertices, np.concatenate(hemi), np.concatenate(vertex), mesh, coords)

    @property
    def n_vertices(self) -> Mapping[str, int]:
        """Vertices of each hemisphere's mesh (read-only mapping, left first)."""
        return self._n_vertices

    @property
    def hemispheres(self) -> tuple[str, ...]:
        """The hemispheres of the mesh, left first."""
        return tuple(self._n_vertices)

    @property
    def hemi(self) -> np.ndarray:
        """Hemisphere of each column, ``(n_columns,)`` str (``"left"`` / ``"right"``)."""
        return self._hemi

    @property
    def vertex(self) -> np.ndarray:
        """Vertex index of each column in its hemisphere, ``(n_columns,)`` int64."""
        return self._vertex

    @property
    def mesh(self) -> str | None:
        """Name of the mesh, or None."""
        return self._mesh

    @property
    def n_voxels(self) -> int:
        """Number of columns (vertices with data); named as on ``VoxelGeometry``."""
        return int(self._vertex.shape[0])

    @property
    def vertex_coords(self) -> Mapping[str, np.ndarray] | None:
        """Every vertex's position in mm per hemisphere, or None when none was given."""
        return self._vertex_coords

    @property
    def coords(self) -> np.ndarray | None:
        """Each column's position in mm, ``(n_columns, 3)``; None without mesh coordinates."""
        if self._vertex_coords is None:
            return None
        out = np.empty((self.n_voxels, 3), dtype=np.float64)
        for h in self.hemispheres:
            sel = self._hemi == h
            out[sel] = self._vertex_coords[h][self._vertex[sel]]
        return out

    def __len__(self) -> int:
        return self.n_voxels

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("SurfaceGeometry is read-only; build a new one instead.")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SurfaceGeometry):
            return NotImplemented
        same_coords = (self._vertex_coords is None) == (other._vertex_coords is None)
        if same_coords and self._vertex_coords is not None:
            same_coords = all(
                np.array_equal(self._vertex_coords[h], other._vertex_coords[h])
                for h in self.hemispheres
            )
        return (
            dict(self._n_vertices) == dict(other._n_vertices)
            and self._mesh == other._mesh
            and np.array_equal(self._hemi, other._hemi)
            and np.array_equal(self._vertex, other._vertex)
            and same_coords
        )

    def __hash__(self) -> int:
        return hash(
            (
                tuple(self._n_vertices.items()),
                self._mesh,
                self._hemi.tobytes(),
                self._vertex.tobytes(),
            )
        )

    def __repr__(self) -> str:
        per = ", ".join(
            f"{h}: {int((self._hemi == h).sum())} of {n}" for h, n in self._n_vertices.items()
        )
        return f"SurfaceGeometry(mesh={self._mesh!r}, n_voxels={self.n_voxels}, vertices=({per}))"

    # ----------------------------------------------------------------- derived
    def subset(self, index: Any) -> SurfaceGeometry:
        """The geometry of some of the columns, in the order ``index`` gives.

        Parameters
        ----------
        index : slice, boolean mask of shape (n_columns,) or int array of shape (k,)

        Returns
        -------
        SurfaceGeometry
            Same mesh, ``hemi[index]`` and ``vertex[index]``.
        """
        index = check_column_index(index, self.n_voxels, "column")
        try:
            hemi = np.atleast_1d(self._hemi[index])
            vertex = np.atleast_1d(self._vertex[index])
        except IndexError as err:
            raise InputError(f"index does not fit {self.n_voxels} columns: {err}.") from None
        return SurfaceGeometry(
            dict(self._n_vertices),
            hemi,
            vertex,
            self._mesh,
            None if self._vertex_coords is None else dict(self._vertex_coords),
        )

    def _check_values(self, values: Any) -> np.ndarray:
        vals = check_array(
            "values", values, ndim=(1, 2), shape_hint="(n_columns,) or (k, n_columns)", finite=False
        ).astype(np.float32)
        if vals.shape[-1] != self.n_voxels:
            raise InputError(
                f"values have {vals.shape[-1]} entries on their last axis but the geometry has "
                f"{self.n_voxels} columns; give one value per column (shape ({self.n_voxels},) "
                f"or (k, {self.n_voxels}))."
            )
        return vals

    def to_arrays(self, values: Any, fill: float = np.nan) -> dict[str, np.ndarray]:
        """Spread per-column values over every vertex of each hemisphere.

        Parameters
        ----------
        values : array of shape (n_columns,) or (k, n_columns)
            One map, or ``k`` maps.
        fill : float, default=NaN
            Value of the vertices that are no column (dropped or masked).

        Returns
        -------
        dict {hemisphere: ndarray}
            float32 of shape ``(n_vertices,)`` or ``(k, n_vertices)``.
        """
        vals = self._check_values(values)
        if isinstance(fill, (bool, np.bool_)) or not isinstance(fill, (int, float, np.number)):
            raise InputTypeError(f"fill must be a number (or NaN); got {fill!r}.")
        out = {}
        for h, n in self._n_vertices.items():
            sel = self._hemi == h
            full = np.full((*vals.shape[:-1], n), fill, dtype=np.float32)
            full[..., self._vertex[sel]] = vals[..., sel]
            out[h] = full
        return out

    def to_images(self, values: Any, fill: float = np.nan, fmt: str = "gifti") -> dict[str, Any]:
        """Per-column values as one image per hemisphere.

        Parameters
        ----------
        values : array of shape (n_columns,) or (k, n_columns)
            One map, or ``k`` maps.
        fill : float, default=NaN
            Value of the vertices that are no column.
        fmt : {"gifti", "mgh"}, default="gifti"
            ``"gifti"``: a ``GiftiImage`` with one float32 data array per map
            (intent NIFTI_INTENT_NONE, ``AnatomicalStructurePrimary`` set to
            ``CortexLeft`` / ``CortexRight``). ``"mgh"``: an ``MGHImage`` of
            shape ``(n_vertices, 1, 1)`` or ``(n_vertices, 1, 1, k)``.

        Returns
        -------
        dict {hemisphere: nibabel image}
        """
        fmt = check_choice("fmt", fmt, ("gifti", "mgh", "mgz"))
        arrays = self.to_arrays(values, fill=fill)
        return {
            h: _make_image(arr, h, "gifti" if fmt == "gifti" else "mgh")
            for h, arr in arrays.items()
        }

    def save_map(
        self,
        values: Any,
        stem: str | os.PathLike,
        *,
        fmt: str = "gifti",
        fill: float = np.nan,
        overwrite: bool = False,
    ) -> list[Path]:
        """Write per-column values as one file per hemisphere, atomically.

        Parameters
        ----------
        values : array of shape (n_columns,) or (k, n_columns)
        stem : str or path
            Path without the ending: ``<stem>.lh.func.gii`` and
            ``<stem>.rh.func.gii`` are written (``.lh.mgh`` / ``.lh.mgz``
            for MGH). Missing folders are created.
        fmt : {"gifti", "mgh", "mgz"}, default="gifti"
        fill : float, default=NaN
            Value of the vertices that are no column.
        overwrite : bool, default=False
            Replace existing files; otherwise an existing file is refused
            (before anything is written).

        Returns
        -------
        list of pathlib.Path
            The files written, left hemisphere first.

        Raises
        ------
        OutputExistsError
            A target file exists and ``overwrite`` is False.
        """
        fmt = check_choice("fmt", fmt, ("gifti", "mgh", "mgz"))
        if not isinstance(stem, (str, os.PathLike)):
            raise InputTypeError(
                f"stem must be a path (str or pathlib.Path); got {type(stem).__name__}."
            )
        images = self.to_images(values, fill=fill, fmt=fmt)
        ending = {"gifti": "func.gii", "mgh": "mgh", "mgz": "mgz"}[fmt]
        targets = {h: Path(f"{os.fspath(stem)}.{_SHORT[h]}.{ending}") for h in images}
        for path in targets.values():
            check_overwrite(path, overwrite, what="map file")
        for h, path in targets.items():
            _write_image(images[h], path)
        return list(targets.values())

    def plot(
        self,
        values: Any,
        *,
        mesh: Any = None,
        bg_map: Mapping[str, Any] | None = None,
        title: str | None = None,
        cmap: str = "RdBu_r",
        vmax: float | None = None,
        threshold: float | None = None,
    ):
        """Draw one map on the surface: lateral views of each hemisphere.

        Parameters
        ----------
        values : array of shape (n_columns,)
            One value per column; vertices that are no column are not coloured.
        mesh : str or dict {hemisphere: path or (coords, faces)}, optional
            The surface to draw on. ``"fsaverage5"`` is the inflated mesh that
            ships with nilearn (nothing is downloaded; its sulcal depth is the
            background). Other meshes are given as files per hemisphere, e.g.
            ``{"left": "lh.inflated", "right": "rh.inflated"}`` or GIfTI
            ``.surf.gii``. By default :attr:`mesh` (fsaverage5 when every
            hemisphere has 10242 vertices).
        bg_map : dict {hemisphere: path or array (n_vertices,)}, optional
            Background shading (e.g. ``lh.sulc``) for a mesh given as files.
        title : str, optional
        cmap : str, default="RdBu_r"
        vmax : float, optional
            Colour scale ``[-vmax, vmax]``; by default the largest absolute value.
        threshold : float, optional
            Leave values with ``|value| < threshold`` uncoloured.

        Returns
        -------
        matplotlib.figure.Figure

        Raises
        ------
        InputError
            No mesh is known, a mesh other than fsaverage5 given by name, a
            mesh file whose vertex count differs from the geometry's.
        UnreadableFileError
            A mesh file cannot be read.
        """
        from matplotlib.figure import Figure
        from nilearn import plotting

        vals = self._check_values(values)
        if vals.ndim != 1:
            raise InputError(
                f"plot draws one map: values must have shape ({self.n_voxels},); got "
                f"{vals.shape}. Plot the maps one at a time (values[i])."
            )
        meshes, backgrounds = self._plot_meshes(mesh, bg_map)
        arrays = self.to_arrays(vals)
        finite = vals[np.isfinite(vals)]
        if vmax is None:
            vmax = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
        hemis = self.hemispheres
        fig = Figure(figsize=(4.2 * len(hemis), 3.6))
        for i, h in enumerate(hemis):
            ax = fig.add_subplot(1, len(hemis), i + 1, projection="3d")
            plotting.plot_surf_stat_map(
                meshes[h],
                arrays[h],
                bg_map=backgrounds.get(h),
                hemi=h,
                view="lateral",
                cmap=cmap,
                vmax=vmax,
                threshold=threshold,
                colorbar=i == len(hemis) - 1,
                axes=ax,
                figure=fig,
                title=h,
            )
        if title:
            fig.suptitle(title)
        return fig

    def _plot_meshes(self, mesh: Any, bg_map: Any) -> tuple[dict, dict]:
        if mesh is None:
            mesh = self._mesh
            if mesh is None and all(n == 10242 for n in self._n_vertices.values()):
                mesh = "fsaverage5"
            if mesh is None:
                raise InputError(
                    f"plot needs the mesh of the data (no mesh name; "
                    f"{dict(self._n_vertices)} vertices); pass mesh={{'left': 'lh.inflated', "
                    "'right': 'rh.inflated'} (FreeSurfer or .surf.gii files)."
                )
        if isinstance(mesh, str):
            if mesh.lower() != "fsaverage5":
                raise InputError(
                    f"mesh {mesh!r} does not ship with nilearn (only fsaverage5 does) and "
                    "nothing is downloaded; pass the mesh files, e.g. mesh={'left': "
                    "'lh.inflated', 'right': 'rh.inflated'}."
                )
            meshes, backgrounds = _fsaverage5()
        elif isinstance(mesh, Mapping):
            given = {_hemi_name(k, "mesh keys"): v for k, v in mesh.items()}
            meshes = {h: _load_mesh(given[h], f"mesh[{h!r}]") for h in given}
            backgrounds = {}
            if bg_map is not None:
                if not isinstance(bg_map, Mapping):
                    raise InputTypeError(
                        f"bg_map must be a dict {{hemisphere: path or array}}; got "
                        f"{type(bg_map).__name__}."
                    )
                backgrounds = {
                    _hemi_name(k, "bg_map keys"): _load_bg(v, f"bg_map[{k!r}]")
                    for k, v in bg_map.items()
                }
        else:
            raise InputTypeError(
                "mesh must be 'fsaverage5' or a dict {hemisphere: mesh file or (coords, faces)}; "
                f"got {type(mesh).__name__}."
            )
        for h, n in self._n_vertices.items():
            if h not in meshes:
                raise InputError(
                    f"mesh has no {h} hemisphere; give a mesh for each of {list(self._n_vertices)}."
                )
            n_mesh = len(meshes[h][0])
            if n_mesh != n:
                raise InputError(
                    f"mesh[{h!r}] has {n_mesh} vertices but the data's {h} hemisphere has "
                    f"{n}{_mesh_count_hint(n)}; draw on the mesh the data were sampled on."
                )
            if h in backgrounds and len(backgrounds[h]) != n:
                raise InputError(
                    f"bg_map[{h!r}] has {len(backgrounds[h])} values but the mesh has {n} "
                    "vertices; give the background of the same mesh."
                )
        return meshes, backgrounds


def _fsaverage5() -> tuple[dict, dict]:
    """The inflated fsaverage5 mesh and its sulcal depth, from nilearn's package data."""
    from nilearn import datasets, surface

    files = datasets.fetch_surf_fsaverage("fsaverage5")  # bundled: no download
    meshes, sulc = {}, {}
    for h in HEMIS:
        m = surface.load_surf_mesh(files[f"infl_{h}"])
        meshes[h] = (np.asarray(m.coordinates), np.asarray(m.faces))
        sulc[h] = np.asarray(surface.load_surf_data(files[f"sulc_{h}"]))
    return meshes, sulc


def _load_mesh(source: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(source, (tuple, list)) and len(source) == 2:
        coords = check_array(f"{what} coordinates", source[0], ndim=2, shape_hint="(n, 3)")
        faces = check_array(f"{what} faces", source[1], ndim=2, shape_hint="(n_faces, 3)")
        return coords, faces.astype(np.int64)
    from nilearn import surface

    path = check_file(what, source)
    try:
        m = surface.load_surf_mesh(os.fspath(path))
        coords, faces = np.asarray(m.coordinates), np.asarray(m.faces)
    except (*_read_errors(), TypeError) as err:
        raise UnreadableFileError(
            f"{what}: cannot read {str(path)!r} as a surface mesh ({one_line(err)}); give a "
            "FreeSurfer surface (lh.inflated, lh.pial) or a GIfTI .surf.gii."
        ) from None
    return coords, faces


def _load_bg(source: Any, what: str) -> np.ndarray:
    if isinstance(source, (str, os.PathLike)):
        from nilearn import surface

        path = check_file(what, source)
        try:
            return np.asarray(surface.load_surf_data(os.fspath(path))).ravel()
        except (*_read_errors(), TypeError) as err:
            raise UnreadableFileError(
                f"{what}: cannot read {str(path)!r} as per-vertex data ({one_line(err)}); give "
                "a FreeSurfer curv/sulc file or a GIfTI."
            ) from None
    return check_array(what, source, ndim=1, shape_hint="(n_vertices,)")


def _make_image(arr: np.ndarray, hemi: str, fmt: str) -> Any:
    """A GiftiImage (one darray per map) or MGHImage (n, 1, 1[, k]) of ``arr`` (n,) / (k, n)."""
    nib = _nib()
    maps = arr.reshape(-1, arr.shape[-1]).astype(np.float32)
    if fmt == "gifti":
        meta = nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary": _STRUCTURE[hemi]})
        darrays = [
            nib.gifti.GiftiDataArray(
                np.ascontiguousarray(m), intent="NIFTI_INTENT_NONE", datatype="NIFTI_TYPE_FLOAT32"
            )
            for m in maps
        ]
        return nib.gifti.GiftiImage(darrays=darrays, meta=meta)
    data = maps.T[:, None, None, :] if arr.ndim == 2 else maps[0][:, None, None]
    return nib.MGHImage(np.ascontiguousarray(data), np.eye(4))


def _write_image(img: Any, path: Path) -> None:
    data = img.to_bytes()
    if path.name.lower().endswith(".mgz"):
        data = gzip.compress(data, mtime=0)
    with atomic_open(path, "wb") as fh:
        fh.write(data)


# ====================================================================== reading
def _hemi_from_name(path: Path) -> str | None:
    """The hemisphere a file's name states (``lh.``, ``.rh.``, ``hemi-L``, HCP's ``.L.``), or None."""
    name = path.name.lower()
    found = set()
    for m in re.finditer(r"(?:^|[._-])(lh|rh)(?=[._-])", name):
        found.add("left" if m.group(1) == "lh" else "right")
    for m in re.finditer(r"hemi-(l|r|left|right)(?=[._-]|$)", name):
        found.add("left" if m.group(1).startswith("l") else "right")
    for m in re.finditer(r"\.(l|r)\.", name):
        found.add("left" if m.group(1) == "l" else "right")
    return found.pop() if len(found) == 1 else None


def _hemi_from_gifti(img: Any) -> str | None:
    metas = [img.meta, *(d.meta for d in img.darrays[:1])]
    for meta in metas:
        value = dict(meta).get("AnatomicalStructurePrimary")
        if value:
            key = str(value).strip().lower()
            if key in _ALIASES:
                return _ALIASES[key]
    return None


def _load_file(path: Path, what: str, kind: str) -> Any:
    """A GIfTI or MGH image read whole, or UnreadableFileError naming ``what`` and the file."""
    nib = _nib()
    name = path.name.lower()
    cls = nib.gifti.GiftiImage if name.endswith(".gii") else nib.MGHImage
    fmt = "GIfTI" if name.endswith(".gii") else "FreeSurfer MGH"
    try:
        # read the bytes here (nibabel's MGH reader leaves its file handle open)
        blob = path.read_bytes()
        if name.endswith(".mgz"):
            blob = gzip.decompress(blob)
        img = cls.from_bytes(blob)
        if cls is nib.MGHImage:
            data = np.asanyarray(img.dataobj)
            img = nib.MGHImage(data, img.affine, img.header)
    except _read_errors() as err:
        raise UnreadableFileError(
            f"{what}: cannot read {str(path)!r} as {fmt} ({one_line(err)}); the file is "
            f"truncated, corrupt or of another format. Copy it again from its source, or give "
            f"{kind}."
        ) from None
    return img


def _func_columns(img: Any, path: Path, what: str) -> np.ndarray:
    """``(n_vertices, k)`` float32 from a functional GIfTI or MGH image."""
    nib = _nib()
    if isinstance(img, nib.gifti.GiftiImage):
        if not img.darrays:
            raise UnreadableFileError(
                f"{what}: {str(path)!r} holds no data array; give a .func.gii."
            )
        intents = {nib.nifti1.intent_codes.label[d.intent] for d in img.darrays}
        if intents & {"pointset", "triangle"}:
            raise UnreadableFileError(
                f"{what}: {str(path)!r} is a surface mesh (vertex coordinates and triangles), "
                "not data; give the .func.gii (or .mgh) of the responses, and the mesh as "
                "mesh=."
            )
        if "label" in intents:
            raise UnreadableFileError(
                f"{what}: {str(path)!r} is a label GIfTI (ROIs), not responses; pass it as "
                "labels= and give the .func.gii of the responses here."
            )
        cols = []
        for i, d in enumerate(img.darrays):
            arr = np.asarray(d.data)
            if arr.ndim == 1:
                arr = arr[:, None]
            if arr.ndim != 2:
                raise InputError(
                    f"{what}: data array {i} of {str(path)!r} has shape {arr.shape}; expected "
                    "(n_vertices,) per trial or (n_vertices, n_trials)."
                )
            if cols and len(arr) != len(cols[0]):
                raise InputError(
                    f"{what}: data array {i} of {str(path)!r} has {len(arr)} vertices but data "
                    f"array 0 has {len(cols[0])}; every trial must be sampled on the same mesh. "
                    "Resample the file (e.g. mri_surf2surf) or rewrite it."
                )
            cols.append(arr)
        return np.concatenate(cols, axis=1).astype(np.float32)
    data = np.asarray(img.dataobj)
    if data.ndim == 3:
        data = data[..., None]
    if data.ndim != 4 or data.shape[1:3] != (1, 1):
        raise InputError(
            f"{what}: {str(path)!r} has shape {data.shape}; a surface MGH holds "
            "(n_vertices, 1, 1) or (n_vertices, 1, 1, n_trials). A volume in MGH format is "
            "read with load_nifti_betas after conversion (mri_convert)."
        )
    return data[:, 0, 0, :].astype(np.float32)


def _read_hemisphere(source: Any, what: str) -> tuple[np.ndarray, str | None, list[Path]]:
    """(data (n_vertices, n_trials), stated hemisphere or None, files) for one hemisphere."""
    nib = _nib()
    if isinstance(source, (str, os.PathLike, nib.gifti.GiftiImage, nib.MGHImage)):
        items = [source]
        names = [what]
    elif isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        if len(source) == 0:
            raise InputError(f"{what} is an empty list; give one file per trial, or one file.")
        items = list(source)
        names = [f"{what}[{i}]" for i in range(len(items))]
    else:
        raise InputTypeError(
            f"{what} must be a .func.gii / .mgh / .mgz path, a nibabel GIfTI or MGH image, or a "
            f"list of them (one per trial); got {type(source).__name__}."
        )
    kind = "a .func.gii, .gii, .mgh or .mgz file"
    blocks, hints, paths = [], [], []
    for item, name in zip(items, names, strict=True):
        if isinstance(item, (str, os.PathLike)):
            path = check_file(name, item)
            if not path.name.lower().endswith(_FUNC_SUFFIXES):
                raise InputError(f"{name} must be {kind}; got {str(path)!r}.")
            img = _load_file(path, name, kind)
            paths.append(path)
            hints.append(_hemi_from_name(path))
        elif isinstance(item, (nib.gifti.GiftiImage, nib.MGHImage)):
            img, path = item, Path("<image>")
        else:
            raise InputTypeError(
                f"{name} must be a path or a nibabel GIfTI / MGH image; got {type(item).__name__}."
            )
        if isinstance(img, nib.gifti.GiftiImage):
            hints.append(_hemi_from_gifti(img))
        block = _func_columns(img, path, name)
        if blocks and len(block) != len(blocks[0]):
            raise InputError(
                f"{name} has {len(block)} vertices but {names[0]} has {len(blocks[0])}; every "
                "trial must be sampled on the same mesh."
            )
        blocks.append(block)
    stated = {h for h in hints if h is not None}
    hint = stated.pop() if len(stated) == 1 else None
    return np.concatenate(blocks, axis=1), hint, paths


def _check_side(hint: str | None, hemi: str, what: str) -> None:
    if hint is not None and hint != hemi:
        raise InputError(
            f"{what} is given as the {hemi} hemisphere but its file says {hint} (name or "
            "GIfTI AnatomicalStructurePrimary); the hemispheres look swapped: pass the lh / "
            "hemi-L file as left and the rh / hemi-R file as right."
        )


def _read_ctab(path: Any, what: str) -> dict[int, str]:
    """Label names from a FreeSurfer colour table (``index name r g b a`` lines)."""
    p = check_file(what, path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UnreadableFileError(
            f"{what}: {str(p)!r} is not a text colour table; give a FreeSurfer .ctab "
            "(lines 'index name r g b a')."
        ) from None
    names = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if len(parts) < 2 or not re.fullmatch(r"-?\d+", parts[0]):
            raise UnreadableFileError(
                f"{what}: line {line_no} of {str(p)!r} is not 'index name r g b a' "
                f"({line.strip()[:60]!r}); give a FreeSurfer colour table."
            )
        names[int(parts[0])] = parts[1]
    if not names:
        raise UnreadableFileError(
            f"{what}: {str(p)!r} lists no label; give a FreeSurfer colour table."
        )
    return names


def _name_map(label_names: Any) -> dict[int, str]:
    if isinstance(label_names, (str, os.PathLike)):
        return _read_ctab(label_names, "label_names")
    if isinstance(label_names, Mapping):
        try:
            return {int(k): str(v) for k, v in label_names.items()}
        except (TypeError, ValueError):
            raise InputTypeError(
                "label_names must map integer labels to names ({1: 'V1', ...}); got keys "
                f"{list(label_names)[:5]}."
            ) from None
    if isinstance(label_names, Sequence):
        return {i: str(v) for i, v in enumerate(label_names)}
    raise InputTypeError(
        "label_names must be a dict {int: name}, a list (index = label) or a .ctab path; got "
        f"{type(label_names).__name__}."
    )


def _names_from_ints(
    values: np.ndarray, names: Mapping[int, str], zero_is_unlabelled: bool = True
) -> np.ndarray:
    """Names of integer labels; negative labels (and 0 when ``zero_is_unlabelled``) are ``""``."""
    out = np.full(len(values), "", dtype=object)
    for v in np.unique(values):
        v = int(v)
        if v < 0 or (v == 0 and zero_is_unlabelled):
            continue
        name = names.get(v, str(v))
        out[values == v] = "" if name.strip().lower() in _UNLABELLED else name
    return out.astype(str)


def read_surface_labels(
    source: Any,
    n_vertices: int,
    *,
    label_names: Any = None,
    hemi: str | None = None,
    what: str = "labels",
) -> np.ndarray:
    """The ROI name of every vertex of one hemisphere, from any FreeSurfer / GIfTI label format.

    Parameters
    ----------
    source : path, list of paths, or array of shape (n_vertices,)
        ``.annot`` (names from the file), ``.label.gii`` (names from its
        label table), ``.label`` files (one region each, named by the file:
        ``lh.V1.label`` is ``"V1"``; a vertex in several takes the first),
        integer ``.mgh`` / ``.mgz`` (names from ``label_names``), or an array
        of integer labels or of names.
    n_vertices : int
        Vertices of the hemisphere's mesh; the labels must cover exactly these.
    label_names : dict {int: str}, list of str or path, optional
        Names of integer labels (a FreeSurfer ``.ctab`` path works); a label
        with no name is called by its number. Only for integer labels.
    hemi : {"left", "right"}, optional
        The hemisphere the labels are for; a file whose name states the other
        one is refused.
    what : str, default="labels"
        How the caller names ``source``, in messages.

    Returns
    -------
    ndarray of shape (n_vertices,), str
        ``""`` for vertices in no region: a negative label, label 0 of an
        integer file or array (whatever ``label_names`` calls it), and
        regions a file calls ``unknown``, ``???`` or ``Medial_wall``.

    Raises
    ------
    MissingFileError, UnreadableFileError
        A file is missing, empty, truncated or of another format.
    InputError
        Labels for another number of vertices, or for the other hemisphere.

    Examples
    --------
    >>> read_surface_labels([0, 2, 2, 1], 4, label_names={1: "V1", 2: "V2"}).tolist()
    ['', 'V2', 'V2', 'V1']
    """
    nib = _nib()
    names = None if label_names is None else _name_map(label_names)
    files: list[Path] = []
    if isinstance(source, (str, os.PathLike)):
        files = [check_file(what, source)]
    elif (
        isinstance(source, Sequence)
        and source
        and all(isinstance(s, (str, os.PathLike)) for s in source)
    ):
        files = [check_file(f"{what}[{i}]", s) for i, s in enumerate(source)]
        if not all(f.name.lower().endswith(".label") for f in files):
            raise InputError(
                f"{what}: a list of label files must hold FreeSurfer .label files (one region "
                "each); give one .annot / .label.gii / .mgz file per hemisphere otherwise."
            )

    if not files:  # an array
        arr = np.asarray(source)
        if arr.ndim != 1:
            raise InputError(f"{what} must be one label per vertex; got shape {arr.shape}.")
        if np.issubdtype(arr.dtype, np.number):
            if not np.all(arr == np.round(arr)):
                raise InputError(f"{what} must hold integer labels or names; got non-integers.")
            out = _names_from_ints(arr.astype(np.int64), names or {})
        else:
            out = np.array(["" if str(v).strip().lower() in _UNLABELLED else str(v) for v in arr])
        _check_label_count(out, n_vertices, what, what)
        return out

    for f in files:
        ok = f.name.lower().endswith(_LABEL_SUFFIXES)
        if not ok:
            raise InputError(
                f"{what} must be a .annot, .label.gii, .label, .mgh or .mgz file; got {str(f)!r}."
            )
        if hemi is not None:
            _check_side(_hemi_from_name(f), hemi, f"{what} ({f.name})")
    first = files[0]
    lower = first.name.lower()
    shown = str(first)
    if names is not None and not lower.endswith((".mgh", ".mgz")):
        raise InputError(
            "label_names only names integer .mgh / .mgz labels; .annot, .label.gii and .label "
            f"files carry their own names ({first.name}). Drop label_names."
        )

    if lower.endswith(".label"):
        out = np.full(n_vertices, "", dtype=object)
        for f in files:
            try:
                verts = np.asarray(nib.freesurfer.read_label(os.fspath(f)), dtype=np.int64)
            except _read_errors() as err:
                raise UnreadableFileError(
                    f"{what}: cannot read {str(f)!r} as a FreeSurfer .label file "
                    f"({one_line(err)}); the file is truncated or of another format."
                ) from None
            if len(verts) and (verts.min() < 0 or verts.max() >= n_vertices):
                raise InputError(
                    f"{what}: {str(f)!r} names vertex {int(verts.max())} but the mesh has "
                    f"{n_vertices} vertices{_mesh_count_hint(n_vertices)}; give labels drawn "
                    "on the mesh of the data."
                )
            region = re.sub(r"^(lh|rh)\.", "", f.name[: -len(".label")], flags=re.IGNORECASE)
            free = out[verts] == ""
            out[verts[free]] = region
        return out.astype(str)

    if lower.endswith(".annot"):
        try:
            codes, _ctab, raw = nib.freesurfer.read_annot(os.fspath(first))
        except _read_errors() as err:
            raise UnreadableFileError(
                f"{what}: cannot read {shown!r} as a FreeSurfer .annot ({one_line(err)}); the "
                "file is truncated, corrupt or of another format."
            ) from None
        decoded = {
            i: (n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n))
            for i, n in enumerate(raw)
        }
        out = _names_from_ints(np.asarray(codes, dtype=np.int64), decoded, False)
        _check_label_count(out, n_vertices, what, shown)
        return out

    img = _load_file(first, what, "a .annot, .label.gii or integer .mgz file")
    if isinstance(img, nib.gifti.GiftiImage):
        if not img.darrays:
            raise UnreadableFileError(f"{what}: {shown!r} holds no data array; give a .label.gii.")
        if hemi is not None:
            _check_side(_hemi_from_gifti(img), hemi, f"{what} ({first.name})")
        values = np.asarray(img.darrays[0].data)
        table = {int(k): str(v) for k, v in img.labeltable.get_labels_as_dict().items() if v}
        from_file = True
    else:
        values = np.asarray(img.dataobj)
        values = values.reshape(values.shape[0], -1) if values.ndim > 1 else values
        if values.ndim == 2 and values.shape[1] != 1:
            raise InputError(
                f"{what}: {shown!r} has shape {np.asarray(img.dataobj).shape}; a label MGH "
                "holds one value per vertex, (n_vertices, 1, 1)."
            )
        values = values.ravel()
        table, from_file = names or {}, False
    values = values.ravel()
    if not np.issubdtype(values.dtype, np.integer) and (
        not np.all(np.isfinite(values)) or not np.all(values == np.round(values))
    ):
        raise InputError(
            f"{what}: {shown!r} holds non-integer values, so it is not a label file; give "
            "integer labels (an atlas sampled with nearest-neighbour interpolation)."
        )
    out = _names_from_ints(values.astype(np.int64), table, not from_file)
    _check_label_count(out, n_vertices, what, shown)
    return out


def _check_label_count(out: np.ndarray, n_vertices: int, what: str, shown: str) -> None:
    if len(out) != n_vertices:
        raise InputError(
            f"{what}: {shown!r} labels {len(out)} vertices{_mesh_count_hint(len(out))} but the "
            f"data have {n_vertices}{_mesh_count_hint(n_vertices)}; give labels of the mesh "
            "the data were sampled on."
        )


def _per_hemi(value: Any, given: tuple[str, ...], what: str) -> dict[str, Any]:
    """A per-hemisphere argument as a dict: a dict, a (left, right) pair, or one item for one hemisphere."""
    if isinstance(value, Mapping):
        out = {_hemi_name(k, f"{what} keys"): v for k, v in value.items()}
        extra = set(out) - set(given)
        if extra:
            raise InputError(
                f"{what} has the {sorted(extra)} hemisphere(s) but the betas have only "
                f"{list(given)}."
            )
        return out
    if (
        isinstance(value, (tuple, list))
        and len(value) == len(given) == 2
        and not all(isinstance(v, (int, float, np.number)) for v in value)
    ):
        return dict(zip(given, value, strict=True))
    if len(given) == 1:
        return {given[0]: value}
    raise InputTypeError(
        f"{what} must be a dict {{'left': ..., 'right': ...}} (or a (left, right) pair) when "
        f"both hemispheres are given; got {type(value).__name__}."
    )


def _read_trials(trials: Any) -> tuple[np.ndarray, Any]:
    if trials is None:
        raise InputError(
            "trials is required: give the stimulus id of each trial (an array, a DataFrame or "
            "a TSV file with a 'stimulus_id' column)."
        )
    source = None
    if isinstance(trials, (str, os.PathLike)):
        source = trials
        trials = read_table("trials", trials)
    if hasattr(trials, "columns"):
        if "stimulus_id" not in trials.columns:
            error = InputError if source is None else UnreadableFileError
            where = "" if source is None else f" {str(source)!r}"
            raise error(
                f"trials: the trial table{where} needs a 'stimulus_id' column; it has columns "
                f"{list(trials.columns)}. Rename the column that holds the stimulus index."
            )
        table = trials.reset_index(drop=True)
        return table["stimulus_id"].to_numpy(), table
    return np.asarray(trials), None


@dataclass
class SurfaceBetas:
    """Single-trial responses at surface vertices, with each column's vertex and ROI.

    Attributes
    ----------
    betas : ndarray of shape (n_trials, n_columns), float32
        One response per trial and vertex (columns: left hemisphere first,
        vertices in increasing order).
    stimulus_ids : ndarray of shape (n_trials,), int64
        Which stimulus each trial showed.
    geometry : SurfaceGeometry
        Which vertex of which hemisphere each column is.
    roi_labels : ndarray of shape (n_columns,), str
        Each column's ROI name; ``""`` for none.
    session_ids : ndarray of shape (n_trials,) or None
        From the trial table's ``session`` column, when it has one.
    trials : pandas.DataFrame or None
        The trial table, when one was given as a DataFrame or TSV file.
    """

    betas: np.ndarray
    stimulus_ids: np.ndarray
    geometry: SurfaceGeometry
    roi_labels: np.ndarray
    session_ids: np.ndarray | None = None
    trials: Any = None

    @property
    def n_trials(self) -> int:
        """Number of trials (rows of ``betas``)."""
        return int(self.betas.shape[0])

    @property
    def n_voxels(self) -> int:
        """Number of vertices with data (columns of ``betas``)."""
        return int(self.betas.shape[1])

    @property
    def coords(self) -> np.ndarray | None:
        """Each column's position in mm (``geometry.coords``), or None without mesh coordinates."""
        return self.geometry.coords

    def to_images(self, values: Any, fill: float = np.nan, fmt: str = "gifti") -> dict[str, Any]:
        """Per-column values as one image per hemisphere (see :meth:`SurfaceGeometry.to_images`)."""
        return self.geometry.to_images(values, fill=fill, fmt=fmt)

    def save_map(self, values: Any, stem: Any, **kwargs: Any) -> list[Path]:
        """Write per-column values to ``<stem>.lh.func.gii`` ... (see :meth:`SurfaceGeometry.save_map`)."""
        return self.geometry.save_map(values, stem, **kwargs)

    def plot(self, values: Any, **kwargs: Any):
        """Draw one map on the surface (see :meth:`SurfaceGeometry.plot`)."""
        return self.geometry.plot(values, **kwargs)

    def to_dataset(self, stimuli: Any = None, name: str | None = None, session_ids: Any = None):
        """An :class:`~data_loaders.fmri.dataset.FMRIDataset` of these responses.

        Parameters
        ----------
        stimuli : ImageSet, array or path, optional
            The stimulus set that ``stimulus_ids`` index.
        name : str, optional
        session_ids : array of shape (n_trials,), optional
            Session of each trial; by default :attr:`session_ids`.

        Returns
        -------
        FMRIDataset
            With this object's :attr:`geometry` and ROI labels.
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


def load_surface_betas(
    left: Any,
    right: Any = None,
    trials: Any = None,
    *,
    labels: Any = None,
    label_names: Any = None,
    rois: Any = None,
    mask: Any = None,
    mesh: Any = None,
) -> SurfaceBetas:
    """Read single-trial responses sampled on the cortical surface.

    Parameters
    ----------
    left, right : path, nibabel image, or list of them
        Each hemisphere's responses: a GIfTI ``.func.gii`` with one data
        array per trial (or one 2D array ``(n_vertices, n_trials)``), a
        FreeSurfer ``.mgh`` / ``.mgz`` of shape ``(n_vertices, 1, 1,
        n_trials)``, or a list of such files (one or more trials each, in
        trial order). ``right`` may be None (one hemisphere). Files are only
        read.
    trials : array-like of int, pandas.DataFrame, str or path
        Which stimulus each trial showed, in trial order: ``n_trials`` ints,
        or a DataFrame / TSV file with a ``stimulus_id`` column (a
        ``session`` column becomes :attr:`SurfaceBetas.session_ids`).
    labels : dict {hemisphere: source} or (left, right), optional
        Each hemisphere's vertex labels: ``.annot``, ``.label.gii``, a list of
        ``.label`` files, or an integer ``.mgh`` / ``.mgz`` (see
        :func:`read_surface_labels`).
    label_names : dict {int: str}, list of str or path to a ``.ctab``, optional
        Names of integer ``.mgh`` / ``.mgz`` labels.
    rois : str or list of str, optional
        Keep only vertices in these ROIs. Needs ``labels``.
    mask : "labelled" or dict {hemisphere: bool array (n_vertices,)}, optional
        Vertices to keep. By default every vertex is kept (the medial wall
        too, unless its responses are NaN or constant); ``"labelled"`` keeps
        vertices with a non-empty ROI name.
    mesh : str or dict {hemisphere: path or (coords, faces)}, optional
        The mesh the data were sampled on: a name (``"fsaverage5"``; an
        fsaverage name is checked against the vertex counts), or the mesh
        files, whose vertex positions become :attr:`SurfaceGeometry.coords`.

    Returns
    -------
    SurfaceBetas

    Raises
    ------
    MissingFileError
        A file does not exist.
    UnreadableFileError
        A file is empty, truncated or of another format (a mesh or label
        file where responses are expected, a table with no ``stimulus_id``).
    InputError
        Trials sampled on different meshes, hemispheres with different numbers
        of trials, hemispheres swapped (by file name or GIfTI
        ``AnatomicalStructurePrimary``), labels or a mesh of another vertex
        count, an ROI that matches no vertex, every vertex bad.

    Warns
    -----
    FMRIDataWarning
        Vertices with NaN/inf values or constant across trials were dropped
        (the message counts them).

    Examples
    --------
    >>> import numpy as np, nibabel as nib
    >>> rng = np.random.default_rng(0)
    >>> lh = nib.gifti.GiftiImage(darrays=[
    ...     nib.gifti.GiftiDataArray(rng.normal(size=642).astype("float32")) for _ in range(4)])
    >>> out = load_surface_betas(lh, None, [0, 1, 2, 0], mesh="fsaverage3")
    >>> out.betas.shape, out.geometry.hemispheres
    ((4, 642), ('left',))
    """
    if left is None:
        raise InputError(
            "left is None; give the left hemisphere's responses (or pass one as left)."
        )
    sources = {"left": left}
    if right is not None:
        sources["right"] = right
    given = tuple(sources)

    data, paths = {}, {}
    for h, src in sources.items():
        block, hint, files = _read_hemisphere(src, h)
        _check_side(hint, h, h)
        data[h], paths[h] = block, files
    if len(given) == 2:
        n_l, n_r = data["left"].shape[1], data["right"].shape[1]
        if n_l != n_r:
            raise InputError(
                f"left has {n_l} trials but right has {n_r}; give both hemispheres of the same "
                "trials, in the same order."
            )
    n_trials = data["left"].shape[1]
    counts = {h: int(data[h].shape[0]) for h in given}

    mesh_name, vertex_coords = None, None
    if isinstance(mesh, str):
        mesh_name = mesh
    elif isinstance(mesh, Mapping):
        loaded = {
            _hemi_name(k, "mesh keys"): _load_mesh(v, f"mesh[{k!r}]") for k, v in mesh.items()
        }
        for h in given:
            if h not in loaded:
                raise InputError(
                    f"mesh has no {h} hemisphere; give a mesh file for each of {list(given)}."
                )
            if len(loaded[h][0]) != counts[h]:
                raise InputError(
                    f"mesh[{h!r}] has {len(loaded[h][0])} vertices but the {h} responses have "
                    f"{counts[h]}{_mesh_count_hint(counts[h])}; give the mesh the data were "
                    "sampled on (or check that left and right are not swapped)."
                )
        vertex_coords = {h: loaded[h][0] for h in given}
    elif mesh is not None:
        raise InputTypeError(
            "mesh must be a name ('fsaverage5') or a dict {hemisphere: mesh file}; got "
            f"{type(mesh).__name__}."
        )
    # the geometry checks an fsaverage name against the counts, so build it before anything else
    geometry_all = SurfaceGeometry.full(counts, mesh=mesh_name, coords=vertex_coords)

    raw_ids, table = _read_trials(trials)
    ids = check_stimulus_ids(raw_ids, n_trials)
    sessions = None
    if table is not None and "session" in table.columns:
        sessions = check_session_ids(table["session"].to_numpy(), n_trials, "trials['session']")

    if label_names is not None and labels is None:
        raise InputError("label_names was given but labels is None; pass the label files too.")
    roi = {h: np.full(counts[h], "", dtype=str) for h in given}
    if labels is not None:
        per = _per_hemi(labels, given, "labels")
        for h, src in per.items():
            roi[h] = read_surface_labels(
                src, counts[h], label_names=label_names, hemi=h, what=f"labels[{h!r}]"
            )

    keep = {h: np.ones(counts[h], dtype=bool) for h in given}
    if mask is not None:
        if isinstance(mask, str):
            check_choice("mask", mask, ("labelled",))
            if labels is None:
                raise InputError("mask='labelled' needs labels; pass the label files too.")
            keep = {h: roi[h] != "" for h in given}
        else:
            per = _per_hemi(mask, given, "mask")
            for h, m in per.items():
                arr = np.asarray(m)
                if arr.dtype != bool or arr.shape != (counts[h],):
                    raise InputError(
                        f"mask[{h!r}] must be a boolean array of shape ({counts[h]},), one entry "
                        f"per vertex; got dtype {arr.dtype} and shape {arr.shape}."
                    )
                keep[h] = arr.copy()
    if rois is not None:
        if labels is None:
            raise InputError("rois was given but labels is None; pass the label files too.")
        wanted = [rois] if isinstance(rois, str) else [str(r) for r in rois]
        available = sorted({str(r) for h in given for r in np.unique(roi[h][keep[h]])} - {""})
        missing = [r for r in wanted if r not in available]
        if missing:
            raise InputError(
                f"rois: {missing} match no vertex. ROIs with vertices: {available}. Check the "
                "names against the label files."
            )
        keep = {h: keep[h] & np.isin(roi[h], wanted) for h in given}
    if not any(keep[h].any() for h in given):
        raise InputError("No vertex is left after the mask; check mask and rois.")

    columns = np.concatenate([keep[h] for h in given])
    betas = np.concatenate([data[h][keep[h]] for h in given], axis=0).T
    good = drop_bad_voxels(betas, what="vertices")
    betas = np.ascontiguousarray(betas[:, good], dtype=np.float32)
    geometry = geometry_all.subset(np.flatnonzero(columns)[good])
    roi_labels = np.concatenate([roi[h][keep[h]] for h in given])[good]
    return SurfaceBetas(
        betas=betas,
        stimulus_ids=ids,
        geometry=geometry,
        roi_labels=roi_labels.astype(str),
        session_ids=sessions,
        trials=table,
    )


# ====================================================================== writing
def write_surface_betas(
    stem: str | os.PathLike,
    left: Any,
    right: Any = None,
    *,
    fmt: str = "gifti",
    layout: str = "darrays",
    intent: str = "NIFTI_INTENT_NONE",
    overwrite: bool = False,
) -> dict[str, list[Path]]:
    """Write single-trial surface responses the way surface pipelines do.

    Parameters
    ----------
    stem : str or path
        Path without the ending; ``<stem>.lh.func.gii`` / ``<stem>.rh.func.gii``
        (``.lh.mgh`` / ``.lh.mgz``) are written, or with ``layout="per_trial"``
        ``<stem>.lh.trial-001.func.gii`` and so on.
    left, right : array of shape (n_trials, n_vertices)
        Each hemisphere's responses (``right`` may be None).
    fmt : {"gifti", "mgh", "mgz"}, default="gifti"
    layout : {"darrays", "2d", "per_trial"}, default="darrays"
        GIfTI only for ``"darrays"`` (one float32 data array per trial, as
        fMRIPrep writes) and ``"2d"`` (one ``(n_vertices, n_trials)`` array);
        ``"per_trial"`` writes one file per trial in either format. MGH files
        hold ``(n_vertices, 1, 1, n_trials)`` float32.
    intent : {"NIFTI_INTENT_NONE", "NIFTI_INTENT_TIME_SERIES"}, default="NIFTI_INTENT_NONE"
        The GIfTI data arrays' intent.
    overwrite : bool, default=False
        Replace existing files; otherwise an existing file is refused before
        anything is written.

    Returns
    -------
    dict {hemisphere: list of pathlib.Path}

    Raises
    ------
    OutputExistsError
        A file exists and ``overwrite`` is False.
    InputError
        Arrays of the wrong shape, hemispheres with different numbers of
        trials, a layout the format does not have.
    """
    nib = _nib()
    fmt = check_choice("fmt", fmt, ("gifti", "mgh", "mgz"))
    layout = check_choice("layout", layout, ("darrays", "2d", "per_trial"))
    intent = check_choice("intent", intent, ("NIFTI_INTENT_NONE", "NIFTI_INTENT_TIME_SERIES"))
    if fmt != "gifti" and layout != "darrays" and layout != "per_trial":
        raise InputError(
            f"layout {layout!r} is a GIfTI layout; MGH files use 'darrays' (one file) or 'per_trial'."
        )
    if not isinstance(stem, (str, os.PathLike)):
        raise InputTypeError(
            f"stem must be a path (str or pathlib.Path); got {type(stem).__name__}."
        )
    arrays = {
        "left": check_array("left", left, ndim=2, shape_hint="(n_trials, n_vertices)", finite=False)
    }
    if right is not None:
        arrays["right"] = check_array(
            "right", right, ndim=2, shape_hint="(n_trials, n_vertices)", finite=False
        )
        if len(arrays["right"]) != len(arrays["left"]):
            raise InputError(
                f"left has {len(arrays['left'])} trials but right has {len(arrays['right'])}; "
                "give both hemispheres of the same trials."
            )
    ending = {"gifti": "func.gii", "mgh": "mgh", "mgz": "mgz"}[fmt]
    plan: dict[str, list[tuple[Path, Any]]] = {}
    for h, arr in arrays.items():
        arr = arr.astype(np.float32)
        meta = {"AnatomicalStructurePrimary": _STRUCTURE[h]}
        base = f"{os.fspath(stem)}.{_SHORT[h]}"
        if layout == "per_trial":
            chunks = [
                (Path(f"{base}.trial-{t + 1:03d}.{ending}"), arr[t : t + 1])
                for t in range(len(arr))
            ]
        else:
            chunks = [(Path(f"{base}.{ending}"), arr)]
        plan[h] = []
        for path, block in chunks:
            if fmt == "gifti":
                if layout == "2d":
                    darrays = [
                        nib.gifti.GiftiDataArray(
                            np.ascontiguousarray(block.T),
                            intent=intent,
                            datatype="NIFTI_TYPE_FLOAT32",
                        )
                    ]
                else:
                    darrays = [
                        nib.gifti.GiftiDataArray(
                            np.ascontiguousarray(row), intent=intent, datatype="NIFTI_TYPE_FLOAT32"
                        )
                        for row in block
                    ]
                img = nib.gifti.GiftiImage(darrays=darrays, meta=nib.gifti.GiftiMetaData(meta))
            else:
                vol = block.T[:, None, None, :]
                if vol.shape[-1] == 1:  # MGH drops a trailing axis of 1
                    vol = vol[..., 0]
                img = nib.MGHImage(np.ascontiguousarray(vol), np.eye(4))
            plan[h].append((path, img))
    for items in plan.values():
        for path, _ in items:
            check_overwrite(path, overwrite, what="betas file")
    for items in plan.values():
        for path, img in items:
            _write_image(img, path)
    return {h: [p for p, _ in items] for h, items in plan.items()}
