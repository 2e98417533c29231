"""Multivariate normal emissions with a full covariance: ``y_t | z_t = k ~ N(mu[k], Sigma[k])``.

``Sigma[k] = diag(sigma[k]) corr[k] diag(sigma[k])``: per-coordinate standard deviations
``sigma`` and a correlation matrix ``corr`` (the separation strategy of Barnard, McCulloch & Meng
2000). Prior: ``mu`` and ``sigma`` as the diagonal Gaussian's (Normal means, inverse-gamma
variances reported as ``sigma``), ``corr[k] ~ LKJ(D, prior.lkj_concentration[k])`` (Lewandowski,
Kurowicka & Joe 2009), whose density is proportional to ``det(corr)**(eta - 1)``.

A step is observed whole or missing whole: partly observed vectors are rejected (their
marginal would need a covariance block per pattern of missing coordinates).

M-step (:meth:`MultivariateNormal.maximize`): without the prior, the weighted sample mean and
covariance (closed form). With it there is no closed form (the LKJ and inverse-gamma terms act
on the correlation and the scales separately), so ``Q + log prior`` is maximised numerically:
BFGS (scipy, Wolfe line search, gradient norm below ``1e-10``) over ``(mu, log sigma, x)``,
``x`` the unconstrained coordinates of the correlation matrix
(:mod:`hmm_pyro.inference.coordinates`), with the closed-form gradient of the numba potential's
per-state terms, started from the previous parameters (so each M-step increases the objective).

NUTS/MAP coordinates: ``mu`` as is, ``log sigma``, and Pyro's ``biject_to(corr_matrix)`` for
``corr`` (``tanh`` of ``D (D - 1) / 2`` reals, stick-breaking rows of the Cholesky factor
``L``). The numba log joint propagates the likelihood's gradient through those rows in closed
form (the row recursion ``L_ij = r_ij sqrt(s_j)``, ``s_{j+1} = s_j - L_ij**2`` run backwards).

Collapse distance: the Bhattacharyya coefficient of two normals,
``exp(-(d' S^-1 d / 8 + log(det S / sqrt(det S1 det S2)) / 2))`` with ``S = (S1 + S2) / 2``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.distributions.transforms import PowerTransform
from scipy import optimize
from torch.distributions import biject_to
from torch.distributions.transforms import Transform

from hmm_pyro._types import Params
from hmm_pyro._validation import check_int
from hmm_pyro.data import Sequences
from hmm_pyro.emissions._mvnormal_kernels import MVNORMAL_KERNELS, map_objective
from hmm_pyro.emissions.base import Emission, OptionError
from hmm_pyro.emissions.potential_terms import PotentialTerms, potential_data
from hmm_pyro.emissions.statistics import _STATISTICS_CACHE, STATISTICS_DTYPE, quantile_locations
from hmm_pyro.kernels._numba import entry_potential
from hmm_pyro.priors import Prior

__all__ = ["MultivariateNormal"]

_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)
_LOG_TWO = math.log(2.0)
_EPSILON = 2.0**-52
"""float64 machine epsilon: torch clamps ``tanh`` of the correlation coordinates to +-(1 - it)."""
_CORR_ATOL = 1e-6
"""Tolerance of a correlation matrix's unit diagonal and symmetry."""
_MIN_START_SCALE = 1e-3
_BFGS_ITERATIONS = 1000
_BFGS_GTOL = 1e-10
_UPDATE_ITERATIONS = 3
"""BFGS iterations of a MAP M-step that starts at the current parameters (an EM update): a
generalised EM step, as :data:`hmm_pyro.emissions.distribution._UPDATE_ITERATIONS` explains
(the Wolfe line search only accepts increases of ``Q`` plus the log prior; the fixed points of
EM are unchanged)."""
_CORRELATION = biject_to(constraints.corr_matrix)
_COORDINATE_HYPERPARAMETERS = ("mu_loc", "mu_scale", "variance_shape", "variance_scale")


class MultivariateNormal(Emission):
    """Multivariate normal emissions with full covariances (``D >= 2``).

    Parameters ``mu (K, D)``, ``sigma (K, D)`` (standard deviations) and ``corr (K, D, D)``
    (correlation matrices). Prior: ``mu[k, d] ~ Normal(prior.mu_loc, prior.mu_scale)``,
    ``sigma[k, d]**2 ~ InverseGamma(prior.variance_shape, prior.variance_scale)`` and
    ``corr[k] ~ LKJ(D, prior.lkj_concentration)``.

    Parameters
    ----------
    dim : int
        Emission dimension ``D >= 2`` (one dimension: :class:`~hmm_pyro.Gaussian`).

    Examples
    --------
    >>> MultivariateNormal(dim=2).param_shapes(num_states=3)
    {'mu': (3, 2), 'sigma': (3, 2), 'corr': (3, 2, 2)}
    """

    family = "mvnormal"
    param_names = ("mu", "sigma", "corr")
    positive_params = ("sigma",)

    def __init__(self, dim: int) -> None:
        self._dim = check_int("dim", dim, minimum=2)

    @classmethod
    def from_options(
        cls, data: Sequences | None = None, num_symbols: int | None = None, dim: int | None = None
    ) -> MultivariateNormal:
        """The family for ``dim`` (else the data's dimension), which must be at least 2."""
        if dim is None and data is not None:
            dim = data.dim
        if num_symbols is None and (dim is None or dim < 2):  # else the base refuses num_symbols
            raise OptionError(
                "dim",
                "mvnormal emissions need observations of dimension >= 2 (gaussian for one "
                f"dimension), got {dim}",
            )
        return super().from_options(data, num_symbols, dim)

    @property
    def dim(self) -> int:
        """Emission dimension ``D``."""
        return self._dim

    def param_shapes(self, num_states: int) -> dict[str, tuple[int, ...]]:
        """``mu (K, D)``, ``sigma (K, D)``, ``corr (K, D, D)``."""
        shape = (num_states, self._dim)
        return {"mu": shape, "sigma": shape, "corr": (*shape, self._dim)}

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        """``("state", "dim")``; ``("state", "dim", "dim_other")`` for ``corr``."""
        return {
            "mu": ("state", "dim"),
            "sigma": ("state", "dim"),
            "corr": ("state", "dim", "dim_other"),
        }

    def num_free_params(self, num_states: int) -> int:
        """``K (2 D + D (D - 1) / 2)``: means, scales and the correlations below the diagonal."""
        dim = self._dim
        return num_states * (2 * dim + dim * (dim - 1) // 2)

    def to_config(self) -> dict[str, Any]:
        """``{"family": "mvnormal", "dim": D}``."""
        return {"family": self.family, "dim": self._dim}

    def entry_label(self, name: str, state: int, index: int) -> str:
        """``"corr[k][i,j]"`` for entry ``index = i D + j`` of ``corr``, else ``"name[k]"``."""
        if name == "corr":
            row, column = divmod(index, self._dim)
            return f"corr[{state}][{row},{column}]"
        return super().entry_label(name, state, index)

    def validate_data(self, data: Sequences) -> None:
        """Require the dimension, and each step observed whole or missing whole."""
        self._check_dim(data)
        observed = data.observed
        partial = observed.any(-1) & ~observed.all(-1)
        if bool(partial.any()):
            sequence, step = (int(i) for i in torch.nonzero(partial)[0])
            raise ValueError(
                f"data: {self!r} needs each observation vector observed whole or missing whole; "
                f"sequence {sequence}, step {step} is partly missing (mark the whole step "
                "missing, or use gaussian emissions, which marginalise coordinates one by one)"
            )

    # ------------------------------------------------------------------ prior
    def prior_distributions(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """Normal means, inverse-gamma variances (reported as ``sigma``), LKJ correlations."""
        hyper = self.prior_hyperparameters(prior, num_states, dtype)
        half = torch.tensor(0.5, dtype=dtype)
        variance = dist.InverseGamma(hyper["variance_shape"], hyper["variance_scale"])
        sigma = dist.TransformedDistribution(variance, [PowerTransform(half)])
        eta = hyper["lkj_concentration"][:, 0]
        return {
            "mu": dist.Normal(hyper["mu_loc"], hyper["mu_scale"]).to_event(2),
            "sigma": sigma.to_event(2),
            "corr": dist.LKJ(self._dim, eta).to_event(1),
        }

    def prior_hyperparameters(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, torch.Tensor]:
        """The Gaussian's four ``(K, D)`` and ``lkj_concentration`` ``(K, 1)``."""
        hyper = {
            name: prior.resolve_emission(name, num_states, self._dim, dtype)
            for name in _COORDINATE_HYPERPARAMETERS
        }
        hyper["lkj_concentration"] = prior.resolve_emission(
            "lkj_concentration", num_states, 1, dtype
        )
        return hyper

    # ------------------------------------------------------------------ point estimation
    def weighted_statistics(self, data: Sequences, weights: torch.Tensor) -> Params:
        """``n (K,)``, ``s1 (K, D)`` and ``s2 (K, D, D)`` of the observed steps, and ``shift (D,)``.

        ``s1 = sum_t w (y - shift)``, ``s2 = sum_t w (y - shift)(y - shift)^T`` with ``shift``
        the data's mean (no catastrophic cancellation in the covariance).
        """
        dim = self._dim

        def build() -> tuple[torch.Tensor, ...]:
            observed = data.observed.reshape(-1, dim).all(-1)
            values = data.values.reshape(-1, dim).to(STATISTICS_DTYPE)
            shift = values[observed].mean(0) if bool(observed.any()) else torch.zeros(dim)
            shift = shift.to(STATISTICS_DTYPE)
            centred = torch.where(observed[:, None], values - shift, 0.0)
            outer = (centred[:, :, None] * centred[:, None, :]).reshape(-1, dim * dim)
            return observed.to(STATISTICS_DTYPE), centred, outer, shift

        observed, centred, outer, shift = data.cached((_STATISTICS_CACHE, "mvnormal"), build)
        transposed = weights.T
        return {
            "n": transposed @ observed,
            "s1": transposed @ centred,
            "s2": (transposed @ outer).reshape(-1, dim, dim),
            "shift": shift,
        }

    def maximize(
        self,
        statistics: Params,
        hyperparameters: Params,
        previous: Params | None,
        use_prior: bool,
    ) -> Params:
        """Weighted mean and covariance (ML), or the numerical MAP (see the module notes).

        Without the prior, a state without weight keeps its previous parameters, and one whose
        weighted covariance is singular gets NaN (no maximiser: the likelihood is unbounded);
        with ``previous`` ``None`` both are NaN. With the prior, the optimiser starts from
        ``previous``, else from the ML estimates where they exist and the prior's centre
        (``mu_loc``, ``sigma**2 = variance_scale / (variance_shape + 1)``, identity) elsewhere.
        """
        n, s1, s2, shift = (statistics[name] for name in ("n", "s1", "s2", "shift"))
        mean, cov = self._moments(n, s1, s2)
        sigma = torch.diagonal(cov, dim1=-2, dim2=-1).clamp(min=0.0).sqrt()
        corr = cov / (sigma[:, :, None] * sigma[:, None, :])
        corr = self._tidy(corr)
        defined = (n > 0) & (sigma > 0).all(-1) & torch.isfinite(corr).all(-1).all(-1)
        defined = defined & (
            torch.linalg.cholesky_ex(
                torch.where(defined[:, None, None], corr, torch.eye(self._dim, dtype=corr.dtype))
            ).info
            == 0
        )
        nan = float("nan")
        if previous is None:
            fallback = {"mu": mean, "sigma": sigma, "corr": corr}
            fallback = {name: torch.full_like(value, nan) for name, value in fallback.items()}
        else:
            fallback = {name: previous[name].to(STATISTICS_DTYPE) for name in self.param_names}
        if not use_prior:
            result = {"mu": mean + shift, "sigma": sigma, "corr": corr}
            for name, value in result.items():
                shape = (-1, *[1] * (value.dim() - 1))
                other = torch.where((n <= 0).reshape(shape), fallback[name], nan)
                result[name] = torch.where(defined.reshape(shape), value, other)
            return result
        if previous is None:
            rows = defined[:, None]
            start_mu = torch.where(rows, mean, hyperparameters["mu_loc"] - shift)
            centre = hyperparameters["variance_scale"] / (hyperparameters["variance_shape"] + 1.0)
            start_sigma = torch.where(rows, sigma, centre.sqrt())
            eye = torch.eye(self._dim, dtype=STATISTICS_DTYPE).expand_as(corr)
            start_corr = torch.where(rows[..., None], corr, eye)
        else:
            start_mu = fallback["mu"] - shift
            start_sigma, start_corr = fallback["sigma"], fallback["corr"]
        iterations = _BFGS_ITERATIONS if previous is None else _UPDATE_ITERATIONS
        mu, sigma, corr = _map_step(
            statistics, hyperparameters, start_mu, start_sigma, start_corr, iterations
        )
        return {"mu": mu + shift, "sigma": sigma, "corr": corr}

    @staticmethod
    def _moments(
        n: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Weighted mean ``(K, D)`` and covariance ``(K, D, D)`` (zero weight: mean 0)."""
        safe = torch.where(n > 0, n, 1.0)[:, None]
        mean = s1 / safe
        cov = s2 / safe[..., None] - mean[:, :, None] * mean[:, None, :]
        return mean, cov

    @staticmethod
    def _tidy(corr: torch.Tensor) -> torch.Tensor:
        """Symmetrise and set the diagonal to exactly 1."""
        corr = 0.5 * (corr + corr.transpose(-1, -2))
        eye = torch.eye(corr.shape[-1], dtype=torch.bool)
        return torch.where(eye, torch.ones((), dtype=corr.dtype), corr)

    def pooled_params(self, data: Sequences) -> Params:
        """Mean and covariance of all fully observed steps (the ML one-state fit)."""
        weights = torch.ones(data.num_sequences * data.max_length, 1, dtype=STATISTICS_DTYPE)
        stats = self.weighted_statistics(data, weights)
        mean, cov = self._moments(stats["n"], stats["s1"], stats["s2"])
        sigma = torch.diagonal(cov, dim1=-2, dim2=-1).clamp(min=1e-24).sqrt()
        corr = self._tidy(cov / (sigma[:, :, None] * sigma[:, None, :]))
        if int(torch.linalg.cholesky_ex(corr).info.max()) != 0:
            corr = torch.eye(self._dim, dtype=STATISTICS_DTYPE)[None]
        return {"mu": mean + stats["shift"], "sigma": sigma, "corr": corr}

    def start_from_data(
        self, data: Sequences, num_states: int, generator: torch.Generator, dtype: torch.dtype
    ) -> Params:
        """Means at random quantiles (jittered), scales ``spread / K``, the pooled correlation.

        Scales are at least ``1e-3``; the jitter is a tenth of the scale.
        """
        locations, observed = quantile_locations(data, num_states, generator, dtype)
        spread = torch.nanmean((observed - torch.nanmean(observed, 0)) ** 2, 0).sqrt()
        scale = (spread / num_states).clamp(min=_MIN_START_SCALE).to(dtype).expand(num_states, -1)
        jitter = torch.randn(locations.shape, generator=generator, dtype=dtype) * scale * 0.1
        corr = self.pooled_params(data)["corr"].to(dtype).expand(num_states, -1, -1)
        return {"mu": locations + jitter, "sigma": scale.clone(), "corr": corr.clone()}

    # ------------------------------------------------------------------ likelihood
    def location(self, params: Params) -> torch.Tensor:
        """Mean of the first coordinate: ``(..., K)``."""
        return params["mu"][..., 0]

    def fill_value(self) -> float:
        """Zero."""
        return 0.0

    @staticmethod
    def _scale_tril(params: Params) -> torch.Tensor:
        """Cholesky factors ``diag(sigma) L`` of the covariances: ``(..., K, D, D)``."""
        return params["sigma"].unsqueeze(-1) * torch.linalg.cholesky(params["corr"])

    def _log_prob_elementwise(self, params: Params, values: torch.Tensor) -> torch.Tensor:
        """Log density of whole vectors: ``(..., N, T, K, 1)``."""
        factor = self._scale_tril(params)
        eye = torch.eye(self._dim, dtype=factor.dtype)
        inverse = torch.linalg.solve_triangular(factor, eye.expand_as(factor), upper=False)
        diff = values.unsqueeze(-2) - params["mu"][..., None, None, :, :]  # (..., N, T, K, D)
        standard = torch.einsum("...kij,...ntkj->...ntki", inverse, diff)
        log_det = torch.log(torch.diagonal(factor, dim1=-2, dim2=-1)).sum(-1)
        log_det = log_det[..., None, None, :]
        density = -0.5 * standard.pow(2).sum(-1) - log_det - self._dim * _HALF_LOG_TWO_PI
        return density.unsqueeze(-1)

    def log_likelihood_table(self, params: Params, data: Sequences) -> torch.Tensor:
        """Per-step, per-state log densities of whole vectors ``(..., N, T, K)``; 0 if missing."""
        dtype = next(iter(params.values())).dtype
        table = self._log_prob_elementwise(params, data.filled(0.0, dtype))[..., 0]
        if not data.complete:
            step = data.observed.all(-1).unsqueeze(-1)
            table = torch.where(step, table, torch.zeros((), dtype=dtype))
        return table

    def conditional(
        self, params: Params, states: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        """``MultivariateNormal`` of the states, masked at missing steps."""
        factor = self._scale_tril(params)
        base = dist.MultivariateNormal(params["mu"][states], scale_tril=factor[states])
        return base.mask(observed.all(-1))

    def sample(
        self, params: Params, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Draw ``(*states.shape, D)`` vectors."""
        factor = self._scale_tril(params)
        noise = torch.randn((*states.shape, self._dim, 1), dtype=factor.dtype, generator=generator)
        return params["mu"][states] + (factor[states] @ noise).squeeze(-1)

    def bhattacharyya(self, params: Params) -> torch.Tensor:
        """Closed form for two normals (module notes)."""
        factor = self._scale_tril(params)
        cov = factor @ factor.transpose(-1, -2)  # (..., K, D, D)
        half_log_det = torch.log(torch.diagonal(factor, dim1=-2, dim2=-1)).sum(-1)  # (..., K)
        average = 0.5 * (cov.unsqueeze(-3) + cov.unsqueeze(-4))  # (..., K, K, D, D)
        chol = torch.linalg.cholesky(average)
        gap = (params["mu"].unsqueeze(-2) - params["mu"].unsqueeze(-3)).unsqueeze(-1)
        solved = torch.linalg.solve_triangular(chol, gap, upper=False).squeeze(-1)
        log_det_average = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        distance = 0.125 * solved.pow(2).sum(-1) + 0.5 * (
            log_det_average - half_log_det.unsqueeze(-1) - half_log_det.unsqueeze(-2)
        )
        return torch.exp(-distance.clamp(min=0.0))

    def _check_param_values(self, name: str, value: torch.Tensor) -> None:
        if name == "sigma" and (value <= 0).any():
            raise ValueError(
                f"params['sigma']: expected standard deviations > 0, got {value.min().item()}"
            )
        if name != "corr":
            return
        diagonal = torch.diagonal(value, dim1=-2, dim2=-1)
        asymmetry = (value - value.transpose(-1, -2)).abs().max().item()
        if (diagonal - 1.0).abs().max().item() > _CORR_ATOL or asymmetry > _CORR_ATOL:
            raise ValueError(
                "params['corr']: expected correlation matrices (symmetric, unit diagonal within "
                f"{_CORR_ATOL})"
            )
        if int(torch.linalg.cholesky_ex(value).info.max()) != 0:
            raise ValueError("params['corr']: expected positive definite correlation matrices")

    # ---- potential (NUTS/MAP)
    def potential_coordinates(self) -> dict[str, str]:
        """``mu`` as is, ``log sigma``, correlation coordinates (:meth:`bijection`)."""
        return {"mu": "real", "sigma": "log", "corr": "bijection"}

    def bijection(self, name: str) -> Transform:
        """Pyro's ``biject_to(corr_matrix)`` for ``corr`` (the coordinates of the module notes)."""
        return _CORRELATION if name == "corr" else super().bijection(name)

    def potential_terms(
        self, prior: Prior, num_states: int, dtype: torch.dtype, data: Sequences
    ) -> PotentialTerms:
        """The Gaussian's priors of ``mu`` and ``log sigma``; LKJ in correlation coordinates.

        With ``jac`` the correlation part is ``LKJCholesky(L)`` plus the log-Jacobian of
        ``x -> L``; without it, ``LKJ(corr) = 2 (eta - 1) sum_i log L_ii + const`` (the
        Jacobian of ``L -> corr``, ``prod_i L_ii**(D - 1 - i)``, cancels in the first).
        """
        hyper = self.prior_hyperparameters(prior, num_states, torch.float64)
        loc, scale, shape, rate = (hyper[name] for name in _COORDINATE_HYPERPARAMETERS)
        eta = hyper["lkj_concentration"][:, 0]
        eye = torch.eye(self._dim, dtype=torch.float64)
        lkj = dist.LKJCholesky(self._dim, eta).log_prob(eye.expand(num_states, -1, -1))
        constant = float(
            -(torch.log(scale) + _HALF_LOG_TWO_PI).sum()
            + (shape * torch.log(rate) - torch.lgamma(shape) + _LOG_TWO).sum()
            + lkj.sum()
        )
        values, observed, lengths = potential_data(data)
        steps = np.ascontiguousarray(observed.all(-1, keepdims=True))
        grids = tuple(np.ascontiguousarray(t.numpy()) for t in (loc, scale, shape, rate, eta))
        arguments = (MVNORMAL_KERNELS, grids, values[:, :, None, :], steps, lengths)
        return PotentialTerms(entry_potential, arguments, constant)


# ---------------------------------------------------------------------- numerical M-step
def _map_step(
    stats: Params,
    hyper: Params,
    mu: torch.Tensor,
    sigma: torch.Tensor,
    corr: torch.Tensor,
    iterations: int = _BFGS_ITERATIONS,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Maximise ``Q + log prior`` by BFGS from ``(mu, sigma, corr)`` (``mu`` shifted).

    The objective and its gradient are :func:`_map_objective` (the potential's per-state terms
    with the statistics in place of the smoothed marginals).
    """
    num, dim = mu.shape
    shift = stats["shift"].to(STATISTICS_DTYPE)
    arrays = [
        np.ascontiguousarray(value.to(STATISTICS_DTYPE).numpy())
        for value in (
            stats["n"],
            stats["s1"],
            stats["s2"],
            hyper["mu_loc"].to(STATISTICS_DTYPE) - shift,
            hyper["mu_scale"],
            hyper["variance_shape"],
            hyper["variance_scale"],
            hyper["lkj_concentration"][:, 0],
        )
    ]
    start = torch.cat([mu.reshape(num, -1), torch.log(sigma), _CORRELATION.inv(corr)], dim=-1).to(
        STATISTICS_DTYPE
    )

    def negative(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = map_objective(theta.reshape(num, -1), *arrays)
        return -value, -gradient.reshape(-1)

    result = optimize.minimize(
        negative,
        start.numpy().reshape(-1),
        jac=True,
        method="BFGS",
        options={"maxiter": iterations, "gtol": _BFGS_GTOL},
    )
    theta = torch.from_numpy(result.x.reshape(num, -1))
    corr = MultivariateNormal._tidy(_CORRELATION(theta[:, 2 * dim :]))
    return theta[:, :dim], torch.exp(theta[:, dim : 2 * dim]), corr
