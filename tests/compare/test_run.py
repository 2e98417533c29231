"""compare_priors: ELPD by PSIS-LOO and by (blocked) K-fold CV, flags, sensitivity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hmm_pyro as hp
from hmm_pyro.compare import compare_priors
from hmm_pyro.simulate import REFERENCE_PARAMS
from tests.compare.helpers import PRIORS

COLUMNS = {
    "prior",
    "elpd",
    "elpd_se",
    "elpd_diff",
    "diff_se",
    "p_loo",
    "pareto_k_max",
    "high_k",
    "label_switching",
    "ok",
    "flags",
    "effective_states",
    "min_hellinger",
    "min_hellinger_q05",
    "psens_prior",
    "psens_likelihood",
    "sensitivity",
    "seconds",
    "elpd_method",
}


@pytest.mark.xdist_group("compare_nuts")  # one worker computes nuts_comparison
def test_nuts_loo_table_penalises_the_contradicting_prior(nuts_comparison):
    table = nuts_comparison.table
    assert list(table.index) == list(PRIORS)
    assert set(table.columns) == COLUMNS
    assert nuts_comparison.elpd_method.startswith("PSIS-LOO over sequences")
    strong, flat = table.loc["strong"], table.loc["flat"]
    # Lower ELPD by more than two standard errors of the paired difference ...
    assert strong["elpd"] < flat["elpd"]
    assert strong["elpd_diff"] < -2 * strong["diff_se"]
    # ... collapsed states, and a prior-data conflict in the emission entries.
    assert "emission_collapse" in strong["flags"]
    assert not strong["ok"]
    assert strong["min_hellinger"] < 0.05 < flat["min_hellinger"]
    assert strong["sensitivity"].startswith("prior-data conflict")
    # A flat Dirichlet(1) emission prior has a constant density: nothing to power-scale.
    assert flat["psens_prior"] < 1e-3
    assert np.isfinite(table["p_loo"]).all()
    assert (table["elpd_se"] > 0).all()
    assert table["elpd_diff"].max() == 0.0


@pytest.mark.xdist_group("compare_map")  # one worker computes map_comparison
def test_map_kfold_over_sequences(map_comparison, hmm, data):
    table = map_comparison.table
    assert "3-fold CV over whole sequences" in map_comparison.elpd_method
    assert "plug-in" in map_comparison.elpd_method
    assert table["p_loo"].isna().all()
    assert table["psens_prior"].isna().all()  # one draw: no power-scaling
    assert (table["sensitivity"] == "n/a").all()
    assert table.loc["strong", "elpd"] < table.loc["flat", "elpd"]
    assert table.loc["strong", "min_hellinger"] < 0.05
    # every sequence is held out exactly once
    assert map_comparison.pointwise.notna().all().all()
    assert len(map_comparison.pointwise) == data.num_sequences


def test_svi_guide_draws_give_psis_loo(hmm, data):
    comparison = compare_priors(
        hmm,
        data,
        {"flat": hp.Prior(), "strong": hp.Prior(B=100.0)},
        method="svi",
        seed=0,
        parallel=False,
        steps=300,
        restarts=1,
        num_draws=200,
    )
    assert comparison.method == "svi"
    assert comparison.elpd_method.startswith("PSIS-LOO over sequences")
    table = comparison.table
    assert np.isfinite(table["p_loo"]).all()
    assert table.loc["strong", "elpd"] < table.loc["flat", "elpd"]


@pytest.mark.slow
def test_same_seed_same_table_in_parallel_or_not(hmm, data):
    subset = data.select([0, 1, 2, 3])
    priors = {"flat": PRIORS["flat"], "strong": PRIORS["strong"]}
    runs = [
        compare_priors(hmm, subset, priors, method="map", seed=5, folds=2, parallel=parallel)
        for parallel in (False, True)
    ]
    columns = [column for column in runs[0].table.columns if column != "seconds"]
    pd.testing.assert_frame_equal(runs[0].table[columns], runs[1].table[columns])


def test_one_sequence_uses_blocked_cv(hmm):
    data, _ = hp.simulate(hmm, REFERENCE_PARAMS, [400], seed=2)
    comparison = compare_priors(
        hmm,
        data,
        {"flat": hp.Prior(), "strong": hp.Prior(B=100.0)},
        method="map",
        seed=0,
        folds=3,
        parallel=False,
    )
    assert comparison.elpd_method.startswith("3-fold blocked CV")
    assert list(comparison.pointwise.index) == [f"sequence 0 block {b}" for b in range(3)]
    table = comparison.table
    assert table.loc["strong", "elpd"] < table.loc["flat", "elpd"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"priors": {}}, TypeError, "non-empty dict"),
        ({"priors": {"x": 3}}, TypeError, r"priors\['x'\]"),
        ({"method": "em"}, ValueError, "method"),
        ({"elpd": "waic"}, ValueError, "elpd"),
        ({"method": "map", "elpd": "loo"}, ValueError, "needs posterior draws"),
        ({"folds": 1}, ValueError, "folds"),
        ({"chains": 0}, ValueError, "chains"),
    ],
)
def test_bad_arguments(hmm, data, kwargs, error, match):
    arguments = {"priors": {"flat": hp.Prior()}, **kwargs}
    with pytest.raises(error, match=match):
        compare_priors(hmm, data, **arguments)


def test_loo_needs_several_sequences(hmm):
    data, _ = hp.simulate(hmm, REFERENCE_PARAMS, [30], seed=0)
    with pytest.raises(ValueError, match="at least 2 sequences"):
        compare_priors(hmm, data, {"flat": hp.Prior()}, elpd="loo")
    with pytest.raises(ValueError, match="at most 30 folds"):
        compare_priors(hmm, data, {"flat": hp.Prior()}, method="map", folds=31)


def test_prior_given_as_dict(hmm, data):
    comparison = compare_priors(
        hmm, data.select([0, 1]), {"b": {"B": 2.0}}, method="map", folds=2, parallel=False
    )
    assert comparison.priors["b"] == hp.Prior(B=2.0)
    assert comparison.table.loc["b", "prior"] == "B=2"
