"""The circular linear track of the public code (chingf/auxrl ``LinearTrack.py``).

Layout: the ``(size + 2) x (size + 2)`` array of :class:`~neuro.rl.envs.GridWorld`
with only its outer ring of free cells kept (rows 1 and ``size``, columns 1
and ``size``; everything inside is wall), ``4 (size - 1)`` cells: 28 for the
default ``size=8``. Movement is one-way, clockwise on the array drawn with
row 0 at the top: right along the top row, down the right column, left along
the bottom row, up the left column. In each cell exactly one action moves the
agent on; the other three leave it in place (no cost: the public code's
``penalty_for_walls=0``).

Reward 1 each time the agent enters the goal cell; the goal does not end the
episode (as in the public code), which runs until ``max_steps=150`` steps
(``truncated=True``; ``terminated`` is always False). The start cell is drawn
at each reset from the free cells other than the goal; the goal is drawn once
from ``layout_seed`` unless given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro._validation import check_int
from neuro.rl.envs._base import MOVES, GoalMazeEnv, check_common

__all__ = ["LinearTrack"]


class LinearTrack(GoalMazeEnv):
    """A one-way circular track around the border of a square arena.

    Parameters
    ----------
    size : int, default=8
        Free cells per side of the ring (>= 3); the array is
        ``(size + 2) x (size + 2)``.
    goal : (row, col), optional
        The rewarded cell, on the ring. None: drawn once from ``layout_seed``.
    start : (row, col), optional
        Fixed start cell. None: drawn with ``np_random`` at each reset.
    max_steps : int, default=150
        Episode length (the only way an episode ends).
    obs_mode : {"grid", "texture", "shuffled"}, default="grid"
        As :class:`~neuro.rl.envs.GridWorld` (the public code has the grid
        and its shuffled variant).
    layout_seed : int, default=0
        Seeds the default goal, the permutation and the textures.
    texture_size : int, default=32
        Side of a texture patch (``"texture"`` mode).

    Examples
    --------
    >>> env = LinearTrack(size=3, goal=(1, 3), start=(1, 1))
    >>> obs, info = env.reset(seed=0)
    >>> env.forward_action()  # the one move allowed here: right
    3
    >>> [env.step(3)[1] for _ in range(2)]  # (1, 2), then the goal (1, 3)
    [0.0, 1.0]
    >>> env.step(3)[1], env.cell  # blocked: at (1, 3) only "down" moves
    (0.0, (1, 3))
    """

    def __init__(
        self,
        size: int = 8,
        goal: Any = None,
        start: Any = None,
        max_steps: int = 150,
        obs_mode: str = "grid",
        layout_seed: int = 0,
        texture_size: int = 32,
    ) -> None:
        check_int("size", size, minimum=3)
        check_common(obs_mode, layout_seed, max_steps, texture_size)
        walls = np.ones((size + 2, size + 2), dtype=bool)
        walls[1, 1:-1] = walls[-2, 1:-1] = walls[1:-1, 1] = walls[1:-1, -2] = False
        self._setup_sized(walls, size, goal, start, max_steps, obs_mode, layout_seed, texture_size)

    def forward_action(self, cell: Any = None) -> int:
        """The one action that moves the agent on from ``cell`` (default: its own).

        Parameters
        ----------
        cell : (row, col), optional
            A cell of the ring.

        Returns
        -------
        int
            3 (right) on the top row, 1 (down) on the right column, 2 (left)
            on the bottom row, 0 (up) on the left column.
        """
        cell = self._cell if cell is None else self._check_free("cell", cell)
        return _forward(cell, self._shape)

    def _successors(self, cell: tuple[int, int]) -> list[tuple[int, int]]:
        dr, dc = MOVES[_forward(cell, self._shape)]
        return [(cell[0] + dr, cell[1] + dc)]

    def step(self, action: Any):
        """Move on if ``action`` is the forward one; reward 1 on entering the goal.

        Parameters
        ----------
        action : int
            0 up, 1 down, 2 left, 3 right; only :meth:`forward_action` moves.

        Returns
        -------
        observation : ndarray of float32
        reward : float
            1.0 on entering the goal, else 0.0.
        terminated : bool
            Always False (the track has no terminal state).
        truncated : bool
            True at step ``max_steps``.
        info : dict
            ``cell``, ``steps``.
        """
        action = self._check_action(action)
        reward = 0.0
        if action == _forward(self._cell, self._shape):
            dr, dc = MOVES[action]
            self._cell = (self._cell[0] + dr, self._cell[1] + dc)
            reward = 1.0 if self._cell == self._goal else 0.0
        truncated = self._count_step(False)
        return self._bare_observation(self._cell), reward, False, truncated, self._info()


def _forward(cell: tuple[int, int], shape: tuple[int, int]) -> int:
    """The clockwise action at ``cell`` of the ring in an array of ``shape``."""
    r, c = cell
    n_rows, n_cols = shape
    if r == 1 and c < n_cols - 2:
        return 3
    if c == n_cols - 2 and r < n_rows - 2:
        return 1
    if r == n_rows - 2 and c > 1:
        return 2
    return 0
