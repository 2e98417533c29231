"""The lane-vectorised numba kernel against the per-sequence one."""

import math

import numpy as np
import pytest

from hmm_pyro.kernels._numba.lanes import forward_backward_lanes, log_likelihood_lanes
from tests.kernels._numba.per_sequence_reference import per_sequence, random_inputs


@pytest.mark.parametrize(("batch", "steps", "states"), [(1, 1, 1), (3, 7, 2), (9, 40, 5)])
@pytest.mark.parametrize("scale", [1.0, 400.0])
def test_lanes_equal_the_per_sequence_kernel(batch, steps, states, scale):
    """``scale=400`` makes scale factors far below 1e-150, exercising the log folding."""
    rng = np.random.default_rng(batch * 100 + steps)
    args = random_inputs(rng, batch, steps, states, scale)
    expected = per_sequence(*args)
    got = forward_backward_lanes(*args)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9 * max(1.0, scale))
    np.testing.assert_allclose(log_likelihood_lanes(*args), expected[0], rtol=1e-12)


def test_lanes_broadcast_pi_and_A_of_batch_one():
    rng = np.random.default_rng(3)
    log_pi, log_A, log_lik, lengths = random_inputs(rng, 4, 12, 3)
    one_pi, one_A = log_pi[:1], log_A[:1]
    got = forward_backward_lanes(one_pi, one_A, log_lik, lengths)
    expected = per_sequence(one_pi, one_A, log_lik, lengths)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_zero_likelihood_lane_is_minus_inf_and_leaves_the_others_alone():
    rng = np.random.default_rng(4)
    log_pi, log_A, log_lik, lengths = random_inputs(rng, 3, 10, 3)
    lengths[:] = 10
    log_lik[1, 4] = -math.inf  # no state can emit step 4 of sequence 1
    log_pi[2] = [0.0, -math.inf, -math.inf]  # sequence 2 starts in state 0...
    log_A[2] = np.where(np.eye(3) > 0, 0.0, -math.inf)  # ...cannot leave it...
    log_lik[2, 6, 0] = -math.inf  # ...which cannot emit step 6
    log_z, gamma, xi = forward_backward_lanes(log_pi, log_A, log_lik, lengths)
    assert log_z[1] == -math.inf and log_z[2] == -math.inf
    assert not gamma[1:].any() and not xi[1:].any()
    reference = per_sequence(log_pi[:1], log_A[:1], log_lik[:1], lengths[:1])
    np.testing.assert_allclose(log_z[0], reference[0][0], rtol=1e-12)
    np.testing.assert_allclose(gamma[0], reference[1][0], atol=1e-12)
