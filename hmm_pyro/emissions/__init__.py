"""Emission families: how each hidden state generates observations.

Each family owns every decision that depends on it (prior, statistics, M-step, starts,
distances, potential terms, ...) as methods of :class:`Emission`; the rest of the package asks
the family and never switches on it. Families given by a Pyro distribution derive those
answers through torch (:class:`~hmm_pyro.emissions.distribution.DistributionEmission`); a
user-defined one is a :class:`PyroEmission`. Families with one number per state and coordinate
share their description (:class:`~hmm_pyro.emissions.coordinatewise.Coordinatewise`); a
family's numba NUTS/MAP functions are in its module too, handed to the shared route
:func:`~hmm_pyro.kernels._numba.potentials.entry_potential` (docs/emissions.md#adding-a-family).

Layer rule: ``emissions`` imports ``priors``, ``data``, ``kernels`` and the private utilities;
``model`` and everything above import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hmm_pyro.emissions.base import Emission
from hmm_pyro.emissions.categorical import Categorical
from hmm_pyro.emissions.categorical_regression import CategoricalRegression
from hmm_pyro.emissions.distribution import DistributionEmission
from hmm_pyro.emissions.gamma import Gamma
from hmm_pyro.emissions.gaussian import Gaussian
from hmm_pyro.emissions.gaussian_regression import GaussianRegression
from hmm_pyro.emissions.mvnormal import MultivariateNormal
from hmm_pyro.emissions.negative_binomial import NegativeBinomial
from hmm_pyro.emissions.negative_binomial_regression import NegativeBinomialRegression
from hmm_pyro.emissions.poisson import Poisson
from hmm_pyro.emissions.poisson_regression import PoissonRegression
from hmm_pyro.emissions.product import Product
from hmm_pyro.emissions.pyro_emission import Parameter, PyroEmission, defined_family
from hmm_pyro.emissions.regression import Regression
from hmm_pyro.emissions.student_t import StudentT
from hmm_pyro.emissions.vonmises import VonMises

__all__ = [
    "FAMILIES",
    "REGRESSIONS",
    "Categorical",
    "CategoricalRegression",
    "DistributionEmission",
    "Emission",
    "Gamma",
    "Gaussian",
    "GaussianRegression",
    "MultivariateNormal",
    "NegativeBinomial",
    "NegativeBinomialRegression",
    "Parameter",
    "Poisson",
    "PoissonRegression",
    "Product",
    "PyroEmission",
    "Regression",
    "StudentT",
    "VonMises",
    "from_config",
    "user_defined_families",
]

FAMILIES: dict[str, type[Emission]] = {
    Categorical.family: Categorical,
    Gamma.family: Gamma,
    Gaussian.family: Gaussian,
    MultivariateNormal.family: MultivariateNormal,
    Poisson.family: Poisson,
    VonMises.family: VonMises,
    NegativeBinomial.family: NegativeBinomial,
    StudentT.family: StudentT,
    Product.family: Product,
}
"""The registry: family name -> class. A new family is one module plus one entry here."""

REGRESSIONS: dict[str, type[Emission]] = {
    CategoricalRegression.family: CategoricalRegression,
    GaussianRegression.family: GaussianRegression,
    NegativeBinomialRegression.family: NegativeBinomialRegression,
    PoissonRegression.family: PoissonRegression,
}
"""The emission regressions (:mod:`hmm_pyro.emissions.regression`): family name -> class.

Apart from :data:`FAMILIES` (the choices of the CLI's ``--emission``): a regression is built from
a plain family and covariate names (:meth:`Emission.with_covariates`, ``--emission-covariates``).
"""


def from_config(config: Mapping[str, Any]) -> Emission:
    """Rebuild an emission family from :meth:`Emission.to_config` output.

    Built-in families by :data:`FAMILIES`; user-defined ones (:class:`PyroEmission`) from their
    definition in this process, checked against the configuration.
    """
    options = dict(config)
    family = options.pop("family", None)
    if family in FAMILIES:
        return FAMILIES[family].from_config_options(options, from_config)
    if family in REGRESSIONS:
        return REGRESSIONS[family].from_config_options(options, from_config)
    user_defined = defined_family(family, options) if isinstance(family, str) else None
    if user_defined is None:
        raise ValueError(
            f"config: expected a family in {sorted(FAMILIES)} or a user-defined family of this "
            f"process, got {family!r} (define it with PyroEmission({family!r}, ...) before "
            "loading; worker processes do not run your script: fit such a family with "
            "parallel=False)"
        )
    return user_defined


def user_defined_families(config: Any) -> list[str]:
    """Names of the user-defined families in a configuration (nested ones included).

    Such families exist only in the process that defined them: worker processes, which do not
    run the caller's script, cannot rebuild them.
    """
    if isinstance(config, Mapping):
        family = config.get("family")
        found = [family] if isinstance(family, str) and family not in FAMILIES else []
        return found + [name for value in config.values() for name in user_defined_families(value)]
    if isinstance(config, (list, tuple)):
        return [name for value in config for name in user_defined_families(value)]
    return []
