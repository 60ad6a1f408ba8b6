"""The exceptions of ``neuro``.

:class:`InputError` and its subclasses mean "what you gave is wrong" (an
argument, an array, a file): their messages name the fix, and the ``neuro``
command prints them in one line. Anything else is a bug in ``neuro`` and
shows its traceback. :class:`~sklearn.exceptions.NotFittedError` (scikit-learn's)
is raised by every estimator used before ``fit``.
"""

from typing import TYPE_CHECKING, Any

from data_loaders.errors import (
    InputError,
    InputIndexError,
    InputKeyError,
    InputTypeError,
    MissingFileError,
    OutputExistsError,
    UnreadableFileError,
)

if TYPE_CHECKING:
    from sklearn.exceptions import NotFittedError


class CheckpointError(InputError, RuntimeError):
    """A checkpoint or saved model is missing, unreadable, or was written for another model.

    An :class:`InputError`: the ``neuro`` command reports it in one line.
    """


def __getattr__(name: str) -> Any:
    # scikit-learn's NotFittedError is re-exported lazily: importing this module (every
    # command's --help does) then costs neither scikit-learn nor torch.
    if name == "NotFittedError":
        from sklearn.exceptions import NotFittedError

        return NotFittedError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CheckpointError",
    "InputError",
    "InputIndexError",
    "InputKeyError",
    "InputTypeError",
    "MissingFileError",
    "NotFittedError",
    "OutputExistsError",
    "UnreadableFileError",
]
