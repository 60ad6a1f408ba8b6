"""The torch modules of :class:`~neuro.decoding.brain3d.Brain3DDecoder`.

Three small networks, one per training stage, each with the
``training_step`` / ``validation_step`` the shared :class:`neuro.train.Trainer`
calls:

* :class:`ShapeAutoencoder` (stage 0, the shape prior): occupancy
  ``(B, G, G, G)`` -> shape latent ``(B, d)`` -> occupancy logits, trained with
  binary cross-entropy;
* :class:`LatentRegressor` (stage 1): fMRI -> latents through an early visual
  stream (one linear projection per ROI, summed, then an MLP) predicting the
  shape latent, and a semantic stream predicting the semantic target; trained
  with mean squared error plus a contrastive (InfoNCE) term;
* :class:`VelocityField` (stage 2): the velocity ``v(z_t, t, c)`` of a
  conditional rectified flow in the shape-latent space, trained by flow
  matching, and :func:`euler_sample`, its sampler.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LatentRegressor",
    "ShapeAutoencoder",
    "VelocityField",
    "contrastive_loss",
    "euler_sample",
]


class ShapeAutoencoder(nn.Module):
    """3D convolutional autoencoder of occupancy grids (the shape prior).

    Three stride-2 convolutions take the grid from ``G`` to ``G / 8`` cells a
    side; a linear layer maps those features to the latent. The decoder
    mirrors it with transposed convolutions and returns logits.

    Parameters
    ----------
    grid_size : int
        ``G``, a multiple of 8.
    latent_dim : int
        Size of the shape latent.
    channels : sequence of 3 int
        Channels after each down-sampling (the decoder uses them reversed).
    latent_noise : float, default=0.0
        In training steps, Gaussian noise of this many batch sds (per latent
        dimension) is added to the latent before decoding, so that nearby
        latents decode to similar shapes (what stages 1 and 2 rely on).

    Notes
    -----
    Inputs are ``(B, G, G, G)`` occupancies in [0, 1]; :meth:`encode` gives
    ``(B, latent_dim)``; :meth:`decode` gives logits ``(B, G, G, G)``.
    """

    def __init__(
        self, grid_size: int, latent_dim: int, channels: Sequence[int], latent_noise: float = 0.0
    ) -> None:
        super().__init__()
        self.latent_noise = float(latent_noise)
        c1, c2, c3 = (int(c) for c in channels)
        self.grid_size, self.latent_dim = int(grid_size), int(latent_dim)
        self.base = self.grid_size // 8
        flat = c3 * self.base**3
        self.channels = (c1, c2, c3)
        self.encoder = nn.Sequential(
            nn.Conv3d(1, c1, 4, stride=2, padding=1),
            nn.GELU(),
            nn.Conv3d(c1, c2, 4, stride=2, padding=1),
            nn.GELU(),
            nn.Conv3d(c2, c3, 4, stride=2, padding=1),
            nn.GELU(),
            nn.Flatten(),
            nn.Linear(flat, self.latent_dim),
        )
        self.expand = nn.Linear(self.latent_dim, flat)
        self.decoder = nn.Sequential(
            nn.GELU(),
            nn.ConvTranspose3d(c3, c2, 4, stride=2, padding=1),
            nn.GELU(),
            nn.ConvTranspose3d(c2, c1, 4, stride=2, padding=1),
            nn.GELU(),
            nn.ConvTranspose3d(c1, 1, 4, stride=2, padding=1),
        )

    def encode(self, occupancy: torch.Tensor) -> torch.Tensor:
        """Latents ``(B, latent_dim)`` of occupancies ``(B, G, G, G)``."""
        return self.encoder(occupancy[:, None])

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Occupancy logits ``(B, G, G, G)`` of latents ``(B, latent_dim)``."""
        h = self.expand(latent).reshape(len(latent), self.channels[2], *(self.base,) * 3)
        return self.decoder(h)[:, 0]

    def forward(self, occupancy: torch.Tensor) -> torch.Tensor:
        """Reconstruction logits ``(B, G, G, G)``."""
        return self.decode(self.encode(occupancy))

    def _loss(self, batch, noise: float = 0.0) -> dict[str, torch.Tensor]:
        (occupancy,) = batch
        z = self.encode(occupancy)
        if noise > 0 and len(z) > 1:  # a smooth latent space: nearby latents, similar shapes
            z = z + noise * z.detach().std(0) * torch.randn_like(z)
        return {"loss": F.binary_cross_entropy_with_logits(self.decode(z), occupancy)}

    def training_step(self, batch):
        return self._loss(batch, self.latent_noise)

    def validation_step(self, batch):
        return self._loss(batch)


def _mlp(n_in: int, hidden: int, n_out: int, depth: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout)]
        width = hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def contrastive_loss(pred: torch.Tensor, true: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE between predicted and true latents of a batch (cosine similarity).

    Row ``i`` of ``pred`` should be closer to ``true[i]`` than to the other
    rows' targets. Rows whose targets are identical (one-hot categories) all
    count as positives of each other, so a target shared by several stimuli
    is not pushed away from itself.

    Parameters
    ----------
    pred, true : Tensor (B, d)
    temperature : float
        Softmax temperature (> 0).

    Returns
    -------
    Tensor
        Scalar loss (nats).
    """
    p = F.normalize(pred.float(), dim=1)
    t = F.normalize(true.float(), dim=1)
    logits = p @ t.T / temperature  # (B, B)
    same = (t @ t.T) > 1.0 - 1e-6  # (B, B) identical targets are positives
    log_all = torch.logsumexp(logits, dim=1)
    log_pos = torch.logsumexp(logits.masked_fill(~same, float("-inf")), dim=1)
    return (log_all - log_pos).mean()


class LatentRegressor(nn.Module):
    """Stage 1: fMRI -> (shape latent, semantic latent), one stream per ROI group.

    Parameters
    ----------
    early_index : list of LongTensor
        Column indices of each early visual ROI in ``X``.
    semantic_index : LongTensor
        Column indices of the semantic ROIs.
    shape_dim, semantic_dim : int
        Output sizes.
    hidden : int
        Width of both streams.
    depth : int
        Hidden layers of each stream's MLP after its input projection.
    dropout : float
    contrastive_weight, temperature : float
        Weight and temperature of the InfoNCE terms.

    Notes
    -----
    Batches are ``(X (B, n_voxels), shape (B, shape_dim), semantic (B,
    semantic_dim))``. The early stream is ``MLP(sum_r W_r X[:, roi r])``:
    one linear map per ROI, so each ROI's contribution stays separable.
    """

    def __init__(
        self,
        early_index: Sequence[torch.Tensor],
        semantic_index: torch.Tensor,
        shape_dim: int,
        semantic_dim: int,
        hidden: int,
        depth: int,
        dropout: float,
        contrastive_weight: float,
        temperature: float,
    ) -> None:
        super().__init__()
        self.n_early = len(early_index)
        for i, idx in enumerate(early_index):
            self.register_buffer(f"early_index_{i}", idx.long(), persistent=False)
        self.register_buffer("semantic_index", semantic_index.long(), persistent=False)
        self.early_proj = nn.ModuleList([nn.Linear(len(idx), hidden) for idx in early_index])
        self.early_mlp = _mlp(hidden, hidden, shape_dim, depth, dropout)
        self.semantic_proj = nn.Linear(len(semantic_index), hidden)
        self.semantic_mlp = _mlp(hidden, hidden, semantic_dim, depth, dropout)
        self.input_dropout = nn.Dropout(dropout)
        self.contrastive_weight = float(contrastive_weight)
        self.temperature = float(temperature)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(shape (B, shape_dim), semantic (B, semantic_dim))`` from ``x (B, n_voxels)``."""
        x = self.input_dropout(x)
        h = sum(
            proj(x[:, getattr(self, f"early_index_{i}")]) for i, proj in enumerate(self.early_proj)
        )
        shape = self.early_mlp(h)
        semantic = self.semantic_mlp(self.semantic_proj(x[:, self.semantic_index]))
        return shape, semantic

    def _loss(self, batch) -> dict[str, torch.Tensor]:
        x, shape, semantic = batch
        p_shape, p_sem = self(x)
        mse_shape = F.mse_loss(p_shape, shape)
        mse_sem = F.mse_loss(p_sem, semantic)
        out = {"loss": mse_shape + mse_sem, "mse_shape": mse_shape, "mse_semantic": mse_sem}
        if self.contrastive_weight > 0 and len(x) > 1:
            nce = contrastive_loss(p_shape, shape, self.temperature) + contrastive_loss(
                p_sem, semantic, self.temperature
            )
            out["loss"] = out["loss"] + self.contrastive_weight * nce
            out["infonce"] = nce
        return out

    def training_step(self, batch):
        return self._loss(batch)

    def validation_step(self, batch):
        return self._loss(batch)


def _time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features ``(B, dim)`` of times ``t (B,)`` in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device) / max(half - 1, 1))
    angles = t[:, None].float() * freqs[None] * 2 * math.pi
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class VelocityField(nn.Module):
    """Stage 2: the velocity ``v(z_t, t, c)`` of a conditional rectified flow.

    Parameters
    ----------
    latent_dim : int
        Size of the shape latent ``z``.
    cond_dim : int
        Size of the condition ``c``.
    hidden : int
        MLP width.
    depth : int
        Hidden layers.
    time_dim : int, default=32
        Sinusoidal features of ``t``.

    Attributes
    ----------
    condition_noise : float
        Sd of Gaussian noise added to the condition in each training step
        (0 by default), so the flow tolerates conditions that miss a little.

    Notes
    -----
    Flow matching (rectified flow): with ``z_0 ~ N(0, I)``, the data latent
    ``z_1`` and ``t ~ U(0, 1)``, ``z_t = (1 - t) z_0 + t z_1`` and the network
    regresses ``z_1 - z_0``. Batches are ``(z_1 (B, latent_dim), c (B,
    cond_dim))``. Validation draws its noise from a fixed generator, so the
    validation loss of the same weights is always the same number.
    """

    def __init__(
        self, latent_dim: int, cond_dim: int, hidden: int, depth: int, time_dim: int = 32
    ) -> None:
        super().__init__()
        self.latent_dim, self.time_dim = int(latent_dim), int(time_dim)
        layers: list[nn.Module] = []
        width = latent_dim + cond_dim + time_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, latent_dim))
        self.net = nn.Sequential(*layers)
        #: sd of Gaussian noise added to the condition in training steps (not in validation)
        self.condition_noise = 0.0

    def forward(self, z: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Velocity ``(B, latent_dim)`` at ``z (B, latent_dim)``, ``t (B,)``, ``c (B, cond_dim)``."""
        return self.net(torch.cat([z, _time_embedding(t, self.time_dim), c], dim=1))

    def _loss(self, batch, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        z1, c = batch
        n = len(z1)
        z0 = torch.randn(z1.shape, generator=generator, device=z1.device, dtype=z1.dtype)
        t = torch.rand((n,), generator=generator, device=z1.device, dtype=z1.dtype)
        zt = (1 - t[:, None]) * z0 + t[:, None] * z1
        return {"loss": F.mse_loss(self(zt, t, c), z1 - z0)}

    def training_step(self, batch):
        z1, c = batch
        if self.condition_noise > 0:
            c = c + self.condition_noise * torch.randn_like(c)
        return self._loss((z1, c))

    def validation_step(self, batch):
        gen = torch.Generator(device=batch[0].device)
        gen.manual_seed(0)
        return self._loss(batch, gen)


@torch.no_grad()
def euler_sample(
    field: VelocityField, z0: torch.Tensor, c: torch.Tensor, steps: int
) -> torch.Tensor:
    """Integrate ``dz/dt = v(z, t, c)`` from ``t = 0`` to 1 with ``steps`` Euler steps.

    Parameters
    ----------
    field : VelocityField
    z0 : Tensor (B, latent_dim)
        Starting noise.
    c : Tensor (B, cond_dim)
        Conditions.
    steps : int

    Returns
    -------
    Tensor (B, latent_dim)
    """
    z = z0
    dt = 1.0 / steps
    for k in range(steps):
        t = torch.full((len(z),), k * dt, device=z.device, dtype=z.dtype)
        z = z + dt * field(z, t, c)
    return z
