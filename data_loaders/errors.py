"""The errors that mean "what you gave is wrong", shared by ``data_loaders`` and ``neuro``.

Every check of a caller's input (an argument, an array, a file) raises one of
these, with a message that names the argument or file, what was expected,
what was given, and the fix. The ``neuro`` command prints them in one line,
with no traceback; any other exception is a bug and shows its traceback.

They subclass the built-in exceptions a caller would expect (``ValueError``,
``TypeError``, ``FileNotFoundError``, ``FileExistsError``), so existing
``except ValueError`` code keeps working, and scikit-learn's estimator checks
see the types they look for.

``neuro.errors`` re-exports them; this module lives in ``data_loaders``
because the readers raise them and ``data_loaders`` imports nothing from
``neuro``.
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "InputIndexError",
    "InputKeyError",
    "InputTypeError",
    "MissingFileError",
    "OutputExistsError",
    "UnreadableFileError",
    "one_line",
]


class InputError(ValueError):
    """An argument, array or file given by the caller is wrong; the message says how to fix it."""


class InputTypeError(InputError, TypeError):
    """An argument has the wrong type (a string where a number was expected, ...)."""


class InputKeyError(InputError, KeyError):
    """A name the caller gave (a metric, a column, a key) is not among those available."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InputIndexError(InputError, IndexError):
    """An index the caller gave is out of range."""


class MissingFileError(InputError, FileNotFoundError):
    """An input file or folder does not exist."""


class UnreadableFileError(InputError):
    """An input file exists but cannot be read: empty, truncated, corrupt, or of another format."""


class OutputExistsError(InputError, FileExistsError):
    """An output file or non-empty folder exists and overwriting was not asked for."""


def one_line(err: BaseException) -> str:
    """An exception's message on one line, for messages that quote a library's error.

    NumPy's advice to load a file "unsafely" with ``allow_pickle`` is never
    passed on: neuro does not unpickle files.
    """
    text = " ".join(str(err).split()) or type(err).__name__
    if "allow_pickle" in text:
        return "not a NumPy array file, or one holding Python objects, which are never unpickled"
    return text
