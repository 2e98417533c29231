"""Predictive checks: planted misspecification is flagged, well-specified fits are not.

Plug-in checks of MAP fits to 300 observations of 2-state HMMs (means 0 and 3, or rates 2 and 8;
staying probability 0.95). The planted effects: Student-t noise with 3 degrees of freedom around
Gaussian states (sample excess kurtosis 1-5 where the fitted Gaussian HMM replicates about
0 +- 0.4: flagged in 8 of 10 seeds measured at this size, 9 of 10 at 500), and negative-binomial
counts of size 2 around Poisson states (dispersion index about 1.3 times the fitted model's,
twice as many zeros: 10 of 10). The tests ask for 3 of 4 seeds. Well-specified fits: none of 2
seeds flagged here; ``diagnostics/i_misspecification.py`` measures the false-alarm rate over more
seeds. (A MAP fit stuck in a local optimum is flagged, rightly: its autocorrelation is wrong.)
"""

from __future__ import annotations

import numpy as np
import pytest

import hmm_pyro as hp
from hmm_pyro.diagnostics import diagnose
from hmm_pyro.diagnostics.misfit_findings import misspecification_flag
from hmm_pyro.diagnostics.predictive import PredictiveCheck, _holm, predictive_checks

LENGTH = 300
PLANTED_SEEDS = (0, 1, 2, 3)
CONTROL_SEEDS = (0, 1)


def _states(rng: np.random.Generator, stay: float = 0.95) -> np.ndarray:
    switches = rng.random(LENGTH) > stay
    return np.cumsum(switches) % 2


def _data(case: str, seed: int) -> tuple[hp.HMM, np.ndarray]:
    rng = np.random.default_rng(seed)
    states = _states(rng)
    if case.startswith("gaussian"):
        noise = rng.standard_t(3, LENGTH) if case == "gaussian-t3" else rng.standard_normal(LENGTH)
        return hp.HMM(2, hp.Gaussian()), np.array([0.0, 3.0])[states] + noise
    rate = np.array([2.0, 8.0])[states]
    if case == "poisson-nb":
        rate = rng.gamma(2.0, rate / 2.0)  # negative binomial: var = m + m^2 / 2
    return hp.HMM(2, hp.Poisson()), rng.poisson(rate).astype(float)


CASES = ("gaussian", "gaussian-t3", "poisson", "poisson-nb")


@pytest.fixture(scope="module")
def checks() -> dict[tuple[str, int], object]:
    results = {}
    for case in CASES:
        planted = case.endswith(("t3", "nb"))
        for seed in PLANTED_SEEDS if planted else CONTROL_SEEDS:
            hmm, values = _data(case, seed)
            fit = hp.fit_map(hmm, values, restarts=2 if planted else 4, seed=seed, progress=False)
            results[case, seed] = predictive_checks(fit, replicates=100, seed=seed)
    return results


@pytest.mark.parametrize(
    ("case", "signature"),
    [
        ("gaussian-t3", {"excess kurtosis"}),
        ("poisson-nb", {"dispersion index var/mean", "excess kurtosis", "fraction of zeros"}),
    ],
)
def test_planted_misspecification_is_flagged(checks, case, signature):
    flagged = 0
    for seed in PLANTED_SEEDS:
        result = checks[case, seed]
        failed = {check.name for check in result.failed}
        flag = misspecification_flag(result)
        if flag is None:
            continue
        flagged += 1
        assert failed & signature, failed  # the heavy tails / overdispersion themselves
        assert flag.kind == "misspecification" and flag.severity == "warning"
        assert "plug-in predictive check at the point estimate, 100 replicated" in flag.summary
        assert flag.remedies[0].value == "other emission family"
    assert flagged >= 3, f"{case}: {flagged} of {len(PLANTED_SEEDS)} seeds flagged"


@pytest.mark.parametrize("seed", CONTROL_SEEDS)
@pytest.mark.parametrize("case", ["gaussian", "poisson"])
def test_well_specified_fits_are_not_flagged(checks, case, seed):
    result = checks[case, seed]
    assert result.failed == (), [check.to_dict() for check in result.failed]
    assert misspecification_flag(result) is None
    assert result.source == "plug-in" and result.draws == 1 and result.replicates == 100
    kinds = {check.kind for check in result.checks}
    assert kinds == {"marginal", "autocorrelation", "runs", "dwell"}


def test_holm_adjustment_matches_the_step_down_rule():
    p_values = np.array([0.01, 0.04, 0.03, np.nan, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 with m = 4: 0.02, 0.03, 0.06, max(0.06, 0.04) = 0.06
    np.testing.assert_allclose(_holm(p_values), [0.03, 0.06, 0.06, np.nan, 0.02])


def test_a_check_fails_only_beyond_every_replicate():
    replicated = np.linspace(-1.0, 1.0, 50)
    inside = PredictiveCheck("x", "marginal", np.full(50, 0.9), replicated, adjusted_p=1e-6)
    beyond = PredictiveCheck("x", "marginal", np.full(50, 1.5), replicated, adjusted_p=1e-6)
    assert not inside.failed and beyond.failed and beyond.outside
    assert beyond.p_empirical == pytest.approx(2 / 51)
    assert beyond.z == pytest.approx(np.mean(1.5 - replicated) / np.std(replicated, ddof=1))


def test_symbols_are_checked_by_frequency_repeats_and_runs():
    hmm = hp.HMM(2, hp.Categorical(3))
    params = hmm.sample_prior(seed=0)
    data, _ = hp.simulate(hmm, params, [60, 40], seed=0)
    fit = hp.Fit.from_params(hmm, data, params)
    result = predictive_checks(fit, replicates=20, max_lag=2)
    names = [check.name for check in result.checks]
    assert names[:5] == [
        "frequency of symbol 0",
        "frequency of symbol 1",
        "frequency of symbol 2",
        "P(same symbol at lag 1)",
        "P(same symbol at lag 2)",
    ]
    assert "mean run length of a symbol" in names


def test_diagnose_reports_the_checks_and_rejects_bad_replicates():
    hmm, values = _data("gaussian", 3)
    fit = hp.Fit.from_params(hmm, values, hmm.sample_prior(seed=1))
    report = diagnose(fit, predictive=20)
    measured = report.measurements["predictive_checks"]
    assert measured["replicates"] == 20 and measured["source"] == "plug-in"
    with pytest.raises(ValueError, match="predictive"):
        diagnose(fit, predictive=1)
    with pytest.raises(ValueError, match="predictive"):
        diagnose(fit, predictive=-3)


def test_posterior_checks_spread_replicates_over_draws():
    """Uneven shares (7 replicates over 3 draws) take the draw-by-draw decoding route."""
    hmm = hp.HMM(2, hp.Categorical(3))
    draws = hmm.sample_prior(num_samples=6, seed=2)
    data, _ = hp.simulate(hmm, {name: value[0] for name, value in draws.items()}, [50], seed=0)
    fit = hp.Fit.from_params(
        hmm, data, {k: v.reshape(2, 3, *v.shape[1:]) for k, v in draws.items()}
    )
    result = predictive_checks(fit, replicates=7, draws=3)
    assert (result.source, result.replicates, result.draws) == ("posterior", 7, 3)
    dwell = [check for check in result.checks if check.kind == "dwell"]
    assert dwell and all(check.replicated.shape == (7,) for check in dwell)
    # the observed dwell times are decoded with each replicate's draw: 3 distinct values at most
    assert all(len(set(check.observed.tolist())) <= 3 for check in dwell)
