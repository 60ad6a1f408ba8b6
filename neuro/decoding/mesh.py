"""Triangle meshes of decoded objects: marching cubes and ``.obj`` / ``.ply`` files.

:func:`occupancy_to_mesh` runs scikit-image's marching cubes on an occupancy
grid padded with one layer of empty cells, so an object that touches the
grid's border still gets a closed (watertight) surface; vertices come back in
the cube coordinates of the grid (cell ``i``'s centre at ``-1 + (2 i + 1) / G``),
faces oriented outward. :func:`write_mesh` writes one mesh (``.obj`` text or
binary little-endian ``.ply``) atomically, and :func:`export_meshes` a batch
of grids to a folder. Any mesh viewer (MeshLab, Blender) or trimesh reads them.

Examples
--------
>>> import numpy as np
>>> g = np.zeros((8, 8, 8), dtype=np.float32)
>>> g[2:6, 2:6, 2:6] = 1.0
>>> vertices, faces = occupancy_to_mesh(g)
>>> vertices.shape[1], faces.shape[1], bool(np.abs(vertices).max() < 1)
(3, 3, True)
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuro._validation import check_array, check_bool, check_choice, check_float
from neuro.errors import InputError, InputTypeError
from neuro.io import atomic_open, check_overwrite

__all__ = ["export_meshes", "occupancy_to_mesh", "write_mesh"]

_SUFFIXES = (".obj", ".ply")


def _level(level: Any) -> float:
    return check_float("level", level, minimum=0.0, strict_minimum=True)


def _mesh(grid: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes on a checked, non-empty grid (see :func:`occupancy_to_mesh`)."""
    from skimage.measure import marching_cubes

    padded = np.pad(grid.astype(np.float32, copy=False), 1)  # empty border: closed surfaces
    verts, faces, _, _ = marching_cubes(padded, level=level, allow_degenerate=False)
    size = np.asarray(grid.shape, dtype=np.float64)
    # padded index p is cell p - 1, whose centre is -1 + (2 (p - 1) + 1) / G
    vertices = -1.0 + (2.0 * verts.astype(np.float64) - 1.0) / size
    # scikit-image orients faces so that their normals point to lower values: flip to outward
    return vertices, np.ascontiguousarray(faces[:, ::-1], dtype=np.int64)


def occupancy_to_mesh(grid: Any, level: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A closed triangle mesh of one occupancy grid, by marching cubes.

    Parameters
    ----------
    grid : array-like of shape (G, G, G)
        Occupancy or probability (1 inside, 0 outside); a torch tensor works too.
    level : float, default=0.5
        The iso-value of the surface; must be > 0, the value of the empty
        border added so that objects touching the grid's edge close.

    Returns
    -------
    vertices : ndarray of shape (v, 3), float64
        In the cube [-1, 1]^3 of the grid (axes x, y, z = array axes 0, 1, 2).
    faces : ndarray of shape (f, 3), int64
        Vertex indices (0-based) of each triangle, counter-clockwise seen from
        outside (normals point outward).

    Raises
    ------
    InputError
        Nothing in ``grid`` is above ``level`` (an empty object has no surface).

    Examples
    --------
    >>> g = np.zeros((6, 6, 6)); g[1:5, 1:5, 1:5] = 1
    >>> v, f = occupancy_to_mesh(g)
    >>> len(v) > 0, f.dtype
    (True, dtype('int64'))
    """
    arr = check_array("grid", grid, ndim=3, shape_hint="(G, G, G)")
    level = _level(level)
    if not (arr > level).any():
        raise InputError(
            f"grid has no cell above level={level:g} (max {arr.max():g}), so it has no surface "
            "to mesh; pass a lower level, or check that the decoded object is not empty."
        )
    return _mesh(arr, level)


def _check_mesh(vertices: Any, faces: Any) -> tuple[np.ndarray, np.ndarray]:
    v = check_array("vertices", vertices, ndim=2, shape_hint="(v, 3)", dtype=np.float64)
    f = check_array("faces", faces, ndim=2, shape_hint="(f, 3)")
    if v.shape[1] != 3:
        raise InputError(f"vertices must have shape (v, 3); got {v.shape}.")
    if f.shape[1] != 3:
        raise InputError(f"faces must have shape (f, 3) (triangles); got {f.shape}.")
    if not np.array_equal(f, np.round(f)):
        raise InputError("faces must hold integer vertex indices; got fractional values.")
    f = f.astype(np.int64)
    if f.min() < 0 or f.max() >= len(v):
        raise InputError(
            f"faces index vertices 0..{len(v) - 1} (0-based); got indices from {f.min()} to "
            f"{f.max()}."
        )
    return v, f


def _obj_bytes(v: np.ndarray, f: np.ndarray) -> bytes:
    buf = io.StringIO()
    buf.write("# written by neuro.decoding.mesh\n")
    np.savetxt(buf, v, fmt="v %.9g %.9g %.9g")
    np.savetxt(buf, f + 1, fmt="f %d %d %d")  # OBJ counts vertices from 1
    return buf.getvalue().encode("ascii")


def _ply_bytes(v: np.ndarray, f: np.ndarray) -> bytes:
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment written by neuro.decoding.mesh\n"
        f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    records = np.empty(len(f), dtype=[("n", "u1"), ("index", "<i4", (3,))])
    records["n"] = 3
    records["index"] = f
    return header.encode("ascii") + v.astype("<f4").tobytes() + records.tobytes()


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise InputError(
            f"path must end in .obj or .ply (the mesh formats written); got {str(path)!r}. "
            "Choose one of these suffixes."
        )
    return suffix


def write_mesh(path: str | os.PathLike, vertices: Any, faces: Any, overwrite: bool = False) -> Path:
    """Write a triangle mesh to ``.obj`` (text) or ``.ply`` (binary), atomically.

    Parameters
    ----------
    path : str or path-like
        The file; its suffix (``.obj`` or ``.ply``) chooses the format.
        Parent folders are created.
    vertices : array-like of shape (v, 3)
        Written as float32 in ``.ply``, with 9 significant digits in ``.obj``.
    faces : array-like of shape (f, 3)
        0-based vertex indices (``.obj`` stores them 1-based, as it must).
    overwrite : bool, default=False
        Replace an existing file; otherwise it is refused.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        Another suffix, malformed vertices or faces.
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile
    >>> v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]])
    >>> f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    >>> path = write_mesh(tempfile.mkdtemp() + "/tetra.obj", v, f)
    >>> path.read_text().splitlines()[-1]
    'f 2 3 4'
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"path must be a str or pathlib.Path; got {type(path).__name__}.")
    suffix = _suffix(Path(path))
    overwrite = check_bool("overwrite", overwrite)
    v, f = _check_mesh(vertices, faces)
    target = check_overwrite(path, overwrite, what="mesh file")
    data = _obj_bytes(v, f) if suffix == ".obj" else _ply_bytes(v, f)
    with atomic_open(target, "wb") as fh:
        fh.write(data)
    return target


def export_meshes(
    grids: Any,
    folder: str | os.PathLike,
    names: Sequence[str] | None = None,
    fmt: str = "obj",
    level: float = 0.5,
    overwrite: bool = False,
) -> list[Path]:
    """Mesh each occupancy grid by marching cubes and write it to ``folder``.

    Parameters
    ----------
    grids : array-like of shape (n, G, G, G) or (G, G, G)
    folder : str or path-like
        Created if needed.
    names : sequence of str, optional
        File names without suffix, one per grid (default ``object_000``, ...).
    fmt : {"obj", "ply"}, default="obj"
    level : float, default=0.5
    overwrite : bool, default=False
        Replace existing files; otherwise any existing target is refused
        before anything is written.

    Returns
    -------
    list of Path
        One file per grid, in order.

    Raises
    ------
    InputError
        A grid with nothing above ``level`` (named by its index), names of
        the wrong number, or a name that is not a plain file name.

    Examples
    --------
    >>> import tempfile
    >>> g = np.zeros((2, 6, 6, 6)); g[:, 1:5, 1:5, 1:5] = 1
    >>> [p.name for p in export_meshes(g, tempfile.mkdtemp(), fmt="ply")]
    ['object_000.ply', 'object_001.ply']
    """
    arr = check_array("grids", grids, ndim=(3, 4), shape_hint="(n, G, G, G) or (G, G, G)")
    if arr.ndim == 3:
        arr = arr[None]
    fmt = check_choice("fmt", fmt, ("obj", "ply"))
    level = _level(level)
    overwrite = check_bool("overwrite", overwrite)
    if not isinstance(folder, (str, os.PathLike)):
        raise InputTypeError(f"folder must be a str or pathlib.Path; got {type(folder).__name__}.")
    if names is None:
        names = [f"object_{i:03d}" for i in range(len(arr))]
    elif isinstance(names, str) or len(names) != len(arr):
        got = "a single string" if isinstance(names, str) else f"{len(names)} names"
        raise InputError(f"names must give one file name per grid ({len(arr)}); got {got}.")
    names = [str(n) for n in names]
    bad = [n for n in names if not n or Path(n).name != n or n in (".", "..")]
    if bad:
        raise InputError(f"names must be plain file names (no folders); got {bad[0]!r}.")
    if len(set(names)) != len(names):
        raise InputError("names must be distinct; two grids would be written to the same file.")
    empty = np.flatnonzero(~(arr.reshape(len(arr), -1) > level).any(1))
    if len(empty):
        raise InputError(
            f"grids {empty.tolist()[:10]} have no cell above level={level:g}, so they have no "
            "surface to mesh; pass a lower level or leave those objects out."
        )
    out = Path(folder).expanduser()
    targets = [check_overwrite(out / f"{n}.{fmt}", overwrite, what="mesh file") for n in names]
    return [
        write_mesh(t, *_mesh(g, level), overwrite=True) for t, g in zip(targets, arr, strict=True)
    ]
