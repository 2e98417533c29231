"""Families of one number per state and coordinate: the shared description of their shapes.

Gaussian, Poisson, gamma, von Mises, negative binomial and Student-t emissions model each
coordinate of a step independently, with every parameter of shape ``(K,)`` for univariate data
(``dim`` omitted) or ``(K, D)``. :class:`Coordinatewise` answers everything that follows from
that: the constructor's ``dim``, the shapes and ArviZ dimensions, the configuration, the
hyperparameters (the :class:`~hmm_pyro.priors.Prior` fields the family names, resolved to
``(K, D)``) and the conversions between the parameters and ``(K, D)`` columns. A family lists
its ``param_names`` and ``hyperparameter_names`` and writes only what is its own.
"""

from __future__ import annotations

from typing import Any

import torch

from hmm_pyro._types import Params
from hmm_pyro._validation import check_int
from hmm_pyro.emissions.base import Emission
from hmm_pyro.priors import Prior

__all__ = ["Coordinatewise"]


class Coordinatewise(Emission):
    """Base of families whose parameters are one number per state and coordinate.

    Mixed in before :class:`~hmm_pyro.emissions.distribution.DistributionEmission` by
    families on the generic torch route.

    Parameters
    ----------
    dim : int, optional
        Emission dimension ``D`` (independent coordinates); omit for univariate data.

    Attributes
    ----------
    hyperparameter_names : tuple of str
        The :class:`~hmm_pyro.priors.Prior` fields of the family's prior, in the order its
        potential and M-step take them.
    """

    hyperparameter_names: tuple[str, ...] = ()

    def __init__(self, dim: int | None = None) -> None:
        self._dim = None if dim is None else check_int("dim", dim, minimum=1)

    @property
    def dim(self) -> int:
        """Emission dimension ``D``."""
        return 1 if self._dim is None else self._dim

    def param_shapes(self, num_states: int) -> dict[str, tuple[int, ...]]:
        """``(K,)`` (``dim`` omitted) or ``(K, D)`` for every parameter."""
        shape = (num_states,) if self._dim is None else (num_states, self._dim)
        return dict.fromkeys(self.param_names, shape)

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        """``("state",)`` or ``("state", "dim")`` for every parameter."""
        dims = ("state",) if self._dim is None else ("state", "dim")
        return dict.fromkeys(self.param_names, dims)

    def to_config(self) -> dict[str, Any]:
        """``{"family": family, "dim": D or None}``."""
        return {"family": self.family, "dim": self._dim}

    def prior_hyperparameters(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, torch.Tensor]:
        """Each of :attr:`hyperparameter_names` resolved to ``(K, D)``."""
        return {
            name: prior.resolve_emission(name, num_states, self.dim, dtype)
            for name in self.hyperparameter_names
        }

    def _columns(self, params: Params) -> tuple[torch.Tensor, ...]:
        """The parameters in :attr:`param_names` order as ``(..., K, D)`` columns."""
        columns = tuple(params[name] for name in self.param_names)
        return tuple(c.unsqueeze(-1) for c in columns) if self._dim is None else columns

    def _unshaped(self, value: torch.Tensor) -> torch.Tensor:
        """A ``(..., K, D)`` column back to the parameter shape."""
        return value[..., 0] if self._dim is None else value

    def _params(self, *columns: torch.Tensor) -> Params:
        """``(..., K, D)`` columns, in :attr:`param_names` order, to the parameters."""
        return {
            name: self._unshaped(value)
            for name, value in zip(self.param_names, columns, strict=True)
        }
