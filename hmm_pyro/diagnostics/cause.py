"""Causes from direct evidence: name them on the flags, order the remedies.

:func:`apply_evidence` takes the :class:`~hmm_pyro.diagnostics.evidence.Evidence` of
``diagnose(deep=True)`` and names the cause of the state flags ("prior", "data", "insufficient
data", or "optimizer" when EM from a point estimate separates its collapsed states or a split
move finds a better solution) with the numbers it rests on, orders their remedies ("fewer
states" first when the smaller model is as good), raises ``too_many_states`` when no other flag
names the redundant states, ``local_optimum`` when a split move found a better solution and
``no_temporal_structure`` when a mixture fits as well; it sets every flag's ``cause_kind`` and
keeps relabelling advice off fits whose draws already share one labelling. Without evidence
(``deep=False``) the cause of collapse stays "not established". :func:`insufficient_data_flag`
is the point-estimate stand-in for posterior contraction (docs/degeneracy.md#fewer-states).
"""

from __future__ import annotations

import dataclasses

from hmm_pyro.diagnostics.collapse import min_pairwise
from hmm_pyro.diagnostics.evidence import Evidence, min_distance
from hmm_pyro.diagnostics.flags import Flag, Remedy
from hmm_pyro.diagnostics.occupancy import free_emission_parameters
from hmm_pyro.diagnostics.splits import SPLIT_GAIN_NATS
from hmm_pyro.diagnostics.temporal import temporal_flag
from hmm_pyro.diagnostics.thresholds import (
    COLLAPSE_DISTANCE,
    ELPD_SE_FACTOR,
    ELPD_SMALL_DIFFERENCE,
    INSUFFICIENT_DATA_FACTOR,
)
from hmm_pyro.fit import Fit
from hmm_pyro.labels.draws import emission_distances, to_numpy

__all__ = ["apply_evidence", "insufficient_data_flag"]

_STATE_FLAGS = ("emission_collapse", "empty_states", "prior_dominated")


def insufficient_data_flag(fit: Fit) -> Flag | None:
    """A point estimate from fewer than 10 observations per free emission parameter (warning).

    Posterior fits measure this directly (prior-dominated emission parameters: posterior
    contraction); a point estimate has no spread to measure, so the count itself is the check.
    """
    hmm, data = fit.hmm, fit.data
    free = free_emission_parameters(hmm)
    needed = INSUFFICIENT_DATA_FACTOR * hmm.num_states * free
    if fit.num_chains * fit.num_draws > 1 or data.num_observed >= needed:
        return None
    return Flag(
        kind="insufficient_data",
        severity="warning",
        summary=(
            f"Insufficient data for a point estimate: {data.num_observed} observations for "
            f"{hmm.num_states} x {free} free emission parameters (fewer than "
            f"{INSUFFICIENT_DATA_FACTOR} per parameter, {needed} needed)."
        ),
        measured={"num_observations": data.num_observed, "free_emission_parameters": free},
        threshold={"observations_per_parameter": INSUFFICIENT_DATA_FACTOR},
        cause=(
            "with this few observations the likelihood is nearly flat in the emission "
            "parameters: the point (a mode) hides how uncertain they are, and other restarts "
            "or another prior can give quite different states."
        ),
        remedies=(Remedy.MORE_DATA, Remedy.FEWER_STATES),
        cause_kind="insufficient data",
    )


def _steps(evidence: Evidence) -> str:
    return "; ".join(
        f"{c.smaller} vs {c.larger} states: {c.describe()}" for c in evidence.comparisons
    )


def _attribution(
    evidence: Evidence, fit: Fit, collapsed: float | None
) -> tuple[str, str, tuple[Remedy, ...]]:
    """``(cause_kind, cause, remedies)`` of degenerate states, from the evidence.

    ``collapsed``: the closest pair's squared Hellinger distance at the fit's own point when a
    point estimate was flagged as collapsed (``None`` otherwise).
    """
    hmm, data = fit.hmm, fit.data
    num = hmm.num_states
    first = evidence.comparisons[0] if evidence.comparisons else None
    prior = evidence.prior
    mode = min_distance(evidence.point)
    if evidence.split is not None and not evidence.smaller_as_good:
        return (
            "optimizer",
            f"the fit is at a local optimum: {evidence.split.describe()}, and at that solution "
            f"fewer states fit worse ({first.describe() if first else 'not compared'}).",
            (Remedy.MORE_RESTARTS, Remedy.SYMMETRY_BREAKING_INIT),
        )
    if collapsed is not None and mode >= COLLAPSE_DISTANCE and not evidence.smaller_as_good:
        return (
            "optimizer",
            "the optimiser stopped short of the mode: EM from the fit's own point separates the "
            f"states (closest pair squared Hellinger {collapsed:.3g} -> {mode:.3g}) and fewer "
            f"states fit worse ({first.describe() if first else 'not compared'}).",
            (Remedy.LONGER_RUN, Remedy.SYMMETRY_BREAKING_INIT),
        )
    if prior is not None and prior.blames_prior:
        return (
            "prior",
            "the prior makes the states alike: " + prior.describe() + ".",
            (Remedy.OTHER_PRIOR, Remedy.MORE_DATA, Remedy.FEWER_STATES),
        )
    not_prior = "" if prior is None else f"; not the prior: {prior.describe()}"
    if first is not None and first.as_good:
        support = f"the data support {evidence.supported} state(s), not {num}"
        free = free_emission_parameters(hmm)
        if data.num_observed < INSUFFICIENT_DATA_FACTOR * num * free:
            return (
                "insufficient data",
                f"insufficient data: {data.num_observed} observations for {num} x {free} free "
                f"emission parameters (fewer than {INSUFFICIENT_DATA_FACTOR} per parameter), and "
                f"fewer states fit as well ({_steps(evidence)}): {support} until there are more "
                f"data{not_prior}.",
                (Remedy.MORE_DATA, Remedy.FEWER_STATES),
            )
        return (
            "data",
            f"the data do not separate the states: fewer states fit as well "
            f"({_steps(evidence)}); {support}{not_prior}.",
            (Remedy.FEWER_STATES, Remedy.MORE_DATA),
        )
    detail = f" ({first.describe()})" if first is not None else ""
    return (
        "data",
        f"the states are alike, but fewer states fit worse{detail}: they differ in what the "
        f"emission laws do not show (their dynamics), or the data are too few to tell"
        f"{not_prior}.",
        (Remedy.MORE_DATA, Remedy.FEWER_STATES),
    )


def _too_many_states_flag(evidence: Evidence, cause: tuple[str, str, tuple[Remedy, ...]]) -> Flag:
    first = evidence.comparisons[0]
    kind, text, remedies = cause
    return Flag(
        kind="too_many_states",
        severity="error",
        summary=(
            f"A model with {first.smaller} state(s) fits as well as the {first.larger}-state fit "
            f"({first.describe()}); the data support {evidence.supported} state(s)."
        ),
        measured={"comparisons": [c.to_dict() for c in evidence.comparisons]},
        threshold={
            "elpd_difference": ELPD_SMALL_DIFFERENCE,
            "se_factor": ELPD_SE_FACTOR,
            "bic": "smaller model's BIC <= larger model's",
        },
        cause=text,
        remedies=remedies,
        states=tuple(first.merged),
        cause_kind=kind,
    )


def _local_optimum_flag(evidence: Evidence, num_states: int) -> Flag:
    """A better ``K``-state solution than the fit's, found by a split move (error)."""
    split = evidence.split
    first = evidence.comparisons[0]
    return Flag(
        kind="local_optimum",
        severity="error",
        summary=(
            f"The fit is not at the best {num_states}-state solution: {split.describe()}; at "
            f"that solution the data support {evidence.supported} state(s) ({first.describe()})."
        ),
        measured=split.to_dict(),
        threshold={"gain_nats": SPLIT_GAIN_NATS, "bic": "the split solution's BIC is lower"},
        cause=(
            "the optimiser (or the chains) ended at a local optimum: states the data separate "
            "share one state there, and the spare states copy another or are empty."
        ),
        remedies=(Remedy.MORE_RESTARTS, Remedy.SYMMETRY_BREAKING_INIT),
        states=(split.state, num_states - 1),
        cause_kind="optimizer",
    )


_KIND_CAUSES = {
    "empty_states": "data",
    "symmetric_start": "symmetric start",
    "label_switching": "label switching",
    "not_converged": "sampler",
    "stuck_chains": "sampler",
    "divergences": "sampler",
    "optimizer_not_converged": "optimizer",
    "labels_not_identifiable": "weak identifiability",
    "chains_in_different_modes": "non-mixing",
    "misspecification": "misspecification",
}


def _with_remedies(flag: Flag, first: tuple[Remedy, ...], drop: tuple[Remedy, ...]) -> Flag:
    ordered = [r for r in first if r not in drop]
    ordered += [r for r in flag.remedies if r not in ordered and r not in drop]
    return dataclasses.replace(flag, remedies=tuple(ordered))


def apply_evidence(
    flags: list[Flag], evidence: Evidence | None, fit: Fit, aligned: bool
) -> list[Flag]:
    """Name causes from the evidence and set every flag's ``cause_kind``.

    Parameters
    ----------
    flags : list of Flag
        The raised flags.
    evidence : Evidence or None
        The refits (``None`` with ``deep=False`` or one state).
    fit : Fit
        The diagnosed fit.
    aligned : bool
        The draws share one labelling (relabelled, or one SVI guide): remedies never suggest
        relabelling again.

    Returns
    -------
    list of Flag
    """
    kinds = {flag.kind for flag in flags}
    degenerate = bool(kinds & {"emission_collapse", "empty_states"})
    cause = None
    if evidence is not None:
        degenerate = degenerate or evidence.smaller_as_good
        collapsed = None
        if "emission_collapse" in kinds and fit.num_chains * fit.num_draws == 1:
            emission = {name: fit.draws()[name] for name in fit.hmm.emission.param_names}
            collapsed = float(
                min_pairwise(emission_distances(fit.hmm, to_numpy(emission))).ravel()[0]
            )
        cause = _attribution(evidence, fit, collapsed)
    result = []
    drop = (Remedy.RELABEL,) if aligned else ()
    for flag in flags:
        if flag.kind in _STATE_FLAGS and cause is not None and flag.cause_kind != "symmetric start":
            keep = flag.kind == "prior_dominated" and not (
                evidence.smaller_as_good or cause[0] == "prior"
            )
            if not keep:
                flag = dataclasses.replace(
                    flag,
                    cause=cause[1],
                    remedies=cause[2],
                    cause_kind=cause[0],
                    measured={**flag.measured, "refits": evidence.to_dict()},
                )
        after_relabelling = flag.kind == "label_switching" and (
            flag.remedies[:1] == (Remedy.FEWER_STATES,)
        )
        if flag.kind == "misspecification" and evidence is not None and evidence.split:
            # the misfit of a fit at a local optimum: refit first, then check the model again
            flag = _with_remedies(flag, (Remedy.MORE_RESTARTS,), drop)
            flag = dataclasses.replace(
                flag,
                cause=(
                    "the checks ran at a local optimum: a better solution with as many states "
                    f"exists ({evidence.split.describe()}), so the misfit may be the "
                    "optimizer's, not the model's; refit from there and check again. If it "
                    "stays: " + flag.cause
                ),
                cause_kind="optimizer",
            )
        if flag.kind == "label_switching" and (degenerate or after_relabelling):
            # states that still trade places (after relabelling, or among degenerate states)
            # are states the data do not tell apart
            flag = _with_remedies(flag, (Remedy.FEWER_STATES,), drop)
            flag = dataclasses.replace(flag, cause_kind="data")
        elif drop and Remedy.RELABEL in flag.remedies:
            flag = _with_remedies(flag, (Remedy.FEWER_STATES,) if degenerate else (), drop)
        if not flag.cause_kind:
            default = "insufficient data" if flag.cause.startswith("insufficient") else "data"
            flag = dataclasses.replace(flag, cause_kind=_KIND_CAUSES.get(flag.kind, default))
        result.append(flag)
    if evidence is not None and cause is not None:
        if evidence.split is not None:  # first: the root cause of the state flags
            result.insert(0, _local_optimum_flag(evidence, fit.hmm.num_states))
        if evidence.smaller_as_good and not kinds & {"emission_collapse", "empty_states"}:
            result.append(_too_many_states_flag(evidence, cause))
        if evidence.temporal is not None:
            temporal = temporal_flag(evidence.temporal, evidence.supported)
            if temporal is not None:
                result.append(temporal)
    return result
