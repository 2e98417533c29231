"""The generic torch route of families given by a Pyro distribution (``DistributionEmission``).

Checked against closed forms of the built-in families (tables, Bhattacharyya coefficients),
scipy (a joint law, a direct optimiser), and the enumerated Pyro model.
"""

from __future__ import annotations

import math

import numpy as np
import pyro.distributions as dist
import pytest
import torch
from scipy import special, stats
from scipy.special import log_expit
from torch.distributions import constraints

import hmm_pyro as hp
from hmm_pyro.emissions.distribution import MC_SAMPLES
from tests.emissions.family_checks import direct_optimum
from tests.test_model import enumerate_loss, forward_log_joint, holed_data

DTYPE = torch.float64

NORMAL = hp.PyroEmission(
    "test_normal",
    lambda mu, sigma: dist.Normal(mu, sigma),
    mu=hp.Parameter(dist.Normal(0.0, 10.0)),
    sigma=hp.Parameter(dist.LogNormal(0.0, 1.0)),
)
NORMAL2 = hp.PyroEmission(
    "test_normal2",
    lambda mu, sigma: dist.Normal(mu, sigma).to_event(1),
    dim=2,
    mu=hp.Parameter(dist.Normal(0.0, 10.0), shape=(2,)),
    sigma=hp.Parameter(dist.LogNormal(0.0, 1.0), shape=(2,)),
)
POISSON = hp.PyroEmission(
    "test_poisson",
    lambda rate: dist.Poisson(rate),
    rate=hp.Parameter(dist.Gamma(2.0, 0.5), constraint=constraints.positive),
)
JOINT = hp.PyroEmission(
    "test_mvn",
    lambda loc: dist.MultivariateNormal(
        loc, torch.tensor([[1.0, 0.5], [0.5, 2.0]], dtype=loc.dtype)
    ),
    dim=2,
    loc=hp.Parameter(dist.Normal(0.0, 5.0).expand([2]).to_event(1), shape=(2,)),
)
ZIP = hp.PyroEmission(
    "test_zip",
    lambda rate, gate: dist.ZeroInflatedPoisson(rate=rate, gate=gate),
    rate=hp.Parameter(dist.Gamma(2.0, 0.5), constraint=constraints.positive),
    gate=hp.Parameter(dist.Beta(2.0, 2.0)),
)


def _normal_params(rng, batch=(), dim=None):
    shape = (*batch, 3) if dim is None else (*batch, 3, dim)
    return {
        "mu": torch.as_tensor(rng.normal(0.0, 1.5, size=shape)),
        "sigma": torch.as_tensor(rng.uniform(0.5, 2.0, size=shape)),
    }


def test_monte_carlo_bhattacharyya_matches_the_closed_forms(rng):
    """Within 4 standard errors of the Gaussian and Poisson closed forms, for 4 draws x 3 x 3.

    Detects a bias of the estimator (or of its standard error) above 4 standard errors; the
    draws are fixed (seed ``MC_SEED``), so the test is deterministic.
    """
    cases = [
        (NORMAL, hp.Gaussian(), _normal_params(rng, batch=(4,))),
        (POISSON, hp.Poisson(), {"rate": torch.as_tensor(rng.uniform(0.5, 8.0, size=(4, 3)))}),
    ]
    for family, closed_form, params in cases:
        estimate, error = family.bhattacharyya_estimate(params)
        exact = closed_form.bhattacharyya(params)
        assert estimate.shape == error.shape == (4, 3, 3)
        assert torch.all((estimate - exact).abs() <= 4 * error + 1e-12), (estimate, exact)
        assert torch.all(error <= math.sqrt(1 / (8 * MC_SAMPLES)))
        assert torch.all(torch.diagonal(estimate, dim1=-2, dim2=-1) == 1.0)
        torch.testing.assert_close(estimate, estimate.transpose(-1, -2), rtol=0, atol=0)
        assert torch.equal(family.bhattacharyya(params), estimate)
        torch.testing.assert_close(family.hellinger(params), (1 - estimate).clamp(0, 1))


def test_equal_states_are_at_distance_zero_exactly():
    params = {"mu": torch.tensor([0.3, 0.3, 2.0], dtype=DTYPE), "sigma": torch.ones(3, dtype=DTYPE)}
    estimate, error = NORMAL.bhattacharyya_estimate(params)
    assert estimate[0, 1] == 1.0 and error[0, 1] == 0.0
    assert NORMAL.hellinger(params)[0, 1] == 0.0


def test_table_equals_the_gaussian_family_with_missing_coordinates(rng):
    """A law over independent coordinates drops missing coordinates one by one."""
    data = hp.Sequences(
        [np.array([[0.1, np.nan], [np.nan, np.nan], [1.5, -2.0]]), np.array([[np.nan, 3.0]])],
        dim=2,
    )
    params = _normal_params(rng, batch=(2,), dim=2)
    ours = NORMAL2.log_likelihood_table(params, data)
    expected = hp.Gaussian(dim=2).log_likelihood_table(params, data)
    assert ours.shape == (2, 2, 3, 3)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-12)
    one = _normal_params(rng)
    univariate = hp.Sequences([[0.2, np.nan, -1.0], [4.0]])
    torch.testing.assert_close(
        NORMAL.log_likelihood_table(one, univariate),
        hp.Gaussian().log_likelihood_table(one, univariate),
        rtol=0,
        atol=1e-12,
    )


def test_a_joint_law_scores_whole_steps_and_refuses_partial_ones(rng):
    loc = torch.as_tensor(rng.normal(size=(3, 2)))
    data = hp.Sequences([np.array([[0.5, 1.0], [np.nan, np.nan], [-1.0, 2.0]])], dim=2)
    JOINT.validate_data(data)
    table = JOINT.log_likelihood_table({"loc": loc}, data)
    cov = np.array([[1.0, 0.5], [0.5, 2.0]])
    for t, row in ((0, [0.5, 1.0]), (2, [-1.0, 2.0])):
        expected = [stats.multivariate_normal(loc[k].numpy(), cov).logpdf(row) for k in range(3)]
        np.testing.assert_allclose(table[0, t].numpy(), expected, rtol=0, atol=1e-12)
    assert torch.all(table[0, 1] == 0)
    with pytest.raises(ValueError, match=r"data: .* joint law"):
        JOINT.validate_data(hp.Sequences([np.array([[0.5, np.nan]])], dim=2))


@pytest.mark.parametrize(
    "emission",
    [
        ZIP,
        NORMAL2,
        hp.NegativeBinomial(dim=2),
        hp.Product(counts=hp.Poisson(), level=ZIP),
        hp.Product(symbols=hp.Categorical(3), level=hp.StudentT(dim=2)),
    ],
    ids=repr,
)
def test_forward_and_enumerated_models_agree(emission):
    """The table route against the step-by-step enumerated model (``conditional``)."""
    hmm = hp.HMM(3, emission)
    params = hmm.sample_prior(seed=2)
    data = holed_data(hmm, params, seed=1)
    forward = forward_log_joint(hmm, params, data).item()
    assert abs(forward + enumerate_loss(hmm, params, data)) < 1e-8


def test_numerical_m_step_matches_a_direct_optimiser(rng):
    """ZIP: L-BFGS over unconstrained coordinates against scipy on the same weighted objective.

    Both maximise ``sum_m w[m, k] log p(y_m | k) + log prior``; agreement of the maximisers to
    1e-5 (relative) detects a wrong objective, prior or stopping rule.
    """
    counts = torch.as_tensor(rng.poisson(3.0, size=60) * (rng.uniform(size=60) > 0.3), dtype=DTYPE)
    weights = torch.as_tensor(rng.dirichlet([1.0, 1.0], size=60))
    data = hp.Sequences([counts.numpy()])
    statistics = ZIP.weighted_statistics(data, weights)
    for use_prior in (True, False):
        ours = ZIP.maximize(statistics, {}, None, use_prior=use_prior)
        for k in range(2):

            def loss(x, k=k, use_prior=use_prior):
                rate, log_gate, log_keep = math.exp(x[0]), log_expit(x[1]), log_expit(-x[1])
                logp = stats.poisson.logpmf(counts.numpy(), rate) + log_keep
                logp = np.where(counts.numpy() == 0, np.logaddexp(log_gate, logp), logp)
                value = (weights[:, k].numpy() * logp).sum()
                if use_prior:
                    value += stats.gamma.logpdf(rate, 2.0, scale=2.0)
                    value += log_gate + log_keep - math.log(special.beta(2.0, 2.0))
                return -value

            best = direct_optimum(loss, [0.0, 0.0])
            rate, gate = ours["rate"][k].item(), ours["gate"][k].item()
            found = np.array([math.log(rate), math.log(gate / (1 - gate))])
            np.testing.assert_allclose(found, best, rtol=0, atol=1e-5)
            assert loss(found) <= loss(best) + 1e-9


def test_sampling_follows_the_generator(rng):
    params = {
        "rate": torch.tensor([1.0, 6.0], dtype=DTYPE),
        "gate": torch.tensor([0.5, 0.1], dtype=DTYPE),
    }
    states = torch.tensor([[0, 1, 1], [1, 0, 0]])
    first = ZIP.sample(params, states, torch.Generator().manual_seed(3))
    again = ZIP.sample(params, states, torch.Generator().manual_seed(3))
    assert first.shape == (2, 3, 1) and first.dtype == DTYPE and torch.equal(first, again)
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    ZIP.sample(params, states, torch.Generator().manual_seed(3))
    assert torch.equal(torch.rand(1), before)  # the global generator is left alone
    draws = ZIP.sample(
        params, torch.zeros(20000, dtype=torch.long), torch.Generator().manual_seed(1)
    )
    # P(0) = 0.5 + 0.5 exp(-1) = 0.684; SE 0.0033
    assert abs((draws == 0).double().mean().item() - (0.5 + 0.5 * math.exp(-1))) < 0.017
