"""``CovariateHMM``: transitions (and the initial distribution) as regressions on covariates.

Row ``i`` of the transition matrix out of step ``t`` is a multinomial logit of the covariates
``x_t`` of that step (standardised, with an intercept in front)::

    P(z_{t+1} = j | z_t = i, x_t) = softmax_j(eta_ij),  eta_ij = x_t . beta_A[i, j],

with staying as each row's reference category (``beta_A[i, i] = 0``): ``beta_A[i, j]`` are the
log-odds of moving from ``i`` to ``j`` rather than staying. With initial covariates ``w`` (the
first step's values of some covariates, intercept in front), ``pi = softmax(beta_pi w)`` with
columns of ``beta_pi`` summing to zero over the states; without them ``pi`` keeps its
Dirichlet prior. See ``docs/covariates.md`` for the priors and their defaults.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyro.distributions as dist
import torch
from pyro.ops.special import safe_log

from hmm_pyro import kernels
from hmm_pyro._types import Params
from hmm_pyro._validation import check_choice, describe
from hmm_pyro.covariate_model.distributions import (
    OffDiagonalNormal,
    OffDiagonalTransform,
    SumToZeroNormal,
    SumToZeroTransform,
    helmert_basis,
)
from hmm_pyro.covariates import INTERCEPT, Covariates
from hmm_pyro.data import Sequences
from hmm_pyro.emissions import Emission, from_config
from hmm_pyro.emissions.potential_terms import PotentialTerms
from hmm_pyro.kernels import _numba
from hmm_pyro.model import HMM, INITIAL_MODES
from hmm_pyro.priors import Prior

__all__ = ["CoefficientPrior", "CovariateHMM", "stationary_distribution"]

_SUM_ATOL = 1e-6
"""Largest column sum of ``beta_pi`` accepted as zero (relative to the column's size)."""
_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


def _float64(tensor: torch.Tensor) -> np.ndarray:
    """A C-contiguous float64 copy for the numba potential."""
    return np.ascontiguousarray(tensor.detach().to(torch.float64).numpy())


@dataclass(frozen=True)
class CoefficientPrior:
    """Normal priors of the regression coefficients (on standardised covariates).

    Parameters
    ----------
    intercept_loc : float
        Prior mean of the transition intercepts: the log-odds of moving from ``i`` to ``j``
        rather than staying, with every covariate at its mean. Negative values favour staying
        (a persistent chain), as ``stickiness`` does for Dirichlet rows.
    intercept_scale : float
        Prior standard deviation of the intercepts (transitions and initial distribution).
    slope_scale : float
        Prior standard deviation of every covariate's coefficient: the change of those
        log-odds per standard deviation of the covariate.

    Notes
    -----
    Defaults ``Normal(0, 2)`` for intercepts and ``Normal(0, 1)`` for slopes; the reasons are
    in ``docs/covariates.md``.
    """

    intercept_loc: float = 0.0
    intercept_scale: float = 2.0
    slope_scale: float = 1.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name}: expected a number, got {describe(value)}")
            if not math.isfinite(value) or (name != "intercept_loc" and value <= 0):
                bound = "finite" if name == "intercept_loc" else "finite and > 0"
                raise ValueError(f"{name}: expected a number {bound}, got {value}")

    def scales(self, count: int, dtype: torch.dtype) -> torch.Tensor:
        """``(1 + count,)`` scales: the intercept's, then one per covariate."""
        values = [self.intercept_scale] + [self.slope_scale] * count
        return torch.tensor(values, dtype=dtype)


def _check_names(name: str, names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise TypeError(f"{name}: expected a list of covariate names, got {describe(names)}")
    names = tuple(names)
    if not all(isinstance(item, str) and item != "" for item in names):
        raise TypeError(f"{name}: expected non-empty strings, got {describe(list(names))}")
    if len(set(names)) != len(names):
        raise ValueError(f"{name}: expected distinct names, got {list(names)}")
    if INTERCEPT in names:
        raise ValueError(f"{name}: {INTERCEPT!r} is always included; name covariates only")
    return names


def stationary_distribution(transition: torch.Tensor) -> torch.Tensor:
    """Stationary distributions ``pi A = pi`` of transition matrices ``(..., K, K)``.

    Solves ``(I - A^T + 1 1^T) pi = 1``, which has the stationary distribution as its unique
    solution when the chain is irreducible (every regression row gives positive
    probabilities, so covariate chains always are).
    """
    num = transition.shape[-1]
    eye = torch.eye(num, dtype=transition.dtype)
    system = eye - transition.transpose(-1, -2) + 1.0
    ones = torch.ones(*transition.shape[:-1], 1, dtype=transition.dtype)
    return torch.linalg.solve(system, ones)[..., 0]


class CovariateHMM(HMM):
    """An HMM whose transitions are multinomial-logit regressions on covariates.

    Parameters
    ----------
    num_states : int
        Number of hidden states ``K``.
    emission : Emission
        Emission family (any).
    transition_covariates : sequence of str
        Names of the covariates (columns of the data's
        :class:`~hmm_pyro.Covariates`) in the transition regressions; may be empty (an
        intercept-only, homogeneous chain with a logistic-normal prior).
    initial_covariates : sequence of str
        Covariates of the initial distribution (their values at each sequence's first step).
        Empty (default): ``pi`` has its Dirichlet prior, as in :class:`~hmm_pyro.HMM`.
    prior : Prior, optional
        Hyperparameters of ``pi`` (without initial covariates) and of the emissions; ``A`` and
        ``stickiness`` concern Dirichlet transition rows and must stay at their defaults.
    coefficient_prior : CoefficientPrior, optional
        Normal priors of the coefficients (default ``CoefficientPrior()``).
    dtype : torch.dtype
        Floating-point type (default float64).

    Notes
    -----
    Parameters: ``beta_A (K, K, 1 + P)`` (zero diagonal; ``beta_A[i, j, 0]`` the intercept),
    ``pi (K,)`` or ``beta_pi (K, 1 + Q)`` (columns summing to zero), then the emission's. The
    data must carry covariates with these names (:attr:`hmm_pyro.Sequences.covariates`); the
    coefficients are on their scale (standardised by default).

    Examples
    --------
    >>> from hmm_pyro import CovariateHMM, Gaussian
    >>> hmm = CovariateHMM(2, Gaussian(), transition_covariates=["hour"])
    >>> hmm.param_shapes()["beta_A"]
    (2, 2, 2)
    """

    kind = "covariates"
    time_varying = True
    not_classical = "the transitions change with covariates"

    def __init__(
        self,
        num_states: int,
        emission: Emission,
        transition_covariates: Sequence[str],
        initial_covariates: Sequence[str] = (),
        prior: Prior | None = None,
        coefficient_prior: CoefficientPrior | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if isinstance(num_states, int) and not isinstance(num_states, bool) and num_states < 2:
            raise ValueError(
                f"num_states: a CovariateHMM needs at least 2 states, got {num_states} (with one "
                "state there is no transition for covariates to act on: use HMM(1, emission))"
            )
        self.transition_covariates = _check_names("transition_covariates", transition_covariates)
        self.initial_covariates = _check_names("initial_covariates", initial_covariates)
        if coefficient_prior is None:
            coefficient_prior = CoefficientPrior()
        if not isinstance(coefficient_prior, CoefficientPrior):
            raise TypeError(
                "coefficient_prior: expected a hmm_pyro.CoefficientPrior, got "
                f"{describe(coefficient_prior)}"
            )
        self.coefficient_prior = coefficient_prior
        if isinstance(prior, Prior):
            default = Prior()
            changed = [
                key for key in ("A", "stickiness") if getattr(prior, key) != getattr(default, key)
            ]
            if self.initial_covariates and prior.pi != default.pi:
                changed.append("pi")
            if changed:
                raise ValueError(
                    f"prior: {changed} set, but a CovariateHMM has no Dirichlet prior there "
                    "(its transitions are regressions); set coefficient_prior instead"
                )
        super().__init__(num_states, emission, prior, dtype)

    # ------------------------------------------------------------------ description
    @property
    def _initial_name(self) -> str:
        return "beta_pi" if self.initial_covariates else "pi"

    @property
    def param_names(self) -> tuple[str, ...]:
        """``pi`` or ``beta_pi``, ``beta_A``, then the emission's parameters."""
        return (self._initial_name, "beta_A", *self.emission.param_names)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each parameter of one draw."""
        num = self.num_states
        initial = (num, 1 + len(self.initial_covariates)) if self.initial_covariates else (num,)
        return {
            self._initial_name: initial,
            "beta_A": (num, num, 1 + len(self.transition_covariates)),
            **self.emission.param_shapes(num),
        }

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        """ArviZ dimensions: ``transition_term`` and ``initial_term`` name the coefficients."""
        initial = ("state", "initial_term") if self.initial_covariates else ("state",)
        return {
            self._initial_name: initial,
            "beta_A": ("state", "state_to", "transition_term"),
            **self.emission.param_dims(),
        }

    def param_coords(self) -> dict[str, list[Any]]:
        """The terms' names: ``intercept`` then the covariates."""
        coords = {
            "transition_term": [INTERCEPT, *self.transition_covariates],
            **self.emission.param_coords(),
        }
        if self.initial_covariates:
            coords["initial_term"] = [INTERCEPT, *self.initial_covariates]
        return coords

    @property
    def simplex_params(self) -> tuple[str, ...]:
        """``pi`` (without initial covariates) and the emission's probability rows."""
        return (*(() if self.initial_covariates else ("pi",)), *self.emission.simplex_params)

    def num_free_params(self, initial: str = "free") -> int:
        """``K (K - 1) (1 + P)`` transition coefficients, the initial ones, the emission's."""
        check_choice("initial", initial, INITIAL_MODES[:1])
        num = self.num_states
        first = (num - 1) * (1 + len(self.initial_covariates))
        transitions = num * (num - 1) * (1 + len(self.transition_covariates))
        return first + transitions + self.emission.num_free_params(num)

    def to_config(self) -> dict[str, Any]:
        """JSON-serialisable description (``kind`` ``"covariates"``)."""
        return {
            "kind": self.kind,
            **super().to_config(),
            "transition_covariates": list(self.transition_covariates),
            "initial_covariates": list(self.initial_covariates),
            "coefficient_prior": asdict(self.coefficient_prior),
        }

    @classmethod
    def _from_config(cls, config: dict[str, Any]) -> CovariateHMM:
        return cls(
            num_states=config["num_states"],
            emission=from_config(config["emission"]),
            transition_covariates=config["transition_covariates"],
            initial_covariates=config.get("initial_covariates", ()),
            prior=Prior(**config["prior"]),
            coefficient_prior=CoefficientPrior(**config.get("coefficient_prior", {})),
            dtype=getattr(torch, config.get("dtype", "float64")),
        )

    def with_prior(self, prior: Prior) -> CovariateHMM:
        """The same model with another prior."""
        return CovariateHMM(
            self.num_states,
            self.emission,
            self.transition_covariates,
            self.initial_covariates,
            prior,
            self.coefficient_prior,
            self.dtype,
        )

    def __repr__(self) -> str:
        initial = (
            f", initial_covariates={list(self.initial_covariates)}"
            if self.initial_covariates
            else ""
        )
        return (
            f"CovariateHMM(num_states={self.num_states}, emission={self.emission!r}, "
            f"transition_covariates={list(self.transition_covariates)}{initial})"
        )

    # ------------------------------------------------------------------ prior
    def _build_prior_distributions(self) -> dict[str, dist.TorchDistribution]:
        num, dtype, coefficients = self.num_states, self.dtype, self.coefficient_prior
        terms = 1 + len(self.transition_covariates)
        loc = torch.zeros(num, num, terms, dtype=dtype)
        loc[..., 0] = coefficients.intercept_loc
        scale = coefficients.scales(len(self.transition_covariates), dtype).expand(num, num, terms)
        if self.initial_covariates:
            scales = coefficients.scales(len(self.initial_covariates), dtype)
            initial = SumToZeroNormal(scales, num)
        else:
            initial = dist.Dirichlet(self.prior.resolve_initial(num, dtype))
        return {
            self._initial_name: initial,
            "beta_A": OffDiagonalNormal(loc, scale),
            **self.emission.prior_distributions(self.prior, num, dtype),
        }

    def dirichlet_concentrations(self) -> dict[str, torch.Tensor]:
        """``pi``'s concentration (none with initial covariates)."""
        if self.initial_covariates:
            return {}
        return {"pi": self.prior.resolve_initial(self.num_states, self.dtype)}

    # ------------------------------------------------------------------ coordinates
    def potential_coordinates(self) -> dict[str, str]:
        """Coefficients through their own transforms (:meth:`bijection`)."""
        initial = "bijection" if self.initial_covariates else "simplex"
        return {
            self._initial_name: initial,
            "beta_A": "bijection",
            **self.emission.potential_coordinates(),
        }

    def bijection(self, name: str) -> Any:
        """The coefficients' transforms (:mod:`hmm_pyro.covariate_model.distributions`)."""
        if name == "beta_A":
            return OffDiagonalTransform(self.num_states)
        if name == "beta_pi" and self.initial_covariates:
            return SumToZeroTransform(self.num_states)
        return self.emission.bijection(name)

    def potential_terms(self, data: Sequences) -> PotentialTerms | None:
        """The numba log joint where there is one, else None (the potential runs in torch).

        With an emission family given per entry (its own numba log joint is
        :func:`~hmm_pyro.kernels._numba.potentials.entry_potential`) or categorical
        emissions, the log joint is the matching function of
        :mod:`~hmm_pyro.kernels._numba.regression_potential`: the regression kernel on the
        family's table, gradients in closed form. Otherwise (families without a numba log
        joint) the torch route: autograd through the regressions.
        """
        terms = self.emission.potential_terms(self.prior, self.num_states, self.dtype, data)
        functions = {
            _numba.entry_potential: _numba.regression_entry_potential,
            _numba.categorical_potential: _numba.regression_categorical_potential,
        }
        if terms is None or terms.function not in functions:
            return None
        priors = self._prior_distributions
        loc, scale = (_float64(t) for t in (priors["beta_A"].loc, priors["beta_A"].scale))
        off_diagonal = ~np.eye(self.num_states, dtype=bool)
        constant = -float((np.log(scale) + _HALF_LOG_TWO_PI)[off_diagonal].sum())
        steps, first = self._designs(data.covariates)
        initial: tuple[np.ndarray, ...] = ()
        if first is not None:
            initial_scale = _float64(priors["beta_pi"].scale)
            constant -= (self.num_states - 1) * float(
                (np.log(initial_scale) + _HALF_LOG_TWO_PI).sum()
            )
            helmert = helmert_basis(self.num_states, torch.float64)
            initial = (_float64(helmert), initial_scale, _float64(first))
        return PotentialTerms(
            functions[terms.function],
            (initial, loc, scale, _float64(steps), *terms.arguments),
            terms.constant + constant,
        )

    # ------------------------------------------------------------------ validation
    def _check_transition_params(self, converted: Params) -> None:
        shapes = self.param_shapes()
        for name in (self._initial_name, "beta_A"):
            value, shape = converted[name], shapes[name]
            if value.dim() < len(shape) or tuple(value.shape[value.dim() - len(shape) :]) != shape:
                raise ValueError(
                    f"params[{name!r}]: expected trailing shape {shape}, got {describe(value)}"
                )
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"params[{name!r}]: expected finite values")
        if bool((converted["beta_A"].diagonal(dim1=-3, dim2=-2) != 0).any()):
            raise ValueError(
                "params['beta_A']: expected zeros on the diagonal (staying is each row's "
                "reference category)"
            )
        if self.initial_covariates:
            value = converted["beta_pi"]
            size = value.abs().amax(-2).clamp(min=1.0)
            if bool((value.sum(-2).abs() > _SUM_ATOL * size).any()):
                raise ValueError(
                    "params['beta_pi']: expected columns summing to zero over the states"
                )
        else:
            self._check_probabilities("pi", converted["pi"], shapes["pi"])

    def prepare_data(self, data: Any) -> Sequences:
        """The data as :class:`Sequences`, checked to carry the model's covariates."""
        sequences = super().prepare_data(data)
        covariates = sequences.covariates
        if covariates is None:
            raise ValueError(
                f"data: {self!r} needs covariates {list(self.transition_covariates)} at every "
                "step; attach them with Sequences(..., covariates=Covariates(...))"
            )
        covariates.index(self.transition_covariates, "transition_covariates")
        covariates.index(self.initial_covariates, "initial_covariates")
        return sequences

    # ------------------------------------------------------------------ regressions
    @staticmethod
    def _design(columns: torch.Tensor) -> torch.Tensor:
        """Columns with the intercept's column of ones in front."""
        return torch.cat([torch.ones_like(columns[..., :1]), columns], dim=-1)

    def transition_matrices(self, params: Params, rows: torch.Tensor) -> torch.Tensor:
        """Transition matrices at ``M`` covariate rows: ``(..., M, K, K)``.

        ``rows (M, P)``: standardised values of :attr:`transition_covariates`, in order;
        ``params["beta_A"]`` may have leading draw dimensions ``(...)``.
        """
        if rows.dim() != 2 or rows.shape[1] != len(self.transition_covariates):
            raise ValueError(
                f"rows: expected (M, {len(self.transition_covariates)}) values of "
                f"{list(self.transition_covariates)}, got {describe(rows)}"
            )
        design = self._design(rows.to(self.dtype))
        eta = torch.einsum("mp,...ijp->...mij", design, params["beta_A"])
        return eta.softmax(-1)

    def _designs(self, covariates: Covariates) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Design matrices (intercept first): steps ``(N, T, 1 + P)``, first steps ``(N, 1 + Q)``.

        Computed once per covariates object (they are treated as immutable).
        """
        cache = covariates.__dict__.setdefault("_designs", {})
        key = (self.transition_covariates, self.initial_covariates, self.dtype)
        if key not in cache:
            steps = self._design(covariates.columns(self.transition_covariates).to(self.dtype))
            first = None
            if self.initial_covariates:
                columns = covariates.columns(self.initial_covariates)[:, 0].to(self.dtype)
                first = self._design(columns)
            cache[key] = (steps, first)
        return cache[key]

    def initial_logits(self, params: Params, covariates: Covariates) -> torch.Tensor:
        """``log pi`` of every sequence: ``(..., N, K)`` (``(..., 1, K)`` without covariates)."""
        if not self.initial_covariates:
            return safe_log(params["pi"]).unsqueeze(-2)
        _, first = self._designs(covariates)
        eta = torch.einsum("nq,...kq->...nk", first, params["beta_pi"])
        return eta.log_softmax(-1)

    def _step_logits(self, params: Params, covariates: Covariates) -> torch.Tensor:
        """``log A`` of every sequence and step: ``(..., N, T, K, K)``."""
        steps, _ = self._designs(covariates)
        return kernels.regression_log_transitions(params["beta_A"], steps)

    def kernel_inputs(
        self, params: Params, data: Sequences
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``log pi (..., N or 1, K)``, ``log A (..., N, T, K, K)``, the table, the lengths."""
        table = self.emission.log_likelihood_table(params, data)
        log_pi = self.initial_logits(params, data.covariates)
        return log_pi, self._step_logits(params, data.covariates), table, data.lengths

    def sequence_log_likelihood(
        self, params: Params, data: Sequences, logs: Params | None = None
    ) -> torch.Tensor:
        """Log likelihood of each sequence ``(..., N)`` with one transition matrix per step.

        :func:`hmm_pyro.kernels.regression_log_likelihood` on the emission family's per-state
        table: the numba route builds each step's matrix from the covariates and ``beta_A``
        inside its sweeps and returns the gradient with respect to ``beta_A`` itself.
        """
        if data.covariates is None:
            raise ValueError(f"data: {self!r} needs covariates at every step")
        table = self.emission.log_likelihood_table(params, data)
        if logs and "pi" in logs:
            log_pi = logs["pi"].unsqueeze(-2)
        else:
            log_pi = self.initial_logits(params, data.covariates)
        steps, _ = self._designs(data.covariates)
        return kernels.regression_log_likelihood(
            log_pi, params["beta_A"], steps, table, data.lengths
        )

    def chain_probabilities(
        self, params: Params, covariates: Covariates | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``pi (N, K)`` and ``A (N, T, K, K)`` of one parameter set for ``covariates``."""
        if not isinstance(covariates, Covariates):
            raise ValueError(
                f"covariates: {self!r} needs the covariates of the sequences, got "
                f"{describe(covariates)}"
            )
        covariates.index(self.transition_covariates, "transition_covariates")
        log_pi = self.initial_logits(params, covariates)
        log_pi = log_pi.expand(covariates.num_sequences, self.num_states)
        return log_pi.exp(), self._step_logits(params, covariates).exp()
