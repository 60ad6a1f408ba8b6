"""How well a fitted :class:`~neuro.connectome.ntf.DynamicConnectome` recovers planted truth.

:func:`evaluate_recovery` compares a model fitted on traces from
:func:`data_loaders.simulate.calcium.simulate_calcium` with the communities,
epochs and animals the simulator planted. The ``neuro connectome`` command,
the tutorial and the tests all use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuro.errors import InputError, InputTypeError

__all__ = ["evaluate_recovery"]


def evaluate_recovery(model, truth) -> dict[str, Any]:
    """Compare a fitted model with the planted truth of :func:`simulate_calcium`.

    Each planted community is matched to the component whose pair factor is
    most congruent (cosine) with the community's within-community pairs.

    Parameters
    ----------
    model : DynamicConnectome
        Fitted on the simulated traces (``sim.data``).
    truth : CalciumGroundTruth
        ``sim.truth`` of the same simulation.

    Returns
    -------
    dict
        ``"communities"``: one dict per planted community with ``community``,
        ``component`` (the matched component), ``pair_congruence``,
        ``time_correlation`` (Pearson r of the component's time factor with
        the fraction of each bin in which the community is active),
        ``peak_bin_active_fraction`` (that fraction at the time factor's peak
        bin), ``animal_cosine`` (of the animal factor with the planted
        animals) and ``ari`` (adjusted Rand index of the component's core
        against the community); ``"ari_all"``: ARI of all cores together
        against the planted labels (neurons in no core, or in no community,
        are one group); ``"noise"``: the simulation's noise sd.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        ``model`` is not fitted.
    InputError
        ``truth`` does not match the model (other neurons, frames or animals).

    Examples
    --------
    >>> from data_loaders.simulate.calcium import simulate_calcium
    >>> from neuro.connectome import DynamicConnectome
    >>> sim = simulate_calcium(n_animals=3, n_neurons=16, n_frames=600, n_communities=2,
    ...                        community_size=5, n_blocks=6, noise=0.1, seed=0)
    >>> model = DynamicConnectome(rank=3, n_restarts=2, device="cpu").fit(sim.data)
    >>> rec = evaluate_recovery(model, sim.truth)
    >>> len(rec["communities"]), rec["communities"][0]["ari"] > 0.8
    (2, True)

    With 16 neurons the second community's component mixes epochs (time r
    0.45), and the default, degree-corrected model calls it structureless
    where ``sbm_model="plain"`` finds it: the price of saying "no structure"
    on null data.
    """
    from sklearn.metrics import adjusted_rand_score

    from data_loaders.simulate.calcium import CalciumGroundTruth

    model._check_fitted()
    if not isinstance(truth, CalciumGroundTruth):
        raise InputTypeError(
            f"truth must be the CalciumGroundTruth of simulate_calcium (sim.truth); got "
            f"{type(truth).__name__}."
        )
    n_neurons = len(model.neuron_labels_)
    n_animals = model.animal_factors_.shape[0]
    if len(truth.community) != n_neurons or truth.animals.shape[1] != n_animals:
        raise InputError(
            f"truth is for {len(truth.community)} neurons and {truth.animals.shape[1]} animals "
            f"but the model was fitted on {n_neurons} neurons and {n_animals} animals; give the "
            "truth of the simulation the model was fitted on."
        )
    if truth.active.shape[1] != model.n_features_in_:
        raise InputError(
            f"truth is for {truth.active.shape[1]} frames but the model was fitted on "
            f"{model.n_features_in_}; give the truth of the simulation the model was fitted on."
        )
    ind = truth.pair_indicator().astype(float)
    ind /= np.linalg.norm(ind, axis=1, keepdims=True)
    cong = ind @ (model.pair_factors_ / np.linalg.norm(model.pair_factors_, axis=0))
    n_bins, b = model.time_factors_.shape[0], model.bin_frames_
    steps = truth.active[:, :-1]
    pad = n_bins * b - steps.shape[1]
    act = np.pad(steps.astype(float), ((0, 0), (0, pad))).reshape(len(steps), n_bins, b).mean(-1)
    labels = np.full(len(truth.community), -1)
    rows = []
    for k in range(truth.n_communities):
        r = int(np.argmax(cong[k]))
        tf, af = model.time_factors_[:, r], model.animal_factors_[:, r]
        planted = truth.animals[k].astype(float)
        core = model.communities_[r].core
        labels[core & (labels < 0)] = k
        peak = int(np.argmax(tf))
        rows.append(
            {
                "community": k,
                "component": r,
                "pair_congruence": float(cong[k, r]),
                "time_correlation": float(np.corrcoef(tf, act[k])[0, 1]),
                "peak_bin_active_fraction": float(act[k, peak]),
                "animal_cosine": float(af @ planted / np.linalg.norm(af) / np.linalg.norm(planted)),
                "ari": float(adjusted_rand_score(truth.community == k, core)),
            }
        )
    return {
        "communities": rows,
        "ari_all": float(adjusted_rand_score(truth.community, labels)),
        "noise": truth.noise,
    }
