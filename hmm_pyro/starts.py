"""Symmetry-breaking starting points for NUTS chains and SVI, MAP and EM restarts.

Identical states get identical gradients (the log density is invariant under relabelling), so an
optimiser or EM started with all states equal never separates them. Pyro's ``AutoDelta``
default (``init_to_median``; ``init_to_feasible`` for Dirichlet rows) starts exactly there. Every
start drawn here is checked: the smallest squared Hellinger distance between two states'
emission laws must exceed :data:`MIN_START_SEPARATION`, else it is redrawn.

Data-driven starts do not depend on the prior's spread: a strong symmetric emission prior
(e.g. ``Dirichlet(100, 100)`` rows on 2 symbols, whose draws are all within about 0.04 of
``(0.5, 0.5)``) makes prior draws nearly identical, but a start need not be a likely draw, only
a point with distinct states. Emission parameters that the family cannot place from the data
itself (:meth:`~hmm_pyro.emissions.Emission.start_from_data` returns nothing for categorical
rows) come from :func:`window_start`: contiguous windows of the data are clustered by their
own emission fits (e.g. symbol histograms).

Layer rule: ``starts`` imports only ``model`` and the layers below it. The ``"em"`` start needs
the EM of :mod:`hmm_pyro.learning` (a layer above), which passes its own refinement in
(:func:`hmm_pyro.learning.initial_params`); runners call that function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from hmm_pyro._random import make_generator
from hmm_pyro._types import Params
from hmm_pyro._validation import check_choice, describe
from hmm_pyro.data import Sequences
from hmm_pyro.model import HMM

__all__ = [
    "INIT_METHODS",
    "MIN_START_SEPARATION",
    "initial_params",
    "min_separation",
    "window_start",
]

INIT_METHODS = ("auto", "prior", "data", "em")
MIN_START_SEPARATION = 1e-3
"""Smallest acceptable squared Hellinger distance between two states at a start (about a 0.09
standard-deviation gap between unit Gaussians): below it the start is numerically symmetric."""
_MAX_TRIES = 20
EM_INIT_ITERATIONS = 30
"""EM updates of the ``"em"`` start (a short run from a ``"data"`` start, not a full fit)."""
WINDOWS = 200
"""At most this many windows (evenly spaced over the data) are clustered by :func:`window_start`:
a few hundred emission fits on at most 2,000 steps and one ``(W + K)^2`` distance matrix,
milliseconds whatever the size of the data."""
_WINDOW_STEPS = 10
"""Target steps per window: enough for a rough histogram, short next to typical dwell times."""
_CLUSTER_ITERATIONS = 5
"""Lloyd iterations (assign windows to the nearest centre, refit the centres) after seeding."""
_FLOOR = 0.1
"""Weight of the uniform law mixed into the rows of a probability parameter of a window start:
the start lies well inside the simplex (every entry at least ``0.1 / V``), so that NUTS and
L-BFGS do not start at the far ends of their stick-breaking coordinates, where histograms of a
few steps (with their many zeros) would put them."""
_EXAGGERATION = 2.0
"""Clustered rows are moved twice as far from the pooled row (as far as the simplex allows):
the histograms of short windows mix neighbouring states, so cluster centres lie closer
together than the states' laws, and starts too close together invite optimisers to merge
states. Measured on the reference workload (3 states, 5 symbols), 20 L-BFGS MAP restarts each:
5 x 200 symbols, 19 reached the best optimum (16 without the exaggeration, 16 from prior
draws); 40 x 50 symbols, 20 (18 without, 20 from prior draws)."""
_SPREAD_FACTORS = (2.0, 4.0, 8.0, 16.0)
"""Factors by which rows too alike are pushed away from the pooled row (as far as the simplex
allows) before a window start gives up."""


def min_separation(hmm: HMM, params: Params) -> torch.Tensor:
    """Smallest pairwise squared Hellinger distance between states: shape = draws' batch shape.

    ``1.0`` when there is a single state (nothing can collapse).
    """
    distances = hmm.emission.hellinger(params)
    num = hmm.num_states
    if num == 1:
        return torch.ones(distances.shape[:-2], dtype=distances.dtype)
    upper = torch.triu_indices(num, num, offset=1)
    return distances[..., upper[0], upper[1]].amin(-1)


def _windows(data: Sequences, steps: int) -> Sequences:
    """At most :data:`WINDOWS` windows of ``steps`` steps as sequences of their own.

    Windows tile every sequence (none across sequences); with more than :data:`WINDOWS` of
    them, that many evenly spaced ones are kept. Windows without an observed value are dropped.
    """
    values = data.values.numpy()
    observed = data.observed.any(-1).numpy()
    places = [
        (sequence, begin, min(begin + steps, length))
        for sequence, length in enumerate(data.lengths.tolist())
        for begin in range(0, length, steps)
        if observed[sequence, begin : min(begin + steps, length)].any()
    ]
    if len(places) > WINDOWS:
        places = [places[i] for i in np.linspace(0, len(places) - 1, WINDOWS).round().astype(int)]
    if not places:
        raise ValueError("data: no observed values to start from")
    return Sequences([values[n, a:b] for n, a, b in places], dim=data.dim)


def _fit_groups(hmm: HMM, data: Sequences, weights: torch.Tensor, hyper: Params) -> Params:
    """Maximum-likelihood emission parameters of each column of ``weights`` (a group)."""
    groups = weights.shape[1]
    hyperparameters = {
        name: value.mean(0, keepdim=True).expand(groups, *value.shape[1:])
        for name, value in hyper.items()
    }
    statistics = hmm.emission.weighted_statistics(data, weights)
    return hmm.emission.maximize(statistics, hyperparameters, None, use_prior=False)


def _interior(hmm: HMM, params: Params, names: tuple[str, ...]) -> Params:
    """Probability rows mixed with :data:`_FLOOR` of the uniform law; other entries kept."""
    return {
        name: (1.0 - _FLOOR) * params[name] + _FLOOR / params[name].shape[-1]
        if name in hmm.emission.simplex_params
        else params[name]
        for name in names
    }


def _spread(
    hmm: HMM, params: Params, pooled: Params, names: tuple[str, ...], generator: torch.Generator
) -> Params:
    """Push probability rows away from the pooled row until the states are distinct.

    Rows that coincide with the pooled row (nothing to push along) are last spread along an
    edge of the simplex (:func:`_edge_rows`).
    """
    simplex = [name for name in names if name in hmm.emission.simplex_params]
    if not simplex:
        return params
    for factor in _SPREAD_FACTORS:
        spread = _interior(hmm, _push(params, pooled, simplex, factor), tuple(params))
        if float(min_separation(hmm, spread)) > MIN_START_SEPARATION:
            return spread
    return _edge_rows(hmm, params, simplex, generator)


def _push(params: Params, pooled: Params, simplex: list[str], factor: float) -> Params:
    """Rows of ``simplex`` parameters moved ``factor`` times as far from the pooled row.

    Each row moves along its own offset from the pooled row, at most as far as keeps every
    entry non-negative; other parameters are kept.
    """
    pushed = dict(params)
    for name in simplex:
        centre = pooled[name]
        offset = params[name] - centre
        limit = torch.where(offset < 0, centre / (-offset).clamp(min=1e-300), torch.inf)
        step = torch.minimum(torch.tensor(factor), limit.amin(-1, keepdim=True))
        row = (centre + step * offset).clamp(min=0.0)
        pushed[name] = row / row.sum(-1, keepdim=True)
    return pushed


def _edge_rows(hmm: HMM, params: Params, simplex: list[str], generator: torch.Generator) -> Params:
    """Rows spread evenly along the edge between the first and the last symbol (last resort).

    Row ``k`` puts ``sin^2`` and ``cos^2`` of an angle on the two symbols; the angles are ``K``
    evenly spaced points of ``[0, pi / 2]`` (a random offset, randomly assigned to states), so
    neighbours are ``1 - cos(pi / (2 K))`` apart in squared Hellinger distance (above
    :data:`MIN_START_SEPARATION` up to about 30 states once :data:`_FLOOR` of the uniform law
    is mixed in).
    """
    num_states = hmm.num_states
    order = torch.randperm(num_states, generator=generator).to(torch.float64)
    offset = 0.25 + 0.5 * torch.rand((), generator=generator, dtype=torch.float64)
    angle = (order + offset) / num_states * (torch.pi / 2)
    spread = dict(params)
    for name in simplex:
        rows = torch.zeros_like(params[name], dtype=torch.float64)
        rows[..., 0] = torch.sin(angle) ** 2
        rows[..., -1] = torch.cos(angle) ** 2
        spread[name] = rows
    return {**params, **_interior(hmm, spread, tuple(simplex))}


def window_start(
    hmm: HMM, data: Sequences, generator: torch.Generator, names: tuple[str, ...] | None = None
) -> Params:
    """Emission parameters from clustering windows of the data (any family).

    The data are cut into contiguous windows of :data:`_WINDOW_STEPS` steps (none across
    sequences; at most :data:`WINDOWS`, evenly spaced, are kept). Each window gets its own
    maximum-likelihood emission fit (for categorical emissions: its symbol histogram). ``K``
    windows are picked as centres by k-means++ seeding on the squared Hellinger distance
    between the windows' fits (a window far from every centre chosen so far is likelier to be
    next), then :data:`_CLUSTER_ITERATIONS` Lloyd iterations assign every window to its
    nearest centre and refit each centre on its windows' steps together. Probability rows are
    moved :data:`_EXAGGERATION` times as far from the pooled row (as the simplex allows), then
    mixed with 10% of the uniform law (interior points). When the clusters are too alike (i.i.d.
    data), their rows are pushed apart from the pooled row, as the simplex allows.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        The observations.
    generator : torch.Generator
        Source of randomness (the seeding).
    names : tuple of str, optional
        Emission parameters to return (default: all of the family's).

    Returns
    -------
    dict of torch.Tensor
        ``names`` in the model's dtype, ``K`` states each; the caller checks the separation.
    """
    emission, num_states = hmm.emission, hmm.num_states
    names = emission.param_names if names is None else names
    hyper = emission.prior_hyperparameters(hmm.prior, num_states, torch.float64)
    pooled = emission.pooled_params(data)
    total = int(data.lengths.sum())
    windows = _windows(data, max(1, min(_WINDOW_STEPS, total // num_states)))
    count = windows.num_sequences
    if count < num_states:  # fewer observed windows than states: nothing to cluster
        shapes = {name: pooled[name].expand(num_states, *pooled[name].shape[1:]) for name in names}
        spread = _spread(hmm, shapes, pooled, names, generator)
        return {name: value.to(hmm.dtype) for name, value in spread.items()}
    steps = windows.max_length
    membership = torch.arange(count).repeat_interleave(steps)  # window of each flattened step
    mask = windows.mask.reshape(-1).to(torch.float64)[:, None]
    fits = _fit_groups(hmm, windows, _one_hot(membership, count) * mask, hyper)
    far = emission.hellinger(fits)  # (W, W)
    chosen = [int(torch.randint(count, (), generator=generator))]
    for _ in range(1, num_states):
        nearest = far[:, chosen].amin(-1)
        if float(nearest.sum()) <= 0:
            chosen.append(int(torch.randint(count, (), generator=generator)))
            continue
        chosen.append(int(torch.multinomial(nearest, 1, generator=generator)))
    assignment = far[:, chosen].argmin(-1)

    def refit(assignment: torch.Tensor) -> Params:
        weights = _one_hot(assignment[membership], num_states) * mask
        return _fit_groups(hmm, windows, weights, hyper)

    centres = refit(assignment)
    for _ in range(_CLUSTER_ITERATIONS):
        both = {name: torch.cat([fits[name], centres[name]]) for name in fits}
        distances = emission.hellinger(both)[:count, count:]
        updated = distances.argmin(-1)
        empty = torch.bincount(updated, minlength=num_states) == 0
        for state in torch.nonzero(empty).flatten().tolist():  # reseed: the worst-fitted window
            updated[int(distances.amin(-1).argmax())] = state
        if torch.equal(updated, assignment):
            break
        assignment = updated
        centres = refit(assignment)
    simplex = [name for name in names if name in emission.simplex_params]
    centres = _interior(hmm, _push(centres, pooled, simplex, _EXAGGERATION), names)
    if float(min_separation(hmm, centres)) <= MIN_START_SEPARATION:
        centres = _spread(hmm, centres, pooled, names, generator)
    return {name: centres[name].to(hmm.dtype) for name in names}


def _one_hot(assignment: torch.Tensor, num_states: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(assignment, num_states).to(torch.float64)


def _data_driven(hmm: HMM, data: Sequences, generator: torch.Generator) -> Params:
    """Prior draws for ``pi`` and ``A``; emission parameters from the data.

    The family places what it can (:meth:`hmm_pyro.emissions.Emission.start_from_data`:
    Gaussian means and Poisson rates at random quantiles of the data); a family that places
    nothing (categorical rows, a Pyro distribution without a data start) gets every emission
    parameter from :func:`window_start`. Where a family places its locations only (negative
    binomial rates, Student-t locations and scales), the rest (dispersion, degrees of freedom)
    stay prior draws: the states are already apart in their locations, and the windows'
    distances need every parameter of the law.
    """
    params = hmm.sample_prior(seed=int(torch.randint(2**31 - 1, (), generator=generator)))
    placed = hmm.emission.start_from_data(data, hmm.num_states, generator, hmm.dtype)
    params.update(placed)
    if not placed and hmm.num_states > 1:
        params.update(window_start(hmm, data, generator, tuple(hmm.emission.param_names)))
    return params


def initial_params(
    hmm: HMM,
    data: Sequences,
    method: str | Mapping[str, Any] = "auto",
    seed: int | None = None,
    em_start: Callable[[HMM, Sequences, int, int], Params] | None = None,
) -> Params:
    """Return one symmetry-breaking starting point.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        The data (used by ``"data"``).
    method : {"auto", "prior", "data", "em"} or dict
        ``"prior"``: a draw from the prior. ``"data"``: prior draws for ``pi`` and ``A``, and
        emission locations at random quantiles of the data (Gaussian means, Poisson rates;
        categorical rows fall back to prior draws). ``"em"``: a ``"data"`` start improved by
        :data:`EM_INIT_ITERATIONS` EM updates towards the MAP point (one EM run per call,
        probabilities kept off the boundary; see :func:`hmm_pyro.learning.em_start`; needs
        ``em_start``).
        ``"auto"``: ``"data"``. A dict of parameters is validated and returned as is.
    seed : int, optional
        Seed of the draw.
    em_start : callable, optional
        ``em_start(hmm, data, seed, iterations)``: the short EM run of the ``"em"`` start
        (:func:`hmm_pyro.learning.em_start`); required for ``method="em"``.

    Returns
    -------
    dict of torch.Tensor

    Raises
    ------
    ValueError
        If no start with distinct states was found, or a given dict has identical states.
    """
    if isinstance(method, Mapping):
        try:
            params = hmm.validate_params(dict(method))
        except (TypeError, ValueError) as error:
            # name the option the caller passed, not the internal argument
            raise type(error)(f"init: {error}") from error
        if hmm.num_states > 1 and bool((min_separation(hmm, params) <= 0).any()):
            raise ValueError(
                "init: the given starting parameters have two identical states; identical "
                "states receive identical gradients and never separate"
            )
        return params
    if not isinstance(method, str):
        raise TypeError(
            f"init: expected a method name or a dict of parameters, got {describe(method)}"
        )
    check_choice("init", method, INIT_METHODS)
    generator = make_generator(seed)
    closest = 0.0
    for _ in range(_MAX_TRIES):
        if method == "prior":
            params = hmm.sample_prior(seed=int(torch.randint(2**31 - 1, (), generator=generator)))
        elif method == "em":
            if em_start is None:
                raise ValueError(
                    "init: the 'em' start needs EM; call hmm_pyro.learning.initial_params"
                )
            child = int(torch.randint(2**31 - 1, (), generator=generator))
            params = em_start(hmm, data, child, EM_INIT_ITERATIONS)
        else:
            params = _data_driven(hmm, data, generator)
        separation = 1.0 if hmm.num_states == 1 else float(min_separation(hmm, params))
        if separation > MIN_START_SEPARATION:
            return params
        closest = max(closest, separation)
    raise ValueError(_no_start_message(hmm, method, closest))


def _no_start_message(hmm: HMM, method: str, closest: float) -> str:
    """Why no start had distinct states: the emission prior, named with its values."""
    hyper = hmm.emission.prior_hyperparameters(hmm.prior, hmm.num_states, torch.float64)
    values = ", ".join(
        f"{name} {float(value.min()):g}"
        + ("" if float(value.min()) == float(value.max()) else f" to {float(value.max()):g}")
        for name, value in hyper.items()
    )
    found = (
        f"init: no start with distinct states in {_MAX_TRIES} tries with method {method!r}: the "
        f"closest pair of states was at squared Hellinger {closest:.2g} at best (a start needs "
        f"more than {MIN_START_SEPARATION:g})"
    )
    prior = f"the emission prior ({type(hmm.emission).__name__}: {values})"
    if method == "prior":
        return (
            f"{found}. {prior[0].upper()}{prior[1:]} draws every state's emission law almost "
            "alike; start from the data instead (init='data' or 'auto'), or weaken that prior"
        )
    if method == "em":
        return (
            f"{found}. Short EM runs from data starts pulled the states together: {prior} or "
            "the data leave no room for distinct states; try init='data', a weaker prior or "
            "fewer states"
        )
    return (
        f"{found}. The data show no distinct windows and {prior} leaves no room for distinct "
        "states; try fewer states or a weaker prior"
    )


def derive_seeds(seed: int, count: int) -> list[int]:
    """``count`` independent child seeds of ``seed`` (NumPy ``SeedSequence.spawn``)."""
    children = np.random.SeedSequence(seed).spawn(count)
    return [int(child.generate_state(1)[0] % (2**31 - 1)) for child in children]
