"""Label switching: read from the permutations a relabelling assigns to each draw.

Between chains: a chain's states matched to a reference chain's (Hungarian assignment on the
distances between chain-averaged emission laws) by a non-identity permutation, or chains whose
most common per-draw permutations differ (each chain sits in another of the ``K!`` symmetric
copies of a mode). Within a chain: more than
:data:`~hmm_pyro.diagnostics.thresholds.WITHIN_CHAIN_SWITCH_FRACTION` of its draws need another
permutation than its most common one. States of a collapsed group are not told apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmm_pyro.diagnostics.thresholds import WITHIN_CHAIN_SWITCH_FRACTION

__all__ = ["SwitchStatistics", "switch_statistics"]


@dataclass(frozen=True)
class SwitchStatistics:
    """Per-chain switching summary.

    Attributes
    ----------
    modal : numpy.ndarray
        ``(C, K)`` most common permutation of each chain.
    non_modal_fraction : numpy.ndarray
        ``(C,)`` fraction of a chain's draws with another permutation.
    changes : numpy.ndarray
        ``(C,)`` number of times the permutation changes between consecutive draws.
    modal_groups : tuple of tuple of int
        For each chain, the (group of the) new label of each old label under its modal
        permutation: equal entries mean the chains share a labelling.
    aligned : numpy.ndarray or None
        ``(C, K)`` permutations matching each chain to the reference chain.
    aligned_switch : tuple of int
        Chains whose alignment to the reference is not the identity (modulo collapsed groups).
    """

    modal: np.ndarray
    non_modal_fraction: np.ndarray
    changes: np.ndarray
    modal_groups: tuple[tuple[int, ...], ...]
    aligned: np.ndarray | None = None
    aligned_switch: tuple[int, ...] = ()

    @property
    def between_chains(self) -> bool:
        """The chains do not share one labelling."""
        return len(set(self.modal_groups)) > 1 or bool(self.aligned_switch)

    @property
    def switching_chains(self) -> tuple[int, ...]:
        """Chains that switch labels during the run."""
        return tuple(
            np.flatnonzero(self.non_modal_fraction > WITHIN_CHAIN_SWITCH_FRACTION).tolist()
        )

    @property
    def within_chain(self) -> bool:
        """Some chain switches labels during the run."""
        return bool(self.switching_chains)

    @property
    def switching(self) -> bool:
        """Label switching between or within chains."""
        return self.between_chains or self.within_chain


def switch_statistics(
    perms: np.ndarray,
    groups: list[tuple[int, ...]] | None = None,
    aligned: np.ndarray | None = None,
) -> SwitchStatistics:
    """Summarise per-draw relabelling permutations and chain-to-reference alignments.

    Parameters
    ----------
    perms : numpy.ndarray
        ``(chain, draw, K)`` permutations that bring each draw into a common labelling.
    groups : list of tuple of int, optional
        Groups of collapsed states; permutations inside a group are not switches.
    aligned : numpy.ndarray, optional
        ``(chain, K)`` alignment of each chain to a reference chain
        (:func:`hmm_pyro.labels.labelling.chain_alignment`).

    Returns
    -------
    SwitchStatistics
    """
    perms = np.asarray(perms)
    num_chains, _, num = perms.shape
    group_of = np.arange(num)
    for group in groups or []:
        group_of[list(group)] = min(group)
    # For each old label, the group of its new label: equal keys = same labelling.
    keys = group_of[np.argsort(perms, axis=-1)]
    modal = np.empty((num_chains, num), dtype=np.int64)
    modal_keys = []
    fractions = np.empty(num_chains)
    changes = np.empty(num_chains, dtype=np.int64)
    for chain in range(num_chains):
        unique, first, inverse, counts = np.unique(
            keys[chain], axis=0, return_index=True, return_inverse=True, return_counts=True
        )
        best = int(np.argmax(counts))
        modal_keys.append(tuple(unique[best].tolist()))
        modal[chain] = perms[chain, first[best]]
        fractions[chain] = 1.0 - counts[best] / keys.shape[1]
        changes[chain] = int(np.count_nonzero(np.diff(inverse.reshape(-1)) != 0))
    aligned_switch: tuple[int, ...] = ()
    if aligned is not None:
        aligned_keys = group_of[np.argsort(aligned, axis=-1)]
        moved = (aligned_keys != group_of).any(-1)
        aligned_switch = tuple(np.flatnonzero(moved).tolist())
    return SwitchStatistics(
        modal=modal,
        non_modal_fraction=fractions,
        changes=changes,
        modal_groups=tuple(modal_keys),
        aligned=aligned,
        aligned_switch=aligned_switch,
    )
