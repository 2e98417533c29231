"""Fused forward-backward on the CPU: value and gradient of the log likelihood in one pass.

The gradient of ``log p(y)`` with respect to the log-space inputs is the forward-backward
expected counts: ``d/d log_pi = gamma_1``, ``d/d log_A = sum_t xi_t``, ``d/d log_lik = gamma``.
:class:`FusedLogLikelihood` computes them with the numba sweeps in ``_numba_fb`` and returns them
from ``backward``, so autograd never records a tape over time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hmm_pyro.kernels import _numba_fb

__all__ = ["FusedLogLikelihood", "fused_forward_backward", "supports"]


def supports(*tensors: torch.Tensor) -> bool:
    """True when the fused CPU kernel can take these tensors (all on the CPU)."""
    return all(tensor.device.type == "cpu" for tensor in tensors)


def _flat_numpy(
    log_pi: torch.Tensor, log_A: torch.Tensor, log_lik: torch.Tensor, lengths: torch.Tensor
) -> tuple[np.ndarray, ...]:
    """Flatten broadcast inputs to ``(B, ...)`` contiguous float64 numpy arrays."""
    num_steps, num_states = log_lik.shape[-2:]

    def convert(tensor: torch.Tensor, *tail: int) -> np.ndarray:
        flat = tensor.detach().reshape(-1, *tail).to(torch.float64)
        return np.ascontiguousarray(flat.numpy())

    return (
        convert(log_pi, num_states),
        convert(log_A, num_states, num_states),
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
    batch = log_lik.shape[:-2]
    num_steps, num_states = log_lik.shape[-2:]
    log_z, gamma, xi = _numba_fb.forward_backward_batch(
        *_flat_numpy(log_pi, log_A, log_lik, lengths)
    )
    dtype = log_lik.dtype
    return (
        torch.from_numpy(log_z).to(dtype).reshape(batch),
        torch.from_numpy(gamma).to(dtype).reshape(*batch, num_steps, num_states),
        torch.from_numpy(xi).to(dtype).reshape(*batch, num_states, num_states),
    )


def fused_log_likelihood_value(
    log_pi: torch.Tensor, log_A: torch.Tensor, log_lik: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """Forward sweep only, no gradient: ``(...)``."""
    log_z = _numba_fb.log_likelihood_batch(*_flat_numpy(log_pi, log_A, log_lik, lengths))
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
