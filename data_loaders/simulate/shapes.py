"""A procedural 3D object set, its renders, and a simulated subject who saw them.

Objects
    Eight categories (:data:`SHAPE_CATEGORIES`): five primitives (``sphere``
    -- an ellipsoid close to a sphere --, ``box`` with rounded edges, capped
    ``cylinder``, ``cone``, ``torus``) and three composites made as the union
    (minimum) of their parts' signed distances: ``table`` (a top slab and
    four legs), ``mug`` (a hollowed cylinder with a torus handle) and
    ``snowman`` (two or three stacked spheres). Each object has its own
    proportions (:attr:`ShapeSet.parts`, four numbers in [0, 1] that set
    radii, lengths and thicknesses), a pose (primitives: a uniformly random
    3D rotation; composites: a turn about the vertical axis plus a tilt of up
    to 20 degrees, so they stand upright), a scale (the radius of the
    object's bounding ball, 0.6 to 0.9) and a colour. The signed distance is
    analytic, evaluated on the grid's cell centres with one vectorised call
    per part; the occupancy is ``sdf < 0``.

Grid
    An object is a ``(G, G, G)`` array over the cube ``[-1, 1]^3``, axes
    (x, y, z) = array axes (0, 1, 2), z pointing up; cell ``i`` has its centre
    at ``-1 + (2 i + 1) / G``. Distances are in the cube's units.

Renders
    One fixed orthographic camera (elevation 30 degrees, azimuth 45 degrees,
    the view spanning [-1, 1] across the image): rays are sampled every half
    cell through the volume with trilinear interpolation of the field, the
    first crossing of the surface gives the depth, and the shade is
    Lambertian from the depth map's normals plus an ambient term, times the
    object's colour, on a mid-grey (0.5) background. The silhouette is where
    a ray hits. :func:`render_occupancy` draws any occupancy grid (for
    example a decoded one, thresholded at 0.5) from the same camera.

Subject
    :func:`simulate_shape_fmri` places voxels in the MNI152 brain in early
    visual ROIs V1-V4 and a medial temporal ROI ``MTL`` (:data:`SHAPE_ROIS`).
    Early voxels have Gaussian population receptive fields over the contrast
    energy of the renders, with sizes growing from V1 to V4, so V1 carries
    fine detail and V4 coarse form; V4 voxels also pool the filled
    silhouette. MTL voxels respond linearly to a semantic embedding of each
    object (its category plus a small part from its size and proportions),
    not to its appearance. Noise, repeats and sessions are those of
    :func:`data_loaders.simulate.fmri.simulate_fmri`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
from scipy import ndimage

from data_loaders._validation import check_array, check_float, check_int
from data_loaders.errors import InputError, InputTypeError
from data_loaders.fmri.geometry import VoxelGeometry
from data_loaders.simulate.fmri import (
    ROIS,
    SimulatedSubject,
    _gaussian_weights,
    _measure,
    _mni,
    _place_rois,
    _retinotopy,
    contrast_energy,
)

__all__ = [
    "SHAPE_CATEGORIES",
    "SHAPE_ROIS",
    "ShapeSet",
    "SimulatedShapeFMRI",
    "make_shapes",
    "render_occupancy",
    "simulate_shape_fmri",
]

#: Object categories: five primitives, then three composites.
SHAPE_CATEGORIES = ("sphere", "box", "cylinder", "cone", "torus", "table", "mug", "snowman")

#: ROI -> (MNI centre of the left-hemisphere ROI in mm, kind, pRF size range or None).
SHAPE_ROIS = {
    **{roi: ROIS[roi] for roi in ("V1", "V2", "V3", "V4")},
    "MTL": ((-28.0, -22.0, -16.0), "semantic", None),
}

_N_PARTS = 4  # proportion parameters per object
_COMPOSITES = ("table", "mug", "snowman")
_BACKGROUND = 0.5
_DEFAULT_COLOR = (0.85, 0.62, 0.38)


# ------------------------------------------------------------- signed distances
def _sdf_ellipsoid(p: np.ndarray, radii) -> np.ndarray:
    """Signed distance to an ellipsoid (exact for a sphere: ``|p| - r``)."""
    radii = np.asarray(radii, dtype=np.float64)
    k0 = np.linalg.norm(p / radii, axis=-1)
    k1 = np.linalg.norm(p / radii**2, axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)


def _sdf_box(p: np.ndarray, half, rounding: float = 0.0) -> np.ndarray:
    """Signed distance to a box of half-extents ``half`` with edges rounded by ``rounding``."""
    q = np.abs(p) - (np.asarray(half, dtype=np.float64) - rounding)
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
    inside = np.minimum(q.max(axis=-1), 0.0)
    return outside + inside - rounding


def _sdf_cylinder(p: np.ndarray, radius: float, half_height: float) -> np.ndarray:
    """Signed distance to a capped cylinder along z, centred at the origin."""
    d = np.stack([np.hypot(p[..., 0], p[..., 1]) - radius, np.abs(p[..., 2]) - half_height], -1)
    return np.minimum(d.max(axis=-1), 0.0) + np.linalg.norm(np.maximum(d, 0.0), axis=-1)


def _sdf_cone(p: np.ndarray, radius: float, half_height: float) -> np.ndarray:
    """Signed distance to a cone along z: base of ``radius`` at ``-half_height``, apex at the top."""
    qx, qy = np.hypot(p[..., 0], p[..., 1]), p[..., 2]
    h, r1 = half_height, radius
    # capped cone with top radius 0 (Quilez's closed form)
    ca_x = qx - np.minimum(qx, np.where(qy < 0.0, r1, 0.0))
    ca_y = np.abs(qy) - h
    k2x, k2y = -r1, 2.0 * h
    t = np.clip(((0.0 - qx) * k2x + (h - qy) * k2y) / (k2x**2 + k2y**2), 0.0, 1.0)
    cb_x, cb_y = qx + k2x * t, qy - h + k2y * t
    sign = np.where((cb_x < 0.0) & (ca_y < 0.0), -1.0, 1.0)
    return sign * np.sqrt(np.minimum(ca_x**2 + ca_y**2, cb_x**2 + cb_y**2))


def _sdf_torus(p: np.ndarray, major: float, minor: float) -> np.ndarray:
    """Signed distance to a torus around the z axis."""
    q = np.hypot(p[..., 0], p[..., 1]) - major
    return np.hypot(q, p[..., 2]) - minor


def _local_shape(category: str, u: np.ndarray):
    """The object in its own frame: an SDF function of points and its bounding radius.

    ``u`` holds the four proportion parameters in [0, 1].
    """
    if category == "sphere":
        radii = np.array([1.0, 0.75 + 0.25 * u[0], 0.75 + 0.25 * u[1]])
        return (lambda p: _sdf_ellipsoid(p, radii)), 1.0
    if category == "box":
        half = 0.45 + 0.55 * u[:3]
        rounding = (0.05 + 0.15 * u[3]) * half.min()
        return (lambda p: _sdf_box(p, half, rounding)), float(np.linalg.norm(half))
    if category == "cylinder":
        r, h = 0.35 + 0.45 * u[0], 0.35 + 0.65 * u[1]
        return (lambda p: _sdf_cylinder(p, r, h)), float(np.hypot(r, h))
    if category == "cone":
        r, h = 0.45 + 0.5 * u[0], 0.55 + 0.45 * u[1]
        return (lambda p: _sdf_cone(p, r, h)), float(np.hypot(r, h))
    if category == "torus":
        minor = 0.2 + 0.25 * u[0]
        return (lambda p: _sdf_torus(p, 1.0, minor)), 1.0 + minor
    if category == "table":
        hx, hy, top = 1.0, 0.55 + 0.4 * u[0], 0.09 + 0.05 * u[3]
        leg_len, leg = 0.5 + 0.7 * u[1], 0.07 + 0.08 * u[2]
        # centred: legs from z = -(leg_len / 2 + top), the slab's top at +(leg_len / 2 + top)
        top_c = np.array([0.0, 0.0, leg_len / 2])
        leg_c = np.array([hx - leg - 0.03, hy - leg - 0.03, 0.0])  # up through the slab

        def table(p):
            slab = _sdf_box(p - top_c, (hx, hy, top), 0.2 * top)
            folded = np.abs(p) * np.array([1.0, 1.0, 0.0]) + p * np.array([0.0, 0.0, 1.0])
            legs = _sdf_cylinder(folded - leg_c, leg, leg_len / 2 + top)  # all 4 at once
            return np.minimum(slab, legs)

        return table, float(np.sqrt(hx**2 + hy**2 + (leg_len / 2 + top) ** 2))
    if category == "mug":
        r, h = 0.5 + 0.25 * u[0], 0.55 + 0.35 * u[1]
        wall = 0.11 + 0.06 * u[3]
        big, tube = 0.3 + 0.15 * u[2], 0.07 + 0.04 * u[3]
        shift = (big + tube) / 2  # centre the bounding box in x
        body_c, handle_c = np.array([-shift, 0.0, 0.0]), np.array([r - shift, 0.0, 0.0])
        cavity_c = np.array([-shift, 0.0, wall + 0.05])

        def mug(p):
            body = _sdf_cylinder(p - body_c, r, h)
            ph = (p - handle_c)[..., [0, 2, 1]]  # the handle's ring lies in the x-z plane
            handle = _sdf_torus(ph, big, tube)
            cavity = _sdf_cylinder(p - cavity_c, r - wall, h)
            return np.maximum(np.minimum(body, handle), -cavity)

        return mug, float(np.sqrt((r + big + tube - shift) ** 2 + r**2 + h**2))
    if category == "snowman":
        radii = [1.0, 0.55 + 0.3 * u[0]]
        if u[3] >= 0.5:
            radii.append(radii[1] * (0.6 + 0.3 * u[1]))
        z = [0.0]
        for a, b in itertools.pairwise(radii):
            z.append(z[-1] + 0.8 * (a + b))
        centre = (z[-1] + radii[-1] - radii[0]) / 2
        z = [zi - centre for zi in z]

        def snowman(p):
            d = [
                np.linalg.norm(p - np.array([0.0, 0.0, zi]), axis=-1) - ri
                for zi, ri in zip(z, radii, strict=True)
            ]
            return np.minimum.reduce(d)

        return snowman, float(max(abs(zi) + ri for zi, ri in zip(z, radii, strict=True)))
    raise InputError(f"category must be one of {SHAPE_CATEGORIES}; got {category!r}.")


def _shape_sdf(category: str, u, rotation, scale: float, points: np.ndarray) -> np.ndarray:
    """Signed distance of one posed object at world ``points`` (..., 3).

    The object's own frame is rotated by ``rotation`` (3, 3) and scaled so its
    bounding ball has radius ``scale``.
    """
    sdf, bound = _local_shape(category, np.asarray(u, dtype=np.float64))
    local = (points @ np.asarray(rotation)) * (bound / scale)  # R^T p, in the local units
    return sdf(local) * (scale / bound)


def _cell_centres(grid_size: int) -> np.ndarray:
    c = -1.0 + (2.0 * np.arange(grid_size) + 1.0) / grid_size
    return np.stack(np.meshgrid(c, c, c, indexing="ij"), axis=-1)


def _pose(rng, category: str) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    if category in _COMPOSITES:
        yaw = rng.uniform(0.0, 360.0)
        tilt_axis = rng.uniform(0.0, 360.0)
        tilt = rng.uniform(0.0, 20.0)
        turn = Rotation.from_euler("z", yaw, degrees=True)
        lean = Rotation.from_rotvec(
            np.deg2rad(tilt)
            * np.array([np.cos(np.deg2rad(tilt_axis)), np.sin(np.deg2rad(tilt_axis)), 0.0])
        )
        return (lean * turn).as_matrix()
    return Rotation.random(random_state=rng).as_matrix()


def _colors(rng, n: int) -> np.ndarray:
    from skimage.color import hsv2rgb

    hsv = np.stack(
        [rng.uniform(0, 1, n), rng.uniform(0.45, 0.8, n), rng.uniform(0.8, 1.0, n)], axis=1
    )
    return hsv2rgb(hsv[:, None, :])[:, 0].astype(np.float32)


# ------------------------------------------------------------------ rendering
def _camera(elevation: float, azimuth: float):
    el, az = np.deg2rad(elevation), np.deg2rad(azimuth)
    toward = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    right = np.array([-np.sin(az), np.cos(az), 0.0])
    up = np.cross(toward, right)
    return toward, right, up


def _render_fields(
    fields_: np.ndarray,
    outside: float,
    image_size: int,
    colors: np.ndarray,
    elevation: float,
    azimuth: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast fields that are negative inside; ``outside`` fills beyond the grid."""
    n, g = fields_.shape[0], fields_.shape[1]
    toward, right, up = _camera(elevation, azimuth)
    step = 1.0 / g  # half a cell
    pix = -1.0 + (2.0 * np.arange(image_size) + 1.0) / image_size
    a, b = pix[None, :], -pix[:, None]  # image columns go right, rows go down
    plane = a[..., None] * right + b[..., None] * up  # (H, W, 3), through the cube's centre
    centres = _cell_centres(g)
    pixel = 2.0 / image_size
    light = np.array([-0.45, 0.55, 0.7])
    light /= np.linalg.norm(light)
    sil = np.zeros((n, image_size, image_size), dtype=np.float32)
    img = np.full((n, image_size, image_size, 3), _BACKGROUND, dtype=np.float32)
    for i in range(n):
        inside_cells = fields_[i] < 0
        if not inside_cells.any():
            continue
        # march only through the ball that holds the object
        reach = float(np.linalg.norm(centres[inside_cells], axis=1).max()) + 2.0 / g
        t = np.arange(0.0, 2 * reach + step, step)
        rays = np.linalg.norm(plane, axis=-1) <= reach  # the pixels that can see it
        pts = plane[rays][:, None, :] + (reach - t)[None, :, None] * toward  # (rays, S, 3)
        coords = ((pts + 1.0) * g / 2.0 - 0.5).reshape(-1, 3).T
        f = np.full((image_size, image_size, len(t)), outside)
        f[rays] = ndimage.map_coordinates(
            fields_[i], coords, order=1, mode="constant", cval=outside
        ).reshape(-1, len(t))
        inside = f < 0
        hit = inside.any(axis=-1)
        if not hit.any():
            continue
        k = inside.argmax(axis=-1)
        k0 = np.maximum(k - 1, 0)
        f0 = np.take_along_axis(f, k0[..., None], -1)[..., 0]
        f1 = np.take_along_axis(f, k[..., None], -1)[..., 0]
        frac = np.where(k > 0, f0 / np.where(f0 - f1 > 0, f0 - f1, 1.0), 0.0)
        height = -(t[k0] + np.clip(frac, 0.0, 1.0) * (t[1] - t[0]) * (k > 0))
        # fill the background with the nearest surface height so edges keep their slope
        idx = ndimage.distance_transform_edt(~hit, return_distances=False, return_indices=True)
        height = height[idx[0], idx[1]]
        # smooth over about half a cell so the grid's steps do not show in the shading
        height = ndimage.gaussian_filter(height, 0.5 * image_size / g)
        dh_drow, dh_dcol = np.gradient(height, pixel)
        normal = np.stack([-dh_dcol, dh_drow, np.ones_like(height)], axis=-1)
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        shade = 0.3 + 0.7 * np.clip(normal @ light, 0.0, 1.0)
        sil[i] = hit
        img[i][hit] = (shade[hit, None] * colors[i]).astype(np.float32)
    return sil, np.clip(img, 0.0, 1.0)


def render_occupancy(
    grids,
    image_size: int = 64,
    colors=None,
    elevation: float = 30.0,
    azimuth: float = 45.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Render occupancy grids (or probabilities, cut at 0.5) from the stimuli's camera.

    The camera is the one :func:`make_shapes` uses, so decoded objects can be
    drawn beside the true ones. Rays are sampled every half cell with
    trilinear interpolation of the occupancy; the surface is where it first
    crosses 0.5.

    Parameters
    ----------
    grids : array of shape (n, G, G, G) or (G, G, G)
        Occupancy in [0, 1] over the cube [-1, 1]^3 (axes x, y, z; z up).
    image_size : int, default=64
        Side of the images in pixels (>= 8); they span [-1, 1] of the view.
    colors : array of shape (3,) or (n, 3) in [0, 1], optional
        The objects' RGB colour; a light orange by default.
    elevation, azimuth : float, default=30.0, 45.0
        Camera angles in degrees (orthographic; elevation above the x-y
        plane, azimuth from the x axis towards y).

    Returns
    -------
    silhouettes : ndarray of shape (n, image_size, image_size), float32
        1 where a ray hits the object.
    images : ndarray of shape (n, image_size, image_size, 3), float32 in [0, 1]
        Shaded views on a mid-grey (0.5) background.

    Raises
    ------
    InputError
        Grids that are not cubes of side >= 2, colours of the wrong shape or
        outside [0, 1], an image size below 8.

    Examples
    --------
    >>> centres = -1 + (2 * np.arange(16) + 1) / 16
    >>> x, y, z = np.meshgrid(centres, centres, centres, indexing="ij")
    >>> ball = (x**2 + y**2 + z**2 < 0.5**2).astype(np.float32)
    >>> sil, img = render_occupancy(ball, image_size=32)
    >>> sil.shape, img.shape
    ((1, 32, 32), (1, 32, 32, 3))
    >>> round(float(sil.mean()), 1)  # a disc of radius 0.5 in a view of side 2
    0.2
    """
    grids = check_array("grids", grids, ndim=(3, 4), shape_hint="(n, G, G, G)", dtype=np.float32)
    if grids.ndim == 3:
        grids = grids[None]
    g = grids.shape[1]
    if grids.shape[1:] != (g, g, g) or g < 2:
        raise InputError(
            f"grids must be cubes (n, G, G, G) with G >= 2; got shape {grids.shape}. Give "
            "occupancy grids with equal sides."
        )
    image_size = check_int("image_size", image_size, minimum=8)
    elevation = check_float("elevation", elevation)
    azimuth = check_float("azimuth", azimuth)
    colors = _check_colors(colors, len(grids))
    return _render_fields(0.5 - grids, 0.5, image_size, colors, elevation, azimuth)


def _check_colors(colors, n: int) -> np.ndarray:
    if colors is None:
        return np.tile(np.asarray(_DEFAULT_COLOR, dtype=np.float32), (n, 1))
    colors = check_array("colors", colors, ndim=(1, 2), shape_hint="(n, 3)", dtype=np.float32)
    if colors.ndim == 1:
        colors = colors[None]
    if colors.shape[1] != 3 or len(colors) not in (1, n):
        raise InputError(
            f"colors must be (3,) or (n, 3) with n = {n} grids; got shape {colors.shape}."
        )
    if colors.min() < 0 or colors.max() > 1:
        raise InputError(
            f"colors must be RGB values in [0, 1]; got values in [{colors.min():.3g}, "
            f"{colors.max():.3g}]. Divide 8-bit colours by 255."
        )
    return np.broadcast_to(colors, (n, 3))


# ------------------------------------------------------------------ shape set
def _unit_rows(a: np.ndarray) -> np.ndarray:
    """Rows of unit length, orthogonal when there are no more rows than columns."""
    if a.shape[0] <= a.shape[1]:
        q, r = np.linalg.qr(a.T)
        return (q * np.sign(np.diag(r))).T
    return a / np.linalg.norm(a, axis=1, keepdims=True)


@dataclass
class ShapeSet:
    """Procedural 3D objects with their signed distances, poses and renders.

    Made by :func:`make_shapes`; every array has one row per object.

    Attributes
    ----------
    occupancy : ndarray of shape (n, G, G, G), float32
        1 inside (``sdf < 0``), 0 outside.
    sdf : ndarray of shape (n, G, G, G), float32
        Signed distance at the cell centres, negative inside, in the cube's
        units (the cube is [-1, 1]^3).
    categories : ndarray of shape (n,), int64
        Index into :attr:`category_names`.
    category_names : tuple of str
    rotations : ndarray of shape (n, 3, 3)
        Rotation from each object's own frame to the cube's.
    scales : ndarray of shape (n,)
        Radius of each object's bounding ball (cube units).
    parts : ndarray of shape (n, 4), float32 in [0, 1]
        Proportion parameters (radii, lengths, thicknesses; their meaning
        depends on the category).
    colors : ndarray of shape (n, 3), float32 in [0, 1]
    silhouettes : ndarray of shape (n, H, W), float32
    images : ndarray of shape (n, H, W, 3), float32 in [0, 1]
        Shaded renders: the stimuli a simulated subject saw.

    Examples
    --------
    >>> shapes = make_shapes(8, grid_size=8, image_size=16, seed=0)
    >>> len(shapes), shapes.grid_size, shapes.image_size
    (8, 8, 16)
    >>> sorted(shapes.category_names[c] for c in shapes.categories)[:3]
    ['box', 'cone', 'cylinder']
    >>> shapes.subset([0, 2]).occupancy.shape
    (2, 8, 8, 8)
    """

    occupancy: np.ndarray
    sdf: np.ndarray
    categories: np.ndarray
    category_names: tuple[str, ...]
    rotations: np.ndarray
    scales: np.ndarray
    parts: np.ndarray
    colors: np.ndarray
    silhouettes: np.ndarray
    images: np.ndarray

    def __len__(self) -> int:
        return len(self.occupancy)

    @property
    def grid_size(self) -> int:
        """Side ``G`` of the occupancy grids."""
        return int(self.occupancy.shape[1])

    @property
    def image_size(self) -> int:
        """Side of the rendered images in pixels."""
        return int(self.images.shape[1])

    def semantic_embedding(self, dim: int = 16, seed: int = 0) -> np.ndarray:
        """A caption-embedding analogue: what the object is, then a little of how it looks.

        A fixed random prototype per category (unit length; the eight are
        orthogonal when ``dim >= 8``) plus a small attribute part (size and
        proportions through a fixed random map, a third of the prototype's
        length at most), then scaled to unit norm.
        It depends on the category *name*, so it is the same for a category
        whatever subset of categories a set holds, and it ignores colour and
        pose.

        Parameters
        ----------
        dim : int, default=16
            Length of each embedding (>= 2).
        seed : int, default=0
            Seed of the prototypes and of the attribute map.

        Returns
        -------
        ndarray of shape (n, dim), float32, rows of unit norm

        Examples
        --------
        >>> shapes = make_shapes(4, grid_size=8, image_size=16)
        >>> emb = shapes.semantic_embedding(dim=6)
        >>> emb.shape, bool(np.allclose(np.linalg.norm(emb, axis=1), 1))
        ((4, 6), True)
        """
        dim = check_int("dim", dim, minimum=2)
        seed = check_int("seed", seed, minimum=0)
        rng = np.random.default_rng([seed, 7])
        protos = _unit_rows(rng.standard_normal((len(SHAPE_CATEGORIES), dim)))
        attr_map = _unit_rows(rng.standard_normal((1 + _N_PARTS, dim)))
        # attributes each within [-1, 1]: their part is at most a third of a prototype's length
        attr_map /= 3 * np.sqrt(1 + _N_PARTS)
        global_idx = np.array([SHAPE_CATEGORIES.index(c) for c in self.category_names])
        attrs = np.concatenate(
            [(self.scales[:, None] - 0.75) / 0.15, (self.parts - 0.5) / 0.5], axis=1
        )  # each roughly in [-1, 1]
        emb = protos[global_idx[self.categories]] + attrs @ attr_map
        return (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)

    def subset(self, index) -> ShapeSet:
        """The objects at ``index`` (integer indices, a boolean mask or a slice).

        Returns
        -------
        ShapeSet
        """
        if not isinstance(index, slice):
            index = np.asarray(index)
            if index.dtype == bool:
                if index.shape != (len(self),):
                    raise InputError(
                        f"index as a mask must have one entry per object ({len(self)}); got "
                        f"shape {index.shape}."
                    )
            elif not np.issubdtype(index.dtype, np.integer):
                raise InputTypeError(
                    f"index must be integers, a boolean mask or a slice; got dtype {index.dtype}."
                )
            elif index.size and (index.min() < -len(self) or index.max() >= len(self)):
                raise InputError(
                    f"index out of range for {len(self)} objects; got values in "
                    f"[{index.min()}, {index.max()}]."
                )
        values = {
            f.name: (
                getattr(self, f.name)
                if f.name == "category_names"
                else getattr(self, f.name)[index]
            )
            for f in fields(self)
        }
        return ShapeSet(**values)


def _check_categories(categories) -> tuple[str, ...]:
    if categories is None:
        return SHAPE_CATEGORIES
    if isinstance(categories, str):
        categories = [categories]
    elif isinstance(categories, np.ndarray):
        categories = categories.tolist()
    if not isinstance(categories, Sequence) or not categories:
        raise InputError(
            f"categories must be None or a non-empty list of names from {SHAPE_CATEGORIES}; "
            f"got {categories!r}."
        )
    for c in categories:
        if c not in SHAPE_CATEGORIES:
            raise InputError(
                f"categories: unknown category {c!r}; choose from {', '.join(SHAPE_CATEGORIES)}."
            )
    if len(set(categories)) != len(categories):
        raise InputError(f"categories must not repeat a name; got {list(categories)}.")
    return tuple(categories)


def make_shapes(
    n_shapes: int = 240,
    grid_size: int = 32,
    image_size: int = 64,
    categories=None,
    seed: int | None = 0,
) -> ShapeSet:
    """Make a balanced, shuffled set of procedural 3D objects and render them.

    Parameters
    ----------
    n_shapes : int, default=240
        Number of objects (>= 1); categories get equal counts (within one).
    grid_size : int, default=32
        Side ``G`` of the occupancy and SDF grids (>= 8).
    image_size : int, default=64
        Side of the renders in pixels (>= 16).
    categories : sequence of str, optional
        Names from :data:`SHAPE_CATEGORIES`; all eight by default.
    seed : int or None, default=0
        The same seed gives the same set.

    Returns
    -------
    ShapeSet

    Raises
    ------
    InputError
        A count below 1, a grid below 8 cells, an image below 16 pixels, an
        unknown or repeated category name.

    Examples
    --------
    >>> shapes = make_shapes(16, grid_size=16, image_size=32, seed=1)
    >>> shapes.occupancy.shape, shapes.images.shape
    ((16, 16, 16, 16), (16, 32, 32, 3))
    >>> np.bincount(shapes.categories).tolist()
    [2, 2, 2, 2, 2, 2, 2, 2]
    >>> bool((shapes.occupancy.reshape(16, -1).sum(axis=1) > 0).all())
    True
    """
    n_shapes = check_int("n_shapes", n_shapes, minimum=1)
    grid_size = check_int("grid_size", grid_size, minimum=8)
    image_size = check_int("image_size", image_size, minimum=16)
    names = _check_categories(categories)
    seed = check_int("seed", seed, allow_none=True)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n_shapes) % len(names)).astype(np.int64)
    points = _cell_centres(grid_size)
    g = grid_size
    sdf = np.empty((n_shapes, g, g, g), dtype=np.float32)
    rotations = np.empty((n_shapes, 3, 3))
    scales = np.empty(n_shapes)
    parts = np.empty((n_shapes, _N_PARTS), dtype=np.float32)
    for i, label in enumerate(labels):
        for _attempt in range(20):  # redraw the rare object too thin for the grid
            u = rng.uniform(0.0, 1.0, _N_PARTS)
            rot, scale = _pose(rng, names[label]), rng.uniform(0.6, 0.9)
            d = _shape_sdf(names[label], u, rot, scale, points)
            if (d < 0).any():
                break
        sdf[i], rotations[i], scales[i], parts[i] = d, rot, scale, u
    colors = _colors(rng, n_shapes)
    silhouettes, images = _render_fields(sdf, 1.0, image_size, colors, 30.0, 45.0)
    return ShapeSet(
        occupancy=(sdf < 0).astype(np.float32),
        sdf=sdf,
        categories=labels,
        category_names=names,
        rotations=rotations,
        scales=scales,
        parts=parts,
        colors=colors,
        silhouettes=silhouettes,
        images=images,
    )


# ------------------------------------------------------------------ the subject
@dataclass
class SimulatedShapeFMRI:
    """A simulated shape experiment: objects shown to several subjects.

    Attributes
    ----------
    shapes : ShapeSet
        The objects and their renders (the stimuli).
    subjects : list of SimulatedSubject
        One per subject (:class:`data_loaders.simulate.fmri.SimulatedSubject`),
        so ``FMRIDataset.from_simulation(sim.subjects[0], sim.shapes)`` makes
        a dataset. For MTL voxels ``selectivity`` holds their weights on
        :attr:`semantic` (for early voxels it is 0).
    semantic : ndarray of shape (n_shapes, d), float32
        The embedding MTL voxels respond to
        (``shapes.semantic_embedding()``).
    """

    shapes: ShapeSet
    subjects: list[SimulatedSubject] = field(default_factory=list)
    semantic: np.ndarray | None = None


def _zscore_columns(a: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=0)
    return a / (a.std(axis=0) + 1e-12)


def simulate_shape_fmri(
    shapes: ShapeSet | None = None,
    n_shapes: int = 240,
    n_subjects: int = 1,
    n_repeats: int = 2,
    voxels_per_roi: int = 40,
    snr: float = 1.0,
    n_sessions: int = 1,
    grid_size: int = 32,
    image_size: int = 64,
    seed: int | None = 0,
) -> SimulatedShapeFMRI:
    """Simulate single-trial betas of subjects viewing renders of 3D objects.

    Early visual voxels (V1-V4) pool the contrast energy of the renders
    (:func:`~data_loaders.simulate.fmri.contrast_energy`) through Gaussian
    population receptive fields whose sizes grow from V1 to V4; V4 voxels
    mix in, with equal variance, the same pooling of the filled silhouette
    (coarse form). MTL voxels respond linearly to
    :meth:`ShapeSet.semantic_embedding` (category plus size and proportions),
    not to colour, shading or pose. Each voxel's noise-free response is
    scaled to an amplitude (0.5-2 % signal change) over the set; each trial
    adds Gaussian noise at the voxel's SNR and a per-session offset, as in
    :func:`~data_loaders.simulate.fmri.simulate_fmri`.

    Parameters
    ----------
    shapes : ShapeSet, optional
        The objects shown; made with :func:`make_shapes` (``n_shapes``,
        ``grid_size``, ``image_size``) when None.
    n_shapes : int, default=240
    n_subjects : int, default=1
    n_repeats : int, default=2
        Trials per object per subject.
    voxels_per_roi : int, default=40
        Typical voxels per ROI and hemisphere (each subject varies it by up
        to +-25 %).
    snr : float, default=1.0
        Median single-trial SNR (signal variance over noise variance); voxels
        spread from a third to three times it.
    n_sessions : int, default=1
        Trials are split into this many sessions, each with its own offset
        per voxel.
    grid_size, image_size : int, default=32, 64
        For the objects made when ``shapes`` is None.
    seed : int or None, default=0

    Returns
    -------
    SimulatedShapeFMRI

    Raises
    ------
    InputError
        A count below 1, an SNR that is not a finite number > 0, ``shapes``
        that is not a ShapeSet.

    Examples
    --------
    >>> sim = simulate_shape_fmri(n_shapes=16, grid_size=8, image_size=16, voxels_per_roi=5)
    >>> subject = sim.subjects[0]
    >>> subject.betas.shape[0], sorted(set(subject.roi_labels.tolist()))
    (32, ['MTL', 'V1', 'V2', 'V3', 'V4'])
    """
    n_subjects = check_int("n_subjects", n_subjects, minimum=1)
    n_repeats = check_int("n_repeats", n_repeats, minimum=1)
    voxels_per_roi = check_int("voxels_per_roi", voxels_per_roi, minimum=1)
    n_sessions = check_int("n_sessions", n_sessions, minimum=1)
    snr = check_float("snr", snr, minimum=0.0, strict_minimum=True)
    seed = check_int("seed", seed, allow_none=True)
    if shapes is None:
        n_shapes = check_int("n_shapes", n_shapes, minimum=1)
        grid_size = check_int("grid_size", grid_size, minimum=8)
        image_size = check_int("image_size", image_size, minimum=16)
    elif not isinstance(shapes, ShapeSet):
        raise InputTypeError(
            f"shapes must be a ShapeSet (from make_shapes) or None; got {type(shapes).__name__}."
        )
    rng = np.random.default_rng(seed)
    if shapes is None:
        shapes = make_shapes(n_shapes, grid_size, image_size, seed=int(rng.integers(2**31)))
    n_stim, size = len(shapes), shapes.image_size
    energy = contrast_energy(shapes.images).reshape(n_stim, -1)
    form = shapes.silhouettes.reshape(n_stim, -1)
    semantic = shapes.semantic_embedding()
    brain, affine = _mni()

    subjects = []
    for s in range(n_subjects):
        counts = {
            roi: max(2, round(voxels_per_roi * rng.uniform(0.75, 1.25))) for roi in SHAPE_ROIS
        }
        ijk, xyz, labels, hemis = _place_rois(
            rng, brain, affine, counts, jitter_mm=3.0, rois=SHAPE_ROIS
        )
        n_vox = len(labels)
        centers = np.full((n_vox, 2), np.nan)
        sizes = np.full(n_vox, np.nan)
        selectivity = np.zeros((n_vox, semantic.shape[1]))
        drive = np.zeros((n_stim, n_vox))
        for roi, (_, kind, spec) in SHAPE_ROIS.items():
            for hemi in ("left", "right"):
                sel = (labels == roi) & (hemis == hemi)
                if kind == "early":
                    c_mm = xyz[sel].mean(axis=0)
                    centers[sel], sizes[sel] = _retinotopy(rng, xyz[sel], hemis[sel], spec, c_mm)
                else:
                    selectivity[sel] = rng.standard_normal((sel.sum(), semantic.shape[1]))
        early = ~np.isnan(sizes)
        w = _gaussian_weights(centers[early], sizes[early], size).reshape(early.sum(), -1)
        drive[:, early] = energy @ w.T
        v4 = np.flatnonzero(labels == "V4")
        w4 = _gaussian_weights(centers[v4], sizes[v4], size).reshape(len(v4), -1)
        drive[:, v4] = np.sqrt(0.5) * (_zscore_columns(drive[:, v4]) + _zscore_columns(form @ w4.T))
        drive[:, ~early] = semantic @ selectivity[~early].T
        measured = _measure(rng, _zscore_columns(drive), snr, n_repeats, n_sessions)
        subjects.append(
            SimulatedSubject(
                name=f"sub-{s + 1:02d}",
                geometry=VoxelGeometry(tuple(int(v) for v in brain.shape), affine, ijk),
                roi_labels=labels,
                hemisphere=hemis,
                prf_centers=centers,
                prf_sizes=sizes,
                selectivity=selectivity,
                **measured,
            )
        )
    return SimulatedShapeFMRI(shapes=shapes, subjects=subjects, semantic=semantic)
