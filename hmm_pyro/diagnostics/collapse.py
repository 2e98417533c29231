"""Emission collapse: indistinguishable emission laws, and whether the data or the prior did it.

Label-free statistic per draw: the smallest pairwise squared Hellinger distance ``m``. Its
posterior probability of being below :data:`~hmm_pyro.diagnostics.thresholds.COLLAPSE_DISTANCE`
is compared with the same probability under the prior (``idata.prior``): posterior odds over
prior odds (a Savage-Dickey-like Bayes factor) separates "the data did not separate the states"
from "the prior makes them alike" (docs/degeneracy.md#emission-collapse).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmm_pyro.data import Sequences
from hmm_pyro.diagnostics.thresholds import COLLAPSE_DISTANCE, COLLAPSE_PROBABILITY
from hmm_pyro.labels.draws import Arrays, emission_distances, to_numpy
from hmm_pyro.labels.groups import count_groups, merge_groups
from hmm_pyro.model import HMM

__all__ = [
    "CollapseStatistics",
    "collapse_statistics",
    "min_pairwise",
    "pooled_distance",
    "pooled_emission",
]


def min_pairwise(distances: np.ndarray) -> np.ndarray:
    """Smallest off-diagonal entry of ``(*batch, K, K)`` distances (1.0 when ``K = 1``)."""
    num = distances.shape[-1]
    if num < 2:
        return np.ones(distances.shape[:-2])
    upper = np.triu_indices(num, k=1)
    return distances[..., upper[0], upper[1]].min(-1)


def pooled_emission(hmm: HMM, data: Sequences) -> Arrays:
    """Emission parameters of the one-state fit, ``(1, ...)``: where identical states end up.

    Overall symbol frequencies (categorical), pooled mean and standard deviation (Gaussian),
    pooled mean count (Poisson), over the observed entries
    (:meth:`hmm_pyro.emissions.Emission.pooled_params`).
    """
    return to_numpy(hmm.emission.pooled_params(data))


def pooled_distance(hmm: HMM, data: Sequences, params: Arrays) -> np.ndarray:
    """Squared Hellinger distance of each state to the one-state fit: ``(*batch, K)``."""
    pooled = pooled_emission(hmm, data)
    num = hmm.num_states
    joined = {}
    for name in hmm.emission.param_names:
        value = np.asarray(params[name])
        trailing = len(hmm.emission.param_shapes(num)[name])
        batch = value.shape[: value.ndim - trailing]
        extra = np.broadcast_to(pooled[name], (*batch, *pooled[name].shape))
        joined[name] = np.concatenate([value, extra], axis=value.ndim - trailing)
    return emission_distances(hmm, joined)[..., :num, num]


def _odds(probability: float) -> float:
    return probability / (1.0 - probability)


@dataclass(frozen=True)
class CollapseStatistics:
    """Collapse measurements on posterior draws, calibrated against prior draws.

    Attributes
    ----------
    min_distance : numpy.ndarray
        ``(chain, draw)`` smallest pairwise squared Hellinger distance of each draw.
    p_post, p_prior : float
        ``P(min distance < threshold)`` under the posterior and the prior.
    bayes_factor : float
        Posterior odds over prior odds of "collapsed" (counts regularised by +1/2).
    pair_probability : numpy.ndarray
        ``(K, K)`` ``P(H2_jk < threshold | y)`` in the fit's labelling.
    groups : list of tuple of int
        Groups of states collapsed together (single linkage on ``pair_probability > 0.5``).
    num_distinct : numpy.ndarray
        ``(chain, draw)`` number of groups of indistinguishable states in each draw.
    distance : float
        The threshold used.
    distances : numpy.ndarray
        ``(chain, draw, K, K)`` posterior squared Hellinger distances.
    """

    min_distance: np.ndarray
    p_post: float
    p_prior: float
    bayes_factor: float
    pair_probability: np.ndarray
    groups: list[tuple[int, ...]]
    num_distinct: np.ndarray
    distance: float
    distances: np.ndarray

    @property
    def collapsed(self) -> bool:
        """The closest pair is collapsed with posterior probability above the threshold."""
        return self.p_post > COLLAPSE_PROBABILITY

    @property
    def all_collapsed(self) -> bool:
        """Every state is indistinguishable from every other in most draws."""
        return float(np.mean(self.num_distinct == 1)) > COLLAPSE_PROBABILITY


def collapse_statistics(
    hmm: HMM,
    posterior: Arrays,
    prior: Arrays,
    distance: float = COLLAPSE_DISTANCE,
) -> CollapseStatistics:
    """Measure emission collapse.

    Parameters
    ----------
    hmm : HMM
        The model (``K >= 2``).
    posterior : dict of numpy.ndarray
        Posterior draws ``(chain, draw, ...)``.
    prior : dict of numpy.ndarray
        Prior draws ``(chain, draw, ...)`` (``idata.prior``).
    distance : float
        Squared Hellinger threshold below which two states are indistinguishable.

    Returns
    -------
    CollapseStatistics
    """
    post_d = emission_distances(hmm, posterior)
    prior_d = emission_distances(hmm, prior)
    post_m = min_pairwise(post_d)
    prior_m = min_pairwise(prior_d)
    below_post, below_prior = post_m < distance, prior_m < distance
    p_post, p_prior = float(below_post.mean()), float(below_prior.mean())
    reg_post = (below_post.sum() + 0.5) / (below_post.size + 1.0)
    reg_prior = (below_prior.sum() + 0.5) / (below_prior.size + 1.0)
    close = post_d < distance
    pairs = close.reshape(-1, *close.shape[-2:]).mean(0)
    return CollapseStatistics(
        min_distance=post_m,
        p_post=p_post,
        p_prior=p_prior,
        bayes_factor=float(_odds(reg_post) / _odds(reg_prior)),
        pair_probability=pairs,
        groups=merge_groups(pairs > COLLAPSE_PROBABILITY),
        num_distinct=count_groups(close),
        distance=distance,
        distances=post_d,
    )
