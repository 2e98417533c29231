"""Classical (point-estimate) learning: Baum-Welch EM, Viterbi training, supervised counting.

All three maximise the model's log posterior ``log p(y | theta) + log p(theta)`` (or its hard-EM
version) with the prior densities of :meth:`hmm_pyro.HMM.log_prior`, and return a
:class:`hmm_pyro.Fit` holding the point estimate, so that decoding, diagnostics and plots work
on them as on NUTS and SVI fits.

Layer rule: ``learning`` imports ``fit`` and the layers below it (``simulate``, ``store``,
``starts``, ``model``, ``emissions``, ``priors``, ``data``, ``kernels``) and the private utilities;
the runners in ``inference``, ``diagnostics`` and everything above import it, never the reverse.
"""

from hmm_pyro.learning.em import fit_em
from hmm_pyro.learning.em_steps import em_start, initial_params, run_em
from hmm_pyro.learning.monitor import ConvergenceMonitor
from hmm_pyro.learning.subjects import fit_subjects_separately
from hmm_pyro.learning.supervised import fit_supervised
from hmm_pyro.learning.viterbi_training import fit_viterbi_training, run_viterbi_training

__all__ = [
    "ConvergenceMonitor",
    "em_start",
    "fit_em",
    "fit_subjects_separately",
    "fit_supervised",
    "fit_viterbi_training",
    "initial_params",
    "run_em",
    "run_viterbi_training",
]
