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
``--repeat`` after a warm-up (which includes compilation). No numpy peer
here, so the BLAS variables are left as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _common import Col, Report, best_of, parser, resolve
from torch import nn

from neuro.rnn import GRUNetwork, LeakyRNN


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


def bench(hidden: int, batch: int, steps: int, device, repeat: int, compile_: bool) -> list[dict]:
    x = (torch.rand(batch, steps, 1, device=device) < 0.5).float()
    y = torch.randint(0, 2, (batch,), device=device)
    models: dict[str, nn.Module | None] = {
        "leaky plain": LeakyRNN(hidden_size=hidden, fused=False),
        "leaky fused": LeakyRNN(hidden_size=hidden, fused=True),
        "leaky compiled": None,
        "paper-style": PaperStyleRNN(hidden),
        "torch GRU": GRUNetwork(hidden_size=hidden),
    }
    notes = {"leaky compiled": "skipped (--no-compile)"}
    if compile_:
        try:
            compiled = torch.compile(LeakyRNN(hidden_size=hidden, fused=True).to(device))
            compiled(x[:2, :4])  # compile now, so failures show here
            models["leaky compiled"] = compiled
        except Exception as err:  # any backend failure: report and skip
            reason = f"{type(err).__name__}: {str(err).splitlines()[0][:60]}"
            notes["leaky compiled"] = f"skipped: {reason}"
    rows = []
    for name, model in models.items():
        if model is None:
            rows.append({"hidden": hidden, "model": name, "note": notes.get(name, "skipped")})
            continue
        model = model.to(device)

        def train_step(model=model):
            logits = model(x)[:, 0]
            F.cross_entropy(logits, y).backward()

        def forward(model=model):
            with torch.no_grad():
                model(x)

        t_train = best_of(train_step, repeat, device)[0]
        t_fwd = best_of(forward, repeat, device)[0]
        rows.append(
            {
                "hidden": hidden,
                "model": name,
                "train_steps_per_s": batch * steps / t_train,
                "forward_steps_per_s": batch * steps / t_fwd,
                "train_s": t_train,
                "forward_s": t_fwd,
            }
        )
    return rows


def main(argv=None) -> None:
    p = parser(__doc__.split("\n\n")[0], repeat=3)
    p.add_argument("--hidden", type=int, nargs="+", default=[100, 500])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=50, help="sequence length T")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (--quick does)")
    args = p.parse_args(argv)
    device = resolve(args.device)
    if args.quick:
        args.hidden, args.batch, args.steps, args.no_compile = [32], 32, 10, True
    report = Report("rnn", args, device)
    report.header(
        f"device {device}, {torch.get_num_threads()} threads; batch {args.batch}, "
        f"T={args.steps}; sequence steps per second (best of {args.repeat})"
    )
    rows = []
    for hidden in args.hidden:
        rows += bench(hidden, args.batch, args.steps, device, args.repeat, not args.no_compile)
    report.table(
        [
            Col("hidden", "hidden", "{:d}"),
            Col("model", "model"),
            Col("train_steps_per_s", "train step", "{:,.0f}"),
            Col("forward_steps_per_s", "forward only", "{:,.0f}"),
            Col("note", "note"),
        ],
        rows,
    )
    for hidden in args.hidden:
        by = {r["model"]: r for r in rows if r["hidden"] == hidden and "train_s" in r}
        ours, gru = by["leaky fused"], by["torch GRU"]
        report.add_summary(
            f"leaky fused train step, hidden {hidden}",
            f"{ours['train_steps_per_s']:,.0f} steps/s",
            f"torch GRU {gru['train_steps_per_s']:,.0f} steps/s",
            ours["train_s"] / gru["train_s"],
        )
    report.finish()


if __name__ == "__main__":
    main()
