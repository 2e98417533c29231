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

from hmm_pyro.kernels._numba import batch, symbol_sweeps, symbols

__all__ = [
    "CategoricalLogLikelihood",
    "CategoricalProbabilityLikelihood",
    "FusedLogLikelihood",
    "RegressionLogLikelihood",
    "VaryingLogLikelihood",
    "categorical_expected_counts",
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
        if bool((grad == 1.0).all()):  # a summed log likelihood: the counts as they are
            grad_A, grad_lik = xi, gamma  # (a product with ones cost 7 ms on 10^6 x 2 steps)
        else:
            grad_A, grad_lik = grad[..., None, None] * xi, grad[..., None, None] * gamma
        return (
            grad_pi,
            grad_A if ctx.needs_input_grad[1] else None,
            grad_lik if ctx.needs_input_grad[2] else None,
            None,
        )


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


_EPS64 = float(np.finfo(np.float64).eps)


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


def categorical_expected_counts(
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_B: torch.Tensor,
    lanes: np.ndarray,
    lengths: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sequence ``log p(y)`` and the expected counts summed over sequences (no autograd).

    The values and gradients of :class:`CategoricalLogLikelihood` with unit weights, without
    the autograd machinery: ``(N,)`` log likelihoods, first-step weights ``(K,)``, transition
    counts ``(K, K)`` and emission counts ``(K, V)``, in the dtype of ``log_B``.
    """
    sweeps = symbol_sweeps.categorical_sweeps(
        _numpy64(log_pi), _numpy64(log_A), _numpy64(log_B), lanes, lengths, True
    )
    log_z = sweeps.log_z
    counts = sweeps.statistics(np.ones(log_z.shape[0]), log_B.shape[1])
    dtype = log_B.dtype
    return (_tensor(log_z, dtype), *(_tensor(array, dtype) for array in counts))


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
        return _categorical_forward(ctx, log_pi, log_A, log_B, lanes, lengths)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Chain rule: weighted gamma at the first step, summed xi and per-symbol counts."""
        start, pairs, counts = _categorical_counts(ctx, grad)
        grad_pi, grad_A, grad_B = (
            _tensor(array, grad.dtype) if needed else None
            for array, needed in zip((start, pairs, counts), ctx.needs_input_grad, strict=False)
        )
        return grad_pi, grad_A, grad_B, None, None


class CategoricalProbabilityLikelihood(torch.autograd.Function):
    """:class:`CategoricalLogLikelihood` of probabilities, their logarithms taken inside.

    Inputs: ``pi (K,)``, ``A (K, K)``, ``B (K, V)`` tensors of one dtype, then as
    :class:`CategoricalLogLikelihood`. The kernel gets ``log pi``, ``log A`` and
    ``max(log B, finfo.min)``; the gradients are chained as Pyro's ``safe_log`` and
    ``clamp`` chain them, ``g / max(p, eps)`` (and zero where ``B = 0``), so value and gradients
    equal, bit for bit, those of ``CategoricalLogLikelihood`` on
    ``safe_log(pi), safe_log(A), safe_log(B).clamp(min=finfo.min)``: one autograd node where
    that route records four (CPU time of value and gradient, 20 x 500 symbols, K = 3: 0.32 ms
    composed, 0.25 ms here, 0.22 ms for the log kernel on leaf logs).
    """

    @staticmethod
    def forward(
        ctx: Any,
        pi: torch.Tensor,
        A: torch.Tensor,
        B: torch.Tensor,
        lanes: np.ndarray,
        lengths: np.ndarray,
    ) -> torch.Tensor:
        """The logarithms, the forward sweep, and the backward sweep when a gradient is needed."""
        ctx.save_for_backward(pi, A, B)
        log_B = B.log().clamp_(min=torch.finfo(B.dtype).min)
        return _categorical_forward(ctx, pi.log(), A.log(), log_B, lanes, lengths)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Counts as in :class:`CategoricalLogLikelihood`, divided by ``max(p, eps)``."""
        start, pairs, counts = _categorical_counts(ctx, grad)
        probs = [tensor.detach().numpy() for tensor in ctx.saved_tensors]  # float32/float64
        if probs[0].dtype == np.float64:
            symbols.probability_gradients(start, pairs, counts, *probs, _EPS64)
        else:  # rounded to the dtype first, as the composition's gradients are
            start, pairs, counts = (
                _chained(array, values, clamped)
                for array, values, clamped in zip(
                    (start, pairs, counts), probs, (False, False, True), strict=True
                )
            )
        grads = (
            torch.from_numpy(array) if needed else None
            for array, needed in zip((start, pairs, counts), ctx.needs_input_grad, strict=False)
        )
        return (*grads, None, None)


def _chained(array: np.ndarray, values: np.ndarray, clamped: bool) -> np.ndarray:
    """``array`` in the dtype of ``values``, divided by ``max(values, eps)``.

    Zero where ``clamped`` and not ``values > 0``: as
    :func:`~hmm_pyro.kernels._numba.symbols.probability_gradients`, in the values' dtype.
    """
    chained = array.astype(values.dtype)
    if clamped:
        chained = np.where(values > 0, chained, values.dtype.type(0))
    return chained / np.maximum(values, np.finfo(values.dtype).eps)


def _categorical_forward(
    ctx: Any,
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_B: torch.Tensor,
    lanes: np.ndarray,
    lengths: np.ndarray,
) -> torch.Tensor:
    """The categorical sweeps; what the backward pass needs is kept on ``ctx``."""
    sweeps = symbol_sweeps.categorical_sweeps(
        _numpy64(log_pi),
        _numpy64(log_A),
        _numpy64(log_B),
        lanes,
        lengths,
        any(ctx.needs_input_grad[:3]),
    )
    ctx.sweeps = sweeps
    ctx.num_symbols = log_B.shape[1]
    return _tensor(sweeps.log_z, log_B.dtype)


def _categorical_counts(ctx: Any, grad: torch.Tensor) -> tuple[np.ndarray, ...]:
    """Gradients with respect to ``log pi``, ``log A``, ``log B`` (float64 arrays)."""
    return ctx.sweeps.statistics(_numpy64(grad), ctx.num_symbols)
