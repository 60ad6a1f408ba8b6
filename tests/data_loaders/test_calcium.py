"""Calcium traces: container checks, alignment by label, HDF5/NPZ/NPY round trips, NWB.

The NWB tests write small files with pynwb (one per animal) and skip where it is absent."""

import numpy as np
import pytest

from data_loaders.calcium import CalciumData, Epoch, align_animals, load_calcium, save_calcium_hdf5
from data_loaders.errors import (
    InputError,
    MissingFileError,
    OutputExistsError,
    UnreadableFileError,
)


def _data(rng):
    x = rng.standard_normal((2, 7, 30))
    x[1, 4] = np.nan
    return CalciumData(x, 5.0, [f"c{i}" for i in range(7)], ["w1", "w2"], [("stim", 1.0, 3.0)])


def test_container(rng):
    d = _data(rng)
    assert d.shape == (2, 7, 30) and d.missing.sum() == 1 and d.missing[1, 4]
    assert d.epoch_mask("stim").sum() == 10 and d.epochs[0] == Epoch("stim", 1.0, 3.0)


@pytest.mark.parametrize("suffix", [".h5", ".npz", ".npy"])
def test_round_trip(rng, tmp_path, suffix):
    d = _data(rng)
    path = tmp_path / f"t{suffix}"
    if suffix == ".h5":
        save_calcium_hdf5(path, d)
        back = load_calcium(path)
    elif suffix == ".npz":
        np.savez(
            path,
            traces=d.traces,
            sampling_rate=d.sampling_rate,
            neuron_labels=np.array(d.neuron_labels),
            epoch_name=np.array(["stim"]),
            epoch_start=np.array([1.0]),
            epoch_stop=np.array([3.0]),
        )
        back = load_calcium(path)
    else:
        np.save(path, d.traces)
        with pytest.raises(InputError, match="sampling_rate"):
            load_calcium(path)
        back = load_calcium(path, sampling_rate=5.0, neuron_labels=d.neuron_labels, epochs=d.epochs)
    np.testing.assert_array_equal(back.traces, d.traces)
    assert back.neuron_labels == d.neuron_labels and back.epochs == d.epochs
    assert back.sampling_rate == 5.0


def test_align_animals_marks_missing_neurons():
    x, names = align_animals([np.ones((2, 5)), np.zeros((3, 5))], [["a", "b"], ["b", "c", "d"]])
    assert names == ("a", "b", "c", "d") and x.shape == (2, 4, 5)
    assert np.isnan(x[0, 2:]).all() and np.isnan(x[1, 0]).all() and (x[1, 1] == 0).all()
    with pytest.raises(InputError, match="same number of frames"):
        align_animals([np.ones((1, 5)), np.ones((1, 4))], [["a"], ["a"]])


@pytest.mark.parametrize(
    "traces, message",
    [
        (np.ones((7, 30)), "3 dimensions.*traces\\[None\\]"),
        (np.concatenate([np.ones((1, 3, 30)), np.full((1, 3, 30), np.nan)]), "every neuron"),
        (np.where(np.arange(30) == 3, np.nan, np.ones((1, 3, 30))), "some frames"),
    ],
    ids=["2d", "all-nan-animal", "gap"],
)
def test_bad_traces(traces, message):
    with pytest.raises(InputError, match=message):
        CalciumData(traces, 5.0)


def test_bad_files(tmp_path, rng):
    with pytest.raises(MissingFileError, match="no such file"):
        load_calcium(tmp_path / "nope.h5")
    (tmp_path / "x.csv").write_text("1")
    with pytest.raises(InputError, match="expected a .npy"):
        load_calcium(tmp_path / "x.csv")
    with pytest.raises(InputError, match="unique"):
        CalciumData(rng.random((1, 2, 5)), 1.0, ["a", "a"])
    with pytest.raises(InputError, match="sampling_rate must be > 0"):
        CalciumData(rng.random((1, 2, 5)), 0.0)
    with pytest.raises(InputError, match="no epoch named 'x'"):
        _data(rng).epoch_mask("x")
    d = _data(rng)
    save_calcium_hdf5(tmp_path / "d.h5", d)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        save_calcium_hdf5(tmp_path / "d.h5", d)


def _good_file(tmp_path, suffix, rng):
    """A valid traces file of each format (NWB written with pynwb)."""
    d = _data(rng)
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / f"good{suffix}"
    if suffix == ".h5":
        save_calcium_hdf5(path, d)
    elif suffix == ".npz":
        np.savez(path, traces=d.traces, sampling_rate=d.sampling_rate)
    elif suffix == ".npy":
        np.save(path, d.traces)
    else:
        _write_nwb(path, rng.standard_normal((9, 3)), ["a", "b", "c"])
    return path


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".h5", ".nwb"])
@pytest.mark.parametrize("damage", ["empty", "truncated", "other-format", "text"])
def test_unreadable_files_are_one_line_input_errors(tmp_path, rng, suffix, damage):
    """Every reader turns an empty, truncated or foreign file into UnreadableFileError."""
    good = _good_file(tmp_path, suffix, rng)
    load_calcium(good, sampling_rate=5.0)  # the intact file reads
    bad = tmp_path / f"bad{suffix}"
    raw = good.read_bytes()
    if damage == "empty":
        bad.write_bytes(b"")
    elif damage == "truncated":
        bad.write_bytes(raw[: len(raw) // 2])
    elif damage == "other-format":  # a valid file of another of the formats, renamed
        other = {".npy": ".npz", ".npz": ".npy", ".h5": ".npy", ".nwb": ".h5"}[suffix]
        bad.write_bytes(_good_file(tmp_path / "other", other, rng).read_bytes())
    else:
        bad.write_text("neuron,time,value\n" * 50)
    with pytest.raises(UnreadableFileError) as err:
        load_calcium(bad, sampling_rate=5.0)
    message = str(err.value)
    assert "\n" not in message and str(bad) in message, message
    assert "allow_pickle" not in message and "pickle" not in message.lower(), message
    if damage == "empty":
        assert "empty" in message
    if damage == "other-format" and suffix != ".nwb":
        assert "suffix" in message  # says what the file is


# ----------------------------------------------------------------------------- NWB
def _write_nwb(
    path,
    traces,
    labels=None,
    rate=4.0,
    container="Fluorescence",
    epochs=(),
    subject=None,
    timestamps=None,
    starting_time=0.0,
    extra=None,
):
    """One animal's NWB file: imaging plane, ROIs, one RoiResponseSeries (time, rois)."""
    pynwb = pytest.importorskip("pynwb")
    from datetime import datetime, timezone

    from pynwb.file import Subject
    from pynwb.ophys import DfOverF, Fluorescence, ImageSegmentation, OpticalChannel

    nwb = pynwb.NWBFile(
        session_description="calcium test",
        identifier=str(path),
        session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc),
        subject=Subject(subject_id=subject) if subject else None,
    )
    device = nwb.create_device(name="scope")
    channel = OpticalChannel(name="green", description="GCaMP", emission_lambda=520.0)
    plane = nwb.create_imaging_plane(
        name="plane",
        optical_channel=channel,
        description="head ganglia",
        device=device,
        excitation_lambda=488.0,
        imaging_rate=rate,
        indicator="GCaMP6s",
        location="head",
    )
    seg = ImageSegmentation(name="ImageSegmentation")
    rois = seg.create_plane_segmentation(
        name="PlaneSegmentation", description="neurons", imaging_plane=plane
    )
    if labels is not None:
        rois.add_column(name="label", description="neuron identity")
    n_rois = traces.shape[1]
    for k in range(n_rois):
        mask = np.zeros((4, 5))
        mask.flat[k] = 1.0
        rois.add_roi(image_mask=mask, **({"label": labels[k]} if labels is not None else {}))
    ophys = nwb.create_processing_module(name="ophys", description="optical physiology")
    ophys.add(seg)
    region = rois.create_roi_table_region(region=list(range(n_rois)), description="all ROIs")
    clock = {"timestamps": timestamps} if timestamps is not None else {"rate": rate}
    if timestamps is None:
        clock["starting_time"] = starting_time
    kinds = {"Fluorescence": Fluorescence, "DfOverF": DfOverF}
    for kind, name, data in [(container, "RoiResponseSeries", traces), *(extra or [])]:
        if kind not in ophys.data_interfaces:
            ophys.add(kinds[kind](name=kind))
        ophys[kind].create_roi_response_series(
            name=name, data=data, rois=region, unit="dF/F", **clock
        )
    for name, start, stop in epochs:
        nwb.add_epoch(start_time=start, stop_time=stop, tags=[name])
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def _two_animals(tmp_path, rng, **kw):
    """Animal w1 has neurons AWB, AIY, ASH; animal w2 has AIY, ASH, AVA, RIM (9 frames)."""
    sets = {"w1": ["AWB", "AIY", "ASH"], "w2": ["AIY", "ASH", "AVA", "RIM"]}
    traces = {a: rng.standard_normal((9, len(lab))) for a, lab in sets.items()}
    paths = [
        _write_nwb(tmp_path / f"{a}.nwb", traces[a], lab, subject=a, **kw)
        for a, lab in sets.items()
    ]
    return paths, traces


def test_nwb_traces_labels_rate_epochs(tmp_path, rng):
    pytest.importorskip("pynwb")
    epochs = [("salt", 0.5, 1.25), ("buffer", 1.25, 2.0)]
    paths, traces = _two_animals(tmp_path, rng, rate=4.0, epochs=epochs)
    d = load_calcium(paths)
    assert d.neuron_labels == ("AWB", "AIY", "ASH", "AVA", "RIM")
    assert d.animal_ids == ("w1", "w2") and d.shape == (2, 5, 9)
    assert d.sampling_rate == 4.0
    assert d.epochs == (Epoch("salt", 0.5, 1.25), Epoch("buffer", 1.25, 2.0))
    np.testing.assert_array_equal(d.traces[0, :3], traces["w1"].T)
    np.testing.assert_array_equal(d.traces[1, 1:], traces["w2"].T)
    assert d.missing.tolist() == [
        [False, False, False, True, True],
        [True, False, False, False, False],
    ]
    assert np.isnan(d.traces[0, 3:]).all() and np.isnan(d.traces[1, 0]).all()


@pytest.mark.parametrize("how", ["dfoverf", "timestamps", "offset", "ids", "one-path"])
def test_nwb_variants(tmp_path, rng, how):
    """DfOverF preferred to Fluorescence; rate from timestamps; epochs from the first frame."""
    pytest.importorskip("pynwb")
    x = rng.standard_normal((8, 3))
    kw = {"labels": ["a", "b", "c"], "epochs": [("stim", 11.0, 12.0)], "starting_time": 10.0}
    if how == "dfoverf":
        kw["container"] = "DfOverF"
        kw["extra"] = [("Fluorescence", "raw", 100.0 + x)]
    elif how == "timestamps":
        kw.update(timestamps=10.0 + np.arange(8) / 2.5, starting_time=None)
    elif how == "ids":
        kw["labels"] = None
    path = _write_nwb(tmp_path / "worm.nwb", x, rate=2.5, **kw)
    d = load_calcium(path if how != "one-path" else [path])
    np.testing.assert_array_equal(d.traces[0], x.T)
    assert d.sampling_rate == pytest.approx(2.5)
    assert d.epochs == (Epoch("stim", 1.0, 2.0),)  # session time 11 s = 1 s after frame 0
    assert d.neuron_labels == (("0", "1", "2") if how == "ids" else ("a", "b", "c"))
    assert d.animal_ids == ("worm",)


def test_nwb_series_choice_and_intervals(tmp_path, rng):
    pytest.importorskip("pynwb")
    from data_loaders.calcium import CalciumDataWarning, load_calcium_nwb

    x = rng.standard_normal((6, 2))
    extra = [("Fluorescence", "second", 2 * x)]
    path = _write_nwb(tmp_path / "w.nwb", x, ["a", "b"], extra=extra, container="Fluorescence")
    with pytest.warns(CalciumDataWarning, match="2 RoiResponseSeries"):
        load_calcium_nwb(path)
    np.testing.assert_array_equal(load_calcium_nwb(path, series="second").traces[0], 2 * x.T)
    with pytest.raises(InputError, match="named 'nope'"):
        load_calcium_nwb(path, series="nope")
    with pytest.raises(InputError, match="no intervals table 'stimuli'"):
        load_calcium_nwb(path, series="second", intervals="stimuli")
    assert load_calcium_nwb(path, series="second", intervals=None).epochs == ()


def test_nwb_errors(tmp_path, rng):
    pynwb = pytest.importorskip("pynwb")
    from datetime import datetime, timezone

    from data_loaders.calcium import load_calcium_nwb

    with pytest.raises(MissingFileError, match=r"paths\[0\]: no such file"):
        load_calcium_nwb([tmp_path / "absent.nwb"])
    with pytest.raises(MissingFileError, match="path: no such file"):
        load_calcium(tmp_path / "absent.nwb")
    empty = tmp_path / "empty.nwb"
    nwb = pynwb.NWBFile(
        session_description="no imaging",
        identifier="e",
        session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc),
    )
    with pynwb.NWBHDF5IO(str(empty), "w") as io:
        io.write(nwb)
    with pytest.raises(InputError, match="no 'ophys' processing module"):
        load_calcium(empty)
    a = _write_nwb(tmp_path / "a.nwb", rng.random((6, 2)), ["x", "y"], rate=4.0)
    b = _write_nwb(tmp_path / "b.nwb", rng.random((6, 2)), ["x", "y"], rate=5.0)
    with pytest.raises(InputError, match="different sampling rates"):
        load_calcium([a, b])
    c = _write_nwb(tmp_path / "c.nwb", rng.random((7, 2)), ["x", "y"], rate=4.0)
    with pytest.raises(InputError, match="same number of frames"):
        load_calcium([a, c])


def test_nwb_without_pynwb_gives_install_hint(tmp_path, monkeypatch):
    import sys

    from data_loaders.calcium import load_calcium_nwb

    monkeypatch.setitem(sys.modules, "pynwb", None)
    with pytest.raises(ImportError, match="pip install"):
        load_calcium_nwb([tmp_path / "x.nwb"])
