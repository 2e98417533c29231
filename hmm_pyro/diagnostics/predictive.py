"""Predictive checks: whether the fitted HMM reproduces the statistics HMM users look at.

Replicated data sets are simulated from the fit (posterior draws, or the point estimate for a
plug-in check) with the observed data's lengths and missing entries, and each statistic of the
observed data is compared with its replicated distribution:

* **marginal**: symbol frequencies (categorical data); standard deviation, excess kurtosis
  (tails) and, for counts, the dispersion index ``var / mean`` and the fraction of zeros;
* **autocorrelation**: lag ``1 .. max_lag`` autocorrelation of each coordinate; for symbols the
  probability that the symbol ``h`` steps later is the same;
* **runs**: mean run length of identical symbols, or of steps on one side of the data's median;
* **dwell**: mean dwell time and fraction of one-step visits of the Viterbi path, decoded with
  the same parameters for the observed and the replicated data (a realised discrepancy).

For each statistic, ``D_r = T(y) - T(y_rep_r)`` (with ``T`` evaluated at the replicate's own
parameters where it depends on them); ``z = mean(D) / sd(D)`` is the observed value's distance
from the replicates in their own standard deviations; the normal-approximation p-value
``2 Phi(-|z|)`` is Holm-adjusted over all statistics of the fit (family-wise error), and the
empirical two-sided p-value ``2 (min(#{rep >= obs}, #{rep <= obs}) + 1) / (R + 1)`` is reported
beside it. A statistic fails when its Holm-adjusted p-value is below :data:`PREDICTIVE_ALPHA`
**and** the observed value lies beyond every replicate (so a skewed replicated distribution,
where the normal approximation is too optimistic, cannot fail on the approximation alone).
Methods and the effect sizes the checks detect: docs/degeneracy.md#predictive-checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import norm

from hmm_pyro import kernels
from hmm_pyro._random import make_generator
from hmm_pyro._validation import check_int
from hmm_pyro.data import Sequences
from hmm_pyro.fit import Fit
from hmm_pyro.model import HMM
from hmm_pyro.simulate import simulate

__all__ = [
    "CHECK_KINDS",
    "MAX_REPLICATED_STEPS",
    "MIN_REPLICATES",
    "PREDICTIVE_ALPHA",
    "PREDICTIVE_DRAWS",
    "PREDICTIVE_REPLICATES",
    "PredictiveCheck",
    "PredictiveChecks",
    "predictive_checks",
]

CHECK_KINDS = ("marginal", "autocorrelation", "runs", "dwell")
PREDICTIVE_REPLICATES = 100
"""Replicated data sets by default: the observed value lies beyond all 100 with probability
about 2% for a statistic the model reproduces, and the normal approximation of ``z`` is then
estimated from 100 values."""
PREDICTIVE_DRAWS = 10
"""Posterior draws the replicates are spread over (evenly spaced over all chains; the
replicates of one draw are simulated together and all draws' replicates decoded in one Viterbi
pass, which keeps the checks cheap: one simulation per draw)."""
PREDICTIVE_ALPHA = 0.01
"""Family-wise error rate of the checks of one fit (Holm 1979): with ``m`` statistics, the
most extreme one fails at ``|z| > Phi^{-1}(1 - 0.005 / m)``, 3.3 for ``m = 7`` and 3.5 for
``m = 12`` replicate standard deviations."""
MAX_LAG = 3
"""Lags of the autocorrelation checks."""
MAX_REPLICATED_STEPS = 5_000_000
"""``diagnose`` lowers the number of replicates so that they hold at most this many steps in all
(at least :data:`MIN_REPLICATES`), and says so: 100 replicates of up to 50,000 steps."""
MIN_REPLICATES = 20
"""Fewest replicates ``diagnose`` lowers to (the observed value then lies beyond all 20 with
probability about 10% for a statistic the model reproduces; the Holm bound does the rest)."""
_STACKED_ELEMENTS = 2**23
"""Largest replicated ``steps x states`` whose Viterbi inputs are stacked into one pass (64 MiB
of float64); larger replicates are decoded draw by draw."""

Statistic = Callable[[np.ndarray], np.ndarray]


# ---------------------------------------------------------------------------- statistics
def _pairs(values: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x_t, x_{t+lag})`` of a ``(B, N, T)`` array (NaN where either is missing)."""
    return values[..., :-lag], values[..., lag:]


def _autocorrelation(lag: int) -> Statistic:
    def statistic(values: np.ndarray) -> np.ndarray:
        centred = values - np.nanmean(values, axis=(1, 2), keepdims=True)
        variance = np.nanmean(centred**2, axis=(1, 2))
        if values.shape[-1] <= lag:
            return np.full(values.shape[0], np.nan)
        first, second = _pairs(centred, lag)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nanmean(first * second, axis=(1, 2)) / variance

    return statistic


def _repeat(lag: int) -> Statistic:
    def statistic(symbols: np.ndarray) -> np.ndarray:
        if symbols.shape[-1] <= lag:
            return np.full(symbols.shape[0], np.nan)
        first, second = _pairs(symbols, lag)
        both = ~(np.isnan(first) | np.isnan(second))
        with np.errstate(invalid="ignore", divide="ignore"):
            return ((first == second) & both).sum((1, 2)) / both.sum((1, 2))

    return statistic


def _mean_run(indicator: np.ndarray) -> np.ndarray:
    """Mean length of runs of equal consecutive values (NaN breaks a run)."""
    observed = (~np.isnan(indicator)).sum((1, 2))
    first, second = _pairs(indicator, 1)
    same = ((first == second) & ~np.isnan(first) & ~np.isnan(second)).sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return observed / (observed - same)


def _median_runs(values: np.ndarray) -> np.ndarray:
    median = np.nanmedian(values, axis=(1, 2), keepdims=True)
    side = np.where(np.isnan(values), np.nan, (values > median).astype(np.float64))
    return _mean_run(side)


def _frequency(symbol: int) -> Statistic:
    def statistic(symbols: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (symbols == symbol).sum((1, 2)) / (~np.isnan(symbols)).sum((1, 2))

    return statistic


def _sd(values: np.ndarray) -> np.ndarray:
    return np.nanstd(values, axis=(1, 2))


def _kurtosis(values: np.ndarray) -> np.ndarray:
    centred = values - np.nanmean(values, axis=(1, 2), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmean(centred**4, axis=(1, 2)) / np.nanmean(centred**2, axis=(1, 2)) ** 2 - 3


def _dispersion(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanvar(values, axis=(1, 2)) / np.nanmean(values, axis=(1, 2))


def _zeros(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (values == 0).sum((1, 2)) / (~np.isnan(values)).sum((1, 2))


def _data_statistics(hmm: HMM, dim: int, max_lag: int) -> dict[str, tuple[str, int, Statistic]]:
    """``name -> (kind, coordinate, statistic of (B, N, T) values)`` for this model's data.

    Symbols are recognised by an emission parameter on the simplex (rows of probabilities over
    the symbols): their statistics are frequencies and repeats, not moments of the codes.
    """
    checks: dict[str, tuple[str, int, Statistic]] = {}
    simplex = [name for name in hmm.emission.param_names if name in hmm.emission.simplex_params]
    if simplex:
        symbols = hmm.param_shapes()[simplex[0]][-1]
        for symbol in range(symbols - 1 if symbols == 2 else symbols):
            checks[f"frequency of symbol {symbol}"] = ("marginal", 0, _frequency(symbol))
        for lag in range(1, max_lag + 1):
            checks[f"P(same symbol at lag {lag})"] = ("autocorrelation", 0, _repeat(lag))
        checks["mean run length of a symbol"] = ("runs", 0, _mean_run)
        return checks
    for coordinate in range(dim):
        where = f" [coordinate {coordinate}]" if dim > 1 else ""
        checks[f"sd{where}"] = ("marginal", coordinate, _sd)
        checks[f"excess kurtosis{where}"] = ("marginal", coordinate, _kurtosis)
        if hmm.emission.integer_valued:
            checks[f"dispersion index var/mean{where}"] = ("marginal", coordinate, _dispersion)
            checks[f"fraction of zeros{where}"] = ("marginal", coordinate, _zeros)
        for lag in range(1, max_lag + 1):
            checks[f"lag-{lag} autocorrelation{where}"] = (
                "autocorrelation",
                coordinate,
                _autocorrelation(lag),
            )
        checks[f"mean run length on one side of the median{where}"] = (
            "runs",
            coordinate,
            _median_runs,
        )
    return checks


def _dwell(paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean dwell time and fraction of one-step visits of ``(B, N, T)`` paths (-1: padding)."""
    means, singles = np.empty(paths.shape[0]), np.empty(paths.shape[0])
    for index, batch in enumerate(paths):
        lengths = []
        for path in batch:
            path = path[path >= 0]
            if path.size == 0:
                continue
            cuts = np.flatnonzero(np.diff(path) != 0) + 1
            lengths.append(np.diff(np.concatenate([[0], cuts, [path.size]])))
        visits = np.concatenate(lengths) if lengths else np.zeros(0)
        means[index] = visits.mean() if visits.size else np.nan
        singles[index] = (visits == 1).mean() if visits.size else np.nan
    return means, singles


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class PredictiveCheck:
    """One statistic of the observed data against its replicated distribution.

    Attributes
    ----------
    name, kind : str
        What is measured, and its group (one of :data:`CHECK_KINDS`).
    observed, replicated : numpy.ndarray
        ``(R,)`` the statistic of the observed data (constant unless it depends on the
        replicate's parameters, as the decoded dwell times do) and of each replicate.
    adjusted_p : float
        Holm-adjusted normal-approximation p-value (set by :func:`predictive_checks`).
    """

    name: str
    kind: str
    observed: np.ndarray
    replicated: np.ndarray
    adjusted_p: float = math.nan

    @property
    def _difference(self) -> np.ndarray:
        keep = np.isfinite(self.observed) & np.isfinite(self.replicated)
        return (self.observed - self.replicated)[keep]

    @property
    def z(self) -> float:
        """Mean of ``T(y) - T(y_rep)`` in standard deviations of that difference."""
        difference = self._difference
        if difference.size < 2:
            return math.nan
        spread = float(difference.std(ddof=1))
        if spread <= 0:
            return math.nan
        return float(difference.mean()) / spread

    @property
    def p_value(self) -> float:
        """Two-sided normal-approximation p-value ``2 Phi(-|z|)`` (NaN if undefined)."""
        return float(2 * norm.sf(abs(self.z))) if np.isfinite(self.z) else math.nan

    @property
    def p_empirical(self) -> float:
        """Two-sided rank p-value ``2 (min(#{rep >= obs}, #{rep <= obs}) + 1) / (R + 1)``."""
        difference = self._difference
        if difference.size == 0:
            return math.nan
        at_least, at_most = int((difference <= 0).sum()), int((difference >= 0).sum())
        return min(1.0, 2 * (min(at_least, at_most) + 1) / (difference.size + 1))

    @property
    def outside(self) -> bool:
        """The observed value lies beyond every replicate (on one side)."""
        difference = self._difference
        return bool(difference.size) and bool((difference > 0).all() or (difference < 0).all())

    @property
    def failed(self) -> bool:
        """Holm-adjusted p below :data:`PREDICTIVE_ALPHA` and beyond every replicate."""
        return bool(self.adjusted_p < PREDICTIVE_ALPHA) and self.outside

    def to_dict(self) -> dict[str, object]:
        """The numbers, JSON-friendly."""
        return {
            "name": self.name,
            "kind": self.kind,
            "observed": float(np.nanmean(self.observed)),
            "replicated_mean": float(np.nanmean(self.replicated)),
            "replicated_sd": float(np.nanstd(self.replicated, ddof=1)),
            "z": self.z,
            "p_value": self.p_value,
            "adjusted_p": self.adjusted_p,
            "p_empirical": self.p_empirical,
            "outside_replicates": self.outside,
            "failed": self.failed,
        }


@dataclass(frozen=True)
class PredictiveChecks:
    """Every predictive check of one fit.

    Attributes
    ----------
    checks : tuple of PredictiveCheck
        One per statistic (undefined ones, e.g. constant data, left out).
    replicates : int
        Replicated data sets.
    draws : int
        Distinct parameter sets they were simulated from (1: plug-in check at the point).
    """

    checks: tuple[PredictiveCheck, ...]
    replicates: int
    draws: int

    @property
    def source(self) -> str:
        """``"plug-in"`` (one parameter set) or ``"posterior"`` (posterior draws)."""
        return "plug-in" if self.draws == 1 else "posterior"

    @property
    def failed(self) -> tuple[PredictiveCheck, ...]:
        """Failing checks, the most extreme first."""
        failing = [check for check in self.checks if check.failed]
        return tuple(sorted(failing, key=lambda check: -abs(check.z)))

    def to_dict(self) -> dict[str, object]:
        """The numbers, JSON-friendly."""
        return {
            "source": self.source,
            "replicates": self.replicates,
            "draws": self.draws,
            "alpha": PREDICTIVE_ALPHA,
            "checks": [check.to_dict() for check in self.checks],
            "failed": [check.name for check in self.failed],
        }


def _holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment (NaN stays NaN)."""
    adjusted = np.full(p_values.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p_values))
    order = finite[np.argsort(p_values[finite])]
    running, count = 0.0, order.size
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (count - rank) * float(p_values[index])))
        adjusted[index] = running
    return adjusted


# ---------------------------------------------------------------------------- main
def _dwell_checks(
    hmm: HMM,
    data: Sequences,
    draws: list[dict[str, torch.Tensor]],
    inputs: list[tuple[torch.Tensor, ...]],
    paths: list[np.ndarray],
    shares: np.ndarray,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Dwell statistics of the observed and replicated data, each decoded with its draw.

    One Viterbi pass decodes the observed data under every draw (a batch of draws). The
    replicates come decoded already (``paths``, large data) or as kernel inputs, stacked into
    one more pass so that the time loop runs once.
    """
    stacked = {name: torch.stack([draw[name] for draw in draws]) for name in draws[0]}
    reference = hmm.viterbi(stacked, data)[0].numpy()  # (S, N, T)
    if inputs:
        log_pi, log_A, table = (torch.stack([piece[i] for piece in inputs]) for i in range(3))
        paths = [
            kernels.viterbi(log_pi, log_A, table, inputs[0][3], time_varying=hmm.time_varying)[
                0
            ].numpy()
        ]
    shape = reference.shape[1:]
    replicas = _dwell(np.concatenate([batch.reshape(-1, *shape) for batch in paths]))
    observed = _dwell(reference)  # one value per draw
    names = ("mean dwell time (Viterbi path)", "fraction of one-step visits (Viterbi path)")
    return {
        name: (np.repeat(observed[position], shares), replicas[position])
        for position, name in enumerate(names)
    }


def _masked(replicas: Sequences, observed: np.ndarray, copies: int) -> np.ndarray:
    """Replicated values ``(copies, N, T, D)`` with the observed data's missing entries."""
    values = replicas.values.numpy().reshape(copies, *observed.shape)
    return np.where(np.isnan(observed)[None], np.nan, values)


def predictive_checks(
    fit: Fit,
    replicates: int = PREDICTIVE_REPLICATES,
    max_lag: int = MAX_LAG,
    seed: int = 0,
    draws: int = PREDICTIVE_DRAWS,
) -> PredictiveChecks:
    """Posterior (or plug-in) predictive checks of marginal, temporal and dwell statistics.

    Parameters
    ----------
    fit : Fit
        Any fit; a single draw (MAP, EM, ``Fit.from_params``) gives a plug-in check.
    replicates : int
        Replicated data sets (at least 2).
    max_lag : int
        Largest lag of the autocorrelation checks.
    seed : int
        Seed of the simulation.
    draws : int
        Distinct posterior draws the replicates are spread over.

    Returns
    -------
    PredictiveChecks
    """
    if not isinstance(fit, Fit):
        raise TypeError(f"fit: expected a hmm_pyro Fit, got {type(fit).__name__}")
    replicates = check_int("replicates", replicates, minimum=2)
    max_lag = check_int("max_lag", max_lag, minimum=1)
    draws = check_int("draws", draws, minimum=1)
    hmm, data = fit.hmm, fit.data
    flat = fit.flat_draws()
    total = int(next(iter(flat.values())).shape[0])
    picks = np.unique(np.linspace(0, total - 1, min(draws, total, replicates)).round()).astype(int)
    shares = np.diff(np.linspace(0, replicates, picks.size + 1).round()).astype(int)
    observed = data.values.numpy()
    lengths = data.lengths.tolist()
    generator = make_generator(seed)
    statistics = _data_statistics(hmm, data.dim, max_lag)
    replicated: dict[str, list[np.ndarray]] = {name: [] for name in statistics}
    inputs, paths, draw_params = [], [], []
    steps = int(data.lengths.sum()) * replicates * hmm.num_states
    stack = len(set(shares.tolist())) == 1 and steps <= _STACKED_ELEMENTS
    for pick, copies in zip(picks.tolist(), shares.tolist(), strict=True):
        params = {name: value[pick] for name, value in flat.items()}
        child = int(torch.randint(2**31 - 1, (), generator=generator))
        covariates = (
            None
            if data.covariates is None
            else data.covariates.select(list(range(data.num_sequences)) * copies)
        )
        model = hmm.repeated(copies)  # a model tied to its sequences (subjects) covers copies
        replicas, _ = simulate(model, params, lengths * copies, covariates=covariates, seed=child)
        values = _masked(replicas, observed, copies)
        for name, (_, coordinate, statistic) in statistics.items():
            replicated[name].append(statistic(values[..., coordinate]))
        if hmm.num_states > 1:
            batch = Sequences(
                values.reshape(-1, *observed.shape[1:]),
                lengths=lengths * copies,
                covariates=covariates,
            )
            if stack:
                inputs.append(model.kernel_inputs(params, model.prepare_data(batch)))
            else:
                paths.append(model.viterbi(params, batch)[0].numpy())
            draw_params.append(params)
    dwell: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if hmm.num_states > 1:
        dwell = _dwell_checks(hmm, data, draw_params, inputs, paths, shares)
    checks = []
    for name, (kind, coordinate, statistic) in statistics.items():
        value = statistic(observed[None, ..., coordinate])
        rep = np.concatenate(replicated[name])
        checks.append(PredictiveCheck(name, kind, np.full(rep.shape, float(value[0])), rep))
    for name, (obs, rep) in dwell.items():
        checks.append(PredictiveCheck(name, "dwell", obs, rep))
    checks = [check for check in checks if np.isfinite(check.z)]
    adjusted = _holm(np.array([check.p_value for check in checks]))
    final = tuple(
        PredictiveCheck(c.name, c.kind, c.observed, c.replicated, float(p))
        for c, p in zip(checks, adjusted, strict=True)
    )
    return PredictiveChecks(checks=final, replicates=int(shares.sum()), draws=int(picks.size))
