"""Restarts at different solutions within a few nats: weak identifiability."""

import numpy as np

from hmm_pyro import HMM, Fit, Poisson, simulate
from hmm_pyro.diagnostics import diagnose
from hmm_pyro.diagnostics.restarts import restart_comparison
from tests.diagnostics.helpers import tensors

BEST = {"pi": [0.5, 0.5], "A": [[0.9, 0.1], [0.1, 0.9]], "rate": [2.0, 10.0]}
SWAPPED = {"pi": [0.5, 0.5], "A": [[0.9, 0.1], [0.1, 0.9]], "rate": [10.0, 2.0]}
OTHER = {"pi": [0.5, 0.5], "A": [[0.9, 0.1], [0.1, 0.9]], "rate": [4.0, 14.0]}


def _fit(losses, solutions):
    hmm = HMM(2, Poisson())
    data, _ = simulate(hmm, tensors({k: np.asarray(v) for k, v in BEST.items()}), [60], seed=0)
    attrs = {
        "best_restart": 0,
        "restart_params": {name: [s[name] for s in solutions] for name in BEST},
    }
    point = tensors({k: np.asarray(v) for k, v in BEST.items()})
    return Fit.from_params(
        hmm,
        data,
        point,
        method="map",
        attrs=attrs,
        sample_stats={"final_loss": np.asarray(losses, dtype=float)[None, None]},
        sample_stats_dims={"final_loss": ["restart"]},
    )


def test_restarts_at_another_solution_within_two_nats_are_flagged():
    # restart 1: the same solution with the labels swapped (not another solution);
    # restart 2: another solution 1 nat lower; restart 3: another solution 10 nats lower.
    fit = _fit([100.0, 100.5, 101.0, 110.0], [BEST, SWAPPED, OTHER, OTHER])
    comparison = restart_comparison(fit)
    assert comparison.objective == "log posterior"
    np.testing.assert_allclose(comparison.gaps, [0.0, 0.5, 1.0, 10.0])
    assert comparison.distances[1] < 1e-12 and comparison.distances[2] > 0.05
    assert comparison.close == (2,)
    report = diagnose(fit, deep=False)
    flag = report.flag("weak_identifiability")
    assert flag is not None and flag.severity == "warning"
    assert "restart 2: log posterior 1.00 nats below" in flag.summary
    assert set(flag.measured["solutions"]) == {"0", "2"}
    assert flag.measured["solutions"]["2"]["rate"] == [4.0, 14.0]
    restarts = report.measurements["restarts"]
    assert restarts["values"] == [-100.0, -100.5, -101.0, -110.0]
    assert report.measurements["summary"]["restart_log_posterior"].tolist() == restarts["values"]


def test_restarts_at_one_solution_are_not_flagged():
    report = diagnose(_fit([100.0, 100.2, 100.1], [BEST, SWAPPED, BEST]), deep=False)
    assert report.flag("weak_identifiability") is None
    assert len(report.measurements["restarts"]["values"]) == 3
