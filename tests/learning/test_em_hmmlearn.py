"""EM against hmmlearn: same data, same start, priors off -> the same log-likelihood history.

hmmlearn's ``monitor_.history[i]`` is the log likelihood at the parameters before its ``i``-th
M-step (entry 0: the start), as ours. Its "off" priors are set explicitly (checked in
``hmmlearn/hmm.py`` 0.3.3): Dirichlet concentrations 1 (``max(prior - 1 + counts, 0)``),
``means_weight=0`` and ``covars_prior=0, covars_weight=1`` (the diag covariance update is then
``c_n / denom``, the ML variance), ``lambdas_prior=lambdas_weight=0`` (``y_bar``). ``min_covar``
is only used by hmmlearn's own initialisation, which ``init_params=""`` skips. Tolerance 1e-6
absolute per iteration (observed agreement is ~1e-11: both are exact EM in float64).
"""

import numpy as np
import pytest
import torch
from hmmlearn.hmm import CategoricalHMM, GaussianHMM, PoissonHMM

from hmm_pyro import HMM, Categorical, Gaussian, Poisson, Prior, simulate
from hmm_pyro.learning import fit_em, run_em

N_ITER = 40
TOL = 1e-6


def _stacked(data):
    rows = data.to_list()
    rows = [row[:, None] if row.ndim == 1 else row for row in rows]
    return np.concatenate(rows), data.lengths.numpy()


def _separated_start(hmm, data, seed):
    from hmm_pyro.learning import initial_params

    return initial_params(hmm, data, "data", seed=seed)


CASES = {
    "categorical": (HMM(3, Categorical(4)), [120, 90, 60]),
    "gaussian": (HMM(3, Gaussian(), Prior(mu_scale=5.0)), [150, 100]),
    "gaussian_diag": (HMM(2, Gaussian(dim=3), Prior(mu_scale=0.7)), [120, 80, 50]),
    "poisson": (HMM(3, Poisson(), Prior(rate_shape=2.0, rate_rate=0.2)), [150, 100]),
    "poisson_multi": (HMM(2, Poisson(dim=2), Prior(rate_shape=2.0, rate_rate=0.2)), [100, 100]),
}


def _hmmlearn_model(name, hmm, start, implementation):
    num = hmm.num_states
    common = dict(
        n_components=num,
        startprob_prior=1.0,
        transmat_prior=1.0,
        init_params="",
        n_iter=N_ITER,
        tol=-np.inf,
        implementation=implementation,
    )
    if name == "categorical":
        model = CategoricalHMM(
            n_features=hmm.emission.num_symbols, emissionprob_prior=1.0, params="ste", **common
        )
        model.emissionprob_ = start["B"].numpy()
    elif name.startswith("gaussian"):
        model = GaussianHMM(
            covariance_type="diag",
            means_prior=0.0,
            means_weight=0.0,
            covars_prior=0.0,
            covars_weight=1.0,
            min_covar=1e-300,
            params="stmc",
            **common,
        )
        model.means_ = start["mu"].reshape(num, -1).numpy()
        model.covars_ = (start["sigma"].reshape(num, -1) ** 2).numpy()
    else:
        model = PoissonHMM(lambdas_prior=0.0, lambdas_weight=0.0, params="stl", **common)
        model.lambdas_ = start["rate"].reshape(num, -1).numpy()
    model.startprob_ = start["pi"].numpy()
    model.transmat_ = start["A"].numpy()
    return model


def _learned(name, model, num):
    learned = {"pi": model.startprob_, "A": model.transmat_}
    if name == "categorical":
        learned["B"] = model.emissionprob_
    elif name.startswith("gaussian"):
        learned["mu"] = model.means_
        learned["sigma"] = np.sqrt(np.stack([np.diag(c) for c in model.covars_]))
    else:
        learned["rate"] = model.lambdas_
    return learned


@pytest.mark.parametrize("implementation", ["log", "scaling"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_history_and_parameters_match_hmmlearn(name, implementation):
    hmm, lengths = CASES[name]
    truth = hmm.sample_prior(seed=11)
    data, _ = simulate(hmm, truth, lengths, seed=12)
    data = hmm.prepare_data(data)
    start = _separated_start(hmm, data, seed=13)

    # tol=0 stops only at an exact fixed point (some cases get there in ~10 updates).
    run = run_em(hmm, data, start, max_iter=N_ITER, tol=0.0, emission_prior=False)
    assert run.monitor.status in ("max_iter", "converged")
    ours = np.asarray(run.monitor.log_likelihood)
    updates = run.monitor.iterations
    assert updates >= 8
    assert len(ours) == updates + 1

    X, lens = _stacked(data)
    if name in ("categorical", "poisson", "poisson_multi"):
        X = X.astype(np.int64)
    model = _hmmlearn_model(name, hmm, start, implementation)
    model.n_iter = updates
    model.fit(X, lens)
    theirs = np.asarray(model.monitor_.history)
    assert len(theirs) == updates
    np.testing.assert_allclose(ours[:updates], theirs, rtol=0, atol=TOL)
    # The objective rose over the run (the comparison is not between two frozen models).
    assert ours[-1] > ours[0] + 1.0

    # Both hold the parameters after the same number of M-steps.
    learned = _learned(name, model, hmm.num_states)
    for key, value in learned.items():
        np.testing.assert_allclose(
            run.params[key].reshape(value.shape).numpy(), value, rtol=0, atol=1e-6, err_msg=key
        )


def _reference_em_gaussian(values, pi, A, mu, var, iterations):
    """Independent Baum-Welch for diagonal Gaussians with NaN = missing coordinate (numpy)."""
    history = []
    for _ in range(iterations + 1):
        start = np.zeros_like(pi)
        trans = np.zeros_like(A)
        weight = np.zeros_like(mu)
        first = np.zeros_like(mu)
        second = np.zeros_like(mu)
        total = 0.0
        for seq in values:
            length = len(seq)
            observed = ~np.isnan(seq)
            filled = np.where(observed, seq, 0.0)
            dens = np.exp(
                -0.5 * (filled[:, None, :] - mu) ** 2 / var - 0.5 * np.log(2 * np.pi * var)
            )
            dens = np.where(observed[:, None, :], dens, 1.0).prod(-1)  # (T, K)
            alpha = np.zeros((length, len(pi)))
            scale = np.zeros(length)
            alpha[0] = pi * dens[0]
            scale[0] = alpha[0].sum()
            alpha[0] /= scale[0]
            for t in range(1, length):
                alpha[t] = (alpha[t - 1] @ A) * dens[t]
                scale[t] = alpha[t].sum()
                alpha[t] /= scale[t]
            beta = np.ones((length, len(pi)))
            for t in range(length - 2, -1, -1):
                beta[t] = A @ (dens[t + 1] * beta[t + 1]) / scale[t + 1]
            gamma = alpha * beta
            total += np.log(scale).sum()
            start += gamma[0]
            for t in range(1, length):
                trans += np.outer(alpha[t - 1], dens[t] * beta[t]) * A / scale[t]
            mask = observed.astype(float)
            weight += gamma.T @ mask
            first += gamma.T @ filled
            second += gamma.T @ filled**2
        history.append(total)
        pi = start / start.sum()
        A = trans / trans.sum(1, keepdims=True)
        mu = first / weight
        var = second / weight - mu**2
    return np.asarray(history), mu, np.sqrt(var)


def test_missing_coordinates_match_an_independent_reference_em():
    hmm = HMM(2, Gaussian(dim=2), Prior(mu_scale=5.0))
    truth = hmm.sample_prior(seed=3)
    data, _ = simulate(hmm, truth, [60, 45], seed=4)
    rng = np.random.default_rng(0)
    values = [row.copy() for row in data.to_list()]
    for row in values:
        row[rng.random(row.shape) < 0.2] = np.nan  # single coordinates and whole steps
    gapped = hmm.prepare_data(values)
    assert not gapped.complete
    start = _separated_start(hmm, gapped, seed=5)
    run = run_em(hmm, gapped, start, max_iter=12, tol=0.0, emission_prior=False)
    history, mu, sigma = _reference_em_gaussian(
        values,
        start["pi"].numpy(),
        start["A"].numpy(),
        start["mu"].numpy(),
        start["sigma"].numpy() ** 2,
        run.monitor.iterations,
    )
    np.testing.assert_allclose(run.monitor.log_likelihood, history, rtol=0, atol=1e-8)
    np.testing.assert_allclose(run.params["mu"].numpy(), mu, rtol=0, atol=1e-8)
    np.testing.assert_allclose(run.params["sigma"].numpy(), sigma, rtol=0, atol=1e-8)


def test_fit_em_with_a_dict_start_is_one_run_matching_run_em():
    hmm, lengths = CASES["categorical"]
    data, _ = simulate(hmm, hmm.sample_prior(seed=1), lengths, seed=2)
    data = hmm.prepare_data(data)
    start = _separated_start(hmm, data, seed=3)
    fit = fit_em(hmm, data, init=start, max_iter=15, tol=0.0, emission_prior=False, progress=False)
    run = run_em(hmm, data, start, max_iter=15, tol=0.0, emission_prior=False)
    history = fit.idata.sample_stats["loglik"].values[0, 0]
    assert history.shape == (1, 16)
    np.testing.assert_allclose(history[0], run.monitor.log_likelihood, rtol=0, atol=1e-12)
    point = {k: v[0, 0] for k, v in fit.draws().items()}
    for key, value in run.params.items():
        torch.testing.assert_close(point[key], value, rtol=0, atol=1e-12)
