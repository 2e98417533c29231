"""The numba machinery of the package: forward-backward sweeps, their torch bridge, potentials.

Modules: :mod:`~hmm_pyro.kernels._numba.lanes` (the general sweeps, sequences as vector
lanes), :mod:`~hmm_pyro.kernels._numba.varying` (the same with one transition matrix per step),
:mod:`~hmm_pyro.kernels._numba.regression` (matrices computed inside the sweeps from covariates
and multinomial-logit coefficients, gradient with respect to the coefficients; the matrices
themselves in :mod:`~hmm_pyro.kernels._numba.regression_build`),
:mod:`~hmm_pyro.kernels._numba.symbols` (sweeps over symbol sequences, rows looked up
per symbol), :mod:`~hmm_pyro.kernels._numba.split` (one long sequence: forward and backward
recursions on two threads at once), :mod:`~hmm_pyro.kernels._numba.batch` (large batches in
threads),
:mod:`~hmm_pyro.kernels._numba.bridge` (autograd functions over torch tensors),
:mod:`~hmm_pyro.kernels._numba.viterbi` (max-product decoding),
:mod:`~hmm_pyro.kernels._numba.checks` (value checks of parameters on every call) and
:mod:`~hmm_pyro.kernels._numba.potentials` (log joint and gradient for NUTS and MAP: the
transition part, the categorical potential and the one route of every other numba family) and
:mod:`~hmm_pyro.kernels._numba.regression_potential` (the same with transition rows as
regressions, for a covariate HMM).
A family's own numba functions (its prior, per-entry density and statistics) live in its
module of :mod:`hmm_pyro.emissions`, which hands them to
:func:`~hmm_pyro.kernels._numba.potentials.entry_potential`.

Private to the package: the names below are what the kernels and the emission families (for
the NUTS/MAP potential) use. Layer rule: the bottom of ``kernels``; it imports nothing from
``hmm_pyro`` outside this package, and its modules import only one another.

Importing it chooses numba's threading layer, before anything can start a numba thread pool.
"""

import os

import numba

if "NUMBA_THREADING_LAYER" not in os.environ:
    # numba's default OpenMP pool, once started, made every later small torch operation in the
    # process ~4000x slower (3 us -> 12 ms for a 3x4 logsigmoid, measured): two OpenMP thread
    # pools compete. numba's own "workqueue" pool does not (3.5 us after a parallel call).
    numba.config.THREADING_LAYER = "workqueue"

# The modules come after the choice: a numba thread pool, once started, keeps its layer.
from hmm_pyro.kernels._numba.bridge import (
    CategoricalLogLikelihood,
    CategoricalProbabilityLikelihood,
    FusedLogLikelihood,
    RegressionLogLikelihood,
    VaryingLogLikelihood,
    categorical_expected_counts,
    fused_forward_backward,
    supports,
    varying_forward_backward,
)
from hmm_pyro.kernels._numba.checks import all_finite, all_greater, probability_rows
from hmm_pyro.kernels._numba.potentials import (
    EntryKernels,
    categorical_potential,
    entry_potential,
    fill_table,
    weighted_sums,
)
from hmm_pyro.kernels._numba.regression_potential import (
    regression_categorical_potential,
    regression_entry_potential,
)
from hmm_pyro.kernels._numba.symbols import time_major_symbols
from hmm_pyro.kernels._numba.viterbi import viterbi_batch

__all__ = [
    "CategoricalLogLikelihood",
    "CategoricalProbabilityLikelihood",
    "EntryKernels",
    "FusedLogLikelihood",
    "RegressionLogLikelihood",
    "VaryingLogLikelihood",
    "all_finite",
    "all_greater",
    "categorical_expected_counts",
    "categorical_potential",
    "entry_potential",
    "fill_table",
    "fused_forward_backward",
    "probability_rows",
    "regression_categorical_potential",
    "regression_entry_potential",
    "supports",
    "time_major_symbols",
    "varying_forward_backward",
    "viterbi_batch",
    "weighted_sums",
]
