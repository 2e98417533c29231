"""Poisson emissions: ``y_t[d] | z_t = k ~ Poisson(rate[k, d])``, independent across ``d``.

NUTS/MAP potential (:func:`~hmm_pyro.kernels._numba.potentials.entry_potential`): coordinates
``u = log rate``, in which the Gamma prior is ``(a - 1 + jac) u - b exp(u) + const``; the
likelihood's gradient comes from the gamma-weighted counts of each state and coordinate.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pyro.distributions as dist
import torch

from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.emissions._integers import MAX_COUNT, check_counts
from hmm_pyro.emissions.base import Emission, OptionError
from hmm_pyro.emissions.coordinatewise import Coordinatewise
from hmm_pyro.emissions.poisson_regression import PoissonRegression
from hmm_pyro.emissions.potential_terms import PotentialTerms, potential_data
from hmm_pyro.emissions.statistics import STATISTICS_DTYPE, moment_statistics, quantile_locations
from hmm_pyro.kernels._numba import (
    EntryKernels,
    all_greater,
    entry_potential,
    fill_table,
    weighted_sums,
)
from hmm_pyro.priors import Prior

__all__ = ["MAX_COUNT", "MIN_RATE", "Poisson"]

MIN_RATE = 1e-12
"""Smallest Poisson rate an M-step returns (the update is a maximisation over ``rate >= it``)."""


class Poisson(Coordinatewise):
    """Poisson count emissions; parameter ``rate`` of shape ``(K,)`` (or ``(K, D)``).

    Prior: ``rate[k] ~ Gamma(prior.rate_shape, prior.rate_rate)`` (shape/rate), the conjugate
    prior of the Poisson rate.

    Parameters
    ----------
    dim : int, optional
        Number of independent count channels ``D``; omit for univariate counts.
    """

    family = "poisson"
    param_names = ("rate",)
    positive_params = ("rate",)
    integer_valued = True
    hyperparameter_names = ("rate_shape", "rate_rate")

    def with_covariates(self, names: tuple[str, ...]) -> Emission:
        """The Poisson log-link regression on ``names`` (univariate counts only)."""
        if self._dim is not None:
            raise OptionError(
                "emission_covariates", f"a regression of univariate counts only, not {self!r}"
            )
        return PoissonRegression(names)

    def validate_data(self, data: Sequences) -> None:
        """Require non-negative integer counts up to :data:`MAX_COUNT` (``2**53``)."""
        self._check_dim(data)
        check_counts(data, repr(self))

    def prior_distributions(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """``rate ~ Gamma(rate_shape, rate_rate)``, one event per parameter."""
        hyper = self.prior_hyperparameters(prior, num_states, dtype)
        shape, rate = (self._unshaped(hyper[name]) for name in self.hyperparameter_names)
        return {"rate": dist.Gamma(shape, rate).to_event(shape.dim())}

    # ------------------------------------------------------------------ point estimation
    def weighted_statistics(self, data: Sequences, weights: torch.Tensor) -> Params:
        """``n, s1, s2 (K, D)``: weighted sums of ``o``, ``o y``, ``o y**2`` (``o``: observed).

        ``shift (D,)`` is zero (counts are not centred).
        """
        return moment_statistics(data, weights, centre=False)

    def maximize(
        self,
        statistics: Params,
        hyperparameters: Params,
        previous: Params | None,
        use_prior: bool,
    ) -> Params:
        """``rate = (s1 + shape - 1) / (n + rate_rate)`` (ML: ``s1 / n``), at least MIN_RATE.

        Maximised over ``rate >= MIN_RATE``, so that a state that only ever sees zeros keeps a
        valid rate. Without the prior, a coordinate without weight keeps its previous rate
        (NaN when ``previous`` is ``None``).
        """
        n, s1 = statistics["n"], statistics["s1"]
        if use_prior:
            shape, rate_rate = hyperparameters["rate_shape"], hyperparameters["rate_rate"]
            rate = (s1 + shape - 1.0) / (n + rate_rate)
        else:
            if previous is None:
                old = torch.full_like(n, float("nan"))
            else:
                old = self._rate(previous).to(STATISTICS_DTYPE)
            rate = torch.where(n > 0, s1 / torch.where(n > 0, n, 1.0), old)
        return self._params(rate.clamp(min=MIN_RATE))

    def pooled_params(self, data: Sequences) -> Params:
        """Pooled mean count of the observed values (floored at ``1e-12``)."""
        observed = data.values[data.mask].to(STATISTICS_DTYPE)  # (steps, D), NaN where missing
        mean = torch.nanmean(observed, 0).clamp(min=1e-12)
        return {"rate": mean.reshape(self.param_shapes(1)["rate"])}

    def start_from_data(
        self, data: Sequences, num_states: int, generator: torch.Generator, dtype: torch.dtype
    ) -> Params:
        """Rates at random quantiles of the data plus ``0.5 + U(0, 1)`` (so never zero)."""
        locations, _ = quantile_locations(data, num_states, generator, dtype)
        rate = locations + 0.5 + torch.rand(locations.shape, generator=generator, dtype=dtype)
        return self._params(rate)

    def location(self, params: Params) -> torch.Tensor:
        """Rate of the first channel: ``(..., K)``."""
        return self._rate(params)[..., 0]

    def fill_value(self) -> float:
        """Count 0."""
        return 0.0

    def _rate(self, params: Params) -> torch.Tensor:
        return self._columns(params)[0]

    def _log_prob_elementwise(
        self, params: Params, values: torch.Tensor, log_factorial: torch.Tensor | None = None
    ) -> torch.Tensor:
        rate = self._rate(params)[..., None, None, :, :]  # (..., 1, 1, K, D)
        counts = values.unsqueeze(-2)
        if log_factorial is None:
            log_factorial = torch.lgamma(counts + 1.0)
        return counts * torch.log(rate) - rate - log_factorial

    def log_likelihood_table(self, params: Params, data: Sequences) -> torch.Tensor:
        """As :meth:`Emission.log_likelihood_table`, ``log y!`` computed once per data set.

        The log factorials are cached on ``data`` (they were ~130 us of each call on 20 x 500
        counts, 0.4 of the table's cost); the values are the same, bit for bit.
        """
        dtype = next(iter(params.values())).dtype
        values = data.filled(self.fill_value(), dtype)
        log_factorial = data.cached(
            ("poisson_log_factorial", dtype), lambda: torch.lgamma(values.unsqueeze(-2) + 1.0)
        )
        return self._observed_sum(self._log_prob_elementwise(params, values, log_factorial), data)

    def conditional(
        self, params: Params, states: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        """``Poisson(rate[states])`` masked where not observed."""
        base = dist.Poisson(self._rate(params)[states])
        return base.mask(observed).to_event(1)

    def sample(
        self, params: Params, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Draw counts ``(*states.shape, D)``."""
        return torch.poisson(self._rate(params)[states], generator=generator)

    def bhattacharyya(self, params: Params) -> torch.Tensor:
        """``BC[i, j] = prod_d exp(-(sqrt(rate_i) - sqrt(rate_j))**2 / 2)``."""
        root = self._rate(params).sqrt()  # (..., K, D)
        gap = root.unsqueeze(-2) - root.unsqueeze(-3)
        return torch.exp(-0.5 * gap.pow(2).sum(-1))

    def _values_pass(self, name: str, value: torch.Tensor) -> bool:
        """Rates finite and ``> 0`` (one numba pass)."""
        return all_greater(value, 0.0)

    def _check_param_values(self, name: str, value: torch.Tensor) -> None:
        if (value <= 0).any():
            raise ValueError(f"params[{name!r}]: expected rates > 0, got {value.min().item()}")

    # ---- potential (NUTS/MAP)
    def potential_coordinates(self) -> dict[str, str]:
        """``log rate``."""
        return {"rate": "log"}

    def potential_terms(
        self, prior: Prior, num_states: int, dtype: torch.dtype, data: Sequences
    ) -> PotentialTerms:
        """Gamma rate prior in closed form; the counts and their log factorials.

        The log joint is :func:`~hmm_pyro.kernels._numba.potentials.entry_potential` with this
        module's kernels (module notes).
        """
        hyper = self.prior_hyperparameters(prior, num_states, dtype)
        shape, rate = (hyper[name] for name in self.hyperparameter_names)
        constant = float((shape * torch.log(rate) - torch.lgamma(shape)).sum())
        counts, observed, lengths = potential_data(data)
        log_factorial = np.where(observed, torch.lgamma(torch.from_numpy(counts) + 1).numpy(), 0.0)
        features = np.ascontiguousarray(np.stack([counts, log_factorial], -1))
        grids = (np.ascontiguousarray(shape.numpy()), np.ascontiguousarray(rate.numpy()))
        return PotentialTerms(
            entry_potential, (_KERNELS, grids, features, observed, lengths), constant
        )


# ---------------------------------------------------------------------- numba potential
# Coefficients per state and coordinate: (log rate, rate); features per entry:
# (y, log y!); statistics: (1, y).
@numba.njit(inline="always", nogil=True, error_model="numpy")
def _log_density(c: np.ndarray, f: np.ndarray) -> float:
    return f[0] * c[0] - c[1] - f[1]


@numba.njit(inline="always", nogil=True, error_model="numpy")
def _statistics(c: np.ndarray, f: np.ndarray, weight: float, out: np.ndarray) -> None:
    out[0] += weight
    out[1] += weight * f[0]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _start(
    theta: np.ndarray,
    grad: np.ndarray,
    jac: float,
    features: np.ndarray,
    observed: np.ndarray,
    shape: np.ndarray,
    rate: np.ndarray,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Gamma prior of ``log rate`` (gradient into ``grad``) and the emission table."""
    num, dim = shape.shape
    coefficients = np.empty((num, dim, 2))
    value = 0.0
    for k in range(num):
        for d in range(dim):
            i = k * dim + d
            lam = math.exp(theta[i])
            power = shape[k, d] - 1.0 + jac
            value += power * theta[i] - rate[k, d] * lam
            grad[i] = power - rate[k, d] * lam
            coefficients[k, d, 0] = theta[i]
            coefficients[k, d, 1] = lam
    return value, fill_table(_log_density, coefficients, features, observed), coefficients


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _finish(
    theta: np.ndarray,
    coefficients: np.ndarray,
    gamma: np.ndarray,
    features: np.ndarray,
    observed: np.ndarray,
    grad: np.ndarray,
) -> None:
    """The likelihood's gradient in ``log rate``: ``sum w y - rate sum w``."""
    sums = weighted_sums(_statistics, 2, coefficients, features, observed, gamma)
    num, dim = coefficients.shape[0], coefficients.shape[1]
    for k in range(num):
        for d in range(dim):
            grad[k * dim + d] += sums[k, d, 1] - coefficients[k, d, 1] * sums[k, d, 0]


_KERNELS = EntryKernels(_start, _finish)
