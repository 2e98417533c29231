"""hmm_pyro: Bayesian hidden Markov models in Pyro.

Exact, batched, log-space forward-backward kernels; Pyro models with the hidden states
marginalised; categorical, Gaussian, Poisson, gamma, von Mises and full-covariance normal
emissions; NUTS, SVI (also mini-batch, streamed from a store) and MAP returning ArviZ data;
degeneracy diagnostics and relabelling; prior comparison; sweeps on Dask.
"""

from hmm_pyro import kernels, plots
from hmm_pyro._version import __version__
from hmm_pyro.compare import PriorComparison, compare_priors
from hmm_pyro.data import Sequences
from hmm_pyro.decode import decode_store
from hmm_pyro.diagnostics import DegeneracyReport, Flag, Remedy, diagnose, relabel
from hmm_pyro.emissions import (
    Categorical,
    Emission,
    Gamma,
    Gaussian,
    MultivariateNormal,
    Poisson,
    VonMises,
)
from hmm_pyro.fit import Fit, load
from hmm_pyro.inference import fit_map, fit_nuts, fit_svi, fit_svi_stream
from hmm_pyro.learning import fit_em, fit_supervised, fit_viterbi_training
from hmm_pyro.model import HMM
from hmm_pyro.priors import Prior
from hmm_pyro.simulate import simulate, simulate_store
from hmm_pyro.store import open_store, write_store
from hmm_pyro.sweep import SweepResult, sweep

__all__ = [
    "HMM",
    "Categorical",
    "DegeneracyReport",
    "Emission",
    "Fit",
    "Flag",
    "Gamma",
    "Gaussian",
    "MultivariateNormal",
    "Poisson",
    "Prior",
    "PriorComparison",
    "Remedy",
    "Sequences",
    "SweepResult",
    "VonMises",
    "__version__",
    "compare_priors",
    "decode_store",
    "diagnose",
    "fit_em",
    "fit_map",
    "fit_nuts",
    "fit_supervised",
    "fit_svi",
    "fit_svi_stream",
    "fit_viterbi_training",
    "kernels",
    "load",
    "open_store",
    "plots",
    "relabel",
    "simulate",
    "simulate_store",
    "sweep",
    "write_store",
]
