"""Shape checks and broadcasting shared by every kernel.

Every kernel takes ``log_pi (..., K)``, ``log_A (..., K, K)``, ``log_lik (..., T, K)`` and an
optional ``lengths (...)``; the leading dimensions broadcast against each other (sequences,
posterior draws, ...). Steps ``t >= lengths`` are padding and are ignored.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from hmm_pyro._validation import describe


class KernelInputs(NamedTuple):
    """Inputs broadcast to one batch shape, plus the boolean ``valid`` step mask ``(..., T)``."""

    log_pi: torch.Tensor
    log_A: torch.Tensor
    log_lik: torch.Tensor
    valid: torch.Tensor
    lengths: torch.Tensor


def _check_tensor(name: str, value: object, min_dim: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {describe(value)}")
    if value.dim() < min_dim:
        raise ValueError(f"{name}: expected at least {min_dim} dimensions, got {describe(value)}")
    if not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got {describe(value)}")
    return value


def prepare_inputs(
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
) -> KernelInputs:
    """Check and broadcast kernel inputs.

    Parameters
    ----------
    log_pi : torch.Tensor
        ``(..., K)`` log initial distribution: the state that emits the first observation.
    log_A : torch.Tensor
        ``(..., K, K)`` log transition matrix, ``log_A[..., i, j] = log P(z_t = j | z_{t-1} = i)``.
    log_lik : torch.Tensor
        ``(..., T, K)`` log emission likelihood of each step under each state.
    lengths : torch.Tensor, optional
        ``(...)`` integer number of valid steps per sequence, each in ``[1, T]``.

    Returns
    -------
    KernelInputs
        Broadcast inputs and the ``(..., T)`` mask of valid steps.
    """
    log_pi = _check_tensor("log_pi", log_pi, 1)
    log_A = _check_tensor("log_A", log_A, 2)
    log_lik = _check_tensor("log_lik", log_lik, 2)
    num_states = log_lik.shape[-1]
    num_steps = log_lik.shape[-2]
    if num_steps < 1 or num_states < 1:
        raise ValueError(
            f"log_lik: expected T >= 1 steps and K >= 1 states, got {describe(log_lik)}"
        )
    if log_pi.shape[-1] != num_states:
        raise ValueError(
            f"log_pi: expected last dimension K={num_states} (from log_lik), got {describe(log_pi)}"
        )
    if log_A.shape[-2:] != (num_states, num_states):
        raise ValueError(
            f"log_A: expected last two dimensions ({num_states}, {num_states}), "
            f"got {describe(log_A)}"
        )
    if lengths is None:
        lengths = torch.full((), num_steps, dtype=torch.long, device=log_lik.device)
    else:
        if not isinstance(lengths, torch.Tensor):
            try:
                lengths = torch.as_tensor(lengths)
            except (TypeError, ValueError, RuntimeError) as error:
                raise TypeError(
                    f"lengths: expected an integer tensor, got {describe(lengths)}"
                ) from error
        if lengths.is_floating_point() or lengths.dtype == torch.bool:
            raise TypeError(f"lengths: expected an integer tensor, got {describe(lengths)}")
        if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > num_steps):
            raise ValueError(
                f"lengths: expected values in [1, {num_steps}] (T from log_lik), "
                f"got min {int(lengths.min())} and max {int(lengths.max())}"
            )
        lengths = lengths.to(device=log_lik.device, dtype=torch.long)
    try:
        batch = torch.broadcast_shapes(
            log_pi.shape[:-1], log_A.shape[:-2], log_lik.shape[:-2], lengths.shape
        )
    except RuntimeError as error:
        raise ValueError(
            "log_pi, log_A, log_lik, lengths: leading (batch) dimensions do not broadcast: "
            f"{tuple(log_pi.shape[:-1])}, {tuple(log_A.shape[:-2])}, "
            f"{tuple(log_lik.shape[:-2])}, {tuple(lengths.shape)}"
        ) from error
    dtype = torch.promote_types(torch.promote_types(log_pi.dtype, log_A.dtype), log_lik.dtype)
    log_pi = log_pi.to(dtype).expand(*batch, num_states)
    log_A = log_A.to(dtype).expand(*batch, num_states, num_states)
    log_lik = log_lik.to(dtype).expand(*batch, num_steps, num_states)
    lengths = lengths.expand(batch)
    steps = torch.arange(num_steps, device=log_lik.device)
    valid = steps < lengths.unsqueeze(-1)
    return KernelInputs(log_pi, log_A, log_lik, valid, lengths)
