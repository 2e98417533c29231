"""Numba forward-backward with transition rows that are multinomial-logit regressions.

``A_t[i, :] = softmax(eta_t[i, :])`` with ``eta_t[i, j] = x_t . coefficients[i, j]``: the
matrices are computed inside the sweeps from the covariates ``x_t`` (a ``(T, P)`` design per
sequence) and the ``(K, K, P)`` coefficients, and the backward sweep returns the gradient of
the log likelihood with respect to the coefficients directly, without a ``(T, K, K)`` array
per sequence going in or out:

    d log p(y) / d coefficients[i, j, p] = sum_t x_t[p] (xi_t[i, j] - A_t[i, j] gamma_t[i]),

the softmax's chain rule applied to the per-step pair probabilities ``xi_t`` (the gradient
with respect to ``log A_t``), ``gamma_t[i] = sum_j xi_t[i, j]`` over the steps ``t`` whose
transition is used. With ``ahead_t[j] = p(y_{t+1} | z_{t+1} = j) beta_{t+1}[j]`` (scaled) and
``beta_t[i] = sum_j A_t[i, j] ahead_t[j]``, the summand is
``alpha_t[i] A_t[i, j] (ahead_t[j] - beta_t[i])``: one pass over ``(i, j)`` per step after the
one that computes ``beta_t``.

The sweeps are those of :mod:`~hmm_pyro.kernels._numba.lanes` (sequences as vector lanes,
time-major arrays, scaled recursions of Rabiner 1989, section V.A, the same emission
preparation and folding of scale factors). Per block of lanes:

- the matrices are built chunk of steps by chunk of steps during the forward sweep, each chunk
  laid out ``(K, K, steps x lanes)`` (:mod:`~hmm_pyro.kernels._numba.regression_build`:
  ``K - 1`` exponentials per row); the forward sweep reads the chunk while it is still in the
  cache, and the backward sweep reads the stored chunks back (each in one sequential pass
  first, :func:`_warm`);
- the backward sweep writes each step's summands above (weighted per lane; ``j != i`` only, as
  a row's summands add up to zero) into a chunk-sized buffer and, once a chunk is done, adds
  their products with the covariates into the gradient; gamma goes out time-major, ``(T, K,
  B)`` as the homogeneous kernel's, each block's lanes copied in after its backward sweep.

Steps whose transition is not used (the last step of a sequence and its padding) get zero
covariates, hence finite matrices and zero gradient whatever the design holds there. A lane of
zero likelihood (or NaN input) is cleared after the forward sweep: ``-inf``, zero gamma and
no contribution to the gradient. Everything is float64.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from hmm_pyro.kernels._numba.fastexp import fast_exp, prefer_wide_vectors
from hmm_pyro.kernels._numba.lanes import accumulate_scale, prepare_emissions
from hmm_pyro.kernels._numba.regression_build import build_chunk, design_block

__all__ = [
    "BLOCK_LANES",
    "CHUNK_BYTES",
    "LANE_GROUP",
    "regression_sweeps",
]

BLOCK_LANES = 32
"""Most lanes per block (one block per draw when a draw has fewer sequences)."""
LANE_GROUP = 8
"""Block widths are multiples of this where they can be: the compiled loops over the lanes
run vectors of 4 and 8 and finish a width that is not a multiple of 4 one lane at a time
(blocks of 24 and 26 lanes instead of 25 and 25: 10-15% faster with 8 states, measured on a
busy machine)."""
CHUNK_BYTES = 2**17
"""Target size of one chunk of matrices (``K * K * steps * lanes`` float64)."""


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _forward(emis, coefficients, xt, entries, sums, lengths, alpha, scale, log_z, dead):  # noqa: ANN001, ANN202
    """Scaled forward sweep, building each chunk of matrices as it reaches it.

    ``entries (chunks or 1, K, K, C, n)``: a chunk is built at the first step that reads it
    (step ``t`` reads the matrix out of step ``t - 1``), so with one chunk of storage (no
    backward sweep to follow) each chunk overwrites the last once that one has been read;
    ``sums (C * n,)`` is the builder's scratch.
    """
    steps, num_states, lanes = emis.shape
    num_covariates, chunk = xt.shape[1], xt.shape[2]
    kept = entries.shape[0]
    total = np.zeros(lanes)
    inverse = np.empty(lanes)
    product = np.ones(lanes)
    for t in range(steps):
        if t >= 1 and (t - 1) % chunk == 0:  # the matrices out of steps t - 1 .. t + chunk - 2
            block, slot = (t - 1) // chunk, ((t - 1) // chunk) % kept
            build_chunk(
                coefficients,
                xt[block].reshape(num_covariates, chunk * lanes),
                entries[slot].reshape(num_states, num_states, chunk * lanes),
                sums,
            )
        if t == 0:
            for k in range(num_states):
                for b in range(lanes):
                    alpha[0, k, b] = emis[0, k, b]
                    total[b] += emis[0, k, b]
        else:
            slot, c = ((t - 1) // chunk) % kept, (t - 1) % chunk
            for j in range(num_states):
                for b in range(lanes):
                    alpha[t, j, b] = alpha[t - 1, 0, b] * entries[slot, 0, j, c, b]
            for i in range(1, num_states):
                for j in range(num_states):
                    for b in range(lanes):
                        alpha[t, j, b] += alpha[t - 1, i, b] * entries[slot, i, j, c, b]
            for b in range(lanes):
                total[b] = 0.0
            for j in range(num_states):
                for b in range(lanes):
                    alpha[t, j, b] *= emis[t, j, b]
                    total[b] += alpha[t, j, b]
        for b in range(lanes):
            scale[t, b] = total[b]
        accumulate_scale(t, lengths, total, product, log_z, dead, inverse)
        for j in range(num_states):
            for b in range(lanes):
                alpha[t, j, b] *= inverse[b]
    for b in range(lanes):
        log_z[b] += math.log(product[b])


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract", "reassoc"})
def _covariate_products(summands, x, grad):  # noqa: ANN001, ANN202
    """``grad[i, j, p] += sum_q summands[i, j, q] x[p, q]`` (one chunk; summed in any order).

    Only ``j != i`` is read, two entries and up to four covariates per pass over ``q``: a
    row's summands add up to zero (a softmax is unchanged by a constant added to its logits),
    so the diagonal gets minus the sum of the others.
    """
    prefer_wide_vectors()
    num_states, num_covariates, size = summands.shape[0], x.shape[0], summands.shape[2]
    count = num_states * (num_states - 1)
    rows = np.empty(count + 1, dtype=np.int64)
    k = 0
    for i in range(num_states):
        for j in range(num_states):
            if j != i:
                rows[k] = i * num_states + j
                k += 1
    rows[count] = rows[count - 1] if count else 0  # an odd count: the last entry twice
    flat = summands.reshape(num_states * num_states, size)
    totals = np.zeros((num_states * num_states, num_covariates + 3))
    for p in range(0, num_covariates, 4):
        width = min(num_covariates - p, 4)
        for k in range(0, count, 2):
            first, second = rows[k], rows[k + 1]
            a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = 0.0
            for q in range(size):
                u, v, x0 = flat[first, q], flat[second, q], x[p, q]
                a0 += u * x0
                b0 += v * x0
                if width > 1:
                    x1 = x[p + 1, q]
                    a1 += u * x1
                    b1 += v * x1
                if width > 2:
                    x2 = x[p + 2, q]
                    a2 += u * x2
                    b2 += v * x2
                if width > 3:
                    x3 = x[p + 3, q]
                    a3 += u * x3
                    b3 += v * x3
            totals[first, p], totals[first, p + 1] = a0, a1
            totals[first, p + 2], totals[first, p + 3] = a2, a3
            totals[second, p], totals[second, p + 1] = b0, b1
            totals[second, p + 2], totals[second, p + 3] = b2, b3
    for i in range(num_states):
        for j in range(num_states):
            if j != i:
                for p in range(num_covariates):
                    total = totals[i * num_states + j, p]
                    grad[i, j, p] += total
                    grad[i, i, p] -= total


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract", "reassoc"})
def _warm(chunk, scratch):  # noqa: ANN001, ANN202
    """Read a chunk of stored matrices once, in order, before the backward sweep steps into it.

    The sweep reads a chunk's ``K * K`` rows at one step after another, backwards: as many
    interleaved streams, which the hardware prefetchers do not follow, so that every read waits
    for memory. One sequential pass brings the chunk into the cache at full bandwidth first
    (with 5 and 8 states and chunks stored beyond the cache, the sweeps measured 5-10% faster
    on a busy machine). The sum goes to ``scratch[0, 0, 0, 0]``, a place nothing reads, so that
    the compiler keeps the pass.
    """
    total = 0.0
    for q in range(chunk.size):
        total += chunk[q]
    scratch[0, 0, 0, 0] = total


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _backward(emis, entries, xt, weights, lengths, alpha, scale, summands, grad):  # noqa: ANN001, ANN202
    """Scaled backward sweep: gamma over ``alpha`` (zero at padded steps), the gradient.

    Step ``t`` writes ``weights * alpha_t[i] A_t[i, j] (ahead_t[j] - beta_t[i])`` (``j !=
    i``) into ``summands (K, K, C, n)`` at its place in the chunk, and reads ``alpha[t]``
    before it writes gamma there; each finished chunk goes into ``grad (K, K, P)`` by
    :func:`_covariate_products`.
    """
    steps, num_states, lanes = emis.shape
    num_covariates, chunk = xt.shape[1], xt.shape[2]
    beta = np.empty((2, num_states, lanes))
    ahead = np.empty((num_states, lanes))
    rowsum = np.empty(lanes)
    weighted = np.empty(lanes)
    inverse = np.empty(lanes)
    last = steps - 1
    for k in range(num_states):
        for b in range(lanes):
            beta[last % 2, k, b] = 1.0
            alpha[last, k, b] = alpha[last, k, b] if last < lengths[b] else 0.0
    summands[:] = 0.0  # the last chunk's places from the last step on stay zero
    for t in range(steps - 2, -1, -1):
        current, following = t % 2, (t + 1) % 2
        block, c = t // chunk, t % chunk
        if c == chunk - 1 or t == steps - 2:  # the first step of a chunk in this sweep
            _warm(entries[block].reshape(entries[block].size), summands)
        for b in range(lanes):
            inverse[b] = 1.0 / scale[t + 1, b] if t + 1 < lengths[b] else 0.0
        for j in range(num_states):
            for b in range(lanes):
                ahead[j, b] = emis[t + 1, j, b] * beta[following, j, b] * inverse[b]
        for i in range(num_states):
            for b in range(lanes):
                rowsum[b] = entries[block, i, i, c, b] * ahead[i, b]
            for j in range(num_states):
                if j != i:
                    for b in range(lanes):
                        rowsum[b] += entries[block, i, j, c, b] * ahead[j, b]
            for b in range(lanes):
                # the last real step of a sequence (or a padded one) starts with beta = 1
                beta[current, i, b] = rowsum[b] + (0.0 if t + 1 < lengths[b] else 1.0)
                weighted[b] = alpha[t, i, b] * weights[b]
                alpha[t, i, b] = alpha[t, i, b] * beta[current, i, b] if t < lengths[b] else 0.0
            for j in range(num_states):
                if j != i:
                    for b in range(lanes):
                        summands[i, j, c, b] = (
                            entries[block, i, j, c, b] * weighted[b] * (ahead[j, b] - rowsum[b])
                        )
        if c == 0:
            _covariate_products(
                summands.reshape(num_states, num_states, chunk * lanes),
                xt[block].reshape(num_covariates, chunk * lanes),
                grad,
            )


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _clear_dead(dead, emis, entries, alpha, scale, weights):  # noqa: ANN001, ANN202
    """Lanes of zero likelihood: finite, zero-weighted inputs for the backward sweep."""
    for b in range(dead.shape[0]):
        if not dead[b]:
            continue
        weights[b] = 0.0
        emis[:, :, b] = 1.0
        alpha[:, :, b] = 0.0
        scale[:, b] = 1.0
        entries[:, :, :, :, b] = 0.0


def _blocks(start: int, stop: int, per_draw: int) -> np.ndarray:
    """Lanes ``start .. stop`` cut at draw boundaries into blocks of near-equal size.

    Widths are multiples of :data:`LANE_GROUP` where a draw has that many lanes per block,
    the lanes left over going to its last block (50 lanes: blocks of 24 and 26, not 25 and 25).
    """
    blocks = []
    while start < stop:
        end = min(stop, (start // per_draw + 1) * per_draw)
        count = -(-(end - start) // BLOCK_LANES)
        groups, left = divmod(end - start, LANE_GROUP)
        if groups >= count:
            base, extra = divmod(groups, count)
            widths = [LANE_GROUP * (base + (k < extra)) for k in range(count)]
            widths[-1] += left
        else:
            base, extra = divmod(end - start, count)
            widths = [base + (k < extra) for k in range(count)]
        for width in widths:
            blocks.append((start, start + width))
            start += width
    return np.array(blocks, dtype=np.int64).reshape(-1, 2)


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _exp_in_place(values):  # noqa: ANN001, ANN202
    """``values = exp(values)`` over a contiguous array (vectorised :func:`fast_exp`)."""
    prefer_wide_vectors()
    flat = values.reshape(values.size)
    for q in range(flat.size):
        flat[q] = fast_exp(flat[q])


@numba.njit(cache=True, nogil=True)
def _lanes_out(gamma, low, gamma_out):  # noqa: ANN001, ANN202
    """A block's ``gamma (T, K, n)`` into lanes ``low ..`` of the time-major ``(T, K, B)``."""
    steps, num_states, lanes = gamma.shape
    for t in range(steps):
        for k in range(num_states):
            for b in range(lanes):
                gamma_out[t, k, low + b] = gamma[t, k, b]


@numba.njit(cache=True, nogil=True)
def _layout(steps, num_states, lanes, chunk_bytes):  # noqa: ANN001, ANN202
    """Steps per chunk and number of chunks for a block of ``lanes``."""
    chunk = max(1, chunk_bytes // (8 * num_states * num_states * lanes))
    return chunk, -(-steps // chunk)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sweep_blocks(  # noqa: ANN202
    log_pi,  # noqa: ANN001
    coefficients,  # noqa: ANN001
    design,  # noqa: ANN001
    log_lik,  # noqa: ANN001
    lengths,  # noqa: ANN001
    weights,  # noqa: ANN001
    blocks,  # noqa: ANN001
    first,  # noqa: ANN001
    per_draw,  # noqa: ANN001
    chunk_bytes,  # noqa: ANN001
    backward,  # noqa: ANN001
    log_z,  # noqa: ANN001
    dead,  # noqa: ANN001
    gamma,  # noqa: ANN001
    grad,  # noqa: ANN001
):
    """Every block of lanes: the forward sweep and, with ``backward``, the backward sweep.

    Scratch memory is allocated once, as flat arrays sized for the largest block, and each
    block takes contiguous arrays of its own shape from their beginnings.
    """
    steps, num_states = log_lik.shape[1], log_lik.shape[2]
    num_covariates = coefficients.shape[3]
    squares = num_states * num_states
    size_states = size_entries = size_chunk = size_design = size_steps = 0
    for k in range(blocks.shape[0]):
        lanes = blocks[k, 1] - blocks[k, 0]
        chunk, chunks = _layout(steps, num_states, lanes, chunk_bytes)
        stored = chunks if backward else 1
        size_states = max(size_states, steps * num_states * lanes)
        size_entries = max(size_entries, stored * squares * chunk * lanes)
        size_chunk = max(size_chunk, chunk * lanes)
        size_design = max(size_design, chunks * num_covariates * chunk * lanes)
        size_steps = max(size_steps, steps * lanes)
    emis_memory, alpha_memory = np.empty(size_states), np.empty(size_states)
    entries_memory = np.empty(size_entries)
    summands_memory = np.empty(squares * size_chunk if backward else 0)
    sums, scale_memory = np.empty(size_chunk), np.empty(size_steps)
    xt_memory = np.empty(size_design)
    for k in range(blocks.shape[0]):
        start, stop = blocks[k, 0], blocks[k, 1]
        lanes = stop - start
        chunk, chunks = _layout(steps, num_states, lanes, chunk_bytes)
        stored = chunks if backward else 1
        emis = emis_memory[: steps * num_states * lanes].reshape((steps, num_states, lanes))
        alpha = alpha_memory[: steps * num_states * lanes].reshape((steps, num_states, lanes))
        scale = scale_memory[: steps * lanes].reshape((steps, lanes))
        entries = entries_memory[: stored * squares * chunk * lanes].reshape(
            (stored, num_states, num_states, chunk, lanes)
        )
        xt = xt_memory[: chunks * num_covariates * chunk * lanes].reshape(
            (chunks, num_covariates, chunk, lanes)
        )
        low, high = start - first, stop - first
        draw = start // per_draw
        block_pi = log_pi if log_pi.shape[0] == 1 else log_pi[low:high]
        block_z, block_dead, block_lengths = log_z[low:high], dead[low:high], lengths[low:high]
        prepare_emissions(block_pi, log_lik[low:high], block_lengths, emis, block_z, block_dead)
        _exp_in_place(emis)
        design_block(design, start, block_lengths, xt)
        _forward(
            emis,
            coefficients[draw],
            xt,
            entries,
            sums[: chunk * lanes],
            block_lengths,
            alpha,
            scale,
            block_z,
            block_dead,
        )
        if not backward:
            continue
        summands = summands_memory[: squares * chunk * lanes].reshape(
            (num_states, num_states, chunk, lanes)
        )
        block_weights = weights[low:high].copy()
        _clear_dead(block_dead, emis, entries, alpha, scale, block_weights)
        _backward(
            emis,
            entries,
            xt,
            block_weights,
            block_lengths,
            alpha,
            scale,
            summands,
            grad[draw],
        )
        _lanes_out(alpha, low, gamma)
    for b in range(log_z.shape[0]):
        if dead[b]:
            log_z[b] = -np.inf


def regression_sweeps(
    log_pi: np.ndarray,
    coefficients: np.ndarray,
    design: np.ndarray,
    log_lik: np.ndarray,
    lengths: np.ndarray,
    per_draw: int,
    weights: np.ndarray | None = None,
    backward: bool = True,
    first: int = 0,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Log likelihood, gamma and the gradient with respect to the coefficients.

    Parameters
    ----------
    log_pi : numpy.ndarray
        ``(B or 1, K)`` float64.
    coefficients : numpy.ndarray
        ``(D, K, K, P)`` float64, finite: draw ``d`` covers the lanes ``d * per_draw ..
        (d + 1) * per_draw - 1`` (lane numbers counted from the whole batch, see ``first``).
    design : numpy.ndarray
        ``(M, T, P)`` float64 covariates: lane ``g`` reads row ``g % M``. Row ``t`` gives the
        transition from step ``t`` to ``t + 1``; not read from the last step of a sequence on.
    log_lik : numpy.ndarray
        ``(B, T, K)`` float64 emission log likelihoods (not read at padded steps).
    lengths : numpy.ndarray
        ``(B,)`` int64, each in ``[1, T]``.
    per_draw : int
        Lanes per draw.
    weights : numpy.ndarray, optional
        ``(B,)`` float64 weight of each lane in the gradient (default 1).
    backward : bool
        Run the backward sweep (gamma and the gradient).
    first : int
        Lane number of ``log_lik[0]`` in the whole batch (a slice of it runs in a thread).

    Returns
    -------
    log_z, gamma, grad : numpy.ndarray
        ``(B,)`` (``-inf`` for a sequence of zero likelihood); ``(B, T, K)`` gamma (zero at
        padded steps and for a sequence of zero likelihood; a transposed view of a time-major
        array, not C-contiguous, as the homogeneous kernel's) and ``(D, K, K, P)`` the weighted
        sum over each draw's lanes of the gradient of their log likelihoods with respect to
        the coefficients (both ``None`` without ``backward``).
    """
    batch, steps, num_states = log_lik.shape
    num_draws, num_covariates = coefficients.shape[0], coefficients.shape[3]
    if weights is None:
        weights = np.ones(batch)
    log_z = np.empty(batch)
    dead = np.empty(batch, dtype=np.bool_)
    gamma = np.empty((steps, num_states, batch if backward else 0))  # time-major
    grad = np.zeros((num_draws, num_states, num_states, num_covariates if backward else 0))
    blocks = _blocks(first, first + batch, per_draw)
    _sweep_blocks(
        log_pi,
        coefficients,
        design,
        log_lik,
        lengths,
        weights,
        blocks,
        first,
        per_draw,
        CHUNK_BYTES,
        backward,
        log_z,
        dead,
        gamma,
        grad,
    )
    return (log_z, gamma.transpose(2, 0, 1), grad) if backward else (log_z, None, None)
