"""The experiment engine of Fang & Stachenfeld (ICLR 2024): agents, transfer, verdicts.

:func:`train_agents` fits one :class:`~neuro.rl.agent.PredictiveAgent` per
configuration (objective, horizon ``gamma_p``, encoder size, ...) and seed,
and analyses each module's representation (:func:`analyse_agent`);
:func:`transfer_agents` moves the goal and trains each agent on, with and
without its encoder frozen. Both feed an :class:`RLComparison`, which holds
the learning curves (seeds x episodes), their confidence bands, the
per-module reports, the transfer curves, and :meth:`RLComparison.verdicts`:
the paper's four claims, each ``"holds"``, ``"does not hold"`` or
``"not run"`` (the runs it needs were not made), with the numbers behind it.

The command ``neuro rl`` and ``scripts/rl_predictive.py`` both call these, so
the model lives in one place.

Seeds and goals: for the grid tasks the seed is also the grid's
``layout_seed``, so each seed has its own goal, as in the public code, which
draws the goal once per run (give ``goal`` in ``env_kwargs`` to fix it).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from neuro._validation import check_bool, check_choice, check_float, check_int
from neuro.errors import InputError, InputTypeError
from neuro.results import Result
from neuro.train.progress import get_logger

__all__ = [
    "CLAIMS",
    "CONFIG_KEYS",
    "GRID_TASKS",
    "RLComparison",
    "analyse_agent",
    "config_name",
    "make_configs",
    "seed_env_kwargs",
    "train_agents",
    "transfer_agents",
]

log = get_logger(__name__)

#: Tasks whose ``layout_seed`` follows the run's seed, and which offer goal transfer.
GRID_TASKS = ("neuro/GridWorld-v0", "neuro/GridWorldTransfer-v0")
#: PredictiveAgent parameters a configuration may set (the rest is shared by the experiment).
CONFIG_KEYS = (
    "objective",
    "gamma_p",
    "weights",
    "encoder_size",
    "latent_dim",
    "discount",
    "lr",
    "batch_size",
    "replay_capacity",
    "target_update",
    "epsilon",
    "temperature",
    "code_gaps",
    "eval_max_steps",
)
#: The claims :meth:`RLComparison.verdicts` checks: key -> (claim number, statement).
CLAIMS = {
    "speed": (1, "the predictive objective needs fewer steps to goal than model-free"),
    "stability": (1, "the predictive objective's last episodes vary less over seeds"),
    "geometry": (2, "a larger gamma_p aligns encoder distances with shortest paths"),
    "transfer": (3, "a longer horizon transfers faster after the goal moves"),
    "transfer_frozen": (3, "a longer horizon transfers faster with a frozen encoder"),
    "transition_tuning": (4, "transition-model units gain spatially structured tuning"),
}
_MODES = ("unfrozen", "frozen")
_SIGNIFICANCE = 0.05


# ----------------------------------------------------------------------------- configurations
def config_name(config: Mapping[str, Any], with_size: bool = False) -> str:
    """A short name for a configuration, safe in file names.

    Parameters
    ----------
    config : dict
        With ``objective`` and, for ``"predictive"``, ``gamma_p``.
    with_size : bool, default=False
        Prefix the encoder size (when several sizes are compared).

    Returns
    -------
    str

    Examples
    --------
    >>> config_name({"objective": "predictive", "gamma_p": 0.8})
    'predictive_gp0.8'
    >>> config_name({"objective": "model-free", "encoder_size": "large"}, with_size=True)
    'large_model-free'
    """
    name = str(config.get("objective", "predictive"))
    if name == "predictive":
        name = f"predictive_gp{float(config.get('gamma_p', 0.0)):g}"
    if with_size:
        name = f"{config.get('encoder_size', 'small')}_{name}"
    return name


def make_configs(
    objectives: Sequence[str] = ("model-free", "predictive"),
    gamma_ps: Sequence[float] = (0.0,),
    encoder_sizes: Sequence[str] = ("small",),
    **shared: Any,
) -> dict[str, dict[str, Any]]:
    """Configurations for every objective (and ``gamma_p`` for ``"predictive"``) and encoder size.

    Parameters
    ----------
    objectives : sequence of {"model-free", "entropy", "predictive"}
    gamma_ps : sequence of float in [0, 1)
        Horizons of the predictive objective (one configuration each).
    encoder_sizes : sequence of {"small", "default", "large"}
    **shared
        Other :data:`CONFIG_KEYS` given to every configuration (``latent_dim``, ``lr``, ...).

    Returns
    -------
    dict of str -> dict
        Name (:func:`config_name`; prefixed by the size when there are several) ->
        PredictiveAgent parameters.

    Examples
    --------
    >>> list(make_configs(["model-free", "predictive"], [0.0, 0.8]))
    ['model-free', 'predictive_gp0', 'predictive_gp0.8']
    """
    from neuro.rl.agent import OBJECTIVES
    from neuro.rl.networks import ENCODER_SIZES

    objectives = [check_choice("objectives", o, OBJECTIVES) for o in objectives]
    gamma_ps = [
        check_float("gamma_p", g, minimum=0.0, maximum=1.0, strict_maximum=True) for g in gamma_ps
    ]
    sizes = [check_choice("encoder_sizes", s, tuple(ENCODER_SIZES)) for s in encoder_sizes]
    for name, values in (("objectives", objectives), ("gamma_ps", gamma_ps), ("sizes", sizes)):
        if not values or len(set(values)) != len(values):
            raise InputError(f"{name} must name each value once, at least one; got {values}.")
    unknown = sorted(set(shared) - set(CONFIG_KEYS))
    if unknown:
        raise InputError(
            f"make_configs got unknown setting(s) {unknown}; choose among {', '.join(CONFIG_KEYS)}."
        )
    configs = {}
    for size in sizes:
        for objective in objectives:
            for g in gamma_ps if objective == "predictive" else (0.0,):
                config = {**shared, "objective": objective, "gamma_p": g, "encoder_size": size}
                configs[config_name(config, with_size=len(sizes) > 1)] = config
    return configs


def _check_configs(configs: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(configs, Mapping) or not configs:
        raise InputTypeError(
            "configs must be a non-empty dict of name -> PredictiveAgent settings, e.g. "
            f"make_configs(...); got {type(configs).__name__}."
        )
    out = {}
    for name, config in configs.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise InputError(f"configs keys must be non-empty names without '/'; got {name!r}.")
        if not isinstance(config, Mapping):
            raise InputTypeError(
                f"configs[{name!r}] must be a dict of PredictiveAgent settings; got "
                f"{type(config).__name__}."
            )
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise InputError(
                f"configs[{name!r}] has unknown setting(s) {unknown}; a configuration sets "
                f"{', '.join(CONFIG_KEYS)} (the environment, episodes and seeds are shared)."
            )
        out[name] = {"objective": "predictive", "gamma_p": 0.0, "encoder_size": "small", **config}
    return out


def _check_seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not isinstance(seeds, Sequence) or isinstance(seeds, str) or not seeds:
        raise InputTypeError(f"seeds must be a non-empty list of integers; got {seeds!r}.")
    seeds = [check_int("seeds", s, minimum=0) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise InputError(f"seeds must be distinct; got {seeds}.")
    return seeds


def seed_env_kwargs(env: str, env_kwargs: Mapping[str, Any] | None, seed: int) -> dict[str, Any]:
    """The environment's settings for one seed: the grid's ``layout_seed`` is the seed.

    Parameters
    ----------
    env : str
    env_kwargs : dict or None
    seed : int

    Returns
    -------
    dict
        ``env_kwargs`` with ``layout_seed=seed`` for :data:`GRID_TASKS` (so the
        goal is drawn per seed), unless ``env_kwargs`` sets ``layout_seed``
        itself; unchanged for the other tasks.

    Examples
    --------
    >>> seed_env_kwargs("neuro/GridWorld-v0", {"size": 5}, 3)
    {'size': 5, 'layout_seed': 3}
    """
    kwargs = dict(env_kwargs or {})
    if env in GRID_TASKS and "layout_seed" not in kwargs:
        kwargs["layout_seed"] = int(seed)
    return kwargs


# ----------------------------------------------------------------------------- analysis of a run
def _path_lengths(base) -> np.ndarray | None:
    """Symmetric shortest-path steps (the shorter direction), or None if cells are disconnected."""
    paths = np.asarray(base.shortest_path_lengths(), dtype=np.float64)
    paths[paths < 0] = np.inf
    paths = np.minimum(paths, paths.T)  # one-way tracks: the shorter way round
    return paths if np.isfinite(paths).all() else None


def _mean_score(maps: np.ndarray) -> float:
    from neuro.rl.analysis import place_field_score

    scores = place_field_score(maps)
    return float(np.nanmean(scores)) if np.isfinite(scores).any() else float("nan")


def analyse_agent(
    agent, env=None, env_kwargs=None, n_permutations: int = 200, n_shuffles: int = 20
) -> dict[str, Any]:
    """Each module's representation of a fitted agent, and the nulls of its transition units.

    Parameters
    ----------
    agent : PredictiveAgent
        Fitted.
    env : str, optional
        Task id (default: the agent's ``env``), made with ``env_kwargs``
        (default: the agent's).
    env_kwargs : dict, optional
    n_permutations : int, default=200
        Permutations of the distance correlation's p-value (0 skips them).
    n_shuffles : int, default=20
        Cell shuffles of the transition units' activity, for the shuffled null.

    Returns
    -------
    dict
        ``cells`` (n_cells, 2) int array; ``shape`` the grid's (H, W);
        ``path_lengths`` (n_cells, n_cells) steps or None; ``activity``: dict
        of module -> (n_cells, units) (:meth:`PredictiveAgent.module_activity`);
        ``report``: :func:`~neuro.rl.analysis.module_report`'s table;
        ``tuning``: mean place-field score (spatial coherence) of the
        transition units, ``trained``, ``untrained`` (the same network at its
        initial weights, before any update) and ``shuffled`` (activity
        shuffled across cells).

    Examples
    --------
    >>> from neuro.rl import PredictiveAgent
    >>> agent = PredictiveAgent(env_kwargs={"size": 4}, episodes=1, batch_size=8,
    ...                         device="cpu").fit()
    >>> out = analyse_agent(agent, n_permutations=0)
    >>> out["report"]["module"].tolist()
    ['encoder', 'transition', 'q']
    """
    import torch

    from neuro.rl.agent import _Networks
    from neuro.rl.analysis import module_report, tuning_maps
    from neuro.rl.envs import make

    agent._check_fitted()
    n_permutations = check_int("n_permutations", n_permutations, minimum=0)
    n_shuffles = check_int("n_shuffles", n_shuffles, minimum=1)
    env = agent.env if env is None else env
    env_kwargs = agent.env_kwargs if env_kwargs is None else env_kwargs
    made = make(env, **(env_kwargs or {}))
    base = made.unwrapped
    cells, activity = agent.module_activity(made)
    cells = np.asarray(cells, dtype=np.int64)
    shape = tuple(int(s) for s in base.walls.shape)
    paths = _path_lengths(base)
    modules = {k: activity[k] for k in ("encoder", "transition", "q")}
    report = module_report(
        modules,
        cells,
        shape,
        path_lengths=paths,
        n_permutations=n_permutations,
        random_state=int(agent.random_state),
    )
    # the same network at its initial weights: fit seeds torch with random_state, then builds it
    untrained = copy.copy(agent)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(agent.random_state))
        untrained.networks_ = _Networks(
            tuple(agent.obs_shape_), agent.n_actions_, int(agent.latent_dim), agent.encoder_size
        )
    _, before = untrained.module_activity(made)
    made.close()
    rng = np.random.default_rng(int(agent.random_state))
    trans = activity["transition"]
    shuffled = [
        _mean_score(tuning_maps(trans[rng.permutation(len(cells))], cells, shape))
        for _ in range(n_shuffles)
    ]
    tuning = {
        "trained": _mean_score(tuning_maps(trans, cells, shape)),
        "untrained": _mean_score(tuning_maps(before["transition"], cells, shape)),
        "shuffled": float(np.nanmean(shuffled)) if np.isfinite(shuffled).any() else np.nan,
    }
    return {
        "cells": cells,
        "shape": shape,
        "path_lengths": paths,
        "activity": activity,
        "report": report,
        "tuning": tuning,
    }


# ----------------------------------------------------------------------------- training
def train_agents(
    configs: Mapping[str, Mapping[str, Any]],
    seeds: Sequence[int] = (0, 1),
    env: str = "neuro/GridWorld-v0",
    env_kwargs: Mapping[str, Any] | None = None,
    episodes: int = 100,
    device: str = "cpu",
    verbose: int = 0,
    analyse: bool = True,
    checkpoint_root=None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    n_permutations: int = 200,
    keep_agents: bool = True,
) -> RLComparison:
    """Fit one :class:`~neuro.rl.agent.PredictiveAgent` per configuration and seed.

    Parameters
    ----------
    configs : dict of str -> dict
        Name -> agent settings (:data:`CONFIG_KEYS`), e.g. from :func:`make_configs`.
    seeds : sequence of int, default=(0, 1)
        Each seed is the agent's ``random_state`` and, for the grid tasks, the
        grid's ``layout_seed``, so the goal differs by seed as in the public
        code, which draws it once per run (:func:`seed_env_kwargs`).
    env : str, default="neuro/GridWorld-v0"
        A task of :mod:`neuro.rl.envs`.
    env_kwargs : dict, optional
        The task's settings (``size``, ``obs_mode``, ...).
    episodes : int, default=100
        Training episodes per run (the paper: 350 on the 8 x 8 grid).
    device : str, default="cpu"
    verbose : int, default=0
        1: one log line per run (``logging``, logger ``neuro.rl.experiment``);
        2: also the agents' per-episode lines.
    analyse : bool, default=True
        Run :func:`analyse_agent` on each agent (module reports, tuning nulls).
    checkpoint_root : str or path, optional
        Each run checkpoints into ``checkpoint_root/<config>_seed<k>``.
    checkpoint_every : int, optional
        Episodes between checkpoints (the agent's default: 10).
    resume : bool, default=False
        Continue each run from its checkpoint where there is one (runs that
        had finished come back as they were; a run resumed with more
        ``episodes`` trains the rest), start the others.
    n_permutations : int, default=200
        Of the distance correlations' p-values.
    keep_agents : bool, default=True
        Keep the fitted agents in the result (saved under ``models/``).

    Returns
    -------
    RLComparison

    Examples
    --------
    >>> comp = train_agents(make_configs(["model-free", "predictive"]), seeds=[0, 1],
    ...                     env_kwargs={"size": 4}, episodes=2, analyse=False)
    >>> comp.curves["model-free"].shape
    (2, 2)
    """
    from neuro.rl.agent import PredictiveAgent

    configs = _check_configs(configs)
    seeds = _check_seeds(seeds)
    episodes = check_int("episodes", episodes, minimum=1)
    verbose = check_int("verbose", verbose, minimum=0)
    analyse = check_bool("analyse", analyse)
    resume = check_bool("resume", resume)
    if resume and checkpoint_root is None:
        raise InputError("resume=True needs checkpoint_root, the folder of the runs' checkpoints.")
    curves, seconds, losses, analyses, agents = {}, {}, {}, {}, {}
    for name, config in configs.items():
        curves[name], seconds[name], losses[name], analyses[name] = [], [], [], []
        for seed in seeds:
            kwargs = seed_env_kwargs(env, env_kwargs, seed)
            ckpt = None if checkpoint_root is None else Path(checkpoint_root) / f"{name}_seed{seed}"
            agent = PredictiveAgent(
                env=env,
                env_kwargs=kwargs,
                episodes=episodes,
                **config,
                checkpoint_dir=ckpt,
                checkpoint_every_n_episodes=checkpoint_every if ckpt is not None else None,
                device=device,
                random_state=seed,
                verbose=max(verbose - 1, 0),
            )
            again = resume and (ckpt / "checkpoints" / "last.pt").is_file()
            started = time.perf_counter()
            agent.fit(resume=again)
            wall = time.perf_counter() - started
            curves[name].append(agent.eval_steps_.astype(np.float64))
            seconds[name].append(float(agent.fit_seconds_))
            losses[name].append(agent.losses_)
            if analyse:
                analyses[name].append(analyse_agent(agent, n_permutations=n_permutations))
            if keep_agents:
                agents[(name, seed)] = agent
            if verbose:
                last = agent.eval_steps_[-max(1, episodes // 10) :].mean()
                log.info(
                    "%s seed %d: %d episodes, greedy steps to goal over the last tenth %.1f "
                    "(%.1f s)",
                    name,
                    seed,
                    episodes,
                    last,
                    wall,
                )
    return RLComparison(
        curves={k: np.stack(v) for k, v in curves.items()},
        configs=configs,
        seeds=seeds,
        seconds=seconds,
        losses={k: np.stack(v) for k, v in losses.items()},
        analyses=analyses if analyse else None,
        agents=agents,
        settings={
            "env": env,
            "env_kwargs": dict(env_kwargs or {}),
            "episodes": episodes,
            "device": str(device),
            "layout_seed": "the run's seed" if env in GRID_TASKS else "env_kwargs",
        },
    )


def transfer_agents(
    comparison: RLComparison,
    episodes: int | None = None,
    modes: Sequence[str] = _MODES,
    verbose: int = 0,
) -> RLComparison:
    """Move each trained agent's goal and train on: the transfer curves, added to ``comparison``.

    For every kept agent, the goal moves to :func:`neuro.rl.envs.transfer_goal`
    of its grid (far along a row or column, as the public code), and
    :meth:`PredictiveAgent.transfer` trains a fresh agent from its encoder,
    with the encoder trained on (``"unfrozen"``) and frozen (``"frozen"``).

    Parameters
    ----------
    comparison : RLComparison
        From :func:`train_agents` on a grid task, with its agents kept.
    episodes : int, optional
        Transfer episodes (default: the training episodes).
    modes : sequence of {"unfrozen", "frozen"}, default=both
    verbose : int, default=0

    Returns
    -------
    RLComparison
        The same object, with ``transfer[config][mode]`` of shape (n_seeds, episodes).
    """
    from neuro.rl.envs import make, transfer_goal

    if not isinstance(comparison, RLComparison) or not comparison.agents:
        raise InputError(
            "transfer_agents needs the RLComparison of train_agents(..., keep_agents=True), "
            "which holds the fitted agents."
        )
    env = comparison.settings.get("env")
    if env not in GRID_TASKS:
        raise InputError(
            f"goal transfer needs a grid task ({', '.join(GRID_TASKS)}); this comparison ran {env}."
        )
    episodes = check_int(
        "episodes", episodes if episodes is not None else comparison.settings["episodes"], minimum=1
    )
    modes = [check_choice("modes", m, _MODES) for m in modes]
    transfer = {}
    for name in comparison.curves:
        transfer[name] = {m: [] for m in modes}
        for seed in comparison.seeds:
            agent = comparison.agents[(name, seed)]
            kwargs = dict(agent.env_kwargs or {})
            made = make(agent.env, **kwargs)
            kwargs["goal"] = tuple(int(v) for v in transfer_goal(made.unwrapped))
            made.close()
            for mode in modes:
                new = agent.transfer(
                    env_kwargs=kwargs, episodes=episodes, freeze_encoder=mode == "frozen"
                )
                transfer[name][mode].append(new.eval_steps_.astype(np.float64))
                if verbose:
                    log.info(
                        "%s seed %d transfer (%s) to goal %s: mean steps %.1f",
                        name,
                        seed,
                        mode,
                        kwargs["goal"],
                        new.eval_steps_.mean(),
                    )
    comparison.transfer = {n: {m: np.stack(v) for m, v in d.items()} for n, d in transfer.items()}
    comparison.settings["transfer_episodes"] = episodes
    return comparison


# ----------------------------------------------------------------------------- statistics
def _paired(x: np.ndarray, y: np.ndarray, confidence: float = 0.95) -> dict[str, Any] | None:
    """Mean of x - y over seeds with a Student-t interval; None with fewer than 2 pairs."""
    d = np.asarray(x, float) - np.asarray(y, float)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return None
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0:
        return {"difference": mean, "lower": mean, "upper": mean, "p_value": float(mean == 0)}
    half = float(stats.t.ppf(0.5 + confidence / 2, d.size - 1) * sd / np.sqrt(d.size))
    p = float(2 * stats.t.sf(abs(mean) / (sd / np.sqrt(d.size)), d.size - 1))
    return {"difference": mean, "lower": mean - half, "upper": mean + half, "p_value": p}


def _verdict(key: str, verdict: str, numbers: dict | None = None, note: str = "") -> dict:
    claim, statement = CLAIMS[key]
    return {
        "claim": claim,
        "key": key,
        "statement": statement,
        "verdict": verdict,
        "numbers": numbers or {},
        "note": note,
    }


# ----------------------------------------------------------------------------- the result
class RLComparison(Result):
    """Agents of several objectives over seeds: learning curves, representations, verdicts.

    Parameters
    ----------
    curves : dict of str -> array of shape (n_seeds, n_episodes)
        Greedy steps to goal after each training episode, per configuration.
    configs : dict of str -> dict, optional
        Each configuration's settings (``objective``, ``gamma_p``,
        ``encoder_size``, ...); default: read from the names (``"model-free"``,
        ``"entropy"``, ``"predictive_gp0.8"``).
    seeds : list of int, optional
    seconds : dict of str -> list of float, optional
        Fit time of each run.
    losses : dict of str -> array (n_seeds, n_episodes, 5), optional
    analyses : dict of str -> list of dict, optional
        :func:`analyse_agent` per seed.
    transfer : dict of str -> dict of mode -> array (n_seeds, n_episodes), optional
        Transfer curves, modes ``"unfrozen"`` and ``"frozen"``.
    agents : dict of (str, int) -> PredictiveAgent, optional
    settings : dict, optional

    Attributes
    ----------
    bands : dict of str -> LearningCurves
        Mean and 95% band over seeds (configurations with 2 seeds or more).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> comp = RLComparison({"model-free": 100 + rng.normal(0, 5, (4, 30)),
    ...                      "predictive_gp0": 40 + rng.normal(0, 5, (4, 30))})
    >>> {v["key"]: v["verdict"] for v in comp.verdicts()}["speed"]
    'holds'
    >>> {v["key"]: v["verdict"] for v in comp.verdicts()}["transfer"]
    'not run'
    """

    def __init__(
        self,
        curves: Mapping[str, Any],
        configs: Mapping[str, Mapping[str, Any]] | None = None,
        seeds: Sequence[int] | None = None,
        seconds: Mapping[str, Sequence[float]] | None = None,
        losses: Mapping[str, Any] | None = None,
        analyses: Mapping[str, Sequence[dict]] | None = None,
        transfer: Mapping[str, Mapping[str, Any]] | None = None,
        agents: Mapping[tuple[str, int], Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        from neuro.rl.analysis import learning_curves

        if not isinstance(curves, Mapping) or not curves:
            raise InputTypeError(
                "curves must be a non-empty dict of configuration -> steps (n_seeds, n_episodes); "
                f"got {type(curves).__name__}."
            )
        self.curves = {}
        for name, c in curves.items():
            arr = np.asarray(c, dtype=np.float64)
            if arr.ndim != 2:
                raise InputError(
                    f"curves[{name!r}] must be (n_seeds, n_episodes); got shape {arr.shape}."
                )
            self.curves[name] = arr
        self.configs = {n: dict((configs or {}).get(n) or _parse_name(n)) for n in self.curves}
        n_seeds = next(iter(self.curves.values())).shape[0]
        self.seeds = list(seeds) if seeds is not None else list(range(n_seeds))
        self.seconds = {n: list((seconds or {}).get(n, [])) for n in self.curves}
        self.losses = dict(losses or {})
        self.analyses = dict(analyses) if analyses else {}
        self.transfer = {n: dict(d) for n, d in (transfer or {}).items()}
        self.agents = dict(agents or {})
        self.settings = dict(settings or {})
        self.window = max(1, self.n_episodes // 20)
        self.bands = {
            n: learning_curves(c, window=self.window)
            for n, c in self.curves.items()
            if c.shape[0] >= 2
        }

    @property
    def n_episodes(self) -> int:
        """Training episodes per run."""
        return int(next(iter(self.curves.values())).shape[1])

    # ------------------------------------------------------------- groups
    def _group(self) -> tuple[str | None, list[str], list[str]]:
        """Encoder size compared (small if run), its model-free and predictive configurations."""
        sizes = [c.get("encoder_size", "small") for c in self.configs.values()]
        order = ("small", "default", "large")
        size = min(sizes, key=lambda s: order.index(s) if s in order else len(order))
        names = [n for n, c in self.configs.items() if c.get("encoder_size", "small") == size]
        free = [n for n in names if self.configs[n].get("objective") == "model-free"]
        pred = [n for n in names if self.configs[n].get("objective") == "predictive"]
        pred.sort(key=lambda n: float(self.configs[n].get("gamma_p", 0.0)))
        return (free[0] if free else None), pred, names

    def _horizon_pair(self, pred: list[str]) -> tuple[str, str] | None:
        zero = [n for n in pred if float(self.configs[n].get("gamma_p", 0.0)) == 0.0]
        if not zero or float(self.configs[pred[-1]].get("gamma_p", 0.0)) <= 0.0:
            return None
        return pred[-1], zero[0]

    # ------------------------------------------------------------- verdicts
    def verdicts(self) -> list[dict[str, Any]]:
        """The paper's claims, each ``"holds"``, ``"does not hold"`` or ``"not run"``.

        Claims are checked on the smallest encoder size run (the paper's
        resource-limited case); intervals are 95% over seeds.

        * ``speed`` (1): :func:`~neuro.rl.analysis.compare_curves` of each
          predictive configuration against model-free (mean steps per
          episode); holds when one interval lies below 0, at a confidence
          corrected for the number of predictive configurations (Bonferroni).
        * ``stability`` (1): the spread over seeds of the mean steps over the
          last tenth of the episodes; holds when a predictive configuration's
          variance is smaller than model-free's (one-sided F test, corrected).
        * ``geometry`` (2): Spearman correlation of encoder distances with
          shortest-path distances, at the largest ``gamma_p`` minus at
          ``gamma_p = 0``, paired by seed; holds when the interval is above 0.
        * ``transfer`` / ``transfer_frozen`` (3): transfer curves at the
          largest ``gamma_p`` against ``gamma_p = 0``; holds when the interval
          of the difference in mean steps is below 0.
        * ``transition_tuning`` (4): mean place-field score (spatial
          coherence) of the transition units of the largest-``gamma_p``
          agent, minus the same network before training, paired by seed;
          holds when the interval is above 0 (the cell-shuffled score is
          reported beside it).

        Returns
        -------
        list of dict
            ``claim`` (1-4), ``key``, ``statement``, ``verdict``, ``numbers``, ``note``.
        """
        free, pred, _ = self._group()
        pair = self._horizon_pair(pred) if pred else None
        return [
            self._speed(free, pred),
            self._stability(free, pred),
            self._geometry(pair),
            *(self._transfer(pair, mode) for mode in _MODES),
            self._tuning(pred[-1] if pred else None),
        ]

    def _speed(self, free, pred) -> dict:
        from neuro.rl.analysis import compare_curves

        if free is None or not pred:
            return _verdict("speed", "not run", note="needs model-free and predictive runs")
        if self.curves[free].shape[0] < 2:
            return _verdict("speed", "not run", note="needs 2 seeds or more")
        confidence = 1 - _SIGNIFICANCE / len(pred)
        numbers, holds = {}, False
        for name in pred:
            res = compare_curves(
                self.curves[name], self.curves[free], confidence=confidence, names=(name, free)
            )
            holds |= res.holds
            numbers[name] = {
                "mean_steps": float(res.auc_a.mean()),
                "model_free_mean_steps": float(res.auc_b.mean()),
                "difference": res.difference,
                "lower": res.lower,
                "upper": res.upper,
                "p_value": res.p_value,
            }
        note = f"mean steps per episode, predictive - model-free; {100 * confidence:.1f}% interval"
        return _verdict("speed", "holds" if holds else "does not hold", numbers, note)

    def _last(self, name: str) -> np.ndarray:
        k = max(1, self.n_episodes // 10)
        return np.nanmean(self.curves[name][:, -k:], axis=1)

    def _stability(self, free, pred) -> dict:
        if free is None or not pred:
            return _verdict("stability", "not run", note="needs model-free and predictive runs")
        if self.curves[free].shape[0] < 2:
            return _verdict("stability", "not run", note="needs 2 seeds or more")
        mf = self._last(free)
        numbers, holds = {"model_free_sd": float(mf.std(ddof=1))}, False
        for name in pred:
            p = self._last(name)
            vp, vm = p.var(ddof=1), mf.var(ddof=1)
            p_value = 1.0 if vm == 0 else float(stats.f.cdf(vp / vm, len(p) - 1, len(mf) - 1))
            holds |= p_value < _SIGNIFICANCE / len(pred)
            numbers[name] = {"sd": float(np.sqrt(vp)), "p_value": p_value}
        note = (
            f"sd over seeds of the mean steps over the last {max(1, self.n_episodes // 10)} "
            "episodes; one-sided F test, Bonferroni-corrected"
        )
        return _verdict("stability", "holds" if holds else "does not hold", numbers, note)

    def _per_seed(self, name: str, module: str, column: str) -> np.ndarray:
        rows = []
        for a in self.analyses.get(name, []):
            r = a["report"]
            rows.append(float(r.loc[r["module"] == module, column].iloc[0]))
        return np.asarray(rows, dtype=float)

    def _geometry(self, pair) -> dict:
        if pair is None:
            return _verdict(
                "geometry", "not run", note="needs predictive runs at gamma_p = 0 and above"
            )
        big, zero = pair
        if not self.analyses.get(big) or not self.analyses.get(zero):
            return _verdict("geometry", "not run", note="needs the module analyses")
        rb = self._per_seed(big, "encoder", "distance_correlation")
        rz = self._per_seed(zero, "encoder", "distance_correlation")
        res = _paired(rb, rz)
        if res is None:
            return _verdict("geometry", "not run", note="needs 2 seeds or more")
        by_gamma = {
            n: float(np.nanmean(self._per_seed(n, "encoder", "distance_correlation")))
            for n in self.analyses
            if self.configs[n].get("objective") == "predictive"
        }
        numbers = {**res, "r_large": float(np.nanmean(rb)), "r_zero": float(np.nanmean(rz))}
        numbers["r_by_config"] = by_gamma
        note = f"Spearman r (encoder distance vs shortest path), {big} - {zero}, paired by seed"
        return _verdict("geometry", "holds" if res["lower"] > 0 else "does not hold", numbers, note)

    def _transfer(self, pair, mode: str) -> dict:
        from neuro.rl.analysis import compare_curves

        key = "transfer" if mode == "unfrozen" else "transfer_frozen"
        if pair is None:
            return _verdict(key, "not run", note="needs predictive runs at gamma_p = 0 and above")
        big, zero = pair
        a = self.transfer.get(big, {}).get(mode)
        b = self.transfer.get(zero, {}).get(mode)
        if a is None or b is None:
            return _verdict(key, "not run", note=f"no {mode} transfer runs")
        if min(len(a), len(b)) < 2:
            return _verdict(key, "not run", note="needs 2 seeds or more")
        res = compare_curves(a, b, names=(big, zero))
        numbers = {
            "mean_steps_large": float(res.auc_a.mean()),
            "mean_steps_zero": float(res.auc_b.mean()),
            "difference": res.difference,
            "lower": res.lower,
            "upper": res.upper,
            "p_value": res.p_value,
        }
        return _verdict(key, res.verdict, numbers, f"mean transfer steps, {big} - {zero}")

    def _tuning(self, name) -> dict:
        if name is None:
            return _verdict("transition_tuning", "not run", note="needs a predictive run")
        runs = self.analyses.get(name)
        if not runs:
            return _verdict("transition_tuning", "not run", note="needs the module analyses")
        t = np.array([a["tuning"]["trained"] for a in runs], dtype=float)
        u = np.array([a["tuning"]["untrained"] for a in runs], dtype=float)
        s = np.array([a["tuning"]["shuffled"] for a in runs], dtype=float)
        res = _paired(t, u)
        if res is None:
            return _verdict("transition_tuning", "not run", note="needs 2 seeds or more")
        numbers = {
            **res,
            "trained": float(np.nanmean(t)),
            "untrained": float(np.nanmean(u)),
            "shuffled": float(np.nanmean(s)),
            "vs_shuffled": _paired(t, s),
        }
        free, _, _ = self._group()
        if free is not None and self.analyses.get(free):
            numbers["model_free_trained"] = float(
                np.nanmean([a["tuning"]["trained"] for a in self.analyses[free]])
            )
        note = f"place-field score of {name}'s transition units, trained - untrained, by seed"
        verdict = "holds" if res["lower"] > 0 else "does not hold"
        return _verdict("transition_tuning", verdict, numbers, note)

    # ------------------------------------------------------------- Result
    def module_table(self) -> pd.DataFrame:
        """Per configuration and module, the mean over seeds of :func:`module_report`'s columns."""
        frames = []
        for name, runs in self.analyses.items():
            for seed, a in zip(self.seeds, runs, strict=False):
                frames.append(a["report"].assign(config=name, seed=seed))
        if not frames:
            return pd.DataFrame(columns=["config", "module"])
        runs = pd.concat(frames, ignore_index=True)
        numeric = [c for c in runs.columns if c not in ("config", "module", "seed")]
        table = runs.groupby(["config", "module"], sort=False)[numeric].mean().reset_index()
        table["n_seeds"] = runs.groupby(["config", "module"], sort=False).size().to_numpy()
        return table

    def summary(self) -> dict[str, Any]:
        """Settings, per configuration the curve summary and fit times, the reports, the verdicts."""
        configs = {}
        for name, c in self.curves.items():
            entry = {
                "settings": self.configs[name],
                "n_seeds": int(c.shape[0]),
                "mean_steps": float(np.nanmean(c)),
                "mean_steps_per_seed": np.nanmean(c, axis=1).tolist(),
                "last_tenth_mean_steps": float(np.nanmean(self._last(name))),
                "fit_seconds": self.seconds.get(name, []),
            }
            if name in self.transfer:
                entry["transfer_mean_steps"] = {
                    m: float(np.nanmean(v)) for m, v in self.transfer[name].items()
                }
            if name in self.analyses:
                entry["transition_tuning"] = {
                    k: float(np.nanmean([a["tuning"][k] for a in self.analyses[name]]))
                    for k in ("trained", "untrained", "shuffled")
                }
            configs[name] = entry
        return {
            "settings": self.settings,
            "seeds": self.seeds,
            "n_episodes": self.n_episodes,
            "configs": configs,
            "module_report": self.module_table().to_dict(orient="records"),
            "verdicts": self.verdicts(),
        }

    def verdict_table(self) -> pd.DataFrame:
        """One row per claim: claim, key, verdict, the headline numbers, statement."""
        rows = []
        for v in self.verdicts():
            n = v["numbers"]
            head = {k: n[k] for k in ("difference", "lower", "upper") if k in n}
            if not head and v["key"] == "speed" and n:
                best = min(n.values(), key=lambda d: d["upper"])
                head = {k: best[k] for k in ("difference", "lower", "upper")}
            if v["key"] == "stability" and len(n) > 1:  # sd difference of the best config
                best = min((d for d in n.values() if isinstance(d, dict)), key=lambda d: d["sd"])
                head = {"difference": best["sd"] - n["model_free_sd"]}
            rows.append(
                {
                    "claim": v["claim"],
                    "key": v["key"],
                    "verdict": v["verdict"],
                    **{k: head.get(k, np.nan) for k in ("difference", "lower", "upper")},
                    "statement": v["statement"],
                    "note": v["note"],
                }
            )
        return pd.DataFrame(rows)

    def tables(self) -> dict[str, pd.DataFrame]:
        """``module_report`` (mean per configuration and module), ``runs``, ``verdicts``."""
        runs = []
        for name, c in self.curves.items():
            for i, seed in enumerate(self.seeds[: c.shape[0]]):
                secs = self.seconds.get(name, [])
                runs.append(
                    {
                        "config": name,
                        "seed": seed,
                        "mean_steps": float(np.nanmean(c[i])),
                        "last_tenth_mean_steps": float(self._last(name)[i]),
                        "fit_seconds": secs[i] if i < len(secs) else np.nan,
                    }
                )
        return {
            "module_report": self.module_table(),
            "runs": pd.DataFrame(runs),
            "verdicts": self.verdict_table(),
        }

    def format_table(self) -> str:
        """Mean steps per configuration, the module report, and the verdict table."""
        env = self.settings.get("env", "?")
        lines = [
            f"{env} {self.settings.get('env_kwargs', {})}: {self.n_episodes} episodes, seeds "
            f"{self.seeds}; greedy steps to goal (lower is better)",
            f"{'config':<26}{'mean steps':>11}{'last 10%':>10}{'transfer':>10}{'frozen':>9}"
            f"{'time (s)':>10}",
        ]
        for name, c in self.curves.items():
            tr = self.transfer.get(name, {})
            cells = [
                f"{np.nanmean(tr[m]):>{w}.1f}" if m in tr else f"{'-':>{w}}"
                for m, w in (("unfrozen", 10), ("frozen", 9))
            ]
            secs = self.seconds.get(name)
            secs = f"{np.mean(secs):>10.1f}" if secs else f"{'-':>10}"
            lines.append(
                f"{name:<26}{np.nanmean(c):>11.1f}{np.nanmean(self._last(name)):>10.1f}"
                f"{cells[0]}{cells[1]}{secs}"
            )
        table = self.module_table()
        if len(table):
            lines += [
                "",
                "modules (mean over seeds): dim = participation ratio, PF = place-field score, "
                "r = Spearman r of distances vs shortest paths",
            ]
            lines.append(f"{'config':<26}{'module':<12}{'dim':>6}{'SI':>7}{'PF':>7}{'r':>7}")
            for _, row in table.iterrows():
                lines.append(
                    f"{row['config']:<26}{row['module']:<12}{row['dimensionality']:>6.2f}"
                    f"{row['spatial_information']:>7.2f}{row['place_field_score']:>7.2f}"
                    f"{row['distance_correlation']:>7.2f}"
                )
        lines += ["", "claims (95% intervals over seeds):"]
        for _, row in self.verdict_table().iterrows():
            nums = ""
            if np.isfinite(row["difference"]):
                nums = f" {row['difference']:+.3g}"
            if np.isfinite(row["lower"]):
                nums += f" [{row['lower']:.3g}, {row['upper']:.3g}]"
            lines.append(f"  {row['claim']} {row['key']:<18}{row['verdict']:<14}{nums}")
            lines.append(f"      {row['statement']}; {row['note']}")
        return "\n".join(lines)

    # ------------------------------------------------------------- figures
    def plot(self) -> dict[str, Any]:
        """``learning_curves``; with transfer runs ``transfer``; with analyses ``tuning_maps``
        (transition units of the largest-horizon agent, first seed) and ``latent_geometry``
        (encoder distance against shortest path, one panel per configuration)."""
        from neuro.plotting import new_figure
        from neuro.rl.analysis import learning_curves

        figs = {}
        fig, axes = new_figure(size=(5.5, 3.6))
        self._draw_curves(axes[0, 0], self.curves, self.bands)
        axes[0, 0].set_title("learning")
        figs["learning_curves"] = fig
        if self.transfer:
            modes = [m for m in _MODES if any(m in d for d in self.transfer.values())]
            fig, axes = new_figure(ncols=len(modes), size=(4.5, 3.6))
            for ax, mode in zip(axes[0], modes, strict=True):
                curves = {n: d[mode] for n, d in self.transfer.items() if mode in d}
                bands = {
                    n: learning_curves(c, window=self.window)
                    for n, c in curves.items()
                    if c.shape[0] >= 2
                }
                self._draw_curves(ax, curves, bands)
                ax.set_title(f"transfer, {mode} encoder")
            figs["transfer"] = fig
        if self.analyses:
            figs.update(self._representation_figures())
        return figs

    def _draw_curves(self, ax, curves, bands) -> None:
        from neuro.rl.analysis import _smooth

        x = np.arange(1, self.n_episodes + 1)
        for name, c in curves.items():
            if name in bands:
                b = bands[name]
                ax.fill_between(x[: len(b.mean)], b.lower, b.upper, alpha=0.2, linewidth=0)
                ax.plot(x[: len(b.mean)], b.mean, label=name)
            else:
                ax.plot(x[: c.shape[1]], _smooth(c, self.window).mean(axis=0), label=name)
        top = max(float(np.nanmax(c)) for c in curves.values())
        ax.set_ylim(0, 1.05 * top if top > 0 else 1.0)  # t bands of few seeds can be huge
        ax.set_xlabel("episode")
        ax.set_ylabel(f"greedy steps to goal (mean of {self.window})")
        ax.legend(fontsize=7)

    def _representation_figures(self) -> dict[str, Any]:
        from neuro.plotting import new_figure
        from neuro.rl.analysis import tuning_maps

        _, pred, _ = self._group()
        name = pred[-1] if pred else next(iter(self.analyses))
        a = self.analyses[name][0]
        maps = tuning_maps(a["activity"]["transition"], a["cells"], a["shape"])
        n = min(6, maps.shape[0])
        fig, axes = new_figure(ncols=n, size=(1.8, 2.0))
        for u in range(n):
            ax = axes[0, u]
            ax.imshow(maps[u], cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"unit {u}", fontsize=8)
        fig.suptitle(f"transition units, {name}, seed {self.seeds[0]}", fontsize=9)
        figs = {"tuning_maps": fig}
        names = [n for n in self.analyses if self.analyses[n][0]["path_lengths"] is not None]
        if names:
            fig, axes = new_figure(ncols=len(names), size=(2.8, 2.8))
            for ax, n in zip(axes[0], names, strict=True):
                a = self.analyses[n][0]
                iu = np.triu_indices(len(a["cells"]), k=1)
                z = a["activity"]["encoder"]
                dist = np.linalg.norm(z[:, None, :] - z[None, :, :], axis=-1)[iu]
                path = a["path_lengths"][iu]
                jitter = np.random.default_rng(0).uniform(-0.15, 0.15, path.size)
                ax.scatter(path + jitter, dist, s=3, alpha=0.3)
                r = a["report"].set_index("module").loc["encoder", "distance_correlation"]
                ax.set_title(f"{n}\nr = {r:.2f}", fontsize=8)
                ax.set_xlabel("shortest path (steps)")
            axes[0, 0].set_ylabel("encoder distance")
            figs["latent_geometry"] = fig
        return figs

    # ------------------------------------------------------------- extra files
    def _save_extra(self, folder: Path, overwrite: bool) -> None:
        """``curves.npz``, ``activity.npz`` (with analyses) and ``models/<config>_seed<k>.pt``."""
        from neuro.io import atomic_open

        arrays = {f"curves/{n}": c for n, c in self.curves.items()}
        arrays.update({f"losses/{n}": v for n, v in self.losses.items()})
        for n, d in self.transfer.items():
            arrays.update({f"transfer_{m}/{n}": v for m, v in d.items()})
        arrays["seeds"] = np.asarray(self.seeds)
        with atomic_open(folder / "curves.npz", "wb") as fh:
            np.savez(fh, **arrays)
        if self.analyses:
            act = {}
            for n, runs in self.analyses.items():
                for seed, a in zip(self.seeds, runs, strict=False):
                    act[f"{n}/seed{seed}/cells"] = a["cells"]
                    for module, v in a["activity"].items():
                        act[f"{n}/seed{seed}/{module}"] = v
            with atomic_open(folder / "activity.npz", "wb") as fh:
                np.savez(fh, **act)
        for (n, seed), agent in self.agents.items():
            agent.save(folder / "models" / f"{n}_seed{seed}.pt", overwrite=overwrite)


def _parse_name(name: str) -> dict[str, Any]:
    """Settings read from a name of :func:`config_name` (for results built from bare curves)."""
    size = "small"
    for s in ("small", "default", "large"):
        if name.startswith(f"{s}_"):
            size, name = s, name[len(s) + 1 :]
    if name.startswith("predictive_gp"):
        try:
            return {"objective": "predictive", "gamma_p": float(name[13:]), "encoder_size": size}
        except ValueError:
            pass
    if name in ("model-free", "entropy", "predictive"):
        return {"objective": name, "gamma_p": 0.0, "encoder_size": size}
    return {"objective": "unknown", "gamma_p": 0.0, "encoder_size": size}
