"""Emission regressions (Markov-switching regressions): a state's law depends on covariates.

State ``k`` emits ``y_t`` from a law whose location is a linear predictor ``eta_tk = x_t . w_k``
of the step's covariates ``x_t = (1, x_t1, ..., x_tP)`` (an intercept, then the named columns
of the data's :class:`~hmm_pyro.Covariates`, standardised by default). :class:`Regression`
holds what the families share: the covariate names, the design matrix read from the data, the
ArviZ dimension ``emission_term`` (named ``intercept`` then the covariates), the configuration,
the coefficient prior and the distances between states. The families:

- :class:`GaussianRegression`: ``y_t | z_t = k ~ Normal(x_t . w_k, sigma_k)`` (this module);
- :class:`~hmm_pyro.emissions.poisson_regression.PoissonRegression`: log link;
- :class:`~hmm_pyro.emissions.categorical_regression.CategoricalRegression`: multinomial
  logit (the GLM-HMM).

Distances between states (:meth:`Regression.bhattacharyya`): a state's law is a function of the
covariates, so two states are the same law only if they agree at every covariate row. The
coefficient is the mean Bhattacharyya coefficient over ``2 P + 1`` reference rows on the
standardised scale: the covariates' means (``x = 0``) and one standard deviation either side
along each covariate (``x = +-e_p``). Those rows span the design space, so the average is 1
exactly when the states' coefficient vectors (and dispersions) agree, which is what the
collapse check asks; and it weighs a difference of slopes by the change one standard deviation
of the covariate makes to the law, on the scale of the data's own covariates, not by the raw
size of the coefficients. It needs no data, so that label-free summaries of posterior draws
(:func:`hmm_pyro.starts.min_separation`, the collapse check) can call it as for other families.

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
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import pyro.distributions as dist
import torch
from pyro.distributions.transforms import PowerTransform

from hmm_pyro._types import Params
from hmm_pyro._validation import describe
from hmm_pyro.covariates import INTERCEPT, Covariates
from hmm_pyro.data import Sequences
from hmm_pyro.emissions.base import Emission
from hmm_pyro.emissions.statistics import STATISTICS_DTYPE
from hmm_pyro.priors import Prior

__all__ = ["GaussianRegression", "Regression", "newton_maximize", "reference_rows"]

_HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)
_ECM_CYCLES = 100
_ECM_RTOL = 1e-12
_MIN_START_SCALE = 1e-3
"""Smallest standard deviation of a data-driven start (data with no spread)."""
_NEWTON_STEPS = 100
_NEWTON_RTOL = 1e-12
_HALVINGS = 40
_DESIGN_CACHE = "_emission_designs"
"""Attribute of a :class:`~hmm_pyro.Covariates` under which its design matrices are kept."""


def reference_rows(count: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(2 P + 1, 1 + P)`` design rows: the covariates' means, then ``+-1`` sd along each."""
    rows = torch.zeros(2 * count + 1, count + 1, dtype=dtype)
    rows[:, 0] = 1.0
    for p in range(count):
        rows[1 + 2 * p, 1 + p] = 1.0
        rows[2 + 2 * p, 1 + p] = -1.0
    return rows


def newton_maximize(
    start: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    derivatives: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
) -> torch.Tensor:
    """Maximise a concave objective per state by Newton's method with step halving.

    Parameters
    ----------
    start : torch.Tensor
        ``(K, F)`` starting coefficients, one row per state.
    objective : callable
        ``(K, F) -> (K,)``: the value of each state's objective.
    derivatives : callable
        ``(K, F) -> ((K, F), (K, F, F))``: the gradient and the negative Hessian.

    Returns
    -------
    torch.Tensor
        ``(K, F)``: each step is halved (at most :data:`_HALVINGS` times) until it does not
        decrease the objective; iterations stop at relative change :data:`_NEWTON_RTOL` (at
        most :data:`_NEWTON_STEPS`). Where the maximum is at infinity (separable data without a
        prior) the result is the last finite iterate.
    """
    w, value = start, objective(start)
    for _ in range(_NEWTON_STEPS):
        gradient, curvature = derivatives(w)
        step = torch.linalg.lstsq(curvature, gradient.unsqueeze(-1)).solution.squeeze(-1)
        size = torch.ones(w.shape[0], dtype=w.dtype)
        for _ in range(_HALVINGS):
            trial = w + size[:, None] * step
            new_value = objective(trial)
            worse = ~(new_value >= value)
            if not bool(worse.any()):
                break
            size = torch.where(worse, size / 2, size)
        better = new_value >= value
        trial = torch.where(better[:, None], trial, w)
        change = (trial - w).abs().max() / w.abs().max().clamp(min=1.0)
        w, value = trial, torch.where(better, new_value, value)
        if float(change) <= _NEWTON_RTOL:
            break
    return w


def _per_row(value: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """A per-state ``(..., K)`` value shaped to broadcast against ``eta (..., *rows, K)``."""
    extra = eta.dim() - value.dim()
    return value.reshape(*value.shape[:-1], *([1] * extra), value.shape[-1])


def _check_names(names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise TypeError(f"covariates: expected a list of covariate names, got {describe(names)}")
    names = tuple(names)
    if not names:
        raise ValueError("covariates: expected at least one covariate name, got none")
    if not all(isinstance(item, str) and item != "" for item in names):
        raise TypeError(f"covariates: expected non-empty strings, got {describe(list(names))}")
    if len(set(names)) != len(names):
        raise ValueError(f"covariates: expected distinct names, got {list(names)}")
    if INTERCEPT in names:
        raise ValueError(f"covariates: {INTERCEPT!r} is always included; name covariates only")
    return names


def _check_scale(slope_scale: float | None) -> float | None:
    if slope_scale is None:
        return None
    if isinstance(slope_scale, bool) or not isinstance(slope_scale, (int, float)):
        raise TypeError(f"slope_scale: expected a number or None, got {describe(slope_scale)}")
    if not (math.isfinite(slope_scale) and slope_scale > 0):
        raise ValueError(f"slope_scale: expected a finite number > 0, got {slope_scale}")
    return float(slope_scale)


class Regression(Emission):
    """Base of the emission regressions: the covariates' design and the shared description.

    Parameters
    ----------
    covariates : sequence of str
        Names of the covariates (columns of the data's :class:`~hmm_pyro.Covariates`) the
        linear predictor uses, after an intercept.
    slope_scale : float, optional
        Prior standard deviation of each covariate's coefficient (family default if omitted).

    Attributes
    ----------
    coefficient_name : str
        The parameter holding the coefficients, with trailing axis ``emission_term``.
    """

    coefficient_name = "w"

    def __init__(self, covariates: Sequence[str], slope_scale: float | None = None) -> None:
        self.covariates = _check_names(covariates)
        self.slope_scale = _check_scale(slope_scale)

    @property
    def num_terms(self) -> int:
        """``1 + P``: the intercept and the covariates."""
        return 1 + len(self.covariates)

    @property
    def dim(self) -> int:
        """One (univariate observations)."""
        return 1

    def to_config(self) -> dict[str, Any]:
        """``{"family", "covariates", "slope_scale"}``."""
        return {
            "family": self.family,
            "covariates": list(self.covariates),
            "slope_scale": self.slope_scale,
        }

    def param_coords(self) -> dict[str, list[Any]]:
        """``emission_term``: ``intercept``, then the covariates."""
        return {"emission_term": [INTERCEPT, *self.covariates]}

    def entry_label(self, name: str, state: int, index: int) -> str:
        """``"w[state]:term"`` for a coefficient, ``"name[state]"`` otherwise."""
        if name == self.coefficient_name:
            return f"{name}[{state}]:{self.param_coords()['emission_term'][index]}"
        return f"{name}[{state}]"

    def with_covariates(self, names: tuple[str, ...]) -> Emission:
        """Already a regression: ``ValueError``."""
        raise ValueError(f"emission: {self!r} already depends on covariates")

    # ------------------------------------------------------------------ data
    def validate_data(self, data: Sequences) -> None:
        """Require univariate observations and covariates holding :attr:`covariates`."""
        self._check_dim(data)
        if data.covariates is None:
            raise ValueError(
                f"data: {self!r} needs covariates {list(self.covariates)} at every step; attach "
                "them with Sequences(..., covariates=Covariates(...))"
            )
        data.covariates.index(self.covariates, "covariates")

    def design(self, covariates: Covariates | None) -> torch.Tensor:
        """Design matrices ``(N, T_max, 1 + P)`` float64, intercept first (computed once)."""
        if not isinstance(covariates, Covariates):
            raise ValueError(
                f"covariates: {self!r} needs the covariates {list(self.covariates)} of the "
                f"sequences, got {describe(covariates)}"
            )
        cache = covariates.__dict__.setdefault(_DESIGN_CACHE, {})
        if self.covariates not in cache:
            columns = covariates.columns(self.covariates).to(torch.float64)
            ones = torch.ones_like(columns[..., :1])
            cache[self.covariates] = torch.cat([ones, columns], -1)
        return cache[self.covariates]

    def linear_predictor(self, params: Params, design: torch.Tensor) -> torch.Tensor:
        """``x . w_k`` at every row of ``design (*rows, 1 + P)``: ``(..., *rows, K)``."""
        coefficients = params[self.coefficient_name]
        flat = design.to(coefficients.dtype).reshape(-1, design.shape[-1])
        eta = torch.einsum("mq,...kq->...mk", flat, coefficients)
        return eta.reshape(*eta.shape[:-2], *design.shape[:-1], eta.shape[-1])

    def _flat(self, data: Sequences) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flattened steps: design ``(M, Q)``, filled values ``(M,)``, observed ``(M,)`` float."""

        def build() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            design = self.design(data.covariates).reshape(-1, self.num_terms)
            observed = data.observed[..., 0].reshape(-1)
            values = torch.where(observed, data.values[..., 0].reshape(-1), 0.0)
            return design, values.to(STATISTICS_DTYPE), observed.to(STATISTICS_DTYPE)

        return data.cached(("emission_regression_flat", self.covariates), build)

    # ------------------------------------------------------------------ prior
    def _coefficient_prior(
        self, loc: torch.Tensor, scale: torch.Tensor, default_slope_scale: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(G, 1 + P)`` prior means and scales from the intercept's ``(G, 1)`` ones."""
        count = len(self.covariates)
        slope = default_slope_scale if self.slope_scale is None else self.slope_scale
        slopes = torch.as_tensor(slope, dtype=scale.dtype).expand(scale.shape[0], count)
        means = torch.cat([loc, torch.zeros_like(loc).expand(-1, count)], -1)
        return means, torch.cat([scale, slopes], -1)

    # ------------------------------------------------------------------ likelihood
    def _log_prob_elementwise(self, params: Params, values: torch.Tensor) -> torch.Tensor:
        raise ValueError(
            f"data: {self!r} scores values with their covariates; call log_likelihood_table "
            "with Sequences that carry them"
        )

    def fill_value(self) -> float:
        """Zero."""
        return 0.0

    def log_likelihood_table(self, params: Params, data: Sequences) -> torch.Tensor:
        """``(..., N, T, K)`` log densities of each step under each state's regression."""
        dtype = next(iter(params.values())).dtype
        eta = self.linear_predictor(params, self.design(data.covariates))  # (..., N, T, K)
        values = data.filled(0.0, dtype)[..., 0].unsqueeze(-1)
        table = self._log_density(params, eta, values)
        observed = data.observed[..., 0].unsqueeze(-1)
        return torch.where(observed, table, torch.zeros((), dtype=table.dtype))

    @abstractmethod
    def _log_density(self, params: Params, eta: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Log density of ``values (*rows, 1)`` at linear predictors ``eta (..., *rows, K)``."""

    def conditional(
        self, params: Params, states: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        """Undefined without the step's covariates: ``ValueError`` (:meth:`conditional_at`)."""
        raise ValueError(f"covariates: {self!r} needs the step's covariates (conditional_at)")

    def sample(
        self, params: Params, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Not defined without covariates: ``ValueError`` (see :meth:`sample_with_covariates`)."""
        raise ValueError(f"covariates: {self!r} needs the covariates to simulate from")

    def _predict(self, selected: torch.Tensor, design: torch.Tensor) -> torch.Tensor:
        """Linear predictors of coefficients picked per entry, ``(..., Q)``, at design rows."""
        return (selected * design.to(selected.dtype)).sum(-1)

    @abstractmethod
    def _step_law(
        self, params: Params, states: torch.Tensor, eta: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        """One step's law given ``states`` at predictors ``eta``, masked by ``observed (N, 1)``."""

    def conditional_at(
        self,
        params: Params,
        states: torch.Tensor,
        observed: torch.Tensor,
        covariates: Covariates | None,
        step: int,
    ) -> dist.TorchDistribution:
        """The law of step ``step`` given ``states``, at that step's covariate rows."""
        design = self.design(covariates)[:, step]  # (N, Q)
        eta = self._predict(params[self.coefficient_name][states], design)
        return self._step_law(params, states, eta, observed)

    def sample_with_covariates(
        self,
        params: Params,
        states: torch.Tensor,
        generator: torch.Generator,
        covariates: Covariates | None,
    ) -> torch.Tensor:
        """Draw ``(N, T, 1)`` observations of the state paths ``(N, T)`` at their covariates."""
        design = self.design(covariates)
        if tuple(design.shape[:2]) != tuple(states.shape):
            raise ValueError(
                f"covariates: expected {tuple(states.shape)} sequences and steps (the states), "
                f"got {tuple(design.shape[:2])}"
            )
        eta = self._predict(params[self.coefficient_name][states], design)
        return self._draw(params, states, eta, generator).unsqueeze(-1)

    @abstractmethod
    def _draw(
        self, params: Params, states: torch.Tensor, eta: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """One draw per entry of ``states`` at linear predictors ``eta`` (same shape)."""

    # ------------------------------------------------------------------ distances
    def bhattacharyya(self, params: Params) -> torch.Tensor:
        """Mean Bhattacharyya coefficient over the reference rows (module notes): ``(.., K, K)``."""
        coefficients = params[self.coefficient_name]
        rows = reference_rows(len(self.covariates), coefficients.dtype)
        eta = self.linear_predictor(params, rows)  # (..., R, K)
        return self._row_bhattacharyya(params, eta).mean(-3)

    @abstractmethod
    def _row_bhattacharyya(self, params: Params, eta: torch.Tensor) -> torch.Tensor:
        """``(..., R, K, K)`` coefficients of the states' laws at predictors ``(..., R, K)``."""

    def potential_coordinates(self) -> dict[str, str]:
        """Coefficients as they are, positive parameters by their logarithm."""
        return {
            name: "log" if name in self.positive_params else "real" for name in self.param_names
        }


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
    >>> from hmm_pyro.emissions.regression import GaussianRegression
    >>> GaussianRegression(["hour"]).param_shapes(3)
    {'w': (3, 2), 'sigma': (3,)}
    """

    family = "gaussian_regression"
    param_names = ("w", "sigma")
    positive_params = ("sigma",)
    hyperparameter_names = ("mu_loc", "mu_scale", "variance_shape", "variance_scale")

    def param_shapes(self, num_states: int) -> dict[str, tuple[int, ...]]:
        """``w (K, 1 + P)``, ``sigma (K,)``."""
        return {"w": (num_states, self.num_terms), "sigma": (num_states,)}

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        """``w``: ``("state", "emission_term")``; ``sigma``: ``("state",)``."""
        return {"w": ("state", "emission_term"), "sigma": ("state",)}

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
        sigma = _per_row(params["sigma"], eta)
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
