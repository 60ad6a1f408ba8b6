"""The BraInCoRL in-context voxel encoder: a transformer that writes each voxel's encoder.

"Meta-Learning an In-Context Transformer Model of Human Higher Visual Cortex"
(BraInCoRL): for one voxel, a transformer reads a *support set* of ``K``
(image embedding, response) pairs and outputs the parameters of that voxel's
linear encoder ``(w, b)`` over the image embedding. A new subject's voxel
therefore needs no gradient step: give a few of its images and responses,
get its encoder. Query images never enter the transformer; a prediction is
``w . x + b``.

The network (:class:`InContextNet`):

* each support item becomes a token ``ResidualMLP([x / |x| * sqrt(E), y])``
  (the unit-norm embedding, scaled so its entries are of order one, and the
  voxel's response standardised over the support set);
* ``n_registers`` learned register tokens are prepended; there is no
  positional encoding, so the support set is a set (its order cannot matter);
* ``n_layers`` pre-LayerNorm blocks: multi-head self-attention through
  :func:`torch.nn.functional.scaled_dot_product_attention` and a SwiGLU
  feed-forward network;
* register 0 (the readout token) -> ``ResidualMLP`` -> ``E + 1`` numbers
  ``(a, c)``: the encoder in the support's standardised units,
  ``y = mean_K + sd_K * (a . x / |x| + c)``, returned as ``W = sd_K * a``,
  ``b = mean_K + sd_K * c``. Standardising by the support's own mean and sd
  makes the encoder follow any affine change of the response units.

:class:`InContextEncoder` is the estimator: ``fit`` is *meta-training* over
the voxels of one or several training subjects (one sample = one voxel, a
random support size ``K``, ``n_query`` held-back images scored by MSE),
trained on :class:`neuro.train.Trainer`; :meth:`InContextEncoder.encode`
writes encoders for a new subject's voxels from ``K`` of its images, batched
over thousands of voxels at once; :meth:`InContextEncoder.scaling_curve`
compares it with :class:`~neuro.encoders.VoxelRidgeCV` fitted on the same
``K`` images.

Every embedding is used unit-normalised (as the paper's CLIP embeddings
are): the returned ``W`` acts on ``x / |x|``, which
:func:`unit_embeddings` computes.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neuro._validation import (
    check_array,
    check_float,
    check_int,
    check_same_length,
)
from neuro.base import NeuroEstimator
from neuro.errors import InputError, InputTypeError
from neuro.train.checkpointed import CheckpointedFit

__all__ = [
    "PAPER_SIZE",
    "InContextEncoder",
    "InContextNet",
    "subject_from_dataset",
    "unit_embeddings",
]

#: The paper's network size (about 100M parameters with 512-d CLIP embeddings):
#: pass as ``InContextEncoder(**PAPER_SIZE)``; meant for a GPU.
PAPER_SIZE: dict[str, int] = {"d_model": 640, "n_layers": 20, "n_heads": 10, "n_registers": 4}

_EPS = 1e-6


def unit_embeddings(X) -> np.ndarray:
    """Each row of ``X`` divided by its Euclidean norm (the embeddings the encoders act on).

    Parameters
    ----------
    X : array or tensor (n_images, E)

    Returns
    -------
    ndarray (n_images, E), float32

    Examples
    --------
    >>> unit_embeddings([[3.0, 4.0]]).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    x = check_array("X", X, ndim=2, shape_hint="(n_images, E)").astype(np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# ------------------------------------------------------------------- network
class _ResidualMLP(nn.Module):
    """``Linear(in, d) -> [x + MLP(LN(x))] * n_blocks -> LN -> Linear(d, out)``."""

    def __init__(self, n_in: int, n_out: int, width: int, n_blocks: int = 1) -> None:
        super().__init__()
        self.inp = nn.Linear(n_in, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(width),
                nn.Linear(width, 2 * width),
                nn.GELU(),
                nn.Linear(2 * width, width),
            )
            for _ in range(n_blocks)
        )
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(self.norm(h))


class _Block(nn.Module):
    """Pre-LN transformer block: SDPA self-attention and a SwiGLU feed-forward network."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        hidden = 8 * ((8 * d_model // 3 + 7) // 8)  # SwiGLU's 2/3 of 4 d, rounded up to 8
        self.gate_up = nn.Linear(d_model, 2 * hidden)
        self.down = nn.Linear(hidden, d_model)

    def _heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, d = h.shape
        q, k, v = self.qkv(h).view(b, t, 3, self.n_heads, d // self.n_heads).unbind(2)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (b, heads, t, dh)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.norm1(x))
        att = F.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(att.transpose(1, 2).reshape(x.shape))
        gate, up = self.gate_up(self.norm2(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)

    def readout_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Attention of token 0 over all tokens, mean over heads: ``(b, t)``."""
        q, k, _ = self._heads(self.norm1(x))
        logits = (q[:, :, :1] @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])  # (b, h, 1, t)
        return logits.softmax(-1)[:, :, 0].mean(1)


class InContextNet(nn.Module):
    """The BraInCoRL transformer: a voxel's support set in, its linear encoder out.

    Parameters
    ----------
    embed_dim : int
        ``E``, the length of the image embeddings.
    d_model : int, default=64
    n_layers : int, default=3
    n_heads : int, default=4
        Must divide ``d_model``.
    n_registers : int, default=4
        Learned register tokens; register 0 is the readout token.

    Shapes: ``forward(sx, sy)`` takes unit-norm support embeddings ``(b, K, E)``
    and standardised responses ``(b, K)``; it returns ``(b, E + 1)``: the
    encoder ``(a, c)`` in standardised units (``a . x_unit + c``).

    Examples
    --------
    >>> net = InContextNet(embed_dim=8, d_model=16, n_layers=1, n_heads=2)
    >>> net(torch.randn(3, 5, 8), torch.randn(3, 5)).shape
    torch.Size([3, 9])
    """

    def __init__(
        self,
        embed_dim: int,
        d_model: int = 64,
        n_layers: int = 3,
        n_heads: int = 4,
        n_registers: int = 4,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.token = _ResidualMLP(embed_dim + 1, d_model, d_model)
        self.registers = nn.Parameter(torch.randn(n_registers, d_model) * 0.02)
        self.blocks = nn.ModuleList(_Block(d_model, n_heads) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = _ResidualMLP(d_model, embed_dim + 1, d_model)
        nn.init.zeros_(self.head.out.weight)  # training starts from the zero encoder
        nn.init.zeros_(self.head.out.bias)

    def _tokens(self, sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
        scaled = sx * math.sqrt(self.embed_dim)
        tokens = self.token(torch.cat([scaled, sy[..., None]], -1))
        regs = self.registers[None].expand(len(sx), -1, -1)
        return torch.cat([regs, tokens], 1)

    def forward(self, sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
        h = self._tokens(sx, sy)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h[:, 0]))

    def support_attention(self, sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
        """The last block's attention of the readout token over the support items ``(b, K)``.

        Mean over heads; the share taken by the registers is left out (not
        renormalised), so a row sums to at most one.
        """
        h = self._tokens(sx, sy)
        for block in self.blocks[:-1]:
            h = block(h)
        return self.blocks[-1].readout_attention(h)[:, self.registers.shape[0] :]


def _standardise(sy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Support responses ``(b, K)`` standardised per voxel, with their mean and sd ``(b, 1)``."""
    mu = sy.mean(1, keepdim=True)
    sd = (sy.var(1, unbiased=False, keepdim=True) + _EPS).sqrt()
    return (sy - mu) / sd, mu, sd


def _encoders(net: InContextNet, sx: torch.Tensor, sy: torch.Tensor):
    """``W (b, E)`` and ``b (b,)`` in the units of ``sy`` for unit-norm ``sx``."""
    z, mu, sd = _standardise(sy)
    out = net(sx, z)
    return out[:, :-1] * sd, (mu + sd * out[:, -1:])[:, 0]


class _MetaObjective(nn.Module):
    """The network plus the training subjects' data, in the form the Trainer expects.

    Training batches are ``(voxel_ids,)``: each step draws one support size
    ``K`` and, per voxel, a random ``K`` support and ``n_query`` query images
    of that voxel's subject (from the global generators, which the Trainer
    checkpoints, so a resumed run draws the same). Validation batches are
    fixed ``(voxel_ids, support_idx, query_idx)``.
    """

    def __init__(
        self,
        net: InContextNet,
        x_all: torch.Tensor,
        y_all: torch.Tensor,
        subject: torch.Tensor,
        n_images: torch.Tensor,
        k_range: tuple[int, int],
        n_query: int,
    ) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("x_all", x_all, persistent=False)  # (S, N_max, E)
        self.register_buffer("y_all", y_all, persistent=False)  # (V, N_max)
        self.register_buffer("subject", subject, persistent=False)  # (V,)
        self.register_buffer("n_images", n_images, persistent=False)  # (S,)
        self.k_range, self.n_query = k_range, n_query

    def _loss(self, ids: torch.Tensor, sup: torch.Tensor, qry: torch.Tensor) -> torch.Tensor:
        subj = self.subject[ids]
        sx = self.x_all[subj[:, None], sup]  # (b, K, E)
        qx = self.x_all[subj[:, None], qry]  # (b, Q, E)
        sy = self.y_all[ids[:, None], sup]
        qy = self.y_all[ids[:, None], qry]
        w, b = _encoders(self.net, sx, sy)
        pred = (qx * w[:, None]).sum(-1) + b[:, None]
        return F.mse_loss(pred, qy)

    def training_step(self, batch):
        (ids,) = batch
        k = int(torch.randint(self.k_range[0], self.k_range[1] + 1, (1,)))
        n_max = self.y_all.shape[1]
        scores = torch.rand(len(ids), n_max, device=ids.device)
        valid = (
            torch.arange(n_max, device=ids.device)[None] < self.n_images[self.subject[ids]][:, None]
        )
        order = scores.masked_fill(~valid, 2.0).argsort(1)
        return {"loss": self._loss(ids, order[:, :k], order[:, k : k + self.n_query])}

    def validation_step(self, batch):
        ids, sup, qry = batch
        return {"loss": self._loss(ids, sup, qry)}


@dataclass
class _Settings:
    """What ``InContextEncoder.load`` needs to rebuild the network (saved with its weights)."""

    embed_dim: int
    d_model: int
    n_layers: int
    n_heads: int
    n_registers: int
    k_min: int  # the support sizes meta-training drew (scaled to the images available)
    k_max: int
    n_query: int


def _build(s: _Settings) -> InContextNet:
    return InContextNet(s.embed_dim, s.d_model, s.n_layers, s.n_heads, s.n_registers)


def _subjects(X, Y) -> list[tuple[np.ndarray, np.ndarray]]:
    """``fit``'s data as a list of checked ``(X unit-norm, Y)`` pairs, one per subject."""
    if Y is None:
        if not isinstance(X, (list, tuple)) or not X:
            raise InputTypeError(
                "fit needs X (n_images, E) and Y (n_images, n_voxels), or one list of (X, Y) "
                "pairs (one per subject) as X with Y=None."
            )
        pairs = list(X)
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise InputTypeError(
                    f"X[{i}] must be an (X, Y) pair of one subject's embeddings and responses; "
                    f"got {type(pair).__name__}."
                )
    elif isinstance(X, (list, tuple)) and isinstance(Y, (list, tuple)):
        if len(X) != len(Y):
            raise InputError(
                f"X and Y must list the same subjects; got {len(X)} embedding arrays and "
                f"{len(Y)} response arrays."
            )
        pairs = list(zip(X, Y, strict=True))
    else:
        pairs = [(X, Y)]
    out = []
    for i, (x, y) in enumerate(pairs):
        tag = "" if len(pairs) == 1 else f" (subject {i})"
        xa = check_array(f"X{tag}", x, ndim=2, shape_hint="(n_images, E)")
        ya = check_array(f"Y{tag}", y, ndim=(1, 2), shape_hint="(n_images, n_voxels)")
        ya = ya[:, None] if ya.ndim == 1 else ya
        check_same_length(X=xa, Y=ya)
        if out and xa.shape[1] != out[0][0].shape[1]:
            raise InputError(
                f"Subject {i} has embeddings of length {xa.shape[1]} but subject 0 has "
                f"{out[0][0].shape[1]}; every subject must use the same image-embedding model."
            )
        out.append((unit_embeddings(xa), ya.astype(np.float32)))
    return out


def subject_from_dataset(dataset, embeddings, zscore: bool = True, voxels=None):
    """One subject's ``(X, Y)`` for :meth:`InContextEncoder.fit` from an fMRI dataset.

    The repeats of each stimulus are averaged (after z-scoring each voxel
    within sessions, as ``compare_encoders`` does), and each stimulus's row
    of ``embeddings`` is taken by its id, so several users' subjects who saw
    different images of one stimulus set line up with one embedding array.

    Parameters
    ----------
    dataset : data_loaders.fmri.FMRIDataset
    embeddings : array (n_stimuli, E)
        One image embedding per stimulus id of the set (e.g. CLIP's).
    zscore : bool, default=True
        Z-score each voxel within each session before averaging.
    voxels : array of bool or int, optional
        The voxels to keep (e.g. one ROI's); default all.

    Returns
    -------
    X : ndarray (n_shown, E), float32
    Y : ndarray (n_shown, n_voxels), float32

    Raises
    ------
    InputError
        Embeddings that are not 2-D or have fewer rows than the largest
        stimulus id shown.

    Examples
    --------
    >>> from data_loaders.fmri import FMRIDataset
    >>> rng = np.random.default_rng(0)
    >>> ds = FMRIDataset(rng.standard_normal((12, 5)), np.repeat(np.arange(6), 2))
    >>> X, Y = subject_from_dataset(ds, rng.standard_normal((8, 3)))
    >>> X.shape, Y.shape
    ((6, 3), (6, 5))
    """
    from neuro._validation import check_bool

    emb = check_array("embeddings", embeddings, ndim=2, shape_hint="(n_stimuli, E)")
    if check_bool("zscore", zscore):
        dataset = dataset.zscore()
    y, ids, _ = dataset.average_repeats()
    if len(emb) <= int(ids.max()):
        raise InputError(
            f"embeddings has {len(emb)} rows but the dataset shows stimulus id {int(ids.max())}; "
            "give one embedding per stimulus id of the stimulus set."
        )
    if voxels is not None:
        y = y[:, np.asarray(voxels)]
    return emb[ids].astype(np.float32), y.astype(np.float32)


class InContextEncoder(CheckpointedFit, NeuroEstimator):
    """BraInCoRL: meta-trained transformer that writes a voxel's linear encoder from K examples.

    ``fit`` meta-trains the network over the voxels of one or several
    training subjects; a new (held-out) subject's voxels then get their
    encoders from ``K`` of its images through :meth:`encode` (no gradient
    step), and :meth:`predict` applies them to new images.

    Parameters
    ----------
    d_model : int, default=64
        Token width (``PAPER_SIZE`` gives the paper's 640, 20 layers, 10 heads).
    n_layers : int, default=3
        Pre-LN transformer blocks (SwiGLU feed-forward).
    n_heads : int, default=4
        Attention heads; must divide ``d_model``.
    n_registers : int, default=4
        Learned register tokens (register 0 is read out).
    k_min, k_max : int, default=10, 200
        Support sizes drawn uniformly per training step (the paper: 30-500).
        Scaled down when a subject has fewer images: ``k_max`` to the images
        left after ``n_query``, ``k_min`` to at most ``k_max``.
    n_query : int, default=100
        Held-back images scored per training sample (the paper's 100);
        at most a quarter of the fewest images of any training subject.
    batch_size : int, default=64
        Voxels per optimizer step (all with the same ``K``).
    epochs : int, default=100
        Passes over the training voxels.
    lr : float, default=1e-3
        Peak AdamW learning rate (the paper: 1e-4 at paper size).
    weight_decay : float, default=0.01
        AdamW weight decay (the paper: 0.1).
    val_fraction : float, default=0.1
        Voxels of each training subject held out for early stopping, each
        scored on one fixed episode with ``K = sqrt(k_min * k_max)``.
    patience : int, default=10
        Epochs without a better validation loss before stopping.
    voxel_batch_size : int, default=1024
        Voxels per forward pass in :meth:`encode` (bounds memory).
    device : str, default="auto"
    precision : {"32", "bf16-mixed", "16-mixed"}, default="32"
    checkpoint_dir : str or path, optional
        Where the Trainer writes checkpoints (``checkpoints/last.pt`` every
        epoch and every ``checkpoint_every_n_steps`` steps), ``config.json``
        and ``metrics.jsonl``; ``fit(..., resume=True)`` continues a killed
        run and ends exactly as an uninterrupted one (the episodes drawn
        come from the generators the checkpoint restores). A folder that is
        not empty is refused unless resuming.
    checkpoint_every_n_steps : int, optional
        Also checkpoint every this many optimizer steps.
    random_state : int, default=0
        Seed of initialisation, validation split and the drawn episodes.
    verbose : int, default=0

    Attributes
    ----------
    model_ : InContextNet
        The meta-trained network (on the CPU after fit).
    settings_ : dataclass
        Network size and the support sizes used in training.
    history_ : list of dict
        The Trainer's per-epoch records.
    n_features_in_ : int
        ``E``, the embedding length.
    n_parameters_ : int

    Notes
    -----
    Responses are z-scored per voxel (over each subject's images) for
    meta-training only; :meth:`encode` standardises each voxel by its own
    support set, so encoders come out in the units of the support responses.

    The scikit-learn estimator checks do not apply: ``fit`` learns across
    voxels, and a prediction needs a support set of the subject.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((120, 8))
    >>> Y = X @ rng.standard_normal((8, 30))
    >>> enc = InContextEncoder(d_model=16, n_layers=1, n_heads=2, k_min=10, k_max=40,
    ...                        n_query=20, epochs=2, device="cpu").fit(X, Y)
    >>> W, b = enc.encode(X[:20], Y[:20])
    >>> W.shape, b.shape, enc.predict(X[20:], support_X=X[:20], support_Y=Y[:20]).shape
    ((30, 8), (30,), (100, 30))
    """

    input_kind = "vectors"
    #: ``compare_encoders`` meta-trains it (unless fitted) and predicts from a support set.
    in_context = True

    def __init__(
        self,
        d_model: int = 64,
        n_layers: int = 3,
        n_heads: int = 4,
        n_registers: int = 4,
        k_min: int = 10,
        k_max: int = 200,
        n_query: int = 100,
        batch_size: int = 64,
        epochs: int = 100,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        val_fraction: float = 0.1,
        patience: int = 10,
        voxel_batch_size: int = 1024,
        device: str = "auto",
        precision: str = "32",
        checkpoint_dir=None,
        checkpoint_every_n_steps: int | None = None,
        random_state: int = 0,
        verbose: int = 0,
    ) -> None:
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.n_registers = n_registers
        self.k_min = k_min
        self.k_max = k_max
        self.n_query = n_query
        self.batch_size = batch_size
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.patience = patience
        self.voxel_batch_size = voxel_batch_size
        self.device = device
        self.precision = precision
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every_n_steps = checkpoint_every_n_steps
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- checks
    def _check_settings(self) -> None:
        for name in ("d_model", "n_layers", "n_heads", "n_registers", "n_query", "batch_size"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("epochs", "patience", "voxel_batch_size"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("k_min", self.k_min, minimum=2)
        check_int("k_max", self.k_max, minimum=self.k_min)
        check_int("random_state", self.random_state, minimum=0)
        check_float("lr", self.lr, minimum=0.0, strict_minimum=True)
        check_float("weight_decay", self.weight_decay, minimum=0.0)
        check_float(
            "val_fraction", self.val_fraction, minimum=0.0, maximum=0.5, strict_minimum=True
        )
        if self.d_model % self.n_heads:
            raise InputError(
                f"n_heads must divide d_model; got d_model={self.d_model}, n_heads={self.n_heads}."
            )

    def _support(self, support_X, support_Y) -> tuple[np.ndarray, np.ndarray, bool]:
        """Checked unit-norm support embeddings ``(K, E)`` and responses ``(K, V)``."""
        sx = check_array("support_X", support_X, ndim=2, shape_hint="(K, E)")
        sy = check_array("support_Y", support_Y, ndim=(1, 2), shape_hint="(K, n_voxels)")
        single = sy.ndim == 1
        sy = sy[:, None] if single else sy
        check_same_length(support_X=sx, support_Y=sy)
        self._check_dim("support_X", sx)
        if len(sx) < 2:
            raise InputError(
                f"support_X has {len(sx)} image; give at least 2 support images per voxel "
                "(the encoder standardises the responses over the support set)."
            )
        return unit_embeddings(sx), sy.astype(np.float32), single

    def _check_dim(self, name: str, x: np.ndarray) -> None:
        e = self.n_features_in_
        if x.shape[1] != e:
            raise InputError(
                f"{name} has embeddings of length {x.shape[1]} but the encoder was meta-trained "
                f"on length {e}; embed this subject's images with the same model as in training."
            )

    # ------------------------------------------------------------------- fit
    def fit(self, X, Y=None, resume: bool = False):
        """Meta-train on the voxels of one or several training subjects.

        One training sample is one voxel: a random ``K`` of its subject's
        images in ``[k_min, k_max]`` (the same ``K`` for every voxel of a
        step) form the support set, ``n_query`` others are predicted, and the
        loss is the MSE of those predictions (responses z-scored per voxel).

        Parameters
        ----------
        X : array (n_images, E), or list of arrays, or list of (X, Y) pairs
            Image embeddings of one subject; a list of them (one per
            subject, with ``Y`` a list too); or, with ``Y=None``, a list of
            ``(X, Y)`` pairs, one per subject. Subjects may have seen
            different images, in different numbers.
            :func:`subject_from_dataset` makes a pair from an
            :class:`~data_loaders.fmri.FMRIDataset` and an embedding per
            stimulus.
        Y : array (n_images, n_voxels), or list of arrays, optional
            The responses, rows matching ``X``.
        resume : bool, default=False
            Continue a killed run from ``checkpoint_dir/checkpoints/last.pt``
            (same data and settings); the result equals an uninterrupted fit.

        Returns
        -------
        self

        Raises
        ------
        InputError
            NaNs, rows of ``X`` and ``Y`` that do not match, subjects with
            different embedding lengths, or fewer than 8 images in a subject.
        """
        from neuro.train.seed import seed_everything

        self._check_settings()
        subjects = _subjects(X, Y)
        n_min = min(len(x) for x, _ in subjects)
        if n_min < 8:
            raise InputError(
                f"A training subject has only {n_min} images; meta-training needs at least 8 "
                "per subject (support plus held-back query images), hundreds in practice."
            )
        n_query = min(self.n_query, n_min // 4)
        k_max = min(self.k_max, n_min - n_query)
        k_min = min(self.k_min, k_max)
        rng = np.random.default_rng(self.random_state)

        # every subject's data, padded to the most images; voxels z-scored per subject
        n_max, e = max(len(x) for x, _ in subjects), subjects[0][0].shape[1]
        x_all = np.zeros((len(subjects), n_max, e), np.float32)
        y_rows, subj, train_ids, val_ids = [], [], [], []
        start = 0
        for s, (x, y) in enumerate(subjects):
            x_all[s, : len(x)] = x
            z = (y - y.mean(0)) / (y.std(0) + 1e-8)
            y_pad = np.zeros((y.shape[1], n_max), np.float32)
            y_pad[:, : len(x)] = z.T
            y_rows.append(y_pad)
            subj.append(np.full(y.shape[1], s))
            order = start + rng.permutation(y.shape[1])
            n_val = min(256, round(float(self.val_fraction) * y.shape[1])) if y.shape[1] > 1 else 0
            val_ids.append(order[:n_val])
            train_ids.append(order[n_val:])
            start += y.shape[1]
        y_all = np.concatenate(y_rows)
        subject = np.concatenate(subj)
        train_ids, val_ids = np.concatenate(train_ids), np.concatenate(val_ids)
        n_images = np.array([len(x) for x, _ in subjects])

        self.settings_ = _Settings(
            embed_dim=int(e),
            d_model=int(self.d_model),
            n_layers=int(self.n_layers),
            n_heads=int(self.n_heads),
            n_registers=int(self.n_registers),
            k_min=int(k_min),
            k_max=int(k_max),
            n_query=int(n_query),
        )
        seed_everything(self.random_state)
        net = _build(self.settings_)
        objective = _MetaObjective(
            net,
            torch.from_numpy(x_all),
            torch.from_numpy(y_all),
            torch.from_numpy(subject).long(),
            torch.from_numpy(n_images).long(),
            (k_min, k_max),
            n_query,
        )
        val = None
        if len(val_ids):  # one fixed episode per validation voxel
            k_val = round(math.sqrt(k_min * k_max))
            picks = np.stack(
                [rng.permutation(n_images[subject[v]])[: k_val + n_query] for v in val_ids]
            )
            val = (
                torch.from_numpy(val_ids).long(),
                torch.from_numpy(picks[:, :k_val]).long(),
                torch.from_numpy(picks[:, k_val:]).long(),
            )
        trainer = self._trainer(len(train_ids), validate=val is not None, grad_clip_norm=1.0)
        self.history_ = trainer.fit(
            objective, (torch.from_numpy(train_ids).long(),), val, resume=self._resume(resume)
        )
        self.model_ = net.cpu().eval()
        self._set_attributes()
        return self

    def _set_attributes(self) -> None:
        self.n_features_in_ = int(self.settings_.embed_dim)
        self.n_parameters_ = int(sum(p.numel() for p in self.model_.parameters()))

    # ------------------------------------------------------------- inference
    def _run(self, fn, sx: np.ndarray, sy: np.ndarray):
        """Apply ``fn(net, sx (b, K, E), sy (b, K))`` over voxel batches; concatenate outputs."""
        from neuro.train.device import resolve_device

        device = resolve_device(self.device)
        net = self.model_.to(device)
        sxt = torch.from_numpy(sx).to(device)
        syt = torch.from_numpy(np.ascontiguousarray(sy.T))  # (V, K)
        outs = []
        with torch.inference_mode():
            for start in range(0, len(syt), self.voxel_batch_size):
                y = syt[start : start + self.voxel_batch_size].to(device)
                outs.append(fn(net, sxt[None].expand(len(y), -1, -1), y))
        self.model_ = net.cpu()
        if isinstance(outs[0], tuple):
            return tuple(torch.cat(parts).cpu().numpy() for parts in zip(*outs, strict=True))
        return torch.cat(outs).cpu().numpy()

    def encode(self, support_X, support_Y) -> tuple[np.ndarray, np.ndarray]:
        """Each voxel's linear encoder from its support set (no gradient step).

        Parameters
        ----------
        support_X : array or tensor (K, E)
            Embeddings of the ``K`` support images (shared by all voxels).
        support_Y : array or tensor (K, n_voxels) or (K,)
            The subject's responses to them.

        Returns
        -------
        W : ndarray (n_voxels, E)
            Weights on the unit-norm embedding (:func:`unit_embeddings`).
        b : ndarray (n_voxels,)
            Intercepts; a prediction is ``unit_embeddings(X) @ W.T + b``.

        Raises
        ------
        InputError
            An embedding length that differs from training, NaNs, rows that
            do not match, or fewer than 2 support images.
        """
        self._check_fitted()
        sx, sy, _ = self._support(support_X, support_Y)
        return self._run(_encoders, sx, sy)

    def predict(self, X, *, support_X, support_Y):
        """Responses to the images ``X`` of the voxels described by a support set.

        Parameters
        ----------
        X : array or tensor (n_images, E)
            Query image embeddings.
        support_X : array or tensor (K, E)
        support_Y : array or tensor (K, n_voxels) or (K,)
            As for :meth:`encode`.

        Returns
        -------
        ndarray (n_images, n_voxels), or (n_images,) for a 1-D ``support_Y``;
        a tensor on ``X``'s device when ``X`` is a tensor.
        """
        self._check_fitted()
        x = check_array("X", X, ndim=2, shape_hint="(n_images, E)")
        self._check_dim("X", x)
        _, _, single = self._support(support_X, support_Y)
        W, b = self.encode(support_X, support_Y)
        pred = unit_embeddings(x) @ W.T + b
        pred = pred[:, 0] if single else pred
        if isinstance(X, torch.Tensor):
            return torch.from_numpy(pred).to(X.device)
        return pred

    def correlation_score(self, X, y, *, support_X, support_Y) -> float:
        """Mean over voxels of the Pearson r between :meth:`predict` and ``y``.

        Parameters
        ----------
        X : array (n_images, E)
        y : array (n_images, n_voxels)
        support_X, support_Y : arrays
            The support set, as for :meth:`encode`.

        Returns
        -------
        float
        """
        from neuro.encoders.metrics import mean_correlation

        return mean_correlation(y, self.predict(X, support_X=support_X, support_Y=support_Y))

    def support_attention(self, support_X, support_Y) -> np.ndarray:
        """Which support images each voxel's encoder leans on.

        Parameters
        ----------
        support_X, support_Y : arrays
            As for :meth:`encode`.

        Returns
        -------
        ndarray (n_voxels, K)
            The last block's attention of the readout token over the support
            items (mean over heads; the registers' share is left out).
        """
        self._check_fitted()
        sx, sy, _ = self._support(support_X, support_Y)
        return self._run(lambda net, x, y: net.support_attention(x, _standardise(y)[0]), sx, sy)

    def text_selectivity(self, text_embeddings, support_X, support_Y) -> np.ndarray:
        """Voxel selectivity for language queries: ``w . t`` for unit-norm text embeddings.

        Parameters
        ----------
        text_embeddings : array (n_texts, E) or (E,)
            Text embeddings aligned with the image embeddings (CLIP-style,
            same model family and length).
        support_X, support_Y : arrays
            The subject's support set, as for :meth:`encode`.

        Returns
        -------
        ndarray (n_texts, n_voxels)
            How much each voxel's encoder responds to each text, above its
            intercept.

        Raises
        ------
        InputError
            No text embeddings, or their length differs from the image embeddings'.
        """
        self._check_fitted()
        if text_embeddings is None:
            raise InputError(
                "text_selectivity needs text_embeddings (n_texts, E) from a text encoder aligned "
                "with the image embeddings (e.g. CLIP's text tower); none was given."
            )
        t = check_array("text_embeddings", text_embeddings, ndim=(1, 2), shape_hint="(n_texts, E)")
        t = t[None] if t.ndim == 1 else t
        if t.shape[1] != self.n_features_in_:
            raise InputError(
                f"text_embeddings have length {t.shape[1]} but the image embeddings have "
                f"{self.n_features_in_}; use the text tower of the same aligned model "
                "(e.g. CLIP) as the image embeddings."
            )
        W, _ = self.encode(support_X, support_Y)
        return unit_embeddings(t) @ W.T

    # ---------------------------------------------------------- scaling curve
    def scaling_curve(
        self,
        X,
        Y,
        ks=(10, 25, 50, 100, 200, 500),
        test: float = 0.2,
        ceiling_r2=None,
        n_repeats: int = 1,
        ridge_alphas=None,
    ):
        """Held-out r against the support size K, beside ridge fitted on the same K images.

        For each ``K`` (and repeat), ``K`` random images of the subject's
        non-test images are the support set of the in-context encoder and
        the training set of :class:`~neuro.encoders.VoxelRidgeCV` (on the
        same unit-norm embeddings, ``cv=min(5, K)`` folds); both predict the
        test images.

        Parameters
        ----------
        X : array (n_images, E)
            A held-out subject's image embeddings.
        Y : array (n_images, n_voxels)
        ks : sequence of int
            Support sizes; those above the non-test images are skipped with
            a warning (listed in ``table.attrs["skipped_k"]``).
        test : float or array of int, default=0.2
            Fraction of images held out for testing (the last ones after a
            seeded shuffle), or their indices.
        ceiling_r2 : array (n_voxels,), optional
            Noise ceilings: adds ``nnr`` (noise-normalised r², see
            :func:`neuro.encoders.metrics.noise_normalized`).
        n_repeats : int, default=1
            Random support draws per ``K``.
        ridge_alphas : sequence of float, optional
            The ridge's candidate penalties (its default otherwise).

        Returns
        -------
        pandas.DataFrame
            One row per ``(model, k, repeat)``: ``model`` ("incontext" or
            "ridge"), ``k``, ``repeat``, ``mean_r``, ``median_r`` (and
            ``mean_nnr``).

        Raises
        ------
        InputError
            Every ``K`` exceeds the images available, or the embedding
            length differs from training.
        """
        import pandas as pd

        from neuro.encoders.metrics import noise_normalized, voxel_correlation
        from neuro.encoders.ridge import VoxelRidgeCV

        self._check_fitted()
        x = check_array("X", X, ndim=2, shape_hint="(n_images, E)")
        y = check_array("Y", Y, ndim=(1, 2), shape_hint="(n_images, n_voxels)")
        y = y[:, None] if y.ndim == 1 else y
        check_same_length(X=x, Y=y)
        self._check_dim("X", x)
        n_repeats = check_int("n_repeats", n_repeats, minimum=1)
        x = unit_embeddings(x)
        y = y.astype(np.float32)
        rng = np.random.default_rng(self.random_state)
        if isinstance(test, (float, np.floating)) and not isinstance(test, bool):
            check_float(
                "test", test, minimum=0.0, maximum=1.0, strict_minimum=True, strict_maximum=True
            )
            order = rng.permutation(len(x))
            n_test = max(1, round(float(test) * len(x)))
            test_idx, pool = order[-n_test:], order[:-n_test]
        else:
            test_idx = check_array("test", test, ndim=1, shape_hint="(n_test,)").astype(int)
            if len(test_idx) == 0 or test_idx.min() < 0 or test_idx.max() >= len(x):
                raise InputError(
                    f"test must hold image indices in [0, {len(x)}); got {len(test_idx)} indices "
                    "with some out of range (or none)."
                )
            pool = np.setdiff1d(np.arange(len(x)), test_idx)
        if isinstance(ks, (str, bytes)) or not hasattr(ks, "__iter__"):
            raise InputTypeError(
                f"ks must be a sequence of support sizes K (e.g. (10, 25, 50)); got {ks!r}."
            )
        ks = [check_int("ks", k, minimum=2) for k in ks]
        if not ks:
            raise InputError("ks is empty; give one or more support sizes K (e.g. (10, 25, 50)).")
        kept = [k for k in ks if k <= len(pool)]
        skipped = [k for k in ks if k > len(pool)]
        if not kept:
            raise InputError(
                f"Every K in ks={ks} is larger than the {len(pool)} images available for "
                "support (the rest are test images); give smaller ks or more images."
            )
        if skipped:
            warnings.warn(
                f"scaling_curve skips K={skipped}: only {len(pool)} non-test images are "
                "available for support.",
                stacklevel=2,
            )
        ceiling = None
        if ceiling_r2 is not None:
            ceiling = check_array("ceiling_r2", ceiling_r2, ndim=1, shape_hint="(n_voxels,)")
            if len(ceiling) != y.shape[1]:
                raise InputError(
                    f"ceiling_r2 has {len(ceiling)} values but Y has {y.shape[1]} voxels; give "
                    "one noise ceiling per voxel."
                )
        rows = []
        ridge_kw = {} if ridge_alphas is None else {"alphas": list(ridge_alphas)}
        for k in kept:
            for rep in range(n_repeats):
                sup = rng.choice(pool, size=k, replace=False)
                W, b = self.encode(x[sup], y[sup])
                ridge = VoxelRidgeCV(cv=min(5, k), device=self.device, **ridge_kw)
                ridge.fit(x[sup], y[sup])
                preds = {
                    "incontext": x[test_idx] @ W.T + b,
                    "ridge": np.asarray(ridge.predict(x[test_idx]), dtype=np.float32),
                }
                for name, pred in preds.items():
                    r = voxel_correlation(y[test_idx], pred)
                    row = {
                        "model": name,
                        "k": k,
                        "repeat": rep,
                        "mean_r": float(np.mean(r)),
                        "median_r": float(np.median(r)),
                    }
                    if ceiling is not None:
                        row["mean_nnr"] = float(np.nanmean(noise_normalized(r, ceiling)))
                    rows.append(row)
        table = pd.DataFrame(rows)
        table.attrs["skipped_k"] = skipped
        return table

    # ------------------------------------------------------------- save/load
    def _fitted_state(self) -> dict[str, Any]:
        """Settings, the network's weights and the history."""
        return {
            "settings_": asdict(self.settings_),
            "weights": {k: v.detach().cpu() for k, v in self.model_.state_dict().items()},
            "history_": list(self.history_),
        }

    def _restore_fitted_state(self, state: dict[str, Any]) -> None:
        """Rebuild the network from the settings and load its weights."""
        self.settings_ = _Settings(**dict(state["settings_"]))
        net = _build(self.settings_)
        net.load_state_dict(state["weights"])
        self.model_ = net.eval()
        self.history_ = list(state["history_"])
        self._set_attributes()
