"""Baum-Welch EM for the MAP (or ML) estimate, with random restarts.

The E-step is one forward-backward pass (:func:`hmm_pyro.kernels.forward_backward`, numba on
the CPU); the M-step (:mod:`hmm_pyro.learning.mstep`) is vectorised over states. The objective
``log p(y | theta) + log p(theta)`` uses exactly the prior densities of
:meth:`hmm_pyro.HMM.log_prior`, so EM's MAP is the mode that ``fit_svi(guide="map")`` seeks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from hmm_pyro._validation import check_bool
from hmm_pyro.data import Sequences
from hmm_pyro.inference._parallel import torch_threads
from hmm_pyro.inference.fit import Fit
from hmm_pyro.inference.init import initial_params
from hmm_pyro.learning.monitor import ConvergenceMonitor
from hmm_pyro.learning.mstep import check_initial_mode, maximize
from hmm_pyro.learning.objective import PriorTensors, boundary_count, log_prior, prior_tensors
from hmm_pyro.learning.restarts import (
    Run,
    check_common,
    fit_from_runs,
    is_valid,
    run_restarts,
    to_float64,
)
from hmm_pyro.learning.statistics import expected_statistics
from hmm_pyro.model import HMM

__all__ = ["em_start", "fit_em", "run_em"]

Params = dict[str, torch.Tensor]


def _em_loop(
    hmm: HMM,
    data: Sequences,
    start: Mapping[str, torch.Tensor],
    prior: PriorTensors | None,
    max_iter: int,
    tol: float,
    emission_prior: bool,
    initial: str,
    tick: Callable[[], None] | None,
) -> Run:
    """The EM iterations of :func:`run_em`."""
    prior = prior_tensors(hmm) if prior is None else prior
    monitor = ConvergenceMonitor(tol, max_iter)
    params = to_float64(start, initial)

    def evaluate(current: Params) -> tuple[float, float, int, Any]:
        log_lik, stats = expected_statistics(hmm, data, current)
        objective = log_lik + log_prior(hmm, current, prior, emission_prior)
        return float(log_lik), float(objective), boundary_count(hmm, current, prior), stats

    log_lik, objective, boundary, stats = evaluate(params)
    final = (objective, log_lik, boundary)
    stop = monitor.record(log_lik, objective, boundary)
    while not stop:
        candidate = maximize(hmm, stats, prior, params, emission_prior, initial)
        if is_valid(candidate):
            values = evaluate(candidate)
            stop = monitor.record(*values[:3])
            if monitor.status != "non_finite":
                params, stats = candidate, values[3]
                final = (values[1], values[0], values[2])
        else:
            stop = monitor.record(float("nan"), float("nan"), boundary, params_finite=False)
        if tick is not None:
            tick()
    return Run(params, to_float64(start), monitor, *final)


def run_em(
    hmm: HMM,
    data: Sequences,
    start: Mapping[str, torch.Tensor],
    prior: PriorTensors | None = None,
    max_iter: int = 200,
    tol: float = 1e-6,
    emission_prior: bool = True,
    initial: str = "free",
    tick: Callable[[], None] | None = None,
) -> Run:
    """EM from one start (no restarts, no ``Fit``): the engine of :func:`fit_em`.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        Observations, validated for the model (``hmm.prepare_data``).
    start : dict of torch.Tensor
        Starting parameters.
    prior : PriorTensors, optional
        Resolved prior (default: resolved from ``hmm``).
    max_iter, tol, emission_prior, initial
        As in :func:`fit_em`.
    tick : callable, optional
        Called after every update (progress bars).

    Returns
    -------
    Run
        Final parameters and the convergence monitor; entry ``i`` of the histories is the value
        at the parameters after ``i`` M-steps.
    """
    # Small tensors: extra torch intra-op threads only add waiting on a busy machine.
    with torch_threads(1):
        return _em_loop(hmm, data, start, prior, max_iter, tol, emission_prior, initial, tick)


def fit_em(
    hmm: HMM,
    data: Any,
    restarts: int = 5,
    max_iter: int = 200,
    tol: float = 1e-6,
    seed: int | None = None,
    init: str | Mapping[str, Any] = "auto",
    emission_prior: bool = True,
    initial: str = "free",
    progress: bool = True,
) -> Fit:
    """Fit the MAP (or ML) parameters by Baum-Welch EM with random restarts.

    Parameters
    ----------
    hmm : HMM
        The model: categorical, Gaussian (univariate or diagonal multivariate) or Poisson
        emissions. Its prior supplies the MAP pseudo-counts: Dirichlet concentration 1 gives
        the maximum-likelihood estimate of ``pi``, ``A`` and ``B``.
    data : Sequences or array-like
        Observations; missing values (NaN) contribute no emission term and no emission
        statistic.
    restarts : int
        Independent starts; the run with the highest final log posterior is kept.
    max_iter : int
        Maximum EM updates per restart.
    tol : float
        Stop when one update changes the objective by at most ``tol`` relative to its size.
    seed : int, optional
        Master seed; restart ``r`` uses child seed ``r`` (recorded). ``None`` draws one.
    init : {"auto", "prior", "data", "em"} or dict
        Starting points (:func:`hmm_pyro.inference.init.initial_params`), one per restart and
        never with two identical states. A dict is a single start (one run).
    emission_prior : bool
        ``False`` drops the emission parameters' prior: maximum likelihood for them (the
        Dirichlet priors of ``pi`` and ``A`` stay; set them to 1 for a plain MLE).
    initial : {"free", "stationary"}
        ``"free"``: ``pi`` is estimated from the first steps. ``"stationary"``: ``pi`` is tied to
        the stationary distribution of ``A``; the ``A`` update is then a generalised M-step
        (L-BFGS on softmax logits, accepted only if it increases the expected log posterior), so
        the objective still never decreases. Needs ``pi`` and ``A`` concentrations ``>= 1``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Fit
        ``method == "em"``; one chain, one draw: the best point. ``sample_stats``: ``loglik``
        and ``objective`` (log likelihood and log posterior) per restart and iteration
        (entry ``i``: after ``i`` updates, as hmmlearn's ``monitor_.history``) and
        ``final_objective``. Attributes: ``init``, ``seed``, ``restart_seeds``,
        ``best_restart``, ``converged``, ``status``, ``iterations``, ``decreases``,
        ``init_min_hellinger`` and ``restart_params``.

    Notes
    -----
    A restart is ``converged`` only if the stopping rule was met, the objective never decreased
    beyond round-off (relative ``1e-9``) and every value stayed finite. ``status`` is
    ``"non_finite"`` when an update produced NaN/inf or an invalid value (e.g. a Gaussian state
    collapsing onto one point without a variance prior): that restart stops and keeps its last
    valid parameters, and is kept as the result only if every restart failed (with a warning).
    With Dirichlet concentrations below 1 the posterior density is unbounded on the boundary;
    MAP-EM then sets probabilities to exactly zero (clamp and renormalise, as hmmlearn does),
    ``objective`` records the finite part of the log posterior (the ``+inf`` terms of those
    zeros left out, their number in the ``boundary_zeros`` attribute) and restarts are ranked by
    it.
    """
    data, restarts, max_iter, tol = check_common(hmm, data, restarts, max_iter, tol)
    emission_prior = check_bool("emission_prior", emission_prior)
    progress = check_bool("progress", progress)
    prior = prior_tensors(hmm)
    check_initial_mode(initial, prior)

    def runner(start: Params, tick: Callable[[], None]) -> Run:
        return run_em(hmm, data, start, prior, max_iter, tol, emission_prior, initial, tick)

    runs, seed, seeds, seconds = run_restarts(
        hmm, data, runner, restarts, seed, init, max_iter, progress, desc="EM"
    )
    settings = {
        "max_iter": max_iter,
        "tol": tol,
        "emission_prior": emission_prior,
        "initial": initial,
    }
    return fit_from_runs(hmm, data, "em", runs, seed, seeds, seconds, init, settings)


def em_start(
    hmm: HMM, data: Sequences, seed: int, iterations: int = 30, floor: float = 1e-6
) -> Params:
    """A starting point from a short EM run (``initial_params(method="em")``).

    EM (with the model's prior, free ``pi``) runs for ``iterations`` updates from a ``"data"``
    start drawn with ``seed``. Probabilities are then mixed with ``floor`` of the uniform
    distribution so that the start lies in the interior (samplers need finite unconstrained
    values).

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        The observations.
    seed : int
        Seed of the ``"data"`` start.
    iterations : int
        EM updates.
    floor : float
        Weight of the uniform distribution mixed into every probability row.

    Returns
    -------
    dict of torch.Tensor
        In the model's dtype.
    """
    data = hmm.prepare_data(data)
    start = initial_params(hmm, data, "data", seed=seed)
    run = run_em(hmm, data, start, max_iter=iterations, tol=0.0)
    params = {}
    for name, value in run.params.items():
        if name in ("pi", "A", "B"):
            value = (1.0 - floor) * value + floor / value.shape[-1]
        params[name] = value.to(hmm.dtype)
    return params
