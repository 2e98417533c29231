"""Groups of collapsed states: connected components of the "indistinguishable" graph."""

import numpy as np

from hmm_pyro.labels.groups import count_groups, merge_groups


def test_groups():
    distances = np.array([[0.0, 0.01, 0.5], [0.01, 0.0, 0.6], [0.5, 0.6, 0.0]])
    close = distances < 0.05
    assert count_groups(close) == 2
    assert count_groups(close, keep=np.array([True, True, False])) == 1
    assert merge_groups(close) == [(0, 1)]
    chain = np.zeros((4, 4), dtype=bool)
    chain[0, 1] = chain[1, 0] = chain[2, 3] = chain[3, 2] = chain[1, 2] = chain[2, 1] = True
    assert count_groups(chain) == 1 and merge_groups(chain) == [(0, 1, 2, 3)]
