"""Calcium traces of several animals with planted, epoch-specific communities.

Timeline
    The recording is cut into ``n_blocks`` equal blocks, shared by all animals
    (one stimulus protocol). Block ``b`` belongs to condition ``b mod (K + 1)``
    where ``K = n_communities``: condition ``k < K`` is ``"stim{k}"``, during
    which community ``k`` is active, and condition ``K`` is ``"spontaneous"``.
Communities
    ``K`` disjoint groups of ``community_size`` neurons; the other neurons
    belong to no community. Community ``k`` is planted in every animal except
    animal ``k mod n_animals`` (so each community has its own animal pattern
    when ``n_animals > 1``).
Spikes
    Every neuron fires independent Poisson spikes at ``baseline_rate`` Hz. While
    its community is active in an animal that has it, a shared Poisson train of
    events at ``event_rate`` Hz drives the community: each member joins each
    event with probability ``p_join``.
Calcium
    Spikes (unit amplitude) through the kernel ``exp(-t / tau)`` (``tau`` in
    seconds), plus Gaussian noise of sd ``noise`` (in units of one spike's
    peak): dF/F-like traces.
Missing neurons
    With ``missing_fraction > 0``, that fraction of (animal, neuron) rows is set
    to NaN (never a whole animal); :attr:`CalciumGroundTruth.missing` says which.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_loaders._validation import check_float, check_int
from data_loaders.calcium import CalciumData, Epoch
from data_loaders.errors import InputError

__all__ = ["CalciumGroundTruth", "SimulatedCalcium", "simulate_calcium"]


@dataclass
class CalciumGroundTruth:
    """What :func:`simulate_calcium` planted.

    Attributes
    ----------
    community : ndarray of shape (n_neurons,), int
        Community of each neuron, ``-1`` for none.
    community_epochs : list of str
        Name of the epochs in which community ``k`` is active.
    animals : ndarray of shape (n_communities, n_animals), bool
        Whether community ``k`` is planted in each animal.
    active : ndarray of shape (n_communities, n_frames), bool
        Frames in which community ``k`` is active (in the animals that have it).
    membership : ndarray of shape (n_epochs, n_neurons), int
        For each epoch of the recording (in ``data.epochs`` order), the community
        interacting in it for each neuron, ``-1`` for none.
    missing : ndarray of shape (n_animals, n_neurons), bool
        Neurons set to NaN.
    spikes : ndarray of shape (n_animals, n_neurons, n_frames), int
    noise : float
        Noise sd, in units of one spike's calcium peak.
    """

    community: np.ndarray
    community_epochs: list[str]
    animals: np.ndarray
    active: np.ndarray
    membership: np.ndarray
    missing: np.ndarray
    spikes: np.ndarray
    noise: float

    @property
    def n_communities(self) -> int:
        """Number of planted communities."""
        return int(self.animals.shape[0])

    def pair_indicator(self) -> np.ndarray:
        """Bool ``(n_communities, n_pairs)``: pairs inside community ``k`` (``triu`` order)."""
        i, j = np.triu_indices(len(self.community), k=1)
        c = self.community
        return np.stack([(c[i] == k) & (c[j] == k) for k in range(self.n_communities)])


@dataclass
class SimulatedCalcium:
    """Traces (:class:`~data_loaders.calcium.CalciumData`) and the planted truth."""

    data: CalciumData
    truth: CalciumGroundTruth


def simulate_calcium(
    n_animals: int = 4,
    n_neurons: int = 40,
    n_frames: int = 2400,
    n_communities: int = 3,
    community_size: int = 8,
    n_blocks: int = 8,
    sampling_rate: float = 10.0,
    baseline_rate: float = 0.05,
    event_rate: float = 0.5,
    p_join: float = 0.9,
    tau: float = 1.0,
    noise: float = 0.2,
    missing_fraction: float = 0.0,
    seed: int = 0,
) -> SimulatedCalcium:
    """Simulate calcium traces whose interacting communities are known.

    Parameters
    ----------
    n_animals, n_neurons, n_frames : int
        Shape of the traces ``(animals, neurons, time)``.
    n_communities, community_size : int
        ``K`` disjoint communities of this many neurons (``K * size <= n_neurons``).
    n_blocks : int
        Equal blocks of the timeline, cycling through ``stim0 .. stim{K-1}`` and
        ``spontaneous`` (at least ``K + 1``).
    sampling_rate : float
        Hz.
    baseline_rate, event_rate : float
        Hz: independent spiking of every neuron; shared events of an active community.
    p_join : float
        Probability that a member fires in a shared event.
    tau : float
        Calcium decay time constant, seconds.
    noise : float
        Gaussian noise sd in units of one spike's calcium peak.
    missing_fraction : float
        Fraction of (animal, neuron) rows set to NaN, in ``[0, 1)``.
    seed : int or None

    Returns
    -------
    SimulatedCalcium

    Raises
    ------
    InputError
        A setting out of range (``n_blocks < n_communities + 1``,
        ``n_frames < 2 * n_blocks``, communities that do not fit in
        ``n_neurons``, ...); ``InputTypeError`` for a wrong type.

    Examples
    --------
    >>> sim = simulate_calcium(n_animals=3, n_neurons=20, n_frames=400, community_size=5, seed=1)
    >>> sim.data.shape, sim.truth.animals.astype(int).tolist()
    ((3, 20, 400), [[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    >>> sim.data.epoch_names
    ['stim0', 'stim1', 'stim2', 'spontaneous']
    """
    n_animals = check_int("n_animals", n_animals, minimum=1)
    n_neurons = check_int("n_neurons", n_neurons, minimum=2)
    K = n_communities = check_int("n_communities", n_communities, minimum=1)
    community_size = check_int("community_size", community_size, minimum=2)
    n_blocks = check_int("n_blocks", n_blocks, minimum=1)
    n_frames = check_int("n_frames", n_frames, minimum=2)
    sampling_rate = check_float("sampling_rate", sampling_rate, minimum=0.0, strict_minimum=True)
    baseline_rate = check_float("baseline_rate", baseline_rate, minimum=0.0)
    event_rate = check_float("event_rate", event_rate, minimum=0.0)
    p_join = check_float("p_join", p_join, minimum=0.0, maximum=1.0)
    tau = check_float("tau", tau, minimum=0.0, strict_minimum=True)
    noise = check_float("noise", noise, minimum=0.0)
    missing_fraction = check_float(
        "missing_fraction", missing_fraction, minimum=0.0, maximum=1.0, strict_maximum=True
    )
    seed = check_int("seed", seed, allow_none=True)
    if n_blocks < K + 1:
        raise InputError(
            f"n_blocks must be >= n_communities + 1 = {K + 1} (one block per stimulus and a "
            f"spontaneous one); got {n_blocks}."
        )
    if n_frames < 2 * n_blocks:
        raise InputError(
            f"n_frames must be >= 2 * n_blocks = {2 * n_blocks}; got {n_frames}. Use more "
            "frames or fewer blocks."
        )
    if K * community_size > n_neurons:
        raise InputError(
            f"n_communities * community_size = {K * community_size} exceeds n_neurons = "
            f"{n_neurons}; use more neurons or smaller communities."
        )
    rng = np.random.default_rng(seed)
    dt = 1.0 / sampling_rate

    community = np.full(n_neurons, -1)
    order = rng.permutation(n_neurons)
    for k in range(K):
        community[order[k * community_size : (k + 1) * community_size]] = k
    animals = np.ones((K, n_animals), dtype=bool)
    if n_animals > 1:
        for k in range(K):
            animals[k, k % n_animals] = False

    names = [f"stim{k}" for k in range(K)] + ["spontaneous"]
    edges = np.linspace(0, n_frames, n_blocks + 1).round().astype(int)
    epochs, block_condition = [], []
    active = np.zeros((K, n_frames), dtype=bool)
    for b in range(n_blocks):
        cond = b % (K + 1)
        block_condition.append(cond)
        epochs.append(Epoch(names[cond], edges[b] * dt, edges[b + 1] * dt))
        if cond < K:
            active[cond, edges[b] : edges[b + 1]] = True
    membership = np.full((n_blocks, n_neurons), -1)
    for b, cond in enumerate(block_condition):
        if cond < K:
            membership[b, community == cond] = cond

    spikes = rng.random((n_animals, n_neurons, n_frames)) < baseline_rate * dt
    spikes = spikes.astype(np.int64)
    for k in range(K):
        members = np.flatnonzero(community == k)
        for a in np.flatnonzero(animals[k]):
            events = (rng.random(n_frames) < event_rate * dt) & active[k]
            join = rng.random((len(members), n_frames)) < p_join
            spikes[a, members] += (join & events).astype(np.int64)

    decay = np.exp(-dt / tau)
    calcium = np.zeros(spikes.shape)
    c = np.zeros(spikes.shape[:2])
    for t in range(n_frames):
        c = c * decay + spikes[:, :, t]
        calcium[:, :, t] = c
    traces = calcium + noise * rng.standard_normal(calcium.shape)

    missing = np.zeros((n_animals, n_neurons), dtype=bool)
    n_missing = round(missing_fraction * n_animals * n_neurons)
    if n_missing:
        flat = rng.choice(n_animals * n_neurons, size=n_missing, replace=False)
        missing.flat[flat] = True
        for a in range(n_animals):  # keep at least two neurons per animal
            if (~missing[a]).sum() < 2:
                missing[a, rng.choice(n_neurons, 2, replace=False)] = False
        traces[missing] = np.nan

    data = CalciumData(
        traces.astype(np.float64),
        sampling_rate=sampling_rate,
        neuron_labels=[f"n{i}" for i in range(n_neurons)],
        animal_ids=[f"animal{a}" for a in range(n_animals)],
        epochs=epochs,
    )
    truth = CalciumGroundTruth(
        community=community,
        community_epochs=names[:K],
        animals=animals,
        active=active,
        membership=membership,
        missing=missing,
        spikes=spikes,
        noise=float(noise),
    )
    return SimulatedCalcium(data, truth)
