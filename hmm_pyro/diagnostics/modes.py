"""Chains in different modes, or chains not yet converged: what an invariant R-hat means.

An R-hat above 1.01 on a label-invariant quantity has two readings. The chains may sit in
different modes: their means of that quantity differ by many Monte Carlo standard errors
(:data:`~hmm_pyro.diagnostics.thresholds.MODE_SEPARATION`). Or they have not run long enough:
their means agree within Monte Carlo error, and R-hat itself is within the sampling noise it has
at the ESS at hand (:func:`rhat_noise`). Each chain's Monte Carlo standard error is its
standard deviation over the square root of its own ESS for the mean (Vehtari et al. 2021,
``az.ess(method="mean")``) (docs/degeneracy.md#r-hat).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

from hmm_pyro.diagnostics.thresholds import MODE_SEPARATION, RHAT_NOISE_LEVEL
from hmm_pyro.fit.inference_data import az

__all__ = ["ChainGap", "chain_gap", "rhat_noise"]


@dataclass(frozen=True)
class ChainGap:
    """The two chains whose means of one quantity are furthest apart in Monte Carlo errors.

    Attributes
    ----------
    quantity : str
        The scalar quantity (e.g. ``"log_joint"``, ``"sorted_B[0, 1]"``).
    means : numpy.ndarray
        ``(C,)`` each chain's mean.
    chains : tuple of int
        ``(higher, lower)``: the pair, the chain with the higher mean first.
    gap : float
        Difference of their means (in the quantity's units: nats for log densities).
    sd : float
        Pooled within-chain standard deviation.
    mcse : float
        Monte Carlo standard error of that difference.
    """

    quantity: str
    means: np.ndarray
    chains: tuple[int, int]
    gap: float
    sd: float
    mcse: float

    @property
    def gap_sd(self) -> float:
        """The gap in within-chain standard deviations."""
        return self.gap / self.sd if self.sd > 0 else math.inf

    @property
    def standard_errors(self) -> float:
        """The gap in Monte Carlo standard errors of the difference."""
        return self.gap / self.mcse if self.mcse > 0 else math.inf

    @property
    def separated(self) -> bool:
        """More than ``MODE_SEPARATION`` standard errors apart: different modes."""
        return self.standard_errors > MODE_SEPARATION

    def to_dict(self) -> dict[str, object]:
        """The numbers, JSON-friendly."""
        return {
            "quantity": self.quantity,
            "chain_means": self.means.tolist(),
            "chains": list(self.chains),
            "gap": self.gap,
            "gap_sd": self.gap_sd,
            "standard_errors": self.standard_errors,
        }


def chain_gap(quantity: str, values: np.ndarray) -> ChainGap | None:
    """The pair of chains whose means of ``values`` differ by the most Monte Carlo errors.

    Parameters
    ----------
    quantity : str
        Name of the quantity.
    values : numpy.ndarray
        ``(chain, draw)`` scalar draws.

    Returns
    -------
    ChainGap or None
        ``None`` with fewer than two chains, or when no pair has a finite error (constant
        chains).
    """
    values = np.asarray(values, dtype=np.float64)
    num_chains = values.shape[0]
    if num_chains < 2:
        return None
    means = values.mean(1)
    sds = values.std(1, ddof=1)
    with warnings.catch_warnings():  # a constant chain has no ESS (0/0)
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        ess = np.array([float(az.ess(chain[None], method="mean")) for chain in values])
    mcse = sds / np.sqrt(ess)
    best: tuple[float, int, int] | None = None
    for first in range(num_chains):
        for second in range(first + 1, num_chains):
            error = math.hypot(mcse[first], mcse[second])
            gap = abs(means[first] - means[second])
            if not (np.isfinite(error) and error > 0):
                continue
            if best is None or gap / error > best[0]:
                best = (gap / error, first, second)
    if best is None:
        return None
    _, first, second = best
    high, low = (first, second) if means[first] >= means[second] else (second, first)
    return ChainGap(
        quantity=quantity,
        means=means,
        chains=(high, low),
        gap=float(means[high] - means[low]),
        sd=float(np.sqrt(np.mean(sds**2))),
        mcse=float(math.hypot(mcse[high], mcse[low])),
    )


def rhat_noise(
    ess: float, num_chains: int, num_draws: int, level: float = RHAT_NOISE_LEVEL
) -> float:
    """Upper ``level`` quantile of split R-hat of converged chains, given their ESS.

    Split R-hat compares ``m = 2 C`` half-chains of ``n`` draws:
    ``R^2 = (n - 1) / n + var(half-chain means) / W``. For converged chains each half-chain
    mean has variance ``sigma^2 m / ESS``, so ``var(means) / W`` is about
    ``(m / ESS) chi2_{m-1} / (m - 1)``; its ``level`` quantile gives the bound.

    Parameters
    ----------
    ess : float
        Bulk or tail ESS of all chains together (the smaller).
    num_chains, num_draws : int
        Chains, and draws per chain.
    level : float
        Quantile.

    Returns
    -------
    float
        R-hat up to this is within its own sampling noise (``inf`` without a finite ESS).
    """
    halves = 2 * num_chains
    length = max(num_draws // 2, 1)
    if not (np.isfinite(ess) and ess > 0):
        return math.inf
    spread = halves / ess * chi2.ppf(level, halves - 1) / (halves - 1)
    return math.sqrt(max((length - 1) / length + spread, 1.0))
