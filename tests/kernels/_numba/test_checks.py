"""The quick value checks never accept what the exact torch checks refuse.

Each quick check stands in for an exact one (``HMM._check_probabilities``, the emission
families' ``_check_param_values``): ``True`` must imply the exact check passes. Rows are drawn
around the acceptance boundary (row sums off by 0 to 3e-5 in both directions, the exact check
accepting up to 1.1e-5), in float64 and float32, short and long rows.
"""

import math

import pytest
import torch

from hmm_pyro.kernels._numba import all_finite, all_greater, probability_rows

ATOL = 1e-6


def _exact(value: torch.Tensor) -> bool:
    finite = bool(torch.isfinite(value).all()) and bool((value >= 0).all())
    ones = torch.ones((), dtype=value.dtype)
    return finite and torch.allclose(value.sum(-1), ones, atol=ATOL)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("length", [2, 5, 64, 300])
def test_probability_rows_accept_only_what_the_exact_check_accepts(dtype, length):
    generator = torch.Generator().manual_seed(length)
    rows = torch.rand(400, length, generator=generator, dtype=torch.float64) + 1e-3
    rows = rows / rows.sum(-1, keepdim=True)
    offsets = torch.linspace(-3e-5, 3e-5, 400, dtype=torch.float64)
    rows[:, 0] += offsets  # each row's sum moves by its offset
    quick = [probability_rows(row, ATOL) for row in rows.to(dtype)]
    for row, accepted in zip(rows.to(dtype), quick, strict=True):
        assert not accepted or _exact(row)
    near = [accepted for accepted, offset in zip(quick, offsets, strict=True) if abs(offset) < 5e-7]
    if dtype == torch.float32 and length > 64:
        assert not any(quick)  # long float32 rows always take the exact check
    elif dtype == torch.float64:
        assert all(near)  # rows that sum to 1 within 5e-7 take the quick path
    else:
        assert sum(near) > len(near) / 2


def test_probability_rows_refuse_bad_entries_and_shapes():
    good = torch.tensor([[0.5, 0.5], [0.2, 0.8]], dtype=torch.float64)
    assert probability_rows(good, ATOL) and probability_rows(good.T.contiguous(), 0.5)
    for bad in (-0.1, math.nan, math.inf):
        value = good.clone()
        value[1, 0] = bad
        assert not probability_rows(value, ATOL)
    assert probability_rows(torch.ones(2, 1, dtype=torch.float64), ATOL)  # one entry per row
    assert not probability_rows(torch.tensor(1.0, dtype=torch.float64), ATOL)
    assert not probability_rows(good.to(torch.float16), ATOL)
    assert probability_rows(torch.zeros(0, 3, dtype=torch.float64), ATOL)  # no rows


def test_all_greater_and_all_finite():
    value = torch.tensor([[0.5, 2.0], [1e-300, 3.0]], dtype=torch.float64).T  # not contiguous
    assert all_greater(value, 0.0) and all_finite(value)
    for bad in (0.0, -1.0, math.nan, math.inf):
        changed = value.clone()
        changed[0, 1] = bad
        assert not all_greater(changed, 0.0)
        assert all_finite(changed) == math.isfinite(bad)
    assert not all_finite(torch.ones(2, dtype=torch.float16))  # other dtypes: check exactly
