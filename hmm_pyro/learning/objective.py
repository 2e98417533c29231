"""The objective that classical learning ascends: ``log p(y | theta) + log p(theta)``.

The prior densities are exactly those of :meth:`hmm_pyro.HMM.log_prior` (Dirichlet rows for
``pi``, ``A`` and the family's simplex parameters such as ``B``; Normal means and the
inverse-gamma variance reported as ``sigma``, with the Jacobian of the square root; Gamma
rates), evaluated in float64, so that the point EM converges to is the same MAP point that
``fit_map`` approximates. With ``emission_prior=False`` the emission terms are left
out (a plain MLE of the emission parameters; flat Dirichlet priors, concentration 1, make the
whole objective the likelihood).

Dirichlet concentrations below 1 make the density unbounded at the boundary of the simplex:
there is no maximiser, and MAP-EM sets such probabilities to exactly zero (see
:func:`hmm_pyro.emissions.categorical.dirichlet_map`). The value recorded here is then the
density of the face the point lies on: the ``(alpha - 1) log p`` terms of zero entries
(``+inf``) are dropped and counted by :func:`boundary_count`; a step that moves onto a new face
is an increase to ``+inf`` of the full density, which the convergence monitor accounts for.
"""

from __future__ import annotations

from typing import NamedTuple

import pyro.distributions as dist
import torch

from hmm_pyro._types import Params
from hmm_pyro.model import HMM

__all__ = [
    "PriorTensors",
    "boundary_count",
    "dirichlet_log_density",
    "log_prior",
    "prior_tensors",
    "stationary_distribution",
]

DTYPE = torch.float64


class PriorTensors(NamedTuple):
    """Prior hyperparameters of one model, resolved to float64 tensors.

    Attributes
    ----------
    pi : torch.Tensor
        ``(K,)`` Dirichlet concentration of the initial distribution.
    A : torch.Tensor
        ``(K, K)`` Dirichlet concentrations of the transition rows (stickiness added).
    emission : dict of torch.Tensor
        Emission hyperparameters broadcast to ``(K, V)`` or ``(K, D)``
        (:meth:`hmm_pyro.emissions.Emission.prior_hyperparameters`): ``B``; ``mu_loc``,
        ``mu_scale``, ``variance_shape``, ``variance_scale``; ``rate_shape``, ``rate_rate``.
    emission_distributions : dict of pyro.distributions.Distribution
        The emission priors exactly as the model defines them, in float64, built without
        argument validation: EM evaluates them on parameters :func:`~hmm_pyro.learning.runs.
        is_valid` has checked, once per update, where the support checks cost about a third of
        the log prior's time.
    sparse : bool
        Whether some Dirichlet concentration is below 1 (zeros can have infinite density).
    normalisers : dict of float
        ``log Gamma(sum alpha) - sum log Gamma(alpha)`` summed over the rows of each Dirichlet
        (``"pi"``, ``"A"`` and the simplex emission parameters): constant during a fit, so
        computed once.
    """

    pi: torch.Tensor
    A: torch.Tensor
    emission: dict[str, torch.Tensor]
    emission_distributions: dict[str, dist.TorchDistribution]
    sparse: bool
    normalisers: dict[str, float]


def prior_tensors(hmm: HMM) -> PriorTensors:
    """Resolve the model's prior hyperparameters to float64 tensors."""
    num = hmm.num_states
    emission = hmm.emission.prior_hyperparameters(hmm.prior, num, DTYPE)
    pi = hmm.prior.resolve_initial(num, DTYPE)
    transitions = hmm.prior.resolve_transitions(num, DTYPE)
    dirichlets = {"pi": pi, "A": transitions}
    dirichlets.update({name: emission[name] for name in hmm.emission.simplex_params})
    distributions = {
        name: _unvalidated(law)
        for name, law in hmm.emission.prior_distributions(hmm.prior, num, DTYPE).items()
    }
    return PriorTensors(
        pi=pi,
        A=transitions,
        emission=emission,
        emission_distributions=distributions,
        sparse=any(bool((c < 1).any()) for c in dirichlets.values()),
        normalisers={name: _normaliser(c) for name, c in dirichlets.items()},
    )


def _unvalidated(law: dist.TorchDistribution) -> dist.TorchDistribution:
    """``law`` with argument validation switched off, wrapped distributions included."""
    inner = law
    while inner is not None:
        inner._validate_args = False
        inner = getattr(inner, "base_dist", None)
    return law


def _normaliser(concentration: torch.Tensor) -> float:
    """``sum over rows of log Gamma(sum alpha) - sum log Gamma(alpha)``."""
    rows = torch.lgamma(concentration.sum(-1)) - torch.lgamma(concentration).sum(-1)
    return float(rows.sum())


def dirichlet_log_density(
    probs: torch.Tensor,
    concentration: torch.Tensor,
    normaliser: float | None = None,
    sparse: bool = True,
) -> torch.Tensor:
    """Dirichlet log density of the rows of ``probs``, summed; ``+inf`` terms of zeros dropped.

    Equals ``Dirichlet(concentration).log_prob(probs).sum()`` except where that is ``+inf``:
    the ``(alpha - 1) log 0`` terms of zero entries with ``alpha < 1`` are left out. (A zero
    entry with ``alpha > 1`` gives ``-inf``, as it should.) ``normaliser`` (the rows' summed
    ``log Gamma(sum alpha) - sum log Gamma(alpha)``, :attr:`PriorTensors.normalisers`) and
    ``sparse=False`` (no concentration below 1) skip work that a fit repeats every iteration.
    """
    concentration = concentration.expand_as(probs)
    terms = torch.xlogy(concentration - 1.0, probs)
    if sparse:
        terms = torch.where((probs == 0) & (concentration < 1), 0.0, terms)
    if normaliser is None:
        normaliser = _normaliser(concentration)
    return terms.sum() + normaliser


def boundary_count(hmm: HMM, params: Params, prior: PriorTensors) -> int:
    """Number of zero probabilities whose Dirichlet concentration is below 1 (density ``+inf``)."""
    if not prior.sparse:
        return 0
    count = int(((params["pi"] == 0) & (prior.pi < 1)).sum())
    count += int(((params["A"] == 0) & (prior.A < 1)).sum())
    for name in hmm.emission.simplex_params:
        count += int(((params[name] == 0) & (prior.emission[name] < 1)).sum())
    return count


def log_prior(
    hmm: HMM, params: Params, prior: PriorTensors, emission_prior: bool = True
) -> torch.Tensor:
    """``log p(theta)`` as in :meth:`HMM.log_prior` (float64 scalar), see the module notes.

    Parameters
    ----------
    hmm : HMM
        The model.
    params : dict of torch.Tensor
        One parameter set (no draw dimensions), float64.
    prior : PriorTensors
        From :func:`prior_tensors`.
    emission_prior : bool
        Include the emission parameters' prior.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    norms, sparse = prior.normalisers, prior.sparse
    total = dirichlet_log_density(params["pi"], prior.pi, norms["pi"], sparse)
    total = total + dirichlet_log_density(params["A"], prior.A, norms["A"], sparse)
    if not emission_prior:
        return total
    for name, distribution in prior.emission_distributions.items():
        if name in hmm.emission.simplex_params:
            concentration = prior.emission[name]
            total = total + dirichlet_log_density(params[name], concentration, norms[name], sparse)
        else:
            total = total + distribution.log_prob(params[name])
    return total


def stationary_distribution(transition: torch.Tensor) -> torch.Tensor:
    """Stationary distribution ``pi A = pi`` of an irreducible transition matrix (differentiable).

    Solves ``(I - A + 1 1^T)^T pi = 1``, whose unique solution is the stationary distribution
    when ``A`` is irreducible.

    Parameters
    ----------
    transition : torch.Tensor
        ``(K, K)`` row-stochastic matrix.

    Returns
    -------
    torch.Tensor
        ``(K,)``; NaN when ``A`` has several closed classes (no unique stationary distribution),
        zeros at transient states.
    """
    num = transition.shape[-1]
    eye = torch.eye(num, dtype=transition.dtype)
    system = (eye - transition + 1.0).transpose(-1, -2)
    ones = torch.ones(num, 1, dtype=transition.dtype)
    solution, info = torch.linalg.solve_ex(system, ones)
    if int(info) != 0:
        return torch.full((num,), float("nan"), dtype=transition.dtype)
    return solution.squeeze(-1)
