"""Split moves: whether the fit's ``K``-state mode is a local optimum that a split escapes.

When ``diagnose`` finds that ``K - 1`` states fit as well as the fit's ``K``, the verdict is only
as good as the ``K``-state solution it compared. A point estimate (or a chain) can end at a
local optimum that merges two states the data separate and spends the spare state on a
near-copy of another: the smaller model is then as good as *that* solution, while a better
``K``-state solution needs all ``K`` states. The classical escape is a split move (split-and-merge
EM, Ueda, Nakano, Ghahramani & Hinton 2000): here every state of the ``K - 1``-state refit is
split in turn (:func:`split_start`), EM runs :data:`SPLIT_MAX_ITER` updates from each split, the
best is run to convergence, and if it ends more than :data:`SPLIT_GAIN_NATS` above the fit's
mode *and* BIC prefers it to its own ``K - 1``-state refit, :func:`split_search` returns it
(docs/degeneracy.md#local-optima). The second condition keeps what matters: on data with fewer
states, splits reach other over-fitted ``K``-state solutions a few nats higher (up to 5.5 nats
in the tests' one-state Gaussian data), which change nothing in the verdict. A split whose log
likelihood after the short run does not exceed the ``K - 1``-state refit's by half BIC's
penalty for the extra state is not run to convergence (a sparse prior's density alone can make
a split look a dozen nats better, with the likelihood unchanged).

A split of state ``j`` keeps the other states as they are; ``j``'s observations (those whose
most probable state is ``j``) are given to the emission family's data start for two states
(:meth:`~hmm_pyro.emissions.Emission.start_from_data`: locations at random quantiles; families
that place nothing get :func:`~hmm_pyro.starts.window_start`, windows clustered by their own
fits), and the two halves share ``j``'s initial and transition probabilities equally.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from hmm_pyro._random import make_generator
from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.diagnostics.refits import EM_TOL, PointFit, bic, fewer_states, point_fit
from hmm_pyro.diagnostics.thresholds import WEAK_IDENTIFIABILITY_NATS
from hmm_pyro.learning import run_em
from hmm_pyro.model import HMM
from hmm_pyro.starts import window_start

__all__ = [
    "SPLIT_GAIN_NATS",
    "SPLIT_MAX_ITER",
    "Split",
    "most_probable",
    "split_search",
    "split_start",
]

SPLIT_MAX_ITER = 20
"""EM updates from each split start before the best is chosen (and run to convergence): a split
that separates two merged states gains tens of nats within a few updates."""
SPLIT_GAIN_NATS = WEAK_IDENTIFIABILITY_NATS
"""A split solution counts as better when its log posterior exceeds the fit's mode by more than
this (2 nats): within it, two solutions are "within a few nats" (``weak_identifiability``)."""
SPLIT_SEED = 0
"""Seed of the split starts (``diagnose`` is deterministic)."""


@dataclass(frozen=True)
class Split:
    """A better ``K``-state solution reached by splitting a state of the ``K - 1``-state refit.

    Attributes
    ----------
    point : PointFit
        The better solution (EM to convergence from the best split).
    state : int
        The state of the ``K - 1``-state refit that was split.
    original : float
        Log posterior of the mode that ``diagnose`` found from the fit.
    rounds : int
        Splits made one after the other to get there (see :func:`split_search`).
    smaller : PointFit or None
        The better solution's own ``K - 1``-state refit (:func:`split_search` made it to
        compare the two by BIC; the evidence's step down reuses it).
    """

    point: PointFit
    state: int
    original: float
    rounds: int = 1
    smaller: PointFit | None = None

    @property
    def gain(self) -> float:
        """Nats by which the split solution's log posterior exceeds the original mode's."""
        return self.point.log_posterior - self.original

    def describe(self) -> str:
        """The numbers, in words."""
        how = (
            f"splitting state {self.state} of the {self.point.num_states - 1}-state refit"
            if self.rounds == 1
            else f"{self.rounds} splits in turn (each of a state of the {self.point.num_states - 1}"
            "-state refit of the solution before)"
        )
        return (
            f"{how} and running EM reaches log posterior {self.point.log_posterior:.1f}, "
            f"{self.gain:.1f} nats above the fit's mode ({self.original:.1f})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The numbers, JSON-friendly (with the better solution's parameters)."""
        return {
            "split_state": self.state,
            "rounds": self.rounds,
            "log_posterior": self.point.log_posterior,
            "original_log_posterior": self.original,
            "gain": self.gain,
            "better_params": {name: value.tolist() for name, value in self.point.params.items()},
        }


def most_probable(smaller: PointFit, data: Sequences) -> torch.Tensor:
    """``(N, T)`` most probable state of every step under ``smaller`` (smoothed)."""
    return smaller.hmm.forward_backward(smaller.params, data).gamma.argmax(-1)


def _assigned(data: Sequences, labels: torch.Tensor, state: int) -> Sequences | None:
    """``data`` with every observation whose most probable state is not ``state`` missing."""
    keep = (labels == state) & data.observed.any(-1)
    if int(keep.sum()) < 2:
        return None
    values = data.values.clone()
    values[~keep] = float("nan")
    return Sequences(values.numpy(), lengths=data.lengths, symbols=data.symbols)


def split_start(
    hmm: HMM,
    smaller: PointFit,
    data: Sequences,
    state: int,
    generator: torch.Generator,
    labels: torch.Tensor | None = None,
) -> Params | None:
    """The ``K``-state start that splits ``state`` of the ``K - 1``-state solution ``smaller``.

    Parameters
    ----------
    hmm : HMM
        The ``K``-state model.
    smaller : PointFit
        The ``K - 1``-state solution.
    data : Sequences
        The observations (prepared for ``hmm``).
    state : int
        The state to split; its halves are ``state`` and ``K - 1``.
    generator : torch.Generator
        Source of randomness of the family's data start.
    labels : torch.Tensor, optional
        :func:`most_probable` of ``smaller`` (computed here when not given).

    Returns
    -------
    dict of torch.Tensor or None
        ``None`` when fewer than two observations are assigned to ``state``.
    """
    labels = most_probable(smaller, data) if labels is None else labels
    subset = _assigned(data, labels, state)
    if subset is None:
        return None
    emission = hmm.emission
    placed = emission.start_from_data(subset, 2, generator, torch.float64)
    if not placed:
        placed = window_start(HMM(2, emission), subset, generator, tuple(emission.param_names))
    dims = hmm.param_dims()
    params = smaller.params
    start: Params = {}
    for name in emission.param_names:
        axis = dims[name].index("state")
        value = params[name].to(torch.float64)
        value = torch.cat([value, value.narrow(axis, state, 1)], axis)
        if name in placed:
            halves = torch.as_tensor(placed[name], dtype=torch.float64)
            value = value.index_copy(axis, torch.tensor([state, hmm.num_states - 1]), halves)
        start[name] = value
    initial = params["pi"].to(torch.float64)
    initial = torch.cat([initial, initial[state : state + 1] / 2])
    initial[state] /= 2
    rows = params["A"].to(torch.float64)
    rows = torch.cat([rows, rows[state : state + 1]], 0)
    rows = torch.cat([rows, rows[:, state : state + 1] / 2], 1)
    rows[:, state] /= 2
    start.update(pi=initial, A=rows)
    return start


def _best_split(point: PointFit, smaller: PointFit, data: Sequences) -> tuple[int, PointFit] | None:
    """The split of a state of ``smaller`` that ends highest, if it beats ``point`` (see module)."""
    generator = make_generator(SPLIT_SEED)
    labels = most_probable(smaller, data)  # one smoothing pass for every candidate
    best: tuple[int, Any] | None = None
    for state in range(smaller.num_states):
        start = split_start(point.hmm, smaller, data, state, generator, labels)
        if start is None:
            continue
        run = run_em(
            point.hmm,
            data,
            start,
            max_iter=SPLIT_MAX_ITER,
            tol=EM_TOL,
            emission_prior=point.emission_prior,
        )
        if best is None or run.final_objective > best[1].final_objective:
            best = (state, run)
    if best is None or best[1].final_objective <= point.log_posterior + SPLIT_GAIN_NATS:
        return None
    # BIC's verdict needs the likelihood to pay for the extra state; a gain of the prior's
    # density alone (a sparse prior rewards emptier rows) cannot, so no refit to convergence
    extra = point.hmm.num_free_params() - smaller.hmm.num_free_params()
    needed = 0.5 * extra * math.log(max(data.num_observed, 1))
    if best[1].final_log_likelihood - smaller.log_likelihood <= needed:
        return None
    better = point_fit(point.hmm, data, best[1].params, emission_prior=point.emission_prior)
    if better.log_posterior <= point.log_posterior + SPLIT_GAIN_NATS:
        return None
    return best[0], better


def split_search(point: PointFit, smaller: PointFit, data: Sequences) -> Split | None:
    """A better ``K``-state solution than ``point`` from splitting states of ``smaller``.

    A split that ends higher but where BIC still prefers fewer states (another over-fitted
    solution, or a local optimum that needs a second split: two emptied states next to one
    state across three regimes) is split again, from its own ``K - 1``-state refit, at most
    ``K - 1`` times, each time more than :data:`SPLIT_GAIN_NATS` higher.

    Parameters
    ----------
    point : PointFit
        The ``K``-state mode found from the fit.
    smaller : PointFit
        Its ``K - 1``-state refit (same prior use).
    data : Sequences
        The observations (prepared for the model).

    Returns
    -------
    Split or None
        ``None`` when no split ends more than :data:`SPLIT_GAIN_NATS` above ``point``, or when
        BIC prefers fewer states at every split solution reached.
    """
    current = point
    for rounds in range(1, point.num_states):
        found = _best_split(current, smaller, data)
        if found is None:
            return None
        state, better = found
        smaller = fewer_states(better, data)
        if bic(smaller, data) > bic(better, data):
            return Split(
                point=better,
                state=state,
                original=point.log_posterior,
                rounds=rounds,
                smaller=smaller,
            )
        current = better  # over-fitted, or one split short: split again from there
    return None
