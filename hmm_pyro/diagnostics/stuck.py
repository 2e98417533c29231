"""Stuck chains: sampled chains whose draws do not move.

A chain that stays where it started (a step size adapted to nearly zero, a start where the
density is not finite, every proposal rejected) yields constant draws. R-hat and ESS are
undefined for constant draws (and ``diagnose`` computes none for one chain), so without this
check such a fit would look clean. A transition moved when any parameter entry of the draw
differs from the draw before it (a rejected NUTS transition repeats the draw exactly).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hmm_pyro.diagnostics.flags import Flag, Remedy
from hmm_pyro.diagnostics.thresholds import MIN_MOVE_FRACTION

__all__ = ["move_fractions", "stuck_chains_flag"]


def move_fractions(draws: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per chain, the fraction of transitions that moved: ``(chain,)``.

    Parameters
    ----------
    draws : dict of numpy.ndarray
        ``(chain, draw, ...)`` posterior draws of every parameter (at least 2 draws).
    """
    moved = None
    for value in draws.values():
        value = np.asarray(value, dtype=float)
        flat = value.reshape(*value.shape[:2], -1)
        changed = ~np.all(
            (flat[:, 1:] == flat[:, :-1]) | (np.isnan(flat[:, 1:]) & np.isnan(flat[:, :-1])), -1
        )
        moved = changed if moved is None else moved | changed
    return moved.mean(axis=1)


def stuck_chains_flag(draws: Mapping[str, np.ndarray]) -> Flag | None:
    """The ``stuck_chains`` flag (error), or ``None``.

    Raised when a chain moved in fewer than :data:`MIN_MOVE_FRACTION` of its transitions;
    ``None`` also with fewer than 2 draws per chain.
    """
    num_draws = next(iter(draws.values())).shape[1]
    if num_draws < 2:
        return None
    moved = move_fractions(draws)
    stuck = [int(c) for c in np.flatnonzero(moved < MIN_MOVE_FRACTION)]
    if not stuck:
        return None
    listed = ", ".join(f"chain {c} moved in {moved[c]:.0%}" for c in stuck)
    transitions = num_draws - 1
    return Flag(
        kind="stuck_chains",
        severity="error",
        summary=(
            f"Stuck chain(s): {listed} of its {transitions} transitions; their draws are not a "
            "sample of the posterior."
        ),
        measured={
            "stuck_chains": stuck,
            "move_fraction": [float(m) for m in moved],
        },
        threshold={"min_move_fraction": MIN_MOVE_FRACTION},
        cause=(
            "the sampler stopped moving: a step size adapted to almost nothing (too short a "
            "warm-up, or a start in a region it could not leave), or every proposal rejected; "
            "R-hat and ESS cannot show it, as they are undefined for constant draws."
        ),
        remedies=(Remedy.LONGER_RUN,),
    )
