"""The result of every runner: :class:`Fit` over ArviZ ``InferenceData``, and :func:`load`.

Layer rule: ``fit`` imports only the layers below it (``simulate``, ``store``, ``starts``,
``model``, ``emissions``, ``priors``, ``data``, ``kernels``) and the private utilities; never the
runners (``inference``, ``learning``), ``labels`` or ``diagnostics``. Use
:func:`hmm_pyro.diagnose` and :func:`hmm_pyro.relabel` on a fit; whether the draws share one
labelling is read from the ``labels`` attribute that relabelling writes (:attr:`Fit.labelling`).
:func:`fit_statistics` gives the log likelihood, log prior, free parameters, AIC and BIC;
:meth:`Fit.transition_matrix` and :meth:`Fit.stationary` summarise the transitions (at
covariate values, for a :class:`~hmm_pyro.CovariateHMM`).
"""

from hmm_pyro.fit._fit import (
    ALIGNED,
    LABELS_ATTR,
    ONE_MODE,
    RAW,
    Fit,
    MixedLabelsWarning,
    load,
)
from hmm_pyro.fit.statistics import FitStatistics, fit_statistics
from hmm_pyro.fit.transitions import ProbabilitySummary

__all__ = [
    "ALIGNED",
    "LABELS_ATTR",
    "ONE_MODE",
    "RAW",
    "Fit",
    "FitStatistics",
    "MixedLabelsWarning",
    "ProbabilitySummary",
    "fit_statistics",
    "load",
]
