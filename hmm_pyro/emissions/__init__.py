"""Emission families: how each hidden state generates observations."""

from __future__ import annotations

from typing import Any

from hmm_pyro.emissions.base import Emission
from hmm_pyro.emissions.categorical import Categorical
from hmm_pyro.emissions.gaussian import Gaussian
from hmm_pyro.emissions.poisson import Poisson

__all__ = ["Categorical", "Emission", "Gaussian", "Poisson", "from_config"]

_FAMILIES: dict[str, type[Emission]] = {
    Categorical.family: Categorical,
    Gaussian.family: Gaussian,
    Poisson.family: Poisson,
}


def from_config(config: dict[str, Any]) -> Emission:
    """Rebuild an emission family from :meth:`Emission.to_config` output."""
    options = dict(config)
    family = options.pop("family", None)
    if family not in _FAMILIES:
        raise ValueError(f"config: expected family in {sorted(_FAMILIES)}, got {family!r}")
    return _FAMILIES[family](**options)
