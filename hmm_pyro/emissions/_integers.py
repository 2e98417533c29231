"""Checks of integer-valued data shared by families and their regressions (counts, symbols)."""

from __future__ import annotations

import torch

from hmm_pyro.data import Sequences

__all__ = ["MAX_COUNT", "check_counts", "check_symbols_in_range"]

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


def check_symbols_in_range(data: Sequences, num_symbols: int, family: str) -> None:
    """Raise ``ValueError`` naming ``data`` unless observed values are integers in ``[0, V)``.

    Parameters
    ----------
    data : Sequences
        The observations.
    num_symbols : int
        Number of symbols ``V``.
    family : str
        The family's ``repr``, for the message.
    """
    values = data.values[data.observed]
    if values.numel() == 0:
        return
    if not torch.equal(values, values.round()):
        bad = values[values != values.round()][0].item()
        raise ValueError(f"data: expected integer symbols for {family}, got {bad}")
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= num_symbols:
        raise ValueError(
            f"data: expected symbols in [0, {num_symbols - 1}] for {family}, "
            f"got values in [{low}, {high}]"
        )
