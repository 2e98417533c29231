"""Checks of the model against the data and of the chains against each other.

Two checks that :func:`hmm_pyro.diagnose` runs besides the degeneracy checks: chains in worse
modes than the best chain (:mod:`~hmm_pyro.diagnostics.modes`, flag in
:mod:`~hmm_pyro.diagnostics.mode_findings`) and predictive checks of the statistics the model
should reproduce (:mod:`~hmm_pyro.diagnostics.predictive`, flag in
:mod:`~hmm_pyro.diagnostics.misfit_findings`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hmm_pyro.diagnostics.flags import Flag
from hmm_pyro.diagnostics.misfit_findings import misspecification_flag
from hmm_pyro.diagnostics.mode_findings import chain_modes_flag
from hmm_pyro.diagnostics.modes import chain_modes
from hmm_pyro.diagnostics.predictive import (
    MAX_REPLICATED_STEPS,
    MIN_REPLICATES,
    predictive_checks,
)
from hmm_pyro.fit import Fit

__all__ = ["model_checks"]


def model_checks(
    fit: Fit, log_post: np.ndarray, log_lik: np.ndarray, replicates: int
) -> tuple[list[Flag | None], dict[str, Any], list[str]]:
    """Chain modes and predictive checks: flags, measurements and notes.

    Parameters
    ----------
    fit : Fit
        The diagnosed fit.
    log_post, log_lik : numpy.ndarray
        ``(chain, draw)`` log joint density and log likelihood of every draw.
    replicates : int
        Replicated data sets of the predictive checks (0 skips them).

    Returns
    -------
    flags, measurements, notes
    """
    flags: list[Flag | None] = []
    measurements: dict[str, Any] = {}
    notes: list[str] = []
    modes = chain_modes(log_post, log_lik, fit.hmm.num_free_params())
    if modes is not None:
        measurements["chain_modes"] = modes.to_dict()
        flags.append(chain_modes_flag(modes))
    if replicates:
        steps = int(fit.data.lengths.sum())
        affordable = max(MIN_REPLICATES, MAX_REPLICATED_STEPS // max(steps, 1))
        if replicates > affordable:
            notes.append(
                f"predictive checks on {affordable} replicated data sets instead of "
                f"{replicates}: {steps} steps each, at most {MAX_REPLICATED_STEPS} in all"
            )
            replicates = affordable
        checks = predictive_checks(fit, replicates=replicates)
        measurements["predictive_checks"] = checks.to_dict()
        flags.append(misspecification_flag(checks))
    else:
        notes.append("predictive checks skipped (predictive=0): misspecification not checked")
    return flags, measurements, notes
