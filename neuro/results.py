"""The base class of every result a user keeps: comparisons, experiments, analyses.

A :class:`Result` answers four calls, the same way in every module:

* ``summary()`` -> dict of plain JSON values (numbers, strings, lists, dicts;
  NaN becomes None): the figures a script prints or a test checks;
* ``format_table()`` -> str: the table a person reads in a terminal;
* ``plot()`` -> dict of name -> matplotlib ``Figure``;
* ``save(folder)``: ``metrics.json`` (the summary), ``summary.txt`` (the
  table), one CSV per entry of ``tables()``, ``figures/<name>.png`` for each
  figure, and whatever ``_save_extra`` adds (models, maps); every file is
  written atomically, and a non-empty folder is refused unless
  ``overwrite=True``.

Subclasses implement ``summary`` and ``format_table`` and, where they have
them, ``tables``, ``plot`` and ``_save_extra``.
"""

from __future__ import annotations

import abc
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from neuro.io import atomic_write_json, atomic_write_text, prepare_output_dir

__all__ = ["Result", "jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` with NumPy and torch numbers as Python ones, NaN and inf as None.

    Dict keys become strings; tuples and arrays become lists. Anything else
    that JSON cannot hold raises ``TypeError``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "detach") and hasattr(value, "tolist"):  # a torch tensor
        return jsonable(value.detach().cpu().tolist())
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    raise TypeError(f"a {type(value).__name__} cannot be written to metrics.json.")


class Result(abc.ABC):
    """Base of results: ``summary()``, ``format_table()``, ``plot()``, ``save(folder)``."""

    @abc.abstractmethod
    def summary(self) -> dict[str, Any]:
        """The result's figures as plain JSON values (written to ``metrics.json``)."""

    @abc.abstractmethod
    def format_table(self) -> str:
        """The result as a table for a terminal (written to ``summary.txt``)."""

    def tables(self) -> dict[str, Any]:
        """Named pandas DataFrames, each written to ``<name>.csv`` by :meth:`save`."""
        return {}

    def plot(self) -> dict[str, Any]:
        """Named matplotlib figures, each written to ``figures/<name>.png`` by :meth:`save`."""
        return {}

    def _save_extra(self, folder: Path, overwrite: bool) -> None:
        """Write anything else the result keeps (models, brain maps) into ``folder``.

        The base writes nothing more; results that keep models or maps override it.
        """
        return None

    def __str__(self) -> str:
        return self.format_table()

    def save(
        self, folder: str | os.PathLike, overwrite: bool = False, figures: bool = True
    ) -> Path:
        """Write the result to ``folder`` and return its path.

        Parameters
        ----------
        folder : str or path-like
            Created if needed. An existing non-empty folder is refused unless
            ``overwrite`` (then the files written here replace theirs and
            nothing else is deleted).
        overwrite : bool, default=False
        figures : bool, default=True
            Also draw and write the figures (the slowest part).

        Returns
        -------
        Path
        """
        from neuro.plotting import save_figure

        out = prepare_output_dir(folder, overwrite=overwrite)
        atomic_write_json(out / "metrics.json", jsonable(self.summary()))
        atomic_write_text(out / "summary.txt", self.format_table().rstrip("\n") + "\n")
        for name, frame in self.tables().items():
            atomic_write_text(out / f"{name}.csv", frame.to_csv(index=False))
        if figures:
            for name, fig in self.plot().items():
                save_figure(fig, out / "figures" / f"{name}.png")
        self._save_extra(out, overwrite)
        return out
