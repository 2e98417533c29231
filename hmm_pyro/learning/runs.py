"""One run of an EM-type algorithm from one start: its record and the checks on its points."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from hmm_pyro._types import Params
from hmm_pyro.learning.monitor import ConvergenceMonitor
from hmm_pyro.learning.mstep import stationary_initial
from hmm_pyro.model import HMM

__all__ = ["Run", "check_homogeneous", "is_valid", "to_float64"]


def check_homogeneous(hmm: HMM) -> None:
    """Refuse a model without one ``pi`` and one ``A``: the classical M-step does not apply.

    The classical learners update ``pi`` and ``A`` from expected counts; regression
    coefficients (:class:`~hmm_pyro.CovariateHMM`) or per-subject matrices
    (:class:`~hmm_pyro.MultilevelHMM`) would need an iterative M-step, which is not implemented.
    """
    if hmm.not_classical:
        raise ValueError(
            f"hmm: {hmm!r}: {hmm.not_classical}; EM, Viterbi training and supervised counting "
            "update one transition matrix. Fit it with fit_map, fit_nuts or fit_svi"
        )


@dataclass
class Run:
    """One restart's outcome.

    Attributes
    ----------
    params : dict of torch.Tensor
        Last valid (finite, in-domain) parameters.
    start : dict of torch.Tensor
        Starting parameters.
    monitor : ConvergenceMonitor
        Histories and status.
    final_objective, final_log_likelihood : float
        Values at ``params``.
    final_boundary : int
        Boundary count at ``params``.
    """

    params: Params
    start: Params
    monitor: ConvergenceMonitor
    final_objective: float
    final_log_likelihood: float
    final_boundary: int


def to_float64(params: Mapping[str, torch.Tensor], initial: str = "free") -> Params:
    """Copy parameters to float64; with ``initial="stationary"`` tie ``pi`` to ``A``."""
    params = {
        name: torch.as_tensor(value).to(torch.float64).clone() for name, value in params.items()
    }
    if initial == "stationary":
        params["pi"] = stationary_initial(params["A"])
    return params


def is_valid(hmm: HMM, params: Params) -> bool:
    """True when every parameter of ``hmm`` is finite and in its domain.

    Probability rows (:attr:`HMM.simplex_params`) come out of the M-step normalised (or
    unchanged), so only their finiteness and sign are checked here; the emission's
    :attr:`~hmm_pyro.emissions.Emission.positive_params` must be strictly positive.
    """
    positive, simplex = hmm.emission.positive_params, hmm.simplex_params
    for name, value in params.items():
        if not bool(torch.isfinite(value).all()):
            return False
        if name in positive and bool((value <= 0).any()):
            return False
        if name in simplex and bool((value < 0).any()):
            return False
    return True
