r"""Pairwise affinities between calcium traces, per time point, in torch.

Derivative affinity (after Dyballa et al., ICLR 2024)
    Let :math:`x_i(t)`, :math:`t = 0..T-1`, be neuron :math:`i`'s trace after
    Gaussian smoothing with sd ``smooth`` frames, and
    :math:`d_i(t) = x_i(t+1) - x_i(t)` its derivative at the :math:`T-1` steps.
    A *run* of neuron :math:`i` is a maximal interval of steps over which
    :math:`\operatorname{sign} d_i` is constant; :math:`[S_i(t), E_i(t)]` is
    the run containing step :math:`t`. For a pair :math:`(i, j)` the *joint
    interval* at step :math:`t` is the intersection of their runs,
    :math:`[a, b] = [\max(S_i, S_j), \min(E_i, E_j)]` (it contains :math:`t`):
    the longest interval around :math:`t` over which both derivatives keep
    their sign. The change of each trace over it,

    .. math:: \Delta_i^{ij}(t) = x_i(b + 1) - x_i(a) = \sum_{s=a}^{b} d_i(s),

    is scaled by the neuron's derivative noise scale :math:`\sigma_i`
    (``1.4826 * median |d_i - median d_i|``, robust to the sparse large
    changes of calcium transients; the standard deviation of :math:`d_i` if
    that is 0; medians of even counts are the lower middle value), and

    .. math:: A_{ij}(t) = 1 - \exp\!\left(-\frac{\min\left(
              |\Delta_i^{ij}(t)| / \sigma_i,\ |\Delta_j^{ij}(t)| / \sigma_j
              \right)^2}{c}\right),

    with :math:`c` = ``scale``: a co-change of :math:`\sqrt{c}` noise scales in
    both traces gives :math:`1 - 1/e`. The minimum makes the affinity need a
    change in *both* neurons (one neuron's large transient against the
    other's noise stays small). It is non-linear (saturating) and bounded,
    :math:`0 \le A_{ij}(t) < 1` (1 in floating point once saturated); it is 0
    exactly when one of the traces does not change over the joint interval; it
    is symmetric; co-changes of opposite sign count like those of the same
    sign (absolute changes), since inhibition is an interaction too; and it
    does not depend on the traces' offsets or (through :math:`\sigma`) their
    gains.

Correlation affinity (baseline)
    :math:`|r_{ij}|` over each time bin, the absolute Pearson correlation of
    the two raw traces over the bin's frames; 0 where a trace is constant in
    the bin. Bounded in :math:`[0, 1]`.

Time bins
    Both are averaged in bins of ``bin_size`` steps (the last bin may be
    shorter) before they enter the tensor: bin :math:`k` covers steps
    :math:`[k w, (k+1) w)`, i.e. frames :math:`k w .. (k+1) w` with
    :math:`w` = ``bin_size``; ``n_bins = ceil((T - 1) / w)``.

Bin length
    The affinity shows a community only where a bin holds events shared by
    its members: with bins much shorter than the time between events, each
    bin of an animal holds its own events or none, and the time factors
    follow each animal's event timing instead of the shared epochs.
    ``bin_size`` is in steps (frames); in seconds it is
    ``bin_size / sampling_rate``. :func:`bin_events` counts *events* (rises
    of at least :math:`\sqrt{c}\,\sigma_i`, the rise that gives
    :math:`1 - 1/e` with a partner rising alike) per bin, and
    :func:`check_bins` compares the median neuron's events per bin with
    ``min_events`` (default :data:`MIN_EVENTS` = 0.1), below which the
    epochs fade, suggests a bin size holding one event
    (:data:`SUGGESTED_EVENTS`) and warns (``check_bins(...).warn()``). On planted epochs of
    ``simulate_calcium`` (30 Hz, 3 animals, 30 s epochs, seeds 0 to 5), 0.2 s
    bins held about 0.02 events per neuron and their time factors correlated
    0.33 to 0.48 with the epochs (community affinity agreeing 0.03 to 0.12
    across animals); 0.67 s bins: 0.06 to 0.07 events, 0.48 to 0.66 (0.06 to
    0.29); the suggested 9 to 12 s bins: 1 event, 0.77 to 0.93 (0.51 to
    0.95). Bins must also stay shorter than the epochs looked for.

Memory
    Pairs are processed ``pair_batch_size`` at a time, whatever the number of
    pairs. The derivative affinity of a batch holds the joint intervals
    (int32; torch widens them to int64 while indexing) and float32 rows: a
    measured peak of about 28 bytes per (pair, step) on CPU, against 40 to 51
    for the plain formula (``xs[i]`` copies and int64 gathers) used before;
    the correlation holds three float32 arrays, about 12. Add the per-animal
    smoothed traces and runs, 12 bytes per (neuron, frame). The default
    ``pair_batch_size="auto"`` takes ``2**23 // T`` pairs
    (:func:`auto_pair_batch_size`, at least 1), so the work memory stays near
    230 MB for any recording length: 5 animals x 190 neurons x 30 min at 30 Hz
    (54,000 frames) runs in batches of 155 pairs, where a fixed batch of 2,048
    pairs needed about 4.6 GB (3.1 GB with the leaner batch). The result is
    ``(n_bins, n_animals, n_pairs)`` float32, pairs ordered as
    ``numpy.triu_indices(n_neurons, k=1)``; the batch size does not change it.

Missing neurons
    Pairs with a neuron missing (NaN row) in an animal are NaN in that
    animal's slice of the tensor.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from neuro._validation import check_array, check_choice, check_float, check_int
from neuro.errors import InputError
from neuro.train.device import resolve_device
from neuro.train.progress import progress

__all__ = [
    "AFFINITIES",
    "MIN_EVENTS",
    "PAIR_BATCH_ELEMENTS",
    "SUGGESTED_EVENTS",
    "BinCheck",
    "affinity_tensor",
    "auto_pair_batch_size",
    "bin_events",
    "check_bins",
    "check_traces",
    "correlation_affinity",
    "derivative_affinity",
    "pair_index",
]

#: Affinity names accepted by :func:`affinity_tensor`.
AFFINITIES = ("derivative", "correlation")


def pair_index(n_neurons: int) -> np.ndarray:
    """Neuron pairs ``(i, j)``, ``i < j``, in tensor order: shape ``(n_pairs, 2)``.

    Examples
    --------
    >>> pair_index(3).tolist()
    [[0, 1], [0, 2], [1, 2]]
    """
    n_neurons = check_int("n_neurons", n_neurons, minimum=0)
    return np.stack(np.triu_indices(n_neurons, k=1), axis=1)


def check_traces(traces) -> np.ndarray:
    """Validate traces ``(animals, neurons, time)`` for the connectome; return float64 numpy.

    Accepts a :class:`~data_loaders.calcium.CalciumData`, a numpy array or a torch tensor.

    Raises
    ------
    InputError
        Not 3-D; fewer than 2 neurons or 3 frames; infinite values; an animal
        whose neurons are all NaN; NaN gaps in a trace; a recorded trace that
        is constant.
    InputTypeError
        Not an array of numbers.
    """
    x = getattr(traces, "traces", traces)
    x = check_array("traces", x, finite=False, dtype=np.float64)
    if x.ndim != 3:
        hint = " For one animal use traces[None]." if x.ndim == 2 else ""
        raise InputError(
            f"traces must have shape (animals, neurons, time); got {x.ndim} dimension(s) "
            f"with shape {x.shape}.{hint}"
        )
    if x.shape[1] < 2 or x.shape[2] < 3:
        raise InputError(f"traces need >= 2 neurons and >= 3 frames; got shape {x.shape}.")
    if np.isinf(x).any():
        raise InputError(
            f"traces hold {int(np.isinf(x).sum())} infinite value(s); only NaN rows (a neuron "
            "missing in an animal) are allowed."
        )
    finite = np.isfinite(x)
    missing = ~finite.any(axis=2)
    if (~finite.all(axis=2) & ~missing).any():
        raise InputError(
            "some traces are NaN/inf at some frames but not all; NaN may only mark a neuron "
            "missing in an animal (a whole row). Interpolate gaps first."
        )
    empty = np.flatnonzero(missing.all(axis=1))
    if empty.size:
        raise InputError(
            f"animal(s) {empty.tolist()} have all neurons NaN (nothing recorded); remove them "
            "from traces."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows of missing neurons
        span = np.nanmax(np.where(finite, x, np.nan), axis=2) - np.nanmin(
            np.where(finite, x, np.nan), axis=2
        )
    constant = ~missing & (span <= 0)
    if constant.any():
        a, n = np.argwhere(constant)[0]
        raise InputError(
            f"{int(constant.sum())} trace(s) are constant (first: animal {a}, neuron {n}); a "
            "constant trace has no derivative or correlation. Mark it as missing (NaN) or drop it."
        )
    return x


def _smooth(x: torch.Tensor, sd: float) -> torch.Tensor:
    """Gaussian smoothing along the last axis (edges reflected)."""
    if sd <= 0:
        return x
    half = max(1, math.ceil(3 * sd))
    half = min(half, x.shape[-1] - 1)
    k = torch.arange(-half, half + 1, device=x.device, dtype=x.dtype)
    w = torch.exp(-0.5 * (k / sd) ** 2)
    w = (w / w.sum()).view(1, 1, -1)
    padded = torch.nn.functional.pad(x.unsqueeze(1), (half, half), mode="reflect")
    return torch.nn.functional.conv1d(padded, w).squeeze(1)


def _runs(d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last step of the constant-sign run containing each step, ``(N, T-1)`` each."""
    s = torch.sign(d)
    n, m = s.shape
    idx = torch.arange(m, device=d.device).expand(n, m)
    new = torch.ones_like(s, dtype=torch.bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    start = torch.cummax(torch.where(new, idx, torch.zeros_like(idx)), dim=1).values
    last = torch.ones_like(new)
    last[:, :-1] = new[:, 1:]
    end_marks = torch.where(last, idx, torch.full_like(idx, m - 1))
    end = torch.flip(torch.cummin(torch.flip(end_marks, [1]), dim=1).values, [1])
    return start, end


def _bin_mean(a: torch.Tensor, bin_size: int) -> torch.Tensor:
    """Mean of ``(P, S)`` over bins of ``bin_size`` steps along the last axis."""
    p, s = a.shape
    n_bins = -(-s // bin_size)
    pad = n_bins * bin_size - s
    total = torch.nn.functional.pad(a, (0, pad)).view(p, n_bins, bin_size).sum(-1)
    counts = torch.full((n_bins,), float(bin_size), device=a.device, dtype=a.dtype)
    counts[-1] = bin_size - pad
    return total / counts


def _prepare(x: torch.Tensor, smooth: float):
    """Smoothed traces, derivative noise scales and runs (int32: half the index memory)."""
    xs = _smooth(x, smooth)
    d = xs[:, 1:] - xs[:, :-1]
    med = d.median(dim=1, keepdim=True).values
    sigma = 1.4826 * (d - med).abs().median(dim=1).values
    sigma = torch.where(sigma > 0, sigma, d.std(dim=1)).clamp_min(torch.finfo(d.dtype).tiny)
    start, end = _runs(d)
    index = torch.int32 if d.shape[1] < 2**31 - 1 else torch.int64
    return xs, sigma, start.to(index), end.to(index)


def _derivative_batch(xs, sigma, start, end, i, j, scale):
    """``A_ij(t)`` for the pairs ``(i, j)``, ``(batch, T - 1)``; in place, no ``xs[i]`` copies.

    Work memory: the joint intervals ``a, b`` (int32, widened by torch's
    indexing) and float rows, a measured peak of about 28 bytes per
    ``(pair, step)`` (the plain formula with ``xs[i].gather``: 40 to 51).
    """
    ii, jj = i[:, None], j[:, None]
    a = start[i]
    torch.maximum(a, start[j], out=a)
    b = end[i]
    torch.minimum(b, end[j], out=b)
    b += 1
    di = xs[ii, b]
    di -= xs[ii, a]
    di.abs_().div_(sigma[ii])
    dj = xs[jj, b]
    dj -= xs[jj, a]
    dj.abs_().div_(sigma[jj])
    del a, b
    torch.minimum(di, dj, out=di)
    del dj
    return di.square_().neg_().div_(scale).exp_().neg_().add_(1.0)


def _event_onsets(xs, sigma, start, end, scale) -> torch.Tensor:
    """Bool ``(N, T - 1)``: steps where an event (a rise of >= sqrt(scale) sigma_i) begins."""
    m = start.shape[1]
    idx = torch.arange(m, device=xs.device)
    rising = xs[:, 1:] > xs[:, :-1]
    rise = xs[torch.arange(len(xs), device=xs.device)[:, None], end + 1] - xs[:, :-1]
    return (start == idx) & rising & (rise >= math.sqrt(scale) * sigma[:, None])


def _bin_sum(a: torch.Tensor, bin_size: int) -> torch.Tensor:
    """Sum of ``(N, S)`` over bins of ``bin_size`` steps along the last axis."""
    n, s = a.shape
    n_bins = -(-s // bin_size)
    padded = torch.nn.functional.pad(a, (0, n_bins * bin_size - s))
    return padded.view(n, n_bins, bin_size).sum(-1)


def _check_bin_size(bin_size, n_frames: int) -> int:
    """``bin_size`` as an int in ``1 .. n_frames - 1`` (steps), else one clear InputError."""
    bin_size = check_int("bin_size", bin_size, minimum=1)
    if bin_size > n_frames - 1:
        raise InputError(
            f"bin_size = {bin_size} steps is longer than the recording ({n_frames} frames = "
            f"{n_frames - 1} steps); use bin_size <= {n_frames - 1}, or a longer recording."
        )
    return bin_size


def derivative_affinity(
    traces,
    pairs=None,
    smooth: float = 1.0,
    scale: float = 50.0,
    device: str | torch.device = "auto",
):
    """The derivative affinity :math:`A_{ij}(t)` at every step, for one animal.

    Parameters
    ----------
    traces : array or tensor of shape (n_neurons, n_frames)
        No NaN (drop missing neurons first).
    pairs : array of shape (n_pairs, 2), optional
        Default: every pair ``i < j`` (:func:`pair_index`).
    smooth : float, default=1.0
        Gaussian smoothing sd in frames before the derivative (0 = none).
    scale : float, default=50.0
        :math:`c` in the definition (larger = less saturation).
    device : str or torch.device, default="auto"

    Returns
    -------
    ndarray or tensor of shape (n_pairs, n_frames - 1)
        In ``[0, 1)``; numpy for numpy input.

    Examples
    --------
    >>> t = np.linspace(0, 6, 60)
    >>> x = np.stack([np.sin(t), -np.sin(t), np.cos(3 * t)])
    >>> a = derivative_affinity(x, scale=1.0, device="cpu")
    >>> a.shape, bool((a >= 0).all() and (a <= 1).all())
    ((3, 59), True)
    >>> bool(a[0].mean() > a[1].mean())                # mirror images co-change all along
    True
    """
    smooth = check_float("smooth", smooth, minimum=0.0)
    scale = check_float("scale", scale, minimum=0.0, strict_minimum=True)
    x, as_numpy, dev = _one_animal(traces, device)
    pairs = _check_pairs(pairs, x.shape[0])
    xs, sigma, start, end = _prepare(x, smooth)
    i = torch.as_tensor(pairs[:, 0], device=dev)
    j = torch.as_tensor(pairs[:, 1], device=dev)
    out = _derivative_batch(xs, sigma, start, end, i, j, scale)
    return out.cpu().numpy() if as_numpy else out


def correlation_affinity(traces, bin_size: int, pairs=None, device="auto"):
    """Absolute Pearson correlation of each pair within each time bin, for one animal.

    Parameters
    ----------
    traces : array or tensor of shape (n_neurons, n_frames)
    bin_size : int
        Steps per bin; bin ``k`` uses frames ``k * bin_size .. (k + 1) * bin_size``.
    pairs : array of shape (n_pairs, 2), optional
    device : str or torch.device, default="auto"

    Returns
    -------
    ndarray or tensor of shape (n_pairs, n_bins), in ``[0, 1]``

    Examples
    --------
    >>> x = np.array([[0.0, 1, 0, 1, 0], [1.0, 0, 1, 0, 1], [0.0, 1, 2, 3, 3]])
    >>> correlation_affinity(x, bin_size=2, device="cpu").round(2).tolist()
    [[1.0, 1.0], [0.0, 0.5], [0.0, 0.5]]
    """
    x, as_numpy, dev = _one_animal(traces, device)
    bin_size = _check_bin_size(bin_size, x.shape[1])
    pairs = _check_pairs(pairs, x.shape[0])
    z = _window_z(x, bin_size)
    i = torch.as_tensor(pairs[:, 0], device=dev)
    j = torch.as_tensor(pairs[:, 1], device=dev)
    out = (z[i] * z[j]).sum(-1).abs().clamp_max(1.0)
    return out.cpu().numpy() if as_numpy else out


def _one_animal(traces, device):
    """One animal's ``(neurons, frames)`` traces as a float tensor on ``device``, checked."""
    as_numpy = not isinstance(traces, torch.Tensor)
    dev = resolve_device(device)
    if as_numpy:
        arr = check_array("traces", traces, ndim=2, shape_hint="(n_neurons, n_frames)")
        x = torch.as_tensor(arr, device=dev)
    else:
        if traces.ndim != 2:
            raise InputError(
                f"traces must be 2D (n_neurons, n_frames); got shape {tuple(traces.shape)}."
            )
        if not torch.isfinite(traces).all():
            raise InputError("traces contain NaN or infinite values; drop missing neurons first.")
        x = traces.to(dev)
    if x.shape[1] < 2:
        raise InputError(f"traces need at least 2 frames; got shape {tuple(x.shape)}.")
    x = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    return x, as_numpy, dev


def _check_pairs(pairs, n_neurons: int) -> np.ndarray:
    if pairs is None:
        return pair_index(n_neurons)
    p = check_array("pairs", pairs, ndim=2, shape_hint="(n_pairs, 2)")
    if p.shape[1] != 2 or not np.issubdtype(p.dtype, np.integer):
        raise InputError(f"pairs must be integers of shape (n_pairs, 2); got {p.dtype} {p.shape}.")
    if (p < 0).any() or (p >= n_neurons).any():
        raise InputError(
            f"pairs must index neurons 0 .. {n_neurons - 1}; got {p.min()} .. {p.max()}."
        )
    return p


def _window_z(x: torch.Tensor, bin_size: int) -> torch.Tensor:
    """``(N, n_bins, bin_size + 1)`` windows, centred and scaled to unit norm (0 if constant)."""
    _n, t = x.shape
    n_bins = -(-(t - 1) // bin_size)
    pad = n_bins * bin_size + 1 - t
    padded = torch.nn.functional.pad(x, (0, pad), value=float("nan"))
    win = padded.unfold(1, bin_size + 1, bin_size)  # (N, n_bins, bin_size + 1)
    valid = ~torch.isnan(win)
    count = valid.sum(-1, keepdim=True)
    mean = torch.where(valid, win, 0).sum(-1, keepdim=True) / count
    c = torch.where(valid, win - mean, 0)
    norm = c.norm(dim=-1, keepdim=True)
    return torch.where(norm > 1e-12 * (1 + mean.abs()), c / norm.clamp_min(1e-300), 0)


#: Numbers per work array of one pair batch with ``pair_batch_size="auto"`` (32 MiB of float32).
PAIR_BATCH_ELEMENTS = 2**23


def auto_pair_batch_size(n_frames: int) -> int:
    """Pairs per batch so that one ``(pairs, n_frames)`` work array holds <= ``2**23`` numbers.

    ``max(1, PAIR_BATCH_ELEMENTS // n_frames)``: the work memory of
    :func:`affinity_tensor` is then about 28 bytes * ``2**23`` = 230 MB (derivative)
    or 12 bytes * ``2**23`` (correlation), whatever the recording length.

    Examples
    --------
    >>> auto_pair_batch_size(30 * 60 * 30)             # 30 min at 30 Hz
    155
    """
    n_frames = check_int("n_frames", n_frames, minimum=1)
    return max(1, PAIR_BATCH_ELEMENTS // n_frames)


def affinity_tensor(
    traces,
    method: str = "derivative",
    bin_size: int = 10,
    smooth: float = 1.0,
    scale: float = 50.0,
    pair_batch_size: int | str = "auto",
    device: str | torch.device = "auto",
    verbose: int = 0,
):
    """The ``(time bins, animals, pairs)`` affinity tensor of multi-animal traces.

    Parameters
    ----------
    traces : CalciumData, array or tensor of shape (n_animals, n_neurons, n_frames)
        NaN rows mark neurons missing in an animal.
    method : {"derivative", "correlation"}, default="derivative"
        The affinity (see the module docstring).
    bin_size : int, default=10
        Steps averaged into one time bin, ``1 .. n_frames - 1``. A bin must hold
        shared events for the affinity to show communities: see :func:`check_bins`.
    smooth : float, default=1.0
        Gaussian smoothing sd (frames) before the derivative affinity.
    scale : float, default=50.0
        :math:`c` of the derivative affinity.
    pair_batch_size : int or "auto", default="auto"
        Pairs computed at once. ``"auto"``: :func:`auto_pair_batch_size`, so that
        a work array holds at most ``PAIR_BATCH_ELEMENTS`` (``2**23``) numbers,
        whatever the recording length. Work memory is about 28 bytes per
        ``(pair, step)`` of a batch (module docstring, "Memory"). The result
        does not depend on it.
    device : str or torch.device, default="auto"
    verbose : int, default=0

    Returns
    -------
    ndarray of shape (n_bins, n_animals, n_pairs), float32
        NaN for pairs with a missing neuron in that animal.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((2, 4, 31))
    >>> x[1, 3] = np.nan
    >>> a = affinity_tensor(x, bin_size=10, device="cpu")
    >>> a.shape, int(np.isnan(a[0]).sum())             # 3 pairs with neuron 3 in animal 1
    ((3, 2, 6), 3)
    """
    check_choice("method", method, AFFINITIES)
    if isinstance(pair_batch_size, str):
        if pair_batch_size != "auto":
            raise InputError(
                f"pair_batch_size must be an integer >= 1 or 'auto'; got {pair_batch_size!r}."
            )
    else:
        pair_batch_size = check_int("pair_batch_size", pair_batch_size, minimum=1)
    smooth = check_float("smooth", smooth, minimum=0.0)
    scale = check_float("scale", scale, minimum=0.0, strict_minimum=True)
    x = check_traces(traces)
    bin_size = _check_bin_size(bin_size, x.shape[2])
    dev = resolve_device(device)
    n_animals, n_neurons, n_frames = x.shape
    pairs = pair_index(n_neurons)
    if pair_batch_size == "auto":
        pair_batch_size = auto_pair_batch_size(n_frames)
    n_bins = -(-(n_frames - 1) // bin_size)
    out = np.full((n_bins, n_animals, len(pairs)), np.nan, dtype=np.float32)
    missing = np.isnan(x).all(axis=2)
    batches = range(0, len(pairs), pair_batch_size)
    bar = progress(total=n_animals * len(batches), desc="affinity", verbose=verbose)
    for a in range(n_animals):
        xa = torch.as_tensor(np.nan_to_num(x[a]), device=dev, dtype=torch.float32)
        if method == "derivative":
            prepared = _prepare(xa, smooth)
        else:
            z = _window_z(xa, bin_size)
        for start in batches:
            p = pairs[start : start + pair_batch_size]
            i = torch.as_tensor(p[:, 0], device=dev)
            j = torch.as_tensor(p[:, 1], device=dev)
            if method == "derivative":
                aff = _bin_mean(_derivative_batch(*prepared, i, j, scale), bin_size)
            else:
                aff = (z[i] * z[j]).sum(-1).abs().clamp_max(1.0)
            out[:, a, start : start + len(p)] = aff.T.cpu().numpy()
            bar.update(1)
        bad = missing[a][pairs[:, 0]] | missing[a][pairs[:, 1]]
        out[:, a, bad] = np.nan
    bar.close()
    return out


def bin_events(
    traces,
    bin_size: int,
    smooth: float = 1.0,
    scale: float = 50.0,
    device: str | torch.device = "auto",
) -> np.ndarray:
    r"""Events starting in each time bin, per animal and neuron.

    An *event* of neuron :math:`i` is a maximal run of steps with a positive
    derivative of its smoothed trace (the runs and :math:`\sigma_i` of the
    derivative affinity, see the module docstring) whose total rise is at
    least :math:`\sqrt{c}\,\sigma_i`, ``c = scale``: a rise that alone gives an
    affinity of at least :math:`1 - 1/e` with a partner rising as much over the
    same steps. It is counted in the bin of its first step; bins are those of
    :func:`affinity_tensor` (``bin_size`` steps, the last one may be shorter).

    Parameters
    ----------
    traces : CalciumData, array or tensor of shape (n_animals, n_neurons, n_frames)
        NaN rows mark neurons missing in an animal.
    bin_size : int
        Steps per bin, ``1 .. n_frames - 1``.
    smooth : float, default=1.0
        Gaussian smoothing sd (frames), as in :func:`affinity_tensor`.
    scale : float, default=50.0
        :math:`c` of the derivative affinity.
    device : str or torch.device, default="auto"

    Returns
    -------
    ndarray of shape (n_animals, n_neurons, n_bins), float64
        Event counts; NaN for missing neurons.

    Raises
    ------
    InputError
        Bad traces (see :func:`check_traces`), ``bin_size`` < 1 or longer than
        the recording.

    Examples
    --------
    >>> x = np.zeros((1, 2, 40))
    >>> x[0, 0, 5:] += 1.0                              # one step up in neuron 0
    >>> x[0, 1, 16:] += 1.0                             # and in neuron 1
    >>> x += 0.01 * np.random.default_rng(0).standard_normal(x.shape)
    >>> bin_events(x, bin_size=10, device="cpu")[0].tolist()
    [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]
    """
    x = check_traces(traces)
    bin_size = _check_bin_size(bin_size, x.shape[2])
    smooth = check_float("smooth", smooth, minimum=0.0)
    scale = check_float("scale", scale, minimum=0.0, strict_minimum=True)
    dev = resolve_device(device)
    n_animals, n_neurons, n_frames = x.shape
    n_bins = -(-(n_frames - 1) // bin_size)
    out = np.empty((n_animals, n_neurons, n_bins))
    missing = np.isnan(x).all(axis=2)
    for a in range(n_animals):
        xa = torch.as_tensor(np.nan_to_num(x[a]), device=dev, dtype=torch.float32)
        onsets = _event_onsets(*_prepare(xa, smooth), scale)
        out[a] = _bin_sum(onsets.to(torch.float32), bin_size).cpu().numpy()
        out[a, missing[a]] = np.nan
    return out


#: Default ``min_events`` of :func:`check_bins` (events per neuron per bin).
MIN_EVENTS = 0.1

#: Events per neuron per bin of the bin size :func:`check_bins` suggests.
SUGGESTED_EVENTS = 1.0


@dataclass(frozen=True)
class BinCheck:
    """Whether time bins hold enough events for the affinity to show communities.

    Made by :func:`check_bins`. Bin sizes are in steps (frames), as ``bin_size``
    of :func:`affinity_tensor`.

    Attributes
    ----------
    bin_size : int
        The bin size checked.
    events_per_bin : float
        Median over recorded neurons (all animals) of each neuron's events per
        full bin (its event count / steps * ``bin_size``).
    coactive_pairs_per_bin : float
        Fraction of an animal's recorded pairs whose two neurons both start
        an event in the same bin, averaged over bins and animals.
    event_rate : float
        Median over recorded neurons of events per step (does not depend on
        ``bin_size``).
    suggested_bin_size : int or None
        ``ceil(max(SUGGESTED_EVENTS, min_events) / event_rate)``: the
        smallest bin holding one event of the median neuron (where the time
        factors followed planted epochs with r 0.77 to 0.93 and the
        communities' affinity agreed 0.51 to 0.95 across animals); None if no
        event was found.
    min_events : float
        Events per neuron per bin asked for.
    too_short : bool
        ``events_per_bin < min_events``.
    n_steps : int
        Steps in the recording (``n_frames - 1``).
    sampling_rate : float or None
        Hz; the message gives seconds when known.
    """

    bin_size: int
    events_per_bin: float
    coactive_pairs_per_bin: float
    event_rate: float
    suggested_bin_size: int | None
    min_events: float
    too_short: bool
    n_steps: int
    sampling_rate: float | None = None

    def _length(self, steps: int, extra: str = "") -> str:
        notes = [] if self.sampling_rate is None else [f"{steps / self.sampling_rate:.3g} s"]
        notes += [extra] if extra else []
        return f"{steps} frames" + (f" ({'; '.join(notes)})" if notes else "")

    def message(self) -> str:
        """One line: the events per bin and, if too short, the bin size to use."""
        head = (
            f"bin_size = {self._length(self.bin_size)} holds {self.events_per_bin:.2g} events "
            f"per neuron (median; {self.coactive_pairs_per_bin:.2g} of pairs co-active)"
        )
        if not self.too_short:
            return f"{head}, >= {self.min_events:g}: bins are long enough."
        why = (
            f"{head}, < {self.min_events:g}: the time factors will follow each animal's own "
            "event timing, not shared epochs."
        )
        if self.suggested_bin_size is None:
            return (
                f"{why} No events found (no rise of sqrt(scale) noise scales); check the traces "
                "or lower scale."
            )
        n_bins = -(-self.n_steps // self.suggested_bin_size)
        if self.suggested_bin_size > self.n_steps:
            return (
                f"{why} It would take bin_size >= {self._length(self.suggested_bin_size)}, more "
                f"than the recording ({self._length(self.n_steps)}): record longer."
            )
        return f"{why} Use bin_size >= {self._length(self.suggested_bin_size, f'{n_bins} bins')}."

    def warn(self, stacklevel: int = 2) -> BinCheck:
        """Issue the message as a :class:`UserWarning` if the bins are too short; return self."""
        if self.too_short:
            warnings.warn(self.message(), UserWarning, stacklevel=stacklevel + 1)
        return self


def check_bins(
    traces,
    bin_size: int,
    smooth: float = 1.0,
    scale: float = 50.0,
    min_events: float = MIN_EVENTS,
    sampling_rate: float | None = None,
    device: str | torch.device = "auto",
) -> BinCheck:
    """Check that time bins hold enough events for the affinity to reflect communities.

    Parameters
    ----------
    traces : CalciumData, array or tensor of shape (n_animals, n_neurons, n_frames)
    bin_size : int
        Steps per bin (``bin_size`` of :func:`affinity_tensor`).
    smooth, scale : float
        As in :func:`affinity_tensor` (they define the events, see :func:`bin_events`).
    min_events : float, default=MIN_EVENTS
        Events per neuron per bin below which the bins are too short (> 0).
        The default, 0.1, is from ``simulate_calcium`` sweeps (4 animals, 30
        neurons, 3 communities of 7; 10 or 30 Hz; 0.2 to 1 shared events/s;
        noise 0.3 or 0.5; bins doubling from 0.2 to 16 s; rank-4 fits): the
        time factors' correlation with the planted epochs rises smoothly with
        the events per bin, 0.18 to 0.68 at 0.01 to 0.07 events (the epochs
        fade), 0.77 to 0.90 at 0.15 to 0.3, 0.93 to 0.97 at 0.6 to 1.1 with
        0.5 to 1 shared events/s; rarer shared events (0.2/s) or 2 animals
        reached 0.85 only at 1.3. It is a knee, not a cliff: the warning
        marks bins where the epochs fade; the suggested bin holds one event
        (:data:`SUGGESTED_EVENTS`), and longer bins help as long as they stay
        shorter than the epochs.
    sampling_rate : float, optional
        Hz, for a message in seconds; default: ``traces.sampling_rate`` of a
        :class:`~data_loaders.calcium.CalciumData`, else frames.
    device : str or torch.device, default="auto"

    Returns
    -------
    BinCheck
        ``.too_short``, ``.message()``; ``.warn()`` issues a UserWarning when too short
        (``check_bins(x, bin_size).warn()`` in one line). The check is about events
        per bin, not structure: independent neurons with enough events pass.

    Raises
    ------
    InputError
        Bad traces (:func:`check_traces`), ``bin_size`` < 1 or longer than the
        recording, ``min_events`` <= 0.

    Examples
    --------
    >>> from data_loaders.simulate.calcium import simulate_calcium
    >>> x = simulate_calcium(n_animals=2, n_neurons=12, n_frames=1200, community_size=4,
    ...                      seed=0).data
    >>> check_bins(x, bin_size=5, device="cpu").too_short
    True
    """
    x = check_traces(traces)
    min_events = check_float("min_events", min_events, minimum=0.0, strict_minimum=True)
    if sampling_rate is None:
        sampling_rate = getattr(traces, "sampling_rate", None)
    if sampling_rate is not None:
        sampling_rate = check_float(
            "sampling_rate", sampling_rate, minimum=0.0, strict_minimum=True
        )
    events = bin_events(x, bin_size, smooth=smooth, scale=scale, device=device)
    bin_size = int(bin_size)
    n_steps = x.shape[2] - 1
    recorded = ~np.isnan(events[:, :, 0])
    rate = float(np.median(events[recorded].sum(-1) / n_steps))
    fractions = []
    for a in range(len(events)):
        n = int(recorded[a].sum())
        k = (events[a, recorded[a]] > 0).sum(0)
        fractions.append(k * (k - 1) / (n * (n - 1)))
    suggested = math.ceil(max(SUGGESTED_EVENTS, min_events) / rate) if rate > 0 else None
    return BinCheck(
        bin_size=bin_size,
        events_per_bin=rate * bin_size,
        coactive_pairs_per_bin=float(np.mean(fractions)),
        event_rate=rate,
        suggested_bin_size=suggested,
        min_events=min_events,
        too_short=rate * bin_size < min_events,
        n_steps=n_steps,
        sampling_rate=sampling_rate,
    )
