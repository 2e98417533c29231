"""Different modes or not yet converged: invariant R-hat read against Monte Carlo error."""

import math

import numpy as np
import pytest

from hmm_pyro.diagnostics.convergence import convergence_statistics
from hmm_pyro.diagnostics.findings import convergence_flags
from hmm_pyro.diagnostics.modes import chain_gap, rhat_noise
from hmm_pyro.fit.inference_data import az
from tests.diagnostics.helpers import TRUTH, noisy_draws

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


def test_chain_gap_of_constant_chains_is_none():
    assert chain_gap("x", np.ones((2, 10))) is None
    assert chain_gap("x", np.zeros((1, 10))) is None
