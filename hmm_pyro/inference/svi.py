"""Stochastic variational inference: MAP (``AutoDelta``) and Gaussian guides, with restarts.

The default start breaks the label symmetry (:mod:`hmm_pyro.starts`). Pyro's own
initialisations can be asked for by name (``"median"``, ``"mean"``, ``"feasible"``,
``"uniform"``, ``"sample"``) or as an ``init_loc_fn``; ``"median"`` and ``"mean"`` start every
Dirichlet row at the same point, a saddle where identical states get identical gradients. Plain
Pyro (``DiscreteHMM`` + ``AutoDelta``) stays there: three identical emission rows equal to the
overall symbol frequencies (measured). Our model escapes or not depending on how floating-point
round-off differs between states (1e-11 in the gradients): on the reference workload, seed 0
escaped with an earlier kernel and stays with the current one. Not something to rely on.
The starts are recorded in the attributes so that ``hmm_pyro.diagnose`` can flag them.

This module holds :func:`fit_svi` and its argument checks; the restarts run in
:mod:`hmm_pyro.inference.svi_restarts`, checkpoints are :mod:`hmm_pyro.inference.checkpoint`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hmm_pyro._random import resolve_seed
from hmm_pyro._validation import (
    check_bool,
    check_choice,
    check_int,
    check_positive,
    describe,
)
from hmm_pyro.fit import Fit
from hmm_pyro.inference.checkpoint import (
    Checkpointer,
    check_checkpoint_args,
    init_name,
    resume_seed,
)
from hmm_pyro.inference.svi_restarts import (
    DEFAULT_TOL,
    GUIDES,
    AdamProblem,
    StepReport,
    check_init,
    run_adam_restart,
    run_lean_restart,
    run_restarts,
    svi_fit,
)
from hmm_pyro.learning import initial_params
from hmm_pyro.model import HMM
from hmm_pyro.starts import INIT_METHODS, derive_seeds
from hmm_pyro.store import MemoryStore, SequenceStore

__all__ = ["BACKENDS", "fit_svi"]

BACKENDS = ("auto", "lean", "pyro")


def fit_svi(
    hmm: HMM,
    data: Any,
    guide: str = "map",
    steps: int = 2000,
    lr: float = 0.05,
    restarts: int = 4,
    seed: int | None = None,
    init: str | Callable[..., Any] | dict[str, Any] = "auto",
    tol: float | None = None,
    num_draws: int = 1000,
    progress: bool = True,
    backend: str = "auto",
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    callback: Callable[[int, int, float], Any] | None = None,
) -> Fit:
    """Fit the HMM by SVI with the hidden states marginalised.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences or array-like
        The observations (for sequences on disk, or mini-batches, see
        :func:`hmm_pyro.inference.stream.fit_svi_stream`).
    guide : {"map", "normal", "mvn"}
        ``"map"``: point estimate (``AutoDelta``, the posterior mode). ``"normal"``: mean-field
        Gaussian in the unconstrained space (``AutoNormal``). ``"mvn"``: full-rank Gaussian
        (``AutoMultivariateNormal``).
    steps : int
        Maximum optimisation steps per restart.
    lr : float
        Adam learning rate.
    restarts : int
        Independent starts; the one with the lowest final loss (best ELBO) is kept.
    seed : int, optional
        Master seed (restart ``r`` uses child seed ``r``); same seed, bitwise same result.
    init : {"auto", "prior", "data", "em"}, dict, Pyro name or callable
        Starting point. The default draws a symmetry-breaking start per restart. Pyro's
        ``"median"``/``"mean"``/``"feasible"``/``"uniform"``/``"sample"`` or any
        ``init_loc_fn`` are accepted to reproduce Pyro's behaviour (``"median"`` and ``"mean"``
        start all states equal, at a saddle; see the module notes).
    tol : float, optional
        Stop when the mean loss over the last 50 steps changed by less than ``tol`` relative to
        the 50 before (default 1e-7 for MAP, 1e-4 for Gaussian guides).
    num_draws : int
        Draws taken from a Gaussian guide for the posterior group.
    progress : bool
        Show a progress bar.
    backend : {"auto", "lean", "pyro"}
        ``"lean"`` (MAP only): L-BFGS on the MAP objective through the fused kernel, without
        Pyro's tracing (``steps`` bounds the L-BFGS iterations; ``lr`` and ``tol`` are unused).
        ``"pyro"``: Pyro ``SVI`` with an autoguide and Adam. ``"auto"``: ``"lean"`` for
        ``guide="map"`` with one of our starts, ``"pyro"`` otherwise (Gaussian guides, Pyro's
        init names or an ``init_loc_fn``). Both MAP backends maximise the same objective.
    checkpoint : str or os.PathLike, optional
        File that holds the run's state, written atomically (temporary file, then rename):
        finished restarts, and for the ``"pyro"`` backend the restart in progress (Pyro param
        store, Adam state, step, loss history, torch RNG inside the restart; NumPy and Python
        global RNG states too) every ``checkpoint_every`` steps and when the run is
        interrupted. The ``"lean"`` backend (L-BFGS, one call per restart) is checkpointed
        after every finished restart only: an interrupted restart is rerun from its start on
        resume (restarts are deterministic, so the result is the same). The file is kept when
        the run finishes. The file is data only (arrays and JSON, no pickle: reading it runs no
        code from it), versioned, with checksums of the signature (settings, model, data) and
        of its content; see ``docs/files.md``.
    checkpoint_every : int
        Steps between checkpoints of the restart in progress (``"pyro"`` backend).
    resume : bool
        Continue from ``checkpoint`` if it exists (else start afresh): finished restarts are
        reused, the restart in progress continues from its saved step. The final parameters
        equal, bitwise, those of an uninterrupted run with the same arguments. Settings and
        data are checked against the checkpoint (``ValueError`` if they differ); ``seed=None``
        takes the checkpoint's seed. Resuming restores NumPy's and Python's global RNG states
        as they were when the checkpoint was written. ``resume=False`` overwrites.
    callback : callable, optional
        ``callback(restart, step, loss)`` after every Adam step (``"pyro"``) or every objective
        evaluation (``"lean"``). It may raise ``KeyboardInterrupt`` to stop the run as Ctrl-C
        would.

    Returns
    -------
    Fit
        Posterior group: the MAP point (one chain, one draw) or draws from the guide; sample
        statistics: the loss (negative ELBO) history of every restart.

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C (or from ``callback``). With ``checkpoint``, the first Ctrl-C is taken at the
        end of the current step, the state is saved, then ``KeyboardInterrupt`` is re-raised
        (no partial fit is returned); rerun with ``resume=True`` to continue. A second Ctrl-C
        interrupts at once without saving (the previous checkpoint stays valid).
    """
    if not isinstance(hmm, HMM):
        raise TypeError(f"hmm: expected a hmm_pyro.HMM, got {describe(hmm)}")
    if isinstance(data, (SequenceStore, MemoryStore)):
        raise TypeError(
            "data: got a sequence store; use hmm_pyro.fit_svi_stream(hmm, store, batch_size=...)"
        )
    data = hmm.prepare_data(data)
    check_choice("guide", guide, GUIDES)
    check_choice("backend", backend, BACKENDS)
    ours = isinstance(init, dict) or (isinstance(init, str) and init in INIT_METHODS)
    if backend == "lean" and (guide != "map" or not ours):
        raise ValueError(
            "backend: 'lean' supports guide='map' with init in "
            f"{INIT_METHODS} or a dict; got guide={guide!r}, init={init!r}"
        )
    if backend == "auto":
        backend = "lean" if guide == "map" and ours else "pyro"
    steps = check_int("steps", steps, minimum=1)
    restarts = check_int("restarts", restarts, minimum=1)
    num_draws = check_int("num_draws", num_draws, minimum=1)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=1)
    lr = check_positive("lr", lr)
    progress = check_bool("progress", progress)
    tol = DEFAULT_TOL[guide] if tol is None else check_positive("tol", tol, allow_zero=True)
    check_init(init)
    if isinstance(init, dict):
        initial_params(hmm, data, init)  # validate before starting
    check_checkpoint_args(checkpoint, resume, callback)
    seed = resolve_seed(resume_seed(seed, checkpoint, resume))
    seeds = derive_seeds(seed, restarts)
    signature = {
        "runner": "fit_svi",
        "model": hmm.to_config(),
        "data": None if checkpoint is None else MemoryStore(data).fingerprint,
        "guide": guide,
        "backend": backend,
        "steps": steps,
        "lr": lr,
        "restarts": restarts,
        "seed": seed,
        "init": init_name(init),
        "tol": tol,
        "num_draws": num_draws,
    }
    checkpointer = Checkpointer(checkpoint, checkpoint_every, signature, resume)
    if backend == "lean":

        def run_one(restart: int, restart_seed: int, report: StepReport) -> dict:
            return run_lean_restart(hmm, data, init, restart, restart_seed, steps, report)

    else:

        def model() -> None:
            hmm.model(data)

        problem = AdamProblem(
            hmm,
            model,
            step_args=lambda restart_seed, step: (),
            init_data=lambda restart_seed: data,
            guide=guide,
            init=init,
            steps=steps,
            lr=lr,
            lrd=1.0,
            tol=tol,
            num_draws=num_draws,
        )

        def run_one(restart: int, restart_seed: int, report: StepReport) -> dict:
            return run_adam_restart(problem, restart, restart_seed, report, checkpointer)

    outcome = run_restarts(
        hmm,
        guide,
        run_one,
        seeds,
        checkpointer,
        steps=steps,
        desc=f"SVI ({guide})",
        progress=progress,
        callback=callback,
    )
    return svi_fit(
        hmm,
        data,
        outcome,
        backend=backend,
        init=init,
        seed=seed,
        settings={"steps": steps, "lr": lr, "tol": tol},
        checkpointer=checkpointer,
        checkpoint=checkpoint,
    )
