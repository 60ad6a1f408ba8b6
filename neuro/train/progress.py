"""One progress helper and rank-zero logging.

Library code reports through :func:`progress` (a ``tqdm.auto`` bar, shown on
rank 0 only and silent when ``verbose=0``) and through loggers from
:func:`get_logger`, whose records are dropped on ranks other than 0.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

from neuro.train.distributed import global_rank

__all__ = ["get_logger", "progress"]


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    verbose: int = 1,
    leave: bool = True,
    unit: str = "it",
    **kwargs: Any,
) -> tqdm:
    """A progress bar over ``iterable``, silent unless ``verbose > 0`` on rank 0.

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over; omit it and call ``.update(n)`` by hand.
    total : int, optional
        Number of items, when ``len(iterable)`` is not defined.
    desc : str, optional
        Text shown before the bar.
    verbose : int, default=1
        0 hides the bar.
    leave : bool, default=True
        Keep the finished bar on screen.
    unit : str, default="it"
        Name of one item.
    **kwargs
        Passed on to ``tqdm``.
    """
    disable = verbose <= 0 or global_rank() != 0
    return tqdm(iterable, total=total, desc=desc, disable=disable, leave=leave, unit=unit, **kwargs)


class _RankZeroFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return global_rank() == 0


def get_logger(name: str) -> logging.Logger:
    """A logger whose records are emitted on rank 0 only.

    Handlers and levels are left to the application (the ``neuro`` command
    sets them from ``--verbose``).
    """
    logger = logging.getLogger(name)
    if not any(isinstance(f, _RankZeroFilter) for f in logger.filters):
        logger.addFilter(_RankZeroFilter())
    return logger
