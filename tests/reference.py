"""Brute-force HMM reference: enumerate all ``K**T`` state paths of one short sequence.

Independent of ``hmm_pyro``: plain numpy, no recursions. Conventions as in the package:
``log_pi`` is the distribution of the state emitting the first observation and
``log_A[i, j] = log P(z_t = j | z_{t-1} = i)``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp


@dataclass
class BruteForce:
    """Exact quantities of one sequence of length ``T`` (no padding)."""

    paths: np.ndarray
    """``(K**T, T)`` every state path, in lexicographic order."""
    log_joint: np.ndarray
    """``(K**T,)`` ``log p(z, y)`` of each path."""
    log_likelihood: float
    gamma: np.ndarray
    """``(T, K)`` posterior marginals."""
    transitions: np.ndarray
    """``(K, K)`` expected transition counts summed over time."""
    map_path: np.ndarray
    map_score: float

    @property
    def posterior(self) -> np.ndarray:
        """``(K**T,)`` posterior probability of each path."""
        return np.exp(self.log_joint - self.log_likelihood)


def _as_numpy(value: object) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def path_log_joint(log_pi: object, log_A: object, log_lik: object, path: object) -> float:
    """``log p(z, y)`` of one path, term by term."""
    log_pi, log_A, log_lik = _as_numpy(log_pi), _as_numpy(log_A), _as_numpy(log_lik)
    path = [int(z) for z in path]
    total = log_pi[path[0]] + log_lik[0, path[0]]
    for t in range(1, len(path)):
        total += log_A[path[t - 1], path[t]] + log_lik[t, path[t]]
    return float(total)


def brute_force(log_pi: object, log_A: object, log_lik: object) -> BruteForce:
    """Enumerate every path of one sequence.

    ``log_pi (K,)``, ``log_A (K, K)``, ``log_lik (T, K)``.
    """
    log_pi, log_A, log_lik = _as_numpy(log_pi), _as_numpy(log_A), _as_numpy(log_lik)
    num_steps, num_states = log_lik.shape
    assert log_pi.shape == (num_states,) and log_A.shape == (num_states, num_states)
    paths = np.array(list(itertools.product(range(num_states), repeat=num_steps)), dtype=np.int64)
    steps = np.arange(num_steps)
    log_joint = log_pi[paths[:, 0]] + log_lik[steps, paths].sum(-1)
    if num_steps > 1:
        log_joint = log_joint + log_A[paths[:, :-1], paths[:, 1:]].sum(-1)
    log_z = float(logsumexp(log_joint))
    weights = np.exp(log_joint - log_z)
    gamma = np.zeros((num_steps, num_states))
    transitions = np.zeros((num_states, num_states))
    for weight, path in zip(weights, paths, strict=True):
        gamma[steps, path] += weight
        for t in range(1, num_steps):
            transitions[path[t - 1], path[t]] += weight
    best = int(np.argmax(log_joint))
    return BruteForce(
        paths=paths,
        log_joint=log_joint,
        log_likelihood=log_z,
        gamma=gamma,
        transitions=transitions,
        map_path=paths[best],
        map_score=float(log_joint[best]),
    )
