"""Image features: Gabor bank against gratings and blobs, backbone hooks, pooling, cache."""

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from torch import nn

from data_loaders.stimuli import ArrayImages, ImageSet
from neuro.encoders.features import (
    BackboneFeatures,
    FeatureCacheError,
    GaborFeatures,
    cached_features,
    pool_features,
)
from neuro.errors import InputError, UnreadableFileError

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
    assert bank.channels[freq_index * 4 + k] == (freqs[freq_index], 45 * k)
    assert bank.channel_names[freq_index * 4 + k] == f"f={freqs[freq_index]:g} ori={45 * k}"


@pytest.mark.parametrize("stimulus", ["gabor", "blob"])
@pytest.mark.parametrize(("x0", "y0"), [(0.625, -0.375), (-0.625, 0.125), (0.125, 0.875)])
def test_local_stimulus_peaks_at_its_map_location(stimulus, x0, y0):
    """(x, y) in [-1, 1], x left to right, y top to bottom, as grid_sample (align_corners=False)."""
    px, py = ((x0 + 1) * SIZE - 1) / 2, ((y0 + 1) * SIZE - 1) / 2  # pixel coordinates
    y, x = np.mgrid[:SIZE, :SIZE]
    envelope = np.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * 1.5**2))
    image = envelope * (np.cos(0.5 * np.pi * (x - px)) if stimulus == "gabor" else 1.0)
    maps = GaborFeatures(map_size=8, device="cpu").transform(0.5 + 0.5 * image[None])
    energy = maps[0].sum(0)
    row, col = np.unravel_index(energy.argmax(), energy.shape)
    assert (row, col) == (int((y0 + 1) / 2 * 8), int((x0 + 1) / 2 * 8))
    grid = torch.tensor([[[[x0, y0]]]])
    at = F.grid_sample(torch.from_numpy(energy)[None, None], grid, align_corners=False)
    assert float(at) == pytest.approx(energy.max())  # grid_sample reads the same cell


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
    images = rng.random((5, 24, 24, 3)).astype(np.float32)
    bank = GaborFeatures(n_orientations=2, map_size=4, device="cpu", batch_size=2)
    from_set = bank.transform(ArrayImages(images))
    from_array = bank.transform(images)
    assert from_set.shape == (5, 6, 4, 4)
    np.testing.assert_allclose(from_set, from_array, rtol=1e-4, atol=1e-6)
    resized = GaborFeatures(n_orientations=2, map_size=4, image_size=16, device="cpu")
    assert resized.transform(ArrayImages(images)).shape == (5, 6, 4, 4)


def test_works_in_a_pipeline(rng):
    images = rng.random((3, 16, 16, 3)).astype(np.float32)
    bank = GaborFeatures(n_orientations=2, frequencies=(0.25,), map_size=4, device="cpu")
    pipe = make_pipeline(clone(bank), FunctionTransformer(pool_features))
    np.testing.assert_allclose(
        pipe.fit_transform(images), bank.transform(images).mean(axis=(2, 3)), rtol=1e-5
    )


class EmptySet(ImageSet):
    def __len__(self):
        return 0

    def _iter_raw(self, positions):
        yield from ()


@pytest.mark.parametrize(
    ("kwargs", "images", "match"),
    [
        ({}, np.zeros((8, 8)), r"shape \(n, 3, H, W\).*images\[None\]"),
        ({}, np.full((2, 8, 8, 3), np.nan), "NaN"),
        ({}, np.zeros((0, 8, 8, 3)), "empty"),
        ({}, EmptySet(), "empty"),
        ({}, np.zeros((2, 5, 8, 8)), "colour channels"),
        ({"map_size": 0}, np.zeros((1, 8, 8)), r"map_size must be a positive integer \(e\.g\."),
        ({"n_orientations": 0}, np.zeros((1, 8, 8)), "n_orientations must be a positive"),
        ({"batch_size": 0}, np.zeros((1, 8, 8)), "batch_size must be a positive"),
        ({"image_size": 4}, np.zeros((1, 8, 8)), "image_size must be None or an integer >= 8"),
        ({"frequencies": (-0.1,)}, np.zeros((1, 8, 8)), "frequencies must be .*cycles per"),
        ({"frequencies": (0.1, 0.0)}, np.zeros((1, 8, 8)), "frequencies must be"),
        ({"frequencies": ()}, np.zeros((1, 8, 8)), "frequencies must be"),
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
    """Patch embedding + a CLS token + one transformer layer: outputs (b, 1 + 4 * 3, 8).

    16 x 12 images give a 4 x 3 patch grid, so a transposed grid would show.
    """

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, 8))
        self.tokens = nn.Identity()
        self.encoder = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, dropout=0.0)
        self.pooled = nn.Identity()

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = self.tokens(torch.cat([self.cls.expand(len(x), -1, -1), tokens], 1))
        return self.pooled(self.encoder(tokens)[:, 0])


@pytest.mark.parametrize("training", [True, False])
def test_backbone_hooks_match_a_manual_forward_pass(rng, training):
    torch.manual_seed(0)
    net = TinyConvNet().train(training)
    images = rng.random((7, 3, 16, 16)).astype(np.float32)
    feats = BackboneFeatures(
        net, ["conv1", "block", "head"], device="cpu", batch_size=3, preprocess=None
    ).transform(images)
    assert net.training == training  # mode restored
    assert not any(m._forward_hooks for m in net.modules())  # hooks removed
    with torch.no_grad():
        x = torch.from_numpy(images)
        c1 = net.conv1(x)
        expected = {"conv1": c1, "block": net.block(c1), "head": net(x)[:, :, None, None]}
    for name, value in expected.items():
        np.testing.assert_allclose(feats[name], value.numpy(), rtol=1e-5, atol=1e-6)


def test_backbone_tokens_become_maps(rng):
    torch.manual_seed(0)
    net = TinyViT()
    images = rng.random((3, 3, 16, 16)).astype(np.float32)
    layers = ["embed", "tokens", "encoder", "pooled"]
    feats = BackboneFeatures(net, layers, device="cpu", preprocess=None, n_prefix_tokens=1)
    out = feats.transform(images)
    assert out["encoder"].shape == (3, 8, 4, 4) and out["pooled"].shape == (3, 8, 1, 1)
    np.testing.assert_allclose(out["tokens"], out["embed"], rtol=1e-6)  # patch order kept
    # without dropping the CLS token, 17 tokens are no square grid: averaged
    feats.set_params(n_prefix_tokens=0)
    cls = net.cls.detach().numpy()[:, 0]  # (1, 8)
    patches = out["embed"].reshape(3, 8, 16).transpose(0, 2, 1)  # (3, 16, 8)
    by_hand = (cls + patches.sum(1)) / 17
    np.testing.assert_allclose(feats.transform(images)["tokens"][..., 0, 0], by_hand, rtol=1e-5)


def test_backbone_tokens_rectangular_grid_is_not_guessed(rng):
    """A 4 x 3 patch grid is not square: averaged, not folded into a wrong map."""
    out = BackboneFeatures(TinyViT(), "tokens", device="cpu", n_prefix_tokens=1).transform(
        rng.random((2, 3, 16, 12)).astype(np.float32)
    )
    assert out["tokens"].shape == (2, 8, 1, 1)


def test_backbone_unknown_layer_lists_names():
    with pytest.raises(ValueError, match=r"not modules of the model; some names it has: .*conv1"):
        BackboneFeatures(TinyConvNet(), ["layer9"], device="cpu").transform(np.zeros((1, 3, 8, 8)))


def test_backbone_layer_not_called_is_named():
    net = TinyViT()
    net.unused = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"\['unused'\] produced no output"):
        BackboneFeatures(net, ["tokens", "unused"], device="cpu").transform(np.zeros((1, 3, 8, 8)))
    assert not any(m._forward_hooks for m in net.modules())


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


def make_preprocess():
    """A new function object on each call, as in a new Python session."""

    def halve(x):
        return x / 2

    return halve


def test_cache_stores_backbone_layers(tmp_path, rng):
    torch.manual_seed(0)
    net = TinyConvNet()
    images = rng.random((3, 3, 8, 8)).astype(np.float32)
    before = images.copy()
    path = tmp_path / "c.h5"
    fe = BackboneFeatures(net, ["conv1", "block"], device="cpu", preprocess=make_preprocess())
    first = cached_features(fe, images, path)
    calls = []
    net.register_forward_pre_hook(lambda *_: calls.append(1))
    # same model, same kind of preprocess function (another object): read from the file
    fe2 = BackboneFeatures(net, ["conv1", "block"], device="cpu", preprocess=make_preprocess())
    second = cached_features(fe2, images, path)
    assert not calls
    assert set(second) == {"conv1", "block"}
    np.testing.assert_array_equal(first["block"], second["block"])
    np.testing.assert_array_equal(images, before)  # inputs untouched
    # a changed weight is another model
    with torch.no_grad():
        net.conv1.bias += 1
    with pytest.raises(FeatureCacheError, match="other settings or images"):
        cached_features(fe2, images, path)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("empty", "empty, 0 bytes"),
        ("garbage", ""),
        ("truncated", ""),
        ("npy", ""),  # a file of another format under the cache's name
        ("no features", "has no 'features' dataset"),
        ("dataset entry", "is not a feature cache entry"),
    ],
)
def test_unreadable_cache_is_one_line_naming_the_fix(tmp_path, rng, damage, reason):
    path = tmp_path / "cache.h5"
    images = rng.random((2, 16, 16, 3)).astype(np.float32)
    bank = GaborFeatures(n_orientations=2, frequencies=(0.25,), map_size=4, device="cpu")
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(b"not an hdf5 file")
    elif damage == "truncated":
        cached_features(bank, images, path)
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "npy":
        with open(path, "wb") as fh:
            np.save(fh, np.zeros(5))
    elif damage == "no features":  # the entry of these settings and images, emptied
        cached_features(bank, images, path)
        with h5py.File(path, "a") as f:
            del f["GaborFeatures"]["features"]
    else:
        with h5py.File(path, "w") as f:
            f["GaborFeatures"] = np.zeros(3)
    before = path.read_bytes()
    with pytest.raises(UnreadableFileError) as info:
        cached_features(bank, images, path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and reason in message
    assert "delete it or choose another path" in message
    assert path.read_bytes() == before  # left as it was


def test_cache_path_that_is_a_folder_is_refused(tmp_path, rng):
    bank = GaborFeatures(n_orientations=2, frequencies=(0.25,), map_size=4, device="cpu")
    with pytest.raises(InputError, match="is a folder"):
        cached_features(bank, rng.random((2, 16, 16, 3)), tmp_path)
