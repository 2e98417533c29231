"""Poisson emission regression (log link) against scipy, brute force and scipy.optimize."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import optimize, stats

import hmm_pyro as hp
from hmm_pyro.covariates import Covariates
from hmm_pyro.emissions import from_config
from hmm_pyro.emissions.poisson_regression import PoissonRegression

DTYPE = torch.float64
NAMES = ("hour", "temp")
PARAMS = {
    "pi": torch.tensor([0.6, 0.4], dtype=DTYPE),
    "A": torch.tensor([[0.8, 0.2], [0.3, 0.7]], dtype=DTYPE),
    "w": torch.tensor([[0.2, 0.5, -0.3], [1.8, -0.4, 0.2]], dtype=DTYPE),
}


def small_data(lengths=(5, 3), seed=0) -> hp.Sequences:
    rng = np.random.default_rng(seed)
    values = [rng.poisson(3.0, size=length).astype(float) for length in lengths]
    values[0][1] = np.nan
    columns = [rng.normal(size=(length, 2)) for length in lengths]
    return hp.Sequences(values, covariates=Covariates(columns, names=list(NAMES)))


def by_hand_table(params, data) -> np.ndarray:
    x = data.covariates.values.numpy()
    design = np.concatenate([np.ones_like(x[..., :1]), x], -1)
    rate = np.exp(design @ params["w"].numpy().T)
    y = data.values[..., 0].numpy()
    table = stats.poisson.logpmf(np.nan_to_num(y)[..., None], rate)
    return np.where(np.isnan(y)[..., None] | ~data.mask.numpy()[..., None], 0.0, table)


def test_table_equals_scipy_and_zero_slopes_give_the_plain_poisson():
    data = small_data()
    emission = PoissonRegression(NAMES)
    table = emission.log_likelihood_table(PARAMS, data)
    np.testing.assert_allclose(table.numpy(), by_hand_table(PARAMS, data), rtol=1e-12, atol=1e-13)
    flat = {"w": torch.tensor([[0.2, 0.0, 0.0], [1.8, 0.0, 0.0]], dtype=DTYPE)}
    plain = hp.Poisson().log_likelihood_table({"rate": flat["w"][:, 0].exp()}, data)
    torch.testing.assert_close(emission.log_likelihood_table(flat, data), plain, rtol=0, atol=1e-13)


def test_log_likelihood_equals_brute_force_over_paths():
    data = small_data()
    hmm = hp.HMM(2, PoissonRegression(NAMES))
    table = by_hand_table(PARAMS, data)
    log_pi, log_A = np.log(PARAMS["pi"].numpy()), np.log(PARAMS["A"].numpy())
    expected = []
    for n, length in enumerate(data.lengths.tolist()):
        scores = [
            log_pi[path[0]]
            + table[n, np.arange(length), path].sum()
            + sum(log_A[path[t], path[t + 1]] for t in range(length - 1))
            for path in itertools.product(range(2), repeat=length)
        ]
        expected.append(np.logaddexp.reduce(scores))
    np.testing.assert_allclose(hmm.log_likelihood(PARAMS, data).numpy(), expected, atol=1e-9)


def test_intercept_prior_has_the_moments_of_the_log_gamma_rate():
    prior = hp.Prior(rate_shape=2.5, rate_rate=0.4)
    law = PoissonRegression(NAMES, slope_scale=0.7).prior_distributions(prior, 2, DTYPE)["w"]
    gamma = stats.gamma(2.5, scale=1 / 0.4)
    mean = gamma.expect(np.log)
    sd = np.sqrt(gamma.expect(lambda r: (np.log(r) - mean) ** 2))
    np.testing.assert_allclose(law.base_dist.loc[:, 0].numpy(), mean, rtol=1e-8)
    np.testing.assert_allclose(law.base_dist.scale[:, 0].numpy(), sd, rtol=1e-6)
    assert torch.equal(law.base_dist.loc[:, 1:], torch.zeros(2, 2, dtype=DTYPE))
    assert torch.equal(law.base_dist.scale[:, 1:], torch.full((2, 2), 0.7, dtype=DTYPE))


@pytest.mark.parametrize("use_prior", [False, True])
def test_m_step_maximises_the_weighted_objective_like_scipy(use_prior):
    rng = np.random.default_rng(4)
    steps = 80
    columns = rng.normal(size=(steps, 2))
    data0 = Covariates([columns], names=list(NAMES))
    design = np.column_stack([np.ones(steps), data0.values[0].numpy()])
    y = rng.poisson(np.exp(design @ [1.0, 0.5, -0.3])).astype(float)
    data = hp.Sequences([y], covariates=data0)
    weights = torch.as_tensor(rng.dirichlet([1.0, 1.0], size=steps), dtype=DTYPE)
    emission = PoissonRegression(NAMES)
    prior = hp.Prior(rate_shape=2.0, rate_rate=0.5)
    hyper = emission.prior_hyperparameters(prior, 2, DTYPE)
    result = emission.maximize(emission.weighted_statistics(data, weights), hyper, None, use_prior)
    law = emission.prior_distributions(prior, 2, DTYPE)["w"].base_dist
    for k in range(2):
        u = weights[:, k].numpy()

        def negative(w, u=u, k=k):
            value = (u * stats.poisson.logpmf(y, np.exp(design @ w))).sum()
            if use_prior:
                value += stats.norm.logpdf(w, law.loc[k].numpy(), law.scale[k].numpy()).sum()
            return -value

        best = optimize.minimize(negative, np.zeros(3), method="BFGS", options={"gtol": 1e-10})
        np.testing.assert_allclose(result["w"][k].numpy(), best.x, atol=1e-5)


def test_em_recovers_planted_coefficients():
    """Rates about 1.6 and 7 at the covariates' means, slopes 0.3-0.5, 600 steps.

    A log-rate slope's standard error is about ``1 / sqrt(n_k rate)`` (0.02-0.05 here); EM must
    match the maximum-likelihood fit given the true states (the oracle) to 0.03 and the truth
    to 0.15 (detects a slope off by a third of its size: a wrong design row or link).
    """
    hmm = hp.HMM(2, PoissonRegression(NAMES))
    rng = np.random.default_rng(1)
    covariates = Covariates([rng.normal(size=(300, 2)) for _ in range(2)], names=list(NAMES))
    truth = dict(PARAMS, A=torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=DTYPE))
    truth["w"] = torch.tensor([[0.5, 0.5, 0.0], [2.0, -0.3, 0.4]], dtype=DTYPE)
    data, states = hp.simulate(hmm, truth, covariates=covariates, seed=3)
    estimate = hp.fit_em(hmm, data, seed=0, restarts=2, progress=False).posterior_mean()
    order = torch.argsort(estimate["w"][:, 0])
    np.testing.assert_allclose(estimate["w"][order].numpy(), truth["w"].numpy(), atol=0.15)
    one_hot = torch.nn.functional.one_hot(states.clamp(min=0), 2).to(DTYPE).reshape(-1, 2)
    statistics = hmm.emission.weighted_statistics(data, one_hot)
    oracle = hmm.emission.maximize(statistics, {}, None, use_prior=False)
    np.testing.assert_allclose(estimate["w"][order].numpy(), oracle["w"].numpy(), atol=0.03)


def test_description_distances_and_bad_input():
    emission = PoissonRegression(NAMES)
    assert from_config(emission.to_config()) == emission
    assert hp.Poisson().with_covariates(NAMES) == emission
    assert emission.num_free_params(2) == 6
    same = {"w": PARAMS["w"][[1, 1]]}
    assert torch.allclose(emission.hellinger(same), torch.zeros(2, 2, dtype=DTYPE), atol=1e-15)
    # the rows x = +-e_hour differ (rates e and 1/e against 1); the other three agree
    slope = {"w": torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]], dtype=DTYPE)}
    gap = np.exp(-0.5 * (np.exp(0.5) - 1.0) ** 2) + np.exp(-0.5 * (np.exp(-0.5) - 1.0) ** 2)
    expected = 1.0 - (3.0 + gap) / 5.0
    assert abs(emission.hellinger(slope)[0, 1].item() - expected) < 1e-12
    assert torch.equal(emission.location(PARAMS), PARAMS["w"][:, 0].exp())
    covariates = Covariates([[[0.0, 1.0], [1.0, 0.0]]], names=list(NAMES))
    with pytest.raises(ValueError, match=r"^data: expected integer counts for PoissonRegression"):
        hp.HMM(2, emission).log_likelihood(
            PARAMS, hp.Sequences([[0.5, 1.0]], covariates=covariates)
        )
    with pytest.raises(ValueError, match=r"^emission_covariates: a regression of univariate"):
        hp.Poisson(dim=2).with_covariates(NAMES)
