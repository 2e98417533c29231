"""One NUTS chain as a task: what the worker processes import, and nothing more.

:func:`run_chain` rebuilds the model and data from a :class:`ChainTask` (plain arrays and a
configuration), runs Pyro's ``NUTS`` on :class:`~hmm_pyro.inference.potential.Potential`
under the chain's own seed, and returns the draws and per-iteration statistics. It lives apart
from :mod:`hmm_pyro.inference.nuts` so that a worker imports torch, Pyro's NUTS and the model,
but not ArviZ, xarray and matplotlib (which ``fit_nuts`` needs to build its result): measured,
that halves a worker's start-up imports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pyro.infer.mcmc import NUTS

from hmm_pyro.covariates import Covariates
from hmm_pyro.data import Sequences
from hmm_pyro.inference._chains import save_chain
from hmm_pyro.inference.potential import Potential
from hmm_pyro.model import HMM

__all__ = ["REPORT_EVERY", "ChainResult", "ChainTask", "run_chain"]

REPORT_EVERY = 10
"""Iterations between progress reports of a chain."""


@dataclass(frozen=True)
class ChainTask:
    """One chain's model, data, start and settings.

    ``dense_mass`` is :func:`~hmm_pyro.inference.nuts.fit_nuts`'s (Pyro's ``full_mass``);
    ``simplex`` (the coordinates of the simplex rows, see
    :class:`~hmm_pyro.inference.potential.Potential`) is an internal switch that ``fit_nuts``
    leaves at stick-breaking, kept for ``benchmarks/ess_per_gradient.py``, which measured it.
    """

    index: int
    hmm_config: dict[str, Any]
    values: np.ndarray
    lengths: np.ndarray
    init: dict[str, np.ndarray]
    warmup: int
    draws: int
    seed: int
    target_accept: float
    max_tree_depth: int
    save_path: str | None = None
    signature: str = ""
    covariates: dict[str, Any] | None = None
    dense_mass: bool = False
    simplex: str = "stick-breaking"


@dataclass(frozen=True)
class ChainResult:
    draws: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]
    seconds: float


def run_chain(task: ChainTask, reporter: Any) -> ChainResult:
    """Run one chain: Pyro's NUTS on the potential, driven step by step, statistics kept.

    ``reporter.report(task.index, iterations_done)`` every :data:`REPORT_EVERY` iterations.
    Module level, so that worker processes unpickle it by reference.
    """
    hmm = HMM.from_config(task.hmm_config)
    covariates = None
    if task.covariates is not None:
        covariates = Covariates.from_standardization(**task.covariates)
    data = Sequences(
        task.values, lengths=task.lengths, dim=task.values.shape[-1], covariates=covariates
    )
    potential = Potential(hmm, data, simplex=task.simplex)
    start = potential.unconstrain({k: torch.as_tensor(v) for k, v in task.init.items()})
    kernel = NUTS(
        potential_fn=potential,
        adapt_step_size=True,
        adapt_mass_matrix=True,
        full_mass=task.dense_mass,
        target_accept_prob=task.target_accept,
        max_tree_depth=task.max_tree_depth,
    )
    kernel.initial_params = start
    names = list(start)
    samples: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    stats: dict[str, list[float]] = {
        key: [] for key in ("diverging", "step_size", "acceptance_rate", "n_steps", "lp")
    }
    began = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(task.seed)
        kernel.setup(task.warmup)
        params = kernel.initial_params
        previous_mean, divergences = 0.0, 0
        for iteration in range(task.warmup + task.draws):
            before = potential.num_evaluations
            params = kernel.sample(params)
            if iteration >= task.warmup:
                count = iteration - task.warmup + 1
                # Pyro keeps a running mean of the acceptance probability; recover this step's.
                mean = float(kernel._mean_accept_prob)
                stats["acceptance_rate"].append(mean * count - previous_mean * (count - 1))
                previous_mean = mean
                stats["diverging"].append(len(kernel._divergences) > divergences)
                divergences = len(kernel._divergences)
                stats["step_size"].append(float(kernel.step_size))
                stats["n_steps"].append(potential.num_evaluations - before)
                stats["lp"].append(-float(kernel._potential_energy_last))
                for name in names:
                    samples[name].append(params[name].detach().clone())
            if (iteration + 1) % REPORT_EVERY == 0 or iteration + 1 == task.warmup + task.draws:
                reporter.report(task.index, iteration + 1)
        kernel.cleanup()
    seconds = time.perf_counter() - began
    unconstrained = {name: torch.stack(values) for name, values in samples.items()}
    constrained = potential.constrain(unconstrained)
    steps = np.asarray(stats["n_steps"], dtype=np.int64)
    result = ChainResult(
        draws={name: value.numpy() for name, value in constrained.items()},
        stats={
            "diverging": np.asarray(stats["diverging"], dtype=bool),
            "step_size": np.asarray(stats["step_size"]),
            "acceptance_rate": np.asarray(stats["acceptance_rate"]).clip(0.0, 1.0),
            "n_steps": steps,
            "tree_depth": np.floor(np.log2(np.maximum(steps, 1))).astype(np.int64) + 1,
            "lp": np.asarray(stats["lp"]),
        },
        seconds=seconds,
    )
    if task.save_path is not None:  # written by the worker as soon as the chain finishes
        save_chain(task.save_path, result.draws, result.stats, seconds, task.signature)
    return result
