"""Torch to numba: the log likelihood as autograd functions whose gradients are expected counts.

The gradient of ``log p(y)`` with respect to the log-space inputs is the forward-backward
expected counts: ``d/d log_pi = gamma_1``, ``d/d log_A = sum_t xi_t``, ``d/d log_lik = gamma``,
and for categorical emissions ``d/d log B[k, v]`` the gamma-weighted count of symbol ``v``.
:class:`FusedLogLikelihood` (on an ``(..., T, K)`` table) and :class:`CategoricalLogLikelihood`
(on symbols) compute them with the numba sweeps and return them from ``backward``, so autograd
never records a tape over time. First-order gradients only; CPU tensors (:func:`supports`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hmm_pyro.kernels._numba import batch, symbols

__all__ = [
    "CategoricalLogLikelihood",
    "FusedLogLikelihood",
    "RegressionLogLikelihood",
    "VaryingLogLikelihood",
    "fused_forward_backward",
    "fused_log_likelihood_value",
    "supports",
    "varying_forward_backward",
]


def supports(*tensors: torch.Tensor) -> bool:
    """True when the numba kernels can take these tensors (all on the CPU)."""
    return all(tensor.device.type == "cpu" for tensor in tensors)


def _flat_numpy(
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor,
    varying: bool = False,
) -> tuple[np.ndarray, ...]:
    """Flatten broadcast inputs to ``(B, ...)`` contiguous float64 numpy arrays.

    ``varying``: ``log_A`` is ``(..., T, K, K)``, one matrix per step.
    """
    num_steps, num_states = log_lik.shape[-2:]
    steps_A = (num_steps,) if varying else ()

    def convert(tensor: torch.Tensor, *tail: int) -> np.ndarray:
        flat = tensor.detach().reshape(-1, *tail).to(torch.float64)
        return np.ascontiguousarray(flat.numpy())

    return (
        convert(log_pi, num_states),
        convert(log_A, *steps_A, num_states, num_states),
        convert(log_lik, num_steps, num_states),
        np.ascontiguousarray(lengths.reshape(-1).numpy().astype(np.int64)),
    )


def fused_forward_backward(
    log_pi: torch.Tensor, log_A: torch.Tensor, log_lik: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the numba forward-backward on broadcast inputs (no autograd).

    Returns
    -------
    log_likelihood, gamma, transitions : torch.Tensor
        ``(...)``, ``(..., T, K)``, ``(..., K, K)`` in the dtype of ``log_lik``.
    """
    batch_shape = log_lik.shape[:-2]
    num_steps, num_states = log_lik.shape[-2:]
    log_z, gamma, xi = batch.forward_backward_batch(*_flat_numpy(log_pi, log_A, log_lik, lengths))
    dtype = log_lik.dtype
    return (
        torch.from_numpy(log_z).to(dtype).reshape(batch_shape),
        torch.from_numpy(gamma).to(dtype).reshape(*batch_shape, num_steps, num_states),
        torch.from_numpy(xi).to(dtype).reshape(*batch_shape, num_states, num_states),
    )


def fused_log_likelihood_value(
    log_pi: torch.Tensor, log_A: torch.Tensor, log_lik: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """Forward sweep only, no gradient: ``(...)``."""
    log_z = batch.log_likelihood_batch(*_flat_numpy(log_pi, log_A, log_lik, lengths))
    return torch.from_numpy(log_z).to(log_lik.dtype).reshape(log_lik.shape[:-2])


class FusedLogLikelihood(torch.autograd.Function):
    """``log p(y)`` with gradients from one fused forward-backward pass (first order only)."""

    @staticmethod
    def forward(
        ctx: Any,
        log_pi: torch.Tensor,
        log_A: torch.Tensor,
        log_lik: torch.Tensor,
        lengths: torch.Tensor,
    ) -> torch.Tensor:
        """Return the log likelihood and keep gamma and summed xi for ``backward``."""
        if not any(ctx.needs_input_grad[:3]):
            return fused_log_likelihood_value(log_pi, log_A, log_lik, lengths)
        log_z, gamma, xi = fused_forward_backward(log_pi, log_A, log_lik, lengths)
        ctx.save_for_backward(gamma, xi)
        return log_z

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Chain rule with the expected counts."""
        gamma, xi = ctx.saved_tensors
        grad_pi = grad[..., None] * gamma[..., 0, :] if ctx.needs_input_grad[0] else None
        grad_A = grad[..., None, None] * xi if ctx.needs_input_grad[1] else None
        grad_lik = grad[..., None, None] * gamma if ctx.needs_input_grad[2] else None
        return grad_pi, grad_A, grad_lik, None


def varying_forward_backward(
    log_pi: torch.Tensor, log_A: torch.Tensor, log_lik: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The numba forward-backward with one transition matrix per step (no autograd).

    ``log_A (..., T, K, K)``: ``log_A[..., t, :, :]`` moves the chain from step ``t`` to
    ``t + 1``.

    Returns
    -------
    log_likelihood, gamma, xi : torch.Tensor
        ``(...)``, ``(..., T, K)`` and the per-step pair probabilities ``(..., T, K, K)``
        (``xi[..., t, i, j] = p(z_t = i, z_{t+1} = j | y)``, zero from the last step of each
        sequence on), in the dtype of ``log_lik``.
    """
    batch_shape = log_lik.shape[:-2]
    num_steps, num_states = log_lik.shape[-2:]
    arrays = _flat_numpy(log_pi, log_A, log_lik, lengths, varying=True)
    log_z, gamma, xi = batch.varying_forward_backward_batch(*arrays)
    dtype = log_lik.dtype
    return (
        _tensor(log_z, dtype).reshape(batch_shape),
        _tensor(gamma, dtype).reshape(*batch_shape, num_steps, num_states),
        _tensor(xi, dtype).reshape(*batch_shape, num_steps, num_states, num_states),
    )


class VaryingLogLikelihood(torch.autograd.Function):
    """``log p(y)`` with one transition matrix per step; gradients from one fused pass.

    Inputs as :func:`varying_forward_backward` (broadcast to one batch shape). The gradient
    with respect to ``log_A[..., t, :, :]`` is the per-step ``xi``, with respect to
    ``log_pi`` the first gamma and with respect to ``log_lik`` gamma (first order only).
    """

    @staticmethod
    def forward(
        ctx: Any,
        log_pi: torch.Tensor,
        log_A: torch.Tensor,
        log_lik: torch.Tensor,
        lengths: torch.Tensor,
    ) -> torch.Tensor:
        """Return the log likelihood and keep gamma and the per-step xi for ``backward``."""
        if not any(ctx.needs_input_grad[:3]):
            arrays = _flat_numpy(log_pi, log_A, log_lik, lengths, varying=True)
            log_z = batch.varying_log_likelihood_batch(*arrays)
            return _tensor(log_z, log_lik.dtype).reshape(log_lik.shape[:-2])
        log_z, gamma, xi = varying_forward_backward(log_pi, log_A, log_lik, lengths)
        ctx.save_for_backward(gamma, xi)
        return log_z

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Chain rule with the expected counts of each step."""
        gamma, xi = ctx.saved_tensors
        if bool((grad == 1.0).all()):  # a summed log likelihood: the counts as they are
            grad_A, grad_lik = xi, gamma
        else:
            grad_A, grad_lik = grad[..., None, None, None] * xi, grad[..., None, None] * gamma
        grad_pi = grad[..., None] * gamma[..., 0, :] if ctx.needs_input_grad[0] else None
        return (
            grad_pi,
            grad_A if ctx.needs_input_grad[1] else None,
            grad_lik if ctx.needs_input_grad[2] else None,
            None,
        )


def _regression_arrays(
    log_pi: torch.Tensor,
    coefficients: torch.Tensor,
    design: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor,
) -> tuple[np.ndarray, ...]:
    """Flat float64 arrays for :func:`~hmm_pyro.kernels._numba.batch.regression_batch`."""
    num_steps, num_states = log_lik.shape[-2:]
    return (
        _numpy64(log_pi.reshape(-1, num_states)),
        _numpy64(coefficients.reshape(-1, *coefficients.shape[-3:])),
        _numpy64(design.reshape(-1, *design.shape[-2:])),
        _numpy64(log_lik.reshape(-1, num_steps, num_states)),
        np.ascontiguousarray(lengths.reshape(-1).numpy().astype(np.int64)),
    )


class RegressionLogLikelihood(torch.autograd.Function):
    """``log p(y)`` with transition rows ``softmax(x_t . coefficients[i])``; one fused pass.

    Inputs broadcast by :func:`hmm_pyro.kernels.regression_log_likelihood`: ``log_pi (..., N,
    K)``, ``coefficients (..., K, K, P)`` (one set per index of the leading dimensions, shared
    by the ``N`` sequences), ``design (M, T, P)`` (``M`` is 1, ``N`` or the whole batch; no
    gradient), ``log_lik (..., N, T, K)``, ``lengths (..., N)``. The gradient with respect to
    the coefficients comes from the backward sweep
    (:mod:`~hmm_pyro.kernels._numba.regression`) summed over each set's sequences; a
    backward pass whose incoming gradient differs between the sequences of one set runs the
    sweeps again with those weights. First order only.
    """

    @staticmethod
    def forward(
        ctx: Any,
        log_pi: torch.Tensor,
        coefficients: torch.Tensor,
        design: torch.Tensor,
        log_lik: torch.Tensor,
        lengths: torch.Tensor,
    ) -> torch.Tensor:
        """Return the log likelihood; keep gamma and the coefficients' gradient."""
        arrays = _regression_arrays(log_pi, coefficients, design, log_lik, lengths)
        per_draw = log_lik.shape[-3]
        backward = any(ctx.needs_input_grad)
        log_z, gamma, grad = batch.regression_batch(*arrays, per_draw, backward=backward)
        if backward:
            ctx.arrays, ctx.per_draw = arrays, per_draw
            ctx.gamma, ctx.grad, ctx.shapes = gamma, grad, (coefficients.shape, log_lik.shape)
        return _tensor(log_z, log_lik.dtype).reshape(log_lik.shape[:-2])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Chain rule with gamma; the coefficients' gradient per set, reweighted if needed."""
        coefficient_shape, shape = ctx.shapes
        per_set = _numpy64(grad).reshape(-1, ctx.per_draw)
        uniform = bool((per_set == per_set[:, :1]).all())
        grad_coefficients = None
        if ctx.needs_input_grad[1]:
            if uniform:
                summed = per_set[:, 0, None, None, None] * ctx.grad
            else:
                weights = per_set.reshape(-1)
                summed = batch.regression_batch(*ctx.arrays, ctx.per_draw, weights)[2]
            grad_coefficients = _tensor(summed, grad.dtype).reshape(coefficient_shape)
        gamma = _tensor(ctx.gamma, grad.dtype).reshape(shape)
        if not (uniform and bool((per_set[:, 0] == 1.0).all())):
            gamma = grad[..., None, None] * gamma  # else a summed log likelihood: gamma as is
        return (
            gamma[..., 0, :] if ctx.needs_input_grad[0] else None,
            grad_coefficients,
            None,
            gamma if ctx.needs_input_grad[3] else None,
            None,
        )


def _numpy64(tensor: torch.Tensor) -> np.ndarray:
    if tensor.dtype != torch.float64:
        tensor = tensor.to(torch.float64)
    return np.ascontiguousarray(tensor.detach().numpy())


def _tensor(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    tensor = torch.from_numpy(array)
    return tensor if dtype == torch.float64 else tensor.to(dtype)


class CategoricalLogLikelihood(torch.autograd.Function):
    """Per-sequence ``log p(y)`` of symbols, the expected counts as gradients (first order only).

    Inputs: ``log_pi (K,)``, ``log_A (K, K)``, ``log_B (K, V)`` tensors of one dtype, the
    time-major ``(T, N)`` symbols of
    :func:`~hmm_pyro.kernels._numba.symbols.time_major_symbols` and the ``(N,)`` int64 lengths.
    Returns ``(N,)`` in the dtype of ``log_B``.
    """

    @staticmethod
    def forward(
        ctx: Any,
        log_pi: torch.Tensor,
        log_A: torch.Tensor,
        log_B: torch.Tensor,
        lanes: np.ndarray,
        lengths: np.ndarray,
    ) -> torch.Tensor:
        """Forward sweep, and the backward sweep when a gradient is needed."""
        log_z, gamma, xi = symbols.categorical_lanes(
            _numpy64(log_pi),
            _numpy64(log_A),
            _numpy64(log_B),
            lanes,
            lengths,
            any(ctx.needs_input_grad[:3]),
        )
        ctx.lanes, ctx.gamma, ctx.xi, ctx.num_symbols = lanes, gamma, xi, log_B.shape[1]
        return _tensor(log_z, log_B.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Chain rule: weighted gamma at the first step, summed xi and per-symbol counts."""
        start, pairs, counts = symbols.weighted_statistics(
            ctx.gamma, ctx.xi, ctx.lanes, _numpy64(grad), ctx.num_symbols
        )
        grad_pi, grad_A, grad_B = (
            _tensor(array, grad.dtype) if needed else None
            for array, needed in zip((start, pairs, counts), ctx.needs_input_grad, strict=False)
        )
        return grad_pi, grad_A, grad_B, None, None
