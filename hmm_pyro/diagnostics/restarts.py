"""Restarts of a point estimate (or of SVI) that end at different solutions within a few nats.

``fit_map``, ``fit_svi``, ``fit_em`` and Viterbi training keep every restart's final parameters
(attribute ``restart_params``) and objective (sample statistic ``final_loss`` or
``final_objective``). Two restarts are at *different solutions* when, after matching their
states (Hungarian assignment on the squared Hellinger distance between emission laws), some
state's emission law or transition row is at squared Hellinger distance at least
:data:`~hmm_pyro.diagnostics.thresholds.SOLUTION_DISTANCE` from its match. A restart at a
different solution whose objective is within
:data:`~hmm_pyro.diagnostics.thresholds.WEAK_IDENTIFIABILITY_NATS` of the kept one means that the
data hardly prefer one explanation over another: the kept point is one of several
(docs/degeneracy.md#restarts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from hmm_pyro.diagnostics.convergence import reference_transitions
from hmm_pyro.diagnostics.flags import Flag, Remedy
from hmm_pyro.diagnostics.thresholds import SOLUTION_DISTANCE, WEAK_IDENTIFIABILITY_NATS
from hmm_pyro.fit import Fit
from hmm_pyro.labels.draws import Arrays, emission_distances
from hmm_pyro.model import HMM

__all__ = ["RestartComparison", "restart_comparison", "weak_identifiability_flag"]


@dataclass(frozen=True)
class RestartComparison:
    """Every restart's final objective and how far its solution is from the kept one.

    Attributes
    ----------
    objective : str
        What ``values`` are: ``"log posterior"`` (MAP, EM), ``"ELBO"`` (SVI) or
        ``"objective"`` (other point estimates).
    values : numpy.ndarray
        ``(R,)`` final objective of each restart (higher is better; NaN if it failed).
    best : int
        The kept restart.
    distances : numpy.ndarray
        ``(R,)`` largest squared Hellinger distance between a state of the restart's solution
        and its matched state of the kept one (emission law or transition row).
    params : list of dict
        Each restart's final parameters.
    """

    objective: str
    values: np.ndarray
    best: int
    distances: np.ndarray
    params: list[Arrays]

    @property
    def gaps(self) -> np.ndarray:
        """``(R,)`` how far each restart's objective is below the kept one's, in nats."""
        return self.values[self.best] - self.values

    @property
    def close(self) -> tuple[int, ...]:
        """Restarts at a different solution within the threshold of the kept one."""
        near = (self.gaps <= WEAK_IDENTIFIABILITY_NATS) & (self.distances >= SOLUTION_DISTANCE)
        near[self.best] = False
        return tuple(np.flatnonzero(near).tolist())

    def to_dict(self) -> dict[str, Any]:
        """The per-restart numbers, JSON-friendly."""
        return {
            "objective": self.objective,
            "values": self.values.tolist(),
            "best": self.best,
            "gap_nats": self.gaps.tolist(),
            "solution_distance": self.distances.tolist(),
        }


def _matched_distance(hmm: HMM, first: Arrays, second: Arrays) -> float:
    """Largest squared Hellinger distance between matched states of two solutions."""
    num = hmm.num_states
    joined = {}
    for name in hmm.emission.param_names:
        joined[name] = np.concatenate([np.asarray(first[name]), np.asarray(second[name])], 0)
    cross = emission_distances(hmm, joined)[:num, num:]
    rows, cols = linear_sum_assignment(cross)
    order = cols[np.argsort(rows)]
    emission = float(cross[np.arange(num), order].max())
    a_first = reference_transitions(hmm, first)
    a_second = reference_transitions(hmm, second)[np.ix_(order, order)]
    rows_h2 = 1.0 - np.sqrt(np.clip(a_first * a_second, 0.0, None)).sum(-1)
    return max(emission, float(rows_h2.max()))


def _values(fit: Fit) -> tuple[str, np.ndarray] | None:
    stats = fit.idata.sample_stats if "sample_stats" in fit.idata.groups() else None
    if stats is None:
        return None
    if "final_objective" in stats:
        name = "log posterior" if fit.method == "em" else "objective"
        return name, np.asarray(stats["final_objective"].values, dtype=float).ravel()
    if "final_loss" in stats:
        name = "ELBO" if fit.method == "svi" else "log posterior"
        return name, -np.asarray(stats["final_loss"].values, dtype=float).ravel()
    return None


def restart_comparison(fit: Fit) -> RestartComparison | None:
    """Compare the restarts of ``fit`` with the kept one.

    Parameters
    ----------
    fit : Fit
        A fit that recorded ``restart_params`` and per-restart final objectives.

    Returns
    -------
    RestartComparison or None
        ``None`` without restarts (NUTS, ``Fit.from_params``) or with a single one.
    """
    attrs = fit.attrs
    restarts = attrs.get("restart_params")
    found = _values(fit)
    if not restarts or found is None or "best_restart" not in attrs:
        return None
    objective, values = found
    hmm = fit.hmm
    count = len(next(iter(restarts.values())))
    if count < 2 or values.size != count:
        return None
    params = [
        {name: np.asarray(restarts[name][index], dtype=float) for name in hmm.param_names}
        for index in range(count)
    ]
    best = int(attrs["best_restart"])
    values = np.where(np.isfinite(values), values, np.nan)
    distances = np.array(
        [_matched_distance(hmm, params[best], params[index]) for index in range(count)]
    )
    return RestartComparison(objective, values, best, distances, params)


def weak_identifiability_flag(comparison: RestartComparison, hmm: HMM) -> Flag | None:
    """Restarts at different solutions within a few nats of the kept one (warning)."""
    close = comparison.close
    if not close:
        return None
    best = comparison.best
    parts = [
        f"restart {index}: {comparison.objective} {comparison.gaps[index]:.2f} nats below, "
        f"states up to squared Hellinger {comparison.distances[index]:.2f} from the kept "
        "solution's"
        for index in close
    ]
    emission = hmm.emission.param_names
    solutions = {
        str(index): {name: comparison.params[index][name].round(3).tolist() for name in emission}
        for index in (best, *close)
    }
    return Flag(
        kind="weak_identifiability",
        severity="warning",
        summary=(
            f"{len(close)} restart(s) ended at a different solution within "
            f"{WEAK_IDENTIFIABILITY_NATS:g} nats of the kept restart ({best}): "
            + "; ".join(parts)
            + "."
        ),
        measured={
            "restart_values": comparison.values,
            "objective": comparison.objective,
            "gap_nats": comparison.gaps,
            "solution_distance": comparison.distances,
            "solutions": solutions,
        },
        threshold={"nats": WEAK_IDENTIFIABILITY_NATS, "solution_distance": SOLUTION_DISTANCE},
        cause=(
            "the data hardly prefer one explanation over another (several modes of nearly the "
            f"same height: a posterior density ratio of at most e^{WEAK_IDENTIFIABILITY_NATS:g}"
            "); the kept point is one of them, and per-state results depend on which restart "
            "won."
        ),
        remedies=(Remedy.MORE_DATA, Remedy.FEWER_STATES, Remedy.LONGER_RUN),
        cause_kind="weak identifiability",
    )
