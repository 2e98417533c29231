"""The NUTS/MAP potential equals the closed-form autograd reference (value and gradient)."""

import numpy as np
import pytest
import torch
from pyro.infer.mcmc.util import initialize_model, potential_grad

import hmm_pyro as hp
from hmm_pyro import HMM, Categorical, Gaussian, Poisson, Prior, simulate
from hmm_pyro.inference.coordinates import isometric_basis
from hmm_pyro.inference.potential import SITE, Potential
from hmm_pyro.kernels import _numba, categorical
from hmm_pyro.kernels._numba import symbol_sweeps
from tests.inference.reference_potentials import ClosedFormPotential, DistributionPotential

FAMILIES = [Categorical(num_symbols=4), Gaussian(), Gaussian(dim=2), Poisson(), Poisson(dim=2)]


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_value_and_gradient_equal_the_autograd_potential(emission):
    prior = Prior(
        pi=[1.0, 2.0, 0.5], stickiness=2.0, B=0.7, mu_loc=[-1.0, 0.0, 1.0], rate_shape=2.0
    )
    hmm = HMM(3, emission, prior)
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), [30, 20, 25], seed=1)
    values = [np.array(row) for row in data.to_list()]
    values[1][4] = np.nan  # a missing observation (one coordinate for D = 2)
    ours = Potential(hmm, values)
    reference = ClosedFormPotential(hmm, values)
    for seed in range(3):
        params = hmm.sample_prior(seed=10 + seed)
        flat = ours.unconstrain(params)
        grads, value = potential_grad(ours, flat)
        expected_grads, expected = potential_grad(reference, reference.unconstrain(params))
        # float64, values of O(100-1000) nats.
        assert abs(float(value) - float(expected)) < 1e-9
        joined = ours.join(expected_grads)
        assert torch.allclose(grads[SITE], joined, atol=1e-8, rtol=0)
        back = ours.constrain(flat)
        for name in params:
            assert torch.allclose(back[name], params[name], atol=1e-12)


def test_evaluations_are_counted():
    hmm = HMM(2, Poisson())
    potential = Potential(hmm, simulate(hmm, hmm.sample_prior(seed=0), 20, seed=0)[0])
    coords = potential.unconstrain(hmm.sample_prior(seed=1))
    potential(coords)
    potential(coords)
    assert potential.num_evaluations == 2
    assert potential.size == potential.coordinates.size == 1 + 2 + 2


@pytest.mark.parametrize("emission", FAMILIES, ids=repr)
def test_without_jacobian_it_is_the_map_objective_and_its_gradient(emission):
    hmm = HMM(3, emission, Prior(stickiness=1.0, rate_shape=2.0, B=1.5))
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), [40, 15], seed=2)
    ours = Potential(hmm, data)
    reference = ClosedFormPotential(hmm, data)
    params = hmm.sample_prior(seed=4)
    value, gradient = ours.value_and_gradient(ours.unconstrain(params)[SITE], False)
    coords = {k: v.requires_grad_() for k, v in reference.unconstrain(params).items()}
    expected = reference.log_joint(coords, jacobian=False)
    expected_grads = torch.autograd.grad(expected, list(coords.values()))
    assert abs(float(value - expected.detach())) < 1e-9
    joined = ours.join(dict(zip(coords, expected_grads, strict=True)))
    assert torch.allclose(gradient, joined, atol=1e-8, rtol=0)


@pytest.mark.parametrize("num_states", [2, 3, 6])  # sweeps compiled per K up to 4, general above
def test_categorical_lanes_with_length_one_and_missing_edges(num_states):
    """Edge steps of the lane kernel: a one-step sequence, missing first and last steps."""
    hmm = HMM(num_states, Categorical(num_symbols=4), Prior(B=0.8))
    values = [
        np.array([2.0]),
        np.array([np.nan, 1.0, 3.0, 0.0, np.nan]),
        np.array([1.0, np.nan, 2.0]),
        np.array([np.nan]),
    ]
    ours = Potential(hmm, values)
    reference = ClosedFormPotential(hmm, values)
    for seed in range(3):
        params = hmm.sample_prior(seed=20 + seed)
        grads, value = potential_grad(ours, ours.unconstrain(params))
        expected_grads, expected = potential_grad(reference, reference.unconstrain(params))
        assert abs(float(value) - float(expected)) < 1e-9
        assert torch.allclose(grads[SITE], ours.join(expected_grads), atol=1e-9, rtol=0)


@pytest.mark.parametrize("num_states", [2, 3, 4, 6])
def test_categorical_potential_equals_the_table_route(num_states, monkeypatch):
    """Independent of the categorical kernel: the reference through the (N, T, K) table."""
    hmm = HMM(num_states, Categorical(num_symbols=5), Prior(B=0.8))
    data, _ = simulate(hmm, hmm.sample_prior(seed=num_states), [40, 25, 33], seed=1)
    values = [np.array(row) for row in data.to_list()]
    values[1][3] = np.nan
    ours = Potential(hmm, values)
    monkeypatch.setattr(categorical, "shared_parameters", lambda *tensors: False)

    def refuse(*args):
        raise AssertionError("the reference potential took the categorical kernel's numba route")

    monkeypatch.setattr(_numba.CategoricalLogLikelihood, "apply", refuse)
    table = ClosedFormPotential(hmm, values)
    for seed in range(3):
        params = hmm.sample_prior(seed=100 + seed)
        grads, value = potential_grad(ours, ours.unconstrain(params))
        expected_grads, expected = potential_grad(table, table.unconstrain(params))
        assert abs(float(value) - float(expected)) < 1e-9
        assert torch.allclose(grads[SITE], ours.join(expected_grads), atol=1e-9, rtol=0)


@pytest.mark.parametrize("num_states", [3, 9])
def test_categorical_potential_in_two_halves(num_states, monkeypatch):
    """A batch with enough work sweeps its lanes in two halves (side by side with two numba
    threads): value and gradient equal the table route to 1e-9, and the one-thread and
    two-thread results are equal bit for bit (a chain's draws must not depend on the number of
    threads). The halves are counted, so a route that stopped cutting would fail."""
    hmm = HMM(num_states, Categorical(num_symbols=5), Prior(B=0.8))
    data, _ = simulate(hmm, hmm.sample_prior(seed=num_states), [30] * 20, seed=2)
    values = [np.array(row) for row in data.to_list()]
    values[4][7] = np.nan
    ours = Potential(hmm, values)
    table = ClosedFormPotential(hmm, values)
    monkeypatch.setattr(symbol_sweeps, "LANE_THREADS_MIN_WORK", 1)
    widths = []
    lanes = symbol_sweeps.categorical_lanes
    monkeypatch.setattr(
        symbol_sweeps, "categorical_lanes", lambda *a: widths.append(a[3].shape[1]) or lanes(*a)
    )
    params = hmm.sample_prior(seed=5)
    point = ours.unconstrain(params)[SITE].numpy()
    results = []
    for threads in (1, 2):
        monkeypatch.setattr(symbol_sweeps.numba, "get_num_threads", lambda threads=threads: threads)
        results.append(ours.numpy_value_and_gradient(point))
    assert sorted(widths) == [8, 8, 12, 12]  # 20 lanes cut at 8 (a multiple of HALF_LANES), twice
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    expected_grads, expected = potential_grad(table, table.unconstrain(params))
    assert abs(results[0][0] + float(expected)) < 1e-9  # Pyro's potential energy: -log joint
    np.testing.assert_allclose(results[0][1], -ours.join(expected_grads).numpy(), atol=1e-9, rtol=0)


TORCH_ROUTE = [
    hp.NegativeBinomial(),
    hp.StudentT(dim=2),
    hp.Product(symbols=Categorical(num_symbols=3), level=Gaussian()),
]


@pytest.mark.parametrize("emission", TORCH_ROUTE, ids=repr)
def test_torch_route_equals_the_potential_pyro_builds(emission):
    """Families without a numba log joint: autograd potential against Pyro's, value and gradient.

    Pyro's potential (``initialize_model`` on :meth:`HMM.model`) and ours share the coordinates
    (``biject_to`` of each prior's support); with and without the Jacobian (the MAP objective).
    """
    hmm = HMM(3, emission, Prior(pi=[1.0, 2.0, 0.5], stickiness=2.0, mu_loc=[-1.0, 0.0, 1.0]))
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), [30, 20], seed=1)
    values = [np.array(row) for row in data.to_list()]
    values[1][4] = np.nan  # a missing observation (one coordinate when D = 2)
    ours = Potential(hmm, values)
    assert ours.route == "torch"
    reference = DistributionPotential(hmm, values)
    _, pyro_potential, _, _ = initialize_model(hmm.model, model_args=(ours.data,))
    for seed in range(2):
        params = hmm.sample_prior(seed=10 + seed)
        z = reference.unconstrain(params)
        grads, value = potential_grad(ours, ours.unconstrain(params))
        expected_grads, expected = potential_grad(pyro_potential, z)
        assert abs(float(value) - float(expected)) < 1e-9
        assert torch.allclose(grads[SITE], ours.join(expected_grads), atol=1e-8, rtol=0)
        back = ours.constrain(ours.unconstrain(params))
        for name in params:
            assert torch.allclose(back[name], params[name], atol=1e-12)
    # Without the Jacobian: the MAP objective, log p(y, theta) at T(z).
    z = {name: value.requires_grad_() for name, value in reference.unconstrain(params).items()}
    constrained = reference.constrain(z)
    objective = (
        sum(d.log_prob(constrained[name]) for name, d in hmm.prior_distributions().items())
        + hmm.log_likelihood(constrained, ours.data).sum()
    )
    expected_grads = torch.autograd.grad(objective, list(z.values()))
    value, gradient = ours.value_and_gradient(ours.unconstrain(params)[SITE], jacobian=False)
    assert abs(float(value - objective.detach())) < 1e-9
    joined = ours.join(dict(zip(z, expected_grads, strict=True)))
    assert torch.allclose(gradient, joined, atol=1e-8, rtol=0)


@pytest.mark.parametrize("emission", [Categorical(num_symbols=4), Gaussian()], ids=repr)
def test_isometric_simplex_coordinates_are_a_change_of_variables(emission):
    """``simplex="isometric log-ratio"``: the log joint in those coordinates, built here from
    the model's prior and likelihood and autograd's Jacobian of each simplex row; the gradient
    equals central finite differences (step 1e-6: errors about 1e-7 on values of ~100 nats)."""
    hmm = HMM(3, emission, Prior(pi=[1.0, 2.0, 0.5], B=0.7))
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), [30, 20], seed=1)
    ours = Potential(hmm, data, simplex="isometric log-ratio")
    params = hmm.sample_prior(seed=5)
    flat = ours.unconstrain(params)[SITE]
    for name, value in ours.constrain({SITE: flat}).items():
        torch.testing.assert_close(value, params[name], rtol=0, atol=1e-12)
    expected = hmm.log_prior(params) + hmm.log_likelihood(params, data).sum()
    coordinates = ours.coordinates
    for name, kind, shape in coordinates.layout:
        coords = coordinates.split(flat)[name]
        if kind == "simplex":
            basis = isometric_basis(shape[-1] + 1)
            for row in coords.reshape(-1, shape[-1]):
                jacobian = torch.autograd.functional.jacobian(
                    lambda u, basis=basis: torch.softmax(basis @ u, -1)[:-1], row
                )
                expected = expected + torch.linalg.slogdet(jacobian)[1]
        elif kind == "log":
            expected = expected + coords.sum()
    value, gradient = ours.value_and_gradient(flat)
    assert abs(float(value) - float(expected)) < 1e-9
    step = 1e-6
    for i in range(flat.numel()):
        shift = torch.zeros_like(flat)
        shift[i] = step
        upper = ours.value_and_gradient(flat + shift)[0]
        lower = ours.value_and_gradient(flat - shift)[0]
        assert abs(float(gradient[i]) - float(upper - lower) / (2 * step)) < 1e-5
    # Without the Jacobian: the MAP objective at the same parameters.
    stick = Potential(hmm, data)
    map_value = ours.value_and_gradient(flat, False)[0]
    stick_value = stick.value_and_gradient(stick.unconstrain(params)[SITE], False)[0]
    torch.testing.assert_close(map_value, stick_value, rtol=0, atol=1e-9)


def _numpy_log_joint(hmm, params, design, values):
    """``log p(y, theta)`` of a one-sequence emission regression, written with numpy and scipy.

    Forward algorithm in log space over scipy's emission log densities; Dirichlet rows and the
    coefficients' Normal priors from ``scipy.stats`` (Poisson intercept: the moments of the log
    of the ``Gamma(rate_shape, rate_rate)`` rate, by scipy's digamma and polygamma).
    """
    from scipy import special, stats

    w = params[hmm.emission.coefficient_name].numpy()
    eta = np.einsum("tq,k...q->tk...", design, w)
    if isinstance(hmm.emission, hp.CategoricalRegression):
        full = np.concatenate([np.zeros((*eta.shape[:-1], 1)), eta], -1)
        table = np.take_along_axis(special.log_softmax(full, -1), values[:, None, None], -1)[..., 0]
        intercept_loc, intercept_sd = np.zeros(1), 2.0
    else:  # Poisson regression, log link
        table = stats.poisson.logpmf(values[:, None], np.exp(eta))
        a, b = hmm.prior.rate_shape, hmm.prior.rate_rate
        intercept_loc, intercept_sd = (
            special.digamma(a) - np.log(b),
            np.sqrt(special.polygamma(1, a)),
        )
    pi, transitions = params["pi"].numpy(), params["A"].numpy()
    alpha = np.log(pi) + table[0]
    for t in range(1, len(values)):
        alpha = special.logsumexp(alpha[:, None] + np.log(transitions), 0) + table[t]
    sds = np.array([intercept_sd] + [1.0] * (design.shape[1] - 1))
    locs = np.concatenate([np.broadcast_to(intercept_loc, (1,)), np.zeros(design.shape[1] - 1)])
    log_prior = stats.norm(locs, sds).logpdf(w).sum()
    log_prior += stats.dirichlet(np.ones(len(pi))).logpdf(pi)
    log_prior += sum(stats.dirichlet(np.ones(len(row))).logpdf(row) for row in transitions)
    return special.logsumexp(alpha) + log_prior


REGRESSIONS = [
    hp.CategoricalRegression(3, ["hour", "temp"]),
    hp.PoissonRegression(["hour", "temp"]),
]


@pytest.mark.parametrize("emission", REGRESSIONS, ids=repr)
def test_regression_potential_equals_an_independent_log_joint(emission):
    """Emission regressions (torch route): ``log p(y, theta)`` against numpy and scipy to 1e-9.

    With the Jacobian, the gradient against central differences of the value (to 1e-5). Data
    simulated from one prior draw, scored at three others: a wrong link, reference category,
    prior scale or transition orientation changes the value by far more than the tolerance.
    """
    rng = np.random.default_rng(3)
    covariates = hp.Covariates([rng.normal(size=(60, 2)) * [1.0, 3.0]], ["hour", "temp"])
    hmm = HMM(2, emission)
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), covariates=covariates, seed=1)
    design = hmm.emission.design(data.covariates)[0].numpy()
    values = data.values[0, :, 0].numpy().astype(int)
    ours = Potential(hmm, data)
    assert ours.route == "torch"
    for seed in (1, 2, 3):
        params = hmm.sample_prior(seed=seed)
        z = ours.unconstrain(params)[SITE]
        value, _ = ours.value_and_gradient(z, jacobian=False)
        assert abs(float(value) - _numpy_log_joint(hmm, params, design, values)) < 1e-9
    _, gradient = ours.value_and_gradient(z)
    step = 1e-6
    for i in range(z.numel()):
        shift = torch.zeros_like(z)
        shift[i] = step
        upper = float(ours.value_and_gradient(z + shift)[0])
        lower = float(ours.value_and_gradient(z - shift)[0])
        assert abs((upper - lower) / (2 * step) - float(gradient[i])) < 1e-5
