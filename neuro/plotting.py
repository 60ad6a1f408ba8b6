"""Shared figure helpers (matplotlib, no display needed)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from matplotlib.figure import Figure

from neuro.io import atomic_open

__all__ = ["new_figure", "save_figure"]


def new_figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (4.0, 3.4)):
    """A figure and its axes grid, made without pyplot (works on headless machines)."""
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` atomically (format from the suffix)."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    with atomic_open(path, "wb") as fh:
        fh.write(buf.getvalue())
    return path
