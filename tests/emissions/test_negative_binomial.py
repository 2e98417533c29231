"""Negative binomial emissions: scipy densities, simulation, the M-step, collapse, options."""

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
from hmm_pyro.emissions.negative_binomial import MAX_DISPERSION
from hmm_pyro.learning import initial_params, run_em
from tests.emissions.family_checks import (
    check_collapsed_pair_is_flagged,
    check_hard_path_gives_the_one_state_fits,
    direct_optimum,
)

DTYPE = torch.float64


def _params(rng, dim, batch=()):
    shape = (*batch, 3) if dim is None else (*batch, 3, dim)
    return {
        "rate": torch.as_tensor(rng.uniform(0.3, 30.0, size=shape)),
        "dispersion": torch.as_tensor(rng.uniform(0.2, 20.0, size=shape)),
    }


def _scipy_logpmf(y, rate, dispersion):
    return stats.nbinom.logpmf(y, dispersion, dispersion / (dispersion + rate))


@pytest.mark.parametrize("dim", [None, 2])
def test_log_likelihood_table_matches_scipy(rng, dim):
    emission = hp.NegativeBinomial(dim=dim)
    params = _params(rng, dim, batch=(2,))
    width = emission.dim
    values = rng.negative_binomial(2, 0.1, size=(2, 6, width)).astype(float)
    values[0, 2, 0] = np.nan  # a missing coordinate (a missing step when D = 1)
    values[1, 4:] = np.nan
    data = hp.Sequences(values, lengths=[6, 4], dim=width)
    table = emission.log_likelihood_table(params, data)
    assert table.shape == (2, 2, 6, 3)
    rate = params["rate"].reshape(2, 3, width).numpy()
    dispersion = params["dispersion"].reshape(2, 3, width).numpy()
    expected = np.zeros((2, 2, 6, 3))
    for s in range(2):
        for n in range(2):
            for t in range(int(data.lengths[n])):
                for k in range(3):
                    for d in range(width):
                        if not np.isnan(values[n, t, d]):
                            expected[s, n, t, k] += _scipy_logpmf(
                                values[n, t, d], rate[s, k, d], dispersion[s, k, d]
                            )
    np.testing.assert_allclose(table.numpy(), expected, rtol=0, atol=1e-10)


def test_sample_moments(rng):
    """Mean ``rate``, variance ``rate + rate**2 / r``; 200k draws, 5 standard errors."""
    emission = hp.NegativeBinomial(dim=2)
    params = {
        "rate": torch.tensor([[3.0, 12.0]], dtype=DTYPE),
        "dispersion": torch.tensor([[0.8, 6.0]], dtype=DTYPE),
    }
    draws = emission.sample(
        params, torch.zeros(200_000, dtype=torch.long), torch.Generator().manual_seed(2)
    )
    assert draws.shape == (200_000, 2) and torch.equal(draws, draws.round()) and draws.min() >= 0
    rate, r = params["rate"][0].numpy(), params["dispersion"][0].numpy()
    p = r / (r + rate)
    mean, var = stats.nbinom.stats(r, p, moments="mv")
    assert np.all(np.abs(draws.mean(0).numpy() - mean) < 5 * np.sqrt(var / 200_000))
    kurtosis = stats.nbinom.stats(r, p, moments="k")  # excess
    var_se = np.sqrt((kurtosis + 2) * var**2 / 200_000)
    assert np.all(np.abs(draws.var(0).numpy() - var) < 5 * var_se)


@pytest.mark.parametrize("use_prior", [True, False])
def test_m_step_matches_a_direct_optimiser(rng, use_prior):
    """The closed-form mean and 1-D search over ``r`` against scipy's 2-D optimum.

    Random weights of two states over overdispersed counts; also a state whose counts are less
    spread than Poisson (ML at the Poisson limit, ``r`` at the upper end of the search).
    """
    counts = rng.negative_binomial(2.0, 0.25, size=80).astype(float)
    weights = rng.dirichlet([1.0, 1.0], size=80)
    data = hp.Sequences([counts])
    emission = hp.NegativeBinomial()
    prior = hp.Prior(rate_shape=2.0, rate_rate=0.2, dispersion_shape=1.5, dispersion_rate=0.3)
    hyper = emission.prior_hyperparameters(prior, 2, DTYPE)
    statistics = emission.weighted_statistics(data, torch.as_tensor(weights))
    ours = emission.maximize(statistics, hyper, None, use_prior)
    for k in range(2):

        def loss(x, k=k):
            rate, r = math.exp(x[0]), math.exp(x[1])
            value = (weights[:, k] * _scipy_logpmf(counts, rate, r)).sum()
            if use_prior:
                value += stats.gamma.logpdf(rate, 2.0, scale=5.0)
                value += stats.gamma.logpdf(r, 1.5, scale=1 / 0.3)
            return -value

        best = direct_optimum(loss, [1.0, 0.0])
        found = np.log([ours["rate"][k].item(), ours["dispersion"][k].item()])
        np.testing.assert_allclose(found, best, rtol=0, atol=1e-5)
        assert loss(found) <= loss(best) + 1e-9
    spread = hp.Sequences([[3.0, 4.0, 3.0, 5.0, 4.0, 3.0]])
    fit = emission.maximize(
        emission.weighted_statistics(spread, torch.ones(6, 1, dtype=DTYPE)), {}, None, False
    )
    assert fit["rate"].item() == pytest.approx(22 / 6, rel=1e-12)
    assert fit["dispersion"].item() == pytest.approx(MAX_DISPERSION)


def test_weighted_statistics_by_hand():
    data = hp.Sequences([np.array([[0, 4], [np.nan, 4], [2, np.nan]])], dim=2)
    weights = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]], dtype=DTYPE)
    statistics = hp.NegativeBinomial(dim=2).weighted_statistics(data, weights)
    torch.testing.assert_close(statistics["values"], torch.tensor([0.0, 2.0, 4.0], dtype=DTYPE))
    expected = torch.tensor(
        [[[1.0, 0.2, 0.0], [0.0, 0.0, 1.5]], [[0.0, 0.8, 0.0], [0.0, 0.0, 0.5]]], dtype=DTYPE
    )
    torch.testing.assert_close(statistics["counts"], expected)


def test_hard_path_gives_the_one_state_fits():
    check_hard_path_gives_the_one_state_fits(
        hp.NegativeBinomial(), {"rate": [2.0, 20.0], "dispersion": [1.5, 4.0]}
    )


def test_collapsed_pair_is_flagged():
    check_collapsed_pair_is_flagged(
        hp.NegativeBinomial(), {"rate": [2.0, 15.0], "dispersion": [3.0, 5.0]}
    )


def test_prior_and_options():
    emission = hp.NegativeBinomial(dim=2)
    prior = hp.Prior(rate_shape=2.0, rate_rate=[0.5, 0.25, 0.2], dispersion_shape=3.0)
    hyper = emission.prior_hyperparameters(prior, 3, DTYPE)
    assert list(hyper) == ["rate_shape", "rate_rate", "dispersion_shape", "dispersion_rate"]
    means = {name: d.mean for name, d in emission.prior_distributions(prior, 3, DTYPE).items()}
    expected = torch.tensor([[4.0, 4.0], [8.0, 8.0], [10.0, 10.0]], dtype=DTYPE)
    torch.testing.assert_close(means["rate"], expected)
    torch.testing.assert_close(means["dispersion"], torch.full((3, 2), 30.0, dtype=DTYPE))
    assert emission.num_free_params(3) == 12
    assert emission.param_dims() == {"rate": ("state", "dim"), "dispersion": ("state", "dim")}
    assert from_config(emission.to_config()) == emission
    assert hp.NegativeBinomial.from_options(data=hp.Sequences(np.zeros((1, 3, 2)))) == emission
    args = build_parser().parse_args(["fit", "x.csv", "-K", "2", "--emission", "negative_binomial"])
    assert emission_of(args, hp.Sequences([[1, 2]])) == hp.NegativeBinomial()
    with pytest.raises(ValueError, match="data: expected values in the support"):
        hp.NegativeBinomial().validate_data(hp.Sequences([[1.0, 2.5]]))
    with pytest.raises(ValueError, match=r"params\['dispersion'\]"):
        emission.validate_params({"rate": torch.ones(2, 2), "dispersion": -torch.ones(2, 2)}, 2)


@pytest.mark.parametrize(
    "emission",
    [hp.NegativeBinomial(dim=2), hp.Product(counts=hp.NegativeBinomial(), level=hp.Gaussian())],
    ids=repr,
)
def test_em_never_decreases_its_objective(emission):
    """EM with these M-steps (exact in ``rate``, 1-D search in ``r``) is monotone, with missing
    entries; a decrease beyond the monitor's round-off allowance would be a wrong M-step."""
    hmm = hp.HMM(2, emission, hp.Prior(stickiness=1.0))
    data, _ = hp.simulate(hmm, hmm.sample_prior(seed=1), [40, 30], seed=2)
    values = [np.array(row, dtype=float).reshape(len(row), -1) for row in data.to_list()]
    values[0][3, 0] = np.nan
    data = hmm.prepare_data(hp.Sequences(values, dim=emission.dim))
    start = initial_params(hmm, data, "prior", seed=3)
    run = run_em(hmm, data, start, max_iter=30, tol=0.0)
    assert run.monitor.decreases == [] and run.monitor.status != "non_finite"
    assert run.monitor.objective[-1] > run.monitor.objective[0]
