"""How the ELPD is estimated: PSIS-LOO or K-fold folds (for ``compare_priors`` and ``diagnose``).

Used by :func:`~hmm_pyro.compare.compare_priors` and by the refits of :func:`hmm_pyro.diagnose`
(held-out likelihood of a model with fewer states), so it sits in the lower of the two layers.

* :func:`choose_elpd` resolves ``elpd="auto"`` and refuses PSIS-LOO where it cannot work;
* :func:`make_folds` cuts the data into folds: whole sequences per fold, or, with fewer
  sequences than folds, contiguous time blocks held out as missing observations;
* :func:`log_mean_exp`, :func:`standard_error` and :func:`unit_labels` turn held-out densities
  into pointwise ELPD units, their standard error and their names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hmm_pyro.covariates import Covariates
from hmm_pyro.data import Sequences

__all__ = [
    "ELPD_METHODS",
    "HIGH_PARETO_K",
    "MIN_LOO_SEQUENCES",
    "Folds",
    "choose_elpd",
    "elpd_description",
    "log_mean_exp",
    "make_folds",
    "standard_error",
    "unit_labels",
]

ELPD_METHODS = ("auto", "loo", "kfold")
MIN_LOO_SEQUENCES = 5
"""Fewest sequences for which ``elpd="auto"`` uses PSIS-LOO over sequences; with fewer, leaving
one out removes a large share of the data and the importance weights break down (Pareto k)."""
HIGH_PARETO_K = 0.7
"""Pareto k above 0.7: the PSIS estimate for that sequence is unreliable (Vehtari et al. 2024)."""


def choose_elpd(elpd: str, num_sequences: int, point: bool) -> str:
    """Resolve ``elpd="auto"`` and check that PSIS-LOO can run.

    Parameters
    ----------
    elpd : {"auto", "loo", "kfold"}
        The requested estimate (already checked to be one of :data:`ELPD_METHODS`).
    num_sequences : int
        Sequences in the data.
    point : bool
        The runner gives one point (``fit_map``), not posterior draws.

    Returns
    -------
    str
        ``"loo"`` or ``"kfold"``: ``"auto"`` is ``"loo"`` with at least
        :data:`MIN_LOO_SEQUENCES` sequences and posterior draws.

    Raises
    ------
    ValueError
        For ``"loo"`` with one point or with one sequence.
    """
    if elpd == "auto":
        enough = num_sequences >= MIN_LOO_SEQUENCES
        elpd = "loo" if enough and not point else "kfold"
    if elpd == "loo" and point:
        raise ValueError(
            "elpd: 'loo' needs posterior draws; method='map' gives one point "
            "(use method='nuts', method='svi' or elpd='kfold')"
        )
    if elpd == "loo" and num_sequences < 2:
        raise ValueError(
            "elpd: 'loo' over sequences needs at least 2 sequences, got 1 "
            "(use elpd='kfold': blocked cross-validation over time)"
        )
    return elpd


@dataclass(frozen=True)
class Folds:
    """Training and test data of each fold, and how test densities map to pointwise units.

    Attributes
    ----------
    kind : {"sequences", "blocks"}
        Folds of whole sequences, or of time blocks (block ``f`` of every sequence in fold
        ``f``, marked missing in the training data).
    train, test : list of (values, lengths)
        Per fold: ``(N, T, D)`` values (NaN at missing or held-out steps) and ``(N,)`` lengths.
    units : list of list of int
        Per fold: the pointwise unit of each test column.
    num_units : int
        Sequences, or sequences times folds for blocks.
    covariates : list of (Covariates or None, Covariates or None)
        Per fold: the covariates of the training and of the test sequences (empty when the
        data have none).
    """

    kind: str
    train: list[tuple[np.ndarray, np.ndarray]]
    test: list[tuple[np.ndarray, np.ndarray]]
    units: list[list[int]]
    num_units: int
    covariates: list[tuple[Covariates | None, Covariates | None]] = field(default_factory=list)

    def sequences(self, fold: int, part: str) -> Sequences:
        """The training (``part="train"``) or test sequences of ``fold``, with their covariates."""
        values, lengths = (self.train if part == "train" else self.test)[fold]
        covariates = self.covariates[fold][part != "train"] if self.covariates else None
        return Sequences(values, lengths=lengths, dim=values.shape[-1], covariates=covariates)


def make_folds(data: Sequences, folds: int) -> Folds:
    """Cut ``data`` into ``folds`` folds of whole sequences, or of time blocks.

    Parameters
    ----------
    data : Sequences
        The observations.
    folds : int
        Number of folds. With at least ``folds`` sequences, sequence ``n`` is held out in fold
        ``n % folds``; with fewer, fold ``f`` holds out block ``f`` of every sequence.
        Covariates are known at every step: folds of sequences carry their own sequences'
        (on the standardisation of all the data), folds of blocks all of them (only the
        observations of the block are marked missing).

    Returns
    -------
    Folds

    Raises
    ------
    ValueError
        If time blocks are needed and the shortest sequence has fewer steps than ``folds``.
    """
    values = data.values.numpy()
    lengths = data.lengths.numpy()
    num = data.num_sequences
    train, test, units = [], [], []
    covariates = data.covariates
    parts: list[tuple[Covariates | None, Covariates | None]] = []
    if num >= folds:
        assignment = np.arange(num) % folds
        for fold in range(folds):
            keep, out = np.flatnonzero(assignment != fold), np.flatnonzero(assignment == fold)
            train.append(_trim(values[keep], lengths[keep]))
            test.append(_trim(values[out], lengths[out]))
            units.append([int(n) for n in out])
            if covariates is not None:
                parts.append((covariates.select(keep.tolist()), covariates.select(out.tolist())))
        return Folds("sequences", train, test, units, num, parts)
    short = int(lengths.min())
    if short < folds:
        raise ValueError(
            f"folds: expected at most {short} folds (time blocks of the shortest sequence), "
            f"got {folds}"
        )
    for fold in range(folds):
        masked = values.copy()
        for n in range(num):
            block = np.array_split(np.arange(int(lengths[n])), folds)[fold]
            masked[n, block] = np.nan
        train.append((masked, lengths))
        test.append((values, lengths))
        units.append([n * folds + fold for n in range(num)])
        if covariates is not None:
            parts.append((covariates, covariates))
    return Folds("blocks", train, test, units, num * folds, parts)


def _trim(values: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(values[:, : int(lengths.max())]), lengths


def elpd_description(elpd: str, folds: Folds | None, folds_count: int, point: bool) -> str:
    """How the ELPD was estimated, in words (the ``elpd_method`` of the table).

    Parameters
    ----------
    elpd : {"loo", "kfold"}
        The estimate used.
    folds : Folds or None
        The folds (``None`` for PSIS-LOO).
    folds_count : int
        Number of folds.
    point : bool
        The fits are points (MAP): the predictive density is a plug-in.

    Returns
    -------
    str
    """
    if elpd == "loo" or folds is None:
        return "PSIS-LOO over sequences (az.loo on the per-sequence log likelihood)"
    plug = "; MAP plug-in predictive density" if point else ""
    if folds.kind == "sequences":
        return f"{folds_count}-fold CV over whole sequences (refits{plug})"
    return (
        f"{folds_count}-fold blocked CV: contiguous time blocks held out as missing "
        f"observations, log p(block | rest) (refits{plug})"
    )


def log_mean_exp(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """``log(mean(exp(values)))`` along ``axis``, stable for large magnitudes.

    Parameters
    ----------
    values : numpy.ndarray
        Log densities, e.g. ``(S, N_test)`` held-out log densities over ``S`` draws.
    axis : int
        The axis averaged over.

    Returns
    -------
    numpy.ndarray
        ``values`` without ``axis``; ``-inf`` where every value is ``-inf``.
    """
    peak = np.max(values, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    mean = np.mean(np.exp(values - peak), axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.squeeze(np.log(mean) + peak, axis=axis)


def standard_error(pointwise: np.ndarray) -> float:
    """``sqrt(n var(pointwise))``, as ``arviz.loo`` computes the SE of a sum of pointwise terms.

    Parameters
    ----------
    pointwise : numpy.ndarray
        ``(n,)`` pointwise ELPD terms (or paired differences).

    Returns
    -------
    float
    """
    return float(math.sqrt(len(pointwise) * np.var(pointwise)))


def unit_labels(folds: Folds | None, count: int) -> list[str]:
    """Names of the pointwise ELPD units: ``"sequence n"`` or ``"sequence n block b"``.

    Parameters
    ----------
    folds : Folds or None
        The folds (``None`` for PSIS-LOO).
    count : int
        Number of units.

    Returns
    -------
    list of str
    """
    if folds is not None and folds.kind == "blocks":
        per_sequence = len(folds.units)
        return [
            f"sequence {unit // per_sequence} block {unit % per_sequence}" for unit in range(count)
        ]
    return [f"sequence {unit}" for unit in range(count)]
