"""Integer-valued data (counts, symbols): checks and bounds shared by families and regressions."""

from __future__ import annotations

import torch

from hmm_pyro.data import Sequences

__all__ = [
    "MAX_COUNT",
    "MAX_DISPERSION",
    "MIN_DISPERSION",
    "check_counts",
    "check_symbols_in_range",
]

MAX_COUNT = 2.0**53
"""Largest count accepted: every integer up to it is exact in float64, and ``y log(rate)``
stays finite for any finite rate."""
MIN_DISPERSION = 1e-8
MAX_DISPERSION = 1e6
"""The negative binomial M-steps' search interval for the dispersion ``r``. At the upper end
the variance exceeds Poisson's by ``rate**2 / 1e6``; beyond it the sign of the derivative in
``r`` (terms of order ``1 / r**2``) is lost in the round-off of ``psi(u + r) - psi(r)``."""


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
