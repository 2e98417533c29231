"""Gaussian emissions (univariate and diagonal multivariate)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate, stats

import hmm_pyro as hp
from hmm_pyro.emissions import from_config

NUM_DRAWS = 200_000


def _params(rng, dim, batch=()):
    shape = (*batch, 3) if dim is None else (*batch, 3, dim)
    return {
        "mu": torch.as_tensor(rng.normal(0, 3, size=shape)),
        "sigma": torch.as_tensor(rng.uniform(0.3, 2.5, size=shape)),
    }


def _data(dim):
    if dim is None:
        return hp.Sequences([[0.5, -1.0, np.nan, 2.5], [3.0, 0.1]])
    return hp.Sequences(
        [
            np.array([[0.5, -1.0], [np.nan, 2.0], [np.nan, np.nan], [1.0, 1.5]]),
            np.array([[3.0, 0.1], [-2.0, np.nan]]),
        ],
        dim=2,
    )


def _scipy_table(mu: np.ndarray, sigma: np.ndarray, data: hp.Sequences) -> np.ndarray:
    values = data.values.numpy()
    mu, sigma = mu.reshape(mu.shape[0], -1), sigma.reshape(sigma.shape[0], -1)
    num, steps, dim = values.shape
    table = np.zeros((num, steps, mu.shape[0]))
    for n in range(num):
        for t in range(steps):
            for k in range(mu.shape[0]):
                for d in range(dim):
                    if not np.isnan(values[n, t, d]):
                        table[n, t, k] += stats.norm.logpdf(values[n, t, d], mu[k, d], sigma[k, d])
    return table


@pytest.mark.parametrize("dim", [None, 2])
def test_log_likelihood_table_matches_scipy(rng, dim):
    emission = hp.Gaussian(dim=dim)
    params = _params(rng, dim)
    data = _data(dim)
    table = emission.log_likelihood_table(params, data)
    assert table.shape == (2, 4, 3)
    expected = _scipy_table(params["mu"].numpy(), params["sigma"].numpy(), data)
    np.testing.assert_allclose(table.numpy(), expected, rtol=0, atol=1e-12)
    # padding and fully missing steps contribute exactly zero
    assert torch.all(table[1, 2:] == 0)
    if dim == 2:
        assert torch.all(table[0, 2] == 0)


@pytest.mark.parametrize("dim", [None, 2])
def test_log_likelihood_table_with_draw_dimensions(rng, dim):
    emission = hp.Gaussian(dim=dim)
    params = _params(rng, dim, batch=(2,))
    data = _data(dim)
    table = emission.log_likelihood_table(params, data)
    assert table.shape == (2, 2, 4, 3)
    for s in range(2):
        expected = _scipy_table(params["mu"][s].numpy(), params["sigma"][s].numpy(), data)
        np.testing.assert_allclose(table[s].numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dim", [None, 2])
def test_conditional_scores_like_the_table(rng, dim):
    emission = hp.Gaussian(dim=dim)
    params = _params(rng, dim)
    width = emission.dim
    states = torch.arange(3)[:, None]
    values = torch.tensor([[0.7] * width, [-1.2] * width], dtype=torch.float64)
    observed = torch.ones(2, width, dtype=torch.bool)
    observed[1, 0] = False
    scored = emission.conditional(params, states, observed).log_prob(emission.observation(values))
    mu = params["mu"].reshape(3, width).numpy()
    sigma = params["sigma"].reshape(3, width).numpy()
    expected = np.zeros((3, 2))
    for k in range(3):
        for n in range(2):
            for d in range(width):
                if observed[n, d]:
                    expected[k, n] += stats.norm.logpdf(values[n, d].item(), mu[k, d], sigma[k, d])
    np.testing.assert_allclose(scored.numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dim", [None, 2])
def test_sample_moments(rng, dim):
    emission = hp.Gaussian(dim=dim)
    params = _params(rng, dim)
    state = 1
    draws = emission.sample(
        params, torch.full((NUM_DRAWS,), state), torch.Generator().manual_seed(4)
    )
    assert draws.shape == (NUM_DRAWS, emission.dim) and draws.dtype == torch.float64
    mu = params["mu"][state].reshape(-1).numpy()
    sigma = params["sigma"][state].reshape(-1).numpy()
    mean, var = draws.mean(0).numpy(), draws.var(0).numpy()
    # standard errors: sigma / sqrt(n) for the mean, sigma**2 sqrt(2 / (n - 1)) for the variance
    assert np.all(np.abs(mean - mu) < 5 * sigma / np.sqrt(NUM_DRAWS)), (mean, mu)
    assert np.all(np.abs(var - sigma**2) < 5 * sigma**2 * np.sqrt(2 / (NUM_DRAWS - 1)))
    if dim == 2:  # independent coordinates (diagonal covariance)
        corr = np.corrcoef(draws.numpy().T)[0, 1]
        assert abs(corr) < 5 / np.sqrt(NUM_DRAWS)


def test_validate_data_dimension():
    with pytest.raises(ValueError, match="data: expected observations of dimension 1"):
        hp.Gaussian().validate_data(hp.Sequences(np.zeros((4, 2)), dim=2))
    with pytest.raises(ValueError, match="data: expected observations of dimension 3"):
        hp.Gaussian(dim=3).validate_data(hp.Sequences(np.zeros((4, 2)), dim=2))
    hp.Gaussian(dim=2).validate_data(hp.Sequences(np.zeros((4, 2)), dim=2))
    hp.Gaussian().validate_data(hp.Sequences([[-1e6, 0.5, 3.25]]))


@pytest.mark.parametrize("dim", [None, 1, 3])
def test_config_round_trip(dim):
    emission = hp.Gaussian(dim=dim)
    config = emission.to_config()
    assert config == {"family": "gaussian", "dim": dim}
    rebuilt = from_config(config)
    assert isinstance(rebuilt, hp.Gaussian) and rebuilt == emission
    assert rebuilt.param_shapes(2) == emission.param_shapes(2)
    assert hash(rebuilt) == hash(emission)


def test_description():
    assert hp.Gaussian().param_shapes(3) == {"mu": (3,), "sigma": (3,)}
    assert hp.Gaussian(dim=2).param_shapes(3) == {"mu": (3, 2), "sigma": (3, 2)}
    assert hp.Gaussian().dim == 1 and hp.Gaussian(dim=4).dim == 4
    assert hp.Gaussian(dim=2).param_dims() == {"mu": ("state", "dim"), "sigma": ("state", "dim")}
    # univariate and one-column multivariate are different models (shape (K,) vs (K, 1))
    assert hp.Gaussian() != hp.Gaussian(dim=1)


@pytest.mark.parametrize(("dim", "error"), [(0, ValueError), (-1, ValueError), (2.0, TypeError)])
def test_bad_dim(dim, error):
    with pytest.raises(error, match="dim"):
        hp.Gaussian(dim=dim)


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("sigma", [1.0, -0.5, 1.0], r"params\['sigma'\].*> 0"),
        ("sigma", [1.0, 0.0, 1.0], r"params\['sigma'\].*> 0"),
        ("sigma", [1.0, float("inf"), 1.0], r"params\['sigma'\].*finite"),
        ("mu", [0.0, float("nan"), 1.0], r"params\['mu'\].*finite"),
        ("mu", [0.0, 1.0], r"params\['mu'\].*shape"),
    ],
)
def test_validate_params(name, value, match):
    params = {
        "mu": torch.zeros(3, dtype=torch.float64),
        "sigma": torch.ones(3, dtype=torch.float64),
    }
    params[name] = torch.tensor(value, dtype=torch.float64)
    with pytest.raises(ValueError, match=match):
        hp.Gaussian().validate_params(params, 3)


def test_bhattacharyya_matches_numerical_integration(rng):
    params = _params(rng, 2)
    bc = hp.Gaussian(dim=2).bhattacharyya(params).numpy()
    mu, sigma = params["mu"].numpy(), params["sigma"].numpy()
    for i in range(3):
        for j in range(3):
            expected = 1.0
            for d in range(2):
                integral, _ = integrate.quad(
                    lambda x, i=i, j=j, d=d: np.sqrt(
                        stats.norm.pdf(x, mu[i, d], sigma[i, d])
                        * stats.norm.pdf(x, mu[j, d], sigma[j, d])
                    ),
                    -60,
                    60,
                    points=[mu[i, d], mu[j, d]],
                    epsabs=1e-13,
                    limit=200,
                )
                expected *= integral
            assert abs(bc[i, j] - expected) < 1e-8, (i, j)
