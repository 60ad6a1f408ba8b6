"""The attention-routing transformer brain encoder.

After "Transformer brain encoders explain human high-level visual responses"
(Hosseinadeli et al.): the feature map of a frozen image model becomes a set
of tokens, and learned *queries* read those tokens by cross-attention, so
each brain region decides per image where in the image it reads from
(content-dependent routing). Each voxel's prediction is a linear read of its
own query's output.

Architecture (:class:`TransformerBrainModule`)
    1. Feature maps ``(batch, C, H, W)`` -> ``H * W`` tokens, each projected
       ``C -> d_model`` by one linear layer, plus a fixed 2-D sine positional
       encoding (DETR's: half the channels encode the row, half the column).
    2. ``n_layers`` pre-norm decoder layers. In each, the queries
       cross-attend to the tokens (multi-head, through
       :func:`torch.nn.functional.scaled_dot_product_attention`) and pass
       through a feed-forward network. There is **no self-attention between
       queries**: each query's output depends on its own embedding and the
       image only.
    3. Readout: ``y_v = <out_{q(v)}, w_v> + b_v`` where ``q(v)`` is the query
       serving voxel ``v``. In ``"roi"`` mode there is one query per ROI (plus
       a ``"rest"`` query for unlabelled voxels) and the readout is one matrix
       product per query on that query's voxels, so memory grows as
       ``batch x n_voxels`` (never ``n_queries x n_voxels``). In ``"voxel"``
       mode every voxel has its own query and the readout is an einsum over
       ``(batch, voxel, d_model)``; the reference code instead forms the full
       queries x voxels product and keeps its diagonal.

:class:`TransformerEncoder` wraps the module as a scikit-learn estimator
(:class:`neuro.base.NeuroEstimator`) trained with :class:`neuro.train.Trainer`,
like :class:`neuro.encoders.ReadoutEncoder`; :meth:`TransformerEncoder.routing_maps`
returns each query's attention over the image positions.

The paper's size is :data:`PAPER_SIZE` (``TransformerEncoder(**PAPER_SIZE)``);
the defaults are a small width that trains in seconds on a CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import MultiOutputMixin, RegressorMixin
from torch import nn

from neuro._validation import (
    check_choice,
    check_float,
    check_int,
    check_n_features,
)
from neuro.base import NeuroEstimator
from neuro.encoders.readouts import _as_array, _training_targets
from neuro.errors import InputError, InputTypeError
from neuro.train.checkpointed import CheckpointedFit

__all__ = [
    "PAPER_SIZE",
    "QUERY_MODES",
    "REST",
    "TransformerBrainModule",
    "TransformerEncoder",
    "sine_positions",
]

#: The paper's decoder (DINOv2 ViT-B/14 tokens): ``TransformerEncoder(**PAPER_SIZE)``.
PAPER_SIZE = {"d_model": 768, "n_heads": 16, "ffn_dim": 1024, "n_layers": 1}
#: How queries are assigned: one per ROI label (plus "rest"), or one per voxel.
QUERY_MODES = ("roi", "voxel")
#: Name of the query that serves voxels without an ROI label.
REST = "rest"


# ------------------------------------------------------------------ modules
def sine_positions(height: int, width: int, d_model: int) -> torch.Tensor:
    """Fixed 2-D sine positional encoding of an ``height x width`` grid, ``(H * W, d_model)``.

    The first half of the channels encodes the row, the second half the
    column; each half alternates ``sin`` and ``cos`` at geometrically spaced
    frequencies (periods from ``2 pi`` to ``10000 * 2 pi`` in units of the
    normalised coordinate, which runs over ``(0, 2 pi]``), as in DETR.
    Tokens are in row-major order (``feature_map.flatten(2)``).

    Parameters
    ----------
    height, width : int
        The grid.
    d_model : int
        Channels; a multiple of 4.

    Returns
    -------
    Tensor (height * width, d_model), float32

    Examples
    --------
    >>> p = sine_positions(3, 5, 8)
    >>> p.shape, bool(torch.allclose(p[:, 0::2].square() + p[:, 1::2].square(), torch.ones(15, 4)))
    (torch.Size([15, 8]), True)
    """
    if d_model % 4:
        raise InputError(f"d_model must be a multiple of 4 (2-D sine positions); got {d_model}.")
    half = d_model // 2
    freq = 10000.0 ** (2 * torch.arange(half // 2, dtype=torch.float64) / half)
    ys = (torch.arange(height, dtype=torch.float64) + 1) / height * 2 * math.pi
    xs = (torch.arange(width, dtype=torch.float64) + 1) / width * 2 * math.pi

    def encode(coord: torch.Tensor) -> torch.Tensor:
        angle = coord[:, None] / freq[None]  # (n, half/2)
        return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)  # (n, half)

    ey, ex = encode(ys), encode(xs)  # (H, half), (W, half)
    grid = torch.cat(
        [ey[:, None, :].expand(height, width, half), ex[None, :, :].expand(height, width, half)],
        dim=-1,
    )
    return grid.reshape(height * width, d_model).float()


class _CrossAttentionLayer(nn.Module):
    """One pre-norm decoder layer: queries cross-attend to tokens, then an FFN.

    No self-attention between queries, and every operation acts on each
    query separately (LayerNorm, projections, FFN), so a query's output never
    depends on the other queries.
    """

    def __init__(self, d_model: int, n_heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm_q = nn.LayerNorm(d_model)
        self.norm_kv = nn.LayerNorm(d_model)
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.norm_ffn = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, d_model)
        )

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, d = t.shape
        return t.view(b, n, self.n_heads, d // self.n_heads).transpose(1, 2)  # (B, h, n, dh)

    def forward(
        self, queries: torch.Tensor, tokens: torch.Tensor, return_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``queries (B, Q, d)``, ``tokens (B, T, d)`` -> ``(B, Q, d)`` and, if asked,
        the attention weights ``(B, heads, Q, T)``."""
        kv = self.norm_kv(tokens)
        q = self._heads(self.q_proj(self.norm_q(queries)))
        k, v = self._heads(self.k_proj(kv)), self._heads(self.v_proj(kv))
        weights = None
        if return_weights:  # the same numbers, written out to expose the weights
            scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
            weights = scores.softmax(dim=-1)
            attended = weights @ v
        else:
            attended = F.scaled_dot_product_attention(q, k, v)
        b, _, nq, _ = attended.shape
        queries = queries + self.out_proj(attended.transpose(1, 2).reshape(b, nq, -1))
        queries = queries + self.ffn(self.norm_ffn(queries))
        return queries, weights


class TransformerBrainModule(nn.Module):
    """Tokens of a feature map, read by learned queries through cross-attention, to voxels.

    Parameters
    ----------
    in_shape : (C, H, W)
        Shape of one image's feature map.
    voxel_query : sequence of int (n_voxels,)
        The query serving each voxel (``0 .. n_queries - 1``). In voxel mode
        it is ``arange(n_voxels)``: the readout then pairs each voxel with its
        own query by an einsum.
    n_queries : int
    d_model, n_heads, ffn_dim, n_layers : int
        Decoder sizes (``d_model`` a multiple of 4 and of ``n_heads``).
    per_voxel : bool, default=False
        Voxel mode: ``n_queries == n_voxels`` and voxel ``v`` reads query ``v``.

    Attributes
    ----------
    input_proj : Linear (C -> d_model)
    query_embed : Parameter (n_queries, d_model)
    layers : ModuleList of decoder layers
    readout_weight : Parameter (n_voxels, d_model)
    readout_bias : Parameter (n_voxels,)

    Shapes: ``forward(x)`` takes ``(batch, C, H, W)`` and returns
    ``(batch, n_voxels)``; :meth:`query_outputs` returns ``(batch, n_queries,
    d_model)``.

    Examples
    --------
    >>> m = TransformerBrainModule((3, 4, 5), [0, 0, 1, 2, 1], n_queries=3, d_model=8, n_heads=2)
    >>> m(torch.randn(6, 3, 4, 5)).shape
    torch.Size([6, 5])
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        voxel_query,
        n_queries: int,
        d_model: int = 64,
        n_heads: int = 4,
        ffn_dim: int = 128,
        n_layers: int = 1,
        per_voxel: bool = False,
    ) -> None:
        super().__init__()
        c, h, w = in_shape
        voxel_query = torch.as_tensor(np.asarray(voxel_query), dtype=torch.long)
        n_voxels = len(voxel_query)
        self.per_voxel = per_voxel
        self.n_queries = n_queries
        self.input_proj = nn.Linear(c, d_model)
        self.register_buffer("positions", sine_positions(h, w, d_model), persistent=False)
        self.query_embed = nn.Parameter(torch.randn(n_queries, d_model))
        self.layers = nn.ModuleList(
            [_CrossAttentionLayer(d_model, n_heads, ffn_dim) for _ in range(n_layers)]
        )
        self.norm_out = nn.LayerNorm(d_model)
        self.readout_weight = nn.Parameter(torch.randn(n_voxels, d_model) / math.sqrt(d_model))
        self.readout_bias = nn.Parameter(torch.zeros(n_voxels))
        # ROI mode: voxels sorted by query, so each query reads one contiguous block
        order = torch.argsort(voxel_query, stable=True)
        self.register_buffer("voxel_query", voxel_query, persistent=False)
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("inverse_order", torch.argsort(order), persistent=False)
        self.block_sizes = torch.bincount(voxel_query, minlength=n_queries).tolist()

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps ``(B, C, H, W)`` -> tokens ``(B, H * W, d_model)`` with positions."""
        return self.input_proj(x.flatten(2).transpose(1, 2)) + self.positions

    def query_outputs(
        self, x: torch.Tensor, return_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Each query's output ``(B, n_queries, d_model)`` and, if asked, the last
        layer's attention weights ``(B, heads, n_queries, H * W)``."""
        tokens = self.tokens(x)
        out = self.query_embed[None].expand(len(x), -1, -1)
        weights = None
        for layer in self.layers:
            out, weights = layer(out, tokens, return_weights=return_weights)
        return self.norm_out(out), weights

    def readout(self, out: torch.Tensor) -> torch.Tensor:
        """Query outputs ``(B, n_queries, d)`` -> voxel predictions ``(B, n_voxels)``."""
        if self.per_voxel:
            return torch.einsum("bvd,vd->bv", out, self.readout_weight) + self.readout_bias
        weight = self.readout_weight[self.order]
        blocks = []
        start = 0
        for q, size in enumerate(self.block_sizes):
            if size:
                blocks.append(out[:, q] @ weight[start : start + size].T)  # (B, size)
                start += size
        pred = torch.cat(blocks, dim=1)[:, self.inverse_order]
        return pred + self.readout_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.query_outputs(x)[0])


# ----------------------------------------------------------------- training
class _Objective(nn.Module):
    """The module and its MSE loss, in the form the Trainer expects (batches ``(x, y)``)."""

    def __init__(self, module: TransformerBrainModule) -> None:
        super().__init__()
        self.module = module

    def training_step(self, batch) -> dict[str, torch.Tensor]:
        x, y = batch
        return {"loss": F.mse_loss(self.module(x), y)}

    def validation_step(self, batch) -> dict[str, torch.Tensor]:
        return self.training_step(batch)


@dataclass
class _Settings:
    """What ``TransformerEncoder.load`` needs to rebuild the module."""

    in_shape: tuple[int, int, int]
    n_queries: int
    d_model: int
    n_heads: int
    ffn_dim: int
    n_layers: int
    query_mode: str


def _build(settings: _Settings, voxel_query: np.ndarray) -> TransformerBrainModule:
    return TransformerBrainModule(
        tuple(settings.in_shape),
        voxel_query,
        settings.n_queries,
        d_model=settings.d_model,
        n_heads=settings.n_heads,
        ffn_dim=settings.ffn_dim,
        n_layers=settings.n_layers,
        per_voxel=settings.query_mode == "voxel",
    )


def _per_voxel_strings(name: str, values, n_voxels: int) -> np.ndarray:
    """One string per voxel from labels (checked shape); unlabelled voxels become ``REST``."""
    if isinstance(values, (str, bytes)):
        raise InputTypeError(
            f"{name} must be one label per voxel (an array of strings); got the single "
            f"string {values!r}."
        )
    values = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values)
    if values.ndim != 1 or len(values) != n_voxels:
        raise InputError(
            f"{name} must have one label per voxel, shape (n_voxels={n_voxels},); got "
            f"shape {values.shape}."
        )
    return _label_names(values)


def _label_names(labels: np.ndarray) -> np.ndarray:
    """ROI labels as strings; ``None``, NaN and ``""`` become :data:`REST`."""
    out = []
    for lab in labels.tolist():
        if lab is None or (isinstance(lab, float) and math.isnan(lab)) or str(lab) == "":
            out.append(REST)
        else:
            out.append(str(lab))
    return np.asarray(out, dtype=str)


# ---------------------------------------------------------------- estimator
class TransformerEncoder(CheckpointedFit, MultiOutputMixin, RegressorMixin, NeuroEstimator):
    """Voxel encoder that routes feature-map tokens to brain regions by cross-attention.

    Parameters
    ----------
    query_mode : {"roi", "voxel"}, default="roi"
        "roi": one learned query per ROI label, plus a ``"rest"`` query for
        unlabelled voxels (the paper's model; give labels such as
        ``"FFA-left"`` for one query per ROI and hemisphere). "voxel": one
        query per voxel (memory grows with the voxels times the tokens).
    roi_labels : array-like (n_voxels,), optional
        The ROI of each voxel (strings; ``""`` or None for unlabelled),
        used when ``fit`` is not given ``roi_labels=``.
    hemispheres : array-like (n_voxels,), optional
        The hemisphere of each voxel (e.g. ``"left"``/``"right"``), used when
        ``fit`` is not given ``hemispheres=``. With it, ROI mode has one query
        per ROI and hemisphere (``"FFA-left"``) and one ``"rest"`` query per
        hemisphere (``"rest-left"``), as in the paper.
    d_model : int, default=64
        Token and query width (a multiple of 4 and of ``n_heads``); the paper
        uses 768 (:data:`PAPER_SIZE`).
    n_heads : int, default=4
        Attention heads (paper: 16).
    ffn_dim : int, default=128
        Hidden width of the feed-forward network (paper: 1024).
    n_layers : int, default=1
        Decoder layers (paper: 1).
    map_shape : (C, H, W) or None, default=None
        Read ``X`` of shape ``(n, C * H * W)`` as flattened maps of this shape
        (one entry may be -1, as in ``numpy.reshape``; ``(1, 1, -1)`` makes
        every feature one token). None: ``X`` must be ``(n, C, H, W)``.
    device : str, default="auto"
        Where to train and predict ("auto" = cuda > mps > cpu).
    epochs : int, default=100
        Most passes over the training images (early stopping usually ends
        training sooner).
    batch_size : int, default=32
        Images per optimizer step (paper: 16).
    lr : float, default=1e-3
        Peak AdamW learning rate, cosine schedule (paper: 5e-4).
    weight_decay : float, default=0.01
        AdamW weight decay on weight matrices.
    val_fraction : float, default=0.1
        Fraction of the training images held out to pick the stopping
        epoch; the weights of the best validation loss are kept.
    patience : int, default=10
        Epochs without a better validation loss before stopping.
    precision : {"32", "bf16-mixed", "16-mixed"}, default="32"
    checkpoint_dir : str or path, optional
        Where the Trainer writes checkpoints (``checkpoints/last.pt`` every
        epoch and every ``checkpoint_every_n_steps`` steps), ``config.json``
        and ``metrics.jsonl``; ``fit(..., resume=True)`` continues a killed
        run from there and ends exactly as an uninterrupted one. A folder
        that is not empty is refused unless resuming.
    checkpoint_every_n_steps : int, optional
        Also checkpoint every this many optimizer steps.
    random_state : int, default=0
        Seed of initialisation, validation split and data order.
    verbose : int, default=0
        0: silent; 1: the Trainer's progress bars and epoch lines.

    Attributes
    ----------
    model_ : TransformerBrainModule
        The trained module, on the CPU after fit.
    query_names_ : list of str
        Name of each query: the sorted ROI labels, then ``"rest"`` if some
        voxels are unlabelled (ROI mode; with hemispheres ``"<roi>-<hemi>"``
        and ``"rest-<hemi>"``); ``"voxel-<i>"`` (voxel mode).
    voxel_query_ : ndarray (n_voxels,) int
        The query serving each voxel.
    history_ : list of dict
        The Trainer's per-epoch records.
    x_mean_, x_scale_ : ndarray (C,)
        Feature standardisation (per channel).
    y_mean_, y_scale_ : ndarray (n_voxels,)
        Response standardisation (per voxel), undone by :meth:`predict`.
    n_features_in_ : int
        ``C * H * W``.
    single_output_ : bool
        ``Y`` was 1D at ``fit``: ``predict`` then returns 1D too.

    Notes
    -----
    ``score`` is R² (averaged over voxels); ``correlation_score`` is the mean
    Pearson r. ``save(path)`` / ``TransformerEncoder.load(path)`` store the
    settings, the weights and the standardisation arrays, so the loaded
    encoder predicts exactly what the saved one did. Predictions are float32.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> maps = rng.standard_normal((120, 2, 4, 4)).astype("float32")
    >>> y = np.stack([maps[:, 0].max((1, 2)), maps[:, 1].mean((1, 2))], 1)
    >>> enc = TransformerEncoder(roi_labels=["A", "B"], d_model=16, n_heads=2, device="cpu")
    >>> enc = enc.fit(maps, y)
    >>> enc.query_names_, enc.routing_maps(maps[:3]).shape
    (['A', 'B'], (3, 2, 4, 4))
    >>> bool(enc.correlation_score(maps, y) > 0.5)
    True
    """

    #: What ``X`` is: feature maps ``(n, C, H, W)`` (``compare_encoders`` gives them as they are).
    input_kind = "maps"
    #: ``compare_encoders`` passes ``roi_labels=`` (and ``hemispheres=`` on surfaces) to ``fit``.
    reads_rois = True

    def __init__(
        self,
        query_mode: str = "roi",
        roi_labels=None,
        hemispheres=None,
        d_model: int = 64,
        n_heads: int = 4,
        ffn_dim: int = 128,
        n_layers: int = 1,
        map_shape=None,
        device: str = "auto",
        epochs: int = 100,
        batch_size: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        val_fraction: float = 0.1,
        patience: int = 10,
        precision: str = "32",
        checkpoint_dir=None,
        checkpoint_every_n_steps: int | None = None,
        random_state: int = 0,
        verbose: int = 0,
    ) -> None:
        self.query_mode = query_mode
        self.roi_labels = roi_labels
        self.hemispheres = hemispheres
        self.d_model = d_model
        self.n_heads = n_heads
        self.ffn_dim = ffn_dim
        self.n_layers = n_layers
        self.map_shape = map_shape
        self.device = device
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.patience = patience
        self.precision = precision
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every_n_steps = checkpoint_every_n_steps
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- checks
    def _check_settings(self) -> None:
        check_choice("query_mode", self.query_mode, QUERY_MODES)
        for name in ("d_model", "n_heads", "ffn_dim", "n_layers", "epochs", "batch_size"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("patience", self.patience, minimum=1)
        check_int("random_state", self.random_state, minimum=0)
        check_float("lr", self.lr, minimum=0.0, strict_minimum=True)
        check_float("weight_decay", self.weight_decay, minimum=0.0)
        if self.d_model % 4 or self.d_model % self.n_heads:
            raise InputError(
                f"d_model must be a multiple of 4 (2-D sine positions) and of n_heads="
                f"{self.n_heads}; got d_model={self.d_model}."
            )
        if not (
            isinstance(self.val_fraction, (int, float, np.floating))
            and not isinstance(self.val_fraction, bool)
            and 0 < self.val_fraction < 0.5
        ):
            raise InputError(
                "val_fraction must lie in (0, 0.5) (images held out for early stopping); "
                f"got {self.val_fraction!r}."
            )

    def _map_shape(self, n_features: int) -> tuple[int, int, int] | None:
        """``map_shape`` with any -1 resolved for ``n_features`` columns (None if unset)."""
        if self.map_shape is None:
            return None
        shape = tuple(self.map_shape) if isinstance(self.map_shape, (tuple, list)) else None
        if (
            shape is None
            or len(shape) != 3
            or not all(isinstance(s, (int, np.integer)) and (s >= 1 or s == -1) for s in shape)
            or sum(s == -1 for s in shape) > 1
        ):
            raise InputError(
                f"map_shape must be three positive ints (C, H, W), one of which may be -1; "
                f"got {self.map_shape!r}."
            )
        known = math.prod(s for s in shape if s != -1)
        if -1 in shape and n_features % known == 0:
            shape = tuple(n_features // known if s == -1 else int(s) for s in shape)
        if math.prod(shape) != n_features or -1 in shape:
            raise InputError(
                f"X has {n_features} features per sample, which cannot be read as maps of "
                f"map_shape={tuple(self.map_shape)}; give map_shape whose product is "
                f"{n_features}."
            )
        return tuple(int(s) for s in shape)

    def _check_x(self, X, fitting: bool) -> np.ndarray:
        x = _as_array(X, "X", None, "(n_images, C, H, W)")
        if x.ndim == 2 and self.map_shape is not None:
            if not fitting:
                check_n_features(self, x)
            x = x.reshape(len(x), *self._map_shape(x.shape[1]))
        elif x.ndim != 4:
            reshape = (
                " Reshape your data: X.reshape(1, -1) for a single sample." if x.ndim == 1 else ""
            )
            raise InputError(
                f"TransformerEncoder needs feature maps X of shape (n_images, C, H, W) (its tokens "
                f"are the map's positions); got shape {x.shape}. Give a spatial feature map or ViT "
                "tokens as maps, pass map_shape=(C, H, W) for flattened maps, or use "
                f"VoxelRidgeCV for feature vectors.{reshape}"
            )
        if not fitting and x.shape[1:] != tuple(self.settings_.in_shape):
            raise InputError(
                f"X has maps of shape {x.shape[1:]} (C, H, W) but the encoder was fitted on "
                f"{tuple(self.settings_.in_shape)}; give features from the same model, layer "
                "and map size."
            )
        return x

    def _voxel_queries(
        self, roi_labels, n_voxels: int, hemispheres=None
    ) -> tuple[np.ndarray, list[str]]:
        """The query of each voxel and the query names."""
        if self.query_mode == "voxel":
            return np.arange(n_voxels), [f"voxel-{i}" for i in range(n_voxels)]
        labels = self.roi_labels if roi_labels is None else roi_labels
        if labels is None:
            raise InputError(
                "query_mode='roi' needs the ROI of each voxel: pass fit(X, Y, roi_labels=...) or "
                "TransformerEncoder(roi_labels=...), or use query_mode='voxel'."
            )
        names = _per_voxel_strings("roi_labels", labels, n_voxels)
        hemis = self.hemispheres if hemispheres is None else hemispheres
        rois = sorted(set(names.tolist()) - {REST})
        if hemis is None:
            query_names = rois + ([REST] if REST in names else [])
        else:
            sides = _per_voxel_strings("hemispheres", hemis, n_voxels)
            if (sides == REST).any():
                raise InputError(
                    "hemispheres has voxels without a hemisphere (empty or None); give every "
                    "voxel one (e.g. 'left'/'right'), or leave hemispheres unset."
                )
            names = np.char.add(np.char.add(names, "-"), sides)
            query_names = sorted(set(names.tolist()), key=lambda q: (q.startswith(REST + "-"), q))
        index = {name: i for i, name in enumerate(query_names)}
        return np.array([index[n] for n in names], dtype=np.int64), query_names

    def _standardize_x(self, x: np.ndarray) -> np.ndarray:
        return (x - self.x_mean_.reshape(1, -1, 1, 1)) / self.x_scale_.reshape(1, -1, 1, 1)

    # ------------------------------------------------------------------- fit
    def fit(self, X, Y, roi_labels=None, hemispheres=None, resume: bool = False):
        """Train the encoder on feature maps ``X`` and responses ``Y``.

        Parameters
        ----------
        X : array or tensor (n_images, C, H, W)
            Feature maps (a CNN layer, or ViT patch tokens laid out as a grid).
        Y : array or tensor (n_images, n_voxels) or (n_images,)
        roi_labels : array-like (n_voxels,), optional
            ROI of each voxel (overrides the ``roi_labels`` parameter);
            needed in ROI mode.
        hemispheres : array-like (n_voxels,), optional
            Hemisphere of each voxel (overrides the ``hemispheres``
            parameter): one query per ROI and hemisphere, and a rest query
            per hemisphere.
        resume : bool, default=False
            Continue a killed run from ``checkpoint_dir/checkpoints/last.pt``
            (same data and settings); the result equals an uninterrupted fit.

        Returns
        -------
        self

        Raises
        ------
        InputError
            ``X`` not 4-D, NaN values, rows of ``X`` and ``Y`` differ, ROI
            labels missing (ROI mode) or of the wrong length, too few images.
        """
        from neuro.train.seed import seed_everything

        self._check_settings()
        x = self._check_x(X, fitting=True)
        y, single_output, n_val = _training_targets(x, Y, self.val_fraction)
        n = len(x)
        voxel_query, query_names = self._voxel_queries(roi_labels, y.shape[1], hemispheres)

        self.x_mean_ = x.mean(axis=(0, 2, 3))
        self.x_scale_ = x.std(axis=(0, 2, 3)) + 1e-6 * (np.abs(x).max() + 1e-12)
        self.y_mean_ = y.mean(axis=0)
        self.y_scale_ = y.std(axis=0) + 1e-8
        xs = self._standardize_x(x).astype(np.float32)
        ys = ((y - self.y_mean_) / self.y_scale_).astype(np.float32)

        self.settings_ = _Settings(
            in_shape=tuple(int(d) for d in x.shape[1:]),
            n_queries=len(query_names),
            d_model=int(self.d_model),
            n_heads=int(self.n_heads),
            ffn_dim=int(self.ffn_dim),
            n_layers=int(self.n_layers),
            query_mode=self.query_mode,
        )
        self.voxel_query_ = voxel_query
        self.query_names_ = query_names
        seed_everything(self.random_state)
        module = _build(self.settings_, voxel_query)
        order = np.random.default_rng(self.random_state).permutation(n)
        val, train = order[:n_val], order[n_val:]
        trainer = self._trainer(len(train))
        self.history_ = trainer.fit(
            _Objective(module),
            (xs[train], ys[train]),
            (xs[val], ys[val]),
            resume=self._resume(resume),
        )
        self.model_ = module.cpu().eval()
        self.single_output_ = single_output
        self.n_features_in_ = int(np.prod(self.settings_.in_shape))
        return self

    # --------------------------------------------------------------- predict
    def _batches(self, X, batch_size: int):
        """Standardised input batches on the device, with the module moved there."""
        from neuro.train.device import resolve_device

        batch_size = check_int("batch_size", batch_size, minimum=1)
        x = self._check_x(X, fitting=False)
        device = resolve_device(self.device)
        model = self.model_.to(device)
        xs = torch.from_numpy(self._standardize_x(x).astype(np.float32))
        for start in range(0, len(xs), batch_size):
            yield model, xs[start : start + batch_size].to(device)
        self.model_ = model.cpu()

    def predict(self, X, batch_size: int = 256):
        """Predicted responses ``(n_images, n_voxels)``.

        Parameters
        ----------
        X : array or tensor (n_images, C, H, W)
            Same ``C, H, W`` as in :meth:`fit`.
        batch_size : int, default=256
            Images per forward pass (bounds memory).

        Returns
        -------
        ndarray, or a tensor on ``X``'s device when ``X`` is a tensor
            Shape ``(n_images, n_voxels)``, or ``(n_images,)`` if ``Y`` was 1D at ``fit``.
        """
        self._check_fitted()
        out = []
        with torch.inference_mode():
            for model, xb in self._batches(X, batch_size):
                out.append(model(xb).cpu())
        pred = torch.cat(out).numpy() * self.y_scale_ + self.y_mean_
        if self.single_output_:
            pred = pred[:, 0]
        if isinstance(X, torch.Tensor):
            return torch.from_numpy(pred).to(X.device)
        return pred

    def routing_maps(self, X, batch_size: int = 256) -> np.ndarray:
        """Each query's attention over the image positions (last decoder layer, mean over heads).

        Parameters
        ----------
        X : array or tensor (n_images, C, H, W)
        batch_size : int, default=256

        Returns
        -------
        ndarray (n_images, n_queries, H, W), float32
            Each map sums to one over ``H x W``; query ``i`` is
            ``query_names_[i]``.
        """
        self._check_fitted()
        _, h, w = self.settings_.in_shape
        out = []
        with torch.inference_mode():
            for model, xb in self._batches(X, batch_size):
                _, weights = model.query_outputs(xb, return_weights=True)
                out.append(weights.mean(dim=1).cpu())
        maps = torch.cat(out).numpy()
        return maps.reshape(len(maps), -1, h, w)

    def score(self, X, y, sample_weight=None) -> float:
        """R² of the prediction, averaged uniformly over voxels (scikit-learn's ``score``).

        Parameters
        ----------
        X : array or tensor (n_images, C, H, W)
        y : array or tensor (n_images, n_voxels) or (n_images,)
        sample_weight : array (n_images,), optional

        Returns
        -------
        float
        """
        from neuro.encoders.metrics import mean_r2

        return mean_r2(y, self.predict(X), sample_weight=sample_weight)

    def correlation_score(self, X, y) -> float:
        """Mean over voxels of the Pearson r between ``predict(X)`` and ``y``.

        Parameters
        ----------
        X : array or tensor (n_images, C, H, W)
        y : array or tensor (n_images, n_voxels) or (n_images,)

        Returns
        -------
        float
        """
        from neuro.encoders.metrics import mean_correlation

        return mean_correlation(y, self.predict(X))

    # ------------------------------------------------------------- save/load
    _ARRAYS = ("x_mean_", "x_scale_", "y_mean_", "y_scale_", "voxel_query_")

    def _fitted_state(self) -> dict[str, Any]:
        """Settings, the module's weights, standardisation arrays, query names and history."""
        state: dict[str, Any] = {k: getattr(self, k) for k in self._ARRAYS}
        state["settings_"] = self.settings_
        state["weights"] = {k: v.detach().cpu() for k, v in self.model_.state_dict().items()}
        state["query_names_"] = list(self.query_names_)
        state["history_"] = list(self.history_)
        state["single_output_"] = bool(self.single_output_)
        state["n_features_in_"] = int(self.n_features_in_)
        return state

    def _restore_fitted_state(self, state: dict[str, Any]) -> None:
        """Rebuild the module from the settings and load its weights."""
        state = dict(state)
        settings = dict(state.pop("settings_"))
        settings["in_shape"] = tuple(settings["in_shape"])
        self.settings_ = _Settings(**settings)
        model = _build(self.settings_, state["voxel_query_"])
        model.load_state_dict(state.pop("weights"))
        self.model_ = model.eval()
        for key, value in state.items():
            setattr(self, key, value)
