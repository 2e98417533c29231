"""The vectorisable exponentials against NumPy's."""

import numba
import numpy as np

from hmm_pyro.kernels._numba.fastexp import fast_exp, fast_exp2, prefer_wide_vectors


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


@numba.njit
def _fast_exp2_all(values):
    out = np.empty_like(values)
    for q in range(values.size):
        out[q] = fast_exp2(values[q])
    return out


def test_exp2_within_one_unit_in_the_last_place_of_numpy_exp2():
    rng = np.random.default_rng(1)
    values = np.concatenate(
        [
            rng.uniform(-1074.0, 1023.9, 200_000),
            rng.uniform(-40.0, 8.0, 200_000),
            rng.uniform(-0.5, 0.5, 100_000),  # the polynomial's whole interval
        ]
    )
    expected = np.exp2(values)
    got = _fast_exp2_all(values)
    normal = expected > np.finfo(np.float64).tiny
    ulps = np.abs(got[normal] - expected[normal]) / np.spacing(expected[normal])
    assert ulps.max() <= 1.0
    # subnormal results: within one subnormal step
    assert np.abs(got[~normal] - expected[~normal]).max() <= np.spacing(0.0)


def test_exp2_special_values():
    values = np.array([-np.inf, np.inf, np.nan, 0.0, -0.0, 1e-300, 1023.99, 1024.0, 2000.0])
    values = np.concatenate([values, [-1074.0, -1075.0, -1076.0, -2000.0]])
    with np.errstate(over="ignore"):
        expected = np.exp2(values)
    np.testing.assert_array_equal(_fast_exp2_all(values), expected)


@numba.njit
def _wide_exp2_all(values):
    prefer_wide_vectors()
    out = np.empty_like(values)
    for q in range(values.size):
        out[q] = fast_exp2(values[q])
    return out


def test_wide_vectors_are_requested_and_change_no_result():
    """The attribute reaches the compiled function's LLVM IR; the exponentials are the same bits.

    Without the attribute in the IR (an intrinsic whose code did not go into its caller) the
    first assertion fails; a vectorisation that changed a result fails the second.
    """
    values = np.random.default_rng(3).uniform(-1070.0, 1020.0, 10_001)  # an odd tail as well
    np.testing.assert_array_equal(_wide_exp2_all(values), _fast_exp2_all(values))
    (ir,) = _wide_exp2_all.inspect_llvm().values()
    assert '"prefer-vector-width"="512"' in ir
    (plain,) = _fast_exp2_all.inspect_llvm().values()
    assert '"prefer-vector-width"="512"' not in plain
