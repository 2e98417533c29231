"""One labelling of the states for every draw: permutations, relabelling algorithms, ``relabel``.

The posterior of an HMM with an exchangeable prior is invariant under permuting the states, so
chains (and draws of one chain) can use different labellings. This layer finds the per-draw
permutations (Stephens' KL algorithm, ECR as a cross-check, chain alignment) and applies them
to a ``Fit``; ``fit_nuts`` uses it to return aligned draws, ``diagnose`` to measure label
switching. Methods and thresholds: ``docs/degeneracy.md#relabelling``.

Layer rule: ``labels`` imports ``learning``, ``fit`` and the layers below them, and the private
utilities; never ``diagnostics``, ``inference`` or ``decode`` (which import it), nor
``runners``, ``compare``, ``sweep``, ``plots`` or the CLI.

>>> relabelled = hmm_pyro.relabel(fit)  # doctest: +SKIP
"""

from hmm_pyro.labels.labelling import RELABEL_METHODS, Labelling
from hmm_pyro.labels.relabel import RelabelWarning, align_labels, find_permutations, relabel

__all__ = [
    "RELABEL_METHODS",
    "Labelling",
    "RelabelWarning",
    "align_labels",
    "find_permutations",
    "relabel",
]
