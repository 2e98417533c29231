"""Pure tensor HMM algorithms in log space.

Every function takes only ``log_pi (..., K)``, ``log_A (..., K, K)``, ``log_lik (..., T, K)``
and optional ``lengths (...)``: it never sees an emission distribution. Leading dimensions
broadcast (sequences, posterior draws). Two exceptions: :func:`categorical_log_likelihood`
takes ``log B`` and the symbols and looks the emission rows up itself (no table), and
:func:`regression_log_likelihood` takes covariates and multinomial-logit coefficients in place
of ``log_A`` (transition rows as regressions). ``log_pi`` is the distribution of the state that
emits the *first* observation (Rabiner, Stan, hmmlearn), not the state one step before it
(Pyro's ``DiscreteHMM``).

Layer rule: ``kernels`` is the lowest layer; it imports only the private utilities
(``hmm_pyro._validation``). All numba code lives in the private package
:mod:`hmm_pyro.kernels._numba`.
"""

from hmm_pyro.kernels.categorical import (
    MISSING_SYMBOL,
    SymbolLanes,
    categorical_log_likelihood,
    symbol_table,
)
from hmm_pyro.kernels.forward_backward import (
    BACKENDS,
    ForwardBackward,
    backward,
    expected_transitions,
    forward,
    forward_backward,
    log_likelihood,
    posterior_marginals,
)
from hmm_pyro.kernels.regression import regression_log_likelihood, regression_log_transitions
from hmm_pyro.kernels.sampling import sample_paths
from hmm_pyro.kernels.viterbi import PAD_STATE, viterbi

__all__ = [
    "BACKENDS",
    "MISSING_SYMBOL",
    "PAD_STATE",
    "ForwardBackward",
    "SymbolLanes",
    "backward",
    "categorical_log_likelihood",
    "expected_transitions",
    "forward",
    "forward_backward",
    "log_likelihood",
    "posterior_marginals",
    "regression_log_likelihood",
    "regression_log_transitions",
    "sample_paths",
    "symbol_table",
    "viterbi",
]
