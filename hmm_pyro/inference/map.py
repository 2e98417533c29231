"""Maximum a posteriori (MAP) point estimates, with restarts: L-BFGS or Adam.

Both optimisers maximise the same objective, ``log p(y, theta)`` (the forward-algorithm log
likelihood plus :meth:`hmm_pyro.HMM.log_prior`) in the constrained space, with no Jacobian:

- ``"lbfgs"`` (default): L-BFGS with a strong Wolfe line search on the stick-breaking/log
  coordinates, each evaluation one numba call that returns the value and its closed-form
  gradient (:class:`~hmm_pyro.inference.potential.Potential`); no Pyro tracing. It stops on
  its gradient and change tolerances (below) or after ``steps`` iterations.
- ``"adam"``: Pyro's ``SVI`` with an ``AutoDelta`` guide and (clipped) Adam at a constant
  learning rate. A point-mass guide makes the ELBO the log joint, so this is SVI whose optimum is
  the MAP; it accepts Pyro's initialisations (``"median"``, ...) and is what
  :func:`~hmm_pyro.inference.stream.fit_svi_stream` runs on mini-batches.

Each restart starts from its own symmetry-breaking draw (:mod:`hmm_pyro.starts`); the best final
objective is kept. Attributes: ``inference="map"`` (the fit's ``method``) and ``optimizer``.
Pyro's own initialisations (Adam only) can be asked for by name (``"median"``, ``"mean"``,
``"feasible"``, ``"uniform"``, ``"sample"``) or as an ``init_loc_fn``; ``"median"`` and
``"mean"`` start every Dirichlet row at the same point, a saddle where identical states get
identical gradients. Plain Pyro (``DiscreteHMM`` + ``AutoDelta``) stays there: three identical
emission rows equal to the overall symbol frequencies (measured). Our model escapes or not
depending on how floating-point round-off differs between states (1e-11 in the gradients): on
the reference workload, seed 0 escaped with an earlier kernel and stays with the current one.
Not something to rely on. The starts are recorded in the attributes so that
``hmm_pyro.diagnose`` can flag them.

Where the mode is interior both reach the same point (measured to 1e-9 nats; tested to 1e-3
nats per observation). With flat Dirichlet priors (concentration 1) a categorical mode can lie
on the boundary, an emission probability of 0, which is at infinity in these coordinates; the
gradient fades on the way and L-BFGS stops on its change tolerance a little short (measured on
300 symbols, 3 states, 4 restarts: 0.10 nats below Adam's best after 2,000 steps, 3e-4 nats per
observation).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from hmm_pyro._types import SequencesLike
from hmm_pyro._validation import check_bool, check_choice, check_int, check_positive
from hmm_pyro.data import Sequences
from hmm_pyro.fit import Fit
from hmm_pyro.inference.potential import SITE, Potential
from hmm_pyro.inference.svi_restarts import (
    DEFAULT_TOL,
    StepReport,
    adam_runner,
    check_in_memory,
    check_init,
    restart_fit,
    run_restarts,
    start_run,
)
from hmm_pyro.learning import initial_params
from hmm_pyro.model import HMM
from hmm_pyro.starts import INIT_METHODS, derive_seeds

__all__ = ["OPTIMIZERS", "check_bounded_prior", "fit_map", "run_lbfgs_restart"]

OPTIMIZERS = ("lbfgs", "adam")
_ADAM_LR = 0.05
"""Adam's default learning rate (``fit_svi``'s too)."""
_LBFGS_TOLERANCE_GRAD = 1e-6
"""Stop when every coordinate of the MAP gradient is below this (nats per unit coordinate)."""
_LBFGS_TOLERANCE_CHANGE = 1e-9
"""... or when the loss or a coordinate changes by less than this between iterations."""


def run_lbfgs_restart(
    hmm: HMM,
    data: Sequences,
    init: str | dict[str, Any],
    restart: int,
    seed: int,
    steps: int,
    report: StepReport,
) -> dict[str, Any]:
    """MAP by L-BFGS (strong Wolfe line search) from one start.

    The objective is the ``AutoDelta`` one, ``log p(y, theta)`` in the constrained space,
    evaluated with its closed-form gradient (one numba call) through stick-breaking/log
    coordinates. ``steps`` bounds the iterations (and ``2 * steps`` the evaluations).
    """
    start = initial_params(hmm, data, init, seed=seed)
    potential = Potential(hmm, data)
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
        report.step(restart, len(losses), losses[-1])
        report.check_interrupt()
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


def _unbounded_priors(hmm: HMM) -> list[str]:
    """The Dirichlet priors of ``hmm`` with a concentration below 1, as ``name=min``."""
    num = hmm.num_states
    found = []
    for name in hmm.simplex_params:
        if name == "pi":
            concentration = hmm.prior.resolve_initial(num, torch.float64)
        elif name == "A":
            concentration = hmm.prior.resolve_transitions(num, torch.float64)
        else:
            fields = hmm.emission.prior_hyperparameters(hmm.prior, num, torch.float64)
            concentration = fields[name]
        if bool((concentration < 1).any()):
            found.append(f"{name}={float(concentration.min()):g}")
    return found


def check_bounded_prior(hmm: HMM) -> None:
    """Refuse a MAP fit whose objective has no maximum: a Dirichlet concentration below 1.

    ``(alpha - 1) log p`` grows without bound as a probability with ``alpha < 1`` and (almost)
    no data goes to 0, so ``log p(y, theta)`` has no maximiser: an optimiser in the
    unconstrained coordinates runs off towards the boundary (measured: 4,000 evaluations,
    standard deviations of 1e38 to 1e83 for states left empty, log posteriors of +124,593).

    Raises
    ------
    ValueError
        Naming the priors and the runners that handle them.
    """
    sparse = _unbounded_priors(hmm)
    if sparse:
        raise ValueError(
            f"prior: Dirichlet concentration below 1 ({', '.join(sparse)}) makes the log "
            "posterior unbounded at zero probabilities, so no MAP exists; use fit_em (its MAP "
            "sets such probabilities to exactly 0), fit_svi or fit_nuts, or concentrations >= 1"
        )


def _check_optimizer_args(
    optimizer: str, init: Any, lr: float | None, tol: float | None
) -> tuple[float | None, float | None]:
    """Refuse Adam's settings and Pyro's starts with L-BFGS; fill Adam's defaults."""
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_init(init)
    if optimizer == "adam":
        lr = _ADAM_LR if lr is None else check_positive("lr", lr)
        tol = DEFAULT_TOL["map"] if tol is None else check_positive("tol", tol, allow_zero=True)
        return lr, tol
    if lr is not None:
        raise ValueError(f"lr: is Adam's learning rate; optimizer='lbfgs' takes none, got {lr!r}")
    if tol is not None:
        raise ValueError(
            "tol: is Adam's convergence test; optimizer='lbfgs' stops on its own gradient and "
            f"change tolerances, got {tol!r}"
        )
    if not (isinstance(init, dict) or init in INIT_METHODS):
        raise ValueError(
            f"init: optimizer='lbfgs' starts from one of {INIT_METHODS} or a dict of "
            f"parameters; Pyro's starts need optimizer='adam', got {init!r}"
        )
    return None, None


def fit_map(
    hmm: HMM,
    data: SequencesLike,
    optimizer: str = "lbfgs",
    restarts: int = 4,
    seed: int | None = None,
    init: str | Callable[..., Any] | dict[str, Any] = "auto",
    steps: int = 2000,
    lr: float | None = None,
    tol: float | None = None,
    progress: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    callback: Callable[[int, int, float], Any] | None = None,
) -> Fit:
    """The posterior mode (MAP) of the HMM parameters, hidden states marginalised.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences or array-like
        The observations (for a sequence store, mini-batch MAP is
        ``hmm_pyro.fit_svi_stream(hmm, store, guide="map")``).
    optimizer : {"lbfgs", "adam"}
        ``"lbfgs"``: L-BFGS on the closed-form objective and gradient (see the module notes).
        ``"adam"``: Pyro's ``SVI`` with an ``AutoDelta`` guide and Adam. Both maximise
        ``log p(y, theta)``.
    restarts : int
        Independent starts; the one with the highest final ``log p(y, theta)`` is kept.
    seed : int, optional
        Master seed (restart ``r`` uses child seed ``r``); same seed, bitwise same result.
        ``None`` draws one and records it.
    init : {"auto", "prior", "data", "em"}, dict, Pyro name or callable
        Starting point. The default draws a symmetry-breaking start per restart. With
        ``optimizer="adam"``, Pyro's ``"median"``/``"mean"``/``"feasible"``/``"uniform"``/
        ``"sample"`` or any ``init_loc_fn`` are accepted to reproduce Pyro's behaviour
        (``"median"`` and ``"mean"`` start all states equal, at a saddle; see the module
        notes).
    steps : int
        Maximum iterations (L-BFGS) or steps (Adam) per restart.
    lr : float, optional
        Adam's learning rate (default 0.05); L-BFGS takes none (its line search sets the step).
    tol : float, optional
        Adam only: stop when the mean loss over the last 50 steps changed by less than ``tol``
        relative to the 50 before (default 1e-7). L-BFGS stops when every gradient coordinate
        is below 1e-6 or the loss changes by less than 1e-9.
    progress : bool
        Show a progress bar.
    checkpoint : str or os.PathLike, optional
        File that holds the run's state, written atomically: the finished restarts and, with
        Adam, the restart in progress every ``checkpoint_every`` steps and on Ctrl-C (as in
        :func:`~hmm_pyro.inference.svi.fit_svi`). An L-BFGS restart is one call: it is
        checkpointed when it finishes, and an interrupted one reruns from its start on resume
        (restarts are deterministic, so the result is the same). Data only, versioned and
        checksummed, as ``fit_svi``'s.
    checkpoint_every : int
        Adam steps between checkpoints of the restart in progress.
    resume : bool
        Continue from ``checkpoint`` if it exists; the result equals, bitwise, an uninterrupted
        run's. Settings and data are checked against the checkpoint (``ValueError`` if they
        differ); ``seed=None`` takes the checkpoint's seed.
    callback : callable, optional
        ``callback(restart, step, loss)`` after every Adam step or every L-BFGS objective
        evaluation (``loss`` is ``-log p(y, theta)``); it may raise ``KeyboardInterrupt`` to
        stop the run as Ctrl-C would.

    Returns
    -------
    Fit
        ``method == "map"``; posterior group: the best restart's point (one chain, one draw);
        sample statistics ``loss`` (``-log p(y, theta)`` per step or evaluation, every restart)
        and ``final_loss``; attributes ``optimizer``, ``best_restart``, ``converged``,
        ``steps_run``, ``init_min_hellinger``, ``restart_params`` and the settings.

    Raises
    ------
    ValueError
        For a prior with a Dirichlet concentration below 1 (no MAP exists; see
        :func:`check_bounded_prior`), and for invalid settings.
    KeyboardInterrupt
        On Ctrl-C (or from ``callback``); with ``checkpoint`` the state is saved first.

    Examples
    --------
    >>> import hmm_pyro as hp
    >>> hmm = hp.HMM(2, hp.Poisson())
    >>> data = hp.Sequences([[0, 1, 0, 7, 9, 8, 0, 1]])
    >>> fit = hp.fit_map(hmm, data, restarts=2, seed=0, progress=False)
    >>> fit.method, fit.attrs["optimizer"]
    ('map', 'lbfgs')
    """
    data = check_in_memory(hmm, data)
    check_bounded_prior(hmm)
    lr, tol = _check_optimizer_args(optimizer, init, lr, tol)
    steps = check_int("steps", steps, minimum=1)
    restarts = check_int("restarts", restarts, minimum=1)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=1)
    progress = check_bool("progress", progress)
    run = {"optimizer": optimizer, "steps": steps, "lr": lr, "restarts": restarts, "tol": tol}
    seed, checkpointer = start_run(
        "fit_map", hmm, data, init, seed, checkpoint, checkpoint_every, resume, callback, run
    )
    if optimizer == "lbfgs":

        def run_one(restart: int, restart_seed: int, report: StepReport) -> dict[str, Any]:
            return run_lbfgs_restart(hmm, data, init, restart, restart_seed, steps, report)

        settings: dict[str, Any] = {"steps": steps}
    else:
        run_one = adam_runner(hmm, data, "map", init, steps, lr, tol, 1, checkpointer)
        settings = {"steps": steps, "lr": lr, "tol": tol}
    outcome = run_restarts(
        hmm,
        "map",
        run_one,
        derive_seeds(seed, restarts),
        checkpointer,
        steps=steps,
        desc=f"MAP ({optimizer})",
        progress=progress,
        callback=callback,
    )
    return restart_fit(
        hmm,
        data,
        outcome,
        method={"inference": "map", "optimizer": optimizer},
        init=init,
        seed=seed,
        settings=settings,
        checkpointer=checkpointer,
        checkpoint=checkpoint,
    )
