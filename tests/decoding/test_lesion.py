"""Lesions with a fake decoder whose ROIs each control a known part of the object."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuro.decoding.lesion import (
    LESION_LABELS,
    DiagnosisResult,
    ImpairmentDiagnoser,
    LesionSweep,
    diagnosis_curve,
    diagnosis_signatures,
    lesion_responses,
    lesion_sweep,
)
from neuro.errors import InputError, InputTypeError, OutputExistsError

G = 16
ROIS = ("V1", "V2", "V3", "V4", "MTL")
N_VOXELS = {"V1": 9, "V2": 8, "V3": 7, "V4": 8, "MTL": 6}
D = 3  # latent size per ROI


class FakeDecoder:
    """Reads a latent per ROI linearly from its voxels and draws a planted shape from them.

    V1 -> a fine surface texture (scale-1 detail), V2 -> position, V3 -> size,
    V4 -> elongation, MTL -> category (sphere or cube). ROIs not in ``use`` are
    ignored (their latent is 0).
    """

    def __init__(self, roi_labels, mixing, use=ROIS):
        self.roi_labels = np.asarray(roi_labels)
        self.readout = {r: np.linalg.pinv(mixing[r]) for r in ROIS}
        self.use = tuple(use)
        rng = np.random.default_rng(123)
        self.texture = rng.standard_normal((D, G**3))
        c = -1.0 + (2.0 * np.arange(G) + 1.0) / G
        self.points = np.stack(np.meshgrid(c, c, c, indexing="ij"), -1).reshape(-1, 3)

    def latents(self, X):
        out = {}
        for r in ROIS:
            lat = X[:, self.roi_labels == r] @ self.readout[r]
            out[r] = lat if r in self.use else np.zeros_like(lat)
        return out

    def predict(self, X, seed=None):
        lat = self.latents(np.asarray(X, dtype=np.float64))
        centre = 0.2 * np.tanh(lat["V2"])[:, None, :]
        radius = 0.45 + 0.15 * np.tanh(lat["V3"][:, :1])
        stretch = np.exp(0.25 * np.tanh(lat["V4"]))[:, None, :]
        q = (self.points[None] - centre) / stretch
        cube = lat["MTL"][:, :1] > 0
        dist = np.where(cube, np.abs(q).max(-1), np.linalg.norm(q, axis=-1))
        bumps = 0.06 * np.tanh(lat["V1"] @ self.texture)
        occ = (dist - radius + bumps) < 0
        return occ.reshape(len(X), G, G, G).astype(np.float32)

    def predict_category(self, X):
        return (self.latents(np.asarray(X, dtype=np.float64))["MTL"][:, 0] > 0).astype(np.int64)


def _world(n=60, seed=0, use=ROIS):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([[r] * N_VOXELS[r] for r in ROIS])
    mixing = {r: rng.standard_normal((D, N_VOXELS[r])) for r in ROIS}
    X = np.concatenate([rng.standard_normal((n, D)) @ mixing[r] for r in ROIS], axis=1)
    truth = FakeDecoder(labels, mixing)
    decoder = FakeDecoder(labels, mixing, use=use)
    return decoder, X.astype(np.float32), truth.predict(X), truth.predict_category(X), labels


@pytest.fixture(scope="module")
def world():
    return _world()


@pytest.fixture(scope="module")
def sweep(world):
    decoder, X, Y, cats, labels = world
    return lesion_sweep(decoder, X, Y, labels, noise_vars=(0.0, 0.25, 1.0, 4.0), categories=cats)


def test_lesion_responses_adds_scaled_noise_and_copies(rng):
    X = rng.standard_normal((500, 7)) * np.arange(1, 8)
    before = X.copy()
    labels = ["A"] * 3 + ["B"] * 4
    out = lesion_responses(X, labels, "B", noise_var=2.0, seed=4)
    assert np.array_equal(X, before)  # input untouched
    assert np.array_equal(out[:, :3], X[:, :3])
    ratio = (out - X)[:, 3:].std(0) / X[:, 3:].std(0)
    np.testing.assert_allclose(ratio, np.sqrt(2.0), rtol=0.1)
    assert np.array_equal(out, lesion_responses(X, labels, "B", noise_var=2.0, seed=4))
    # the same seed scales the same pattern
    half = lesion_responses(X, labels, "B", noise_var=0.5, seed=4)
    np.testing.assert_allclose((out - X)[:, 3:], 2.0 * (half - X)[:, 3:], rtol=1e-10)
    zero = lesion_responses(X.astype(np.float32), labels, "A", mode="zero")
    assert zero.dtype == np.float32 and not zero[:, :3].any()
    assert np.array_equal(lesion_responses(X, labels, "A", noise_var=0.0), X)


def test_sweep_healthy_and_zero_noise_are_identical(sweep):
    t = sweep.table
    assert isinstance(sweep, LesionSweep)
    healthy = t[t["roi"] == "healthy"].set_index("metric")
    assert healthy.loc["iou", "mean"] == 1.0 and healthy.loc["chamfer", "mean"] == 0.0
    at_zero = t[(t["mode"] == "noise") & (t["noise_var"] == 0.0)]
    assert len(at_zero) == len(ROIS) * len(healthy)
    assert (at_zero["degradation"] == 0.0).all()
    for metric, mean in healthy["mean"].items():
        assert (at_zero[at_zero["metric"] == metric]["mean"] == mean).all()
    assert set(t.columns) >= {"roi", "noise_var", "metric", "mean", "lo", "hi", "degradation"}
    assert (t["lo"] <= t["mean"] + 1e-12).all() and (t["mean"] <= t["hi"] + 1e-12).all()


@pytest.mark.parametrize(
    ("roi", "metric"),
    [("V1", "iou"), ("V2", "iou"), ("V3", "iou"), ("V4", "iou"), ("MTL", "category_correct")],
)
def test_degradation_grows_with_noise(sweep, roi, metric):
    deg = sweep.degradation(metric).loc[roi].to_numpy()
    assert deg[0] == 0.0
    assert np.all(np.diff(deg) > 0), deg
    chamfer = sweep.degradation("chamfer").loc[roi].to_numpy()
    assert chamfer[-1] > 0


def test_rois_damage_distinct_scales(sweep):
    fine = sweep.degradation("iou")[1.0]
    coarse = sweep.degradation("iou_x4")[1.0]
    # V1's texture is cell-scale detail: it hurts IoU far more at scale 1 than at scale 4
    assert coarse["V1"] < 0.3 * fine["V1"]
    # MTL changes the category; V1's texture does not
    cat = sweep.degradation("category_correct")[1.0]
    assert cat["MTL"] > 0.2 and cat["V1"] == 0.0


def test_ignored_roi_shows_no_degradation():
    decoder, X, Y, _, labels = _world(n=30, use=("V1", "V3", "V4", "MTL"))
    sweep = lesion_sweep(decoder, X, Y, labels, rois=["V2", "V3"], noise_vars=(1.0, 4.0))
    deg = sweep.table.set_index("roi").loc["V2", "degradation"]
    assert (deg == 0.0).all()  # null: the decoder never reads V2
    assert sweep.degradation("iou").loc["V3", 4.0] > 0.05


def test_sweep_result_files(sweep, tmp_path):
    summary = sweep.summary()
    assert summary["rois"] == list(ROIS) and summary["healthy"]["iou"] == 1.0
    assert summary["degradation"]["V1"]["iou"]["0"] == 0.0
    assert "zero" in summary["degradation"]["MTL"]["category_correct"]
    text = sweep.format_table()
    assert "iou (healthy 1.000)" in text and "zero" in text
    out = sweep.save(tmp_path / "sweep", figures=False)
    frame = pd.read_csv(out / "lesion_sweep.csv")
    assert len(frame) == len(sweep.table)
    assert set(sweep.plot()) == {"lesion_sweep"}
    with pytest.raises(OutputExistsError):
        sweep.save(tmp_path / "sweep")


def test_signatures_shape(world):
    decoder, X, Y, cats, labels = world
    args = (decoder, X[:20], Y[:20], labels, cats[:20])
    sig = diagnosis_signatures(*args, n_draws=2, reference="truth", scan_noise=0.0)
    assert sig.shape == (len(LESION_LABELS), 2, 20, 6)
    healthy = sig[0]
    np.testing.assert_array_equal(healthy[..., :3], 1.0)  # perfect IoU at every scale
    np.testing.assert_array_equal(healthy[..., 3], 0.0)  # Chamfer 0
    # against the healthy decoding of the same image: an unchanged scan differs by nothing,
    # a lesion by what it changed
    paired = diagnosis_signatures(*args, n_draws=2, scan_noise=0.0)
    np.testing.assert_array_equal(paired[0], 0.0)
    np.testing.assert_allclose(paired[1:], sig[1:] - sig[:1])
    rescanned = diagnosis_signatures(*args, n_draws=2)  # the default: every patient re-scanned
    assert np.abs(rescanned[0]).max() > 0
    no_cat = diagnosis_signatures(decoder, X[:20], Y[:20], labels, labels=("healthy", "V1"))
    assert no_cat.shape == (2, 3, 20, 5)


def test_diagnosis_is_above_chance_and_grows_with_images(world):
    decoder, X, Y, cats, labels = world
    res = diagnosis_curve(
        decoder, X, Y, labels, cats, n_images=(1, 3, 10, 30), noise_var=1.0, n_trials=40,
        scan_noise=0.0,
    )  # fmt: skip
    assert isinstance(res, DiagnosisResult)
    assert res.chance == pytest.approx(1 / 6)
    assert list(res.accuracy.index) == list(LESION_LABELS)
    assert list(res.accuracy.columns) == [1, 3, 10, 30]
    overall = res.overall.to_numpy()
    assert overall[-1] > 0.8 > 3 * res.chance
    assert overall[-1] > overall[0] + 0.1
    assert np.all(np.diff(overall) > -0.05)
    assert "overall" in res.format_table()
    # each patient re-scanned (the default): harder, still above chance and growing with images
    rescanned = diagnosis_curve(
        decoder, X, Y, labels, cats, n_images=(1, 30), noise_var=1.0, n_trials=40
    ).overall.to_numpy()
    assert rescanned[-1] > 2 * res.chance and rescanned[-1] > rescanned[0] + 0.1
    assert rescanned[-1] < overall[-1]


def test_diagnosis_of_a_decoder_that_ignores_x_is_chance():
    decoder, X, Y, cats, labels = _world(n=40, use=())
    res = diagnosis_curve(decoder, X, Y, labels, cats, n_images=(2, 20), n_trials=60, seed=1)
    assert np.all(np.abs(res.overall.to_numpy() - 1 / 6) < 0.06)


def test_diagnosis_result_files(world, tmp_path):
    decoder, X, Y, _, labels = world
    res = diagnosis_curve(
        decoder, X, Y, labels, n_images=(2, 5), n_trials=10, labels=("healthy", "V1", "MTL")
    )
    assert res.chance == pytest.approx(1 / 3)
    summary = res.summary()
    assert set(summary["per_label"]) == {"healthy", "V1", "MTL"}
    assert set(summary["overall"]) == {"2", "5"}
    out = res.save(tmp_path / "diag")
    frame = pd.read_csv(out / "diagnosis_accuracy.csv")
    assert list(frame.columns) == ["label", "n_2", "n_5"] and frame["label"].iloc[-1] == "overall"
    assert (out / "figures" / "diagnosis_curve.png").exists()


@pytest.mark.parametrize("classifier", ["lda", "logistic"])
def test_diagnoser_save_load_exact(tmp_path, rng, classifier):
    S = np.concatenate([rng.normal(m, 1.0, (20, 5)) for m in (0, 2, 4)])
    y = np.repeat(np.array(["healthy", "V1", "MTL"]), 20)
    model = ImpairmentDiagnoser(classifier=classifier).fit(S, y)
    assert model.score(S, y) > 0.9
    proba = model.predict_proba(S)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    path = model.save(tmp_path / "diag.pt")
    loaded = ImpairmentDiagnoser.load(path)
    assert np.array_equal(loaded.predict_proba(S), proba)
    assert np.array_equal(loaded.predict(S), model.predict(S))
    assert loaded.get_params() == model.get_params()


@parametrize_with_checks([ImpairmentDiagnoser(), ImpairmentDiagnoser(classifier="logistic")])
def test_diagnoser_is_a_sklearn_classifier(estimator, check):
    check(estimator)


def test_bad_inputs(world):
    decoder, X, Y, _, labels = world
    with pytest.raises(
        InputError,
        match=r"roi='V7' is not an ROI of roi_labels; the ROIs present are 'MTL', 'V1', 'V2', "
        r"'V3', 'V4'\. Pass one",
    ):
        lesion_responses(X, labels, "V7")
    with pytest.raises(InputError, match="noise_var must be >= 0.0; got -1.0"):
        lesion_responses(X, labels, "V1", noise_var=-1.0)
    with pytest.raises(InputError, match="mode must be one of 'noise', 'zero'"):
        lesion_responses(X, labels, "V1", mode="silence")
    with pytest.raises(InputError, match=r"roi_labels has 38 names but X has 39 columns"):
        lesion_responses(np.zeros((4, 39)), labels, "V1")
    with pytest.raises(InputError, match=r"rois='FFA' is not an ROI of roi_labels"):
        lesion_sweep(decoder, X, Y, labels, rois=["V1", "FFA"])
    with pytest.raises(InputError, match=r"noise_vars must be >= 0.0"):
        lesion_sweep(decoder, X, Y, labels, noise_vars=(1.0, -0.5))
    with pytest.raises(InputError, match=r"X has 60 and Y has 59"):
        lesion_sweep(decoder, X, Y[:59], labels)
    with pytest.raises(InputTypeError, match=r"decoder must have predict\(X, seed=None\)"):
        lesion_sweep(object(), X, Y, labels)
    with pytest.raises(
        InputError,
        match=r"halves of 30, fewer than max\(n_images\)=40; give n_images of at most 30, or at "
        r"least 80 held-out stimuli",
    ):
        diagnosis_curve(decoder, X, Y, labels, n_images=(5, 40))
    with pytest.raises(InputError, match=r"labels='LGN' is not an ROI of roi_labels"):
        diagnosis_signatures(decoder, X, Y, labels, labels=("healthy", "LGN"))
    with pytest.raises(InputError, match="classifier must be one of 'lda', 'logistic'"):
        ImpairmentDiagnoser(classifier="svm").fit(np.zeros((4, 2)), [0, 1, 0, 1])
    with pytest.raises(InputError, match="at least 2 classes"):
        ImpairmentDiagnoser().fit(np.random.default_rng(0).random((4, 2)), ["V1"] * 4)
    with pytest.raises(NotFittedError):
        ImpairmentDiagnoser().predict(np.zeros((2, 3)))
