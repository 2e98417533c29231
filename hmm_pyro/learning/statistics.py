"""Sufficient statistics of the complete-data likelihood, from state weights.

One function turns per-step state weights ``w (N, T, K)`` (smoothed marginals ``gamma`` for EM,
one-hot decoded or labelled paths for hard EM and supervised estimation; zero at padding) into
the statistics every M-step needs. Unobserved coordinates are skipped: a missing observation
adds to the state and transition counts but to no emission statistic.

- categorical: ``counts[k, v] = sum_t w[t, k] [y_t = v]``
- Gaussian and Poisson (per state and coordinate, ``o[t, d]`` = observed):
  ``n[k, d] = sum_t w[t, k] o[t, d]``, ``s1 = sum_t w o y``, ``s2 = sum_t w o y**2``.
  Gaussian values are shifted by the per-coordinate mean of the data before summing, so that
  ``s2 - 2 mu s1 + mu**2 n`` does not cancel catastrophically; ``shift`` records it (zero for
  Poisson counts).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from hmm_pyro import kernels
from hmm_pyro.data import Sequences
from hmm_pyro.kernels import PAD_STATE
from hmm_pyro.model import HMM

__all__ = [
    "Statistics",
    "expected_statistics",
    "path_statistics",
    "weighted_statistics",
]

Params = dict[str, torch.Tensor]
DTYPE = torch.float64
_CACHE_KEY = "hmm_pyro.learning"
_ONE_HOT_LIMIT = 2**23
"""Largest ``N * T * V`` for which the symbols are cached as a dense indicator (64 MiB)."""


class Statistics(NamedTuple):
    """Sufficient statistics summed over all sequences.

    Attributes
    ----------
    start : torch.Tensor
        ``(K,)`` weight of each state at the first step.
    transitions : torch.Tensor
        ``(K, K)`` (expected) transition counts.
    emission : dict of torch.Tensor
        ``{"counts": (K, V)}`` (categorical) or ``{"n", "s1", "s2": (K, D), "shift": (D,)}``.
    """

    start: torch.Tensor
    transitions: torch.Tensor
    emission: dict[str, torch.Tensor]


def _flat_symbols(data: Sequences) -> tuple[torch.Tensor, torch.Tensor]:
    """Observed step indices into the flattened ``(N*T)`` axis, and their symbols."""

    def build() -> tuple[torch.Tensor, torch.Tensor]:
        observed = data.observed[..., 0].reshape(-1)
        index = torch.nonzero(observed).squeeze(-1)
        symbols = data.values[..., 0].reshape(-1)[index].long()
        return index, symbols

    return data.cached((_CACHE_KEY, "symbols"), build)


def _flat_one_hot(data: Sequences, num_symbols: int) -> torch.Tensor:
    """``(V, N*T)`` float64 indicator of each observed symbol (zero columns where missing)."""

    def build() -> torch.Tensor:
        index, symbols = _flat_symbols(data)
        encoded = torch.zeros(num_symbols, data.num_sequences * data.max_length, dtype=DTYPE)
        encoded[symbols, index] = 1.0
        return encoded

    return data.cached((_CACHE_KEY, "one_hot", num_symbols), build)


def _symbol_counts(data: Sequences, flat: torch.Tensor, num_symbols: int) -> torch.Tensor:
    """``(K, V)`` weighted symbol counts: a dense product when the indicator is small."""
    if flat.shape[0] * num_symbols <= _ONE_HOT_LIMIT:
        return (_flat_one_hot(data, num_symbols) @ flat).T.contiguous()
    index, symbols = _flat_symbols(data)
    counts = torch.zeros(num_symbols, flat.shape[1], dtype=DTYPE)
    counts.index_add_(0, symbols, flat[index])
    return counts.T.contiguous()


def _flat_moments(data: Sequences, centre: bool) -> tuple[torch.Tensor, ...]:
    """``(N*T, D)`` observed mask, (shifted) values and their squares (zeros where missing)."""

    def build() -> tuple[torch.Tensor, ...]:
        observed = data.observed.reshape(-1, data.dim)
        values = data.values.reshape(-1, data.dim)
        shift = torch.zeros(data.dim, dtype=DTYPE)
        if centre:
            shift = torch.nanmean(values, 0).nan_to_num(0.0).to(DTYPE)
        centred = torch.where(observed, values - shift, 0.0).to(DTYPE)
        return observed.to(DTYPE), centred, centred * centred, shift

    return data.cached((_CACHE_KEY, "moments", centre), build)


def weighted_statistics(
    hmm: HMM,
    data: Sequences,
    weights: torch.Tensor,
    start: torch.Tensor,
    transitions: torch.Tensor,
) -> Statistics:
    """Add the emission statistics of state weights ``(N, T, K)`` to given state counts.

    Parameters
    ----------
    hmm : HMM
        The model (its emission family decides the statistics).
    data : Sequences
        The observations.
    weights : torch.Tensor
        ``(N, T, K)`` state weights, zero at padding.
    start, transitions : torch.Tensor
        ``(K,)`` and ``(K, K)`` state and transition counts.

    Returns
    -------
    Statistics
    """
    num = hmm.num_states
    flat = weights.reshape(-1, num).to(DTYPE)
    if hmm.emission.family == "categorical":
        emission = {"counts": _symbol_counts(data, flat, hmm.emission.num_symbols)}
    else:
        centre = hmm.emission.family == "gaussian"
        observed, centred, squared, shift = _flat_moments(data, centre)
        transposed = flat.T
        emission = {
            "n": transposed @ observed,
            "s1": transposed @ centred,
            "s2": transposed @ squared,
            "shift": shift,
        }
    return Statistics(start.to(DTYPE), transitions.to(DTYPE), emission)


def expected_statistics(
    hmm: HMM, data: Sequences, params: Params
) -> tuple[torch.Tensor, Statistics]:
    """E-step: one forward-backward pass (numba on the CPU) and the expected statistics.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        The observations (already validated for the model).
    params : dict of torch.Tensor
        Current float64 parameters (valid, no draw dimensions).

    Returns
    -------
    log_likelihood : torch.Tensor
        Scalar ``log p(y | params)`` summed over sequences.
    statistics : Statistics
    """
    log_pi, log_A, log_lik, lengths = hmm.kernel_inputs(params, data)
    result = kernels.forward_backward(log_pi, log_A, log_lik, lengths)
    gamma = result.gamma
    stats = weighted_statistics(hmm, data, gamma, gamma[:, 0, :].sum(0), result.transitions.sum(0))
    return result.log_likelihood.sum(), stats


def path_statistics(hmm: HMM, data: Sequences, paths: torch.Tensor) -> Statistics:
    """Counts of hard state paths ``(N, T)`` (``-1`` at padding): states, transitions, emissions.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        The observations.
    paths : torch.Tensor
        ``(N, T)`` int64 states in ``[0, K)`` at valid steps, :data:`PAD_STATE` at padding.

    Returns
    -------
    Statistics
    """
    num = hmm.num_states
    valid = paths != PAD_STATE
    safe = paths.clamp(min=0)
    weights = torch.nn.functional.one_hot(safe, num).to(DTYPE) * valid.unsqueeze(-1)
    start = weights[:, 0, :].sum(0)
    pairs = valid[:, 1:] & valid[:, :-1]
    flat_pairs = (safe[:, :-1] * num + safe[:, 1:])[pairs]
    transitions = torch.bincount(flat_pairs, minlength=num * num).reshape(num, num).to(DTYPE)
    return weighted_statistics(hmm, data, weights, start, transitions)
