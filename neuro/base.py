"""The base class of every estimator in neuro.

:class:`NeuroEstimator` is scikit-learn's ``BaseEstimator`` (``get_params``,
``set_params``, ``clone``, pipelines) plus the two things every neuro model
adds: a fitted check that raises scikit-learn's ``NotFittedError``, and
``save(path)`` / ``Class.load(path)`` through :mod:`neuro.persist` (one atomic
file, loaded with ``weights_only=True``, refused over an existing file unless
``overwrite=True``, with a format tag and version).

The README's developer section shows a complete small estimator built on it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from neuro.persist import load_model, save_model

__all__ = ["NeuroEstimator"]


class NeuroEstimator(BaseEstimator):
    """scikit-learn's ``BaseEstimator`` with neuro's fitted check and save/load.

    Subclasses follow scikit-learn's rules: ``__init__`` only stores its
    arguments (``random_state`` for a seed); ``fit`` validates through
    :mod:`neuro._validation`, sets attributes ending in ``_`` and returns
    ``self``; other methods start with :meth:`_check_fitted`.

    What is saved is what :meth:`_fitted_state` returns: by default every
    public attribute ending in ``_`` (NumPy arrays, tensors, numbers, strings,
    and lists, tuples or dicts of these). A model holding anything else (a
    ``torch.nn.Module``, a dataclass it must rebuild) overrides
    :meth:`_fitted_state` and :meth:`_restore_fitted_state`.
    """

    def _check_fitted(self) -> None:
        """Raise ``sklearn.exceptions.NotFittedError`` if ``fit`` has not run."""
        check_is_fitted(self)

    def _fitted_state(self) -> dict[str, Any]:
        """The fitted attributes to save (public names ending in ``_``)."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def _restore_fitted_state(self, state: dict[str, Any]) -> None:
        """Set the attributes :meth:`_fitted_state` returned."""
        for key, value in state.items():
            setattr(self, key, value)

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the fitted model to one file (atomic; loads with ``weights_only=True``).

        Parameters
        ----------
        path : str or path-like
            The file to write (``.pt`` is customary).
        overwrite : bool, default=False
            Replace an existing file; otherwise it is refused.

        Returns
        -------
        Path

        Notes
        -----
        Constructor arguments that cannot be stored as plain values (a
        scikit-learn splitter given as ``cv``) are left out; the loaded model
        predicts the same, and a refit uses their defaults.
        """
        self._check_fitted()
        return save_model(
            path, self, self.get_params(deep=False), self._fitted_state(), overwrite=overwrite
        )

    @classmethod
    def load(cls, path: str | os.PathLike):
        """A fitted model from a file written by :meth:`save`; predicts exactly as it did."""
        params, state = load_model(path, cls)
        valid = cls._get_param_names()
        model = cls(**{k: v for k, v in params.items() if k in valid})
        model._restore_fitted_state(state)
        return model
