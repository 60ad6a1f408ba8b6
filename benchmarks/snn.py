"""Spiking networks: the cost of HLOP's projection and Hebbian learning beside GPM and a plain MLP.

Three measurements, each beside its peer, at the paper's PMNIST size (784-800-800-10,
no biases, batch 64, DSR with T = 20; lateral neurons ``[80, 200, 100]`` of finished
tasks and ``[70, 70, 70]`` new ones learning, the state at task 1) and at a small size
(64-100-100-10, the permuted-digits setting: ``[20, 40, 40]`` old and ``[8, 12, 12]``
new):

1. The training step of :class:`~neuro.snn.neurons.SpikingMLP` (forward, ``backward``,
   an SGD step with momentum 0.9) on one batch already on the device, in the order
   :class:`~neuro.snn.continual.ContinualSNN` calls the strategy's hooks:

   * ``no projection``: the network alone (fine-tuning);
   * ``HLOP``: with :class:`~neuro.snn.hlop.HLOP`'s gradient projection through the old
     lateral weights (``after_backward``) and its Oja updates of the new rows on the
     batch's presynaptic activity (``observe``, 5 iterations a batch);
   * ``GPM projection``: with :class:`~neuro.snn.hlop.GPM`'s projection on a basis of the
     same rank as HLOP's old subspace;
   * ``MLP (ReLU)``: a plain, non-spiking PyTorch MLP of the same widths (one pass, no
     time steps), the peer for the network step.

   Time steps per second are ``batch * T / step time`` (a spiking step runs the network
   for ``T`` time steps on each of ``batch`` samples); the MLP has no time steps, so all
   rows also give samples per second. After ``--warmup`` untimed steps each, the four
   take turns: ``--repeat`` times over, each runs ``--steps`` timed steps, and the best
   of each is kept (so a change of load on a shared machine falls on all alike).
2. Learning the subspace of one layer's activity, per layer, on synthetic non-negative
   low-rank rates plus noise (the times do not depend on the values):

   * HLOP: :meth:`~neuro.snn.hlop.HebbianSubspace.learn` on one batch (5 iterations)
     with the old and new rows above; HLOP learns while the task trains, so its cost for
     a task is that times the batches of the task;
   * GPM as :class:`~neuro.snn.hlop.GPM` does it: the task's Gram matrix ``R^T R``
     (its accumulation over the task, timed as one product on the device) and
     :func:`~neuro.snn.hlop.gpm_extend_basis` on it with a basis of HLOP's old rank
     (float64, on the CPU, where ``GPM.after_task`` runs it);
   * the reference GPM's step: a full SVD (``full_matrices=False``, float32, on the
     device) of the stored ``(n, samples)`` activity matrix of the task. From task 1
     on, the reference code runs two such SVDs (of the activity and of its residual);
     one is timed.

   A task holds ``--task-samples`` samples at the paper size (60,000, one PMNIST
   training set) and 1,347 at the small size (the permuted-digits training split).
3. The summary: HLOP's training-step overhead, the spiking step against the MLP, and
   HLOP's subspace learning per task against the exact SVD.

``--quick`` runs 1 timed step after 1 warm-up and 6,000 samples per task at the paper
size, in well under a minute on 2 CPU cores. No numpy peer here, so the BLAS variables
are left as they are.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from _common import Col, Report, best_of, parser, resolve, sync
from torch import nn

from neuro.snn.hlop import GPM, HLOP, HebbianSubspace, gpm_extend_basis
from neuro.snn.neurons import SpikingMLP

#: The two sizes: layer widths, old and new lateral neurons per layer, Oja learning rates,
#: and the samples of one task (None: ``--task-samples``).
SIZES = {
    "small": {
        "sizes": (64, 100, 100, 10),
        "old": (20, 40, 40),
        "new": (8, 12, 12),
        "lr": (0.05, 0.05, 0.05),
        "task_samples": 1347,
    },
    "paper": {
        "sizes": (784, 800, 800, 10),
        "old": (80, 200, 100),
        "new": (70, 70, 70),
        "lr": (1e-3, 1e-2, 1e-2),
        "task_samples": None,
    },
}
OJA_ITERATIONS = 5
GPM_THRESHOLD = 0.97
ACTIVITY_RANK = 40  # rank of the synthetic activity's dominant part


def _net_text(sizes) -> str:
    return "-".join(str(n) for n in sizes)


# ----------------------------------------------------------------------------- networks
def plain_mlp(sizes) -> nn.Sequential:
    """A non-spiking MLP of the same widths: linear layers (no biases) with ReLU between."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(n_in, n_out, bias=False))
    return nn.Sequential(*layers)


def _orthonormal(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    return torch.linalg.qr(torch.randn(n, k, generator=gen, dtype=torch.float64)).Q


def make_strategy(kind: str, spec: dict, net: SpikingMLP):
    """HLOP or GPM in the state of task 1 on ``net`` (None for ``plain``)."""
    if kind == "plain":
        return None
    if kind == "hlop":
        hlop = HLOP(
            lateral=list(spec["old"]),
            added=list(spec["new"]),
            lr=list(spec["lr"]),
            n_iter=OJA_ITERATIONS,
        )
        hlop.before_task(net, 0)
        hlop.after_task(net, 0, [])  # the task-0 rows join the protected subspace
        hlop.before_task(net, 1)  # and new rows start learning
        return hlop
    gpm = GPM(threshold=GPM_THRESHOLD)
    gpm.before_task(net, 1)
    gen = torch.Generator().manual_seed(1)
    weight = net.linear_layers()[0].weight
    gpm.bases = [
        _orthonormal(layer.in_features, k, gen).to(weight.device, weight.dtype)
        for layer, k in zip(net.linear_layers(), spec["old"], strict=True)
    ]
    return gpm


def _batch(sizes, args, device) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(args.batch, sizes[0], generator=gen).to(device)
    y = torch.randint(0, sizes[-1], (args.batch,), generator=gen).to(device)
    return x, y


def snn_step(kind: str, spec: dict, args, device):
    """``(step, check, T)``: one SNN training step with strategy ``kind``, and a final check.

    The step runs the hooks in :class:`~neuro.snn.continual.ContinualSNN`'s order: the
    loss, ``observe`` (HLOP's Oja updates), ``backward``, ``after_backward`` (the
    projection), the SGD step.
    """
    torch.manual_seed(0)
    net = SpikingMLP(spec["sizes"], method=args.method, T=args.T).to(device).train()
    strategy = make_strategy(kind, spec, net)
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    x, y = _batch(spec["sizes"], args, device)

    def step():
        loss = net.loss(x, y)
        if strategy is not None:
            strategy.observe(net)  # HLOP: Oja on this batch's activity; GPM: nothing
        loss.backward()
        if strategy is not None:
            strategy.after_backward(net)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    def check(loss) -> None:
        if not math.isfinite(float(loss.detach())):
            raise SystemExit(f"snn: the {kind} training loss is not finite")
        if kind == "hlop" and not all(bool(s.weight.isfinite().all()) for s in strategy.subspaces):
            raise SystemExit("snn: HLOP's lateral weights are not finite after the timed steps")

    return step, check, net.T


def mlp_step(spec: dict, args, device):
    """``(step, check, None)``: one training step of the plain MLP of the same widths."""
    torch.manual_seed(0)
    net = plain_mlp(spec["sizes"]).to(device).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x, y = _batch(spec["sizes"], args, device)

    def step():
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    def check(loss) -> None:
        if not math.isfinite(float(loss.detach())):
            raise SystemExit("snn: the MLP training loss is not finite")

    return step, check, None


def time_steps(kinds, spec: dict, args, device) -> dict[str, dict]:
    """Per kind, the best seconds per step; the kinds take turns in every repeat.

    Each kind runs ``args.warmup`` untimed steps, then, ``args.repeat`` times over,
    every kind runs ``args.steps`` timed steps in turn, so that a change of load on a
    shared machine falls on all of them alike.
    """
    runs = {k: (mlp_step(spec, args, device) if k == "mlp" else snn_step(k, spec, args, device))
            for k in kinds}  # fmt: skip
    for step, _, _ in runs.values():
        for _ in range(args.warmup):
            step()
    times: dict[str, list[float]] = {k: [] for k in kinds}
    last = {}
    for _ in range(args.repeat):
        for kind, (step, _, _) in runs.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                last[kind] = step()
            sync(device)
            times[kind].append(time.perf_counter() - start)
    out = {}
    for kind, (_, check, T) in runs.items():
        check(last[kind])
        out[kind] = {"seconds": min(times[kind]) / args.steps, "times": times[kind], "T": T}
    return out


# ----------------------------------------------------------------------------- part 1
STEP_ROWS = (
    ("plain", "SpikingMLP, no projection"),
    ("hlop", "SpikingMLP + HLOP"),
    ("gpm", "SpikingMLP + GPM projection"),
    ("mlp", "MLP (ReLU), not spiking"),
)


def part_steps(report: Report, args, device) -> list[dict]:
    rows = []
    for size in args.sizes:
        spec = SIZES[size]
        print(f"  {size} size: the training steps ...", flush=True)
        timed = time_steps([kind for kind, _ in STEP_ROWS], spec, args, device)
        base = timed["plain"]["seconds"]
        for kind, label in STEP_ROWS:
            res = timed[kind]
            seconds = res["seconds"]
            old = "/".join(map(str, spec["old"]))
            lateral = {
                "hlop": f"{old} old + {'/'.join(map(str, spec['new']))} new",
                "gpm": f"basis {old}",
            }
            rows.append(
                {
                    "size": size,
                    "net": _net_text(spec["sizes"]),
                    "model": label,
                    "kind": kind,
                    "subspace": lateral.get(kind, "-"),
                    "T": res["T"],
                    "batch": args.batch,
                    "step_ms": 1e3 * seconds,
                    "samples_per_s": args.batch / seconds,
                    "time_steps_per_s": (
                        None if res["T"] is None else args.batch * res["T"] / seconds
                    ),
                    "vs_plain": seconds / base,
                    "times": res["times"],
                }
            )
    report.table(
        [
            Col("size", "size"),
            Col("net", "network"),
            Col("model", "model"),
            Col("subspace", "lateral / basis per layer"),
            Col("step_ms", "ms/step", "{:.2f}"),
            Col("samples_per_s", "samples/s", "{:,.0f}"),
            Col("time_steps_per_s", "time steps/s", "{:,.0f}"),
            Col("vs_plain", "time / no projection", "{:.2f}"),
        ],
        rows,
        title=(
            f"1. Training step on {device}, float32: forward, backward, SGD (momentum 0.9) on one "
            f"batch of {args.batch}, {args.method.upper()} T={rows[0]['T']}; {args.steps} steps "
            f"after {args.warmup} warm-up, best of {args.repeat} (the models take turns)"
        ),
    )
    report.note(
        "time steps/s = batch x T / step time (the spiking network runs T time steps per "
        "sample; the MLP has none). HLOP: gradient projection through the old lateral rows and "
        f"{OJA_ITERATIONS} Oja iterations of the new rows per batch; GPM: projection only, on a "
        "basis of the same rank"
    )
    return rows


# ----------------------------------------------------------------------------- part 2
def synthetic_activity(n_samples: int, n: int, device, seed: int) -> torch.Tensor:
    """``(n_samples, n)`` non-negative rates: a rank-``ACTIVITY_RANK`` part plus noise."""
    gen = torch.Generator().manual_seed(seed)
    rank = min(ACTIVITY_RANK, n)
    mix = torch.rand(rank, n, generator=gen).to(device)
    act = torch.empty(n_samples, n, device=device)
    for start in range(0, n_samples, 8192):  # in chunks, to keep the peak memory low
        stop = min(n_samples, start + 8192)
        z = torch.rand(stop - start, rank, generator=gen).to(device)
        act[start:stop] = z @ mix / rank + 0.05 * torch.rand(stop - start, n, generator=gen).to(
            device
        )
    return act


def part_subspace(report: Report, args, device) -> list[dict]:
    rows = []
    cpu = torch.device("cpu")
    for size in args.sizes:
        spec = SIZES[size]
        n_samples = spec["task_samples"] or args.task_samples
        batches = math.ceil(n_samples / args.batch)
        for i, n in enumerate(spec["sizes"][:-1]):
            old, new = spec["old"][i], spec["new"][i]
            print(f"  {size} size, layer {i} ({n} inputs, {n_samples:,} samples) ...", flush=True)
            act = synthetic_activity(n_samples, n, device, seed=10 + i)
            batch = act[: args.batch].contiguous()

            sub = HebbianSubspace(n, device=device)
            sub.add_neurons(old, generator=3)
            sub.merge()
            sub.add_neurons(new, generator=4)
            t_learn, _, _ = best_of(
                lambda sub=sub, batch=batch, lr=spec["lr"][i]: sub.learn(
                    batch, lr=lr, n_iter=OJA_ITERATIONS
                ),
                args.repeat,
                device,
            )
            if not bool(sub.weight.isfinite().all()):
                raise SystemExit(f"snn: the lateral weights of layer {i} are not finite")

            t_gram, _, gram = best_of(lambda act=act: act.T @ act, args.repeat, device)
            gram_cpu = gram.to(cpu)
            basis = _orthonormal(n, old, torch.Generator().manual_seed(5))
            t_extend, _, extended = best_of(
                lambda g=gram_cpu, b=basis: gpm_extend_basis(g, b, GPM_THRESHOLD),
                args.repeat,
                cpu,
            )
            stored = act.T.contiguous()  # (n, samples), as the reference keeps it
            del act, gram
            svd_repeat = args.repeat if n_samples * n <= 2e7 else 1
            t_svd, _, (_, s, _) = best_of(
                lambda m=stored: torch.linalg.svd(m, full_matrices=False),
                svd_repeat,
                device,
                warmup=1 if svd_repeat > 1 else 0,
            )
            if not bool(torch.isfinite(s).all()):
                raise SystemExit(f"snn: the SVD of layer {i} is not finite")
            del stored
            hlop_task = t_learn * batches
            gpm_task = t_gram + t_extend
            rows.append(
                {
                    "size": size,
                    "layer": i,
                    "n": n,
                    "lateral": f"{old} + {new}",
                    "samples": n_samples,
                    "batches": batches,
                    "learn_ms": 1e3 * t_learn,
                    "hlop_task_s": hlop_task,
                    "gram_s": t_gram,
                    "extend_s": t_extend,
                    "added": extended.shape[1] - old,
                    "gpm_task_s": gpm_task,
                    "svd_s": t_svd,
                    "hlop_vs_svd": hlop_task / t_svd,
                }
            )
    report.table(
        [
            Col("size", "size"),
            Col("layer", "layer", "{:d}"),
            Col("n", "inputs", "{:d}"),
            Col("lateral", "old + new rows"),
            Col("samples", "task samples", "{:,}"),
            Col("learn_ms", "HLOP learn ms/batch", "{:.3f}"),
            Col("hlop_task_s", "HLOP s/task", "{:.3f}"),
            Col("gram_s", "GPM Gram s", "{:.4f}"),
            Col("extend_s", "GPM extend s", "{:.4f}"),
            Col("gpm_task_s", "GPM s/task", "{:.4f}"),
            Col("svd_s", "full SVD s", "{:.3f}"),
            Col("hlop_vs_svd", "HLOP / SVD", "{:.2f}"),
        ],
        rows,
        title=(
            f"2. Learning one layer's subspace on {device}: HebbianSubspace.learn on a batch of "
            f"{args.batch} ({OJA_ITERATIONS} iterations) beside GPM's exact step and a full SVD; "
            f"best of {args.repeat}"
        ),
    )
    report.note(
        "HLOP s/task = learn ms/batch x the task's batches (HLOP learns while the task trains). "
        "GPM s/task = the task's Gram matrix R^T R (one product on the device) + gpm_extend_basis "
        f"(threshold {GPM_THRESHOLD}, an old basis of HLOP's old rank; float64 on the CPU, as "
        "GPM.after_task runs it). full SVD: torch.linalg.svd of the stored (inputs, samples) "
        "activity, float32 on the device, as the reference GPM does (two of them per task from "
        "task 1 on; one timed; best of 1 when the matrix exceeds 2e7 entries)"
    )
    return rows


# ----------------------------------------------------------------------------- main
def main(argv=None) -> None:
    p = parser(__doc__.split("\n\n")[0], repeat=3)
    p.add_argument("--batch", type=int, default=64, help="samples per step (default 64)")
    p.add_argument(
        "--method",
        default="dsr",
        choices=("dsr", "bptt", "ottt"),
        help="SpikingMLP training method (default dsr)",
    )
    p.add_argument("--T", type=int, default=None, help="time steps (default: the method's, 20)")
    p.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    p.add_argument(
        "--task-samples",
        type=int,
        default=60000,
        help="samples of one task at the paper size (default 60000, a PMNIST training set)",
    )
    p.add_argument(
        "--sizes",
        nargs="+",
        choices=tuple(SIZES),
        default=list(SIZES),
        help="which sizes to run (default: small paper)",
    )
    args = p.parse_args(argv)
    device = resolve(args.device)
    if args.quick:
        args.steps, args.warmup, args.task_samples = 1, 1, 6000
    for name, minimum in (("batch", 1), ("steps", 1), ("warmup", 0), ("task_samples", 1)):
        if getattr(args, name) < minimum:
            sys.exit(f"snn: --{name.replace('_', '-')} must be at least {minimum}")
    if args.T is not None and args.T < 1:
        sys.exit("snn: --T must be at least 1")
    if args.repeat < 1:
        sys.exit("snn: --repeat must be at least 1")
    args.sizes = [s for s in SIZES if s in args.sizes]  # small first, once each
    report = Report("snn", args, device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report.header(
        f"device {device}, {torch.get_num_threads()} threads, float32; batch {args.batch}, "
        f"{args.method.upper()}, sizes {', '.join(args.sizes)}; paper-size task of "
        f"{args.task_samples:,} samples; best of {args.repeat}; load average {load:.1f} at the "
        "start"
    )
    steps = part_steps(report, args, device)
    subspace = part_subspace(report, args, device)
    sync(device)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report.note(f"load average {load_end:.1f} at the end")

    for size in args.sizes:
        by = {r["kind"]: r for r in steps if r["size"] == size}
        plain, hlop, mlp = by["plain"], by["hlop"], by["mlp"]
        net = f"{size} size ({plain['net']}, batch {args.batch})"
        report.add_summary(
            f"SNN step with HLOP, {net}",
            f"{hlop['time_steps_per_s']:,.0f} time steps/s",
            f"no projection {plain['time_steps_per_s']:,.0f} time steps/s",
            hlop["vs_plain"],
        )
        report.add_summary(
            f"SNN step (T={plain['T']}) vs MLP, {net}",
            f"{plain['samples_per_s']:,.0f} samples/s",
            f"MLP (ReLU) {mlp['samples_per_s']:,.0f} samples/s",
            plain["step_ms"] / mlp["step_ms"],
        )
        layers = [r for r in subspace if r["size"] == size]
        hlop_task = sum(r["hlop_task_s"] for r in layers)
        svd_task = sum(r["svd_s"] for r in layers)
        gpm_task = sum(r["gpm_task_s"] for r in layers)
        report.add_summary(
            f"subspace learning per task, {size} size ({layers[0]['samples']:,} samples)",
            f"HLOP {hlop_task:.3g} s (GPM Gram + eigh {gpm_task:.3g} s)",
            f"full SVD {svd_task:.3g} s",
            hlop_task / svd_task,
        )
    report.finish()


if __name__ == "__main__":
    main()
