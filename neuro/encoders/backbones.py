"""Features from pretrained networks named by library and model: torchvision, timm, open_clip.

:func:`load_backbone` turns a name into a ready feature extractor (a
:class:`~neuro.encoders.BackboneFeatures`): the network, its weights, a default
set of layers and the preprocessing its weights were trained with, so that no
loading code is needed::

    extractor = load_backbone("torchvision:resnet50")            # layer1 ... layer4
    maps = extractor.transform(images)                           # {layer: (n, C, H, W)}
    dino = load_backbone("timm:vit_small_patch14_dinov2.lvd142m", layers=["blocks.11"])
    clip = load_backbone("open_clip:ViT-B-32/laion2b_s34b_b79k")

**Names** are ``"LIBRARY:MODEL"`` or ``"LIBRARY:MODEL/TAG"``:

- ``torchvision:resnet50``; the tag is a weights name of
  ``torchvision.models.get_model_weights`` (``torchvision:resnet50/IMAGENET1K_V2``),
  default ``DEFAULT``;
- ``timm:vit_small_patch14_dinov2``; the tag is timm's pretrained tag, given
  after a slash or, as in timm, after a dot (``timm:resnet50.a1_in1k``);
  default timm's default tag;
- ``open_clip:ViT-B-32``; the tag is one of
  ``open_clip.list_pretrained_tags_by_model(MODEL)`` (``laion2b_s34b_b79k``);
  default the first of them (``openai`` for ViT-B-32).

**Weights**: ``"default"`` loads the named pretrained weights through the
library's own loader and cache (torchvision: ``torch.hub.get_dir()/checkpoints``;
timm and open_clip: the Hugging Face cache, ``HF_HOME``), which downloads them
the first time only. With ``HF_HUB_OFFLINE=1`` (or ``NEURO_OFFLINE=1``) no
download is tried, and weights that are not cached fail at once in one line
that says where to put them. ``None`` gives the architecture with random
weights, seeded by ``random_state`` (a baseline, and what the tests use). A
path to a ``.pt``/``.pth``/``.bin`` file (read with
``torch.load(weights_only=True)``, never unpickled) or a ``.safetensors``
file loads a state dict saved from the same architecture
(``torch.save(model.state_dict(), path)``).

**Preprocessing**: images arrive as ``(n, 3, H, W)`` floats in ``[0, 1]``. The
library's own evaluation transform (torchvision's ``weights.transforms()``,
timm's ``create_transform(**resolve_data_config(...))``, open_clip's
``preprocess``) is read into a :class:`BatchPreprocess`, which applies the
same resize (same size, interpolation and antialiasing), centre crop and
normalisation to whole batches of tensors. Measured against the library's
transform applied to 8-bit PIL images (the tests): mean absolute difference
0.002-0.006 and maximum below 0.035 in normalised units, about two 8-bit
steps (one step is 0.008-0.017 there): PIL rounds to 8 bits after resizing,
the batches stay in float.

**Layers**: :func:`list_layers` gives the default layers (ResNets: ``layer1`` to
``layer4``; vision transformers: four blocks spread evenly through the depth,
the last included; timm models: their ``feature_info``) or, with
``all=True``, every module name usable in ``layers=``. Transformer blocks
give tokens ``(n, tokens, D)``: the class and register tokens are dropped and
the patch tokens become a map ``(n, D, h, w)`` on the patch grid (row-major),
so the readouts can use them. For open_clip the extractor's model is the
whole CLIP model, so its layer names start with ``visual.``
(``visual.transformer.resblocks.11``); :func:`clip_embeddings` and
:func:`clip_text_embeddings` give its L2-normalised image and caption
embeddings ``(n, D)`` for the semantic readout.

The libraries are optional: ``pip install 'neuro[backbones]'``.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch

from data_loaders.errors import one_line
from neuro._validation import check_int
from neuro.encoders.features import BackboneFeatures, iter_image_batches
from neuro.errors import (
    InputError,
    InputKeyError,
    InputTypeError,
    MissingFileError,
    UnreadableFileError,
)
from neuro.train.device import resolve_device

__all__ = [
    "LIBRARIES",
    "BatchPreprocess",
    "LoadedBackbone",
    "clip_embeddings",
    "clip_text_embeddings",
    "list_layers",
    "load_backbone",
    "parse_backbone_name",
]

#: The libraries :func:`load_backbone` reads names from.
LIBRARIES = ("torchvision", "timm", "open_clip")

_INSTALL_HINT = "pip install 'neuro[backbones]'"
_PIP_NAMES = {"torchvision": "torchvision", "timm": "timm", "open_clip": "open_clip_torch"}
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
_OFFLINE_VARIABLES = ("NEURO_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


# ------------------------------------------------------------------ imports
@contextlib.contextmanager
def _tolerate_missing_torchvision_ops() -> Iterator[None]:
    """Let torchvision import when its compiled operators could not be loaded.

    torchvision's wheels on PyPI for Linux are built against CUDA torch; beside
    a CPU build of torch their compiled extension does not load, and
    ``import torchvision`` stops where it registers fake kernels for
    ``torchvision::nms``. The models and transforms are plain Python and work
    without those operators (only detection operators such as ``nms`` need
    them), so during the import a fake-kernel registration for a
    ``torchvision::`` operator that does not exist is skipped.
    """
    import torch.library

    original = torch.library.register_fake

    def register_fake(op, *args, **kwargs):
        if isinstance(op, str) and op.startswith("torchvision::"):
            name = op.split("::", 1)[1].split(".")[0]
            if not hasattr(torch.ops.torchvision, name):
                func = args[0] if args and callable(args[0]) else kwargs.get("func")
                return func if func is not None else (lambda f: f)
        return original(op, *args, **kwargs)

    torch.library.register_fake = register_fake
    try:
        yield
    finally:
        torch.library.register_fake = original


def _import_torchvision():
    """``torchvision``, importable even when its compiled operators do not match torch."""
    if "torchvision" in sys.modules and hasattr(sys.modules["torchvision"], "models"):
        return sys.modules["torchvision"]
    try:
        import torchvision
    except ImportError as exc:
        raise ImportError(
            f"Backbones need torchvision, which is not installed ({one_line(exc)}); "
            f"install it with {_INSTALL_HINT}."
        ) from None
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
        for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            if mod.endswith("_meta_registrations") or mod == "torchvision":
                sys.modules.pop(mod, None)
        with _tolerate_missing_torchvision_ops():
            import torchvision
    return torchvision


def _import(library: str):
    """The library's module (``torchvision``, ``timm`` or ``open_clip``), or an install hint."""
    torchvision = _import_torchvision()  # timm and open_clip import it too
    if library == "torchvision":
        return torchvision
    try:
        if library == "timm":
            import timm
            import timm.data

            return timm
        import open_clip

        return open_clip
    except ImportError as exc:
        raise ImportError(
            f"The backbone library {library!r} is not installed ({one_line(exc)}); install it "
            f"with {_INSTALL_HINT} (or pip install {_PIP_NAMES[library]})."
        ) from None


# -------------------------------------------------------------------- names
def parse_backbone_name(name: str) -> tuple[str, str, str | None]:
    """Split ``"LIBRARY:MODEL[/TAG]"`` into ``(library, model, tag)``.

    Parameters
    ----------
    name : str
        E.g. ``"torchvision:resnet50"``, ``"timm:vit_small_patch14_dinov2.lvd142m"``
        or ``"open_clip:ViT-B-32/laion2b_s34b_b79k"``.

    Returns
    -------
    (str, str, str or None)
        The library (one of :data:`LIBRARIES`), the model and the pretrained
        tag (None for the library's default). A timm tag given after a dot
        stays in the model name, as timm expects it.

    Raises
    ------
    InputTypeError
        ``name`` is not a string.
    InputError
        No library prefix, an unknown library or an empty model name.

    Examples
    --------
    >>> parse_backbone_name("open_clip:ViT-B-32/laion2b_s34b_b79k")
    ('open_clip', 'ViT-B-32', 'laion2b_s34b_b79k')
    >>> parse_backbone_name("timm:resnet50")
    ('timm', 'resnet50', None)
    """
    if not isinstance(name, str):
        raise InputTypeError(
            f"name must be a string 'LIBRARY:MODEL' such as 'torchvision:resnet50'; got "
            f"{type(name).__name__}."
        )
    library, sep, rest = name.partition(":")
    library = library.strip().lower().replace("-", "_")
    if library == "openclip":
        library = "open_clip"
    if not sep:
        raise InputError(
            f"Backbone name {name!r} has no library; write it 'LIBRARY:MODEL' with LIBRARY one "
            f"of {list(LIBRARIES)}, e.g. 'torchvision:{name}' or 'timm:{name}'."
        )
    if library not in LIBRARIES:
        close = difflib.get_close_matches(library, LIBRARIES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(
            f"Unknown backbone library {library!r} in {name!r}{hint}; choose one of "
            f"{list(LIBRARIES)}."
        )
    model, _, tag = rest.strip().partition("/")
    if not model:
        raise InputError(f"Backbone name {name!r} has no model after '{library}:'.")
    return library, model, (tag or None)


def _available_models(library: str, module) -> list[str]:
    if library == "torchvision":
        return list(module.models.list_models())
    if library == "timm":
        return list(module.list_models())
    return list(module.list_models())


def _check_model_known(library: str, model: str, module) -> None:
    names = _available_models(library, module)
    if model in names:
        return
    close = difflib.get_close_matches(model, names, n=5, cutoff=0.5)
    if not close:
        low = model.lower()
        close = [n for n in names if low in n.lower()][:5]
    hint = f" Close matches: {close}." if close else ""
    listing = {
        "torchvision": "torchvision.models.list_models()",
        "timm": "timm.list_models()",
        "open_clip": "open_clip.list_models()",
    }[library]
    raise InputKeyError(f"{library} has no model {model!r}.{hint} All names: {listing}.")


# ------------------------------------------------------------ preprocessing
class BatchPreprocess:
    """A library's evaluation transform (resize, centre crop, normalise) applied to batches.

    Parameters
    ----------
    resize : int or (int, int) or None
        An int resizes the shorter side to it, keeping the aspect ratio (the
        longer side becomes ``int(resize * long / short)``, as in
        torchvision); a pair is ``(height, width)``; None skips resizing.
    crop : (int, int) or None
        Centre crop ``(height, width)``; None skips it.
    mean, std : sequence of 3 float
        Per-channel normalisation ``(x - mean) / std``.
    interpolation : {"bilinear", "bicubic", "nearest"}, default="bilinear"
    antialias : bool, default=True
    max_size : int or None, default=None
        Cap on the longer side after an int ``resize`` (torchvision's ``max_size``).

    Notes
    -----
    The resize and crop are torchvision's own tensor functions, so they follow
    its rules exactly; the resized images are clipped to ``[0, 1]`` (bicubic
    overshoots), as an 8-bit image would be.

    Examples
    --------
    >>> import torch
    >>> prep = BatchPreprocess(resize=8, crop=(8, 8), mean=(0.5,) * 3, std=(0.5,) * 3)
    >>> prep(torch.full((2, 3, 16, 24), 0.75)).shape  # doctest: +SKIP
    torch.Size([2, 3, 8, 8])
    """

    def __init__(
        self,
        resize: int | tuple[int, int] | None,
        crop: tuple[int, int] | None,
        mean: Sequence[float],
        std: Sequence[float],
        interpolation: str = "bilinear",
        antialias: bool = True,
        max_size: int | None = None,
    ) -> None:
        self.resize = resize if resize is None or isinstance(resize, int) else tuple(resize)
        self.crop = None if crop is None else tuple(int(c) for c in crop)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.interpolation = str(interpolation)
        self.antialias = bool(antialias)
        self.max_size = max_size

    def __repr__(self) -> str:  # stable across sessions: part of the feature cache fingerprint
        return (
            f"BatchPreprocess(resize={self.resize!r}, crop={self.crop!r}, mean={self.mean!r}, "
            f"std={self.std!r}, interpolation={self.interpolation!r}, "
            f"antialias={self.antialias!r}, max_size={self.max_size!r})"
        )

    def __eq__(self, other) -> bool:
        return isinstance(other, BatchPreprocess) and repr(self) == repr(other)

    __hash__ = None  # type: ignore[assignment]

    @property
    def output_size(self) -> tuple[int, int] | None:
        """``(height, width)`` of the images the model sees, when the crop fixes it."""
        return self.crop

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocess a batch ``(b, 3, H, W)`` in ``[0, 1]``; returns ``(b, 3, h, w)``."""
        _import_torchvision()
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as TF

        x = images.float()
        if self.resize is not None:
            size = [self.resize] if isinstance(self.resize, int) else list(self.resize)
            mode = InterpolationMode(self.interpolation)
            x = TF.resize(x, size, mode, max_size=self.max_size, antialias=self.antialias)
            x = x.clamp(0, 1)
        if self.crop is not None:
            x = TF.center_crop(x, list(self.crop))
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device)[None, :, None, None]
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device)[None, :, None, None]
        return (x - mean) / std

    @classmethod
    def from_transform(cls, transform) -> BatchPreprocess:
        """Read a torchvision-style evaluation transform into a :class:`BatchPreprocess`.

        Parameters
        ----------
        transform : torchvision ``Compose`` or ``ImageClassification`` preset
            Resize, CenterCrop and Normalize steps are read; conversions to
            tensors or RGB are dropped (the batches are tensors already).

        Returns
        -------
        BatchPreprocess

        Raises
        ------
        InputError
            A step that cannot be reproduced on batches (the message names it).
        """
        if hasattr(transform, "resize_size") and hasattr(transform, "crop_size"):
            return cls(
                resize=_size_arg(transform.resize_size),
                crop=_pair(transform.crop_size),
                mean=transform.mean,
                std=transform.std,
                interpolation=_mode_name(transform.interpolation),
                antialias=bool(getattr(transform, "antialias", True)),
            )
        steps = list(getattr(transform, "transforms", [transform]))
        settings: dict[str, Any] = {
            "resize": None,
            "crop": None,
            "mean": (0.0, 0.0, 0.0),
            "std": (1.0, 1.0, 1.0),
        }
        conversions = {
            "ToTensor",
            "PILToTensor",
            "MaybeToTensor",
            "MaybePILToTensor",
            "MaybeConvertMode",
            "ConvertImageDtype",
            "ToDtype",
            "ToImage",
            "_convert_to_rgb",
            "convert_to_rgb",
        }
        for step in steps:
            kind = getattr(step, "__name__", type(step).__name__)
            if kind == "Resize":
                settings["resize"] = _size_arg(step.size)
                settings["interpolation"] = _mode_name(step.interpolation)
                settings["antialias"] = step.antialias is not False
                settings["max_size"] = step.max_size
            elif kind == "CenterCrop":
                settings["crop"] = _pair(step.size)
            elif kind == "Normalize":
                settings["mean"] = [float(v) for v in np.ravel(np.asarray(step.mean))]
                settings["std"] = [float(v) for v in np.ravel(np.asarray(step.std))]
            elif kind not in conversions:
                raise InputError(
                    f"The library's transform has a step {step!r} that neuro cannot apply to "
                    "image batches; pass preprocess= to BackboneFeatures yourself."
                )
        return cls(**settings)


def _mode_name(mode) -> str:
    return str(getattr(mode, "value", mode)).lower()


def _size_arg(size) -> int | tuple[int, int]:
    if isinstance(size, int):
        return size
    size = list(size)
    return int(size[0]) if len(size) == 1 else (int(size[0]), int(size[1]))


def _pair(size) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    size = list(size)
    return (int(size[0]), int(size[-1]))


# --------------------------------------------------------------- extractor
class LoadedBackbone(BackboneFeatures):
    """A :class:`~neuro.encoders.BackboneFeatures` made by :func:`load_backbone`.

    It is a ``BackboneFeatures`` in every respect (``transform``, caching with
    :func:`~neuro.encoders.cached_features`), and remembers what it was
    loaded from.

    Parameters
    ----------
    model, layers, device, batch_size, preprocess, image_size, n_prefix_tokens, channels_last
        As in :class:`~neuro.encoders.BackboneFeatures`; ``preprocess`` is the
        library's transform as a :class:`BatchPreprocess`.
    name : str, optional
        ``"LIBRARY:MODEL[/TAG]"`` as loaded.
    weights : str, optional
        Where the weights came from: ``"pretrained:TAG"``, ``"random:SEED"``
        or the path of the file.

    Examples
    --------
    >>> extractor = load_backbone("torchvision:resnet18", weights=None)  # doctest: +SKIP
    >>> extractor.layers  # doctest: +SKIP
    ['layer1', 'layer2', 'layer3', 'layer4']
    """

    def __init__(
        self,
        model: torch.nn.Module,
        layers: str | Sequence[str],
        device: str = "auto",
        batch_size: int = 32,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | str | None = None,
        image_size: int | None = None,
        n_prefix_tokens: int = 0,
        channels_last: bool = False,
        name: str | None = None,
        weights: str | None = None,
    ) -> None:
        super().__init__(
            model=model,
            layers=layers,
            device=device,
            batch_size=batch_size,
            preprocess=preprocess,
            image_size=image_size,
            n_prefix_tokens=n_prefix_tokens,
            channels_last=channels_last,
        )
        self.name = name
        self.weights = weights

    @property
    def library(self) -> str | None:
        """The library the model came from (``"torchvision"``, ``"timm"``, ``"open_clip"``)."""
        return None if self.name is None else self.name.partition(":")[0]

    def list_layers(self, all: bool = False) -> list[str]:
        """The default layers, or with ``all=True`` every module name usable in ``layers=``."""
        return list_layers(self, all=all)


# ------------------------------------------------------------------ layers
_BLOCK_LISTS = (
    "blocks",
    "encoder.layers",
    "transformer.resblocks",
    "features",
    "stages",
    "layers",
)


def _spread(names: list[str], k: int = 4) -> list[str]:
    """``k`` names spread evenly through ``names``, the last one included."""
    if len(names) <= k:
        return list(names)
    return [names[math.ceil((i + 1) * len(names) / k) - 1] for i in range(k)]


def _default_layers(model: torch.nn.Module) -> list[str]:
    visual = getattr(model, "visual", None)
    if isinstance(visual, torch.nn.Module) and hasattr(model, "encode_image"):  # CLIP
        return [f"visual.{n}" for n in _default_layers(visual)]
    trunk = getattr(model, "trunk", None)
    if isinstance(trunk, torch.nn.Module):  # open_clip's wrapper of a timm image tower
        return [f"trunk.{n}" for n in _default_layers(trunk)]
    modules = dict(model.named_modules())
    resnet = [f"layer{i}" for i in range(1, 5)]
    if all(n in modules for n in resnet):
        return resnet
    info = getattr(model, "feature_info", None)  # timm: the stages features_only would give
    if isinstance(info, list) and info and all(isinstance(f, dict) for f in info):
        names = [f.get("module") for f in info]
        names = [n for n in names if isinstance(n, str) and n in modules and n]
        if names:
            return _spread(names)
    for name in _BLOCK_LISTS:
        block = modules.get(name)
        if isinstance(block, (torch.nn.ModuleList, torch.nn.Sequential)) and len(block):
            return _spread([f"{name}.{child}" for child, _ in block.named_children()])
    children = [n for n, m in model.named_children() if any(True for _ in m.parameters())]
    return _spread(children[:-1] if len(children) > 1 else children)


def _prefix_tokens(model: torch.nn.Module) -> int:
    """Class and register tokens before the patch tokens in the model's block outputs."""
    n = getattr(model, "num_prefix_tokens", None)  # timm
    if isinstance(n, int):
        return n
    visual = getattr(model, "visual", model)  # open_clip
    trunk = getattr(visual, "trunk", None)
    if isinstance(getattr(trunk, "num_prefix_tokens", None), int):
        return trunk.num_prefix_tokens
    if getattr(visual, "class_embedding", None) is not None:
        return 1
    if getattr(model, "class_token", None) is not None:  # torchvision ViT
        return 1
    return 0


def list_layers(backbone, *, all: bool = False) -> list[str]:
    """The layers of a backbone: its default set, or every module name usable in ``layers=``.

    Parameters
    ----------
    backbone : str, LoadedBackbone, BackboneFeatures or torch.nn.Module
        A name as in :func:`load_backbone` (the model is built on the
        ``meta`` device: no weights are loaded, no memory is used), an
        extractor, or a network.
    all : bool, default=False
        False: the default layers (ResNets ``layer1`` to ``layer4``; timm
        models their ``feature_info`` stages, four at most; transformers four
        blocks spread through the depth, the last included). True: every
        named module.

    Returns
    -------
    list of str

    Examples
    --------
    >>> list_layers("torchvision:resnet50")  # doctest: +SKIP
    ['layer1', 'layer2', 'layer3', 'layer4']
    >>> list_layers("timm:vit_small_patch14_dinov2")  # doctest: +SKIP
    ['blocks.2', 'blocks.5', 'blocks.8', 'blocks.11']
    """
    if isinstance(backbone, str):
        library, model_name, _ = parse_backbone_name(backbone)
        module = _import(library)
        _check_model_known(library, model_name, module)
        model, _ = _build(library, model_name, module, meta=True)
    elif isinstance(backbone, BackboneFeatures):
        model = backbone.model
    elif isinstance(backbone, torch.nn.Module):
        model = backbone
    else:
        raise InputTypeError(
            "backbone must be a name such as 'torchvision:resnet50', an extractor from "
            f"load_backbone or a torch.nn.Module; got {type(backbone).__name__}."
        )
    if all:
        return [n for n, _ in model.named_modules() if n]
    return _default_layers(model)


# ----------------------------------------------------------------- weights
def _offline() -> bool:
    """Whether the user has turned downloads off (``NEURO_OFFLINE`` / ``HF_HUB_OFFLINE``)."""
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in _OFFLINE_VARIABLES
    )


def _hf_cache_dir() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - timm and open_clip depend on it
        home = os.environ.get("HF_HOME", os.path.join("~", ".cache", "huggingface"))
        return os.path.expanduser(os.path.join(home, "hub"))


def _in_hf_cache(repo_id: str, filenames: Sequence[str]) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return False
    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=_hf_cache_dir())
        if isinstance(found, str) and os.path.isfile(found):
            return True
    return False


def _torch_hub_file(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _pretrained_location(library: str, model: str, tag: str | None, module) -> tuple[bool, str]:
    """Whether the pretrained weights are on this machine, and where they belong."""
    if library == "torchvision":
        weights = _torchvision_weights(model, tag, module)
        path = _torch_hub_file(weights.url)
        return path.is_file(), str(path)
    if library == "timm":
        full = model if tag is None else f"{model}.{tag}"
        cfg = module.models.get_pretrained_cfg(full)
        if cfg is None:
            return False, "(timm has no pretrained weights for this model)"
        if cfg.hf_hub_id:
            names = [n for n in (cfg.hf_hub_filename,) if n]
            names += ["model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"]
            where = f"the Hugging Face cache {_hf_cache_dir()} (repository {cfg.hf_hub_id})"
            return _in_hf_cache(cfg.hf_hub_id, names), where
        if cfg.url:
            path = _torch_hub_file(cfg.url)
            return path.is_file(), str(path)
        return False, "(timm has no download location for it)"
    cfg = module.get_pretrained_cfg(model, tag) or {}
    if cfg.get("hf_hub"):  # "owner/repo/" or "owner/repo/filename"
        parts = cfg["hf_hub"].strip("/").split("/")
        repo_id = "/".join(parts[:2])
        names = [*parts[2:3], "open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        where = f"the Hugging Face cache {_hf_cache_dir()} (repository {repo_id})"
        return _in_hf_cache(repo_id, names), where
    if cfg.get("url"):
        path = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(cfg["url"])
        return path.is_file(), str(path)
    return False, "(open_clip has no download location for it)"


def _weights_missing(name: str, where: str, reason: str) -> MissingFileError:
    return MissingFileError(
        f"Pretrained weights for {name!r} are not on this machine and {reason}. They belong in "
        f"{where}: load them once where there is a network (the library caches them there), or "
        "pass weights='/path/to/weights.safetensors' (or .pt/.pth) for a file you have."
    )


def _torchvision_weights(model: str, tag: str | None, module):
    try:
        enum = module.models.get_model_weights(model)
    except (ValueError, KeyError) as exc:
        raise InputError(
            f"torchvision has no pretrained weights for {model!r} ({one_line(exc)}); pass "
            "weights=None for random weights or a file path."
        ) from None
    choice = tag or "DEFAULT"
    try:
        return enum[choice] if choice != "DEFAULT" else enum.DEFAULT
    except KeyError:
        options = [w.name for w in enum]
        raise InputKeyError(
            f"torchvision has no weights {choice!r} for {model!r}; choose one of {options} "
            f"(as 'torchvision:{model}/{options[0]}')."
        ) from None


def _read_state_dict(path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.pt``/``.pth``/``.bin`` (weights_only) or ``.safetensors`` file."""
    from neuro._validation import check_file

    p = check_file("weights", path, suffixes=_WEIGHT_SUFFIXES)
    try:
        if p.name.lower().endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(str(p), device="cpu")
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except ImportError:
        raise ImportError(
            f"Reading {p.name} needs safetensors; install it with {_INSTALL_HINT}."
        ) from None
    except Exception as exc:  # truncated, foreign or pickled objects: the library says which
        raise UnreadableFileError(
            f"weights: {str(p)!r} is not a readable weights file ({one_line(exc)}); give a "
            "complete state dict saved with torch.save(model.state_dict(), path) or safetensors."
        ) from None
    if isinstance(state, dict) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        for key in ("state_dict", "model", "model_state_dict", "module"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not (
        isinstance(state, dict)
        and state
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    ):
        raise UnreadableFileError(
            f"weights: {str(p)!r} does not hold a state dict (names to tensors); save one with "
            "torch.save(model.state_dict(), path)."
        )
    if all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _load_state_dict(model: torch.nn.Module, state: dict, path, name: str) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    foreign = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or foreign or shapes:
        parts = []
        if missing:
            parts.append(
                f"{len(missing)} of the model's {len(own)} tensors missing (e.g. {missing[0]!r})"
            )
        if foreign:
            parts.append(f"{len(foreign)} foreign tensors (e.g. {foreign[0]!r})")
        if shapes:
            k = shapes[0]
            parts.append(
                f"{len(shapes)} of other shapes (e.g. {k!r}: {tuple(state[k].shape)} in the file, "
                f"{tuple(own[k].shape)} in the model)"
            )
        raise UnreadableFileError(
            f"weights: {str(path)!r} does not hold weights for {name!r}: {'; '.join(parts)}. Give "
            "a state dict saved from this architecture: torch.save(model.state_dict(), path)."
        )
    model.load_state_dict(state, strict=True)


# ------------------------------------------------------------------ loading
def _build(library: str, model: str, module, pretrained: str | None = None, meta: bool = False):
    """The network and the library's evaluation transform, with or without pretrained weights.

    ``pretrained`` is a tag (``""`` for the library's default) or None for
    random weights; ``meta=True`` builds the network on the ``meta`` device
    (shapes only, no memory), to list its layers.
    """
    on_meta = torch.device("meta") if meta else contextlib.nullcontext()
    if library == "torchvision":
        weights = None if pretrained is None else _torchvision_weights(model, pretrained, module)
        with on_meta:
            net = module.models.get_model(model, weights=weights)
        if weights is None:
            try:
                weights = module.models.get_model_weights(model).DEFAULT
            except (ValueError, KeyError):  # no published weights: ImageNet's usual transform
                from torchvision.transforms._presets import ImageClassification

                return net, ImageClassification(crop_size=224)
        return net, weights.transforms()
    if library == "timm":
        full = f"{model}.{pretrained}" if pretrained else model
        with on_meta:
            net = module.create_model(full, pretrained=pretrained is not None)
        config = module.data.resolve_data_config({}, model=net)
        return net, module.data.create_transform(**config, is_training=False)
    with on_meta:
        net, _, transform = module.create_model_and_transforms(
            model, pretrained=pretrained, device="meta" if meta else "cpu"
        )
    return net, transform


def load_backbone(
    name: str,
    *,
    weights: str | os.PathLike | None = "default",
    layers: str | Sequence[str] | None = None,
    device: str = "auto",
    batch_size: int = 32,
    random_state: int = 0,
) -> LoadedBackbone:
    """A pretrained network by name, as a feature extractor with its layers and preprocessing.

    Parameters
    ----------
    name : str
        ``"LIBRARY:MODEL"`` or ``"LIBRARY:MODEL/TAG"`` with LIBRARY one of
        ``torchvision``, ``timm``, ``open_clip`` (see the module's notes),
        e.g. ``"torchvision:resnet50"``, ``"timm:vit_small_patch14_dinov2"``,
        ``"open_clip:ViT-B-32/laion2b_s34b_b79k"``.
    weights : "default", None or path, default="default"
        ``"default"``: the pretrained weights named by the tag (or the
        library's default), from the library's cache, downloaded there the
        first time unless ``HF_HUB_OFFLINE``/``NEURO_OFFLINE`` is set. None:
        random weights (seeded by ``random_state``). A path: a state dict of
        this architecture in a ``.pt``, ``.pth``, ``.bin`` or
        ``.safetensors`` file.
    layers : str or list of str, optional
        Module names to read (see :func:`list_layers`); default the family's
        default set.
    device : str, default="auto"
    batch_size : int, default=32
        Images per forward pass; bounds memory.
    random_state : int, default=0
        Seed of the random weights when ``weights=None``.

    Returns
    -------
    LoadedBackbone
        A :class:`~neuro.encoders.BackboneFeatures`: ``transform(images)``
        gives ``{layer: (n, C, H, W)}`` (float32), run in eval mode under
        ``torch.inference_mode`` in batches; use it with
        :func:`~neuro.encoders.cached_features`.

    Raises
    ------
    ImportError
        The library is not installed (the message gives
        ``pip install 'neuro[backbones]'``).
    InputError
        An unknown library or model (the message lists close matches), a tag
        the library does not know, or a layer that is not a module.
    MissingFileError
        The weights file does not exist, or pretrained weights are not cached
        and cannot be downloaded (offline): the message says where they go.
    UnreadableFileError
        The weights file is empty, truncated, not a state dict, or one of
        another architecture.

    Examples
    --------
    >>> import torch
    >>> extractor = load_backbone("torchvision:resnet18", weights=None, device="cpu")  # doctest: +SKIP
    >>> maps = extractor.transform(torch.rand(2, 3, 64, 80))  # doctest: +SKIP
    >>> {k: v.shape for k, v in maps.items()}  # doctest: +SKIP
    {'layer1': (2, 64, 56, 56), 'layer2': (2, 128, 28, 28), 'layer3': (2, 256, 14, 14), 'layer4': (2, 512, 7, 7)}
    """
    library, model_name, tag = parse_backbone_name(name)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    random_state = check_int("random_state", random_state)
    resolve_device(device)  # checked now, used when features are computed
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise InputTypeError(
            f"weights must be 'default', None or a path to a weights file; got "
            f"{type(weights).__name__}."
        )
    pretrained = isinstance(weights, str) and weights == "default"
    if tag is not None and not pretrained:
        raise InputError(
            f"{name!r} names the pretrained weights {tag!r} but weights={weights!r}; drop "
            f"'/{tag}' from the name, or use weights='default'."
        )
    module = _import(library)
    if library == "timm" and "." in model_name:  # timm's own "model.tag" spelling
        model_name, _, tag = model_name.partition(".")
        if not pretrained:
            raise InputError(
                f"{name!r} names the pretrained weights {tag!r} but weights={weights!r}; use "
                f"'timm:{model_name}', or weights='default'."
            )
    _check_model_known(library, model_name, module)

    if pretrained:
        if library == "open_clip" and tag is None:
            tags = module.list_pretrained_tags_by_model(model_name)
            if not tags:
                raise InputError(
                    f"open_clip has no pretrained weights for {model_name!r}; pass weights=None "
                    "or a file path."
                )
            tag = tags[0]
        if library == "open_clip" and tag not in module.list_pretrained_tags_by_model(model_name):
            tags = module.list_pretrained_tags_by_model(model_name)
            raise InputKeyError(
                f"open_clip has no weights {tag!r} for {model_name!r}; choose one of {tags}."
            )
        if library == "timm" and tag is not None:
            try:
                module.models.get_pretrained_cfg(f"{model_name}.{tag}")
            except RuntimeError:
                tags = [
                    n.partition(".")[2]
                    for n in module.list_pretrained(f"{model_name}.*")
                    if n.startswith(f"{model_name}.")
                ]
                raise InputKeyError(
                    f"timm has no weights {tag!r} for {model_name!r}; choose one of {tags}."
                ) from None
        cached, where = _pretrained_location(library, model_name, tag, module)
        if not cached and _offline():
            raise _weights_missing(
                name, where, "downloads are off (NEURO_OFFLINE / HF_HUB_OFFLINE is set)"
            )
        try:
            model, transform = _build(library, model_name, module, pretrained=tag or "")
        except (InputError, ImportError):
            raise
        except Exception as exc:  # no network, a refused download, a damaged cache file
            raise _weights_missing(name, where, f"could not be loaded ({one_line(exc)})") from exc
        source = f"pretrained:{tag or 'default'}"
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_state)
            model, transform = _build(library, model_name, module)
        if weights is None:
            source = f"random:{random_state}"
        else:
            _load_state_dict(model, _read_state_dict(weights), weights, name)
            source = str(Path(weights).expanduser())
    model.eval()
    chosen = _default_layers(model) if layers is None else layers
    extractor = LoadedBackbone(
        model,
        layers=chosen,
        device=device,
        batch_size=batch_size,
        preprocess=BatchPreprocess.from_transform(transform),
        n_prefix_tokens=_prefix_tokens(model),
        channels_last="swin" in model_name.lower(),  # Swin stages give (n, H, W, C)
        name=f"{library}:{model_name}" + (f"/{tag}" if pretrained and tag else ""),
        weights=source,
    )
    names = extractor._layer_names()
    modules = dict(model.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        close = {n: difflib.get_close_matches(n, list(modules), n=3) for n in unknown}
        raise InputError(
            f"Layer(s) {unknown} are not modules of {name!r}; close names: {close}. See "
            f"list_layers({name!r}, all=True)."
        )
    return extractor


# -------------------------------------------------------------------- CLIP
def _clip_backbone(model, weights, device: str, batch_size: int) -> LoadedBackbone:
    if isinstance(model, LoadedBackbone):
        if model.library != "open_clip":
            raise InputError(
                f"model must be an open_clip backbone; got {model.name!r}. Load one with "
                "load_backbone('open_clip:ViT-B-32')."
            )
        return model
    if isinstance(model, str):
        if parse_backbone_name(model)[0] != "open_clip":
            raise InputError(
                f"model must name an open_clip model ('open_clip:ViT-B-32'); got {model!r}."
            )
        return load_backbone(model, weights=weights, device=device, batch_size=batch_size)
    raise InputTypeError(
        "model must be a name such as 'open_clip:ViT-B-32' or a backbone from load_backbone; "
        f"got {type(model).__name__}."
    )


def clip_embeddings(
    images,
    model: str | LoadedBackbone = "open_clip:ViT-B-32",
    *,
    weights: str | os.PathLike | None = "default",
    device: str = "auto",
    batch_size: int = 32,
) -> np.ndarray:
    """L2-normalised CLIP image embeddings, one vector per image, for the semantic readout.

    Parameters
    ----------
    images : array, tensor or ImageSet
        ``(n, 3, H, W)`` (or ``(n, H, W, 3)``) floats in ``[0, 1]``; read
        ``batch_size`` at a time.
    model : str or LoadedBackbone, default="open_clip:ViT-B-32"
        An open_clip name (``"open_clip:ViT-B-32/laion2b_s34b_b79k"``) or a
        backbone already loaded with :func:`load_backbone` (then ``weights``
        is not used).
    weights : "default", None or path, default="default"
        As in :func:`load_backbone`.
    device : str, default="auto"
    batch_size : int, default=32

    Returns
    -------
    ndarray of shape (n, D), float32
        Unit-length rows (``D`` = 512 for ViT-B-32), e.g. for
        ``compare_encoders(semantic=...)``.
    """
    backbone = _clip_backbone(model, weights, device, batch_size)
    dev = resolve_device(device)
    clip = backbone.model
    was_training = clip.training
    param = next(clip.parameters(), None)
    home = param.device if param is not None else None
    out = []
    try:
        clip.eval().to(dev)
        with torch.inference_mode():
            for batch in iter_image_batches(images, batch_size):
                x = backbone.preprocess(batch.to(dev))
                out.append(clip.encode_image(x, normalize=True).float().cpu())
    finally:
        clip.train(was_training)
        if home is not None:
            clip.to(home)
    return torch.cat(out).numpy()


@functools.lru_cache(maxsize=4)
def _clip_tokenizer(arch: str):
    """open_clip's tokenizer of an architecture, read once per session."""
    open_clip = _import("open_clip")
    try:
        return open_clip.get_tokenizer(arch)
    except Exception as exc:  # a hub tokenizer that is not cached, offline
        raise MissingFileError(
            f"The tokenizer of {arch!r} could not be loaded ({one_line(exc)}); it comes from the "
            "Hugging Face hub: load it once with a network, or use a model whose tokenizer "
            "ships with open_clip (ViT-B-32)."
        ) from exc


def clip_text_embeddings(
    captions: str | Sequence[str],
    model: str | LoadedBackbone = "open_clip:ViT-B-32",
    *,
    weights: str | os.PathLike | None = "default",
    device: str = "auto",
    batch_size: int = 256,
) -> np.ndarray:
    """L2-normalised CLIP text embeddings of captions, in the space of :func:`clip_embeddings`.

    Parameters
    ----------
    captions : str or sequence of str
    model : str or LoadedBackbone, default="open_clip:ViT-B-32"
        As in :func:`clip_embeddings`. The ViT-B-32 family's tokenizer ships
        with open_clip (no download); models whose tokenizer lives on the
        Hugging Face hub need it in the cache.
    weights : "default", None or path, default="default"
    device : str, default="auto"
    batch_size : int, default=256
        Captions per forward pass.

    Returns
    -------
    ndarray of shape (n_captions, D), float32
    """
    if isinstance(captions, str):
        captions = [captions]
    captions = list(captions)
    if not captions or not all(isinstance(c, str) for c in captions):
        raise InputError("captions must be a string or a non-empty list of strings.")
    backbone = _clip_backbone(model, weights, device, 32)
    arch = backbone.name.partition(":")[2].partition("/")[0]
    tokenizer = _clip_tokenizer(arch)
    dev = resolve_device(device)
    clip = backbone.model
    was_training = clip.training
    param = next(clip.parameters(), None)
    home = param.device if param is not None else None
    out = []
    try:
        clip.eval().to(dev)
        with torch.inference_mode():
            for start in range(0, len(captions), batch_size):
                tokens = tokenizer(captions[start : start + batch_size]).to(dev)
                out.append(clip.encode_text(tokens, normalize=True).float().cpu())
    finally:
        clip.train(was_training)
        if home is not None:
            clip.to(home)
    return torch.cat(out).numpy()
