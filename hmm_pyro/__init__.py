"""hmm_pyro: Bayesian hidden Markov models in Pyro.

Exact, batched, log-space forward-backward kernels; Pyro models with the hidden states
marginalised; categorical, Gaussian, Poisson, negative binomial, Student-t, gamma, von Mises and
full-covariance normal emissions, products of them, and any Pyro distribution as an emission
(``PyroEmission``); NUTS, SVI (also mini-batch, streamed from a store) and MAP returning ArviZ
data; degeneracy diagnostics and relabelling; prior comparison; sweeps on Dask.

The names below are imported on first use (PEP 562): ``import hmm_pyro`` loads none of torch,
Pyro, ArviZ, numba, Dask or matplotlib, so that the command line starts at once;
``from hmm_pyro import fit_nuts`` (or ``hmm_pyro.fit_nuts``) imports what it needs.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from hmm_pyro._version import __version__

if TYPE_CHECKING:
    from hmm_pyro import datasets, kernels, plots
    from hmm_pyro.compare import PriorComparison, compare_priors
    from hmm_pyro.covariate_model import CoefficientPrior, CovariateHMM
    from hmm_pyro.covariates import Covariates
    from hmm_pyro.data import Sequences
    from hmm_pyro.decode import decode_store
    from hmm_pyro.diagnostics import DegeneracyReport, Flag, Remedy, diagnose, relabel
    from hmm_pyro.emissions import (
        Categorical,
        CategoricalRegression,
        Emission,
        Gamma,
        Gaussian,
        GaussianRegression,
        MultivariateNormal,
        NegativeBinomial,
        NegativeBinomialRegression,
        Parameter,
        Poisson,
        PoissonRegression,
        Product,
        PyroEmission,
        StudentT,
        VonMises,
    )
    from hmm_pyro.fit import Fit, load
    from hmm_pyro.inference import fit_map, fit_nuts, fit_svi, fit_svi_stream
    from hmm_pyro.learning import fit_em, fit_supervised, fit_viterbi_training
    from hmm_pyro.model import HMM
    from hmm_pyro.multilevel import MultilevelHMM, SubjectPrior
    from hmm_pyro.priors import Prior
    from hmm_pyro.simulate import simulate, simulate_store
    from hmm_pyro.store import open_store, write_store
    from hmm_pyro.sweep import SweepResult, sweep

__all__ = [
    "HMM",
    "Categorical",
    "CategoricalRegression",
    "CoefficientPrior",
    "CovariateHMM",
    "Covariates",
    "DegeneracyReport",
    "Emission",
    "Fit",
    "Flag",
    "Gamma",
    "Gaussian",
    "GaussianRegression",
    "MultilevelHMM",
    "MultivariateNormal",
    "NegativeBinomial",
    "NegativeBinomialRegression",
    "Parameter",
    "Poisson",
    "PoissonRegression",
    "Prior",
    "PriorComparison",
    "Product",
    "PyroEmission",
    "Remedy",
    "Sequences",
    "StudentT",
    "SubjectPrior",
    "SweepResult",
    "VonMises",
    "__version__",
    "compare_priors",
    "datasets",
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

_SUBPACKAGES = ("datasets", "kernels", "plots")
"""Subpackages in ``__all__``: ``hmm_pyro.plots`` imports the subpackage on first use."""

_SOURCES = {
    "HMM": "hmm_pyro.model",
    "Categorical": "hmm_pyro.emissions",
    "CategoricalRegression": "hmm_pyro.emissions",
    "CoefficientPrior": "hmm_pyro.covariate_model",
    "CovariateHMM": "hmm_pyro.covariate_model",
    "MultilevelHMM": "hmm_pyro.multilevel",
    "SubjectPrior": "hmm_pyro.multilevel",
    "Covariates": "hmm_pyro.covariates",
    "DegeneracyReport": "hmm_pyro.diagnostics",
    "Emission": "hmm_pyro.emissions",
    "Fit": "hmm_pyro.fit",
    "Flag": "hmm_pyro.diagnostics",
    "Gamma": "hmm_pyro.emissions",
    "Gaussian": "hmm_pyro.emissions",
    "GaussianRegression": "hmm_pyro.emissions",
    "NegativeBinomial": "hmm_pyro.emissions",
    "NegativeBinomialRegression": "hmm_pyro.emissions",
    "Parameter": "hmm_pyro.emissions",
    "Product": "hmm_pyro.emissions",
    "PyroEmission": "hmm_pyro.emissions",
    "StudentT": "hmm_pyro.emissions",
    "MultivariateNormal": "hmm_pyro.emissions",
    "VonMises": "hmm_pyro.emissions",
    "Poisson": "hmm_pyro.emissions",
    "PoissonRegression": "hmm_pyro.emissions",
    "Prior": "hmm_pyro.priors",
    "PriorComparison": "hmm_pyro.compare",
    "Remedy": "hmm_pyro.diagnostics",
    "Sequences": "hmm_pyro.data",
    "SweepResult": "hmm_pyro.sweep",
    "compare_priors": "hmm_pyro.compare",
    "decode_store": "hmm_pyro.decode",
    "diagnose": "hmm_pyro.diagnostics",
    "fit_em": "hmm_pyro.learning",
    "fit_map": "hmm_pyro.inference",
    "fit_nuts": "hmm_pyro.inference",
    "fit_supervised": "hmm_pyro.learning",
    "fit_svi": "hmm_pyro.inference",
    "fit_svi_stream": "hmm_pyro.inference",
    "fit_viterbi_training": "hmm_pyro.learning",
    "load": "hmm_pyro.fit",
    "open_store": "hmm_pyro.store",
    "relabel": "hmm_pyro.diagnostics",
    "simulate": "hmm_pyro.simulate",
    "simulate_store": "hmm_pyro.simulate",
    "sweep": "hmm_pyro.sweep",
    "write_store": "hmm_pyro.store",
}
"""The module each exported name is imported from on first use (the same as the
``TYPE_CHECKING`` imports above, which are what type checkers read)."""


def __getattr__(name: str) -> Any:
    """Import an exported name (or subpackage) on first use and keep it."""
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_SOURCES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, with the exported ones not imported yet."""
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """``hmm_pyro`` itself: ``hmm_pyro.simulate`` and ``hmm_pyro.sweep`` stay the functions.

    Importing the submodule ``hmm_pyro.simulate`` (as the CLI and ``sweep`` do) makes Python
    bind the module to the package's attribute of that name; the function of that name, not
    the module, is what ``hmm_pyro.simulate`` was and stays.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _SOURCES:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
