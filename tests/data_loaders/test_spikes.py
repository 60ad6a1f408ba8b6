"""Spike trains: arrays and counts, binning and windows, aligned stimulus/behaviour, splits, NWB.

The NWB tests write small files with pynwb and skip where it is absent.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools

import h5py
import numpy as np
import pytest

from data_loaders.errors import InputError, InputTypeError, MissingFileError, UnreadableFileError
from data_loaders.spikes import (
    AlignedRecording,
    SpikeTrains,
    load_nwb,
    read_nwb_units,
    split_intervals,
)


def _random_spikes(rng, n_neurons=7, n_spikes=50, t_stop=3.0):
    ids = rng.integers(0, n_neurons, n_spikes)
    times = rng.uniform(0.0, t_stop, n_spikes)
    return ids, times


# ----------------------------------------------------------------------------- SpikeTrains
def test_from_arrays_sorts_by_time_then_id_and_sets_defaults():
    s = SpikeTrains.from_arrays([3, 1, 2, 0], [0.5, 0.2, 0.2, 0.9])
    assert s.neuron_ids.tolist() == [1, 2, 3, 0]
    assert s.times.tolist() == [0.2, 0.2, 0.5, 0.9]
    assert s.neuron_ids.dtype == np.int64 and s.times.dtype == np.float64
    assert s.n_neurons == 4 and s.t_start == 0.0
    assert 0.9 < s.t_stop < 0.9 + 1e-12  # just after the last spike
    assert len(s) == 4


def test_from_arrays_keeps_a_shuffled_recording_identical(rng):
    ids, times = _random_spikes(rng)
    s = SpikeTrains.from_arrays(ids, times, n_neurons=9, t_stop=3.0)
    perm = rng.permutation(len(ids))
    s2 = SpikeTrains.from_arrays(ids[perm], times[perm], n_neurons=9, t_stop=3.0)
    np.testing.assert_array_equal(s.times, s2.times)
    np.testing.assert_array_equal(s.neuron_ids, s2.neuron_ids)
    assert s.n_neurons == 9  # neurons 7, 8 never fire
    np.testing.assert_allclose(s.firing_rates()[7:], 0.0)


def test_firing_rates_are_counts_over_duration():
    s = SpikeTrains.from_arrays(
        [0, 0, 1, 0], [1.0, 1.5, 2.0, 2.5], n_neurons=3, t_start=1.0, t_stop=3.0
    )
    np.testing.assert_allclose(s.firing_rates(), [1.5, 0.5, 0.0])
    assert s.duration == 2.0


@pytest.mark.parametrize(("bin_size", "t_start"), [(0.01, 0.0), (0.1, 0.3), (0.007, 1.25)])
def test_counts_round_trip_exactly(rng, bin_size, t_start):
    counts = rng.poisson(0.7, size=(7, 9))
    s = SpikeTrains.from_counts(counts, bin_size, t_start=t_start)
    assert s.t_start == t_start
    assert s.t_stop == pytest.approx(t_start + 9 * bin_size)
    assert len(s) == counts.sum()
    np.testing.assert_array_equal(s.binned(bin_size), counts)
    # each spike at its bin's start, ties ordered by neuron id
    bins = np.round((s.times - t_start) / bin_size).astype(int)
    np.testing.assert_allclose(s.times, t_start + bins * bin_size)
    assert np.all(np.diff(s.times) >= 0)


def test_binned_counts_spikes_in_the_right_bins():
    s = SpikeTrains.from_arrays(
        [0, 1, 0, 1, 1], [0.0, 0.049, 0.05, 0.19, 0.2], n_neurons=2, t_stop=0.23
    )
    np.testing.assert_array_equal(s.binned(0.05), [[1, 1, 0, 0, 0], [1, 0, 0, 1, 1]])
    # a sub-interval; the last bin is cut short by t_stop
    np.testing.assert_array_equal(s.binned(0.1, t_start=0.04, t_stop=0.21), [[1, 0], [1, 2]])
    with pytest.raises(InputError, match="must satisfy"):
        s.binned(0.05, t_stop=1.0)
    with pytest.raises(InputError, match="bin_size must be > 0"):
        s.binned(0.0)


def test_window_restricts_spikes_and_interval(rng):
    ids, times = _random_spikes(rng, n_spikes=200)
    s = SpikeTrains.from_arrays(ids, times, n_neurons=7, t_stop=3.0, neuron_names=list("abcdefg"))
    w = s.window(1.0, 2.0)
    keep = (s.times >= 1.0) & (s.times < 2.0)
    np.testing.assert_array_equal(w.times, s.times[keep])
    np.testing.assert_array_equal(w.neuron_ids, s.neuron_ids[keep])
    assert (w.t_start, w.t_stop, w.n_neurons, w.neuron_names) == (1.0, 2.0, 7, tuple("abcdefg"))
    np.testing.assert_array_equal(w.binned(0.25), s.binned(0.25, 1.0, 2.0))
    empty = s.window(2.9999999, 3.0)
    assert len(empty) == 0 and empty.binned(1.0).shape == (7, 1)
    with pytest.raises(InputError, match=r"t0=-1 s and t1=2 s must satisfy"):
        s.window(-1.0, 2.0)
    with pytest.raises(InputError, match="must satisfy"):
        s.window(2.0, 1.0)


def test_empty_recordings_are_allowed_with_their_interval():
    s = SpikeTrains.from_arrays([], [], n_neurons=3, t_stop=2.0)
    assert len(s) == 0 and s.binned(0.5).sum() == 0
    with pytest.raises(InputError, match="no spikes: give t_stop"):
        SpikeTrains.from_arrays([], [], n_neurons=3)
    with pytest.raises(InputError, match="no spikes: give n_neurons"):
        SpikeTrains.from_arrays([], [], t_stop=1.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            dict(times=[0.1, 5.0], t_stop=2.0),
            InputError,
            r"1 spike\(s\) outside the recording \[0, 2\) s \(first: 5 s\)",
        ),
        (
            dict(times=[0.1, 0.5], t_start=0.2, t_stop=2.0),
            InputError,
            r"outside the recording \[0.2, 2\)",
        ),
        (dict(times=[-0.5, 0.5]), InputError, r"times must be >= 0 s .* 1 negative"),
        (
            dict(times=[0.5, 0.1], sort=False),
            InputError,
            r"sorted by time, ties by neuron id; spike 1",
        ),
        (dict(ids=[1, 0], times=[0.5, 0.5], sort=False), InputError, "ties by neuron id"),
        (dict(ids=[0, 3], n_neurons=3), InputError, r"neuron_ids must lie in 0..2 .*\(first: 3\)"),
        (dict(ids=[-1, 0]), InputError, r"neuron_ids must be >= 0 .* 1 negative \(first: -1\)"),
        (dict(ids=[0.5, 1.0]), InputError, "whole numbers"),
        (dict(ids=["a", "b"]), InputTypeError, "must hold numbers"),
        (dict(ids=[0, 1, 1]), InputError, "3 neuron ids and 2 times"),
        (dict(times=[0.1, np.nan]), InputError, "NaN or infinite"),
        (dict(t_start=1.0, t_stop=1.0), InputError, "t_stop must be greater than t_start"),
        (
            dict(neuron_names=["a"], n_neurons=2),
            InputError,
            "neuron_names has 1 entries but there are 2",
        ),
        (dict(neuron_names=["a", "a"]), InputError, r"unique; repeated: \['a'\]"),
        (dict(sort="yes"), InputTypeError, "sort must be True or False"),
        (dict(n_neurons=0), InputError, "n_neurons must be an integer >= 1"),
    ],
)
def test_bad_spike_arrays_fail_with_one_line(kwargs, error, match):
    ids = kwargs.pop("ids", [0, 1])
    times = kwargs.pop("times", [0.1, 0.5])
    with pytest.raises(error, match=match) as info:
        SpikeTrains.from_arrays(ids, times, **kwargs)
    assert "\n" not in str(info.value)


def test_bad_counts():
    with pytest.raises(InputError, match="non-negative whole numbers"):
        SpikeTrains.from_counts([[0, -1]], 0.01)
    with pytest.raises(InputError, match="did you pass rates"):
        SpikeTrains.from_counts([[0, 0.5]], 0.01)
    with pytest.raises(InputError, match=r"counts must be 2D \(n_neurons, n_bins\)"):
        SpikeTrains.from_counts([0, 1], 0.01)
    with pytest.raises(InputError, match="bin_size must be > 0"):
        SpikeTrains.from_counts([[0, 1]], -0.01)


def test_constructor_checks_without_sorting():
    with pytest.raises(InputError, match="from_arrays"):
        SpikeTrains([0, 1], [0.5, 0.1], n_neurons=2, t_start=0.0, t_stop=1.0)


# ----------------------------------------------------------------------------- AlignedRecording
@pytest.fixture
def spikes():
    return SpikeTrains.from_arrays([0, 1, 2, 0], [0.1, 0.3, 0.35, 1.9], n_neurons=3, t_stop=2.0)


def test_aligned_recording_holds_frames_and_behaviour(spikes, rng):
    frames = rng.random((8, 5, 6))
    ft = np.arange(8) * 0.25
    beh = rng.random((20, 2))
    rec = AlignedRecording(spikes, frames, ft, beh, np.arange(20) * 0.1, ["speed", "pupil"])
    assert rec.n_neurons == 3 and rec.behavior_names == ("speed", "pupil")
    np.testing.assert_array_equal(rec.frame_index([0.0, 0.24, 0.25, 1.99]), [0, 0, 1, 7])
    part = rec.window(0.5, 1.0)
    np.testing.assert_array_equal(part.frame_times, [0.5, 0.75])
    np.testing.assert_array_equal(part.stimulus, frames[2:4])
    np.testing.assert_array_equal(part.behavior, beh[5:10])
    assert len(part.spikes) == 0 and part.spikes.t_start == 0.5
    one = AlignedRecording(spikes, behavior=np.arange(4.0), behavior_times=[0.0, 0.5, 1.0, 1.5])
    assert one.behavior.shape == (4, 1) and one.stimulus is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            dict(stimulus=np.zeros((3, 2, 2)), frame_times=[0.0, 1.0, 2.5]),
            r"frame_times: 1 frame\(s\) outside the recording \[0, 2\) s",
        ),
        (
            dict(stimulus=np.zeros((3, 2, 2)), frame_times=[0.0, 1.0]),
            "frame_times has 2 times but stimulus has 3 frame",
        ),
        (
            dict(stimulus=np.zeros((3, 2, 2)), frame_times=[0.0, 1.0, 0.5]),
            r"frame_times must be strictly increasing; entry 2",
        ),
        (dict(stimulus=np.zeros((3, 2, 2))), "stimulus was given without frame_times"),
        (dict(frame_times=[0.0]), "frame_times was given without stimulus"),
        (
            dict(stimulus=np.zeros((3, 2)), frame_times=[0.0, 1.0, 1.5]),
            r"stimulus must be 3D \(n_frames, H, W\)",
        ),
        (dict(behavior=np.zeros(3), behavior_times=[-0.1, 0.0, 1.0]), "behavior_times: 1 sample"),
        (
            dict(behavior=np.zeros(3), behavior_times=[0.0, 1.0]),
            "behavior_times has 2 times but behavior has 3 sample",
        ),
        (dict(behavior=np.zeros(3), behavior_times=[0.0, 1.0, 1.0]), "strictly increasing"),
        (
            dict(behavior=np.zeros((3, 2)), behavior_times=[0.0, 1.0, 1.5], behavior_names=["x"]),
            "behavior_names has 1 entries",
        ),
        (dict(behavior_names=["x"]), "behavior_names were given without behavior"),
    ],
)
def test_unaligned_stimulus_or_behaviour_is_refused(spikes, kwargs, match):
    with pytest.raises(InputError, match=match) as info:
        AlignedRecording(spikes, **kwargs)
    assert "\n" not in str(info.value)


def test_aligned_recording_needs_spike_trains():
    with pytest.raises(InputTypeError, match="spikes must be a SpikeTrains"):
        AlignedRecording(([0], [0.1]))


# ----------------------------------------------------------------------------- splits
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("kwargs", "n_expected"),
    [(dict(n_intervals=10), 10), (dict(interval=7.0), 9), (dict(n_intervals=23), 23)],
)
def test_split_intervals_are_disjoint_and_cover_the_recording(seed, kwargs, n_expected):
    split = split_intervals(2.0, 60.0, seed=seed, **kwargs)
    every = split.train + split.val + split.test
    assert len(every) == n_expected
    assert len(set(every)) == len(every)  # drawn without replacement: no interval twice
    ordered = sorted(every)
    assert ordered[0][0] == 2.0 and ordered[-1][1] == 60.0
    for (_, b0), (a1, _) in itertools.pairwise(ordered):
        assert b0 == a1  # contiguous, no overlap, no gap
    for part in split:
        assert part == sorted(part)
        assert all(a < b for a, b in part)
    n = len(every)
    assert len(split.val) >= 1 and len(split.test) >= 1
    assert abs(len(split.train) - 0.8 * n) <= 1


def test_split_intervals_with_a_length_ends_at_t_stop():
    split = split_intervals(0.0, 10.0, interval=3.0, fractions=(0.5, 0.25, 0.25), seed=0)
    assert sorted(split.train + split.val + split.test) == [
        (0.0, 3.0),
        (3.0, 6.0),
        (6.0, 9.0),
        (9.0, 10.0),
    ]
    assert (len(split.train), len(split.val), len(split.test)) == (2, 1, 1)


def test_split_intervals_is_seeded():
    a = split_intervals(0.0, 100.0, n_intervals=50, seed=3)
    assert a == split_intervals(0.0, 100.0, n_intervals=50, seed=3)
    assert a != split_intervals(0.0, 100.0, n_intervals=50, seed=4)
    assert split_intervals(0.0, 1.0, n_intervals=5, fractions=(1.0, 0.0, 0.0)).val == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(), "exactly one of n_intervals"),
        (dict(n_intervals=4, interval=1.0), "exactly one of n_intervals"),
        (dict(n_intervals=4, fractions=(0.5, 0.5)), "three numbers"),
        (dict(n_intervals=4, fractions=(0.5, 0.4, 0.4)), "must sum to 1"),
        (dict(n_intervals=4, fractions=(1.2, -0.1, -0.1)), r"fractions\[1\] must be >= 0"),
        (dict(n_intervals=2), "2 interval.* cannot fill 3 sets"),
        (dict(n_intervals=0), "n_intervals must be an integer >= 1"),
        (dict(interval=0.0), "interval must be > 0"),
        (dict(n_intervals=4, t_stop=0.0), "t_stop must be > t_start"),
    ],
)
def test_bad_split_arguments(kwargs, match):
    t_stop = kwargs.pop("t_stop", 10.0)
    with pytest.raises(InputError, match=match):
        split_intervals(0.0, t_stop, **kwargs)


# ----------------------------------------------------------------------------- NWB
def _nwbfile():
    pynwb = pytest.importorskip("pynwb")
    return pynwb.NWBFile(
        session_description="test",
        identifier="test",
        session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    )


def _write(nwb, path):
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def _units_file(path, per_unit, names=None, speed=None, movie=None):
    from pynwb import TimeSeries
    from pynwb.image import ImageSeries

    nwb = _nwbfile()
    if names is not None:
        nwb.add_unit_column(name="unit_name", description="name")
    for k, times in enumerate(per_unit):
        extra = {"unit_name": names[k]} if names is not None else {}
        nwb.add_unit(spike_times=times, id=100 + k, **extra)
    if speed is not None:
        module = nwb.create_processing_module(name="behavior", description="behaviour")
        data, rate = speed
        module.add(TimeSeries(name="speed", data=data, unit="cm/s", starting_time=0.5, rate=rate))
        module.add(
            TimeSeries(name="pupil", data=data[:-1], unit="mm", starting_time=0.5, rate=rate)
        )
    if movie is not None:
        frames, ts = movie
        nwb.add_stimulus(ImageSeries(name="movie", data=frames, unit="n.a.", timestamps=ts))
    return _write(nwb, path)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_read_nwb_units_one_neuron_per_unit(tmp_path):
    per_unit = [[0.5, 1.5, 0.25], [], [2.0, 0.25]]  # unsorted within a unit, a silent unit
    path = _units_file(tmp_path / "u.nwb", per_unit, names=["a", "b", "c"])
    before = _digest(path)
    s = read_nwb_units(path)
    assert _digest(path) == before  # the input is never modified
    assert s.n_neurons == 3 and s.t_start == 0.0
    assert s.times.tolist() == [0.25, 0.25, 0.5, 1.5, 2.0]
    assert s.neuron_ids.tolist() == [0, 2, 0, 0, 2]
    assert 2.0 < s.t_stop < 2.0 + 1e-12
    assert s.neuron_names == ("100", "101", "102")  # the unit ids
    assert read_nwb_units(path, name_column="unit_name").neuron_names == ("a", "b", "c")
    with pytest.raises(InputError, match="no column 'label'"):
        read_nwb_units(path, name_column="label")
    s = read_nwb_units(path, t_start=0.1, t_stop=3.0)
    assert (s.t_start, s.t_stop) == (0.1, 3.0)
    with pytest.raises(
        InputError, match=r"u.nwb: times: 2 spike\(s\) outside the recording \[0.3, 3\)"
    ):
        read_nwb_units(path, t_start=0.3, t_stop=3.0)


def test_load_nwb_series_with_rate_and_timestamps(tmp_path, rng):
    speed = rng.random(30)
    frames = rng.random((4, 3, 5)).astype(np.float32)
    path = _units_file(
        tmp_path / "s.nwb",
        [[0.6, 1.0], [0.7]],
        speed=(speed, 10.0),
        movie=(frames, [0.5, 1.0, 1.5, 2.0]),
    )
    rec = load_nwb(
        path, stimulus="stimulus/presentation/movie", behavior="processing/behavior/speed"
    )
    np.testing.assert_allclose(rec.behavior_times, 0.5 + np.arange(30) / 10.0)
    np.testing.assert_array_equal(rec.behavior[:, 0], speed)
    np.testing.assert_array_equal(rec.stimulus, frames)
    np.testing.assert_array_equal(rec.frame_times, [0.5, 1.0, 1.5, 2.0])
    assert rec.behavior_names == ("speed",)
    # t_stop covers the series: the last behaviour sample (3.4 s) plus one sample
    assert rec.spikes.t_stop == pytest.approx(3.5)
    # by unique name; frames outside an explicit recording are refused
    assert load_nwb(path, stimulus="movie").stimulus.shape == (4, 3, 5)
    with pytest.raises(
        InputError, match=r"frame_times: 1 frame\(s\) outside the recording \[0, 1.8\)"
    ):
        load_nwb(path, stimulus="movie", t_stop=1.8)
    with pytest.raises(
        InputError, match=r"no TimeSeries at behavior\[0\]='running'.*processing/behavior/speed"
    ):
        load_nwb(path, behavior="running")
    with pytest.raises(InputError, match="different sample times"):
        load_nwb(path, behavior=["speed", "pupil"])


def test_units_in_a_processing_module(tmp_path):
    from pynwb.misc import Units

    nwb = _nwbfile()
    units = Units(name="sorted")
    units.add_unit(spike_times=[0.1, 0.2])
    nwb.create_processing_module(name="ecephys", description="e").add(units)
    path = _write(nwb, tmp_path / "p.nwb")
    with pytest.raises(
        InputError, match="no units table; Units tables elsewhere: processing/ecephys/sorted"
    ):
        read_nwb_units(path)
    assert read_nwb_units(path, units="processing/ecephys/sorted").times.tolist() == [0.1, 0.2]


def test_nwb_without_units_table(tmp_path):
    path = _write(_nwbfile(), tmp_path / "empty.nwb")
    with pytest.raises(InputError, match="the NWB file has no units table") as info:
        read_nwb_units(path)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="no units table"):
        load_nwb(path)


@pytest.mark.parametrize("damage", ["missing", "empty", "text", "truncated", "plain-hdf5"])
def test_bad_nwb_files(tmp_path, damage):
    good = _units_file(tmp_path / "good.nwb", [[0.1], [0.2]])
    path = tmp_path / "bad.nwb"
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "text":
        path.write_text("unit,spike_time\n0,0.1\n")
    elif damage == "truncated":
        path.write_bytes(good.read_bytes()[:3000])
    elif damage == "plain-hdf5":
        with h5py.File(path, "w") as f:
            f["x"] = np.arange(3)
    expected = MissingFileError if damage == "missing" else UnreadableFileError
    for reader in (read_nwb_units, load_nwb):
        with pytest.raises(expected, match="bad.nwb") as info:
            reader(path)
        assert "\n" not in str(info.value)
