"""SVI runner: MAP and Gaussian guides, restarts, reproducibility, and the symmetric-start trap."""

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoDelta, init_to_median
from pyro.optim import Adam

from hmm_pyro import HMM, Gaussian, Poisson, fit_svi, simulate
from hmm_pyro._parallel import torch_threads


def test_same_seed_gives_bitwise_identical_results(workload_hmm, small_data):
    first = fit_svi(workload_hmm, small_data, steps=150, restarts=2, seed=3, progress=False)
    second = fit_svi(workload_hmm, small_data, steps=150, restarts=2, seed=3, progress=False)
    for name in workload_hmm.param_names:
        assert torch.equal(first.draws()[name], second.draws()[name])
    np.testing.assert_array_equal(
        first.idata.sample_stats.loss.values, second.idata.sample_stats.loss.values
    )
    other = fit_svi(workload_hmm, small_data, steps=150, restarts=2, seed=4, progress=False)
    assert not torch.equal(first.draws()["B"], other.draws()["B"])


def test_map_fit_records_restarts_losses_and_starts(workload_hmm, small_data):
    fit = fit_svi(workload_hmm, small_data, steps=200, restarts=3, seed=0, progress=False)
    attrs = fit.attrs
    assert fit.method == "svi"
    assert (fit.num_chains, fit.num_draws) == (1, 1)
    assert attrs["restarts"] == 3 and len(attrs["restart_seeds"]) == 3
    finals = fit.idata.sample_stats.final_loss.values.ravel()
    assert attrs["best_restart"] == int(np.argmin(finals))
    assert fit.idata.sample_stats.loss.shape[:3] == (1, 1, 3)
    assert min(attrs["init_min_hellinger"]) > 1e-3
    # The kept point is the best restart's point.
    best = attrs["restart_params"]["B"][attrs["best_restart"]]
    assert np.allclose(fit.posterior_mean()["B"].numpy(), best)


def test_pyro_param_store_of_the_caller_is_untouched(workload_hmm, small_data):
    pyro.clear_param_store()
    pyro.param("user_param", torch.tensor(3.0))
    fit_svi(workload_hmm, small_data, steps=20, restarts=1, seed=0, progress=False)
    assert list(pyro.get_param_store().keys()) == ["user_param"]
    assert pyro.param("user_param").item() == 3.0
    pyro.clear_param_store()


@pytest.mark.parametrize("guide", ["normal", "mvn"])
def test_gaussian_guides_store_draws_from_the_guide(workload_hmm, small_data, guide):
    fit = fit_svi(
        workload_hmm,
        small_data,
        guide=guide,
        steps=300,
        restarts=1,
        num_draws=200,
        seed=0,
        progress=False,
    )
    assert (fit.num_chains, fit.num_draws) == (1, 200)
    B = fit.draws()["B"][0]
    assert torch.allclose(B.sum(-1), torch.ones(200, 3, dtype=B.dtype), atol=1e-9)
    assert float(B.std(0).max()) > 1e-4  # draws, not a point


def test_init_median_starts_with_identical_states_and_is_recorded(workload_hmm, small_data):
    fit = fit_svi(
        workload_hmm, small_data, steps=5, restarts=2, init="median", seed=0, progress=False
    )
    assert fit.attrs["init"] == "median"
    # Pyro's median init puts every Dirichlet row at the same point: distance 0 up to round-off.
    assert max(fit.attrs["init_min_hellinger"]) < 1e-12


def test_bad_arguments_are_named(workload_hmm, small_data):
    with pytest.raises(ValueError, match="guide"):
        fit_svi(workload_hmm, small_data, guide="laplace")
    with pytest.raises(ValueError, match="init"):
        fit_svi(workload_hmm, small_data, init="zeros")
    with pytest.raises(ValueError, match="steps"):
        fit_svi(workload_hmm, small_data, steps=0)
    with pytest.raises(ValueError, match="lr"):
        fit_svi(workload_hmm, small_data, lr=-1.0)
    with pytest.raises(TypeError, match="hmm"):
        fit_svi("not a model", small_data)


@pytest.mark.slow
def test_default_map_recovers_B_for_at_least_9_of_10_seeds(workload_hmm, true_params, align_rows):
    errors = []
    for seed in range(10):
        data, _ = simulate(workload_hmm, true_params, [500] * 20, seed=200 + seed)
        fit = fit_svi(workload_hmm, data, seed=seed, progress=False)
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
    fit = fit_svi(hmm, data, seed=0, progress=False)
    estimate = fit.posterior_mean()[name].sort().values
    # Standard error of each state's estimate from its number of visits n_k:
    # sigma_k / sqrt(n_k) (Gaussian mean) or sqrt(rate_k / n_k) (Poisson rate). Allow 4 SE.
    visits = torch.stack([(states == k).sum() for k in range(2)]).double()
    spread = params["sigma"].double() if name == "mu" else truth.sqrt()
    standard_error = spread / visits.sqrt()
    assert bool(((estimate - truth).abs() < 4 * standard_error).all()), (estimate, standard_error)
