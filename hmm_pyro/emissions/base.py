"""The interface every emission family implements.

An emission family maps data to the ``(..., N, T, K)`` table of per-state log likelihoods that
the kernels consume, owns the prior of its parameters, and can simulate observations. Parameters
are plain dicts of tensors whose trailing shape is :meth:`Emission.param_shapes`; any leading
dimensions (posterior draws) broadcast.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pyro.distributions as dist
import torch

from hmm_pyro import kernels
from hmm_pyro._validation import describe
from hmm_pyro.data import Sequences
from hmm_pyro.priors import Prior

__all__ = ["Emission", "PotentialTerms", "dirichlet_log_normalizer"]

Params = dict[str, torch.Tensor]


class Emission(ABC):
    """Base class of emission families (categorical, Gaussian, Poisson)."""

    family: str = ""
    param_names: tuple[str, ...] = ()

    # ------------------------------------------------------------------ description
    @property
    @abstractmethod
    def dim(self) -> int:
        """Emission dimension ``D`` (1 for categorical)."""

    @abstractmethod
    def param_shapes(self, num_states: int) -> dict[str, tuple[int, ...]]:
        """Trailing shape of each parameter for ``K`` states."""

    @abstractmethod
    def param_dims(self) -> dict[str, tuple[str, ...]]:
        """ArviZ dimension names of each parameter (first is always ``"state"``)."""

    @abstractmethod
    def to_config(self) -> dict[str, Any]:
        """JSON-serialisable description; :func:`hmm_pyro.emissions.from_config` inverts it."""

    # ------------------------------------------------------------------ data
    @abstractmethod
    def validate_data(self, data: Sequences) -> None:
        """Raise ``ValueError`` naming ``data`` if the observations cannot come from this family."""

    def _check_dim(self, data: Sequences) -> None:
        if data.dim != self.dim:
            raise ValueError(
                f"data: expected observations of dimension {self.dim} for {self!r}, got {data.dim}"
            )

    @staticmethod
    def _observed_values(data: Sequences) -> torch.Tensor:
        return data.values[data.observed]

    # ------------------------------------------------------------------ prior
    @abstractmethod
    def prior_distributions(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """Prior of each parameter: one distribution whose event is the whole parameter."""

    # ------------------------------------------------------------------ likelihood
    @abstractmethod
    def _log_prob_elementwise(self, params: Params, values: torch.Tensor) -> torch.Tensor:
        """Log density of filled ``values (N, T, D)``: ``(..., N, T, K, D)``."""

    @abstractmethod
    def fill_value(self) -> float:
        """A valid placeholder written over missing entries before evaluating densities."""

    def log_likelihood_table(self, params: Params, data: Sequences) -> torch.Tensor:
        """Per-step, per-state log likelihoods ``(..., N, T, K)``; zero where nothing was observed.

        Missing and padded entries contribute zero.

        Parameters
        ----------
        params : dict of torch.Tensor
            Emission parameters (leading batch dimensions allowed).
        data : Sequences
            Observations; missing coordinates contribute nothing.

        Returns
        -------
        torch.Tensor
        """
        dtype = next(iter(params.values())).dtype
        values = data.filled(self.fill_value(), dtype)
        table = self._log_prob_elementwise(params, values)
        if not data.complete:
            observed = data.observed.unsqueeze(-2)
            table = torch.where(observed, table, torch.zeros((), dtype=dtype))
        return table.sum(-1)

    def sequence_log_likelihood(
        self, log_pi: torch.Tensor, log_A: torch.Tensor, params: Params, data: Sequences
    ) -> torch.Tensor:
        """Log marginal likelihood of each sequence, hidden states summed out.

        The forward algorithm (:func:`hmm_pyro.kernels.log_likelihood`) on
        :meth:`log_likelihood_table`; a family with a faster route overrides it.

        Parameters
        ----------
        log_pi : torch.Tensor
            ``(..., K)`` log initial distribution (no sequence dimension).
        log_A : torch.Tensor
            ``(..., K, K)`` log transition matrix.
        params : dict of torch.Tensor
            Emission parameters.
        data : Sequences
            ``N`` sequences.

        Returns
        -------
        torch.Tensor
            ``(..., N)``, differentiable in ``log_pi``, ``log_A`` and ``params``.
        """
        table = self.log_likelihood_table(params, data)
        return kernels.log_likelihood(
            log_pi.unsqueeze(-2), log_A.unsqueeze(-3), table, data.lengths
        )

    @abstractmethod
    def conditional(
        self, params: Params, states: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        """Distribution of one step's observation given ``states``, masked where not observed.

        Used by the enumerated Pyro model: ``states`` is an (enumerated) index tensor and
        ``observed`` the ``(N, D)`` mask of the step.
        """

    def observation(self, values: torch.Tensor) -> torch.Tensor:
        """One step's filled values ``(N, D)`` in the form :meth:`conditional` scores."""
        return values

    @abstractmethod
    def sample(
        self, params: Params, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Draw observations ``(*states.shape, D)`` given a single parameter set and states."""

    # ------------------------------------------------------------------ distances
    @abstractmethod
    def bhattacharyya(self, params: Params) -> torch.Tensor:
        """Bhattacharyya coefficients ``BC[..., i, j]`` between the states' emission laws."""

    def hellinger(self, params: Params) -> torch.Tensor:
        """Squared Hellinger distances ``H2[..., i, j] = 1 - BC[i, j]`` in ``[0, 1]``.

        Label-free summaries of it (minimum over pairs) measure how distinct the states are.
        """
        return (1.0 - self.bhattacharyya(params)).clamp(min=0.0, max=1.0)

    # ------------------------------------------------------------------ parameters
    @abstractmethod
    def _check_param_values(self, name: str, value: torch.Tensor) -> None:
        """Raise ``ValueError`` if ``value`` is not a valid value of parameter ``name``."""

    def validate_params(self, params: Params, num_states: int) -> None:
        """Check names, trailing shapes and values of the emission parameters."""
        for name, shape in self.param_shapes(num_states).items():
            if name not in params:
                raise ValueError(
                    f"params: expected key {name!r} for {self!r}, got keys {sorted(params)}"
                )
            value = params[name]
            if not isinstance(value, torch.Tensor) or not value.is_floating_point():
                raise TypeError(f"params[{name!r}]: expected a float tensor, got {describe(value)}")
            if tuple(value.shape[value.dim() - len(shape) :]) != shape or value.dim() < len(shape):
                raise ValueError(
                    f"params[{name!r}]: expected trailing shape {shape}, got {describe(value)}"
                )
            if not torch.isfinite(value).all():
                raise ValueError(f"params[{name!r}]: expected finite values, got non-finite")
            self._check_param_values(name, value)

    def __repr__(self) -> str:
        config = self.to_config()
        args = ", ".join(f"{key}={value!r}" for key, value in config.items() if key != "family")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Emission) and self.to_config() == other.to_config()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.to_config().items())))

    # ---- potential (NUTS/MAP)
    @abstractmethod
    def potential_coordinates(self) -> dict[str, str]:
        """Unconstrained coordinates of each parameter in the NUTS/MAP potential.

        Returns
        -------
        dict of str
            Per parameter, in :attr:`param_names` order: ``"simplex"`` (each row by
            stick-breaking), ``"log"`` (a positive parameter) or ``"real"`` (as it is); see
            :mod:`hmm_pyro.inference.coordinates`.
        """

    @abstractmethod
    def potential_terms(
        self, prior: Prior, num_states: int, dtype: torch.dtype, data: Sequences
    ) -> PotentialTerms:
        """The family's numba log joint over flat coordinates, its arguments and constant.

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
        PotentialTerms
        """

    @staticmethod
    def _potential_data(data: Sequences) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The data as the numba potentials take them.

        ``values (N, T, D)`` zero where not observed, ``observed (N, T, D)`` (false at padded
        steps) and ``lengths (N,)`` int64.
        """
        observed = data.observed.numpy() & data.mask.numpy()[..., None]
        values = np.ascontiguousarray(np.where(observed, np.nan_to_num(data.values.numpy()), 0.0))
        return values, observed, data.lengths.numpy().astype(np.int64)


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
