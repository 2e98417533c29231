"""compare_priors: ELPD by PSIS-LOO and by (blocked) K-fold CV, flags, sensitivity, plots."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

import hmm_pyro as hp
from hmm_pyro.compare import PriorComparison, _make_folds, compare_priors, describe_prior
from hmm_pyro.demo import TRUE_PARAMS

matplotlib.use("Agg")

PRIORS = {
    "flat": hp.Prior(),
    "sticky": hp.Prior(stickiness=10.0),
    "strong": hp.Prior(B=100.0),  # every emission row pulled to uniform: contradicts the data
}
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


@pytest.fixture(scope="module")
def hmm():
    return hp.HMM(3, hp.Categorical(5))


@pytest.fixture(scope="module")
def data(hmm):
    sequences, _ = hp.simulate(hmm, TRUE_PARAMS, [60] * 6, seed=0)
    return sequences


@pytest.fixture(scope="module")
def nuts_comparison(hmm, data):
    return compare_priors(
        hmm, data, PRIORS, method="nuts", seed=0, parallel=False, chains=1, warmup=40, draws=40
    )


@pytest.fixture(scope="module")
def map_comparison(hmm, data):
    """SVI MAP: one point, so the ELPD is K-fold CV over whole sequences (plug-in)."""
    return compare_priors(hmm, data, PRIORS, method="svi", seed=3, parallel=False, folds=3)


def test_describe_prior():
    assert describe_prior(hp.Prior()) == "defaults"
    assert describe_prior(hp.Prior(B=100.0, stickiness=5.0)) == "B=100, stickiness=5"
    assert describe_prior(hp.Prior(B=[[1.0, 2.0]])) == "B=[[1.0, 2.0]]"


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


@pytest.mark.xdist_group("compare_nuts")
def test_nuts_comparison_details(nuts_comparison, tmp_path):
    comparison = nuts_comparison
    assert isinstance(comparison, PriorComparison)
    assert set(comparison.fits) == set(PRIORS)
    assert comparison.fits["strong"].hmm.prior == PRIORS["strong"]
    # Emission summaries: every entry of every setting, states in canonical order.
    emissions = comparison.emissions
    assert len(emissions) == 3 * 3 * 5
    flat = emissions[emissions["setting"] == "flat"]
    location = flat.groupby("state").apply(
        lambda rows: float((rows["mean"] * rows["index"]).sum()), include_groups=False
    )
    assert location.is_monotonic_increasing
    assert set(comparison.sensitivity["diagnosis"]) <= {
        "-",
        "prior-dominated",
        "prior-data conflict",
    }
    assert comparison.pointwise.shape == (6, 3)
    assert json.loads(comparison.to_json())["elpd_method"] == comparison.elpd_method
    markdown = comparison.to_markdown()
    assert "## `strong`: B=100" in markdown and "emission_collapse" in markdown
    paths = comparison.save(tmp_path, prefix="cmp")
    for key in ("csv", "json", "markdown", "elpd", "separation", "sensitivity", "emissions"):
        assert paths[key].stat().st_size > 0
    assert list(pd.read_csv(paths["csv"], index_col=0).index) == list(PRIORS)
    axes = comparison.plot()
    assert axes.shape == (2, 2)


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


@pytest.mark.slow
def test_same_seed_same_table_in_parallel_or_not(hmm, data):
    subset = data.select([0, 1, 2, 3])
    priors = {"flat": PRIORS["flat"], "strong": PRIORS["strong"]}
    runs = [
        compare_priors(hmm, subset, priors, method="svi", seed=5, folds=2, parallel=parallel)
        for parallel in (False, True)
    ]
    columns = [column for column in runs[0].table.columns if column != "seconds"]
    pd.testing.assert_frame_equal(runs[0].table[columns], runs[1].table[columns])


def test_one_sequence_uses_blocked_cv(hmm):
    data, _ = hp.simulate(hmm, TRUE_PARAMS, [400], seed=2)
    comparison = compare_priors(
        hmm,
        data,
        {"flat": hp.Prior(), "strong": hp.Prior(B=100.0)},
        method="svi",
        seed=0,
        folds=3,
        parallel=False,
    )
    assert comparison.elpd_method.startswith("3-fold blocked CV")
    assert list(comparison.pointwise.index) == [f"sequence 0 block {b}" for b in range(3)]
    table = comparison.table
    assert table.loc["strong", "elpd"] < table.loc["flat", "elpd"]


def test_blocked_folds_hold_out_every_step_once(hmm):
    data = hp.Sequences([np.zeros(10), np.ones(7)])
    folds = _make_folds(data, 3)
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
    folds = _make_folds(data, 2)
    assert folds.kind == "sequences"
    assert sorted(unit for units in folds.units for unit in units) == list(range(5))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"priors": {}}, TypeError, "non-empty dict"),
        ({"priors": {"x": 3}}, TypeError, r"priors\['x'\]"),
        ({"method": "em"}, ValueError, "method"),
        ({"elpd": "waic"}, ValueError, "elpd"),
        ({"method": "svi", "elpd": "loo"}, ValueError, "needs posterior draws"),
        ({"folds": 1}, ValueError, "folds"),
        ({"chains": 0}, ValueError, "chains"),
    ],
)
def test_bad_arguments(hmm, data, kwargs, error, match):
    arguments = {"priors": {"flat": hp.Prior()}, **kwargs}
    with pytest.raises(error, match=match):
        compare_priors(hmm, data, **arguments)


def test_loo_needs_several_sequences(hmm):
    data, _ = hp.simulate(hmm, TRUE_PARAMS, [30], seed=0)
    with pytest.raises(ValueError, match="at least 2 sequences"):
        compare_priors(hmm, data, {"flat": hp.Prior()}, elpd="loo")
    with pytest.raises(ValueError, match="at most 30 folds"):
        compare_priors(hmm, data, {"flat": hp.Prior()}, method="svi", folds=31)


def test_prior_given_as_dict(hmm, data):
    comparison = compare_priors(
        hmm, data.select([0, 1]), {"b": {"B": 2.0}}, method="svi", folds=2, parallel=False
    )
    assert comparison.priors["b"] == hp.Prior(B=2.0)
    assert comparison.table.loc["b", "prior"] == "B=2"
