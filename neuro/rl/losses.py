"""The losses of the predictive agent, as plain functions of tensors.

The agent's total loss (Fang & Stachenfeld, ICLR 2024; public code
``chingf/auxrl``) is::

    L = w0 L_pos + w1 L_neg_neighbour + w2 L_neg_random + w3 L_Q

* ``L_pos`` (:func:`predictive_loss`): the transition model ``T(z_t, a_t)``
  predicts the next latent. With a horizon ``gamma_p > 0`` the target is
  TD-like, ``z_{t+1} + gamma_p T(z_{t+1}, a_{t+1})``, whose bootstrap term
  ``T(.)`` carries no gradient (``z_{t+1}`` keeps its gradient, as the public
  code).
* ``L_neg_neighbour`` and ``L_neg_random`` (:func:`negative_terms`):
  ``mean exp(-temp ||z - z'||)`` for consecutive latents and for pairs within
  the batch (each latent with its neighbour in the batch, ``torch.roll(z, 1)``,
  as the public code), which keep the latents from collapsing to a point.
* ``L_Q`` (:func:`double_dqn_target`): mean squared error to the double-DQN
  target ``r + gamma Q_target(z', argmax_a Q(z', a))``.

The masks are where the public code and a correct implementation part
(:class:`~neuro.rl.agent.PredictiveAgent`'s ``code_gaps`` switch): the public
code bootstraps the Q target through terminal states, and builds the
predictive pair from whatever transition was stored next, even one of the
next episode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neuro.errors import InputError

__all__ = ["double_dqn_target", "negative_terms", "predictive_loss", "predictive_target"]


def predictive_target(
    next_z: torch.Tensor,
    bootstrap: torch.Tensor | None = None,
    gamma_p: float = 0.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The target of the transition model: ``z_{t+1} + gamma_p * mask * T(z_{t+1}, a_{t+1})``.

    Parameters
    ----------
    next_z : Tensor of shape (batch, latent)
        Encoder latents of the next observations; they keep their gradient.
    bootstrap : Tensor of shape (batch, latent), optional
        ``T(z_{t+1}, a_{t+1})``, detached here (the TD bootstrap). Needed when
        ``gamma_p > 0``.
    gamma_p : float in [0, 1)
        The predictive horizon.
    mask : Tensor of shape (batch,), optional
        1 where the next transition continues the episode, 0 where it does
        not (the bootstrap is dropped there). None keeps every bootstrap.

    Returns
    -------
    Tensor of shape (batch, latent)

    Examples
    --------
    >>> z1, t1 = torch.ones(2, 3), torch.full((2, 3), 2.0)
    >>> predictive_target(z1, t1, 0.5, mask=torch.tensor([1.0, 0.0]))
    tensor([[2., 2., 2.],
            [1., 1., 1.]])
    """
    if not 0.0 <= gamma_p < 1.0:
        raise InputError(f"gamma_p must lie in [0, 1); got {gamma_p}.")
    if gamma_p == 0.0:
        return next_z
    if bootstrap is None:
        raise InputError("gamma_p > 0 needs bootstrap=T(z_{t+1}, a_{t+1}).")
    boot = bootstrap.detach()
    if mask is not None:
        boot = boot * mask.to(boot.dtype).unsqueeze(-1)
    return next_z + gamma_p * boot


def predictive_loss(
    prediction: torch.Tensor,
    next_z: torch.Tensor,
    bootstrap: torch.Tensor | None = None,
    gamma_p: float = 0.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error of ``T(z_t, a_t)`` to :func:`predictive_target`.

    Parameters
    ----------
    prediction : Tensor of shape (batch, latent)
        ``T(z_t, a_t)``.
    next_z, bootstrap, gamma_p, mask
        As :func:`predictive_target`.

    Returns
    -------
    Tensor
        A scalar: the mean over the batch and the latent units (the public
        code's ``mse_loss`` then ``mean``).
    """
    return F.mse_loss(prediction, predictive_target(next_z, bootstrap, gamma_p, mask))


def negative_terms(
    z: torch.Tensor, next_z: torch.Tensor, temperature: float = 5.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two anti-collapse terms: neighbour pairs and pairs within the batch.

    Parameters
    ----------
    z, next_z : Tensor of shape (batch, latent)
        Latents of the observations and of the next ones.
    temperature : float, default=5.0
        ``exp(-temperature * distance)`` (the public code's ``entropy_temp``).

    Returns
    -------
    neighbour, random : Tensor
        Scalars: ``mean exp(-temp ||z_t - z_{t+1}||)`` and
        ``mean exp(-temp ||z_i - z_{i-1}||)`` with ``z_{i-1}`` the previous
        sample of the batch (``torch.roll(z, 1, 0)``; the batch is drawn at
        random from the replay buffer, so these are random pairs).

    Examples
    --------
    >>> z = torch.zeros(4, 2)
    >>> [round(float(t), 3) for t in negative_terms(z, z)]  # collapsed latents: the maximum, 1
    [1.0, 1.0]
    """
    neighbour = torch.exp(-temperature * torch.linalg.vector_norm(z - next_z, dim=1)).mean()
    rolled = torch.roll(z, 1, dims=0)
    random = torch.exp(-temperature * torch.linalg.vector_norm(z - rolled, dim=1)).mean()
    return neighbour, random


def double_dqn_target(
    reward: torch.Tensor,
    next_q_online: torch.Tensor,
    next_q_target: torch.Tensor,
    discount: float,
    continues: torch.Tensor | None = None,
) -> torch.Tensor:
    """The double-DQN target ``r + discount * continues * Q_target(s', argmax_a Q_online(s', a))``.

    Parameters
    ----------
    reward : Tensor of shape (batch,)
    next_q_online : Tensor of shape (batch, n_actions)
        The online network's values at the next state: they choose the action.
    next_q_target : Tensor of shape (batch, n_actions)
        The target network's values there: they value the chosen action.
    discount : float
    continues : Tensor of shape (batch,), optional
        0 where the next state is terminal (nothing to bootstrap), 1
        elsewhere; None bootstraps everywhere (the public code).

    Returns
    -------
    Tensor of shape (batch,)
        Without gradient.

    Examples
    --------
    >>> online = torch.tensor([[1.0, 3.0]])  # chooses action 1
    >>> target = torch.tensor([[10.0, 5.0]])  # which the target network values at 5
    >>> double_dqn_target(torch.tensor([1.0]), online, target, 0.9)
    tensor([5.5000])
    """
    with torch.no_grad():
        best = next_q_online.argmax(dim=1, keepdim=True)
        value = next_q_target.gather(1, best).squeeze(1)
        if continues is not None:
            value = value * continues.to(value.dtype)
        return reward + discount * value
