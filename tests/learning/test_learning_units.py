"""Units of classical learning: the objective, the M-step updates, the convergence monitor."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize, minimize_scalar

from hmm_pyro import HMM, Categorical, Gaussian, Poisson, Prior
from hmm_pyro.emissions.gaussian import _ecm_step
from hmm_pyro.learning import ConvergenceMonitor
from hmm_pyro.learning.mstep import dirichlet_map, emission_map, maximize
from hmm_pyro.learning.objective import (
    dirichlet_log_density,
    log_prior,
    prior_tensors,
    stationary_distribution,
)
from hmm_pyro.learning.statistics import Statistics

DTYPE = torch.float64
PRIOR = Prior(
    pi=[1.5, 2.0, 1.0],
    A=2.0,
    stickiness=3.0,
    B=0.7,
    mu_loc=[-1.0, 0.0, 2.0],
    mu_scale=1.5,
    variance_shape=3.0,
    variance_scale=0.5,
    rate_shape=2.5,
    rate_rate=0.3,
)
MODELS = {
    "categorical": HMM(3, Categorical(4), PRIOR),
    "gaussian": HMM(3, Gaussian(), PRIOR),
    "gaussian_diag": HMM(3, Gaussian(dim=2), PRIOR),
    "poisson": HMM(3, Poisson(), PRIOR),
    "poisson_multi": HMM(3, Poisson(dim=2), PRIOR),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_log_prior_is_exactly_the_models_log_prior(name):
    hmm = MODELS[name]
    prior = prior_tensors(hmm)
    for seed in range(3):
        params = hmm.sample_prior(seed=seed)
        ours = log_prior(hmm, params, prior)
        torch.testing.assert_close(ours, hmm.log_prior(params), rtol=1e-12, atol=1e-10)
    terms = hmm.log_prior_terms(params)
    without = log_prior(hmm, params, prior, emission_prior=False)
    torch.testing.assert_close(without, terms["pi"] + terms["A"], rtol=1e-12, atol=1e-10)


def test_dirichlet_density_drops_only_infinite_terms_of_zero_entries():
    concentration = torch.tensor([[0.5, 2.0, 1.0]], dtype=DTYPE)
    interior = torch.tensor([[0.2, 0.5, 0.3]], dtype=DTYPE)
    exact = torch.distributions.Dirichlet(concentration).log_prob(interior).sum()
    torch.testing.assert_close(dirichlet_log_density(interior, concentration), exact)
    face = torch.tensor([[0.0, 0.6, 0.4]], dtype=DTYPE)
    assert math.isinf(float(torch.distributions.Dirichlet(concentration).log_prob(face)))
    finite_part = math.log(0.6) + math.lgamma(3.5) - math.lgamma(0.5) - math.lgamma(2.0)
    assert float(dirichlet_log_density(face, concentration)) == pytest.approx(finite_part)
    # A zero where alpha > 1 has zero density: -inf, not dropped.
    other = torch.tensor([[0.4, 0.0, 0.6]], dtype=DTYPE)
    assert float(dirichlet_log_density(other, concentration)) == -math.inf


def test_dirichlet_map_clamps_renormalises_and_keeps_empty_rows():
    counts = torch.tensor([[3.0, 0.2, 0.0], [0.0, 0.0, 0.0]], dtype=DTYPE)
    concentration = torch.tensor(0.5, dtype=DTYPE)
    previous = torch.tensor([[0.3, 0.3, 0.4], [0.1, 0.2, 0.7]], dtype=DTYPE)
    result = dirichlet_map(counts, concentration, previous)
    # Row 0: pseudo-counts 2.5, -0.3 -> 0, -0.5 -> 0.
    torch.testing.assert_close(result[0], torch.tensor([1.0, 0.0, 0.0], dtype=DTYPE))
    torch.testing.assert_close(result[1], previous[1])  # no pseudo-count at all: unchanged
    flat = dirichlet_map(counts, torch.tensor(1.0, dtype=DTYPE))
    torch.testing.assert_close(flat[0], torch.tensor([3.0, 0.2, 0.0], dtype=DTYPE) / 3.2)
    torch.testing.assert_close(flat[1], torch.full((3,), 1 / 3, dtype=DTYPE))


def _gaussian_stats(n, s1, s2):
    tensor = lambda v: torch.tensor([[v]], dtype=DTYPE)  # noqa: E731
    return Statistics(
        torch.ones(1, dtype=DTYPE),
        torch.ones(1, 1, dtype=DTYPE),
        {"n": tensor(n), "s1": tensor(s1), "s2": tensor(s2), "shift": torch.zeros(1, dtype=DTYPE)},
    )


def _gaussian_objective(hmm, y, w):
    priors = hmm.prior_distributions()

    def objective(mu, sigma):
        loglik = (w * (-0.5 * ((y - mu) / sigma) ** 2 - math.log(sigma))).sum()
        prior = priors["mu"].log_prob(torch.tensor([mu], dtype=DTYPE)) + priors["sigma"].log_prob(
            torch.tensor([sigma], dtype=DTYPE)
        )
        return loglik + float(prior)

    return objective


def test_one_ecm_cycle_maximises_each_exact_conditional_objective():
    """mu | sigma, then sigma | new mu: each beats a numerical optimiser on the exact density."""
    hmm = HMM(
        1, Gaussian(), Prior(mu_loc=1.0, mu_scale=0.8, variance_shape=2.5, variance_scale=1.3)
    )
    rng = np.random.default_rng(0)
    y = rng.normal(2.0, 1.5, size=7)
    w = rng.uniform(0.2, 1.0, size=7)
    stats = _gaussian_stats(w.sum(), (w * y).sum(), (w * y * y).sum())
    objective = _gaussian_objective(hmm, y, w)
    mu0, sigma0 = 0.3, 2.0
    prior = prior_tensors(hmm).emission
    mu, var = _ecm_step(
        {name: value.numpy() for name, value in stats.emission.items()},
        {name: value.numpy() for name, value in prior.items()},
        np.array([[mu0]]),
        np.array([[sigma0**2]]),
        True,
    )
    options = {"xatol": 1e-10}
    best_mu = minimize_scalar(
        lambda m: -objective(m, sigma0), bounds=(-10, 10), method="bounded", options=options
    ).x
    new_mu = float(mu.item())
    assert new_mu == pytest.approx(best_mu, abs=1e-6)
    best_sigma = minimize_scalar(
        lambda s: -objective(new_mu, s), bounds=(1e-3, 20), method="bounded", options=options
    ).x
    assert float(np.sqrt(var).item()) == pytest.approx(best_sigma, abs=1e-6)


def test_gaussian_m_step_reaches_the_joint_maximum():
    hmm = HMM(
        1, Gaussian(), Prior(mu_loc=1.0, mu_scale=0.8, variance_shape=2.5, variance_scale=1.3)
    )
    rng = np.random.default_rng(1)
    y = rng.normal(2.0, 1.5, size=9)
    w = rng.uniform(0.2, 1.0, size=9)
    stats = _gaussian_stats(w.sum(), (w * y).sum(), (w * y * y).sum())
    objective = _gaussian_objective(hmm, y, w)
    previous = {"mu": torch.tensor([0.3], dtype=DTYPE), "sigma": torch.tensor([2.0], dtype=DTYPE)}
    new = emission_map(hmm, stats, prior_tensors(hmm), previous, emission_prior=True)
    found = minimize(
        lambda x: -objective(x[0], math.exp(x[1])),
        x0=[0.0, 0.0],
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 4000},
    )
    assert float(new["mu"][0]) == pytest.approx(found.x[0], abs=1e-5)
    assert float(new["sigma"][0]) == pytest.approx(math.exp(found.x[1]), abs=1e-5)
    assert objective(float(new["mu"][0]), float(new["sigma"][0])) >= -found.fun - 1e-10


def test_poisson_update_maximises_the_exact_objective():
    hmm = HMM(1, Poisson(), Prior(rate_shape=2.5, rate_rate=0.4))
    prior = hmm.prior_distributions()["rate"]
    y = np.array([0, 3, 5, 2, 7])
    w = np.array([0.9, 0.3, 1.0, 0.5, 0.2])
    stats = Statistics(
        torch.ones(1, dtype=DTYPE),
        torch.ones(1, 1, dtype=DTYPE),
        {
            "n": torch.tensor([[w.sum()]], dtype=DTYPE),
            "s1": torch.tensor([[(w * y).sum()]], dtype=DTYPE),
            "s2": torch.tensor([[(w * y * y).sum()]], dtype=DTYPE),
            "shift": torch.zeros(1, dtype=DTYPE),
        },
    )
    new = emission_map(hmm, stats, prior_tensors(hmm), None, emission_prior=True)

    def objective(rate):
        return (w * (y * math.log(rate) - rate)).sum() + float(
            prior.log_prob(torch.tensor([rate], dtype=DTYPE))
        )

    best = minimize_scalar(
        lambda r: -objective(r), bounds=(1e-6, 50), method="bounded", options={"xatol": 1e-10}
    ).x
    assert float(new["rate"][0]) == pytest.approx(best, abs=1e-6)


def test_stationary_distribution_and_stationary_m_step():
    A = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]], dtype=DTYPE)
    pi = stationary_distribution(A)
    torch.testing.assert_close(pi @ A, pi)
    assert float(pi.sum()) == pytest.approx(1.0)
    hmm = HMM(3, Categorical(2))
    prior = prior_tensors(hmm)
    stats = Statistics(
        torch.tensor([5.0, 0.0, 1.0], dtype=DTYPE),
        torch.tensor([[40.0, 5.0, 1.0], [6.0, 30.0, 4.0], [2.0, 5.0, 7.0]], dtype=DTYPE),
        {"counts": torch.tensor([[10.0, 1.0], [2.0, 9.0], [5.0, 5.0]], dtype=DTYPE)},
    )
    previous = hmm.sample_prior(seed=0)
    params = maximize(hmm, stats, prior, previous, initial="stationary")
    torch.testing.assert_close(params["pi"] @ params["A"], params["pi"])

    def q(A_):
        pi_ = stationary_distribution(A_)
        return float((stats.transitions * A_.log()).sum() + (stats.start * pi_.log()).sum())

    free = maximize(hmm, stats, prior, previous, initial="free")["A"]
    assert q(params["A"]) >= q(previous["A"].double()) - 1e-12
    assert q(params["A"]) >= q(free) - 1e-12  # at least as good as ignoring the pi term
    assert q(params["A"]) > q(free) + 1e-6  # and strictly better here (the pi term matters)


class TestMonitor:
    def test_tolerance_rule_and_max_iter(self):
        monitor = ConvergenceMonitor(tol=1e-3, max_iter=10)
        assert not monitor.record(-100.0, -100.0)
        assert not monitor.record(-50.0, -50.0)
        assert monitor.record(-50.01, -49.99)  # relative change 2e-4 <= 1e-3
        assert monitor.converged and monitor.status == "converged" and monitor.iterations == 2
        capped = ConvergenceMonitor(tol=0.0, max_iter=2)
        assert not capped.record(-3.0, -3.0)
        assert not capped.record(-2.0, -2.0)
        assert capped.record(-1.0, -1.0)
        assert capped.status == "max_iter" and not capped.converged
        none = ConvergenceMonitor(tol=0.0, max_iter=0)
        assert none.record(-1.0, -1.0) and none.status == "max_iter"

    def test_refuses_convergence_after_a_decrease(self):
        monitor = ConvergenceMonitor(tol=1e-6, max_iter=10)
        monitor.record(-100.0, -100.0)
        monitor.record(-90.0, -90.0)
        monitor.record(-95.0, -95.0)  # decrease far beyond round-off
        monitor.record(-94.0, -94.0)
        assert monitor.record(-94.0, -94.0)
        assert monitor.status == "converged"
        assert monitor.decreases == [2]
        assert not monitor.converged

    def test_round_off_is_not_a_decrease(self):
        monitor = ConvergenceMonitor(tol=0.0, max_iter=5)
        monitor.record(-1e4, -1e4)
        monitor.record(-1e4 - 1e-7, -1e4 - 1e-7)  # relative 1e-11
        assert monitor.decreases == []

    def test_non_finite_stops_and_is_reported(self):
        for bad in (float("nan"), float("inf"), -float("inf")):
            monitor = ConvergenceMonitor(tol=1e-6, max_iter=10)
            monitor.record(-10.0, -10.0)
            assert monitor.record(bad, bad)
            assert monitor.status == "non_finite" and not monitor.converged
        monitor = ConvergenceMonitor(tol=1e-6, max_iter=10)
        monitor.record(-10.0, -10.0)
        assert monitor.record(-5.0, -5.0, params_finite=False)
        assert monitor.status == "non_finite"

    def test_moving_onto_a_new_boundary_face_is_not_a_decrease(self):
        monitor = ConvergenceMonitor(tol=0.0, max_iter=5)
        monitor.record(-10.0, -10.0, boundary=0)
        monitor.record(-10.5, -12.0, boundary=1)  # full density jumped to +inf
        monitor.record(-10.4, -12.5, boundary=1)  # same face: a real decrease
        assert monitor.decreases == [2]


def test_symbol_counts_dense_and_sparse_paths_agree(monkeypatch):
    import hmm_pyro.emissions.categorical as categorical
    import hmm_pyro.learning.statistics as statistics

    hmm = HMM(3, Categorical(4))
    data = hmm.prepare_data([[0, 1, 3, np.nan, 2, 2], [3, 0, 1]])
    weights = torch.rand(2, 6, 3, dtype=DTYPE, generator=torch.Generator().manual_seed(0))
    weights = weights * data.mask[..., None]
    zeros = (torch.zeros(3, dtype=DTYPE), torch.zeros(3, 3, dtype=DTYPE))
    dense = statistics.weighted_statistics(hmm, data, weights, *zeros).emission["counts"]
    monkeypatch.setattr(categorical, "_STATISTICS_ONE_HOT_LIMIT", 0)
    sparse = statistics.weighted_statistics(hmm, data, weights, *zeros).emission["counts"]
    expected = torch.zeros(3, 4, dtype=DTYPE)
    for n, row in enumerate(data.to_list()):
        for t, symbol in enumerate(row):
            if not np.isnan(symbol):
                expected[:, int(symbol)] += weights[n, t]
    torch.testing.assert_close(dense, expected)
    torch.testing.assert_close(sparse, expected)
