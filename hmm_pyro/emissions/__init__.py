"""Emission families: how each hidden state generates observations.

Each family owns every decision that depends on it (prior, statistics, M-step, starts,
distances, potential terms, ...) as methods of :class:`Emission`; the rest of the package asks
the family and never switches on it.

Layer rule: ``emissions`` imports ``priors``, ``data``, ``kernels`` and the private utilities;
``model`` and everything above import it.
"""

from __future__ import annotations

from typing import Any

from hmm_pyro.emissions.base import Emission
from hmm_pyro.emissions.categorical import Categorical
from hmm_pyro.emissions.gamma import Gamma
from hmm_pyro.emissions.gaussian import Gaussian
from hmm_pyro.emissions.mvnormal import MultivariateNormal
from hmm_pyro.emissions.poisson import Poisson
from hmm_pyro.emissions.vonmises import VonMises

__all__ = [
    "FAMILIES",
    "Categorical",
    "Emission",
    "Gamma",
    "Gaussian",
    "MultivariateNormal",
    "Poisson",
    "VonMises",
    "from_config",
]

FAMILIES: dict[str, type[Emission]] = {
    Categorical.family: Categorical,
    Gamma.family: Gamma,
    Gaussian.family: Gaussian,
    MultivariateNormal.family: MultivariateNormal,
    Poisson.family: Poisson,
    VonMises.family: VonMises,
}
"""The registry: family name -> class. A new family is one module plus one entry here."""


def from_config(config: dict[str, Any]) -> Emission:
    """Rebuild an emission family from :meth:`Emission.to_config` output."""
    options = dict(config)
    family = options.pop("family", None)
    if family not in FAMILIES:
        raise ValueError(f"config: expected family in {sorted(FAMILIES)}, got {family!r}")
    return FAMILIES[family](**options)
