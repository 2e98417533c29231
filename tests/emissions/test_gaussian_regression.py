"""Gaussian emission regression (``y_t | z_t = k ~ Normal(x_t . w_k, sigma_k)``) and the shared
regression description, against scipy densities, brute force over paths and scipy.optimize."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO, TraceEnum_ELBO
from scipy import optimize, stats
from scipy.special import log_softmax

import hmm_pyro as hp
from hmm_pyro.covariates import Covariates
from hmm_pyro.emissions import from_config
from hmm_pyro.emissions.gaussian_regression import GaussianRegression
from hmm_pyro.emissions.regression import reference_rows

DTYPE = torch.float64
NAMES = ("hour", "temp")


def tensors(params: dict) -> dict[str, torch.Tensor]:
    return {name: torch.as_tensor(value, dtype=DTYPE) for name, value in params.items()}


def small_data(lengths=(5, 3), seed=0, missing=True) -> hp.Sequences:
    """Short sequences with two covariates (one value missing when ``missing``)."""
    rng = np.random.default_rng(seed)
    values = [rng.normal(size=length) * 2 for length in lengths]
    if missing:
        values[0][2] = np.nan
    columns = [rng.normal(size=(length, 2)) for length in lengths]
    return hp.Sequences(values, covariates=Covariates(columns, names=list(NAMES)))


PARAMS = tensors(
    {
        "pi": [0.6, 0.4],
        "A": [[0.8, 0.2], [0.3, 0.7]],
        "w": [[-1.0, 0.5, -0.3], [1.5, -0.8, 0.2]],
        "sigma": [0.7, 1.3],
    }
)


def by_hand_table(params, data) -> np.ndarray:
    """``(N, T, K)`` scipy normal log densities at ``x_t . w_k``; zero where not observed."""
    x = data.covariates.values.numpy()
    design = np.concatenate([np.ones_like(x[..., :1]), x], -1)
    mean = design @ params["w"].numpy().T
    y = data.values[..., 0].numpy()
    table = stats.norm.logpdf(y[..., None], mean, params["sigma"].numpy())
    return np.where(np.isnan(y)[..., None] | ~data.mask.numpy()[..., None], 0.0, table)


def test_table_equals_scipy_densities_and_missing_steps_add_nothing():
    data = small_data()
    emission = GaussianRegression(NAMES)
    table = emission.log_likelihood_table(PARAMS, data)
    np.testing.assert_allclose(table.numpy(), by_hand_table(PARAMS, data), rtol=1e-12, atol=0)
    draws = {name: value.expand(3, *value.shape) for name, value in PARAMS.items()}
    assert emission.log_likelihood_table(draws, data).shape == (3, 2, 5, 2)


def test_zero_slopes_give_the_plain_gaussian_exactly():
    data = small_data()
    params = dict(PARAMS, w=torch.tensor([[-1.0, 0.0, 0.0], [1.5, 0.0, 0.0]], dtype=DTYPE))
    plain = {"mu": params["w"][:, 0], "sigma": params["sigma"]}
    torch.testing.assert_close(
        GaussianRegression(NAMES).log_likelihood_table(params, data),
        hp.Gaussian().log_likelihood_table(plain, data),
        rtol=0,
        atol=0,
    )


def brute_force(hmm, params, data) -> list[float]:
    """Log likelihood of each sequence, every path enumerated; transitions by hand too."""
    table = by_hand_table(params, data)
    x = data.covariates.values.numpy()
    results = []
    for n, length in enumerate(data.lengths.tolist()):
        if "beta_A" in params:
            design = np.column_stack([np.ones(length), x[n, :length, 0]])  # intercept, hour
            log_A = log_softmax(np.einsum("tp,ijp->tij", design, params["beta_A"].numpy()), -1)
        else:
            log_A = np.log(params["A"].numpy())[None].repeat(length, 0)
        log_pi = np.log(params["pi"].numpy())
        scores = [
            log_pi[path[0]]
            + table[n, np.arange(length), path].sum()
            + sum(log_A[t, path[t], path[t + 1]] for t in range(length - 1))
            for path in itertools.product(range(hmm.num_states), repeat=length)
        ]
        results.append(float(np.logaddexp.reduce(scores)))
    return results


@pytest.mark.parametrize("transitions", ["homogeneous", "covariates"])
def test_log_likelihood_equals_brute_force_over_paths(transitions):
    data = small_data()
    emission = GaussianRegression(NAMES)
    if transitions == "homogeneous":
        hmm, params = hp.HMM(2, emission), PARAMS
    else:
        hmm = hp.CovariateHMM(2, emission, ["hour"])
        beta = torch.tensor([[[0.0, 0.0], [-1.0, 0.7]], [[-0.5, -1.2], [0.0, 0.0]]], dtype=DTYPE)
        params = {"pi": PARAMS["pi"], "beta_A": beta, "w": PARAMS["w"], "sigma": PARAMS["sigma"]}
    expected = brute_force(hmm, params, data)
    np.testing.assert_allclose(
        hmm.log_likelihood(params, data).numpy(), expected, rtol=0, atol=1e-9
    )


def test_enumerated_and_forward_pyro_models_give_the_log_joint():
    """``TraceEnum_ELBO`` over ``pyro.markov`` states reads each step's covariates."""
    data = small_data(lengths=(4, 3))
    hmm = hp.HMM(2, GaussianRegression(NAMES))
    params = hmm.sample_prior(seed=2)
    expected = (hmm.log_prior(params) + hmm.log_likelihood(params, data).sum()).item()
    for marginalize, elbo in (
        ("enumerate", TraceEnum_ELBO(max_plate_nesting=1)),
        ("forward", Trace_ELBO()),
    ):
        model = pyro.poutine.condition(hmm.model, data=params)
        loss = elbo.loss(lambda m=model, how=marginalize: m(data, how), lambda: None)
        assert abs(-loss - expected) < 1e-9, marginalize


def test_prior_density_by_hand():
    """``w[k, 0] ~ N(mu_loc, mu_scale)``, slopes ``N(0, mu_scale)``, ``sigma**2 ~ IG``."""
    prior = hp.Prior(mu_loc=[-1.0, 2.0], mu_scale=3.0, variance_shape=2.5, variance_scale=0.7)
    emission = GaussianRegression(NAMES)
    laws = emission.prior_distributions(prior, 2, DTYPE)
    w, sigma = PARAMS["w"].numpy(), PARAMS["sigma"].numpy()
    expected_w = stats.norm.logpdf(w[:, 0], [-1.0, 2.0], 3.0).sum()
    expected_w += stats.norm.logpdf(w[:, 1:], 0.0, 3.0).sum()
    variance = stats.invgamma(2.5, scale=0.7)
    expected_sigma = (variance.logpdf(sigma**2) + np.log(2 * sigma)).sum()
    assert abs(laws["w"].log_prob(PARAMS["w"]).item() - expected_w) < 1e-10
    assert abs(laws["sigma"].log_prob(PARAMS["sigma"]).item() - expected_sigma) < 1e-10
    scaled = GaussianRegression(NAMES, slope_scale=0.5).prior_distributions(prior, 2, DTYPE)
    assert torch.equal(scaled["w"].base_dist.scale[:, 1:], torch.full((2, 2), 0.5, dtype=DTYPE))


def _weighted(seed=3, steps=60):
    """One sequence with covariates and random state weights (two states)."""
    rng = np.random.default_rng(seed)
    columns = rng.normal(size=(steps, 2))
    y = 1.0 + columns @ [0.8, -0.4] + rng.normal(size=steps) * 0.6
    data = hp.Sequences([y], covariates=Covariates([columns], names=list(NAMES)))
    weights = torch.as_tensor(rng.dirichlet([1.0, 1.0], size=steps), dtype=DTYPE)
    return data, weights, data.covariates.values[0].numpy(), y  # standardised columns


@pytest.mark.parametrize("use_prior", [False, True])
def test_m_step_maximises_the_weighted_objective_like_scipy(use_prior):
    data, weights, columns, y = _weighted()
    emission = GaussianRegression(NAMES)
    prior = hp.Prior(mu_loc=0.5, mu_scale=0.8, variance_shape=3.0, variance_scale=2.0)
    hyper = emission.prior_hyperparameters(prior, 2, DTYPE)
    statistics = emission.weighted_statistics(data, weights)
    result = emission.maximize(statistics, hyper, None, use_prior)
    design = np.column_stack([np.ones(len(y)), columns])
    for k in range(2):
        u = weights[:, k].numpy()

        def negative(theta, u=u):
            w, log_sigma = theta[:3], theta[3]
            value = (u * stats.norm.logpdf(y, design @ w, math.exp(log_sigma))).sum()
            if use_prior:
                value += stats.norm.logpdf(w, [0.5, 0, 0], 0.8).sum()
                sigma = math.exp(log_sigma)
                value += stats.invgamma(3.0, scale=2.0).logpdf(sigma**2) + math.log(2 * sigma)
            return -value

        best = optimize.minimize(negative, np.zeros(4), method="BFGS", options={"gtol": 1e-10})
        np.testing.assert_allclose(result["w"][k].numpy(), best.x[:3], atol=1e-5)
        assert abs(result["sigma"][k].item() - math.exp(best.x[3])) < 1e-5


def test_m_step_keeps_a_state_without_weight_and_pooled_fit_is_least_squares():
    data, weights, columns, y = _weighted()
    emission = GaussianRegression(NAMES)
    weights[:, 1] = 0.0
    previous = {"w": torch.ones(2, 3, dtype=DTYPE), "sigma": torch.full((2,), 2.0, dtype=DTYPE)}
    statistics = emission.weighted_statistics(data, weights)
    result = emission.maximize(statistics, {}, previous, use_prior=False)
    assert torch.equal(result["w"][1], previous["w"][1]) and result["sigma"][1] == 2.0
    nan = emission.maximize(statistics, {}, None, use_prior=False)
    assert bool(torch.isnan(nan["w"][1]).all())
    pooled = emission.pooled_params(data)
    design = np.column_stack([np.ones(len(y)), columns])
    solution, *_ = np.linalg.lstsq(design, y, rcond=None)
    np.testing.assert_allclose(pooled["w"][0].numpy(), solution, atol=1e-10)
    residual = y - design @ solution
    assert abs(pooled["sigma"][0].item() - residual.std()) < 1e-10


def test_em_recovers_planted_coefficients():
    """Two states apart by 4 in intercept, slopes of 0.5-1 on 600 steps, sigma 0.5-1.

    The least-squares standard error of a slope is about ``sigma / sqrt(n_k)`` (``~0.05`` with
    250-350 steps a state); the tolerance 0.2 against the truth detects a slope off by a fifth
    of its size or more (wrong design rows, a swapped covariate, a lost intercept shift). The
    states are well apart, so EM must also match the least-squares fit given the true states
    (the oracle) to 0.03: the fit's own sampling error is not part of that comparison.
    """
    hmm = hp.HMM(2, GaussianRegression(NAMES))
    rng = np.random.default_rng(1)
    columns = [rng.normal(size=(300, 2)) for _ in range(2)]
    covariates = Covariates(columns, names=list(NAMES))
    truth = tensors(
        {
            "pi": [0.5, 0.5],
            "A": [[0.9, 0.1], [0.1, 0.9]],
            "w": [[-2.0, 1.0, 0.0], [2.0, -0.5, 0.8]],
            "sigma": [0.5, 1.0],
        }
    )
    data, states = hp.simulate(hmm, truth, covariates=covariates, seed=2)
    fit = hp.fit_em(hmm, data, seed=0, restarts=2, progress=False)
    estimate = fit.posterior_mean()
    order = torch.argsort(estimate["w"][:, 0])
    np.testing.assert_allclose(estimate["w"][order].numpy(), truth["w"].numpy(), atol=0.2)
    one_hot = torch.nn.functional.one_hot(states.clamp(min=0), 2).to(DTYPE).reshape(-1, 2)
    statistics = hmm.emission.weighted_statistics(data, one_hot)
    oracle = hmm.emission.maximize(statistics, {}, None, use_prior=False)
    for name in ("w", "sigma"):
        np.testing.assert_allclose(estimate[name][order].numpy(), oracle[name].numpy(), atol=0.03)


def test_simulated_values_follow_the_regression():
    """Given the states, ``y - x . w_k`` is N(0, sigma_k): the standardised residuals of 4000
    draws have mean 0 +- 0.06 and sd 1 +- 0.05 (about 4 standard errors)."""
    rng = np.random.default_rng(0)
    covariates = Covariates([rng.normal(size=(2000, 2)) for _ in range(2)], names=list(NAMES))
    hmm = hp.HMM(2, GaussianRegression(NAMES))
    data, states = hp.simulate(hmm, PARAMS, covariates=covariates, seed=5)
    x = covariates.values.numpy()
    design = np.concatenate([np.ones_like(x[..., :1]), x], -1)
    w, sigma = PARAMS["w"].numpy()[states.numpy()], PARAMS["sigma"].numpy()[states.numpy()]
    z = (data.values[..., 0].numpy() - (design * w).sum(-1)) / sigma
    assert abs(z.mean()) < 0.06 and abs(z.std() - 1.0) < 0.05


def test_distances_average_the_reference_rows():
    emission = GaussianRegression(NAMES)
    rows = reference_rows(2)
    assert rows.tolist() == [[1, 0, 0], [1, 1, 0], [1, -1, 0], [1, 0, 1], [1, 0, -1]]
    same = {"w": PARAMS["w"][[0, 0]], "sigma": PARAMS["sigma"][[0, 0]]}
    assert torch.allclose(emission.hellinger(same), torch.zeros(2, 2, dtype=DTYPE), atol=1e-15)
    slope_only = {"w": torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=DTYPE)}
    slope_only["sigma"] = torch.ones(2, dtype=DTYPE)
    # rows x = 0 and x = +-e_temp agree; x = +-e_hour have mean gap 1 at unit variances
    expected = 1.0 - (3.0 + 2.0 * math.exp(-1.0 / 8.0)) / 5.0
    assert abs(emission.hellinger(slope_only)[0, 1].item() - expected) < 1e-12
    by_hand = stats.norm  # the Gaussian coefficient per row, by numerical integration
    grid = np.linspace(-12, 12, 20001)
    bc = np.trapezoid(np.sqrt(by_hand.pdf(grid, 0, 1) * by_hand.pdf(grid, 1, 1)), grid)
    assert abs(bc - math.exp(-1.0 / 8.0)) < 1e-9


def test_description_config_and_arviz_names():
    emission = GaussianRegression(NAMES, slope_scale=2.0)
    assert from_config(emission.to_config()) == emission
    assert emission.to_config() == {
        "family": "gaussian_regression",
        "covariates": ["hour", "temp"],
        "slope_scale": 2.0,
    }
    assert hp.Gaussian().with_covariates(NAMES) == GaussianRegression(NAMES)
    assert emission.num_free_params(3) == 3 * 3 + 3
    assert emission.entry_label("w", 1, 2) == "w[1]:temp"
    hmm = hp.HMM(2, GaussianRegression(NAMES))
    assert hp.HMM.from_config(hmm.to_config()).emission == hmm.emission
    fit = hp.Fit.from_params(hmm, small_data(), PARAMS)
    posterior = fit.idata.posterior
    assert posterior["w"].dims == ("chain", "draw", "state", "emission_term")
    assert posterior["emission_term"].values.tolist() == ["intercept", "hour", "temp"]


def test_bad_input_is_named():
    emission = GaussianRegression(NAMES)
    with pytest.raises(ValueError, match=r"^data: .* needs covariates"):
        hp.HMM(2, emission).log_likelihood(PARAMS, hp.Sequences([[0.1, 0.2]]))
    other = hp.Sequences([[0.1, 0.2]], covariates=Covariates([[[1.0], [2.0]]], names=["x"]))
    with pytest.raises(ValueError, match=r"^covariates: \['hour', 'temp'\] not among"):
        hp.HMM(2, emission).log_likelihood(PARAMS, other)
    with pytest.raises(ValueError, match=r"^covariates: 'intercept' is always included"):
        GaussianRegression(["intercept"])
    with pytest.raises(ValueError, match=r"^covariates: expected at least one"):
        GaussianRegression([])
    with pytest.raises(TypeError, match=r"^covariates: expected a list"):
        GaussianRegression("hour")
    with pytest.raises(ValueError, match=r"^slope_scale: expected a finite number > 0"):
        GaussianRegression(NAMES, slope_scale=0.0)
    with pytest.raises(ValueError, match=r"^params\['sigma'\]: expected standard deviations"):
        hp.HMM(2, emission).validate_params(dict(PARAMS, sigma=torch.tensor([1.0, -1.0])))
    with pytest.raises(ValueError, match=r"^emission_covariates: a regression of univariate"):
        hp.Gaussian(dim=2).with_covariates(NAMES)
    with pytest.raises(ValueError, match=r"^emission_covariates: .* has no emission regression"):
        hp.Gamma().with_covariates(NAMES)
    with pytest.raises(ValueError, match=r"^covariates: .* needs the covariates"):
        hp.simulate(hp.HMM(2, emission), PARAMS, [5], seed=0)
