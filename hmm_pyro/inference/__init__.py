"""Posterior inference runners and their results."""

from hmm_pyro.inference.fit import Fit, load
from hmm_pyro.inference.nuts import fit_nuts
from hmm_pyro.inference.svi import fit_svi

__all__ = ["Fit", "fit_nuts", "fit_svi", "load"]
