"""Overhead of neuro's Trainer against a hand-written PyTorch loop.

Both train the same MLP on the same data with AdamW for the same number of
steps; the table reports steps per second and the Trainer's cost relative to
the plain loop, in float32 and bf16-mixed; each time is the best of
``--repeat`` runs (each loop times itself and waits for the device at its end).
No numpy peer here, so the BLAS variables are left as they are.
"""

from __future__ import annotations

import time

import torch
from _common import Col, Report, parser, resolve, sync
from torch import nn

from neuro.train import Trainer, autocast


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
    sync(device)
    return time.perf_counter() - start


def main(argv=None) -> None:
    p = parser(__doc__.split("\n\n")[0], repeat=3)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--samples", type=int, default=8192)
    args = p.parse_args(argv)
    device = resolve(args.device)
    if args.quick:
        args.steps, args.batch_size, args.width, args.samples = 30, 64, 64, 1024
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.samples, 128, generator=gen)
    y = torch.randn(args.samples, 64, generator=gen)
    report = Report("trainer", args, device)
    report.header(
        f"device={device} steps={args.steps} batch={args.batch_size} width={args.width} "
        f"threads={torch.get_num_threads()}; best of {args.repeat} after a 20-step warm-up"
    )
    rows = []
    for precision in ("32", "bf16-mixed"):
        times = {}
        for name, fn in (("plain", plain_loop), ("trainer", trainer_loop)):

            def run(fn=fn, steps=args.steps, precision=precision):
                torch.manual_seed(0)
                model = MLP(128, args.width, 64)
                return fn(model, x, y, steps, args.batch_size, device, precision)

            run(steps=20)  # warm-up
            times[name] = min(run() for _ in range(max(1, args.repeat)))
        rows.append(
            {
                "precision": precision,
                "plain_steps_per_s": args.steps / times["plain"],
                "trainer_steps_per_s": args.steps / times["trainer"],
                "ratio": times["trainer"] / times["plain"],
            }
        )
        report.add_summary(
            f"Trainer, MLP width {args.width}, {precision}",
            f"{args.steps / times['trainer']:.1f} steps/s",
            f"plain loop {args.steps / times['plain']:.1f} steps/s",
            times["trainer"] / times["plain"],
        )
    report.table(
        [
            Col("precision", "precision"),
            Col("plain_steps_per_s", "plain torch (steps/s)", "{:.1f}"),
            Col("trainer_steps_per_s", "neuro Trainer (steps/s)", "{:.1f}"),
            Col("ratio", "Trainer/plain time", "{:.2f}"),
        ],
        rows,
    )
    report.finish()


if __name__ == "__main__":
    main()
