"""Gamma emissions: density, sampler, statistics, M-step and collapse distance vs references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, stats

import hmm_pyro as hp
from hmm_pyro.emissions import from_config
from hmm_pyro.emissions.gamma import MAX_CONCENTRATION, standard_gamma

DTYPE = torch.float64


def _params(dim):
    alpha = torch.tensor([[0.7, 2.0], [3.5, 1.2], [9.0, 0.4]], dtype=DTYPE)
    beta = torch.tensor([[1.3, 0.5], [2.0, 4.0], [0.8, 1.1]], dtype=DTYPE)
    if dim is None:
        alpha, beta = alpha[:, 0], beta[:, 0]
    return {"concentration": alpha, "rate": beta}


def _data(dim):
    if dim is None:
        return hp.Sequences([[0.3, 2.5, np.nan, 7.0], [1e-3, 0.9]])
    return hp.Sequences(
        [np.array([[0.3, 1.0], [np.nan, 2.5], [4.0, 0.02]]), np.array([[1.5, np.nan]])], dim=2
    )


@pytest.mark.parametrize("dim", [None, 2])
def test_log_likelihood_table_matches_scipy(dim):
    emission, params, data = hp.Gamma(dim=dim), _params(dim), _data(dim)
    table = emission.log_likelihood_table(params, data).numpy()
    alpha = params["concentration"].reshape(3, -1).numpy()
    beta = params["rate"].reshape(3, -1).numpy()
    values = data.values.numpy()
    expected = np.zeros_like(table)
    for n, t, k in np.ndindex(*table.shape):
        for d in range(values.shape[-1]):
            if not np.isnan(values[n, t, d]):
                expected[n, t, k] += stats.gamma.logpdf(
                    values[n, t, d], alpha[k, d], scale=1 / beta[k, d]
                )
    np.testing.assert_allclose(table, expected, rtol=0, atol=1e-10)
    states = torch.arange(3)[:, None]
    step = data.values[:, 0]
    scored = emission.conditional(params, states, data.observed[:, 0]).log_prob(
        emission.observation(torch.where(data.observed[:, 0], step, 1.0))
    )
    np.testing.assert_allclose(scored.numpy(), table[:, 0].T, rtol=0, atol=1e-10)


@pytest.mark.parametrize("shape", [0.3, 1.0, 4.5])
def test_standard_gamma_moments(shape):
    draws = standard_gamma(
        torch.full((200_000,), shape, dtype=DTYPE), torch.Generator().manual_seed(3)
    )
    # SE of the mean sqrt(a / n); of the variance sqrt((mu4 - a**2) / n), mu4 = 3 a**2 + 6 a
    n = draws.numel()
    assert abs(draws.mean().item() - shape) < 5 * np.sqrt(shape / n)
    assert abs(draws.var().item() - shape) < 5 * np.sqrt((2 * shape**2 + 6 * shape) / n)
    # and the distribution itself: Kolmogorov-Smirnov against scipy
    assert stats.kstest(draws[:20_000].numpy(), stats.gamma(shape).cdf).pvalue > 1e-3


def test_sample_is_reproducible_and_scaled():
    emission, params = hp.Gamma(dim=2), _params(2)
    states = torch.full((50_000,), 1)
    first = emission.sample(params, states, torch.Generator().manual_seed(1))
    again = emission.sample(params, states, torch.Generator().manual_seed(1))
    assert torch.equal(first, again) and first.shape == (50_000, 2) and (first > 0).all()
    mean = (params["concentration"][1] / params["rate"][1]).numpy()
    np.testing.assert_allclose(first.mean(0).numpy(), mean, rtol=0.03)


def test_validation_and_config():
    with pytest.raises(ValueError, match=r"data: expected values > 0"):
        hp.Gamma().validate_data(hp.Sequences([[1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"data: expected observations of dimension 1"):
        hp.Gamma().validate_data(hp.Sequences(np.ones((3, 2)), dim=2))
    with pytest.raises(ValueError, match=r"params\['rate'\]: expected values > 0"):
        hp.Gamma().validate_params(
            {"concentration": torch.ones(2), "rate": torch.tensor([1.0, -1])}, 2
        )
    assert from_config(hp.Gamma(dim=3).to_config()) == hp.Gamma(dim=3)
    assert hp.Gamma.from_options(dim=2) == hp.Gamma(dim=2)
    assert hp.Gamma.from_options(data=hp.Sequences([[1.0]])) == hp.Gamma()
    assert hp.Gamma(dim=2).num_free_params(3) == 12


def test_bhattacharyya_matches_numerical_integration():
    params = _params(None)
    bc = hp.Gamma().bhattacharyya(params).numpy()
    alpha, beta = params["concentration"].numpy(), params["rate"].numpy()
    for i in range(3):
        for j in range(3):

            def root(y, i=i, j=j):
                return np.sqrt(
                    stats.gamma.pdf(y, alpha[i], scale=1 / beta[i])
                    * stats.gamma.pdf(y, alpha[j], scale=1 / beta[j])
                )

            value = (
                integrate.quad(root, 0, 1, limit=200)[0]
                + integrate.quad(root, 1, np.inf, limit=200)[0]
            )
            assert abs(bc[i, j] - value) < 1e-8, (i, j)
    assert np.allclose(np.diag(bc), 1.0, atol=1e-12)


def test_weighted_statistics_by_hand():
    data = hp.Sequences([[2.0, np.nan, 0.5]])
    weights = torch.tensor([[1.0, 0.0], [0.3, 0.7], [0.25, 0.75]], dtype=DTYPE)
    stats_ = hp.Gamma().weighted_statistics(data, weights)
    torch.testing.assert_close(stats_["n"], torch.tensor([[1.25], [0.75]], dtype=DTYPE))
    torch.testing.assert_close(stats_["s1"], torch.tensor([[2.125], [0.375]], dtype=DTYPE))
    logs = torch.tensor([[np.log(2.0) + 0.25 * np.log(0.5)], [0.75 * np.log(0.5)]], dtype=DTYPE)
    torch.testing.assert_close(stats_["slog"], logs)


@pytest.fixture(scope="module")
def weighted_problem():
    rng = np.random.default_rng(0)
    values = rng.gamma(2.5, 1 / 1.7, size=(120, 2))
    weights = torch.as_tensor(rng.dirichlet(np.ones(2), size=120))
    return values, weights


@pytest.mark.parametrize("use_prior", [False, True])
def test_maximize_equals_a_direct_optimiser(weighted_problem, use_prior):
    """The profile-Newton M-step against Nelder-Mead on ``sum w log f + log prior`` (1e-6)."""
    values, weights = weighted_problem
    emission = hp.Gamma(dim=2)
    prior = hp.Prior(
        concentration_shape=[[2.0, 1.5], [1.2, 3.0]],
        concentration_rate=0.5,
        rate_shape=1.5,
        rate_rate=0.3,
    )
    hyper = emission.prior_hyperparameters(prior, 2, DTYPE)
    statistics = emission.weighted_statistics(hp.Sequences([values], dim=2), weights)
    estimate = emission.maximize(statistics, hyper, None, use_prior)
    for k, d in np.ndindex(2, 2):

        def negative(theta, k=k, d=d):
            a, b = np.exp(theta)
            total = (weights[:, k].numpy() * stats.gamma.logpdf(values[:, d], a, scale=1 / b)).sum()
            if use_prior:
                total += stats.gamma.logpdf(a, hyper["concentration_shape"][k, d].item(), scale=2.0)
                total += stats.gamma.logpdf(b, 1.5, scale=1 / 0.3)
            return -total

        found = optimize.minimize(
            negative,
            [0.0, 0.0],
            method="Nelder-Mead",
            options={"xatol": 1e-11, "fatol": 1e-13, "maxiter": 5000},
        )
        np.testing.assert_allclose(
            [estimate["concentration"][k, d].item(), estimate["rate"][k, d].item()],
            np.exp(found.x),
            rtol=1e-6,
        )


def test_maximize_edge_cases():
    emission = hp.Gamma()
    hyper = emission.prior_hyperparameters(
        hp.Prior(concentration_shape=3.0, rate_shape=2.0), 2, DTYPE
    )
    # state 0 has no weight; state 1 sees equal values only
    statistics = {
        "n": torch.tensor([[0.0], [4.0]], dtype=DTYPE),
        "s1": torch.tensor([[0.0], [8.0]], dtype=DTYPE),
        "slog": torch.tensor([[0.0], [4.0 * np.log(2.0)]], dtype=DTYPE),
    }
    previous = {"concentration": torch.tensor([1.5, 2.5]), "rate": torch.tensor([0.5, 0.7])}
    ml = emission.maximize(statistics, hyper, previous, use_prior=False)
    assert ml["concentration"][0] == 1.5 and ml["rate"][0] == 0.5  # kept
    assert ml["concentration"][1] == MAX_CONCENTRATION  # equal values: no finite ML shape
    assert torch.isclose(ml["rate"][1], torch.tensor(MAX_CONCENTRATION / 2.0, dtype=DTYPE))
    assert emission.maximize(statistics, hyper, None, use_prior=False)["rate"][0].isnan()
    # with the prior, an empty state sits at the prior modes (a - 1) / b
    mode = emission.maximize(statistics, hyper, None, use_prior=True)
    assert torch.isclose(mode["concentration"][0], torch.tensor(2.0 / 0.1, dtype=DTYPE))
    assert torch.isclose(mode["rate"][0], torch.tensor(1.0 / 0.1, dtype=DTYPE))


def test_pooled_params_are_the_ml_fit():
    values = np.random.default_rng(1).gamma(3.0, 0.5, size=400)
    pooled = hp.Gamma().pooled_params(hp.Sequences([values]))
    shape, _, scale = stats.gamma.fit(values, floc=0)
    np.testing.assert_allclose(pooled["concentration"].item(), shape, rtol=1e-4)
    np.testing.assert_allclose(pooled["rate"].item(), 1 / scale, rtol=1e-4)
