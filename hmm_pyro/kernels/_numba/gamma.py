"""Numba log joint of HMMs with gamma emissions (NUTS and MAP).

See :mod:`hmm_pyro.emissions.gamma`.

Coordinates after ``pi`` and ``A`` (:mod:`hmm_pyro.inference.coordinates`): ``log alpha`` then
``log beta`` (``K * D`` each). The emission table goes through the general lane sweeps
(:func:`~hmm_pyro.kernels._numba.lanes.lane_sweeps`, via the helpers of
:mod:`~hmm_pyro.kernels._numba.potentials`); the gradient comes from gamma-weighted sums of
``y`` and ``log y``. Conventions as in :mod:`~hmm_pyro.kernels._numba.potentials`.
"""

# Numba-compiled functions take untyped array arguments.
# ruff: noqa: ANN001, ANN202

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special

from hmm_pyro.kernels._numba.potentials import _add_lane_likelihood, _transition_part

__all__ = ["gamma_potential"]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _gamma_start(z, alpha_pi, alpha_A, a_c, b_c, a_r, b_r, values, logs, observed, jac):
    """Prior part (value and gradient), transition helpers and the emission table."""
    num, dim = a_c.shape
    grad = np.zeros(z.shape[0])
    value, log_pi, sig_pi, log_a, sig_a = _transition_part(z, alpha_pi, alpha_A, jac)
    offset = num - 1 + num * (num - 1)
    log_alpha = z[offset : offset + num * dim].reshape((num, dim))
    log_beta = z[offset + num * dim :].reshape((num, dim))
    alpha = np.exp(log_alpha)
    beta = np.exp(log_beta)
    head = np.empty((num, dim))
    for k in range(num):
        for d in range(dim):
            value += (a_c[k, d] - 1.0 + jac) * log_alpha[k, d] - b_c[k, d] * alpha[k, d]
            value += (a_r[k, d] - 1.0 + jac) * log_beta[k, d] - b_r[k, d] * beta[k, d]
            grad[offset + k * dim + d] = a_c[k, d] - 1.0 + jac - b_c[k, d] * alpha[k, d]
            grad[offset + (num + k) * dim + d] = a_r[k, d] - 1.0 + jac - b_r[k, d] * beta[k, d]
            head[k, d] = alpha[k, d] * log_beta[k, d] - math.lgamma(alpha[k, d])
    batch, steps = values.shape[0], values.shape[1]
    table = np.zeros((batch, steps, num))
    for n in range(batch):
        for t in range(steps):
            for k in range(num):
                acc = 0.0
                for d in range(dim):
                    if observed[n, t, d]:
                        acc += (
                            head[k, d]
                            + (alpha[k, d] - 1.0) * logs[n, t, d]
                            - beta[k, d] * values[n, t, d]
                        )
                table[n, t, k] = acc
    return value, grad, (log_pi, sig_pi, log_a, sig_a), table


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _gamma_moments(z, gamma, values, logs, observed, digamma, grad):
    """Add the likelihood's gradient in ``log alpha`` and ``log beta`` from gamma ``(T, K, N)``."""
    num, dim = digamma.shape
    offset = num - 1 + num * (num - 1)
    count = np.zeros((num, dim))
    total = np.zeros((num, dim))
    total_log = np.zeros((num, dim))
    for n in range(values.shape[0]):
        for t in range(values.shape[1]):
            for d in range(dim):
                if observed[n, t, d]:
                    for k in range(num):
                        weight = gamma[t, k, n]
                        count[k, d] += weight
                        total[k, d] += weight * values[n, t, d]
                        total_log[k, d] += weight * logs[n, t, d]
    for k in range(num):
        for d in range(dim):
            log_alpha = z[offset + k * dim + d]
            log_beta = z[offset + (num + k) * dim + d]
            alpha, beta = math.exp(log_alpha), math.exp(log_beta)
            grad[offset + k * dim + d] += alpha * (
                count[k, d] * (log_beta - digamma[k, d]) + total_log[k, d]
            )
            grad[offset + (num + k) * dim + d] += alpha * count[k, d] - beta * total[k, d]


def gamma_potential(z, alpha_pi, alpha_A, a_c, b_c, a_r, b_r, values, logs, observed, lengths, jac):
    """Gamma emissions: ``log concentration`` then ``log rate`` (each ``K * D``).

    ``a_c``, ``b_c`` (Gamma prior of the concentrations), ``a_r``, ``b_r`` (of the rates):
    ``(K, D)``; ``values (N, T, D)`` and their logs ``logs`` (zero where not observed),
    ``observed (N, T, D)`` bool (false at padded steps), ``lengths (N,)`` int64.
    """
    value, grad, head, table = _gamma_start(
        z, alpha_pi, alpha_A, a_c, b_c, a_r, b_r, values, logs, observed, jac
    )
    value, gamma = _add_lane_likelihood(value, grad, head, table, lengths, alpha_pi, alpha_A, jac)
    if gamma is not None:
        num, dim = a_c.shape
        offset = num - 1 + num * (num - 1)
        alpha = np.exp(z[offset : offset + num * dim].reshape((num, dim)))
        _gamma_moments(z, gamma, values, logs, observed, special.digamma(alpha), grad)
    return value, grad
