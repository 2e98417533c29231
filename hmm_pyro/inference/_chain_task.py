"""One NUTS chain as a task: what the worker processes import, and nothing more.

:func:`run_chain` rebuilds the model and data from a :class:`ChainTask` (plain arrays and a
configuration), runs :class:`~hmm_pyro.inference.sampler.NUTS` on
:meth:`Potential.numpy_value_and_gradient
<hmm_pyro.inference.potential.Potential.numpy_value_and_gradient>` under the chain's own seed,
and returns the draws and per-iteration statistics. It lives apart from
:mod:`hmm_pyro.inference.nuts` so that a worker imports torch, the sampler and the models
(the plain, covariate and multilevel HMMs), but not ArviZ, xarray and matplotlib (which
``fit_nuts`` needs to build its result): measured, that halves a worker's start-up imports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# Imported so that HMM.from_config knows their kinds in a worker process, where nothing else
# has imported them (without it a CovariateHMM's or MultilevelHMM's chains failed in the pool).
import hmm_pyro.covariate_model
import hmm_pyro.multilevel  # noqa: F401
from hmm_pyro.covariates import Covariates
from hmm_pyro.data import Sequences
from hmm_pyro.inference._chains import save_chain
from hmm_pyro.inference.potential import SITE, Potential
from hmm_pyro.inference.sampler import NUTS, Transition
from hmm_pyro.model import HMM

__all__ = ["REPORT_EVERY", "ChainResult", "ChainTask", "run_chain"]

REPORT_EVERY = 10
"""Iterations between progress reports of a chain."""


@dataclass(frozen=True)
class ChainTask:
    """One chain's model, data, start and settings.

    ``dense_mass`` is :func:`~hmm_pyro.inference.nuts.fit_nuts`'s;
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
    """Run one chain: :class:`~hmm_pyro.inference.sampler.NUTS` on the potential, statistics kept.

    The chain's generator is seeded by ``task.seed`` alone (no global random state), so a
    chain is the same bit for bit in any process. ``reporter.report(task.index,
    iterations_done)`` every :data:`REPORT_EVERY` iterations. Module level, so that worker
    processes unpickle it by reference.
    """
    hmm = HMM.from_config(task.hmm_config)
    covariates = None
    if task.covariates is not None:
        covariates = Covariates.from_standardization(**task.covariates)
    data = Sequences(
        task.values, lengths=task.lengths, dim=task.values.shape[-1], covariates=covariates
    )
    potential = Potential(hmm, data, simplex=task.simplex)
    start = potential.unconstrain({k: torch.as_tensor(v) for k, v in task.init.items()})[SITE]
    # Rounded to float32 precision: a start computed with MKL (an emission regression's
    # data-driven start) can differ in its last bits between calls (results depend on memory
    # alignment), and NUTS amplifies any difference; rounded, the chain follows from the seed.
    dtype = start.dtype
    start = start.to(torch.float32).to(torch.float64)
    began = time.perf_counter()
    sampler = NUTS(
        potential.numpy_value_and_gradient,
        start.detach().numpy(),
        seed=task.seed,
        warmup=task.warmup,
        target_accept=task.target_accept,
        max_tree_depth=task.max_tree_depth,
        dense_mass=task.dense_mass,
    )
    total = task.warmup + task.draws
    kept: list[Transition] = []
    for iteration in range(total):
        transition = sampler.step()
        if iteration >= task.warmup:
            kept.append(transition)
        if (iteration + 1) % REPORT_EVERY == 0 or iteration + 1 == total:
            reporter.report(task.index, iteration + 1)
    seconds = time.perf_counter() - began
    positions = torch.from_numpy(np.stack([t.position for t in kept])).to(dtype)
    constrained = potential.constrain({SITE: positions})
    result = ChainResult(
        draws={name: value.numpy() for name, value in constrained.items()},
        stats={
            "diverging": np.array([t.diverging for t in kept], dtype=bool),
            "step_size": np.array([t.step_size for t in kept]),
            "acceptance_rate": np.array([t.accept_stat for t in kept]),
            "n_steps": np.array([t.n_steps for t in kept], dtype=np.int64),
            "tree_depth": np.array([t.tree_depth for t in kept], dtype=np.int64),
            "lp": np.array([t.log_density for t in kept]),
        },
        seconds=seconds,
    )
    if task.save_path is not None:  # written by the worker as soon as the chain finishes
        save_chain(task.save_path, result.draws, result.stats, seconds, task.signature)
    return result
