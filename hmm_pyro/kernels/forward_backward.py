"""Log-space forward and backward algorithms, marginal likelihood, smoothed marginals.

Conventions (see :mod:`hmm_pyro.kernels`): ``log_pi`` is the log distribution of the state that
emits the first observation; ``log_A[..., i, j] = log P(z_t = j | z_{t-1} = i)``; ``log_lik[...,
t, k] = log p(y_t | z_t = k)`` (0 for a missing observation); steps ``t >= lengths`` are padding.
With ``time_varying=True`` the chain is non-homogeneous: ``log_A`` is ``(..., T, K, K)`` and
``log_A[..., t, i, j] = log P(z_{t+1} = j | z_t = i)`` (the matrix of the last step of each
sequence is not used; see :mod:`hmm_pyro.kernels._inputs`).

:func:`log_likelihood` reduces over time with a parallel (tree) product of log-space matrices:
``O(log T)`` sequential depth, differentiable by autograd, stable for very long sequences.
The shifted log-space matrix product (:func:`_logmatmulexp`) and the pairwise tree reduction
over time (:func:`_time_product`) follow Pyro's ``_logmatmulexp`` and
``_sequential_logmatmulexp`` in ``pyro.distributions.hmm`` (Apache-2.0), which is what Pyro's
``DiscreteHMM`` uses.
:func:`forward` and :func:`backward` are exact sequential recursions that return every step.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from pyro.ops.special import safe_log

from hmm_pyro._validation import check_choice
from hmm_pyro.kernels import _numba
from hmm_pyro.kernels._inputs import KernelInputs, prepare_inputs

__all__ = [
    "BACKENDS",
    "ForwardBackward",
    "backward",
    "expected_transitions",
    "forward",
    "forward_backward",
    "log_likelihood",
    "posterior_marginals",
]

_TIME_CHUNK = 1024
BACKENDS = ("auto", "numba", "torch")
"""``"numba"``: fused CPU forward-backward with analytic gradients (fast, first-order only).
``"torch"``: pure torch (parallel-scan likelihood, any device, higher-order gradients).
``"auto"``: numba for CPU tensors, torch otherwise."""


def use_numba(backend: str, *tensors: torch.Tensor) -> bool:
    """Whether ``backend`` runs the numba kernels on these tensors (a clear error if it can't)."""
    check_choice("backend", backend, BACKENDS)
    if backend == "numba" and not _numba.supports(*tensors):
        raise ValueError("backend: 'numba' needs CPU tensors; use 'torch' on other devices")
    return backend == "numba" or (backend == "auto" and _numba.supports(*tensors))


def _logmatmulexp(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return ``log(exp(x) @ exp(y))`` computed stably with shifts (``-inf`` entries allowed)."""
    lowest = torch.finfo(x.dtype).min
    x_shift = x.detach().amax(-1, keepdim=True).clamp(min=lowest)
    y_shift = y.detach().amax(-2, keepdim=True).clamp(min=lowest)
    product = torch.matmul((x - x_shift).exp(), (y - y_shift).exp())
    return safe_log(product) + x_shift + y_shift


def _log_identity(num_states: int, like: torch.Tensor) -> torch.Tensor:
    eye = torch.full((num_states, num_states), -float("inf"), dtype=like.dtype, device=like.device)
    return eye.fill_diagonal_(0.0)


def _time_product(steps: torch.Tensor) -> torch.Tensor:
    """Multiply ``(..., T, K, K)`` log matrices over time as a balanced tree: ``(..., K, K)``."""
    while steps.shape[-3] > 1:
        num = steps.shape[-3]
        even = num - num % 2
        paired = _logmatmulexp(steps[..., 0:even:2, :, :], steps[..., 1:even:2, :, :])
        if num % 2:
            paired = torch.cat([paired, steps[..., even:, :, :]], dim=-3)
        steps = paired
    return steps.squeeze(-3)


def log_likelihood(
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
    backend: str = "auto",
    time_varying: bool = False,
) -> torch.Tensor:
    """Log marginal likelihood ``log p(y_{1:L})`` with the hidden states summed out.

    Parameters
    ----------
    log_pi : torch.Tensor
        ``(..., K)`` log initial distribution (state of the first observation).
    log_A : torch.Tensor
        ``(..., K, K)`` log transition matrix (rows: from, columns: to); with
        ``time_varying``, ``(..., T, K, K)``, one matrix per step: ``log_A[..., t, :, :]``
        moves the chain from step ``t`` to ``t + 1``.
    log_lik : torch.Tensor
        ``(..., T, K)`` per-step, per-state log emission likelihoods.
    lengths : torch.Tensor, optional
        ``(...)`` number of valid steps of each sequence (default: all ``T``).
    backend : {"auto", "numba", "torch"}
        Implementation (see :data:`BACKENDS`); all agree to round-off.
    time_varying : bool
        ``log_A`` holds one transition matrix per step (a non-homogeneous chain).

    Returns
    -------
    torch.Tensor
        ``(...)`` log likelihood of each sequence; differentiable in all inputs.

    Notes
    -----
    ``"numba"`` runs one scaled forward-backward sweep per sequence and returns the expected
    counts as the gradient (per step with ``time_varying``: ``p(z_t = i, z_{t+1} = j | y)``
    for ``log_A[..., t, i, j]``). ``"torch"`` multiplies the transition-and-emission matrices
    ``M_t[i, j] = log_A[i, j] + log_lik[t, j]`` in log space as a balanced binary tree
    (Särkkä & García-Fernández, 2021), so its autograd graph has depth ``O(log T)``; padded steps
    use the log identity matrix.
    """
    inputs = prepare_inputs(log_pi, log_A, log_lik, lengths, time_varying)
    if use_numba(backend, *inputs[:3]):
        function = _numba.VaryingLogLikelihood if time_varying else _numba.FusedLogLikelihood
        return function.apply(inputs.log_pi, inputs.log_A, inputs.log_lik, inputs.lengths)
    first = inputs.log_pi + inputs.log_lik[..., 0, :]
    num_steps = inputs.log_lik.shape[-2]
    if num_steps == 1:
        return first.logsumexp(-1)
    num_states = first.shape[-1]
    steps = inputs.into_steps(1, num_steps) + inputs.log_lik[..., 1:, None, :]
    steps = torch.where(inputs.valid[..., 1:, None, None], steps, _log_identity(num_states, steps))
    total = _time_product(steps)
    return (first.unsqueeze(-1) + total).logsumexp(-1).logsumexp(-1)


def forward(
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
    time_varying: bool = False,
) -> torch.Tensor:
    """Forward variables ``log alpha_t(k) = log p(y_{1:t}, z_t = k)``.

    Parameters
    ----------
    log_pi, log_A, log_lik, lengths, time_varying
        As in :func:`log_likelihood`.

    Returns
    -------
    torch.Tensor
        ``(..., T, K)``. At padded steps ``t >= length`` the last valid row is repeated, so
        ``log_alpha[..., -1, :].logsumexp(-1)`` is the log likelihood of every sequence.
    """
    inputs = prepare_inputs(log_pi, log_A, log_lik, lengths, time_varying)
    alpha = inputs.log_pi + inputs.log_lik[..., 0, :]
    rows = [alpha]
    valid = inputs.valid
    for t in range(1, inputs.log_lik.shape[-2]):
        step = (alpha.unsqueeze(-1) + inputs.into(t)).logsumexp(-2) + inputs.log_lik[..., t, :]
        alpha = torch.where(valid[..., t, None], step, alpha)
        rows.append(alpha)
    return torch.stack(rows, dim=-2)


def backward(
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
    time_varying: bool = False,
) -> torch.Tensor:
    """Backward variables ``log beta_t(k) = log p(y_{t+1:L} | z_t = k)``.

    Parameters
    ----------
    log_pi, log_A, log_lik, lengths, time_varying
        As in :func:`log_likelihood` (``log_pi`` only fixes the batch shape).

    Returns
    -------
    torch.Tensor
        ``(..., T, K)``; zero (``log 1``) at the last valid step and at padded steps.
    """
    inputs = prepare_inputs(log_pi, log_A, log_lik, lengths, time_varying)
    beta = torch.zeros_like(inputs.log_pi)
    rows = [beta]
    valid = inputs.valid
    for t in range(inputs.log_lik.shape[-2] - 2, -1, -1):
        ahead = (inputs.log_lik[..., t + 1, :] + beta).unsqueeze(-2)
        step = (inputs.into(t + 1) + ahead).logsumexp(-1)
        beta = torch.where(valid[..., t + 1, None], step, torch.zeros_like(step))
        rows.append(beta)
    rows.reverse()
    return torch.stack(rows, dim=-2)


class ForwardBackward(NamedTuple):
    """Results of one forward-backward pass.

    Attributes
    ----------
    log_likelihood : torch.Tensor
        ``(...)`` log marginal likelihood per sequence.
    gamma : torch.Tensor
        ``(..., T, K)`` smoothed marginals ``p(z_t = k | y)``; zero at padded steps.
    transitions : torch.Tensor
        ``(..., K, K)`` expected transition counts ``sum_t p(z_{t-1} = i, z_t = j | y)``.
    """

    log_likelihood: torch.Tensor
    gamma: torch.Tensor
    transitions: torch.Tensor


def forward_backward(
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
    backend: str = "auto",
    time_varying: bool = False,
) -> ForwardBackward:
    """Log likelihood, smoothed marginals and expected transition counts in one pass.

    Parameters
    ----------
    log_pi, log_A, log_lik, lengths, backend, time_varying
        As in :func:`log_likelihood`.

    Returns
    -------
    ForwardBackward
        ``(log_likelihood, gamma, transitions)``; not differentiable with ``"numba"``. With
        ``time_varying`` the transition counts are summed over the steps too (the per-step
        ones are the gradient of :func:`log_likelihood` with respect to ``log_A``).
    """
    inputs = prepare_inputs(log_pi, log_A, log_lik, lengths, time_varying)
    if use_numba(backend, *inputs[:3]):
        if time_varying:
            log_z, gamma, xi = _numba.varying_forward_backward(*inputs[:3], inputs.lengths)
            return ForwardBackward(log_z, gamma, xi.sum(-3))
        return ForwardBackward(*_numba.fused_forward_backward(*inputs[:3], inputs.lengths))
    arguments = (inputs.log_pi, inputs.log_A, inputs.log_lik, inputs.lengths, time_varying)
    log_alpha = forward(*arguments)
    log_beta = backward(*arguments)
    log_z = log_alpha[..., -1, :].logsumexp(-1)
    gamma = (log_alpha + log_beta - log_z[..., None, None]).exp()
    gamma = gamma * inputs.valid.unsqueeze(-1)
    transitions = _summed_transitions(inputs, log_alpha, log_beta, log_z)
    return ForwardBackward(log_z, gamma, transitions)


def _summed_transitions(
    inputs: KernelInputs, log_alpha: torch.Tensor, log_beta: torch.Tensor, log_z: torch.Tensor
) -> torch.Tensor:
    """Sum ``xi_t(i, j)`` over valid steps, in time chunks to bound memory."""
    log_lik, valid = inputs.log_lik, inputs.valid
    num_steps = log_lik.shape[-2]
    total = torch.zeros_like(inputs.log_pi.unsqueeze(-1) + inputs.log_pi.unsqueeze(-2))
    for start in range(1, num_steps, _TIME_CHUNK):
        stop = min(start + _TIME_CHUNK, num_steps)
        log_xi = (
            log_alpha[..., start - 1 : stop - 1, :, None]
            + inputs.into_steps(start, stop)
            + (log_lik[..., start:stop, :] + log_beta[..., start:stop, :]).unsqueeze(-2)
            - log_z[..., None, None, None]
        )
        # where, not a product with the mask: an unused matrix may hold NaN
        xi = torch.where(valid[..., start:stop, None, None], log_xi.exp(), 0.0)
        total = total + xi.sum(-3)
    return total


def posterior_marginals(
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
    backend: str = "auto",
    time_varying: bool = False,
) -> torch.Tensor:
    """Smoothed marginals ``gamma_t(k) = p(z_t = k | y_{1:L})``.

    Parameters
    ----------
    log_pi, log_A, log_lik, lengths, backend, time_varying
        As in :func:`log_likelihood`.

    Returns
    -------
    torch.Tensor
        ``(..., T, K)``; rows sum to one at valid steps and are zero at padded steps.
    """
    return forward_backward(log_pi, log_A, log_lik, lengths, backend, time_varying).gamma


def expected_transitions(
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
    backend: str = "auto",
    time_varying: bool = False,
) -> torch.Tensor:
    """Expected transition counts ``sum_t p(z_{t-1} = i, z_t = j | y_{1:L})``.

    Parameters
    ----------
    log_pi, log_A, log_lik, lengths, backend, time_varying
        As in :func:`log_likelihood`.

    Returns
    -------
    torch.Tensor
        ``(..., K, K)``; entries sum to ``length - 1`` for each sequence.
    """
    return forward_backward(log_pi, log_A, log_lik, lengths, backend, time_varying).transitions
