"""The comparison worker's per-entry rows of emission parameters."""

import numpy as np

from hmm_pyro import HMM, MultivariateNormal, Poisson
from hmm_pyro.compare.worker import _entries


def test_entries_flatten_every_trailing_axis_of_each_state():
    hmm = HMM(2, MultivariateNormal(dim=2))
    draws = {
        "mu": np.arange(4 * 2 * 2, dtype=float).reshape(4, 2, 2),
        "sigma": np.ones((4, 2, 2)),
        "corr": np.arange(4 * 2 * 2 * 2, dtype=float).reshape(4, 2, 2, 2),
    }
    rows = _entries(hmm, draws)
    assert len(rows) == 2 * 2 + 2 * 2 + 2 * 4
    corr = [(state, index, column) for name, state, index, column in rows if name == "corr"]
    for state, index, column in corr:
        np.testing.assert_array_equal(column, draws["corr"][:, state, index // 2, index % 2])
    scalar = _entries(HMM(3, Poisson()), {"rate": np.ones((5, 3))})
    assert [(name, state, index) for name, state, index, _ in scalar] == [
        ("rate", 0, 0),
        ("rate", 1, 0),
        ("rate", 2, 0),
    ]
