"""Deep RL: environment steps and agent updates per second, each beside a plain Python peer.

Three measurements on the paper's 8 x 8 gridworld (``neuro/GridWorld-v0``, grid
observations of shape (1, 10, 10), 4 actions), in one run:

1. Environment steps per second, random actions drawn in advance, an episode reset
   whenever one ends:

   * ``GridWorld (unwrapped)``: the environment's own ``step``, no wrappers;
   * ``make``: through :func:`neuro.rl.envs.make` (gymnasium's order-enforcing and
     passive-checker wrappers);
   * ``make_vector, N``: :func:`neuro.rl.envs.make_vector` (gymnasium's
     ``SyncVectorEnv``, autoreset ``next_step``) with N = 8 and 64 copies; env-steps
     per second = N x vector steps per second;
   * the peer, ``Python loop, N``: the same N environments (each from ``make``)
     stepped one by one in a plain Python loop that resets each when its episode
     ends and writes its observation into one ``(N, 1, 10, 10)`` array.

2. Agent updates per second: one update of :class:`~neuro.rl.agent.PredictiveAgent`
   on a batch of 64 (the paper's) from a replay buffer of random-policy transitions,
   for the objectives ``model-free``, ``predictive`` with gamma_p = 0 and with
   gamma_p = 0.8, with the ``small``, ``default`` and ``large`` encoders; beside the
   peer, ``plain double DQN``: a minimal update written out below on copies of the
   same encoder and Q head (sample, encode, online argmax and target value of the
   next state, MSE, Adam step). The agent's update is reached through one seam
   (:func:`agent_update`): ``PredictiveAgent._update``, the method ``fit`` calls
   after each environment step, on a 1-episode fitted agent's networks. The
   variants take turns, ``--updates`` updates each, ``--repeat`` times over, and
   the best turn of each is kept, so a change of load on a shared machine falls on
   all alike.

3. Training throughput of a whole ``fit`` (small encoder, predictive gamma_p = 0):
   training env-steps per second, counting the update after each step and the
   greedy evaluation episode after each training episode, and the same with
   evaluation steps counted too.

The summary: the vector env's speed-up over the Python loop (ratio = time per
env-step, vector / loop), the predictive objective's cost over the plain DQN
update (time per update), and ``fit``'s cost per env-step over stepping the
environment alone. ``--quick`` runs a few hundred steps and a handful of updates,
in well under a minute on 2 CPU cores. No numpy peer here, so the BLAS variables
are left as they are.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from _common import Col, Report, best_of, parser, resolve, sync

from neuro.rl.agent import PredictiveAgent
from neuro.rl.envs import make, make_vector
from neuro.rl.replay import ReplayBuffer

TASK = "neuro/GridWorld-v0"
N_ACTIONS = 4
#: The agent's objectives timed in part 2: (label, objective, gamma_p).
OBJECTIVE_ROWS = (
    ("model-free", "model-free", 0.0),
    ("predictive, gamma_p 0", "predictive", 0.0),
    ("predictive, gamma_p 0.8", "predictive", 0.8),
)
PEER = "plain double DQN"


# ----------------------------------------------------------------------------- part 1
def _step_single(env, actions: np.ndarray) -> None:
    """Step one environment through ``actions``, resetting it when an episode ends."""
    env.reset(seed=0)
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            env.reset()


def _step_vector(venv, actions: np.ndarray) -> None:
    """Step a vector environment through ``actions`` (steps, N); it resets copies itself."""
    venv.reset(seed=0)
    for row in actions:
        venv.step(row)


def _step_loop(envs, actions: np.ndarray, out: np.ndarray) -> None:
    """The peer: each of the N environments in turn, per step; observations into ``out``."""
    for i, env in enumerate(envs):
        out[i] = env.reset(seed=i)[0]
    for row in actions:
        for i, env in enumerate(envs):
            obs, _, terminated, truncated, _ = env.step(int(row[i]))
            if terminated or truncated:
                obs, _ = env.reset()
            out[i] = obs


def part_envs(report: Report, args) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    single = rng.integers(N_ACTIONS, size=args.env_steps)
    for label, env in (
        ("GridWorld (unwrapped)", make(TASK).unwrapped),
        ("make (gymnasium wrappers)", make(TASK)),
    ):
        t, _, _ = best_of(lambda env=env: _step_single(env, single), args.repeat)
        rows.append(
            {"how": label, "N": 1, "env_steps": args.env_steps, "seconds": t,
             "env_steps_per_s": args.env_steps / t}
        )  # fmt: skip
        env.close()
    for n in args.num_envs:
        steps = max(1, args.env_steps // n)
        actions = rng.integers(N_ACTIONS, size=(steps, n))
        venv = make_vector(TASK, n)
        envs = [make(TASK) for _ in range(n)]
        out = np.zeros((n, *envs[0].observation_space.shape), dtype=np.float32)
        # the two take turns, so that a change of load falls on both alike
        times: dict[str, list[float]] = {"vector": [], "loop": []}
        _step_vector(venv, actions[:2])
        _step_loop(envs, actions[:2], out)
        for _ in range(args.repeat):
            for key, fn, fn_args in (
                ("vector", _step_vector, (venv, actions)),
                ("loop", _step_loop, (envs, actions, out)),
            ):
                start = time.perf_counter()
                fn(*fn_args)
                times[key].append(time.perf_counter() - start)
        venv.close()
        for env in envs:
            env.close()
        t_vec, t_loop = min(times["vector"]), min(times["loop"])
        rows.append(
            {"how": f"make_vector, N={n}", "N": n, "env_steps": steps * n, "seconds": t_vec,
             "env_steps_per_s": steps * n / t_vec, "vector_steps_per_s": steps / t_vec,
             "vs_loop": t_vec / t_loop}
        )  # fmt: skip
        rows.append(
            {"how": f"Python loop, N={n} (peer)", "N": n, "env_steps": steps * n,
             "seconds": t_loop, "env_steps_per_s": steps * n / t_loop, "vs_loop": 1.0}
        )  # fmt: skip
    report.table(
        [
            Col("how", "environment"),
            Col("N", "N", "{:d}"),
            Col("env_steps", "env-steps", "{:,}"),
            Col("env_steps_per_s", "env-steps/s", "{:,.0f}"),
            Col("vector_steps_per_s", "vector steps/s", "{:,.0f}"),
            Col("vs_loop", "time / Python loop", "{:.2f}"),
        ],
        rows,
        title=(
            f"1. Environment steps on the CPU: {TASK} (grid observations), random actions drawn "
            f"in advance, reset on episode end; best of {args.repeat}"
        ),
    )
    report.note(
        "env-steps/s of make_vector = N x vector steps/s; the Python loop steps the same N "
        "environments (each from make) one by one and resets each itself"
    )
    return rows


# ----------------------------------------------------------------------------- part 2
def fill_buffer(n: int, seed: int = 0) -> ReplayBuffer:
    """A replay buffer of ``n`` transitions of the random policy on the grid."""
    env = make(TASK).unwrapped
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(max(n, 64), env.observation_space.shape)
    obs, _ = env.reset(seed=seed)
    for _ in range(n):
        action = int(rng.integers(N_ACTIONS))
        nxt, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, nxt, terminated, truncated)
        obs = env.reset()[0] if terminated or truncated else nxt
    return buffer


def fitted_agent(objective: str, gamma_p: float, encoder_size: str, device) -> PredictiveAgent:
    """An agent fitted for one episode (its networks built and placed on ``device``)."""
    agent = PredictiveAgent(
        episodes=1,
        objective=objective,
        gamma_p=gamma_p,
        encoder_size=encoder_size,
        eval_max_steps=1,
        device=str(device),
        random_state=0,
    )
    return agent.fit()


def agent_update(agent: PredictiveAgent, buffer: ReplayBuffer, device):
    """``(step, check)``: one of the agent's batched updates, as ``fit`` runs it.

    The seam: ``PredictiveAgent._update(nets, optimizer, buffer, rng, settings,
    weights, run, device)``, the private method ``fit`` calls after each environment
    step, here on the fitted agent's networks with a fresh Adam over the trained
    modules (as ``fit`` builds it) and the settings ``fit`` checks. A public hook
    (e.g. ``PredictiveAgent.update_step(buffer)``) would replace this.
    """
    settings = agent._check_settings()
    nets = agent.networks_.to(device).train()
    params = [p for name, p in nets.named_parameters() if not name.startswith("target_")]
    optimizer = torch.optim.Adam(params, lr=settings["lr"])
    weights = torch.tensor(settings["weights"], device=device)
    rng = np.random.default_rng(1)
    run = {"n_updates": 1}  # not 0: the target copy is synced every target_update updates

    def step():
        return agent._update(nets, optimizer, buffer, rng, settings, weights, run, device)

    def check(losses) -> None:
        if not np.all(np.isfinite(losses)):
            raise SystemExit(f"rl: the agent's losses are not finite: {losses.tolist()}")

    return step, check


def plain_dqn_update(agent: PredictiveAgent, buffer: ReplayBuffer, device):
    """``(step, check)``: the peer, a minimal double-DQN update on copies of the same networks.

    Sample 64 transitions, encode the observations, take the online network's
    greedy action and the target network's value at the next observation (no
    gradient), ``y = r + discount (1 - terminated) Q_target(s', argmax Q(s'))``,
    the MSE of ``Q(s, a)`` to ``y``, an Adam step. No transition model, no
    auxiliary terms.
    """
    nets = copy.deepcopy(agent.networks_).to(device).train()
    encoder, q = nets.encoder, nets.q
    target_encoder, target_q = nets.target_encoder, nets.target_q
    optimizer = torch.optim.Adam([*encoder.parameters(), *q.parameters()], lr=agent.lr)
    rng = np.random.default_rng(1)
    discount, batch_size, every = agent.discount, agent.batch_size, agent.target_update
    count = [1]

    def step():
        if count[0] % every == 0:
            target_encoder.load_state_dict(encoder.state_dict())
            target_q.load_state_dict(q.state_dict())
        b = buffer.batch(buffer.sample(batch_size, rng), device)
        with torch.no_grad():
            greedy = q(encoder(b["next_obs"])).argmax(1, keepdim=True)
            next_value = target_q(target_encoder(b["next_obs"])).gather(1, greedy).squeeze(1)
            y = b["reward"] + discount * (~b["terminated"]).float() * next_value
        values = q(encoder(b["obs"])).gather(1, b["action"].unsqueeze(1)).squeeze(1)
        loss = F.mse_loss(values, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        count[0] += 1
        return loss.detach()

    def check(loss) -> None:
        if not math.isfinite(float(loss)):
            raise SystemExit("rl: the plain DQN loss is not finite")

    return step, check


def time_turns(runs: dict, args, device) -> dict[str, list[float]]:
    """Per variant, every repeat's seconds per update; the variants take turns each repeat."""
    for step, _ in runs.values():
        for _ in range(args.warmup):
            step()
    times: dict[str, list[float]] = {k: [] for k in runs}
    last = {}
    for _ in range(args.repeat):
        for key, (step, _) in runs.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(args.updates):
                last[key] = step()
            sync(device)
            times[key].append((time.perf_counter() - start) / args.updates)
    for key, (_, check) in runs.items():
        check(last[key])
    return times


def part_updates(report: Report, args, device) -> list[dict]:
    buffer = fill_buffer(args.buffer)
    rows = []
    for size in args.encoders:
        print(f"  {size} encoder: building the agents ...", flush=True)
        runs, agents = {}, {}
        for label, objective, gamma_p in OBJECTIVE_ROWS:
            agents[label] = fitted_agent(objective, gamma_p, size, device)
            runs[label] = agent_update(agents[label], buffer, device)
        runs[PEER] = plain_dqn_update(agents["model-free"], buffer, device)
        times = time_turns(runs, args, device)
        base = min(times[PEER])
        encoder = agents["model-free"].networks_.encoder
        n_params = sum(p.numel() for p in encoder.parameters())
        for label in [*(r[0] for r in OBJECTIVE_ROWS), PEER]:
            t = min(times[label])
            rows.append(
                {"encoder": size, "encoder_params": n_params, "update": label,
                 "batch": args.batch, "update_ms": 1e3 * t, "updates_per_s": 1 / t,
                 "vs_plain": t / base, "times": times[label]}
            )  # fmt: skip
    report.table(
        [
            Col("encoder", "encoder"),
            Col("encoder_params", "encoder params", "{:,}"),
            Col("update", "update"),
            Col("batch", "batch", "{:d}"),
            Col("update_ms", "ms/update", "{:.3f}"),
            Col("updates_per_s", "updates/s", "{:,.0f}"),
            Col("vs_plain", "time / plain DQN", "{:.2f}"),
        ],
        rows,
        title=(
            f"2. Agent updates on {device}, float32: PredictiveAgent's batched update beside a "
            f"plain double-DQN update on the same networks, batch {args.batch}, latent 6, "
            f"{args.updates} updates after {args.warmup} warm-up, best of {args.repeat} (the "
            "variants take turns)"
        ),
    )
    report.note(
        "each update samples its batch from the same replay buffer of "
        f"{len(buffer):,} random-policy transitions; the agent's model-free update still runs "
        "the transition model and the anti-collapse terms (with weight 0)"
    )
    return rows


# ----------------------------------------------------------------------------- part 3
def part_fit(report: Report, args, device) -> dict:
    print(f"  fit: {args.fit_episodes} episodes ...", flush=True)
    agent = PredictiveAgent(
        episodes=args.fit_episodes,
        objective="predictive",
        gamma_p=0.0,
        encoder_size="small",
        device=str(device),
        random_state=0,
    )
    start = time.perf_counter()
    agent.fit()
    sync(device)
    seconds = time.perf_counter() - start
    train_steps = int(agent.train_steps_.sum())
    eval_steps = int(agent.eval_steps_.sum())
    row = {
        "episodes": args.fit_episodes,
        "train_steps": train_steps,
        "updates": agent.n_updates_,
        "eval_steps": eval_steps,
        "seconds": seconds,
        "train_steps_per_s": train_steps / seconds,
        "all_steps_per_s": (train_steps + eval_steps) / seconds,
    }
    report.table(
        [
            Col("episodes", "episodes", "{:d}"),
            Col("train_steps", "training steps", "{:,}"),
            Col("updates", "updates", "{:,}"),
            Col("eval_steps", "greedy eval steps", "{:,}"),
            Col("seconds", "seconds", "{:.2f}"),
            Col("train_steps_per_s", "training env-steps/s", "{:,.0f}"),
            Col("all_steps_per_s", "all env-steps/s", "{:,.0f}"),
        ],
        [row],
        title=(
            f"3. Training throughput on {device}: PredictiveAgent.fit (small encoder, predictive "
            "gamma_p 0, batch 64, random behaviour policy), one update per step after the first "
            "batch, a greedy episode after each training episode"
        ),
    )
    return row


# ----------------------------------------------------------------------------- main
def main(argv=None) -> None:
    p = parser(__doc__.split("\n\n")[0], repeat=7)
    p.add_argument(
        "--env-steps", type=int, default=20000, help="env-steps per timing (default 20000)"
    )
    p.add_argument(
        "--num-envs", type=int, nargs="+", default=[8, 64], help="vector sizes (default 8 64)"
    )
    p.add_argument("--updates", type=int, default=50, help="timed updates per turn (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed updates first (default 5)")
    p.add_argument(
        "--buffer", type=int, default=5000, help="transitions in the replay buffer (default 5000)"
    )
    p.add_argument(
        "--encoders",
        nargs="+",
        choices=("small", "default", "large"),
        default=["small", "default", "large"],
    )
    p.add_argument("--fit-episodes", type=int, default=20, help="episodes of fit (default 20)")
    args = p.parse_args(argv)
    device = resolve(args.device)
    if args.quick:
        args.env_steps, args.updates, args.warmup = 2000, 10, 2
        args.buffer, args.fit_episodes = 500, 2
    for name, minimum in (
        ("env_steps", 1),
        ("updates", 1),
        ("warmup", 0),
        ("buffer", 64),
        ("fit_episodes", 1),
        ("repeat", 1),
    ):
        if getattr(args, name) < minimum:
            sys.exit(f"rl: --{name.replace('_', '-')} must be at least {minimum}")
    if min(args.num_envs) < 1:
        sys.exit("rl: --num-envs must be at least 1")
    args.batch = 64  # the paper's; PredictiveAgent's default
    args.encoders = [s for s in ("small", "default", "large") if s in args.encoders]
    report = Report("rl", args, device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report.header(
        f"device {device}, {torch.get_num_threads()} threads; {TASK}; {args.env_steps:,} "
        f"env-steps per timing, vector N={', '.join(map(str, args.num_envs))}; batch "
        f"{args.batch}, encoders {', '.join(args.encoders)}; best of {args.repeat}; load "
        f"average {load:.1f} at the start"
    )
    envs = part_envs(report, args)
    updates = part_updates(report, args, device)
    fit = part_fit(report, args, device)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report.note(f"load average {load_end:.1f} at the end")

    by_env = {r["how"]: r for r in envs}
    for n in args.num_envs:
        vec, loop = by_env[f"make_vector, N={n}"], by_env[f"Python loop, N={n} (peer)"]
        report.add_summary(
            f"vector env, N={n} (speed-up {1 / vec['vs_loop']:.2f}x)",
            f"{vec['env_steps_per_s']:,.0f} env-steps/s",
            f"Python loop {loop['env_steps_per_s']:,.0f} env-steps/s",
            vec["vs_loop"],
        )
    for size in args.encoders:
        by = {r["update"]: r for r in updates if r["encoder"] == size}
        plain = by[PEER]
        for label in ("model-free", "predictive, gamma_p 0.8"):
            ours = by[label]
            report.add_summary(
                f"agent update, {label}, {size} encoder, batch {args.batch}",
                f"{ours['updates_per_s']:,.0f} updates/s",
                f"{PEER} {plain['updates_per_s']:,.0f} updates/s",
                ours["vs_plain"],
            )
    make_row = by_env["make (gymnasium wrappers)"]
    report.add_summary(
        f"fit, {fit['episodes']} episodes (updates + greedy eval)",
        f"{fit['train_steps_per_s']:,.0f} training env-steps/s",
        f"env alone (make) {make_row['env_steps_per_s']:,.0f} env-steps/s",
        make_row["env_steps_per_s"] / fit["train_steps_per_s"],
    )
    report.finish()


if __name__ == "__main__":
    main()
