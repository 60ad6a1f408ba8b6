"""Marching-cubes meshes: sphere area and volume, files read back by trimesh, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from neuro.decoding.mesh import export_meshes, occupancy_to_mesh, write_mesh
from neuro.errors import InputError, OutputExistsError


def _distance_from_centre(g):
    c = -1.0 + (2.0 * np.arange(g) + 1.0) / g
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    return np.sqrt(x**2 + y**2 + z**2)


def soft_sphere(g, r):
    """Anti-aliased occupancy: 0.5 on the sphere, ramping over one cell."""
    return np.clip(0.5 - (_distance_from_centre(g) - r) / (2.0 / g), 0.0, 1.0).astype(np.float32)


def _enclosed_volume(v, f):
    """Divergence theorem: sum of signed tetrahedra from the origin."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def _area(v, f):
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return float(np.linalg.norm(np.cross(b - a, c - a), axis=1).sum() / 2.0)


@pytest.mark.parametrize("r", [0.5, 0.7])
def test_sphere_mesh_area_and_volume(r):
    v, f = occupancy_to_mesh(soft_sphere(32, r))
    assert _area(v, f) == pytest.approx(4 * np.pi * r**2, rel=0.02)
    assert _enclosed_volume(v, f) == pytest.approx(4 / 3 * np.pi * r**3, rel=0.02)  # > 0: outward
    assert np.linalg.norm(v, axis=1) == pytest.approx(np.full(len(v), r), abs=0.02)
    # a binary (staircase) sphere: the volume holds, the area is a little larger
    hard = (_distance_from_centre(32) <= r).astype(np.float32)
    v, f = occupancy_to_mesh(hard)
    assert _enclosed_volume(v, f) == pytest.approx(4 / 3 * np.pi * r**3, rel=0.03)
    assert 1.0 < _area(v, f) / (4 * np.pi * r**2) < 1.12


def test_object_touching_the_border_closes():
    v, f = occupancy_to_mesh(np.ones((5, 6, 7)))
    mesh = trimesh.Trimesh(v, f, process=False)
    assert mesh.is_watertight and mesh.volume > 0
    np.testing.assert_allclose(v.min(0), -1.0)
    np.testing.assert_allclose(v.max(0), 1.0)


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".PLY"])
def test_written_mesh_reads_back_with_trimesh(tmp_path, suffix):
    v, f = occupancy_to_mesh(soft_sphere(16, 0.6))
    path = write_mesh(tmp_path / f"sphere{suffix}", v, f)
    assert path.exists() and not list(tmp_path.glob(".*tmp"))  # no temporary file left
    mesh = trimesh.load(path, process=False, force="mesh")
    np.testing.assert_allclose(mesh.vertices, v, atol=1e-6)
    assert np.array_equal(mesh.faces, f)
    assert mesh.is_watertight and mesh.volume > 0


def test_write_refuses_overwrite_and_unknown_suffix(tmp_path):
    v, f = occupancy_to_mesh(soft_sphere(8, 0.6))
    path = write_mesh(tmp_path / "a.obj", v, f)
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="exists; pass overwrite=True"):
        write_mesh(path, v[:3], f[:1])
    assert path.read_bytes() == before
    write_mesh(path, v[:3], np.array([[0, 1, 2]]), overwrite=True)
    assert path.read_text().count("\nv ") == 3
    with pytest.raises(InputError, match=r"path must end in \.obj or \.ply.*'.*a\.stl'"):
        write_mesh(tmp_path / "a.stl", v, f)
    with pytest.raises(InputError, match=r"faces index vertices 0\.\.2"):
        write_mesh(tmp_path / "b.obj", v[:3], np.array([[0, 1, 3]]))
    with pytest.raises(InputError, match=r"vertices must have shape \(v, 3\)"):
        write_mesh(tmp_path / "b.obj", v[:, :2], f)


def test_empty_grid_raises():
    with pytest.raises(InputError, match=r"grid has no cell above level=0\.5 .*pass a lower level"):
        occupancy_to_mesh(np.full((6, 6, 6), 0.4))
    _, f = occupancy_to_mesh(np.full((6, 6, 6), 0.4), level=0.3)
    assert len(f) > 0
    with pytest.raises(InputError, match="level must be > 0"):
        occupancy_to_mesh(np.ones((4, 4, 4)), level=0.0)
    with pytest.raises(InputError, match=r"grid must be 3D \(G, G, G\)"):
        occupancy_to_mesh(np.ones((2, 4, 4, 4)))


def test_export_meshes(tmp_path):
    grids = np.stack([soft_sphere(12, 0.5), soft_sphere(12, 0.8)])
    paths = export_meshes(grids, tmp_path / "out", names=["small", "big"], fmt="ply")
    assert [p.name for p in paths] == ["small.ply", "big.ply"]
    vols = [trimesh.load(p, process=False, force="mesh").volume for p in paths]
    assert vols[0] < vols[1]
    with pytest.raises(OutputExistsError):
        export_meshes(grids, tmp_path / "out", names=["new", "big"], fmt="ply")
    assert not (tmp_path / "out" / "new.ply").exists()  # refused before writing anything
    assert len(export_meshes(grids, tmp_path / "out", fmt="ply", overwrite=False)) == 2
    grids[1] = 0.0
    with pytest.raises(InputError, match=r"grids \[1\] have no cell above level"):
        export_meshes(grids, tmp_path / "other")
    with pytest.raises(InputError, match=r"names must give one file name per grid \(2\)"):
        export_meshes(grids, tmp_path / "other", names=["a"])
    with pytest.raises(InputError, match="fmt must be one of 'obj', 'ply'"):
        export_meshes(grids, tmp_path / "other", fmt="stl")
