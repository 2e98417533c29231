"""Chains in different modes, or chains not yet converged: what an invariant R-hat means.

An R-hat above 1.01 on a label-invariant quantity has two readings. The chains may sit in
different modes: their means of that quantity differ by many Monte Carlo standard errors
(:data:`~hmm_pyro.diagnostics.thresholds.MODE_SEPARATION`). Or they have not run long enough:
their means agree within Monte Carlo error, and R-hat itself is within the sampling noise it has
at the ESS at hand (:func:`rhat_noise`). Each chain's Monte Carlo standard error is its
standard deviation over the square root of its own ESS for the mean (Vehtari et al. 2021,
``az.ess(method="mean")``) (docs/degeneracy.md#r-hat).

:func:`chain_modes` compares the chains' mean log posterior (and log likelihood) with the best
chain's, in nats: a chain far below the best sits in a worse mode or is still climbing towards
it (docs/degeneracy.md#chains-in-different-modes).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

from hmm_pyro.diagnostics.thresholds import (
    MODE_GAP_SD,
    MODE_OVERLAP_QUANTILE,
    MODE_SEPARATION,
    RHAT_NOISE_LEVEL,
)
from hmm_pyro.fit.inference_data import az

__all__ = ["ChainGap", "ChainModes", "chain_gap", "chain_modes", "family_level", "rhat_noise"]


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


def _mcse(values: np.ndarray) -> np.ndarray:
    """``(C,)`` Monte Carlo standard error of each chain's mean, from its own ESS for the mean."""
    sds = values.std(1, ddof=1)
    with warnings.catch_warnings():  # a constant chain has no ESS (0/0)
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        ess = np.array([float(az.ess(chain[None], method="mean")) for chain in values])
    return sds / np.sqrt(ess)


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
    mcse = _mcse(values)
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


def family_level(count: int, level: float = RHAT_NOISE_LEVEL) -> float:
    """Per-quantity quantile for ``count`` quantities with joint false alarms below ``1 - level``.

    Bonferroni: each of ``count`` R-hats is compared with its ``1 - (1 - level) / count``
    quantile, so that converged chains put at least one of them above its bound with
    probability at most ``1 - level``, however the quantities are correlated.

    Parameters
    ----------
    count : int
        Quantities checked together (at least 1).
    level : float
        Family-wise level.

    Returns
    -------
    float
    """
    return 1.0 - (1.0 - level) / max(int(count), 1)


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


@dataclass(frozen=True)
class ChainModes:
    """Each chain's mean log posterior and log likelihood against the best chain's, in nats.

    Attributes
    ----------
    log_posterior, log_likelihood : numpy.ndarray
        ``(C,)`` each chain's mean ``log p(y, theta)`` and ``log p(y | theta)``.
    sd, mcse : numpy.ndarray
        ``(C,)`` within-chain standard deviation of the log posterior, and the Monte Carlo
        standard error of its mean.
    low, high : numpy.ndarray
        ``(C,)`` each chain's :data:`MODE_OVERLAP_QUANTILE` and ``1 -`` that quantile.
    drift : numpy.ndarray
        ``(C,)`` mean of the second half of each chain minus the first half's (nats): a
        positive drift many standard errors wide is a chain still climbing.
    drift_mcse : numpy.ndarray
        ``(C,)`` Monte Carlo standard error of that difference.
    halves_apart : numpy.ndarray
        ``(C,)`` bool: the second half's lower quantile lies above the first half's upper one.
    best : int
        The chain with the highest mean log posterior.
    worse : tuple of int
        Chains in a worse mode than ``best`` (see :func:`chain_modes`).
    """

    log_posterior: np.ndarray
    log_likelihood: np.ndarray
    sd: np.ndarray
    mcse: np.ndarray
    low: np.ndarray
    high: np.ndarray
    drift: np.ndarray
    drift_mcse: np.ndarray
    halves_apart: np.ndarray
    best: int
    worse: tuple[int, ...]

    @property
    def gap(self) -> np.ndarray:
        """``(C,)`` nats each chain's mean log posterior lies below the best chain's."""
        return self.log_posterior[self.best] - self.log_posterior

    @property
    def gap_log_likelihood(self) -> np.ndarray:
        """``(C,)`` nats each chain's mean log likelihood lies below the best chain's."""
        return self.log_likelihood[self.best] - self.log_likelihood

    @property
    def climbing(self) -> tuple[int, ...]:
        """Worse chains whose log posterior still rose between their halves.

        The second half's mean is above the first's by more than ``MODE_SEPARATION`` Monte
        Carlo standard errors of the difference (a stationary chain's halves differ by about
        one), or the halves' draws do not overlap (the second half's
        ``MODE_OVERLAP_QUANTILE`` quantile above the first half's upper one; a steady climb
        inflates the standard errors themselves).
        """
        rising = (self.drift > MODE_SEPARATION * self.drift_mcse) | self.halves_apart
        return tuple(c for c in self.worse if rising[c])

    def to_dict(self) -> dict[str, object]:
        """The numbers, JSON-friendly."""
        return {
            "chain_log_posterior": self.log_posterior.tolist(),
            "chain_log_likelihood": self.log_likelihood.tolist(),
            "gap_nats": self.gap.tolist(),
            "gap_log_likelihood_nats": self.gap_log_likelihood.tolist(),
            "within_chain_sd": self.sd.tolist(),
            "mcse": self.mcse.tolist(),
            "drift_nats": self.drift.tolist(),
            "best_chain": self.best,
            "worse_chains": list(self.worse),
            "climbing_chains": list(self.climbing),
        }


def chain_modes(
    log_posterior: np.ndarray, log_likelihood: np.ndarray, num_params: int = 0
) -> ChainModes | None:
    """Which chains sit in a worse mode than the best chain, and how many nats worse.

    Chain ``c`` is in a worse mode than the best chain ``b`` (highest mean log posterior) when
    its mean log posterior is below ``b``'s by more than :data:`MODE_GAP_SD` times the larger
    of the chains' within-chain standard deviation and ``sqrt(num_params / 2)`` (the standard
    deviation of the log density of a Gaussian posterior in ``num_params`` dimensions, a floor
    for chains that mix too little to show the posterior's spread), and either

    * by more than :data:`MODE_SEPARATION` Monte Carlo standard errors of the difference
      (chains sampling one posterior differ by about ``sd sqrt(2 / ESS)``: one sd would need an
      ESS of 2), or
    * its draws and ``b``'s do not overlap: its upper :data:`MODE_OVERLAP_QUANTILE` quantile
      lies below ``b``'s lower one. This holds also for chains that drift so much that their
      standard errors are useless (a chain still climbing from its start).

    Parameters
    ----------
    log_posterior, log_likelihood : numpy.ndarray
        ``(chain, draw)`` log joint density and total log likelihood of every draw.
    num_params : int
        Free parameters of the model (0: no floor).

    Returns
    -------
    ChainModes or None
        ``None`` with fewer than 2 chains or fewer than 4 draws per chain.
    """
    values = np.asarray(log_posterior, dtype=np.float64)
    likelihood = np.asarray(log_likelihood, dtype=np.float64)
    num_chains, num_draws = values.shape
    if num_chains < 2 or num_draws < 4:
        return None
    means = values.mean(1)
    sds = values.std(1, ddof=1)
    mcse = _mcse(values)
    low = np.quantile(values, MODE_OVERLAP_QUANTILE, axis=1)
    high = np.quantile(values, 1.0 - MODE_OVERLAP_QUANTILE, axis=1)
    half = num_draws // 2
    first, second = values[:, :half], values[:, num_draws - half :]
    drift = second.mean(1) - first.mean(1)
    drift_mcse = np.hypot(_mcse(first), _mcse(second))
    halves_apart = np.quantile(second, MODE_OVERLAP_QUANTILE, axis=1) > np.quantile(
        first, 1.0 - MODE_OVERLAP_QUANTILE, axis=1
    )
    best = int(np.argmax(means))
    floor = math.sqrt(max(num_params, 0) / 2.0)
    worse = []
    for chain in range(num_chains):
        if chain == best:
            continue
        gap = means[best] - means[chain]
        error = math.hypot(mcse[best], mcse[chain])
        spread = max(math.sqrt(0.5 * (sds[best] ** 2 + sds[chain] ** 2)), floor)
        separated = not np.isfinite(error) or gap > MODE_SEPARATION * error
        if gap > MODE_GAP_SD * spread and (separated or high[chain] < low[best]):
            worse.append(chain)
    return ChainModes(
        log_posterior=means,
        log_likelihood=likelihood.mean(1),
        sd=sds,
        mcse=mcse,
        low=low,
        high=high,
        drift=drift,
        drift_mcse=np.where(np.isfinite(drift_mcse), drift_mcse, np.inf),
        halves_apart=halves_apart,
        best=best,
        worse=tuple(worse),
    )
