"""Von Mises emissions: density, sampler, statistics, M-step and collapse distance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, special, stats

import hmm_pyro as hp
from hmm_pyro.emissions import from_config
from hmm_pyro.emissions.vonmises import MIN_KAPPA, CircularVonMises, log_i0, mean_resultant

DTYPE = torch.float64


def _params(dim):
    mu = torch.tensor([[0.3, -2.9], [3.0, 1.0], [-1.2, 0.0]], dtype=DTYPE)
    kappa = torch.tensor([[0.4, 2.0], [8.0, 30.0], [1.5, 700.0]], dtype=DTYPE)
    if dim is None:
        mu, kappa = mu[:, 0], kappa[:, 0]
    return {"mu": mu, "kappa": kappa}


def _data(dim):
    if dim is None:
        return hp.Sequences([[0.1, 3.1, np.nan, -3.0], [6.0, -0.5]])
    return hp.Sequences(
        [np.array([[0.1, 1.0], [np.nan, 2.5], [-3.1, 0.02]]), np.array([[1.5, np.nan]])], dim=2
    )


@pytest.mark.parametrize("dim", [None, 2])
def test_log_likelihood_table_matches_scipy(dim):
    emission, params, data = hp.VonMises(dim=dim), _params(dim), _data(dim)
    table = emission.log_likelihood_table(params, data).numpy()
    mu = params["mu"].reshape(3, -1).numpy()
    kappa = params["kappa"].reshape(3, -1).numpy()
    values = data.values.numpy()
    expected = np.zeros_like(table)
    for n, t, k in np.ndindex(*table.shape):
        for d in range(values.shape[-1]):
            if not np.isnan(values[n, t, d]):
                expected[n, t, k] += stats.vonmises.logpdf(
                    values[n, t, d], kappa[k, d], loc=mu[k, d]
                )
    np.testing.assert_allclose(table, expected, rtol=0, atol=1e-10)
    states = torch.arange(3)[:, None]
    scored = emission.conditional(params, states, data.observed[:, 0]).log_prob(
        torch.where(data.observed[:, 0], data.values[:, 0], 0.0)
    )
    np.testing.assert_allclose(scored.numpy(), table[:, 0].T, rtol=0, atol=1e-10)


def test_circular_prior_is_exact_and_allows_concentration_zero():
    loc = torch.tensor([0.5, -1.0, 2.0], dtype=DTYPE)
    kappa = torch.tensor([0.0, 3.0, 250.0], dtype=DTYPE)
    value = torch.tensor([1.0, -4.0, 2.1], dtype=DTYPE)
    expected = [stats.vonmises.logpdf(1.0, 1e-300, loc=0.5)]  # uniform: -log(2 pi)
    expected += [
        stats.vonmises.logpdf(v, k, loc=m)
        for v, k, m in zip([-4.0, 2.1], [3.0, 250.0], [-1.0, 2.0], strict=True)
    ]
    np.testing.assert_allclose(
        CircularVonMises(loc, kappa).log_prob(value).numpy(), expected, atol=1e-10
    )
    torch.manual_seed(0)
    draws = CircularVonMises(loc, kappa).sample((4000,))
    assert ((draws >= -math.pi) & (draws <= math.pi)).all()
    assert stats.kstest(draws[:, 0].numpy(), stats.uniform(-math.pi, 2 * math.pi).cdf).pvalue > 1e-3


def test_bessel_helpers_match_scipy():
    kappa = torch.tensor([1e-8, 0.5, 3.0, 40.0, 1e4], dtype=DTYPE)
    k = kappa.numpy()
    np.testing.assert_allclose(
        log_i0(kappa).numpy(), np.log(special.i0e(k)) + k, rtol=1e-13, atol=1e-15
    )
    np.testing.assert_allclose(
        mean_resultant(kappa).numpy(), special.i1e(k) / special.i0e(k), rtol=1e-12
    )


def test_sample_matches_scipy_distribution():
    emission = hp.VonMises(dim=2)
    params = _params(2)
    draws = emission.sample(params, torch.full((20_000,), 1), torch.Generator().manual_seed(2))
    assert draws.shape == (20_000, 2) and ((draws >= -math.pi) & (draws < math.pi)).all()
    again = emission.sample(params, torch.full((20_000,), 1), torch.Generator().manual_seed(2))
    assert torch.equal(draws, again)
    for d in range(2):
        loc = params["mu"][1, d].item()
        law = stats.vonmises(params["kappa"][1, d].item(), loc=loc)  # on [loc - pi, loc + pi)
        shifted = loc + np.remainder(draws[:, d].numpy() - loc + math.pi, 2 * math.pi) - math.pi
        assert stats.kstest(shifted, law.cdf).pvalue > 1e-3


def test_validation_and_config():
    with pytest.raises(ValueError, match=r"data: expected angles in radians"):
        hp.VonMises().validate_data(hp.Sequences([[0.0, 90.0]]))
    hp.VonMises().validate_data(hp.Sequences([[-math.pi, 2 * math.pi, 0.0]]))
    with pytest.raises(ValueError, match=r"params\['kappa'\]: expected concentrations > 0"):
        hp.VonMises().validate_params({"mu": torch.zeros(2), "kappa": torch.tensor([1.0, 0.0])}, 2)
    hp.VonMises().validate_params({"mu": torch.tensor([10.0, -7.0]), "kappa": torch.ones(2)}, 2)
    assert from_config(hp.VonMises(dim=2).to_config()) == hp.VonMises(dim=2)
    assert hp.VonMises.from_options(dim=3) == hp.VonMises(dim=3)
    assert hp.VonMises().location(
        {"mu": torch.tensor([3 * math.pi / 2]), "kappa": torch.ones(1)}
    ).item() == pytest.approx(-math.pi / 2)


def test_bhattacharyya_matches_numerical_integration():
    params = _params(None)
    bc = hp.VonMises().bhattacharyya(params).numpy()
    mu, kappa = params["mu"].numpy(), params["kappa"].numpy()
    for i in range(3):
        for j in range(3):

            def root(y, i=i, j=j):
                return np.sqrt(
                    stats.vonmises.pdf(y, kappa[i], loc=mu[i])
                    * stats.vonmises.pdf(y, kappa[j], loc=mu[j])
                )

            value = integrate.quad(root, -math.pi, math.pi, limit=400, points=[mu[i], mu[j]])[0]
            assert abs(bc[i, j] - value) < 1e-8, (i, j)
    np.testing.assert_allclose(np.diag(bc), 1.0, atol=1e-12)


def test_weighted_statistics_by_hand():
    data = hp.Sequences([[0.5, np.nan, -2.0]])
    weights = torch.tensor([[1.0, 0.0], [0.3, 0.7], [0.25, 0.75]], dtype=DTYPE)
    result = hp.VonMises().weighted_statistics(data, weights)
    torch.testing.assert_close(result["n"], torch.tensor([[1.25], [0.75]], dtype=DTYPE))
    cos = torch.tensor(
        [[math.cos(0.5) + 0.25 * math.cos(-2.0)], [0.75 * math.cos(-2.0)]], dtype=DTYPE
    )
    sin = torch.tensor(
        [[math.sin(0.5) + 0.25 * math.sin(-2.0)], [0.75 * math.sin(-2.0)]], dtype=DTYPE
    )
    torch.testing.assert_close(result["cos"], cos)
    torch.testing.assert_close(result["sin"], sin)


@pytest.mark.parametrize("use_prior", [False, True])
def test_maximize_equals_a_direct_optimiser(use_prior):
    """ECM (closed-form mu, Newton A(kappa) inversion) against Nelder-Mead (1e-6)."""
    rng = np.random.default_rng(0)
    angles = stats.vonmises.rvs(2.0, loc=2.8, size=150, random_state=1)
    weights = torch.as_tensor(rng.dirichlet(np.ones(2), size=150))
    emission = hp.VonMises()
    prior = hp.Prior(
        angle_loc=[-3.0, 1.0], angle_concentration=[2.0, 0.5], kappa_shape=2.0, kappa_rate=0.2
    )
    hyper = emission.prior_hyperparameters(prior, 2, DTYPE)
    statistics = emission.weighted_statistics(hp.Sequences([angles]), weights)
    estimate = emission.maximize(statistics, hyper, None, use_prior)
    for k in range(2):

        def negative(theta, k=k):
            loc, kappa = theta[0], np.exp(theta[1])
            total = (weights[:, k].numpy() * stats.vonmises.logpdf(angles, kappa, loc=loc)).sum()
            if use_prior:
                total += stats.vonmises.logpdf(loc, [2.0, 0.5][k], loc=[-3.0, 1.0][k])
                total += stats.gamma.logpdf(kappa, 2.0, scale=5.0)
            return -total

        found = optimize.minimize(
            negative,
            [2.5, 0.5],
            method="Nelder-Mead",
            options={"xatol": 1e-11, "fatol": 1e-13, "maxiter": 5000},
        )
        turn = math.remainder(estimate["mu"][k].item() - found.x[0], 2 * math.pi)
        assert abs(turn) < 1e-6
        np.testing.assert_allclose(estimate["kappa"][k].item(), np.exp(found.x[1]), rtol=1e-6)


def test_maximize_edge_cases():
    emission = hp.VonMises()
    hyper = emission.prior_hyperparameters(hp.Prior(), 3, DTYPE)
    statistics = {  # no weight; no resultant (uniform); one direction only
        "n": torch.tensor([[0.0], [2.0], [3.0]], dtype=DTYPE),
        "cos": torch.tensor([[0.0], [0.0], [0.0]], dtype=DTYPE),
        "sin": torch.tensor([[0.0], [0.0], [3.0]], dtype=DTYPE),
    }
    previous = {"mu": torch.tensor([0.5, 1.0, 0.0]), "kappa": torch.tensor([2.0, 3.0, 1.0])}
    ml = emission.maximize(statistics, hyper, previous, use_prior=False)
    assert ml["mu"][0] == 0.5 and ml["kappa"][0] == 2.0
    assert ml["mu"][1] == 1.0 and ml["kappa"][1] == MIN_KAPPA
    assert ml["mu"][2] == pytest.approx(math.pi / 2) and ml["kappa"][2] == 1e6


def test_pooled_params_are_the_ml_fit():
    angles = stats.vonmises.rvs(3.0, loc=-2.0, size=500, random_state=4)
    pooled = hp.VonMises().pooled_params(hp.Sequences([angles]))
    kappa, loc, _ = stats.vonmises.fit(angles, fscale=1)
    assert abs(math.remainder(pooled["mu"].item() - loc, 2 * math.pi)) < 1e-4
    np.testing.assert_allclose(pooled["kappa"].item(), kappa, rtol=1e-4)
