"""Calcium traces: container checks, alignment by label, HDF5/NPZ/NPY round trips, NWB."""

import numpy as np
import pytest

from data_loaders.calcium import CalciumData, Epoch, align_animals, load_calcium, save_calcium_hdf5


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
        with pytest.raises(ValueError, match="sampling_rate"):
            load_calcium(path)
        back = load_calcium(path, sampling_rate=5.0, neuron_labels=d.neuron_labels, epochs=d.epochs)
    np.testing.assert_array_equal(back.traces, d.traces)
    assert back.neuron_labels == d.neuron_labels and back.epochs == d.epochs
    assert back.sampling_rate == 5.0


def test_align_animals_marks_missing_neurons():
    x, names = align_animals([np.ones((2, 5)), np.zeros((3, 5))], [["a", "b"], ["b", "c", "d"]])
    assert names == ("a", "b", "c", "d") and x.shape == (2, 4, 5)
    assert np.isnan(x[0, 2:]).all() and np.isnan(x[1, 0]).all() and (x[1, 1] == 0).all()
    with pytest.raises(ValueError, match="same number of frames"):
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
    with pytest.raises(ValueError, match=message):
        CalciumData(traces, 5.0)


def test_bad_files(tmp_path, rng):
    with pytest.raises(FileNotFoundError):
        load_calcium(tmp_path / "nope.h5")
    (tmp_path / "x.csv").write_text("1")
    with pytest.raises(ValueError, match="expected a .npy"):
        load_calcium(tmp_path / "x.csv")
    with pytest.raises(ValueError, match="unique"):
        CalciumData(rng.random((1, 2, 5)), 1.0, ["a", "a"])


def test_nwb(tmp_path, rng):
    pynwb = pytest.importorskip("pynwb", reason="install the 'nwb' extra")
    from datetime import datetime, timezone

    from pynwb.ophys import ImageSegmentation, OpticalChannel, RoiResponseSeries

    paths = []
    for a, labels in enumerate([["AWB", "AIY"], ["AIY", "ASH"]]):
        nwb = pynwb.NWBFile("s", f"id{a}", datetime(2024, 1, 1, tzinfo=timezone.utc))
        dev = nwb.create_device("scope")
        ch = OpticalChannel("ch", "c", 500.0)
        plane = nwb.create_imaging_plane("p", ch, "d", dev, 600.0, 10.0, "GCaMP", "head")
        seg = ImageSegmentation()
        ps = seg.create_plane_segmentation("rois", plane, "PlaneSegmentation")
        ps.add_column("label", "neuron label")
        for lab in labels:
            ps.add_roi(image_mask=np.ones((2, 2)), label=lab)
        mod = nwb.create_processing_module("ophys", "o")
        mod.add(seg)
        region = ps.create_roi_table_region("all", list(range(len(labels))))
        rrs = RoiResponseSeries("F", rng.random((20, 2)), region, "a.u.", rate=4.0)
        from pynwb.ophys import Fluorescence

        mod.add(Fluorescence(roi_response_series=rrs))
        nwb.add_epoch(1.0, 2.0, ["stim"])
        path = tmp_path / f"a{a}.nwb"
        with pynwb.NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)
        paths.append(path)
    d = load_calcium(paths)
    assert d.neuron_labels == ("AWB", "AIY", "ASH") and d.shape == (2, 3, 20)
    assert d.missing.tolist() == [[False, False, True], [True, False, False]]
