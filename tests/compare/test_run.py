"""compare_priors: ELPD by PSIS-LOO and by (blocked) K-fold CV, flags, sensitivity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.compare import compare_priors
from hmm_pyro.simulate import REFERENCE_PARAMS
from hmm_pyro.starts import derive_seeds
from tests.compare.helpers import COVARIATE_PRIORS, PRIORS, forward_log_likelihood

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


# ---------------------------------------------------------------------------- covariates
def _design(hours: np.ndarray) -> np.ndarray:
    """Intercept and ``hour`` standardised by hand over all the steps (population sd)."""
    return np.column_stack([np.ones(len(hours)), (hours - hours.mean()) / hours.std()])


def test_the_numpy_reference_agrees_with_the_package(
    covariate_hmm, covariate_truth, covariate_data
):
    """The independent forward recursion used below, checked once against hmm.log_likelihood
    (with two steps missing): if it were wrong, the held-out check could not pass."""
    symbols = covariate_data.values[0, :, 0].numpy().copy()
    symbols[[3, 40]] = np.nan
    hours = covariate_data.covariates.raw[0, :, 0].numpy()
    truth = {name: value.numpy() for name, value in covariate_truth.items()}
    expected = forward_log_likelihood(
        truth["pi"], truth["beta_A"], truth["B"], _design(hours), symbols
    )
    masked = hp.Sequences([symbols], covariates=covariate_data.covariates)
    got = covariate_hmm.log_likelihood(covariate_truth, masked)
    np.testing.assert_allclose(got.item(), expected, rtol=1e-12)


@pytest.mark.xdist_group("compare_covariates")
def test_map_comparison_of_a_covariate_model(covariate_map_comparison, covariate_data):
    comparison = covariate_map_comparison
    table = comparison.table
    assert list(table.index) == list(COVARIATE_PRIORS) and COLUMNS <= set(table.columns)
    assert np.isfinite(table["elpd"]).all() and np.isfinite(table["elpd_se"]).all()
    assert comparison.elpd_method.startswith("3-fold blocked CV")
    assert list(comparison.pointwise.index) == [f"sequence 0 block {b}" for b in range(3)]
    for fit in comparison.fits.values():  # the fits to all the data carry the covariates
        covariates = fit.data.covariates
        assert covariates.same_scale(covariate_data.covariates)
        torch.testing.assert_close(covariates.raw, covariate_data.covariates.raw, rtol=0, atol=0)


@pytest.mark.xdist_group("compare_covariates")
def test_held_out_block_scores_use_every_steps_covariates(
    covariate_map_comparison, covariate_hmm, covariate_data
):
    """Blocked CV with covariates, recomputed apart: fold f refits by MAP (same seed and options
    as the comparison's fold task) on the data with block f masked and the covariates of every
    step (standardised over all the data), and its held-out score is the NumPy forward
    recursion's log p(y) - log p(y with block f missing) at the refit's mode. Agreement to
    1e-7 relative, about 2e-6 nats (the task may sum in another order, moving the mode by
    about 1e-10). Measured once on these data: zeroing the held-out steps' covariates moves the
    three scores by 0.19, 0.48 and 1.27 nats, standardising over the training steps only by
    0.009, 0.22 and 0.054."""
    symbols = covariate_data.values[0, :, 0].numpy()
    hours = covariate_data.covariates.raw[0, :, 0].numpy()
    design = _design(hours)
    seeds = derive_seeds(5, 3)
    hmm = covariate_hmm.with_prior(COVARIATE_PRIORS["flat"])
    for fold, block in enumerate(np.array_split(np.arange(len(symbols)), 3)):
        masked = symbols.copy()
        masked[block] = np.nan
        covariates = hp.Covariates([hours], ["hour"])  # rebuilt from the raw values
        train = hp.Sequences([masked], covariates=covariates)
        refit = hp.fit_map(hmm, train, seed=seeds[fold], restarts=1, progress=False)
        mode = {name: value[0, 0].numpy() for name, value in refit.draws().items()}
        args = (mode["pi"], mode["beta_A"], mode["B"], design)
        expected = forward_log_likelihood(*args, symbols) - forward_log_likelihood(*args, masked)
        got = covariate_map_comparison.pointwise.loc[f"sequence 0 block {fold}", "flat"]
        np.testing.assert_allclose(got, expected, rtol=1e-7)


def test_nuts_comparison_of_a_covariate_model_computes_loo_and_sensitivity(
    covariate_hmm, covariate_truth
):
    """PSIS-LOO over sequences and power-scaling use the covariate likelihood: the per-sequence
    log likelihood the fit stores (what az.loo and az.psens read) equals the NumPy forward
    recursion with the covariates, draw by draw. (60 + 30 iterations: seeds 0-9 all gave
    finite p_loo and sensitivities.)"""
    hours = [12.0 + 6.0 * np.sin(2 * np.pi * (np.arange(16) + 5 * n) / 24) for n in range(5)]
    covariates = hp.Covariates(hours, ["hour"])
    data, _ = hp.simulate(covariate_hmm, covariate_truth, [16] * 5, covariates=covariates, seed=4)
    comparison = compare_priors(
        covariate_hmm,
        data,
        {"flat": hp.Prior()},
        method="nuts",
        seed=0,
        parallel=False,
        chains=1,
        warmup=60,  # with 25 a chain stayed put in 1 of 6 seeds (p_loo 0, psens NaN)
        draws=30,
    )
    row = comparison.table.loc["flat"]
    assert comparison.elpd_method.startswith("PSIS-LOO")
    assert np.isfinite([row["elpd"], row["p_loo"]]).all() and row["pareto_k_max"] >= 0
    assert np.isfinite([row["psens_prior"], row["psens_likelihood"]]).all()
    fit = comparison.fits["flat"]
    stored = fit.idata.log_likelihood["y"].values[0]  # (draw, sequence)
    draws = {name: value[0].numpy() for name, value in fit.draws().items()}
    for s in (0, 15, 29):
        for n in range(5):
            expected = forward_log_likelihood(
                draws["pi"][s],
                draws["beta_A"][s],
                draws["B"][s],
                _design(np.concatenate(hours))[16 * n : 16 * (n + 1)],
                data.values[n, :, 0].numpy(),
            )
            np.testing.assert_allclose(stored[s, n], expected, rtol=1e-10)


def test_covariate_model_refuses_a_transition_prior_by_setting_name(covariate_hmm, covariate_data):
    with pytest.raises(ValueError, match=r"^priors\['sticky'\]: prior: \['stickiness'\] set"):
        compare_priors(
            covariate_hmm, covariate_data, {"flat": hp.Prior(), "sticky": hp.Prior(stickiness=3)}
        )
