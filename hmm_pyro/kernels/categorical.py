"""Log likelihood of symbol sequences straight from ``log B``, without a ``(N, T, K)`` table.

For categorical emissions the table ``log_lik[n, t, k] = log B[k, y_nt]`` has only ``V``
distinct rows. :func:`categorical_log_likelihood` looks them up per symbol inside the numba
forward-backward (one exponential per symbol and state per call, none per step) and returns the
gradient with respect to ``log B`` as the gamma-weighted symbol counts, so autograd records
neither a table nor a gather/scatter over ``N x T x K``. The pure-torch route (other devices,
batched parameters, higher-order gradients) builds the table and calls
:func:`~hmm_pyro.kernels.log_likelihood`; both agree to round-off.
:func:`categorical_probability_log_likelihood` takes ``pi``, ``A``, ``B`` themselves and their
logarithms inside the same autograd node (what ``HMM.log_likelihood`` runs).
"""

from __future__ import annotations

import numpy as np
import torch
from pyro.ops.special import safe_log

from hmm_pyro._validation import check_choice, describe
from hmm_pyro.kernels import _numba
from hmm_pyro.kernels.forward_backward import BACKENDS, log_likelihood

__all__ = [
    "MISSING_SYMBOL",
    "SymbolLanes",
    "categorical_expected_counts",
    "categorical_log_likelihood",
    "categorical_probability_log_likelihood",
    "shared_parameters",
    "symbol_table",
]

MISSING_SYMBOL = -1
"""Symbol value of an unobserved step (it contributes ``log 1 = 0`` for every state)."""


def symbol_table(log_B: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
    """The ``(..., T, K)`` emission table ``log B[k, y_t]`` (zero at missing steps).

    Parameters
    ----------
    log_B : torch.Tensor
        ``(..., K, V)`` log emission matrix.
    symbols : torch.Tensor
        ``(..., T)`` integer symbols, :data:`MISSING_SYMBOL` where unobserved (values are
        clamped into ``[0, V)``: check them first, e.g. with :class:`SymbolLanes`).

    Returns
    -------
    torch.Tensor
        ``(..., T, K)``, differentiable in ``log_B``.
    """
    observed = symbols >= 0
    columns = log_B.transpose(-1, -2)  # (..., V, K)
    index = symbols.clamp(0, log_B.shape[-1] - 1).unsqueeze(-1)  # (..., T, 1)
    rank = max(columns.dim(), index.dim())  # the batch dimensions broadcast
    columns = columns.reshape((1,) * (rank - columns.dim()) + columns.shape)
    index = index.reshape((1,) * (rank - index.dim()) + index.shape)
    rows = torch.take_along_dim(columns, index, dim=-2)
    return torch.where(observed.unsqueeze(-1), rows, torch.zeros((), dtype=log_B.dtype))


class SymbolLanes:
    """Symbol sequences prepared for the numba route: reuse one across many calls.

    Parameters
    ----------
    symbols : torch.Tensor
        ``(..., T)`` integer symbols in ``[0, num_symbols)``, :data:`MISSING_SYMBOL` where
        unobserved; values at padded steps (``t >= lengths``) are ignored.
    num_symbols : int
        ``V``.
    lengths : torch.Tensor, optional
        ``(...)`` valid steps per sequence, each in ``[1, T]`` (default: all ``T``).

    Attributes
    ----------
    symbols : torch.Tensor
        The checked ``(..., T)`` symbols (for the table route).
    lengths : torch.Tensor
        ``(...)`` int64 lengths.
    lanes : numpy.ndarray
        ``(T, N)`` time-major int64 symbols, ``num_symbols`` at missing and padded steps.
    """

    def __init__(
        self, symbols: torch.Tensor, num_symbols: int, lengths: torch.Tensor | None = None
    ) -> None:
        lengths = _checked_lengths(symbols, lengths)
        self.symbols, self.lengths, self.num_symbols = symbols, lengths, num_symbols
        flat = symbols.detach().cpu().reshape(-1, symbols.shape[-1]).to(torch.long).numpy()
        flat_lengths = np.ascontiguousarray(lengths.cpu().reshape(-1).numpy())
        self.lanes, bad = _numba.time_major_symbols(flat, flat_lengths, num_symbols)
        self.lane_lengths = flat_lengths
        if bad:  # the numba pass found it; the torch check names it
            _check_values(symbols, lengths, num_symbols)


def _checked_lengths(symbols: object, lengths: object) -> torch.Tensor:
    """Type and shape checks of ``symbols (..., T)``; ``lengths`` as int64 of shape ``(...)``."""
    if not isinstance(symbols, torch.Tensor):
        raise TypeError(f"symbols: expected an integer torch.Tensor, got {describe(symbols)}")
    if symbols.is_floating_point() or symbols.is_complex() or symbols.dtype == torch.bool:
        raise TypeError(f"symbols: expected an integer tensor, got {describe(symbols)}")
    if symbols.dim() < 1 or symbols.shape[-1] < 1:
        raise ValueError(f"symbols: expected (..., T) with T >= 1, got {describe(symbols)}")
    if lengths is None:
        return torch.full(
            symbols.shape[:-1], symbols.shape[-1], dtype=torch.long, device=symbols.device
        )
    if not isinstance(lengths, torch.Tensor) or lengths.is_floating_point():
        raise TypeError(f"lengths: expected an integer tensor, got {describe(lengths)}")
    try:
        return lengths.to(torch.long).expand(symbols.shape[:-1])
    except RuntimeError as error:
        raise ValueError(
            f"lengths: expected shape {tuple(symbols.shape[:-1])} (from symbols), "
            f"got {describe(lengths)}"
        ) from error


def _check_values(symbols: torch.Tensor, lengths: torch.Tensor, num_symbols: int) -> None:
    """Lengths in ``[1, T]``; symbols at valid steps in ``[-1, V)`` (on the tensors' device)."""
    num_steps = symbols.shape[-1]
    if lengths.numel() == 0:
        return
    shortest, longest = int(lengths.min()), int(lengths.max())
    if shortest < 1 or longest > num_steps:
        raise ValueError(
            f"lengths: expected values in [1, {num_steps}] (T from symbols), "
            f"got min {shortest} and max {longest}"
        )
    valid = torch.arange(num_steps, device=symbols.device) < lengths.unsqueeze(-1)
    checked = symbols[valid.expand(symbols.shape)]
    low, high = int(checked.min()), int(checked.max())
    if low < MISSING_SYMBOL or high >= num_symbols:
        raise ValueError(
            f"symbols: expected values in [0, {num_symbols}) (V from log_B) or "
            f"{MISSING_SYMBOL} for a missing step, got min {low} and max {high}"
        )


def shared_parameters(log_pi: torch.Tensor, log_A: torch.Tensor, log_B: torch.Tensor) -> bool:
    """True for unbatched, consistent, floating-point CPU parameters: the numba route's inputs.

    Parameters
    ----------
    log_pi, log_A, log_B : torch.Tensor
        Candidate ``(K,)``, ``(K, K)`` and ``(K, V)`` tensors.

    Returns
    -------
    bool
    """
    tensors = (log_pi, log_A, log_B)
    if not all(isinstance(t, torch.Tensor) and t.is_floating_point() for t in tensors):
        return False
    num_states = log_B.shape[0] if log_B.dim() == 2 else -1
    return (
        log_pi.shape == (num_states,)
        and log_A.shape == (num_states, num_states)
        and _numba.supports(*tensors)
    )


def categorical_log_likelihood(
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_B: torch.Tensor,
    symbols: torch.Tensor,
    lengths: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Log marginal likelihood of symbol sequences under a categorical-emission HMM.

    Equal to ``log_likelihood(log_pi, log_A, symbol_table(log_B, symbols), lengths)``, faster:
    the numba route never builds the ``(..., T, K)`` table.

    Parameters
    ----------
    log_pi, log_A
        As in :func:`~hmm_pyro.kernels.log_likelihood`.
    log_B : torch.Tensor
        ``(..., K, V)`` log emission matrix, ``log_B[k, v] = log P(y = v | z = k)``.
    symbols : torch.Tensor or SymbolLanes
        ``(..., T)`` integer symbols in ``[0, V)``; :data:`MISSING_SYMBOL` (-1) marks an
        unobserved step. Values at padded steps (``t >= lengths``) are ignored. Pass a
        :class:`SymbolLanes` (with its lengths) to skip the preparation on repeated calls.
    lengths : torch.Tensor, optional
        ``(...)`` number of valid steps of each sequence (default: all ``T``).
    backend : {"auto", "numba", "torch"}
        ``"numba"`` (CPU, first-order gradients) needs unbatched ``log_pi (K,)``,
        ``log_A (K, K)``, ``log_B (K, V)``; ``"auto"`` uses it then and the table route
        otherwise; ``"torch"`` always builds the table.

    Returns
    -------
    torch.Tensor
        ``(...)`` log likelihood of each sequence; differentiable in ``log_pi``, ``log_A``,
        ``log_B``.
    """
    prepared = _numba_lanes(log_pi, log_A, log_B, symbols, lengths, backend)
    if prepared is not None:
        dtype = torch.promote_types(torch.promote_types(log_pi.dtype, log_A.dtype), log_B.dtype)
        log_pi, log_A, log_B = (
            t if t.dtype == dtype else t.to(dtype) for t in (log_pi, log_A, log_B)
        )
        value = _numba.CategoricalLogLikelihood.apply(
            log_pi, log_A, log_B, prepared.lanes, prepared.lane_lengths
        )
        return _batch_shaped(value, prepared.symbols)
    if not isinstance(log_B, torch.Tensor) or log_B.dim() < 2 or not log_B.is_floating_point():
        raise ValueError(
            f"log_B: expected a floating-point (..., K, V) tensor, got {describe(log_B)}"
        )
    if isinstance(symbols, SymbolLanes):
        symbols, lengths = symbols.symbols, symbols.lengths
    else:  # the numba route's checks, without building its lanes
        _check_values(symbols, _checked_lengths(symbols, lengths), log_B.shape[-1])
    return log_likelihood(log_pi, log_A, symbol_table(log_B, symbols), lengths, backend)


def categorical_probability_log_likelihood(
    pi: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    symbols: torch.Tensor | SymbolLanes,
    lengths: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """:func:`categorical_log_likelihood` of probabilities, the logarithms taken inside.

    Equal, value and gradient bit for bit, to ``categorical_log_likelihood(safe_log(pi),
    safe_log(A), safe_log(B).clamp(min=finfo.min), symbols, lengths, backend)`` (Pyro's
    ``safe_log``: gradient ``g / max(p, eps)``; ``log 0`` clamped to the most negative float,
    whose entries get gradient zero). On the numba route, with ``pi``, ``A``, ``B`` of one
    float32/float64 dtype, it is one autograd node
    (:class:`~hmm_pyro.kernels._numba.bridge.CategoricalProbabilityLikelihood`) where the
    composition records four: what a user's ``HMM.log_likelihood`` then ``backward`` runs.

    Parameters
    ----------
    pi, A, B : torch.Tensor
        ``(..., K)``, ``(..., K, K)``, ``(..., K, V)`` probabilities (not checked here).
    symbols, lengths, backend
        As in :func:`categorical_log_likelihood`.

    Returns
    -------
    torch.Tensor
        ``(...)`` log likelihood of each sequence; differentiable in ``pi``, ``A``, ``B``.
    """
    for name, value in (("pi", pi), ("A", A), ("B", B)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got {describe(value)}")
    if pi.dtype == A.dtype == B.dtype and B.dtype in (torch.float32, torch.float64):
        prepared = _numba_lanes(pi, A, B, symbols, lengths, backend)
        if prepared is not None:
            value = _numba.CategoricalProbabilityLikelihood.apply(
                pi, A, B, prepared.lanes, prepared.lane_lengths
            )
            return _batch_shaped(value, prepared.symbols)
    log_B = safe_log(B)
    log_B = log_B.clamp(min=torch.finfo(log_B.dtype).min)
    return categorical_log_likelihood(safe_log(pi), safe_log(A), log_B, symbols, lengths, backend)


def _numba_lanes(
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_B: torch.Tensor,
    symbols: torch.Tensor | SymbolLanes,
    lengths: torch.Tensor | None,
    backend: str,
) -> SymbolLanes | None:
    """The prepared symbols when the numba route runs, else ``None``.

    Checks ``lengths`` against prepared symbols, ``backend``, and that ``"numba"`` gets
    parameters it can take; prepares raw symbols (or lanes for another ``V``) for the route.
    """
    if isinstance(symbols, SymbolLanes) and lengths is not None:
        raise ValueError("lengths: give them to SymbolLanes, not with prepared symbols")
    check_choice("backend", backend, BACKENDS)
    shared = shared_parameters(log_pi, log_A, log_B)
    if backend == "numba" and not shared:
        raise ValueError(
            "backend: 'numba' needs unbatched CPU log_pi (K,), log_A (K, K) and log_B (K, V); "
            "use 'auto' or 'torch' for batched parameters or other devices"
        )
    if not shared or backend == "torch":
        return None
    if isinstance(symbols, SymbolLanes):
        if symbols.num_symbols == log_B.shape[1]:
            return symbols
        symbols, lengths = symbols.symbols, symbols.lengths
    return SymbolLanes(symbols, log_B.shape[1], lengths)


def _batch_shaped(value: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
    """``value (N,)`` in the batch shape of ``symbols (..., T)`` (a view node costs ~5 us)."""
    batch_shape = symbols.shape[:-1]
    return value if value.shape == batch_shape else value.reshape(batch_shape)


def categorical_expected_counts(
    log_pi: torch.Tensor, log_A: torch.Tensor, log_B: torch.Tensor, lanes: SymbolLanes
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """EM's E-step on the numba symbol route: log likelihood and expected counts, no autograd.

    The value of :func:`categorical_log_likelihood` summed over sequences and its gradients
    with respect to ``log_pi``, ``log_A`` and ``log_B`` (the expected first-step weights,
    transition counts and emission counts), from one fused forward-backward pass without
    building an autograd graph.

    Parameters
    ----------
    log_pi, log_A, log_B : torch.Tensor
        Unbatched CPU ``(K,)``, ``(K, K)`` and ``(K, V)`` (:func:`shared_parameters`).
    lanes : SymbolLanes
        The prepared symbols (with ``V`` symbols).

    Returns
    -------
    log_likelihood : torch.Tensor
        Scalar, summed over sequences.
    start, transitions, counts : torch.Tensor
        ``(K,)``, ``(K, K)`` and ``(K, V)``.
    """
    if not shared_parameters(log_pi, log_A, log_B) or lanes.num_symbols != log_B.shape[1]:
        raise ValueError(
            "log_pi, log_A, log_B: expected unbatched CPU (K,), (K, K) and (K, V) tensors "
            f"with V = {lanes.num_symbols} (from lanes), got {describe(log_pi)}, "
            f"{describe(log_A)}, {describe(log_B)}"
        )
    log_z, start, transitions, counts = _numba.categorical_expected_counts(
        log_pi, log_A, log_B, lanes.lanes, lanes.lane_lengths
    )
    return log_z.sum(), start, transitions, counts
