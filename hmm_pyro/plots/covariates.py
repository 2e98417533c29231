"""Transition probabilities against a covariate (matplotlib, imported lazily).

:func:`plot_covariate_transitions` draws, for a :class:`~hmm_pyro.CovariateHMM` fit, the
probability of each transition ``i -> j`` over the observed range of one covariate (on its
original scale), the other covariates held at their mean: one panel per state of departure,
one line per state of arrival, with the credible band of :meth:`hmm_pyro.Fit.transition_matrix`
(as moveHMM and hmmTMB draw them). Ticks along the bottom show the covariate's observed values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hmm_pyro._validation import check_int, describe
from hmm_pyro.fit import Fit
from hmm_pyro.plots._axes import fitted, new_figure, state_colours
from hmm_pyro.plots._labels import is_point, values_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["GRID_POINTS", "plot_covariate_transitions"]

GRID_POINTS = 60
"""Covariate values at which the curves are evaluated, evenly spaced over the observed range."""
_RUG_POINTS = 2000
"""Observed values drawn as ticks at most (evenly spaced quantiles beyond)."""


def _covariate(fit: Fit, covariate: str | None) -> str:
    names = fit.hmm.transition_covariates
    if not names:
        raise ValueError(f"fit: {fit.hmm!r} has no transition covariates to plot against")
    if covariate is None:
        return names[0]
    if covariate not in names:
        raise ValueError(f"covariate: expected one of {list(names)}, got {covariate!r}")
    return covariate


def _observed(fit: Fit, covariate: str) -> np.ndarray:
    """Every observed value of ``covariate`` on its original scale."""
    covariates = fit.data.covariates
    raw = covariates.raw[..., covariates.names.index(covariate)].numpy()
    return raw[~np.isnan(raw)]


def plot_covariate_transitions(
    fit: Fit,
    covariate: str | None = None,
    values: Any = None,
    level: float = 0.9,
    max_draws: int | None = 1000,
    ax: Sequence[Axes] | None = None,
) -> np.ndarray:
    """Transition probabilities against one covariate, the others at their mean.

    Parameters
    ----------
    fit : Fit
        A fit of a :class:`~hmm_pyro.CovariateHMM` (draws in one labelling).
    covariate : str, optional
        The covariate on the horizontal axis (default: the first transition covariate).
    values : array-like, optional
        Its values, on the original scale (default: :data:`GRID_POINTS` values over the
        observed range).
    level : float
        Mass of the credible band (not drawn for a point estimate).
    max_draws : int or None
        Evenly spaced draws used (``None``: all).
    ax : sequence of K matplotlib.axes.Axes, optional
        One axes per state of departure (default: a new figure with a row of them).

    Returns
    -------
    numpy.ndarray
        The ``K`` axes.

    Raises
    ------
    ValueError
        For a fit without transition covariates, an unknown covariate, or a number of axes
        other than ``K``.
    """
    covariate = _covariate(fit, covariate)
    observed = _observed(fit, covariate)
    if values is None:
        values = np.linspace(observed.min(), observed.max(), GRID_POINTS)
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size < 2 or not np.isfinite(values).all():
        raise ValueError(f"values: expected at least 2 finite values, got {describe(values)}")
    max_draws = None if max_draws is None else check_int("max_draws", max_draws, minimum=1)
    summary = fit.transition_matrix({covariate: values}, level=level, max_draws=max_draws)
    num = fit.hmm.num_states
    if ax is None:
        figure = new_figure(figsize=(min(4.0 * num, 16.0), 3.6))
        axes = np.asarray(figure.subplots(1, num, sharey=True), dtype=object).reshape(-1)
    else:
        axes = np.asarray(ax, dtype=object).reshape(-1)
        if axes.size != num:
            raise ValueError(f"ax: expected {num} axes (one per state), got {axes.size}")
    colours = state_colours(num)
    rug = np.quantile(observed, np.linspace(0, 1, min(observed.size, _RUG_POINTS)))
    point = is_point(fit)
    for i, axis in enumerate(axes):
        for j in range(num):
            mean = summary.mean[:, i, j].numpy()
            axis.plot(values, mean, color=colours[j], label=f"to {j}")
            if not point:
                lower, upper = summary.lower[:, i, j].numpy(), summary.upper[:, i, j].numpy()
                axis.fill_between(values, lower, upper, color=colours[j], alpha=0.2, lw=0)
        axis.plot(rug, np.zeros_like(rug), "|", color="0.4", markersize=6, alpha=0.3)
        axis.set_ylim(-0.03, 1.03)
        axis.set_xlabel(covariate)
        axis.set_title(f"from state {i}", fontsize="medium")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("transition probability")
    axes[-1].legend(fontsize="small", loc="best")
    others = [name for name in fit.hmm.transition_covariates if name != covariate]
    held = f"; {', '.join(others)} at their mean" if others else ""
    band = "" if point else f", {level:.0%} band"
    title = values_label(fit, f"transition probabilities{band}") + held
    axes[0].figure.suptitle(fitted(axes[0], title, "medium"), fontsize="medium")
    return axes
