"""Empty and redundant states: expected occupancy from forward-backward, averaged over draws.

The expected number of time steps in state ``k`` is ``n_k = sum_{sequences, t} gamma_t(k)``
for each posterior draw. A state with fewer expected observations than it has free emission
parameters cannot have its emission law estimated (docs/degeneracy.md#empty-states).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmm_pyro.diagnostics.thresholds import EMPTY_STATE_PROBABILITY
from hmm_pyro.model import HMM

__all__ = ["OccupancyStatistics", "free_emission_parameters", "occupancy_statistics"]


def free_emission_parameters(hmm: HMM) -> int:
    """Free emission parameters of one state: ``V - 1`` (categorical), ``2 D``, ``D``.

    :meth:`hmm_pyro.emissions.Emission.num_free_params` of one state.
    """
    return hmm.emission.num_free_params(1)


@dataclass(frozen=True)
class OccupancyStatistics:
    """Occupancy measurements.

    Attributes
    ----------
    counts : numpy.ndarray
        ``(chain, draw, K)`` expected number of steps in each state.
    total_steps : int
        Valid time steps over all sequences.
    required : float
        ``n0``: expected steps below which a state is empty.
    p_empty : numpy.ndarray
        ``(K,)`` ``P(n_k < n0 | y)`` in the given labelling.
    p_any_empty : float
        ``P(min_k n_k < n0 | y)`` (label-free).
    mean_fraction : numpy.ndarray
        ``(K,)`` posterior mean occupancy ``n_k / total_steps``.
    perplexity : float
        Posterior median of ``exp(entropy(n / total_steps))``: a label-free effective number of
        occupied states.
    """

    counts: np.ndarray
    total_steps: int
    required: float
    p_empty: np.ndarray
    p_any_empty: float
    mean_fraction: np.ndarray
    perplexity: float

    @property
    def empty_states(self) -> tuple[int, ...]:
        """States that are empty with posterior probability above the threshold."""
        return tuple(np.flatnonzero(self.p_empty > EMPTY_STATE_PROBABILITY).tolist())

    @property
    def any_empty(self) -> bool:
        """Some state is empty (label-free decision)."""
        return self.p_any_empty > EMPTY_STATE_PROBABILITY


def occupancy_statistics(hmm: HMM, counts: np.ndarray, total_steps: int) -> OccupancyStatistics:
    """Summarise expected state counts.

    Parameters
    ----------
    hmm : HMM
        The model.
    counts : numpy.ndarray
        ``(chain, draw, K)`` expected number of steps per state.
    total_steps : int
        Valid time steps over all sequences.

    Returns
    -------
    OccupancyStatistics
    """
    required = float(max(1, free_emission_parameters(hmm)))
    flat = counts.reshape(-1, counts.shape[-1])
    fraction = flat / max(total_steps, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(fraction > 0, fraction * np.log(fraction), 0.0).sum(-1)
    return OccupancyStatistics(
        counts=counts,
        total_steps=int(total_steps),
        required=required,
        p_empty=(flat < required).mean(0),
        p_any_empty=float((flat.min(-1) < required).mean()),
        mean_fraction=fraction.mean(0),
        perplexity=float(np.median(np.exp(entropy))),
    )
