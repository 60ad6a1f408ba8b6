"""Split-half stability (planted vs null, splits, model params, Result API) and per-animal fits."""

import json
import warnings

import numpy as np
import pytest

from data_loaders.calcium import CalciumData
from data_loaders.simulate.calcium import simulate_calcium
from neuro.connectome import DynamicConnectome, evaluate_recovery
from neuro.connectome.stability import (
    SplitHalfStability,
    _draw_splits,
    fit_per_animal,
    split_half_stability,
)
from neuro.errors import InputError, InputTypeError

FAST = dict(rank=3, n_restarts=1, n_bootstrap=0, device="cpu")


def _sim(null=False, n_animals=6, seed=0, **kw):
    drive = dict(event_rate=0.0, baseline_rate=0.2) if null else {}
    return simulate_calcium(
        n_animals=n_animals,
        n_neurons=kw.pop("n_neurons", 30),
        n_frames=kw.pop("n_frames", 1200),
        n_communities=2,
        community_size=kw.pop("community_size", 8),
        n_blocks=6,
        noise=0.2,
        seed=seed,
        **drive,
        **kw,
    )


def _stability(data, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # low bootstrap stability of null splits
        return split_half_stability(data, **{**FAST, **params})


def _planted_rows(res, truth):
    """Table rows of the reference components that recover the planted communities."""
    found = [r["component"] for r in evaluate_recovery(res.reference, truth)["communities"]]
    assert len(set(found)) == 2
    return [row for row in res.table if row["component"] in found]


@pytest.fixture(scope="module")
def planted():
    sim = _sim(n_animals=4, n_neurons=24, n_frames=1000)
    return sim, _stability(sim.data, n_splits=3, sbm_model="plain")


@pytest.fixture(scope="module")
def null():
    sim = _sim(null=True, n_animals=4, n_neurons=24, n_frames=1000)
    return _stability(sim.data, n_splits=2, sbm_model="plain")


def test_planted_communities_are_stable_across_halves(planted):
    sim, res = planted
    rows = _planted_rows(res, sim.truth)
    assert len(rows) == 2 * 3
    assert min(r["congruence"] for r in rows) > 0.8
    assert min(r["pair_correlation"] for r in rows) > 0.8
    assert np.mean([r["ari"] for r in rows]) > 0.6
    assert all(r["n_neurons"] == 24 for r in res.table)


def test_null_partitions_do_not_replicate(null):
    """Without shared drive the plain SBM cuts every component, differently in each half."""
    assert all(r["n_communities_a"] > 1 and r["n_communities_b"] > 1 for r in null.table)
    ari = [r["ari"] for r in null.table]
    assert abs(np.mean(ari)) < 0.15 and max(ari) < 0.4
    assert np.mean([r["pair_correlation"] for r in null.table]) < 0.4


def test_null_with_the_default_model_is_no_structure_in_both_halves():
    res = _stability(_sim(null=True, n_animals=4, n_neurons=20, n_frames=800).data, n_splits=2)
    assert all(np.isnan(r["ari"]) for r in res.table)
    assert all(c["n_no_structure"] == 2 and np.isnan(c["ari"]) for c in res.components())
    summary = res.summary()
    assert summary["mean_ari"] is None and summary["n_no_structure"] == 6
    assert summary["mean_pair_correlation"] < 0.4


def test_planted_beats_null_on_pair_correlation_and_ari(planted, null):
    sim, res = planted
    rows = _planted_rows(res, sim.truth)
    for key in ("pair_correlation", "ari"):
        assert np.mean([r[key] for r in rows]) - np.mean([r[key] for r in null.table]) > 0.5


@pytest.mark.parametrize(
    "n, n_splits, expected",
    [(2, 5, 1), (3, 5, 3), (4, 10, 3), (5, 4, 4), (6, 4, 4), (7, 50, 35)],
)
def test_splits_are_distinct_halves(n, n_splits, expected):
    splits, total = _draw_splits(n, n_splits, random_state=1)
    assert len(splits) == expected == len(set(splits)) and expected <= total
    for half in splits:
        assert len(half) == n // 2 and len(set(half)) == len(half)
        if n % 2 == 0:
            assert 0 in half  # canonical: {A, B} == {B, A}
    assert splits == _draw_splits(n, n_splits, random_state=1)[0]


def test_two_animals_give_one_split_of_one_animal_each():
    sim = _sim(n_animals=2, n_neurons=14, n_frames=600, community_size=5)
    res = _stability(sim.data, n_splits=4)
    assert res.splits == [(["animal0"], ["animal1"])] and res.n_possible_splits == 1
    assert len(res.table) == 3 and [r["component"] for r in res.table] == [0, 1, 2]


def test_params_from_a_fitted_model_reuse_it_as_reference():
    sim = _sim(n_animals=3, n_neurons=14, n_frames=600, community_size=5)
    model = DynamicConnectome(**FAST, bin_size=3.0).fit(sim.data)
    res = _stability(sim.data, model=model, n_splits=1)
    assert res.reference is model and res.params["bin_size"] == 3.0
    assert len(res.splits[0][0]) == 1 and len(res.splits[0][1]) == 2
    other = _stability(sim.data, model=model, n_splits=1, bin_size=2.0)  # overridden: refitted
    assert other.reference is not model and other.params["bin_size"] == 2.0


def test_rank_none_takes_the_rank_of_the_full_fit():
    sim = _sim(n_animals=4, n_neurons=14, n_frames=600, community_size=5)
    res = _stability(sim.data, n_splits=1, rank=None, ranks=(2, 3), n_restarts=2)
    assert res.rank_source == "selected" and res.rank == res.reference.rank_
    assert res.params["rank"] == res.rank


def test_neurons_missing_in_a_whole_half_are_left_out():
    sim = _sim(n_animals=4, n_neurons=14, n_frames=600, community_size=5)
    x = sim.data.traces.copy()
    x[[0, 1], 3] = np.nan  # neuron 3 missing in animals 0 and 1
    data = CalciumData(x, sim.data.sampling_rate, sim.data.neuron_labels)
    res = _stability(data, n_splits=3)
    by_split = {r["split"]: r["n_neurons"] for r in res.table}
    first = [s for s, (a, _) in enumerate(res.splits) if a == ["animal0", "animal1"]]
    assert [by_split[s] for s in range(3)] == [13 if s in first else 14 for s in range(3)]


def test_result_api(planted, tmp_path):
    _, res = planted
    assert isinstance(res, SplitHalfStability)
    summary = res.summary()
    json.dumps(summary)
    assert summary["n_splits"] == 3 and len(summary["components"]) == 3
    assert "split-half stability" in res.format_table()
    tables = res.tables()
    assert len(tables["split_half"]) == 9 and len(tables["split_half_components"]) == 3
    assert list(tables["split_half"].columns)[:3] == ["split", "component", "component_a"]
    out = res.save(tmp_path / "stab", figures=True)
    assert (out / "metrics.json").exists() and (out / "figures" / "split_half.png").exists()


def test_bad_input():
    sim = _sim(n_animals=2, n_neurons=14, n_frames=600, community_size=5)
    with pytest.raises(InputError, match="at least 2 animals.*stack_sessions"):
        split_half_stability(sim.data.traces[:1], **FAST)
    with pytest.raises(InputError, match="at least 2 animals"):
        split_half_stability(sim.data.traces[0], **FAST)
    with pytest.raises(InputTypeError, match="DynamicConnectome"):
        split_half_stability(sim.data, model="model")
    with pytest.raises(InputError, match="unknown DynamicConnectome parameter"):
        split_half_stability(sim.data, model=DynamicConnectome(), colour="red")
    with pytest.raises(InputError, match="n_splits"):
        split_half_stability(sim.data, n_splits=0, **FAST)


# ----------------------------------------------------------------------------- per animal
def test_fit_per_animal_keeps_labels_and_drops_missing_neurons():
    sim = _sim(n_animals=3, n_neurons=14, n_frames=600, community_size=5, missing_fraction=0.15)
    data = sim.data
    models = fit_per_animal(data, **FAST)
    assert len(models) == 3
    for a, m in enumerate(models):
        kept = np.flatnonzero(~data.missing[a])
        assert m.neuron_labels_ == [data.neuron_labels[i] for i in kept]
        assert m.animal_ids_ == [data.animal_ids[a]] and m.animal_factors_.shape == (1, 3)
        assert m.epochs_ == list(data.epochs)
        alone = CalciumData(
            data.traces[a, kept][None],
            data.sampling_rate,
            [data.neuron_labels[i] for i in kept],
            [data.animal_ids[a]],
            data.epochs,
        )
        ref = DynamicConnectome(**FAST).fit(alone)
        np.testing.assert_array_equal(m.pair_factors_, ref.pair_factors_)
        np.testing.assert_array_equal(m.time_factors_, ref.time_factors_)
    assert sum(len(m.neuron_labels_) for m in models) == int((~data.missing).sum()) < 3 * 14


def test_fit_per_animal_of_arrays_and_errors():
    x = np.random.default_rng(0).random((2, 9, 200))
    x[1, [2, 5]] = np.nan
    models = fit_per_animal(x, model=DynamicConnectome(**FAST, sampling_rate=10.0))
    assert models[1].neuron_labels_ == ["n0", "n1", "n3", "n4", "n6", "n7", "n8"]
    assert models[0].animal_ids_ == ["animal0"]
    x[1, 1:] = np.nan
    with pytest.raises(InputError, match="'animal1' has 1 recorded neuron"):
        fit_per_animal(x, **FAST, sampling_rate=10.0)
