"""Transition rows as multinomial-logit regressions (``kernels.regression_log_likelihood``).

References: the brute-force sum over state paths and the enumerated Pyro model of
``test_time_varying`` (independent of the package) on ``log_A = log_softmax(x_t beta)``
computed here, the ``"torch"`` backend (the time-varying kernel on that ``log_A``, autograd
through the softmax), finite differences and the homogeneous kernel (constant covariates).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pyro.infer import TraceEnum_ELBO

from hmm_pyro import kernels
from tests.kernels.test_time_varying import enumerate_paths, enumerated_pyro_model


def regression_inputs(rng, sets, num_sequences, num_steps, num_states, num_covariates):
    """``log_pi (N, K)``, ``coefficients (*sets, K, K, P)``, ``design (N, T, P)`` (intercept
    first), ``log_lik (*sets, N, T, K)``."""
    log_pi = np.log(rng.dirichlet(np.ones(num_states), num_sequences))
    coefficients = rng.normal(0.0, 1.0, (*sets, num_states, num_states, num_covariates))
    design = rng.normal(0.0, 1.0, (num_sequences, num_steps, num_covariates))
    design[..., 0] = 1.0
    log_lik = rng.normal(-1.0, 1.5, (*sets, num_sequences, num_steps, num_states))
    return tuple(
        torch.as_tensor(x, dtype=torch.float64) for x in (log_pi, coefficients, design, log_lik)
    )


def log_transitions(coefficients, design):
    """``log_softmax(x_t . beta[i, j])`` written out: ``(..., N, T, K, K)``."""
    logits = (design[..., :, :, None, None, :] * coefficients[..., None, None, :, :, :]).sum(-1)
    return logits - logits.logsumexp(-1, keepdim=True)


def spoil_unused(design, lengths):
    """NaN in the design rows the kernels must not read (the last step of each sequence on)."""
    spoiled = design.clone()
    for n, length in enumerate(lengths.tolist()):
        spoiled[n, length - 1 :] = math.nan
    return spoiled


@pytest.mark.parametrize("backend", ["torch", "numba"])
@pytest.mark.parametrize(("num_states", "num_covariates"), [(1, 1), (2, 1), (3, 2), (3, 5)])
def test_matches_brute_force_over_paths(backend, num_states, num_covariates):
    rng = np.random.default_rng(20 + 3 * num_states + num_covariates)
    lengths = torch.tensor([6, 1, 3, 5])
    log_pi, coefficients, design, log_lik = regression_inputs(
        rng, (), 4, 6, num_states, num_covariates
    )
    given = spoil_unused(design, lengths) if backend == "numba" else design
    value = kernels.regression_log_likelihood(
        log_pi, coefficients, given, log_lik, lengths, backend=backend
    )
    log_A = log_transitions(coefficients, design)
    for n, length in enumerate(lengths.tolist()):
        total, *_ = enumerate_paths(log_pi[n], log_A[n, :length], log_lik[n, :length])
        assert abs(value[n].item() - total) < 1e-9


def test_matches_an_enumerated_pyro_model():
    rng = np.random.default_rng(21)
    log_pi, coefficients, design, log_lik = regression_inputs(rng, (), 3, 6, 3, 3)
    log_A = log_transitions(coefficients, design)
    pyro_model = lambda: enumerated_pyro_model(log_pi, log_A, log_lik)  # noqa: E731
    reference = -TraceEnum_ELBO(max_plate_nesting=1).loss(pyro_model, lambda: None)
    value = kernels.regression_log_likelihood(log_pi, coefficients, design, log_lik)
    assert abs(value.sum().item() - reference) < 1e-9


def test_numba_value_and_gradients_match_torch_with_sets_and_weights():
    """Two coefficient sets (draws) over four ragged sequences; summed and weighted values."""
    rng = np.random.default_rng(22)
    log_pi, coefficients, design, log_lik = regression_inputs(rng, (2,), 4, 7, 3, 3)
    lengths = torch.tensor([7, 1, 4, 6])
    weights = torch.tensor([[1.0, 2.0, 0.5, 3.0], [1.5, 1.5, 1.5, 1.5]], dtype=torch.float64)
    results = {}
    for backend in ("torch", "numba"):
        given = spoil_unused(design, lengths) if backend == "numba" else design
        inputs = [x.clone().requires_grad_() for x in (log_pi, coefficients, log_lik)]
        value = kernels.regression_log_likelihood(
            inputs[0], inputs[1], given, inputs[2], lengths, backend=backend
        )
        summed = torch.autograd.grad(value.sum(), inputs, retain_graph=True)
        weighted = torch.autograd.grad((weights * value).sum(), inputs)
        results[backend] = (value, *summed, *weighted)
    assert results["numba"][0].shape == (2, 4)
    for a, b in zip(results["numba"], results["torch"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_numba_gradcheck():
    rng = np.random.default_rng(23)
    log_pi, coefficients, design, log_lik = regression_inputs(rng, (), 2, 5, 3, 2)
    lengths = torch.tensor([5, 3])
    inputs = tuple(x.clone().requires_grad_() for x in (log_pi, coefficients, log_lik))

    def func(a, b, c):
        return kernels.regression_log_likelihood(a, b, design, c, lengths, backend="numba")

    assert torch.autograd.gradcheck(func, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_constant_covariates_give_the_homogeneous_kernel():
    """An intercept-only design: one matrix ``softmax(beta[..., 0])`` at every step."""
    rng = np.random.default_rng(24)
    log_pi, coefficients, design, log_lik = regression_inputs(rng, (), 5, 9, 3, 1)
    lengths = torch.tensor([9, 1, 4, 9, 7])
    coefficients.requires_grad_()
    value = kernels.regression_log_likelihood(log_pi, coefficients, design, log_lik, lengths)
    log_A = coefficients[..., 0].log_softmax(-1)
    homogeneous = kernels.log_likelihood(log_pi, log_A, log_lik, lengths)
    torch.testing.assert_close(value, homogeneous, rtol=0, atol=1e-12)
    (grad_r,) = torch.autograd.grad(value.sum(), coefficients)
    (grad_h,) = torch.autograd.grad(homogeneous.sum(), coefficients)
    torch.testing.assert_close(grad_r, grad_h, rtol=0, atol=1e-12)


def test_logits_far_above_the_diagonal():
    """Logits 800 above a row's diagonal (``exp`` would overflow) take the shifted route."""
    rng = np.random.default_rng(25)
    log_pi, coefficients, design, log_lik = regression_inputs(rng, (), 3, 6, 3, 2)
    coefficients[0, 1, 0], coefficients[2, 0, 1] = 800.0, -900.0
    results = {}
    for backend in ("torch", "numba"):
        beta = coefficients.clone().requires_grad_()
        value = kernels.regression_log_likelihood(log_pi, beta, design, log_lik, backend=backend)
        results[backend] = (value, *torch.autograd.grad(value.sum(), beta))
    for a, b in zip(results["numba"], results["torch"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_a_sequence_of_zero_likelihood_adds_nothing_to_the_gradient():
    rng = np.random.default_rng(27)
    log_pi, coefficients, design, log_lik = regression_inputs(rng, (), 3, 6, 3, 2)
    log_lik[1, 2] = -math.inf  # sequence 1 cannot emit step 2
    beta = coefficients.clone().requires_grad_()
    value = kernels.regression_log_likelihood(log_pi, beta, design, log_lik, backend="numba")
    assert value[1] == -math.inf and torch.isfinite(value[[0, 2]]).all()
    (grad,) = torch.autograd.grad(value[[0, 2]].sum(), beta)
    keep = [0, 2]
    others = kernels.regression_log_likelihood(
        log_pi[keep], beta, design[keep], log_lik[keep], backend="numba"
    )
    torch.testing.assert_close(others, value[keep], rtol=0, atol=0)
    (expected,) = torch.autograd.grad(others.sum(), beta)
    torch.testing.assert_close(grad, expected, rtol=0, atol=1e-12)


def test_bad_inputs_are_refused():
    rng = np.random.default_rng(26)
    log_pi, coefficients, design, log_lik = regression_inputs(rng, (), 2, 4, 3, 2)
    with pytest.raises(ValueError, match=r"^coefficients: expected last three dimensions"):
        kernels.regression_log_likelihood(log_pi, coefficients[..., :1], design, log_lik)
    with pytest.raises(ValueError, match=r"^design: expected last two dimensions \(T=4"):
        kernels.regression_log_likelihood(log_pi, coefficients, design[:, :3], log_lik)
    with pytest.raises(ValueError, match=r"leading \(batch\) dimensions do not broadcast"):
        kernels.regression_log_likelihood(log_pi, coefficients, design[:1].expand(3, 4, 2), log_lik)
    with pytest.raises(TypeError, match=r"^design: expected a torch.Tensor"):
        kernels.regression_log_likelihood(log_pi, coefficients, design.numpy(), log_lik)
    with pytest.raises(ValueError, match=r"^design: the 'numba' backend gives no gradient"):
        kernels.regression_log_likelihood(
            log_pi, coefficients, design.clone().requires_grad_(), log_lik
        )
