"""Per-draw computations shared by relabelling and the diagnostics.

Numpy/torch conversion, distances between the states' emission laws, and forward-backward
statistics (expected occupancy, state probabilities at chosen time points) of every draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hmm_pyro.data import Sequences
from hmm_pyro.model import HMM

__all__ = [
    "Arrays",
    "StateStatistics",
    "emission_distances",
    "state_statistics",
    "time_points",
    "to_numpy",
    "to_torch",
]

Arrays = dict[str, np.ndarray]
_CHUNK_ELEMENTS = 2**22
"""Largest ``draws x N x T x K`` gamma tensor held at once (32 MiB in float64)."""


def to_numpy(params: dict[str, torch.Tensor | np.ndarray]) -> Arrays:
    """Tensors to float64 numpy arrays."""
    return {
        name: (
            value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        )
        for name, value in params.items()
    }


def to_torch(hmm: HMM, params: Arrays) -> dict[str, torch.Tensor]:
    """Numpy arrays to tensors of the model's dtype."""
    return {
        name: torch.tensor(np.asarray(value), dtype=hmm.dtype) for name, value in params.items()
    }


def emission_distances(hmm: HMM, params: Arrays) -> np.ndarray:
    """Squared Hellinger distances between the states' emission laws: ``(*batch, K, K)``."""
    emission = {name: params[name] for name in hmm.emission.param_names}
    return hmm.emission.hellinger(to_torch(hmm, emission)).numpy()


def time_points(data: Sequences, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` evenly spaced valid ``(sequence, time)`` positions, in order."""
    mask = data.mask.numpy()
    sequence, step = np.nonzero(mask)
    if limit is not None and sequence.size > limit:
        keep = np.unique(np.linspace(0, sequence.size - 1, limit).round().astype(np.int64))
        sequence, step = sequence[keep], step[keep]
    return sequence, step


@dataclass(frozen=True)
class StateStatistics:
    """Forward-backward statistics of parameter draws.

    Attributes
    ----------
    counts : numpy.ndarray
        ``(*batch, K)`` expected number of time steps spent in each state (all sequences).
    gamma : numpy.ndarray or None
        ``(*batch, M, K)`` float32 smoothed state probabilities at ``M`` chosen time points.
    """

    counts: np.ndarray
    gamma: np.ndarray | None


def state_statistics(
    hmm: HMM,
    data: Sequences,
    params: Arrays,
    points: tuple[np.ndarray, np.ndarray] | None = None,
) -> StateStatistics:
    """Run forward-backward on every draw, in chunks, and keep counts (and gamma at ``points``).

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        The fitted data.
    params : dict of numpy.ndarray
        Draws ``(*batch, *param_shape)``.
    points : tuple of numpy.ndarray, optional
        ``(sequence, time)`` indices (see :func:`time_points`) at which gamma is kept.

    Returns
    -------
    StateStatistics
    """
    shapes = hmm.param_shapes()
    batch = np.broadcast_shapes(
        *(np.shape(params[name])[: np.ndim(params[name]) - len(shapes[name])] for name in shapes)
    )
    total = int(np.prod(batch))
    flat = {
        name: np.broadcast_to(params[name], (*batch, *shapes[name])).reshape(total, *shapes[name])
        for name in hmm.param_names
    }
    num = hmm.num_states
    per_draw = data.num_sequences * data.max_length * num
    chunk = max(1, _CHUNK_ELEMENTS // max(per_draw, 1))
    counts = np.empty((total, num))
    gamma = None if points is None else np.empty((total, points[0].size, num), dtype=np.float32)
    for start in range(0, total, chunk):
        part = to_torch(hmm, {name: value[start : start + chunk] for name, value in flat.items()})
        marginals = hmm.forward_backward(part, data).gamma  # (chunk, N, T, K); 0 at padding
        counts[start : start + chunk] = marginals.sum((1, 2)).numpy()
        if gamma is not None:
            picked = marginals[:, torch.as_tensor(points[0]), torch.as_tensor(points[1])]
            gamma[start : start + chunk] = picked.numpy().astype(np.float32)
    counts = counts.reshape(*batch, num)
    if gamma is not None:
        gamma = gamma.reshape(*batch, points[0].size, num)
    return StateStatistics(counts=counts, gamma=gamma)
