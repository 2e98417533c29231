"""The gamma, von Mises and full-covariance normal families through the package's routes.

The numba NUTS/MAP potential against the potential Pyro builds from :meth:`HMM.model` (value and
gradient), EM to a fixed point of its own update, the collapse diagnosis of a planted pair of
identical states (a one-draw point fit), a short NUTS run, and the CLI's ``--emission``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pyro.infer.mcmc.util import initialize_model, potential_grad
from torch.distributions import biject_to

import hmm_pyro as hp
from hmm_pyro.cli import build_parser, main
from hmm_pyro.cli._options import emission_of
from hmm_pyro.diagnostics import diagnose
from hmm_pyro.inference.potential import SITE, Potential
from hmm_pyro.learning.statistics import expected_statistics

DTYPE = torch.float64
TRANSITIONS = {
    "pi": torch.tensor([0.4, 0.3, 0.3], dtype=DTYPE),
    "A": torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]], dtype=DTYPE),
}
PLANTED = {  # three states; states 1 and 2 emit alike (the planted collapsed pair)
    "gamma": (
        hp.Gamma(),
        {
            "concentration": torch.tensor([2.0, 8.0, 8.0], dtype=DTYPE),
            "rate": torch.tensor([4.0, 1.0, 1.0], dtype=DTYPE),
        },
    ),
    "vonmises": (
        hp.VonMises(),
        {
            "mu": torch.tensor([0.0, 3.0, 3.0], dtype=DTYPE),
            "kappa": torch.tensor([6.0, 2.0, 2.0], dtype=DTYPE),
        },
    ),
    "mvnormal": (
        hp.MultivariateNormal(2),
        {
            "mu": torch.tensor([[0.0, 0.0], [3.0, 2.0], [3.0, 2.0]], dtype=DTYPE),
            "sigma": torch.tensor([[1.0, 0.5], [0.7, 1.2], [0.7, 1.2]], dtype=DTYPE),
            "corr": torch.tensor(
                [[[1.0, 0.6], [0.6, 1.0]], [[1.0, -0.4], [-0.4, 1.0]], [[1.0, -0.4], [-0.4, 1.0]]],
                dtype=DTYPE,
            ),
        },
    ),
}
POTENTIAL_FAMILIES = [hp.Gamma(), hp.Gamma(dim=2), hp.VonMises(dim=2), hp.MultivariateNormal(3)]
PRIOR = hp.Prior(
    pi=[1.0, 2.0, 0.5],
    stickiness=2.0,
    concentration_shape=2.0,
    rate_shape=1.5,
    angle_loc=[-1.0, 0.5, 3.0],
    angle_concentration=[0.0, 1.0, 4.0],
    kappa_shape=2.0,
    variance_shape=3.0,
    lkj_concentration=[1.0, 2.0, 0.8],
)


def _planted(family: str) -> tuple[hp.HMM, dict[str, torch.Tensor]]:
    emission, params = PLANTED[family]
    return hp.HMM(3, emission), {**TRANSITIONS, **params}


def _with_missing(hmm: hp.HMM, seed: int) -> list[np.ndarray]:
    data, _ = hp.simulate(hmm, hmm.sample_prior(seed=seed), [30, 20, 25], seed=seed + 1)
    values = [np.array(row) for row in data.to_list()]
    values[1][4] = np.nan  # a missing step (every coordinate, as mvnormal requires)
    return values


@pytest.mark.parametrize("emission", POTENTIAL_FAMILIES, ids=repr)
def test_potential_equals_the_pyro_model_potential(emission):
    """Value to 1e-9 and gradient to 1e-7 (absolute; values of O(100-1000) nats)."""
    hmm = hp.HMM(3, emission, PRIOR)
    values = _with_missing(hmm, 0)
    ours = Potential(hmm, values)
    _, pyro_potential, _, _ = initialize_model(hmm.model, model_args=(hmm.prepare_data(values),))
    supports = {name: d.support for name, d in hmm.prior_distributions().items()}
    for seed in range(2):
        params = hmm.sample_prior(seed=10 + seed)
        z = {name: biject_to(supports[name]).inv(value) for name, value in params.items()}
        expected_grads, expected = potential_grad(pyro_potential, z)
        grads, value = potential_grad(ours, ours.unconstrain(params))
        assert abs(float(value) - float(expected)) < 1e-9
        torch.testing.assert_close(grads[SITE], ours.join(expected_grads), atol=1e-7, rtol=0)
        back = ours.constrain(ours.unconstrain(params))
        for name in params:
            torch.testing.assert_close(back[name], params[name], atol=1e-12, rtol=0)
        # without the Jacobian: the MAP objective log p(y, theta) and its gradient
        flat = ours.unconstrain(params)[SITE].requires_grad_()
        constrained = ours.constrain({SITE: flat})
        objective = hmm.log_prior(constrained) + hmm.log_likelihood(constrained, values).sum()
        (gradient,) = torch.autograd.grad(objective, flat)
        value, ours_gradient = ours.value_and_gradient(flat.detach(), jacobian=False)
        assert abs(float(value) - float(objective.detach())) < 1e-9
        torch.testing.assert_close(ours_gradient, gradient, atol=1e-7, rtol=0)


@pytest.mark.parametrize("family", sorted(PLANTED))
def test_em_ends_at_a_fixed_point_of_its_update(family):
    """MAP-EM: the final point maps to itself under one more E- and M-step (rtol 1e-4)."""
    hmm, truth = _planted(family)
    two = hp.HMM(2, hmm.emission)
    params = {
        "pi": truth["pi"][:2] / truth["pi"][:2].sum(),
        "A": torch.tensor([[0.9, 0.1], [0.2, 0.8]], dtype=DTYPE),
    }
    params |= {name: value[:2] for name, value in truth.items() if name not in ("pi", "A")}
    data, _ = hp.simulate(two, params, [200], seed=3)
    fit = hp.fit_em(two, data, restarts=1, seed=0, tol=1e-9, max_iter=500, progress=False)
    point = {name: value[0, 0] for name, value in fit.draws().items()}
    _, stats = expected_statistics(two, data, point)
    prior = two.emission.prior_hyperparameters(two.prior, 2, DTYPE)
    again = two.emission.maximize(stats.emission, prior, point, use_prior=True)
    for name, value in again.items():
        torch.testing.assert_close(value, point[name], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("family", sorted(PLANTED))
def test_collapse_is_flagged_for_a_planted_pair(family):
    """A point fit (MAP-like, one draw) at the planted parameters: the pair (1, 2) is flagged
    collapsed, with the family's closed-form distances; with the pair moved apart, nothing is."""
    hmm, truth = _planted(family)
    data, _ = hp.simulate(hmm, truth, [300], seed=0)
    report = diagnose(hp.Fit.from_params(hmm, data, truth, method="map"))
    flag = report.flag("emission_collapse")
    assert flag is not None and flag.measured["groups"] == [(1, 2)], str(report)
    assert flag.measured["effective_num_states"] == 2
    apart = dict(truth)
    first = next(name for name in hmm.emission.param_names if name != "corr")
    apart[first] = truth[first].clone()
    apart[first][2] = truth[first][0]  # state 2 now shares state 0's first parameter only
    distances = hmm.emission.hellinger(apart)
    assert distances[1, 2] > 0.05 and distances[0, 2] > 0.05  # the test can fail
    report = diagnose(hp.Fit.from_params(hmm, data, apart, method="map"))
    assert report.flag("emission_collapse") is None, str(report)


@pytest.mark.parametrize("family", sorted(PLANTED))
def test_nuts_smoke(family):
    """A short NUTS run: the fast potential drives it; dims, finiteness, stored likelihood."""
    hmm, truth = _planted(family)
    two = hp.HMM(2, hmm.emission)
    params = {
        "pi": truth["pi"][:2] / truth["pi"][:2].sum(),
        "A": torch.tensor([[0.9, 0.1], [0.2, 0.8]], dtype=DTYPE),
    }
    params |= {name: value[:2] for name, value in truth.items() if name not in ("pi", "A")}
    data, _ = hp.simulate(two, params, [60], seed=1)
    fit = hp.fit_nuts(
        two, data, chains=2, warmup=20, draws=10, seed=0, progress=False, parallel=False,
        max_tree_depth=4, relabel=False,
    )  # fmt: skip
    draws = fit.draws()
    for name, shape in two.param_shapes().items():
        assert draws[name].shape == (2, 10, *shape) and torch.isfinite(draws[name]).all()
        assert fit.idata.posterior[name].dims[2:] == two.param_dims()[name]
    expected = two.log_likelihood(draws, data).numpy()
    np.testing.assert_allclose(fit.idata.log_likelihood["y"].values, expected, atol=1e-9, rtol=0)


@pytest.mark.parametrize("family", sorted(PLANTED))
def test_cli_emission_option_builds_the_family(family):
    dim = ["--dim", "2"] if family == "mvnormal" else []
    args = build_parser().parse_args(["fit", "x.csv", "-K", "2", "--emission", family, *dim])
    assert emission_of(args) == PLANTED[family][0]


def test_cli_simulates_and_fits_mvnormal(tmp_path):
    """End to end in-process: ``simulate`` and ``fit`` (EM; prints the correlation matrices)."""
    out = tmp_path / "data.npz"
    assert main(
        ["simulate", "--states", "2", "--emission", "mvnormal", "--dim", "2", "--sequences", "2",
         "--length", "40", "--seed", "1", "--out", str(out)]
    ) == 0  # fmt: skip
    assert main(
        ["fit", str(out), "--states", "2", "--emission", "mvnormal", "--method", "em",
         "--restarts", "1", "--no-progress", "--out", str(tmp_path / "fit.nc")]
    ) == 0  # fmt: skip
    assert hp.load(tmp_path / "fit.nc").hmm.emission == hp.MultivariateNormal(2)


def test_cli_names_the_dim_option_for_mvnormal(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).gamma(2.0, size=30))
    code = main(
        ["fit", str(tmp_path / "x.npy"), "--states", "2", "--emission", "mvnormal",
         "--method", "em", "--no-progress"]
    )  # fmt: skip
    assert code == 2
    assert (
        "--dim: mvnormal emissions need observations of dimension >= 2" in capsys.readouterr().err
    )
