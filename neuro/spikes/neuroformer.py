"""Neuroformer as an estimator: pretrain on a recording, score, generate, read connectivity.

:class:`Neuroformer` ties the tokeniser (:class:`~neuro.spikes.tokenizer.SpikeTokenizer`)
and the network (:class:`~neuro.spikes.model.NeuroformerModule`) to a
recording (:class:`data_loaders.spikes.AlignedRecording`, or bare
:class:`data_loaders.spikes.SpikeTrains`):

* :meth:`Neuroformer.fit` anchors samples over the training intervals (one
  current window after another), tokenises them once, and trains on
  :class:`neuro.train.Trainer` (early stopping on held-out intervals, mixed
  precision, checkpoints and exact resume);
* :meth:`Neuroformer.cross_entropy` is the held-out next-neuron
  cross-entropy beside the entropy of the neurons' firing frequencies (what
  a model that knows only how often each neuron fires would score);
* :meth:`Neuroformer.generate` samples each current window from the true
  past window and stimulus, with the key/value cache;
* :meth:`Neuroformer.connectivity` accumulates, over the data, the attention
  from each predicted neuron to each past-window neuron into an ``(N, N)``
  matrix ``[target, source]``, divided by what uniform attention would give
  (so a neuron that fires often is not read as a hub).

The stimulus of a sample is the ``n_stimulus_frames`` frames on screen
before its window end (the paper: 3 frames at 20 Hz).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neuro._validation import check_bool, check_float, check_int
from neuro.base import NeuroEstimator
from neuro.errors import InputError, InputTypeError
from neuro.spikes.model import NeuroformerConfig, NeuroformerModule
from neuro.spikes.tokenizer import SpikeTokenizer, truncation_report
from neuro.train.checkpointed import CheckpointedFit

__all__ = ["Neuroformer"]


def _recording(data):
    """``(spikes, stimulus, frame_times, behavior, behavior_times)`` of a recording or spikes."""
    if hasattr(data, "spikes") and hasattr(data, "stimulus"):
        return data.spikes, data.stimulus, data.frame_times, data.behavior, data.behavior_times
    if all(hasattr(data, a) for a in ("neuron_ids", "times", "n_neurons", "t_start", "t_stop")):
        return data, None, None, None, None
    raise InputTypeError(
        "Give an AlignedRecording (spikes with stimulus and behaviour) or SpikeTrains from "
        f"data_loaders.spikes; got {type(data).__name__}."
    )


def _intervals(intervals, t_start: float, t_stop: float) -> list[tuple[float, float]]:
    if intervals is None:
        return [(float(t_start), float(t_stop))]
    out = []
    for item in intervals:
        a, b = (float(v) for v in item)
        if not (t_start - 1e-9 <= a < b <= t_stop + 1e-9):
            raise InputError(
                f"Interval [{a}, {b}) is not inside the recording [{t_start}, {t_stop}); give "
                "intervals of the recording (e.g. from data_loaders.spikes.split_intervals)."
            )
        out.append((a, b))
    if not out:
        raise InputError("intervals is empty; give at least one (start, stop) interval.")
    return out


@dataclass
class _Settings:
    """What ``load`` needs to rebuild the tokeniser and the network."""

    n_neurons: int
    dt: float
    window: float
    past_window: float
    block_size: int
    past_block_size: int
    model: dict
    n_stimulus_frames: int
    #: behaviour as context: the training mean and sd of each variable (empty: none)
    behavior_mean: list = field(default_factory=list)
    behavior_std: list = field(default_factory=list)


class _Objective(nn.Module):
    """The network and the stimulus frames, in the form the Trainer expects.

    Batches are ``(ids, dts, past_ids, past_dts[, frame_index][, behavior])``;
    the frames are gathered from the recording's frames by index, so each
    sample's clip is never copied.
    """

    def __init__(self, net: NeuroformerModule, frames: torch.Tensor | None) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("frames", frames, persistent=False)

    def _batch(self, batch) -> dict:
        ids, dts, past_ids, past_dts, *rest = batch
        out = {"ids": ids, "dts": dts, "past_ids": past_ids, "past_dts": past_dts}
        if self.frames is not None:
            out["frames"] = self.frames[rest.pop(0)]  # (B, n_frames, H, W)
        if rest:
            out["behavior"] = rest.pop(0)  # (B, n_behavior)
        return out

    def training_step(self, batch):
        return self.net.loss(self._batch(batch))

    def validation_step(self, batch):
        return self.net.loss(self._batch(batch))


def _mean_over_tokens(h: torch.Tensor, ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """``(B, d)`` mean of the features ``h (B, L, d)`` over each sample's non-padding tokens."""
    real = (ids != pad_id).to(h.dtype)[..., None]
    return (h * real).sum(1) / real.sum(1).clamp_min(1.0)


class _BehaviorObjective(nn.Module):
    """Mean squared error of a linear head on pooled features (behaviour fine-tuning).

    Only ``net.final_blocks[stop:]``, the output norm and the head are
    trained, so batches carry the frozen part's output, computed once:
    ``(hidden (B, n_windows, L, d), real (B, n_windows, L), targets)``; the head
    reads the pooled features of each sample's windows, concatenated.
    """

    def __init__(self, net: NeuroformerModule, stop: int, head: nn.Linear) -> None:
        super().__init__()
        self.net = net
        self.stop = stop
        self.head = head

    def _loss(self, batch):
        hidden, real, target = batch
        h = self.net.head_features(hidden.flatten(0, 1), stop=self.stop)
        mask = real.flatten(0, 1).to(h.dtype)[..., None]
        pooled = (h * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        pred = self.head(pooled.reshape(len(target), -1))
        return {"loss": F.mse_loss(pred.float(), target.float())}

    def training_step(self, batch):
        return self._loss(batch)

    def validation_step(self, batch):
        return self._loss(batch)


class Neuroformer(CheckpointedFit, NeuroEstimator):
    """Generative pretraining on spikes (Antoniades et al., ICLR 2024).

    Parameters
    ----------
    dt : float, default=0.01
        Token time resolution, seconds (the paper's 10 ms).
    window, past_window : float, default=0.05, 0.15
        Current and past windows, seconds (whole numbers of ``dt``).
    block_size, past_block_size : int, default=64, 192
        Tokens per current / past window, SOS and EOS included; windows with
        more spikes keep their last ones (counted and warned about). The
        paper: 100 and 700.
    stride : float, optional
        Seconds between training anchors (default: ``window``, so current
        windows tile the data).
    n_stimulus_frames : int, default=3
        Frames before each window end that the model sees (0: ignore the
        stimulus).
    d_model, n_heads, n_self_layers, n_cross_layers, n_final_layers, n_frame_layers : int
        Network sizes (:class:`~neuro.spikes.model.NeuroformerConfig`;
        ``neuro.spikes.model.PAPER_SIZE`` is the paper's).
    frame_patch : (t, h, w), default=(3, 5, 5)
        Conv3d patch of the stimulus embedding.
    contrastive_dim : int, default=0
        Shared space of the neural-stimulus contrastive loss (0: off).
    behavior_context : bool, default=False
        Give the recording's behaviour variables to the network as context
        (one token each, which the current tokens cross-attend to, as the
        paper's behaviour modalities): each sample gets every variable at
        its current window's centre, z-scored with the training mean and
        sd. The model then needs the behaviour wherever it is used, and
        :meth:`fit_behavior` would decode the behaviour from itself: use it
        for generation and scoring, not for decoding.
    dropout : float, default=0.1
    epochs, batch_size, lr, weight_decay, patience : training settings
        AdamW with a cosine schedule; early stopping on the validation
        intervals (the paper: lr 1e-4, weight decay 1.0, batch 160).
    val_fraction : float, default=0.1
        Without ``val_intervals``, the last anchors (in time) of the
        training data held out for early stopping.
    device : str, default="auto"
    precision : {"32", "bf16-mixed", "16-mixed"}, default="32"
    checkpoint_dir, checkpoint_every_n_steps :
        Checkpoints for ``fit(..., resume=True)``
        (:class:`~neuro.train.checkpointed.CheckpointedFit`).
    random_state : int, default=0
    verbose : int, default=0

    Attributes
    ----------
    model_ : NeuroformerModule
    tokenizer_ : SpikeTokenizer
    history_ : list of dict
    n_neurons_ : int
    behavior_coef_, behavior_intercept_ : ndarray
        The behaviour head (:meth:`fit_behavior`), ``(n_vars, n_windows *
        d_model)`` and ``(n_vars,)``, in the behaviour's units.
    behavior_n_windows_ : int
        Windows the head reads.
    behavior_times_ : ndarray
        The labelled samples' times (window centres), e.g. to train
        :class:`~neuro.spikes.RidgeDecoder` on the same examples
        (``fit(rec, times=nf.behavior_times_)``).
    behavior_unfreeze_ : int
        Final blocks fine-tuned with the head (0: frozen network).
    behavior_net_ : NeuroformerModule
        With ``behavior_unfreeze_ > 0``: the network the head reads, a copy
        of ``model_`` whose last blocks were fine-tuned (saved as those
        blocks' weights only, ``behavior_weights_``).
    truncation_ : dict
        Samples and spikes dropped to fit the blocks in training
        (:func:`~neuro.spikes.tokenizer.truncation_report`; the tokeniser
        also warns in one line when it drops any).

    Examples
    --------
    >>> from data_loaders.simulate.spikes import simulate_spiking_circuit
    >>> sim = simulate_spiking_circuit(n_neurons=12, n_hubs=2, duration=20.0, seed=0)
    >>> nf = Neuroformer(d_model=16, n_heads=2, epochs=1, device="cpu").fit(sim.recording)
    >>> nf.connectivity(sim.recording).shape
    (12, 12)
    """

    def __init__(
        self,
        dt: float = 0.01,
        window: float = 0.05,
        past_window: float = 0.15,
        block_size: int = 64,
        past_block_size: int = 192,
        stride: float | None = None,
        n_stimulus_frames: int = 3,
        d_model: int = 64,
        n_heads: int = 4,
        n_self_layers: int = 1,
        n_cross_layers: int = 1,
        n_final_layers: int = 1,
        n_frame_layers: int = 1,
        frame_patch=(3, 5, 5),
        contrastive_dim: int = 0,
        behavior_context: bool = False,
        dropout: float = 0.1,
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        val_fraction: float = 0.1,
        patience: int = 5,
        device: str = "auto",
        precision: str = "32",
        checkpoint_dir=None,
        checkpoint_every_n_steps: int | None = None,
        random_state: int = 0,
        verbose: int = 0,
    ) -> None:
        self.dt = dt
        self.window = window
        self.past_window = past_window
        self.block_size = block_size
        self.past_block_size = past_block_size
        self.stride = stride
        self.n_stimulus_frames = n_stimulus_frames
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_self_layers = n_self_layers
        self.n_cross_layers = n_cross_layers
        self.n_final_layers = n_final_layers
        self.n_frame_layers = n_frame_layers
        self.frame_patch = frame_patch
        self.contrastive_dim = contrastive_dim
        self.behavior_context = behavior_context
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.patience = patience
        self.device = device
        self.precision = precision
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every_n_steps = checkpoint_every_n_steps
        self.random_state = random_state
        self.verbose = verbose

    # --------------------------------------------------------------- samples
    def _anchors(self, tok: SpikeTokenizer, spikes, intervals) -> np.ndarray:
        parts = []
        for a, b in _intervals(intervals, spikes.t_start, spikes.t_stop):
            try:
                parts.append(tok.anchors(a, b, self.stride))
            except InputError:  # an interval too short for one sample
                continue
        if not parts:
            raise InputError(
                f"No interval is longer than past_window + window = "
                f"{tok.past_window + tok.window:.6g} s; give longer intervals or shorter windows."
            )
        return np.concatenate(parts)

    def _frame_index(self, frame_times, anchors: np.ndarray) -> np.ndarray:
        """``(n_anchors, n_stimulus_frames)`` indices of the frames on screen before each anchor."""
        last = np.searchsorted(frame_times, anchors - 0.5 * self.settings_.dt, side="right") - 1
        k = self.settings_.n_stimulus_frames
        return np.clip(last[:, None] - np.arange(k - 1, -1, -1)[None], 0, None)

    def _tokens(self, data, anchors: np.ndarray, report: dict | None = None):
        """Tensors ``(ids, dts, past_ids, past_dts[, frame_index][, behavior])`` of the anchors.

        ``report``, if given, receives the samples and spikes truncated.
        """
        spikes, _, frame_times, _, _ = _recording(data)
        batch = self.tokenizer_.encode(spikes, anchors)  # warns once if it truncates
        if report is not None:
            report.update(truncation_report(batch))
        out = [torch.from_numpy(batch[k]) for k in ("ids", "dts", "past_ids", "past_dts")]
        if self.settings_.n_stimulus_frames:
            out.append(torch.from_numpy(self._frame_index(frame_times, anchors)))
        if self.settings_.behavior_mean:
            z = (self._behavior_targets(data, anchors) - self.settings_.behavior_mean) / (
                self.settings_.behavior_std
            )
            out.append(torch.from_numpy(z.astype(np.float32)))
        return tuple(out)

    def _check_data(self, data, fitting: bool):
        spikes, stimulus, frame_times, _, _ = _recording(data)
        if not fitting and spikes.n_neurons != self.n_neurons_:
            raise InputError(
                f"The recording has {spikes.n_neurons} neurons but the model was trained on "
                f"{self.n_neurons_}; neuron ids must mean the same cells as in training."
            )
        if not fitting and self.settings_.n_stimulus_frames:
            shape = tuple(self.settings_.model["frame_shape"][1:])
            if stimulus is None:
                raise InputError(
                    "The model was trained with the stimulus; give an AlignedRecording with "
                    "the stimulus frames (or refit with n_stimulus_frames=0)."
                )
            if tuple(stimulus.shape[1:]) != shape:
                raise InputError(
                    f"The stimulus frames are {tuple(stimulus.shape[1:])} pixels but the model "
                    f"was trained on {shape}; give frames of the training size."
                )
        n_behavior = len(self.settings_.behavior_mean) if not fitting else 0
        if n_behavior:
            behavior = _recording(data)[3]
            if behavior is None:
                raise InputError(
                    "The model was trained with behaviour as context (behavior_context=True); "
                    "give an AlignedRecording with behavior= and behavior_times=."
                )
            got = np.asarray(behavior).reshape(len(behavior), -1).shape[1]
            if got != n_behavior:
                raise InputError(
                    f"The recording has {got} behaviour variable(s) but the model was trained "
                    f"with {n_behavior} as context; give the same variables."
                )
        return spikes, stimulus, frame_times

    # ------------------------------------------------------------------- fit
    def fit(self, X, y=None, *, intervals=None, val_intervals=None, resume: bool = False):
        """Pretrain on the spikes (and stimulus) of a recording.

        Parameters
        ----------
        X : AlignedRecording or SpikeTrains
        y : None
            Unused (the spikes are their own targets).
        intervals : list of (start, stop), optional
            Training intervals in seconds (default: the whole recording),
            e.g. ``split_intervals(...).train``.
        val_intervals : list of (start, stop), optional
            Early-stopping intervals; default: the last ``val_fraction`` of
            the training anchors.
        resume : bool, default=False
            Continue a killed run from ``checkpoint_dir``.

        Returns
        -------
        self
        """
        from neuro.train.seed import seed_everything

        for name in ("block_size", "past_block_size", "epochs", "batch_size", "patience"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("n_stimulus_frames", self.n_stimulus_frames, minimum=0)
        check_float("val_fraction", self.val_fraction, minimum=0.0, maximum=0.5)
        spikes, stimulus, _ = self._check_data(X, fitting=True)
        tok = SpikeTokenizer(
            spikes.n_neurons,
            self.dt,
            self.window,
            self.past_window,
            self.block_size,
            self.past_block_size,
        )
        n_frames = int(self.n_stimulus_frames) if stimulus is not None else 0
        behavior = (
            _recording(X)[3] if check_bool("behavior_context", self.behavior_context) else None
        )
        if self.behavior_context and behavior is None:
            raise InputError(
                "behavior_context=True needs behaviour: give an AlignedRecording with behavior= "
                "and behavior_times= (or set behavior_context=False)."
            )
        n_behavior = (
            0 if behavior is None else np.asarray(behavior).reshape(len(behavior), -1).shape[1]
        )
        frame_shape = None if not n_frames else (n_frames, *map(int, stimulus.shape[1:]))
        cfg = NeuroformerConfig(
            n_neurons=spikes.n_neurons,
            n_dt=tok.n_dt,
            block_size=tok.block_size,
            past_block_size=tok.past_block_size,
            d_model=self.d_model,
            n_heads=self.n_heads,
            n_self_layers=self.n_self_layers,
            n_cross_layers=self.n_cross_layers,
            n_final_layers=self.n_final_layers,
            n_frame_layers=self.n_frame_layers,
            frame_shape=frame_shape,
            frame_patch=tuple(int(v) for v in self.frame_patch),
            contrastive_dim=self.contrastive_dim,
            n_behavior=n_behavior,
            dropout=self.dropout,
        )
        cfg.check()
        self.tokenizer_ = tok
        self.settings_ = _Settings(
            spikes.n_neurons,
            tok.dt,
            tok.window,
            tok.past_window,
            tok.block_size,
            tok.past_block_size,
            asdict(cfg),
            n_frames,
        )
        self.n_neurons_ = int(spikes.n_neurons)
        anchors = self._anchors(tok, spikes, intervals)
        if n_behavior:  # z-scored with the training samples' mean and sd
            y = self._behavior_targets(X, anchors)
            sd = y.std(0)
            self.settings_.behavior_mean = y.mean(0).tolist()
            self.settings_.behavior_std = np.where(sd > 0, sd, 1.0).tolist()
        if val_intervals is not None:
            val_anchors = self._anchors(tok, spikes, val_intervals)
        else:
            n_val = round(len(anchors) * float(self.val_fraction))
            anchors, val_anchors = anchors[: len(anchors) - n_val], anchors[len(anchors) - n_val :]
        if len(anchors) < 2:
            raise InputError(
                f"Only {len(anchors)} training sample(s) fit in the training intervals; give a "
                "longer recording or shorter windows."
            )
        self.truncation_ = {}
        train = self._tokens(X, anchors, report=self.truncation_)
        val = self._tokens(X, val_anchors) if len(val_anchors) else None
        seed_everything(self.random_state)
        net = NeuroformerModule(cfg)
        frames = None
        if n_frames:
            frames = torch.from_numpy(np.ascontiguousarray(stimulus, dtype=np.float32))
        trainer = self._trainer(len(anchors), validate=val is not None, grad_clip_norm=1.0)
        self.history_ = trainer.fit(
            _Objective(net, frames), train, val, resume=self._resume(resume)
        )
        self.model_ = net.cpu().eval()
        return self

    # ------------------------------------------------------------- inference
    def _batches(self, data, intervals, batch_size: int, network=None, anchors=None):
        """``(net, anchors, tokens, context)`` batch by batch on the device, in eval mode.

        ``tokens`` is ``(ids, dts, past_ids, past_dts)``; ``context`` holds
        the keyword arguments ``frames`` and ``behavior`` of the network's
        ``forward`` (None where the model has no such input).

        ``network`` replaces the pretrained ``model_`` (the fine-tuned
        behaviour network); ``anchors`` replaces the anchors of ``intervals``.
        """
        from neuro.train.device import resolve_device

        self._check_fitted()
        spikes, stimulus, _ = self._check_data(data, fitting=False)
        if anchors is None:
            anchors = self._anchors(self.tokenizer_, spikes, intervals)
        device = resolve_device(self.device)
        net = (self.model_ if network is None else network).to(device).eval()
        frames = None
        if self.settings_.n_stimulus_frames:
            frames = torch.from_numpy(np.ascontiguousarray(stimulus, dtype=np.float32)).to(device)
        try:
            for start in range(0, len(anchors), batch_size):
                a = anchors[start : start + batch_size]
                tokens = [t.to(device) for t in self._tokens(data, a)]
                rest = tokens[4:]
                context = {
                    "frames": frames[rest.pop(0)] if frames is not None else None,
                    "behavior": rest.pop(0) if rest else None,
                }
                yield net, a, tokens[:4], context
        finally:
            net.cpu()

    def cross_entropy(self, X, intervals=None, batch_size: int = 256) -> dict[str, float]:
        """Held-out next-neuron cross-entropy beside the firing-frequency entropy.

        Parameters
        ----------
        X : AlignedRecording or SpikeTrains
        intervals : list of (start, stop), optional
            Where to score (default: the whole recording).
        batch_size : int, default=256
            Samples per forward pass.

        Returns
        -------
        dict
            ``id_cross_entropy``: mean -log p(next neuron) over the spike
            tokens (nats); ``dt_cross_entropy`` likewise for their dt;
            ``frequency_entropy``: the entropy of which neuron fires (over
            the same tokens), what a model knowing only each neuron's firing
            frequency scores at best; ``n_tokens``.
        """
        c = self.model_.config
        id_sum = dt_sum = 0.0
        n = 0
        counts = torch.zeros(c.n_neurons, dtype=torch.float64)
        with torch.inference_mode():
            for net, _, (ids, dts, pid, pdt), ctx in self._batches(X, intervals, batch_size):
                out = net(ids, dts, pid, pdt, **ctx)
                target = ids[:, 1:]
                spike = target < c.n_neurons
                logp = out["id_logits"][:, :-1].float().log_softmax(-1)
                id_sum += float(-logp.gather(-1, target[..., None])[..., 0][spike].sum())
                logq = out["dt_logits"][:, :-1].float().log_softmax(-1)
                dt_sum += float(-logq.gather(-1, dts[:, 1:, None])[..., 0][spike].sum())
                n += int(spike.sum())
                counts += torch.bincount(target[spike].cpu(), minlength=c.n_neurons).double()
        if n == 0:
            raise InputError("The scored intervals hold no spikes; give intervals with spikes.")
        p = counts[counts > 0] / n
        return {
            "id_cross_entropy": id_sum / n,
            "dt_cross_entropy": dt_sum / n,
            "frequency_entropy": float(-(p * p.log()).sum()),
            "n_tokens": n,
        }

    def score(self, X, y=None) -> float:
        """Minus the next-neuron cross-entropy per spike token (higher is better)."""
        return -self.cross_entropy(X)["id_cross_entropy"]

    def generate(
        self,
        X,
        intervals=None,
        temperature: float = 1.0,
        seed: int = 0,
        batch_size: int = 256,
        use_cache: bool = True,
    ):
        """Spikes sampled window by window, each from the true past window and stimulus.

        Parameters
        ----------
        X : AlignedRecording or SpikeTrains
            The context (past spikes and stimulus) to condition on.
        intervals : list of (start, stop), optional
            Where to generate (default: the whole recording); the current
            windows tile each interval after its first ``past_window``.
        temperature : float, default=1.0
        seed : int, default=0
            Generation is reproducible from the seed.
        batch_size : int, default=256
        use_cache : bool, default=True
            Key/value cache (False re-runs the prefix each step: same
            samples, slower).

        Returns
        -------
        SpikeTrains
            Generated spikes over the recording's interval (each at the
            start of its bin).
        """
        from data_loaders.spikes import SpikeTrains

        check_float("temperature", temperature, minimum=0.0, strict_minimum=True)
        tok = self.tokenizer_
        c = self.model_.config
        allowed = torch.zeros(c.n_dt, dtype=torch.bool)
        allowed[: tok.n_bins] = True
        ids_out, times_out = [], []
        gen = torch.Generator().manual_seed(int(seed))
        with torch.inference_mode():
            for net, anchors, (_, _, pid, pdt), ctx in self._batches(X, intervals, batch_size):
                g = gen if pid.device.type == "cpu" else None
                if g is None:
                    g = torch.Generator(device=pid.device).manual_seed(int(seed) + len(ids_out))
                ids, dts = net.generate(
                    pid,
                    pdt,
                    **ctx,
                    temperature=temperature,
                    generator=g,
                    use_cache=use_cache,
                    sos_dt=tok.sos_dt,
                    dt_allowed=allowed.to(pid.device),
                )
                n, t = tok.decode(ids.cpu().numpy(), dts.cpu().numpy(), anchors)
                ids_out.append(n)
                times_out.append(t)
        spikes = _recording(X)[0]
        return SpikeTrains.from_arrays(
            np.concatenate(ids_out),
            np.concatenate(times_out),
            n_neurons=self.n_neurons_,
            t_start=spikes.t_start,
            t_stop=spikes.t_stop,
        )

    def connectivity(
        self, X, intervals=None, normalize: bool = True, batch_size: int = 256
    ) -> np.ndarray:
        """Attention from each predicted neuron to each past-window neuron, ``(N, N)``.

        For every spike token predicted (the target neuron ``i``), the
        cross-attention of its query to the past window (averaged over heads
        and cross-attention layers) is summed per source neuron ``j`` of the
        past tokens, over all the data.

        Parameters
        ----------
        X : AlignedRecording or SpikeTrains
        intervals : list of (start, stop), optional
        normalize : bool, default=True
            Divide by the same sum for uniform attention over the real past
            tokens, so 1 means "as much as chance" and a neuron is not read
            as a strong source just because it fires often. False: the mean
            attention mass per prediction of ``i``.
        batch_size : int, default=256

        Returns
        -------
        ndarray (n_neurons, n_neurons), float64
            ``[i, j]``: attention of target ``i`` on source ``j`` (the
            convention of ``adjacency[i, j]`` = effect of ``j`` on ``i``); NaN
            where ``i`` was never predicted or ``j`` never in a past window.
        """
        c = self.model_.config
        n = c.n_neurons
        mass = torch.zeros(n, n, dtype=torch.float64)
        chance = torch.zeros(n, n, dtype=torch.float64)
        targets = torch.zeros(n, dtype=torch.float64)
        with torch.inference_mode():
            for net, _, (ids, dts, pid, pdt), ctx in self._batches(X, intervals, batch_size):
                w = net(ids, dts, pid, pdt, **ctx, return_weights=True)["past_attention"]
                w = w.float().mean(1)[:, :-1]  # (B, L-1, P): query l predicts token l + 1
                target = ids[:, 1:]
                t_onehot = F.one_hot(target.clamp_max(n), n + 1)[..., :n].float()  # (B, L-1, N)
                s_onehot = F.one_hot(pid.clamp_max(n), n + 1)[..., :n].float()  # (B, P, N)
                real = (pid != c.pad_id).float()
                uniform = real / real.sum(1, keepdim=True)  # (B, P)
                per_query = torch.bmm(w, s_onehot)  # (B, L-1, N) mass on each source
                mass += torch.einsum("bli,blj->ij", t_onehot, per_query).double().cpu()
                base = torch.einsum("bp,bpj->bj", uniform, s_onehot)  # (B, N)
                chance += torch.einsum("bli,bj->ij", t_onehot, base).double().cpu()
                targets += t_onehot.sum((0, 1)).double().cpu()
        with np.errstate(invalid="ignore", divide="ignore"):
            if normalize:
                out = (mass / chance).numpy()
                out[chance.numpy() == 0] = np.nan
            else:
                out = (mass / targets[:, None]).numpy()
                out[targets.numpy() == 0] = np.nan
        return out

    # -------------------------------------------------------------- behaviour
    def _behavior_targets(self, data, anchors: np.ndarray) -> np.ndarray:
        """Each behaviour variable at the centre of each current window ``(n_anchors, n_vars)``."""
        _, _, _, behavior, times = _recording(data)
        if behavior is None:
            raise InputError(
                "The recording has no behaviour; give an AlignedRecording with behavior= and "
                "behavior_times=."
            )
        centre = anchors - self.settings_.window / 2
        return np.stack([np.interp(centre, times, b) for b in np.asarray(behavior).T], axis=1)

    def features(self, X, intervals=None, batch_size: int = 256):
        """Each sample's pooled current-window features from the pretrained network.

        Parameters
        ----------
        X : AlignedRecording or SpikeTrains
        intervals : list of (start, stop), optional
        batch_size : int, default=256

        Returns
        -------
        anchors : ndarray (n_samples,)
            Window ends, seconds.
        features : ndarray (n_samples, d_model), float32
            The last layer's output averaged over the window's real tokens.
        """
        return self._pooled(X, intervals, batch_size)

    def _pooled(self, X, intervals=None, batch_size: int = 256, network=None, anchors=None):
        """:meth:`features` of ``network`` (default: the pretrained network)."""
        c = self.model_.config
        feats = []
        batches = self._batches(X, intervals, batch_size, network, anchors)
        anchors = []
        with torch.inference_mode():
            for net, a, (ids, dts, pid, pdt), ctx in batches:
                h = net(ids, dts, pid, pdt, **ctx)["features"].float()
                feats.append(_mean_over_tokens(h, ids, c.pad_id).cpu().numpy())
                anchors.append(a)
        return np.concatenate(anchors), np.concatenate(feats).astype(np.float32)

    def fit_behavior(
        self,
        X,
        intervals=None,
        max_samples: int | None = None,
        alphas=None,
        *,
        n_windows: int = 1,
        unfreeze: int = 0,
        epochs: int = 50,
        lr: float = 1e-4,
    ):
        """Fit a behaviour head on few labelled samples, the network frozen or partly frozen.

        First a ridge regression (one alpha per variable by leave-one-out
        CV, scikit-learn's :class:`~sklearn.linear_model.RidgeCV`) from the
        pretrained :meth:`features` to each behaviour variable at the
        window's centre. With ``unfreeze=k``, a copy of the network then has
        its last ``k`` final self-attention blocks and output norm trained
        together with the head (initialised from the ridge fit) on the same
        samples, by mean squared error on the standardised variables, through
        :class:`neuro.train.Trainer`; everything else stays frozen, and the
        pretrained network (``model_``, which :meth:`generate` and
        :meth:`connectivity` use) is left as it was.

        Parameters
        ----------
        X : AlignedRecording
            With behaviour.
        intervals : list of (start, stop), optional
            Where the labelled samples come from.
        max_samples : int, optional
            Use this many labelled samples, drawn at random (seeded by
            ``random_state``): the few-shot setting.
        alphas : sequence of float, optional
            Ridge penalties to choose from (default ``10 ** arange(-3, 5)``).
        n_windows : int, default=1
            The head reads the pooled features of this many consecutive
            current windows ending at the sample, concatenated (1: the
            sample's own window, as in the paper). Behaviour that integrates
            activity over longer than ``window + past_window`` needs more:
            ``n_windows=10`` with the default 50 ms windows sees the same
            0.5 s as :class:`~neuro.spikes.RidgeDecoder`'s default. Windows
            before the recording's first full one repeat it.
        unfreeze : int, default=0
            Final blocks to fine-tune, ``0 .. n_final_layers`` (0: the ridge
            head on frozen features only).
        epochs : int, default=50
            Fine-tuning epochs (``unfreeze > 0``); no samples are held out
            for early stopping, so keep it modest with few labels.
        lr : float, default=1e-4
            Fine-tuning learning rate (AdamW, cosine schedule, the
            estimator's ``weight_decay``).

        Returns
        -------
        self
        """
        from sklearn.linear_model import RidgeCV

        self._check_fitted()
        n_final = int(self.model_.config.n_final_layers)
        k = check_int("unfreeze", unfreeze, minimum=0)
        if k > n_final:
            raise InputError(
                f"unfreeze={k} but the network has {n_final} final block(s); give "
                f"unfreeze between 0 and {n_final} (or refit with more n_final_layers)."
            )
        spikes = self._check_data(X, fitting=False)[0]
        anchors = self._anchors(self.tokenizer_, spikes, intervals)
        if max_samples is not None:
            m = check_int("max_samples", max_samples, minimum=2)
            if m < len(anchors):
                pick = np.random.default_rng(self.random_state).permutation(len(anchors))[:m]
                anchors = np.sort(anchors[pick])
        y = self._behavior_targets(X, anchors)
        self.behavior_n_windows_ = check_int("n_windows", n_windows, minimum=1)
        feats = self._window_features(X, anchors)
        alphas = 10.0 ** np.arange(-3, 5) if alphas is None else np.asarray(alphas, float)
        mean, std = y.mean(0), y.std(0)
        std = np.where(std > 0, std, 1.0)
        head = RidgeCV(alphas=alphas, alpha_per_target=True).fit(feats, (y - mean) / std)
        coef = np.asarray(head.coef_, dtype=np.float64).reshape(y.shape[1], -1)
        intercept = np.asarray(head.intercept_, dtype=np.float64).reshape(-1)
        for key in ("behavior_weights_", "behavior_net_"):
            self.__dict__.pop(key, None)
        if k:
            coef, intercept = self._finetune_behavior(
                X, anchors, (y - mean) / std, coef, intercept, k, epochs, lr
            )
        self.behavior_coef_ = coef * std[:, None]
        self.behavior_intercept_ = intercept * std + mean
        self.n_behavior_samples_ = len(y)
        self.behavior_times_ = anchors - self.settings_.window / 2
        self.behavior_unfreeze_ = k
        return self

    def _lagged_anchors(self, X, anchors: np.ndarray) -> np.ndarray:
        """``(n, n_windows)``: each anchor and the ends of the windows before it (newest first)."""
        spikes = _recording(X)[0]
        first = spikes.t_start + self.settings_.window + self.settings_.past_window
        lags = np.arange(self.behavior_n_windows_) * self.settings_.window
        return np.maximum(np.asarray(anchors, float)[:, None] - lags[None], first)

    def _window_features(self, X, anchors: np.ndarray, network=None) -> np.ndarray:
        """``(n, n_windows * d_model)``: pooled features of each anchor's windows."""
        lagged = self._lagged_anchors(X, anchors)
        # consecutive samples share windows: compute each distinct window once
        _, first, inverse = np.unique(
            np.round(lagged.reshape(-1), 9), return_index=True, return_inverse=True
        )
        _, feats = self._pooled(X, anchors=lagged.reshape(-1)[first], network=network)
        return feats[inverse.reshape(-1)].reshape(len(lagged), -1)

    def _finetune_behavior(self, X, anchors, y, coef, intercept, k, epochs, lr):
        """Train the last ``k`` final blocks, the norm and the head; return the head's weights.

        The frozen part's output is computed once (eval mode) and the
        trained blocks run on it, so an epoch costs ``k`` blocks, not the
        whole network.
        """
        import copy

        from neuro.train import Trainer

        check_int("epochs", epochs, minimum=1)
        check_float("lr", lr, minimum=0.0, strict_minimum=True)
        net = copy.deepcopy(self.model_).requires_grad_(False)
        stop = net.config.n_final_layers - k
        tuned = [*(f"final_blocks.{i}" for i in range(stop, net.config.n_final_layers)), "norm"]
        lagged = self._lagged_anchors(X, anchors)
        hidden, real = [], []
        with torch.inference_mode():
            batches = self._batches(X, None, 256, net, lagged.reshape(-1))
            for net_on_device, _, (ids, dts, pid, pdt), ctx in batches:
                h = net_on_device.hidden(ids, dts, pid, pdt, **ctx, stop=stop)
                hidden.append(h.float().cpu())
                real.append((ids != net.config.pad_id).cpu())
        shape = (*lagged.shape, -1)
        hidden = torch.cat(hidden).reshape(*shape, net.config.d_model)
        data = (hidden, torch.cat(real).reshape(shape), torch.from_numpy(y.astype(np.float32)))
        for name in tuned:
            net.get_submodule(name).requires_grad_(True)
        head = nn.Linear(coef.shape[1], coef.shape[0])
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(coef))
            head.bias.copy_(torch.from_numpy(intercept))
        trainer = Trainer(
            max_epochs=epochs,
            batch_size=min(self.batch_size, len(anchors)),
            lr=lr,
            weight_decay=self.weight_decay,
            device=self.device,
            precision=self.precision,
            seed=self.random_state,
            verbose=self.verbose,
        )
        self.behavior_history_ = trainer.fit(_BehaviorObjective(net, stop, head), data)
        net = net.cpu().eval().requires_grad_(False)
        self.behavior_net_ = net
        self.behavior_weights_ = {
            f"{name}.{key}": v.detach().clone()
            for name in tuned
            for key, v in net.get_submodule(name).state_dict().items()
        }
        w = head.weight.detach().cpu().double().numpy()
        return w, head.bias.detach().cpu().double().numpy()

    def predict_behavior(self, X, intervals=None) -> tuple[np.ndarray, np.ndarray]:
        """Decoded behaviour ``(times, predictions (n_samples, n_vars))`` at window centres."""
        if not hasattr(self, "behavior_coef_"):
            raise InputError("Call fit_behavior first: no behaviour head has been fitted.")
        spikes = self._check_data(X, fitting=False)[0]
        anchors = self._anchors(self.tokenizer_, spikes, intervals)
        feats = self._window_features(X, anchors, getattr(self, "behavior_net_", None))
        pred = feats.astype(np.float64) @ self.behavior_coef_.T + self.behavior_intercept_
        return anchors - self.settings_.window / 2, pred

    def behavior_score(self, X, intervals=None) -> np.ndarray:
        """Pearson r between decoded and true behaviour, one per variable."""
        times, pred = self.predict_behavior(X, intervals)
        true = self._behavior_targets(X, times + self.settings_.window / 2)
        pred = pred.reshape(len(pred), -1)
        return np.array([np.corrcoef(pred[:, k], true[:, k])[0, 1] for k in range(true.shape[1])])

    # ------------------------------------------------------------- save/load
    def _fitted_state(self) -> dict[str, Any]:
        return {
            "settings_": asdict(self.settings_),
            "weights": {k: v.detach().cpu() for k, v in self.model_.state_dict().items()},
            "history_": list(self.history_),
            "truncation_": dict(self.truncation_),
            "n_neurons_": int(self.n_neurons_),
            **{
                k: getattr(self, k)
                for k in (
                    "behavior_coef_",
                    "behavior_intercept_",
                    "n_behavior_samples_",
                    "behavior_times_",
                    "behavior_n_windows_",
                    "behavior_unfreeze_",
                    "behavior_weights_",
                    "behavior_history_",
                )
                if hasattr(self, k)
            },
        }

    def _restore_fitted_state(self, state: dict[str, Any]) -> None:
        state = dict(state)
        s = dict(state.pop("settings_"))
        model = dict(s["model"])
        for key in ("frame_shape", "frame_patch"):
            if model.get(key) is not None:
                model[key] = tuple(model[key])
        s["model"] = model
        self.settings_ = _Settings(**s)
        self.tokenizer_ = SpikeTokenizer(
            s["n_neurons"],
            s["dt"],
            s["window"],
            s["past_window"],
            s["block_size"],
            s["past_block_size"],
        )
        net = NeuroformerModule(NeuroformerConfig(**model))
        net.load_state_dict(state.pop("weights"))
        self.model_ = net.eval()
        tuned = state.pop("behavior_weights_", None)
        if tuned is not None:  # the fine-tuned behaviour network: the pretrained one, patched
            import copy

            behavior_net = copy.deepcopy(net)
            missing = set(tuned) - set(behavior_net.state_dict())
            if missing:
                raise InputError(
                    f"The saved behaviour weights name {sorted(missing)[:3]}, which the network "
                    "does not have; the file is damaged or from another version."
                )
            behavior_net.load_state_dict(tuned, strict=False)
            self.behavior_net_ = behavior_net.eval().requires_grad_(False)
            self.behavior_weights_ = tuned
        if "behavior_coef_" in state:  # files from before the head read several windows
            state.setdefault("behavior_n_windows_", 1)
        for key, value in state.items():
            setattr(self, key, value)
