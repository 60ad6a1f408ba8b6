"""Deep voxel encoders: training speed and memory, in-context encoding, attention kernels.

Three measurements of :class:`~neuro.encoders.transformer.TransformerEncoder`
and :class:`~neuro.encoders.incontext.InContextEncoder` on synthetic data (the
times do not depend on the values):

1. Training throughput and peak memory at each model's default size (the
   estimator's defaults) and at the paper's size (``PAPER_SIZE`` of each
   module), each configuration in a fresh process; the parameter counts of
   the configuration run and of the real paper size are printed. The loop is
   Trainer-free: the module's own training loss (what ``fit`` gives the
   ``Trainer``), ``backward`` and an AdamW step on one batch already on the
   device, so data loading, validation and checkpoints are left out. After
   ``--warmup`` steps, ``--steps`` steps are timed ``--repeat`` times and the
   best is kept. The transformer reads DINOv2 ViT-B/14 tokens as in the paper
   (768 channels on a 31 x 31 grid) with 50 queries and 15,000 voxels (about
   an NSD subject's nsdgeneral); a sample is an image. The in-context encoder
   reads E = 512 (CLIP) embeddings; a sample is one voxel with ``K`` support
   images (the middle of the sizes drawn in meta-training: 105 of 10-200 by
   default, 265 of the paper's 30-500) and 100 query images, and its
   images/s counts support images (the tokens its transformer reads).
   Batches: the estimators' defaults (32 images, 64 voxels); the paper's 16
   images and 80 voxels. On a CPU the paper-size runs use ``--paper-width``
   (default 0.25) of the paper's width, with the paper's layers, heads and
   data, and 8 voxels per batch; the table says so, and ``--paper-width 1``
   runs the real size.
2. Encoders for ``--voxels`` (10,000) new voxels from ``--k`` (100) support
   images: ``InContextEncoder.encode`` (the network meta-trained for one
   step: the time does not depend on the weights) beside ``VoxelRidgeCV``
   (5-fold CV, its default alphas) fitted on the same unit-norm embeddings
   and responses, both on ``--device``, host arrays in and out, each in a
   fresh process. On a CPU the paper-size encoder runs on
   ``--cpu-paper-voxels`` voxels at the reduced width and its time is scaled
   linearly to ``--voxels`` (marked ``~``; it encodes voxel batch by voxel
   batch).
3. Attention through :func:`torch.nn.functional.scaled_dot_product_attention`
   beside a plain ``softmax(Q K^T / sqrt(d)) V``, in this process, at the
   shapes both models run (the transformer's cross-attention of 50 queries
   to 31 x 31 tokens, the in-context encoder's self-attention over ``K`` + 4
   register tokens), forward and forward+backward in float32, with the
   largest absolute difference of the outputs.

Memory: on a CPU, the peak resident set size above what the process held
once the imports and the data were in (Linux: the peak is reset through
``/proc/self/clear_refs``); it counts parameters, gradients, optimizer state,
activations and the allocator's caches. On CUDA it is
``torch.cuda.max_memory_allocated()`` above what was allocated once the data
were on the GPU. ``VoxelRidgeCV`` may run its products through numpy's
BLAS, so the script unsets ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` for
itself (see ``benchmarks/_common.py``) and prints which BLAS each side ran.
The load average is printed at the start and the end: on a shared machine
the times are only as good as it is quiet. ``--quick`` (an 8 x 8 token
grid, 1,000 transformer voxels, 256 encoded voxels, small batches, width
0.125) runs the configurations in this process one after another, except
the ridge peer, and takes well under a minute on 2 idle CPU cores.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import subprocess
import sys

import numpy as np
from _common import (
    Col,
    Report,
    _torch_config,
    best_of,
    fair_blas,
    fair_env,
    parser,
    resolve,
    sync,
    time_training,
)
from nsd_scale import peak_mib, reset_peak, rss_mib
from ridge import _blas_used

PAPER_TOKENS = (768, 31, 31)  # DINOv2 ViT-B/14 patch tokens as (C, H, W), the paper's grid
PAPER_QUERIES = 50  # one per ROI and hemisphere plus one "rest" per hemisphere
PAPER_BATCH = (16, 80)  # images per step (transformer), voxels per step (in-context)
NSD_VOXELS = 15_000  # about an NSD subject's nsdgeneral voxels
CLIP_DIM = 512  # the in-context paper's CLIP embeddings
N_QUERY = 100  # held-back images per meta-training sample (the paper's)


# ----------------------------------------------------------------------------- settings
def _width(value: int, fraction: float, multiple: int) -> int:
    """``value * fraction`` rounded to a positive multiple of ``multiple``."""
    return max(multiple, round(value * fraction / multiple) * multiple)


def _defaults(estimator, names) -> dict:
    """The estimator's default values of the parameters in ``names``."""
    params = inspect.signature(estimator).parameters
    return {name: params[name].default for name in names}


def transformer_net(size: str, width: float) -> dict:
    """``TransformerBrainModule`` sizes: the estimator's defaults, or PAPER_SIZE x ``width``."""
    from neuro.encoders.transformer import PAPER_SIZE, TransformerEncoder

    if size == "default":
        return _defaults(TransformerEncoder, PAPER_SIZE)
    heads = PAPER_SIZE["n_heads"]
    return {
        "d_model": _width(PAPER_SIZE["d_model"], width, math.lcm(4, heads)),
        "n_heads": heads,
        "ffn_dim": _width(PAPER_SIZE["ffn_dim"], width, 8),
        "n_layers": PAPER_SIZE["n_layers"],
    }


def incontext_net(size: str, width: float) -> dict:
    """``InContextNet`` sizes: the estimator's defaults, or PAPER_SIZE x ``width``."""
    from neuro.encoders.incontext import PAPER_SIZE, InContextEncoder

    if size == "default":
        return _defaults(InContextEncoder, PAPER_SIZE)
    heads = PAPER_SIZE["n_heads"]
    return {
        "d_model": _width(PAPER_SIZE["d_model"], width, heads),
        "n_layers": PAPER_SIZE["n_layers"],
        "n_heads": heads,
        "n_registers": PAPER_SIZE["n_registers"],
    }


def train_specs(args, on_cpu: bool) -> list[dict]:
    """The four training configurations (model x size)."""
    from neuro.encoders.incontext import InContextEncoder
    from neuro.encoders.transformer import TransformerEncoder

    tokens = [PAPER_TOKENS[0], 8, 8] if args.quick else list(PAPER_TOKENS)
    voxels = 1000 if args.quick else NSD_VOXELS
    common = {"steps": args.steps, "warmup": args.warmup, "repeat": args.repeat}
    common["precision"] = args.precision
    specs = []
    for size in ("default", "paper"):
        width = 1.0 if size == "default" else args.paper_width
        if args.quick:
            batch_t, batch_i = (8, 8) if size == "default" else (4, 2)
        elif size == "default":
            batch_t = _defaults(TransformerEncoder, ["batch_size"])["batch_size"]
            batch_i = _defaults(InContextEncoder, ["batch_size"])["batch_size"]
        else:  # the paper's 16 images (transformer) and 80 voxels (in-context, 8 on a CPU)
            batch_t, batch_i = PAPER_BATCH[0], 8 if on_cpu else PAPER_BATCH[1]
        k_default, k_paper = (50, 50) if args.quick else (105, 265)
        specs.append(
            {
                "model": "transformer",
                "size": size,
                "width": width,
                "net": transformer_net(size, width),
                "in_shape": tokens,
                "n_queries": PAPER_QUERIES,
                "n_voxels": voxels,
                "batch": batch_t,
                **common,
            }
        )
        specs.append(
            {
                "model": "incontext",
                "size": size,
                "width": width,
                "net": incontext_net(size, width),
                "embed_dim": CLIP_DIM,
                "k": k_default if size == "default" else k_paper,
                "n_query": N_QUERY,
                "n_images": 200 if args.quick else 1000,
                "n_voxels": 4 * batch_i,
                "batch": batch_i,
                **common,
            }
        )
    return specs


def count_parameters(spec: dict, full: bool = False) -> int:
    """Parameters of a configuration (``full``: at the paper's full width).

    The in-context network is built on the 'meta' device (no memory); the
    transformer's ROI blocks need real indices, so it is built on the CPU.
    """
    import torch

    if spec["model"] == "transformer":
        from neuro.encoders.transformer import TransformerBrainModule

        net = transformer_net(spec["size"], 1.0) if full else spec["net"]
        module = TransformerBrainModule(
            tuple(spec["in_shape"]),
            np.arange(spec["n_voxels"]) % spec["n_queries"],
            spec["n_queries"],
            **net,
        )
    else:
        from neuro.encoders.incontext import InContextNet

        net = incontext_net(spec["size"], 1.0) if full else spec["net"]
        with torch.device("meta"):
            module = InContextNet(spec["embed_dim"], **net)
    return int(sum(p.numel() for p in module.parameters()))


# ----------------------------------------------------------------------------- memory
def _release() -> None:
    """Free what earlier work left: garbage, and (glibc) free heap pages back to the system."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class Memory:
    """Peak memory of a block above what the process held when it was entered (MiB)."""

    def __init__(self, device) -> None:
        self.device = device
        self.cuda = str(device).startswith("cuda")

    def __enter__(self) -> Memory:
        import torch

        _release()
        sync(self.device)
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device) / 2**20
        self.own_peak = reset_peak()
        self.base_rss = rss_mib()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        sync(self.device)
        self.rss_mib = peak_mib() - self.base_rss
        self.gpu_mib = None
        self.gpu_total_mib = None
        if self.cuda:
            self.gpu_total_mib = torch.cuda.max_memory_allocated(self.device) / 2**20
            self.gpu_mib = self.gpu_total_mib - self.base

    @property
    def mib(self) -> float:
        """The figure the tables show: GPU memory on CUDA, resident set growth otherwise."""
        return self.gpu_mib if self.cuda else self.rss_mib


# ----------------------------------------------------------------------------- workers
def _data(spec: dict, device) -> dict:
    """Synthetic data on the device: one batch ``(x, y)`` (transformer), or the training
    subject's unit-norm embeddings and responses and one batch of voxel ids (in-context)."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    if spec["model"] == "transformer":
        x = torch.randn(spec["batch"], *spec["in_shape"], generator=gen)
        y = torch.randn(spec["batch"], spec["n_voxels"], generator=gen)
        return {"batch": (x.to(device), y.to(device))}
    n, e, v = spec["n_images"], spec["embed_dim"], spec["n_voxels"]
    return {
        "batch": (torch.arange(spec["batch"], device=device),),
        "x_all": F.normalize(torch.randn(1, n, e, generator=gen), dim=-1).to(device),
        "y_all": torch.randn(v, n, generator=gen).to(device),
    }


def _objective(spec: dict, data: dict, device):
    """The module's training objective, as ``fit`` gives it to the Trainer, on the device."""
    import torch

    if spec["model"] == "transformer":
        from neuro.encoders.transformer import TransformerBrainModule, _Objective

        module = TransformerBrainModule(
            tuple(spec["in_shape"]),
            np.arange(spec["n_voxels"]) % spec["n_queries"],
            spec["n_queries"],
            **spec["net"],
        ).to(device)
        return _Objective(module)
    from neuro.encoders.incontext import InContextNet, _MetaObjective

    n, v = spec["n_images"], spec["n_voxels"]
    return _MetaObjective(
        InContextNet(spec["embed_dim"], **spec["net"]).to(device),
        data["x_all"],
        data["y_all"],
        torch.zeros(v, dtype=torch.long, device=device),
        torch.tensor([n], device=device),
        (spec["k"], spec["k"]),
        spec["n_query"],
    )


def work_train(spec: dict, device) -> dict:
    """Time ``steps`` optimizer steps of one configuration; measure its peak memory."""
    import torch

    from neuro.train import autocast

    torch.manual_seed(0)
    data = _data(spec, device)
    batch = data["batch"]
    with Memory(device) as mem:
        objective = _objective(spec, data, device)
        params = [p for p in objective.parameters() if p.requires_grad]

        def loss_fn():
            with autocast(device, spec["precision"]):
                return objective.training_step(batch)["loss"]

        times, loss = time_training(
            loss_fn,
            params,
            device,
            warmup=spec["warmup"],
            steps=spec["steps"],
            repeat=spec["repeat"],
        )
    if not math.isfinite(loss):
        raise SystemExit(f"encoders_deep: the {spec['model']} loss is not finite")
    return {
        "seconds": min(times),
        "times": times,
        "params": int(sum(p.numel() for p in params)),
        "mem_mib": mem.mib,
        "rss_mib": mem.rss_mib,
        "gpu_total_mib": mem.gpu_total_mib,
        "own_peak": mem.own_peak,
    }


def _encode_data(spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """``K`` unit-norm embeddings and the responses of ``n_voxels`` linear voxels plus noise."""
    from neuro.encoders.incontext import unit_embeddings

    rng = np.random.default_rng(0)
    k, e, v = spec["k"], spec["embed_dim"], spec["n_voxels"]
    x = unit_embeddings(rng.standard_normal((k, e), dtype=np.float32))
    w = rng.standard_normal((e, v), dtype=np.float32)
    y = x @ w + rng.standard_normal((k, v), dtype=np.float32)
    return x, np.ascontiguousarray(y, dtype=np.float32)


def work_encode(spec: dict, device) -> dict:
    """Encoders for ``n_voxels`` voxels from ``K`` images: in-context ``encode`` or ridge."""
    x, y = _encode_data(spec)
    dev = str(device)
    if spec["method"] == "incontext":
        from neuro.encoders.incontext import InContextEncoder

        rng = np.random.default_rng(2)
        enc = InContextEncoder(
            **spec["net"],
            n_query=10,
            epochs=1,
            voxel_batch_size=spec["voxel_batch"],
            device=dev,
        )
        # one meta-training step on a small random subject (the weights do not set the time)
        enc.fit(rng.standard_normal((40, x.shape[1])), rng.standard_normal((40, 16)))

        def run():
            return enc.encode(x, y)

        enc.encode(x, y[:, :64])  # warm-up on a slice
        params = int(enc.n_parameters_)
        blas = (
            "cuBLAS (torch)"
            if dev.startswith("cuda")
            else f"torch {_torch_config().get('blas_info', '?')}"
        )
    else:
        from neuro.encoders.ridge import VoxelRidgeCV

        def run():
            model = VoxelRidgeCV(cv=5, device=dev).fit(x, y)
            return model.coef_, model.intercept_

        VoxelRidgeCV(cv=5, device=dev).fit(x, np.ascontiguousarray(y[:, :64]))
        params = None
        blas = None
    with Memory(device) as mem:
        seconds, times, (w, b) = best_of(run, spec["repeat"], device, warmup=0)
    if np.asarray(w).shape[0] not in (y.shape[1], x.shape[1]) or len(np.asarray(b)) != y.shape[1]:
        raise SystemExit(f"encoders_deep: {spec['method']} returned weights of the wrong shape")
    return {
        "seconds": seconds,
        "times": times,
        "params": params,
        "mem_mib": mem.mib,
        "own_peak": mem.own_peak,
        # ridge: the library its timed fit chose (as benchmarks/ridge.py reports it)
        "blas": blas if blas is not None else _blas_used("neuro", dev),
    }


def _plain_attention(q, k, v):
    """``softmax(Q K^T / sqrt(d)) V``, written out (the scores are materialised)."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    return scores.softmax(dim=-1) @ v


def _attention_row(shape: dict, repeat: int, device) -> dict:
    """SDPA against the plain product at one shape: forward, forward+backward, difference."""
    import torch
    import torch.nn.functional as F

    b, h, nq, nt, dh = (shape[key] for key in ("batch", "heads", "queries", "tokens", "dh"))
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(b, h, nq, dh, generator=gen).to(device)
    k = torch.randn(b, h, nt, dh, generator=gen).to(device)
    v = torch.randn(b, h, nt, dh, generator=gen).to(device)
    row = dict(shape)
    outs = {}
    for name, fn in (("sdpa", F.scaled_dot_product_attention), ("plain", _plain_attention)):

        def forward(fn=fn):
            with torch.no_grad():
                return fn(q, k, v)

        leaves = [t.detach().requires_grad_(True) for t in (q, k, v)]

        def fwd_bwd(fn=fn, leaves=leaves):
            return torch.autograd.grad(fn(*leaves).sum(), leaves)

        seconds, _, outs[name] = best_of(forward, repeat, device)
        row[f"{name}_fwd_ms"] = 1e3 * seconds
        fwd_bwd()
        with Memory(device) as mem:
            row[f"{name}_fb_ms"] = 1e3 * best_of(fwd_bwd, repeat, device, warmup=0)[0]
        row[f"{name}_mib"] = mem.gpu_mib  # None on the CPU: the process peak is too coarse
    row["max_abs_diff"] = float((outs["sdpa"] - outs["plain"]).abs().max())
    row["out_scale"] = float(outs["plain"].abs().max())
    row["scores_mib"] = b * h * nq * nt * 4 / 2**20
    return row


def work_attention(spec: dict, device) -> dict:
    """:func:`_attention_row` at each of ``spec["shapes"]``."""
    return {"rows": [_attention_row(shape, spec["repeat"], device) for shape in spec["shapes"]]}


WORKERS = {"train": work_train, "encode": work_encode, "attention": work_attention}


def run_worker(mode: str, spec: dict, device, keep_blas_env: bool, fresh: bool = True) -> dict:
    """Run one worker in a fresh process (or, ``fresh=False``, in this one); return its JSON."""
    if not fresh:
        return json.loads(json.dumps(WORKERS[mode](spec, device)))
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", mode, json.dumps(spec)]
    cmd += ["--device", str(device)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=fair_env(keep_blas_env))
    if proc.returncode != 0:
        raise SystemExit(f"encoders_deep: the {mode} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- parts
def _precision_text(precision: str) -> str:
    return "float32" if precision == "32" else precision


def _size_text(spec: dict) -> str:
    if spec["size"] == "default":
        return "default"
    return "paper" if spec["width"] == 1 else f"paper, width x{spec['width']:g}"


def _net_text(spec: dict) -> str:
    n = spec["net"]
    if spec["model"] == "transformer":
        return f"d{n['d_model']} h{n['n_heads']} ffn{n['ffn_dim']} L{n['n_layers']}"
    return f"d{n['d_model']} h{n['n_heads']} L{n['n_layers']} r{n['n_registers']}"


def _data_text(spec: dict) -> str:
    if spec["model"] == "transformer":
        c, h, w = spec["in_shape"]
        return f"{h}x{w} tokens of {c}, {spec['n_queries']} queries, {spec['n_voxels']} vox"
    return f"E={spec['embed_dim']}, K={spec['k']} + {spec['n_query']} query"


def part_training(report: Report, args, device, on_cpu: bool) -> list[dict]:
    specs = train_specs(args, on_cpu)
    rows = []
    for spec in specs:
        print(f"  train {spec['model']} ({_size_text(spec)}) ...", flush=True)
        res = run_worker("train", spec, device, args.keep_blas_env, fresh=not args.quick)
        steps_per_s = spec["steps"] / res["seconds"]
        samples = spec["batch"] * steps_per_s
        images = samples * (spec["k"] if spec["model"] == "incontext" else 1)
        rows.append(
            {
                "model": "TransformerEncoder"
                if spec["model"] == "transformer"
                else "InContextEncoder",
                "size": _size_text(spec),
                "net": _net_text(spec),
                "data": _data_text(spec),
                "params": res["params"],
                "full_params": count_parameters(spec, full=True),
                "batch": f"{spec['batch']} {'img' if spec['model'] == 'transformer' else 'vox'}",
                "steps_per_s": steps_per_s,
                "samples_per_s": samples,
                "images_per_s": images,
                "mem_mib": res["mem_mib"],
                "gpu_total_mib": res.get("gpu_total_mib"),
                "times": res["times"],
                "_spec": spec,
            }
        )
    report.table(
        [
            Col("model", "model"),
            Col("size", "size"),
            Col("net", "network"),
            Col("data", "data"),
            Col("params", "params", "{:,}"),
            Col("full_params", "params at paper size", "{:,}"),
            Col("batch", "batch"),
            Col("steps_per_s", "steps/s", "{:.2f}"),
            Col("samples_per_s", "samples/s", "{:.1f}"),
            Col("images_per_s", "images/s", "{:.1f}"),
            Col("mem_mib", "peak MiB", "{:.0f}"),
        ],
        [{k: v for k, v in r.items() if k != "_spec"} for r in rows],
        title=(
            f"1. Training throughput, {_precision_text(args.precision)}: {args.steps} AdamW "
            f"steps of the module's training loss after {args.warmup} warm-up, Trainer-free, "
            f"one batch on the device; best of {args.repeat}"
        ),
    )
    report.note(
        "samples: images (transformer) or voxels, each with K support and 100 query images "
        "(in-context); images/s counts support images for the in-context encoder. "
        + (
            "peak MiB: torch.cuda.max_memory_allocated() above the data on the GPU"
            if not on_cpu
            else "peak MiB: the worker's peak resident set above what it held after the "
            "imports and the data (parameters, gradients, AdamW state, activations, caches)"
        )
    )
    if args.quick:
        report.note(
            "--quick: the configurations run one after another in this process (memory "
            "freed between them), not each in a fresh process: the peak MiB are approximate"
        )
    if args.paper_width != 1:
        report.note(
            f"paper size is run at x{args.paper_width:g} of the paper's width (heads, layers, "
            f"tokens and embeddings as the paper's) with batch "
            f"{rows[2]['batch']} / {rows[3]['batch']}"
            + (" (CPU)" if on_cpu else "")
            + "; 'params at paper size' counts the real size. --paper-width 1 runs it."
        )
    return rows


def part_encode(report: Report, args, device, on_cpu: bool) -> list[dict]:
    base = {"k": args.k, "embed_dim": CLIP_DIM, "n_voxels": args.voxels, "repeat": args.repeat}
    jobs = [
        ("incontext", "default", 1.0, args.voxels),
        ("incontext", "paper", args.paper_width, args.voxels),
        ("ridge", None, None, args.voxels),
    ]
    if on_cpu:
        n_paper = min(args.cpu_paper_voxels, args.voxels)
        jobs[1] = ("incontext", "paper", args.paper_width, n_paper)
        if n_paper == 0:
            jobs.pop(1)
    rows = []
    for method, size, width, n_vox in jobs:
        spec = dict(base, method=method, n_voxels=n_vox, voxel_batch=args.voxel_batch)
        if method == "incontext":
            spec["net"] = incontext_net(size, width)
            spec["size"], spec["width"], spec["model"] = size, width, "incontext"
            label = f"InContextEncoder.encode ({_size_text(spec)}, {_net_text(spec)})"
        else:
            label = "VoxelRidgeCV.fit (5-fold CV, 17 alphas)"
        print(f"  {label}: {n_vox} voxels ...", flush=True)
        fresh = not args.quick or method == "ridge"
        res = run_worker("encode", spec, device, args.keep_blas_env, fresh=fresh)
        scaled = n_vox != args.voxels
        seconds = res["seconds"] * args.voxels / n_vox
        rows.append(
            {
                "method": label,
                "voxels": n_vox,
                "params": res["params"],
                "seconds": f"~{seconds:.2f}" if scaled else seconds,
                "_seconds": seconds,
                "voxels_per_s": args.voxels / seconds,
                "mem_mib": res["mem_mib"],
                "blas": res["blas"],
                "times": res["times"],
            }
        )
    ridge_s = rows[-1]["_seconds"]
    for row in rows:
        row["ratio"] = row["_seconds"] / ridge_s
    report.table(
        [
            Col("method", "method"),
            Col("voxels", "voxels run", "{:,}"),
            Col("params", "params", "{:,}"),
            Col("seconds", f"seconds for {args.voxels} voxels", "{:.2f}"),
            Col("voxels_per_s", "voxels/s", "{:.0f}"),
            Col("mem_mib", "peak MiB", "{:.0f}"),
            Col("ratio", "x VoxelRidgeCV", "{:.2f}"),
            Col("blas", "BLAS"),
        ],
        [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
        title=(
            f"2. Encoders for {args.voxels} new voxels from K={args.k} images (E={CLIP_DIM}, "
            f"unit-norm), on {device}; best of {args.repeat}"
        ),
    )
    if on_cpu and any(r["voxels"] != args.voxels for r in rows):
        report.note(
            f"~: run on {args.cpu_paper_voxels} voxels at x{args.paper_width:g} width on the CPU "
            f"and scaled linearly to {args.voxels} (the encoder runs voxel batch by voxel batch)"
        )
    return rows


def attention_shapes(args, on_cpu: bool) -> list[dict]:
    """The attention shapes of both models (batch cut on the CPU and in --quick)."""
    from neuro.encoders.incontext import PAPER_SIZE as IC_PAPER
    from neuro.encoders.transformer import PAPER_SIZE as TR_PAPER

    _, h, w = PAPER_TOKENS
    tokens = 256 if args.quick else h * w
    enc_batch = 8 if args.quick else (256 if on_cpu else args.voxel_batch)
    ic_dh = IC_PAPER["d_model"] // IC_PAPER["n_heads"]
    shapes = [
        ("transformer default", 2 if args.quick else 32, 4, PAPER_QUERIES, tokens, 16),
        (
            "transformer paper",
            1 if args.quick else 16,
            TR_PAPER["n_heads"],
            PAPER_QUERIES,
            tokens,
            TR_PAPER["d_model"] // TR_PAPER["n_heads"],
        ),
        ("in-context default, encode", enc_batch, 4, args.k + 4, args.k + 4, 16),
        ("in-context paper, encode", enc_batch, IC_PAPER["n_heads"], args.k + 4, args.k + 4, ic_dh),
    ]
    if not args.quick:
        b = 16 if on_cpu else 80
        shapes.append(("in-context paper, train K=500", b, IC_PAPER["n_heads"], 504, 504, ic_dh))
    keys = ("shape", "batch", "heads", "queries", "tokens", "dh")
    return [dict(zip(keys, s, strict=True)) for s in shapes]


def part_attention(report: Report, args, device, on_cpu: bool) -> list[dict]:
    shapes = attention_shapes(args, on_cpu)
    print(f"  attention at {len(shapes)} shapes ...", flush=True)
    rows = work_attention({"shapes": shapes, "repeat": args.repeat}, device)["rows"]
    for row in rows:
        row["kind"] = "cross" if row["queries"] != row["tokens"] else "self"
        row["dims"] = (
            f"{row['batch']}x{row['heads']}h x {row['queries']}q x {row['tokens']}t x {row['dh']}"
        )
        row["fwd_ratio"] = row["sdpa_fwd_ms"] / row["plain_fwd_ms"]
        row["fb_ratio"] = row["sdpa_fb_ms"] / row["plain_fb_ms"]
    columns = [
        Col("shape", "shape"),
        Col("kind", "attention"),
        Col("dims", "batch x heads x queries x tokens x head dim"),
        Col("sdpa_fwd_ms", "SDPA fwd ms", "{:.2f}"),
        Col("plain_fwd_ms", "plain fwd ms", "{:.2f}"),
        Col("fwd_ratio", "fwd SDPA/plain", "{:.2f}"),
        Col("sdpa_fb_ms", "SDPA fwd+bwd ms", "{:.2f}"),
        Col("plain_fb_ms", "plain fwd+bwd ms", "{:.2f}"),
        Col("fb_ratio", "fwd+bwd SDPA/plain", "{:.2f}"),
        Col("max_abs_diff", "max |SDPA - plain|", "{:.1e}"),
        Col("scores_mib", "scores MiB (plain)", "{:.0f}"),
    ]
    if not on_cpu:
        columns += [
            Col("sdpa_mib", "SDPA fwd+bwd MiB", "{:.0f}"),
            Col("plain_mib", "plain fwd+bwd MiB", "{:.0f}"),
        ]
    report.table(
        columns,
        rows,
        title=(
            f"3. Attention, float32 on {device}: scaled_dot_product_attention beside "
            f"softmax(QK^T/sqrt(d))V in one process; best of {args.repeat}"
        ),
    )
    report.note(
        "scores MiB: the (batch, heads, queries, tokens) float32 score matrix the plain "
        "product materialises"
        + ("" if not on_cpu else "; per-kernel memory is measured on CUDA only")
        + f"; outputs are of order {max(r['out_scale'] for r in rows):.1f}"
    )
    return rows


# ----------------------------------------------------------------------------- main
def main(argv=None) -> None:
    p = parser(__doc__.split("\n\n")[0], repeat=2, numpy_peer=True)
    p.add_argument("--steps", type=int, default=3, help="timed optimizer steps (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    p.add_argument(
        "--precision",
        choices=("32", "bf16-mixed", "16-mixed"),
        default="32",
        help="training precision (the estimators' default: 32)",
    )
    p.add_argument(
        "--paper-width",
        type=float,
        default=None,
        help="fraction of the paper's width the paper-size runs use (default: 1 on CUDA, "
        "0.25 on the CPU, 0.125 with --quick)",
    )
    p.add_argument("--voxels", type=int, default=10_000, help="voxels to encode (part 2)")
    p.add_argument("--k", type=int, default=100, help="support images per voxel (part 2)")
    p.add_argument(
        "--voxel-batch", type=int, default=1024, help="InContextEncoder voxel_batch_size"
    )
    p.add_argument(
        "--cpu-paper-voxels",
        type=int,
        default=256,
        help="voxels of the paper-size encode on the CPU, scaled to --voxels (0: skip)",
    )
    p.add_argument("--_worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._worker:
        mode, spec = args._worker[0], json.loads(args._worker[1])
        device = resolve(args.device)
        print(json.dumps(WORKERS[mode](spec, device)))
        return
    unset = fair_blas(args.keep_blas_env)
    device = resolve(args.device)
    on_cpu = device.type != "cuda"
    if args.quick:
        args.steps, args.warmup = min(args.steps, 2), min(args.warmup, 1)
        args.voxels, args.cpu_paper_voxels = min(args.voxels, 256), 0
    if args.paper_width is None:
        args.paper_width = 0.125 if args.quick else (0.25 if on_cpu else 1.0)
    if not 0 < args.paper_width <= 1:
        sys.exit(f"encoders_deep: --paper-width must lie in (0, 1]; got {args.paper_width}")
    for name in ("steps", "voxels", "k", "voxel_batch"):
        if getattr(args, name) < 1:
            sys.exit(f"encoders_deep: --{name.replace('_', '-')} must be at least 1")
    report = Report("encoders_deep", args, device, unset)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report.header(
        f"device {device}, CPU threads {os.cpu_count()}, {_precision_text(args.precision)} "
        "training, "
        f"paper size at x{args.paper_width:g} width, {args.voxels} voxels at K={args.k}, "
        f"best of {args.repeat}; load average {load:.1f} at the start"
    )
    train = part_training(report, args, device, on_cpu)
    encode = part_encode(report, args, device, on_cpu)
    attention = part_attention(report, args, device, on_cpu)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report.note(f"load average {load_end:.1f} at the end")

    for row in train:
        if row["_spec"]["size"] != "paper":
            continue
        unit = "support images/s" if row["_spec"]["model"] == "incontext" else "images/s"
        report.add_summary(
            f"{row['model']} training, {row['size']} ({row['full_params']:,} params at paper size)",
            f"{row['images_per_s']:.1f} {unit}, {row['mem_mib']:.0f} MiB",
            "-",
            None,
        )
    first, ridge = encode[0], encode[-1]
    report.add_summary(
        f"InContextEncoder.encode {args.voxels} voxels, K={args.k} (default size)",
        f"{first['_seconds']:.2f} s",
        f"VoxelRidgeCV.fit {ridge['_seconds']:.2f} s",
        first["ratio"],
    )
    for row in attention:
        if "paper" in row["shape"] and "train" not in row["shape"]:
            report.add_summary(
                f"SDPA fwd+bwd, {row['shape']} ({row['dims']})",
                f"{row['sdpa_fb_ms']:.2f} ms",
                f"plain softmax(QK^T)V {row['plain_fb_ms']:.2f} ms",
                row["fb_ratio"],
            )
    report.finish()


if __name__ == "__main__":
    main()
