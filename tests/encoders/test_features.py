"""Image features: Gabor bank against gratings and blobs, backbone hooks, pooling, cache."""

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from neuro.encoders.features import (
    BackboneFeatures,
    FeatureCacheError,
    GaborFeatures,
    cached_features,
    pool_features,
)

SIZE = 32


def grating(freq: float, theta: float, size: int = SIZE) -> np.ndarray:
    """A luminance grating; theta = 0 varies along x (a vertical grating)."""
    y, x = np.mgrid[:size, :size]
    phase = 2 * np.pi * freq * (x * np.cos(theta) - y * np.sin(theta))
    return 0.5 + 0.5 * np.cos(phase)


@pytest.mark.parametrize("freq_index", [0, 1])
@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_grating_drives_its_own_channel(freq_index, k):
    freqs = (0.25, 0.0625)
    bank = GaborFeatures(n_orientations=4, frequencies=freqs, map_size=4, device="cpu")
    image = grating(freqs[freq_index], np.pi * k / 4)
    energy = bank.transform(image[None]).mean(axis=(2, 3))[0]
    assert energy.argmax() == freq_index * 4 + k
    assert bank.channel_names[freq_index * 4 + k] == f"f={freqs[freq_index]:g} ori={45 * k}"


@pytest.mark.parametrize(("cx", "cy"), [(24, 8), (8, 20), (16, 28)])
def test_local_patch_peaks_at_its_map_location(cx, cy):
    y, x = np.mgrid[:SIZE, :SIZE]
    patch = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 2.0**2)) * np.cos(0.5 * np.pi * x)
    maps = GaborFeatures(map_size=8, device="cpu").transform(0.5 + 0.5 * patch[None])
    row, col = np.unravel_index(maps[0].sum(0).argmax(), (8, 8))
    assert (row, col) == (cy * 8 // SIZE, cx * 8 // SIZE)


def test_layouts_and_batches_agree(rng):
    images = rng.random((7, SIZE, SIZE, 3)).astype(np.float32)
    bank = GaborFeatures(n_orientations=3, map_size=5, device="cpu", batch_size=3)
    a = bank.transform(images)
    b = GaborFeatures(n_orientations=3, map_size=5, device="cpu", batch_size=7).transform(
        torch.from_numpy(images).permute(0, 3, 1, 2)
    )
    assert a.shape == (7, 9, 5, 5) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_reads_image_sets_in_batches(rng):
    from data_loaders.stimuli import ArrayImages

    images = rng.random((5, 24, 24, 3)).astype(np.float32)
    bank = GaborFeatures(n_orientations=2, map_size=4, device="cpu", batch_size=2)
    from_set = bank.transform(ArrayImages(images))
    from_array = bank.transform(images)
    assert from_set.shape == (5, 6, 4, 4)
    np.testing.assert_allclose(from_set, from_array, rtol=1e-4, atol=1e-6)
    resized = GaborFeatures(n_orientations=2, map_size=4, image_size=16, device="cpu")
    assert resized.transform(ArrayImages(images)).shape == (5, 6, 4, 4)


@pytest.mark.parametrize(
    ("kwargs", "images", "match"),
    [
        ({}, np.zeros((8, 8)), r"shape \(n, 3, H, W\)"),
        ({}, np.full((2, 8, 8, 3), np.nan), "NaN"),
        ({}, np.zeros((0, 8, 8, 3)), "empty"),
        ({}, np.zeros((2, 5, 8, 8)), "colour channels"),
        ({"map_size": 0}, np.zeros((1, 8, 8)), "map_size must be a positive integer"),
        ({"n_orientations": 0}, np.zeros((1, 8, 8)), "n_orientations"),
        ({"frequencies": (-0.1,)}, np.zeros((1, 8, 8)), "frequencies must be"),
        ({"frequencies": (0.7,)}, np.zeros((1, 8, 8)), "Nyquist"),
    ],
)
def test_bad_input(kwargs, images, match):
    with pytest.raises(ValueError, match=match):
        GaborFeatures(device="cpu", **kwargs).transform(images)


class TinyConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(6, 5)

    def forward(self, x):
        h = self.block(self.conv1(x))
        return self.head(h.mean(dim=(2, 3)))


class TinyViT(nn.Module):
    """Patch embedding + a CLS token + one transformer layer: outputs (b, 1 + 16, 8)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, 8))
        self.encoder = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, dropout=0.0)

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        return self.encoder(torch.cat([self.cls.expand(len(x), -1, -1), tokens], 1))


def test_backbone_hooks_match_a_manual_forward_pass(rng):
    torch.manual_seed(0)
    net = TinyConvNet().train()
    images = rng.random((7, 3, 16, 16)).astype(np.float32)
    feats = BackboneFeatures(
        net, ["conv1", "block", "head"], device="cpu", batch_size=3, preprocess=None
    ).transform(images)
    assert net.training  # mode restored
    assert not net.conv1._forward_hooks and not net.head._forward_hooks  # hooks removed
    with torch.no_grad():
        x = torch.from_numpy(images)
        c1 = net.conv1(x)
        expected = {"conv1": c1, "block": net.block(c1), "head": net(x)[:, :, None, None]}
    for name, value in expected.items():
        np.testing.assert_allclose(feats[name], value.numpy(), rtol=1e-5, atol=1e-6)


def test_backbone_tokens_become_maps(rng):
    torch.manual_seed(0)
    net = TinyViT()
    feats = BackboneFeatures(net, "encoder", device="cpu", n_prefix_tokens=1).transform(
        rng.random((3, 3, 16, 16)).astype(np.float32)
    )
    assert feats["encoder"].shape == (3, 8, 4, 4)


def test_backbone_unknown_layer_lists_names():
    with pytest.raises(ValueError, match=r"not modules of the model; some names it has: .*conv1"):
        BackboneFeatures(TinyConvNet(), ["layer9"], device="cpu").transform(np.zeros((1, 3, 8, 8)))


class Broken(TinyConvNet):
    def forward(self, x):
        self.conv1(x)
        raise RuntimeError("broken model")


def test_backbone_hooks_removed_on_error():
    net = Broken().train()
    with pytest.raises(RuntimeError, match="broken model"):
        BackboneFeatures(net, ["conv1"], device="cpu").transform(np.zeros((1, 3, 8, 8)))
    assert not net.conv1._forward_hooks and net.training


@pytest.mark.parametrize(
    ("method", "dim"), [("mean", 3), ("max", 3), ("grid", 12), ("flatten", 48)]
)
def test_pool_features(method, dim, rng):
    maps = rng.random((2, 3, 4, 4)).astype(np.float32)
    out = pool_features(maps, method)
    assert out.shape == (2, dim)
    assert isinstance(pool_features(torch.from_numpy(maps), method), torch.Tensor)
    if method == "mean":
        np.testing.assert_allclose(out, maps.mean(axis=(2, 3)), rtol=1e-6)
    with pytest.raises(ValueError, match="method must be"):
        pool_features(maps, "median")


def test_cache_computes_once_and_detects_changes(tmp_path, rng, monkeypatch):
    images = rng.random((4, 16, 16, 3)).astype(np.float32)
    bank = GaborFeatures(n_orientations=2, frequencies=(0.25,), map_size=4, device="cpu")
    path = tmp_path / "cache.h5"
    first = cached_features(bank, images, path)
    calls = []
    original = GaborFeatures.transform
    monkeypatch.setattr(
        GaborFeatures, "transform", lambda self, x: calls.append(1) or original(self, x)
    )
    second = cached_features(bank, images, path)
    assert not calls
    np.testing.assert_array_equal(first, second)
    # other images or other settings: refused, or recomputed with overwrite=True
    with pytest.raises(FeatureCacheError, match="other settings or images"):
        cached_features(bank, images[::-1], path)
    other = GaborFeatures(n_orientations=3, frequencies=(0.25,), map_size=4, device="cpu")
    with pytest.raises(FeatureCacheError, match="overwrite=True"):
        cached_features(other, images, path)
    assert cached_features(other, images, path, overwrite=True).shape == (4, 3, 4, 4)
    # a second key lives beside the first
    cached_features(bank, images, path, key="second")
    with h5py.File(path, "r") as f:
        assert set(f) == {"GaborFeatures", "second"}


def test_cache_stores_backbone_layers(tmp_path, rng):
    net = TinyConvNet()
    fe = BackboneFeatures(net, ["conv1", "block"], device="cpu")
    images = rng.random((3, 3, 8, 8)).astype(np.float32)
    first = cached_features(fe, images, tmp_path / "c.h5")
    second = cached_features(fe, images, tmp_path / "c.h5")
    assert set(second) == {"conv1", "block"}
    np.testing.assert_array_equal(first["block"], second["block"])


def test_corrupt_cache_names_the_file(tmp_path, rng):
    path = tmp_path / "cache.h5"
    path.write_bytes(b"not an hdf5 file")
    bank = GaborFeatures(n_orientations=2, map_size=4, device="cpu")
    with pytest.raises(FeatureCacheError, match=r"cache.h5 is not a readable .* delete it"):
        cached_features(bank, rng.random((2, 16, 16, 3)), path)
    assert path.read_bytes() == b"not an hdf5 file"  # left as it was
