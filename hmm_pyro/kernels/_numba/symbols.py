"""Numba forward-backward of symbol sequences: emission rows looked up per symbol.

For categorical emissions the ``(T, K, N)`` emission array has only ``V`` distinct rows: the
sweeps here take one shifted row per symbol (one exponential per symbol and state, none per
step) and the time-major symbols. Up to :data:`UNROLLED_STATES` states they are compiled for
each ``K``; above, the general lane sweeps of :mod:`~hmm_pyro.kernels._numba.lanes` run on
the looked-up rows. Same conventions as those (Rabiner 1989, section V.A; scale factors folded
into the log likelihood below :data:`~hmm_pyro.kernels._numba.lanes.FLUSH_BELOW`).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.np.unsafe.ndarray import to_fixed_tuple

from hmm_pyro.kernels._numba.lanes import FLUSH_BELOW, backward_sweep, fold_lane, forward_sweep

__all__ = [
    "UNROLLED_STATES",
    "categorical_lanes",
    "probability_gradients",
    "symbol_forward_backward",
    "symbol_rows",
    "time_major_symbols",
    "weighted_statistics",
]

UNROLLED_STATES = 4
"""Up to this many states the categorical sweeps are compiled for each ``K`` (state loops
unrolled, the transition matrix in registers, fewer passes per step); measured on
20 x 500 steps, K = 3: :func:`categorical_lanes` 0.14-0.17 -> 0.10 ms, the counts in
:func:`weighted_statistics` 0.033 -> 0.018 ms. With K = 10 unrolling was 2.5x slower."""


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _unrolled_forward(pi, trans, rows, symbols, lengths, alpha, scale, log_z, dead):  # noqa: ANN001, ANN202
    """:func:`forward_sweep` for a few states given as tuples (``pi`` K, ``trans`` K * K).

    The tuple sizes make ``K`` a compile-time constant: the state loops unroll, the transition
    probabilities stay in registers, and each step is one loop over the (independent) lanes,
    the emission rows looked up per symbol on the way (no ``(T, K, N)`` emission array).
    LLVM does not turn these loops into SIMD code (checked in the assembly); the gain is
    from the unrolling and from fewer passes per step.

    Each step's normalisation is folded into the next step's loop, so ``alpha[t]`` is left
    unnormalised, and ``scale[t]`` receives the *inverse* of the scale factor actually applied
    (1 at padded steps and for a dead lane): the filtered distribution is
    ``alpha[t] * scale[t]``. (Inverses spare the backward sweep two divisions per step.)
    """
    num_states = len(pi)
    steps, batch = symbols.shape
    inverse = np.ones(batch)
    product = np.ones(batch)
    redo = np.zeros(batch, dtype=np.bool_)
    totals = np.empty(batch)
    for t in range(steps):
        for b in range(batch):
            symbol = symbols[t, b]
            accumulated = 0.0
            for j in range(num_states):
                if t == 0:
                    value = pi[j]
                else:
                    value = 0.0
                    for i in range(num_states):
                        value += alpha[t - 1, i, b] * trans[i * num_states + j]
                value *= rows[symbol, j] * inverse[b]
                alpha[t, j, b] = value
                accumulated += value
            totals[b] = accumulated
        # Without branches for the usual lanes; a lane whose scale needs a log (or is zero)
        # is redone by the general rule below.
        unusual = False
        for b in range(batch):
            factor = totals[b]
            valid = t < lengths[b]
            small = not factor > FLUSH_BELOW  # NaN too, as in lanes._accumulate_scale
            risky = valid & (small | (product[b] * factor < FLUSH_BELOW))
            unusual |= risky
            redo[b] = risky
            factor = factor if valid else 1.0
            product[b] = product[b] if risky else product[b] * factor
            inverse[b] = 1.0 / factor
            scale[t, b] = inverse[b]
        if unusual:
            for b in range(batch):
                if redo[b]:
                    inverse[b] = 1.0 / fold_lane(b, totals[b], product, log_z, dead)
                    scale[t, b] = inverse[b]
    for b in range(batch):
        log_z[b] += math.log(product[b])


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _unrolled_backward(pi, trans, rows, symbols, lengths, alpha, scale, xi):  # noqa: ANN001, ANN202
    """:func:`backward_sweep` after :func:`_unrolled_forward`; gamma over ``alpha``.

    ``pi`` and ``trans`` are tuples as in :func:`_unrolled_forward` (``pi`` only gives ``K``).
    """
    num_states = len(pi)
    steps, batch = symbols.shape
    # ahead[parity, j, b]: emission x scaled beta of step t + 1, divided by its scale; written
    # by step t + 1 for step t (two buffers: step t reads all of one while writing the other)
    ahead = np.empty((2, num_states, batch))
    last = steps - 1
    for b in range(batch):
        inverse = scale[last, b] if last < lengths[b] else 0.0
        symbol = symbols[last, b]
        for k in range(num_states):
            alpha[last, k, b] *= inverse
            ahead[last % 2, k, b] = rows[symbol, k] * inverse  # beta = 1 at the last step
    for t in range(steps - 2, -1, -1):
        reading, writing = (t + 1) % 2, t % 2
        for b in range(batch):
            live, valid = t + 1 < lengths[b], t < lengths[b]
            inverse = scale[t, b]
            symbol = symbols[t, b]
            for i in range(num_states):
                current = alpha[t, i, b] * inverse  # the filtered distribution
                following = 0.0
                for j in range(num_states):
                    weight = trans[i * num_states + j] * ahead[reading, j, b]
                    following += weight
                    xi[i, j, b] += current * weight
                # the last real step of a sequence (or a padded one) starts with beta = 1
                following = following if live else 1.0
                alpha[t, i, b] = current * following if valid else 0.0
                ahead[writing, i, b] = rows[symbol, i] * following * (inverse if valid else 0.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _unrolled_sweeps(pi, trans, rows, symbols, lengths, alpha, scale, log_z, dead, xi, backward):  # noqa: ANN001, ANN202
    """Both unrolled sweeps for ``K <= UNROLLED_STATES`` (``pi (K,)``, ``trans (K, K)`` arrays)."""
    arrays = (rows, symbols, lengths, alpha, scale, log_z, dead, xi, backward)
    flat = trans.ravel()
    if pi.shape[0] == 1:
        _unrolled_pair(to_fixed_tuple(pi, 1), to_fixed_tuple(flat, 1), arrays)
    elif pi.shape[0] == 2:
        _unrolled_pair(to_fixed_tuple(pi, 2), to_fixed_tuple(flat, 4), arrays)
    elif pi.shape[0] == 3:
        _unrolled_pair(to_fixed_tuple(pi, 3), to_fixed_tuple(flat, 9), arrays)
    else:
        _unrolled_pair(to_fixed_tuple(pi, 4), to_fixed_tuple(flat, 16), arrays)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _unrolled_pair(pi, trans, arrays):  # noqa: ANN001, ANN202
    rows, symbols, lengths, alpha, scale, log_z, dead, xi, backward = arrays
    _unrolled_forward(pi, trans, rows, symbols, lengths, alpha, scale, log_z, dead)
    if backward:
        _unrolled_backward(pi, trans, rows, symbols, lengths, alpha, scale, xi)
        return
    steps, num_states, batch = alpha.shape
    for t in range(steps):  # the filtered distributions, as forward_sweep leaves them
        for k in range(num_states):
            for b in range(batch):
                alpha[t, k, b] *= scale[t, b]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def symbol_forward_backward(pi, trans, symbol_emis, symbol_shift, symbols, lengths, backward):  # noqa: ANN001, ANN202
    """Forward(-backward) of sequences of symbols, emissions looked up per symbol.

    Parameters: ``pi (K,)`` and ``trans (K, K)`` in probability space, ``symbol_emis (S, K)``
    the shifted emission probabilities of each symbol row (``exp(log B[:, v] - shift_v)``),
    ``symbol_shift (S,)`` the shifts, ``symbols (T, N)`` time-major row indices (padded steps
    must point at a row of ones with shift 0), ``lengths (N,)``. No exponential per step.
    Up to :data:`UNROLLED_STATES` states the sweeps are compiled for each ``K``.

    Returns ``log_z (N,)``, ``gamma (T, K, N)`` (the scaled alpha without ``backward``),
    summed ``xi (K, K, N)`` (zeros without ``backward``) and ``dead (N,)``: lanes of zero
    likelihood, whose ``log_z``, gamma and xi are left undefined for the caller to clear.
    """
    steps, batch = symbols.shape
    num_states = trans.shape[0]
    log_z = np.zeros(batch)
    for t in range(steps):
        for n in range(batch):
            log_z[n] += symbol_shift[symbols[t, n]]  # zero at unobserved and padded steps
    alpha = np.empty((steps, num_states, batch))
    scale = np.empty((steps, batch))
    dead = np.zeros(batch, dtype=np.bool_)
    xi = np.zeros((num_states, num_states, batch))
    if num_states <= UNROLLED_STATES:
        _unrolled_sweeps(
            pi, trans, symbol_emis, symbols, lengths, alpha, scale, log_z, dead, xi, backward
        )
        return log_z, alpha, xi, dead
    emis = np.empty((steps, num_states, batch))
    for t in range(steps):
        for k in range(num_states):
            for n in range(batch):
                emis[t, k, n] = symbol_emis[symbols[t, n], k]
    for k in range(num_states):
        for n in range(batch):
            emis[0, k, n] *= pi[k]
    lane_trans = np.empty((num_states, num_states, batch))
    for i in range(num_states):
        for j in range(num_states):
            for n in range(batch):
                lane_trans[i, j, n] = trans[i, j]
    forward_sweep(emis, lane_trans, lengths, alpha, scale, log_z, dead)
    if backward:
        backward_sweep(emis, lane_trans, lengths, alpha, scale, alpha, xi)
    return log_z, alpha, xi, dead


@numba.njit(cache=True, nogil=True, error_model="numpy")
def weighted_statistics(gamma, xi, symbols, weights, num_symbols):  # noqa: ANN001, ANN202
    """Weighted sums over the lanes: first-step gamma ``(K,)``, xi ``(K, K)``, counts ``(K, V)``.

    ``counts[k, v] = sum_n weights[n] sum_t gamma[t, k, n] [symbols[t, n] = v]``; ``symbols``
    from :func:`time_major_symbols` with the same ``V``: values in ``[0, V]``, ``V`` at
    unobserved or padded steps, which are skipped (no bounds check). These are the gradients of
    ``sum_n weights[n] log p(y_n)`` with respect to ``log pi``, ``log A`` and ``log B``.
    """
    steps, num_states, batch = gamma.shape
    start = np.zeros(num_states)
    pairs = np.zeros((num_states, num_states))
    for n in range(batch):
        weight = weights[n]
        for i in range(num_states):
            start[i] += weight * gamma[0, i, n]
            for j in range(num_states):
                pairs[i, j] += weight * xi[i, j, n]
    if num_states > UNROLLED_STATES:
        counts = np.zeros((num_states, num_symbols))
        for t in range(steps):
            for n in range(batch):
                symbol = symbols[t, n]
                if symbol < num_symbols:
                    weight = weights[n]
                    for k in range(num_states):
                        counts[k, symbol] += weight * gamma[t, k, n]
        return start, pairs, counts
    # symbol-major, with a last row for the unobserved and padded steps (dropped)
    padded = np.zeros((num_symbols + 1, num_states))
    if num_states == 1:
        _unrolled_counts(to_fixed_tuple(start, 1), gamma, symbols, weights, padded)
    elif num_states == 2:
        _unrolled_counts(to_fixed_tuple(start, 2), gamma, symbols, weights, padded)
    elif num_states == 3:
        _unrolled_counts(to_fixed_tuple(start, 3), gamma, symbols, weights, padded)
    else:
        _unrolled_counts(to_fixed_tuple(start, 4), gamma, symbols, weights, padded)
    return start, pairs, np.ascontiguousarray(padded[:num_symbols].T)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _unrolled_counts(token, gamma, symbols, weights, padded):  # noqa: ANN001, ANN202
    """``padded[v, k] += weights[n] * gamma[t, k, n]`` at ``symbols[t, n] = v``; ``K = len(token)``.

    No branch per step: unobserved and padded steps land in the last row of ``padded``.
    """
    num_states = len(token)
    steps, batch = symbols.shape
    for t in range(steps):
        for n in range(batch):
            symbol = symbols[t, n]
            weight = weights[n]
            for k in range(num_states):
                padded[symbol, k] += weight * gamma[t, k, n]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def symbol_rows(log_B):  # noqa: ANN001, ANN202
    """Shifted emission rows per symbol ``(V + 1, K)`` and shifts ``(V + 1,)``.

    ``rows[v, k] = exp(log_B[k, v] - shift_v)`` with ``shift_v = max_k log_B[k, v]``; a symbol
    no state can emit gets a zero row (its sequences have zero likelihood); the extra last row
    (ones, shift 0) serves unobserved and padded steps.
    """
    num_states, num_symbols = log_B.shape
    rows = np.ones((num_symbols + 1, num_states))
    shifts = np.zeros(num_symbols + 1)
    for v in range(num_symbols):
        shift = -math.inf
        for k in range(num_states):
            shift = max(shift, log_B[k, v])
        if shift == -math.inf:
            for k in range(num_states):
                rows[v, k] = 0.0
            continue
        shifts[v] = shift
        for k in range(num_states):
            rows[v, k] = math.exp(log_B[k, v] - shift)
    return rows, shifts


@numba.njit(cache=True, nogil=True)
def time_major_symbols(symbols, lengths, num_symbols):  # noqa: ANN001, ANN202
    """``(N, T)`` symbols to time-major ``(T, N)`` rows of :func:`symbol_rows`.

    Missing (negative) and padded steps point at row ``num_symbols``. Returns the array and
    whether some symbol at a valid step lies outside ``[-1, num_symbols)`` or some length
    outside ``[1, T]`` (values at padded steps are not looked at).
    """
    batch, steps = symbols.shape
    out = np.empty((steps, batch), dtype=np.int64)
    bad = False
    for n in range(batch):
        length = lengths[n]
        if length < 1 or length > steps:
            bad = True
        for t in range(steps):
            symbol = symbols[n, t]
            if t >= length:
                out[t, n] = num_symbols
                continue
            if symbol < -1 or symbol >= num_symbols:
                bad = True
            out[t, n] = symbol if symbol >= 0 else num_symbols
    return out, bad


@numba.njit(cache=True, nogil=True, error_model="numpy")
def probability_gradients(start, pairs, counts, pi, A, B, eps):  # noqa: ANN001, ANN202
    """Chain :func:`weighted_statistics` to ``pi``, ``A``, ``B`` in place (float64 arrays).

    ``d/dp = (d/d log p) / max(p, eps)`` (the gradient of Pyro's ``safe_log``), and zero for
    entries of ``B`` that are not ``> 0`` (whose ``log B`` was clamped); a NaN ``p`` gives NaN.
    IEEE divisions, as torch's: the result equals that composition bit for bit.
    """
    num_states, num_symbols = B.shape
    for i in range(num_states):
        p = pi[i]
        start[i] = start[i] / (eps if p < eps else p)
        for j in range(num_states):
            p = A[i, j]
            pairs[i, j] = pairs[i, j] / (eps if p < eps else p)
        for v in range(num_symbols):
            p = B[i, v]
            counts[i, v] = (counts[i, v] if p > 0.0 else 0.0) / (eps if p < eps else p)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def categorical_lanes(log_pi, log_A, log_B, symbols, lengths, backward):  # noqa: ANN001, ANN202
    """Log likelihood ``(N,)``, gamma ``(T, K, N)`` and summed xi ``(K, K, N)`` from log space.

    ``log_pi (K,)``, ``log_A (K, K)``, ``log_B (K, V)``; ``symbols`` from
    :func:`time_major_symbols`. A lane of zero likelihood gets ``-inf`` and zero gamma and xi.
    """
    rows, shifts = symbol_rows(log_B)
    num_states = log_pi.shape[0]
    shift_pi = -math.inf
    for k in range(num_states):
        shift_pi = max(shift_pi, log_pi[k])
    if shift_pi == -math.inf:
        shift_pi = 0.0
    pi = np.exp(log_pi - shift_pi)
    log_z, gamma, xi, dead = symbol_forward_backward(
        pi, np.exp(log_A), rows, shifts, symbols, lengths, backward
    )
    for n in range(log_z.shape[0]):
        log_z[n] += shift_pi
        if dead[n]:
            log_z[n] = -math.inf
            gamma[:, :, n] = 0.0
            xi[:, :, n] = 0.0
    return log_z, gamma, xi
