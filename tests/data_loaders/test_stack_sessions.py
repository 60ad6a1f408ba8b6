"""Sessions of one animal stacked on the animal axis, cells aligned by registered label."""

import numpy as np
import pytest

from data_loaders.calcium import (
    CalciumData,
    CalciumDataWarning,
    Epoch,
    load_calcium,
    save_calcium_hdf5,
    stack_sessions,
)
from data_loaders.errors import InputError


def _sessions(rng, n_frames=(40, 40, 40)):
    """Three sessions of one mouse: each finds a different subset of 9 registered cells,
    in its own row order (as a registration tool's ids come out)."""
    truth = rng.standard_normal((9, max(n_frames)))
    found = [[0, 1, 2, 3, 4, 5, 6], [8, 3, 1, 0, 5, 2], [2, 4, 0, 1, 3, 7]]
    traces = [truth[rows, :n] + s for s, (rows, n) in enumerate(zip(found, n_frames, strict=True))]
    labels = [[f"cell{r:02d}" for r in rows] for rows in found]
    return truth, found, traces, labels


def _check_aligned(data, truth, found, labels):
    assert data.shape == (3, 9, 40)
    assert data.neuron_labels == tuple(dict.fromkeys(v for lab in labels for v in lab))
    for s, rows in enumerate(found):
        for r in range(9):
            i = data.neuron_labels.index(f"cell{r:02d}")
            if r in rows:
                np.testing.assert_array_equal(data.traces[s, i], truth[r, :40] + s)
            else:
                assert data.missing[s, i]
    assert int(data.missing.sum()) == 3 * 9 - sum(len(r) for r in found)


def test_arrays_aligned_by_label(rng):
    truth, found, traces, labels = _sessions(rng)
    data = stack_sessions(traces, labels=labels, sampling_rate=15.0)
    _check_aligned(data, truth, found, labels)
    assert data.animal_ids == ("session0", "session1", "session2")
    assert data.sampling_rate == 15.0 and data.epochs == ()


@pytest.mark.parametrize("suffix", [".h5", ".npz"])
def test_one_file_per_session(rng, tmp_path, suffix):
    """The way users store them: one file per session, registered ids as neuron_labels."""
    truth, found, traces, labels = _sessions(rng)
    epochs = [("stim", 0.5, 1.5)]
    paths = []
    for day, (x, lab) in enumerate(zip(traces, labels, strict=True)):
        path = tmp_path / f"mouse1_day{day + 1}{suffix}"
        if suffix == ".h5":
            save_calcium_hdf5(path, CalciumData(x[None], 15.0, lab, ["mouse1"], epochs))
        else:
            np.savez(
                path,
                traces=x[None],
                sampling_rate=15.0,
                neuron_labels=np.array(lab),
                epoch_name=np.array(["stim"]),
                epoch_start=np.array([0.5]),
                epoch_stop=np.array([1.5]),
            )
        paths.append(path)
    data = stack_sessions(paths)
    _check_aligned(data, truth, found, labels)
    assert data.animal_ids == ("mouse1_day1", "mouse1_day2", "mouse1_day3")
    assert data.epochs == (Epoch("stim", 0.5, 1.5),)
    back = tmp_path / "stacked.h5"
    save_calcium_hdf5(back, data)
    np.testing.assert_array_equal(load_calcium(back).traces, data.traces)


def test_calcium_data_sessions_and_npy_files(rng, tmp_path):
    truth, found, traces, labels = _sessions(rng)
    sessions = [
        CalciumData(x[None], 15.0, lab, [f"d{i}"])
        for i, (x, lab) in enumerate(zip(traces, labels, strict=True))
    ]
    data = stack_sessions(sessions)
    _check_aligned(data, truth, found, labels)
    assert data.animal_ids == ("d0", "d1", "d2")
    paths = []
    for i, x in enumerate(traces):
        paths.append(tmp_path / f"s{i}.npy")
        np.save(paths[-1], x[None])
    data = stack_sessions(paths, labels=labels, sampling_rate=15.0, session_ids=["a", "b", "c"])
    _check_aligned(data, truth, found, labels)
    assert data.animal_ids == ("a", "b", "c")


def test_nan_rows_are_cells_not_found(rng):
    """A NaN row in a session is a cell it did not find; a cell found nowhere is left out."""
    x = rng.standard_normal((2, 4, 30))
    x[0, 1] = np.nan
    x[:, 3] = np.nan
    sessions = [CalciumData(x[[s]], 10.0, ["a", "b", "c", "z"]) for s in range(2)]
    data = stack_sessions(sessions)
    assert data.neuron_labels == ("a", "c", "b")  # order of first appearance
    assert data.missing.tolist() == [[False, False, True], [False, False, False]]


def test_different_lengths_are_refused_or_truncated(rng):
    _, _, traces, labels = _sessions(rng, n_frames=(40, 37, 45))
    with pytest.raises(InputError, match=r"different numbers of frames: \[40, 37, 45\].*truncate"):
        stack_sessions(traces, labels=labels, sampling_rate=15.0)
    with pytest.warns(CalciumDataWarning, match=r"37 frames: dropped \[3, 0, 8\]"):
        data = stack_sessions(traces, labels=labels, sampling_rate=15.0, truncate=True)
    assert data.shape == (3, 9, 37)
    np.testing.assert_array_equal(data.traces[2, 0], traces[2][2, :37])  # cell00 of session 2


def test_bad_sessions(rng):
    _, _, traces, labels = _sessions(rng)
    rate = 15.0
    sessions = [CalciumData(x[None], rate, lab) for x, lab in zip(traces, labels, strict=True)]
    sessions[1] = CalciumData(traces[1][None], 30.0, labels[1])
    with pytest.raises(InputError, match=r"different sampling rates: \[15.0, 30.0, 15.0\]"):
        stack_sessions(sessions)
    unregistered = [[f"roi{i}" for i in range(len(lab))] for lab in labels]
    unregistered[1] = [f"x{i}" for i in range(len(labels[1]))]
    with pytest.raises(InputError, match="share 0 registered cell.*registration ids"):
        stack_sessions(traces, labels=unregistered, sampling_rate=rate)
    with pytest.raises(InputError, match="labels="):
        stack_sessions(traces, sampling_rate=rate)
    with pytest.raises(InputError, match="sampling_rate"):
        stack_sessions(traces, labels=labels)
    with pytest.raises(InputError, match="labels\\[0\\] has 2 entries"):
        stack_sessions(traces, labels=[["a", "b"], labels[1], labels[2]], sampling_rate=rate)
    with pytest.raises(InputError, match="one sequence per session"):
        stack_sessions(traces, labels=labels[:2], sampling_rate=rate)
    with pytest.raises(InputError, match="at least one session"):
        stack_sessions([])
    two = CalciumData(np.stack([traces[0], traces[0] + 1]), rate, labels[0])
    with pytest.raises(InputError, match="holds 2 animals.*ONE animal"):
        stack_sessions([two, sessions[0]])


def test_different_epochs_need_explicit_epochs(rng):
    _, _, traces, labels = _sessions(rng)
    sessions = [
        CalciumData(x[None], 15.0, lab, epochs=[("stim", 0.5 + i, 1.5 + i)])
        for i, (x, lab) in enumerate(zip(traces, labels, strict=True))
    ]
    with pytest.raises(InputError, match="different epochs.*epochs="):
        stack_sessions(sessions)
    assert stack_sessions(sessions, epochs=()).epochs == ()
    assert stack_sessions(sessions, epochs=[("stim", 0.0, 1.0)]).epoch_names == ["stim"]


def test_stacked_sessions_feed_the_connectome():
    """Registered cells in shuffled row order, some not found: stacking restores the layout."""
    from data_loaders.simulate.calcium import simulate_calcium
    from neuro.connectome import DynamicConnectome

    sim = simulate_calcium(
        n_animals=3, n_neurons=12, n_frames=400, n_communities=1, community_size=4, n_blocks=4
    )
    rng = np.random.default_rng(3)
    traces, labels = [], []
    for s in range(3):
        rows = rng.permutation(12)[: 12 - s]  # session s misses s cells
        traces.append(sim.data.traces[s, rows])
        labels.append([sim.data.neuron_labels[r] for r in rows])
    data = stack_sessions(traces, labels=labels, sampling_rate=sim.data.sampling_rate)
    order = [data.neuron_labels.index(v) for v in sim.data.neuron_labels]
    expected = np.where(data.missing[:, order, None], np.nan, sim.data.traces)
    np.testing.assert_array_equal(data.traces[:, order], expected)
    model = DynamicConnectome(rank=2, n_restarts=1, n_bootstrap=0, device="cpu").fit(data)
    assert model.animal_ids_ == ["session0", "session1", "session2"]
    assert model.n_missing_entries_ > 0


def test_two_dimensional_session_files(rng, tmp_path):
    """One session saved on its own is (cells, frames): .npy and .npz files as users write them."""
    a, b = rng.random((5, 300)), rng.random((4, 300))
    np.save(tmp_path / "day1.npy", a)
    np.savez(tmp_path / "day2.npz", traces=b, sampling_rate=10.0)
    data = stack_sessions(
        [tmp_path / "day1.npy", tmp_path / "day2.npz"],
        labels=[list("abcde"), list("bcdf")],
        sampling_rate=10.0,
    )
    assert data.shape == (2, 6, 300) and data.animal_ids == ("day1", "day2")
    np.testing.assert_array_equal(data.traces[0, :5], a)
    np.testing.assert_array_equal(data.traces[1, [1, 2, 3, 5]], b)
    assert np.isnan(data.traces[1, [0, 4]]).all() and np.isnan(data.traces[0, 5]).all()
