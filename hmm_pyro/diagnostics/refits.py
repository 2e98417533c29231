"""Point-estimate refits for :func:`hmm_pyro.diagnose`: fewer states, weaker prior, held out.

Every refit is EM to the mode (:func:`hmm_pyro.learning.run_em`, the MAP that ``fit_map``
seeks, or the maximum-likelihood estimate of the emission parameters when the emission prior is
left out), started next to a solution that is already known:

- :func:`merge_start`: the ``K - 1`` state start obtained by merging two states of a ``K``-state
  solution: their smoothed state probabilities are added (and their rows and columns of the
  expected transition counts), then one M-step of the smaller model gives its parameters.
  :func:`fewer_states` scores every pair's merged start by its log posterior and runs EM from
  the best :data:`MERGE_CANDIDATES`.
- :func:`held_out`: cross-validation with refits: folds of whole sequences, or, with fewer
  sequences than folds (one long sequence), contiguous time blocks held out as missing
  observations (:func:`hmm_pyro.diagnostics.folds.make_folds`, as ``compare_priors`` does); the
  held-out density is the plug-in ``log p(y_test | theta_fold)`` (``log p(block | rest)`` for
  blocks). A fold's refit does not start at the full-data solution, which has seen the held-out
  data: EM keeps much of that imprint in the directions the training data do not pin down
  (measured: an over-specified 4-state fit then looked 5-20 nats *better* held out than the
  true 2-state model, where refits from fresh starts put it 13-50 nats worse). It starts
  :data:`SHRINK` of the way from the full-data solution towards the training fold's one-state
  fit (transition rows towards uniform), which kept the ordering of the states and brought the
  over-specified models to within a few nats of the fresh-start refits in the same check.
- :func:`bic`: ``-2 log p(y | theta) + p log n`` with ``n`` observed entries.

The smaller model's prior keeps the hyperparameters of the states it keeps (the merged state
keeps those of the first state of the pair), so an exchangeable prior stays the same prior.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import torch

from hmm_pyro._parallel import torch_threads
from hmm_pyro._types import Params
from hmm_pyro.data import Sequences
from hmm_pyro.diagnostics.folds import make_folds
from hmm_pyro.learning import run_em
from hmm_pyro.learning.mstep import maximize
from hmm_pyro.learning.objective import log_prior, prior_tensors
from hmm_pyro.learning.statistics import weighted_statistics
from hmm_pyro.model import HMM
from hmm_pyro.priors import Prior

__all__ = [
    "EM_MAX_ITER",
    "EM_TOL",
    "FOLDS",
    "FOLD_MAX_ITER",
    "MERGE_CANDIDATES",
    "SENSITIVITY_MAX_ITER",
    "SHRINK",
    "PointFit",
    "bic",
    "fewer_states",
    "held_out",
    "merge_start",
    "point_fit",
    "sub_prior",
    "take_states",
]

EM_MAX_ITER = 300
"""EM updates per refit. Refits start next to a solution (the fit's own point, a merged start,
the full-data fit for a fold), where EM needs tens of updates, not hundreds."""
EM_TOL = 1e-6
"""Relative change of the log posterior at which a refit stops (1e-3 nats per update for 1,000
nats; ``fit_em``'s default)."""
SENSITIVITY_MAX_ITER = 50
"""EM updates at most for the refit without the emission prior (prior sensitivity). A prior
that holds states together lets go within tens of updates once it is removed (the states
separate at once); states the data keep together only crawl apart along a flat direction,
where more updates cost time and do not change the verdict (the states must end twice as
far apart and distinct, ``PriorSensitivity.moved``). At 100, 50 and 30 updates the first
flag, its cause and first remedy were the same on all 36 MAP fits of the accuracy benchmark's
prior-related kinds (strong and sparse priors, identical rows, K + 1, overlap, tiny data)."""
MERGE_CANDIDATES = 1
"""Merged starts (the best-scoring pairs) from which the smaller model is refitted: the pair
whose merge costs least is the one a redundant state duplicates."""
FOLDS = 5
"""Cross-validation folds of the held-out likelihood (as ``compare_priors``' default)."""
FOLD_MAX_ITER = 20
"""EM updates at most per fold refit. From the shrunk start, states the training data clearly
separate come apart within tens of updates, while a spurious split (a flat direction, where EM
crawls) does not come back: a cap that also keeps the refits cheap."""
SHRINK = 0.5
"""How far a fold's start is moved from the full-data solution towards the one-state fit."""


@dataclass(frozen=True)
class PointFit:
    """A point estimate and the model it belongs to.

    Attributes
    ----------
    hmm : HMM
        The model (with the prior used, whatever ``emission_prior`` says).
    params : dict of torch.Tensor
        float64 parameters.
    log_likelihood : float
        ``log p(y | params)`` on the data it was fitted to.
    log_posterior : float
        ``log p(y | params) + log p(params)`` (without the emission prior when
        ``emission_prior`` is false): the objective EM ascended.
    emission_prior : bool
        Whether the emission parameters' prior was used.
    merged : tuple of int or None
        The pair of states of the larger model merged into this one's start.
    """

    hmm: HMM
    params: Params
    log_likelihood: float
    log_posterior: float
    emission_prior: bool = True
    merged: tuple[int, int] | None = None

    @property
    def num_states(self) -> int:
        """Number of states."""
        return self.hmm.num_states


def _float64(params: Params) -> Params:
    return {name: torch.as_tensor(value).to(torch.float64) for name, value in params.items()}


def take_states(hmm: HMM, params: Params, keep: Sequence[int]) -> Params:
    """The parameters of the states ``keep`` (``pi`` and the rows of ``A`` renormalised).

    Parameters
    ----------
    hmm : HMM
        The model ``params`` belong to (its ``param_dims`` name the state axes).
    params : dict of torch.Tensor
        One parameter set.
    keep : sequence of int
        The states kept, in the new order.

    Returns
    -------
    dict of torch.Tensor
    """
    index = torch.as_tensor(list(keep), dtype=torch.long)
    dims = hmm.param_dims()
    result = {}
    for name, value in _float64(params).items():
        for axis, dim in enumerate(dims[name]):
            if dim in ("state", "state_to"):
                value = value.index_select(axis, index)
        result[name] = value
    for name in ("pi", "A"):
        total = result[name].sum(-1, keepdim=True)
        result[name] = torch.where(total > 0, result[name] / total, 1.0 / len(index))
    return result


def sub_prior(hmm: HMM, keep: Sequence[int]) -> Prior:
    """The prior of the model with the states ``keep`` only (their own hyperparameters).

    Parameters
    ----------
    hmm : HMM
        The larger model.
    keep : sequence of int
        The states kept.

    Returns
    -------
    Prior
        Every hyperparameter resolved for ``K`` states and restricted to ``keep`` (the
        transition concentrations with the stickiness already on their diagonal).
    """
    index = list(keep)
    num = hmm.num_states
    prior = hmm.prior
    changes = {
        "pi": prior.resolve_initial(num).numpy()[index],
        "A": prior.resolve_transitions(num).numpy()[np.ix_(index, index)],
        "stickiness": 0.0,
    }
    emission = hmm.emission.prior_fields_for_states(prior, num, index)
    changes.update({name: value.numpy() for name, value in emission.items()})
    return prior.replace(**changes)


def _smaller_hmm(hmm: HMM, keep: Sequence[int]) -> HMM:
    return HMM(len(keep), hmm.emission, prior=sub_prior(hmm, keep), dtype=hmm.dtype)


def _objective(hmm: HMM, data: Sequences, params: Params, emission_prior: bool) -> float:
    log_lik = float(hmm.log_likelihood(params, data).sum())
    return log_lik + float(log_prior(hmm, params, prior_tensors(hmm), emission_prior))


def point_fit(
    hmm: HMM,
    data: Sequences,
    start: Params,
    emission_prior: bool = True,
    merged: tuple[int, int] | None = None,
    max_iter: int = EM_MAX_ITER,
) -> PointFit:
    """EM to the mode from ``start``.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        The observations (prepared for ``hmm``).
    start : dict of torch.Tensor
        Starting parameters.
    emission_prior : bool
        Use the emission parameters' prior (else their maximum-likelihood estimate).
    merged : tuple of int, optional
        Recorded in the result.
    max_iter : int
        EM updates at most.

    Returns
    -------
    PointFit
    """
    run = run_em(
        hmm, data, _float64(start), max_iter=max_iter, tol=EM_TOL, emission_prior=emission_prior
    )
    return PointFit(
        hmm=hmm,
        params=run.params,
        log_likelihood=float(run.final_log_likelihood),
        log_posterior=float(run.final_objective),
        emission_prior=emission_prior,
        merged=merged,
    )


def merge_start(
    hmm: HMM, data: Sequences, params: Params, pair: tuple[int, int], emission_prior: bool = True
) -> tuple[HMM, Params]:
    """The ``K - 1`` state start that merges the states ``pair`` of a ``K``-state solution.

    Parameters
    ----------
    hmm : HMM
        The ``K``-state model.
    data : Sequences
        The observations.
    params : dict of torch.Tensor
        The ``K``-state solution.
    pair : tuple of int
        ``(i, j)``: state ``j`` is merged into state ``i``.
    emission_prior : bool
        Whether the M-step uses the emission prior.

    Returns
    -------
    HMM, dict of torch.Tensor
        The smaller model (prior restricted to the kept states) and its start: one M-step on
        the merged smoothed state probabilities and transition counts.
    """
    params = _float64(params)
    first, second = pair
    keep = [state for state in range(hmm.num_states) if state != second]
    small = _smaller_hmm(hmm, keep)
    passed = hmm.forward_backward(params, data)
    gamma = passed.gamma.to(torch.float64)
    merge = torch.zeros(hmm.num_states, len(keep), dtype=torch.float64)
    for column, state in enumerate(keep):
        merge[state, column] = 1.0
    merge[second, keep.index(first)] = 1.0
    weights = gamma @ merge
    transitions = merge.T @ passed.transitions.to(torch.float64).sum(0) @ merge
    start = gamma[:, 0].sum(0) @ merge
    stats = weighted_statistics(small, data, weights, start, transitions)
    previous = take_states(hmm, params, keep)
    updated = maximize(small, stats, prior_tensors(small), previous, emission_prior)
    return small, updated


def fewer_states(point: PointFit, data: Sequences, candidates: int = MERGE_CANDIDATES) -> PointFit:
    """The best ``K - 1`` state refit from merging two states of ``point``.

    Every pair's merged start (:func:`merge_start`) is scored by its log posterior; EM runs from
    the ``candidates`` best, and the refit with the highest log posterior is returned.

    Parameters
    ----------
    point : PointFit
        A ``K``-state solution, ``K >= 2``.
    data : Sequences
        The observations.
    candidates : int
        Merged starts refitted.

    Returns
    -------
    PointFit
        With ``merged`` set to the pair of ``point``'s states that were merged.
    """
    hmm = point.hmm
    scored = []
    with torch_threads(1):
        for pair in combinations(range(hmm.num_states), 2):
            small, start = merge_start(hmm, data, point.params, pair, point.emission_prior)
            value = _objective(small, data, start, point.emission_prior)
            scored.append((value if math.isfinite(value) else -math.inf, pair, small, start))
        scored.sort(key=lambda item: item[0], reverse=True)
        refits = [
            point_fit(small, data, start, point.emission_prior, merged=pair)
            for _, pair, small, start in scored[:candidates]
        ]
    return max(refits, key=lambda refit: refit.log_posterior)


def bic(point: PointFit, data: Sequences) -> float:
    """Bayesian information criterion ``-2 log p(y | theta) + p log n`` (lower is better).

    Parameters
    ----------
    point : PointFit
        The estimate (``p`` = :meth:`hmm_pyro.HMM.num_free_params` of its model).
    data : Sequences
        The observations (``n`` = observed entries, as :func:`hmm_pyro.sweep` counts them).

    Returns
    -------
    float
    """
    count = point.hmm.num_free_params()
    return -2.0 * point.log_likelihood + count * math.log(max(data.num_observed, 1))


def _fold_start(hmm: HMM, params: Params, train: Sequences) -> Params:
    """:data:`SHRINK` of the way from ``params`` to the one-state fit of ``train``."""
    num = hmm.num_states
    pooled = hmm.emission.pooled_params(train)
    start = {
        "pi": torch.full((num,), 1.0 / num, dtype=torch.float64),
        "A": (1.0 - SHRINK) * params["A"] + SHRINK / num,
    }
    for name in hmm.emission.param_names:
        target = pooled[name].to(torch.float64).expand_as(params[name])
        start[name] = (1.0 - SHRINK) * params[name] + SHRINK * target
    return start


def held_out(
    points: Sequence[PointFit],
    data: Sequences,
    folds: int = FOLDS,
    cache: dict[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, str]:
    """Held-out log densities of several point estimates, by cross-validation with refits.

    Parameters
    ----------
    points : sequence of PointFit
        The estimates on all the data; each fold refits each of them by EM (with the same
        prior) on the training part, from its full-data solution shrunk towards the one-state
        fit (see the module notes).
    data : Sequences
        The observations.
    folds : int
        Number of folds (fewer when the shortest sequence is shorter).
    cache : dict, optional
        Held-out densities already computed, by ``id`` of the point (filled in here), so that a
        model compared twice (with a larger and with a smaller one) is refitted once.

    Returns
    -------
    numpy.ndarray
        ``(len(points), units)`` held-out log densities: one unit per sequence (folds of whole
        sequences) or per sequence and block (blocked folds).
    str
        How the folds were made, in words.
    """
    count = max(2, min(folds, int(data.lengths.min())))
    split = make_folds(data, count)
    cache = {} if cache is None else cache
    result = np.full((len(points), split.num_units), np.nan)
    todo = []
    for row, point in enumerate(points):
        if id(point) in cache:
            result[row] = cache[id(point)]
        else:
            todo.append(row)
    with torch_threads(1):
        for fold in range(count):
            train = split.sequences(fold, "train")
            test = split.sequences(fold, "test")
            for row in todo:
                point = points[row]
                hmm = point.hmm
                prepared = hmm.prepare_data(train)
                refit = run_em(
                    hmm,
                    prepared,
                    _fold_start(hmm, point.params, prepared),
                    max_iter=FOLD_MAX_ITER,
                    tol=EM_TOL,
                    emission_prior=point.emission_prior,
                ).params
                density = hmm.log_likelihood(refit, test).numpy()
                if split.kind == "blocks":
                    density = density - hmm.log_likelihood(refit, train).numpy()
                result[row, split.units[fold]] = density
    for row in todo:
        cache[id(points[row])] = result[row]
    if split.kind == "blocks":
        text = f"{count}-fold blocked CV, EM refits"
    else:
        text = f"{count}-fold CV over sequences, EM refits"
    return result, text
