"""Baum-Welch EM for the MAP (or ML) estimate, with random restarts (:func:`fit_em`).

The EM iterations from one start are :func:`hmm_pyro.learning.em_steps.run_em`. The E-step is
one forward-backward pass (:func:`hmm_pyro.kernels.forward_backward`, numba on
the CPU); the M-step (:mod:`hmm_pyro.learning.mstep`) is vectorised over states. The objective
``log p(y | theta) + log p(theta)`` uses exactly the prior densities of
:meth:`hmm_pyro.HMM.log_prior`, so EM's MAP is the mode that :func:`hmm_pyro.fit_map` seeks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hmm_pyro._types import Params, SequencesLike
from hmm_pyro._validation import check_bool
from hmm_pyro.fit import Fit
from hmm_pyro.learning.em_steps import run_em
from hmm_pyro.learning.mstep import check_initial_mode
from hmm_pyro.learning.objective import prior_tensors
from hmm_pyro.learning.restarts import check_common, fit_from_runs, run_restarts
from hmm_pyro.learning.runs import Run
from hmm_pyro.model import HMM

__all__ = ["fit_em"]


def fit_em(
    hmm: HMM,
    data: SequencesLike,
    restarts: int = 5,
    max_iter: int = 200,
    tol: float = 1e-6,
    seed: int | None = None,
    init: str | Mapping[str, Any] = "auto",
    emission_prior: bool = True,
    initial: str = "free",
    progress: bool = True,
) -> Fit:
    """Fit the MAP (or ML) parameters by Baum-Welch EM with random restarts.

    Parameters
    ----------
    hmm : HMM
        The model: categorical, Gaussian (univariate or diagonal multivariate) or Poisson
        emissions. Its prior supplies the MAP pseudo-counts: Dirichlet concentration 1 gives
        the maximum-likelihood estimate of ``pi``, ``A`` and ``B``.
    data : Sequences or array-like
        Observations; missing values (NaN) contribute no emission term and no emission
        statistic.
    restarts : int
        Independent starts; the run with the highest final log posterior is kept.
    max_iter : int
        Maximum EM updates per restart.
    tol : float
        Stop when one update changes the objective by at most ``tol`` relative to its size.
    seed : int, optional
        Master seed; restart ``r`` uses child seed ``r`` (recorded). ``None`` draws one.
    init : {"auto", "prior", "data", "em"} or dict
        Starting points (:func:`hmm_pyro.starts.initial_params`), one per restart and
        never with two identical states. A dict is a single start (one run).
    emission_prior : bool
        ``False`` drops the emission parameters' prior: maximum likelihood for them (the
        Dirichlet priors of ``pi`` and ``A`` stay; set them to 1 for a plain MLE).
    initial : {"free", "stationary"}
        ``"free"``: ``pi`` is estimated from the first steps. ``"stationary"``: ``pi`` is tied to
        the stationary distribution of ``A``; the ``A`` update is then a generalised M-step
        (L-BFGS on softmax logits, accepted only if it increases the expected log posterior), so
        the objective still never decreases. Needs ``pi`` and ``A`` concentrations ``>= 1``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Fit
        ``method == "em"``; one chain, one draw: the best point. ``sample_stats``: ``loglik``
        and ``objective`` (log likelihood and log posterior) per restart and iteration
        (entry ``i``: after ``i`` updates, as hmmlearn's ``monitor_.history``) and
        ``final_objective``. Attributes: ``init``, ``seed``, ``restart_seeds``,
        ``best_restart``, ``converged``, ``status``, ``iterations``, ``decreases``,
        ``init_min_hellinger`` and ``restart_params``.

    Notes
    -----
    A restart is ``converged`` only if the stopping rule was met, the objective never decreased
    beyond round-off (relative ``1e-9``) and every value stayed finite. ``status`` is
    ``"non_finite"`` when an update produced NaN/inf or an invalid value (e.g. a Gaussian state
    collapsing onto one point without a variance prior): that restart stops and keeps its last
    valid parameters, and is kept as the result only if every restart failed (with a warning).
    With Dirichlet concentrations below 1 the posterior density is unbounded on the boundary;
    MAP-EM then sets probabilities to exactly zero (clamp and renormalise, as hmmlearn does),
    ``objective`` records the finite part of the log posterior (the ``+inf`` terms of those
    zeros left out, their number in the ``boundary_zeros`` attribute) and restarts are ranked by
    it.
    """
    data, restarts, max_iter, tol = check_common(hmm, data, restarts, max_iter, tol)
    emission_prior = check_bool("emission_prior", emission_prior)
    progress = check_bool("progress", progress)
    prior = prior_tensors(hmm)
    check_initial_mode(initial, prior)

    def runner(start: Params, tick: Callable[[], None]) -> Run:
        return run_em(hmm, data, start, prior, max_iter, tol, emission_prior, initial, tick)

    runs, seed, seeds, seconds = run_restarts(
        hmm, data, runner, restarts, seed, init, max_iter, progress, desc="EM"
    )
    settings = {
        "max_iter": max_iter,
        "tol": tol,
        "emission_prior": emission_prior,
        "initial": initial,
    }
    return fit_from_runs(hmm, data, "em", runs, seed, seeds, seconds, init, settings)
