"""Transition probabilities and stationary distributions of a fit, at given covariate values.

:meth:`hmm_pyro.Fit.transition_matrix` and :meth:`hmm_pyro.Fit.stationary`: for every posterior
draw, the transition matrix at the covariate values asked for (on their original scale,
standardised as the fitted data were; covariates not given sit at their mean), or its
stationary distribution; summarised by the posterior mean and an equal-tailed credible band.
A model without covariates has one transition matrix: the same summaries of ``A``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from hmm_pyro._validation import check_positive, describe
from hmm_pyro.covariate_model import stationary_distribution

if TYPE_CHECKING:
    from hmm_pyro.fit._fit import Fit

__all__ = ["ProbabilitySummary", "summarize_transitions"]


class ProbabilitySummary(NamedTuple):
    """Posterior mean and equal-tailed credible band of probabilities.

    Attributes
    ----------
    mean, lower, upper : torch.Tensor
        ``(K, K)`` transition matrices or ``(K,)`` stationary distributions at one point, with
        a leading ``(M,)`` dimension for ``M`` points.
    level : float
        Posterior mass between ``lower`` and ``upper`` (each tail holds ``(1 - level) / 2``).
    covariates : pandas.DataFrame or None
        The points, one row each, on the original scale (``None`` without covariates).
    """

    mean: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    level: float
    covariates: pd.DataFrame | None


def _points(fit: Fit, covariates: Any) -> tuple[torch.Tensor, pd.DataFrame | None, bool]:
    """Standardised rows ``(M, P)`` of the model's covariates, the table, one point or many."""
    names = fit.hmm.transition_covariates
    data = fit.data.covariates
    if not names:
        if covariates is not None:
            raise ValueError(
                f"covariates: {fit.hmm!r} has no transition covariates; call without them"
            )
        return torch.zeros(1, 0, dtype=torch.float64), None, True
    if covariates is None:
        covariates = {}
    if isinstance(covariates, Mapping):
        single = all(np.ndim(value) == 0 for value in covariates.values())
    else:
        single = np.ndim(covariates) == 1
    if isinstance(covariates, pd.DataFrame):
        covariates = {column: covariates[column].to_numpy() for column in covariates.columns}
        single = False
    if not isinstance(covariates, Mapping) and not hasattr(covariates, "__len__"):
        raise TypeError(
            f"covariates: expected a dict of values, an array or None, got {describe(covariates)}"
        )
    rows = data.standardize_rows(covariates)
    table = pd.DataFrame((rows * data.sds + data.means).numpy(), columns=list(data.names))
    positions = data.index(names, "covariates")
    return rows[:, positions], table[list(names)], single


def summarize_transitions(
    fit: Fit,
    covariates: Any,
    level: float,
    max_draws: int | None,
    stationary: bool,
) -> ProbabilitySummary:
    """Transition matrices (or their stationary distributions) of the draws at the points.

    Parameters
    ----------
    fit : Fit
        The fit.
    covariates : dict, array-like, pandas.DataFrame or None
        Points on the original scale: ``{name: value or values}`` (names not given at their
        mean), an ``(M, P)`` array or a table with the data's covariate columns, or ``None``
        (every covariate at its mean).
    level : float
        Mass of the credible band, in ``(0, 1)``.
    max_draws : int or None
        Evenly spaced draws used (``None``: all).
    stationary : bool
        Summarise the stationary distributions instead of the matrices.

    Returns
    -------
    ProbabilitySummary
    """
    level = check_positive("level", level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: expected a number in (0, 1), got {level}")
    rows, table, single = _points(fit, covariates)
    draws = fit.flat_draws(max_draws)
    with torch.no_grad():
        matrices = fit.hmm.transition_matrices(draws, rows)  # (S, M, K, K)
        values = stationary_distribution(matrices) if stationary else matrices
    values = values.to(torch.float64)
    tails = torch.tensor([(1.0 - level) / 2.0, (1.0 + level) / 2.0], dtype=torch.float64)
    lower, upper = torch.quantile(values, tails, dim=0)
    mean = values.mean(0)
    if single:
        mean, lower, upper = mean[0], lower[0], upper[0]
    return ProbabilitySummary(mean, lower, upper, level, table)
