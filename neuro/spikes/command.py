"""``neuro neuroformer``: pretrain Neuroformer on spikes, generate spikes, decode behaviour.

Three actions, each with its own ``--help``:

``neuro neuroformer train``
    Splits the recording into train, validation and test intervals
    (:func:`data_loaders.spikes.split_intervals`, seeded by ``--seed``; written
    to ``split.json`` first), pretrains :class:`~neuro.spikes.Neuroformer` with
    its checkpoints in ``training/`` (a killed run continues with
    ``--resume``), and writes ``model.pt`` (``Neuroformer.load`` reads it),
    ``metrics.json`` and ``summary.txt`` (held-out next-neuron cross-entropy
    beside the entropy of the firing frequencies, tokens truncated, training
    history, the input), ``connectivity.csv`` / ``connectivity.npy`` (the
    attention connectivity on the test intervals, ``[target, source]``) and
    ``figures/connectivity.png``. On a simulated circuit it also scores the
    attention and the pairwise correlations (the baseline) against the true
    adjacency (AUROC).
``neuro neuroformer generate``
    Samples spikes from ``--model`` over the test intervals of the
    ``split.json`` beside it (else over the whole recording), each window from
    the true past window and stimulus, and writes ``generated.npz`` (in the
    ``--spikes`` format below, so it reads back with ``--spikes``),
    ``metrics.json`` (:func:`~neuro.spikes.generation_statistics` against the
    real spikes) and ``figures/raster.png`` (true above generated).
``neuro neuroformer decode``
    Fits the behaviour head of ``--model`` on ``--labels`` labelled samples
    drawn from the training intervals (optionally fine-tuning the last
    ``--unfreeze`` final blocks), fits :class:`~neuro.spikes.RidgeDecoder` on
    the same samples, and writes ``behavior.csv`` (time, then true and decoded
    values per variable), ``metrics.json`` (held-out Pearson r of each) and
    ``figures/behavior.png``; ``--save-model`` also writes the model with its
    head to ``model.pt``.

Data, the same options for the three actions:

* ``--nwb FILE``: an NWB file's units table, with the stimulus and behaviour
  ``TimeSeries`` named by ``--nwb-stimulus`` and ``--nwb-behavior``
  (:func:`data_loaders.spikes.load_nwb`);
* ``--spikes FILE.npz``: one ``.npz`` archive (``numpy.savez``; read without
  pickle) with the arrays of :data:`NPZ_KEYS`;
* neither: ``train`` simulates a circuit with known wiring
  (:func:`data_loaders.simulate.spikes.simulate_spiking_circuit`, from
  ``--neurons``, ``--hubs``, ``--duration``, ``--coupling`` and ``--seed``);
  ``generate`` and ``decode`` simulate the circuit the model was trained on
  again, from the ``split.json`` beside ``--model``.
"""

from __future__ import annotations

import argparse
import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from neuro.results import Result

__all__ = ["NPZ_KEYS", "add_arguments", "read_spikes_npz", "run"]

#: the arrays of a ``--spikes`` archive: name -> what it holds (the first two are required)
NPZ_KEYS = {
    "neuron_ids": "(n_spikes,) int, the neuron of each spike, 0 .. n_neurons - 1",
    "spike_times": "(n_spikes,) float, seconds",
    "n_neurons": "int; if absent, max(neuron_ids) + 1",
    "t_start": "float, seconds; if absent, 0",
    "t_stop": "float, seconds; if absent, just after the last spike",
    "stimulus": "(n_frames, H, W) float, frames, with frame_times (n_frames,) in seconds",
    "frame_times": "(n_frames,) float, the onset of each frame, seconds",
    "behavior": "(n_samples, n_vars) float, with behavior_times (n_samples,) in seconds",
    "behavior_times": "(n_samples,) float, the time of each behaviour sample, seconds",
    "behavior_names": "(n_vars,) str, one name per behaviour variable",
}
_REQUIRED = ("neuron_ids", "spike_times")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_SPLIT_FILE = "split.json"
_CHECKPOINT_DIR = "training"
#: library argument names -> the flags that set them, for messages raised in the library
_FIT_FLAGS = {
    "n_stimulus_frames": "--stimulus-frames",
    "behavior_context": "--behavior-context",
    "contrastive_dim": "--contrastive-dim",
    "n_heads": "--heads",
    "n_self_layers": "--layers",
    "n_cross_layers": "--layers",
    "n_final_layers": "--layers",
    "checkpoint_every_n_steps": "--checkpoint-every",
    "random_state": "--seed",
    "n_intervals": "--n-intervals",
}
_SIMULATOR_FLAGS = {
    "n_neurons": "--neurons",
    "n_hubs": "--hubs",
    "duration": "--duration",
    "coupling_strength": "--coupling",
}
_NWB_FLAGS = {
    "path": "--nwb",
    "stimulus": "--nwb-stimulus",
    "behavior": "--nwb-behavior",
    "units": "--nwb-units",
}

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- options
def _npz_help() -> str:
    keys = "; ".join(f"{k}: {v}" for k, v in NPZ_KEYS.items())
    return f"The --spikes archive holds (neuron_ids and spike_times required): {keys}."


def _add_data_arguments(parser: argparse.ArgumentParser, simulate: str) -> None:
    group = parser.add_argument_group(f"data (without --nwb or --spikes: {simulate})")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--nwb", type=Path, default=None, metavar="FILE", help="an NWB file")
    source.add_argument(
        "--spikes",
        type=Path,
        default=None,
        metavar="FILE.npz",
        help="spikes (and stimulus, behaviour) as arrays in one .npz; keys below",
    )
    group.add_argument(
        "--nwb-stimulus",
        default=None,
        metavar="PATH",
        help="the stimulus frames' TimeSeries in --nwb, e.g. stimulus/presentation/movie",
    )
    group.add_argument(
        "--nwb-behavior",
        nargs="+",
        default=None,
        metavar="PATH",
        help="behaviour TimeSeries in --nwb, e.g. processing/behavior/running_speed",
    )
    group.add_argument(
        "--nwb-units",
        default=None,
        metavar="PATH",
        help="the Units table in --nwb, where it is not /units",
    )


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    _add_data_arguments(parser, "simulate a circuit with known wiring")
    sim = parser.add_argument_group("simulated circuit (without --nwb or --spikes)")
    sim.add_argument("--neurons", type=int, default=20, help="neurons")
    sim.add_argument("--hubs", type=int, default=3, help="hub neurons that project widely")
    sim.add_argument("--duration", type=float, default=120.0, help="seconds recorded")
    sim.add_argument("--coupling", type=float, default=1.5, help="coupling strength (0: none)")
    model = parser.add_argument_group("model (paper: --d-model 256 --heads 8 --layers 6)")
    model.add_argument("--d-model", type=int, default=64, help="embedding width")
    model.add_argument("--heads", type=int, default=4, help="attention heads")
    model.add_argument(
        "--layers", type=int, default=1, help="blocks per stage (self, cross, final)"
    )
    model.add_argument("--dt", type=float, default=0.01, help="token time resolution, seconds")
    model.add_argument("--window", type=float, default=0.05, help="current window, seconds")
    model.add_argument("--past-window", type=float, default=0.15, help="past window, seconds")
    model.add_argument(
        "--block-size", type=int, default=64, help="tokens per current window (paper: 100)"
    )
    model.add_argument(
        "--past-block-size", type=int, default=192, help="tokens per past window (paper: 700)"
    )
    model.add_argument(
        "--stimulus-frames",
        type=int,
        default=3,
        help="frames before each window end the model sees (0: ignore the stimulus)",
    )
    model.add_argument(
        "--behavior-context",
        action="store_true",
        help="give the behaviour to the model as context tokens (the model then needs it to "
        "generate; do not decode behaviour with such a model)",
    )
    model.add_argument(
        "--contrastive-dim",
        type=int,
        default=0,
        help="shared space of the neural-stimulus contrastive loss (0: off; paper: on)",
    )
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=10, help="epochs (early stopping on val)")
    train.add_argument("--batch-size", type=int, default=64, help="samples per batch")
    train.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    train.add_argument(
        "--patience", type=int, default=5, help="epochs without a better val loss before stopping"
    )
    train.add_argument(
        "--precision",
        choices=("32", "bf16-mixed", "16-mixed"),
        default="32",
        help="training precision",
    )
    train.add_argument(
        "--n-intervals",
        type=int,
        default=20,
        help="equal intervals dealt 80/10/10 %% into train/val/test",
    )
    train.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help="also checkpoint every N steps (default: at each epoch's end)",
    )
    train.add_argument("--resume", action="store_true", help="continue the run killed in --out")
    train.add_argument("--no-figures", action="store_true", help="skip the figures")


def _add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="MODEL.pt",
        help="a model written by `neuro neuroformer train` (its split.json is read from beside "
        "it when there)",
    )


def _add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_argument(parser)
    _add_data_arguments(parser, "the simulated circuit the model was trained on")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (> 0)")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="re-run each window's prefix instead of the key/value cache (same spikes, slower)",
    )
    parser.add_argument(
        "--whole-recording",
        action="store_true",
        help="generate over the whole recording, not the test intervals of split.json",
    )
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")


def _add_decode_arguments(parser: argparse.ArgumentParser) -> None:
    _add_model_argument(parser)
    _add_data_arguments(parser, "the simulated circuit the model was trained on")
    parser.add_argument(
        "--labels",
        default="0.1",
        metavar="N|FRACTION",
        help="labelled training samples: a number (e.g. 50) or a fraction of them (e.g. 0.1)",
    )
    parser.add_argument(
        "--windows",
        type=int,
        default=10,
        metavar="N",
        help="the head reads the features of the N windows up to each sample, and the ridge "
        "decoder N bins of the same width (10 x 50 ms: 0.5 s of history)",
    )
    parser.add_argument(
        "--unfreeze",
        type=int,
        default=0,
        metavar="K",
        help="fine-tune the last K final blocks with the head (0: ridge on frozen features)",
    )
    parser.add_argument(
        "--epochs", type=int, default=50, help="fine-tuning epochs (with --unfreeze)"
    )
    parser.add_argument(
        "--lr", type=float, default=1e-4, help="fine-tuning learning rate (with --unfreeze)"
    )
    parser.add_argument(
        "--n-intervals",
        type=int,
        default=20,
        help="without a split.json beside --model: equal intervals dealt 80/10/10 %% into "
        "train/val/test",
    )
    parser.add_argument(
        "--save-model", action="store_true", help="write the model with its head to model.pt"
    )
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")


_ACTIONS = {
    "train": (
        "Split the recording, pretrain Neuroformer (resumable), score it on the held-out "
        "intervals and write the model and its attention connectivity.",
        _add_train_arguments,
    ),
    "generate": (
        "Generate spikes with a trained model over the test intervals, window by window from "
        "the true past, and compare them with the real ones.",
        _add_generate_arguments,
    ),
    "decode": (
        "Fit a trained model's behaviour head on a few labelled samples and compare it on the "
        "test intervals with a ridge decoder trained on the same samples.",
        _add_decode_arguments,
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro neuroformer``: one sub-parser per action (train, generate, decode).

    Each action's parser also shows the common options (``--device``,
    ``--seed``, ``--out``, ...). Their defaults are left to the parent parser
    (``argparse.SUPPRESS`` here), so a common option given before the action
    (``neuro neuroformer --out DIR train``) is kept, not replaced by a default.
    """
    from neuro.cli import add_common_arguments

    actions = parser.add_subparsers(dest="action", metavar="ACTION", title="actions", required=True)
    for name, (text, add) in _ACTIONS.items():
        sub = actions.add_parser(
            name,
            help=text,
            description=text,
            epilog=_npz_help(),
            formatter_class=parser.formatter_class,
        )
        add(sub)
        add_common_arguments(sub, "neuroformer")
        for action in sub._actions:
            if action.dest in ("device", "seed", "out", "overwrite", "verbose", "quiet"):
                action.default = argparse.SUPPRESS
        sub.set_defaults(_parser=sub)


# ----------------------------------------------------------------------------- data
def _prefixed(flag: str, err: Exception) -> Exception:
    """``err`` (an InputError) with its message led by ``flag``, unless it already names it."""
    message = str(err)
    return type(err)(message if message.startswith(flag) else f"{flag} {message}")


def _npz_array(flag: str, path: Path, archive, key: str) -> np.ndarray:
    from data_loaders.errors import one_line
    from neuro.errors import InputError, UnreadableFileError

    try:
        return archive[key]
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise InputError(
                f"{flag} {path}: the array {key!r} holds Python objects, which are not read (no "
                "pickle); save plain numeric (or string) arrays with numpy.savez."
            ) from None
        raise UnreadableFileError(
            f"{flag} {path}: the array {key!r} cannot be read ({one_line(err)}); check that the "
            "file was copied completely, or write it again."
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as err:
        raise UnreadableFileError(
            f"{flag} {path}: the array {key!r} cannot be read ({type(err).__name__}: {err}); "
            "check that the file was copied completely, or write it again."
        ) from None


def _scalar(flag: str, path: Path, key: str, value: np.ndarray, kind: type):
    from neuro.errors import InputError

    if value.size != 1 or value.dtype.kind not in "iuf":
        raise InputError(
            f"{flag} {path}: {key} must be one number; got an array of shape {value.shape} and "
            f"dtype {value.dtype}."
        )
    number = value.reshape(()).item()
    if kind is int:
        if float(number) != int(number):
            raise InputError(f"{flag} {path}: {key} must be a whole number; got {number}.")
        return int(number)
    return float(number)


def read_spikes_npz(path, flag: str = "--spikes"):
    """The recording in an ``.npz`` archive of :data:`NPZ_KEYS` arrays (read without pickle).

    Parameters
    ----------
    path : str or path-like
        The archive (``numpy.savez`` or ``numpy.savez_compressed``).
    flag : str, default="--spikes"
        How messages name the file.

    Returns
    -------
    AlignedRecording
        The spikes, with the stimulus and behaviour where the archive holds
        them.

    Raises
    ------
    MissingFileError
        No file at ``path``.
    UnreadableFileError
        An empty, truncated or foreign file (not a zip archive).
    InputError
        A required array missing, a scalar that is not one number, arrays
        that :class:`~data_loaders.spikes.SpikeTrains` or
        :class:`~data_loaders.spikes.AlignedRecording` refuse (NaN or
        negative times, ids out of range, streams off the clock).

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "session.npz")
    ...     np.savez(path, neuron_ids=[1, 0, 1], spike_times=[0.2, 0.1, 0.4], t_stop=1.0,
    ...              behavior=[0.5, 0.7], behavior_times=[0.0, 0.5])
    ...     rec = read_spikes_npz(path)
    >>> rec.spikes.neuron_ids.tolist(), rec.spikes.times.tolist(), rec.spikes.t_stop
    ([0, 1, 1], [0.1, 0.2, 0.4], 1.0)
    >>> rec.behavior.shape, rec.stimulus is None
    ((2, 1), True)
    """
    from data_loaders.spikes import AlignedRecording, SpikeTrains
    from neuro._validation import check_file
    from neuro.errors import InputError, UnreadableFileError

    path = check_file(flag, path, suffixes=(".npz",))
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head not in _ZIP_MAGIC:
        raise UnreadableFileError(
            f"{flag} {str(path)!r} is not an .npz archive (its first bytes are not those of a "
            "zip file); write the arrays with numpy.savez."
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise UnreadableFileError(
            f"{flag} {str(path)!r} cannot be read as an .npz archive ({type(err).__name__}: "
            f"{err}); check that it was copied completely, or write it again."
        ) from None
    with archive:
        keys = set(archive.files)
        missing = [k for k in _REQUIRED if k not in keys]
        if missing:
            held = ", ".join(sorted(keys)) or "nothing"
            raise InputError(
                f"{flag} {path} has no {' and no '.join(repr(k) for k in missing)} array (it "
                f"holds: {held}); give neuron_ids and spike_times (seconds), see "
                "`neuro neuroformer train --help`."
            )
        ignored = sorted(keys - set(NPZ_KEYS))
        if ignored:
            log.warning("%s %s: arrays not used: %s", flag, path, ", ".join(ignored))
        arrays = {k: _npz_array(flag, path, archive, k) for k in NPZ_KEYS if k in keys}
    settings = {
        key: _scalar(flag, path, key, arrays[key], kind)
        for key, kind in (("n_neurons", int), ("t_start", float), ("t_stop", float))
        if key in arrays
    }
    names = arrays.get("behavior_names")
    if names is not None:
        names = [str(n) for n in np.atleast_1d(names).tolist()]
    try:
        spikes = SpikeTrains.from_arrays(arrays["neuron_ids"], arrays["spike_times"], **settings)
        return AlignedRecording(
            spikes,
            arrays.get("stimulus"),
            arrays.get("frame_times"),
            arrays.get("behavior"),
            arrays.get("behavior_times"),
            names,
        )
    except InputError as err:
        message = str(err)
        if message.startswith("times "):
            message = "spike_times" + message[len("times") :]
        raise type(err)(f"{flag} {path}: {message}") from None


def _simulate(settings: dict):
    """The circuit of ``settings`` (simulate_spiking_circuit's arguments); messages name flags."""
    from data_loaders.simulate.spikes import simulate_spiking_circuit
    from neuro.cli import errors_as_flags

    with errors_as_flags(_SIMULATOR_FLAGS):
        return simulate_spiking_circuit(**settings)


def _describe(rec, source: str, path=None, simulation=None) -> dict:
    """What the input was, for metrics.json and split.json."""
    s = rec.spikes
    return {
        "source": source,
        "path": None if path is None else str(path),
        "n_neurons": int(s.n_neurons),
        "n_spikes": len(s),
        "t_start": float(s.t_start),
        "t_stop": float(s.t_stop),
        "mean_rate_hz": len(s) / s.duration / s.n_neurons,
        "stimulus": None if rec.stimulus is None else list(rec.stimulus.shape),
        "behavior": None if rec.behavior is None else _behavior_names(rec),
        "simulation": simulation,
    }


def _behavior_names(rec) -> list[str]:
    if rec.behavior_names is not None:
        return list(rec.behavior_names)
    return [f"behavior{k}" for k in range(rec.behavior.shape[1])]


def _read_data(args: argparse.Namespace, split: dict | None = None):
    """``(recording, adjacency or None, description)`` from --nwb, --spikes or a simulation.

    ``split`` is the ``split.json`` of a trained model: without --nwb or
    --spikes, its simulation is run again.
    """
    from data_loaders.spikes import load_nwb
    from neuro.cli import errors_as_flags
    from neuro.errors import InputError

    if args.spikes is None and args.nwb is None:
        for flag in ("nwb_stimulus", "nwb_behavior", "nwb_units"):
            if getattr(args, flag) is not None:
                raise InputError(f"--{flag.replace('_', '-')} reads from --nwb; give --nwb FILE.")
    if args.spikes is not None:
        rec = read_spikes_npz(args.spikes)
        return rec, None, _describe(rec, "npz", args.spikes)
    if args.nwb is not None:
        try:
            with errors_as_flags(_NWB_FLAGS):
                rec = load_nwb(
                    args.nwb,
                    stimulus=args.nwb_stimulus,
                    behavior=args.nwb_behavior,
                    units=args.nwb_units,
                )
        except InputError as err:
            raise _prefixed("--nwb", err) from None
        return rec, None, _describe(rec, "nwb", args.nwb)
    if split is None:  # train: a new simulation from the flags
        settings = {
            "n_neurons": args.neurons,
            "n_hubs": args.hubs,
            "duration": args.duration,
            "coupling_strength": args.coupling,
            "seed": args.seed,
        }
    else:
        settings = (split.get("data") or {}).get("simulation")
        if not settings:
            raise InputError(
                f"--model: the model was not trained on a simulation (see {_SPLIT_FILE} beside "
                "it); give its data with --nwb FILE or --spikes FILE.npz."
            )
    sim = _simulate(settings)
    rec = sim.recording
    return rec, sim.adjacency, _describe(rec, "simulated", simulation=settings)


def _read_json(flag: str, path: Path) -> dict:
    from neuro.errors import InputError, UnreadableFileError

    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise UnreadableFileError(
            f"{flag}: {str(path)!r} is not readable JSON ({type(err).__name__}: {err}); write it "
            "again with `neuro neuroformer train`, or remove it."
        ) from None
    if not isinstance(value, dict) or not all(k in value for k in ("train", "val", "test")):
        raise InputError(
            f"{flag}: {str(path)!r} is not a split written by `neuro neuroformer train` (no "
            "train, val and test intervals); remove it to use the whole recording."
        )
    return value


def _intervals(values) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in values]


def _check_inside(intervals, rec, where: str) -> None:
    from neuro.errors import InputError

    s = rec.spikes
    outside = [(a, b) for a, b in intervals if a < s.t_start - 1e-9 or b > s.t_stop + 1e-9]
    if outside:
        a, b = outside[0]
        raise InputError(
            f"{where}: the interval [{a:g}, {b:g}) s lies outside the recording "
            f"[{s.t_start:g}, {s.t_stop:g}) s; give the recording the model was trained on."
        )


# ----------------------------------------------------------------------------- models
def _load_model(args: argparse.Namespace):
    """The ``--model`` file, set to this run's device and verbosity, and its split (or None)."""
    from neuro._validation import check_file
    from neuro.spikes import Neuroformer

    path = check_file("--model", args.model)
    nf = Neuroformer.load(path)
    nf.set_params(device=args.device, verbose=max(0, args.verbose - 1))
    split_path = path.parent / _SPLIT_FILE
    split = _read_json(f"--model's {_SPLIT_FILE}", split_path) if split_path.is_file() else None
    return nf, split


def _check_model_data(nf, rec, data: dict) -> None:
    """Refuse data the model cannot read, in the command's words."""
    from neuro.errors import InputError

    source = {"npz": "--spikes", "nwb": "--nwb"}.get(data["source"], "the simulation")
    if rec.n_neurons != nf.n_neurons_:
        raise InputError(
            f"{source} holds {rec.n_neurons} neurons but --model was trained on "
            f"{nf.n_neurons_}; give the recording it was trained on (same neurons, same ids)."
        )
    if nf.settings_.n_stimulus_frames and rec.stimulus is None:
        raise InputError(
            f"--model was trained with the stimulus but {source} has none; give the frames "
            "(--nwb-stimulus PATH, or stimulus and frame_times in --spikes)."
        )


def _model_summary(nf) -> dict:
    config = nf.model_.config
    return {
        "d_model": config.d_model,
        "n_heads": config.n_heads,
        "layers": [config.n_self_layers, config.n_cross_layers, config.n_final_layers],
        "block_size": config.block_size,
        "past_block_size": config.past_block_size,
        "dt": nf.settings_.dt,
        "window": nf.settings_.window,
        "past_window": nf.settings_.past_window,
        "stimulus_frames": nf.settings_.n_stimulus_frames,
        "behavior_context": config.n_behavior > 0,
        "contrastive_dim": config.contrastive_dim,
        "n_parameters": sum(p.numel() for p in nf.model_.parameters()),
    }


# ----------------------------------------------------------------------------- results
def _neuron_names(rec) -> list[str]:
    names = rec.spikes.neuron_names
    return list(names) if names is not None else [str(k) for k in range(rec.n_neurons)]


class TrainReport(Result):
    """What ``neuro neuroformer train`` measured (metrics.json, summary.txt, connectivity)."""

    def __init__(self, data, split, model, history, truncation, test, attention, names, truth):
        self.data, self.split, self.model = data, split, model
        self.history, self.truncation, self.test = history, truncation, test
        self.attention, self.names = attention, names
        self.correlation, self.adjacency, self.auroc = truth

    def summary(self) -> dict[str, Any]:
        """Input, split, model, training, held-out scores and (simulated) AUROCs."""
        val = [r["val_loss"] for r in self.history if "val_loss" in r]
        out = {
            "data": self.data,
            "split": {
                name: {
                    "intervals": len(self.split[name]),
                    "seconds": sum(b - a for a, b in self.split[name]),
                }
                for name in ("train", "val", "test")
            },
            "model": self.model,
            "training": {
                "epochs": len(self.history),
                "final_train_loss": self.history[-1]["train_loss"] if self.history else None,
                "best_val_loss": min(val) if val else None,
                "history": self.history,
            },
            "truncation": self.truncation,
            "test": self.test,
        }
        if self.auroc is not None:
            out["connectivity_auroc"] = self.auroc
        return out

    def format_table(self) -> str:
        """The scores as a few lines for a terminal."""
        d, t = self.data, self.test
        n = {k: len(self.split[k]) for k in ("train", "val", "test")}
        lines = [
            f"neuro neuroformer train: {d['n_neurons']} neurons, {d['t_stop'] - d['t_start']:g} s "
            f"({d['source']}); train/val/test {n['train']}/{n['val']}/{n['test']} intervals",
            f"  held-out next-neuron cross-entropy  {t['id_cross_entropy']:.3f} nats per spike "
            f"(firing-frequency entropy {t['frequency_entropy']:.3f}; {t['n_tokens']} spikes)",
            f"  held-out dt cross-entropy           {t['dt_cross_entropy']:.3f} nats per spike",
        ]
        summary = self.summary()["training"]
        best = summary["best_val_loss"]
        lines.append(
            f"  epochs {summary['epochs']}, best validation loss "
            + ("-" if best is None else f"{best:.3f}")
        )
        for part in ("current", "past"):
            r = self.truncation.get(part)
            if r:
                lines.append(
                    f"  {part} windows: {r['dropped_spikes']} of {r['spikes']} spikes dropped "
                    f"to fit the block ({r['truncated_samples']} of {r['samples']} windows)"
                )
        if self.auroc is not None:
            lines.append(
                f"  connectivity AUROC vs the true adjacency: attention "
                f"{self.auroc['attention']:.3f}, correlation {self.auroc['correlation']:.3f}"
            )
        return "\n".join(lines)

    def tables(self) -> dict[str, Any]:
        """``connectivity``: the attention matrix, one row per target neuron."""
        import pandas as pd

        frame = pd.DataFrame(self.attention, columns=self.names)
        frame.insert(0, "target", self.names)
        return {"connectivity": frame}

    def plot(self) -> dict[str, Any]:
        """``connectivity``: attention (and on a simulation, correlation and the truth)."""
        from neuro.plotting import new_figure

        panels = [("attention / chance", self.attention)]
        if self.adjacency is not None:
            panels += [("correlation", self.correlation), ("true adjacency", self.adjacency)]
        fig, axes = new_figure(ncols=len(panels), size=(3.6, 3.2))
        for ax, (title, matrix) in zip(axes[0], panels, strict=True):
            if title.startswith("att"):
                image = ax.imshow(matrix, cmap="viridis")
            else:  # signed: white at 0
                lim = float(np.nanmax(np.abs(matrix))) or 1.0
                image = ax.imshow(matrix, cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set(title=title, xlabel="source neuron", ylabel="target neuron")
            fig.colorbar(image, ax=ax, shrink=0.8)
        return {"connectivity": fig}

    def _save_extra(self, folder: Path, overwrite: bool) -> None:
        from neuro.io import atomic_open

        with atomic_open(folder / "connectivity.npy", "wb") as fh:
            np.save(fh, self.attention)


class GenerateReport(Result):
    """What ``neuro neuroformer generate`` wrote: the generated spikes and their statistics."""

    def __init__(self, real, generated, intervals, statistics, settings, data):
        self.real, self.generated, self.intervals = real, generated, intervals
        self.statistics, self.settings, self.data = statistics, settings, data

    def _counts(self) -> tuple[int, int]:
        def inside(s):
            return sum(len(s.window(a, b)) for a, b in self.intervals)

        return inside(self.real), inside(self.generated)

    def summary(self) -> dict[str, Any]:
        """Statistics against the real spikes, spike counts, settings, the input."""
        real, generated = self._counts()
        return {
            "statistics": self.statistics,
            "real_spikes": real,
            "generated_spikes": generated,
            "intervals": self.intervals,
            "settings": self.settings,
            "data": self.data,
        }

    def format_table(self) -> str:
        """The comparison as a few lines for a terminal."""
        real, generated = self._counts()
        s = self.statistics
        seconds = sum(b - a for a, b in self.intervals)
        return "\n".join(
            [
                f"neuro neuroformer generate: {len(self.intervals)} interval(s), {seconds:g} s",
                f"  spikes: {generated} generated, {real} real",
                f"  firing rates: r = {s['rate_r']:.3f} across neurons "
                f"({s['generated_rate_hz']:.2f} vs {s['real_rate_hz']:.2f} Hz)",
                f"  pairwise correlations: r = {s['correlation_r']:.3f} across "
                f"{s['n_pairs']} pairs",
            ]
        )

    def plot(self) -> dict[str, Any]:
        """``raster``: true above generated spikes over the first interval (at most 5 s)."""
        from neuro.plotting import new_figure

        a, b = self.intervals[0]
        b = min(b, a + 5.0)
        fig, axes = new_figure(nrows=2, size=(7.0, 2.4))
        for ax, (title, spikes) in zip(
            axes[:, 0], (("real", self.real), ("generated", self.generated)), strict=True
        ):
            part = spikes.window(a, b)
            ax.scatter(part.times, part.neuron_ids, s=12, marker="|", color="k", linewidths=0.8)
            ax.set(title=title, ylabel="neuron", xlim=(a, b), ylim=(-0.5, spikes.n_neurons - 0.5))
        axes[1, 0].set_xlabel("time (s)")
        return {"raster": fig}

    def _save_extra(self, folder: Path, overwrite: bool) -> None:
        from neuro.io import atomic_open

        g = self.generated
        with atomic_open(folder / "generated.npz", "wb") as fh:
            np.savez(
                fh,
                neuron_ids=g.neuron_ids,
                spike_times=g.times,
                n_neurons=np.int64(g.n_neurons),
                t_start=np.float64(g.t_start),
                t_stop=np.float64(g.t_stop),
            )


class DecodeReport(Result):
    """What ``neuro neuroformer decode`` measured: held-out r of the head and of ridge."""

    def __init__(self, names, times, truth, decoded, ridge, labels, settings, data):
        self.names, self.times = names, times
        self.truth, self.decoded, self.ridge = truth, decoded, ridge
        self.labels, self.settings, self.data = labels, settings, data

    @staticmethod
    def _r(x: np.ndarray, y: np.ndarray) -> list[float]:
        out = []
        for k in range(x.shape[1]):
            a, b = x[:, k] - x[:, k].mean(), y[:, k] - y[:, k].mean()
            denom = np.sqrt((a * a).sum() * (b * b).sum())
            out.append(float((a * b).sum() / denom) if denom > 0 else float("nan"))
        return out

    def summary(self) -> dict[str, Any]:
        """Held-out r per variable of both decoders, the labels, settings, the input."""
        return {
            "behavior": self.names,
            "neuroformer_r": dict(zip(self.names, self._r(self.decoded, self.truth), strict=True)),
            "ridge_r": dict(zip(self.names, self._r(self.ridge, self.truth), strict=True)),
            "n_test_samples": len(self.times),
            "labels": self.labels,
            "settings": self.settings,
            "data": self.data,
        }

    def format_table(self) -> str:
        """One row per behaviour variable."""
        nf, ridge = self._r(self.decoded, self.truth), self._r(self.ridge, self.truth)
        width = max(8, *(len(n) for n in self.names))
        lab = self.labels
        lines = [
            f"neuro neuroformer decode: {lab['n']} labelled samples ({100 * lab['fraction']:.3g} % "
            f"of {lab['of']}), unfreeze {self.settings['unfreeze']}; held-out Pearson r on "
            f"{len(self.times)} samples",
            f"  {'behavior':<{width}}  neuroformer   ridge",
        ]
        for name, a, b in zip(self.names, nf, ridge, strict=True):
            lines.append(f"  {name:<{width}}  {a:11.3f}  {b:6.3f}")
        return "\n".join(lines)

    def tables(self) -> dict[str, Any]:
        """``behavior``: time, then true, neuroformer and ridge values per variable."""
        import pandas as pd

        columns = {"time": self.times}
        for k, name in enumerate(self.names):
            columns[f"{name}_true"] = self.truth[:, k]
            columns[f"{name}_neuroformer"] = self.decoded[:, k]
            columns[f"{name}_ridge"] = self.ridge[:, k]
        return {"behavior": pd.DataFrame(columns)}

    def plot(self) -> dict[str, Any]:
        """``behavior``: true and decoded traces over the test samples, one panel per variable."""
        from neuro.plotting import new_figure

        fig, axes = new_figure(nrows=len(self.names), size=(7.0, 2.4))
        order = np.argsort(self.times)
        t = self.times[order]
        gap = np.diff(t) > 2 * np.median(np.diff(t)) if len(t) > 2 else np.zeros(0, bool)
        breaks = np.flatnonzero(gap) + 1  # no line across the gaps between intervals
        for k, name in enumerate(self.names):
            ax = axes[k, 0]
            for label, values, style in (
                ("true", self.truth, "k-"),
                ("neuroformer", self.decoded, "C0-"),
                ("ridge", self.ridge, "C1--"),
            ):
                v = values[order, k].astype(float)
                ax.plot(
                    np.insert(t, breaks, np.nan),
                    np.insert(v, breaks, np.nan),
                    style,
                    label=label,
                    linewidth=1,
                )
            ax.set(ylabel=name)
        axes[0, 0].legend(loc="upper right", fontsize="small")
        axes[-1, 0].set_xlabel("time (s)")
        return {"behavior": fig}


# ----------------------------------------------------------------------------- actions
def _split(args: argparse.Namespace, rec, data: dict) -> dict:
    """The split of this run: split.json's when resuming (checked against the data), else new."""
    from data_loaders.spikes import split_intervals
    from neuro.cli import errors_as_flags
    from neuro.errors import InputError

    path = args.out / _SPLIT_FILE
    if args.resume and path.is_file():
        split = _read_json(f"--resume: {_SPLIT_FILE}", path)
        keys = ("source", "n_neurons", "n_spikes", "t_start", "t_stop", "simulation")
        before = {k: split.get("data", {}).get(k) for k in keys}
        now = {k: data.get(k) for k in keys}
        if json.loads(json.dumps(before)) != json.loads(json.dumps(now)):
            raise InputError(
                f"--resume: the data differ from those of the run in --out ({before} then, "
                f"{now} now); give the same data and options, or run without --resume."
            )
        return split
    with errors_as_flags(_FIT_FLAGS):
        s = split_intervals(
            rec.spikes.t_start, rec.spikes.t_stop, n_intervals=args.n_intervals, seed=args.seed
        )
    return {
        "seed": args.seed,
        "n_intervals": args.n_intervals,
        "train": s.train,
        "val": s.val,
        "test": s.test,
        "data": data,
    }


def _train(args: argparse.Namespace) -> int:
    import shutil

    from neuro.cli import errors_as_flags
    from neuro.errors import InputError
    from neuro.io import atomic_write_json
    from neuro.results import jsonable
    from neuro.spikes import Neuroformer, connectivity_auroc, correlation_connectivity

    rec, adjacency, data = _read_data(args)
    checkpoints = args.out / _CHECKPOINT_DIR
    last = checkpoints / "checkpoints" / "last.pt"
    if args.resume and not last.is_file():
        raise InputError(
            f"--resume: nothing to resume in {str(args.out)!r} (no {last.relative_to(args.out)}); "
            "give the --out of the run to continue, or run without --resume."
        )
    split = _split(args, rec, data)
    train, val, test = (_intervals(split[k]) for k in ("train", "val", "test"))
    longest, context = max(b - a for a, b in train), args.past_window + args.window
    if longest < context:
        raise InputError(
            f"--n-intervals {split['n_intervals']}: the training intervals are {longest:g} s "
            f"long, shorter than --past-window + --window = {context:g} s, so no sample fits; use "
            "fewer --n-intervals, a longer recording, or shorter windows."
        )
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.resume and checkpoints.exists():  # an --overwrite of an earlier run's folder
        shutil.rmtree(checkpoints)
    atomic_write_json(args.out / _SPLIT_FILE, jsonable(split))
    nf = Neuroformer(
        dt=args.dt,
        window=args.window,
        past_window=args.past_window,
        block_size=args.block_size,
        past_block_size=args.past_block_size,
        n_stimulus_frames=args.stimulus_frames,
        behavior_context=args.behavior_context,
        contrastive_dim=args.contrastive_dim,
        d_model=args.d_model,
        n_heads=args.heads,
        n_self_layers=args.layers,
        n_cross_layers=args.layers,
        n_final_layers=args.layers,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=args.patience,
        device=args.device,
        precision=args.precision,
        checkpoint_dir=checkpoints,
        checkpoint_every_n_steps=args.checkpoint_every,
        random_state=args.seed,
        verbose=max(0, args.verbose - 1),
    )
    try:
        with errors_as_flags(_FIT_FLAGS):
            nf.fit(rec, intervals=train, val_intervals=val, resume=args.resume)
    except InputError:
        if not args.resume:  # a refused fit leaves --out as it found it
            (args.out / _SPLIT_FILE).unlink(missing_ok=True)
            if not last.is_file():
                shutil.rmtree(checkpoints, ignore_errors=True)
        raise
    with errors_as_flags(_FIT_FLAGS):
        scores = nf.cross_entropy(rec, test)
        attention = nf.connectivity(rec, test)
    truth = (None, None, None)
    if adjacency is not None:
        correlation = correlation_connectivity(rec, bin_size=nf.settings_.dt, intervals=test)
        auroc = {
            "attention": connectivity_auroc(np.nan_to_num(attention), adjacency),
            "correlation": connectivity_auroc(correlation, adjacency),
        }
        truth = (correlation, adjacency, auroc)
    # the saved model does not point at this run's checkpoint folder
    nf.set_params(checkpoint_dir=None, checkpoint_every_n_steps=None)
    nf.save(args.out / "model.pt", overwrite=True)  # --out was prepared (and checked) by main
    report = TrainReport(
        data,
        {k: _intervals(split[k]) for k in ("train", "val", "test")},
        _model_summary(nf),
        nf.history_,
        nf.truncation_,
        scores,
        attention,
        _neuron_names(rec),
        truth,
    )
    report.save(args.out, overwrite=True, figures=not args.no_figures)
    print(report.format_table())
    print(f"  written to {args.out}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from neuro._validation import check_float
    from neuro.spikes import generation_statistics

    nf, split = _load_model(args)
    rec, _, data = _read_data(args, split)
    _check_model_data(nf, rec, data)
    if split is not None and not args.whole_recording:
        intervals = _intervals(split["test"])
        _check_inside(intervals, rec, f"--model's {_SPLIT_FILE} (test intervals)")
    else:
        intervals = [(rec.spikes.t_start, rec.spikes.t_stop)]
    temperature = check_float("--temperature", args.temperature, minimum=0.0, strict_minimum=True)
    generated = nf.generate(
        rec, intervals, temperature=temperature, seed=args.seed, use_cache=not args.no_cache
    )
    stats = generation_statistics(rec.spikes, generated, intervals=intervals)
    settings = {
        "model": str(args.model),
        "temperature": temperature,
        "seed": args.seed,
        "use_cache": not args.no_cache,
        "intervals_from": "whole recording" if split is None or args.whole_recording else "test",
    }
    report = GenerateReport(rec.spikes, generated, intervals, stats, settings, data)
    report.save(args.out, overwrite=True, figures=not args.no_figures)
    print(report.format_table())
    print(f"  written to {args.out}")
    return 0


def _label_count(text: str, available: int) -> int:
    """The number of labelled samples ``--labels`` asks for, out of ``available``."""
    from neuro.errors import InputError

    fix = (
        "give a number of samples (an integer >= 2, e.g. 50) or a fraction of the training "
        "samples in (0, 1] (e.g. 0.1)"
    )
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--labels must be a number; got {text!r}: {fix}.") from None
    is_count = text.strip().lstrip("+").isdigit()
    if not np.isfinite(value) or value <= 0 or (not is_count and value > 1):
        raise InputError(f"--labels {text} is out of range: {fix}.")
    n = int(value) if is_count else round(value * available)
    if n > available:
        raise InputError(
            f"--labels {text} asks for {n} samples but the training intervals hold {available}; "
            "give at most that many (or a fraction)."
        )
    if n < 2:
        raise InputError(
            f"--labels {text} gives {n} labelled sample(s) of {available}; the head needs at "
            "least 2: give more labels."
        )
    return n


def _decode(args: argparse.Namespace) -> int:
    from data_loaders.spikes import split_intervals
    from neuro._validation import check_int
    from neuro.cli import errors_as_flags
    from neuro.errors import InputError
    from neuro.spikes import RidgeDecoder

    nf, split = _load_model(args)
    rec, _, data = _read_data(args, split)
    _check_model_data(nf, rec, data)
    if rec.behavior is None:
        source = {"npz": "--spikes", "nwb": "--nwb"}.get(data["source"], "the data")
        raise InputError(
            f"{source} has no behaviour to decode; give it (--nwb-behavior PATH, or behavior "
            "and behavior_times in --spikes)."
        )
    if split is None:
        with errors_as_flags(_FIT_FLAGS):
            s = split_intervals(
                rec.spikes.t_start, rec.spikes.t_stop, n_intervals=args.n_intervals, seed=args.seed
            )
        train, test = list(s.train), list(s.test)
    else:
        train, test = _intervals(split["train"]), _intervals(split["test"])
        _check_inside(train + test, rec, f"--model's {_SPLIT_FILE}")
    n_final = int(nf.model_.config.n_final_layers)
    if not 0 <= args.unfreeze <= n_final:
        raise InputError(
            f"--unfreeze {args.unfreeze}: the model has {n_final} final block(s); give --unfreeze "
            f"between 0 and {n_final} (or train a model with more --layers)."
        )
    windows = check_int("--windows", args.windows, minimum=1)
    available = len(nf._anchors(nf.tokenizer_, rec.spikes, train))
    k = _label_count(args.labels, available)
    nf.set_params(random_state=args.seed)  # draws the labelled samples, seeds the fine-tuning
    nf.fit_behavior(
        rec,
        train,
        max_samples=k,
        n_windows=windows,
        unfreeze=args.unfreeze,
        epochs=args.epochs,
        lr=args.lr,
    )
    # the ridge decoder on the same samples, reading the same history of binned counts
    ridge = RidgeDecoder(n_lags=windows, bin_size=nf.window, device=args.device)
    ridge.fit(rec, times=nf.behavior_times_)
    chosen = nf.behavior_times_ + nf.window / 2
    times, decoded = nf.predict_behavior(rec, test)
    truth = np.stack(
        [np.interp(times, rec.behavior_times, b) for b in np.asarray(rec.behavior).T], axis=1
    )
    settings = {
        "model": str(args.model),
        "windows": windows,
        "unfreeze": args.unfreeze,
        "epochs": args.epochs if args.unfreeze else 0,
        "lr": args.lr if args.unfreeze else None,
        "seed": args.seed,
        "split": "split.json" if split is not None else f"new, {args.n_intervals} intervals",
    }
    labels = {"n": k, "of": available, "fraction": k / available, "times": chosen}
    report = DecodeReport(
        _behavior_names(rec),
        times,
        truth,
        np.asarray(decoded, dtype=np.float64).reshape(len(times), -1),
        ridge.predict(rec, times),
        labels,
        settings,
        data,
    )
    report.save(args.out, overwrite=True, figures=not args.no_figures)
    if args.save_model:
        nf.save(args.out / "model.pt", overwrite=True)
    print(report.format_table())
    print(f"  written to {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of ``neuro neuroformer``: runs the chosen action."""
    return {"train": _train, "generate": _generate, "decode": _decode}[args.action](args)
