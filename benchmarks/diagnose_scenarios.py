"""Planted scenarios of ``benchmarks/diagnose_accuracy.py``: truths, data, expectations.

Each scenario function takes a seed and returns the model to fit, the simulated data and what a
correct diagnosis says: ``expect`` ("clean", "degenerate", or "separate" for the scenarios
reported apart), the flags that count as detecting it, the primary cause and the first remedy.
:data:`POINT_EXPECT` overrides ``expect`` for MAP and SVI (one mode, no chains) where a
scenario needs chains: label switching between chains is then simply separated data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import hmm_pyro as hp

__all__ = ["DEGENERACY", "FAMILIES", "KINDS", "POINT_EXPECT", "SEPARATE"]

FAMILIES = ("categorical", "gaussian", "poisson")
DEGENERACY = ("emission_collapse", "empty_states", "prior_dominated", "too_many_states")
LENGTH = 400

SEPARATE = ("misspecified", "non_mixing", "label_switching")
POINT_EXPECT = {"label_switching": "clean"}

# ---------------------------------------------------------------------------- truths
SEPARATED = {
    "categorical": [
        [0.80, 0.10, 0.05, 0.05],
        [0.05, 0.05, 0.10, 0.80],
        [0.05, 0.45, 0.45, 0.05],
    ],
    "gaussian": [-3.0, 3.0, 0.0],
    "poisson": [1.0, 9.0, 22.0],
}


def _transition(num: int, stay: float) -> np.ndarray:
    if num == 1:
        return np.ones((1, 1))
    matrix = np.full((num, num), (1.0 - stay) / (num - 1))
    np.fill_diagonal(matrix, stay)
    return matrix


def _emission(family: str, symbols: int = 4) -> hp.Emission:
    if family == "categorical":
        return hp.Categorical(symbols)
    return hp.Gaussian() if family == "gaussian" else hp.Poisson()


def _params(family: str, values: list, transition: np.ndarray) -> dict[str, torch.Tensor]:
    num = transition.shape[0]
    params = {"pi": np.full(num, 1.0 / num), "A": transition}
    if family == "categorical":
        params["B"] = np.asarray(values, dtype=float)
    elif family == "gaussian":
        params["mu"] = np.asarray(values, dtype=float)
        params["sigma"] = np.ones(num)
    else:
        params["rate"] = np.asarray(values, dtype=float)
    return {name: torch.as_tensor(value, dtype=torch.float64) for name, value in params.items()}


def _simulate(family: str, values: list, transition: np.ndarray, lengths, seed: int, symbols=4):
    truth = _params(family, values, transition)
    hmm = hp.HMM(transition.shape[0], _emission(family, symbols))
    return hp.simulate(hmm, truth, lengths, seed=seed)


def _lengths(seed: int) -> list[int]:
    return [LENGTH] if seed % 2 == 0 else [50] * 8


# ---------------------------------------------------------------------------- scenarios
def _case(
    family: str,
    fit_states: int,
    data: hp.Sequences,
    expect: str,
    prior: hp.Prior | None = None,
    symbols: int = 4,
    **expected: Any,
) -> dict[str, Any]:
    return {
        "family": family,
        "hmm": hp.HMM(fit_states, _emission(family, symbols), prior=prior),
        "data": data,
        "expect": expect,
        **expected,
    }


DATA_CAUSE = {"flags": DEGENERACY, "cause": ("data",), "remedy": "fewer states"}


def separated(seed: int) -> dict[str, Any]:
    family = FAMILIES[seed % 3]
    num = 3 if family == "categorical" else 2
    data, _ = _simulate(
        family, SEPARATED[family][:num], _transition(num, 0.9), _lengths(seed), seed
    )
    return _case(family, num, data, "clean")


def identical_rows(seed: int) -> dict[str, Any]:
    family = FAMILIES[seed % 3]
    values = SEPARATED[family][:2]
    values = [values[0], values[1], values[1]]
    # Lumpable: states 1 and 2 lead into state 0 with the same probability, so the observed
    # process is exactly a 2-state HMM.
    transition = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.2, 0.1, 0.7]])
    data, _ = _simulate(family, values, transition, [LENGTH], seed)
    return _case(family, 3, data, "degenerate", **DATA_CAUSE)


def _too_many(seed: int, extra: int) -> dict[str, Any]:
    family = FAMILIES[seed % 3]
    data, _ = _simulate(family, SEPARATED[family][:2], _transition(2, 0.9), _lengths(seed), seed)
    return _case(family, 2 + extra, data, "degenerate", **DATA_CAUSE)


def k_plus_1(seed: int) -> dict[str, Any]:
    return _too_many(seed, 1)


def k_plus_2(seed: int) -> dict[str, Any]:
    return _too_many(seed, 2)


OVERLAP = {
    "categorical": [[0.45, 0.30, 0.25], [0.35, 0.30, 0.35]],
    "gaussian": [0.0, 0.3],
    "poisson": [5.0, 5.5],
}


def _overlap(family: str, seed: int) -> dict[str, Any]:
    symbols = 3
    data, _ = _simulate(family, OVERLAP[family], _transition(2, 0.8), [LENGTH], seed, symbols)
    return _case(family, 2, data, "degenerate", symbols=symbols, **DATA_CAUSE)


def overlap_categorical(seed: int) -> dict[str, Any]:
    return _overlap("categorical", seed)


def overlap_gaussian(seed: int) -> dict[str, Any]:
    return _overlap("gaussian", seed)


def overlap_poisson(seed: int) -> dict[str, Any]:
    return _overlap("poisson", seed)


TINY = {
    "categorical": [[0.6, 0.2, 0.1, 0.1], [0.1, 0.1, 0.2, 0.6]],
    "gaussian": [-0.75, 0.75],
    "poisson": [3.0, 6.0],
}


def tiny_data(seed: int) -> dict[str, Any]:
    family = FAMILIES[seed % 3]
    data, _ = _simulate(family, TINY[family], _transition(2, 0.8), [15], seed)
    return _case(
        family,
        2,
        data,
        "degenerate",
        flags=(*DEGENERACY, "insufficient_data"),
        cause=("insufficient data",),
        remedy="stronger or more data",
    )


STRONG = {
    "categorical": ([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]], hp.Prior(B=100.0)),
    "gaussian": ([-1.5, 1.5], hp.Prior(mu_scale=0.02)),
    "poisson": ([2.0, 8.0], hp.Prior(rate_shape=5000.0, rate_rate=1000.0)),
}


def strong_prior(seed: int) -> dict[str, Any]:
    family = FAMILIES[seed % 3]
    values, prior = STRONG[family]
    data, _ = _simulate(family, values, _transition(2, 0.9), [LENGTH], seed, symbols=3)
    return _case(
        family,
        2,
        data,
        "degenerate",
        prior=prior,
        symbols=3,
        flags=DEGENERACY,
        cause=("prior",),
        remedy="other prior",
    )


def sparse_prior(seed: int) -> dict[str, Any]:
    family = FAMILIES[seed % 3]
    data, _ = _simulate(family, SEPARATED[family][:2], _transition(2, 0.9), [LENGTH], seed)
    prior = hp.Prior(pi=0.1, A=0.1)  # sparse transitions: meant to empty unneeded states
    return _case(family, 3, data, "degenerate", prior=prior, sparse=True, **DATA_CAUSE)


def iid_mixture(seed: int) -> dict[str, Any]:
    # Gaussian and Poisson only: an i.i.d. mixture of categorical laws is itself one
    # categorical law (not identifiable), for which one state is the right answer.
    family = ("gaussian", "poisson")[seed % 2]
    data, _ = _simulate(family, SEPARATED[family][:2], np.full((2, 2), 0.5), [LENGTH], seed)
    return _case(
        family,
        2,
        data,
        "degenerate",
        flags=("no_temporal_structure",),
        cause=("no temporal structure",),
        remedy="mixture model",
    )


def iid_uniform(seed: int) -> dict[str, Any]:
    # The essay's data: i.i.d. uniform symbols, 3 states and 2 symbols fitted.
    data, _ = _simulate("categorical", [[0.5, 0.5]], np.ones((1, 1)), [500], seed, symbols=2)
    return _case("categorical", 3, data, "degenerate", symbols=2, **DATA_CAUSE)


def misspecified(seed: int) -> dict[str, Any]:
    """Heavy-tailed noise (Student t, 3 df) fitted as Gaussian; overdispersed counts as Poisson."""
    family = ("gaussian", "poisson")[seed % 2]
    values = [-2.0, 2.0] if family == "gaussian" else [3.0, 12.0]
    _, states = _simulate(family, values, _transition(2, 0.9), [LENGTH], seed)
    rng = np.random.default_rng(seed)
    path = states.numpy()[0]
    if family == "gaussian":
        observed = np.asarray(values)[path] + rng.standard_t(3, size=path.size)
    else:
        mean = np.asarray(values)[path]
        dispersion = 2.0  # negative binomial: variance = mean + mean^2 / 2
        observed = rng.negative_binomial(dispersion, dispersion / (dispersion + mean))
    data = hp.Sequences([observed.astype(float)])
    return _case(
        family,
        3,
        data,
        "separate",
        flags=("misspecification",),
        cause=("misspecification",),
        remedy="",
    )


def non_mixing(seed: int) -> dict[str, Any]:
    """Three equal clusters fitted with 2 states: two modes of equal height, chains started in
    different ones (NUTS); point estimates may find both (weak identifiability)."""
    values = [0.0, 4.0, 8.0]
    data, _ = _simulate("gaussian", values, _transition(3, 0.9), [LENGTH], seed)
    hmm = hp.HMM(2, hp.Gaussian())
    starts = []
    for mu in ([0.0, 6.0], [2.0, 8.0]):
        start = {
            "pi": torch.full((2,), 0.5, dtype=torch.float64),
            "A": torch.as_tensor(_transition(2, 0.9)),
            "mu": torch.as_tensor(mu, dtype=torch.float64),
            "sigma": torch.as_tensor([1.5, 1.5], dtype=torch.float64),
        }
        mode = hp.learning.run_em(hmm, data, start, max_iter=200).params
        # off exact zeros of pi and A: the sampler needs finite unconstrained coordinates
        mode = {
            name: (0.999 * value + 0.001 / value.shape[-1]) if name in ("pi", "A") else value
            for name, value in mode.items()
        }
        starts.append(mode)
    case = _case(
        "gaussian",
        2,
        data,
        "separate",
        flags=("not_converged", "chains_in_different_modes", "weak_identifiability"),
        cause=("sampler", "non-mixing", "weak identifiability"),
        remedy="",
    )
    case["nuts"] = {"init": starts}
    return case


def label_switching(seed: int) -> dict[str, Any]:
    family = FAMILIES[seed % 3]
    num = 3 if family == "categorical" else 2
    transition = _transition(num, 0.9)
    data, _ = _simulate(family, SEPARATED[family][:num], transition, [LENGTH], seed)
    truth = _params(family, SEPARATED[family][:num], transition)
    perm = list(range(num))[::-1]
    swapped = {
        name: (value[perm][:, perm] if name == "A" else value[perm])
        for name, value in truth.items()
    }
    case = _case(
        family,
        num,
        data,
        "separate",
        flags=("label_switching",),
        cause=("label switching",),
        remedy="relabelling",
    )
    case["nuts"] = {"init": [truth, swapped], "relabel": False}
    return case


KINDS = {
    function.__name__: function
    for function in (
        separated,
        identical_rows,
        k_plus_1,
        k_plus_2,
        overlap_categorical,
        overlap_gaussian,
        overlap_poisson,
        tiny_data,
        strong_prior,
        sparse_prior,
        iid_mixture,
        iid_uniform,
        misspecified,
        non_mixing,
        label_switching,
    )
}
