"""The categorical sweeps as the bridge runs them: one sequence, one batch, or two halves.

:func:`categorical_sweeps` picks the route of a batch of symbol sequences:

* one long sequence: the forward and backward recursions on two threads
  (:func:`~hmm_pyro.kernels._numba.split.split_categorical`);
* a batch with enough work (:data:`LANE_THREADS_MIN_WORK`): its lanes in two halves, each
  swept by :func:`~hmm_pyro.kernels._numba.symbols.categorical_lanes`, the second on the kept
  second thread where numba has several threads (the sweeps release the GIL), else after the
  first. Sequences are independent, so the halves need no exchange; the halves' expected
  counts are added when the gradient is formed (also side by side). Each half is a view of the
  symbols (no copy). Value and gradient of 100 x 1000 symbols with K = 10 (the large workload
  of ``benchmarks/speed_peers.py``), 2 idle cores, best of 61 calls: 7.4-8.3 ms on one
  thread, 4.0-4.2 ms in two halves on two threads;
* otherwise all lanes at once on this thread.

Whether a batch is cut depends on its shape only, never on the number of threads: the same
call gives the same numbers, bit for bit, on one thread or two (a chain sampled here with two
threads equals one in a single-threaded worker process).

The result keeps each part's smoothed marginals until the gradient asks for the weighted counts
(:meth:`SymbolSweeps.statistics`): the weights are the upstream gradient of each sequence's log
likelihood.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, TypeVar

import numba
import numpy as np

from hmm_pyro.kernels._numba.split import second_thread, split_categorical, takes_split
from hmm_pyro.kernels._numba.symbols import categorical_lanes, weighted_statistics

T = TypeVar("T")

__all__ = [
    "HALF_LANES",
    "LANE_THREADS_MIN_WORK",
    "SymbolSweeps",
    "categorical_sweeps",
    "lanes_in_halves",
]

LANE_THREADS_MIN_WORK = 2**19
"""Smallest ``T N K^2`` of a batch whose lanes are swept in two halves (on two threads when
numba has several; the cut itself never depends on the threads).

Value and gradient (best of 41 calls, 2 idle cores), all lanes on one thread against two
halves on two threads: ``T N K^2`` = 72,000 (16 x 500, K = 3) 0.097 against 0.231 ms, 90,000
(20 x 500, K = 3, the reference workload) 0.117 against 0.262 ms, 288,000 (32 x 1000, K = 3)
0.353 against 0.368 ms (even), 1,024,000 (64 x 1000, K = 4) 1.07 against 0.71 ms and (16 x
1000, K = 8) 1.72 against 0.79 ms. Handing a half to the second thread costs about 0.13 ms."""

HALF_LANES = 8
"""The halves are cut at a multiple of this many lanes (the compiled lane loops run vectors of
4 and 8 lanes and finish other widths one lane at a time), each at least this wide."""


class SymbolSweeps(NamedTuple):
    """Log likelihoods of a batch and what its gradient needs, by parts of the lanes.

    Attributes
    ----------
    log_z : numpy.ndarray
        ``(N,)`` log likelihoods (``-inf`` for a sequence of zero likelihood).
    parts : tuple
        Per part ``(lanes, gamma, xi, counts, symbols)``: the part's lane slice, its
        smoothed marginals ``(T, K, n)`` (the filtered ones without the backward sweep), summed
        pair probabilities ``(K, K, n)``, the emission counts of a single long sequence
        (:func:`~hmm_pyro.kernels._numba.split.split_categorical`; ``None`` from the lanes)
        and the part's time-major symbols ``(T, n)``.
    side_by_side : bool
        Two parts ran on two threads; their counts are then formed on two threads too.
    """

    log_z: np.ndarray
    parts: tuple[tuple[slice, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray], ...]
    side_by_side: bool = False

    def statistics(
        self, weights: np.ndarray, num_symbols: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weighted first-step gamma ``(K,)``, pair counts ``(K, K)``, emission counts ``(K, V)``.

        The gradients of ``sum_n weights[n] log p(y_n)`` with respect to ``log pi``, ``log A``
        and ``log B`` (see :func:`~hmm_pyro.kernels._numba.symbols.weighted_statistics`).
        """

        def part_statistics(part: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            lanes, gamma, xi, counts, symbols = self.parts[part]
            scale = weights[lanes]
            if counts is None:
                return weighted_statistics(gamma, xi, symbols, scale, num_symbols)
            # one sequence: its counts, scaled by its weight
            return scale[0] * gamma[0, :, 0], scale[0] * xi[:, :, 0], scale[0] * counts

        if len(self.parts) == 1:
            return part_statistics(0)
        first, second = _both(part_statistics, self.side_by_side)
        return first[0] + second[0], first[1] + second[1], first[2] + second[2]


def _halves(batch: int) -> int:
    """Where the lanes are cut: about the middle, at a multiple of :data:`HALF_LANES`."""
    return max(HALF_LANES, min(batch - HALF_LANES, round(batch / 2 / HALF_LANES) * HALF_LANES))


def lanes_in_halves(batch: int, steps: int, states: int) -> bool:
    """True when :func:`categorical_sweeps` sweeps a batch of this shape in two halves by default.

    At least ``2 * HALF_LANES`` lanes and :data:`LANE_THREADS_MIN_WORK` of ``T N K^2``; the
    number of threads only decides whether the halves run side by side.
    """
    return batch >= 2 * HALF_LANES and steps * batch * states**2 >= LANE_THREADS_MIN_WORK


def categorical_sweeps(
    log_pi: np.ndarray,
    log_A: np.ndarray,
    log_B: np.ndarray,
    symbols: np.ndarray,
    lengths: np.ndarray,
    backward: bool,
    threads: bool | None = None,
) -> SymbolSweeps:
    """The categorical sweeps of a batch by the route the module notes describe.

    Parameters
    ----------
    log_pi, log_A, log_B : numpy.ndarray
        ``(K,)``, ``(K, K)``, ``(K, V)`` float64.
    symbols : numpy.ndarray
        Time-major ``(T, N)`` symbols of
        :func:`~hmm_pyro.kernels._numba.symbols.time_major_symbols`.
    lengths : numpy.ndarray
        ``(N,)`` int64.
    backward : bool
        Run the backward sweep too (for gradients).
    threads : bool, optional
        Two halves on two threads (``True``), all lanes here (``False``); default: two
        halves where :func:`lanes_in_halves` says so, side by side with several numba
        threads (``numba.get_num_threads()``), else one after the other here.

    Returns
    -------
    SymbolSweeps
    """
    steps, batch = symbols.shape
    num_states = log_pi.shape[0]
    if backward and takes_split(batch, steps, num_states, True):
        log_z, gamma, xi, counts = split_categorical(log_pi, log_A, log_B, symbols, lengths)
        return SymbolSweeps(log_z, ((slice(0, 1), gamma, xi, counts, symbols),))
    halves = lanes_in_halves(batch, steps, num_states) if threads is None else threads
    if not halves or batch < 2 * HALF_LANES:
        log_z, gamma, xi = categorical_lanes(log_pi, log_A, log_B, symbols, lengths, backward)
        return SymbolSweeps(log_z, ((slice(0, batch), gamma, xi, None, symbols),))
    middle = _halves(batch)
    cuts = (slice(0, middle), slice(middle, batch))
    parts = [(symbols[:, cut], lengths[cut]) for cut in cuts]

    def sweep(part: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return categorical_lanes(log_pi, log_A, log_B, *parts[part], backward)

    side_by_side = threads or numba.get_num_threads() > 1
    first, second = _both(sweep, side_by_side)
    return SymbolSweeps(
        np.concatenate([first[0], second[0]]),
        tuple(
            (cut, result[1], result[2], None, part[0])
            for cut, result, part in zip(cuts, (first, second), parts, strict=True)
        ),
        side_by_side,
    )


def _both(work: Callable[[int], T], side_by_side: bool) -> tuple[T, T]:
    """``work(0)`` here and ``work(1)`` on :func:`second_thread` (or after it, here)."""
    if not side_by_side:
        return work(0), work(1)
    future = second_thread().submit(work, 1)
    first = work(0)
    return first, future.result()
