"""Numba forward-backward on flattened batches (sequences x draws): threading and dispatch.

The sweeps are :mod:`~hmm_pyro.kernels._numba.lanes` and, with one transition matrix per
step, :mod:`~hmm_pyro.kernels._numba.varying` and :mod:`~hmm_pyro.kernels._numba.regression`
(scaled probability-space recursions,
Rabiner 1989, section V.A, sequences as vector lanes; everything float64). Large batches are
cut into one slice per numba thread and run in a thread pool: the compiled sweeps release the
GIL. A batch of one sequence takes the passes of :mod:`~hmm_pyro.kernels._numba.split` instead.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from hmm_pyro.kernels._numba import split
from hmm_pyro.kernels._numba.lanes import forward_backward_lanes, lane_results, log_likelihood_lanes
from hmm_pyro.kernels._numba.regression import regression_sweeps
from hmm_pyro.kernels._numba.varying import varying_forward_backward, varying_log_likelihood

__all__ = [
    "PARALLEL_MIN_WORK",
    "forward_backward_batch",
    "log_likelihood_batch",
    "regression_batch",
    "varying_forward_backward_batch",
    "varying_log_likelihood_batch",
]

PARALLEL_MIN_WORK = 2**21
"""Smallest ``B * T * K**2`` run on several threads. Below it a thread pool costs more than it
saves, and threads competing with other processes for the cores slowed a 20 x 500 x 3 call
from 0.2 ms to 23 ms (measured on 2 busy cores)."""


def _parallel(log_lik: np.ndarray) -> bool:
    batch, steps, states = log_lik.shape
    return (
        numba.get_num_threads() > 1 and batch > 1 and batch * steps * states**2 >= PARALLEL_MIN_WORK
    )


def _chunks(batch: int) -> list[slice]:
    count = min(numba.get_num_threads(), batch)
    edges = np.linspace(0, batch, count + 1).round().astype(int)
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


def _part(array: np.ndarray, part: slice) -> np.ndarray:
    """Rows ``part`` of a batch-first input whose batch may be 1 (broadcast)."""
    return array if array.shape[0] == 1 else array[part]


def _threaded(function, log_pi, log_A, log_lik, lengths) -> list:  # noqa: ANN001
    """``function`` on slices of the batch in threads (the numba sweeps release the GIL)."""
    parts = _chunks(log_lik.shape[0])
    with ThreadPoolExecutor(len(parts)) as pool:
        return list(
            pool.map(
                lambda part: function(
                    _part(log_pi, part), _part(log_A, part), log_lik[part], lengths[part]
                ),
                parts,
            )
        )


def forward_backward_batch(
    log_pi: np.ndarray, log_A: np.ndarray, log_lik: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log likelihood ``(B,)``, gamma ``(B, T, K)`` and summed xi ``(B, K, K)``.

    Inputs: ``log_pi (B or 1, K)``, ``log_A (B or 1, K, K)``, ``log_lik (B, T, K)``,
    ``lengths (B,)``. Gamma is zero at padded steps; a sequence with zero likelihood gets
    ``-inf`` and zero gamma and xi. Runs
    :func:`~hmm_pyro.kernels._numba.lanes.forward_backward_lanes`, on slices of the batch in
    ``numba.get_num_threads()`` threads for large batches (:data:`PARALLEL_MIN_WORK`); gamma
    may then be a non-contiguous view. A single sequence takes the passes of
    :func:`~hmm_pyro.kernels._numba.split.split_sweeps` instead (where
    :func:`~hmm_pyro.kernels._numba.split.takes_split`): its forward and backward recursions
    on two threads at once, or one after the other with one numba thread.
    """
    if split.takes_split(*log_lik.shape):
        return lane_results(*split.split_sweeps(log_pi, log_A, log_lik, lengths))
    if not _parallel(log_lik):
        return forward_backward_lanes(log_pi, log_A, log_lik, lengths)
    pieces = _threaded(forward_backward_lanes, log_pi, log_A, log_lik, lengths)
    return tuple(np.concatenate(group) for group in zip(*pieces, strict=True))


def log_likelihood_batch(
    log_pi: np.ndarray, log_A: np.ndarray, log_lik: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """Forward sweep only: log likelihood ``(B,)``.

    A single long sequence: :func:`~hmm_pyro.kernels._numba.split.split_log_likelihood`.
    """
    if split.takes_split(*log_lik.shape):
        return split.split_log_likelihood(log_pi, log_A, log_lik, lengths)
    if not _parallel(log_lik):
        return log_likelihood_lanes(log_pi, log_A, log_lik, lengths)
    return np.concatenate(_threaded(log_likelihood_lanes, log_pi, log_A, log_lik, lengths))


def varying_forward_backward_batch(
    log_pi: np.ndarray, log_A: np.ndarray, log_lik: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log likelihood ``(B,)``, gamma ``(B, T, K)`` and per-step xi ``(B, T, K, K)``.

    As :func:`forward_backward_batch` with ``log_A (B or 1, T, K, K)``, one matrix per step
    (:func:`~hmm_pyro.kernels._numba.varying.varying_forward_backward`).
    """
    if not _parallel(log_lik):
        return varying_forward_backward(log_pi, log_A, log_lik, lengths)
    pieces = _threaded(varying_forward_backward, log_pi, log_A, log_lik, lengths)
    return tuple(np.concatenate(group) for group in zip(*pieces, strict=True))


def varying_log_likelihood_batch(
    log_pi: np.ndarray, log_A: np.ndarray, log_lik: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """Forward sweep only, one transition matrix per step: log likelihood ``(B,)``."""
    if not _parallel(log_lik):
        return varying_log_likelihood(log_pi, log_A, log_lik, lengths)
    return np.concatenate(_threaded(varying_log_likelihood, log_pi, log_A, log_lik, lengths))


def regression_batch(
    log_pi: np.ndarray,
    coefficients: np.ndarray,
    design: np.ndarray,
    log_lik: np.ndarray,
    lengths: np.ndarray,
    per_draw: int,
    weights: np.ndarray | None = None,
    backward: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Transition rows as regressions: log likelihood, gamma and the coefficients' gradient.

    As :func:`~hmm_pyro.kernels._numba.regression.regression_sweeps` (same arguments), on
    slices of the batch in threads for large batches (the gradients of the slices summed).
    """
    if not _parallel(log_lik):
        return regression_sweeps(
            log_pi, coefficients, design, log_lik, lengths, per_draw, weights, backward
        )
    parts = _chunks(log_lik.shape[0])

    def run(part: slice) -> tuple[np.ndarray | None, ...]:
        return regression_sweeps(
            _part(log_pi, part),
            coefficients,
            design,
            log_lik[part],
            lengths[part],
            per_draw,
            None if weights is None else weights[part],
            backward,
            part.start,
        )

    with ThreadPoolExecutor(len(parts)) as pool:
        pieces = list(pool.map(run, parts))
    log_z = np.concatenate([piece[0] for piece in pieces])
    if not backward:
        return log_z, None, None
    gamma = np.concatenate([piece[1] for piece in pieces])
    return log_z, gamma, sum(piece[2] for piece in pieces)
