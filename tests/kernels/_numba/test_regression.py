"""The regression sweeps in blocks of lanes, chunks of steps and threads equal one pass."""

import numpy as np
import pytest
import torch

from hmm_pyro import kernels
from hmm_pyro.kernels._numba import batch, regression
from tests.kernels.test_regression import regression_inputs


def _value_and_gradients(log_pi, coefficients, design, log_lik, lengths, backend="numba"):
    inputs = [x.clone().requires_grad_() for x in (log_pi, coefficients, log_lik)]
    value = kernels.regression_log_likelihood(
        inputs[0], inputs[1], design, inputs[2], lengths, backend=backend
    )
    return (value, *torch.autograd.grad(value.sum(), inputs))


def test_blocks_chunks_and_threads_give_the_single_pass_results(monkeypatch):
    rng = np.random.default_rng(30)
    log_pi, coefficients, design, log_lik = regression_inputs(rng, (2,), 10, 9, 3, 3)
    lengths = torch.tensor([9, 1, 2, 9, 5, 3, 9, 8, 6, 4])
    arguments = (log_pi, coefficients, design, log_lik, lengths)
    reference = _value_and_gradients(*arguments, backend="torch")
    monkeypatch.setattr(regression, "BLOCK_LANES", 3)  # blocks of 3, 3, 2 and 2 lanes per set
    monkeypatch.setattr(regression, "CHUNK_BYTES", 8 * 9 * 3 * 2)  # chunks of 2 steps
    assert regression._blocks(0, 20, 10).tolist() == [
        [0, 3],
        [3, 6],
        [6, 8],
        [8, 10],
        [10, 13],
        [13, 16],
        [16, 18],
        [18, 20],
    ]
    blocked = _value_and_gradients(*arguments)
    monkeypatch.setattr(batch, "PARALLEL_MIN_WORK", 1)
    monkeypatch.setattr(batch.numba, "get_num_threads", lambda: 3)
    threaded = _value_and_gradients(*arguments)
    for a, b, c in zip(blocked, threaded, reference, strict=True):
        torch.testing.assert_close(a, c, rtol=0, atol=1e-12)
        torch.testing.assert_close(b, c, rtol=0, atol=1e-12)


def test_value_without_gradient_over_several_chunks(monkeypatch):
    """The forward sweep alone keeps one chunk of matrices: each step must still read its own."""
    rng = np.random.default_rng(31)
    log_pi, coefficients, design, log_lik = regression_inputs(rng, (), 3, 9, 3, 2)
    lengths = torch.tensor([9, 4, 7])
    reference = kernels.regression_log_likelihood(
        log_pi, coefficients, design, log_lik, lengths, backend="torch"
    )
    monkeypatch.setattr(regression, "CHUNK_BYTES", 8 * 9 * 3 * 2)  # chunks of 2 steps
    value = kernels.regression_log_likelihood(
        log_pi, coefficients, design, log_lik, lengths, backend="numba"
    )
    torch.testing.assert_close(value, reference, rtol=0, atol=1e-12)


@pytest.mark.parametrize("num_covariates", [1, 2, 3, 4, 5, 9])
def test_every_number_of_covariates_matches_torch(num_covariates):
    """The logits have a loop per number of covariates (up to four, then groups of four with
    their partial sums first): value and gradients against the torch route."""
    rng = np.random.default_rng(40 + num_covariates)
    arguments = (*regression_inputs(rng, (), 3, 6, 3, num_covariates), torch.tensor([6, 2, 5]))
    blocked = _value_and_gradients(*arguments)
    reference = _value_and_gradients(*arguments, backend="torch")
    for a, c in zip(blocked, reference, strict=True):
        torch.testing.assert_close(a, c, rtol=0, atol=1e-12)
