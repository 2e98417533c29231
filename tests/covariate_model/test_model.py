"""``CovariateHMM``: likelihood against brute force and Pyro, potential against Pyro's, checks."""

from __future__ import annotations

import itertools

import numpy as np
import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO, TraceEnum_ELBO
from pyro.infer.mcmc.util import initialize_model, potential_grad
from scipy.special import log_softmax
from scipy.stats import norm

import hmm_pyro as hp
from hmm_pyro.covariates import Covariates
from hmm_pyro.inference.potential import SITE, Potential


def small_data(lengths=(5, 3, 1), seed=0):
    """Gaussian sequences with two covariates (``hour``, ``temp``)."""
    rng = np.random.default_rng(seed)
    values = [rng.normal(size=length) for length in lengths]
    columns = [rng.normal(size=(length, 2)) for length in lengths]
    columns[-1] = columns[-1] + 1.0  # a one-step sequence: standardised over all steps
    covariates = Covariates(columns, names=["hour", "temp"])
    return hp.Sequences(values, covariates=covariates)


def brute_force(hmm, params, data):
    """Log likelihood and best path of each sequence, every path enumerated (numpy, by hand)."""
    x = data.covariates.values.numpy()
    beta = params["beta_A"].numpy()
    results = []
    for n, length in enumerate(data.lengths.tolist()):
        design = np.column_stack([np.ones(length), x[n, :length, 0]])  # intercept, hour
        log_A = log_softmax(np.einsum("tp,ijp->tij", design, beta), axis=-1)
        if "beta_pi" in params:
            first = np.array([1.0, x[n, 0, 1]])  # intercept, temp
            log_pi = log_softmax(params["beta_pi"].numpy() @ first)
        else:
            log_pi = np.log(params["pi"].numpy())
        y = data.values[n, :length, 0].numpy()
        log_lik = norm.logpdf(y[:, None], params["mu"].numpy(), params["sigma"].numpy())
        scores = {}
        for path in itertools.product(range(hmm.num_states), repeat=length):
            score = log_pi[path[0]] + log_lik[np.arange(length), path].sum()
            score += sum(log_A[t, path[t], path[t + 1]] for t in range(length - 1))
            scores[path] = score
        total = np.logaddexp.reduce(list(scores.values()))
        results.append((total, max(scores, key=scores.get), max(scores.values())))
    return results


@pytest.mark.parametrize("initial", [(), ("temp",)])
def test_log_likelihood_and_viterbi_equal_brute_force(initial):
    data = small_data()
    hmm = hp.CovariateHMM(3, hp.Gaussian(), ["hour"], initial_covariates=initial)
    params = hmm.sample_prior(seed=1)
    log_lik = hmm.log_likelihood(params, data)
    paths, scores = hmm.viterbi(params, data)
    for n, (total, best, score) in enumerate(brute_force(hmm, params, data)):
        assert abs(log_lik[n].item() - total) < 1e-9
        length = int(data.lengths[n])
        assert tuple(paths[n, :length].tolist()) == best
        assert abs(scores[n].item() - score) < 1e-9
    marginals = hmm.posterior_marginals(params, data)
    torch.testing.assert_close(marginals.sum(-1), data.mask.to(torch.float64))
    draws = hmm.sample_prior(2, seed=3)  # draws broadcast through every method
    assert hmm.log_likelihood(draws, data).shape == (2, 3)
    assert hmm.sample_paths(params, data, num_samples=2, seed=0).shape == (2, 3, 5)


@pytest.mark.parametrize("initial", [(), ("temp",)])
def test_enumerated_and_forward_pyro_models_give_the_log_joint(initial):
    """``TraceEnum_ELBO`` over ``pyro.markov`` states, parameters fixed by conditioning."""
    data = small_data(lengths=(4, 3))
    hmm = hp.CovariateHMM(2, hp.Gaussian(), ["hour"], initial_covariates=initial)
    params = hmm.sample_prior(seed=2)
    expected = (hmm.log_prior(params) + hmm.log_likelihood(params, data).sum()).item()
    for marginalize, elbo in (
        ("enumerate", TraceEnum_ELBO(max_plate_nesting=1)),
        ("forward", Trace_ELBO()),
    ):
        model = pyro.poutine.condition(hmm.model, data=params)
        loss = elbo.loss(lambda m=model, how=marginalize: m(data, how), lambda: None)
        assert abs(-loss - expected) < 1e-9, marginalize


def test_constant_covariates_give_the_homogeneous_hmm():
    lengths = (6, 4)
    values = small_data(lengths).values
    constant = Covariates(
        [np.full((length, 1), 0.7) for length in lengths], ["x"], standardize=False
    )
    data = hp.Sequences(
        [row[~np.isnan(row)] for row in values[..., 0].numpy()], covariates=constant
    )
    hmm = hp.CovariateHMM(3, hp.Gaussian(), ["x"])
    params = hmm.sample_prior(seed=4)
    matrix = hmm.transition_matrices(params, torch.tensor([[0.7]], dtype=torch.float64))[0]
    plain = hp.HMM(3, hp.Gaussian())
    same = {"pi": params["pi"], "A": matrix, "mu": params["mu"], "sigma": params["sigma"]}
    torch.testing.assert_close(
        hmm.log_likelihood(params, data), plain.log_likelihood(same, data), rtol=0, atol=1e-12
    )
    fb, fb_plain = hmm.forward_backward(params, data), plain.forward_backward(same, data)
    for a, b in zip(fb, fb_plain, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("initial", [(), ("temp",)])
def test_potential_equals_the_potential_pyro_builds(initial):
    """Value and gradient (with and without the Jacobian) against ``initialize_model``.

    The numba route (``regression_entry_potential``) with and without initial covariates.
    """
    data = small_data(lengths=(6, 4))
    hmm = hp.CovariateHMM(2, hp.Gaussian(), ["hour", "temp"], initial_covariates=initial)
    ours = Potential(hmm, data)
    assert ours.route == "numba"
    _, pyro_potential, _, _ = initialize_model(hmm.model, model_args=(ours.data,))
    for seed in range(2):
        params = hmm.sample_prior(seed=10 + seed)
        flat = ours.unconstrain(params)
        grads, value = potential_grad(ours, flat)
        z = ours.split(flat[SITE])
        expected_grads, expected = potential_grad(pyro_potential, z)
        assert abs(float(value) - float(expected)) < 1e-9
        assert torch.allclose(grads[SITE], ours.join(expected_grads), atol=1e-8, rtol=0)
        back = ours.constrain(flat)
        for name in params:
            torch.testing.assert_close(back[name], params[name], rtol=0, atol=1e-12)
    value, _ = ours.value_and_gradient(flat[SITE], jacobian=False)  # the MAP objective
    objective = hmm.log_prior(params) + hmm.log_likelihood(params, data).sum()
    assert abs(float(value) - float(objective)) < 1e-9


def test_simulated_paths_follow_the_covariates():
    """Coefficients of +-60 make the chain switch exactly where the covariate says so."""
    x = np.array([-1.0, -1.0, 1.0, 1.0, -1.0, 1.0, -1.0, -1.0])
    covariates = Covariates([x], ["x"], standardize=False)
    hmm = hp.CovariateHMM(2, hp.Gaussian(), ["x"])
    beta = torch.zeros(2, 2, 2, dtype=torch.float64)
    beta[0, 1] = torch.tensor([0.0, 60.0])  # leave state 0 when x > 0
    beta[1, 0] = torch.tensor([0.0, -60.0])  # leave state 1 when x < 0
    params = {
        "pi": torch.tensor([1.0, 0.0], dtype=torch.float64),
        "beta_A": beta,
        "mu": torch.tensor([0.0, 5.0], dtype=torch.float64),
        "sigma": torch.ones(2, dtype=torch.float64),
    }
    data, states = hp.simulate(hmm, params, covariates=covariates, seed=0)
    # the matrix out of step t follows x_t: state t + 1 is 1 exactly when x_t > 0
    assert states[0].tolist() == [0, 0, 0, 1, 1, 0, 1, 0]
    assert data.covariates is covariates
    with pytest.raises(ValueError, match=r"^covariates: CovariateHMM"):
        hp.simulate(hmm, params, lengths=[8])


def test_description_config_and_checks():
    hmm = hp.CovariateHMM(3, hp.Poisson(), ["hour"], initial_covariates=["temp"])
    assert hmm.param_names == ("beta_pi", "beta_A", "rate")
    assert hmm.num_free_params() == 2 * 2 + 3 * 2 * 2 + 3
    assert hmm.param_coords()["transition_term"] == ["intercept", "hour"]
    again = hp.HMM.from_config(hmm.to_config())
    assert isinstance(again, hp.CovariateHMM) and again.to_config() == hmm.to_config()
    params = hmm.sample_prior(seed=0)
    bad = dict(params, beta_A=params["beta_A"] + 1.0)
    with pytest.raises(ValueError, match=r"^params\['beta_A'\]: expected zeros on the diagonal"):
        hmm.validate_params(bad)
    with pytest.raises(ValueError, match=r"^params\['beta_pi'\]: expected columns summing"):
        hmm.validate_params(dict(params, beta_pi=params["beta_pi"] + 1.0))
    with pytest.raises(ValueError, match=r"^prior: \['stickiness'\] set"):
        hp.CovariateHMM(2, hp.Poisson(), ["hour"], prior=hp.Prior(stickiness=3.0))
    with pytest.raises(ValueError, match=r"^num_states: a CovariateHMM needs at least 2 states"):
        hp.CovariateHMM(1, hp.Poisson(), ["hour"])
    with pytest.raises(ValueError, match=r"^transition_covariates: 'intercept' is always"):
        hp.CovariateHMM(2, hp.Poisson(), ["intercept"])
    with pytest.raises(ValueError, match=r"^slope_scale: expected a number finite and > 0"):
        hp.CoefficientPrior(slope_scale=0.0)
    counts = hp.Sequences([[1, 2, 3]])
    with pytest.raises(ValueError, match=r"^data: CovariateHMM\(.*needs covariates"):
        hmm.prepare_data(counts)
    other = counts.with_covariates(Covariates([np.arange(3.0)], ["wind"]))
    with pytest.raises(ValueError, match=r"^transition_covariates: \['hour'\] not among"):
        hmm.prepare_data(other)
    windy = hp.CovariateHMM(2, hp.Poisson(), ["wind"])
    with pytest.raises(ValueError, match=r"^hmm: CovariateHMM.* fit_map, fit_nuts or fit_svi"):
        hp.fit_em(windy, other)
    with pytest.raises(ValueError, match=r"^hmm: fit_svi_stream does not carry covariates"):
        hp.fit_svi_stream(windy, other)
