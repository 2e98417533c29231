"""The restart engine shared by ``fit_svi``, ``fit_map`` and ``fit_svi_stream``.

One restart is one optimisation from one start. Here: Pyro's ``SVI`` with an autoguide and
Adam (:func:`run_adam_restart`, checkpointed step by step); the ``"map"`` guide is
``AutoDelta`` (a point mass, whose ELBO is ``log p(y, theta)``: SVI whose optimum is the MAP).
L-BFGS restarts are in :mod:`hmm_pyro.inference.map`. :func:`run_restarts` runs the restarts a
checkpoint has not finished, each with its own child seed, and summarises them (the best final
loss wins); :func:`restart_fit` turns the summary into a :class:`~hmm_pyro.fit.Fit`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

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

from hmm_pyro._parallel import torch_threads
from hmm_pyro._progress import Progress
from hmm_pyro._random import resolve_seed
from hmm_pyro._types import Params, SequencesLike
from hmm_pyro._validation import describe
from hmm_pyro.data import Sequences
from hmm_pyro.fit import Fit
from hmm_pyro.fit.inference_data import build_inference_data
from hmm_pyro.inference.checkpoint import (
    Checkpointer,
    Interrupts,
    check_checkpoint_args,
    deferred_interrupts,
    init_name,
    resume_seed,
)
from hmm_pyro.learning import initial_params
from hmm_pyro.model import HMM
from hmm_pyro.starts import INIT_METHODS, min_separation
from hmm_pyro.store import MemoryStore, SequenceStore

__all__ = [
    "AUTOGUIDES",
    "DEFAULT_TOL",
    "PYRO_INITS",
    "AdamProblem",
    "RestartOutcome",
    "StepReport",
    "adam_runner",
    "check_in_memory",
    "check_init",
    "restart_fit",
    "run_adam_restart",
    "run_restarts",
]

AUTOGUIDES = ("map", "normal", "mvn")
"""Autoguides of the Adam restarts: ``AutoDelta`` (``"map"``), ``AutoNormal`` (``"normal"``),
``AutoMultivariateNormal`` (``"mvn"``)."""
PYRO_INITS: dict[str, Callable[..., Any]] = {
    "median": init_to_median,
    "mean": init_to_mean,
    "feasible": init_to_feasible,
    "uniform": init_to_uniform,
    "sample": init_to_sample,
}
_WINDOW = 50
DEFAULT_TOL = {"map": 1e-7, "normal": 1e-4, "mvn": 1e-4}
"""Relative change of the windowed mean loss that counts as converged. MAP's loss is
deterministic, so its tolerance is tight; Gaussian guides have a noisy (one-particle) ELBO."""


def check_in_memory(hmm: HMM, data: SequencesLike) -> Sequences:
    """Check the model, refuse a sequence store (that is ``fit_svi_stream``'s), prepare ``data``."""
    if not isinstance(hmm, HMM):
        raise TypeError(f"hmm: expected a hmm_pyro.HMM, got {describe(hmm)}")
    if isinstance(data, (SequenceStore, MemoryStore)):
        raise TypeError(
            "data: got a sequence store; use hmm_pyro.fit_svi_stream(hmm, store, batch_size=...)"
        )
    return hmm.prepare_data(data)


def check_init(init: Any) -> None:
    """Refuse an ``init`` name that is neither one of our starts nor one of Pyro's."""
    if isinstance(init, str) and init not in INIT_METHODS and init not in PYRO_INITS:
        raise ValueError(
            f"init: expected one of {INIT_METHODS + tuple(PYRO_INITS)}, a dict of parameters "
            f"or an init_loc_fn, got {init!r}"
        )


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


class StepReport:
    """Where a restart reports its steps: the progress bar, the user's callback, Ctrl-C.

    Parameters
    ----------
    bar : Progress
        Progress over all steps of all restarts.
    interrupts : Interrupts
        Ctrl-C deferred to the end of a step
        (:func:`~hmm_pyro.inference.checkpoint.deferred_interrupts`).
    callback : callable, optional
        ``callback(restart, step, loss)``; it may raise ``KeyboardInterrupt``.
    """

    def __init__(
        self,
        bar: Progress,
        interrupts: Interrupts,
        callback: Callable[[int, int, float], Any] | None,
    ) -> None:
        self.bar, self.interrupts, self.callback = bar, interrupts, callback

    def skip(self, count: int) -> None:
        """Count ``count`` steps restored from a checkpoint as done."""
        self.bar.update(count)

    def step(self, restart: int, step: int, loss: float) -> None:
        """One step (or objective evaluation) done: advance the bar, then call the callback."""
        self.bar.update(1)
        if self.callback is not None:
            self.callback(restart, step, loss)

    def check_interrupt(self) -> None:
        """Raise ``KeyboardInterrupt`` if Ctrl-C arrived during the last step."""
        self.interrupts.check()


# ---------------------------------------------------------------------- one restart
class AdamProblem:
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
        As in ``fit_svi`` (``lrd``: ClippedAdam's per-step learning-rate decay; ``tol``
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


def run_adam_restart(
    problem: AdamProblem,
    restart: int,
    seed: int,
    report: StepReport,
    checkpointer: Checkpointer,
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
            checkpointer.restore(saved, optim)
            losses = list(saved["losses"])
            first = int(saved["step"])
            report.skip(first)

        def state(step: int) -> dict[str, Any]:
            return {
                "restart": restart,
                "step": step,
                "losses": list(losses),
                "params": pyro.get_param_store().get_state()["params"],
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
                report.step(restart, step, losses[-1])
                if not np.isfinite(losses[-1]):
                    break
                if problem.tol is not None and step % _WINDOW == 0 and step >= 2 * _WINDOW:
                    current = np.mean(losses[-_WINDOW:])
                    previous = np.mean(losses[-2 * _WINDOW : -_WINDOW])
                    converged = abs(previous - current) <= problem.tol * max(abs(current), 1.0)
                if step % checkpointer.every == 0 and step < problem.steps and not converged:
                    checkpointer.save(state(step))
                report.check_interrupt()
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


def adam_runner(
    hmm: HMM,
    data: Sequences,
    guide: str,
    init: str | Callable[..., Any] | dict[str, Any],
    steps: int,
    lr: float,
    tol: float,
    num_draws: int,
    checkpointer: Checkpointer,
) -> Callable[[int, int, StepReport], dict[str, Any]]:
    """``run_one(restart, restart_seed, report)`` for Adam restarts on all of ``data`` at once.

    The model is :meth:`HMM.model` on ``data`` (no mini-batches, constant learning rate); the
    arguments are those of ``fit_svi`` (``guide="map"``: ``AutoDelta``, as in ``fit_map``).
    """

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

    def run_one(restart: int, restart_seed: int, report: StepReport) -> dict[str, Any]:
        return run_adam_restart(problem, restart, restart_seed, report, checkpointer)

    return run_one


# ---------------------------------------------------------------------- all restarts
def start_run(
    runner: str,
    hmm: HMM,
    data: Sequences,
    init: Any,
    seed: int | None,
    checkpoint: str | os.PathLike[str] | None,
    checkpoint_every: int,
    resume: bool,
    callback: Callable[[int, int, float], Any] | None,
    settings: dict[str, Any],
) -> tuple[int, Checkpointer]:
    """What a restart runner does before its first step: checks, the seed, the checkpointer.

    A dict ``init`` is validated, the checkpoint arguments are checked, the seed is taken from
    the checkpoint when resuming without one, and the checkpointer is opened with the run's
    signature (runner, model, data fingerprint, seed, start and ``settings``).

    Parameters
    ----------
    runner : str
        The runner's name, recorded in the signature (``"fit_svi"``, ``"fit_map"``).
    hmm : HMM
        The model.
    data : Sequences
        The prepared observations.
    init : str, callable or dict
        The start.
    seed : int, optional
        The master seed.
    checkpoint, checkpoint_every, resume, callback
        As in :func:`hmm_pyro.fit_svi`.
    settings : dict
        The runner's own settings that a resumed run must share (steps, lr, ...).

    Returns
    -------
    seed : int
    checkpointer : Checkpointer
    """
    if isinstance(init, dict):
        initial_params(hmm, data, init)  # validate before starting
    check_checkpoint_args(checkpoint, resume, callback)
    seed = resolve_seed(resume_seed(seed, checkpoint, resume))
    signature = {
        "runner": runner,
        "model": hmm.to_config(),
        "data": None if checkpoint is None else MemoryStore(data).fingerprint,
        "seed": seed,
        "init": init_name(init),
        **settings,
    }
    return seed, Checkpointer(checkpoint, checkpoint_every, signature, resume)


class RestartOutcome(NamedTuple):
    """The restarts of one run and their summary (see :func:`run_restarts`).

    Attributes
    ----------
    guide : str
        The guide (``"map"`` for every point estimate, also L-BFGS's).
    seeds : list of int
        The restarts' child seeds.
    runs : list of dict
        One per restart: ``losses``, ``final_loss``, ``converged``, ``start``, ``point``
        (``draws`` for Gaussian guides) and what the runner added.
    draws : dict of torch.Tensor
        The best restart's posterior draws, ``(1, draws, ...)``.
    stats : dict of numpy.ndarray
        ``loss`` ``(1, 1, restart, step)`` (NaN after a restart's last step), ``final_loss``.
    attrs : dict
        ``best_restart``, ``converged``, ``steps_run``, ``init_min_hellinger``,
        ``restart_params``.
    wall : float
        Seconds the restarts took.
    """

    guide: str
    seeds: list[int]
    runs: list[dict[str, Any]]
    draws: Params
    stats: dict[str, np.ndarray]
    attrs: dict[str, Any]
    wall: float


def run_restarts(
    hmm: HMM,
    guide: str,
    run_one: Callable[[int, int, StepReport], dict[str, Any]],
    seeds: list[int],
    checkpointer: Checkpointer,
    steps: int,
    desc: str,
    progress: bool,
    callback: Callable[[int, int, float], Any] | None,
) -> RestartOutcome:
    """Run the restarts not finished in the checkpoint (saving after each one); summarise.

    Runs with an empty Pyro param store, one torch thread and a progress bar of ``steps`` per
    restart; ``run_one(restart, restart_seed, report)`` runs one restart. Ctrl-C is deferred
    to the end of a step while checkpointing.
    """
    began = time.perf_counter()
    with (
        _isolated_param_store(),
        torch_threads(1),
        Progress([steps * len(seeds)], desc=desc, enabled=progress) as bar,
    ):
        bar.update(sum(len(run["losses"]) for run in checkpointer.completed))
        runs = list(checkpointer.completed)
        with deferred_interrupts(checkpointer.enabled) as interrupts:
            report = StepReport(bar, interrupts, callback)
            for restart in range(len(runs), len(seeds)):
                run = run_one(restart, seeds[restart], report)
                checkpointer.finish(run)
                runs.append(run)
        draws, stats, attrs = _restart_summary(hmm, runs, guide)
    wall = time.perf_counter() - began
    return RestartOutcome(guide, seeds, runs, draws, stats, attrs, wall)


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


def restart_fit(
    hmm: HMM,
    data: Sequences,
    outcome: RestartOutcome,
    *,
    method: dict[str, Any],
    init: str | Callable[..., Any] | dict[str, Any],
    seed: int,
    settings: dict[str, Any],
    checkpointer: Checkpointer,
    checkpoint: str | os.PathLike[str] | None,
    extra: dict[str, Any] | None = None,
) -> Fit:
    """The ``Fit`` of restarted optimisations: draws, loss histories and attributes.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        The observations kept in the result.
    outcome : RestartOutcome
        From :func:`run_restarts`.
    method : dict
        The first attributes: ``inference`` (``"svi"`` or ``"map"``, the fit's ``method``) and
        what ran (``guide``, ``optimizer``).
    init, seed
        As given to the runner (``seed`` resolved).
    settings : dict
        Runner settings recorded after ``restarts`` (``steps``, ``lr``, ``tol``, ...).
    checkpointer : Checkpointer
        The run's checkpointer; with a checkpoint, ``checkpoint`` and ``resumed_from`` are
        recorded.
    checkpoint : str or os.PathLike, optional
        The checkpoint path as given.
    extra : dict, optional
        Runner attributes recorded after the restart summary.
    """
    attrs = {
        **method,
        "init": init
        if isinstance(init, str)
        else ("user" if isinstance(init, dict) else "callable"),
        "seed": seed,
        "restart_seeds": outcome.seeds,
        "restarts": len(outcome.seeds),
        **settings,
        "sampling_time": outcome.wall,
        **outcome.attrs,
        **(extra or {}),
    }
    if checkpointer.enabled:
        attrs["checkpoint"] = str(checkpoint)
        attrs["resumed_from"] = checkpointer.resumed_from
    idata = build_inference_data(
        hmm,
        data,
        outcome.draws,
        outcome.stats,
        sample_stats_dims={"loss": ["restart", "step"], "final_loss": ["restart"]},
        attrs=attrs,
        prior_seed=seed,
    )
    return Fit(hmm, idata)
