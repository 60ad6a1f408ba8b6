"""PredictiveAgent: learns a corridor's shortest path, finds no value where there is none,
resumes a killed run exactly, saves and loads, refuses bad input."""

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium import spaces

from neuro.errors import InputError, InputTypeError
from neuro.rl.agent import PredictiveAgent, loss_weights
from neuro.train.checkpoint import CheckpointError


class Corridor(gymnasium.Env):
    """A corridor of ``length`` cells drawn in a (1, 4, length + 2) image; actions left, right.

    Written here as a user would write an environment (gymnasium API, with
    ``get_state``/``set_state`` for checkpoints and ``free_cells``/``observation_at``
    for the analyses). Start at cell 0, reward ``reward`` at the last cell.
    """

    def __init__(self, length=6, reward=1.0, max_steps=40, goal=None):
        self.length, self.reward, self.max_steps = length, reward, max_steps
        self.goal = length - 1 if goal is None else goal
        self.observation_space = spaces.Box(-1.0, 1.0, (1, 4, length + 2), np.float32)
        self.action_space = spaces.Discrete(2)
        self.pos, self.t = 0, 0

    def observation_at(self, cell):
        obs = np.zeros(self.observation_space.shape, np.float32)
        obs[0, [0, 3], :] = -1.0
        obs[0, 1:3, cell[1] + 1] = 1.0
        return obs

    def free_cells(self):
        return [(0, i) for i in range(self.length)]

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.t = 0, 0
        return self.observation_at((0, 0)), {}

    def step(self, action):
        self.pos = int(np.clip(self.pos + (1 if action == 1 else -1), 0, self.length - 1))
        self.t += 1
        done = self.pos == self.goal
        reward = self.reward if done else 0.0
        return self.observation_at((0, self.pos)), reward, done, self.t >= self.max_steps, {}

    def get_state(self):
        return {"pos": self.pos, "t": self.t}

    def set_state(self, state):
        self.pos, self.t = int(state["pos"]), int(state["t"])


FAST = dict(lr=1e-3, batch_size=32, target_update=50, latent_dim=4, device="cpu")


def test_learns_the_shortest_path_of_a_corridor():
    agent = PredictiveAgent(episodes=60, gamma_p=0.5, **FAST).fit(Corridor())
    assert agent.eval_steps_[-5:].tolist() == [5] * 5  # 5 steps: the shortest path
    assert agent.eval_steps_[0] == 40  # untrained: never got there
    assert agent.score(Corridor()) == 1.0  # every greedy episode reaches the goal
    assert PredictiveAgent(episodes=1, **FAST).fit(Corridor()).score(Corridor()) == 0.0
    cells, act = agent.module_activity(Corridor())
    assert len(cells) == 6 and act["encoder"].shape == (6, 4) and act["q"].shape == (6, 16)
    values = act["values"]
    assert (values[:-1, 1] > values[:-1, 0]).all()  # right is better everywhere
    # discounted value of moving right grows towards the goal (discount 0.9)
    assert np.all(np.diff(values[:-1, 1]) > 0)


def test_no_reward_no_value():
    agent = PredictiveAgent(episodes=15, **FAST).fit(Corridor(reward=0.0))
    _, act = agent.module_activity(Corridor())
    assert np.abs(act["values"]).max() < 0.1  # with a reward: 0.59 to 1.0 (0.9 ** distance)
    assert (agent.eval_steps_ == 40).all()


def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path):
    settings = dict(objective="predictive", gamma_p=0.25, **FAST)
    whole = PredictiveAgent(episodes=6, **settings).fit(Corridor())
    PredictiveAgent(
        episodes=3, checkpoint_dir=tmp_path, checkpoint_every_n_episodes=1, **settings
    ).fit(Corridor())
    resumed = PredictiveAgent(episodes=6, checkpoint_dir=tmp_path, **settings)
    resumed.fit(Corridor(), resume=True)
    np.testing.assert_array_equal(resumed.eval_steps_, whole.eval_steps_)
    np.testing.assert_array_equal(resumed.train_steps_, whole.train_steps_)
    np.testing.assert_allclose(resumed.losses_, whole.losses_, rtol=0, atol=0)
    for (name, a), b in zip(
        whole.networks_.state_dict().items(), resumed.networks_.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    # another setting than the run's, or a fresh fit over its checkpoints, is refused
    with pytest.raises(
        CheckpointError, match="written with gamma_p=0.25, this agent has gamma_p=0.5"
    ):
        PredictiveAgent(episodes=6, checkpoint_dir=tmp_path, **{**settings, "gamma_p": 0.5}).fit(
            Corridor(), resume=True
        )
    with pytest.raises(Exception, match="pass fit\\(..., resume=True\\)"):
        PredictiveAgent(episodes=6, checkpoint_dir=tmp_path, **settings).fit(Corridor())


def test_save_load_and_transfer(tmp_path):
    agent = PredictiveAgent(episodes=3, **FAST).fit(Corridor())
    agent.save(tmp_path / "agent.pt")
    back = PredictiveAgent.load(tmp_path / "agent.pt")
    _, a = agent.module_activity(Corridor())
    _, b = back.module_activity(Corridor())
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_array_equal(back.eval_steps_, agent.eval_steps_)
    moved = agent.transfer(Corridor(goal=3), episodes=2, freeze_encoder=True)
    # the frozen encoder is the one it was given
    for p, q in zip(
        moved.networks_.encoder.parameters(), agent.networks_.encoder.parameters(), strict=True
    ):
        assert torch.equal(p, q)
    with pytest.raises(InputError, match=r"reads observations of shape \(1, 4, 8\); the env"):
        agent.score(Corridor(length=8))
    with pytest.raises(InputError, match="Transfer between tasks of one observation shape"):
        agent.transfer(Corridor(length=8), episodes=1)
    with pytest.raises(InputError, match="same encoder_size and latent_dim"):
        PredictiveAgent(episodes=1, **{**FAST, "latent_dim": 3}).fit(Corridor(), init_from=agent)


def test_presets_and_bad_input():
    assert loss_weights("entropy") == [0.0, 0.1, 0.1, 1.0]
    assert loss_weights("predictive", 0.0)[0] == 1e-2 and loss_weights("predictive", 0.5)[0] == 1e-3
    with pytest.raises(InputError, match=r"gamma_p must be < 1.0; got 1.0"):
        PredictiveAgent(gamma_p=1.0).fit(Corridor())
    with pytest.raises(InputError, match="gamma_p must be >= 0.0"):
        PredictiveAgent(gamma_p=-0.1).fit(Corridor())
    with pytest.raises(
        InputError, match=r"weights must be 4 finite non-negative numbers .* got \[1.0, 0.0, 1.0\]"
    ):
        PredictiveAgent(weights=[1.0, 0.0, 1.0]).fit(Corridor())
    with pytest.raises(InputTypeError, match="env_kwargs must be a dict"):
        PredictiveAgent(env_kwargs=[("size", 4)]).fit()
    with pytest.raises(InputError, match="objective"):
        PredictiveAgent(objective="curiosity").fit(Corridor())

    class Flat(Corridor):
        def __init__(self):
            super().__init__()
            self.observation_space = spaces.Box(-1.0, 1.0, (24,), np.float32)

    with pytest.raises(InputError, match=r"observations of shape \(24,\)"):
        PredictiveAgent(episodes=1, device="cpu").fit(Flat())
