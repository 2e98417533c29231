"""The reference potentials equal the potential Pyro builds from the model, value and gradient."""

import pytest
import torch
from pyro.infer.mcmc.util import initialize_model, potential_grad

from hmm_pyro import HMM, Categorical, Gaussian, Poisson, Prior, simulate
from tests.inference.reference_potentials import ClosedFormPotential, DistributionPotential

FAMILIES = [Categorical(num_symbols=4), Gaussian(), Gaussian(dim=2), Poisson(), Poisson(dim=2)]


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_distribution_potential_equals_pyro_model_potential(emission):
    hmm = HMM(3, emission, Prior(stickiness=2.0, mu_loc=[-1.0, 0.0, 1.0]))
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), [15, 9, 12], seed=1)
    ours = DistributionPotential(hmm, data)
    _, pyro_potential, _, _ = initialize_model(hmm.model, model_args=(data,))
    for seed in range(3):
        z = ours.unconstrain(hmm.sample_prior(seed=10 + seed))
        grads_ours, value_ours = potential_grad(ours, z)
        grads_pyro, value_pyro = potential_grad(pyro_potential, z)
        # float64, O(100) nats: agreement to 1e-9 absolute.
        assert abs(float(value_ours) - float(value_pyro)) < 1e-9
        for name in z:
            assert torch.allclose(grads_ours[name], grads_pyro[name], atol=1e-8, rtol=0)


def test_distribution_potential_constrain_inverts_unconstrain():
    hmm = HMM(3, Gaussian(dim=2))
    potential = DistributionPotential(hmm, simulate(hmm, hmm.sample_prior(seed=0), 20, seed=0)[0])
    params = hmm.sample_prior(seed=3)
    back = potential.constrain(potential.unconstrain(params))
    for name, value in params.items():
        assert torch.allclose(back[name], value, atol=1e-12)


def test_distribution_potential_counts_evaluations():
    hmm = HMM(2, Poisson())
    potential = DistributionPotential(hmm, simulate(hmm, hmm.sample_prior(seed=0), 20, seed=0)[0])
    z = potential.unconstrain(hmm.sample_prior(seed=1))
    potential(z)
    potential(z)
    assert potential.num_evaluations == 2


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_closed_form_potential_equals_pyro_model_potential(emission):
    prior = Prior(pi=[1.0, 2.0, 0.5], stickiness=2.0, mu_loc=[-1.0, 0.0, 1.0], rate_shape=2.0)
    hmm = HMM(3, emission, prior)
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), [30, 20, 25], seed=1)
    closed_form = ClosedFormPotential(hmm, data)
    _, pyro_potential, _, _ = initialize_model(hmm.model, model_args=(data,))
    for seed in range(3):
        params = hmm.sample_prior(seed=10 + seed)
        coords = closed_form.unconstrain(params)
        back = closed_form.constrain(coords)
        for name in params:
            assert torch.allclose(back[name], params[name], atol=1e-12)
        grads_closed_form, value_closed_form = potential_grad(closed_form, coords)
        grads_pyro, value_pyro = potential_grad(pyro_potential, coords)
        # float64, values of O(100-1000) nats: 1e-9 absolute for the value, 1e-8 for gradients.
        assert abs(float(value_closed_form) - float(value_pyro)) < 1e-9
        for name in coords:
            assert torch.allclose(grads_closed_form[name], grads_pyro[name], atol=1e-8, rtol=0)


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_closed_form_potential_without_jacobian_is_the_map_objective(emission):
    hmm = HMM(3, emission, Prior(stickiness=1.0, rate_shape=2.0))
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), [40, 15], seed=2)
    closed_form = ClosedFormPotential(hmm, data)
    params = hmm.sample_prior(seed=4)
    objective = hmm.log_prior(params) + hmm.log_likelihood(params, data).sum()
    value = closed_form.log_joint(closed_form.unconstrain(params), jacobian=False)
    assert abs(float(value - objective)) < 1e-9


def test_closed_form_potential_counts_evaluations():
    hmm = HMM(2, Poisson())
    closed_form = ClosedFormPotential(hmm, simulate(hmm, hmm.sample_prior(seed=0), 20, seed=0)[0])
    coords = closed_form.unconstrain(hmm.sample_prior(seed=1))
    closed_form(coords)
    closed_form(coords)
    assert closed_form.num_evaluations == 2
