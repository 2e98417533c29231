"""Supervised estimation: counts from labelled paths, checked against counts done by hand."""

import math

import numpy as np
import pytest
import torch

from hmm_pyro import HMM, Categorical, Gaussian, Poisson, Prior, simulate
from hmm_pyro.learning import fit_supervised

SYMBOLS = [[0, 1, 2, 2, 0], [1, 1, 0]]
LABELS = [[0, 0, 1, 1, 0], [1, 0, 0]]
PADDED = [[0, 0, 1, 1, 0], [1, 0, 0, -1, -1]]


def _point(fit):
    return {name: value[0, 0] for name, value in fit.draws().items()}


def _close(actual, expected):
    torch.testing.assert_close(
        actual, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12
    )


def test_flat_prior_gives_hand_counted_frequencies():
    # By hand: first states 0 (seq 0) and 1 (seq 1). Transitions 0->0: 2, 0->1: 1, 1->0: 2,
    # 1->1: 1. State 0 emits 0, 1, 0, 1, 0; state 1 emits 2, 2, 1.
    hmm = HMM(2, Categorical(3))
    fit = fit_supervised(hmm, SYMBOLS, LABELS, emission_prior=False)
    point = _point(fit)
    _close(point["pi"], [0.5, 0.5])
    _close(point["A"], [[2 / 3, 1 / 3], [2 / 3, 1 / 3]])
    _close(point["B"], [[3 / 5, 2 / 5, 0.0], [0.0, 1 / 3, 2 / 3]])
    assert fit.method == "supervised"
    assert fit.attrs["transition_counts"] == [[2.0, 1.0], [2.0, 1.0]]
    # The prior's concentration 1 is the same thing.
    assert torch.equal(_point(fit_supervised(hmm, SYMBOLS, PADDED))["B"], point["B"])


def test_pseudo_counts_add_concentration_minus_one():
    hmm = HMM(2, Categorical(3), Prior(pi=2.0, A=[[2.0, 1.0], [3.0, 2.0]], B=2.0))
    point = _point(fit_supervised(hmm, SYMBOLS, PADDED))
    _close(point["pi"], [0.5, 0.5])  # (1 + 1, 1 + 1)
    # Row 0: counts (2, 1) + (2, 1) - 1 = (3, 1); row 1: counts (2, 1) + (3, 2) - 1 = (4, 2).
    _close(point["A"], [[3 / 4, 1 / 4], [4 / 6, 2 / 6]])
    _close(point["B"], [[4 / 8, 3 / 8, 1 / 8], [1 / 6, 2 / 6, 3 / 6]])


def test_missing_observations_count_for_transitions_only():
    symbols = [[0, 1, 2, 2, 0], [1, np.nan, 0]]
    hmm = HMM(2, Categorical(3))
    point = _point(fit_supervised(hmm, symbols, LABELS, emission_prior=False))
    _close(point["A"], [[2 / 3, 1 / 3], [2 / 3, 1 / 3]])
    _close(point["B"], [[3 / 4, 1 / 4, 0.0], [0.0, 1 / 3, 2 / 3]])


def test_gaussian_without_prior_is_the_per_state_sample_moments():
    values = [[1.0, 1.5, 5.0, 6.0, 0.5], [7.0, np.nan, 2.0]]
    hmm = HMM(2, Gaussian())
    point = _point(fit_supervised(hmm, values, LABELS, emission_prior=False))
    state0 = np.array([1.0, 1.5, 0.5, 2.0])  # the NaN is skipped
    state1 = np.array([5.0, 6.0, 7.0])
    _close(point["mu"], [state0.mean(), state1.mean()])
    _close(point["sigma"], [state0.std(), state1.std()])


def test_gaussian_map_is_a_stationary_point_of_the_complete_data_log_posterior():
    hmm = HMM(
        2, Gaussian(dim=2), Prior(mu_loc=1.0, mu_scale=2.0, variance_shape=3.0, variance_scale=2.0)
    )
    truth = hmm.sample_prior(seed=0)
    data, states = simulate(hmm, truth, [15, 10], seed=1)
    point = _point(fit_supervised(hmm, data, states))
    mu = point["mu"].clone().requires_grad_(True)
    log_sigma = point["sigma"].log().clone().requires_grad_(True)
    sigma = log_sigma.exp()
    values = data.values
    labels = states.clamp(min=0)
    valid = states >= 0
    log_lik = torch.distributions.Normal(mu[labels], sigma[labels]).log_prob(values.nan_to_num(0.0))
    log_lik = torch.where(valid[..., None] & ~values.isnan(), log_lik, 0.0).sum()
    priors = hmm.prior_distributions()
    total = log_lik + priors["mu"].log_prob(mu) + priors["sigma"].log_prob(sigma)
    total.backward()
    assert mu.grad.abs().max() < 1e-8
    assert log_sigma.grad.abs().max() < 1e-8


def test_poisson_map_by_hand():
    counts = [[0, 2, 9, 11, 1], [8, 3, 0]]
    hmm = HMM(2, Poisson(), Prior(rate_shape=2.0, rate_rate=0.5))
    point = _point(fit_supervised(hmm, counts, LABELS))
    # State 0 sees 0, 2, 1, 3, 0 (n = 5, sum 6); state 1 sees 9, 11, 8 (n = 3, sum 28).
    _close(point["rate"], [(6 + 1) / (5 + 0.5), (28 + 1) / (3 + 0.5)])


def test_stationary_initial():
    hmm = HMM(2, Categorical(3))
    point = _point(fit_supervised(hmm, SYMBOLS, LABELS, initial="stationary"))
    torch.testing.assert_close(point["pi"] @ point["A"], point["pi"])


@pytest.mark.parametrize(
    ("states", "error", "match"),
    [
        ([[0, 0, 1, 1, 0]], ValueError, r"states: expected shape \(2, 5\)"),
        ([[0, 0, 1, 1, 0], [1, 0], [0]], ValueError, "states: expected 2 label sequences"),
        ([[0, 0, 1, 1], [1, 0, 0]], ValueError, r"states\[0\]: expected shape \(5,\)"),
        (
            [[0, 0, 1, 1, 0], [1, 0, 0, -1]],
            ValueError,
            r"states: expected shape \(2, 5\)|states\[1\]",
        ),
        ([[0, 0, 2, 1, 0], [1, 0, 0, -1, -1]], ValueError, r"states: expected labels in \[0, 1\]"),
        ([[0, 0, 1, 1, 0], [1, -1, 0, -1, -1]], ValueError, "states: expected labels"),
        ([[0, 0, 1, 1, 0], [1, 0, 0, 0, -1]], ValueError, "states: expected -1 at the padding"),
        (np.zeros((2, 4), dtype=int), ValueError, r"states: expected shape \(2, 5\)"),
        (np.full((2, 5), 0.5), TypeError, "states: expected integer state labels"),
        ([["a", "b", "c", "d", "e"], [0, 1, 0]], TypeError, r"states\[0\]: expected integer"),
    ],
)
def test_states_are_validated(states, error, match):
    hmm = HMM(2, Categorical(3))
    with pytest.raises(error, match=match):
        fit_supervised(hmm, SYMBOLS, states)


def test_undefined_emission_estimates_are_errors_naming_states():
    hmm = HMM(3, Gaussian())
    with pytest.raises(ValueError, match=r"states: the 'mu' estimate of state\(s\) \[2\]"):
        fit_supervised(
            hmm, [[1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0]], LABELS, emission_prior=False
        )
    with pytest.raises(ValueError, match="'sigma' estimate of state"):
        fit_supervised(
            HMM(2, Gaussian()),
            [[1.0, 2.0, 3.0, 3.0, 5.0], [6.0, 7.0, 8.0]],
            [[0, 0, 1, 1, 0], [0, 0, 0]],
            emission_prior=False,
        )
    # With the prior, an unvisited state gets its prior mode.
    fit = fit_supervised(hmm, [[1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0]], LABELS)
    point = _point(fit)
    assert float(point["mu"][2]) == pytest.approx(0.0)
    assert float(point["sigma"][2]) == pytest.approx(math.sqrt(2 * 1.0 / (2 * 2.0 + 1)))
