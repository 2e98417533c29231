"""``Flag``: one degeneracy finding, with what was measured, the threshold, cause and remedy."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

__all__ = ["Flag", "Remedy", "jsonable"]


class Remedy(str, Enum):
    """The remedies a flag can recommend; ``.advice`` says how to apply one."""

    SYMMETRY_BREAKING_INIT = "symmetry-breaking init"
    RELABEL = "relabelling"
    MORE_DATA = "stronger or more data"
    OTHER_PRIOR = "other prior"
    FEWER_STATES = "fewer states"
    ORDERING_CONSTRAINT = "ordering constraint"
    LONGER_RUN = "longer run"
    MIXTURE = "mixture model"
    MAP_STARTS = "start at the best MAP restarts"
    STACK_CHAINS = "stack the chains"
    OTHER_FAMILY = "other emission family"
    MORE_STATES = "more states"
    MORE_RESTARTS = "more restarts"

    @property
    def advice(self) -> str:
        """One sentence on how to apply the remedy in hmm_pyro."""
        return _ADVICE[self]


_ADVICE = {
    Remedy.SYMMETRY_BREAKING_INIT: (
        "start the states apart: fit_map/fit_svi/fit_nuts init='auto' (default), 'prior' or "
        "'data', or several restarts; never Pyro's init_to_median/init_to_mean/"
        "init_to_feasible, which start every state at the same point"
    ),
    Remedy.RELABEL: (
        "align the labels before reading per-state summaries: hmm_pyro.relabel(fit) "
        "(label-invariant quantities such as the log likelihood need no relabelling)"
    ),
    Remedy.MORE_DATA: (
        "collect more or longer sequences, or more informative observations, so that the "
        "likelihood can separate the states"
    ),
    Remedy.OTHER_PRIOR: (
        "change the prior: weaker or state-specific emission priors (Prior(B=..., mu_loc=...)) "
        "if the prior makes the states alike; a sparse transition prior (Prior(A<1)) empties "
        "unneeded states instead of merging them"
    ),
    Remedy.FEWER_STATES: "fit fewer states (HMM(num_states=...)): the data support fewer",
    Remedy.ORDERING_CONSTRAINT: (
        "identify the labels by a prior that differs between states (e.g. increasing "
        "Prior(mu_loc=[...])); only sound when that parameter is well separated"
    ),
    Remedy.LONGER_RUN: (
        "run longer (more warmup and draws) or raise target_accept; check the trace and rank plots"
    ),
    Remedy.MIXTURE: (
        "the states do not persist from one step to the next: model the observations as an "
        "i.i.d. mixture of the states' emission laws (an HMM whose transition rows are all "
        "equal), or, if one emission law describes them, a single state (HMM(num_states=1))"
    ),
    Remedy.MAP_STARTS: (
        "start every chain in the best mode found by optimisation: map_fit = "
        "hmm_pyro.fit_map(hmm, data, restarts=8), then hmm_pyro.fit_nuts(hmm, data, "
        "init=map_fit), which starts the chains at the restarts within 2 nats of the best; "
        "drop chains stuck far below it"
    ),
    Remedy.STACK_CHAINS: (
        "if the modes are all plausible, combine the chains by stacking weights from their "
        "held-out predictive performance (hmm_pyro.diagnostics.stack_chains(fit); Yao, "
        "Vehtari & Gelman 2022) instead of pooling them as if they mixed"
    ),
    Remedy.MORE_STATES: (
        "fit more states (HMM(num_states=...)) and compare by held-out likelihood: the Markov "
        "chain with these states does not reproduce the data's dwell times or autocorrelation"
    ),
    Remedy.MORE_RESTARTS: (
        "fit again with more restarts (fit_map/fit_em/fit_svi restarts=...), or start from the "
        "better solution diagnose found: init=report.flag('local_optimum').measured"
        "['better_params'] (fit_nuts: chains started there, or at the best MAP restarts)"
    ),
    Remedy.OTHER_FAMILY: (
        "model what the check shows: an emission family with heavier tails or overdispersion, "
        "or covariates; extra states can absorb such misfit, and then they are not regimes "
        "(compare the fit with fewer states)"
    ),
}


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and enums to plain JSON-compatible values."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Flag:
    """One degeneracy finding.

    Parameters
    ----------
    kind : str
        Machine-readable name, e.g. ``"emission_collapse"``, ``"label_switching"``.
    severity : {"error", "warning"}
        ``"error"``: per-state results are wrong or meaningless; ``"warning"``: a caveat.
    summary : str
        One line saying what was found.
    measured : dict
        The numbers the decision was based on.
    threshold : dict
        The thresholds they were compared with (see :mod:`hmm_pyro.diagnostics.thresholds`).
    cause : str
        The likely cause, in words.
    remedies : tuple of Remedy
        What to do, most promising first.
    states : tuple of int
        The states concerned (labels as in the diagnosed fit), if any.
    cause_kind : str
        The cause in one or two words, for programs: ``"data"``, ``"insufficient data"``,
        ``"prior"``, ``"symmetric start"``, ``"label switching"``, ``"sampler"``,
        ``"optimizer"``, ``"no temporal structure"``, ``"weak identifiability"``, or
        ``"not established"`` (a cause that needs the refits of ``diagnose(deep=True)``).
    """

    kind: str
    severity: str
    summary: str
    measured: dict[str, Any]
    threshold: dict[str, Any]
    cause: str
    remedies: tuple[Remedy, ...]
    states: tuple[int, ...] = field(default=())
    cause_kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict of every field (remedies with their advice)."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "summary": self.summary,
            "measured": jsonable(self.measured),
            "threshold": jsonable(self.threshold),
            "cause": self.cause,
            "cause_kind": self.cause_kind,
            "remedies": [{"remedy": r.value, "advice": r.advice} for r in self.remedies],
            "states": list(self.states),
        }

    def __str__(self) -> str:
        remedies = "; ".join(r.value for r in self.remedies)
        return (
            f"[{self.severity}] {self.kind}: {self.summary} Cause: {self.cause} Remedy: {remedies}."
        )
