"""The coefficient priors: their transforms, supports and densities."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.distributions import biject_to

from hmm_pyro.covariate_model.distributions import (
    OffDiagonalNormal,
    OffDiagonalTransform,
    SumToZeroNormal,
    SumToZeroTransform,
    helmert_basis,
    off_diagonal,
    sum_to_zero,
)


def test_off_diagonal_transform_inserts_and_removes_a_zero_diagonal():
    transform = biject_to(off_diagonal(3))
    assert isinstance(transform, OffDiagonalTransform)
    x = torch.arange(12.0, dtype=torch.float64).reshape(3, 2, 2)
    y = transform(x)
    assert y.shape == (3, 3, 2) and transform.forward_shape(x.shape) == y.shape
    for i in range(3):
        assert (y[i, i] == 0).all()
        others = [j for j in range(3) if j != i]
        torch.testing.assert_close(y[i, others], x[i], rtol=0, atol=0)
    torch.testing.assert_close(transform.inv(y), x, rtol=0, atol=0)
    assert transform.inverse_shape(y.shape) == x.shape
    assert off_diagonal(3).check(y) and not off_diagonal(3).check(y + 1.0)
    assert transform.log_abs_det_jacobian(x, y).shape == ()


def test_sum_to_zero_transform_is_an_isometry_onto_zero_sums():
    basis = helmert_basis(4)
    torch.testing.assert_close(basis.T @ basis, torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(basis.sum(0), torch.zeros(3, dtype=torch.float64))
    transform = biject_to(sum_to_zero(4))
    assert isinstance(transform, SumToZeroTransform)
    u = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    beta = transform(u)
    assert sum_to_zero(4).check(beta) and not sum_to_zero(4).check(beta + 0.1)
    torch.testing.assert_close(transform.inv(beta), u)
    torch.testing.assert_close((beta**2).sum(0), (u**2).sum(0))


def test_off_diagonal_normal_is_independent_normals_off_the_diagonal():
    loc = torch.full((3, 3, 2), -1.0, dtype=torch.float64)
    scale = torch.tensor([2.0, 0.5], dtype=torch.float64).expand(3, 3, 2)
    prior = OffDiagonalNormal(loc, scale)
    draw = prior.sample()
    assert off_diagonal(3).check(draw)
    expected = sum(
        torch.distributions.Normal(loc[i, j], scale[i, j]).log_prob(draw[i, j]).sum()
        for i, j in itertools.product(range(3), repeat=2)
        if i != j
    )
    torch.testing.assert_close(prior.log_prob(draw), expected, rtol=0, atol=1e-12)
    assert prior.sample((5,)).shape == (5, 3, 3, 2)


def test_sum_to_zero_normal_is_the_same_under_relabelling():
    """The prior of the initial coefficients does not depend on the states' order."""
    prior = SumToZeroNormal(torch.tensor([2.0, 1.0], dtype=torch.float64), 3)
    draws = prior.sample((4,))
    assert draws.shape == (4, 3, 2) and sum_to_zero(3).check(draws).all()
    # density of the K - 1 = 2 coordinates u = H^T beta per column, |u| = |beta|
    scale = torch.tensor([2.0, 1.0], dtype=torch.float64)
    constant = 2 * (torch.log(scale) + 0.5 * math.log(2 * math.pi))
    expected = -0.5 * (draws**2).sum(-2) / scale**2 - constant
    torch.testing.assert_close(prior.log_prob(draws), expected.sum(-1))
    for perm in itertools.permutations(range(3)):
        torch.testing.assert_close(prior.log_prob(draws[:, list(perm)]), prior.log_prob(draws))


def test_the_coefficients_have_no_batch_shape():
    prior = SumToZeroNormal(torch.ones(2, dtype=torch.float64), 3)
    assert prior.expand(torch.Size()) is prior
    with pytest.raises(ValueError, match=r"^batch_shape"):
        prior.expand(torch.Size([2]))
