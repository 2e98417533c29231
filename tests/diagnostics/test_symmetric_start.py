"""Symmetric starts: Pyro's init_to_median collapses a MAP fit; our default init does not."""

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoDelta, init_to_median
from pyro.optim import Adam

from hmm_pyro import Fit, fit_map
from hmm_pyro.diagnostics import Remedy, diagnose
from tests.diagnostics.helpers import TRUTH, tensors

PLAIN_PYRO_STEPS = 300
"""The rows reach the overall symbol frequencies (squared Hellinger 4e-16) within 300 steps and
stay there (measured to 1000 steps), so 300 steps show the same fixed point at a third of the
cost."""


def plain_pyro_map_with_init_to_median(data, steps=PLAIN_PYRO_STEPS):
    """The route a Pyro user takes: DiscreteHMM, Dirichlet priors, AutoDelta's default init."""
    y = data.values[..., 0].long()
    one = torch.ones((), dtype=torch.float64)

    def model(y):
        pi = pyro.sample("pi", dist.Dirichlet(one.expand(3)))
        A = pyro.sample("A", dist.Dirichlet(one.expand(3, 3)).to_event(1))
        B = pyro.sample("B", dist.Dirichlet(one.expand(3, 5)).to_event(1))
        with pyro.plate("sequences", y.shape[0]):
            obs = dist.DiscreteHMM(pi.log(), A.log(), dist.Categorical(probs=B))
            pyro.sample("y", obs, obs=y)

    store = pyro.get_param_store()
    saved = store.get_state()
    store.clear()
    try:
        pyro.set_rng_seed(0)
        guide = AutoDelta(model, init_loc_fn=init_to_median)
        svi = SVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO())
        for _ in range(steps):
            svi.step(y)
        with torch.no_grad():
            return {name: value.detach().clone() for name, value in guide.median(y).items()}
    finally:
        store.clear()
        store.set_state(saved)


def test_init_to_median_collapses_and_the_report_names_the_start(workload_hmm, workload_data):
    point = plain_pyro_map_with_init_to_median(workload_data)
    b = point["B"].numpy()
    assert np.abs(b - b[0]).max() < 1e-12  # three identical rows: the measured failure
    fit = Fit.from_params(
        workload_hmm, workload_data, point, method="svi", attrs={"init": "median"}
    )
    report = diagnose(fit, deep=False)
    assert not report.ok
    collapse = report.flag("emission_collapse")
    assert collapse is not None and collapse.severity == "error"
    assert "All 3 states" in collapse.summary
    assert collapse.cause.startswith("symmetric start")
    assert "init='median'" in collapse.cause
    assert collapse.remedies[0] is Remedy.SYMMETRY_BREAKING_INIT
    assert "init" in collapse.remedies[0].advice
    assert collapse.measured["distance_to_one_state_fit"] < 1e-6
    start = report.flag("symmetric_start")
    assert start is not None and start.severity == "error"
    # Without the recorded init, the fingerprint (identical rows = one-state fit) names it.
    bare = diagnose(Fit.from_params(workload_hmm, workload_data, point, method="svi"), deep=False)
    assert bare.flag("emission_collapse").cause.startswith("symmetric start")
    assert "one-state fit" in bare.flag("emission_collapse").cause
    assert "inferred from the result" in bare.flag("symmetric_start").cause


def test_default_init_gives_no_collapse(workload_hmm, workload_data):
    fit = fit_map(workload_hmm, workload_data, seed=0, progress=False)
    report = diagnose(fit, deep=False)
    assert report.flag("emission_collapse") is None
    assert report.flag("symmetric_start") is None
    assert report.measurements["collapse"]["median_min_distance"] > 0.2
    assert len(report.measurements["restarts"]["min_distance"]) == 4


def test_a_median_start_that_escaped_is_still_warned(workload_hmm, workload_data):
    # Escaping the saddle depends on round-off (it changed with the kernel's arithmetic), so
    # the escaped run is built from its record: a symmetric start, separated states at the end.
    fit = Fit.from_params(
        workload_hmm,
        workload_data,
        tensors(TRUTH),
        method="svi",
        attrs={"init": "median", "init_min_hellinger": [0.0]},
    )
    report = diagnose(fit, deep=False)
    assert report.flag("emission_collapse") is None
    flag = report.flag("symmetric_start")
    assert flag is not None and flag.severity == "warning"
    assert "round-off" in flag.summary
    assert flag.remedies == (Remedy.SYMMETRY_BREAKING_INIT,)


def test_pyro_median_start_is_recorded_and_flagged(workload_hmm, workload_data):
    fit = fit_map(
        workload_hmm,
        workload_data,
        optimizer="adam",
        init="median",
        restarts=1,
        seed=0,
        progress=False,
    )
    assert fit.attrs["init_min_hellinger"][0] < 1e-12
    report = diagnose(fit, deep=False)
    flag = report.flag("symmetric_start")
    assert flag is not None
    # Stayed on the saddle (an error, with the collapse) or escaped by round-off (a warning).
    stayed = report.flag("emission_collapse") is not None
    assert flag.severity == ("error" if stayed else "warning")


def test_one_symmetric_nuts_chain_is_named(workload_hmm, small_data):
    fit = Fit.from_params(
        workload_hmm,
        small_data,
        tensors(TRUTH),
        method="nuts",
        attrs={"init": "user", "init_min_hellinger": [0.3, 1e-9, 0.25, 0.4]},
    )
    flag = diagnose(fit, deep=False).flag("symmetric_start")
    assert flag is not None and flag.measured["symmetric_starts"] == [1]
    assert "chain/restart 1" in flag.cause
