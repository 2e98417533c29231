"""EM's MAP is the mode fit_map finds (L-BFGS and Adam), and init="em" for the other runners.

Tolerance of the MAP comparison: 1e-4 on every parameter and 1e-6 on the log posterior. EM is run
to a relative change of 1e-12, so it sits on the mode. ``fit_map`` optimises the same density
(the forward-algorithm likelihood plus ``hmm.log_prior``, with no Jacobian: a point estimate in
the constrained space): L-BFGS stops when every gradient coordinate is below 1e-6; Adam (Pyro's
SVI with ``AutoDelta``) runs at a constant learning rate and stops when its windowed loss
changes by < 1e-7, which leaves errors of a few 1e-6 in the parameters.
"""

import pytest
import torch

from hmm_pyro import HMM, Gaussian, Poisson, Prior, fit_map, fit_nuts, fit_svi, simulate
from hmm_pyro.learning import fit_em, initial_params
from hmm_pyro.starts import MIN_START_SEPARATION, min_separation


@pytest.fixture(scope="module")
def gaussian_problem():
    hmm = HMM(2, Gaussian(), Prior(mu_loc=0.0, mu_scale=5.0, pi=2.0, A=2.0))
    truth = {
        "pi": torch.tensor([0.5, 0.5], dtype=torch.float64),
        "A": torch.tensor([[0.9, 0.1], [0.2, 0.8]], dtype=torch.float64),
        "mu": torch.tensor([-2.0, 2.0], dtype=torch.float64),
        "sigma": torch.tensor([0.8, 1.2], dtype=torch.float64),
    }
    data, _ = simulate(hmm, truth, [80, 60], seed=1)
    return hmm, hmm.prepare_data(data)


def _sorted(params):
    order = torch.argsort(params["mu"])
    return {
        "pi": params["pi"][order],
        "A": params["A"][order][:, order],
        "mu": params["mu"][order],
        "sigma": params["sigma"][order],
    }


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_em_map_agrees_with_fit_map(gaussian_problem, optimizer):
    hmm, data = gaussian_problem
    em = fit_em(hmm, data, seed=0, tol=1e-12, max_iter=1000, progress=False)
    point = fit_map(hmm, data, optimizer, steps=2000, restarts=1, seed=0, progress=False)
    ours = _sorted({k: v[0, 0] for k, v in em.draws().items()})
    theirs = _sorted({k: v[0, 0] for k, v in point.draws().items()})
    for name in ours:
        torch.testing.assert_close(theirs[name], ours[name], rtol=0, atol=1e-4, msg=name)

    def log_posterior(params):
        return float(hmm.log_likelihood(params, data).sum() + hmm.log_prior(params))

    assert log_posterior(theirs) == pytest.approx(log_posterior(ours), abs=1e-6)
    assert log_posterior(theirs) <= log_posterior(ours) + 1e-9  # EM is on the mode


def test_em_init_is_a_valid_interior_separated_start(gaussian_problem):
    hmm, data = gaussian_problem
    start = initial_params(hmm, data, "em", seed=4)
    again = initial_params(hmm, data, "em", seed=4)
    for name, value in start.items():
        assert torch.equal(value, again[name])
        assert value.dtype == hmm.dtype
    hmm.validate_params(start)
    assert float(start["pi"].min()) > 0 and float(start["A"].min()) > 0
    assert float(min_separation(hmm, start)) > MIN_START_SEPARATION
    plain = initial_params(hmm, data, "data", seed=4)

    def log_posterior(params):
        return float(hmm.log_likelihood(params, data).sum() + hmm.log_prior(params))

    assert log_posterior(start) > log_posterior(plain)


def test_bayesian_runners_accept_init_em():
    hmm = HMM(2, Poisson())
    truth = hmm.sample_prior(seed=0)
    data, _ = simulate(hmm, truth, [40], seed=1)
    for runner in (fit_map, fit_svi):
        fit = runner(hmm, data, steps=50, restarts=1, seed=0, init="em", progress=False)
        assert fit.attrs["init"] == "em"
    nuts = fit_nuts(hmm, data, chains=1, warmup=10, draws=5, seed=0, init="em", progress=False)
    assert nuts.attrs["init"] == "em"
    assert min(nuts.attrs["init_min_hellinger"]) > MIN_START_SEPARATION
