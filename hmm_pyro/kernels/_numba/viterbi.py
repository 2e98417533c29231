"""Numba Viterbi: max-product dynamic programming over a batch of sequences, one at a time.

The same recursion as the torch route of :func:`hmm_pyro.kernels.viterbi` (``delta_t(j) =
max_i delta_{t-1}(i) + log A(i, j) + log b_j(y_t)``, back-pointers, backtracking from the best
final state), with ties broken towards the lowest state index as there, on float64 arrays; a
sequence's padded steps are skipped (its path is ``-1`` there). ``log_A`` is
``(B or 1, T or 1, K, K)``: one matrix per sequence (``varying=False``, a step axis of length
1) or one per step (``log_A[b, t - 1]`` moves the chain into step ``t``). A NaN score loses
every comparison (the torch route would propagate it); inputs are finite or ``-inf`` here.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["viterbi_batch"]


@numba.njit(cache=True, nogil=True)
def viterbi_batch(log_pi, log_A, log_lik, lengths, varying):  # noqa: ANN001, ANN202
    """Paths ``(B, T)`` (``-1`` at padding) and scores ``(B,)``.

    ``log_pi (B or 1, K)``, ``log_A (B or 1, 1, K, K)`` or, with ``varying``,
    ``(B or 1, T, K, K)``, ``log_lik (B, T, K)``, ``lengths (B,)`` in ``[1, T]``.
    """
    batch, steps, num_states = log_lik.shape
    path = np.full((batch, steps), -1, dtype=np.int64)
    score = np.empty(batch)
    delta = np.empty(num_states)
    updated = np.empty(num_states)
    pointers = np.zeros((steps, num_states), dtype=np.int64)
    for b in range(batch):
        row_pi = b if log_pi.shape[0] > 1 else 0
        row_A = b if log_A.shape[0] > 1 else 0
        length = lengths[b]
        for k in range(num_states):
            delta[k] = log_pi[row_pi, k] + log_lik[b, 0, k]
        for t in range(1, length):
            into = t - 1 if varying else 0
            for j in range(num_states):
                best = -math.inf
                arg = 0
                for i in range(num_states):
                    value = delta[i] + log_A[row_A, into, i, j]
                    if value > best:
                        best = value
                        arg = i
                updated[j] = best + log_lik[b, t, j]
                pointers[t, j] = arg
            for j in range(num_states):
                delta[j] = updated[j]
        best = -math.inf
        state = 0
        for k in range(num_states):
            if delta[k] > best:
                best = delta[k]
                state = k
        score[b] = best
        path[b, length - 1] = state
        for t in range(length - 1, 0, -1):
            state = pointers[t, state]
            path[b, t - 1] = state
    return path, score
