"""Numba log joint and gradient of the HMM posterior in NUTS coordinates, one call per evaluation.

Coordinates (as :class:`~hmm_pyro.inference.lean_potential.LeanPotential`, flattened in the
order ``pi``, ``A``, emission parameters): stick-breaking rows for ``pi``, ``A`` and ``B``;
``mu`` as is; ``log sigma``; ``log rate``. Each call decodes the coordinates, adds the prior and
log-Jacobian terms, runs a scaled forward-backward sweep per sequence with the emission
likelihoods computed on the fly (no ``(N, T, K)`` table; categorical rows are looked up from one
shifted row per symbol, so no exponential per step), accumulates the expected counts and
moments, and assembles the gradient in closed form. Normalising constants of the prior are
added by the caller. ``jac`` is 1.0 for the NUTS potential and 0.0 for the MAP objective
(``log p(y, theta)`` in the constrained space, as ``AutoDelta`` maximises it). Everything is
float64.
"""

# Numba-compiled functions take untyped array arguments.
# ruff: noqa: ANN001, ANN202

from __future__ import annotations

import math

import numba
import numpy as np

from hmm_pyro.kernels import _numba_fb  # noqa: F401  (sets numba's threading layer first)
from hmm_pyro.kernels import _numba_lanes as lanes

__all__ = ["categorical", "gaussian", "poisson"]

_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_sigmoid(x):
    if x >= 0.0:
        return -math.log1p(math.exp(-x))
    return x - math.log1p(math.exp(x))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _stick_rows(x, width, rows, log_y, sig, jac):
    """Decode ``rows`` stick-breaking rows of ``width - 1`` coordinates from flat ``x``.

    Fills ``log_y (rows, width)`` and ``sig (rows, width - 1)``; returns ``jac`` times the
    log-Jacobian.
    """
    free = width - 1
    log_det = 0.0
    for r in range(rows):
        acc = 0.0
        for m in range(free):
            s = x[r * free + m] - math.log(free - m)
            log_z = _log_sigmoid(s)
            log_rest = _log_sigmoid(-s)
            log_y[r, m] = log_z + acc
            sig[r, m] = math.exp(log_z)
            acc += log_rest
            log_det += jac * (log_rest + log_y[r, m])
        log_y[r, free] = acc
    return log_det


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _stick_gradient(counts, alpha, sig, out, offset, jac):
    """Gradient of ``sum_k (alpha_k - 1 + counts_k) log y_k + jac * log|J|`` for each row."""
    rows, width = counts.shape
    free = width - 1
    for r in range(rows):
        tail = 0.0
        for m in range(width - 1, -1, -1):
            weight = alpha[r, m] - 1.0 + counts[r, m] + (jac if m < free else 0.0)
            tail += weight
            if m < free:
                out[offset + r * free + m] = weight - sig[r, m] * (tail + jac)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _prior_simplex(log_y, alpha):
    total = 0.0
    rows, width = log_y.shape
    for r in range(rows):
        for k in range(width):
            total += (alpha[r, k] - 1.0) * log_y[r, k]
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sequence_sweep(log_pi, trans, loglik, length, alpha, emis, scale, gamma, start, xi):
    """Scaled forward-backward of one sequence from its ``(T, K)`` log-likelihood rows.

    Writes ``gamma (T, K)`` for the valid steps, adds ``gamma_0`` to ``start`` and the summed
    ``xi`` to ``xi``; returns the log likelihood.
    """
    num = loglik.shape[1]
    log_z = 0.0
    for t in range(length):
        shift = -math.inf
        for k in range(num):
            if loglik[t, k] > shift:
                shift = loglik[t, k]
        log_z += shift
        for k in range(num):
            emis[t, k] = math.exp(loglik[t, k] - shift)
    return log_z + _scaled_sweep(log_pi, trans, emis, length, alpha, scale, gamma, start, xi)


_FOLD_BELOW = 1e-150
"""Scale factors are multiplied into a running product whose log is taken only when it falls
below this (or for a single factor below it): one ``log`` per ~150 decades, not per step."""


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _scaled_sweep(log_pi, trans, emis, length, alpha, scale, gamma, start, xi):
    """Forward-backward from shifted emission probabilities ``emis (T, K)``.

    Returns the log of the product of the scale factors (the log likelihood minus the shifts).
    """
    num = emis.shape[1]
    log_z = 0.0
    product = 1.0
    for t in range(length):
        total = 0.0
        if t == 0:
            for k in range(num):
                alpha[0, k] = math.exp(log_pi[k]) * emis[0, k]
                total += alpha[0, k]
        else:
            for j in range(num):
                acc = 0.0
                for i in range(num):
                    acc += alpha[t - 1, i] * trans[i, j]
                alpha[t, j] = acc * emis[t, j]
                total += alpha[t, j]
        inverse = 1.0 / total
        for j in range(num):
            alpha[t, j] *= inverse
        scale[t] = total
        if total < _FOLD_BELOW:
            log_z += math.log(total)
        else:
            product *= total
            if product < _FOLD_BELOW:
                log_z += math.log(product)
                product = 1.0
    log_z += math.log(product)
    beta = np.ones(num)
    ahead = np.empty(num)
    for k in range(num):
        gamma[length - 1, k] = alpha[length - 1, k]
    for t in range(length - 2, -1, -1):
        inv = 1.0 / scale[t + 1]
        for j in range(num):
            ahead[j] = emis[t + 1, j] * beta[j] * inv
        for i in range(num):
            acc = 0.0
            for j in range(num):
                weight = trans[i, j] * ahead[j]
                acc += weight
                xi[i, j] += alpha[t, i] * weight
            beta[i] = acc
            gamma[t, i] = alpha[t, i] * acc
    for k in range(num):
        start[k] += gamma[0, k]
    return log_z


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _transition_part(z, num, alpha_pi, alpha_A, jac):
    """Decode ``pi`` and ``A``; return their prior + log-Jacobian, log pi, A and helpers."""
    log_pi = np.empty((1, num))
    sig_pi = np.empty((1, num - 1))
    log_a = np.empty((num, num))
    sig_a = np.empty((num, num - 1))
    value = _stick_rows(z[: num - 1], num, 1, log_pi, sig_pi, jac)
    value += _stick_rows(z[num - 1 : num - 1 + num * (num - 1)], num, num, log_a, sig_a, jac)
    value += _prior_simplex(log_pi, alpha_pi) + _prior_simplex(log_a, alpha_A)
    return value, log_pi, sig_pi, log_a, sig_a


@numba.njit(cache=True, nogil=True, error_model="numpy")
def categorical(z, num, symbols_count, alpha_pi, alpha_A, alpha_B, symbols, lengths, jac):
    """Log joint (without prior constants) and gradient.

    ``symbols (T, N)`` is time-major, with ``symbols_count`` at unobserved and padded steps
    (:func:`~hmm_pyro.kernels._numba_lanes.time_major_symbols`).
    """
    grad = np.zeros(z.shape[0])
    value, log_pi, sig_pi, log_a, sig_a = _transition_part(z, num, alpha_pi, alpha_A, jac)
    offset_b = num - 1 + num * (num - 1)
    log_b = np.empty((num, symbols_count))
    sig_b = np.empty((num, symbols_count - 1))
    value += _stick_rows(z[offset_b:], symbols_count, num, log_b, sig_b, jac)
    value += _prior_simplex(log_b, alpha_B)
    # Emission rows looked up per symbol: V x K exponentials per call, none per step.
    log_z, gamma, lane_xi = lanes.categorical_lanes(log_pi[0], log_a, log_b, symbols, lengths, True)
    total = log_z.sum()
    if total == -math.inf:
        return -math.inf, grad
    value += total
    weights = np.ones(log_z.shape[0])
    start, xi, counts = lanes.weighted_statistics(gamma, lane_xi, symbols, weights, symbols_count)
    _stick_gradient(start.reshape((1, num)), alpha_pi, sig_pi, grad, 0, jac)
    _stick_gradient(xi, alpha_A, sig_a, grad, num - 1, jac)
    _stick_gradient(counts, alpha_B, sig_b, grad, offset_b, jac)
    return value, grad


@numba.njit(cache=True, nogil=True, error_model="numpy")
def gaussian(
    z, num, dim, alpha_pi, alpha_A, loc, scale_mu, shape, rate, values, observed, lengths, jac
):
    """Gaussian emissions: ``mu`` then ``log sigma`` (each ``num * dim``) after ``pi`` and ``A``."""
    grad = np.zeros(z.shape[0])
    value, log_pi, sig_pi, log_a, sig_a = _transition_part(z, num, alpha_pi, alpha_A, jac)
    offset_mu = num - 1 + num * (num - 1)
    offset_sigma = offset_mu + num * dim
    mu = z[offset_mu:offset_sigma].reshape((num, dim))
    log_sigma = z[offset_sigma:].reshape((num, dim))
    inv_var = np.exp(-2.0 * log_sigma)
    for k in range(num):
        for d in range(dim):
            standard = (mu[k, d] - loc[k, d]) / scale_mu[k, d]
            value += -0.5 * standard * standard
            power = 2.0 * shape[k, d] + 1.0 - jac  # log sigma, plus the log-Jacobian if jac
            value += -power * log_sigma[k, d] - rate[k, d] * inv_var[k, d]
            grad[offset_mu + k * dim + d] = -standard / scale_mu[k, d]
            grad[offset_sigma + k * dim + d] = -power + 2.0 * rate[k, d] * inv_var[k, d]
    trans = np.exp(log_a)
    steps = values.shape[1]
    loglik = np.zeros((steps, num))
    alpha = np.empty((steps, num))
    emis = np.empty((steps, num))
    scale = np.empty(steps)
    gamma = np.empty((steps, num))
    start = np.zeros((1, num))
    xi = np.zeros((num, num))
    first = np.zeros((num, dim))
    second = np.zeros((num, dim))
    count = np.zeros((num, dim))
    for n in range(values.shape[0]):
        length = lengths[n]
        for t in range(length):
            for k in range(num):
                acc = 0.0
                for d in range(dim):
                    if observed[n, t, d]:
                        gap = values[n, t, d] - mu[k, d]
                        acc += -0.5 * gap * gap * inv_var[k, d] - log_sigma[k, d] - _HALF_LOG_TWO_PI
                loglik[t, k] = acc
        value += _sequence_sweep(
            log_pi[0], trans, loglik, length, alpha, emis, scale, gamma, start[0], xi
        )
        for t in range(length):
            for d in range(dim):
                if observed[n, t, d]:
                    y = values[n, t, d]
                    for k in range(num):
                        weight = gamma[t, k]
                        gap = y - mu[k, d]
                        count[k, d] += weight
                        first[k, d] += weight * gap
                        second[k, d] += weight * gap * gap
    _stick_gradient(start, alpha_pi, sig_pi, grad, 0, jac)
    _stick_gradient(xi, alpha_A, sig_a, grad, num - 1, jac)
    for k in range(num):
        for d in range(dim):
            grad[offset_mu + k * dim + d] += first[k, d] * inv_var[k, d]
            grad[offset_sigma + k * dim + d] += second[k, d] * inv_var[k, d] - count[k, d]
    return value, grad


@numba.njit(cache=True, nogil=True, error_model="numpy")
def poisson(
    z, num, dim, alpha_pi, alpha_A, shape, rate, counts, log_factorial, observed, lengths, jac
):
    """Poisson emissions: ``log rate`` (``num * dim``) after ``pi`` and ``A``."""
    grad = np.zeros(z.shape[0])
    value, log_pi, sig_pi, log_a, sig_a = _transition_part(z, num, alpha_pi, alpha_A, jac)
    offset = num - 1 + num * (num - 1)
    log_rate = z[offset:].reshape((num, dim))
    lam = np.exp(log_rate)
    for k in range(num):
        for d in range(dim):
            power = shape[k, d] - 1.0 + jac
            value += power * log_rate[k, d] - rate[k, d] * lam[k, d]
            grad[offset + k * dim + d] = power - rate[k, d] * lam[k, d]
    trans = np.exp(log_a)
    steps = counts.shape[1]
    loglik = np.zeros((steps, num))
    alpha = np.empty((steps, num))
    emis = np.empty((steps, num))
    scale = np.empty(steps)
    gamma = np.empty((steps, num))
    start = np.zeros((1, num))
    xi = np.zeros((num, num))
    weight_total = np.zeros((num, dim))
    weight_counts = np.zeros((num, dim))
    for n in range(counts.shape[0]):
        length = lengths[n]
        for t in range(length):
            for k in range(num):
                acc = 0.0
                for d in range(dim):
                    if observed[n, t, d]:
                        acc += counts[n, t, d] * log_rate[k, d] - lam[k, d] - log_factorial[n, t, d]
                loglik[t, k] = acc
        value += _sequence_sweep(
            log_pi[0], trans, loglik, length, alpha, emis, scale, gamma, start[0], xi
        )
        for t in range(length):
            for d in range(dim):
                if observed[n, t, d]:
                    for k in range(num):
                        weight_total[k, d] += gamma[t, k]
                        weight_counts[k, d] += gamma[t, k] * counts[n, t, d]
    _stick_gradient(start, alpha_pi, sig_pi, grad, 0, jac)
    _stick_gradient(xi, alpha_A, sig_a, grad, num - 1, jac)
    for k in range(num):
        for d in range(dim):
            grad[offset + k * dim + d] += weight_counts[k, d] - lam[k, d] * weight_total[k, d]
    return value, grad
