"""Causes from direct evidence (``diagnose(deep=True)``) on cheap point estimates.

Each scenario is built so that the effect is large: the over-specified fit's extra state buys
a few nats for 3 more parameters (BIC penalty 8 nats on 200 counts), the separated fit loses
hundreds of nats with one state fewer, and the strong prior pins both rates at 5 while the
data hold rates 2 and 8 (hundreds of nats once the prior is dropped).
"""

import numpy as np
import pytest

from hmm_pyro import HMM, Categorical, Fit, Poisson, Prior, simulate
from hmm_pyro.diagnostics import Flag, Remedy, diagnose
from hmm_pyro.diagnostics.cause import apply_evidence
from hmm_pyro.learning import run_em
from tests.diagnostics.helpers import tensors

TWO_RATES = {
    "pi": np.array([0.5, 0.5]),
    "A": np.array([[0.9, 0.1], [0.1, 0.9]]),
    "rate": np.array([2.0, 9.0]),
}


@pytest.fixture(scope="module")
def counts():
    data, _ = simulate(HMM(2, Poisson()), tensors(TWO_RATES), [200], seed=0)
    return data


def _first(report):
    return report.flags[0]


def _em_fit(hmm, data, start):
    """A MAP point estimate by EM from ``start`` (cheaper here than fit_map's restarts)."""
    point = run_em(hmm, data, tensors(start), max_iter=200).params
    return Fit.from_params(hmm, data, point, method="em")


def test_over_specified_point_estimate_is_not_ok_and_fewer_states_come_first(counts):
    split = {"pi": np.full(3, 1 / 3), "A": np.full((3, 3), 0.1) + 0.7 * np.eye(3)}
    report = diagnose(_em_fit(HMM(3, Poisson()), counts, {**split, "rate": [2.0, 8.0, 10.0]}))
    assert not report.ok
    first = _first(report)
    assert first.kind in ("too_many_states", "emission_collapse", "empty_states"), str(report)
    assert first.severity == "error"
    assert first.cause_kind == "data" and first.remedies[0] is Remedy.FEWER_STATES
    refits = report.measurements["refits"]
    assert refits["supported_states"] == 2
    comparison = refits["comparisons"][0]
    assert comparison["as_good"] and comparison["bic"][1] < comparison["bic"][0]
    assert f"BIC {comparison['bic'][1]:.1f}" in first.cause
    assert "held-out log likelihood" in first.cause


def test_separated_point_estimate_stays_ok(counts):
    report = diagnose(_em_fit(HMM(2, Poisson()), counts, TWO_RATES))
    assert report.ok, str(report)
    comparison = report.measurements["refits"]["comparisons"][0]
    assert not comparison["as_good"] and comparison["bic"][1] > comparison["bic"][0] + 100


def test_strong_prior_is_blamed_only_because_dropping_it_separates_the_states(counts):
    strong = HMM(2, Poisson(), prior=Prior(rate_shape=5000.0, rate_rate=1000.0))
    start = {**tensors(TWO_RATES), "rate": tensors({"r": np.array([4.9, 5.1])})["r"]}
    fit = Fit.from_params(strong, counts, start, method="map")
    report = diagnose(fit)
    first = _first(report)
    assert first.cause_kind == "prior", str(report)
    assert first.remedies[0] is Remedy.OTHER_PRIOR
    sensitivity = report.measurements["refits"]["prior_sensitivity"]
    assert sensitivity["blames_prior"]
    assert sensitivity["min_distance_without_emission_prior"] > 0.3
    assert "without the emission prior" in first.cause


def test_essay_case_with_a_flat_prior_is_not_blamed_on_the_prior():
    """3 states, 2 symbols, flat prior, i.i.d. uniform symbols: the prior alone collapses the
    closest pair with probability 0.89, so the old odds ratio blamed it; the refits show the
    prior changes nothing (Dirichlet(1) is flat: the fit without it is the same)."""
    hmm = HMM(3, Categorical(2))
    iid = {"pi": np.ones(1), "A": np.ones((1, 1)), "B": np.array([[0.5, 0.5]])}
    data, _ = simulate(HMM(1, Categorical(2)), tensors(iid), [150], seed=0)
    start = {
        "pi": np.full(3, 1 / 3),
        "A": np.full((3, 3), 1 / 3),
        "B": np.array([[0.6, 0.4], [0.5, 0.5], [0.4, 0.6]]),
    }
    report = diagnose(_em_fit(hmm, data, start))
    first = _first(report)
    assert first.cause_kind == "data", str(report)
    assert first.remedies[0] is Remedy.FEWER_STATES
    assert report.measurements["refits"]["supported_states"] == 1
    assert "not the prior" in first.cause


def test_deep_false_skips_the_refits_and_says_so(counts):
    point = {**tensors(TWO_RATES), "rate": tensors({"r": np.array([5.0, 5.0 + 1e-6])})["r"]}
    report = diagnose(Fit.from_params(HMM(2, Poisson()), counts, point, method="map"), deep=False)
    assert "refits" not in report.measurements
    assert any(note.startswith("refits skipped (deep=False)") for note in report.notes)
    collapse = report.flag("emission_collapse")
    assert collapse.cause_kind == "not established"
    assert "deep=True" in collapse.cause


def test_tiny_point_estimate_warns_of_insufficient_data():
    data, _ = simulate(HMM(2, Poisson()), tensors(TWO_RATES), [12], seed=0)
    fit = Fit.from_params(HMM(2, Poisson()), data, tensors(TWO_RATES), method="map")
    flag = diagnose(fit, deep=False).flag("insufficient_data")
    assert flag is not None and flag.remedies[0] is Remedy.MORE_DATA
    assert "12 observations for 2 x 1" in flag.summary


def _switching(remedies):
    return Flag(
        kind="label_switching",
        severity="error",
        summary="Label switching: chain(s) 0 switch labels during the run.",
        measured={},
        threshold={},
        cause="...",
        remedies=remedies,
    )


@pytest.mark.parametrize("degenerate", [False, True])
def test_aligned_or_one_mode_fits_never_get_relabelling_advice(counts, degenerate):
    """After relabel (or within one SVI guide), switching states are states the data do not
    tell apart: relabelling again cannot help, fewer states can."""
    fit = Fit.from_params(HMM(2, Poisson()), counts, tensors(TWO_RATES), method="svi")
    flags = [_switching((Remedy.RELABEL, Remedy.ORDERING_CONSTRAINT))]
    if degenerate:
        flags.append(
            Flag("empty_states", "error", "State 1 is empty.", {}, {}, "...", (Remedy.MORE_DATA,))
        )
    for flag in apply_evidence(flags, None, fit, aligned=True):
        assert Remedy.RELABEL not in flag.remedies
        if flag.kind == "label_switching" and degenerate:
            assert flag.remedies[0] is Remedy.FEWER_STATES
    raw = apply_evidence(flags[:1], None, fit, aligned=False)[0]
    assert raw.remedies[0] is Remedy.RELABEL and raw.cause_kind == "label switching"
    # the relabelled fit's own flag ("states still change places", fewer states first) is about
    # states the data do not tell apart
    still = apply_evidence([_switching((Remedy.FEWER_STATES, Remedy.MORE_DATA))], None, fit, True)
    assert still[0].cause_kind == "data"
