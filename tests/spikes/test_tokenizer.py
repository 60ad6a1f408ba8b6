"""The Neuroformer tokeniser: vocabulary, windows, truncation, round trip and bad input."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from neuro.errors import InputError, InputTypeError
from neuro.spikes import BinnedSpikes, SpikeTokenizer, TruncationWarning, truncation_report

DT = 0.01


def make_spikes(rng, n_neurons=7, n_bins=300, rate=0.15, on_edges=False):
    """Spikes with known bins: (ids, times, bins), sorted by time, ties by id."""
    counts = rng.poisson(rate, size=(n_bins, n_neurons))
    b, n = np.nonzero(counts)
    reps = counts[b, n]
    bins = np.repeat(b, reps).astype(np.int64)
    ids = np.repeat(n, reps).astype(np.int64)
    # bin starts (the float values k * dt), or times well inside the bins
    offsets = 0.0 if on_edges else rng.uniform(0.001, 0.999, size=len(bins))
    times = (bins + offsets) * DT
    order = np.lexsort((ids, times))
    return ids[order], times[order], bins[order]


def reference_tokens(tok, ids, bins, anchor_bins):
    """The tokens of each anchor, one anchor and one window at a time (the plain definition)."""
    out = {key: [] for key in ("ids", "dts", "past_ids", "past_dts", "truncated", "past_truncated")}
    for a in anchor_bins:
        windows = {
            "": (a - tok.n_bins, a, tok.block_size),
            "past_": (a - tok.n_bins - tok.past_n_bins, a - tok.n_bins, tok.past_block_size),
        }
        for prefix, (lo, hi, block) in windows.items():
            inside = [(int(b), int(i)) for b, i in zip(bins, ids, strict=True) if lo <= b < hi]
            inside.sort()
            kept = inside[len(inside) - min(len(inside), block - 2) :]
            row_ids = [tok.sos_id] + [i for _, i in kept] + [tok.eos_id]
            row_dts = [tok.sos_dt] + [b - lo for b, _ in kept] + [tok.eos_dt]
            row_ids += [tok.pad_id] * (block - len(row_ids))
            row_dts += [tok.pad_dt] * (block - len(row_dts))
            out[prefix + "ids"].append(row_ids)
            out[prefix + "dts"].append(row_dts)
            out[prefix + "truncated"].append(len(inside) - len(kept))
    return {key: np.array(value) for key, value in out.items()}


def encode_quietly(tok, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)
        return tok.encode(*args, **kwargs)


# --------------------------------------------------------------- vocabulary
def test_vocabulary_of_the_paper_defaults():
    tok = SpikeTokenizer(n_neurons=7)
    assert (tok.dt, tok.window, tok.past_window) == (0.01, 0.05, 0.15)
    assert (tok.block_size, tok.past_block_size) == (100, 700)
    assert (tok.sos_id, tok.eos_id, tok.pad_id, tok.n_ids) == (7, 8, 9, 10)
    assert (tok.n_bins, tok.past_n_bins) == (5, 15)
    assert (tok.sos_dt, tok.eos_dt, tok.pad_dt, tok.n_dt) == (15, 16, 17, 18)


def test_dt_vocabulary_follows_the_longer_window():
    tok = SpikeTokenizer(n_neurons=9, window=0.08, past_window=0.03)
    assert (tok.n_bins, tok.past_n_bins, tok.sos_dt, tok.n_dt) == (8, 3, 8, 11)


# ------------------------------------------------- vectorised vs a plain loop
@pytest.mark.parametrize(
    ("window", "past_window", "block", "past_block", "stride"),
    [(0.05, 0.15, 12, 20, 0.05), (0.03, 0.02, 4, 3, 0.01), (0.07, 0.0, 30, 3, 0.02)],
)
def test_encode_matches_a_reference_loop(rng, window, past_window, block, past_block, stride):
    ids, times, bins = make_spikes(rng, n_neurons=7, n_bins=200, rate=0.3)
    tok = SpikeTokenizer(7, DT, window, past_window, block, past_block)
    anchors = tok.anchors(0.0, 2.0, stride=stride)
    anchor_bins = np.rint(anchors / DT).astype(np.int64)
    batch = encode_quietly(tok, (ids, times), anchors, t_stop=2.0)
    expected = reference_tokens(tok, ids, bins, anchor_bins)
    for key, value in expected.items():
        np.testing.assert_array_equal(batch[key], value, err_msg=key)
        assert batch[key].dtype == np.int64
    assert batch["ids"].shape == (len(anchors), block)
    assert batch["past_ids"].shape == (len(anchors), past_block)
    np.testing.assert_array_equal(batch["pad_mask"], expected["ids"] == tok.pad_id)
    np.testing.assert_array_equal(batch["past_pad_mask"], expected["past_ids"] == tok.pad_id)
    assert batch["pad_mask"].dtype == np.bool_
    np.testing.assert_array_equal(batch["anchors"], anchors)
    assert batch["truncated"].any()  # each case exercises truncation


# ---------------------------------------------------------------- round trip
@pytest.mark.parametrize("on_edges", [True, False])
def test_round_trip_returns_every_spike_once_at_its_bin_start(rng, on_edges):
    ids, times, bins = make_spikes(rng, n_neurons=7, n_bins=400, rate=0.4, on_edges=on_edges)
    tok = SpikeTokenizer(7, DT, 0.05, 0.1, block_size=64, past_block_size=64)
    anchors = tok.anchors(0.0, 4.0)  # current windows tile [0.1, 4.0) without overlap
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no truncation, so no warning
        batch = tok.encode((ids, times), anchors, t_stop=4.0)
    assert batch["truncated"].sum() == 0
    got_ids, got_times = tok.decode(batch["ids"], batch["dts"], anchors)
    order = np.lexsort((ids, bins))  # tokens go by bin, then by neuron id
    tiled = order[bins[order] >= 10]  # the first 0.1 s is only ever a past window
    np.testing.assert_array_equal(got_ids, ids[tiled])
    assert got_times.dtype == np.float64
    np.testing.assert_array_equal(got_times, bins[tiled] * DT)  # bit for bit
    if on_edges:
        np.testing.assert_array_equal(got_times, times[tiled])
    assert batch["n_spikes"].sum() == len(tiled)


def test_round_trip_of_one_row_and_of_the_past_window(rng):
    ids, times, bins = make_spikes(rng, n_neurons=7, n_bins=100, rate=0.5, on_edges=True)
    tok = SpikeTokenizer(7, DT, 0.02, 0.03, block_size=40, past_block_size=40)
    anchor = 0.5
    batch = tok.encode((ids, times), anchor)
    n, t = tok.decode(batch["ids"][0], batch["dts"][0], anchor)
    cur = (bins >= 48) & (bins < 50)
    np.testing.assert_array_equal(n, ids[cur])
    np.testing.assert_array_equal(t, times[cur])
    n, t = tok.decode(batch["past_ids"], batch["past_dts"], [anchor], window="past")
    past = (bins >= 45) & (bins < 48)
    assert past.sum() > 0
    np.testing.assert_array_equal(n, ids[past])
    np.testing.assert_array_equal(t, times[past])


def test_bins_are_exact_far_from_zero():
    k = np.array([3, 29, 1_000_003, 98_765_431])  # up to ~11 days at 10 ms
    times = k * DT
    tok = SpikeTokenizer(2, DT, 0.01, 0.0, block_size=3, past_block_size=3)
    anchors = (k + 1) * DT
    batch = tok.encode((np.zeros(4, np.int64), times), anchors)
    np.testing.assert_array_equal(batch["dts"][:, 1], 0)
    _, back = tok.decode(batch["ids"], batch["dts"], anchors)
    np.testing.assert_array_equal(back, times)


def test_decode_reads_to_the_first_eos_and_skips_specials():
    tok = SpikeTokenizer(3, DT, 0.03, 0.0, block_size=8, past_block_size=3)
    ids = [tok.sos_id, 2, tok.pad_id, 0, tok.eos_id, 1, tok.pad_id, tok.pad_id]
    dts = [tok.sos_dt, 1, 0, 2, tok.eos_dt, 99, 0, 0]  # after EOS nothing is read
    n, t = tok.decode(ids, dts, 0.1)
    assert n.tolist() == [2, 0]
    np.testing.assert_allclose(t, [0.08, 0.09])


# ----------------------------------------------------- order, windows, padding
def test_spikes_of_a_bin_are_ordered_by_neuron_id():
    tok = SpikeTokenizer(7, DT, 0.02, 0.0, block_size=8, past_block_size=3)
    ids = np.array([5, 2, 6, 0, 3])
    times = np.array([0.101, 0.104, 0.109, 0.112, 0.1125])
    batch = tok.encode((ids, times), 0.12)
    assert batch["ids"][0].tolist() == [7, 2, 5, 6, 0, 3, 8, 9]
    assert batch["dts"][0].tolist() == [2, 0, 0, 0, 1, 1, 3, 4]


def test_order_within_a_bin_with_a_huge_vocabulary():
    tok = SpikeTokenizer(2**41, DT, 0.01, 0.0, block_size=5, past_block_size=3)
    ids = np.array([2**40, 5, 2, 2**40 + 1])  # bins near 2**23: the sort key would overflow
    times = 100_000.0 + np.array([0.001, 0.002, 0.003, 0.004])
    with pytest.warns(TruncationWarning, match="1 spikes dropped"):
        batch = tok.encode((ids, times), 100_000.01)
    assert batch["ids"][0, 1:4].tolist() == [5, 2**40, 2**40 + 1]  # the last 3 of 2, 5, ...
    assert batch["truncated"].tolist() == [1]


def test_empty_windows_give_sos_eos_then_padding():
    tok = SpikeTokenizer(7, DT, 0.05, 0.05, block_size=6, past_block_size=4)
    batch = tok.encode((np.array([1]), np.array([0.9])), [0.2, 0.4])
    assert batch["ids"].tolist() == [[7, 8, 9, 9, 9, 9]] * 2
    assert batch["dts"].tolist() == [[5, 6, 7, 7, 7, 7]] * 2
    assert batch["past_ids"].tolist() == [[7, 8, 9, 9]] * 2
    assert batch["pad_mask"].tolist() == [[False, False, True, True, True, True]] * 2
    assert batch["n_spikes"].tolist() == [0, 0]
    empty = tok.encode((np.zeros(0, np.int64), np.zeros(0)), 0.2)
    assert empty["ids"].tolist() == [[7, 8, 9, 9, 9, 9]]


def test_window_edges_and_past_window():
    # anchor 0.5: past [0.2, 0.35), current [0.35, 0.5)
    tok = SpikeTokenizer(4, DT, 0.15, 0.15, block_size=10, past_block_size=10)
    times = np.array([0.19, 0.2, 0.3499, 0.35, 0.4999, 0.5])
    ids = np.array([0, 1, 2, 3, 1, 2])
    batch = tok.encode((ids, times), 0.5)
    assert batch["past_ids"][0, :4].tolist() == [tok.sos_id, 1, 2, tok.eos_id]
    assert batch["past_dts"][0, 1:3].tolist() == [0, 14]  # first and last bin of the past
    assert batch["ids"][0, :4].tolist() == [tok.sos_id, 3, 1, tok.eos_id]
    assert batch["dts"][0, 1:3].tolist() == [0, 14]
    assert (batch["n_spikes"][0], batch["past_n_spikes"][0]) == (2, 2)


# ---------------------------------------------------------------- truncation
def test_truncation_keeps_the_last_spikes_and_is_reported():
    tok = SpikeTokenizer(7, DT, 0.05, 0.05, block_size=5, past_block_size=4)
    ids = np.array([6, 0, 1, 2, 3, 4, 5, 6])
    times = np.array([0.02, 0.051, 0.062, 0.073, 0.084, 0.095, 0.096, 0.3])
    with pytest.warns(
        TruncationWarning, match=r"1 of 2 current windows .* = 3 spikes \(3 spikes dropped\)"
    ):
        batch = tok.encode((ids, times), [0.1, 0.35])
    assert batch["ids"][0].tolist() == [7, 3, 4, 5, 8]  # the last 3 of 6
    assert batch["dts"][0].tolist() == [5, 3, 4, 4, 6]
    assert batch["truncated"].tolist() == [3, 0]
    assert batch["n_spikes"].tolist() == [6, 1]
    assert batch["past_truncated"].tolist() == [0, 0]
    report = truncation_report(batch)
    assert report["current"] == {
        "samples": 2,
        "truncated_samples": 1,
        "spikes": 7,
        "dropped_spikes": 3,
        "dropped_fraction": 3 / 7,
    }
    assert report["past"]["dropped_spikes"] == 0


def test_past_truncation_is_reported_in_the_same_line():
    tok = SpikeTokenizer(3, DT, 0.01, 0.03, block_size=3, past_block_size=3)
    ids, times = np.array([0, 1, 2, 0]), np.array([0.001, 0.011, 0.021, 0.031])
    with pytest.warns(TruncationWarning) as caught:
        batch = tok.encode((ids, times), 0.04)
    (message,) = [str(w.message) for w in caught]
    assert "\n" not in message
    assert (
        "1 of 1 past windows held more than past_block_size - 2 = 1 spikes (2 spikes dropped)"
        in message
    )
    assert "current" not in message
    assert batch["past_ids"][0].tolist() == [tok.sos_id, 2, tok.eos_id]  # the latest past spike


def test_no_warning_without_truncation(rng):
    ids, times, _ = make_spikes(rng, n_bins=50, rate=0.1)
    tok = SpikeTokenizer(7, block_size=50, past_block_size=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch = tok.encode((ids, times), tok.anchors(0.0, 0.5))
    assert truncation_report(batch)["current"]["truncated_samples"] == 0


# ----------------------------------------------------- anchors and the inputs
def test_anchors_tile_the_interval():
    tok = SpikeTokenizer(3, DT, 0.05, 0.15)
    anchors = tok.anchors(0.0, 1.0)
    np.testing.assert_allclose(anchors, np.arange(0.2, 1.0001, 0.05))
    np.testing.assert_allclose(np.diff(anchors), 0.05)
    # t_start off the grid: the first context starts at the next bin edge
    np.testing.assert_allclose(tok.anchors(0.123, 0.5, stride=0.1), [0.33, 0.43])
    np.testing.assert_allclose(tok.anchors(0.0, 0.2), [0.2])


@dataclass
class FakeSpikeTrains:
    neuron_ids: np.ndarray
    times: np.ndarray
    n_neurons: int
    t_start: float
    t_stop: float


def test_spike_trains_are_duck_typed_and_bound_the_anchors(rng):
    ids, times, _ = make_spikes(rng, n_bins=100)
    spikes = FakeSpikeTrains(ids, times, 7, 0.0, 1.0)
    tok = SpikeTokenizer(7, block_size=40, past_block_size=40)
    batch = tok.encode(spikes, tok.anchors(0.0, 1.0))
    plain = tok.encode((ids, times), tok.anchors(0.0, 1.0))
    for key in plain:
        np.testing.assert_array_equal(batch[key], plain[key])
    with pytest.raises(InputError, match=r"anchors\[1\] = 1.05 is outside the recording"):
        tok.encode(spikes, [0.5, 1.05])
    with pytest.raises(InputError, match="come from the SpikeTrains"):
        tok.encode(spikes, [0.5], t_stop=2.0)
    with pytest.raises(InputError, match="spikes hold 9 neurons but the tokenizer has n_neurons=7"):
        tok.encode(FakeSpikeTrains(ids, times, 9, 0.0, 1.0), [0.5])


def test_prepared_spikes_encode_the_same(rng):
    ids, times, _ = make_spikes(rng, n_bins=100)
    tok = SpikeTokenizer(7, block_size=30, past_block_size=30)
    prepared = tok.prepare((ids, times), t_stop=1.0)
    assert isinstance(prepared, BinnedSpikes)
    anchors = tok.anchors(0.0, 1.0)
    direct = tok.encode((ids, times), anchors, t_stop=1.0)
    for key, value in tok.encode(prepared, anchors).items():
        np.testing.assert_array_equal(value, direct[key])
    with pytest.raises(InputError, match="prepare them with it"):
        SpikeTokenizer(7, dt=0.005).encode(prepared, [0.5])


def test_torch_in_torch_out(rng):
    ids, times, _ = make_spikes(rng, n_bins=60)
    tok = SpikeTokenizer(7, block_size=30, past_block_size=30)
    anchors = tok.anchors(0.0, 0.6)
    batch = tok.encode((torch.from_numpy(ids), torch.from_numpy(times)), anchors)
    assert batch["ids"].dtype == torch.int64 and batch["pad_mask"].dtype == torch.bool
    ref = tok.encode((ids, times), anchors)
    assert torch.equal(batch["dts"], torch.from_numpy(ref["dts"]))
    n, t = tok.decode(batch["ids"], batch["dts"], anchors)
    assert isinstance(n, torch.Tensor) and t.dtype == torch.float64


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"block_size": 2}, r"block_size must be >= 3 \(SOS, at least one spike, EOS\); got 2"),
        ({"past_block_size": 1}, "past_block_size must be >= 3"),
        ({"window": 0.045}, r"window must be a whole number of dt bins.*window / dt = 4.5"),
        ({"past_window": 0.125}, "past_window must be a whole number of dt bins"),
        ({"dt": 0.0}, "dt must be > 0"),
        ({"dt": float("nan")}, "dt must be a finite number"),
        ({"n_neurons": 0}, "n_neurons must be an integer >= 1"),
    ],
)
def test_bad_settings(kwargs, match):
    settings = {"n_neurons": 7, **kwargs}
    with pytest.raises(InputError, match=match):
        SpikeTokenizer(**settings)


GOOD_IDS = np.array([0, 3, 6])
GOOD_TIMES = np.array([0.1, 0.2, 0.3])


@pytest.mark.parametrize(
    ("ids", "times", "anchors", "error", "match"),
    [
        (
            [0, 7, 1],
            GOOD_TIMES,
            [0.4],
            InputError,
            r"neuron_ids\[1\] = 7 is out of range: ids must lie in 0..6",
        ),
        ([0, -1, 1], GOOD_TIMES, [0.4], InputError, r"neuron_ids\[1\] = -1 is out of range"),
        ([0.0, 1.0, 2.0], GOOD_TIMES, [0.4], InputTypeError, "neuron_ids must hold integers"),
        (
            GOOD_IDS,
            [-0.1, 0.2, 0.3],
            [0.4],
            InputError,
            r"times must be >= 0 seconds; times\[0\] = -0.1",
        ),
        (
            GOOD_IDS,
            [0.1, 0.3, 0.2],
            [0.4],
            InputError,
            r"times must be sorted .*times\[2\] = 0.2 comes after",
        ),
        (GOOD_IDS, [0.1, np.nan, 0.3], [0.4], InputError, "times contains 1 NaN"),
        (GOOD_IDS, [0.1, 0.2], [0.4], InputError, "got 3 ids and 2 times"),
        (GOOD_IDS, GOOD_TIMES, [0.4, np.nan], InputError, "anchors contains 1 NaN"),
        (
            GOOD_IDS,
            GOOD_TIMES,
            [0.4, 0.4051],
            InputError,
            r"anchors\[1\] = 0.4051 is not on the dt grid",
        ),
        (
            GOOD_IDS,
            GOOD_TIMES,
            [0.15],
            InputError,
            r"anchors\[0\] = 0.15 is outside the recording.*\[0.2, inf\]",
        ),
        (GOOD_IDS, GOOD_TIMES, [], InputError, "anchors is empty"),
    ],
)
def test_bad_spikes_and_anchors(ids, times, anchors, error, match):
    tok = SpikeTokenizer(7)
    with pytest.raises(error, match=match):
        tok.encode((ids, times), anchors)


def test_bad_recording_bounds_and_types():
    tok = SpikeTokenizer(7)
    with pytest.raises(InputError, match=r"times\[2\] = 0.3 lies outside the recording"):
        tok.encode((GOOD_IDS, GOOD_TIMES), [0.25], t_stop=0.3)
    with pytest.raises(InputError, match=r"times\[0\] = 0.1 lies outside the recording"):
        tok.encode((GOOD_IDS, GOOD_TIMES), [0.4], t_start=0.15)
    with pytest.raises(InputError, match="t_stop must be > t_start"):
        tok.encode((GOOD_IDS, GOOD_TIMES), [0.4], t_start=0.5, t_stop=0.5)
    with pytest.raises(
        InputTypeError, match=r"spikes must be a SpikeTrains or a pair \(neuron_ids, times\)"
    ):
        tok.encode(GOOD_TIMES, [0.4])
    with pytest.raises(InputTypeError, match="must be 1-D arrays"):
        tok.encode((3, 0.1), [0.4])
    with pytest.raises(InputError, match="no sample fits"):
        tok.anchors(0.0, 0.15)
    with pytest.raises(InputError, match="stride must be a whole number of dt bins"):
        tok.anchors(0.0, 1.0, stride=0.015)
    with pytest.raises(InputError, match="t_start must be >= 0"):
        tok.anchors(-1.0, 1.0)


@pytest.mark.parametrize(
    ("ids", "dts", "anchor", "window", "match"),
    [
        (
            [7, 2, 8],
            [15, 5, 16],
            0.5,
            "current",
            r"dts\[0, 1\] = 5 is not a bin of the current window \(0..4\)",
        ),
        ([7, 2, 8], [15, 14, 16], 0.5, "current", "not a bin of the current window"),
        (
            [7, 10, 8],
            [15, 1, 16],
            0.5,
            "current",
            r"ids\[0, 1\] = 10 is not a token: ids lie in 0..9",
        ),
        ([7, 2, 8], [15, 1], 0.5, "current", "ids and dts must have the same shape"),
        ([[7, 2, 8]], [[15, 1, 16]], [0.5, 0.6], "current", "one window end per row"),
        ([7, 2, 8], [15, 1, 16], 0.505, "current", r"anchor\[0\] = 0.505 is not on the dt grid"),
        ([7, 2, 8], [15, 1, 16], 0.5, "future", "window must be one of 'current', 'past'"),
        ([7.0, 2.0, 8.0], [15, 1, 16], 0.5, "current", "ids must hold integer tokens"),
    ],
)
def test_bad_decode_input(ids, dts, anchor, window, match):
    tok = SpikeTokenizer(7)
    with pytest.raises(InputError, match=match):
        tok.decode(ids, dts, anchor, window=window)
    if "14" not in str(dts):
        return
    n, t = tok.decode(ids, dts, anchor, window="past")  # 14 is a bin of the past window
    assert n.tolist() == [2]
    np.testing.assert_allclose(t, [0.44])
