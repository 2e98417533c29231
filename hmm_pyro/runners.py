"""The runner registry: one name per way of fitting a model (for compare, sweep and the CLI).

Every runner takes ``(hmm, data, **options)`` and returns a :class:`hmm_pyro.Fit`; the NUTS, SVI
(also mini-batch SVI, whose data may be a store) and MAP runners are in
:mod:`hmm_pyro.inference`, the EM, Viterbi-training and supervised learners in
:mod:`hmm_pyro.learning`. :func:`runner_options` lists a runner's options with their defaults.

Layer rule: ``runners`` imports ``diagnostics``, ``inference`` and ``learning`` and the layers
below them; ``compare``, ``sweep``, ``plots`` and the CLI import it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from hmm_pyro._types import SequencesLike
from hmm_pyro._validation import check_choice
from hmm_pyro.fit import Fit
from hmm_pyro.inference.map import fit_map
from hmm_pyro.inference.nuts import fit_nuts
from hmm_pyro.inference.stream import fit_svi_stream
from hmm_pyro.inference.svi import fit_svi
from hmm_pyro.learning import fit_em, fit_supervised, fit_viterbi_training
from hmm_pyro.model import HMM

__all__ = ["RUNNERS", "TASK_METHODS", "check_options", "get_runner", "run_task", "runner_options"]

RUNNERS: dict[str, Callable[..., Fit]] = {
    "nuts": fit_nuts,
    "svi": fit_svi,
    "map": fit_map,
    "em": fit_em,
    "viterbi": fit_viterbi_training,
    "supervised": fit_supervised,
    "svi_stream": fit_svi_stream,
}
"""Method name -> runner. ``svi`` is Pyro's ``SVI`` with a Gaussian guide, ``map`` the posterior
mode (L-BFGS by default); ``supervised`` needs the true ``states`` as well as the data;
``svi_stream`` (mini-batch SVI) takes a store (:mod:`hmm_pyro.store`) or in-memory data."""

TASK_METHODS = ("nuts", "svi", "map", "em", "viterbi")
"""The runners that fit from the data alone with a seed: what :func:`run_task` runs."""


def get_runner(method: str, allowed: Iterable[str] | None = None) -> Callable[..., Fit]:
    """The runner called ``method``.

    Parameters
    ----------
    method : str
        A key of :data:`RUNNERS`.
    allowed : iterable of str, optional
        The methods the caller supports (default: all).

    Returns
    -------
    callable

    Raises
    ------
    ValueError
        If ``method`` is not one of ``allowed``.
    """
    check_choice("method", method, tuple(RUNNERS if allowed is None else allowed))
    return RUNNERS[method]


def check_options(method: str, options: dict[str, Any], reserved: Iterable[str] = ()) -> None:
    """Raise ``TypeError`` naming the option if ``options`` are not keyword arguments of the runner.

    Parameters
    ----------
    method : str
        A key of :data:`RUNNERS`.
    options : dict
        Keyword arguments meant for the runner.
    reserved : iterable of str
        Arguments the caller sets itself (refused even though the runner has them).
    """
    reserved = set(reserved)
    parameters = runner_options(method)
    for key in options:
        if key not in parameters or key in reserved:
            allowed = [name for name in parameters if name not in reserved]
            raise TypeError(
                f"{key}: not an option of the {method} runner; expected some of {allowed}"
            )


def run_task(method: str, hmm: HMM, data: SequencesLike, seed: int, options: dict[str, Any]) -> Fit:
    """Fit one model as one task of a larger job (a prior setting, a fold, a grid point).

    No progress bar, and NUTS chains run one after the other within the task (the tasks are
    what runs in parallel).

    Parameters
    ----------
    method : str
        One of :data:`TASK_METHODS`.
    hmm : HMM
        The model.
    data : Sequences or compatible
        The observations.
    seed : int
        Seed of the fit.
    options : dict
        Further keyword arguments of the runner.

    Returns
    -------
    Fit
    """
    runner = get_runner(method, TASK_METHODS)
    settings: dict[str, Any] = {"progress": False, **options}
    if method == "nuts":
        settings.setdefault("parallel", False)
    return runner(hmm, data, seed=seed, **settings)


def runner_options(method: str) -> dict[str, Any]:
    """The options of the runner called ``method`` and their defaults.

    Parameters
    ----------
    method : str
        A key of :data:`RUNNERS`.

    Returns
    -------
    dict
        ``{option: default}`` for every parameter after the model and the data, in signature
        order; ``inspect.Parameter.empty`` marks a required one (``states`` of
        ``supervised``).

    Examples
    --------
    >>> runner_options("nuts")["chains"]
    4
    """
    parameters = list(inspect.signature(get_runner(method)).parameters.values())
    return {parameter.name: parameter.default for parameter in parameters[2:]}
