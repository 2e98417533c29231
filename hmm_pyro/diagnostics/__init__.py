"""Degeneracy diagnostics, relabelling and plots.

Checks: emission collapse, empty states, prior domination, symmetric starts, label switching
and convergence.

>>> report = hmm_pyro.diagnose(fit)  # doctest: +SKIP
>>> relabelled = hmm_pyro.relabel(fit)  # doctest: +SKIP
"""

from hmm_pyro.diagnostics import thresholds
from hmm_pyro.diagnostics.diagnose import diagnose
from hmm_pyro.diagnostics.flags import Flag, Remedy
from hmm_pyro.diagnostics.relabel import (
    RELABEL_METHODS,
    Labelling,
    RelabelWarning,
    find_permutations,
    relabel,
)
from hmm_pyro.diagnostics.report import DegeneracyReport

__all__ = [
    "RELABEL_METHODS",
    "DegeneracyReport",
    "Flag",
    "Labelling",
    "RelabelWarning",
    "Remedy",
    "diagnose",
    "find_permutations",
    "relabel",
    "thresholds",
]
