"""Families given by a Pyro distribution of per-state parameters: the generic torch route.

A :class:`DistributionEmission` declares three things: each parameter's constraint
(:meth:`~DistributionEmission.param_constraints`; the per-state shapes are
:meth:`~hmm_pyro.emissions.Emission.param_shapes`), the parameters' priors
(:meth:`~DistributionEmission.priors`) and the law of one step's observation in each state
(:meth:`~DistributionEmission.law`, any Pyro distribution). Everything else is derived:

- the ``(..., N, T, K)`` log-likelihood table is ``law.log_prob`` (autograd flows through it into
  the forward kernel, :func:`hmm_pyro.kernels.log_likelihood`);
- NUTS and MAP evaluate the potential in torch (:meth:`potential_terms` is ``None``) over
  Pyro's coordinates ``biject_to(constraint)`` (kind ``"bijection"``);
- simulation draws from ``law`` under a seed drawn from the caller's generator;
- classical learning maximises ``Q`` numerically (:func:`_lbfgs_maximize`, L-BFGS over the
  unconstrained coordinates of all states at once);
- distances between states are the Monte Carlo Bhattacharyya estimate of
  :meth:`DistributionEmission.bhattacharyya_estimate`, with its standard error
  (docs/degeneracy.md#distances-between-emission-laws).

A family may override any of these with something faster or exact (a closed-form M-step, a
closed-form distance), as :mod:`hmm_pyro.emissions.negative_binomial` does.

Laws. ``law(params)`` has batch shape ``(..., K)`` and event shape ``(D,)``, or ``()`` when
``D = 1``. A law that is a product over coordinates, ``base.to_event(1)`` with ``base`` of
batch shape ``(..., K, D)``, lets missing coordinates drop out one by one; any other law of a
``D``-vector needs each step observed whole or not at all.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable

import pyro
import pyro.distributions as dist
import torch
from torch.distributions import biject_to, constraints
from torch.distributions.constraints import Constraint
from torch.distributions.transforms import Transform

from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.emissions.base import STATISTICS_DTYPE, Emission
from hmm_pyro.emissions.statistics import _STATISTICS_CACHE
from hmm_pyro.priors import Prior

__all__ = ["MC_SAMPLES", "MC_SEED", "DistributionEmission", "sampled"]

MC_SAMPLES = 256
"""Draws per state of the Monte Carlo Bhattacharyya estimate. Its standard error is at most
``sqrt(1 / (8 n)) = 0.022`` for any pair and shrinks with the distance: about ``H2 / sqrt(n)``
for small squared Hellinger distances ``H2`` (0.003 at the collapse threshold 0.05), and 0 for
equal laws (docs/degeneracy.md#distances-between-emission-laws)."""
MC_SEED = 0
"""Seed of the Monte Carlo draws: the same parameters always get the same distances."""
_MC_CHUNK = 2**22
"""Largest ``n x draws x K x K`` block of log densities held at once (32 MiB in float64)."""
_LBFGS_ITERATIONS = 500
_UPDATE_ITERATIONS = 4
"""L-BFGS iterations of an M-step that starts at the current parameters (an EM update): a
generalised EM step (Dempster, Laird and Rubin 1977), which only has to increase ``Q`` plus
the log prior, from a start that the previous update left close to the new maximiser. EM keeps
its fixed points (where the gradient vanishes L-BFGS does not move) and its monotone objective
(the strong-Wolfe line search only accepts decreases of the loss). Measured on the diagnostics'
refits of a two-state Student-t fit (500 steps): 5.6 objective evaluations per update against
28 for runs to convergence, diagnose 14.4 -> 3.6 s CPU."""
_LBFGS_TOLERANCE_GRAD = 1e-11
"""Stop the numerical M-step when every coordinate of the gradient of ``Q / (total weight + 1)``
is below this."""


def sampled(
    law: dist.TorchDistribution, generator: torch.Generator, shape: tuple[int, ...] = ()
) -> torch.Tensor:
    """``law.sample(shape)`` with torch's global generator seeded from ``generator``.

    Pyro's samplers use the global generator; this draws its seed from ``generator`` and
    restores the global state afterwards, so that results follow the caller's seed.
    """
    seed = int(torch.randint(2**62, (), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return law.sample(torch.Size(shape))


def _is_coordinatewise(law: dist.TorchDistribution) -> bool:
    """Whether ``law`` is ``base.to_event(1)``: independent coordinates in the last batch axis."""
    return isinstance(law, torch.distributions.Independent) and law.reinterpreted_batch_ndims == 1


class DistributionEmission(Emission):
    """An emission family given by a Pyro distribution of its per-state parameters.

    Subclasses define :meth:`law`, :meth:`param_constraints`, :meth:`priors` and the
    descriptions of :class:`~hmm_pyro.emissions.Emission` (``dim``, ``param_shapes``,
    ``to_config``, ``prior_hyperparameters``); see the module notes for what is derived.

    Attributes
    ----------
    num_mc_samples : int
        Draws per state of the Monte Carlo distance estimate (:data:`MC_SAMPLES`).
    """

    num_mc_samples: int = MC_SAMPLES

    # ------------------------------------------------------------------ what a family declares
    @abstractmethod
    def law(self, params: Params) -> dist.TorchDistribution:
        """Law of one step's observation in each state: batch ``(..., K)``, event ``(D,)``.

        Event ``()`` is allowed when ``D = 1``. Parameters carry leading draw dimensions.
        """

    @abstractmethod
    def param_constraints(self) -> dict[str, Constraint]:
        """Constraint of each parameter's entries, in :attr:`param_names` order."""

    @abstractmethod
    def priors(
        self, hyperparameters: Params, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """Prior of each parameter from :meth:`prior_hyperparameters` output.

        Each distribution's event is the whole parameter ``(K, *shape)``.
        """

    def fill_value(self) -> float:
        """Zero: written over missing entries; families whose laws exclude it override it."""
        return 0.0

    # ------------------------------------------------------------------ derived descriptions
    @property
    def positive_params(self) -> tuple[str, ...]:  # type: ignore[override]
        """Parameters constrained to be strictly positive (``constraints.positive``)."""
        return tuple(
            name
            for name, constraint in self.param_constraints().items()
            if isinstance(constraint, type(constraints.positive))
            and float(constraint.lower_bound) == 0.0
        )

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        """``"state"``, then ``"dim"`` for a ``(D,)`` parameter or ``"<name>_<axis>"``."""
        dims = {}
        for name, shape in self.param_shapes(1).items():
            rest = shape[1:]
            if len(rest) == 1 and rest[0] == self.dim and self.dim > 1:
                dims[name] = ("state", "dim")
            else:
                dims[name] = ("state", *(f"{name}_{axis}" for axis in range(len(rest))))
        return dims

    def num_free_params(self, num_states: int) -> int:
        """Unconstrained coordinates of all parameters (``biject_to`` of each constraint)."""
        return sum(
            math.prod(self.bijection(name).inverse_shape(torch.Size(shape)))
            for name, shape in self.param_shapes(num_states).items()
        )

    def prior_distributions(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """:meth:`priors` of the resolved :meth:`prior_hyperparameters`."""
        return self.priors(self.prior_hyperparameters(prior, num_states, dtype), num_states, dtype)

    def reference_params(self, num_states: int = 1) -> Params:
        """float64 parameters at unconstrained coordinates zero (e.g. ``rate = 1``)."""
        params = {}
        for name, shape in self.param_shapes(num_states).items():
            transform = self.bijection(name)
            zeros = torch.zeros(transform.inverse_shape(torch.Size(shape)), dtype=torch.float64)
            params[name] = transform(zeros)
        return params

    def observation_support(self) -> Constraint:
        """Support of one observed entry (elementwise for laws over independent coordinates)."""
        law = self.law(self.reference_params())
        return law.base_dist.support if _is_coordinatewise(law) else law.support

    # ------------------------------------------------------------------ data
    def validate_data(self, data: Sequences) -> None:
        """Require the dimension and values in the law's support.

        A joint law of a vector also needs each step observed whole or not at all.
        """
        self._check_dim(data)
        law = self.law(self.reference_params())
        values = data.values[data.mask]  # (steps, D), NaN where missing
        observed = ~torch.isnan(values)
        if _is_coordinatewise(law) or self.dim == 1:
            entries, support = values[observed], self.observation_support()
        else:
            partial = observed.any(-1) & ~observed.all(-1)
            if bool(partial.any()):
                raise ValueError(
                    f"data: {self!r} has a joint law of each step's {self.dim} values; a step "
                    "with some of them missing cannot be scored (drop or fill the step)"
                )
            entries, support = values[observed.all(-1)], law.support
        if entries.numel() == 0 or constraints.is_dependent(support):
            return
        inside = support.check(entries)
        if not bool(inside.all()):
            bad = entries[~inside].flatten()[0].item() if inside.shape == entries.shape else None
            shown = f", got {bad}" if bad is not None else ""
            raise ValueError(f"data: expected values in the support of {self!r} ({support}){shown}")

    # ------------------------------------------------------------------ likelihood
    def _log_prob_elementwise(self, params: Params, values: torch.Tensor) -> torch.Tensor:
        """``(..., N, T, K, D)`` for independent coordinates, else ``(..., N, T, K, 1)``."""
        shapes = self.param_shapes(1)
        law = self.law(  # parameters (..., 1, 1, K, *shape) against values (N, T, 1, D)
            {
                name: params[name].unsqueeze(-len(shape) - 1).unsqueeze(-len(shape) - 1)
                for name, shape in shapes.items()
            }
        )
        y = values.unsqueeze(-2)
        if _is_coordinatewise(law):
            return law.base_dist.log_prob(y)
        if law.event_shape == ():
            return law.log_prob(y[..., 0]).unsqueeze(-1)
        return law.log_prob(y).unsqueeze(-1)

    def log_likelihood_table(self, params: Params, data: Sequences) -> torch.Tensor:
        """``law.log_prob`` of every step in every state, ``(..., N, T, K)``; zero where missing.

        Missing entries are filled with :meth:`fill_value` (which must lie in the law's support,
        so that their masked scores and gradients stay finite) and then masked.
        """
        dtype = next(iter(params.values())).dtype
        scores = self._log_prob_elementwise(params, data.filled(self.fill_value(), dtype))
        if not data.complete:
            observed = data.observed
            if scores.shape[-1] != data.dim:  # one joint score per step
                observed = observed.any(-1, keepdim=True)
            scores = torch.where(observed.unsqueeze(-2), scores, torch.zeros((), dtype=dtype))
        return scores.sum(-1)

    def _state_law(self, params: Params, states: torch.Tensor) -> dist.TorchDistribution:
        return self.law({name: params[name][states] for name in self.param_names})

    def conditional(
        self, params: Params, states: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        """``law`` of ``states``, masked where (or, for a joint law, when) not observed."""
        law = self._state_law(params, states)
        if _is_coordinatewise(law):
            return law.base_dist.mask(observed).to_event(1)
        return law.mask(observed.any(-1))

    def observation(self, values: torch.Tensor) -> torch.Tensor:
        """One step's values ``(N, D)``, or ``(N,)`` for a law with scalar events."""
        law = self.law(self.reference_params())
        return values[..., 0] if law.event_shape == () else values

    def sample(
        self, params: Params, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Draw ``(*states.shape, D)`` observations from ``law`` (seeded by ``generator``)."""
        law = self._state_law(params, states)
        draws = sampled(law, generator)
        dtype = next(iter(params.values())).dtype
        return (draws.unsqueeze(-1) if law.event_shape == () else draws).to(dtype)

    # ------------------------------------------------------------------ summaries
    def location(self, params: Params) -> torch.Tensor:
        """Mean of the first coordinate: ``(..., K)``."""
        mean = self.law(params).mean
        return mean if mean.dim() == self._batch_dim(params) + 1 else mean[..., 0]

    def _batch_dim(self, params: Params) -> int:
        """Number of leading (draw) dimensions of ``params``."""
        name, shape = next(iter(self.param_shapes(1).items()))
        return params[name].dim() - len(shape)

    def _check_param_values(self, name: str, value: torch.Tensor) -> None:
        constraint = self.param_constraints()[name]
        inside = constraint.check(value)
        if not bool(inside.all()):
            shown = value[~inside].flatten()[0].item() if inside.shape == value.shape else "values"
            raise ValueError(f"params[{name!r}]: expected values in {constraint}, got {shown}")

    # ------------------------------------------------------------------ distances
    def bhattacharyya(self, params: Params) -> torch.Tensor:
        """The Monte Carlo estimate of :meth:`bhattacharyya_estimate`."""
        return self.bhattacharyya_estimate(params)[0]

    def bhattacharyya_estimate(self, params: Params) -> tuple[torch.Tensor, torch.Tensor]:
        """Monte Carlo Bhattacharyya coefficients and their standard errors, ``(..., K, K)``.

        With ``m = (p_i + p_j) / 2``, ``BC_ij = E_m[f]`` for
        ``f = sqrt(p_i p_j) / m = 1 / cosh((log p_i - log p_j) / 2)``, which lies in ``(0, 1]``.
        ``n = num_mc_samples`` draws from each state (seed :data:`MC_SEED`) give the stratified
        estimate ``(mean_{y ~ p_i} f + mean_{y ~ p_j} f) / 2``; its standard error, from the
        sample variances, is at most ``sqrt(1 / (8 n))`` (``f`` in ``[0, 1]``) and vanishes as
        the laws become equal (``f`` tends to 1). The diagonal is exactly 1 and equal states give
        exactly 1.

        Returns
        -------
        estimate, standard_error : torch.Tensor
        """
        flat, batch, num_states = self._flat_draws(params)
        size = self.num_mc_samples
        total = next(iter(flat.values())).shape[0]
        chunk = max(1, _MC_CHUNK // (size * num_states * num_states))
        estimates, errors = [], []
        generator = torch.Generator().manual_seed(MC_SEED)
        with torch.no_grad():
            for start in range(0, total, chunk):
                part = {name: value[start : start + chunk] for name, value in flat.items()}
                law = self.law(part)  # batch (c, K)
                draws = sampled(law, generator, (size,))  # (n, c, K, *event)
                event = len(law.event_shape)
                at = self.law({name: value.unsqueeze(1) for name, value in part.items()})
                scores = at.log_prob(draws.unsqueeze(-1 - event))  # (n, c, K_from, K_at)
                own = torch.diagonal(scores, dim1=-2, dim2=-1).unsqueeze(-1)
                values = 1.0 / torch.cosh(0.5 * (own - scores))
                values = torch.where(torch.isnan(values), 0.0, values)
                mean, var = values.mean(0), values.var(0)
                estimates.append(0.5 * (mean + mean.transpose(-1, -2)))
                errors.append(0.5 * ((var + var.transpose(-1, -2)) / size).sqrt())
        estimate = torch.cat(estimates).reshape(*batch, num_states, num_states)
        error = torch.cat(errors).reshape(*batch, num_states, num_states)
        return estimate.clamp(0.0, 1.0), error

    def _flat_draws(self, params: Params) -> tuple[Params, torch.Size, int]:
        """Parameters with their draw dimensions broadcast and flattened: ``(B, K, *shape)``."""
        shapes = self.param_shapes(1)
        leading = [  # draw dimensions and K
            params[name].shape[: params[name].dim() - len(shape) + 1]
            for name, shape in shapes.items()
        ]
        batch = torch.broadcast_shapes(*(lead[:-1] for lead in leading))
        num_states = leading[0][-1]
        flat = {}
        for name, shape in shapes.items():
            full = (*batch, num_states, *shape[1:])
            flat[name] = params[name].expand(full).reshape(-1, num_states, *shape[1:])
        return flat, batch, num_states

    # ------------------------------------------------------------------ point estimation
    def weighted_statistics(self, data: Sequences, weights: torch.Tensor) -> Params:
        """The observed steps and their state weights (the numerical M-step's input).

        ``values (M, D)`` filled at missing entries, ``observed (M, D)`` (1.0 where observed)
        and ``weights (M, K)`` over the ``M`` steps with an observed entry.
        """

        def build() -> tuple[torch.Tensor, ...]:
            observed = data.observed.reshape(-1, data.dim)
            index = torch.nonzero(observed.any(-1)).squeeze(-1)
            values = data.filled(self.fill_value(), STATISTICS_DTYPE).reshape(-1, data.dim)
            return index, values[index], observed[index].to(STATISTICS_DTYPE)

        key = (_STATISTICS_CACHE, "steps", self.fill_value())
        index, values, observed = data.cached(key, build)
        return {"values": values, "observed": observed, "weights": weights[index]}

    def maximize(
        self,
        statistics: Params,
        hyperparameters: Params,
        previous: Params | None,
        use_prior: bool,
    ) -> Params:
        """Numerical M-step: L-BFGS on ``Q`` (plus the log prior) over unconstrained coordinates.

        Starts at ``previous`` (else :meth:`start_for_maximize`) and runs to convergence
        without ``previous``; from ``previous`` (an EM update) it stops after
        :data:`_UPDATE_ITERATIONS` iterations, a generalised EM step. Without the prior, a state
        without weight keeps its previous value (NaN when ``previous`` is ``None``).
        """
        weights = statistics["weights"]
        num_states = weights.shape[1]
        start = previous if previous is not None else self.start_for_maximize(statistics)
        priors = self.priors(hyperparameters, num_states, STATISTICS_DTYPE) if use_prior else {}

        def objective(params: Params) -> torch.Tensor:
            return self.weighted_log_density(params, statistics)

        iterations = _LBFGS_ITERATIONS if previous is None else _UPDATE_ITERATIONS
        result = _lbfgs_maximize(self, objective, start, priors, float(weights.sum()), iterations)
        if use_prior:
            return result
        empty = weights.sum(0) <= 0  # (K,)
        for name, value in result.items():
            old = (
                torch.full_like(value, float("nan"))
                if previous is None
                else previous[name].to(STATISTICS_DTYPE)
            )
            mask = empty.reshape(-1, *([1] * (value.dim() - 1)))
            result[name] = torch.where(mask, old, value)
        return result

    def weighted_log_density(self, params: Params, statistics: Params) -> torch.Tensor:
        """``Q = sum_m sum_k w[m, k] log p(y_m | params_k)`` over the observed entries."""
        scores = self._log_prob_elementwise(params, statistics["values"].unsqueeze(0))[0]
        observed = statistics["observed"]
        if scores.shape[-1] != observed.shape[-1]:
            observed = observed.amax(-1, keepdim=True)
        scores = torch.where(observed.unsqueeze(-2) > 0, scores, 0.0).sum(-1)  # (M, K)
        return (scores * statistics["weights"]).sum()

    def start_for_maximize(self, statistics: Params) -> Params:
        """Start of the numerical M-step without previous parameters: :meth:`reference_params`."""
        return self.reference_params(statistics["weights"].shape[1])

    def pooled_params(self, data: Sequences) -> Params:
        """The maximum-likelihood one-state fit (the M-step with unit weights, no prior)."""
        weights = data.mask.reshape(-1, 1).to(STATISTICS_DTYPE)
        return self.maximize(self.weighted_statistics(data, weights), {}, None, use_prior=False)

    # ------------------------------------------------------------------ potential (NUTS/MAP)
    def potential_coordinates(self) -> dict[str, str]:
        """Every parameter by ``"bijection"``: Pyro's ``biject_to`` of its constraint."""
        return {name: "bijection" for name in self.param_names}

    def bijection(self, name: str) -> Transform:
        """``biject_to(constraint)`` of parameter ``name``."""
        constraint = self.param_constraints().get(name)
        if constraint is None:
            return super().bijection(name)
        return biject_to(constraint)


def _lbfgs_maximize(
    emission: DistributionEmission,
    objective: Callable[[Params], torch.Tensor],
    start: Params,
    priors: dict[str, dist.TorchDistribution],
    total_weight: float,
    iterations: int = _LBFGS_ITERATIONS,
) -> Params:
    """Maximise ``objective(params) + sum of prior log densities`` by L-BFGS (``iterations``).

    Over the unconstrained coordinates of :meth:`DistributionEmission.bijection`, in float64,
    with ``Q`` divided by ``total_weight + 1`` (the maximiser is unchanged; the gradient
    tolerance becomes per unit of weight).
    """
    transforms = {name: emission.bijection(name) for name in emission.param_names}
    coords = {
        name: transforms[name].inv(start[name].detach().to(STATISTICS_DTYPE))
        for name in emission.param_names
    }
    coords = {name: value.clone().requires_grad_() for name, value in coords.items()}
    scale = 1.0 / (total_weight + 1.0)

    def loss() -> torch.Tensor:
        params = {name: transforms[name](value) for name, value in coords.items()}
        value = objective(params)
        for name, prior in priors.items():
            value = value + prior.log_prob(params[name])
        return -value * scale

    optimizer = torch.optim.LBFGS(
        list(coords.values()),
        lr=1.0,
        max_iter=iterations,
        max_eval=2 * iterations,
        tolerance_grad=_LBFGS_TOLERANCE_GRAD,
        tolerance_change=1e-16,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = loss()
        value.backward()
        return value

    with torch.enable_grad(), pyro.validation_enabled(False):  # line searches may overflow
        optimizer.step(closure)
    return {name: transforms[name](value.detach()) for name, value in coords.items()}
