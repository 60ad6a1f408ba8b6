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

Memory
    Pairs are processed ``pair_batch_size`` at a time: the work memory is
    about ``8 * pair_batch_size * T`` numbers, whatever the number of pairs,
    and the result is ``(n_bins, n_animals, n_pairs)``. Pairs are ordered as
    ``numpy.triu_indices(n_neurons, k=1)``.

Missing neurons
    Pairs with a neuron missing (NaN row) in an animal are NaN in that
    animal's slice of the tensor.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from neuro._validation import check_array, check_choice, check_float, check_int
from neuro.errors import InputError
from neuro.train.device import resolve_device
from neuro.train.progress import progress

__all__ = [
    "AFFINITIES",
    "affinity_tensor",
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
    xs = _smooth(x, smooth)
    d = xs[:, 1:] - xs[:, :-1]
    med = d.median(dim=1, keepdim=True).values
    sigma = 1.4826 * (d - med).abs().median(dim=1).values
    sigma = torch.where(sigma > 0, sigma, d.std(dim=1)).clamp_min(torch.finfo(d.dtype).tiny)
    start, end = _runs(d)
    return xs, sigma, start, end


def _derivative_batch(xs, sigma, start, end, i, j, scale):
    a = torch.maximum(start[i], start[j])
    b = torch.minimum(end[i], end[j]) + 1
    xi, xj = xs[i], xs[j]
    di = (xi.gather(1, b) - xi.gather(1, a)).abs_() / sigma[i, None]
    dj = (xj.gather(1, b) - xj.gather(1, a)).abs_() / sigma[j, None]
    return 1.0 - torch.exp(-torch.minimum(di, dj).square_() / scale)


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
    bin_size = check_int("bin_size", bin_size, minimum=1)
    x, as_numpy, dev = _one_animal(traces, device)
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


def affinity_tensor(
    traces,
    method: str = "derivative",
    bin_size: int = 10,
    smooth: float = 1.0,
    scale: float = 50.0,
    pair_batch_size: int = 2048,
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
        Steps averaged into one time bin.
    smooth : float, default=1.0
        Gaussian smoothing sd (frames) before the derivative affinity.
    scale : float, default=50.0
        :math:`c` of the derivative affinity.
    pair_batch_size : int, default=2048
        Pairs computed at once; memory is about ``8 * pair_batch_size * n_frames`` numbers.
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
    bin_size = check_int("bin_size", bin_size, minimum=1)
    pair_batch_size = check_int("pair_batch_size", pair_batch_size, minimum=1)
    smooth = check_float("smooth", smooth, minimum=0.0)
    scale = check_float("scale", scale, minimum=0.0, strict_minimum=True)
    x = check_traces(traces)
    dev = resolve_device(device)
    n_animals, n_neurons, n_frames = x.shape
    pairs = pair_index(n_neurons)
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
