"""Viterbi training (hard EM): a fixed point of decode-then-count, same Fit shape as EM."""

import numpy as np
import pytest
import torch

from hmm_pyro import HMM, Categorical, Gaussian, Prior, simulate
from hmm_pyro.learning import fit_supervised, fit_viterbi_training


@pytest.fixture(scope="module")
def gaussian_problem():
    hmm = HMM(3, Gaussian(), Prior(mu_loc=0.0, mu_scale=5.0))
    truth = {
        "pi": torch.tensor([0.3, 0.3, 0.4], dtype=torch.float64),
        "A": torch.tensor(
            [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]], dtype=torch.float64
        ),
        "mu": torch.tensor([-4.0, 0.0, 4.0], dtype=torch.float64),
        "sigma": torch.tensor([0.7, 0.5, 1.0], dtype=torch.float64),
    }
    data, states = simulate(hmm, truth, [150, 120, 100], seed=3)
    return hmm, hmm.prepare_data(data), truth, states


def test_converges_to_a_decode_and_count_fixed_point(gaussian_problem):
    hmm, data, truth, _ = gaussian_problem
    fit = fit_viterbi_training(hmm, data, restarts=3, seed=0, progress=False)
    assert fit.method == "viterbi_training"
    best = fit.attrs["best_restart"]
    assert fit.attrs["converged"][best] and fit.attrs["status"][best] == "converged"
    point = {k: v[0, 0] for k, v in fit.draws().items()}
    paths, scores = hmm.viterbi(point, data)
    again = fit_supervised(hmm, data, paths)
    for name, value in again.draws().items():
        torch.testing.assert_close(value[0, 0], point[name], rtol=1e-10, atol=1e-10)
    # The recorded objective is max_z log p(y, z | theta) + log p(theta) at the kept point.
    objective = fit.idata.sample_stats["objective"].values[0, 0, best]
    last = objective[fit.attrs["iterations"][best]]
    assert last == pytest.approx(float(scores.sum() + hmm.log_prior(point)), abs=1e-8)
    order = torch.argsort(point["mu"])
    torch.testing.assert_close(point["mu"][order], truth["mu"], atol=0.3, rtol=0)


def test_histories_are_monotone_and_shaped_like_em(gaussian_problem):
    hmm, data, _, _ = gaussian_problem
    fit = fit_viterbi_training(hmm, data, restarts=2, seed=1, progress=False)
    objective = fit.idata.sample_stats["objective"]
    assert objective.dims == ("chain", "draw", "restart", "iteration")
    assert "loglik" in fit.idata.sample_stats and "final_objective" in fit.idata.sample_stats
    for index in range(2):
        history = objective.values[0, 0, index]
        history = history[np.isfinite(history)]
        assert (np.diff(history) >= -1e-9 * np.abs(history[1:])).all()
    assert fit.attrs["decreases"] == [[], []]
    assert min(fit.attrs["init_min_hellinger"]) > 0


def test_recovers_states_when_emission_supports_are_disjoint():
    hmm = HMM(2, Categorical(4))
    truth = {
        "pi": torch.tensor([0.5, 0.5], dtype=torch.float64),
        "A": torch.tensor([[0.95, 0.05], [0.1, 0.9]], dtype=torch.float64),
        "B": torch.tensor([[0.7, 0.3, 0.0, 0.0], [0.0, 0.0, 0.4, 0.6]], dtype=torch.float64),
    }
    data, states = simulate(hmm, truth, [300], seed=2)
    fit = fit_viterbi_training(hmm, data, restarts=3, seed=0, progress=False)
    paths, _ = fit.viterbi()
    agreement = max(
        float((paths == states).double().mean()), float((paths == 1 - states).double().mean())
    )
    # Hard EM may keep an isolated symbol in the other state's run (that can score higher than
    # two transitions); here it is one step of 300.
    assert agreement >= 0.99
    B = fit.draws()["B"][0, 0]
    assert int((B == 0).sum()) >= 3  # counts, not posterior weights: exact zeros
    expected = fit_supervised(hmm, data, paths).draws()["B"][0, 0]
    torch.testing.assert_close(B, expected, rtol=0, atol=1e-12)
