"""EM from one start (no restarts, no ``Fit``), and the starts that use it.

:func:`run_em` is the engine of :func:`hmm_pyro.learning.fit_em`; :func:`em_start` is the short
EM run behind ``init="em"``; :func:`initial_params` is the start every runner uses: the
:mod:`hmm_pyro.starts` methods plus ``"em"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from hmm_pyro._parallel import torch_threads
from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.learning.monitor import ConvergenceMonitor
from hmm_pyro.learning.mstep import maximize
from hmm_pyro.learning.objective import PriorTensors, boundary_count, log_prior, prior_tensors
from hmm_pyro.learning.runs import Run, check_homogeneous, is_valid, to_float64
from hmm_pyro.learning.statistics import expected_statistics
from hmm_pyro.model import HMM
from hmm_pyro.starts import initial_params as _initial_params

__all__ = ["em_start", "initial_params", "run_em"]


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
        if is_valid(hmm, candidate):
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
    check_homogeneous(hmm)
    data = hmm.prepare_data(data)
    start = initial_params(hmm, data, "data", seed=seed)
    run = run_em(hmm, data, start, max_iter=iterations, tol=0.0)
    params = {}
    for name, value in run.params.items():
        if name in hmm.simplex_params:
            value = (1.0 - floor) * value + floor / value.shape[-1]
        params[name] = value.to(hmm.dtype)
    return params


def initial_params(
    hmm: HMM,
    data: Sequences,
    method: str | Mapping[str, Any] = "auto",
    seed: int | None = None,
) -> Params:
    """One symmetry-breaking start: :func:`hmm_pyro.starts.initial_params` with ``"em"``.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        The data.
    method : {"auto", "prior", "data", "em"} or dict
        As in :func:`hmm_pyro.starts.initial_params`; ``"em"`` runs :func:`em_start`.
    seed : int, optional
        Seed of the draw.

    Returns
    -------
    dict of torch.Tensor
    """
    return _initial_params(hmm, data, method, seed=seed, em_start=em_start)
