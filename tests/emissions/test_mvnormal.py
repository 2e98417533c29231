"""Full-covariance normal emissions: density, sampler, statistics, M-step, collapse distance."""

from __future__ import annotations

import numpy as np
import pyro.distributions as dist
import pytest
import torch
from scipy import optimize, stats
from torch.distributions import biject_to

import hmm_pyro as hp
from hmm_pyro.emissions import from_config

DTYPE = torch.float64


def _params():
    return {
        "mu": torch.tensor([[0.0, 1.0, -1.0], [2.0, 0.5, 0.0], [-1.0, -1.0, 3.0]], dtype=DTYPE),
        "sigma": torch.tensor([[1.0, 0.5, 2.0], [0.7, 1.3, 0.4], [1.1, 0.9, 1.0]], dtype=DTYPE),
        "corr": torch.tensor(
            [
                [[1.0, 0.6, -0.2], [0.6, 1.0, 0.1], [-0.2, 0.1, 1.0]],
                [[1.0, -0.5, 0.3], [-0.5, 1.0, 0.0], [0.3, 0.0, 1.0]],
                [[1.0, 0.0, 0.0], [0.0, 1.0, 0.9], [0.0, 0.9, 1.0]],
            ],
            dtype=DTYPE,
        ),
    }


def _covariances(params):
    sigma = params["sigma"]
    return (sigma[..., :, None] * params["corr"] * sigma[..., None, :]).numpy()


def test_log_likelihood_table_matches_scipy():
    emission, params = hp.MultivariateNormal(3), _params()
    data = hp.Sequences(
        [
            np.array([[0.1, 1.2, -0.5], [np.nan] * 3, [2.0, 0.0, 0.3]]),
            np.array([[-1.0, -2.0, 2.5]]),
        ],
        dim=3,
    )
    table = emission.log_likelihood_table(params, data).numpy()
    cov = _covariances(params)
    values = data.values.numpy()
    for n, t, k in np.ndindex(*table.shape):
        expected = 0.0
        if not np.isnan(values[n, t]).any():
            expected = stats.multivariate_normal.logpdf(
                values[n, t], params["mu"][k].numpy(), cov[k]
            )
        assert abs(table[n, t, k] - expected) < 1e-10
    states = torch.arange(3)[:, None]
    scored = emission.conditional(params, states, data.observed[:, 0]).log_prob(
        torch.where(data.observed[:, 0], data.values[:, 0], 0.0)
    )
    np.testing.assert_allclose(scored.numpy(), table[:, 0].T, rtol=0, atol=1e-10)


def test_sample_moments():
    emission, params = hp.MultivariateNormal(3), _params()
    draws = emission.sample(params, torch.full((100_000,), 1), torch.Generator().manual_seed(0))
    assert draws.shape == (100_000, 3)
    cov = _covariances(params)[1]
    np.testing.assert_allclose(
        draws.mean(0).numpy(), params["mu"][1].numpy(), atol=5 * np.sqrt(cov.diagonal().max() / 1e5)
    )
    # entries of the sample covariance: SE at most sqrt(2) * max variance / sqrt(n)
    np.testing.assert_allclose(
        np.cov(draws.numpy().T), cov, atol=5 * np.sqrt(2) * cov.diagonal().max() / np.sqrt(1e5)
    )


def test_validation_and_config():
    emission = hp.MultivariateNormal(2)
    with pytest.raises(ValueError, match=r"sequence 0, step 1 is partly missing"):
        emission.validate_data(hp.Sequences([np.array([[0.0, 1.0], [np.nan, 2.0]])], dim=2))
    emission.validate_data(hp.Sequences([np.array([[0.0, 1.0], [np.nan, np.nan]])], dim=2))
    good = {
        "mu": torch.zeros(2, 2),
        "sigma": torch.ones(2, 2),
        "corr": torch.eye(2).expand(2, 2, 2),
    }
    emission.validate_params(good, 2)
    for corr, match in [
        (torch.tensor([[1.0, 0.5], [0.4, 1.0]]), "symmetric"),
        (torch.tensor([[1.1, 0.5], [0.5, 1.0]]), "unit diagonal"),
        (torch.tensor([[1.0, 1.0], [1.0, 1.0]]), "positive definite"),
    ]:
        with pytest.raises(ValueError, match=rf"params\['corr'\].*{match}"):
            emission.validate_params({**good, "corr": corr.expand(2, 2, 2)}, 2)
    assert from_config(emission.to_config()) == emission
    assert hp.MultivariateNormal.from_options(
        data=hp.Sequences(np.zeros((3, 4)), dim=4)
    ) == hp.MultivariateNormal(4)
    with pytest.raises(
        ValueError, match=r"^dim: mvnormal emissions need observations of dimension >= 2"
    ):
        hp.MultivariateNormal.from_options(data=hp.Sequences([[1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"^num_symbols: not an option"):
        hp.MultivariateNormal.from_options(num_symbols=3, dim=2)
    assert emission.num_free_params(3) == 3 * (4 + 1)
    assert emission.entry_label("corr", 1, 1) == "corr[1][0,1]"


def test_bhattacharyya_matches_numerical_integration():
    """Against the integral of ``sqrt(f_i f_j)`` on a 1201 x 1201 grid over [-9, 9]^2."""
    emission = hp.MultivariateNormal(2)
    params = {
        name: value[:, :2] if name != "corr" else value[:, :2, :2]
        for name, value in _params().items()
    }
    bc = emission.bhattacharyya(params).numpy()
    cov = _covariances(params)
    axis = np.linspace(-9, 9, 1201)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1)
    step = axis[1] - axis[0]
    density = [
        stats.multivariate_normal(params["mu"][k].numpy(), cov[k]).pdf(grid) for k in range(3)
    ]
    for i in range(3):
        for j in range(i + 1):
            value = np.sqrt(density[i] * density[j]).sum() * step**2
            assert abs(bc[i, j] - value) < 1e-8, (i, j)
    np.testing.assert_allclose(bc, bc.T, atol=1e-14)


def test_weighted_statistics_by_hand():
    values = np.array([[1.0, 2.0], [np.nan, np.nan], [3.0, -1.0]])
    data = hp.Sequences([values], dim=2)
    weights = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.25, 0.75]], dtype=DTYPE)
    result = hp.MultivariateNormal(2).weighted_statistics(data, weights)
    shift = torch.tensor([2.0, 0.5], dtype=DTYPE)
    torch.testing.assert_close(result["shift"], shift)
    torch.testing.assert_close(result["n"], torch.tensor([1.25, 0.75], dtype=DTYPE))
    centred = torch.tensor([[-1.0, 1.5], [1.0, -1.5]], dtype=DTYPE)
    w = torch.tensor([[1.0, 0.25], [0.0, 0.75]], dtype=DTYPE)
    torch.testing.assert_close(result["s1"], w @ centred)
    outer = torch.einsum("ti,tj->tij", centred, centred)
    torch.testing.assert_close(result["s2"], torch.einsum("kt,tij->kij", w, outer))


@pytest.fixture(scope="module")
def weighted_problem():
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.6, -0.3], [0.6, 2.0, 0.2], [-0.3, 0.2, 0.5]])
    values = rng.multivariate_normal([1.0, -2.0, 0.5], cov, size=120)
    weights = torch.as_tensor(rng.dirichlet(np.ones(2), size=120))
    return values, weights


def test_maximum_likelihood_is_the_weighted_mean_and_covariance(weighted_problem):
    values, weights = weighted_problem
    emission = hp.MultivariateNormal(3)
    statistics = emission.weighted_statistics(hp.Sequences([values], dim=3), weights)
    estimate = emission.maximize(statistics, {}, None, use_prior=False)
    for k in range(2):
        w = weights[:, k].numpy()
        mean = (w[:, None] * values).sum(0) / w.sum()
        cov = np.cov(values.T, aweights=w, bias=True)
        sigma = np.sqrt(cov.diagonal())
        np.testing.assert_allclose(estimate["mu"][k].numpy(), mean, atol=1e-12)
        np.testing.assert_allclose(estimate["sigma"][k].numpy(), sigma, atol=1e-12)
        np.testing.assert_allclose(
            estimate["corr"][k].numpy(), cov / np.outer(sigma, sigma), atol=1e-12
        )


def test_map_maximize_equals_a_direct_optimiser(weighted_problem):
    """The BFGS MAP M-step against scipy's BFGS on scipy and Pyro densities (1e-5), one state."""
    values, weights = weighted_problem
    weights = weights[:, :1]
    emission = hp.MultivariateNormal(3)
    prior = hp.Prior(lkj_concentration=2.0, mu_scale=2.0, variance_shape=2.0, variance_scale=0.7)
    hyper = emission.prior_hyperparameters(prior, 1, DTYPE)
    statistics = emission.weighted_statistics(hp.Sequences([values], dim=3), weights)
    estimate = emission.maximize(statistics, hyper, None, use_prior=True)
    transform = biject_to(dist.constraints.corr_matrix)
    lkj = dist.LKJ(3, torch.tensor(2.0, dtype=DTYPE))

    def unpack(theta):
        return theta[:3], np.exp(theta[3:6]), transform(torch.as_tensor(theta[6:])).numpy()

    def negative(theta):
        mu, sigma, corr = unpack(theta)
        cov = sigma[:, None] * corr * sigma[None]
        total = (weights[:, 0].numpy() * stats.multivariate_normal.logpdf(values, mu, cov)).sum()
        total += stats.norm.logpdf(mu, 0.0, 2.0).sum()
        total += (stats.invgamma.logpdf(sigma**2, 2.0, scale=0.7) + np.log(2 * sigma)).sum()
        return -(total + lkj.log_prob(torch.as_tensor(corr)).item())

    found = optimize.minimize(negative, np.zeros(9), method="BFGS", options={"gtol": 1e-8})
    mu, sigma, corr = unpack(found.x)
    np.testing.assert_allclose(estimate["mu"][0].numpy(), mu, atol=1e-5)
    np.testing.assert_allclose(estimate["sigma"][0].numpy(), sigma, atol=1e-5)
    np.testing.assert_allclose(estimate["corr"][0].numpy(), corr, atol=1e-5)


def test_maximize_edge_cases():
    emission = hp.MultivariateNormal(2)
    hyper = emission.prior_hyperparameters(hp.Prior(), 3, DTYPE)
    statistics = {  # no weight; one point (singular covariance); a regular state
        "n": torch.tensor([0.0, 1.0, 3.0], dtype=DTYPE),
        "s1": torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]], dtype=DTYPE),
        "s2": torch.tensor(
            [[[0.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]], [[2.0, 0.5], [0.5, 1.0]]],
            dtype=DTYPE,
        ),
        "shift": torch.zeros(2, dtype=DTYPE),
    }
    previous = {
        "mu": torch.ones(3, 2),
        "sigma": torch.ones(3, 2),
        "corr": torch.eye(2).expand(3, 2, 2),
    }
    ml = emission.maximize(statistics, hyper, previous, use_prior=False)
    assert torch.equal(ml["mu"][0], torch.ones(2, dtype=DTYPE))  # kept
    assert ml["corr"][1].isnan().all()  # no maximiser
    torch.testing.assert_close(ml["sigma"][2], torch.tensor([2.0, 1.0], dtype=DTYPE).div(3).sqrt())
    with_prior = emission.maximize(statistics, hyper, None, use_prior=True)
    assert all(torch.isfinite(value).all() for value in with_prior.values())
    emission.validate_params(with_prior, 3)
