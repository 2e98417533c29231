"""Convergence monitor for EM-type algorithms: histories, stopping rule and honest status.

EM and its generalisations never decrease their objective. A decrease beyond round-off therefore
means a bug or a numerical failure, and non-finite values mean the run broke down (for example a
Gaussian state collapsing onto one point without a variance prior). The monitor records both and
then refuses to call the run converged, whatever the stopping rule said.
"""

from __future__ import annotations

import math

__all__ = ["DECREASE_RTOL", "STATUSES", "ConvergenceMonitor"]

DECREASE_RTOL = 1e-9
"""A step that lowers the objective by more than this (relative) is a decrease, not round-off."""
STATUSES = ("running", "converged", "max_iter", "non_finite")


class ConvergenceMonitor:
    """Record the log likelihood and objective of every iterate; decide when to stop.

    Entry ``i`` of the histories belongs to the parameters after ``i`` updates (entry 0: the
    start), i.e. the values before the ``(i+1)``-th M-step, as in hmmlearn's ``monitor_.history``.

    Parameters
    ----------
    tol : float
        Stop when the objective changes by at most ``tol * max(|objective|, 1)`` in one step.
        ``0`` stops only at an exact fixed point.
    max_iter : int
        Maximum number of updates.

    Attributes
    ----------
    log_likelihood, objective : list of float
        Histories.
    boundary : list of int
        Number of probabilities at zero where the prior density is ``+inf`` (Dirichlet
        concentration below 1). Moving onto a new such face raises the full objective to
        ``+inf``; a finite-part decrease across such a step is not counted as a decrease.
    decreases : list of int
        Indices ``i`` where ``objective[i] < objective[i-1]`` beyond :data:`DECREASE_RTOL`.
    status : str
        ``"running"``, ``"converged"`` (stopping rule met), ``"max_iter"`` or
        ``"non_finite"`` (a parameter or the objective became NaN/inf; the run stopped there).
    """

    def __init__(self, tol: float, max_iter: int) -> None:
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self.log_likelihood: list[float] = []
        self.objective: list[float] = []
        self.boundary: list[int] = []
        self.decreases: list[int] = []
        self.status = "running"

    @property
    def iterations(self) -> int:
        """Number of updates made (history length minus one)."""
        return max(len(self.objective) - 1, 0)

    @property
    def converged(self) -> bool:
        """True only when the stopping rule was met, nothing decreased and all was finite."""
        return self.status == "converged" and not self.decreases

    def record(
        self,
        log_likelihood: float,
        objective: float,
        boundary: int = 0,
        params_finite: bool = True,
        stop_rule: bool | None = None,
    ) -> bool:
        """Append one iterate's values; return True when the run should stop.

        Parameters
        ----------
        log_likelihood, objective : float
            Values at the new iterate.
        boundary : int
            See the class attributes.
        params_finite : bool
            False when a parameter is NaN/inf or out of its domain.
        stop_rule : bool, optional
            An external convergence criterion (hard EM: the decoded paths did not change);
            replaces the tolerance rule when given.

        Returns
        -------
        bool
        """
        self.log_likelihood.append(float(log_likelihood))
        self.objective.append(float(objective))
        self.boundary.append(int(boundary))
        if not (params_finite and math.isfinite(log_likelihood) and math.isfinite(objective)):
            self.status = "non_finite"
            return True
        index = len(self.objective) - 1
        if index > 0:
            current, previous = self.objective[-1], self.objective[-2]
            change = current - previous
            scale = max(abs(current), abs(previous), 1.0)
            if change < -DECREASE_RTOL * scale and self.boundary[-1] == self.boundary[-2]:
                self.decreases.append(index)
            if stop_rule is None:
                stop_rule = abs(change) <= self.tol * max(abs(current), 1.0)
            if stop_rule:
                self.status = "converged"
                return True
        if self.iterations >= self.max_iter:
            self.status = "max_iter"
            return True
        return False

    def summary(self) -> dict[str, object]:
        """JSON-ready summary: status, converged, iterations, decreases."""
        return {
            "status": self.status,
            "converged": self.converged,
            "iterations": self.iterations,
            "decreases": list(self.decreases),
        }
