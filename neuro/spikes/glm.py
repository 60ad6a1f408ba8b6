"""Baselines for Neuroformer's checks: a Poisson GLM with coupling filters, and a ridge decoder.

:class:`PoissonGLM`
    Each neuron's log rate per bin is a bias, plus a linear filter on the
    stimulus frame on screen (through a PCA of the frames), plus **coupling
    filters** on the recent spike history of every neuron, itself included
    (its refractoriness). It is fitted by L2-penalised Poisson maximum
    likelihood, all neurons at once, with L-BFGS on ``device``. Its summed
    coupling filters ``coupling_[i, j]`` (target ``i``, source ``j``) are the
    connectivity baseline; :meth:`PoissonGLM.simulate` generates spikes driven
    by the true stimulus and by its own history (the generation baseline);
    :meth:`PoissonGLM.id_cross_entropy` is comparable with Neuroformer's
    next-id cross-entropy.
:class:`RidgeDecoder`
    Behaviour from the population's binned counts over a window of lags,
    fitted with :class:`~neuro.encoders.VoxelRidgeCV` (the behaviour-decoding
    baseline, few-shot ready: fit it on as few labelled samples as you like).
:func:`correlation_connectivity`, :func:`connectivity_auroc`
    The Pearson-correlation baseline of the Neuroformer paper, and the AUROC
    of any ``(N, N)`` connectivity estimate against a true adjacency.

Conventions are those of :mod:`data_loaders.spikes`: times in float64
seconds, neuron ids in ``0 .. n_neurons - 1``, ``(target, source)`` matrices
as in :func:`data_loaders.simulate.spikes.simulate_spiking_circuit`. Bins are
laid on the recording from its ``t_start``; an interval ``(a, b)`` covers
the whole bins inside it.

Examples
--------
>>> from data_loaders.simulate.spikes import simulate_spiking_circuit
>>> sim = simulate_spiking_circuit(n_neurons=12, n_hubs=2, duration=20.0, seed=0)
>>> glm = PoissonGLM(device="cpu").fit(sim.recording, bin_size=0.01)
>>> glm.coupling_.shape, glm.coupling_filters_.shape
((12, 12), (12, 12, 5))
>>> generated = glm.simulate(sim.recording, 0.0, 5.0, seed=0)
>>> generated.n_neurons, generated.t_stop
(12, 5.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from data_loaders.spikes import AlignedRecording, SpikeTrains
from neuro._validation import check_array, check_bool, check_float, check_int
from neuro.base import NeuroEstimator
from neuro.errors import InputError, InputTypeError
from neuro.train.device import resolve_device

__all__ = ["PoissonGLM", "RidgeDecoder", "connectivity_auroc", "correlation_connectivity"]

#: A time within this fraction of a bin of a bin edge counts as on it.
_EDGE_TOL = 1e-9
#: Generated rates are capped here (Hz), so that a run-away excitatory loop stays finite.
MAX_RATE = 1000.0


# ----------------------------------------------------------------------------- inputs
def _spikes_and_stimulus(name: str, data: Any):
    """``(SpikeTrains, stimulus or None, frame_times or None, recording or None)`` of ``data``."""
    if isinstance(data, AlignedRecording):
        return data.spikes, data.stimulus, data.frame_times, data
    if isinstance(data, SpikeTrains):
        return data, None, None, None
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return SpikeTrains.from_arrays(data[0], data[1]), None, None, None
    raise InputTypeError(
        f"{name} must be an AlignedRecording, a SpikeTrains or a pair (neuron_ids, times); got "
        f"{type(data).__name__}."
    )


def _n_bins(duration: float, bin_size: float) -> int:
    """Whole bins of ``bin_size`` in ``duration`` (a bin cut short at the end is dropped)."""
    return math.floor(duration / bin_size + _EDGE_TOL)


def _bin_counts(spikes: SpikeTrains, bin_size: float) -> np.ndarray:
    """Counts ``(n_neurons, n_bins)`` in whole bins from ``spikes.t_start``."""
    n_bins = _n_bins(spikes.duration, bin_size)
    if n_bins < 1:
        raise InputError(
            f"bin_size={bin_size:g} s is longer than the recording ({spikes.duration:g} s); use a "
            "smaller bin_size."
        )
    bins = np.floor((spikes.times - spikes.t_start) / bin_size + _EDGE_TOL).astype(np.int64)
    keep = bins < n_bins
    counts = np.zeros((spikes.n_neurons, n_bins), dtype=np.int64)
    np.add.at(counts, (spikes.neuron_ids[keep], bins[keep]), 1)
    return counts


def _check_intervals(name: str, intervals, t_start: float, t_stop: float) -> list[tuple]:
    """Intervals ``[(a, b), ...]`` inside ``[t_start, t_stop]``; None means the whole recording."""
    if intervals is None:
        return [(t_start, t_stop)]
    if isinstance(intervals, (str, bytes)):
        raise InputTypeError(f"{name} must be a list of (start, stop) pairs; got a string.")
    arr = check_array(name, intervals, ndim=(1, 2), shape_hint="(n_intervals, 2)")
    if arr.ndim == 1:
        arr = arr[None]
    if arr.shape[1] != 2:
        raise InputError(
            f"{name} must be (start, stop) pairs, shape (n_intervals, 2); got shape {arr.shape}."
        )
    tol = _EDGE_TOL * max(abs(t_stop), 1.0)
    for a, b in arr:
        if not b > a:
            raise InputError(f"{name}: interval ({a:g}, {b:g}) is empty; give start < stop.")
        if a < t_start - tol or b > t_stop + tol:
            raise InputError(
                f"{name}: interval ({a:g}, {b:g}) s lies outside the recording [{t_start:g}, "
                f"{t_stop:g}) s; give intervals inside it (e.g. from split_intervals)."
            )
    return [(float(a), float(b)) for a, b in arr]


def _interval_mask(intervals, t_start: float, bin_size: float, n_bins: int) -> np.ndarray:
    """Which bins lie wholly inside one of ``intervals`` (bool ``(n_bins,)``)."""
    mask = np.zeros(n_bins, dtype=bool)
    for a, b in intervals:
        first = max(math.ceil((a - t_start) / bin_size - 1e-6), 0)
        stop = min(math.floor((b - t_start) / bin_size + 1e-6), n_bins)
        mask[first:stop] = True
    if not mask.any():
        raise InputError(
            f"the intervals hold no whole bin of bin_size={bin_size:g} s; give longer intervals "
            "or a smaller bin_size."
        )
    return mask


def _frame_of_bins(frame_times: np.ndarray, bin_starts: np.ndarray) -> np.ndarray:
    """Index of the frame on screen at each bin start (``-1`` before the first frame)."""
    return np.searchsorted(frame_times, bin_starts + 1e-9, side="right").astype(np.int64) - 1


def raised_cosine_bases(history_bins: int, n_bases: int) -> np.ndarray:
    """Raised-cosine temporal bases over lags ``1 .. history_bins``, a partition of unity.

    Parameters
    ----------
    history_bins : int
        Lags covered (bins).
    n_bases : int
        Bases, ``1 <= n_bases <= history_bins``; ``n_bases == history_bins``
        gives one boxcar (indicator) per lag.

    Returns
    -------
    ndarray of shape (n_bases, history_bins)
        Row ``b`` is basis ``b`` at lags ``1 .. history_bins``; the columns sum to 1.

    Examples
    --------
    >>> raised_cosine_bases(5, 3).round(2).tolist()
    [[1.0, 0.5, 0.0, 0.0, 0.0], [0.0, 0.5, 1.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.5, 1.0]]
    """
    history_bins = check_int("history_bins", history_bins, minimum=1)
    n_bases = check_int("n_bases", n_bases, minimum=1, maximum=history_bins)
    if n_bases == 1:
        return np.ones((1, history_bins))
    lags = np.arange(1, history_bins + 1, dtype=np.float64)
    centres = np.linspace(1.0, history_bins, n_bases)
    width = centres[1] - centres[0]
    x = (lags[None, :] - centres[:, None]) / width
    return np.where(np.abs(x) < 1.0, 0.5 * (1.0 + np.cos(np.pi * x)), 0.0)


# ----------------------------------------------------------------------------- the GLM
class PoissonGLM(NeuroEstimator):
    """Poisson GLM with stimulus filters and coupling filters, all neurons fitted at once.

    For neuron ``i`` in bin ``t`` (``bin_size`` seconds), the expected count is
    ``exp(eta_i(t))`` with

    ``eta_i(t) = b_i + sum_c K[i, c] z_c(t) + sum_j sum_{l=1..L} h[i, j, l] n_j(t - l)``

    * ``z(t)``: the frame on screen at the bin's start, flattened, centred and
      projected on its first ``n_stimulus_components`` principal components
      (fitted on the frames shown in the fitted bins, each scaled to unit
      variance); bins before the first frame get ``z = 0``;
    * ``h[i, j, :]``: the coupling filter from source ``j`` to target ``i``
      over ``L = history_bins`` lags, a weighted sum of ``n_bases``
      raised-cosine bases (:func:`raised_cosine_bases`); ``h[i, i]`` is
      neuron ``i``'s own history (refractoriness, bursting).

    The loss, per neuron, is the mean Poisson negative log-likelihood per
    fitted bin plus ``alpha / 2`` times the squared norm of its stimulus and
    coupling weights (not its bias), as in scikit-learn's ``PoissonRegressor``;
    it is minimised by full-batch L-BFGS in float32 on ``device``.

    Parameters
    ----------
    history_bins : int, default=5
        Lags of spike history (bins) seen by the coupling filters.
    n_bases : int, default=3
        Raised-cosine bases per filter (``history_bins`` for one weight per lag).
    n_stimulus_components : int, default=20
        Principal components of the frames fed to the stimulus filter (fewer
        when the frames have fewer); 0, or data without a stimulus, fits no
        stimulus term.
    alpha : float, default=1e-2
        L2 penalty (>= 0) on the stimulus and coupling weights (a neuron's
        own history is not penalised). On the default simulated circuit,
        1e-2 gave a better held-out likelihood and connectivity AUROC than
        1e-3 or 1e-4.
    max_iter : int, default=300
        L-BFGS iterations.
    tol : float, default=1e-5
        L-BFGS stops when the loss or the step changes less than this.
    standard_errors : bool, default=True
        Also compute ``coupling_z_``; costs ``n_neurons`` Hessians of side
        ``n_neurons * n_bases + n_components + 1`` over the fitted bins.
    device : str, default="auto"

    Attributes
    ----------
    bias_ : ndarray of shape (n_neurons,)
    stimulus_weights_ : ndarray of shape (n_neurons, n_components)
    stimulus_filters_ : ndarray of shape (n_neurons, H, W) or None
        The stimulus filter of each neuron in pixel space (its receptive field).
    stimulus_mean_, stimulus_components_ : ndarray or None
        The PCA: ``z = (frame.ravel() - stimulus_mean_) @ stimulus_components_.T``.
    frame_shape_ : tuple of int or None
    bases_ : ndarray of shape (n_bases, history_bins)
    coupling_weights_ : ndarray of shape (n_neurons, n_neurons, n_bases)
    coupling_filters_ : ndarray of shape (n_neurons, n_neurons, history_bins)
        ``h[i, j, l - 1]``: effect (log-rate) of a spike of ``j`` ``l`` bins ago on ``i``.
    coupling_ : ndarray of shape (n_neurons, n_neurons)
        ``coupling_filters_`` summed over lags, with a zero diagonal (self
        history is not connectivity): the connectivity estimate, target ``i``
        by source ``j``.
    coupling_z_ : ndarray of shape (n_neurons, n_neurons) or None
        ``coupling_`` over its approximate standard error (Wald z, from the
        penalised Hessian; zero diagonal): about standard normal for
        unconnected pairs, so a null circuit shows no ``|z|`` far above 4.
        None with ``standard_errors=False``.
    mean_rates_ : ndarray of shape (n_neurons,)
        Mean counts per bin in the fitted bins (the homogeneous Poisson model
        that :meth:`bits_per_spike` compares against).
    id_entropy_ : float
        Entropy (nats) of the neurons' share of the fitted spikes: the
        cross-entropy of guessing a spike's neuron from firing frequencies
        alone, the bar :meth:`id_cross_entropy` should pass.
    n_neurons_ : int
    bin_size_ : float
    n_iter_ : int
        Loss evaluations L-BFGS used (at most ``1.25 * max_iter + 1``).
    loss_ : float
        The final penalised loss.

    Examples
    --------
    >>> from data_loaders.simulate.spikes import simulate_spiking_circuit
    >>> sim = simulate_spiking_circuit(n_neurons=10, n_hubs=1, duration=20.0, seed=2)
    >>> glm = PoissonGLM(device="cpu").fit(sim.recording)
    >>> bool(glm.id_cross_entropy(sim.recording) < glm.id_entropy_)
    True
    """

    def __init__(
        self,
        history_bins: int = 5,
        n_bases: int = 3,
        n_stimulus_components: int = 20,
        alpha: float = 1e-2,
        max_iter: int = 300,
        tol: float = 1e-5,
        standard_errors: bool = True,
        device: str = "auto",
    ) -> None:
        self.history_bins = history_bins
        self.n_bases = n_bases
        self.n_stimulus_components = n_stimulus_components
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.standard_errors = standard_errors
        self.device = device

    # ------------------------------------------------------------------ fit
    def fit(self, data, bin_size: float = 0.01, intervals: Sequence[tuple] | None = None):
        """Fit the GLM on the binned spikes of ``data`` (the bins inside ``intervals``).

        Parameters
        ----------
        data : AlignedRecording, SpikeTrains or (neuron_ids, times)
            A recording with a stimulus fits the stimulus filter too.
        bin_size : float, default=0.01
            Seconds per bin.
        intervals : sequence of (start, stop), optional
            Seconds; only bins wholly inside them enter the likelihood (their
            history may reach before an interval's start). Default: the whole
            recording.

        Returns
        -------
        self

        Raises
        ------
        InputError
            ``bin_size`` not positive or longer than the recording, intervals
            outside the recording or holding no bin, a setting out of range.
        InputTypeError
            ``data`` of the wrong kind.
        """
        history = check_int("history_bins", self.history_bins, minimum=1)
        n_bases = check_int("n_bases", self.n_bases, minimum=1)
        if n_bases > history:
            raise InputError(
                f"n_bases must be <= history_bins={history} (one basis per lag at most); got "
                f"{n_bases}."
            )
        n_comp = check_int("n_stimulus_components", self.n_stimulus_components, minimum=0)
        alpha = check_float("alpha", self.alpha, minimum=0.0)
        max_iter = check_int("max_iter", self.max_iter, minimum=1)
        standard_errors = check_bool("standard_errors", self.standard_errors)
        tol = check_float("tol", self.tol, minimum=0.0)
        bin_size = check_float("bin_size", bin_size, minimum=0.0, strict_minimum=True)
        device = resolve_device(self.device)
        spikes, stimulus, frame_times, _ = _spikes_and_stimulus("data", data)
        intervals = _check_intervals("intervals", intervals, spikes.t_start, spikes.t_stop)
        counts = _bin_counts(spikes, bin_size)
        mask = _interval_mask(intervals, spikes.t_start, bin_size, counts.shape[1])
        n = spikes.n_neurons

        self.n_neurons_ = n
        self.bin_size_ = bin_size
        self.bases_ = raised_cosine_bases(history, n_bases)
        self.stimulus_mean_ = self.stimulus_components_ = self.frame_shape_ = None
        features = None
        if stimulus is not None and n_comp > 0:
            features = self._fit_pca(stimulus, frame_times, spikes.t_start, bin_size, mask, n_comp)

        fitted = counts[:, mask]
        self.mean_rates_ = fitted.mean(axis=1).astype(np.float64)
        share = fitted.sum(axis=1) / max(fitted.sum(), 1)
        share = share[share > 0]
        self.id_entropy_ = float(-(share * np.log(share)).sum())

        design = _design(counts, self.bases_, features, torch.float32, device)[mask]
        y = torch.as_tensor(counts[:, mask].T, dtype=torch.float32, device=device)  # (bins, n)
        bias = torch.log(torch.as_tensor(self.mean_rates_, dtype=torch.float32) + 1e-3)
        bias = bias.to(device).requires_grad_(True)
        weights = torch.zeros(n, design.shape[1], device=device, requires_grad=True)
        # every weight is penalised but a neuron's own history (its refractoriness, well
        # determined by its own spikes, and what keeps generated trains from running away)
        penalised = torch.ones(n, design.shape[1], device=device)
        own = torch.arange(n, device=device)[:, None] * n_bases + torch.arange(
            n_bases, device=device
        )
        penalised.scatter_(1, own, 0.0)
        optimizer = torch.optim.LBFGS(
            [bias, weights],
            lr=1.0,
            max_iter=max_iter,
            max_eval=int(max_iter * 1.25) + 1,
            tolerance_grad=tol,
            tolerance_change=tol,
            history_size=20,
            line_search_fn="strong_wolfe",
        )
        evaluations = [0]

        def closure():
            optimizer.zero_grad()
            eta = design @ weights.T + bias
            nll = (torch.exp(eta) - y * eta).sum() / len(y)
            loss = nll + 0.5 * alpha * (penalised * weights.square()).sum()
            loss.backward()
            evaluations[0] += 1
            return loss

        optimizer.step(closure)
        self.loss_ = float(closure().detach())
        self.n_iter_ = int(evaluations[0])
        self.bias_ = bias.detach().cpu().double().numpy()
        w = weights.detach().cpu().double().numpy()
        self.coupling_weights_ = w[:, : n * n_bases].reshape(n, n, n_bases)
        self.stimulus_weights_ = w[:, n * n_bases :].copy()
        self.coupling_filters_ = np.einsum("ijb,bl->ijl", self.coupling_weights_, self.bases_)
        self.coupling_ = self.coupling_filters_.sum(axis=2)
        np.fill_diagonal(self.coupling_, 0.0)
        self.coupling_z_ = None
        if standard_errors:
            with torch.no_grad():
                se = _coupling_se(design, bias, weights, penalised, alpha, self.bases_)
            self.coupling_z_ = self.coupling_ / se.cpu().double().numpy()
            np.fill_diagonal(self.coupling_z_, 0.0)
        self.stimulus_filters_ = None
        if self.stimulus_components_ is not None:
            rf = self.stimulus_weights_ @ self.stimulus_components_
            self.stimulus_filters_ = rf.reshape(n, *self.frame_shape_)
        return self

    def _fit_pca(self, stimulus, frame_times, t_start, bin_size, mask, n_comp) -> np.ndarray:
        """Fit the frames' PCA on the frames shown in the fitted bins; features per bin."""
        frames = np.asarray(stimulus, dtype=np.float64).reshape(len(stimulus), -1)
        starts = t_start + bin_size * np.arange(mask.size)
        idx = _frame_of_bins(frame_times, starts)
        shown = np.unique(idx[mask & (idx >= 0)])
        if shown.size < 2:
            raise InputError(
                "the fitted bins show fewer than 2 stimulus frames; fit on a longer interval, or "
                "set n_stimulus_components=0."
            )
        x = frames[shown]
        mean = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        keep = s > s[0] * 1e-6 if s[0] > 0 else np.zeros_like(s, dtype=bool)
        k = min(n_comp, int(keep.sum()))
        self.frame_shape_ = tuple(int(v) for v in np.shape(stimulus)[1:])
        self.stimulus_mean_ = mean
        # scaled so that each component has unit variance over the fitted frames
        self.stimulus_components_ = vt[:k] * (np.sqrt(len(x)) / s[:k])[:, None]
        return self._features(stimulus, frame_times, t_start, bin_size, mask.size)

    def _features(self, stimulus, frame_times, t_start, bin_size, n_bins) -> np.ndarray:
        """Stimulus features ``(n_bins, n_components)`` float32 of the bins from ``t_start``."""
        k = self.stimulus_components_.shape[0]
        frames = np.asarray(stimulus, dtype=np.float64).reshape(len(stimulus), -1)
        z_frames = (frames - self.stimulus_mean_) @ self.stimulus_components_.T
        idx = _frame_of_bins(frame_times, t_start + bin_size * np.arange(n_bins))
        out = np.zeros((n_bins, k), dtype=np.float32)
        out[idx >= 0] = z_frames[idx[idx >= 0]]
        return out

    # ------------------------------------------------------------------ evaluation
    def _prepare(self, data, intervals, name="data"):
        """Counts, stimulus features and bin mask of ``data`` on the fitted bin size."""
        self._check_fitted()
        spikes, stimulus, frame_times, _ = _spikes_and_stimulus(name, data)
        self._check_neurons(name, spikes)
        intervals = _check_intervals("intervals", intervals, spikes.t_start, spikes.t_stop)
        counts = _bin_counts(spikes, self.bin_size_)
        mask = _interval_mask(intervals, spikes.t_start, self.bin_size_, counts.shape[1])
        z = self._stimulus_of(name, stimulus, frame_times, spikes.t_start, counts.shape[1])
        return counts, z, mask

    def _check_neurons(self, name: str, spikes: SpikeTrains) -> None:
        if spikes.n_neurons != self.n_neurons_:
            raise InputError(
                f"{name} has {spikes.n_neurons} neurons but the model was fitted on "
                f"{self.n_neurons_}; give a recording of the same neurons."
            )

    def _stimulus_of(self, name, stimulus, frame_times, t_start, n_bins):
        if self.stimulus_components_ is None:
            return None
        if stimulus is None:
            raise InputError(
                f"the model has a stimulus filter, so {name} must be an AlignedRecording with the "
                "stimulus (stimulus and frame_times)."
            )
        shape = tuple(np.shape(stimulus)[1:])
        if shape != self.frame_shape_:
            raise InputError(
                f"{name}'s frames are {shape} but the model was fitted on {self.frame_shape_}; "
                "give the same stimulus format."
            )
        return self._features(stimulus, frame_times, t_start, self.bin_size_, n_bins)

    def _log_rates(self, counts: np.ndarray, z: np.ndarray | None) -> np.ndarray:
        """``eta`` (n_neurons, n_bins), float64, from the fitted parameters."""
        with torch.no_grad():
            design = _design(counts, self.bases_, z, torch.float64, torch.device("cpu"))
            n = self.n_neurons_
            weights = np.concatenate(
                [self.coupling_weights_.reshape(n, -1), self.stimulus_weights_], axis=1
            )
            eta = design @ torch.as_tensor(weights).T + torch.as_tensor(self.bias_)
        return eta.numpy().T

    def predict_rates(self, data, intervals: Sequence[tuple] | None = None) -> np.ndarray:
        """Expected counts per bin given the recorded history and stimulus.

        Parameters
        ----------
        data : AlignedRecording, SpikeTrains or (neuron_ids, times)
        intervals : sequence of (start, stop), optional
            Keep the bins inside these (seconds); default all bins.

        Returns
        -------
        ndarray of shape (n_neurons, n_kept_bins)
            Spikes per bin (divide by ``bin_size_`` for Hz), bins in time order.
        """
        counts, z, mask = self._prepare(data, intervals)
        return np.exp(self._log_rates(counts, z))[:, mask]

    def log_likelihood(self, data, intervals: Sequence[tuple] | None = None) -> np.ndarray:
        """Poisson log-likelihood of each neuron's counts in the bins of ``intervals``.

        Parameters
        ----------
        data : AlignedRecording, SpikeTrains or (neuron_ids, times)
        intervals : sequence of (start, stop), optional

        Returns
        -------
        ndarray of shape (n_neurons,)
            Nats, summed over the bins (including the ``-log(n!)`` term).
        """
        return _poisson_ll(*self._observed_and_eta(data, intervals))

    def _observed_and_eta(self, data, intervals) -> tuple[np.ndarray, np.ndarray]:
        """Counts and log rates ``(n_neurons, n_kept_bins)`` in the bins of ``intervals``."""
        counts, z, mask = self._prepare(data, intervals)
        return counts[:, mask].astype(np.float64), self._log_rates(counts, z)[:, mask]

    def score(self, data, intervals: Sequence[tuple] | None = None) -> float:
        """Mean Poisson log-likelihood per bin (nats, summed over neurons); higher is better.

        Parameters
        ----------
        data : AlignedRecording, SpikeTrains or (neuron_ids, times)
            Held-out data (e.g. the test intervals of the fitted recording).
        intervals : sequence of (start, stop), optional

        Returns
        -------
        float
        """
        y, eta = self._observed_and_eta(data, intervals)
        return float(_poisson_ll(y, eta).sum() / y.shape[1])

    def bits_per_spike(self, data, intervals: Sequence[tuple] | None = None) -> float:
        """Log-likelihood gain over a homogeneous Poisson model, bits per spike.

        The reference predicts each neuron's fitted mean count per bin
        (``mean_rates_``) in every bin; positive means the model does better.

        Parameters
        ----------
        data : AlignedRecording, SpikeTrains or (neuron_ids, times)
        intervals : sequence of (start, stop), optional

        Returns
        -------
        float
        """
        y, eta = self._observed_and_eta(data, intervals)
        reference = np.broadcast_to(np.log(np.maximum(self.mean_rates_, 1e-12))[:, None], y.shape)
        gain = _poisson_ll(y, eta).sum() - _poisson_ll(y, reference).sum()
        return float(gain / max(y.sum(), 1.0) / math.log(2.0))

    def id_cross_entropy(self, data, intervals: Sequence[tuple] | None = None) -> float:
        """Cross-entropy (nats per spike) of each spike's neuron id, given that a spike occurred.

        A spike of neuron ``i`` in bin ``t`` scores ``-log(mu_i(t) / sum_j
        mu_j(t))``: the GLM's probability that a spike in that bin is
        ``i``'s. This is comparable with Neuroformer's next-id cross-entropy
        (which also conditions on earlier spikes in the same bin, and so has
        a small edge), and below ``id_entropy_`` when the model knows more
        than the firing frequencies.

        Parameters
        ----------
        data : AlignedRecording, SpikeTrains or (neuron_ids, times)
        intervals : sequence of (start, stop), optional

        Returns
        -------
        float

        Raises
        ------
        InputError
            No spike in the intervals.
        """
        y, eta = self._observed_and_eta(data, intervals)
        if y.sum() == 0:
            raise InputError("there is no spike in the intervals to score; give longer intervals.")
        log_p = eta - np.logaddexp.reduce(eta, axis=0, keepdims=True)
        return float(-(y * log_p).sum() / y.sum())

    # ------------------------------------------------------------------ generation
    def simulate(
        self,
        recording=None,
        t_start: float | None = None,
        t_stop: float | None = None,
        seed: int | None = 0,
        max_count: int | None = 1,
    ) -> SpikeTrains:
        """Generate spikes in ``[t_start, t_stop)`` from the model, bin by bin.

        The stimulus term follows the recording's frames; the coupling terms
        follow the model's own generated spikes, starting from the recorded
        spikes of the ``history_bins`` bins before ``t_start`` (none before
        the recording starts). Counts are Poisson draws (rates capped at
        ``MAX_RATE`` Hz) clipped at ``max_count``; each spike sits at the
        start of its bin.

        Parameters
        ----------
        recording : AlignedRecording, SpikeTrains or None
            The recording whose stimulus (required when the model has a
            stimulus filter) and whose preceding spikes drive the model; None
            for a model without stimulus (history starts empty, and
            ``t_start``, ``t_stop`` are then required).
        t_start, t_stop : float, optional
            Seconds; default the recording's span. Whole bins from ``t_start``
            are generated.
        seed : int or None, default=0
        max_count : int or None, default=1
            Most spikes per neuron and bin. With 1 a neuron spikes in a bin
            with probability ``1 - exp(-mu)`` (the Poisson chance of at least
            one spike), as in the simulator of :mod:`data_loaders.simulate`
            and as 10 ms bins of real data nearly always are. Unbounded
            Poisson counts (None) feed doubled spikes through excitatory
            couplings, and a network with strong hubs can run away.

        Returns
        -------
        SpikeTrains
            Over ``[t_start, t_start + n_bins * bin_size_)``.

        Raises
        ------
        InputError
            An interval outside the recording or shorter than one bin, a
            recording of other neurons, no stimulus for a model that needs one.
        """
        self._check_fitted()
        seed = check_int("seed", seed, allow_none=True)
        max_count = check_int("max_count", max_count, minimum=1, allow_none=True)
        b = self.bin_size_
        L = self.bases_.shape[1]
        n = self.n_neurons_
        if recording is None:
            if self.stimulus_components_ is not None:
                raise InputError(
                    "the model has a stimulus filter: give the recording whose stimulus drives it."
                )
            if t_start is None or t_stop is None:
                raise InputError("without a recording, give t_start and t_stop (seconds).")
            t0 = check_float("t_start", t_start, minimum=0.0)
            t1 = check_float("t_stop", t_stop)
            spikes = stimulus = frame_times = None
        else:
            spikes, stimulus, frame_times, _ = _spikes_and_stimulus("recording", recording)
            self._check_neurons("recording", spikes)
            t0 = spikes.t_start if t_start is None else check_float("t_start", t_start)
            t1 = spikes.t_stop if t_stop is None else check_float("t_stop", t_stop)
            _check_intervals("[t_start, t_stop)", [(t0, t1)], spikes.t_start, spikes.t_stop)
        n_bins = _n_bins(t1 - t0, b)
        if t1 <= t0 or n_bins < 1:
            raise InputError(
                f"t_start={t0:g} s and t_stop={t1:g} s hold no whole bin of {b:g} s; give "
                "t_stop > t_start + bin_size."
            )
        history = np.zeros((L + n_bins, n))  # row L + t: bin t; rows 0..L-1: the bins before
        if spikes is not None:
            for lag in range(1, L + 1):
                a = t0 - lag * b
                if a < spikes.t_start - 1e-9 * b:
                    break
                lo, hi = np.searchsorted(spikes.times, [a - 1e-9 * b, a + b - 1e-9 * b])
                history[L - lag] = np.bincount(spikes.neuron_ids[lo:hi], minlength=n)
        drive = np.tile(self.bias_, (n_bins, 1))
        if self.stimulus_components_ is not None:
            z = self._stimulus_of("recording", stimulus, frame_times, t0, n_bins)
            drive += z.astype(np.float64) @ self.stimulus_weights_.T
        # w_lag[i, (l - 1) * n + j] = h[i, j, l - 1]: lags 1..L stacked
        w_lag = self.coupling_filters_.transpose(0, 2, 1).reshape(n, L * n)
        cap = math.log(MAX_RATE * b)
        rng = np.random.default_rng(seed)
        for t in range(n_bins):
            row = L + t
            recent = history[row - L : row][::-1].ravel()  # bins t-1, ..., t-L
            eta = np.minimum(drive[t] + w_lag @ recent, cap)
            draw = rng.poisson(np.exp(eta))
            history[row] = draw if max_count is None else np.minimum(draw, max_count)
        counts = history[L:].T.astype(np.int64)
        return SpikeTrains.from_counts(counts, b, t_start=t0)


def _poisson_ll(y: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Poisson log-likelihood of counts ``y`` under log means ``eta``, summed per row."""
    log_fact = np.vectorize(math.lgamma)(y + 1.0) if y.max(initial=0) > 1 else 0.0
    return (y * eta - np.exp(eta) - log_fact).sum(axis=1)


def _coupling_se(design, bias, weights, penalised, alpha, bases) -> torch.Tensor:
    """Standard errors ``(n, n)`` of the summed coupling filters, from the penalised Hessian.

    For target ``i`` the covariance of its weights is approximated by the
    inverse of ``D^T diag(mu_i) D + alpha * n_bins * I`` (penalised entries),
    with the bias as an extra unpenalised column; the summed filter from ``j``
    is the contrast ``sum_b W[i, j, b] * sum_l bases[b, l]``.
    """
    n = weights.shape[0]
    n_bases = bases.shape[0]
    dev, dt = design.device, design.dtype
    d1 = torch.cat([design, torch.ones(len(design), 1, device=dev, dtype=dt)], dim=1)
    mu = torch.exp(design @ weights.T + bias)  # (bins, n)
    ridge = torch.cat([penalised, torch.zeros(n, 1, device=dev, dtype=dt)], dim=1)
    ridge = ridge * alpha * len(design)
    contrast = torch.as_tensor(bases.sum(axis=1), device=dev, dtype=dt)  # (n_bases,)
    se = torch.empty(n, n, device=dev, dtype=dt)
    for i in range(n):
        hessian = (d1 * mu[:, i : i + 1]).T @ d1 + torch.diag(ridge[i])
        hessian = hessian.double()
        hessian.diagonal().add_(1e-9 * float(hessian.diagonal().mean()))
        cov = torch.linalg.inv(hessian)
        block = cov[: n * n_bases, : n * n_bases].reshape(n, n_bases, n, n_bases)
        idx = torch.arange(n, device=dev)
        per_source = block[idx, :, idx, :]  # (n, n_bases, n_bases)
        c = contrast.double()
        se[i] = torch.sqrt(torch.einsum("b,jbc,c->j", c, per_source, c).clamp_min(0)).to(dt)
    return se


def _design(counts, bases, z, dtype, device) -> torch.Tensor:
    """The GLM's regressors ``(n_bins, n_neurons * n_bases + n_components)``.

    Column ``j * n_bases + b`` is neuron ``j``'s counts filtered by basis ``b``
    over the previous ``history_bins`` bins (causal: bin ``t`` sees bins
    ``t - 1 .. t - history_bins``); the last columns are the stimulus features ``z``.
    """
    y = torch.as_tensor(counts, dtype=dtype, device=device)  # (n, bins)
    kernel = torch.as_tensor(bases, dtype=dtype, device=device)  # (n_bases, L), lag 1 first
    L = kernel.shape[1]
    # conv1d correlates: out[t] = sum_k w[k] y[t + k - L] on the left-padded input, so w[k]
    # acts at lag L - k: flip the bases, and drop the last output (bin T sees up to T - 1)
    hist = F.conv1d(F.pad(y[:, None], (L, 0)), kernel.flip(-1)[:, None])[:, :, :-1]
    hist = hist.permute(2, 0, 1).reshape(y.shape[1], -1)  # (bins, n * n_bases)
    if z is None or z.shape[1] == 0:
        return hist.contiguous()
    return torch.cat([hist, torch.as_tensor(z, dtype=dtype, device=device)], dim=1)


# ----------------------------------------------------------------------------- baselines
def correlation_connectivity(data, bin_size: float = 0.01, intervals=None) -> np.ndarray:
    """Pearson correlation of the binned spike counts of every pair (the paper's baseline).

    Parameters
    ----------
    data : AlignedRecording, SpikeTrains or (neuron_ids, times)
    bin_size : float, default=0.01
        Seconds.
    intervals : sequence of (start, stop), optional
        Bins used; default the whole recording.

    Returns
    -------
    ndarray of shape (n_neurons, n_neurons)
        Symmetric, zero diagonal; silent neurons get 0.

    Examples
    --------
    >>> s = SpikeTrains.from_counts([[1, 0, 1, 0], [1, 0, 1, 0], [0, 1, 0, 1]], bin_size=0.01)
    >>> correlation_connectivity(s).round(2).tolist()
    [[0.0, 1.0, -1.0], [1.0, 0.0, -1.0], [-1.0, -1.0, 0.0]]
    """
    bin_size = check_float("bin_size", bin_size, minimum=0.0, strict_minimum=True)
    spikes, _, _, _ = _spikes_and_stimulus("data", data)
    intervals = _check_intervals("intervals", intervals, spikes.t_start, spikes.t_stop)
    counts = _bin_counts(spikes, bin_size)
    x = counts[:, _interval_mask(intervals, spikes.t_start, bin_size, counts.shape[1])]
    x = x - x.mean(axis=1, keepdims=True)
    sd = np.sqrt((x**2).sum(axis=1))
    sd = np.where(sd > 0, sd, np.inf)
    r = (x @ x.T) / sd[:, None] / sd[None, :]
    np.fill_diagonal(r, 0.0)
    return r


def connectivity_auroc(estimate, adjacency, within_source: bool = False) -> float:
    """AUROC of ``|estimate|`` at telling connected pairs (``adjacency != 0``) from the rest.

    The diagonal is left out. 0.5 is chance, 1 a perfect ranking.

    Parameters
    ----------
    estimate : array-like of shape (n_neurons, n_neurons)
        Any connectivity score (GLM coupling, attention, correlation).
    adjacency : array-like of shape (n_neurons, n_neurons)
        The true couplings; non-zero entries are edges.
    within_source : bool, default=False
        Subtract from ``|estimate|`` each source's (column's) mean over its
        targets first, so only how a source's targets rank against its
        non-targets counts. A score that only says how strong each neuron
        is as a source overall (which neurons are hubs, or fire with the
        stimulus) is at chance here, while one that knows who drives whom
        keeps its AUROC.

    Returns
    -------
    float

    Raises
    ------
    InputError
        Shapes differ or are not square; no edge, or nothing but edges, off
        the diagonal (the AUROC is undefined: e.g. a null circuit).

    Examples
    --------
    >>> connectivity_auroc([[0, 0.9, 0.1], [0.2, 0, 0.8], [0.7, 0.3, 0]],
    ...                    [[0, 1, 0], [0, 0, -1], [1, 0, 0]])
    1.0
    """
    est = check_array("estimate", estimate, ndim=2, shape_hint="(n_neurons, n_neurons)")
    adj = check_array("adjacency", adjacency, ndim=2, shape_hint="(n_neurons, n_neurons)")
    if est.shape != adj.shape or est.shape[0] != est.shape[1]:
        raise InputError(
            f"estimate and adjacency must be square and the same shape; got {est.shape} and "
            f"{adj.shape}."
        )
    off = ~np.eye(est.shape[0], dtype=bool)
    truth = adj[off] != 0
    if truth.all() or not truth.any():
        raise InputError(
            "adjacency needs both edges and non-edges off the diagonal for an AUROC (a null "
            "circuit has no edge: compare coupling magnitudes instead)."
        )
    score = np.abs(est)
    if within_source:
        column = np.where(off, score, 0.0).sum(axis=0) / (est.shape[0] - 1)
        score = score - column[None, :]
    score = score[off]
    # Mann-Whitney U with average ranks for ties
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(score.size)
    sorted_scores = score[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    u = ranks[truth].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


# ----------------------------------------------------------------------------- the decoder
class RidgeDecoder(NeuroEstimator):
    """Behaviour decoded from the population's recent binned counts by cross-validated ridge.

    At a behaviour sample time ``t``, the features are the counts of every
    neuron in the ``n_lags`` bins of ``bin_size`` seconds that end at the end
    of the bin holding ``t`` (bins on the recording's grid from
    ``t_start``; the bin holding ``t`` is included, bins before the recording
    count as empty), each feature z-scored on the fitted samples. The ridge
    solution and one alpha per behaviour variable come from
    :class:`~neuro.encoders.VoxelRidgeCV` with contiguous folds.

    Parameters
    ----------
    n_lags : int, default=10
        Bins per window.
    bin_size : float, default=0.05
        Seconds per bin (``n_lags * bin_size`` seconds of history).
    alphas : sequence of float, optional
        Ridge penalties to choose from; default that of ``VoxelRidgeCV``.
    cv : int, default=5
        Contiguous folds (fewer when there are fewer samples).
    device : str, default="auto"

    Attributes
    ----------
    coef_ : ndarray of shape (n_neurons * n_lags, n_vars)
        On z-scored features, ordered lag-major (``lag * n_neurons + neuron``;
        lag 0 is the bin holding ``t``).
    intercept_ : ndarray of shape (n_vars,)
    alpha_ : ndarray of shape (n_vars,)
    feature_mean_, feature_scale_ : ndarray of shape (n_neurons * n_lags,)
    n_neurons_ : int
    n_samples_fit_ : int
    behavior_names_ : tuple of str or None

    Examples
    --------
    >>> from data_loaders.simulate.spikes import simulate_spiking_circuit
    >>> sim = simulate_spiking_circuit(n_neurons=20, duration=30.0, seed=0)
    >>> rec = sim.recording
    >>> dec = RidgeDecoder(device="cpu").fit(rec, intervals=[(0.0, 20.0)])
    >>> bool(dec.correlation_score(rec, intervals=[(20.0, 30.0)])[0] > 0.5)
    True
    """

    def __init__(
        self,
        n_lags: int = 10,
        bin_size: float = 0.05,
        alphas: Sequence[float] | None = None,
        cv: int = 5,
        device: str = "auto",
    ) -> None:
        self.n_lags = n_lags
        self.bin_size = bin_size
        self.alphas = alphas
        self.cv = cv
        self.device = device

    def _lagged(self, spikes: SpikeTrains, times: np.ndarray) -> np.ndarray:
        """Features ``(n_times, n_lags * n_neurons)`` at ``times``."""
        n_lags = check_int("n_lags", self.n_lags, minimum=1)
        b = check_float("bin_size", self.bin_size, minimum=0.0, strict_minimum=True)
        n_bins = max(math.ceil(spikes.duration / b - _EDGE_TOL), 1)
        bins = np.floor((spikes.times - spikes.t_start) / b + _EDGE_TOL).astype(np.int64)
        counts = np.zeros((n_bins + n_lags - 1, spikes.n_neurons), dtype=np.float64)
        np.add.at(counts, (np.minimum(bins, n_bins - 1) + n_lags - 1, spikes.neuron_ids), 1.0)
        cur = np.floor((times - spikes.t_start) / b + _EDGE_TOL).astype(np.int64)
        cur = np.clip(cur, 0, n_bins - 1) + n_lags - 1  # row of the bin holding each time
        rows = cur[:, None] - np.arange(n_lags)[None, :]  # lag 0 first
        return counts[rows].reshape(len(times), -1)

    def _recording(self, name: str, recording, need_behavior: bool) -> AlignedRecording:
        if not isinstance(recording, AlignedRecording):
            raise InputTypeError(
                f"{name} must be an AlignedRecording (spikes with behavior); got "
                f"{type(recording).__name__}."
            )
        if need_behavior and recording.behavior is None:
            raise InputError(
                f"{name} has no behavior to decode; give an AlignedRecording with behavior and "
                "behavior_times."
            )
        return recording

    def _samples(self, recording: AlignedRecording, intervals):
        intervals = _check_intervals(
            "intervals", intervals, recording.spikes.t_start, recording.spikes.t_stop
        )
        t = recording.behavior_times
        keep = np.zeros(len(t), dtype=bool)
        for a, b in intervals:
            keep |= (t >= a) & (t < b)
        return keep

    def fit(self, recording, intervals: Sequence[tuple] | None = None, times=None):
        """Fit the decoder on the behaviour samples whose times lie inside ``intervals``.

        Parameters
        ----------
        recording : AlignedRecording
            With ``behavior`` and ``behavior_times``.
        intervals : sequence of (start, stop), optional
            Seconds; default the whole recording. Few-shot: pass short
            intervals (or a recording windowed to a few samples).
        times : array-like of shape (n_samples,), optional
            Fit at these times instead, each behaviour variable linearly
            interpolated there (not with ``intervals``): the labelled
            examples another decoder was given, e.g. ``Neuroformer``'s
            ``behavior_times_``.

        Returns
        -------
        self

        Raises
        ------
        InputError
            No behaviour, intervals outside the recording, fewer than 2
            samples inside them, a setting out of range.
        InputTypeError
            ``recording`` is not an AlignedRecording.
        """
        from neuro.encoders import VoxelRidgeCV

        rec = self._recording("recording", recording, need_behavior=True)
        cv = check_int("cv", self.cv, minimum=2)
        if times is not None:
            if intervals is not None:
                raise InputError("Give intervals or times, not both.")
            t = np.asarray(times, dtype=np.float64).reshape(-1)
            s = rec.spikes
            if not (np.isfinite(t).all() and ((t >= s.t_start) & (t <= s.t_stop)).all()):
                raise InputError(
                    f"times must be finite and inside the recording [{s.t_start}, {s.t_stop}]."
                )
            if len(t) < 2:
                raise InputError(f"times holds {len(t)} time(s); the decoder needs at least 2.")
            behavior = np.asarray(rec.behavior, dtype=np.float64).reshape(
                len(rec.behavior_times), -1
            )
            Y = np.stack([np.interp(t, rec.behavior_times, b) for b in behavior.T], axis=1)
            X = self._lagged(s, t)
            n_fit = len(t)
        else:
            keep = self._samples(rec, intervals)
            if keep.sum() < 2:
                raise InputError(
                    f"the intervals hold {int(keep.sum())} behaviour sample(s); the decoder needs "
                    "at least 2."
                )
            X = self._lagged(rec.spikes, rec.behavior_times[keep])
            Y = np.asarray(rec.behavior[keep], dtype=np.float64)
            n_fit = int(keep.sum())
        self.feature_mean_ = X.mean(axis=0)
        sd = X.std(axis=0)
        self.feature_scale_ = np.where(sd > 0, sd, 1.0)
        Xz = (X - self.feature_mean_) / self.feature_scale_
        kwargs = {} if self.alphas is None else {"alphas": self.alphas}
        ridge = VoxelRidgeCV(cv=min(cv, len(Y)), device=self.device, dtype="float64", **kwargs)
        ridge.fit(Xz, Y)
        self.coef_ = np.asarray(ridge.coef_, dtype=np.float64).reshape(X.shape[1], -1)
        self.intercept_ = np.asarray(ridge.intercept_, dtype=np.float64).reshape(-1)
        self.alpha_ = np.asarray(ridge.alpha_, dtype=np.float64).reshape(-1)
        self.n_neurons_ = rec.n_neurons
        self.n_samples_fit_ = n_fit
        self.behavior_names_ = rec.behavior_names
        return self

    def predict(self, recording, times) -> np.ndarray:
        """Decode the behaviour at ``times`` from the recording's spikes.

        Parameters
        ----------
        recording : AlignedRecording or SpikeTrains
            The spikes (behaviour is not needed).
        times : array-like of shape (n_times,)
            Seconds, inside the recording.

        Returns
        -------
        ndarray of shape (n_times, n_vars)
        """
        self._check_fitted()
        if isinstance(recording, AlignedRecording):
            spikes = recording.spikes
        elif isinstance(recording, SpikeTrains):
            spikes = recording
        else:
            raise InputTypeError(
                f"recording must be an AlignedRecording or a SpikeTrains; got "
                f"{type(recording).__name__}."
            )
        if spikes.n_neurons != self.n_neurons_:
            raise InputError(
                f"recording has {spikes.n_neurons} neurons but the decoder was fitted on "
                f"{self.n_neurons_}; give a recording of the same neurons."
            )
        t = check_array("times", times, ndim=1, shape_hint="(n_times,)", dtype=np.float64)
        outside = (t < spikes.t_start) | (t >= spikes.t_stop)
        if outside.any():
            raise InputError(
                f"times: {int(outside.sum())} outside the recording [{spikes.t_start:g}, "
                f"{spikes.t_stop:g}) s (first: {t[outside][0]:g} s); give times inside it."
            )
        X = (self._lagged(spikes, t) - self.feature_mean_) / self.feature_scale_
        return X @ self.coef_ + self.intercept_

    def _truth_and_prediction(self, recording, intervals):
        self._check_fitted()
        rec = self._recording("recording", recording, need_behavior=True)
        keep = self._samples(rec, intervals)
        if keep.sum() < 2:
            raise InputError(
                f"the intervals hold {int(keep.sum())} behaviour sample(s); scoring needs at "
                "least 2."
            )
        truth = np.asarray(rec.behavior[keep], dtype=np.float64)
        if truth.shape[1] != self.coef_.shape[1]:
            raise InputError(
                f"recording has {truth.shape[1]} behaviour variable(s) but the decoder was "
                f"fitted on {self.coef_.shape[1]}."
            )
        return truth, self.predict(rec, rec.behavior_times[keep])

    def score(self, recording, intervals: Sequence[tuple] | None = None) -> float:
        """R² of the decoded behaviour, averaged over variables (scikit-learn's convention).

        Parameters
        ----------
        recording : AlignedRecording
        intervals : sequence of (start, stop), optional
            Held-out intervals; default the whole recording.

        Returns
        -------
        float
        """
        truth, pred = self._truth_and_prediction(recording, intervals)
        ss_res = ((truth - pred) ** 2).sum(axis=0)
        ss_tot = ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)
        return float(np.mean(1.0 - ss_res / np.where(ss_tot > 0, ss_tot, np.inf)))

    def correlation_score(self, recording, intervals: Sequence[tuple] | None = None) -> np.ndarray:
        """Pearson r between decoded and true behaviour, one per variable.

        Parameters
        ----------
        recording : AlignedRecording
        intervals : sequence of (start, stop), optional

        Returns
        -------
        ndarray of shape (n_vars,)
        """
        truth, pred = self._truth_and_prediction(recording, intervals)
        tc, pc = truth - truth.mean(axis=0), pred - pred.mean(axis=0)
        denom = np.sqrt((tc**2).sum(axis=0) * (pc**2).sum(axis=0))
        return (tc * pc).sum(axis=0) / np.where(denom > 0, denom, np.inf)
