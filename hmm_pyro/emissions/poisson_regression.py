"""Poisson emission regression (log link): ``y_t | z_t = k ~ Poisson(exp(x_t . w_k))``.

Prior: the intercept ``w[k, 0]`` (the log rate at the covariates' means) is Normal with the mean
and variance of ``log rate`` under :class:`~hmm_pyro.Poisson`'s ``Gamma(rate_shape, rate_rate)``
prior (``digamma(a) - log(b)`` and ``trigamma(a)``), so that the two families put the same
first two moments on a state's log rate and :class:`~hmm_pyro.Prior`'s fields mean the same;
each slope (the change of the log rate per standard deviation of its covariate) is
``Normal(0, slope_scale)``, default 1: a rate multiplied by ``e`` per standard deviation is
one prior standard deviation away (docs/covariates.md#emission-regressions).

M-step (:meth:`PoissonRegression.maximize`): no closed form; per state, Newton's method on the
weighted log likelihood plus the log prior, ``g = X'(u (y - mu)) - L (w - m)``,
``H = -X' diag(u mu) X - L`` (``u`` the state weights, ``mu = exp(X w)``), with step halving
so that no step decreases the objective
(:func:`~hmm_pyro.emissions.regression.newton_maximize`). The objective is concave, so this is
its maximiser. Without the prior a state whose weighted counts are all zero has no maximiser
(its intercept goes to ``-inf``); the steps stop at the cap with a finite, very small rate.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch

from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.emissions._integers import check_counts
from hmm_pyro.emissions.regression import Regression, newton_maximize
from hmm_pyro.emissions.statistics import STATISTICS_DTYPE
from hmm_pyro.priors import Prior

__all__ = ["MAX_ETA", "PoissonRegression"]

_DEFAULT_SLOPE_SCALE = 1.0
MAX_ETA = 700.0
"""Largest linear predictor exponentiated (``exp(700)`` is near float64's largest value)."""


class PoissonRegression(Regression):
    """Poisson counts whose log rate is a regression on covariates.

    Parameter ``w (K, 1 + P)`` (dimension ``emission_term``: ``intercept``, then the
    covariates); univariate counts; covariates from the data's :class:`~hmm_pyro.Covariates`.

    Parameters
    ----------
    covariates : sequence of str
        The covariates of the log rate, after the intercept.
    slope_scale : float, optional
        Prior standard deviation of the slopes (default 1).

    Examples
    --------
    >>> from hmm_pyro.emissions.poisson_regression import PoissonRegression
    >>> PoissonRegression(["hour"]).param_shapes(2)
    {'w': (2, 2)}
    """

    family = "poisson_regression"
    param_names = ("w",)
    integer_valued = True
    hyperparameter_names = ("rate_shape", "rate_rate")

    def validate_data(self, data: Sequences) -> None:
        """Non-negative integer counts (as :class:`~hmm_pyro.Poisson`) and the covariates."""
        super().validate_data(data)
        check_counts(data, repr(self))

    # ------------------------------------------------------------------ prior
    def prior_hyperparameters(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, torch.Tensor]:
        """``rate_shape`` and ``rate_rate``, each ``(K, 1)``."""
        return {
            name: prior.resolve_emission(name, num_states, 1, dtype)
            for name in self.hyperparameter_names
        }

    def _coefficients_of(self, hyper: Params) -> tuple[torch.Tensor, torch.Tensor]:
        shape, rate = hyper["rate_shape"], hyper["rate_rate"]
        loc = torch.digamma(shape) - torch.log(rate)
        scale = torch.polygamma(1, shape).sqrt()
        return self._coefficient_prior(loc, scale, torch.tensor(_DEFAULT_SLOPE_SCALE))

    def prior_distributions(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """Independent Normal coefficients (module notes)."""
        loc, scale = self._coefficients_of(self.prior_hyperparameters(prior, num_states, dtype))
        return {"w": dist.Normal(loc, scale).to_event(2)}

    # ------------------------------------------------------------------ point estimation
    def weighted_statistics(self, data: Sequences, weights: torch.Tensor) -> Params:
        """The observed steps' design ``(M, Q)`` and counts ``(M,)``, and weights ``u (M, K)``.

        No fixed-size sufficient statistics exist for a log-link regression: the M-step needs
        every step (steps not observed have weight zero).
        """
        design, values, observed = self._flat(data)
        keep = observed > 0
        return {
            "design": design[keep],
            "counts": values[keep],
            "weights": weights[keep].to(STATISTICS_DTYPE),
        }

    @staticmethod
    def _objective(
        w: torch.Tensor, statistics: Params, loc: torch.Tensor, precision: torch.Tensor
    ) -> torch.Tensor:
        """Weighted log likelihood (without ``log y!``) plus log prior, per state ``(K,)``."""
        eta = (statistics["design"] @ w.T).clamp(max=MAX_ETA)  # (M, K)
        fit = (statistics["weights"] * (statistics["counts"][:, None] * eta - eta.exp())).sum(0)
        return fit - 0.5 * (precision * (w - loc) ** 2).sum(-1)

    def maximize(
        self,
        statistics: Params,
        hyperparameters: Params,
        previous: Params | None,
        use_prior: bool,
    ) -> Params:
        """Newton's method with step halving, per state (module notes).

        A state without weight keeps its previous coefficients (without the prior; NaN when
        ``previous`` is ``None``) or goes to the prior mode (with it). The start is
        ``previous``, else the log of the state's weighted mean count (plus 0.5) and zero slopes.
        """
        design, counts, weights = statistics["design"], statistics["counts"], statistics["weights"]
        num, terms = weights.shape[1], design.shape[1]
        total = weights.sum(0)
        has_data = total > 0
        if use_prior:
            loc, scale = self._coefficients_of(hyperparameters)
            loc = loc.to(STATISTICS_DTYPE).expand(num, terms)
            precision = scale.to(STATISTICS_DTYPE).expand(num, terms) ** -2
        else:
            loc = torch.zeros(num, terms, dtype=STATISTICS_DTYPE)
            precision = torch.zeros(num, terms, dtype=STATISTICS_DTYPE)
        if previous is not None:
            w = previous["w"].to(STATISTICS_DTYPE).clone()
        else:
            w = torch.zeros(num, terms, dtype=STATISTICS_DTYPE)
            mean = (weights * counts[:, None]).sum(0) / torch.where(has_data, total, 1.0)
            w[:, 0] = torch.log(mean + 0.5)
            if use_prior:
                w = torch.where(has_data[:, None], w, loc)
        start = w.clone()

        def derivatives(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            mu = (design @ w.T).clamp(max=MAX_ETA).exp()  # (M, K)
            gradient = ((weights * (counts[:, None] - mu)).T @ design) - precision * (w - loc)
            curvature = torch.einsum("mk,mq,mr->kqr", weights * mu, design, design)
            return gradient, curvature + torch.diag_embed(precision)

        w = newton_maximize(
            w, lambda w: self._objective(w, statistics, loc, precision), derivatives
        )
        if not use_prior:
            w = torch.where(has_data[:, None], w, start)
        return {"w": w}

    def pooled_params(self, data: Sequences) -> Params:
        """The maximum-likelihood regression of all observed counts (one state)."""
        weights = data.mask.reshape(-1, 1).to(STATISTICS_DTYPE)
        return self.maximize(self.weighted_statistics(data, weights), {}, None, use_prior=False)

    def start_from_data(
        self, data: Sequences, num_states: int, generator: torch.Generator, dtype: torch.dtype
    ) -> Params:
        """The pooled slopes; log rates at random quantiles of the counts plus ``0.5 + U(0, 1)``.

        Intercepts are ``log`` of those rates (as :class:`~hmm_pyro.Poisson`'s start), moved by
        the pooled intercept's offset from the log mean count.
        """
        pooled = self.pooled_params(data)["w"][0]
        _, values, observed = self._flat(data)
        counts = values[observed > 0]
        levels = torch.sort(torch.rand(num_states, generator=generator, dtype=torch.float64)).values
        rates = torch.quantile(counts, levels) + 0.5
        rates = rates + torch.rand(num_states, generator=generator, dtype=torch.float64)
        w = pooled.expand(num_states, -1).clone()
        w[:, 0] = torch.log(rates) + pooled[0] - torch.log(counts.mean() + 0.5)
        return {"w": w.to(dtype)}

    def location(self, params: Params) -> torch.Tensor:
        """The rate at the covariates' means, ``exp(intercept)``: ``(..., K)``."""
        return params["w"][..., 0].exp()

    # ------------------------------------------------------------------ likelihood
    def _log_density(self, params: Params, eta: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        log_factorial = torch.lgamma(values + 1.0)
        return values * eta - eta.clamp(max=MAX_ETA).exp() - log_factorial

    def _step_law(
        self, params: Params, states: torch.Tensor, eta: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        law = dist.Poisson(eta.unsqueeze(-1).clamp(max=MAX_ETA).exp())
        return law.mask(observed).to_event(1)

    def _draw(
        self, params: Params, states: torch.Tensor, eta: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        return torch.poisson(eta.clamp(max=MAX_ETA).exp(), generator=generator)

    def _row_bhattacharyya(self, params: Params, eta: torch.Tensor) -> torch.Tensor:
        """``exp(-(sqrt(rate_i) - sqrt(rate_j))**2 / 2)`` per row."""
        root = (0.5 * eta.clamp(max=MAX_ETA)).exp()  # (..., R, K)
        return (-0.5 * (root.unsqueeze(-1) - root.unsqueeze(-2)) ** 2).exp()

    def _check_param_values(self, name: str, value: torch.Tensor) -> None:
        """Coefficients are any finite numbers (checked by the caller)."""
