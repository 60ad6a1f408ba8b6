"""The maze environments of neuro.rl.envs: API, ground truth, exact resume, input errors."""

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from neuro.errors import InputError, InputKeyError, InputTypeError
from neuro.rl.envs import (
    MOVES,
    TASKS,
    AlternatingTMaze,
    GridWorld,
    GridWorldTransfer,
    LinearTrack,
    make,
    make_vector,
    transfer_goal,
)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def _rollout(env, actions, reset_seed=None):
    """Step through ``actions``, resetting (unseeded) when an episode ends."""
    out = []
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(int(a))
        out.append((obs.copy(), reward, terminated, truncated))
        if terminated or truncated:
            obs, _ = env.reset()
            out.append((obs.copy(), "reset", env.unwrapped.cell))
    return out


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert len(x) == len(y)
        for u, v in zip(x, y, strict=True):
            if isinstance(u, np.ndarray):
                np.testing.assert_array_equal(u, v)
            else:
                assert u == v


# --------------------------------------------------------------------- API


@pytest.mark.parametrize("task", TASKS)
def test_every_task_passes_gymnasiums_checker(task):
    env = make(task)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)


@pytest.mark.parametrize("obs_mode", ["texture", "shuffled"])
@pytest.mark.parametrize("task", ["neuro/GridWorld-v0", "neuro/LinearTrack-v0"])
def test_other_observation_modes_pass_the_checker(task, obs_mode):
    env = make(task, obs_mode=obs_mode, texture_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)


def test_reimporting_does_not_register_twice():
    import importlib

    import gymnasium as gym

    import neuro.rl.envs as envs

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(envs)
    assert all(t in gym.registry for t in TASKS)


# ------------------------------------------------------------------- layout


def test_gridworld_layout_is_the_public_codes():
    env = GridWorld()  # the paper's 8 x 8 grid
    assert env.observation_space.shape == (1, 10, 10)
    free = env.free_cells()
    assert len(free) == 64 and free[0] == (1, 1) and free[-1] == (8, 8)
    obs = env.observation_at((3, 5))
    expected = -np.ones((10, 10), np.float32)
    expected[1:-1, 1:-1] = 0.0
    expected[3, 5] = 1.0
    np.testing.assert_array_equal(obs[0], expected)


def test_grid_observation_hides_the_goal():
    # null case: the observation carries no information about the goal
    a, b = GridWorld(goal=(2, 2)), GridWorld(goal=(7, 6))
    for cell in [(1, 1), (4, 5), (8, 8)]:
        np.testing.assert_array_equal(a.observation_at(cell), b.observation_at(cell))


def test_default_goal_and_start_rules():
    goals = {GridWorld(layout_seed=s).goal for s in range(6)}
    assert len(goals) > 1  # the goal is drawn from layout_seed
    assert GridWorld(layout_seed=4).goal == GridWorld(layout_seed=4, obs_mode="texture").goal
    env = GridWorld(size=3, goal=(2, 2))
    starts = set()
    env.reset(seed=0)
    for _ in range(60):
        env.reset()
        starts.add(env.cell)
    assert (2, 2) not in starts and len(starts) == 8  # every free cell but the goal
    fixed = GridWorld(size=3, goal=(2, 2), start=(1, 3))
    assert {fixed.reset(seed=s)[1]["cell"].tolist()[1] for s in range(5)} == {3}


# ------------------------------------------------------------- ground truth


def _dist_after(cell, action, index, dist, goal_index):
    nxt = (cell[0] + MOVES[action][0], cell[1] + MOVES[action][1])
    return dist[index[nxt], goal_index] if nxt in index else -1


def _greedy_path(env, goal_index, dist):
    """Follow the BFS distances down to the goal; return (steps, rewards, flags)."""
    rewards, flags = [], []
    free = env.free_cells()
    index = {c: i for i, c in enumerate(free)}
    while True:
        here = dist[index[env.cell], goal_index]
        a = next(
            a for a in range(4) if _dist_after(env.cell, a, index, dist, goal_index) == here - 1
        )
        _, r, term, trunc, _ = env.step(a)
        rewards.append(r)
        flags.append((term, trunc))
        if term or trunc:
            return rewards, flags


def test_shortest_path_policy_reaches_goal_in_bfs_distance(rng):
    env = GridWorld(size=7, goal=(2, 6))
    dist = env.shortest_path_lengths()
    free = env.free_cells()
    g = free.index((2, 6))
    # ground truth independent of the BFS: in an open grid it is the Manhattan distance
    manhattan = np.abs(np.subtract.outer([c[0] for c in free], [c[0] for c in free]))
    manhattan += np.abs(np.subtract.outer([c[1] for c in free], [c[1] for c in free]))
    np.testing.assert_array_equal(dist, manhattan)
    env.reset(seed=3)
    for _ in range(8):
        start = env.cell
        rewards, flags = _greedy_path(env, g, dist)
        assert len(rewards) == dist[free.index(start), g]
        assert rewards[-1] == 1.0 and sum(rewards) == 1.0
        assert flags[-1] == (True, False) and not any(map(any, flags[:-1]))
        assert env.cell == (2, 6)
        env.reset()


def test_walking_into_a_wall_leaves_the_cell_unchanged():
    env = GridWorld(size=4, goal=(4, 4), start=(1, 1))
    env.reset(seed=0)
    for action in (0, 2):  # up, left: the border
        obs, reward, term, trunc, _ = env.step(action)
        assert env.cell == (1, 1) and reward == 0.0 and not term and not trunc
        np.testing.assert_array_equal(obs, env.observation_at((1, 1)))
    env.step(1)
    assert env.cell == (2, 1)


def test_truncation_at_max_steps():
    env = GridWorld(goal=(8, 8), start=(1, 1))
    env.reset(seed=0)
    for t in range(1, 151):
        _, reward, term, trunc, info = env.step(0)
        assert info["steps"] == t and reward == 0.0 and not term
        assert trunc == (t == 150)
    with pytest.raises(InputError, match=r"call reset\(\) first"):
        env.step(0)


def test_observation_modes_differ_as_documented():
    grid = GridWorld(size=5, layout_seed=2)
    tex = GridWorld(size=5, layout_seed=2, obs_mode="texture", texture_size=12)
    shuf = GridWorld(size=5, layout_seed=2, obs_mode="shuffled")
    free = grid.free_cells()
    patches = np.stack([tex.observation_at(c) for c in free])
    assert patches.shape == (25, 1, 12, 12) and patches.dtype == np.float32
    assert patches.min() == 0.0 and patches.max() == 1.0
    flat = patches.reshape(25, -1)
    gaps = np.abs(flat[:, None] - flat[None]).mean(-1)
    assert gaps[~np.eye(25, dtype=bool)].min() > 0.05  # every cell looks different
    perm = shuf.pixel_permutation
    assert sorted(perm.tolist()) == list(range(49))
    assert not np.array_equal(perm, np.arange(49))
    for cell in free[::4]:
        g, s = grid.observation_at(cell), shuf.observation_at(cell)
        np.testing.assert_array_equal(s.ravel(), g.ravel()[perm])
    # the permutation is fixed by layout_seed for the environment's life
    shuf.reset(seed=0)
    shuf.move_goal(free[3])
    np.testing.assert_array_equal(shuf.pixel_permutation, perm)
    np.testing.assert_array_equal(
        GridWorld(size=5, layout_seed=2, obs_mode="shuffled").pixel_permutation, perm
    )
    assert not np.array_equal(
        GridWorld(size=5, layout_seed=3, obs_mode="shuffled").pixel_permutation, perm
    )
    # textures follow the agent's cell, nothing else
    tex.reset(seed=1)
    obs, *_ = tex.step(1)
    np.testing.assert_array_equal(obs, tex.observation_at(tex.cell))


def test_move_goal_changes_where_reward_comes():
    env = GridWorld(size=4, goal=(1, 3), start=(1, 1))
    env.reset(seed=0)
    env.move_goal((3, 1))
    rewards = [env.step(3)[1:3] for _ in range(2)]  # through the old goal (1, 3)
    assert rewards == [(0.0, False), (0.0, False)] and env.cell == (1, 3)
    env.reset()
    _, reward, term, _, _ = env.step(1)
    _, reward, term, _, _ = env.step(1)
    assert (reward, term, env.cell) == (1.0, True, (3, 1))


def test_transfer_task_moves_the_goal_far_away():
    for seed in range(5):
        src = GridWorld(layout_seed=seed)
        env = make("neuro/GridWorldTransfer-v0", layout_seed=seed).unwrapped
        assert env.source_goal == src.goal and env.goal == transfer_goal(src)
        dr, dc = abs(env.goal[0] - src.goal[0]), abs(env.goal[1] - src.goal[1])
        assert dr > 3 or dc > 3
        np.testing.assert_array_equal(env.observation_at((4, 4)), src.observation_at((4, 4)))
    assert GridWorldTransfer(goal=(1, 1)).source_goal == (1, 1)


def test_linear_track_is_a_one_way_loop():
    env = LinearTrack(goal=(8, 5), start=(1, 1))
    free = env.free_cells()
    assert len(free) == 28 and all(1 in c or 8 in c for c in free)
    dist = env.shortest_path_lengths()
    off = ~np.eye(28, dtype=bool)
    np.testing.assert_array_equal((dist + dist.T)[off], 28)  # one way round
    env.reset(seed=0)
    start_to_goal = dist[free.index((1, 1)), free.index((8, 5))]
    rewards = []
    for _ in range(start_to_goal):
        a = env.forward_action()
        for other in set(range(4)) - {a}:  # every other action is blocked
            before = env.cell
            assert env.step(other)[1] == 0.0 and env.cell == before
        rewards.append(env.step(a)[1])
    assert env.cell == (8, 5) and rewards[-1] == 1.0 and sum(rewards) == 1.0
    lap = [env.step(env.forward_action())[1:3] for _ in range(28)]
    assert lap[-1] == (1.0, False) and sum(r for r, _ in lap) == 1.0  # reward every lap
    env.reset()
    flags = [env.step(0)[2:4] for _ in range(150)]
    assert flags[-1] == (False, True) and not any(map(any, flags[:-1]))


# ----------------------------------------------------------------- T-maze

UP3, LEFT2, RIGHT2 = [3, 3, 3], [0, 0], [1, 1]
BACK_LEFT = [2, 2, 2, 1, 1]  # down the left arm, along the corridor to the reset port
BACK_RIGHT = [2, 2, 2, 0, 0]


def _run(env, actions):
    return [env.step(a) for a in actions]


def test_tmaze_rewards_alternation_not_repetition():
    env = AlternatingTMaze()
    env.reset(seed=0)
    free = env.free_cells()
    assert free == sorted(free) and len(free) == 16  # 2 corridors of 5 + 3 arms of 2
    out = _run(env, UP3 + LEFT2)
    assert [o[1] for o in out] == [0, 0, 0, 0, 5.0] and env.rewarded_port == "reset"
    assert env.step(1)[1] == -1.0 and env.cell == (1, 4)  # no way back along the top
    out = _run(env, BACK_LEFT)
    assert [o[1] for o in out] == [0, 0, 0, 0, 5.0] and env.rewarded_port == "right"
    for a in (0, 1, 2):  # after the reset reward, only up the stem
        assert env.step(a)[1] == -1.0 and env.cell == (3, 1)
    state = env.get_state()
    repeat = [o[1] for o in _run(env, UP3 + LEFT2)]
    assert repeat == [0, 0, 0, 0, 0.0]  # the same arm again: nothing
    env.set_state(state)
    switch = [o[1] for o in _run(env, UP3 + RIGHT2)]
    assert switch == [0, 0, 0, 0, 5.0]
    out = _run(env, BACK_RIGHT + UP3 + LEFT2)
    assert [o[1] for o in out][-1] == 5.0 and out[4][1] == 5.0
    assert not any(o[2] for o in out)


def test_tmaze_trace_shows_the_arm_visited_last():
    env = AlternatingTMaze()
    env.reset(seed=0)
    obs0 = _run(env, UP3)[-1][0]  # first decision: empty history on both sides
    assert obs0[0, 2, 1] == obs0[0, 4, 1] == 0.0
    at_decision = {}
    for side, go, back in (("left", LEFT2, BACK_LEFT), ("right", RIGHT2, BACK_RIGHT)):
        _run(env, go + back)
        at_decision[side] = _run(env, UP3)[-1][0]
    left, right = at_decision["left"], at_decision["right"]
    assert left[0, 2, 1] == pytest.approx(0.9**4) and left[0, 4, 1] == 0.0
    assert right[0, 4, 1] == pytest.approx(0.9**4) and right[0, 2, 1] == 0.0
    np.testing.assert_allclose(left[0, 3, 1:5], [0.9**3, 0.9**2, 0.9, 1.0], rtol=1e-6)
    assert (left[0][env.walls] == -1).all()
    # null case: without the trace the two histories look the same
    plain = AlternatingTMaze(context_len=0)
    plain.reset(seed=0)
    seen = []
    for go, back in ((LEFT2, BACK_LEFT), (RIGHT2, BACK_RIGHT)):
        _run(plain, UP3 + go + back)
        seen.append(_run(plain, UP3)[-1][0])
    np.testing.assert_array_equal(seen[0], seen[1])
    np.testing.assert_array_equal(seen[0], plain.observation_at(plain.decision_cell))


def test_tmaze_walls_cost_and_episode_ends_by_time():
    env = AlternatingTMaze(max_steps=5)
    env.reset(seed=0)
    _run(env, [3])
    flags = []
    for _ in range(4):
        _, r, term, trunc, _ = env.step(0)  # a wall beside the stem
        flags.append((r, term, trunc))
    assert flags == [(-1.0, False, False)] * 3 + [(-1.0, False, True)]
    dist = env.shortest_path_lengths()
    np.testing.assert_array_equal(dist, dist.T)
    free = env.free_cells()
    assert dist[free.index((3, 1)), free.index((1, 4))] == 5


# ----------------------------------------------------- seeding, vector env


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_trajectory(task, rng):
    actions = rng.integers(0, 4, size=400)
    runs = []
    for _ in range(2):
        env = make(task, max_steps=40)
        obs, _ = env.reset(seed=11)
        runs.append([(obs, "first", env.unwrapped.cell), *_rollout(env, actions)])
    _same(*runs)


def test_different_seeds_draw_different_starts():
    env = GridWorld()
    starts = [(env.reset(seed=s), env.cell)[1] for s in range(10)]
    assert len(set(starts)) > 3


def test_vector_env_matches_single_envs(rng):
    kwargs = {"size": 3, "max_steps": 6}
    n = 3
    venv = make_vector("neuro/GridWorld-v0", n, **kwargs)
    singles = [make("neuro/GridWorld-v0", **kwargs) for _ in range(n)]
    vobs, _ = venv.reset(seed=20)
    assert vobs.shape == (n, 1, 5, 5)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(vobs[i], env.reset(seed=20 + i)[0])
    ended = [False] * n
    n_ends = 0
    for _ in range(40):
        actions = rng.integers(0, 4, size=n)
        vobs, vrew, vterm, vtrunc, _ = venv.step(actions)  # one call steps all n
        for i, env in enumerate(singles):
            if ended[i]:  # next-step autoreset: this step resets, the action is ignored
                obs, _ = env.reset()
                rew, term, trunc = 0.0, False, False
            else:
                obs, rew, term, trunc, _ = env.step(int(actions[i]))
            np.testing.assert_array_equal(vobs[i], obs)
            assert (vrew[i], vterm[i], vtrunc[i]) == (rew, term, trunc)
            ended[i] = term or trunc
            n_ends += ended[i]
    assert n_ends >= 5
    venv.close()


def test_vector_env_same_step_mode():
    venv = make_vector(
        "neuro/GridWorld-v0", 2, autoreset_mode="same_step", size=3, goal=(1, 2), start=(1, 1)
    )
    venv.reset(seed=0)
    obs, rew, term, _, info = venv.step(np.array([3, 0]))
    np.testing.assert_array_equal(rew, [1.0, 0.0])
    assert term.tolist() == [True, False] and "final_obs" in info
    np.testing.assert_array_equal(obs[0, 0, 1, 1], 1.0)  # already back at the start
    venv.close()


# ------------------------------------------------------------ exact resume


def _is_plain(value):
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str, np.ndarray))


@pytest.mark.parametrize("task", TASKS)
def test_get_state_set_state_resumes_exactly(task, rng):
    kwargs = {"max_steps": 25}
    env = make(task, **kwargs)
    env.reset(seed=3)
    _rollout(env, rng.integers(0, 4, size=57))  # mid-episode, after a few resets
    if hasattr(env.unwrapped, "move_goal"):
        env.unwrapped.move_goal(env.unwrapped.free_cells()[5])
    state = env.unwrapped.get_state()
    assert _is_plain(state)
    actions = rng.integers(0, 4, size=300)
    expected = _rollout(env, actions)
    fresh = make(task, **kwargs)
    fresh.reset(seed=999)  # whatever it did before is overwritten
    fresh.unwrapped.set_state(state)
    _same(_rollout(fresh, actions), expected)
    assert any(len(x) == 3 for x in expected)  # later resets were compared too


def test_state_before_first_reset_and_between_texture_envs():
    env = GridWorld(size=4, obs_mode="texture", texture_size=8)
    state = env.get_state()
    assert state["cell"] is None and state["np_random"] is None
    other = GridWorld(size=4, obs_mode="texture", texture_size=8)
    other.set_state(state)
    with pytest.raises(InputError, match="call reset"):
        other.step(0)


# --------------------------------------------------------------- bad input


def _one_line(excinfo):
    assert "\n" not in str(excinfo.value)
    return str(excinfo.value)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: make("neuro/Gridworld-v0"), InputKeyError, "Did you mean 'neuro/GridWorld-v0'"),
        (lambda: make("TMaze"), InputKeyError, "known: neuro/GridWorld-v0, "),
        (lambda: make(3), InputTypeError, "name must be a task id"),
        (lambda: make("neuro/GridWorld-v0", sise=8), InputError, "no parameter(s) 'sise'"),
        (
            lambda: make("neuro/GridWorld-v0", size="8"),
            InputTypeError,
            "size must be an integer; got '8' (str).",
        ),
        (lambda: GridWorld(size=1), InputError, "size must be an integer >= 2; got 1."),
        (lambda: GridWorld(goal=(0, 3)), InputError, "goal must be a free cell, not a wall"),
        (lambda: GridWorld(goal=(12, 3)), InputError, "goal must lie inside the 10x10 array"),
        (lambda: GridWorld(goal="a1"), InputTypeError, "goal must be a (row, col) pair"),
        (lambda: GridWorld(start=(2, 2), goal=(2, 2)), InputError, "start must differ from"),
        (lambda: GridWorld(start=(9, 2)), InputError, "start must be a free cell"),
        (
            lambda: GridWorld(obs_mode="rgb"),
            InputError,
            "obs_mode must be one of 'grid', 'texture', 'shuffled'; got 'rgb'.",
        ),
        (lambda: GridWorld(max_steps=0), InputError, "max_steps must be an integer >= 1"),
        (lambda: LinearTrack(size=2), InputError, "size must be an integer >= 3"),
        (lambda: LinearTrack(goal=(4, 4)), InputError, "goal must be a free cell, not a wall"),
        (lambda: AlternatingTMaze(width=6), InputError, "width must be odd"),
        (lambda: AlternatingTMaze(height=3), InputError, "height must be an integer >= 4"),
        (lambda: AlternatingTMaze(context_gamma=0.0), InputError, "context_gamma must be > 0"),
        (
            lambda: make_vector("neuro/GridWorld-v0", 0),
            InputError,
            "num_envs must be an integer >= 1",
        ),
        (
            lambda: make_vector("neuro/GridWorld-v0", 2, autoreset_mode="auto"),
            InputError,
            "autoreset_mode must be one of 'next_step', 'same_step', 'disabled'",
        ),
        (
            lambda: make_vector("neuro/GridWorld-v0", 2, obs_mode="x"),
            InputError,
            "obs_mode must be one of",
        ),
        (lambda: GridWorld().observation_at((0, 0)), InputError, "cell must be a free cell"),
        (lambda: GridWorld().move_goal((9, 9)), InputError, "goal must be a free cell"),
        (
            lambda: GridWorld(start=(1, 1), goal=(2, 2)).move_goal((1, 1)),
            InputError,
            "goal must differ from the fixed start cell",
        ),
        (lambda: GridWorld().step(0), InputError, "call reset() first"),
        (
            lambda: transfer_goal(GridWorld(size=2)),
            InputError,
            "use size >= 5 for the transfer task",
        ),
    ],
)
def test_bad_inputs_raise_one_line(call, error, message):
    with pytest.raises(error) as excinfo:
        call()
    assert message in _one_line(excinfo)


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (
            4,
            InputError,
            "action must be an integer in 0..3 (0 up, 1 down, 2 left, 3 right); got 4.",
        ),
        (-1, InputError, "got -1."),
        (1.5, InputTypeError, "got 1.5 (float)."),
        ("up", InputTypeError, "got 'up' (str)."),
        (True, InputTypeError, "got True (bool)."),
    ],
)
@pytest.mark.parametrize("cls", [GridWorld, LinearTrack, AlternatingTMaze])
def test_actions_outside_the_space_are_refused(cls, action, error, message):
    env = cls()
    env.reset(seed=0)
    with pytest.raises(error) as excinfo:
        env.step(action)
    assert message in _one_line(excinfo)
    env.step(np.int64(1))  # numpy integers are fine


def test_set_state_refuses_foreign_states():
    state = GridWorld(size=5).get_state()
    with pytest.raises(InputError) as excinfo:
        LinearTrack(size=5).set_state(state)
    assert "state comes from a GridWorld, not a LinearTrack" in _one_line(excinfo)
    with pytest.raises(InputError) as excinfo:
        GridWorld(size=6).set_state(state)
    assert "size differ" in _one_line(excinfo)
    with pytest.raises(InputTypeError) as excinfo:
        GridWorld().set_state([1, 2])
    assert "state must be a dict returned by get_state()" in _one_line(excinfo)
