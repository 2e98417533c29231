"""Per-draw permutations into one labelling of the states, and how much to trust them.

Default: Stephens' KL algorithm on the forward-backward state probabilities, pooled over chains
(so it aligns chains and repairs within-chain switches in one go). ECR on the allocations runs
alongside as a cross-check: if the two disagree on more than
:data:`~hmm_pyro.labels.thresholds.METHOD_DISAGREEMENT` of the draws, the labels are not
identifiable. States that are collapsed keep their original order inside their group (they are
not relabelled as if they were distinct). :mod:`hmm_pyro.labels.relabel` applies the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmm_pyro.data import Sequences
from hmm_pyro.fit import Fit
from hmm_pyro.labels.algorithms import (
    agreement,
    align_to_reference,
    canonical_within_groups,
    ecr,
    stephens,
)
from hmm_pyro.labels.draws import (
    Arrays,
    emission_distances,
    state_statistics,
    time_points,
    to_numpy,
    to_torch,
)
from hmm_pyro.labels.groups import merge_groups, pair_probability
from hmm_pyro.labels.permutations import identity, permute_params
from hmm_pyro.labels.thresholds import (
    COLLAPSE_PROBABILITY,
    MAX_TIME_POINTS,
    METHOD_DISAGREEMENT,
)
from hmm_pyro.model import HMM

__all__ = [
    "RELABEL_METHODS",
    "Labelling",
    "align",
    "chain_alignment",
    "compute_labelling",
    "log_posterior",
    "prior_is_exchangeable",
]

RELABEL_METHODS = ("stephens", "ecr", "chains")
_GAMMA_BUDGET = 25_000_000
"""Largest ``draws x time points x K`` array of state probabilities kept (100 MB in float32);
the time points are thinned below :data:`MAX_TIME_POINTS` to stay within it."""
_MIN_TIME_POINTS = 200


@dataclass(frozen=True)
class Labelling:
    """Per-draw permutations into a common labelling, and how much to trust them.

    Attributes
    ----------
    perms : numpy.ndarray
        ``(chain, draw, K)`` permutations (``perm[j]`` = old label of new label ``j``).
    method : str
        Method that produced ``perms``.
    sweeps : int
        Iterations of that method.
    groups : list of tuple of int
        Groups of collapsed states (new labels), kept in their original order.
    agreement : float or None
        Fraction of draws on which Stephens and ECR agree (up to one global relabelling and
        modulo collapsed groups); ``None`` when only one method ran.
    counts : numpy.ndarray or None
        ``(chain, draw, K)`` expected steps per state in the *original* labelling.
    """

    perms: np.ndarray
    method: str
    sweeps: int
    groups: list[tuple[int, ...]]
    agreement: float | None
    counts: np.ndarray | None

    @property
    def identifiable(self) -> bool:
        """The cross-check agreed on all but at most ``METHOD_DISAGREEMENT`` of the draws."""
        # 1e-12: exactly 5% disagreeing (2 of 40 draws) gives 1 - 0.95 = 0.05000000000000004
        return self.agreement is None or 1.0 - self.agreement <= METHOD_DISAGREEMENT + 1e-12


def log_posterior(fit: Fit) -> np.ndarray:
    """``(chain, draw)`` log likelihood plus log prior of every draw (label-invariant)."""
    log_lik = fit.idata.log_likelihood["y"].sum("sequence").values
    log_prior = sum(variable.values for variable in fit.idata.log_prior.data_vars.values())
    return np.asarray(log_lik + log_prior, dtype=np.float64)


def prior_is_exchangeable(hmm: HMM, num_checks: int = 4, seed: int = 0) -> bool:
    """True when relabelling leaves the log prior unchanged (checked on adjacent swaps).

    Adjacent transpositions generate every permutation, so checking them on a few prior draws
    suffices (up to round-off, ``rtol = 1e-9``).
    """
    num = hmm.num_states
    if num < 2:
        return True
    draws = to_numpy(hmm.sample_prior(num_checks, seed=seed))
    base = hmm.log_prior(to_torch(hmm, draws)).numpy()
    for swap in range(num - 1):
        perm = np.arange(num)
        perm[[swap, swap + 1]] = perm[[swap + 1, swap]]
        swapped = permute_params(hmm, draws, np.broadcast_to(perm, (num_checks, num)))
        value = hmm.log_prior(to_torch(hmm, swapped)).numpy()
        if not np.allclose(value, base, rtol=1e-9, atol=1e-9):
            return False
    return True


def _flat(draws: Arrays) -> Arrays:
    return {name: value.reshape(-1, *value.shape[2:]) for name, value in draws.items()}


def _collapsed_groups(hmm: HMM, draws: Arrays, perms: np.ndarray) -> list[tuple[int, ...]]:
    """Groups of states whose relabelled emission laws are indistinguishable in most draws."""
    if hmm.num_states < 2:
        return []
    emission = {name: draws[name] for name in hmm.emission.param_names}
    together = pair_probability(hmm, permute_params(hmm, emission, perms)) > COLLAPSE_PROBABILITY
    return merge_groups(together)


def chain_alignment(hmm: HMM, draws: Arrays, log_post: np.ndarray) -> np.ndarray:
    """``(C, K)`` permutations aligning each chain's states to a reference chain's.

    The reference is the chain with the highest mean log posterior; the cost of matching its
    state ``j`` with state ``k`` of another chain is the squared Hellinger distance between their
    chain-averaged emission laws, minimised by ``linear_sum_assignment``. A non-identity
    permutation means that chain uses another labelling.
    """
    means = {name: draws[name].mean(1) for name in hmm.emission.param_names}  # (C, K, ...)
    reference = int(np.argmax(log_post.mean(1)))
    return align(hmm, {name: value[reference] for name, value in means.items()}, means)


def align(hmm: HMM, reference: Arrays, groups: Arrays) -> np.ndarray:
    """``(C, K)`` Hungarian alignment of each group's states ``(C, K, ...)`` to ``reference``."""
    num = hmm.num_states
    joined = {
        name: np.concatenate(
            [np.broadcast_to(reference[name], groups[name].shape), groups[name]], axis=1
        )
        for name in hmm.emission.param_names
    }
    distances = emission_distances(hmm, joined)[:, :num, num:]  # (C, reference j, group k)
    return align_to_reference(distances)


def compute_labelling(
    hmm: HMM,
    data: Sequences,
    draws: Arrays,
    log_post: np.ndarray,
    method: str = "stephens",
    max_time_points: int = MAX_TIME_POINTS,
    cross_check: bool = True,
) -> Labelling:
    """Find permutations that bring every draw into one labelling.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        The fitted data (their state probabilities drive Stephens and ECR).
    draws : dict of numpy.ndarray
        Draws ``(chain, draw, ...)`` to relabel (all of them or a thinned subset).
    log_post : numpy.ndarray
        ``(chain, draw)`` log posterior density of those draws (ECR's pivot, chain reference).
    method : {"stephens", "ecr", "chains"}
        Relabelling method.
    max_time_points : int
        Time points whose state probabilities are used.
    cross_check : bool
        Also run the other of Stephens/ECR and measure the agreement.

    Returns
    -------
    Labelling
    """
    num = hmm.num_states
    num_chains, num_draws = log_post.shape
    if method not in RELABEL_METHODS:
        raise ValueError(f"method: expected one of {RELABEL_METHODS}, got {method!r}")
    if num < 2 or num_chains * num_draws < 2:
        perms = identity(num, (num_chains, num_draws))
        return Labelling(perms, method, 0, [], None, None)
    if method == "chains":
        chain_perms = chain_alignment(hmm, draws, log_post)
        perms = np.broadcast_to(chain_perms[:, None], (num_chains, num_draws, num)).copy()
        groups = _collapsed_groups(hmm, draws, perms)
        return Labelling(perms, method, 1, groups, None, None)
    total = num_chains * num_draws
    limit = int(np.clip(_GAMMA_BUDGET // (total * num), _MIN_TIME_POINTS, max_time_points))
    stats = state_statistics(hmm, data, draws, time_points(data, limit))
    gamma = stats.gamma.reshape(total, -1, num)
    results: dict[str, tuple[np.ndarray, int]] = {}
    if method == "stephens" or cross_check:
        results["stephens"] = stephens(gamma)
    if method == "ecr" or cross_check:
        allocations = gamma.argmax(-1)
        pivot = allocations[int(np.argmax(log_post.reshape(-1)))]
        results["ecr"] = ecr(allocations, num, pivot)
    perms, sweeps = results[method]
    groups = _collapsed_groups(hmm, _flat(draws), perms)
    perms = canonical_within_groups(perms, groups)
    match = None
    if len(results) == 2:
        other = results["ecr" if method == "stephens" else "stephens"][0]
        match = agreement(perms, other, groups)
    return Labelling(
        perms=perms.reshape(num_chains, num_draws, num),
        method=method,
        sweeps=sweeps,
        groups=groups,
        agreement=match,
        counts=stats.counts,
    )
