"""Shape metrics against known answers: spheres, boxes, plates, identification nulls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuro.decoding.metrics import (
    EMPTY_CHAMFER,
    category_accuracy,
    chamfer_distance,
    iou,
    mean_interval,
    multiscale_iou,
    shape_metrics,
    surface_points,
    two_way_identification,
)
from neuro.errors import InputError, InputTypeError


def _centres(g):
    c = -1.0 + (2.0 * np.arange(g) + 1.0) / g
    return np.meshgrid(c, c, c, indexing="ij")


def sphere(g, r, centre=(0.0, 0.0, 0.0)):
    x, y, z = _centres(g)
    d = np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2)
    return (d <= r).astype(np.float32)


def box(g, lo, hi):
    out = np.zeros((g, g, g), dtype=np.float32)
    out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = 1.0
    return out


@pytest.mark.parametrize(("r1", "r2"), [(0.5, 0.8), (0.3, 0.6), (0.6, 0.7)])
def test_iou_concentric_spheres_is_volume_ratio(r1, r2):
    a, b = sphere(32, r1), sphere(32, r2)
    expected = (r1 / r2) ** 3
    got = iou(a, b)[0]
    assert got == pytest.approx(expected, abs=0.03)
    assert iou(b, a)[0] == got  # symmetric


def test_iou_edge_cases_and_threshold():
    empty = np.zeros((2, 6, 7, 8), dtype=np.float32)
    assert np.array_equal(iou(empty, empty), [1.0, 1.0])  # both empty
    full = np.ones_like(empty)
    assert np.array_equal(iou(empty, full), [0.0, 0.0])
    half = np.full_like(empty, 0.5)
    assert iou(half, full, threshold=0.5)[0] == 1.0
    assert iou(half, full, threshold=0.6)[0] == 0.0
    assert iou(torch.from_numpy(full), full)[0] == 1.0  # tensors accepted


@pytest.mark.parametrize(("r1", "r2"), [(0.4, 0.7), (0.5, 0.6), (0.3, 0.8)])
def test_chamfer_concentric_spheres_is_radius_difference(r1, r2):
    g = 32
    a, b = sphere(g, r1), sphere(g, r2)
    got = chamfer_distance(a, b, max_points=None)[0]
    assert got == pytest.approx(abs(r1 - r2), abs=0.5 * 2 / g)  # within half a cell
    assert chamfer_distance(b, a, max_points=None)[0] == pytest.approx(got)  # symmetric


def test_chamfer_identical_is_zero_and_symmetric(rng):
    grids = (rng.random((3, 9, 8, 7)) > 0.6).astype(np.float32)
    assert np.array_equal(chamfer_distance(grids, grids), np.zeros(3))
    other = (rng.random((3, 9, 8, 7)) > 0.6).astype(np.float32)
    np.testing.assert_allclose(
        chamfer_distance(grids, other, max_points=None),
        chamfer_distance(other, grids, max_points=None),
    )


@pytest.mark.parametrize("shift", [1, 2, 5])
def test_chamfer_of_a_shifted_slab_is_the_shift(shift):
    g = 16
    a, b = np.zeros((g, g, g)), np.zeros((g, g, g))
    a[4], b[4 + shift] = 1, 1  # a slab spanning the grid, one cell thick
    assert chamfer_distance(a, b)[0] == pytest.approx(shift * 2 / g)


def test_chamfer_of_a_shifted_box_is_between_zero_and_the_shift():
    g = 16
    a = box(g, (3, 3, 3), (9, 9, 9))
    b = box(g, (5, 3, 3), (11, 9, 9))  # two cells along x
    got = chamfer_distance(a, b)[0]
    assert 0.0 < got < 2 * 2 / g
    # Hausdorff-like bound: no surface point is further than the shift
    pa, pb = surface_points(a), surface_points(b)
    d = np.sqrt(((pa[:, None] - pb[None]) ** 2).sum(-1))
    assert d.min(1).max() == pytest.approx(2 * 2 / g)


def test_chamfer_empty_cases():
    g = np.zeros((2, 8, 8, 8))
    g[1, 2:5, 2:5, 2:5] = 1
    empty = np.zeros_like(g)
    out = chamfer_distance(empty, g)
    assert out[0] == 0.0 and out[1] == pytest.approx(EMPTY_CHAMFER)
    assert chamfer_distance(g, empty)[1] == pytest.approx(2 * np.sqrt(3))


def test_chamfer_subsampling_is_reproducible():
    a, b = sphere(32, 0.8), sphere(32, 0.5)
    one = chamfer_distance(a, b, max_points=600, seed=3)
    assert np.array_equal(one, chamfer_distance(a, b, max_points=600, seed=3))
    full = chamfer_distance(a, b, max_points=None)
    assert one[0] == pytest.approx(full[0], abs=0.03)


def test_surface_points_counts_border_and_hollow():
    full = np.ones((5, 6, 7))
    pts = surface_points(full)
    assert len(pts) == 5 * 6 * 7 - 3 * 4 * 5  # everything but the interior
    assert pts.min() > -1 and pts.max() < 1
    assert surface_points(np.zeros((4, 4, 4))).shape == (0, 3)
    single = np.zeros((4, 4, 4))
    single[0, 0, 0] = 1
    np.testing.assert_allclose(surface_points(single), [[-0.75, -0.75, -0.75]])


def test_multiscale_iou_one_cell_shift_low_fine_high_coarse():
    g = 16
    a, b = np.zeros((g, g, g)), np.zeros((g, g, g))
    a[8, 2:10, 2:10], b[9, 2:10, 2:10] = 1, 1  # a thin plate moved by one cell
    out = multiscale_iou(a, b, scales=(1, 2, 4))
    assert out.shape == (1, 3)
    assert out[0, 0] == 0.0 and out[0, 2] == 1.0
    # a box moved by one cell: every scale fairly high, the coarse one at least as high as ...
    s = multiscale_iou(box(g, (3, 3, 3), (11, 11, 11)), box(g, (4, 3, 3), (12, 11, 11)), (1, 4))
    assert s[0, 0] == pytest.approx(7 / 9)
    # grids not divisible by the scale are zero-padded
    odd = np.ones((1, 7, 7, 7))
    assert multiscale_iou(odd, odd, scales=(4,))[0, 0] == 1.0


def test_identification_perfect_and_null(rng):
    g = 10
    objects = np.stack([box(g, (i % 3, i % 5, 1), (6 + i % 4, 9, 5 + i // 5)) for i in range(15)])
    assert len(np.unique(objects.reshape(15, -1), axis=0)) == 15  # distinct
    assert np.array_equal(two_way_identification(objects, objects), np.ones(15))
    assert np.array_equal(two_way_identification(objects, objects, "correlation"), np.ones(15))
    # null: predictions unrelated to the truth
    true = (rng.random((60, g, g, g)) > 0.5).astype(np.float32)
    pred = (rng.random((60, g, g, g)) > 0.5).astype(np.float32)
    for metric in ("iou", "correlation"):
        score = two_way_identification(pred, true, metric=metric).mean()
        assert abs(score - 0.5) < 0.07
    # a constant prediction ties everywhere: exactly chance
    flat = np.zeros_like(true)
    assert np.allclose(two_way_identification(flat, true, "correlation"), 0.5)


def test_category_accuracy_and_interval():
    assert category_accuracy(np.array([1, 2, 3]), np.array([1, 2, 0])) == pytest.approx(2 / 3)
    assert category_accuracy(["a", "b"], ["a", "b"]) == 1.0
    mean, lo, hi = mean_interval(np.ones(7))
    assert mean == lo == hi == 1.0
    values = np.random.default_rng(1).standard_normal(400)
    _, lo, hi = mean_interval(values, confidence=0.95, n_boot=4000)
    se = values.std() / np.sqrt(len(values))
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert mean_interval(values, seed=5) == mean_interval(values, seed=5)


def test_shape_metrics_table():
    g = 12
    true = np.stack([sphere(g, 0.5), box(g, (2, 2, 2), (8, 8, 8)), sphere(g, 0.7)])
    pred = true.copy()
    pred[2] = sphere(g, 0.5)
    df = shape_metrics(pred, true)
    assert list(df.columns) == ["iou", "chamfer", "iou_x2", "iou_x4", "identification"]
    assert len(df) == 3 and df.loc[0, "iou"] == 1.0 and df.loc[2, "iou"] < 1.0
    df = shape_metrics(pred, true, [0, 1, 1], [0, 1, 2])
    assert df["category_correct"].tolist() == [1.0, 1.0, 0.0]
    assert np.isnan(shape_metrics(pred[:1], true[:1])["identification"][0])


def test_bad_inputs():
    g = np.zeros((2, 8, 8, 8))
    with pytest.raises(InputError, match=r"pred and true must have the same shape.*\(2, 8, 8, 8\)"):
        iou(g, np.zeros((2, 8, 8, 9)))
    with pytest.raises(InputError, match=r"pred must be 3D or 4D \(n, G, G, G\)"):
        iou(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(InputError, match="pred contains 1 NaN"):
        bad = g.copy()
        bad[0, 0, 0, 0] = np.nan
        chamfer_distance(bad, g)
    with pytest.raises(InputError, match="threshold must be > 0"):
        iou(g, g, threshold=0.0)
    with pytest.raises(InputError, match="max_points must be an integer >= 1"):
        chamfer_distance(g, g, max_points=0)
    with pytest.raises(InputError, match="metric must be one of 'iou', 'correlation'"):
        two_way_identification(g, g, metric="cosine")
    with pytest.raises(InputError, match="needs at least 2 objects"):
        two_way_identification(g[:1], g[:1])
    with pytest.raises(InputError, match="scales must be an integer >= 1"):
        multiscale_iou(g, g, scales=(0,))
    with pytest.raises(InputError, match="pred and true must have the same number of samples"):
        category_accuracy([1, 2], [1, 2, 3])
    with pytest.raises(InputError, match="integer category labels"):
        category_accuracy([0.5, 1.0], [1, 1])
    with pytest.raises(InputError, match="give both pred_categories and true_categories"):
        shape_metrics(g, g, pred_categories=[0, 1])
    with pytest.raises(InputTypeError, match="n_boot must be an integer"):
        mean_interval([1.0, 2.0], n_boot=1.5)
    with pytest.raises(InputError, match="confidence must be < 1.0"):
        mean_interval([1.0, 2.0], confidence=1.0)
