"""Image features for voxel encoders: feature maps ``(n_images, channels, height, width)``.

- :class:`GaborFeatures`: a V1-like model that needs no trained weights: the
  energy of quadrature-pair Gabor filters at several spatial frequencies and
  orientations, pooled onto a ``map_size x map_size`` grid;
- :class:`BackboneFeatures`: any torch network the user hands over, read at
  named layers with forward hooks, in batches on the chosen device;
- :func:`pool_features`: vectors from maps (global mean or max, a coarse grid,
  or flattened);
- :func:`cached_features`: features kept in an HDF5 file so a second fit does
  not recompute them.

Images are float arrays or tensors ``(n, 3, H, W)`` or ``(n, H, W, 3)`` in
``[0, 1]`` (grayscale ``(n, H, W)`` too), or a
:class:`data_loaders.stimuli.ImageSet`, which is read ``batch_size`` images at
a time so memory stays bounded.

Map coordinates follow the rest of the package (and
``torch.nn.functional.grid_sample`` with ``align_corners=False``): a point
``(x, y)`` in ``[-1, 1]²`` has ``x`` running left to right and ``y`` top to
bottom, and lies in map cell ``[..., row, col]`` with
``row = floor((y + 1) / 2 * H)`` and ``col = floor((x + 1) / 2 * W)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import types
from collections.abc import Callable, Iterator, Sequence
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, TransformerMixin

from neuro.errors import InputError, UnreadableFileError
from neuro.train.device import resolve_device

__all__ = [
    "BackboneFeatures",
    "FeatureCacheError",
    "GaborFeatures",
    "cached_features",
    "iter_image_batches",
    "pool_features",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FeatureCacheError(InputError):
    """A feature cache entry was made from other settings or images than the ones given.

    (A cache file that cannot be read at all raises
    :class:`~neuro.errors.UnreadableFileError` instead.)
    """


# ------------------------------------------------------------------ images
def _as_nchw(images) -> torch.Tensor:
    """Images as a float32 tensor (n, 3, H, W) on the CPU, checked."""
    t = (
        images.detach().cpu()
        if isinstance(images, torch.Tensor)
        else torch.from_numpy(np.ascontiguousarray(images))
    )
    if t.ndim == 3:  # grayscale (n, H, W)
        t = t[:, None].expand(-1, 3, -1, -1)
    if t.ndim != 4:
        raise InputError(
            "images must have shape (n, 3, H, W), (n, H, W, 3) or (n, H, W); got shape "
            f"{tuple(t.shape)}. A single image needs a leading axis: images[None]."
        )
    if t.shape[1] not in (1, 3) and t.shape[-1] in (1, 3):
        t = t.permute(0, 3, 1, 2)
    if t.shape[1] not in (1, 3):
        raise InputError(
            f"images must have 1 or 3 colour channels (axis 1 or the last axis); got shape "
            f"{tuple(t.shape)}."
        )
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    if len(t) == 0:
        raise InputError("images is empty (0 images); give at least one image.")
    if t.dtype == torch.uint8:
        t = t.float() / 255
    t = t.float()
    if not torch.isfinite(t).all():
        raise InputError("images contain NaN or infinite values; fix or drop those images.")
    return t


def iter_image_batches(
    images, batch_size: int, size: tuple[int, int] | None = None
) -> Iterator[torch.Tensor]:
    """Yield float32 image batches ``(b, 3, H, W)`` from an array, tensor or ImageSet.

    Parameters
    ----------
    images : array, tensor or ImageSet
    batch_size : int
    size : (h, w), optional
        Resize every image to this size (bilinear, antialiased).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer; got {batch_size!r}.")
    if hasattr(images, "batches") and hasattr(images, "load"):
        if len(images) == 0:
            raise InputError("The image set is empty; give at least one image.")
        for _, stack in images.batches(batch_size, size=size):
            yield _as_nchw(stack)
        return
    t = _as_nchw(images)
    for start in range(0, len(t), batch_size):
        batch = t[start : start + batch_size]
        if size is not None and tuple(batch.shape[-2:]) != tuple(size):
            batch = F.interpolate(batch, size=size, mode="bilinear", antialias=True)
        yield batch


# ------------------------------------------------------------------- Gabor
class GaborFeatures(TransformerMixin, BaseEstimator):
    """Energy of a bank of Gabor filters: a model of V1 complex cells.

    Each image is converted to grayscale, its mean removed, and filtered by
    complex Gabor filters (a quadrature pair: cosine and sine phase) at each
    spatial frequency and orientation. The energy at each pixel is the
    amplitude of the complex response, ``sqrt(even² + odd²)``; energy maps
    are average-pooled onto a ``map_size x map_size`` grid. Filtering is done
    in the Fourier domain on the zero-padded image (no wrap-around), batched,
    on the chosen device.

    Parameters
    ----------
    n_orientations : int, default=8
        Orientations ``k * 180° / n_orientations``, ``k = 0, 1, ...``; 0° is a
        vertical grating (luminance varies along x), angles grow anticlockwise.
    frequencies : sequence of float, default=(0.25, 0.125, 0.0625)
        Spatial frequencies in cycles per pixel of the (resized) image, each
        in (0, 0.5]. Each filter's bandwidth is one octave (Gaussian envelope
        sd ``0.56 / f`` pixels).
    map_size : int, default=16
        Side of the output maps.
    image_size : int or None, default=None
        Resize images to ``image_size x image_size`` first; None keeps their
        size (then all images must share one size).
    device : str, default="auto"
    batch_size : int, default=64
        Images filtered at once; bounds memory, which peaks near
        ``16 * batch_size * channels * (1.5 H) * (1.5 W)`` bytes (two complex64
        spectra of the padded images): about 230 MB for 64 images of 64 x 64
        with 24 channels.

    Attributes
    ----------
    channels : list of (float, float)
        ``(frequency in cycles/pixel, orientation in degrees)`` per channel,
        frequency-major: channel ``i * n_orientations + k`` is frequency ``i``
        at orientation ``k``.
    channel_names : list of str
        The same as ``"f=<cycles/px> ori=<degrees>"``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(32)
    >>> grating = 0.5 + 0.5 * np.cos(2 * np.pi * 0.25 * x)[None, :].repeat(32, 0)  # vertical
    >>> bank = GaborFeatures(n_orientations=4, frequencies=(0.25, 0.0625), map_size=4, device="cpu")
    >>> maps = bank.transform(grating[None, None])
    >>> maps.shape
    (1, 8, 4, 4)
    >>> bank.channel_names[int(maps.mean(axis=(2, 3)).argmax())]
    'f=0.25 ori=0'
    """

    def __init__(
        self,
        n_orientations: int = 8,
        frequencies: Sequence[float] = (0.25, 0.125, 0.0625),
        map_size: int = 16,
        image_size: int | None = None,
        device: str = "auto",
        batch_size: int = 64,
    ) -> None:
        self.n_orientations = n_orientations
        self.frequencies = frequencies
        self.map_size = map_size
        self.image_size = image_size
        self.device = device
        self.batch_size = batch_size

    def _check(self) -> tuple[np.ndarray, torch.device]:
        for name, default in (("n_orientations", 8), ("map_size", 16), ("batch_size", 64)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise InputError(
                    f"{name} must be a positive integer (e.g. the default {name}={default}); "
                    f"got {value!r}."
                )
        size = self.image_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, Integral)):
            raise InputError(f"image_size must be None or an integer >= 8; got {size!r}.")
        if size is not None and size < 8:
            raise InputError(
                f"image_size must be None or an integer >= 8; got {size!r}. Use None to "
                "keep the images' own size."
            )
        freqs = np.atleast_1d(np.asarray(self.frequencies, dtype=np.float64))
        if (
            freqs.size == 0
            or not np.all(np.isfinite(freqs))
            or np.any(freqs <= 0)
            or np.any(freqs > 0.5)
        ):
            raise InputError(
                f"frequencies must be cycles per pixel in (0, 0.5] (0.5 is the Nyquist limit), "
                f"e.g. (0.25, 0.125, 0.0625); got {self.frequencies!r}. To give cycles per "
                "image, divide by the image side in pixels."
            )
        return freqs, resolve_device(self.device)

    @property
    def channels(self) -> list[tuple[float, float]]:
        freqs, _ = self._check()
        n = self.n_orientations
        return [(float(f), 180 * k / n) for f in freqs for k in range(n)]

    @property
    def channel_names(self) -> list[str]:
        return [f"f={f:g} ori={ori:g}" for f, ori in self.channels]

    def fit(self, images=None, y=None) -> GaborFeatures:
        """Nothing to learn; checks the settings and returns self."""
        self._check()
        return self

    def _filters(self, freqs, height: int, width: int, device) -> torch.Tensor:
        """Frequency responses (C, height, width) of the analytic Gabor filters."""
        fy = torch.fft.fftfreq(height, device=device, dtype=torch.float64)[:, None]
        fx = torch.fft.fftfreq(width, device=device, dtype=torch.float64)[None, :]
        bank = []
        for f in freqs:
            sd = 0.56 / f  # spatial envelope sd in pixels: one-octave bandwidth
            sd_f = 1.0 / (2 * np.pi * sd)
            for k in range(self.n_orientations):
                theta = np.pi * k / self.n_orientations
                cx, cy = f * np.cos(theta), -f * np.sin(theta)  # y runs downwards
                g = torch.exp(-((fx - cx) ** 2 + (fy - cy) ** 2) / (2 * sd_f**2))
                bank.append(g)
        return torch.stack(bank).to(torch.complex64)

    def transform(self, images) -> np.ndarray:
        """Feature maps ``(n_images, n_frequencies * n_orientations, map_size, map_size)``."""
        freqs, device = self._check()
        size = None if self.image_size is None else (self.image_size, self.image_size)
        out, bank, shape = [], None, None
        for batch in iter_image_batches(images, self.batch_size, size):
            if shape is not None and tuple(batch.shape[-2:]) != shape:
                raise InputError(
                    f"images differ in size ({shape} and {tuple(batch.shape[-2:])}); set "
                    "image_size= to resize them all."
                )
            shape = tuple(batch.shape[-2:])
            h, w = shape
            gray = batch.to(device).mean(1)  # (b, h, w)
            gray = gray - gray.mean(dim=(1, 2), keepdim=True)
            ph, pw = h + h // 2, w + w // 2  # zero padding: no wrap-around at the borders
            if bank is None:
                bank = self._filters(freqs, ph, pw, device)
            spec = torch.fft.fft2(gray, s=(ph, pw))  # (b, ph, pw)
            resp = torch.fft.ifft2(spec[:, None] * bank[None])[..., :h, :w]
            energy = resp.abs().float()  # (b, C, h, w)
            out.append(F.adaptive_avg_pool2d(energy, self.map_size).cpu())
        return torch.cat(out).numpy()

    def __call__(self, images) -> np.ndarray:
        return self.transform(images)


# ---------------------------------------------------------------- backbone
class BackboneFeatures(BaseEstimator):
    """Activations of any torch network at named layers, read with forward hooks.

    Parameters
    ----------
    model : torch.nn.Module
        The network (e.g. a torchvision ResNet or a ViT with weights the user
        loaded). It is run in eval mode under ``torch.inference_mode``; its
        own mode is restored afterwards.
    layers : str or list of str
        Module names as in ``model.named_modules()`` (e.g. ``"layer3"``).
    device : str, default="auto"
    batch_size : int, default=32
        Images per forward pass; bounds memory.
    preprocess : callable or "imagenet" or None, default="imagenet"
        Applied to each batch ``(b, 3, H, W)`` in ``[0, 1]`` before the model:
        ``"imagenet"`` normalises with the ImageNet mean and sd most
        pretrained vision models expect; None passes images unchanged.
    image_size : int or None, default=None
        Resize images to ``image_size x image_size`` first.
    n_prefix_tokens : int, default=0
        For token outputs ``(b, tokens, D)`` (transformers, batch first): the
        first ``n_prefix_tokens`` tokens (1 for a CLS token, more with
        register tokens) are dropped, and the rest, when they form a square
        grid in row-major patch order, become a map ``(b, D, h, w)``;
        otherwise the remaining tokens are averaged to ``(b, D, 1, 1)``.
    channels_last : bool, default=False
        The layers give 4-D maps as ``(b, H, W, C)`` (Swin transformers do);
        they are permuted to ``(b, C, H, W)``.

    Notes
    -----
    Layer outputs ``(b, C, H, W)`` are kept; ``(b, D)`` become
    ``(b, D, 1, 1)``; a tuple output (as some attention blocks return) is
    read at its first element. Hooks are removed, and the model's device and
    train/eval mode restored, when :meth:`transform` returns or raises.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3, padding=1), torch.nn.ReLU())
    >>> feats = BackboneFeatures(net, layers=["0", "1"], device="cpu").transform(
    ...     torch.rand(4, 3, 8, 8)
    ... )
    >>> {k: v.shape for k, v in feats.items()}
    {'0': (4, 5, 8, 8), '1': (4, 5, 8, 8)}
    """

    def __init__(
        self,
        model: torch.nn.Module,
        layers: str | Sequence[str],
        device: str = "auto",
        batch_size: int = 32,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | str | None = "imagenet",
        image_size: int | None = None,
        n_prefix_tokens: int = 0,
        channels_last: bool = False,
    ) -> None:
        self.model = model
        self.layers = layers
        self.device = device
        self.batch_size = batch_size
        self.preprocess = preprocess
        self.image_size = image_size
        self.n_prefix_tokens = n_prefix_tokens
        self.channels_last = channels_last

    def fit(self, images=None, y=None) -> BackboneFeatures:
        """Nothing to learn; returns self."""
        return self

    def _layer_names(self) -> list[str]:
        layers = [self.layers] if isinstance(self.layers, str) else list(self.layers)
        if not layers or not all(isinstance(n, str) for n in layers):
            raise InputError(
                f"layers must be a module name or a non-empty list of them (as in "
                f"model.named_modules()); got {self.layers!r}."
            )
        return layers

    def _to_map(self, out) -> torch.Tensor:
        if isinstance(out, (tuple, list)):
            out = out[0]
        if out.ndim == 4:
            return out.permute(0, 3, 1, 2) if self.channels_last else out
        if out.ndim == 2:
            return out[:, :, None, None]
        if out.ndim == 3:
            tokens = out[:, self.n_prefix_tokens :]
            side = math.isqrt(tokens.shape[1])
            if side * side == tokens.shape[1]:
                return tokens.transpose(1, 2).reshape(len(out), -1, side, side)
            return tokens.mean(1)[:, :, None, None]
        raise InputError(f"A layer gave an output of shape {tuple(out.shape)}; expected 2-4 dims.")

    def transform(self, images) -> dict[str, np.ndarray]:
        """Feature maps of each layer: dict ``{layer: (n_images, C, H, W)}``."""
        names = self._layer_names()
        modules = dict(self.model.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            some = [n for n in modules if n][:12]
            raise InputError(
                f"Layer(s) {missing} are not modules of the model; some names it has: {some} "
                "(all: [name for name, _ in model.named_modules()])."
            )
        device = resolve_device(self.device)
        if self.preprocess == "imagenet":
            mean = torch.tensor(IMAGENET_MEAN, device=device)[None, :, None, None]
            std = torch.tensor(IMAGENET_STD, device=device)[None, :, None, None]
            prep: Callable | None = lambda x: (x - mean) / std  # noqa: E731
        elif self.preprocess is None or callable(self.preprocess):
            prep = self.preprocess
        else:
            raise InputError(
                f"preprocess must be 'imagenet', None or a callable; got {self.preprocess!r}."
            )
        size = None if self.image_size is None else (self.image_size, self.image_size)
        captured: dict[str, torch.Tensor] = {}
        handles = [
            modules[n].register_forward_hook(
                lambda _m, _i, out, name=n: captured.__setitem__(name, self._to_map(out))
            )
            for n in names
        ]
        was_training = self.model.training
        param = next(self.model.parameters(), None)
        original_device = param.device if param is not None else None
        results: dict[str, list[np.ndarray]] = {n: [] for n in names}
        try:
            self.model.eval().to(device)
            with torch.inference_mode():
                for batch in iter_image_batches(images, self.batch_size, size):
                    x = batch.to(device)
                    self.model(prep(x) if prep is not None else x)
                    silent = [n for n in names if n not in captured]
                    if silent:
                        raise InputError(
                            f"Layer(s) {silent} produced no output: the model's forward pass "
                            "does not call them. Choose modules that forward() uses."
                        )
                    for n in names:
                        results[n].append(captured.pop(n).float().cpu().numpy())
        finally:
            for h in handles:
                h.remove()
            self.model.train(was_training)
            if original_device is not None:
                self.model.to(original_device)
        return {n: np.concatenate(v) for n, v in results.items()}

    def __call__(self, images) -> dict[str, np.ndarray]:
        return self.transform(images)


# ------------------------------------------------------------------ pooling
def pool_features(maps, method: str = "mean", grid: int = 2):
    """Vectors from feature maps.

    Parameters
    ----------
    maps : array or tensor of shape (n, C, H, W)
    method : {"mean", "max", "grid", "flatten"}, default="mean"
        ``"mean"``/``"max"``: global over space (``C`` numbers); ``"grid"``:
        average-pooled to ``grid x grid`` then flattened (``C * grid²``);
        ``"flatten"``: every value (``C * H * W``).
    grid : int, default=2

    Returns
    -------
    array or tensor of shape (n, D), the type of ``maps``

    Examples
    --------
    >>> import numpy as np
    >>> m = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    >>> [pool_features(m, k).shape for k in ("mean", "max", "grid", "flatten")]
    [(2, 3), (2, 3), (2, 12), (2, 48)]
    """
    is_numpy = not isinstance(maps, torch.Tensor)
    t = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32)) if is_numpy else maps
    if t.ndim != 4:
        raise InputError(f"maps must have shape (n, C, H, W); got shape {tuple(t.shape)}.")
    if method == "mean":
        out = t.mean(dim=(2, 3))
    elif method == "max":
        out = t.amax(dim=(2, 3))
    elif method == "grid":
        if isinstance(grid, bool) or not isinstance(grid, Integral) or grid < 1:
            raise InputError(f"grid must be a positive integer; got {grid!r}.")
        out = F.adaptive_avg_pool2d(t, grid).flatten(1)
    elif method == "flatten":
        out = t.flatten(1)
    else:
        raise InputError(f"method must be 'mean', 'max', 'grid' or 'flatten'; got {method!r}.")
    return out.numpy() if is_numpy else out


# -------------------------------------------------------------------- cache
def _describe(value) -> Any:
    """A JSON-able description of one setting that is the same in every session."""
    if isinstance(value, torch.nn.Module):  # architecture and every weight
        h = hashlib.sha1(repr(value).encode())
        for name, tensor in value.state_dict().items():
            h.update(name.encode())
            h.update(_tensor_bytes(tensor))
        return f"{type(value).__qualname__} sha1={h.hexdigest()}"
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return f"array sha1={hashlib.sha1(_tensor_bytes(torch.as_tensor(value))).hexdigest()}"
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    if isinstance(value, types.FunctionType):
        return f"{value.__module__}.{value.__qualname__}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))  # no memory addresses


def _tensor_bytes(tensor: torch.Tensor) -> np.ndarray:
    """The raw bytes of a tensor (any dtype, any device) as a uint8 array."""
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()


def _fingerprint(extractor, images) -> str:
    """SHA-1 of the extractor's settings and of every image's float32 bytes."""
    h = hashlib.sha1()
    params = extractor.get_params() if hasattr(extractor, "get_params") else vars(extractor)
    settings = {k: _describe(v) for k, v in params.items() if k not in ("device", "batch_size")}
    h.update(type(extractor).__name__.encode())
    h.update(json.dumps(settings, sort_keys=True, default=repr).encode())
    if hasattr(images, "fingerprint"):  # an ImageSet: its files' stats, or its raw pixels
        h.update(f"{images.fingerprint()} n={len(images)}".encode())
        return h.hexdigest()
    image_size = getattr(extractor, "image_size", None)
    size = None if image_size is None else (image_size, image_size)
    batch_size = getattr(extractor, "batch_size", 64)
    n = 0
    for batch in iter_image_batches(images, batch_size, size):
        h.update(np.ascontiguousarray(batch.numpy(), dtype=np.float32).tobytes())
        n += len(batch)
    h.update(str(n).encode())
    return h.hexdigest()


def cached_features(extractor, images, path, key: str | None = None, overwrite: bool = False):
    """Features of ``images`` from an HDF5 cache, computed and stored the first time.

    Parameters
    ----------
    extractor : GaborFeatures, BackboneFeatures or any object with ``transform``
        Its settings (``get_params()``, else its attributes) are part of the
        cache's fingerprint, except ``device`` and ``batch_size``; a torch
        model enters by its architecture and a hash of every weight, a
        function by its qualified name.
    images : array, tensor or ImageSet
        Part of the fingerprint, so another image set is detected: an
        :class:`~data_loaders.stimuli.ImageSet` by its ``fingerprint()`` (each
        file's path, size and modification time for image folders and HDF5
        bricks, so a cache hit reads no image), an array by its values (as
        float32, ``batch_size`` images at a time, resized to the extractor's
        ``image_size`` if it has one). The images are never modified.
    path : str or path-like
        The HDF5 cache file; created if missing. Each ``key`` is a group.
    key : str, optional
        Name of the entry; default the extractor's class name.
    overwrite : bool, default=False
        When the entry exists but was made from other settings or images,
        recompute and replace it instead of raising.

    Returns
    -------
    ndarray or dict of ndarray
        What ``extractor.transform(images)`` returns.

    Raises
    ------
    UnreadableFileError
        The file is empty, truncated, of another format, or an HDF5 file
        whose entry ``key`` lacks the cache's datasets: the one-line message
        says to delete it or choose another path. The file is left as it was.
    FeatureCacheError
        Its entry was made from other settings or images and ``overwrite``
        is False.
    InputError
        ``path`` is a folder.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> images = np.random.default_rng(0).random((3, 16, 16, 3)).astype("float32")
    >>> bank = GaborFeatures(n_orientations=2, frequencies=(0.25,), map_size=4, device="cpu")
    >>> path = os.path.join(tempfile.mkdtemp(), "features.h5")
    >>> first = cached_features(bank, images, path)
    >>> second = cached_features(bank, images, path)  # read back, not recomputed
    >>> bool(np.array_equal(first, second))
    True
    """
    path = Path(path)
    key = key or type(extractor).__name__
    fingerprint = _fingerprint(extractor, images)
    if path.is_dir():
        raise InputError(
            f"path {str(path)!r} is a folder; give the path of an HDF5 cache file inside it "
            "(e.g. features.h5)."
        )
    if path.exists():
        stored = _read_entry(path, key, fingerprint, overwrite)
        if stored is not None:
            return stored
    result = extractor.transform(images)
    _write_entry(path, key, fingerprint, result)
    return result


def _unreadable(path: Path, reason) -> UnreadableFileError:
    reason = " ".join(str(reason).split()) or "unknown reason"  # one line
    return UnreadableFileError(
        f"{path} is not a readable feature cache ({reason}); delete it or choose another path "
        "(--feature-cache on the command line)."
    )


def _read_entry(path: Path, key: str, fingerprint: str, overwrite: bool):
    """The features stored under ``key`` if made from the same settings and images, else None.

    Raises :class:`FeatureCacheError` for an entry made from others (unless
    ``overwrite``) and :class:`UnreadableFileError` for a file or entry that
    cannot be read.
    """
    import h5py

    if path.stat().st_size == 0:
        raise _unreadable(path, "it is empty, 0 bytes")
    try:
        with h5py.File(path, "r") as f:
            if key not in f:
                return None
            group = f[key]
            if not isinstance(group, h5py.Group) or "fingerprint" not in group.attrs:
                raise _unreadable(path, f"its entry {key!r} is not a feature cache entry")
            if group.attrs["fingerprint"] != fingerprint:
                if overwrite:
                    return None
                raise FeatureCacheError(
                    f"The cache entry {key!r} in {path} was made from other settings or images. "
                    "Pass overwrite=True to recompute it, use another key, or delete the file."
                )
            if group.attrs.get("kind") == "dict":
                names = [str(n) for n in group.attrs.get("names", [])]
                missing = [n for n in names if n not in group] if names else ["(no names)"]
                if missing:
                    raise _unreadable(path, f"its entry {key!r} lacks the datasets {missing}")
                return {n: group[n][()] for n in names}
            if "features" not in group:
                raise _unreadable(path, f"its entry {key!r} has no 'features' dataset")
            return group["features"][()]
    except (FeatureCacheError, UnreadableFileError):
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise _unreadable(path, exc) from None


def _write_entry(path: Path, key: str, fingerprint: str, result) -> None:
    """Add or replace one entry, writing a copy of the file and renaming it over the old one."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if path.exists():
            shutil.copyfile(path, tmp)
            mode = "a"
        else:
            mode = "w"
        with h5py.File(tmp, mode) as f:
            if key in f:
                del f[key]
            group = f.create_group(key)
            group.attrs["fingerprint"] = fingerprint
            if isinstance(result, dict):
                group.attrs["kind"] = "dict"
                group.attrs["names"] = list(result)
                for name, value in result.items():
                    group.create_dataset(name, data=np.asarray(value))
            else:
                group.attrs["kind"] = "array"
                group.create_dataset("features", data=np.asarray(result))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
