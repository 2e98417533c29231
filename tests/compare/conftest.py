"""Fixtures of the compare tests: the model, its data and two comparisons (computed once)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.compare import compare_priors
from hmm_pyro.simulate import REFERENCE_PARAMS
from tests.compare.helpers import COVARIATE_PRIORS, PRIORS

matplotlib.use("Agg")


@pytest.fixture(scope="package")
def hmm():
    return hp.HMM(3, hp.Categorical(5))


@pytest.fixture(scope="package")
def data(hmm):
    sequences, _ = hp.simulate(hmm, REFERENCE_PARAMS, [60] * 6, seed=0)
    return sequences


@pytest.fixture(scope="package")
def nuts_comparison(hmm, data):
    return compare_priors(
        hmm, data, PRIORS, method="nuts", seed=0, parallel=False, chains=1, warmup=40, draws=40
    )


@pytest.fixture(scope="package")
def map_comparison(hmm, data):
    """MAP (L-BFGS): one point, so the ELPD is K-fold CV over whole sequences (plug-in)."""
    return compare_priors(hmm, data, PRIORS, method="map", seed=3, parallel=False, folds=3)


@pytest.fixture(scope="package")
def covariate_hmm():
    """Two states whose switching follows ``hour``; three symbols."""
    return hp.CovariateHMM(2, hp.Categorical(3), ["hour"])


@pytest.fixture(scope="package")
def covariate_truth():
    return {
        "pi": torch.tensor([0.5, 0.5], dtype=torch.float64),
        "beta_A": torch.tensor(
            [[[0.0, 0.0], [-2.0, 1.5]], [[-2.0, -1.5], [0.0, 0.0]]], dtype=torch.float64
        ),
        "B": torch.tensor([[0.8, 0.15, 0.05], [0.05, 0.15, 0.8]], dtype=torch.float64),
    }


@pytest.fixture(scope="package")
def covariate_data(covariate_hmm, covariate_truth):
    """One sequence of 60 steps; ``hour`` given around 12 (standardised: mean and sd kept)."""
    hours = 12.0 + 6.0 * np.sin(2 * np.pi * np.arange(60) / 24)
    covariates = hp.Covariates([hours], ["hour"])
    data, _ = hp.simulate(covariate_hmm, covariate_truth, covariates=covariates, seed=1)
    return data


@pytest.fixture(scope="package")
def covariate_map_comparison(covariate_hmm, covariate_data):
    """MAP, one sequence: 3-fold blocked CV (2 settings x (1 + 3) fits of 60 steps)."""
    return compare_priors(
        covariate_hmm,
        covariate_data,
        COVARIATE_PRIORS,
        method="map",
        seed=5,
        folds=3,
        parallel=False,
        restarts=1,
    )
