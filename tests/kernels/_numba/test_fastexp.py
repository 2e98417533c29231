"""The vectorisable exponential against NumPy's."""

import numba
import numpy as np

from hmm_pyro.kernels._numba.fastexp import fast_exp


@numba.njit
def _fast_exp_all(values):
    out = np.empty_like(values)
    for q in range(values.size):
        out[q] = fast_exp(values[q])
    return out


def test_within_one_unit_in_the_last_place_of_numpy_exp():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(-745.0, 709.7, 200_000), rng.uniform(-30, 5, 200_000)])
    expected = np.exp(values)
    got = _fast_exp_all(values)
    normal = expected > np.finfo(np.float64).tiny
    ulps = np.abs(got[normal] - expected[normal]) / np.spacing(expected[normal])
    assert ulps.max() <= 1.0
    # subnormal results: within one subnormal step
    assert np.abs(got[~normal] - expected[~normal]).max() <= np.spacing(0.0)


def test_special_values():
    values = np.array([-np.inf, np.inf, np.nan, 0.0, -0.0, 709.78, 710.0, -745.1, -746.0, 1e-300])
    with np.errstate(over="ignore"):
        expected = np.exp(values)
    np.testing.assert_array_equal(_fast_exp_all(values), expected)
