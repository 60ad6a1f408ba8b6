"""Backbones by name (torchvision, timm, open_clip): layers, shapes, preprocessing, weights, cache.

Every test builds networks with random weights (``weights=None``) or reads
files it wrote itself: nothing is ever downloaded. Pretrained-weight requests
run with ``NEURO_OFFLINE=1`` and empty caches, where they must fail at once.
Tests that need a library skip when it is not installed (the ``backbones``
extra).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from neuro.encoders import backbones
from neuro.encoders.backbones import (
    BatchPreprocess,
    LoadedBackbone,
    clip_embeddings,
    clip_text_embeddings,
    list_layers,
    load_backbone,
    parse_backbone_name,
)
from neuro.encoders.features import BackboneFeatures, cached_features
from neuro.errors import InputError, MissingFileError, UnreadableFileError

# one small architecture per library, its default layers and their (C, H, W) at 224 px
CASES = {
    "torchvision": (
        "torchvision:resnet18",
        ["layer1", "layer2", "layer3", "layer4"],
        [(64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)],
    ),
    "timm": (
        "timm:vit_tiny_patch16_224",
        ["blocks.2", "blocks.5", "blocks.8", "blocks.11"],
        [(192, 14, 14)] * 4,
    ),
    "open_clip": (
        "open_clip:ViT-S-32",
        [f"visual.transformer.resblocks.{i}" for i in (2, 5, 8, 11)],
        [(384, 7, 7)] * 4,
    ),
}


def require(library: str):
    """The library's module, or skip the test when it is not installed."""
    try:
        return backbones._import(library)
    except ImportError as exc:
        pytest.skip(str(exc))


_LOADED: dict[tuple, LoadedBackbone] = {}


def loaded(library: str, **kwargs) -> LoadedBackbone:
    """A random-weight backbone of the library's small case, built once per settings."""
    require(library)
    key = (library, tuple(sorted(kwargs.items())))
    if key not in _LOADED:
        _LOADED[key] = load_backbone(CASES[library][0], weights=None, device="cpu", **kwargs)
    return _LOADED[key]


def smooth_images(rng, n: int, height: int, width: int) -> np.ndarray:
    """8-bit images (n, 3, height, width) of smooth random colour, as uint8."""
    coarse = torch.from_numpy(rng.random((n, 3, max(height // 8, 2), max(width // 8, 2))))
    fine = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic")
    return (fine.clamp(0, 1).numpy() * 255).round().astype(np.uint8)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No downloads and empty caches: pretrained weights are never found."""
    monkeypatch.setenv("NEURO_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setattr(hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    return tmp_path


# -------------------------------------------------------------------- names
@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("torchvision:resnet50", ("torchvision", "resnet50", None)),
        (
            "timm:vit_small_patch14_dinov2.lvd142m",
            ("timm", "vit_small_patch14_dinov2.lvd142m", None),
        ),
        ("open_clip:ViT-B-32/laion2b_s34b_b79k", ("open_clip", "ViT-B-32", "laion2b_s34b_b79k")),
        ("OpenCLIP:ViT-B-32", ("open_clip", "ViT-B-32", None)),
    ],
)
def test_parse_backbone_name(name, parts):
    assert parse_backbone_name(name) == parts


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("resnet50", r"has no library.*'torchvision:resnet50'"),
        (
            "torchvison:resnet50",
            r"Unknown backbone library 'torchvison'.*did you mean 'torchvision'",
        ),
        ("keras:resnet50", r"Unknown backbone library 'keras' in 'keras:resnet50'; choose one of"),
        ("timm:", r"has no model after 'timm:'"),
    ],
)
def test_bad_names_fail_in_one_line(name, match):
    with pytest.raises(InputError, match=match) as info:
        load_backbone(name, weights=None)
    assert "\n" not in str(info.value)


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="name must be a string 'LIBRARY:MODEL'"):
        load_backbone(["torchvision", "resnet18"])


@pytest.mark.parametrize(
    ("library", "name", "close"),
    [
        ("torchvision", "torchvision:resnet5", "resnet50"),
        ("timm", "timm:vit_tiny_patch16", "vit_tiny_patch16_224"),
        ("open_clip", "open_clip:ViT-B-31", "ViT-B-32"),
    ],
)
def test_unknown_model_lists_close_matches(library, name, close):
    require(library)
    with pytest.raises(InputError, match=rf"has no model .*Close matches: \[.*'{close}'"):
        load_backbone(name, weights=None)


@pytest.mark.parametrize("library", ["torchvision", "timm", "open_clip"])
def test_missing_library_names_the_extra(monkeypatch, library):
    """Without the library, one line says which extra to install."""
    monkeypatch.setitem(sys.modules, library, None)  # makes `import library` fail
    with pytest.raises(ImportError, match=r"pip install 'neuro\[backbones\]'"):
        load_backbone(CASES[library][0], weights=None)


# ------------------------------------------------------------------- layers
@pytest.mark.parametrize("library", list(CASES))
def test_list_layers_defaults_and_all(library):
    require(library)
    name, defaults, _ = CASES[library]
    assert list_layers(name) == defaults  # built on the meta device: no weights
    every = list_layers(name, all=True)
    assert set(defaults) <= set(every)
    assert "" not in every
    extractor = loaded(library)
    assert extractor.layers == defaults
    assert extractor.list_layers() == defaults
    assert list_layers(extractor.model) == defaults


@pytest.mark.parametrize("library", list(CASES))
def test_features_have_the_expected_shapes(library):
    extractor = loaded(library)
    _, layers, shapes = CASES[library]
    images = np.random.default_rng(0).random((2, 3, 40, 56)).astype(np.float32)
    maps = extractor.transform(images)
    assert list(maps) == layers
    for layer, shape in zip(layers, shapes, strict=True):
        assert maps[layer].shape == (2, *shape)
        assert maps[layer].dtype == np.float32
        assert np.isfinite(maps[layer]).all()
    assert isinstance(extractor, BackboneFeatures)
    assert extractor.name == CASES[library][0]
    assert extractor.weights == "random:0"


def test_vit_patch_tokens_become_maps_in_row_major_order():
    """timm ViT: the CLS token is dropped and token 1 + r * 14 + c lands in map cell [r, c]."""
    extractor = loaded("timm")
    captured = {}
    block = dict(extractor.model.named_modules())["blocks.5"]
    handle = block.register_forward_hook(lambda _m, _i, out: captured.setdefault("tokens", out))
    try:
        images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
        maps = extractor.transform(images)["blocks.5"]
    finally:
        handle.remove()
    tokens = captured["tokens"].numpy()  # (2, 1 + 196, 192)
    assert extractor.n_prefix_tokens == 1
    assert np.allclose(maps[:, :, 3, 10], tokens[:, 1 + 3 * 14 + 10])
    assert np.allclose(maps[:, :, 13, 0], tokens[:, 1 + 13 * 14])


def test_unknown_layer_lists_close_names():
    require("torchvision")
    with pytest.raises(InputError, match=r"\['layer5'\] are not modules.*'layer4'.*all=True"):
        load_backbone("torchvision:resnet18", weights=None, layers=["layer5"])


def test_chosen_layers_and_random_seed():
    require("torchvision")
    a = load_backbone("torchvision:resnet18", weights=None, layers="layer2", random_state=4)
    b = load_backbone("torchvision:resnet18", weights=None, layers="layer2", random_state=4)
    c = load_backbone("torchvision:resnet18", weights=None, layers="layer2", random_state=5)
    wa, wb, wc = (x.model.conv1.weight for x in (a, b, c))
    assert torch.equal(wa, wb)
    assert not torch.equal(wa, wc)
    assert a.weights == "random:4"


# ------------------------------------------------------------ preprocessing
@pytest.mark.parametrize("library", list(CASES))
@pytest.mark.parametrize("size", [(200, 264), (300, 180), (48, 64)])
def test_batched_preprocessing_matches_the_library_transform(library, size, rng):
    """Ours on float batches vs the library's own transform on 8-bit PIL images.

    Tolerance: mean |difference| < 0.01 and max < 0.05 in normalised units
    (one 8-bit step is 0.0078 to 0.017 there); PIL rounds to 8 bits after
    resizing, we do not.
    """
    module = require(library)
    name = CASES[library][0]
    _, transform = backbones._build(library, name.partition(":")[2], module, meta=True)
    prep = BatchPreprocess.from_transform(transform)
    images = smooth_images(rng, 2, *size)
    reference = torch.stack(
        [transform(Image.fromarray(image.transpose(1, 2, 0))) for image in images]
    )
    ours = prep(torch.from_numpy(images).float() / 255)
    assert ours.shape == reference.shape == (2, 3, 224, 224)
    diff = (ours - reference).abs()
    assert float(diff.mean()) < 0.01
    assert float(diff.max()) < 0.05
    assert loaded(library).preprocess == prep


def test_preprocess_reads_the_library_settings():
    require("timm")
    prep = loaded("timm").preprocess
    assert prep.resize == 248  # 224 / crop_pct 0.9
    assert prep.crop == (224, 224)
    assert prep.interpolation == "bicubic"
    assert prep.mean == (0.5, 0.5, 0.5)
    assert "BatchPreprocess(resize=248" in repr(prep) and " at 0x" not in repr(prep)


def test_preprocess_refuses_a_step_it_cannot_batch():
    tv = require("torchvision")
    transform = tv.transforms.Compose(
        [tv.transforms.Resize(8), tv.transforms.RandomHorizontalFlip()]
    )
    with pytest.raises(InputError, match="RandomHorizontalFlip.*pass preprocess="):
        BatchPreprocess.from_transform(transform)


# -------------------------------------------------------------------- cache
def test_loaded_backbone_goes_through_the_feature_cache(tmp_path, monkeypatch):
    extractor = loaded("torchvision", layers=("layer3",))
    images = np.random.default_rng(1).random((2, 3, 32, 40)).astype(np.float32)
    path = tmp_path / "features.h5"
    first = cached_features(extractor, images, path, key="resnet18")
    assert first["layer3"].shape == (2, 256, 14, 14)

    def no_recompute(_images):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(extractor, "transform", no_recompute)
    second = cached_features(extractor, images, path, key="resnet18")
    assert np.array_equal(second["layer3"], first["layer3"])


# ------------------------------------------------------------------ weights
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_local_weights_file_round_trip(tmp_path, suffix):
    require("torchvision")
    source = load_backbone("torchvision:resnet18", weights=None, layers="layer4", random_state=7)
    path = tmp_path / f"resnet18{suffix}"
    state = source.model.state_dict()
    if suffix == ".pt":
        torch.save({"state_dict": state}, path)  # a checkpoint that wraps the state dict
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    again = load_backbone("torchvision:resnet18", weights=path, layers="layer4", random_state=0)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(again.transform(images)["layer4"], source.transform(images)["layer4"])
    assert again.weights == str(path)


def test_foreign_and_damaged_weights_files_fail_in_one_line(tmp_path):
    require("torchvision")
    resnet18 = load_backbone("torchvision:resnet18", weights=None).model
    other = tmp_path / "resnet18.pth"
    torch.save(resnet18.state_dict(), other)
    with pytest.raises(
        UnreadableFileError, match=r"does not hold weights for 'torchvision:resnet34'.*missing"
    ) as info:
        load_backbone("torchvision:resnet34", weights=other)
    assert "\n" not in str(info.value)

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(other.read_bytes()[:5000])
    with pytest.raises(UnreadableFileError, match="is not a readable weights file"):
        load_backbone("torchvision:resnet18", weights=truncated)

    not_a_state_dict = tmp_path / "numbers.pt"
    torch.save({"epoch": 3, "lr": 0.1}, not_a_state_dict)
    with pytest.raises(UnreadableFileError, match="does not hold a state dict"):
        load_backbone("torchvision:resnet18", weights=not_a_state_dict)

    pickled = tmp_path / "pickled.pt"
    torch.save({"conv1.weight": InputError("not a tensor")}, pickled)  # needs unpickling
    with pytest.raises(UnreadableFileError, match="is not a readable weights file"):
        load_backbone("torchvision:resnet18", weights=pickled)

    with pytest.raises(MissingFileError, match="no such file"):
        load_backbone("torchvision:resnet18", weights=tmp_path / "absent.pt")
    with pytest.raises(InputError, match="weights must be a file; .* is a folder"):
        load_backbone("torchvision:resnet18", weights=tmp_path)
    (tmp_path / "weights.txt").write_text("conv1")
    with pytest.raises(InputError, match=r"must be a \.pt or \.pth or \.bin or \.safetensors"):
        load_backbone("torchvision:resnet18", weights=tmp_path / "weights.txt")


@pytest.mark.parametrize(
    ("library", "name", "where"),
    [
        ("torchvision", "torchvision:resnet18", r"checkpoints.resnet18-f37072fd\.pth"),
        ("timm", "timm:vit_tiny_patch16_224", r"repository timm/vit_tiny_patch16_224"),
        ("open_clip", "open_clip:ViT-B-32/laion2b_s34b_b79k", r"repository laion/"),
    ],
)
def test_offline_pretrained_weights_fail_at_once_saying_where(offline, library, name, where):
    require(library)
    with pytest.raises(MissingFileError, match=rf"not on this machine.*{where}.*weights=") as info:
        load_backbone(name)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("torchvision:resnet18/IMAGENET9", r"no weights 'IMAGENET9'.*IMAGENET1K_V1"),
        ("open_clip:ViT-B-32/nonesuch", r"no weights 'nonesuch'.*laion2b_s34b_b79k"),
        ("timm:vit_tiny_patch16_224.nonesuch", r"no weights 'nonesuch'.*augreg"),
    ],
)
def test_unknown_pretrained_tag_lists_the_known_ones(offline, name, match):
    require(parse_backbone_name(name)[0])
    with pytest.raises(InputError, match=match):
        load_backbone(name)


def test_tag_with_random_weights_is_refused():
    require("torchvision")
    with pytest.raises(
        InputError, match=r"names the pretrained weights 'IMAGENET1K_V1' but weights=None"
    ):
        load_backbone("torchvision:resnet18/IMAGENET1K_V1", weights=None)


# --------------------------------------------------------------------- CLIP
def test_clip_image_and_text_embeddings():
    clip = loaded("open_clip")
    images = np.random.default_rng(2).random((2, 3, 40, 48)).astype(np.float32)
    emb = clip_embeddings(images, clip, device="cpu", batch_size=1)
    assert emb.shape == (2, 384) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert not np.allclose(emb[1], emb[0])
    with torch.inference_mode():  # the same as open_clip's own encoder on our preprocessing
        direct = clip.model.encode_image(clip.preprocess(torch.from_numpy(images)), normalize=True)
    assert np.allclose(emb, direct.numpy(), atol=1e-5)

    text = clip_text_embeddings(["a photo of a cat", "a dog"], clip, device="cpu")
    assert text.shape == (2, 384)
    assert np.allclose(np.linalg.norm(text, axis=1), 1, atol=1e-5)
    assert not np.allclose(text[0], text[1])


def test_clip_embeddings_refuse_other_backbones():
    with pytest.raises(InputError, match="must name an open_clip model"):
        clip_embeddings(np.zeros((1, 3, 8, 8)), "torchvision:resnet18")
    with pytest.raises(InputError, match="captions must be a string or a non-empty list"):
        clip_text_embeddings([])


def test_swin_stages_come_out_channels_first():
    """Swin stages give (n, H, W, C); the extractor turns them into (n, C, H, W) maps."""
    require("torchvision")
    swin = load_backbone("torchvision:swin_t", weights=None, layers=["features.7"], device="cpu")
    assert swin.channels_last
    out = swin.transform(torch.rand(1, 3, 64, 64))["features.7"]
    assert out.shape == (1, 768, 7, 7)
    raw = {}
    hook = swin.model.features[7].register_forward_hook(lambda m, i, o: raw.setdefault("x", o))
    try:
        with torch.no_grad():
            swin.model(swin.preprocess(torch.rand(1, 3, 64, 64)))
    finally:
        hook.remove()
    assert raw["x"].shape == (1, 7, 7, 768)  # what the stage itself gives
