"""Gamma emissions (e.g. step lengths): ``y_t[d] | z_t = k ~ Gamma(alpha[k, d], beta[k, d])``.

Shape ``alpha`` (the parameter ``concentration``) and rate ``beta`` (``rate``; mean
``alpha / beta``), independent across coordinates ``d``; observations must be strictly positive.

M-step (:meth:`Gamma.maximize`): given ``alpha``, ``Q + log prior`` is maximised in ``beta`` by
``beta(alpha) = (alpha n + a_beta - 1) / (s1 + b_beta)`` (ML: ``alpha n / s1``) with
``n = sum w``, ``s1 = sum w y``, ``slog = sum w log y``. Profiling ``beta`` out leaves one
dimension: by the envelope theorem the derivative of the profile is

``g(alpha) = n log beta(alpha) - n digamma(alpha) + slog + (a_alpha - 1) / alpha - b_alpha``,

which decreases (``digamma' > 1/alpha + 1/(2 alpha**2)``) when both prior shapes are at least
1, and for ML. Its root is found by safeguarded Newton in ``log alpha``
(:func:`~hmm_pyro.emissions._roots.decreasing_root`) over
``[MIN_CONCENTRATION, MAX_CONCENTRATION]``; ``beta`` is at least :data:`MIN_RATE`. Data whose
values under a state are all equal have no finite ML shape (the profile increases forever):
the estimate is then :data:`MAX_CONCENTRATION`.

Collapse distance: ``BC = sqrt(b1**a1 b2**a2 / (G(a1) G(a2))) G(a) / ((b1 + b2) / 2)**a`` per
coordinate with ``a = (a1 + a2) / 2`` (the integral of ``sqrt(f1 f2)`` is a gamma integral).

NUTS/MAP potential (:func:`~hmm_pyro.kernels._numba.potentials.entry_potential`): coordinates
``log alpha`` then ``log beta`` (``K * D`` each), in which each Gamma prior is
``(a - 1 + jac) u - b exp(u) + a log b - lgamma(a)``. The likelihood's gradient comes from the
gamma-weighted sums of ``y`` and ``log y``: ``d log f / d log alpha = alpha (log beta -
digamma(alpha) + log y)`` and ``d log f / d log beta = alpha - beta y``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pyro.distributions as dist
import torch
from scipy import special

from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.emissions._roots import decreasing_root
from hmm_pyro.emissions.coordinatewise import Coordinatewise
from hmm_pyro.emissions.potential_terms import PotentialTerms, potential_data
from hmm_pyro.emissions.statistics import _STATISTICS_CACHE, STATISTICS_DTYPE, quantile_locations
from hmm_pyro.kernels._numba import (
    EntryKernels,
    all_greater,
    entry_potential,
    fill_table,
    weighted_sums,
)
from hmm_pyro.priors import Prior

__all__ = ["MAX_CONCENTRATION", "MIN_CONCENTRATION", "MIN_RATE", "Gamma", "standard_gamma"]

MIN_CONCENTRATION = 1e-8
"""Smallest shape an M-step returns (reached only where the prior alone decides)."""
MAX_CONCENTRATION = 1e6
"""Largest shape an M-step returns (a coefficient of variation of 0.001): equal values."""
MIN_RATE = 1e-12
"""Smallest rate an M-step returns."""


def standard_gamma(concentration: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Draws of ``Gamma(concentration, 1)``, elementwise, from a seeded generator.

    Marsaglia & Tsang (2000) squeeze-rejection for shapes of at least 1; a shape ``a < 1`` is
    boosted: ``G(a) = G(a + 1) U**(1 / a)``. Draws are at least the smallest positive normal
    number of the dtype (a tiny shape underflows to zero otherwise).

    Parameters
    ----------
    concentration : torch.Tensor
        Shapes ``> 0``.
    generator : torch.Generator
        Source of randomness.

    Returns
    -------
    torch.Tensor
        Draws of the shape and dtype of ``concentration``.
    """
    alpha = concentration.to(torch.float64)
    small = alpha < 1
    shape = alpha.shape
    d = torch.where(small, alpha + 1, alpha) - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    result = torch.ones(shape, dtype=torch.float64)
    pending = torch.ones(shape, dtype=torch.bool)
    while bool(pending.any()):
        normal = torch.randn(shape, generator=generator, dtype=torch.float64)
        uniform = torch.rand(shape, generator=generator, dtype=torch.float64)
        cube = (1.0 + c * normal) ** 3
        safe = cube.clamp(min=1e-300)
        accept = (cube > 0) & (
            torch.log(uniform) < 0.5 * normal**2 + d - d * safe + d * torch.log(safe)
        )
        result = torch.where(pending & accept, d * cube, result)
        pending = pending & ~accept
    boost = torch.rand(shape, generator=generator, dtype=torch.float64)
    log_draw = torch.log(result) + torch.where(small, torch.log(boost) / alpha, 0.0)
    tiny = torch.finfo(concentration.dtype).tiny
    return log_draw.exp().clamp(min=tiny).to(concentration.dtype)


class Gamma(Coordinatewise):
    """Gamma emissions for positive data; parameters ``concentration`` and ``rate``.

    Shapes ``(K,)`` (univariate) or ``(K, D)`` (``D`` independent coordinates). Prior:
    ``concentration ~ Gamma(prior.concentration_shape, prior.concentration_rate)`` and
    ``rate ~ Gamma(prior.rate_shape, prior.rate_rate)``, independent.

    Parameters
    ----------
    dim : int, optional
        Number of independent positive coordinates ``D``; omit for univariate data.

    Examples
    --------
    >>> Gamma().param_shapes(num_states=2)
    {'concentration': (2,), 'rate': (2,)}
    """

    family = "gamma"
    param_names = ("concentration", "rate")
    positive_params = ("concentration", "rate")
    hyperparameter_names = ("concentration_shape", "concentration_rate", "rate_shape", "rate_rate")

    def validate_data(self, data: Sequences) -> None:
        """Require strictly positive observations."""
        self._check_dim(data)
        values = self._observed_values(data)
        if values.numel() and bool((values <= 0).any()):
            raise ValueError(
                f"data: expected values > 0 for {self!r} (gamma densities live on the positive "
                f"reals; zero step lengths need a zero-inflated model), got {values.min().item()}"
            )

    # ------------------------------------------------------------------ prior
    def prior_distributions(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """Gamma priors of both parameters, one event per parameter."""
        hyper = self.prior_hyperparameters(prior, num_states, dtype)
        columns = {name: self._unshaped(value) for name, value in hyper.items()}
        events = columns["rate_rate"].dim()
        return {
            "concentration": dist.Gamma(
                columns["concentration_shape"], columns["concentration_rate"]
            ).to_event(events),
            "rate": dist.Gamma(columns["rate_shape"], columns["rate_rate"]).to_event(events),
        }

    # ------------------------------------------------------------------ point estimation
    def weighted_statistics(self, data: Sequences, weights: torch.Tensor) -> Params:
        """``n``, ``s1 = sum w y`` and ``slog = sum w log y``, each ``(K, D)``.

        Sums over observed entries ``o``: ``n = sum_t w o``.
        """

        def build() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            observed = data.observed.reshape(-1, data.dim)
            values = data.values.reshape(-1, data.dim).to(STATISTICS_DTYPE)
            kept = torch.where(observed, values, 1.0)
            return (
                observed.to(STATISTICS_DTYPE),
                torch.where(observed, kept, 0.0),
                torch.where(observed, torch.log(kept), 0.0),
            )

        observed, values, logs = data.cached((_STATISTICS_CACHE, "gamma"), build)
        transposed = weights.T
        return {"n": transposed @ observed, "s1": transposed @ values, "slog": transposed @ logs}

    def maximize(
        self,
        statistics: Params,
        hyperparameters: Params,
        previous: Params | None,
        use_prior: bool,
    ) -> Params:
        """Profile the rate out and solve the shape's stationarity condition (module notes).

        Without the prior, a coordinate without weight keeps its previous parameters (NaN when
        ``previous`` is ``None``).
        """
        n, s1, slog = statistics["n"], statistics["s1"], statistics["slog"]
        if use_prior:
            a_alpha, b_alpha, a_beta, b_beta = (
                hyperparameters[name].to(STATISTICS_DTYPE).expand_as(n).numpy()
                for name in (
                    "concentration_shape",
                    "concentration_rate",
                    "rate_shape",
                    "rate_rate",
                )
            )
        else:
            a_alpha = a_beta = np.ones(n.shape)
            b_alpha = b_beta = np.zeros(n.shape)
        has_data = n > 0
        usable = has_data.numpy() | use_prior
        safe_n = np.where(usable, n.numpy(), 1.0)  # rows without data (ML) are replaced below
        denominator = np.where(usable, s1.numpy() + b_beta, 1.0)
        safe_slog = np.where(usable, slog.numpy(), 0.0)

        def rate_of(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            raw = (alpha * safe_n + a_beta - 1.0) / denominator
            clamped = raw <= MIN_RATE
            return np.maximum(raw, MIN_RATE), clamped

        def condition(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            beta, clamped = rate_of(alpha)
            value = (
                safe_n * (np.log(beta) - special.digamma(alpha))
                + safe_slog
                + (a_alpha - 1.0) / alpha
                - b_alpha
            )
            slope_beta = np.where(clamped, 0.0, safe_n * safe_n / (denominator * beta))
            slope = (
                slope_beta
                - safe_n * special.polygamma(1, alpha)
                - (a_alpha - 1.0) / (alpha * alpha)
            )
            return value, slope

        if previous is None:
            start = torch.full_like(n, float("nan"))
        else:
            start = self._columns(previous)[0].to(STATISTICS_DTYPE).expand_as(n)
        alpha = decreasing_root(condition, MIN_CONCENTRATION, MAX_CONCENTRATION, start)
        beta = torch.from_numpy(rate_of(alpha.numpy())[0])
        if not use_prior:
            if previous is None:
                old_alpha = old_beta = torch.full_like(n, float("nan"))
            else:
                old_alpha, old_beta = (p.to(STATISTICS_DTYPE) for p in self._columns(previous))
            alpha = torch.where(has_data, alpha, old_alpha)
            beta = torch.where(has_data, beta, old_beta)
        return self._params(alpha, beta)

    def pooled_params(self, data: Sequences) -> Params:
        """The ML gamma fit to all observed values of each coordinate."""
        observed = data.observed.reshape(-1, data.dim)
        weights = torch.ones(observed.shape[0], 1, dtype=STATISTICS_DTYPE)
        stats = self.weighted_statistics(data, weights)
        return self.maximize(stats, {}, None, use_prior=False)

    def start_from_data(
        self, data: Sequences, num_states: int, generator: torch.Generator, dtype: torch.dtype
    ) -> Params:
        """Means at random quantiles of the data; coefficients of variation ``cv / K``.

        ``cv`` is the pooled coefficient of variation of each coordinate (at least 0.01 per
        state): ``concentration = (K / cv)**2``, ``rate = concentration / mean``.
        """
        means, observed = quantile_locations(data, num_states, generator, dtype)
        centre = torch.nanmean(observed, 0)
        spread = torch.nanmean((observed - centre) ** 2, 0).sqrt()
        variation = (spread / centre / num_states).clamp(min=0.01).to(dtype)
        alpha = (1.0 / variation**2).expand(num_states, -1).clone()
        return self._params(alpha, alpha / means)

    # ------------------------------------------------------------------ likelihood
    def location(self, params: Params) -> torch.Tensor:
        """Mean ``concentration / rate`` of the first coordinate: ``(..., K)``."""
        alpha, beta = self._columns(params)
        return alpha[..., 0] / beta[..., 0]

    def fill_value(self) -> float:
        """One (any positive value)."""
        return 1.0

    def _log_prob_elementwise(self, params: Params, values: torch.Tensor) -> torch.Tensor:
        alpha, beta = self._columns(params)
        alpha, beta = alpha[..., None, None, :, :], beta[..., None, None, :, :]
        y = values.unsqueeze(-2)
        return (
            alpha * torch.log(beta) - torch.lgamma(alpha) + (alpha - 1.0) * torch.log(y) - beta * y
        )

    def conditional(
        self, params: Params, states: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        """``Gamma(concentration[states], rate[states])`` masked where not observed."""
        alpha, beta = self._columns(params)
        return dist.Gamma(alpha[states], beta[states]).mask(observed).to_event(1)

    def sample(
        self, params: Params, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Draw ``(*states.shape, D)`` positive values (:func:`standard_gamma` / rate)."""
        alpha, beta = self._columns(params)
        return standard_gamma(alpha[states], generator) / beta[states]

    def bhattacharyya(self, params: Params) -> torch.Tensor:
        """Closed form (module notes), a product over coordinates."""
        alpha, beta = self._columns(params)  # (..., K, D)
        a1, a2 = alpha.unsqueeze(-2), alpha.unsqueeze(-3)
        b1, b2 = beta.unsqueeze(-2), beta.unsqueeze(-3)
        mean_shape = 0.5 * (a1 + a2)
        log_bc = (
            0.5 * (a1 * torch.log(b1) + a2 * torch.log(b2))
            - 0.5 * (torch.lgamma(a1) + torch.lgamma(a2))
            + torch.lgamma(mean_shape)
            - mean_shape * torch.log(0.5 * (b1 + b2))
        )
        return log_bc.sum(-1).clamp(max=0.0).exp()

    def _values_pass(self, name: str, value: torch.Tensor) -> bool:
        """Finite and ``> 0`` (one numba pass)."""
        return all_greater(value, 0.0)

    def _check_param_values(self, name: str, value: torch.Tensor) -> None:
        if (value <= 0).any():
            raise ValueError(f"params[{name!r}]: expected values > 0, got {value.min().item()}")

    # ---- potential (NUTS/MAP)
    def potential_coordinates(self) -> dict[str, str]:
        """``log concentration``, ``log rate``."""
        return {"concentration": "log", "rate": "log"}

    def potential_terms(
        self, prior: Prior, num_states: int, dtype: torch.dtype, data: Sequences
    ) -> PotentialTerms:
        """Gamma priors of both parameters in closed form; the values and their logs.

        The log joint is :func:`~hmm_pyro.kernels._numba.potentials.entry_potential` with this
        module's kernels (module notes).
        """
        hyper = [
            value.to(torch.float64)
            for value in self.prior_hyperparameters(prior, num_states, dtype).values()
        ]
        constant = sum(
            float((shape * torch.log(rate) - torch.lgamma(shape)).sum())
            for shape, rate in (hyper[:2], hyper[2:])
        )
        values, observed, lengths = potential_data(data)
        logs = np.where(observed, np.log(np.where(observed, values, 1.0)), 0.0)
        features = np.ascontiguousarray(np.stack([values, logs], -1))
        grids = tuple(np.ascontiguousarray(t.numpy()) for t in hyper)
        return PotentialTerms(
            entry_potential, (_KERNELS, grids, features, observed, lengths), constant
        )


# ---------------------------------------------------------------------- numba potential
# Coefficients per state and coordinate: (alpha log beta - lgamma(alpha), alpha - 1, beta);
# features per entry: (y, log y); statistics: (1, y, log y).
@numba.njit(inline="always", nogil=True, error_model="numpy")
def _log_density(c: np.ndarray, f: np.ndarray) -> float:
    return c[0] + c[1] * f[1] - c[2] * f[0]


@numba.njit(inline="always", nogil=True, error_model="numpy")
def _statistics(c: np.ndarray, f: np.ndarray, weight: float, out: np.ndarray) -> None:
    out[0] += weight
    out[1] += weight * f[0]
    out[2] += weight * f[1]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _start(
    theta: np.ndarray,
    grad: np.ndarray,
    jac: float,
    features: np.ndarray,
    observed: np.ndarray,
    a_c: np.ndarray,
    b_c: np.ndarray,
    a_r: np.ndarray,
    b_r: np.ndarray,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Gamma priors of ``log alpha`` and ``log beta`` (gradient into ``grad``), the table."""
    num, dim = a_c.shape
    size = num * dim
    coefficients = np.empty((num, dim, 3))
    value = 0.0
    for k in range(num):
        for d in range(dim):
            i = k * dim + d
            log_alpha, log_beta = theta[i], theta[size + i]
            alpha, beta = math.exp(log_alpha), math.exp(log_beta)
            value += (a_c[k, d] - 1.0 + jac) * log_alpha - b_c[k, d] * alpha
            value += (a_r[k, d] - 1.0 + jac) * log_beta - b_r[k, d] * beta
            grad[i] = a_c[k, d] - 1.0 + jac - b_c[k, d] * alpha
            grad[size + i] = a_r[k, d] - 1.0 + jac - b_r[k, d] * beta
            coefficients[k, d, 0] = alpha * log_beta - math.lgamma(alpha)
            coefficients[k, d, 1] = alpha - 1.0
            coefficients[k, d, 2] = beta
    return value, fill_table(_log_density, coefficients, features, observed), coefficients


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _add_gradient(
    theta: np.ndarray,
    coefficients: np.ndarray,
    digamma: np.ndarray,
    gamma: np.ndarray,
    features: np.ndarray,
    observed: np.ndarray,
    grad: np.ndarray,
) -> None:
    sums = weighted_sums(_statistics, 3, coefficients, features, observed, gamma)
    num, dim = coefficients.shape[0], coefficients.shape[1]
    size = num * dim
    for k in range(num):
        for d in range(dim):
            i = k * dim + d
            alpha, beta = math.exp(theta[i]), coefficients[k, d, 2]
            count, total, total_log = sums[k, d, 0], sums[k, d, 1], sums[k, d, 2]
            grad[i] += alpha * (count * (theta[size + i] - digamma[k, d]) + total_log)
            grad[size + i] += alpha * count - beta * total


def _finish(
    theta: np.ndarray,
    coefficients: np.ndarray,
    gamma: np.ndarray,
    features: np.ndarray,
    observed: np.ndarray,
    grad: np.ndarray,
) -> None:
    """The likelihood's gradient in ``log alpha`` and ``log beta`` (module notes)."""
    num, dim = coefficients.shape[0], coefficients.shape[1]
    digamma = special.digamma(np.exp(theta[: num * dim].reshape((num, dim))))
    _add_gradient(theta, coefficients, digamma, gamma, features, observed, grad)


_KERNELS = EntryKernels(_start, _finish)
