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
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import (
    AutoDelta,
    AutoMultivariateNormal,
    AutoNormal,
    init_to_feasible,
    init_to_mean,
    init_to_median,
    init_to_sample,
    init_to_uniform,
    init_to_value,
)
from pyro.optim import ClippedAdam
from tqdm.auto import tqdm

from hmm_pyro._io import atomic_write
from hmm_pyro._parallel import progress_disabled, torch_threads
from hmm_pyro._random import resolve_seed
from hmm_pyro._validation import (
    check_bool,
    check_choice,
    check_int,
    check_positive,
    describe,
)
from hmm_pyro.data import Sequences
from hmm_pyro.fit import Fit
from hmm_pyro.fit.inference_data import build_inference_data
from hmm_pyro.inference.potential import SITE
from hmm_pyro.inference.potential import Potential as AnalyticPotential
from hmm_pyro.learning import initial_params
from hmm_pyro.model import HMM
from hmm_pyro.starts import INIT_METHODS, derive_seeds, min_separation
from hmm_pyro.store import MemoryStore, SequenceStore

__all__ = ["BACKENDS", "GUIDES", "PYRO_INITS", "fit_svi", "load_checkpoint"]

Params = dict[str, torch.Tensor]
GUIDES = ("map", "normal", "mvn")
PYRO_INITS: dict[str, Callable[..., Any]] = {
    "median": init_to_median,
    "mean": init_to_mean,
    "feasible": init_to_feasible,
    "uniform": init_to_uniform,
    "sample": init_to_sample,
}
_WINDOW = 50
_LBFGS_TOLERANCE_GRAD = 1e-6
"""Stop when every coordinate of the MAP gradient is below this (nats per unit coordinate)."""
_LBFGS_TOLERANCE_CHANGE = 1e-9
"""... or when the loss or a coordinate changes by less than this between iterations."""
BACKENDS = ("auto", "lean", "pyro")
_DEFAULT_TOL = {"map": 1e-7, "normal": 1e-4, "mvn": 1e-4}
"""Relative change of the windowed mean loss that counts as converged. MAP's loss is
deterministic, so its tolerance is tight; Gaussian guides have a noisy (one-particle) ELBO."""
_CHECKPOINT_FORMAT = "hmm_pyro.svi_checkpoint"
_CHECKPOINT_VERSION = 1


@contextlib.contextmanager
def _isolated_param_store() -> Iterator[None]:
    """Run with an empty Pyro param store, restoring the caller's afterwards."""
    store = pyro.get_param_store()
    saved = store.get_state()
    store.clear()
    try:
        yield
    finally:
        store.clear()
        store.set_state(saved)


def _make_guide(
    guide: str, model: Callable[..., None], init_loc_fn: Callable[..., Any]
) -> pyro.nn.PyroModule:
    if guide == "map":
        return AutoDelta(model, init_loc_fn=init_loc_fn)
    if guide == "normal":
        return AutoNormal(model, init_loc_fn=init_loc_fn, init_scale=0.01)
    return AutoMultivariateNormal(model, init_loc_fn=init_loc_fn, init_scale=0.01)


def _point(guide: pyro.nn.PyroModule, *args: Any) -> Params:
    with torch.no_grad():
        return {name: value.detach().clone() for name, value in guide.median(*args).items()}


def _guide_draws(
    guide: pyro.nn.PyroModule, names: tuple[str, ...], count: int, *args: Any
) -> Params:
    with torch.no_grad():
        samples = [guide(*args) for _ in range(count)]
    return {name: torch.stack([sample[name] for sample in samples]) for name in names}


# ---------------------------------------------------------------------- checkpoints
class _Interrupts:
    """SIGINT deferred to the end of the current step (see :func:`_deferred_interrupts`)."""

    def __init__(self) -> None:
        self.requested = False

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if Ctrl-C arrived during the last step."""
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt


@contextlib.contextmanager
def _deferred_interrupts(enabled: bool) -> Iterator[_Interrupts]:
    """Defer Ctrl-C to the end of the current step while checkpointing.

    A first Ctrl-C only sets a flag (checked between steps), so that the checkpoint written on
    interruption holds a consistent state; a second Ctrl-C interrupts at once. Only in the main
    thread (signal handlers cannot be set elsewhere).
    """
    flags = _Interrupts()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield flags
        return

    def handler(signum: int, frame: Any) -> None:
        if flags.requested:
            raise KeyboardInterrupt
        flags.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flags
    finally:
        signal.signal(signal.SIGINT, previous)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an SVI checkpoint written by :func:`fit_svi` or ``fit_svi_stream``.

    A checkpoint is a ``torch.save`` pickle: load only files you trust.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.

    Returns
    -------
    dict
        ``signature`` (the run's settings), ``completed`` (finished restarts: losses, start,
        point, draws), ``current`` (the restart in progress: ``restart``, ``step``, ``losses``,
        Pyro param-store state ``params``, optimiser state ``optim``, torch RNG state
        ``torch_rng``; ``None`` between restarts), ``numpy_rng``, ``python_rng``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint: expected an existing file, got {str(path)!r}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise ValueError(f"checkpoint: cannot read {str(path)!r}: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint: {str(path)!r} is not a hmm_pyro SVI checkpoint")
    return payload


class _Checkpointer:
    """Writes the state of an SVI run atomically; restores it on resume.

    ``completed`` holds the finished restarts (plain tensors and arrays); ``current`` the restart
    in progress, written every ``every`` steps and when the run is interrupted.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        every: int,
        signature: dict[str, Any],
        resume: bool,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.every = every
        self.signature = signature
        self.completed: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None
        self.resumed_from: dict[str, int] | None = None
        if self.path is not None and resume and self.path.exists():
            payload = load_checkpoint(self.path)
            _check_signature(payload["signature"], signature)
            self.completed = payload["completed"]
            self.current = payload["current"]
            np.random.set_state(payload["numpy_rng"])  # noqa: NPY002 - the global state
            random.setstate(payload["python_rng"])
            self.resumed_from = {
                "restart": len(self.completed),
                "step": 0 if self.current is None else int(self.current["step"]),
            }

    @property
    def enabled(self) -> bool:
        """True when a checkpoint path was given."""
        return self.path is not None

    def save(self, current: dict[str, Any] | None) -> None:
        """Write the finished restarts and ``current`` (atomically)."""
        if self.path is None:
            return
        payload = {
            "format": _CHECKPOINT_FORMAT,
            "version": _CHECKPOINT_VERSION,
            "signature": self.signature,
            "completed": self.completed,
            "current": current,
            "numpy_rng": np.random.get_state(),  # noqa: NPY002 - the global state
            "python_rng": random.getstate(),
        }
        with atomic_write(self.path, "wb") as handle:
            torch.save(payload, handle)

    def finish(self, run: dict[str, Any]) -> None:
        """Record a finished restart and save."""
        self.completed.append({key: value for key, value in run.items() if key != "guide"})
        self.current = None
        self.save(None)

    def take_current(self, restart: int) -> dict[str, Any] | None:
        """The saved in-progress state of ``restart`` (once), or ``None``."""
        current, self.current = self.current, None
        if current is not None and int(current["restart"]) != restart:
            raise ValueError(
                f"checkpoint: holds restart {current['restart']} in progress, expected {restart}"
            )
        return current


def _check_signature(saved: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Refuse to resume a checkpoint of a run with other settings or other data."""
    keys = sorted(set(saved) | set(wanted))
    different = [key for key in keys if saved.get(key) != wanted.get(key)]
    if different:
        shown = "; ".join(
            f"{key}: checkpoint {describe(saved.get(key))}, now {describe(wanted.get(key))}"
            for key in different
        )
        raise ValueError(
            f"checkpoint: was written by a run with other settings or data ({shown}); "
            "pass resume=False (or another checkpoint path) to start over"
        )


def _init_name(init: Any) -> Any:
    """JSON-friendly description of ``init`` for checkpoint signatures."""
    if isinstance(init, str):
        return init
    if isinstance(init, dict):
        return {name: torch.as_tensor(value).tolist() for name, value in sorted(init.items())}
    return "callable"


# ---------------------------------------------------------------------- one restart
class _AdamProblem:
    """What an Adam restart optimises: a Pyro model, its per-step arguments, its start data.

    Parameters
    ----------
    hmm : HMM
        The model.
    model : callable
        The Pyro model, called with ``*step_args(restart_seed, step)``.
    step_args : callable
        ``(restart_seed, step) -> tuple`` of model arguments for one step (the mini-batch).
    init_data : callable
        ``restart_seed -> Sequences`` the symmetry-breaking start is drawn from.
    guide, init, steps, lr, lrd, tol, num_draws
        As in :func:`fit_svi` (``lrd``: ClippedAdam's per-step learning-rate decay; ``tol``
        ``None`` switches the convergence test off).
    final_loss : callable, optional
        ``(point, losses) -> float`` replacing the default final loss.
    """

    def __init__(
        self,
        hmm: HMM,
        model: Callable[..., None],
        step_args: Callable[[int, int], tuple[Any, ...]],
        init_data: Callable[[int], Sequences],
        guide: str,
        init: str | Callable[..., Any] | dict[str, Any],
        steps: int,
        lr: float,
        lrd: float,
        tol: float | None,
        num_draws: int,
        final_loss: Callable[[Params, np.ndarray], float] | None = None,
    ) -> None:
        self.hmm, self.model, self.step_args, self.init_data = hmm, model, step_args, init_data
        self.guide, self.init, self.steps, self.lr, self.lrd = guide, init, steps, lr, lrd
        self.tol, self.num_draws, self.final_loss = tol, num_draws, final_loss


def _run_restart(
    problem: _AdamProblem,
    restart: int,
    seed: int,
    bar: tqdm,
    checkpointer: _Checkpointer,
    interrupts: _Interrupts,
    callback: Callable[[int, int, float], Any] | None,
) -> dict[str, Any]:
    """One Adam optimisation from one start; returns losses, start, point (and draws).

    With a checkpoint, the state after every ``checkpoint_every`` steps and at an interruption
    is written; a saved in-progress state of this restart is restored first (param store,
    optimiser state, torch RNG, losses), so the continued run is bitwise the uninterrupted one.
    """
    hmm = problem.hmm
    pyro.clear_param_store()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        init = problem.init
        if callable(init):
            init_loc_fn = init
        elif isinstance(init, str) and init in PYRO_INITS:
            init_loc_fn = PYRO_INITS[init]
        else:
            start = initial_params(hmm, problem.init_data(seed), init, seed=seed)
            init_loc_fn = init_to_value(values=start)
        guide = _make_guide(problem.guide, problem.model, init_loc_fn)
        guide(*problem.step_args(seed, 0))  # create the parameters at the start
        start = _point(guide, *problem.step_args(seed, 0))
        optim = ClippedAdam({"lr": problem.lr, "lrd": problem.lrd})
        svi = SVI(problem.model, guide, optim, Trace_ELBO())
        losses: list[float] = []
        first = 0
        saved = checkpointer.take_current(restart)
        if saved is not None:
            pyro.get_param_store().set_state(saved["params"])
            optim.set_state(saved["optim"])
            torch.set_rng_state(saved["torch_rng"])
            losses = list(saved["losses"])
            first = int(saved["step"])
            bar.update(first)

        def state(step: int) -> dict[str, Any]:
            return {
                "restart": restart,
                "step": step,
                "losses": list(losses),
                "params": pyro.get_param_store().get_state(),
                "optim": optim.get_state(),
                "torch_rng": torch.get_rng_state(),
            }

        converged = False
        consistent = True
        step = first
        try:
            while step < problem.steps and not converged:
                consistent = False
                losses.append(float(svi.step(*problem.step_args(seed, step))))
                step += 1
                consistent = True
                bar.update(1)
                if callback is not None:
                    callback(restart, step, losses[-1])
                if not np.isfinite(losses[-1]):
                    break
                if problem.tol is not None and step % _WINDOW == 0 and step >= 2 * _WINDOW:
                    current = np.mean(losses[-_WINDOW:])
                    previous = np.mean(losses[-2 * _WINDOW : -_WINDOW])
                    converged = abs(previous - current) <= problem.tol * max(abs(current), 1.0)
                if step % checkpointer.every == 0 and step < problem.steps and not converged:
                    checkpointer.save(state(step))
                interrupts.check()
        except KeyboardInterrupt:
            if checkpointer.enabled and consistent:
                checkpointer.save(state(step))
            raise
        point = _point(guide, *problem.step_args(seed, 0))
        if problem.final_loss is not None:
            final = problem.final_loss(point, np.asarray(losses))
        elif problem.guide == "map":
            final = losses[-1]
        else:
            final = float(np.mean(losses[-_WINDOW:]))
        run = {
            "guide": guide,
            "losses": np.asarray(losses),
            "final_loss": final,
            "converged": converged,
            "start": start,
            "point": point,
        }
        if problem.guide != "map":
            # Drawn now, from this restart's guide, with the restart's seed: a later restart
            # reuses the same param-store names, so the guide cannot be sampled afterwards.
            torch.manual_seed(seed)
            run["draws"] = _guide_draws(
                guide, hmm.param_names, problem.num_draws, *problem.step_args(seed, 0)
            )
        return run


def _run_restart_lean(
    hmm: HMM,
    data: Sequences,
    init: str | dict[str, Any],
    restart: int,
    seed: int,
    steps: int,
    bar: tqdm,
    interrupts: _Interrupts,
    callback: Callable[[int, int, float], Any] | None,
) -> dict[str, Any]:
    """MAP by L-BFGS (strong Wolfe line search) from one start.

    The objective is the ``AutoDelta`` one, ``log p(y, theta)`` in the constrained space,
    evaluated with its closed-form gradient (one numba call) through stick-breaking/log
    coordinates.
    """
    start = initial_params(hmm, data, init, seed=seed)
    potential = AnalyticPotential(hmm, data)
    flat = potential.unconstrain(start)[SITE].clone().requires_grad_()
    optimizer = torch.optim.LBFGS(
        [flat],
        lr=1.0,
        max_iter=steps,
        max_eval=2 * steps,
        tolerance_grad=_LBFGS_TOLERANCE_GRAD,
        tolerance_change=_LBFGS_TOLERANCE_CHANGE,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    losses: list[float] = []

    def closure() -> torch.Tensor:
        value, gradient = potential.value_and_gradient(flat.detach(), jacobian=False)
        flat.grad = -gradient
        losses.append(-float(value))
        bar.update(1)
        if callback is not None:
            callback(restart, len(losses), losses[-1])
        interrupts.check()
        return -value

    optimizer.step(closure)
    iterations = optimizer.state[flat].get("n_iter", 0)
    final = -float(potential.value_and_gradient(flat.detach(), jacobian=False)[0])
    point = potential.constrain({SITE: flat.detach()})
    return {
        "guide": None,
        "losses": np.asarray(losses),
        "final_loss": final,
        "converged": bool(np.isfinite(final) and iterations < steps),
        "start": start,
        "point": point,
    }


def _run_restarts(
    run_one: Callable[[int, int, _Interrupts], dict[str, Any]],
    seeds: list[int],
    checkpointer: _Checkpointer,
) -> list[dict[str, Any]]:
    """Run the restarts not finished in the checkpoint; save after each one."""
    runs = list(checkpointer.completed)
    with _deferred_interrupts(checkpointer.enabled) as interrupts:
        for restart in range(len(runs), len(seeds)):
            run = run_one(restart, seeds[restart], interrupts)
            checkpointer.finish(run)
            runs.append(run)
    return runs


def _restart_summary(
    hmm: HMM, runs: list[dict[str, Any]], guide: str
) -> tuple[Params, dict[str, np.ndarray], dict[str, Any]]:
    """The best restart's posterior draws, loss statistics and per-restart attributes."""
    finals = [run["final_loss"] for run in runs]
    best = int(np.nanargmin(np.where(np.isfinite(finals), finals, np.nan)))
    if guide == "map":
        draws = {name: value[None, None] for name, value in runs[best]["point"].items()}
    else:
        draws = {name: value[None] for name, value in runs[best]["draws"].items()}
    longest = max(len(run["losses"]) for run in runs)
    losses = np.full((1, 1, len(runs), longest), np.nan)
    for index, run in enumerate(runs):
        losses[0, 0, index, : len(run["losses"])] = run["losses"]
    stats = {"loss": losses, "final_loss": np.asarray(finals)[None, None]}
    attrs = {
        "best_restart": best,
        "converged": [bool(run["converged"]) for run in runs],
        "steps_run": [len(run["losses"]) for run in runs],
        "init_min_hellinger": [float(min_separation(hmm, run["start"])) for run in runs],
        "restart_params": {
            name: [run["point"][name].tolist() for run in runs] for name in hmm.param_names
        },
    }
    return draws, stats, attrs


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
        the run finishes. It is a ``torch.save`` pickle: resume only from files you trust.
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
    tol = _DEFAULT_TOL[guide] if tol is None else check_positive("tol", tol, allow_zero=True)
    if isinstance(init, str) and init not in INIT_METHODS and init not in PYRO_INITS:
        raise ValueError(
            f"init: expected one of {INIT_METHODS + tuple(PYRO_INITS)}, a dict of parameters "
            f"or an init_loc_fn, got {init!r}"
        )
    if isinstance(init, dict):
        initial_params(hmm, data, init)  # validate before starting
    check_checkpoint_args(checkpoint, resume, callback)
    if seed is None and resume and checkpoint is not None and Path(checkpoint).exists():
        seed = load_checkpoint(checkpoint)["signature"]["seed"]
    seed = resolve_seed(seed)
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
        "init": _init_name(init),
        "tol": tol,
        "num_draws": num_draws,
    }
    checkpointer = _Checkpointer(checkpoint, checkpoint_every, signature, resume)
    began = time.perf_counter()
    with (
        _isolated_param_store(),
        torch_threads(1),
        tqdm(
            total=steps * restarts, desc=f"SVI ({guide})", disable=progress_disabled(progress)
        ) as bar,
    ):
        bar.update(sum(len(run["losses"]) for run in checkpointer.completed))
        if backend == "lean":

            def run_one(restart: int, restart_seed: int, interrupts: _Interrupts) -> dict:
                return _run_restart_lean(
                    hmm, data, init, restart, restart_seed, steps, bar, interrupts, callback
                )

        else:

            def model() -> None:
                hmm.model(data)

            problem = _AdamProblem(
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

            def run_one(restart: int, restart_seed: int, interrupts: _Interrupts) -> dict:
                return _run_restart(
                    problem, restart, restart_seed, bar, checkpointer, interrupts, callback
                )

        runs = _run_restarts(run_one, seeds, checkpointer)
        draws, stats, restart_attrs = _restart_summary(hmm, runs, guide)
    wall = time.perf_counter() - began
    attrs = {
        "inference": "svi",
        "guide": guide,
        "backend": backend,
        "init": init
        if isinstance(init, str)
        else ("user" if isinstance(init, dict) else "callable"),
        "seed": seed,
        "restart_seeds": seeds,
        "restarts": restarts,
        "steps": steps,
        "lr": lr,
        "tol": tol,
        "sampling_time": wall,
        **restart_attrs,
    }
    return _svi_fit(hmm, data, draws, stats, attrs, checkpointer, checkpoint, seed)


def _svi_fit(
    hmm: HMM,
    data: Sequences,
    draws: Params,
    stats: dict[str, np.ndarray],
    attrs: dict[str, Any],
    checkpointer: _Checkpointer,
    checkpoint: str | os.PathLike[str] | None,
    seed: int,
) -> Fit:
    """The ``Fit`` of an SVI run: draws, loss histories and attributes as InferenceData."""
    if checkpointer.enabled:
        attrs["checkpoint"] = str(checkpoint)
        attrs["resumed_from"] = checkpointer.resumed_from
    idata = build_inference_data(
        hmm,
        data,
        draws,
        stats,
        sample_stats_dims={"loss": ["restart", "step"], "final_loss": ["restart"]},
        attrs=attrs,
        prior_seed=seed,
    )
    return Fit(hmm, idata)


def check_checkpoint_args(
    checkpoint: str | os.PathLike[str] | None,
    resume: bool,
    callback: Callable[..., Any] | None,
) -> None:
    """Validate the checkpoint arguments shared by the SVI runners."""
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint: expected a path or None, got {describe(checkpoint)}")
    if checkpoint is not None and Path(checkpoint).is_dir():
        raise ValueError(f"checkpoint: expected a file path, got the folder {str(checkpoint)!r}")
    if not isinstance(resume, bool):
        raise TypeError(f"resume: expected True or False, got {describe(resume)}")
    if resume and checkpoint is None:
        raise ValueError("resume: needs a checkpoint path (checkpoint=PATH)")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable or None, got {describe(callback)}")
