"""Permutation algebra: how a relabelling acts on pi, A, emissions and state probabilities."""

import itertools

import numpy as np
import pytest
import torch
import xarray as xr

from hmm_pyro import HMM, Categorical, Gaussian, Poisson
from hmm_pyro.labels.permutations import (
    compose,
    identity,
    invert,
    permutation_matrix,
    permute_axis,
    permute_dataset,
    permute_params,
)
from tests.diagnostics.helpers import tensors

MODELS = [
    HMM(3, Categorical(4)),
    HMM(3, Gaussian()),
    HMM(3, Gaussian(dim=2)),
    HMM(3, Poisson(dim=2)),
]


def random_perms(rng, batch, num):
    return np.stack([rng.permutation(num) for _ in range(int(np.prod(batch)))]).reshape(*batch, num)


@pytest.mark.parametrize("hmm", MODELS, ids=lambda h: h.emission.family + str(h.emission.dim))
def test_every_state_axis_is_permuted(hmm):
    rng = np.random.default_rng(0)
    params = {k: v.numpy() for k, v in hmm.sample_prior(6, seed=1).items()}
    perms = random_perms(rng, (6,), 3)
    out = permute_params(hmm, params, perms)
    for n in range(6):
        p = permutation_matrix(perms[n])
        np.testing.assert_allclose(out["pi"][n], p @ params["pi"][n], atol=1e-15)
        np.testing.assert_allclose(out["A"][n], p @ params["A"][n] @ p.T, atol=1e-15)
        for name in hmm.emission.param_names:
            np.testing.assert_allclose(out[name][n], params[name][n][perms[n]], atol=0)
            np.testing.assert_allclose(
                out[name][n].reshape(3, -1), p @ params[name][n].reshape(3, -1), atol=1e-15
            )


def test_relabel_then_inverse_is_identity():
    rng = np.random.default_rng(2)
    hmm = MODELS[0]
    params = {k: v.numpy() for k, v in hmm.sample_prior(20, seed=3).items()}
    perms = random_perms(rng, (20,), 3)
    back = permute_params(hmm, permute_params(hmm, params, perms), invert(perms))
    for name in params:
        np.testing.assert_array_equal(back[name], params[name])
    np.testing.assert_array_equal(compose(perms, invert(perms)), identity(3, (20,)))
    np.testing.assert_array_equal(compose(invert(perms), perms), identity(3, (20,)))


def test_compose_applies_first_then_second():
    rng = np.random.default_rng(4)
    hmm = MODELS[1]
    params = {k: v.numpy() for k, v in hmm.sample_prior(10, seed=5).items()}
    first, second = random_perms(rng, (10,), 3), random_perms(rng, (10,), 3)
    twice = permute_params(hmm, permute_params(hmm, params, first), second)
    once = permute_params(hmm, params, compose(first, second))
    for name in params:
        np.testing.assert_array_equal(twice[name], once[name])


@pytest.mark.parametrize("hmm", MODELS, ids=lambda h: h.emission.family + str(h.emission.dim))
def test_log_likelihood_and_exchangeable_prior_are_invariant(hmm):
    from hmm_pyro import simulate

    params = hmm.sample_prior(seed=7)
    data, _ = simulate(hmm, params, [30, 20], seed=8)
    base_lik = hmm.log_likelihood(params, data)
    base_prior = hmm.log_prior(params)
    numpy_params = {k: v.numpy() for k, v in params.items()}
    for perm in itertools.permutations(range(3)):
        moved = tensors(permute_params(hmm, numpy_params, np.array(perm)))
        torch.testing.assert_close(hmm.log_likelihood(moved, data), base_lik, atol=1e-9, rtol=0)
        torch.testing.assert_close(hmm.log_prior(moved), base_prior, atol=1e-9, rtol=0)


def test_state_probabilities_permute_like_parameters():
    from hmm_pyro import simulate

    hmm = MODELS[0]
    params = hmm.sample_prior(seed=9)
    data, _ = simulate(hmm, params, [25], seed=10)
    gamma = hmm.posterior_marginals(params, data).numpy()  # (N, T, K)
    perm = np.array([2, 0, 1])
    moved = tensors(permute_params(hmm, {k: v.numpy() for k, v in params.items()}, perm))
    moved_gamma = hmm.posterior_marginals(moved, data).numpy()
    np.testing.assert_allclose(moved_gamma, gamma[..., perm], atol=1e-12)
    np.testing.assert_allclose(permute_axis(gamma, perm, axis=2), gamma[..., perm])


def test_permute_dataset_moves_state_dims_only():
    rng = np.random.default_rng(11)
    a = rng.random((2, 4, 3, 3))
    b = rng.random((2, 4, 3, 5))
    other = rng.random((2, 4))
    dataset = xr.Dataset(
        {
            "A": (("chain", "draw", "state", "state_to"), a),
            "B": (("chain", "draw", "state", "symbol"), b),
            "other": (("chain", "draw"), other),
        },
        attrs={"note": "kept"},
    )
    perms = random_perms(rng, (2, 4), 3)
    out = permute_dataset(dataset, perms)
    assert out.attrs == {"note": "kept"}
    np.testing.assert_array_equal(out["other"].values, other)
    for c, s in itertools.product(range(2), range(4)):
        p = perms[c, s]
        np.testing.assert_array_equal(out["A"].values[c, s], a[c, s][np.ix_(p, p)])
        np.testing.assert_array_equal(out["B"].values[c, s], b[c, s][p])


def test_permute_axis_rejects_axis_inside_batch():
    with pytest.raises(ValueError, match="axis"):
        permute_axis(np.zeros((4, 3)), np.zeros((4, 3), dtype=int), axis=0)
