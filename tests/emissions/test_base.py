"""The Emission interface: family roles, free parameters, hyperparameters, labels, statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.emissions import FAMILIES as REGISTRY
from hmm_pyro.emissions import Emission

DTYPE = torch.float64
FAMILIES = [
    hp.Categorical(4),
    hp.Gaussian(),
    hp.Gaussian(dim=2),
    hp.Poisson(),
    hp.Poisson(dim=3),
]


@pytest.mark.parametrize(
    ("emission", "num_states", "expected"),
    [
        (hp.Categorical(5), 3, 3 * 4),
        (hp.Categorical(2), 1, 1),
        (hp.Gaussian(), 3, 6),
        (hp.Gaussian(dim=2), 3, 12),
        (hp.Poisson(), 1, 1),
        (hp.Poisson(dim=4), 2, 8),
    ],
    ids=repr,
)
def test_num_free_params_by_hand(emission, num_states, expected):
    assert emission.num_free_params(num_states) == expected


@pytest.mark.parametrize(
    ("emission", "simplex", "positive", "integer"),
    [
        (hp.Categorical(3), ("B",), (), True),
        (hp.Gaussian(dim=2), (), ("sigma",), False),
        (hp.Poisson(), (), ("rate",), True),
    ],
    ids=repr,
)
def test_parameter_roles(emission, simplex, positive, integer):
    assert emission.simplex_params == simplex
    assert emission.positive_params == positive
    assert emission.integer_valued is integer
    assert set(simplex) | set(positive) <= set(emission.param_names)


def test_same_family_ignores_options():
    assert hp.Categorical(3).same_family({"family": "categorical", "num_symbols": 7})
    assert hp.Gaussian().same_family(hp.Gaussian(dim=4).to_config())
    assert not hp.Gaussian().same_family(hp.Poisson().to_config())
    assert not hp.Poisson().same_family({})


def test_entry_labels():
    assert hp.Gaussian(dim=2).entry_label("sigma", 2, 1) == "sigma[2]"
    assert hp.Poisson().entry_label("rate", 0, 0) == "rate[0]"
    assert hp.Gaussian().entry_axis_label() is None
    assert hp.Poisson().entry_axis_label() is None
    assert hp.Categorical(4).entry_label("B", 2, 3) == "2:3"
    assert hp.Categorical(4).entry_axis_label() == "state:symbol"


def test_prior_hyperparameters_by_hand():
    prior = hp.Prior(
        B=[0.5, 1.0, 2.0, 3.0],
        mu_loc=[-1.0, 0.0, 2.0],
        mu_scale=1.5,
        variance_shape=3.0,
        variance_scale=0.5,
        rate_shape=2.5,
        rate_rate=[0.3, 0.4, 0.5],
    )
    hyper = hp.Categorical(4).prior_hyperparameters(prior, 3, DTYPE)
    assert list(hyper) == ["B"]
    torch.testing.assert_close(hyper["B"], torch.tensor([[0.5, 1.0, 2.0, 3.0]] * 3, dtype=DTYPE))
    hyper = hp.Gaussian(dim=2).prior_hyperparameters(prior, 3, DTYPE)
    assert list(hyper) == ["mu_loc", "mu_scale", "variance_shape", "variance_scale"]
    loc = torch.tensor([[-1.0, -1.0], [0.0, 0.0], [2.0, 2.0]], dtype=DTYPE)
    torch.testing.assert_close(hyper["mu_loc"], loc)
    torch.testing.assert_close(hyper["mu_scale"], torch.full((3, 2), 1.5, dtype=DTYPE))
    # Univariate Gaussians keep the (K, D = 1) layout of the hyperparameters.
    assert hp.Gaussian().prior_hyperparameters(prior, 3, DTYPE)["variance_shape"].shape == (3, 1)
    hyper = hp.Poisson().prior_hyperparameters(prior, 3, torch.float32)
    assert list(hyper) == ["rate_shape", "rate_rate"]
    assert hyper["rate_rate"].dtype == torch.float32
    torch.testing.assert_close(
        hyper["rate_rate"], torch.tensor([[0.3], [0.4], [0.5]], dtype=torch.float32)
    )


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_prior_distributions_use_the_hyperparameters(emission):
    """Every hyperparameter has the (K, V) or (K, D) layout and feeds the prior."""
    prior = hp.Prior(B=0.7, mu_loc=2.0, rate_shape=3.0)
    hyper = emission.prior_hyperparameters(prior, 3, DTYPE)
    width = emission.num_symbols if isinstance(emission, hp.Categorical) else emission.dim
    assert all(value.shape == (3, width) for value in hyper.values())
    distributions = emission.prior_distributions(prior, 3, DTYPE)
    if "B" in distributions:
        torch.testing.assert_close(distributions["B"].mean, torch.full((3, 4), 0.25, dtype=DTYPE))
    if "mu" in distributions:
        torch.testing.assert_close(distributions["mu"].mean.reshape(3, -1), hyper["mu_loc"])
    if "rate" in distributions:
        expected = hyper["rate_shape"] / hyper["rate_rate"]
        torch.testing.assert_close(distributions["rate"].mean.reshape(3, -1), expected)


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_location_has_one_value_per_state_and_broadcasts(emission):
    hmm = hp.HMM(3, emission)
    draws = hmm.sample_prior(num_samples=5, seed=0)
    params = {name: draws[name] for name in emission.param_names}
    location = emission.location(params)
    assert location.shape == (5, 3)
    single = emission.location({name: value[2] for name, value in params.items()})
    torch.testing.assert_close(single, location[2])


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_pooled_params_have_the_shapes_of_one_state(emission):
    hmm = hp.HMM(2, emission)
    data, _ = hp.simulate(hmm, hmm.sample_prior(seed=0), [30, 20], seed=1)
    pooled = emission.pooled_params(data)
    assert {name: tuple(value.shape) for name, value in pooled.items()} == emission.param_shapes(1)
    emission.validate_params(pooled, 1)


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_statistics_of_a_hard_path_give_the_supervised_estimate(emission):
    """Counting one-hot weights and maximising is the per-state ML fit of the assigned steps."""
    hmm = hp.HMM(2, emission)
    data, states = hp.simulate(hmm, hmm.sample_prior(seed=3), [40, 25], seed=4)
    weights = torch.nn.functional.one_hot(states.clamp(min=0), 2).to(DTYPE)
    weights = weights * data.mask[..., None]
    stats = emission.weighted_statistics(data, weights.reshape(-1, 2))
    estimate = emission.maximize(stats, {}, None, use_prior=False)
    for k in range(2):
        steps = data.values[(states == k) & data.mask]  # (steps, D)
        one = emission.pooled_params(hp.Sequences([steps.numpy()], dim=emission.dim))
        for name, value in one.items():
            torch.testing.assert_close(estimate[name][k], value[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_start_from_data_is_valid_and_reproducible(emission):
    hmm = hp.HMM(3, emission)
    data, _ = hp.simulate(hmm, hmm.sample_prior(seed=0), [50, 30], seed=0)
    generator = torch.Generator().manual_seed(5)
    start = emission.start_from_data(data, 3, generator, torch.float32)
    again = emission.start_from_data(data, 3, torch.Generator().manual_seed(5), torch.float32)
    assert set(start) == set(again)
    assert all(torch.equal(start[name], again[name]) for name in start)
    assert all(value.dtype == torch.float32 for value in start.values())
    shapes = emission.param_shapes(3)
    assert all(tuple(value.shape) == shapes[name] for name, value in start.items())
    if start:
        emission.validate_params(start, 3)


def test_default_start_keeps_the_prior_draw_and_draws_nothing():
    data = hp.Sequences([[0, 1, 2]])
    generator = torch.Generator().manual_seed(7)
    assert hp.Categorical(3).start_from_data(data, 2, generator, DTYPE) == {}
    untouched = torch.Generator().manual_seed(7)
    assert torch.equal(torch.rand(4, generator=generator), torch.rand(4, generator=untouched))


def test_a_new_family_must_answer_the_abstract_questions():
    abstract = Emission.__abstractmethods__
    for name in (
        "prior_hyperparameters",
        "weighted_statistics",
        "maximize",
        "pooled_params",
        "location",
    ):
        assert name in abstract
    for name in ("start_from_data", "num_free_params", "entry_label", "same_family"):
        assert name not in abstract


def test_moment_statistics_skip_missing_coordinates():
    data = hp.Sequences(
        [np.array([[1.0, 2.0], [np.nan, 4.0], [3.0, np.nan]]), np.array([[5.0, 6.0]])], dim=2
    )
    weights = torch.tensor(
        [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.2, 0.8], [0.0, 0.0], [0.0, 0.0]], dtype=DTYPE
    )  # (N * T, K); the second sequence is padded after one step
    stats = hp.Poisson(dim=2).weighted_statistics(data, weights)
    n = torch.tensor([[1.2, 1.7], [1.8, 1.3]], dtype=DTYPE)
    s1 = torch.tensor([[1 + 1.0, 2 + 2.0 + 1.2], [3 + 4.0, 2.0 + 4.8]], dtype=DTYPE)
    s2 = torch.tensor([[1 + 5.0, 4 + 8.0 + 7.2], [9 + 20.0, 8.0 + 28.8]], dtype=DTYPE)
    torch.testing.assert_close(stats["n"], n)
    torch.testing.assert_close(stats["s1"], s1)
    torch.testing.assert_close(stats["s2"], s2)
    torch.testing.assert_close(stats["shift"], torch.zeros(2, dtype=DTYPE))


def test_from_options_builds_each_family_from_the_options_and_the_data():
    two_columns = hp.Sequences(np.zeros((1, 4, 2)))
    assert hp.Gaussian.from_options(data=two_columns) == hp.Gaussian(dim=2)
    assert hp.Poisson.from_options(dim=3) == hp.Poisson(dim=3)
    assert hp.Gaussian.from_options(dim=1) == hp.Gaussian() == hp.Gaussian.from_options()
    with pytest.raises(ValueError, match="num_symbols: not an option of Gaussian emissions"):
        hp.Gaussian.from_options(num_symbols=4)
    assert hp.Categorical.from_options(num_symbols=4) == hp.Categorical(4)
    assert hp.Categorical.from_options(data=hp.Sequences([[0, 5]])) == hp.Categorical(6)
    with pytest.raises(ValueError, match="num_symbols: expected the number of symbols V"):
        hp.Categorical.from_options()
    with pytest.raises(ValueError, match="dim: categorical emissions have one value per step"):
        hp.Categorical.from_options(num_symbols=3, dim=2)
    with pytest.raises(ValueError, match="data: expected one value per step"):
        hp.Categorical.from_options(data=two_columns, num_symbols=3)
    assert {
        "categorical",
        "gaussian",
        "poisson",
        "gamma",
        "vonmises",
        "mvnormal",
        "negative_binomial",
        "student_t",
        "product",
    } <= set(REGISTRY)
    assert all(REGISTRY[name].family == name for name in REGISTRY)
