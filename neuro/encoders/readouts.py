"""Readouts from image feature maps to voxels, trained with the shared Trainer.

A readout maps feature maps ``(batch, C, H, W)`` of a (frozen) image model to
the responses of many voxels ``(batch, n_voxels)``. The families compared in
"Modeling the Human Visual System: Comparative Insights from
Response-Optimized and Task-Optimized Vision Models, Language Models, and
different Readout Mechanisms":

:class:`LinearReadout`
    A full linear map from pooled (global mean or a coarse grid) or flattened
    features: ``y_v = w_v . vec(pool(F)) + b_v``.
:class:`FactorizedReadout`
    Where x what (Klindt et al. 2017): each voxel has a spatial mask over the
    map and a weight per feature channel,
    ``y_v = sum_c w_vc sum_xy m_v(x, y) F_c(x, y) + b_v``.
:class:`GaussianReadout`
    The spatial mask is an isotropic Gaussian with a learned centre
    ``mu_v = (x, y)`` and size ``sigma_v``, normalised to sum to one over the
    map: a population receptive field.
:class:`SemanticReadout`
    The paper's semantic-modulated readout (``SemanticSpatialTransformer``):
    a factorized readout whose spatial mask is moved and scaled per voxel and
    per image, and whose feature maps are shifted and re-weighted per channel
    and per image, by transforms that a small network predicts from the
    image's semantic content (a vector per image, e.g. a frozen CLIP
    embedding; by default the globally pooled feature maps). The predicting
    layer starts at zero, so training begins from the plain factorized
    readout (identity transforms).

Map coordinates are ``(x, y)`` in ``[-1, 1]``: ``x`` from the map's left edge
to its right edge, ``y`` from its top to its bottom, pixel centres as in
``torch.nn.functional.grid_sample(align_corners=False)``; sizes are Gaussian
sds in the same units (the map is 2 units wide).

:class:`ReadoutEncoder` wraps the modules as a scikit-learn estimator
(:class:`neuro.base.NeuroEstimator`): it standardises features (per channel)
and responses (per voxel), holds out a validation fraction for early
stopping, and trains with :class:`neuro.train.Trainer`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import MultiOutputMixin, RegressorMixin
from torch import nn

from neuro._validation import (
    check_array,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_n_features,
    check_same_length,
)
from neuro.base import NeuroEstimator
from neuro.errors import InputError

__all__ = [
    "LOSSES",
    "READOUTS",
    "FactorizedReadout",
    "GaussianReadout",
    "LinearReadout",
    "ReadoutEncoder",
    "SemanticReadout",
]

#: Readout families by name.
READOUTS = ("linear", "factorized", "gaussian", "semantic")
#: Training losses: mean squared error, optionally plus (1 - concordance correlation).
LOSSES = ("mse", "mse+ccc")


def _map_grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates in ``[-1, 1]`` (``align_corners=False``): ``x (W,)``, ``y (H,)``."""
    x = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 - 1
    y = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2 - 1
    return x, y


# ------------------------------------------------------------------- modules
class LinearReadout(nn.Module):
    """A linear map from pooled or flattened feature maps to every voxel.

    Parameters
    ----------
    in_shape : (C, H, W) or (D,)
        Shape of one sample's features.
    n_voxels : int
    grid : int or None, default=4
        Average-pool the maps to ``grid x grid`` cells before the linear map
        (``grid=1`` is the global mean); None flattens them whole. Ignored for
        ``(D,)`` features.

    Shapes: ``forward(x)`` takes ``(batch, C, H, W)`` (or ``(batch, D)``) and
    returns ``(batch, n_voxels)``.

    Examples
    --------
    >>> LinearReadout((3, 8, 8), n_voxels=5, grid=2)(torch.randn(4, 3, 8, 8)).shape
    torch.Size([4, 5])
    """

    def __init__(self, in_shape: tuple[int, ...], n_voxels: int, grid: int | None = 4) -> None:
        super().__init__()
        self.grid = grid if len(in_shape) == 3 else None
        if self.grid is not None:
            c, h, w = in_shape
            n_in = c * min(self.grid, h) * min(self.grid, w)
        else:
            n_in = math.prod(in_shape)
        self.linear = nn.Linear(n_in, n_voxels)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, semantic: torch.Tensor | None = None) -> torch.Tensor:
        if self.grid is not None:
            x = F.adaptive_avg_pool2d(x, (min(self.grid, x.shape[2]), min(self.grid, x.shape[3])))
        return self.linear(x.flatten(1))


class FactorizedReadout(nn.Module):
    """Spatial mask x feature weights per voxel.

    ``y_v = sum_c w_vc sum_xy m_v(x, y) F_c(x, y) + b_v``, computed as two
    einsums through ``(batch, n_voxels, C)``, never ``(batch, n_voxels, C, H, W)``.

    Parameters
    ----------
    in_shape : (C, H, W)
    n_voxels : int
    positive : bool, default=False
        False: the masks are unconstrained parameters (sparsity comes from the
        encoder's L1 penalty), Klindt et al.'s choice, which fits best. True:
        ``mask = softplus(raw)``, so every mask is a non-negative weighting of
        the map, readable as a receptive field.

    Attributes
    ----------
    spatial : Parameter (n_voxels, H, W)
        The masks (before the softplus when ``positive``).
    features : Parameter (n_voxels, C)
    bias : Parameter (n_voxels,)

    Shapes: ``forward(x)`` takes ``(batch, C, H, W)``, returns ``(batch, n_voxels)``.

    Examples
    --------
    >>> FactorizedReadout((3, 6, 7), n_voxels=5)(torch.randn(4, 3, 6, 7)).shape
    torch.Size([4, 5])
    """

    def __init__(self, in_shape: tuple[int, int, int], n_voxels: int, positive: bool = False):
        super().__init__()
        c, h, w = in_shape
        self.positive = positive
        start = 1.0 / (h * w)  # every mask starts as the global mean
        if positive:
            start = math.log(math.expm1(start))  # softplus^-1
        self.spatial = nn.Parameter(torch.full((n_voxels, h, w), start))
        self.features = nn.Parameter(torch.randn(n_voxels, c) * 0.01)
        self.bias = nn.Parameter(torch.zeros(n_voxels))

    def masks(self) -> torch.Tensor:
        """The spatial masks ``(n_voxels, H, W)``."""
        return F.softplus(self.spatial) if self.positive else self.spatial

    def forward(self, x: torch.Tensor, semantic: torch.Tensor | None = None) -> torch.Tensor:
        pooled = torch.einsum("bchw,vhw->bvc", x, self.masks())
        return torch.einsum("bvc,vc->bv", pooled, self.features) + self.bias


class GaussianReadout(nn.Module):
    """A Gaussian receptive field per voxel times a weight per feature channel.

    The mask of voxel ``v`` is ``exp(-|p - mu_v|^2 / (2 sigma_v^2))``
    evaluated at the map's pixel centres ``p`` and normalised to sum to one,
    so the response is differentiable in the centre and the size (a
    Gaussian-weighted pooling, not a point sample: on maps of a few dozen
    pixels this recovers centres to a fraction of a pixel, where Lurz et
    al.'s jittered point sampling trains more slowly and more noisily).

    Parameters
    ----------
    in_shape : (C, H, W)
    n_voxels : int
    init_centers : array (n_voxels, 2), optional
        Starting centres ``(x, y)`` in ``[-1, 1]``; default uniform in
        ``[-0.5, 0.5]``. :class:`ReadoutEncoder` starts them from a coarse
        grid search instead.
    init_size : float, default=0.3
        Starting sd in map units.

    Attributes
    ----------
    centers : Parameter (n_voxels, 2)
        ``(x, y)``, clamped to ``[-1, 1]`` where used.
    log_sizes : Parameter (n_voxels,)
        ``sigma = exp(log_size) + floor``, the floor a fifth of a map cell (a
        Gaussian narrower than that sees one pixel whatever its size).
    features : Parameter (n_voxels, C)
    bias : Parameter (n_voxels,)

    Shapes: ``forward(x)`` takes ``(batch, C, H, W)``, returns ``(batch, n_voxels)``.

    Examples
    --------
    >>> g = GaussianReadout((3, 6, 7), n_voxels=5)
    >>> g(torch.randn(4, 3, 6, 7)).shape, bool(torch.allclose(g.masks().sum((1, 2)), torch.ones(5)))
    (torch.Size([4, 5]), True)
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_voxels: int,
        init_centers=None,
        init_size: float = 0.3,
    ) -> None:
        super().__init__()
        c, h, w = in_shape
        if init_centers is None:
            init = torch.rand(n_voxels, 2) - 0.5
        else:
            init = torch.as_tensor(np.asarray(init_centers), dtype=torch.float32).clone()
        self.size_floor = 0.2 * 2.0 / max(h, w)
        self.centers = nn.Parameter(init)
        self.log_sizes = nn.Parameter(
            torch.full((n_voxels,), math.log(max(init_size - self.size_floor, 1e-3)))
        )
        self.features = nn.Parameter(torch.randn(n_voxels, c) * 0.01)
        self.bias = nn.Parameter(torch.zeros(n_voxels))
        gx, gy = _map_grid(h, w)
        self.register_buffer("grid_x", gx, persistent=False)
        self.register_buffer("grid_y", gy, persistent=False)

    def sizes(self) -> torch.Tensor:
        """Receptive-field sds ``(n_voxels,)`` in map units."""
        return self.log_sizes.exp() + self.size_floor

    def masks(self) -> torch.Tensor:
        """Gaussian masks ``(n_voxels, H, W)``, each summing to one."""
        mu = self.centers.clamp(-1, 1)
        two_s2 = 2 * self.sizes()[:, None] ** 2
        gx = torch.exp(-((self.grid_x[None] - mu[:, :1]) ** 2) / two_s2)  # (V, W)
        gy = torch.exp(-((self.grid_y[None] - mu[:, 1:]) ** 2) / two_s2)  # (V, H)
        m = gy[:, :, None] * gx[:, None, :]
        return m / (m.sum(dim=(1, 2), keepdim=True) + 1e-12)

    def forward(self, x: torch.Tensor, semantic: torch.Tensor | None = None) -> torch.Tensor:
        pooled = torch.einsum("bchw,vhw->bvc", x, self.masks())
        return torch.einsum("bvc,vc->bv", pooled, self.features) + self.bias


def _affine(shift: torch.Tensor, log_scale: torch.Tensor, angle=None) -> torch.Tensor:
    """Sampling matrices ``theta (..., 2, 3)`` that move a map by ``shift``, scale it
    by ``exp(log_scale)`` and rotate it by ``angle``: ``out(p) = in(S^-1 R^-1 (p - shift))``.
    """
    inv = torch.exp(-log_scale)
    cos = torch.ones_like(inv) if angle is None else torch.cos(angle)
    sin = torch.zeros_like(inv) if angle is None else torch.sin(angle)
    a = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    a = a * inv[..., None, None]  # S^-1 R^-1
    t = -(a @ shift[..., None])
    return torch.cat([a, t], -1)


def _warp(maps: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``grid_sample`` each map ``(N, H, W)`` through its own ``theta (N, 2, 3)``.

    The sampling grid is ``F.affine_grid(theta, align_corners=False)`` written
    out elementwise (the same numbers, without a batched matmul: several
    times faster on CPUs). Outside the map the warped map is zero.
    """
    h, w = maps.shape[1:]
    gx, gy = _map_grid(h, w)
    gx, gy = gx.to(maps.device)[None, None, :], gy.to(maps.device)[None, :, None]
    t = theta.to(maps.dtype)[:, :, :, None, None]  # (N, 2, 3, 1, 1)
    sx = t[:, 0, 0] * gx + t[:, 0, 1] * gy + t[:, 0, 2]  # (N, H, W)
    sy = t[:, 1, 0] * gx + t[:, 1, 1] * gy + t[:, 1, 2]
    grid = torch.stack([sx, sy], -1)
    return F.grid_sample(maps[:, None], grid, align_corners=False)[:, 0]


class SemanticReadout(FactorizedReadout):
    """Factorized readout whose masks and feature maps move with the image's semantics.

    For image ``b`` with semantic vector ``s_b``, a small network
    ``h_b = MLP(s_b)`` (width ``hidden``) predicts

    * per voxel ``v``: a shift ``(tx, ty)`` and a log-scale of the voxel's
      spatial mask (and, with ``rotation=True``, an angle), applied with a
      ``grid_sample`` warp of the mask;
    * per channel ``c``: a shift of that channel's feature map and a gain
      ``exp(g_bc)`` on it.

    The per-voxel parameters come from one ``Linear(hidden, 3 * n_voxels)``
    (``4 *`` with rotation): a low-rank map, so each added voxel costs
    ``hidden + 1`` numbers per transform parameter. That layer and the
    per-channel one start at zero, so the untrained model is exactly the
    plain factorized readout.

    Parameters
    ----------
    in_shape : (C, H, W)
    n_voxels : int
    semantic_dim : int
        Length of the semantic vector of each image.
    hidden : int, default=32
    rotation : bool, default=False
    positive : bool, default=False
        Softplus masks, as in :class:`FactorizedReadout`.

    Shapes: ``forward(x, semantic)`` takes ``(batch, C, H, W)`` and
    ``(batch, semantic_dim)`` (None: the maps' global means, so
    ``semantic_dim`` must equal C), returns ``(batch, n_voxels)``. Memory
    grows as ``batch * n_voxels * H * W`` (the warped masks): lower the batch
    size for many voxels on large maps.

    Examples
    --------
    >>> sem = SemanticReadout((3, 6, 7), n_voxels=5, semantic_dim=4)
    >>> sem(torch.randn(2, 3, 6, 7), torch.randn(2, 4)).shape
    torch.Size([2, 5])
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_voxels: int,
        semantic_dim: int,
        hidden: int = 32,
        rotation: bool = False,
        positive: bool = False,
    ) -> None:
        super().__init__(in_shape, n_voxels, positive=positive)
        c = in_shape[0]
        self.rotation = rotation
        self.n_voxel_params = 4 if rotation else 3  # tx, ty, log-scale (, angle)
        self.semantic_net = nn.Sequential(
            nn.Linear(semantic_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU()
        )
        self.voxel_transform = nn.Linear(hidden, n_voxels * self.n_voxel_params)
        self.channel_transform = nn.Linear(hidden, c * 3)  # tx, ty, log-gain per channel
        for layer in (self.voxel_transform, self.channel_transform):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def transforms(
        self, x: torch.Tensor, semantic: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-image transform parameters, zero for the identity.

        Returns
        -------
        voxel_params : (batch, n_voxels, 3 or 4)
            ``(tx, ty, log_scale[, angle])`` of each voxel's mask.
        channel_params : (batch, C, 3)
            ``(tx, ty, log_gain)`` of each channel's feature map.
        """
        if semantic is None:
            semantic = x.mean(dim=(2, 3))
        hid = self.semantic_net(semantic)  # (b, hidden)
        b, v, c = len(x), self.features.shape[0], self.features.shape[1]
        voxel_params = self.voxel_transform(hid).view(b, v, self.n_voxel_params)
        return voxel_params, self.channel_transform(hid).view(b, c, 3)

    def forward(self, x: torch.Tensor, semantic: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        v = self.features.shape[0]
        vp, ch = self.transforms(x, semantic)

        # feature maps: a shift and a gain per channel and image
        ch = ch.reshape(b * c, 3)
        theta = _affine(ch[:, :2], torch.zeros_like(ch[:, 2]))
        x = _warp(x.reshape(b * c, h, w), theta) * torch.exp(ch[:, 2])[:, None, None]
        x = x.view(b, c, h, w)

        # spatial masks: a shift and a scale (and an angle) per voxel and image
        vp = vp.reshape(b * v, self.n_voxel_params)
        theta = _affine(vp[:, :2], vp[:, 2], vp[:, 3] if self.rotation else None)
        masks = self.masks()[None].expand(b, v, h, w).reshape(b * v, h, w)
        masks = _warp(masks, theta).view(b, v, h, w)

        pooled = torch.einsum("bchw,bvhw->bvc", x, masks)
        return torch.einsum("bvc,vc->bv", pooled, self.features) + self.bias


# ------------------------------------------------------------------ training
def _ccc(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Concordance correlation per voxel over the batch, ``(n_voxels,)``."""
    mp, my = pred.mean(0), y.mean(0)
    vp, vy = pred.var(0, unbiased=False), y.var(0, unbiased=False)
    cov = ((pred - mp) * (y - my)).mean(0)
    return 2 * cov / (vp + vy + (mp - my) ** 2 + 1e-8)


class _Objective(nn.Module):
    """A readout and its loss, in the form the Trainer expects.

    Batches are ``(x, semantic, y)``; ``semantic`` has 0 columns when the
    readout gets none.
    """

    def __init__(
        self,
        readout: nn.Module,
        loss: str,
        mask_l1: float,
        feature_l2: float,
        transform_l2: float,
    ) -> None:
        super().__init__()
        self.readout = readout
        self.loss = loss
        self.mask_l1 = mask_l1
        self.feature_l2 = feature_l2
        self.transform_l2 = transform_l2

    def _fit_loss(self, batch) -> dict[str, torch.Tensor]:
        x, s, y = batch
        pred = self.readout(x, s if s.shape[1] > 0 else None)
        out = {"mse": F.mse_loss(pred, y)}
        out["loss"] = out["mse"]
        if self.loss == "mse+ccc":
            out["ccc"] = _ccc(pred, y).mean()
            out["loss"] = out["loss"] + (1 - out["ccc"])
        return out

    def training_step(self, batch):
        out = self._fit_loss(batch)
        r = self.readout
        if self.mask_l1 > 0 and isinstance(r, FactorizedReadout):
            out["loss"] = out["loss"] + self.mask_l1 * r.masks().abs().sum(dim=(1, 2)).mean()
        if self.feature_l2 > 0 and hasattr(r, "features"):
            out["loss"] = out["loss"] + self.feature_l2 * r.features.square().sum(1).mean()
        if self.transform_l2 > 0 and isinstance(r, SemanticReadout):
            x, s, _ = batch
            voxel_params, channel_params = r.transforms(x, s if s.shape[1] > 0 else None)
            size = voxel_params.square().mean() + channel_params.square().mean()
            out["loss"] = out["loss"] + self.transform_l2 * size
        return {k: v if k == "loss" else v.detach() for k, v in out.items()}

    def validation_step(self, batch):
        return self._fit_loss(batch)


@dataclass
class _Settings:
    """What ``ReadoutEncoder.load`` needs to rebuild the module (saved with its weights)."""

    readout: str
    in_shape: tuple[int, ...]
    n_voxels: int
    semantic_dim: int  # 0: the semantic readout reads the pooled maps
    grid: int | None
    semantic_hidden: int
    rotation: bool
    positive_masks: bool
    init_size: float


def _build(settings: _Settings) -> nn.Module:
    shape, v = tuple(settings.in_shape), settings.n_voxels
    if settings.readout == "linear":
        return LinearReadout(shape, v, grid=settings.grid)
    if settings.readout == "factorized":
        return FactorizedReadout(shape, v, positive=settings.positive_masks)
    if settings.readout == "gaussian":
        return GaussianReadout(shape, v, init_size=settings.init_size)
    return SemanticReadout(
        shape,
        v,
        settings.semantic_dim or shape[0],
        hidden=settings.semantic_hidden,
        rotation=settings.rotation,
        positive=settings.positive_masks,
    )


def _as_array(a, name: str, ndim, shape_hint: str) -> np.ndarray:
    """``a`` (numpy, torch or nested lists) as a finite float32 array, checked."""
    arr = check_array(name, a, ndim=ndim, shape_hint=shape_hint, finite=False)
    return check_array(name, arr.astype(np.float32, copy=False), shape_hint=shape_hint)


def _training_targets(x: np.ndarray, Y, val_fraction: float) -> tuple[np.ndarray, bool, int]:
    """``(Y as (n, n_voxels) float32, whether Y was 1-D, n validation images)`` for a fit.

    Shared by the encoders trained on the :class:`~neuro.train.Trainer` with a
    held-out validation split (the readouts and the transformer encoder).
    """
    y = _as_array(Y, "Y", (1, 2), "(n_images, n_voxels)")
    single_output = y.ndim == 1
    if single_output:
        y = y[:, None]
    check_same_length(X=x, Y=y)
    n = len(x)
    n_val = max(1, round(val_fraction * n))
    if n - n_val < 2:
        raise InputError(
            f"Too few images to train: n_samples={n}, of which {n_val} would be held out for "
            "validation, leaving fewer than 2 to fit; give more images (dozens at least)."
        )
    return y, single_output, n_val


def _grid_search(
    readout: GaussianReadout, x: np.ndarray, y: np.ndarray, max_elements: int = 1 << 25
) -> None:
    """Start each voxel's Gaussian where a coarse search says it fits best.

    Candidates are centres on a 9 x 9 grid over ``[-0.8, 0.8]`` (every 0.2
    map units) at three sizes (0.05, 0.15 and 0.4 map units). For each, the
    Gaussian-pooled features ``(n, C)`` are regressed (ridge, all channels)
    on every voxel; each voxel starts at the candidate that explains most of
    its variance, with that regression's feature weights and bias. Candidates
    are processed in chunks of about ``max_elements`` numbers, so memory stays
    bounded for many images, channels or voxels.
    """
    c, h, w = readout.features.shape[1], *x.shape[2:]
    ticks = torch.linspace(-0.8, 0.8, 9)
    centres = torch.stack(torch.meshgrid(ticks, ticks, indexing="xy"), -1).reshape(-1, 2)
    sizes = torch.tensor([0.05, 0.15, 0.4])
    cand_c = centres.repeat(len(sizes), 1)
    cand_s = sizes.repeat_interleave(len(centres))
    probe = GaussianReadout((c, h, w), len(cand_c), init_centers=cand_c)
    with torch.no_grad():
        probe.log_sizes.copy_(torch.log((cand_s - probe.size_floor).clamp_min(1e-3)))
        masks = probe.masks().flatten(1)  # (K, HW)
        xt = torch.from_numpy(x).flatten(2)  # (n, C, HW)
        yt = torch.from_numpy(y)
        y_mean = yt.mean(0)
        yt = yt - y_mean
        yy = yt.square().sum(0) + 1e-12
        v = yt.shape[1]
        best = torch.full((v,), -math.inf)
        best_k = torch.zeros(v, dtype=torch.long)
        coef_best = torch.zeros(c, v)
        bias_best = torch.zeros(v)
        chunk = max(1, max_elements // max(len(x) * c + c * v, 1))
        for start in range(0, len(cand_c), chunk):
            m = masks[start : start + chunk]
            pooled = torch.einsum("ncp,kp->knc", xt, m)  # (k, n, C)
            p_mean = pooled.mean(1, keepdim=True)
            pooled = pooled - p_mean
            gram = pooled.transpose(1, 2) @ pooled  # (k, C, C)
            ridge = 0.01 * gram.diagonal(dim1=1, dim2=2).mean(-1)[:, None, None] + 1e-6
            xty = pooled.transpose(1, 2) @ yt  # (k, C, V)
            coef = torch.linalg.solve(gram + ridge * torch.eye(c), xty)
            # explained sum of squares of each ridge fit: 2 b'X'y - b'X'Xb
            r2 = (2 * (coef * xty).sum(1) - (coef * (gram @ coef)).sum(1)) / yy  # (k, V)
            score, k = r2.max(0)
            better = score > best
            best[better], best_k[better] = score[better], k[better] + start
            idx = torch.arange(v)[better]
            coef_best[:, idx] = coef[k[better], :, idx].T
            bias_best[idx] = y_mean[idx] - (p_mean[k[better], 0, :] * coef_best[:, idx].T).sum(-1)
        readout.centers.copy_(cand_c[best_k])
        readout.log_sizes.copy_(probe.log_sizes[best_k])
        readout.features.copy_(coef_best.T)
        readout.bias.copy_(bias_best)


class ReadoutEncoder(MultiOutputMixin, RegressorMixin, NeuroEstimator):
    """Voxel encoder that reads feature maps through one of the readout families.

    Parameters
    ----------
    readout : {"linear", "factorized", "gaussian", "semantic"}, default="gaussian"
        See :class:`LinearReadout`, :class:`FactorizedReadout`,
        :class:`GaussianReadout`, :class:`SemanticReadout`.
    device : str, default="auto"
        Where to train and predict ("auto" = cuda > mps > cpu).
    epochs : int, default=200
        Most passes over the training images (early stopping usually ends
        training sooner).
    batch_size : int, default=64
        Images per optimizer step.
    lr : float, default=0.01
        Peak AdamW learning rate (cosine schedule).
    weight_decay : float, default=0.0
        AdamW weight decay on weight matrices.
    mask_l1 : float, default=0.01
        L1 penalty on the factorized and semantic readouts' spatial masks.
    feature_l2 : float, default=1e-3
        Penalty on the squared feature weights (all but the linear readout,
        which uses ``weight_decay``).
    transform_l2 : float, default=0.3
        Semantic readout: penalty on the mean square of the predicted
        transform parameters (shifts, log-scales, log-gains), which pulls
        them toward the identity unless the semantics pay for moving away
        (on the simulator it keeps early visual voxels as well predicted as
        by the factorized readout at little cost to category voxels).
    loss : {"mse", "mse+ccc"}, default="mse"
        "mse" on the standardised responses (which already rewards
        correlation, the score); "mse+ccc" adds ``1 - concordance
        correlation`` per voxel over each batch, as the paper does (noisy
        with small batches).
    val_fraction : float, default=0.1
        Fraction of the training images held out to pick the stopping epoch;
        the weights of the best validation loss are kept.
    patience : int, default=20
        Epochs without a better validation loss before stopping.
    grid : int or None, default=4
        The linear readout pools maps to ``grid x grid`` (1: global mean;
        None: flatten them).
    positive_masks : bool, default=False
        Softplus (non-negative) masks for the factorized and semantic
        readouts instead of unconstrained ones.
    semantic_hidden : int, default=32
        Width of the semantic readout's modulation network.
    rotation : bool, default=False
        Let the semantic readout rotate masks too.
    init_size : float, default=0.3
        Starting receptive-field sd of a Gaussian readout module (map
        units); :meth:`fit` overrides it by a grid search.
    precision : {"32", "bf16-mixed", "16-mixed"}, default="32"
    random_state : int, default=0
        Seed of initialisation, validation split and data order (scikit-learn's
        name for it, as in every neuro estimator; it was ``seed`` before).
    verbose : int, default=0
        0: silent; 1: the Trainer's progress bars and epoch lines.

    Attributes
    ----------
    model_ : torch.nn.Module
        The trained readout (one of the classes above), on the CPU after fit.
    history_ : list of dict
        The Trainer's per-epoch records (``train_loss``, ``val_loss``, ...).
    receptive_field_centers_ : ndarray (n_voxels, 2)
        Gaussian readout: centres ``(x, y)`` in map coordinates ``[-1, 1]``
        (x left to right, y top to bottom).
    receptive_field_sizes_ : ndarray (n_voxels,)
        Gaussian readout: sds in map units (the map is 2 units wide).
    spatial_masks_ : ndarray (n_voxels, H, W)
        Factorized, Gaussian and semantic readouts (the semantic readout's
        untransformed masks).
    feature_weights_ : ndarray (n_voxels, C)
        Factorized, Gaussian and semantic readouts, per standardised channel.
    x_mean_, x_scale_ : ndarray (C,) or (D,)
        Feature standardisation (per channel).
    y_mean_, y_scale_ : ndarray (n_voxels,)
        Response standardisation (per voxel), undone by :meth:`predict`.
    n_features_in_ : int
        ``C * H * W`` (or ``D``).
    single_output_ : bool
        ``Y`` was 1D at ``fit``: ``predict`` then returns 1D too.
    settings_ : dataclass
        What rebuilds the module (readout, input shape, voxels, ...).

    Notes
    -----
    ``score`` is R² (averaged over voxels), as for every scikit-learn
    regressor; ``correlation_score`` is the mean Pearson r. ``save(path)`` and
    ``ReadoutEncoder.load(path)`` (:mod:`neuro.persist`) store the settings,
    the module's weights and the standardisation arrays as they are, so the
    loaded encoder predicts exactly what the saved one did.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> maps = rng.random((80, 2, 6, 6)).astype("float32")
    >>> y = maps[:, 0, 1, 4:5] * 3 + 0.05 * rng.standard_normal((80, 1))  # row 1, column 4
    >>> enc = ReadoutEncoder("gaussian", device="cpu", epochs=60).fit(maps, y)
    >>> pixel = np.array([0.5, -0.5])  # (x, y) of the centre of row 1, column 4
    >>> bool(np.abs(enc.receptive_field_centers_[0] - pixel).max() < 1 / 6)  # within the pixel
    True
    >>> bool(enc.correlation_score(maps, y) > 0.9), bool(enc.score(maps, y) > 0.8)
    (True, True)
    """

    #: What ``X`` is: feature maps ``(n, C, H, W)`` (``compare_encoders`` gives them
    #: as they are; models with ``input_kind = "vectors"`` get them flattened).
    input_kind = "maps"

    def __init__(
        self,
        readout: str = "gaussian",
        device: str = "auto",
        epochs: int = 200,
        batch_size: int = 64,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        mask_l1: float = 0.01,
        feature_l2: float = 1e-3,
        transform_l2: float = 0.3,
        loss: str = "mse",
        val_fraction: float = 0.1,
        patience: int = 20,
        grid: int | None = 4,
        positive_masks: bool = False,
        semantic_hidden: int = 32,
        rotation: bool = False,
        init_size: float = 0.3,
        precision: str = "32",
        random_state: int = 0,
        verbose: int = 0,
    ) -> None:
        self.readout = readout
        self.device = device
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.mask_l1 = mask_l1
        self.feature_l2 = feature_l2
        self.transform_l2 = transform_l2
        self.loss = loss
        self.val_fraction = val_fraction
        self.patience = patience
        self.grid = grid
        self.positive_masks = positive_masks
        self.semantic_hidden = semantic_hidden
        self.rotation = rotation
        self.init_size = init_size
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- checks
    @property
    def reads_semantic(self) -> bool:
        """Whether ``fit`` and ``predict`` take ``semantic=`` vectors (the semantic readout)."""
        return self.readout == "semantic"

    def _check_settings(self) -> None:
        check_choice("readout", self.readout, READOUTS)
        check_choice("loss", self.loss, LOSSES)
        for name in ("epochs", "batch_size", "patience", "semantic_hidden"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("grid", self.grid, minimum=1, allow_none=True)
        check_int("random_state", self.random_state, minimum=0)
        for name in ("lr", "init_size"):
            check_float(name, getattr(self, name), minimum=0.0, strict_minimum=True)
        for name in ("weight_decay", "mask_l1", "feature_l2", "transform_l2"):
            check_float(name, getattr(self, name), minimum=0.0)
        for name in ("positive_masks", "rotation"):
            check_bool(name, getattr(self, name))
        if not (
            isinstance(self.val_fraction, (int, float, np.floating))
            and not isinstance(self.val_fraction, bool)
            and 0 < self.val_fraction < 0.5
        ):
            raise InputError(
                f"val_fraction must lie in (0, 0.5) (images held out for early stopping); "
                f"got {self.val_fraction!r}."
            )

    def _check_x(self, X, fitting: bool) -> np.ndarray:
        needs_maps = self.readout != "linear"
        x = _as_array(X, "X", None, "(n_images, C, H, W)")
        if x.ndim != 4 and (needs_maps or x.ndim != 2):
            expected = "(n_images, C, H, W)" if needs_maps else "(n_images, C, H, W) or (n, D)"
            fix = (
                " Add a channel axis for a single map (X[:, None]); pooled vectors suit the "
                "'linear' readout or VoxelRidgeCV."
                if needs_maps
                else " Reshape your data: X.reshape(1, -1) for a single sample."
                if x.ndim == 1
                else ""
            )
            raise InputError(
                f"The {self.readout!r} readout needs X of shape {expected}; got shape "
                f"{x.shape}.{fix}"
            )
        if not fitting and x.ndim == 2 and len(self.settings_.in_shape) == 1:
            check_n_features(self, x)
        if not fitting and x.shape[1:] != tuple(self.settings_.in_shape):
            raise InputError(
                f"X has samples of shape {x.shape[1:]} (C, H, W) but the encoder was fitted on "
                f"{tuple(self.settings_.in_shape)}; give features from the same model, layer "
                "and map size."
            )
        return x

    def _check_semantic(self, semantic, n: int, fitting: bool) -> np.ndarray | None:
        """The semantic vectors as ``(n, D)``; None for readouts that do not read them."""
        if self.readout != "semantic":
            return None
        fitted_dim = None if fitting else self.settings_.semantic_dim
        if semantic is None:
            if fitted_dim:
                raise InputError(
                    f"This semantic readout was fitted with semantic vectors of length "
                    f"{fitted_dim}; pass semantic= (n_images, {fitted_dim}) to predict and score "
                    "too."
                )
            return None
        if fitted_dim == 0:
            raise InputError(
                "This semantic readout was fitted without semantic vectors (it reads the pooled "
                "feature maps); call predict without semantic=, or refit with them."
            )
        s = _as_array(semantic, "semantic", None, "(n_images, D)")
        if s.ndim != 2 or len(s) != n:
            raise InputError(
                f"semantic must have shape (n_images={n}, D), one vector per image of X; got "
                f"shape {s.shape}."
            )
        if fitted_dim is not None and s.shape[1] != fitted_dim:
            raise InputError(
                f"semantic has vectors of length {s.shape[1]} but the encoder was fitted with "
                f"length {fitted_dim}; use the same semantic model."
            )
        return s

    def _standardize_x(self, x: np.ndarray) -> np.ndarray:
        shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
        return (x - self.x_mean_.reshape(shape)) / self.x_scale_.reshape(shape)

    # ------------------------------------------------------------------- fit
    def fit(self, X, Y, semantic=None):
        """Train the readout on feature maps ``X`` and responses ``Y``.

        Parameters
        ----------
        X : array or tensor (n_images, C, H, W)
            Feature maps (``(n_images, D)`` vectors suit the linear readout).
        Y : array or tensor (n_images, n_voxels) or (n_images,)
        semantic : array or tensor (n_images, D), optional
            One semantic vector per image (e.g. a frozen CLIP embedding) for
            the semantic readout; None there means the globally pooled feature
            maps. The other readouts ignore it.

        Returns
        -------
        self
        """
        from neuro.train import Trainer
        from neuro.train.seed import seed_everything

        self._check_settings()
        x = self._check_x(X, fitting=True)
        y, single_output, n_val = _training_targets(x, Y, self.val_fraction)
        n = len(x)
        s = self._check_semantic(semantic, n, fitting=True)

        # standardise features per channel, responses per voxel, semantic vectors per entry
        axes = (0, 2, 3) if x.ndim == 4 else (0,)
        self.x_mean_ = x.mean(axis=axes)
        self.x_scale_ = x.std(axis=axes) + 1e-6 * (np.abs(x).max() + 1e-12)
        self.y_mean_ = y.mean(axis=0)
        self.y_scale_ = y.std(axis=0) + 1e-8
        xs = self._standardize_x(x).astype(np.float32)
        ys = ((y - self.y_mean_) / self.y_scale_).astype(np.float32)
        if s is not None:
            self.s_mean_, self.s_scale_ = s.mean(0), s.std(0) + 1e-6
            ss = ((s - self.s_mean_) / self.s_scale_).astype(np.float32)
        else:
            ss = np.zeros((n, 0), dtype=np.float32)

        self.settings_ = _Settings(
            readout=self.readout,
            in_shape=tuple(int(d) for d in x.shape[1:]),
            n_voxels=int(y.shape[1]),
            semantic_dim=0 if s is None else int(s.shape[1]),
            grid=None if self.grid is None else int(self.grid),
            semantic_hidden=int(self.semantic_hidden),
            rotation=bool(self.rotation),
            positive_masks=bool(self.positive_masks),
            init_size=float(self.init_size),
        )
        seed_everything(self.random_state)
        readout = _build(self.settings_)
        order = np.random.default_rng(self.random_state).permutation(n)
        val, train = order[:n_val], order[n_val:]
        if isinstance(readout, GaussianReadout):
            _grid_search(readout, xs[train], ys[train])
        trainer = Trainer(
            max_epochs=self.epochs,
            batch_size=min(self.batch_size, len(train)),
            lr=self.lr,
            weight_decay=self.weight_decay,
            early_stopping_metric="val_loss",
            early_stopping_patience=self.patience,
            restore_best=True,
            device=self.device,
            precision=self.precision,
            seed=self.random_state,
            verbose=self.verbose,
        )
        objective = _Objective(readout, self.loss, self.mask_l1, self.feature_l2, self.transform_l2)
        self.history_ = trainer.fit(
            objective, (xs[train], ss[train], ys[train]), (xs[val], ss[val], ys[val])
        )
        self.model_ = readout.cpu().eval()
        self.single_output_ = single_output
        self._set_attributes()
        return self

    def _set_attributes(self) -> None:
        r = self.model_
        self.n_features_in_ = int(np.prod(self.settings_.in_shape))
        with torch.no_grad():
            if isinstance(r, GaussianReadout):
                self.receptive_field_centers_ = r.centers.clamp(-1, 1).cpu().numpy().copy()
                self.receptive_field_sizes_ = r.sizes().cpu().numpy().copy()
            if isinstance(r, (FactorizedReadout, GaussianReadout)):
                self.spatial_masks_ = r.masks().cpu().numpy().copy()
                self.feature_weights_ = r.features.cpu().numpy().copy()

    # --------------------------------------------------------------- predict
    def predict(self, X, semantic=None, batch_size: int = 256):
        """Predicted responses ``(n_images, n_voxels)``.

        Parameters
        ----------
        X : array or tensor (n_images, C, H, W)
            Same ``C, H, W`` as in :meth:`fit`.
        semantic : array or tensor (n_images, D), optional
            Required by a semantic readout fitted with semantic vectors.
        batch_size : int, default=256
            Images per forward pass (bounds memory).

        Returns
        -------
        ndarray, or a tensor on ``X``'s device when ``X`` is a tensor
            Shape ``(n_images, n_voxels)``, or ``(n_images,)`` if ``Y`` was 1D at ``fit``.
        """
        from neuro.train.device import resolve_device

        self._check_fitted()
        batch_size = check_int("batch_size", batch_size, minimum=1)
        x = self._check_x(X, fitting=False)
        s = self._check_semantic(semantic, len(x), fitting=False)
        device = resolve_device(self.device)
        model = self.model_.to(device)
        xs = torch.from_numpy(self._standardize_x(x).astype(np.float32))
        ss = None
        if s is not None:
            ss = torch.from_numpy(((s - self.s_mean_) / self.s_scale_).astype(np.float32))
        out = []
        with torch.inference_mode():
            for start in range(0, len(xs), batch_size):
                sl = slice(start, start + batch_size)
                sem = None if ss is None else ss[sl].to(device)
                out.append(model(xs[sl].to(device), sem).cpu())
        self.model_ = model.cpu()
        pred = torch.cat(out).numpy() * self.y_scale_ + self.y_mean_
        if getattr(self, "single_output_", False):
            pred = pred[:, 0]
        if isinstance(X, torch.Tensor):
            return torch.from_numpy(pred).to(X.device)
        return pred

    def score(self, X, y, semantic=None, sample_weight=None) -> float:
        """R² of the prediction, averaged uniformly over voxels (scikit-learn's ``score``).

        Parameters
        ----------
        X : array or tensor (n_images, C, H, W)
        y : array or tensor (n_images, n_voxels) or (n_images,)
            The responses (``Y`` of :meth:`fit`).
        semantic : array or tensor (n_images, D), optional
            As for :meth:`predict`.
        sample_weight : array (n_images,), optional

        Returns
        -------
        float
            ``sklearn.metrics.r2_score(Y, predict(X), multioutput="uniform_average")``;
            see :meth:`correlation_score` for the mean Pearson r.
        """
        from neuro.encoders.metrics import mean_r2

        return mean_r2(y, self.predict(X, semantic=semantic), sample_weight=sample_weight)

    def correlation_score(self, X, y, semantic=None) -> float:
        """Mean over voxels of the Pearson r between ``predict(X)`` and ``y``.

        Parameters
        ----------
        X : array or tensor (n_images, C, H, W)
        y : array or tensor (n_images, n_voxels) or (n_images,)
        semantic : array or tensor (n_images, D), optional

        Returns
        -------
        float
        """
        from neuro.encoders.metrics import mean_correlation

        return mean_correlation(y, self.predict(X, semantic=semantic))

    # ------------------------------------------------------------- save/load
    _ARRAYS = ("x_mean_", "x_scale_", "y_mean_", "y_scale_", "s_mean_", "s_scale_")

    def _fitted_state(self) -> dict[str, Any]:
        """Settings, the module's weights, standardisation arrays (as they are) and history."""
        state: dict[str, Any] = {k: getattr(self, k) for k in self._ARRAYS if hasattr(self, k)}
        state["settings_"] = self.settings_
        state["weights"] = {k: v.detach().cpu() for k, v in self.model_.state_dict().items()}
        state["history_"] = list(self.history_)
        state["single_output_"] = bool(getattr(self, "single_output_", False))
        return state

    def _restore_fitted_state(self, state: dict[str, Any]) -> None:
        """Rebuild the module from the settings and load its weights."""
        state = dict(state)
        settings = dict(state.pop("settings_"))
        settings["in_shape"] = tuple(settings["in_shape"])
        self.settings_ = _Settings(**settings)
        model = _build(self.settings_)
        model.load_state_dict(state.pop("weights"))
        self.model_ = model.eval()
        for key, value in state.items():
            setattr(self, key, value)
        self._set_attributes()
