"""The one fill route of the numba potentials, on a toy per-entry density, against numpy."""

from __future__ import annotations

import numba
import numpy as np

from hmm_pyro.kernels._numba import fill_table, weighted_sums


@numba.njit(inline="always")
def _log_density(c, f):
    return c[0] + c[1] * f[0] - f[1]


@numba.njit(inline="always")
def _statistics(c, f, weight, out):
    out[0] += weight
    out[1] += weight * c[1] * f[0]


@numba.njit(cache=True)
def _table(coefficients, features, observed):
    return fill_table(_log_density, coefficients, features, observed)


@numba.njit(cache=True)
def _sums(coefficients, features, observed, gamma):
    return weighted_sums(_statistics, 2, coefficients, features, observed, gamma)


def test_table_and_sums_equal_numpy_over_the_observed_entries():
    rng = np.random.default_rng(0)
    num, units, batch, steps = 3, 2, 2, 5
    coefficients = rng.normal(size=(num, units, 2))
    features = rng.normal(size=(batch, steps, units, 2))
    observed = rng.uniform(size=(batch, steps, units)) < 0.7
    gamma = rng.uniform(size=(steps, num, batch))
    entry = (
        coefficients[None, None, :, :, 0]
        + coefficients[None, None, :, :, 1] * features[:, :, None, :, 0]
        - features[:, :, None, :, 1]
    )  # (N, T, K, U)
    mask = observed[:, :, None, :]
    np.testing.assert_allclose(
        _table(coefficients, features, observed), np.where(mask, entry, 0.0).sum(-1), rtol=1e-14
    )
    weight = np.where(mask, gamma.transpose(2, 0, 1)[..., None], 0.0)  # (N, T, K, U)
    expected = np.stack(
        [
            weight.sum((0, 1)),
            (weight * coefficients[None, None, :, :, 1] * features[:, :, None, :, 0]).sum((0, 1)),
        ],
        -1,
    )
    np.testing.assert_allclose(_sums(coefficients, features, observed, gamma), expected, rtol=1e-13)
