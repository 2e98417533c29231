"""Maximum likelihood of a hidden Markov model by direct numerical maximisation, without hmm_pyro.

The independent reference for the shipped data sets' numbers: a scaled forward algorithm in
NumPy and SciPy's L-BFGS-B (finite-difference gradients) over unconstrained parameters, as
Zucchini & MacDonald maximise HMM likelihoods directly. Nothing here imports ``hmm_pyro``.

Parameters: the emission family's own (``log_emission(theta)`` maps them to the ``(T, K)``
table of log densities), the off-diagonal transition logits (row ``i`` has logit 0 on its
diagonal) and, unless the chain starts in its stationary distribution, the logits of the
initial distribution (state 0 has logit 0). Logits are bounded to ``[-LOGIT_BOUND,
LOGIT_BOUND]`` so that a probability of 0 at the optimum is approached as ``exp(-20)``
(below 1e-8: its effect on the log likelihood is far below the tolerances compared).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.special import logsumexp

LOGIT_BOUND = 20.0


def forward_log_likelihood(
    log_emission: np.ndarray, initial: np.ndarray, transition: np.ndarray
) -> float:
    """``log p(y)`` by the scaled forward recursion; ``log_emission`` is ``(T, K)``.

    Plain Python floats inside the loop (a few states: faster than NumPy's small-array
    calls, and the optimiser calls this a thousand times).
    """
    shift = log_emission.max(axis=1, keepdims=True)
    emission = np.exp(log_emission - shift).tolist()
    columns = transition.T.tolist()
    alpha = [p * e for p, e in zip(initial.tolist(), emission[0], strict=True)]
    scales = []
    for row in emission[1:]:
        scale = sum(alpha)
        scales.append(scale)
        alpha = [
            sum(a * c for a, c in zip(alpha, column, strict=True)) / scale * e
            for column, e in zip(columns, row, strict=True)
        ]
    scales.append(sum(alpha))
    return float(np.log(scales).sum() + shift.sum())


def stationary(transition: np.ndarray) -> np.ndarray:
    """The stationary distribution ``delta = delta A`` (solved with the sum-to-one row)."""
    num = len(transition)
    system = np.vstack([transition.T - np.eye(num), np.ones(num)])
    target = np.append(np.zeros(num), 1.0)
    return np.linalg.lstsq(system, target, rcond=None)[0]


@dataclass(frozen=True)
class DirectFit:
    """The best optimum found: log likelihood and parameters."""

    log_likelihood: float
    emission: np.ndarray
    initial: np.ndarray
    transition: np.ndarray


def _unpack(theta: np.ndarray, num_emission: int, num: int, initial: str):
    emission = theta[:num_emission]
    logits = theta[num_emission : num_emission + num * (num - 1)].reshape(num, num - 1)
    rows = np.zeros((num, num))
    for i in range(num):
        rows[i, [j for j in range(num) if j != i]] = logits[i]
    transition = np.exp(rows - logsumexp(rows, axis=1, keepdims=True))
    if initial == "stationary":
        start = stationary(transition)
    else:
        start_logits = np.append(0.0, theta[num_emission + num * (num - 1) :])
        start = np.exp(start_logits - logsumexp(start_logits))
    return emission, start, transition


def maximise(
    log_emission: Callable[[np.ndarray], np.ndarray],
    emission_starts: list[np.ndarray],
    num_states: int,
    initial: str,
) -> DirectFit:
    """Maximise the likelihood from each emission start (transitions start at 0.9 on the
    diagonal, the initial distribution uniform) and return the best optimum.

    ``initial`` is ``"free"`` (the initial distribution estimated) or ``"stationary"``.
    """
    num_chain = num_states * (num_states - 1) + (num_states - 1 if initial == "free" else 0)
    stay = np.log(0.9 * (num_states - 1) / 0.1)  # diagonal 0.9, the rest shared equally
    best = None
    for start in emission_starts:
        num_emission = len(start)
        chain = np.full(num_chain, 0.0)
        chain[: num_states * (num_states - 1)] = -stay

        def negative(theta: np.ndarray, num_emission: int = num_emission) -> float:
            emission, first, transition = _unpack(theta, num_emission, num_states, initial)
            return -forward_log_likelihood(log_emission(emission), first, transition)

        bounds = [(None, None)] * num_emission + [(-LOGIT_BOUND, LOGIT_BOUND)] * num_chain
        result = optimize.minimize(
            negative,
            np.concatenate([start, chain]),
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-7},
        )
        if best is None or result.fun < best.fun:
            best = result
    emission, first, transition = _unpack(best.x, len(emission_starts[0]), num_states, initial)
    return DirectFit(-float(best.fun), emission, first, transition)


REFERENCE = {
    ("fetal_lamb", "free"): -177.4833,
    ("fetal_lamb", "stationary"): -177.5188,
    ("old_faithful", "free"): -1092.3995,
}
"""Maximum log likelihoods of the two-state models, to 4 decimals, as :func:`maximise` finds them
(``tests/datasets/test_datasets.py`` recomputes them; the examples and docs quote them):
``fetal_lamb`` Poisson, ``old_faithful`` Gaussian on the waiting times."""
