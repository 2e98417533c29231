"""Many sequences: mini-batch SVI streamed from a store.

:func:`fit_svi_stream` runs Pyro's ``SVI`` (ClippedAdam) on unbiased mini-batch estimates of
the ELBO, reading only the sequences of each batch from a
:class:`~hmm_pyro.store.SequenceStore`. Memory is bounded by the batch (and by the
``keep_sequences`` kept in the result), not by ``N``. The guide is a Gaussian variational family
(``"normal"``, ``"mvn"``: the objective of :func:`~hmm_pyro.inference.svi.fit_svi`) or
``"map"``: ``AutoDelta``, a point mass whose ELBO is ``log p(y, theta)``, so the optimum is the
MAP. That is still SVI (stochastic steps on an ELBO), the mini-batch counterpart of
``fit_map(optimizer="adam")``; in-memory data are better served by ``fit_map``'s L-BFGS.

Mini-batches. The sequences are cut into blocks of ``block_size`` consecutive rows; every epoch
is a fresh random permutation of the blocks (seeded by the restart seed and the epoch), and each
step takes the next ``batch_size // block_size`` blocks. Every block is used once per epoch and
each has the same chance to be in any given batch, so the scaled batch log likelihood is an
unbiased estimate of the full one: the model wraps it in
``pyro.plate("sequences", N, subsample=indices)`` (scale ``N / len(indices)``), times a
correction that makes the scale exactly ``num_blocks / blocks_per_batch`` when the last block
is shorter. Blocks (rather than single rows) make the reads contiguous: with ``block_size=10``
a batch of 1,000 costs about 1.5 ms to read instead of about 20 ms for 1,000 scattered rows
(measured on a 100,000 x 100 store). ``block_size=1`` gives plain sampling without replacement;
if the order of the store carries structure (sorted by subject or date), blocks make batches
less diverse (still unbiased, more variance).

The steps use a decaying learning rate (ClippedAdam, ``lr * lr_decay ** (step / steps)``):
mini-batch gradients never vanish at the optimum, so a constant rate leaves the parameters
jittering at a scale set by the rate.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pyro
import torch
from pyro import poutine

from hmm_pyro._random import resolve_seed
from hmm_pyro._types import Params
from hmm_pyro._validation import check_choice, check_int, check_positive, describe
from hmm_pyro.data import Sequences
from hmm_pyro.fit import Fit
from hmm_pyro.inference.checkpoint import (
    Checkpointer,
    check_checkpoint_args,
    init_name,
    resume_seed,
)
from hmm_pyro.inference.map import check_bounded_prior
from hmm_pyro.inference.svi_restarts import (
    AUTOGUIDES,
    DEFAULT_TOL,
    AdamProblem,
    StepReport,
    check_init,
    restart_fit,
    run_adam_restart,
    run_restarts,
)
from hmm_pyro.learning import initial_params
from hmm_pyro.model import HMM
from hmm_pyro.starts import derive_seeds
from hmm_pyro.store import MemoryStore, SequenceStore, as_store

__all__ = ["BatchSchedule", "fit_svi_stream", "store_log_likelihood"]

_DEFAULT_KEEP = 1000
_DEFAULT_CHUNK = 10_000


class BatchSchedule:
    """Which sequences each step reads: epochs of randomly permuted blocks (module notes).

    Parameters
    ----------
    num_sequences : int
        ``N``.
    batch_size : int
        Sequences per step (rounded down to whole blocks; at most ``N``).
    block_size : int
        Consecutive sequences per block (at most ``batch_size``).
    seed : int
        Seed of the permutations.
    """

    def __init__(self, num_sequences: int, batch_size: int, block_size: int, seed: int) -> None:
        self.num_sequences = check_int("num_sequences", num_sequences, minimum=1)
        batch_size = check_int("batch_size", batch_size, minimum=1)
        self.block_size = check_int("block_size", block_size, minimum=1)
        if self.block_size > batch_size:
            raise ValueError(
                f"block_size: expected at most batch_size={batch_size}, got {self.block_size}"
            )
        self.seed = seed
        self.num_blocks = -(-self.num_sequences // self.block_size)
        self.blocks_per_batch = min(batch_size // self.block_size, self.num_blocks)
        self.batches_per_epoch = self.num_blocks // self.blocks_per_batch
        self._epoch: tuple[int, np.ndarray] | None = None

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._epoch is None or self._epoch[0] != epoch:
            generator = np.random.default_rng([self.seed, epoch])
            self._epoch = (epoch, generator.permutation(self.num_blocks))
        return self._epoch[1]

    def indices(self, step: int) -> tuple[np.ndarray, float]:
        """Sorted sequence indices of ``step`` and the likelihood-scale correction.

        The correction multiplies the plate's ``N / len(indices)`` so that the total scale is
        ``num_blocks / blocks_per_batch`` (unbiased also when the last block is short).
        """
        epoch, position = divmod(step, self.batches_per_epoch)
        chosen = self._permutation(epoch)[
            position * self.blocks_per_batch : (position + 1) * self.blocks_per_batch
        ]
        starts = np.sort(chosen) * self.block_size
        indices = (starts[:, None] + np.arange(self.block_size)).ravel()
        indices = indices[indices < self.num_sequences]
        scale = self.num_blocks / self.blocks_per_batch
        return indices, scale * indices.size / self.num_sequences


def _stream_model(hmm: HMM, num_sequences: int) -> Callable[..., None]:
    """The Pyro model of one mini-batch, its likelihood scaled by a subsampled plate."""

    def model(batch: Sequences, indices: torch.Tensor, correction: float) -> None:
        params = hmm.sample_params()
        log_lik = hmm.sequence_log_likelihood(params, batch)
        with (
            pyro.plate("sequences", num_sequences, subsample=indices),
            poutine.scale(scale=correction),
        ):
            pyro.factor("log_likelihood", log_lik)

    return model


def store_log_likelihood(
    hmm: HMM, params: Params, store: Any, chunk_size: int = _DEFAULT_CHUNK
) -> float:
    """Total log likelihood of every sequence of a store, read ``chunk_size`` at a time.

    Parameters
    ----------
    hmm : HMM
        The model.
    params : dict of torch.Tensor
        One parameter set.
    store : SequenceStore, MemoryStore, path or Sequences
        The data.
    chunk_size : int
        Sequences per read.

    Returns
    -------
    float
    """
    store = as_store(store)
    total = 0.0
    for _, chunk in store.iter_chunks(chunk_size):
        total += float(hmm.log_likelihood(params, chunk).sum())
    return total


def fit_svi_stream(
    hmm: HMM,
    store: Any,
    batch_size: int = 1000,
    steps: int = 1000,
    guide: str = "map",
    lr: float = 0.05,
    lr_decay: float = 0.1,
    restarts: int = 1,
    seed: int | None = None,
    init: str | Callable[..., Any] | dict[str, Any] = "auto",
    block_size: int = 10,
    num_draws: int = 1000,
    keep_sequences: int = _DEFAULT_KEEP,
    chunk_size: int = _DEFAULT_CHUNK,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    progress: bool = True,
    callback: Callable[[int, int, float], Any] | None = None,
) -> Fit:
    """Fit the HMM by mini-batch SVI (Pyro's ``SVI``), reading the sequences lazily from a store.

    Parameters
    ----------
    hmm : HMM
        The model.
    store : SequenceStore, path, MemoryStore or Sequences
        The data: a store from :func:`hmm_pyro.store.open_store` (a path is opened and closed
        here), or in-memory sequences (wrapped in a :class:`~hmm_pyro.store.MemoryStore`).
    batch_size : int
        Sequences per step (whole blocks; ``>= N`` gives full-batch steps).
    steps : int
        Optimisation steps per restart (no early stopping: mini-batch losses are noisy).
    guide : {"map", "normal", "mvn"}
        ``"map"``: ``AutoDelta`` (point mass; SVI whose optimum is the MAP, see the module
        notes). ``"normal"``, ``"mvn"``: Gaussian guides, as in
        :func:`~hmm_pyro.inference.svi.fit_svi`.
    lr : float
        Initial ClippedAdam learning rate.
    lr_decay : float
        Factor by which the learning rate decays over the ``steps`` (geometrically per step);
        1 keeps it constant.
    restarts : int
        Independent starts; the best final loss is kept (MAP: the exact negative log joint
        over the whole store, one pass per restart; Gaussian guides: the mean mini-batch loss
        of the last 50 steps).
    seed : int, optional
        Master seed: starts, batch order and guide noise. Same seed, bitwise same result.
    init : {"auto", "prior", "data", "em"}, dict, Pyro name or callable
        Start, as in ``fit_svi``/``fit_map``; data-driven starts use the restart's first batch.
    block_size : int
        Consecutive sequences read together (see the module notes).
    num_draws : int
        Draws from a Gaussian guide for the posterior group.
    keep_sequences : int
        The first ``keep_sequences`` sequences of the store are stored in the result's
        ``observed_data``, ``constant_data`` and ``log_likelihood`` groups (all ``N`` would not
        fit in memory); decoding the rest goes through :func:`hmm_pyro.decode.iter_decode` or
        :func:`hmm_pyro.decode.decode_store`. Recorded in the ``data_subset`` attribute.
    chunk_size : int
        Sequences per read in whole-store passes (the final MAP objective).
    checkpoint, checkpoint_every, resume, callback
        As in ``fit_svi``: state saved every ``checkpoint_every`` steps and on
        Ctrl-C (then ``KeyboardInterrupt`` is re-raised); ``resume=True`` continues to the
        bitwise-identical result. The store's fingerprint is part of the checked settings.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Fit
        ``method == "svi"`` (also for ``guide="map"``); posterior group: draws from the guide
        (``"map"``: the point); sample statistics ``loss`` (the scaled mini-batch negative ELBO
        per step) and ``final_loss``; attributes ``guide``, ``optimizer`` (``"adam"``),
        ``stream`` (store, ``N``, batch and block sizes, epochs) and, for ``"map"``,
        ``log_likelihood_total`` over the whole store.
    """
    if not isinstance(hmm, HMM):
        raise TypeError(f"hmm: expected a hmm_pyro.HMM, got {describe(hmm)}")
    if hmm.time_varying:  # sequence stores hold values and lengths only
        raise ValueError(f"hmm: fit_svi_stream does not carry covariates yet; got {hmm!r}")
    opened = isinstance(store, (str, os.PathLike))
    store = as_store(store)
    try:
        return _fit_stream(
            hmm,
            store,
            batch_size=batch_size,
            steps=steps,
            guide=guide,
            lr=lr,
            lr_decay=lr_decay,
            restarts=restarts,
            seed=seed,
            init=init,
            block_size=block_size,
            num_draws=num_draws,
            keep_sequences=keep_sequences,
            chunk_size=chunk_size,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            resume=resume,
            progress=progress,
            callback=callback,
        )
    finally:
        if opened:
            store.close()


def _fit_stream(
    hmm: HMM,
    store: SequenceStore | MemoryStore,
    batch_size: int,
    steps: int,
    guide: str,
    lr: float,
    lr_decay: float,
    restarts: int,
    seed: int | None,
    init: Any,
    block_size: int,
    num_draws: int,
    keep_sequences: int,
    chunk_size: int,
    checkpoint: str | os.PathLike[str] | None,
    checkpoint_every: int,
    resume: bool,
    progress: bool,
    callback: Callable[[int, int, float], Any] | None,
) -> Fit:
    store.check_model(hmm)
    check_choice("guide", guide, AUTOGUIDES)
    if guide == "map":
        check_bounded_prior(hmm)
    num_sequences = store.num_sequences
    batch_size = check_int("batch_size", batch_size, minimum=1)
    block_size = check_int("block_size", block_size, minimum=1)
    steps = check_int("steps", steps, minimum=1)
    restarts = check_int("restarts", restarts, minimum=1)
    num_draws = check_int("num_draws", num_draws, minimum=1)
    keep_sequences = check_int("keep_sequences", keep_sequences, minimum=1)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=1)
    lr = check_positive("lr", lr)
    lr_decay = check_positive("lr_decay", lr_decay)
    if lr_decay > 1:
        raise ValueError(f"lr_decay: expected a value in (0, 1], got {lr_decay}")
    check_init(init)
    if block_size > batch_size:
        raise ValueError(f"block_size: expected at most batch_size={batch_size}, got {block_size}")
    check_checkpoint_args(checkpoint, resume, callback)
    seed = resolve_seed(resume_seed(seed, checkpoint, resume))
    seeds = derive_seeds(seed, restarts)
    schedules = {s: BatchSchedule(num_sequences, batch_size, block_size, s) for s in seeds}
    model = _stream_model(hmm, num_sequences)
    cache: dict[tuple[int, int], tuple[Any, ...]] = {}

    def step_args(restart_seed: int, step: int) -> tuple[Any, ...]:
        key = (restart_seed, step)
        if key not in cache:
            indices, correction = schedules[restart_seed].indices(step)
            batch = hmm.prepare_data(store.read(indices))
            cache.clear()
            cache[key] = (batch, torch.from_numpy(indices), correction)
        return cache[key]

    totals: dict[str, float] = {}

    def final_loss(point: Params, losses: np.ndarray) -> float:
        if guide != "map":
            return float(np.mean(losses[-50:]))
        total = store_log_likelihood(hmm, point, store, chunk_size)
        totals["last"] = total
        return -(float(hmm.log_prior(point)) + total)

    if isinstance(init, dict):
        initial_params(hmm, step_args(seeds[0], 0)[0], init)  # validate before starting
    signature = {
        "runner": "fit_svi_stream",
        "model": hmm.to_config(),
        "data": store.fingerprint,
        "num_sequences": num_sequences,
        "guide": guide,
        "steps": steps,
        "lr": lr,
        "lr_decay": lr_decay,
        "restarts": restarts,
        "seed": seed,
        "init": init_name(init),
        "batch_size": batch_size,
        "block_size": block_size,
        "num_draws": num_draws,
    }
    checkpointer = Checkpointer(checkpoint, checkpoint_every, signature, resume)
    problem = AdamProblem(
        hmm,
        model,
        step_args=step_args,
        init_data=lambda restart_seed: step_args(restart_seed, 0)[0],
        guide=guide,
        init=init,
        steps=steps,
        lr=lr,
        lrd=lr_decay ** (1.0 / steps),
        tol=None,
        num_draws=num_draws,
        final_loss=final_loss,
    )

    def run_one(restart: int, restart_seed: int, report: StepReport) -> dict:
        run = run_adam_restart(problem, restart, restart_seed, report, checkpointer)
        if guide == "map":
            run["log_likelihood_total"] = totals.pop("last")
        return run

    outcome = run_restarts(
        hmm,
        guide,
        run_one,
        seeds,
        checkpointer,
        steps=steps,
        desc=f"SVI stream ({guide})",
        progress=progress,
        callback=callback,
    )
    keep = min(keep_sequences, num_sequences)
    subset = hmm.prepare_data(store.read_range(0, keep))
    schedule = schedules[seeds[0]]
    extra = {
        "stream": {
            "store": None if store.path is None else str(store.path),
            "fingerprint": store.fingerprint,
            "num_sequences": num_sequences,
            "batch_size": int(schedule.blocks_per_batch * block_size),
            "block_size": block_size,
            "batches_per_epoch": schedule.batches_per_epoch,
            "epochs": steps / schedule.batches_per_epoch,
        },
        "data_subset": (
            f"observed_data, constant_data and log_likelihood hold the first {keep} of "
            f"{num_sequences} sequences of the store"
        ),
    }
    if guide == "map":
        extra["log_likelihood_total"] = [float(run["log_likelihood_total"]) for run in outcome.runs]
    return restart_fit(
        hmm,
        subset,
        outcome,
        method={"inference": "svi", "guide": guide, "optimizer": "adam"},
        init=init,
        seed=seed,
        settings={"steps": steps, "lr": lr, "lr_decay": lr_decay, "tol": DEFAULT_TOL[guide]},
        checkpointer=checkpointer,
        checkpoint=checkpoint,
        extra=extra,
    )
