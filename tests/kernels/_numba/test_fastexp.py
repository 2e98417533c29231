"""The vectorisable exponentials against NumPy's."""

import numba
import numpy as np
import pytest

from hmm_pyro.kernels._numba.fastexp import fast_exp, fast_exp2


@numba.njit
def _fast_exp_all(values):
    out = np.empty_like(values)
    for q in range(values.size):
        out[q] = fast_exp(values[q])
    return out


@numba.njit
def _fast_exp2_all(values):
    out = np.empty_like(values)
    for q in range(values.size):
        out[q] = fast_exp2(values[q])
    return out


def _assert_within_one_ulp(got, expected):
    normal = expected > np.finfo(np.float64).tiny
    ulps = np.abs(got[normal] - expected[normal]) / np.spacing(expected[normal])
    assert ulps.max() <= 1.0
    # subnormal results: within one subnormal step
    assert np.abs(got[~normal] - expected[~normal]).max() <= np.spacing(0.0)


def test_within_one_unit_in_the_last_place_of_numpy_exp():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(-745.0, 709.7, 200_000), rng.uniform(-30, 5, 200_000)])
    _assert_within_one_ulp(_fast_exp_all(values), np.exp(values))


def test_exp2_within_one_unit_in_the_last_place_of_numpy_exp2():
    rng = np.random.default_rng(1)
    values = np.concatenate(
        [
            rng.uniform(-1074.0, 1023.9, 200_000),
            rng.uniform(-40.0, 8.0, 200_000),
            rng.uniform(-0.5, 0.5, 100_000),  # the polynomial's whole interval
        ]
    )
    _assert_within_one_ulp(_fast_exp2_all(values), np.exp2(values))


@pytest.mark.parametrize(
    ("function", "reference", "values"),
    [
        (_fast_exp_all, np.exp, [709.78, 710.0, -745.1, -746.0]),
        (_fast_exp2_all, np.exp2, [1023.99, 1024.0, -1074.0, -1075.0, -1076.0, -2000.0, 2000.0]),
    ],
)
def test_special_values(function, reference, values):
    values = np.array([-np.inf, np.inf, np.nan, 0.0, -0.0, 1e-300, *values])
    with np.errstate(over="ignore"):
        expected = reference(values)
    np.testing.assert_array_equal(function(values), expected)
