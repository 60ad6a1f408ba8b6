"""Overhead of neuro's Trainer against a hand-written PyTorch loop.

Both train the same MLP on the same data with AdamW for the same number of
steps; the table reports steps per second and the Trainer's cost relative to
the plain loop, in float32 and bf16-mixed. Run:

    python benchmarks/trainer.py [--steps 300] [--batch-size 256] [--width 512] [--device auto]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from neuro.train import Trainer, autocast, resolve_device


class MLP(nn.Module):
    def __init__(self, n_in: int, width: int, n_out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, width), nn.GELU(), nn.Linear(width, n_out))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)


def plain_loop(model, x, y, steps, batch_size, device, precision):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.to(device)
    n = len(x)
    gen = torch.Generator().manual_seed(0)
    done = 0
    start = time.perf_counter()
    while done < steps:
        order = torch.randperm(n, generator=gen)
        for i in range(0, n - batch_size + 1, batch_size):
            idx = order[i : i + batch_size]
            xb, yb = x[idx].to(device), y[idx].to(device)
            with autocast(device, precision):
                loss = nn.functional.mse_loss(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            done += 1
            if done == steps:
                break
    float(loss.detach())  # wait for the device
    return time.perf_counter() - start


def trainer_loop(model, x, y, steps, batch_size, device, precision):
    trainer = Trainer(
        max_epochs=10**6,
        max_steps=steps,
        batch_size=batch_size,
        drop_last=True,
        device=str(device),
        precision=precision,
        verbose=0,
        scheduler=False,
    )
    start = time.perf_counter()
    trainer.fit(model, (x, y))
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.samples, 128, generator=gen)
    y = torch.randn(args.samples, 64, generator=gen)

    print(
        f"device={device} steps={args.steps} batch={args.batch_size} width={args.width} "
        f"threads={torch.get_num_threads()}"
    )
    print(
        f"{'precision':<12}{'plain torch (steps/s)':>24}{'neuro Trainer (steps/s)':>26}{'Trainer/plain time':>20}"
    )
    for precision in ("32", "bf16-mixed"):
        times = {}
        for name, fn in (("plain", plain_loop), ("trainer", trainer_loop)):
            torch.manual_seed(0)
            model = MLP(128, args.width, 64)
            fn(model, x, y, 20, args.batch_size, device, precision)  # warm-up
            torch.manual_seed(0)
            model = MLP(128, args.width, 64)
            times[name] = fn(model, x, y, args.steps, args.batch_size, device, precision)
        print(
            f"{precision:<12}{args.steps / times['plain']:>24.1f}{args.steps / times['trainer']:>26.1f}"
            f"{times['trainer'] / times['plain']:>20.2f}"
        )


if __name__ == "__main__":
    main()
