"""The potential of NUTS and MAP: the log joint over one flat coordinate vector, in closed form.

``U(z) = -log p(y, T(z)) - log|det J_T(z)|`` over the coordinates of
:class:`~hmm_pyro.inference.coordinates.Coordinates` (Pyro's bijections: stick-breaking for
simplex rows, logs for positive parameters). Each evaluation is one call of the emission
family's numba log joint (:meth:`~hmm_pyro.emissions.Emission.potential_terms`, in
:mod:`hmm_pyro.kernels._numba.potentials`), which returns the value and the gradient together:

- the log likelihood's gradient with respect to the log parameters is the expected counts
  (``gamma_1`` for ``log pi``, summed ``xi`` for ``log A``, gamma-weighted emission statistics);
- a stick-breaking row ``x`` with ``s_m = x_m - log(W - m)``, ``z = sigmoid(s)`` and total
  weights ``w_k = alpha_k - 1 + counts_k + [k < W]`` (prior, likelihood, log-Jacobian) has
  ``d/dx_m = w_m - z_m (sum_{k >= m} w_k + 1)``;
- Gaussian and Poisson parameters use gamma-weighted moments of the data.

One flat site keeps Pyro's per-site bookkeeping in NUTS to a single tensor. Tested equal (value
and gradient) to a closed-form autograd potential, itself tested equal to the potential Pyro
builds from :meth:`HMM.model`.

A family without a numba log joint (``potential_terms`` is ``None``: families given by a Pyro
distribution, :mod:`hmm_pyro.emissions.distribution`) gets the same potential in torch: the
coordinates mapped with their log-Jacobian (:meth:`Coordinates.constrain_with_log_det`), the
Dirichlet rows of ``pi`` and ``A`` in log space, the other priors' ``log_prob`` and the
model's :meth:`~hmm_pyro.HMM.sequence_log_likelihood` (the per-state table into the fused
forward kernel), differentiated by autograd. A :class:`~hmm_pyro.CovariateHMM` takes the numba
route where its family has one (per entry or categorical:
:mod:`~hmm_pyro.kernels._numba.regression_potential`) and this torch route otherwise
(coefficients with Normal priors, the regression kernel differentiated by autograd).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyro
import torch

from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.inference.coordinates import SIMPLEX_COORDINATES, Coordinates
from hmm_pyro.model import HMM

__all__ = ["SITE", "Potential"]

SITE = "z"
"""Name of the single flat coordinate site seen by NUTS."""


class _ValueAndGradient(torch.autograd.Function):
    """``log_joint(flat)`` whose backward returns the precomputed closed-form gradient."""

    @staticmethod
    def forward(ctx: Any, flat: torch.Tensor, potential: Potential) -> torch.Tensor:
        value, gradient = potential.value_and_gradient(flat.detach())
        ctx.save_for_backward(gradient)
        return value

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (gradient,) = ctx.saved_tensors
        return grad * gradient, None


class Potential:
    """``U(z) = -log p(y, T(z)) - log|det J_T(z)|`` for NUTS, ``z`` one flat vector.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences or array-like
        The observations (validated for the model).
    simplex : {"stick-breaking", "isometric log-ratio"}
        Coordinates of the simplex rows (:data:`SIMPLEX_COORDINATES`). Stick-breaking is what
        the potentials decode; isometric log-ratio coordinates are mapped to it in torch before
        each evaluation (:meth:`Coordinates.stick_from_isometric`), the gradient carried back by
        autograd: an internal switch kept for ``benchmarks/ess_per_gradient.py``, which measured
        it against stick-breaking.

    Attributes
    ----------
    coordinates : Coordinates
        The map between parameters and the flat vector.
    size : int
        Length of the flat vector.
    constant : float
        Log normalising constant of the prior (added to every value).
    num_evaluations : int
        Calls of the potential so far.
    """

    def __init__(self, hmm: HMM, data: Sequences, simplex: str = "stick-breaking") -> None:
        if simplex not in SIMPLEX_COORDINATES:
            raise ValueError(f"simplex: expected one of {SIMPLEX_COORDINATES}, got {simplex!r}")
        self.simplex = simplex
        self.hmm = hmm
        self.data = hmm.prepare_data(data)
        self.coordinates = Coordinates(hmm)
        self.size = self.coordinates.size
        terms = hmm.potential_terms(self.data)
        concentration = self.coordinates.concentration
        self.route = "numba" if terms is not None else "torch"
        """``"numba"``: the family's closed-form log joint; ``"torch"``: autograd."""
        if terms is not None:
            self._function = terms.function
            # A CovariateHMM has no Dirichlet rows on A (nor on pi with initial covariates):
            # its potential does not read them.
            empty = np.empty((0, 0))
            alpha_pi = concentration["pi"].numpy()[None] if "pi" in concentration else empty
            alpha_A = concentration["A"].numpy() if "A" in concentration else empty
            self._arguments = (alpha_pi, alpha_A, *terms.arguments)
        self.constant = self.coordinates.constant + (terms.constant if terms is not None else 0.0)
        self.num_evaluations = 0

    def split(self, flat: torch.Tensor) -> Params:
        """Flat coordinates ``(..., P)`` to per-parameter coordinates."""
        return self.coordinates.split(flat)

    def join(self, coords: Params) -> torch.Tensor:
        """Per-parameter coordinates to one flat vector ``(..., P)``."""
        return self.coordinates.join(coords)

    def unconstrain(self, params: Params) -> dict[str, torch.Tensor]:
        """Parameters to ``{SITE: flat coordinates}``."""
        flat = self.coordinates.unconstrain(params)
        if self.simplex != "stick-breaking":
            flat = self.coordinates.isometric_from_stick(flat)
        return {SITE: flat}

    def constrain(self, coords: dict[str, torch.Tensor]) -> Params:
        """``{SITE: flat coordinates (..., P)}`` to parameters."""
        flat = coords[SITE]
        if self.simplex != "stick-breaking":
            flat = self.coordinates.stick_from_isometric(flat)[0]
        return self.coordinates.constrain(flat)

    def value_and_gradient(
        self, flat: torch.Tensor, jacobian: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``log_joint(flat)`` and its gradient, without autograd.

        With ``jacobian=False``: the MAP objective ``log p(y, T(z))`` and its gradient in ``z``.
        """
        if self.simplex != "stick-breaking":
            return self._isometric_value_and_gradient(flat, jacobian)
        return self._stick_value_and_gradient(flat, jacobian)

    def _stick_value_and_gradient(
        self, flat: torch.Tensor, jacobian: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`value_and_gradient` at stick-breaking coordinates."""
        if self.route == "torch":
            value, gradient = self._torch_log_joint(flat, jacobian)
            value, gradient = self._finite(value, gradient)
        else:
            point = np.ascontiguousarray(flat.detach().to(torch.float64).numpy())
            value, gradient = self._stick_numpy(point, jacobian)
        return (
            torch.tensor(value, dtype=flat.dtype),
            torch.from_numpy(gradient).to(flat.dtype),
        )

    def _finite(self, value: float, gradient: np.ndarray) -> tuple[float, np.ndarray]:
        """The log joint with :attr:`constant` added; ``-inf`` and a zero gradient off support.

        A point where some sequence has zero likelihood (or the coordinates overflow) has log
        density ``-inf``; a zero gradient lets line searches and NUTS reject it.
        """
        if not (math.isfinite(value) and np.isfinite(gradient).all()):
            return -math.inf, np.zeros_like(gradient)
        return value + self.constant, gradient

    def _stick_numpy(self, point: np.ndarray, jacobian: bool) -> tuple[float, np.ndarray]:
        """The numba log joint at stick-breaking coordinates (float64, contiguous)."""
        value, gradient = self._function(point, *self._arguments, 1.0 if jacobian else 0.0)
        return self._finite(float(value), gradient)

    def numpy_value_and_gradient(self, point: np.ndarray) -> tuple[float, np.ndarray]:
        """``log_joint(point)`` (Jacobian included) and its gradient, in NumPy; counts.

        The hot path of :class:`~hmm_pyro.inference.sampler.NUTS`: with the numba route and
        stick-breaking coordinates one numba call and no torch; the torch route and isometric
        coordinates go through :meth:`value_and_gradient`. ``point`` is a float64 vector of
        length :attr:`size`; off the support the value is ``-inf`` (gradient zero). Each call
        adds one to :attr:`num_evaluations`.
        """
        self.num_evaluations += 1
        if self.route == "numba" and self.simplex == "stick-breaking":
            return self._stick_numpy(point, True)
        value, gradient = self.value_and_gradient(torch.from_numpy(point))
        return float(value), gradient.numpy()

    def _isometric_value_and_gradient(
        self, flat: torch.Tensor, jacobian: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`value_and_gradient` at isometric log-ratio coordinates.

        The stick-breaking potential at the mapped point plus the map's log-Jacobian; the
        gradient by the chain rule.
        """
        point = flat.detach().to(torch.float64).requires_grad_()
        with torch.enable_grad():
            stick, log_det = self.coordinates.stick_from_isometric(point)
        value, gradient = self._stick_value_and_gradient(stick.detach(), jacobian)
        if not math.isfinite(float(value)):
            return value.to(flat.dtype), torch.zeros_like(flat)
        with torch.enable_grad():
            total = (stick * gradient.to(torch.float64)).sum() + (log_det if jacobian else 0.0)
            (chained,) = torch.autograd.grad(total, point)
        if jacobian:
            value = value + log_det.detach()
        return value.to(flat.dtype), chained.to(flat.dtype)

    def _torch_log_joint(self, flat: torch.Tensor, jacobian: bool) -> tuple[float, np.ndarray]:
        """The log joint without the Dirichlet constants (``pi``, ``A``), and its gradient.

        Like the numba functions: the constants are :attr:`constant`.
        """
        point = flat.detach().to(self.hmm.dtype).clone().requires_grad_()
        alpha = self.coordinates.concentration
        # Off the support (an overflowing coordinate) the density is -inf or NaN, not an error.
        with torch.enable_grad(), pyro.validation_enabled(False):
            params, logs, log_det = self.coordinates.constrain_with_log_det(point)
            value = sum(((alpha[name] - 1.0) * logs[name]).sum() for name in alpha)
            for name, prior in self.hmm.prior_distributions().items():
                if name not in alpha:
                    value = value + prior.log_prob(params[name])
            log_lik = self.hmm.sequence_log_likelihood(params, self.data, logs)
            value = value + log_lik.sum()
            if jacobian:
                value = value + log_det
            (gradient,) = torch.autograd.grad(value, point)
        return float(value.detach()), gradient.to(torch.float64).numpy()

    def log_joint(self, coords: dict[str, torch.Tensor]) -> torch.Tensor:
        """``log p(y, T(z)) + log|det J_T(z)|``, differentiable (closed-form gradient)."""
        return _ValueAndGradient.apply(coords[SITE], self)

    def __call__(self, coords: dict[str, torch.Tensor]) -> torch.Tensor:
        """Potential energy ``-log_joint(z)``; counts evaluations."""
        self.num_evaluations += 1
        return -self.log_joint(coords)
