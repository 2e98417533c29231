"""K-fold folds: whole sequences, or time blocks held out as missing observations."""

from __future__ import annotations

import numpy as np
import torch

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


def test_folds_carry_the_covariates_of_their_sequences():
    """Refits of models that read covariates (emission regressions) need them in every fold."""
    lengths = (4, 5, 6)
    columns = [np.arange(n, dtype=float) + 10 * index for index, n in enumerate(lengths)]
    covariates = hp.Covariates(columns, names=["x"], standardize=False)
    data = hp.Sequences([np.zeros(n) for n in lengths], covariates=covariates)
    folds = make_folds(data, 3)
    for fold in range(3):
        test = folds.sequences(fold, "test")
        assert test.covariates.raw[0, 0, 0].item() == 10 * fold  # sequence `fold` held out
        assert folds.sequences(fold, "train").covariates.lengths.tolist() == [
            n for index, n in enumerate(lengths) if index != fold
        ]
    blocks = make_folds(data, 4)  # fewer sequences than folds: time blocks
    assert blocks.kind == "blocks" and blocks.sequences(1, "train").covariates is covariates
    assert make_folds(hp.Sequences([np.zeros(4)]), 2).sequences(0, "test").covariates is None


def test_folds_keep_the_standardisation_of_all_the_data():
    """Sequence folds carry their own sequences' covariates coded on the scale of all the data
    (not restandardised over the fold); block folds mask observations only: every step keeps
    its covariates, held out or not."""
    raw = [np.linspace(0.0, 1.0, 5) ** 2 + index for index in range(3)]
    covariates = hp.Covariates(raw, names=["x"])  # standardised over all 15 steps
    data = hp.Sequences([np.arange(5) % 2 for _ in raw], covariates=covariates)
    folds = make_folds(data, 3)
    for fold in range(3):
        for part, kept in (("train", [n for n in range(3) if n != fold]), ("test", [fold])):
            carried = folds.sequences(fold, part).covariates
            assert torch.equal(carried.means, covariates.means)
            assert torch.equal(carried.sds, covariates.sds)
            assert torch.equal(carried.values, covariates.values[kept])
    blocks = make_folds(data.select([0]), 2)
    for fold in range(2):
        train = blocks.sequences(fold, "train")
        assert train.num_observed == 5 - len(np.array_split(np.arange(5), 2)[fold])
        assert torch.equal(train.covariates.values, covariates.values[[0]])
        assert train.covariates.lengths.tolist() == [5]
