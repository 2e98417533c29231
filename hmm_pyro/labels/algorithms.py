"""Relabelling algorithms: one permutation per draw, each assignment a linear assignment problem.

* :func:`stephens` — Stephens (2000, JRSS-B 62:795) KL algorithm on the smoothed state
  probabilities ``gamma_t(k) = p(z_t = k | y, theta_n)``: alternately average the relabelled
  probabilities into ``q`` and relabel every draw to minimise ``KL(p_n o sigma_n || q)``.
* :func:`ecr` — ECR, equivalence-class representatives (Papastamoulis & Iliopoulos 2010,
  JCGS 19:313), iterative version 1: relabel each draw's allocation (``argmax gamma``) to agree
  with a pivot allocation, the pivot being re-estimated as the per-time mode.
* :func:`align_to_reference` — Hungarian alignment of whole chains (or SVI restarts) to a
  reference by the distance between their mean emission laws.

All use ``scipy.optimize.linear_sum_assignment`` (O(K^3) per draw), never a K! search.
Permutations follow :mod:`hmm_pyro.labels.permutations` (``perm[j]`` = old label of
new label ``j``).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from hmm_pyro.labels.permutations import identity, invert

__all__ = [
    "agreement",
    "align_to_reference",
    "assign",
    "canonical_within_groups",
    "ecr",
    "stephens",
]

_FLOOR = 1e-10
"""Probabilities are clipped below at this value before taking logs (Stephens 2000)."""


def assign(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost permutations for ``(S, K, K)`` costs ``cost[n, new, old]``: ``(S, K)``."""
    perms = np.empty(cost.shape[:-1], dtype=np.int64)
    for index, matrix in enumerate(cost):
        _, columns = linear_sum_assignment(matrix)
        perms[index] = columns
    return perms


def stephens(
    probs: np.ndarray, max_iter: int = 100, init: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Stephens' KL relabelling.

    Parameters
    ----------
    probs : numpy.ndarray
        ``(S, M, K)`` state probabilities of ``S`` draws at ``M`` time points.
    max_iter : int
        Maximum sweeps; it stops as soon as no permutation changes.
    init : numpy.ndarray, optional
        ``(S, K)`` starting permutations (default: identity).

    Returns
    -------
    perms : numpy.ndarray
        ``(S, K)`` permutations.
    sweeps : int
        Sweeps run.

    Notes
    -----
    The cost of giving old label ``k`` of draw ``n`` the new label ``j`` is
    ``sum_t p_n(t, k) [log p_n(t, k) - log q_t(j)]``; the first term does not depend on ``j``
    and is the same for every permutation, so only ``-sum_t p_n(t, k) log q_t(j)`` is used.
    """
    probs = np.clip(np.asarray(probs, dtype=np.float32), _FLOOR, 1.0)  # float32: memory S M K
    probs /= probs.sum(-1, keepdims=True)
    num_draws, num_points, num = probs.shape
    by_draw = probs.transpose(0, 2, 1)  # (S, old k, M)
    by_time = np.ascontiguousarray(probs.transpose(1, 0, 2)).reshape(num_points, -1)  # (M, S K)
    eye = np.eye(num, dtype=np.float32)
    perms = identity(num, (num_draws,)) if init is None else np.asarray(init).copy()
    sweeps = 0
    for sweeps in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        # q_t(j) = mean_n p_n(t, perm_n[j]) as one matrix product with the permutation matrices
        moves = eye[perms].transpose(0, 2, 1).reshape(-1, num)  # (S K, K): [n, k, j]
        log_q = np.log(by_time @ moves / num_draws)  # (M, K)
        cost = -(by_draw @ log_q).transpose(0, 2, 1).astype(np.float64)  # (S, new j, old k)
        updated = assign(cost)
        if np.array_equal(updated, perms):
            break
        perms = updated
    return perms, sweeps


def ecr(
    allocations: np.ndarray, num_states: int, pivot: np.ndarray, max_iter: int = 100
) -> tuple[np.ndarray, int]:
    """Iterative ECR relabelling of allocations.

    Parameters
    ----------
    allocations : numpy.ndarray
        ``(S, M)`` integer state of each draw at ``M`` time points (e.g. ``argmax gamma``).
    num_states : int
        ``K``.
    pivot : numpy.ndarray
        ``(M,)`` starting pivot allocation (e.g. that of the highest-posterior draw).
    max_iter : int
        Maximum sweeps; it stops when the pivot no longer changes.

    Returns
    -------
    perms : numpy.ndarray
        ``(S, K)`` permutations.
    sweeps : int
        Sweeps run.
    """
    allocations = np.asarray(allocations, dtype=np.int64)
    num_draws, num_points = allocations.shape
    squared = num_states * num_states
    draw_offset = (np.arange(num_draws) * squared)[:, None]
    point_offset = np.arange(num_points) * num_states
    pivot = np.asarray(pivot, dtype=np.int64)
    perms = identity(num_states, (num_draws,))
    sweeps = 0
    for sweeps in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        # matches[n, j, k] = #{t : pivot(t) = j, z_n(t) = k}, counted with one bincount
        index = draw_offset + pivot * num_states + allocations
        matches = np.bincount(index.ravel(), minlength=num_draws * squared)
        perms = assign(-matches.reshape(num_draws, num_states, num_states))
        relabelled = np.take_along_axis(invert(perms), allocations, axis=1)  # new labels
        counts = np.bincount((point_offset + relabelled).ravel(), minlength=num_points * num_states)
        updated = counts.reshape(num_points, num_states).argmax(-1)
        if np.array_equal(updated, pivot):
            break
        pivot = updated
    return perms, sweeps


def align_to_reference(distances: np.ndarray) -> np.ndarray:
    """Align groups of states (chains, restarts) to a reference by Hungarian assignment.

    Parameters
    ----------
    distances : numpy.ndarray
        ``(C, K, K)``: ``distances[c, j, k]`` between reference state ``j`` and state ``k``
        of group ``c``.

    Returns
    -------
    numpy.ndarray
        ``(C, K)`` permutations bringing each group into the reference's labelling.
    """
    return assign(np.asarray(distances))


def canonical_within_groups(perms: np.ndarray, groups: list[tuple[int, ...]]) -> np.ndarray:
    """Keep the original order inside groups of collapsed states.

    States of a collapsed group are indistinguishable, so which of them gets which new label is
    arbitrary; instead of trusting the assignment, the old labels that land in a group are
    given to its new labels in increasing order.

    Parameters
    ----------
    perms : numpy.ndarray
        ``(S, K)`` permutations.
    groups : list of tuple of int
        Groups of new labels.

    Returns
    -------
    numpy.ndarray
        ``(S, K)`` permutations.
    """
    perms = np.array(perms, copy=True)
    for group in groups:
        members = list(group)
        perms[:, members] = np.sort(perms[:, members], axis=-1)
    return perms


def agreement(
    perms: np.ndarray, other: np.ndarray, groups: list[tuple[int, ...]] | None = None
) -> float:
    """Fraction of draws on which two relabellings agree, up to one global relabelling.

    Parameters
    ----------
    perms, other : numpy.ndarray
        ``(S, K)`` permutations from two methods.
    groups : list of tuple of int, optional
        Groups (in ``perms``' labelling) of collapsed states whose order is not compared.

    Returns
    -------
    float
    """
    perms, other = np.asarray(perms), np.asarray(other)
    num = perms.shape[-1]
    # matches[j, i]: draws where new label j of ``perms`` and new label i of ``other`` are
    # the same old label; the best global map j -> i maximises them.
    matches = (perms[:, :, None] == other[:, None, :]).sum(0)
    _, mapping = linear_sum_assignment(-matches)
    mapped = other[:, mapping]
    group_of = np.arange(num)
    for group in groups or []:
        group_of[list(group)] = min(group)
    # new label (in ``perms``' labelling) of each old label under both methods, as groups
    first = group_of[invert(perms)]
    second = group_of[invert(mapped)]
    return float(np.all(first == second, axis=-1).mean())
