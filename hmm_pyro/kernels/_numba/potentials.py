"""Numba log joint and gradient of the HMM posterior over flat coordinates (NUTS and MAP).

Coordinates (:mod:`hmm_pyro.inference.coordinates`, flattened in the order ``pi``, ``A``,
emission parameters): stick-breaking rows for ``pi``, ``A`` and ``B``; ``mu`` as is;
``log sigma``; ``log rate``. Each function decodes the coordinates, adds the prior and
log-Jacobian terms, runs the forward-backward sweeps, and assembles the gradient in closed form
from the expected counts and gamma-weighted moments of the data. Categorical emissions take
the symbol sweeps (:func:`~hmm_pyro.kernels._numba.symbols.categorical_lanes`: one shifted row
per symbol, no exponential per step) in one compiled call; Gaussian and Poisson emissions fill
the ``(N, T, K)`` emission log likelihoods and take the general lane sweeps
(:func:`~hmm_pyro.kernels._numba.lanes.lane_sweeps`).

Every function is ``f(z, alpha_pi, alpha_A, *family arguments, jac) -> (value, gradient)``
with ``alpha_pi (1, K)`` and ``alpha_A (K, K)`` the Dirichlet concentrations. Normalising
constants of the prior are added by the caller. ``jac`` is 1.0 for the NUTS potential and 0.0
for the MAP objective (``log p(y, theta)`` in the constrained space, as ``AutoDelta``
maximises it). The value is ``-inf`` where some sequence has zero likelihood. Everything is
float64.
"""

# Numba-compiled functions take untyped array arguments.
# ruff: noqa: ANN001, ANN202

from __future__ import annotations

import math

import numba
import numpy as np

from hmm_pyro.kernels._numba.lanes import lane_sweeps
from hmm_pyro.kernels._numba.symbols import categorical_lanes, weighted_statistics

__all__ = ["categorical_potential", "gaussian_potential", "poisson_potential"]

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
def _transition_part(z, alpha_pi, alpha_A, jac):
    """Decode ``pi`` and ``A``; return their prior + log-Jacobian, log pi, A and helpers."""
    num = alpha_A.shape[0]
    log_pi = np.empty((1, num))
    sig_pi = np.empty((1, num - 1))
    log_a = np.empty((num, num))
    sig_a = np.empty((num, num - 1))
    value = _stick_rows(z[: num - 1], num, 1, log_pi, sig_pi, jac)
    value += _stick_rows(z[num - 1 : num - 1 + num * (num - 1)], num, num, log_a, sig_a, jac)
    value += _prior_simplex(log_pi, alpha_pi) + _prior_simplex(log_a, alpha_A)
    return value, log_pi, sig_pi, log_a, sig_a


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _transition_gradient(start, pairs, alpha_pi, alpha_A, sig_pi, sig_a, grad, jac):
    """Gradient of ``pi`` and ``A`` from first-step gamma ``(K,)`` and summed xi ``(K, K)``."""
    num = alpha_A.shape[0]
    _stick_gradient(start.reshape((1, num)), alpha_pi, sig_pi, grad, 0, jac)
    _stick_gradient(pairs, alpha_A, sig_a, grad, num - 1, jac)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def categorical_potential(z, alpha_pi, alpha_A, alpha_B, symbols, lengths, jac):
    """Categorical emissions: stick-breaking rows of ``B`` after ``pi`` and ``A``.

    ``alpha_B (K, V)``; ``symbols (T, N)`` time-major, with ``V`` at unobserved and padded
    steps (:func:`~hmm_pyro.kernels._numba.symbols.time_major_symbols`); ``lengths (N,)``.
    """
    num, symbols_count = alpha_B.shape
    grad = np.zeros(z.shape[0])
    value, log_pi, sig_pi, log_a, sig_a = _transition_part(z, alpha_pi, alpha_A, jac)
    offset_b = num - 1 + num * (num - 1)
    log_b = np.empty((num, symbols_count))
    sig_b = np.empty((num, symbols_count - 1))
    value += _stick_rows(z[offset_b:], symbols_count, num, log_b, sig_b, jac)
    value += _prior_simplex(log_b, alpha_B)
    # Emission rows looked up per symbol: V x K exponentials per call, none per step.
    log_z, gamma, lane_xi = categorical_lanes(log_pi[0], log_a, log_b, symbols, lengths, True)
    total = log_z.sum()
    if total == -math.inf:
        return -math.inf, grad
    value += total
    weights = np.ones(log_z.shape[0])
    start, xi, counts = weighted_statistics(gamma, lane_xi, symbols, weights, symbols_count)
    _transition_gradient(start, xi, alpha_pi, alpha_A, sig_pi, sig_a, grad, jac)
    _stick_gradient(counts, alpha_B, sig_b, grad, offset_b, jac)
    return value, grad


def _add_lane_likelihood(value, grad, head, table, lengths, alpha_pi, alpha_A, jac):
    """Add the log likelihood of the emission ``table (N, T, K)`` and the ``pi``/``A`` gradient.

    ``head`` is :func:`_transition_part`'s ``(log_pi, sig_pi, log_a, sig_a)``. Returns the value
    and the time-major gamma ``(T, K, N)``, or ``-inf`` and ``None`` when some sequence has
    zero likelihood.
    """
    log_pi, sig_pi, log_a, sig_a = head
    log_z, gamma, xi, dead = lane_sweeps(log_pi, log_a[None], table, lengths)
    if dead.any():
        return -math.inf, None
    start, pairs = gamma[0].sum(-1), xi.sum(-1)  # summed over the lanes
    _transition_gradient(start, pairs, alpha_pi, alpha_A, sig_pi, sig_a, grad, jac)
    return value + log_z.sum(), gamma


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _weighted_moments(gamma, values, observed, center):
    """Gamma-weighted moments of the observed values about ``center (K, D)``.

    ``count[k, d] = sum w``, ``first[k, d] = sum w (y - center[k, d])`` and ``second`` with the
    square, summed over the observed entries ``y = values[n, t, d]`` with weights
    ``w = gamma[t, k, n]`` (gamma time-major ``(T, K, N)``).
    """
    num, dim = center.shape
    count = np.zeros((num, dim))
    first = np.zeros((num, dim))
    second = np.zeros((num, dim))
    for n in range(values.shape[0]):
        for t in range(values.shape[1]):
            for d in range(dim):
                if observed[n, t, d]:
                    y = values[n, t, d]
                    for k in range(num):
                        weight = gamma[t, k, n]
                        gap = y - center[k, d]
                        count[k, d] += weight
                        first[k, d] += weight * gap
                        second[k, d] += weight * gap * gap
    return count, first, second


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _gaussian_coordinates(z, num, dim):
    """``mu``, ``log sigma``, ``1 / sigma**2`` (each ``(K, D)``) and their offsets in ``z``."""
    offset_mu = num - 1 + num * (num - 1)
    offset_sigma = offset_mu + num * dim
    mu = z[offset_mu:offset_sigma].reshape((num, dim))
    log_sigma = z[offset_sigma:].reshape((num, dim))
    return mu, log_sigma, np.exp(-2.0 * log_sigma), offset_mu, offset_sigma


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _gaussian_start(z, alpha_pi, alpha_A, loc, scale_mu, shape, rate, values, observed, jac):
    """Prior part (value and gradient), transition helpers and the emission table."""
    num, dim = loc.shape
    grad = np.zeros(z.shape[0])
    value, log_pi, sig_pi, log_a, sig_a = _transition_part(z, alpha_pi, alpha_A, jac)
    mu, log_sigma, inv_var, offset_mu, offset_sigma = _gaussian_coordinates(z, num, dim)
    for k in range(num):
        for d in range(dim):
            standard = (mu[k, d] - loc[k, d]) / scale_mu[k, d]
            value += -0.5 * standard * standard
            power = 2.0 * shape[k, d] + 1.0 - jac  # log sigma, plus the log-Jacobian if jac
            value += -power * log_sigma[k, d] - rate[k, d] * inv_var[k, d]
            grad[offset_mu + k * dim + d] = -standard / scale_mu[k, d]
            grad[offset_sigma + k * dim + d] = -power + 2.0 * rate[k, d] * inv_var[k, d]
    batch, steps = values.shape[0], values.shape[1]
    table = np.zeros((batch, steps, num))
    for n in range(batch):
        for t in range(steps):
            for k in range(num):
                acc = 0.0
                for d in range(dim):
                    if observed[n, t, d]:
                        gap = values[n, t, d] - mu[k, d]
                        acc += -0.5 * gap * gap * inv_var[k, d] - log_sigma[k, d] - _HALF_LOG_TWO_PI
                table[n, t, k] = acc
    return value, grad, (log_pi, sig_pi, log_a, sig_a), table


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _gaussian_moments(z, gamma, values, observed, grad):
    """Add the likelihood's gradient in ``mu`` and ``log sigma`` from gamma ``(T, K, N)``."""
    num, dim = gamma.shape[1], values.shape[2]
    mu, _, inv_var, offset_mu, offset_sigma = _gaussian_coordinates(z, num, dim)
    count, first, second = _weighted_moments(gamma, values, observed, mu)
    for k in range(num):
        for d in range(dim):
            grad[offset_mu + k * dim + d] += first[k, d] * inv_var[k, d]
            grad[offset_sigma + k * dim + d] += second[k, d] * inv_var[k, d] - count[k, d]


def gaussian_potential(
    z, alpha_pi, alpha_A, loc, scale_mu, shape, rate, values, observed, lengths, jac
):
    """Gaussian emissions: ``mu`` then ``log sigma`` (each ``K * D``) after ``pi`` and ``A``.

    ``loc``, ``scale_mu`` (Normal prior of ``mu``), ``shape``, ``rate`` (InverseGamma prior of
    ``sigma**2``): ``(K, D)``; ``values (N, T, D)`` (any finite number where not observed),
    ``observed (N, T, D)`` bool (false at padded steps), ``lengths (N,)`` int64.
    """
    value, grad, head, table = _gaussian_start(
        z, alpha_pi, alpha_A, loc, scale_mu, shape, rate, values, observed, jac
    )
    value, gamma = _add_lane_likelihood(value, grad, head, table, lengths, alpha_pi, alpha_A, jac)
    if gamma is not None:
        _gaussian_moments(z, gamma, values, observed, grad)
    return value, grad


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _poisson_start(z, alpha_pi, alpha_A, shape, rate, counts, log_factorial, observed, jac):
    """Prior part (value and gradient), transition helpers and the emission table."""
    num, dim = shape.shape
    grad = np.zeros(z.shape[0])
    value, log_pi, sig_pi, log_a, sig_a = _transition_part(z, alpha_pi, alpha_A, jac)
    offset = num - 1 + num * (num - 1)
    log_rate = z[offset:].reshape((num, dim))
    lam = np.exp(log_rate)
    for k in range(num):
        for d in range(dim):
            power = shape[k, d] - 1.0 + jac
            value += power * log_rate[k, d] - rate[k, d] * lam[k, d]
            grad[offset + k * dim + d] = power - rate[k, d] * lam[k, d]
    batch, steps = counts.shape[0], counts.shape[1]
    table = np.zeros((batch, steps, num))
    for n in range(batch):
        for t in range(steps):
            for k in range(num):
                acc = 0.0
                for d in range(dim):
                    if observed[n, t, d]:
                        acc += counts[n, t, d] * log_rate[k, d] - lam[k, d] - log_factorial[n, t, d]
                table[n, t, k] = acc
    return value, grad, (log_pi, sig_pi, log_a, sig_a), table


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _poisson_moments(z, gamma, counts, observed, grad):
    """Add the likelihood's gradient in ``log rate`` from gamma ``(T, K, N)``."""
    num, dim = gamma.shape[1], counts.shape[2]
    offset = num - 1 + num * (num - 1)
    lam = np.exp(z[offset:].reshape((num, dim)))
    weight_total, weight_counts, _ = _weighted_moments(
        gamma, counts, observed, np.zeros((num, dim))
    )
    for k in range(num):
        for d in range(dim):
            grad[offset + k * dim + d] += weight_counts[k, d] - lam[k, d] * weight_total[k, d]


def poisson_potential(
    z, alpha_pi, alpha_A, shape, rate, counts, log_factorial, observed, lengths, jac
):
    """Poisson emissions: ``log rate`` (``K * D``) after ``pi`` and ``A``.

    ``shape``, ``rate`` (Gamma prior of the rates): ``(K, D)``; ``counts (N, T, D)`` (any
    finite number where not observed), ``log_factorial (N, T, D)`` of the counts,
    ``observed (N, T, D)`` bool (false at padded steps), ``lengths (N,)`` int64.
    """
    value, grad, head, table = _poisson_start(
        z, alpha_pi, alpha_A, shape, rate, counts, log_factorial, observed, jac
    )
    value, gamma = _add_lane_likelihood(value, grad, head, table, lengths, alpha_pi, alpha_A, jac)
    if gamma is not None:
        _poisson_moments(z, gamma, counts, observed, grad)
    return value, grad
