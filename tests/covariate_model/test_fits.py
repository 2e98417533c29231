"""Fits of ``CovariateHMM``: MAP recovery, a short NUTS run, SVI, ArviZ output, new data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.covariates import Covariates

pytestmark = pytest.mark.xdist_group("covariate_fits")

BETA = torch.tensor([[[0.0, 0.0], [-2.0, 1.0]], [[-2.5, -1.0], [0.0, 0.0]]], dtype=torch.float64)
"""Planted transition coefficients: state 0 is left more often when ``hour`` is high, state 1
when it is low (one standard deviation changes the odds by e = 2.7)."""


def planted(length: int, seed: int) -> tuple[hp.CovariateHMM, dict, hp.Sequences]:
    """One sequence with a daily cycle as covariate, two well-separated Gaussian states."""
    hmm = hp.CovariateHMM(2, hp.Gaussian(), ["hour"])
    truth = {
        "pi": torch.tensor([0.5, 0.5], dtype=torch.float64),
        "beta_A": BETA,
        "mu": torch.tensor([-2.0, 2.0], dtype=torch.float64),
        "sigma": torch.ones(2, dtype=torch.float64),
    }
    steps = np.arange(length)
    covariates = Covariates([np.sin(2 * np.pi * steps / 24)], ["hour"])
    data, _ = hp.simulate(hmm, truth, covariates=covariates, seed=seed)
    return hmm, truth, data


def by_mean(params: dict) -> dict:
    """Relabel a point estimate so that state 0 has the lower mean (the planted order)."""
    order = torch.argsort(params["mu"])
    beta = params["beta_A"][order][:, order]
    return {"beta_A": beta, "mu": params["mu"][order]}


def test_map_recovers_the_planted_coefficients():
    """3000 steps (~500 switches): sampling sd of each coefficient ~0.1 (the MAP errors of 8
    simulated data sets of 2000 steps had sd 0.10-0.17, so 0.08-0.14 here); the tolerance 0.5
    is about 4 sd, so a coefficient off by 0.5 or more (a slope of the wrong sign is off by 2)
    fails."""
    hmm, _, data = planted(3000, seed=11)
    fit = hp.fit_map(hmm, data, seed=0, restarts=1, progress=False)
    estimate = by_mean(fit.posterior_mean())
    off = (estimate["beta_A"] - BETA).abs()
    assert off.max() < 0.5, estimate["beta_A"]
    assert (estimate["beta_A"].diagonal(dim1=0, dim2=1) == 0).all()
    # the transition probabilities at hour = 0 (original scale) against the planted ones
    summary = fit.transition_matrix({"hour": 0.0})
    rows = data.covariates.standardize_rows({"hour": 0.0})
    truth = hmm.transition_matrices({"beta_A": BETA}, rows)[0]
    order = torch.argsort(fit.posterior_mean()["mu"])
    torch.testing.assert_close(summary.mean[order][:, order], truth, rtol=0, atol=0.05)


@pytest.fixture(scope="module")
def nuts_fit():
    """2 chains x (40 + 40) draws on 200 steps."""
    hmm, truth, data = planted(200, seed=3)
    fit = hp.fit_nuts(
        hmm, data, chains=2, warmup=40, draws=40, seed=2, progress=False, parallel=False
    )
    return hmm, truth, data, fit


def test_nuts_posterior_is_centred_on_the_posterior_mode(nuts_fit):
    """NUTS and MAP on the same data: each coefficient's posterior mean within 0.75 posterior
    sds of the mode found by L-BFGS.

    200 steps (~35 switches) leave the posterior close to normal (mean and mode agree to about
    0.1 sd); the Monte Carlo error of the mean of 80 draws is about 0.15 sd. A sampler on the
    wrong potential or coordinates (a wrong sign, scale or transform of a coefficient) is off
    by more. Recovery of planted values is the MAP test above (3000 steps); coverage of the
    intervals is measured by ``benchmarks/covariate_coverage.py`` (20+ replications).
    """
    hmm, _, data, fit = nuts_fit
    assert fit.labelling == "aligned"
    draws = fit.draws()["beta_A"].reshape(-1, 2, 2, 2)
    order = torch.argsort(fit.posterior_mean()["mu"])
    draws = draws[:, order][:, :, order]
    mode = by_mean(hp.fit_map(hmm, data, seed=0, restarts=2, progress=False).posterior_mean())
    for i, j in ((0, 1), (1, 0)):
        z = (draws[:, i, j].mean(0) - mode["beta_A"][i, j]) / draws[:, i, j].std(0)
        assert (z.abs() < 0.75).all(), (i, j, z)


def test_arviz_output_names_the_coefficients_and_round_trips(nuts_fit, tmp_path):
    _hmm, _, data, fit = nuts_fit
    posterior = fit.idata.posterior
    assert posterior["beta_A"].dims == ("chain", "draw", "state", "state_to", "transition_term")
    assert posterior["transition_term"].values.tolist() == ["intercept", "hour"]
    constant = fit.idata.constant_data
    assert constant["covariates"].dims == ("sequence", "time", "covariate")
    loaded = hp.load(fit.save(tmp_path / "fit.nc"))
    assert isinstance(loaded.hmm, hp.CovariateHMM)
    assert loaded.data.covariates.same_scale(data.covariates)
    torch.testing.assert_close(loaded.data.covariates.values, data.covariates.values)
    torch.testing.assert_close(loaded.draws()["beta_A"], fit.draws()["beta_A"])
    stationary = loaded.stationary({"hour": [-1.0, 1.0]})
    assert stationary.mean.shape == (2, 2)
    torch.testing.assert_close(stationary.mean.sum(-1), torch.ones(2, dtype=torch.float64))
    assert (stationary.lower <= stationary.mean).all() and (
        stationary.mean <= stationary.upper
    ).all()


def test_new_data_are_put_on_the_fitted_scale(nuts_fit):
    """Decoding new sequences uses the fit's standardisation, not the new data's own."""
    _hmm, _truth, data, fit = nuts_fit
    part = data.select([0])
    raw = part.covariates.raw[0, :100].numpy()
    own = hp.Sequences([part[0][:100]], covariates=Covariates([raw], ["hour"]))
    assert not own.covariates.same_scale(data.covariates)
    coded = own.with_covariates(own.covariates.standardize_like(data.covariates))
    torch.testing.assert_close(fit.state_probs(own), fit.state_probs(coded), rtol=0, atol=0)


def test_svi_fits_the_covariate_model(nuts_fit):
    hmm, _, data, _ = nuts_fit
    fit = hp.fit_svi(hmm, data, steps=150, restarts=1, seed=0, num_draws=20, progress=False)
    assert fit.draws()["beta_A"].shape == (1, 20, 2, 2, 2)
    assert (fit.draws()["beta_A"].diagonal(dim1=2, dim2=3) == 0).all()
