"""Simulators with ground truth: each returns its data and what it planted."""

from data_loaders.simulate.linear import LinearEncodingData, simulate_linear_encoding

__all__ = ["LinearEncodingData", "simulate_linear_encoding"]
