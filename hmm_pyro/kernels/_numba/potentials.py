"""Numba log joint and gradient of the HMM posterior over flat coordinates (NUTS and MAP).

Coordinates (:mod:`hmm_pyro.inference.coordinates`, flattened in the order ``pi``, ``A``,
emission parameters): stick-breaking rows for ``pi``, ``A`` and ``B``, then each family's own.
Each potential decodes the coordinates, adds the prior and log-Jacobian terms, runs the
forward-backward sweeps, and assembles the gradient in closed form from the expected counts
and gamma-weighted sums over the data. Categorical emissions take the symbol sweeps
(:func:`~hmm_pyro.kernels._numba.symbols.categorical_lanes`: one shifted row per symbol, no
exponential per step) in one compiled call (:func:`categorical_potential`; a single long
sequence on several threads takes the two-thread sweeps of :mod:`~hmm_pyro.kernels._numba.split`).

Every other numba family goes one route, :func:`entry_potential`: its log density is a sum
over *units* of a step (its coordinates, or the whole step for a joint law), each unit scored
by a per-entry numba function of per-state coefficients and per-step features. The family
(in :mod:`hmm_pyro.emissions`, which may import this layer, not the reverse) hands over two
functions as :class:`EntryKernels`: ``start`` (its prior, and the emission table from its
per-entry density by :func:`fill_table`) and ``finish`` (the likelihood's gradient from the
gamma-weighted sums of its per-entry statistics, :func:`weighted_sums`). The two loops over the
data are inlined into the family's compiled functions with its per-entry functions (no call
through a pointer; the family's functions stay cacheable).

Every potential is ``f(z, alpha_pi, alpha_A, *family arguments, jac) -> (value, gradient)``
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
from collections.abc import Callable
from typing import Any, NamedTuple

import numba
import numpy as np

from hmm_pyro.kernels._numba.split import sweeps, takes_split
from hmm_pyro.kernels._numba.symbol_sweeps import categorical_sweeps, lanes_in_halves
from hmm_pyro.kernels._numba.symbols import categorical_lanes, weighted_statistics

__all__ = [
    "EntryKernels",
    "categorical_potential",
    "entry_potential",
    "fill_table",
    "prior_simplex",
    "stick_gradient",
    "stick_rows",
    "weighted_sums",
]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _log_sigmoid(x):
    if x >= 0.0:
        return -math.log1p(math.exp(-x))
    return x - math.log1p(math.exp(x))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def stick_rows(x, width, rows, log_y, sig, jac):
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
def stick_gradient(counts, alpha, sig, out, offset, jac):
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
def prior_simplex(log_y, alpha):
    """``sum (alpha - 1) log y`` over Dirichlet rows (without their normalising constants)."""
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
    value = stick_rows(z[: num - 1], num, 1, log_pi, sig_pi, jac)
    value += stick_rows(z[num - 1 : num - 1 + num * (num - 1)], num, num, log_a, sig_a, jac)
    value += prior_simplex(log_pi, alpha_pi) + prior_simplex(log_a, alpha_A)
    return value, log_pi, sig_pi, log_a, sig_a


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _transition_gradient(start, pairs, alpha_pi, alpha_A, sig_pi, sig_a, grad, jac):
    """Gradient of ``pi`` and ``A`` from first-step gamma ``(K,)`` and summed xi ``(K, K)``."""
    num = alpha_A.shape[0]
    stick_gradient(start.reshape((1, num)), alpha_pi, sig_pi, grad, 0, jac)
    stick_gradient(pairs, alpha_A, sig_a, grad, num - 1, jac)


def categorical_potential(z, alpha_pi, alpha_A, alpha_B, symbols, lengths, jac):
    """Categorical emissions: stick-breaking rows of ``B`` after ``pi`` and ``A``.

    ``alpha_B (K, V)``; ``symbols (T, N)`` time-major, with ``V`` at unobserved and padded
    steps (:func:`~hmm_pyro.kernels._numba.symbols.time_major_symbols`); ``lengths (N,)``.
    One compiled call, except for the two shapes that
    :func:`~hmm_pyro.kernels._numba.symbol_sweeps.categorical_sweeps` cuts in two: a single
    long sequence (its forward and backward recursions) and a batch with enough work (two
    halves of its lanes, :func:`lanes_in_halves`), the two parts side by side with several
    numba threads and one after the other with one (the same bits either way).
    """
    steps, batch = symbols.shape
    split = takes_split(batch, steps, alpha_A.shape[0], True)
    if not split and not lanes_in_halves(batch, steps, alpha_A.shape[0]):
        return _categorical_lanes_potential(z, alpha_pi, alpha_A, alpha_B, symbols, lengths, jac)
    head = _categorical_head(z, alpha_pi, alpha_A, alpha_B, jac)
    result = categorical_sweeps(head[1][0], head[3], head[5], symbols, lengths, True)
    statistics = result.statistics(np.ones(batch), alpha_B.shape[1])
    return _categorical_tail(head, result.log_z, statistics, alpha_pi, alpha_A, alpha_B, jac)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _categorical_lanes_potential(z, alpha_pi, alpha_A, alpha_B, symbols, lengths, jac):
    """:func:`categorical_potential` with the lane sweeps, in one compiled call."""
    head = _categorical_head(z, alpha_pi, alpha_A, alpha_B, jac)
    # Emission rows looked up per symbol: V x K exponentials per call, none per step.
    log_z, gamma, lane_xi = categorical_lanes(head[1][0], head[3], head[5], symbols, lengths, True)
    weights = np.ones(log_z.shape[0])
    statistics = weighted_statistics(gamma, lane_xi, symbols, weights, alpha_B.shape[1])
    return _categorical_tail(head, log_z, statistics, alpha_pi, alpha_A, alpha_B, jac)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _categorical_head(z, alpha_pi, alpha_A, alpha_B, jac):
    """Decode ``pi``, ``A`` and ``B``: ``(value, log_pi, sig_pi, log_a, sig_a, log_b, sig_b)``."""
    num, symbols_count = alpha_B.shape
    value, log_pi, sig_pi, log_a, sig_a = _transition_part(z, alpha_pi, alpha_A, jac)
    offset_b = num - 1 + num * (num - 1)
    log_b = np.empty((num, symbols_count))
    sig_b = np.empty((num, symbols_count - 1))
    value += stick_rows(z[offset_b:], symbols_count, num, log_b, sig_b, jac)
    value += prior_simplex(log_b, alpha_B)
    return value, log_pi, sig_pi, log_a, sig_a, log_b, sig_b


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _categorical_tail(head, log_z, statistics, alpha_pi, alpha_A, alpha_B, jac):
    """The value and gradient from :func:`_categorical_head` and the sweeps' results.

    ``log_z (N,)``; ``statistics``: first-step gamma ``(K,)``, xi ``(K, K)`` and emission
    counts ``(K, V)`` summed over the sequences.
    """
    value, _, sig_pi, _, sig_a, _, sig_b = head
    num, symbols_count = alpha_B.shape
    offset_b = num - 1 + num * (num - 1)
    grad = np.zeros(offset_b + num * (symbols_count - 1))
    total = log_z.sum()
    if total == -math.inf:
        return -math.inf, grad
    start, xi, counts = statistics
    _transition_gradient(start, xi, alpha_pi, alpha_A, sig_pi, sig_a, grad, jac)
    stick_gradient(counts, alpha_B, sig_b, grad, offset_b, jac)
    return value + total, grad


def _add_lane_likelihood(value, grad, head, table, lengths, alpha_pi, alpha_A, jac):
    """Add the log likelihood of the emission ``table (N, T, K)`` and the ``pi``/``A`` gradient.

    ``head`` is :func:`_transition_part`'s ``(log_pi, sig_pi, log_a, sig_a)``. Returns the value
    and the time-major gamma ``(T, K, N)``, or ``-inf`` and ``None`` when some sequence has
    zero likelihood.
    """
    log_pi, sig_pi, log_a, sig_a = head
    log_z, gamma, xi, dead = sweeps(log_pi, log_a[None], table, lengths)
    if dead.any():
        return -math.inf, None
    start, pairs = gamma[0].sum(-1), xi.sum(-1)  # summed over the lanes
    _transition_gradient(start, pairs, alpha_pi, alpha_A, sig_pi, sig_a, grad, jac)
    return value + log_z.sum(), gamma


# ---------------------------------------------------------------------- per-entry families
@numba.njit(inline="always", nogil=True, error_model="numpy")
def fill_table(log_density, coefficients, features, observed):
    """The emission log likelihoods ``(N, T, K)`` of a family given by its per-entry density.

    ``table[n, t, k]`` is the sum over the observed units ``u`` of
    ``log_density(coefficients[k, u], features[n, t, u])``; ``coefficients (K, U, C)``,
    ``features (N, T, U, F)``, ``observed (N, T, U)``. Inlined into the family's compiled
    caller, which passes its own ``log_density`` (a numba function).
    """
    batch, steps, units = observed.shape
    num = coefficients.shape[0]
    table = np.zeros((batch, steps, num))
    for n in range(batch):
        for t in range(steps):
            for k in range(num):
                acc = 0.0
                for u in range(units):
                    if observed[n, t, u]:
                        acc += log_density(coefficients[k, u], features[n, t, u])
                table[n, t, k] = acc
    return table


@numba.njit(inline="always", nogil=True, error_model="numpy")
def weighted_sums(statistics, size, coefficients, features, observed, gamma):
    """Sums ``(K, U, size)`` of a family's per-entry statistics, weighted by gamma ``(T, K, N)``.

    ``statistics(coefficients[k, u], features[n, t, u], weight, out)`` adds ``weight`` times
    the entry's ``size`` statistics to ``out = sums[k, u]``, for each observed entry and state.
    Inlined like :func:`fill_table`.
    """
    batch, steps, units = observed.shape
    num = coefficients.shape[0]
    sums = np.zeros((num, units, size))
    for n in range(batch):
        for t in range(steps):
            for u in range(units):
                if observed[n, t, u]:
                    for k in range(num):
                        statistics(
                            coefficients[k, u], features[n, t, u], gamma[t, k, n], sums[k, u]
                        )
    return sums


class EntryKernels(NamedTuple):
    """A family's two pieces of :func:`entry_potential` (``theta``: its flat coordinates).

    Attributes
    ----------
    start : callable
        ``start(theta, grad, jac, features, observed, *hyper) -> (value, table, context)``: the
        prior's log density (plus ``jac`` times the log-Jacobian) with its gradient written into
        ``grad``, the emission table ``(N, T, K)`` (:func:`fill_table` with the family's
        per-entry log density and its coefficients) and what ``finish`` needs.
    finish : callable
        ``finish(theta, context, gamma, features, observed, grad)``: adds the likelihood's
        gradient to ``grad`` from the smoothed marginals ``gamma (T, K, N)`` (through
        :func:`weighted_sums` with the family's per-entry statistics).
    """

    start: Callable[..., tuple[float, np.ndarray, Any]]
    finish: Callable[..., None]


def entry_potential(z, alpha_pi, alpha_A, kernels, hyper, features, observed, lengths, jac):
    """The log joint of a family given per entry: its ``kernels`` on its arrays.

    ``kernels`` (:class:`EntryKernels`) after ``pi`` and ``A``; ``hyper`` the tuple of the
    family's prior arrays; ``features (N, T, U, F)``, ``observed (N, T, U)`` bool (false at
    padded steps), ``lengths (N,)`` int64.
    """
    num = alpha_A.shape[0]
    offset = num - 1 + num * (num - 1)
    grad = np.zeros(z.shape[0])
    value, log_pi, sig_pi, log_a, sig_a = _transition_part(z, alpha_pi, alpha_A, jac)
    theta, emission_grad = z[offset:], grad[offset:]
    prior, table, context = kernels.start(theta, emission_grad, jac, features, observed, *hyper)
    head = (log_pi, sig_pi, log_a, sig_a)
    value, gamma = _add_lane_likelihood(
        value + prior, grad, head, table, lengths, alpha_pi, alpha_A, jac
    )
    if gamma is not None:
        kernels.finish(theta, context, gamma, features, observed, emission_grad)
    return value, grad
