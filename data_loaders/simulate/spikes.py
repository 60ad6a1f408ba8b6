"""A spiking circuit with known directed connectivity, driven by gratings, read out as behaviour.

Time runs in bins of ``dt`` seconds. In bin ``t`` neuron ``i`` fires at most
once, with probability ``1 - exp(-r_i(t) dt)`` (a Bernoulli draw of a
Poisson-GLM intensity), where the rate in Hz is ``r_i(t) = exp(eta_i(t))``,
capped at ``max_rate``, and

``eta_i(t) = log b_i + stimulus_gain * x_i(t) + sum_j A[i, j] s_j(t - D[i, j])
+ sum_k h_k s_i(t - k)``

* ``b_i``: baseline rate, log-normal around ``baseline_rate`` Hz;
* ``x_i(t)``: the linear response of neuron ``i``'s receptive field (a Gabor
  patch at a random place, orientation, frequency and phase) to the frame on
  screen, scaled so that all responses together have unit standard deviation;
* ``A``: the **adjacency**, signed coupling weights in log-rate units.
  **``A[i, j]`` is the effect of presynaptic neuron ``j`` on postsynaptic
  neuron ``i``** (rows: targets, columns: sources), delivered ``D[i, j]`` bins
  after ``j`` fires (1 to ``max_delay``). ``n_hubs`` excitatory hub neurons
  project to a fraction ``hub_p_connect`` of the others; every other pair is
  connected with probability ``p_connect``. Neurons obey Dale's law: all
  outgoing weights of a neuron share a sign (``excitatory``). Magnitudes are
  ``coupling_strength * U(0.5, 1)``; ``coupling_strength=0`` gives the null
  circuit, with no connection at all;
* ``h_k = -refractory * 2 ** -(k - 1)`` for ``k = 1 .. refractory_bins``: a
  self-inhibition after each spike (``refractory=50`` silences the next bin).

Stimulus
    ``frame_rate`` frames per second of ``frame_shape`` pixels, in blocks of
    ``block_duration`` seconds, each showing a grey screen or one of
    ``n_gratings`` gratings (alternately drifting and counter-phase flashing,
    each with its own orientation, spatial and temporal frequency). Values are
    contrasts in ``[-1, 1]``.
Behaviour
    ``n_behavior`` variables read out from the population: the spikes
    smoothed by an exponential of time constant ``behavior_tau`` seconds,
    z-scored per neuron, times random weights ``(n_neurons, n_behavior)``,
    scaled to unit variance, plus Gaussian noise of sd ``behavior_noise``;
    sampled at ``behavior_rate`` Hz.

:meth:`SimulatedCircuit.write_nwb` writes it all to one NWB file, read back by
:func:`data_loaders.spikes.load_nwb`.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_loaders._io import check_overwrite
from data_loaders._validation import check_array, check_float, check_int
from data_loaders.errors import InputError, InputTypeError
from data_loaders.spikes import AlignedRecording, SpikeTrains, _atomic_nwb_write

__all__ = ["SimulatedCircuit", "cross_correlogram", "simulate_spiking_circuit"]

_EDGE_TOL = 1e-9


@dataclass(eq=False)
class SimulatedCircuit:
    """What :func:`simulate_spiking_circuit` made and planted.

    Attributes
    ----------
    spikes : SpikeTrains
        Each spike at the start of its bin (times ``k * dt``), so
        ``spikes.binned(dt)`` is the simulated 0/1 matrix.
    stimulus : ndarray of shape (n_frames, H, W), float32
        Contrast frames in ``[-1, 1]``.
    frame_times : ndarray of shape (n_frames,)
        Onset of each frame, seconds.
    behavior : ndarray of shape (n_samples, n_behavior)
    behavior_times : ndarray of shape (n_samples,)
        Seconds.
    adjacency : ndarray of shape (n_neurons, n_neurons)
        Signed coupling weights (log-rate units); ``adjacency[i, j]`` is the
        effect of presynaptic ``j`` on postsynaptic ``i``; 0 for no connection.
    delays : ndarray of shape (n_neurons, n_neurons), int
        Bins from a spike of ``j`` to its effect on ``i``; 0 for no connection.
    hubs : ndarray of shape (n_hubs,), int
        The hub neurons (sorted).
    excitatory : ndarray of shape (n_neurons,), bool
        The sign of each neuron's outgoing couplings.
    receptive_fields : ndarray of shape (n_neurons, H, W)
        Unit-norm Gabor filters.
    behavior_weights : ndarray of shape (n_neurons, n_behavior)
        The readout weights.
    baseline_rates : ndarray of shape (n_neurons,)
        Hz, ``b_i``.
    rates : ndarray of shape (n_neurons, n_bins), float32
        The conditional intensity of each neuron in each bin, Hz.
    dt : float
        Seconds per bin.
    seed : int or None
    """

    spikes: SpikeTrains
    stimulus: np.ndarray
    frame_times: np.ndarray
    behavior: np.ndarray
    behavior_times: np.ndarray
    adjacency: np.ndarray
    delays: np.ndarray
    hubs: np.ndarray
    excitatory: np.ndarray
    receptive_fields: np.ndarray
    behavior_weights: np.ndarray
    baseline_rates: np.ndarray
    rates: np.ndarray
    dt: float
    seed: int | None

    @property
    def n_neurons(self) -> int:
        """Number of neurons."""
        return self.spikes.n_neurons

    @property
    def counts(self) -> np.ndarray:
        """The 0/1 spike matrix ``(n_neurons, n_bins)``, int64."""
        return self.spikes.binned(self.dt)

    @property
    def recording(self) -> AlignedRecording:
        """Spikes, stimulus and behaviour as an :class:`~data_loaders.spikes.AlignedRecording`."""
        names = [f"readout{k}" for k in range(self.behavior.shape[1])]
        return AlignedRecording(
            self.spikes, self.stimulus, self.frame_times, self.behavior, self.behavior_times, names
        )

    def write_nwb(self, path, overwrite: bool = False) -> Path:
        """Write the simulation to an NWB file, atomically.

        Layout: the units table (``spike_times``, one unit per neuron, id =
        neuron index, ``obs_intervals`` = the recording, and columns
        ``is_hub`` and ``excitatory``); the stimulus as the ``ImageSeries``
        ``stimulus/presentation/movie`` ``(n_frames, H, W)`` with its
        timestamps; the behaviour as the ``TimeSeries``
        ``processing/behavior/readout`` ``(n_samples, n_behavior)`` with its
        timestamps. The adjacency is not stored in the file.

        Parameters
        ----------
        path : str or path
            The ``.nwb`` file to write.
        overwrite : bool, default=False
            Replace an existing file; otherwise
            :class:`~data_loaders.errors.OutputExistsError`.

        Returns
        -------
        Path

        Raises
        ------
        ImportError
            pynwb is not installed (``pip install 'neuro[nwb]'``).
        OutputExistsError
            ``path`` exists and ``overwrite`` is False.
        """
        if not isinstance(overwrite, (bool, np.bool_)):
            raise InputTypeError(f"overwrite must be True or False; got {overwrite!r}.")
        path = check_overwrite(path, overwrite, what="NWB file")
        try:
            from pynwb import NWBFile, TimeSeries
            from pynwb.image import ImageSeries
        except ImportError as err:  # pragma: no cover - pynwb is in the nwb extra
            raise ImportError(
                "Writing NWB files needs pynwb: pip install 'neuro[nwb]' (or pip install pynwb)."
            ) from err

        nwb = NWBFile(
            session_description=(
                f"simulated spiking circuit ({self.n_neurons} neurons, {len(self.hubs)} hubs, "
                f"dt={self.dt:g} s, seed={self.seed})"
            ),
            identifier=f"neuro-simulated-circuit-seed{self.seed}",
            session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
        )
        nwb.add_unit_column(name="is_hub", description="a hub neuron of the simulated circuit")
        nwb.add_unit_column(name="excitatory", description="sign of the neuron's outgoing weights")
        s = self.spikes
        order = np.argsort(s.neuron_ids, kind="stable")  # by neuron, each in time order
        ends = np.cumsum(np.bincount(s.neuron_ids, minlength=s.n_neurons))
        per_unit = np.split(s.times[order], ends[:-1])
        hub = np.zeros(s.n_neurons, dtype=bool)
        hub[self.hubs] = True
        for k in range(s.n_neurons):
            nwb.add_unit(
                id=k,
                spike_times=per_unit[k],
                obs_intervals=[[s.t_start, s.t_stop]],
                is_hub=bool(hub[k]),
                excitatory=bool(self.excitatory[k]),
            )
        nwb.add_stimulus(
            ImageSeries(
                name="movie",
                data=self.stimulus,
                unit="contrast",
                timestamps=self.frame_times,
                description="grey screen and drifting / flashing gratings, frames (t, H, W)",
            )
        )
        behavior = nwb.create_processing_module(name="behavior", description="behaviour")
        behavior.add(
            TimeSeries(
                name="readout",
                data=self.behavior,
                unit="a.u.",
                timestamps=self.behavior_times,
                description="linear readout of the smoothed population activity plus noise",
            )
        )
        return _atomic_nwb_write(nwb, path)


def cross_correlogram(counts, pre, post, max_lag: int = 10) -> np.ndarray:
    """Coincidence counts of pairs of binned spike trains at lags ``-max_lag .. max_lag``.

    Parameters
    ----------
    counts : array-like of shape (n_neurons, n_bins)
        Binned spikes (:meth:`~data_loaders.spikes.SpikeTrains.binned`).
    pre, post : int or array-like of int, shape (n_pairs,)
        The neurons of each pair.
    max_lag : int, default=10
        Bins.

    Returns
    -------
    ndarray of shape (n_pairs, 2 * max_lag + 1)
        Column ``max_lag + L`` is ``sum_t counts[pre, t] * counts[post, t + L]``:
        positive lags count ``post`` firing after ``pre``.

    Examples
    --------
    >>> c = np.array([[1, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 1]])
    >>> cross_correlogram(c, 0, 1, max_lag=2).tolist()
    [[0, 1, 0, 0, 2]]
    """
    c = check_array("counts", counts, ndim=2, shape_hint="(n_neurons, n_bins)")
    max_lag = check_int("max_lag", max_lag, minimum=0)
    pre = np.atleast_1d(np.asarray(pre, dtype=np.int64))
    post = np.atleast_1d(np.asarray(post, dtype=np.int64))
    if pre.shape != post.shape or pre.ndim != 1:
        raise InputError(
            f"pre and post must be pairs of equal length; got {pre.shape}, {post.shape}."
        )
    n = c.shape[0]
    if len(pre) and (min(pre.min(), post.min()) < 0 or max(pre.max(), post.max()) >= n):
        raise InputError(f"pre and post must be neuron indices in 0..{n - 1}.")
    n_bins = c.shape[1]
    a, b = c[pre], c[post]
    out = np.zeros((len(pre), 2 * max_lag + 1), dtype=np.result_type(c.dtype, np.int64))
    for lag in range(-max_lag, max_lag + 1):
        if abs(lag) >= n_bins:
            continue
        if lag >= 0:
            out[:, max_lag + lag] = (a[:, : n_bins - lag] * b[:, lag:]).sum(axis=1)
        else:
            out[:, max_lag + lag] = (a[:, -lag:] * b[:, : n_bins + lag]).sum(axis=1)
    return out


def _gratings(rng, n_frames, frame_rate, shape, n_gratings, block_duration):
    """Frames ``(n_frames, H, W)``: blocks of grey or of one drifting / flashing grating."""
    H, W = shape
    theta = rng.uniform(0, np.pi, n_gratings)
    sf = rng.uniform(0.06, 0.15, n_gratings)  # cycles per pixel
    tf = rng.uniform(1.0, 4.0, n_gratings)  # Hz
    t = np.arange(n_frames) / frame_rate
    block = np.floor(t / block_duration + _EDGE_TOL).astype(np.int64)
    choice = rng.integers(-1, n_gratings, block.max() + 1)  # -1: grey
    g = choice[block]
    t_in = t - block * block_duration
    phase0 = rng.uniform(0, 2 * np.pi, block.max() + 1)[block]
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    gi = np.maximum(g, 0)
    proj = np.cos(theta[gi])[:, None, None] * x[None] + np.sin(theta[gi])[:, None, None] * y[None]
    drifting = gi % 2 == 0
    temporal = 2 * np.pi * tf[gi] * t_in
    spatial = 2 * np.pi * sf[gi][:, None, None] * proj + phase0[:, None, None]
    frames = np.where(
        drifting[:, None, None],
        np.cos(spatial - temporal[:, None, None]),
        np.cos(spatial) * np.cos(temporal)[:, None, None],
    )
    frames[g < 0] = 0.0
    return frames.astype(np.float32)


def _gabors(rng, n, shape):
    H, W = shape
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    cy, cx = rng.uniform(0, H, n), rng.uniform(0, W, n)
    sigma = rng.uniform(0.12, 0.25, n) * min(H, W)
    theta = rng.uniform(0, np.pi, n)
    sf = rng.uniform(0.06, 0.15, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    dx, dy = x[None] - cx[:, None, None], y[None] - cy[:, None, None]
    along = np.cos(theta)[:, None, None] * dx + np.sin(theta)[:, None, None] * dy
    envelope = np.exp(-(dx**2 + dy**2) / (2 * sigma[:, None, None] ** 2))
    rf = envelope * np.cos(2 * np.pi * sf[:, None, None] * along + phase[:, None, None])
    norm = np.linalg.norm(rf.reshape(n, -1), axis=1)
    return rf / np.maximum(norm, 1e-12)[:, None, None]


def _connectivity(rng, n, n_hubs, p_connect, hub_p_connect, strength, exc_fraction, max_delay):
    hubs = np.sort(rng.choice(n, size=n_hubs, replace=False))
    excitatory = rng.random(n) < exc_fraction
    excitatory[hubs] = True
    p = np.full((n, n), p_connect)  # p[i, j]: probability of j -> i
    p[:, hubs] = hub_p_connect
    connected = rng.random((n, n)) < p
    np.fill_diagonal(connected, False)
    magnitude = strength * rng.uniform(0.5, 1.0, (n, n))
    sign = np.where(excitatory, 1.0, -1.0)[None, :]
    delays = rng.integers(1, max_delay + 1, (n, n))
    if strength == 0:
        connected[:] = False
    adjacency = np.where(connected, sign * magnitude, 0.0)
    return adjacency, np.where(connected, delays, 0), hubs, excitatory


def simulate_spiking_circuit(
    n_neurons: int = 40,
    n_hubs: int = 3,
    duration: float = 60.0,
    dt: float = 0.01,
    seed: int | None = 0,
    *,
    baseline_rate: float = 5.0,
    p_connect: float = 0.05,
    hub_p_connect: float = 0.6,
    coupling_strength: float = 1.5,
    excitatory_fraction: float = 0.8,
    max_delay: int = 3,
    refractory: float = 4.0,
    refractory_bins: int = 2,
    stimulus_gain: float = 0.8,
    frame_rate: float = 20.0,
    frame_shape: tuple[int, int] = (15, 20),
    n_gratings: int = 4,
    block_duration: float = 1.0,
    n_behavior: int = 1,
    behavior_rate: float = 20.0,
    behavior_tau: float = 0.25,
    behavior_noise: float = 0.1,
    max_rate: float = 200.0,
) -> SimulatedCircuit:
    """Simulate a stimulus-driven spiking circuit whose directed connectivity is known.

    The model is described in :mod:`data_loaders.simulate.spikes`. The loop
    runs over time bins, each step vectorised over neurons; 40 neurons for
    60 s at 10 ms take well under a second.

    Parameters
    ----------
    n_neurons, n_hubs : int
        Circuit size and number of hub neurons (``n_hubs < n_neurons``).
    duration, dt : float
        Seconds recorded and seconds per bin; ``n_bins = round(duration / dt)``.
    seed : int or None, default=0
    baseline_rate : float, default=5.0
        Median baseline rate, Hz (each neuron's is log-normal around it, sd 0.4 in log).
    p_connect, hub_p_connect : float
        Connection probability from an ordinary neuron and from a hub.
    coupling_strength : float, default=1.5
        Scale of the coupling weights (log-rate units); 0 switches coupling off.
    excitatory_fraction : float, default=0.8
        Share of excitatory neurons (hubs are always excitatory).
    max_delay : int, default=3
        Coupling delays are drawn from ``1 .. max_delay`` bins.
    refractory : float, default=4.0
        Log-rate drop in the bin after a spike (halving each further bin).
    refractory_bins : int, default=2
        Bins of self-inhibition (0 for none).
    stimulus_gain : float, default=0.8
        Log-rate per unit of receptive-field response.
    frame_rate : float, default=20.0
        Stimulus frames per second.
    frame_shape : (int, int), default=(15, 20)
        ``(H, W)`` pixels.
    n_gratings : int, default=4
        Distinct gratings; blocks show one of them or grey.
    block_duration : float, default=1.0
        Seconds per stimulus block.
    n_behavior : int, default=1
        Behaviour variables.
    behavior_rate : float, default=20.0
        Behaviour samples per second.
    behavior_tau : float, default=0.25
        Seconds, smoothing of the population activity.
    behavior_noise : float, default=0.1
        Noise sd relative to the readout's (unit) sd.
    max_rate : float, default=200.0
        Hz, cap of the intensity.

    Returns
    -------
    SimulatedCircuit

    Raises
    ------
    InputError
        A setting out of range (e.g. ``n_hubs >= n_neurons``, ``duration``
        shorter than one frame, probabilities outside ``[0, 1]``).
    InputTypeError
        A setting of the wrong type.

    Examples
    --------
    >>> sim = simulate_spiking_circuit(n_neurons=12, n_hubs=2, duration=5.0, seed=1)
    >>> sim.counts.shape, sim.stimulus.shape, sim.behavior.shape, sim.adjacency.shape
    ((12, 500), (100, 15, 20), (100, 1), (12, 12))
    >>> bool((sim.adjacency[:, sim.hubs] > 0).sum(axis=0).min() >= 3)  # hubs project widely
    True
    """
    n = check_int("n_neurons", n_neurons, minimum=2)
    n_hubs = check_int("n_hubs", n_hubs, minimum=0)
    if n_hubs >= n:
        raise InputError(f"n_hubs must be < n_neurons = {n}; got {n_hubs}.")
    dt = check_float("dt", dt, minimum=0.0, strict_minimum=True)
    duration = check_float("duration", duration, minimum=0.0, strict_minimum=True)
    seed = check_int("seed", seed, allow_none=True)
    baseline_rate = check_float("baseline_rate", baseline_rate, minimum=0.0, strict_minimum=True)
    p_connect = check_float("p_connect", p_connect, minimum=0.0, maximum=1.0)
    hub_p_connect = check_float("hub_p_connect", hub_p_connect, minimum=0.0, maximum=1.0)
    coupling_strength = check_float("coupling_strength", coupling_strength, minimum=0.0)
    exc = check_float("excitatory_fraction", excitatory_fraction, minimum=0.0, maximum=1.0)
    max_delay = check_int("max_delay", max_delay, minimum=1)
    refractory = check_float("refractory", refractory, minimum=0.0)
    refractory_bins = check_int("refractory_bins", refractory_bins, minimum=0)
    stimulus_gain = check_float("stimulus_gain", stimulus_gain)
    frame_rate = check_float("frame_rate", frame_rate, minimum=0.0, strict_minimum=True)
    if isinstance(frame_shape, (str, bytes)) or np.ndim(frame_shape) != 1 or len(frame_shape) != 2:
        raise InputError(f"frame_shape must be (H, W); got {frame_shape!r}.")
    frame_shape = (
        check_int("frame_shape[0]", frame_shape[0], minimum=2),
        check_int("frame_shape[1]", frame_shape[1], minimum=2),
    )
    n_gratings = check_int("n_gratings", n_gratings, minimum=1)
    block_duration = check_float("block_duration", block_duration, minimum=0.0, strict_minimum=True)
    n_behavior = check_int("n_behavior", n_behavior, minimum=1)
    behavior_rate = check_float("behavior_rate", behavior_rate, minimum=0.0, strict_minimum=True)
    behavior_tau = check_float("behavior_tau", behavior_tau, minimum=0.0, strict_minimum=True)
    behavior_noise = check_float("behavior_noise", behavior_noise, minimum=0.0)
    max_rate = check_float("max_rate", max_rate, minimum=0.0, strict_minimum=True)

    n_bins = round(duration / dt)
    n_frames = int(np.ceil(n_bins * dt * frame_rate - _EDGE_TOL))
    behavior_step = max(round(1.0 / (behavior_rate * dt)), 1)
    if n_bins < 2 or n_frames < 1:
        raise InputError(
            f"duration={duration:g} s is too short for dt={dt:g} s; give at least 2 bins."
        )
    if n_bins < behavior_step:
        raise InputError(
            f"duration={duration:g} s is shorter than one behaviour sample (behavior_rate="
            f"{behavior_rate:g} Hz); lengthen it or raise behavior_rate."
        )
    rng = np.random.default_rng(seed)

    # --- the circuit and its inputs (drawn first, so that settings of the dynamics keep them)
    adjacency, delays, hubs, excitatory = _connectivity(
        rng, n, n_hubs, p_connect, hub_p_connect, coupling_strength, exc, max_delay
    )
    frames = _gratings(rng, n_frames, frame_rate, frame_shape, n_gratings, block_duration)
    rfs = _gabors(rng, n, frame_shape)
    baseline = baseline_rate * np.exp(0.4 * rng.standard_normal(n))
    readout = rng.standard_normal((n, n_behavior)) / np.sqrt(n)

    response = frames.reshape(n_frames, -1).astype(np.float64) @ rfs.reshape(n, -1).T
    response /= max(float(response.std()), 1e-12)
    frame_of_bin = np.minimum(
        np.floor(np.arange(n_bins) * dt * frame_rate + _EDGE_TOL).astype(np.int64), n_frames - 1
    )

    # --- dynamics: a loop over bins, vectorised over neurons
    # coupling by delay, stacked: w_stack[i, (d - 1) * n + j] = A[i, j] if D[i, j] == d
    w_stack = np.concatenate(
        [np.where(delays == d, adjacency, 0.0) for d in range(1, max_delay + 1)], axis=1
    )
    h = -refractory * 0.5 ** np.arange(refractory_bins)  # h[k - 1] for a spike k bins ago
    lags = max(max_delay, refractory_bins, 1)
    history = np.zeros((n_bins + lags, n))  # row lags + t holds bin t
    drive = np.log(baseline)[None, :] + stimulus_gain * response[frame_of_bin]
    log_cap = np.log(max_rate)
    uniform = rng.random((n_bins, n))
    rates = np.empty((n_bins, n), dtype=np.float32)
    smooth = np.empty((n_bins, n))  # population activity through exp(-t / behavior_tau)
    decay = np.exp(-dt / behavior_tau)
    trace = np.zeros(n)
    for t in range(n_bins):
        row = lags + t
        past = history[row - max_delay : row][::-1]  # bins t-1, t-2, ..., t-max_delay
        eta = drive[t] + w_stack @ past.ravel()
        if refractory_bins:
            eta += h @ history[row - refractory_bins : row][::-1]
        rate = np.exp(np.minimum(eta, log_cap))
        rates[t] = rate
        history[row] = uniform[t] < -np.expm1(-rate * dt)
        trace = decay * trace + (1.0 - decay) * history[row]
        smooth[t] = trace
    binary = history[lags:].T.astype(np.int64)  # (n, n_bins)

    # --- behaviour: a linear readout of the smoothed population activity
    sd = smooth.std(axis=0)
    smooth = (smooth - smooth.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    signal = smooth @ readout
    signal /= np.where(signal.std(axis=0) > 0, signal.std(axis=0), 1.0)
    signal += behavior_noise * rng.standard_normal(signal.shape)
    samples = np.arange(0, n_bins, behavior_step)

    spikes = SpikeTrains.from_counts(binary, dt)
    return SimulatedCircuit(
        spikes=spikes,
        stimulus=frames,
        frame_times=np.arange(n_frames) / frame_rate,
        behavior=signal[samples],
        behavior_times=samples * dt,
        adjacency=adjacency,
        delays=delays.astype(np.int64),
        hubs=hubs.astype(np.int64),
        excitatory=excitatory,
        receptive_fields=rfs,
        behavior_weights=readout,
        baseline_rates=baseline,
        rates=rates.T.copy(),
        dt=dt,
        seed=seed,
    )
