"""Curricula: the advance rule, learning small N, exact resume, forgetting, bad settings."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from neuro.errors import CheckpointError, InputError, InputTypeError, OutputExistsError
from neuro.rnn.curricula import (
    CurriculumConfig,
    CurriculumResult,
    evaluate,
    load_network,
    train_curriculum,
)
from neuro.rnn.models import LeakyRNN
from neuro.rnn.timescales import retention
from neuro.train import load_checkpoint

TINY = dict(hidden_size=12, steps_per_epoch=3, batch_size=16, val_batches=1)


@pytest.mark.parametrize("kind", ["single", "multi"])
def test_advance_rule_moves_one_n_per_solved_epoch_and_stops_at_n_max(kind):
    cfg = CurriculumConfig(kind=kind, n_start=2, n_max=5, threshold=0.01, max_epochs=10, **TINY)
    res = train_curriculum(cfg, device="cpu")
    # any accuracy passes 0.01: one N per epoch, and the run ends once N=5 is solved
    assert res.n_over_epochs().tolist() == [2, 3, 4, 5]
    assert res.solved_epoch == {2: 1, 3: 2, 4: 3, 5: 4} and res.n_reached == 5
    assert sorted(res.snapshots) == [2, 3, 4, 5]
    last = res.history[-1]
    active = [2, 3, 4, 5] if kind == "multi" else [5]
    assert sorted(k for k in last if k.startswith("val_acc_N")) == [f"val_acc_N{n}" for n in active]
    assert res.network.n_heads == (4 if kind == "multi" else 1)
    assert set(res.solved_taus) == {2, 3, 4, 5}


@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_gated_baselines_run_the_same_curricula(model):
    cfg = CurriculumConfig(model=model, n_max=3, threshold=0.01, max_epochs=3, **TINY)
    res = train_curriculum(cfg, device="cpu")
    assert res.n_over_epochs().tolist() == [2, 3] and res.n_reached == 3
    assert res.solved_taus == {} and res.network_at(3).n_heads == 2


def test_a_finished_run_stays_finished_on_resume(tmp_path):
    cfg = CurriculumConfig(n_max=3, threshold=0.01, max_epochs=5, **TINY)
    first = train_curriculum(cfg, out_dir=tmp_path, device="cpu")
    assert first.solved_epoch == {2: 1, 3: 2} and len(first.history) == 2
    again = train_curriculum(cfg, out_dir=tmp_path, resume="last", device="cpu")
    assert again.solved_epoch == first.solved_epoch and len(again.history) == 2


def test_fresh_run_in_a_reused_folder_ignores_old_snapshots(tmp_path):
    easy = CurriculumConfig(n_max=4, threshold=0.01, max_epochs=3, **TINY)
    train_curriculum(easy, out_dir=tmp_path, device="cpu")
    hard = CurriculumConfig(n_max=4, threshold=1.0, max_epochs=1, **TINY)
    res = train_curriculum(hard, out_dir=tmp_path, overwrite=True, device="cpu")
    assert res.solved_epoch == {} and res.snapshots == {}


def test_snapshots_of_a_custom_network_and_validation_batches_are_fresh():
    net = LeakyRNN(hidden_size=10, n_heads=4, fused=False)
    cfg = CurriculumConfig(kind="multi", n_max=3, threshold=0.01, max_epochs=2, **TINY)
    res = train_curriculum(cfg, network=net, device="cpu")
    snap = res.network_at(3)
    assert snap.hidden_size == 10 and snap.n_heads == 4 and not snap.fused
    from neuro.rnn.curricula import _CurriculumModule, _TaskBatches

    batches = _TaskBatches(_CurriculumModule(LeakyRNN(hidden_size=4), cfg), 1, seed=1)
    first = batches[0][0]
    batches.module.epoch_counter.add_(1)
    batches.module.refresh()
    assert not torch.equal(first, batches[0][0])  # a new epoch, new sequences


def test_evaluate_checks_its_arguments():
    net = LeakyRNN(hidden_size=4, n_heads=2)
    with pytest.raises(InputError, match="n_sequences"):
        evaluate(net, "parity", 2, n_sequences=0)
    with pytest.raises(InputError, match="head=2 but the network has 2"):
        evaluate(net, "parity", 2, head=2)
    with pytest.raises(InputError, match="heads must lie in 0..1"):
        net(torch.zeros(3, 5, 1), heads=[-1])
    with pytest.raises(InputTypeError, match="network must be a neuro.rnn network"):
        evaluate(torch.nn.Linear(1, 2), "parity", 2)
    with pytest.raises(InputError, match="n must be >= 1"):
        evaluate(net, "parity", 0)
    assert CurriculumConfig(tau_init=1.5).tau_init == (1.5, 1.5)
    with pytest.raises(InputError, match="pair"):
        CurriculumConfig(tau_init=(1.0, 2.0, 3.0))
    with pytest.raises(InputTypeError, match="config must be a CurriculumConfig"):
        train_curriculum({"kind": "multi"}, device="cpu")
    with pytest.raises(InputError, match="needs out_dir"):
        train_curriculum(CurriculumConfig(**TINY), resume="last", device="cpu")


def test_threshold_of_one_never_advances_a_random_network():
    cfg = CurriculumConfig(n_max=4, threshold=1.0, max_epochs=2, **TINY)
    res = train_curriculum(cfg, device="cpu")
    assert res.n_over_epochs().tolist() == [2, 2] and res.n_reached == 1 and not res.snapshots


@pytest.mark.parametrize("kind", ["single", "multi"])
def test_learns_small_parity(kind):
    cfg = CurriculumConfig(
        kind=kind,
        hidden_size=32,
        n_max=3,
        threshold=0.9,
        steps_per_epoch=40,
        batch_size=64,
        max_epochs=25,
    )
    res = train_curriculum(cfg, device="cpu", seed=0)
    assert res.n_reached == 3, res.history[-1]
    assert np.all(np.diff(res.n_over_epochs()) >= 0)
    net = res.network_at(3)
    assert evaluate(net, "parity", 3, head=cfg.head_of(3), n_sequences=1024, seed=5) > 0.85
    acc = retention(res.network, "parity", [2, 3], cfg.head_of)
    assert set(acc) == {2, 3} and acc[3] > 0.85


def test_dms_curriculum_runs():
    cfg = CurriculumConfig(
        task="dms", hidden_size=32, n_max=3, steps_per_epoch=40, batch_size=64, max_epochs=12
    )
    res = train_curriculum(cfg, device="cpu")
    assert res.n_reached >= 2


def test_resume_continues_exactly(tmp_path):
    base = dict(kind="multi", n_max=6, threshold=0.7, **TINY)
    full = train_curriculum(
        CurriculumConfig(max_epochs=5, **base), out_dir=tmp_path / "a", device="cpu", seed=3
    )
    # the same run cut after 2 epochs, then resumed to 5
    train_curriculum(
        CurriculumConfig(max_epochs=2, **base), out_dir=tmp_path / "b", device="cpu", seed=3
    )
    resumed = train_curriculum(
        CurriculumConfig(max_epochs=5, **base),
        out_dir=tmp_path / "b",
        resume="last",
        device="cpu",
        seed=3,
    )
    assert resumed.n_over_epochs().tolist() == full.n_over_epochs().tolist()
    assert resumed.solved_epoch == full.solved_epoch
    for (k, a), b in zip(
        full.network.state_dict().items(), resumed.network.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    assert sorted(resumed.snapshots) == sorted(full.snapshots)
    assert (tmp_path / "b" / "curriculum.json").is_file()


def test_network_needs_enough_heads():
    cfg = CurriculumConfig(kind="multi", n_max=4, max_epochs=1, **TINY)
    with pytest.raises(InputError, match="needs 3 heads"):
        train_curriculum(cfg, network=LeakyRNN(hidden_size=12, n_heads=1), device="cpu")


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        (dict(threshold=0.0), "threshold must be an accuracy in"),
        (dict(threshold=1.5), "threshold must be an accuracy in"),
        (dict(threshold=-0.2), "threshold must be an accuracy in"),
        (dict(n_start=0), "n_start must be >= 1"),
        (dict(task="dms", n_start=1), "n_start must be >= 2"),
        (dict(n_max="5"), "n_max must be an integer"),
        (dict(threshold="high"), "threshold must be a number"),
        (dict(train_tau=1), "train_tau must be True or False"),
        (dict(n_start=5, n_max=3), "n_max"),
        (dict(tau_init=(0.5, 1.5)), "tau_init"),
        (dict(seq_len=4, n_max=6), "shorter than N=6"),
        (dict(kind="double"), "kind must be one of"),
    ],
)
def test_bad_settings(settings, match):
    with pytest.raises(InputError, match=match):
        CurriculumConfig(**settings)


def test_a_run_is_a_result_that_saves_its_network_and_snapshots(tmp_path):
    cfg = CurriculumConfig(kind="multi", n_max=4, threshold=0.01, max_epochs=2, **TINY)
    res = train_curriculum(cfg, device="cpu")
    assert isinstance(res, CurriculumResult)
    summary = res.summary()
    assert json.loads(json.dumps(summary)) == summary  # plain JSON, no default= needed
    assert summary["n_reached"] == 3 and summary["config"]["hidden_size"] == 12
    table = res.format_table()
    assert "N=3 reached in 2 epoch(s)" in table and len(table.splitlines()) == 4
    assert list(res.tables()["history"]["N"]) == [2, 3]
    assert set(res.plot()) == {"curriculum"}
    with pytest.raises(InputError, match="N=4 was not solved"):
        res.network_at(4)

    out = res.save(tmp_path / "run")
    assert json.loads((out / "metrics.json").read_text())["solved_epoch"] == {"2": 1, "3": 2}
    assert (out / "history.csv").read_text().count("\n") == 3
    assert (out / "figures" / "curriculum.png").stat().st_size > 1000
    net = load_network(out / "network.pt")  # the file holds its config
    for key, value in res.network.state_dict().items():
        torch.testing.assert_close(net.state_dict()[key], value, rtol=0, atol=0)
    x = torch.rand(3, 7, 1).round()
    outputs = []
    for network in (net, res.network.eval()):
        torch.manual_seed(1)  # the initial state is drawn at random
        outputs.append(network(x))
    torch.testing.assert_close(*outputs, rtol=0, atol=0)
    assert load_checkpoint(out / "snapshots" / "N2.pt")["N"] == 2
    with pytest.raises(InputError, match="no config"):
        load_network(out / "snapshots" / "N2.pt")
    snap = load_network(out / "snapshots" / "N2.pt", res.config)
    for key, value in res.network_at(2).state_dict().items():
        torch.testing.assert_close(snap.state_dict()[key], value, rtol=0, atol=0)
    other = dataclasses.replace(cfg, hidden_size=5)
    with pytest.raises(CheckpointError, match="does not match this model"):
        load_network(out / "snapshots" / "N2.pt", other)
    with pytest.raises(OutputExistsError):
        res.save(tmp_path / "run")


def test_validation_defaults_to_the_public_codes_12800_sequences():
    cfg = CurriculumConfig()
    assert cfg.val_batches * cfg.batch_size == 50 * 256
    se = (0.98 * 0.02 / (cfg.val_batches * cfg.batch_size)) ** 0.5
    assert se < 0.0015  # the standard error of the 98 % decision (4 batches gave 0.0044)
