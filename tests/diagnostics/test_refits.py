"""Point-estimate refits: sub-models, merged starts, BIC and held-out likelihood."""

import math

import numpy as np
import pytest
import torch

from hmm_pyro import HMM, Poisson, Prior, simulate
from hmm_pyro.diagnostics import refits
from hmm_pyro.diagnostics.refits import (
    bic,
    fewer_states,
    held_out,
    merge_start,
    point_fit,
    sub_prior,
    take_states,
)
from tests.diagnostics.helpers import tensors

DUPLICATED = {
    "pi": np.array([0.5, 0.25, 0.25]),
    # lumpable: states 1 and 2 lead into state 0 alike, so the observed process is a 2-state HMM
    "A": np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.2, 0.1, 0.7]]),
    "rate": np.array([2.0, 9.0, 9.0]),
}


@pytest.fixture(scope="module")
def duplicated_data():
    data, _ = simulate(HMM(3, Poisson()), tensors(DUPLICATED), [200], seed=0)
    return data


def test_sub_model_keeps_the_kept_states_hyperparameters():
    hmm = HMM(3, Poisson(), prior=Prior(A=2.0, stickiness=5.0, rate_shape=[1.0, 2.0, 3.0]))
    prior = sub_prior(hmm, [0, 2])
    small = HMM(2, Poisson(), prior=prior)
    np.testing.assert_allclose(small.prior.resolve_transitions(2).numpy(), [[7.0, 2.0], [2.0, 7.0]])
    hyper = small.emission.prior_hyperparameters(small.prior, 2, torch.float64)
    np.testing.assert_allclose(hyper["rate_shape"].numpy().ravel(), [1.0, 3.0])
    params = take_states(HMM(3, Poisson()), tensors(DUPLICATED), [0, 2])
    np.testing.assert_allclose(params["pi"].numpy(), [2 / 3, 1 / 3])
    np.testing.assert_allclose(
        params["A"].numpy(), [[0.8 / 0.9, 0.1 / 0.9], [0.2 / 0.9, 0.7 / 0.9]]
    )
    np.testing.assert_allclose(params["rate"].numpy(), [2.0, 9.0])


def test_merging_duplicated_states_never_lowers_the_likelihood(duplicated_data):
    """The lumped process is exactly a 2-state HMM, so the merged posteriors are that model's
    own posteriors and the merged M-step is an EM step: the likelihood cannot drop. Merging
    two distinct states must cost likelihood (tens of nats here), and fewer_states must find
    the duplicated pair."""
    hmm = HMM(3, Poisson())
    params = tensors(DUPLICATED)
    full = float(hmm.log_likelihood(params, duplicated_data).sum())
    small, start = merge_start(hmm, duplicated_data, params, (1, 2))
    assert small.num_states == 2
    assert float(small.log_likelihood(start, duplicated_data).sum()) >= full - 1e-8
    wrong, bad = merge_start(hmm, duplicated_data, params, (0, 1))
    assert float(wrong.log_likelihood(bad, duplicated_data).sum()) < full - 10.0
    point = point_fit(hmm, duplicated_data, params)
    smaller = fewer_states(point, duplicated_data)
    assert smaller.merged == (1, 2) and smaller.num_states == 2
    assert smaller.log_likelihood >= point.log_likelihood - 1.0
    assert bic(smaller, duplicated_data) < bic(point, duplicated_data)
    count = HMM(2, Poisson()).num_free_params()
    expected = -2.0 * smaller.log_likelihood + count * math.log(duplicated_data.num_observed)
    assert bic(smaller, duplicated_data) == pytest.approx(expected)


def test_held_out_blocks_prefer_the_truth_and_are_cached(duplicated_data, monkeypatch):
    """Blocked CV on one sequence: 5 units; two well-separated rates (2 vs 9) are worth far more
    than one pooled rate held out (a 60-nat effect on 200 counts), and a model compared again
    is not refitted."""
    hmm = HMM(3, Poisson())
    point = point_fit(hmm, duplicated_data, tensors(DUPLICATED))
    one = point_fit(
        HMM(1, Poisson()),
        duplicated_data,
        {
            k: v[:1]
            for k, v in tensors(
                {"pi": np.ones(1), "A": np.ones((1, 1)), "rate": np.array([5.0])}
            ).items()
        },
    )
    cache: dict = {}
    values, text = held_out([point, one], duplicated_data, cache=cache)
    assert values.shape == (2, 5) and np.isfinite(values).all()
    assert "blocked" in text
    assert values[0].sum() > values[1].sum() + 30.0
    calls = []
    monkeypatch.setattr(refits, "run_em", lambda *a, **k: calls.append(1))
    again, _ = held_out([one], duplicated_data, cache=cache)
    np.testing.assert_array_equal(again[0], values[1])
    assert not calls
