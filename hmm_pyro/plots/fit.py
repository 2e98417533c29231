"""General plots of a fit (matplotlib, imported lazily). Each takes ``ax=None`` and returns it.

* :func:`plot_state_probs` - one sequence's observations over a heat map of its smoothed state
  probabilities, with the Viterbi path (readable at any length: long sequences in bins).
* :func:`plot_state_paths` - the Viterbi path of every sequence as one heat map.
* :func:`plot_transitions` - the (posterior mean or point) transition matrix as a heat map.
* :func:`plot_losses` - optimisation histories of SVI, MAP, EM or Viterbi-training restarts.

The degeneracy plots (emissions per state, pairwise state distances, relabelling traces) are in
:mod:`hmm_pyro.plots.diagnostics`; the trace plot in :mod:`hmm_pyro.plots.trace`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hmm_pyro._types import SequencesLike
from hmm_pyro._validation import check_int
from hmm_pyro.fit import Fit
from hmm_pyro.plots._axes import _axes, fitted, label_ticks, new_figure, state_colours
from hmm_pyro.plots._labels import is_point, method_label, symbol_names, values_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_losses", "plot_state_paths", "plot_state_probs", "plot_transitions"]

ANNOTATED_STATES = 8
"""Transition matrices with up to this many states print their values in the cells."""


MAX_COLUMNS = 1000
"""Heat maps of longer sequences show bins of steps (the mean probability, or the most frequent
state), at most this many, rather than leave the choice of steps to image resampling."""


def _heat_title(fit: Fit) -> str:
    """What the shade and the red dots of :func:`plot_state_probs` are, for this fit."""
    method = method_label(fit)
    which = f" ({method})" if method else ""
    if is_point(fit):
        return f"State probabilities (shade) and Viterbi path (red) at the point estimate{which}"
    return (
        "State probabilities averaged over posterior draws (shade); Viterbi path under the "
        f"posterior mean (red){which}"
    )


def _bins(length: int) -> int:
    """Steps per heat-map column: 1, or enough that at most :data:`MAX_COLUMNS` remain."""
    return max(1, -(-length // MAX_COLUMNS))


def _binned_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Mean over consecutive blocks of ``width`` rows of ``(T, ...)`` (the last may be short)."""
    if width == 1:
        return values
    starts = np.arange(0, values.shape[0], width)
    sums = np.add.reduceat(values, starts, axis=0)
    counts = np.diff(np.append(starts, values.shape[0])).reshape(-1, *([1] * (values.ndim - 1)))
    return sums / counts


def _binned_mode(paths: np.ndarray, width: int, num: int) -> np.ndarray:
    """Most frequent state per block of ``width`` steps of ``(N, T)`` paths; ``-1`` if padding."""
    if width == 1:
        return paths
    counts = np.stack([_binned_mean((paths == k).T.astype(float), width).T for k in range(num)])
    padded = _binned_mean((paths < 0).T.astype(float), width).T
    return np.where(padded >= 0.5, -1, counts.argmax(axis=0))


def _time_label(width: int, what: str) -> str:
    return "time" if width == 1 else f"time (columns: {what} over {width} steps)"


def plot_state_probs(
    fit: Fit,
    sequence: int = 0,
    data: SequencesLike | None = None,
    ax: Sequence[Axes] | None = None,
    max_draws: int = 200,
) -> np.ndarray:
    """Observations of one sequence over a heat map of its smoothed state probabilities.

    Top: the observations (named symbols on the axis when the fit has them). Bottom: the
    state probabilities ``p(z_t = k | y)`` as a heat map (one row per state; averaged over
    posterior draws, or at the point estimate) with the Viterbi path (under the posterior
    mean) as red dots. The heat map is an image, so it stays readable for thousands of steps
    (beyond :data:`MAX_COLUMNS` steps each column is the mean over a bin of steps, as the
    axis label says).

    Parameters
    ----------
    fit : Fit
        The fit (with draws in one labelling, see ``fit.labelling``).
    sequence : int
        Index of the sequence.
    data : Sequences or array-like, optional
        Sequences to decode (default: the fitted data).
    ax : sequence of two matplotlib.axes.Axes, optional
        Axes for the observations and the state probabilities (default: a new figure).
    max_draws : int
        Posterior draws averaged.

    Returns
    -------
    numpy.ndarray
        The two axes (observations, state probabilities).

    Raises
    ------
    ValueError
        For a sequence index out of range, or other than two axes.
    """
    data = fit.data if data is None else fit.hmm.prepare_data(data)
    sequence = check_int("sequence", sequence, minimum=0)
    if sequence >= data.num_sequences:
        raise ValueError(
            f"sequence: expected an index in [0, {data.num_sequences}), got {sequence}"
        )
    num = fit.hmm.num_states
    names = symbol_names(fit)
    if ax is None:
        top = 2.2 if names is None else min(6.0, max(2.2, 0.15 * len(names) + 0.4))
        bottom = 0.6 + 0.22 * num
        figure = new_figure(figsize=(10, top + bottom + 1.0))
        ax = figure.subplots(2, 1, sharex=True, height_ratios=[top, bottom])
    axes = np.ravel(np.asarray(ax, dtype=object))
    if axes.size != 2:
        raise ValueError(
            f"ax: expected two axes (observations, state probabilities), got {axes.size}"
        )
    subset = data.select([sequence])
    probs = fit.state_probs(subset, max_draws=max_draws)[0].numpy()
    paths, _ = fit.viterbi(subset)
    length = int(subset.lengths[0])
    time = np.arange(length)
    marker = 3.0 if length <= 300 else 1.5

    observed, heat = axes
    values = subset.values[0, :length].numpy()
    for d in range(values.shape[1]):
        label = None if values.shape[1] == 1 else f"dim {d}"
        colour = "0.2" if values.shape[1] == 1 else f"C{d % 10}"
        observed.plot(time, values[:, d], ".", markersize=marker, color=colour, label=label)
    if values.shape[1] > 1:
        observed.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if names is not None:
        label_ticks(observed.yaxis, names)
        observed.set_ylim(-0.5, len(names) - 0.5)
    observed.set_xlim(-0.5, length - 0.5)
    observed.set_ylabel("symbol" if names is not None else "observation")
    observed.set_title(
        fitted(observed, f"Sequence {sequence}: observations and smoothed state probabilities")
    )

    width = _bins(length)
    shown = _binned_mean(probs[:length], width)
    image = heat.imshow(
        shown.T,
        aspect="auto",
        origin="lower",
        cmap="Greys",
        vmin=0.0,
        vmax=1.0,
        extent=(-0.5, shown.shape[0] * width - 0.5, -0.5, num - 0.5),
        interpolation="nearest",
    )
    path = paths[0, :length].numpy()
    heat.plot(time, path, "o", markersize=marker * 0.6, color="C3", label="Viterbi state")
    label_ticks(heat.yaxis, [str(k) for k in range(num)])
    heat.set_xlim(-0.5, length - 0.5)
    heat.set_ylim(-0.5, num - 0.5)
    heat.set_ylabel("state")
    heat.set_xlabel(_time_label(width, "mean probability"))
    heat.set_title(
        fitted(heat, _heat_title(fit), "medium"),
        fontsize="medium",
    )
    heat.figure.colorbar(image, ax=heat, label="p(state)", fraction=0.05, pad=0.01)
    return axes


def plot_state_paths(fit: Fit, data: SequencesLike | None = None, ax: Axes | None = None) -> Axes:
    """The Viterbi path of every sequence as a heat map: rows are sequences, colours states.

    For many or long sequences at a glance: beyond :data:`MAX_COLUMNS` steps each column is
    the most frequent state of a bin of steps (the axis label says how many); with more
    sequences than the image has pixel rows, each row of pixels shows one of its sequences.
    Padding after a shorter sequence is white.

    Parameters
    ----------
    fit : Fit
        The fit (with draws in one labelling, see ``fit.labelling``); the paths use the
        posterior mean (or the point estimate).
    data : Sequences or array-like, optional
        Sequences to decode (default: the fitted data).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap

    data = fit.data if data is None else fit.hmm.prepare_data(data)
    num = fit.hmm.num_states
    paths, _ = fit.viterbi(data)
    paths = paths.numpy()
    count = data.num_sequences
    ax = _axes(ax, figsize=(10, min(8.0, 1.8 + 0.18 * count)))
    colours = ListedColormap(state_colours(num)).with_extremes(bad="white")
    width = _bins(paths.shape[1])
    shown = _binned_mode(paths, width, num)
    image = ax.imshow(
        np.ma.masked_less(shown, 0),
        aspect="auto",
        origin="upper",
        interpolation="nearest",
        cmap=colours,
        norm=BoundaryNorm(np.arange(num + 1) - 0.5, num),
        extent=(-0.5, shown.shape[1] * width - 0.5, count - 0.5, -0.5),
    )
    label_ticks(ax.yaxis, [str(n) for n in range(count)])
    ax.set_ylim(count - 0.5, -0.5)
    ax.set_xlim(-0.5, paths.shape[1] - 0.5)
    ax.set_xlabel(_time_label(width, "most frequent state"))
    ax.set_ylabel("sequence")
    method = method_label(fit)
    source = "point estimate" if is_point(fit) else "posterior mean"
    ax.set_title(
        fitted(
            ax,
            f"Viterbi state paths of {count} sequence(s) under the {source}"
            f"{f' ({method})' if method else ''}",
        )
    )
    bar = ax.figure.colorbar(image, ax=ax, label="state", fraction=0.05, pad=0.01)
    label_ticks(bar.ax.yaxis, [str(k) for k in range(num)])
    return ax


def plot_transitions(fit: Fit, ax: Axes | None = None) -> Axes:
    """The transition matrix ``A[i, j] = P(z_t = j | z_{t-1} = i)`` as a heat map.

    The posterior mean for a fit with draws, the point itself for a point estimate; values are
    printed in the cells up to :data:`ANNOTATED_STATES` states. For a model with transition
    covariates: the matrix with every covariate at its mean
    (:func:`~hmm_pyro.plots.plot_covariate_transitions` draws it against a covariate).

    Parameters
    ----------
    fit : Fit
        The fit (with draws in one labelling, see ``fit.labelling``).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    matrix = fit.transition_matrix(max_draws=None).mean.numpy()
    num = matrix.shape[0]
    side = min(9.0, 0.75 * num + 2.5)
    ax = _axes(ax, figsize=(side + 1.2, side))
    image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="Blues")
    if num <= ANNOTATED_STATES:
        for i in range(num):
            for j in range(num):
                colour = "white" if matrix[i, j] > 0.6 else "black"
                text = f"{matrix[i, j]:.2f}"
                ax.text(j, i, text, ha="center", va="center", color=colour, fontsize="small")
    states = [str(k) for k in range(num)]
    label_ticks(ax.xaxis, states, rotation=0)
    label_ticks(ax.yaxis, states)
    ax.set_xlabel("to state")
    ax.set_ylabel("from state")
    what = "transition matrix"
    if fit.hmm.transition_covariates:
        what += " (covariates at their mean)"
    ax.set_title(fitted(ax, values_label(fit, what), "medium"), fontsize="medium")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def plot_losses(fit: Fit, ax: Axes | None = None) -> Axes:
    """Optimisation history of every restart (SVI or MAP loss, or EM/Viterbi-training objective).

    Parameters
    ----------
    fit : Fit
        A fit by :func:`hmm_pyro.fit_svi`, :func:`hmm_pyro.fit_map`, :func:`hmm_pyro.fit_em` or
        :func:`hmm_pyro.fit_viterbi_training`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If the fit has no optimisation history (e.g. NUTS).
    """
    stats = fit.idata.sample_stats if "sample_stats" in fit.idata.groups() else {}
    if "loss" in stats:
        history = np.asarray(stats["loss"].values)[0, 0]
        label = "loss (negative log posterior)" if fit.method == "map" else "loss (negative ELBO)"
    elif "objective" in stats:
        history, label = np.asarray(stats["objective"].values)[0, 0], "log posterior"
    else:
        raise ValueError(
            f"fit: expected an SVI, MAP, EM or Viterbi-training fit, got {fit.method!r}"
        )
    best = fit.attrs.get("best_restart")
    ax = _axes(ax, figsize=(7, 3.5))
    for restart, values in enumerate(history):
        kept = values[np.isfinite(values)]
        style = {"linewidth": 1.6, "color": "k"} if restart == best else {"linewidth": 0.8}
        ax.plot(np.arange(kept.size), kept, label=f"restart {restart}", **style)
    if "loss" in stats and np.all(history[np.isfinite(history)] > 0):
        ax.set_yscale("log")
    if "loss" not in stats:
        ax.set_xlabel("iteration")
    else:  # L-BFGS records every objective evaluation (line-search trials included)
        ax.set_xlabel("evaluation" if fit.attrs.get("optimizer") == "lbfgs" else "step")
    ax.set_ylabel(label)
    method = method_label(fit)
    ax.set_title(
        fitted(ax, f"{fit.method} restarts{f' ({method})' if method else ''}; black: kept")
    )
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return ax
