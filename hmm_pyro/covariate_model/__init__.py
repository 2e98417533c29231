"""Non-homogeneous HMMs: transitions and the initial distribution as regressions on covariates.

:class:`CovariateHMM` (a :class:`~hmm_pyro.HMM` whose transition rows are multinomial-logit
regressions on the covariates of each step), :class:`CoefficientPrior` (Normal priors of the
coefficients) and the distributions of those coefficients
(:mod:`hmm_pyro.covariate_model.distributions`). The data carry the covariates
(:class:`~hmm_pyro.Covariates` on :class:`~hmm_pyro.Sequences`).

Layer rule: ``covariate_model`` imports ``model`` and the layers below it; ``store``, ``starts``
and everything above may import it. Everything above reaches it through the ``HMM`` interface
(``HMM.from_config`` rebuilds it from its ``kind``).
"""

from hmm_pyro.covariate_model.model import CoefficientPrior, CovariateHMM, stationary_distribution

__all__ = ["CoefficientPrior", "CovariateHMM", "stationary_distribution"]
