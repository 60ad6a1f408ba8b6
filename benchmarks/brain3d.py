"""Brain3D: training time per epoch of each stage, sampling time per object, mesh export.

:class:`~neuro.decoding.brain3d.Brain3DDecoder` at three settings, on the objects and
responses of :func:`neuro.decoding.experiment.simulated_decoding` (240 objects, 168 of
them for training, 40 voxels per ROI):

* ``CPU default, grid 16`` and ``CPU default, grid 32``: the decoder's defaults
  (``ae_channels=(16, 32, 64)``, ``shape_latent_dim=32``, ``hidden_dim=128``,
  ``flow_hidden=256``, ``flow_layers=3``);
* ``GPU size, grid 64``: ``ae_channels=(32, 64, 128)``, ``shape_latent_dim=128``,
  ``hidden_dim=512``, ``flow_hidden=1024``, ``flow_layers=4``.

The parameters of each network come from :meth:`Brain3DDecoder.parameter_counts`.

1. Training time per epoch of each stage (0: the shape autoencoder; 1: fMRI -> latents,
   with its validation pass; 2: the conditional flow), batch 32, float32:

   * ``Trainer``: the stage's :class:`neuro.train.Trainer` as ``fit`` builds it (the seam:
     ``Brain3DDecoder._trainer``, the private method each stage of ``fit`` calls, with the
     stage's learning rate and weight decay: AdamW, cosine schedule, early stopping and
     best-weight restore in stage 1);
   * the peer, ``plain loop``: a hand-written PyTorch loop over the same module, the
     same batches (a fresh permutation each epoch, the last batch partial) and the same
     optimiser (AdamW, same learning rate and weight decay, no schedule), calling the
     module's ``training_step`` (and ``validation_step`` under ``no_grad`` in stage 1).

   Each side runs one untimed epoch, then ``--epochs`` (stage 0) or ``--mlp-epochs``
   (stages 1 and 2) timed epochs in one ``fit``; the two take turns ``--repeat`` times
   and the best of each is kept. Stage 0 of the GPU size on a CPU is timed over
   ``--gpu-size-steps`` optimiser steps after one untimed step, once, and its epoch
   projected (seconds per step x steps per epoch); ``--quick`` skips the GPU size's
   timings on a CPU but still prints its parameter counts.
2. Sampling time per object: ``predict`` (stage 1, ``flow_steps`` = 32 Euler steps of the
   flow from seeded noise, the decoder) on ``--sample-rows`` held-out rows, beside the
   peer, ``direct decode``: ``predict_latents`` and one pass of the autoencoder's decoder
   of the predicted shape latent (no flow), with the same move of the networks to the
   device and back that ``predict`` makes. The decoder is fitted for one epoch a stage on
   32 rows first (the time does not depend on the weights).
3. Marching-cubes export per object, on ``--mesh-objects`` objects of ``make_shapes`` at
   grids 16, 32 and 64: ``occupancy_to_mesh`` + ``write_mesh`` (binary ``.ply`` and text
   ``.obj``) beside trimesh's ``trimesh.voxel.ops.matrix_to_marching_cubes`` + ``export``
   to the same format, on the same grids, into a temporary folder.

The summary: per setting, one epoch of all three stages through the Trainer against the
plain loop, and sampling against the direct decode; per grid, our ``.ply`` export against
trimesh's. ``--quick`` times one epoch of each stage at grids 16 and 32, 8 rows sampled
and 4 objects meshed at grids 16 and 32, in well under a minute on 2 CPU cores. No numpy
peer here, so the BLAS variables are left as they are.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import Col, Report, best_of, parser, resolve, sync

from neuro.decoding import Brain3DDecoder
from neuro.decoding.mesh import occupancy_to_mesh, write_mesh
from neuro.decoding.networks import LatentRegressor, ShapeAutoencoder, VelocityField

#: The settings timed: label, grid and the decoder's parameters (the rest its defaults).
CONFIGS = (
    ("CPU default, grid 16", 16, {}),
    ("CPU default, grid 32", 32, {}),
    (
        "GPU size, grid 64",
        64,
        {
            "ae_channels": (32, 64, 128),
            "shape_latent_dim": 128,
            "hidden_dim": 512,
            "flow_hidden": 1024,
            "flow_layers": 4,
        },
    ),
)
STAGE_LABELS = ("0 shape prior", "1 fMRI -> latents", "2 flow")
COUNT_KEYS = ("shape_prior", "latents", "flow")
N_SHAPES = 240
FIT_ROWS = 32


# ----------------------------------------------------------------------------- data
def decoding_data(grid: int, n_shapes: int):
    """``simulated_decoding`` at ``grid`` (renders of 32 pixels: the stimuli's size is not timed)."""
    from neuro.decoding.experiment import simulated_decoding

    return simulated_decoding(n_shapes=n_shapes, grid_size=grid, image_size=32, seed=0)


def stage_modules(dec: Brain3DDecoder, data, grid: int):
    """Per stage: ``(module, train tensors, val tensors or None, Trainer settings)``.

    The modules and the tensors as ``fit`` builds them (stage 1's targets and stage 2's
    conditions are random standardised latents of the right shapes: the time does not
    depend on their values).
    """
    torch.manual_seed(0)
    x, y, labels = data.train.X.astype(np.float32), data.train.Y, data.train.roi_labels
    n = len(x)
    d = int(dec.shape_latent_dim)
    cats = np.asarray(data.train.categories)
    n_sem = len(np.unique(cats))
    sem = np.eye(n_sem, dtype=np.float32)[np.searchsorted(np.unique(cats), cats)]
    z = torch.randn(n, d)
    early = [torch.as_tensor(np.flatnonzero(labels == r)) for r in dec.early_rois]
    semantic = torch.as_tensor(np.flatnonzero(np.isin(labels, dec.semantic_rois)))
    ae = ShapeAutoencoder(grid, d, dec.ae_channels, dec.ae_latent_noise)
    reg = LatentRegressor(
        early, semantic, d, n_sem, dec.hidden_dim, dec.n_layers, dec.dropout,
        dec.contrastive_weight, dec.temperature,
    )  # fmt: skip
    flow = VelocityField(d, d + n_sem, dec.flow_hidden, dec.flow_layers)
    flow.condition_noise = 0.25 * float(dec.condition_noise)
    order = np.random.default_rng(0).permutation(n)
    n_val = min(max(1, round(n * float(dec.val_fraction))), n - 1)
    val, train = order[:n_val], order[n_val:]
    xs = torch.from_numpy((x - x.mean(0)) / (x.std(0) + 1e-6))
    stage1 = (xs, z, torch.from_numpy(sem))
    wd = float(dec.weight_decay)
    return [
        (ae, (torch.from_numpy(y),), None, {"lr": dec.ae_lr, "weight_decay": wd}),
        (reg, tuple(t[train] for t in stage1), tuple(t[val] for t in stage1),
         {"lr": dec.lr, "weight_decay": wd}),
        (flow, (z, torch.cat([z, torch.from_numpy(sem)], 1)), None,
         {"lr": dec.flow_lr, "weight_decay": 0.0}),
    ]  # fmt: skip


# ----------------------------------------------------------------------------- part 1
def trainer_run(dec, module, train, val, settings, *, epochs=None, steps=None):
    """Train ``module`` through the stage's Trainer for ``epochs`` epochs or ``steps`` steps."""
    limit = {"max_epochs": epochs} if steps is None else {"max_epochs": 10**6, "max_steps": steps}
    trainer = dec._trainer(len(train[0]), validate=val is not None, **settings, **limit)
    trainer.fit(module, train, val)


def plain_run(module, train, val, settings, batch_size, device, *, epochs=None, steps=None):
    """The peer: the same module, batches and AdamW in a hand-written loop."""
    module.to(device).train()
    opt = torch.optim.AdamW(
        module.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"]
    )
    n = len(train[0])
    batch_size = min(batch_size, n)
    gen = torch.Generator().manual_seed(0)
    done, epoch = 0, 0
    loss = None
    while (steps is None and epoch < epochs) or (steps is not None and done < steps):
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            loss = module.training_step(tuple(t[idx].to(device) for t in train))["loss"]
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            done += 1
            if steps is not None and done == steps:
                break
        if val is not None:
            module.eval()
            with torch.no_grad():
                for i in range(0, len(val[0]), batch_size):
                    module.validation_step(tuple(t[i : i + batch_size].to(device) for t in val))
            module.train()
        epoch += 1
    float(loss.detach())  # wait for the device
    module.cpu()


def time_stage(dec, stage, args, device, *, epochs=None, steps=None, repeat=1):
    """``(Trainer seconds, plain seconds)`` of ``epochs`` epochs or ``steps`` steps, best of."""
    module, train, val, settings = stage
    runs = {
        "trainer": lambda **k: trainer_run(dec, module, train, val, settings, **k),
        "plain": lambda **k: plain_run(module, train, val, settings, args.batch, device, **k),
    }
    warm = {"steps": 1} if steps is not None else {"epochs": 1}
    timed = {"steps": steps} if steps is not None else {"epochs": epochs}
    for run in runs.values():
        run(**warm)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeat):
        for key, run in runs.items():
            sync(device)
            start = time.perf_counter()
            run(**timed)
            sync(device)
            times[key].append(time.perf_counter() - start)
    return min(times["trainer"]), min(times["plain"])


def part_training(report: Report, args, device, datasets) -> list[dict]:
    rows = []
    on_cpu = torch.device(device).type == "cpu"
    for label, grid, params in CONFIGS:
        data = datasets.get(grid)
        dec = Brain3DDecoder(**params, device=str(device), verbose=0)
        counts = param_counts(dec, datasets, grid)
        skip = data is None
        stages = None if skip else stage_modules(dec, data, grid)
        if not skip:
            print(f"  {label}: timing the three stages ...", flush=True)
        for k, name in enumerate(STAGE_LABELS):
            row = {"setting": label, "grid": grid, "stage": name, "params": counts[COUNT_KEYS[k]],
                   "batch": args.batch}  # fmt: skip
            rows.append(row)
            if skip:
                row["measured"] = "skipped (--quick)"
                continue
            n_train = len(stages[k][1][0])
            per_epoch = math.ceil(n_train / args.batch)
            row.update(rows_train=n_train, steps_per_epoch=per_epoch)
            if k == 0 and grid == 64 and on_cpu:
                steps = args.gpu_size_steps
                t_tr, t_pl = time_stage(dec, stages[k], args, device, steps=steps)
                row["measured"] = f"{steps} steps x {per_epoch}"
                scale = per_epoch / steps
            else:
                epochs = args.epochs if k == 0 else args.mlp_epochs
                t_tr, t_pl = time_stage(
                    dec, stages[k], args, device, epochs=epochs, repeat=args.repeat
                )
                row["measured"] = f"{epochs} epoch{'s' if epochs > 1 else ''}"
                scale = 1 / epochs
            row.update(
                trainer_s=t_tr * scale,
                plain_s=t_pl * scale,
                ratio=t_tr / t_pl,
                samples_per_s=n_train / (t_tr * scale),
            )
    report.table(
        [
            Col("setting", "setting"),
            Col("stage", "stage"),
            Col("params", "params", "{:,}"),
            Col("rows_train", "rows", "{:d}"),
            Col("steps_per_epoch", "steps/epoch", "{:d}"),
            Col("trainer_s", "Trainer s/epoch", "{:.3g}"),
            Col("plain_s", "plain loop s/epoch", "{:.3g}"),
            Col("ratio", "Trainer / plain", "{:.2f}"),
            Col("samples_per_s", "rows/s", "{:,.0f}"),
            Col("measured", "measured over"),
        ],
        rows,
        title=(
            f"1. Training time per epoch on {device}, float32, batch {args.batch}: each stage "
            "through the shared Trainer beside a plain PyTorch loop over the same module, "
            f"batches and AdamW; best of {args.repeat} (the two take turns)"
        ),
    )
    report.note(
        "stage 1's epoch includes its validation pass on the held-out 15% of the training "
        "rows (both sides); 'N steps x M' = seconds per step over N steps times the M steps "
        "of an epoch (one run, after one untimed step)"
    )
    return rows


def param_counts(dec: Brain3DDecoder, datasets, grid: int) -> dict:
    """``parameter_counts`` with the simulated subject's voxels per ROI and 8 categories."""
    data = next(iter(datasets.values()))
    labels = data.train.roi_labels
    sizes = {r: int((labels == r).sum()) for r in (*dec.early_rois, *dec.semantic_rois)}
    n_sem = len(np.unique(data.train.categories))
    return dec.parameter_counts({**sizes, "grid_size": grid}, semantic_dim=n_sem)


# ----------------------------------------------------------------------------- part 2
def direct_decode(dec: Brain3DDecoder, x: np.ndarray, device) -> np.ndarray:
    """The peer: the stage-1 shape latent through the autoencoder's decoder (no flow)."""
    latent = torch.from_numpy(dec.predict_latents(x)["shape"])
    ae = dec.autoencoder_.to(device).eval()
    with torch.no_grad():
        out = [
            torch.sigmoid(ae.decode(latent[i : i + 64].to(device))).cpu()
            for i in range(0, len(latent), 64)
        ]
    dec.autoencoder_ = ae.cpu()
    return torch.cat(out).numpy()


def part_sampling(report: Report, args, device, datasets) -> list[dict]:
    rows = []
    for label, grid, params in CONFIGS:
        data = datasets.get(grid)
        if data is None:
            continue
        print(f"  {label}: fitting 1 epoch a stage on {FIT_ROWS} rows, then sampling ...",
              flush=True)  # fmt: skip
        dec = Brain3DDecoder(
            **params, ae_epochs=1, epochs=1, flow_epochs=1, device=str(device), verbose=0
        )
        tr = data.train
        dec.fit(
            tr.X[:FIT_ROWS], tr.Y[:FIT_ROWS], tr.roi_labels, categories=tr.categories[:FIT_ROWS]
        )
        x = data.test.X[: args.sample_rows]
        n = len(x)
        times: dict[str, list[float]] = {"sample": [], "direct": []}
        out = {}
        runs = {
            "sample": lambda dec=dec, x=x: dec.predict(x, seed=0),
            "direct": lambda dec=dec, x=x: direct_decode(dec, x, device),
        }
        for run in runs.values():
            run()
        for _ in range(args.repeat):
            for key, run in runs.items():
                t, _, out[key] = best_of(run, 1, device, warmup=0)
                times[key].append(t)
        assert out["sample"].shape == out["direct"].shape == (n, grid, grid, grid)
        t_s, t_d = min(times["sample"]), min(times["direct"])
        rows.append(
            {"setting": label, "grid": grid, "flow_steps": int(dec.flow_steps), "objects": n,
             "sample_ms": 1e3 * t_s / n, "direct_ms": 1e3 * t_d / n, "ratio": t_s / t_d}
        )  # fmt: skip
    report.table(
        [
            Col("setting", "setting"),
            Col("flow_steps", "flow steps", "{:d}"),
            Col("objects", "objects", "{:d}"),
            Col("sample_ms", "predict ms/object", "{:.3g}"),
            Col("direct_ms", "direct decode ms/object", "{:.3g}"),
            Col("ratio", "predict / direct", "{:.2f}"),
        ],
        rows,
        title=(
            f"2. Sampling on {device}: predict (stage 1, Euler steps of the flow, decoder) beside "
            "one decoder pass of the stage-1 shape latent, per held-out object; best of "
            f"{args.repeat} (the two take turns)"
        ),
    )
    return rows


# ----------------------------------------------------------------------------- part 3
def part_mesh(report: Report, args) -> list[dict]:
    from trimesh.voxel.ops import matrix_to_marching_cubes

    from data_loaders.simulate.shapes import make_shapes

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for grid in args.mesh_grids:
            grids = make_shapes(args.mesh_objects, grid_size=grid, image_size=16, seed=1).occupancy
            for fmt in ("ply", "obj"):
                made: dict[str, list] = {}

                def ours_mesh(grids=grids, made=made):
                    made["ours"] = [occupancy_to_mesh(g) for g in grids]

                def ours_write(fmt=fmt, made=made):
                    for i, (v, f) in enumerate(made["ours"]):
                        write_mesh(folder / f"ours_{i}.{fmt}", v, f, overwrite=True)

                def peer_mesh(grids=grids, made=made):
                    made["trimesh"] = [matrix_to_marching_cubes(g > 0.5) for g in grids]

                def peer_write(fmt=fmt, made=made):
                    for i, mesh in enumerate(made["trimesh"]):
                        mesh.export(folder / f"trimesh_{i}.{fmt}")

                runs = {
                    "ours_mesh": ours_mesh,
                    "ours_write": ours_write,
                    "peer_mesh": peer_mesh,
                    "peer_write": peer_write,
                }
                for fn in runs.values():
                    fn()
                # the four take turns; each side's mesh and write of a repeat are one total
                times: dict[str, list[float]] = {k: [] for k in runs}
                for _ in range(args.repeat):
                    for key, fn in runs.items():
                        start = time.perf_counter()
                        fn()
                        times[key].append(time.perf_counter() - start)
                n = len(grids)
                ours = [a + b for a, b in zip(times["ours_mesh"], times["ours_write"], strict=True)]
                peer = [a + b for a, b in zip(times["peer_mesh"], times["peer_write"], strict=True)]
                t_o, t_t = min(ours), min(peer)
                rows.append(
                    {"grid": grid, "format": fmt, "objects": n,
                     "ours_mesh_ms": 1e3 * min(times["ours_mesh"]) / n,
                     "ours_write_ms": 1e3 * min(times["ours_write"]) / n,
                     "ours_ms": 1e3 * t_o / n,
                     "trimesh_mesh_ms": 1e3 * min(times["peer_mesh"]) / n,
                     "trimesh_write_ms": 1e3 * min(times["peer_write"]) / n,
                     "trimesh_ms": 1e3 * t_t / n, "ratio": t_o / t_t,
                     "faces": sum(len(f) for _, f in made["ours"]) / n,
                     "trimesh_faces": sum(len(m.faces) for m in made["trimesh"]) / n}
                )  # fmt: skip
    report.table(
        [
            Col("grid", "grid", "{:d}"),
            Col("format", "format"),
            Col("objects", "objects", "{:d}"),
            Col("ours_mesh_ms", "occupancy_to_mesh", "{:.3g}"),
            Col("ours_write_ms", "write_mesh", "{:.3g}"),
            Col("ours_ms", "ours ms", "{:.3g}"),
            Col("trimesh_mesh_ms", "matrix_to_marching_cubes", "{:.3g}"),
            Col("trimesh_write_ms", "export", "{:.3g}"),
            Col("trimesh_ms", "trimesh ms", "{:.3g}"),
            Col("ratio", "ours / trimesh", "{:.2f}"),
            Col("faces", "faces", "{:,.0f}"),
            Col("trimesh_faces", "trimesh faces", "{:,.0f}"),
        ],
        rows,
        title=(
            "3. Marching-cubes export on the CPU, ms per object: occupancy_to_mesh + write_mesh "
            "beside trimesh.voxel.ops.matrix_to_marching_cubes + export, same grids, same "
            f"format; best of {args.repeat} (the four parts take turns)"
        ),
    )
    report.note(
        "write_mesh writes atomically (a temporary file, fsync, rename, fsync of the folder); "
        "trimesh's export writes the file in place without fsync; faces are means per object"
    )
    return rows


# ----------------------------------------------------------------------------- main
def main(argv=None) -> None:
    p = parser(__doc__.split("\n\n")[0], repeat=3)
    p.add_argument("--epochs", type=int, default=2, help="timed epochs of stage 0 (default 2)")
    p.add_argument(
        "--mlp-epochs", type=int, default=10, help="timed epochs of stages 1, 2 (default 10)"
    )
    p.add_argument(
        "--gpu-size-steps",
        type=int,
        default=2,
        help="timed steps of stage 0 at the GPU size on a CPU (default 2)",
    )
    p.add_argument("--sample-rows", type=int, default=32, help="rows sampled (default 32)")
    p.add_argument("--mesh-objects", type=int, default=16, help="objects meshed (default 16)")
    args = p.parse_args(argv)
    device = resolve(args.device)
    on_cpu = torch.device(device).type == "cpu"
    args.mesh_grids = [16, 32, 64]
    if args.quick:
        args.epochs, args.mlp_epochs, args.sample_rows, args.mesh_objects = 1, 2, 8, 4
        args.mesh_grids = [16, 32]
    for name in ("epochs", "mlp_epochs", "gpu_size_steps", "sample_rows", "mesh_objects",
                 "repeat"):  # fmt: skip
        if getattr(args, name) < 1:
            sys.exit(f"brain3d: --{name.replace('_', '-')} must be at least 1")
    args.batch = 32  # Brain3DDecoder's default
    grids = [16, 32] if args.quick and on_cpu else [16, 32, 64]
    report = Report("brain3d", args, device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report.header(
        f"device {device}, {torch.get_num_threads()} threads; simulated_decoding, "
        f"{N_SHAPES} objects at grids {', '.join(map(str, grids))}; batch {args.batch}; "
        f"{args.epochs} epochs of stage 0, {args.mlp_epochs} of stages 1-2; best of "
        f"{args.repeat}; load average {load:.1f} at the start"
    )
    print("  simulating the subject ...", flush=True)
    datasets = {g: decoding_data(g, N_SHAPES) for g in grids}
    training = part_training(report, args, device, datasets)
    sampling = part_sampling(report, args, device, datasets)
    meshes = part_mesh(report, args)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report.note(f"load average {load_end:.1f} at the end")

    for label, _, _ in CONFIGS:
        stages = [r for r in training if r["setting"] == label and "trainer_s" in r]
        if len(stages) == len(STAGE_LABELS):
            ours = sum(r["trainer_s"] for r in stages)
            plain = sum(r["plain_s"] for r in stages)
            report.add_summary(
                f"training, one epoch of each stage, {label}",
                f"Trainer {ours:.3g} s",
                f"plain loop {plain:.3g} s",
                ours / plain,
            )
    for row in sampling:
        report.add_summary(
            f"sampling per object, {row['setting']} ({row['flow_steps']} Euler steps)",
            f"predict {row['sample_ms']:.3g} ms",
            f"direct decode {row['direct_ms']:.3g} ms",
            row["ratio"],
        )
    for row in meshes:
        if row["format"] == "ply":
            report.add_summary(
                f"mesh export per object, grid {row['grid']}, .ply",
                f"ours {row['ours_ms']:.3g} ms",
                f"trimesh {row['trimesh_ms']:.3g} ms",
                row["ratio"],
            )
    report.finish()


if __name__ == "__main__":
    main()
