"""hmm_pyro: Bayesian hidden Markov models in Pyro.

Exact, batched, log-space forward-backward kernels; Pyro models with the hidden states
marginalised; categorical, Gaussian, Poisson, negative binomial and Student-t emissions,
products of them, and any Pyro distribution as an emission (``PyroEmission``); NUTS, SVI
(also mini-batch, streamed from a store) and MAP returning ArviZ data; degeneracy diagnostics
and relabelling; prior comparison; sweeps on Dask.
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
    Gaussian,
    NegativeBinomial,
    Parameter,
    Poisson,
    Product,
    PyroEmission,
    StudentT,
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
    "Gaussian",
    "NegativeBinomial",
    "Parameter",
    "Poisson",
    "Prior",
    "PriorComparison",
    "Product",
    "PyroEmission",
    "Remedy",
    "Sequences",
    "StudentT",
    "SweepResult",
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
