"""Flat unconstrained coordinates: layout, split/join and the transforms of each kind."""

import math

import pytest
import torch
from torch.distributions import biject_to

from hmm_pyro import HMM, Categorical, Gamma, Gaussian, MultivariateNormal, Poisson, VonMises
from hmm_pyro.emissions.base import dirichlet_log_normalizer
from hmm_pyro.inference.coordinates import KINDS, Coordinates, isometric_basis, log_simplex

FAMILIES = [
    Categorical(num_symbols=4),
    Gaussian(),
    Gaussian(dim=2),
    Poisson(),
    Poisson(dim=2),
    Gamma(dim=2),
    VonMises(),
    MultivariateNormal(dim=3),
]


def test_split_and_join_are_inverse():
    coordinates = Coordinates(HMM(3, Gaussian(dim=2)))
    flat = torch.randn(4, coordinates.size, dtype=torch.float64)
    assert torch.equal(coordinates.join(coordinates.split(flat)), flat)
    assert coordinates.size == 2 + 3 * 2 + 3 * 2 + 3 * 2


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_constrain_inverts_unconstrain_with_draw_dimensions(emission):
    hmm = HMM(3, emission)
    coordinates = Coordinates(hmm)
    params = hmm.sample_prior(num_samples=5, seed=3)
    flat = coordinates.unconstrain(params)
    assert flat.shape == (5, coordinates.size)
    back = coordinates.constrain(flat)
    assert list(back) == list(hmm.param_names)
    for name, value in params.items():
        assert torch.allclose(back[name], value, atol=1e-12)


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_coordinates_are_pyros_bijections(emission):
    """Stick-breaking, log and identity: ``biject_to`` of each prior's support."""
    hmm = HMM(3, emission)
    coordinates = Coordinates(hmm)
    params = hmm.sample_prior(seed=1)
    coords = coordinates.split(coordinates.unconstrain(params))
    for name, prior in hmm.prior_distributions().items():
        expected = biject_to(prior.support).inv(params[name])
        torch.testing.assert_close(coords[name], expected, rtol=0, atol=1e-12)


def test_angles_are_wrapped_and_correlations_have_their_free_entries():
    hmm = HMM(2, MultivariateNormal(dim=3))
    coordinates = Coordinates(hmm)
    assert coordinates.layout[-1] == ("corr", "bijection", (2, 3))
    assert coordinates.size == 1 + 2 + 2 * 3 + 2 * 3 + 2 * 3
    hmm = HMM(2, VonMises())
    coordinates = Coordinates(hmm)
    flat = torch.tensor([0.0, 0.0, 0.0, 3.5, -7.0, 0.0, 0.0], dtype=torch.float64)
    mu = coordinates.constrain(flat)["mu"]
    torch.testing.assert_close(mu, torch.tensor([3.5 - 2 * math.pi, -7.0 + 2 * math.pi]).double())
    assert ((mu >= -math.pi) & (mu < math.pi)).all()


def test_log_simplex_is_the_log_of_stick_breaking():
    x = torch.randn(4, 3, 5, dtype=torch.float64)
    expected = biject_to(torch.distributions.constraints.simplex)(x).log()
    torch.testing.assert_close(log_simplex(x), expected, rtol=0, atol=1e-12)


def test_transition_prior_constant():
    hmm = HMM(2, Poisson())
    coordinates = Coordinates(hmm)
    # flat Dirichlet(1, 1) rows: log Gamma(2) - 2 log Gamma(1) = 0 for pi and each row of A
    assert coordinates.constant == 0.0
    assert torch.equal(coordinates.concentration["A"], torch.ones(2, 2, dtype=torch.float64))


def test_unknown_coordinate_kind_is_named(monkeypatch):
    emission = Poisson()
    monkeypatch.setattr(Poisson, "potential_coordinates", lambda self: {"rate": "logit"})
    with pytest.raises(ValueError, match=r"hmm: expected coordinate kinds .*'logit' for 'rate'"):
        Coordinates(HMM(2, emission))


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_each_family_names_a_kind_for_each_parameter_in_order(emission):
    assert list(emission.potential_coordinates()) == list(emission.param_names)
    assert set(emission.potential_coordinates().values()) <= set(KINDS)


def test_dirichlet_log_normalizer_is_the_log_density_constant():
    alpha = torch.tensor([[0.5, 2.0, 3.0], [1.0, 1.0, 7.5]], dtype=torch.float64)
    point = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]], dtype=torch.float64)
    density = torch.distributions.Dirichlet(alpha).log_prob(point).sum()
    kernel = ((alpha - 1) * point.log()).sum()
    assert abs(dirichlet_log_normalizer(alpha) - float(density - kernel)) < 1e-12


@pytest.mark.parametrize("width", [2, 3, 5])
def test_isometric_basis_is_orthonormal_with_columns_summing_to_zero(width):
    basis = isometric_basis(width)
    assert basis.shape == (width, width - 1)
    torch.testing.assert_close(basis.T @ basis, torch.eye(width - 1, dtype=torch.float64))
    torch.testing.assert_close(basis.sum(0), torch.zeros(width - 1, dtype=torch.float64))


@pytest.mark.parametrize("emission", [Categorical(num_symbols=4), Gaussian()], ids=repr)
def test_isometric_coordinates_map_to_stick_breaking_with_the_autograd_log_det(emission):
    """Softmax of ``V u`` is the simplex row; ``log|det|`` equals autograd's full Jacobian."""
    coordinates = Coordinates(HMM(3, emission))
    flat = torch.randn(
        coordinates.size, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    stick, log_det = coordinates.stick_from_isometric(flat)
    jacobian = torch.autograd.functional.jacobian(
        lambda u: coordinates.stick_from_isometric(u)[0], flat
    )
    sign, expected = torch.linalg.slogdet(jacobian)
    assert sign != 0
    torch.testing.assert_close(log_det, expected, rtol=0, atol=1e-10)
    rows, coords = coordinates.split(stick), coordinates.split(flat)
    for name, kind, shape in coordinates.layout:
        if kind == "simplex":
            expected_rows = torch.softmax(coords[name] @ isometric_basis(shape[-1] + 1).T, -1)
            torch.testing.assert_close(log_simplex(rows[name]).exp(), expected_rows)
        else:
            assert torch.equal(rows[name], coords[name])
    draws = torch.stack([flat, 2 * flat])  # leading draw dimensions
    back = coordinates.isometric_from_stick(coordinates.stick_from_isometric(draws)[0])
    torch.testing.assert_close(back, draws, rtol=0, atol=1e-12)
