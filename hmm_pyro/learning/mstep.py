"""M-steps: MAP (or ML) parameters from sufficient statistics, with the model's prior.

Every update maximises the expected complete-data log posterior ``Q(theta) + log p(theta)``
(or increases it, for the Gaussian and the stationary-``pi`` cases), so EM never decreases
``log p(y | theta) + log p(theta)``.

- Dirichlet rows (``pi``, ``A``): :func:`dirichlet_map`, ``p_i ∝ max(n_i + alpha_i - 1, 0)``
  (concentration 1 gives the ML frequencies; below 1 the clamp at 0 puts ``p_i`` exactly at
  zero, the usual MAP-EM convention).
- Emission parameters: the family's own update, :meth:`hmm_pyro.emissions.Emission.maximize`
  (Dirichlet rows for categorical ``B``; ECM cycles for the Gaussian; the conjugate mode for the
  Poisson rate, at least :data:`MIN_RATE`).
- Undefined updates (no weight at all on a row or a state's coordinate, and no prior to decide)
  keep the previous value: ``Q`` does not depend on it, so that is a maximiser too.
"""

from __future__ import annotations

import torch

from hmm_pyro._types import Params
from hmm_pyro.emissions.categorical import dirichlet_map
from hmm_pyro.emissions.poisson import MIN_RATE
from hmm_pyro.learning.objective import (
    DTYPE,
    PriorTensors,
    stationary_distribution,
)
from hmm_pyro.learning.statistics import Statistics
from hmm_pyro.model import HMM, INITIAL_MODES

__all__ = [
    "INITIAL_MODES",
    "MIN_RATE",
    "check_initial_mode",
    "dirichlet_map",
    "emission_map",
    "maximize",
]

_STATIONARY_LBFGS_ITERATIONS = 50


def check_initial_mode(initial: str, prior: PriorTensors) -> None:
    """Validate ``initial``; the stationary M-step needs ``pi`` and ``A`` concentrations >= 1."""
    if initial not in INITIAL_MODES:
        raise ValueError(f"initial: expected one of {INITIAL_MODES}, got {initial!r}")
    if initial == "stationary" and (bool((prior.pi < 1).any()) or bool((prior.A < 1).any())):
        raise ValueError(
            "initial: 'stationary' needs Dirichlet concentrations >= 1 for pi and A (below 1 the "
            "objective is unbounded at reducible transition matrices); got "
            f"min pi concentration {float(prior.pi.min())}, min A {float(prior.A.min())}"
        )


def emission_map(
    hmm: HMM,
    stats: Statistics,
    prior: PriorTensors,
    previous: Params | None,
    emission_prior: bool,
) -> Params:
    """Emission parameters from the statistics: :meth:`hmm_pyro.emissions.Emission.maximize`.

    Parameters
    ----------
    hmm : HMM
        The model.
    stats : Statistics
        Sufficient statistics.
    prior : PriorTensors
        Resolved prior.
    previous : dict of torch.Tensor or None
        Current parameters: kept where the update is undefined, and the start of the Gaussian
        ECM cycles. ``None`` (supervised estimation): the cycles start from the ML estimates
        and undefined estimates are NaN (the caller reports them).
    emission_prior : bool
        Use the emission parameters' prior (else maximum likelihood).

    Returns
    -------
    dict of torch.Tensor
        The emission parameters, float64, in the model's shapes.
    """
    return hmm.emission.maximize(stats.emission, prior.emission, previous, emission_prior)


def _transition_objective(
    log_A: torch.Tensor, pseudo_A: torch.Tensor, pseudo_pi: torch.Tensor
) -> torch.Tensor:
    """``sum C log A + sum c log pi(A)`` for the stationary M-step (``C, c >= 0``)."""
    probs = log_A.exp()
    terms = torch.where(probs > 0, pseudo_A * log_A, 0.0).sum()
    pi = stationary_distribution(probs)
    needed = pseudo_pi > 0
    if not bool(torch.isfinite(pi).all()) or bool((pi[needed] <= 0).any()):
        return torch.tensor(float("-inf"), dtype=DTYPE)
    return terms + torch.where(needed, pseudo_pi * torch.log(pi.clamp(min=1e-300)), 0.0).sum()


def _stationary_transitions(
    stats: Statistics, prior: PriorTensors, previous: torch.Tensor
) -> torch.Tensor:
    """Generalised M-step for ``A`` when ``pi`` is its stationary distribution.

    ``Q`` in ``A`` is ``sum_ij C_ij log A_ij + sum_k c_k log pi_k(A)`` (``C = xi + alpha_A - 1``,
    ``c = gamma_1 + alpha_pi - 1``), which has no closed-form maximiser. Start from the better of
    the current ``A`` and the free-``pi`` update ``A ∝ C``, run L-BFGS (strong Wolfe line search)
    on row-wise softmax logits, and keep the result only if ``Q`` did not decrease: a
    generalised EM step, so the log posterior never decreases.
    """
    pseudo_A = (stats.transitions + prior.A - 1.0).clamp(min=0.0)
    pseudo_pi = (stats.start + prior.pi - 1.0).clamp(min=0.0)
    previous = previous.to(DTYPE)
    candidates = [previous, dirichlet_map(stats.transitions, prior.A, previous)]
    with torch.no_grad():
        values = [
            float(_transition_objective(torch.log(c), pseudo_A, pseudo_pi)) for c in candidates
        ]
    best = 0 if values[0] >= values[1] else 1
    start, start_value = candidates[best], values[best]
    allowed = start > 0
    logits = torch.log(start.clamp(min=1e-300)).clone().requires_grad_(True)

    def log_transitions() -> torch.Tensor:
        masked = torch.where(allowed, logits, float("-inf"))
        return torch.log_softmax(masked, dim=-1)

    optimiser = torch.optim.LBFGS(
        [logits],
        lr=1.0,
        max_iter=_STATIONARY_LBFGS_ITERATIONS,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        value = -_transition_objective(log_transitions(), pseudo_A, pseudo_pi)
        if torch.isfinite(value):
            value.backward()
        return value

    if torch.isfinite(torch.tensor(start_value)):
        optimiser.step(closure)
    with torch.no_grad():
        candidate = log_transitions().exp()
        value = float(_transition_objective(torch.log(candidate), pseudo_A, pseudo_pi))
    if value >= start_value and bool(torch.isfinite(candidate).all()):
        return candidate / candidate.sum(-1, keepdim=True)
    return start


def stationary_initial(transition: torch.Tensor) -> torch.Tensor:
    """Stationary distribution of ``A``, clipped at 0 and renormalised against round-off."""
    pi = stationary_distribution(transition.to(DTYPE)).clamp(min=0.0)
    return pi / pi.sum()


def maximize(
    hmm: HMM,
    stats: Statistics,
    prior: PriorTensors,
    previous: Params | None,
    emission_prior: bool = True,
    initial: str = "free",
) -> Params:
    """One M-step: all parameters (float64) from the statistics.

    Parameters
    ----------
    hmm : HMM
        The model.
    stats : Statistics
        Sufficient statistics (expected or counted).
    prior : PriorTensors
        Resolved prior.
    previous : dict of torch.Tensor or None
        Current parameters (kept where an update is undefined); ``None`` for supervised
        estimation (uniform rows and NaN emissions where undefined).
    emission_prior : bool
        Use the emission parameters' prior.
    initial : {"free", "stationary"}
        ``"free"``: ``pi`` has its own Dirichlet MAP update. ``"stationary"``: ``pi`` is the
        stationary distribution of ``A`` (see :func:`_stationary_transitions`).

    Returns
    -------
    dict of torch.Tensor
    """
    old_pi = None if previous is None else previous["pi"]
    old_A = None if previous is None else previous["A"]
    if initial == "stationary":
        if old_A is None:
            old_A = dirichlet_map(stats.transitions, prior.A)
        transition = _stationary_transitions(stats, prior, old_A)
        params = {"pi": stationary_initial(transition), "A": transition}
    else:
        params = {
            "pi": dirichlet_map(stats.start, prior.pi, old_pi),
            "A": dirichlet_map(stats.transitions, prior.A, old_A),
        }
    params.update(emission_map(hmm, stats, prior, previous, emission_prior))
    return params
