"""Emission collapse on crafted draws: data-made versus prior-made, groups, effective states."""

import numpy as np
import pytest

from hmm_pyro import HMM, Categorical, Fit, Gaussian, Poisson, Prior, simulate
from hmm_pyro.diagnostics import Remedy, diagnose
from hmm_pyro.diagnostics.collapse import min_pairwise, pooled_distance, pooled_emission
from tests.diagnostics.helpers import TRUTH, crafted_fit, noisy_draws, tensors


def merged_truth(rows=(1, 2)):
    truth = {name: value.copy() for name, value in TRUTH.items()}
    truth["B"][rows[1]] = truth["B"][rows[0]]
    return truth


def test_two_identical_states_are_flagged_as_data_made(workload_hmm, small_data):
    fit = crafted_fit(
        workload_hmm, small_data, noisy_draws(merged_truth(), 4, 50, seed=1, concentration=3000)
    )
    report = diagnose(fit)
    flag = report.flag("emission_collapse")
    assert flag is not None and flag.severity == "error"
    assert flag.measured["groups"] == [(1, 2)]
    assert flag.measured["p_post"] == 1.0
    assert flag.measured["p_prior"] < 0.5  # flat Dirichlet rows: 0.26 for the closest of 3 pairs
    assert flag.measured["bayes_factor"] > 3
    assert flag.measured["effective_num_states"] == 2
    assert "did not separate" in flag.cause
    assert flag.remedies[0] is Remedy.FEWER_STATES
    assert report.flag("symmetric_start") is None  # not identical to round-off


def test_prior_that_makes_states_alike_is_named(small_data):
    # A strong symmetric Dirichlet prior: prior draws of every row sit near uniform.
    hmm = HMM(3, Categorical(5), prior=Prior(B=400.0))
    near_uniform = {name: value.copy() for name, value in TRUTH.items()}
    near_uniform["B"] = np.full((3, 5), 0.2)
    fit = crafted_fit(hmm, small_data, noisy_draws(near_uniform, 2, 50, seed=2, concentration=400))
    flag = diagnose(fit).flag("emission_collapse")
    assert flag is not None
    assert flag.measured["p_prior"] > 0.9
    assert flag.measured["bayes_factor"] <= 3
    assert "prior makes the states alike" in flag.cause
    assert flag.remedies[0] is Remedy.OTHER_PRIOR


def test_distinct_states_are_not_flagged(workload_hmm, small_data):
    report = diagnose(crafted_fit(workload_hmm, small_data, noisy_draws(TRUTH, 2, 50, seed=3)))
    assert report.flag("emission_collapse") is None
    assert report.measurements["collapse"]["p_post"] == 0.0
    assert report.measurements["summary"]["effective_num_states"] == 3


def test_all_states_identical_point_estimate_names_the_symmetric_fixed_point(
    workload_hmm, small_data
):
    # A point with every row at the overall symbol frequencies: what a symmetric start ends at.
    point = {name: value.copy() for name, value in TRUTH.items()}
    point["B"] = np.repeat(pooled_emission(workload_hmm, small_data)["B"], 3, axis=0)
    fit = Fit.from_params(workload_hmm, small_data, tensors(point), method="svi")
    report = diagnose(fit)
    collapse = report.flag("emission_collapse")
    assert collapse is not None and "All 3 states" in collapse.summary
    assert "symmetric start" in collapse.cause and "one-state fit" in collapse.cause
    assert collapse.remedies[0] is Remedy.SYMMETRY_BREAKING_INIT
    symmetric = report.flag("symmetric_start")
    assert symmetric is not None and "inferred from the result" in symmetric.cause


def test_helpers():
    distances = np.array([[0.0, 0.01, 0.5], [0.01, 0.0, 0.6], [0.5, 0.6, 0.0]])
    assert min_pairwise(distances) == 0.01
    assert min_pairwise(np.zeros((2, 1, 1))).tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("emission", "params", "expected"),
    [
        (Gaussian(), {"mu": [0.0, 4.0], "sigma": [1.0, 1.0]}, {"mu": [2.0], "sigma": [np.sqrt(5)]}),
        (Poisson(), {"rate": [1.0, 5.0]}, {"rate": [3.0]}),
    ],
)
def test_pooled_one_state_fit(emission, params, expected):
    hmm = HMM(2, emission)
    truth = {"pi": np.array([0.5, 0.5]), "A": np.array([[0.5, 0.5], [0.5, 0.5]])}
    truth |= {k: np.asarray(v) for k, v in params.items()}
    data, _ = simulate(hmm, tensors(truth), [4000], seed=0)
    pooled = pooled_emission(hmm, data)
    for name, value in expected.items():
        np.testing.assert_allclose(pooled[name], value, rtol=0.05)
    same = {k: np.repeat(v, 2, axis=0) for k, v in pooled.items()}
    np.testing.assert_allclose(pooled_distance(hmm, data, same), 0.0, atol=1e-12)
