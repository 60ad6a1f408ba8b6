"""Output folders and atomic writes (see :mod:`data_loaders._io`, re-exported here).

The implementation lives in ``data_loaders`` so that the readers and
simulators there can use it without importing ``neuro``.
"""

# A re-export (declared boilerplate): the names are listed again only so that
# `from neuro.io import ...` works and linters see them; the code is data_loaders._io's.
from data_loaders._io import (
    OutputExistsError,
    atomic_open,
    atomic_write_json,
    atomic_write_text,
    check_overwrite,
    prepare_output_dir,
)

__all__ = [
    "OutputExistsError",
    "atomic_open",
    "atomic_write_json",
    "atomic_write_text",
    "check_overwrite",
    "prepare_output_dir",
]
