"""Viterbi training (hard EM, segmental k-means): decode, count, re-estimate.

Each iteration decodes the most probable paths ``z*`` under the current parameters
(:func:`hmm_pyro.kernels.viterbi`) and re-estimates the parameters from their counts with the
prior pseudo-counts (the M-step of :mod:`hmm_pyro.learning.mstep`). It ascends the
classification objective ``max_z log p(y, z | theta) + log p(theta)`` (recorded as
``objective``; ``loglik`` is the marginal ``log p(y | theta)``, which hard EM does not
necessarily increase) and stops when the decoded paths no longer change: the next update would
return the same parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from hmm_pyro import kernels
from hmm_pyro._parallel import torch_threads
from hmm_pyro._types import Params, SequencesLike
from hmm_pyro._validation import check_bool
from hmm_pyro.data import Sequences
from hmm_pyro.fit import Fit
from hmm_pyro.learning.monitor import ConvergenceMonitor
from hmm_pyro.learning.mstep import check_initial_mode, maximize
from hmm_pyro.learning.objective import PriorTensors, boundary_count, log_prior, prior_tensors
from hmm_pyro.learning.restarts import check_common, fit_from_runs, run_restarts
from hmm_pyro.learning.runs import Run, is_valid, to_float64
from hmm_pyro.learning.statistics import path_statistics
from hmm_pyro.model import HMM

__all__ = ["fit_viterbi_training", "run_viterbi_training"]


def _hard_em_loop(
    hmm: HMM,
    data: Sequences,
    start: Mapping[str, torch.Tensor],
    prior: PriorTensors | None,
    max_iter: int,
    emission_prior: bool,
    initial: str,
    tick: Callable[[], None] | None,
) -> Run:
    """The hard-EM iterations of :func:`run_viterbi_training`."""
    prior = prior_tensors(hmm) if prior is None else prior
    monitor = ConvergenceMonitor(0.0, max_iter)
    params = to_float64(start, initial)

    def evaluate(current: Params) -> tuple[float, float, int, torch.Tensor]:
        inputs = hmm.kernel_inputs(current, data)  # Viterbi needs the table: reuse it
        paths, scores = kernels.viterbi(*inputs)
        log_lik = kernels.log_likelihood(*inputs).sum()
        objective = scores.sum() + log_prior(hmm, current, prior, emission_prior)
        return float(log_lik), float(objective), boundary_count(hmm, current, prior), paths

    log_lik, objective, boundary, paths = evaluate(params)
    final = (objective, log_lik, boundary)
    stop = monitor.record(log_lik, objective, boundary, stop_rule=False)
    while not stop:
        stats = path_statistics(hmm, data, paths)
        candidate = maximize(hmm, stats, prior, params, emission_prior, initial)
        if is_valid(hmm, candidate):
            values = evaluate(candidate)
            unchanged = bool(torch.equal(values[3], paths))
            stop = monitor.record(*values[:3], stop_rule=unchanged)
            if monitor.status != "non_finite":
                params, paths = candidate, values[3]
                final = (values[1], values[0], values[2])
        else:
            stop = monitor.record(float("nan"), float("nan"), boundary, params_finite=False)
        if tick is not None:
            tick()
    return Run(params, to_float64(start), monitor, *final)


def run_viterbi_training(
    hmm: HMM,
    data: Sequences,
    start: Mapping[str, torch.Tensor],
    prior: PriorTensors | None = None,
    max_iter: int = 100,
    emission_prior: bool = True,
    initial: str = "free",
    tick: Callable[[], None] | None = None,
) -> Run:
    """Hard EM from one start (no restarts, no ``Fit``).

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        Observations, validated for the model.
    start : dict of torch.Tensor
        Starting parameters.
    prior : PriorTensors, optional
        Resolved prior (default: from ``hmm``).
    max_iter, emission_prior, initial
        As in :func:`fit_viterbi_training`.
    tick : callable, optional
        Called after every update.

    Returns
    -------
    Run
    """
    # Small tensors: extra torch intra-op threads only add waiting on a busy machine.
    with torch_threads(1):
        return _hard_em_loop(hmm, data, start, prior, max_iter, emission_prior, initial, tick)


def fit_viterbi_training(
    hmm: HMM,
    data: SequencesLike,
    restarts: int = 5,
    max_iter: int = 100,
    seed: int | None = None,
    init: str | Mapping[str, Any] = "auto",
    emission_prior: bool = True,
    initial: str = "free",
    progress: bool = True,
) -> Fit:
    """Fit parameters by Viterbi training (hard EM / segmental k-means) with random restarts.

    Parameters
    ----------
    hmm : HMM
        The model (any emission family); its prior supplies the pseudo-counts.
    data : Sequences or array-like
        Observations (missing values allowed).
    restarts : int
        Independent starts; the one with the highest final objective is kept.
    max_iter : int
        Maximum updates per restart.
    seed : int, optional
        Master seed (restart ``r`` uses child seed ``r``).
    init : {"auto", "prior", "data", "em"} or dict
        Starting points, as in :func:`hmm_pyro.learning.fit_em`.
    emission_prior : bool
        ``False``: maximum likelihood for the emission parameters.
    initial : {"free", "stationary"}
        As in :func:`hmm_pyro.learning.fit_em`.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Fit
        ``method == "viterbi_training"``, shaped like :func:`~hmm_pyro.learning.fit_em`'s:
        ``objective`` is ``max_z log p(y, z | theta) + log p(theta)`` (non-decreasing) and
        ``loglik`` the marginal log likelihood. ``converged`` means the decoded paths stopped
        changing (with no decrease and no non-finite value).

    Notes
    -----
    Hard EM is biased (it fits the parameters to the single best segmentation, which
    underestimates overlap between states) and is usually a fast initialiser rather than the
    final estimate. A state that no decoded path visits keeps its previous emission parameters
    when there is no emission prior.
    """
    data, restarts, max_iter, _ = check_common(hmm, data, restarts, max_iter, 0.0)
    emission_prior = check_bool("emission_prior", emission_prior)
    progress = check_bool("progress", progress)
    prior = prior_tensors(hmm)
    check_initial_mode(initial, prior)

    def runner(start: Params, tick: Callable[[], None]) -> Run:
        return run_viterbi_training(
            hmm, data, start, prior, max_iter, emission_prior, initial, tick
        )

    runs, seed, seeds, seconds = run_restarts(
        hmm, data, runner, restarts, seed, init, max_iter, progress, desc="Viterbi training"
    )
    settings = {"max_iter": max_iter, "emission_prior": emission_prior, "initial": initial}
    return fit_from_runs(hmm, data, "viterbi_training", runs, seed, seeds, seconds, init, settings)
