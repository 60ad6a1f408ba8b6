"""``neuro fit-encoder --nsd``: a miniature subject in NSD's own layout, fitted from the README's command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_loaders.fmri import NSDSubject
from data_loaders.simulate.nsd_layout import write_nsd_layout
from neuro.cli import main
from neuro.encoders.compare import compare_encoders


@pytest.fixture(scope="module")
def nsd(tmp_path_factory):
    root = tmp_path_factory.mktemp("nsd")
    layout = write_nsd_layout(root, subject=1, n_sessions=3, trials_per_session=60)
    features = root / "features.npy"
    np.save(features, layout.features)
    return layout, features


def _summary(metrics):
    for encoder in metrics["encoders"].values():
        encoder.pop("fit_seconds")
    return metrics


def test_fit_encoder_on_nsd_as_distributed(nsd, tmp_path, capsys):
    layout, features = nsd
    out = tmp_path / "fit"
    args = ["fit-encoder", "--nsd", str(layout.root), "--subject", "1", "--features", str(features)]
    assert main([*args, "--model", "ridge", "--out", str(out), "--device", "cpu", "-q"]) == 0
    assert "n_sessions=3" in capsys.readouterr().out
    cli = _summary(json.loads((out / "metrics.json").read_text()))
    # the default test set is NSD's shared images that the subject saw
    ds = NSDSubject(layout.root, subject=1).to_dataset()
    shown = np.intersect1d(layout.shared_ids, ds.stimulus_ids)
    assert cli["n_test_stimuli"] == len(shown) >= 5
    # the Python API on the same files gives the same numbers
    api = compare_encoders(
        ds, ["ridge"], features=layout.features, test_stimuli=shown, device="cpu"
    )
    assert cli == _summary(json.loads(json.dumps(api.summary())))
    # and the planted signal is found where it was planted, not elsewhere
    r = api.scores["ridge"]
    signal = layout.signal_mask[tuple(ds.geometry.ijk.T)]
    assert r[signal].mean() > 0.4
    assert (out / "maps" / "r_ridge.nii.gz").is_file()


def test_nsd_options_are_used_or_refused(nsd, tmp_path, capsys):
    layout, features = nsd
    base = ["fit-encoder", "--features", str(features), "--model", "ridge", "-q"]
    base_no_features = ["fit-encoder", "--model", "ridge", "-q"]
    cases = [
        (["--nsd", str(layout.root), "--trials", str(features)], "--trials go with --betas"),
        (["--betas", str(features), "--trials", str(features), "--sessions", "1"], "--sessions"),
        (["--nsd", str(layout.root), "--sessions", "7"], "sessions found"),
        (["--nsd", str(layout.root), "--subject", "9"], "1"),
        (["--nsd", str(tmp_path / "none")], "--nsd"),
        (["--betas", str(features), "--trials", str(features), "--subject", "2"], "--subject"),
        (
            ["--nsd", str(layout.root), "--features", "torchvision:resnet18", "--map-size", "4"],
            "--map-size set the Gabor",
        ),
        (
            ["--nsd", str(layout.root), "--test-size", "0.3", "--test-stimuli", str(features)],
            "give one of them",
        ),
        (
            ["--nsd", str(layout.root), "--feature-cache", str(tmp_path / "c.h5")],
            "Drop --feature-cache",
        ),
        (["--hdf5", str(layout.paths["sessions"][0])], "Use --nsd NSD_ROOT"),
    ]
    for i, (extra, match) in enumerate(cases):
        head = base_no_features if "--features" in extra else base
        assert main([*head, *extra, "--out", str(tmp_path / f"o{i}")]) == 2, extra
        err = capsys.readouterr().err
        assert match in err and len(err.strip().splitlines()) == 1, err


def test_named_network_features_from_a_local_weights_file(nsd, tmp_path):
    import torch

    from neuro.encoders import backbones
    from neuro.encoders.backbones import load_backbone

    try:
        backbones._import("torchvision")
    except ImportError as exc:  # the backbones extra is not installed
        pytest.skip(str(exc))

    layout, _ = nsd
    name = "torchvision:mobilenet_v3_small"  # small enough for a CPU test at 224 px
    net = load_backbone(name, weights=None, layers=["features.12"], device="cpu")
    weights = tmp_path / "mobilenet.pt"
    torch.save(net.model.state_dict(), weights)
    args = [
        "fit-encoder", "--nsd", str(layout.root), "--sessions", "1",
        "--features", name, "--weights", str(weights),
        "--feature-cache", str(tmp_path / "cache.h5"), "--model", "ridge", "--device", "cpu",
        "-q",
    ]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0  # read back from the cache
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in "ab")
    assert _summary(a) == _summary(b)
    assert main([*args, "--layer", "nope", "--out", str(tmp_path / "c")]) == 2


def test_the_sliced_api_computes_features_for_the_images_shown_only(nsd, tmp_path):
    """NSD's brick holds far more images than a subject saw: only those shown are computed."""
    import h5py

    from neuro.encoders.distributed import compare_encoders_sliced
    from neuro.encoders.features import GaborFeatures

    layout, _ = nsd
    ds = NSDSubject(layout.root, subject=1, sessions=[1]).to_dataset()
    n_shown = len(np.unique(ds.stimulus_ids))
    assert len(ds.stimuli) > n_shown
    bank = GaborFeatures(n_orientations=2, frequencies=(0.25,), map_size=4, device="cpu")
    cache = tmp_path / "cache.h5"
    result = compare_encoders_sliced(
        ds, ["ridge"], features=bank, feature_cache=cache, feature_key="g", device="cpu"
    )
    assert result.n_train + result.n_test == n_shown
    with h5py.File(cache, "r") as f:
        stored = [f["g"][k].shape[0] for k in f["g"] if isinstance(f["g"][k], h5py.Dataset)]
    assert stored and all(n == n_shown for n in stored)


def test_semantic_vectors_by_clip_name_fail_offline_in_one_line(nsd, tmp_path, capsys, monkeypatch):
    from neuro.encoders import backbones

    try:
        backbones._import("open_clip")
    except ImportError as exc:  # the backbones extra is not installed
        pytest.skip(str(exc))
    monkeypatch.setenv("NEURO_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    layout, features = nsd
    args = ["fit-encoder", "--nsd", str(layout.root), "--features", str(features)]
    args += ["--semantic", "open_clip:ViT-B-32/laion2b_s34b_b79k", "--model", "semantic", "-q"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neuro fit-encoder: error: --semantic") and len(err.splitlines()) == 1, (
        err
    )
