"""Emission regressions (Markov-switching regressions): a state's law depends on covariates.

State ``k`` emits ``y_t`` from a law whose location is a linear predictor ``eta_tk = x_t . w_k``
of the step's covariates ``x_t = (1, x_t1, ..., x_tP)`` (an intercept, then the named columns
of the data's :class:`~hmm_pyro.Covariates`, standardised by default). :class:`Regression`
holds what the families share: the covariate names, the design matrix read from the data, the
ArviZ dimension ``emission_term`` (named ``intercept`` then the covariates), the configuration,
the coefficient prior and the distances between states. The families:

- :class:`~hmm_pyro.emissions.gaussian_regression.GaussianRegression`:
  ``y_t | z_t = k ~ Normal(x_t . w_k, sigma_k)``;
- :class:`~hmm_pyro.emissions.poisson_regression.PoissonRegression` and
  :class:`~hmm_pyro.emissions.negative_binomial_regression.NegativeBinomialRegression`: log
  link;
- :class:`~hmm_pyro.emissions.categorical_regression.CategoricalRegression`: multinomial
  logit (the GLM-HMM).

The numerical M-steps share :func:`newton_maximize`.

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
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import pyro.distributions as dist
import torch

from hmm_pyro._types import Params
from hmm_pyro._validation import describe
from hmm_pyro.covariates import INTERCEPT, Covariates
from hmm_pyro.data import Sequences
from hmm_pyro.emissions.base import Emission
from hmm_pyro.emissions.statistics import STATISTICS_DTYPE

__all__ = ["Regression", "newton_maximize", "per_row", "reference_rows"]

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


def per_row(value: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
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

    def param_shapes(self, num_states: int) -> dict[str, tuple[int, ...]]:
        """``w (K, 1 + P)``, then one number per state for each other parameter."""
        shapes = {self.coefficient_name: (num_states, self.num_terms)}
        shapes.update({name: (num_states,) for name in self.param_names[1:]})
        return shapes

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        """``w``: ``("state", "emission_term")``; the others ``("state",)``."""
        dims = {self.coefficient_name: ("state", "emission_term")}
        dims.update({name: ("state",) for name in self.param_names[1:]})
        return dims

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
