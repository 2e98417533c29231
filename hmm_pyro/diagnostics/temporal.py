"""No temporal structure: the HMM against the i.i.d. mixture of the same emission laws.

An HMM whose transition rows are all equal (``A[k] = w`` for every ``k``, ``pi = w``) is a
mixture: the state at one step says nothing about the next. When the data carry no temporal
structure (the essay's i.i.d. symbols, shuffled observations) the fitted transition rows come out
nearly equal and the transition matrix is not identified. The mixture is fitted by EM with the
same emission prior (the E-step is the HMM's forward-backward with tied rows, which gives the
mixture's responsibilities; the M-step sets ``w`` to the average state probability and the
emission parameters by the family's own update), and the two are compared by BIC (the mixture
has ``K (K - 1)`` fewer free parameters) and by the likelihood-ratio statistic, reported with
its chi-squared p-value (docs/degeneracy.md#temporal-structure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import chi2

from hmm_pyro._parallel import torch_threads
from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.diagnostics.flags import Flag, Remedy
from hmm_pyro.diagnostics.refits import EM_MAX_ITER, EM_TOL, PointFit, bic
from hmm_pyro.learning.mstep import emission_map
from hmm_pyro.learning.objective import prior_tensors
from hmm_pyro.learning.statistics import expected_statistics

__all__ = ["TemporalTest", "mixture_fit", "temporal_flag", "temporal_test"]


@dataclass(frozen=True)
class TemporalTest:
    """The HMM's point estimate against the mixture's.

    Attributes
    ----------
    log_likelihood : tuple of float
        ``(HMM, mixture)`` log likelihoods.
    bic : tuple of float
        ``(HMM, mixture)`` BIC (lower is better).
    df : int
        Free parameters the mixture lacks: ``K (K - 1)``.
    statistic : float
        ``2 (log L_HMM - log L_mixture)`` (at least 0).
    p_value : float
        Its chi-squared upper tail on ``df`` degrees of freedom.
    row_distance : float
        Largest squared Hellinger distance between two rows of the HMM's transition matrix.
    weights : numpy.ndarray
        The mixture weights.
    """

    log_likelihood: tuple[float, float]
    bic: tuple[float, float]
    df: int
    statistic: float
    p_value: float
    row_distance: float
    weights: np.ndarray

    @property
    def no_structure(self) -> bool:
        """BIC prefers the mixture (or ties): no evidence that the states persist."""
        return self.bic[1] <= self.bic[0]

    def to_dict(self) -> dict[str, Any]:
        """The numbers, JSON-friendly."""
        return {
            "log_likelihood_hmm": self.log_likelihood[0],
            "log_likelihood_mixture": self.log_likelihood[1],
            "bic_hmm": self.bic[0],
            "bic_mixture": self.bic[1],
            "df": self.df,
            "lr_statistic": self.statistic,
            "p_value": self.p_value,
            "max_row_distance": self.row_distance,
            "mixture_weights": self.weights.tolist(),
        }


def _tied(params: Params, weights: torch.Tensor) -> Params:
    num = weights.shape[0]
    return {**params, "pi": weights.clone(), "A": weights.expand(num, num).clone()}


def mixture_fit(point: PointFit, data: Sequences) -> tuple[Params, float]:
    """EM for the mixture of ``point``'s emission laws, started at them.

    Parameters
    ----------
    point : PointFit
        The HMM's point estimate (its emission prior is used again).
    data : Sequences
        The observations.

    Returns
    -------
    dict of torch.Tensor
        The mixture as HMM parameters (``pi`` and every row of ``A`` equal to the weights).
    float
        Its log likelihood.
    """
    hmm = point.hmm
    prior = prior_tensors(hmm)
    counts = hmm.forward_backward(point.params, data).gamma.sum((0, 1)).to(torch.float64)
    params = _tied(point.params, counts / counts.sum())
    previous = -math.inf
    with torch_threads(1):
        for _ in range(EM_MAX_ITER):
            value, stats = expected_statistics(hmm, data, params)
            log_lik = float(value)
            if abs(log_lik - previous) <= EM_TOL * max(abs(log_lik), 1.0):
                break
            previous = log_lik
            total = stats.start + stats.transitions.sum(0)
            emission = emission_map(hmm, stats, prior, params, point.emission_prior)
            params = _tied({**params, **emission}, total / total.sum())
    return params, float(hmm.log_likelihood(params, data).sum())


def temporal_test(point: PointFit, data: Sequences) -> TemporalTest:
    """Compare ``point`` (``K >= 2`` states) with the mixture of its emission laws.

    Parameters
    ----------
    point : PointFit
        The HMM's point estimate.
    data : Sequences
        The observations.

    Returns
    -------
    TemporalTest
    """
    hmm = point.hmm
    num = hmm.num_states
    params, mixture_log_lik = mixture_fit(point, data)
    df = num * (num - 1)
    statistic = max(0.0, 2.0 * (point.log_likelihood - mixture_log_lik))
    penalty = df * math.log(max(data.num_observed, 1))
    rows = point.params["A"].numpy()
    overlap = np.sqrt(np.clip(rows[:, None, :] * rows[None, :, :], 0.0, None)).sum(-1)
    return TemporalTest(
        log_likelihood=(point.log_likelihood, mixture_log_lik),
        bic=(bic(point, data), bic(point, data) + statistic - penalty),
        df=df,
        statistic=statistic,
        p_value=float(chi2.sf(statistic, df)),
        row_distance=float((1.0 - overlap).max()),
        weights=params["pi"].numpy(),
    )


def temporal_flag(test: TemporalTest, num_states: int) -> Flag | None:
    """The mixture fits as well as the HMM by BIC: no temporal structure (warning)."""
    if not test.no_structure:
        return None
    hmm_value, mixture_value = test.log_likelihood
    return Flag(
        kind="no_temporal_structure",
        severity="warning",
        summary=(
            f"No temporal structure: an i.i.d. mixture of the same {num_states} emission laws "
            f"fits as well (BIC {test.bic[1]:.1f} vs the HMM's {test.bic[0]:.1f}; log "
            f"likelihood {mixture_value:.1f} vs {hmm_value:.1f}, likelihood-ratio statistic "
            f"{test.statistic:.2f} on {test.df} df, p = {test.p_value:.2g}); the transition "
            f"rows are nearly equal (largest squared Hellinger between rows "
            f"{test.row_distance:.3g})."
        ),
        measured=test.to_dict(),
        threshold={"criterion": "BIC of the mixture <= BIC of the HMM"},
        cause=(
            "the states do not persist: which state emitted one observation says nothing "
            "about the next, so the transition matrix is not identified by these data and the "
            "HMM reduces to a mixture."
        ),
        remedies=(Remedy.MIXTURE, Remedy.FEWER_STATES),
        cause_kind="no temporal structure",
    )
