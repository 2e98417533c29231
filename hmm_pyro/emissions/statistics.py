"""Helpers of the families' classical-learning statistics and data-driven starts.

The dtype of sufficient statistics and M-step parameters, the key under which statistics'
data are cached on :class:`~hmm_pyro.data.Sequences`, weighted moments per coordinate and
random data quantiles (the starts of location parameters).
"""

from __future__ import annotations

import torch

from hmm_pyro._types import Params
from hmm_pyro.data import Sequences

__all__ = ["STATISTICS_DTYPE", "moment_statistics", "quantile_locations"]

STATISTICS_DTYPE = torch.float64
"""Floating-point type of the sufficient statistics and of the M-step's parameters."""
_STATISTICS_CACHE = "hmm_pyro.emissions.statistics"
"""First element of the :meth:`~hmm_pyro.data.Sequences.cached` keys of the statistics' data."""


def moment_statistics(data: Sequences, weights: torch.Tensor, centre: bool) -> Params:
    """Per state and coordinate ``n = sum w o``, ``s1 = sum w o y``, ``s2 = sum w o y**2``.

    ``o[t, d]`` marks observed entries. With ``centre`` the values are shifted by the
    per-coordinate mean of the data before summing, so that ``s2 - 2 mu s1 + mu**2 n`` does
    not cancel catastrophically; ``shift (D,)`` records it (zero otherwise).

    Parameters
    ----------
    data : Sequences
        The observations.
    weights : torch.Tensor
        ``(N * T, K)`` float64 state weights of the flattened steps, zero at padding.
    centre : bool
        Shift the values by their mean.

    Returns
    -------
    dict of torch.Tensor
        ``n``, ``s1``, ``s2`` ``(K, D)`` and ``shift (D,)``.
    """

    def build() -> tuple[torch.Tensor, ...]:
        observed = data.observed.reshape(-1, data.dim)
        values = data.values.reshape(-1, data.dim)
        shift = torch.zeros(data.dim, dtype=STATISTICS_DTYPE)
        if centre:
            shift = torch.nanmean(values, 0).nan_to_num(0.0).to(STATISTICS_DTYPE)
        centred = torch.where(observed, values - shift, 0.0).to(STATISTICS_DTYPE)
        return observed.to(STATISTICS_DTYPE), centred, centred * centred, shift

    observed, centred, squared, shift = data.cached((_STATISTICS_CACHE, "moments", centre), build)
    transposed = weights.T
    return {
        "n": transposed @ observed,
        "s1": transposed @ centred,
        "s2": transposed @ squared,
        "shift": shift,
    }


def quantile_locations(
    data: Sequences, num_states: int, generator: torch.Generator, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(K, D)`` values at ``K`` sorted uniform random quantiles of each coordinate.

    Parameters
    ----------
    data : Sequences
        The observations.
    num_states : int
        Number of states ``K``.
    generator : torch.Generator
        Source of the ``K`` random levels.
    dtype : torch.dtype
        Floating-point type of the locations.

    Returns
    -------
    locations : torch.Tensor
        ``(K, D)``.
    observed : torch.Tensor
        The observed steps ``(steps, D)`` (NaN where missing).
    """
    observed = data.values[data.mask]  # (num_steps, D), NaN where missing
    levels = torch.sort(torch.rand(num_states, generator=generator, dtype=torch.float64)).values
    columns = []
    for d in range(observed.shape[1]):
        column = observed[:, d]
        column = column[~torch.isnan(column)]
        if column.numel() == 0:
            raise ValueError(f"data: coordinate {d} has no observed values")
        columns.append(torch.quantile(column, levels))
    return torch.stack(columns, -1).to(dtype), observed
