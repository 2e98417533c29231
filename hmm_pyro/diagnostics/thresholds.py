"""Named thresholds of the degeneracy diagnostics, each with its justification and source.

Distances are squared Hellinger distances ``H2 = 1 - sum sqrt(p q)`` between two states'
emission laws (in ``[0, 1]``; closed forms in :mod:`hmm_pyro.emissions`). The thresholds that
relabelling uses too (``COLLAPSE_DISTANCE``, ``COLLAPSE_PROBABILITY``, ``METHOD_DISAGREEMENT``,
``MAX_TIME_POINTS``) are defined, with their sources, in :mod:`hmm_pyro.labels.thresholds` and
listed here with the rest.
"""

from __future__ import annotations

from hmm_pyro.labels.thresholds import (
    COLLAPSE_DISTANCE,
    COLLAPSE_PROBABILITY,
    MAX_TIME_POINTS,
    METHOD_DISAGREEMENT,
)
from hmm_pyro.starts import MIN_START_SEPARATION

__all__ = [
    "COLLAPSE_BAYES_FACTOR",
    "COLLAPSE_DISTANCE",
    "COLLAPSE_PROBABILITY",
    "CONTRACTION_PRIOR_DOMINATED",
    "DIVERGENCE_FRACTION",
    "ELPD_SE_FACTOR",
    "ELPD_SMALL_DIFFERENCE",
    "EMPTY_STATE_PROBABILITY",
    "ESS_PER_CHAIN",
    "IDENTICAL_DISTANCE",
    "INSUFFICIENT_DATA_FACTOR",
    "MAX_TIME_POINTS",
    "METHOD_DISAGREEMENT",
    "MIN_MOVE_FRACTION",
    "MODE_GAP_SD",
    "MODE_OVERLAP_QUANTILE",
    "MODE_SEPARATION",
    "POOLED_FIT_DISTANCE",
    "RHAT",
    "RHAT_NOISE",
    "RHAT_NOISE_LEVEL",
    "SOLUTION_DISTANCE",
    "SYMMETRIC_START_DISTANCE",
    "WEAK_IDENTIFIABILITY_NATS",
    "WITHIN_CHAIN_SWITCH_FRACTION",
]

COLLAPSE_BAYES_FACTOR = 3.0
"""Posterior odds over prior odds of "collapsed" above 3 is "positive" evidence that the data
pulled the states together; below it the prior alone makes them alike (Kass & Raftery 1995,
JASA 90:773, Bayes-factor scale)."""

IDENTICAL_DISTANCE = 1e-8
"""``H2`` below which emission laws are identical to round-off (a symmetric fixed point:
an optimiser started with identical states moves them identically,
docs/degeneracy.md#symmetric-starts)."""

POOLED_FIT_DISTANCE = 1e-3
"""``H2`` to the one-state fit (overall symbol frequencies, pooled mean and sd, pooled rate)
below which identical states are recognised as the symmetric saddle's fixed point; the same
scale as the smallest acceptable start separation (``hmm_pyro.starts``)."""

SYMMETRIC_START_DISTANCE = MIN_START_SEPARATION
"""A start whose closest two states have ``H2`` at or below this (1e-3, about a 0.09 sd gap)
is numerically symmetric; any escape from it relied on round-off
(docs/degeneracy.md#symmetric-starts)."""

EMPTY_STATE_PROBABILITY = 0.5
"""A state is empty when ``P(n_k < n0 | y) > 0.5`` for its expected number of observations
``n_k`` (forward-backward), with ``n0 = max(1, d)`` for ``d`` free emission parameters per state:
fewer observations than parameters to estimate (docs/degeneracy.md#empty-states; Rousseau &
Mengersen 2011)."""

CONTRACTION_PRIOR_DOMINATED = 0.5
"""Posterior contraction ``c = 1 - Var_post / Var_prior`` below 0.5: precisions add
(``1/Var_post = 1/Var_prior + 1/Var_lik``), so ``c`` is the likelihood's share of the posterior
precision and ``c < 0.5`` means the prior supplies more of it than the data (Betancourt 2018,
arXiv:1803.08393; Schad, Betancourt & Vasishth 2021). Measured: 0.11-0.17 with 10 observations
of 3 states and 2 symbols, 0.99 with 5,000; a Dirichlet(1) row of ``V`` symbols reaches 0.5 at
about ``V + 1`` observations."""

RHAT = 1.01
"""Rank-normalised split R-hat above 1.01 means the chains disagree (Vehtari, Gelman, Simpson,
Carpenter & Buerkner 2021, Bayesian Analysis 16:667)."""

RHAT_NOISE = 1.02
"""R-hat in ``(RHAT, RHAT_NOISE]`` with bulk and tail ESS of at least ``2 * ESS_PER_CHAIN`` per
chain is reported as a note, not a flag: at that ESS, R-hat's own sampling noise reaches 1.01.
Measured here: healthy 4 x 500-draw fits with ESS > 2000 gave R-hat 1.0101 and 1.0109 on one of
about 15 quantities; a simulation of 4 x 200 draws of a trivially identified model had 499 of
1000 fits above 1.01, all below 1.05 (docs/degeneracy.md#r-hat, after Vehtari et al. 2021)."""

RHAT_NOISE_LEVEL = 0.99
"""An invariant R-hat above ``RHAT`` that stays below the 99% quantile of R-hat's own sampling
distribution for converged chains at the ESS at hand
(:func:`hmm_pyro.diagnostics.modes.rhat_noise`), with the chains' means within their Monte Carlo
error, is a warning ("not yet converged: run longer"), not an error. Measured on 1000 simulated
runs of converged AR(1) chains per setting (``tests/diagnostics/rhat_noise_simulation.py``):
R-hat exceeded the bound in at most 0.6% of runs (independent draws, 4 x 200; autocorrelation
0.3, 2 x 1000) and in at most 0.1% with autocorrelation 0.5-0.95 (2 x 300 to 4 x 500 draws),
while 30-100% of the autocorrelated runs exceeded 1.01 (docs/degeneracy.md#r-hat).
``diagnose`` checks many quantities at once, so each is held to the family-wise quantile
``1 - (1 - RHAT_NOISE_LEVEL) / m`` for ``m`` quantities
(:func:`hmm_pyro.diagnostics.modes.family_level`): in 400 simulated runs of 15 independent
converged quantities, some R-hat exceeded its per-quantity bound in up to 16% of runs and its
family-wise bound in at most 1.3%."""

MODE_SEPARATION = 6.0
"""Two chains whose means of a label-invariant quantity differ by more than 6 Monte Carlo
standard errors (of the difference; each chain's from its own ESS for the mean) sit in different
modes. A normal deviate beyond 6 has probability 2e-9, so the many pairs and quantities compared
do not raise false alarms. In the simulations of ``RHAT_NOISE_LEVEL`` the largest gap over all
pairs of converged chains stayed below 4.6 standard errors with 30 or more effective draws per
chain, reached 6.25 (1 run in 1000 above 6) with about 11, and exceeded 6 in 2.3% of runs with
about 3: standard errors from a handful of effective draws are unreliable themselves, which the
ESS check flags (docs/degeneracy.md#r-hat; Vehtari et al. 2021 for the Monte Carlo standard
error)."""

MODE_GAP_SD = 1.0
"""A chain whose mean log posterior is more than one standard deviation below the best chain's
sits in a worse mode, when the gap is also beyond ``MODE_SEPARATION`` Monte Carlo standard errors
or the chains' draws do not overlap (``MODE_OVERLAP_QUANTILE``). The sd is the larger of the
within-chain sd and ``sqrt(d / 2)`` for ``d`` free parameters (the sd of the log density of a
``d``-dimensional Gaussian posterior). Chains that sample one posterior differ in their means by
about ``sd sqrt(2 / ESS)``, so a gap of one sd needs an ESS near 2 per chain
(docs/degeneracy.md#chains-in-different-modes)."""

MODE_OVERLAP_QUANTILE = 0.1
"""Draws of two chains do not overlap when the worse chain's 90% quantile of the log posterior
lies below the best chain's 10% quantile. Two chains of one posterior overlap in the middle 80%
of their draws; this needs no standard error, so it holds for chains that drift (still climbing
from their start), where standard errors from a handful of effective draws fail."""

ESS_PER_CHAIN = 100
"""Bulk and tail ESS below 100 per chain (400 for four chains) make R-hat and MCSE unreliable
(Vehtari et al. 2021, section 4)."""

DIVERGENCE_FRACTION = 0.0
"""Any divergent transition means NUTS could not explore a region of high curvature, which
can bias the draws (Betancourt 2017, arXiv:1701.02434, section 6.2; Stan warns on any)."""

MIN_MOVE_FRACTION = 0.5
"""A sampled chain that moves in fewer than half of its transitions (a draw equal, entry for
entry, to the one before it) is stuck: its draws are not a sample. Healthy NUTS chains move in
nearly every transition (98.5-100% in 18 chains of 200 draws of Poisson, categorical and
Gaussian HMMs, docs/degeneracy.md#stuck-chains); R-hat and ESS cannot show it (undefined for
constant draws, and not computed for one chain)."""

WITHIN_CHAIN_SWITCH_FRACTION = 0.01
"""A chain switches labels when more than 1% of its draws are relabelled by a permutation other
than its most common one (docs/degeneracy.md#label-switching: flags a planted mid-run swap, no
false alarms on separated states)."""

INSUFFICIENT_DATA_FACTOR = 10
"""Fewer than 10 observations per emission parameter is called insufficient data (a common
rule of thumb for the events-per-parameter ratio; Peduzzi et al. 1996)."""

ELPD_SMALL_DIFFERENCE = 4.0
"""A model with fewer states is *as good* when the larger model's held-out (or PSIS-LOO) log
predictive density exceeds it by at most 4 nats, or by at most ``ELPD_SE_FACTOR`` standard
errors of the paired difference: below 4 nats the difference is small and its standard error
unreliable (Sivula, Magnusson, Matamoros & Vehtari 2022, "Uncertainty in Bayesian leave-one-out
cross-validation based model comparison"; Vehtari's CV FAQ) (docs/degeneracy.md#fewer-states)."""

ELPD_SE_FACTOR = 2.0
"""... or by at most two standard errors of the paired pointwise differences (an approximate
95% interval that includes no difference)."""

WEAK_IDENTIFIABILITY_NATS = 2.0
"""Restarts at different solutions whose final log posteriors (or ELBOs) are within 2 nats: a
density ratio below e^2 = 7.4, under the likelihood ratio of 8 that Royall (1997, Statistical
Evidence) calls fairly strong evidence; 1.92 nats is also the half-width of a 95% profile
likelihood interval for one parameter (docs/degeneracy.md#restarts)."""

SOLUTION_DISTANCE = COLLAPSE_DISTANCE
"""Two restarts are at different solutions when some state's emission law or transition row
is at least ``COLLAPSE_DISTANCE`` (squared Hellinger) from its matched state's: the scale at
which two states count as distinguishable (docs/degeneracy.md#restarts)."""
