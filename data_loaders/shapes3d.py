"""Users' own 3D targets: meshes and voxel grids as occupancy grids.

A decoder of 3D objects (``neuro.decoding``) is trained against occupancy
grids ``(n, G, G, G)`` over the cube ``[-1, 1]^3`` (axes x, y, z; cell ``i``
centred at ``-1 + (2 i + 1) / G``), the layout of
:mod:`data_loaders.simulate.shapes`. This module turns what users have into
that:

* meshes (``.obj``, ``.ply``, ``.off``, ``.stl``), read with trimesh
  (``pip install 'neuro[3d]'``), centred on their bounding box, scaled so the
  largest half-extent is 0.9, and voxelised by an inside test: rays along
  each of the three axes through the cell centres, counting surface
  crossings (odd = inside), and the majority of the three. On a closed
  (watertight) mesh the three agree; an open mesh gets a warning and this
  best-effort fill.
* grids already voxelised: ``.npy`` (one ``(G, G, G)`` grid or a stack
  ``(n, G, G, G)``) or ``.npz`` (a single array, or one named
  ``occupancy``), values in [0, 1]. Files are read without pickle.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data_loaders._validation import check_array, check_bool, check_file, check_int
from data_loaders.errors import InputError, InputTypeError, UnreadableFileError, one_line

__all__ = [
    "GRID_SUFFIXES",
    "MESH_SUFFIXES",
    "load_shape_targets",
    "mesh_to_occupancy",
    "read_mesh",
]

#: Mesh files :func:`read_mesh` reads.
MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl")

#: Voxel-grid files :func:`load_shape_targets` reads.
GRID_SUFFIXES = (".npy", ".npz")

_TRIMESH_HINT = "Reading meshes needs trimesh: pip install 'neuro[3d]' (or pip install trimesh)."


def read_mesh(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh from ``.obj``, ``.ply``, ``.off`` or ``.stl``.

    Polygons are split into triangles; several objects in one file are
    merged into one mesh.

    Parameters
    ----------
    path : str or path

    Returns
    -------
    vertices : ndarray of shape (n_vertices, 3), float64
    faces : ndarray of shape (n_faces, 3), int64
        0-based vertex indices of each triangle.

    Raises
    ------
    MissingFileError
        Nothing at ``path``.
    UnreadableFileError
        An empty, truncated or foreign file (one with no triangles).
    InputError
        Another suffix.
    ImportError
        trimesh is not installed.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "tri.obj").write_text("v 0 0 0\\nv 1 0 0\\nv 0 1 0\\nf 1 2 3\\n")
    >>> vertices, faces = read_mesh(folder / "tri.obj")
    >>> vertices.shape, faces.tolist()
    ((3, 3), [[0, 1, 2]])
    """
    p = check_file("path", path)
    suffix = p.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise InputError(
            f"path: {str(p)!r} is not a mesh file; give one of {', '.join(MESH_SUFFIXES)} "
            f"(voxel grids {', '.join(GRID_SUFFIXES)} go through load_shape_targets)."
        )
    try:
        import trimesh
    except ImportError as err:  # pragma: no cover - trimesh is in the 3d extra
        raise ImportError(_TRIMESH_HINT) from err
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mesh = trimesh.load(str(p), file_type=suffix[1:], force="mesh", process=False)
        vertices = np.asarray(mesh.vertices, dtype=np.float64)
        faces = np.asarray(mesh.faces, dtype=np.int64)
    except Exception as err:  # trimesh raises many kinds on damaged files
        raise UnreadableFileError(
            f"{str(p)!r} cannot be read as a {suffix} mesh: {one_line(err)}. Check that the file "
            "was copied completely and is really of that format."
        ) from None
    if faces.ndim != 2 or len(faces) == 0 or len(vertices) == 0:
        raise UnreadableFileError(
            f"{str(p)!r} holds no triangles as a {suffix} mesh (is it truncated, or another "
            "kind of file?); give a mesh with faces."
        )
    if not np.isfinite(vertices).all():
        raise UnreadableFileError(
            f"{str(p)!r} has NaN or infinite vertex coordinates; repair the mesh first."
        )
    return vertices, faces


def _is_watertight(vertices: np.ndarray, faces: np.ndarray) -> bool:
    """Every edge shared by exactly two triangles, once vertices at one place are merged.

    (Files that store texture coordinates or normals often repeat a vertex.)
    """
    scale = float(np.abs(vertices).max()) or 1.0
    _, same = np.unique(np.round(vertices / scale, 9), axis=0, return_inverse=True)
    faces = same.reshape(-1)[faces]
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return bool((counts == 2).all())


def _parity(tri: np.ndarray, grid_size: int, axis: int) -> np.ndarray:
    """Inside test by crossing parity along rays parallel to ``axis`` through the cell centres.

    Returns a boolean ``(G, G, G)`` grid in (x, y, z) order.
    """
    g = grid_size
    centres = -1.0 + (2.0 * np.arange(g) + 1.0) / g
    u_ax, v_ax = [a for a in range(3) if a != axis]
    # a tiny irrational-looking shift keeps rays off edges and vertices lying on the grid
    eps = np.array([1.2345678e-7, 2.7182818e-7])
    a2, b2, c2 = (tri[:, k][:, [u_ax, v_ax]] for k in range(3))
    h = tri[:, :, axis]  # (F, 3)
    lo = np.minimum(np.minimum(a2, b2), c2)
    hi = np.maximum(np.maximum(a2, b2), c2)
    # range of cell-centre indices inside each triangle's 2D bounding box
    i_lo = np.ceil((lo - eps + 1.0) * g / 2.0 - 0.5).astype(np.int64).clip(0, g)
    i_hi = np.floor((hi - eps + 1.0) * g / 2.0 - 0.5).astype(np.int64).clip(-1, g - 1)
    n_u = np.maximum(i_hi[:, 0] - i_lo[:, 0] + 1, 0)
    n_v = np.maximum(i_hi[:, 1] - i_lo[:, 1] + 1, 0)
    count = n_u * n_v
    tri_id = np.repeat(np.arange(len(tri)), count)
    local = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    iu = i_lo[tri_id, 0] + local // n_v[tri_id]
    iv = i_lo[tri_id, 1] + local % n_v[tri_id]
    p = np.stack([centres[iu], centres[iv]], axis=1) + eps
    a, b, c = a2[tri_id], b2[tri_id], c2[tri_id]

    def cross(x, y):
        return x[:, 0] * y[:, 1] - x[:, 1] * y[:, 0]

    det = cross(b - a, c - a)
    ok = np.abs(det) > 1e-14  # triangles seen edge-on are crossed by no ray
    det = np.where(ok, det, 1.0)
    wb = cross(p - a, c - a) / det
    wc = cross(b - a, p - a) / det
    wa = 1.0 - wb - wc
    hit = ok & (wa >= 0) & (wb >= 0) & (wc >= 0)
    height = (wa * h[tri_id, 0] + wb * h[tri_id, 1] + wc * h[tri_id, 2])[hit]
    k = np.searchsorted(centres, height)  # the crossing lies above cells 0 .. k-1
    hist = np.zeros((g, g, g + 1), dtype=np.int64)
    np.add.at(hist, (iu[hit], iv[hit], k), 1)
    above = np.cumsum(hist[:, :, ::-1], axis=2)[:, :, ::-1][:, :, 1:]  # crossings above cell m
    inside = (above % 2) == 1  # axes (u, v, axis)
    order = np.argsort([u_ax, v_ax, axis])
    return np.transpose(inside, order)


def mesh_to_occupancy(vertices, faces, grid_size: int = 32, normalize: bool = True) -> np.ndarray:
    """Voxelise a triangle mesh to an occupancy grid over the cube [-1, 1]^3.

    Each cell centre is tested by rays along x, y and z that count surface
    crossings (odd = inside); a cell is inside when at least two of the
    three say so. On a closed mesh they agree; a mesh with holes gets a
    warning and this best-effort fill.

    Parameters
    ----------
    vertices : array of shape (n_vertices, 3)
    faces : array of shape (n_faces, 3), int
        0-based vertex indices of each triangle.
    grid_size : int, default=32
        Side ``G`` of the grid (>= 2).
    normalize : bool, default=True
        Centre the mesh's bounding box and scale its largest half-extent to
        0.9. With False the vertices must already be in the cube's units.

    Returns
    -------
    ndarray of shape (G, G, G), float32
        1 inside, 0 outside; axes (x, y, z).

    Raises
    ------
    InputError
        Arrays of the wrong shape, face indices out of range, a mesh of
        zero extent.

    Warns
    -----
    UserWarning
        The mesh is not closed (some edge is not shared by exactly two
        triangles).

    Examples
    --------
    >>> corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    >>> faces = [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
    ...          [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
    >>> grid = mesh_to_occupancy(corners, faces, grid_size=16)
    >>> grid.shape, int(grid.sum())  # [-0.9, 0.9]^3 holds 14 of the 16 centres per axis
    ((16, 16, 16), 2744)
    """
    vertices = check_array(
        "vertices", vertices, ndim=2, shape_hint="(n_vertices, 3)", dtype=np.float64
    )
    faces = check_array("faces", faces, ndim=2, shape_hint="(n_faces, 3)")
    grid_size = check_int("grid_size", grid_size, minimum=2)
    normalize = check_bool("normalize", normalize)
    if vertices.shape[1] != 3 or faces.shape[1] != 3:
        raise InputError(
            f"vertices must be (n_vertices, 3) and faces (n_faces, 3) triangles; got "
            f"{vertices.shape} and {faces.shape}. Triangulate polygons first."
        )
    if not np.issubdtype(faces.dtype, np.integer):
        if not np.array_equal(faces, np.round(faces)):
            raise InputTypeError(f"faces must hold integer vertex indices; got {faces.dtype}.")
        faces = faces.astype(np.int64)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError(
            f"faces index vertices 0..{len(vertices) - 1}; got indices in [{faces.min()}, "
            f"{faces.max()}]. (OBJ files count from 1; subtract 1.)"
        )
    if normalize:
        lo, hi = vertices.min(axis=0), vertices.max(axis=0)
        half = float((hi - lo).max()) / 2
        if half <= 0:
            raise InputError("The mesh has zero extent (all vertices equal); give a real mesh.")
        vertices = (vertices - (lo + hi) / 2) * (0.9 / half)
    if not _is_watertight(vertices, faces):
        warnings.warn(
            "The mesh is not closed (some edges do not border exactly two triangles); its inside "
            "is a best-effort fill (majority of rays along x, y, z). Repair it (e.g. trimesh's "
            "fill_holes) for an exact one.",
            UserWarning,
            stacklevel=2,
        )
    tri = vertices[faces]
    votes = sum(_parity(tri, grid_size, axis).astype(np.int8) for axis in range(3))
    return (votes >= 2).astype(np.float32)


def _read_grids(p: Path) -> np.ndarray:
    try:
        data = np.load(p, allow_pickle=False)
    except Exception as err:
        raise UnreadableFileError(
            f"{str(p)!r} cannot be read as a NumPy {p.suffix} file: {one_line(err)}. Check "
            "that it was copied completely (np.save / np.savez write them)."
        ) from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            names = list(data.files)
            if len(names) == 1:
                key = names[0]
            elif "occupancy" in names:
                key = "occupancy"
            else:
                raise InputError(
                    f"{str(p)!r} holds several arrays ({', '.join(names)}) and none named "
                    "'occupancy'; store the grids (n, G, G, G) under that name."
                )
            try:
                data = data[key]
            except Exception as err:
                raise UnreadableFileError(
                    f"{str(p)!r}: the array {key!r} cannot be read: {one_line(err)}."
                ) from None
    return data


def _check_grids(grids: np.ndarray, where: str, grid_size: int) -> np.ndarray:
    if grids.dtype == bool:
        grids = grids.astype(np.float32)
    if not np.issubdtype(grids.dtype, np.number):
        raise InputTypeError(f"{where} must hold numbers; got an array of dtype {grids.dtype}.")
    if grids.ndim == 3:
        grids = grids[None]
    g = grid_size
    if grids.ndim != 4 or grids.shape[1:] != (g, g, g):
        got = grids.shape[1:] if grids.ndim == 4 else grids.shape
        raise InputError(
            f"{where} holds grids of shape {got}, expected ({g}, {g}, {g}) for grid_size={g}; "
            f"resample them to {g} (e.g. scipy.ndimage.zoom(grid, {g} / side, order=1) > 0.5) "
            "or pass the grid_size they have."
        )
    grids = grids.astype(np.float32)
    if not np.isfinite(grids).all():
        raise InputError(f"{where} holds NaN or infinite values; give occupancy in [0, 1].")
    if grids.min() < 0 or grids.max() > 1:
        raise InputError(
            f"{where} holds values in [{grids.min():.3g}, {grids.max():.3g}]; give occupancy in "
            "[0, 1] (1 inside). For a signed distance field use (sdf < 0)."
        )
    return grids


def _load_one(p: Path, grid_size: int, normalize: bool) -> np.ndarray:
    suffix = p.suffix.lower()
    if suffix in GRID_SUFFIXES:
        return _check_grids(_read_grids(p), repr(str(p)), grid_size)
    if suffix in MESH_SUFFIXES:
        vertices, faces = read_mesh(p)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            grid = mesh_to_occupancy(vertices, faces, grid_size, normalize=normalize)
        for w in caught:
            warnings.warn(f"{str(p)!r}: {w.message}", UserWarning, stacklevel=3)
        return grid[None]
    raise InputError(
        f"source: {str(p)!r} has an unknown suffix; give meshes "
        f"({', '.join(MESH_SUFFIXES)}) or voxel grids ({', '.join(GRID_SUFFIXES)})."
    )


def load_shape_targets(source, grid_size: int = 32, normalize: bool = True) -> np.ndarray:
    """Load 3D targets as occupancy grids, from meshes or voxel grids.

    Parameters
    ----------
    source : str, path, or sequence of them
        A folder (its mesh and grid files in sorted order; other files are
        skipped), a list of files, or one file: a mesh
        (:data:`MESH_SUFFIXES`), a ``.npy`` holding one grid ``(G, G, G)`` or
        a stack ``(n, G, G, G)``, or a ``.npz`` holding one array (or one
        named ``occupancy``).
    grid_size : int, default=32
        Side ``G``; meshes are voxelised at it, grids must have it.
    normalize : bool, default=True
        For meshes: centre and scale each to a largest half-extent of 0.9
        (see :func:`mesh_to_occupancy`).

    Returns
    -------
    ndarray of shape (n, G, G, G), float32 in [0, 1]
        One grid per mesh, in the order of the files.

    Raises
    ------
    MissingFileError
        A file or folder that does not exist.
    UnreadableFileError
        An empty, truncated or foreign file.
    InputError
        Grids of another size or outside [0, 1], an unknown suffix, a folder
        with no mesh or grid files.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> np.save(folder / "grids.npy", np.zeros((3, 8, 8, 8), dtype=np.float32))
    >>> load_shape_targets(folder / "grids.npy", grid_size=8).shape
    (3, 8, 8, 8)
    """
    grid_size = check_int("grid_size", grid_size, minimum=2)
    normalize = check_bool("normalize", normalize)
    if isinstance(source, (str, os.PathLike)):
        p = Path(source).expanduser()
        if p.is_dir():
            known = MESH_SUFFIXES + GRID_SUFFIXES
            paths = sorted(
                f
                for f in p.iterdir()
                if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in known
            )
            if not paths:
                raise InputError(
                    f"source: the folder {str(p)!r} holds no mesh or grid files; give "
                    f"{', '.join(known)} files."
                )
        else:
            paths = [check_file("source", p)]
    elif isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        if not source:
            raise InputError("source is an empty list; give at least one file.")
        paths = [check_file("source", s) for s in source]
    else:
        raise InputTypeError(
            f"source must be a folder, a file or a list of files; got {type(source).__name__}."
        )
    return np.concatenate([_load_one(p, grid_size, normalize) for p in paths], axis=0)
