"""Student-t emissions: scipy densities, simulation, the numerical M-step, collapse, options."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import hmm_pyro as hp
from hmm_pyro.cli import build_parser
from hmm_pyro.cli._options import emission_of
from hmm_pyro.emissions import from_config
from tests.emissions.family_checks import (
    check_collapsed_pair_is_flagged,
    check_hard_path_gives_the_one_state_fits,
    direct_optimum,
)

DTYPE = torch.float64


def _params(rng, dim, batch=()):
    shape = (*batch, 3) if dim is None else (*batch, 3, dim)
    return {
        "mu": torch.as_tensor(rng.normal(0.0, 3.0, size=shape)),
        "sigma": torch.as_tensor(rng.uniform(0.3, 3.0, size=shape)),
        "df": torch.as_tensor(rng.uniform(0.5, 30.0, size=shape)),
    }


@pytest.mark.parametrize("dim", [None, 2])
def test_log_likelihood_table_matches_scipy(rng, dim):
    emission = hp.StudentT(dim=dim)
    params = _params(rng, dim, batch=(2,))
    width = emission.dim
    values = rng.standard_t(2.0, size=(2, 5, width)) * 4.0
    values[0, 1, 0] = np.nan
    values[1, 3:] = np.nan
    data = hp.Sequences(values, lengths=[5, 3], dim=width)
    table = emission.log_likelihood_table(params, data)
    columns = {name: value.reshape(2, 3, width).numpy() for name, value in params.items()}
    expected = np.zeros((2, 2, 5, 3))
    for s in range(2):
        for n in range(2):
            for t in range(int(data.lengths[n])):
                for k in range(3):
                    for d in range(width):
                        if not np.isnan(values[n, t, d]):
                            expected[s, n, t, k] += stats.t.logpdf(
                                values[n, t, d],
                                columns["df"][s, k, d],
                                columns["mu"][s, k, d],
                                columns["sigma"][s, k, d],
                            )
    np.testing.assert_allclose(table.numpy(), expected, rtol=0, atol=1e-10)


def test_sample_location_scale_and_tails():
    """200k draws: mean within 5 SE; the two-sided 5% tail frequency within 5 SE (heavy tails)."""
    params = {
        "mu": torch.tensor([1.5], dtype=DTYPE),
        "sigma": torch.tensor([2.0], dtype=DTYPE),
        "df": torch.tensor([4.0], dtype=DTYPE),
    }
    size = 200_000
    draws = (
        hp.StudentT()
        .sample(params, torch.zeros(size, dtype=torch.long), torch.Generator().manual_seed(5))[:, 0]
        .numpy()
    )
    sd = 2.0 * math.sqrt(4.0 / 2.0)
    assert abs(draws.mean() - 1.5) < 5 * sd / math.sqrt(size)
    beyond = (np.abs(draws - 1.5) > 2.0 * stats.t.ppf(0.975, 4.0)).mean()
    assert abs(beyond - 0.05) < 5 * math.sqrt(0.05 * 0.95 / size)


@pytest.mark.parametrize("use_prior", [True, False])
def test_numerical_m_step_matches_a_direct_optimiser(rng, use_prior):
    """L-BFGS over (mu, log sigma, log df) against scipy on the same weighted objective."""
    values = np.concatenate([rng.standard_t(3.0, 50) - 2.0, 1.5 * rng.standard_t(8.0, 50) + 3.0])
    weights = rng.dirichlet([0.5, 0.5], size=100)
    emission = hp.StudentT()
    prior = hp.Prior(mu_loc=0.5, mu_scale=4.0, variance_shape=2.0, variance_scale=1.5)
    hyper = emission.prior_hyperparameters(prior, 2, DTYPE)
    statistics = emission.weighted_statistics(hp.Sequences([values]), torch.as_tensor(weights))
    ours = emission.maximize(statistics, hyper, None, use_prior)
    for k in range(2):

        def loss(x, k=k):
            mu, sigma, df = x[0], math.exp(x[1]), math.exp(x[2])
            value = (weights[:, k] * stats.t.logpdf(values, df, mu, sigma)).sum()
            if use_prior:
                value += stats.norm.logpdf(mu, 0.5, 4.0)
                # sigma**2 ~ InvGamma(2, 1.5), density of the site sigma: p(sigma**2) 2 sigma
                value += stats.invgamma.logpdf(sigma**2, 2.0, scale=1.5) + math.log(2 * sigma)
                value += stats.gamma.logpdf(df, 2.0, scale=10.0)
            return -value

        best = direct_optimum(loss, [0.0, 0.0, 1.0])
        found = np.array(
            [
                ours["mu"][k].item(),
                math.log(ours["sigma"][k].item()),
                math.log(ours["df"][k].item()),
            ]
        )
        assert loss(found) <= loss(best) + 1e-9
        np.testing.assert_allclose(found, best, rtol=0, atol=1e-4)


def test_hard_path_gives_the_one_state_fits():
    check_hard_path_gives_the_one_state_fits(
        hp.StudentT(), {"mu": [-2.0, 3.0], "sigma": [1.0, 0.5], "df": [1.5, 2.0]}, rtol=1e-4
    )


def test_collapsed_pair_is_flagged():
    check_collapsed_pair_is_flagged(
        hp.StudentT(), {"mu": [-2.0, 3.0], "sigma": [1.0, 0.7], "df": [3.0, 6.0]}
    )


def test_prior_start_and_options():
    emission = hp.StudentT(dim=2)
    prior = hp.Prior(mu_loc=[-1.0, 0.0, 1.0], df_shape=3.0, df_rate=0.5)
    distributions = emission.prior_distributions(prior, 3, DTYPE)
    assert list(distributions) == ["mu", "sigma", "df"]
    torch.testing.assert_close(distributions["df"].mean, torch.full((3, 2), 6.0, dtype=DTYPE))
    torch.testing.assert_close(
        distributions["mu"].mean[:, 0], torch.tensor([-1.0, 0.0, 1.0], dtype=DTYPE)
    )
    gaussian = hp.Gaussian(dim=2).prior_distributions(prior, 3, DTYPE)["sigma"]
    sigma = torch.full((3, 2), 0.8, dtype=DTYPE)
    torch.testing.assert_close(distributions["sigma"].log_prob(sigma), gaussian.log_prob(sigma))
    assert emission.num_free_params(3) == 18
    data = hp.Sequences(np.random.default_rng(0).normal(size=(2, 30, 2)))
    start = emission.start_from_data(data, 3, torch.Generator().manual_seed(1), DTYPE)
    assert set(start) == {"mu", "sigma"}
    assert from_config(emission.to_config()) == emission
    args = build_parser().parse_args(["fit", "x.csv", "-K", "2", "--emission", "student_t"])
    assert emission_of(args, data) == emission
    with pytest.raises(ValueError, match=r"params\['df'\]"):
        hp.StudentT().validate_params(
            {"mu": torch.zeros(2), "sigma": torch.ones(2), "df": torch.zeros(2)}, 2
        )
