"""Numba forward-backward kernels: one forward and one backward sweep per sequence.

Scaled probability-space recursions (Rabiner 1989, section V.A) with a per-step shift of the
emission log likelihoods, so nothing under- or overflows; the log likelihood is accumulated from
the scale factors. Parallel over the flattened batch (sequences x draws). Everything is float64.
"""

from __future__ import annotations

import math
import os

import numba
import numpy as np

from hmm_pyro.kernels._numba_lanes import forward_backward_lanes, log_likelihood_lanes

if "NUMBA_THREADING_LAYER" not in os.environ:
    # numba's default OpenMP pool, once started, made every later small torch operation in the
    # process ~4000x slower (3 us -> 12 ms for a 3x4 logsigmoid, measured): two OpenMP thread
    # pools compete. numba's own "workqueue" pool does not (3.5 us after a parallel call).
    numba.config.THREADING_LAYER = "workqueue"

__all__ = ["forward_backward_batch", "log_likelihood_batch"]

PARALLEL_MIN_WORK = 2**21
"""Smallest ``B * T * K**2`` run on several threads. Below it a thread pool costs more than it
saves, and threads competing with other processes for the cores slowed a 20 x 500 x 3 call
from 0.2 ms to 23 ms (measured on 2 busy cores)."""


@numba.njit(cache=True, nogil=True)
def _forward(log_pi, trans, log_lik, length, alpha, emis, scale):  # noqa: ANN001, ANN202
    """Fill scaled alpha, shifted emissions and scales; return the log likelihood."""
    num_states = log_lik.shape[1]
    shift = -math.inf
    for k in range(num_states):
        shift = max(shift, log_pi[k] + log_lik[0, k])
    if shift == -math.inf:
        return -math.inf
    total = 0.0
    for k in range(num_states):
        alpha[0, k] = math.exp(log_pi[k] + log_lik[0, k] - shift)
        total += alpha[0, k]
    for k in range(num_states):
        alpha[0, k] /= total
    scale[0] = total
    log_z = shift + math.log(total)
    for t in range(1, length):
        shift = -math.inf
        for k in range(num_states):
            shift = max(shift, log_lik[t, k])
        if shift == -math.inf:
            return -math.inf
        total = 0.0
        for j in range(num_states):
            emis[t, j] = math.exp(log_lik[t, j] - shift)
            acc = 0.0
            for i in range(num_states):
                acc += alpha[t - 1, i] * trans[i, j]
            alpha[t, j] = acc * emis[t, j]
            total += alpha[t, j]
        if total <= 0.0:
            return -math.inf
        for j in range(num_states):
            alpha[t, j] /= total
        scale[t] = total
        log_z += shift + math.log(total)
    return log_z


@numba.njit(cache=True, nogil=True)
def _backward(trans, length, alpha, emis, scale, beta, gamma, xi):  # noqa: ANN001, ANN202
    """Scaled backward sweep; writes gamma (over alpha's storage is not assumed) and summed xi."""
    num_states = trans.shape[0]
    for k in range(num_states):
        beta[length - 1, k] = 1.0
        gamma[length - 1, k] = alpha[length - 1, k]
    ahead = np.empty(num_states)
    for t in range(length - 2, -1, -1):
        inv = 1.0 / scale[t + 1]
        for j in range(num_states):
            ahead[j] = emis[t + 1, j] * beta[t + 1, j] * inv
        for i in range(num_states):
            acc = 0.0
            for j in range(num_states):
                weight = trans[i, j] * ahead[j]
                acc += weight
                xi[i, j] += alpha[t, i] * weight
            beta[t, i] = acc
            gamma[t, i] = alpha[t, i] * acc


@numba.njit(cache=True, nogil=True)
def _fb_sequence(b, log_pi, log_A, log_lik, lengths, log_z, gamma, xi):  # noqa: ANN001, ANN202
    """Forward-backward of batch element ``b``, written into ``log_z``, ``gamma``, ``xi``."""
    num_states = log_lik.shape[2]
    length = lengths[b]
    trans = np.exp(log_A[b])
    alpha = np.empty((length, num_states))
    emis = np.empty((length, num_states))
    scale = np.empty(length)
    beta = np.empty((length, num_states))
    log_z[b] = _forward(log_pi[b], trans, log_lik[b], length, alpha, emis, scale)
    if log_z[b] != -math.inf:
        _backward(trans, length, alpha, emis, scale, beta, gamma[b], xi[b])


@numba.njit(cache=True, nogil=True)
def _ll_sequence(b, log_pi, log_A, log_lik, lengths, log_z):  # noqa: ANN001, ANN202
    """Forward sweep of batch element ``b``, written into ``log_z``."""
    num_states = log_lik.shape[2]
    length = lengths[b]
    alpha = np.empty((length, num_states))
    emis = np.empty((length, num_states))
    scale = np.empty(length)
    log_z[b] = _forward(log_pi[b], np.exp(log_A[b]), log_lik[b], length, alpha, emis, scale)


def _outputs(log_lik: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    batch, steps, num_states = log_lik.shape
    return (
        np.empty(batch),
        np.zeros((batch, steps, num_states)),
        np.zeros((batch, num_states, num_states)),
    )


# The threaded variants run one sequence per iteration; single-threaded calls go to
# ``_numba_lanes``, which runs all sequences at once as vector lanes (about 2x faster).
@numba.njit(parallel=True, cache=True, nogil=True)
def _fb_parallel(log_pi, log_A, log_lik, lengths, log_z, gamma, xi):  # noqa: ANN001, ANN202
    for b in numba.prange(log_lik.shape[0]):
        _fb_sequence(b, log_pi, log_A, log_lik, lengths, log_z, gamma, xi)


@numba.njit(parallel=True, cache=True, nogil=True)
def _ll_parallel(log_pi, log_A, log_lik, lengths, log_z):  # noqa: ANN001, ANN202
    for b in numba.prange(log_lik.shape[0]):
        _ll_sequence(b, log_pi, log_A, log_lik, lengths, log_z)


def _parallel(log_lik: np.ndarray) -> bool:
    batch, steps, states = log_lik.shape
    return (
        numba.get_num_threads() > 1 and batch > 1 and batch * steps * states**2 >= PARALLEL_MIN_WORK
    )


def forward_backward_batch(
    log_pi: np.ndarray, log_A: np.ndarray, log_lik: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log likelihood ``(B,)``, gamma ``(B, T, K)`` and summed xi ``(B, K, K)``.

    Inputs: ``log_pi (B, K)``, ``log_A (B, K, K)``, ``log_lik (B, T, K)``, ``lengths (B,)``.
    Gamma is zero at padded steps; a sequence with zero likelihood gets ``-inf`` and zero
    gamma and xi. Threads are used only for large batches (:data:`PARALLEL_MIN_WORK`);
    otherwise :func:`~hmm_pyro.kernels._numba_lanes.forward_backward_lanes` runs (gamma may
    then be a non-contiguous view).
    """
    if not _parallel(log_lik):
        return forward_backward_lanes(log_pi, log_A, log_lik, lengths)
    log_z, gamma, xi = _outputs(log_lik)
    _fb_parallel(log_pi, log_A, log_lik, lengths, log_z, gamma, xi)
    return log_z, gamma, xi


def log_likelihood_batch(
    log_pi: np.ndarray, log_A: np.ndarray, log_lik: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """Forward sweep only: log likelihood ``(B,)``."""
    if not _parallel(log_lik):
        return log_likelihood_lanes(log_pi, log_A, log_lik, lengths)
    log_z = np.empty(log_lik.shape[0])
    _ll_parallel(log_pi, log_A, log_lik, lengths, log_z)
    return log_z
