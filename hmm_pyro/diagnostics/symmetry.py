"""Symmetric starts: did the run begin with all states identical; does the result show it.

Identical states receive identical gradients and identical EM updates, so a run started on the
symmetric subspace stays there unless round-off pushes it off (docs/degeneracy.md#symmetric-starts).
Evidence comes from the fit's attributes (``init``, ``init_min_hellinger`` per chain or restart)
and, when they are missing, from the fingerprint of the symmetric fixed point: every state's
emission law is identical to round-off and equal to the one-state fit (overall symbol frequencies,
pooled mean).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hmm_pyro.data import Sequences
from hmm_pyro.diagnostics.collapse import pooled_distance
from hmm_pyro.diagnostics.thresholds import (
    IDENTICAL_DISTANCE,
    POOLED_FIT_DISTANCE,
    SYMMETRIC_START_DISTANCE,
)
from hmm_pyro.labels.draws import Arrays, emission_distances
from hmm_pyro.model import HMM

__all__ = ["SYMMETRIC_INITS", "SymmetryEvidence", "symmetry_evidence"]

SYMMETRIC_INITS = ("median", "mean", "feasible")
"""Pyro initialisations that put every Dirichlet row (and every location) at the same point."""


@dataclass(frozen=True)
class SymmetryEvidence:
    """What is known about a symmetric start.

    Attributes
    ----------
    init : str or None
        The recorded initialisation.
    start_separation : list of float or None
        Smallest pairwise squared Hellinger distance of each chain's or restart's start.
    identical : bool
        Every pair of states is identical to round-off in most draws.
    pooled_distance : float
        Posterior median of the largest squared Hellinger distance between a state and the
        one-state fit.
    """

    init: str | None
    start_separation: list[float] | None
    identical: bool
    pooled_distance: float

    @property
    def symmetric_starts(self) -> tuple[int, ...]:
        """Chains or restarts whose start was numerically symmetric."""
        if not self.start_separation:
            return ()
        values = np.asarray(self.start_separation, dtype=np.float64)
        return tuple(np.flatnonzero(values <= SYMMETRIC_START_DISTANCE).tolist())

    @property
    def named_symmetric_init(self) -> bool:
        """The recorded init is one of Pyro's symmetric ones."""
        return self.init in SYMMETRIC_INITS

    @property
    def recorded(self) -> bool:
        """The attributes say the run started symmetric."""
        return self.named_symmetric_init or bool(self.symmetric_starts)

    @property
    def fingerprint(self) -> bool:
        """The result is the symmetric fixed point: identical states equal to the one-state fit."""
        return self.identical and self.pooled_distance < POOLED_FIT_DISTANCE

    def describe(self) -> str:
        """Where the evidence comes from, in words."""
        parts = []
        if self.named_symmetric_init:
            parts.append(f"init={self.init!r} starts every state at the same point")
        if self.symmetric_starts:
            which = ", ".join(map(str, self.symmetric_starts))
            values = ", ".join(f"{self.start_separation[i]:.1e}" for i in self.symmetric_starts)
            parts.append(
                f"the start of chain/restart {which} had its closest states at squared "
                f"Hellinger distance {values}"
            )
        if self.fingerprint:
            parts.append(
                "every state's emission law is identical to round-off and equal to the "
                f"one-state fit (squared Hellinger {self.pooled_distance:.1e})"
            )
        return "; ".join(parts)


def symmetry_evidence(
    hmm: HMM, data: Sequences, posterior: Arrays, attrs: Mapping[str, Any]
) -> SymmetryEvidence:
    """Collect the evidence of a symmetric start.

    Parameters
    ----------
    hmm : HMM
        The model (``K >= 2``).
    data : Sequences
        The fitted data.
    posterior : dict of numpy.ndarray
        Posterior draws ``(chain, draw, ...)``.
    attrs : mapping
        The fit's decoded attributes.

    Returns
    -------
    SymmetryEvidence
    """
    init = attrs.get("init")
    separation = attrs.get("init_min_hellinger")
    if separation is not None and not isinstance(separation, (list, tuple)):
        separation = [separation]
    distances = emission_distances(hmm, posterior)
    upper = np.triu_indices(hmm.num_states, k=1)
    max_pair = distances[..., upper[0], upper[1]].max(-1)
    to_pooled = pooled_distance(hmm, data, posterior).max(-1)
    return SymmetryEvidence(
        init=init if isinstance(init, str) else None,
        start_separation=None if separation is None else [float(v) for v in separation],
        identical=bool(np.mean(max_pair < IDENTICAL_DISTANCE) > 0.5),
        pooled_distance=float(np.median(to_pooled)),
    )
