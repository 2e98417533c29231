"""``fit_statistics``: log likelihood, log prior, free parameters, AIC and BIC of any fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.fit import fit_statistics

PARAMS = {
    "pi": torch.tensor([0.7, 0.3], dtype=torch.float64),
    "A": torch.tensor([[0.9, 0.1], [0.2, 0.8]], dtype=torch.float64),
    "rate": torch.tensor([2.0, 9.0], dtype=torch.float64),
}
DATA = hp.Sequences([[1.0, 3.0, np.nan, 10.0, 8.0], [2.0, 0.0]])  # 6 observed steps of 7


def _fit(prior=None, params=PARAMS, **attrs):
    hmm = hp.HMM(2, hp.Poisson(), prior=prior)
    return hmm, hp.Fit.from_params(hmm, DATA, params, method="em", attrs=attrs)


def test_point_estimate_by_hand():
    hmm, fit = _fit(hp.Prior(A=2.0, rate_shape=2.0))
    stats = fit_statistics(fit)
    log_lik = float(hmm.log_likelihood(PARAMS, DATA).sum())
    log_prior = float(hmm.log_prior(PARAMS))
    assert stats.log_likelihood == pytest.approx(log_lik, abs=1e-12)
    assert stats.log_prior == pytest.approx(log_prior, abs=1e-12)
    assert stats.log_posterior == pytest.approx(log_lik + log_prior, abs=1e-12)
    assert (stats.num_params, stats.num_observed) == (1 + 2 + 2, 6)
    assert stats.aic == pytest.approx(-2 * log_lik + 2 * 5, abs=1e-10)
    assert stats.bic == pytest.approx(-2 * log_lik + 5 * math.log(6), abs=1e-10)
    assert stats.log_likelihood_sd is None and not stats.maximum_likelihood


def test_stationary_maximum_likelihood_has_no_prior_and_fewer_parameters():
    _, fit = _fit(hp.Prior(pi=1.0, A=1.0), initial="stationary", emission_prior=False)
    stats = fit_statistics(fit)
    assert stats.maximum_likelihood and stats.log_prior is None and stats.log_posterior is None
    assert stats.num_params == 2 + 2  # A's two free entries and two rates; pi is A's
    assert stats.aic == pytest.approx(-2 * stats.log_likelihood + 8, abs=1e-10)


def test_without_the_emission_prior_only_pi_and_A_terms_count():
    hmm, fit = _fit(hp.Prior(A=3.0, rate_shape=5.0), emission_prior=False)
    terms = hmm.log_prior_terms(PARAMS)
    stats = fit_statistics(fit)
    assert not stats.maximum_likelihood
    assert stats.log_prior == pytest.approx(float(terms["pi"] + terms["A"]), abs=1e-12)


def test_draws_give_means_and_no_information_criteria():
    draws = {name: torch.stack([value, value.flip(0)])[None] for name, value in PARAMS.items()}
    draws["rate"] = torch.tensor([[[2.0, 9.0], [3.0, 8.0]]], dtype=torch.float64)
    draws["pi"], draws["A"] = PARAMS["pi"].expand(1, 2, 2), PARAMS["A"].expand(1, 2, 2, 2)
    hmm, fit = _fit(params=draws, labels="aligned")
    per_draw = hmm.log_likelihood(draws, DATA).sum(-1).flatten()
    stats = fit_statistics(fit)
    assert stats.log_likelihood == pytest.approx(float(per_draw.mean()), abs=1e-12)
    assert stats.log_likelihood_sd == pytest.approx(float(per_draw.std()), abs=1e-12)
    assert stats.aic is None and stats.bic is None
    with pytest.raises(TypeError, match=r"fit: expected a hmm_pyro\.Fit"):
        fit_statistics(hmm)


def test_a_fit_to_a_store_that_keeps_some_sequences():
    """A streamed MAP records the whole-store log likelihood (AIC, no BIC: ``n`` unknown);
    otherwise the statistics say they cover the kept sequences only."""
    stream = {"num_sequences": 10}
    _, fit = _fit(stream=stream, log_likelihood_total=[-50.0, -40.0], best_restart=1)
    stats = fit_statistics(fit)
    assert (stats.log_likelihood, stats.sequences, stats.num_sequences) == (-40.0, 10, 10)
    assert stats.aic == 80.0 + 2 * 5 and stats.bic is None
    hmm, kept = _fit(stream=stream)
    stats = fit_statistics(kept)
    assert (stats.sequences, stats.num_sequences, stats.aic, stats.bic) == (2, 10, None, None)
    assert stats.log_likelihood == pytest.approx(float(hmm.log_likelihood(PARAMS, DATA).sum()))
