"""Forward-filtering backward-sampling (FFBS): exact draws of whole state paths from p(z | y)."""

from __future__ import annotations

import math

import torch

from hmm_pyro._validation import describe
from hmm_pyro.kernels._inputs import prepare_inputs
from hmm_pyro.kernels.forward_backward import forward
from hmm_pyro.kernels.viterbi import PAD_STATE

__all__ = ["sample_paths"]


def _gumbel_argmax(logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Draw one categorical index per row of ``logits`` (unnormalised, log space)."""
    uniform = torch.rand(
        logits.shape, dtype=logits.dtype, device=logits.device, generator=generator
    )
    tiny = torch.finfo(logits.dtype).tiny
    gumbel = -torch.log(-torch.log(uniform.clamp(min=tiny)))
    return (logits + gumbel).argmax(dim=-1)


def sample_paths(
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
    time_varying: bool = False,
) -> torch.Tensor:
    """Draw state paths from the joint posterior ``p(z_{1:L} | y_{1:L})``.

    Parameters
    ----------
    log_pi, log_A, log_lik, lengths
        As in :func:`~hmm_pyro.kernels.log_likelihood`.
    num_samples : int
        Number of paths drawn for every batch element.
    generator : torch.Generator, optional
        Source of randomness, for reproducible draws.
    time_varying : bool
        ``log_A`` is ``(..., T, K, K)``, one matrix per step (as in
        :func:`~hmm_pyro.kernels.log_likelihood`).

    Returns
    -------
    torch.Tensor
        ``(num_samples, ..., T)`` int64 states; ``-1`` at padded steps.

    Raises
    ------
    ValueError
        If the inputs contain NaN or ``+inf`` (at valid steps), or a sequence has probability
        zero under every path: there is then no distribution to draw from.

    Notes
    -----
    Filter forward (``alpha``), then draw ``z_L ~ alpha_L`` and
    ``z_t ~ alpha_t(i) A[i, z_{t+1}]`` backwards (Frühwirth-Schnatter 1994; Chib 1996).
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples: expected an integer >= 1, got {num_samples!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {describe(generator)}")
    inputs = prepare_inputs(log_pi, log_A, log_lik, lengths, time_varying)
    log_alpha = forward(*inputs[:3], inputs.lengths, time_varying)
    # Paths are integers and cannot carry a NaN: refuse inputs that leave nothing to sample.
    last = log_alpha[..., -1, :]
    if bool(torch.isnan(last).any()) or bool((last == math.inf).any()):
        raise ValueError(
            "log_pi, log_A, log_lik: expected log probabilities (no NaN, no +inf); the forward "
            "pass is not a number, so there is no distribution to draw paths from"
        )
    if bool((last == -math.inf).all(-1).any()):
        raise ValueError(
            "log_pi, log_A, log_lik: some sequence has probability zero under every path "
            "(all -inf), so there is no distribution to draw paths from"
        )
    num_steps = log_alpha.shape[-2]
    shape = (num_samples, *log_alpha.shape[:-2])
    log_alpha = log_alpha.expand(num_samples, *log_alpha.shape)
    valid = inputs.valid
    valid = valid.expand(num_samples, *valid.shape)
    state = _gumbel_argmax(log_alpha[..., -1, :], generator)
    states = [state]
    for t in range(num_steps - 2, -1, -1):
        log_A_cols = inputs.into(t + 1).transpose(-1, -2)
        log_A_cols = log_A_cols.expand(num_samples, *log_A_cols.shape)
        into_next = log_A_cols.gather(
            -2, state[..., None, None].expand(*shape, 1, log_A_cols.shape[-1])
        ).squeeze(-2)
        drawn = _gumbel_argmax(log_alpha[..., t, :] + into_next, generator)
        state = torch.where(valid[..., t + 1], drawn, state)
        states.append(state)
    states.reverse()
    paths = torch.stack(states, dim=-1)
    return torch.where(valid, paths, torch.full_like(paths, PAD_STATE))
