"""Neuroformer's tokeniser: spikes to (neuron id, dt) tokens and back.

Antoniades et al., "Neuroformer" (ICLR 2024) turn each spike into two tokens:
its neuron's **id** and its **dt**, the spike's offset from the start of its
window counted in bins of ``dt`` seconds (not an inter-spike interval). A
sample is anchored at a window end ``t``:

* the **current** window is ``[t - window, t)``;
* the **past** window is ``[t - window - past_window, t - window)``.

Each window becomes ``[SOS] + spikes + [EOS]``, padded with PAD to its block
size; a window holding more than ``block_size - 2`` spikes keeps its **last**
``block_size - 2`` (the latest ones, nearest the prediction) and the dropped
spikes are counted, returned and announced by a :class:`TruncationWarning`.

Time grid
---------
Bins are fixed on the absolute time axis: bin ``k`` is ``[k * dt, (k + 1) *
dt)``, a time within a millionth of a bin below an edge counting as on it (so
that 0.35 s is in bin 35 at dt = 0.01 s, though the float 0.35 is a hair below
35 * 0.01). Anchors are window ends on
that grid (``k * dt``, within a millionth of a bin), so every window is a
whole run of bins and a spike's dt token is ``its bin - the window's first
bin``. Decoding returns each spike at the start of its bin, ``k * dt``: spikes
already at bin starts come back bit for bit.

Vocabularies (``N = n_neurons``, ``D = max(window, past_window) / dt``)
---------------------------------------------------------------------
========  ===========  =============================================
token     id           dt
========  ===========  =============================================
spike     ``0..N-1``   ``0..W-1`` current (``W = window / dt``),
                       ``0..P-1`` past (``P = past_window / dt``)
SOS       ``N``        ``D``
EOS       ``N + 1``    ``D + 1``
PAD       ``N + 2``    ``D + 2``
========  ===========  =============================================

so ``n_ids = N + 3`` and ``n_dt = D + 3`` (one dt vocabulary shared by both
windows; the current window only uses its first ``W`` bins).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from neuro._validation import check_array, check_choice, check_float, check_int
from neuro.errors import InputError, InputTypeError

__all__ = ["BinnedSpikes", "SpikeTokenizer", "TruncationWarning", "truncation_report"]

#: Fraction of a bin within which a time counts as lying on the dt grid.
_GRID_TOL = 1e-6


class TruncationWarning(UserWarning):
    """Some windows held more spikes than their block fits; their earliest spikes were dropped."""


def _whole_bins(name: str, value: float, dt: float, *, minimum: int) -> int:
    """``value / dt`` as an int, refusing values that are not whole numbers of bins."""
    ratio = value / dt
    k = round(ratio)
    if abs(ratio - k) > _GRID_TOL:
        raise InputError(
            f"{name} must be a whole number of dt bins; got {name}={value!r} with dt={dt!r} "
            f"({name} / dt = {ratio:.6g}). Use a multiple of dt, e.g. {name}={max(k, 1) * dt:.6g}."
        )
    if k < minimum:
        raise InputError(
            f"{name} must be at least {minimum} bin(s) of dt={dt!r}; got {name}={value!r}."
        )
    return int(k)


def _bins_of(times: np.ndarray, dt: float) -> np.ndarray:
    """The bin ``k`` with ``k <= t / dt < k + 1`` of each time, edges widened by ``_GRID_TOL``.

    A time a millionth of a bin or less below an edge counts as on it: 0.35 s is
    in bin 35 at dt = 0.01 s though the float 0.35 is below 35 * 0.01, and a
    decoded ``k * dt`` bins back to ``k`` at any ``k`` below 2**40.
    """
    return np.floor(times / dt + _GRID_TOL).astype(np.int64)


def _is_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor)


@dataclass(frozen=True)
class BinnedSpikes:
    """A recording binned once on a tokenizer's grid, ready for many :meth:`~SpikeTokenizer.encode` calls.

    Made by :meth:`SpikeTokenizer.prepare`; pass it to ``encode`` in place of
    the spikes so that a data loader encoding batch after batch of anchors does
    not check and bin the whole recording each time.

    Parameters
    ----------
    neuron_ids : ndarray of int64, shape (n_spikes,)
        Ordered by bin, then by neuron id.
    bins : ndarray of int64, shape (n_spikes,)
        Bin of each spike on the grid ``k * dt`` (non-decreasing).
    dt : float
        Bin width (seconds) of the grid.
    n_neurons : int
        Neurons of the tokenizer that binned them.
    t_start, t_stop : float
        The recorded interval (seconds); ``t_stop`` may be ``inf``.
    torch_input : bool
        The spikes were given as torch tensors (``encode`` then returns tensors).
    """

    neuron_ids: np.ndarray
    bins: np.ndarray
    dt: float
    n_neurons: int
    t_start: float
    t_stop: float
    torch_input: bool = False


@dataclass
class SpikeTokenizer:
    """Neuroformer's spike tokeniser: (neuron id, dt) tokens for the current and past windows.

    Parameters
    ----------
    n_neurons : int
        Neuron ids are ``0 .. n_neurons - 1``; specials follow them
        (:attr:`sos_id`, :attr:`eos_id`, :attr:`pad_id`).
    dt : float, default=0.01
        Bin width in seconds (the paper's 10 ms).
    window : float, default=0.05
        Current window ``[t - window, t)`` in seconds; a whole number of ``dt``.
    past_window : float, default=0.15
        Past window ``[t - window - past_window, t - window)`` in seconds; a
        whole number of ``dt`` (0: no past spikes).
    block_size : int, default=100
        Tokens of a current sample, SOS and EOS included (>= 3): up to
        ``block_size - 2`` spikes.
    past_block_size : int, default=700
        Tokens of a past sample (>= 3). 100 and 700 are the paper's configs.

    Raises
    ------
    InputError
        A window that is not a whole number of bins, a block size below 3,
        a non-positive ``dt`` or ``n_neurons``.

    Examples
    --------
    >>> import numpy as np
    >>> tok = SpikeTokenizer(n_neurons=7, dt=0.01, window=0.03, past_window=0.02,
    ...                      block_size=6, past_block_size=5)
    >>> ids = np.array([0, 4, 2, 6, 1])
    >>> times = np.array([0.012, 0.031, 0.035, 0.041, 0.058])
    >>> batch = tok.encode((ids, times), anchors=[0.06])
    >>> batch["ids"]  # SOS=7, EOS=8, PAD=9; neurons 4 and 2 share a bin: sorted by id
    array([[7, 2, 4, 6, 1, 8]])
    >>> batch["dts"]  # bins from 0.03 s; SOS=3, EOS=4, PAD=5 (n_dt = 3 + 3)
    array([[3, 0, 0, 1, 2, 4]])
    >>> batch["past_ids"], batch["past_dts"]  # past window [0.01, 0.03)
    (array([[7, 0, 8, 9, 9]]), array([[3, 0, 4, 5, 5]]))
    >>> n, t = tok.decode(batch["ids"][0], batch["dts"][0], 0.06)
    >>> n.tolist(), t.round(6).tolist()
    ([2, 4, 6, 1], [0.03, 0.03, 0.04, 0.05])
    """

    n_neurons: int
    dt: float = 0.01
    window: float = 0.05
    past_window: float = 0.15
    block_size: int = 100
    past_block_size: int = 700

    def __post_init__(self) -> None:
        self.n_neurons = check_int("n_neurons", self.n_neurons, minimum=1)
        self.dt = check_float("dt", self.dt, minimum=0.0, strict_minimum=True)
        self.window = check_float("window", self.window, minimum=0.0, strict_minimum=True)
        self.past_window = check_float("past_window", self.past_window, minimum=0.0)
        _whole_bins("window", self.window, self.dt, minimum=1)
        _whole_bins("past_window", self.past_window, self.dt, minimum=0)
        for name in ("block_size", "past_block_size"):
            value = check_int(name, getattr(self, name))
            if value < 3:
                raise InputError(
                    f"{name} must be >= 3 (SOS, at least one spike, EOS); got {value}."
                )
            setattr(self, name, value)

    # ------------------------------------------------------------ vocabulary
    @property
    def n_bins(self) -> int:
        """Bins of the current window (``window / dt``): its dt tokens are ``0 .. n_bins - 1``."""
        return round(self.window / self.dt)

    @property
    def past_n_bins(self) -> int:
        """Bins of the past window (``past_window / dt``)."""
        return round(self.past_window / self.dt)

    @property
    def sos_id(self) -> int:
        """Id token that starts every sequence (``n_neurons``)."""
        return self.n_neurons

    @property
    def eos_id(self) -> int:
        """Id token after a window's last spike (``n_neurons + 1``)."""
        return self.n_neurons + 1

    @property
    def pad_id(self) -> int:
        """Id token that fills a sequence after EOS (``n_neurons + 2``)."""
        return self.n_neurons + 2

    @property
    def n_ids(self) -> int:
        """Size of the id vocabulary: neurons plus SOS, EOS and PAD."""
        return self.n_neurons + 3

    @property
    def sos_dt(self) -> int:
        """dt token carried by SOS (``max(n_bins, past_n_bins)``)."""
        return max(self.n_bins, self.past_n_bins)

    @property
    def eos_dt(self) -> int:
        """dt token carried by EOS (``sos_dt + 1``)."""
        return self.sos_dt + 1

    @property
    def pad_dt(self) -> int:
        """dt token carried by PAD (``sos_dt + 2``)."""
        return self.sos_dt + 2

    @property
    def n_dt(self) -> int:
        """Size of the dt vocabulary: the bins of the longer window plus SOS, EOS and PAD."""
        return self.sos_dt + 3

    # --------------------------------------------------------------- anchors
    def anchors(self, t_start: float, t_stop: float, stride: float | None = None) -> np.ndarray:
        """Window ends on the dt grid whose whole context lies in ``[t_start, t_stop]``.

        The first anchor leaves room for the past window after ``t_start``;
        successive anchors are ``stride`` apart, so with the default stride
        (one window) the current windows tile ``[first - window, last)``
        without overlap or gap.

        Parameters
        ----------
        t_start, t_stop : float
            The recorded interval, seconds (``t_start >= 0``).
        stride : float, optional
            Seconds between anchors, a whole number of ``dt``; default ``window``.

        Returns
        -------
        ndarray of float64, shape (n_anchors,)
            Anchors ``k * dt``, increasing.

        Raises
        ------
        InputError
            A negative ``t_start``, ``t_stop <= t_start``, a stride that is not a
            whole number of bins, or an interval shorter than ``past_window +
            window``.

        Examples
        --------
        >>> tok = SpikeTokenizer(n_neurons=3, window=0.05, past_window=0.1)
        >>> tok.anchors(0.0, 0.4).round(6).tolist()
        [0.15, 0.2, 0.25, 0.3, 0.35, 0.4]
        """
        t_start = check_float("t_start", t_start, minimum=0.0)
        t_stop = check_float("t_stop", t_stop)
        if t_stop <= t_start:
            raise InputError(f"t_stop must be > t_start; got t_start={t_start}, t_stop={t_stop}.")
        if stride is None:
            step = self.n_bins
        else:
            stride = check_float("stride", stride, minimum=0.0, strict_minimum=True)
            step = _whole_bins("stride", stride, self.dt, minimum=1)
        first_bin = int(np.ceil(t_start / self.dt - _GRID_TOL))
        first = first_bin + self.past_n_bins + self.n_bins
        last = int(np.floor(t_stop / self.dt + _GRID_TOL))
        if first > last:
            raise InputError(
                f"[t_start, t_stop] = [{t_start}, {t_stop}] s is shorter than past_window + window "
                f"= {self.past_window + self.window:.6g} s on the dt grid: no sample fits. Give a "
                "longer interval or shorter windows."
            )
        return np.arange(first, last + 1, step, dtype=np.int64) * self.dt

    # ----------------------------------------------------------------- input
    def prepare(
        self, spikes: Any, *, t_start: float | None = None, t_stop: float | None = None
    ) -> BinnedSpikes:
        """Check and bin a recording once, for many :meth:`encode` calls.

        Parameters
        ----------
        spikes : SpikeTrains or (neuron_ids, times)
            A :class:`data_loaders.spikes.SpikeTrains` (or any object with
            ``neuron_ids``, ``times``, ``n_neurons``, ``t_start``, ``t_stop``),
            or a pair of arrays: ``neuron_ids`` (n_spikes,) integers in
            ``0 .. n_neurons - 1`` and ``times`` (n_spikes,) seconds, sorted.
        t_start, t_stop : float, optional
            The recorded interval of a pair of arrays (default ``0`` and
            ``inf``: anchors are then only checked against ``0``). A
            SpikeTrains brings its own.

        Returns
        -------
        BinnedSpikes

        Raises
        ------
        InputTypeError
            ``spikes`` is neither, or ids that are not integers.
        InputError
            Ids out of range, NaN, negative or unsorted times, spikes outside
            ``[t_start, t_stop)``.
        """
        if isinstance(spikes, BinnedSpikes):
            self._check_binned(spikes)
            return spikes
        if hasattr(spikes, "neuron_ids") and hasattr(spikes, "times"):
            if t_start is not None or t_stop is not None:
                raise InputError(
                    "t_start and t_stop come from the SpikeTrains given as spikes; do not pass "
                    "them too (or give (neuron_ids, times) arrays)."
                )
            raw_ids, raw_times = spikes.neuron_ids, spikes.times
            t_start = getattr(spikes, "t_start", 0.0)
            t_stop = getattr(spikes, "t_stop", np.inf)
            n_rec = getattr(spikes, "n_neurons", None)
            if n_rec is not None and int(n_rec) > self.n_neurons:
                raise InputError(
                    f"spikes hold {int(n_rec)} neurons but the tokenizer has n_neurons="
                    f"{self.n_neurons}; build it with SpikeTokenizer(n_neurons=spikes.n_neurons)."
                )
        elif isinstance(spikes, (tuple, list)) and len(spikes) == 2:
            raw_ids, raw_times = spikes
        else:
            raise InputTypeError(
                "spikes must be a SpikeTrains or a pair (neuron_ids, times) of arrays; got "
                f"{type(spikes).__name__}."
            )
        t_start = 0.0 if t_start is None else check_float("t_start", t_start, minimum=0.0)
        t_stop = np.inf if t_stop is None else float(t_stop)
        if np.isnan(t_stop) or t_stop <= t_start:
            raise InputError(f"t_stop must be > t_start; got t_start={t_start}, t_stop={t_stop}.")
        torch_input = _is_tensor(raw_ids) or _is_tensor(raw_times)
        ids, times = self._check_spikes(raw_ids, raw_times, t_start, t_stop)
        bins = _bins_of(times, self.dt)
        if len(ids) > 1:
            same_bin = bins[1:] == bins[:-1]
            if np.any(same_bin & (ids[1:] < ids[:-1])):  # spikes of a bin go by neuron id
                if int(bins[-1]) < 2**62 // self.n_neurons:  # one int64 key: much faster
                    order = np.argsort(bins * self.n_neurons + ids, kind="stable")
                else:
                    order = np.lexsort((ids, bins))
                ids, bins = ids[order], bins[order]
        return BinnedSpikes(ids, bins, self.dt, self.n_neurons, t_start, t_stop, torch_input)

    def _check_spikes(
        self, raw_ids: Any, raw_times: Any, t_start: float, t_stop: float
    ) -> tuple[np.ndarray, np.ndarray]:
        try:
            n_ids, n_times = len(raw_ids), len(raw_times)
        except TypeError:
            raise InputTypeError(
                "neuron_ids and times must be 1-D arrays (one entry per spike); got "
                f"{type(raw_ids).__name__} and {type(raw_times).__name__}."
            ) from None
        if n_ids != n_times:
            raise InputError(
                f"neuron_ids and times must have one entry per spike; got {n_ids} ids and "
                f"{n_times} times."
            )
        if n_ids == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        ids = check_array("neuron_ids", raw_ids, ndim=1, shape_hint="(n_spikes,)")
        if not np.issubdtype(ids.dtype, np.integer):
            raise InputTypeError(
                f"neuron_ids must hold integers; got dtype {ids.dtype}. Convert them with "
                "neuron_ids.astype(np.int64)."
            )
        ids = ids.astype(np.int64, copy=False)
        bad = (ids < 0) | (ids >= self.n_neurons)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(
                f"neuron_ids[{i}] = {ids[i]} is out of range: ids must lie in 0..{self.n_neurons - 1} "
                f"(n_neurons={self.n_neurons}); renumber the neurons or raise n_neurons."
            )
        times = check_array("times", raw_times, ndim=1, shape_hint="(n_spikes,)", dtype=np.float64)
        if times[0] < 0:
            raise InputError(f"times must be >= 0 seconds; times[0] = {times[0]}.")
        step = np.diff(times)
        if np.any(step < 0):
            i = int(np.argmax(step < 0))
            raise InputError(
                f"times must be sorted (non-decreasing); times[{i + 1}] = {times[i + 1]} comes "
                f"after times[{i}] = {times[i]}. Sort the spikes by time first "
                "(order = np.argsort(times, kind='stable'))."
            )
        if times[0] < t_start or times[-1] >= t_stop:
            i = 0 if times[0] < t_start else n_times - 1
            raise InputError(
                f"times[{i}] = {times[i]} lies outside the recording [t_start, t_stop) = "
                f"[{t_start}, {t_stop}); give spikes inside it or widen the interval."
            )
        return ids, times

    def _check_binned(self, binned: BinnedSpikes) -> None:
        if binned.dt != self.dt or binned.n_neurons > self.n_neurons:
            raise InputError(
                f"spikes were prepared for dt={binned.dt}, n_neurons={binned.n_neurons}, but this "
                f"tokenizer has dt={self.dt}, n_neurons={self.n_neurons}; prepare them with it."
            )

    def _anchor_bins(
        self, anchors: Any, t_start: float, t_stop: float, name: str = "anchors"
    ) -> np.ndarray:
        a = check_array(name, anchors, ndim=(0, 1), shape_hint="(n_anchors,)")
        a = np.atleast_1d(a).astype(np.float64)
        if a.size == 0:
            raise InputError(f"{name} is empty; give at least one window end (seconds).")
        ratio = a / self.dt
        k = np.rint(ratio).astype(np.int64)
        off = np.abs(ratio - k) > _GRID_TOL
        if off.any():
            i = int(np.argmax(off))
            raise InputError(
                f"{name}[{i}] = {float(a[i])!r} is not on the dt grid (a whole multiple of dt="
                f"{self.dt}); round them (np.round(anchors / dt) * dt) or use "
                "tokenizer.anchors(t_start, t_stop)."
            )
        tol = _GRID_TOL * self.dt
        first = (k - self.n_bins - self.past_n_bins) * self.dt
        outside = (first < t_start - tol) | (k * self.dt > t_stop + tol)
        if outside.any():
            i = int(np.argmax(outside))
            lo = t_start + self.past_window + self.window
            raise InputError(
                f"anchors[{i}] = {float(a[i])!r} is outside the recording: its past and current windows "
                f"[{first[i]:.6g}, {a[i]:.6g}) s must lie in [t_start, t_stop] = [{t_start}, "
                f"{t_stop}], so anchors must lie in [{lo:.6g}, {t_stop}]; use "
                "tokenizer.anchors(t_start, t_stop)."
            )
        return k

    # ---------------------------------------------------------------- encode
    def encode(
        self,
        spikes: Any,
        anchors: Any,
        *,
        t_start: float | None = None,
        t_stop: float | None = None,
    ) -> dict[str, Any]:
        """Tokenise the current and past windows of many anchors at once (vectorised).

        Parameters
        ----------
        spikes : SpikeTrains, (neuron_ids, times) or BinnedSpikes
            See :meth:`prepare`; a :class:`BinnedSpikes` skips the checks and
            the binning (for a data loader that encodes batch after batch).
        anchors : float or array-like, shape (n_anchors,)
            Window ends ``t`` in seconds, on the dt grid, with ``t - window -
            past_window >= t_start`` and ``t <= t_stop``
            (:meth:`anchors` makes them).
        t_start, t_stop : float, optional
            The recorded interval of a pair of arrays (see :meth:`prepare`).

        Returns
        -------
        dict
            NumPy arrays (torch tensors if the spikes or anchors were tensors):

            * ``ids``, ``dts`` : int64 (n_anchors, block_size), current window;
            * ``pad_mask`` : bool (n_anchors, block_size), True on PAD;
            * ``past_ids``, ``past_dts``, ``past_pad_mask`` : the same,
              (n_anchors, past_block_size);
            * ``n_spikes``, ``past_n_spikes`` : int64 (n_anchors,), spikes in
              each window before truncation;
            * ``truncated``, ``past_truncated`` : int64 (n_anchors,), spikes
              dropped (the earliest of the window) to fit the block;
            * ``anchors`` : float64 (n_anchors,), the anchors on the grid.

            Memory is about ``16 * n_anchors * (block_size + past_block_size)``
            bytes: encode long recordings in batches of anchors.

        Warns
        -----
        TruncationWarning
            One line with how many samples and spikes were dropped, whenever
            any were (:func:`truncation_report` summarises the returned dict).

        Raises
        ------
        InputError
            Bad spikes (see :meth:`prepare`), anchors off the dt grid or whose
            windows leave the recording, NaN anchors.
        """
        binned = self.prepare(spikes, t_start=t_start, t_stop=t_stop)
        bins_a = self._anchor_bins(anchors, binned.t_start, binned.t_stop)
        cur_start = bins_a - self.n_bins
        past_start = cur_start - self.past_n_bins
        out: dict[str, Any] = {}
        for prefix, lo, hi, block in (
            ("", cur_start, bins_a, self.block_size),
            ("past_", past_start, cur_start, self.past_block_size),
        ):
            ids, dts, count, dropped = self._fill(binned, lo, hi, block)
            out[prefix + "ids"] = ids
            out[prefix + "dts"] = dts
            out[prefix + "pad_mask"] = ids == self.pad_id
            out[prefix + "n_spikes"] = count
            out[prefix + "truncated"] = dropped
        out["anchors"] = bins_a * self.dt
        message = _truncation_message(out, self.block_size, self.past_block_size)
        if message:
            warnings.warn(message, TruncationWarning, stacklevel=2)
        if binned.torch_input or _is_tensor(anchors):
            out = {key: torch.from_numpy(value) for key, value in out.items()}
        return out

    def _fill(
        self, binned: BinnedSpikes, lo: np.ndarray, hi: np.ndarray, block: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Token rows for the bin ranges ``[lo, hi)``: ragged gather, no loop over spikes."""
        n = len(lo)
        first = np.searchsorted(binned.bins, lo, side="left")
        stop = np.searchsorted(binned.bins, hi, side="left")
        count = (stop - first).astype(np.int64)
        keep = np.minimum(count, block - 2)
        ids = np.full((n, block), self.pad_id, dtype=np.int64)
        dts = np.full((n, block), self.pad_dt, dtype=np.int64)
        ids[:, 0], dts[:, 0] = self.sos_id, self.sos_dt
        # one entry per kept spike: its row, its place in the row, its index in the recording
        rows = np.repeat(np.arange(n), keep)
        offsets = np.cumsum(keep) - keep
        place = np.arange(len(rows)) - np.repeat(offsets, keep)
        source = np.repeat(stop - keep, keep) + place
        ids[rows, place + 1] = binned.neuron_ids[source]
        dts[rows, place + 1] = binned.bins[source] - lo[rows]
        every = np.arange(n)
        ids[every, keep + 1], dts[every, keep + 1] = self.eos_id, self.eos_dt
        return ids, dts, count, count - keep

    # ---------------------------------------------------------------- decode
    def decode(
        self, ids: Any, dts: Any, anchor: Any, *, window: str = "current"
    ) -> tuple[Any, Any]:
        """Spikes back from tokens: each at the start of its bin.

        Tokens are read up to the first EOS of each row; SOS and PAD are
        skipped.

        Parameters
        ----------
        ids, dts : array-like of int, shape (n_tokens,) or (n_anchors, n_tokens)
            Id and dt tokens, as :meth:`encode` returns them (or as a model
            generates them).
        anchor : float or array-like, shape (n_anchors,)
            The window end of each row (seconds, on the dt grid).
        window : {"current", "past"}, default="current"
            Which window the tokens describe.

        Returns
        -------
        neuron_ids : ndarray of int64, shape (n_spikes,)
        times : ndarray of float64, shape (n_spikes,)
            Row after row, in token order (time, then neuron id, for encoded
            rows); ``k * dt`` for a spike of bin ``k``. Torch tensors if
            ``ids`` was one.

        Raises
        ------
        InputError
            Shapes that differ, ids outside the vocabulary, a spike whose dt is
            not a bin of the window, anchors off the grid.
        """
        check_choice("window", window, ("current", "past"))
        torch_out = _is_tensor(ids)
        tok = check_array("ids", ids, ndim=(1, 2), shape_hint="(n_anchors, n_tokens)")
        dtk = check_array("dts", dts, ndim=(1, 2), shape_hint="(n_anchors, n_tokens)")
        for name, arr in (("ids", tok), ("dts", dtk)):
            if not np.issubdtype(arr.dtype, np.integer):
                raise InputTypeError(
                    f"{name} must hold integer tokens; got dtype {arr.dtype}. Give the int64 "
                    "arrays encode returns."
                )
        if tok.shape != dtk.shape:
            raise InputError(
                f"ids and dts must have the same shape; got {tok.shape} and {dtk.shape}."
            )
        tok = np.atleast_2d(tok).astype(np.int64, copy=False)
        dtk = np.atleast_2d(dtk).astype(np.int64, copy=False)
        bins_a = self._anchor_bins(anchor, -np.inf, np.inf, name="anchor")
        if len(bins_a) != len(tok):
            raise InputError(
                f"anchor must give one window end per row of ids; got {len(bins_a)} for "
                f"{len(tok)} row(s)."
            )
        outside = (tok < 0) | (tok >= self.n_ids)
        if outside.any():
            r, c = np.argwhere(outside)[0]
            raise InputError(
                f"ids[{r}, {c}] = {tok[r, c]} is not a token: ids lie in 0..{self.n_ids - 1} "
                f"(neurons 0..{self.n_neurons - 1}, SOS {self.sos_id}, EOS {self.eos_id}, PAD "
                f"{self.pad_id})."
            )
        before_eos = np.cumsum(tok == self.eos_id, axis=1) == 0
        spike = before_eos & (tok < self.n_neurons)
        width = self.n_bins if window == "current" else self.past_n_bins
        bad = spike & ((dtk < 0) | (dtk >= width))
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise InputError(
                f"dts[{r}, {c}] = {dtk[r, c]} is not a bin of the {window} window (0..{width - 1}) "
                f"for the spike of neuron {tok[r, c]}."
            )
        start = bins_a - self.n_bins
        if window == "past":
            start = start - self.past_n_bins
        rows = np.nonzero(spike)[0]
        neuron_ids = tok[spike]
        times = (start[rows] + dtk[spike]) * self.dt
        if torch_out:
            return torch.from_numpy(neuron_ids), torch.from_numpy(times)
        return neuron_ids, times


def _truncation_message(batch: dict[str, Any], block_size: int, past_block_size: int) -> str:
    """One line naming the truncated samples and dropped spikes, or "" if none."""
    parts = []
    for prefix, name, block in (
        ("", "current", block_size),
        ("past_", "past", past_block_size),
    ):
        dropped = np.asarray(batch[prefix + "truncated"])
        hit = int(np.count_nonzero(dropped))
        if hit:
            parts.append(
                f"{hit} of {len(dropped)} {name} windows held more than {prefix}block_size - 2 = "
                f"{block - 2} spikes ({int(dropped.sum())} spikes dropped)"
            )
    if not parts:
        return ""
    return (
        "SpikeTokenizer truncated " + " and ".join(parts) + "; the earliest spikes of each window "
        "were dropped. Raise block_size / past_block_size to keep them."
    )


def truncation_report(batch: dict[str, Any]) -> dict[str, Any]:
    """How much truncation cost an encoded batch, as a JSON-able dict.

    Parameters
    ----------
    batch : dict
        What :meth:`SpikeTokenizer.encode` returned.

    Returns
    -------
    dict
        For ``current`` and ``past``: ``samples``, ``truncated_samples``,
        ``spikes`` (in the windows), ``dropped_spikes`` and
        ``dropped_fraction`` (of the spikes).

    Examples
    --------
    >>> import numpy as np
    >>> tok = SpikeTokenizer(n_neurons=2, window=0.02, past_window=0.01,
    ...                      block_size=3, past_block_size=3)
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     batch = tok.encode(([0, 1, 0], [0.011, 0.012, 0.025]), anchors=[0.03])
    >>> print(caught[0].message)  # doctest: +NORMALIZE_WHITESPACE
    SpikeTokenizer truncated 1 of 1 current windows held more than block_size - 2 = 1 spikes
    (2 spikes dropped); the earliest spikes of each window were dropped. Raise block_size /
    past_block_size to keep them.
    >>> truncation_report(batch)["current"]
    {'samples': 1, 'truncated_samples': 1, 'spikes': 3, 'dropped_spikes': 2, 'dropped_fraction': 0.6666666666666666}
    """
    report = {}
    for prefix, name in (("", "current"), ("past_", "past")):
        dropped = np.asarray(batch[prefix + "truncated"])
        spikes = int(np.asarray(batch[prefix + "n_spikes"]).sum())
        lost = int(dropped.sum())
        report[name] = {
            "samples": len(dropped),
            "truncated_samples": int(np.count_nonzero(dropped)),
            "spikes": spikes,
            "dropped_spikes": lost,
            "dropped_fraction": lost / spikes if spikes else 0.0,
        }
    return report
