"""The agent's losses and replay buffer, against values computed by hand."""

import numpy as np
import pytest
import torch

from neuro.errors import InputError
from neuro.rl.losses import double_dqn_target, negative_terms, predictive_loss, predictive_target
from neuro.rl.networks import Encoder, TransitionModel
from neuro.rl.replay import ReplayBuffer


def test_td_horizon_target_bootstraps_without_gradient_through_t():
    z_next = torch.tensor([[1.0, 2.0]], requires_grad=True)
    boot = torch.tensor([[4.0, -2.0]], requires_grad=True)
    target = predictive_target(z_next, boot, gamma_p=0.5)
    torch.testing.assert_close(target, torch.tensor([[3.0, 1.0]]))
    target.sum().backward()
    assert boot.grad is None  # the bootstrap T(z', a') is a fixed target
    torch.testing.assert_close(z_next.grad, torch.ones(1, 2))  # z' keeps its gradient
    # gamma_p = 0 is the one-step target; the mask drops the bootstrap where the episode ended
    assert predictive_target(z_next, boot, 0.0) is z_next
    masked = predictive_target(z_next, boot, 0.8, mask=torch.tensor([0.0]))
    torch.testing.assert_close(masked, z_next.detach())


def test_td_horizon_sums_discounted_future_latents_at_its_fixed_point():
    # On a deterministic cycle of states, a model trained to the TD target predicts
    # z_{t+1} + gamma z_{t+2} + gamma^2 z_{t+3} + ...; iterating the target from T = 0 converges.
    rng = np.random.default_rng(0)
    n, d, gamma = 5, 3, 0.5
    z = torch.tensor(rng.normal(size=(n, d)), dtype=torch.float32)
    T = torch.zeros(n, d)  # T[i]: the prediction made at state i (its next state is i + 1)
    for _ in range(60):
        T = predictive_target(z.roll(-1, 0), T.roll(-1, 0), gamma)
    expected = sum(gamma**k * z.roll(-(k + 1), 0) for k in range(200))
    torch.testing.assert_close(T, expected, atol=1e-5, rtol=1e-5)


def test_predictive_loss_is_the_mse_to_the_target():
    pred = torch.tensor([[1.0, 1.0]])
    loss = predictive_loss(pred, torch.tensor([[0.0, 3.0]]), torch.tensor([[2.0, 0.0]]), 0.5)
    assert float(loss) == pytest.approx(((1 - 1) ** 2 + (1 - 3) ** 2) / 2)


def test_negative_terms():
    z = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    next_z = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    neighbour, random = negative_terms(z, next_z, temperature=1.0)
    # neighbours: distances 0, 0, 10; batch pairs with roll(z, 1): (z0, z2) 0, (z1, z0) 5, (z2, z1) 5
    assert float(neighbour) == pytest.approx((1 + 1 + np.exp(-10)) / 3)
    assert float(random) == pytest.approx((1 + 2 * np.exp(-5)) / 3)
    # they push latents apart: the gradient of the random term on z1 points away from z0 and z2
    z = z.clone().requires_grad_(True)
    negative_terms(z, next_z, 1.0)[1].backward()
    assert float(z.grad[1] @ torch.tensor([3.0, 4.0])) < 0


def test_double_dqn_target_uses_online_argmax_and_target_values():
    online = torch.tensor([[0.0, 2.0, 1.0], [5.0, 0.0, 0.0]])
    target = torch.tensor([[9.0, 3.0, 7.0], [1.0, 8.0, 8.0]])
    reward = torch.tensor([1.0, 0.0])
    y = double_dqn_target(reward, online, target, 0.9)
    torch.testing.assert_close(y, torch.tensor([1 + 0.9 * 3.0, 0.9 * 1.0]))
    # a terminal next state bootstraps nothing (plain DQN would take max of the target: 9 and 8)
    y = double_dqn_target(reward, online, target, 0.9, continues=torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(y, torch.tensor([1.0, 0.9]))


def test_gamma_p_outside_range_is_refused():
    with pytest.raises(InputError, match=r"gamma_p must lie in \[0, 1\); got 1.0"):
        predictive_target(torch.zeros(1, 2), torch.zeros(1, 2), 1.0)
    with pytest.raises(InputError, match="needs bootstrap"):
        predictive_target(torch.zeros(1, 2), None, 0.5)


def test_transition_model_is_residual_and_encoder_checks_shapes():
    T = TransitionModel(3, 4)
    torch.nn.init.zeros_(T.out.weight)
    torch.nn.init.zeros_(T.out.bias)
    z = torch.randn(2, 3)
    torch.testing.assert_close(T(z, torch.tensor([0, 1])), z)  # z + MLP(.) with MLP = 0
    enc = Encoder((1, 8, 8), 5, "large")
    with pytest.raises(InputError, match=r"Observations of shape \(1, 6, 6\) do not match"):
        enc(torch.zeros(2, 1, 6, 6))
    with pytest.raises(InputError, match="at least 4 x 4 pixels"):
        Encoder((1, 3, 3), 5)
    with pytest.raises(InputError, match="encoder_size"):
        Encoder((1, 8, 8), 5, "huge")


# ----------------------------------------------------------------- replay


def _fill(buf, episodes):
    """Episodes as lists of (terminated, truncated) flags of their transitions."""
    t = 0
    for flags in episodes:
        for terminated, truncated in flags:
            buf.add(
                np.full(2, t), t % 4, float(terminated), np.full(2, t + 1), terminated, truncated
            )
            t += 1


def test_follower_respects_episode_ends_unless_asked_not_to():
    buf = ReplayBuffer(10, (2,))
    # episode 0: three steps, the last terminal; episode 1: two steps cut by the time limit;
    # episode 2: one step so far
    _fill(buf, [[(0, 0), (0, 0), (1, 0)], [(0, 0), (0, 1)], [(0, 0)]])
    idx = np.arange(6)
    assert buf.follower(idx).tolist() == [1, 2, -1, 4, -1, -1]
    assert buf.follower(idx, across_episodes=True).tolist() == [1, 2, 3, 4, 5, -1]


def test_ring_overwrites_the_oldest_and_follower_wraps():
    buf = ReplayBuffer(4, (2,))
    _fill(buf, [[(0, 0)] * 6])  # one long episode: slots hold transitions 4, 5, 2, 3
    assert len(buf) == 4 and buf.obs[:, 0].tolist() == [4, 5, 2, 3]
    # slot 3 (transition 3) is followed by slot 0 (transition 4); slot 1 is the newest
    assert buf.follower(np.array([2, 3, 0, 1])).tolist() == [3, 0, 1, -1]


def test_replay_state_round_trip_and_errors():
    buf = ReplayBuffer(5, (2,))
    _fill(buf, [[(0, 0), (1, 0)], [(0, 0)] * 5])
    other = ReplayBuffer(5, (2,))
    other.load_state_dict(buf.state_dict())
    for name in ("obs", "next_obs", "action", "reward", "terminated", "episode"):
        np.testing.assert_array_equal(getattr(other, name), getattr(buf, name))
    idx = np.arange(5)
    np.testing.assert_array_equal(other.follower(idx), buf.follower(idx))
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    np.testing.assert_array_equal(buf.sample(8, rng_a), other.sample(8, rng_b))
    with pytest.raises(InputError, match="capacity 5 and observations"):
        ReplayBuffer(6, (2,)).load_state_dict(buf.state_dict())
    with pytest.raises(InputError, match=r"obs has shape \(3,\)"):
        buf.add(np.zeros(3), 0, 0.0, np.zeros(3), False, False)
    with pytest.raises(InputError, match="empty"):
        ReplayBuffer(3, (2,)).sample(2, rng_a)
