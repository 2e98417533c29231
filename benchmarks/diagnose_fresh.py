"""A third, later set of scenarios for ``benchmarks/diagnose_accuracy.py`` (``--scenarios fresh``).

Written after the thresholds of ``diagnose`` and the held-out set were fixed, and run as they
are: families and layouts that neither :mod:`diagnose_scenarios` nor :mod:`diagnose_holdout`
uses (full-covariance Gaussians, Student-t, many-symbol categorical data, the step-and-angle
product of animal movement, many very short sequences, one long sequence), with the same
contract: each function takes a seed and returns the model to fit, the data and the expected
diagnosis ("clean" or "degenerate", the detecting flags, the primary cause, the first remedy).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import hmm_pyro as hp

__all__ = ["KINDS"]

DEGENERACY = ("emission_collapse", "empty_states", "prior_dominated", "too_many_states")
DATA_CAUSE = {"flags": DEGENERACY, "cause": ("data",), "remedy": "fewer states"}


def _tensor(value: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value, dtype=float), dtype=torch.float64)


def _chain(num: int, stay: float) -> dict[str, Any]:
    matrix = np.full((num, num), (1.0 - stay) / max(num - 1, 1))
    np.fill_diagonal(matrix, stay)
    return {"pi": np.full(num, 1.0 / num), "A": matrix}


def _case(
    emission: hp.Emission,
    truth: dict[str, Any],
    fit_states: int,
    lengths: list[int],
    seed: int,
    expect: str,
    **expected: Any,
) -> dict[str, Any]:
    params = {name: _tensor(value) for name, value in truth.items()}
    data, _ = hp.simulate(hp.HMM(len(truth["pi"]), emission), params, lengths, seed=seed)
    return {
        "family": type(emission).__name__.lower(),
        "hmm": hp.HMM(fit_states, emission),
        "data": data,
        "expect": expect,
        **expected,
    }


def _movement() -> hp.Emission:
    return hp.Product(step=hp.Gamma(), angle=hp.VonMises())


_ENCAMPED_TRAVELLING = {
    "step_concentration": [1.5, 6.0],
    "step_rate": [3.0, 1.0],
    "angle_mu": [3.1, 0.0],
    "angle_kappa": [0.5, 5.0],
}


# ---------------------------------------------------------------------------- clean
def separated_full_covariance(seed: int) -> dict[str, Any]:
    """Two 2-D Gaussian states with correlated coordinates (+0.7 and -0.7), means 3 sd apart."""
    corr = [[[1.0, 0.7], [0.7, 1.0]], [[1.0, -0.7], [-0.7, 1.0]]]
    truth = {
        **_chain(2, 0.9),
        "mu": [[0.0, 0.0], [3.0, 0.0]],
        "sigma": [[1.0, 1.0], [1.0, 1.0]],
        "corr": corr,
    }
    return _case(hp.MultivariateNormal(2), truth, 2, [400], seed, "clean")


def separated_movement(seed: int) -> dict[str, Any]:
    """Encamped (short steps, turning back) and travelling (long steps, straight) modes."""
    truth = {**_chain(2, 0.9), **_ENCAMPED_TRAVELLING}
    return _case(_movement(), truth, 2, [150] * 3, seed, "clean")


def separated_many_symbols(seed: int) -> dict[str, Any]:
    """Three states over 10 symbols, each state favouring its own three symbols."""
    rows = np.full((3, 10), 0.1 / 7)
    for state in range(3):
        rows[state, 3 * state : 3 * state + 3] = 0.3
    truth = {**_chain(3, 0.9), "B": rows}
    return _case(hp.Categorical(10), truth, 3, [600], seed, "clean")


def separated_short_sequences(seed: int) -> dict[str, Any]:
    """Poisson rates 1 and 8 in 40 sequences of 15 steps."""
    truth = {**_chain(2, 0.85), "rate": [1.0, 8.0]}
    return _case(hp.Poisson(), truth, 2, [15] * 40, seed, "clean")


# ---------------------------------------------------------------------------- degenerate
def k_plus_1_movement(seed: int) -> dict[str, Any]:
    """The two movement modes above fitted with three states."""
    truth = {**_chain(2, 0.9), **_ENCAMPED_TRAVELLING}
    return _case(_movement(), truth, 3, [150] * 3, seed, "degenerate", **DATA_CAUSE)


def k_plus_1_many_symbols(seed: int) -> dict[str, Any]:
    """Two states over 10 symbols fitted with three."""
    rows = np.full((2, 10), 0.1 / 5)
    rows[0, :5] = 0.18
    rows[1, 5:] = 0.18
    truth = {**_chain(2, 0.9), "B": rows}
    return _case(hp.Categorical(10), truth, 3, [600], seed, "degenerate", **DATA_CAUSE)


def identical_student_t(seed: int) -> dict[str, Any]:
    """Heavy-tailed values of one law (t with 4 df) fitted with two Student-t states."""
    truth = {"pi": [1.0], "A": [[1.0]], "mu": [1.0], "sigma": [2.0], "df": [4.0]}
    return _case(hp.StudentT(), truth, 2, [500], seed, "degenerate", **DATA_CAUSE)


def overlap_full_covariance(seed: int) -> dict[str, Any]:
    """Two correlated 2-D Gaussian states 0.15 sd apart, in one long sequence of 1,000 steps."""
    corr = [[[1.0, 0.5], [0.5, 1.0]]] * 2
    truth = {
        **_chain(2, 0.9),
        "mu": [[0.0, 0.0], [0.15, 0.0]],
        "sigma": [[1.0, 1.0], [1.0, 1.0]],
        "corr": corr,
    }
    return _case(hp.MultivariateNormal(2), truth, 2, [1000], seed, "degenerate", **DATA_CAUSE)


def k_plus_2_short_sequences(seed: int) -> dict[str, Any]:
    """Poisson rates 1 and 8 in 40 sequences of 15 steps, fitted with four states."""
    truth = {**_chain(2, 0.85), "rate": [1.0, 8.0]}
    return _case(hp.Poisson(), truth, 4, [15] * 40, seed, "degenerate", **DATA_CAUSE)


KINDS = {
    function.__name__: function
    for function in (
        separated_full_covariance,
        separated_movement,
        separated_many_symbols,
        separated_short_sequences,
        k_plus_1_movement,
        k_plus_1_many_symbols,
        identical_student_t,
        overlap_full_covariance,
        k_plus_2_short_sequences,
    )
}
