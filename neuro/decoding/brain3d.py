"""Brain3D at CPU scale: decode the 3D object a subject saw from fMRI.

:class:`Brain3DDecoder` follows the two-stage design of Brain3D (Yang et al.,
arXiv 2405.15239), with small networks trained from scratch in place of the
paper's pretrained diffusion models:

* stage 0, the shape prior: a 3D convolutional autoencoder of occupancy grids
  (:class:`~neuro.decoding.networks.ShapeAutoencoder`), trained on the
  training objects and any extra objects without fMRI (``shape_bank``);
* stage 1, fMRI -> latents: an early visual stream (V1-V4, one linear
  projection per ROI) regressing the stimuli's shape latents, and a semantic
  stream (MTL) regressing their semantic targets, with a contrastive term
  (:class:`~neuro.decoding.networks.LatentRegressor`);
* stage 2, generation: a conditional rectified flow in the shape-latent space
  (:class:`~neuro.decoding.networks.VelocityField`) conditioned on the stage-1
  predictions; its samples go through the stage-0 decoder to occupancy
  probabilities.

Every stage trains on the shared :class:`neuro.train.Trainer`; with
``checkpoint_dir`` each writes to its own subfolder, and ``fit(...,
resume=True)`` skips finished stages and continues the interrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuro._validation import (
    check_array,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_n_features,
    check_same_length,
)
from neuro.base import NeuroEstimator
from neuro.decoding.networks import LatentRegressor, ShapeAutoencoder, VelocityField, euler_sample
from neuro.errors import InputError, InputTypeError
from neuro.train.checkpointed import CheckpointedFit

__all__ = ["FLOW_CONDITIONS", "STAGES", "Brain3DDecoder"]

#: Subfolders of ``checkpoint_dir``, one per training stage, in training order.
STAGES = ("stage0_shape_prior", "stage1_latents", "stage2_flow")
#: What the flow is conditioned on while it trains (see ``Brain3DDecoder``).
FLOW_CONDITIONS = ("predicted", "noisy")
_DECODE_BATCH = 64


def _check_grids(name: str, value, allow_none: bool = False) -> np.ndarray | None:
    """``value`` as float32 occupancy grids ``(n, G, G, G)``, G a multiple of 8, in [0, 1]."""
    if value is None and allow_none:
        return None
    arr = check_array(name, value, dtype=np.float32)
    shape = arr.shape
    if arr.ndim != 4 or not (shape[1] == shape[2] == shape[3]) or shape[1] % 8 or shape[1] < 8:
        raise InputError(
            f"{name} must be occupancy grids (n, G, G, G), cubic with G a multiple of 8 "
            f"(16, 24, 32, 64); got shape {shape}. Voxelise the objects at such a size, e.g. "
            "data_loaders.shapes3d.load_shape_targets(source, grid_size=32)."
        )
    if arr.min() < 0 or arr.max() > 1:
        raise InputError(
            f"{name} must hold occupancies in [0, 1]; got values in [{arr.min():.3g}, "
            f"{arr.max():.3g}]. Give 1 inside the object and 0 outside (threshold an SDF at 0)."
        )
    return arr


def _rois(name: str, value) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or not value or not all(isinstance(v, str) for v in value):
        raise InputTypeError(
            f"{name} must be a non-empty sequence of ROI names (str), e.g. ('V1', 'V2'); got "
            f"{value!r}."
        )
    return tuple(value)


def _roi_columns(name: str, rois: tuple[str, ...], labels: np.ndarray) -> list[np.ndarray]:
    """Column indices of each ROI in ``rois``; one line naming what is missing and what exists."""
    present = sorted(set(labels.tolist()))
    missing = [r for r in rois if r not in present]
    if missing:
        raise InputError(
            f"{name} names ROI(s) {missing} that roi_labels does not have (present: {present}); "
            f"give {name} from those names, or roi_labels that label those voxels."
        )
    return [np.flatnonzero(labels == r) for r in rois]


def _unpack(bits: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape))
    return np.unpackbits(bits, count=n).reshape(shape).astype(np.float32)


class Brain3DDecoder(CheckpointedFit, NeuroEstimator):
    """Two-stage decoder from fMRI responses to 3D objects (occupancy grids).

    Parameters
    ----------
    shape_latent_dim : int, default=32
        Size of the shape latent of the stage-0 autoencoder.
    ae_channels : (int, int, int), default=(16, 32, 64)
        Channels of the autoencoder after each of its three down-samplings
        (the GPU-size setting: ``(32, 64, 128)`` at grid 64).
    ae_latent_noise : float, default=0.1
        Noise added to the latent while the autoencoder trains, in batch sds
        per dimension: a smoother latent space, so that small errors of the
        stage-1 prediction decode to similar shapes.
    early_rois : sequence of str, default=("V1", "V2", "V3", "V4")
        ROIs of the early visual (shape) stream.
    semantic_rois : sequence of str, default=("MTL",)
        ROIs of the semantic stream.
    hidden_dim : int, default=128
        Width of both stage-1 streams.
    n_layers : int, default=1
        Hidden layers of each stream's MLP after its input projection.
    dropout : float, default=0.2
        Dropout of the stage-1 inputs and hidden layers.
    contrastive_weight : float, default=0.1
        Weight of the InfoNCE term (predicted vs true latents of a batch).
    temperature : float, default=0.1
        InfoNCE temperature.
    flow_hidden, flow_layers : int, default=256, 3
        Width and depth of the velocity MLP.
    flow_steps : int, default=32
        Euler steps of sampling.
    flow_condition : {"predicted", "noisy"}, default="predicted"
        What the flow sees as its condition while it trains: the stage-1
        predictions of the training rows (as at test time, though fitted to
        those rows), or the true latents plus Gaussian noise of sd
        ``condition_noise`` (fresh noise each step). On held-out objects of
        ``simulate_shape_fmri`` "predicted" decoded better (IoU 0.57 vs 0.56
        at grid 32, 0.54 vs 0.53 at grid 16).
    condition_noise : float, default=0.3
        Noise sd (in standardised latent units) of ``flow_condition="noisy"``;
        with ``"predicted"`` a small jitter of the same size times 0.25.
    ae_epochs, epochs, flow_epochs : int, default=100, 300, 300
        Passes over the data of stages 0, 1 and 2 (stage 1 also stops early
        on its validation rows).
    ae_lr, lr, flow_lr : float, default=2e-3, 1e-3, 2e-3
        Peak AdamW learning rates of the three stages (cosine schedule).
    batch_size : int, default=32
    weight_decay : float, default=0.05
    val_fraction : float, default=0.15
        Training rows held out for stage 1's early stopping.
    patience : int, default=30
        Stage-1 epochs without a better validation loss before stopping.
    device : str, default="auto"
    precision : {"32", "bf16-mixed", "16-mixed"}, default="32"
    checkpoint_dir : str or path, optional
        One subfolder per stage (:data:`STAGES`), each a Trainer folder
        (``checkpoints/last.pt``, ``metrics.jsonl``) plus ``final.pt`` once the
        stage is done. ``fit(..., resume=True)`` loads finished stages and
        continues the interrupted one; the result equals an uninterrupted fit.
    checkpoint_every_n_steps : int, optional
    random_state : int, default=0
        Seed of initialisation, validation split and data order; also the
        sampling seed when ``predict`` is given none.
    verbose : int, default=0

    Attributes
    ----------
    grid_size_ : int
        ``G`` of the training objects.
    rois_ : dict
        ``{"early": [...], "semantic": [...]}``, the ROI names used.
    n_features_in_ : int
        Voxels per row of ``X``.
    classes_ : ndarray or None
        The category labels (when ``categories`` were given).
    history_ : dict of list
        Each stage's Trainer history, by stage name.
    n_parameters_ : dict of int
        Trainable parameters of each network.

    Notes
    -----
    ``X`` rows are per-stimulus responses (repeats averaged, z-scored per
    voxel); they are standardised again with the training mean and sd.
    Shape latents are standardised per dimension before stages 1 and 2.
    :meth:`predict` and :meth:`sample` are reproducible: the starting noise
    comes from a ``torch.Generator`` seeded by ``seed`` on the CPU, so the same
    seed gives the same objects, also after ``save``/``load``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> g = np.linspace(-1, 1, 8)
    >>> r = np.sqrt(sum(a**2 for a in np.meshgrid(g, g, g, indexing="ij")))
    >>> radius = rng.uniform(0.3, 0.9, 24)
    >>> Y = (r[None] < radius[:, None, None, None]).astype("float32")
    >>> X = radius[:, None] * rng.standard_normal((1, 10)) + 0.1 * rng.standard_normal((24, 10))
    >>> rois = ["V1"] * 5 + ["MTL"] * 5
    >>> dec = Brain3DDecoder(shape_latent_dim=4, ae_channels=(2, 4, 4), hidden_dim=16,
    ...                      early_rois=["V1"], ae_epochs=2, epochs=2, flow_epochs=2,
    ...                      flow_hidden=16, flow_steps=4, device="cpu")
    >>> dec = dec.fit(X, Y, rois, categories=radius > 0.6)
    >>> dec.predict(X[:3], seed=1).shape
    (3, 8, 8, 8)
    """

    def __init__(
        self,
        shape_latent_dim: int = 32,
        ae_channels=(16, 32, 64),
        ae_latent_noise: float = 0.1,
        early_rois=("V1", "V2", "V3", "V4"),
        semantic_rois=("MTL",),
        hidden_dim: int = 128,
        n_layers: int = 1,
        dropout: float = 0.2,
        contrastive_weight: float = 0.1,
        temperature: float = 0.1,
        flow_hidden: int = 256,
        flow_layers: int = 3,
        flow_steps: int = 32,
        flow_condition: str = "predicted",
        condition_noise: float = 0.3,
        ae_epochs: int = 100,
        epochs: int = 300,
        flow_epochs: int = 300,
        ae_lr: float = 2e-3,
        lr: float = 1e-3,
        flow_lr: float = 2e-3,
        batch_size: int = 32,
        weight_decay: float = 0.05,
        val_fraction: float = 0.15,
        patience: int = 30,
        device: str = "auto",
        precision: str = "32",
        checkpoint_dir=None,
        checkpoint_every_n_steps: int | None = None,
        random_state: int = 0,
        verbose: int = 0,
    ) -> None:
        self.shape_latent_dim = shape_latent_dim
        self.ae_channels = ae_channels
        self.ae_latent_noise = ae_latent_noise
        self.early_rois = early_rois
        self.semantic_rois = semantic_rois
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.dropout = dropout
        self.contrastive_weight = contrastive_weight
        self.temperature = temperature
        self.flow_hidden = flow_hidden
        self.flow_layers = flow_layers
        self.flow_steps = flow_steps
        self.flow_condition = flow_condition
        self.condition_noise = condition_noise
        self.ae_epochs = ae_epochs
        self.epochs = epochs
        self.flow_epochs = flow_epochs
        self.ae_lr = ae_lr
        self.lr = lr
        self.flow_lr = flow_lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.patience = patience
        self.device = device
        self.precision = precision
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every_n_steps = checkpoint_every_n_steps
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- checks
    def _check_settings(self) -> None:
        check_int("shape_latent_dim", self.shape_latent_dim, minimum=2)
        channels = self.ae_channels
        if (
            not isinstance(channels, (tuple, list))
            or len(channels) != 3
            or not all(isinstance(c, (int, np.integer)) and c >= 1 for c in channels)
        ):
            raise InputError(
                f"ae_channels must be three positive ints (channels after each down-sampling), "
                f"e.g. (16, 32, 64); got {channels!r}."
            )
        _rois("early_rois", self.early_rois)
        _rois("semantic_rois", self.semantic_rois)
        for name in ("hidden_dim", "n_layers", "flow_hidden", "flow_layers", "flow_steps"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("ae_epochs", "epochs", "flow_epochs", "batch_size", "patience"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("random_state", self.random_state, minimum=0)
        check_float("dropout", self.dropout, minimum=0.0, maximum=0.9)
        check_float("contrastive_weight", self.contrastive_weight, minimum=0.0)
        check_float("temperature", self.temperature, minimum=0.0, strict_minimum=True)
        check_float("condition_noise", self.condition_noise, minimum=0.0)
        check_float("ae_latent_noise", self.ae_latent_noise, minimum=0.0)
        for name in ("ae_lr", "lr", "flow_lr"):
            check_float(name, getattr(self, name), minimum=0.0, strict_minimum=True)
        check_float("weight_decay", self.weight_decay, minimum=0.0)
        check_float("val_fraction", self.val_fraction, minimum=0.01, maximum=0.5)
        check_choice("flow_condition", self.flow_condition, FLOW_CONDITIONS)

    def _check_x(self, X, fitting: bool) -> np.ndarray:
        x = check_array(
            "X", X, ndim=2, shape_hint="(n_samples, n_voxels)", min_rows=2 if fitting else 0
        )
        if not fitting:
            self._check_fitted()
            check_n_features(self, x)
        return x.astype(np.float32)

    # ------------------------------------------------------------------- fit
    def fit(
        self,
        X,
        Y,
        roi_labels,
        categories=None,
        semantics=None,
        shape_bank=None,
        resume: bool = False,
    ):
        """Train the three stages on responses ``X`` to the objects ``Y``.

        Parameters
        ----------
        X : array or tensor (n_samples, n_voxels)
            One row per stimulus (repeats averaged, z-scored per voxel).
        Y : array or tensor (n_samples, G, G, G)
            The objects seen, occupancy in [0, 1]; ``G`` a multiple of 8.
        roi_labels : array-like of str (n_voxels,)
            ROI of each column of ``X``; must include ``early_rois`` and
            ``semantic_rois``.
        categories : array-like (n_samples,), optional
            Category label of each object (one-hot semantic targets when
            ``semantics`` is not given; needed by :meth:`predict_category`).
        semantics : array (n_samples, d), optional
            Semantic targets (e.g. caption embeddings) for the semantic stream.
        shape_bank : array (n_bank, G, G, G), optional
            Extra objects without fMRI for the shape prior (stage 0) only.
        resume : bool, default=False
            Continue a killed run from ``checkpoint_dir`` (same data and
            settings): finished stages are loaded, the interrupted one resumes.

        Returns
        -------
        self

        Raises
        ------
        InputError
            Bad shapes or values, ROIs missing, no semantic target.
        """
        from neuro.train.device import resolve_device
        from neuro.train.seed import seed_everything

        self._check_settings()
        resume = check_bool("resume", resume)
        x = self._check_x(X, fitting=True)
        y = _check_grids("Y", Y)
        check_same_length(X=x, Y=y)
        n, grid = len(x), int(y.shape[1])
        bank = _check_grids("shape_bank", shape_bank, allow_none=True)
        if bank is not None and bank.shape[1] != grid:
            raise InputError(
                f"shape_bank has grids of size {bank.shape[1]} but Y has {grid}; voxelise the "
                "bank at the size of Y."
            )
        labels = (
            np.asarray(roi_labels, dtype=object).reshape(-1) if roi_labels is not None else None
        )
        if labels is None or len(labels) != x.shape[1]:
            got = "None" if labels is None else f"{len(labels)} labels"
            raise InputError(
                f"roi_labels must name the ROI of each of the {x.shape[1]} columns of X; got "
                f"{got}. Give one label per voxel (e.g. DecodingData.roi_labels)."
            )
        labels = labels.astype(str)
        early = _rois("early_rois", self.early_rois)
        semantic = _rois("semantic_rois", self.semantic_rois)
        early_cols = _roi_columns("early_rois", early, labels)
        semantic_cols = np.concatenate(_roi_columns("semantic_rois", semantic, labels))
        sem, classes = self._semantic_targets(n, categories, semantics)
        self._check_resume_folder(resume)

        self.grid_size_ = grid
        self.rois_ = {"early": list(early), "semantic": list(semantic)}
        self.n_features_in_ = int(x.shape[1])
        self.classes_ = classes
        device = resolve_device(self.device)
        self.history_ = {}

        # stage 0: the shape prior
        occupancy = y if bank is None else np.concatenate([y, bank])
        seed_everything(self.random_state)
        ae = ShapeAutoencoder(grid, self.shape_latent_dim, self.ae_channels, self.ae_latent_noise)
        self.history_["shape_prior"] = self._fit_stage(
            STAGES[0],
            ae,
            (torch.from_numpy(occupancy),),
            None,
            resume,
            max_epochs=self.ae_epochs,
            lr=self.ae_lr,
        )
        self.autoencoder_ = ae.cpu().eval()
        z_all = self._encode(occupancy, device)
        self.z_mean_ = z_all.mean(0)
        self.z_std_ = np.maximum(z_all.std(0), 1e-6).astype(np.float32)
        z_train = (z_all[:n] - self.z_mean_) / self.z_std_

        # stage 1: fMRI -> latents
        self.x_mean_ = x.mean(0)
        self.x_scale_ = (x.std(0) + 1e-6).astype(np.float32)
        xs = (x - self.x_mean_) / self.x_scale_
        scale = float(np.sqrt((sem**2).sum(1).mean()) / np.sqrt(sem.shape[1])) or 1.0
        self.semantic_scale_ = scale
        sem_s = (sem / scale).astype(np.float32)
        if classes is not None:
            codes = np.searchsorted(classes, np.asarray(categories).reshape(-1))
            self.category_centroids_ = np.stack(
                [sem_s[codes == k].mean(0) for k in range(len(classes))]
            ).astype(np.float32)
        self.settings_ = {
            "early_index": [c.astype(np.int64) for c in early_cols],
            "semantic_index": semantic_cols.astype(np.int64),
            "semantic_dim": int(sem.shape[1]),
        }
        seed_everything(self.random_state + 1)
        regressor = self._build_regressor()
        order = np.random.default_rng(self.random_state).permutation(n)
        n_val = min(max(1, round(n * float(self.val_fraction))), n - 1)
        val, train = order[:n_val], order[n_val:]
        tensors = [torch.from_numpy(a) for a in (xs, z_train.astype(np.float32), sem_s)]
        self.history_["latents"] = self._fit_stage(
            STAGES[1],
            regressor,
            tuple(t[train] for t in tensors),
            tuple(t[val] for t in tensors),
            resume,
        )
        self.regressor_ = regressor.cpu().eval()

        # stage 2: the conditional flow
        seed_everything(self.random_state + 2)
        cond_dim = self.shape_latent_dim + sem.shape[1]
        field = VelocityField(self.shape_latent_dim, cond_dim, self.flow_hidden, self.flow_layers)
        if self.flow_condition == "predicted":
            p_shape, p_sem = self._latents(xs, device)
            cond = np.concatenate([p_shape, p_sem], 1)
            noise = 0.25 * float(self.condition_noise)
        else:
            cond = np.concatenate([z_train, sem_s], 1)
            noise = float(self.condition_noise)
        field.condition_noise = noise
        self.history_["flow"] = self._fit_stage(
            STAGES[2],
            field,
            (
                torch.from_numpy(z_train.astype(np.float32)),
                torch.from_numpy(cond.astype(np.float32)),
            ),
            None,
            resume,
            max_epochs=self.flow_epochs,
            lr=self.flow_lr,
            weight_decay=0.0,
        )
        self.flow_ = field.cpu().eval()

        # the nearest-neighbour baseline's library
        self.train_latents_ = z_train.astype(np.float32)
        self.train_occupancy_ = np.packbits((y >= 0.5).reshape(-1))
        self.n_train_ = n
        self.n_parameters_ = {
            "shape_prior": _count(self.autoencoder_),
            "latents": _count(self.regressor_),
            "flow": _count(self.flow_),
        }
        return self

    def _semantic_targets(self, n: int, categories, semantics):
        """``(targets (n, d) float32, classes or None)``."""
        if categories is None and semantics is None:
            raise InputError(
                "Brain3DDecoder.fit needs a target for the semantic stream: give "
                "categories=(n_samples,) labels or semantics=(n_samples, d) embeddings."
            )
        classes = None
        if categories is not None:
            cats = np.asarray(categories).reshape(-1)
            if cats.dtype.kind not in "biuUS":
                raise InputTypeError(
                    f"categories must be integer or string labels; got dtype {cats.dtype}."
                )
            if len(cats) != n:
                raise InputError(
                    f"categories has {len(cats)} labels but X has {n} rows; give one per row."
                )
            classes = np.unique(cats)
        if semantics is not None:
            sem = check_array("semantics", semantics, ndim=2, shape_hint="(n_samples, d)")
            if len(sem) != n:
                raise InputError(
                    f"semantics has {len(sem)} rows but X has {n}; give one embedding per row."
                )
            return sem.astype(np.float32), classes
        codes = np.searchsorted(classes, cats)
        return np.eye(len(classes), dtype=np.float32)[codes], classes

    def _build_regressor(self) -> LatentRegressor:
        s = self.settings_
        return LatentRegressor(
            [torch.as_tensor(np.asarray(i)) for i in s["early_index"]],
            torch.as_tensor(np.asarray(s["semantic_index"])),
            shape_dim=int(self.shape_latent_dim),
            semantic_dim=int(s["semantic_dim"]),
            hidden=int(self.hidden_dim),
            depth=int(self.n_layers),
            dropout=float(self.dropout),
            contrastive_weight=float(self.contrastive_weight),
            temperature=float(self.temperature),
        )

    # ------------------------------------------------------------ checkpoints
    def _stage_folder(self, stage: str) -> Path | None:
        return None if self.checkpoint_dir is None else Path(self.checkpoint_dir) / stage

    def _check_resume_folder(self, resume: bool) -> None:
        """Refuse a used folder without resume, and resume=True with nothing to resume."""
        if not resume:
            self._resume(False)
            return
        if self.checkpoint_dir is None:
            raise InputError(
                "resume=True needs checkpoint_dir=..., the folder where the interrupted run "
                "wrote its checkpoints."
            )
        first = self._stage_folder(STAGES[0])
        if not first.is_dir():
            raise InputError(
                f"Nothing to resume: {first} does not exist. Fit without resume=True to start "
                "a run there."
            )

    def _fit_stage(self, stage: str, module, train, val, resume: bool, **settings):
        """Train one stage (or load it when a resumed run had finished it); its history."""
        from neuro.train.checkpoint import load_checkpoint, save_checkpoint

        folder = self._stage_folder(stage)
        final = None if folder is None else folder / "final.pt"
        if resume and final.is_file():
            state = load_checkpoint(final)
            module.load_state_dict(state["model"])
            return list(state["history"])
        trainer = self._trainer(len(train[0]), validate=val is not None, **settings)
        trainer.out_dir = folder
        last = None if folder is None else folder / "checkpoints" / "last.pt"
        restart = resume and last.is_file()
        trainer.overwrite = bool(resume)  # a stage killed before its first checkpoint restarts
        history = trainer.fit(module, train, val, resume="last" if restart else None)
        module.cpu().eval()
        if final is not None:
            save_checkpoint(final, {"model": module.state_dict(), "history": history})
        return history

    # --------------------------------------------------------------- helpers
    def _encode(self, occupancy: np.ndarray, device) -> np.ndarray:
        """Shape latents (raw units) of grids ``(n, G, G, G)``, in batches."""
        ae = self.autoencoder_.to(device).eval()
        with torch.no_grad():
            out = [
                ae.encode(torch.from_numpy(occupancy[i : i + _DECODE_BATCH]).to(device)).cpu()
                for i in range(0, len(occupancy), _DECODE_BATCH)
            ]
        self.autoencoder_ = ae.cpu()
        return torch.cat(out).numpy()

    def _decode(self, z_std: torch.Tensor, device) -> np.ndarray:
        """Occupancy probabilities ``(n, G, G, G)`` of standardised latents ``(n, d)``."""
        ae = self.autoencoder_.to(device)
        mean = torch.from_numpy(self.z_mean_).to(device)
        std = torch.from_numpy(self.z_std_).to(device)
        out = []
        with torch.no_grad():
            for i in range(0, len(z_std), _DECODE_BATCH):
                z = z_std[i : i + _DECODE_BATCH].to(device) * std + mean
                out.append(torch.sigmoid(ae.decode(z)).cpu())
        self.autoencoder_ = ae.cpu()
        return torch.cat(out).numpy().astype(np.float32)

    def _latents(self, xs: np.ndarray, device) -> tuple[np.ndarray, np.ndarray]:
        """Stage-1 predictions (standardised units) of standardised rows ``xs``."""
        reg = self.regressor_.to(device).eval()
        with torch.no_grad():
            shape, sem = reg(torch.from_numpy(np.ascontiguousarray(xs, np.float32)).to(device))
        self.regressor_ = reg.cpu()
        return shape.cpu().numpy(), sem.cpu().numpy()

    def _predicted(self, X) -> tuple[np.ndarray, np.ndarray]:
        x = self._check_x(X, fitting=False)
        from neuro.train.device import resolve_device

        xs = (x - self.x_mean_) / self.x_scale_
        return self._latents(xs, resolve_device(self.device))

    # ------------------------------------------------------------- inference
    def sample(self, X, n_samples: int = 4, seed: int | None = None) -> np.ndarray:
        """Several generated objects per row of ``X``.

        Parameters
        ----------
        X : array or tensor (n, n_voxels)
        n_samples : int, default=4
            Objects per row.
        seed : int, optional
            Seed of the starting noise (default ``random_state``); the same
            seed gives the same objects.

        Returns
        -------
        ndarray (n, n_samples, G, G, G), float32
            Occupancy probabilities.
        """
        from neuro.train.device import resolve_device

        k = check_int("n_samples", n_samples, minimum=1)
        seed = check_int("seed", self.random_state if seed is None else seed, minimum=0)
        p_shape, p_sem = self._predicted(X)
        n, d = p_shape.shape
        device = resolve_device(self.device)
        gen = torch.Generator().manual_seed(seed)
        z0 = torch.randn((n, k, d), generator=gen).reshape(n * k, d)
        cond = torch.from_numpy(np.concatenate([p_shape, p_sem], 1)).repeat_interleave(k, dim=0)
        field = self.flow_.to(device).eval()
        z1 = euler_sample(field, z0.to(device), cond.to(device), int(self.flow_steps))
        self.flow_ = field.cpu()
        g = self.grid_size_
        return self._decode(z1, device).reshape(n, k, g, g, g)

    def predict(self, X, seed: int | None = None) -> np.ndarray:
        """One generated object per row of ``X``.

        Parameters
        ----------
        X : array or tensor (n, n_voxels)
        seed : int, optional
            Seed of the starting noise (default ``random_state``).

        Returns
        -------
        ndarray (n, G, G, G), float32
            Occupancy probabilities (threshold at 0.5 for a solid object).
        """
        return self.sample(X, n_samples=1, seed=seed)[:, 0]

    def predict_latents(self, X) -> dict[str, np.ndarray]:
        """The stage-1 predictions.

        Parameters
        ----------
        X : array or tensor (n, n_voxels)

        Returns
        -------
        dict
            ``"shape"``: ``(n, shape_latent_dim)`` in the autoencoder's latent
            units; ``"semantic"``: ``(n, d)`` in the units of the semantic
            targets (one-hot categories or the ``semantics`` given to fit).
        """
        p_shape, p_sem = self._predicted(X)
        return {
            "shape": (p_shape * self.z_std_ + self.z_mean_).astype(np.float32),
            "semantic": (p_sem * self.semantic_scale_).astype(np.float32),
        }

    def encode_objects(self, Y) -> np.ndarray:
        """Shape latents of 3D objects: the trained shape prior's encoder, standardised.

        The feature space in which :func:`~neuro.decoding.lesion.diagnosis_curve`
        compares decoded objects (the role pretrained image networks play for
        the paper's rendered views).

        Parameters
        ----------
        Y : array or tensor (n, G, G, G)
            Occupancy grids (e.g. decoded objects) at the training grid size.

        Returns
        -------
        ndarray (n, shape_latent_dim), float32
            Each dimension standardised over the training objects.
        """
        self._check_fitted()
        y = _check_grids("Y", Y)
        if y.shape[1] != self.grid_size_:
            raise InputError(
                f"Y has grids of size {y.shape[1]} but the model was trained on "
                f"{self.grid_size_}; give objects on the training grid."
            )
        from neuro.train.device import resolve_device

        z = self._encode(y, resolve_device(self.device))
        return ((z - self.z_mean_) / self.z_std_).astype(np.float32)

    def predict_category(self, X) -> np.ndarray:
        """Category of each row: the training category centroid nearest the semantic prediction.

        Parameters
        ----------
        X : array or tensor (n, n_voxels)

        Returns
        -------
        ndarray (n,)
            Labels from ``classes_`` (int64 for integer labels).
        """
        self._check_fitted()
        if self.classes_ is None:
            raise InputError(
                "predict_category needs the categories of the training objects: refit with "
                "fit(..., categories=...)."
            )
        _, p_sem = self._predicted(X)
        dist = ((p_sem[:, None] - self.category_centroids_[None]) ** 2).sum(-1)
        out = self.classes_[dist.argmin(1)]
        return out.astype(np.int64) if out.dtype.kind in "biu" else out

    def nearest_neighbour(self, X) -> np.ndarray:
        """The baseline: the training object whose shape latent is nearest the predicted one.

        Parameters
        ----------
        X : array or tensor (n, n_voxels)

        Returns
        -------
        ndarray (n, G, G, G), float32
            Binary occupancies of the chosen training objects.
        """
        p_shape, _ = self._predicted(X)
        dist = torch.cdist(torch.from_numpy(p_shape), torch.from_numpy(self.train_latents_))
        pick = dist.argmin(1).numpy()
        g = self.grid_size_
        library = _unpack(self.train_occupancy_, (self.n_train_, g, g, g))
        return library[pick]

    def score(self, X, Y, seed: int | None = None) -> float:
        """Mean IoU (threshold 0.5) between :meth:`predict` and the true objects.

        Parameters
        ----------
        X : array or tensor (n, n_voxels)
        Y : array (n, G, G, G)
        seed : int, optional

        Returns
        -------
        float
        """
        self._check_fitted()
        y = _check_grids("Y", Y)
        if y.shape[1] != self.grid_size_:
            raise InputError(
                f"Y has grids of size {y.shape[1]} but the model decodes {self.grid_size_}; "
                "give targets at the training size."
            )
        pred = self.predict(X, seed=seed)
        check_same_length(X=pred, Y=y)
        a, b = pred.reshape(len(y), -1) >= 0.5, y.reshape(len(y), -1) >= 0.5
        inter, union = (a & b).sum(1), (a | b).sum(1)
        return float(np.where(union > 0, inter / np.maximum(union, 1), 1.0).mean())

    def parameter_counts(self, n_voxels: dict | None = None, semantic_dim: int = 8) -> dict:
        """Trainable parameters of the three networks, without training.

        Parameters
        ----------
        n_voxels : dict, optional
            Voxels per ROI, e.g. ``{"V1": 40, ..., "MTL": 40}``; default: 40
            per ROI of ``early_rois`` and ``semantic_rois``.
        semantic_dim : int, default=8
            Size of the semantic target (categories, or the embedding).

        Returns
        -------
        dict
            ``{"shape_prior": ..., "latents": ..., "flow": ..., "total": ...}``
            (the autoencoder's count needs a grid: ``grid_size_`` when fitted,
            else 32 unless ``n_voxels`` holds ``"grid_size"``).
        """
        self._check_settings()
        early = _rois("early_rois", self.early_rois)
        semantic = _rois("semantic_rois", self.semantic_rois)
        sizes = dict(n_voxels or {})
        grid = int(sizes.pop("grid_size", getattr(self, "grid_size_", 32)))
        idx = [torch.arange(int(sizes.get(r, 40))) for r in early]
        sem_idx = torch.arange(sum(int(sizes.get(r, 40)) for r in semantic))
        d = int(self.shape_latent_dim)
        reg = LatentRegressor(
            idx, sem_idx, d, semantic_dim, self.hidden_dim, self.n_layers, 0.0, 0.0, 1.0
        )
        counts = {
            "shape_prior": _count(ShapeAutoencoder(grid, d, self.ae_channels)),
            "latents": _count(reg),
            "flow": _count(VelocityField(d, d + semantic_dim, self.flow_hidden, self.flow_layers)),
        }
        counts["total"] = sum(counts.values())
        return counts

    # ------------------------------------------------------------- save/load
    _ARRAYS = (
        "z_mean_",
        "z_std_",
        "x_mean_",
        "x_scale_",
        "train_latents_",
        "train_occupancy_",
        "classes_",
        "category_centroids_",
    )
    _VALUES = (
        "grid_size_",
        "rois_",
        "n_features_in_",
        "history_",
        "semantic_scale_",
        "n_train_",
        "n_parameters_",
        "settings_",
    )

    def _fitted_state(self) -> dict[str, Any]:
        state = {k: getattr(self, k) for k in self._ARRAYS + self._VALUES if hasattr(self, k)}
        state["flow_condition_noise"] = float(self.flow_.condition_noise)
        for name in ("autoencoder_", "regressor_", "flow_"):
            module = getattr(self, name)
            state[f"weights_{name}"] = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        return state

    def _restore_fitted_state(self, state: dict[str, Any]) -> None:
        state = dict(state)
        weights = {n: state.pop(f"weights_{n}") for n in ("autoencoder_", "regressor_", "flow_")}
        noise = state.pop("flow_condition_noise")
        for key, value in state.items():
            setattr(self, key, value)
        ae = ShapeAutoencoder(
            self.grid_size_, self.shape_latent_dim, self.ae_channels, self.ae_latent_noise
        )
        ae.load_state_dict(weights["autoencoder_"])
        self.autoencoder_ = ae.eval()
        reg = self._build_regressor()
        reg.load_state_dict(weights["regressor_"])
        self.regressor_ = reg.eval()
        d = int(self.shape_latent_dim)
        field = VelocityField(
            d, d + int(self.settings_["semantic_dim"]), self.flow_hidden, self.flow_layers
        )
        field.load_state_dict(weights["flow_"])
        field.condition_noise = noise
        self.flow_ = field.eval()


def _count(module: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))
