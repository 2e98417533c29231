"""Compare prior settings on the same model and data: predictive fit, degeneracy, sensitivity.

:func:`compare_priors` fits one HMM under several priors and tabulates, per setting:

* the expected log predictive density (ELPD) with its standard error: PSIS-LOO over whole
  sequences when there are enough sequences and posterior draws, otherwise K-fold
  cross-validation with refits (whole sequences per fold, or, with fewer sequences than folds
  such as one long sequence, contiguous time blocks held out as missing observations);
* the flags of :func:`hmm_pyro.diagnose` (``deep=False``: the table compares the settings
  itself, so no refits with fewer states) and the effective number of states;
* the smallest pairwise squared Hellinger distance between the states' emission laws;
* power-scaling sensitivity (``arviz.psens``) of the emission parameters to the *emission*
  prior and to the likelihood, with priorsense's reading of the two;
* posterior summaries of the emission parameters (relabelled, states in a canonical order).

Settings run in parallel worker processes, each with its chains run one after the other.

Modules: :mod:`~hmm_pyro.compare.run` (:func:`compare_priors`: checks, tasks, the table),
:mod:`~hmm_pyro.diagnostics.folds` (PSIS-LOO or K-fold: folds, pointwise ELPD units),
:mod:`~hmm_pyro.compare.worker` (the fit and measurements of one task, run in a worker
process) and :mod:`~hmm_pyro.compare.result` (:class:`PriorComparison`: text, JSON, files).
The plots of a comparison are in :mod:`hmm_pyro.plots.compare`.

Layer rule: ``compare`` imports ``runners`` and the layers below it (``diagnostics``,
``inference``, ``learning``, ``fit``, ``starts``, ``model``, ``priors``, ``data``, ...) and the
private utilities; never ``sweep`` (its sibling), ``plots``, the CLI or matplotlib.
"""

from hmm_pyro.compare.result import PriorComparison
from hmm_pyro.compare.run import COMPARE_METHODS, compare_priors
from hmm_pyro.compare.worker import PSENS_THRESHOLD
from hmm_pyro.diagnostics.folds import ELPD_METHODS, MIN_LOO_SEQUENCES

__all__ = [
    "COMPARE_METHODS",
    "ELPD_METHODS",
    "MIN_LOO_SEQUENCES",
    "PSENS_THRESHOLD",
    "PriorComparison",
    "compare_priors",
]
