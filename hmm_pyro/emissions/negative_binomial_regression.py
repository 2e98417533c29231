"""Negative binomial emission regression (log link): overdispersed counts, mean on covariates.

``y_t | z_t = k ~ NB(mean exp(x_t . w_k), dispersion r_k)``,
``P(y) = Gamma(y + r) / (Gamma(r) y!) (r / (r + m))**r (m / (r + m))**y`` with mean ``m`` and
variance ``m + m**2 / r`` (:class:`~hmm_pyro.NegativeBinomial`'s parameterisation).

Prior: the coefficients as :class:`~hmm_pyro.emissions.poisson_regression.PoissonRegression`'s
(the intercept Normal with the moments of ``log`` of a ``Gamma(rate_shape, rate_rate)`` mean,
slopes ``Normal(0, slope_scale)``, default 1), ``dispersion ~ Gamma(dispersion_shape,
dispersion_rate)`` as for ``NegativeBinomial``.

M-step (:meth:`NegativeBinomialRegression.maximize`): conditional maximisation cycles (ECM) to
convergence. Given ``r``, the log likelihood ``y eta - (y + r) log(r + e^eta)`` is concave in
``eta`` and so in ``w``: Newton's method with step halving
(:func:`~hmm_pyro.emissions.regression.newton_maximize`), gradient
``X'(u r (y - m) / (r + m)) - L (w - mu0)``, negative Hessian
``X' diag(u r m (y + r) / (r + m)**2) X + L``. Given ``w``, the derivative in ``r``,
``sum u [psi(y + r) - psi(r) + log(r / (r + m)) + (m - y) / (r + m)] + (c - 1) / r - e``,
decreases in ``r`` (each term does, and the prior's for shape ``c >= 1``): its root by
:func:`~hmm_pyro.emissions._roots.decreasing_root` in ``[MIN_DISPERSION, MAX_DISPERSION]``.

Distances: no closed form for two negative binomials; the Bhattacharyya coefficient at each
reference row is the sum of ``sqrt(p_i(y) p_j(y))`` over counts ``0 .. Y``, with ``Y`` the
largest mean plus 12 of its standard deviations (at most :data:`_MAX_SUPPORT`): what is left
out has probability below about ``1e-8`` for every law within that cap.
"""

from __future__ import annotations

import math

import numpy as np
import pyro.distributions as dist
import torch

from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.emissions._integers import MAX_DISPERSION, MIN_DISPERSION
from hmm_pyro.emissions._roots import decreasing_root
from hmm_pyro.emissions.poisson_regression import MAX_ETA, PoissonRegression
from hmm_pyro.emissions.regression import newton_maximize, per_row
from hmm_pyro.emissions.statistics import STATISTICS_DTYPE
from hmm_pyro.priors import Prior

__all__ = ["NegativeBinomialRegression"]

_ECM_CYCLES = 50
_ECM_RTOL = 1e-10
_SLOPE_STEP = 1e-6
"""Relative step of ``r`` for the forward difference of the ``r`` step's Newton slope."""
_MAX_SUPPORT = 100_000
"""Largest count summed over by the distance (beyond it the tail is not counted)."""


def _log_pmf(values: torch.Tensor, eta: torch.Tensor, dispersion: torch.Tensor) -> torch.Tensor:
    """``log NB(values | mean exp(eta), dispersion)``, all arguments broadcast."""
    log_r = torch.log(dispersion)
    log_sum = torch.logaddexp(log_r, eta.clamp(max=MAX_ETA))
    return (
        torch.lgamma(values + dispersion)
        - torch.lgamma(dispersion)
        - torch.lgamma(values + 1.0)
        + dispersion * (log_r - log_sum)
        + values * (eta - log_sum)
    )


class NegativeBinomialRegression(PoissonRegression):
    """Negative binomial counts whose log mean is a regression on covariates.

    Parameters ``w (K, 1 + P)`` (dimension ``emission_term``) and ``dispersion (K,)``;
    univariate counts; covariates from the data's :class:`~hmm_pyro.Covariates`.

    Parameters
    ----------
    covariates : sequence of str
        The covariates of the log mean, after the intercept.
    slope_scale : float, optional
        Prior standard deviation of the slopes (default 1).

    Examples
    --------
    >>> from hmm_pyro.emissions.negative_binomial_regression import NegativeBinomialRegression
    >>> NegativeBinomialRegression(["hour"]).param_shapes(2)
    {'w': (2, 2), 'dispersion': (2,)}
    """

    family = "negative_binomial_regression"
    param_names = ("w", "dispersion")
    positive_params = ("dispersion",)
    hyperparameter_names = ("rate_shape", "rate_rate", "dispersion_shape", "dispersion_rate")

    def prior_distributions(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """Normal coefficients and Gamma dispersions (module notes)."""
        hyper = self.prior_hyperparameters(prior, num_states, dtype)
        loc, scale = self._coefficients_of(hyper)
        shape, rate = hyper["dispersion_shape"][:, 0], hyper["dispersion_rate"][:, 0]
        return {
            "w": dist.Normal(loc, scale).to_event(2),
            "dispersion": dist.Gamma(shape, rate).to_event(1),
        }

    # ------------------------------------------------------------------ point estimation
    def maximize(
        self,
        statistics: Params,
        hyperparameters: Params,
        previous: Params | None,
        use_prior: bool,
    ) -> Params:
        """ECM cycles: Newton in ``w`` given ``r``, the root in ``r`` given ``w`` (module notes).

        Start: ``previous``, else the Poisson regression's M-step and ``r = 1``. Without the
        prior, a state without weight keeps its start (NaN when ``previous`` is ``None``).
        """
        design, counts, weights = statistics["design"], statistics["counts"], statistics["weights"]
        num, terms = weights.shape[1], design.shape[1]
        has_data = weights.sum(0) > 0
        if use_prior:
            loc, scale = self._coefficients_of(hyperparameters)
            loc = loc.to(STATISTICS_DTYPE).expand(num, terms)
            precision = scale.to(STATISTICS_DTYPE).expand(num, terms) ** -2
            c = hyperparameters["dispersion_shape"][:, 0].to(STATISTICS_DTYPE).expand(num)
            e = hyperparameters["dispersion_rate"][:, 0].to(STATISTICS_DTYPE).expand(num)
        else:
            loc = precision = torch.zeros(num, terms, dtype=STATISTICS_DTYPE)
            c, e = torch.ones(num, dtype=STATISTICS_DTYPE), torch.zeros(num, dtype=STATISTICS_DTYPE)
        if previous is not None:
            w = previous["w"].to(STATISTICS_DTYPE).clone()
            r = previous["dispersion"].to(STATISTICS_DTYPE).clone()
        else:
            w = super().maximize(statistics, hyperparameters, None, use_prior)["w"]
            w = torch.where(torch.isfinite(w), w, 0.0)
            r = torch.ones(num, dtype=STATISTICS_DTYPE)
        start_w, start_r = w.clone(), r.clone()
        y = counts[:, None]

        def objective(w: torch.Tensor) -> torch.Tensor:
            eta = (design @ w.T).clamp(max=MAX_ETA)
            log_sum = torch.logaddexp(torch.log(r), eta)
            fit = (weights * (y * eta - (y + r) * log_sum)).sum(0)
            return fit - 0.5 * (precision * (w - loc) ** 2).sum(-1)

        def derivatives(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            m = (design @ w.T).clamp(max=MAX_ETA).exp()  # (M, K)
            gradient = (weights * r * (y - m) / (r + m)).T @ design - precision * (w - loc)
            scale = weights * r * m * (y + r) / (r + m) ** 2
            curvature = torch.einsum("mk,mq,mr->kqr", scale, design, design)
            return gradient, curvature + torch.diag_embed(precision)

        def slope_in_r(r: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
            """The derivative in ``r (..., K)`` (leading axes: the root finder's ends)."""
            each = r.unsqueeze(-2)  # (..., 1, K) against the steps' (M, K)
            digammas = torch.digamma(y + each) - torch.digamma(each)
            terms = digammas - torch.log1p(m / each) + (m - y) / (each + m)
            return (weights * terms).sum(-2) + (c - 1.0) / r - e

        for _ in range(_ECM_CYCLES):
            new_w = newton_maximize(w, objective, derivatives)
            m = (design @ new_w.T).clamp(max=MAX_ETA).exp()

            def condition(r: np.ndarray, m: torch.Tensor = m) -> tuple[np.ndarray, np.ndarray]:
                at = torch.from_numpy(r)
                value = slope_in_r(at, m)
                shifted = at * (1.0 + _SLOPE_STEP)
                slope = (slope_in_r(shifted, m) - value) / (shifted - at)
                return value.numpy(), slope.numpy()

            new_r = decreasing_root(condition, MIN_DISPERSION, MAX_DISPERSION, r)
            change = max(
                float(((new_w - w).abs() / w.abs().clamp(min=1.0)).max()),
                float(((new_r - r).abs() / r).max()),
            )
            w, r = new_w, new_r
            if change <= _ECM_RTOL:
                break
        if not use_prior:
            fallback_w = start_w if previous is not None else torch.full_like(w, float("nan"))
            fallback_r = start_r if previous is not None else torch.full_like(r, float("nan"))
            w = torch.where(has_data[:, None], w, fallback_w)
            r = torch.where(has_data, r, fallback_r)
        return {"w": w, "dispersion": r}

    def pooled_params(self, data: Sequences) -> Params:
        """The maximum-likelihood regression and dispersion of all observed counts."""
        weights = data.mask.reshape(-1, 1).to(STATISTICS_DTYPE)
        return self.maximize(self.weighted_statistics(data, weights), {}, None, use_prior=False)

    def start_from_data(
        self, data: Sequences, num_states: int, generator: torch.Generator, dtype: torch.dtype
    ) -> Params:
        """The Poisson regression's start; dispersions at the pooled fit's."""
        start = super().start_from_data(data, num_states, generator, dtype)
        pooled = self.pooled_params(data)["dispersion"]
        return {**start, "dispersion": pooled.expand(num_states).to(dtype).clone()}

    # ------------------------------------------------------------------ likelihood
    def _log_density(self, params: Params, eta: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return _log_pmf(values, eta, per_row(params["dispersion"], eta))

    def _law(self, eta: torch.Tensor, dispersion: torch.Tensor) -> dist.TorchDistribution:
        logits = eta.clamp(max=MAX_ETA) - torch.log(dispersion)
        return dist.NegativeBinomial(total_count=dispersion, logits=logits)

    def _step_law(
        self, params: Params, states: torch.Tensor, eta: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        law = self._law(eta.unsqueeze(-1), params["dispersion"][states].unsqueeze(-1))
        return law.mask(observed).to_event(1)

    def _draw(
        self, params: Params, states: torch.Tensor, eta: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Gamma-Poisson draws; the gamma from torch's generator seeded from ``generator``."""
        dispersion = params["dispersion"][states]
        mean = eta.clamp(max=MAX_ETA).exp()
        seed = int(torch.randint(2**62, (), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            rates = dist.Gamma(dispersion, dispersion / mean).sample()
        return torch.poisson(rates, generator=generator)

    def _row_bhattacharyya(self, params: Params, eta: torch.Tensor) -> torch.Tensor:
        """``sum_y sqrt(p_i(y) p_j(y))`` per row over ``y = 0 .. Y`` (module notes)."""
        dispersion = per_row(params["dispersion"], eta)  # (..., 1, K)
        mean = eta.clamp(max=MAX_ETA).exp()
        spread = (mean + mean * mean / dispersion).sqrt()
        top = float((mean + 12.0 * spread).max())
        support = torch.arange(min(math.ceil(top) + 1, _MAX_SUPPORT + 1), dtype=eta.dtype)
        half = 0.5 * _log_pmf(support, eta.unsqueeze(-1), dispersion.unsqueeze(-1))
        return torch.logsumexp(half.unsqueeze(-2) + half.unsqueeze(-3), -1).exp()

    def _check_param_values(self, name: str, value: torch.Tensor) -> None:
        if name == "dispersion" and (value <= 0).any():
            raise ValueError(
                f"params['dispersion']: expected dispersions > 0, got {value.min().item()}"
            )
