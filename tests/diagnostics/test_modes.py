"""Different modes or not yet converged: invariant R-hat read against Monte Carlo error; chains
in worse modes named by their gap in nats."""

import math

import numpy as np
import pandas as pd
import pytest

from hmm_pyro.diagnostics import diagnose
from hmm_pyro.diagnostics.convergence import ConvergenceStatistics, convergence_statistics
from hmm_pyro.diagnostics.findings import convergence_flags
from hmm_pyro.diagnostics.mode_findings import chain_modes_flag, nats
from hmm_pyro.diagnostics.modes import chain_gap, chain_modes, family_level, rhat_noise
from hmm_pyro.fit.inference_data import az
from hmm_pyro.labels.labelling import log_posterior
from tests.diagnostics.helpers import TRUTH, crafted_fit, noisy_draws

DRAWS = 600


def ar1(seed, chains=2, draws=DRAWS, phi=0.6, burn=200):
    """Converged, autocorrelated chains (per-chain ESS about draws (1 - phi) / (1 + phi))."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((chains, draws + burn))
    values = np.empty_like(noise)
    values[:, 0] = noise[:, 0] / math.sqrt(1 - phi**2)
    for step in range(1, draws + burn):
        values[:, step] = phi * values[:, step - 1] + noise[:, step]
    return values[:, burn:]


def log_likelihood_with_gap(gap_sd, seed=50):
    """Two chains' total log likelihoods (nats), chain 1 ``gap_sd`` sd above chain 0."""
    values = ar1(seed)
    sd = values.std(1, ddof=1).mean()
    values[1] += values[0].mean() + gap_sd * sd - values[1].mean()
    return -700.0 + 4.0 * values


def flag_for(workload_hmm, log_lik):
    draws = noisy_draws(TRUTH, 2, DRAWS, seed=3)  # independent draws: converged parameters
    stats = convergence_statistics(workload_hmm, draws, log_lik, np.zeros_like(log_lik))
    flags = convergence_flags(stats, switching=False, degenerate_states=())
    assert [flag.kind for flag in flags] == ["not_converged"], [str(flag) for flag in flags]
    return stats, flags[0]


def test_means_within_monte_carlo_error_are_not_yet_converged_not_modes(workload_hmm):
    log_lik = log_likelihood_with_gap(0.1)
    rhat = float(az.rhat(log_lik))
    assert 1.011 < rhat < 1.013  # the crafted case: R-hat 1.012, means 0.1 sd apart
    stats, flag = flag_for(workload_hmm, log_lik)
    gap = stats.gaps["log_likelihood"]
    assert gap.gap_sd == pytest.approx(0.1, abs=1e-3) and gap.standard_errors < 1.0
    assert flag.severity == "warning"
    assert flag.summary.startswith("Not yet converged: run longer")
    assert "different modes" not in flag.summary
    assert "within its own sampling noise" in flag.cause
    assert "0.10 sd in log_likelihood" in flag.cause
    assert rhat < flag.measured["r_hat_noise"]
    assert [remedy.value for remedy in flag.remedies] == ["longer run"]


def test_chains_many_standard_errors_apart_are_in_different_modes(workload_hmm):
    log_lik = log_likelihood_with_gap(3.0)
    stats, flag = flag_for(workload_hmm, log_lik)
    gap = stats.gaps["log_likelihood"]
    assert gap.chains == (1, 0) and gap.standard_errors > 15
    assert flag.severity == "error"
    assert flag.summary.startswith("Chains in different modes: chains 1 and 0 differ by 3.00 sd")
    nats = log_lik[1].mean() - log_lik[0].mean()
    assert f"{nats:.3g} nats" in flag.summary
    assert f"{gap.standard_errors:.1f} Monte Carlo standard errors" in flag.summary
    assert "not mere label switching" in flag.cause
    assert flag.measured["chain_gap"]["gap_sd"] == pytest.approx(3.0, abs=1e-2)
    np.testing.assert_allclose(flag.measured["chain_log_posterior"], log_lik.mean(1))


def test_r_hat_noise_shrinks_with_ess():
    assert rhat_noise(200.0, 2, 600) > rhat_noise(2000.0, 2, 600) > 1.0
    assert rhat_noise(float("nan"), 4, 100) == math.inf
    # independent draws: the bound sits just above the typical R-hat
    assert 1.0 < rhat_noise(800.0, 4, 200) < 1.01


def test_rhat_bound_is_family_wise_over_the_quantities_checked():
    """Fifteen quantities at a 1% level each would raise a false alarm in ~15% of converged
    fits; each is held to the 1 - 0.01/15 quantile instead, and the convergence table applies
    that level for as many rows as it has (a single-quantity bound would fail R-hat 1.026 at
    ESS 250 over 2 x 150 draws, as in one benchmark fit of a separated truth)."""
    assert family_level(1) == pytest.approx(0.99)
    assert family_level(15) == pytest.approx(1 - 0.01 / 15)
    assert family_level(0) == pytest.approx(0.99)
    single, joint = rhat_noise(250.0, 2, 150), rhat_noise(250.0, 2, 150, family_level(15))
    assert single < 1.026 < joint
    rows = [f"q{index}" for index in range(15)]
    table = pd.DataFrame(
        {"r_hat": 1.026, "ess_bulk": 250.0, "ess_tail": 250.0}, index=rows, dtype=float
    )
    stats = ConvergenceStatistics(table, table, 0, 300, 2)
    assert stats.rhat_noise(table).iloc[0] == pytest.approx(joint)
    assert stats.within_noise(table, rows)
    assert not stats.within_noise(table.iloc[:1], rows[:1])


def test_chain_gap_of_constant_chains_is_none():
    assert chain_gap("x", np.ones((2, 10))) is None
    assert chain_gap("x", np.zeros((1, 10))) is None


# ---------------------------------------------------------------------------- chain modes
def four_chains(seed, offsets=(0.0, 0.0, 0.0, 0.0), draws=400, sd=4.0, base=-1000.0):
    """Four converged AR(1) chains of a log posterior, shifted by ``offsets`` nats."""
    values = base + sd * ar1(seed, chains=4, draws=draws, phi=0.5)
    return values + np.asarray(offsets)[:, None]


def test_converged_chains_are_never_in_worse_modes():
    """False alarms: none in 30 sets of four converged chains (AR(1), ESS about 130 each)."""
    for seed in range(30):
        values = four_chains(seed)
        modes = chain_modes(values, values - 5.0)
        assert modes.worse == (), (seed, modes.to_dict())
        assert chain_modes_flag(modes) is None


def test_a_chain_2350_nats_below_is_named_with_its_gap():
    values = four_chains(1)
    values[1] = values[0] - 2350.0
    values[2], values[3] = values[0] - 0.5, values[0] - 1.0  # up to 0.25 sd below chain 0
    modes = chain_modes(values, values - 10.0)
    assert modes.best == 0 and modes.worse == (1,)
    assert modes.gap[1] == pytest.approx(2350.0)
    flag = chain_modes_flag(modes)
    assert flag.kind == "chains_in_different_modes" and flag.severity == "error"
    assert flag.summary.startswith("Chains 2,350 nats apart in mean log posterior: chain 1 ")
    assert "below chain 0" in flag.summary and "log likelihood 2,350 nats lower" in flag.summary
    assert flag.measured["worse_chains"] == [1]
    assert [r.value for r in flag.remedies][:2] == ["start at the best MAP restarts", "longer run"]
    assert "stationary" in flag.cause


def test_a_chain_still_climbing_is_told_to_warm_up_longer():
    values = four_chains(2)
    values[3] = values[3] - 600.0 + np.linspace(0.0, 300.0, values.shape[1])  # rising
    modes = chain_modes(values, values)
    assert modes.worse == (3,) and modes.climbing == (3,)
    flag = chain_modes_flag(modes)
    assert flag.remedies[0].value == "longer run"
    assert "chain 3 still rose between the first and second half of its draws" in flag.cause


def test_chain_modes_needs_two_chains_of_four_draws():
    assert chain_modes(np.zeros((1, 50)), np.zeros((1, 50))) is None
    assert chain_modes(np.zeros((2, 3)), np.zeros((2, 3))) is None


def test_diagnose_names_the_gap_of_a_chain_in_a_worse_mode(workload_hmm, small_data):
    """Chain 1's draws merge states 0 and 1: hundreds of nats below chain 0, at every draw."""
    good = noisy_draws(TRUTH, 1, 40, seed=4)
    merged = {**TRUTH, "B": TRUTH["B"].copy()}
    merged["B"][[0, 1]] = TRUTH["B"][[0, 1]].mean(0)
    bad = noisy_draws(merged, 1, 40, seed=5)
    draws = {name: np.concatenate([good[name], bad[name]]) for name in good}
    fit = crafted_fit(workload_hmm, small_data, draws)
    report = diagnose(fit, predictive=0)
    flag = report.flag("chains_in_different_modes")
    assert flag is not None and flag.measured["worse_chains"] == [1]
    means = log_posterior(fit).mean(1)
    assert flag.measured["gap_nats"][1] == pytest.approx(means[0] - means[1])
    assert means[0] - means[1] > 30
    assert f"{nats(means[0] - means[1])} nats apart" in flag.summary
    assert report.measurements["chain_modes"]["worse_chains"] == [1]
    assert "predictive checks skipped" in " ".join(report.notes)


def test_a_small_gap_within_the_posteriors_spread_is_not_a_mode():
    """Poorly mixing chains 2 nats apart: below sqrt(d / 2) = 3.2 nats for 20 parameters."""
    values = four_chains(3, sd=0.5)
    values[1] = values[0] - 2.0
    assert chain_modes(values, values).worse == (1,)  # no floor: 4 within-chain sd
    assert chain_modes(values, values, num_params=20).worse == ()
