"""A double-DQN agent with predictive auxiliary objectives (Fang & Stachenfeld, ICLR 2024).

:class:`PredictiveAgent` learns off-policy from a random behaviour policy, as
the paper: after each environment step, one update on a batch from the
replay buffer with the loss of :mod:`neuro.rl.losses`; after each training
episode, one greedy episode on a separate copy of the environment measures
the steps to the goal (the learning curve). Its three modules
(:mod:`neuro.rl.networks`) are what the analyses compare with the brain: the
encoder (visual cortex), the Q head (striatum), the transition model
(hippocampus).

Objectives (``objective``; :data:`OBJECTIVES`), with the public code's loss
weights ``[w_pos, w_neg_neighbour, w_neg_random, w_Q]``:

* ``"model-free"``: ``[0, 0, 0, 1]``;
* ``"entropy"``: ``[0, 0.1, 0.1, 1]`` (the anti-collapse terms alone);
* ``"predictive"``: ``[w, 0.1, 0.1, 1]`` with ``w`` by horizon as the public
  code's runs: 1e-2 at ``gamma_p = 0``, 1e-3 at 0.25 and 0.5, 1e-4 at 0.8
  (:func:`loss_weights`).

Where the public code has gaps (see ``../shared/reference/rl_predictive.md``),
this agent does it right by default and ``code_gaps=True`` reproduces the
code: the Q target bootstraps through terminal states, and the predictive
target's second transition is whatever was stored next, even the first step
of the next episode. A time-limit truncation is not terminal here
(gymnasium's ``truncated``): the Q target bootstraps from the state where time
ran out; the predictive bootstrap is dropped there, since the next
transition belongs to another episode.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from neuro._validation import check_bool, check_choice, check_float, check_int
from neuro.base import NeuroEstimator
from neuro.errors import InputError, InputTypeError
from neuro.rl.losses import double_dqn_target, negative_terms, predictive_loss
from neuro.rl.networks import ENCODER_SIZES, Encoder, QHead, TransitionModel
from neuro.rl.replay import ReplayBuffer
from neuro.train.checkpointed import CheckpointedFit

__all__ = ["OBJECTIVES", "PREDICTIVE_WEIGHTS", "PredictiveAgent", "loss_weights"]

#: The objectives and their loss weights [pos, neg_neighbour, neg_random, Q] (pos: by horizon).
OBJECTIVES = ("model-free", "entropy", "predictive")
#: The predictive term's weight for each horizon gamma_p in the public code's runs.
PREDICTIVE_WEIGHTS = {0.0: 1e-2, 0.25: 1e-3, 0.5: 1e-3, 0.8: 1e-4}
#: Parameters a resumed run must share with the run that wrote the checkpoint.
_RUN_PARAMS = (
    "env",
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
    "freeze_encoder",
    "random_state",
)


def loss_weights(objective: str, gamma_p: float = 0.0) -> list[float]:
    """The loss weights ``[pos, neg_neighbour, neg_random, Q]`` of an objective.

    For ``"predictive"``, the weight of the predictive term at horizons the
    public code ran (:data:`PREDICTIVE_WEIGHTS`); other horizons take the
    weight of the nearest one.

    Examples
    --------
    >>> loss_weights("predictive", 0.8)
    [0.0001, 0.1, 0.1, 1.0]
    >>> loss_weights("model-free")
    [0.0, 0.0, 0.0, 1.0]
    """
    objective = check_choice("objective", objective, OBJECTIVES)
    gamma_p = _check_gamma_p(gamma_p)
    if objective == "model-free":
        return [0.0, 0.0, 0.0, 1.0]
    if objective == "entropy":
        return [0.0, 0.1, 0.1, 1.0]
    nearest = min(PREDICTIVE_WEIGHTS, key=lambda g: abs(g - gamma_p))
    return [PREDICTIVE_WEIGHTS[nearest], 0.1, 0.1, 1.0]


def _check_gamma_p(gamma_p: float) -> float:
    return check_float("gamma_p", gamma_p, minimum=0.0, maximum=1.0, strict_maximum=True)


class _Networks(nn.Module):
    """Online and target copies of the three modules, in one module for checkpoints."""

    def __init__(self, obs_shape, n_actions: int, latent_dim: int, encoder_size: str) -> None:
        super().__init__()
        self.encoder = Encoder(obs_shape, latent_dim, encoder_size)
        self.q = QHead(latent_dim, n_actions)
        self.transition = TransitionModel(latent_dim, n_actions)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.target_q = copy.deepcopy(self.q).requires_grad_(False)

    def sync_target(self) -> None:
        self.target_encoder.load_state_dict(self.encoder.state_dict())
        self.target_q.load_state_dict(self.q.state_dict())


def _to_json(obj: Any) -> str:
    """An environment's or generator's state as JSON (NumPy arrays kept with their dtype)."""

    def default(o):
        if isinstance(o, np.ndarray):
            return {"__ndarray__": o.tolist(), "dtype": str(o.dtype)}
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, torch.Tensor):
            return {"__ndarray__": o.tolist(), "dtype": str(o.numpy().dtype)}
        raise TypeError(f"cannot store a {type(o).__name__} in the run's checkpoint")

    return json.dumps(obj, default=default)


def _from_json(text: str) -> Any:
    def hook(d):
        if "__ndarray__" in d:
            return np.asarray(d["__ndarray__"], dtype=d["dtype"])
        return d

    return json.loads(text, object_hook=hook)


class PredictiveAgent(CheckpointedFit, NeuroEstimator):
    """Double DQN with a transition model and anti-collapse terms, trained off-policy.

    Parameters
    ----------
    env : str, default="neuro/GridWorld-v0"
        A task of :mod:`neuro.rl.envs` (``neuro.rl.envs.TASKS``), made with
        ``env_kwargs``. :meth:`fit` also takes an environment object.
    env_kwargs : dict, optional
        Keyword arguments of the environment (``goal``, ``obs_mode``, ...).
    episodes : int, default=350
        Training episodes (the paper's grid runs: a few hundred).
    objective : {"model-free", "entropy", "predictive"}, default="predictive"
    gamma_p : float in [0, 1), default=0.0
        Predictive horizon: 0 predicts the next latent; larger values the
        discounted sum of future latents, TD-style.
    weights : sequence of 4 floats, optional
        ``[pos, neg_neighbour, neg_random, Q]``, overriding the objective's
        (:func:`loss_weights`).
    encoder_size : {"small", "default", "large"}, default="small"
        The public code's encoder sizes (conv channels 8/16, 16/32, 16/48).
    latent_dim : int, default=6
        Units of the latent ``z`` (the paper: 3 to 24).
    discount : float, default=0.9
    lr : float, default=1e-4
        Adam's learning rate.
    batch_size : int, default=64
    replay_capacity : int, default=20_000
    target_update : int, default=1000
        Updates between copies of the online network into the target network.
    epsilon : float, default=1.0
        Probability of a random action while training (1: the paper's random
        behaviour policy); evaluation episodes are greedy.
    temperature : float, default=5.0
        Of the anti-collapse terms, ``exp(-temperature * distance)``.
    code_gaps : bool, default=False
        Reproduce the public code's gaps (see the module docstring).
    freeze_encoder : bool, default=False
        Train the Q head and transition model only (transfer with a frozen
        encoder).
    eval_max_steps : int, optional
        Cap of an evaluation episode (default: the environment's own limit).
    checkpoint_dir : str or path, optional
        Folder for ``checkpoints/last.pt`` (exact resume of a killed run).
    checkpoint_every_n_episodes : int, optional
        Episodes between checkpoints (default 10 when ``checkpoint_dir`` is set).
    device : str, default="auto"
    random_state : int, default=0
    verbose : int, default=0

    Attributes
    ----------
    eval_steps_ : ndarray of shape (episodes,)
        Steps of the greedy episode after each training episode (the cap when
        the goal was not reached): the learning curve.
    eval_return_ : ndarray of shape (episodes,)
    train_steps_ : ndarray of shape (episodes,)
    losses_ : ndarray of shape (episodes, 5)
        Mean weighted losses per step: pos, neg_neighbour, neg_random, Q, total.
    n_updates_ : int
    obs_shape_, n_actions_ : tuple, int
    networks_ : nn.Module
        ``encoder``, ``q``, ``transition`` (and the target copies).

    Examples
    --------
    >>> agent = PredictiveAgent(episodes=2, batch_size=8, device="cpu").fit()
    >>> agent.eval_steps_.shape
    (2,)
    """

    def __init__(
        self,
        env: str = "neuro/GridWorld-v0",
        env_kwargs: dict | None = None,
        episodes: int = 350,
        objective: str = "predictive",
        gamma_p: float = 0.0,
        weights=None,
        encoder_size: str = "small",
        latent_dim: int = 6,
        discount: float = 0.9,
        lr: float = 1e-4,
        batch_size: int = 64,
        replay_capacity: int = 20_000,
        target_update: int = 1000,
        epsilon: float = 1.0,
        temperature: float = 5.0,
        code_gaps: bool = False,
        freeze_encoder: bool = False,
        eval_max_steps: int | None = None,
        checkpoint_dir=None,
        checkpoint_every_n_episodes: int | None = None,
        device: str = "auto",
        random_state: int = 0,
        verbose: int = 0,
    ) -> None:
        self.env = env
        self.env_kwargs = env_kwargs
        self.episodes = episodes
        self.objective = objective
        self.gamma_p = gamma_p
        self.weights = weights
        self.encoder_size = encoder_size
        self.latent_dim = latent_dim
        self.discount = discount
        self.lr = lr
        self.batch_size = batch_size
        self.replay_capacity = replay_capacity
        self.target_update = target_update
        self.epsilon = epsilon
        self.temperature = temperature
        self.code_gaps = code_gaps
        self.freeze_encoder = freeze_encoder
        self.eval_max_steps = eval_max_steps
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every_n_episodes = checkpoint_every_n_episodes
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ settings
    def _weights(self) -> list[float]:
        if self.weights is None:
            return loss_weights(self.objective, self.gamma_p)
        w = np.asarray(self.weights, dtype=float).ravel()
        if w.size != 4 or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise InputError(
                "weights must be 4 finite non-negative numbers [pos, neg_neighbour, "
                f"neg_random, Q]; got {np.asarray(self.weights).ravel().tolist()}."
            )
        return [float(v) for v in w]

    def _check_settings(self) -> dict[str, Any]:
        if self.env_kwargs is not None and not isinstance(self.env_kwargs, dict):
            raise InputTypeError(
                "env_kwargs must be a dict of the environment's settings (e.g. {'size': 6}) or "
                f"None; got {type(self.env_kwargs).__name__}."
            )
        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("encoder_size", self.encoder_size, tuple(ENCODER_SIZES))
        settings = {
            "episodes": check_int("episodes", self.episodes, minimum=1),
            "gamma_p": _check_gamma_p(self.gamma_p),
            "weights": self._weights(),
            "latent_dim": check_int("latent_dim", self.latent_dim, minimum=1),
            "discount": check_float("discount", self.discount, minimum=0.0, maximum=1.0),
            "lr": check_float("lr", self.lr, minimum=0.0, strict_minimum=True),
            "batch_size": check_int("batch_size", self.batch_size, minimum=1),
            "replay_capacity": check_int("replay_capacity", self.replay_capacity, minimum=2),
            "target_update": check_int("target_update", self.target_update, minimum=1),
            "epsilon": check_float("epsilon", self.epsilon, minimum=0.0, maximum=1.0),
            "temperature": check_float("temperature", self.temperature, minimum=0.0),
            "code_gaps": check_bool("code_gaps", self.code_gaps),
            "freeze_encoder": check_bool("freeze_encoder", self.freeze_encoder),
            "eval_max_steps": check_int(
                "eval_max_steps", self.eval_max_steps, minimum=1, allow_none=True
            ),
            "checkpoint_every": check_int(
                "checkpoint_every_n_episodes",
                self.checkpoint_every_n_episodes,
                minimum=1,
                allow_none=True,
            ),
        }
        if settings["checkpoint_every"] is not None and self.checkpoint_dir is None:
            raise InputError(
                "checkpoint_every_n_episodes needs checkpoint_dir=..., the folder where "
                "checkpoints go."
            )
        if settings["replay_capacity"] < settings["batch_size"]:
            raise InputError(
                f"replay_capacity ({settings['replay_capacity']}) must hold at least one batch "
                f"(batch_size {settings['batch_size']})."
            )
        return settings

    def _make_env(self, X):
        import gymnasium

        if X is None:
            X = self.env
        if isinstance(X, str):
            from neuro.rl.envs import make

            return make(X, **(self.env_kwargs or {})), make(X, **(self.env_kwargs or {}))
        if isinstance(X, gymnasium.Env):
            return X, copy.deepcopy(X)
        raise InputTypeError(
            f"fit takes a task name of neuro.rl.envs or a gymnasium environment; got "
            f"{type(X).__name__}."
        )

    @staticmethod
    def _spaces(env) -> tuple[tuple[int, ...], int]:
        import gymnasium

        space = env.action_space
        if not isinstance(space, gymnasium.spaces.Discrete):
            raise InputError(
                f"The agent needs a discrete action space; this environment has {space}."
            )
        shape = tuple(int(s) for s in env.observation_space.shape)
        if len(shape) != 3:
            raise InputError(
                f"The encoder reads image observations (channels, height, width); this "
                f"environment gives observations of shape {shape}."
            )
        return shape, int(space.n)

    # ------------------------------------------------------------------ fit
    def fit(self, X=None, y=None, resume: bool = False, init_from: PredictiveAgent | None = None):
        """Train for ``episodes`` episodes (or the rest of them, with ``resume``).

        Parameters
        ----------
        X : str or gymnasium.Env, optional
            The environment (default: ``env`` with ``env_kwargs``). A second
            copy runs the greedy evaluation episodes.
        y : None
            Unused.
        resume : bool, default=False
            Continue the run whose checkpoint is in ``checkpoint_dir``: the
            networks, optimizer, replay buffer, environments and random
            generators come back as they were, so the result equals an
            uninterrupted run.
        init_from : PredictiveAgent, optional
            A fitted agent whose encoder weights start this run (transfer, as
            the public code loads only the encoder); see :meth:`transfer`.

        Returns
        -------
        self
        """
        from neuro.train.checkpoint import load_checkpoint
        from neuro.train.device import resolve_device
        from neuro.train.seed import seed_everything

        s = self._check_settings()
        resume = self._resume(resume) == "last"  # refuses a used folder or nothing to resume
        env, eval_env = self._make_env(X)
        obs_shape, n_actions = self._spaces(env)
        device = resolve_device(self.device)
        seed = check_int("random_state", self.random_state, minimum=0)
        seed_everything(seed)
        nets = _Networks(obs_shape, n_actions, s["latent_dim"], self.encoder_size)
        if init_from is not None:
            init_from._check_fitted()
            theirs = (tuple(init_from.obs_shape_), init_from.latent_dim, init_from.encoder_size)
            if theirs != (obs_shape, self.latent_dim, self.encoder_size):
                raise InputError(
                    f"init_from's encoder ({init_from.encoder_size}) reads observations of shape "
                    f"{theirs[0]} into {theirs[1]} latents; this agent's ({self.encoder_size}) "
                    f"reads {obs_shape} into {self.latent_dim}. Transfer between tasks of one "
                    "observation shape, with the same encoder_size and latent_dim."
                )
            nets.encoder.load_state_dict(init_from.networks_.encoder.state_dict())
        nets.sync_target()
        nets.to(device)
        params = [p for n, p in nets.named_parameters() if not n.startswith("target_")]
        if s["freeze_encoder"]:
            nets.encoder.requires_grad_(False)
            params = [*nets.q.parameters(), *nets.transition.parameters()]
        optimizer = torch.optim.Adam(params, lr=s["lr"])
        buffer = ReplayBuffer(s["replay_capacity"], obs_shape)
        rng = np.random.default_rng(seed)
        run = {
            "episode": 0,
            "n_updates": 0,
            "eval_steps": [],
            "eval_return": [],
            "train_steps": [],
            "losses": [],
            "seconds": 0.0,
        }
        last = self._checkpoint_path()
        if resume:
            state = load_checkpoint(last)
            self._check_resume(state)
            extra = self._restore(state, nets, optimizer)
            buffer.load_state_dict(extra["replay"])
            rng.bit_generator.state = _from_json(extra["agent_rng"])
            _set_env_state(env, extra["env"])
            _set_env_state(eval_env, extra["eval_env"])
            run = {k: extra["run"][k] for k in run}
        self.networks_ = nets
        self.obs_shape_, self.n_actions_ = obs_shape, n_actions
        every = s["checkpoint_every"] or 10
        weights = torch.tensor(s["weights"], device=device)
        started = time.perf_counter() - run["seconds"]
        first_reset = run["episode"] == 0 and not resume
        obs = None
        for episode in range(run["episode"], s["episodes"]):
            if first_reset:
                obs, _ = env.reset(seed=seed)
                eval_env.reset(seed=seed + 1)
                first_reset = False
            else:
                obs, _ = env.reset()
            total = np.zeros(5)
            steps, done = 0, False
            while not done:
                if rng.random() < s["epsilon"]:
                    action = int(rng.integers(n_actions))
                else:
                    action = self._greedy(obs, device)
                next_obs, reward, terminated, truncated, _ = env.step(action)
                buffer.add(obs, action, reward, next_obs, terminated, truncated)
                if len(buffer) >= s["batch_size"]:
                    total += self._update(nets, optimizer, buffer, rng, s, weights, run, device)
                obs, steps = next_obs, steps + 1
                done = bool(terminated or truncated)
            ev_steps, ev_return = self._evaluate(eval_env, device, s["eval_max_steps"])
            run["eval_steps"].append(ev_steps)
            run["eval_return"].append(ev_return)
            run["train_steps"].append(steps)
            run["losses"].append((total / max(steps, 1)).tolist())
            run["episode"] = episode + 1
            run["seconds"] = time.perf_counter() - started
            if self.verbose:
                print(
                    f"episode {episode + 1}/{s['episodes']}: greedy steps to goal {ev_steps}, "
                    f"loss {run['losses'][-1][-1]:.4f}",
                    flush=True,
                )
            if last is not None and (
                run["episode"] % every == 0 or run["episode"] == s["episodes"]
            ):
                self._save_checkpoint(last, nets, optimizer, buffer, rng, env, eval_env, run)
        nets.eval()
        self.eval_steps_ = np.asarray(run["eval_steps"], dtype=np.int64)
        self.eval_return_ = np.asarray(run["eval_return"], dtype=np.float64)
        self.train_steps_ = np.asarray(run["train_steps"], dtype=np.int64)
        self.losses_ = np.asarray(run["losses"], dtype=np.float64).reshape(-1, 5)
        self.n_updates_ = int(run["n_updates"])
        self.fit_seconds_ = float(run["seconds"])
        return self

    def _update(self, nets, optimizer, buffer, rng, s, weights, run, device) -> np.ndarray:
        if run["n_updates"] % s["target_update"] == 0:
            nets.sync_target()
        index = buffer.sample(s["batch_size"], rng)
        b = buffer.batch(index, device)
        follower = buffer.follower(index, across_episodes=s["code_gaps"])
        has_next = torch.from_numpy(follower >= 0).to(device)
        n = len(index)
        gamma_p = s["gamma_p"]
        stacked = [b["obs"], b["next_obs"]]
        if gamma_p > 0 and s["code_gaps"] and s["weights"][0] > 0:  # next stored, any episode
            stacked.append(torch.from_numpy(buffer.obs[np.where(follower >= 0, follower, index)]))
        latents = nets.encoder(torch.cat([t.to(device) for t in stacked]))
        z, next_z = latents[:n], latents[n : 2 * n]
        w = s["weights"]
        zero = z.new_zeros(())
        pos = neighbour = random = zero  # terms of weight 0 are skipped (same gradients, faster)
        if w[0] > 0:
            prediction = nets.transition(z, b["action"])
            bootstrap = None
            if gamma_p > 0:
                next_action = torch.from_numpy(buffer.action[np.where(follower >= 0, follower, 0)])
                start = latents[2 * n :] if s["code_gaps"] else next_z
                bootstrap = nets.transition(start, next_action.to(device))
            pos = predictive_loss(prediction, next_z, bootstrap, gamma_p, mask=has_next)
        if w[1] > 0 or w[2] > 0:
            neighbour, random = negative_terms(z, next_z, s["temperature"])
        with torch.no_grad():
            target_q = nets.target_q(nets.target_encoder(b["next_obs"]))
            online_next = nets.q(next_z.detach())
        continues = None if s["code_gaps"] else (~b["terminated"]).float()
        y = double_dqn_target(b["reward"], online_next, target_q, s["discount"], continues)
        q = nets.q(z).gather(1, b["action"].unsqueeze(1)).squeeze(1)
        q_loss = torch.nn.functional.mse_loss(q, y)
        parts = torch.stack([pos, neighbour, random, q_loss]) * weights
        loss = parts.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        run["n_updates"] += 1
        out = parts.detach().cpu().numpy()
        return np.append(out, out.sum())

    def _greedy(self, obs, device) -> int:
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=device).unsqueeze(0)
            return int(self.networks_.q(self.networks_.encoder(x)).argmax(1).item())

    def _evaluate(self, env, device, cap) -> tuple[int, float]:
        obs, _ = env.reset()
        steps, total, done = 0, 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(self._greedy(obs, device))
            steps, total = steps + 1, total + float(reward)
            done = bool(terminated or truncated) or (cap is not None and steps >= cap)
        return steps, total

    def score(self, X=None, y=None, n_episodes: int = 10) -> float:
        """Mean return of greedy episodes (higher is better, as scikit-learn's ``score``).

        Parameters
        ----------
        X : str or gymnasium.Env, optional
            The environment (default: a new copy of ``env`` with ``env_kwargs``),
            seeded with ``random_state + 2`` at its first reset.
        y : None
            Unused.
        n_episodes : int, default=10

        Returns
        -------
        float
            On the grid tasks, the fraction of episodes that reach the goal
            within the environment's step limit (reward 1 each).
        """
        self._check_fitted()
        n_episodes = check_int("n_episodes", n_episodes, minimum=1)
        env = self._make_env(X)[0]
        if self._spaces(env)[0] != tuple(self.obs_shape_):
            raise InputError(
                f"This agent reads observations of shape {tuple(self.obs_shape_)}; the "
                f"environment gives {self._spaces(env)[0]}. Score it on the task it learned."
            )
        device = next(self.networks_.parameters()).device
        env.reset(seed=int(self.random_state) + 2)
        returns = []
        for _ in range(n_episodes):
            returns.append(self._evaluate(env, device, self.eval_max_steps)[1])
        return float(np.mean(returns))

    # ----------------------------------------------------------- checkpoints
    def _checkpoint_path(self) -> Path | None:
        if self.checkpoint_dir is None:
            return None
        return Path(self.checkpoint_dir) / "checkpoints" / "last.pt"

    def _run_params(self) -> dict[str, Any]:
        params = self.get_params(deep=False)
        return {k: _to_json(params[k]) for k in _RUN_PARAMS}

    def _save_checkpoint(self, path, nets, optimizer, buffer, rng, env, eval_env, run) -> None:
        from neuro.train.checkpoint import make_checkpoint, save_checkpoint

        path.parent.mkdir(parents=True, exist_ok=True)
        state = make_checkpoint(
            nets,
            optimizer,
            replay=buffer.state_dict(),
            agent_rng=_to_json(rng.bit_generator.state),
            env=_get_env_state(env),
            eval_env=_get_env_state(eval_env),
            run=run,
            params=self._run_params(),
        )
        save_checkpoint(path, state)

    def _check_resume(self, state) -> None:
        from neuro.train.checkpoint import CheckpointError

        stored = state.get("extra", {}).get("params", {})
        for key, value in self._run_params().items():
            if stored.get(key) != value:
                raise CheckpointError(
                    f"The checkpoint in {str(self.checkpoint_dir)!r} was written with {key}="
                    f"{stored.get(key)}, this agent has {key}={value}; resume with the settings "
                    "the run started with (only episodes, verbose and device may change)."
                )

    @staticmethod
    def _restore(state, nets, optimizer):
        from neuro.train.checkpoint import restore_checkpoint

        return restore_checkpoint(state, nets, optimizer, source="RL checkpoint")

    # -------------------------------------------------------------- analyses
    def transfer(self, env=None, env_kwargs=None, episodes=None, freeze_encoder=False):
        """A new agent that starts from this one's encoder and learns a changed task.

        The public code's transfer: a fresh agent (new Q head, transition
        model, replay buffer and optimizer) whose encoder starts from this
        agent's weights, optionally frozen.

        Parameters
        ----------
        env : str or gymnasium.Env, optional
            The new task (default: this agent's ``env``).
        env_kwargs : dict, optional
            Its settings, e.g. ``{"goal": (1, 6)}`` for the moved goal.
        episodes : int, optional
            Default: this agent's ``episodes``.
        freeze_encoder : bool, default=False

        Returns
        -------
        PredictiveAgent
            Fitted on the new task.
        """
        self._check_fitted()
        new = copy.deepcopy(self.get_params(deep=False))
        new.update(
            checkpoint_dir=None,
            checkpoint_every_n_episodes=None,
            freeze_encoder=freeze_encoder,
            env_kwargs=env_kwargs if env_kwargs is not None else self.env_kwargs,
        )
        if isinstance(env, str):
            new["env"] = env
        if episodes is not None:
            new["episodes"] = episodes
        agent = PredictiveAgent(**new)
        return agent.fit(None if isinstance(env, str) else env, init_from=self)

    def module_activity(self, env=None) -> tuple[list, dict[str, np.ndarray]]:
        """Each module's activity with the agent at every free cell of the environment.

        Parameters
        ----------
        env : gymnasium.Env, optional
            With ``free_cells()`` and ``observation_at(cell)`` (every task of
            :mod:`neuro.rl.envs`); default: a new copy of ``env``.

        Returns
        -------
        cells : list of (row, col)
        activity : dict of ndarray, each (n_cells, units)
            ``"encoder"``: the latent ``z``; ``"q"``: the Q head's 16 hidden
            units; ``"transition"``: the transition model's 16 hidden units,
            averaged over the actions; ``"values"``: the action values.
        """
        self._check_fitted()
        if env is None:
            env = self._make_env(None)[0]
        base = getattr(env, "unwrapped", env)
        if not hasattr(base, "free_cells") or not hasattr(base, "observation_at"):
            raise InputError(
                "module_activity needs an environment with free_cells() and observation_at(cell), "
                "as the tasks of neuro.rl.envs have."
            )
        cells = list(base.free_cells())
        obs = np.stack([np.asarray(base.observation_at(c), dtype=np.float32) for c in cells])
        nets = self.networks_.cpu().eval()
        with torch.no_grad():
            x = torch.from_numpy(obs)
            z = nets.encoder(x)
            hidden_t = torch.stack(
                [
                    nets.transition.features(z, torch.full((len(cells),), a))
                    for a in range(self.n_actions_)
                ]
            ).mean(0)
            activity = {
                "encoder": z.numpy(),
                "q": nets.q.features(z).numpy(),
                "transition": hidden_t.numpy(),
                "values": nets.q(z).numpy(),
            }
        return cells, activity

    # ------------------------------------------------------------- save/load
    def _fitted_state(self) -> dict[str, Any]:
        state = {k: v for k, v in vars(self).items() if k.endswith("_") and k != "networks_"}
        state["network_weights"] = {
            k: v.detach().cpu() for k, v in self.networks_.state_dict().items()
        }
        state["obs_shape_"] = list(self.obs_shape_)
        return state

    def _restore_fitted_state(self, state: dict[str, Any]) -> None:
        state = dict(state)
        weights = state.pop("network_weights")
        self.obs_shape_ = tuple(int(v) for v in state.pop("obs_shape_"))
        self.n_actions_ = int(state.pop("n_actions_"))
        nets = _Networks(self.obs_shape_, self.n_actions_, int(self.latent_dim), self.encoder_size)
        nets.load_state_dict(weights)
        self.networks_ = nets.eval()
        for key, value in state.items():
            setattr(self, key, value)


def _get_env_state(env) -> str:
    base = getattr(env, "unwrapped", env)
    if not hasattr(base, "get_state"):
        raise InputError(
            "Checkpoints need the environment's get_state()/set_state() (the tasks of "
            f"neuro.rl.envs have them); {type(base).__name__} has not. Train without "
            "checkpoint_dir."
        )
    return _to_json(base.get_state())


def _set_env_state(env, text: str) -> None:
    getattr(env, "unwrapped", env).set_state(_from_json(text))
