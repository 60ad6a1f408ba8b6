"""The agent's three modules: encoder (~ visual cortex), Q head (~ striatum), transition model.

Sizes follow the public code's configurations (``chingf/auxrl``,
``networks/yamls``): two 2 x 2 convolutions with ReLU, a 2 x 2 max-pool and a
fully connected stack to a small latent ``z``; the Q head and the transition
model are MLPs with 16 hidden units that apply a ReLU to their input first;
the transition model predicts ``T(z, a) = z + MLP([z, onehot(a)])``.
"""

from __future__ import annotations

import torch
from torch import nn

from neuro._validation import check_choice, check_int
from neuro.errors import InputError

__all__ = ["ENCODER_SIZES", "Encoder", "QHead", "TransitionModel"]

#: Encoder sizes of the public code: conv channels and the hidden widths of the FC stack.
ENCODER_SIZES = {
    "small": {"channels": (8, 16), "hidden": (32,)},
    "default": {"channels": (16, 32), "hidden": (32,)},
    "large": {"channels": (16, 48), "hidden": (48, 32)},
}


class Encoder(nn.Module):
    """Observations ``(batch, C, H, W)`` to latents ``(batch, latent_dim)``.

    Parameters
    ----------
    obs_shape : tuple of int
        ``(C, H, W)``; H and W at least 4 (two 2 x 2 convolutions, then a 2 x 2
        pool).
    latent_dim : int
        Units of ``z`` (the paper: 3 to 24).
    size : {"small", "default", "large"}
        :data:`ENCODER_SIZES`.

    Examples
    --------
    >>> Encoder((1, 8, 8), 6, "small")(torch.zeros(5, 1, 8, 8)).shape
    torch.Size([5, 6])
    """

    def __init__(self, obs_shape: tuple[int, ...], latent_dim: int, size: str = "default"):
        super().__init__()
        size = check_choice("encoder_size", size, tuple(ENCODER_SIZES))
        if len(obs_shape) != 3 or min(obs_shape[1:]) < 4:
            raise InputError(
                f"The encoder reads images (channels, height, width) of at least 4 x 4 pixels; "
                f"got observations of shape {tuple(obs_shape)}."
            )
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        c1, c2 = ENCODER_SIZES[size]["channels"]
        self.convs = nn.Sequential(
            nn.Conv2d(self.obs_shape[0], c1, kernel_size=2),
            nn.ReLU(),
            nn.Conv2d(c1, c2, kernel_size=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),
            nn.Flatten(),
        )
        h, w = self.obs_shape[1] - 2, self.obs_shape[2] - 2
        features = c2 * (h // 2) * (w // 2)
        layers: list[nn.Module] = []
        for width in ENCODER_SIZES[size]["hidden"]:
            layers += [nn.Linear(features, width), nn.ReLU()]
            features = width
        layers.append(nn.Linear(features, self.latent_dim))
        self.fc = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if obs.shape[1:] != self.obs_shape:
            raise InputError(
                f"Observations of shape {tuple(obs.shape[1:])} do not match the encoder, which "
                f"was built for {self.obs_shape}; build the agent for this environment."
            )
        return self.fc(self.convs(obs))


class _MLP(nn.Module):
    """ReLU on the input, Linear(n_in, hidden), ReLU, Linear(hidden, n_out) (the public code's)."""

    def __init__(self, n_in: int, n_out: int, hidden: int = 16) -> None:
        super().__init__()
        self.hidden = nn.Linear(n_in, hidden)
        self.out = nn.Linear(hidden, n_out)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden units' activity ``(batch, hidden)``, after the ReLU."""
        return torch.relu(self.hidden(torch.relu(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


class QHead(_MLP):
    """Latents ``(batch, latent_dim)`` to action values ``(batch, n_actions)``.

    Examples
    --------
    >>> QHead(6, 4)(torch.zeros(2, 6)).shape
    torch.Size([2, 4])
    """

    def __init__(self, latent_dim: int, n_actions: int, hidden: int = 16) -> None:
        super().__init__(latent_dim, n_actions, hidden)


class TransitionModel(_MLP):
    """``T(z, a) = z + MLP([z, onehot(a)])``: the next latent, predicted.

    Examples
    --------
    >>> T = TransitionModel(6, 4)
    >>> T(torch.zeros(2, 6), torch.tensor([0, 3])).shape
    torch.Size([2, 6])
    """

    def __init__(self, latent_dim: int, n_actions: int, hidden: int = 16) -> None:
        super().__init__(latent_dim + n_actions, latent_dim, hidden)
        self.n_actions = n_actions

    def inputs(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        onehot = torch.nn.functional.one_hot(action.long(), self.n_actions).to(z.dtype)
        return torch.cat([z, onehot], dim=1)

    def features(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().features(self.inputs(z, action))

    def forward(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return z + self.out(self.features(z, action))
