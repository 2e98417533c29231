"""The lean potential equals the potential Pyro builds from the model, value and gradient."""

import pytest
import torch
from pyro.infer.mcmc.util import initialize_model, potential_grad

from hmm_pyro import HMM, Categorical, Gaussian, Poisson, Prior, simulate
from hmm_pyro.inference.lean_potential import LeanPotential

FAMILIES = [Categorical(num_symbols=4), Gaussian(), Gaussian(dim=2), Poisson(), Poisson(dim=2)]


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_value_and_gradient_equal_pyro_model_potential(emission):
    prior = Prior(pi=[1.0, 2.0, 0.5], stickiness=2.0, mu_loc=[-1.0, 0.0, 1.0], rate_shape=2.0)
    hmm = HMM(3, emission, prior)
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), [30, 20, 25], seed=1)
    lean = LeanPotential(hmm, data)
    _, pyro_potential, _, _ = initialize_model(hmm.model, model_args=(data,))
    for seed in range(3):
        params = hmm.sample_prior(seed=10 + seed)
        coords = lean.unconstrain(params)
        back = lean.constrain(coords)
        for name in params:
            assert torch.allclose(back[name], params[name], atol=1e-12)
        grads_lean, value_lean = potential_grad(lean, coords)
        grads_pyro, value_pyro = potential_grad(pyro_potential, coords)
        # float64, values of O(100-1000) nats: 1e-9 absolute for the value, 1e-8 for gradients.
        assert abs(float(value_lean) - float(value_pyro)) < 1e-9
        for name in coords:
            assert torch.allclose(grads_lean[name], grads_pyro[name], atol=1e-8, rtol=0)


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_without_jacobian_it_is_the_map_objective(emission):
    hmm = HMM(3, emission, Prior(stickiness=1.0, rate_shape=2.0))
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), [40, 15], seed=2)
    lean = LeanPotential(hmm, data)
    params = hmm.sample_prior(seed=4)
    objective = hmm.log_prior(params) + hmm.log_likelihood(params, data).sum()
    value = lean.log_joint(lean.unconstrain(params), jacobian=False)
    assert abs(float(value - objective)) < 1e-9


def test_evaluations_are_counted():
    hmm = HMM(2, Poisson())
    lean = LeanPotential(hmm, simulate(hmm, hmm.sample_prior(seed=0), 20, seed=0)[0])
    coords = lean.unconstrain(hmm.sample_prior(seed=1))
    lean(coords)
    lean(coords)
    assert lean.num_evaluations == 2
