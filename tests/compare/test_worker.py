"""The comparison worker: per-entry rows of emission parameters, the data a task rebuilds."""

import pickle

import numpy as np
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro import HMM, MultivariateNormal, Poisson
from hmm_pyro.compare.run import make_tasks
from hmm_pyro.compare.worker import _entries, task_data
from hmm_pyro.diagnostics.folds import make_folds


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


def _same(rebuilt, original):
    """Bit-for-bit the same covariates: raw values (NaN padding), scale, standardised values."""
    assert rebuilt.names == original.names and rebuilt.standardized == original.standardized
    assert torch.equal(rebuilt.means, original.means) and torch.equal(rebuilt.sds, original.sds)
    np.testing.assert_array_equal(rebuilt.raw.numpy(), original.raw.numpy())  # NaN == NaN
    assert torch.equal(rebuilt.values, original.values)


@pytest.mark.parametrize("folds", [2, 5])  # 4 sequences: whole-sequence folds, time blocks
def test_tasks_rebuild_the_covariates_exactly_on_the_scale_of_all_the_data(folds):
    """What a worker rebuilds (after pickling) equals the covariates of its sequences, with the
    standardisation of all the data in every fold (not the training part's own)."""
    lengths = (6, 7, 8, 9)
    rng = np.random.default_rng(0)
    raw = [rng.normal(20.0, 5.0, size=(n, 2)) for n in lengths]
    covariates = hp.Covariates(raw, ["temp", "hour"])
    data = hp.Sequences([rng.integers(0, 3, n) for n in lengths], covariates=covariates)
    hmm = hp.CovariateHMM(2, hp.Categorical(3), ["hour"])
    split = make_folds(data, folds)
    settings = {"flat": hp.Prior(), "strong": hp.Prior(B=5.0)}
    tasks = make_tasks(hmm, data, settings, split, "map", 0, {}, loo=False, psens_delta=0.01)
    assert len(tasks) == len(settings) * (1 + folds)
    for task in tasks:
        train, test = task_data(pickle.loads(pickle.dumps(task)))
        if task.fold < 0:
            assert test is None
            _same(train.covariates, covariates)
            continue
        if split.kind == "sequences":
            out = [n for n in range(len(lengths)) if n % folds == task.fold]
            keep = [n for n in range(len(lengths)) if n % folds != task.fold]
        else:  # masked blocks: every step's covariates, also those of held-out steps
            out = keep = list(range(len(lengths)))
            assert train.num_observed < test.num_observed == int(data.lengths.sum())
        _same(train.covariates, covariates.select(keep))
        _same(test.covariates, covariates.select(out))
        assert torch.equal(train.covariates.means, covariates.means)
        np.testing.assert_array_equal(test.values.numpy(), data.select(out).values.numpy())
