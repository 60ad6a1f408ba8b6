"""The open gridworld of Fang & Stachenfeld (ICLR 2024), and its goal-transfer task.

Layout (as the public code builds it from ``layout=8``): an ``size x size``
open arena of free cells inside a one-cell wall border, so the array, and the
grid observation, is ``(size + 2) x (size + 2)``: 10 x 10 for the paper's
8 x 8 grid, free cells at rows and columns 1..8.

Episodes: the agent starts on a free cell drawn uniformly at each reset
(never the goal), as the public code does by default (``reset_start=True``);
pass ``start`` to fix it. Four actions (the public code has four too; see
:mod:`neuro.rl.envs._base` for the moves). Reward 1 on entering the goal,
which ends the episode (``terminated=True``); after ``max_steps=150`` steps
without it the episode is cut (``truncated=True``, ``terminated=False``).
Moving into a wall costs nothing (the public code's default
``penalty_for_walls=0``) and leaves the agent in place.

Two differences from the public code, both on purpose: the last observation of
a successful episode shows the agent on the goal (the public code returns the
start cell's), and a time-limit cut is ``truncated``, not a terminal state.

The goal: the public code draws it at random once per run (per seed); here
``goal=None`` draws it once from ``layout_seed`` (same seed, same goal), or
give it. :class:`GridWorldTransfer` is the transfer task: same grid, goal
moved (drawn as the public code's ``reset_goal``: more than
``min(min(n_rows, n_cols) // 3, 3)`` cells away from the old goal along the
rows or the columns).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro._validation import check_int
from neuro.errors import InputError
from neuro.rl.envs._base import (
    _STREAM_TRANSFER,
    MOVES,
    GoalMazeEnv,
    check_common,
    layout_rng,
)

__all__ = ["GridWorld", "GridWorldTransfer", "transfer_goal"]


class GridWorld(GoalMazeEnv):
    """An open ``size x size`` grid with a wall border and one hidden goal.

    Parameters
    ----------
    size : int, default=8
        Free cells per side; the array is ``(size + 2) x (size + 2)``.
    goal : (row, col), optional
        The rewarded cell. None (default): drawn once from ``layout_seed``.
    start : (row, col), optional
        Fixed start cell. None (default): a free cell other than the goal,
        drawn with ``np_random`` at each reset.
    max_steps : int, default=150
        Steps after which an episode is truncated.
    obs_mode : {"grid", "texture", "shuffled"}, default="grid"
        ``"grid"``: float32, shape (1, size + 2, size + 2): walls -1, the
        agent +1, everything else (the goal too) 0, as the public code.
        ``"texture"``: float32, shape (1, texture_size, texture_size), values
        in [0, 1]: only the image of the agent's cell, a fixed random texture
        per free cell (sum of four random gratings plus noise, drawn from
        ``layout_seed``; see :func:`~neuro.rl.envs._base.make_textures`),
        so position is seen only through appearance (the public code uses a
        grey-scale CIFAR-10 image per cell instead).
        ``"shuffled"``: the grid observation with its pixels in a fixed
        random order (:attr:`pixel_permutation`, drawn from ``layout_seed``,
        fixed for the environment's life).
    layout_seed : int, default=0
        Seeds everything fixed about the environment (default goal,
        permutation, textures), apart from ``np_random``, which
        ``reset(seed=...)`` seeds.
    texture_size : int, default=32
        Side of a texture patch in pixels (``"texture"`` mode).

    Examples
    --------
    >>> env = GridWorld(size=4, goal=(1, 4), start=(1, 1))
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.cell
    ((1, 6, 6), (1, 1))
    >>> for action in (3, 3, 3):  # right, right, right
    ...     obs, reward, terminated, truncated, info = env.step(action)
    >>> reward, terminated, truncated, env.cell
    (1.0, True, False, (1, 4))
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
        check_int("size", size, minimum=2)
        check_common(obs_mode, layout_seed, max_steps, texture_size)
        walls = np.ones((size + 2, size + 2), dtype=bool)
        walls[1:-1, 1:-1] = False
        self._setup_sized(walls, size, goal, start, max_steps, obs_mode, layout_seed, texture_size)

    def step(self, action: Any):
        """Move one cell; reward 1 and ``terminated`` on entering the goal.

        Parameters
        ----------
        action : int
            0 up (row - 1), 1 down (row + 1), 2 left (col - 1), 3 right (col + 1).

        Returns
        -------
        observation : ndarray of float32
        reward : float
            1.0 on entering the goal, else 0.0.
        terminated : bool
            The goal was entered.
        truncated : bool
            ``max_steps`` steps were taken without reaching the goal.
        info : dict
            ``cell`` (row, col) as an int array, ``steps`` in this episode.
        """
        action = self._check_action(action)
        dr, dc = MOVES[action]
        nxt = (self._cell[0] + dr, self._cell[1] + dc)
        if not self._walls[nxt]:
            self._cell = nxt
        terminated = self._cell == self._goal
        reward = 1.0 if terminated else 0.0
        truncated = self._count_step(terminated)
        return self._bare_observation(self._cell), reward, terminated, truncated, self._info()


def transfer_goal(env: GridWorld) -> tuple[int, int]:
    """The transfer task's new goal for ``env``: far from its current goal.

    Drawn (from ``env.layout_seed``, so always the same for the same grid and
    goal) uniformly among the free cells more than
    ``gap = min(min(n_rows, n_cols) // 3, 3)`` cells from the current goal
    along the rows or along the columns (the public code's rule; ``gap`` is 3
    for the 10 x 10 array of the 8 x 8 grid), excluding a fixed start cell.

    Parameters
    ----------
    env : GridWorld

    Returns
    -------
    (row, col)

    Examples
    --------
    >>> env = GridWorld(goal=(1, 1))
    >>> row, col = transfer_goal(env)
    >>> row - 1 > 3 or col - 1 > 3
    True
    """
    gap = min(min(env._shape) // 3, 3)
    gr, gc = env.goal
    far = [
        c
        for c in env.free_cells()
        if (abs(c[0] - gr) > gap or abs(c[1] - gc) > gap) and c != env.start
    ]
    if not far:
        raise InputError(
            f"no free cell is more than {gap} cells from the goal {env.goal} along a row or "
            f"column in a grid of size {env.size}; use size >= 5 for the transfer task."
        )
    rng = layout_rng(env.layout_seed, _STREAM_TRANSFER)
    return far[int(rng.integers(len(far)))]


class GridWorldTransfer(GridWorld):
    """The goal-transfer task: :class:`GridWorld` with its goal moved far away.

    Build it with the arguments of the source :class:`GridWorld` (same
    ``size``, ``layout_seed``, and ``goal`` if one was given); the goal is then
    moved to :func:`transfer_goal` of that grid. ``source_goal`` keeps the old
    one. Everything else (textures, permutation, start rule) is unchanged, so
    an agent trained on the source task meets the same observations with the
    reward elsewhere.

    Parameters
    ----------
    size, goal, start, max_steps, obs_mode, layout_seed, texture_size
        As :class:`GridWorld`; ``goal`` is the *source* task's goal.

    Examples
    --------
    >>> src = GridWorld(layout_seed=3)
    >>> env = GridWorldTransfer(layout_seed=3)
    >>> env.source_goal == src.goal, env.goal != src.goal
    (True, True)
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
        super().__init__(
            size=size,
            goal=goal,
            start=start,
            max_steps=max_steps,
            obs_mode=obs_mode,
            layout_seed=layout_seed,
            texture_size=texture_size,
        )
        self.source_goal = self.goal
        self.move_goal(transfer_goal(self))
