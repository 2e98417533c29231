"""Constants and a NumPy forward recursion shared by the compare tests."""

from __future__ import annotations

import numpy as np

import hmm_pyro as hp

PRIORS = {
    "flat": hp.Prior(),
    "sticky": hp.Prior(stickiness=10.0),
    "strong": hp.Prior(B=100.0),  # every emission row pulled to uniform: contradicts the data
}

COVARIATE_PRIORS = {
    "flat": hp.Prior(),
    "strong": hp.Prior(B=50.0),  # emission rows pulled to uniform (no transition prior to vary)
}
"""Prior settings of the covariate model (a CovariateHMM has no Dirichlet transition prior)."""


def forward_log_likelihood(
    pi: np.ndarray, beta: np.ndarray, emission: np.ndarray, design: np.ndarray, symbols: np.ndarray
) -> float:
    """``log p(y)`` of one sequence of a categorical HMM with covariate-driven transitions.

    Written apart from the package (NumPy only): ``A_t[i, j] = softmax_j(design[t] .
    beta[i, j])`` moves the chain from step ``t`` to ``t + 1``; ``symbols`` holds NaN at missing
    steps, which contribute no emission term (the scaled forward recursion).
    """
    eta = np.einsum("tp,ijp->tij", design, beta)
    transitions = np.exp(eta - eta.max(-1, keepdims=True))
    transitions /= transitions.sum(-1, keepdims=True)
    observed = ~np.isnan(symbols)
    codes = np.where(observed, symbols, 0).astype(int)
    likelihood = np.where(observed[:, None], emission[:, codes].T, 1.0)
    alpha = pi * likelihood[0]
    total = np.log(alpha.sum())
    alpha /= alpha.sum()
    for t in range(1, len(symbols)):
        alpha = (alpha @ transitions[t - 1]) * likelihood[t]
        total += np.log(alpha.sum())
        alpha /= alpha.sum()
    return float(total)
