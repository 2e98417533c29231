"""Degeneracy diagnostics and relabelling (their plots are in :mod:`hmm_pyro.plots`).

Checks: emission collapse, empty states, prior domination, symmetric starts, label switching,
convergence, restarts at other solutions, chains in different modes and predictive checks
(misspecification), and (``diagnose(deep=True)``, the default) refits with fewer states, without
the emission prior and as an i.i.d. mixture, which name the causes; stacking of non-mixing chains
(:func:`stack_chains`). Methods, thresholds and their sources: ``docs/degeneracy.md``. Relabelling
itself lives one layer down, in :mod:`hmm_pyro.labels` (so that the runners can use it too);
``relabel`` and ``find_permutations`` are exported here as well.

Layer rule: ``diagnostics`` imports ``inference`` (its refits of NUTS and SVI fits run the same
runner), ``labels``, ``learning``, ``fit`` and the layers below them, and the private
utilities; never ``decode``, ``runners``, ``compare``, ``sweep``, ``plots`` or the CLI (which
import it). Passing refit functions in instead would have needed the runner registry, which
sits above it in ``runners``.

>>> report = hmm_pyro.diagnose(fit)  # doctest: +SKIP
>>> relabelled = hmm_pyro.relabel(fit)  # doctest: +SKIP
"""

from hmm_pyro.diagnostics import thresholds
from hmm_pyro.diagnostics.diagnose import diagnose
from hmm_pyro.diagnostics.flags import Flag, Remedy
from hmm_pyro.diagnostics.predictive import PredictiveChecks, predictive_checks
from hmm_pyro.diagnostics.report import DegeneracyReport
from hmm_pyro.diagnostics.stacking import ChainStacking, stack_chains, stacked_fit
from hmm_pyro.labels import (
    RELABEL_METHODS,
    Labelling,
    RelabelWarning,
    find_permutations,
    relabel,
)

__all__ = [
    "RELABEL_METHODS",
    "ChainStacking",
    "DegeneracyReport",
    "Flag",
    "Labelling",
    "PredictiveChecks",
    "RelabelWarning",
    "Remedy",
    "diagnose",
    "find_permutations",
    "predictive_checks",
    "relabel",
    "stack_chains",
    "stacked_fit",
    "thresholds",
]
