"""Viterbi decoding: the single most probable state path and its log joint probability."""

from __future__ import annotations

import numpy as np
import torch

from hmm_pyro._validation import check_choice
from hmm_pyro.kernels import _numba
from hmm_pyro.kernels._inputs import KernelInputs, prepare_inputs

__all__ = ["viterbi"]

PAD_STATE = -1
"""State index written at padded steps ``t >= length`` of decoded or sampled paths."""


def viterbi(
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
    time_varying: bool = False,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Most probable state path ``argmax_z p(z, y)`` by max-product dynamic programming.

    Parameters
    ----------
    log_pi, log_A, log_lik, lengths, time_varying
        As in :func:`~hmm_pyro.kernels.log_likelihood` (``time_varying``: ``log_A`` is
        ``(..., T, K, K)``, one matrix per step).
    backend : {"auto", "numba", "torch"}
        ``"numba"``: one compiled pass per sequence in float64 (CPU tensors); ``"torch"``: a
        vectorised loop over the steps (any device); ``"auto"``: numba on the CPU.

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
    check_choice("backend", backend, ("auto", "numba", "torch"))
    tensors = (inputs.log_pi, inputs.log_A, inputs.log_lik)
    on_cpu = _numba.supports(*tensors)
    if backend == "numba" and not on_cpu:
        raise ValueError("backend: 'numba' needs CPU tensors; use 'torch' on other devices")
    if backend != "torch" and on_cpu:
        return _numba_viterbi(inputs)
    return _torch_viterbi(inputs)


def _numba_viterbi(inputs: KernelInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """The compiled recursion (:mod:`hmm_pyro.kernels._numba.viterbi`) on flattened inputs."""
    batch = inputs.log_lik.shape[:-2]
    num_steps, num_states = inputs.log_lik.shape[-2:]
    matrix = (num_steps if inputs.time_varying else 1, num_states, num_states)

    def flat(tensor: torch.Tensor, *tail: int, shared: bool = False) -> np.ndarray:
        """``(B, *tail)`` float64; ``(1, *tail)`` for a parameter broadcast over the batch."""
        leading = tensor.stride()[: tensor.dim() - len(tail)]
        tensor = tensor.reshape(-1, *tail)
        if shared and all(stride == 0 for stride in leading):
            tensor = tensor[:1]  # expanded: one copy serves every sequence
        return np.ascontiguousarray(tensor.detach().to(torch.float64).numpy())

    path, score = _numba.viterbi_batch(
        flat(inputs.log_pi, num_states, shared=True),
        flat(
            inputs.log_A if inputs.time_varying else inputs.log_A.unsqueeze(-3),
            *matrix,
            shared=True,
        ),
        flat(inputs.log_lik, num_steps, num_states),
        np.ascontiguousarray(inputs.lengths.reshape(-1).numpy().astype(np.int64)),
        inputs.time_varying,
    )
    score = torch.from_numpy(score).to(inputs.log_lik.dtype).reshape(batch)
    return torch.from_numpy(path).reshape(*batch, num_steps), score


def _torch_viterbi(inputs: KernelInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """The recursion as a loop over the steps, vectorised over the batch (any device)."""
    num_steps, num_states = inputs.log_lik.shape[-2:]
    keep = torch.arange(num_states, device=inputs.log_lik.device).expand_as(inputs.log_pi)
    delta = inputs.log_pi + inputs.log_lik[..., 0, :]
    pointers = []
    mask = inputs.valid
    for t in range(1, num_steps):
        best, argbest = (delta.unsqueeze(-1) + inputs.into(t)).max(dim=-2)
        valid = mask[..., t, None]
        delta = torch.where(valid, best + inputs.log_lik[..., t, :], delta)
        pointers.append(torch.where(valid, argbest, keep))
    score, state = delta.max(dim=-1)
    states = [state]
    for pointer in reversed(pointers):
        state = pointer.gather(-1, state.unsqueeze(-1)).squeeze(-1)
        states.append(state)
    states.reverse()
    path = torch.stack(states, dim=-1)
    path = torch.where(mask, path, torch.full_like(path, PAD_STATE))
    return path, score
