"""The hand-built NUTS potential equals the potential Pyro builds from the model."""

import pytest
import torch
from pyro.infer.mcmc.util import initialize_model, potential_grad

from hmm_pyro import HMM, Categorical, Gaussian, Poisson, Prior, simulate
from hmm_pyro.inference.potential import Potential

FAMILIES = [
    Categorical(num_symbols=4),
    Gaussian(),
    Gaussian(dim=2),
    Poisson(),
    Poisson(dim=2),
]


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_potential_and_gradient_equal_pyro_model_potential(emission):
    hmm = HMM(3, emission, Prior(stickiness=2.0, mu_loc=[-1.0, 0.0, 1.0]))
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), [15, 9, 12], seed=1)
    ours = Potential(hmm, data)
    _, pyro_potential, _, _ = initialize_model(hmm.model, model_args=(data,))
    for seed in range(3):
        z = ours.unconstrain(hmm.sample_prior(seed=10 + seed))
        grads_ours, value_ours = potential_grad(ours, z)
        grads_pyro, value_pyro = potential_grad(pyro_potential, z)
        # float64, O(100) nats: agreement to 1e-9 absolute.
        assert abs(float(value_ours) - float(value_pyro)) < 1e-9
        for name in z:
            assert torch.allclose(grads_ours[name], grads_pyro[name], atol=1e-8, rtol=0)


def test_constrain_inverts_unconstrain():
    hmm = HMM(3, Gaussian(dim=2))
    potential = Potential(hmm, simulate(hmm, hmm.sample_prior(seed=0), 20, seed=0)[0])
    params = hmm.sample_prior(seed=3)
    back = potential.constrain(potential.unconstrain(params))
    for name, value in params.items():
        assert torch.allclose(back[name], value, atol=1e-12)


def test_evaluations_are_counted():
    hmm = HMM(2, Poisson())
    potential = Potential(hmm, simulate(hmm, hmm.sample_prior(seed=0), 20, seed=0)[0])
    z = potential.unconstrain(hmm.sample_prior(seed=1))
    potential(z)
    potential(z)
    assert potential.num_evaluations == 2
