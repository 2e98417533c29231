"""``HMM``: a hidden Markov model specification and its Pyro models.

Parameters are plain dicts of tensors: ``pi (K,)``, ``A (K, K)`` and the emission parameters
(``B (K, V)``; ``mu``, ``sigma``; ``rate``). Any leading dimensions (posterior draws) broadcast
through every method, which then returns results with those dimensions in front.

Layer rule: ``model`` imports ``emissions``, ``priors``, ``data``, ``kernels`` and the private
utilities; ``store``, ``starts`` and everything above import it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from pyro.ops.special import safe_log

from hmm_pyro import kernels
from hmm_pyro._enumeration import enumerated_likelihood
from hmm_pyro._random import make_generator
from hmm_pyro._types import Params, SequencesLike
from hmm_pyro._validation import check_choice, check_int, describe
from hmm_pyro.data import Sequences, as_sequences
from hmm_pyro.emissions import Emission, from_config
from hmm_pyro.kernels import _numba
from hmm_pyro.priors import Prior

__all__ = ["HMM", "INITIAL_MODES", "MARGINALIZE_METHODS", "MAX_PARAMETERS"]

MARGINALIZE_METHODS = ("forward", "enumerate")
INITIAL_MODES = ("free", "stationary")
"""How ``pi`` is estimated by the classical learners: its own parameters, or tied to ``A``."""
_SIMPLEX_ATOL = 1e-6
_CHUNK_ELEMENTS = 2**23
"""Upper bound on the elements of the largest intermediate tensor when mapping over draws."""
MAX_PARAMETERS = 10**7
"""Largest number of parameter entries (``K + K**2 +`` emission) of one draw: beyond it the
prior alone needs gigabytes, and a forward pass costs ``O(T K**2)`` per sequence."""


class HMM:
    """A Bayesian hidden Markov model with ``K`` states.

    Parameters
    ----------
    num_states : int
        Number of hidden states ``K >= 1``.
    emission : Emission
        Emission family, e.g. ``Categorical(num_symbols=V)``, ``Gaussian()`` or ``Poisson()``.
    prior : Prior, optional
        Prior hyperparameters (default: ``Prior()``, flat Dirichlet priors).
    dtype : torch.dtype
        Floating-point type of parameters and computations (default float64).

    Raises
    ------
    TypeError, ValueError
        Naming the argument: ``num_states`` not an integer ``>= 1``; ``emission`` not an
        :class:`Emission`; more than :data:`MAX_PARAMETERS` parameter entries; ``prior`` not a
        :class:`Prior` or of the wrong shape for ``K`` states; ``dtype`` not float32/float64.

    Examples
    --------
    >>> from hmm_pyro import HMM, Categorical
    >>> hmm = HMM(num_states=2, emission=Categorical(num_symbols=3))
    >>> sorted(hmm.param_shapes().items())
    [('A', (2, 2)), ('B', (2, 3)), ('pi', (2,))]
    """

    kind: str = "hmm"
    """Name of the model class in :meth:`to_config` (absent for ``HMM`` itself)."""
    time_varying: bool = False
    """Whether the transition matrix changes from step to step (``log_A (..., N, T, K, K)``)."""
    transition_covariates: tuple[str, ...] = ()
    """Covariates the transitions depend on (none: one transition matrix)."""
    not_classical: str = ""
    """Why EM, Viterbi training and supervised counting (which update one ``pi`` and one ``A``
    from expected counts) do not apply to the model; empty when they do."""
    _KINDS: dict[str, type[HMM]] = {}  # noqa: RUF012

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:  # a subclass with a kind of its own: rebuilt by from_config
            HMM._KINDS[cls.kind] = cls

    def __init__(
        self,
        num_states: int,
        emission: Emission,
        prior: Prior | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.num_states = check_int("num_states", num_states, minimum=1)
        if not isinstance(emission, Emission):
            raise TypeError(
                "emission: expected an Emission such as Categorical(num_symbols=V), Gaussian() "
                f"or Poisson(), got {describe(emission)}"
            )
        num = self.num_states
        size = num + num**2 + sum(math.prod(s) for s in emission.param_shapes(num).values())
        if size > MAX_PARAMETERS:
            raise ValueError(
                f"num_states, emission: {num} states with {emission!r} have {size:.3g} "
                f"parameters; at most {MAX_PARAMETERS:.0e} are supported"
            )
        if prior is None:
            prior = Prior()
        if not isinstance(prior, Prior):
            raise TypeError(f"prior: expected a hmm_pyro.Prior, got {describe(prior)}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
        self.emission = emission
        self.prior = prior
        self.dtype = dtype
        # Resolve once so that a prior of the wrong shape fails here, not inside a sampler.
        self._prior_distributions = self._build_prior_distributions()

    # ------------------------------------------------------------------ description
    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the parameters (Pyro sample sites), in model order."""
        return ("pi", "A", *self.emission.param_names)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each parameter of one draw."""
        num = self.num_states
        return {"pi": (num,), "A": (num, num), **self.emission.param_shapes(num)}

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        """ArviZ dimension names of each parameter."""
        return {"pi": ("state",), "A": ("state", "state_to"), **self.emission.param_dims()}

    @property
    def simplex_params(self) -> tuple[str, ...]:
        """Parameters whose rows are probability vectors: ``pi``, ``A`` and the emission's."""
        return ("pi", "A", *self.emission.simplex_params)

    def param_coords(self) -> dict[str, list[Any]]:
        """Coordinate values of parameter dimensions that are not ``0 .. n-1`` (ArviZ)."""
        return self.emission.param_coords()

    def potential_coordinates(self) -> dict[str, str]:
        """Kind of the NUTS/MAP coordinates of each parameter (:mod:`hmm_pyro.inference`).

        ``pi`` and the rows of ``A`` by stick-breaking, the emission's as it names them
        (:meth:`~hmm_pyro.emissions.Emission.potential_coordinates`).
        """
        return {"pi": "simplex", "A": "simplex", **self.emission.potential_coordinates()}

    def bijection(self, name: str) -> Any:
        """The transform of a parameter of coordinate kind ``"bijection"``."""
        return self.emission.bijection(name)

    def derived_params(self, params: Params) -> Params:
        """Deterministic functions of the parameters stored beside them in a fit's posterior.

        None for ``HMM``; a :class:`~hmm_pyro.MultilevelHMM` returns each subject's parameters.
        Shapes ``(..., *shape)`` with the dimensions of :meth:`derived_dims`.
        """
        return {}

    def repeated(self, copies: int) -> HMM:
        """The model of its data repeated ``copies`` times (all sequences, then all again).

        The same model for ``HMM``; a model tied to its sequences
        (:class:`~hmm_pyro.MultilevelHMM`) maps every copy of a sequence to its subject.
        """
        check_int("copies", copies, minimum=1)
        return self

    def derived_dims(self) -> dict[str, tuple[str, ...]]:
        """ArviZ dimension names of each entry of :meth:`derived_params`."""
        return {}

    def dirichlet_concentrations(self) -> dict[str, torch.Tensor]:
        """Concentrations of the Dirichlet priors of ``pi`` and the rows of ``A``."""
        num = self.num_states
        return {
            "pi": self.prior.resolve_initial(num, self.dtype),
            "A": self.prior.resolve_transitions(num, self.dtype),
        }

    def potential_terms(self, data: Sequences) -> Any:
        """The emission family's numba log joint (``None``: the potential runs in torch)."""
        return self.emission.potential_terms(self.prior, self.num_states, self.dtype, data)

    def num_free_params(self, initial: str = "free") -> int:
        """Free parameters of one draw: every entry, less one per probability row.

        ``(K - 1) + K (K - 1)`` for ``pi`` and ``A``, plus
        :meth:`~hmm_pyro.emissions.Emission.num_free_params` of the emission.

        Parameters
        ----------
        initial : {"free", "stationary"}
            ``"stationary"``: ``pi`` is the stationary distribution of ``A`` (as fitted by
            ``fit_em(..., initial="stationary")``), so its ``K - 1`` entries are not free.

        Returns
        -------
        int
        """
        check_choice("initial", initial, INITIAL_MODES)
        num = self.num_states
        free_pi = num - 1 if initial == "free" else 0
        return free_pi + num * (num - 1) + self.emission.num_free_params(num)

    def to_config(self) -> dict[str, Any]:
        """JSON-serialisable description; :meth:`from_config` inverts it."""
        return {
            "num_states": self.num_states,
            "emission": self.emission.to_config(),
            "prior": self.prior.to_dict(),
            "dtype": str(self.dtype).replace("torch.", ""),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> HMM:
        """Rebuild an ``HMM`` (or the subclass its ``kind`` names) from :meth:`to_config` output."""
        kind = config.get("kind", "hmm")
        if kind != "hmm":
            if kind not in HMM._KINDS:
                raise ValueError(
                    f"config: unknown model kind {kind!r} (known: {sorted(HMM._KINDS)}; a "
                    "kind is known once its module is imported, e.g. hmm_pyro.covariate_model)"
                )
            return HMM._KINDS[kind]._from_config(config)
        return cls(
            num_states=config["num_states"],
            emission=from_config(config["emission"]),
            prior=Prior(**config["prior"]),
            dtype=getattr(torch, config.get("dtype", "float64")),
        )

    def with_prior(self, prior: Prior) -> HMM:
        """Return the same model with another prior."""
        return HMM(self.num_states, self.emission, prior, self.dtype)

    def __repr__(self) -> str:
        return (
            f"HMM(num_states={self.num_states}, emission={self.emission!r}, prior={self.prior!r})"
        )

    # ------------------------------------------------------------------ prior
    def _build_prior_distributions(self) -> dict[str, dist.TorchDistribution]:
        num = self.num_states
        dtype = self.dtype
        return {
            "pi": dist.Dirichlet(self.prior.resolve_initial(num, dtype)),
            "A": dist.Dirichlet(self.prior.resolve_transitions(num, dtype)).to_event(1),
            **self.emission.prior_distributions(self.prior, num, dtype),
        }

    def prior_distributions(self) -> dict[str, dist.TorchDistribution]:
        """Prior of each parameter (each distribution's event is the whole parameter)."""
        return dict(self._prior_distributions)

    def sample_prior(self, num_samples: int | None = None, seed: int | None = None) -> Params:
        """Draw parameters from the prior.

        Parameters
        ----------
        num_samples : int, optional
            Number of draws; omitted gives one draw without a leading dimension.
        seed : int, optional
            Seed for reproducible draws.

        Returns
        -------
        dict of torch.Tensor
        """
        shape = () if num_samples is None else (check_int("num_samples", num_samples, 1),)
        generator = make_generator(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31 - 1, (), generator=generator)))
            return {name: d.sample(shape) for name, d in self._prior_distributions.items()}

    def log_prior(self, params: Params) -> torch.Tensor:
        """Log prior density of ``params``, summed over sites: shape = the draws' batch shape."""
        return sum(self.log_prior_terms(params).values())

    def log_prior_terms(self, params: Params) -> dict[str, torch.Tensor]:
        """Log prior density of each parameter separately (for power-scaling sensitivity)."""
        params = self.validate_params(params)
        return {name: d.log_prob(params[name]) for name, d in self._prior_distributions.items()}

    # ------------------------------------------------------------------ validation
    def validate_params(self, params: Params) -> Params:
        """Check a parameter dict and return it as tensors of ``self.dtype``.

        Raises
        ------
        ValueError, TypeError
            Naming the offending key, with the expected and actual shape or value.
        """
        if not isinstance(params, dict):
            raise TypeError(f"params: expected a dict of tensors, got {describe(params)}")
        converted = {}
        for name in self.param_names:
            if name not in params:
                raise ValueError(
                    f"params: expected keys {list(self.param_names)}, missing {name!r}"
                )
            try:
                converted[name] = torch.as_tensor(params[name], dtype=self.dtype)
            except (TypeError, ValueError, RuntimeError) as error:
                raise TypeError(
                    f"params[{name!r}]: expected numbers, got {describe(params[name])}"
                ) from error
        self._check_transition_params(converted)
        self.emission.validate_params(converted, self.num_states)
        self.batch_shape(converted)
        return converted

    def _check_transition_params(self, converted: Params) -> None:
        """Check the shapes and values of ``pi`` and ``A`` (probability rows)."""
        shapes = self.param_shapes()
        for name in ("pi", "A"):
            self._check_probabilities(name, converted[name], shapes[name])

    def _check_probabilities(self, name: str, value: torch.Tensor, shape: tuple[int, ...]) -> None:
        """Raise unless ``value`` has trailing ``shape`` and rows that are probabilities."""
        if value.dim() < len(shape) or tuple(value.shape[value.dim() - len(shape) :]) != shape:
            raise ValueError(
                f"params[{name!r}]: expected trailing shape {shape}, got {describe(value)}"
            )
        if _numba.probability_rows(value, _SIMPLEX_ATOL):  # certainly passes the check below
            return
        ok = torch.isfinite(value).all() and (value >= 0).all()
        if not ok or not torch.allclose(
            value.sum(-1), torch.ones((), dtype=self.dtype), atol=_SIMPLEX_ATOL
        ):
            raise ValueError(
                f"params[{name!r}]: expected probabilities (rows non-negative and summing "
                f"to 1 within {_SIMPLEX_ATOL})"
            )

    def batch_shape(self, params: Params) -> torch.Size:
        """Broadcast leading (draw) shape of a parameter dict."""
        shapes = self.param_shapes()
        leading = [
            value.shape[: value.dim() - len(shapes[name])]
            for name, value in params.items()
            if name in shapes
        ]
        if all(shape == leading[0] for shape in leading):  # one shape (most often none)
            return leading[0] if leading else torch.Size()
        try:
            return torch.broadcast_shapes(*leading)
        except RuntimeError as error:
            raise ValueError(
                f"params: leading (draw) dimensions do not broadcast: {[tuple(s) for s in leading]}"
            ) from error

    def prepare_data(self, data: SequencesLike) -> Sequences:
        """Return ``data`` as :class:`Sequences`, validated for this model's emission family."""
        sequences = as_sequences(data)
        names = sequences.symbols
        if names is not None and names != self.emission.symbol_names:
            shown = f"{list(names)[:5]}{' ...' if len(names) > 5 else ''}"
            raise ValueError(
                f"data: holds named symbols {shown} (text values), which {self.emission!r} does "
                "not name; fit them with Categorical(num_symbols, symbols=data.symbols)"
            )
        checked = getattr(sequences, "_checked_for", None)
        if checked is None:
            checked = set()
            sequences._checked_for = checked
        if self.emission not in checked:
            self.emission.validate_data(sequences)
            checked.add(self.emission)
        return sequences

    # ------------------------------------------------------------------ kernel inputs
    def kernel_inputs(
        self, params: Params, data: Sequences
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log_pi (..., 1, K), log_A (..., 1, K, K), log_lik (..., N, T, K), lengths (N,))``.

        ``params`` must already be valid (see :meth:`validate_params`).
        """
        log_pi = safe_log(params["pi"]).unsqueeze(-2)
        log_A = safe_log(params["A"]).unsqueeze(-3)
        table = self.emission.log_likelihood_table(params, data)
        return log_pi, log_A, table, data.lengths

    def _map_draws(
        self, params: Params, data: Sequences, func: Callable[..., Any], width: int
    ) -> Any:
        """Apply ``func(*kernel_inputs)`` over chunks of draws; concatenate along the batch."""
        return self._map_params(
            params,
            data,
            lambda part: func(*self.kernel_inputs(part, data), time_varying=self.time_varying),
            width,
        )

    def _map_params(
        self, params: Params, data: Sequences, func: Callable[[Params], Any], width: int
    ) -> Any:
        """Apply ``func(params)`` over chunks of draws; concatenate along the batch."""
        batch = self.batch_shape(params)
        per_draw = data.num_sequences * data.max_length * width
        chunk = max(1, _CHUNK_ELEMENTS // max(per_draw, 1))
        total = batch.numel()
        if len(batch) == 0 or total <= chunk:
            return func(params)
        shapes = self.param_shapes()
        flat = {
            name: params[name].expand(*batch, *shapes[name]).reshape(total, *shapes[name])
            for name in self.param_names
        }
        pieces = []
        for start in range(0, total, chunk):
            part = {name: value[start : start + chunk] for name, value in flat.items()}
            pieces.append(func(part))
        if isinstance(pieces[0], tuple):
            joined = tuple(torch.cat(parts, 0) for parts in zip(*pieces, strict=True))
            return tuple(part.reshape(*batch, *part.shape[1:]) for part in joined)
        joined = torch.cat(pieces, 0)
        return joined.reshape(*batch, *joined.shape[1:])

    # ------------------------------------------------------------------ inference on states
    def log_likelihood(self, params: Params, data: SequencesLike) -> torch.Tensor:
        """Log marginal likelihood of each sequence, hidden states summed out.

        The emission family's route (:meth:`Emission.sequence_log_likelihood`): for one
        categorical parameter set on the CPU, the symbols without an ``(N, T, K)`` table.

        Parameters
        ----------
        params : dict of torch.Tensor
            Parameters, optionally with leading draw dimensions ``(...)``.
        data : Sequences or array-like
            ``N`` sequences.

        Returns
        -------
        torch.Tensor
            ``(..., N)``.
        """
        params = self.validate_params(params)
        data = self.prepare_data(data)
        width = self.num_states**2
        return self._map_params(
            params, data, lambda part: self.sequence_log_likelihood(part, data), width
        )

    def sequence_log_likelihood(
        self, params: Params, data: Sequences, logs: Params | None = None
    ) -> torch.Tensor:
        """Log likelihood of each sequence, ``(..., N)``, without validation or chunking.

        The one route every likelihood-only consumer takes (:meth:`log_likelihood`, the Pyro
        model, streaming SVI): the emission family's
        :meth:`~hmm_pyro.emissions.Emission.sequence_log_likelihood`, which for one categorical
        parameter set on the CPU looks the symbols up without an ``(N, T, K)`` table.
        ``params`` must be valid and ``data`` prepared (:meth:`prepare_data`). ``logs`` may
        hold ``log pi`` and ``log A`` computed in log space (the NUTS/MAP coordinates); those
        it lacks are Pyro's ``safe_log`` of ``params``, taken by the family (the categorical
        kernel takes them inside its autograd node).
        """
        logs = logs or {}
        return self.emission.sequence_log_likelihood(logs.get("pi"), logs.get("A"), params, data)

    def transition_matrices(self, params: Params, rows: torch.Tensor) -> torch.Tensor:
        """Transition matrices at ``M`` rows of :attr:`transition_covariates`: ``(..., M, K, K)``.

        ``rows (M, P)`` holds standardised covariate values (``P = 0`` here: ``A`` repeated).
        """
        if rows.dim() != 2 or rows.shape[1] != len(self.transition_covariates):
            raise ValueError(
                f"rows: expected (M, {len(self.transition_covariates)}) covariate values, got "
                f"{describe(rows)}"
            )
        return params["A"].unsqueeze(-3).expand(*params["A"].shape[:-2], rows.shape[0], -1, -1)

    def chain_probabilities(
        self, params: Params, covariates: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The chain's initial distribution and transition matrix of one parameter set.

        Returns ``pi (K,)`` and ``A (K, K)``; a model with covariates returns them per
        sequence and step (``(N, K)`` and ``(N, T, K, K)``). ``covariates`` are ignored here.
        """
        return params["pi"], params["A"]

    def posterior_marginals(self, params: Params, data: SequencesLike) -> torch.Tensor:
        """Smoothed state probabilities ``p(z_t = k | y, params)``: ``(..., N, T, K)``.

        Zero at padded steps of shorter sequences.
        """
        params = self.validate_params(params)
        data = self.prepare_data(data)
        return self._map_draws(params, data, kernels.posterior_marginals, self.num_states**2)

    def forward_backward(self, params: Params, data: SequencesLike) -> kernels.ForwardBackward:
        """One forward-backward pass: log likelihood, smoothed marginals, expected transitions.

        Shapes: ``(..., N)``, ``(..., N, T, K)`` and ``(..., N, K, K)``.

        One forward-backward pass per draw and sequence (see :func:`kernels.forward_backward`).
        """
        params = self.validate_params(params)
        data = self.prepare_data(data)
        result = self._map_draws(params, data, kernels.forward_backward, self.num_states**2)
        return kernels.ForwardBackward(*result)

    def viterbi(self, params: Params, data: SequencesLike) -> tuple[torch.Tensor, torch.Tensor]:
        """Most probable state paths and their log joint probabilities.

        Returns
        -------
        paths : torch.Tensor
            ``(..., N, T)`` int64, ``-1`` at padded steps.
        scores : torch.Tensor
            ``(..., N)`` ``log p(z*, y)``.
        """
        params = self.validate_params(params)
        data = self.prepare_data(data)
        return self._map_draws(params, data, kernels.viterbi, self.num_states**2)

    def sample_paths(
        self, params: Params, data: SequencesLike, num_samples: int = 1, seed: int | None = None
    ) -> torch.Tensor:
        """Draw whole state paths from ``p(z | y, params)`` by forward filtering, backward sampling.

        Returns
        -------
        torch.Tensor
            ``(num_samples, ..., N, T)`` int64, ``-1`` at padded steps.
        """
        params = self.validate_params(params)
        data = self.prepare_data(data)
        num_samples = check_int("num_samples", num_samples, minimum=1)
        generator = make_generator(seed)
        return kernels.sample_paths(
            *self.kernel_inputs(params, data),
            num_samples=num_samples,
            generator=generator,
            time_varying=self.time_varying,
        )

    def sample_observations(
        self,
        params: Params,
        states: torch.Tensor,
        generator: torch.Generator,
        covariates: Any = None,
    ) -> torch.Tensor:
        """Observations ``(N, T, D)`` of one parameter set given state paths ``(N, T)``.

        The emission family's :meth:`~hmm_pyro.emissions.Emission.sample_with_covariates`
        (``covariates``: the sequences' :class:`~hmm_pyro.Covariates`, read by an emission
        regression); a model with parameters per sequence (:class:`~hmm_pyro.MultilevelHMM`)
        draws each with its own.
        """
        return self.emission.sample_with_covariates(params, states, generator, covariates)

    # ------------------------------------------------------------------ Pyro models
    def sample_params(self) -> Params:
        """Declare the parameter sample sites inside a Pyro model and return their values."""
        return {name: pyro.sample(name, d) for name, d in self._prior_distributions.items()}

    def model(self, data: SequencesLike, marginalize: str = "forward") -> None:
        """The Pyro model: parameter sites ``pi``, ``A`` and the emission parameters.

        Parameters
        ----------
        data : Sequences or array-like
            Observations. Pass a :class:`Sequences` to avoid re-validating on every call.
        marginalize : {"forward", "enumerate"}
            ``"forward"`` adds the log likelihood from the parallel forward algorithm as a
            ``pyro.factor`` per sequence (fast; for NUTS and SVI). ``"enumerate"`` writes the
            classic ``pyro.markov`` model with enumerated discrete states ``z_t`` and observed
            sites ``y_t`` for ``TraceEnum_ELBO`` and ``infer_discrete``
            (``max_plate_nesting=1``). Both define the same joint density of parameters and data.
        """
        check_choice("marginalize", marginalize, MARGINALIZE_METHODS)
        data = self.prepare_data(data)
        params = self.sample_params()
        if marginalize == "forward":
            log_lik = self.sequence_log_likelihood(params, data)
            with pyro.plate("sequences", data.num_sequences):
                pyro.factor("log_likelihood", log_lik)
        else:
            self._enumerated_likelihood(params, data)

    def _enumerated_likelihood(self, params: Params, data: Sequences) -> None:
        """The ``pyro.markov`` model's sites (:mod:`hmm_pyro._enumeration`)."""
        enumerated_likelihood(self, params, data)
