"""fit_em as a whole: global optimum with restarts, symmetric starts, the Fit, failure reports."""

import itertools

import numpy as np
import pytest
import torch

from hmm_pyro import HMM, Categorical, Fit, Gaussian, Poisson, Prior, simulate
from hmm_pyro.learning import fit_em, run_em
from hmm_pyro.starts import MIN_START_SEPARATION


@pytest.fixture(scope="module")
def poisson_problem():
    hmm = HMM(2, Poisson())
    truth = {
        "pi": torch.tensor([0.5, 0.5], dtype=torch.float64),
        "A": torch.tensor([[0.9, 0.1], [0.2, 0.8]], dtype=torch.float64),
        "rate": torch.tensor([2.0, 7.0], dtype=torch.float64),
    }
    data, _ = simulate(hmm, truth, [60, 60, 60, 60], seed=5)
    return hmm, hmm.prepare_data(data)


def _grid_optimum(hmm, data):
    """Brute force: the log posterior on a grid, then EM polish of the best grid point."""
    rates = np.linspace(0.5, 12.0, 24)
    stays = np.linspace(0.05, 0.95, 10)
    firsts = np.array([0.05, 0.5, 0.95])
    rows = [
        (p, a, b, r1, r2)
        for p, a, b in itertools.product(firsts, stays, stays)
        for r1, r2 in itertools.combinations(rates, 2)
    ]
    grid = torch.tensor(rows, dtype=torch.float64)
    params = {
        "pi": torch.stack([grid[:, 0], 1 - grid[:, 0]], -1),
        "A": torch.stack(
            [
                torch.stack([grid[:, 1], 1 - grid[:, 1]], -1),
                torch.stack([1 - grid[:, 2], grid[:, 2]], -1),
            ],
            -2,
        ),
        "rate": grid[:, 3:5],
    }
    scores = hmm.log_likelihood(params, data).sum(-1) + hmm.log_prior(params)
    best = int(torch.argmax(scores))
    start = {name: value[best] for name, value in params.items()}
    polished = run_em(hmm, data, start, max_iter=2000, tol=1e-13)
    return polished.final_objective, polished.params


def test_restarts_reach_the_brute_force_global_optimum(poisson_problem):
    hmm, data = poisson_problem
    optimum, point = _grid_optimum(hmm, data)
    fit = fit_em(hmm, data, restarts=5, seed=1, tol=1e-10, max_iter=2000, progress=False)
    best = fit.attrs["best_restart"]
    final = fit.idata.sample_stats["final_objective"].values[0, 0]
    assert final[best] == pytest.approx(optimum, abs=1e-6)
    ours = {k: v[0, 0] for k, v in fit.draws().items()}
    order = torch.argsort(ours["rate"])
    torch.testing.assert_close(
        ours["rate"][order], torch.sort(point["rate"]).values, atol=1e-4, rtol=0
    )
    # Many restarts from prior draws find nothing better; some of them stop at a local optimum
    # (the problem is not trivially unimodal), and the best of them is the grid's optimum.
    many = fit_em(
        hmm, data, restarts=25, seed=2, init="prior", tol=1e-10, max_iter=2000, progress=False
    )
    finals = many.idata.sample_stats["final_objective"].values[0, 0]
    assert finals.max() == pytest.approx(optimum, abs=1e-6)
    assert finals.min() < optimum - 1.0
    assert all(many.attrs["converged"])


def test_identical_state_starts_are_rejected_and_recorded_separation_is_positive(poisson_problem):
    hmm, data = poisson_problem
    symmetric = {"pi": [0.5, 0.5], "A": [[0.5, 0.5], [0.5, 0.5]], "rate": [3.0, 3.0]}
    with pytest.raises(ValueError, match="identical"):
        fit_em(hmm, data, init=symmetric, progress=False)
    fit = fit_em(hmm, data, restarts=4, seed=0, max_iter=5, progress=False)
    separation = fit.attrs["init_min_hellinger"]
    assert len(separation) == 4
    assert min(separation) > MIN_START_SEPARATION


def test_the_fit_records_histories_and_attributes(poisson_problem):
    hmm, data = poisson_problem
    fit = fit_em(hmm, data, restarts=3, seed=7, max_iter=50, progress=False)
    assert isinstance(fit, Fit) and fit.method == "em"
    assert fit.num_chains == 1 and fit.num_draws == 1
    loglik = fit.idata.sample_stats["loglik"]
    objective = fit.idata.sample_stats["objective"]
    assert loglik.dims == ("chain", "draw", "restart", "iteration")
    assert objective.shape[:3] == (1, 1, 3)
    attrs = fit.attrs
    for key in (
        "init",
        "seed",
        "restart_seeds",
        "converged",
        "status",
        "iterations",
        "best_restart",
        "init_min_hellinger",
        "restart_params",
        "decreases",
    ):
        assert key in attrs, key
    assert attrs["init"] == "auto" and attrs["seed"] == 7 and len(attrs["restart_seeds"]) == 3
    assert attrs["emission_prior"] is True and attrs["initial"] == "free"
    for index, iterations in enumerate(attrs["iterations"]):
        history = objective.values[0, 0, index]
        assert np.isfinite(history[: iterations + 1]).all()
        assert np.isnan(history[iterations + 1 :]).all()
    best = attrs["best_restart"]
    point = {k: v[0, 0] for k, v in fit.draws().items()}
    np.testing.assert_allclose(point["rate"].numpy(), attrs["restart_params"]["rate"][best])
    # The kept point's objective is its restart's last history entry.
    lp = float(hmm.log_likelihood(point, data).sum() + hmm.log_prior(point))
    assert lp == pytest.approx(objective.values[0, 0, best, attrs["iterations"][best]], abs=1e-8)
    # Same seed, same result.
    again = fit_em(hmm, data, restarts=3, seed=7, max_iter=50, progress=False)
    torch.testing.assert_close(again.draws()["rate"], fit.draws()["rate"], rtol=0, atol=0)


def test_collapse_without_a_variance_prior_is_reported_not_hidden():
    hmm = HMM(2, Gaussian())
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0.0, 1.0, 40), [6.0, 6.0, 6.0]])
    start = {
        "pi": [0.5, 0.5],
        "A": [[0.9, 0.1], [0.1, 0.9]],
        "mu": [0.0, 6.0],
        "sigma": [1.0, 1e-3],
    }
    with pytest.warns(UserWarning, match="non-finite"):
        fit = fit_em(hmm, values, init=start, emission_prior=False, progress=False)
    assert fit.attrs["status"] == ["non_finite"]
    assert fit.attrs["converged"] == [False]
    # The same start with the variance prior is fine.
    fine = fit_em(hmm, values, init=start, progress=False)
    assert fine.attrs["status"] == ["converged"] and fine.attrs["converged"] == [True]


def test_sparse_dirichlet_prior_clamps_to_exact_zeros():
    hmm = HMM(2, Categorical(6), Prior(B=0.5))
    truth = {
        "pi": torch.tensor([0.5, 0.5], dtype=torch.float64),
        "A": torch.tensor([[0.95, 0.05], [0.05, 0.95]], dtype=torch.float64),
        "B": torch.tensor(
            [[0.5, 0.5, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.3, 0.3, 0.2, 0.2]], dtype=torch.float64
        ),
    }
    data, _ = simulate(hmm, truth, [200], seed=3)
    fit = fit_em(hmm, data, restarts=3, seed=0, progress=False)
    B = fit.draws()["B"][0, 0]
    assert int((B == 0).sum()) >= 6  # each symbol belongs to one state
    assert torch.allclose(B.sum(-1), torch.ones(2, dtype=torch.float64))
    assert all(not d for d in fit.attrs["decreases"])


def test_stationary_initial_ties_pi_to_A(poisson_problem):
    hmm, data = poisson_problem
    fit = fit_em(hmm, data, restarts=2, seed=0, initial="stationary", progress=False)
    point = {k: v[0, 0] for k, v in fit.draws().items()}
    torch.testing.assert_close(point["pi"] @ point["A"], point["pi"], rtol=1e-8, atol=1e-10)
    assert fit.attrs["initial"] == "stationary" and all(fit.attrs["converged"])
    with pytest.raises(ValueError, match="initial"):
        fit_em(HMM(2, Poisson(), Prior(A=0.5)), data, initial="stationary", progress=False)
    with pytest.raises(ValueError, match="initial"):
        fit_em(hmm, data, initial="steady", progress=False)


def test_argument_validation(poisson_problem):
    hmm, data = poisson_problem
    with pytest.raises(TypeError, match="hmm"):
        fit_em("model", data)
    with pytest.raises(ValueError, match="restarts"):
        fit_em(hmm, data, restarts=0)
    with pytest.raises(ValueError, match="tol"):
        fit_em(hmm, data, tol=-1.0)
    with pytest.raises(ValueError, match="init"):
        fit_em(hmm, data, init="median", progress=False)
    with pytest.raises(ValueError, match="data"):
        fit_em(hmm, [0.5, 1.5], progress=False)


def test_a_given_start_under_which_the_data_are_impossible_is_named():
    """Symbol 2 has probability zero in every state of the given start: EM's first E-step has
    nothing to work with, so the start is refused with one line instead of a warning after the
    run (found by the property tests: ``test_bad_input_properties.py``)."""
    from hmm_pyro.learning import fit_viterbi_training

    hmm = HMM(2, Categorical(num_symbols=3))
    init = {"pi": [0.5, 0.5], "A": [[0.9, 0.1], [0.1, 0.9]], "B": [[0.5, 0.5, 0.0]] * 2}
    data = [[0, 1, 0, 1], [2, 2, 0]]
    for fit in (fit_em, fit_viterbi_training):
        with pytest.raises(ValueError, match=r"^init: the data have zero probability .*sequence 1"):
            fit(hmm, data, init=init, max_iter=2, progress=False)
    init["B"] = [[0.5, 0.4, 0.1], [0.1, 0.4, 0.5]]
    assert isinstance(fit_em(hmm, data, init=init, max_iter=2, progress=False), Fit)
