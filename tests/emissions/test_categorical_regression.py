"""Categorical emission regression (multinomial logit, GLM-HMM) against softmax by hand, brute
force over paths, the enumerated Pyro model and scipy.optimize."""

from __future__ import annotations

import itertools

import numpy as np
import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO, TraceEnum_ELBO
from scipy import optimize, stats
from scipy.special import log_softmax

import hmm_pyro as hp
from hmm_pyro.covariates import Covariates
from hmm_pyro.emissions import from_config
from hmm_pyro.emissions.categorical_regression import CategoricalRegression

DTYPE = torch.float64
NAMES = ("hour",)
W = torch.tensor([[[1.0, 1.5], [-1.0, 0.0]], [[-1.0, -1.0], [1.5, 0.5]]], dtype=DTYPE)
PARAMS = {
    "pi": torch.tensor([0.6, 0.4], dtype=DTYPE),
    "A": torch.tensor([[0.8, 0.2], [0.3, 0.7]], dtype=DTYPE),
    "W": W,
}


def small_data(lengths=(5, 3), seed=0) -> hp.Sequences:
    rng = np.random.default_rng(seed)
    values = [rng.integers(0, 3, size=length).astype(float) for length in lengths]
    values[0][3] = np.nan
    columns = [rng.normal(size=(length, 1)) for length in lengths]
    return hp.Sequences(values, covariates=Covariates(columns, names=list(NAMES)))


def by_hand_table(params, data) -> np.ndarray:
    """``log softmax(0, x . W[k, 0], x . W[k, 1])[y]``; zero where not observed."""
    x = data.covariates.values.numpy()
    design = np.concatenate([np.ones_like(x[..., :1]), x], -1)  # (N, T, Q)
    eta = np.einsum("ntq,kvq->ntkv", design, params["W"].numpy())
    log_p = log_softmax(np.concatenate([np.zeros_like(eta[..., :1]), eta], -1), -1)
    y = data.values[..., 0].numpy()
    symbols = np.nan_to_num(y).astype(int)
    table = np.take_along_axis(log_p, symbols[..., None, None].repeat(2, -2), -1)[..., 0]
    return np.where(np.isnan(y)[..., None] | ~data.mask.numpy()[..., None], 0.0, table)


def test_table_by_hand_and_zero_slopes_give_the_plain_categorical():
    data = small_data()
    emission = CategoricalRegression(3, NAMES)
    table = emission.log_likelihood_table(PARAMS, data)
    np.testing.assert_allclose(table.numpy(), by_hand_table(PARAMS, data), rtol=1e-12, atol=1e-14)
    flat = {"W": W.clone()}
    flat["W"][..., 1] = 0.0
    rows = torch.cat([torch.zeros(2, 1, dtype=DTYPE), W[..., 0]], -1).softmax(-1)
    plain = hp.Categorical(3).log_likelihood_table({"B": rows}, data)
    torch.testing.assert_close(emission.log_likelihood_table(flat, data), plain, rtol=0, atol=1e-13)


def test_log_likelihood_equals_brute_force_and_the_enumerated_model():
    data = small_data()
    hmm = hp.HMM(2, CategoricalRegression(3, NAMES))
    table = by_hand_table(PARAMS, data)
    log_pi, log_A = np.log(PARAMS["pi"].numpy()), np.log(PARAMS["A"].numpy())
    expected = []
    for n, length in enumerate(data.lengths.tolist()):
        scores = [
            log_pi[path[0]]
            + table[n, np.arange(length), path].sum()
            + sum(log_A[path[t], path[t + 1]] for t in range(length - 1))
            for path in itertools.product(range(2), repeat=length)
        ]
        expected.append(np.logaddexp.reduce(scores))
    np.testing.assert_allclose(hmm.log_likelihood(PARAMS, data).numpy(), expected, atol=1e-9)
    joint = (hmm.log_prior(PARAMS) + hmm.log_likelihood(PARAMS, data).sum()).item()
    for marginalize, elbo in (
        ("enumerate", TraceEnum_ELBO(max_plate_nesting=1)),
        ("forward", Trace_ELBO()),
    ):
        model = pyro.poutine.condition(hmm.model, data=PARAMS)
        loss = elbo.loss(lambda m=model, how=marginalize: m(data, how), lambda: None)
        assert abs(-loss - joint) < 1e-9, marginalize


@pytest.mark.parametrize("use_prior", [False, True])
def test_m_step_maximises_the_weighted_objective_like_scipy(use_prior):
    rng = np.random.default_rng(4)
    steps = 90
    covariates = Covariates([rng.normal(size=(steps, 1))], names=list(NAMES))
    design = np.column_stack([np.ones(steps), covariates.values[0].numpy()])
    eta = np.column_stack([np.zeros(steps), design @ W[0].numpy().T])
    probabilities = np.exp(log_softmax(eta, -1))
    y = np.array([rng.choice(3, p=row) for row in probabilities], dtype=float)
    data = hp.Sequences([y], covariates=covariates)
    weights = torch.as_tensor(rng.dirichlet([1.0, 1.0], size=steps), dtype=DTYPE)
    emission = CategoricalRegression(3, NAMES, slope_scale=0.7)
    statistics = emission.weighted_statistics(data, weights)
    result = emission.maximize(statistics, {}, None, use_prior)
    for k in range(2):
        u = weights[:, k].numpy()

        def negative(flat, u=u):
            coefficients = flat.reshape(2, 2)
            logits = np.column_stack([np.zeros(steps), design @ coefficients.T])
            value = (u * log_softmax(logits, -1)[np.arange(steps), y.astype(int)]).sum()
            if use_prior:
                value += stats.norm.logpdf(coefficients, 0.0, [2.0, 0.7]).sum()
            return -value

        best = optimize.minimize(negative, np.zeros(4), method="BFGS", options={"gtol": 1e-10})
        np.testing.assert_allclose(result["W"][k].numpy().ravel(), best.x, atol=1e-5)


def test_em_recovers_planted_coefficients():
    """Two states with distinct symbol laws whose log-odds move with ``hour`` (slopes 0.5-1.5),
    600 steps. Log-odds coefficients have standard errors of about 0.15-0.25 with ~300 steps a
    state; EM (to the MAP point) must match the maximum-likelihood fit given the true states
    (the oracle, no prior) to 0.3 (symbol laws overlap, so steps of uncertain state move the
    estimates by up to about one standard error) and the truth to 0.6 (detects a slope of the
    wrong sign or a symbol mix-up)."""
    hmm = hp.HMM(2, CategoricalRegression(3, NAMES))
    rng = np.random.default_rng(2)
    covariates = Covariates([rng.normal(size=(300, 1)) for _ in range(2)], names=list(NAMES))
    truth = dict(PARAMS, A=torch.tensor([[0.95, 0.05], [0.05, 0.95]], dtype=DTYPE))
    data, states = hp.simulate(hmm, truth, covariates=covariates, seed=3)
    fit = hp.fit_em(hmm, data, seed=0, restarts=1, progress=False)
    estimate = fit.posterior_mean()["W"]
    order = torch.argsort(estimate[:, 0, 0], descending=True)  # state 0 favours symbol 1
    np.testing.assert_allclose(estimate[order].numpy(), W.numpy(), atol=0.6)
    one_hot = torch.nn.functional.one_hot(states.clamp(min=0), 2).to(DTYPE).reshape(-1, 2)
    statistics = hmm.emission.weighted_statistics(data, one_hot)
    oracle = hmm.emission.maximize(statistics, {}, None, use_prior=False)["W"]
    np.testing.assert_allclose(estimate[order].numpy(), oracle.numpy(), atol=0.3)


def test_description_distances_and_bad_input():
    emission = CategoricalRegression(3, NAMES, symbols=["a", "b", "c"])
    assert from_config(emission.to_config()) == emission
    assert hp.Categorical(3, symbols=["a", "b", "c"]).with_covariates(NAMES) == emission
    assert emission.param_coords()["logit_symbol"] == ["b", "c"]
    assert emission.num_free_params(2) == 2 * 2 * 2
    same = {"W": W[[1, 1]]}
    assert torch.allclose(emission.hellinger(same), torch.zeros(2, 2, dtype=DTYPE), atol=1e-15)
    rows = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, -1.0]], dtype=DTYPE)
    eta = torch.einsum("rq,kvq->rkv", rows, W)
    log_p = torch.cat([torch.zeros(3, 2, 1, dtype=DTYPE), eta], -1)
    root = log_p.log_softmax(-1).mul(0.5).exp()  # (R, K, V)
    expected = 1.0 - (root[:, 0] * root[:, 1]).sum(-1).mean()
    assert abs(emission.hellinger({"W": W})[0, 1].item() - expected.item()) < 1e-12
    location = (log_p[0].softmax(-1) * torch.arange(3, dtype=DTYPE)).sum(-1)
    torch.testing.assert_close(emission.location({"W": W}), location)
    covariates = Covariates([[[0.0], [1.0]]], names=list(NAMES))
    with pytest.raises(ValueError, match=r"^data: expected symbols in \[0, 2\]"):
        hp.HMM(2, CategoricalRegression(3, NAMES)).log_likelihood(
            PARAMS, hp.Sequences([[0.0, 3.0]], covariates=covariates)
        )
    with pytest.raises(ValueError, match=r"^symbols: expected 3 names"):
        CategoricalRegression(3, NAMES, symbols=["a", "b"])
