"""Agreement with hmmlearn (an independent C++ implementation) for fixed parameters."""

from __future__ import annotations

import numpy as np
import pytest

import hmm_pyro as hp

hmmlearn_hmm = pytest.importorskip("hmmlearn.hmm")

LENGTHS = [12, 5, 1, 9]


def _hmmlearn_model(family: str, num_states: int, params: dict):
    p = {name: value.numpy() for name, value in params.items()}
    if family == "categorical":
        model = hmmlearn_hmm.CategoricalHMM(n_components=num_states)
        model.emissionprob_ = p["B"]
    elif family.startswith("gaussian"):
        model = hmmlearn_hmm.GaussianHMM(n_components=num_states, covariance_type="diag")
        model.means_ = p["mu"].reshape(num_states, -1)
        model.covars_ = p["sigma"].reshape(num_states, -1) ** 2  # diag: variances (K, D)
    else:
        model = hmmlearn_hmm.PoissonHMM(n_components=num_states)
        model.lambdas_ = p["rate"].reshape(num_states, -1)
    model.startprob_ = p["pi"]
    model.transmat_ = p["A"]
    return model


@pytest.fixture(params=["categorical", "gaussian", "gaussian2", "poisson", "poisson2"])
def case(request, make_hmm):
    hmm, params = make_hmm(request.param, num_states=3)
    data, _ = hp.simulate(hmm, params, LENGTHS, seed=11)
    concatenated = np.concatenate([np.asarray(row).reshape(len(row), -1) for row in data.to_list()])
    if request.param == "categorical":
        concatenated = concatenated.astype(np.int64)
    model = _hmmlearn_model(request.param, 3, params)
    return hmm, params, data, model, concatenated


def test_score_equals_summed_log_likelihood(case):
    hmm, params, data, model, X = case
    ours = hmm.log_likelihood(params, data).sum().item()
    theirs = model.score(X, LENGTHS)
    assert abs(ours - theirs) < 1e-6
    # per sequence as well
    start = 0
    loglik = hmm.log_likelihood(params, data)
    for n, length in enumerate(LENGTHS):
        assert abs(loglik[n].item() - model.score(X[start : start + length])) < 1e-6
        start += length


def test_viterbi_path_and_log_probability(case):
    hmm, params, data, model, X = case
    paths, scores = hmm.viterbi(params, data)
    logprob, their_path = model.decode(X, LENGTHS, algorithm="viterbi")
    ours = np.concatenate([paths[n, :length].numpy() for n, length in enumerate(LENGTHS)])
    np.testing.assert_array_equal(ours, their_path)
    assert abs(scores.sum().item() - logprob) < 1e-6


def test_posterior_marginals_equal_predict_proba(case):
    hmm, params, data, model, X = case
    gamma = hmm.posterior_marginals(params, data)
    ours = np.concatenate([gamma[n, :length].numpy() for n, length in enumerate(LENGTHS)])
    np.testing.assert_allclose(ours, model.predict_proba(X, LENGTHS), rtol=0, atol=1e-6)
