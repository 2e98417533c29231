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
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyro.distributions as dist
import torch
from pyro.distributions.transforms import PowerTransform

from hmm_pyro._types import Params
from hmm_pyro._validation import check_int
from hmm_pyro.data import Sequences
from hmm_pyro.emissions.base import STATISTICS_DTYPE, Emission, PotentialTerms
from hmm_pyro.kernels import _numba
from hmm_pyro.priors import Prior

__all__ = ["Gaussian"]

_HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)
_HYPERPARAMETERS = ("mu_loc", "mu_scale", "variance_shape", "variance_scale")
_ECM_CYCLES = 100
_ECM_RTOL = 1e-12
_MIN_START_SCALE = 1e-3
"""Smallest standard deviation of a data-driven start (data with no spread)."""


def _ecm_step(
    stats: dict[str, torch.Tensor],
    prior: dict[str, torch.Tensor],
    mu: torch.Tensor,
    var: torch.Tensor,
    emission_prior: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One ECM update in shifted coordinates: ``mu | var``, then ``var | mu``."""
    n, s1, s2 = stats["n"], stats["s1"], stats["s2"]
    if emission_prior:
        loc = prior["mu_loc"] - stats["shift"]
        tau2 = prior["mu_scale"] ** 2
        mu = (tau2 * s1 + var * loc) / (tau2 * n + var)
        spread = (s2 - 2.0 * mu * s1 + mu * mu * n).clamp(min=0.0)
        var = (spread + 2.0 * prior["variance_scale"]) / (n + 2.0 * prior["variance_shape"] + 1.0)
        return mu, var
    has_data = n > 0
    safe_n = torch.where(has_data, n, 1.0)
    new_mu = s1 / safe_n
    spread = (s2 - 2.0 * new_mu * s1 + new_mu * new_mu * n).clamp(min=0.0)
    new_var = spread / safe_n
    return torch.where(has_data, new_mu, mu), torch.where(has_data, new_var, var)


def _ecm_cycles(
    stats: dict[str, torch.Tensor],
    prior: dict[str, torch.Tensor],
    mu: torch.Tensor,
    var: torch.Tensor,
    emission_prior: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeat ECM cycles to convergence (one cycle is exact without the prior)."""
    mu, var = _ecm_step(stats, prior, mu, var, emission_prior)
    if not emission_prior:
        return mu, var
    for _ in range(_ECM_CYCLES - 1):
        new_mu, new_var = _ecm_step(stats, prior, mu, var, emission_prior)
        done = torch.allclose(new_mu, mu, rtol=_ECM_RTOL, atol=0) and torch.allclose(
            new_var, var, rtol=_ECM_RTOL, atol=0
        )
        mu, var = new_mu, new_var
        if done:
            break
    return mu, var


class Gaussian(Emission):
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

    def __init__(self, dim: int | None = None) -> None:
        self._dim = None if dim is None else check_int("dim", dim, minimum=1)

    @property
    def dim(self) -> int:
        """Emission dimension ``D``."""
        return 1 if self._dim is None else self._dim

    def _shape(self, num_states: int) -> tuple[int, ...]:
        return (num_states,) if self._dim is None else (num_states, self._dim)

    def param_shapes(self, num_states: int) -> dict[str, tuple[int, ...]]:
        """``{"mu": shape, "sigma": shape}`` with shape ``(K,)`` or ``(K, D)``."""
        shape = self._shape(num_states)
        return {"mu": shape, "sigma": shape}

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        """``("state",)`` or ``("state", "dim")`` for both parameters."""
        dims = ("state",) if self._dim is None else ("state", "dim")
        return {"mu": dims, "sigma": dims}

    def to_config(self) -> dict[str, Any]:
        """``{"family": "gaussian", "dim": D or None}``."""
        return {"family": self.family, "dim": self._dim}

    def validate_data(self, data: Sequences) -> None:
        """Require the right dimension (finiteness is checked by :class:`Sequences`)."""
        self._check_dim(data)

    def prior_distributions(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """Normal means and inverse-gamma variances (reported as ``sigma``)."""
        hyper = self.prior_hyperparameters(prior, num_states, dtype)
        loc, scale = hyper["mu_loc"], hyper["mu_scale"]
        shape, rate = hyper["variance_shape"], hyper["variance_scale"]
        if self._dim is None:
            loc, scale, shape, rate = loc[:, 0], scale[:, 0], shape[:, 0], rate[:, 0]
        half = torch.tensor(0.5, dtype=dtype)
        sigma = dist.TransformedDistribution(dist.InverseGamma(shape, rate), [PowerTransform(half)])
        return {
            "mu": dist.Normal(loc, scale).to_event(loc.dim()),
            "sigma": sigma.to_event(loc.dim()),
        }

    def prior_hyperparameters(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, torch.Tensor]:
        """``mu_loc``, ``mu_scale``, ``variance_shape``, ``variance_scale``, each ``(K, D)``."""
        return {
            name: prior.resolve_emission(name, num_states, self.dim, dtype)
            for name in _HYPERPARAMETERS
        }

    # ------------------------------------------------------------------ point estimation
    def weighted_statistics(self, data: Sequences, weights: torch.Tensor) -> Params:
        """``n, s1, s2 (K, D)`` of the values shifted by their mean, and ``shift (D,)``.

        ``n = sum_t w o``, ``s1 = sum_t w o (y - shift)``, ``s2 = sum_t w o (y - shift)**2``
        (``o``: observed); the shift keeps ``s2 - 2 mu s1 + mu**2 n`` from cancelling
        catastrophically.
        """
        return self._moment_statistics(data, weights, centre=True)

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
        shift = statistics["shift"]
        if previous is None:
            nan = torch.full_like(statistics["n"], float("nan"))
            mu, var = _ecm_step(statistics, hyperparameters, nan, nan, emission_prior=False)
            if not use_prior:
                return self._shaped(mu + shift, var.sqrt())
            loc = hyperparameters["mu_loc"] - shift
            mu = torch.where(torch.isfinite(mu), mu, loc)
            var = torch.where(
                torch.isfinite(var) & (var > 0), var, hyperparameters["variance_scale"]
            )
        else:
            old_mu, old_sigma = self._columns(previous)
            mu = old_mu.to(STATISTICS_DTYPE) - shift
            var = old_sigma.to(STATISTICS_DTYPE) ** 2
        mu, var = _ecm_cycles(statistics, hyperparameters, mu, var, use_prior)
        return self._shaped(mu + shift, var.sqrt())

    def _shaped(self, mu: torch.Tensor, sigma: torch.Tensor) -> Params:
        """``(K, D)`` columns back to the parameter shapes."""
        if self._dim is None:
            mu, sigma = mu[:, 0], sigma[:, 0]
        return {"mu": mu, "sigma": sigma}

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
        locations, observed = self._quantile_locations(data, num_states, generator, dtype)
        spread = torch.nanmean((observed - torch.nanmean(observed, 0)) ** 2, 0).sqrt()
        scale = (spread / num_states).clamp(min=_MIN_START_SCALE).to(dtype).expand(num_states, -1)
        jitter = torch.randn(locations.shape, generator=generator, dtype=dtype) * scale * 0.1
        return self._shaped(locations + jitter, scale.clone())

    def location(self, params: Params) -> torch.Tensor:
        """Mean of the first coordinate: ``(..., K)``."""
        return self._columns(params)[0][..., 0]

    def fill_value(self) -> float:
        """Zero."""
        return 0.0

    def _columns(self, params: Params) -> tuple[torch.Tensor, torch.Tensor]:
        mu, sigma = params["mu"], params["sigma"]
        if self._dim is None:
            mu, sigma = mu.unsqueeze(-1), sigma.unsqueeze(-1)
        return mu, sigma

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
        """Normal ``mu`` and InverseGamma ``sigma**2`` priors in closed form; the data arrays.

        In ``u = log sigma``: ``log p(sigma) = log IG(sigma**2) + log(2 sigma)`` is
        ``-(2a + 1) u - b exp(-2u) + const``, and the log-Jacobian of ``sigma = exp(u)`` adds
        ``u`` (:func:`~hmm_pyro.kernels._numba.potentials.gaussian_potential`).
        """
        loc, scale, shape, rate = (
            prior.resolve_emission(name, num_states, self.dim, dtype)
            for name in ("mu_loc", "mu_scale", "variance_shape", "variance_scale")
        )
        constant = float(
            -(torch.log(scale) + _HALF_LOG_TWO_PI).sum()
            + (shape * torch.log(rate) - torch.lgamma(shape) + math.log(2.0)).sum()
        )
        grids = tuple(np.ascontiguousarray(t.numpy()) for t in (loc, scale, shape, rate))
        values, observed, lengths = self._potential_data(data)
        return PotentialTerms(
            _numba.gaussian_potential, (*grids, values, observed, lengths), constant
        )
