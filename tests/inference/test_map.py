"""MAP runner: L-BFGS and Adam (Pyro's SVI with AutoDelta), restarts, the optimum they reach.

The two optimisers maximise the same ``log p(y, theta)``. Agreement is checked on workloads
whose mode is interior (Dirichlet concentrations 2 on the rows that are estimated): there both
reach the same point. With flat Dirichlet priors a categorical mode can lie on the boundary (an
emission probability 0, at infinity in the optimiser's coordinates); L-BFGS then stops on its
change tolerance a little short (measured on ``small_data``, 4 restarts: Adam's best 0.10 nats
higher, 3e-4 nats per observation).
"""

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoDelta, init_to_median
from pyro.optim import Adam

from hmm_pyro import (
    HMM,
    Categorical,
    Gaussian,
    Poisson,
    Prior,
    fit_em,
    fit_map,
    fit_svi_stream,
    simulate,
)
from hmm_pyro._parallel import torch_threads
from hmm_pyro.inference.potential import SITE, Potential
from hmm_pyro.simulate import REFERENCE_PARAMS


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_same_seed_gives_bitwise_identical_results(workload_hmm, small_data, optimizer):
    settings = {"optimizer": optimizer, "steps": 150, "restarts": 2, "progress": False}
    first = fit_map(workload_hmm, small_data, seed=3, **settings)
    second = fit_map(workload_hmm, small_data, seed=3, **settings)
    for name in workload_hmm.param_names:
        assert torch.equal(first.draws()[name], second.draws()[name])
    np.testing.assert_array_equal(
        first.idata.sample_stats.loss.values, second.idata.sample_stats.loss.values
    )
    other = fit_map(workload_hmm, small_data, seed=4, **settings)
    assert not torch.equal(first.draws()["B"], other.draws()["B"])


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_map_fit_records_restarts_losses_and_starts(workload_hmm, small_data, optimizer):
    fit = fit_map(
        workload_hmm,
        small_data,
        optimizer=optimizer,
        steps=200,
        restarts=3,
        seed=0,
        progress=False,
    )
    attrs = fit.attrs
    assert fit.method == "map" and attrs["optimizer"] == optimizer
    assert (fit.num_chains, fit.num_draws) == (1, 1)
    assert attrs["restarts"] == 3 and len(attrs["restart_seeds"]) == 3
    finals = fit.idata.sample_stats.final_loss.values.ravel()
    assert attrs["best_restart"] == int(np.argmin(finals))
    assert fit.idata.sample_stats.loss.shape[:3] == (1, 1, 3)
    assert min(attrs["init_min_hellinger"]) > 1e-3
    # The kept point is the best restart's point.
    best = attrs["restart_params"]["B"][attrs["best_restart"]]
    assert np.allclose(fit.posterior_mean()["B"].numpy(), best)


def test_lbfgs_takes_no_svi_step_and_adam_one_per_step(workload_hmm, small_data, monkeypatch):
    calls = []
    step = SVI.step

    def counted(self, *args, **kwargs):
        calls.append(type(self.guide).__name__)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(SVI, "step", counted)
    fit_map(workload_hmm, small_data, steps=30, restarts=2, seed=0, progress=False)
    assert calls == []
    fit = fit_map(
        workload_hmm,
        small_data,
        optimizer="adam",
        steps=30,
        restarts=2,
        tol=0.0,
        seed=0,
        progress=False,
    )
    assert calls == ["AutoDelta"] * 60 and fit.attrs["steps_run"] == [30, 30]


def _categorical_workload():
    hmm = HMM(3, Categorical(5), Prior(pi=2.0, A=2.0, B=2.0))
    return hmm, simulate(hmm, REFERENCE_PARAMS, [120, 80, 100], seed=7)[0]


def _gaussian_workload():
    hmm = HMM(2, Gaussian(), Prior(mu_loc=0.0, mu_scale=5.0, pi=2.0, A=2.0))
    truth = {
        "pi": torch.tensor([0.5, 0.5]),
        "A": torch.tensor([[0.9, 0.1], [0.2, 0.8]]),
        "mu": torch.tensor([-2.0, 2.0]),
        "sigma": torch.tensor([0.8, 1.2]),
    }
    return hmm, simulate(hmm, truth, [80, 60], seed=1)[0]


@pytest.mark.parametrize(
    "workload", [_categorical_workload, _gaussian_workload], ids=["cat", "gauss"]
)
def test_lbfgs_reaches_the_optimum_and_adam_agrees(workload):
    """L-BFGS stops at a stationary point; Adam's optimum agrees to 1e-3 nats per observation.

    Workloads: 3 states x 5 symbols, 300 symbols (120 + 80 + 100); 2-state Gaussian, 140 steps.
    2 restarts each; Adam at its defaults (``lr=0.05``, windowed tolerance 1e-7, at most 2,000
    steps; it stopped after 250-350). Measured: the two optima differ by 5e-10 and 2e-10 nats in
    total; the largest gradient coordinate at L-BFGS's point is 2.5e-5 and 2.7e-5.
    """
    hmm, data = workload()
    data = hmm.prepare_data(data)
    potential = Potential(hmm, data)
    settings = {"restarts": 2, "seed": 0, "progress": False}
    lbfgs = fit_map(hmm, data, **settings)
    adam = fit_map(hmm, data, optimizer="adam", **settings)
    values = {}
    for fit in (lbfgs, adam):
        assert fit.attrs["converged"][fit.attrs["best_restart"]]
        point = {name: value[0, 0] for name, value in fit.draws().items()}
        coords = potential.unconstrain(point)[SITE]
        value, gradient = potential.value_and_gradient(coords, jacobian=False)
        values[fit.attrs["optimizer"]] = float(value)
        assert float(value) == pytest.approx(-float(fit.idata.sample_stats.final_loss.min()))
        if fit is lbfgs:
            assert float(gradient.abs().max()) < 1e-4  # 1e-6 where L-BFGS's test stops it
    assert abs(values["adam"] - values["lbfgs"]) / data.num_observed < 1e-3


def test_pyro_param_store_of_the_caller_is_untouched(workload_hmm, small_data):
    pyro.clear_param_store()
    pyro.param("user_param", torch.tensor(3.0))
    fit_map(
        workload_hmm, small_data, optimizer="adam", steps=20, restarts=1, seed=0, progress=False
    )
    assert list(pyro.get_param_store().keys()) == ["user_param"]
    assert pyro.param("user_param").item() == 3.0
    pyro.clear_param_store()


def test_init_median_starts_with_identical_states_and_is_recorded(workload_hmm, small_data):
    fit = fit_map(
        workload_hmm,
        small_data,
        optimizer="adam",
        steps=5,
        restarts=2,
        init="median",
        seed=0,
        progress=False,
    )
    assert fit.attrs["init"] == "median"
    # Pyro's median init puts every Dirichlet row at the same point: distance 0 up to round-off.
    assert max(fit.attrs["init_min_hellinger"]) < 1e-12


def test_bad_arguments_are_named(workload_hmm, small_data):
    with pytest.raises(ValueError, match="optimizer"):
        fit_map(workload_hmm, small_data, optimizer="bfgs")
    with pytest.raises(ValueError, match=r"init: optimizer='lbfgs'.*optimizer='adam'"):
        fit_map(workload_hmm, small_data, init="median")
    with pytest.raises(ValueError, match="init"):
        fit_map(workload_hmm, small_data, optimizer="adam", init="zeros")
    with pytest.raises(ValueError, match="lr: is Adam's learning rate"):
        fit_map(workload_hmm, small_data, lr=0.1)
    with pytest.raises(ValueError, match="tol: is Adam's"):
        fit_map(workload_hmm, small_data, tol=1e-3)
    with pytest.raises(ValueError, match="lr"):
        fit_map(workload_hmm, small_data, optimizer="adam", lr=-1.0)
    with pytest.raises(ValueError, match="steps"):
        fit_map(workload_hmm, small_data, steps=0)
    with pytest.raises(TypeError, match="hmm"):
        fit_map("not a model", small_data)


@pytest.mark.parametrize(
    ("prior", "named"), [(Prior(pi=0.1), "pi=0.1"), (Prior(A=0.5, B=2.0), "A=0.5")]
)
def test_a_prior_without_a_map_is_refused_and_em_fits_it(small_data, prior, named):
    """Dirichlet concentrations below 1: ``log p(y, theta)`` grows without bound towards zero
    probabilities, so L-BFGS used to run off (4,000 evaluations, standard deviations of 1e83
    for empty states, all restarts reported converged). The error names the prior and the
    runners that handle it; ``fit_em``'s boundary MAP fits the same model."""
    hmm = HMM(2, Categorical(num_symbols=5), prior)
    for optimizer in ("lbfgs", "adam"):
        with pytest.raises(ValueError, match=rf"prior: .*\({named}.*no MAP exists; use fit_em"):
            fit_map(hmm, small_data, optimizer=optimizer, restarts=1, seed=0, progress=False)
    with pytest.raises(ValueError, match="no MAP exists"):
        fit_svi_stream(hmm, small_data, guide="map", steps=1, seed=0, progress=False)
    fit = fit_em(hmm, small_data, restarts=1, seed=0, progress=False)
    assert np.isfinite(fit.posterior_mean()["B"].numpy()).all()


@pytest.mark.slow
def test_default_map_recovers_B_for_at_least_9_of_10_seeds(workload_hmm, true_params, align_rows):
    errors = []
    for seed in range(10):
        data, _ = simulate(workload_hmm, true_params, [500] * 20, seed=200 + seed)
        fit = fit_map(workload_hmm, data, seed=seed, progress=False)
        estimate = fit.posterior_mean()["B"]
        perm = align_rows(true_params["B"], estimate)
        errors.append(float((estimate[perm] - true_params["B"]).abs().max()))
    assert sum(error < 0.05 for error in errors) >= 9, errors


@pytest.mark.slow
def test_pyro_default_init_collapses_on_the_same_data(workload_data, true_params):
    """The failure mode our runners avoid, reproduced with plain Pyro (DiscreteHMM + AutoDelta)."""
    symbols = workload_data.values[..., 0].long()
    dtype = torch.float64

    def model():
        pi = pyro.sample("pi", dist.Dirichlet(torch.ones(3, dtype=dtype)))
        A = pyro.sample("A", dist.Dirichlet(torch.ones(3, 3, dtype=dtype)).to_event(1))
        B = pyro.sample("B", dist.Dirichlet(torch.ones(3, 5, dtype=dtype)).to_event(1))
        with pyro.plate("sequences", symbols.shape[0]):
            hmm = dist.DiscreteHMM(pi.log(), A.log(), dist.Categorical(probs=B))
            pyro.sample("y", hmm, obs=symbols)

    pyro.clear_param_store()
    guide = AutoDelta(model, init_loc_fn=init_to_median)
    svi = SVI(model, guide, Adam({"lr": 0.05}), Trace_ELBO())
    # One torch thread: two intra-op threads competing with other processes for 2 cores made
    # this loop 20x slower in one suite run (259 s vs 10-13 s).
    with torch_threads(1):
        for _ in range(300):
            svi.step()
    B = guide.median()["B"].detach()
    pyro.clear_param_store()
    frequencies = torch.bincount(symbols.flatten(), minlength=5).to(dtype) / symbols.numel()
    # Three identical rows, each equal to the overall symbol frequencies.
    assert float((B - B[0]).abs().max()) < 1e-6
    assert float((B[0] - frequencies).abs().max()) < 2e-3


@pytest.mark.slow
@pytest.mark.parametrize("emission", [Gaussian(), Poisson()], ids=repr)
def test_map_recovers_gaussian_and_poisson_emissions(emission):
    hmm = HMM(2, emission)
    name = "mu" if isinstance(emission, Gaussian) else "rate"
    truth = torch.tensor([-2.0, 2.0] if name == "mu" else [2.0, 9.0], dtype=torch.float64)
    params = {
        "pi": torch.tensor([0.5, 0.5]),
        "A": torch.tensor([[0.9, 0.1], [0.2, 0.8]]),
        name: truth,
    }
    if name == "mu":
        params["sigma"] = torch.tensor([1.0, 0.5])
    data, states = simulate(hmm, params, [300] * 5, seed=0)
    fit = fit_map(hmm, data, seed=0, progress=False)
    estimate = fit.posterior_mean()[name].sort().values
    # Standard error of each state's estimate from its number of visits n_k:
    # sigma_k / sqrt(n_k) (Gaussian mean) or sqrt(rate_k / n_k) (Poisson rate). Allow 4 SE.
    visits = torch.stack([(states == k).sum() for k in range(2)]).double()
    spread = params["sigma"].double() if name == "mu" else truth.sqrt()
    standard_error = spread / visits.sqrt()
    assert bool(((estimate - truth).abs() < 4 * standard_error).all()), (estimate, standard_error)
