"""Stochastic variational inference: Pyro's ``SVI`` with a Gaussian guide, with restarts.

Every step is one ``pyro.infer.SVI.step`` (Adam, one-particle ``Trace_ELBO``) on a Gaussian
variational family in Pyro's unconstrained coordinates: mean-field (``AutoNormal``) or
full-rank (``AutoMultivariateNormal``). Point estimates are :func:`hmm_pyro.fit_map` (L-BFGS, or
Pyro's ``SVI`` with ``AutoDelta``); ``guide="map"`` here is refused with a pointer to it.

The default start breaks the label symmetry (:mod:`hmm_pyro.starts`): the guide's location
starts at a symmetry-breaking draw. Pyro's own initialisations can be asked for by name
(``"median"``, ``"mean"``, ``"feasible"``, ``"uniform"``, ``"sample"``) or as an
``init_loc_fn``; ``"median"`` and ``"mean"`` start every state's location at the same point, a
saddle where identical states get identical gradients (see :mod:`hmm_pyro.inference.map`).
The starts are recorded in the attributes so that ``hmm_pyro.diagnose`` can flag them.

This module holds :func:`fit_svi` and its argument checks; the restarts run in
:mod:`hmm_pyro.inference.svi_restarts`, checkpoints are :mod:`hmm_pyro.inference.checkpoint`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hmm_pyro._types import SequencesLike
from hmm_pyro._validation import check_bool, check_choice, check_int, check_positive
from hmm_pyro.fit import Fit
from hmm_pyro.inference.svi_restarts import (
    DEFAULT_TOL,
    adam_runner,
    check_in_memory,
    check_init,
    restart_fit,
    run_restarts,
    start_run,
)
from hmm_pyro.model import HMM
from hmm_pyro.starts import derive_seeds

__all__ = ["GUIDES", "fit_svi"]

GUIDES = ("normal", "mvn")
"""``fit_svi``'s variational families: mean-field and full-rank Gaussian."""


def fit_svi(
    hmm: HMM,
    data: SequencesLike,
    guide: str = "normal",
    steps: int = 2000,
    lr: float = 0.05,
    restarts: int = 4,
    seed: int | None = None,
    init: str | Callable[..., Any] | dict[str, Any] = "auto",
    tol: float | None = None,
    num_draws: int = 1000,
    progress: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    callback: Callable[[int, int, float], Any] | None = None,
) -> Fit:
    """Approximate the posterior by SVI (Pyro's ``SVI``, Adam), hidden states marginalised.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences or array-like
        The observations (for sequences on disk, or mini-batches, see
        :func:`hmm_pyro.inference.stream.fit_svi_stream`).
    guide : {"normal", "mvn"}
        The variational family in Pyro's unconstrained coordinates (stick-breaking for simplex
        rows, logs for positive parameters): ``"normal"``, mean-field Gaussian
        (``AutoNormal``); ``"mvn"``, full-rank Gaussian (``AutoMultivariateNormal``). For the
        posterior mode use :func:`hmm_pyro.fit_map`.
    steps : int
        Maximum optimisation steps per restart.
    lr : float
        Adam learning rate.
    restarts : int
        Independent starts; the one with the lowest final loss (mean negative ELBO of its last
        50 steps) is kept.
    seed : int, optional
        Master seed (restart ``r`` uses child seed ``r``); same seed, bitwise same result.
    init : {"auto", "prior", "data", "em"}, dict, Pyro name or callable
        Starting point. The default draws a symmetry-breaking start per restart. Pyro's
        ``"median"``/``"mean"``/``"feasible"``/``"uniform"``/``"sample"`` or any
        ``init_loc_fn`` are accepted to reproduce Pyro's behaviour (``"median"`` and ``"mean"``
        start all states equal, at a saddle; see the module notes).
    tol : float, optional
        Stop when the mean loss over the last 50 steps changed by less than ``tol`` relative to
        the 50 before (default 1e-4: the one-particle ELBO is noisy).
    num_draws : int
        Draws taken from the guide for the posterior group.
    progress : bool
        Show a progress bar.
    checkpoint : str or os.PathLike, optional
        File that holds the run's state, written atomically (temporary file, then rename):
        finished restarts and the restart in progress (Pyro param store, Adam state, step, loss
        history, torch RNG inside the restart; NumPy and Python global RNG states too) every
        ``checkpoint_every`` steps and when the run is interrupted. The file is kept when the
        run finishes. The file is data only (arrays and JSON, no pickle: reading it runs no
        code from it), versioned, with checksums of the signature (settings, model, data) and
        of its content; see ``docs/files.md``.
    checkpoint_every : int
        Steps between checkpoints of the restart in progress.
    resume : bool
        Continue from ``checkpoint`` if it exists (else start afresh): finished restarts are
        reused, the restart in progress continues from its saved step. The final parameters
        equal, bitwise, those of an uninterrupted run with the same arguments. Settings and
        data are checked against the checkpoint (``ValueError`` if they differ); ``seed=None``
        takes the checkpoint's seed. Resuming restores NumPy's and Python's global RNG states
        as they were when the checkpoint was written. ``resume=False`` overwrites.
    callback : callable, optional
        ``callback(restart, step, loss)`` after every SVI step. It may raise
        ``KeyboardInterrupt`` to stop the run as Ctrl-C would.

    Returns
    -------
    Fit
        ``method == "svi"``; posterior group: ``num_draws`` draws from the best restart's guide
        (one chain); sample statistics: the loss (negative ELBO) history of every restart;
        attributes ``guide``, ``optimizer`` (``"adam"``), the restarts and the settings.

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C (or from ``callback``). With ``checkpoint``, the first Ctrl-C is taken at the
        end of the current step, the state is saved, then ``KeyboardInterrupt`` is re-raised
        (no partial fit is returned); rerun with ``resume=True`` to continue. A second Ctrl-C
        interrupts at once without saving (the previous checkpoint stays valid).
    """
    data = check_in_memory(hmm, data)
    if guide == "map":
        raise ValueError(
            "guide: 'map' is a point estimate, not SVI; use hmm_pyro.fit_map(hmm, data) "
            "(L-BFGS; optimizer='adam' runs Pyro's SVI with AutoDelta)"
        )
    check_choice("guide", guide, GUIDES)
    steps = check_int("steps", steps, minimum=1)
    restarts = check_int("restarts", restarts, minimum=1)
    num_draws = check_int("num_draws", num_draws, minimum=1)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=1)
    lr = check_positive("lr", lr)
    progress = check_bool("progress", progress)
    tol = DEFAULT_TOL[guide] if tol is None else check_positive("tol", tol, allow_zero=True)
    check_init(init)
    run = {"guide": guide, "steps": steps, "lr": lr, "restarts": restarts, "tol": tol}
    run["num_draws"] = num_draws
    seed, checkpointer = start_run(
        "fit_svi", hmm, data, init, seed, checkpoint, checkpoint_every, resume, callback, run
    )
    run_one = adam_runner(hmm, data, guide, init, steps, lr, tol, num_draws, checkpointer)
    outcome = run_restarts(
        hmm,
        guide,
        run_one,
        derive_seeds(seed, restarts),
        checkpointer,
        steps=steps,
        desc=f"SVI ({guide})",
        progress=progress,
        callback=callback,
    )
    return restart_fit(
        hmm,
        data,
        outcome,
        method={"inference": "svi", "guide": guide, "optimizer": "adam"},
        init=init,
        seed=seed,
        settings={"steps": steps, "lr": lr, "tol": tol},
        checkpointer=checkpointer,
        checkpoint=checkpoint,
    )
