import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score

from neuro.encoders.banded import BandedRidgeCV, check_groups, sample_gammas
from neuro.encoders.ridge import VoxelRidgeCV
from neuro.errors import CheckpointError, InputError, OutputExistsError

ALPHAS = np.logspace(-2, 4, 7)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def data(rng):
    """90 samples, 3 feature spaces of sizes 3, 4, 2 (9 features), 8 voxels.

    Voxels 0-3 read only space 0; voxels 4-7 read spaces 0 and 1; space 2 is noise.
    """
    X = rng.standard_normal((90, 9))
    W = rng.standard_normal((9, 8))
    W[3:, :4] = 0
    W[7:] = 0
    Y = X @ W + 0.8 * rng.standard_normal((90, 8))
    return X, Y


def test_one_group_equals_voxel_ridge(data):
    X, Y = data
    ours = BandedRidgeCV(groups=[9], alphas=ALPHAS, n_iter=3, device="cpu", dtype="float64")
    ours.fit(X, Y)
    ref = VoxelRidgeCV(alphas=ALPHAS, device="cpu", dtype="float64").fit(X, Y)
    np.testing.assert_array_equal(ours.alpha_, ref.alpha_)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.cv_scores_[0], ref.cv_scores_.max(0), rtol=1e-12)
    np.testing.assert_allclose(ours.group_alphas_[0], ref.alpha_)
    np.testing.assert_allclose(ours.deltas_[0], -np.log(ref.alpha_), atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matches_himalaya_on_the_same_candidates(data, dtype):
    pytest.importorskip("himalaya")
    from himalaya.backend import set_backend
    from himalaya.ridge import BandedRidgeCV as HimalayaBanded

    set_backend("numpy")
    X, Y = (a.astype(dtype) for a in data)
    gammas = sample_gammas(12, 3, random_state=1)
    labels = np.repeat([0, 1, 2], [3, 4, 2])
    ref = HimalayaBanded(
        groups=labels,
        solver_params=dict(n_iter=gammas, alphas=ALPHAS, progress_bar=False),
        fit_intercept=True,
        cv=5,
    ).fit(X, Y)
    ours = BandedRidgeCV(
        groups=[3, 4, 2], alphas=ALPHAS, n_iter=gammas, device="cpu", dtype=dtype
    ).fit(X, Y)
    np.testing.assert_allclose(ours.deltas_, np.asarray(ref.deltas_), rtol=1e-5, atol=1e-6)
    pred, ref_pred = ours.predict(X), np.asarray(ref.predict(X))
    np.testing.assert_allclose(pred, ref_pred, rtol=1e-4, atol=1e-4 * np.abs(ref_pred).max())
    np.testing.assert_allclose(ours.coef_, np.asarray(ref.coef_), rtol=1e-3, atol=1e-4)


def test_irrelevant_space_gets_a_large_penalty(rng):
    X = rng.standard_normal((300, 9))
    W = rng.standard_normal((9, 8))
    W[4:, :5] = 0  # voxels 0-4 ignore the second space (columns 4-8)
    Y = X @ W + rng.standard_normal((300, 8))
    model = BandedRidgeCV(groups=[slice(0, 4), np.arange(4, 9)], n_iter=30, device="cpu")
    model.fit(X, Y)
    ratio = model.group_alphas_[1] / model.group_alphas_[0]
    assert np.all(ratio[:5] > 100)  # irrelevant space: far stronger penalty
    assert np.all(ratio[5:] < 100)  # both spaces matter: comparable penalties
    assert model.score(X, Y) > 0.7  # R² (noise variance 1 against 4-9 of signal)
    assert model.correlation_score(X, Y) > 0.85


def test_candidates_and_attributes(data):
    X, Y = data
    model = BandedRidgeCV(groups=[3, 4, 2], alphas=ALPHAS, n_iter=5, device="cpu").fit(X, Y)
    assert model.candidates_.shape == (5, 3)
    np.testing.assert_allclose(model.candidates_[0], 1 / 3)
    np.testing.assert_allclose(model.candidates_.sum(1), 1)
    assert model.cv_scores_.shape == (5, 8)
    assert model.gammas_.shape == model.deltas_.shape == (3, 8)
    np.testing.assert_allclose(np.exp(-model.deltas_), model.group_alphas_, rtol=1e-12)
    np.testing.assert_allclose(
        model.group_alphas_ * model.gammas_, np.broadcast_to(model.alpha_, (3, 8))
    )
    # each voxel's candidate is the best one (first among ties)
    picked = [np.flatnonzero((model.candidates_ == g).all(1))[0] for g in model.gammas_.T]
    np.testing.assert_array_equal(picked, model.cv_scores_.argmax(0))
    again = BandedRidgeCV(groups=[3, 4, 2], alphas=ALPHAS, n_iter=5, device="cpu").fit(X, Y)
    np.testing.assert_array_equal(again.candidates_, model.candidates_)


def test_split_predictions_add_up(data):
    X, Y = data
    model = BandedRidgeCV(groups=[3, 4, 2], alphas=ALPHAS, n_iter=4, device="cpu", dtype="float64")
    model.fit(X, Y)
    parts = model.predict(X[:11], split=True)
    assert parts.shape == (3, 11, 8)
    np.testing.assert_allclose(parts.sum(0) + model.intercept_, model.predict(X[:11]), rtol=1e-10)
    parts_t = model.predict(torch.from_numpy(X[:11]), split=True)
    assert isinstance(parts_t, torch.Tensor) and parts_t.shape == (3, 11, 8)


@pytest.mark.parametrize("batch", [1, 3])
def test_voxel_batches_give_the_same_fit(data, batch):
    X, Y = data
    kw = dict(groups=[3, 4, 2], alphas=ALPHAS, n_iter=4, device="cpu", dtype="float64")
    full = BandedRidgeCV(**kw).fit(X, Y)
    part = BandedRidgeCV(voxel_batch_size=batch, **kw).fit(X, Y)
    np.testing.assert_allclose(part.coef_, full.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(part.deltas_, full.deltas_)


def test_works_in_sklearn_tools(data):
    X, Y = data
    scores = cross_val_score(BandedRidgeCV(groups=[3, 4, 2], n_iter=3, device="cpu"), X, Y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.3)


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([3, 4, 3], r"sum to n_features=9; got \[3, 4, 3\] \(sum 10\)"),
        ([3, 0, 6], "must be positive"),
        ([[0, 1, 2], [2, 3, 4, 5, 6, 7, 8]], r"groups overlap: columns \[2\]"),
        ([[0, 1, 2], [3, 4, 5, 6, 7]], r"columns \[8\] are in no group"),
        ([[0, 1, 2], [3, 4, 5, 6, 7, 9]], "outside"),
        ([[0, 1, 2], [], slice(3, 9)], "group 1 is empty"),
        ([slice(0, 3), 6], "mixes sizes"),
        ([[0.0, 1.0], slice(2, 9)], "integer column indices"),
        ("abc", "groups must be None"),
    ],
)
def test_bad_groups(data, groups, message):
    X, Y = data
    with pytest.raises(InputError, match=message):
        BandedRidgeCV(groups=groups, n_iter=2, device="cpu").fit(X, Y)


def test_check_groups_forms():
    expected = [[0, 1, 2], [3, 4, 5, 6], [7, 8]]
    for groups in ([3, 4, 2], [slice(0, 3), slice(3, 7), slice(7, 9)], expected):
        assert [g.tolist() for g in check_groups(groups, 9)] == expected
    assert [g.tolist() for g in check_groups(None, 4)] == [[0, 1, 2, 3]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_iter": 0}, "n_iter must be a positive integer"),
        ({"n_iter": np.ones((4, 2))}, r"shape \(n_candidates, n_groups=3\)"),
        ({"n_iter": -np.ones((4, 3))}, "non-negative"),
        ({"concentration": 0.0}, "concentration must be a number > 0"),
        ({"alphas": [-1.0]}, "alphas must be a non-empty list"),
        ({"cv": 100}, "fewer samples than folds"),
        ({"n_iter": "many"}, "n_iter must be a positive integer or an array"),
        ({"concentration": "x"}, "concentration must be a number > 0"),
    ],
)
def test_bad_settings(data, kwargs, message):
    X, Y = data
    with pytest.raises(InputError, match=message):
        BandedRidgeCV(groups=[3, 4, 2], device="cpu", **kwargs).fit(X, Y)


def test_predict_before_fit_and_wrong_width(data):
    X, Y = data
    with pytest.raises(NotFittedError, match="not fitted yet"):
        BandedRidgeCV().predict(X)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        BandedRidgeCV().predict(X, split=True)
    model = BandedRidgeCV(groups=[3, 4, 2], n_iter=2, device="cpu").fit(X, Y)
    with pytest.raises(InputError, match="X has 8 features, but BandedRidgeCV is expecting 9"):
        model.predict(X[:, :8])
    with pytest.raises(InputError, match="X has 8 features"):
        model.predict(X[:, :8], split=True)


def test_score_is_r2_and_correlation_score_is_mean_r(data):
    from sklearn.metrics import r2_score

    X, Y = data
    model = BandedRidgeCV(groups=[3, 4, 2], n_iter=3, device="cpu", dtype="float64")
    model.fit(X[:60], Y[:60])
    pred = model.predict(X[60:])
    assert model.score(X[60:], Y[60:]) == pytest.approx(r2_score(Y[60:], pred))
    r = [np.corrcoef(Y[60:, v], pred[:, v])[0, 1] for v in range(Y.shape[1])]
    assert model.correlation_score(X[60:], Y[60:]) == pytest.approx(np.mean(r))


def test_save_load_roundtrip(rng, tmp_path):
    X = rng.standard_normal((50, 7))
    Y = X @ rng.standard_normal((7, 8))
    model = BandedRidgeCV(groups=[3, 4], n_iter=3, alphas=[0.1, 10.0], device="cpu").fit(X, Y)
    path = model.save(tmp_path / "banded.pt")
    back = BandedRidgeCV.load(path)
    np.testing.assert_array_equal(back.predict(X, split=True), model.predict(X, split=True))
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    assert [g.tolist() for g in back.groups_] == [g.tolist() for g in model.groups_]
    for name in ("candidates_", "gammas_", "group_alphas_", "deltas_", "cv_scores_"):
        np.testing.assert_array_equal(getattr(back, name), getattr(model, name))
    assert back.get_params()["groups"] == [3, 4]
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        model.save(path)
    with pytest.raises(
        CheckpointError, match=r"holds a BandedRidgeCV .*load it with BandedRidgeCV"
    ):
        VoxelRidgeCV.load(path)
    ridge = VoxelRidgeCV(alphas=[1.0], device="cpu").fit(X, Y).save(tmp_path / "ridge.pt")
    with pytest.raises(CheckpointError, match="holds a VoxelRidgeCV"):
        BandedRidgeCV.load(ridge)
