"""Subject-level checks of a multilevel fit: collapse and labels of each subject's states.

The group-level parameters (``pi``, ``A``, the emission's) go through every check of
:func:`~hmm_pyro.diagnose` as those of a plain HMM, and the relabelling permutes the
subject-level ones with them (their state axes are named). Two things can go wrong only at the
subject level, when the emission parameters vary between subjects:

- **subject collapse**: two states of one subject have (nearly) the same emission law (the
  smallest pairwise squared Hellinger distance of that subject's emission laws below
  :data:`~hmm_pyro.diagnostics.thresholds.COLLAPSE_DISTANCE` with posterior probability above
  :data:`~hmm_pyro.diagnostics.thresholds.COLLAPSE_PROBABILITY`);
- **subject labels**: a subject's state ``k`` is closer to another group-level state than to
  group state ``k`` (the permutation matching the subject's emission laws to the group's at the
  least total squared Hellinger distance is not the identity) in more than
  :data:`SUBJECT_MISMATCH_FRACTION` of the draws: the random effects are large enough to swap
  what the labels mean in that subject, and pooled per-state summaries mix states.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from hmm_pyro.diagnostics.collapse import min_pairwise
from hmm_pyro.diagnostics.flags import Flag, Remedy
from hmm_pyro.diagnostics.thresholds import COLLAPSE_DISTANCE, COLLAPSE_PROBABILITY
from hmm_pyro.labels.draws import Arrays, to_torch
from hmm_pyro.multilevel import MultilevelHMM

__all__ = [
    "SUBJECT_MISMATCH_FRACTION",
    "SubjectStatistics",
    "subject_flags",
    "subject_statistics",
]

SUBJECT_MISMATCH_FRACTION = 0.1
"""Largest fraction of draws in which a subject's states may match the group's in another order
before the subject's labels are flagged (as a chain's within-chain switching fraction)."""
_MAX_PERMUTATION_STATES = 7
"""Up to 7 states every permutation is scored (5040); beyond, the greedy matching is used."""


@dataclass(frozen=True)
class SubjectStatistics:
    """Subject-level measurements on relabelled draws.

    Attributes
    ----------
    subjects : tuple of str
        Subject names.
    p_collapsed : numpy.ndarray
        ``(S,)`` posterior probability that two of the subject's states are within the
        collapse distance of each other.
    p_mismatch : numpy.ndarray
        ``(S,)`` fraction of draws in which the subject's states match the group's in another
        order than the labels say.
    distance : float
        The collapse threshold (squared Hellinger).
    """

    subjects: tuple[str, ...]
    p_collapsed: np.ndarray
    p_mismatch: np.ndarray
    distance: float

    @property
    def collapsed(self) -> tuple[str, ...]:
        """Subjects with collapsed states."""
        return tuple(s for s, p in zip(self.subjects, self.p_collapsed, strict=True) if p > 0.5)

    @property
    def mismatched(self) -> tuple[str, ...]:
        """Subjects whose states match the group's in another order too often."""
        return tuple(
            s
            for s, p in zip(self.subjects, self.p_mismatch, strict=True)
            if p > SUBJECT_MISMATCH_FRACTION
        )

    def to_dict(self) -> dict[str, object]:
        """Measurements by subject, for the report."""
        return {
            "p_collapsed": dict(zip(self.subjects, self.p_collapsed.tolist(), strict=True)),
            "p_label_mismatch": dict(zip(self.subjects, self.p_mismatch.tolist(), strict=True)),
            "collapse_distance": self.distance,
        }


def _best_is_identity(cost: np.ndarray) -> np.ndarray:
    """Whether the identity is a least-cost assignment of each ``(..., K, K)`` cost matrix."""
    num = cost.shape[-1]
    rows = np.arange(num)
    identity = cost[..., rows, rows].sum(-1)
    if num <= _MAX_PERMUTATION_STATES:
        best = np.full(identity.shape, np.inf)
        for perm in itertools.permutations(range(num)):
            best = np.minimum(best, cost[..., rows, list(perm)].sum(-1))
    else:  # greedy: each subject state to its nearest group state
        best = cost.min(-1).sum(-1)
    return identity <= best + 1e-12


def subject_statistics(
    hmm: MultilevelHMM, draws: Arrays, distance: float = COLLAPSE_DISTANCE
) -> SubjectStatistics | None:
    """Subject-level collapse and label agreement; ``None`` without emission random effects.

    Parameters
    ----------
    hmm : MultilevelHMM
        The model.
    draws : dict of numpy.ndarray
        Relabelled posterior draws ``(chain, draw, ...)``.
    distance : float
        Squared Hellinger collapse threshold.

    Returns
    -------
    SubjectStatistics or None
    """
    emitted = [name for name in hmm.random_effects if name in hmm.emission.param_names]
    if not emitted or hmm.num_states < 2:
        return None
    params = to_torch(hmm, draws)
    subject = hmm.subject_emission_params(params)  # (C, D, S, K, ...)
    shapes = hmm.emission.param_shapes(hmm.num_states)
    num = hmm.num_states
    within = hmm.emission.hellinger(subject).numpy()  # (C, D, S, K, K)
    collapsed = (min_pairwise(within) < distance).reshape(-1, hmm.num_subjects).mean(0)
    joined = {}
    for name in hmm.emission.param_names:
        value = subject[name]
        state_axis = value.dim() - len(shapes[name])
        group = params[name].unsqueeze(state_axis - 1).expand_as(value)
        joined[name] = torch.cat([value, group], dim=state_axis)
    cross = hmm.emission.hellinger(joined).numpy()[..., :num, num:]  # subject k vs group j
    mismatch = (~_best_is_identity(cross)).reshape(-1, hmm.num_subjects).mean(0)
    return SubjectStatistics(
        subjects=hmm.subject_names,
        p_collapsed=collapsed,
        p_mismatch=mismatch,
        distance=distance,
    )


def _names(subjects: tuple[str, ...]) -> str:
    shown = ", ".join(subjects[:6])
    return shown + (f" and {len(subjects) - 6} more" if len(subjects) > 6 else "")


def subject_flags(statistics: SubjectStatistics) -> list[Flag]:
    """Warnings for subjects with collapsed states and subjects whose labels do not match."""
    flags = []
    measured = statistics.to_dict()
    if statistics.collapsed:
        flags.append(
            Flag(
                kind="subject_collapse",
                severity="warning",
                summary=(
                    f"Subjects {_names(statistics.collapsed)}: two of their states have "
                    f"indistinguishable emission laws (P(closest pair squared Hellinger < "
                    f"{statistics.distance}) > {COLLAPSE_PROBABILITY})."
                ),
                measured={"p_collapsed": measured["p_collapsed"]},
                threshold={"distance": statistics.distance, "probability": COLLAPSE_PROBABILITY},
                cause=(
                    "these subjects' random effects pull two states' emission laws together: "
                    "the subject visits fewer distinct regimes than the group, or its data do "
                    "not separate them; its per-state estimates lean on the group level"
                ),
                remedies=(Remedy.MORE_DATA, Remedy.OTHER_PRIOR),
                cause_kind="data",
            )
        )
    if statistics.mismatched:
        flags.append(
            Flag(
                kind="subject_label_mismatch",
                severity="warning",
                summary=(
                    f"Subjects {_names(statistics.mismatched)}: their states match the group's "
                    f"states in another order in more than {SUBJECT_MISMATCH_FRACTION:.0%} of "
                    "the draws; a state label does not mean the same regime in every subject."
                ),
                measured={"p_label_mismatch": measured["p_label_mismatch"]},
                threshold={"fraction": SUBJECT_MISMATCH_FRACTION},
                cause=(
                    "the between-subject scales of the emission parameters are as large as the "
                    "differences between states, so the random effects can swap states within "
                    "a subject; per-state group summaries then mix regimes"
                ),
                remedies=(Remedy.OTHER_PRIOR, Remedy.MORE_DATA),
                cause_kind="weak identifiability",
            )
        )
    return flags
