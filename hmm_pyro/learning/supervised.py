"""Supervised estimation: MAP (or ML) parameters from labelled state paths, by counting."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hmm_pyro._types import SequencesLike
from hmm_pyro._validation import check_bool, describe
from hmm_pyro.data import Sequences
from hmm_pyro.fit import Fit
from hmm_pyro.kernels import PAD_STATE
from hmm_pyro.learning.mstep import check_initial_mode, maximize
from hmm_pyro.learning.objective import prior_tensors
from hmm_pyro.learning.runs import check_homogeneous
from hmm_pyro.learning.statistics import path_statistics
from hmm_pyro.model import HMM

__all__ = ["as_state_paths", "fit_supervised"]


def _integer_array(name: str, value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:  # pragma: no cover - numpy accepts most input
        raise TypeError(f"{name}: expected integer state labels, got {describe(value)}") from error
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer)
        or (
            np.issubdtype(array.dtype, np.floating)
            and np.isfinite(array).all()
            and np.array_equal(array, np.round(array))
        )
    ):
        raise TypeError(f"{name}: expected integer state labels, got {describe(value)}")
    return array.astype(np.int64)


def _is_ragged(states: list | tuple) -> bool:
    """True for a list of per-sequence label arrays that does not stack into one 2-D array."""
    if len(states) == 0 or np.isscalar(states[0]):
        return False
    try:
        return np.asarray(states).ndim != 2
    except ValueError:
        return True


def as_state_paths(states: Any, data: Sequences, num_states: int) -> torch.Tensor:
    """Validate labelled paths against the data; return ``(N, T_max)`` int64 with -1 padding.

    Parameters
    ----------
    states : array-like or list of array-likes
        ``(N, T_max)`` integers with ``-1`` exactly at the padding of shorter sequences (a 1-D
        array for a single sequence), or a list of ``N`` per-sequence arrays of lengths
        ``data.lengths``.
    data : Sequences
        The observations the labels belong to.
    num_states : int
        ``K``: labels must lie in ``[0, K)``.

    Returns
    -------
    torch.Tensor

    Raises
    ------
    ValueError, TypeError
        Naming ``states``, with the expected and actual shape or value.
    """
    lengths = data.lengths.tolist()
    count, width = data.num_sequences, data.max_length
    if isinstance(states, (list, tuple)) and _is_ragged(states):
        if len(states) != count:
            raise ValueError(
                f"states: expected {count} label sequences (one per data sequence), "
                f"got {len(states)}"
            )
        paths = np.full((count, width), PAD_STATE, dtype=np.int64)
        for index, (item, length) in enumerate(zip(states, lengths, strict=True)):
            row = _integer_array(f"states[{index}]", item)
            if row.shape != (length,):
                raise ValueError(
                    f"states[{index}]: expected shape ({length},) (the length of data sequence "
                    f"{index}), got {row.shape}"
                )
            paths[index, :length] = row
    else:
        paths = _integer_array("states", states)
        if paths.ndim == 1 and count == 1:
            paths = paths[None]
        if paths.shape != (count, width):
            raise ValueError(
                f"states: expected shape ({count}, {width}) like the data (or a list of "
                f"per-sequence arrays), got {paths.shape}"
            )
    valid = data.mask.numpy()
    labels = paths[valid]
    if labels.size and (labels.min() < 0 or labels.max() >= num_states):
        raise ValueError(
            f"states: expected labels in [0, {num_states - 1}] at every step of every sequence, "
            f"got values in [{labels.min()}, {labels.max()}]"
        )
    if (paths[~valid] != PAD_STATE).any():
        raise ValueError(
            f"states: expected {PAD_STATE} at the padding after each sequence's length "
            f"{lengths if len(lengths) <= 6 else [*lengths[:5], '...']}"
        )
    return torch.from_numpy(paths)


def fit_supervised(
    hmm: HMM,
    data: SequencesLike,
    states: Any,
    emission_prior: bool = True,
    initial: str = "free",
) -> Fit:
    """Estimate parameters from observations with known state paths (counting, MAP).

    ``pi ∝ max(n_first + alpha_pi - 1, 0)``, ``A[i] ∝ max(n_ij + alpha_A - 1, 0)``,
    ``B[k] ∝ max(n_kv + alpha_B - 1, 0)``; Gaussian and Poisson parameters by the MAP (or ML)
    updates of :mod:`hmm_pyro.learning.mstep` (the Gaussian ECM iterated to the joint mode).
    Flat priors (concentration 1, ``emission_prior=False``) give the observed frequencies and
    sample moments. Missing observations count for states and transitions only.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences or array-like
        Observations.
    states : array-like or list of array-likes
        Labelled paths: ``(N, T_max)`` integers with ``-1`` at padding, or a list of per-sequence
        arrays (see :func:`as_state_paths`).
    emission_prior : bool
        ``False``: maximum likelihood for the emission parameters.
    initial : {"free", "stationary"}
        ``"stationary"`` ties ``pi`` to the stationary distribution of ``A``.

    Returns
    -------
    Fit
        ``method == "supervised"``; attributes hold the counts.

    Raises
    ------
    ValueError
        If ``states`` does not match the data, or an emission parameter is undefined (a state
        with no observation, or a Gaussian state whose observations are all equal, and no
        emission prior).

    Notes
    -----
    A probability row with no counts and a flat prior (any value is a maximiser) is uniform.
    """
    if not isinstance(hmm, HMM):
        raise TypeError(f"hmm: expected a hmm_pyro.HMM, got {describe(hmm)}")
    check_homogeneous(hmm)
    data = hmm.prepare_data(data)
    emission_prior = check_bool("emission_prior", emission_prior)
    paths = as_state_paths(states, data, hmm.num_states)
    prior = prior_tensors(hmm)
    check_initial_mode(initial, prior)
    stats = path_statistics(hmm, data, paths)
    params = maximize(hmm, stats, prior, None, emission_prior, initial)
    for name in hmm.emission.param_names:
        value = params[name]
        bad = ~torch.isfinite(value)
        if name in hmm.emission.positive_params:
            bad = bad | (value <= 0)
        if bool(bad.any()):
            rows = sorted({int(index[0]) for index in torch.nonzero(bad)})
            raise ValueError(
                f"states: the {name!r} estimate of state(s) {rows} is undefined (no observed "
                "emission, or all of them equal); label those states, or pass "
                "emission_prior=True with a proper prior"
            )
    attrs = {
        "emission_prior": emission_prior,
        "initial": initial,
        "start_counts": stats.start.tolist(),
        "transition_counts": stats.transitions.tolist(),
    }
    return Fit.from_params(hmm, data, params, method="supervised", attrs=attrs)
