"""Tiny models for the training-utility tests (importable by subprocess workers)."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn


class TinyRegressor(nn.Module):
    """An MLP with dropout, so resuming must restore the random state exactly.

    ``forward`` takes ``(batch, n_in)`` and returns ``(batch, n_out)``.
    """

    def __init__(
        self, n_in: int = 7, n_hidden: int = 9, n_out: int = 3, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_in, n_hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(n_hidden, n_out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch):
        x, y = batch
        pred = self(x)
        return {"loss": nn.functional.mse_loss(pred, y), "mae": (pred - y).abs().mean()}

    def validation_step(self, batch):
        x, y = batch
        return {"loss": nn.functional.mse_loss(self(x), y)}


class RankNoise(TinyRegressor):
    """Dropout, plus Python, NumPy and torch draws whose number depends on the rank.

    Every process starts from the same seed; the extra draws make their random
    streams (and so their dropout masks, and the weights) part ways.
    """

    def training_step(self, batch):
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        for _ in range(rank + 1):
            random.random()
        np.random.rand(rank + 1)  # noqa: NPY002 (the global generator is the point)
        torch.rand(rank + 1)
        return super().training_step(batch)


def regression_data(n: int = 96, n_in: int = 7, n_out: int = 3, seed: int = 0):
    """Inputs and targets of a planted linear map plus a little noise."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=gen)
    w = torch.randn(n_in, n_out, generator=gen)
    y = x @ w + 0.1 * torch.randn(n, n_out, generator=gen)
    return x, y, w
