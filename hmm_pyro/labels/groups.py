"""Groups of collapsed states: states whose emission laws are indistinguishable.

Relabelling cannot tell such states apart, so it keeps their original order inside each group
(:func:`hmm_pyro.labels.algorithms.canonical_within_groups`) and says so; the collapse check of
:mod:`hmm_pyro.diagnostics.collapse` counts them (docs/degeneracy.md#emission-collapse).
"""

from __future__ import annotations

import numpy as np

from hmm_pyro.labels.draws import Arrays, emission_distances
from hmm_pyro.labels.thresholds import COLLAPSE_DISTANCE
from hmm_pyro.model import HMM

__all__ = ["count_groups", "merge_groups", "pair_probability"]


def _component_labels(adjacency: np.ndarray) -> np.ndarray:
    """Smallest state index of each state's connected component: ``(*batch, K)``."""
    num = adjacency.shape[-1]
    adjacency = adjacency | np.eye(num, dtype=bool)
    labels = np.broadcast_to(np.arange(num), adjacency.shape[:-1]).copy()
    for _ in range(num):
        neighbours = np.where(adjacency, labels[..., None, :], num)
        labels = neighbours.min(-1)
    return labels


def count_groups(adjacency: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Number of connected components of ``(*batch, K, K)`` boolean graphs.

    Parameters
    ----------
    adjacency : numpy.ndarray
        ``adjacency[..., i, j]``: states ``i`` and ``j`` are indistinguishable.
    keep : numpy.ndarray, optional
        ``(*batch, K)`` states that count (e.g. non-empty ones); others are left out.

    Returns
    -------
    numpy.ndarray
        ``(*batch,)`` integers.
    """
    num = adjacency.shape[-1]
    if keep is None:
        keep = np.ones(adjacency.shape[:-1], dtype=bool)
    adjacency = adjacency & keep[..., :, None] & keep[..., None, :]
    roots = _component_labels(adjacency) == np.arange(num)
    return (roots & keep).sum(-1)


def merge_groups(together: np.ndarray) -> list[tuple[int, ...]]:
    """Groups of states joined by single linkage on a ``(K, K)`` boolean matrix (size >= 2)."""
    labels = _component_labels(np.asarray(together, dtype=bool))
    groups = [tuple(np.flatnonzero(labels == root).tolist()) for root in np.unique(labels)]
    return [group for group in groups if len(group) > 1]


def pair_probability(hmm: HMM, draws: Arrays, distance: float = COLLAPSE_DISTANCE) -> np.ndarray:
    """``(K, K)`` fraction of draws in which two states' emission laws are within ``distance``.

    Meaningful for draws in one labelling (relabelled, or a single chain without switches).
    """
    close = emission_distances(hmm, draws) < distance
    return close.reshape(-1, *close.shape[-2:]).mean(0)
