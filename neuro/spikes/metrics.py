"""How well generated spike trains match real ones: firing rates and pairwise correlations."""

from __future__ import annotations

import numpy as np

from neuro._validation import check_float
from neuro.errors import InputError

__all__ = ["generation_statistics"]


def _binned(spikes, bin_size: float, intervals) -> np.ndarray:
    """Counts ``(n_neurons, n_bins)`` of the spikes in the intervals, intervals side by side."""
    parts = []
    for a, b in intervals:
        window = spikes.window(a, b)
        parts.append(window.binned(bin_size))
    return np.concatenate(parts, axis=1)


def generation_statistics(real, generated, bin_size: float = 0.05, intervals=None) -> dict:
    """Agreement of generated with real spikes: rates and pairwise correlations.

    Both are binned at ``bin_size`` over the same intervals. The rates are
    compared across neurons, and the pairwise Pearson correlations of the
    binned counts across pairs (upper triangle; pairs where either neuron
    is silent in either set are left out).

    Parameters
    ----------
    real, generated : SpikeTrains
        Same neurons, same clock (e.g. ``Neuroformer.generate`` or
        ``PoissonGLM.simulate`` over the real recording's test intervals).
    bin_size : float, default=0.05
        Seconds per bin for the correlations.
    intervals : list of (start, stop), optional
        Where to compare (default: the real spikes' whole interval).

    Returns
    -------
    dict
        ``rate_r`` (Pearson r of the firing rates across neurons),
        ``real_rate_hz`` / ``generated_rate_hz`` (means), ``correlation_r``
        (Pearson r of the pairwise correlations across pairs), ``n_pairs``.

    Raises
    ------
    InputError
        Different numbers of neurons, or fewer than two usable pairs.

    Examples
    --------
    >>> from data_loaders.spikes import SpikeTrains
    >>> s = SpikeTrains.from_arrays([0, 1, 2, 0, 2], [0.1, 0.12, 0.3, 0.6, 0.61], t_stop=1.0)
    >>> stats = generation_statistics(s, s, bin_size=0.1)
    >>> round(stats["rate_r"], 6), round(stats["correlation_r"], 6)
    (1.0, 1.0)
    """
    bin_size = check_float("bin_size", bin_size, minimum=0.0, strict_minimum=True)
    if real.n_neurons != generated.n_neurons:
        raise InputError(
            f"real has {real.n_neurons} neurons but generated has {generated.n_neurons}; "
            "compare spikes of the same neurons."
        )
    intervals = [(real.t_start, real.t_stop)] if intervals is None else list(intervals)
    duration = sum(b - a for a, b in intervals)
    x, y = _binned(real, bin_size, intervals), _binned(generated, bin_size, intervals)
    rate_x, rate_y = x.sum(1) / duration, y.sum(1) / duration
    iu = np.triu_indices(real.n_neurons, k=1)
    active = (x.std(1) > 0) & (y.std(1) > 0)
    keep = active[iu[0]] & active[iu[1]]
    if keep.sum() < 2:
        raise InputError(
            "Fewer than two pairs of neurons fire in both sets; compare over longer intervals."
        )
    with np.errstate(invalid="ignore"):
        cx, cy = np.corrcoef(x)[iu][keep], np.corrcoef(y)[iu][keep]
    return {
        "rate_r": float(np.corrcoef(rate_x, rate_y)[0, 1]),
        "real_rate_hz": float(rate_x.mean()),
        "generated_rate_hz": float(rate_y.mean()),
        "correlation_r": float(np.corrcoef(cx, cy)[0, 1]),
        "n_pairs": int(keep.sum()),
    }
