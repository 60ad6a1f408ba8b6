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

``--paper-epoch`` instead times the ``--preset paper`` training of
``neuro rnn`` at reduced length and projects it: the curriculum's own
training steps (:func:`neuro.rnn.train_curriculum`, 500 neurons, batches of
256, ``--paper-steps`` steps) and validation batches at a few N, each with
sequences of the mean length ``(5 N + 3) / 2``; a step's time is linear in
the length, so a fit ``a + b T`` gives an epoch (600 steps and 50 validation
batches) at any N, and a run to N = 100 at one epoch per N (its lower bound)
and at the 1,000-epoch budget.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
import torch.nn.functional as F
from _common import Col, Report, best_of, parser, resolve
from torch import nn

from neuro.rnn import CurriculumConfig, GRUNetwork, LeakyRNN, evaluate, train_curriculum


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


def _mean_length(n: int) -> int:
    """The mean of the curricula's lengths ``N + 2 ... 4 N + 1`` (uniform), rounded."""
    return round((5 * n + 3) / 2)


def paper_epoch(ns, steps: int, hidden: int, batch: int, device) -> tuple[list[dict], dict]:
    """Measured seconds per training step and per validation batch at each N, and the projection.

    Each N trains the single-head curriculum for ``steps`` steps and one
    validation batch (after a 2-step warm-up run), with sequences of the
    mean length; the validation batch is timed alone with ``evaluate``.
    """
    rows = []
    for n in ns:
        t_len = _mean_length(n)
        cfg = CurriculumConfig(
            kind="single",
            n_start=n,
            n_max=n,
            threshold=1.0,  # never advance: every step trains N
            hidden_size=hidden,
            batch_size=batch,
            steps_per_epoch=steps,
            val_batches=1,
            max_epochs=1,
            seq_len=t_len,
        )
        train_curriculum(dataclasses.replace(cfg, steps_per_epoch=2), device=str(device))
        t0 = time.perf_counter()
        res = train_curriculum(cfg, device=str(device))
        fit_s = time.perf_counter() - t0
        net = res.network.to(device)
        t0 = time.perf_counter()
        evaluate(net, "parity", n, 0, n_sequences=2 * batch, seq_len=t_len, batch_size=batch)
        val_s = (time.perf_counter() - t0) / 2
        rows.append({"N": n, "T": t_len, "step_s": (fit_s - val_s) / steps, "val_batch_s": val_s})
    from scipy.optimize import nnls

    design = np.array([[1.0, r["T"]] for r in rows])  # time = a + b T with a, b >= 0
    a, b = nnls(design, np.array([r["step_s"] for r in rows]))[0]
    va, vb = nnls(design, np.array([r["val_batch_s"] for r in rows]))[0]

    def epoch_s(n):  # the preset's epoch: 600 training steps and 50 validation batches
        return 600 * (a + b * _mean_length(n)) + 50 * (va + vb * _mean_length(n))

    proj = {
        "step_s_fit": [a, b],
        "val_batch_s_fit": [va, vb],
        "epoch_s": {n: epoch_s(n) for n in (2, 10, 30, 50, 100)},
        "run_one_epoch_per_n_h": sum(epoch_s(n) for n in range(2, 101)) / 3600,
        "run_1000_epochs_at_n100_h": 1000 * epoch_s(100) / 3600,
    }
    return rows, proj


def main(argv=None) -> None:
    p = parser(__doc__.split("\n\n")[0], repeat=3)
    p.add_argument("--hidden", type=int, nargs="+", default=[100, 500])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=50, help="sequence length T")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (--quick does)")
    p.add_argument(
        "--paper-epoch",
        action="store_true",
        help="time the --preset paper training at reduced length and project an epoch and a run",
    )
    p.add_argument("--paper-steps", type=int, default=20, help="training steps timed per N")
    p.add_argument("--paper-ns", type=int, nargs="+", default=[2, 10, 30], help="N timed")
    args = p.parse_args(argv)
    device = resolve(args.device)
    if args.paper_epoch:
        if args.quick:
            args.paper_ns, args.paper_steps, args.hidden, args.batch = [2, 12], 3, [32], 32
        report = Report("rnn", args, device)
        hidden = args.hidden[-1] if args.hidden != [100, 500] else 500
        report.header(
            f"device {device}, {torch.get_num_threads()} threads; --preset paper training: "
            f"{hidden} neurons, batches of {args.batch}, {args.paper_steps} steps per N timed"
        )
        rows, proj = paper_epoch(args.paper_ns, args.paper_steps, hidden, args.batch, device)
        report.table(
            [
                Col("N", "N", "{:d}"),
                Col("T", "mean length", "{:d}"),
                Col("step_s", "s / training step", "{:.3f}"),
                Col("val_batch_s", "s / validation batch", "{:.3f}"),
            ],
            rows,
        )
        a, b = proj["step_s_fit"]
        report.note(f"training step: {a:.4f} s + {b:.5f} s per sequence step (fit)")
        for n, sec in proj["epoch_s"].items():
            report.note(f"projected epoch at N={n}: {sec / 60:,.1f} min")
            report.add_summary(f"projected epoch at N={n}", f"{sec / 60:,.1f} min", "", None)
        for key, text in (
            ("run_one_epoch_per_n_h", "projected run to N=100 at one epoch per N"),
            ("run_1000_epochs_at_n100_h", "projected 1,000 epochs at N=100"),
        ):
            report.note(f"{text}: {proj[key]:,.1f} h")
            report.add_summary(text, f"{proj[key]:,.1f} h", "", None)
        report.finish()
        return
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
