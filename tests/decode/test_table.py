"""``decode_table``: one row per step with the Viterbi path and the state probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.decode import decode_table
from hmm_pyro.simulate import REFERENCE_PARAMS


@pytest.fixture(scope="module")
def fit() -> hp.Fit:
    hmm = hp.HMM(3, hp.Categorical(5))
    data, _ = hp.simulate(hmm, REFERENCE_PARAMS, [30, 12, 21], seed=4)
    return hp.Fit.from_params(hmm, data, REFERENCE_PARAMS, method="em")


def test_table_rows_are_the_steps_with_path_and_probabilities(fit):
    table, scores = decode_table(fit)
    assert list(table.columns) == [
        "sequence", "time", "value", "viterbi", "p_state_0", "p_state_1", "p_state_2",
    ]  # fmt: skip
    assert len(table) == 63 and table.groupby("sequence").size().tolist() == [30, 12, 21]
    paths, expected_scores = fit.hmm.viterbi(REFERENCE_PARAMS, fit.data)
    torch.testing.assert_close(scores, expected_scores)
    probs = fit.hmm.posterior_marginals(REFERENCE_PARAMS, fit.data).numpy()
    for n, rows in table.groupby("sequence"):
        length = int(fit.data.lengths[n])
        np.testing.assert_array_equal(rows["time"], np.arange(length))
        np.testing.assert_array_equal(rows["value"], fit.data[n])
        np.testing.assert_array_equal(rows["viterbi"], paths[n, :length].numpy())
        np.testing.assert_allclose(rows[["p_state_0", "p_state_1", "p_state_2"]], probs[n, :length])
    np.testing.assert_allclose(table.filter(like="p_state_").sum(axis=1), 1.0)


def test_other_data_and_several_dimensions():
    hmm = hp.HMM(2, hp.Gaussian(dim=2))
    params = {
        "pi": torch.tensor([0.5, 0.5], dtype=torch.float64),
        "A": torch.tensor([[0.9, 0.1], [0.2, 0.8]], dtype=torch.float64),
        "mu": torch.tensor([[-2.0, 0.0], [2.0, 1.0]], dtype=torch.float64),
        "sigma": torch.ones(2, 2, dtype=torch.float64),
    }
    data, _ = hp.simulate(hmm, params, [8, 5], seed=0)
    fit = hp.Fit.from_params(hmm, data, params, method="em")
    other = [np.array([[-2.0, 0.0], [2.0, 1.0], [2.1, 0.9]])]
    table, scores = decode_table(fit, other, max_draws=1)
    assert scores.shape == (1,)
    assert list(table.columns[:4]) == ["sequence", "time", "value_0", "value_1"]
    np.testing.assert_array_equal(table[["value_0", "value_1"]], other[0])
    assert table["viterbi"].tolist() == [0, 1, 1]


def test_refuses_what_is_not_a_fit():
    with pytest.raises(TypeError, match=r"fit: expected a hmm_pyro\.Fit"):
        decode_table("fit.nc")
