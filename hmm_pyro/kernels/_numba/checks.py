"""Cheap value checks of small parameter tensors, for validation on every call.

A torch reduction costs a few microseconds per operation whatever the size; checking that the
rows of ``pi``, ``A`` and ``B`` are probabilities took ~120 us of a 0.5 ms user-level log
likelihood (20 x 500 symbols, K = 3). One numba pass over the values does it in ~1.5 us.

Each check answers ``True`` only when the values certainly pass the exact (torch) check they
stand in for; ``False`` means "run the exact check", which raises with its own message or
passes. So the fast path never changes which parameters are accepted, nor the errors.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

__all__ = ["all_finite", "all_greater", "probability_rows"]

_HOST_DTYPES = (torch.float32, torch.float64)

_FLOAT32_ROW_LIMIT = 64
"""Longest float32 row checked here. The exact check sums in float32 and accepts
``|sum - 1| <= atol + rtol`` (``torch.allclose``, ``rtol = 1e-5``); this one sums in float64 and
accepts ``|sum - 1| <= atol``. The float32 sum of ``n`` non-negative entries totalling about 1
errs by at most ``(n - 1) 2**-24`` (3.8e-6 for 64 entries, below ``rtol``), so a row accepted
here is accepted there. Longer float32 rows take the exact check."""


@numba.njit(cache=True, nogil=True)
def _probability_rows(values, length, tolerance):  # noqa: ANN001, ANN202
    """True if every entry is finite and >= 0 and each row sums to within ``tolerance`` of 1.

    ``values`` are flattened rows of ``length`` entries.
    """
    for start in range(0, values.shape[0], length):
        total = 0.0
        for j in range(start, start + length):
            value = values[j]
            if not (math.isfinite(value) and value >= 0.0):
                return False
            total += value
        if not abs(total - 1.0) <= tolerance:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _all_greater(values, bound):  # noqa: ANN001, ANN202
    """True if every entry is finite and above ``bound``."""
    for value in values:
        if not (math.isfinite(value) and value > bound):
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _all_finite(values):  # noqa: ANN001, ANN202
    """True if every entry is finite."""
    for value in values:
        if not math.isfinite(value):
            return False
    return True


def _host_array(value: torch.Tensor) -> np.ndarray | None:
    """The entries of a CPU float32/float64 tensor as a flat NumPy array, else ``None``."""
    if not value.is_cpu or value.dtype not in _HOST_DTYPES:
        return None
    return value.detach().numpy().reshape(-1)


def probability_rows(value: torch.Tensor, atol: float) -> bool:
    """True if the rows of ``value (..., n)`` certainly pass the exact probability check.

    The exact check: every entry finite and ``>= 0``, and
    ``torch.allclose(value.sum(-1), 1, atol=atol)``. Here the rows are summed in float64 and
    must be within ``atol`` of 1 (stricter than ``allclose``'s ``atol + rtol``); ``False``
    for other devices and dtypes and for float32 rows longer than :data:`_FLOAT32_ROW_LIMIT`.
    """
    if value.dim() == 0:
        return False
    length = value.shape[-1]
    if length == 0 or (value.dtype != torch.float64 and length > _FLOAT32_ROW_LIMIT):
        return False
    array = _host_array(value)
    return array is not None and bool(_probability_rows(array, length, atol))


def all_greater(value: torch.Tensor, bound: float) -> bool:
    """True if every entry of ``value`` is finite and ``> bound`` (``False``: check exactly)."""
    array = _host_array(value)
    return array is not None and bool(_all_greater(array, float(bound)))


def all_finite(value: torch.Tensor) -> bool:
    """True if every entry of ``value`` is finite (``False``: check exactly)."""
    array = _host_array(value)
    return array is not None and bool(_all_finite(array))
