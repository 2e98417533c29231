"""The check of count data shared by the Poisson family and its regression."""

from __future__ import annotations

import torch

from hmm_pyro.data import Sequences

__all__ = ["MAX_COUNT", "check_counts"]

MAX_COUNT = 2.0**53
"""Largest count accepted: every integer up to it is exact in float64, and ``y log(rate)``
stays finite for any finite rate."""


def check_counts(data: Sequences, family: str) -> None:
    """Raise ``ValueError`` naming ``data`` unless observed values are counts up to 2**53.

    Parameters
    ----------
    data : Sequences
        The observations.
    family : str
        The family's ``repr``, for the message.
    """
    values = data.values[data.observed]
    if values.numel() == 0:
        return
    if not torch.equal(values, values.round()):
        bad = values[values != values.round()][0].item()
        raise ValueError(f"data: expected integer counts for {family}, got {bad}")
    if (values < 0).any():
        raise ValueError(
            f"data: expected non-negative counts for {family}, got {values.min().item()}"
        )
    if (values > MAX_COUNT).any():
        raise ValueError(
            f"data: expected counts up to 2**53 for {family} (integers exactly representable "
            f"in float64; larger ones overflow the log density), got {values.max().item():g}"
        )
