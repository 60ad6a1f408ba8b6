"""Checks for public arguments, with messages that name the fix.

The one validation module of ``neuro``: every public function checks its
arguments through these (their policy is in :mod:`data_loaders._validation`,
where they live so that the readers share them: a wrong type raises
:class:`~neuro.errors.InputTypeError`, a wrong value, shape or file
:class:`~neuro.errors.InputError`, and every message names the argument, what
was given and the fix).
"""

# A re-export (declared boilerplate): the names are listed again only so that
# `from neuro._validation import ...` works and linters see them; the code is data_loaders._validation's.
from data_loaders._validation import (
    check_array,
    check_bool,
    check_choice,
    check_file,
    check_float,
    check_int,
    check_n_features,
    check_same_length,
)

__all__ = [
    "check_array",
    "check_bool",
    "check_choice",
    "check_file",
    "check_float",
    "check_int",
    "check_n_features",
    "check_same_length",
]
