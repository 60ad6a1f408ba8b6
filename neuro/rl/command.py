"""``neuro rl``: deep-RL agents with predictive auxiliary objectives (Fang & Stachenfeld 2024).

Trains one :class:`~neuro.rl.agent.PredictiveAgent` per ``--objectives`` entry
(one per ``--gamma-p`` value for ``predictive``) and ``--encoder-size``, for
each of ``--seeds``, on ``--env``; analyses each module's representation;
with ``--transfer`` moves the goal and trains on, with and without a frozen
encoder; then writes into ``--out`` what :meth:`RLComparison.save
<neuro.rl.experiment.RLComparison.save>` writes:

* ``metrics.json``: settings, per configuration the mean steps and fit times,
  the module report, and the verdict of each of the paper's claims with its
  numbers;
* ``summary.txt``: the printed tables;
* ``module_report.csv``, ``runs.csv``, ``verdicts.csv``;
* ``curves.npz`` (``curves/<config>``: seeds x episodes, ``transfer_*/<config>``,
  ``losses/<config>``, ``seeds``) and ``activity.npz``, readable with
  ``numpy.load`` (no pickle);
* ``figures/*.png``: learning curves with bands, transfer curves, tuning maps
  of transition units, encoder distance against shortest path;
* ``models/<config>_seed<k>.pt``: each agent (``PredictiveAgent.load``).

Each run checkpoints into ``--out/checkpoints/<config>_seed<k>``; ``--resume``
continues a killed run from there (finished runs come back as they were; a
larger ``--episodes`` trains the rest). Every bad flag is refused before the
first agent trains, in one line naming the flag.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "build_configs", "check_arguments", "env_settings", "run"]

log = logging.getLogger(__name__)

#: Agent and environment parameters, as this command's flags (for error messages).
FLAG_NAMES = {
    "gamma_p": "--gamma-p",
    "weights": "--weights",
    "encoder_size": "--encoder-size",
    "latent_dim": "--latent-dim",
    "lr": "--lr",
    "batch_size": "--batch-size",
    "target_update": "--target-update",
    "episodes": "--episodes",
    "obs_mode": "--obs-mode",
    "texture_size": "--texture-size",
    "size": "--grid-size",
    "max_steps": "--max-steps",
    "random_state": "--seeds",
    "seeds": "--seeds",
    "name": "--env",
    "checkpoint_every": "--checkpoint-every",
    "code_gaps": "--code-gaps",
}
OBJECTIVES = ("model-free", "entropy", "predictive")
ENCODER_SIZES = ("small", "default", "large")
OBS_MODES = ("grid", "texture", "shuffled")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro rl``."""
    parser.add_argument(
        "--env",
        default="neuro/GridWorld-v0",
        help="task: neuro/GridWorld-v0, neuro/GridWorldTransfer-v0, neuro/LinearTrack-v0 or "
        "neuro/AlternatingTMaze-v0",
    )
    parser.add_argument(
        "--grid-size",
        type=int,
        default=None,
        metavar="N",
        help="free cells per side of the grid tasks (default: the task's, 8)",
    )
    parser.add_argument("--obs-mode", choices=OBS_MODES, default="grid", help="what the agent sees")
    parser.add_argument(
        "--texture-size",
        type=int,
        default=None,
        metavar="PX",
        help="side of a texture patch, --obs-mode texture (default: the task's, 32)",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        metavar="N",
        help="steps before an episode is cut (default: the task's, 150)",
    )
    parser.add_argument(
        "--objectives",
        nargs="+",
        default=["model-free", "predictive"],
        metavar="OBJ",
        help=f"objectives to compare: {', '.join(OBJECTIVES)}",
    )
    parser.add_argument(
        "--gamma-p",
        type=float,
        nargs="+",
        default=None,
        metavar="G",
        help="predictive horizons in [0, 1), one agent each (default: 0 and 0.8)",
    )
    parser.add_argument(
        "--encoder-size",
        nargs="+",
        default=["small"],
        metavar="SIZE",
        help=f"encoder sizes ({', '.join(ENCODER_SIZES)}); several are compared",
    )
    parser.add_argument("--latent-dim", type=int, default=6, help="units of the latent z")
    parser.add_argument("--episodes", type=int, default=100, help="training episodes per run")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        metavar="S",
        help="seeds, one run each; a grid's goal is drawn per seed (default: --seed and "
        "--seed + 1)",
    )
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
    parser.add_argument("--batch-size", type=int, default=64, help="replay batch size")
    parser.add_argument(
        "--target-update", type=int, default=1000, help="updates between target-network copies"
    )
    parser.add_argument(
        "--weights",
        type=float,
        nargs="+",
        default=None,
        metavar="W",
        help="4 loss weights [pos, neg_neighbour, neg_random, Q] for every agent (default: "
        "each objective's preset)",
    )
    parser.add_argument(
        "--code-gaps",
        action="store_true",
        help="reproduce the public code's gaps (no terminal mask, pairs across episodes)",
    )
    parser.add_argument(
        "--transfer",
        action="store_true",
        help="after training, move the goal and train on, with and without a frozen encoder "
        "(grid tasks)",
    )
    parser.add_argument(
        "--transfer-episodes",
        type=int,
        default=None,
        metavar="N",
        help="episodes after the goal moves (default: --episodes)",
    )
    parser.add_argument(
        "--permutations",
        type=int,
        default=200,
        metavar="N",
        help="permutations for the distance correlations' p-values",
    )
    parser.add_argument(
        "--checkpoint-every", type=int, default=10, metavar="N", help="episodes between checkpoints"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the runs whose checkpoints are in --out/checkpoints",
    )
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")


# ----------------------------------------------------------------------------- checks
def _unique(flag: str, values: list, choices: tuple | None = None) -> list:
    from neuro.errors import InputError

    for v in values:
        if choices is not None and v not in choices:
            raise InputError(f"{flag}: unknown value {v!r}; choose among {', '.join(choices)}.")
    twice = sorted({str(v) for v in values if values.count(v) > 1})
    if twice:
        raise InputError(f"{flag} names {', '.join(twice)} more than once; name each once.")
    return list(values)


def env_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The environment's keyword arguments that the flags set (unset flags: the task's default)."""
    from neuro.errors import InputError
    from neuro.rl.experiment import GRID_TASKS

    kwargs: dict[str, Any] = {}
    if args.grid_size is not None:
        if args.env not in GRID_TASKS:
            raise InputError(
                f"--grid-size applies to the grid tasks ({', '.join(GRID_TASKS)}); --env "
                f"{args.env} has its own layout. Drop --grid-size."
            )
        kwargs["size"] = args.grid_size
    if args.obs_mode != "grid":
        kwargs["obs_mode"] = args.obs_mode
    if args.texture_size is not None:
        if args.obs_mode != "texture":
            raise InputError(
                "--texture-size applies to --obs-mode texture; add it or drop --texture-size."
            )
        kwargs["texture_size"] = args.texture_size
    if args.max_steps is not None:
        kwargs["max_steps"] = args.max_steps
    return kwargs


def check_arguments(args: argparse.Namespace) -> tuple[list[int], dict[str, Any]]:
    """Check every flag before any agent trains; the seeds and the environment's settings.

    Builds the environment of each seed and an encoder for its observations,
    and checks each configuration's agent settings, so that a bad value is
    refused now, in one line naming its flag, not midway through the runs.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    seeds : list of int
    env_kwargs : dict
    """
    from neuro._validation import check_float, check_int
    from neuro.cli import errors_as_flags
    from neuro.errors import InputError, InputKeyError
    from neuro.rl.agent import PredictiveAgent
    from neuro.rl.envs import TASKS, make, transfer_goal
    from neuro.rl.experiment import GRID_TASKS, seed_env_kwargs
    from neuro.rl.networks import Encoder

    if args.env not in TASKS:
        try:
            make(args.env)
        except InputKeyError as err:
            raise InputError(f"--env: {err}") from None
    _unique("--objectives", args.objectives, OBJECTIVES)
    _unique("--encoder-size", args.encoder_size, ENCODER_SIZES)
    if args.gamma_p is not None:
        if "predictive" not in args.objectives:
            raise InputError(
                "--gamma-p sets the horizon of --objectives predictive; add predictive to "
                "--objectives or drop --gamma-p."
            )
        for g in args.gamma_p:
            check_float("--gamma-p", g, minimum=0.0, maximum=1.0, strict_maximum=True)
        _unique("--gamma-p", args.gamma_p)
    if args.weights is not None and len(args.weights) != 4:
        raise InputError(
            f"--weights takes 4 numbers [pos, neg_neighbour, neg_random, Q]; got "
            f"{len(args.weights)} ({' '.join(f'{w:g}' for w in args.weights)})."
        )
    seeds = args.seeds if args.seeds is not None else [args.seed, args.seed + 1]
    for s in seeds:
        check_int("--seeds", s, minimum=0)
    _unique("--seeds", seeds)
    check_int("--episodes", args.episodes, minimum=1)
    check_int("--transfer-episodes", args.transfer_episodes, minimum=1, allow_none=True)
    check_int("--permutations", args.permutations, minimum=0)
    check_int("--checkpoint-every", args.checkpoint_every, minimum=1)
    check_int("--latent-dim", args.latent_dim, minimum=1)
    kwargs = env_settings(args)
    if args.transfer and args.env not in GRID_TASKS:
        raise InputError(
            f"--transfer moves the goal of a grid task ({', '.join(GRID_TASKS)}); --env "
            f"{args.env} has no goal to move. Drop --transfer or choose a grid task."
        )
    for seed in seeds:
        with errors_as_flags(FLAG_NAMES):
            try:
                env = make(args.env, **seed_env_kwargs(args.env, kwargs, seed))
            except InputKeyError as err:
                raise InputError(f"--env: {err}") from None
            shape = tuple(int(s) for s in env.observation_space.shape)
            for size in args.encoder_size:
                try:
                    Encoder(shape, args.latent_dim, size)
                except InputError as err:
                    hint = (
                        " Give --texture-size 4 or more."
                        if args.obs_mode == "texture"
                        else " Give a larger --grid-size."
                    )
                    raise type(err)(f"--obs-mode {args.obs_mode}: {err}{hint}") from None
            if args.transfer:
                try:
                    transfer_goal(env.unwrapped)
                except InputError as err:
                    text = str(err).replace("use size", "use --grid-size")
                    raise type(err)(f"--transfer: {text}") from None
            env.close()
    for config in build_configs(args).values():
        with errors_as_flags(FLAG_NAMES):
            PredictiveAgent(env=args.env, episodes=args.episodes, **config)._check_settings()
    return list(seeds), kwargs


def build_configs(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The agents' configurations that ``--objectives``, ``--gamma-p`` and the rest describe."""
    from neuro.rl.experiment import make_configs

    shared = {
        "latent_dim": args.latent_dim,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "target_update": args.target_update,
        "code_gaps": bool(args.code_gaps),
    }
    if args.weights is not None:
        shared["weights"] = list(args.weights)
    gamma_ps = args.gamma_p if args.gamma_p is not None else [0.0, 0.8]
    with _as_flags():
        return make_configs(args.objectives, gamma_ps, args.encoder_size, **shared)


def _as_flags():
    from neuro.cli import errors_as_flags

    return errors_as_flags(
        {**FLAG_NAMES, "objectives": "--objectives", "encoder_sizes": "--encoder-size"}
    )


def clear_checkpoints(root: Path, names: list[str]) -> None:
    """With --overwrite and without --resume: drop the earlier run's checkpoints of these runs."""
    import shutil

    for name in names:  # folders this command made under --out/checkpoints, one per run
        folder = root / name
        if (folder / "checkpoints").is_dir():
            shutil.rmtree(folder)


# ----------------------------------------------------------------------------- the command
def run(args: argparse.Namespace) -> int:
    """Entry point of ``neuro rl``."""
    from neuro.cli import errors_as_flags
    from neuro.rl.experiment import train_agents, transfer_agents
    from neuro.train.device import resolve_device

    seeds, env_kwargs = check_arguments(args)
    configs = build_configs(args)
    with errors_as_flags({"device": "--device"}):
        device = str(resolve_device(args.device))
    out = Path(args.out)
    root = out / "checkpoints"
    if not args.resume:
        clear_checkpoints(root, [f"{n}_seed{s}" for n in configs for s in seeds])
    started = time.perf_counter()
    comparison = train_agents(
        configs,
        seeds,
        env=args.env,
        env_kwargs=env_kwargs,
        episodes=args.episodes,
        device=device,
        verbose=args.verbose,
        checkpoint_root=root,
        checkpoint_every=args.checkpoint_every,
        resume=bool(args.resume),
        n_permutations=args.permutations,
    )
    if args.transfer:
        transfer_agents(comparison, episodes=args.transfer_episodes, verbose=args.verbose)
    comparison.settings.update(
        configs=configs,
        seeds=seeds,
        seconds=time.perf_counter() - started,
        command="neuro rl",
    )
    comparison.save(out, overwrite=True, figures=not args.no_figures)
    print(comparison.format_table())
    print(f"  written to {out}")
    return 0
