"""Posterior mode of a two-state covariate HMM by direct numerical maximisation, without hmm_pyro.

The independent reference for ``examples/08_seasonal_rain.py``: the scaled forward recursion
with one transition matrix per step, in NumPy, and SciPy's L-BFGS-B (finite-difference
gradients) over unconstrained parameters. The objective is the one ``fit_map`` maximises for
``CovariateHMM(2, Categorical(S), transition_covariates=[...])`` under the default priors: the
log likelihood plus the Normal log densities of the transition coefficients (intercepts
``Normal(0, 2)``, slopes ``Normal(0, 1)``, on covariates standardised to mean 0 and standard
deviation 1 with ``ddof=0``); the flat Dirichlet priors of ``pi`` and of the emission rows add
constants. Probabilities are softmaxes of logits bounded to ``[-LOGIT_BOUND, LOGIT_BOUND]`` (a
probability of 0 at the mode is approached as ``exp(-20)``). Nothing here imports ``hmm_pyro``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.special import log_softmax

from tests.datasets.direct_likelihood import LOGIT_BOUND

INTERCEPT_SCALE = 2.0
SLOPE_SCALE = 1.0


def design(raw: np.ndarray) -> np.ndarray:
    """``(T, 1 + P)``: an intercept, then the columns of ``raw (T, P)`` standardised (ddof 0)."""
    values = (raw - raw.mean(0)) / raw.std(0)
    return np.column_stack([np.ones(len(raw)), values])


def varying_forward(
    log_emission: np.ndarray, log_initial: np.ndarray, log_transitions: np.ndarray
) -> float:
    """``log p(y)``: scaled forward recursion, ``log_transitions[t]`` drives step ``t -> t+1``."""
    emission = np.exp(log_emission - log_emission.max(1, keepdims=True))
    total = float(log_emission.max(1).sum())
    transitions = np.exp(log_transitions)
    alpha = np.exp(log_initial) * emission[0]
    for t in range(1, len(emission)):
        scale = alpha.sum()
        total += np.log(scale)
        alpha = (alpha / scale) @ transitions[t - 1] * emission[t]
    return total + float(np.log(alpha.sum()))


@dataclass(frozen=True)
class Mode:
    """Parameters at the mode and the log likelihood there."""

    log_likelihood: float
    log_objective: float
    initial: np.ndarray
    coefficients: np.ndarray  # (2, 2, 1 + P), zero diagonal
    emission: np.ndarray  # (2, S)


def _unpack(theta: np.ndarray, width: int, symbols: int):
    initial = np.exp(log_softmax([0.0, theta[0]]))
    coefficients = np.zeros((2, 2, width))
    coefficients[0, 1] = theta[1 : 1 + width]
    coefficients[1, 0] = theta[1 + width : 1 + 2 * width]
    logits = theta[1 + 2 * width :].reshape(2, symbols - 1)
    emission = np.exp(log_softmax(np.column_stack([np.zeros(2), logits]), axis=1))
    return initial, coefficients, emission


def pack(initial: np.ndarray, coefficients: np.ndarray, emission: np.ndarray) -> np.ndarray:
    """``theta`` of given probabilities and coefficients (logits clipped to the bounds)."""
    with np.errstate(divide="ignore"):
        first = np.log(initial[1]) - np.log(initial[0])
        logits = np.log(emission[:, 1:]) - np.log(emission[:, :1])
    parts = [[first], coefficients[0, 1], coefficients[1, 0], logits.ravel()]
    return np.clip(np.concatenate([np.ravel(part) for part in parts]), -LOGIT_BOUND, LOGIT_BOUND)


def log_objective(theta: np.ndarray, symbols_seen: np.ndarray, steps: np.ndarray, symbols: int):
    """``(log likelihood, log likelihood + coefficient log prior)`` at ``theta``."""
    width = steps.shape[1]
    initial, coefficients, emission = _unpack(theta, width, symbols)
    eta = np.einsum("tp,ijp->tij", steps, coefficients)
    log_transitions = eta - np.logaddexp.reduce(eta, axis=2, keepdims=True)
    with np.errstate(divide="ignore"):
        log_emission = np.log(emission.T[symbols_seen])
        log_initial = np.log(initial)
    log_lik = varying_forward(log_emission, log_initial, log_transitions)
    scales = np.array([INTERCEPT_SCALE] + [SLOPE_SCALE] * (width - 1))
    off = np.stack([coefficients[0, 1], coefficients[1, 0]])
    log_prior = float(-0.5 * ((off / scales) ** 2).sum())
    return log_lik, log_lik + log_prior


def maximise(symbols_seen: np.ndarray, raw: np.ndarray, symbols: int, starts: int = 4) -> Mode:
    """The best of ``starts`` L-BFGS-B runs from random starts (seeded)."""
    steps = design(raw)
    width = steps.shape[1]
    size = 1 + 2 * width + 2 * (symbols - 1)
    rng = np.random.default_rng(0)
    best = None
    for _ in range(starts):
        start = rng.normal(0.0, 1.0, size)
        start[1] = start[1 + width] = -2.0  # persistent chains to begin with

        def negative(theta: np.ndarray) -> float:
            return -log_objective(theta, symbols_seen, steps, symbols)[1]

        bounds = [(-LOGIT_BOUND, LOGIT_BOUND)] * size
        result = optimize.minimize(
            negative,
            start,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-9},
        )
        if best is None or result.fun < best.fun:
            best = result
    log_lik, value = log_objective(best.x, symbols_seen, steps, symbols)
    initial, coefficients, emission = _unpack(best.x, width, symbols)
    return Mode(log_lik, value, initial, coefficients, emission)


SEASONAL_MODE = Mode(
    log_likelihood=-1223.9147244533872,
    log_objective=-1224.8901904463603,
    initial=np.array([1.0, 0.0]),
    coefficients=np.array(
        [
            [[0.0, 0.0, 0.0], [-1.6701, 0.6015, 0.3731]],
            [[-1.4271, -0.4752, 0.1324], [0.0, 0.0, 0.0]],
        ]
    ),
    emission=np.array([[0.9276, 0.0724, 0.0], [0.1525, 0.4534, 0.3941]]),
)
"""The best of 4 runs of :func:`maximise` on ``seattle_weather`` (rain coded dry 0, light 1,
heavy 2; covariates ``season_cos``, ``season_sin``): the independent reference of
``examples/08_seasonal_rain.py`` (``docs/datasets.md``). Parameters rounded to 4 decimals; the
log likelihood and the objective (log likelihood plus the coefficients' log prior without its
constant) as found."""
