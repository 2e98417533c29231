"""User-defined emission families: any Pyro distribution, its parameters' shapes and priors.

>>> import pyro.distributions as dist
>>> from torch.distributions import constraints
>>> zip_family = PyroEmission(
...     "zip_counts",
...     lambda rate, gate: dist.ZeroInflatedPoisson(rate=rate, gate=gate),
...     rate=Parameter(dist.Gamma(2.0, 0.5), constraint=constraints.positive),
...     gate=Parameter(dist.Beta(1.0, 1.0)),
... )
>>> zip_family.param_shapes(num_states=3)
{'rate': (3,), 'gate': (3,)}

The family gets every route of the package through
:class:`~hmm_pyro.emissions.distribution.DistributionEmission`: NUTS, SVI and MAP (the
potential in torch), EM (a numerical M-step), decoding, simulation, ArviZ output and the
degeneracy checks (Monte Carlo distances between states).

Definitions are kept by name in this process, so that a saved fit or store, or a worker
process that re-imports the defining script, can rebuild the family from its configuration
(:func:`hmm_pyro.emissions.from_config`); a later definition of the same name replaces an
earlier one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from torch.distributions.constraints import Constraint

from hmm_pyro._types import Params
from hmm_pyro._validation import check_int, describe
from hmm_pyro.emissions.base import Emission
from hmm_pyro.emissions.distribution import MC_SAMPLES, DistributionEmission
from hmm_pyro.priors import Prior

__all__ = ["Parameter", "PyroEmission", "defined_family"]

PriorSpec = dist.TorchDistribution | Callable[[], dist.TorchDistribution]
_DEFINED: dict[str, PyroEmission] = {}
"""User-defined families of this process, by name (the latest definition of each name)."""


@dataclass(frozen=True)
class Parameter:
    """One parameter of a :class:`PyroEmission`: its prior, per-state shape and constraint.

    Parameters
    ----------
    prior : pyro.distributions.Distribution or callable
        Prior of one state's value (``batch_shape + event_shape`` broadcastable to ``shape``;
        a leading batch axis of length ``K`` gives each state its own prior). Its numbers are
        converted to the model's dtype; a zero-argument function returning the distribution
        is called with the model's dtype as torch's default dtype instead.
    shape : tuple of int
        Shape of one state's value (``()``: a scalar per state).
    constraint : torch.distributions.constraints.Constraint, optional
        Domain of the entries (default: the prior's support); the sampler and optimisers move
        in Pyro's coordinates ``biject_to(constraint)``.
    """

    prior: PriorSpec
    shape: tuple[int, ...] = ()
    constraint: Constraint | None = None


def _cast(distribution: dist.TorchDistribution, dtype: torch.dtype) -> dist.TorchDistribution:
    """``distribution`` rebuilt with its tensor arguments in ``dtype`` (itself if already)."""
    if isinstance(distribution, torch.distributions.Independent):
        base = _cast(distribution.base_dist, dtype)
        return base.to_event(distribution.reinterpreted_batch_ndims)
    if isinstance(distribution, dist.ExpandedDistribution):
        return _cast(distribution.base_dist, dtype).expand(distribution.batch_shape)
    stored = [name for name in distribution.arg_constraints if name in vars(distribution)]
    names = stored or list(distribution.arg_constraints)
    arguments = {name: getattr(distribution, name) for name in names}
    if all(not torch.is_tensor(value) or value.dtype == dtype for value in arguments.values()):
        return distribution
    converted = {
        name: value.to(dtype) if torch.is_tensor(value) else value
        for name, value in arguments.items()
    }
    return type(distribution)(**converted)


def _resolve_prior(name: str, spec: PriorSpec, dtype: torch.dtype) -> dist.TorchDistribution:
    """The prior of ``spec`` in ``dtype`` (a clear error if it cannot be built)."""
    if isinstance(spec, torch.distributions.Distribution):
        try:
            return _cast(spec, dtype)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"{name}.prior: cannot rebuild {type(spec).__name__} in {dtype} ({error}); pass "
                "a function returning it (called with that dtype as torch's default)"
            ) from error
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        made = spec()
    finally:
        torch.set_default_dtype(default)
    if not isinstance(made, torch.distributions.Distribution):
        raise TypeError(f"{name}.prior: expected a Pyro distribution, got {describe(made)}")
    return made


class PyroEmission(DistributionEmission):
    """An emission family from a Pyro distribution constructor and its parameters.

    Parameters
    ----------
    name : str
        The family's name (its registry key and ``family``); letters, digits and ``_``; not
        the name of a built-in family.
    distribution : callable
        ``distribution(**params)``: the law of one step's observation, given parameter tensors
        of shape ``(..., K, *shape)``; batch shape ``(..., K)``, event shape ``()`` (``dim``
        1) or ``(dim,)``. A law ``base.to_event(1)`` over independent coordinates scores
        missing coordinates one by one; any other law of a vector needs whole steps.
    dim : int, optional
        Observation dimension ``D`` (default 1).
    location : str, optional
        A scalar parameter whose value orders states (default: the law's mean of the first
        coordinate).
    fill_value : float
        A value every state's law can emit, written over missing entries before they are
        masked (default 0).
    num_mc_samples : int
        Draws per state of the Monte Carlo distance between states (default
        :data:`~hmm_pyro.emissions.distribution.MC_SAMPLES`).
    **params : Parameter
        The parameters, in the order ``distribution`` receives them as keywords.

    Raises
    ------
    TypeError, ValueError
        Naming the argument, when the definition does not hold together: a law of the wrong
        batch or event shape at a reference point, a prior that does not fit the shape, a
        fill value outside the support.
    """

    def __init__(
        self,
        name: str,
        distribution: Callable[..., dist.TorchDistribution],
        *,
        dim: int | None = None,
        location: str | None = None,
        fill_value: float = 0.0,
        num_mc_samples: int = MC_SAMPLES,
        **params: Parameter,
    ) -> None:
        if not isinstance(name, str) or not name.replace("_", "a").isalnum():
            raise ValueError(f"name: expected letters, digits and '_', got {describe(name)}")
        if not callable(distribution):
            raise TypeError(f"distribution: expected a callable, got {describe(distribution)}")
        if not params:
            raise ValueError("params: expected at least one Parameter keyword argument")
        for key, spec in params.items():
            if not isinstance(spec, Parameter):
                raise TypeError(f"{key}: expected a hmm_pyro.Parameter, got {describe(spec)}")
            if not isinstance(spec.shape, tuple):
                shape = describe(spec.shape)
                raise TypeError(f"{key}.shape: expected a tuple of ints, got {shape}")
            for size in spec.shape:
                check_int(f"{key}.shape", size, minimum=1)
        if name in _built_in_names():
            raise ValueError(f"name: {name!r} is a built-in family; choose another name")
        self.family = name
        self.param_names = tuple(params)
        self._distribution = distribution
        self._params = dict(params)
        self._dim = None if dim is None else check_int("dim", dim, minimum=1)
        self.num_mc_samples = check_int("num_mc_samples", num_mc_samples, minimum=2)
        self._fill = float(fill_value)
        self._constraints = {
            key: spec.constraint
            if spec.constraint is not None
            else _resolve_prior(key, spec.prior, torch.float64).support
            for key, spec in params.items()
        }
        if location is not None and (location not in params or params[location].shape != ()):
            raise ValueError(f"location: expected a scalar parameter's name, got {location!r}")
        self._location = location
        self._check_definition()
        _DEFINED[name] = self

    # ------------------------------------------------------------------ definition
    def _check_definition(self) -> None:
        """Build the priors and the law at a reference point; refuse what does not fit."""
        priors = self.priors({}, 2, torch.float64)
        for key, prior in priors.items():
            with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
                torch.manual_seed(0)
                draw = prior.sample()
            if not bool(self._constraints[key].check(draw).all()):
                raise ValueError(
                    f"{key}: prior draws leave the constraint {self._constraints[key]}"
                )
        reference = self.reference_params(2)
        try:
            law = self.law(reference)
        except Exception as error:  # the user's code: report any failure as a definition error
            raise ValueError(f"distribution: fails at {reference}: {error}") from error
        allowed = [(), (1,)] if self.dim == 1 else [(self.dim,)]
        if tuple(law.batch_shape) != (2,) or tuple(law.event_shape) not in allowed:
            raise ValueError(
                f"distribution: expected batch shape (K,) and event shape "
                f"{' or '.join(map(str, allowed))} for parameters of K states, "
                f"got batch {tuple(law.batch_shape)} and event {tuple(law.event_shape)}"
            )
        fill = torch.full((*law.event_shape,), self._fill, dtype=torch.float64)
        with pyro.validation_enabled(False):  # a value off the support scores -inf or NaN
            inside = bool(torch.isfinite(law.log_prob(fill)).all())
        if not inside:
            raise ValueError(
                f"fill_value: {self._fill} is outside the support of {self.family!r}; pass a "
                "value every state can emit"
            )
        if self._location is None and not _finite_mean(self, reference):
            raise ValueError(
                f"location: the law of {self.family!r} has no finite mean; name a scalar "
                "parameter that orders the states"
            )

    @property
    def dim(self) -> int:
        """Observation dimension ``D``."""
        return 1 if self._dim is None else self._dim

    @property
    def integer_valued(self) -> bool:  # type: ignore[override]
        """Whether the law's support is discrete."""
        return bool(self.observation_support().is_discrete)

    def param_shapes(self, num_states: int) -> dict[str, tuple[int, ...]]:
        """``(K, *shape)`` of each parameter."""
        return {key: (num_states, *spec.shape) for key, spec in self._params.items()}

    def param_constraints(self) -> dict[str, Constraint]:
        """Each parameter's constraint (given, or its prior's support)."""
        return dict(self._constraints)

    def to_config(self) -> dict[str, Any]:
        """``{"family": name, "dim": D or None, "params": {name: shape}}``."""
        return {
            "family": self.family,
            "dim": self._dim,
            "params": {key: list(spec.shape) for key, spec in self._params.items()},
        }

    # ------------------------------------------------------------------ prior
    def prior_hyperparameters(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, torch.Tensor]:
        """None: the priors are part of the definition (``prior`` sets ``pi`` and ``A`` only)."""
        return {}

    def priors(
        self, hyperparameters: Params, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """Each parameter's prior in ``dtype``, expanded to ``(K, *shape)`` as one event."""
        result = {}
        for key, spec in self._params.items():
            prior = _resolve_prior(key, spec.prior, dtype)
            full = torch.Size((num_states, *spec.shape))
            event = prior.event_shape
            if len(event) > len(full) or tuple(full[len(full) - len(event) :]) != tuple(event):
                raise ValueError(
                    f"{key}.prior: event shape {tuple(event)} does not end the parameter's "
                    f"shape {tuple(full)}"
                )
            batch = full[: len(full) - len(event)]
            try:
                expanded = prior.expand(batch)
            except (RuntimeError, ValueError) as error:
                raise ValueError(
                    f"{key}.prior: batch shape {tuple(prior.batch_shape)} does not broadcast "
                    f"to {tuple(batch)}"
                ) from error
            result[key] = expanded.to_event(len(batch))
        return result

    # ------------------------------------------------------------------ law
    def law(self, params: Params) -> dist.TorchDistribution:
        """``distribution(**params)``."""
        return self._distribution(**{key: params[key] for key in self.param_names})

    def fill_value(self) -> float:
        """The ``fill_value`` of the definition."""
        return self._fill

    def location(self, params: Params) -> torch.Tensor:
        """The ``location`` parameter, else the law's mean of the first coordinate."""
        if self._location is not None:
            return params[self._location]
        return super().location(params)

    def __repr__(self) -> str:
        return f"PyroEmission({self.family!r}, params={list(self.param_names)}, dim={self.dim})"


def _finite_mean(family: PyroEmission, params: Params) -> bool:
    """Whether the law has a finite mean at ``params`` (``location``'s default)."""
    try:
        return bool(torch.isfinite(family.location(params)).all())
    except NotImplementedError:
        return False


def _built_in_names() -> set[str]:
    """``family`` of every emission class (the built-in families and any other subclass)."""
    names, pending = set(), list(Emission.__subclasses__())
    while pending:
        cls = pending.pop()
        names.add(cls.family)
        pending.extend(cls.__subclasses__())
    return names - {""}


def defined_family(name: str, options: Mapping[str, Any]) -> PyroEmission | None:
    """The user-defined family ``name`` of this process, checked against its configuration.

    Parameters
    ----------
    name : str
        The ``family`` of the configuration.
    options : mapping
        The rest of the configuration (``dim``, ``params``).

    Returns
    -------
    PyroEmission or None
        ``None`` when no family of that name is defined in this process.

    Raises
    ------
    ValueError
        If the definition of that name has other parameters or dimension than the
        configuration (it was saved from another definition).
    """
    family = _DEFINED.get(name)
    if family is None:
        return None
    recorded = {"family": name, **options}
    if recorded != family.to_config():
        raise ValueError(
            f"config: family {name!r} was saved as {recorded}; this process defines it as "
            f"{family.to_config()}"
        )
    return family
