"""One long sequence on two threads: forward and backward recursions run at the same time.

The lane sweeps of :mod:`~hmm_pyro.kernels._numba.lanes` spread work over sequences, so a
batch of one never uses a second core. For a single long sequence the forward recursion and a
backward recursion normalised on its own (it never reads alpha) are independent, so they run
on two threads at once: first the forward recursion over the first half of time beside the
backward recursion over the second half, each storing its vectors; then each goes on into the
other half, where it meets the stored vectors and forms the smoothed marginals and the summed
pair probabilities step by step (a combination step beside each recursion step, whose work
overlaps the recursion's chain of dependent steps; the vectors of only half the steps go
through memory):

* forward: ``alpha_t = (alpha_{t-1} A) * e_t / c_t`` with ``c_t`` its sum; the log likelihood
  is the sum of the emission shifts and of ``log c_t`` (Rabiner 1989, section V.A);
* backward: ``beta_t = A (e_{t+1} * beta_{t+1}) / d_t`` with ``d_t`` its own sum,
  ``beta_{T-1} = 1``;
* combination: ``gamma_t = alpha_t * beta_t / g_t`` with ``g_t = sum_k alpha_t(k) beta_t(k)``,
  and ``xi_t(i, j) = alpha_t(i) A(i, j) e_{t+1}(j) beta_{t+1}(j) / (c_{t+1} g_{t+1})``, whose
  normaliser is the sum over ``(i, j)`` of the numerator (``alpha_{t+1} c_{t+1}`` is the
  forward step before its normalisation).

A parallel-in-time scan would cost about ``2 T K^3`` operations against ``T K^2`` here and does
not pay on two cores. The emission table of the general route (``log_lik (1, T, K)``) is
shifted and exponentiated by halves of time on both threads first; the categorical route looks
one shifted row up per symbol (:func:`~hmm_pyro.kernels._numba.symbols.symbol_rows`).

:func:`takes_split` says when a call goes this way: a batch of one with at least
:data:`SPLIT_MIN_WORK` of ``T K^2`` (:data:`SYMBOL_SPLIT_MIN_WORK` for symbols with few
states). The passes run on two threads where ``numba.get_num_threads() > 1`` and the work
reaches :data:`THREADS_MIN_WORK`; with one numba thread (as the task runners set for each task)
the same passes run one after the other, which for one sequence is itself faster than the
general lane sweeps (their loops over the batch have one iteration): 3.9-4.8x on 10^6 steps,
about 2x for a NUTS potential on 1,000 steps. The results equal the lane sweeps' to round-off;
a sequence of zero likelihood is reported ``dead`` as there.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np

from hmm_pyro.kernels._numba.lanes import FLUSH_BELOW, lane_sweeps
from hmm_pyro.kernels._numba.symbols import UNROLLED_STATES as SYMBOL_UNROLLED_STATES
from hmm_pyro.kernels._numba.symbols import symbol_rows

__all__ = [
    "SPLIT_MIN_WORK",
    "SYMBOL_SPLIT_MIN_WORK",
    "THREADS_MIN_WORK",
    "UNROLLED_STATES",
    "second_thread",
    "split_categorical",
    "split_log_likelihood",
    "split_sweeps",
    "sweeps",
    "takes_split",
]

SPLIT_MIN_WORK = 2**11
"""Smallest ``T * K**2`` of a single sequence that goes this way (see :func:`takes_split`).

The passes one after the other against the lane sweeps, NUTS potential (value and gradient,
one thread, CPU time, table route): Gaussian 1 x 200 steps, K = 2, 56.8 vs 55.9 us (even),
K = 5 90.0 vs 73.3 us; 1 x 1000, K = 3, 187.9 vs 94.8 us; 1 x 5000, K = 5, 1502 vs 492 us."""

SYMBOL_SPLIT_MIN_WORK = 2**18
"""The same for symbols with at most
:data:`~hmm_pyro.kernels._numba.symbols.UNROLLED_STATES` states, whose lane sweeps are compiled
for each ``K`` and fast for one sequence too: categorical NUTS potential 1 x 1000 steps, K = 3,
lanes 45.5 us vs split 70.4 us, 1 x 5000 161.6 vs 181.6 us; on 10^6 steps the split passes
one after the other are 6-18% faster (``benchmarks/long_sequence.py``). With more states the
lane sweeps are general and :data:`SPLIT_MIN_WORK` applies (1 x 1000, K = 5: 261 vs 92 us)."""

THREADS_MIN_WORK = 2**17
"""Smallest ``T * K**2`` whose passes run on two threads (with several numba threads).

Starting the second thread and handing it three passes cost 170 us (wall time, 1 x 1024 steps,
K = 2, on a busy machine) against 0.8 ms for the passes one after the other on 1 x 2^15 steps,
K = 2 (work 2^17), of which the second thread can take about half. (Measured when a thread
was started per call; the thread is now kept, :func:`second_thread`, so the threshold is
conservative.)"""

UNROLLED_STATES = 6
"""Up to this many states the passes here are compiled for each ``K`` (CPU time per pass on
10^6 steps, compiled for each ``K`` against general loops: K = 5 forward 10.4 vs 19.0 ms,
backward 11.2 vs 18.1, combination 20.6 vs 22.1; K = 6 13.4 vs 25.5 ms forward; K = 8 91 vs
25 ms forward, hence the limit)."""


def takes_split(batch: int, steps: int, states: int, symbols: bool = False) -> bool:
    """True when a forward-backward of this shape goes this way: one sequence, enough work.

    A batch of one and ``steps * states**2`` at least :data:`SPLIT_MIN_WORK`
    (:data:`SYMBOL_SPLIT_MIN_WORK` for ``symbols`` with few states). The passes run on two
    threads where ``numba.get_num_threads() > 1`` and there is :data:`THREADS_MIN_WORK`, else
    one after the other.
    """
    few = symbols and states <= SYMBOL_UNROLLED_STATES
    return batch == 1 and steps * states**2 >= (SYMBOL_SPLIT_MIN_WORK if few else SPLIT_MIN_WORK)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _fold(total, log_sum, product):  # noqa: ANN001, ANN202
    """A step's forward scale factor into ``(log_sum, product)``.

    ``product`` is the running product of the factors, folded into the log below
    ``FLUSH_BELOW``; a factor below it goes straight into the log.
    """
    if total < FLUSH_BELOW:
        return log_sum + math.log(total), product
    product *= total
    if product < FLUSH_BELOW:
        return log_sum + math.log(product), 1.0
    return log_sum, product


# ------------------------------------------------------------------------------ the kernels
# ``rows[r]`` is the shifted emission row of step ``t`` with ``r = t`` (the general route,
# ``symbols`` is None: numba compiles that case without the look-up) or ``r = symbols[t]``.
# ``pi (K,)`` and the flat ``trans (K * K,)`` are tuples up to UNROLLED_STATES states (``K``
# is then a compile-time constant: the state loops unroll, ``trans`` stays in registers) and
# arrays above. Each step's normalisation is applied in the next step, so that its division
# runs beside that step's products instead of before them.
@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _forward(pi, trans, rows, symbols, steps, alpha, scale):  # noqa: ANN001, ANN202
    """Forward recursion over ``[0, steps)``; returns ``(sum of log c_t, dead)``.

    ``alpha[t]`` receives ``c_t`` times the filtered distribution (``c_t`` the forward scale
    factor, Rabiner's) and ``scale[t]`` the multiplier applied at step ``t``, ``1 / c_{t-1}``
    (1 at ``t = 0``). Stops at a step of zero probability (``dead``). The factors are
    multiplied into a running product, folded into the log below ``FLUSH_BELOW`` as in the
    lane sweeps.
    """
    num_states = len(pi)
    log_sum = 0.0
    product = 1.0
    inverse = 1.0
    for t in range(steps):
        row = t if symbols is None else symbols[t]
        total = 0.0
        for j in range(num_states):
            if t == 0:
                value = pi[j]
            else:
                value = 0.0
                for i in range(num_states):
                    value += alpha[t - 1, i] * trans[i * num_states + j]
            value *= rows[row, j] * inverse
            alpha[t, j] = value
            total += value
        scale[t] = inverse
        if not total > 0.0:
            return log_sum, True
        inverse = 1.0 / total
        log_sum, product = _fold(total, log_sum, product)
    return log_sum + math.log(product), False


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _backward(pi, trans, rows, symbols, steps, beta, stop):  # noqa: ANN001, ANN202
    """Backward recursion over ``[stop, steps)``, normalised on its own; returns ``dead``.

    ``beta[steps - 1] = 1``; ``beta[t]`` is ``A (e_{t+1} * beta[t + 1])`` divided by the sum of
    ``beta[t + 1]`` (any positive factor per step would do: the combination normalises).
    Stops at a step of zero probability.
    """
    num_states = len(pi)
    for k in range(num_states):
        beta[steps - 1, k] = 1.0
    inverse = 1.0
    for t in range(steps - 2, stop - 1, -1):
        row = t + 1 if symbols is None else symbols[t + 1]
        total = 0.0
        for i in range(num_states):
            value = 0.0
            for j in range(num_states):
                value += trans[i * num_states + j] * (rows[row, j] * beta[t + 1, j])
            value *= inverse
            beta[t, i] = value
            total += value
        if not total > 0.0:
            return True
        inverse = 1.0 / total
    return False


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _forward_combining(pi, trans, rows, symbols, start, steps, alpha, beta, xi, counts):  # noqa: ANN001, ANN202
    """The forward recursion over ``[start, steps)``, combined with ``beta`` as it goes.

    Continues from ``alpha[start - 1]`` (the first half's last step, ``start >= 1``); keeps
    ``alpha`` in registers, not in memory. At each step ``s``, with the forward vector
    ``alpha_s`` (``c_s`` times the filtered distribution) and ``g_s = sum_k alpha_s(k)
    beta[s, k]``: ``xi[i, j] += alpha_{s-1}(i) trans[i, j] e_s(j) beta[s, j] / (c_{s-1} g_s)``
    (the sum of these numerators over ``(i, j)`` is ``g_s c_{s-1}``), then ``gamma_s =
    alpha_s * beta[s] / g_s`` is written over ``beta[s]``; with symbols, ``counts (V + 1, K)``
    gains ``gamma_s`` in row ``symbols[s]`` (None on the general route). Returns ``(sum of log
    c_s over [start, steps), dead)``.
    """
    num_states = len(pi)
    previous = np.empty(num_states)
    current = np.empty(num_states)
    total = 0.0
    for k in range(num_states):
        previous[k] = alpha[start - 1, k]
        total += previous[k]
    inverse = 1.0 / total
    log_sum = 0.0
    product = 1.0
    for t in range(start, steps):
        row = t if symbols is None else symbols[t]
        total = 0.0
        norm = 0.0
        for j in range(num_states):
            value = 0.0
            for i in range(num_states):
                value += previous[i] * trans[i * num_states + j]
            value *= rows[row, j] * inverse
            current[j] = value
            total += value
            norm += value * beta[t, j]
        if not total > 0.0:
            return log_sum, True
        weight = inverse / norm
        for i in range(num_states):
            scaled = previous[i] * weight
            for j in range(num_states):
                xi[i, j] += scaled * trans[i * num_states + j] * (rows[row, j] * beta[t, j])
        weight = 1.0 / norm
        for k in range(num_states):
            value = current[k] * beta[t, k] * weight
            beta[t, k] = value
            previous[k] = current[k]
            if counts is not None:
                counts[row, k] += value
        inverse = 1.0 / total
        log_sum, product = _fold(total, log_sum, product)
    return log_sum + math.log(product), False


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _backward_combining(pi, trans, rows, symbols, stop, edge, alpha, scale, beta, xi, counts):  # noqa: ANN001, ANN202
    """The backward recursion over ``[0, stop)``, combined with ``alpha`` as it goes.

    Continues from ``edge``, a copy of ``beta[stop]`` as the second half's backward
    recursion left it (the other thread writes gamma over ``beta[stop]`` meanwhile); keeps
    ``beta`` in registers. At each step ``s`` (from ``stop - 1`` down), with its backward
    vector ``beta_s`` and ``g_s = sum_k alpha[s, k] beta_s(k)``: the pairs ending at ``s > 0``,
    ``xi[i, j] += alpha[s - 1, i] trans[i, j] e_s(j) beta_s(j) scale[s] / g_s``, and ``gamma_s
    = alpha[s] * beta_s / g_s`` written into ``beta[s]`` (``counts`` as in
    :func:`_forward_combining`). Returns ``dead``.
    """
    num_states = len(pi)
    following = np.empty(num_states)
    current = np.empty(num_states)
    total = 0.0
    for k in range(num_states):
        following[k] = edge[k]
        total += edge[k]
    inverse = 1.0 / total
    for t in range(stop - 1, -1, -1):
        after = t + 1 if symbols is None else symbols[t + 1]
        total = 0.0
        norm = 0.0
        for i in range(num_states):
            value = 0.0
            for j in range(num_states):
                value += trans[i * num_states + j] * (rows[after, j] * following[j])
            value *= inverse
            current[i] = value
            total += value
            norm += alpha[t, i] * value
        if not total > 0.0:
            return True
        inverse = 1.0 / total
        row = t if symbols is None else symbols[t]
        if t > 0:
            weight = scale[t] / norm
            for i in range(num_states):
                scaled = alpha[t - 1, i] * weight
                for j in range(num_states):
                    xi[i, j] += scaled * trans[i * num_states + j] * (rows[row, j] * current[j])
        weight = 1.0 / norm
        for k in range(num_states):
            value = alpha[t, k] * current[k] * weight
            beta[t, k] = value
            following[k] = current[k]
            if counts is not None:
                counts[row, k] += value
    return False


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _shift_rows(log_pi, log_lik, emis, start, stop):  # noqa: ANN001, ANN202
    """``emis[t] = log_lik[t] (+ log_pi at t = 0) - max`` on ``[start, stop)``; sum of shifts.

    A step that no state can emit keeps ``-inf`` entries (shift 0): its exponentials are zero
    and the forward recursion reports the sequence dead.
    """
    num_states = log_lik.shape[1]
    total = 0.0
    for t in range(start, stop):
        shift = -math.inf
        for k in range(num_states):
            value = log_lik[t, k]
            if t == 0:
                value += log_pi[k]
            emis[t, k] = value
            shift = max(shift, value)
        if shift == -math.inf:
            shift = 0.0
        for k in range(num_states):
            emis[t, k] -= shift
        total += shift
    return total


@numba.njit(cache=True, nogil=True)
def _symbol_shifts(shifts, symbols, start, stop):  # noqa: ANN001, ANN202
    """Sum of the emission shifts of the symbols at steps ``[start, stop)``."""
    total = 0.0
    for t in range(start, stop):
        total += shifts[symbols[t]]
    return total


# ------------------------------------------------------------------------- orchestration
_SECOND: dict[int, ThreadPoolExecutor] = {}


def second_thread() -> ThreadPoolExecutor:
    """One worker thread beside this one, started by the first call and kept (per process).

    Starting a thread per call cost about 0.1-0.2 ms. Keyed by process id: a child forked after
    the thread started inherits the executor but not its thread, and gets its own.
    """
    pid = os.getpid()
    if pid not in _SECOND:
        _SECOND.clear()
        _SECOND[pid] = ThreadPoolExecutor(1, thread_name_prefix="hmm_pyro-kernels")
    return _SECOND[pid]


def _pool(
    threads: bool | None, work: int
) -> contextlib.AbstractContextManager[ThreadPoolExecutor | None]:
    """:func:`second_thread`, or none (a context manager, for ``with`` blocks).

    ``threads=None``: the thread with several numba threads and ``work >= THREADS_MIN_WORK``.
    """
    if threads is None:
        threads = work >= THREADS_MIN_WORK and numba.get_num_threads() > 1
    return contextlib.nullcontext(second_thread() if threads else None)


def _pair(pool: ThreadPoolExecutor | None, here: Callable[[], Any], there: Callable[[], Any]):  # noqa: ANN202
    """``(here(), there())``, ``there`` in the pool's thread while ``here`` runs in this one.

    Without a pool, one after the other.
    """
    if pool is None:
        return here(), there()
    future = pool.submit(there)
    first = here()
    return first, future.result()


def _apart(shape: tuple[int, ...]) -> np.ndarray:
    """Zeros ``(2, *shape)``, one part per thread, the parts at least 512 bytes apart.

    Each thread adds into its part at every step: parts in one cache line would bounce the line
    between the cores at every step (false sharing; with ``K = 2`` the two ``(K, K)`` sums of
    adjacent parts are 32 bytes each).
    """
    size = int(np.prod(shape))
    padded = np.zeros((2, size + 64))
    return padded[:, 64:].reshape(2, *shape)


def _kernel_arguments(pi: np.ndarray, trans: np.ndarray) -> tuple[Any, Any]:
    """``pi`` and the flat ``trans`` as the kernels take them (tuples up to UNROLLED_STATES)."""
    if pi.shape[0] <= UNROLLED_STATES:
        return tuple(pi.tolist()), tuple(trans.ravel().tolist())
    return pi, np.ascontiguousarray(trans.ravel())


def _sweep_pair(
    pool: ThreadPoolExecutor | None,
    pi: np.ndarray,
    trans: np.ndarray,
    rows: np.ndarray,
    symbols: np.ndarray | None,
    steps: int,
    total_steps: int,
) -> tuple[float, bool, np.ndarray, np.ndarray, np.ndarray | None]:
    """Forward-backward of one sequence as two halves of time on two threads.

    First the forward recursion over the first half of time beside the backward recursion
    over the second half (each stores its vectors); then each recursion goes on into the
    other half, where it meets the vectors stored there and forms gamma and the pair sums as
    it goes (:func:`_forward_combining`, :func:`_backward_combining`). Each thread runs one
    recursion step and one combination step per time step, and the vectors of only half the
    steps go through memory.

    Returns the sum of ``log c_t``, ``dead``, gamma ``(total_steps, K)`` (zero from ``steps``
    on), summed xi ``(K, K)`` and, with ``symbols``, the summed gamma of each row of ``rows``
    ``(len(rows), K)`` (else None); all but the first two are undefined for a dead sequence.
    """
    num_states = trans.shape[0]
    pi, trans = _kernel_arguments(pi, trans)
    middle = max(steps // 2, 1)
    alpha = np.empty((middle, num_states))
    scale = np.empty(middle)
    beta = np.empty((total_steps, num_states))
    beta[steps:] = 0.0
    (first_sum, dead), dead_backward = _pair(
        pool,
        lambda: _forward(pi, trans, rows, symbols, middle, alpha, scale),
        lambda: steps > middle and _backward(pi, trans, rows, symbols, steps, beta, middle),
    )
    xi = _apart((num_states, num_states))
    counts = None if symbols is None else _apart(rows.shape)
    if dead or dead_backward:
        return first_sum, True, beta, xi[0], None if counts is None else counts[0]
    if steps == middle:  # one step: gamma is the filtered distribution
        beta[0] = alpha[0] / alpha[0].sum()
        if counts is not None:
            counts[0, symbols[0]] += beta[0]
        return first_sum, False, beta, xi[0], None if counts is None else counts[0]
    edge = beta[middle].copy()
    (second_sum, dead), dead_backward = _pair(
        pool,
        lambda: _forward_combining(
            pi, trans, rows, symbols, middle, steps, alpha, beta, xi[0],
            None if counts is None else counts[0],
        ),
        lambda: _backward_combining(
            pi, trans, rows, symbols, middle, edge, alpha, scale, beta, xi[1],
            None if counts is None else counts[1],
        ),
    )  # fmt: skip
    log_sum = first_sum + second_sum
    if dead or dead_backward:
        return log_sum, True, beta, xi[0], None if counts is None else counts[0]
    return log_sum, False, beta, xi[0] + xi[1], None if counts is None else counts[0] + counts[1]


def _shifted_table(
    pool: ThreadPoolExecutor | None, log_pi: np.ndarray, log_lik: np.ndarray, steps: int
) -> tuple[np.ndarray, float]:
    """The shifted emission probabilities ``(steps, K)`` of a table and the sum of the shifts.

    ``log_lik (1, T, K)``; computed by halves of time on both threads (with a pool).
    """
    table = log_lik[0]
    emis = np.empty((steps, table.shape[1]))

    def shifted(start: int, stop: int) -> float:
        total = _shift_rows(log_pi[0], table, emis, start, stop)
        np.exp(emis[start:stop], out=emis[start:stop])  # NumPy releases the GIL here
        return total

    middle = steps // 2
    first, second = _pair(pool, lambda: shifted(0, middle), lambda: shifted(middle, steps))
    return emis, first + second


def split_sweeps(
    log_pi: np.ndarray,
    log_A: np.ndarray,
    log_lik: np.ndarray,
    lengths: np.ndarray,
    threads: bool | None = None,
) -> tuple[np.ndarray, ...]:
    """:func:`~hmm_pyro.kernels._numba.lanes.lane_sweeps` of one sequence, on two threads.

    Parameters
    ----------
    log_pi, log_A, log_lik, lengths : numpy.ndarray
        As :func:`~hmm_pyro.kernels._numba.lanes.lane_sweeps` with a batch of one:
        ``(1, K)``, ``(1, K, K)``, ``(1, T, K)`` float64 and ``(1,)`` int64.
    threads : bool, optional
        Use a second thread; ``False`` runs the same passes one after the other. Default:
        where ``numba.get_num_threads() > 1`` and ``T K^2 >= THREADS_MIN_WORK``.

    Returns
    -------
    log_z, gamma, xi, dead : numpy.ndarray
        As :func:`~hmm_pyro.kernels._numba.lanes.lane_sweeps`: ``(1,)``, ``(T, K, 1)``,
        ``(K, K, 1)`` and ``(1,)``; the results of a dead sequence are undefined, for the
        caller to clear.
    """
    total_steps, num_states = log_lik.shape[1:]
    steps = int(lengths[0])
    with _pool(threads, steps * num_states**2) as pool:
        emis, shift = _shifted_table(pool, log_pi, log_lik, steps)
        pi, trans = np.ones(num_states), np.exp(log_A[0])
        log_sum, dead, gamma, xi, _ = _sweep_pair(pool, pi, trans, emis, None, steps, total_steps)
    return np.array([shift + log_sum]), gamma[:, :, None], xi[:, :, None], np.array([dead])


def split_log_likelihood(
    log_pi: np.ndarray,
    log_A: np.ndarray,
    log_lik: np.ndarray,
    lengths: np.ndarray,
    threads: bool | None = None,
) -> np.ndarray:
    """Forward recursion only, inputs as :func:`split_sweeps`: the log likelihood ``(1,)``.

    Only the emission table is prepared on two threads; ``-inf`` for zero likelihood.
    """
    steps, num_states = int(lengths[0]), log_lik.shape[2]
    with _pool(threads, steps * num_states**2) as pool:
        emis, shift = _shifted_table(pool, log_pi, log_lik, steps)
    pi, trans = _kernel_arguments(np.ones(num_states), np.exp(log_A[0]))
    alpha, scale = np.empty((steps, num_states)), np.empty(steps)
    log_sum, dead = _forward(pi, trans, emis, None, steps, alpha, scale)
    return np.array([-math.inf if dead else shift + log_sum])


def sweeps(
    log_pi: np.ndarray, log_A: np.ndarray, log_lik: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, ...]:
    """:func:`split_sweeps` where :func:`takes_split`, else the lane sweeps (same results)."""
    if takes_split(*log_lik.shape):
        return split_sweeps(log_pi, log_A, log_lik, lengths)
    return lane_sweeps(log_pi, log_A, log_lik, lengths)


def split_categorical(
    log_pi: np.ndarray,
    log_A: np.ndarray,
    log_B: np.ndarray,
    symbols: np.ndarray,
    lengths: np.ndarray,
    threads: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`~hmm_pyro.kernels._numba.symbols.categorical_lanes` of one sequence, two threads.

    Inputs as there with one lane: ``log_pi (K,)``, ``log_A (K, K)``, ``log_B (K, V)``,
    time-major ``symbols (T, 1)`` of
    :func:`~hmm_pyro.kernels._numba.symbols.time_major_symbols`, ``lengths (1,)``. Returns the
    log likelihood ``(1,)``, gamma ``(T, K, 1)``, summed xi ``(K, K, 1)`` and the emission
    counts ``(K, V)`` (``counts[k, v]``: gamma summed over the steps that show ``v``, formed in
    the combination pass); a sequence of zero likelihood gets ``-inf`` and zeros.
    ``threads`` as in :func:`split_sweeps`.
    """
    total_steps = symbols.shape[0]
    num_states, num_symbols = log_B.shape
    steps = int(lengths[0])
    line = np.ascontiguousarray(symbols[:, 0])
    rows, shifts = symbol_rows(log_B)
    shift_pi = log_pi.max()
    shift_pi = 0.0 if shift_pi == -math.inf else shift_pi
    pi, trans = np.exp(log_pi - shift_pi), np.exp(log_A)
    middle = steps // 2
    with _pool(threads, steps * num_states**2) as pool:
        log_sum, dead, gamma, xi, counts = _sweep_pair(
            pool, pi, trans, rows, line, steps, total_steps
        )
        first, second = _pair(
            pool,
            lambda: _symbol_shifts(shifts, line, 0, middle),
            lambda: _symbol_shifts(shifts, line, middle, steps),
        )
    if dead:
        return (
            np.array([-math.inf]),
            np.zeros((total_steps, num_states, 1)),
            np.zeros((num_states, num_states, 1)),
            np.zeros((num_states, num_symbols)),
        )
    log_z = np.array([shift_pi + first + second + log_sum])
    return log_z, gamma[:, :, None], xi[:, :, None], np.ascontiguousarray(counts[:-1].T)
