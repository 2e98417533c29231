"""Von Mises emissions (angles, e.g. turning angles): ``y_t[d] | z_t = k ~ VonMises(mu, kappa)``.

Density ``exp(kappa cos(y - mu)) / (2 pi I0(kappa))`` on the circle, independent across
coordinates ``d``; observations are angles in radians (checked to lie in ``[-pi, 2 pi]``, which
covers both the ``(-pi, pi]`` and the ``[0, 2 pi)`` conventions). ``log I0`` is
``log(i0e(kappa)) + kappa`` with the exponentially scaled Bessel function (no overflow).

Mean directions are angles: ``mu`` and ``mu + 2 pi`` are the same law, and any real ``mu`` is
accepted. NUTS and MAP take ``mu`` as a real coordinate whose density is periodic (Hamiltonian
dynamics on the line with a periodic potential are the dynamics on the circle; coordinate kind
``"angle"`` of :mod:`hmm_pyro.inference.coordinates`) and report it wrapped to ``[-pi, pi)``.
A mean direction near ``+-pi`` then has draws at both ends of the interval: summarise ``mu``
circularly (its arithmetic posterior mean is meaningless there; e.g. ArviZ's
``summary(..., circ_var_names=["mu"])``).

M-step (:meth:`VonMises.maximize`) from ``n = sum w``, ``C = sum w cos y`` and
``S = sum w sin y``, by conditional maximisation (ECM, as the Gaussian's):

- ``mu`` given ``kappa``: ``mu = atan2(kappa S + c sin m, kappa C + c cos m)`` under the prior
  ``VonMises(m, c)`` (ML: ``atan2(S, C)``, which does not depend on ``kappa``);
- ``kappa`` given ``mu``: the root of ``h(kappa) = R - b - n A(kappa) + (a - 1) / kappa`` with
  ``R = C cos mu + S sin mu``, ``A = I1 / I0`` and the ``Gamma(a, b)`` prior (ML: ``A(kappa) =
  R / n``), by safeguarded Newton in ``log kappa``
  (:func:`~hmm_pyro.emissions._roots.decreasing_root`; ``A' = 1 - A / kappa - A**2 > 0``, so
  ``h`` decreases for ``a >= 1``) over ``[MIN_KAPPA, MAX_KAPPA]``.

Collapse distance: ``sqrt(f1 f2) = exp(R12 cos(y - phi)) / (2 pi sqrt(I0(k1) I0(k2)))`` with
``R12 = |k1 e^{i m1} + k2 e^{i m2}| / 2``, whose integral over the circle gives
``BC = I0(R12) / sqrt(I0(k1) I0(k2))`` per coordinate.

NUTS/MAP potential (:func:`~hmm_pyro.kernels._numba.potentials.entry_potential`): coordinates
``mu`` then ``log kappa`` (``K * D`` each). ``log I0(kappa)`` and ``A(kappa)`` of the ``K * D``
concentrations are evaluated once per call with scipy's exponentially scaled Bessel functions;
the likelihood's gradient comes from the gamma-weighted sums of ``cos y`` and ``sin y``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numba
import numpy as np
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from scipy import special

from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.emissions._roots import decreasing_root
from hmm_pyro.emissions.coordinatewise import Coordinatewise
from hmm_pyro.emissions.potential_terms import PotentialTerms, potential_data
from hmm_pyro.emissions.statistics import _STATISTICS_CACHE, STATISTICS_DTYPE, quantile_locations
from hmm_pyro.kernels._numba import (
    EntryKernels,
    all_finite,
    all_greater,
    entry_potential,
    fill_table,
    weighted_sums,
)
from hmm_pyro.priors import Prior

__all__ = ["MAX_KAPPA", "MIN_KAPPA", "CircularVonMises", "VonMises", "log_i0", "mean_resultant"]

MIN_KAPPA = 1e-8
"""Smallest concentration an M-step returns (no preferred direction: ``R <= b``, ML ``R = 0``)."""
MAX_KAPPA = 1e6
"""Largest concentration an M-step returns (all angles of a state equal)."""
_LOG_TWO_PI = math.log(2.0 * math.pi)
_ANGLE_SLACK = 1e-6
_ECM_CYCLES = 100
_ECM_RTOL = 1e-12


def log_i0(kappa: torch.Tensor) -> torch.Tensor:
    """``log I0(kappa)`` for ``kappa >= 0`` without overflow: ``log(i0e(kappa)) + kappa``."""
    return torch.log(torch.special.i0e(kappa)) + kappa


def mean_resultant(kappa: torch.Tensor) -> torch.Tensor:
    """``A(kappa) = I1(kappa) / I0(kappa)``, the mean resultant length of ``VonMises(., kappa)``."""
    return torch.special.i1e(kappa) / torch.special.i0e(kappa)


class CircularVonMises(dist.VonMises):
    """``pyro.distributions.VonMises`` with an exact log normaliser and concentration 0 allowed.

    Torch's ``VonMises.log_prob`` evaluates ``log I0`` by a polynomial approximation (relative
    error near ``1e-7``); this uses :func:`log_i0`. Concentration 0 is the uniform law on the
    circle (sampled as uniform on ``[-pi, pi)``).
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {
        "loc": constraints.real,
        "concentration": constraints.nonnegative,
    }

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``kappa cos(value - loc) - log(2 pi) - log I0(kappa)``."""
        if self._validate_args:
            self._validate_sample(value)
        kappa = self.concentration
        return kappa * torch.cos(value - self.loc) - _LOG_TWO_PI - log_i0(kappa)

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> torch.Tensor:
        """Torch's sampler (Best & Fisher 1979); below ``1e-8`` the concentration is ``1e-8``."""
        base = dist.VonMises(self.loc, self.concentration.clamp(min=MIN_KAPPA))
        return base.sample(sample_shape)


def _wrap(angle: torch.Tensor) -> torch.Tensor:
    """Angles to ``[-pi, pi)``."""
    return torch.remainder(angle + math.pi, 2.0 * math.pi) - math.pi


def _draw_von_mises(
    loc: torch.Tensor, kappa: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Best & Fisher (1979) rejection draws in ``[-pi, pi)`` from a seeded generator."""
    kappa = kappa.to(torch.float64).clamp(min=MIN_KAPPA)
    tau = 1.0 + torch.sqrt(1.0 + 4.0 * kappa**2)
    rho = (tau - torch.sqrt(2.0 * tau)) / (2.0 * kappa)
    proposal = torch.where(kappa < 1e-5, 1.0 / kappa + kappa, (1.0 + rho**2) / (2.0 * rho))
    shape = kappa.shape
    angle = torch.zeros(shape, dtype=torch.float64)
    pending = torch.ones(shape, dtype=torch.bool)
    while bool(pending.any()):
        u1, u2, u3 = torch.rand((3, *shape), generator=generator, dtype=torch.float64).unbind()
        z = torch.cos(math.pi * u1)
        f = ((1.0 + proposal * z) / (proposal + z)).clamp(min=-1.0, max=1.0)
        c = kappa * (proposal - f)
        accept = ((c * (2.0 - c) - u2) > 0) | (torch.log(c / u2) + 1.0 - c >= 0)
        angle = torch.where(pending & accept, torch.sign(u3 - 0.5) * torch.acos(f), angle)
        pending = pending & ~accept
    return _wrap(angle + loc.to(torch.float64)).to(loc.dtype)


class VonMises(Coordinatewise):
    """Von Mises emissions for angles (radians); mean directions ``mu``, concentrations ``kappa``.

    Shapes ``(K,)`` (one angle) or ``(K, D)`` (``D`` independent angles). Prior:
    ``mu ~ VonMises(prior.angle_loc, prior.angle_concentration)`` (uniform on the circle by
    default) and ``kappa ~ Gamma(prior.kappa_shape, prior.kappa_rate)``.

    Parameters
    ----------
    dim : int, optional
        Number of independent angles ``D``; omit for one angle per step.

    Examples
    --------
    >>> VonMises().param_shapes(num_states=2)
    {'mu': (2,), 'kappa': (2,)}
    """

    family = "vonmises"
    param_names = ("mu", "kappa")
    positive_params = ("kappa",)
    hyperparameter_names = ("angle_loc", "angle_concentration", "kappa_shape", "kappa_rate")

    def validate_data(self, data: Sequences) -> None:
        """Require angles in radians: values in ``[-pi, 2 pi]``."""
        self._check_dim(data)
        values = self._observed_values(data)
        if values.numel() == 0:
            return
        low, high = values.min().item(), values.max().item()
        if low < -math.pi - _ANGLE_SLACK or high > 2.0 * math.pi + _ANGLE_SLACK:
            raise ValueError(
                f"data: expected angles in radians, in [-pi, 2 pi], for {self!r}, got values in "
                f"[{low:g}, {high:g}] (degrees? divide by 180 / pi)"
            )

    # ------------------------------------------------------------------ prior
    def prior_distributions(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """:class:`CircularVonMises` mean directions, Gamma concentrations."""
        hyper = {
            name: self._unshaped(value)
            for name, value in self.prior_hyperparameters(prior, num_states, dtype).items()
        }
        events = hyper["kappa_rate"].dim()
        return {
            "mu": CircularVonMises(hyper["angle_loc"], hyper["angle_concentration"]).to_event(
                events
            ),
            "kappa": dist.Gamma(hyper["kappa_shape"], hyper["kappa_rate"]).to_event(events),
        }

    # ------------------------------------------------------------------ point estimation
    def weighted_statistics(self, data: Sequences, weights: torch.Tensor) -> Params:
        """``n``, ``C = sum w cos y`` and ``S = sum w sin y``, each ``(K, D)``."""

        def build() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            observed = data.observed.reshape(-1, data.dim)
            values = data.values.reshape(-1, data.dim).to(STATISTICS_DTYPE)
            values = torch.where(observed, values, 0.0)
            return (
                observed.to(STATISTICS_DTYPE),
                torch.where(observed, torch.cos(values), 0.0),
                torch.where(observed, torch.sin(values), 0.0),
            )

        observed, cosines, sines = data.cached((_STATISTICS_CACHE, "vonmises"), build)
        transposed = weights.T
        return {"n": transposed @ observed, "cos": transposed @ cosines, "sin": transposed @ sines}

    @staticmethod
    def _kappa_step(
        stats: dict[str, np.ndarray],
        shape: np.ndarray,
        rate: np.ndarray,
        mu: np.ndarray,
        kappa: np.ndarray,
    ) -> np.ndarray:
        """``kappa`` maximising ``Q + log prior`` given ``mu`` (module notes; NumPy arrays)."""
        n = stats["n"]
        projection = stats["cos"] * np.cos(mu) + stats["sin"] * np.sin(mu)

        def condition(value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            resultant = special.i1e(value) / special.i0e(value)
            slope_a = 1.0 - resultant / value - resultant**2
            return (
                projection - rate - n * resultant + (shape - 1.0) / value,
                -n * slope_a - (shape - 1.0) / value**2,
            )

        return decreasing_root(condition, MIN_KAPPA, MAX_KAPPA, kappa)

    def maximize(
        self,
        statistics: Params,
        hyperparameters: Params,
        previous: Params | None,
        use_prior: bool,
    ) -> Params:
        """ECM cycles: ``mu`` given ``kappa``, ``kappa`` given ``mu`` (module notes).

        Without the prior one cycle is exact; a coordinate without weight keeps its previous
        parameters (NaN when ``previous`` is ``None``), and so does a mean direction whose
        resultant is zero. With the prior the cycles repeat (at most 100) to relative change
        ``1e-12``, except under a prior without weight on the direction (``angle_concentration
        = 0``, the default), where ``mu`` does not depend on ``kappa`` and one cycle is exact.
        The cycles run in NumPy on the ``(K, D)`` statistics.
        """
        stats = {
            name: statistics[name].to(STATISTICS_DTYPE).numpy() for name in ("n", "cos", "sin")
        }
        n, cosines, sines = stats["n"], stats["cos"], stats["sin"]
        if previous is None:
            old_mu = old_kappa = np.full(n.shape, np.nan)
        else:
            old_mu, old_kappa = (
                np.broadcast_to(p.to(STATISTICS_DTYPE).numpy(), n.shape)
                for p in self._columns(previous)
            )
        if not use_prior:
            defined = n > 0
            direction = (cosines != 0) | (sines != 0)
            mu = np.arctan2(sines, cosines)  # 0 where there is no resultant
            ones, zeros = np.ones(n.shape), np.zeros(n.shape)
            kappa = self._kappa_step(stats, ones, zeros, mu, old_kappa)
            mu = np.where(direction, mu, old_mu)
            kappa = np.where(direction, kappa, MIN_KAPPA)
            mu = np.where(defined, mu, old_mu)
            kappa = np.where(defined, kappa, old_kappa)
            return self._params(torch.from_numpy(mu), torch.from_numpy(kappa))
        loc, weight, shape, rate = (
            np.broadcast_to(hyperparameters[name].to(STATISTICS_DTYPE).numpy(), n.shape)
            for name in ("angle_loc", "angle_concentration", "kappa_shape", "kappa_rate")
        )
        mu = np.where(np.isfinite(old_mu), old_mu, loc)
        kappa = np.where(np.isfinite(old_kappa), old_kappa, 1.0)
        prior_x, prior_y = weight * np.cos(loc), weight * np.sin(loc)
        for _ in range(_ECM_CYCLES):
            x = kappa * cosines + prior_x
            y = kappa * sines + prior_y
            new_mu = np.where((x != 0) | (y != 0), np.arctan2(y, x), mu)
            new_kappa = self._kappa_step(stats, shape, rate, new_mu, kappa)
            turn = np.abs(np.remainder(new_mu - mu + math.pi, 2.0 * math.pi) - math.pi)
            done = bool((turn <= _ECM_RTOL * (1.0 + np.abs(mu))).all()) and bool(
                (np.abs(new_kappa - kappa) <= _ECM_RTOL * np.abs(kappa)).all()
            )
            mu, kappa = new_mu, new_kappa
            if done or not weight.any():
                break  # without a prior weight on the direction, mu is atan2(S, C): one cycle
        return self._params(torch.from_numpy(mu), torch.from_numpy(kappa))

    def pooled_params(self, data: Sequences) -> Params:
        """The ML von Mises fit to all observed angles of each coordinate."""
        weights = torch.ones(data.num_sequences * data.max_length, 1, dtype=STATISTICS_DTYPE)
        stats = self.weighted_statistics(data, weights)
        return self.maximize(stats, {}, None, use_prior=False)

    def start_from_data(
        self, data: Sequences, num_states: int, generator: torch.Generator, dtype: torch.dtype
    ) -> Params:
        """Mean directions at random quantiles of the angles (jittered); ``kappa = K (k0 + 1)``.

        ``k0`` is the pooled ML concentration of each coordinate.
        """
        locations, _ = quantile_locations(data, num_states, generator, dtype)
        pooled = self._columns(self.pooled_params(data))[1].to(dtype)
        kappa = ((pooled + 1.0) * num_states).expand(num_states, -1).clone()
        jitter = torch.randn(locations.shape, generator=generator, dtype=dtype) * 0.1
        mu = _wrap(locations + jitter / kappa.sqrt())
        return self._params(mu, kappa)

    # ------------------------------------------------------------------ likelihood
    def location(self, params: Params) -> torch.Tensor:
        """Mean direction of the first coordinate wrapped to ``[-pi, pi)``: ``(..., K)``."""
        return _wrap(self._columns(params)[0][..., 0])

    def fill_value(self) -> float:
        """Zero."""
        return 0.0

    def _log_prob_elementwise(self, params: Params, values: torch.Tensor) -> torch.Tensor:
        mu, kappa = self._columns(params)
        mu, kappa = mu[..., None, None, :, :], kappa[..., None, None, :, :]
        return kappa * torch.cos(values.unsqueeze(-2) - mu) - _LOG_TWO_PI - log_i0(kappa)

    def conditional(
        self, params: Params, states: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        """:class:`CircularVonMises` of the states, masked where not observed."""
        mu, kappa = self._columns(params)
        return CircularVonMises(mu[states], kappa[states]).mask(observed).to_event(1)

    def sample(
        self, params: Params, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Draw ``(*states.shape, D)`` angles in ``[-pi, pi)``."""
        mu, kappa = self._columns(params)
        return _draw_von_mises(mu[states], kappa[states], generator)

    def bhattacharyya(self, params: Params) -> torch.Tensor:
        """``I0(R12) / sqrt(I0(k1) I0(k2))`` per coordinate (module notes), multiplied."""
        mu, kappa = self._columns(params)  # (..., K, D)
        m1, m2 = mu.unsqueeze(-2), mu.unsqueeze(-3)
        k1, k2 = kappa.unsqueeze(-2), kappa.unsqueeze(-3)
        squared = k1**2 + k2**2 + 2.0 * k1 * k2 * torch.cos(m1 - m2)
        resultant = 0.5 * squared.clamp(min=0.0).sqrt()
        log_bc = log_i0(resultant) - 0.5 * (log_i0(k1) + log_i0(k2))
        return log_bc.sum(-1).clamp(max=0.0).exp()

    def _values_pass(self, name: str, value: torch.Tensor) -> bool:
        """``kappa`` finite and ``> 0``, the others finite (one numba pass)."""
        return all_greater(value, 0.0) if name == "kappa" else all_finite(value)

    def _check_param_values(self, name: str, value: torch.Tensor) -> None:
        if name == "kappa" and (value <= 0).any():
            raise ValueError(
                f"params['kappa']: expected concentrations > 0, got {value.min().item()}"
            )

    # ---- potential (NUTS/MAP)
    def potential_coordinates(self) -> dict[str, str]:
        """``mu`` as an angle (a periodic coordinate, see the module notes), ``log kappa``."""
        return {"mu": "angle", "kappa": "log"}

    def potential_terms(
        self, prior: Prior, num_states: int, dtype: torch.dtype, data: Sequences
    ) -> PotentialTerms:
        """Von Mises ``mu`` and Gamma ``kappa`` priors in closed form; cosines and sines.

        In ``u = log kappa``: ``(a - 1 + jac) u - b exp(u) + a log b - lgamma(a)``; the prior
        of ``mu`` is ``c cos(mu - m) - log(2 pi) - log I0(c)``. The log joint is
        :func:`~hmm_pyro.kernels._numba.potentials.entry_potential` with this module's kernels.
        """
        hyper = self.prior_hyperparameters(prior, num_states, torch.float64)
        loc, weight, shape, rate = (hyper[name] for name in self.hyperparameter_names)
        constant = float(
            (-_LOG_TWO_PI - log_i0(weight)).sum()
            + (shape * torch.log(rate) - torch.lgamma(shape)).sum()
        )
        values, observed, lengths = potential_data(data)
        features = np.stack([np.cos(values), np.sin(values)], -1)
        features = np.ascontiguousarray(np.where(observed[..., None], features, 0.0))
        grids = tuple(np.ascontiguousarray(t.numpy()) for t in (loc, weight, shape, rate))
        return PotentialTerms(
            entry_potential, (_KERNELS, grids, features, observed, lengths), constant
        )


# ---------------------------------------------------------------------- numba potential
# Coefficients per state and coordinate: (kappa cos mu, kappa sin mu, log(2 pi) + log I0(kappa),
# A(kappa)); features per entry: (cos y, sin y); statistics: (1, cos y, sin y).
@numba.njit(inline="always", nogil=True, error_model="numpy")
def _log_density(c: np.ndarray, f: np.ndarray) -> float:
    return c[0] * f[0] + c[1] * f[1] - c[2]


@numba.njit(inline="always", nogil=True, error_model="numpy")
def _statistics(c: np.ndarray, f: np.ndarray, weight: float, out: np.ndarray) -> None:
    out[0] += weight
    out[1] += weight * f[0]
    out[2] += weight * f[1]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _start_terms(
    theta: np.ndarray,
    grad: np.ndarray,
    jac: float,
    features: np.ndarray,
    observed: np.ndarray,
    log_norm: np.ndarray,
    resultant: np.ndarray,
    loc: np.ndarray,
    weight: np.ndarray,
    shape: np.ndarray,
    rate: np.ndarray,
) -> tuple[float, np.ndarray, np.ndarray]:
    num, dim = loc.shape
    size = num * dim
    coefficients = np.empty((num, dim, 4))
    value = 0.0
    for k in range(num):
        for d in range(dim):
            i = k * dim + d
            mu, log_kappa = theta[i], theta[size + i]
            kappa = math.exp(log_kappa)
            gap = mu - loc[k, d]
            value += weight[k, d] * math.cos(gap)
            value += (shape[k, d] - 1.0 + jac) * log_kappa - rate[k, d] * kappa
            grad[i] = -weight[k, d] * math.sin(gap)
            grad[size + i] = shape[k, d] - 1.0 + jac - rate[k, d] * kappa
            coefficients[k, d, 0] = kappa * math.cos(mu)
            coefficients[k, d, 1] = kappa * math.sin(mu)
            coefficients[k, d, 2] = log_norm[k, d]
            coefficients[k, d, 3] = resultant[k, d]
    return value, fill_table(_log_density, coefficients, features, observed), coefficients


def _start(
    theta: np.ndarray,
    grad: np.ndarray,
    jac: float,
    features: np.ndarray,
    observed: np.ndarray,
    loc: np.ndarray,
    weight: np.ndarray,
    shape: np.ndarray,
    rate: np.ndarray,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Priors of ``mu`` and ``log kappa`` (gradient into ``grad``), the table, coefficients.

    ``log I0(kappa)`` and ``A(kappa)`` by scipy's scaled Bessel functions (module notes).
    """
    kappa = np.exp(theta[loc.size :].reshape(loc.shape))
    scaled_i0 = special.i0e(kappa)
    log_norm = _LOG_TWO_PI + np.log(scaled_i0) + kappa
    resultant = special.i1e(kappa) / scaled_i0
    return _start_terms(
        theta, grad, jac, features, observed, log_norm, resultant, loc, weight, shape, rate
    )


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _finish(
    theta: np.ndarray,
    coefficients: np.ndarray,
    gamma: np.ndarray,
    features: np.ndarray,
    observed: np.ndarray,
    grad: np.ndarray,
) -> None:
    """The likelihood's gradient in ``mu`` and ``log kappa`` from the weighted sums."""
    num, dim = coefficients.shape[0], coefficients.shape[1]
    size = num * dim
    sums = weighted_sums(_statistics, 3, coefficients, features, observed, gamma)
    for k in range(num):
        for d in range(dim):
            i = k * dim + d
            mu, kappa = theta[i], math.exp(theta[size + i])
            count, total_cos, total_sin = sums[k, d, 0], sums[k, d, 1], sums[k, d, 2]
            cos_mu, sin_mu = math.cos(mu), math.sin(mu)
            grad[i] += kappa * (total_sin * cos_mu - total_cos * sin_mu)
            projection = total_cos * cos_mu + total_sin * sin_mu
            grad[size + i] += kappa * (projection - count * coefficients[k, d, 3])


_KERNELS = EntryKernels(_start, _finish)
