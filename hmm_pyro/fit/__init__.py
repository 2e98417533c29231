"""The result of every runner: :class:`Fit` over ArviZ ``InferenceData``, and :func:`load`.

Layer rule: ``fit`` imports only the layers below it (``simulate``, ``store``, ``starts``,
``model``, ``emissions``, ``priors``, ``data``, ``kernels``) and the private utilities; never the
runners (``inference``, ``learning``), ``labels`` or ``diagnostics``. Use
:func:`hmm_pyro.diagnose` and :func:`hmm_pyro.relabel` on a fit; whether the draws share one
labelling is read from the ``labels`` attribute that relabelling writes (:attr:`Fit.labelling`).
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

__all__ = ["ALIGNED", "LABELS_ATTR", "ONE_MODE", "RAW", "Fit", "MixedLabelsWarning", "load"]
