"""M-steps: MAP (or ML) parameters from sufficient statistics, with the model's prior.

Every update maximises the expected complete-data log posterior ``Q(theta) + log p(theta)``
(or increases it, for the Gaussian and the stationary-``pi`` cases), so EM never decreases
``log p(y | theta) + log p(theta)``.

- Dirichlet rows (``pi``, ``A``, ``B``): ``p_i ∝ max(n_i + alpha_i - 1, 0)``. Concentration 1
  gives the ML frequencies. A concentration below 1 can make ``n_i + alpha_i - 1`` negative:
  the density is then unbounded at ``p_i = 0`` and has no maximiser; the usual MAP-EM convention
  (hmmlearn's too) clamps at 0 and renormalises, which puts ``p_i`` exactly at zero, where it
  stays (its expected count is zero from then on).
- Gaussian: no joint closed form with the semi-conjugate prior, so conditional maximisation
  (ECM, Meng & Rubin 1993): ``mu`` given the current ``sigma``, then ``sigma`` given the new
  ``mu``; each cycle increases ``Q``. The cycles are repeated (from the current parameters, at
  most 100, to relative change 1e-12: they act on ``(K, D)`` numbers) so that the M-step is a
  maximiser given the statistics and hard EM has exact fixed points. With ``v = sigma**2`` and
  the prior density of the *site* ``sigma`` (``p_IG(v) * 2 sigma``), the ``v`` step maximises
  ``-(n/2) log v - S/(2v) - (a+1) log v - b/v + (1/2) log v`` with
  ``S = sum_t w_t (y_t - mu)**2``: ``v = (S + 2b) / (n + 2a + 1)``. Without the emission prior
  ``mu = s1 / n`` does not depend on ``v`` and one cycle is exact: ``v = S / n`` (ML,
  hmmlearn's update).
- Poisson: ``rate = (s1 + shape - 1) / (n + rate_rate)`` (ML: ``s1 / n``), maximised over
  ``rate >= MIN_RATE`` so that a state that only ever sees zeros keeps a valid rate.
- Undefined updates (no weight at all on a row or a state's coordinate, and no prior to decide)
  keep the previous value: ``Q`` does not depend on it, so that is a maximiser too.
"""

from __future__ import annotations

import torch

from hmm_pyro.learning.objective import (
    DTYPE,
    PriorTensors,
    stationary_distribution,
)
from hmm_pyro.learning.statistics import Statistics
from hmm_pyro.model import HMM

__all__ = [
    "INITIAL_MODES",
    "MIN_RATE",
    "check_initial_mode",
    "dirichlet_map",
    "emission_map",
    "maximize",
]

Params = dict[str, torch.Tensor]
INITIAL_MODES = ("free", "stationary")
MIN_RATE = 1e-12
"""Smallest Poisson rate an M-step returns (the update is a maximisation over ``rate >= it``)."""
_STATIONARY_LBFGS_ITERATIONS = 50
_ECM_CYCLES = 100
_ECM_RTOL = 1e-12


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


def dirichlet_map(
    counts: torch.Tensor, concentration: torch.Tensor, previous: torch.Tensor | None = None
) -> torch.Tensor:
    """Mode of ``Dirichlet(counts + concentration)`` per row, clamped at the boundary.

    Parameters
    ----------
    counts : torch.Tensor
        ``(..., V)`` (expected) counts.
    concentration : torch.Tensor
        Prior concentration, broadcast to ``counts``.
    previous : torch.Tensor, optional
        Value kept for rows whose pseudo-counts are all zero (any value maximises them);
        uniform when omitted.

    Returns
    -------
    torch.Tensor
        Rows on the simplex.
    """
    pseudo = (counts + concentration - 1.0).clamp(min=0.0)
    total = pseudo.sum(-1, keepdim=True)
    empty = total <= 0
    probs = pseudo / torch.where(empty, 1.0, total)
    fallback = (
        torch.full_like(probs, 1.0 / probs.shape[-1]) if previous is None else previous.to(DTYPE)
    )
    return torch.where(empty, fallback, probs)


def _columns(value: torch.Tensor) -> torch.Tensor:
    return value.unsqueeze(-1) if value.dim() == 1 else value


def _gaussian_step(
    stats: dict[str, torch.Tensor],
    prior: dict[str, torch.Tensor],
    mu: torch.Tensor,
    var: torch.Tensor,
    emission_prior: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One ECM update in shifted coordinates: ``mu | var``, then ``var | mu``."""
    n, s1, s2 = stats["n"], stats["s1"], stats["s2"]
    if emission_prior:
        loc = prior["mu_loc"] - stats["shift"]
        tau2 = prior["mu_scale"] ** 2
        mu = (tau2 * s1 + var * loc) / (tau2 * n + var)
        spread = (s2 - 2.0 * mu * s1 + mu * mu * n).clamp(min=0.0)
        var = (spread + 2.0 * prior["variance_scale"]) / (n + 2.0 * prior["variance_shape"] + 1.0)
        return mu, var
    has_data = n > 0
    safe_n = torch.where(has_data, n, 1.0)
    new_mu = s1 / safe_n
    spread = (s2 - 2.0 * new_mu * s1 + new_mu * new_mu * n).clamp(min=0.0)
    new_var = spread / safe_n
    return torch.where(has_data, new_mu, mu), torch.where(has_data, new_var, var)


def emission_map(
    hmm: HMM,
    stats: Statistics,
    prior: PriorTensors,
    previous: Params | None,
    emission_prior: bool,
) -> Params:
    """Emission parameters from the statistics (see the module notes for each family).

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
    family = hmm.emission.family
    emission = stats.emission
    if family == "categorical":
        concentration = prior.emission["B"] if emission_prior else torch.ones((), dtype=DTYPE)
        old = None if previous is None else previous["B"]
        return {"B": dirichlet_map(emission["counts"], concentration, old)}
    univariate = hmm.emission.param_shapes(hmm.num_states)[hmm.emission.param_names[0]] == (
        hmm.num_states,
    )

    def shaped(value: torch.Tensor) -> torch.Tensor:
        return value[:, 0] if univariate else value

    nan = torch.full_like(emission["n"], float("nan"))
    if family == "poisson":
        n, s1 = emission["n"], emission["s1"]
        old = nan if previous is None else _columns(previous["rate"]).to(DTYPE)
        if emission_prior:
            rate = (s1 + prior.emission["rate_shape"] - 1.0) / (n + prior.emission["rate_rate"])
        else:
            rate = torch.where(n > 0, s1 / torch.where(n > 0, n, 1.0), old)
        return {"rate": shaped(rate.clamp(min=MIN_RATE))}
    shift = emission["shift"]
    if previous is None:
        mu, var = _gaussian_step(emission, prior.emission, nan, nan, emission_prior=False)
        if not emission_prior:
            return {"mu": shaped(mu + shift), "sigma": shaped(var.sqrt())}
        loc = prior.emission["mu_loc"] - shift
        mu = torch.where(torch.isfinite(mu), mu, loc)
        var = torch.where(torch.isfinite(var) & (var > 0), var, prior.emission["variance_scale"])
    else:
        mu = _columns(previous["mu"]).to(DTYPE) - shift
        var = _columns(previous["sigma"]).to(DTYPE) ** 2
    mu, var = _gaussian_cycles(emission, prior.emission, mu, var, emission_prior)
    return {"mu": shaped(mu + shift), "sigma": shaped(var.sqrt())}


def _gaussian_cycles(
    stats: dict[str, torch.Tensor],
    prior: dict[str, torch.Tensor],
    mu: torch.Tensor,
    var: torch.Tensor,
    emission_prior: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeat ECM cycles to convergence (one cycle is exact without the prior)."""
    mu, var = _gaussian_step(stats, prior, mu, var, emission_prior)
    if not emission_prior:
        return mu, var
    for _ in range(_ECM_CYCLES - 1):
        new_mu, new_var = _gaussian_step(stats, prior, mu, var, emission_prior)
        done = torch.allclose(new_mu, mu, rtol=_ECM_RTOL, atol=0) and torch.allclose(
            new_var, var, rtol=_ECM_RTOL, atol=0
        )
        mu, var = new_mu, new_var
        if done:
            break
    return mu, var


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
