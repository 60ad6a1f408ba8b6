"""Speed of the leaky RNN with trainable taus against torch's GRU at equal size.

Each model runs a training step (forward over ``T`` steps, cross-entropy on
the last step, backward) and a forward pass alone on batches of random bits,
in the same run:

* ``leaky plain``: :class:`neuro.rnn.LeakyRNN` with ``fused=False``, the update
  written out term by term;
* ``leaky fused``: the default, one ``addmm`` per step through the merged
  matrix ``diag(1 - 1/tau) + diag(1/tau) W``;
* ``leaky compiled``: the fused model through ``torch.compile`` (skipped, with
  the reason, where compilation fails);
* ``paper-style``: a transcription of the authors' per-step update (separate
  ``Linear`` calls, the tau clamp and the diagonal reset every forward), the
  reference setting;
* ``torch GRU``: ``torch.nn.GRU`` (fused kernels), the named peer.

Figures are sequence steps per second (``batch * T / time``), best of
``--repeat``. Run:

    python benchmarks/rnn.py [--hidden 100 500] [--batch 256] [--steps 50] [--device auto]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from neuro.rnn import GRUNetwork, LeakyRNN
from neuro.train import resolve_device


class PaperStyleRNN(nn.Module):
    """The authors' update as they wrote it, for reference (one layer, one head)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.w_in = nn.Linear(1, hidden)
        self.w_hh = nn.Linear(hidden, hidden)
        self.taus = nn.Parameter(1 + torch.rand(hidden))
        self.fc = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (batch, T, 1)
        h = 0.1 * torch.rand(x.shape[0], self.w_hh.in_features, device=x.device)
        self.w_hh.weight.data.fill_diagonal_(0.0)
        u = self.w_in(x)
        for t in range(x.shape[1]):
            tau = torch.clamp(self.taus, min=1.0)
            h = F.leaky_relu((1 - 1 / tau) * h + (self.w_hh(h) + u[:, t]) / tau)
        return self.fc(h)[:, None]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device, repeat: int) -> float:
    fn()  # warm-up (and compilation)
    _sync(device)
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def bench(hidden: int, batch: int, steps: int, device, repeat: int) -> list[tuple[str, str]]:
    x = (torch.rand(batch, steps, 1, device=device) < 0.5).float()
    y = torch.randint(0, 2, (batch,), device=device)
    models: dict[str, nn.Module | None] = {
        "leaky plain": LeakyRNN(hidden_size=hidden, fused=False),
        "leaky fused": LeakyRNN(hidden_size=hidden, fused=True),
        "leaky compiled": None,
        "paper-style": PaperStyleRNN(hidden),
        "torch GRU": GRUNetwork(hidden_size=hidden),
    }
    notes: dict[str, str] = {}
    try:
        compiled = torch.compile(LeakyRNN(hidden_size=hidden, fused=True).to(device))
        compiled(x[:2, :4])  # compile now, so failures show here
        models["leaky compiled"] = compiled
    except Exception as err:  # any backend failure: report and skip
        notes["leaky compiled"] = f"skipped: {type(err).__name__}: {str(err).splitlines()[0][:60]}"
    rows = []
    for name, model in models.items():
        if model is None:
            rows.append((name, notes.get(name, "skipped")))
            continue
        model = model.to(device)

        def train_step(model=model):
            logits = model(x)[:, 0]
            F.cross_entropy(logits, y).backward()

        def forward(model=model):
            with torch.no_grad():
                model(x)

        t_train = _time(train_step, device, repeat)
        t_fwd = _time(forward, device, repeat)
        rows.append((name, f"{batch * steps / t_train:12,.0f} {batch * steps / t_fwd:14,.0f}"))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50, help="sequence length T")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"batch {args.batch}, T={args.steps}; sequence steps per second (best of {args.repeat})"
    )
    for hidden in args.hidden:
        print(f"\nhidden {hidden}")
        print(f"{'model':<16}{'train step':>12} {'forward only':>14}")
        for name, figures in bench(hidden, args.batch, args.steps, device, args.repeat):
            print(f"{name:<16}{figures}")


if __name__ == "__main__":
    main()
