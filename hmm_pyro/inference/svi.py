"""Stochastic variational inference: MAP (``AutoDelta``) and Gaussian guides, with restarts.

The default start breaks the label symmetry (:mod:`hmm_pyro.inference.init`). Pyro's own
initialisations can be asked for by name (``"median"``, ``"mean"``, ``"feasible"``,
``"uniform"``, ``"sample"``) or as an ``init_loc_fn``; ``"median"`` and ``"mean"`` start every
Dirichlet row at the same point, a saddle where identical states get identical gradients. Plain
Pyro (``DiscreteHMM`` + ``AutoDelta``) stays there: three identical emission rows equal to the
overall symbol frequencies (measured). Our model usually escapes only because floating-point
round-off differs between states (1e-11 in the gradients), which is not something to rely on.
The starts are recorded in the attributes so that ``hmm_pyro.diagnose`` can flag them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
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

from hmm_pyro._random import resolve_seed
from hmm_pyro._validation import check_choice, check_int, check_positive, describe
from hmm_pyro.data import Sequences
from hmm_pyro.inference._parallel import progress_disabled, torch_threads
from hmm_pyro.inference.analytic_potential import SITE, AnalyticPotential
from hmm_pyro.inference.fit import Fit
from hmm_pyro.inference.inference_data import build_inference_data
from hmm_pyro.inference.init import INIT_METHODS, derive_seeds, initial_params, min_separation
from hmm_pyro.model import HMM

__all__ = ["BACKENDS", "GUIDES", "PYRO_INITS", "fit_svi"]

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
    guide: str, model: Callable[[], None], init_loc_fn: Callable[..., Any]
) -> pyro.nn.PyroModule:
    if guide == "map":
        return AutoDelta(model, init_loc_fn=init_loc_fn)
    if guide == "normal":
        return AutoNormal(model, init_loc_fn=init_loc_fn, init_scale=0.01)
    return AutoMultivariateNormal(model, init_loc_fn=init_loc_fn, init_scale=0.01)


def _point(guide_name: str, guide: pyro.nn.PyroModule) -> Params:
    with torch.no_grad():
        return {name: value.detach().clone() for name, value in guide.median().items()}


def _run_restart(
    hmm: HMM,
    data: Sequences,
    guide_name: str,
    init: str | Callable[..., Any] | dict[str, Any],
    seed: int,
    steps: int,
    lr: float,
    tol: float,
    bar: tqdm,
) -> dict[str, Any]:
    """One optimisation from one start; returns losses, the guide and its start."""
    pyro.clear_param_store()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if callable(init):
            init_loc_fn = init
        elif isinstance(init, str) and init in PYRO_INITS:
            init_loc_fn = PYRO_INITS[init]
        else:
            start = initial_params(hmm, data, init, seed=seed)
            init_loc_fn = init_to_value(values=start)

        def model() -> None:
            hmm.model(data)

        guide = _make_guide(guide_name, model, init_loc_fn)
        guide()  # create the parameters at the start
        start = _point(guide_name, guide)
        svi = SVI(model, guide, ClippedAdam({"lr": lr}), Trace_ELBO())
        losses: list[float] = []
        converged = False
        for step in range(steps):
            losses.append(float(svi.step()))
            bar.update(1)
            if not np.isfinite(losses[-1]):
                break
            if (step + 1) % _WINDOW == 0 and step + 1 >= 2 * _WINDOW:
                current = np.mean(losses[-_WINDOW:])
                previous = np.mean(losses[-2 * _WINDOW : -_WINDOW])
                if abs(previous - current) <= tol * max(abs(current), 1.0):
                    converged = True
                    break
        final = float(np.mean(losses[-_WINDOW:])) if guide_name != "map" else losses[-1]
        return {
            "guide": guide,
            "losses": np.asarray(losses),
            "final_loss": final,
            "converged": converged,
            "start": start,
            "point": _point(guide_name, guide),
        }


def _run_restart_lean(
    hmm: HMM, data: Sequences, init: str | dict[str, Any], seed: int, steps: int, bar: tqdm
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


def _guide_draws(guide: pyro.nn.PyroModule, names: tuple[str, ...], count: int) -> Params:
    with torch.no_grad():
        samples = [guide() for _ in range(count)]
    return {name: torch.stack([sample[name] for sample in samples]) for name in names}


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
) -> Fit:
    """Fit the HMM by SVI with the hidden states marginalised.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences or array-like
        The observations.
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

    Returns
    -------
    Fit
        Posterior group: the MAP point (one chain, one draw) or draws from the guide; sample
        statistics: the loss (negative ELBO) history of every restart.
    """
    if not isinstance(hmm, HMM):
        raise TypeError(f"hmm: expected a hmm_pyro.HMM, got {describe(hmm)}")
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
    lr = check_positive("lr", lr)
    tol = _DEFAULT_TOL[guide] if tol is None else check_positive("tol", tol, allow_zero=True)
    if isinstance(init, str) and init not in INIT_METHODS and init not in PYRO_INITS:
        raise ValueError(
            f"init: expected one of {INIT_METHODS + tuple(PYRO_INITS)}, a dict of parameters "
            f"or an init_loc_fn, got {init!r}"
        )
    if isinstance(init, dict):
        initial_params(hmm, data, init)  # validate before starting
    seed = resolve_seed(seed)
    seeds = derive_seeds(seed, restarts)
    began = time.perf_counter()
    runs = []
    with (
        _isolated_param_store(),
        torch_threads(1),
        tqdm(
            total=steps * restarts, desc=f"SVI ({guide})", disable=progress_disabled(progress)
        ) as bar,
    ):
        for restart_seed in seeds:
            if backend == "lean":
                runs.append(_run_restart_lean(hmm, data, init, restart_seed, steps, bar))
            else:
                runs.append(_run_restart(hmm, data, guide, init, restart_seed, steps, lr, tol, bar))
        finals = [run["final_loss"] for run in runs]
        best = int(np.nanargmin(np.where(np.isfinite(finals), finals, np.nan)))
        if guide == "map":
            draws = {name: value[None, None] for name, value in runs[best]["point"].items()}
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seeds[best])
                sampled = _guide_draws(runs[best]["guide"], hmm.param_names, num_draws)
            draws = {name: value[None] for name, value in sampled.items()}
    wall = time.perf_counter() - began
    longest = max(len(run["losses"]) for run in runs)
    losses = np.full((1, 1, restarts, longest), np.nan)
    for index, run in enumerate(runs):
        losses[0, 0, index, : len(run["losses"])] = run["losses"]
    stats = {
        "loss": losses,
        "final_loss": np.asarray(finals)[None, None],
    }
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
        "best_restart": best,
        "steps": steps,
        "lr": lr,
        "tol": tol,
        "converged": [bool(run["converged"]) for run in runs],
        "steps_run": [len(run["losses"]) for run in runs],
        "sampling_time": wall,
        "init_min_hellinger": [float(min_separation(hmm, run["start"])) for run in runs],
        "restart_params": {
            name: [run["point"][name].tolist() for run in runs] for name in hmm.param_names
        },
    }
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
