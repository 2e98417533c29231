"""NUTS over the marginalised model: several chains, side by side on the cores.

Each chain (:mod:`hmm_pyro.inference._chain_task`) runs our NumPy NUTS
(:class:`hmm_pyro.inference.sampler.NUTS`: multinomial NUTS with Stan's warm-up, see
``docs/inference.md``) on :class:`~hmm_pyro.inference.potential.Potential`: the model's log
joint over Pyro's unconstrained coordinates (flattened to one vector), hidden states summed
out by a forward-backward sweep, value and gradient from one numba call (equal to Pyro's
model-based potential, which re-traces the model and runs autograd at every gradient). Chains
are driven step by step so that per-iteration statistics are kept: divergences, step size,
acceptance statistic, leapfrog steps, tree depth and log density. Chains started apart
settle in different labellings of the states; the draws are brought into one
(:func:`hmm_pyro.labels.align_labels`) before the ``Fit`` is returned.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmm_pyro._parallel import available_cores, check_client, run_tasks
from hmm_pyro._random import resolve_seed
from hmm_pyro._types import SequencesLike
from hmm_pyro._validation import check_bool, check_int, check_positive, describe
from hmm_pyro.data import Sequences
from hmm_pyro.emissions import user_defined_families
from hmm_pyro.fit import LABELS_ATTR, RAW, Fit
from hmm_pyro.fit.inference_data import build_inference_data
from hmm_pyro.inference._chain_task import ChainResult, ChainTask, run_chain
from hmm_pyro.inference._chains import (
    chain_path,
    chain_signature,
    load_chain,
    saved_seed,
)
from hmm_pyro.labels import align_labels
from hmm_pyro.learning import initial_params
from hmm_pyro.model import HMM
from hmm_pyro.starts import derive_seeds, min_separation
from hmm_pyro.store import MemoryStore

__all__ = ["fit_nuts"]

RESTART_START_NATS = 2.0
"""``init=<Fit>`` starts chains only at restart points whose log posterior is within 2 nats of
the best one's (two modes of equal curvature that far apart differ about 7-fold in mass)."""


def _restart_starts(
    hmm: HMM, data: Sequences, fit: Fit, chains: int
) -> tuple[list[dict[str, Any]], list[int]]:
    """Chain starts at the best restart points of a point-estimate fit (MAP, SVI, EM).

    Restarts are ranked by their log posterior ``log p(y, theta)`` on ``data``; those more than
    :data:`RESTART_START_NATS` below the best are skipped; chain ``c`` starts at the
    ``c``-th of the rest, cycling when there are fewer than chains. Returns the starts and the
    restart each came from.
    """
    if fit.hmm.num_states != hmm.num_states or fit.hmm.emission != hmm.emission:
        raise ValueError(
            f"init: the fit's model ({fit.hmm!r}) has other states or emissions than hmm ({hmm!r})"
        )
    restarts = fit.attrs.get("restart_params")
    if restarts:
        points = {
            name: torch.as_tensor(restarts[name], dtype=hmm.dtype) for name in hmm.param_names
        }
    elif fit.num_chains * fit.num_draws == 1:
        points = {name: value.reshape(1, *value.shape[2:]) for name, value in fit.draws().items()}
    else:
        raise ValueError(
            "init: a Fit start needs restart points (fit_map, fit_svi, fit_em) or a single "
            f"point; got {fit.num_chains} chains x {fit.num_draws} draws of {fit.method!r}"
        )
    log_post = hmm.log_likelihood(points, data).sum(-1) + hmm.log_prior(points)
    order = torch.argsort(log_post, descending=True)
    keep = [int(r) for r in order if float(log_post[order[0]] - log_post[r]) <= RESTART_START_NATS]
    chosen = [keep[c % len(keep)] for c in range(chains)]
    return [{name: points[name][r] for name in hmm.param_names} for r in chosen], chosen


def fit_nuts(
    hmm: HMM,
    data: SequencesLike,
    chains: int = 4,
    warmup: int = 500,
    draws: int = 500,
    seed: int | None = None,
    init: str | dict[str, Any] | list[dict[str, Any]] | Fit = "auto",
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    parallel: bool | None = None,
    progress: bool = True,
    client: Any = None,
    chain_dir: str | os.PathLike[str] | None = None,
    relabel: bool = True,
) -> Fit:
    """Sample the posterior of the HMM parameters with NUTS, hidden states marginalised.

    The sampler is multinomial NUTS as Stan runs it (Betancourt 2017: trajectory doubling,
    multinomial and biased progressive sampling, the generalised no-U-turn criterion with
    Stan's extra checks across subtrees, divergence at an energy error above 1000), with
    Stan's warm-up: an initial step-size search, dual averaging towards ``target_accept``, and
    the mass matrix re-estimated in Stan's windows (75-iteration buffer, windows of 25, 50,
    100, ..., 50-iteration terminal buffer), regularised as Stan does. It runs in NumPy on the
    potential's numba function (``docs/inference.md``; ``hmm_pyro.inference.sampler``).

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences or array-like
        The observations.
    chains : int
        Number of chains (4 recommended for R-hat).
    warmup, draws : int
        Warm-up (adaptation) iterations and kept draws per chain.
    seed : int, optional
        Master seed; chain ``c`` uses an independent child seed, which seeds the chain's own
        NumPy generator (no global random state). The same seed gives the same draws bit for
        bit, in parallel or sequential execution, and in repeated calls in one process.
        (Each chain starts at its start's unconstrained coordinates rounded to float32
        precision: some starts, such as an emission regression's data-driven start, are
        computed with BLAS calls whose last bits depend on memory alignment.)
        ``None`` draws one and records it.
    init : {"auto", "prior", "data", "em"}, dict, list of dicts, or Fit
        Starting points (see :func:`hmm_pyro.starts.initial_params`), drawn
        independently per chain so that no chain starts with identical states; a list gives one
        parameter dict per chain. A ``Fit`` of the same model with restarts (``fit_map``,
        ``fit_svi``, ``fit_em``) starts the chains at its best restart points, ranked by log
        posterior on ``data``, those within :data:`RESTART_START_NATS` of the best only
        (cycling through them): the remedy for chains stuck in worse modes; the restart each
        chain started at is kept in ``fit.attrs["init_restarts"]``.
    target_accept : float
        Target acceptance probability of step-size adaptation (raise towards 0.95 if there are
        divergences).
    max_tree_depth : int
        Maximum NUTS tree depth.
    dense_mass : bool
        Adapt a dense mass matrix in warm-up (in the same windows) instead of a diagonal
        one. Measured with Pyro's NUTS, before ``fit_nuts`` switched to the sampler above
        (``benchmarks/results/ess_per_gradient_dense.md``, 1000 warm-up + 1000 draws, 3
        seeds): 2.0-3.5x the ESS per gradient of the diagonal one
        on the reference categorical workload, but 0.56-1.03x on a Gaussian and 0.70-1.24x on
        a Poisson workload, hence not the default.
    parallel : bool, optional
        Run the chains side by side on this process's worker pool: single-threaded worker
        processes, at most one per chain and per core, started by the first such call
        (a few seconds of imports) and kept for later calls (see ``docs/parallel.md``).
        ``False``: one after the other in this process (one torch and one numba thread), the
        same draws bit for bit. Default: in the pool when there are several chains and cores
        and the model's families are built in (the workers do not run your script, so they
        cannot rebuild a user-defined family).
    progress : bool
        Show progress bars.
    client : distributed.Client or str, optional
        Run the chains as tasks on this Dask cluster (a client, or a scheduler address such as
        ``"tcp://host:8786"``) instead; the draws are the same bit for bit.
    chain_dir : str or os.PathLike, optional
        Folder where each chain is saved (``chain_<c>.npz``, atomically, data only: arrays and
        JSON, see ``docs/files.md``) as soon as it finishes. A rerun with the same folder and
        settings reuses the saved chains and runs only the missing ones: after an
        interruption, even a ``SIGKILL``, a chain that had not finished reruns from its first
        iteration. The result equals the uninterrupted run's bit for bit in every group
        (draws, sample statistics, log likelihood, prior, data) and in the attributes that
        describe the draws; only those that describe the run differ (``chain_seconds`` of the
        reused chains, ``reused_chains``, ``sampling_time``, the creation time).
        ``seed=None`` takes the seed of the saved chains. A saved chain from other settings,
        another model or data set, another file format or hmm_pyro version, or a damaged or
        foreign file raises ``ValueError``. The workers write the files, so with ``client=``
        the folder must be on a file system they share.
    relabel : bool
        Bring every draw into one labelling of the states before returning (default): chains
        aligned and within-chain switches undone by :func:`hmm_pyro.relabel` (Stephens' algorithm,
        cross-checked with ECR). ``False`` keeps the draws as sampled; per-state results of the
        fit then warn until it is relabelled.

    Returns
    -------
    Fit
        ``fit.idata`` holds posterior, sample_stats, log_likelihood, log_prior, prior,
        observed_data and constant_data. With ``relabel=True`` the attribute ``relabel`` records
        the permutations applied to each chain and the largest R-hat of each parameter before
        (``raw_r_hat``) and after alignment, and ``labels`` is ``"aligned"``; otherwise
        ``labels`` is ``"raw"``.

    Warns
    -----
    hmm_pyro.diagnostics.RelabelWarning
        With ``relabel=True``, when states are collapsed (they are not aligned but keep their
        order) or the labels are not identifiable (Stephens and ECR disagree).
    """
    if not isinstance(hmm, HMM):
        raise TypeError(f"hmm: expected a hmm_pyro.HMM, got {describe(hmm)}")
    data = hmm.prepare_data(data)
    chains = check_int("chains", chains, minimum=1)
    warmup = check_int("warmup", warmup, minimum=0)
    draws = check_int("draws", draws, minimum=1)
    max_tree_depth = check_int("max_tree_depth", max_tree_depth, minimum=1)
    dense_mass = check_bool("dense_mass", dense_mass)
    target_accept = check_positive("target_accept", target_accept)
    if not 0.0 < target_accept < 1.0:
        raise ValueError(f"target_accept: expected a value in (0, 1), got {target_accept}")
    parallel = check_bool("parallel", parallel, allow_none=True)
    if parallel is None:  # the workers cannot rebuild a family defined by the caller's script
        parallel = client is not None or (
            chains > 1 and available_cores() > 1 and not user_defined_families(hmm.to_config())
        )
    progress = check_bool("progress", progress)
    relabel = check_bool("relabel", relabel)
    check_client(client)
    if client is not None and parallel is False:
        raise ValueError("parallel: False contradicts client= (chains would run here)")
    if chain_dir is not None and not isinstance(chain_dir, (str, os.PathLike)):
        raise TypeError(f"chain_dir: expected a folder path or None, got {describe(chain_dir)}")
    if chain_dir is not None and seed is None:
        seed = saved_seed(chain_dir, chains)
    seed = resolve_seed(seed)
    chain_seeds = derive_seeds(seed, chains)
    restart_ranks = None
    if isinstance(init, Fit):
        points, restart_ranks = _restart_starts(hmm, data, init, chains)
        starts = [initial_params(hmm, data, start) for start in points]
        init_name = f"{init.method} restarts"
    elif isinstance(init, list):
        if len(init) != chains:
            raise ValueError(
                f"init: expected {chains} parameter dicts (one per chain), got {len(init)}"
            )
        starts = [initial_params(hmm, data, start) for start in init]
        init_name = "user"
    else:
        starts = [initial_params(hmm, data, init, seed=s) for s in chain_seeds]
        init_name = init if isinstance(init, str) else "user"
    # what the workers need to rebuild the covariates exactly
    covariates = None if data.covariates is None else data.covariates.to_standardization()
    tasks = [
        ChainTask(
            index=c,
            hmm_config=hmm.to_config(),
            values=data.values.numpy(),
            lengths=data.lengths.numpy(),
            covariates=covariates,
            init={k: v.detach().numpy() for k, v in starts[c].items()},
            warmup=warmup,
            draws=draws,
            seed=chain_seeds[c],
            target_accept=target_accept,
            max_tree_depth=max_tree_depth,
            dense_mass=dense_mass,
        )
        for c in range(chains)
    ]
    saved: dict[int, ChainResult] = {}
    if chain_dir is not None:
        Path(chain_dir).mkdir(parents=True, exist_ok=True)
        fingerprint = MemoryStore(data).fingerprint
        for c, task in enumerate(tasks):
            signature = chain_signature(
                model=task.hmm_config,
                data=fingerprint,
                init={k: v.tolist() for k, v in task.init.items()},
                warmup=warmup,
                draws=draws,
                seed=seed,
                chain=c,
                chain_seed=task.seed,
                target_accept=target_accept,
                max_tree_depth=max_tree_depth,
                dense_mass=dense_mass,
            )
            loaded = load_chain(chain_path(chain_dir, c), signature)
            if loaded is not None:
                saved[c] = ChainResult(*loaded)
            tasks[c] = replace(task, save_path=str(chain_path(chain_dir, c)), signature=signature)
    pending = [c for c in range(chains) if c not in saved]
    tasks = [replace(tasks[c], index=position) for position, c in enumerate(pending)]
    began = time.perf_counter()
    finished = (
        run_tasks(
            run_chain,
            tasks,
            totals=[warmup + draws] * len(tasks),
            labels=[f"NUTS chain {c}" for c in pending],
            parallel=parallel,
            progress=progress,
            client=client,
            desc="NUTS",
        )
        if tasks
        else []
    )
    wall = time.perf_counter() - began
    results = [saved[c] if c in saved else finished[pending.index(c)] for c in range(chains)]
    posterior = {
        name: torch.as_tensor(np.stack([r.draws[name] for r in results]))
        for name in hmm.param_names
    }
    stats = {key: np.stack([r.stats[key] for r in results]) for key in results[0].stats}
    start_separation = [float(min_separation(hmm, start)) for start in starts]
    attrs = {
        "inference": "nuts",
        "init": init_name,
        "seed": seed,
        "chain_seeds": chain_seeds,
        "num_chains": chains,
        "num_warmup": warmup,
        "num_draws": draws,
        "target_accept": target_accept,
        "max_tree_depth": max_tree_depth,
        "dense_mass": dense_mass,
        "parallel": parallel,
        "chain_seconds": [r.seconds for r in results],
        "sampling_time": wall,
        "reused_chains": sorted(saved),
        "init_min_hellinger": start_separation,
        "init_params": {k: [v.tolist() for v in [s[k] for s in starts]] for k in starts[0]},
        **({} if restart_ranks is None else {"init_restarts": restart_ranks}),
        LABELS_ATTR: RAW,
    }
    idata = build_inference_data(hmm, data, posterior, stats, attrs=attrs, prior_seed=seed)
    fit = Fit(hmm, idata)
    return align_labels(fit) if relabel else fit
