"""Checks shared by the tests of the negative binomial, Student-t and product families."""

from __future__ import annotations

import numpy as np
import torch
from scipy import optimize

import hmm_pyro as hp

DTYPE = torch.float64


def as_tensors(params: dict) -> dict[str, torch.Tensor]:
    return {name: torch.as_tensor(value, dtype=DTYPE) for name, value in params.items()}


def check_collapsed_pair_is_flagged(emission: hp.Emission, states: dict) -> None:
    """A 3-state MAP point whose states 1 and 2 are one planted state is flagged as collapsed.

    ``states`` holds two distinct states' emission parameters (leading axis 2). Data come from
    the 2-state model; the point duplicates state 1 (transitions split evenly), as a MAP fit
    with a surplus state ends; ``diagnose`` must report the pair (1, 2) and two distinct states.
    """
    two = {"pi": [0.5, 0.5], "A": [[0.9, 0.1], [0.1, 0.9]], **states}
    data, _ = hp.simulate(hp.HMM(2, emission), as_tensors(two), [60, 60], seed=0)
    point = {
        "pi": [0.5, 0.25, 0.25],
        "A": [[0.9, 0.05, 0.05], [0.1, 0.45, 0.45], [0.1, 0.45, 0.45]],
    }
    for name, value in as_tensors(states).items():
        point[name] = torch.cat([value, value[1:2]])
    fit = hp.Fit.from_params(hp.HMM(3, emission), data, as_tensors(point), method="map")
    flag = hp.diagnose(fit).flag("emission_collapse")
    assert flag is not None and flag.severity == "error", flag
    assert flag.measured["groups"] == [(1, 2)]
    assert flag.measured["effective_num_states"] == 2


def check_hard_path_gives_the_one_state_fits(
    emission: hp.Emission, params: dict, rtol: float = 1e-9
) -> None:
    """The M-step on one-hot weights equals the one-state fit of each state's steps.

    ``rtol`` is the agreement of two runs of a numerical M-step (flat directions such as a
    large maximum-likelihood ``df`` are located only to about 1e-5).
    """
    hmm = hp.HMM(2, emission)
    full = {"pi": [0.5, 0.5], "A": [[0.8, 0.2], [0.3, 0.7]], **params}
    data, states = hp.simulate(hmm, as_tensors(full), [40, 25], seed=4)
    weights = torch.nn.functional.one_hot(states.clamp(min=0), 2).to(DTYPE)
    weights = weights * data.mask[..., None]
    statistics = emission.weighted_statistics(data, weights.reshape(-1, 2))
    estimate = emission.maximize(statistics, {}, None, use_prior=False)
    for k in range(2):
        steps = data.values[(states == k) & data.mask]
        one = emission.pooled_params(hp.Sequences([steps.numpy()], dim=emission.dim))
        for name, value in one.items():
            torch.testing.assert_close(estimate[name][k], value[0], rtol=rtol, atol=1e-12)


def direct_optimum(loss, start) -> np.ndarray:
    """scipy's minimiser of ``loss``: BFGS, polished by Nelder-Mead from BFGS's point."""
    first = optimize.minimize(loss, start, method="BFGS", options={"gtol": 1e-10})
    polished = optimize.minimize(
        loss, first.x, method="Nelder-Mead", options={"xatol": 1e-11, "fatol": 1e-14}
    )
    return polished.x if polished.fun <= first.fun else first.x
