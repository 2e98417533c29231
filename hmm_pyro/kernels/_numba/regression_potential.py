"""Numba log joint and gradient of a covariate HMM's posterior (NUTS and MAP).

The potential of a :class:`~hmm_pyro.CovariateHMM` whose initial distribution is a simplex
(no initial covariates) and whose emission family is given per entry
(:func:`~hmm_pyro.kernels._numba.potentials.entry_potential`'s families): the same closed-form
route as a homogeneous HMM's, with the transition rows' regression in place of ``A``.
Coordinates, in order: ``pi`` by stick-breaking (``K - 1``), the off-diagonal transition
coefficients ``beta_A[i, j, :]`` for ``j != i`` as they are (``(K, K - 1, P)`` row-major, the
diagonal being the zeros of each row's reference category), then the family's.

- Prior: ``pi``'s Dirichlet rows with the stick-breaking log-Jacobian, as
  :func:`~hmm_pyro.kernels._numba.potentials.entry_potential`; independent
  ``Normal(loc, scale)`` coefficients (their normalising constants are the caller's);
- likelihood: :func:`~hmm_pyro.kernels._numba.regression.regression_sweeps` on the family's
  emission table, which returns the gradient with respect to the coefficients and gamma;
- gradient: ``pi`` from the first step's summed gamma, the coefficients from the sweeps (the
  diagonal's dropped), the family's from gamma (its ``finish``).

Same signature as the other potentials, ``f(z, alpha_pi, alpha_A, *arguments, jac) -> (value,
gradient)``; ``alpha_A`` is not read (no Dirichlet rows on the transitions). The value is
``-inf`` where some sequence has zero likelihood. Everything is float64.
"""

# Numba-compiled functions take untyped array arguments.
# ruff: noqa: ANN001, ANN202

from __future__ import annotations

import math

import numba
import numpy as np

from hmm_pyro.kernels._numba.potentials import _prior_simplex, _stick_gradient, _stick_rows
from hmm_pyro.kernels._numba.regression import regression_sweeps

__all__ = ["regression_entry_potential"]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _regression_head(z, alpha_pi, loc, scale, grad, jac):
    """Decode ``pi`` and ``beta_A``; the prior (gradient of the coefficients' into ``grad``).

    Returns ``(value, log_pi (1, K), sig_pi, coefficients (K, K, P))``.
    """
    num, covariates = loc.shape[0], loc.shape[2]
    log_pi = np.empty((1, num))
    sig_pi = np.empty((1, num - 1))
    value = _stick_rows(z[: num - 1], num, 1, log_pi, sig_pi, jac)
    value += _prior_simplex(log_pi, alpha_pi)
    coefficients = np.zeros((num, num, covariates))
    index = num - 1
    for i in range(num):
        for j in range(num):
            if j == i:
                continue
            for p in range(covariates):
                beta = z[index]
                standard = (beta - loc[i, j, p]) / scale[i, j, p]
                value -= 0.5 * standard * standard
                grad[index] = -standard / scale[i, j, p]
                coefficients[i, j, p] = beta
                index += 1
    return value, log_pi, sig_pi, coefficients


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _regression_tail(grad, alpha_pi, sig_pi, gamma, coefficient_grad, jac):
    """Add the likelihood's gradient of ``pi`` (first-step gamma ``(T, K, N)``) and ``beta_A``."""
    num, covariates = coefficient_grad.shape[1], coefficient_grad.shape[3]
    start = np.zeros((1, num))
    for k in range(num):
        for n in range(gamma.shape[2]):
            start[0, k] += gamma[0, k, n]
    _stick_gradient(start, alpha_pi, sig_pi, grad, 0, jac)
    index = num - 1
    for i in range(num):
        for j in range(num):
            if j == i:
                continue
            for p in range(covariates):
                grad[index] += coefficient_grad[0, i, j, p]
                index += 1


def regression_entry_potential(
    z, alpha_pi, alpha_A, loc, scale, design, kernels, hyper, features, observed, lengths, jac
):
    """The log joint of a covariate HMM with a per-entry emission family (module notes).

    ``loc``, ``scale (K, K, P)`` the coefficients' Normal priors; ``design (M, T, P)`` the
    covariates of each step's transition (intercept column included; sequence ``n`` reads row
    ``n % M``); ``kernels``, ``hyper``, ``features``, ``observed``, ``lengths`` as
    :func:`~hmm_pyro.kernels._numba.potentials.entry_potential` takes them.
    """
    num, covariates = loc.shape[0], loc.shape[2]
    offset = num - 1 + num * (num - 1) * covariates
    grad = np.zeros(z.shape[0])
    value, log_pi, sig_pi, coefficients = _regression_head(z, alpha_pi, loc, scale, grad, jac)
    theta, emission_grad = z[offset:], grad[offset:]
    prior, table, context = kernels.start(theta, emission_grad, jac, features, observed, *hyper)
    log_z, gamma, coefficient_grad = regression_sweeps(
        log_pi, coefficients[None], design, table, lengths, lengths.shape[0]
    )
    total = float(log_z.sum())
    if not math.isfinite(total):
        return -math.inf, grad
    time_major = gamma.transpose(1, 2, 0)  # the sweeps' own (T, K, N) array
    _regression_tail(grad, alpha_pi, sig_pi, time_major, coefficient_grad, jac)
    kernels.finish(theta, context, time_major, features, observed, emission_grad)
    return value + prior + total, grad
