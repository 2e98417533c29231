"""Emission collapse on crafted draws: data-made versus prior-made, groups, effective states."""

import numpy as np
import pytest

from hmm_pyro import HMM, Categorical, Fit, Gaussian, Poisson, Prior, Sequences, simulate
from hmm_pyro.diagnostics import Remedy, diagnose
from hmm_pyro.diagnostics.collapse import min_pairwise, pooled_distance, pooled_emission
from tests.diagnostics.helpers import TRUTH, crafted_fit, noisy_draws, tensors


def merged_truth(rows=(1, 2)):
    truth = {name: value.copy() for name, value in TRUTH.items()}
    truth["B"][rows[1]] = truth["B"][rows[0]]
    return truth


@pytest.fixture(scope="module")
def merged_data(workload_hmm):
    data, _ = simulate(workload_hmm, tensors(merged_truth()), [100, 100], seed=4)
    return data


def test_two_identical_states_are_flagged_as_data_made(workload_hmm, merged_data):
    """Data from a truth whose states 1 and 2 emit alike: the refit with 2 states fits as well,
    so the data (not the flat prior) are the cause and fewer states the first remedy."""
    fit = crafted_fit(
        workload_hmm, merged_data, noisy_draws(merged_truth(), 2, 40, seed=1, concentration=3000)
    )
    report = diagnose(fit)
    flag = report.flag("emission_collapse")
    assert flag is not None and flag.severity == "error"
    assert flag.measured["groups"] == [(1, 2)]
    assert flag.measured["p_post"] == 1.0
    assert flag.measured["effective_num_states"] == 2
    assert flag.cause_kind == "data", flag.cause
    assert "do not separate" in flag.cause and "not the prior" in flag.cause
    assert flag.remedies[0] is Remedy.FEWER_STATES
    assert report.flag("symmetric_start") is None  # not identical to round-off
    # crafted draws record no runner settings: fewer states were compared at the mode
    assert any("compared by point estimates" in note for note in report.notes)


def test_prior_that_makes_states_alike_is_named(small_data):
    # A strong symmetric Dirichlet prior pulls every row to near uniform; the data hold three
    # distinct rows, which come back once the emission prior is dropped.
    hmm = HMM(3, Categorical(5), prior=Prior(B=400.0))
    data = Sequences(small_data.values[:2, :100].numpy(), dim=1)
    near_uniform = {name: value.copy() for name, value in TRUTH.items()}
    near_uniform["B"] = np.full((3, 5), 0.2)
    fit = crafted_fit(hmm, data, noisy_draws(near_uniform, 2, 40, seed=2, concentration=400))
    flag = diagnose(fit).flag("emission_collapse")
    assert flag is not None
    assert flag.measured["p_prior"] > 0.9
    assert flag.cause_kind == "prior", flag.cause
    assert "the prior makes the states alike" in flag.cause
    assert "without the emission prior" in flag.cause
    assert flag.remedies[0] is Remedy.OTHER_PRIOR


def test_distinct_states_are_not_flagged(workload_hmm, small_data):
    report = diagnose(
        crafted_fit(workload_hmm, small_data, noisy_draws(TRUTH, 2, 50, seed=3)), deep=False
    )
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
    report = diagnose(fit, deep=False)
    collapse = report.flag("emission_collapse")
    assert collapse is not None and "All 3 states" in collapse.summary
    assert "symmetric start" in collapse.cause and "one-state fit" in collapse.cause
    assert "never separated" in collapse.cause  # identical to round-off, at the one-state fit
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


def test_a_symmetric_start_that_separated_partly_is_not_called_never_separated(
    workload_hmm, small_data
):
    """The issue's init="median" run: pairwise H2 0.049 / 0.56 / 0.86, not identical to
    round-off. The start is still named, "never separated" is not said."""
    point = {name: value.copy() for name, value in TRUTH.items()}
    point["B"] = np.array(
        [
            [0.70, 0.10, 0.10, 0.05, 0.05],
            [0.48, 0.22, 0.15, 0.10, 0.05],
            [0.02, 0.03, 0.05, 0.10, 0.80],
        ]
    )
    fit = Fit.from_params(
        workload_hmm, small_data, tensors(point), method="map", attrs={"init": "median"}
    )
    report = diagnose(fit, deep=False)
    collapse = report.flag("emission_collapse")
    distance = collapse.measured["median_min_distance"]
    assert 0.02 < distance < 0.05
    assert "never separated" not in collapse.cause and "only partly" in collapse.cause
    assert collapse.cause.startswith("symmetric start") and collapse.cause_kind == "symmetric start"
    assert f"{distance:.3g} (0-1)" in collapse.cause  # the pairwise distances are quoted
    symmetric = report.flag("symmetric_start")
    assert "never separated" not in symmetric.summary and "only partly" in symmetric.summary
    assert f"{distance:.3g}" in symmetric.summary


def test_collapse_without_a_fixed_pair_reads_as_english(workload_hmm, small_data):
    """The closest pair alternates between draws (0-1 in half, 1-2 in the other half): no
    pair is collapsed in most draws, the closest pair is in all of them."""
    first = {name: value.copy() for name, value in TRUTH.items()}
    first["B"][1] = first["B"][0]
    second = {name: value.copy() for name, value in TRUTH.items()}
    second["B"][1] = second["B"][2]
    halves = [noisy_draws(truth, 1, 30, seed=5, concentration=3000) for truth in (first, second)]
    draws = {name: np.concatenate([h[name] for h in halves], axis=1) for name in halves[0]}
    report = diagnose(crafted_fit(workload_hmm, small_data, draws), deep=False)
    collapse = report.flag("emission_collapse")
    assert collapse.measured["groups"] == []
    assert collapse.summary.startswith("Two states (the closest pair differs between draws) have")
    assert "States two states" not in collapse.summary
