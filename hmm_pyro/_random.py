"""Seeded random number helpers shared by simulation and sampling code."""

from __future__ import annotations

import secrets

import torch

from hmm_pyro._validation import check_int

__all__ = ["draw_categorical", "make_generator", "resolve_seed"]


def resolve_seed(seed: int | None) -> int:
    """Return ``seed`` checked, or a fresh random seed when ``None`` (so it can be recorded)."""
    if seed is None:
        return secrets.randbelow(2**31 - 1)
    return check_int("seed", seed, minimum=0)


def make_generator(seed: int | None) -> torch.Generator:
    """Return a CPU ``torch.Generator`` seeded with ``resolve_seed(seed)``."""
    return torch.Generator().manual_seed(resolve_seed(seed))


def draw_categorical(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Draw one index per row of ``probs (..., K)`` by inverse-CDF sampling."""
    cdf = probs.cumsum(-1)
    uniform = torch.rand(probs.shape[:-1], dtype=probs.dtype, generator=generator)
    uniform = uniform * cdf[..., -1]
    index = torch.searchsorted(cdf.contiguous(), uniform.unsqueeze(-1).contiguous()).squeeze(-1)
    return index.clamp(max=probs.shape[-1] - 1)
