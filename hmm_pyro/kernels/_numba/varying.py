"""Numba forward-backward with one transition matrix per step (non-homogeneous chains).

The sweeps of :mod:`~hmm_pyro.kernels._numba.lanes` (sequences as vector lanes, time-major
``(T, K, B)`` arrays, scaled recursions of Rabiner 1989, section V.A, with the same folding of
scale factors into the log likelihood) with ``trans (T, K, K, B)`` in place of ``(K, K, B)``:
``trans[t]`` moves the chain from step ``t`` to step ``t + 1``, so the forward step into
``t`` reads ``trans[t - 1]``. The matrix of the last step of a sequence (and of its padded
steps) is never used: it is replaced by the identity, so whatever it holds (``-inf``, NaN)
cannot reach the results.

The backward sweep writes the per-step pair probabilities ``xi[t, i, j] = p(z_t = i,
z_{t+1} = j | y)`` instead of summing them: they are the gradient of the log likelihood with
respect to ``log_A[t]``. Everything is float64.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from hmm_pyro.kernels._numba.lanes import accumulate_scale, prepare_emissions

__all__ = [
    "BLOCK_BYTES",
    "MIN_BLOCK_LANES",
    "varying_forward_backward",
    "varying_log_likelihood",
    "varying_sweeps",
]

BLOCK_BYTES = 2**20
"""Target size of one block's time-major arrays (lanes x steps x (2 K**2 + 2 K + 1) float64);
2**20 was as fast as or faster than 2**18 and 2**19 at 20-100 sequences x 500-1000 steps x 2-8
states (measured)."""
MIN_BLOCK_LANES = 8
"""Fewest lanes per block, however long the sequences: 8 was faster than 16 for long sequences
of 3-8 states (blocks of 16 no longer stay in the cache) and than 2 or 4 (too few lanes to
vectorise), measured as above."""


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _time_major_logs(log_A, offset, lengths, trans):  # noqa: ANN001, ANN202
    """Lanes ``offset .. offset + n`` of ``log_A (B or 1, T, K, K)`` into ``trans (T, K, K, n)``.

    ``trans[t, i, j, b] = log_A[offset + b, t, i, j]`` where step ``t + 1`` is valid, else the
    log identity; the caller exponentiates ``trans`` in place.
    """
    steps, num_states, _, lanes = trans.shape
    for t in range(steps):  # step by step: trans[t] stays in the L1 cache while it fills
        for b in range(lanes):
            source = offset + b if log_A.shape[0] > 1 else 0
            used = t + 1 < lengths[b]
            for i in range(num_states):
                for j in range(num_states):
                    if used:
                        trans[t, i, j, b] = log_A[source, t, i, j]
                    else:
                        trans[t, i, j, b] = 0.0 if i == j else -math.inf


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _forward(emis, trans, lengths, alpha, scale, log_z, dead):  # noqa: ANN001, ANN202
    """Scaled forward sweep with per-step matrices; ``alpha (T, K, B)``, ``scale (T, B)``."""
    steps, num_states, batch = emis.shape
    total = np.zeros(batch)
    inverse = np.empty(batch)
    product = np.ones(batch)
    for t in range(steps):
        if t == 0:
            for k in range(num_states):
                for b in range(batch):
                    alpha[0, k, b] = emis[0, k, b]
                    total[b] += emis[0, k, b]
        else:
            for j in range(num_states):
                for b in range(batch):
                    alpha[t, j, b] = 0.0
            for i in range(num_states):
                for j in range(num_states):
                    for b in range(batch):
                        alpha[t, j, b] += alpha[t - 1, i, b] * trans[t - 1, i, j, b]
            for b in range(batch):
                total[b] = 0.0
            for j in range(num_states):
                for b in range(batch):
                    alpha[t, j, b] *= emis[t, j, b]
                    total[b] += alpha[t, j, b]
        for b in range(batch):
            scale[t, b] = total[b]
        accumulate_scale(t, lengths, total, product, log_z, dead, inverse)
        for j in range(num_states):
            for b in range(batch):
                alpha[t, j, b] *= inverse[b]
    for b in range(batch):
        log_z[b] += math.log(product[b])


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _backward(emis, trans, lengths, alpha, scale, xi):  # noqa: ANN001, ANN202
    """Scaled backward sweep of a block: gamma over ``alpha`` (zero at padded steps), ``xi``.

    ``xi (T, K, K, n)``: ``xi[t]`` is zero where step ``t + 1`` is not valid (also at the last
    step). Step ``t`` reads ``alpha[t]`` before it writes gamma there.
    """
    steps, num_states, lanes = emis.shape
    beta = np.empty((2, num_states, lanes))
    ahead = np.empty((num_states, lanes))
    inverse = np.empty(lanes)
    last = steps - 1
    current = last % 2
    for k in range(num_states):
        for b in range(lanes):
            beta[current, k, b] = 1.0
            alpha[last, k, b] = alpha[last, k, b] if last < lengths[b] else 0.0
    for i in range(num_states):
        for j in range(num_states):
            for b in range(lanes):
                xi[last, i, j, b] = 0.0
    for t in range(steps - 2, -1, -1):
        following = current
        current = t % 2
        for b in range(lanes):
            inverse[b] = 1.0 / scale[t + 1, b] if t + 1 < lengths[b] else 0.0
        for j in range(num_states):
            for b in range(lanes):
                ahead[j, b] = emis[t + 1, j, b] * beta[following, j, b] * inverse[b]
        for i in range(num_states):
            for b in range(lanes):
                # the last real step of a sequence (or a padded one) starts with beta = 1
                beta[current, i, b] = 0.0 if t + 1 < lengths[b] else 1.0
            for j in range(num_states):
                for b in range(lanes):
                    weight = trans[t, i, j, b] * ahead[j, b]
                    beta[current, i, b] += weight
                    xi[t, i, j, b] = alpha[t, i, b] * weight
        for i in range(num_states):
            for b in range(lanes):
                alpha[t, i, b] = alpha[t, i, b] * beta[current, i, b] if t < lengths[b] else 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _batch_major(gamma, xi, offset, gamma_out, xi_out):  # noqa: ANN001, ANN202
    """A block's time-major ``gamma (T, K, n)`` and ``xi (T, K, K, n)`` into batch-major lanes.

    Lanes ``offset .. offset + n`` of ``gamma_out (B, T, K)`` and ``xi_out (B, T, K, K)``.
    """
    steps, num_states, lanes = gamma.shape
    for t in range(steps):  # step by step: gamma[t] and xi[t] stay in the L1 cache
        for b in range(lanes):
            for i in range(num_states):
                gamma_out[offset + b, t, i] = gamma[t, i, b]
                for j in range(num_states):
                    xi_out[offset + b, t, i, j] = xi[t, i, j, b]


def _block_lanes(steps: int, num_states: int) -> int:
    """Lanes per block: the block's time-major arrays take about :data:`BLOCK_BYTES`."""
    per_lane = 8 * steps * (2 * num_states * num_states + 2 * num_states + 1)
    return max(MIN_BLOCK_LANES, BLOCK_BYTES // per_lane)


def varying_sweeps(
    log_pi: np.ndarray,
    log_A: np.ndarray,
    log_lik: np.ndarray,
    lengths: np.ndarray,
    backward: bool = True,
) -> tuple[np.ndarray, ...]:
    """Both sweeps (or the forward one), block of lanes by block of lanes, batch-major results.

    Parameters
    ----------
    log_pi : numpy.ndarray
        ``(B or 1, K)`` float64.
    log_A : numpy.ndarray
        ``(B or 1, T, K, K)`` float64: ``log_A[b, t]`` moves the chain from step ``t`` to
        ``t + 1`` (not read from the last step of a sequence on).
    log_lik : numpy.ndarray
        ``(B, T, K)`` float64 emission log likelihoods (not read at padded steps).
    lengths : numpy.ndarray
        ``(B,)`` int64, each in ``[1, T]``.
    backward : bool
        Run the backward sweep too.

    Returns
    -------
    log_z, gamma, xi, dead : numpy.ndarray
        ``(B,)``; ``(B, T, K)`` gamma and ``(B, T, K, K)`` per-step xi (each ``None``
        without ``backward``); ``(B,)`` lanes of zero
        likelihood, whose other results are undefined for the caller to clear.

    Notes
    -----
    Each block of lanes is copied into time-major arrays (emissions, matrices, forward
    variables, xi) sized to stay in the CPU cache (:func:`_block_lanes`) and reused from block
    to block: the matrices are read by the copy, the forward and the backward sweep, and with
    all lanes at once those two sweeps read them from main memory. The results are copied back
    batch-major, the layout of the gradient.
    """
    batch, steps, num_states = log_lik.shape
    count = -(-batch // _block_lanes(steps, num_states))  # blocks of near-equal size
    width = -(-batch // count)
    log_z = np.empty(batch)
    dead = np.empty(batch, dtype=np.bool_)
    gamma = np.empty((batch, steps, num_states)) if backward else None
    xi = np.empty((batch, steps, num_states, num_states)) if backward else None
    scratch: dict[int, tuple[np.ndarray, ...]] = {}
    for start in range(0, batch, width):
        stop = min(batch, start + width)
        lanes = stop - start
        if lanes not in scratch:
            scratch[lanes] = (
                np.empty((steps, num_states, lanes)),
                np.empty((steps, num_states, num_states, lanes)),
                np.empty((steps, num_states, lanes)),
                np.empty((steps, lanes)),
                np.empty((steps, num_states, num_states, lanes)) if backward else None,
            )
        emis, trans, alpha, scale, block_xi = scratch[lanes]
        part = slice(start, stop)
        block_pi = log_pi if log_pi.shape[0] == 1 else log_pi[part]
        block_z, block_dead, block_lengths = log_z[part], dead[part], lengths[part]
        prepare_emissions(block_pi, log_lik[part], block_lengths, emis, block_z, block_dead)
        np.exp(emis, out=emis)
        _time_major_logs(log_A, start, block_lengths, trans)
        # one vectorised exponential, as the homogeneous sweeps take it: a constant log_A
        # gives their results bit for bit
        np.exp(trans, out=trans)
        _forward(emis, trans, block_lengths, alpha, scale, block_z, block_dead)
        if backward:
            _backward(emis, trans, block_lengths, alpha, scale, block_xi)
            _batch_major(alpha, block_xi, start, gamma, xi)
    return log_z, gamma, xi, dead


def varying_forward_backward(
    log_pi: np.ndarray, log_A: np.ndarray, log_lik: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log likelihood ``(B,)``, gamma ``(B, T, K)`` and per-step xi ``(B, T, K, K)``.

    Inputs as :func:`varying_sweeps`. A sequence of zero likelihood gets ``-inf`` and zero
    gamma and xi.
    """
    log_z, gamma, xi, dead = varying_sweeps(log_pi, log_A, log_lik, lengths)
    if dead.any():
        log_z[dead] = -np.inf
        gamma[dead] = 0.0
        xi[dead] = 0.0
    return log_z, gamma, xi


def varying_log_likelihood(
    log_pi: np.ndarray, log_A: np.ndarray, log_lik: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """Forward sweep only: log likelihood ``(B,)``."""
    log_z, _, _, dead = varying_sweeps(log_pi, log_A, log_lik, lengths, backward=False)
    log_z[dead] = -np.inf
    return log_z
