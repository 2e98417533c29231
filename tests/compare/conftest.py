"""Fixtures of the compare tests: the model, its data and two comparisons (computed once)."""

from __future__ import annotations

import matplotlib
import pytest

import hmm_pyro as hp
from hmm_pyro.compare import compare_priors
from hmm_pyro.simulate import REFERENCE_PARAMS
from tests.compare.helpers import PRIORS

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
