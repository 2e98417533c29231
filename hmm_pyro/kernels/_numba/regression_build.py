"""Transition matrices of multinomial-logit regression rows, a chunk of steps at a time.

Used by the sweeps of :mod:`~hmm_pyro.kernels._numba.regression`, which build the matrices
of a chunk of steps as the forward sweep reaches it and keep them for the backward sweep. A
chunk holds every position ``q`` (steps x lanes) of ``A_t[i, j] = softmax_j(eta_t[i, :])``,
``eta_t[i, j] = x_t . coefficients[i, j]``, laid out ``(K, K, Q)`` so that every pass over it
is one long vectorised loop: the logits relative to the diagonal, in base 2 (the coefficients'
differences times ``log2(e)``), ``exp(eta_ij - eta_ii)`` as ``2**(...)`` by
:func:`~hmm_pyro.kernels._numba.fastexp.fast_exp2` (``K - 1`` exponentials per row, on the
processor's widest vectors, :func:`~hmm_pyro.kernels._numba.fastexp.prefer_wide_vectors`),
then each row divided by its sum. A row with a logit 700 (base e) above its diagonal is
recomputed shifted by its largest logit. :func:`design_block` lays the covariates out the
same way.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from hmm_pyro.kernels._numba.fastexp import fast_exp2, prefer_wide_vectors

__all__ = ["build_chunk", "design_block"]

_LOG2E = 1.4426950408889634
"""``log2(e)``: the logits are built in base 2 (``exp(eta) = 2**(eta log2(e))``)."""
_OVERFLOW = 700.0 * _LOG2E
"""A logit (base 2) this far above its row's diagonal logit (700 in base e): the row is
shifted by its maximum."""


@numba.njit(cache=True, nogil=True, error_model="numpy")
def design_block(design, first, lengths, xt):  # noqa: ANN001, ANN202
    """Chunked time-major covariates of lanes ``first ..``: ``xt (chunks, P, C, n)``.

    Lane ``b`` reads design row ``(first + b) % len(design)``; zero where step ``t + 1`` is
    not valid (the transition out of step ``t`` is not used).
    """
    chunks, num_covariates, chunk, lanes = xt.shape
    last = design.shape[1] - 1
    source = np.empty(lanes, dtype=np.int64)
    for b in range(lanes):
        source[b] = (first + b) % design.shape[0]
    for block in range(chunks):
        for p in range(num_covariates):
            for c in range(chunk):
                t = block * chunk + c
                for b in range(lanes):
                    used = t + 1 < lengths[b]
                    xt[block, p, c, b] = design[source[b], min(t, last), p] if used else 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def build_chunk(coefficients, x, entries, sums):  # noqa: ANN001, ANN202
    """One chunk of matrices ``entries[i, j] = A[i, j]`` at every position ``q``.

    ``coefficients (K, K, P)``, ``x (P, Q)`` (positions: steps x lanes, up to four covariates
    per pass); ``A[i, j] = exp(eta_ij - eta_ii) / sum_l exp(eta_il - eta_ii)``, with
    ``sums (Q,)`` as scratch for the row sums.
    """
    prefer_wide_vectors()
    num_states, num_covariates, size = entries.shape[0], x.shape[0], entries.shape[2]
    width = min(num_covariates, 4)
    for i in range(num_states):
        first = 1 if i == 0 else 0  # the row's first entry off the diagonal starts the sums
        large = 0
        for j in range(num_states):
            if j == i:
                continue
            for p in range(4, num_covariates, 4):  # covariates beyond the first four, if any
                w0, w1, w2, w3 = _relative(coefficients, i, j, p)
                extra = min(num_covariates - p, 4)
                for q in range(size):
                    partial = w0 * x[p, q]
                    if extra > 1:
                        partial += w1 * x[p + 1, q]
                    if extra > 2:
                        partial += w2 * x[p + 2, q]
                    if extra > 3:
                        partial += w3 * x[p + 3, q]
                    entries[i, j, q] = partial if p == 4 else entries[i, j, q] + partial
            w0, w1, w2, w3 = _relative(coefficients, i, j, 0)
            # one loop per number of covariates: tests inside the loop cost 10% (measured)
            if num_covariates > 4:
                for q in range(size):
                    logit = w0 * x[0, q] + w1 * x[1, q] + w2 * x[2, q] + w3 * x[3, q]
                    logit += entries[i, j, q]
                    large += logit > _OVERFLOW
                    value = fast_exp2(logit)
                    entries[i, j, q] = value
                    sums[q] = value + (1.0 if j == first else sums[q])
            elif width == 4:
                for q in range(size):
                    logit = w0 * x[0, q] + w1 * x[1, q] + w2 * x[2, q] + w3 * x[3, q]
                    large += logit > _OVERFLOW
                    value = fast_exp2(logit)
                    entries[i, j, q] = value
                    sums[q] = value + (1.0 if j == first else sums[q])
            elif width == 3:
                for q in range(size):
                    logit = w0 * x[0, q] + w1 * x[1, q] + w2 * x[2, q]
                    large += logit > _OVERFLOW
                    value = fast_exp2(logit)
                    entries[i, j, q] = value
                    sums[q] = value + (1.0 if j == first else sums[q])
            elif width == 2:
                for q in range(size):
                    logit = w0 * x[0, q] + w1 * x[1, q]
                    large += logit > _OVERFLOW
                    value = fast_exp2(logit)
                    entries[i, j, q] = value
                    sums[q] = value + (1.0 if j == first else sums[q])
            else:
                for q in range(size):
                    logit = w0 * x[0, q]
                    large += logit > _OVERFLOW
                    value = fast_exp2(logit)
                    entries[i, j, q] = value
                    sums[q] = value + (1.0 if j == first else sums[q])
        if large:
            _shifted_row(coefficients, x, i, entries, sums)
            for q in range(size):
                sums[q] = 1.0 / sums[q]
            for q in range(size):
                entries[i, i, q] *= sums[q]
            for j in range(num_states):
                if j != i:
                    for q in range(size):
                        entries[i, j, q] *= sums[q]
        elif num_states > 1:  # the first entry's pass also inverts the sums and sets the diagonal
            for q in range(size):
                inverse = 1.0 / sums[q]
                sums[q] = inverse
                entries[i, i, q] = inverse  # exp(0) / sum
                entries[i, first, q] *= inverse
            for j in range(first + 1, num_states):
                if j != i:
                    for q in range(size):
                        entries[i, j, q] *= sums[q]
        else:
            for q in range(size):
                entries[i, i, q] = 1.0


@numba.njit(cache=True, nogil=True, inline="always")
def _relative(coefficients, i, j, p):  # noqa: ANN001, ANN202
    """Coefficients ``p .. p + 3`` of entry ``(i, j)`` minus the diagonal's, times ``log2(e)``.

    The logits are built in base 2. Zero past the last coefficient.
    """
    last = coefficients.shape[2]
    return (
        (coefficients[i, j, p] - coefficients[i, i, p]) * _LOG2E,
        (coefficients[i, j, p + 1] - coefficients[i, i, p + 1]) * _LOG2E if p + 1 < last else 0.0,
        (coefficients[i, j, p + 2] - coefficients[i, i, p + 2]) * _LOG2E if p + 2 < last else 0.0,
        (coefficients[i, j, p + 3] - coefficients[i, i, p + 3]) * _LOG2E if p + 3 < last else 0.0,
    )


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _shifted_row(coefficients, x, i, entries, sums):  # noqa: ANN001, ANN202
    """Row ``i`` of a chunk again, each position shifted by its largest logit (no overflow)."""
    num_states, num_covariates, size = entries.shape[0], x.shape[0], entries.shape[2]
    for q in range(size):
        largest = -math.inf
        for j in range(num_states):
            logit = 0.0
            for p in range(num_covariates):
                logit += (coefficients[i, j, p] - coefficients[i, i, p]) * x[p, q]
            entries[i, j, q] = logit
            largest = max(largest, logit)
        total = 0.0
        for j in range(num_states):
            value = math.exp(entries[i, j, q] - largest)
            entries[i, j, q] = value
            total += value
        sums[q] = total
