"""Plot of the predictive checks (:func:`hmm_pyro.diagnostics.predictive.predictive_checks`).

* :func:`plot_predictive_checks` — every statistic's replicated values and the observed value,
  in standard deviations of the replicates, with the Holm threshold of the most extreme one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import norm

from hmm_pyro.diagnostics.predictive import PREDICTIVE_ALPHA, PredictiveChecks
from hmm_pyro.plots._axes import _axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_predictive_checks"]


def plot_predictive_checks(checks: PredictiveChecks, ax: Axes | None = None) -> Axes:
    """Each statistic's replicates (grey) and observed value (diamond), standardised.

    Values are shown as ``(value - mean of replicates) / sd of replicates``; for a realised
    statistic (the decoded dwell times) the observed value is its mean over the replicates'
    parameters. Failing statistics are red. Dashed lines mark ``Phi^{-1}(1 - alpha / (2 m))``:
    the ``|z|`` the most extreme of the ``m`` statistics needs to fail at family-wise level
    ``alpha`` (Holm's first step).

    Parameters
    ----------
    checks : PredictiveChecks
        From :func:`~hmm_pyro.diagnostics.predictive.predictive_checks` (or
        ``hmm_pyro.diagnose(fit).measurements`` recomputed by it).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: a new figure sized to the number of statistics).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(checks, PredictiveChecks):
        raise TypeError(f"checks: expected PredictiveChecks, got {type(checks).__name__}")
    count = len(checks.checks)
    ax = _axes(ax, figsize=(7.0, 0.45 * max(count, 2) + 1.2))
    jitter = np.random.default_rng(0)
    labels = []
    for row, check in enumerate(checks.checks):
        replicated = check.replicated[np.isfinite(check.replicated)]
        centre, spread = replicated.mean(), replicated.std(ddof=1)
        spread = spread if spread > 0 else 1.0
        standard = (replicated - centre) / spread
        ax.scatter(
            standard,
            row + jitter.uniform(-0.18, 0.18, standard.size),
            s=6,
            color="0.6",
            alpha=0.6,
            linewidths=0,
        )
        observed = (float(np.nanmean(check.observed)) - centre) / spread
        colour = "C3" if check.failed else "C0"
        ax.scatter([observed], [row], marker="D", s=40, color=colour, zorder=3)
        labels.append(f"{check.name} (p {check.adjusted_p:.2g})")
    if count:
        bound = float(norm.isf(PREDICTIVE_ALPHA / (2 * count)))
        for side in (-bound, bound):
            ax.axvline(side, color="0.3", linestyle="--", linewidth=1)
    ax.set_yticks(range(count), labels, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("(value - replicates' mean) / replicates' sd; diamond: observed")
    source = "plug-in" if checks.source == "plug-in" else f"posterior ({checks.draws} draws)"
    ax.set_title(
        f"{source} predictive checks, {checks.replicates} replicates\nred: failed "
        f"(Holm p < {PREDICTIVE_ALPHA:g}, beyond every replicate)",
        fontsize="small",
    )
    return ax
