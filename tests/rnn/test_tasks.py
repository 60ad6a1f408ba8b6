"""N-parity and N-DMS: the batched generator against a direct implementation, envs, errors."""

import numpy as np
import pytest
import torch

from neuro.errors import InputError
from neuro.rnn.tasks import ENV_IDS, DMSEnv, ParityEnv, make_batch, reference_labels


@pytest.mark.parametrize("task", ["parity", "dms"])
def test_batched_labels_match_direct_implementation(task):
    gen = torch.Generator().manual_seed(3)
    ns = [2, 3, 5, 7]
    for _ in range(5):
        x, y = make_batch(task, ns, batch_size=33, generator=gen)
        assert x.shape[0] == 33 and x.shape[2] == 1 and y.shape == (33, len(ns))
        bits = x[:, :, 0].numpy().astype(int)
        for j, n in enumerate(ns):
            np.testing.assert_array_equal(y[:, j].numpy(), reference_labels(bits, task, n))


def test_labels_by_hand():
    # last bits ... 1 0 1 1: parity of last 2 = 0, last 3 = 0, last 4 = 1
    bits = np.array([[0, 1, 0, 1, 1]])
    assert reference_labels(bits, "parity", 2)[0] == 0
    assert reference_labels(bits, "parity", 3)[0] == 0
    assert reference_labels(bits, "parity", 4)[0] == 1
    # DMS compares x[T-N] with x[T-1]: N=2 -> 1 vs 1, N=3 -> 0 vs 1
    assert reference_labels(bits, "dms", 2)[0] == 1
    assert reference_labels(bits, "dms", 3)[0] == 0


@pytest.mark.parametrize("task", ["parity", "dms"])
def test_lengths_statistics_and_seeding(task):
    lengths = set()
    for seed in range(120):
        x, _ = make_batch(task, [3], 2, generator=torch.Generator().manual_seed(seed))
        lengths.add(x.shape[1])
    # the public code's randint(N + 2, 4N + 2): 5 ... 13 for N = 3, the upper end excluded
    assert lengths == set(range(5, 14))
    x1, y1 = make_batch(task, [3], 8, generator=torch.Generator().manual_seed(1))
    x2, y2 = make_batch(task, [3], 8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    x, y = make_batch(task, [4], 4000, seq_len=12, generator=torch.Generator().manual_seed(0))
    assert x.shape[1] == 12
    if task == "parity":
        # p ~ U(0, 1) per sequence: P(odd) = (1 - E[(1 - 2p)^N]) / 2 = (1 - 1/(N + 1)) / 2
        assert abs(y.float().mean() - 0.4) < 0.02
        assert x[:, :, 0].mean(1).std() > 0.25  # the per-sequence rates spread out
    else:
        assert abs(x.mean() - 0.5) < 0.02 and abs(y.float().mean() - 0.5) < 0.02


@pytest.mark.parametrize("cls", [ParityEnv, DMSEnv])
def test_environment_episodes_agree_with_labels(cls):
    env = cls(n=3)
    rewards, lengths = [], set()
    for seed in range(60):
        obs, info = env.reset(seed=seed)
        lengths.add(info["length"])
        bits, done = [obs], False
        while not done:
            obs, reward, done, truncated, step_info = env.step(1)
            if not done:
                bits.append(obs)
        assert not truncated and len(bits) == info["length"]
        label = reference_labels(np.array([bits]), cls.task, 3)[0]
        assert step_info["label"] == label and reward == float(label == 1)
        rewards.append(reward)
    assert 0 < np.mean(rewards) < 1
    assert lengths == set(range(5, 14))  # N + 2 ... 4N + 1, as the public code's randint
    assert env.observation_space.n == 2 and env.action_space.n == 2
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


@pytest.mark.parametrize(
    ("task", "ns", "seq_len", "match"),
    [
        ("parity", [0], None, "N must be >= 1"),
        ("parity", [-2], None, "N must be >= 1"),
        ("dms", [1], None, "N must be >= 2"),
        ("parity", [6], 5, "shorter than N=6"),
        ("parity", [3], (2, 9), "shorter than N=3"),
        ("xor", [3], None, "task must be one of"),
        ("parity", [3], (4, 5, 6), "int or a pair"),
    ],
)
def test_bad_input(task, ns, seq_len, match):
    with pytest.raises(InputError, match=match):
        make_batch(task, ns, 4, seq_len=seq_len)


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_registered_environments_pass_gymnasiums_checker(env_id):
    gym = pytest.importorskip("gymnasium")
    from gymnasium.utils.env_checker import check_env

    env = gym.make(env_id, n=3)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs in (0, 1)


def test_bad_env_n():
    with pytest.raises(InputError, match="n must be >= 1"):
        ParityEnv(n=0)
    env = ParityEnv(n=2)
    env.reset(seed=0)
    with pytest.raises(InputError, match="action must be 0 or 1"):
        env.step(2)
