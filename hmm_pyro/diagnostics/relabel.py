"""``relabel``: a new ``Fit`` whose draws all share one labelling of the states.

Default: Stephens' KL algorithm on the forward-backward state probabilities, pooled over chains
(so it aligns chains and repairs within-chain switches in one go). ECR on the allocations runs
alongside as a cross-check: if the two disagree on more than
:data:`~hmm_pyro.diagnostics.thresholds.METHOD_DISAGREEMENT` of the draws, the labels are not
identifiable and a :class:`RelabelWarning` says so. States that are collapsed keep their
original order inside their group (they are not relabelled as if they were distinct).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from hmm_pyro.data import Sequences
from hmm_pyro.diagnostics._draws import (
    Arrays,
    emission_distances,
    state_statistics,
    time_points,
    to_numpy,
    to_torch,
)
from hmm_pyro.diagnostics.collapse import merge_groups, pair_probability
from hmm_pyro.diagnostics.permutations import (
    identity,
    permute_dataset,
    permute_params,
)
from hmm_pyro.diagnostics.relabel_algorithms import (
    agreement,
    align_to_reference,
    canonical_within_groups,
    ecr,
    stephens,
)
from hmm_pyro.diagnostics.thresholds import (
    COLLAPSE_PROBABILITY,
    MAX_TIME_POINTS,
    METHOD_DISAGREEMENT,
)
from hmm_pyro.fit import Fit
from hmm_pyro.fit.inference_data import read_attrs
from hmm_pyro.model import HMM

__all__ = [
    "RELABEL_METHODS",
    "Labelling",
    "RelabelWarning",
    "chain_alignment",
    "compute_labelling",
    "find_permutations",
    "log_posterior",
    "prior_is_exchangeable",
    "relabel",
]

RELABEL_METHODS = ("stephens", "ecr", "chains")
_GAMMA_BUDGET = 25_000_000
"""Largest ``draws x time points x K`` array of state probabilities kept (100 MB in float32);
the time points are thinned below :data:`MAX_TIME_POINTS` to stay within it."""
_MIN_TIME_POINTS = 200


class RelabelWarning(UserWarning):
    """Relabelling could not give every draw a trustworthy label."""


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
        return self.agreement is None or 1.0 - self.agreement <= METHOD_DISAGREEMENT


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
    return _align(hmm, {name: value[reference] for name, value in means.items()}, means)


def _align(hmm: HMM, reference: Arrays, groups: Arrays) -> np.ndarray:
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


def _align_restarts(hmm: HMM, attrs: dict[str, Any], point: Arrays) -> dict[str, Any]:
    """Permute each SVI restart's parameters into the kept point's labelling."""
    restarts = attrs.get("restart_params")
    if not restarts:
        return {}
    arrays = {name: np.asarray(restarts[name], dtype=np.float64) for name in hmm.param_names}
    perms = _align(hmm, point, arrays)
    aligned = permute_params(hmm, arrays, perms)
    return {
        "restart_params": {name: value.tolist() for name, value in aligned.items()},
        "restart_permutations": perms.tolist(),
    }


def find_permutations(fit: Fit, method: str = "stephens", cross_check: bool = True) -> Labelling:
    """Per-draw permutations that bring every draw of ``fit`` into one labelling.

    :func:`relabel` applies them; this returns them (e.g. to compare with known labels).

    Parameters
    ----------
    fit : Fit
        Any fit.
    method : {"stephens", "ecr", "chains"}
        See :func:`relabel`.
    cross_check : bool
        Also run the other of Stephens/ECR and record the agreement.

    Returns
    -------
    Labelling
        ``perms`` ``(chain, draw, K)``: ``perms[c, s, j]`` is the old label that becomes
        label ``j`` in draw ``s`` of chain ``c``.
    """
    if not isinstance(fit, Fit):
        raise TypeError(f"fit: expected a hmm_pyro Fit, got {type(fit).__name__}")
    if method not in RELABEL_METHODS:
        raise ValueError(f"method: expected one of {RELABEL_METHODS}, got {method!r}")
    draws = to_numpy(fit.draws())
    return compute_labelling(
        fit.hmm, fit.data, draws, log_posterior(fit), method, cross_check=cross_check
    )


def relabel(fit: Fit, method: str = "stephens", cross_check: bool = True) -> Fit:
    """Return a new ``Fit`` whose draws are permuted into one common labelling.

    Parameters
    ----------
    fit : Fit
        Any fit (NUTS chains, SVI guide draws, a point estimate).
    method : {"stephens", "ecr", "chains"}
        ``"stephens"`` (default): Stephens' (2000) KL relabelling on the forward-backward
        state probabilities, pooled over chains, each assignment by
        ``scipy.optimize.linear_sum_assignment``. ``"ecr"``: iterative ECR on the most likely
        state at each time (Papastamoulis & Iliopoulos 2010). ``"chains"``: one permutation per
        chain, aligning each chain's mean emission law to the highest-posterior chain's (for
        chains without internal switches; SVI restarts are always aligned this way).
    cross_check : bool
        Run the other of Stephens/ECR too and warn when they disagree on more than 5% of draws.

    Returns
    -------
    Fit
        Posterior permuted consistently (``pi`` entries, rows and columns of ``A``, emission
        rows, every variable with a ``state`` or ``state_to`` dimension). The log likelihood
        is label-invariant and kept; the log prior is recomputed when the prior is not
        exchangeable; ``posterior_predictive`` (state paths of random draws) is dropped. The
        attribute ``relabel`` records the method, permutations per chain and the agreement.

    Warns
    -----
    RelabelWarning
        When Stephens and ECR disagree on more than 5% of draws (labels not identifiable), or
        when states are collapsed (their order inside the group is kept, not inferred).

    Examples
    --------
    >>> relabelled = hmm_pyro.relabel(fit)  # doctest: +SKIP
    >>> hmm_pyro.diagnose(relabelled).ok  # doctest: +SKIP
    """
    labelling = find_permutations(fit, method, cross_check=cross_check)
    hmm = fit.hmm
    perms = labelling.perms
    idata = fit.idata.copy()
    idata.posterior = permute_dataset(fit.idata.posterior, perms)
    exchangeable = prior_is_exchangeable(hmm)
    if not exchangeable:
        relabelled = {name: idata.posterior[name].values for name in hmm.param_names}
        terms = hmm.log_prior_terms(to_torch(hmm, relabelled))
        for name, value in terms.items():
            idata.log_prior[name] = idata.log_prior[name].copy(data=value.numpy())
    if "posterior_predictive" in idata.groups():
        del idata["posterior_predictive"]
    attrs = read_attrs(fit.idata)
    point = {name: idata.posterior[name].values[0, 0] for name in hmm.emission.param_names}
    chain_perms = [np.unique(chain, axis=0).tolist() for chain in perms]
    record = {
        "method": labelling.method,
        "sweeps": labelling.sweeps,
        "agreement": labelling.agreement,
        "collapsed_groups": [list(group) for group in labelling.groups],
        "permutations_per_chain": chain_perms,
        "exchangeable_prior": exchangeable,
        "previous": attrs.get("relabel"),
    }
    extra = {"relabel": record, **_align_restarts(hmm, attrs, point)}
    encoded = {key: json.dumps(value) for key, value in extra.items()}
    for group in idata.groups():
        idata[group].attrs.update(encoded)
    if labelling.groups:
        warnings.warn(
            f"relabel: states {labelling.groups} are collapsed (indistinguishable emission "
            "laws); they keep their original order inside each group and their per-state "
            "summaries are not meaningful",
            RelabelWarning,
            stacklevel=2,
        )
    if not labelling.identifiable:
        warnings.warn(
            f"relabel: Stephens and ECR agree on only {labelling.agreement:.1%} of the draws "
            f"(more than {METHOD_DISAGREEMENT:.0%} disagree): the state labels are not "
            "identifiable from these data; per-state summaries are unreliable",
            RelabelWarning,
            stacklevel=2,
        )
    return Fit(hmm, idata)
