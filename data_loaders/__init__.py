"""Reading real data formats and making ground-truth data.

``data_loaders`` knows nothing of the models in :mod:`neuro` and imports
nothing from it (``tests/data_loaders/test_imports.py`` checks this); every
simulator in :mod:`data_loaders.simulate` returns the data together with the
ground truth it planted.

Readers raise the errors of :mod:`data_loaders.errors` for what the caller
gave: :class:`~data_loaders.errors.MissingFileError` for a file that is not
there, :class:`~data_loaders.errors.UnreadableFileError` for one that is
empty, truncated or of another format, and
:class:`~data_loaders.errors.InputError` (their base) for any other bad input.
"""
