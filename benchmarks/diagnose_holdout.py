"""Held-out scenarios of ``benchmarks/diagnose_accuracy.py`` (``--scenarios holdout``).

Written after every threshold of ``diagnose`` was fixed and run as they are, to check the
accuracy targets on cases the thresholds were not tuned on: families that
:mod:`diagnose_scenarios` does not use (gamma step lengths, von Mises angles, negative binomial
counts, a two-dimensional Gaussian), more states, other sequence layouts (ragged lengths, many
short sequences) and other sizes. Same contract as :mod:`diagnose_scenarios`: each function
takes a seed and returns the model to fit, the data and the expected diagnosis ("clean" or
"degenerate", the detecting flags, the primary cause and the first remedy).
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


def _chain(num: int, stay: float) -> dict[str, torch.Tensor]:
    matrix = np.full((num, num), (1.0 - stay) / max(num - 1, 1))
    np.fill_diagonal(matrix, stay)
    return {"pi": _tensor(np.full(num, 1.0 / num)), "A": _tensor(matrix)}


def _case(
    emission: hp.Emission,
    truth: dict[str, Any],
    fit_states: int,
    lengths: list[int],
    seed: int,
    expect: str,
    **expected: Any,
) -> dict[str, Any]:
    num = len(truth["pi"])
    params = {name: _tensor(value) for name, value in truth.items()}
    data, _ = hp.simulate(hp.HMM(num, emission), params, lengths, seed=seed)
    return {
        "family": type(emission).__name__.lower(),
        "hmm": hp.HMM(fit_states, emission),
        "data": data,
        "expect": expect,
        **expected,
    }


def _ragged(seed: int, total: int = 600) -> list[int]:
    rng = np.random.default_rng(1000 + seed)
    lengths: list[int] = []
    while sum(lengths) < total:
        lengths.append(int(rng.integers(30, 121)))
    return lengths


# ---------------------------------------------------------------------------- clean
def separated_gamma(seed: int) -> dict[str, Any]:
    """Step lengths of two movement modes: mean 1 (shape 2) and mean 10 (shape 5)."""
    truth = {**_chain(2, 0.9), "concentration": [2.0, 5.0], "rate": [2.0, 0.5]}
    return _case(hp.Gamma(), truth, 2, [400], seed, "clean")


def separated_vonmises(seed: int) -> dict[str, Any]:
    """Turning angles: persistent (around 0, kappa 4) and reversing (around pi, kappa 2)."""
    truth = {**_chain(2, 0.85), "mu": [0.0, 3.0], "kappa": [4.0, 2.0]}
    return _case(hp.VonMises(), truth, 2, _ragged(seed), seed, "clean")


def separated_four(seed: int) -> dict[str, Any]:
    """Four well separated Gaussian states (means 4 sd apart) in 12 sequences of 60."""
    truth = {**_chain(4, 0.85), "mu": [-6.0, -2.0, 2.0, 6.0], "sigma": [1.0] * 4}
    return _case(hp.Gaussian(), truth, 4, [60] * 12, seed, "clean")


def separated_bivariate(seed: int) -> dict[str, Any]:
    """Two states of a 2-D diagonal Gaussian, apart in the first coordinate only."""
    truth = {**_chain(2, 0.9), "mu": [[0.0, 0.0], [3.0, 0.0]], "sigma": [[1.0, 1.0]] * 2}
    return _case(hp.Gaussian(dim=2), truth, 2, [300], seed, "clean")


# ---------------------------------------------------------------------------- degenerate
def k_plus_1_negbin(seed: int) -> dict[str, Any]:
    """Overdispersed counts from 2 states (means 3 and 15) fitted with 3 states."""
    truth = {**_chain(2, 0.9), "rate": [3.0, 15.0], "dispersion": [4.0, 4.0]}
    return _case(hp.NegativeBinomial(), truth, 3, [500], seed, "degenerate", **DATA_CAUSE)


def identical_gamma(seed: int) -> dict[str, Any]:
    """Two gamma states with the same law (shape 3, rate 1): one state in truth."""
    truth = {**_chain(2, 0.8), "concentration": [3.0, 3.0], "rate": [1.0, 1.0]}
    return _case(hp.Gamma(), truth, 2, _ragged(seed), seed, "degenerate", **DATA_CAUSE)


def overlap_bivariate(seed: int) -> dict[str, Any]:
    """2-D Gaussian states 0.2 sd apart: not resolvable from 400 steps."""
    truth = {**_chain(2, 0.9), "mu": [[0.0, 0.0], [0.2, 0.1]], "sigma": [[1.0, 1.0]] * 2}
    return _case(hp.Gaussian(dim=2), truth, 2, [400], seed, "degenerate", **DATA_CAUSE)


def k_plus_2_ragged_poisson(seed: int) -> dict[str, Any]:
    """Two Poisson states (rates 2 and 10) in ragged sequences, fitted with 4 states."""
    truth = {**_chain(2, 0.85), "rate": [2.0, 10.0]}
    return _case(hp.Poisson(), truth, 4, _ragged(seed), seed, "degenerate", **DATA_CAUSE)


def identical_vonmises(seed: int) -> dict[str, Any]:
    """Three von Mises states fitted to angles of one law (around 0.5, kappa 1)."""
    truth = {"pi": [1.0], "A": [[1.0]], "mu": [0.5], "kappa": [1.0]}
    return _case(hp.VonMises(), truth, 3, [400], seed, "degenerate", **DATA_CAUSE)


KINDS = {
    function.__name__: function
    for function in (
        separated_gamma,
        separated_vonmises,
        separated_four,
        separated_bivariate,
        k_plus_1_negbin,
        identical_gamma,
        overlap_bivariate,
        k_plus_2_ragged_poisson,
        identical_vonmises,
    )
}
