"""Whole-brain encoder comparisons split by voxel across processes (torchrun, SLURM).

Given the features, the voxels of a ridge fit are independent: each one has
its own alpha, weights and score. :func:`compare_encoders_sliced` therefore
gives every process a contiguous slice of the voxels, runs
:func:`~neuro.encoders.compare.compare_encoders` on that slice (same split
seed, so the same training and test stimuli everywhere), gathers the
per-voxel vectors (r, R², noise-normalised scores, noise ceiling) and the
per-voxel columns of the fitted models on rank 0, and builds there one
:class:`~neuro.encoders.compare.EncoderComparison` over all voxels, in their
original order, with the per-ROI table of one process (same bootstrap seed).

Launching
---------
The processes come from :class:`neuro.train.Runtime` (Lightning Fabric):
CPU processes talk over gloo, GPU processes over nccl, one GPU each::

    torchrun --standalone --nproc_per_node=4 -m neuro fit-encoder ...
    srun --nodes 2 --ntasks-per-node 4 python -m neuro fit-encoder ...

Features are computed once: rank 0 fills the HDF5 feature cache
(:func:`~neuro.encoders.features.cached_features`) while the others wait, then
they read it; without a cache rank 0 computes them and sends them to the
others. A folder written by rank 0 alone holds the result, as one process
would write it.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuro._validation import check_bool, check_int
from neuro.errors import InputError, OutputExistsError

__all__ = ["VOXELWISE_STATE", "compare_encoders_sliced", "launcher_layout", "voxel_slices"]

logger = logging.getLogger(__name__)

#: Fitted attributes that hold one column per voxel (last axis), by estimator
#: class name. An estimator of another class joins by declaring a class
#: attribute ``voxelwise_state`` (a tuple of attribute names whose last axis
#: is the voxel); its other fitted attributes must not depend on the voxels.
VOXELWISE_STATE: dict[str, tuple[str, ...]] = {
    "VoxelRidgeCV": ("coef_", "intercept_", "alpha_", "cv_scores_"),
    "BandedRidgeCV": (
        "coef_",
        "intercept_",
        "alpha_",
        "gammas_",
        "group_alphas_",
        "deltas_",
        "cv_scores_",
    ),
}


# ------------------------------------------------------------------ the split
def voxel_slices(n_voxels: int, n_parts: int, align: int = 64) -> list[slice]:
    """Contiguous voxel slices, one per process, that start at multiples of ``align``.

    The voxels are cut into blocks of ``align`` (the last block takes the
    remainder, so no slice is narrower than ``align`` unless there are fewer
    voxels than that), and the blocks are shared as ``np.array_split`` shares
    items: the first processes get one block more. Processes beyond the number
    of blocks get an empty slice.

    Parameters
    ----------
    n_voxels : int
        Voxels in all (at least 1).
    n_parts : int
        Processes (at least 1).
    align : int, default=64
        Slice starts are multiples of it. 1 gives ``np.array_split`` of the
        voxel indices. Why 64: CPU kernels (BLAS products and torch's
        reductions over samples) handle the columns of a matrix in vector
        lanes, and a voxel keeps its exact floating-point result only if it
        meets the same lane as in one process: measured with AVX2, slice
        starts at multiples of 32 suffice; 64 leaves room for wider vectors.
        Slices of a few voxels take other code paths, hence the remainder
        going to the last slice.

    Returns
    -------
    list of slice
        ``n_parts`` slices covering ``range(n_voxels)`` in order.

    Examples
    --------
    >>> voxel_slices(147, 2)
    [slice(0, 64, None), slice(64, 147, None)]
    >>> voxel_slices(10, 3, align=1)
    [slice(0, 4, None), slice(4, 7, None), slice(7, 10, None)]
    """
    n_voxels = check_int("n_voxels", n_voxels, minimum=1)
    n_parts = check_int("n_parts", n_parts, minimum=1)
    align = check_int("align", align, minimum=1)
    n_blocks = max(1, n_voxels // align)
    counts = [len(part) for part in np.array_split(np.arange(n_blocks), n_parts)]
    slices, start = [], 0
    for count in counts:
        stop = start + count * align
        slices.append([start, stop])
        start = stop
    last = max(i for i, c in enumerate(counts) if c > 0)
    slices[last][1] = n_voxels  # the last busy process takes the remainder
    for i in range(last + 1, n_parts):
        slices[i] = [n_voxels, n_voxels]
    return [slice(a, b) for a, b in slices]


def launcher_layout() -> tuple[int, int]:
    """``(processes per node, nodes)`` of the launcher that started this process.

    Reads torchrun's ``LOCAL_WORLD_SIZE`` and ``WORLD_SIZE``, or SLURM's
    ``SLURM_NTASKS`` and ``SLURM_NNODES`` (under ``srun``, not in an
    interactive ``salloc`` shell); ``(1, 1)`` without a launcher.

    Returns
    -------
    (int, int)

    Examples
    --------
    >>> import os
    >>> launcher_layout() if "WORLD_SIZE" not in os.environ and "SLURM_NTASKS" not in os.environ else (1, 1)
    (1, 1)
    """
    env = os.environ
    try:
        if "LOCAL_WORLD_SIZE" in env and "WORLD_SIZE" in env:
            local, world = int(env["LOCAL_WORLD_SIZE"]), int(env["WORLD_SIZE"])
            return local, max(1, world // max(local, 1))
        if "SLURM_NTASKS" in env and env.get("SLURM_JOB_NAME") not in ("bash", "interactive"):
            tasks, nodes = int(env["SLURM_NTASKS"]), int(env.get("SLURM_NNODES", "1"))
            return max(1, tasks // max(nodes, 1)), max(nodes, 1)
    except ValueError:
        pass
    return 1, 1


# ------------------------------------------------------------------ encoders
def _voxelwise_attrs(est) -> tuple[str, ...] | None:
    """The per-voxel fitted attributes of ``est``, or None if it couples voxels."""
    declared = getattr(type(est), "voxelwise_state", None)
    if declared is not None:
        return tuple(declared)
    for cls in type(est).__mro__:
        if cls.__module__.startswith("neuro.") and cls.__name__ in VOXELWISE_STATE:
            return VOXELWISE_STATE[cls.__name__]
    return None


def _encoder_items(encoders) -> list[tuple[str, Any]]:
    """``(name, estimator or None)`` pairs: None for a named encoder."""
    if isinstance(encoders, str):
        return [(encoders, None)]
    if isinstance(encoders, Mapping):
        return list(encoders.items())
    return [(item, None) if isinstance(item, str) else tuple(item) for item in encoders]


def _coupled(encoders) -> list[str]:
    """Names of the encoders whose fit couples voxels (everything not known to be voxelwise)."""
    out = []
    for name, est in _encoder_items(encoders):
        if est is None:
            if name != "ridge":  # the named readouts (an unknown name fails in compare_encoders)
                out.append(name)
        elif _voxelwise_attrs(est) is None:
            out.append(name)
    return out


# --------------------------------------------------------------- collectives
def _error_info(err: BaseException) -> tuple[bool, str]:
    """``(is an InputError, one-line text)`` of an exception, to send to the other ranks."""
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, InputError):
        return True, text
    return False, f"{type(err).__name__}: {text}"


def _raise_remote(info: tuple[bool, str], rank: int) -> None:
    is_input, text = info
    if is_input:
        raise InputError(f"process {rank} failed: {text}")
    raise RuntimeError(f"process {rank} failed with {text}")


def _agree(rt, error: BaseException | None) -> None:
    """Tell every rank whether rank 0 failed (``error``); all of them then raise (a collective).

    Rank 0 raises ``error`` itself, the others an error naming process 0.
    With one process it just raises ``error``, if any.
    """
    if rt.world_size > 1:
        info = rt.broadcast(None if error is None else _error_info(error), src=0)
        if error is None and info is not None:
            _raise_remote(info, 0)
    if error is not None:
        raise error


# ------------------------------------------------------------------ features
def _by_id_features(dataset, extractor, image_size) -> np.ndarray:
    """Feature maps of every stimulus shown, in an array indexed by stimulus id."""
    from neuro.encoders.compare import compute_features

    ids = np.unique(dataset.stimulus_ids)
    maps = compute_features(dataset, extractor, stimulus_ids=ids, image_size=image_size)
    out = np.zeros((int(ids.max()) + 1, *maps.shape[1:]), dtype=maps.dtype)
    out[ids] = maps
    return out


def _cache(dataset, extractor, path, key, overwrite: bool):
    from neuro.encoders.features import GaborFeatures, cached_features

    if dataset.stimuli is None:
        raise InputError(
            "The dataset has no stimulus images, so features cannot be computed; give "
            "stimuli= when creating it, or pass precomputed features=."
        )
    extractor = GaborFeatures() if extractor is None else extractor
    out = cached_features(extractor, dataset.stimuli, path, key=key, overwrite=overwrite)
    if isinstance(out, Mapping):
        if len(out) != 1:
            raise InputError(
                f"The extractor returned {len(out)} layers ({list(out)}); give an extractor of "
                "one layer, or compute features per layer and pass features=."
            )
        out = next(iter(out.values()))
    return np.asarray(out, dtype=np.float32)


def _is_array(features) -> bool:
    return not (features is None or hasattr(features, "transform") or callable(features))


# ------------------------------------------------------------------ the fit
def _slice_dataset(dataset, voxels: slice):
    """The same trials, stimuli and sessions with only the voxels of ``voxels``."""
    from data_loaders.fmri import FMRIDataset

    def cut(value):
        return None if value is None else value[voxels]

    geometry = dataset.geometry
    return FMRIDataset(
        dataset.betas[:, voxels],
        dataset.stimulus_ids,
        stimuli=dataset.stimuli,
        roi_labels=cut(dataset.roi_labels),
        coords=cut(dataset.coords),
        geometry=None if geometry is None else geometry.subset(voxels),
        session_ids=dataset.session_ids,
        name=dataset.name,
        drop_bad=False,
    )


def _fit_slice(dataset, voxels, encoders, features, compare_kwargs) -> dict[str, Any]:
    """This rank's part: ``compare_encoders`` on its voxels, as per-voxel vectors."""
    from neuro.encoders.compare import compare_encoders

    n = voxels.stop - voxels.start
    if n == 0:
        return {"n_voxels": 0}
    kwargs = {**compare_kwargs, "n_boot": 1}  # the slice's ROI table is not used
    res = compare_encoders(_slice_dataset(dataset, voxels), encoders, features=features, **kwargs)
    state = {}
    for name, est in res.encoders.items():
        attrs = _voxelwise_attrs(est)
        if attrs is not None:
            state[name] = {a: np.asarray(getattr(est, a)) for a in attrs if hasattr(est, a)}
    return {
        "n_voxels": n,
        "result": res,  # kept by rank 0 (its fitted models), never sent
        "scores": res.scores,
        "r2": res.r2,
        "normalized": res.normalized,
        "ceiling_r2": np.asarray(res.ceiling_r2),
        "roi_labels": np.asarray(res.roi_labels),
        "fit_seconds": res.fit_seconds,
        "n_train": res.n_train,
        "n_test": res.n_test,
        "state": state,
    }


def _merge(parts: list[dict], models: dict, dataset, n_boot: int, seed: int, coupled: list[str]):
    """One EncoderComparison over all voxels from the ranks' parts (rank 0's first).

    ``models`` are rank 0's fitted estimators: each receives the per-voxel
    columns of every rank.
    """
    from neuro.encoders.compare import EncoderComparison, _roi_table

    parts = [p for p in parts if p["n_voxels"] > 0]
    first = parts[0]
    names = list(first["scores"])

    def cat(get):
        return np.concatenate([np.asarray(get(p)) for p in parts], axis=-1)

    scores = {n: cat(lambda p, n=n: p["scores"][n]) for n in names}
    r2 = {n: cat(lambda p, n=n: p["r2"][n]) for n in names}
    normalized = {n: cat(lambda p, n=n: p["normalized"][n]) for n in names}
    roi_labels = cat(lambda p: p["roi_labels"])
    seconds = {n: max(float(p["fit_seconds"][n]) for p in parts) for n in names}
    encoders = {}
    for name, est in models.items():
        if name in coupled:
            continue  # one model per slice: no whole-brain model to keep
        for attr in first["state"].get(name, {}):
            setattr(est, attr, cat(lambda p, n=name, a=attr: p["state"][n][a]))
        encoders[name] = est
    return EncoderComparison(
        scores=scores,
        r2=r2,
        normalized=normalized,
        ceiling_r2=cat(lambda p: p["ceiling_r2"]),
        roi_labels=roi_labels,
        table=_roi_table(scores, normalized, roi_labels, n_boot=n_boot, seed=seed),
        fit_seconds=seconds,
        encoders=encoders,
        n_train=first["n_train"],
        n_test=first["n_test"],
        dataset=dataset,
    )


def _check_output(out: Path, overwrite: bool) -> None:
    """Refuse an output folder that ``Result.save`` would refuse, before any fitting."""
    if out.exists() and not out.is_dir():
        raise InputError(
            f"The output folder {str(out)!r} is a file; choose a folder path for the outputs."
        )
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"The output folder {str(out)!r} exists and is not empty. Choose another folder, "
            "or pass overwrite=True (--overwrite on the command line) to write over it."
        )


def _default(name: str):
    from neuro.encoders.compare import compare_encoders

    return inspect.signature(compare_encoders).parameters[name].default


def compare_encoders_sliced(
    dataset,
    encoders: Sequence[str | tuple[str, Any]] | Mapping[str, Any] = ("ridge",),
    *,
    features=None,
    feature_cache: str | os.PathLike | None = None,
    feature_key: str | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    figures: bool = True,
    runtime=None,
    device: str = "auto",
    devices: int | None = None,
    num_nodes: int | None = None,
    voxel_align: int = 64,
    allow_coupled: bool = False,
    cache_overwrite: bool | None = None,
    **compare_kwargs,
):
    """:func:`~neuro.encoders.compare.compare_encoders` with the voxels split across processes.

    Every process fits and scores the encoders on a contiguous slice of the
    voxels (:func:`voxel_slices`) with the same stimuli; rank 0 gathers the
    per-voxel results and the per-voxel columns of the fitted models (never
    the responses) and builds the comparison over all voxels. With one
    process it is ``compare_encoders`` itself.

    Parameters
    ----------
    dataset : FMRIDataset
        The same dataset on every process (each reads it; only its slice of
        voxels is fitted).
    encoders : list of names or (name, estimator) pairs, or dict, default=("ridge",)
        As in ``compare_encoders``. With several processes, only estimators
        that fit each voxel on its own (:data:`VOXELWISE_STATE`: ``"ridge"``,
        :class:`~neuro.encoders.VoxelRidgeCV`,
        :class:`~neuro.encoders.BandedRidgeCV`, or a class declaring
        ``voxelwise_state``) are accepted unless ``allow_coupled``.
    features : array (n_stimuli, C, H, W) or (n_stimuli, D), extractor, or None
        As in ``compare_encoders``: an array indexed by stimulus id is used
        as given on every process; an extractor (None: the Gabor bank) is run
        once, by rank 0.
    feature_cache : path, optional
        HDF5 feature cache (:func:`~neuro.encoders.features.cached_features`)
        for an extractor: rank 0 computes or checks the entry while the others
        wait, then they read it. It must lie on a file system every node sees.
        Without it, rank 0 computes the features of every stimulus shown and
        sends them to the others (they travel whole, so prefer a cache for
        large stimulus sets). Ignored when ``features`` is an array.
    feature_key : str, optional
        Name of the cache entry (default the extractor's class name).
    cache_overwrite : bool, optional
        Recompute a cache entry made from other settings or images; by
        default ``overwrite``. (``neuro fit-encoder`` under torchrun passes
        ``overwrite=True`` for the folder rank 0 already checked, and its
        ``--overwrite`` here.)
    out : path, optional
        Output folder: rank 0 writes the result there (``EncoderComparison.save``),
        refused before any fitting if it exists and is not empty, unless
        ``overwrite``.
    overwrite : bool, default=False
        Write over ``out``, and recompute a cache entry made from other
        settings (``cached_features(overwrite=...)``).
    figures : bool, default=True
        Draw the figures when saving.
    runtime : neuro.train.Runtime, optional
        The processes to use (launched here if it was not). None builds one
        from ``device``, ``devices`` and ``num_nodes``.
    device : str, default="auto"
        Device of each process (``"auto"``: a GPU per process when there are
        GPUs, else the CPU); also the ``device`` given to ``compare_encoders``.
    devices, num_nodes : int, optional
        Processes per node and nodes; default what torchrun or SLURM started
        (:func:`launcher_layout`), else 1 and 1.
    voxel_align : int, default=64
        Slices start at multiples of it (see :func:`voxel_slices`), which
        keeps the CPU results bit-identical to one process; 1 splits as
        evenly as possible.
    allow_coupled : bool, default=False
        Also accept encoders that train all their voxels together (the
        readouts: one optimiser and one early-stopping rule for every voxel).
        Each process then trains its own model on its slice, so the scores
        differ from one process's; their models are not kept in the result
        (a warning says so).
    **compare_kwargs
        Passed to ``compare_encoders`` (``test_size``, ``test_stimuli``,
        ``seed``, ``n_boot``, ``semantic``, ``readout_kwargs``, ``image_size``,
        ``verbose``, ...). ``seed`` and ``n_boot`` also drive the per-ROI
        bootstrap on rank 0, as in one process.

    Returns
    -------
    EncoderComparison or None
        The comparison over all voxels on rank 0; None on the other processes.
        Its ``fit_seconds`` are the slowest process's. A model in
        ``encoders`` is rank 0's estimator with every process's per-voxel
        columns put together, so ``models/<name>.pt`` holds the whole-brain
        model.

    Raises
    ------
    InputError
        With several processes, an encoder that couples voxels and
        ``allow_coupled`` is False; ``out`` not empty; and anything
        ``compare_encoders`` refuses. An error on one process is raised on
        every process (the others name the process that failed).

    Notes
    -----
    Exactness on the CPU: a voxel's numbers depend on the vector lane its
    column meets in the products and reductions, so the sliced result equals
    one process's bit for bit when (1) slices start at multiples of 64
    (``voxel_align``, the default), (2) every voxel batch of a ridge model is
    a multiple of 64 voxels or holds the whole slice (``voxel_batch_size=None``
    does whenever a process's voxels fit in one batch, about 128 MiB of
    working memory), and (3) every process uses as many threads as the one
    process (``torchrun`` sets ``OMP_NUM_THREADS=1``). Otherwise expect
    float32 rounding differences (measured: up to 1.3e-7 in r, 2e-8 in the
    weights), which can flip the alpha of a voxel whose candidate alphas score
    alike. On GPUs, cuBLAS picks its kernels by matrix size: set
    ``voxel_batch_size`` and ``voxel_align`` to the same value so that every
    batch has the same voxels as in one process.

    Examples
    --------
    >>> from data_loaders.fmri import FMRIDataset
    >>> from data_loaders.simulate.fmri import simulate_fmri
    >>> sim = simulate_fmri(n_subjects=1, n_stimuli=60, image_size=32, voxels_per_roi=3, seed=0)
    >>> ds = FMRIDataset.from_simulation(sim.subjects[0], sim.stimuli)
    >>> maps = sim.feature_maps[:, None, ::4, ::4]
    >>> result = compare_encoders_sliced(ds, ["ridge"], features=maps, device="cpu")
    >>> result.scores["ridge"].shape == (ds.n_voxels,)  # one process: compare_encoders
    True
    """
    from neuro.encoders.compare import compare_encoders, shown_stimuli_only
    from neuro.train.distributed import Runtime

    overwrite = check_bool("overwrite", overwrite)
    cache_overwrite = (
        overwrite if cache_overwrite is None else check_bool("cache_overwrite", cache_overwrite)
    )
    figures = check_bool("figures", figures)
    allow_coupled = check_bool("allow_coupled", allow_coupled)
    voxel_align = check_int("voxel_align", voxel_align, minimum=1)
    if runtime is None:
        local, nodes = launcher_layout()
        devices = local if devices is None else devices
        num_nodes = nodes if num_nodes is None else num_nodes
        runtime = Runtime(device=device, devices=devices, num_nodes=num_nodes)
    rt = runtime.launch()
    rank, world = rt.global_rank, rt.world_size
    coupled = _coupled(encoders) if world > 1 else []
    if coupled and not allow_coupled:  # the same on every rank: no need to tell the others
        raise InputError(
            f"Encoder(s) {coupled} train all their voxels together (one optimiser and one "
            f"early-stopping rule), so they cannot be split across {world} processes and give "
            "the model one process would; fit them in one process, or pass allow_coupled=True "
            "to train one model per voxel slice."
        )
    out_path = None if out is None else Path(out).expanduser()
    error = None
    if out_path is not None and rank == 0:
        error = _output_error(out_path, overwrite)
    _agree(rt, error)  # refused before any fitting, on every rank
    seed = compare_kwargs.get("seed", _default("seed"))
    n_boot = compare_kwargs.get("n_boot", _default("n_boot"))
    compare_kwargs["device"] = str(rt.device) if world > 1 else device

    # features, computed once (by rank 0), for the stimuli shown only (NSD: 10k of 73k images)
    if not _is_array(features):
        dataset, test, semantic = shown_stimuli_only(
            dataset, compare_kwargs.get("test_stimuli"), compare_kwargs.get("semantic")
        )
        compare_kwargs.update(
            {k: v for k, v in (("test_stimuli", test), ("semantic", semantic)) if v is not None}
        )
    features_here = features
    if not _is_array(features) and (feature_cache is not None or world > 1):
        computed = None
        if rank == 0:
            try:
                if feature_cache is not None:
                    computed = _cache(
                        dataset, features, feature_cache, feature_key, cache_overwrite
                    )
                else:
                    image_size = compare_kwargs.get("image_size")
                    computed = _by_id_features(dataset, features, image_size)
            except Exception as err:  # told to the other ranks, then raised
                error = err
        _agree(rt, error)
        if feature_cache is None:
            computed = rt.broadcast(computed, src=0)
        features_here = computed  # None on the ranks that read the cache below

    if world == 1:
        result = compare_encoders(dataset, encoders, features=features_here, **compare_kwargs)
        if out_path is not None:
            result.save(out_path, overwrite=overwrite, figures=figures)
        return result

    # every rank: its slice
    slices = voxel_slices(dataset.n_voxels, world, align=voxel_align)
    if rank == 0:
        busy = sum(s.stop > s.start for s in slices)
        logger.info("%d voxels over %d processes (%d with voxels)", dataset.n_voxels, world, busy)
        if busy < world:
            warnings.warn(
                f"{dataset.n_voxels} voxels in blocks of voxel_align={voxel_align} keep only "
                f"{busy} of {world} processes busy; use fewer processes or a smaller voxel_align.",
                stacklevel=2,
            )
    part: dict[str, Any] = {"n_voxels": 0}
    t0 = time.perf_counter()
    try:
        if features_here is None and slices[rank].stop > slices[rank].start:
            # the ranks other than 0 read the cache that rank 0 filled
            features_here = _cache(dataset, features, feature_cache, feature_key, False)
        part = _fit_slice(dataset, slices[rank], encoders, features_here, compare_kwargs)
    except Exception as err:  # gathered on rank 0, then raised on every rank
        error = err
    logger.debug("rank %d: voxels %s in %.1f s", rank, slices[rank], time.perf_counter() - t0)
    local = part.pop("result", None)  # rank 0 builds on its own; the others send vectors
    parts = rt.gather_object({"error": _error_info(error)} if error is not None else part, dst=0)

    result, status = None, None
    if rank == 0:
        failed = [(r, p["error"]) for r, p in enumerate(parts) if "error" in p]
        if failed:
            status = failed[0]
        else:
            try:
                result = _merge(parts, local.encoders, dataset, n_boot, seed, coupled)
                if coupled:
                    warnings.warn(
                        f"Encoder(s) {coupled} were trained once per voxel slice "
                        "(allow_coupled=True): their scores are kept, their models are not "
                        "(there is no single whole-brain model).",
                        stacklevel=2,
                    )
                if out_path is not None:
                    result.save(out_path, overwrite=overwrite, figures=figures)
            except Exception as err:  # told to the other ranks, then raised
                error, status = err, (0, _error_info(err))
    status = rt.broadcast(status, src=0)
    if error is not None:
        raise error
    if status is not None:
        _raise_remote(status[1], status[0])
    return result


def _output_error(out: Path, overwrite: bool) -> BaseException | None:
    try:
        _check_output(out, overwrite)
    except InputError as err:
        return err
    return None
