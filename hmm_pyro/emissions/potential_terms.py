"""An emission family's part of the NUTS/MAP potential, and the helpers of building it.

:class:`PotentialTerms` is what :meth:`~hmm_pyro.emissions.Emission.potential_terms` returns;
:func:`potential_data` lays the observations out as the numba potentials take them,
:func:`dirichlet_log_normalizer` is the constant of the simplex parameters' priors and
:func:`coordinate_shape` the shape of a parameter's unconstrained coordinates.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.distributions.transforms import Transform

from hmm_pyro.data import Sequences
from hmm_pyro.priors import Prior

__all__ = [
    "EmissionPotential",
    "PotentialTerms",
    "coordinate_shape",
    "dirichlet_log_normalizer",
    "potential_data",
]


class PotentialTerms(NamedTuple):
    """An emission family's part of the NUTS/MAP potential (:meth:`Emission.potential_terms`).

    Attributes
    ----------
    function : callable
        ``function(z, alpha_pi, alpha_A, *arguments, jac) -> (value, gradient)``: the log joint
        of flat coordinates ``z`` (float64, ``pi``, ``A``, then this family's parameters as
        :meth:`Emission.potential_coordinates` lays them out) without the prior's normalising
        constants, plus ``jac`` times the log-Jacobian, and its gradient; ``alpha_pi (1, K)``
        and ``alpha_A (K, K)`` are the Dirichlet concentrations of ``pi`` and ``A``.
    arguments : tuple
        The family's hyperparameter and data arrays.
    constant : float
        Log normalising constant of the emission prior.
    """

    function: Callable[..., tuple[float, np.ndarray]]
    arguments: tuple[Any, ...]
    constant: float


def potential_data(data: Sequences) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The data as the numba potentials take them.

    Parameters
    ----------
    data : Sequences
        The observations.

    Returns
    -------
    values : numpy.ndarray
        ``(N, T, D)`` float64, zero where not observed.
    observed : numpy.ndarray
        ``(N, T, D)`` bool, false at padded steps.
    lengths : numpy.ndarray
        ``(N,)`` int64.
    """
    observed = data.observed.numpy() & data.mask.numpy()[..., None]
    values = np.ascontiguousarray(np.where(observed, np.nan_to_num(data.values.numpy()), 0.0))
    return values, observed, data.lengths.numpy().astype(np.int64)


def dirichlet_log_normalizer(concentration: torch.Tensor) -> float:
    """Log normalising constant of Dirichlet rows, summed over the rows.

    Parameters
    ----------
    concentration : torch.Tensor
        ``(..., W)`` concentrations ``alpha``.

    Returns
    -------
    float
        ``sum over rows of log Gamma(sum_k alpha_k) - sum_k log Gamma(alpha_k)``.
    """
    return float(torch.lgamma(concentration.sum(-1)).sum() - torch.lgamma(concentration).sum())


def coordinate_shape(
    kind: str, shape: tuple[int, ...], bijection: Transform | None = None
) -> tuple[int, ...]:
    """The shape of a parameter's unconstrained coordinates in the flat NUTS/MAP vector.

    Parameters
    ----------
    kind : str
        The parameter's coordinate kind (:meth:`Emission.potential_coordinates`).
    shape : tuple of int
        The parameter's shape.
    bijection : Transform, optional
        The parameter's transform, for kind ``"bijection"``.

    Returns
    -------
    tuple of int
        One fewer entry per row for ``"simplex"`` (stick-breaking), the transform's
        ``inverse_shape`` for ``"bijection"``, else ``shape``.
    """
    if kind == "simplex":
        return (*shape[:-1], shape[-1] - 1)
    if kind == "bijection":
        if bijection is None:
            raise ValueError("bijection: expected the transform of a 'bijection' coordinate")
        return tuple(bijection.inverse_shape(torch.Size(shape)))
    return tuple(shape)


class EmissionPotential(ABC):
    """The part of the :class:`~hmm_pyro.emissions.Emission` interface that builds the potential.

    How each parameter is mapped to unconstrained coordinates, and the family's closed-form log
    joint where it has one. :class:`~hmm_pyro.emissions.Emission` inherits it.
    """

    @abstractmethod
    def potential_coordinates(self) -> dict[str, str]:
        """Unconstrained coordinates of each parameter in the NUTS/MAP potential.

        Returns
        -------
        dict of str
            Per parameter, in :attr:`param_names` order: ``"simplex"`` (each row by
            stick-breaking), ``"log"`` (a positive parameter), ``"real"`` (as it is) or
            ``"bijection"`` (the transform :meth:`bijection` names); see
            :mod:`hmm_pyro.inference.coordinates`.
        """

    def bijection(self, name: str) -> Transform:
        """The map from unconstrained coordinates to parameter ``name`` of kind ``"bijection"``.

        ``ValueError`` for a parameter without one (see :meth:`potential_coordinates`).
        """
        raise ValueError(f"name: {self!r} has no 'bijection' coordinate {name!r}")

    def potential_terms(
        self, prior: Prior, num_states: int, dtype: torch.dtype, data: Sequences
    ) -> PotentialTerms | None:
        """The family's numba log joint over flat coordinates, its arguments and constant.

        ``None`` (the default): the family has none, and the potential is evaluated in torch
        (autograd through :meth:`sequence_log_likelihood` and the prior's densities, see
        :class:`~hmm_pyro.inference.potential.Potential`).

        Parameters
        ----------
        prior : Prior
            Hyperparameters of the emission prior.
        num_states : int
            ``K``.
        dtype : torch.dtype
            Floating-point type the hyperparameters are resolved in.
        data : Sequences
            Observations, validated for this family.

        Returns
        -------
        PotentialTerms or None
        """
        return None
