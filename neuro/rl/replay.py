"""A replay buffer that knows where episodes end, for one-step and two-step samples.

The predictive loss with a horizon needs the transition that *follows* the
sampled one (its action and latent). The buffer stores transitions in order
in a ring, with the episode each belongs to, so that the follower of slot
``i`` is slot ``i + 1`` when it was written after ``i`` in the same episode.
The public code takes slot ``i + 1`` whatever episode it holds
(``across_episodes=True`` reproduces that).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from neuro._validation import check_int
from neuro.errors import InputError

__all__ = ["ReplayBuffer"]


class ReplayBuffer:
    """Transitions ``(obs, action, reward, next_obs, terminated, truncated)`` in a ring.

    Parameters
    ----------
    capacity : int
        Transitions kept; the oldest is overwritten first (the paper: 20,000).
    obs_shape : tuple of int
        Shape of one observation, e.g. ``(1, 8, 8)``.

    Examples
    --------
    >>> buf = ReplayBuffer(4, (2,))
    >>> for t in range(3):
    ...     buf.add(np.full(2, t), 0, 0.0, np.full(2, t + 1), False, False)
    >>> len(buf), buf.follower(np.array([0, 1, 2])).tolist()
    (3, [1, 2, -1])
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...]) -> None:
        self.capacity = check_int("capacity", capacity, minimum=1)
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.obs = np.zeros((self.capacity, *self.obs_shape), dtype=np.float32)
        self.next_obs = np.zeros_like(self.obs)
        self.action = np.zeros(self.capacity, dtype=np.int64)
        self.reward = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=bool)
        self.truncated = np.zeros(self.capacity, dtype=bool)
        self.episode = np.full(self.capacity, -1, dtype=np.int64)
        self.position = 0  # next slot to write
        self.size = 0
        self.n_added = 0
        self.current_episode = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action: int, reward: float, next_obs, terminated: bool, truncated: bool):
        """Store one transition; a terminated or truncated one closes its episode."""
        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape != self.obs_shape:
            raise InputError(
                f"obs has shape {obs.shape}; this buffer stores observations of shape "
                f"{self.obs_shape}."
            )
        i = self.position
        self.obs[i] = obs
        self.next_obs[i] = np.asarray(next_obs, dtype=np.float32)
        self.action[i] = int(action)
        self.reward[i] = float(reward)
        self.terminated[i] = bool(terminated)
        self.truncated[i] = bool(truncated)
        self.episode[i] = self.current_episode
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self.n_added += 1
        if terminated or truncated:
            self.current_episode += 1

    def follower(self, index: np.ndarray, across_episodes: bool = False) -> np.ndarray:
        """The slot of the transition stored right after each ``index``, or -1 if none.

        None: ``index`` is the newest transition, or (unless
        ``across_episodes``) it ended its episode.
        """
        index = np.asarray(index, dtype=np.int64)
        nxt = (index + 1) % self.capacity
        newest = (self.position - 1) % self.capacity
        ok = (index != newest) & (self.size > 1)
        if not across_episodes:
            ok &= self.episode[nxt] == self.episode[index]
            ok &= ~(self.terminated[index] | self.truncated[index])
        return np.where(ok, nxt, -1)

    def sample(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """``batch_size`` slots drawn uniformly with replacement (the indices)."""
        if self.size == 0:
            raise InputError("The replay buffer is empty; add transitions before sampling.")
        return rng.integers(0, self.size, size=batch_size)

    def batch(self, index: np.ndarray, device: Any = "cpu") -> dict[str, torch.Tensor]:
        """The transitions at ``index`` as tensors on ``device``."""
        return {
            "obs": torch.from_numpy(self.obs[index]).to(device),
            "next_obs": torch.from_numpy(self.next_obs[index]).to(device),
            "action": torch.from_numpy(self.action[index]).to(device),
            "reward": torch.from_numpy(self.reward[index]).to(device),
            "terminated": torch.from_numpy(self.terminated[index]).to(device),
            "truncated": torch.from_numpy(self.truncated[index]).to(device),
        }

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything, as tensors and ints (safe for ``weights_only`` loading)."""
        n = self.size
        return {
            "capacity": self.capacity,
            "obs_shape": list(self.obs_shape),
            "position": self.position,
            "size": n,
            "n_added": self.n_added,
            "current_episode": self.current_episode,
            "obs": torch.from_numpy(self.obs[:n].copy()),
            "next_obs": torch.from_numpy(self.next_obs[:n].copy()),
            "action": torch.from_numpy(self.action[:n].copy()),
            "reward": torch.from_numpy(self.reward[:n].copy()),
            "terminated": torch.from_numpy(self.terminated[:n].copy()),
            "truncated": torch.from_numpy(self.truncated[:n].copy()),
            "episode": torch.from_numpy(self.episode[:n].copy()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output into this buffer (same capacity and shape)."""
        if int(state["capacity"]) != self.capacity or tuple(state["obs_shape"]) != self.obs_shape:
            raise InputError(
                f"The stored replay buffer holds capacity {state['capacity']} and observations "
                f"{tuple(state['obs_shape'])}; this one {self.capacity} and {self.obs_shape}. "
                "Resume with the settings the run started with."
            )
        n = int(state["size"])
        for name in ("obs", "next_obs", "action", "reward", "terminated", "truncated", "episode"):
            getattr(self, name)[:n] = state[name].numpy()
        self.size, self.position = n, int(state["position"])
        self.n_added, self.current_episode = int(state["n_added"]), int(state["current_episode"])
