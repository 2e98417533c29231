"""Sufficient statistics of the complete-data likelihood, from state weights.

One function turns per-step state weights ``w (N, T, K)`` (smoothed marginals ``gamma`` for EM,
one-hot decoded or labelled paths for hard EM and supervised estimation; zero at padding) into
the statistics every M-step needs: the state and transition counts, and the emission family's
own statistics (:meth:`hmm_pyro.emissions.Emission.weighted_statistics`: symbol counts for
categorical emissions, weighted moments for Gaussian and Poisson ones). A missing observation
adds to the state and transition counts but to no emission statistic.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from pyro.ops.special import safe_log

from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.kernels import PAD_STATE
from hmm_pyro.model import HMM

__all__ = [
    "Statistics",
    "expected_statistics",
    "path_statistics",
    "weighted_statistics",
]

DTYPE = torch.float64


class Statistics(NamedTuple):
    """Sufficient statistics summed over all sequences.

    Attributes
    ----------
    start : torch.Tensor
        ``(K,)`` weight of each state at the first step.
    transitions : torch.Tensor
        ``(K, K)`` (expected) transition counts.
    emission : dict of torch.Tensor
        The family's statistics (:meth:`hmm_pyro.emissions.Emission.weighted_statistics`), e.g.
        ``{"counts": (K, V)}`` (categorical) or ``{"n", "s1", "s2": (K, D), "shift": (D,)}``.
    """

    start: torch.Tensor
    transitions: torch.Tensor
    emission: dict[str, torch.Tensor]


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
    flat = weights.reshape(-1, hmm.num_states).to(DTYPE)
    emission = hmm.emission.weighted_statistics(data, flat)
    return Statistics(start.to(DTYPE), transitions.to(DTYPE), emission)


def expected_statistics(
    hmm: HMM, data: Sequences, params: Params
) -> tuple[torch.Tensor, Statistics]:
    """E-step: the emission family's route to the expected statistics.

    :meth:`hmm_pyro.emissions.Emission.expected_statistics`: one forward-backward pass (numba
    on the CPU), on the symbols without a table for categorical emissions.

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
    log_pi, log_A = safe_log(params["pi"]), safe_log(params["A"])
    log_lik, start, transitions, emission = hmm.emission.expected_statistics(
        log_pi, log_A, params, data
    )
    return log_lik, Statistics(start.to(DTYPE), transitions.to(DTYPE), emission)


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
