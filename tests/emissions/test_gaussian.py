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


def _tiny():
    """Values ``[1, 2, nan, 5]`` and ``[4]``, weights of two states, flattened ``(N * T, K)``."""
    data = hp.Sequences([[1.0, 2.0, np.nan, 5.0], [4.0]])
    weights = torch.tensor(
        [[1.0, 0.0], [0.5, 0.5], [0.2, 0.8], [0.0, 1.0], [0.4, 0.6], [0, 0], [0, 0], [0, 0]],
        dtype=torch.float64,
    )
    return data, weights


def test_weighted_statistics_are_centred_moments_by_hand():
    data, weights = _tiny()
    stats = hp.Gaussian().weighted_statistics(data, weights)
    shift = 3.0  # mean of the observed values 1, 2, 5, 4
    centred = {0: -2.0, 1: -1.0, 3: 2.0, 4: 1.0}  # flattened step -> value - shift
    for k in range(2):
        w = {t: float(weights[t, k]) for t in centred}
        assert float(stats["n"][k, 0]) == pytest.approx(sum(w.values()))
        assert float(stats["s1"][k, 0]) == pytest.approx(sum(w[t] * centred[t] for t in w))
        assert float(stats["s2"][k, 0]) == pytest.approx(sum(w[t] * centred[t] ** 2 for t in w))
    torch.testing.assert_close(stats["shift"], torch.tensor([shift], dtype=torch.float64))


def test_maximize_without_prior_is_the_weighted_mean_and_sd():
    data, weights = _tiny()
    emission = hp.Gaussian()
    stats = emission.weighted_statistics(data, weights)
    values = np.array([1.0, 2.0, 5.0, 4.0])
    new = emission.maximize(stats, {}, None, use_prior=False)
    for k in range(2):
        w = weights[[0, 1, 3, 4], k].numpy()
        mean = (w * values).sum() / w.sum()
        sd = np.sqrt((w * (values - mean) ** 2).sum() / w.sum())
        assert float(new["mu"][k]) == pytest.approx(mean, rel=1e-12)
        assert float(new["sigma"][k]) == pytest.approx(sd, rel=1e-12)
    # A state without weight keeps its previous value (NaN without one).
    stats = emission.weighted_statistics(data, torch.cat([weights[:, :1], 0 * weights], 1))
    previous = {"mu": torch.tensor([0.0, 7.0, 8.0]), "sigma": torch.tensor([1.0, 2.0, 3.0])}
    kept = emission.maximize(stats, {}, previous, use_prior=False)
    torch.testing.assert_close(kept["mu"][1:], torch.tensor([7.0, 8.0], dtype=torch.float64))
    torch.testing.assert_close(kept["sigma"][1:], torch.tensor([2.0, 3.0], dtype=torch.float64))
    assert bool(emission.maximize(stats, {}, None, use_prior=False)["mu"][1:].isnan().all())


def test_maximize_with_prior_is_a_fixed_point_of_both_conditional_updates():
    data, weights = _tiny()
    emission = hp.Gaussian()
    prior = hp.Prior(mu_loc=1.0, mu_scale=0.8, variance_shape=2.5, variance_scale=1.3)
    hyper = emission.prior_hyperparameters(prior, 3, torch.float64)
    stats = emission.weighted_statistics(data, torch.cat([weights, 0 * weights[:, :1]], 1))
    start = {"mu": torch.zeros(3), "sigma": torch.ones(3)}
    for previous in (start, None):
        new = emission.maximize(stats, hyper, previous, use_prior=True)
        values = np.array([1.0, 2.0, 5.0, 4.0])
        for k in range(2):
            w = weights[[0, 1, 3, 4], k].numpy()
            mu, var = float(new["mu"][k]), float(new["sigma"][k]) ** 2
            tau2 = 0.8**2
            best_mu = (tau2 * (w * values).sum() + var * 1.0) / (tau2 * w.sum() + var)
            best_var = ((w * (values - mu) ** 2).sum() + 2 * 1.3) / (w.sum() + 2 * 2.5 + 1)
            assert mu == pytest.approx(best_mu, rel=1e-10)
            assert var == pytest.approx(best_var, rel=1e-10)
        # No weight at all: the prior's own mode of (mu, sigma site).
        assert float(new["mu"][2]) == pytest.approx(1.0, rel=1e-12)
        assert float(new["sigma"][2]) ** 2 == pytest.approx(2 * 1.3 / (2 * 2.5 + 1), rel=1e-12)


def test_pooled_params_are_the_pooled_mean_and_sd():
    data = _data(2)  # coordinate 0: 0.5, 1.0, 3.0, -2.0; coordinate 1: -1.0, 2.0, 1.5, 0.1
    pooled = hp.Gaussian(dim=2).pooled_params(data)
    first, second = np.array([0.5, 1.0, 3.0, -2.0]), np.array([-1.0, 2.0, 1.5, 0.1])
    expected_mu = [[first.mean(), second.mean()]]
    expected_sigma = [[first.std(), second.std()]]  # population sd (ML)
    np.testing.assert_allclose(pooled["mu"].numpy(), expected_mu, rtol=1e-12)
    np.testing.assert_allclose(pooled["sigma"].numpy(), expected_sigma, rtol=1e-12)
    constant = hp.Gaussian().pooled_params(hp.Sequences([[2.0, 2.0, 2.0]]))
    torch.testing.assert_close(constant["sigma"], torch.tensor([1e-12], dtype=torch.float64))


def test_start_from_data_places_means_inside_the_data():
    values = np.concatenate([np.linspace(-3.0, 3.0, 41), [np.nan]])
    data = hp.Sequences([values], dim=1)
    generator = torch.Generator().manual_seed(0)
    start = hp.Gaussian().start_from_data(data, 4, generator, torch.float64)
    spread = np.nanstd(values)
    torch.testing.assert_close(start["sigma"], torch.full((4,), spread / 4, dtype=torch.float64))
    # Quantiles of the data, jittered by at most a few tenths of the scale.
    assert bool(((start["mu"] > -3.0 - spread) & (start["mu"] < 3.0 + spread)).all())
    flat = hp.Gaussian(dim=2).start_from_data(
        hp.Sequences([np.ones((5, 2))], dim=2), 3, generator, torch.float64
    )
    torch.testing.assert_close(flat["sigma"], torch.full((3, 2), 1e-3, dtype=torch.float64))


def test_location_is_the_first_mean():
    mu = torch.tensor([[1.0, 9.0], [-2.0, 8.0]])
    params = {"mu": mu, "sigma": torch.ones(2, 2)}
    torch.testing.assert_close(hp.Gaussian(dim=2).location(params), torch.tensor([1.0, -2.0]))
    univariate = {"mu": mu[:, 0], "sigma": torch.ones(2)}
    torch.testing.assert_close(hp.Gaussian().location(univariate), torch.tensor([1.0, -2.0]))
