"""Gaussian emissions: ``y_t[d] | z_t = k ~ Normal(mu[k, d], sigma[k, d])`` (diagonal)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyro.distributions as dist
import torch
from pyro.distributions.transforms import PowerTransform

from hmm_pyro._validation import check_int
from hmm_pyro.data import Sequences
from hmm_pyro.emissions.base import Emission, Params, PotentialTerms
from hmm_pyro.kernels import _numba
from hmm_pyro.priors import Prior

__all__ = ["Gaussian"]

_HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)


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
        width = self.dim
        loc = prior.resolve_emission("mu_loc", num_states, width, dtype)
        scale = prior.resolve_emission("mu_scale", num_states, width, dtype)
        shape = prior.resolve_emission("variance_shape", num_states, width, dtype)
        rate = prior.resolve_emission("variance_scale", num_states, width, dtype)
        if self._dim is None:
            loc, scale, shape, rate = loc[:, 0], scale[:, 0], shape[:, 0], rate[:, 0]
        half = torch.tensor(0.5, dtype=dtype)
        sigma = dist.TransformedDistribution(dist.InverseGamma(shape, rate), [PowerTransform(half)])
        return {
            "mu": dist.Normal(loc, scale).to_event(loc.dim()),
            "sigma": sigma.to_event(loc.dim()),
        }

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
