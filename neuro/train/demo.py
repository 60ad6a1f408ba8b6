"""``neuro train-demo``: the shared Trainer on a voxel encoder whose answer is known.

Simulates voxels with planted linear receptive fields
(:func:`data_loaders.simulate.simulate_linear_encoding`), trains a linear
voxel encoder on them through :class:`neuro.train.Trainer`, and reports on
held-out stimuli how close each voxel's prediction accuracy comes to its
known noise ceiling and how well the planted weights are recovered. Writes
``config.json``, ``metrics.jsonl`` (per epoch), ``metrics.json`` (final),
``voxels.csv``, ``demo.png`` and ``checkpoints/`` into ``--out``.

Run it with ``neuro train-demo --out runs/train-demo`` (add ``--devices 2`` or
``--precision bf16-mixed`` to try the Trainer's options, ``--resume`` to continue).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["DemoConfig", "LinearVoxelEncoder", "add_arguments", "run", "run_demo"]


@dataclass
class DemoConfig:
    """Settings of the demo run (saved in its checkpoints and ``config.json``)."""

    n_samples: int = 3000
    n_features: int = 64
    n_voxels: int = 300
    snr: float = 1.0
    epochs: int = 40
    batch_size: int = 64
    lr: float = 5e-3
    precision: str = "32"
    devices: int = 1
    num_nodes: int = 1
    device: str = "auto"
    seed: int = 0


class LinearVoxelEncoder(nn.Module):
    """A linear map from stimulus features to every voxel's response.

    Parameters
    ----------
    n_features : int
    n_voxels : int

    Shapes: ``forward(x)`` takes ``(batch, n_features)`` and returns
    ``(batch, n_voxels)``.
    """

    def __init__(self, n_features: int, n_voxels: int) -> None:
        super().__init__()
        self.readout = nn.Linear(n_features, n_voxels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        from neuro.encoders.metrics import voxel_correlation

        x, y = batch
        pred = self(x)
        return {"loss": nn.functional.mse_loss(pred, y), "r": voxel_correlation(y, pred).mean()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``neuro train-demo``."""
    d = DemoConfig()
    parser.add_argument("--n-samples", type=int, default=d.n_samples, help="simulated stimuli")
    parser.add_argument(
        "--n-features", type=int, default=d.n_features, help="features per stimulus"
    )
    parser.add_argument("--n-voxels", type=int, default=d.n_voxels, help="simulated voxels")
    parser.add_argument(
        "--snr",
        type=float,
        default=d.snr,
        help="typical signal-to-noise variance ratio (voxels range from 0.1x to 3x it)",
    )
    parser.add_argument("--epochs", type=int, default=d.epochs, help="maximum training epochs")
    parser.add_argument(
        "--batch-size", type=int, default=d.batch_size, help="batch size per process"
    )
    parser.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    parser.add_argument(
        "--precision",
        default=d.precision,
        choices=["32", "bf16-mixed", "16-mixed"],
        help="numerical precision",
    )
    parser.add_argument(
        "--devices", type=int, default=d.devices, help="processes per node (DDP if > 1)"
    )
    parser.add_argument("--num-nodes", type=int, default=d.num_nodes, help="machines in the run")
    parser.add_argument(
        "--resume", action="store_true", help="continue from --out/checkpoints/last.pt"
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``neuro train-demo``."""
    from neuro._validation import check_int

    check_int("--epochs", args.epochs, minimum=1)  # the Trainer calls it max_epochs
    cfg = DemoConfig(
        n_samples=args.n_samples,
        n_features=args.n_features,
        n_voxels=args.n_voxels,
        snr=args.snr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        precision=args.precision,
        devices=args.devices,
        num_nodes=args.num_nodes,
        device=args.device,
        seed=args.seed,
    )
    summary = run_demo(cfg, args.out, resume=args.resume, verbose=args.verbose)
    if summary is not None:
        print(_format_summary(summary))
    return 0


def run_demo(
    cfg: DemoConfig, out_dir, resume: bool = False, verbose: int = 1
) -> dict[str, Any] | None:
    """Simulate, train, evaluate and write the demo's outputs into ``out_dir``.

    Returns the final metrics on rank 0 (None on other ranks).
    """
    from data_loaders.simulate import simulate_linear_encoding
    from neuro.encoders.metrics import voxel_correlation
    from neuro.errors import InputError
    from neuro.io import atomic_write_json, atomic_write_text
    from neuro.train import Trainer, TrainerConfig, seed_everything

    out_dir = Path(out_dir)
    if cfg.n_samples < 20:
        raise InputError(
            f"n_samples must be at least 20 (train, validation and test splits); got {cfg.n_samples}."
        )
    seed_everything(cfg.seed)
    # voxels differ in SNR (from a tenth of --snr to three times it), as real ones do
    snr = cfg.snr * 10 ** np.random.default_rng(cfg.seed).uniform(-1.0, 0.5, cfg.n_voxels)
    sim = simulate_linear_encoding(cfg.n_samples, cfg.n_features, cfg.n_voxels, snr, seed=cfg.seed)
    n_train, n_val = int(0.7 * cfg.n_samples), int(0.15 * cfg.n_samples)
    tr, va, te = slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, None)
    # standardise with training statistics only
    xm, xs = sim.X[tr].mean(0), sim.X[tr].std(0) + 1e-8
    ym, ys = sim.Y[tr].mean(0), sim.Y[tr].std(0) + 1e-8
    X = (sim.X - xm) / xs
    Y = (sim.Y - ym) / ys

    model = LinearVoxelEncoder(cfg.n_features, cfg.n_voxels)
    trainer = Trainer(
        TrainerConfig(
            max_epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            val_batch_size=n_val,
            lr=cfg.lr,
            weight_decay=0.0,
            early_stopping_metric="val_r",
            early_stopping_mode="max",
            early_stopping_patience=8,
            seed=cfg.seed,
            device=cfg.device,
            precision=cfg.precision,
            devices=cfg.devices,
            num_nodes=cfg.num_nodes,
            verbose=verbose,
        ),
        out_dir=out_dir,
        overwrite=True,  # the command line has already checked --out / --overwrite
    )
    history = trainer.fit(
        model, (X[tr], Y[tr]), (X[va], Y[va]), resume="last" if resume else None, run_config=cfg
    )
    if not trainer.runtime.is_global_zero:
        return None

    model.eval()
    with torch.no_grad():
        pred = (
            model(torch.from_numpy(X[te]).to(next(model.parameters()).device)).float().cpu().numpy()
        )
    r_test = voxel_correlation(Y[te], pred)
    ceiling = voxel_correlation(sim.Y[te], sim.Y_clean[te])
    # back to the units of the raw data: y = ys * (((x - xm) / xs) @ W) + ...
    learned = model.readout.weight.detach().float().cpu().numpy().T / xs[:, None] * ys[None, :]
    weight_r = voxel_correlation(sim.weights, learned)
    summary = {
        "epochs_run": len(history),
        "stopped_early": trainer.stopped_early,
        "best_val_r": trainer.best_value,
        "test_r_mean": float(r_test.mean()),
        "noise_ceiling_mean": float(ceiling.mean()),
        "test_r_over_ceiling": float(np.mean(r_test / ceiling)),
        "weight_recovery_r_mean": float(weight_r.mean()),
        "n_train": n_train,
        "n_val": n_val,
        "n_test": cfg.n_samples - n_train - n_val,
        "device": str(trainer.runtime.device),
        "precision": trainer.runtime.precision,
        "world_size": trainer.runtime.world_size,
        "config": dataclasses.asdict(cfg),
    }
    atomic_write_json(out_dir / "metrics.json", summary)
    rows = ["voxel,test_r,noise_ceiling,test_r_over_ceiling,weight_recovery_r"]
    rows += [
        f"{v},{r_test[v]:.6f},{ceiling[v]:.6f},{r_test[v] / ceiling[v]:.6f},{weight_r[v]:.6f}"
        for v in range(cfg.n_voxels)
    ]
    atomic_write_text(out_dir / "voxels.csv", "\n".join(rows) + "\n")
    _plot(history, r_test, ceiling, sim.weights, learned, out_dir / "demo.png")
    return summary


def _plot(history, r_test, ceiling, planted, learned, path) -> None:
    from neuro.plotting import new_figure, save_figure

    fig, axes = new_figure(ncols=3)
    ax = axes[0, 0]
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    ax.plot(epochs, [h.get("val_loss", np.nan) for h in history], label="validation loss")
    ax.set(xlabel="epoch", ylabel="MSE (standardised)", title="Learning curves")
    ax.legend()
    ax = axes[0, 1]
    ax.scatter(ceiling, r_test, s=6, alpha=0.6)
    lim = [0, max(1e-3, float(max(ceiling.max(), r_test.max())) * 1.05)]
    ax.plot(lim, lim, "k--", lw=1, label="ceiling")
    ax.set(xlabel="noise ceiling (planted)", ylabel="test r", title="Held-out accuracy per voxel")
    ax.legend()
    ax = axes[0, 2]
    ax.scatter(planted.ravel(), learned.ravel(), s=2, alpha=0.3)
    lim = float(np.abs(planted).max()) * 1.1
    ax.plot([-lim, lim], [-lim, lim], "k--", lw=1, label="identity")
    ax.set(xlabel="planted weight", ylabel="learned weight", title="Receptive-field recovery")
    ax.legend()
    save_figure(fig, path)


def _format_summary(s: dict[str, Any]) -> str:
    lines = [
        "neuro train-demo: linear voxel encoder on simulated fMRI (planted receptive fields)",
        f"  data            {s['n_train']} train / {s['n_val']} validation / {s['n_test']} test stimuli, "
        f"{s['config']['n_voxels']} voxels, SNR {s['config']['snr']}",
        f"  run             {s['epochs_run']} epochs on {s['device']} ({s['precision']}, "
        f"{s['world_size']} process(es)){', stopped early' if s['stopped_early'] else ''}",
        f"  best val r      {s['best_val_r']:.4f}",
        f"  test r          {s['test_r_mean']:.4f}  (noise ceiling {s['noise_ceiling_mean']:.4f}, "
        f"ratio {s['test_r_over_ceiling']:.3f})",
        f"  weight recovery r = {s['weight_recovery_r_mean']:.4f} (planted vs learned, mean over voxels)",
    ]
    return "\n".join(lines)
