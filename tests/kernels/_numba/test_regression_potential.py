"""The numba potential of a covariate HMM against the torch route (autograd), and its scope."""

import numpy as np
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.covariates import Covariates
from hmm_pyro.inference.potential import Potential


def _data(family: str, lengths: tuple[int, ...], seed: int) -> hp.Sequences:
    """Sequences of ``family`` with two covariates; some observations missing."""
    rng = np.random.default_rng(seed)
    values = []
    for length in lengths:
        if family == "categorical":
            value = rng.integers(0, 4, size=length).astype(float)
        elif family == "poisson":
            value = rng.poisson(3.0, size=(length, 2)).astype(float)
        elif family == "gamma":
            value = rng.gamma(2.0, 1.5, size=length)
        else:
            value = rng.normal(size=length)
        values.append(value)
    values[0] = np.array(values[0], dtype=float)
    values[0][1] = np.nan  # a missing observation: observed nowhere at that step
    columns = [rng.normal(size=(length, 2)) for length in lengths]
    return hp.Sequences(values, covariates=Covariates(columns, names=["hour", "temp"]))


def _emission(family: str) -> hp.Emission:
    return {
        "gaussian": hp.Gaussian(),
        "poisson": hp.Poisson(dim=2),
        "gamma": hp.Gamma(),
        "categorical": hp.Categorical(num_symbols=4),
    }[family]


@pytest.mark.parametrize(
    ("family", "initial"),
    [
        ("gaussian", ()),
        ("poisson", ()),
        ("gamma", ()),
        ("gaussian", ("temp",)),
        ("categorical", ()),
        ("categorical", ("temp",)),
        ("poisson", ("hour", "temp")),
    ],
)
@pytest.mark.parametrize("jacobian", [True, False])
def test_numba_route_equals_autograd(monkeypatch, family, initial, jacobian):
    """Value and gradient of every coordinate at random points, three states, unequal lengths.

    The torch route is the same model differentiated by autograd (``potential_terms`` made to
    return None), with ``pi`` a simplex or a regression on initial covariates. A wrong index
    of a coefficient, a missing prior term or constant, a gradient of the diagonal kept, a
    wrong Helmert column or a Jacobian applied to the MAP objective moves them by far more than
    the tolerances (round-off of sums over ~100 steps).
    """
    data = _data(family, (40, 25, 7), seed=3)
    hmm = hp.CovariateHMM(
        3,
        _emission(family),
        ["hour", "temp"],
        initial_covariates=initial,
        coefficient_prior=hp.CoefficientPrior(intercept_loc=-1.0, slope_scale=0.7),
    )
    fast = Potential(hmm, data)
    assert fast.route == "numba"
    monkeypatch.setattr(type(hmm), "potential_terms", lambda self, data: None)
    slow = Potential(hmm, data)
    assert slow.route == "torch"
    for seed in range(3):
        flat = fast.unconstrain(hmm.sample_prior(seed=20 + seed))["z"]
        value, gradient = fast.value_and_gradient(flat, jacobian=jacobian)
        expected, expected_gradient = slow.value_and_gradient(flat, jacobian=jacobian)
        assert abs(float(value) - float(expected)) < 1e-9 * max(1.0, abs(float(expected)))
        torch.testing.assert_close(gradient, expected_gradient, rtol=1e-9, atol=1e-9)


def test_the_numba_route_only_where_it_applies():
    """Families without a numba log joint keep the torch route; the others take numba."""
    data = _data("gaussian", (10, 6), seed=4)
    assert Potential(hp.CovariateHMM(2, hp.Gaussian(), ["hour"]), data).route == "numba"
    with_initial = hp.CovariateHMM(2, hp.Gaussian(), ["hour"], initial_covariates=["temp"])
    assert Potential(with_initial, data).route == "numba"
    without = hp.CovariateHMM(2, hp.StudentT(), ["hour"])  # no numba log joint of its own
    assert Potential(without, data).route == "torch"
    rng = np.random.default_rng(5)
    symbols = hp.Sequences(
        [rng.integers(0, 3, size=8), rng.integers(0, 3, size=5)],
        covariates=Covariates([rng.normal(size=(8, 1)), rng.normal(size=(5, 1))], ["hour"]),
    )
    categorical = hp.CovariateHMM(2, hp.Categorical(num_symbols=3), ["hour"])
    assert Potential(categorical, symbols).route == "numba"


def test_a_sequence_of_zero_likelihood_gives_minus_infinity():
    """Emission densities that underflow to zero at every state: -inf and a zero gradient."""
    data = _data("gaussian", (12, 9), seed=6)
    hmm = hp.CovariateHMM(2, hp.Gaussian(), ["hour"])
    potential = Potential(hmm, data)
    params = hmm.sample_prior(seed=1)
    params["sigma"] = torch.full((2,), 1e-160, dtype=torch.float64)  # densities underflow to 0
    flat = potential.unconstrain(params)["z"]
    value, gradient = potential.value_and_gradient(flat)
    assert float(value) == -np.inf
    assert not gradient.any()
