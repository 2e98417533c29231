"""Products of independent families: scipy densities, simulation, M-steps, collapse, options,
the numba NUTS/MAP potential composed from the blocks' kernels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import hmm_pyro as hp
from hmm_pyro.emissions import from_config
from hmm_pyro.inference.potential import SITE, Potential
from tests.emissions.family_checks import (
    check_collapsed_pair_is_flagged,
    check_hard_path_gives_the_one_state_fits,
    direct_optimum,
)
from tests.reference import brute_force

DTYPE = torch.float64
PRODUCT = hp.Product(counts=hp.Poisson(), level=hp.Gaussian(dim=2))
PARAMS = {
    "counts_rate": torch.tensor([1.0, 9.0, 4.0], dtype=DTYPE),
    "level_mu": torch.tensor([[-1.0, 0.0], [2.0, 1.0], [0.5, -3.0]], dtype=DTYPE),
    "level_sigma": torch.tensor([[1.0, 0.5], [2.0, 1.5], [0.7, 1.2]], dtype=DTYPE),
}


def test_description_and_config():
    assert PRODUCT.dim == 3
    assert PRODUCT.param_names == ("counts_rate", "level_mu", "level_sigma")
    assert PRODUCT.param_shapes(3) == {
        "counts_rate": (3,),
        "level_mu": (3, 2),
        "level_sigma": (3, 2),
    }
    assert PRODUCT.param_dims()["level_mu"] == ("state", "level_dim")
    assert PRODUCT.positive_params == ("counts_rate", "level_sigma")
    assert not PRODUCT.integer_valued
    assert PRODUCT.num_free_params(3) == 3 + 12
    config = PRODUCT.to_config()
    assert config["components"]["level"] == {"family": "gaussian", "dim": 2}
    assert from_config(config) == PRODUCT and hash(from_config(config)) == hash(PRODUCT)
    nested = hp.Product(inner=PRODUCT, extra=hp.NegativeBinomial())
    assert from_config(nested.to_config()) == nested
    assert nested.param_names[-1] == "extra_dispersion"
    with pytest.raises(ValueError, match="components: expected at least two"):
        hp.Product(only=hp.Poisson())
    with pytest.raises(TypeError, match="level: expected an Emission"):
        hp.Product(counts=hp.Poisson(), level="gaussian")


def test_from_options_builds_each_block_on_its_columns():
    """The CLI's ``--blocks``: each family's ``from_options`` on its columns, in order."""
    values = np.array([[[0.0, 1.5, -0.2, 3.0], [2.0, 0.3, 0.4, 1.0], [1.0, 2.0, 0.1, 2.0]]])
    data = hp.Sequences(values, dim=4)
    built = hp.Product.from_options(
        data, blocks={"kind": hp.Categorical, "pos": (hp.MultivariateNormal, 2), "n": hp.Poisson}
    )
    expected = hp.Product(kind=hp.Categorical(3), pos=hp.MultivariateNormal(2), n=hp.Poisson())
    assert built == expected
    assert hp.Product.from_options(blocks={"a": hp.Gamma, "b": hp.VonMises}, dim=2) == hp.Product(
        a=hp.Gamma(), b=hp.VonMises()
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "blocks: expected the product's blocks"),
        ({"blocks": {"a": hp.Gamma}}, "blocks: expected at least two blocks, got 1"),
        ({"blocks": {"a": hp.Gamma, "b": (hp.Gamma, 0)}}, "blocks: block 'b': expected a number"),
        ({"blocks": {"a": hp.Gamma, "b": "gamma"}}, "blocks: block 'b': expected a family"),
        ({"blocks": {"a": hp.Gamma, "b": hp.Product}}, "blocks: block 'b': a nested product"),
        ({"blocks": {"a": hp.Gamma, "b": hp.Gamma}, "dim": 3}, "dim: the blocks take 2 columns"),
        ({"blocks": {"a": hp.Gamma, "b": hp.MultivariateNormal}}, "blocks: block 'b': dim: mvn"),
        ({"blocks": {"a": hp.Gamma, "b-c": hp.Gamma}}, "blocks: expected names of letters"),
        ({"blocks": {"a": hp.Gamma, "b": hp.Gamma}, "num_symbols": 3}, "num_symbols: not an"),
    ],
)
def test_from_options_errors_name_the_option(options, message):
    with pytest.raises(ValueError, match=f"^{message}") as caught:
        hp.Product.from_options(**options)
    assert caught.value.argument == message.partition(":")[0]
    data = hp.Sequences(np.ones((1, 4, 3)), dim=3)
    with pytest.raises(ValueError, match=r"^blocks: the blocks take 2 columns \(a 1, b 1\), the"):
        hp.Product.from_options(data, blocks={"a": hp.Gamma, "b": hp.Gamma})


def test_log_likelihood_table_is_the_sum_of_scipy_densities():
    values = np.array([[[3, 0.5, -1.0], [np.nan, 2.0, np.nan], [0, np.nan, np.nan]]])
    data = hp.Sequences(values, dim=3)
    PRODUCT.validate_data(data)
    table = PRODUCT.log_likelihood_table(PARAMS, data)
    expected = np.zeros((1, 3, 3))
    for t in range(3):
        for k in range(3):
            y = values[0, t]
            if not np.isnan(y[0]):
                expected[0, t, k] += stats.poisson.logpmf(y[0], PARAMS["counts_rate"][k].item())
            for d in range(2):
                if not np.isnan(y[1 + d]):
                    expected[0, t, k] += stats.norm.logpdf(
                        y[1 + d],
                        PARAMS["level_mu"][k, d].item(),
                        PARAMS["level_sigma"][k, d].item(),
                    )
    np.testing.assert_allclose(table.numpy(), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="data: block 'counts': expected integer counts"):
        PRODUCT.validate_data(hp.Sequences(np.array([[[0.5, 0.0, 0.0]]]), dim=3))


def test_distances_and_samples_are_the_blocks():
    bc = PRODUCT.bhattacharyya(PARAMS)
    counts = hp.Poisson().bhattacharyya({"rate": PARAMS["counts_rate"]})
    level = hp.Gaussian(dim=2).bhattacharyya(
        {"mu": PARAMS["level_mu"], "sigma": PARAMS["level_sigma"]}
    )
    torch.testing.assert_close(bc, counts * level, rtol=0, atol=0)
    torch.testing.assert_close(PRODUCT.location(PARAMS), PARAMS["counts_rate"])
    states = torch.tensor([[0, 1, 2, 1]])
    draws = PRODUCT.sample(PARAMS, states, torch.Generator().manual_seed(0))
    assert draws.shape == (1, 4, 3)
    generator = torch.Generator().manual_seed(0)
    first = hp.Poisson().sample({"rate": PARAMS["counts_rate"]}, states, generator)
    torch.testing.assert_close(draws[..., :1], first)


def test_m_step_is_each_blocks_m_step(rng):
    data = hp.Sequences(
        np.stack([rng.poisson(3.0, 40), rng.normal(size=40), rng.normal(size=40)], -1)[None], dim=3
    )
    weights = torch.as_tensor(rng.dirichlet([1.0, 1.0, 1.0], size=40))
    prior = hp.Prior(rate_shape=2.0, mu_scale=3.0)
    hyper = PRODUCT.prior_hyperparameters(prior, 3, DTYPE)
    ours = PRODUCT.maximize(PRODUCT.weighted_statistics(data, weights), hyper, None, True)
    counts = hp.Poisson()
    block = hp.Sequences(data.values[..., :1].numpy(), dim=1)
    expected = counts.maximize(
        counts.weighted_statistics(block, weights),
        counts.prior_hyperparameters(prior, 3, DTYPE),
        None,
        True,
    )
    torch.testing.assert_close(ours["counts_rate"], expected["rate"], rtol=0, atol=0)
    check_hard_path_gives_the_one_state_fits(
        hp.Product(counts=hp.Poisson(), level=hp.Gaussian()),
        {"counts_rate": [1.0, 8.0], "level_mu": [0.0, 3.0], "level_sigma": [1.0, 0.5]},
    )


@pytest.mark.parametrize("use_prior", [True, False])
def test_m_step_matches_a_direct_optimiser(rng, use_prior):
    """Step lengths (gamma) and turning angles (von Mises, some missing): the product's M-step
    against scipy's joint optimum of the weighted log density (scipy's) plus the log prior,
    per state over all four parameters at once."""
    size = 60
    steps = rng.gamma(2.0, 1.0, size=size)
    angles = rng.vonmises(0.5, 2.0, size=size)
    angles[[3, 17, 40]] = np.nan
    weights = rng.dirichlet([1.0, 1.0], size=size)
    data = hp.Sequences(np.stack([steps, angles], -1)[None], dim=2)
    product = hp.Product(step=hp.Gamma(), angle=hp.VonMises())
    prior = hp.Prior(
        concentration_shape=2.0, concentration_rate=0.5, rate_shape=1.5, rate_rate=0.2,
        angle_loc=0.3, angle_concentration=1.0, kappa_shape=2.0, kappa_rate=0.4,
    )  # fmt: skip
    hyper = product.prior_hyperparameters(prior, 2, DTYPE)
    ours = product.maximize(
        product.weighted_statistics(data, torch.as_tensor(weights)), hyper, None, use_prior
    )
    seen = ~np.isnan(angles)
    for k in range(2):

        def loss(x, k=k):
            alpha, beta, mu, kappa = math.exp(x[0]), math.exp(x[1]), x[2], math.exp(x[3])
            w = weights[:, k]
            value = (w * stats.gamma.logpdf(steps, alpha, scale=1 / beta)).sum()
            value += (w[seen] * stats.vonmises.logpdf(angles[seen], kappa, loc=mu)).sum()
            if use_prior:
                value += stats.gamma.logpdf(alpha, 2.0, scale=2.0)
                value += stats.gamma.logpdf(beta, 1.5, scale=5.0)
                value += 1.0 * math.cos(mu - 0.3) + stats.gamma.logpdf(kappa, 2.0, scale=2.5)
            return -value

        best = direct_optimum(loss, [0.5, 0.0, 0.5, 0.5])
        found = np.array(
            [
                math.log(ours["step_concentration"][k].item()),
                math.log(ours["step_rate"][k].item()),
                ours["angle_mu"][k].item(),
                math.log(ours["angle_kappa"][k].item()),
            ]
        )
        best[2] = found[2] + math.remainder(best[2] - found[2], 2 * math.pi)  # same angle
        np.testing.assert_allclose(found, best, rtol=0, atol=1e-5)
        assert loss(found) <= loss(best) + 1e-9


def test_collapsed_pair_is_flagged():
    check_collapsed_pair_is_flagged(
        hp.Product(counts=hp.Poisson(), level=hp.Gaussian()),
        {"counts_rate": [1.0, 8.0], "level_mu": [0.0, 3.0], "level_sigma": [1.0, 0.5]},
    )


def test_prior_of_fewer_states_keeps_each_kept_states_own_hyperparameters():
    """``diagnose``'s refits with fewer states restrict the prior to the kept states: blocks of
    different widths share one per-state value of their common field."""
    from hmm_pyro.diagnostics.refits import sub_prior

    product = hp.Product(a=hp.Poisson(), b=hp.Poisson(dim=2))
    hmm = hp.HMM(3, product, prior=hp.Prior(rate_shape=[1.0, 2.0, 3.0]))
    smaller = product.prior_hyperparameters(sub_prior(hmm, [0, 2]), 2, torch.float64)
    torch.testing.assert_close(smaller["a_rate_shape"], torch.tensor([[1.0], [3.0]]).double())
    torch.testing.assert_close(
        smaller["b_rate_shape"], torch.tensor([[1.0, 1.0], [3.0, 3.0]]).double()
    )


FAST_PRODUCTS = {
    "step_angle": hp.Product(step=hp.Gamma(), angle=hp.VonMises()),
    "nested_with_mvnormal": hp.Product(
        counts=hp.Poisson(),
        pos=hp.MultivariateNormal(2),
        inner=hp.Product(level=hp.Gaussian(dim=2), step=hp.Gamma()),
    ),
}
FAST_PRIOR = hp.Prior(
    pi=[1.0, 2.0, 0.5],
    stickiness=2.0,
    concentration_shape=2.0,
    rate_shape=1.5,
    angle_concentration=[0.0, 1.0, 4.0],
    kappa_shape=2.0,
    mu_loc=[-1.0, 0.0, 1.0],
    lkj_concentration=[1.0, 2.0, 0.8],
)


def _short_sequences(hmm: hp.HMM) -> list[np.ndarray]:
    """Three short sequences (brute force enumerates ``3**6`` paths) with missing entries in
    one block only (the last block's first column), and a whole missing step."""
    data, _ = hp.simulate(hmm, hmm.sample_prior(seed=0), [6, 5, 4], seed=1)
    values = [np.array(row, dtype=float).reshape(len(row), -1) for row in data.to_list()]
    values[0][2, -1] = np.nan
    values[1][0, -1] = np.nan
    values[2][3, :] = np.nan
    return values


@pytest.mark.parametrize("name", sorted(FAST_PRODUCTS))
def test_fast_potential_equals_the_torch_route_and_a_brute_force_sum(name, monkeypatch):
    """Numba route against the torch route (value and gradient, with and without the Jacobian)
    and the MAP objective against the log prior plus a brute-force forward on the sum of the
    blocks' own tables, all to 1e-10 (float64; values of O(100) nats)."""
    product = FAST_PRODUCTS[name]
    hmm = hp.HMM(3, product, FAST_PRIOR)
    values = _short_sequences(hmm)
    fast = Potential(hmm, values)
    assert fast.route == "numba"
    monkeypatch.setattr(hp.Product, "potential_terms", lambda *args: None)
    slow = Potential(hmm, values)
    assert slow.route == "torch" and slow.size == fast.size
    data = fast.data
    for seed in range(2):
        params = hmm.sample_prior(seed=10 + seed)
        flat = fast.unconstrain(params)[SITE]
        for jacobian in (True, False):
            value, gradient = fast.value_and_gradient(flat, jacobian)
            expected, expected_gradient = slow.value_and_gradient(flat, jacobian)
            assert abs(float(value - expected)) < 1e-10
            torch.testing.assert_close(gradient, expected_gradient, rtol=0, atol=1e-10)
        table = sum(
            block.log_likelihood_table(block_params, block_data)
            for block, block_params, block_data in _leaf_blocks(product, params, data)
        )
        log_pi, log_A = torch.log(params["pi"]), torch.log(params["A"])
        total = sum(
            brute_force(log_pi, log_A, table[n, :length]).log_likelihood
            for n, length in enumerate(data.lengths.tolist())
        )
        value, _ = fast.value_and_gradient(flat, jacobian=False)
        assert abs(float(value) - (float(hmm.log_prior(params)) + total)) < 1e-10


def _leaf_blocks(product, params, data):
    """The leaf families of a (nested) product with their parameters and columns."""
    start = 0
    for name, block in product.components.items():
        block_params = {param: params[f"{name}_{param}"] for param in block.param_names}
        values = data.values[:, :, start : start + block.dim].numpy()
        block_data = hp.Sequences(values, lengths=data.lengths.numpy(), dim=block.dim)
        start += block.dim
        if isinstance(block, hp.Product):
            yield from _leaf_blocks(block, block_params, block_data)
        else:
            yield block, block_params, block_data


def test_nuts_runs_on_the_fast_route(monkeypatch):
    """A short NUTS run of a step-length x turning-angle product: every evaluation of the
    potential is the numba one (the torch route refuses), and the draws are finite."""

    def refuse(*args):
        raise AssertionError("the product's potential took the torch route")

    monkeypatch.setattr(Potential, "_torch_log_joint", refuse)
    hmm = hp.HMM(2, hp.Product(step=hp.Gamma(), angle=hp.VonMises()))
    params = {
        "pi": torch.tensor([0.5, 0.5], dtype=DTYPE),
        "A": torch.tensor([[0.9, 0.1], [0.2, 0.8]], dtype=DTYPE),
        "step_concentration": torch.tensor([2.0, 8.0], dtype=DTYPE),
        "step_rate": torch.tensor([4.0, 1.0], dtype=DTYPE),
        "angle_mu": torch.tensor([0.0, 3.0], dtype=DTYPE),
        "angle_kappa": torch.tensor([6.0, 2.0], dtype=DTYPE),
    }
    data, _ = hp.simulate(hmm, params, [60], seed=1)
    fit = hp.fit_nuts(
        hmm, data, chains=1, warmup=20, draws=10, seed=0, progress=False, parallel=False,
        max_tree_depth=4, relabel=False,
    )  # fmt: skip
    draws = fit.draws()
    for name, shape in hmm.param_shapes().items():
        assert draws[name].shape == (1, 10, *shape) and torch.isfinite(draws[name]).all()
