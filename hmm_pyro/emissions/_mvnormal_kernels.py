"""Numba part of the full-covariance normal family: its NUTS/MAP kernels and M-step objective.

The family is :mod:`hmm_pyro.emissions.mvnormal`; its numba functions are this companion
module (the two together exceed one module's size). :data:`MVNORMAL_KERNELS` are its pieces
of :func:`~hmm_pyro.kernels._numba.potentials.entry_potential`, :func:`map_objective` the
objective of its numerical M-step.

Coordinates after ``pi`` and ``A``: ``mu`` and ``log sigma`` (``K * D`` each), then ``K``
blocks of ``D (D - 1) / 2`` correlation coordinates (Pyro's ``biject_to(corr_matrix)``:
``tanh`` of each, stick-breaking rows of the Cholesky factor ``L``; the matrix is ``L L^T``).
Conventions as in :mod:`~hmm_pyro.kernels._numba.potentials`.
"""

# Numba-compiled functions take untyped array arguments.
# ruff: noqa: ANN001, ANN202

from __future__ import annotations

import math

import numba
import numpy as np

from hmm_pyro.kernels._numba import EntryKernels, fill_table, weighted_sums

__all__ = ["MVNORMAL_KERNELS", "map_objective"]

_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)
_LOG_TWO = math.log(2.0)
_EPSILON = 2.0**-52
"""float64 machine epsilon: torch clamps ``tanh`` of the correlation coordinates to +-(1 - it)."""


# Per state: mu (D,), log sigma (D,) and x (D (D - 1) / 2,) correlation coordinates. With
# C = diag(sigma) L and weights w: n = sum w, f = sum w (y - mu), M = sum w (y - mu)(y - mu)^T,
# Q = -n (sum log sigma + sum log L_ii) - tr(C^-1 M C^-T) / 2 (+ constants), and with
# W = M / (sigma sigma^T), P = corr^-1: dQ/dmu = Sigma^-1 f, dQ/dlog sigma_d = (W P)_dd - n,
# dQ/dL = P W P L - n diag(1 / L_ii), carried to x by :func:`_factor_backward`.
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _correlation_factor(x, factor, radius, remain):
    """Cholesky factor of a correlation matrix from its coordinates (torch's transform).

    ``x (D (D - 1) / 2,)`` row-major below the diagonal; fills ``factor (D, D)`` (``L``),
    ``radius`` (``r = tanh x``, clamped as torch clamps it) and ``remain`` (``s[i, j] =
    prod_{m<j} (1 - r[i, m]**2)``, so ``L[i, j] = r[i, j] sqrt(s[i, j])`` and ``L[i, i] =
    sqrt(s[i, i])``). Returns the log-Jacobian of ``x -> L``:
    ``sum_{i>j} [log(1 - tanh(x)**2) + log(s[i, j]) / 2]``.
    """
    dim = factor.shape[0]
    log_det = 0.0
    factor[:, :] = 0.0
    factor[0, 0] = 1.0
    remain[0, 0] = 1.0
    index = 0
    for i in range(1, dim):
        root = 1.0
        for j in range(i):
            value = x[index]
            index += 1
            r = min(max(math.tanh(value), -1.0 + _EPSILON), 1.0 - _EPSILON)
            radius[i, j] = r
            remain[i, j] = root * root
            factor[i, j] = r * root
            size = abs(value)
            log_det += 2.0 * (_LOG_TWO - size - math.log1p(math.exp(-2.0 * size)))
            log_det += math.log(root)
            root *= math.sqrt(1.0 - r * r)
        remain[i, i] = root * root
        factor[i, i] = root
    return log_det


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _factor_backward(upstream, factor, radius, remain, x, grad, jac):
    """Add ``dF/dx`` to ``grad`` from ``upstream = dF/dL`` (lower triangle).

    Runs each row's recursion backwards; ``jac`` times the log-Jacobian of
    :func:`_correlation_factor` is part of ``F``.
    """
    dim = factor.shape[0]
    for i in range(1, dim):
        carried = upstream[i, i] * 0.5 / factor[i, i]  # dF/ds[i, i]
        for j in range(i - 1, -1, -1):
            total = upstream[i, j] - 2.0 * factor[i, j] * carried  # dF/dL[i, j], all paths
            root = math.sqrt(remain[i, j])
            index = i * (i - 1) // 2 + j
            r = radius[i, j]
            grad[index] += total * root * (1.0 - r * r) - jac * 2.0 * math.tanh(x[index])
            carried += total * r * 0.5 / root
            if j > 0:
                carried += jac * 0.5 / remain[i, j]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _state_prior(
    mu, log_sigma, x, loc, scale, shape, rate, eta, jac, factor, radius, remain, inverse, grad
):
    """One state's prior (+ ``jac`` log-Jacobian) value; fills its gradient and the factors.

    ``grad`` is the state's ``(2 D + D (D - 1) / 2,)`` slice; ``inverse`` gets
    ``C^-1 = L^-1 diag(1 / sigma)``. Returns the value and ``log det C``.
    """
    dim = mu.shape[0]
    value = 0.0
    log_det = 0.0
    for d in range(dim):
        standard = (mu[d] - loc[d]) / scale[d]
        value += -0.5 * standard * standard
        grad[d] += -standard / scale[d]
        power = 2.0 * shape[d] + 1.0 - jac
        inv_var = math.exp(-2.0 * log_sigma[d])
        value += -power * log_sigma[d] - rate[d] * inv_var
        grad[dim + d] += -power + 2.0 * rate[d] * inv_var
        log_det += log_sigma[d]
    value += jac * _correlation_factor(x, factor, radius, remain)
    upstream = np.zeros((dim, dim))
    for i in range(1, dim):
        weight = 2.0 * (eta - 1.0) + jac * (dim - 1 - i)
        value += weight * math.log(factor[i, i])
        upstream[i, i] = weight / factor[i, i]
    _factor_backward(upstream, factor, radius, remain, x, grad[2 * dim :], jac)
    for i in range(dim):
        log_det += math.log(factor[i, i])
        for j in range(i + 1):  # forward substitution for L^-1, row by row
            acc = 1.0 if i == j else 0.0
            for m in range(j, i):
                acc -= factor[i, m] * inverse[m, j]
            inverse[i, j] = acc / factor[i, i]
    for i in range(dim):
        for j in range(i + 1):
            inverse[i, j] *= math.exp(-log_sigma[j])
    return value, log_det


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _state_likelihood(count, first, scatter, log_sigma, x, factor, radius, remain, inverse, grad):
    """Add one state's ``dQ`` (see the notes above) to its gradient slice ``grad``.

    Returns ``-tr(C^-1 M C^-T) / 2``.
    """
    dim = first.shape[0]
    precision = inverse.T @ inverse  # Sigma^-1
    gradient_mu = precision @ first
    sigma = np.exp(log_sigma)
    scaled = np.empty((dim, dim))
    corr_inverse = np.empty((dim, dim))
    trace = 0.0
    for i in range(dim):
        for j in range(dim):
            scaled[i, j] = scatter[i, j] / (sigma[i] * sigma[j])
            corr_inverse[i, j] = precision[i, j] * sigma[i] * sigma[j]
            trace += precision[i, j] * scatter[i, j]
    product = scaled @ corr_inverse
    for d in range(dim):
        grad[d] += gradient_mu[d]
        grad[dim + d] += product[d, d] - count
    upstream = corr_inverse @ product @ factor
    for i in range(dim):
        for j in range(i + 1, dim):
            upstream[i, j] = 0.0
        upstream[i, i] -= count / factor[i, i]
    _factor_backward(upstream, factor, radius, remain, x, grad[2 * dim :], 0.0)
    return -0.5 * trace


@numba.njit(cache=True, nogil=True, error_model="numpy")
def map_objective(theta, n, s1, s2, loc, scale, shape, rate, eta):
    """``Q + log prior`` (no constants) and its gradient, ``theta (K, 2 D + D (D - 1) / 2)``."""
    num, dim = s1.shape
    grad = np.zeros(theta.shape)
    factor = np.zeros((dim, dim))
    radius = np.zeros((dim, dim))
    remain = np.zeros((dim, dim))
    inverse = np.zeros((dim, dim))
    total = 0.0
    for k in range(num):
        mu = theta[k, :dim]
        log_sigma = theta[k, dim : 2 * dim]
        x = theta[k, 2 * dim :]
        value, log_det = _state_prior(
            mu,
            log_sigma,
            x,
            loc[k],
            scale[k],
            shape[k],
            rate[k],
            eta[k],
            0.0,
            factor,
            radius,
            remain,
            inverse,
            grad[k],
        )
        first = s1[k] - n[k] * mu
        scatter = s2[k] - np.outer(mu, s1[k]) - np.outer(s1[k], mu) + n[k] * np.outer(mu, mu)
        value += _state_likelihood(
            n[k], first, scatter, log_sigma, x, factor, radius, remain, inverse, grad[k]
        )
        total += value - n[k] * log_det
    return total, grad


# The potential: one unit per step (the whole vector). Coefficients per state: mu (D,), then
# C^-1 row-major (D * D,), then log det C + D log(2 pi) / 2; statistics per state: the weight,
# the weighted gaps y - mu (D,) and their outer products (D * D,).
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _start(theta, grad, jac, features, observed, loc, scale, shape, rate, eta):
    """Priors of every state (gradient into ``grad``), the emission table, the factors.

    The factors are the coefficients and ``factors (K, 4, D, D)``: each state's ``L``, ``r``,
    ``s`` (see :func:`_correlation_factor`) and ``C^-1``.
    """
    num, dim = loc.shape
    rows = _state_layout(theta, num, dim)
    state_grad = np.zeros(rows.shape)
    factors = np.zeros((num, 4, dim, dim))
    coefficients = np.empty((num, 1, dim + dim * dim + 1))
    value = 0.0
    for k in range(num):
        prior, log_det = _state_prior(
            rows[k, :dim],
            rows[k, dim : 2 * dim],
            rows[k, 2 * dim :],
            loc[k],
            scale[k],
            shape[k],
            rate[k],
            eta[k],
            jac,
            factors[k, 0],
            factors[k, 1],
            factors[k, 2],
            factors[k, 3],
            state_grad[k],
        )
        value += prior
        coefficients[k, 0, :dim] = rows[k, :dim]
        coefficients[k, 0, dim : dim + dim * dim] = factors[k, 3].ravel()
        coefficients[k, 0, dim + dim * dim] = log_det + dim * _HALF_LOG_TWO_PI
    _scatter_gradient(state_grad, grad, num, dim)
    table = fill_table(_log_density, coefficients, features, observed)
    return value, table, (coefficients, factors)


@numba.njit(inline="always", nogil=True, error_model="numpy")
def _log_density(c, f):
    """``-|C^-1 (y - mu)|**2 / 2 - log det C - D log(2 pi) / 2`` (``C^-1`` lower triangular)."""
    dim = f.shape[0]
    total = 0.0
    for i in range(dim):
        acc = 0.0
        for j in range(i + 1):
            acc += c[dim + i * dim + j] * (f[j] - c[j])
        total += acc * acc
    return -0.5 * total - c[dim + dim * dim]


@numba.njit(inline="always", nogil=True, error_model="numpy")
def _statistics(c, f, weight, out):
    """The weight, weighted gaps and the lower triangle of their outer products."""
    dim = f.shape[0]
    out[0] += weight
    for i in range(dim):
        gap = weight * (f[i] - c[i])
        out[1 + i] += gap
        for j in range(i + 1):
            out[1 + dim + i * dim + j] += gap * (f[j] - c[j])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _state_layout(flat, num, dim):
    """The potential's emission coordinates as rows ``(K, 2 D + D (D - 1) / 2)`` per state.

    The flat layout is three blocks (``mu``, ``log sigma``, ``x``), states in order in each.
    """
    pairs = dim * (dim - 1) // 2
    theta = np.empty((num, 2 * dim + pairs))
    for k in range(num):
        for d in range(dim):
            theta[k, d] = flat[k * dim + d]
            theta[k, dim + d] = flat[(num + k) * dim + d]
        for m in range(pairs):
            theta[k, 2 * dim + m] = flat[2 * num * dim + k * pairs + m]
    return theta


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _scatter_gradient(state_grad, out, num, dim):
    """Add per-state gradient rows back into the potential's layout (see :func:`_state_layout`)."""
    pairs = dim * (dim - 1) // 2
    for k in range(num):
        for d in range(dim):
            out[k * dim + d] += state_grad[k, d]
            out[(num + k) * dim + d] += state_grad[k, dim + d]
        for m in range(pairs):
            out[2 * num * dim + k * pairs + m] += state_grad[k, 2 * dim + m]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _finish(theta, context, gamma, features, observed, grad):
    """Add the likelihood's gradient from the weighted sums (the notes above)."""
    coefficients, factors = context
    num, dim = factors.shape[0], factors.shape[2]
    sums = weighted_sums(_statistics, 1 + dim + dim * dim, coefficients, features, observed, gamma)
    rows = _state_layout(theta, num, dim)
    state_grad = np.zeros(rows.shape)
    scatter = np.empty((dim, dim))
    for k in range(num):
        for i in range(dim):
            for j in range(i + 1):
                scatter[i, j] = scatter[j, i] = sums[k, 0, 1 + dim + i * dim + j]
        _state_likelihood(
            sums[k, 0, 0],
            sums[k, 0, 1 : 1 + dim],
            scatter,
            rows[k, dim : 2 * dim],
            rows[k, 2 * dim :],
            factors[k, 0],
            factors[k, 1],
            factors[k, 2],
            factors[k, 3],
            state_grad[k],
        )
    _scatter_gradient(state_grad, grad, num, dim)


MVNORMAL_KERNELS = EntryKernels(_start, _finish)
"""Full-covariance normal emissions for :func:`~hmm_pyro.kernels._numba.potentials.entry_potential`.

Coordinates ``mu`` and ``log sigma`` (``K * D`` each), then ``K`` blocks of ``D (D - 1) / 2``
correlation coordinates; ``hyper``: ``loc``, ``scale``, ``shape``, ``rate`` ``(K, D)`` (the
Gaussian's priors) and ``eta (K,)`` (LKJ concentrations); ``features (N, T, 1, D)`` (zero where
missing), ``observed (N, T, 1)`` (observed steps).
"""
