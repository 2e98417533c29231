"""Negative binomial emission regression (log link) against scipy.stats.nbinom, brute force over
paths, scipy.optimize and a direct sum for the distance."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import optimize, stats

import hmm_pyro as hp
from hmm_pyro.covariates import Covariates
from hmm_pyro.emissions import from_config
from hmm_pyro.emissions.negative_binomial_regression import NegativeBinomialRegression

DTYPE = torch.float64
NAMES = ("hour",)
PARAMS = {
    "pi": torch.tensor([0.6, 0.4], dtype=DTYPE),
    "A": torch.tensor([[0.8, 0.2], [0.3, 0.7]], dtype=DTYPE),
    "w": torch.tensor([[0.5, 0.5], [2.0, -0.4]], dtype=DTYPE),
    "dispersion": torch.tensor([2.0, 5.0], dtype=DTYPE),
}


def small_data(lengths=(5, 3), seed=0) -> hp.Sequences:
    rng = np.random.default_rng(seed)
    values = [rng.poisson(4.0, size=length).astype(float) for length in lengths]
    values[0][2] = np.nan
    columns = [rng.normal(size=(length, 1)) for length in lengths]
    return hp.Sequences(values, covariates=Covariates(columns, names=list(NAMES)))


def by_hand_table(params, data) -> np.ndarray:
    x = data.covariates.values.numpy()
    design = np.concatenate([np.ones_like(x[..., :1]), x], -1)
    mean = np.exp(design @ params["w"].numpy().T)
    r = params["dispersion"].numpy()
    y = np.nan_to_num(data.values[..., 0].numpy())[..., None]
    table = stats.nbinom.logpmf(y, r, r / (r + mean))
    missing = np.isnan(data.values[..., 0].numpy())[..., None] | ~data.mask.numpy()[..., None]
    return np.where(missing, 0.0, table)


def test_table_equals_scipy_and_the_log_likelihood_brute_force():
    data = small_data()
    emission = NegativeBinomialRegression(NAMES)
    table = emission.log_likelihood_table(PARAMS, data)
    np.testing.assert_allclose(table.numpy(), by_hand_table(PARAMS, data), rtol=1e-11, atol=1e-12)
    hmm = hp.HMM(2, emission)
    log_pi, log_A = np.log(PARAMS["pi"].numpy()), np.log(PARAMS["A"].numpy())
    expected = []
    for n, length in enumerate(data.lengths.tolist()):
        scores = [
            log_pi[path[0]]
            + by_hand_table(PARAMS, data)[n, np.arange(length), path].sum()
            + sum(log_A[path[t], path[t + 1]] for t in range(length - 1))
            for path in itertools.product(range(2), repeat=length)
        ]
        expected.append(np.logaddexp.reduce(scores))
    np.testing.assert_allclose(hmm.log_likelihood(PARAMS, data).numpy(), expected, atol=1e-9)


@pytest.mark.parametrize("use_prior", [False, True])
def test_m_step_maximises_the_weighted_objective_like_scipy(use_prior):
    rng = np.random.default_rng(4)
    steps = 120
    covariates = Covariates([rng.normal(size=(steps, 1))], names=list(NAMES))
    design = np.column_stack([np.ones(steps), covariates.values[0].numpy()])
    mean = np.exp(design @ [1.5, 0.5])
    y = rng.negative_binomial(3.0, 3.0 / (3.0 + mean)).astype(float)
    data = hp.Sequences([y], covariates=covariates)
    weights = torch.as_tensor(rng.dirichlet([1.0, 1.0], size=steps), dtype=DTYPE)
    emission = NegativeBinomialRegression(NAMES)
    prior = hp.Prior(rate_shape=2.0, rate_rate=0.3, dispersion_shape=2.0, dispersion_rate=0.2)
    hyper = emission.prior_hyperparameters(prior, 2, DTYPE)
    result = emission.maximize(emission.weighted_statistics(data, weights), hyper, None, use_prior)
    laws = emission.prior_distributions(prior, 2, DTYPE)
    coefficients = laws["w"].base_dist
    for k in range(2):
        u = weights[:, k].numpy()

        def negative(theta, u=u, k=k):
            w, r = theta[:2], np.exp(theta[2])
            m = np.exp(design @ w)
            value = (u * stats.nbinom.logpmf(y, r, r / (r + m))).sum()
            if use_prior:
                loc, scale = coefficients.loc[k].numpy(), coefficients.scale[k].numpy()
                value += stats.norm.logpdf(w, loc, scale).sum()
                value += stats.gamma.logpdf(r, 2.0, scale=1 / 0.2)
            return -value

        best = optimize.minimize(negative, np.zeros(3), method="BFGS", options={"gtol": 1e-9})
        np.testing.assert_allclose(result["w"][k].numpy(), best.x[:2], atol=1e-5)
        assert abs(np.log(result["dispersion"][k].item()) - best.x[2]) < 1e-5


def test_m_step_on_the_true_states_recovers_planted_parameters():
    """Given the states, 2 x 400 simulated steps: slopes within 0.1 (standard errors about
    0.03-0.05), dispersions within 30% (their standard errors are about 15%)."""
    hmm = hp.HMM(2, NegativeBinomialRegression(NAMES))
    rng = np.random.default_rng(1)
    covariates = Covariates([rng.normal(size=(400, 1)) for _ in range(2)], names=list(NAMES))
    data, states = hp.simulate(hmm, PARAMS, covariates=covariates, seed=2)
    one_hot = torch.nn.functional.one_hot(states.clamp(min=0), 2).to(DTYPE).reshape(-1, 2)
    statistics = hmm.emission.weighted_statistics(data, one_hot)
    estimate = hmm.emission.maximize(statistics, {}, None, use_prior=False)
    np.testing.assert_allclose(estimate["w"].numpy(), PARAMS["w"].numpy(), atol=0.1)
    np.testing.assert_allclose(estimate["dispersion"].numpy(), [2.0, 5.0], rtol=0.3)


def test_distance_is_the_sum_over_counts_and_the_description_round_trips():
    emission = NegativeBinomialRegression(NAMES, slope_scale=0.5)
    assert from_config(emission.to_config()) == emission
    assert hp.NegativeBinomial().with_covariates(NAMES) == NegativeBinomialRegression(NAMES)
    params = {"w": PARAMS["w"], "dispersion": PARAMS["dispersion"]}
    rows = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, -1.0]])
    r = PARAMS["dispersion"].numpy()
    support = np.arange(4000)
    bc = []
    for row in rows:
        m = np.exp(PARAMS["w"].numpy() @ row)
        p0, p1 = (stats.nbinom.pmf(support, r[k], r[k] / (r[k] + m[k])) for k in range(2))
        bc.append(np.sqrt(p0 * p1).sum())
    assert abs(emission.hellinger(params)[0, 1].item() - (1 - np.mean(bc))) < 1e-9
    assert emission.hellinger(params)[0, 0].item() < 1e-9
    with pytest.raises(ValueError, match=r"^params\['dispersion'\]: expected dispersions > 0"):
        hp.HMM(2, emission).validate_params(dict(PARAMS, dispersion=torch.tensor([1.0, -1.0])))
