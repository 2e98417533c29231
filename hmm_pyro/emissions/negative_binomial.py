"""Negative binomial emissions: overdispersed counts, ``y | z = k ~ NB(rate[k], dispersion[k])``.

Mean ``rate`` and dispersion ``r``: ``P(y) = Gamma(y + r) / (Gamma(r) y!) (r / (r + rate))**r
(rate / (r + rate))**y``, variance ``rate + rate**2 / r`` (Poisson as ``r -> inf``); Pyro's
``NegativeBinomial(total_count=r, logits=log(rate / r))``. Coordinates are independent.

M-step (:meth:`NegativeBinomial.maximize`, docs/emissions.md#negative-binomial): with
weighted counts ``c_u`` of each distinct value ``u`` (``n = sum c_u``, ``S = sum c_u u``) and
Gamma priors ``rate ~ Gamma(a, b)``, ``r ~ Gamma(c, e)``, the maximiser over ``rate`` for a given
``r`` is the positive root of ``b m**2 + (r (n + b) - (a - 1)) m - (S + a - 1) r = 0`` (``S / n``
without the prior), and the profile in ``r`` is maximised in one dimension: the root of its
derivative
``sum c_u [psi(u + r) - psi(r)] + n log(r / (r + m)) + (n m - S) / (r + m) + (c - 1) / r - e``
(decreasing in ``r``) by :func:`~hmm_pyro.emissions._roots.decreasing_root` (Newton in
``log r`` inside a bisection bracket), the derivative's own slope taken by a forward
difference, started at the previous ``r`` (EM moves it little between updates).
"""

from __future__ import annotations

import numpy as np
import pyro.distributions as dist
import torch
from scipy import special
from torch.distributions import constraints
from torch.distributions.constraints import Constraint

from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.emissions._integers import MAX_DISPERSION, MIN_DISPERSION
from hmm_pyro.emissions._roots import decreasing_root
from hmm_pyro.emissions.base import Emission, OptionError
from hmm_pyro.emissions.coordinatewise import Coordinatewise
from hmm_pyro.emissions.distribution import DistributionEmission
from hmm_pyro.emissions.negative_binomial_regression import NegativeBinomialRegression
from hmm_pyro.emissions.poisson import MIN_RATE, Poisson
from hmm_pyro.emissions.statistics import _STATISTICS_CACHE, STATISTICS_DTYPE

__all__ = ["MAX_DISPERSION", "MIN_DISPERSION", "NegativeBinomial"]
_SLOPE_STEP = 1e-6
"""Relative step of ``r`` for the forward difference that gives Newton its slope (the root
itself does not depend on it: the bracket and the tolerance of ``decreasing_root`` do)."""


class NegativeBinomial(Coordinatewise, DistributionEmission):
    """Negative binomial counts with means ``rate`` and dispersions ``dispersion``.

    Parameters ``(K,)`` each, or ``(K, D)`` for ``D`` independent count channels. Prior:
    ``rate ~ Gamma(prior.rate_shape, prior.rate_rate)`` (as Poisson rates),
    ``dispersion ~ Gamma(prior.dispersion_shape, prior.dispersion_rate)``.

    Parameters
    ----------
    dim : int, optional
        Number of independent count channels ``D``; omit for univariate counts.
    """

    family = "negative_binomial"
    param_names = ("rate", "dispersion")
    integer_valued = True
    hyperparameter_names = ("rate_shape", "rate_rate", "dispersion_shape", "dispersion_rate")

    def param_constraints(self) -> dict[str, Constraint]:
        """Both positive."""
        return {"rate": constraints.positive, "dispersion": constraints.positive}

    # ------------------------------------------------------------------ prior
    def priors(
        self, hyperparameters: Params, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """Gamma priors of ``rate`` and ``dispersion``."""
        result = {}
        for name, (shape, rate) in {
            "rate": ("rate_shape", "rate_rate"),
            "dispersion": ("dispersion_shape", "dispersion_rate"),
        }.items():
            a, b = (self._unshaped(hyperparameters[key].to(dtype)) for key in (shape, rate))
            result[name] = dist.Gamma(a, b).to_event(a.dim())
        return result

    # ------------------------------------------------------------------ law
    def law(self, params: Params) -> dist.TorchDistribution:
        """``NegativeBinomial(total_count=r, logits=log(rate / r))`` per channel."""
        rate, dispersion = self._columns(params)
        logits = torch.log(rate) - torch.log(dispersion)
        return dist.NegativeBinomial(total_count=dispersion, logits=logits).to_event(1)

    def location(self, params: Params) -> torch.Tensor:
        """Mean of the first channel: ``(..., K)``."""
        return self._columns(params)[0][..., 0]

    def with_covariates(self, names: tuple[str, ...]) -> Emission:
        """The negative binomial log-link regression on ``names`` (univariate counts only)."""
        if self._dim is not None:
            raise OptionError(
                "emission_covariates", f"a regression of univariate counts only, not {self!r}"
            )
        return NegativeBinomialRegression(names)

    def start_from_data(
        self, data: Sequences, num_states: int, generator: torch.Generator, dtype: torch.dtype
    ) -> Params:
        """Means as Poisson rates are started (data quantiles, plus ``0.5 + U(0, 1)``)."""
        return Poisson(self._dim).start_from_data(data, num_states, generator, dtype)

    # ------------------------------------------------------------------ point estimation
    def weighted_statistics(self, data: Sequences, weights: torch.Tensor) -> Params:
        """Weighted counts of each distinct value: ``values (U,)``, ``counts (K, D, U)``."""

        def build() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            flat = data.values.reshape(-1, data.dim)
            rows, columns = torch.nonzero(data.observed.reshape(-1, data.dim), as_tuple=True)
            values, index = torch.unique(flat[rows, columns], return_inverse=True)
            return values.to(STATISTICS_DTYPE), rows, columns * values.numel() + index

        values, rows, cells = data.cached((_STATISTICS_CACHE, "distinct_counts"), build)
        num_states = weights.shape[1]
        counts = torch.zeros(self.dim * values.numel(), num_states, dtype=STATISTICS_DTYPE)
        counts.index_add_(0, cells, weights[rows])
        counts = counts.T.reshape(num_states, self.dim, values.numel())
        return {"values": values, "counts": counts}

    def maximize(
        self,
        statistics: Params,
        hyperparameters: Params,
        previous: Params | None,
        use_prior: bool,
    ) -> Params:
        """Closed-form mean given ``r``, one-dimensional search over ``r`` (module notes).

        Means are at least :data:`~hmm_pyro.emissions.poisson.MIN_RATE`; ``r`` lies in
        ``[MIN_DISPERSION, MAX_DISPERSION]`` (ML of data no more spread than Poisson ends at
        the upper end). Without the prior, a channel without weight keeps its previous values
        (NaN when ``previous`` is ``None``).
        """
        values, counts = statistics["values"], statistics["counts"]  # (U,), (K, D, U)
        n_tensor = counts.sum(-1)
        values, counts = values.to(STATISTICS_DTYPE).numpy(), counts.numpy()
        n, total = counts.sum(-1), (counts * values).sum(-1)
        if use_prior:
            a, b, c, e = (
                hyperparameters[name].to(STATISTICS_DTYPE).expand_as(n_tensor).numpy()
                for name in self.hyperparameter_names
            )
        else:
            a, c = np.ones(n.shape), np.ones(n.shape)
            b, e = np.zeros(n.shape), np.zeros(n.shape)

        def mean(r: np.ndarray) -> np.ndarray:
            slope = r * (n + b) - (a - 1.0)
            free = np.maximum((total + a - 1.0) * r, 0.0)
            root = np.sqrt(slope * slope + 4.0 * b * free)
            # The positive root without cancellation: 2 C / (B + sqrt(.)) when B > 0.
            stable = 2.0 * free / np.where(slope > 0, slope + root, 1.0)
            other = (root - slope) / np.where(b > 0, 2.0 * b, 1.0)
            return np.maximum(np.where(slope > 0, stable, other), MIN_RATE)

        def slope_in_r(r: np.ndarray) -> np.ndarray:
            m = mean(r)
            digammas = special.digamma(values + r[..., None]) - special.digamma(r)[..., None]
            return (
                (counts * digammas).sum(-1)
                - n * np.log1p(m / r)
                + (n * m - total) / (r + m)
                + (c - 1.0) / r
                - e
            )

        def condition(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            value = slope_in_r(r)
            shifted = r * (1.0 + _SLOPE_STEP)
            return value, (slope_in_r(shifted) - value) / (shifted - r)

        old_rate = old_dispersion = torch.full_like(n_tensor, float("nan"))
        if previous is not None:
            old_rate, old_dispersion = (c.to(STATISTICS_DTYPE) for c in self._columns(previous))
        dispersion = decreasing_root(condition, MIN_DISPERSION, MAX_DISPERSION, old_dispersion)
        rate = torch.from_numpy(mean(dispersion.numpy()))
        if not use_prior:
            rate = torch.where(n_tensor > 0, rate, old_rate)
            dispersion = torch.where(n_tensor > 0, dispersion, old_dispersion)
        return self._params(rate, dispersion)
