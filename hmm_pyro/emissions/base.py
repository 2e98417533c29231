"""The interface every emission family implements.

An emission family maps data to the ``(..., N, T, K)`` table of per-state log likelihoods that
the kernels consume, owns the prior of its parameters, and can simulate observations. It also
owns every other family-specific decision: the sufficient statistics and the M-step of classical
learning, the data-driven start, the one-state fit, the free-parameter count, a location for
ordering states and the labels of its entries. Code outside :mod:`hmm_pyro.emissions` asks the
family instead of switching on it. Parameters are plain dicts of tensors whose trailing shape is
:meth:`Emission.param_shapes`; any leading dimensions (posterior draws) broadcast.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import pyro.distributions as dist
import torch
from pyro.ops.special import safe_log

from hmm_pyro import kernels
from hmm_pyro._types import Params
from hmm_pyro._validation import describe
from hmm_pyro.covariates import Covariates
from hmm_pyro.data import Sequences
from hmm_pyro.emissions.names import EmissionNames
from hmm_pyro.emissions.potential_terms import (
    EmissionPotential,
    PotentialTerms,
    dirichlet_log_normalizer,
)
from hmm_pyro.emissions.statistics import STATISTICS_DTYPE
from hmm_pyro.kernels import _numba
from hmm_pyro.priors import Prior

__all__ = [
    "STATISTICS_DTYPE",
    "Emission",
    "OptionError",
    "PotentialTerms",
    "dirichlet_log_normalizer",
    "transition_logs",
]


def transition_logs(
    log_pi: torch.Tensor | None, log_A: torch.Tensor | None, params: Params
) -> tuple[torch.Tensor, torch.Tensor]:
    """``log_pi`` and ``log_A``, Pyro's ``safe_log`` of ``params["pi"]``/``["A"]`` where ``None``.

    ``safe_log``: the gradient ``g / max(p, eps)`` stays finite at ``p = 0``.
    """
    return (
        safe_log(params["pi"]) if log_pi is None else log_pi,
        safe_log(params["A"]) if log_A is None else log_A,
    )


class OptionError(ValueError):
    """An option of :meth:`Emission.from_options` that the family cannot take, or needs.

    ``argument`` names the option (``"num_symbols"``, ``"dim"``), so that the CLI can show the
    flag the user typed; the message starts ``"<argument>: "``. Messages about the values
    themselves (data that do not match) are plain ``ValueError``.
    """

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument


class Emission(EmissionPotential, EmissionNames, ABC):
    """Base class of emission families.

    Built-in families answer every question in closed form (and the NUTS/MAP potential in
    numba); :class:`~hmm_pyro.emissions.distribution.DistributionEmission` answers them for any
    family given by a Pyro distribution, through torch.

    Attributes
    ----------
    family : str
        Registry name (:func:`hmm_pyro.emissions.from_config`).
    param_names : tuple of str
        Names of the emission parameters (Pyro sample sites), in model order.
    simplex_params : tuple of str
        Parameters whose rows (last axis) are probability vectors with a Dirichlet prior; the
        concentration is the hyperparameter of the same name in
        :meth:`prior_hyperparameters`. Each row has one free parameter fewer than entries.
    positive_params : tuple of str
        Parameters whose entries must be strictly positive (scales, rates).
    integer_valued : bool
        Whether observations are integers (symbols, counts), e.g. for writing them as such.
    """

    family: str = ""
    param_names: tuple[str, ...] = ()
    simplex_params: tuple[str, ...] = ()
    positive_params: tuple[str, ...] = ()
    integer_valued: bool = False
    random_effect_params: tuple[tuple[str, str], ...] = ()
    """Parameters that may vary between subjects in a :class:`~hmm_pyro.MultilevelHMM`, each
    with its kind: ``"logit"`` (probability rows; a subject's row is ``softmax(log row + tau
    z)``) or ``"location"`` (a subject's value is ``value + tau z``); see docs/multilevel.md."""

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

    def same_family(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` (:meth:`to_config` output, e.g. a store's record) is this family.

        Options such as ``V`` or ``D`` are not compared (callers check the data against them).
        """
        return config.get("family") == self.family

    def num_free_params(self, num_states: int) -> int:
        """Free emission parameters of ``K`` states: every entry, less one per simplex row.

        Parameters
        ----------
        num_states : int
            Number of states ``K``.

        Returns
        -------
        int
            E.g. ``K (V - 1)`` (categorical), ``2 K D`` (Gaussian), ``K D`` (Poisson).
        """
        total = 0
        for name, shape in self.param_shapes(num_states).items():
            size = math.prod(shape)
            total += size - (size // shape[-1] if name in self.simplex_params else 0)
        return total

    @classmethod
    def from_options(
        cls, data: Sequences | None = None, num_symbols: int | None = None, dim: int | None = None
    ) -> Emission:
        """The family for user options and the data's shape (the CLI's ``--emission``).

        The default serves families with an emission dimension: ``dim`` if given, else the
        data's dimension (a scalar family when it is 1 or unknown); ``num_symbols`` is not an
        option of such a family and must be ``None``.

        Parameters
        ----------
        data : Sequences, optional
            The observations.
        num_symbols : int, optional
            Number of symbols (categorical families).
        dim : int, optional
            Emission dimension.

        Returns
        -------
        Emission
        """
        if num_symbols is not None:
            raise OptionError(
                "num_symbols", f"not an option of {cls.__name__} emissions, got {num_symbols}"
            )
        if dim is None and data is not None:
            dim = data.dim
        return cls(dim=dim) if dim is not None and dim > 1 else cls()

    @classmethod
    def from_config_options(
        cls, options: Mapping[str, Any], build: Callable[[Mapping[str, Any]], Emission]
    ) -> Emission:
        """The family of :meth:`to_config` output without its ``family`` key.

        By default the options are the constructor's keywords; a family made of families
        rebuilds them with ``build`` (:func:`hmm_pyro.emissions.from_config`).
        """
        return cls(**options)

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

    @abstractmethod
    def prior_hyperparameters(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, torch.Tensor]:
        """The hyperparameters of ``prior`` for this family, resolved to ``(K, V)`` or ``(K, D)``.

        Parameters
        ----------
        prior : Prior
            The model's prior.
        num_states : int
            Number of states ``K``.
        dtype : torch.dtype
            Floating-point type of the result.

        Returns
        -------
        dict of torch.Tensor
            Keyed by :class:`~hmm_pyro.priors.Prior` field name (``"B"``; ``"mu_loc"``, ...).
        """

    def prior_fields_for_states(
        self, prior: Prior, num_states: int, keep: list[int]
    ) -> dict[str, torch.Tensor]:
        """The emission fields of ``prior`` for a model with the states ``keep`` only.

        Each field's per-state value for the kept states, so that a smaller model (merged
        states, ``diagnose``'s refits) keeps the kept states' own prior. Families whose
        :meth:`prior_hyperparameters` are not keyed by :class:`~hmm_pyro.priors.Prior` field
        (a product of blocks) override this.

        Parameters
        ----------
        prior : Prior
            The model's prior.
        num_states : int
            Number of states ``K`` of the model.
        keep : list of int
            The states kept.

        Returns
        -------
        dict of torch.Tensor
            Prior field name -> float64 value for the kept states.
        """
        values = self.prior_hyperparameters(prior, num_states, torch.float64)
        return {name: value[keep] for name, value in values.items()}

    # ------------------------------------------------------------------ point estimation
    @abstractmethod
    def weighted_statistics(self, data: Sequences, weights: torch.Tensor) -> Params:
        """Emission sufficient statistics of state weights, summed over all observed entries.

        Unobserved coordinates add nothing (a missing observation still counts for the states
        and transitions, which the caller sums).

        Parameters
        ----------
        data : Sequences
            The observations.
        weights : torch.Tensor
            ``(N * T, K)`` float64 state weights of the flattened steps, zero at padding.

        Returns
        -------
        dict of torch.Tensor
            float64 statistics, the input of :meth:`maximize`.
        """

    @abstractmethod
    def maximize(
        self,
        statistics: Params,
        hyperparameters: Params,
        previous: Params | None,
        use_prior: bool,
    ) -> Params:
        """M-step: the emission parameters maximising ``Q + log prior`` given the statistics.

        Parameters
        ----------
        statistics : dict of torch.Tensor
            From :meth:`weighted_statistics` (expected or counted).
        hyperparameters : dict of torch.Tensor
            From :meth:`prior_hyperparameters` in float64.
        previous : dict of torch.Tensor or None
            Current parameters: kept where the update is undefined (no weight on a state, and
            no prior to decide), and the start of iterative updates. ``None`` (supervised
            estimation): undefined estimates are NaN or uniform (the caller reports them).
        use_prior : bool
            Use the emission parameters' prior (else maximum likelihood).

        Returns
        -------
        dict of torch.Tensor
            float64 parameters in :meth:`param_shapes`.
        """

    @abstractmethod
    def pooled_params(self, data: Sequences) -> Params:
        """The one-state fit: where identical states end up, in the shapes of one state.

        Parameters
        ----------
        data : Sequences
            The observations (observed entries only are used).

        Returns
        -------
        dict of torch.Tensor
            float64 parameters of shape :meth:`param_shapes` ``(1)``.
        """

    def start_from_data(
        self, data: Sequences, num_states: int, generator: torch.Generator, dtype: torch.dtype
    ) -> Params:
        """Data-driven starting values of the emission parameters (for optimisers and chains).

        The default keeps the prior draw the caller already has (returns nothing); families
        with a location parameter place it at random quantiles of the data.

        Parameters
        ----------
        data : Sequences
            The observations.
        num_states : int
            Number of states ``K``.
        generator : torch.Generator
            Source of randomness (the draws made are part of the start's reproducibility).
        dtype : torch.dtype
            Floating-point type of the result.

        Returns
        -------
        dict of torch.Tensor
            Parameters that replace the prior draw's (possibly none).
        """
        return {}

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
        return self._observed_sum(self._log_prob_elementwise(params, values), data)

    @staticmethod
    def _observed_sum(table: torch.Tensor, data: Sequences) -> torch.Tensor:
        """``(..., N, T, K, D)`` per-coordinate scores summed over observed coordinates."""
        if not data.complete:
            observed = data.observed.unsqueeze(-2)
            table = torch.where(observed, table, torch.zeros((), dtype=table.dtype))
        return table.sum(-1)

    def sequence_log_likelihood(
        self,
        log_pi: torch.Tensor | None,
        log_A: torch.Tensor | None,
        params: Params,
        data: Sequences,
    ) -> torch.Tensor:
        """Log marginal likelihood of each sequence, hidden states summed out.

        The forward algorithm (:func:`hmm_pyro.kernels.log_likelihood`) on
        :meth:`log_likelihood_table`; a family with a faster route overrides it.

        Parameters
        ----------
        log_pi : torch.Tensor or None
            ``(..., K)`` log initial distribution (no sequence dimension); ``None``: Pyro's
            ``safe_log`` of ``params["pi"]`` (a family may take it inside its kernel).
        log_A : torch.Tensor or None
            ``(..., K, K)`` log transition matrix; ``None``: ``safe_log`` of ``params["A"]``.
        params : dict of torch.Tensor
            Emission parameters (and ``pi``, ``A`` where a log is ``None``).
        data : Sequences
            ``N`` sequences.

        Returns
        -------
        torch.Tensor
            ``(..., N)``, differentiable in ``log_pi``, ``log_A`` and ``params``.
        """
        log_pi, log_A = transition_logs(log_pi, log_A, params)
        table = self.log_likelihood_table(params, data)
        return kernels.log_likelihood(
            log_pi.unsqueeze(-2), log_A.unsqueeze(-3), table, data.lengths
        )

    def expected_statistics(
        self, log_pi: torch.Tensor, log_A: torch.Tensor, params: Params, data: Sequences
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Params]:
        """EM's E-step: the log likelihood and the expected complete-data statistics.

        One forward-backward pass (:func:`hmm_pyro.kernels.forward_backward`) on
        :meth:`log_likelihood_table`, then :meth:`weighted_statistics` of the smoothed marginals;
        a family with a faster route overrides it.

        Parameters
        ----------
        log_pi : torch.Tensor
            ``(K,)`` log initial distribution.
        log_A : torch.Tensor
            ``(K, K)`` log transition matrix.
        params : dict of torch.Tensor
            Emission parameters (one set, float64).
        data : Sequences
            ``N`` sequences.

        Returns
        -------
        log_likelihood : torch.Tensor
            Scalar, summed over sequences.
        start : torch.Tensor
            ``(K,)`` expected first-step state counts.
        transitions : torch.Tensor
            ``(K, K)`` expected transition counts.
        emission : dict of torch.Tensor
            :meth:`weighted_statistics` of the smoothed marginals.
        """
        table = self.log_likelihood_table(params, data)
        result = kernels.forward_backward(
            log_pi.unsqueeze(-2), log_A.unsqueeze(-3), table, data.lengths
        )
        gamma = result.gamma
        flat = gamma.reshape(-1, gamma.shape[-1]).to(STATISTICS_DTYPE)
        return (
            result.log_likelihood.sum(),
            gamma[:, 0, :].sum(0),
            result.transitions.sum(0),
            self.weighted_statistics(data, flat),
        )

    @abstractmethod
    def conditional(
        self, params: Params, states: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        """Distribution of one step's observation given ``states``, masked where not observed.

        Used by the enumerated Pyro model: ``states`` is an (enumerated) index tensor and
        ``observed`` the ``(N, D)`` mask of the step.
        """

    def conditional_at(
        self,
        params: Params,
        states: torch.Tensor,
        observed: torch.Tensor,
        covariates: Covariates | None,
        step: int,
    ) -> dist.TorchDistribution:
        """:meth:`conditional` at step ``step`` of sequences with ``covariates``.

        The enumerated Pyro model calls this; a family whose law depends on the covariates
        (an emission regression) reads the step's covariate rows. The default ignores them.
        """
        return self.conditional(params, states, observed)

    def observation(self, values: torch.Tensor) -> torch.Tensor:
        """One step's filled values ``(N, D)`` in the form :meth:`conditional` scores."""
        return values

    @abstractmethod
    def sample(
        self, params: Params, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Draw observations ``(*states.shape, D)`` given a single parameter set and states."""

    def sample_with_covariates(
        self,
        params: Params,
        states: torch.Tensor,
        generator: torch.Generator,
        covariates: Covariates | None,
    ) -> torch.Tensor:
        """:meth:`sample` for states ``(N, T)`` of sequences with ``covariates`` (or none).

        The simulator calls this; a family whose law depends on the covariates (an emission
        regression) reads them. The default ignores them.
        """
        return self.sample(params, states, generator)

    def with_covariates(self, names: tuple[str, ...]) -> Emission:
        """The family whose law depends on the covariates ``names`` (an emission regression).

        ``OptionError`` (argument ``emission_covariates``) for a family without one; the
        univariate Gaussian, Poisson, negative binomial and categorical families have one
        (:mod:`hmm_pyro.emissions.regression` and the ``*_regression`` modules).
        """
        raise OptionError(
            "emission_covariates", f"{self!r} has no emission regression on covariates"
        )

    # ------------------------------------------------------------------ distances
    @abstractmethod
    def bhattacharyya(self, params: Params) -> torch.Tensor:
        """Bhattacharyya coefficients ``BC[..., i, j]`` between the states' emission laws."""

    def hellinger(self, params: Params) -> torch.Tensor:
        """Squared Hellinger distances ``H2[..., i, j] = 1 - BC[i, j]`` in ``[0, 1]``.

        Label-free summaries of it (minimum over pairs) measure how distinct the states are.
        """
        return (1.0 - self.bhattacharyya(params)).clamp(min=0.0, max=1.0)

    # ------------------------------------------------------------------ summaries
    @abstractmethod
    def location(self, params: Params) -> torch.Tensor:
        """One scalar per state that orders states canonically: ``(..., K)``.

        The first coordinate's mean (Gaussian) or rate (Poisson); the expected symbol index
        ``sum_v v B[k, v]`` (categorical). Torch in, torch out; leading dimensions broadcast.
        """

    # ------------------------------------------------------------------ parameters
    @abstractmethod
    def _check_param_values(self, name: str, value: torch.Tensor) -> None:
        """Raise ``ValueError`` if ``value`` is not a valid value of parameter ``name``."""

    def _values_pass(self, name: str, value: torch.Tensor) -> bool:
        """True when ``value`` certainly passes the checks of :meth:`validate_params`.

        Those are finiteness and :meth:`_check_param_values`; ``False``: run them (they raise
        or pass).

        Validation runs on every user-level call, and a torch reduction costs microseconds
        whatever the size: a family overrides this with one numba pass over CPU values
        (:mod:`hmm_pyro.kernels._numba.checks`) that is never more lenient. Default: ``False``.
        """
        return False

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
            if self._values_pass(name, value):
                continue
            if not _numba.all_finite(value) and not torch.isfinite(value).all():
                raise ValueError(f"params[{name!r}]: expected finite values, got non-finite")
            self._check_param_values(name, value)

    def __repr__(self) -> str:
        config = self.to_config()
        args = ", ".join(f"{key}={value!r}" for key, value in config.items() if key != "family")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Emission) and self.to_config() == other.to_config()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_config(), sort_keys=True))
