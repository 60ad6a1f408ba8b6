"""Repeated presentations: averaging, the noise ceiling, and stimulus-wise splits.

The noise ceiling follows the Natural Scenes Dataset (Allen et al., 2022).
With single-trial betas z-scored per voxel (within each session), the noise
variance is the mean over stimuli of the variance across that stimulus's
repeats, ``s2 = mean_i var(b_i1, ..., b_ik)``, and the noise-ceiling SNR is

    ncsnr = sqrt(max(0, 1 - s2)) / sqrt(s2).

The fraction of variance a perfect model can explain in data that are the
average of ``n`` trials per stimulus is then

    NC = ncsnr**2 / (ncsnr**2 + 1/n)

(NSD reports ``100 * NC`` in percent). When stimuli were averaged over
different numbers of trials, ``1/n`` is replaced by the mean of ``1/n_i`` over
the stimuli evaluated, as NSD does. The ceiling on the Pearson correlation is
``sqrt(NC)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_loaders._validation import check_array, check_bool, check_float, check_int
from data_loaders.errors import InputError
from data_loaders.fmri._common import check_stimulus_ids

__all__ = ["NoiseCeiling", "average_repeats", "noise_ceiling", "split_by_stimulus", "zscore"]


def _as_2d(betas, name: str = "betas") -> np.ndarray:
    # NaN stays visible (it propagates into the voxel's result) rather than being refused
    return check_array(name, betas, ndim=2, shape_hint="(n_trials, n_voxels)", finite=False)


def zscore(betas, session_ids=None) -> np.ndarray:
    """Z-score each voxel over trials, separately within each session.

    Parameters
    ----------
    betas : array of shape (n_trials, n_voxels)
    session_ids : array of shape (n_trials,), optional
        Session of each trial; None treats all trials as one session.

    Returns
    -------
    ndarray of shape (n_trials, n_voxels), float32
        A new array (the input is not changed). Constant voxels (zero
        variance in a session) become 0 there. Means and standard deviations
        are taken in float64, one session at a time, so the memory needed
        beyond the result is one session's rows in float64.
    """
    b = _as_2d(betas)
    sessions = np.zeros(len(b), dtype=int) if session_ids is None else np.asarray(session_ids)
    if sessions.shape != (len(b),):
        raise InputError(
            f"session_ids must have one entry per trial ({len(b)}); got shape {sessions.shape}."
        )
    out = np.array(b, dtype=np.float32, order="C", copy=True)
    for s in np.unique(sessions):
        rows = np.flatnonzero(sessions == s)
        block = b[rows].astype(np.float64)
        mean = block.mean(axis=0)
        sd = block.std(axis=0)
        block -= mean
        np.divide(block, sd, out=block, where=sd > 0)
        block[:, ~(sd > 0)] = 0.0
        out[rows] = block
    return out


def average_repeats(betas, stimulus_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average the trials of each stimulus.

    Parameters
    ----------
    betas : array of shape (n_trials, n_voxels)
    stimulus_ids : array of shape (n_trials,)

    Returns
    -------
    mean : ndarray of shape (n_stimuli_shown, n_voxels), float32
        One row per distinct stimulus, in increasing id order.
    ids : ndarray of shape (n_stimuli_shown,)
        The stimulus id of each row.
    counts : ndarray of shape (n_stimuli_shown,)
        How many trials each row averages.
    """
    b = _as_2d(betas)
    ids = check_stimulus_ids(stimulus_ids, len(b))
    unique, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    sums = np.zeros((len(unique), b.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, b)
    return (sums / counts[:, None]).astype(np.float32), unique, counts


@dataclass
class NoiseCeiling:
    """Per-voxel noise ceiling estimated from repeats.

    Attributes
    ----------
    ncsnr : ndarray of shape (n_voxels,)
        Noise-ceiling signal-to-noise ratio (signal sd / noise sd of one trial).
    noise_variance : ndarray of shape (n_voxels,)
        Mean within-stimulus variance of the z-scored betas.
    n_stimuli_repeated : int
        Stimuli with two or more trials, from which the noise was estimated.
    """

    ncsnr: np.ndarray
    noise_variance: np.ndarray
    n_stimuli_repeated: int

    def r2(self, n_average=1) -> np.ndarray:
        """Fraction of variance a perfect model explains in ``n_average``-trial averages.

        ``n_average`` is one number or the trial count of each evaluated
        stimulus (then ``1/n`` is averaged over them).
        """
        n = check_array("n_average", n_average, ndim=(0, 1), dtype=np.float64)
        if np.any(n < 1):
            raise InputError(f"n_average must be >= 1; got {n_average!r}.")
        inv_n = float(np.mean(1.0 / n))
        s2 = self.ncsnr**2
        return s2 / (s2 + inv_n)

    def r(self, n_average=1) -> np.ndarray:
        """Ceiling on the Pearson correlation: ``sqrt(r2(n_average))``."""
        return np.sqrt(self.r2(n_average))


def noise_ceiling(betas, stimulus_ids, session_ids=None, zscore_betas: bool = True) -> NoiseCeiling:
    """Estimate each voxel's noise ceiling from repeated presentations (NSD's ncsnr).

    Parameters
    ----------
    betas : array of shape (n_trials, n_voxels)
        Single-trial responses.
    stimulus_ids : array of shape (n_trials,)
        Which stimulus each trial showed; at least one stimulus must be shown twice.
    session_ids : array of shape (n_trials,), optional
        Sessions, for z-scoring within each (NSD's convention).
    zscore_betas : bool, default=True
        Z-score each voxel first (set False only if ``betas`` already are).

    Returns
    -------
    NoiseCeiling
        Use ``.r2(n)`` / ``.r(n)`` for the ceiling on data averaged over ``n`` trials.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.standard_normal((200, 3))
    >>> ids = np.repeat(np.arange(200), 3)
    >>> betas = signal[ids] + rng.standard_normal((600, 3))  # SNR 1
    >>> nc = noise_ceiling(betas, ids)
    >>> np.round(nc.r2(1), 1).tolist()  # about 1 / (1 + 1)
    [0.5, 0.5, 0.5]
    """
    b = _as_2d(betas)
    ids = check_stimulus_ids(stimulus_ids, len(b))
    z = zscore(b, session_ids) if check_bool("zscore_betas", zscore_betas) else b.astype(np.float64)
    unique, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    repeated = counts >= 2
    if not repeated.any():
        raise InputError(
            "No stimulus was shown more than once, so the noise ceiling cannot be estimated "
            "from repeats. It needs at least one stimulus with two or more trials."
        )
    z = np.asarray(z, dtype=np.float64)
    sums = np.zeros((len(unique), b.shape[1]))
    sq = np.zeros_like(sums)
    np.add.at(sums, inverse, z)
    np.add.at(sq, inverse, z * z)
    k = counts[repeated, None].astype(np.float64)
    var = (sq[repeated] - sums[repeated] ** 2 / k) / (k - 1)  # unbiased variance per stimulus
    noise_var = var.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ncsnr = np.sqrt(np.maximum(0.0, 1.0 - noise_var)) / np.sqrt(noise_var)
    ncsnr = np.where(noise_var > 0, ncsnr, np.inf)
    return NoiseCeiling(
        ncsnr=ncsnr, noise_variance=noise_var, n_stimuli_repeated=int(repeated.sum())
    )


def split_by_stimulus(
    stimulus_ids, test_size: float = 0.2, seed: int | None = 0, test_stimuli=None
) -> tuple[np.ndarray, np.ndarray]:
    """Split trials so that all repeats of a stimulus fall on the same side.

    Parameters
    ----------
    stimulus_ids : array of shape (n_trials,)
    test_size : float, default=0.2
        Fraction of distinct stimuli held out (ignored if ``test_stimuli`` is given).
    seed : int or None, default=0
    test_stimuli : array-like of int, optional
        Stimulus ids to hold out (e.g. NSD's shared 1000 images).

    Returns
    -------
    train_trials, test_trials : ndarray of int
        Trial indices, each sorted.
    """
    ids = check_stimulus_ids(stimulus_ids, len(np.atleast_1d(np.asarray(stimulus_ids))))
    unique = np.unique(ids)
    seed = check_int("seed", seed, allow_none=True)
    if test_stimuli is not None:
        test_set = check_array("test_stimuli", test_stimuli, ndim=1, shape_hint="(n_test,)")
        if not np.all(test_set == np.round(test_set)):
            raise InputError("test_stimuli must be integer stimulus ids.")
        test_set = np.unique(test_set.astype(np.int64))
        missing = np.setdiff1d(test_set, unique)
        if len(missing) == len(test_set):
            raise InputError("None of test_stimuli was shown in these trials; check the ids.")
    else:
        test_size = check_float("test_size", test_size)
        if not 0 < test_size < 1:
            raise InputError(f"test_size must be in (0, 1); got {test_size!r}.")
        n_test = round(test_size * len(unique))
        if n_test == 0 or n_test == len(unique):
            raise InputError(
                f"test_size={test_size} of {len(unique)} distinct stimuli leaves one side empty; "
                "change test_size or show more stimuli."
            )
        rng = np.random.default_rng(seed)
        test_set = np.sort(rng.choice(unique, size=n_test, replace=False))
    is_test = np.isin(ids, test_set)
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)
