"""Elementwise root of a decreasing function: the one-dimensional M-steps of emission families.

The gamma family's concentration, the von Mises concentration and the negative binomial
dispersion are each the root of a stationarity condition ``g(x) = 0`` that decreases in
``x > 0`` (for priors of shape at least 1). :func:`decreasing_root` solves many of them at once
(one per state and coordinate) by Newton's method in ``log x``, kept inside a bracket that
bisection (in ``log x``) shrinks whenever a Newton step would leave it, so it converges from
any start.

The iteration runs in NumPy on the few ``(K, D)`` values of one M-step: each of its
elementwise operations costs about a microsecond there against several in torch, and an EM
update calls it once per state and coordinate block (the diagnostics' refits run hundreds of
updates).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

__all__ = ["decreasing_root"]

_MAX_ITERATIONS = 200
_LOG_TOLERANCE = 1e-13
"""Relative precision of the root: iterations stop once ``log x`` moves by less than it."""

Condition = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def decreasing_root(
    function: Condition, lower: float, upper: float, start: torch.Tensor | np.ndarray
) -> torch.Tensor | np.ndarray:
    """Root of an elementwise decreasing ``g`` on ``[lower, upper]``, clamped to the interval.

    Where ``g(lower) <= 0`` the result is ``lower``; where ``g(upper) >= 0`` it is ``upper``
    (the maximiser of a concave objective whose derivative is ``g`` over the interval). For a
    ``g`` that is not monotone the result is a point where ``g`` changes sign.

    Parameters
    ----------
    function : callable
        ``function(x) -> (g(x), g'(x))`` elementwise on float64 NumPy arrays of the shape of
        ``start``, or with one extra leading axis (both ends of the interval at once).
    lower, upper : float
        The interval, ``0 < lower < upper``.
    start : torch.Tensor or numpy.ndarray
        Starting points (clamped into the interval; non-finite entries start at the geometric
        middle).

    Returns
    -------
    torch.Tensor or numpy.ndarray
        The roots, float64, shape of ``start``; a tensor for a tensor ``start``.
    """
    is_tensor = isinstance(start, torch.Tensor)
    begin = start.detach().to(torch.float64).cpu().numpy() if is_tensor else np.asarray(start)
    with np.errstate(all="ignore"):
        root = _solve(function, lower, upper, begin.astype(np.float64))
    return torch.from_numpy(root) if is_tensor else root


def _solve(function: Condition, lower: float, upper: float, start: np.ndarray) -> np.ndarray:
    log_low = np.full_like(start, math.log(lower))
    log_high = np.full_like(start, math.log(upper))
    # Both ends in one call (the condition broadcasts over a leading axis).
    ends, _ = function(np.stack([np.full_like(start, lower), np.full_like(start, upper)]))
    value_low, value_high = ends[0], ends[1]
    at_low, at_high = value_low <= 0, value_high >= 0
    usable = np.isfinite(start) & (start > 0)
    log_x = np.where(usable, np.log(np.clip(np.where(usable, start, 1.0), lower, upper)), 0.0)
    log_x = np.where(usable, log_x, 0.5 * (log_low + log_high))
    done = at_low | at_high
    for _ in range(_MAX_ITERATIONS):
        x = np.exp(log_x)
        value, slope = function(x)
        above = value > 0  # the root lies to the right
        log_low = np.where(above, log_x, log_low)
        log_high = np.where(above, log_high, log_x)
        newton = log_x - value / (x * slope)
        inside = np.isfinite(newton) & (newton >= log_low) & (newton <= log_high) & (slope < 0)
        proposal = np.where(inside, newton, 0.5 * (log_low + log_high))
        proposal = np.where(value == 0, log_x, proposal)
        moved = np.abs(proposal - log_x)
        log_x = np.where(done, log_x, proposal)
        done = done | (moved <= _LOG_TOLERANCE * np.maximum(np.abs(log_x), 1.0))
        if done.all():
            break
    result = np.exp(log_x)
    result = np.where(at_low, lower, result)
    return np.where(at_high & ~at_low, upper, result)
