"""Deep RL with predictive auxiliary objectives (Fang & Stachenfeld, ICLR 2024).

* :mod:`neuro.rl.envs`: the paper's mazes with the gymnasium API (gridworld
  with grid, texture and shuffled observations, goal transfer, linear track,
  alternating T-maze), registered as ``neuro/...`` tasks, and vectorised;
* :mod:`neuro.rl.networks`, :mod:`neuro.rl.losses`, :mod:`neuro.rl.replay`:
  the agent's modules, losses and replay buffer;
* :class:`PredictiveAgent` (:mod:`neuro.rl.agent`): double DQN with a
  transition model and anti-collapse terms, with exact resume;
* :mod:`neuro.rl.analysis`: learning curves with confidence bands and the
  modules' representations (tuning maps, similarity, dimensionality, latent
  geometry against shortest paths).
"""

from neuro.rl.agent import OBJECTIVES, PredictiveAgent, loss_weights

__all__ = ["OBJECTIVES", "PredictiveAgent", "loss_weights"]
