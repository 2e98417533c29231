"""Elementwise root of a decreasing function: the one-dimensional M-steps of emission families.

The gamma family's concentration and the von Mises concentration are each the root of a
stationarity condition ``g(x) = 0`` that decreases in ``x > 0`` (for priors of shape at least
1). :func:`decreasing_root` solves many of them at once (one per state and coordinate) by
Newton's method in ``log x``, kept inside a bracket that bisection (in ``log x``) shrinks
whenever a Newton step would leave it, so it converges from any start.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["decreasing_root"]

_MAX_ITERATIONS = 200
_LOG_TOLERANCE = 1e-13
"""Relative precision of the root: iterations stop once ``log x`` moves by less than it."""


def decreasing_root(
    function: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    lower: float,
    upper: float,
    start: torch.Tensor,
) -> torch.Tensor:
    """Root of an elementwise decreasing ``g`` on ``[lower, upper]``, clamped to the interval.

    Where ``g(lower) <= 0`` the result is ``lower``; where ``g(upper) >= 0`` it is ``upper``
    (the maximiser of a concave objective whose derivative is ``g`` over the interval). For a
    ``g`` that is not monotone the result is a point where ``g`` changes sign.

    Parameters
    ----------
    function : callable
        ``function(x) -> (g(x), g'(x))`` elementwise, for ``x`` of the shape of ``start``.
    lower, upper : float
        The interval, ``0 < lower < upper``.
    start : torch.Tensor
        Starting points (clamped into the interval; non-finite entries start at the geometric
        middle).

    Returns
    -------
    torch.Tensor
        The roots, float64, shape of ``start``.
    """
    start = start.to(torch.float64)
    log_low = torch.full_like(start, math.log(lower))
    log_high = torch.full_like(start, math.log(upper))
    value_low, _ = function(torch.full_like(start, lower))
    value_high, _ = function(torch.full_like(start, upper))
    at_low, at_high = value_low <= 0, value_high >= 0
    usable = torch.isfinite(start) & (start > 0)
    log_x = torch.where(usable, start.clamp(min=lower, max=upper), 1.0).log()
    log_x = torch.where(usable, log_x, 0.5 * (log_low + log_high))
    done = at_low | at_high
    for _ in range(_MAX_ITERATIONS):
        value, slope = function(log_x.exp())
        above = value > 0  # the root lies to the right
        log_low = torch.where(above, log_x, log_low)
        log_high = torch.where(above, log_high, log_x)
        step = value / (log_x.exp() * slope)
        newton = log_x - step
        inside = torch.isfinite(newton) & (newton >= log_low) & (newton <= log_high) & (slope < 0)
        proposal = torch.where(inside, newton, 0.5 * (log_low + log_high))
        proposal = torch.where(value == 0, log_x, proposal)
        moved = (proposal - log_x).abs()
        log_x = torch.where(done, log_x, proposal)
        done = done | (moved <= _LOG_TOLERANCE * log_x.abs().clamp(min=1.0))
        if bool(done.all()):
            break
    result = log_x.exp()
    result = torch.where(at_low, torch.full_like(result, lower), result)
    return torch.where(at_high & ~at_low, torch.full_like(result, upper), result)
