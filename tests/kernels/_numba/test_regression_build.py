"""The chunk of transition matrices against a softmax in NumPy."""

import numpy as np
import pytest
from scipy.special import softmax

from hmm_pyro.kernels._numba.regression_build import build_chunk, design_block


@pytest.mark.parametrize("num_covariates", [1, 2, 3, 4, 5, 9])
def test_rows_are_the_softmax_of_the_logits(num_covariates):
    """Every loop of the builder (one per number of covariates, and the extra passes beyond
    four) against ``softmax(x . beta_i)``; a logit 800 above its diagonal takes the shifted
    route. Both sides round logits of size up to ~900 (relative error of their exponentials up
    to ``900 * 2**-52 = 2e-13``); a wrong coefficient, covariate or normalisation moves entries
    by far more.
    """
    rng = np.random.default_rng(num_covariates)
    num_states, size = 4, 37
    coefficients = rng.normal(size=(num_states, num_states, num_covariates))
    x = rng.normal(size=(num_covariates, size))
    coefficients[2, 0, 0] = 800.0 / max(abs(x[0]).min(), 0.1)
    entries, sums = np.empty((num_states, num_states, size)), np.empty(size)
    build_chunk(coefficients, x, entries, sums)
    logits = np.einsum("ijp,pq->qij", coefficients, x)
    expected = softmax(logits, axis=-1).transpose(1, 2, 0)
    np.testing.assert_allclose(entries, expected, rtol=5e-13, atol=1e-300)
    assert np.isfinite(entries).all()


def test_design_rows_zero_where_the_transition_is_not_used():
    rng = np.random.default_rng(1)
    design = rng.normal(size=(2, 5, 3))
    lengths = np.array([5, 2, 4])  # lane 2 reads design row 0 again
    xt = np.full((3, 3, 2, 3), np.nan)  # chunks of 2 steps: 6 places for 5 steps
    design_block(design, 0, lengths, xt)
    steps = xt.transpose(1, 0, 2, 3).reshape(3, 6, 3)  # (P, t, lane)
    for lane, row in enumerate([0, 1, 0]):
        used = lengths[lane] - 1
        np.testing.assert_array_equal(steps[:, :used, lane], design[row, :used].T)
        assert not steps[:, used:, lane].any()
