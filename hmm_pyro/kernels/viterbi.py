"""Viterbi decoding: the single most probable state path and its log joint probability."""

from __future__ import annotations

import torch

from hmm_pyro.kernels._inputs import prepare_inputs

__all__ = ["viterbi"]

PAD_STATE = -1
"""State index written at padded steps ``t >= length`` of decoded or sampled paths."""


def viterbi(
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
    time_varying: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Most probable state path ``argmax_z p(z, y)`` by max-product dynamic programming.

    Parameters
    ----------
    log_pi, log_A, log_lik, lengths, time_varying
        As in :func:`~hmm_pyro.kernels.log_likelihood` (``time_varying``: ``log_A`` is
        ``(..., T, K, K)``, one matrix per step).

    Returns
    -------
    path : torch.Tensor
        ``(..., T)`` int64 states; ``-1`` at padded steps.
    score : torch.Tensor
        ``(...)`` log joint probability ``log p(z*, y)`` of the returned path.

    Notes
    -----
    Ties are broken towards the lowest state index.
    """
    inputs = prepare_inputs(log_pi, log_A, log_lik, lengths, time_varying)
    num_steps, num_states = inputs.log_lik.shape[-2:]
    keep = torch.arange(num_states, device=inputs.log_lik.device).expand_as(inputs.log_pi)
    delta = inputs.log_pi + inputs.log_lik[..., 0, :]
    pointers = []
    for t in range(1, num_steps):
        best, argbest = (delta.unsqueeze(-1) + inputs.into(t)).max(dim=-2)
        valid = inputs.valid[..., t, None]
        delta = torch.where(valid, best + inputs.log_lik[..., t, :], delta)
        pointers.append(torch.where(valid, argbest, keep))
    score, state = delta.max(dim=-1)
    states = [state]
    for pointer in reversed(pointers):
        state = pointer.gather(-1, state.unsqueeze(-1)).squeeze(-1)
        states.append(state)
    states.reverse()
    path = torch.stack(states, dim=-1)
    path = torch.where(inputs.valid, path, torch.full_like(path, PAD_STATE))
    return path, score
