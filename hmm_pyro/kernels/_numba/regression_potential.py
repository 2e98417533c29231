"""Numba log joint and gradient of a covariate HMM's posterior (NUTS and MAP).

The potential of a :class:`~hmm_pyro.CovariateHMM` whose emission family is given per entry
(:func:`~hmm_pyro.kernels._numba.potentials.entry_potential`'s families,
:func:`regression_entry_potential`) or categorical (:func:`regression_categorical_potential`:
``B``'s rows by stick-breaking, its table looked up per symbol, its gradient from the
expected counts): the same closed-form route as a homogeneous HMM's, with the transition
rows' regression in place of ``A``.

Coordinates, in order: the initial distribution's, the off-diagonal transition coefficients
``beta_A[i, j, :]`` for ``j != i`` as they are (``(K, K - 1, P)`` row-major, the diagonal
being the zeros of each row's reference category), then the family's. The initial
distribution's are either ``pi``'s stick-breaking coordinates (``K - 1``), or, with initial
covariates ``w_n`` (the first step's, intercept in front, ``Q`` columns), the coordinates
``u (K - 1, Q)`` of ``beta_pi = H u`` (``H`` the ``(K, K - 1)`` Helmert basis: columns of
``beta_pi`` summing to zero), ``pi_n = softmax(beta_pi w_n)``.

- Prior: ``pi``'s Dirichlet rows with the stick-breaking log-Jacobian, as
  :func:`~hmm_pyro.kernels._numba.potentials.entry_potential`, or ``u ~ Normal(0, scale)``;
  independent ``Normal(loc, scale)`` transition coefficients (the normalising constants are
  the caller's);
- likelihood: :func:`~hmm_pyro.kernels._numba.regression.regression_sweeps` on the family's
  emission table, which returns the gradient with respect to the coefficients and gamma;
- gradient: ``pi`` from the first step's summed gamma (with initial covariates
  ``d/d beta_pi = sum_n (gamma_n0 - pi_n) w_n'`` and ``d/du = H' d/d beta_pi``), the
  coefficients from the sweeps (the diagonal's dropped), the family's from gamma (its
  ``finish``).

Same signature as the other potentials, ``f(z, alpha_pi, alpha_A, *arguments, jac) -> (value,
gradient)``; ``alpha_A`` is not read (no Dirichlet rows on the transitions), nor ``alpha_pi``
with initial covariates. The value is ``-inf`` where some sequence has zero likelihood.
Everything is float64.
"""

# Numba-compiled functions take untyped array arguments.
# ruff: noqa: ANN001, ANN202

from __future__ import annotations

import math

import numba
import numpy as np

from hmm_pyro.kernels._numba.potentials import prior_simplex, stick_gradient, stick_rows
from hmm_pyro.kernels._numba.regression import regression_sweeps
from hmm_pyro.kernels._numba.symbols import weighted_statistics

__all__ = ["regression_categorical_potential", "regression_entry_potential"]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _initial_regression(z, helmert, initial_scale, first, grad):
    """Decode ``u``: ``log pi (N, K)`` of every sequence, ``pi``, and ``u``'s Normal prior.

    The prior's gradient goes into ``grad``; returns ``(value, log_pi, pi)``.
    """
    num, columns, batch = helmert.shape[0], first.shape[1], first.shape[0]
    beta = np.zeros((num, columns))
    value = 0.0
    for m in range(num - 1):
        for q in range(columns):
            u = z[m * columns + q]
            value -= 0.5 * (u / initial_scale[q]) ** 2
            grad[m * columns + q] = -u / initial_scale[q] ** 2
            for k in range(num):
                beta[k, q] += helmert[k, m] * u
    log_pi = np.empty((batch, num))
    pi = np.empty((batch, num))
    for n in range(batch):
        largest = -math.inf
        for k in range(num):
            eta = 0.0
            for q in range(columns):
                eta += beta[k, q] * first[n, q]
            log_pi[n, k] = eta
            largest = max(largest, eta)
        total = 0.0
        for k in range(num):
            total += math.exp(log_pi[n, k] - largest)
        shift = largest + math.log(total)
        for k in range(num):
            log_pi[n, k] -= shift
            pi[n, k] = math.exp(log_pi[n, k])
    return value, log_pi, pi


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _initial_regression_gradient(helmert, first, pi, gamma, grad):
    """Add ``d/du`` of the log likelihood: ``H' sum_n (gamma_n0 - pi_n) w_n'``."""
    num, columns, batch = helmert.shape[0], first.shape[1], first.shape[0]
    beta_grad = np.zeros((num, columns))
    for n in range(batch):
        for k in range(num):
            weight = gamma[0, k, n] - pi[n, k]
            for q in range(columns):
                beta_grad[k, q] += weight * first[n, q]
    for m in range(num - 1):
        for q in range(columns):
            total = 0.0
            for k in range(num):
                total += helmert[k, m] * beta_grad[k, q]
            grad[m * columns + q] += total


def _transition_coefficients(z, start, loc, scale, grad):
    """Decode ``beta_A`` from ``z[start:]``; its prior (gradient into ``grad``).

    The coordinates are the off-diagonal entries in row-major ``(i, j)`` order, which is the
    order of a boolean mask of the off-diagonal cells. Returns ``(value, coefficients (K, K,
    P))``.
    """
    num, covariates = loc.shape[0], loc.shape[2]
    off_diagonal = ~np.eye(num, dtype=np.bool_)
    stop = start + num * (num - 1) * covariates
    beta = z[start:stop].reshape(num * (num - 1), covariates)
    standard = (beta - loc[off_diagonal]) / scale[off_diagonal]
    grad[start:stop] = (-standard / scale[off_diagonal]).reshape(-1)
    coefficients = np.zeros((num, num, covariates))
    coefficients[off_diagonal] = beta
    return -0.5 * float((standard * standard).sum()), coefficients


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _stick_initial_gradient(grad, alpha_pi, sig_pi, gamma, jac):
    """Add the gradient of ``pi``'s stick-breaking coordinates (first-step gamma ``(T, K, N)``)."""
    num = alpha_pi.shape[1]
    start = np.zeros((1, num))
    for k in range(num):
        for n in range(gamma.shape[2]):
            start[0, k] += gamma[0, k, n]
    stick_gradient(start, alpha_pi, sig_pi, grad, 0, jac)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _symbol_table(log_b, symbols):
    """Emission log likelihoods ``(N, T, K)`` of time-major ``symbols (T, N)``.

    ``log_b[k, s]`` for symbol ``s``; zero where the symbol is ``V`` (missing or padded).
    """
    steps, batch = symbols.shape
    num, count = log_b.shape
    table = np.zeros((batch, steps, num))
    for n in range(batch):
        for t in range(steps):
            symbol = symbols[t, n]
            if symbol < count:
                for k in range(num):
                    table[n, t, k] = log_b[k, symbol]
    return table


def _transition_head(z, alpha_pi, initial, loc, scale, grad, jac):
    """Decode the initial distribution and ``beta_A``; their prior and what the rest needs.

    Returns ``(value, log_pi, coefficients, offset of the emission coordinates, context)``.
    """
    num, covariates = loc.shape[0], loc.shape[2]
    if initial:
        helmert, initial_scale, first = initial
        start = (num - 1) * first.shape[1]
        value, log_pi, pi = _initial_regression(z, helmert, initial_scale, first, grad)
        context = (start, pi)
    else:
        start = num - 1
        log_pi, sig_pi = np.empty((1, num)), np.empty((1, num - 1))
        value = stick_rows(z[:start], num, 1, log_pi, sig_pi, jac)
        value += prior_simplex(log_pi, alpha_pi)
        context = (start, sig_pi)
    prior_A, coefficients = _transition_coefficients(z, start, loc, scale, grad)
    offset = start + num * (num - 1) * covariates
    return value + prior_A, log_pi, coefficients, offset, context


def _transition_tail(grad, alpha_pi, initial, context, gamma, coefficient_grad, jac):
    """Add the likelihood's gradient of the initial distribution and of ``beta_A``."""
    start, extra = context
    if initial:
        helmert, _, first = initial
        _initial_regression_gradient(helmert, first, extra, gamma, grad)
    else:
        _stick_initial_gradient(grad, alpha_pi, extra, gamma, jac)
    num = coefficient_grad.shape[1]
    entries = coefficient_grad[0][~np.eye(num, dtype=np.bool_)].reshape(-1)  # (i, j) row-major
    grad[start : start + entries.size] += entries


def regression_entry_potential(
    z,
    alpha_pi,
    alpha_A,
    initial,
    loc,
    scale,
    design,
    kernels,
    hyper,
    features,
    observed,
    lengths,
    jac,
):
    """The log joint of a covariate HMM with a per-entry emission family (module notes).

    ``initial``: ``()`` for ``pi`` a simplex (``alpha_pi (1, K)`` its concentrations), or
    ``(helmert (K, K - 1), initial_scale (Q,), first (N, Q))`` for initial covariates;
    ``loc``, ``scale (K, K, P)`` the transition coefficients' Normal priors; ``design (M, T,
    P)`` the covariates of each step's transition (intercept column included; sequence ``n``
    reads row ``n % M``); ``kernels``, ``hyper``, ``features``, ``observed``, ``lengths`` as
    :func:`~hmm_pyro.kernels._numba.potentials.entry_potential` takes them.
    """
    grad = np.zeros(z.shape[0])
    value, log_pi, coefficients, offset, context = _transition_head(
        z, alpha_pi, initial, loc, scale, grad, jac
    )
    theta, emission_grad = z[offset:], grad[offset:]
    prior, table, emission = kernels.start(theta, emission_grad, jac, features, observed, *hyper)
    log_z, gamma, coefficient_grad = regression_sweeps(
        log_pi, coefficients[None], design, table, lengths, lengths.shape[0]
    )
    total = float(log_z.sum())
    if not math.isfinite(total):
        return -math.inf, grad
    time_major = gamma.transpose(1, 2, 0)  # the sweeps' own (T, K, N) array
    _transition_tail(grad, alpha_pi, initial, context, time_major, coefficient_grad, jac)
    kernels.finish(theta, emission, time_major, features, observed, emission_grad)
    return value + prior + total, grad


def regression_categorical_potential(
    z, alpha_pi, alpha_A, initial, loc, scale, design, alpha_B, symbols, lengths, jac
):
    """The log joint of a covariate HMM with categorical emissions (module notes).

    ``initial``, ``loc``, ``scale``, ``design`` as :func:`regression_entry_potential`;
    ``alpha_B (K, V)`` the Dirichlet rows of ``B`` (stick-breaking coordinates after the
    transitions'), ``symbols (T, N)`` time-major with ``V`` at missing and padded steps, and
    ``lengths`` as :func:`~hmm_pyro.kernels._numba.potentials.categorical_potential` takes
    them.
    """
    num, count = alpha_B.shape
    grad = np.zeros(z.shape[0])
    value, log_pi, coefficients, offset, context = _transition_head(
        z, alpha_pi, initial, loc, scale, grad, jac
    )
    log_b, sig_b = np.empty((num, count)), np.empty((num, count - 1))
    value += stick_rows(z[offset:], count, num, log_b, sig_b, jac)
    value += prior_simplex(log_b, alpha_B)
    log_z, gamma, coefficient_grad = regression_sweeps(
        log_pi, coefficients[None], design, _symbol_table(log_b, symbols), lengths, lengths.shape[0]
    )
    total = float(log_z.sum())
    if not math.isfinite(total):
        return -math.inf, grad
    time_major = gamma.transpose(1, 2, 0)
    _transition_tail(grad, alpha_pi, initial, context, time_major, coefficient_grad, jac)
    # the expected emission counts, as the homogeneous categorical potential takes them (the
    # regression kernel has no lane xi: zeros, which only fill the unused pair counts)
    batch = time_major.shape[2]
    no_pairs = np.zeros((num, num, batch))
    counts = weighted_statistics(time_major, no_pairs, symbols, np.ones(batch), count)[2]
    stick_gradient(counts, alpha_B, sig_b, grad, offset, jac)
    return value + total, grad
