"""Property: EM never decreases its objective (log posterior; log likelihood with flat priors).

Small random models and data from every family, with missing values, flat and informative
priors (Dirichlet concentrations below 1 included), free and stationary ``pi``. Hard EM's
classification objective is checked the same way. "Decrease" means beyond the monitor's
round-off allowance (relative 1e-9); a run that breaks down (a Gaussian state collapsing without
a variance prior) must say so (``status == "non_finite"``), and the history before the
breakdown must still be monotone.
"""

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hmm_pyro import HMM, Categorical, Gaussian, Poisson, Prior, simulate
from hmm_pyro.learning import initial_params, run_em, run_viterbi_training
from hmm_pyro.learning.monitor import DECREASE_RTOL

FAMILIES = {
    "categorical": lambda: Categorical(3),
    "gaussian": lambda: Gaussian(),
    "gaussian_diag": lambda: Gaussian(dim=2),
    "poisson": lambda: Poisson(),
    "poisson_multi": lambda: Poisson(dim=2),
}


def _non_decreasing(history):
    values = np.asarray(history)
    values = values[np.isfinite(values)]
    steps = np.diff(values)
    scale = np.maximum(np.maximum(np.abs(values[1:]), np.abs(values[:-1])), 1.0)
    return bool((steps >= -DECREASE_RTOL * scale).all())


@st.composite
def problems(draw):
    family = draw(st.sampled_from(sorted(FAMILIES)))
    num_states = draw(st.integers(1, 3))
    concentration = draw(st.sampled_from([0.6, 1.0, 2.5]))
    initial = draw(st.sampled_from(["free", "stationary"]))
    if initial == "stationary":
        concentration = max(concentration, 1.0)
    prior = Prior(
        pi=concentration,
        A=concentration,
        stickiness=draw(st.sampled_from([0.0, 2.0])),
        B=draw(st.sampled_from([0.6, 1.0, 3.0])),
        mu_scale=3.0,
        variance_shape=2.0,
        variance_scale=0.5,
        rate_shape=draw(st.sampled_from([0.8, 2.0])),
        rate_rate=0.2,
    )
    hmm = HMM(num_states, FAMILIES[family](), prior)
    lengths = draw(st.lists(st.integers(2, 25), min_size=1, max_size=3))
    missing = draw(st.sampled_from([0.0, 0.25]))
    emission_prior = draw(st.booleans())
    seed = draw(st.integers(0, 2**20))
    return hmm, lengths, missing, emission_prior, initial, seed


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(problems())
def test_em_and_hard_em_never_decrease(problem):
    hmm, lengths, missing, emission_prior, initial, seed = problem
    truth = hmm.sample_prior(seed=seed)
    data, _ = simulate(hmm, truth, lengths, seed=seed + 1)
    values = [np.array(row, dtype=float, copy=True) for row in data.to_list()]
    rng = np.random.default_rng(seed)
    for row in values:
        row[rng.random(row.shape) < missing] = np.nan
    data = hmm.prepare_data(values if hmm.emission.dim == 1 else [v for v in values])
    start = initial_params(hmm, data, "prior", seed=seed + 2)

    run = run_em(
        hmm, data, start, max_iter=12, tol=0.0, emission_prior=emission_prior, initial=initial
    )
    monitor = run.monitor
    assert monitor.decreases == [], monitor.objective
    assert _non_decreasing(
        [
            v
            for v, b in zip(monitor.objective, monitor.boundary, strict=True)
            if b == monitor.boundary[-1]
        ]
    )
    if monitor.status == "non_finite":
        assert not emission_prior and hmm.emission.family == "gaussian"
        assert not monitor.converged
    flat = not emission_prior and all(
        float(torch.as_tensor(c).min()) == 1.0 and float(torch.as_tensor(c).max()) == 1.0
        for c in (
            hmm.prior.resolve_initial(hmm.num_states),
            hmm.prior.resolve_transitions(hmm.num_states),
        )
    )
    if flat:
        assert _non_decreasing(monitor.log_likelihood)
    if initial == "stationary":
        pi, A = run.params["pi"], run.params["A"]
        torch.testing.assert_close(pi @ A, pi, rtol=1e-8, atol=1e-10)

    hard = run_viterbi_training(
        hmm, data, start, max_iter=8, emission_prior=emission_prior, initial=initial
    )
    assert hard.monitor.decreases == [], hard.monitor.objective
