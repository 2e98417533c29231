"""Named thresholds of relabelling, each with its justification and source.

:mod:`hmm_pyro.diagnostics.thresholds` lists them with the other thresholds of ``diagnose``.
Distances are squared Hellinger distances ``H2 = 1 - sum sqrt(p q)`` between two states'
emission laws (in ``[0, 1]``; closed forms in :mod:`hmm_pyro.emissions`).
"""

from __future__ import annotations

__all__ = [
    "COLLAPSE_DISTANCE",
    "COLLAPSE_PROBABILITY",
    "MAX_TIME_POINTS",
    "METHOD_DISAGREEMENT",
]

COLLAPSE_DISTANCE = 0.05
"""Two states are indistinguishable when ``H2 < 0.05``: equal-variance Gaussians 0.64 sd apart,
and ``H2`` bounds total variation (``TV <= H sqrt(2 - H2)``, so ``TV < 0.32``)
(docs/degeneracy.md#emission-collapse; Le Cam & Yang 2000 for the bounds)."""

COLLAPSE_PROBABILITY = 0.5
"""A pair (or the closest pair) is collapsed when ``P(H2 < COLLAPSE_DISTANCE | y) > 0.5``: the
posterior median distance is below the threshold (docs/degeneracy.md#emission-collapse)."""

METHOD_DISAGREEMENT = 0.05
"""Two relabelling methods (Stephens' KL and ECR) that disagree on more than 5% of the draws
mean the labels are not identifiable from the data
(docs/degeneracy.md#cross-check-method-disagreement; Papastamoulis 2016, JSS 69(1))."""

MAX_TIME_POINTS = 2000
"""Time steps (evenly spaced over all sequences) whose state probabilities drive relabelling:
the KL and ECR costs are sums over time, 2000 terms pin them down
(docs/degeneracy.md#time-points-and-memory advises subsampling time for long series); occupancy
always uses every step."""
