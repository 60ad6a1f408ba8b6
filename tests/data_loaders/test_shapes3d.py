"""Users' 3D targets: meshes written the way users' files are, voxel grids, and bad files."""

import warnings

import numpy as np
import pytest

from data_loaders.errors import InputError, MissingFileError, UnreadableFileError
from data_loaders.shapes3d import load_shape_targets, mesh_to_occupancy, read_mesh

trimesh = pytest.importorskip("trimesh")

# a unit cube as an exporter writes it: 1-based indices, texture coordinates and
# normals, faces as quads in the "v/vt/vn" form and triangles in the "v//vn" form
CUBE_OBJ = """\
# cube
o Cube
v 0.0 0.0 0.0
v 1.0 0.0 0.0
v 1.0 1.0 0.0
v 0.0 1.0 0.0
v 0.0 0.0 1.0
v 1.0 0.0 1.0
v 1.0 1.0 1.0
v 0.0 1.0 1.0
vt 0.0 0.0
vt 1.0 0.0
vt 1.0 1.0
vt 0.0 1.0
vn 0.0 0.0 -1.0
vn 0.0 0.0 1.0
vn 0.0 -1.0 0.0
vn 0.0 1.0 0.0
vn -1.0 0.0 0.0
vn 1.0 0.0 0.0
usemtl none
s off
f 1/1/1 4/4/1 3/3/1 2/2/1
f 5/1/2 6/2/2 7/3/2 8/4/2
f 1/1/3 2/2/3 6/3/3 5/4/3
f 4//4 8//4 7//4
f 4//4 7//4 3//4
f 1 5 8
f 1 8 4
f 2/1 3/2 7/3 6/4
"""

# a tetrahedron in ASCII OFF
TETRA_OFF = """\
OFF
# a tetrahedron
4 4 6
0 0 0
1 0 0
0 1 0
0 0 1
3 0 2 1
3 0 1 3
3 0 3 2
3 1 2 3
"""

G = 16
CELL_CENTRES_INSIDE_09 = 14  # centres of a 16-cell axis with |c| < 0.9


def _sphere_ply(folder, radius=2.0):
    path = folder / "ball.ply"
    trimesh.creation.icosphere(subdivisions=4, radius=radius).export(path)  # binary PLY
    return path


def test_obj_cube_with_texture_and_normal_indices(tmp_path):
    path = tmp_path / "cube.obj"
    path.write_text(CUBE_OBJ)
    vertices, faces = read_mesh(path)
    assert vertices.dtype == np.float64 and faces.dtype == np.int64
    assert len(faces) == 12 and faces.min() >= 0 and faces.max() < len(vertices)
    np.testing.assert_allclose(vertices.min(axis=0), 0) and np.testing.assert_allclose(
        vertices.max(axis=0), 1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # closed: no warning
        grid = mesh_to_occupancy(vertices, faces, grid_size=G)
    # scaled to [-0.9, 0.9]^3: exactly the cells whose centres lie inside
    assert grid.shape == (G, G, G) and grid.dtype == np.float32
    assert int(grid.sum()) == CELL_CENTRES_INSIDE_09**3
    assert grid[G // 2, G // 2, G // 2] == 1 and grid[0, 0, 0] == 0


def test_binary_ply_sphere_volume(tmp_path):
    path = _sphere_ply(tmp_path)
    assert path.read_bytes().startswith(b"ply\nformat binary")
    grid = load_shape_targets(path, grid_size=32)
    assert grid.shape == (1, 32, 32, 32)
    assert grid.mean() == pytest.approx(4 / 3 * np.pi * 0.9**3 / 8, rel=0.03)
    centres = -1 + (2 * np.arange(32) + 1) / 32
    x, y, z = np.meshgrid(centres, centres, centres, indexing="ij")
    true = (x**2 + y**2 + z**2) < 0.9**2
    assert (grid[0] != true).mean() < 0.01  # disagreements only at the surface


def test_ascii_off_tetrahedron_and_stl(tmp_path):
    off = tmp_path / "tetra.off"
    off.write_text(TETRA_OFF)
    vertices, faces = read_mesh(off)
    assert vertices.shape == (4, 3) and faces.shape == (4, 3)
    grid = mesh_to_occupancy(vertices, faces, grid_size=32)
    # scaled to the corner tetrahedron of [-0.9, 0.9]^3: exactly the cell centres inside it
    c = -1 + (2 * np.arange(32) + 1) / 32 + 0.9
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    inside = (x > 0) & (y > 0) & (z > 0) & (x + y + z < 1.8)
    np.testing.assert_array_equal(grid, inside)
    assert inside.sum() * (2 / 32) ** 3 == pytest.approx(1.8**3 / 6, rel=0.1)
    stl = tmp_path / "tetra.stl"
    trimesh.Trimesh(vertices, faces).export(stl)
    np.testing.assert_array_equal(load_shape_targets(stl, grid_size=32)[0], grid)


def test_box_volume_and_normalize_off(rng):
    box = trimesh.creation.box((0.8, 1.0, 1.2))  # already within the cube, centred
    kept = mesh_to_occupancy(box.vertices, box.faces, grid_size=32, normalize=False)
    assert kept.mean() == pytest.approx(0.8 * 1.0 * 1.2 / 8, rel=0.04)
    moved = mesh_to_occupancy(box.vertices * 3 + 10, box.faces, grid_size=32)
    # scaled to half-extents (0.6, 0.75, 0.9): the largest one is 0.9
    assert moved.mean() == pytest.approx(0.6 * 0.75 * 0.9, rel=0.05)
    rot = trimesh.transformations.random_rotation_matrix(rng.random(3))[:3, :3]
    turned = mesh_to_occupancy(box.vertices @ rot.T, box.faces, grid_size=32, normalize=False)
    assert turned.mean() == pytest.approx(kept.mean(), rel=0.05)


def test_open_mesh_warns_and_fills_its_best():
    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.8)
    with pytest.warns(UserWarning, match="not closed"):
        grid = mesh_to_occupancy(ball.vertices, ball.faces[4:], grid_size=24)
    assert grid.mean() == pytest.approx(4 / 3 * np.pi * 0.9**3 / 8, rel=0.05)


def test_folder_list_and_npz(tmp_path):
    (tmp_path / "a_cube.obj").write_text(CUBE_OBJ)
    grids = np.zeros((2, G, G, G), dtype=bool)
    grids[1, 4:8, 4:8, 4:8] = True
    np.save(tmp_path / "b_grids.npy", grids)
    (tmp_path / "cube.mtl").write_text("newmtl none\n")  # other files are skipped
    out = load_shape_targets(tmp_path, grid_size=G)
    assert out.shape == (3, G, G, G) and out.dtype == np.float32
    assert int(out[0].sum()) == CELL_CENTRES_INSIDE_09**3 and out[2].sum() == 64
    listed = load_shape_targets([tmp_path / "b_grids.npy", tmp_path / "a_cube.obj"], grid_size=G)
    np.testing.assert_array_equal(listed, out[[1, 2, 0]])
    np.savez(tmp_path / "t.npz", occupancy=grids, names=np.array(["x", "y"]))
    np.testing.assert_array_equal(load_shape_targets(tmp_path / "t.npz", grid_size=G), grids)


# ------------------------------------------------------------------ bad files
def test_missing_and_empty_files(tmp_path):
    with pytest.raises(MissingFileError, match="no such file"):
        read_mesh(tmp_path / "nothere.obj")
    with pytest.raises(MissingFileError, match="no such file"):
        load_shape_targets([tmp_path / "nothere.npy"])
    (tmp_path / "empty.ply").write_bytes(b"")
    with pytest.raises(UnreadableFileError, match=r"is empty \(0 bytes\)"):
        read_mesh(tmp_path / "empty.ply")


def test_garbage_truncated_and_foreign_files(tmp_path):
    bad = tmp_path / "garbage.obj"
    bad.write_text("this is not\na mesh at all\n")
    with pytest.raises(UnreadableFileError, match="holds no triangles as a .obj mesh"):
        read_mesh(bad)
    data = _sphere_ply(tmp_path).read_bytes()
    cut = tmp_path / "cut.ply"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableFileError, match=r"cut.ply' cannot be read as a .ply mesh") as e:
        read_mesh(cut)
    assert "\n" not in str(e.value)  # one line
    from skimage import data as skdata
    from skimage.io import imsave

    png = tmp_path / "picture.png"
    imsave(png, skdata.camera()[:32, :32], check_contrast=False)
    renamed = tmp_path / "picture.off"
    renamed.write_bytes(png.read_bytes())
    with pytest.raises(UnreadableFileError, match="picture.off"):
        load_shape_targets(renamed)
    npy = tmp_path / "cut.npy"
    np.save(npy, np.zeros((2, 8, 8, 8)))
    npy.write_bytes(npy.read_bytes()[:200])
    with pytest.raises(UnreadableFileError, match="cannot be read as a NumPy .npy file"):
        load_shape_targets(npy, grid_size=8)


def test_wrong_grids_and_suffixes(tmp_path):
    np.save(tmp_path / "g.npy", np.zeros((3, 16, 16, 16), dtype=np.float32))
    with pytest.raises(
        InputError,
        match=r"shape \(16, 16, 16\), expected \(32, 32, 32\) for "
        r"grid_size=32; resample them to 32 .* or pass the grid_size",
    ):
        load_shape_targets(tmp_path / "g.npy", grid_size=32)
    np.save(tmp_path / "sdf.npy", np.linspace(-1, 1, 8**3).reshape(8, 8, 8))
    with pytest.raises(InputError, match=r"For a signed distance field use \(sdf < 0\)"):
        load_shape_targets(tmp_path / "sdf.npy", grid_size=8)
    np.savez(tmp_path / "two.npz", a=np.zeros((8, 8, 8)), b=np.zeros((8, 8, 8)))
    with pytest.raises(InputError, match="none named 'occupancy'"):
        load_shape_targets(tmp_path / "two.npz", grid_size=8)
    (tmp_path / "mesh.xyz").write_text("1 2 3\n")
    with pytest.raises(InputError, match=r"mesh.xyz' has an unknown suffix; give meshes \(.obj"):
        load_shape_targets(tmp_path / "mesh.xyz")
    with pytest.raises(InputError, match="is not a mesh file; give one of .obj, .ply"):
        read_mesh(tmp_path / "mesh.xyz")
    empty = tmp_path / "nomeshes"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no mesh or grid files"):
        load_shape_targets(empty)


def test_bad_arrays():
    v = np.eye(3)
    with pytest.raises(InputError, match=r"faces index vertices 0..2; got indices in \[1, 3\]"):
        mesh_to_occupancy(v, [[1, 2, 3]])
    with pytest.raises(InputError, match=r"faces \(n_faces, 3\) triangles"):
        mesh_to_occupancy(v, [[0, 1, 2, 0]])
    with pytest.raises(InputError, match="zero extent"):
        mesh_to_occupancy(np.zeros((3, 3)), [[0, 1, 2]])
    with pytest.raises(InputError, match="grid_size must be an integer >= 2"):
        mesh_to_occupancy(v, [[0, 1, 2]], grid_size=1)
