"""The exceptions of ``neuro``.

:class:`InputError` and its subclasses mean "what you gave is wrong" (an
argument, an array, a file): their messages name the fix, and the ``neuro``
command prints them in one line. Anything else is a bug in ``neuro`` and
shows its traceback. :class:`~sklearn.exceptions.NotFittedError` (scikit-learn's)
is raised by every estimator used before ``fit``.
"""

from sklearn.exceptions import NotFittedError

from data_loaders.errors import (
    InputError,
    InputIndexError,
    InputKeyError,
    InputTypeError,
    MissingFileError,
    OutputExistsError,
    UnreadableFileError,
)
from neuro.train.checkpoint import CheckpointError

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
