"""Products of independent families: scipy densities, simulation, M-steps, collapse, options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

import hmm_pyro as hp
from hmm_pyro.emissions import from_config
from tests.emissions.family_checks import (
    check_collapsed_pair_is_flagged,
    check_hard_path_gives_the_one_state_fits,
)

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
    with pytest.raises(ValueError, match="emission: a product family is built in Python"):
        hp.Product.from_options(dim=3)


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
    with pytest.raises(ValueError, match="data: expected integer counts"):
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
