"""Maze environments of Fang & Stachenfeld (ICLR 2024), with the gymnasium API.

Tasks (registered with gymnasium on import; :data:`TASKS` lists the ids):

``neuro/GridWorld-v0``
    :class:`GridWorld`: 8 x 8 open grid in a wall border, hidden goal
    (reward 1, ends the episode), random start, 150 steps at most;
    observation modes ``"grid"``, ``"texture"``, ``"shuffled"``.
``neuro/GridWorldTransfer-v0``
    :class:`GridWorldTransfer`: the same grid (same ``layout_seed``), the
    goal moved more than 3 cells away along a row or column
    (:func:`transfer_goal`). Or keep one environment and call
    :meth:`GridWorld.move_goal`.
``neuro/LinearTrack-v0``
    :class:`LinearTrack`: one-way circular track of 28 cells, reward 1 each
    lap at the goal, 150-step episodes.
``neuro/AlternatingTMaze-v0``
    :class:`AlternatingTMaze`: T-maze rewarding left and right in turn, with
    a decaying trace of past positions in the observation.

Every environment has four actions (0 up, 1 down, 2 left, 3 right on the
array), ``cell``, ``free_cells()``, ``observation_at(cell)``,
``shortest_path_lengths()``, and ``get_state()`` / ``set_state(state)`` for an
exact resume (random generator included). :func:`make` returns gymnasium's
wrapped environment: reach these methods through ``env.unwrapped``.

Examples
--------
>>> from neuro.rl.envs import make
>>> env = make("neuro/GridWorld-v0", size=4, layout_seed=1)
>>> obs, info = env.reset(seed=0)
>>> obs.shape, obs.dtype
((1, 6, 6), dtype('float32'))
>>> len(env.unwrapped.free_cells())
16
"""

from __future__ import annotations

import difflib
import functools
import inspect
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from neuro._validation import check_choice, check_int
from neuro.errors import InputError, InputKeyError, InputTypeError
from neuro.rl.envs._base import ACTION_NAMES, MOVES, OBS_MODES
from neuro.rl.envs.gridworld import GridWorld, GridWorldTransfer, transfer_goal
from neuro.rl.envs.linear_track import LinearTrack
from neuro.rl.envs.tmaze import AlternatingTMaze

__all__ = [
    "ACTION_NAMES",
    "AUTORESET_MODES",
    "MOVES",
    "OBS_MODES",
    "TASKS",
    "AlternatingTMaze",
    "GridWorld",
    "GridWorldTransfer",
    "LinearTrack",
    "make",
    "make_vector",
    "transfer_goal",
]

_ENTRY_POINTS = {
    "neuro/GridWorld-v0": GridWorld,
    "neuro/GridWorldTransfer-v0": GridWorldTransfer,
    "neuro/LinearTrack-v0": LinearTrack,
    "neuro/AlternatingTMaze-v0": AlternatingTMaze,
}
#: The registered task ids.
TASKS: tuple[str, ...] = tuple(_ENTRY_POINTS)
#: ``autoreset_mode`` values of :func:`make_vector` (gymnasium's AutoresetMode).
AUTORESET_MODES = {
    "next_step": AutoresetMode.NEXT_STEP,
    "same_step": AutoresetMode.SAME_STEP,
    "disabled": AutoresetMode.DISABLED,
}

for _id, _cls in _ENTRY_POINTS.items():
    if _id not in gym.registry:  # idempotent: re-importing does not re-register
        gym.register(id=_id, entry_point=f"{_cls.__module__}:{_cls.__name__}")


def _check_task(name: Any, kwargs: dict[str, Any]) -> None:
    if not isinstance(name, str):
        raise InputTypeError(
            f"name must be a task id (str), one of {', '.join(TASKS)}; got {type(name).__name__}."
        )
    if name not in _ENTRY_POINTS:
        guess = difflib.get_close_matches(name, TASKS, n=1, cutoff=0.3)
        if not guess:
            guess = difflib.get_close_matches(f"neuro/{name}", TASKS, n=1, cutoff=0.3)
        hint = f" Did you mean {guess[0]!r}?" if guess else ""
        raise InputKeyError(f"unknown task {name!r}; known: {', '.join(TASKS)}.{hint}")
    params = inspect.signature(_ENTRY_POINTS[name]).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise InputError(
            f"{name} has no parameter(s) {', '.join(map(repr, unknown))}; it takes "
            f"{', '.join(params)}."
        )


def make(name: str, **kwargs: Any) -> gym.Env:
    """Build a registered task through ``gymnasium.make``.

    Parameters
    ----------
    name : str
        One of :data:`TASKS`.
    **kwargs
        The environment's constructor arguments (e.g. ``size``,
        ``obs_mode``, ``layout_seed`` for the grid).

    Returns
    -------
    gymnasium.Env
        Wrapped by gymnasium (order enforcing, passive checker); the
        environment itself, with ``free_cells`` and the rest, is
        ``env.unwrapped``.

    Raises
    ------
    InputKeyError
        Unknown name (the message lists the known ones and the closest).
    InputError
        Unknown or invalid keyword arguments.

    Examples
    --------
    >>> env = make("neuro/LinearTrack-v0", obs_mode="shuffled")
    >>> env.reset(seed=0)[0].shape
    (1, 10, 10)
    """
    _check_task(name, kwargs)
    try:
        return gym.make(name, **kwargs)
    except InputTypeError as err:  # gymnasium re-raises TypeErrors with its own suffix
        if isinstance(err.__cause__, InputTypeError):
            raise err.__cause__ from None
        raise


def make_vector(
    name: str, num_envs: int, *, autoreset_mode: str = "next_step", **kwargs: Any
) -> SyncVectorEnv:
    """``num_envs`` copies of a task stepped together (``gymnasium.vector.SyncVectorEnv``).

    Parameters
    ----------
    name : str
        One of :data:`TASKS`.
    num_envs : int
        Number of copies (>= 1), all built with the same ``kwargs`` (so the
        same layout and goal); ``reset(seed=s)`` seeds copy ``i`` with
        ``s + i``.
    autoreset_mode : {"next_step", "same_step", "disabled"}, default="next_step"
        Gymnasium 1.x's autoreset modes. ``"next_step"`` (gymnasium's
        default): after a copy's episode ends, the *next* ``step`` call
        resets it, ignores its action and returns its first observation with
        reward 0 and both flags False. ``"same_step"``: the step that ends an
        episode resets at once and returns the new first observation; the
        last one is in ``info["final_obs"]``. ``"disabled"``: reset copies
        yourself with ``reset(options={"reset_mask": mask})``.
    **kwargs
        The environment's constructor arguments.

    Returns
    -------
    gymnasium.vector.SyncVectorEnv
        Observations stacked on a first axis of length ``num_envs``.

    Examples
    --------
    >>> venv = make_vector("neuro/GridWorld-v0", 3, size=4)
    >>> obs, info = venv.reset(seed=0)
    >>> obs.shape
    (3, 1, 6, 6)
    >>> obs, rewards, terminated, truncated, info = venv.step([0, 1, 2])
    >>> rewards.shape
    (3,)
    >>> venv.close()
    """
    check_int("num_envs", num_envs, minimum=1)
    check_choice("autoreset_mode", autoreset_mode, AUTORESET_MODES)
    _check_task(name, kwargs)
    make(name, **kwargs).close()  # argument errors surface here, once, in one line
    fns = [functools.partial(make, name, **kwargs) for _ in range(num_envs)]
    return SyncVectorEnv(fns, autoreset_mode=AUTORESET_MODES[autoreset_mode])
