"""Categorical emission regression (multinomial logit, the GLM-HMM).

State ``k`` emits symbol ``v`` at step ``t`` with probability ``softmax(eta_tk)[v]``, where
``eta_tk = (0, x_t . W[k, 0], ..., x_t . W[k, V - 2])``: symbol 0 is the reference category and
``W[k, v - 1, :]`` are the log-odds coefficients of symbol ``v`` against it (intercept, then
the covariates). With symbol names, the reference is the first name.

Prior: intercepts ``W[k, v, 0] ~ Normal(0, 2)`` and slopes ``W[k, v, p] ~ Normal(0,
slope_scale)``, default 1, as for the transition regressions of
:class:`~hmm_pyro.CovariateHMM` and for the same reasons (docs/covariates.md): for two symbols a
uniform probability has logistic log-odds of standard deviation about 1.8, close to 2; a slope
of 1 lets one standard deviation of a covariate multiply the odds by ``e``. The Dirichlet field
``Prior.B`` is not used.

M-step (:meth:`CategoricalRegression.maximize`): per state, Newton's method on the weighted
multinomial log likelihood plus the log prior over the ``(V - 1)(1 + P)`` coefficients:
gradient ``sum_t u_t (e_{y_t} - p_t) x_t' - L (W - m)`` and negative Hessian
``sum_t u_t (diag(p_t) - p_t p_t') (x) x_t x_t' + L`` (over symbols ``1 .. V - 1``), with step
halving (:func:`~hmm_pyro.emissions.regression.newton_maximize`). The objective is concave.
Without the prior, a symbol a state never emits has no finite maximiser; the iterations stop
at the cap with a small finite probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyro.distributions as dist
import torch

from hmm_pyro._random import draw_categorical
from hmm_pyro._tables import check_symbols
from hmm_pyro._types import Params
from hmm_pyro._validation import check_int
from hmm_pyro.covariates import INTERCEPT
from hmm_pyro.data import Sequences
from hmm_pyro.emissions._integers import check_symbols_in_range
from hmm_pyro.emissions.regression import Regression, newton_maximize
from hmm_pyro.emissions.statistics import STATISTICS_DTYPE
from hmm_pyro.priors import Prior

__all__ = ["CategoricalRegression"]

_INTERCEPT_SCALE = 2.0
_DEFAULT_SLOPE_SCALE = 1.0
_START_SPREAD = 1.0
"""Standard deviation of the per-state jitter of the intercept logits of a data-driven start."""


def _logits(eta: torch.Tensor) -> torch.Tensor:
    """``(..., V - 1)`` log-odds against symbol 0 to ``(..., V)`` normalised log probabilities."""
    full = torch.cat([torch.zeros_like(eta[..., :1]), eta], -1)
    return full.log_softmax(-1)


class CategoricalRegression(Regression):
    """Categorical symbols whose log-odds against symbol 0 are regressions on covariates.

    Parameter ``W (K, V - 1, 1 + P)``: dimensions ``state``, ``logit_symbol`` (symbols
    ``1 .. V - 1``, or their names) and ``emission_term`` (``intercept``, then the covariates).

    Parameters
    ----------
    num_symbols : int
        Number of symbols ``V >= 2``.
    covariates : sequence of str
        The covariates of the log-odds, after the intercept.
    symbols : sequence of str, optional
        Names of the symbols (text data); the first is the reference.
    slope_scale : float, optional
        Prior standard deviation of the slopes (default 1).

    Examples
    --------
    >>> from hmm_pyro.emissions.categorical_regression import CategoricalRegression
    >>> CategoricalRegression(3, ["hour"]).param_shapes(2)
    {'W': (2, 2, 2)}
    """

    family = "categorical_regression"
    param_names = ("W",)
    coefficient_name = "W"
    integer_valued = True

    def __init__(
        self,
        num_symbols: int,
        covariates: Sequence[str],
        symbols: Sequence[str] | None = None,
        slope_scale: float | None = None,
    ) -> None:
        super().__init__(covariates, slope_scale)
        self.num_symbols = check_int("num_symbols", num_symbols, minimum=2)
        self.symbols = None if symbols is None else check_symbols("symbols", symbols)
        if self.symbols is not None and len(self.symbols) != self.num_symbols:
            raise ValueError(
                f"symbols: expected {self.num_symbols} names (num_symbols), got {len(self.symbols)}"
            )

    # ------------------------------------------------------------------ description
    def param_shapes(self, num_states: int) -> dict[str, tuple[int, ...]]:
        """``W (K, V - 1, 1 + P)``."""
        return {"W": (num_states, self.num_symbols - 1, self.num_terms)}

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        """``("state", "logit_symbol", "emission_term")``."""
        return {"W": ("state", "logit_symbol", "emission_term")}

    def param_coords(self) -> dict[str, list[Any]]:
        """The terms, and the symbols with log-odds (``1 .. V - 1`` or their names)."""
        names = list(range(1, self.num_symbols)) if self.symbols is None else self.symbols[1:]
        return {"emission_term": [INTERCEPT, *self.covariates], "logit_symbol": list(names)}

    def entry_label(self, name: str, state: int, index: int) -> str:
        """``"W[state]:term"`` (the last axis is the term)."""
        return f"W[{state}]:{self.param_coords()['emission_term'][index]}"

    def to_config(self) -> dict[str, Any]:
        """``{"family", "num_symbols", "covariates", "symbols", "slope_scale"}``."""
        return {
            "family": self.family,
            "num_symbols": self.num_symbols,
            "covariates": list(self.covariates),
            "symbols": None if self.symbols is None else list(self.symbols),
            "slope_scale": self.slope_scale,
        }

    @property
    def symbol_names(self) -> tuple[str, ...] | None:
        """The names of the symbols, or ``None``."""
        return self.symbols

    def validate_data(self, data: Sequences) -> None:
        """Integer symbols in ``[0, V)`` and the covariates."""
        super().validate_data(data)
        check_symbols_in_range(data, self.num_symbols, repr(self))

    # ------------------------------------------------------------------ prior
    def prior_hyperparameters(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, torch.Tensor]:
        """None: the coefficient prior is the family's own (module notes)."""
        return {}

    def _coefficients(self, num_states: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """Prior means and scales ``(K, V - 1, 1 + P)``."""
        slope = _DEFAULT_SLOPE_SCALE if self.slope_scale is None else self.slope_scale
        scales = torch.tensor([_INTERCEPT_SCALE] + [slope] * len(self.covariates), dtype=dtype)
        shape = self.param_shapes(num_states)["W"]
        return torch.zeros(shape, dtype=dtype), scales.expand(shape)

    def prior_distributions(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """Independent Normal coefficients (module notes)."""
        loc, scale = self._coefficients(num_states, dtype)
        return {"W": dist.Normal(loc, scale).to_event(3)}

    # ------------------------------------------------------------------ point estimation
    def weighted_statistics(self, data: Sequences, weights: torch.Tensor) -> Params:
        """The observed steps' design ``(M, Q)`` and symbols ``(M,)``, and weights ``(M, K)``."""
        design, values, observed = self._flat(data)
        keep = observed > 0
        return {
            "design": design[keep],
            "symbols": values[keep].long(),
            "weights": weights[keep].to(STATISTICS_DTYPE),
        }

    def maximize(
        self,
        statistics: Params,
        hyperparameters: Params,
        previous: Params | None,
        use_prior: bool,
    ) -> Params:
        """Newton's method with step halving, per state (module notes).

        Start: ``previous``, else the log-odds of each state's weighted symbol frequencies
        (plus 0.5) and zero slopes. Without the prior, a state without weight keeps its start
        (NaN when ``previous`` is ``None``).
        """
        design, symbols, weights = (
            statistics["design"],
            statistics["symbols"],
            statistics["weights"],
        )
        num, terms, others = weights.shape[1], design.shape[1], self.num_symbols - 1
        shape = (num, others, terms)
        loc, scale = self._coefficients(num, STATISTICS_DTYPE)
        precision = scale**-2 if use_prior else torch.zeros(shape, dtype=STATISTICS_DTYPE)
        one_hot = torch.nn.functional.one_hot(symbols, self.num_symbols).to(STATISTICS_DTYPE)
        total = weights.sum(0)
        if previous is not None:
            start = previous["W"].to(STATISTICS_DTYPE).clone()
        else:
            counts = weights.T @ one_hot + 0.5  # (K, V)
            start = torch.zeros(shape, dtype=STATISTICS_DTYPE)
            start[..., 0] = torch.log(counts[:, 1:] / counts[:, :1])

        def objective(flat: torch.Tensor) -> torch.Tensor:
            coefficients = flat.reshape(shape)
            log_p = _logits(torch.einsum("mq,kvq->mkv", design, coefficients))
            fit = (weights * (log_p * one_hot[:, None, :]).sum(-1)).sum(0)
            return fit - 0.5 * (precision * (coefficients - loc) ** 2).sum((-1, -2))

        def derivatives(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            coefficients = flat.reshape(shape)
            p = _logits(torch.einsum("mq,kvq->mkv", design, coefficients)).exp()[..., 1:]
            residual = one_hot[:, None, 1:] - p  # (M, K, V - 1)
            gradient = torch.einsum("mk,mkv,mq->kvq", weights, residual, design)
            gradient = gradient - precision * (coefficients - loc)
            cross = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)  # (M, K, V-1, V-1)
            outer = design.unsqueeze(-1) * design.unsqueeze(-2)  # (M, Q, Q)
            curvature = torch.einsum("mk,mkvw,mqr->kvqwr", weights, cross, outer)
            size = others * terms
            curvature = curvature.reshape(num, size, size)
            curvature = curvature + torch.diag_embed(precision.reshape(num, size))
            return gradient.reshape(num, size), curvature

        flat = newton_maximize(start.reshape(num, -1), objective, derivatives).reshape(shape)
        if not use_prior:
            flat = torch.where((total > 0)[:, None, None], flat, start)
            if previous is None:
                flat = torch.where((total > 0)[:, None, None], flat, float("nan"))
        return {"W": flat}

    def pooled_params(self, data: Sequences) -> Params:
        """The maximum-likelihood regression of all observed symbols (one state)."""
        weights = data.mask.reshape(-1, 1).to(STATISTICS_DTYPE)
        return self.maximize(self.weighted_statistics(data, weights), {}, None, use_prior=False)

    def start_from_data(
        self, data: Sequences, num_states: int, generator: torch.Generator, dtype: torch.dtype
    ) -> Params:
        """The pooled regression, each state's intercept logits jittered by ``N(0, 1)``."""
        pooled = self.pooled_params(data)["W"]
        w = pooled.expand(num_states, -1, -1).clone()
        noise = torch.randn(w.shape[:2], generator=generator, dtype=torch.float64)
        w[..., 0] += _START_SPREAD * noise
        return {"W": w.to(dtype)}

    def location(self, params: Params) -> torch.Tensor:
        """Expected symbol index at the covariates' means: ``(..., K)``."""
        probabilities = _logits(params["W"][..., 0]).exp()
        index = torch.arange(self.num_symbols, dtype=probabilities.dtype)
        return (probabilities * index).sum(-1)

    # ------------------------------------------------------------------ likelihood
    def linear_predictor(self, params: Params, design: torch.Tensor) -> torch.Tensor:
        """Log-odds at every row of ``design (*rows, 1 + P)``: ``(..., *rows, K, V - 1)``."""
        coefficients = params["W"]
        flat = design.to(coefficients.dtype).reshape(-1, design.shape[-1])
        eta = torch.einsum("mq,...kvq->...mkv", flat, coefficients)
        return eta.reshape(*eta.shape[:-3], *design.shape[:-1], *eta.shape[-2:])

    def _predict(self, selected: torch.Tensor, design: torch.Tensor) -> torch.Tensor:
        return (selected * design.to(selected.dtype).unsqueeze(-2)).sum(-1)

    def _log_density(self, params: Params, eta: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        log_p = _logits(eta)  # (..., N, T, K, V)
        index = values.long().unsqueeze(-1).expand(*log_p.shape[:-1], 1)  # (..., N, T, K, 1)
        return log_p.gather(-1, index).squeeze(-1)

    def observation(self, values: torch.Tensor) -> torch.Tensor:
        """Symbols of one step as int64 ``(N,)`` (the enumerated model's ``obs``)."""
        return values[..., 0].long()

    def _step_law(
        self, params: Params, states: torch.Tensor, eta: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        return dist.Categorical(logits=_logits(eta)).mask(observed[..., 0])

    def _draw(
        self, params: Params, states: torch.Tensor, eta: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        probabilities = _logits(eta).exp()
        return draw_categorical(probabilities, generator).to(probabilities.dtype)

    def _row_bhattacharyya(self, params: Params, eta: torch.Tensor) -> torch.Tensor:
        """``sum_v sqrt(p_i[v] p_j[v])`` per row."""
        root = (0.5 * _logits(eta)).exp()  # (..., R, K, V)
        return root @ root.transpose(-1, -2)

    def _check_param_values(self, name: str, value: torch.Tensor) -> None:
        """Coefficients are any finite numbers (checked by the caller)."""
