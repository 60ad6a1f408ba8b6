"""Output folders and atomic writes, shared by ``data_loaders`` and ``neuro``.

Results a user keeps (checkpoints, metrics, maps, figures) are written to a
temporary file beside the target and renamed over it, so a run killed midway
never leaves a half-written file, and an existing file or non-empty output
folder is replaced only when the caller says so (:func:`check_overwrite`, the
one place that decides). ``neuro.io`` re-exports everything here.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from data_loaders.errors import InputError, OutputExistsError

__all__ = [
    "OutputExistsError",
    "atomic_open",
    "atomic_write_json",
    "atomic_write_text",
    "check_overwrite",
    "prepare_output_dir",
]


def check_overwrite(path: str | os.PathLike, overwrite: bool, what: str = "file") -> Path:
    """Refuse to write over an existing ``path`` unless ``overwrite``; return it as a Path.

    The one overwrite check of the package: every ``save`` and writer calls
    it before writing a file.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    InputError
        ``path`` is an existing folder where a file is to be written.
    """
    path = Path(path).expanduser()
    blocked = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise InputError(
            f"Cannot write {str(path)!r}: {str(blocked)!r} is a file, not a folder; choose a "
            "path inside a folder."
        )
    if path.is_dir():
        raise InputError(
            f"{str(path)!r} is a folder; give the path of the {what} to write (e.g. "
            f"{str(path / ('model.pt' if what == 'model file' else 'out'))!r})."
        )
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"{str(path)!r} exists; pass overwrite=True (--overwrite on the command line) to "
            "replace it, or choose another path."
        )
    return path


def prepare_output_dir(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Create ``path`` for a run's outputs and return it.

    Parameters
    ----------
    path : str or path-like
        The output folder. Parents are created as needed.
    overwrite : bool, default=False
        If False, a folder that exists and is not empty is refused. If True,
        files in it are replaced as the run writes them; nothing else in it is
        deleted.

    Raises
    ------
    OutputExistsError
        ``path`` exists, is not empty, and ``overwrite`` is False.
    InputError
        ``path`` exists and is a file.
    """
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(
            f"The output folder {str(out)!r} is a file; choose a folder path for the outputs."
        )
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"The output folder {str(out)!r} exists and is not empty. Choose another folder, "
            "or pass overwrite=True (--overwrite on the command line) to write over it."
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` and rename it to ``path`` on success.

    The rename (``os.replace``) is atomic on POSIX and Windows: readers see
    either the old file or the complete new one. On an exception the temporary
    file is removed and ``path`` is untouched.
    """
    if mode not in ("w", "wb"):
        raise InputError(f"mode must be 'w' or 'wb'; got {mode!r}.")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    # mkstemp makes the file 0600; give it the mode a plain open() would (0666 & ~umask)
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError, AttributeError):
        os.fchmod(fd, 0o666 & ~umask)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically and return the path."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, torch scalars, paths
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
