"""Voxel responses from planted linear receptive fields.

The simplest encoding model with a known answer: each voxel's response is a
fixed linear combination of stimulus features plus Gaussian noise,

    Y[:, v] = X @ W[:, v] + noise_v,      var(noise_v) = var(X @ W[:, v]) / snr_v,

so the planted weights ``W`` are what a fitted encoder should recover, and the
best correlation any model can reach on fresh data (the noise ceiling) is
``sqrt(snr_v / (1 + snr_v))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_loaders._validation import check_array, check_float, check_int
from data_loaders.errors import InputError

__all__ = ["LinearEncodingData", "simulate_linear_encoding"]


@dataclass
class LinearEncodingData:
    """Data and ground truth from :func:`simulate_linear_encoding`.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), float32
        Stimulus features.
    Y : ndarray of shape (n_samples, n_voxels), float32
        Noisy voxel responses.
    Y_clean : ndarray of shape (n_samples, n_voxels), float32
        Noise-free responses ``X @ weights``.
    weights : ndarray of shape (n_features, n_voxels), float32
        The planted receptive fields.
    snr : ndarray of shape (n_voxels,)
        Signal-to-noise variance ratio of each voxel.
    noise_ceiling : ndarray of shape (n_voxels,)
        Expected correlation of the noise-free response with the data,
        ``sqrt(snr / (1 + snr))``: the best r a model can reach.
    """

    X: np.ndarray
    Y: np.ndarray
    Y_clean: np.ndarray
    weights: np.ndarray
    snr: np.ndarray
    noise_ceiling: np.ndarray


def simulate_linear_encoding(
    n_samples: int = 1000,
    n_features: int = 50,
    n_voxels: int = 100,
    snr: float | np.ndarray = 1.0,
    feature_correlation: float = 0.5,
    seed: int | None = 0,
) -> LinearEncodingData:
    """Simulate voxels that respond linearly to correlated stimulus features.

    Parameters
    ----------
    n_samples : int, default=1000
        Stimuli (rows of ``X``).
    n_features : int, default=50
        Features per stimulus.
    n_voxels : int, default=100
        Voxels (columns of ``Y``).
    snr : float or array of shape (n_voxels,), default=1.0
        Signal-to-noise variance ratio, one value or one per voxel; > 0.
    feature_correlation : float, default=0.5
        Features are Gaussian with covariance ``rho ** |i - j|``
        (``rho`` = this value, in [0, 1)), as neighbouring filters of a real
        feature space are correlated.
    seed : int or None, default=0
        Seed of the generator.

    Returns
    -------
    LinearEncodingData

    Raises
    ------
    InputError
        Counts below 1 (``n_samples`` below 2), an SNR that is not finite and
        > 0 for every voxel, a feature correlation outside [0, 1).

    Examples
    --------
    >>> sim = simulate_linear_encoding(n_samples=200, n_features=7, n_voxels=9, snr=4.0)
    >>> sim.X.shape, sim.Y.shape, sim.weights.shape
    ((200, 7), (200, 9), (7, 9))
    >>> round(float(sim.noise_ceiling[0]), 3)
    0.894
    """
    n_samples = check_int("n_samples", n_samples, minimum=2)  # a variance needs two samples
    n_features = check_int("n_features", n_features, minimum=1)
    n_voxels = check_int("n_voxels", n_voxels, minimum=1)
    seed = check_int("seed", seed, allow_none=True)
    snr = check_array("snr", snr, ndim=(0, 1), finite=False, dtype=np.float64)
    if snr.ndim == 0:
        snr = np.full(n_voxels, float(snr))
    if snr.shape != (n_voxels,):
        raise InputError(
            f"snr must be a number or an array of shape ({n_voxels},); got shape {snr.shape}."
        )
    if not np.all(np.isfinite(snr)) or np.any(snr <= 0):
        raise InputError("snr must be finite and > 0 for every voxel.")
    feature_correlation = check_float("feature_correlation", feature_correlation)
    if not 0 <= feature_correlation < 1:
        raise InputError(f"feature_correlation must be in [0, 1); got {feature_correlation!r}.")

    rng = np.random.default_rng(seed)
    lags = np.abs(np.subtract.outer(np.arange(n_features), np.arange(n_features)))
    chol = np.linalg.cholesky(feature_correlation**lags)
    X = rng.standard_normal((n_samples, n_features)) @ chol.T
    weights = rng.standard_normal((n_features, n_voxels)) / np.sqrt(n_features)
    Y_clean = X @ weights
    noise_sd = Y_clean.std(axis=0) / np.sqrt(snr)
    Y = Y_clean + rng.standard_normal((n_samples, n_voxels)) * noise_sd
    return LinearEncodingData(
        X=X.astype(np.float32),
        Y=Y.astype(np.float32),
        Y_clean=Y_clean.astype(np.float32),
        weights=weights.astype(np.float32),
        snr=snr,
        noise_ceiling=np.sqrt(snr / (1.0 + snr)),
    )
