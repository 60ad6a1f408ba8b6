r"""Non-negative CP of a three-way tensor in torch: HALS and multiplicative updates.

The solver behind :func:`neuro.connectome.fit_ntf` (``backend="torch"``, the
default). It fits ``X[t, a, p] ~ sum_r T[t, r] A[a, r] P[p, r]`` to a
``(time bins, animals, pairs)`` tensor held once, on the chosen device, as the
matrix ``X_(ta, p)`` of shape ``(t * a, p)``.

Cost
    One iteration updates the three factors from two matrix products with
    the tensor, ``Y = X P`` (shape ``(t a, r)``, from which both the time and
    the animal MTTKRP follow, since ``P`` does not change in between) and
    ``X^T (T \odot A)`` (the pair MTTKRP), i.e. ``4 t a p r`` flops; a
    textbook HALS (tensortools' ``ncp_hals``, tensorly) unfolds the tensor
    and multiplies it with a Khatri-Rao product once per mode (three products,
    plus the unfoldings). Each factor gets ``n_inner`` sweeps of exact
    coordinate (column) updates from the same MTTKRP, which cost ``O(I r^2)``
    only (tensortools does 3).

Memory
    The working copy of the tensor (``dtype``, float32 by default: half of
    float64) plus the flat indices of missing entries (8 bytes each) and
    ``O((t a + p) r)`` for the factors; checks and sums run over row blocks of
    at most ``2**22`` entries, so no other tensor-sized temporary is made.
    The caller's array is never modified.

Error
    The relative error ``||X - X_hat||`` / ``||X||`` is computed from the
    residual, block by block with float64 sums (in float32 it is good to
    about 1e-9; the usual shortcut through the Gram matrices and the last
    MTTKRP only to about 1e-7, too coarse for a convergence test), every
    ``em_block`` iterations (about 5% more work) and for the final model, on
    the observed entries.

Missing entries (NaN)
    ``missing="em"``: filled with the observed mean, then refilled from the
    model every ``em_block`` iterations (expectation-maximisation), so the
    fit minimises the error on observed entries; ``"zero"``: treated as 0.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from neuro.errors import InputError

__all__ = ["TensorWorkspace", "cp_nonneg"]

_BLOCK = 2**22  # entries per block of the checks, sums and refills


class TensorWorkspace:
    """A ``(t, a, p)`` tensor on a device, ready for repeated CP fits.

    Built once for all the restarts and ranks of a rank selection: the tensor
    is checked, copied to ``device`` in ``dtype`` and its missing entries
    located once.

    Parameters
    ----------
    tensor : array or tensor of shape (n_bins, n_animals, n_pairs)
        Non-negative; NaN marks missing entries. Not modified.
    device : torch.device or str
    dtype : torch.dtype, default=torch.float32
    missing : {"em", "zero"}, default="em"

    Raises
    ------
    InputError
        Infinite or negative entries; no positive observed entry.
    """

    def __init__(self, tensor, device="cpu", dtype=torch.float32, missing="em") -> None:
        src = tensor if isinstance(tensor, torch.Tensor) else torch.from_numpy(np.asarray(tensor))
        if src.ndim != 3:
            raise InputError(
                f"tensor must be 3D (n_bins, n_animals, n_pairs); got shape {tuple(src.shape)}."
            )
        self.shape = tuple(int(s) for s in src.shape)
        t, a, p = self.shape
        self.device = torch.device(device)
        self.dtype = dtype
        # one copy in the working dtype (a view of the caller's data is never written to)
        x = torch.empty((t * a, p), dtype=dtype, device=self.device)
        flat = src.reshape(t * a, p)
        missing_rows, missing_cols = [], []
        total, count, sq = 0.0, 0, 0.0
        rows = max(1, _BLOCK // max(p, 1))
        for r0 in range(0, t * a, rows):
            block = flat[r0 : r0 + rows].to(device=self.device, dtype=dtype)
            if torch.isinf(block).any():
                raise InputError("tensor holds infinite values; only NaN may mark missing entries.")
            nan = torch.isnan(block)
            if (block < 0).any():
                raise InputError(
                    "tensor must be non-negative (affinities are >= 0); it holds negatives."
                )
            if nan.any():
                i, j = nan.nonzero(as_tuple=True)
                missing_rows.append(i + r0)
                missing_cols.append(j)
                block = block.masked_fill(nan, 0.0)
            total += float(block.sum(dtype=torch.float64))
            sq += float(block.square().sum(dtype=torch.float64))
            count += int(block.numel() - nan.sum())
            x[r0 : r0 + rows] = block
        if count == 0 or total <= 0:
            raise InputError(
                "tensor has no positive observed entry to factorise (all zero or NaN); check the "
                "traces it was computed from."
            )
        if missing_rows:
            self.missing = torch.cat(missing_rows) * p + torch.cat(missing_cols)
        else:
            self.missing = torch.empty(0, dtype=torch.long, device=self.device)
        self.n_missing = int(self.missing.numel())
        self.em = missing == "em" and self.n_missing > 0
        self.fill = total / count if self.em else 0.0
        self.observed_sq = sq  # sum of squares of the observed entries
        self.x = x
        self.reset()

    @property
    def nbytes(self) -> int:
        """Bytes held: the working tensor and the missing-entry indices."""
        return self.x.element_size() * self.x.numel() + 8 * self.n_missing

    def reset(self) -> None:
        """Put the initial fill (observed mean, or 0) back into the missing entries."""
        if self.n_missing:
            self.x.view(-1)[self.missing] = self.fill

    def _model_at(self, flat: torch.Tensor, kr: torch.Tensor, pt: torch.Tensor):
        p = self.shape[2]
        return (kr[flat // p] * pt[:, flat % p].T).sum(1)

    def refill(self, kr: torch.Tensor, pt: torch.Tensor) -> float:
        """Write the model's values into the missing entries; return their sum of squares.

        ``kr`` is the ``(t a, r)`` Khatri-Rao product of the time and animal
        factors, ``pt`` the pair factor transposed, ``(r, p)``.
        """
        sq = 0.0
        for k0 in range(0, self.n_missing, _BLOCK // 8):
            flat = self.missing[k0 : k0 + _BLOCK // 8]
            vals = self._model_at(flat, kr, pt).to(self.dtype)
            self.x.view(-1)[flat] = vals
            sq += float(vals.double().square().sum())
        return sq

    def residual_norm(self, kr: torch.Tensor, pt: torch.Tensor, all_entries=False) -> float:
        """``||X - KR P^T||`` over the observed entries, block by block (float64 sums).

        With ``em``, the missing entries must hold the model's values (call
        :meth:`refill` first); without, they hold 0 and are taken out
        (``all_entries=True``: the whole working tensor, as filled).
        """
        rows = max(1, _BLOCK // max(self.shape[2], 1))
        total = 0.0
        for r0 in range(0, self.x.shape[0], rows):
            diff = self.x[r0 : r0 + rows] - kr[r0 : r0 + rows] @ pt
            total += float(diff.square().sum(dtype=torch.float64))
        if self.n_missing and not self.em and not all_entries:  # zeros filled in: not data
            for k0 in range(0, self.n_missing, _BLOCK // 8):
                flat = self.missing[k0 : k0 + _BLOCK // 8]
                total -= float(self._model_at(flat, kr, pt).double().square().sum())
        return math.sqrt(max(total, 0.0))


def _khatri_rao(tt: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
    """``(t a, r)`` from transposed factors, rows in C order: ``KR[t n_a + a] = T[t] * A[a]``."""
    r = tt.shape[0]
    return (tt.T[:, None, :] * at.T[None, :, :]).reshape(-1, r)


def _hals_rows(ft: torch.Tensor, mt: torch.Tensor, v: torch.Tensor, n_inner: int) -> None:
    """Exact non-negative coordinate updates of a factor, stored transposed ``(r, I)``, in place.

    Minimises ``||X_(n) - F K^T||`` one component at a time given
    ``mt = (X_(n) K)^T`` and ``v = K^T K``:
    ``f_k = max(0, (m_k - sum_{q != k} v_kq f_q) / v_kk)``. Rows are
    contiguous, so each update is a short matrix-vector product.
    """
    diag = v.diagonal()
    # a component that is zero in another mode has v_kk = 0 and no information on its row
    # here: the row is kept (as tensorly does), so the component can come back
    live = [k for k, d in enumerate(diag.tolist()) if d > 0]
    for _ in range(n_inner):
        for k in live:
            num = mt[k] - v[k] @ ft + ft[k] * v[k, k]
            ft[k] = (num / diag[k]).clamp_min_(0.0)


def _mu_rows(ft: torch.Tensor, mt: torch.Tensor, v: torch.Tensor) -> None:
    """Lee-Seung multiplicative update of a transposed factor (in place)."""
    ft.mul_(mt.clamp_min(0.0) / (v @ ft).clamp_min(1e-12))


def _balance(factors: list[torch.Tensor]) -> None:
    """Give each component the same norm in every mode (the model is unchanged)."""
    norms = [f.norm(dim=1, keepdim=True) for f in factors]
    total = torch.stack(norms).prod(0)
    alive = total > 0
    target = torch.where(alive, total, torch.ones_like(total)) ** (1.0 / len(factors))
    for f, n in zip(factors, norms, strict=True):
        f.mul_(torch.where(alive & (n > 0), target / n.clamp_min(1e-300), torch.ones_like(n)))


def _random_init(shape, rank, seed, dtype, device):
    """Uniform ``[0, 1)`` starts drawn as tensorly draws them (one ``RandomState``, mode by mode).

    With the same ``random_state`` the torch solver and tensorly's start from
    the same factors, so the two can be compared fit for fit.
    """
    rng = np.random.RandomState(seed)
    return [
        torch.from_numpy(rng.random_sample((n, rank)).T.copy()).to(device, dtype) for n in shape
    ]


def _svd_init(ws: TensorWorkspace, rank: int, seed: int):
    """Leading singular vectors of each unfolding (absolute values), scaled by sqrt(s).

    Time and pair modes by a randomized SVD of views of the working tensor;
    the animal mode from the small ``(a, a)`` Gram matrix accumulated over
    blocks of time bins (its unfolding would be a copy of the tensor). The
    randomized SVD draws from a forked generator: the caller's torch random
    state is left as it was.
    """
    t, a, p = ws.shape
    x3 = ws.x.view(t, a, p)
    devices = [ws.device] if ws.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed) % (2**63))
        parts = []
        for mat in (x3.reshape(t, a * p), ws.x.T):
            q = min(rank, *mat.shape)
            u, sv, _ = torch.svd_lowrank(mat, q=q, niter=4)
            parts.append((u, sv))
        gram = torch.zeros((a, a), dtype=torch.float64, device=ws.device)
        step = max(1, _BLOCK // max(a * p, 1))
        for t0 in range(0, t, step):
            block = x3[t0 : t0 + step].double()
            gram += torch.einsum("tap,tbp->ab", block, block)
        evals, evecs = torch.linalg.eigh(gram)
        q = min(rank, a)
        order = torch.argsort(evals, descending=True)[:q]
        parts.insert(1, (evecs[:, order], evals[order].clamp_min(0).sqrt()))
        out = []
        for u, sv in parts:
            f = (u * sv.sqrt().to(u.dtype)).abs()
            if f.shape[1] < rank:  # fewer singular vectors than components: small positives
                pad = torch.rand(f.shape[0], rank - f.shape[1], dtype=f.dtype, device=f.device)
                f = torch.cat([f, f.mean() * pad], 1)
            out.append(f.T.to(ws.device, ws.dtype).contiguous())
    return out


def cp_nonneg(
    ws: TensorWorkspace,
    rank: int,
    method: str = "hals",
    n_iter_max: int = 200,
    tol: float = 1e-8,
    init: str = "random",
    random_state: int | None = 0,
    em_block: int = 10,
    n_inner: int = 5,
):
    """Fit a non-negative CP model of ``rank`` to the workspace's tensor.

    Parameters
    ----------
    ws : TensorWorkspace
        Reset (missing entries back to their initial fill) before the fit.
    rank : int
    method : {"hals", "mu"}, default="hals"
    n_iter_max : int, default=200
    tol : float, default=1e-8
        Stop when the relative error changes by less than ``tol`` over
        ``em_block`` iterations (0: never stop early). The error is computed
        from the residual at those checks (float64 sums: good to about 1e-9
        in float32).
    init : {"random", "svd"}, default="random"
    random_state : int or None, default=0
    em_block : int, default=10
        Iterations between refills of missing entries and between
        convergence checks.
    n_inner : int, default=5
        Column sweeps per factor and iteration (HALS); 5, as tensorly: from
        the same ``random_state`` the float64 fit follows tensorly's
        ``non_negative_parafac_hals`` iterate for iterate.

    Returns
    -------
    factors : list of three ndarray (float64)
        Unnormalised ``T (t, r)``, ``A (a, r)``, ``P (p, r)``.
    error : float
        Relative error on the observed entries.
    n_iter : int
        Iterations run.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> f = [rng.random((9, 2)), rng.random((4, 2)), rng.random((15, 2))]
    >>> ws = TensorWorkspace(np.einsum("tr,ar,pr->tap", *f), dtype=torch.float64)
    >>> factors, err, n_iter = cp_nonneg(ws, 2, n_iter_max=500, tol=0)
    >>> [g.shape for g in factors], err < 1e-3
    ([(9, 2), (4, 2), (15, 2)], True)
    """
    ws.reset()
    t, a, _ = ws.shape
    if random_state is None:
        random_state = int(np.random.SeedSequence().generate_state(1)[0] % 2**31)
    norm_sq = ws.observed_sq + (ws.fill**2) * ws.n_missing
    if init == "svd":
        factors = _svd_init(ws, rank, random_state)
    else:
        # uniform [0, 1) starts; the scale does not matter: the first update of T is exact
        factors = _random_init(ws.shape, rank, random_state, ws.dtype, ws.device)
    tt, at, pt = factors  # transposed: (r, t), (r, a), (r, p)
    hals = method == "hals"
    prev, n_done = None, 0
    x = ws.x
    for it in range(n_iter_max):
        # time and animal modes from one product with the tensor (P is fixed meanwhile)
        y = (x @ pt.T).view(t, a, rank)
        gp = pt @ pt.T
        m = torch.einsum("tar,ra->rt", y, at)
        v = (at @ at.T) * gp
        _hals_rows(tt, m, v, n_inner) if hals else _mu_rows(tt, m, v)
        m = torch.einsum("tar,rt->ra", y, tt)
        v = (tt @ tt.T) * gp
        _hals_rows(at, m, v, n_inner) if hals else _mu_rows(at, m, v)
        kr = _khatri_rao(tt, at)
        m = kr.T @ x
        v = (tt @ tt.T) * (at @ at.T)
        _hals_rows(pt, m, v, n_inner) if hals else _mu_rows(pt, m, v)
        _balance([tt, at, pt])
        n_done = it + 1
        # every em_block iterations: the convergence check (on the residual itself: the
        # Gram-matrix shortcut is good to only ~1e-7 in float32) and, with EM, the refill
        if n_done % em_block or n_done == n_iter_max:
            continue
        kr = _khatri_rao(tt, at)
        if tol > 0:
            err = ws.residual_norm(kr, pt, all_entries=True) / math.sqrt(norm_sq)
            if prev is not None and abs(prev - err) < tol:
                break
            prev = err
        if ws.em:
            norm_sq = ws.observed_sq + ws.refill(kr, pt)
    kr = _khatri_rao(tt, at)
    if ws.em:
        ws.refill(kr, pt)  # the residual at missing entries is then 0
    error = ws.residual_norm(kr, pt) / max(math.sqrt(ws.observed_sq), 1e-300)
    out = [f.T.double().cpu().numpy() for f in (tt, at, pt)]
    return out, error, n_done
