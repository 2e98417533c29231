"""Per-sequence numba forward-backward: the reference the lane-vectorised kernels are tested
against (one scalar forward and backward sweep per sequence, Rabiner 1989, section V.A)."""

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _forward(log_pi, trans, log_lik, length, alpha, emis, scale):
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
def _backward(trans, length, alpha, emis, scale, beta, gamma, xi):
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
def _fb_sequence(b, log_pi, log_A, log_lik, lengths, log_z, gamma, xi):
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


def _outputs(log_lik: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    batch, steps, num_states = log_lik.shape
    return (
        np.empty(batch),
        np.zeros((batch, steps, num_states)),
        np.zeros((batch, num_states, num_states)),
    )


def per_sequence(log_pi, log_A, log_lik, lengths):
    """Log likelihood, gamma and summed xi of every sequence, one at a time."""
    batch = log_lik.shape[0]
    log_z, gamma, xi = _outputs(log_lik)
    pi = np.ascontiguousarray(np.broadcast_to(log_pi, (batch, log_pi.shape[-1])))
    trans = np.ascontiguousarray(np.broadcast_to(log_A, (batch, *log_A.shape[-2:])))
    for b in range(batch):
        _fb_sequence(b, pi, trans, log_lik, lengths, log_z, gamma, xi)
    return log_z, gamma, xi


def random_inputs(rng, batch, steps, states, scale=1.0):
    """Random ``log_pi (B, K)``, ``log_A (B, K, K)``, ``log_lik (B, T, K)`` and ragged lengths."""
    log_pi = np.log(rng.dirichlet(np.ones(states), size=batch))
    log_A = np.log(rng.dirichlet(np.ones(states), size=(batch, states)))
    log_lik = scale * rng.normal(size=(batch, steps, states))
    lengths = rng.integers(1, steps + 1, size=batch).astype(np.int64)
    lengths[0] = steps
    return log_pi, log_A, log_lik, lengths
