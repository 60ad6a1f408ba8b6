"""Checks of fitted encoders against a simulated subject's planted truth.

:func:`data_loaders.simulate.fmri.simulate_fmri` plants a Gaussian receptive
field (centre and size, in map units) in every early visual voxel and a true
noise ceiling in every voxel. These functions measure how well a fit found
them; ``neuro demo``, the tests and the tutorial all use them:

- :func:`receptive_field_recovery`: a Gaussian readout's centres and sizes
  against the planted ones;
- :func:`check_ground_truth`: a whole :class:`~neuro.encoders.EncoderComparison`
  (noise ceiling, receptive fields, which encoder wins where).

:func:`neuro.encoders.plots.ground_truth` draws the second one's numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro.errors import InputError

__all__ = ["check_ground_truth", "receptive_field_recovery"]


def _early(subject) -> np.ndarray:
    """Voxels with a planted receptive field (early visual, V1-V4), ``(n_voxels,)`` bool."""
    return ~np.isnan(np.asarray(subject.prf_sizes, dtype=np.float64))


def receptive_field_recovery(encoder, subject) -> dict[str, Any]:
    """How close a fitted Gaussian readout's receptive fields are to the planted ones.

    Parameters
    ----------
    encoder : ReadoutEncoder
        Fitted with ``readout="gaussian"`` on the subject's voxels, in order.
    subject : SimulatedSubject
        With ``prf_centers (n_voxels, 2)`` and ``prf_sizes (n_voxels,)`` (NaN
        where no receptive field was planted).

    Returns
    -------
    dict
        ``n_voxels`` (early visual voxels compared), ``median_center_error``,
        ``p90_center_error`` and ``max_center_error`` (Euclidean, in map units:
        the map is 2 wide), ``size_r`` (Pearson r of fitted and planted sizes),
        and ``center_errors`` (ndarray ``(n_voxels,)``, one per early voxel).

    Raises
    ------
    InputError
        The encoder has no receptive fields (not a fitted Gaussian readout),
        or it was fitted on another number of voxels.
    """
    centers = getattr(encoder, "receptive_field_centers_", None)
    if centers is None:
        raise InputError(
            "encoder has no receptive_field_centers_: give a ReadoutEncoder('gaussian') fitted "
            "on the subject's voxels."
        )
    early = _early(subject)
    centers = np.asarray(centers)
    if len(centers) != len(early):
        raise InputError(
            f"encoder was fitted on {len(centers)} voxels but subject has {len(early)}; fit it "
            "on every voxel of the subject, in order."
        )
    sizes = np.asarray(encoder.receptive_field_sizes_)[early]
    err = np.linalg.norm(centers[early] - np.asarray(subject.prf_centers)[early], axis=1)
    return {
        "n_voxels": int(early.sum()),
        "median_center_error": float(np.median(err)),
        "p90_center_error": float(np.quantile(err, 0.9)),
        "max_center_error": float(err.max()),
        "size_r": float(np.corrcoef(sizes, np.asarray(subject.prf_sizes)[early])[0, 1]),
        "center_errors": err,
    }


def check_ground_truth(result, subject) -> dict[str, Any]:
    """Compare what an encoder comparison found with what the simulator planted.

    Parameters
    ----------
    result : EncoderComparison
        :func:`~neuro.encoders.compare_encoders` on the subject's dataset
        (``FMRIDataset.from_simulation(subject, ...)``).
    subject : SimulatedSubject

    Returns
    -------
    dict (JSON-able)
        ``ceiling_r``: Pearson r of the single-trial noise ceiling estimated
        from repeats against the planted one, with ``ceiling_planted_mean``
        and ``ceiling_estimated_mean``; ``gaussian`` (when a ``"gaussian"``
        encoder was fitted): :func:`receptive_field_recovery` without the
        per-voxel errors; ``mean_r``: each encoder's mean held-out r in
        ``"early visual (V1-V4)"`` and ``"category-selective"`` voxels; and
        ``best_encoder``: the encoder with the highest of these in each group.
    """
    planted = subject.true_noise_ceiling(1)
    estimated = result.dataset.noise_ceiling().r2(1)
    truth: dict[str, Any] = {
        "ceiling_r": float(np.corrcoef(planted, estimated)[0, 1]),
        "ceiling_planted_mean": float(planted.mean()),
        "ceiling_estimated_mean": float(estimated.mean()),
    }
    if "gaussian" in result.encoders:
        rf = receptive_field_recovery(result.encoders["gaussian"], subject)
        rf.pop("center_errors")
        truth["gaussian"] = rf
    early = _early(subject)
    truth["mean_r"], truth["best_encoder"] = {}, {}
    for group, mask in (("early visual (V1-V4)", early), ("category-selective", ~early)):
        means = {n: float(np.mean(result.scores[n][mask])) for n in result.names}
        truth["mean_r"][group] = means
        truth["best_encoder"][group] = max(means, key=means.get)
    return truth
