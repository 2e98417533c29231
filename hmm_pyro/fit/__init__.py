"""The result of every runner: :class:`Fit` over ArviZ ``InferenceData``, and :func:`load`.

Layer rule: ``fit`` imports only the layers below it (``simulate``, ``store``, ``starts``,
``model``, ``emissions``, ``priors``, ``data``, ``kernels``) and the private utilities; never the
runners (``inference``, ``learning``) or ``diagnostics``. Use :func:`hmm_pyro.diagnose` and
:func:`hmm_pyro.relabel` on a fit.
"""

from hmm_pyro.fit._fit import Fit, load

__all__ = ["Fit", "load"]
