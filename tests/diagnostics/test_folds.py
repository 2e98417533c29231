"""K-fold folds: whole sequences, or time blocks held out as missing observations."""

from __future__ import annotations

import numpy as np

import hmm_pyro as hp
from hmm_pyro.diagnostics.folds import make_folds


def test_blocked_folds_hold_out_every_step_once():
    data = hp.Sequences([np.zeros(10), np.ones(7)])
    folds = make_folds(data, 3)
    assert folds.kind == "blocks"
    held = np.zeros((2, 10), dtype=int)
    for train_values, _ in folds.train:
        held += np.isnan(train_values[..., 0]).astype(int)
    # each valid step is missing in exactly one fold; padding (NaN everywhere) in all three
    assert (held[0] == 1).all()
    assert (held[1, :7] == 1).all() and (held[1, 7:] == 3).all()
    assert folds.num_units == 6


def test_sequence_folds_partition_the_sequences():
    data = hp.Sequences([np.zeros(n) for n in (4, 5, 6, 7, 8)])
    folds = make_folds(data, 2)
    assert folds.kind == "sequences"
    assert sorted(unit for units in folds.units for unit in units) == list(range(5))
