"""Neuroformer: training speed and memory, fused against plain attention, cached generation.

Three measurements of :class:`~neuro.spikes.model.NeuroformerModule` on
synthetic token batches (the times do not depend on the values or on the
weights, so the networks are freshly initialised and never trained):

1. Training throughput and peak memory at a small size (the estimator's
   defaults: d_model 64, 4 heads, one block per stage, blocks of 64 current
   and 192 past tokens) and at the paper's size (``PAPER_SIZE``: d_model
   256, 8 heads, 6 self + 6 cross + 6 final blocks, 6 frame blocks, blocks
   of 100 and 700 tokens, with the contrastive heads), both with a video
   stimulus of 3 frames of 30 x 100 pixels (the paper's) and 300 neurons;
   the parameter count of each is printed. One step is the module's loss
   (:meth:`~neuro.spikes.model.NeuroformerModule.loss`), ``backward`` and an
   AdamW step on one batch already on the device; after ``--warmup`` steps,
   ``--steps`` steps are timed ``--repeat`` times and the best is kept.
   Batches look like tokenised spikes: ``[SOS]``, neuron ids in range with
   sorted dts inside the window, ``[EOS]``, then PAD to the block; each
   sample fills half to all of its block (current and past alike). Tokens
   per second count the non-PAD *current* tokens (SOS, spikes and EOS: the
   positions the loss reads from), not the past ones. Each configuration
   runs in a fresh process (``--quick``: one after another in this one).
2. The same training step with every attention through
   :func:`torch.nn.functional.scaled_dot_product_attention` (``fused``,
   the module's default) beside the explicit ``softmax(Q K^T / sqrt(d)) V``
   (``Attention.fused = False`` on every attention module), both measured
   in part 1, with the time ratio and the largest absolute differences of
   the logits and of the loss between the two on one batch (eval mode, so
   that dropout draws no masks). The training runs use the estimator's
   dropout (0.1) unless ``--dropout`` says otherwise: PyTorch's fused CPU
   kernel takes no dropout, so on a CPU, training with dropout, SDPA runs
   its unfused path and gains nothing on the plain product; ``--dropout 0``
   times the fused kernel (on a loaded 2-core CPU it then takes about 0.7 to
   0.85 of the plain product's time).
3. Generation (:meth:`~neuro.spikes.model.NeuroformerModule.generate`) at
   the paper's size with the key/value cache (one single-token step per
   token) beside without it (the whole prefix again at every step), for
   ``--gen-tokens`` tokens per sample (16, 48 and 99 of a block of 100):
   tokens per second, the speed-up, and whether both produced the same
   tokens from the same seed. So that every run produces exactly ``T``
   tokens, EOS is suppressed on the benchmark's network (the id head's bias of
   ``eos_id`` set to -1e4).

Memory: on a CPU, the peak resident set size above what the process held
once the imports and the batch were in (Linux: the peak is reset through
``/proc/self/clear_refs``), which counts parameters, gradients, AdamW state,
activations and the allocator's caches; on CUDA,
``torch.cuda.max_memory_allocated()`` above what was allocated once the
batch was on the GPU. The table says which. The load average is printed at
the start and at the end: on a shared machine the times are only as good as
it is quiet. On a CPU the paper size trains on ``--paper-batch`` (default 4)
samples per step; ``--quick`` runs 1 paper-size step on 1 sample, 8 small
samples, and generates 8 and 24 tokens for 1 sample, in well under a minute
on 2 CPU cores. No numpy peer here, so the BLAS variables are left as they
are.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys

from _common import Col, Report, best_of, parser, resolve, time_training
from encoders_deep import Memory

N_NEURONS = 300  # a recording of a few hundred neurons, as the paper's
FRAME_SHAPE = (3, 30, 100)  # the paper's clip: 3 frames of 30 x 100 pixels before the window
CONTRASTIVE_DIM = 256  # with it the paper-size network has ~24M parameters, as the paper's
PAPER_BATCH = 160  # the paper's batch (CUDA)
GEN_TOKENS = (16, 48, 99)


# ----------------------------------------------------------------------------- settings
def net_sizes(size: str) -> dict:
    """Network sizes: the estimator's defaults (``small``) or ``PAPER_SIZE`` (``paper``)."""
    import inspect

    from neuro.spikes import Neuroformer
    from neuro.spikes.model import PAPER_SIZE

    if size == "paper":
        return dict(PAPER_SIZE, contrastive_dim=CONTRASTIVE_DIM)
    params = inspect.signature(Neuroformer).parameters
    names = (*PAPER_SIZE, "contrastive_dim")
    return {name: params[name].default for name in names}


def config(size: str, dropout: float | None = None):
    """The :class:`~neuro.spikes.model.NeuroformerConfig` of one size (the paper's windows).

    ``dropout`` None: the estimator's default, at both sizes.
    """
    import inspect

    from neuro.spikes import Neuroformer
    from neuro.spikes.model import NeuroformerConfig
    from neuro.spikes.tokenizer import SpikeTokenizer

    sizes = net_sizes(size)
    tok = SpikeTokenizer(
        N_NEURONS, block_size=sizes["block_size"], past_block_size=sizes["past_block_size"]
    )
    if dropout is None:
        dropout = inspect.signature(Neuroformer).parameters["dropout"].default
    return NeuroformerConfig(
        n_neurons=N_NEURONS, n_dt=tok.n_dt, frame_shape=FRAME_SHAPE, dropout=dropout, **sizes
    )


def _tokenizer(cfg):
    from neuro.spikes.tokenizer import SpikeTokenizer

    return SpikeTokenizer(
        cfg.n_neurons, block_size=cfg.block_size, past_block_size=cfg.past_block_size
    )


def _net_text(cfg) -> str:
    layers = f"{cfg.n_self_layers}+{cfg.n_cross_layers}+{cfg.n_final_layers}"
    text = f"d{cfg.d_model} h{cfg.n_heads} L{layers} F{cfg.n_frame_layers}"
    text += f" block {cfg.block_size}/{cfg.past_block_size}"
    text += f" c{cfg.contrastive_dim}" if cfg.contrastive_dim else ""
    return text + f" p{cfg.dropout:g}"


# ----------------------------------------------------------------------------- data
def _rows(n: int, block: int, n_bins: int, tok, gen):
    """``(ids, dts)`` ``(n, block)``: SOS, ``block/2 .. block-2`` spikes with sorted dts, EOS, PAD."""
    import torch

    lo = max(1, block // 2)
    n_spikes = torch.randint(lo, block - 1, (n, 1), generator=gen)
    pos = torch.arange(block)[None]
    spike = (pos >= 1) & (pos <= n_spikes)
    ids = torch.randint(0, tok.n_neurons, (n, block), generator=gen)
    ids = torch.where(spike, ids, torch.full_like(ids, tok.pad_id))
    # uniform times in the window, sorted (the n spikes' first), then one place right (after SOS)
    when = torch.rand(n, block, generator=gen).masked_fill(~spike, 2.0)
    when = when.sort(dim=1).values.roll(1, dims=1)
    dts = (when * n_bins).long().clamp_max(n_bins - 1)
    dts = torch.where(spike, dts, torch.full_like(dts, tok.pad_dt))
    ids[:, 0], dts[:, 0] = tok.sos_id, tok.sos_dt
    eos = pos == n_spikes + 1
    ids = ids.masked_fill(eos, tok.eos_id)
    dts = dts.masked_fill(eos, tok.eos_dt)
    return ids, dts


def make_batch(cfg, batch: int, seed: int = 0) -> dict:
    """A batch as the tokeniser writes it, with the stimulus clip of each sample."""
    import torch

    tok = _tokenizer(cfg)
    gen = torch.Generator().manual_seed(seed)
    ids, dts = _rows(batch, cfg.block_size, tok.n_bins, tok, gen)
    past_ids, past_dts = _rows(batch, cfg.past_block_size, tok.past_n_bins, tok, gen)
    frames = torch.randn(batch, *cfg.frame_shape, generator=gen)
    return {"ids": ids, "dts": dts, "past_ids": past_ids, "past_dts": past_dts, "frames": frames}


def _to(batch: dict, device) -> dict:
    return {key: value.to(device) for key, value in batch.items()}


def set_fused(net, fused: bool) -> None:
    """Route every attention of ``net`` through SDPA (True) or the explicit softmax (False)."""
    from neuro.spikes.model import Attention

    for module in net.modules():
        if isinstance(module, Attention):
            module.fused = fused


def build(cfg, device, fused: bool = True, seed: int = 0):
    """The network of ``cfg`` on ``device``, initialised from ``seed``."""
    import torch

    from neuro.spikes.model import NeuroformerModule

    torch.manual_seed(seed)
    net = NeuroformerModule(cfg).to(device)
    set_fused(net, fused)
    return net


# ----------------------------------------------------------------------------- workers
def work_train(spec: dict, device) -> dict:
    """Time ``steps`` AdamW steps of one size with one attention; measure the peak memory."""

    cfg = config(spec["size"], spec["dropout"])
    batch = _to(make_batch(cfg, spec["batch"]), device)
    tokens = int((batch["ids"] != cfg.pad_id).sum())
    with Memory(device) as mem:
        net = build(cfg, device, fused=spec["fused"]).train()
        times, loss = time_training(
            lambda: net.loss(batch)["loss"],
            net.parameters(),
            device,
            warmup=spec["warmup"],
            steps=spec["steps"],
            repeat=spec["repeat"],
        )
    if not math.isfinite(loss):
        raise SystemExit(f"neuroformer: the {spec['size']} training loss is not finite")
    return {
        "seconds": min(times),
        "times": times,
        "params": int(sum(p.numel() for p in net.parameters())),
        "tokens": tokens,
        "mem_mib": mem.mib,
        "gpu_total_mib": mem.gpu_total_mib,
        "own_peak": mem.own_peak,
    }


WORKERS = {"train": work_train}


def run_worker(mode: str, spec: dict, device, fresh: bool = True) -> dict:
    """Run one worker in a fresh process (or, ``fresh=False``, in this one); return its JSON."""
    if not fresh:
        return json.loads(json.dumps(WORKERS[mode](spec, device)))
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", mode, json.dumps(spec)]
    cmd += ["--device", str(device)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    if proc.returncode != 0:
        raise SystemExit(f"neuroformer: the {mode} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- parts
def _batches(args, on_cpu: bool) -> dict[str, int]:
    if args.quick:
        return {"small": 8, "paper": 1}
    paper = args.paper_batch or (4 if on_cpu else PAPER_BATCH)
    return {"small": args.small_batch, "paper": paper}


def part_training(report: Report, args, device, on_cpu: bool) -> list[dict]:
    batches = _batches(args, on_cpu)
    rows = []
    for size in ("small", "paper"):
        cfg = config(size, args.dropout)
        for fused in (True, False):
            attention = "SDPA" if fused else "plain"
            print(f"  train {size} size, {attention} attention ...", flush=True)
            spec = {
                "size": size,
                "fused": fused,
                "dropout": args.dropout,
                "batch": batches[size],
                "steps": args.steps,
                "warmup": args.warmup,
                "repeat": args.repeat,
            }
            res = run_worker("train", spec, device, fresh=not args.quick)
            steps_per_s = args.steps / res["seconds"]
            rows.append(
                {
                    "size": size,
                    "attention": attention,
                    "net": _net_text(cfg),
                    "params": res["params"],
                    "batch": batches[size],
                    "tokens_per_step": res["tokens"],
                    "step_ms": 1e3 * res["seconds"] / args.steps,
                    "steps_per_s": steps_per_s,
                    "tokens_per_s": res["tokens"] * steps_per_s,
                    "mem_mib": res["mem_mib"],
                    "gpu_total_mib": res.get("gpu_total_mib"),
                    "times": res["times"],
                }
            )
    report.table(
        [
            Col("size", "size"),
            Col("attention", "attention"),
            Col("net", "network"),
            Col("params", "params", "{:,}"),
            Col("batch", "batch"),
            Col("tokens_per_step", "tokens/step", "{:,}"),
            Col("step_ms", "ms/step", "{:.1f}"),
            Col("tokens_per_s", "tokens/s", "{:,.0f}"),
            Col("mem_mib", "peak MiB", "{:.0f}"),
        ],
        rows,
        title=(
            f"1. Training throughput on {device}, float32: {args.steps} steps (loss, backward, "
            f"AdamW) after {args.warmup} warm-up, one batch on the device; best of {args.repeat}"
        ),
    )
    report.note(
        f"{N_NEURONS} neurons, a {FRAME_SHAPE[0]} x {FRAME_SHAPE[1]} x {FRAME_SHAPE[2]} stimulus "
        "clip per sample; network: d_model, heads, self+cross+final blocks, frame blocks, "
        "current/past block, contrastive dim, dropout. tokens: the non-PAD current tokens of a batch "
        "(SOS, spikes, EOS; past tokens not counted). "
        + (
            "peak MiB: torch.cuda.max_memory_allocated() above the batch on the GPU"
            if not on_cpu
            else "peak MiB: the peak resident set (RSS) above what the process held after the "
            "imports and the batch (parameters, gradients, AdamW state, activations, caches)"
        )
    )
    if args.quick:
        report.note(
            "--quick: the configurations run one after another in this process (memory freed "
            "between them), not each in a fresh process: the peak MiB are approximate"
        )
    return rows


def part_attention(report: Report, args, device, train: list[dict]) -> list[dict]:
    """Ratio of the step times of part 1, and the difference of logits and losses."""
    import torch

    rows = []
    for size in ("small", "paper"):
        cfg = config(size, args.dropout)
        batch = _to(make_batch(cfg, min(4, _batches(args, device.type != "cuda")[size]), 1), device)
        net = build(cfg, device).eval()
        outs = {}
        with torch.no_grad():
            for fused in (True, False):
                set_fused(net, fused)
                out = net(
                    batch["ids"],
                    batch["dts"],
                    batch["past_ids"],
                    batch["past_dts"],
                    batch["frames"],
                )
                outs[fused] = (out["id_logits"], out["dt_logits"], net.loss(batch)["loss"])
        logits_diff = max(float((outs[True][i] - outs[False][i]).abs().max()) for i in range(2))
        loss_diff = float((outs[True][2] - outs[False][2]).abs())
        fused_row, plain_row = (r for r in train if r["size"] == size)
        rows.append(
            {
                "size": size,
                "net": fused_row["net"],
                "sdpa_ms": fused_row["step_ms"],
                "plain_ms": plain_row["step_ms"],
                "ratio": fused_row["step_ms"] / plain_row["step_ms"],
                "sdpa_mib": fused_row["mem_mib"],
                "plain_mib": plain_row["mem_mib"],
                "logits_diff": logits_diff,
                "loss_diff": loss_diff,
                "logit_scale": float(outs[False][0].abs().max()),
            }
        )
        del net
    report.table(
        [
            Col("size", "size"),
            Col("net", "network"),
            Col("sdpa_ms", "SDPA ms/step", "{:.1f}"),
            Col("plain_ms", "plain ms/step", "{:.1f}"),
            Col("ratio", "SDPA/plain time", "{:.2f}"),
            Col("sdpa_mib", "SDPA peak MiB", "{:.0f}"),
            Col("plain_mib", "plain peak MiB", "{:.0f}"),
            Col("logits_diff", "max |logits diff|", "{:.1e}"),
            Col("loss_diff", "|loss diff|", "{:.1e}"),
        ],
        rows,
        title=(
            "2. Attention in the training step: scaled_dot_product_attention (the default) beside "
            "softmax(QK^T/sqrt(d))V (Attention.fused = False), the times of table 1"
        ),
    )
    report.note(
        "diffs: one batch of up to 4 samples through the same weights both ways, eval mode "
        f"(no dropout masks); logits are of order {max(r['logit_scale'] for r in rows):.1f}"
    )
    dropout = config("small", args.dropout).dropout
    if device.type == "cpu" and dropout > 0:
        report.note(
            f"on the CPU, PyTorch's fused attention kernel takes no dropout: training with "
            f"dropout {dropout:g}, SDPA runs its unfused path; --dropout 0 times the fused kernel"
        )
    return rows


def part_generation(report: Report, args, device) -> list[dict]:
    """Cached against uncached generation at the paper size, for each ``T`` of ``--gen-tokens``."""
    import torch

    cfg = config("paper")
    batch = _to(make_batch(cfg, args.gen_batch, 2), device)
    net = build(cfg, device).eval()  # this part's own network: changing it harms nothing
    with torch.no_grad():
        net.id_head.bias[cfg.eos_id] = -1e4  # no sample stops early: each makes exactly T tokens
    tok = _tokenizer(cfg)

    def run(n_tokens: int, use_cache: bool):
        gen = torch.Generator(device=device).manual_seed(0)
        return net.generate(
            batch["past_ids"],
            batch["past_dts"],
            batch["frames"],
            max_tokens=n_tokens,
            generator=gen,
            use_cache=use_cache,
            sos_dt=tok.sos_dt,
        )

    for use_cache in (True, False):  # warm-up, short
        run(min(4, min(args.gen_tokens)), use_cache)
    rows = []
    for n_tokens in args.gen_tokens:
        print(f"  generate {n_tokens} tokens x {args.gen_batch} samples ...", flush=True)
        row = {"tokens": n_tokens, "batch": args.gen_batch}
        outs = {}
        for use_cache, name in ((True, "cached"), (False, "uncached")):
            seconds, _, outs[name] = best_of(
                lambda n=n_tokens, c=use_cache: run(n, c), args.repeat, device, warmup=0
            )
            row[f"{name}_s"] = seconds
            row[f"{name}_tps"] = n_tokens * args.gen_batch / seconds
        (ids_c, dts_c), (ids_u, dts_u) = outs["cached"], outs["uncached"]
        if ids_c.shape[1] != n_tokens + 1:
            raise SystemExit(
                f"neuroformer: generation stopped after {ids_c.shape[1] - 1} of {n_tokens} tokens"
            )
        row["same"] = "yes" if torch.equal(ids_c, ids_u) and torch.equal(dts_c, dts_u) else "no"
        row["speedup"] = row["uncached_s"] / row["cached_s"]
        rows.append(row)
    report.table(
        [
            Col("tokens", "T tokens", "{:d}"),
            Col("batch", "samples", "{:d}"),
            Col("cached_s", "cached s", "{:.3f}"),
            Col("uncached_s", "uncached s", "{:.3f}"),
            Col("cached_tps", "cached tokens/s", "{:,.0f}"),
            Col("uncached_tps", "uncached tokens/s", "{:,.0f}"),
            Col("speedup", "speed-up", "{:.2f}"),
            Col("same", "same tokens"),
        ],
        rows,
        title=(
            f"3. Generation on {device} at the paper size ({_net_text(cfg)}): "
            "generate(use_cache=True) beside use_cache=False, sampled from one seed; "
            f"best of {args.repeat}"
        ),
    )
    report.note(
        "EOS suppressed (id_head bias of eos_id set to -1e4 on this part's own network) so that "
        "each run generates exactly T tokens per sample; tokens/s = samples x T / seconds; the "
        "context (past window and frames) is encoded once per call in both"
    )
    return rows


# ----------------------------------------------------------------------------- main
def main(argv=None) -> None:
    p = parser(__doc__.split("\n\n")[0], repeat=2)
    p.add_argument("--steps", type=int, default=3, help="timed optimizer steps (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    p.add_argument(
        "--small-batch", type=int, default=64, help="samples per step, small size (default 64)"
    )
    p.add_argument(
        "--paper-batch",
        type=int,
        default=None,
        help=f"samples per step, paper size (default: {PAPER_BATCH} on CUDA, 4 on the CPU)",
    )
    p.add_argument(
        "--gen-tokens",
        type=int,
        nargs="+",
        default=None,
        help="tokens generated per sample (default 16 48 99; --quick: 8 24)",
    )
    p.add_argument(
        "--gen-batch",
        type=int,
        default=None,
        help="samples generated at once (default: 16 on CUDA, 2 on the CPU; --quick: 1)",
    )
    p.add_argument(
        "--dropout",
        type=float,
        default=None,
        help="dropout of the training runs (default: the estimator's, 0.1)",
    )
    p.add_argument("--_worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._worker:
        mode, spec = args._worker[0], json.loads(args._worker[1])
        print(json.dumps(WORKERS[mode](spec, resolve(args.device))))
        return
    device = resolve(args.device)
    on_cpu = device.type != "cuda"
    if args.quick:
        args.steps, args.warmup = 1, 1
    if args.gen_tokens is None:
        args.gen_tokens = [8, 24] if args.quick else list(GEN_TOKENS)
    if args.gen_batch is None:
        args.gen_batch = 1 if args.quick else (2 if on_cpu else 16)
    block = config("paper").block_size
    for name in ("steps", "small_batch", "gen_batch"):
        if getattr(args, name) < 1:
            sys.exit(f"neuroformer: --{name.replace('_', '-')} must be at least 1")
    if args.dropout is not None and not 0 <= args.dropout < 1:
        sys.exit(f"neuroformer: --dropout must lie in [0, 1); got {args.dropout}")
    if args.warmup < 0 or (args.paper_batch is not None and args.paper_batch < 1):
        sys.exit("neuroformer: --warmup must be at least 0 and --paper-batch at least 1")
    if not all(1 <= t <= block - 1 for t in args.gen_tokens):
        sys.exit(f"neuroformer: --gen-tokens must lie in [1, {block - 1}] (a block of {block})")
    report = Report("neuroformer", args, device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    batches = _batches(args, on_cpu)
    report.header(
        f"device {device}, CPU threads {os.cpu_count()}, float32, {N_NEURONS} neurons, batch "
        f"{batches['small']} (small) / {batches['paper']} (paper), {args.steps} steps, "
        f"generation of {'/'.join(map(str, args.gen_tokens))} tokens x {args.gen_batch}, "
        f"best of {args.repeat}; load average {load:.1f} at the start"
    )
    train = part_training(report, args, device, on_cpu)
    attention = part_attention(report, args, device, train)
    generation = part_generation(report, args, device)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report.note(f"load average {load_end:.1f} at the end")

    for row in attention:
        fused, plain = (r for r in train if r["size"] == row["size"])
        report.add_summary(
            f"training, {row['size']} size ({fused['params']:,} params, batch {fused['batch']})",
            f"{fused['tokens_per_s']:,.0f} tokens/s, {fused['mem_mib']:.0f} MiB",
            f"plain attention {plain['tokens_per_s']:,.0f} tokens/s, {plain['mem_mib']:.0f} MiB",
            row["ratio"],
        )
    last = generation[-1]
    report.add_summary(
        f"generation, paper size, {last['tokens']} tokens x {last['batch']}",
        f"KV cache {last['cached_tps']:,.0f} tokens/s",
        f"no cache {last['uncached_tps']:,.0f} tokens/s (same tokens: {last['same']})",
        last["cached_s"] / last["uncached_s"],
    )
    report.finish()


if __name__ == "__main__":
    main()
