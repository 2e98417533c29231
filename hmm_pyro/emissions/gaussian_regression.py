"""Gaussian emission regression (Markov-switching regression): ``y_t ~ N(x_t . w_k, sigma_k)``.

Gaussian M-step (:meth:`GaussianRegression.maximize`): weighted least squares with the state
weights. With the Normal coefficient prior and the inverse-gamma variance prior there is no joint
closed-form maximiser, so conditional maximisation cycles (ECM, as
:mod:`~hmm_pyro.emissions.gaussian`): ``w | v`` is the ridge-like solve
``(X'WX / v + L) w = X'Wy / v + L m`` (``L`` the prior precisions, ``m`` the prior means), then
``v | w = (S + 2 b) / (n + 2 a + 1)`` with ``S`` the weighted residual sum of squares (the site
is ``sigma``, whose density adds ``log sigma``). Without the prior one cycle is exact:
``w = (X'WX)^+ X'Wy``, ``v = S / n``.
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
from pyro.distributions.transforms import PowerTransform

from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.emissions.regression import Regression, per_row
from hmm_pyro.emissions.statistics import STATISTICS_DTYPE
from hmm_pyro.priors import Prior

__all__ = ["GaussianRegression"]

_HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)
_ECM_CYCLES = 100
_ECM_RTOL = 1e-12
_MIN_START_SCALE = 1e-3
"""Smallest standard deviation of a data-driven start (data with no spread)."""


class GaussianRegression(Regression):
    """Gaussian emissions whose mean is a regression: ``y_t | z_t = k ~ N(x_t . w_k, sigma_k)``.

    Parameters ``w (K, 1 + P)`` (dimension ``emission_term``: ``intercept``, then the
    covariates) and ``sigma (K,)``. Univariate observations; the covariates are read from the
    data's :class:`~hmm_pyro.Covariates` (standardised by default, so the intercept is the
    state's mean at the covariates' means and a slope the change of the mean per standard
    deviation of its covariate).

    Prior: ``w[k, 0] ~ Normal(prior.mu_loc, prior.mu_scale)`` (the intercept plays the role of
    :class:`~hmm_pyro.Gaussian`'s ``mu``), each slope ``w[k, p] ~ Normal(0, slope_scale)`` with
    ``slope_scale`` defaulting to ``prior.mu_scale``, and ``sigma[k]**2 ~
    InverseGamma(prior.variance_shape, prior.variance_scale)`` as for ``Gaussian``
    (docs/covariates.md#emission-regressions).

    Parameters
    ----------
    covariates : sequence of str
        The covariates of the mean, after the intercept.
    slope_scale : float, optional
        Prior standard deviation of the slopes (default: ``prior.mu_scale``).

    Examples
    --------
    >>> from hmm_pyro.emissions.gaussian_regression import GaussianRegression
    >>> GaussianRegression(["hour"]).param_shapes(3)
    {'w': (3, 2), 'sigma': (3,)}
    """

    family = "gaussian_regression"
    param_names = ("w", "sigma")
    positive_params = ("sigma",)
    hyperparameter_names = ("mu_loc", "mu_scale", "variance_shape", "variance_scale")

    # ------------------------------------------------------------------ prior
    def prior_hyperparameters(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, torch.Tensor]:
        """The Gaussian fields, each ``(K, 1)``."""
        return {
            name: prior.resolve_emission(name, num_states, 1, dtype)
            for name in self.hyperparameter_names
        }

    def _coefficients_of(self, hyper: Params) -> tuple[torch.Tensor, torch.Tensor]:
        return self._coefficient_prior(hyper["mu_loc"], hyper["mu_scale"], hyper["mu_scale"])

    def prior_distributions(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """Normal coefficients and inverse-gamma variances (reported as ``sigma``)."""
        hyper = self.prior_hyperparameters(prior, num_states, dtype)
        loc, scale = self._coefficients_of(hyper)
        half = torch.tensor(0.5, dtype=dtype)
        variance = dist.InverseGamma(hyper["variance_shape"][:, 0], hyper["variance_scale"][:, 0])
        sigma = dist.TransformedDistribution(variance, [PowerTransform(half)])
        return {"w": dist.Normal(loc, scale).to_event(2), "sigma": sigma.to_event(1)}

    # ------------------------------------------------------------------ point estimation
    def weighted_statistics(self, data: Sequences, weights: torch.Tensor) -> Params:
        """``n (K)``, ``xx (K, Q, Q)``, ``xy (K, Q)``, ``yy (K)`` of the values less their mean.

        With ``u = w o`` (``o``: observed): ``n = sum u``, ``xx = sum u x x'``,
        ``xy = sum u x (y - shift)``, ``yy = sum u (y - shift)**2``; ``shift`` (scalar tensor)
        keeps the residual sum of squares from cancelling; it is added back to the intercept.
        """
        design, values, observed = self._flat(data)
        count = observed.sum()
        shift = (values * observed).sum() / count.clamp(min=1.0)
        centred = (values - shift) * observed
        weighted = weights * observed[:, None]  # (M, K)
        return {
            "n": weighted.sum(0),
            "xx": torch.einsum("mk,mq,mr->kqr", weighted, design, design),
            "xy": torch.einsum("mk,mq,m->kq", weighted, design, centred),
            "yy": weighted.T @ (centred * centred),
            "shift": shift,
        }

    @staticmethod
    def _spread(statistics: Params, w: torch.Tensor) -> torch.Tensor:
        """Weighted residual sum of squares ``S (K,)`` of coefficients ``w (K, Q)``."""
        quadratic = torch.einsum("kq,kqr,kr->k", w, statistics["xx"], w)
        return (statistics["yy"] - 2.0 * (w * statistics["xy"]).sum(-1) + quadratic).clamp(min=0.0)

    def maximize(
        self,
        statistics: Params,
        hyperparameters: Params,
        previous: Params | None,
        use_prior: bool,
    ) -> Params:
        """Weighted least squares; with the prior, ECM cycles to the maximiser (module notes).

        Without the prior, a state without weight keeps its previous values (NaN when
        ``previous`` is ``None``). With the prior and no ``previous``, the cycles start from the
        least-squares fit, or from the prior means and ``variance_scale`` where it is undefined.
        """
        n, xx, xy, shift = statistics["n"], statistics["xx"], statistics["xy"], statistics["shift"]
        has_data = n > 0
        w_ml = (torch.linalg.pinv(xx) @ xy.unsqueeze(-1)).squeeze(-1)
        var_ml = self._spread(statistics, w_ml) / torch.where(has_data, n, 1.0)
        if previous is None:
            old_w = torch.full_like(w_ml, float("nan"))
            old_var = torch.full_like(n, float("nan"))
        else:
            old_w = previous["w"].to(STATISTICS_DTYPE).clone()
            old_w[..., 0] -= shift
            old_var = previous["sigma"].to(STATISTICS_DTYPE) ** 2
        if not use_prior:
            w = torch.where(has_data[:, None], w_ml, old_w)
            var = torch.where(has_data, var_ml, old_var)
            return self._shifted(w, var, shift)
        loc, scale = self._coefficients_of(hyperparameters)
        loc = loc.to(STATISTICS_DTYPE).expand_as(w_ml).clone()
        loc[..., 0] -= shift
        precision = torch.diag_embed(scale.to(STATISTICS_DTYPE).expand_as(w_ml) ** -2)
        shape = hyperparameters["variance_shape"][:, 0].to(STATISTICS_DTYPE)
        rate = hyperparameters["variance_scale"][:, 0].to(STATISTICS_DTYPE)
        if previous is None:
            w = torch.where(has_data[:, None] & torch.isfinite(w_ml), w_ml, loc)
            var = torch.where(has_data & (var_ml > 0), var_ml, rate.expand_as(n))
        else:
            w, var = old_w, old_var
        for _ in range(_ECM_CYCLES):
            inverse = (1.0 / var)[:, None, None]
            system = xx * inverse + precision
            target = xy * inverse[..., 0] + (precision @ loc.unsqueeze(-1)).squeeze(-1)
            new_w = torch.linalg.solve(system, target)
            new_var = (self._spread(statistics, new_w) + 2.0 * rate) / (n + 2.0 * shape + 1.0)
            done = torch.allclose(new_w, w, rtol=_ECM_RTOL, atol=0) and torch.allclose(
                new_var, var, rtol=_ECM_RTOL, atol=0
            )
            w, var = new_w, new_var
            if done:
                break
        return self._shifted(w, var, shift)

    @staticmethod
    def _shifted(w: torch.Tensor, var: torch.Tensor, shift: torch.Tensor) -> Params:
        w = w.clone()
        w[..., 0] += shift
        return {"w": w, "sigma": var.sqrt()}

    def pooled_params(self, data: Sequences) -> Params:
        """The least-squares fit of all observed steps (``sigma`` floored at ``1e-12``)."""
        weights = data.mask.reshape(-1, 1).to(STATISTICS_DTYPE)
        fit = self.maximize(self.weighted_statistics(data, weights), {}, None, use_prior=False)
        return {"w": fit["w"], "sigma": fit["sigma"].clamp(min=1e-12)}

    def start_from_data(
        self, data: Sequences, num_states: int, generator: torch.Generator, dtype: torch.dtype
    ) -> Params:
        """The pooled slopes; intercepts at random quantiles of the pooled fit's residuals.

        Intercepts are the pooled intercept plus residual quantiles at ``K`` sorted uniform
        levels, jittered by a tenth of the scale; scales are the residual spread over ``K``
        (at least :data:`_MIN_START_SCALE`).
        """
        pooled = self.pooled_params(data)
        design, values, observed = self._flat(data)
        keep = observed > 0
        residuals = values[keep] - design[keep] @ pooled["w"][0]
        levels = torch.sort(torch.rand(num_states, generator=generator, dtype=torch.float64)).values
        scale = (residuals.std(correction=0) / num_states).clamp(min=_MIN_START_SCALE)
        w = pooled["w"].expand(num_states, -1).clone()
        w[:, 0] += torch.quantile(residuals, levels)
        w[:, 0] += torch.randn(num_states, generator=generator, dtype=torch.float64) * scale * 0.1
        return {"w": w.to(dtype), "sigma": scale.expand(num_states).to(dtype).clone()}

    def location(self, params: Params) -> torch.Tensor:
        """The intercept (the mean at the covariates' means): ``(..., K)``."""
        return params["w"][..., 0]

    # ------------------------------------------------------------------ likelihood
    def _log_density(self, params: Params, eta: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        sigma = per_row(params["sigma"], eta)
        z = (values - eta) / sigma
        return -0.5 * z * z - torch.log(sigma) - _HALF_LOG_TWO_PI

    def _step_law(
        self, params: Params, states: torch.Tensor, eta: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        law = dist.Normal(eta.unsqueeze(-1), params["sigma"][states].unsqueeze(-1))
        return law.mask(observed).to_event(1)

    def _draw(
        self, params: Params, states: torch.Tensor, eta: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        noise = torch.randn(eta.shape, dtype=eta.dtype, generator=generator)
        return eta + params["sigma"][states] * noise

    def _row_bhattacharyya(self, params: Params, eta: torch.Tensor) -> torch.Tensor:
        """Closed form for two normals per row (as :meth:`~hmm_pyro.Gaussian.bhattacharyya`)."""
        sigma = params["sigma"].unsqueeze(-2)  # (..., 1, K)
        var_sum = sigma.pow(2).unsqueeze(-1) + sigma.pow(2).unsqueeze(-2)  # (..., 1, K, K)
        product = sigma.unsqueeze(-1) * sigma.unsqueeze(-2)
        gap = eta.unsqueeze(-1) - eta.unsqueeze(-2)  # (..., R, K, K)
        return (0.5 * torch.log(2 * product / var_sum) - gap.pow(2) / (4 * var_sum)).exp()

    # ------------------------------------------------------------------ parameters
    def _check_param_values(self, name: str, value: torch.Tensor) -> None:
        if name == "sigma" and (value <= 0).any():
            raise ValueError(
                f"params['sigma']: expected standard deviations > 0, got {value.min().item()}"
            )
