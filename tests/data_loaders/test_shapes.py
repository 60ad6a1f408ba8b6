"""The procedural 3D shape set, its renders and the simulated subject who saw them."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from sklearn.linear_model import RidgeClassifierCV, RidgeCV

from data_loaders.errors import InputError, InputTypeError
from data_loaders.fmri import FMRIDataset
from data_loaders.simulate.shapes import (
    SHAPE_CATEGORIES,
    SHAPE_ROIS,
    ShapeSet,
    _cell_centres,
    _sdf_box,
    _sdf_cone,
    _sdf_cylinder,
    _sdf_ellipsoid,
    _sdf_torus,
    _shape_sdf,
    make_shapes,
    render_occupancy,
    simulate_shape_fmri,
)

G = 32
POINTS = _cell_centres(G)


def _fraction(sdf):
    return float((sdf < 0).mean())


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(24, grid_size=16, image_size=32, seed=0)


@pytest.fixture(scope="module")
def sim():
    return simulate_shape_fmri(
        n_shapes=160, grid_size=16, image_size=32, voxels_per_roi=20, n_repeats=2, seed=0
    )


# ------------------------------------------------------------ signed distances
def test_sphere_sdf_is_the_distance(rng):
    p = rng.uniform(-1, 1, (500, 3))
    np.testing.assert_allclose(_sdf_ellipsoid(p, (0.6, 0.6, 0.6)), np.linalg.norm(p, axis=1) - 0.6)


@pytest.mark.parametrize(
    ("sdf", "volume"),
    [
        (lambda p: _sdf_ellipsoid(p, (0.6, 0.6, 0.6)), 4 / 3 * np.pi * 0.6**3),
        (lambda p: _sdf_ellipsoid(p, (0.7, 0.5, 0.4)), 4 / 3 * np.pi * 0.7 * 0.5 * 0.4),
        # flat faces on cell boundaries (multiples of 1/16), or the grid rounds them
        (lambda p: _sdf_box(p, (0.6875, 0.5, 0.3125)), 8 * 0.6875 * 0.5 * 0.3125),
        (lambda p: _sdf_cylinder(p, 0.5, 0.625), np.pi * 0.5**2 * 1.25),
        (lambda p: _sdf_cone(p, 0.6, 0.6875), np.pi * 0.6**2 * 1.375 / 3),
        (lambda p: _sdf_torus(p, 0.6, 0.25), 2 * np.pi**2 * 0.6 * 0.25**2),
    ],
    ids=["sphere", "ellipsoid", "box", "cylinder", "cone", "torus"],
)
def test_occupancy_volume_matches_the_analytic_volume(sdf, volume):
    assert _fraction(sdf(POINTS)) == pytest.approx(volume / 8, rel=0.04)


def test_cone_and_cylinder_signs_match_their_inside_tests(rng):
    p = rng.uniform(-1, 1, (4000, 3))
    rho, z = np.hypot(p[:, 0], p[:, 1]), p[:, 2]
    cone_inside = (np.abs(z) < 0.7) & (rho < 0.6 * (0.7 - z) / 1.4)
    np.testing.assert_array_equal(_sdf_cone(p, 0.6, 0.7) < 0, cone_inside)
    np.testing.assert_array_equal(_sdf_cylinder(p, 0.5, 0.6) < 0, (rho < 0.5) & (np.abs(z) < 0.6))
    # outside, the distance to the cylinder's side is exact
    side = (np.abs(z) < 0.6) & (rho > 0.5)
    np.testing.assert_allclose(_sdf_cylinder(p, 0.5, 0.6)[side], rho[side] - 0.5)


@pytest.mark.parametrize("category", SHAPE_CATEGORIES)
def test_rotation_leaves_volume_unchanged(category):
    u = np.full(4, 0.6)
    rotations = Rotation.random(4, random_state=1).as_matrix()  # axis-aligned poses are
    volumes = [_fraction(_shape_sdf(category, u, r, 0.8, POINTS)) for r in rotations]  # rounded
    assert max(volumes) == pytest.approx(min(volumes), rel=0.05)


@pytest.mark.parametrize("category", SHAPE_CATEGORIES)
def test_every_category_fits_its_bounding_ball(category):
    for u in (np.zeros(4), np.ones(4), np.full(4, 0.5)):
        inside = _shape_sdf(category, u, np.eye(3), 0.8, POINTS) < 0
        assert inside.any()
        assert np.linalg.norm(POINTS[inside], axis=1).max() <= 0.8 + 1e-9


# ------------------------------------------------------------------ the set
def test_set_shapes_types_and_fit(shapes):
    n = len(shapes)
    assert (shapes.grid_size, shapes.image_size) == (16, 32)
    assert shapes.occupancy.shape == shapes.sdf.shape == (n, 16, 16, 16)
    assert shapes.occupancy.dtype == shapes.sdf.dtype == np.float32
    np.testing.assert_array_equal(shapes.occupancy, (shapes.sdf < 0).astype(np.float32))
    assert shapes.parts.shape == (n, 4) and shapes.parts.min() >= 0 and shapes.parts.max() <= 1
    assert shapes.images.shape == (n, 32, 32, 3) and shapes.silhouettes.shape == (n, 32, 32)
    assert shapes.images.min() >= 0 and shapes.images.max() <= 1
    np.testing.assert_allclose(
        shapes.rotations @ shapes.rotations.transpose(0, 2, 1),
        np.broadcast_to(np.eye(3), (n, 3, 3)),
        atol=1e-9,
    )
    volumes = shapes.occupancy.reshape(n, -1).sum(axis=1)
    assert volumes.min() > 0  # every object is non-empty
    occupied = _cell_centres(16)[shapes.occupancy.any(axis=0) > 0]
    assert np.linalg.norm(occupied, axis=1).max() <= 0.9  # and inside the ball of radius 0.9
    assert shapes.silhouettes.reshape(n, -1).sum(axis=1).min() > 0


def test_categories_are_balanced_and_shuffled():
    s = make_shapes(20, grid_size=8, image_size=16, seed=3)
    counts = np.bincount(s.categories, minlength=8)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 20
    assert not np.array_equal(s.categories, np.arange(20) % 8)
    two = make_shapes(6, grid_size=8, image_size=16, categories=["torus", "mug"], seed=3)
    assert two.category_names == ("torus", "mug")
    assert np.bincount(two.categories).tolist() == [3, 3]


def test_same_seed_same_set_and_another_seed_another():
    a = make_shapes(8, grid_size=8, image_size=16, seed=5)
    b = make_shapes(8, grid_size=8, image_size=16, seed=5)
    c = make_shapes(8, grid_size=8, image_size=16, seed=6)
    for name in ("occupancy", "sdf", "categories", "rotations", "colors", "images"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.sdf, c.sdf)


def test_subset_and_semantic_embedding(shapes):
    sub = shapes.subset([3, 1])
    assert isinstance(sub, ShapeSet) and len(sub) == 2
    np.testing.assert_array_equal(sub.images[0], shapes.images[3])
    assert len(shapes.subset(shapes.categories == 0)) == 3
    emb = shapes.semantic_embedding(dim=12)
    assert emb.shape == (24, 12)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, rtol=1e-5)
    cos = emb @ emb.T
    same = shapes.categories[:, None] == shapes.categories[None, :]
    off = ~np.eye(24, dtype=bool)
    assert cos[same & off].min() > 0.75 and cos[~same].max() < 0.5  # category first
    np.testing.assert_array_equal(emb[[3, 1]], sub.semantic_embedding(dim=12))


# ------------------------------------------------------------------ renders
def test_render_of_a_sphere_is_a_centred_disc_of_its_radius():
    ball = (np.linalg.norm(POINTS, axis=-1) < 0.5).astype(np.float32)
    sil, img = render_occupancy(ball, image_size=64, colors=(0.2, 0.4, 0.8))
    assert sil.shape == (1, 64, 64) and img.shape == (1, 64, 64, 3)
    radius = np.sqrt(sil[0].sum() / np.pi) * 2 / 64  # in the view's units (side 2)
    assert radius == pytest.approx(0.5, abs=0.02)
    rows, cols = np.nonzero(sil[0])
    assert abs(rows.mean() - 31.5) < 0.5 and abs(cols.mean() - 31.5) < 0.5
    np.testing.assert_allclose(img[0][sil[0] == 0], 0.5)  # mid-grey background
    hit = img[0][sil[0] > 0]
    np.testing.assert_allclose(
        hit / hit[:, 2:3], np.broadcast_to([0.25, 0.5, 1.0], hit.shape), rtol=1e-4
    )
    assert hit[:, 2].max() - hit[:, 2].min() > 0.3  # shaded, not flat


def test_render_of_nothing_is_background():
    sil, img = render_occupancy(np.zeros((2, 8, 8, 8)), image_size=16)
    assert sil.sum() == 0 and np.all(img == 0.5)


def test_render_occupancy_matches_the_sets_silhouettes():
    s = make_shapes(16, grid_size=32, image_size=48, seed=2)
    sil, _ = render_occupancy(s.occupancy, image_size=48)
    iou = (sil * s.silhouettes).sum((1, 2)) / np.maximum(sil, s.silhouettes).sum((1, 2))
    assert iou.mean() > 0.9 and iou.min() > 0.75


# ------------------------------------------------------------------ the subject
def _averaged(subject, n):
    x = np.zeros((n, subject.n_voxels))
    np.add.at(x, subject.stimulus_ids, subject.betas)
    x /= np.bincount(subject.stimulus_ids, minlength=n)[:, None]
    return (x - x.mean(0)) / x.std(0)


def test_subject_arrays_rois_and_prf_sizes(sim):
    n = len(sim.shapes)
    sub = sim.subjects[0]
    assert sub.betas.shape == (2 * n, sub.n_voxels) and sub.clean.shape == (n, sub.n_voxels)
    assert np.bincount(sub.stimulus_ids).tolist() == [2] * n
    assert set(sub.roi_labels) == set(SHAPE_ROIS) == {"V1", "V2", "V3", "V4", "MTL"}
    assert sim.semantic.shape == (n, 16)
    medians = [np.median(sub.prf_sizes[sub.roi_labels == r]) for r in ("V1", "V2", "V3", "V4")]
    assert medians == sorted(medians) and medians[0] < 0.5 * medians[3]
    assert np.isnan(sub.prf_sizes[sub.roi_labels == "MTL"]).all()
    ds = FMRIDataset.from_simulation(sub, sim.shapes)
    assert ds.n_voxels == sub.n_voxels and ds.stimuli is not None
    assert sorted(ds.rois) == ["MTL", "V1", "V2", "V3", "V4"]


def test_mtl_decodes_category_and_shuffled_labels_do_not(sim):
    n = len(sim.shapes)
    sub = sim.subjects[0]
    x = _averaged(sub, n)[:, sub.roi_labels == "MTL"]
    y = sim.shapes.categories
    train, test = np.arange(n) < 112, np.arange(n) >= 112
    alphas = np.logspace(-1, 4, 8)
    acc = RidgeClassifierCV(alphas=alphas).fit(x[train], y[train]).score(x[test], y[test])
    shuffled = np.random.default_rng(0).permutation(y[train])
    null = RidgeClassifierCV(alphas=alphas).fit(x[train], shuffled).score(x[test], y[test])
    assert acc > 0.6 and null < 0.3  # chance is 1/8
    # MTL answers to what the object is, not how it looks: its colour is not in the responses
    r = np.corrcoef(sub.clean[:, sub.roi_labels == "MTL"].T, sim.shapes.colors.T)
    assert np.abs(r[:-3, -3:]).mean() < 0.12


def test_early_rois_decode_the_silhouette_above_a_shuffled_null(sim):
    n = len(sim.shapes)
    sub = sim.subjects[0]
    x = _averaged(sub, n)[:, sub.roi_labels != "MTL"]
    target = sim.shapes.silhouettes.reshape(n, 8, 4, 8, 4).mean(axis=(2, 4)).reshape(n, -1)
    train, test = np.arange(n) < 112, np.arange(n) >= 112
    varying = target[test].std(axis=0) > 0

    def pixel_r(y_train):
        pred = RidgeCV(alphas=np.logspace(0, 5, 8)).fit(x[train], y_train).predict(x[test])
        p, t = (a[:, varying] - a[:, varying].mean(0) for a in (pred, target[test]))
        return np.mean((p * t).sum(0) / np.sqrt((p**2).sum(0) * (t**2).sum(0) + 1e-12))

    real = pixel_r(target[train])
    rng = np.random.default_rng(0)
    null = [pixel_r(target[train][rng.permutation(train.sum())]) for _ in range(10)]
    assert real > 0.4 and real > max(null) + 0.2 and abs(np.mean(null)) < 0.1


def test_simulation_is_reproducible_and_reuses_given_shapes(shapes):
    a = simulate_shape_fmri(shapes, voxels_per_roi=3, seed=4, n_sessions=2)
    b = simulate_shape_fmri(shapes, voxels_per_roi=3, seed=4, n_sessions=2)
    assert a.shapes is shapes
    np.testing.assert_array_equal(a.subjects[0].betas, b.subjects[0].betas)
    assert set(a.subjects[0].session_ids.tolist()) == {0, 1}


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_shapes": 0}, "n_shapes must be an integer >= 1"),
        ({"grid_size": 4}, "grid_size must be an integer >= 8"),
        ({"image_size": 8}, "image_size must be an integer >= 16"),
        ({"categories": ["box", "pyramid"]}, "unknown category 'pyramid'; choose from sphere"),
        ({"categories": ["box", "box"]}, "must not repeat"),
        ({"categories": []}, "non-empty list"),
    ],
)
def test_make_shapes_bad_input(kwargs, match):
    with pytest.raises(InputError, match=match):
        make_shapes(**{"n_shapes": 4, "grid_size": 8, "image_size": 16, **kwargs})


def test_render_and_simulate_bad_input(shapes):
    with pytest.raises(InputError, match=r"grids must be cubes .* got shape \(1, 8, 8, 4\)"):
        render_occupancy(np.zeros((1, 8, 8, 4)))
    with pytest.raises(InputError, match="grids must be 3D or 4D"):
        render_occupancy(np.zeros((8, 8)))
    with pytest.raises(InputError, match=r"colors must be \(3,\) or \(n, 3\)"):
        render_occupancy(np.zeros((2, 8, 8, 8)), colors=np.ones((3, 3)))
    with pytest.raises(InputError, match="Divide 8-bit colours by 255"):
        render_occupancy(np.zeros((8, 8, 8)), colors=(255, 0, 0))
    with pytest.raises(InputTypeError, match="shapes must be a ShapeSet"):
        simulate_shape_fmri(shapes="shapes.npy")
    with pytest.raises(InputError, match="snr must be > 0.0"):
        simulate_shape_fmri(shapes, snr=0)
    with pytest.raises(InputError, match="n_repeats must be an integer >= 1"):
        simulate_shape_fmri(shapes, n_repeats=0)
    with pytest.raises(InputError, match="index out of range for 24 objects"):
        shapes.subset([30])
