"""The ``misspecification`` flag: statistics of the data that the fitted model cannot reproduce.

Reads :class:`~hmm_pyro.diagnostics.predictive.PredictiveChecks`; the flag lists every failing
statistic with its observed value, the replicates' mean and sd, ``z`` and the Holm-adjusted
p-value, and names the part of the model that misfits: the emission law (marginal statistics)
or the Markov chain (autocorrelation, runs, dwell times)
(docs/degeneracy.md#predictive-checks).
"""

from __future__ import annotations

import numpy as np

from hmm_pyro.diagnostics.flags import Flag, Remedy
from hmm_pyro.diagnostics.predictive import PREDICTIVE_ALPHA, PredictiveCheck, PredictiveChecks

__all__ = ["misspecification_flag"]

_SHOWN = 4
"""Failing statistics spelled out in the summary (all are in ``measured``)."""


def _describe(check: PredictiveCheck) -> str:
    observed = float(np.nanmean(check.observed))
    mean = float(np.nanmean(check.replicated))
    sd = float(np.nanstd(check.replicated, ddof=1))
    return (
        f"{check.name} {observed:.3g} vs {mean:.3g} +- {sd:.2g} in the replicates "
        f"(z {check.z:+.1f}, Holm p {check.adjusted_p:.2g})"
    )


def misspecification_flag(checks: PredictiveChecks | None) -> Flag | None:
    """Statistics outside every replicate with Holm-adjusted p below the level (warning)."""
    if checks is None or not checks.failed:
        return None
    failed = checks.failed
    kinds = {check.kind for check in failed}
    how = (
        f"plug-in predictive check at the point estimate, {checks.replicates} replicated data sets"
        if checks.source == "plug-in"
        else f"posterior predictive check, {checks.replicates} replicated data sets from "
        f"{checks.draws} posterior draws"
    )
    listed = "; ".join(_describe(check) for check in failed[:_SHOWN])
    more = f"; and {len(failed) - _SHOWN} more" if len(failed) > _SHOWN else ""
    summary = (
        f"The model does not reproduce {len(failed)} of {len(checks.checks)} statistics of the "
        f"data ({how}): {listed}{more}."
    )
    parts = []
    if "marginal" in kinds:
        parts.append(
            "the emission family does not describe the data's marginal law (heavier tails, "
            "overdispersion or other frequencies than the fitted states imply)"
        )
    if kinds & {"autocorrelation", "runs", "dwell"}:
        parts.append(
            "the Markov chain of these states does not describe the data's temporal pattern "
            "(autocorrelation, runs or dwell times of the decoded path)"
        )
    cause = (
        "; and ".join(parts)
        + ". A misfitting emission law can also create spurious states (extra states absorb "
        "outliers or overdispersion and switch quickly), so the states need not be regimes. "
        f"Each statistic failed at family-wise level {PREDICTIVE_ALPHA:g} over the "
        f"{len(checks.checks)} statistics (Holm) and lies beyond every replicate."
    )
    if "marginal" in kinds:
        remedies = (Remedy.OTHER_FAMILY, Remedy.FEWER_STATES, Remedy.MORE_STATES)
    else:
        remedies = (Remedy.MORE_STATES, Remedy.OTHER_FAMILY)
    return Flag(
        kind="misspecification",
        severity="warning",
        summary=summary,
        measured={
            "failed": [check.to_dict() for check in failed],
            "source": checks.source,
            "replicates": checks.replicates,
            "draws": checks.draws,
            "num_statistics": len(checks.checks),
        },
        threshold={"alpha": PREDICTIVE_ALPHA, "adjustment": "holm", "outside_replicates": True},
        cause=cause,
        remedies=remedies,
    )
