"""Gaussian emissions: ``y_t[d] | z_t = k ~ Normal(mu[k, d], sigma[k, d])`` (diagonal).

M-step (:meth:`Gaussian.maximize`): the semi-conjugate prior has no joint closed-form maximiser,
so conditional maximisation (ECM, Meng & Rubin 1993): ``mu`` given the current ``sigma``, then
``sigma`` given the new ``mu``; each cycle increases ``Q``. The cycles are repeated (from the
current parameters, at most :data:`_ECM_CYCLES`, to relative change :data:`_ECM_RTOL`: they act
on ``(K, D)`` numbers) so that the M-step is a maximiser given the statistics and hard EM has
exact fixed points. With ``v = sigma**2`` and the prior density of the *site* ``sigma``
(``p_IG(v) * 2 sigma``), the ``v`` step maximises
``-(n/2) log v - S/(2v) - (a+1) log v - b/v + (1/2) log v`` with ``S = sum_t w_t (y_t - mu)**2``:
``v = (S + 2b) / (n + 2a + 1)``. Without the emission prior ``mu = s1 / n`` does not depend on
``v`` and one cycle is exact: ``v = S / n`` (ML, hmmlearn's update).

NUTS/MAP potential (:func:`~hmm_pyro.kernels._numba.potentials.entry_potential`): coordinates
``mu`` and ``u = log sigma``; with ``log p(sigma) = log IG(sigma**2) + log(2 sigma)`` the prior
is ``-(2a + 1) u - b exp(-2u) + const`` in ``u``, and the log-Jacobian of ``sigma = exp(u)``
adds ``u``. The likelihood's gradient comes from the gamma-weighted sums of ``y - mu`` and
``(y - mu)**2`` of each state and coordinate.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pyro.distributions as dist
import torch
from pyro.distributions.transforms import PowerTransform

from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.emissions.base import OptionError
from hmm_pyro.emissions.coordinatewise import Coordinatewise
from hmm_pyro.emissions.gaussian_regression import GaussianRegression
from hmm_pyro.emissions.potential_terms import PotentialTerms, potential_data
from hmm_pyro.emissions.statistics import STATISTICS_DTYPE, moment_statistics, quantile_locations
from hmm_pyro.kernels._numba import (
    EntryKernels,
    all_finite,
    all_greater,
    entry_potential,
    fill_table,
    weighted_sums,
)
from hmm_pyro.priors import Prior

__all__ = ["Gaussian"]

_HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)
_ECM_CYCLES = 100
_ECM_RTOL = 1e-12
_MIN_START_SCALE = 1e-3
"""Smallest standard deviation of a data-driven start (data with no spread)."""


Arrays = dict[str, np.ndarray]


def _ecm_step(
    stats: Arrays, prior: Arrays, mu: np.ndarray, var: np.ndarray, emission_prior: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One ECM update in shifted coordinates: ``mu | var``, then ``var | mu`` (NumPy arrays)."""
    n, s1, s2 = stats["n"], stats["s1"], stats["s2"]
    if emission_prior:
        loc = prior["mu_loc"] - stats["shift"]
        tau2 = prior["mu_scale"] ** 2
        mu = (tau2 * s1 + var * loc) / (tau2 * n + var)
        spread = np.maximum(s2 - 2.0 * mu * s1 + mu * mu * n, 0.0)
        var = (spread + 2.0 * prior["variance_scale"]) / (n + 2.0 * prior["variance_shape"] + 1.0)
        return mu, var
    has_data = n > 0
    safe_n = np.where(has_data, n, 1.0)
    new_mu = s1 / safe_n
    spread = np.maximum(s2 - 2.0 * new_mu * s1 + new_mu * new_mu * n, 0.0)
    new_var = spread / safe_n
    return np.where(has_data, new_mu, mu), np.where(has_data, new_var, var)


def _ecm_cycles(
    stats: Arrays, prior: Arrays, mu: np.ndarray, var: np.ndarray, emission_prior: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Repeat ECM cycles to convergence (one cycle is exact without the prior)."""
    mu, var = _ecm_step(stats, prior, mu, var, emission_prior)
    if not emission_prior:
        return mu, var
    for _ in range(_ECM_CYCLES - 1):
        new_mu, new_var = _ecm_step(stats, prior, mu, var, emission_prior)
        done = bool(
            (np.abs(new_mu - mu) <= _ECM_RTOL * np.abs(mu)).all()
            and (np.abs(new_var - var) <= _ECM_RTOL * np.abs(var)).all()
        )
        mu, var = new_mu, new_var
        if done:
            break
    return mu, var


def _arrays(values: Params, names: tuple[str, ...]) -> Arrays:
    """float64 NumPy copies of ``values[name]`` (the M-step's few ``(K, D)`` numbers)."""
    return {name: values[name].to(STATISTICS_DTYPE).numpy() for name in names}


class Gaussian(Coordinatewise):
    """Gaussian emissions with per-state means ``mu`` and standard deviations ``sigma``.

    Univariate (``dim=None``): ``mu`` and ``sigma`` have shape ``(K,)``. Multivariate with a
    diagonal covariance (``dim=D``): shape ``(K, D)``; missing coordinates are marginalised one
    by one.

    Prior (semi-conjugate): ``mu[k] ~ Normal(prior.mu_loc, prior.mu_scale)`` and
    ``sigma[k]**2 ~ InverseGamma(prior.variance_shape, prior.variance_scale)``; the Pyro site is
    ``sigma`` itself, with the Jacobian of the square root included.

    Parameters
    ----------
    dim : int, optional
        Emission dimension ``D``; omit for univariate data.
    """

    family = "gaussian"
    param_names = ("mu", "sigma")
    positive_params = ("sigma",)
    random_effect_params = (("mu", "location"),)
    hyperparameter_names = ("mu_loc", "mu_scale", "variance_shape", "variance_scale")

    def with_covariates(self, names: tuple[str, ...]) -> GaussianRegression:
        """The Gaussian regression on ``names`` (univariate data only)."""
        if self._dim is not None:
            raise OptionError(
                "emission_covariates", f"a regression of univariate data only, not {self!r}"
            )
        return GaussianRegression(names)

    def validate_data(self, data: Sequences) -> None:
        """Require the right dimension (finiteness is checked by :class:`Sequences`)."""
        self._check_dim(data)

    def prior_distributions(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """Normal means and inverse-gamma variances (reported as ``sigma``)."""
        hyper = self.prior_hyperparameters(prior, num_states, dtype)
        loc, scale, shape, rate = (
            self._unshaped(hyper[name]) for name in self.hyperparameter_names
        )
        half = torch.tensor(0.5, dtype=dtype)
        sigma = dist.TransformedDistribution(dist.InverseGamma(shape, rate), [PowerTransform(half)])
        return {
            "mu": dist.Normal(loc, scale).to_event(loc.dim()),
            "sigma": sigma.to_event(loc.dim()),
        }

    # ------------------------------------------------------------------ point estimation
    def weighted_statistics(self, data: Sequences, weights: torch.Tensor) -> Params:
        """``n, s1, s2 (K, D)`` of the values shifted by their mean, and ``shift (D,)``.

        ``n = sum_t w o``, ``s1 = sum_t w o (y - shift)``, ``s2 = sum_t w o (y - shift)**2``
        (``o``: observed); the shift keeps ``s2 - 2 mu s1 + mu**2 n`` from cancelling
        catastrophically.
        """
        return moment_statistics(data, weights, centre=True)

    def maximize(
        self,
        statistics: Params,
        hyperparameters: Params,
        previous: Params | None,
        use_prior: bool,
    ) -> Params:
        """ECM cycles to the maximiser (see the module notes); ML: one exact cycle.

        Without the prior, a state's coordinate without weight keeps its previous value (NaN
        when ``previous`` is ``None``). With the prior and no ``previous``, the cycles start
        from the ML estimates, or from ``mu_loc`` and ``variance_scale`` where those are
        undefined.
        """
        stats = _arrays(statistics, ("n", "s1", "s2", "shift"))
        prior = _arrays(hyperparameters, self.hyperparameter_names) if use_prior else {}
        shift = stats["shift"]
        if previous is None:
            nan = np.full(stats["n"].shape, np.nan)
            mu, var = _ecm_step(stats, prior, nan, nan, emission_prior=False)
            if use_prior:
                loc = prior["mu_loc"] - shift
                mu = np.where(np.isfinite(mu), mu, loc)
                var = np.where(np.isfinite(var) & (var > 0), var, prior["variance_scale"])
                mu, var = _ecm_cycles(stats, prior, mu, var, True)
        else:
            old_mu, old_sigma = (
                value.to(STATISTICS_DTYPE).numpy() for value in self._columns(previous)
            )
            mu, var = _ecm_cycles(stats, prior, old_mu - shift, old_sigma**2, use_prior)
        return self._params(torch.from_numpy(mu + shift), torch.from_numpy(np.sqrt(var)))

    def pooled_params(self, data: Sequences) -> Params:
        """Pooled mean and standard deviation (floored at ``1e-12``) of the observed values."""
        observed = data.values[data.mask].to(STATISTICS_DTYPE)  # (steps, D), NaN where missing
        mean = torch.nanmean(observed, 0)
        sd = torch.nanmean((observed - mean) ** 2, 0).sqrt().clamp(min=1e-12)
        shape = self.param_shapes(1)["mu"]
        return {"mu": mean.reshape(shape), "sigma": sd.reshape(shape)}

    def start_from_data(
        self, data: Sequences, num_states: int, generator: torch.Generator, dtype: torch.dtype
    ) -> Params:
        """Means at random quantiles of the data (jittered), scales ``spread / K``.

        The jitter is a tenth of the scale; scales are at least :data:`_MIN_START_SCALE`.
        """
        locations, observed = quantile_locations(data, num_states, generator, dtype)
        spread = torch.nanmean((observed - torch.nanmean(observed, 0)) ** 2, 0).sqrt()
        scale = (spread / num_states).clamp(min=_MIN_START_SCALE).to(dtype).expand(num_states, -1)
        jitter = torch.randn(locations.shape, generator=generator, dtype=dtype) * scale * 0.1
        return self._params(locations + jitter, scale.clone())

    def location(self, params: Params) -> torch.Tensor:
        """Mean of the first coordinate: ``(..., K)``."""
        return self._columns(params)[0][..., 0]

    def fill_value(self) -> float:
        """Zero."""
        return 0.0

    def _log_prob_elementwise(self, params: Params, values: torch.Tensor) -> torch.Tensor:
        mu, sigma = self._columns(params)
        loc, scale = mu[..., None, None, :, :], sigma[..., None, None, :, :]
        z = (values.unsqueeze(-2) - loc) / scale
        return -0.5 * z * z - torch.log(scale) - _HALF_LOG_TWO_PI

    def conditional(
        self, params: Params, states: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        """``Normal(mu[states], sigma[states])`` masked per coordinate where not observed."""
        mu, sigma = self._columns(params)
        return dist.Normal(mu[states], sigma[states]).mask(observed).to_event(1)

    def sample(
        self, params: Params, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Draw ``(*states.shape, D)`` observations."""
        mu, sigma = self._columns(params)
        noise = torch.randn((*states.shape, self.dim), dtype=mu.dtype, generator=generator)
        return mu[states] + sigma[states] * noise

    def bhattacharyya(self, params: Params) -> torch.Tensor:
        """Closed form for diagonal Gaussians: a product over coordinates.

        Each coordinate contributes ``sqrt(2 s_i s_j / v) * exp(-(m_i - m_j)**2 / (4 v))``
        with ``v = s_i**2 + s_j**2``.
        """
        mu, sigma = self._columns(params)  # (..., K, D)
        var_sum = sigma.pow(2).unsqueeze(-2) + sigma.pow(2).unsqueeze(-3)
        prod = sigma.unsqueeze(-2) * sigma.unsqueeze(-3)
        gap = mu.unsqueeze(-2) - mu.unsqueeze(-3)
        log_bc = 0.5 * torch.log(2 * prod / var_sum) - gap.pow(2) / (4 * var_sum)
        return log_bc.sum(-1).exp()

    def _values_pass(self, name: str, value: torch.Tensor) -> bool:
        """``mu`` finite, ``sigma`` finite and ``> 0`` (one numba pass)."""
        return all_greater(value, 0.0) if name == "sigma" else all_finite(value)

    def _check_param_values(self, name: str, value: torch.Tensor) -> None:
        if name == "sigma" and (value <= 0).any():
            raise ValueError(
                f"params['sigma']: expected standard deviations > 0, got {value.min().item()}"
            )

    # ---- potential (NUTS/MAP)
    def potential_coordinates(self) -> dict[str, str]:
        """``mu`` as it is, ``log sigma``."""
        return {"mu": "real", "sigma": "log"}

    def potential_terms(
        self, prior: Prior, num_states: int, dtype: torch.dtype, data: Sequences
    ) -> PotentialTerms:
        """Normal ``mu`` and InverseGamma ``sigma**2`` priors in closed form; the values.

        The log joint is :func:`~hmm_pyro.kernels._numba.potentials.entry_potential` with this
        module's kernels (module notes).
        """
        hyper = self.prior_hyperparameters(prior, num_states, dtype)
        loc, scale, shape, rate = (hyper[name] for name in self.hyperparameter_names)
        constant = float(
            -(torch.log(scale) + _HALF_LOG_TWO_PI).sum()
            + (shape * torch.log(rate) - torch.lgamma(shape) + math.log(2.0)).sum()
        )
        grids = tuple(np.ascontiguousarray(t.numpy()) for t in (loc, scale, shape, rate))
        values, observed, lengths = potential_data(data)
        arguments = (_KERNELS, grids, values[..., None], observed, lengths)
        return PotentialTerms(entry_potential, arguments, constant)


# ---------------------------------------------------------------------- numba potential
# Coefficients per state and coordinate: (mu, 1 / sigma**2, log sigma + log(2 pi) / 2);
# features per entry: (y,); statistics: (1, y - mu, (y - mu)**2).
@numba.njit(inline="always", nogil=True, error_model="numpy")
def _log_density(c: np.ndarray, f: np.ndarray) -> float:
    gap = f[0] - c[0]
    return -0.5 * gap * gap * c[1] - c[2]


@numba.njit(inline="always", nogil=True, error_model="numpy")
def _statistics(c: np.ndarray, f: np.ndarray, weight: float, out: np.ndarray) -> None:
    gap = f[0] - c[0]
    out[0] += weight
    out[1] += weight * gap
    out[2] += weight * gap * gap


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _start(
    theta: np.ndarray,
    grad: np.ndarray,
    jac: float,
    features: np.ndarray,
    observed: np.ndarray,
    loc: np.ndarray,
    scale: np.ndarray,
    shape: np.ndarray,
    rate: np.ndarray,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Priors of ``mu`` and ``log sigma`` (gradient into ``grad``) and the emission table."""
    num, dim = loc.shape
    size = num * dim
    coefficients = np.empty((num, dim, 3))
    value = 0.0
    for k in range(num):
        for d in range(dim):
            i = k * dim + d
            mu, log_sigma = theta[i], theta[size + i]
            inv_var = math.exp(-2.0 * log_sigma)
            standard = (mu - loc[k, d]) / scale[k, d]
            power = 2.0 * shape[k, d] + 1.0 - jac  # log sigma, plus the log-Jacobian if jac
            value += -0.5 * standard * standard - power * log_sigma - rate[k, d] * inv_var
            grad[i] = -standard / scale[k, d]
            grad[size + i] = -power + 2.0 * rate[k, d] * inv_var
            coefficients[k, d, 0] = mu
            coefficients[k, d, 1] = inv_var
            coefficients[k, d, 2] = log_sigma + _HALF_LOG_TWO_PI
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
    """The likelihood's gradient in ``mu`` and ``log sigma`` from the weighted sums."""
    sums = weighted_sums(_statistics, 3, coefficients, features, observed, gamma)
    num, dim = coefficients.shape[0], coefficients.shape[1]
    for k in range(num):
        for d in range(dim):
            inv_var = coefficients[k, d, 1]
            grad[k * dim + d] += sums[k, d, 1] * inv_var
            grad[(num + k) * dim + d] += sums[k, d, 2] * inv_var - sums[k, d, 0]


_KERNELS = EntryKernels(_start, _finish)
