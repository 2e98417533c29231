"""Starting points never have identical states."""

import pytest
import torch

from hmm_pyro import HMM, Categorical, Gaussian, Poisson, simulate
from hmm_pyro.learning import initial_params
from hmm_pyro.starts import MIN_START_SEPARATION, derive_seeds, min_separation


@pytest.mark.parametrize(
    "emission", [Categorical(5), Gaussian(), Gaussian(dim=3), Poisson()], ids=repr
)
@pytest.mark.parametrize("method", ["auto", "prior", "data"])
def test_starts_are_distinct_valid_and_reproducible(emission, method):
    hmm = HMM(4, emission)
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), [50, 30], seed=0)
    for seed in range(5):
        start = initial_params(hmm, data, method, seed=seed)
        hmm.validate_params(start)
        assert float(min_separation(hmm, start)) > MIN_START_SEPARATION
        again = initial_params(hmm, data, method, seed=seed)
        assert all(torch.equal(start[name], again[name]) for name in start)


def test_data_start_puts_gaussian_means_inside_the_data():
    hmm = HMM(3, Gaussian())
    params = {
        "pi": torch.ones(3) / 3,
        "A": torch.full((3, 3), 1 / 3),
        "mu": torch.tensor([100.0, 105.0, 110.0]),
        "sigma": torch.ones(3),
    }
    data, _ = simulate(hmm, params, [200], seed=0)
    start = initial_params(hmm, data, "data", seed=1)
    assert bool(((start["mu"] > 95) & (start["mu"] < 115)).all())


def test_identical_states_in_a_given_start_are_rejected():
    hmm = HMM(2, Categorical(3))
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), 20, seed=0)
    symmetric = {
        "pi": torch.tensor([0.5, 0.5]),
        "A": torch.full((2, 2), 0.5),
        "B": torch.full((2, 3), 1 / 3),
    }
    with pytest.raises(ValueError, match=r"init: .*identical states"):
        initial_params(hmm, data, symmetric)


def test_unknown_method_names_the_argument():
    hmm = HMM(2, Categorical(3))
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), 20, seed=0)
    with pytest.raises(ValueError, match="init"):
        initial_params(hmm, data, "kmeans++")


def test_derived_seeds_are_distinct_and_stable():
    seeds = derive_seeds(5, 8)
    assert len(set(seeds)) == 8
    assert seeds == derive_seeds(5, 8)
    assert seeds != derive_seeds(6, 8)
