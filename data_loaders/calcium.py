"""Calcium imaging traces from several animals: one container, three file formats.

:class:`CalciumData` holds traces of shape ``(animals, neurons, time)`` on a
shared list of neuron labels and a shared clock, so that neuron ``i`` means the
same identified cell in every animal (as in C. elegans whole-brain imaging). A
neuron that was not recorded in an animal is a row of NaN in that animal: it is
kept, counted by :attr:`CalciumData.missing`, and the analyses decide what to do
with it (:mod:`neuro.connectome` masks the pairs it takes part in). A trace
that is NaN only at some frames is refused, since a gap is not a missing
neuron; interpolate it first.

Cells that are not identified across animals (most mouse recordings) do not
fit this layout. Sessions of ONE animal with cells registered across sessions
do: :func:`stack_sessions` puts the sessions on the animal axis, each row one
registered cell (NaN where a session lacks it).

Readers
    :func:`load_calcium` picks the reader from the suffix:

    * ``.npy``: the bare ``(animals, neurons, time)`` array; give
      ``sampling_rate`` (and labels, epochs) as arguments;
    * ``.npz``: arrays named as in the HDF5 layout below;
    * ``.h5`` / ``.hdf5``: the layout below, written by :func:`save_calcium_hdf5`;
    * ``.nwb``: one NWB file per animal, read with pynwb (``pip install
      'neuro[nwb]'``) by :func:`load_calcium_nwb`.

HDF5 layout
    ``traces``
        float dataset ``(animals, neurons, time)``, NaN rows for neurons
        missing in an animal; attribute ``sampling_rate`` in Hz (required).
    ``neuron_labels``
        ``(neurons,)`` UTF-8 strings (optional; default ``"n0", "n1", ...``).
    ``animal_ids``
        ``(animals,)`` UTF-8 strings (optional; default ``"animal0", ...``).
    ``epochs/name``, ``epochs/start``, ``epochs/stop``
        optional annotation of stimulus or behavioural epochs, one row each:
        a UTF-8 name and start / stop times in seconds from the first frame
        (``stop`` exclusive). Epochs are shared by all animals (one protocol).

Examples
--------
>>> import numpy as np
>>> traces = np.random.default_rng(0).random((2, 3, 50))
>>> traces[1, 2] = np.nan                        # neuron 2 not recorded in animal 1
>>> data = CalciumData(traces, sampling_rate=5.0, epochs=[Epoch("stim", 2.0, 6.0)])
>>> data.shape, int(data.missing.sum())
((2, 3, 50), 1)
>>> int(data.epoch_mask("stim").sum())           # frames 10..29
20
"""

from __future__ import annotations

import os
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data_loaders._io import check_overwrite
from data_loaders._validation import check_array, check_file, check_float
from data_loaders.errors import InputError, InputTypeError, UnreadableFileError

__all__ = [
    "CalciumData",
    "CalciumDataWarning",
    "Epoch",
    "align_animals",
    "load_calcium",
    "load_calcium_nwb",
    "save_calcium_hdf5",
    "stack_sessions",
]

_NWB_HINT = "Reading NWB files needs pynwb: pip install 'neuro[nwb]' (or pip install pynwb)."


class CalciumDataWarning(UserWarning):
    """Something in the traces was changed or is unusual; the message says what."""


@dataclass(frozen=True)
class Epoch:
    """A named interval of the recording, in seconds from the first frame.

    Attributes
    ----------
    name : str
        E.g. ``"stimulus"`` or ``"spontaneous"``; several epochs may share a name.
    start, stop : float
        Seconds; ``stop`` is exclusive.
    """

    name: str
    start: float
    stop: float

    def frames(self, sampling_rate: float, n_frames: int) -> tuple[int, int]:
        """Frame range ``[first, last)`` covered by the epoch, clipped to the recording."""
        first = int(np.clip(np.ceil(self.start * sampling_rate - 1e-9), 0, n_frames))
        last = int(np.clip(np.ceil(self.stop * sampling_rate - 1e-9), 0, n_frames))
        return first, max(first, last)


def _check_epochs(epochs) -> tuple[Epoch, ...]:
    out = []
    for i, e in enumerate(epochs or ()):
        if not isinstance(e, Epoch):
            try:
                e = Epoch(str(e[0]), float(e[1]), float(e[2]))
            except (TypeError, ValueError, IndexError):
                raise InputError(
                    f"epochs[{i}] must be an Epoch or a (name, start_s, stop_s) tuple; got {e!r}."
                ) from None
        if not (np.isfinite(e.start) and np.isfinite(e.stop)) or e.stop <= e.start:
            raise InputError(
                f"epochs[{i}] ({e.name!r}) must have finite start < stop in seconds; "
                f"got start={e.start}, stop={e.stop}."
            )
        out.append(e)
    return tuple(out)


@dataclass
class CalciumData:
    """Calcium traces ``(animals, neurons, time)`` with labels, clock and epochs.

    Parameters
    ----------
    traces : array-like of shape (n_animals, n_neurons, n_frames)
        Fluorescence (e.g. dF/F) on a shared frame clock. A neuron missing in
        an animal is a row of NaN; any other NaN or infinite value is an error.
        A 2-D array ``(neurons, time)`` is refused: add the animal axis with
        ``traces[None]``.
    sampling_rate : float
        Frames per second (Hz).
    neuron_labels : sequence of str, optional
        One unique label per neuron; default ``"n0", "n1", ...``.
    animal_ids : sequence of str, optional
        One unique id per animal; default ``"animal0", ...``.
    epochs : sequence of Epoch or (name, start_s, stop_s), optional
        Stimulus or behavioural epochs, shared by all animals.

    Raises
    ------
    InputError
        Wrong dimensionality; fewer than 2 neurons or frames; NaN gaps inside
        a recorded trace; an animal in which every neuron is missing; labels of
        the wrong length or repeated; a non-positive sampling rate.
    InputTypeError
        Traces that are not numbers; a sampling rate that is not a number.
    """

    traces: np.ndarray
    sampling_rate: float
    neuron_labels: tuple[str, ...] | None = None
    animal_ids: tuple[str, ...] | None = None
    epochs: tuple[Epoch, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        x = check_array("traces", self.traces, finite=False, dtype=np.float64)
        if x.ndim != 3:
            fix = (
                " For one animal, add the animal axis: traces[None]."
                if x.ndim == 2
                else " Stack animals on axis 0 and put time last."
            )
            raise InputError(
                f"traces must have shape (animals, neurons, time), 3 dimensions; got "
                f"{x.ndim} dimension(s) with shape {x.shape}.{fix}"
            )
        n_animals, n_neurons, n_frames = x.shape
        if n_animals < 1 or n_neurons < 2 or n_frames < 2:
            raise InputError(
                f"traces need at least 1 animal, 2 neurons and 2 frames; got shape {x.shape}."
            )
        finite = np.isfinite(x)
        if np.isinf(x).any():
            raise InputError(
                f"traces hold {int(np.isinf(x).sum())} infinite value(s); replace them (NaN rows "
                "mark neurons missing in an animal)."
            )
        missing = ~finite.any(axis=2)
        gaps = ~finite.all(axis=2) & ~missing
        if gaps.any():
            a, n = np.argwhere(gaps)[0]
            raise InputError(
                f"{int(gaps.sum())} trace(s) are NaN at some frames but not all (first: animal "
                f"{a}, neuron {n}, {int((~finite[a, n]).sum())} NaN frames). NaN marks a neuron "
                "missing in an animal (a whole row); interpolate gaps before loading."
            )
        empty = missing.all(axis=1)
        if empty.any():
            raise InputError(
                f"animal(s) {np.flatnonzero(empty).tolist()} have every neuron missing (all NaN); "
                "drop those animals from traces."
            )
        rate = self.sampling_rate
        if isinstance(rate, np.ndarray) and rate.ndim == 0:
            rate = rate.item()
        rate = check_float("sampling_rate", rate, minimum=0.0, strict_minimum=True)
        self.traces, self.sampling_rate = x, rate
        self.neuron_labels = _labels(self.neuron_labels, n_neurons, "neuron_labels", "n")
        self.animal_ids = _labels(self.animal_ids, n_animals, "animal_ids", "animal")
        self.epochs = _check_epochs(self.epochs)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_animals, n_neurons, n_frames)``."""
        return tuple(self.traces.shape)

    @property
    def missing(self) -> np.ndarray:
        """Bool ``(n_animals, n_neurons)``: True where a neuron was not recorded."""
        return np.isnan(self.traces).all(axis=2)

    @property
    def times(self) -> np.ndarray:
        """Frame times in seconds, shape ``(n_frames,)``."""
        return np.arange(self.traces.shape[2]) / self.sampling_rate

    @property
    def epoch_names(self) -> list[str]:
        """Distinct epoch names, in order of first appearance."""
        return list(dict.fromkeys(e.name for e in self.epochs))

    def epoch_mask(self, name: str) -> np.ndarray:
        """Bool ``(n_frames,)``: frames inside any epoch called ``name``."""
        if name not in self.epoch_names:
            raise InputError(f"name: no epoch named {name!r}; the epochs are {self.epoch_names}.")
        n_frames = self.traces.shape[2]
        mask = np.zeros(n_frames, dtype=bool)
        for e in self.epochs:
            if e.name == name:
                first, last = e.frames(self.sampling_rate, n_frames)
                mask[first:last] = True
        return mask


def _labels(labels, n: int, what: str, prefix: str) -> tuple[str, ...]:
    if labels is None:
        return tuple(f"{prefix}{i}" for i in range(n))
    labels = tuple(str(v.decode() if isinstance(v, bytes) else v) for v in labels)
    if len(labels) != n:
        raise InputError(
            f"{what} has {len(labels)} entries but the traces have {n}; give one per "
            f"{'neuron' if prefix == 'n' else 'animal'}."
        )
    if len(set(labels)) != n:
        dup = sorted({v for v in labels if labels.count(v) > 1})
        raise InputError(f"{what} must be unique; repeated: {dup[:5]}.")
    return labels


def align_animals(
    traces: Sequence[np.ndarray], labels: Sequence[Sequence[str]]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Put per-animal recordings of different neurons on one list of labels.

    Parameters
    ----------
    traces : sequence of arrays of shape (n_neurons_a, n_frames)
        One array per animal, with the same number of frames.
    labels : sequence of sequences of str
        The neuron labels of each animal's rows.

    Returns
    -------
    aligned : ndarray of shape (n_animals, n_labels, n_frames)
        NaN rows where an animal lacks a neuron.
    union : tuple of str
        Every label, in order of first appearance.

    Examples
    --------
    >>> a = np.ones((2, 4)); b = np.zeros((2, 4))
    >>> x, names = align_animals([a, b], [["AWB", "AIY"], ["AIY", "ASH"]])
    >>> names, x.shape, bool(np.isnan(x[1, 0]).all())
    (('AWB', 'AIY', 'ASH'), (2, 3, 4), True)
    """
    if len(traces) != len(labels):
        raise InputError(
            f"traces and labels must have one entry per animal; got {len(traces)} trace arrays "
            f"but {len(labels)} label lists."
        )
    union = tuple(dict.fromkeys(str(v) for lab in labels for v in lab))
    index = {v: i for i, v in enumerate(union)}
    n_frames = {np.shape(t)[-1] for t in traces}
    if len(n_frames) != 1:
        raise InputError(
            f"every animal must have the same number of frames; got {sorted(n_frames)}. "
            "Resample or crop to a shared clock first."
        )
    out = np.full((len(traces), len(union), n_frames.pop()), np.nan)
    for a, (t, lab) in enumerate(zip(traces, labels, strict=True)):
        t = check_array(f"traces[{a}]", t, finite=False, dtype=np.float64)
        if t.ndim != 2 or len(lab) != len(t):
            raise InputError(
                f"animal {a}: traces must be (neurons, frames) with one label per row; got "
                f"shape {t.shape} and {len(lab)} labels."
            )
        out[a, [index[str(v)] for v in lab]] = t
    return out, union


def _session(i: int, session, labels, sampling_rate) -> tuple:
    """One session as ``(traces (cells, frames), labels, rate, epochs, name or None)``."""
    if isinstance(session, (str, os.PathLike)):
        path = Path(session)
        data = load_calcium(path, sampling_rate=sampling_rate, neuron_labels=labels)
        name = path.stem
    elif isinstance(session, CalciumData):
        data, name = session, None
    else:
        x = check_array(f"sessions[{i}]", session, finite=False, dtype=np.float64)
        if x.ndim == 3 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 2:
            raise InputError(
                f"sessions[{i}] must be a CalciumData, a traces file or an array (cells, frames) "
                f"of one session; got an array of shape {x.shape}."
            )
        if labels is None:
            raise InputError(
                f"sessions[{i}] is an array without cell labels; give labels= (one sequence of "
                "registered cell ids per session, in the order of its rows)."
            )
        if sampling_rate is None:
            raise InputError(
                f"sessions[{i}] is an array without a sampling rate; give sampling_rate (Hz)."
            )
        if len(labels) != len(x):
            raise InputError(
                f"labels[{i}] has {len(labels)} entries but session {i} has {len(x)} cells; "
                "give one registered id per row."
            )
        data, name = CalciumData(x[None], sampling_rate, labels), None
    if data.shape[0] != 1:
        raise InputError(
            f"sessions[{i}] holds {data.shape[0]} animals; stack_sessions stacks sessions of ONE "
            "animal, one recording each (select one with data.traces[[a]])."
        )
    cells = [str(c) for c in (labels if labels is not None else data.neuron_labels)]
    if len(cells) != data.shape[1]:
        raise InputError(
            f"labels[{i}] has {len(cells)} entries but session {i} has {data.shape[1]} cells; "
            "give one registered id per row."
        )
    x = data.traces[0]
    kept = ~np.isnan(x).all(axis=1)  # a NaN row: the cell was not found in this session
    cells = [c for c, k in zip(cells, kept, strict=True) if k]
    return x[kept], cells, data.sampling_rate, data.epochs, name or data.animal_ids[0]


def stack_sessions(
    sessions: Sequence,
    labels: Sequence[Sequence[str]] | None = None,
    sampling_rate: float | None = None,
    session_ids: Sequence[str] | None = None,
    truncate: bool = False,
    epochs: Sequence | None = None,
) -> CalciumData:
    """Stack sessions of ONE animal on the animal axis, cells aligned by registered label.

    The connectome (:mod:`neuro.connectome`) needs cell ``i`` to be the same
    cell on every row of the animal axis. In a mouse, cells are identified
    within one animal by registering them across sessions (e.g. CellReg or
    ROICaT ids); this function puts those sessions on the animal axis of one
    :class:`CalciumData`, each row one registered cell: the union of the
    sessions' labels, in order of first appearance, with a NaN row where a
    cell was not found in a session. Cells of different animals cannot be
    stacked this way (fit them one animal at a time:
    :func:`neuro.connectome.stability.fit_per_animal`).

    Parameters
    ----------
    sessions : sequence of CalciumData, paths or arrays
        One recording per session: a :class:`CalciumData` of one animal, a
        traces file read by :func:`load_calcium` (e.g. one ``.h5`` or ``.npz``
        per session, its ``neuron_labels`` the registered ids), or an array
        ``(n_cells, n_frames)``. At least one session.
    labels : sequence of sequences of str, optional
        The registered cell id of each session's rows (one sequence per
        session); required for arrays and ``.npy`` files, and replacing the
        stored labels of the others when given.
    sampling_rate : float, optional
        Hz, for arrays and ``.npy`` files. All sessions must have the same rate.
    session_ids : sequence of str, optional
        Ids of the sessions (the ``animal_ids`` of the result); default the
        file names without suffix (for paths), else the sessions' animal ids,
        when these are distinct, else ``"session0", "session1", ...``.
    truncate : bool, default=False
        Sessions of different lengths are refused unless True; then every
        session is cut to the shortest one (its first frames are kept) with a
        :class:`CalciumDataWarning` saying how many frames were dropped.
    epochs : sequence of Epoch or (name, start_s, stop_s), optional
        Epochs of the result (the animal axis shares one clock). Default: the
        sessions' epochs when every session has the same ones; sessions with
        different epochs are refused (give ``epochs``, or ``epochs=()``).

    Returns
    -------
    CalciumData
        ``(n_sessions, n_cells, n_frames)`` on the union of the sessions' cells
        (a cell that is a NaN row in every session is left out).

    Raises
    ------
    InputError
        No session; a session of several animals; an array without labels or
        sampling rate; labels of the wrong length; different sampling rates;
        different lengths (without ``truncate``) or epochs; fewer than 2 cells
        found in every session (the sessions share no registered cells: check
        that the labels are registration ids, not per-session ROI numbers).

    Examples
    --------
    >>> day1 = np.random.default_rng(0).random((3, 40))
    >>> day2 = np.random.default_rng(1).random((3, 40))
    >>> data = stack_sessions([day1, day2], labels=[["c1", "c2", "c3"], ["c2", "c3", "c4"]],
    ...                       sampling_rate=10.0)
    >>> data.shape, data.neuron_labels, data.animal_ids
    ((2, 4, 40), ('c1', 'c2', 'c3', 'c4'), ('session0', 'session1'))
    >>> data.missing.astype(int).tolist()
    [[0, 0, 0, 1], [1, 0, 0, 0]]
    """
    if isinstance(sessions, (str, os.PathLike, np.ndarray, CalciumData)):
        sessions = [sessions]
    sessions = list(sessions)
    if not sessions:
        raise InputError("sessions must hold at least one session; got none.")
    if labels is not None and len(labels) != len(sessions):
        raise InputError(
            f"labels must have one sequence per session; got {len(labels)} for "
            f"{len(sessions)} sessions."
        )
    if sampling_rate is not None:
        sampling_rate = check_float(
            "sampling_rate", sampling_rate, minimum=0.0, strict_minimum=True
        )
    read = [
        _session(i, s, None if labels is None else labels[i], sampling_rate)
        for i, s in enumerate(sessions)
    ]
    traces, cells, rates, session_epochs, names = (list(v) for v in zip(*read, strict=True))
    if not np.allclose(rates, rates[0], rtol=1e-6, atol=0.0):
        raise InputError(
            f"the sessions have different sampling rates: {rates} Hz; resample them to one rate "
            "first."
        )
    lengths = [t.shape[1] for t in traces]
    if len(set(lengths)) > 1:
        if not truncate:
            raise InputError(
                f"the sessions have different numbers of frames: {lengths}; crop them to one "
                "length, or pass truncate=True to keep the first min(...) frames of each."
            )
        shortest = min(lengths)
        warnings.warn(
            f"sessions cut to their shortest length, {shortest} frames: dropped "
            f"{[n - shortest for n in lengths]} frames at the end of each.",
            CalciumDataWarning,
            stacklevel=2,
        )
        traces = [t[:, :shortest] for t in traces]
    common = set(cells[0]).intersection(*cells[1:])
    if len(common) < 2:
        raise InputError(
            f"the sessions share {len(common)} registered cell(s) found in every session; at "
            "least 2 are needed. Check that labels are registration ids shared across sessions "
            "(not per-session ROI numbers), or drop the sessions that share none."
        )
    if epochs is None:
        if any(e != session_epochs[0] for e in session_epochs[1:]):
            raise InputError(
                "the sessions have different epochs; the stacked sessions share one clock: give "
                "epochs= (the epochs of all sessions), or epochs=() for none."
            )
        epochs = session_epochs[0]
    if session_ids is None:
        session_ids = [f"session{i}" for i in range(len(sessions))]
        if len(set(names)) == len(names):
            session_ids = names
    aligned, union = align_animals(traces, cells)
    return CalciumData(aligned, rates[0], union, session_ids, epochs)


# ----------------------------------------------------------------------------- writers/readers
def save_calcium_hdf5(path, data: CalciumData, overwrite: bool = False) -> Path:
    """Write ``data`` in the HDF5 layout of this module, atomically.

    Parameters
    ----------
    path : str or path-like
        The ``.h5`` file to write.
    data : CalciumData
    overwrite : bool, default=False
        Replace an existing file; otherwise :class:`~data_loaders.errors.OutputExistsError`.

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile
    >>> data = CalciumData(np.arange(12.0).reshape(1, 2, 6), sampling_rate=2.0)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_calcium_hdf5(os.path.join(d, "x.h5"), data)
    ...     load_calcium(p).neuron_labels
    ('n0', 'n1')
    """
    import h5py

    if not isinstance(data, CalciumData):
        raise InputTypeError(
            f"data must be a CalciumData; got {type(data).__name__}. Wrap arrays with "
            "CalciumData(traces, sampling_rate)."
        )
    path = check_overwrite(path, overwrite, what="traces file")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    text = h5py.string_dtype("utf-8")
    try:
        with h5py.File(tmp, "w") as f:
            d = f.create_dataset("traces", data=data.traces)
            d.attrs["sampling_rate"] = data.sampling_rate
            f.create_dataset("neuron_labels", data=list(data.neuron_labels), dtype=text)
            f.create_dataset("animal_ids", data=list(data.animal_ids), dtype=text)
            if data.epochs:
                g = f.create_group("epochs")
                g.create_dataset("name", data=[e.name for e in data.epochs], dtype=text)
                g.create_dataset("start", data=[e.start for e in data.epochs])
                g.create_dataset("stop", data=[e.stop for e in data.epochs])
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _strings(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).tolist()]


# the first bytes of each format (HDF5 may sit after a user block of 512 * 2**k bytes)
_MAGIC = {"npy": b"\x93NUMPY", "npz": b"PK\x03\x04", "hdf5": b"\x89HDF\r\n\x1a\n"}
_FORMAT_OF_SUFFIX = {".npy": "npy", ".npz": "npz", ".h5": "hdf5", ".hdf5": "hdf5", ".nwb": "hdf5"}
_FORMAT_NAMES = {"npy": "a NumPy .npy array", "npz": "a NumPy .npz archive", "hdf5": "an HDF5 file"}
_FORMAT_SUFFIX = {"npy": ".npy", "npz": ".npz", "hdf5": ".h5 (or .nwb for NWB)"}
_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5", ".nwb")
# what a reader raises on a damaged file of the right format
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)


def _sniff(path: Path) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(2048 + 8)
    for name, magic in _MAGIC.items():
        offsets = (0, 512, 1024, 2048) if name == "hdf5" else (0,)
        if any(head[k : k + len(magic)] == magic for k in offsets):
            return name
    return None


def _unreadable(path: Path, expected: str, reason: str, damaged: bool = True):
    reason = " ".join(str(reason).split())  # one line
    fix = (
        " Check that the file was copied completely, or write it again (save_calcium_hdf5 "
        "writes .h5)."
        if damaged
        else ""
    )
    return UnreadableFileError(
        f"{str(path)!r} cannot be read as {_FORMAT_NAMES[expected]}: {reason}.{fix}"
    )


def _check_traces_file(name: str, path) -> Path:
    """An existing, non-empty traces file whose first bytes match its suffix."""
    try:
        path = check_file(name, path)
    except UnreadableFileError as err:
        raise UnreadableFileError(
            f"{err} An empty file holds no traces: write it again, or give another file."
        ) from None
    suffix = path.suffix.lower()
    if suffix not in _FORMAT_OF_SUFFIX:
        raise InputError(
            f"cannot read traces from {path.name!r}: expected a .npy, .npz, .h5, .hdf5 or .nwb "
            "file."
        )
    expected, found = _FORMAT_OF_SUFFIX[suffix], _sniff(path)
    if found != expected:
        if found is None:
            reason = "its first bytes are not those of such a file (another format, or damaged)"
        else:
            reason = f"it is {_FORMAT_NAMES[found]}; give it the {_FORMAT_SUFFIX[found]} suffix"
        raise _unreadable(path, expected, reason, damaged=found is None)
    return path


def _read_hdf5(path: Path, sampling_rate) -> CalciumData:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if not isinstance(f.get("traces"), h5py.Dataset):
                raise InputError(
                    f"{str(path)!r} has no 'traces' dataset (found {sorted(f)}); see the HDF5 "
                    "layout in data_loaders.calcium."
                )
            traces = f["traces"][()]
            rate = f["traces"].attrs.get("sampling_rate", sampling_rate)
            labels = _strings(f["neuron_labels"][()]) if "neuron_labels" in f else None
            animals = _strings(f["animal_ids"][()]) if "animal_ids" in f else None
            epochs = []
            if "epochs" in f:
                g = f["epochs"]
                epochs = list(
                    zip(_strings(g["name"][()]), g["start"][()], g["stop"][()], strict=True)
                )
    except InputError:
        raise
    except _READ_ERRORS as err:
        raise _unreadable(path, "hdf5", f"truncated or damaged ({err})") from None
    if rate is None:
        raise InputError(
            f"{str(path)!r}: the 'traces' dataset has no 'sampling_rate' attribute; give the "
            "sampling rate in Hz (sampling_rate)."
        )
    return CalciumData(traces, rate, labels, animals, epochs)


def _read_npz(path: Path, sampling_rate) -> CalciumData:
    try:
        archive = np.load(path, allow_pickle=False)
    except _READ_ERRORS as err:
        raise _unreadable(path, "npz", f"truncated or damaged ({err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _unreadable(
            path, "npz", "it holds a single array; give it the .npy suffix", damaged=False
        )
    try:
        with archive as f:
            if "traces" not in f:
                raise InputError(
                    f"{str(path)!r} has no 'traces' array (found {sorted(f.files)}); store the "
                    "traces (animals, neurons, time) under the name 'traces'."
                )
            rate = f.get("sampling_rate", sampling_rate)
            epochs = []
            if "epoch_name" in f:
                epochs = list(
                    zip(_strings(f["epoch_name"]), f["epoch_start"], f["epoch_stop"], strict=True)
                )
            traces = _one_animal(f["traces"])
            labels = _strings(f["neuron_labels"]) if "neuron_labels" in f else None
            animals = _strings(f["animal_ids"]) if "animal_ids" in f else None
    except InputError:
        raise
    except _READ_ERRORS as err:
        raise _unreadable(path, "npz", f"truncated or damaged ({err})") from None
    if rate is None:
        raise InputError(
            f"{str(path)!r} holds no 'sampling_rate'; give the sampling rate in Hz "
            "(sampling_rate), or store it in the file."
        )
    return CalciumData(traces, rate, labels, animals, epochs)


def _one_animal(traces: np.ndarray) -> np.ndarray:
    """A 2-D array in a file is one animal's ``(neurons, frames)``, as one session is saved."""
    return traces[None] if getattr(traces, "ndim", 0) == 2 else traces


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except _READ_ERRORS as err:
        raise _unreadable(path, "npy", f"truncated or damaged ({err})") from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise _unreadable(
            path, "npy", "it is an .npz archive; give it the .npz suffix", damaged=False
        )
    return array


def load_calcium(
    path,
    sampling_rate: float | None = None,
    neuron_labels: Sequence[str] | None = None,
    epochs: Sequence | None = None,
) -> CalciumData:
    """Read traces from ``.npy``, ``.npz``, ``.h5``/``.hdf5`` or ``.nwb``.

    Files are read without pickle (``allow_pickle=False``). Traces in
    ``.npy`` and ``.npz`` files are ``(animals, neurons, time)``, or
    ``(neurons, time)`` for one animal (a session saved on its own).

    Parameters
    ----------
    path : str or path, or a sequence of ``.nwb`` paths (one per animal)
    sampling_rate : float, optional
        Hz; required for ``.npy``, used by the others only when the file has none.
    neuron_labels : sequence of str, optional
        For ``.npy`` files.
    epochs : sequence of Epoch or (name, start_s, stop_s), optional
        For ``.npy`` files (the other formats store their own).

    Returns
    -------
    CalciumData

    Raises
    ------
    MissingFileError
        ``path`` does not exist.
    UnreadableFileError
        An empty, truncated or damaged file, or a file of another format than
        its suffix says.
    InputError
        An unknown suffix; a file without traces or sampling rate; traces that
        :class:`CalciumData` refuses.
    """
    if isinstance(path, (list, tuple)):
        return load_calcium_nwb(path)
    if sampling_rate is not None:
        sampling_rate = check_float(
            "sampling_rate", sampling_rate, minimum=0.0, strict_minimum=True
        )
    path = _check_traces_file("path", path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if sampling_rate is None:
            raise InputError(
                f"{path.name} is a bare array without a sampling rate: give sampling_rate (Hz), "
                "or store the traces as .h5/.npz with a sampling rate."
            )
        return CalciumData(
            _one_animal(_read_npy(path)), sampling_rate, neuron_labels, None, epochs or ()
        )
    if suffix == ".npz":
        return _read_npz(path, sampling_rate)
    if suffix in (".h5", ".hdf5"):
        return _read_hdf5(path, sampling_rate)
    return load_calcium_nwb([path])


def load_calcium_nwb(
    paths, series: str | None = None, intervals: str | None = "epochs"
) -> CalciumData:
    """Read one NWB file per animal and align their neurons by label.

    Parameters
    ----------
    paths : path or sequence of paths
        One ``.nwb`` file per animal.
    series : str, optional
        Name of the ``RoiResponseSeries`` to read; by default the one found in
        ``processing["ophys"]``, preferring those inside a ``DfOverF``
        container to those inside ``Fluorescence`` (a warning names the one
        read when several remain).
    intervals : str or None, default="epochs"
        The time-intervals table read as epochs, from the first file:
        ``"epochs"`` (the file's epochs table), ``"trials"``, or the name of
        any table in the file's ``intervals``; None reads none. A missing
        ``"epochs"`` table gives no epochs; any other missing table is an error.

    Returns
    -------
    CalciumData
        Traces ``(animals, neurons, time)`` on the union of the files' neuron
        labels (NaN rows for a neuron missing in an animal).

    Notes
    -----
    The traces are the series' data ``(time, rois)``. Neuron labels come from a
    ``label`` column of the ROI table (``PlaneSegmentation``) when present,
    else the ROI ids (which then have to mean the same neuron in every file).
    The sampling rate is the series' ``rate``, or ``1 / median(diff(timestamps))``;
    files must share it and the number of frames. Epoch names come from a
    ``name`` column of the intervals table, else its first ``tags``, else the
    table name; their times are shifted to seconds from the first frame of the
    first file's series (its ``starting_time`` or first timestamp). Animal ids
    are the files' ``subject.subject_id`` when every file has a distinct one,
    else the file names without suffix when distinct, else the defaults.

    Raises
    ------
    ImportError
        pynwb is not installed (``pip install 'neuro[nwb]'``).
    MissingFileError
        A path does not exist.
    UnreadableFileError
        A file is empty, truncated, damaged, or not an NWB file.
    InputError
        A file has no ``ophys`` processing module, no ``RoiResponseSeries``
        (or none called ``series``), or no intervals table called
        ``intervals``; the files differ in sampling rate or number of frames.
    """
    try:
        from pynwb import NWBHDF5IO
    except ImportError as err:
        raise ImportError(_NWB_HINT) from err

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise InputError("paths must name at least one .nwb file; got none.")
    paths = [_check_traces_file(f"paths[{i}]", p) for i, p in enumerate(paths)]
    traces, labels, rates, subjects, epochs = [], [], [], [], []
    for i, p in enumerate(paths):
        with _open_nwb(NWBHDF5IO, p) as nwb:
            rrs = _find_roi_series(nwb, series, p)
            data = np.asarray(rrs.data[()], dtype=np.float64)
            data = (data[:, None] if data.ndim == 1 else data).T  # (rois, time)
            if rrs.rate is not None:
                rate, t0 = float(rrs.rate), float(rrs.starting_time or 0.0)
            else:
                ts = np.asarray(rrs.timestamps[()], dtype=np.float64)
                rate, t0 = 1.0 / float(np.median(np.diff(ts))), float(ts[0])
            table = rrs.rois.table
            region = np.asarray(rrs.rois.data[()], dtype=np.int64)
            if "label" in table.colnames:
                column = table["label"]
                names = [_text(column[int(j)]) for j in region]
            else:
                ids = np.asarray(table.id[:])
                names = [str(ids[int(j)]) for j in region]
            subject = getattr(nwb, "subject", None)
            subjects.append(getattr(subject, "subject_id", None) if subject else None)
            if i == 0 and intervals is not None:
                epochs = _read_intervals(nwb, intervals, p, t0)
        traces.append(data)
        labels.append(names)
        rates.append(rate)
    if not np.allclose(rates, rates[0], rtol=1e-6):
        raise InputError(
            f"the NWB files have different sampling rates: {rates} Hz; resample them to one clock."
        )
    aligned, union = align_animals(traces, labels)
    ids = None
    for candidate in (subjects, [p.stem for p in paths]):
        if None not in candidate and len(set(candidate)) == len(candidate):
            ids = [str(c) for c in candidate]
            break
    return CalciumData(aligned, rates[0], union, ids, epochs)


class _open_nwb:
    """``with _open_nwb(NWBHDF5IO, path) as nwb``: a read NWB file, or UnreadableFileError."""

    def __init__(self, reader, path: Path) -> None:
        self.reader, self.path, self.io = reader, path, None

    def __enter__(self):
        try:
            self.io = self.reader(str(self.path), "r")
            return self.io.read()
        except (*_READ_ERRORS, TypeError) as err:  # hdmf: TypeError for an HDF5 that is not NWB
            if self.io is not None:
                self.io.close()
            raise _unreadable(self.path, "hdf5", f"not a readable NWB file ({err})") from None

    def __exit__(self, *exc) -> None:
        self.io.close()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_intervals(nwb, name: str, path, t0: float) -> list:
    if name == "epochs":
        table = nwb.epochs
    elif name == "trials":
        table = nwb.trials
    else:
        table = (nwb.intervals or {}).get(name)
    if table is None:
        if name == "epochs":
            return []
        found = sorted(nwb.intervals or {}) + [
            t for t in ("epochs", "trials") if getattr(nwb, t) is not None
        ]
        raise InputError(
            f"{path}: no intervals table {name!r} (found {found}); pass intervals= one of "
            "them, or None."
        )
    df = table.to_dataframe()
    out = []
    for k, (_, row) in enumerate(df.iterrows()):
        if "name" in df.columns:
            label = _text(row["name"])
        elif "tags" in df.columns and len(row["tags"]) > 0:
            label = _text(row["tags"][0])
        else:
            label = f"{table.name}{k}"
        out.append((label, float(row["start_time"]) - t0, float(row["stop_time"]) - t0))
    return out


def _find_roi_series(nwb, name, path):
    if "ophys" not in nwb.processing:
        raise InputError(
            f"{path}: no 'ophys' processing module with fluorescence traces (processing "
            f"modules: {sorted(nwb.processing)}); load_calcium_nwb reads the RoiResponseSeries "
            "of processing['ophys'] (inside DfOverF or Fluorescence)."
        )
    ranked = {"DfOverF": 0, "Fluorescence": 1}
    found = []
    for iface in nwb.processing["ophys"].data_interfaces.values():
        for s in getattr(iface, "roi_response_series", {}).values():
            found.append((ranked.get(type(iface).__name__, 2), s))
    if name is not None:
        found = [(r, s) for r, s in found if s.name == name]
    if not found:
        what = f"RoiResponseSeries named {name!r}" if name else "RoiResponseSeries"
        raise InputError(
            f"{path}: no {what} in processing['ophys'] (data interfaces: "
            f"{sorted(nwb.processing['ophys'].data_interfaces)})."
        )
    best = min(r for r, _ in found)
    found = [s for r, s in found if r == best]
    if len(found) > 1:
        warnings.warn(
            f"{path}: {len(found)} RoiResponseSeries; reading {found[0].name!r} (pass series=).",
            CalciumDataWarning,
            stacklevel=3,
        )
    return found[0]
