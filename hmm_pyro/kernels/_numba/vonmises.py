"""Numba log joint of HMMs with von Mises emissions (NUTS and MAP).

See :mod:`hmm_pyro.emissions.vonmises`.

Coordinates after ``pi`` and ``A``: ``mu`` (as is; the density is periodic in it) then
``log kappa`` (``K * D`` each). ``log I0(kappa)`` and ``A(kappa) = I1 / I0`` of the ``K * D``
concentrations are evaluated once per call with scipy's exponentially scaled Bessel functions;
the gradient comes from gamma-weighted sums of ``cos y`` and ``sin y``. Conventions as in
:mod:`~hmm_pyro.kernels._numba.potentials`.
"""

# Numba-compiled functions take untyped array arguments.
# ruff: noqa: ANN001, ANN202

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special

from hmm_pyro.kernels._numba.potentials import _add_lane_likelihood, _transition_part

__all__ = ["von_mises_potential"]

_LOG_TWO_PI = math.log(2.0 * math.pi)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _von_mises_start(
    z, alpha_pi, alpha_A, loc, weight, shape, rate, cosines, sines, observed, log_norm, jac
):
    """Prior part (value and gradient), transition helpers and the emission table.

    ``log_norm (K, D)`` is ``log(2 pi) + log I0(kappa)``.
    """
    num, dim = loc.shape
    grad = np.zeros(z.shape[0])
    value, log_pi, sig_pi, log_a, sig_a = _transition_part(z, alpha_pi, alpha_A, jac)
    offset = num - 1 + num * (num - 1)
    mu = z[offset : offset + num * dim].reshape((num, dim))
    log_kappa = z[offset + num * dim :].reshape((num, dim))
    kappa_cos = np.empty((num, dim))
    kappa_sin = np.empty((num, dim))
    for k in range(num):
        for d in range(dim):
            kappa = math.exp(log_kappa[k, d])
            gap = mu[k, d] - loc[k, d]
            value += weight[k, d] * math.cos(gap)
            grad[offset + k * dim + d] = -weight[k, d] * math.sin(gap)
            value += (shape[k, d] - 1.0 + jac) * log_kappa[k, d] - rate[k, d] * kappa
            grad[offset + (num + k) * dim + d] = shape[k, d] - 1.0 + jac - rate[k, d] * kappa
            kappa_cos[k, d] = kappa * math.cos(mu[k, d])
            kappa_sin[k, d] = kappa * math.sin(mu[k, d])
    batch, steps = cosines.shape[0], cosines.shape[1]
    table = np.zeros((batch, steps, num))
    for n in range(batch):
        for t in range(steps):
            for k in range(num):
                acc = 0.0
                for d in range(dim):
                    if observed[n, t, d]:
                        acc += (
                            kappa_cos[k, d] * cosines[n, t, d]
                            + kappa_sin[k, d] * sines[n, t, d]
                            - log_norm[k, d]
                        )
                table[n, t, k] = acc
    return value, grad, (log_pi, sig_pi, log_a, sig_a), table


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _von_mises_moments(z, gamma, cosines, sines, observed, resultant, grad):
    """Add the likelihood's gradient in ``mu`` and ``log kappa`` from gamma ``(T, K, N)``.

    ``resultant (K, D)`` is ``A(kappa)``.
    """
    num, dim = resultant.shape
    offset = num - 1 + num * (num - 1)
    count = np.zeros((num, dim))
    total_cos = np.zeros((num, dim))
    total_sin = np.zeros((num, dim))
    for n in range(cosines.shape[0]):
        for t in range(cosines.shape[1]):
            for d in range(dim):
                if observed[n, t, d]:
                    for k in range(num):
                        weight = gamma[t, k, n]
                        count[k, d] += weight
                        total_cos[k, d] += weight * cosines[n, t, d]
                        total_sin[k, d] += weight * sines[n, t, d]
    for k in range(num):
        for d in range(dim):
            mu = z[offset + k * dim + d]
            kappa = math.exp(z[offset + (num + k) * dim + d])
            cos_mu, sin_mu = math.cos(mu), math.sin(mu)
            grad[offset + k * dim + d] += kappa * (
                total_sin[k, d] * cos_mu - total_cos[k, d] * sin_mu
            )
            projection = total_cos[k, d] * cos_mu + total_sin[k, d] * sin_mu
            grad[offset + (num + k) * dim + d] += kappa * (
                projection - count[k, d] * resultant[k, d]
            )


def von_mises_potential(
    z, alpha_pi, alpha_A, loc, weight, shape, rate, cosines, sines, observed, lengths, jac
):
    """Von Mises emissions: ``mu`` then ``log kappa`` (each ``K * D``) after ``pi`` and ``A``.

    ``loc``, ``weight`` (von Mises prior of ``mu``), ``shape``, ``rate`` (Gamma prior of
    ``kappa``): ``(K, D)``; ``cosines``, ``sines (N, T, D)`` of the angles (zero where not
    observed), ``observed (N, T, D)`` bool (false at padded steps), ``lengths (N,)`` int64.
    """
    num, dim = loc.shape
    offset = num - 1 + num * (num - 1)
    kappa = np.exp(z[offset + num * dim :].reshape((num, dim)))
    scaled_i0 = special.i0e(kappa)
    log_norm = _LOG_TWO_PI + np.log(scaled_i0) + kappa
    value, grad, head, table = _von_mises_start(
        z, alpha_pi, alpha_A, loc, weight, shape, rate, cosines, sines, observed, log_norm, jac
    )
    value, gamma = _add_lane_likelihood(value, grad, head, table, lengths, alpha_pi, alpha_A, jac)
    if gamma is not None:
        resultant = special.i1e(kappa) / scaled_i0
        _von_mises_moments(z, gamma, cosines, sines, observed, resultant, grad)
    return value, grad
