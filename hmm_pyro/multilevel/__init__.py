"""Multilevel (hierarchical) HMMs: per-subject parameters drawn around group-level ones.

:class:`MultilevelHMM` (a :class:`~hmm_pyro.HMM` whose subjects have their own transition
matrices and, for families that allow it, their own emission parameters, non-centred around
the group level) and :class:`SubjectPrior` (half-normal priors of the between-subject scales).
See ``docs/multilevel.md``.

Layer rule: ``multilevel`` imports ``model`` and the layers below it; ``store``, ``starts``
and everything above may import it, and reach it through the ``HMM`` interface
(``HMM.from_config`` rebuilds it from its ``kind``).
"""

from hmm_pyro.multilevel.model import RANDOM_EFFECT_KINDS, MultilevelHMM, SubjectPrior

__all__ = ["RANDOM_EFFECT_KINDS", "MultilevelHMM", "SubjectPrior"]
