"""The alternating T-maze of the public code (chingf/auxrl ``AlternatingT.py``).

Layout, on the ``width x height`` array (rows are the public code's ``x``,
across the arms; columns its ``y``, along the stem; the observation has the
public code's orientation, shape ``(1, width, height)``): free cells are the
two long corridors at columns 1 and ``height - 2`` (rows 1..``width - 2``),
joined by three arms at rows 1, ``mid = width // 2`` and ``width - 2``. The
middle arm is the stem. Named cells::

    reset    (mid, 1)            start, and the reward port at the stem's foot
    decision (mid, height - 2)   the top of the stem, where the agent turns
    left     (1, height - 2)     left reward port
    right    (width - 2, height - 2)  right reward port

Task: reward ``reward_value=5`` at the left port, then at the reset port,
then at the right port, then the reset port, and so on: the rewarded arm
alternates, and the first one is the left. Entering the arm that was rewarded
last time gives nothing. One-way rules push the agent round the loops as in
the public code: at the reset port right after a reset reward only "up the
stem" (action 3) moves; at the left port after its reward the agent cannot go
back along the top corridor (action 1) and must return down the left arm; the
mirror rule holds at the right port. A blocked move or a move into a wall
costs ``wall_penalty=-1`` and leaves the agent in place. Episodes end only by
time: ``max_steps=2000`` (``truncated``).

What makes it solvable for a feedforward agent (the public code's device,
with its run script's settings ``temporal_context_len=4``,
``temporal_context_gamma=0.9``): the observation is the grid (walls -1, agent
+1) plus a decaying trace of the last ``context_len`` grid observations,
``obs_t = g_t + sum_{k=1..L} gamma^k g_{t-k}`` on the non-wall pixels. At the
decision point the oldest term of the trace (weight ``0.9**4 = 0.6561``) is
the corridor cell next to the reset port, on the side the agent came back
from, so the observation says which arm was visited last. Unlike the public
code, reset clears the trace (there it leaks into the next episode).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro._validation import check_float, check_int
from neuro.errors import InputError
from neuro.rl.envs._base import MOVES, MazeEnv

__all__ = ["AlternatingTMaze"]


class AlternatingTMaze(MazeEnv):
    """A T-maze whose two arms are rewarded in alternation, with a return loop.

    Parameters
    ----------
    width : int, default=7
        Rows of the array (odd, >= 5): the three arms sit at rows 1,
        ``width // 2`` and ``width - 2``.
    height : int, default=6
        Columns of the array (>= 4): the stem runs from column 1 to
        ``height - 2``.
    max_steps : int, default=2000
        Episode length (the only way an episode ends; the public default).
    context_len : int, default=4
        Past observations in the trace (0: plain grid observations).
    context_gamma : float, default=0.9
        Decay of the trace, in (0, 1].
    reward_value : float, default=5.0
        Reward at each correct port.
    wall_penalty : float, default=-1.0
        Reward for a move into a wall or a blocked move.

    Examples
    --------
    >>> env = AlternatingTMaze()
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.cell, info["rewarded_port"]
    ((1, 7, 6), (3, 1), 'left')
    >>> rewards = [env.step(a)[1] for a in (3, 3, 3, 0, 0)]  # up the stem, left
    >>> rewards, env.cell
    ([0.0, 0.0, 0.0, 0.0, 5.0], (1, 4))
    """

    def __init__(
        self,
        width: int = 7,
        height: int = 6,
        max_steps: int = 2000,
        context_len: int = 4,
        context_gamma: float = 0.9,
        reward_value: float = 5.0,
        wall_penalty: float = -1.0,
    ) -> None:
        check_int("width", width, minimum=5)
        if width % 2 == 0:
            raise InputError(
                f"width must be odd so that the stem sits in the middle row; got {width}. "
                f"Use {width + 1}."
            )
        check_int("height", height, minimum=4)
        check_int("max_steps", max_steps, minimum=1)
        check_int("context_len", context_len, minimum=0)
        check_float("context_gamma", context_gamma, minimum=0.0, maximum=1.0, strict_minimum=True)
        check_float("reward_value", reward_value)
        check_float("wall_penalty", wall_penalty)
        self.width, self.height = int(width), int(height)
        self.context_len = int(context_len)
        self.context_gamma = float(context_gamma)
        self.reward_value = float(reward_value)
        self.wall_penalty = float(wall_penalty)
        mid = self.width // 2
        walls = np.ones((self.width, self.height), dtype=bool)
        walls[1:-1, 1] = walls[1:-1, -2] = False
        for row in (1, mid, self.width - 2):
            walls[row, 1:-1] = False
        self.ports = {
            "left": (1, self.height - 2),
            "right": (self.width - 2, self.height - 2),
            "reset": (mid, 1),
        }
        self.decision_cell = (mid, self.height - 2)
        config = {
            "width": self.width,
            "height": self.height,
            "max_steps": int(max_steps),
            "context_len": self.context_len,
            "context_gamma": self.context_gamma,
            "reward_value": self.reward_value,
            "wall_penalty": self.wall_penalty,
        }
        self._setup(
            walls,
            max_steps=int(max_steps),
            obs_mode="grid",
            layout_seed=0,
            texture_size=32,
            config=config,
        )
        self._rewarded = "left"
        self._last = "reset"
        self._trace = np.zeros((self.context_len, 1, self.width, self.height), np.float32)

    def _obs_high(self) -> float:
        return 1.0 + float(sum(self.context_gamma**k for k in range(1, self.context_len + 1)))

    @property
    def rewarded_port(self) -> str:
        """Where the next reward waits: ``"left"``, ``"right"`` or ``"reset"``."""
        return self._rewarded

    def _observe(self) -> np.ndarray:
        bare = self._bare_observation(self._cell)
        obs = bare.copy()
        open_ = bare >= 0
        for k in range(1, self.context_len + 1):
            obs[open_] += self.context_gamma**k * self._trace[-k][open_]
        if self.context_len:
            self._trace = np.concatenate([self._trace[1:], bare[None]])
        return obs

    def _info(self) -> dict[str, Any]:
        info = super()._info()
        info["rewarded_port"] = self._rewarded
        return info

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Put the agent at the reset port, reward on the left, trace cleared.

        Parameters
        ----------
        seed : int, optional
            Reseeds ``np_random`` (which this task does not use).
        options : dict, optional
            Unused.

        Returns
        -------
        observation : ndarray of float32, shape (1, width, height)
        info : dict
            ``cell``, ``steps``, ``rewarded_port``.
        """
        super().reset(seed=seed)
        self._cell = self.ports["reset"]
        self._rewarded, self._last = "left", "reset"
        self._trace[:] = 0.0
        self._steps = 0
        self._done = False
        return self._observe(), self._info()

    def _blocked(self, action: int) -> bool:
        if self._last == "left":
            return self._cell == self.ports["left"] and action == 1
        if self._last == "right":
            return self._cell == self.ports["right"] and action == 0
        return self._cell == self.ports["reset"] and action != 3

    def step(self, action: Any):
        """Move one cell under the one-way rules; reward the correct port.

        Parameters
        ----------
        action : int
            0: row - 1 (towards the left arm), 1: row + 1 (towards the
            right arm), 2: column - 1 (towards the reset corridor), 3:
            column + 1 (up the stem).

        Returns
        -------
        observation : ndarray of float32, shape (1, width, height)
        reward : float
            ``reward_value`` at the correct port, ``wall_penalty`` for a
            blocked move, else 0.
        terminated : bool
            Always False.
        truncated : bool
            True at step ``max_steps``.
        info : dict
            ``cell``, ``steps``, ``rewarded_port``.
        """
        action = self._check_action(action)
        dr, dc = MOVES[action]
        nxt = (self._cell[0] + dr, self._cell[1] + dc)
        reward = 0.0
        if self._walls[nxt] or self._blocked(action):
            reward = self.wall_penalty
        else:
            self._cell = nxt
            if self._rewarded in ("left", "right") and nxt == self.ports[self._rewarded]:
                reward = self.reward_value
                self._last, self._rewarded = self._rewarded, "reset"
            elif self._rewarded == "reset" and nxt == self.ports["reset"]:
                if self._last in ("left", "right"):
                    reward = self.reward_value
                    self._rewarded = "right" if self._last == "left" else "left"
                self._last = "reset"
        truncated = self._count_step(False)
        return self._observe(), reward, False, truncated, self._info()

    def observation_at(self, cell: Any) -> np.ndarray:
        """The plain grid observation at ``cell``, without the trace.

        Parameters
        ----------
        cell : (row, col)
            A free cell.

        Returns
        -------
        ndarray of float32, shape (1, width, height)
        """
        return super().observation_at(cell)

    def shortest_path_lengths(self) -> np.ndarray:
        """Least steps between free cells through the corridors (walls only).

        The one-way rules at the ports depend on the reward phase and are not
        applied, so the result is symmetric.

        Returns
        -------
        ndarray of int64, shape (n_cells, n_cells)
        """
        return super().shortest_path_lengths()

    def _extra_state(self) -> dict[str, Any]:
        return {
            "rewarded_port": self._rewarded,
            "last_rewarded": self._last,
            "trace": self._trace.copy(),
        }

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        self._rewarded = str(state["rewarded_port"])
        self._last = str(state["last_rewarded"])
        self._trace = np.array(state["trace"], dtype=np.float32)
