"""Evidence for causes: refits with fewer states, without the emission prior, as a mixture.

``diagnose(fit, deep=True)`` (the default) gathers :class:`Evidence`
(:mod:`hmm_pyro.diagnostics.cause` turns it into causes and flags):

1. The fit's ``K``-state mode: EM from the fit's point (or from the relabelled posterior mean).
2. Fewer states: the ``K - 1`` state model refitted from the best merge of two states
   (:func:`~hmm_pyro.diagnostics.refits.fewer_states`), and ``K - 2`` when ``K - 1`` is as good.
   Point estimates are compared by BIC and by cross-validated held-out likelihood; posterior
   fits (NUTS, SVI) by PSIS-LOO over sequences or PSIS leave-one-block-out, with the smaller
   model refitted by the same runner (:mod:`hmm_pyro.diagnostics.elpd`). The smaller model is
   *as good* when neither criterion prefers the larger (held-out or ELPD difference within
   :data:`~hmm_pyro.diagnostics.thresholds.ELPD_SMALL_DIFFERENCE` nats or
   :data:`~hmm_pyro.diagnostics.thresholds.ELPD_SE_FACTOR` standard errors, and, for points,
   BIC no worse). When the smaller model is as good, a split move checks that the ``K``-state
   mode is not a local optimum (:mod:`hmm_pyro.diagnostics.splits`); if splitting a state of
   the smaller model reaches a better ``K``-state solution, it replaces the mode and the
   comparison is made again from it.
3. Prior sensitivity, when there is something to explain: the model refitted without the
   emission prior (its power-scaling limit, maximum likelihood). The prior is blamed only when
   that moves the states apart and the data then support more states, or indistinguishable
   states become worth keeping.
4. Temporal structure of the supported model (:mod:`hmm_pyro.diagnostics.temporal`).

docs/degeneracy.md#fewer-states.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.diagnostics.collapse import min_pairwise
from hmm_pyro.diagnostics.elpd import can_refit, pointwise_elpd, posterior_refit
from hmm_pyro.diagnostics.folds import HIGH_PARETO_K, standard_error
from hmm_pyro.diagnostics.occupancy import free_emission_parameters
from hmm_pyro.diagnostics.refits import (
    SENSITIVITY_MAX_ITER,
    PointFit,
    bic,
    fewer_states,
    held_out,
    point_fit,
)
from hmm_pyro.diagnostics.splits import Split, split_search
from hmm_pyro.diagnostics.temporal import TemporalTest, temporal_test
from hmm_pyro.diagnostics.thresholds import (
    COLLAPSE_DISTANCE,
    ELPD_SE_FACTOR,
    ELPD_SMALL_DIFFERENCE,
)
from hmm_pyro.fit import Fit
from hmm_pyro.labels.draws import emission_distances, to_numpy
from hmm_pyro.learning import initial_params
from hmm_pyro.learning.objective import log_prior, prior_tensors
from hmm_pyro.model import HMM
from hmm_pyro.priors import Prior

__all__ = [
    "MAX_STEPS",
    "Comparison",
    "Evidence",
    "PriorSensitivity",
    "gather_evidence",
    "min_distance",
]

MAX_STEPS = 2
"""Smaller models tried: ``K - 1``, and ``K - 2`` when ``K - 1`` is as good."""


@dataclass(frozen=True)
class Comparison:
    """A ``K``-state model against the ``K - 1``-state model merged from it.

    Attributes
    ----------
    larger, smaller : int
        Numbers of states.
    merged : tuple of int
        States of the larger model's point estimate that were merged.
    criterion : str
        How the held-out difference was estimated.
    bic : tuple of float or None
        ``(larger, smaller)`` BIC of the point estimates (``None`` for a posterior comparison).
    difference, se : float or None
        Held-out log density (or ELPD) of the larger minus the smaller model, and the standard
        error of the paired pointwise differences.
    pareto_k_max : float or None
        Largest Pareto ``k`` of the PSIS estimates (posterior comparisons).
    by_bic : bool
        Judged by BIC alone (the steps after the first, which only count the states).
    """

    larger: int
    smaller: int
    merged: tuple[int, int]
    criterion: str
    bic: tuple[float, float] | None
    difference: float | None
    se: float | None
    pareto_k_max: float | None = None
    by_bic: bool = False

    @property
    def _tolerance(self) -> float:
        return max(ELPD_SMALL_DIFFERENCE, ELPD_SE_FACTOR * (self.se or 0.0))

    @property
    def as_good(self) -> bool:
        """Neither criterion prefers the larger model."""
        if self.bic is not None and self.bic[1] > self.bic[0]:
            return False
        if self.by_bic:
            return True
        return self.difference is not None and self.difference <= self._tolerance

    @property
    def larger_better(self) -> bool:
        """Both criteria prefer the larger model."""
        if self.bic is not None and self.bic[1] <= self.bic[0]:
            return False
        if self.by_bic:
            return True
        return self.difference is not None and self.difference > self._tolerance

    def describe(self) -> str:
        """The numbers, in words."""
        parts = []
        if self.bic is not None:
            parts.append(
                f"BIC {self.bic[1]:.1f} with {self.smaller} state(s) vs {self.bic[0]:.1f} with "
                f"{self.larger}"
            )
        if self.difference is not None:
            better = self.larger if self.difference >= 0 else self.smaller
            parts.append(
                f"{self.criterion} {abs(self.difference):.1f} +- {self.se:.1f} nats higher with "
                f"{better}"
            )
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The numbers, JSON-friendly."""
        return {
            "larger": self.larger,
            "smaller": self.smaller,
            "merged": list(self.merged),
            "criterion": self.criterion,
            "bic": None if self.bic is None else list(self.bic),
            "difference": self.difference,
            "se": self.se,
            "pareto_k_max": self.pareto_k_max,
            "as_good": self.as_good,
            "larger_better": self.larger_better,
        }


@dataclass(frozen=True)
class PriorSensitivity:
    """The ``K``-state model refitted without its emission prior.

    Attributes
    ----------
    distance : tuple of float
        Smallest pairwise squared Hellinger distance of the states with the fit's prior and
        without the emission prior.
    comparisons : tuple of Comparison
        Fewer states without the emission prior, as for the fit's prior (only when the states
        moved apart: otherwise the prior cannot be what keeps them together).
    supported : tuple of int
        States the data support with the fit's prior and without the emission prior.
    flat : bool
        The emission prior has the same density everywhere (nothing was refitted).
    """

    distance: tuple[float, float]
    comparisons: tuple[Comparison, ...] = ()
    supported: tuple[int, int] | None = None
    flat: bool = False

    @property
    def moved(self) -> bool:
        """The closest states without the emission prior: distinct, twice as far apart (H2)."""
        return self.distance[1] >= max(COLLAPSE_DISTANCE, 2.0 * self.distance[0])

    @property
    def blames_prior(self) -> bool:
        """Without the emission prior the states move apart and matter.

        Either more states are supported, or states that were indistinguishable are now worth
        keeping (the ``K``-state model beats the smaller one on both criteria).
        """
        if not self.moved or self.supported is None:
            return False
        more = self.supported[1] > self.supported[0]
        separated = self.distance[0] < COLLAPSE_DISTANCE and self.comparisons[0].larger_better
        return more or separated

    def describe(self) -> str:
        """The numbers, in words."""
        if self.flat:
            return "the emission prior is flat (the same density everywhere)"
        text = (
            f"refitted without the emission prior, the closest states go from squared "
            f"Hellinger {self.distance[0]:.3g} to {self.distance[1]:.3g}"
        )
        if self.supported is None:
            return text
        steps = "; ".join(f"{c.smaller} vs {c.larger}: {c.describe()}" for c in self.comparisons)
        return (
            f"{text}, and the data then support {self.supported[1]} state(s) instead of "
            f"{self.supported[0]} ({steps})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The numbers, JSON-friendly."""
        return {
            "min_distance_fit_prior": self.distance[0],
            "min_distance_without_emission_prior": self.distance[1],
            "flat": self.flat,
            "comparisons": [comparison.to_dict() for comparison in self.comparisons],
            "supported": None if self.supported is None else list(self.supported),
            "blames_prior": self.blames_prior,
        }


@dataclass(frozen=True)
class Evidence:
    """What the refits found (see the module notes)."""

    point: PointFit
    comparisons: tuple[Comparison, ...]
    supported: int
    prior: PriorSensitivity | None
    temporal: TemporalTest | None
    seconds: float
    notes: tuple[str, ...]
    split: Split | None = None

    @property
    def smaller_as_good(self) -> bool:
        """The ``K - 1``-state model is as good as the fit's."""
        return bool(self.comparisons) and self.comparisons[0].as_good

    def to_dict(self) -> dict[str, Any]:
        """The numbers, JSON-friendly."""
        result: dict[str, Any] = {
            "mode_log_posterior": self.point.log_posterior,
            "comparisons": [comparison.to_dict() for comparison in self.comparisons],
            "supported_states": self.supported,
            "seconds": self.seconds,
        }
        if self.prior is not None:
            result["prior_sensitivity"] = self.prior.to_dict()
        if self.temporal is not None:
            result["temporal"] = self.temporal.to_dict()
        if self.split is not None:
            result["split"] = self.split.to_dict()
        return result


def min_distance(point: PointFit) -> float:
    """Smallest pairwise squared Hellinger distance between the states of ``point``."""
    emission = to_numpy({name: point.params[name] for name in point.hmm.emission.param_names})
    return float(min_pairwise(emission_distances(point.hmm, emission)))


def _point_comparison(
    larger: PointFit,
    smaller: PointFit,
    data: Sequences,
    cache: dict[int, np.ndarray],
    always: bool = False,
    by_bic: bool = False,
) -> Comparison:
    """BIC, then held-out likelihood if BIC prefers the smaller model (or ``always``).

    ``by_bic``: BIC alone (the later steps, which only say how many states the data support).
    """
    scores = (bic(larger, data), bic(smaller, data))
    difference = se = None
    criterion = "BIC alone" if by_bic else "held-out likelihood not needed: BIC prefers more"
    if not by_bic and (always or scores[1] <= scores[0]):
        held, folds = held_out([larger, smaller], data, cache=cache)
        paired = held[0] - held[1]
        difference, se = float(paired.sum()), standard_error(paired)
        criterion = f"held-out log likelihood ({folds})"
    merged = smaller.merged or (0, 1)
    return Comparison(
        larger.num_states,
        smaller.num_states,
        merged,
        criterion,
        scores,
        difference,
        se,
        by_bic=by_bic,
    )


def _posterior_comparison(
    larger: Fit, smaller_point: PointFit, notes: list[str]
) -> Comparison | None:
    """ELPD of ``larger`` against a refit of the smaller model by the same runner.

    ``None`` (and a note) when PSIS is unreliable for either model (Pareto k above
    :data:`~hmm_pyro.diagnostics.folds.HIGH_PARETO_K`); the larger model is checked before
    the refit is run.
    """
    states = f"{larger.hmm.num_states} vs {smaller_point.num_states} states"

    def unreliable(pareto_k: np.ndarray, text: str, which: str) -> bool:
        worst = float(pareto_k.max())
        if worst <= HIGH_PARETO_K:
            return False
        notes.append(
            f"{text} of {which} has Pareto k up to {worst:.2f} > {HIGH_PARETO_K}: unreliable, "
            f"so {states} were compared by point estimates (BIC, held-out likelihood)"
        )
        return True

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        big, big_k, text = pointwise_elpd(larger)
        if unreliable(big_k, text, "the fit"):
            return None
        try:
            refit = posterior_refit(larger, smaller_point.hmm, smaller_point.params)
        except (ValueError, RuntimeError) as error:  # the runner failed on the smaller model
            notes.append(
                f"the refit of {smaller_point.num_states} states by {larger.method} failed "
                f"({type(error).__name__}: {str(error).splitlines()[0][:200]}), so {states} "
                "were compared by point estimates (BIC, held-out likelihood)"
            )
            return None
        small, small_k, _ = pointwise_elpd(refit)
        if unreliable(small_k, text, "the refit with fewer states"):
            return None
    paired = big - small
    return Comparison(
        larger=larger.hmm.num_states,
        smaller=smaller_point.num_states,
        merged=smaller_point.merged or (0, 1),
        criterion=f"ELPD ({text}; fewer states refitted by {larger.method})",
        bic=None,
        difference=float(paired.sum()),
        se=standard_error(paired),
        pareto_k_max=float(max(big_k.max(), small_k.max())),
    )


def _flat_emission_prior(point: PointFit, data: Sequences) -> bool:
    """The emission prior's density is the same at the mode, the one-state fit and a prior draw.

    A flat prior (Dirichlet(1) rows) cannot make states alike; the refit without it would be
    the same fit.
    """
    hmm = point.hmm
    prior = prior_tensors(hmm)
    pooled = {
        name: value.to(torch.float64).expand_as(point.params[name])
        for name, value in hmm.emission.pooled_params(data).items()
    }
    draw = {name: value.to(torch.float64) for name, value in hmm.sample_prior(seed=0).items()}
    values = [
        float(log_prior(hmm, params, prior, True) - log_prior(hmm, params, prior, False))
        for params in (point.params, {**point.params, **pooled}, draw)
    ]
    return bool(np.isfinite(values).all()) and max(values) - min(values) < 1e-9


def _prior_sensitivity(
    point: PointFit, data: Sequences, cache: dict[int, np.ndarray], supported: int
) -> PriorSensitivity:
    """Refit without the emission prior; if the states move apart, count the states again.

    EM starts at the fit's mode and, when two states there are indistinguishable (collapsed, or
    one state emptied, which EM would leave as it is), also at a data-driven start; the refit
    with the higher objective is kept. A flat emission prior is not refitted (nothing to
    blame).
    """
    hmm = point.hmm
    before = min_distance(point)
    if _flat_emission_prior(point, data):
        return PriorSensitivity((before, before), flat=True)
    starts: list[Params] = [point.params]
    occupancy = hmm.forward_backward(point.params, data).gamma.sum((0, 1))
    empty = float(occupancy.min()) < max(1.0, free_emission_parameters(hmm))
    if before < COLLAPSE_DISTANCE or empty:
        # drawn under the default prior: the start of a refit without the emission prior need
        # not respect it, and a strong symmetric prior leaves no room for distinct draws
        starts.append(initial_params(hmm.with_prior(Prior()), data, "data", seed=0))
    weak = max(
        (
            point_fit(hmm, data, start, emission_prior=False, max_iter=SENSITIVITY_MAX_ITER)
            for start in starts
        ),
        key=lambda refit: refit.log_posterior,
    )
    sensitivity = PriorSensitivity((before, min_distance(weak)))
    if not sensitivity.moved:
        return sensitivity
    comparisons, _ = _step_down(weak, data, cache, always=True)
    return PriorSensitivity(
        sensitivity.distance, comparisons, (supported, _supported(hmm, comparisons))
    )


def _supported(hmm: HMM, comparisons: tuple[Comparison, ...]) -> int:
    """The fewest states reached while each smaller model stayed as good."""
    supported = hmm.num_states
    for comparison in comparisons:
        if not comparison.as_good:
            break
        supported = comparison.smaller
    return supported


def _step_down(
    point: PointFit,
    data: Sequences,
    cache: dict[int, np.ndarray],
    fit: Fit | None = None,
    notes: list[str] | None = None,
    always: bool = False,
    first: PointFit | None = None,
) -> tuple[tuple[Comparison, ...], dict[int, PointFit]]:
    """Fewer states, one at a time, while the smaller model is as good (at most MAX_STEPS).

    The first step compares posterior fits by ELPD when ``fit`` is given (falling back to point
    estimates when PSIS is unreliable), point estimates by BIC and (when BIC prefers fewer
    states, or ``always``) held-out likelihood; later steps only count states, by BIC.
    ``first``: the first step's ``K - 1``-state refit when it was already made.
    """
    comparisons: list[Comparison] = []
    points = {point.num_states: point}
    larger = point
    for step in range(MAX_STEPS):
        if larger.num_states < 2:
            break
        smaller = first if step == 0 and first is not None else fewer_states(larger, data)
        points[smaller.num_states] = smaller
        comparison = None
        if step == 0 and fit is not None:
            comparison = _posterior_comparison(fit, smaller, notes if notes is not None else [])
        if comparison is None:
            comparison = _point_comparison(
                larger, smaller, data, cache, always=always and step == 0, by_bic=step > 0
            )
        comparisons.append(comparison)
        if not comparison.as_good:
            break
        larger = smaller
    return tuple(comparisons), points


def gather_evidence(fit: Fit, start: Params, relevant: bool) -> Evidence:
    """Run the refits of ``diagnose(deep=True)``.

    Parameters
    ----------
    fit : Fit
        The diagnosed fit (``K >= 2`` states).
    start : dict
        Where the ``K``-state mode is sought: the fit's point, or its relabelled posterior mean.
    relevant : bool
        A state flag was raised (collapse, empty, prior-dominated): run the prior sensitivity
        refits even if the smaller model is not as good.

    Returns
    -------
    Evidence
    """
    began = time.perf_counter()
    hmm, data = fit.hmm, fit.data
    notes: list[str] = []
    cache: dict[int, np.ndarray] = {}
    point = point_fit(hmm, data, start)
    several = fit.num_chains * fit.num_draws > 1
    posterior = several and can_refit(fit)
    if several and not posterior:
        notes.append(
            f"the {fit.method!r} fit records no runner settings to refit fewer states with "
            "posterior draws: fewer states compared by point estimates (BIC, held-out "
            "likelihood) at the mode"
        )
    comparisons, points = _step_down(point, data, cache, fit if posterior else None, notes)
    split = None
    if comparisons and comparisons[0].as_good:
        # fewer states look as good: unless the fit sits at a local optimum a split escapes
        split = split_search(point, points[hmm.num_states - 1], data)
        if split is not None:
            point = split.point
            comparisons, points = _step_down(point, data, cache, None, notes, first=split.smaller)
    supported = _supported(hmm, comparisons)
    prior = None
    if relevant or (comparisons and comparisons[0].as_good):
        prior = _prior_sensitivity(point, data, cache, supported)
    temporal = temporal_test(points[supported], data) if supported >= 2 else None
    return Evidence(
        point=point,
        comparisons=comparisons,
        supported=supported,
        prior=prior,
        temporal=temporal,
        seconds=time.perf_counter() - began,
        notes=tuple(notes),
        split=split,
    )
