"""Crafted posterior draws for the diagnostics tests.

Crafted draws are Dirichlet perturbations of known parameters (a stand-in for a posterior that
is concentrated around the truth), with planted label permutations where a test needs them.
"""

from __future__ import annotations

import numpy as np
import torch

from hmm_pyro import Fit
from hmm_pyro.labels.permutations import permute_params

B_TRUE = np.array(
    [
        [0.70, 0.10, 0.10, 0.05, 0.05],
        [0.05, 0.05, 0.10, 0.10, 0.70],
        [0.10, 0.50, 0.30, 0.05, 0.05],
    ]
)
A_TRUE = np.full((3, 3), 0.1) + 0.7 * np.eye(3)
TRUTH = {"pi": np.full(3, 1 / 3), "A": A_TRUE, "B": B_TRUE}


def tensors(params: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.as_tensor(value, dtype=torch.float64) for name, value in params.items()}


def noisy_draws(
    params: dict[str, np.ndarray], chains: int, draws: int, seed: int, concentration: float = 400
) -> dict[str, np.ndarray]:
    """Draws ``(chain, draw, ...)`` scattered around ``params`` (Dirichlet for each simplex row)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, value in params.items():
        rows = np.atleast_2d(value)
        sampled = np.stack(
            [rng.dirichlet(concentration * row, size=(chains, draws)) for row in rows], axis=2
        )
        out[name] = sampled[:, :, 0] if value.ndim == 1 else sampled
    return out


def crafted_fit(hmm, data, draws: dict[str, np.ndarray], **attrs) -> Fit:
    return Fit.from_params(hmm, data, tensors(draws), method="nuts", attrs=attrs or None)


def planted_fit(hmm, data, planted: np.ndarray, seed: int = 0) -> Fit:
    """Draws around the truth, then permuted by ``planted`` ``(chain, draw, K)``."""
    chains, draws = planted.shape[:2]
    clean = noisy_draws(TRUTH, chains, draws, seed)
    return crafted_fit(hmm, data, permute_params(hmm, clean, planted))
