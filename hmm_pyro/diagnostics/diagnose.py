"""``diagnose``: run every degeneracy check on a ``Fit`` and turn the measurements into flags.

Order of work: thin the draws (chains kept), one forward-backward pass per kept draw (state
probabilities and occupancy), a Stephens relabelling of the kept draws (with ECR as a
cross-check), then label-free and relabelled measurements: collapse, occupancy, contraction,
symmetric start, label switching, and convergence on all draws (raw and label-invariant).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from hmm_pyro.diagnostics.cause import apply_evidence, insufficient_data_flag
from hmm_pyro.diagnostics.collapse import CollapseStatistics, collapse_statistics, min_pairwise
from hmm_pyro.diagnostics.contraction import ContractionStatistics, contraction_statistics
from hmm_pyro.diagnostics.convergence import ConvergenceStatistics, convergence_statistics
from hmm_pyro.diagnostics.evidence import Evidence, gather_evidence
from hmm_pyro.diagnostics.findings import (
    collapse_flag,
    convergence_flags,
    empty_flag,
    identifiability_flag,
    optimizer_flag,
    prior_dominated_flag,
    switching_flag,
    symmetric_start_flag,
)
from hmm_pyro.diagnostics.flags import Flag
from hmm_pyro.diagnostics.label_switching import switch_statistics
from hmm_pyro.diagnostics.model_checks import model_checks
from hmm_pyro.diagnostics.occupancy import (
    OccupancyStatistics,
    free_emission_parameters,
    occupancy_statistics,
)
from hmm_pyro.diagnostics.predictive import PREDICTIVE_REPLICATES
from hmm_pyro.diagnostics.report import DegeneracyReport
from hmm_pyro.diagnostics.restarts import restart_comparison, weak_identifiability_flag
from hmm_pyro.diagnostics.stuck import stuck_chains_flag
from hmm_pyro.diagnostics.subjects import subject_flags, subject_statistics
from hmm_pyro.diagnostics.symmetry import symmetry_evidence
from hmm_pyro.diagnostics.thresholds import (
    COLLAPSE_DISTANCE,
    ESS_PER_CHAIN,
    RHAT,
    RHAT_NOISE,
)
from hmm_pyro.fit import ALIGNED, ONE_MODE, Fit
from hmm_pyro.labels.draws import Arrays, emission_distances, state_statistics, to_numpy
from hmm_pyro.labels.groups import count_groups
from hmm_pyro.labels.labelling import (
    Labelling,
    chain_alignment,
    compute_labelling,
    log_posterior,
)
from hmm_pyro.labels.permutations import permute_axis, permute_params
from hmm_pyro.model import HMM
from hmm_pyro.multilevel import MultilevelHMM

__all__ = ["diagnose"]

DEFAULT_MAX_DRAWS = 1000
"""Draws (over all chains) whose state probabilities are computed; R-hat and ESS use all."""
SUPERVISED = "supervised"
"""The method name of fits whose states were observed (``fit_supervised``)."""
FIRST_KINDS = (
    "stuck_chains",
    "local_optimum",
    "emission_collapse",
    "symmetric_start",
    "empty_states",
    "too_many_states",
    "no_temporal_structure",
    "prior_dominated",
    "insufficient_data",
    "misspecification",
)
"""Flags about the model's structure (its states and their dynamics) come first, errors before
warnings, then the others, errors first: structure is the usual root cause of the rest (chains
wander between redundant states, or along transition rows the data do not identify, and do
not converge)."""


# ---------------------------------------------------------------------------- checks
def _thin_per_chain(num_draws: int, num_chains: int, max_draws: int | None) -> np.ndarray:
    """Evenly spaced draw indices kept in every chain, at most ``max_draws`` in total."""
    if max_draws is None or num_draws * num_chains <= max_draws:
        return np.arange(num_draws)
    per_chain = max(1, max_draws // num_chains)
    return np.unique(np.linspace(0, num_draws - 1, per_chain).round().astype(np.int64))


@dataclass(frozen=True)
class _Draws:
    """What every check reads: the thinned draws, their relabelling and their occupancy."""

    fit: Fit
    draws: Arrays  # thinned posterior draws (chain, draw, ...)
    relabelled: Arrays  # the same draws in one labelling (Stephens)
    prior: Arrays  # prior draws (1, P, ...)
    labelling: Labelling
    occupancy: OccupancyStatistics  # in the relabelled labelling
    log_post: np.ndarray  # (chain, draw) of the thinned draws

    @property
    def hmm(self) -> HMM:
        return self.fit.hmm

    @property
    def num_kept(self) -> int:
        return int(np.prod(next(iter(self.draws.values())).shape[:2]))


def _prepare(fit: Fit, max_draws: int, log_post_all: np.ndarray) -> _Draws:
    hmm = fit.hmm
    all_draws = to_numpy(fit.draws())
    num_chains, num_draws = log_post_all.shape
    index = _thin_per_chain(num_draws, num_chains, max_draws)
    draws = {name: value[:, index] for name, value in all_draws.items()}
    log_post = log_post_all[:, index]
    labelling = compute_labelling(hmm, fit.data, draws, log_post, "stephens", cross_check=True)
    perms = labelling.perms
    counts = labelling.counts
    if counts is None:  # a single draw or a single state: nothing was relabelled
        counts = state_statistics(hmm, fit.data, draws).counts
    counts = permute_axis(counts.reshape(perms.shape), perms, axis=2)
    return _Draws(
        fit=fit,
        draws=draws,
        relabelled=permute_params(hmm, draws, perms),
        prior=to_numpy(fit.draws("prior")),
        labelling=labelling,
        occupancy=occupancy_statistics(hmm, counts, int(fit.data.lengths.sum())),
        log_post=log_post,
    )


def _check_states(
    kept: _Draws, distance: float, attrs: dict[str, Any]
) -> tuple[list[Flag | None], dict[str, Any], CollapseStatistics | None, float]:
    """Collapse, symmetric start and empty states; also the effective number of states."""
    hmm, occupancy = kept.hmm, kept.occupancy
    measurements: dict[str, Any] = {
        "occupancy": {
            "mean_fraction": occupancy.mean_fraction,
            "p_empty": occupancy.p_empty,
            "p_any_empty": occupancy.p_any_empty,
            "min_expected_steps": occupancy.required,
            "perplexity": occupancy.perplexity,
        }
    }
    flags: list[Flag | None] = [empty_flag(occupancy, occupancy.total_steps)]
    if hmm.num_states < 2:
        return flags, measurements, None, 1.0
    collapse = collapse_statistics(hmm, kept.relabelled, kept.prior, distance)
    occupied = occupancy.counts >= occupancy.required
    effective = float(np.median(count_groups(collapse.distances < distance, keep=occupied)))
    symmetry = symmetry_evidence(hmm, kept.fit.data, kept.draws, attrs)
    measurements["collapse"] = {
        "p_post": collapse.p_post,
        "p_prior": collapse.p_prior,
        "bayes_factor": collapse.bayes_factor,
        "median_min_distance": float(np.median(collapse.min_distance)),
        "pair_probability": collapse.pair_probability,
        "groups": collapse.groups,
    }
    measurements["symmetric_start"] = {
        "init": symmetry.init,
        "start_min_distance": symmetry.start_separation,
        "identical_to_round_off": symmetry.identical,
        "distance_to_one_state_fit": symmetry.pooled_distance,
    }
    closest = float(np.median(collapse.min_distance))
    flags.insert(0, symmetric_start_flag(symmetry, collapse.collapsed, closest))
    flags.insert(0, collapse_flag(collapse, symmetry, effective, hmm.num_states))
    return flags, measurements, collapse, effective


def _check_subjects(
    hmm: MultilevelHMM,
    kept: _Draws,
    distance: float,
    measurements: dict[str, Any],
    notes: list[str],
) -> list[Flag]:
    """Subject-level collapse and labels of a multilevel fit (:mod:`.subjects`)."""
    notes.append(
        f"multilevel model ({hmm.num_subjects} subjects): collapse, label switching, occupancy "
        "and contraction are measured on the group-level parameters; the relabelling permutes "
        "every subject's parameters with them"
    )
    statistics = subject_statistics(hmm, kept.relabelled, distance)
    if statistics is None:
        notes.append(
            "the emission parameters are shared by all subjects: their states' emission laws "
            "are the group's, so subject-level collapse and label checks do not apply"
        )
        return []
    measurements["subjects"] = statistics.to_dict()
    return subject_flags(statistics)


def _check_contraction(kept: _Draws) -> tuple[Flag | None, ContractionStatistics]:
    """Prior domination: contraction of relabelled posterior against relabelled prior draws."""
    hmm, prior = kept.hmm, kept.prior
    prior_perms = compute_labelling(
        hmm,
        kept.fit.data,
        prior,
        np.zeros(next(iter(prior.values())).shape[:2]),
        "stephens",
        cross_check=False,
    ).perms
    contraction = contraction_statistics(
        hmm, kept.relabelled, permute_params(hmm, prior, prior_perms)
    )
    flag = prior_dominated_flag(
        contraction,
        kept.occupancy,
        kept.fit.data.num_observed,
        free_emission_parameters(hmm),
        hmm.num_states,
    )
    return flag, contraction


def _check_switching(
    kept: _Draws, convergence: ConvergenceStatistics | None
) -> tuple[list[Flag | None], dict[str, Any], bool]:
    """Label switching between and within chains, and agreement of Stephens with ECR."""
    labelling = kept.labelling
    aligned = chain_alignment(kept.hmm, kept.draws, kept.log_post)
    switches = switch_statistics(labelling.perms, labelling.groups, aligned)
    still_moving = None
    if kept.fit.labelling == ALIGNED:  # relabelled already: which states still move
        moved = (labelling.perms != np.arange(kept.hmm.num_states)).any(axis=(0, 1))
        moved |= (aligned != np.arange(kept.hmm.num_states)).any(axis=0)
        still_moving = tuple(np.flatnonzero(moved).tolist())
    measurements = {
        "chain_alignment": aligned,
        "chains_aligned_by_a_permutation": list(switches.aligned_switch),
        "chain_permutations": switches.modal,
        "non_modal_fraction": switches.non_modal_fraction,
        "changes": switches.changes,
        "between_chains": switches.between_chains,
        "switching_chains": list(switches.switching_chains),
        "relabel_agreement": labelling.agreement,
        "collapsed_groups": labelling.groups,
    }
    flags = [
        switching_flag(switches, convergence, still_moving),
        identifiability_flag(labelling),
    ]
    return flags, measurements, switches.switching


def _convergence_measurements(convergence: ConvergenceStatistics) -> dict[str, Any]:
    worst = convergence.summary()
    return {
        "raw": {**worst["raw"], "entries": convergence.raw.to_dict(orient="index")},
        "invariant": {
            **worst["invariant"],
            "entries": convergence.invariant.to_dict(orient="index"),
        },
        "divergences": convergence.divergences,
    }


def _summary_numbers(
    collapse: CollapseStatistics | None,
    occupancy: OccupancyStatistics,
    contraction: ContractionStatistics | None,
    effective: float,
    labelling: Labelling,
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "effective_num_states": effective,
        "mean_occupancy": occupancy.mean_fraction,
    }
    if collapse is not None:
        summary["p_collapsed_post"] = collapse.p_post
        summary["p_collapsed_prior"] = collapse.p_prior
        summary["median_min_distance"] = float(np.median(collapse.min_distance))
    if contraction is not None:
        summary["contraction_per_state"] = contraction.per_state
    if labelling.agreement is not None:
        summary["relabel_agreement"] = labelling.agreement
    return summary


def _diverging(fit: Fit) -> np.ndarray | None:
    """``(chain, draw)`` divergence indicators, if the sampler recorded them."""
    if "sample_stats" not in fit.idata.groups() or "diverging" not in fit.idata.sample_stats:
        return None
    return np.asarray(fit.idata.sample_stats["diverging"].values)


def _restart_measurements(fit: Fit, attrs: dict[str, Any]) -> dict[str, Any] | None:
    """Closest pair of states and final loss of every restart (SVI, MAP, EM, ...)."""
    restarts = attrs.get("restart_params")
    if not restarts:
        return None
    hmm = fit.hmm
    emission = {name: np.asarray(restarts[name]) for name in hmm.emission.param_names}
    result: dict[str, Any] = {"min_distance": min_pairwise(emission_distances(hmm, emission))}
    if "sample_stats" in fit.idata.groups() and "final_loss" in fit.idata.sample_stats:
        result["final_loss"] = np.asarray(fit.idata.sample_stats["final_loss"].values).ravel()
    return result


def _restart_checks(fit: Fit, measurements: dict[str, Any]) -> Flag | None:
    """Per-restart objectives and solutions; restarts within a few nats at other solutions."""
    comparison = restart_comparison(fit)
    if comparison is None:
        return None
    measurements.setdefault("restarts", {}).update(comparison.to_dict())
    measurements["summary"][f"restart_{comparison.objective.replace(' ', '_')}"] = comparison.values
    return weak_identifiability_flag(comparison, fit.hmm)


def _refit_checks(
    kept: _Draws, flags: list[Flag], deep: bool, measurements: dict[str, Any], notes: list[str]
) -> list[Flag]:
    """The refits of ``deep=True`` (fewer states, weaker prior, mixture) and the causes."""
    fit = kept.fit
    evidence: Evidence | None = None
    if fit.method == SUPERVISED:
        notes.append(
            "the states were observed (supervised fit): no refits with fewer states or "
            "without the emission prior; the number of states was given, not inferred"
        )
    elif fit.hmm.num_states >= 2 and deep and fit.hmm.not_classical:
        notes.append(
            f"refits skipped: {fit.hmm.not_classical}, and the refits with fewer "
            "states, without the emission prior and as a mixture run EM, which updates one "
            "transition matrix; the cause of collapsed or redundant states is not established"
        )
    elif fit.hmm.num_states >= 2 and deep:
        start = {name: value.mean((0, 1)) for name, value in kept.relabelled.items()}
        relevant = any(
            flag.kind in ("emission_collapse", "empty_states", "prior_dominated") for flag in flags
        )
        evidence = gather_evidence(fit, start, relevant)
        measurements["refits"] = evidence.to_dict()
        measurements["summary"]["supported_states"] = evidence.supported
        notes.extend(evidence.notes)
    elif fit.hmm.num_states >= 2:
        notes.append(
            "refits skipped (deep=False): no model with fewer states was fitted, no refit under "
            "a weaker prior and no mixture (temporal-structure test); the cause of collapsed or "
            "redundant states is not established"
        )
    aligned = fit.labelling in (ALIGNED, ONE_MODE)
    return apply_evidence(flags, evidence, fit, aligned)


def _fold_convergence_into_modes(flags: list[Flag | None]) -> list[Flag | None]:
    """One flag for chains in different modes: ``not_converged`` folded into the modes flag.

    ``chains_in_different_modes`` names the worse chains and the gap in nats; the R-hat of the
    label-invariant quantities (``not_converged``) that the same chains fail says nothing more,
    so its summary and numbers join the modes flag instead of standing as a second flag with
    other remedies. Per-state (raw) non-convergence stays a flag of its own.
    """
    modes = next(
        (f for f in flags if f is not None and f.kind == "chains_in_different_modes"), None
    )
    converged = next(
        (
            f
            for f in flags
            if f is not None and f.kind == "not_converged" and "invariant" in f.measured
        ),
        None,
    )
    if modes is None or converged is None:
        return flags
    merged = replace(
        modes,
        summary=f"{modes.summary} {converged.summary}",
        measured={**modes.measured, "convergence": converged.measured},
        threshold={**modes.threshold, **converged.threshold},
    )
    return [merged if f is modes else f for f in flags if f is not converged]


# ---------------------------------------------------------------------------- main
def diagnose(
    fit: Fit,
    max_draws: int = DEFAULT_MAX_DRAWS,
    distance: float = COLLAPSE_DISTANCE,
    deep: bool = True,
    predictive: int = PREDICTIVE_REPLICATES,
) -> DegeneracyReport:
    """Check a fit for degeneracy: collapse, empty states, symmetry, switching, convergence.

    Also flags prior-dominated emission parameters, divergences and SVI runs that stopped early.

    Parameters
    ----------
    fit : Fit
        Any fit: NUTS chains, SVI (point estimate or guide draws), or ``Fit.from_params``.
    max_draws : int
        Draws (over all chains, evenly thinned per chain) whose forward-backward state
        probabilities drive the occupancy, collapse and relabelling checks. R-hat and ESS
        always use every draw.
    distance : float
        Squared Hellinger distance below which two emission laws are indistinguishable
        (default :data:`~hmm_pyro.diagnostics.thresholds.COLLAPSE_DISTANCE`).
    deep : bool
        Refit to find causes (:mod:`hmm_pyro.diagnostics.evidence`): the model with ``K - 1``
        (and ``K - 2``) states merged from the fit's, compared by BIC and held-out likelihood
        (point estimates) or PSIS-LOO with the same runner (NUTS, SVI); the model without the
        emission prior (is the prior to blame?); the i.i.d. mixture (temporal structure).
        ``False`` skips them (and says so in the notes): causes of collapse are then not
        established and over-specified point estimates may pass.
    predictive : int
        Replicated data sets of the predictive checks (misspecification: marginal, temporal
        and dwell-time statistics, :func:`~hmm_pyro.diagnostics.predictive.predictive_checks`);
        0 skips them (and says so in the notes).

    Returns
    -------
    DegeneracyReport
        ``.ok`` is true when no flag is raised; ``.flags`` says what was measured, the
        threshold, the likely cause and the remedy.

    Notes
    -----
    Label-free statistics decide collapse (smallest pairwise distance, calibrated against the
    prior draws), emptiness (smallest occupancy) and convergence of invariants. Per-state
    statistics (which pairs collapse, contraction, per-state occupancy) use draws relabelled by
    Stephens' algorithm. A fit relabelled with :func:`hmm_pyro.relabel` diagnoses without the
    switching flag. Restarts (MAP, EM, SVI) are compared with the kept one: per-restart
    objectives are reported, and restarts at other solutions within a few nats are flagged.
    With ``deep=True``, NUTS and SVI fits are refitted with fewer states by their own runner
    and settings: that costs about one more fit per smaller model.

    Examples
    --------
    >>> report = hmm_pyro.diagnose(fit)  # doctest: +SKIP
    >>> print(report.to_markdown())  # doctest: +SKIP
    """
    if not isinstance(fit, Fit):
        raise TypeError(f"fit: expected a hmm_pyro Fit, got {type(fit).__name__}")
    if isinstance(max_draws, bool) or not isinstance(max_draws, int) or max_draws < 1:
        raise ValueError(f"max_draws: expected an int >= 1, got {max_draws!r}")
    if isinstance(predictive, bool) or not isinstance(predictive, int) or predictive < 0:
        raise ValueError(f"predictive: expected an int >= 0 (0 skips), got {predictive!r}")
    if predictive == 1:
        raise ValueError("predictive: expected 0 (skip) or at least 2 replicated data sets, got 1")
    if not 0.0 < float(distance) < 1.0:
        raise ValueError(
            f"distance: expected a squared Hellinger distance in (0, 1), got {distance}"
        )
    if not isinstance(deep, bool):
        raise TypeError(f"deep: expected True or False, got {deep!r}")
    hmm = fit.hmm
    attrs = fit.attrs
    log_lik = fit.idata.log_likelihood["y"].sum("sequence").values
    log_post = log_posterior(fit)
    kept = _prepare(fit, max_draws, log_post)
    notes: list[str] = []
    flags, measurements, collapse, effective = _check_states(kept, distance, attrs)
    if hmm.num_states < 2:
        notes.append("one state: collapse, symmetric starts and label switching do not apply")
    elif isinstance(hmm, MultilevelHMM):
        flags.extend(_check_subjects(hmm, kept, distance, measurements, notes))

    contraction = None
    convergence = convergence_statistics(
        hmm, to_numpy(fit.draws()), log_lik, log_post - log_lik, _diverging(fit)
    )
    switching = False
    if kept.num_kept >= 2:
        flag, contraction = _check_contraction(kept)
        flags.append(flag)
        measurements["contraction"] = {
            "per_state": contraction.per_state,
            "entries": contraction.entries,
        }
        if hmm.num_states > 1:
            more, measurements["label_switching"], switching = _check_switching(kept, convergence)
            flags.extend(more)
    else:
        notes.append(
            "a single draw (point estimate): posterior contraction, label switching and "
            "convergence need several draws"
        )
    more_flags, more_measurements, more_notes = model_checks(fit, log_post, log_lik, predictive)
    flags.extend(more_flags)
    measurements.update(more_measurements)
    notes.extend(more_notes)
    if convergence is not None:
        measurements["convergence"] = _convergence_measurements(convergence)
        borderline = convergence.borderline_rhat(convergence.invariant) + (
            convergence.borderline_rhat(convergence.raw)
        )
        if borderline:
            notes.append(
                f"R-hat slightly above {RHAT} ({', '.join(sorted(set(borderline))[:6])}) with "
                f"bulk and tail ESS >= {2 * ESS_PER_CHAIN} per chain: within R-hat's sampling "
                f"noise (up to {RHAT_NOISE}); run longer chains to confirm"
            )
        degenerate = set(kept.occupancy.empty_states)
        if collapse is not None and collapse.collapsed:
            degenerate |= {state for group in collapse.groups for state in group}
        flags.extend(convergence_flags(convergence, switching, tuple(sorted(degenerate))))
        flags = _fold_convergence_into_modes(flags)
    elif kept.num_kept >= 2:
        notes.append("R-hat and ESS need at least 2 chains of 4 draws")
    if _diverging(fit) is not None:  # draws of a sampler (a stuck chain repeats its draw)
        flags.append(stuck_chains_flag(to_numpy(fit.draws())))
    flags.append(optimizer_flag(attrs))
    restarts = _restart_measurements(fit, attrs)
    if restarts is not None:
        measurements["restarts"] = restarts
    if "relabel" in attrs:
        measurements["relabel"] = attrs["relabel"]
    measurements["summary"] = _summary_numbers(
        collapse, kept.occupancy, contraction, effective, kept.labelling
    )
    flags.append(_restart_checks(fit, measurements))
    flags.append(insufficient_data_flag(fit))
    found = _refit_checks(
        kept, [flag for flag in flags if flag is not None], deep, measurements, notes
    )
    raised = sorted(
        found,
        key=lambda flag: (flag.kind not in FIRST_KINDS, flag.severity != "error"),
    )
    num_chains, num_draws = log_post.shape
    return DegeneracyReport(
        flags=tuple(raised),
        measurements=measurements,
        notes=tuple(notes),
        context={
            "method": fit.method,
            "states": hmm.num_states,
            "chains": num_chains,
            "draws": num_draws,
        },
    )
