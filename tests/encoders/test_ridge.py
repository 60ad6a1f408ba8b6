import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, ShuffleSplit, TimeSeriesSplit, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from data_loaders.simulate import simulate_linear_encoding
from neuro.encoders.ridge import VoxelRidgeCV
from neuro.errors import CheckpointError, InputError, InputTypeError, OutputExistsError


@pytest.fixture
def data():
    sim = simulate_linear_encoding(
        n_samples=90, n_features=7, n_voxels=9, snr=np.linspace(0.2, 5, 9), seed=0
    )
    return sim.X.astype(np.float64), sim.Y.astype(np.float64), sim


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_matches_sklearn_ridge_at_a_fixed_alpha(data, fit_intercept):
    X, Y, _ = data
    ours = VoxelRidgeCV(
        alphas=[3.0], device="cpu", dtype="float64", fit_intercept=fit_intercept
    ).fit(X, Y)
    ref = Ridge(alpha=3.0, fit_intercept=fit_intercept).fit(X, Y)
    np.testing.assert_allclose(ours.coef_, ref.coef_.T, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_, np.broadcast_to(ref.intercept_, (9,)), atol=1e-10)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize(
    ("shape", "cv"),
    [
        ((90, 7), KFold(5)),  # features route, folds partition the samples
        ((90, 7), ShuffleSplit(n_splits=3, test_size=0.3, random_state=0)),  # no partition
        ((30, 45), KFold(5)),  # more features than samples: samples route
        ((90, 7), TimeSeriesSplit(4)),  # training sets are not complements: samples route
    ],
)
def test_alpha_choice_matches_brute_force(shape, cv, fit_intercept):
    rng = np.random.default_rng(2)
    X = rng.standard_normal(shape) + 3.0  # offsets exercise the centring
    Y = X[:, :7] @ rng.standard_normal((7, 9)) + 2 * rng.standard_normal((shape[0], 9)) + 5.0
    alphas = np.logspace(-2, 4, 7)
    folds = list(cv.split(X))
    brute = np.zeros((len(alphas), Y.shape[1]))
    for i, a in enumerate(alphas):
        for tr, te in folds:
            pred = Ridge(alpha=a, fit_intercept=fit_intercept).fit(X[tr], Y[tr]).predict(X[te])
            brute[i] -= ((Y[te] - pred) ** 2).mean(0) / len(folds)
    ours = VoxelRidgeCV(
        alphas=alphas, cv=cv, device="cpu", dtype="float64", fit_intercept=fit_intercept
    ).fit(X, Y)
    np.testing.assert_allclose(ours.cv_scores_, brute, rtol=1e-8)
    np.testing.assert_array_equal(ours.alpha_, alphas[brute.argmax(0)])
    for v in range(Y.shape[1]):  # refit with each voxel's own alpha
        ref = Ridge(alpha=ours.alpha_[v], fit_intercept=fit_intercept).fit(X, Y[:, v])
        np.testing.assert_allclose(ours.coef_[:, v], ref.coef_, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(ours.intercept_[v], ref.intercept_, rtol=1e-7, atol=1e-9)


def test_matches_himalaya_ridge_cv():
    pytest.importorskip("himalaya")
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV

    set_backend("numpy")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((110, 13)).astype(np.float32)
    Y = X @ rng.standard_normal((13, 40)) + rng.standard_normal((110, 40)) * np.linspace(0.1, 8, 40)
    Y = Y.astype(np.float32)
    alphas = np.logspace(-2, 6, 17)
    ref = RidgeCV(alphas=alphas, cv=5, fit_intercept=True).fit(X, Y)
    ours = VoxelRidgeCV(alphas=alphas, cv=5, device="cpu").fit(X, Y)
    np.testing.assert_allclose(ours.alpha_, np.asarray(ref.best_alphas_), rtol=1e-6)
    ref_pred = np.asarray(ref.predict(X))
    np.testing.assert_allclose(
        ours.predict(X), ref_pred, rtol=1e-4, atol=1e-4 * np.abs(ref_pred).max()
    )


def test_y_is_not_modified_and_may_be_read_only(data):
    X, Y, _ = data
    Y32 = np.ascontiguousarray(Y, dtype=np.float32)
    Y32.setflags(write=False)
    before = Y32.copy()
    VoxelRidgeCV(device="cpu").fit(X, Y32)
    np.testing.assert_array_equal(Y32, before)
    Yt = torch.from_numpy(before.copy())
    VoxelRidgeCV(device="cpu", voxel_batch_size=4).fit(X, Yt)
    np.testing.assert_array_equal(Yt.numpy(), before)


def test_noisier_voxels_get_larger_alphas(data):
    X, Y, _ = data
    model = VoxelRidgeCV(device="cpu").fit(X, Y)
    assert model.alpha_[0] >= model.alpha_[-1]


@pytest.mark.parametrize("batch", [1, 4, None])
def test_voxel_batches_give_the_same_fit(data, batch):
    X, Y, _ = data
    full = VoxelRidgeCV(alphas=[0.1, 10.0, 1000.0], device="cpu", dtype="float64").fit(X, Y)
    part = VoxelRidgeCV(
        alphas=[0.1, 10.0, 1000.0], device="cpu", dtype="float64", voxel_batch_size=batch
    ).fit(X, Y)
    np.testing.assert_allclose(part.coef_, full.coef_, rtol=1e-10)
    np.testing.assert_array_equal(part.alpha_, full.alpha_)


def test_cv_accepts_splitters_and_index_lists(data):
    X, Y, _ = data
    splitter = ShuffleSplit(n_splits=3, test_size=0.3, random_state=0)
    a = VoxelRidgeCV(cv=splitter, device="cpu").fit(X, Y)
    b = VoxelRidgeCV(cv=list(splitter.split(X)), device="cpu").fit(X, Y)
    np.testing.assert_array_equal(a.alpha_, b.alpha_)


def test_torch_in_torch_out_and_float32(data):
    X, Y, _ = data
    model = VoxelRidgeCV(device="cpu").fit(torch.from_numpy(X), torch.from_numpy(Y))
    pred = model.predict(torch.from_numpy(X))
    assert isinstance(pred, torch.Tensor) and pred.dtype == torch.float32
    assert isinstance(model.predict(X), np.ndarray)


def test_recovers_planted_weights_and_works_in_sklearn_tools():
    sim = simulate_linear_encoding(n_samples=600, n_features=7, n_voxels=9, snr=4.0, seed=1)
    model = VoxelRidgeCV(device="cpu").fit(sim.X, sim.Y)
    assert np.corrcoef(model.coef_.ravel(), sim.weights.ravel())[0, 1] > 0.98
    pipe = make_pipeline(StandardScaler(), VoxelRidgeCV(device="cpu"))
    scores = cross_val_score(pipe, sim.X, sim.Y, cv=3)  # R², scikit-learn's regressor score
    assert scores.shape == (3,) and np.all(scores > 0.6)


@pytest.mark.parametrize(
    ("kwargs", "args", "error", "message"),
    [
        (
            {"alphas": [0.0, 1.0]},
            None,
            ValueError,
            "alphas must be a non-empty list of finite numbers > 0",
        ),
        ({"cv": 1}, None, ValueError, r"cv must be an integer in \[2, n_samples"),
        ({"voxel_batch_size": 0}, None, ValueError, "voxel_batch_size must be an integer >= 1"),
        ({"device": "tpu"}, None, ValueError, "device must be"),
        ({}, "nan", ValueError, "Y contains NaN"),
        ({}, "rows", ValueError, "same number of samples .*X has 90, Y has 89"),
        ({"cv": 91}, None, ValueError, "fewer samples than folds"),
        ({}, "inf", ValueError, "Y contains NaN or infinite values"),
        ({}, "xnan", ValueError, "X contains NaN or infinite values"),
        ({}, "1d-x", ValueError, r"X must be 2D \(n_samples, n_features\); got shape \(90,\)"),
        ({"cv": [(np.arange(10), np.array([], int))]}, None, ValueError, "empty train or val"),
        ({"cv": [(np.arange(10), np.array([95]))]}, None, ValueError, "not integers in"),
        ({"dtype": "float16"}, None, ValueError, "dtype must be one of 'float32', 'float64'"),
        ({}, "bool", TypeError, "Y must hold numbers"),
        ({"alphas": "big"}, None, InputTypeError, "alphas must be a list of numbers"),
        ({"dtype": 32}, None, InputError, "dtype must be one of"),
        ({"fit_intercept": "yes"}, None, InputTypeError, "fit_intercept must be True or False"),
        ({}, "3d-y", InputError, r"Y must be 1D or 2D \(n_samples, n_voxels\)"),
        ({}, "x-none", InputTypeError, "X is None"),
    ],
)
def test_bad_input(data, kwargs, args, error, message):
    X, Y, _ = data
    Y = Y.copy()
    if args == "nan":
        Y[3, 2] = np.nan
    if args == "rows":
        Y = Y[:-1]
    if args == "inf":
        Y[0, 0] = np.inf
    if args == "xnan":
        X = X.copy()
        X[1, 1] = np.nan
    if args == "1d-x":
        X = X[:, 0]
    if args == "bool":
        Y = Y > 0
    if args == "3d-y":
        Y = Y[:, :, None]
    if args == "x-none":
        X = None
    with pytest.raises(error, match=message) as info:
        VoxelRidgeCV(**kwargs).fit(X, Y)
    assert isinstance(info.value, InputError)  # the caller's mistake, printed in one line


def test_the_caller_s_errors_are_input_errors_for_tensors_too(data):
    X, Y, _ = data
    Yt = torch.from_numpy(Y.copy())
    Yt[5, 5] = torch.nan
    with pytest.raises(InputError, match="Y contains NaN or infinite values"):
        VoxelRidgeCV(device="cpu", voxel_batch_size=2).fit(X, Yt)
    with pytest.raises(InputError, match="Y must be 1D or 2D"):
        VoxelRidgeCV(device="cpu").fit(X, torch.zeros(90, 2, 2))
    with pytest.raises(InputTypeError, match="Y must hold numbers"):
        VoxelRidgeCV(device="cpu").fit(X, torch.zeros(90, 2, dtype=torch.bool))


def test_score_is_r2_and_correlation_score_is_mean_r(data):
    from sklearn.metrics import r2_score

    X, Y, _ = data
    model = VoxelRidgeCV(device="cpu", dtype="float64").fit(X[:60], Y[:60])
    pred = model.predict(X[60:])
    assert model.score(X[60:], Y[60:]) == pytest.approx(r2_score(Y[60:], pred))
    weights = np.linspace(0.5, 2, 30)
    assert model.score(X[60:], Y[60:], sample_weight=weights) == pytest.approx(
        r2_score(Y[60:], pred, sample_weight=weights)
    )
    r = [np.corrcoef(Y[60:, v], pred[:, v])[0, 1] for v in range(Y.shape[1])]
    assert model.correlation_score(X[60:], Y[60:]) == pytest.approx(np.mean(r))
    # torch in: the same numbers
    Xt, Yt = torch.from_numpy(X[60:]), torch.from_numpy(Y[60:])
    assert model.score(Xt, Yt) == pytest.approx(model.score(X[60:], Y[60:]))
    assert model.correlation_score(Xt, Yt) == pytest.approx(np.mean(r))
    # a noisy prediction: R² is below r², both are reported
    assert model.score(X[60:], Y[60:]) < model.correlation_score(X[60:], Y[60:])


def test_one_voxel_given_as_1d_predicts_1d(data):
    X, Y, _ = data
    model = VoxelRidgeCV(device="cpu", dtype="float64").fit(X, Y[:, 2])
    assert model.coef_.shape == (7, 1) and model.single_output_
    pred = model.predict(X)
    assert pred.shape == (90,)
    two_d = VoxelRidgeCV(device="cpu", dtype="float64").fit(X, Y[:, 2:3])
    np.testing.assert_allclose(two_d.predict(X)[:, 0], pred)


def test_predict_before_fit_and_wrong_width(data):
    X, Y, _ = data
    with pytest.raises(NotFittedError, match="not fitted yet"):
        VoxelRidgeCV().predict(X)
    with pytest.raises(NotFittedError):
        VoxelRidgeCV().score(X, Y)
    model = VoxelRidgeCV(device="cpu").fit(X, Y)
    with pytest.raises(InputError, match="X has 6 features, but VoxelRidgeCV is expecting 7"):
        model.predict(X[:, :6])


def test_save_load_roundtrip(rng, tmp_path):
    X = rng.standard_normal((60, 7))
    Y = X @ rng.standard_normal((7, 9)) + 0.1 * rng.standard_normal((60, 9))
    model = VoxelRidgeCV(alphas=[0.1, 1.0, 10.0], cv=KFold(3), device="cpu").fit(X, Y)
    path = model.save(tmp_path / "ridge.pt")
    back = VoxelRidgeCV.load(path)
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    for name in ("coef_", "intercept_", "alpha_", "cv_scores_"):
        np.testing.assert_array_equal(getattr(back, name), getattr(model, name))
        assert getattr(back, name).dtype == getattr(model, name).dtype
    assert back.get_params()["alphas"] == [0.1, 1.0, 10.0]
    assert back.cv == 5  # a splitter object is not saved; the default comes back
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        model.save(path)
    model.save(path, overwrite=True)
    with pytest.raises(NotFittedError, match="not fitted"):
        VoxelRidgeCV().save(tmp_path / "unfitted.pt")


def test_one_voxel_round_trips(rng, tmp_path):
    X = rng.standard_normal((40, 3))
    model = VoxelRidgeCV(alphas=[1.0], device="cpu").fit(X, X @ [1.0, 2.0, 3.0])
    back = VoxelRidgeCV.load(model.save(tmp_path / "one.pt"))
    assert back.predict(X).shape == (40,)
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


def test_old_and_foreign_files_are_refused_naming_the_fix(rng, tmp_path):
    """Files of the former .npz format, other formats and damaged files give one clear line."""
    old = tmp_path / "ridge.npz"  # what VoxelRidgeCV.save wrote before neuro.persist
    np.savez(old, __meta__=np.asarray('{"format": "neuro.fitted-estimator/1"}'), coef_=np.ones(3))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({"weights": torch.ones(2)}, tmp_path / "other.pt")
    for name in ("ridge.npz", "junk.pt", "empty.pt", "other.pt"):
        with pytest.raises(CheckpointError) as info:
            VoxelRidgeCV.load(tmp_path / name)
        message = str(info.value)
        assert isinstance(info.value, InputError) and "\n" not in message
        assert name in message
    with pytest.raises(CheckpointError, match=r"VoxelRidgeCV.save\(\)"):
        VoxelRidgeCV.load(tmp_path / "other.pt")
    with pytest.raises(InputError, match="no such file|does not exist|not found"):
        VoxelRidgeCV.load(tmp_path / "missing.pt")


# ---------------------------------------------------------------------- solver paths
@pytest.mark.parametrize("blas", ["torch", "numpy"])
@pytest.mark.parametrize(
    ("shape", "cv"),
    [
        ((400, 100), KFold(5)),  # n_val < k: square Q, the alpha stack in 3 row blocks
        ((600, 40), KFold(5)),  # n_val > k: thin Q (an alpha-free error term), 2 blocks
        ((40, 60), KFold(5)),  # more features than samples: samples route
    ],
)
def test_solver_paths_match_brute_force(blas, shape, cv, monkeypatch):
    from neuro.encoders.ridge import solve_ridge_cv

    monkeypatch.setenv("NEURO_RIDGE_BLAS", blas)
    rng = np.random.default_rng(5)
    X = rng.standard_normal(shape) + 1.0
    Y = X[:, :5] @ rng.standard_normal((5, 6)) + 3 * rng.standard_normal((shape[0], 6)) - 2.0
    alphas = np.logspace(-1, 4, 6)
    folds = list(cv.split(X))
    brute = np.zeros((len(alphas), Y.shape[1]))
    for i, a in enumerate(alphas):
        for tr, te in folds:
            pred = Ridge(alpha=a).fit(X[tr], Y[tr]).predict(X[te])
            brute[i] -= ((Y[te] - pred) ** 2).mean(0) / len(folds)
    res = solve_ridge_cv(
        torch.from_numpy(X), torch.from_numpy(Y), alphas, folds, voxel_batch_size=4
    )
    np.testing.assert_allclose(res.cv_scores.numpy(), brute, rtol=1e-9)
    np.testing.assert_array_equal(res.best.numpy(), brute.argmax(0))
    for v in range(Y.shape[1]):
        ref = Ridge(alpha=alphas[res.best[v]]).fit(X, Y[:, v])
        np.testing.assert_allclose(res.coef[:, v].numpy(), ref.coef_, rtol=1e-7, atol=1e-10)


def test_blas_switch_is_checked_and_auto_times_once_per_dtype(monkeypatch):
    from neuro.encoders import ridge

    cpu = torch.device("cpu")
    assert ridge._calibrate_cpu_blas(torch.float32) in ("torch", "numpy")
    monkeypatch.setenv("NEURO_RIDGE_BLAS", "mkl")
    with pytest.raises(ValueError, match="NEURO_RIDGE_BLAS must be"):
        ridge._cpu_blas(cpu, torch.float32, 1e12)
    monkeypatch.setenv("NEURO_RIDGE_BLAS", "auto")
    calls = []
    monkeypatch.setattr(ridge, "_calibrate_cpu_blas", lambda dtype: calls.append(dtype) or "numpy")
    monkeypatch.setattr(ridge, "_cpu_blas_choice", {})
    assert ridge._cpu_blas(cpu, torch.float32, 1e6) == "torch"  # small fit: not timed
    assert ridge._cpu_blas(cpu, torch.float32, 1e12) == "numpy"
    assert ridge._cpu_blas(cpu, torch.float32, 1e12) == "numpy"
    assert ridge._cpu_blas(torch.device("meta"), torch.float32, 1e12) == "torch"
    assert calls == [torch.float32]
    monkeypatch.setenv("NEURO_RIDGE_BLAS", "numpy")
    assert ridge._cpu_blas(cpu, torch.float64, 1.0) == "numpy"  # forced, any size


def test_numpy_blas_leaves_torch_threads_as_they_were(data, monkeypatch):
    X, Y, _ = data
    monkeypatch.setenv("NEURO_RIDGE_BLAS", "numpy")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        numpy_fit = VoxelRidgeCV(alphas=[0.1, 10.0], device="cpu").fit(X, Y)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    monkeypatch.setenv("NEURO_RIDGE_BLAS", "torch")
    torch_fit = VoxelRidgeCV(alphas=[0.1, 10.0], device="cpu").fit(X, Y)
    np.testing.assert_array_equal(numpy_fit.alpha_, torch_fit.alpha_)
    np.testing.assert_allclose(numpy_fit.coef_, torch_fit.coef_, rtol=1e-5, atol=1e-6)
