"""The NUTS potential with a closed-form gradient over one flat coordinate vector.

Same density and coordinates as :class:`~hmm_pyro.inference.lean_potential.LeanPotential`
(stick-breaking for simplex rows, logs for positive parameters: Pyro's bijections), but each
evaluation is one numba call (:mod:`hmm_pyro.inference._numba_potential`) that returns the value
and the gradient together:

- the log likelihood's gradient with respect to the log parameters is the expected counts
  (``gamma_1`` for ``log pi``, summed ``xi`` for ``log A``, gamma-weighted emission statistics);
- a stick-breaking row ``x`` with ``s_m = x_m - log(W - m)``, ``z = sigmoid(s)`` and total
  weights ``w_k = alpha_k - 1 + counts_k + [k < W]`` (prior, likelihood, log-Jacobian) has
  ``d/dx_m = w_m - z_m (sum_{k >= m} w_k + 1)``;
- Gaussian and Poisson parameters use gamma-weighted moments of the data.

One flat site keeps Pyro's per-site bookkeeping in NUTS to a single tensor. Tested equal (value
and gradient) to the autograd potential, itself tested equal to the potential Pyro builds from
the model.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from hmm_pyro.data import Sequences
from hmm_pyro.inference import _numba_potential
from hmm_pyro.inference.lean_potential import LeanPotential
from hmm_pyro.model import HMM

__all__ = ["SITE", "AnalyticPotential"]

Params = dict[str, torch.Tensor]
SITE = "z"
"""Name of the single flat coordinate site seen by NUTS."""


class _ValueAndGradient(torch.autograd.Function):
    """``log_joint(flat)`` whose backward returns the precomputed closed-form gradient."""

    @staticmethod
    def forward(ctx: Any, flat: torch.Tensor, potential: AnalyticPotential) -> torch.Tensor:
        value, gradient = potential.value_and_gradient(flat.detach())
        ctx.save_for_backward(gradient)
        return value

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (gradient,) = ctx.saved_tensors
        return grad * gradient, None


class AnalyticPotential:
    """``U(z) = -log p(y, T(z)) - log|det J_T(z)|`` for NUTS, ``z`` one flat vector.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        The observations.
    """

    def __init__(self, hmm: HMM, data: Sequences) -> None:
        self.hmm = hmm
        self.lean = LeanPotential(hmm, data)
        self.data = self.lean.data
        example = self.lean.unconstrain(hmm.sample_prior(seed=0))
        self.layout = [(name, tuple(example[name].shape)) for name in hmm.param_names]
        self.size = sum(math.prod(shape) for _, shape in self.layout)
        self._function, self._arguments = self._static_arguments()
        self.num_evaluations = 0

    # ------------------------------------------------------------------ coordinates
    def split(self, flat: torch.Tensor) -> Params:
        """Flat coordinates ``(..., P)`` to per-site coordinates."""
        coords, start = {}, 0
        for name, shape in self.layout:
            size = math.prod(shape)
            coords[name] = flat[..., start : start + size].reshape(*flat.shape[:-1], *shape)
            start += size
        return coords

    def join(self, coords: Params) -> torch.Tensor:
        """Per-site coordinates to one flat vector ``(..., P)``."""
        pieces = []
        for name, shape in self.layout:
            value = coords[name]
            pieces.append(value.reshape(*value.shape[: value.dim() - len(shape)], -1))
        return torch.cat(pieces, dim=-1)

    def unconstrain(self, params: Params) -> dict[str, torch.Tensor]:
        """Parameters to ``{SITE: flat coordinates}``."""
        return {SITE: self.join(self.lean.unconstrain(params))}

    def constrain(self, coords: dict[str, torch.Tensor]) -> Params:
        """``{SITE: flat coordinates (..., P)}`` to parameters."""
        return self.lean.constrain(self.split(coords[SITE]))

    # ------------------------------------------------------------------ density
    def _static_arguments(self) -> tuple[Any, tuple[Any, ...]]:
        """The numba function of this emission family and its data/hyperparameter arrays."""
        hmm, lean, data = self.hmm, self.lean, self.data
        num = hmm.num_states
        alpha_pi = lean.concentration["pi"].numpy()[None]
        alpha_a = lean.concentration["A"].numpy()
        observed = data.observed.numpy() & data.mask.numpy()[..., None]
        lengths = data.lengths.numpy().astype(np.int64)
        family = hmm.emission.family
        if family == "categorical":
            num_symbols = hmm.emission.num_symbols
            symbols = np.where(
                observed[..., 0], np.nan_to_num(data.values.numpy()[..., 0]), num_symbols
            ).astype(np.int64)
            arguments = (
                num,
                num_symbols,
                alpha_pi,
                alpha_a,
                lean.concentration["B"].numpy(),
                np.ascontiguousarray(symbols.T),  # time-major: sequences are vector lanes
                lengths,
            )
            return _numba_potential.categorical, arguments
        dim = data.dim
        values = np.ascontiguousarray(np.where(observed, np.nan_to_num(data.values.numpy()), 0.0))

        def grid(tensor: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(tensor.reshape(num, dim).numpy())

        hyper = lean.hyper
        if family == "gaussian":
            arguments = (
                num,
                dim,
                alpha_pi,
                alpha_a,
                grid(hyper["mu_loc"]),
                grid(hyper["mu_scale"]),
                grid(hyper["a"]),
                grid(hyper["b"]),
                values,
                observed,
                lengths,
            )
            return _numba_potential.gaussian, arguments
        log_factorial = np.where(observed, torch.lgamma(torch.from_numpy(values) + 1).numpy(), 0.0)
        arguments = (
            num,
            dim,
            alpha_pi,
            alpha_a,
            grid(hyper["a"]),
            grid(hyper["b"]),
            values,
            log_factorial,
            observed,
            lengths,
        )
        return _numba_potential.poisson, arguments

    def value_and_gradient(
        self, flat: torch.Tensor, jacobian: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``log_joint(flat)`` and its gradient, without autograd.

        With ``jacobian=False``: the MAP objective ``log p(y, T(z))`` and its gradient in ``z``.
        """
        point = np.ascontiguousarray(flat.detach().to(torch.float64).numpy())
        value, gradient = self._function(point, *self._arguments, 1.0 if jacobian else 0.0)
        if not (np.isfinite(value) and np.isfinite(gradient).all()):
            # A point where some sequence has zero likelihood (or the coordinates overflow):
            # log density -inf; a zero gradient lets line searches and NUTS reject it.
            value, gradient = -math.inf, np.zeros_like(gradient)
        return (
            torch.tensor(value + self.lean.constant, dtype=flat.dtype),
            torch.from_numpy(gradient).to(flat.dtype),
        )

    def log_joint(self, coords: dict[str, torch.Tensor]) -> torch.Tensor:
        """``log p(y, T(z)) + log|det J_T(z)|``, differentiable (closed-form gradient)."""
        return _ValueAndGradient.apply(coords[SITE], self)

    def __call__(self, coords: dict[str, torch.Tensor]) -> torch.Tensor:
        """Potential energy ``-log_joint(z)``; counts evaluations."""
        self.num_evaluations += 1
        return -self.log_joint(coords)
