"""What the maze environments of :mod:`neuro.rl.envs` share.

Every environment here is a maze of square cells on a 2D array: a cell is
``(row, col)``, an index into the last two axes of the grid observation, and
the agent moves one cell per step with one of four actions, the same table in
every environment (as in the public code, chingf/auxrl):

====== ============ ===========================
action move         on the array drawn row-wise
====== ============ ===========================
0      ``row - 1``  up
1      ``row + 1``  down
2      ``col - 1``  left
3      ``col + 1``  right
====== ============ ===========================

(The public code's comments call these left, right, up, down; the moves
themselves are the ones above.) A move into a wall leaves the agent where it
was.

:class:`MazeEnv` holds the layout, the observation modes, the step counter and
the exact-resume state; :class:`GoalMazeEnv` adds one rewarded goal cell and a
start cell (fixed, or drawn from the free cells at each reset).
"""

from __future__ import annotations

from collections import deque
from numbers import Integral
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from neuro._validation import check_choice, check_int
from neuro.errors import InputError, InputTypeError

__all__ = [
    "ACTION_NAMES",
    "MOVES",
    "OBS_MODES",
    "GoalMazeEnv",
    "MazeEnv",
    "bfs_lengths",
    "make_textures",
]

#: ``(d_row, d_col)`` of each action.
MOVES: tuple[tuple[int, int], ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))
#: The name of each action, on the array drawn with row 0 at the top.
ACTION_NAMES: tuple[str, ...] = ("up", "down", "left", "right")
#: The observation modes of :class:`GoalMazeEnv`.
OBS_MODES: tuple[str, ...] = ("grid", "texture", "shuffled")

# Independent random streams drawn from ``layout_seed`` (one per purpose, so that
# changing obs_mode never changes the goal, and the reverse).
_STREAM_GOAL, _STREAM_PERMUTATION, _STREAM_TEXTURE, _STREAM_TRANSFER = 0, 1, 2, 3


def layout_rng(layout_seed: int, stream: int) -> np.random.Generator:
    """The generator of one fixed-layout random stream (goal, permutation, textures)."""
    return np.random.default_rng([layout_seed, stream])


def bfs_lengths(cells: list[tuple[int, int]], successors) -> np.ndarray:
    """Shortest-path lengths (in steps) between all pairs of ``cells``.

    Parameters
    ----------
    cells : list of (row, col)
        The nodes, in the order of the rows and columns of the result.
    successors : callable
        ``successors(cell)`` -> iterable of cells reachable in one step
        (directed: the result need not be symmetric).

    Returns
    -------
    ndarray of int64, shape (n_cells, n_cells)
        ``[i, j]`` is the least number of steps from ``cells[i]`` to
        ``cells[j]``; ``-1`` where ``cells[j]`` cannot be reached.

    Examples
    --------
    >>> line = [(0, 0), (0, 1), (0, 2)]
    >>> step = lambda c: [(0, c[1] + d) for d in (-1, 1) if 0 <= c[1] + d <= 2]
    >>> bfs_lengths(line, step)
    array([[0, 1, 2],
           [1, 0, 1],
           [2, 1, 0]])
    """
    index = {cell: i for i, cell in enumerate(cells)}
    n = len(cells)
    out = np.full((n, n), -1, dtype=np.int64)
    for i, source in enumerate(cells):
        out[i, i] = 0
        queue = deque([source])
        while queue:
            cell = queue.popleft()
            for nxt in successors(cell):
                j = index.get(nxt)
                if j is not None and out[i, j] < 0:
                    out[i, j] = out[i, index[cell]] + 1
                    queue.append(nxt)
    return out


def make_textures(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random grey-level texture patches, each a sum of sinusoidal gratings.

    Each patch is the sum of four gratings, each with a random orientation
    (uniform in [0, pi)), spatial frequency (uniform in 1-6 cycles per patch),
    phase (uniform in [0, 2 pi)) and amplitude (uniform in [0.5, 1]), plus
    Gaussian pixel noise (s.d. 0.1), rescaled to span [0, 1] exactly. They
    stand in for the public code's grey-scale CIFAR-10 images (one image per
    cell), which would need a download.

    Parameters
    ----------
    n : int
        Number of patches.
    size : int
        Side of each patch, in pixels.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of float32, shape (n, size, size)
        Values in [0, 1].

    Examples
    --------
    >>> t = make_textures(3, 8, np.random.default_rng(0))
    >>> t.shape, float(t.min()), float(t.max())
    ((3, 8, 8), 0.0, 1.0)
    """
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, size, size), dtype=np.float32)
    for k in range(n):
        img = np.zeros((size, size))
        for _ in range(4):
            theta = rng.uniform(0.0, np.pi)
            freq = rng.uniform(1.0, 6.0)
            phase = rng.uniform(0.0, 2 * np.pi)
            amp = rng.uniform(0.5, 1.0)
            proj = xx * np.cos(theta) + yy * np.sin(theta)
            img += amp * np.sin(2 * np.pi * freq * proj + phase)
        img += rng.normal(0.0, 0.1, size=img.shape)
        img = (img - img.min()) / (img.max() - img.min())
        out[k] = img
    return out


def check_cell(name: str, cell: Any, shape: tuple[int, int]) -> tuple[int, int]:
    """``cell`` as a ``(row, col)`` tuple of ints inside an array of ``shape``."""
    ok = (
        isinstance(cell, (tuple, list, np.ndarray))
        and len(cell) == 2
        and all(isinstance(v, Integral) and not isinstance(v, bool) for v in cell)
    )
    if not ok:
        raise InputTypeError(
            f"{name} must be a (row, col) pair of integers; got {cell!r}. Give e.g. (1, 2)."
        )
    r, c = int(cell[0]), int(cell[1])
    if not (0 <= r < shape[0] and 0 <= c < shape[1]):
        raise InputError(
            f"{name} must lie inside the {shape[0]}x{shape[1]} array (rows 0..{shape[0] - 1}, "
            f"cols 0..{shape[1] - 1}); got {(r, c)}."
        )
    return r, c


def _plain_rng_state(rng: np.random.Generator | None) -> dict | None:
    return None if rng is None else rng.bit_generator.state


def _rng_from_state(state: dict | None) -> np.random.Generator | None:
    if state is None:
        return None
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


class MazeEnv(gym.Env):
    """Base of the maze environments: layout, observations, step counter, exact resume.

    Subclasses call :meth:`_setup` from ``__init__`` after checking their
    arguments, and implement ``_successors(cell)`` (the cells one move away,
    for :meth:`shortest_path_lengths`), ``reset`` and ``step``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def _setup(
        self,
        walls: np.ndarray,
        *,
        max_steps: int,
        obs_mode: str,
        layout_seed: int,
        texture_size: int,
        config: dict[str, Any],
    ) -> None:
        self._walls = np.asarray(walls, dtype=bool)
        self._shape = self._walls.shape
        self._free = [tuple(int(v) for v in rc) for rc in np.argwhere(~self._walls)]
        self._free_index = {cell: i for i, cell in enumerate(self._free)}
        self.max_steps = max_steps
        self.obs_mode = obs_mode
        self.layout_seed = layout_seed
        self.texture_size = texture_size
        self._config = dict(config)
        self._cell: tuple[int, int] | None = None
        self._steps = 0
        self._done = True  # no episode until the first reset
        self._permutation = None
        self._textures = None
        n_pixels = self._shape[0] * self._shape[1]
        if obs_mode == "shuffled":
            self._permutation = layout_rng(layout_seed, _STREAM_PERMUTATION).permutation(n_pixels)
        if obs_mode == "texture":
            self._textures = make_textures(
                len(self._free), texture_size, layout_rng(layout_seed, _STREAM_TEXTURE)
            )
            self.observation_space = gym.spaces.Box(
                0.0, 1.0, shape=(1, texture_size, texture_size), dtype=np.float32
            )
        else:
            self.observation_space = gym.spaces.Box(
                -1.0, self._obs_high(), shape=(1, *self._shape), dtype=np.float32
            )
        self.action_space = gym.spaces.Discrete(len(MOVES))

    def _obs_high(self) -> float:
        return 1.0

    # ------------------------------------------------------------------ layout
    @property
    def cell(self) -> tuple[int, int] | None:
        """The agent's cell ``(row, col)``; ``None`` before the first reset."""
        return self._cell

    @property
    def walls(self) -> np.ndarray:
        """Boolean array, shape (n_rows, n_cols): True on walls (a copy)."""
        return self._walls.copy()

    @property
    def pixel_permutation(self) -> np.ndarray | None:
        """In ``"shuffled"`` mode, the pixel order: ``obs.ravel() == grid.ravel()[perm]``."""
        return None if self._permutation is None else self._permutation.copy()

    def free_cells(self) -> list[tuple[int, int]]:
        """The cells the agent can occupy, in row-major order.

        Returns
        -------
        list of (row, col)
            The order of the rows and columns of :meth:`shortest_path_lengths`.
        """
        return list(self._free)

    def shortest_path_lengths(self) -> np.ndarray:
        """Least number of steps between every pair of free cells (breadth-first search).

        Returns
        -------
        ndarray of int64, shape (n_cells, n_cells)
            ``[i, j]``: steps from ``free_cells()[i]`` to ``free_cells()[j]``
            under the environment's movement rules (the goal does not end a
            path); ``-1`` if unreachable.
        """
        return bfs_lengths(self._free, self._successors)

    def _successors(self, cell: tuple[int, int]) -> list[tuple[int, int]]:
        out = []
        for dr, dc in MOVES:
            nxt = (cell[0] + dr, cell[1] + dc)
            if not self._walls[nxt]:
                out.append(nxt)
        return out

    def _check_free(self, name: str, cell: Any) -> tuple[int, int]:
        r, c = check_cell(name, cell, self._shape)
        if self._walls[r, c]:
            raise InputError(
                f"{name} must be a free cell, not a wall; got {(r, c)}. Pick one of free_cells()."
            )
        return r, c

    # ----------------------------------------------------------- observations
    def _grid(self, cell: tuple[int, int]) -> np.ndarray:
        obs = np.where(self._walls, -1.0, 0.0).astype(np.float32)
        obs[cell] = 1.0
        return obs[None]

    def _bare_observation(self, cell: tuple[int, int]) -> np.ndarray:
        if self.obs_mode == "texture":
            return self._textures[self._free_index[cell]][None].copy()
        obs = self._grid(cell)
        if self.obs_mode == "shuffled":
            obs = obs.ravel()[self._permutation].reshape(obs.shape)
        return obs

    def observation_at(self, cell: Any) -> np.ndarray:
        """The observation the agent would get at ``cell``.

        Parameters
        ----------
        cell : (row, col)
            A free cell.

        Returns
        -------
        ndarray of float32, shape ``observation_space.shape``
        """
        return self._bare_observation(self._check_free("cell", cell))

    # ------------------------------------------------------------------ steps
    def _check_action(self, action: Any) -> int:
        if isinstance(action, np.ndarray) and action.shape == ():
            action = action.item()
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, Integral):
            raise InputTypeError(
                f"action must be an integer in 0..{len(MOVES) - 1} (0 up, 1 down, 2 left, "
                f"3 right); got {action!r} ({type(action).__name__})."
            )
        if not 0 <= action < len(MOVES):
            raise InputError(
                f"action must be an integer in 0..{len(MOVES) - 1} (0 up, 1 down, 2 left, "
                f"3 right); got {action}."
            )
        if self._done:
            raise InputError(
                "step() called with no episode running: call reset() first (after the first "
                "reset, and after terminated or truncated)."
            )
        return int(action)

    def _count_step(self, terminated: bool) -> bool:
        """Advance the step counter; return ``truncated``."""
        self._steps += 1
        truncated = (not terminated) and self._steps >= self.max_steps
        self._done = terminated or truncated
        return truncated

    def _info(self) -> dict[str, Any]:
        return {"cell": np.array(self._cell, dtype=np.int64), "steps": self._steps}

    # ----------------------------------------------------------- exact resume
    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly from here, as plain values.

        Returns
        -------
        dict
            ``env`` (class name), ``config`` (constructor arguments), ``cell``,
            ``steps``, ``done``, ``np_random`` (the bit generator's state, or
            None before the first reset), ``np_random_seed``, and the
            environment's own keys (goal, reward phase, context trace...).
            Values are ints, floats, strings, lists, dicts, None or arrays.
        """
        state = {
            "env": type(self).__name__,
            "config": dict(self._config),
            "cell": None if self._cell is None else list(self._cell),
            "steps": int(self._steps),
            "done": bool(self._done),
            "np_random": _plain_rng_state(self._np_random),
            "np_random_seed": self._np_random_seed,
        }
        state.update(self._extra_state())
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`get_state` (of an environment built the same way).

        Parameters
        ----------
        state : dict
            As returned by :meth:`get_state`.

        Raises
        ------
        InputError
            The state is not a dict from this class, or was made with other
            constructor arguments.
        """
        if not isinstance(state, dict) or "env" not in state or "config" not in state:
            raise InputTypeError(
                f"state must be a dict returned by get_state(); got {type(state).__name__}."
            )
        if state["env"] != type(self).__name__:
            raise InputError(
                f"state comes from a {state['env']}, not a {type(self).__name__}; restore it "
                f"into a {state['env']}."
            )
        if state["config"] != self._config:
            diff = sorted(k for k in self._config if state["config"].get(k) != self._config[k])
            raise InputError(
                f"state was made with other settings ({', '.join(diff)} differ: "
                f"{ {k: state['config'].get(k) for k in diff} } vs "
                f"{ {k: self._config[k] for k in diff} }); build the environment with the "
                "state's 'config'."
            )
        self._cell = None if state["cell"] is None else tuple(int(v) for v in state["cell"])
        self._steps = int(state["steps"])
        self._done = bool(state["done"])
        self._np_random = _rng_from_state(state["np_random"])
        self._np_random_seed = state["np_random_seed"]
        self._set_extra_state(state)


class GoalMazeEnv(MazeEnv):
    """A maze with one rewarded goal cell and a fixed or random start cell."""

    _valid_obs_modes = OBS_MODES

    def _setup_sized(
        self, walls, size, goal, start, max_steps, obs_mode, layout_seed, texture_size
    ):
        """``_setup`` for a maze built from one ``size``, then the goal and start cells."""
        config = {
            "size": int(size),
            "max_steps": int(max_steps),
            "obs_mode": obs_mode,
            "layout_seed": int(layout_seed),
            "texture_size": int(texture_size),
        }
        self._setup(
            walls,
            max_steps=int(max_steps),
            obs_mode=obs_mode,
            layout_seed=int(layout_seed),
            texture_size=int(texture_size),
            config=config,
        )
        self.size = int(size)
        self._setup_goal(goal, start)

    def _setup_goal(self, goal: Any, start: Any) -> None:
        if goal is None:
            free = self._free
            goal = free[int(layout_rng(self.layout_seed, _STREAM_GOAL).integers(len(free)))]
        self._goal = self._check_free("goal", goal)
        self._start = None if start is None else self._check_free("start", start)
        if self._start is not None and self._start == self._goal:
            raise InputError(
                f"start must differ from goal; both are {self._goal}. Give another start, or "
                "start=None for a random one."
            )
        self._config["start"] = None if self._start is None else list(self._start)

    @property
    def goal(self) -> tuple[int, int]:
        """The rewarded cell ``(row, col)``."""
        return self._goal

    @property
    def start(self) -> tuple[int, int] | None:
        """The fixed start cell, or None when each reset draws one."""
        return self._start

    def move_goal(self, goal: Any) -> None:
        """Move the reward to another free cell (goal transfer: train, move, continue).

        Parameters
        ----------
        goal : (row, col)
            A free cell, not the fixed start cell. Takes effect at once; the
            step counter and the agent's cell are left as they are (an agent
            already standing on the new goal is rewarded only on re-entering).
        """
        goal = self._check_free("goal", goal)
        if self._start is not None and goal == self._start:
            raise InputError(
                f"goal must differ from the fixed start cell {self._start}; got {goal}."
            )
        self._goal = goal

    def _draw_start(self) -> tuple[int, int]:
        if self._start is not None:
            return self._start
        choices = [c for c in self._free if c != self._goal]
        return choices[int(self.np_random.integers(len(choices)))]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode; the start cell is drawn with ``np_random`` unless fixed.

        Parameters
        ----------
        seed : int, optional
            Reseeds ``np_random`` (gymnasium's rule).
        options : dict, optional
            Unused.

        Returns
        -------
        observation : ndarray of float32
        info : dict
            ``cell`` (row, col) as an int array, ``steps``.
        """
        super().reset(seed=seed)
        self._cell = self._draw_start()
        self._steps = 0
        self._done = False
        return self._bare_observation(self._cell), self._info()

    def _extra_state(self) -> dict[str, Any]:
        return {"goal": list(self._goal)}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        self._goal = tuple(int(v) for v in state["goal"])


def check_common(obs_mode: Any, layout_seed: Any, max_steps: Any, texture_size: Any) -> None:
    """Validate the arguments every goal maze takes."""
    check_choice("obs_mode", obs_mode, OBS_MODES)
    check_int("layout_seed", layout_seed, minimum=0)
    check_int("max_steps", max_steps, minimum=1)
    check_int("texture_size", texture_size, minimum=4)
