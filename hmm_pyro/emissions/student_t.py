"""Student-t emissions (heavy tails): ``y_t[d] | z_t = k ~ StudentT(df, mu, sigma)[k, d]``.

Location ``mu``, scale ``sigma`` and degrees of freedom ``df``, independent coordinates; Pyro's
``StudentT(df, loc, scale)``. Priors: ``mu`` and ``sigma`` as the Gaussian family's (Normal
location; inverse-gamma ``sigma**2``, the site being ``sigma``), ``df ~ Gamma(df_shape,
df_rate)``.

The M-step is numerical (the three parameters of a state have no closed-form maximiser):
L-BFGS over ``(mu, log sigma, log df)`` of all states
(:meth:`~hmm_pyro.emissions.distribution.DistributionEmission.maximize`), started from the
weighted moments when there is no previous value. Distances between states are Monte Carlo
estimates (no closed form exists).
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from pyro.distributions.transforms import PowerTransform
from torch.distributions import constraints
from torch.distributions.constraints import Constraint

from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.emissions.coordinatewise import Coordinatewise
from hmm_pyro.emissions.distribution import DistributionEmission
from hmm_pyro.emissions.gaussian import Gaussian
from hmm_pyro.emissions.statistics import STATISTICS_DTYPE

__all__ = ["StudentT"]
_START_DF = 5.0
"""Degrees of freedom of the numerical M-step's start when there is no previous value."""
_MIN_START_SCALE = 1e-3


class StudentT(Coordinatewise, DistributionEmission):
    """Student-t emissions with locations ``mu``, scales ``sigma`` and degrees of freedom ``df``.

    Each parameter has shape ``(K,)``, or ``(K, D)`` for ``D`` independent coordinates.

    Parameters
    ----------
    dim : int, optional
        Emission dimension ``D``; omit for univariate data.
    """

    family = "student_t"
    param_names = ("mu", "sigma", "df")
    hyperparameter_names = (
        *Gaussian.hyperparameter_names,  # mu_loc, mu_scale, variance_shape, variance_scale
        "df_shape",
        "df_rate",
    )

    def param_constraints(self) -> dict[str, Constraint]:
        """``mu`` real, ``sigma`` and ``df`` positive."""
        return {"mu": constraints.real, "sigma": constraints.positive, "df": constraints.positive}

    # ------------------------------------------------------------------ prior
    def priors(
        self, hyperparameters: Params, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """Normal ``mu``, inverse-gamma ``sigma**2`` (reported as ``sigma``), Gamma ``df``."""
        loc, scale, shape, rate, df_shape, df_rate = (
            self._unshaped(hyperparameters[name].to(dtype)) for name in self.hyperparameter_names
        )
        half = torch.tensor(0.5, dtype=dtype)
        sigma = dist.TransformedDistribution(dist.InverseGamma(shape, rate), [PowerTransform(half)])
        return {
            "mu": dist.Normal(loc, scale).to_event(loc.dim()),
            "sigma": sigma.to_event(loc.dim()),
            "df": dist.Gamma(df_shape, df_rate).to_event(loc.dim()),
        }

    # ------------------------------------------------------------------ law
    def law(self, params: Params) -> dist.TorchDistribution:
        """``StudentT(df, mu, sigma)`` per coordinate."""
        mu, sigma, df = self._columns(params)
        return dist.StudentT(df, mu, sigma).to_event(1)

    def location(self, params: Params) -> torch.Tensor:
        """``mu`` of the first coordinate (the mean exists only for ``df > 1``): ``(..., K)``."""
        return self._columns(params)[0][..., 0]

    def start_from_data(
        self, data: Sequences, num_states: int, generator: torch.Generator, dtype: torch.dtype
    ) -> Params:
        """``mu`` and ``sigma`` as Gaussian starts are (data quantiles, spread / K)."""
        return Gaussian(self._dim).start_from_data(data, num_states, generator, dtype)

    def start_for_maximize(self, statistics: Params) -> Params:
        """Weighted means and standard deviations of each state, ``df = 5``."""
        weights = statistics["weights"].T.unsqueeze(-1)  # (K, M, 1)
        observed, values = statistics["observed"], statistics["values"]
        n = (weights * observed).sum(1)  # (K, D)
        safe = torch.where(n > 0, n, 1.0)
        mu = (weights * observed * values).sum(1) / safe
        spread = (weights * observed * (values - mu.unsqueeze(1)) ** 2).sum(1) / safe
        sigma = spread.sqrt().clamp(min=_MIN_START_SCALE)
        df = torch.full_like(mu, _START_DF, dtype=STATISTICS_DTYPE)
        return self._params(mu, sigma, df)
