"""Restarts shared by EM and hard EM: seeded symmetry-breaking starts, best run, the ``Fit``.

Each restart starts from :func:`hmm_pyro.learning.initial_params` with its own child seed
(:func:`~hmm_pyro.starts.derive_seeds`), so no restart starts with identical states.
The kept run is the one with the highest final objective among the runs that stayed finite.
With Dirichlet concentrations below 1 that is the finite part of the log posterior (see
:mod:`hmm_pyro.learning.objective`): every point with a zero probability has infinite density
there, so ranking by the full density would prefer the most degenerate restart. The ``Fit``
holds that point; its ``sample_stats`` hold every restart's histories, its attributes every
restart's status and final parameters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from hmm_pyro._progress import Progress
from hmm_pyro._random import resolve_seed
from hmm_pyro._types import Params, SequencesLike
from hmm_pyro._validation import check_int, check_positive, describe, warn
from hmm_pyro.data import Sequences
from hmm_pyro.fit import Fit
from hmm_pyro.learning.em_steps import initial_params
from hmm_pyro.learning.runs import Run, check_homogeneous
from hmm_pyro.model import HMM
from hmm_pyro.starts import INIT_METHODS, derive_seeds, min_separation

__all__ = ["check_common", "fit_from_runs", "run_restarts"]


def check_common(
    hmm: HMM, data: SequencesLike, restarts: int, max_iter: int, tol: float
) -> tuple[Sequences, int, int, float]:
    """Validate the arguments shared by the EM-type runners."""
    if not isinstance(hmm, HMM):
        raise TypeError(f"hmm: expected a hmm_pyro.HMM, got {describe(hmm)}")
    check_homogeneous(hmm)
    data = hmm.prepare_data(data)
    restarts = check_int("restarts", restarts, minimum=1)
    max_iter = check_int("max_iter", max_iter, minimum=0)
    tol = check_positive("tol", tol, allow_zero=True)
    return data, restarts, max_iter, tol


def _starts(
    hmm: HMM, data: Sequences, init: str | Mapping[str, Any], seeds: list[int]
) -> list[Params]:
    if isinstance(init, Mapping):
        params = initial_params(hmm, data, init)
        impossible = torch.nonzero(hmm.log_likelihood(params, data) == -math.inf).flatten()
        if impossible.numel():
            raise ValueError(
                f"init: the data have zero probability under the given parameters (sequence "
                f"{int(impossible[0])}{' and others' if impossible.numel() > 1 else ''}); "
                "EM and Viterbi training cannot move from there: give every observed value a "
                "positive probability"
            )
        return [params]
    if not isinstance(init, str) or init not in INIT_METHODS:
        raise ValueError(
            f"init: expected one of {INIT_METHODS} or a dict of parameters, got {describe(init)}"
        )
    return [initial_params(hmm, data, init, seed=child) for child in seeds]


def run_restarts(
    hmm: HMM,
    data: Sequences,
    runner: Callable[[Params, Callable[[], None]], Run],
    restarts: int,
    seed: int | None,
    init: str | Mapping[str, Any],
    max_iter: int,
    progress: bool,
    desc: str,
) -> tuple[list[Run], int, list[int], float]:
    """Run ``runner(start, tick)`` from every start.

    A dict ``init`` is one start: it is run once (restarts of a deterministic algorithm from the
    same point are identical).

    Returns
    -------
    runs, seed, restart_seeds, seconds
    """
    seed = resolve_seed(seed)
    seeds = derive_seeds(seed, restarts)
    starts = _starts(hmm, data, init, seeds)
    seeds = seeds[: len(starts)]
    began = time.perf_counter()
    runs = []
    with Progress([max_iter * len(starts)], desc=desc, enabled=progress) as bar:
        for start in starts:
            runs.append(runner(start, lambda: bar.update(1)))
    return runs, seed, seeds, time.perf_counter() - began


def _best(runs: list[Run]) -> int:
    finite = [run.monitor.status != "non_finite" for run in runs]
    if not any(finite):
        warn(
            "every restart stopped at non-finite values (a state collapsed or the data are "
            "impossible under the parameters); the last valid parameters of the best restart are "
            "returned. Use a prior on the emission parameters or fewer states."
        )
        finite = [True] * len(runs)
    keys = [run.final_objective if ok else -np.inf for run, ok in zip(runs, finite, strict=True)]
    return max(range(len(runs)), key=lambda index: keys[index])


def fit_from_runs(
    hmm: HMM,
    data: Sequences,
    method: str,
    runs: list[Run],
    seed: int,
    seeds: list[int],
    seconds: float,
    init: str | Mapping[str, Any],
    settings: dict[str, Any],
) -> Fit:
    """Assemble the ``Fit``: best point, per-restart histories and attributes."""
    best = _best(runs)
    longest = max(len(run.monitor.objective) for run in runs)
    count = len(runs)
    loglik = np.full((1, 1, count, longest), np.nan)
    objective = np.full((1, 1, count, longest), np.nan)
    for index, run in enumerate(runs):
        loglik[0, 0, index, : len(run.monitor.log_likelihood)] = run.monitor.log_likelihood
        objective[0, 0, index, : len(run.monitor.objective)] = run.monitor.objective
    stats = {
        "loglik": loglik,
        "objective": objective,
        "final_objective": np.asarray([run.final_objective for run in runs])[None, None],
    }
    dims = {
        "loglik": ["restart", "iteration"],
        "objective": ["restart", "iteration"],
        "final_objective": ["restart"],
    }
    attrs = {
        "init": init if isinstance(init, str) else "user",
        "seed": seed,
        "restart_seeds": seeds,
        "restarts": count,
        "best_restart": best,
        **settings,
        "converged": [run.monitor.converged for run in runs],
        "status": [run.monitor.status for run in runs],
        "iterations": [run.monitor.iterations for run in runs],
        "decreases": [list(run.monitor.decreases) for run in runs],
        "final_log_likelihood": [run.final_log_likelihood for run in runs],
        "boundary_zeros": [run.final_boundary for run in runs],
        "sampling_time": seconds,
        "init_min_hellinger": [float(min_separation(hmm, run.start)) for run in runs],
        "restart_params": {
            name: [run.params[name].tolist() for run in runs] for name in hmm.param_names
        },
    }
    return Fit.from_params(
        hmm,
        data,
        runs[best].params,
        method=method,
        attrs=attrs,
        sample_stats=stats,
        sample_stats_dims=dims,
    )
