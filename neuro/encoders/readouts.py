"""Readouts from image feature maps to voxels, trained with the shared Trainer.

A readout maps feature maps ``(batch, C, H, W)`` of a (frozen) image model to
the responses of many voxels ``(batch, n_voxels)``. The families compared in
"Modeling the Human Visual System: Comparative Insights from
Response-Optimized and Task-Optimized Vision Models, Language Models, and
different Readout Mechanisms":

``LinearReadout``
    A full linear map from pooled (a coarse grid) or flattened features.
``FactorizedReadout``
    Where x what: each voxel has a spatial mask over the map and a weight per
    feature channel; ``y_v = sum_c w_vc sum_xy m_v(x, y) F_c(x, y) + b_v``.
``GaussianReadout``
    The spatial mask is an isotropic Gaussian with a learned centre
    ``mu_v = (x, y)`` in map coordinates ``[-1, 1]`` (x left to right, y top
    to bottom, as ``torch.nn.functional.grid_sample``) and size ``sigma_v``,
    normalised to sum to one over the map: a population receptive field.
``SemanticReadout``
    The paper's semantic-modulated readout: a factorized readout whose
    spatial mask is moved and scaled per voxel and per image, and whose
    feature maps are shifted and re-weighted per channel and per image, by
    transforms predicted from the image's semantic content (a vector per
    image, e.g. a frozen CLIP embedding; by default the globally pooled
    feature maps). The predicting layers start at zero, so training begins
    from the plain factorized readout (identity transforms).

:class:`ReadoutEncoder` wraps them as a scikit-learn estimator: it
standardises features (per channel) and responses (per voxel), holds out a
validation fraction for early stopping, and trains with
:class:`neuro.train.Trainer`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, RegressorMixin
from torch import nn

__all__ = [
    "READOUTS",
    "FactorizedReadout",
    "GaussianReadout",
    "LinearReadout",
    "ReadoutEncoder",
    "SemanticReadout",
]

#: Readout families by name.
READOUTS = ("linear", "factorized", "gaussian", "semantic")


def _map_grid(height: int, width: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates in [-1, 1] (``align_corners=False``): ``(x (W,), y (H,))``."""
    x = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width * 2 - 1
    y = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height * 2 - 1
    return x, y


class LinearReadout(nn.Module):
    """A linear map from pooled or flattened feature maps to every voxel.

    Parameters
    ----------
    in_shape : (C, H, W)
    n_voxels : int
    grid : int or None, default=4
        Average-pool the maps to ``grid x grid`` before the linear map; None
        flattens them whole.

    Shapes: ``forward(x)`` takes ``(batch, C, H, W)`` (or ``(batch, D)`` when
    ``in_shape`` is ``(D,)``) and returns ``(batch, n_voxels)``.
    """

    def __init__(self, in_shape: tuple[int, ...], n_voxels: int, grid: int | None = 4) -> None:
        super().__init__()
        self.grid = grid if len(in_shape) == 3 else None
        if len(in_shape) == 3 and grid is not None:
            c, h, w = in_shape
            n_in = c * min(grid, h) * min(grid, w)
        else:
            n_in = math.prod(in_shape)
        self.linear = nn.Linear(n_in, n_voxels)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, semantic: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim == 4 and self.grid is not None:
            x = F.adaptive_avg_pool2d(x, (min(self.grid, x.shape[2]), min(self.grid, x.shape[3])))
        return self.linear(x.flatten(1))


class FactorizedReadout(nn.Module):
    """Spatial mask x feature weights per voxel (Klindt et al. 2017's factorized readout).

    Parameters
    ----------
    in_shape : (C, H, W)
    n_voxels : int

    Attributes
    ----------
    spatial : Parameter (n_voxels, H, W)
        Unconstrained spatial masks (smoothness and sparsity come from the
        encoder's penalties).
    features : Parameter (n_voxels, C)
    bias : Parameter (n_voxels,)

    Shapes: ``forward(x)`` takes ``(batch, C, H, W)``, returns ``(batch, n_voxels)``.
    """

    def __init__(self, in_shape: tuple[int, int, int], n_voxels: int) -> None:
        super().__init__()
        c, h, w = in_shape
        self.spatial = nn.Parameter(torch.full((n_voxels, h, w), 1.0 / (h * w)))
        self.features = nn.Parameter(torch.randn(n_voxels, c) * 0.01)
        self.bias = nn.Parameter(torch.zeros(n_voxels))

    def masks(self) -> torch.Tensor:
        """The spatial masks ``(n_voxels, H, W)``."""
        return self.spatial

    def forward(self, x: torch.Tensor, semantic: torch.Tensor | None = None) -> torch.Tensor:
        pooled = x.flatten(2) @ self.masks().flatten(1).T  # (batch, C, n_voxels)
        return (pooled * self.features.T).sum(1) + self.bias

    def penalty(self) -> torch.Tensor:
        """L1 of the masks (sparse receptive fields) and L2 of the feature weights."""
        return self.spatial.abs().sum(dim=(1, 2)).mean() + self.features.square().sum(1).mean()


class GaussianReadout(nn.Module):
    """A Gaussian receptive field per voxel times a weight per feature channel.

    Parameters
    ----------
    in_shape : (C, H, W)
    n_voxels : int
    init_centers : array (n_voxels, 2), optional
        Starting centres (x, y) in ``[-1, 1]``; default spread uniformly in
        ``[-0.5, 0.5]``.
    init_size : float, default=0.3
        Starting sd in map units.

    Attributes
    ----------
    centers : Parameter (n_voxels, 2)
        ``(x, y)``, kept inside ``[-1, 1]`` by clamping in the forward pass.
    log_sizes : Parameter (n_voxels,)
        Log of the sd in map units (the image is 2 units wide).
    features : Parameter (n_voxels, C)
    bias : Parameter (n_voxels,)

    Shapes: ``forward(x)`` takes ``(batch, C, H, W)``, returns ``(batch, n_voxels)``.
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
            init = torch.as_tensor(np.asarray(init_centers), dtype=torch.float32)
        self.centers = nn.Parameter(init.clone())
        self.log_sizes = nn.Parameter(torch.full((n_voxels,), math.log(init_size)))
        self.features = nn.Parameter(torch.randn(n_voxels, c) * 0.01)
        self.bias = nn.Parameter(torch.zeros(n_voxels))
        gx, gy = _map_grid(h, w)
        self.register_buffer("grid_x", gx, persistent=False)
        self.register_buffer("grid_y", gy, persistent=False)

    def sizes(self) -> torch.Tensor:
        """Receptive-field sds ``(n_voxels,)`` in map units, at least a fifth of a map cell."""
        floor = 0.2 * 2.0 / max(len(self.grid_x), len(self.grid_y))
        return self.log_sizes.exp() + floor

    def masks(self) -> torch.Tensor:
        """Gaussian masks ``(n_voxels, H, W)``, each summing to one."""
        mu = self.centers.clamp(-1, 1)
        s2 = 2 * self.sizes()[:, None] ** 2
        gx = torch.exp(-((self.grid_x[None] - mu[:, :1]) ** 2) / s2)  # (V, W)
        gy = torch.exp(-((self.grid_y[None] - mu[:, 1:]) ** 2) / s2)  # (V, H)
        m = gy[:, :, None] * gx[:, None, :]
        return m / (m.sum(dim=(1, 2), keepdim=True) + 1e-12)

    def forward(self, x: torch.Tensor, semantic: torch.Tensor | None = None) -> torch.Tensor:
        pooled = x.flatten(2) @ self.masks().flatten(1).T  # (batch, C, n_voxels)
        return (pooled * self.features.T).sum(1) + self.bias

    def penalty(self) -> torch.Tensor:
        """L2 of the feature weights."""
        return self.features.square().sum(1).mean()


class SemanticReadout(FactorizedReadout):
    """Factorized readout whose mask and feature maps move with the image's semantics.

    For image ``b`` with semantic vector ``s_b``, a small network
    ``h_b = MLP(s_b)`` predicts

    * per voxel: a shift ``(tx, ty)`` and a log-scale of the voxel's spatial
      mask (``affine_grid`` / ``grid_sample``; with ``rotation=True`` also an
      angle);
    * per channel: a shift of that channel's feature map and a gain
      ``exp(g_bc)`` on it (the feature weights each voxel applies).

    The output layers start at zero, so an untrained model is the plain
    factorized readout.

    Parameters
    ----------
    in_shape : (C, H, W)
    n_voxels : int
    semantic_dim : int
        Length of the semantic vector of each image.
    hidden : int, default=32
    rotation : bool, default=False

    Shapes: ``forward(x, semantic)`` takes ``(batch, C, H, W)`` and
    ``(batch, semantic_dim)``, returns ``(batch, n_voxels)``.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_voxels: int,
        semantic_dim: int,
        hidden: int = 32,
        rotation: bool = False,
    ) -> None:
        super().__init__(in_shape, n_voxels)
        c = in_shape[0]
        self.rotation = rotation
        self.n_voxel_params = 4 if rotation else 3
        self.semantic_net = nn.Sequential(
            nn.Linear(semantic_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU()
        )
        self.voxel_transform = nn.Linear(hidden, n_voxels * self.n_voxel_params)
        self.channel_transform = nn.Linear(hidden, c * 3)  # (tx, ty, gain) per channel
        for layer in (self.voxel_transform, self.channel_transform):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @staticmethod
    def _affine(shift: torch.Tensor, log_scale: torch.Tensor, angle=None) -> torch.Tensor:
        """Sampling matrices ``(..., 2, 3)``: output(p) = input(scale^-1 R^-1 (p - shift))."""
        inv = torch.exp(-log_scale)
        cos = torch.ones_like(inv) if angle is None else torch.cos(angle)
        sin = torch.zeros_like(inv) if angle is None else torch.sin(angle)
        a = torch.stack([cos * inv, sin * inv], -1)
        b = torch.stack([-sin * inv, cos * inv], -1)
        rot = torch.stack([a, b], -2)  # (..., 2, 2) = scale^-1 R^-1
        t = -(rot @ shift[..., None])  # (..., 2, 1)
        return torch.cat([rot, t], -1)

    def forward(self, x: torch.Tensor, semantic: torch.Tensor | None = None) -> torch.Tensor:
        if semantic is None:
            semantic = x.mean(dim=(2, 3))
        b, c, h, w = x.shape
        v = self.features.shape[0]
        hid = self.semantic_net(semantic)
        # per-channel shift and gain of the feature maps
        ch = self.channel_transform(hid).view(b, c, 3)
        theta_c = self._affine(ch[..., :2].reshape(-1, 2), torch.zeros(b * c, device=x.device))
        grid_c = F.affine_grid(theta_c, [b * c, 1, h, w], align_corners=False)
        x = F.grid_sample(x.reshape(b * c, 1, h, w), grid_c, align_corners=False).view(b, c, h, w)
        x = x * torch.exp(ch[..., 2])[:, :, None, None]  # gain per channel
        # per-voxel shift and scale of the spatial masks
        vp = self.voxel_transform(hid).view(b, v, self.n_voxel_params)
        angle = vp[..., 3].reshape(-1) if self.rotation else None
        theta_v = self._affine(vp[..., :2].reshape(-1, 2), vp[..., 2].reshape(-1), angle)
        grid_v = F.affine_grid(theta_v, [b * v, 1, h, w], align_corners=False)
        masks = self.masks()[None].expand(b, -1, -1, -1).reshape(b * v, 1, h, w)
        masks = F.grid_sample(masks, grid_v, align_corners=False).view(b, v, h * w)
        pooled = torch.bmm(masks, x.flatten(2).transpose(1, 2))  # (b, v, c)
        return (pooled * self.features).sum(-1) + self.bias


# ----------------------------------------------------------------- training
class _Objective(nn.Module):
    """Readout + loss, in the form the Trainer expects."""

    def __init__(self, readout: nn.Module, mask_l1: float, feature_l2: float) -> None:
        super().__init__()
        self.readout = readout
        self.mask_l1 = mask_l1
        self.feature_l2 = feature_l2

    def _loss(self, batch):
        x, s, y = batch
        pred = self.readout(x, s if s.shape[1] > 0 else None)
        mse = F.mse_loss(pred, y)
        return pred, mse

    def training_step(self, batch):
        _, mse = self._loss(batch)
        loss = mse
        r = self.readout
        if self.mask_l1 > 0 and isinstance(r, FactorizedReadout):
            loss = loss + self.mask_l1 * r.spatial.abs().sum(dim=(1, 2)).mean()
        if self.feature_l2 > 0 and hasattr(r, "features"):
            loss = loss + self.feature_l2 * r.features.square().sum(1).mean()
        return {"loss": loss, "mse": mse.detach()}

    def validation_step(self, batch):
        _, mse = self._loss(batch)
        return {"loss": mse}


@dataclass
class _Settings:
    """What ``ReadoutEncoder.load`` needs to rebuild the model (saved with its weights)."""

    readout: str
    in_shape: tuple[int, ...]
    n_voxels: int
    semantic_dim: int
    grid: int | None
    semantic_hidden: int
    rotation: bool


def _check_array(a, name: str) -> np.ndarray:
    arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must hold numbers; got dtype {arr.dtype}.")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values; remove or impute them first.")
    return arr


class ReadoutEncoder(RegressorMixin, BaseEstimator):
    """Voxel encoder that reads feature maps through one of the readout families.

    Parameters
    ----------
    readout : {"linear", "factorized", "gaussian", "semantic"}, default="gaussian"
    device : str, default="auto"
    epochs : int, default=200
        Most passes over the training images (early stopping usually ends
        training sooner).
    batch_size : int, default=64
    lr : float, default=0.01
    weight_decay : float, default=0.0
        AdamW weight decay.
    mask_l1 : float, default=0.01
        L1 penalty on the factorized and semantic readouts' spatial masks.
    feature_l2 : float, default=1e-3
        Penalty on the squared feature weights.
    val_fraction : float, default=0.1
        Fraction of the training images held out for early stopping.
    patience : int, default=20
        Epochs without a better validation loss before stopping; the best
        weights are kept.
    grid : int or None, default=4
        The linear readout pools maps to ``grid x grid`` (None: flatten).
    semantic_hidden : int, default=32
        Width of the semantic readout's modulation network.
    rotation : bool, default=False
        Let the semantic readout rotate masks too.
    init_size : float, default=0.3
        Starting receptive-field sd of the Gaussian readout (map units).
    precision : str, default="32"
    seed : int, default=0
    verbose : int, default=0

    Attributes
    ----------
    model_ : torch.nn.Module
        The trained readout (on the CPU).
    history_ : list of dict
        The Trainer's per-epoch records.
    receptive_field_centers_ : ndarray (n_voxels, 2)
        Gaussian readout only: centres ``(x, y)`` in map coordinates
        ``[-1, 1]`` (x left to right, y top to bottom).
    receptive_field_sizes_ : ndarray (n_voxels,)
        Gaussian readout only: sds in map units (the map is 2 units wide).
    spatial_masks_ : ndarray (n_voxels, H, W)
        Factorized, Gaussian and semantic readouts.
    feature_weights_ : ndarray (n_voxels, C)
        Factorized, Gaussian and semantic readouts, in standardised feature units.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> maps = rng.random((80, 2, 6, 6)).astype("float32")
    >>> y = maps[:, 0, 1, 4:5] * 3 + 0.05 * rng.standard_normal((80, 1))  # one pixel, channel 0
    >>> enc = ReadoutEncoder("gaussian", device="cpu", epochs=60).fit(maps, y)
    >>> enc.receptive_field_centers_.shape, bool(enc.score(maps, y) > 0.6)
    ((1, 2), True)
    """

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
        val_fraction: float = 0.1,
        patience: int = 20,
        grid: int | None = 4,
        semantic_hidden: int = 32,
        rotation: bool = False,
        init_size: float = 0.3,
        precision: str = "32",
        seed: int = 0,
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
        self.val_fraction = val_fraction
        self.patience = patience
        self.grid = grid
        self.semantic_hidden = semantic_hidden
        self.rotation = rotation
        self.init_size = init_size
        self.precision = precision
        self.seed = seed
        self.verbose = verbose

    # -------------------------------------------------------------- checks
    def _check_settings(self) -> None:
        if self.readout not in READOUTS:
            raise ValueError(f"Unknown readout {self.readout!r}; choose from {list(READOUTS)}.")
        for name in ("epochs", "batch_size", "patience", "semantic_hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}.")
        if not 0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must lie in (0, 0.5); got {self.val_fraction!r}.")

    def _check_x(self, X, fitting: bool) -> np.ndarray:
        x = _check_array(X, "X (feature maps)")
        needs_maps = self.readout != "linear"
        if (needs_maps and x.ndim != 4) or x.ndim not in (2, 4):
            expected = "(n_images, C, H, W)" if needs_maps else "(n_images, C, H, W) or (n, D)"
            raise ValueError(
                f"The {self.readout} readout needs feature maps of shape {expected}; got shape "
                f"{x.shape}. Pooled vectors suit the 'linear' readout or VoxelRidgeCV."
            )
        if not fitting and x.shape[1:] != tuple(self.settings_.in_shape):
            raise ValueError(
                f"X has feature maps of shape {x.shape[1:]} but the encoder was fitted on "
                f"{tuple(self.settings_.in_shape)}; use the same features."
            )
        return x

    def _check_semantic(self, semantic, n: int, fitting: bool) -> np.ndarray | None:
        if semantic is None or self.readout != "semantic":
            if not fitting and self.readout == "semantic" and self.settings_.semantic_dim > 0:
                raise ValueError(
                    "This semantic readout was fitted with semantic vectors; pass semantic= too."
                )
            return None
        s = _check_array(semantic, "semantic")
        if s.ndim != 2 or len(s) != n:
            raise ValueError(
                f"semantic must have shape (n_images={n}, D), one vector per image; got {s.shape}."
            )
        if not fitting and s.shape[1] != self.settings_.semantic_dim:
            raise ValueError(
                f"semantic has {s.shape[1]} numbers per image but the encoder was fitted with "
                f"{self.settings_.semantic_dim}."
            )
        return s

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError(
                f"This ReadoutEncoder({self.readout!r}) is not fitted yet; call fit(X, Y) first."
            )

    # -------------------------------------------------------------- model
    def _build(self, settings: _Settings) -> nn.Module:
        shape, v = tuple(settings.in_shape), settings.n_voxels
        if settings.readout == "linear":
            return LinearReadout(shape, v, grid=settings.grid)
        if settings.readout == "factorized":
            return FactorizedReadout(shape, v)
        if settings.readout == "gaussian":
            return GaussianReadout(shape, v, init_size=self.init_size)
        dim = settings.semantic_dim or shape[0]
        return SemanticReadout(
            shape, v, dim, hidden=settings.semantic_hidden, rotation=settings.rotation
        )

    def _standardize_x(self, x: np.ndarray) -> np.ndarray:
        shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
        return (x - self.x_mean_.reshape(shape)) / self.x_scale_.reshape(shape)

    # ---------------------------------------------------------------- fit
    def fit(self, X, Y, semantic=None):
        """Train the readout on feature maps ``X`` and responses ``Y``.

        Parameters
        ----------
        X : array or tensor (n_images, C, H, W)
            Feature maps (``(n_images, D)`` for the linear readout too).
        Y : array or tensor (n_images, n_voxels)
        semantic : array (n_images, D), optional
            Semantic vectors for the semantic readout (ignored by the others).

        Returns
        -------
        self
        """
        from neuro.train import Trainer
        from neuro.train.seed import seed_everything

        self._check_settings()
        x = self._check_x(X, fitting=True)
        y = _check_array(Y, "Y")
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2:
            raise ValueError(f"Y must have shape (n_images, n_voxels); got {y.shape}.")
        if len(x) != len(y):
            raise ValueError(
                f"X and Y must have the same number of images; got {len(x)} and {len(y)}."
            )
        n = len(x)
        n_val = max(1, round(self.val_fraction * n))
        if n - n_val < 2:
            raise ValueError(f"Too few images to train ({n}); give at least 10.")
        s = self._check_semantic(semantic, n, fitting=True)

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
            grid=self.grid,
            semantic_hidden=int(self.semantic_hidden),
            rotation=bool(self.rotation),
        )
        seed_everything(self.seed)
        readout = self._build(self.settings_)
        if isinstance(readout, GaussianReadout):
            readout.centers.data = _grid_search_centers(readout, xs, ys)
        order = np.random.default_rng(self.seed).permutation(n)
        val, train = order[:n_val], order[n_val:]
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
            seed=self.seed,
            verbose=self.verbose,
        )
        objective = _Objective(readout, self.mask_l1, self.feature_l2)
        self.history_ = trainer.fit(
            objective,
            (xs[train], ss[train], ys[train]),
            (xs[val], ss[val], ys[val]),
        )
        self.model_ = readout.cpu().eval()
        self._set_attributes()
        self.n_features_in_ = int(np.prod(x.shape[1:]))
        return self

    def _set_attributes(self) -> None:
        r = self.model_
        with torch.no_grad():
            if isinstance(r, GaussianReadout):
                self.receptive_field_centers_ = r.centers.clamp(-1, 1).numpy().copy()
                self.receptive_field_sizes_ = r.sizes().numpy().copy()
            if isinstance(r, (FactorizedReadout, GaussianReadout)):
                self.spatial_masks_ = r.masks().numpy().copy()
                self.feature_weights_ = r.features.numpy().copy()

    # ------------------------------------------------------------ predict
    def predict(self, X, semantic=None, batch_size: int = 256):
        """Predicted responses ``(n_images, n_voxels)``; numpy in, numpy out; torch in, torch out."""
        self._check_fitted()
        x = self._check_x(X, fitting=False)
        s = self._check_semantic(semantic, len(x), fitting=False)
        xs = torch.from_numpy(self._standardize_x(x).astype(np.float32))
        ss = None
        if s is not None:
            ss = torch.from_numpy(((s - self.s_mean_) / self.s_scale_).astype(np.float32))
        out = []
        with torch.inference_mode():
            for start in range(0, len(xs), batch_size):
                sl = slice(start, start + batch_size)
                out.append(self.model_(xs[sl], None if ss is None else ss[sl]))
        pred = torch.cat(out).numpy() * self.y_scale_ + self.y_mean_
        if isinstance(X, torch.Tensor):
            return torch.from_numpy(pred).to(X.device)
        return pred

    def score(self, X, Y, semantic=None, sample_weight=None) -> float:
        """Mean over voxels of the Pearson r between prediction and data."""
        from neuro.encoders.metrics import voxel_correlation

        if sample_weight is not None:
            raise ValueError("sample_weight is not supported.")
        pred = self.predict(X, semantic=semantic)
        pred = pred.cpu().numpy() if isinstance(pred, torch.Tensor) else pred
        y = _check_array(Y, "Y")
        y = y[:, None] if y.ndim == 1 else y
        return float(np.mean(voxel_correlation(y.astype(np.float64), pred.astype(np.float64))))

    # ---------------------------------------------------------- save/load
    def save(self, path, overwrite: bool = False) -> Path:
        """Write the fitted encoder to one file (weights, settings, standardisation).

        Loaded back with :meth:`load` through ``torch.load(weights_only=True)``:
        the file holds tensors, numbers and strings only. Writing is atomic;
        an existing file is refused unless ``overwrite``.
        """
        from neuro.io import atomic_open

        self._check_fitted()
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
        arrays = {
            k: torch.from_numpy(np.asarray(getattr(self, k), dtype=np.float32))
            for k in ("x_mean_", "x_scale_", "y_mean_", "y_scale_", "s_mean_", "s_scale_")
            if hasattr(self, k)
        }
        params = {k: v for k, v in self.get_params().items()}
        payload = {
            "format": "neuro.ReadoutEncoder/1",
            "params": params,
            "settings": {
                **dataclasses.asdict(self.settings_),
                "in_shape": list(self.settings_.in_shape),
            },
            "state_dict": self.model_.state_dict(),
            "arrays": arrays,
        }
        with atomic_open(path, "wb") as fh:
            torch.save(payload, fh)
        return path

    @classmethod
    def load(cls, path) -> ReadoutEncoder:
        """A fitted encoder from a file written by :meth:`save` (safe: ``weights_only=True``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (expected one written by save()).")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != "neuro.ReadoutEncoder/1":
            raise ValueError(f"{path} is not a file written by ReadoutEncoder.save().")
        enc = cls(**payload["params"])
        settings = dict(payload["settings"])
        settings["in_shape"] = tuple(settings["in_shape"])
        enc.settings_ = _Settings(**settings)
        for k, v in payload["arrays"].items():
            setattr(enc, k, v.numpy())
        model = enc._build(enc.settings_)
        model.load_state_dict(payload["state_dict"])
        enc.model_ = model.eval()
        enc._set_attributes()
        enc.n_features_in_ = int(np.prod(enc.settings_.in_shape))
        return enc


def _grid_search_centers(readout: GaussianReadout, x: np.ndarray, y: np.ndarray) -> torch.Tensor:
    """Start each voxel's centre where a Gaussian on a coarse grid best predicts it.

    For candidate centres on a 5 x 5 grid (at the starting size), the
    Gaussian-pooled features of each candidate are regressed (least squares,
    all channels) onto every voxel; each voxel starts at the candidate with
    the highest R². This keeps gradient descent from stalling far from a
    voxel's receptive field.
    """
    c, h, w = readout.features.shape[1], *x.shape[2:]
    ticks = torch.linspace(-0.8, 0.8, 5)
    cand = torch.stack(torch.meshgrid(ticks, ticks, indexing="xy"), -1).reshape(-1, 2)
    probe = GaussianReadout((c, h, w), len(cand), init_centers=cand.numpy())
    with torch.no_grad():
        probe.log_sizes.fill_(readout.log_sizes[0].item())
        masks = probe.masks().flatten(1)  # (K, HW)
        xt = torch.from_numpy(x).flatten(2)  # (n, C, HW)
        pooled = (xt @ masks.T).permute(2, 0, 1)  # (K, n, C)
        pooled = pooled - pooled.mean(1, keepdim=True)
        yt = torch.from_numpy(y)
        yt = yt - yt.mean(0)
        ridge = 1e-3 * pooled.square().sum(1).mean(-1)[:, None, None] + 1e-6
        gram = pooled.transpose(1, 2) @ pooled + ridge * torch.eye(c)
        xty = pooled.transpose(1, 2) @ yt  # (K, C, V)
        coef = torch.linalg.solve(gram, xty)
        # variance explained by each candidate's least-squares fit, without residuals in memory
        r2 = (coef * xty).sum(1) / (yt.square().sum(0) + 1e-12)  # (K, V)
        best = r2.argmax(0)
    return cand[best].clone()
