"""Findings: turn measurements into :class:`~hmm_pyro.diagnostics.flags.Flag` objects.

Each function takes the statistics of one check and returns its flag (or ``None``): the summary,
what was measured, the threshold, the likely cause and the remedies, in that order of concern.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hmm_pyro.diagnostics.collapse import CollapseStatistics
from hmm_pyro.diagnostics.contraction import ContractionStatistics
from hmm_pyro.diagnostics.convergence import ConvergenceStatistics
from hmm_pyro.diagnostics.flags import Flag, Remedy
from hmm_pyro.diagnostics.label_switching import SwitchStatistics
from hmm_pyro.diagnostics.modes import ChainGap
from hmm_pyro.diagnostics.occupancy import OccupancyStatistics
from hmm_pyro.diagnostics.symmetry import SymmetryEvidence
from hmm_pyro.diagnostics.thresholds import (
    COLLAPSE_BAYES_FACTOR,
    COLLAPSE_PROBABILITY,
    CONTRACTION_PRIOR_DOMINATED,
    DIVERGENCE_FRACTION,
    EMPTY_STATE_PROBABILITY,
    ESS_PER_CHAIN,
    INSUFFICIENT_DATA_FACTOR,
    METHOD_DISAGREEMENT,
    MODE_SEPARATION,
    RHAT,
    RHAT_NOISE_LEVEL,
    SYMMETRIC_START_DISTANCE,
    WITHIN_CHAIN_SWITCH_FRACTION,
)
from hmm_pyro.labels import Labelling

__all__ = [
    "collapse_flag",
    "convergence_flags",
    "empty_flag",
    "identifiability_flag",
    "optimizer_flag",
    "prior_dominated_flag",
    "switching_flag",
    "symmetric_start_flag",
]

_LOG_DENSITIES = ("log_joint", "log_likelihood")
"""Invariant quantities measured in nats."""


def _fmt_states(states: tuple[int, ...] | list[int]) -> str:
    return ", ".join(map(str, states))


def _pair_text(distances: np.ndarray) -> str:
    """Median squared Hellinger distance of every pair of states, e.g. ``0.049 (0-1), ...``."""
    median = np.median(distances.reshape(-1, *distances.shape[-2:]), axis=0)
    num = median.shape[-1]
    pairs = [(i, j) for i in range(num) for j in range(i + 1, num)]
    return ", ".join(f"{median[i, j]:.3g} ({i}-{j})" for i, j in pairs)


def collapse_flag(
    collapse: CollapseStatistics,
    symmetry: SymmetryEvidence,
    effective: float,
    num_states: int,
) -> Flag | None:
    """Emission collapse (error); its cause is the symmetric start when the start says so.

    Otherwise the cause (data or prior) is left to the refits of ``diagnose(deep=True)``
    (:mod:`hmm_pyro.diagnostics.cause`), which rewrite it; without them it is not established.
    """
    if not collapse.collapsed:
        return None
    eps = collapse.distance
    if collapse.all_collapsed:
        summary = (
            f"All {num_states} states have the same emission law: every pair is within squared "
            f"Hellinger {eps} in {np.mean(collapse.num_distinct == 1):.0%} of the draws."
        )
        states = tuple(range(num_states))
    else:
        if collapse.groups:
            groups = "; ".join("{" + _fmt_states(g) + "}" for g in collapse.groups)
            subject = f"States {groups} have"
        else:
            subject = "Two states (the closest pair differs between draws) have"
        summary = (
            f"{subject} indistinguishable emission laws: P(closest pair squared "
            f"Hellinger < {eps} | y) = {collapse.p_post:.2f}."
        )
        states = tuple(sorted({s for g in collapse.groups for s in g}))
    pairs = _pair_text(collapse.distances)
    cause_kind = "not established"
    if symmetry.fingerprint:
        cause = (
            f"symmetric start: {symmetry.describe()}. Identical states get identical gradients "
            "(and identical EM updates), so the optimiser stayed on the symmetric saddle: the "
            "states were never separated, they all sit at the one-state fit."
        )
        remedies = (Remedy.SYMMETRY_BREAKING_INIT, Remedy.FEWER_STATES)
        cause_kind = "symmetric start"
    elif symmetry.recorded:
        cause = (
            f"symmetric start: {symmetry.describe()}. Identical states get identical gradients "
            "(and identical EM updates); this run left the symmetric point only partly: the "
            f"states are not identical to round-off (pairwise squared Hellinger {pairs}), but "
            f"the closest pair stayed within {eps}. A start that breaks the symmetry shows "
            "whether the data separate them."
        )
        remedies = (Remedy.SYMMETRY_BREAKING_INIT, Remedy.FEWER_STATES)
        cause_kind = "symmetric start"
    else:
        cause = (
            "the data do not separate the states, or the prior makes them alike (pairwise "
            f"squared Hellinger {pairs}); which one is established by the refits of "
            "hmm_pyro.diagnose(fit, deep=True), with fewer states and under a weaker prior."
        )
        remedies = (Remedy.FEWER_STATES, Remedy.MORE_DATA, Remedy.OTHER_PRIOR)
    return Flag(
        kind="emission_collapse",
        severity="error",
        summary=summary,
        measured={
            "p_post": collapse.p_post,
            "p_prior": collapse.p_prior,
            "bayes_factor": collapse.bayes_factor,
            "median_min_distance": float(np.median(collapse.min_distance)),
            "groups": collapse.groups,
            "effective_num_states": effective,
            "identical_to_round_off": symmetry.identical,
            "distance_to_one_state_fit": symmetry.pooled_distance,
        },
        threshold={
            "distance": eps,
            "probability": COLLAPSE_PROBABILITY,
            "bayes_factor": COLLAPSE_BAYES_FACTOR,
        },
        cause=cause,
        remedies=remedies,
        states=states,
        cause_kind=cause_kind,
    )


def symmetric_start_flag(
    symmetry: SymmetryEvidence, collapsed: bool, closest: float | None = None
) -> Flag | None:
    """All states started identical (error if they stayed collapsed, else a warning).

    "Never separated" is said only of states identical to round-off at the one-state fit;
    ``closest`` (median smallest pairwise squared Hellinger) is quoted otherwise.
    """
    if not (symmetry.recorded or symmetry.fingerprint):
        return None
    if symmetry.fingerprint:
        summary = "The run started with all states identical and never separated them."
    elif collapsed:
        distance = "" if closest is None else f" (closest pair at squared Hellinger {closest:.3g})"
        summary = (
            "The run started with all states identical; it separated them only partly: two "
            f"states are still indistinguishable{distance}, though not identical to round-off."
        )
    else:
        summary = (
            "The run started with all states identical; it separated them only because "
            "round-off differed between states (a fragile escape)."
        )
    source = "" if symmetry.recorded else " (inferred from the result: no init was recorded)"
    return Flag(
        kind="symmetric_start",
        severity="error" if collapsed else "warning",
        summary=summary,
        measured={
            "init": symmetry.init,
            "start_min_distance": symmetry.start_separation,
            "symmetric_starts": list(symmetry.symmetric_starts),
            "identical_to_round_off": symmetry.identical,
            "closest_pair_distance": closest,
        },
        threshold={
            "start_distance": SYMMETRIC_START_DISTANCE,
            "symmetric_inits": ["median", "mean", "feasible"],
        },
        cause=(
            f"{symmetry.describe()}{source}. The log density is invariant under relabelling, so "
            "identical states receive identical gradients; the symmetric point is a stationary "
            "point (a saddle) that exact arithmetic never leaves."
        ),
        remedies=(Remedy.SYMMETRY_BREAKING_INIT,),
        cause_kind="symmetric start",
    )


def empty_flag(occupancy: OccupancyStatistics, data_steps: int) -> Flag | None:
    """Some state has fewer expected observations than free emission parameters."""
    if not occupancy.any_empty:
        return None
    states = occupancy.empty_states
    fractions = ", ".join(f"{f:.3f}" for f in occupancy.mean_fraction)
    which = f"State(s) {_fmt_states(states)} are" if states else "A state is"
    return Flag(
        kind="empty_states",
        severity="error",
        summary=(
            f"{which} empty: fewer than {occupancy.required:g} expected observations with "
            f"posterior probability {occupancy.p_any_empty:.2f} (mean occupancy {fractions})."
        ),
        measured={
            "p_any_empty": occupancy.p_any_empty,
            "p_empty": occupancy.p_empty,
            "mean_occupancy": occupancy.mean_fraction,
            "occupancy_perplexity": occupancy.perplexity,
            "total_steps": data_steps,
        },
        threshold={
            "min_expected_steps": occupancy.required,
            "probability": EMPTY_STATE_PROBABILITY,
        },
        cause=(
            "more states than the data need: the posterior leaves the extra state(s) without "
            "observations, so their emission parameters are prior draws."
        ),
        remedies=(Remedy.FEWER_STATES, Remedy.MORE_DATA),
        states=states,
    )


def prior_dominated_flag(
    contraction: ContractionStatistics,
    occupancy: OccupancyStatistics,
    num_observations: int,
    free_parameters: int,
    num_states: int,
) -> Flag | None:
    """States whose emission parameters contracted less than the threshold."""
    states = contraction.prior_dominated
    if not states:
        return None
    per_state = ", ".join(f"{c:.2f}" for c in contraction.per_state)
    empty = set(occupancy.empty_states)
    needed = INSUFFICIENT_DATA_FACTOR * num_states * free_parameters
    if empty and set(states) <= empty:
        cause = (
            "the state(s) have (almost) no observations, so the posterior of their emission "
            "parameters is the prior."
        )
        remedies = (Remedy.FEWER_STATES, Remedy.MORE_DATA)
    elif num_observations < needed:
        cause = (
            f"insufficient data: {num_observations} observations for {num_states} x "
            f"{free_parameters} free emission parameters (fewer than "
            f"{INSUFFICIENT_DATA_FACTOR} per parameter); the likelihood is nearly flat in "
            "the emission parameters, so the prior decides them."
        )
        remedies = (Remedy.MORE_DATA, Remedy.FEWER_STATES, Remedy.OTHER_PRIOR)
    else:
        cause = (
            "the likelihood barely informs these states' emission laws (weakly identified "
            "states: they explain too few observations, or the same ones as other states)."
        )
        remedies = (Remedy.FEWER_STATES, Remedy.MORE_DATA, Remedy.OTHER_PRIOR)
    return Flag(
        kind="prior_dominated",
        severity="warning",
        summary=(
            f"The emission parameters of state(s) {_fmt_states(states)} are prior-dominated: "
            f"posterior contraction per state {per_state}."
        ),
        measured={
            "contraction_per_state": contraction.per_state,
            "contraction": contraction.entries,
            "num_observations": num_observations,
        },
        threshold={"contraction": CONTRACTION_PRIOR_DOMINATED},
        cause=cause,
        remedies=remedies,
        states=states,
    )


def switching_flag(
    switches: SwitchStatistics,
    convergence: ConvergenceStatistics | None,
    aligned_states: tuple[int, ...] | None = None,
) -> Flag | None:
    """Label switching between or within chains (error: per-state summaries mix).

    ``aligned_states``: for a fit already relabelled, the states that still change places
    (relabelling again cannot help; the remedy is fewer states).
    """
    if not switches.switching:
        return None
    parts = []
    if switches.between_chains:
        text = "the chains use different labellings of the states"
        if switches.aligned_switch:
            text += (
                f" (chain(s) {_fmt_states(switches.aligned_switch)} match the reference chain "
                "only after permuting states)"
            )
        parts.append(text)
    if switches.within_chain:
        chains = _fmt_states(switches.switching_chains)
        parts.append(f"chain(s) {chains} switch labels during the run")
    measured: dict[str, Any] = {
        "chain_alignment": switches.aligned,
        "chain_permutations": switches.modal,
        "non_modal_fraction": switches.non_modal_fraction,
        "changes": switches.changes,
    }
    cause = (
        "the posterior is invariant under relabelling, so every mode has K! symmetric copies; "
        + (
            "chains started apart settle in different copies"
            if switches.between_chains
            else "the sampler crossed from one copy to another"
        )
        + ". Per-state summaries (means, R-hat of pi, A, emissions) mix states"
    )
    if convergence is not None:
        worst = convergence.summary()
        measured["max_r_hat_raw"] = worst["raw"]["max_r_hat"]
        measured["max_r_hat_invariant"] = worst["invariant"]["max_r_hat"]
        if not convergence.invariant_failing:
            cause += "; label-invariant quantities converged (converged up to labels)"
    summary = "Label switching: " + "; ".join(parts) + "."
    remedies = (Remedy.RELABEL, Remedy.ORDERING_CONSTRAINT)
    states: tuple[int, ...] = ()
    if aligned_states is not None:
        states = aligned_states
        which = f"states {_fmt_states(states)}" if states else "some states"
        summary = f"Label switching after relabelling: {which} still change places."
        cause = (
            "the draws were already brought into one labelling (hmm_pyro.relabel, or fit_nuts "
            f"by default), yet {which} still trade labels between draws or chains: the data do "
            "not tell them apart (overlapping or nearly collapsed emission laws), so no "
            "relabelling can fix their per-state summaries"
        )
        remedies = (Remedy.FEWER_STATES, Remedy.MORE_DATA)
    return Flag(
        kind="label_switching",
        severity="error",
        summary=summary,
        measured=measured,
        threshold={"within_chain_fraction": WITHIN_CHAIN_SWITCH_FRACTION},
        cause=cause + ".",
        remedies=remedies,
        states=states,
    )


def _gap_text(gap: ChainGap, log_joint: ChainGap | None) -> str:
    """How far apart two chains are, in sd and standard errors, and their log posteriors."""
    high, low = gap.chains
    text = (
        f"chains {high} and {low} differ by {gap.gap_sd:.2f} sd in {gap.quantity}, "
        f"{gap.standard_errors:.1f} Monte Carlo standard errors"
    )
    if gap.quantity in _LOG_DENSITIES:
        return text + f", {gap.gap:.3g} nats (chain {low} lower)"
    if log_joint is not None:
        difference = log_joint.means[high] - log_joint.means[low]
        lower = low if difference >= 0 else high
        text += (
            f"; their mean log posteriors differ by {abs(difference):.3g} nats (chain {lower} "
            "lower)"
        )
    return text


def _invariant_flag(
    convergence: ConvergenceStatistics,
    failing_rhat: list[str],
    failing_ess: list[str],
    degenerate_states: tuple[int, ...],
) -> Flag:
    """Label-invariant quantities disagree: different modes, or not yet converged."""
    worst = convergence.summary()["invariant"]
    table = convergence.invariant
    log_joint = convergence.gaps.get("log_joint")
    separated = convergence.separated(failing_rhat)
    widest = separated[0] if separated else convergence.widest_gap(failing_rhat)
    measured: dict[str, Any] = {"invariant": worst, "raw": convergence.summary()["raw"]}
    if widest is not None:
        measured["chain_gap"] = widest.to_dict()
    if log_joint is not None:
        measured["chain_log_posterior"] = log_joint.means
    threshold: dict[str, Any] = {
        "r_hat": RHAT,
        "ess": convergence.min_ess,
        "ess_per_chain": ESS_PER_CHAIN,
        "mode_separation": MODE_SEPARATION,
    }
    rhat_text = f"invariant R-hat up to {worst['max_r_hat']:.3f} ({worst['worst_r_hat']})"
    if separated:
        summary = f"Chains in different modes: {_gap_text(separated[0], log_joint)}; {rhat_text}."
        cause = (
            "not mere label switching: the chains disagree on label-invariant quantities "
            f"({', '.join(gap.quantity for gap in separated[:6])}) by more than "
            f"{MODE_SEPARATION:g} Monte Carlo standard errors, far beyond what their sampling "
            "error explains, so they sit in different modes that the sampler does not cross"
        )
        severity = "error"
    elif failing_rhat:
        noise = convergence.rhat_noise(table)[failing_rhat]
        within = convergence.within_noise(table, failing_rhat)
        measured["r_hat_noise"] = float(noise.max())
        threshold["r_hat_noise_level"] = RHAT_NOISE_LEVEL
        agree = (
            "the chains' means agree within their Monte Carlo error (the widest gap: "
            f"{_gap_text(widest, log_joint)})"
            if widest is not None
            else "the chains' means could not be compared"
        )
        summary = f"Not yet converged: run longer; {rhat_text}, ESS down to {worst['min_ess']:.0f}."
        bound = f"{float(noise.max()):.3f}"
        if within:
            cause = (
                f"R-hat is within its own sampling noise for the ESS at hand (up to {bound} for "
                f"converged chains) and {agree}: the chains have not run long enough to show "
                "convergence, which is not the same as being in different modes"
            )
            if failing_ess:
                cause += (
                    f"; the bulk or tail ESS of {', '.join(failing_ess[:6])} is below "
                    f"{ESS_PER_CHAIN} per chain, so R-hat and Monte Carlo errors are rough"
                )
            severity = "warning"
        elif failing_ess:
            cause = (
                f"{agree}, but R-hat exceeds its own sampling noise for the ESS at hand (up to "
                f"{bound}) and the bulk or tail ESS of {', '.join(failing_ess[:6])} is below "
                f"{ESS_PER_CHAIN} per chain: the chains mix slowly"
            )
            severity = "error"
        else:
            cause = (
                f"{agree}, but R-hat exceeds its own sampling noise for the ESS at hand (up to "
                f"{bound}): the chains mix slowly"
            )
            severity = "error"
    else:
        summary = (
            f"Not converged: {rhat_text}, ESS down to {worst['min_ess']:.0f} "
            f"({worst['worst_ess']})."
        )
        cause = (
            "too few effective draws: the bulk or tail ESS of label-invariant quantities "
            f"({', '.join(failing_ess[:6])}) is below {ESS_PER_CHAIN} per chain, so R-hat "
            "and Monte Carlo errors are rough; R-hat itself shows no disagreement between the "
            "chains (a warning: the estimates are not yet certified, not known to be wrong)"
        )
        severity = "warning"
    if degenerate_states:
        cause += (
            "; with collapsed or empty states some chains may sit in a partly collapsed "
            "mode and others in a separated one"
        )
    remedies = (Remedy.LONGER_RUN,) + ((Remedy.FEWER_STATES,) if degenerate_states else ())
    return Flag(
        kind="not_converged",
        severity=severity,
        summary=summary,
        measured=measured,
        threshold=threshold,
        cause=cause + ".",
        remedies=remedies,
    )


def convergence_flags(
    convergence: ConvergenceStatistics,
    switching: bool,
    degenerate_states: tuple[int, ...],
) -> list[Flag]:
    """Non-convergence (invariant or per-state R-hat/ESS) and divergences."""
    flags = []
    worst = convergence.summary()
    threshold = {"r_hat": RHAT, "ess": convergence.min_ess, "ess_per_chain": ESS_PER_CHAIN}
    failing_rhat = convergence.failing_rhat(convergence.invariant)
    failing_ess = convergence.failing_ess(convergence.invariant)
    if failing_rhat or failing_ess:
        flags.append(_invariant_flag(convergence, failing_rhat, failing_ess, degenerate_states))
    elif convergence.raw_failing and not switching:
        if degenerate_states:
            cause = (
                f"collapsed or empty state(s) {_fmt_states(degenerate_states)} are not "
                "identified, so their parameters wander between chains"
            )
            remedies = (Remedy.FEWER_STATES, Remedy.LONGER_RUN)
        else:
            cause = (
                "per-state parameters mix slowly although label-invariant quantities converged "
                "(slow mixing, or label switching that the relabelling did not resolve)"
            )
            remedies = (Remedy.LONGER_RUN, Remedy.RELABEL)
        flags.append(
            Flag(
                kind="not_converged",
                severity="warning",
                summary=(
                    f"Per-state parameters not converged: R-hat up to "
                    f"{worst['raw']['max_r_hat']:.3f} ({worst['raw']['worst_r_hat']}), ESS down "
                    f"to {worst['raw']['min_ess']:.0f}; invariant quantities converged."
                ),
                measured={"raw": worst["raw"], "failing": convergence.raw_failing[:20]},
                threshold=threshold,
                cause=cause + ".",
                remedies=remedies,
            )
        )
    if convergence.divergences > DIVERGENCE_FRACTION * convergence.transitions:
        fraction = convergence.divergences / convergence.transitions
        flags.append(
            Flag(
                kind="divergences",
                severity="warning",
                summary=(
                    f"{convergence.divergences} divergent transitions ({fraction:.1%} of draws)."
                ),
                measured={"divergences": convergence.divergences, "fraction": fraction},
                threshold={"fraction": DIVERGENCE_FRACTION},
                cause=(
                    "NUTS met regions of high curvature it could not integrate (often near "
                    "empty states or collapsed pairs, where the posterior forms funnels); the "
                    "draws may be biased."
                ),
                remedies=(Remedy.LONGER_RUN, Remedy.OTHER_PRIOR, Remedy.FEWER_STATES),
            )
        )
    return flags


def identifiability_flag(labelling: Labelling) -> Flag | None:
    """Stephens and ECR disagree on too many draws (labels not identifiable)."""
    if labelling.identifiable:
        return None
    return Flag(
        kind="labels_not_identifiable",
        severity="warning",
        summary=(
            f"Stephens and ECR relabellings agree on only {labelling.agreement:.1%} of the draws."
        ),
        measured={"agreement": labelling.agreement, "collapsed_groups": labelling.groups},
        threshold={"disagreement": METHOD_DISAGREEMENT},
        cause=(
            "the state probabilities do not pin the labels down (states overlap or are weakly "
            "informed by the data), so relabelled per-state summaries depend on the method."
        ),
        remedies=(Remedy.MORE_DATA, Remedy.FEWER_STATES, Remedy.ORDERING_CONSTRAINT),
    )


def optimizer_flag(attrs: dict[str, Any]) -> Flag | None:
    """The kept restart (SVI or MAP) stopped before its loss settled."""
    converged = attrs.get("converged")
    best = attrs.get("best_restart")
    if not isinstance(converged, list) or best is None or converged[int(best)]:
        return None
    return Flag(
        kind="optimizer_not_converged",
        severity="warning",
        summary=f"The kept restart ({best}) stopped before its loss settled.",
        measured={"converged": converged, "steps_run": attrs.get("steps_run")},
        threshold={"tol": attrs.get("tol")},
        cause="the step limit was reached while the loss was still changing.",
        remedies=(Remedy.LONGER_RUN,),
    )
