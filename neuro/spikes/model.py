"""The Neuroformer network: generative pretraining on spike tokens.

After "Neuroformer: Multimodal and Multitask Generative Pretraining for Brain
Data" (Antoniades et al., ICLR 2024). A sample is the spikes of a short
*current* window as a sequence of (neuron id, dt) tokens, with the spikes of
the *past* window before it, the stimulus frames around it and behaviour
variables as context. The network predicts the next token's neuron id and dt.

Architecture (:class:`NeuroformerModule`), top to bottom:

1. Token embeddings: ``id_embed(id) + dt_embed(dt) + position`` for the
   current tokens (learned positions) and for the past tokens (their own
   learned positions); the dt embedding is a fixed sinusoid of the dt bin
   (the paper embeds the dt *value*; the bin times the bin width is that
   value), so neighbouring dts get similar codes.
2. Stimulus: frames ``(n_frames, H, W)`` -> a Conv3d patch embedding (the
   paper's kernel ``3 x 5 x 5``, stride equal to the kernel) -> tokens with
   learned positions -> ``n_frame_layers`` self-attention blocks.
3. Behaviour: each of ``n_behavior`` variables becomes one token
   (``value * w_k + e_k``).
4. Current tokens: ``n_self_layers`` causal self-attention blocks;
   ``n_cross_layers`` cross-attention blocks to the past tokens (padding
   masked), as many to the frame tokens and to the behaviour tokens;
   ``n_final_layers`` causal self-attention blocks. Past tokens are only embedded, as in the paper.
5. Heads: next neuron id (over ``n_neurons`` + the specials) and next dt
   (over the dt classes); optional behaviour regression head on the
   mean-pooled current features; optional contrastive projections of the
   pooled neural and frame features (InfoNCE, temperature ``0.5``).

Every attention goes through
:func:`torch.nn.functional.scaled_dot_product_attention`, except when
weights are asked for (connectivity), which computes the same numbers
explicitly.

Departures from the public code, each deliberate:

* padding is masked in the cross-attention to the past window (the code
  lets every query attend to padding slots);
* fused attention (the code writes an explicit fp32 softmax);
* the loss weights are the configured ones (``id_weight``, ``dt_weight``;
  a truthiness bug in the code fixes them at 0.6 x 0.75 and 0.4 x 0.75).

Generation (:meth:`NeuroformerModule.generate`) keeps a key/value cache
per self-attention layer and the cross-attention keys and values of the
context, so producing ``T`` tokens costs ``T`` single-token steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neuro.errors import InputError

__all__ = ["PAPER_SIZE", "NeuroformerConfig", "NeuroformerModule", "sinusoid"]

#: The paper's width (about 24M parameters with the video encoder and contrastive heads).
PAPER_SIZE = {
    "d_model": 256,
    "n_heads": 8,
    "n_self_layers": 6,
    "n_cross_layers": 6,
    "n_final_layers": 6,
    "n_frame_layers": 6,
    "block_size": 100,
    "past_block_size": 700,
}


@dataclass
class NeuroformerConfig:
    """Sizes and loss weights of a :class:`NeuroformerModule` (saved with its weights).

    Parameters
    ----------
    n_neurons : int
        Neuron ids ``0 .. n_neurons - 1``; the id vocabulary adds three
        specials: ``sos_id = n_neurons``, ``eos_id = n_neurons + 1``,
        ``pad_id = n_neurons + 2``.
    n_dt : int
        dt classes (the bins of a window plus any special dt values); the dt
        of a ``pad_id`` token is ignored.
    block_size, past_block_size : int
        Tokens of the current window and of the past window (with SOS/EOS).
    d_model, n_heads : int
        Width (a multiple of ``n_heads``) and attention heads.
    n_self_layers, n_final_layers : int
        Causal self-attention blocks before and after the cross-attention.
    n_cross_layers : int
        Cross-attention blocks to each context (past window, frames,
        behaviour).
    n_frame_layers : int
        Self-attention blocks over the frame tokens.
    frame_shape : (n_frames, H, W) or None
        The stimulus clip of one sample; None: no stimulus.
    frame_patch : (t, h, w)
        Conv3d kernel and stride of the patch embedding (paper: 3 x 5 x 5,
        clipped to the clip's size).
    n_behavior : int
        Behaviour variables given as context tokens (0: none).
    n_behavior_out : int
        Outputs of the behaviour regression head (0: no head).
    contrastive_dim : int
        Shared space of the neural-stimulus contrastive loss (0: off).
    dropout : float
    id_weight, dt_weight, behavior_weight, contrastive_weight : float
        Loss weights.
    temperature : float
        InfoNCE temperature (paper: 0.5).
    """

    n_neurons: int
    n_dt: int
    block_size: int = 64
    past_block_size: int = 128
    d_model: int = 64
    n_heads: int = 4
    n_self_layers: int = 1
    n_cross_layers: int = 1
    n_final_layers: int = 1
    n_frame_layers: int = 1
    frame_shape: tuple[int, int, int] | None = None
    frame_patch: tuple[int, int, int] = (3, 5, 5)
    n_behavior: int = 0
    n_behavior_out: int = 0
    contrastive_dim: int = 0
    dropout: float = 0.1
    id_weight: float = 0.6
    dt_weight: float = 0.4
    behavior_weight: float = 1.0
    contrastive_weight: float = 0.2
    temperature: float = 0.5

    @property
    def sos_id(self) -> int:
        return self.n_neurons

    @property
    def eos_id(self) -> int:
        return self.n_neurons + 1

    @property
    def pad_id(self) -> int:
        return self.n_neurons + 2

    @property
    def n_ids(self) -> int:
        """Size of the id vocabulary (neurons and the three specials)."""
        return self.n_neurons + 3

    def check(self) -> None:
        """Raise :class:`~neuro.errors.InputError` on sizes the module cannot build."""
        for name in (
            "n_neurons",
            "n_dt",
            "block_size",
            "past_block_size",
            "d_model",
            "n_heads",
            "n_cross_layers",
        ):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1; got {getattr(self, name)}.")
        for name in ("n_self_layers", "n_final_layers", "n_frame_layers", "n_behavior",
                     "n_behavior_out", "contrastive_dim"):  # fmt: skip
            if int(getattr(self, name)) < 0:
                raise InputError(f"{name} must be >= 0; got {getattr(self, name)}.")
        if self.d_model % self.n_heads or self.d_model % 2:
            raise InputError(
                f"d_model must be even and a multiple of n_heads={self.n_heads}; got "
                f"{self.d_model}."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout must lie in [0, 1); got {self.dropout}.")


def sinusoid(values: torch.Tensor, dim: int) -> torch.Tensor:
    """Fixed sinusoidal code of real ``values`` (any shape) -> ``(*values.shape, dim)``.

    Half the channels are sines, half cosines, at periods from ``2 pi`` to
    ``10000 * 2 pi`` (the transformer's positional code, read at any real
    value).

    Examples
    --------
    >>> sinusoid(torch.arange(3.0), 4).shape
    torch.Size([3, 4])
    """
    half = dim // 2
    freq = torch.exp(
        -math.log(10000.0) * torch.arange(half, device=values.device, dtype=torch.float32) / half
    )
    angle = values.float()[..., None] * freq
    return torch.cat([angle.sin(), angle.cos()], dim=-1)


# ------------------------------------------------------------------ blocks
class Attention(nn.Module):
    """Multi-head attention of queries ``x (B, L, d)`` on a context ``(B, S, d)``.

    With ``cache`` (a dict), keys and values are appended to ``cache["k"]``
    / ``cache["v"]`` (self-attention during generation) or computed once
    and kept (cross-attention, ``static=True``).

    ``fused = False`` (an attribute, not saved) computes
    ``softmax(Q K^T / sqrt(d)) V`` explicitly instead of calling
    :func:`~torch.nn.functional.scaled_dot_product_attention`: the same
    numbers, for benchmarks that time the fused kernel against the plain one.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.fused = True
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, d = t.shape
        return t.view(b, n, self.n_heads, d // self.n_heads).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        *,
        causal: bool = False,
        key_mask: torch.Tensor | None = None,
        cache: dict | None = None,
        static: bool = False,
        return_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``key_mask (B, S)`` is True where a key may be attended to."""
        q = self._split(self.q(x))
        if cache is not None and static and "k" in cache:
            k, v = cache["k"], cache["v"]
        else:
            k, v = (self._split(t) for t in self.kv(context).chunk(2, dim=-1))
            if cache is not None:
                if not static and "k" in cache:
                    k = torch.cat([cache["k"], k], dim=2)
                    v = torch.cat([cache["v"], v], dim=2)
                cache["k"], cache["v"] = k, v
        mask = None
        if key_mask is not None:
            mask = key_mask[:, None, None, :]  # (B, 1, 1, S)
        if causal and q.shape[2] > 1:
            lq, lk = q.shape[2], k.shape[2]
            tri = torch.ones(lq, lk, dtype=torch.bool, device=x.device).tril(lk - lq)
            mask = tri if mask is None else mask & tri
        weights = None
        drop = self.dropout if self.training else 0.0
        if return_weights or not self.fused:
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = scores.softmax(dim=-1)
            y = F.dropout(weights, drop, self.training) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        b, _, lq, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(b, lq, -1)), weights


class Block(nn.Module):
    """Pre-norm block: attention (self, causal self, or cross) then an MLP."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, cross: bool = False) -> None:
        super().__init__()
        self.cross = cross
        self.norm1 = nn.LayerNorm(d_model)
        self.norm_ctx = nn.LayerNorm(d_model) if cross else None
        self.attn = Attention(d_model, n_heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model),
            nn.GELU(),
            nn.Linear(4 * d_model, d_model),
            nn.Dropout(dropout),
        )

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        *,
        causal: bool = False,
        key_mask: torch.Tensor | None = None,
        cache: dict | None = None,
        return_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.norm1(x)
        ctx = self.norm_ctx(context) if self.cross else h
        a, w = self.attn(
            h,
            ctx,
            causal=causal,
            key_mask=key_mask,
            cache=cache,
            static=self.cross,
            return_weights=return_weights,
        )
        x = x + a
        return x + self.mlp(self.norm2(x)), w


# ------------------------------------------------------------------ module
class NeuroformerModule(nn.Module):
    """Next-spike-token model with past-window, stimulus and behaviour context.

    Parameters
    ----------
    config : NeuroformerConfig

    Shapes
    ------
    ``forward(ids, dts, past_ids, past_dts, frames=None, behavior=None)``:
    ``ids``, ``dts`` ``(B, L)`` int64 with ``L <= block_size``; ``past_ids``,
    ``past_dts`` ``(B, P)`` with ``P <= past_block_size``; ``frames``
    ``(B, n_frames, H, W)``; ``behavior`` ``(B, n_behavior)``. Returns a dict
    with ``id_logits (B, L, n_ids)``, ``dt_logits (B, L, n_dt)``,
    ``features (B, L, d_model)`` and, when configured, ``behavior
    (B, n_behavior_out)``, ``neural_embedding``/``frame_embedding``
    ``(B, contrastive_dim)``.

    Examples
    --------
    >>> cfg = NeuroformerConfig(n_neurons=7, n_dt=6, block_size=9, past_block_size=11, d_model=16)
    >>> m = NeuroformerModule(cfg)
    >>> ids = torch.randint(0, 7, (2, 9)); dts = torch.randint(0, 5, (2, 9))
    >>> out = m(ids, dts, torch.randint(0, 7, (2, 11)), torch.randint(0, 5, (2, 11)))
    >>> out["id_logits"].shape, out["dt_logits"].shape
    (torch.Size([2, 9, 10]), torch.Size([2, 9, 6]))
    """

    def __init__(self, config: NeuroformerConfig) -> None:
        super().__init__()
        config.check()
        self.config = c = config
        d = c.d_model
        self.id_embed = nn.Embedding(c.n_ids, d)
        self.pos = nn.Parameter(torch.zeros(c.block_size, d))
        self.past_pos = nn.Parameter(torch.zeros(c.past_block_size, d))
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.past_pos, std=0.02)
        self.drop = nn.Dropout(c.dropout)
        self.self_blocks = nn.ModuleList(
            [Block(d, c.n_heads, c.dropout) for _ in range(c.n_self_layers)]
        )
        self.past_cross = self._cross_stage()
        self.frame_embed = self.frame_cross = None
        if c.frame_shape is not None:
            t, h, w = (int(v) for v in c.frame_shape)
            kernel = tuple(min(k, s) for k, s in zip(c.frame_patch, (t, h, w), strict=True))
            self.frame_embed = nn.Conv3d(1, d, kernel_size=kernel, stride=kernel)
            n_tokens = math.prod(s // k for s, k in zip((t, h, w), kernel, strict=True))
            self.frame_pos = nn.Parameter(torch.zeros(n_tokens, d))
            nn.init.normal_(self.frame_pos, std=0.02)
            self.frame_blocks = nn.ModuleList(
                [Block(d, c.n_heads, c.dropout) for _ in range(c.n_frame_layers)]
            )
            self.frame_cross = self._cross_stage()
        self.behavior_cross = None
        if c.n_behavior:
            self.behavior_scale = nn.Parameter(torch.randn(c.n_behavior, d) * 0.02)
            self.behavior_embed = nn.Parameter(torch.randn(c.n_behavior, d) * 0.02)
            self.behavior_cross = self._cross_stage()
        self.final_blocks = nn.ModuleList(
            [Block(d, c.n_heads, c.dropout) for _ in range(c.n_final_layers)]
        )
        self.norm = nn.LayerNorm(d)
        self.id_head = nn.Linear(d, c.n_ids)
        self.dt_head = nn.Linear(d, c.n_dt)
        self.behavior_head = nn.Linear(d, c.n_behavior_out) if c.n_behavior_out else None
        self.neural_proj = self.frame_proj = None
        if c.contrastive_dim and c.frame_shape is not None:
            self.neural_proj = nn.Linear(d, c.contrastive_dim)
            self.frame_proj = nn.Linear(d, c.contrastive_dim)

    def _cross_stage(self) -> nn.ModuleList:
        c = self.config
        return nn.ModuleList(
            [Block(c.d_model, c.n_heads, c.dropout, cross=True) for _ in range(c.n_cross_layers)]
        )

    # -------------------------------------------------------------- context
    def _embed(self, ids: torch.Tensor, dts: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        return self.drop(
            self.id_embed(ids) + sinusoid(dts, self.config.d_model) + pos[: ids.shape[1]]
        )

    def context(self, past_ids, past_dts, frames=None, behavior=None) -> dict:
        """Embedded context tokens: past, frames (encoded), behaviour, and their masks."""
        c = self.config
        ctx = {
            "past": self._embed(past_ids, past_dts, self.past_pos),
            "past_mask": past_ids != c.pad_id,
        }
        if self.frame_embed is not None:
            if frames is None:
                raise InputError(
                    "This model was built with a stimulus (frame_shape); give frames "
                    f"(batch, {', '.join(map(str, c.frame_shape))})."
                )
            f = self.frame_embed(frames[:, None].float())  # (B, d, t', h', w')
            f = self.drop(f.flatten(2).transpose(1, 2) + self.frame_pos)
            for block in self.frame_blocks:
                f, _ = block(f)
            ctx["frames"] = f
        if self.behavior_cross is not None:
            if behavior is None:
                raise InputError(
                    f"This model was built with {c.n_behavior} behaviour variable(s) as "
                    "context (n_behavior); give behavior (batch, n_behavior)."
                )
            ctx["behavior"] = behavior.float()[..., None] * self.behavior_scale + (
                self.behavior_embed
            )
        return ctx

    # -------------------------------------------------------------- forward
    def _trunk(
        self,
        x: torch.Tensor,
        ctx: dict,
        caches: list[dict] | None = None,
        return_weights: bool = False,
        stop: int | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Current-token features, and the past cross-attention weights of each layer if asked.

        ``stop``: return the hidden state before ``final_blocks[stop]`` (no
        output norm) instead.
        """
        it = iter(caches) if caches is not None else None
        for block in self.self_blocks:
            x, _ = block(x, causal=True, cache=next(it) if it else None)
        past_w = []
        for block in self.past_cross:
            x, w = block(
                x,
                ctx["past"],
                key_mask=ctx["past_mask"],
                cache=next(it) if it else None,
                return_weights=return_weights,
            )
            past_w.append(w)
        for stage, key in ((self.frame_cross, "frames"), (self.behavior_cross, "behavior")):
            for block in stage or ():
                x, _ = block(x, ctx[key], cache=next(it) if it else None)
        for i, block in enumerate(self.final_blocks):
            if i == stop:
                return x, past_w
            x, _ = block(x, causal=True, cache=next(it) if it else None)
        return self.norm(x), past_w

    def hidden(self, ids, dts, past_ids, past_dts, frames=None, behavior=None, *, stop: int):
        """The current tokens' hidden state before ``final_blocks[stop]``, ``(B, L, d_model)``.

        With :meth:`head_features`, ``forward``'s features in two parts: the
        part below ``stop`` can be computed once when only the blocks above
        it are trained (behaviour fine-tuning).
        """
        if not 0 <= stop < len(self.final_blocks):
            raise InputError(f"stop must lie in [0, {len(self.final_blocks)}); got {stop}.")
        ctx = self.context(past_ids, past_dts, frames, behavior)
        return self._trunk(self._embed(ids, dts, self.pos), ctx, stop=stop)[0]

    def head_features(self, hidden: torch.Tensor, *, stop: int) -> torch.Tensor:
        """``final_blocks[stop:]`` and the output norm on :meth:`hidden`'s output."""
        for block in self.final_blocks[stop:]:
            hidden, _ = block(hidden, causal=True)
        return self.norm(hidden)

    def _n_caches(self) -> int:
        c = self.config
        n_stages = 1 + (self.frame_cross is not None) + (self.behavior_cross is not None)
        return c.n_self_layers + n_stages * c.n_cross_layers + c.n_final_layers

    def forward(
        self, ids, dts, past_ids, past_dts, frames=None, behavior=None, return_weights=False
    ) -> dict:
        c = self.config
        if ids.shape[1] > c.block_size or past_ids.shape[1] > c.past_block_size:
            raise InputError(
                f"Sequences of {ids.shape[1]} current / {past_ids.shape[1]} past tokens exceed "
                f"the model's block sizes ({c.block_size} / {c.past_block_size}); tokenise with "
                "the model's block sizes."
            )
        ctx = self.context(past_ids, past_dts, frames, behavior)
        x = self._embed(ids, dts, self.pos)
        h, past_w = self._trunk(x, ctx, return_weights=return_weights)
        out = {"id_logits": self.id_head(h), "dt_logits": self.dt_head(h), "features": h}
        if return_weights:  # (B, heads, L, P), averaged over the cross-attention layers
            out["past_attention"] = torch.stack(past_w).mean(0)
        real = (ids != c.pad_id).float()[..., None]
        pooled = (h * real).sum(1) / real.sum(1).clamp_min(1.0)
        if self.behavior_head is not None:
            out["behavior"] = self.behavior_head(pooled)
        if self.neural_proj is not None:
            out["neural_embedding"] = F.normalize(self.neural_proj(pooled), dim=-1)
            out["frame_embedding"] = F.normalize(self.frame_proj(ctx["frames"].mean(1)), dim=-1)
        return out

    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        """Weighted next-id and next-dt cross-entropy (padding ignored), plus the optional terms.

        ``batch`` holds ``ids, dts, past_ids, past_dts`` and, as configured,
        ``frames``, ``behavior`` (context) and ``behavior_target``.
        """
        c = self.config
        out = self(
            batch["ids"],
            batch["dts"],
            batch["past_ids"],
            batch["past_dts"],
            batch.get("frames"),
            batch.get("behavior"),
        )
        target_ids = batch["ids"][:, 1:]
        target_dts = batch["dts"][:, 1:].masked_fill(target_ids == c.pad_id, -100)
        target_ids = target_ids.masked_fill(target_ids == c.pad_id, -100)
        id_loss = F.cross_entropy(out["id_logits"][:, :-1].transpose(1, 2), target_ids)
        dt_loss = F.cross_entropy(out["dt_logits"][:, :-1].transpose(1, 2), target_dts)
        total = c.id_weight * id_loss + c.dt_weight * dt_loss
        metrics = {"id_loss": id_loss.detach(), "dt_loss": dt_loss.detach()}
        if "behavior" in out and "behavior_target" in batch:
            b_loss = F.mse_loss(out["behavior"], batch["behavior_target"].float())
            total = total + c.behavior_weight * b_loss
            metrics["behavior_loss"] = b_loss.detach()
        if "neural_embedding" in out:
            logits = out["neural_embedding"] @ out["frame_embedding"].T / c.temperature
            labels = torch.arange(len(logits), device=logits.device)
            nce = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
            total = total + c.contrastive_weight * nce
            metrics["contrastive_loss"] = nce.detach()
        metrics["loss"] = total
        return metrics

    # ----------------------------------------------------------- generation
    @torch.no_grad()
    def generate(
        self,
        past_ids: torch.Tensor,
        past_dts: torch.Tensor,
        frames: torch.Tensor | None = None,
        behavior: torch.Tensor | None = None,
        max_tokens: int | None = None,
        temperature: float = 1.0,
        greedy: bool = False,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        sos_dt: int = 0,
        dt_allowed: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample current-window tokens after ``[SOS]`` until EOS or ``max_tokens``.

        Parameters
        ----------
        past_ids, past_dts : tensor (B, P)
        frames, behavior : tensor, optional
            As for ``forward``.
        max_tokens : int, optional
            Tokens to generate after SOS (default: ``block_size - 1``).
        temperature : float, default=1.0
        greedy : bool, default=False
            Take the most likely id and dt instead of sampling.
        generator : torch.Generator, optional
            Source of the samples (reproducible generation).
        use_cache : bool, default=True
            Keep keys and values of earlier tokens (one single-token step per
            token); False re-runs the whole prefix at every step (the same
            result, slower).
        sos_dt : int, default=0
            The dt class that goes with the SOS token (the tokeniser's
            ``sos_dt``).
        dt_allowed : bool tensor (n_dt,), optional
            The dt classes that may be generated (the current window's bins);
            default: all.

        Returns
        -------
        ids, dts : tensor (B, 1 + n_generated)
            Starting with SOS; after a sample's EOS, its tokens are PAD.
        """
        c = self.config
        max_tokens = c.block_size - 1 if max_tokens is None else int(max_tokens)
        if not 1 <= max_tokens <= c.block_size - 1:
            raise InputError(
                f"max_tokens must lie in [1, block_size - 1 = {c.block_size - 1}]; got "
                f"{max_tokens}."
            )
        b = len(past_ids)
        dev = past_ids.device
        ctx = self.context(past_ids, past_dts, frames, behavior)
        ids = torch.full((b, 1), c.sos_id, dtype=torch.long, device=dev)
        dts = torch.full((b, 1), int(sos_dt), dtype=torch.long, device=dev)
        done = torch.zeros(b, dtype=torch.bool, device=dev)
        caches = [{} for _ in range(self._n_caches())] if use_cache else None
        for step in range(max_tokens):
            if use_cache:
                pos = self.pos[step : step + 1]
                x = self.drop(self.id_embed(ids[:, -1:]) + sinusoid(dts[:, -1:], c.d_model) + pos)
                h, _ = self._trunk(x, ctx, caches)
            else:
                h, _ = self._trunk(self._embed(ids, dts, self.pos), ctx)
            h = h[:, -1]
            id_logits, dt_logits = self.id_head(h), self.dt_head(h)
            id_logits[:, [c.sos_id, c.pad_id]] = float("-inf")  # never generated
            if dt_allowed is not None:
                dt_logits = dt_logits.masked_fill(~dt_allowed, float("-inf"))
            if greedy:
                nid, ndt = id_logits.argmax(-1), dt_logits.argmax(-1)
            else:
                nid = torch.multinomial(
                    (id_logits / temperature).softmax(-1), 1, generator=generator
                )[:, 0]
                ndt = torch.multinomial(
                    (dt_logits / temperature).softmax(-1), 1, generator=generator
                )[:, 0]
            nid = nid.masked_fill(done, c.pad_id)
            ids = torch.cat([ids, nid[:, None]], dim=1)
            dts = torch.cat([dts, ndt[:, None]], dim=1)
            done |= nid == c.eos_id
            if bool(done.all()):
                break
        return ids, dts
