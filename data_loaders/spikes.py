"""Spike trains, with the stimulus and behaviour recorded beside them.

Conventions
    Times are float64 seconds; neuron ids are int64 in ``0 .. n_neurons - 1``.
    A recording covers ``[t_start, t_stop)`` (``t_start >= 0``) and its spikes
    are sorted by time, ties by neuron id. :class:`SpikeTrains` holds one such
    recording and refuses anything else with one line that names the fix.
Sources
    * arrays: :meth:`SpikeTrains.from_arrays` (neuron ids and spike times) and
      :meth:`SpikeTrains.from_counts` (binned counts ``(n_neurons, n_bins)``);
    * NWB: :func:`read_nwb_units` reads a units table (``spike_times`` with its
      ragged index) through pynwb (``pip install 'neuro[nwb]'``), and
      :func:`load_nwb` reads it together with the stimulus and behaviour
      ``TimeSeries`` the caller names, as an :class:`AlignedRecording`.
Alignment
    :class:`AlignedRecording` adds stimulus frames ``(n_frames, H, W)`` with
    the time each frame appears, and behaviour ``(n_samples, n_vars)`` with its
    sample times; every time must be sorted and lie inside the recording.
Splits
    :func:`split_intervals` cuts ``[t_start, t_stop)`` into intervals and deals
    them, without replacement, into train, validation and test sets.

Examples
--------
>>> import numpy as np
>>> spikes = SpikeTrains.from_arrays([2, 0, 1, 0], [0.31, 0.05, 0.05, 0.2], n_neurons=3, t_stop=0.5)
>>> spikes.neuron_ids.tolist(), spikes.times.tolist()     # sorted by time, ties by id
([0, 1, 0, 2], [0.05, 0.05, 0.2, 0.31])
>>> spikes.binned(0.1).tolist()
[[1, 0, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 1, 0]]
>>> spikes.firing_rates().tolist()                        # Hz
[4.0, 2.0, 2.0]
>>> split = split_intervals(0.0, 10.0, n_intervals=10, seed=0)
>>> len(split.train), len(split.val), len(split.test)
(8, 1, 1)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from data_loaders._validation import check_array, check_file, check_float, check_int
from data_loaders.errors import InputError, InputTypeError, UnreadableFileError, one_line

__all__ = [
    "AlignedRecording",
    "IntervalSplit",
    "SpikeTrains",
    "load_nwb",
    "read_nwb_units",
    "split_intervals",
]

_NWB_HINT = "Reading NWB files needs pynwb: pip install 'neuro[nwb]' (or pip install pynwb)."
# a spike this close (in bins) below a bin edge is counted in the bin that starts there, so that
# times written as t_start + k * bin_size land in bin k despite rounding
_EDGE_TOL = 1e-9


# ----------------------------------------------------------------------------- helpers
def _vector(name: str, value: Any, dtype, shape_hint: str) -> np.ndarray:
    """A 1-D array of ``dtype``; empty arrays are allowed (a window may hold no spike)."""
    if value is not None and not isinstance(value, (str, bytes)) and np.size(value) == 0:
        return np.zeros(0, dtype=dtype)
    arr = check_array(name, value, ndim=1, shape_hint=shape_hint)
    if np.dtype(dtype).kind == "i":
        if arr.dtype.kind == "b":
            raise InputTypeError(f"{name} must hold integer neuron ids; got booleans.")
        if arr.dtype.kind == "f":
            if not np.array_equal(arr, np.round(arr)):
                raise InputError(
                    f"{name} must hold whole numbers (neuron ids); got e.g. "
                    f"{arr[arr != np.round(arr)][0]}. Give the integer index of each neuron."
                )
        elif arr.dtype.kind not in "iu":
            raise InputTypeError(f"{name} must hold integer neuron ids; got dtype {arr.dtype}.")
    return arr.astype(dtype, copy=False)


def _check_times_in(
    name: str, times: np.ndarray, t_start: float, t_stop: float, what: str, fix: str
) -> None:
    """Refuse times outside ``[t_start, t_stop)``, naming how many and the first."""
    outside = (times < t_start) | (times >= t_stop)
    if outside.any():
        first = float(times[np.argmax(outside)])
        raise InputError(
            f"{name}: {int(outside.sum())} {what} outside the recording [{t_start:g}, "
            f"{t_stop:g}) s (first: {first:g} s); {fix}"
        )


def _check_sorted(name: str, times: np.ndarray, strict: bool, fix: str) -> None:
    step = np.diff(times)
    bad = step <= 0 if strict else step < 0
    if bad.any():
        k = int(np.argmax(bad))
        order = "strictly increasing" if strict else "sorted (non-decreasing)"
        raise InputError(
            f"{name} must be {order}; entry {k + 1} ({times[k + 1]:g} s) follows "
            f"{times[k]:g} s. {fix}"
        )


def _names(names, n: int, what: str) -> tuple[str, ...] | None:
    if names is None:
        return None
    if isinstance(names, (str, bytes)):
        raise InputTypeError(f"{what} must be a sequence of strings, one per neuron; got a string.")
    names = tuple(v.decode() if isinstance(v, bytes) else str(v) for v in names)
    if len(names) != n:
        raise InputError(
            f"{what} has {len(names)} entries but there are {n} neurons; give one each."
        )
    if len(set(names)) != n:
        dup = sorted({v for v in names if names.count(v) > 1})
        raise InputError(f"{what} must be unique; repeated: {dup[:5]}.")
    return names


# ----------------------------------------------------------------------------- spike trains
@dataclass(eq=False)
class SpikeTrains:
    """The spikes of ``n_neurons`` neurons recorded over ``[t_start, t_stop)``.

    Build it with :meth:`from_arrays` (which sorts) or :meth:`from_counts`;
    the constructor itself checks everything and sorts nothing.

    Parameters
    ----------
    neuron_ids : array-like of shape (n_spikes,), int
        The neuron of each spike, in ``0 .. n_neurons - 1``.
    times : array-like of shape (n_spikes,), float
        Spike times in seconds, in ``[t_start, t_stop)``, sorted by time and,
        for equal times, by neuron id.
    n_neurons : int
        Number of neurons (some may never fire).
    t_start, t_stop : float
        The recorded interval in seconds, ``0 <= t_start < t_stop``.
    neuron_names : sequence of str, optional
        One unique name per neuron.

    Raises
    ------
    InputError
        Negative times, times outside ``[t_start, t_stop)``, unsorted spikes,
        neuron ids out of range, arrays of different lengths, names of the
        wrong length.
    InputTypeError
        Non-numeric arrays or non-integer neuron ids.

    Examples
    --------
    >>> s = SpikeTrains([0, 1], [0.1, 0.4], n_neurons=2, t_start=0.0, t_stop=1.0)
    >>> len(s), s.duration
    (2, 1.0)
    >>> s.window(0.2, 1.0).times.tolist()
    [0.4]
    """

    neuron_ids: np.ndarray
    times: np.ndarray
    n_neurons: int
    t_start: float
    t_stop: float
    neuron_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.n_neurons = check_int("n_neurons", self.n_neurons, minimum=1)
        self.t_start = check_float("t_start", self.t_start, minimum=0.0)
        self.t_stop = check_float("t_stop", self.t_stop)
        if self.t_stop <= self.t_start:
            raise InputError(
                f"t_stop must be greater than t_start; got t_start={self.t_start:g} s, "
                f"t_stop={self.t_stop:g} s."
            )
        ids = _vector("neuron_ids", self.neuron_ids, np.int64, "(n_spikes,)")
        times = _vector("times", self.times, np.float64, "(n_spikes,)")
        if len(ids) != len(times):
            raise InputError(
                f"neuron_ids and times must have one entry per spike; got {len(ids)} neuron ids "
                f"and {len(times)} times."
            )
        if len(ids):
            if ids.min() < 0:
                raise InputError(
                    f"neuron_ids must be >= 0 (neuron indices count from 0); got "
                    f"{int((ids < 0).sum())} negative (first: {int(ids[ids < 0][0])})."
                )
            if ids.max() >= self.n_neurons:
                bad = ids[ids >= self.n_neurons]
                raise InputError(
                    f"neuron_ids must lie in 0..{self.n_neurons - 1} (n_neurons={self.n_neurons}); "
                    f"got {len(bad)} out of range (first: {int(bad[0])}). Number neurons from 0, "
                    "or raise n_neurons."
                )
            if times.min() < 0:
                raise InputError(
                    f"times must be >= 0 s (seconds from the start of the session); got "
                    f"{int((times < 0).sum())} negative (min {times.min():g} s). Shift them, "
                    "e.g. times - times.min()."
                )
            _check_times_in(
                "times",
                times,
                self.t_start,
                self.t_stop,
                "spike(s)",
                "widen t_start/t_stop, or drop those spikes.",
            )
            dt = np.diff(times)
            bad = (dt < 0) | ((dt == 0) & (np.diff(ids) < 0))
            if bad.any():
                k = int(np.argmax(bad)) + 1
                raise InputError(
                    f"spikes must be sorted by time, ties by neuron id; spike {k} (neuron "
                    f"{ids[k]}, {times[k]:g} s) follows (neuron {ids[k - 1]}, {times[k - 1]:g} s). "
                    "Build them with SpikeTrains.from_arrays(..., sort=True)."
                )
        self.neuron_ids, self.times = ids, times
        self.neuron_names = _names(self.neuron_names, self.n_neurons, "neuron_names")

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_arrays(
        cls,
        neuron_ids,
        times,
        n_neurons: int | None = None,
        t_start: float | None = None,
        t_stop: float | None = None,
        sort: bool = True,
        neuron_names: Sequence[str] | None = None,
    ) -> SpikeTrains:
        """Spike trains from the neuron id and time of each spike.

        Parameters
        ----------
        neuron_ids : array-like of shape (n_spikes,), int
        times : array-like of shape (n_spikes,), float
            Seconds, ``>= 0``.
        n_neurons : int, optional
            Default: ``len(neuron_names)`` if given, else ``max(neuron_ids) + 1``.
        t_start : float, optional
            Default 0.0 (the session's start).
        t_stop : float, optional
            Default: just after the last spike (the next float64 up), so that
            every spike lies inside ``[t_start, t_stop)``. Required when there
            is no spike.
        sort : bool, default=True
            Sort the spikes by time, ties by neuron id (stable). With False,
            unsorted spikes are refused.
        neuron_names : sequence of str, optional

        Returns
        -------
        SpikeTrains

        Raises
        ------
        InputError
            As :class:`SpikeTrains`; also no spikes and no ``t_stop``.
        """
        if not isinstance(sort, (bool, np.bool_)):
            raise InputTypeError(f"sort must be True or False; got {sort!r}.")
        ids = _vector("neuron_ids", neuron_ids, np.int64, "(n_spikes,)")
        times = _vector("times", times, np.float64, "(n_spikes,)")
        if len(ids) != len(times):
            raise InputError(
                f"neuron_ids and times must have one entry per spike; got {len(ids)} neuron ids "
                f"and {len(times)} times."
            )
        if n_neurons is None:
            if neuron_names is not None and not isinstance(neuron_names, (str, bytes)):
                n_neurons = len(neuron_names)
            elif len(ids):
                n_neurons = max(int(ids.max()) + 1, 1)
            else:
                raise InputError("there are no spikes: give n_neurons (and t_stop).")
        if t_start is None:
            t_start = 0.0
        if t_stop is None:
            if not len(times):
                raise InputError("there are no spikes: give t_stop (seconds) for the recording.")
            t_stop = float(np.nextafter(times.max(), np.inf))
        if sort and len(ids):
            order = np.lexsort((ids, times))
            ids, times = ids[order], times[order]
        return cls(ids, times, n_neurons, t_start, t_stop, neuron_names)

    @classmethod
    def from_counts(
        cls,
        counts,
        bin_size: float,
        t_start: float = 0.0,
        neuron_names: Sequence[str] | None = None,
    ) -> SpikeTrains:
        """Spike trains from binned counts; each counted spike sits at its bin's start.

        Parameters
        ----------
        counts : array-like of shape (n_neurons, n_bins), int
            Non-negative whole numbers.
        bin_size : float
            Seconds per bin.
        t_start : float, default=0.0
            Start of the first bin; ``t_stop = t_start + n_bins * bin_size``.
        neuron_names : sequence of str, optional

        Returns
        -------
        SpikeTrains
            ``binned(bin_size)`` gives ``counts`` back.

        Examples
        --------
        >>> s = SpikeTrains.from_counts([[0, 2, 0], [1, 0, 1]], bin_size=0.01)
        >>> s.neuron_ids.tolist(), s.times.tolist(), s.t_stop
        ([1, 0, 0, 1], [0.0, 0.01, 0.01, 0.02], 0.03)
        """
        c = check_array("counts", counts, ndim=2, shape_hint="(n_neurons, n_bins)")
        if c.dtype.kind == "b":
            c = c.astype(np.int64)
        if (c < 0).any() or not np.array_equal(c, np.round(c)):
            raise InputError(
                "counts must be non-negative whole numbers of spikes per bin; got "
                f"{'negative' if (c < 0).any() else 'fractional'} values (did you pass rates?)."
            )
        c = c.astype(np.int64)
        bin_size = check_float("bin_size", bin_size, minimum=0.0, strict_minimum=True)
        t_start = check_float("t_start", t_start, minimum=0.0)
        n_neurons, n_bins = c.shape
        flat = c.T.ravel()  # bin-major: ties (one bin) ordered by neuron id
        spikes = np.repeat(np.arange(flat.size), flat)
        bins, ids = np.divmod(spikes, n_neurons)
        times = t_start + bins * bin_size
        return cls(ids, times, n_neurons, t_start, t_start + n_bins * bin_size, neuron_names)

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        """The number of spikes."""
        return int(self.times.size)

    def __repr__(self) -> str:
        return (
            f"SpikeTrains({len(self)} spikes, n_neurons={self.n_neurons}, "
            f"[{self.t_start:g}, {self.t_stop:g}) s)"
        )

    @property
    def duration(self) -> float:
        """``t_stop - t_start``, seconds."""
        return self.t_stop - self.t_start

    def firing_rates(self) -> np.ndarray:
        """Mean firing rate of each neuron over the recording, Hz, shape ``(n_neurons,)``."""
        return np.bincount(self.neuron_ids, minlength=self.n_neurons) / self.duration

    def binned(
        self, bin_size: float, t_start: float | None = None, t_stop: float | None = None
    ) -> np.ndarray:
        """Spike counts per neuron and bin.

        Parameters
        ----------
        bin_size : float
            Seconds per bin.
        t_start, t_stop : float, optional
            The binned interval, inside the recording; default the whole
            recording. Bins start at ``t_start``; the last one may be cut short
            by ``t_stop``.

        Returns
        -------
        ndarray of shape (n_neurons, n_bins), int64
            ``n_bins = ceil((t_stop - t_start) / bin_size)``. A spike within
            1e-9 bins below a bin edge counts in the bin starting there.
        """
        bin_size = check_float("bin_size", bin_size, minimum=0.0, strict_minimum=True)
        t0, t1 = self._interval(t_start, t_stop)
        n_bins = max(int(np.ceil((t1 - t0) / bin_size - _EDGE_TOL)), 1)
        lo, hi = np.searchsorted(self.times, [t0, t1], side="left")
        times, ids = self.times[lo:hi], self.neuron_ids[lo:hi]
        bins = np.floor((times - t0) / bin_size + _EDGE_TOL).astype(np.int64)
        bins = np.minimum(bins, n_bins - 1)
        counts = np.zeros((self.n_neurons, n_bins), dtype=np.int64)
        np.add.at(counts, (ids, bins), 1)
        return counts

    def window(self, t0: float, t1: float) -> SpikeTrains:
        """The spikes in ``[t0, t1)``, a recording of its own (times stay absolute).

        Parameters
        ----------
        t0, t1 : float
            Seconds, ``t_start <= t0 < t1 <= t_stop``.

        Returns
        -------
        SpikeTrains
            With ``t_start=t0``, ``t_stop=t1``, the same neurons and names.
        """
        t0, t1 = self._interval(t0, t1, names=("t0", "t1"))
        lo, hi = np.searchsorted(self.times, [t0, t1], side="left")
        return SpikeTrains(
            self.neuron_ids[lo:hi].copy(),
            self.times[lo:hi].copy(),
            self.n_neurons,
            t0,
            t1,
            self.neuron_names,
        )

    def _interval(self, t0, t1, names=("t_start", "t_stop")) -> tuple[float, float]:
        t0 = self.t_start if t0 is None else check_float(names[0], t0)
        t1 = self.t_stop if t1 is None else check_float(names[1], t1)
        if not (self.t_start <= t0 < t1 <= self.t_stop):
            raise InputError(
                f"{names[0]}={t0:g} s and {names[1]}={t1:g} s must satisfy "
                f"{self.t_start:g} <= {names[0]} < {names[1]} <= {self.t_stop:g} (the recording)."
            )
        return t0, t1


# ----------------------------------------------------------------------------- aligned recording
@dataclass(eq=False)
class AlignedRecording:
    """Spikes with the stimulus frames and behaviour recorded on the same clock.

    Parameters
    ----------
    spikes : SpikeTrains
    stimulus : array-like of shape (n_frames, H, W), optional
        Frames (e.g. a movie); frame ``k`` is on screen from
        ``frame_times[k]`` until the next frame time.
    frame_times : array-like of shape (n_frames,), optional
        Seconds, strictly increasing, inside ``[t_start, t_stop)`` of the
        spikes. Required with ``stimulus``.
    behavior : array-like of shape (n_samples,) or (n_samples, n_vars), optional
        Behaviour variables (running speed, pupil size, ...); stored 2-D.
    behavior_times : array-like of shape (n_samples,), optional
        Seconds, strictly increasing, inside the recording. Required with
        ``behavior``.
    behavior_names : sequence of str, optional
        One name per behaviour variable.

    Raises
    ------
    InputError
        Times unsorted or outside the recording, or a number of times that
        differs from the number of frames or samples; times without data or
        data without times.
    InputTypeError
        ``spikes`` is not a :class:`SpikeTrains`.

    Examples
    --------
    >>> spikes = SpikeTrains.from_arrays([0, 1], [0.1, 0.3], t_stop=1.0)
    >>> rec = AlignedRecording(spikes, np.zeros((4, 3, 5)), np.arange(4) * 0.25,
    ...                        behavior=np.arange(10.0), behavior_times=np.arange(10) * 0.1)
    >>> rec.behavior.shape, rec.frame_index([0.0, 0.3, 0.99]).tolist()
    ((10, 1), [0, 1, 3])
    >>> rec.window(0.25, 0.75).frame_times.tolist()
    [0.25, 0.5]
    """

    spikes: SpikeTrains
    stimulus: np.ndarray | None = None
    frame_times: np.ndarray | None = None
    behavior: np.ndarray | None = None
    behavior_times: np.ndarray | None = None
    behavior_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.spikes, SpikeTrains):
            raise InputTypeError(
                f"spikes must be a SpikeTrains; got {type(self.spikes).__name__}. Build it with "
                "SpikeTrains.from_arrays(neuron_ids, times)."
            )
        if self.stimulus is not None or self.frame_times is not None:
            self.stimulus, self.frame_times = self._stream(
                "stimulus", self.stimulus, "frame_times", self.frame_times, (3,), "frame(s)"
            )
        if self.behavior is not None or self.behavior_times is not None:
            self.behavior, self.behavior_times = self._stream(
                "behavior",
                self.behavior,
                "behavior_times",
                self.behavior_times,
                (1, 2),
                "sample(s)",
            )
            if self.behavior.ndim == 1:
                self.behavior = self.behavior[:, None]
            self.behavior_names = _names(
                self.behavior_names, self.behavior.shape[1], "behavior_names"
            )
        elif self.behavior_names is not None:
            raise InputError("behavior_names were given without behavior; give both or neither.")

    def _stream(self, name, data, times_name, times, ndim, what):
        if data is None or times is None:
            given, missing = (name, times_name) if times is None else (times_name, name)
            raise InputError(
                f"{given} was given without {missing}; give both (the {what} and the time of each)."
            )
        shape = "(n_frames, H, W)" if name == "stimulus" else "(n_samples, n_vars)"
        data = check_array(name, data, ndim=ndim, shape_hint=shape, finite=False)
        times = check_array(times_name, times, ndim=1, shape_hint="(n,)", dtype=np.float64)
        if len(times) != len(data):
            raise InputError(
                f"{times_name} has {len(times)} times but {name} has {len(data)} {what}; give one "
                f"time per {what[:-3]}."
            )
        _check_sorted(times_name, times, strict=True, fix="Sort the data by time.")
        _check_times_in(
            times_name,
            times,
            self.spikes.t_start,
            self.spikes.t_stop,
            what,
            "the data must be on the spikes' clock: crop it to the recording, or widen t_start/"
            "t_stop of the spikes.",
        )
        return data, times

    @property
    def n_neurons(self) -> int:
        """Number of neurons of :attr:`spikes`."""
        return self.spikes.n_neurons

    def frame_index(self, times) -> np.ndarray:
        """Index of the frame on screen at each of ``times`` (``-1`` before the first frame).

        Parameters
        ----------
        times : array-like of float
            Seconds.

        Returns
        -------
        ndarray of int64, the shape of ``times``
        """
        if self.frame_times is None:
            raise InputError("this recording has no stimulus; give stimulus and frame_times.")
        t = np.asarray(times, dtype=np.float64)
        return np.searchsorted(self.frame_times, t, side="right").astype(np.int64) - 1

    def window(self, t0: float, t1: float) -> AlignedRecording:
        """The recording restricted to ``[t0, t1)``: spikes, frames and samples inside it."""
        spikes = self.spikes.window(t0, t1)
        stim = ft = beh = bt = None
        if self.frame_times is not None:
            keep = (self.frame_times >= spikes.t_start) & (self.frame_times < spikes.t_stop)
            stim, ft = self.stimulus[keep], self.frame_times[keep]
            if not keep.any():
                stim = ft = None
        if self.behavior_times is not None:
            keep = (self.behavior_times >= spikes.t_start) & (self.behavior_times < spikes.t_stop)
            beh, bt = self.behavior[keep], self.behavior_times[keep]
            if not keep.any():
                beh = bt = None
        names = self.behavior_names if beh is not None else None
        return AlignedRecording(spikes, stim, ft, beh, bt, names)


# ----------------------------------------------------------------------------- splits
class IntervalSplit(NamedTuple):
    """Train, validation and test intervals ``[(a, b), ...]``, each list sorted by time."""

    train: list[tuple[float, float]]
    val: list[tuple[float, float]]
    test: list[tuple[float, float]]


def split_intervals(
    t_start: float,
    t_stop: float,
    n_intervals: int | None = None,
    interval: float | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int | None = 0,
) -> IntervalSplit:
    """Cut ``[t_start, t_stop)`` into intervals and deal them into train/val/test.

    Each interval goes to exactly one set (drawn without replacement), so the
    three sets are disjoint and together cover the whole recording.

    Parameters
    ----------
    t_start, t_stop : float
        The recording, seconds.
    n_intervals : int, optional
        Cut into this many equal intervals. Give this or ``interval``.
    interval : float, optional
        Cut into intervals of this many seconds; the last one ends at
        ``t_stop`` and may be shorter.
    fractions : (float, float, float), default=(0.8, 0.1, 0.1)
        Shares of the intervals for train, validation and test; non-negative,
        summing to 1. Counts are rounded by largest remainder, and each set
        with a positive share gets at least one interval when there are enough.
    seed : int or None, default=0
        Seeds the draw.

    Returns
    -------
    IntervalSplit
        ``train``, ``val``, ``test``: lists of ``(a, b)`` tuples, sorted.

    Raises
    ------
    InputError
        Both or neither of ``n_intervals`` and ``interval``; fractions that
        are not three non-negative numbers summing to 1; ``t_stop <= t_start``;
        fewer intervals than sets with a positive share.

    Examples
    --------
    >>> s = split_intervals(0.0, 6.0, interval=2.5, fractions=(0.4, 0.3, 0.3), seed=1)
    >>> sorted(s.train + s.val + s.test)
    [(0.0, 2.5), (2.5, 5.0), (5.0, 6.0)]
    """
    t_start = check_float("t_start", t_start)
    t_stop = check_float("t_stop", t_stop)
    if t_stop <= t_start:
        raise InputError(f"t_stop must be > t_start; got t_start={t_start:g}, t_stop={t_stop:g}.")
    if (n_intervals is None) == (interval is None):
        raise InputError(
            "give exactly one of n_intervals (how many equal intervals) and interval (seconds "
            "each)."
        )
    if n_intervals is not None:
        n = check_int("n_intervals", n_intervals, minimum=1)
        edges = np.linspace(t_start, t_stop, n + 1)
    else:
        interval = check_float("interval", interval, minimum=0.0, strict_minimum=True)
        n = max(int(np.ceil((t_stop - t_start) / interval - 1e-9)), 1)
        edges = np.minimum(t_start + interval * np.arange(n + 1), t_stop)
        edges[-1] = t_stop
    if isinstance(fractions, (str, bytes)) or np.ndim(fractions) != 1 or len(fractions) != 3:
        raise InputError(f"fractions must be three numbers (train, val, test); got {fractions!r}.")
    frac = np.array(
        [check_float(f"fractions[{k}]", f, minimum=0.0) for k, f in enumerate(fractions)]
    )
    if abs(frac.sum() - 1.0) > 1e-6:
        raise InputError(f"fractions must sum to 1; got {frac.tolist()} (sum {frac.sum():g}).")
    seed = check_int("seed", seed, allow_none=True)
    positive = frac > 0
    if n < positive.sum():
        raise InputError(
            f"{n} interval(s) cannot fill {int(positive.sum())} sets; use more intervals "
            "(n_intervals, or a shorter interval)."
        )
    counts = np.floor(frac * n).astype(int)
    for k in np.argsort(-(frac * n - counts), kind="stable")[: n - counts.sum()]:
        counts[k] += 1
    for k in np.flatnonzero(positive & (counts == 0)):  # every wanted set gets one
        donor = int(np.argmax(counts))
        counts[donor] -= 1
        counts[k] += 1
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0, *counts])
    sets = []
    for k in range(3):
        picked = np.sort(order[bounds[k] : bounds[k + 1]])
        sets.append([(float(edges[i]), float(edges[i + 1])) for i in picked])
    return IntervalSplit(*sets)


# ----------------------------------------------------------------------------- NWB
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError)


def _check_nwb_file(name: str, path) -> Path:
    path = check_file(name, path)
    with open(path, "rb") as fh:
        head = fh.read(2048 + 8)
    if not any(head[k : k + 8] == _HDF5_MAGIC for k in (0, 512, 1024, 2048)):
        raise UnreadableFileError(
            f"{str(path)!r} cannot be read as an NWB file: its first bytes are not those of an "
            "HDF5 file (another format, or damaged)."
        )
    return path


@contextlib.contextmanager
def _open_nwb(path: Path):
    try:
        from pynwb import NWBHDF5IO
    except ImportError as err:  # pragma: no cover - pynwb is in the nwb extra
        raise ImportError(_NWB_HINT) from err
    io = None
    try:
        io = NWBHDF5IO(str(path), "r")
        nwb = io.read()
    except _READ_ERRORS as err:
        if io is not None:
            with contextlib.suppress(Exception):
                io.close()
        raise UnreadableFileError(
            f"{str(path)!r} cannot be read as an NWB file ({one_line(err)}). Check that it was "
            "copied completely, or write it again."
        ) from None
    try:
        yield io, nwb
    finally:
        io.close()


def _object_paths(io, nwb, kind: str) -> dict[str, Any]:
    """Every object of neurodata type ``kind`` (or a subtype) in the file, by its HDF5 path."""
    from hdmf.container import AbstractContainer

    out = {}
    for obj in nwb.all_children():
        if not isinstance(obj, AbstractContainer):
            continue
        if not any(c.__name__ == kind for c in type(obj).__mro__):
            continue
        builder = io.manager.get_builder(obj)
        path = builder.path if builder is not None else obj.name
        out[path.removeprefix("root/").strip("/")] = obj
    return out


def _find(io, nwb, where: str, kind: str, what: str, path: Path):
    if not isinstance(where, str) or not where.strip("/"):
        raise InputTypeError(f"{what} must be the path of a {kind} in the file; got {where!r}.")
    found = _object_paths(io, nwb, kind)
    key = where.strip("/")
    if key in found:
        return found[key]
    by_name = [p for p, obj in found.items() if obj.name == key]
    if len(by_name) == 1:
        return found[by_name[0]]
    listed = ", ".join(sorted(found)[:10]) or "none"
    extra = f" ({len(by_name)} have that name: give the full path)" if by_name else ""
    raise InputError(f"{path}: no {kind} at {what}={where!r}{extra}; the file's are: {listed}.")


def _series(ts) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(ts.data[()])
    if ts.timestamps is not None:
        times = np.asarray(ts.timestamps[()], dtype=np.float64)
    else:
        start = float(ts.starting_time or 0.0)
        times = start + np.arange(len(data), dtype=np.float64) / float(ts.rate)
    return data, times


def _units_spikes(io, nwb, path: Path, units: str | None, name_column: str | None):
    if units is None:
        table = nwb.units
        if table is None:
            others = sorted(_object_paths(io, nwb, "Units"))
            hint = (
                f"; Units tables elsewhere: {', '.join(others)} (pass units=)"
                if others
                else "; spike_times are read from a units table (sorted spikes per unit)"
            )
            raise InputError(f"{path}: the NWB file has no units table{hint}.")
    else:
        table = _find(io, nwb, units, "Units", "units", path)
    if "spike_times" not in table.colnames:
        raise InputError(
            f"{path}: the units table has no spike_times column (columns: {list(table.colnames)})."
        )
    n_units = len(table.id)
    if n_units == 0:
        raise InputError(f"{path}: the units table is empty (no units).")
    flat = np.asarray(table["spike_times"].target.data[()], dtype=np.float64)
    ends = np.asarray(table["spike_times"].data[()], dtype=np.int64)
    ids = np.repeat(np.arange(n_units, dtype=np.int64), np.diff(np.concatenate([[0], ends])))
    if name_column is not None:
        if name_column not in table.colnames:
            raise InputError(
                f"{path}: the units table has no column {name_column!r} (columns: "
                f"{list(table.colnames)})."
            )
        names = [str(v.decode() if isinstance(v, bytes) else v) for v in table[name_column][:]]
    else:
        names = [str(v) for v in np.asarray(table.id[:]).tolist()]
    bounds = None
    if "obs_intervals" in table.colnames:
        obs = np.asarray(table["obs_intervals"].target.data[()], dtype=np.float64)
        if obs.size:
            bounds = (float(obs[:, 0].min()), float(obs[:, 1].max()))
    return ids, flat[: len(ids)], n_units, names, bounds


def read_nwb_units(
    path,
    t_start: float | None = None,
    t_stop: float | None = None,
    units: str | None = None,
    name_column: str | None = None,
) -> SpikeTrains:
    """Read the spikes of an NWB file's units table, one neuron per unit.

    Parameters
    ----------
    path : str or path
        An ``.nwb`` file (HDF5), opened read-only and never modified.
    t_start, t_stop : float, optional
        The recording, seconds. Default: the span of the units'
        ``obs_intervals`` when the table has them, else ``t_start=0`` (the
        session's reference time) and ``t_stop`` just after the last spike.
        Spikes outside an explicit interval are an error; use
        :meth:`SpikeTrains.window` after reading to keep a part.
    units : str, optional
        Path or name of the ``Units`` table, for files that keep it elsewhere
        than ``/units`` (e.g. ``"processing/ecephys/units"``).
    name_column : str, optional
        A column of the units table holding neuron names; default the unit ids.

    Returns
    -------
    SpikeTrains
        Neuron ``k`` is row ``k`` of the units table.

    Raises
    ------
    ImportError
        pynwb is not installed (``pip install 'neuro[nwb]'``).
    MissingFileError
        ``path`` does not exist.
    UnreadableFileError
        The file is empty, truncated, damaged, or not an NWB file.
    InputError
        No units table, no ``spike_times`` column, an unknown ``name_column``;
        spike times refused by :class:`SpikeTrains` (negative, outside the
        interval).
    """
    path = _check_nwb_file("path", path)
    with _open_nwb(path) as (io, nwb):
        ids, times, n, names, bounds = _units_spikes(io, nwb, path, units, name_column)
    return _spikes_from_nwb(path, ids, times, n, names, bounds, t_start, t_stop, ends=())


def _spikes_from_nwb(path, ids, times, n, names, bounds, t_start, t_stop, ends) -> SpikeTrains:
    """The SpikeTrains of a file, with the recording's interval from the arguments or the file."""
    if t_start is None:
        t_start = bounds[0] if bounds else 0.0
    if t_stop is None and bounds:
        t_stop = bounds[1]
    elif t_stop is None:
        last = [float(np.nextafter(times.max(), np.inf))] if times.size else []
        if not last and not ends:
            raise InputError(f"{path}: the units hold no spike; give t_stop (seconds).")
        t_stop = max([*last, *ends])
    try:
        return SpikeTrains.from_arrays(ids, times, n, t_start, t_stop, neuron_names=names)
    except InputError as err:
        raise type(err)(f"{path}: {err}") from None


def load_nwb(
    path,
    stimulus: str | None = None,
    behavior: str | Sequence[str] | None = None,
    t_start: float | None = None,
    t_stop: float | None = None,
    units: str | None = None,
    name_column: str | None = None,
) -> AlignedRecording:
    """Read an NWB file's spikes with the stimulus and behaviour series the caller names.

    Parameters
    ----------
    path : str or path
        An ``.nwb`` file, opened read-only.
    stimulus : str, optional
        Path (or unique name) of a ``TimeSeries`` of frames ``(n_frames, H,
        W)``, e.g. ``"stimulus/presentation/movie"`` (an ``ImageSeries``).
    behavior : str or sequence of str, optional
        Path(s) of behaviour ``TimeSeries``, e.g.
        ``"processing/behavior/running_speed"``; several must share their
        sample times and are stacked as columns.
    t_start, t_stop : float, optional
        The recording; defaults as in :func:`read_nwb_units`, with ``t_stop``
        widened (when the file has no ``obs_intervals``) to cover the series.
    units, name_column : str, optional
        As in :func:`read_nwb_units`.

    Returns
    -------
    AlignedRecording
        Series times come from their ``timestamps``, else ``starting_time +
        k / rate``.

    Raises
    ------
    InputError
        As :func:`read_nwb_units`; a series that is not in the file (the
        message lists those that are); behaviour series on different clocks;
        series not aligned with the spikes (see :class:`AlignedRecording`).
    UnreadableFileError, MissingFileError
        As :func:`read_nwb_units`.

    Examples
    --------
    >>> import tempfile
    >>> from data_loaders.simulate.spikes import simulate_spiking_circuit
    >>> sim = simulate_spiking_circuit(n_neurons=8, n_hubs=1, duration=2.0, seed=0)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = sim.write_nwb(os.path.join(d, "sim.nwb"))
    ...     rec = load_nwb(p, stimulus="stimulus/presentation/movie",
    ...                    behavior="processing/behavior/readout")
    >>> bool(np.array_equal(rec.spikes.times, sim.spikes.times)), rec.stimulus.shape
    (True, (40, 15, 20))
    """
    path = _check_nwb_file("path", path)
    if isinstance(behavior, str):
        behavior = [behavior]
    with _open_nwb(path) as (io, nwb):
        ids, times, n, names, bounds = _units_spikes(io, nwb, path, units, name_column)
        stim = ft = beh = bt = bnames = None
        if stimulus is not None:
            stim, ft = _series(_find(io, nwb, stimulus, "TimeSeries", "stimulus", path))
        if behavior:
            columns = []
            for k, where in enumerate(behavior):
                data, tk = _series(_find(io, nwb, where, "TimeSeries", f"behavior[{k}]", path))
                if bt is not None and (len(tk) != len(bt) or not np.array_equal(tk, bt)):
                    raise InputError(
                        f"{path}: behavior series {behavior[0]!r} and {where!r} have different "
                        "sample times; load them one at a time, or resample them to one clock."
                    )
                bt = tk
                data = data.reshape(len(data), -1)
                columns.append(data.astype(np.float64))
                leaf = where.strip("/").rsplit("/", 1)[-1]
                bnames = [
                    *(bnames or []),
                    *(
                        [leaf]
                        if data.shape[1] == 1
                        else [f"{leaf}[{j}]" for j in range(data.shape[1])]
                    ),
                ]
            beh = np.concatenate(columns, axis=1)
    ends = []
    for tt in (ft, bt):
        if tt is not None and len(tt):
            step = float(np.median(np.diff(tt))) if len(tt) > 1 else 0.0
            ends.append(float(tt[-1]) + step if step > 0 else float(np.nextafter(tt[-1], np.inf)))
    spikes = _spikes_from_nwb(path, ids, times, n, names, bounds, t_start, t_stop, ends)
    try:
        return AlignedRecording(spikes, stim, ft, beh, bt, bnames)
    except InputError as err:
        raise type(err)(f"{path}: {err}") from None


def _atomic_nwb_write(nwbfile, path: Path) -> Path:
    """Write ``nwbfile`` to a temporary file beside ``path`` and rename it over ``path``."""
    from pynwb import NWBHDF5IO

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.nwb")
    try:
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwbfile)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
