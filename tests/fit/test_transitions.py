"""``Fit.transition_matrix`` and ``Fit.stationary``: summaries of draws at covariate values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.covariates import Covariates


@pytest.fixture(scope="module")
def draws_fit():
    """Two chains x two draws of a CovariateHMM, wrapped as a fit (labels declared aligned)."""
    rng = np.random.default_rng(0)
    hour = rng.normal(10.0, 3.0, size=(2, 12))
    covariates = Covariates([row[:, None] for row in hour], ["hour"])
    data = hp.Sequences(list(rng.normal(size=(2, 12))), covariates=covariates)
    hmm = hp.CovariateHMM(3, hp.Gaussian(), ["hour"])
    draws = hmm.sample_prior(4, seed=1)
    draws = {name: value.reshape(2, 2, *value.shape[1:]) for name, value in draws.items()}
    fit = hp.Fit.from_params(hmm, data, draws, attrs={"labels": "aligned"})
    return hmm, data, draws, fit


def by_hand(draws, hour, data):
    """Transition matrices of every draw at original-scale ``hour`` values: ``(4, M, K, K)``."""
    z = (
        torch.as_tensor(hour, dtype=torch.float64) - data.covariates.means[0]
    ) / data.covariates.sds[0]
    beta = draws["beta_A"].reshape(4, 3, 3, 2)
    eta = beta[..., 0][:, None] + beta[..., 1][:, None] * z[None, :, None, None]
    return eta.softmax(-1)


def test_transition_matrix_summarises_the_draws_at_original_scale_values(draws_fit):
    _hmm, data, draws, fit = draws_fit
    summary = fit.transition_matrix({"hour": [7.0, 13.0]}, level=0.5)
    matrices = by_hand(draws, [7.0, 13.0], data)
    torch.testing.assert_close(summary.mean, matrices.mean(0))
    quartiles = torch.quantile(matrices, torch.tensor([0.25, 0.75], dtype=torch.float64), dim=0)
    torch.testing.assert_close(summary.lower, quartiles[0])
    torch.testing.assert_close(summary.upper, quartiles[1])
    assert summary.level == 0.5 and summary.covariates["hour"].tolist() == [7.0, 13.0]
    one = fit.transition_matrix({"hour": 7.0})
    assert one.mean.shape == (3, 3)
    torch.testing.assert_close(one.mean, summary.mean[0])
    at_mean = fit.transition_matrix()  # every covariate at its mean
    mean_hour = data.covariates.means[0].item()
    torch.testing.assert_close(at_mean.mean, by_hand(draws, [mean_hour], data).mean(0)[0])


def test_stationary_distributions_solve_pi_A_equals_pi(draws_fit):
    _, data, draws, fit = draws_fit
    summary = fit.stationary({"hour": [5.0, 15.0]})
    matrices = by_hand(draws, [5.0, 15.0], data)
    # the stationary distribution as the left eigenvector of eigenvalue 1, per draw
    values, vectors = np.linalg.eig(matrices.transpose(-1, -2).numpy())
    index = np.abs(values - 1.0).argmin(-1)
    stationary = np.take_along_axis(vectors, index[..., None, None], -1)[..., 0].real
    stationary = stationary / stationary.sum(-1, keepdims=True)
    np.testing.assert_allclose(summary.mean.numpy(), stationary.mean(0), rtol=0, atol=1e-10)
    assert (summary.lower <= summary.mean).all() and (summary.mean <= summary.upper).all()


def test_a_model_without_covariates_summarises_A():
    hmm = hp.HMM(2, hp.Poisson())
    params = hmm.sample_prior(seed=0)
    fit = hp.Fit.from_params(hmm, [[1, 2, 3, 4]], params)
    summary = fit.transition_matrix()
    torch.testing.assert_close(summary.mean, params["A"])
    torch.testing.assert_close(summary.lower, params["A"])
    assert summary.covariates is None
    with pytest.raises(ValueError, match=r"^covariates: HMM.* has no transition covariates"):
        fit.stationary({"hour": 3.0})


def test_bad_points_and_levels_are_refused(draws_fit):
    *_, fit = draws_fit
    with pytest.raises(ValueError, match=r"^covariates: \['wind'\] not among"):
        fit.transition_matrix({"wind": 1.0})
    with pytest.raises(ValueError, match=r"^level: expected a number in \(0, 1\)"):
        fit.transition_matrix(level=1.5)
    with pytest.raises(ValueError, match=r"^covariates: expected finite values"):
        fit.transition_matrix({"hour": float("nan")})
