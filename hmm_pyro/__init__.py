"""hmm_pyro: Bayesian hidden Markov models in Pyro.

Exact, batched, log-space forward-backward kernels; Pyro models with the hidden states
marginalised; categorical, Gaussian and Poisson emissions with Dirichlet and conjugate-style
priors.
"""

from hmm_pyro import kernels
from hmm_pyro.data import Sequences
from hmm_pyro.emissions import Categorical, Emission, Gaussian, Poisson
from hmm_pyro.model import HMM
from hmm_pyro.priors import Prior
from hmm_pyro.simulate import simulate

__version__ = "0.1.0"

__all__ = [
    "HMM",
    "Categorical",
    "Emission",
    "Gaussian",
    "Poisson",
    "Prior",
    "Sequences",
    "__version__",
    "kernels",
    "simulate",
]
